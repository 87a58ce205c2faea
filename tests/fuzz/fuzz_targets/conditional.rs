//! Fuzzes the conditional request check with arbitrary If-None-Match and
//! If-Modified-Since values. If-Modified-Since must not change the result
//! when If-None-Match is present.
#![no_main]

use actix_web::http::header::{self, HeaderValue};
use actix_web::test::TestRequest;
use aries_image::cache::CachedImage;
use aries_image::db::ImageRow;
use aries_image::http::routes::is_not_modified;
use libfuzzer_sys::fuzz_target;

fn image() -> CachedImage {
    let timestamp = chrono::DateTime::from_timestamp(1_710_930_600, 0)
        .unwrap()
        .naive_utc();
    CachedImage::from_row(ImageRow {
        id: 1,
        name: "name".into(),
        os_type: "linux".into(),
        os_name: "os".into(),
        description: "description".into(),
        source_path: "/images/1.qcow2".into(),
        created_at: timestamp,
        updated_at: timestamp,
    })
}

fuzz_target!(|input: (&[u8], &[u8])| {
    let (if_none_match, if_modified_since) = input;
    let image = image();
    let (Ok(if_none_match), Ok(if_modified_since)) = (
        HeaderValue::from_bytes(if_none_match),
        HeaderValue::from_bytes(if_modified_since),
    ) else {
        return;
    };

    let only_date = TestRequest::default()
        .insert_header((header::IF_MODIFIED_SINCE, if_modified_since.clone()))
        .to_http_request();
    is_not_modified(&only_date, &image);

    let only_tags = TestRequest::default()
        .insert_header((header::IF_NONE_MATCH, if_none_match.clone()))
        .to_http_request();
    let both = TestRequest::default()
        .insert_header((header::IF_NONE_MATCH, if_none_match))
        .insert_header((header::IF_MODIFIED_SINCE, if_modified_since))
        .to_http_request();
    assert_eq!(
        is_not_modified(&only_tags, &image),
        is_not_modified(&both, &image)
    );
});
