//! Bearer token authentication against SHA-256 digests from the settings.

use actix_web::http::header::{self, HeaderMap};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Token accepted by the embedded quick start when no tokens are configured.
pub const DEVELOPMENT_TOKEN: &str = "aries-dev-token";

/// Reason a request was not authenticated, in English, for the error `detail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("the Authorization header is missing; send `Authorization: Bearer <token>`")]
    Missing,
    #[error("the Authorization header is not of the form `Bearer <token>`")]
    Malformed,
    #[error("the bearer token is not valid")]
    UnknownToken,
}

#[derive(Debug, Clone)]
pub enum Authenticator {
    /// Every request is accepted: a gateway in front authenticates clients.
    Disabled,
    /// SHA-256 digests of the accepted tokens.
    Tokens(Vec<[u8; 32]>),
}

/// Returns the lowercase hex SHA-256 digest of `token`, the form in which
/// tokens are configured.
pub fn token_digest_hex(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl Authenticator {
    /// Builds an authenticator from hex digests that the settings have
    /// already checked.
    pub fn from_hex_digests<'a>(digests: impl IntoIterator<Item = &'a String>) -> Self {
        let parsed = digests
            .into_iter()
            .filter_map(|digest| {
                let mut bytes = [0u8; 32];
                hex::decode_to_slice(digest, &mut bytes).ok()?;
                Some(bytes)
            })
            .collect();
        Self::Tokens(parsed)
    }

    pub fn authenticate(&self, headers: &HeaderMap) -> Result<(), AuthError> {
        let Self::Tokens(digests) = self else {
            return Ok(());
        };
        let token = bearer_token(headers)?;
        let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        // Every digest is compared in constant time, with no early exit, so
        // the response time does not tell how many bytes or which entry matched.
        let matched = digests
            .iter()
            .fold(subtle::Choice::from(0), |found, digest| {
                found | digest.ct_eq(&presented)
            });
        if bool::from(matched) {
            Ok(())
        } else {
            Err(AuthError::UnknownToken)
        }
    }
}

/// Extracts the token of `Authorization: Bearer <token>`. The scheme name is
/// case-insensitive (RFC 9110, section 11.1) and the token must be token68
/// (RFC 9110, section 11.2). A request with two Authorization headers is
/// rejected as malformed.
fn bearer_token(headers: &HeaderMap) -> Result<&str, AuthError> {
    let mut values = headers.get_all(header::AUTHORIZATION);
    let value = values.next().ok_or(AuthError::Missing)?;
    if values.next().is_some() {
        return Err(AuthError::Malformed);
    }
    let text = value.to_str().map_err(|_| AuthError::Malformed)?;
    let (scheme, rest) = text.split_once(' ').ok_or(AuthError::Malformed)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::Malformed);
    }
    let token = rest.trim_start_matches(' ');
    if !is_token68(token) {
        return Err(AuthError::Malformed);
    }
    Ok(token)
}

/// token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
fn is_token68(text: &str) -> bool {
    let body = text.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;

    fn headers(values: &[&'static str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append(header::AUTHORIZATION, HeaderValue::from_static(value));
        }
        map
    }

    fn authenticator() -> Authenticator {
        Authenticator::from_hex_digests(&[token_digest_hex("secret-1"), token_digest_hex("s2")])
    }

    #[test]
    fn digest_matches_sha256() {
        assert_eq!(
            token_digest_hex(DEVELOPMENT_TOKEN),
            hex::encode(Sha256::digest(b"aries-dev-token"))
        );
        assert_eq!(
            token_digest_hex(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn accepts_configured_tokens() {
        let auth = authenticator();
        assert_eq!(auth.authenticate(&headers(&["Bearer secret-1"])), Ok(()));
        assert_eq!(auth.authenticate(&headers(&["bearer s2"])), Ok(()));
        assert_eq!(auth.authenticate(&headers(&["BEARER  s2"])), Ok(()));
    }

    #[test]
    fn rejects_bad_headers() {
        let auth = authenticator();
        let cases = [
            (&[][..], AuthError::Missing),
            (&["Bearer"][..], AuthError::Malformed),
            (&["Bearer "][..], AuthError::Malformed),
            (&["Basic c2VjcmV0LTE="][..], AuthError::Malformed),
            (&["Bearer secret 1"][..], AuthError::Malformed),
            (&["Bearersecret-1"][..], AuthError::Malformed),
            (&["Bearer secret-1", "Bearer s2"][..], AuthError::Malformed),
            (&["Bearer secret-2"][..], AuthError::UnknownToken),
        ];
        for (values, expected) in cases {
            assert_eq!(
                auth.authenticate(&headers(values)),
                Err(expected),
                "{values:?}"
            );
        }
    }

    #[test]
    fn disabled_accepts_everything() {
        assert_eq!(Authenticator::Disabled.authenticate(&headers(&[])), Ok(()));
    }

    #[test]
    fn no_tokens_rejects_everything() {
        let auth = Authenticator::Tokens(Vec::new());
        assert_eq!(
            auth.authenticate(&headers(&["Bearer aries-dev-token"])),
            Err(AuthError::UnknownToken)
        );
    }
}
