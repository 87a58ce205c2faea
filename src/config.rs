//! Typed settings, loaded in layers: the defaults compiled in from
//! `config/default.toml`, an optional file, then `ARIES__SECTION__KEY`
//! environment variables and `DATABASE_URL`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// The defaults, compiled into the binary so that it runs from any directory.
const DEFAULTS: &str = include_str!("../config/default.toml");

/// File name of the embedded database inside `database.data_dir`.
pub const EMBEDDED_DATABASE_FILE: &str = "aries.sqlite3";

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub pool: PoolSettings,
    pub cache: CacheSettings,
    pub auth: AuthSettings,
    pub changes: ChangeSettings,
    pub log: LogSettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    pub workers: usize,
    pub access_log: bool,
    pub max_age_s: u64,
    pub shutdown_timeout_s: u64,
    pub client_request_timeout_ms: u64,
    pub client_disconnect_timeout_ms: u64,
    pub keep_alive_s: u64,
    pub max_connections: usize,
    pub max_connection_rate: usize,
    pub backlog: u32,
    pub tls_cert_path: PathBuf,
    pub tls_key_path: PathBuf,
}

#[derive(Clone, Deserialize)]
pub struct DatabaseSettings {
    pub url: String,
    pub data_dir: PathBuf,
    pub run_migrations: bool,
    pub exit_if_unavailable: bool,
}

