//! Conditional requests (RFC 9110, section 13), HEAD and Cache-Control.

use crate::backend_tests;
use crate::helpers::{Backend, TOKEN, TestApp, spawn_app, spawn_app_with};

backend_tests!(
    validators_on_success,
    etag_match_not_modified,
    etag_list_and_star,
    etag_mismatch_full_response,
    modified_since_not_modified,
    none_match_overrides_modified_since,
    invalid_date_ignored,
    conditional_needs_auth,
    etag_follows_content,
    head_matches_get,
    head_missing_image,
    max_age_configurable,
    revalidation_skips_database,
);

const UPDATED: &str = "2024-03-20 10:30:00";
const UPDATED_HTTP: &str = "Wed, 20 Mar 2024 10:30:00 GMT";

async fn app_with_image(backend: Backend) -> TestApp {
    let app = spawn_app(backend).await;
    app.database.insert_image(1, "one", "image one", UPDATED);
    app
}

async fn get_with(app: &TestApp, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = app
        .client
        .get(format!("{}/aries/api/v1/image/1", app.address))
        .bearer_auth(TOKEN);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

async fn current_etag(app: &TestApp) -> String {
    let response = get_with(app, &[]).await;
    response.headers()["etag"].to_str().unwrap().to_owned()
}

async fn assert_not_modified(response: reqwest::Response, etag: &str) {
    assert_eq!(response.status(), 304);
    assert_eq!(response.headers()["etag"], etag);
    assert_eq!(response.headers()["cache-control"], "private, no-cache");
    assert!(response.headers().contains_key("x-request-id"));
    assert!(response.bytes().await.unwrap().is_empty());
}

async fn validators_on_success(backend: Backend) {
    let app = app_with_image(backend).await;

    let response = get_with(&app, &[]).await;

    assert_eq!(response.status(), 200);
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    assert!(
        etag.starts_with('"') && etag.ends_with('"'),
        "strong tag: {etag}"
    );
    assert_eq!(etag.len(), 34, "32 hex digits in quotes: {etag}");
    assert_eq!(response.headers()["last-modified"], UPDATED_HTTP);
    assert_eq!(response.headers()["cache-control"], "private, no-cache");
}

async fn etag_match_not_modified(backend: Backend) {
    let app = app_with_image(backend).await;
    let etag = current_etag(&app).await;
    let weak = format!("W/{etag}");

    for value in [etag.as_str(), weak.as_str()] {
        let response = get_with(&app, &[("if-none-match", value)]).await;
        assert_not_modified(response, &etag).await;
    }
}

async fn etag_list_and_star(backend: Backend) {
    let app = app_with_image(backend).await;
    let etag = current_etag(&app).await;
    let list = format!("\"other\", W/\"x\",{etag} , \"last\"");

    for value in [list.as_str(), "*"] {
        let response = get_with(&app, &[("if-none-match", value)]).await;
        assert_not_modified(response, &etag).await;
    }
}

async fn etag_mismatch_full_response(backend: Backend) {
    let app = app_with_image(backend).await;
    let etag = current_etag(&app).await;
    let unquoted = etag.trim_matches('"').to_owned();

    for value in [
        "\"other\"",
        "W/\"other\", \"more\"",
        unquoted.as_str(),
        "garbage",
    ] {
        let response = get_with(&app, &[("if-none-match", value)]).await;

        assert_eq!(response.status(), 200, "If-None-Match: {value}");
        assert_eq!(response.headers()["etag"], etag.as_str());
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["id"], 1);
    }
}

async fn modified_since_not_modified(backend: Backend) {
    let app = app_with_image(backend).await;
    let etag = current_etag(&app).await;

    for since in [UPDATED_HTTP, "Thu, 21 Mar 2024 00:00:00 GMT"] {
        let response = get_with(&app, &[("if-modified-since", since)]).await;
        assert_not_modified(response, &etag).await;
    }
    let earlier = get_with(
        &app,
        &[("if-modified-since", "Wed, 20 Mar 2024 10:29:59 GMT")],
    )
    .await;
    assert_eq!(earlier.status(), 200);
}

