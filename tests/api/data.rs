//! Stored data comes back unchanged: Unicode text, UTC instants, and rows
//! read through pooled connections that the server has closed.

use crate::backend_tests;
use crate::helpers::{Backend, mariadb_available, spawn_app, spawn_app_with};

backend_tests!(
    chinese_and_emoji_round_trip,
    timestamps_are_utc,
    default_timestamps_are_now,
);

async fn chinese_and_emoji_round_trip(backend: Backend) {
    let app = spawn_app(backend).await;
    let description = "中文描述：基础镜像 🐧🚀 — ünïcödé";
    app.database
        .insert_image(1, "镜像-🐧", description, "2024-01-01 00:00:00");

    let body: serde_json::Value = app.get_image("1").await.json().await.unwrap();

    assert_eq!(body["name"], "镜像-🐧");
    assert_eq!(body["description"], description);
}

async fn timestamps_are_utc(backend: Backend) {
    let app = spawn_app(backend).await;
    // The writer's session runs at +08:00 on MariaDB, so 18:30 there is
    // 10:30 UTC. SQLite has no time zones and stores UTC text.
    let (session, local_time) = match backend {
        Backend::Mariadb => ("SET time_zone = '+08:00'; ", "2024-03-20 18:30:00"),
        Backend::Sqlite => ("", "2024-03-20 10:30:00"),
    };
    app.database.execute(&format!(
        "{session}INSERT INTO images (id, name, os_type, os_name, description, source_path, \
         created_at, updated_at) VALUES (1, 'tz', 'linux', 'TestOS', 'd', '/p', \
         '{local_time}', '{local_time}')"
    ));

    let body: serde_json::Value = app.get_image("1").await.json().await.unwrap();

    assert_eq!(body["created_at"], "2024-03-20T10:30:00Z");
    assert_eq!(body["updated_at"], "2024-03-20T10:30:00Z");
}

async fn default_timestamps_are_now(backend: Backend) {
    let app = spawn_app(backend).await;
    // The database fills both columns with its current time, in the
    // server's time zone (+05:30 under `make test`) on MariaDB.
    app.database.execute(
        "INSERT INTO images (id, name, os_type, os_name, description, source_path) \
         VALUES (1, 'now', 'linux', 'TestOS', 'd', '/p')",
    );

    let body: serde_json::Value = app.get_image("1").await.json().await.unwrap();

    for field in ["created_at", "updated_at"] {
        let text = body[field].as_str().unwrap();
        assert!(text.ends_with('Z'), "{field} = {text}");
        let instant = chrono::DateTime::parse_from_rfc3339(text).unwrap();
        let offset = chrono::Utc::now().signed_duration_since(instant);
        assert!(
            offset.num_seconds().abs() < 120,
            "{field} = {text} is off by {offset}"
        );
    }
}

/// Connections that the server closed while idle (wait_timeout, KILL or a
/// restart) are replaced before a request uses them.
#[actix_web::test]
async fn killed_connections_replaced() {
    if !mariadb_available() {
        return;
    }
    let app = spawn_app_with(Backend::Mariadb, |settings| {
        settings.pool.min_idle = 4;
        settings.pool.max_size = 4;
    })
    .await;
    app.database
        .insert_image(1, "one", "image one", "2024-01-01 00:00:00");
    app.database
        .insert_image(2, "two", "image two", "2024-01-01 00:00:00");
    assert_eq!(app.get_image("1").await.status(), 200);

    let killed = app.database.kill_other_connections();
    assert!(killed >= 1, "the service had no open connection to kill");

    let response = app.get_image("2").await;

    assert_eq!(response.status(), 200);
    assert_eq!(
        app.metric("aries_db_queries_total{outcome=\"error\"}")
            .await,
        0.0
    );
}
