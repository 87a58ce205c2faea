//! Change detection: every `poll_interval_ms` each service process reads the
//! change log that database triggers fill (see migrations/), and removes the
//! changed ids from its cache, "not found" entries included.
//!
//! Guarantee: a change committed while the log keeps it (`retention_s`) is
//! seen by the first poll after its commit, so a client is served the new
//! state within `poll_interval_ms` plus one query, plus the time of the
//! database round trip. Sequence numbers come from the database, not from
//! this process's clock. A transaction may commit after others that got
//! higher numbers; the numbers it skipped are kept as gaps and read again on
//! every poll for up to `gap_timeout_s`, so a transaction that commits later
//! than that after taking its number can be missed until the entry's time
//! to live ends. When the detector falls so far behind that pruned rows are
//! missing, it empties the whole cache.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use actix_web::web;

use crate::cache::ImageStore;
use crate::config::ChangeSettings;
use crate::db::{self, DbError, DbPool};
use crate::log_limit::LogLimiter;
use crate::metrics::Metrics;

/// Changes read per query; a poll that gets this many reads again at once.
const BATCH: i64 = 10_000;
/// Largest jump of sequence numbers tracked as gaps; a larger one (an
/// auto-increment jump or a rollback of a large batch) is not tracked.
const MAX_TRACKED_GAP: i64 = 10_000;
/// Sequence numbers below the highest one, read at start, that may belong
/// to transactions still open then.
const START_WINDOW: i64 = 1_000;

/// Position of the detector in the change log.
#[derive(Debug, Default)]
pub struct Cursor {
    /// Highest sequence number processed; `None` before the first read.
    high: Option<i64>,
    /// Sequence numbers below `high` not seen yet, and when they were noticed.
    gaps: BTreeMap<i64, Instant>,
}

impl Cursor {
    /// Starts after the highest sequence number in the log and treats the
    /// missing numbers of the last `START_WINDOW` as gaps.
    pub fn start(connection: &mut db::DbConnection) -> Result<Self, DbError> {
        let mut cursor = Cursor::default();
        let Some((_, high)) = db::changes::sequence_range(connection)? else {
            cursor.high = Some(0);
            return Ok(cursor);
        };
        let floor = (high - START_WINDOW).max(0);
        cursor.high = Some(floor);
        let recent = db::changes::changes_after(connection, floor, START_WINDOW + 1)?;
        let _ = cursor.apply(&recent, Instant::now());
        Ok(cursor)
    }

    fn high(&self) -> i64 {
        self.high.unwrap_or(0)
    }

    /// The sequence number after which the next read starts: below the
    /// oldest open gap, so that late commits are read too.
    fn read_floor(&self) -> i64 {
        match self.gaps.keys().next() {
            Some(lowest_gap) => lowest_gap - 1,
            None => self.high(),
        }
    }

    /// Processes changes read in order and returns the changed image ids.
    fn apply(&mut self, changes: &[(i64, i64)], now: Instant) -> Vec<i64> {
        let mut changed = Vec::new();
        for &(seq, image_id) in changes {
            let high = self.high();
            if seq > high {
                if seq - high <= MAX_TRACKED_GAP {
                    for missing in high + 1..seq {
                        self.gaps.insert(missing, now);
                    }
                }
                self.high = Some(seq);
                changed.push(image_id);
            } else if self.gaps.remove(&seq).is_some() {
                changed.push(image_id);
            }
        }
        changed
    }

    fn expire_gaps(&mut self, timeout: Duration, now: Instant) {
        self.gaps
            .retain(|_, noticed| now.duration_since(*noticed) < timeout);
    }
}

/// Outcome of one poll, computed on a blocking thread.
struct PollResult {
    cursor: Cursor,
    changed: Vec<i64>,
    /// Changes that the log no longer has were missed.
    lost_changes: bool,
    queries: u64,
}

/// Runs the polls of one service process.
pub struct ChangeDetector {
    pool: DbPool,
    images: ImageStore,
    settings: ChangeSettings,
    metrics: Metrics,
    /// Seconds since the Unix epoch of the last successful poll, shared with
    /// the metrics scrape.
    last_success: Arc<AtomicI64>,
    errors: LogLimiter,
}

impl ChangeDetector {
    pub fn new(
        pool: DbPool,
        images: ImageStore,
        settings: ChangeSettings,
        metrics: Metrics,
    ) -> Self {
        Self {
            pool,
            images,
            settings,
            last_success: metrics.change_last_success.clone(),
            metrics,
            errors: LogLimiter::new(Duration::from_secs(10)),
        }
    }

    /// Polls until `stop` changes. `cursor` was read when the database was
    /// prepared, before any image was cached.
    pub async fn run(self, cursor: Cursor, mut stop: tokio::sync::watch::Receiver<bool>) {
        let interval = Duration::from_millis(self.settings.poll_interval_ms);
        log::info!(
            "change detection: polling every {} ms, gaps kept {} s, log kept {} s",
            self.settings.poll_interval_ms,
            self.settings.gap_timeout_s,
            self.settings.retention_s
        );
        let mut cursor = Some(cursor);
        let mut failed_before = false;
        let mut last_prune = Instant::now();
        loop {
            tokio::select! {
                _ = actix_web::rt::time::sleep(interval) => {}
                _ = stop.changed() => return,
            }
            let Some(current) = cursor.take() else {
                return;
            };
            let check_loss = failed_before;
            match self.poll(current, check_loss).await {
                Ok(result) => {
                    failed_before = false;
                    self.finish_poll(&result).await;
                    cursor = Some(result.cursor);
                }
                Err((previous, error)) => {
                    failed_before = true;
                    self.pool.revalidate_all();
                    self.metrics.change_polls_failed.inc();
                    if let Some(dropped) = self.errors.admit() {
                        log::warn!(
                            "change detection: poll failed: {error}; retrying every {} ms \
                             ({dropped} similar errors not logged since the last one)",
                            self.settings.poll_interval_ms
                        );
                    }
                    cursor = Some(previous);
                }
            }
            if self.settings.retention_s > 0 && last_prune.elapsed() >= Duration::from_secs(60) {
                last_prune = Instant::now();
                self.prune().await;
            }
        }
    }

