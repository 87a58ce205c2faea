//! Database faults: outages, restarts, a database that appears late, and a
//! pool exhausted by slow queries. The outage tests run their own MariaDB
//! server, which they stop and start.

use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use futures_util::future::join_all;

use crate::backend_tests;
use crate::helpers::{
    Backend, TestApp, TestDatabase, mariadb_available, spawn_app, spawn_app_with, start,
    start_unready, test_settings,
};
use crate::mariadb::{MariadbServer, free_port};

backend_tests!(health_endpoints_answer, stale_served_on_query_errors);

async fn health_endpoints_answer(backend: Backend) {
    let app = spawn_app(backend).await;

    for path in ["/healthz", "/readyz"] {
        let get = app.get_anonymous(path).await;
        assert_eq!(get.status(), 200, "{path}");
        let body: serde_json::Value = get.json().await.unwrap();
        assert!(body["status"].is_string(), "{body}");

        let head = app
            .client
            .head(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(head.status(), 200, "HEAD {path}");
    }
}

/// Query errors, not only outages, let cached images be served stale.
async fn stale_served_on_query_errors(backend: Backend) {
    // Without change detection, which would remove the entry on the insert.
    let app = spawn_app_with(backend, |settings| {
        settings.cache.ttl_s = 1;
        settings.changes.enabled = false;
    })
    .await;
    app.database
        .insert_image(1, "one", "image one", "2024-01-01 00:00:00");
    assert_eq!(app.get_image("1").await.status(), 200);
    app.database
        .execute("ALTER TABLE images RENAME TO images_moved");
    actix_web::rt::time::sleep(Duration::from_millis(1200)).await;

    let stale = app.get_image("1").await;

    assert_eq!(stale.status(), 200);
    let body: serde_json::Value = stale.json().await.unwrap();
    assert_eq!(body["name"], "one");
    assert_eq!(app.get_image("2").await.status(), 500);
    assert!(
        app.metric("aries_cache_lookups_total{result=\"stale\"}")
            .await
            >= 1.0
    );
}

async fn timed_get(app: &TestApp, raw_id: &str) -> (u16, Duration) {
    let started = Instant::now();
    let status = app.get_image(raw_id).await.status().as_u16();
    (status, started.elapsed())
}

fn insert_row(url: &str, id: i64) {
    let mut connection = MysqlConnection::establish(url).expect("the server accepts connections");
    connection
        .batch_execute(&format!(
            "INSERT INTO images (id, name, os_type, os_name, description, source_path) \
             VALUES ({id}, 'image-{id}', 'linux', 'TestOS', 'd', '/secret/images/{id}.iso')"
        ))
        .expect("the row can be inserted");
}

/// MariaDB stops under load: cached ids keep answering 200 past their time
/// to live, other ids fail fast with 500, and after a restart the service
/// recovers by itself.
#[actix_web::test]
async fn outage_served_stale_then_recovers() {
    if !mariadb_available() {
        return;
    }
    let mut server = MariadbServer::start_new();
    let mut settings = test_settings(&server.url());
    settings.cache.ttl_s = 1;
    settings.cache.max_stale_s = 120;
    settings.pool.checkout_timeout_ms = 1000;
    let app = start(settings, TestDatabase::create(Backend::Sqlite)).await;
    for id in 1..=3 {
        insert_row(&server.url(), id);
        assert_eq!(app.get_image(&id.to_string()).await.status(), 200);
    }

    server.stop();
    actix_web::rt::time::sleep(Duration::from_millis(1200)).await;

    // The first request after the outage may wait for one failed checkout;
    // every later one is served stale at once.
    let (first, first_time) = timed_get(&app, "1").await;
    assert_eq!(first, 200);
    assert!(first_time < Duration::from_secs(3), "took {first_time:?}");
    let cached = join_all((0..50).map(|i| timed_get(&app, ["1", "2", "3"][i % 3]))).await;
    for (status, elapsed) in &cached {
        assert_eq!(*status, 200);
        assert!(*elapsed < Duration::from_millis(500), "took {elapsed:?}");
    }
    let (uncached, uncached_time) = timed_get(&app, "4").await;
    assert_eq!(uncached, 500);
    assert!(
        uncached_time < Duration::from_secs(3),
        "took {uncached_time:?}"
    );
    assert_eq!(app.get_anonymous("/readyz").await.status(), 503);
    assert_eq!(app.get_anonymous("/healthz").await.status(), 200);

    server.start();
    insert_row(&server.url(), 4);

    let started = Instant::now();
    loop {
        let (status, _) = timed_get(&app, "4").await;
        if status == 200 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "no recovery within 15 s (last status {status})"
        );
        actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    }
    app.wait_until_ready(Duration::from_secs(5)).await;
}

