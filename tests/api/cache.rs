//! The image cache: hits skip the database, misses are coalesced, entries
//! expire, and failures are not cached.

use std::time::Duration;

use futures_util::future::join_all;

use crate::backend_tests;
use crate::helpers::{Backend, spawn_app, spawn_app_with};

backend_tests!(
    hit_skips_database,
    expiry_rereads_row,
    concurrent_misses_coalesced,
    not_found_not_cached,
    not_found_cached_until_expiry,
    concurrent_missing_coalesced,
    database_error_not_cached,
    disabled_cache_reads_database,
);

async fn hit_skips_database(backend: Backend) {
    // Without change detection, which would remove the entry on the delete.
    let app = spawn_app_with(backend, |settings| settings.changes.enabled = false).await;
    app.database
        .insert_image(1, "one", "image one", "2024-01-01 00:00:00");
    assert_eq!(app.get_image("1").await.status(), 200);

    // The row is gone, but the cached entry is still served.
    app.database.execute("DELETE FROM images WHERE id = 1");
    for _ in 0..20 {
        let response = app.get_image("1").await;
        assert_eq!(response.status(), 200);
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["name"], "one");
    }

    assert_eq!(app.database_queries().await, 1.0);
    assert_eq!(
        app.metric("aries_cache_lookups_total{result=\"hit\"}")
            .await,
        20.0
    );
}

async fn expiry_rereads_row(backend: Backend) {
    let app = spawn_app_with(backend, |settings| {
        settings.cache.ttl_s = 1;
        settings.changes.enabled = false;
    })
    .await;
    app.database
        .insert_image(1, "before", "image one", "2024-01-01 00:00:00");
    assert_eq!(app.get_image("1").await.status(), 200);
    app.database
        .execute("UPDATE images SET name = 'after' WHERE id = 1");

    let cached: serde_json::Value = app.get_image("1").await.json().await.unwrap();
    assert_eq!(cached["name"], "before");

    actix_web::rt::time::sleep(Duration::from_millis(1500)).await;
    let reread: serde_json::Value = app.get_image("1").await.json().await.unwrap();
    assert_eq!(reread["name"], "after");
    assert_eq!(app.database_queries().await, 2.0);
}

async fn concurrent_misses_coalesced(backend: Backend) {
    let app = spawn_app_with(backend, |settings| settings.pool.max_size = 16).await;
    app.database
        .insert_image(5, "five", "image five", "2024-01-01 00:00:00");

    let requests = (0..256).map(|_| app.get_image("5"));
    let responses = join_all(requests).await;

    for response in &responses {
        assert_eq!(response.status(), 200);
    }
    assert_eq!(app.database_queries().await, 1.0);
}

async fn not_found_not_cached(backend: Backend) {
    let app = spawn_app_with(backend, |settings| settings.cache.missing_ttl_s = 0).await;
    assert_eq!(app.get_image("3").await.status(), 404);

    app.database
        .insert_image(3, "three", "image three", "2024-01-01 00:00:00");

    assert_eq!(app.get_image("3").await.status(), 200);
    assert_eq!(app.database_queries().await, 2.0);
}

async fn database_error_not_cached(backend: Backend) {
    let app = spawn_app(backend).await;
    app.database
        .insert_image(2, "two", "image two", "2024-01-01 00:00:00");
    app.database
        .execute("ALTER TABLE images RENAME TO images_moved");
    assert_eq!(app.get_image("2").await.status(), 500);

    app.database
        .execute("ALTER TABLE images_moved RENAME TO images");

    assert_eq!(app.get_image("2").await.status(), 200);
    assert_eq!(
        app.metric("aries_db_queries_total{outcome=\"error\"}")
            .await,
        1.0
    );
}

async fn disabled_cache_reads_database(backend: Backend) {
    let app = spawn_app_with(backend, |settings| settings.cache.ttl_s = 0).await;
    app.database
        .insert_image(1, "one", "image one", "2024-01-01 00:00:00");

    for _ in 0..3 {
        assert_eq!(app.get_image("1").await.status(), 200);
    }

    assert_eq!(app.database_queries().await, 3.0);
}

async fn not_found_cached_until_expiry(backend: Backend) {
    let app = spawn_app_with(backend, |settings| {
        settings.cache.missing_ttl_s = 1;
        settings.changes.enabled = false;
    })
    .await;
    assert_eq!(app.get_image("3").await.status(), 404);
    app.database
        .insert_image(3, "three", "image three", "2024-01-01 00:00:00");

    // The cached "not found" is returned until it expires, without a query.
    let cached = app.get_image("3").await;
    assert_eq!(cached.status(), 404);
    assert_eq!(
        crate::helpers::error_body(cached).await["code"],
        "ImageNotFound"
    );
    assert_eq!(app.database_queries().await, 1.0);
    assert_eq!(
        app.metric("aries_cache_lookups_total{result=\"missing_hit\"}")
            .await,
        1.0
    );

    actix_web::rt::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(app.get_image("3").await.status(), 200);
    assert_eq!(app.database_queries().await, 2.0);
}

async fn concurrent_missing_coalesced(backend: Backend) {
    let app = spawn_app(backend).await;

    let requests = (0..64).map(|_| app.get_image("8"));
    let responses = join_all(requests).await;

    for response in &responses {
        assert_eq!(response.status(), 404);
    }
    assert_eq!(app.database_queries().await, 1.0);
}
