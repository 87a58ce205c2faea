//! The image record as the API returns it.

use chrono::{NaiveDateTime, SecondsFormat, TimeZone, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::ImageRow;

/// An operating-system image. Responses list the fields in this order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[schema(example = json!({
    "id": 1,
    "name": "CentOS-7.9-x64",
    "os_type": "linux",
    "os_name": "CentOS",
    "description": "CentOS 7.9 64位基础镜像",
    "source_path": "/path/to/image/file.iso",
    "created_at": "2024-03-20T10:30:00Z",
    "updated_at": "2024-03-20T10:30:00Z"
}))]
pub struct ImageRecord {
    /// Image id, assigned by the database.
    #[schema(minimum = 1, format = Int64)]
    pub id: i64,
    /// Unique image name.
    pub name: String,
    /// Operating system family, such as `linux` or `windows`.
    pub os_type: String,
    /// Operating system name.
    pub os_name: String,
    /// Free text, in any language.
    pub description: String,
    /// Location of the image file. It is sensitive: the service never logs it.
    pub source_path: String,
    /// Creation time, RFC 3339 in UTC with whole seconds.
    #[schema(format = DateTime, example = "2024-03-20T10:30:00Z")]
    pub created_at: String,
    /// Time of the last change, RFC 3339 in UTC with whole seconds.
    #[schema(format = DateTime, example = "2024-03-20T10:30:00Z")]
    pub updated_at: String,
}

/// Formats a UTC timestamp from the database as RFC 3339 with whole seconds
/// and a `Z` suffix; fractions of a second are dropped.
pub fn format_timestamp(utc: NaiveDateTime) -> String {
    Utc.from_utc_datetime(&utc)
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl From<ImageRow> for ImageRecord {
    fn from(row: ImageRow) -> Self {
        Self {
            id: row.id,
            name: row.name,
            os_type: row.os_type,
            os_name: row.os_name,
            description: row.description,
            source_path: row.source_path,
            created_at: format_timestamp(row.created_at),
            updated_at: format_timestamp(row.updated_at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_reference_record() {
        let timestamp =
            NaiveDateTime::parse_from_str("2024-03-20 10:30:00.750", "%Y-%m-%d %H:%M:%S%.f")
                .unwrap();
        let record = ImageRecord::from(ImageRow {
            id: 1,
            name: "CentOS-7.9-x64".into(),
            os_type: "linux".into(),
            os_name: "CentOS".into(),
            description: "CentOS 7.9 64位基础镜像".into(),
            source_path: "/path/to/image/file.iso".into(),
            created_at: timestamp,
            updated_at: timestamp,
        });
        assert_eq!(
            serde_json::to_string(&record).unwrap(),
            r#"{"id":1,"name":"CentOS-7.9-x64","os_type":"linux","os_name":"CentOS","description":"CentOS 7.9 64位基础镜像","source_path":"/path/to/image/file.iso","created_at":"2024-03-20T10:30:00Z","updated_at":"2024-03-20T10:30:00Z"}"#
        );
    }
}
