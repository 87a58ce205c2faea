//! Database state shared by queries and pings: whether the database is
//! prepared (migrated) and whether it answered recently.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use diesel::r2d2::R2D2Connection;

use super::{DbError, DbPool};

/// Shared state of the database, updated by queries and by pings.
#[derive(Debug)]
pub struct DatabaseHealth {
    prepared: AtomicBool,
    available: AtomicBool,
}

impl DatabaseHealth {
    /// A database that is not prepared yet and is assumed to be available
    /// until a query fails.
    pub fn new() -> Self {
        Self {
            prepared: AtomicBool::new(false),
            available: AtomicBool::new(true),
        }
    }

    pub fn is_prepared(&self) -> bool {
        self.prepared.load(Ordering::Acquire)
    }

    pub fn set_prepared(&self) {
        self.prepared.store(true, Ordering::Release);
    }

    pub fn is_available(&self) -> bool {
        self.available.load(Ordering::Relaxed)
    }

    /// Records a query or ping that succeeded, and logs the recovery once.
    pub fn record_success(&self) {
        if !self.available.swap(true, Ordering::Relaxed) {
            log::info!("database: available again");
        }
    }

    /// Records a failed query or ping, and logs the outage once.
    pub fn record_failure(&self) {
        if self.available.swap(false, Ordering::Relaxed) {
            log::warn!(
                "database: unavailable; cached images are served past their time to live, \
                 up to cache.max_stale_s, until it answers again"
            );
        }
    }
}

impl Default for DatabaseHealth {
    fn default() -> Self {
        Self::new()
    }
}

/// Checks out a connection within `timeout` and pings the server. Blocks.
pub fn ping(pool: &DbPool, timeout: Duration) -> Result<(), DbError> {
    let mut connection = pool.get_timeout(timeout)?;
    connection.ping()?;
    Ok(())
}
