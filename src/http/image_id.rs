//! The `{id}` path parameter of the image route.

use std::fmt;

/// An image id: a decimal integer from 1 to `i64::MAX`. It can only be built
/// by [`ImageId::parse`], so a handler never sees an unchecked id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageId(i64);

/// Reason a path segment is not an image id, in English, for the error `detail`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageIdError {
    #[error("the image id is empty")]
    Empty,
    #[error("the image id must contain only the ASCII digits 0-9")]
    NotDigits,
    #[error("the image id must be at least 1")]
    Zero,
    #[error("the image id must be at most 9223372036854775807")]
    TooLarge,
}

impl ImageId {
    /// Parses a decimal id. Leading zeros are allowed (`007` is image 7);
    /// signs, spaces, exponents and non-ASCII digits are not.
    pub fn parse(text: &str) -> Result<Self, ImageIdError> {
        if text.is_empty() {
            return Err(ImageIdError::Empty);
        }
        if !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ImageIdError::NotDigits);
        }
        // Only ASCII digits remain, so the only way `parse` can fail is overflow.
        let value: i64 = text.parse().map_err(|_| ImageIdError::TooLarge)?;
        if value == 0 {
            return Err(ImageIdError::Zero);
        }
        Ok(Self(value))
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for ImageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_valid_ids() {
        assert_eq!(ImageId::parse("1").unwrap().get(), 1);
        assert_eq!(ImageId::parse("007").unwrap().get(), 7);
        assert_eq!(
            ImageId::parse("0000000000000000000000000042")
                .unwrap()
                .get(),
            42
        );
        assert_eq!(
            ImageId::parse("9223372036854775807").unwrap().get(),
            i64::MAX
        );
    }

    #[test]
    fn rejects_invalid_ids() {
        let cases = [
            ("", ImageIdError::Empty),
            ("0", ImageIdError::Zero),
            ("000", ImageIdError::Zero),
            ("-1", ImageIdError::NotDigits),
            ("+1", ImageIdError::NotDigits),
            ("1.5", ImageIdError::NotDigits),
            ("1e3", ImageIdError::NotDigits),
            ("abc", ImageIdError::NotDigits),
            (" 1", ImageIdError::NotDigits),
            ("1 ", ImageIdError::NotDigits),
            ("0x10", ImageIdError::NotDigits),
            ("１", ImageIdError::NotDigits),
            ("١", ImageIdError::NotDigits),
            ("9223372036854775808", ImageIdError::TooLarge),
            ("99999999999999999999999", ImageIdError::TooLarge),
        ];
        for (text, expected) in cases {
            assert_eq!(ImageId::parse(text), Err(expected), "input {text:?}");
        }
    }

    proptest! {
        #[test]
        fn positive_i64_round_trips(value in 1..=i64::MAX, zeros in 0usize..5) {
            let text = format!("{}{value}", "0".repeat(zeros));
            prop_assert_eq!(ImageId::parse(&text).map(ImageId::get), Ok(value));
        }

        #[test]
        fn non_positive_rejected(value in i64::MIN..=0) {
            prop_assert!(ImageId::parse(&value.to_string()).is_err());
        }

        #[test]
        fn agrees_with_reference_parser(text in "[0-9]{0,30}|[0-9+\\- .e１]{0,8}|\\PC{0,12}") {
            // u128 holds every value of up to 38 digits, so it can tell a
            // large value from an invalid one; its parser also accepts a
            // leading '+', hence the digit check.
            let is_digits = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
            let expected = text
                .parse::<u128>()
                .ok()
                .filter(|value| is_digits && (1..=i64::MAX as u128).contains(value));
            let parsed = ImageId::parse(&text).ok().map(|id| id.get() as u128);
            prop_assert_eq!(parsed, expected, "input {:?}", text);
        }
    }
}
