//! Fuzzes the id parser with arbitrary path segments. An accepted id must
//! be the segment's decimal value, and each error must match the segment.
#![no_main]

use aries_image::http::{ImageId, ImageIdError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    match ImageId::parse(text) {
        Ok(id) => {
            assert!(id.get() >= 1);
            assert_eq!(id.to_string(), text.trim_start_matches('0'));
        }
        Err(ImageIdError::Empty) => assert!(text.is_empty()),
        Err(ImageIdError::NotDigits) => assert!(!text.bytes().all(|b| b.is_ascii_digit())),
        Err(ImageIdError::Zero) => assert!(text.bytes().all(|b| b == b'0')),
        Err(ImageIdError::TooLarge) => {
            let digits = text.trim_start_matches('0');
            assert!(digits.len() >= 19 && digits.bytes().all(|b| b.is_ascii_digit()));
        }
    }
});
