//! The API contract: bodies, statuses, error codes and headers.

use std::time::{Duration, Instant};

use crate::backend_tests;
use crate::helpers::{
    Backend, TOKEN, TestDatabase, error_body, spawn_app, start_unready, test_settings,
};

const REFERENCE_BODY: &str = r#"{"id":1,"name":"CentOS-7.9-x64","os_type":"linux","os_name":"CentOS","description":"CentOS 7.9 64位基础镜像","source_path":"/path/to/image/file.iso","created_at":"2024-03-20T10:30:00Z","updated_at":"2024-03-20T10:30:00Z"}"#;

const INSERT_REFERENCE: &str = "INSERT INTO images (id, name, os_type, os_name, description, \
     source_path, created_at, updated_at) VALUES (1, 'CentOS-7.9-x64', 'linux', 'CentOS', \
     'CentOS 7.9 64位基础镜像', '/path/to/image/file.iso', '2024-03-20 10:30:00', \
     '2024-03-20 10:30:00')";

backend_tests!(
    reference_record_served,
    leading_zeros_accepted,
    invalid_ids_rejected,
    missing_image_not_found,
    largest_id_not_found,
    missing_token_rejected,
    bad_credentials_rejected,
    scheme_case_insensitive,
    auth_checked_before_id,
    database_failure_internal_error,
    unknown_route_json,
    wrong_method_json,
    request_id_echoed,
    bad_request_id_replaced,
    unreachable_database_internal_error,
);

async fn reference_record_served(backend: Backend) {
    let app = spawn_app(backend).await;
    let database = &app.database;
    database.execute(&format!("{}{INSERT_REFERENCE}", database.utc_session()));

    let response = app.get_image("1").await;

    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["cache-control"], "private, no-cache");
    assert!(!headers["x-request-id"].is_empty());
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(
        !headers.contains_key("server"),
        "the server does not name itself"
    );
    assert_eq!(response.text().await.unwrap(), REFERENCE_BODY);
}

async fn leading_zeros_accepted(backend: Backend) {
    let app = spawn_app(backend).await;
    app.database
        .insert_image(7, "seven", "image seven", "2024-01-01 00:00:00");

    let response = app.get_image("007").await;

    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["id"], 7);
}

async fn invalid_ids_rejected(backend: Backend) {
    let app = spawn_app(backend).await;
    app.database
        .insert_image(1, "one", "image one", "2024-01-01 00:00:00");
    // Percent-encoded where a URL needs it: %20 is a space, %EF%BC%91 the
    // fullwidth digit one, %D9%A1 the Arabic-Indic digit one.
    let cases = [
        "0",
        "00",
        "-1",
        "+1",
        "1.5",
        "1e3",
        "abc",
        "0x1",
        "%201",
        "1%20",
        "%EF%BC%91",
        "%D9%A1",
        "9223372036854775808",
        "18446744073709551616",
        "99999999999999999999999999999999",
    ];
    for raw_id in cases {
        let response = app.get_image(raw_id).await;

        assert_eq!(response.status(), 400, "id {raw_id:?}");
        let body = error_body(response).await;
        assert_eq!(body["code"], "InvalidParameter", "id {raw_id:?}");
        assert_eq!(body["message"], "参数无效", "id {raw_id:?}");
        assert!(
            body["detail"].as_str().unwrap().contains("image id"),
            "{body}"
        );
    }
}

async fn missing_image_not_found(backend: Backend) {
    let app = spawn_app(backend).await;

    let response = app.get_image("42").await;

    assert_eq!(response.status(), 404);
    let body = error_body(response).await;
    assert_eq!(body["code"], "ImageNotFound");
    assert_eq!(body["message"], "镜像不存在");
}

async fn largest_id_not_found(backend: Backend) {
    let app = spawn_app(backend).await;

    let response = app.get_image("9223372036854775807").await;

    assert_eq!(response.status(), 404);
    assert_eq!(error_body(response).await["code"], "ImageNotFound");
}

async fn missing_token_rejected(backend: Backend) {
    let app = spawn_app(backend).await;
    app.database
        .insert_image(1, "one", "image one", "2024-01-01 00:00:00");

    let response = app.get_anonymous("/aries/api/v1/image/1").await;

    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body = error_body(response).await;
    assert_eq!(body["code"], "AuthFailure");
    assert_eq!(body["message"], "认证失败");
}

async fn bad_credentials_rejected(backend: Backend) {
    let app = spawn_app(backend).await;
    app.database
        .insert_image(1, "one", "image one", "2024-01-01 00:00:00");
    let wrong_token = format!("Bearer {TOKEN}x");
    let basic = format!("Basic {TOKEN}");
    let no_space = format!("Bearer{TOKEN}");
    let two_tokens = format!("Bearer {TOKEN} {TOKEN}");
    let cases = [
        wrong_token.as_str(),
        "Bearer",
        "Bearer ",
        basic.as_str(),
        no_space.as_str(),
        two_tokens.as_str(),
        "Bearer aries-dev-token",
    ];
    for authorization in cases {
        let response = app
            .client
            .get(format!("{}/aries/api/v1/image/1", app.address))
            .header("authorization", authorization)
            .send()
            .await
            .unwrap();

        assert_eq!(response.status(), 401, "{authorization:?}");
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        let body = error_body(response).await;
        assert_eq!(body["code"], "AuthFailure", "{authorization:?}");
        assert!(!body.to_string().contains(TOKEN), "{body}");
    }
}

