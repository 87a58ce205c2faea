//! The connection type and the r2d2 connection manager for both backends.

use std::time::Duration;

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
}

impl ConnectionManager {
    pub fn new(location: DatabaseLocation, statement_timeout: Duration) -> Self {
        Self {
            location,
            statement_timeout,
        }
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
    type Connection = DbConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<DbConnection, Self::Error> {
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

    /// Runs on every checkout (r2d2's `test_on_check_out`), so a connection
    /// the server closed while idle, after wait_timeout or a restart, is
    /// replaced before a request can use it.
    fn is_valid(&self, connection: &mut DbConnection) -> Result<(), Self::Error> {
        connection.ping().map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, connection: &mut DbConnection) -> bool {
        connection.is_broken()
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
