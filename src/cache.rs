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
use moka::ops::compute::{CompResult, Op};
use sha2::{Digest, Sha256};

use crate::config::CacheSettings;
use crate::db::{self, DatabaseHealth, DbError, DbPool, ImageRow};
use crate::http::ImageId;
use crate::metrics::Metrics;
use crate::record::ImageRecord;

/// Memory of one entry besides its body: the key, the `Arc`, the header
/// values and moka's bookkeeping. `make bench` measured about 950 bytes per
/// entry beyond the body (100,000 entries of 226-byte bodies grew the process
/// by 1,183 bytes each, release build, x86_64); rounded up.
// NOTE: measured for one body size and allocator; other workloads can differ.
pub const ENTRY_OVERHEAD_BYTES: u32 = 1024;

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
    #[error("the database is not prepared yet")]
    NotReady,
    /// "Not found" while `missing_ttl_s` is 0: returned as an error only so
    /// that moka shares it with the waiters without storing it.
    #[error("no image has this id")]
    NotCached,
}

/// A stored lookup and the end of its time to live. A found image stays in
/// the cache for `max_stale_s` longer, to be served while the database fails.
#[derive(Debug, Clone)]
struct CacheEntry {
    lookup: Lookup,
    fresh_until: Instant,
}

/// Lifetimes of cache entries.
#[derive(Debug, Clone, Copy)]
struct Lifetimes {
    found: Duration,
    missing: Duration,
    max_stale: Duration,
}

impl Lifetimes {
    fn entry(&self, lookup: Lookup) -> CacheEntry {
        let ttl = match lookup {
            Lookup::Found(_) => self.found,
            Lookup::Missing => self.missing,
        };
        CacheEntry {
            lookup,
            fresh_until: Instant::now() + ttl,
        }
    }
}

impl Expiry<i64, CacheEntry> for Lifetimes {
    fn expire_after_create(&self, _: &i64, entry: &CacheEntry, _: Instant) -> Option<Duration> {
        match entry.lookup {
            Lookup::Found(_) => Some(self.found + self.max_stale),
            Lookup::Missing => Some(self.missing),
        }
    }

    fn expire_after_update(
        &self,
        id: &i64,
        entry: &CacheEntry,
        updated_at: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        self.expire_after_create(id, entry, updated_at)
    }
}

/// Finds images in the cache, or in the database on a miss.
#[derive(Clone)]
pub struct ImageStore {
    /// `None` when the cache is disabled (`cache.ttl_s = 0`).
    cache: Option<Cache<i64, CacheEntry>>,
    lifetimes: Lifetimes,
    pool: DbPool,
    health: Arc<DatabaseHealth>,
    metrics: Metrics,
}

impl ImageStore {
    pub fn new(
        settings: &CacheSettings,
        pool: DbPool,
        health: Arc<DatabaseHealth>,
        metrics: Metrics,
    ) -> Self {
        let lifetimes = Lifetimes {
            found: Duration::from_secs(settings.ttl_s),
            missing: Duration::from_secs(settings.missing_ttl_s),
            max_stale: Duration::from_secs(settings.max_stale_s),
        };
        let enabled = settings.ttl_s > 0 && settings.max_bytes > 0;
        let cache = enabled.then(|| {
            let removals = metrics.clone();
            Cache::builder()
                .max_capacity(settings.max_bytes)
                .weigher(|_id: &i64, entry: &CacheEntry| match &entry.lookup {
                    Lookup::Found(image) => u32::try_from(image.body.len())
                        .unwrap_or(u32::MAX)
                        .saturating_add(ENTRY_OVERHEAD_BYTES),
                    Lookup::Missing => ENTRY_OVERHEAD_BYTES,
                })
                .expire_after(lifetimes)
                .eviction_listener(move |_id, _entry, cause| {
                    removals.count_cache_removal(removal_cause_label(cause));
                })
                .build()
        });
        Self {
            cache,
            lifetimes,
            pool,
            health,
            metrics,
        }
    }

    pub fn pool(&self) -> &DbPool {
        &self.pool
    }

    /// Returns the cached or loaded lookup for `id`.
    ///
    /// Concurrent misses for one id wait for a single database query, and
    /// its error reaches every waiter without being cached. A "not found"
    /// is cached for `missing_ttl_s` unless that is 0. An image past its
    /// time to live is read again, but while the database fails it is
    /// served as it is, for up to `max_stale_s`.
    pub async fn get(&self, id: ImageId) -> Result<Lookup, Arc<LookupError>> {
        // Until the migrations ran and the change detector started, nothing
        // may be cached, or a change made meanwhile would go unseen.
        if !self.health.is_prepared() {
            return Err(Arc::new(LookupError::NotReady));
        }
        let Some(cache) = &self.cache else {
            self.metrics.cache_misses.inc();
            return self.load(id).await.map_err(Arc::new);
        };
        match cache.get(&id.get()).await {
            Some(entry) if entry.fresh_until > Instant::now() => {
                match entry.lookup {
                    Lookup::Found(_) => self.metrics.cache_hits.inc(),
                    Lookup::Missing => self.metrics.cache_missing_hits.inc(),
                }
                Ok(entry.lookup)
            }
            Some(stale) => self.refresh(cache, id, stale).await,
            None => {
                self.metrics.cache_misses.inc();
                self.load_missing_entry(cache, id).await
            }
        }
    }