async fn scheme_case_insensitive(backend: Backend) {
    let app = spawn_app(backend).await;
    app.database
        .insert_image(1, "one", "image one", "2024-01-01 00:00:00");
    for scheme in ["bearer", "BEARER", "BeArEr"] {
        let response = app
            .client
            .get(format!("{}/aries/api/v1/image/1", app.address))
            .header("authorization", format!("{scheme} {TOKEN}"))
            .send()
            .await
            .unwrap();

        assert_eq!(response.status(), 200, "scheme {scheme}");
    }
}

async fn auth_checked_before_id(backend: Backend) {
    let app = spawn_app(backend).await;

    for raw_id in ["abc", "0", "42"] {
        let response = app
            .get_anonymous(&format!("/aries/api/v1/image/{raw_id}"))
            .await;

        assert_eq!(response.status(), 401, "id {raw_id}");
        assert_eq!(error_body(response).await["code"], "AuthFailure");
    }
}

async fn database_failure_internal_error(backend: Backend) {
    let app = spawn_app(backend).await;
    app.database.execute("DROP TABLE images");

    let response = app.get_image("1").await;

    assert_eq!(response.status(), 500);
    let body = error_body(response).await;
    assert_eq!(body["code"], "InternalError");
    assert_eq!(body["message"], "内部错误");
    let text = body.to_string().to_lowercase();
    for internal in ["images", "select", "table", "sql", "diesel"] {
        assert!(!text.contains(internal), "{internal:?} leaked: {body}");
    }
}

async fn unreachable_database_internal_error(backend: Backend) {
    let directory = tempfile::tempdir().unwrap();
    // A directory cannot be opened as a SQLite file, and nothing listens on
    // port 1 of the loopback address.
    let url = match backend {
        Backend::Sqlite => directory.path().to_str().unwrap().to_owned(),
        Backend::Mariadb => "mysql://root@127.0.0.1:1/aries".to_owned(),
    };
    let mut settings = test_settings(&url);
    settings.database.run_migrations = false;
    settings.pool.min_idle = 0;
    settings.pool.checkout_timeout_ms = 500;
    let app = start_unready(settings, TestDatabase::create(Backend::Sqlite)).await;

    let started = Instant::now();
    let response = app.get_image("1").await;

    assert_eq!(response.status(), 500);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    let body = error_body(response).await;
    assert_eq!(body["code"], "InternalError");
    assert!(!body.to_string().contains("127.0.0.1"), "{body}");
}

async fn unknown_route_json(backend: Backend) {
    let app = spawn_app(backend).await;
    let paths = [
        "/",
        "/aries/api/v1/image",
        "/aries/api/v1/image/",
        "/aries/api/v1/image/1/",
        "/aries/api/v1/image/1/extra",
        "/aries/api/v2/image/1",
    ];
    for path in paths {
        let response = app.get(path).await;

        assert_eq!(response.status(), 404, "{path}");
        assert_eq!(
            error_body(response).await["code"],
            "ResourceNotFound",
            "{path}"
        );
    }
}

async fn wrong_method_json(backend: Backend) {
    let app = spawn_app(backend).await;
    for method in [
        reqwest::Method::POST,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
        reqwest::Method::PATCH,
    ] {
        let response = app
            .client
            .request(
                method.clone(),
                format!("{}/aries/api/v1/image/1", app.address),
            )
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();

        assert_eq!(response.status(), 405, "{method}");
        assert_eq!(response.headers()["allow"], "GET, HEAD", "{method}");
        assert_eq!(error_body(response).await["code"], "MethodNotAllowed");
    }
}

async fn request_id_echoed(backend: Backend) {
    let app = spawn_app(backend).await;
    app.database
        .insert_image(1, "one", "image one", "2024-01-01 00:00:00");
    let incoming = "client-req-42_abc.DEF:~";

    for path in ["/aries/api/v1/image/1", "/aries/api/v1/image/x", "/nowhere"] {
        let response = app
            .client
            .get(format!("{}{path}", app.address))
            .bearer_auth(TOKEN)
            .header("x-request-id", incoming)
            .send()
            .await
            .unwrap();

        assert_eq!(response.headers()["x-request-id"], incoming, "{path}");
    }
    let error = app
        .client
        .get(format!("{}/aries/api/v1/image/x", app.address))
        .header("x-request-id", incoming)
        .send()
        .await
        .unwrap();
    assert_eq!(error_body(error).await["request_id"], incoming);
}

async fn bad_request_id_replaced(backend: Backend) {
    let app = spawn_app(backend).await;
    let too_long = "a".repeat(129);
    for incoming in [too_long.as_str(), "has space", "tab\there", ""] {
        let response = app
            .client
            .get(format!("{}/aries/api/v1/image/x", app.address))
            .header("x-request-id", incoming)
            .send()
            .await
            .unwrap();

        let assigned = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        assert_ne!(assigned, incoming);
        assert_eq!(assigned.len(), 36, "a generated id is a UUID: {assigned}");
        assert_eq!(error_body(response).await["request_id"], assigned.as_str());
    }
    let longest = "b".repeat(128);
    let response = app
        .client
        .get(format!("{}/aries/api/v1/image/x", app.address))
        .header("x-request-id", &longest)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], longest.as_str());
}