    async fn finish_poll(&self, result: &PollResult) {
        self.metrics.change_polls_ok.inc();
        self.metrics.change_queries.inc_by(result.queries);
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs() as i64);
        self.last_success.store(now, Ordering::Relaxed);
        if result.lost_changes {
            log::warn!(
                "change detection: the change log no longer has changes made while polls \
                 failed; emptying the image cache"
            );
            self.images.invalidate_all();
        }
        for &id in &result.changed {
            self.images.invalidate(id).await;
        }
        self.metrics
            .change_invalidations
            .inc_by(result.changed.len() as u64);
        if !result.changed.is_empty() {
            log::debug!(
                "change detection: {} changed ids invalidated, sequence {}",
                result.changed.len(),
                result.cursor.high()
            );
        }
    }

    /// Reads every change after the cursor, batch after batch.
    async fn poll(&self, cursor: Cursor, check_loss: bool) -> Result<PollResult, (Cursor, String)> {
        let pool = self.pool.clone();
        let gap_timeout = Duration::from_secs(self.settings.gap_timeout_s);
        let outcome = web::block(move || {
            let mut cursor = cursor;
            let result = read_changes(&pool, &mut cursor, check_loss, gap_timeout);
            (cursor, result)
        })
        .await;
        match outcome {
            Ok((cursor, Ok((changed, lost_changes, queries)))) => Ok(PollResult {
                cursor,
                changed,
                lost_changes,
                queries,
            }),
            Ok((cursor, Err(error))) => Err((cursor, error.to_string())),
            // The blocking pool is gone only during shutdown.
            Err(_) => Err((
                Cursor::default(),
                "the blocking thread pool is unavailable".into(),
            )),
        }
    }

    async fn prune(&self) {
        let pool = self.pool.clone();
        let retention_s = self.settings.retention_s;
        let outcome = web::block(move || {
            let mut connection = pool.get()?;
            db::changes::prune(&mut connection, retention_s)
        })
        .await;
        if let Ok(Err(error)) = outcome {
            if let Some(dropped) = self.errors.admit() {
                log::warn!(
                    "change detection: pruning changes older than {retention_s} s failed: \
                     {error}; grant DELETE on image_changes or set changes.retention_s = 0 \
                     ({dropped} similar errors not logged since the last one)"
                );
            }
        }
    }
}

/// Reads changes after `cursor` until a batch is not full. Blocks.
fn read_changes(
    pool: &DbPool,
    cursor: &mut Cursor,
    check_loss: bool,
    gap_timeout: Duration,
) -> Result<(Vec<i64>, bool, u64), DbError> {
    let mut connection = pool.get()?;
    let mut queries = 0;
    let mut lost_changes = false;
    if check_loss {
        queries += 1;
        if let Some((low, _)) = db::changes::sequence_range(&mut connection)? {
            lost_changes = low > cursor.high() + 1;
        }
    }
    let mut changed = Vec::new();
    loop {
        let batch = db::changes::changes_after(&mut connection, cursor.read_floor(), BATCH)?;
        queries += 1;
        let now = Instant::now();
        changed.extend(cursor.apply(&batch, now));
        cursor.expire_gaps(gap_timeout, now);
        if (batch.len() as i64) < BATCH {
            break;
        }
    }
    changed.sort_unstable();
    changed.dedup();
    Ok((changed, lost_changes, queries))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cursor_at(high: i64) -> Cursor {
        Cursor {
            high: Some(high),
            gaps: BTreeMap::new(),
        }
    }

    #[test]
    fn new_changes_advance_cursor() {
        let mut cursor = cursor_at(10);
        let changed = cursor.apply(&[(11, 1), (12, 2)], Instant::now());
        assert_eq!(changed, [1, 2]);
        assert_eq!(cursor.high(), 12);
        assert_eq!(cursor.read_floor(), 12);
    }

    #[test]
    fn late_commit_read_from_gap() {
        let mut cursor = cursor_at(10);
        let now = Instant::now();
        assert_eq!(cursor.apply(&[(12, 2)], now), [2]);
        assert_eq!(cursor.read_floor(), 10);

        // Sequence 11 commits later; the next read starts below it.
        let changed = cursor.apply(&[(11, 1), (12, 2)], now);
        assert_eq!(changed, [1]);
        assert!(cursor.gaps.is_empty());
        assert_eq!(cursor.read_floor(), 12);
    }

    #[test]
    fn gaps_expire() {
        let mut cursor = cursor_at(10);
        let noticed = Instant::now();
        cursor.apply(&[(13, 3)], noticed);
        assert_eq!(cursor.gaps.len(), 2);
        cursor.expire_gaps(Duration::from_secs(60), noticed + Duration::from_secs(61));
        assert!(cursor.gaps.is_empty());
        assert_eq!(cursor.read_floor(), 13);
    }

    #[test]
    fn large_jump_not_tracked() {
        let mut cursor = cursor_at(10);
        cursor.apply(&[(10 + MAX_TRACKED_GAP + 5, 7)], Instant::now());
        assert!(cursor.gaps.is_empty());
    }
}
