//! Queries of the change log that triggers fill on every write to images.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;

use super::schema::image_changes;
use super::{DbConnection, DbError};

/// Returns up to `limit` changes with a sequence number above `after`, in
/// order, as (sequence number, image id). The primary key serves the range.
pub fn changes_after(
    connection: &mut DbConnection,
    after: i64,
    limit: i64,
) -> Result<Vec<(i64, i64)>, DbError> {
    let rows = image_changes::table
        .filter(image_changes::seq.gt(after))
        .order(image_changes::seq.asc())
        .limit(limit)
        .select((image_changes::seq, image_changes::image_id))
        .load(connection)?;
    Ok(rows)
}

/// Returns the lowest and highest sequence number in the log, or `None`
/// when it is empty.
pub fn sequence_range(connection: &mut DbConnection) -> Result<Option<(i64, i64)>, DbError> {
    let (low, high): (Option<i64>, Option<i64>) = image_changes::table
        .select((
            diesel::dsl::min(image_changes::seq),
            diesel::dsl::max(image_changes::seq),
        ))
        .first(connection)?;
    Ok(low.zip(high))
}

/// Deletes changes older than `retention_s` seconds by the database's clock.
pub fn prune(connection: &mut DbConnection, retention_s: u64) -> Result<(), DbError> {
    let sql = match connection {
        DbConnection::Mysql(_) => format!(
            "DELETE FROM image_changes \
             WHERE changed_at < NOW() - INTERVAL {retention_s} SECOND LIMIT 10000"
        ),
        DbConnection::Sqlite(_) => format!(
            "DELETE FROM image_changes \
             WHERE changed_at < strftime('%Y-%m-%d %H:%M:%S', 'now', '-{retention_s} seconds')"
        ),
    };
    connection.batch_execute(&sql)?;
    Ok(())
}
