//! Database access: the connection pool, migrations, queries and the sample
//! images of the embedded default.
//!
//! diesel is synchronous, so every function here blocks; async callers run
//! them on actix's blocking thread pool with `web::block`.

pub mod changes;
mod connection;
pub mod health;
mod models;
mod samples;
pub mod schema;

use std::time::Duration;

use diesel::prelude::*;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

pub use connection::{ConnectionManager, DbConnection};
pub use health::DatabaseHealth;
pub use models::{ImageRow, NewImage};
pub use samples::{SAMPLE_IMAGES, insert_samples_if_empty};

use crate::config::{DatabaseLocation, PoolSettings};
use schema::images;

/// The r2d2 pool, with a handle to ask it to revalidate its connections.
#[derive(Clone)]
pub struct DbPool {
    pool: r2d2::Pool<ConnectionManager>,
    manager: ConnectionManager,
}

pub type PooledConnection = r2d2::PooledConnection<ConnectionManager>;

impl DbPool {
    /// Checks out a connection, waiting up to the checkout timeout.
    pub fn get(&self) -> Result<PooledConnection, r2d2::Error> {
        self.pool.get()
    }

    pub fn get_timeout(&self, timeout: Duration) -> Result<PooledConnection, r2d2::Error> {
        self.pool.get_timeout(timeout)
    }

    pub fn state(&self) -> r2d2::State {
        self.pool.state()
    }

    /// Makes every pooled connection ping at its next checkout. Callers use it
    /// after a failed query, because the server may have closed connections
    /// that were handed out without a ping.
    pub fn revalidate_all(&self) {
        self.manager.revalidate_all();
    }
}

const MYSQL_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/mysql");
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("no database connection within the checkout timeout: {0}")]
    Pool(#[from] r2d2::Error),
    #[error("query failed: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("migration failed: {0}")]
    Migration(String),
}

impl DbError {
    /// Whether the error comes from the server or the connection, as opposed
    /// to a row that does not decode (a zero date, say), which a retry or a
    /// stale answer cannot cure.
    pub fn is_database_failure(&self) -> bool {
        match self {
            Self::Pool(_) | Self::Migration(_) => true,
            Self::Query(error) => matches!(
                error,
                diesel::result::Error::DatabaseError(..)
                    | diesel::result::Error::BrokenTransactionManager
            ),
        }
    }
}

/// Builds the pool without opening a connection, so that the service can
/// start while the database is down; connections open in the background and
/// on first use.
pub fn build_pool(location: DatabaseLocation, settings: &PoolSettings) -> DbPool {
    let statement_timeout = Duration::from_millis(settings.statement_timeout_ms);
    let manager = ConnectionManager::new(location, statement_timeout);
    let pool = r2d2::Pool::builder()
        .max_size(settings.max_size)
        .min_idle(Some(settings.min_idle))
        .connection_timeout(Duration::from_millis(settings.checkout_timeout_ms))
        .idle_timeout(Some(Duration::from_secs(settings.idle_timeout_s)).filter(|d| !d.is_zero()))
        .max_lifetime(Some(Duration::from_secs(settings.max_lifetime_s)).filter(|d| !d.is_zero()))
        .test_on_check_out(true)
        .error_handler(Box::new(connection::ErrorLogger::new(Duration::from_secs(
            10,
        ))))
        .build_unchecked(manager.clone());
    DbPool { pool, manager }
}

/// Applies the pending migrations of the connection's backend and returns
/// their versions.
pub fn run_migrations(connection: &mut DbConnection) -> Result<Vec<String>, DbError> {
    let applied = match connection {
        DbConnection::Mysql(mysql) => mysql.run_pending_migrations(MYSQL_MIGRATIONS),
        DbConnection::Sqlite(sqlite) => sqlite.run_pending_migrations(SQLITE_MIGRATIONS),
    };
    let versions = applied.map_err(|error| DbError::Migration(error.to_string()))?;
    Ok(versions.iter().map(ToString::to_string).collect())
}

/// Reads one image, or `None` when no row has that id.
pub fn find_image(connection: &mut DbConnection, id: i64) -> Result<Option<ImageRow>, DbError> {
    let query = images::table.find(id);
    // On the backend's own connection type, the query's type is the key of
    // diesel's prepared statement cache. Through the multi-backend enum,
    // diesel writes out the SQL text on every call to find the statement.
    let row = match connection {
        DbConnection::Mysql(connection) => query.select(ImageRow::as_select()).first(connection),
        DbConnection::Sqlite(connection) => query.select(ImageRow::as_select()).first(connection),
    }
    .optional()?;
    Ok(row)
}
