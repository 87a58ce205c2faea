//! The image cache: ready-to-send response bodies keyed by image id, in
//! front of the database.

use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use bytes::Bytes;
use moka::future::Cache;

use crate::config::CacheSettings;
use crate::db::{self, DbError, DbPool};
use crate::http::ImageId;
use crate::metrics::Metrics;
use crate::record::ImageRecord;

/// Estimated memory of one entry besides its body: the key, the `Arc`, the
/// `Bytes` header and moka's bookkeeping.
// NOTE: an estimate from the sizes of those types, not a measurement; the
// resident memory of a full cache can exceed `max_bytes` by this margin.
pub const ENTRY_OVERHEAD_BYTES: u32 = 160;

/// A cached image: the serialized JSON body, built once when it is loaded.
#[derive(Debug)]
pub struct CachedImage {
    pub body: Bytes,
}

#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error("no image has id {0}")]
    NotFound(ImageId),
    #[error(transparent)]
    Database(#[from] DbError),
    #[error("the blocking thread pool is unavailable")]
    Blocking,
}

/// Finds images in the cache, or in the database on a miss.
#[derive(Clone)]
pub struct ImageStore {
    /// `None` when the cache is disabled (`cache.ttl_s = 0`).
    cache: Option<Cache<i64, Arc<CachedImage>>>,
    pool: DbPool,
    metrics: Metrics,
}

impl ImageStore {
    pub fn new(settings: &CacheSettings, pool: DbPool, metrics: Metrics) -> Self {
        let cache = (settings.ttl_s > 0 && settings.max_bytes > 0).then(|| {
            Cache::builder()
                .max_capacity(settings.max_bytes)
                .weigher(|_id: &i64, image: &Arc<CachedImage>| {
                    let body = u32::try_from(image.body.len()).unwrap_or(u32::MAX);
                    body.saturating_add(ENTRY_OVERHEAD_BYTES)
                })
                .time_to_live(Duration::from_secs(settings.ttl_s))
                .build()
        });
        Self {
            cache,
            pool,
            metrics,
        }
    }

    pub fn pool(&self) -> &DbPool {
        &self.pool
    }

    /// Returns the image with `id`. Concurrent misses for one id wait for a
    /// single database query (moka's `try_get_with`); errors, including
    /// "not found", are returned to every waiter and are not cached.
    pub async fn get(&self, id: ImageId) -> Result<Arc<CachedImage>, Arc<LookupError>> {
        let Some(cache) = &self.cache else {
            self.metrics.cache_misses.inc();
            return self.load(id).await.map_err(Arc::new);
        };
        if let Some(image) = cache.get(&id.get()).await {
            self.metrics.cache_hits.inc();
            return Ok(image);
        }
        self.metrics.cache_misses.inc();
        cache.try_get_with(id.get(), self.load(id)).await
    }

    async fn load(&self, id: ImageId) -> Result<Arc<CachedImage>, LookupError> {
        let pool = self.pool.clone();
        // diesel and r2d2 block the calling thread, for up to the checkout
        // timeout when the pool is exhausted, so the query runs on actix's
        // blocking thread pool and the async workers keep serving hits.
        let outcome = web::block(move || {
            let mut connection = pool.get()?;
            db::find_image(&mut connection, id.get())
        })
        .await
        .map_err(|_| LookupError::Blocking)?;

        match outcome {
            Ok(Some(row)) => {
                self.metrics.db_queries_found.inc();
                let body = serde_json::to_vec(&ImageRecord::from(row))
                    .expect("an ImageRecord of strings and an integer always serializes");
                Ok(Arc::new(CachedImage {
                    body: Bytes::from(body),
                }))
            }
            Ok(None) => {
                self.metrics.db_queries_not_found.inc();
                Err(LookupError::NotFound(id))
            }
            Err(error) => {
                self.metrics.db_queries_failed.inc();
                Err(LookupError::Database(error))
            }
        }
    }
}
