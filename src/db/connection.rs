//! The connection type and the r2d2 connection manager for both backends.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::R2D2Connection;
use diesel::{MysqlConnection, SqliteConnection};

use crate::config::DatabaseLocation;
use crate::log_limit::LogLimiter;

/// A connection to either backend; diesel generates the `Connection`
/// implementation that dispatches to the variant.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Mysql(MysqlConnection),
    Sqlite(SqliteConnection),
}

/// Session settings for SQLite: wait for a writer's lock instead of failing
/// at once, and let readers run beside a writer.
const SQLITE_SESSION: &str = "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL;";

/// Opens connections for the backend chosen by the configuration.
///
/// diesel's derived `establish` tries each backend in turn and discards the
/// errors, so a MySQL server that is down would be reported as an invalid
/// URL; this manager connects with the one backend the settings name.
#[derive(Debug, Clone)]
pub struct ConnectionManager {
    location: DatabaseLocation,
    statement_timeout: Duration,
    /// Incremented by [`ConnectionManager::revalidate_all`]; a connection
    /// validated in an earlier epoch is pinged at its next checkout.
    epoch: Arc<AtomicU64>,
}

/// A pooled connection, with when it was last known to work.
pub struct ValidatedConnection {
    connection: DbConnection,
    validated_at: Instant,
    validated_epoch: u64,
}

impl Deref for ValidatedConnection {
    type Target = DbConnection;

    fn deref(&self) -> &DbConnection {
        &self.connection
    }
}

impl DerefMut for ValidatedConnection {
    fn deref_mut(&mut self) -> &mut DbConnection {
        &mut self.connection
    }
}

/// A connection validated less than this long ago is checked out without a
/// ping, so a busy pool costs one round trip per query, not two. A server
/// closes idle connections after wait_timeout, at least 1 s.
const VALIDATION_INTERVAL: Duration = Duration::from_secs(1);

impl ConnectionManager {
    pub fn new(location: DatabaseLocation, statement_timeout: Duration) -> Self {
        Self {
            location,
            statement_timeout,
            epoch: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Makes every connection ping at its next checkout, after a query
    /// failed on a connection that may have been closed by the server.
    pub fn revalidate_all(&self) {
        self.epoch.fetch_add(1, Ordering::Relaxed);
    }

    /// Limits the run time of each statement of a MySQL session, so that a
    /// query blocked by a lock gives its connection back. MariaDB calls the
    /// variable max_statement_time (seconds) and MySQL max_execution_time
    /// (milliseconds, SELECT only); each server rejects the other's name.
    fn limit_statement_time(&self, connection: &mut MysqlConnection) {
        if self.statement_timeout.is_zero() {
            return;
        }
        let seconds = self.statement_timeout.as_secs_f64();
        let milliseconds = self.statement_timeout.as_millis();
        let mariadb =
            connection.batch_execute(&format!("SET SESSION max_statement_time = {seconds}"));
        if mariadb.is_err() {
            let mysql = connection
                .batch_execute(&format!("SET SESSION max_execution_time = {milliseconds}"));
            if let Err(error) = mysql {
                log::warn!("database: the statement timeout could not be set: {error}");
            }
        }
    }
}

impl r2d2::ManageConnection for ConnectionManager {
    type Connection = ValidatedConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<ValidatedConnection, Self::Error> {
        let validated_epoch = self.epoch.load(Ordering::Relaxed);
        let connection = self.open()?;
        Ok(ValidatedConnection {
            connection,
            validated_at: Instant::now(),
            validated_epoch,
        })
    }

    /// Runs on every checkout (r2d2's `test_on_check_out`) and pings a
    /// connection not validated within `VALIDATION_INTERVAL` or since the
    /// last `revalidate_all`, so a connection the server closed while idle,
    /// after wait_timeout or a restart, is replaced before a request uses it.
    fn is_valid(&self, connection: &mut ValidatedConnection) -> Result<(), Self::Error> {
        let epoch = self.epoch.load(Ordering::Relaxed);
        let recent = connection.validated_at.elapsed() < VALIDATION_INTERVAL;
        if recent && connection.validated_epoch == epoch {
            return Ok(());
        }
        connection
            .connection
            .ping()
            .map_err(diesel::r2d2::Error::QueryError)?;
        connection.validated_at = Instant::now();
        connection.validated_epoch = epoch;
        Ok(())
    }

    fn has_broken(&self, connection: &mut ValidatedConnection) -> bool {
        connection.connection.is_broken()
    }
}

impl ConnectionManager {
    fn open(&self) -> Result<DbConnection, diesel::r2d2::Error> {
        let url = self.location.connection_url();
        match &self.location {
            DatabaseLocation::Mysql(_) => {
                let mut connection = MysqlConnection::establish(url)
                    .map_err(diesel::r2d2::Error::ConnectionError)?;
                self.limit_statement_time(&mut connection);
                Ok(DbConnection::Mysql(connection))
            }
            DatabaseLocation::Embedded(_) | DatabaseLocation::Sqlite(_) => {
                let mut connection = SqliteConnection::establish(url)
                    .map_err(diesel::r2d2::Error::ConnectionError)?;
                connection
                    .batch_execute(SQLITE_SESSION)
                    .map_err(diesel::r2d2::Error::QueryError)?;
                Ok(DbConnection::Sqlite(connection))
            }
        }
    }
}

/// Logs connection failures of the pool at most once per interval, with the
/// count of failures left out since the last line, because r2d2 keeps
/// reconnecting in the background while the database is down.
#[derive(Debug)]
pub struct ErrorLogger {
    limiter: LogLimiter,
}

impl ErrorLogger {
    pub fn new(interval: Duration) -> Self {
        Self {
            limiter: LogLimiter::new(interval),
        }
    }
}

impl r2d2::HandleError<diesel::r2d2::Error> for ErrorLogger {
    fn handle_error(&self, error: diesel::r2d2::Error) {
        if let Some(dropped) = self.limiter.admit() {
            log::error!(
                "database connection failed: {error}; retrying \
                 ({dropped} similar errors not logged since the last one)"
            );
        }
    }
}
