//! The image cache: ready-to-send responses keyed by image id, in front of
//! the database. Ids without a row are cached too, with a shorter lifetime.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use actix_web::http::header::{EntityTag, HeaderValue, HttpDate, TryIntoHeaderValue};
use actix_web::web;
use bytes::Bytes;
use chrono::{TimeZone, Utc};
use moka::Expiry;
use moka::future::Cache;
use moka::notification::RemovalCause;
use sha2::{Digest, Sha256};

use crate::config::CacheSettings;
use crate::db::{self, DbError, DbPool, ImageRow};
use crate::http::ImageId;
use crate::metrics::Metrics;
use crate::record::ImageRecord;

/// Estimated memory of one entry besides its body: the key, the `Arc`, the
/// header values and moka's bookkeeping.
// NOTE: an estimate from the sizes of those types, not a measurement; the
// resident memory of a full cache can exceed `max_bytes` by this margin.
pub const ENTRY_OVERHEAD_BYTES: u32 = 256;

/// A cached image: the serialized body and its validators, computed once
/// when the row is read, so that a hit or a 304 does no serialization and
/// no hashing.
#[derive(Debug)]
pub struct CachedImage {
    pub body: Bytes,
    /// Strong entity tag derived from the body alone, so it is the same on
    /// every replica and across restarts.
    pub etag: EntityTag,
    pub etag_header: HeaderValue,
    /// `updated_at`, truncated to whole seconds like HTTP dates.
    pub last_modified: SystemTime,
    pub last_modified_header: HeaderValue,
}

impl CachedImage {
    pub fn from_row(row: ImageRow) -> Self {
        let updated_at = Utc.from_utc_datetime(&row.updated_at).timestamp();
        let last_modified = u64::try_from(updated_at)
            .map(|seconds| SystemTime::UNIX_EPOCH + Duration::from_secs(seconds))
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let body = serde_json::to_vec(&ImageRecord::from(row))
            .expect("an ImageRecord of strings and an integer always serializes");

        // 128 bits of SHA-256 make a collision between two versions of one
        // image practically impossible, and keep the header short.
        let digest = Sha256::digest(&body);
        let etag = EntityTag::new_strong(hex::encode(&digest[..16]));
        let etag_header = HeaderValue::from_str(&etag.to_string())
            .expect("a quoted hex string is a valid header value");
        let last_modified_header = HttpDate::from(last_modified)
            .try_into_value()
            .expect("an HTTP date is a valid header value");

        Self {
            body: Bytes::from(body),
            etag,
            etag_header,
            last_modified,
            last_modified_header,
        }
    }
}

/// A cache entry: the image, or the fact that no row has the id.
#[derive(Debug, Clone)]
pub enum Lookup {
    Found(Arc<CachedImage>),
    Missing,
}

#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error(transparent)]
    Database(#[from] DbError),
    #[error("the blocking thread pool is unavailable")]
    Blocking,
    /// "Not found" while `missing_ttl_s` is 0: returned as an error only so
    /// that moka shares it with the waiters without storing it.
    #[error("no image has this id")]
    NotCached,
}

/// Gives found and missing entries their own time to live.
struct LookupExpiry {
    found: Duration,
    missing: Duration,
}

impl Expiry<i64, Lookup> for LookupExpiry {
    fn expire_after_create(&self, _: &i64, value: &Lookup, _: Instant) -> Option<Duration> {
        match value {
            Lookup::Found(_) => Some(self.found),
            Lookup::Missing => Some(self.missing),
        }
    }
}

/// Finds images in the cache, or in the database on a miss.
#[derive(Clone)]
pub struct ImageStore {
    /// `None` when the cache is disabled (`cache.ttl_s = 0`).
    cache: Option<Cache<i64, Lookup>>,
    cache_missing: bool,
    pool: DbPool,
    metrics: Metrics,
}