/// Keeps the URL, which may contain a password, out of debug output.
impl std::fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("url", &"<redacted>")
            .field("data_dir", &self.data_dir)
            .field("run_migrations", &self.run_migrations)
            .field("exit_if_unavailable", &self.exit_if_unavailable)
            .finish()
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct PoolSettings {
    pub max_size: u32,
    pub min_idle: u32,
    pub checkout_timeout_ms: u64,
    pub statement_timeout_ms: u64,
    pub idle_timeout_s: u64,
    pub max_lifetime_s: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CacheSettings {
    pub max_bytes: u64,
    pub ttl_s: u64,
    pub missing_ttl_s: u64,
    pub max_stale_s: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AuthSettings {
    pub token_sha256: Vec<String>,
    pub enabled: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ChangeSettings {
    pub enabled: bool,
    pub poll_interval_ms: u64,
    pub gap_timeout_s: u64,
    pub retention_s: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LogSettings {
    pub level: String,
}

/// Location of the image database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseLocation {
    /// The SQLite file created on first start when no database is configured.
    Embedded(PathBuf),
    Sqlite(PathBuf),
    Mysql(String),
}

impl DatabaseLocation {
    /// The URL or path that diesel connects to.
    pub fn connection_url(&self) -> &str {
        match self {
            Self::Embedded(path) | Self::Sqlite(path) => path.to_str().unwrap_or_default(),
            Self::Mysql(url) => url,
        }
    }
}

impl Settings {
    /// Loads the settings: defaults, then `file` if given, then the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, config::ConfigError> {
        let environment: Vec<(String, String)> = std::env::vars().collect();
        Self::load_from(file, environment)
    }

    /// Loads the settings with `environment` in place of the process
    /// environment, so that tests do not have to change global state.
    pub fn load_from(
        file: Option<&Path>,
        environment: Vec<(String, String)>,
    ) -> Result<Self, config::ConfigError> {
        let database_url = environment
            .iter()
            .find(|(key, _)| key == "DATABASE_URL")
            .map(|(_, value)| value.clone());
        let aries_variables: config::Map<String, String> = environment
            .into_iter()
            .filter(|(key, _)| key.starts_with("ARIES__"))
            .collect();

        let mut builder = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml));
        if let Some(path) = file {
            builder = builder.add_source(config::File::from(path).required(true));
        }
        builder = builder.add_source(
            config::Environment::with_prefix("ARIES")
                .separator("__")
                .try_parsing(true)
                .list_separator(",")
                .with_list_parse_key("auth.token_sha256")
                .source(Some(aries_variables)),
        );
        if let Some(url) = database_url {
            builder = builder.set_override("database.url", url)?;
        }

        let mut settings: Settings = builder.build()?.try_deserialize()?;
        // An empty variable yields one empty entry, which means "no tokens".
        settings
            .auth
            .token_sha256
            .retain(|digest| !digest.trim().is_empty());
        for digest in &mut settings.auth.token_sha256 {
            *digest = digest.trim().to_ascii_lowercase();
        }
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), config::ConfigError> {
        let invalid = |message: String| Err(config::ConfigError::Message(message));
        if self.pool.max_size == 0 {
            return invalid("pool.max_size must be at least 1".into());
        }
        if self.pool.min_idle > self.pool.max_size {
            return invalid(format!(
                "pool.min_idle ({}) must not exceed pool.max_size ({})",
                self.pool.min_idle, self.pool.max_size
            ));
        }
        if self.changes.enabled && self.changes.poll_interval_ms < 10 {
            return invalid(format!(
                "changes.poll_interval_ms must be at least 10, got {}",
                self.changes.poll_interval_ms
            ));
        }
        if !(1..=30_000).contains(&self.pool.checkout_timeout_ms) {
            return invalid(format!(
                "pool.checkout_timeout_ms must be from 1 to 30000, got {}",
                self.pool.checkout_timeout_ms
            ));
        }
        for digest in &self.auth.token_sha256 {
            let is_hex_digest = digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit());
            if !is_hex_digest {
                // The value may be a token pasted by mistake, so it is not echoed.
                return invalid(
                    "auth.token_sha256 contains an entry that is not a 64-digit hex SHA-256 \
                     digest; print the digest of a token with `aries-image hash-token`"
                        .into(),
                );
            }
        }
        Ok(())
    }

    /// The database chosen by `database.url`.
    pub fn database_location(&self) -> DatabaseLocation {
        let url = self.database.url.trim();
        if url.is_empty() {
            DatabaseLocation::Embedded(self.database.data_dir.join(EMBEDDED_DATABASE_FILE))
        } else if url.starts_with("mysql://") {
            DatabaseLocation::Mysql(url.to_owned())
        } else {
            let path = url.strip_prefix("sqlite://").unwrap_or(url);
            DatabaseLocation::Sqlite(PathBuf::from(path))
        }
    }

    pub fn checkout_timeout(&self) -> Duration {
        Duration::from_millis(self.pool.checkout_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(variables: &[(&str, &str)]) -> Result<Settings, config::ConfigError> {
        let environment = variables
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect();
        Settings::load_from(None, environment)
    }

    #[test]
    fn defaults_load() {
        let settings = load(&[]).unwrap();
        assert_eq!(settings.server.host, "127.0.0.1");
        assert_eq!(settings.server.port, 8080);
        assert!(settings.auth.enabled);
        assert!(settings.pool.checkout_timeout_ms <= 5000);
        assert_eq!(
            settings.database_location(),
            DatabaseLocation::Embedded(PathBuf::from("data/aries.sqlite3"))
        );
    }

    #[test]
    fn environment_overrides_defaults() {
        let digest = "a".repeat(64);
        let other = "b".repeat(64);
        let tokens = format!("{digest},{other}");
        let settings = load(&[
            ("ARIES__SERVER__PORT", "9000"),
            ("ARIES__CACHE__TTL_S", "3"),
            ("ARIES__AUTH__TOKEN_SHA256", &tokens),
        ])
        .unwrap();
        assert_eq!(settings.server.port, 9000);
        assert_eq!(settings.cache.ttl_s, 3);
        assert_eq!(settings.auth.token_sha256, vec![digest, other]);
    }

    #[test]
    fn database_url_variable_selects_mysql() {
        let settings = load(&[("DATABASE_URL", "mysql://aries@127.0.0.1/aries")]).unwrap();
        assert_eq!(
            settings.database_location(),
            DatabaseLocation::Mysql("mysql://aries@127.0.0.1/aries".into())
        );
    }

    #[test]
    fn sqlite_path_selects_sqlite() {
        let settings = load(&[("ARIES__DATABASE__URL", "sqlite:///tmp/x.db")]).unwrap();
        assert_eq!(
            settings.database_location(),
            DatabaseLocation::Sqlite(PathBuf::from("/tmp/x.db"))
        );
    }

    #[test]
    fn production_example_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/production.example.toml");
        let settings = Settings::load_from(Some(&path), Vec::new()).unwrap();
        assert_eq!(settings.server.host, "0.0.0.0");
        assert!(!settings.database.run_migrations);
        assert_eq!(settings.auth.token_sha256.len(), 1);
        assert!(matches!(
            settings.database_location(),
            DatabaseLocation::Mysql(_)
        ));
    }

    #[test]
    fn plaintext_token_rejected() {
        let error = load(&[("ARIES__AUTH__TOKEN_SHA256", "my-secret-token")]).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("hash-token"), "{message}");
        assert!(!message.contains("my-secret-token"), "{message}");
    }

    #[test]
    fn long_checkout_timeout_rejected() {
        let error = load(&[("ARIES__POOL__CHECKOUT_TIMEOUT_MS", "60000")]).unwrap_err();
        assert!(error.to_string().contains("checkout_timeout_ms"));
    }
}
