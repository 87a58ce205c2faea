use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::images;

/// One row of the `images` table. Timestamps are UTC: MySQL sessions run at
/// time_zone +00:00 and SQLite stores UTC text.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = images)]
pub struct ImageRow {
    pub id: i64,
    pub name: String,
    pub os_type: String,
    pub os_name: String,
    pub description: String,
    pub source_path: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// A row to insert; the database assigns the id.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = images)]
pub struct NewImage<'a> {
    pub name: &'a str,
    pub os_type: &'a str,
    pub os_name: &'a str,
    pub description: &'a str,
    pub source_path: &'a str,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}