impl ImageStore {
    pub fn new(settings: &CacheSettings, pool: DbPool, metrics: Metrics) -> Self {
        let enabled = settings.ttl_s > 0 && settings.max_bytes > 0;
        let cache = enabled.then(|| {
            let evictions = metrics.clone();
            Cache::builder()
                .max_capacity(settings.max_bytes)
                .weigher(|_id: &i64, lookup: &Lookup| match lookup {
                    Lookup::Found(image) => u32::try_from(image.body.len())
                        .unwrap_or(u32::MAX)
                        .saturating_add(ENTRY_OVERHEAD_BYTES),
                    Lookup::Missing => ENTRY_OVERHEAD_BYTES,
                })
                .expire_after(LookupExpiry {
                    found: Duration::from_secs(settings.ttl_s),
                    missing: Duration::from_secs(settings.missing_ttl_s),
                })
                .eviction_listener(move |_id, _lookup, cause| {
                    evictions.count_cache_removal(removal_cause_label(cause));
                })
                .build()
        });
        Self {
            cache,
            cache_missing: settings.missing_ttl_s > 0,
            pool,
            metrics,
        }
    }

    pub fn pool(&self) -> &DbPool {
        &self.pool
    }

    /// Returns the cached or loaded entry for `id`. Concurrent misses for
    /// one id wait for a single database query (moka's `try_get_with`).
    /// Errors reach every waiter and are not cached; "not found" is cached
    /// for `missing_ttl_s` unless that is 0.
    pub async fn get(&self, id: ImageId) -> Result<Lookup, Arc<LookupError>> {
        let Some(cache) = &self.cache else {
            self.metrics.cache_misses.inc();
            return self.load(id).await.map_err(Arc::new);
        };
        if let Some(lookup) = cache.get(&id.get()).await {
            match lookup {
                Lookup::Found(_) => self.metrics.cache_hits.inc(),
                Lookup::Missing => self.metrics.cache_missing_hits.inc(),
            }
            return Ok(lookup);
        }
        self.metrics.cache_misses.inc();

        let loaded_here = AtomicBool::new(false);
        let load = async {
            loaded_here.store(true, Ordering::Relaxed);
            match self.load(id).await {
                Ok(Lookup::Missing) if !self.cache_missing => Err(LookupError::NotCached),
                other => other,
            }
        };
        let result = cache.try_get_with(id.get(), load).await;
        if !loaded_here.load(Ordering::Relaxed) {
            self.metrics.cache_loads_coalesced.inc();
        }
        match result {
            Err(error) if matches!(*error, LookupError::NotCached) => Ok(Lookup::Missing),
            other => other,
        }
    }

    /// Sets the gauges of cache size and pool use, for a metrics scrape.
    pub async fn update_gauges(&self) {
        if let Some(cache) = &self.cache {
            // moka applies inserts and removals to its counts in batches;
            // this applies the pending ones so that the gauges are current.
            cache.run_pending_tasks().await;
            self.metrics
                .set_cache_size(cache.entry_count(), cache.weighted_size());
        }
        let state = self.pool.state();
        self.metrics.set_pool_connections(
            state.connections - state.idle_connections,
            state.idle_connections,
        );
    }

    async fn load(&self, id: ImageId) -> Result<Lookup, LookupError> {
        let pool = self.pool.clone();
        // diesel and r2d2 block the calling thread, for up to the checkout
        // timeout when the pool is exhausted, so the query runs on actix's
        // blocking thread pool and the async workers keep serving hits.
        let outcome = web::block(move || {
            let mut connection = pool.get()?;
            let started = Instant::now();
            let row = db::find_image(&mut connection, id.get());
            Ok::<_, DbError>((row, started.elapsed()))
        })
        .await
        .map_err(|_| LookupError::Blocking)?;

        let (row, elapsed) = match outcome {
            Ok(timed) => timed,
            Err(error) => {
                self.metrics.db_queries_failed.inc();
                return Err(LookupError::Database(error));
            }
        };
        self.metrics.observe_query(elapsed);
        match row {
            Ok(Some(row)) => {
                self.metrics.db_queries_found.inc();
                let image = CachedImage::from_row(row);
                Ok(Lookup::Found(Arc::new(image)))
            }
            Ok(None) => {
                self.metrics.db_queries_not_found.inc();
                Ok(Lookup::Missing)
            }
            Err(error) => {
                self.metrics.db_queries_failed.inc();
                Err(LookupError::Database(error))
            }
        }
    }
}

fn removal_cause_label(cause: RemovalCause) -> &'static str {
    match cause {
        RemovalCause::Expired => "expired",
        RemovalCause::Size => "size",
        RemovalCause::Explicit => "explicit",
        RemovalCause::Replaced => "replaced",
    }
}