    /// Loads an id that has no entry. moka's `try_get_with` runs one load
    /// for all concurrent callers and shares its result or error.
    async fn load_missing_entry(
        &self,
        cache: &Cache<i64, CacheEntry>,
        id: ImageId,
    ) -> Result<Lookup, Arc<LookupError>> {
        let loaded_here = AtomicBool::new(false);
        let load = async {
            loaded_here.store(true, Ordering::Relaxed);
            match self.load(id).await? {
                Lookup::Missing if self.lifetimes.missing.is_zero() => Err(LookupError::NotCached),
                lookup => Ok(self.lifetimes.entry(lookup)),
            }
        };
        let result = cache.try_get_with(id.get(), load).await;
        if !loaded_here.load(Ordering::Relaxed) {
            self.metrics.cache_loads_coalesced.inc();
        }
        match result {
            Ok(entry) => Ok(entry.lookup),
            Err(error) if matches!(*error, LookupError::NotCached) => Ok(Lookup::Missing),
            Err(error) => Err(error),
        }
    }

    /// Reads a stale image again, or serves it stale while the database is
    /// failing. moka runs compute operations on one key one after another,
    /// so concurrent callers make one query: the later ones find the entry
    /// fresh, or find the database marked unavailable, and query nothing.
    async fn refresh(
        &self,
        cache: &Cache<i64, CacheEntry>,
        id: ImageId,
        stale: CacheEntry,
    ) -> Result<Lookup, Arc<LookupError>> {
        let Lookup::Found(_) = stale.lookup else {
            // Missing entries expire at their time to live and are never stale.
            self.metrics.cache_misses.inc();
            return self.load_missing_entry(cache, id).await;
        };
        if !self.health.is_available() {
            self.metrics.cache_stale_hits.inc();
            return Ok(stale.lookup);
        }
        self.metrics.cache_misses.inc();

        let computed = cache
            .entry(id.get())
            .and_try_compute_with(|current| async move {
                if let Some(current) = current {
                    let current = current.into_value();
                    if current.fresh_until > Instant::now() || !self.health.is_available() {
                        return Ok(Op::Nop);
                    }
                }
                match self.load(id).await? {
                    Lookup::Missing if self.lifetimes.missing.is_zero() => Ok(Op::Remove),
                    lookup => Ok(Op::Put(self.lifetimes.entry(lookup))),
                }
            })
            .await;

        match computed {
            Ok(CompResult::Inserted(entry))
            | Ok(CompResult::ReplacedWith(entry))
            | Ok(CompResult::Unchanged(entry)) => {
                let entry = entry.into_value();
                if entry.fresh_until <= Instant::now() {
                    self.metrics.cache_stale_hits.inc();
                }
                Ok(entry.lookup)
            }
            // The row is gone and "not found" is not cached.
            Ok(CompResult::Removed(_)) | Ok(CompResult::StillNone(_)) => Ok(Lookup::Missing),
            Err(error) => {
                let error: LookupError = error;
                log::warn!("image {id}: refresh failed, serving the stale entry: {error}");
                self.metrics.cache_stale_hits.inc();
                Ok(stale.lookup)
            }
        }
    }

    /// Removes the entry of `id`, found or missing, so that the next request
    /// reads the row again.
    pub async fn invalidate(&self, id: i64) {
        if let Some(cache) = &self.cache {
            cache.invalidate(&id).await;
        }
    }

    /// Removes every entry.
    pub fn invalidate_all(&self) {
        if let Some(cache) = &self.cache {
            cache.invalidate_all();
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
            let mut row = db::find_image(&mut connection, id.get());
            if row.as_ref().is_err_and(DbError::is_database_failure) {
                // The connection may have been closed by the server since its
                // last ping; retry once after making the pool ping them all.
                pool.revalidate_all();
                drop(connection);
                connection = pool.get()?;
                row = db::find_image(&mut connection, id.get());
            }
            Ok::<_, DbError>((row, started.elapsed()))
        })
        .await
        .map_err(|_| LookupError::Blocking)?;

        let (row, elapsed) = match outcome {
            Ok(timed) => timed,
            Err(error) => {
                self.metrics.db_queries_failed.inc();
                self.health.record_failure();
                return Err(LookupError::Database(error));
            }
        };
        self.metrics.observe_query(elapsed);
        match &row {
            Err(error) if error.is_database_failure() => self.health.record_failure(),
            Err(_) => {}
            Ok(_) => self.health.record_success(),
        }
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
