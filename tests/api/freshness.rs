//! Change detection: writes by other services reach the cache within the
//! poll interval plus one second.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use futures_util::future::join_all;

use crate::backend_tests;
use crate::helpers::{
    Backend, TOKEN, TestApp, TestDatabase, http_client, mariadb_available, service_command,
    spawn_app, start, test_settings, wait_for_ready_address,
};
use crate::mariadb::MariadbServer;

/// The default poll interval plus one second.
const BOUND: Duration = Duration::from_secs(2);

backend_tests!(writer_changes_seen_in_time, detection_cost_constant);

/// Polls `raw_id` until `accept` holds for its status and body; returns the
/// time that took, or panics after `limit`.
async fn wait_for(
    app: &TestApp,
    raw_id: &str,
    limit: Duration,
    accept: impl Fn(u16, &serde_json::Value) -> bool,
) -> Duration {
    let started = Instant::now();
    loop {
        let response = app.get_image(raw_id).await;
        let status = response.status().as_u16();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        if accept(status, &body) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "image {raw_id} still {status} {body} after {limit:?}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the detector has read every change made so far: one poll
/// interval and some margin.
async fn settle() {
    actix_web::rt::time::sleep(Duration::from_millis(1500)).await;
}

async fn writer_changes_seen_in_time(backend: Backend) {
    let app = spawn_app(backend).await;
    let database = &app.database;
    database.insert_image(1, "one", "before", "2024-01-01 00:00:00");
    database.insert_image(2, "two", "to delete", "2024-01-01 00:00:00");
    settle().await;
    assert_eq!(app.get_image("1").await.status(), 200);
    assert_eq!(app.get_image("2").await.status(), 200);
    assert_eq!(app.get_image("3").await.status(), 404);

    // An update that leaves updated_at alone, a delete, and an insert of an
    // id cached as missing.
    let (session, keep_time) = match backend {
        Backend::Mariadb => ("SET time_zone = '+00:00'; ", ", updated_at = updated_at"),
        Backend::Sqlite => ("", ""),
    };
    database.execute(&format!(
        "{session}UPDATE images SET description = 'after'{keep_time} WHERE id = 1"
    ));
    database.execute("DELETE FROM images WHERE id = 2");
    database.insert_image(3, "three", "new", "2024-01-01 00:00:00");

    let updated = wait_for(&app, "1", BOUND, |status, body| {
        status == 200 && body["description"] == "after"
    })
    .await;
    let deleted = wait_for(&app, "2", BOUND, |status, _| status == 404).await;
    let inserted = wait_for(&app, "3", BOUND, |status, _| status == 200).await;

    assert!(updated <= BOUND, "update seen after {updated:?}");
    assert!(deleted <= BOUND, "delete seen after {deleted:?}");
    assert!(inserted <= BOUND, "insert seen after {inserted:?}");
}

async fn detection_cost_constant(backend: Backend) {
    let app = spawn_app(backend).await;
    let recursion = "WITH RECURSIVE numbers(n) AS \
                     (SELECT 1 UNION ALL SELECT n + 1 FROM numbers WHERE n < 10000)";
    let select = "SELECT n, CONCAT('image-', n), 'linux', 'TestOS', 'd', '/secret/images/x.iso' \
                  FROM numbers";
    let insert = "INSERT INTO images (id, name, os_type, os_name, description, source_path)";
    let sql = match backend {
        Backend::Mariadb => {
            format!("SET SESSION max_recursive_iterations = 100000; {insert} {recursion} {select}")
        }
        Backend::Sqlite => format!(
            "{recursion} {insert} {}",
            select.replace("CONCAT('image-', n)", "'image-' || n")
        ),
    };
    app.database.execute(&sql);
    settle().await;

    for chunk in (1..=10_000).collect::<Vec<i64>>().chunks(100) {
        let requests = chunk.iter().map(|id| app.get_image_owned(id.to_string()));
        for response in join_all(requests).await {
            assert_eq!(response.status(), 200);
        }
    }
    assert_eq!(app.metric("aries_cache_entries").await, 10_000.0);

    let before = app.metric("aries_change_queries_total").await;
    actix_web::rt::time::sleep(Duration::from_millis(3100)).await;
    let after = app.metric("aries_change_queries_total").await;

    // One query per 1 s poll, whatever the number of cached ids.
    let queries = after - before;
    assert!((2.0..=4.0).contains(&queries), "{queries} queries in 3.1 s");
}

fn spawn_service(database_url: &str) -> (Child, String) {
    let (mut command, address) = service_command(database_url, "warn");
    let child = command
        .env("ARIES__SERVER__WORKERS", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the service binary starts");
    (child, address)
}

async fn description_of(address: &str, id: i64) -> Option<String> {
    let response = http_client()
        .get(format!("{address}/aries/api/v1/image/{id}"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .ok()?;
    let body: serde_json::Value = response.json().await.ok()?;
    body["description"].as_str().map(str::to_owned)
}

/// Two service processes on one database both serve a change in time.
#[actix_web::test]
async fn two_processes_see_changes() {
    if !mariadb_available() {
        return;
    }
    let database = TestDatabase::create(Backend::Mariadb);
    let (mut first, first_address) = spawn_service(&database.url);
    let (mut second, second_address) = spawn_service(&database.url);
    for address in [&first_address, &second_address] {
        wait_for_ready_address(address, Duration::from_secs(20)).await;
    }
    database.insert_image(1, "one", "before", "2024-01-01 00:00:00");
    actix_web::rt::time::sleep(Duration::from_millis(1500)).await;
    for address in [&first_address, &second_address] {
        assert_eq!(description_of(address, 1).await.as_deref(), Some("before"));
    }

    database.execute("UPDATE images SET description = 'after' WHERE id = 1");
    let changed = Instant::now();
    for address in [&first_address, &second_address] {
        while description_of(address, 1).await.as_deref() != Some("after") {
            assert!(
                changed.elapsed() < BOUND,
                "{address} still serves the old row"
            );
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
    }

    for child in [&mut first, &mut second] {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// A change committed just before MariaDB stops is served after it restarts.
#[actix_web::test]
async fn change_survives_database_restart() {
    if !mariadb_available() {
        return;
    }
    let mut server = MariadbServer::start_new();
    let settings = test_settings(&server.url());
    let app = start(settings, TestDatabase::create(Backend::Sqlite)).await;
    let writer = TestDatabase::external(Backend::Mariadb, server.url());
    writer.insert_image(1, "one", "before", "2024-01-01 00:00:00");
    actix_web::rt::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(app.get_image("1").await.status(), 200);

    writer.execute("UPDATE images SET description = 'after' WHERE id = 1");
    server.stop();
    actix_web::rt::time::sleep(Duration::from_millis(2000)).await;
    // The cached row is still fresh by its time to live, so it is served.
    assert_eq!(app.get_image("1").await.status(), 200);

    server.start();
    wait_for(&app, "1", Duration::from_secs(15), |status, body| {
        status == 200 && body["description"] == "after"
    })
    .await;
}