/// The service starts while the database is down, reports not ready, and
/// applies its migrations once the database appears.
#[actix_web::test]
async fn start_waits_for_database() {
    if !mariadb_available() {
        return;
    }
    let mut server = MariadbServer::install();
    let mut settings = test_settings(&format!("mysql://root@127.0.0.1:{}/aries", server.port));
    settings.pool.checkout_timeout_ms = 500;
    let app = start_unready(settings, TestDatabase::create(Backend::Sqlite)).await;

    assert_eq!(app.get_anonymous("/healthz").await.status(), 200);
    let not_ready = app.get_anonymous("/readyz").await;
    assert_eq!(not_ready.status(), 503);
    let body: serde_json::Value = not_ready.json().await.unwrap();
    assert_eq!(body["status"], "not_ready");
    assert_eq!(app.get_image("1").await.status(), 500);

    server.start();
    server.create_database();
    app.wait_until_ready(Duration::from_secs(30)).await;

    // The migrations ran: the table exists and is empty.
    assert_eq!(app.get_image("1").await.status(), 404);
}

#[actix_web::test]
async fn exit_if_unavailable_fails_start() {
    let url = format!("mysql://root@127.0.0.1:{}/aries", free_port());
    let mut settings = test_settings(&url);
    settings.database.exit_if_unavailable = true;
    settings.pool.checkout_timeout_ms = 300;

    let error = aries_image::startup::Application::build(settings)
        .await
        .err()
        .expect("the service exits");

    let message = format!("{error:#}");
    assert!(
        message.contains("failed to connect to the database"),
        "{message}"
    );
}

/// Queries held by a table lock take every pooled connection: the other
/// requests fail with 500 after the checkout timeout instead of queueing.
#[actix_web::test]
async fn exhausted_pool_fails_fast() {
    if !mariadb_available() {
        return;
    }
    let app = spawn_app_with(Backend::Mariadb, |settings| {
        settings.pool.max_size = 2;
        settings.pool.min_idle = 2;
        settings.pool.checkout_timeout_ms = 500;
    })
    .await;
    for id in 1..=8 {
        app.database
            .insert_image(id, &format!("image-{id}"), "d", "2024-01-01 00:00:00");
    }
    let mut lock = MysqlConnection::establish(&app.database.url).unwrap();
    lock.batch_execute("LOCK TABLES images WRITE").unwrap();

    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(3));
        lock.batch_execute("UNLOCK TABLES").unwrap();
    });
    let results = join_all((1..=8).map(|id| {
        let app = &app;
        async move { timed_get(app, &id.to_string()).await }
    }))
    .await;
    release.join().unwrap();

    let fast_failures = results
        .iter()
        .filter(|(status, elapsed)| *status == 500 && *elapsed < Duration::from_millis(2500))
        .count();
    assert!(fast_failures >= 6, "results: {results:?}");
    let successes = results.iter().filter(|(status, _)| *status == 200).count();
    assert!(successes <= 2, "results: {results:?}");
    assert_eq!(app.get_image("8").await.status(), 200);
}

/// A query blocked by a lock gives up after the statement timeout, so the
/// request fails with 500 and the connection returns to the pool.
#[actix_web::test]
async fn locked_query_times_out() {
    if !mariadb_available() {
        return;
    }
    let app = spawn_app_with(Backend::Mariadb, |settings| {
        settings.pool.statement_timeout_ms = 1000;
    })
    .await;
    app.database
        .insert_image(1, "one", "d", "2024-01-01 00:00:00");
    let mut lock = MysqlConnection::establish(&app.database.url).unwrap();
    lock.batch_execute("LOCK TABLES images WRITE").unwrap();

    let (status, elapsed) = timed_get(&app, "1").await;
    lock.batch_execute("UNLOCK TABLES").unwrap();

    assert_eq!(status, 500);
    assert!(elapsed >= Duration::from_millis(900), "took {elapsed:?}");
    assert!(elapsed < Duration::from_secs(4), "took {elapsed:?}");
    assert_eq!(app.get_image("1").await.status(), 200);
}

/// A row that does not decode (a zero date written with a permissive
/// sql_mode) answers 500 but does not mark the database unavailable, so
/// other images are not served stale because of it.
#[actix_web::test]
async fn bad_row_not_outage() {
    if !mariadb_available() {
        return;
    }
    let app = spawn_app_with(Backend::Mariadb, |settings| {
        settings.cache.ttl_s = 1;
        settings.changes.enabled = false;
    })
    .await;
    app.database
        .insert_image(1, "one", "d", "2024-01-01 00:00:00");
    app.database.execute(
        "SET SESSION sql_mode = ''; \
         INSERT INTO images (id, name, os_type, os_name, description, source_path, \
         created_at, updated_at) VALUES (2, 'zero', 'linux', 'TestOS', 'd', '/p', \
         '0000-00-00 00:00:00', '0000-00-00 00:00:00')",
    );
    assert_eq!(app.get_image("1").await.status(), 200);
    actix_web::rt::time::sleep(Duration::from_millis(1200)).await;

    let bad = app.get_image("2").await;
    assert_eq!(bad.status(), 500);
    app.database
        .execute("UPDATE images SET description = 'fresh' WHERE id = 1");

    let refreshed: serde_json::Value = app.get_image("1").await.json().await.unwrap();
    assert_eq!(refreshed["description"], "fresh");
    assert_eq!(
        app.metric("aries_cache_lookups_total{result=\"stale\"}")
            .await,
        0.0
    );
    assert_eq!(app.get_anonymous("/readyz").await.status(), 200);
}
