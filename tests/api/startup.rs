//! Starting the service: the embedded quick start, the sample images and
//! the checks of the authentication settings.

use aries_image::startup::Application;

use crate::helpers::{Backend, TestDatabase, mariadb_available, start, test_settings};

const REFERENCE_BODY: &str = r#"{"id":1,"name":"CentOS-7.9-x64","os_type":"linux","os_name":"CentOS","description":"CentOS 7.9 64位基础镜像","source_path":"/path/to/image/file.iso","created_at":"2024-03-20T10:30:00Z","updated_at":"2024-03-20T10:30:00Z"}"#;

async fn get_with_token(address: &str, path: &str, token: &str) -> reqwest::Response {
    crate::helpers::http_client()
        .get(format!("{address}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

#[actix_web::test]
async fn embedded_default_serves_samples() {
    let directory = tempfile::tempdir().unwrap();
    let data_dir = directory.path().join("data");
    let mut settings = test_settings("");
    settings.auth.token_sha256.clear();
    settings.database.data_dir = data_dir.clone();

    let app = start(settings.clone(), TestDatabase::create(Backend::Sqlite)).await;
    let response = get_with_token(&app.address, "/aries/api/v1/image/1", "aries-dev-token").await;

    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), REFERENCE_BODY);
    assert!(data_dir.join("aries.sqlite3").is_file());
    let test_token = get_with_token(&app.address, "/aries/api/v1/image/1", "other").await;
    assert_eq!(test_token.status(), 401);
    drop(app);

    // A second start finds the rows and inserts no more samples.
    let app = start(settings, TestDatabase::create(Backend::Sqlite)).await;
    let count = aries_image::db::SAMPLE_IMAGES.len();
    let last = get_with_token(
        &app.address,
        &format!("/aries/api/v1/image/{count}"),
        "aries-dev-token",
    )
    .await;
    assert_eq!(last.status(), 200);
    let beyond = get_with_token(
        &app.address,
        &format!("/aries/api/v1/image/{}", count + 1),
        "aries-dev-token",
    )
    .await;
    assert_eq!(beyond.status(), 404);
}

#[actix_web::test]
async fn mariadb_gets_no_samples() {
    if !mariadb_available() {
        return;
    }
    let database = TestDatabase::create(Backend::Mariadb);
    let app = start(test_settings(&database.url), database).await;

    let response = app.get_image("1").await;

    assert_eq!(response.status(), 404);
}

#[actix_web::test]
async fn configured_database_needs_tokens() {
    let database = TestDatabase::create(Backend::Sqlite);
    let mut settings = test_settings(&database.url);
    settings.auth.token_sha256.clear();

    let error = Application::build(settings)
        .await
        .err()
        .expect("the service refuses to start");

    let message = format!("{error:#}");
    assert!(message.contains("auth.token_sha256"), "{message}");
    assert!(message.contains("aries-image hash-token"), "{message}");
}

#[actix_web::test]
async fn disabled_auth_accepts_anonymous() {
    let database = TestDatabase::create(Backend::Sqlite);
    let mut settings = test_settings(&database.url);
    settings.auth.enabled = false;
    let app = start(settings, database).await;
    app.database
        .insert_image(1, "one", "image one", "2024-01-01 00:00:00");

    let response = app.get_anonymous("/aries/api/v1/image/1").await;

    assert_eq!(response.status(), 200);
}
