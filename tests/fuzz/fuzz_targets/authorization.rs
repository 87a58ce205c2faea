//! Fuzzes bearer authentication with arbitrary Authorization values. Only
//! `Bearer`, in any case, then spaces and the configured token may pass.
#![no_main]

use actix_web::http::header::{self, HeaderMap, HeaderValue};
use aries_image::http::auth::{Authenticator, token_digest_hex};
use libfuzzer_sys::fuzz_target;

const TOKEN: &str = "fuzz-token";

fuzz_target!(|value: &[u8]| {
    let Ok(value) = HeaderValue::from_bytes(value) else {
        return;
    };
    let authenticator = Authenticator::from_hex_digests(&[token_digest_hex(TOKEN)]);
    let mut headers = HeaderMap::new();
    headers.insert(header::AUTHORIZATION, value.clone());
    if authenticator.authenticate(&headers).is_ok() {
        let text = value.to_str().unwrap();
        let (scheme, token) = text.split_at(6);
        assert!(scheme.eq_ignore_ascii_case("bearer"));
        assert_eq!(token.trim_start_matches(' '), TOKEN);
        assert!(token.starts_with(' '));
    }
});
