//! HTTPS with a self-signed certificate generated for the test.

use std::time::Duration;

use aries_image::startup::Application;

use crate::helpers::{Backend, TOKEN, TestDatabase, test_settings};

#[actix_web::test]
async fn https_serves_images() {
    crate::helpers::http_client();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let directory = tempfile::tempdir().unwrap();
    let cert_path = directory.path().join("cert.pem");
    let key_path = directory.path().join("key.pem");
    std::fs::write(&cert_path, certified.cert.pem()).unwrap();
    std::fs::write(&key_path, certified.signing_key.serialize_pem()).unwrap();

    let database = TestDatabase::create(Backend::Sqlite);
    let mut settings = test_settings(&database.url);
    settings.server.tls_cert_path = cert_path;
    settings.server.tls_key_path = key_path;
    let application = Application::build(settings).await.unwrap();
    let port = application.port();
    let handle = application.handle();
    actix_web::rt::spawn(application.run_until_stopped());

    let client = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(certified.cert.pem().as_bytes()).unwrap(),
        )
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let readiness = format!("https://localhost:{port}/readyz");
    let mut ready = false;
    for _ in 0..200 {
        let answer = client.get(&readiness).send().await;
        if answer.is_ok_and(|response| response.status() == 200) {
            ready = true;
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "the HTTPS service was not ready within 10 s");
    database.insert_image(1, "one", "image one", "2024-01-01 00:00:00");

    let response = client
        .get(format!("https://localhost:{port}/aries/api/v1/image/1"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["name"], "one");

    let plain = crate::helpers::http_client()
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(
        plain.map_or(true, |response| !response.status().is_success()),
        "plain HTTP was served on the TLS port"
    );
    handle.stop(false).await;
}

#[actix_web::test]
async fn tls_needs_both_paths() {
    let database = TestDatabase::create(Backend::Sqlite);
    let mut settings = test_settings(&database.url);
    settings.server.tls_cert_path = "cert.pem".into();

    let error = Application::build(settings)
        .await
        .err()
        .expect("the start fails");

    assert!(format!("{error:#}").contains("tls_key_path"), "{error:#}");
}
