//! Unusual and hostile requests: each gets a deliberate JSON answer.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::backend_tests;
use crate::helpers::{Backend, TOKEN, TestApp, error_body, spawn_app};

backend_tests!(
    percent_encoded_ids,
    query_string_ignored,
    long_path_rejected,
    non_utf8_path_rejected,
    too_many_headers_rejected,
);

async fn app_with_image(backend: Backend) -> TestApp {
    let app = spawn_app(backend).await;
    app.database
        .insert_image(1, "one", "image one", "2024-01-01 00:00:00");
    app
}

async fn percent_encoded_ids(backend: Backend) {
    let app = app_with_image(backend).await;

    // %31 is the digit 1: RFC 3986 makes an encoded unreserved character
    // equal to the character itself, so it names image 1.
    assert_eq!(app.get_image("%31").await.status(), 200);
    for raw_id in ["%2F", "1%2F", "%00", "1%00", "%FF", "%C0%AF", "%25"] {
        let response = app.get_image(raw_id).await;

        assert_eq!(response.status(), 400, "id {raw_id}");
        assert_eq!(error_body(response).await["code"], "InvalidParameter");
    }
}

async fn query_string_ignored(backend: Backend) {
    let app = app_with_image(backend).await;

    for query in ["?x=1", "?id=2", "?", "?%FF=%00"] {
        let response = app.get_image(&format!("1{query}")).await;

        assert_eq!(response.status(), 200, "query {query}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["id"], 1);
    }
}

async fn long_path_rejected(backend: Backend) {
    let app = app_with_image(backend).await;

    let long_id = "9".repeat(10_000);
    let response = app.get_image(&long_id).await;

    assert_eq!(response.status(), 400);
    assert_eq!(error_body(response).await["code"], "InvalidParameter");
    let long_route = app.get(&format!("/{}", "a".repeat(10_000))).await;
    assert_eq!(long_route.status(), 404);
    assert_eq!(error_body(long_route).await["code"], "ResourceNotFound");
}

async fn non_utf8_path_rejected(backend: Backend) {
    let app = app_with_image(backend).await;
    let mut request = b"GET /aries/api/v1/image/1\xff\xfe HTTP/1.1\r\nHost: x\r\n".to_vec();
    request.extend_from_slice(format!("Authorization: Bearer {TOKEN}\r\n").as_bytes());
    request.extend_from_slice(b"Connection: close\r\n\r\n");

    let response = actix_web::rt::task::spawn_blocking({
        let app_address = app.address.clone();
        move || {
            let probe = TestAppAddress(app_address);
            probe.send(&request)
        }
    })
    .await
    .unwrap();

    // NOTE: actix-http rejects a malformed request head before routing, with
    // an empty body and no Content-Type, so this 400 is not in the JSON shape.
    let status_line = response.lines().next().unwrap_or_default().to_owned();
    assert!(
        status_line.starts_with("HTTP/1.1 400"),
        "status: {status_line}\n{response}"
    );
    assert!(
        !response.to_lowercase().contains("text/plain"),
        "{response}"
    );
    assert_eq!(app.get_image("1").await.status(), 200);
}

async fn too_many_headers_rejected(backend: Backend) {
    let app = app_with_image(backend).await;
    let mut request = app
        .client
        .get(format!("{}/aries/api/v1/image/1", app.address))
        .bearer_auth(TOKEN);
    for index in 0..120 {
        request = request.header(format!("x-extra-{index}"), "v");
    }

    let response = request.send().await.unwrap();

    // actix-http accepts at most 96 headers and returns 431 before routing,
    // with an empty body, like the malformed head above.
    assert_eq!(response.status(), 431);
    // The service closes that connection, so the next request uses a new client.
    let after = crate::helpers::http_client()
        .get(format!("{}/aries/api/v1/image/1", app.address))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 200);
}

/// The address of a running service, for sending raw bytes that no HTTP
/// client library would send, from a blocking thread.
struct TestAppAddress(String);

impl TestAppAddress {
    fn send(&self, request: &[u8]) -> String {
        let address = self.0.trim_start_matches("http://");
        let mut stream = TcpStream::connect(address).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream.write_all(request).unwrap();
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response);
        String::from_utf8_lossy(&response).into_owned()
    }
}
