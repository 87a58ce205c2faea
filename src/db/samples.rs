//! Sample images loaded into the embedded SQLite database on first start.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::images;
use super::{DbConnection, DbError, NewImage};

/// Fields of a sample image: name, os_type, os_name, description,
/// source_path and the creation time in UTC. The first one is served as
/// image 1.
pub const SAMPLE_IMAGES: &[(&str, &str, &str, &str, &str, &str)] = &[
    (
        "CentOS-7.9-x64",
        "linux",
        "CentOS",
        "CentOS 7.9 64位基础镜像",
        "/path/to/image/file.iso",
        "2024-03-20 10:30:00",
    ),
    (
        "Ubuntu-22.04-x64",
        "linux",
        "Ubuntu",
        "Ubuntu 22.04 LTS 64位基础镜像",
        "/images/ubuntu/ubuntu-22.04-server-amd64.iso",
        "2024-04-02 08:00:00",
    ),
    (
        "Debian-12-x64",
        "linux",
        "Debian",
        "Debian 12 (bookworm) 64位基础镜像",
        "/images/debian/debian-12-amd64-netinst.iso",
        "2024-05-11 02:15:30",
    ),
    (
        "Rocky-9.3-x64",
        "linux",
        "Rocky Linux",
        "Rocky Linux 9.3 64位基础镜像，兼容 RHEL",
        "/images/rocky/Rocky-9.3-x86_64-dvd.iso",
        "2024-06-01 12:00:00",
    ),
    (
        "WindowsServer-2022-x64",
        "windows",
        "Windows Server",
        "Windows Server 2022 数据中心版 64位",
        "/images/windows/windows-server-2022-datacenter.iso",
        "2024-07-15 09:45:00",
    ),
    (
        "Alpine-3.19-x64",
        "linux",
        "Alpine",
        "Alpine 3.19 最小镜像 🐧",
        "/images/alpine/alpine-virt-3.19.1-x86_64.iso",
        "2024-08-08 16:20:10",
    ),
];

/// Inserts the sample images into an empty SQLite table and returns how
/// many it inserted. It never writes to MySQL, where the images belong to
/// the services that manage them.
pub fn insert_samples_if_empty(connection: &mut DbConnection) -> Result<usize, DbError> {
    let DbConnection::Sqlite(sqlite) = connection else {
        return Ok(0);
    };
    sqlite.transaction(|sqlite| -> Result<usize, DbError> {
        let count: i64 = images::table.count().get_result(sqlite)?;
        if count > 0 {
            return Ok(0);
        }
        let rows: Vec<NewImage> = SAMPLE_IMAGES
            .iter()
            .map(
                |(name, os_type, os_name, description, source_path, created)| {
                    let created_at = NaiveDateTime::parse_from_str(created, "%Y-%m-%d %H:%M:%S")
                        .expect("sample timestamps use the format YYYY-MM-DD HH:MM:SS");
                    NewImage {
                        name,
                        os_type,
                        os_name,
                        description,
                        source_path,
                        created_at,
                        updated_at: created_at,
                    }
                },
            )
            .collect();
        let inserted = diesel::insert_into(images::table)
            .values(&rows)
            .execute(sqlite)?;
        Ok(inserted)
    })
}