async fn none_match_overrides_modified_since(backend: Backend) {
    let app = app_with_image(backend).await;

    // The date alone would give 304, but a present If-None-Match decides.
    let response = get_with(
        &app,
        &[
            ("if-none-match", "\"other\""),
            ("if-modified-since", "Thu, 21 Mar 2024 00:00:00 GMT"),
        ],
    )
    .await;

    assert_eq!(response.status(), 200);
}

async fn invalid_date_ignored(backend: Backend) {
    let app = app_with_image(backend).await;

    // A date after the server's clock is ignored too.
    for since in [
        "yesterday",
        "2024-03-21T00:00:00Z",
        "",
        "Fri, 31 Dec 9999 23:59:59 GMT",
    ] {
        let response = get_with(&app, &[("if-modified-since", since)]).await;
        assert_eq!(response.status(), 200, "If-Modified-Since: {since:?}");
    }
}

async fn conditional_needs_auth(backend: Backend) {
    let app = app_with_image(backend).await;
    let etag = current_etag(&app).await;

    let response = app
        .client
        .get(format!("{}/aries/api/v1/image/1", app.address))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 401);
}

async fn etag_follows_content(backend: Backend) {
    let first = app_with_image(backend).await;
    let second = app_with_image(backend).await;
    let etag = current_etag(&first).await;

    // A second instance on another database with the same row computes the
    // same tag: it depends on the content only.
    assert_eq!(current_etag(&second).await, etag);

    let ttl_one = spawn_app_with(backend, |settings| settings.cache.ttl_s = 1).await;
    ttl_one
        .database
        .insert_image(1, "one", "image one", UPDATED);
    assert_eq!(current_etag(&ttl_one).await, etag);
    ttl_one
        .database
        .execute("UPDATE images SET description = 'changed' WHERE id = 1");
    actix_web::rt::time::sleep(std::time::Duration::from_millis(1500)).await;
    let changed = get_with(&ttl_one, &[("if-none-match", &etag)]).await;
    assert_eq!(changed.status(), 200);
    assert_ne!(changed.headers()["etag"], etag.as_str());
}

async fn head_matches_get(backend: Backend) {
    let app = app_with_image(backend).await;
    let get = get_with(&app, &[]).await;
    let get_headers = get.headers().clone();
    let get_body = get.bytes().await.unwrap();

    let head = app
        .client
        .head(format!("{}/aries/api/v1/image/1", app.address))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();

    assert_eq!(head.status(), 200);
    for name in ["etag", "last-modified", "cache-control", "content-type"] {
        assert_eq!(head.headers()[name], get_headers[name], "{name}");
    }
    assert_eq!(
        head.headers()["content-length"],
        get_body.len().to_string().as_str()
    );
    assert!(head.bytes().await.unwrap().is_empty());

    let etag = get_headers["etag"].to_str().unwrap();
    let conditional = app
        .client
        .head(format!("{}/aries/api/v1/image/1", app.address))
        .bearer_auth(TOKEN)
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(conditional.status(), 304);
}

async fn head_missing_image(backend: Backend) {
    let app = spawn_app(backend).await;
    let url = format!("{}/aries/api/v1/image/2", app.address);

    let missing = app
        .client
        .head(&url)
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let anonymous = app.client.head(&url).send().await.unwrap();

    assert_eq!(missing.status(), 404);
    assert!(missing.bytes().await.unwrap().is_empty());
    assert_eq!(anonymous.status(), 401);
    assert_eq!(anonymous.headers()["www-authenticate"], "Bearer");
}

async fn max_age_configurable(backend: Backend) {
    let app = spawn_app_with(backend, |settings| settings.server.max_age_s = 30).await;
    app.database.insert_image(1, "one", "image one", UPDATED);

    let response = get_with(&app, &[]).await;

    assert_eq!(response.headers()["cache-control"], "private, max-age=30");
}

async fn revalidation_skips_database(backend: Backend) {
    let app = app_with_image(backend).await;
    let etag = current_etag(&app).await;

    for _ in 0..10 {
        let response = get_with(&app, &[("if-none-match", &etag)]).await;
        assert_eq!(response.status(), 304);
    }

    assert_eq!(app.database_queries().await, 1.0);
}
