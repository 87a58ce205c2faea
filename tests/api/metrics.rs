//! The Prometheus endpoint: valid text format and no image data.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::backend_tests;
use crate::helpers::{Backend, spawn_app};

backend_tests!(
    metrics_pass_promtool,
    metrics_count_requests,
    unknown_methods_bounded,
);

/// Whether promtool (Debian package `prometheus`) can run. Without it the
/// check is skipped with a notice, unless `ARIES_TEST_REQUIRE_TOOLS=1` (set
/// by `make test`) makes that a failure.
fn promtool_available() -> bool {
    let found = Command::new("promtool")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !found {
        assert!(
            std::env::var("ARIES_TEST_REQUIRE_TOOLS").as_deref() != Ok("1"),
            "ARIES_TEST_REQUIRE_TOOLS=1 but promtool is not installed"
        );
        let _ = writeln!(
            std::io::stderr(),
            "NOTICE: promtool check skipped because promtool is not installed \
             (apt-get install prometheus)"
        );
    }
    found
}

async fn metrics_pass_promtool(backend: Backend) {
    if !promtool_available() {
        return;
    }
    let app = spawn_app(backend).await;
    app.database
        .insert_image(1, "one", "image one", "2024-01-01 00:00:00");
    // Requests that give every metric family at least one sample.
    for path in ["1", "1", "2", "x"] {
        app.get_image(path).await;
    }
    let text = app.get_anonymous("/metrics").await.text().await.unwrap();

    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool starts");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = promtool.wait_with_output().unwrap();

    assert!(
        output.status.success(),
        "promtool rejected the metrics:\n{}{}\n{text}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        !text.contains("/secret/images"),
        "image data in the metrics"
    );
}

async fn metrics_count_requests(backend: Backend) {
    let app = spawn_app(backend).await;
    app.database
        .insert_image(1, "one", "image one", "2024-01-01 00:00:00");
    for path in ["1", "1", "1", "2", "x"] {
        app.get_image(path).await;
    }

    let sample = |status: &str| {
        format!("aries_http_requests_total{{method=\"GET\",route=\"image\",status=\"{status}\"}}")
    };
    assert_eq!(app.metric(&sample("200")).await, 3.0);
    assert_eq!(app.metric(&sample("404")).await, 1.0);
    assert_eq!(app.metric(&sample("400")).await, 1.0);
    assert_eq!(app.metric("aries_cache_entries").await, 2.0);
    assert!(app.metric("aries_cache_weighted_bytes").await > 256.0);
    assert_eq!(
        app.metric("aries_db_query_duration_seconds_count").await,
        2.0
    );
    assert_eq!(
        app.metric("aries_db_pool_connections{state=\"in_use\"}")
            .await,
        0.0
    );
}

async fn unknown_methods_bounded(backend: Backend) {
    let app = spawn_app(backend).await;
    for index in 0..50 {
        let method = reqwest::Method::from_bytes(format!("X{index:0>200}").as_bytes()).unwrap();
        let response = app
            .client
            .request(method, format!("{}/healthz", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 405);
        let body = crate::helpers::error_body(response).await;
        assert!(body["detail"].as_str().unwrap().len() < 120, "{body}");
    }

    let text = app.get_anonymous("/metrics").await.text().await.unwrap();

    assert!(!text.contains("X0000"), "a custom method became a label");
    let sample = "aries_http_requests_total{method=\"other\",route=\"healthz\",status=\"405\"}";
    assert_eq!(app.metric(sample).await, 50.0);
    let head = app
        .client
        .head(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
}
