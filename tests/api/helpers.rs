//! Starts the service on a fresh database and talks to it like a client,
//! and writes to the database like another service would.

use std::io::Write;
use std::sync::Once;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use aries_image::config::Settings;
use aries_image::startup::Application;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::{MysqlConnection, SqliteConnection};

/// The token every test service accepts. It appears nowhere else, so the
/// log guard can look for it.
pub const TOKEN: &str = "test-token-7f3a-unique-5d1c";

/// Prefix of the source paths of the rows that tests insert.
pub const SECRET_PATH: &str = "/secret/images/";

/// Log records that contained the token or a source path.
static LEAKS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// A logger for the whole test process that records every log line, of
/// every crate and level, that contains the token or a source path.
struct LeakGuard;

impl log::Log for LeakGuard {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }

    fn log(&self, record: &log::Record) {
        let line = format!("{} {}: {}", record.level(), record.target(), record.args());
        let leaked = line.contains(TOKEN)
            || line.contains(SECRET_PATH)
            || line.contains("/path/to/image/file.iso");
        if leaked {
            LEAKS.lock().unwrap_or_else(|e| e.into_inner()).push(line);
        }
    }

    fn flush(&self) {}
}

/// Installs the log guard and the TLS provider that reqwest needs, once per
/// test process.
fn prepare_process() {
    static PREPARE: Once = Once::new();
    PREPARE.call_once(|| {
        log::set_logger(&LeakGuard).expect("no other logger is installed in the tests");
        log::set_max_level(log::LevelFilter::Trace);
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Returns an HTTP client with a 30 s timeout.
pub fn http_client() -> reqwest::Client {
    prepare_process();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("the HTTP client builds")
}

/// Panics when any log line so far contained the token or a source path.
pub fn assert_no_leaks() {
    let leaks = LEAKS.lock().unwrap_or_else(|e| e.into_inner());
    assert!(leaks.is_empty(), "secrets in the log: {leaks:#?}");
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Mariadb,
}

/// Declares an async test that runs once per backend: `NAME::sqlite` and
/// `NAME::mariadb`. The body is an `async fn(Backend)`.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[actix_web::test]
                async fn sqlite() {
                    super::$name($crate::helpers::Backend::Sqlite).await;
                }

                #[actix_web::test]
                async fn mariadb() {
                    if $crate::helpers::mariadb_available() {
                        super::$name($crate::helpers::Backend::Mariadb).await;
                    }
                }
            }
        )+
    };
}

/// Whether MariaDB tests can run. Without `ARIES_TEST_MYSQL_URL` they are
/// skipped with a notice, unless `ARIES_TEST_REQUIRE_MYSQL=1` (set by
/// `make test`) makes that a failure.
pub fn mariadb_available() -> bool {
    if std::env::var_os("ARIES_TEST_MYSQL_URL").is_some() {
        return true;
    }
    assert!(
        std::env::var("ARIES_TEST_REQUIRE_MYSQL").as_deref() != Ok("1"),
        "ARIES_TEST_REQUIRE_MYSQL=1 but ARIES_TEST_MYSQL_URL is not set"
    );
    static NOTICE: Once = Once::new();
    NOTICE.call_once(|| {
        // Written to the stderr handle, not with eprintln!, so that the test
        // harness does not capture the notice of a passing test.
        let _ = writeln!(
            std::io::stderr(),
            "\nNOTICE: MariaDB tests skipped because ARIES_TEST_MYSQL_URL is not set; \
             `make test` starts a MariaDB server and runs them.\n"
        );
    });
    false
}

/// A database of one test, with a connection of its own that plays the part
/// of the other services that write the images table.
pub struct TestDatabase {
    pub backend: Backend,
    /// The URL or path the service connects to.
    pub url: String,
    _directory: tempfile::TempDir,
}

impl TestDatabase {
    /// Creates an empty database: a SQLite file in a new directory, or a new
    /// database on the MariaDB server.
    pub fn create(backend: Backend) -> Self {
        let directory = tempfile::tempdir().expect("a temporary directory can be created");
        let url = match backend {
            Backend::Sqlite => directory
                .path()
                .join("images.sqlite3")
                .to_str()
                .expect("the temporary path is UTF-8")
                .to_owned(),
            Backend::Mariadb => {
                static COUNTER: AtomicU32 = AtomicU32::new(0);
                let server =
                    std::env::var("ARIES_TEST_MYSQL_URL").expect("mariadb_available() was checked");
                let name = format!(
                    "aries_test_{}_{}",
                    std::process::id(),
                    COUNTER.fetch_add(1, Ordering::Relaxed)
                );
                let mut connection = MysqlConnection::establish(&server)
                    .expect("the MariaDB test server accepts connections");
                connection
                    .batch_execute(&format!(
                        "CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
                    ))
                    .expect("a test database can be created");
                format!("{}/{name}", server.trim_end_matches('/'))
            }
        };
        Self {
            backend,
            url,
            _directory: directory,
        }
    }

    /// A writer for a database that the test manages itself.
    pub fn external(backend: Backend, url: String) -> Self {
        Self {
            backend,
            url,
            _directory: tempfile::tempdir().expect("a temporary directory can be created"),
        }
    }

    /// Runs SQL on a new connection of its own, as another service would.
    /// MySQL sessions start at the server's time zone (+05:30 under
    /// `make test`), not at the +00:00 that the service's sessions use.
    pub fn execute(&self, sql: &str) {
        match self.backend {
            Backend::Sqlite => {
                let mut connection =
                    SqliteConnection::establish(&self.url).expect("the test database file opens");
                connection
                    .batch_execute(&format!("PRAGMA busy_timeout = 5000; {sql}"))
                    .unwrap_or_else(|error| panic!("SQL failed: {error}: {sql}"));
            }
            Backend::Mariadb => {
                // diesel sets time_zone = '+00:00' on connect; the writer
                // goes back to the server's default, like a plain client.
                let mut connection = MysqlConnection::establish(&self.url)
                    .expect("the test database accepts connections");
                connection
                    .batch_execute(&format!("SET time_zone = DEFAULT; {sql}"))
                    .unwrap_or_else(|error| panic!("SQL failed: {error}: {sql}"));
            }
        }
    }

    /// Inserts an image with an explicit id and UTC timestamps.
    pub fn insert_image(&self, id: i64, name: &str, description: &str, utc: &str) {
        self.execute(&format!(
            "{}INSERT INTO images (id, name, os_type, os_name, description, source_path, \
             created_at, updated_at) VALUES ({id}, '{name}', 'linux', 'TestOS', '{description}', \
             '{SECRET_PATH}{name}.iso', '{utc}', '{utc}')",
            self.utc_session()
        ));
    }

    /// Kills every other connection to this MariaDB database, as a server
    /// does after wait_timeout, and returns how many it killed.
    pub fn kill_other_connections(&self) -> usize {
        #[derive(QueryableByName)]
        struct Session {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            id: i64,
        }
        assert_eq!(self.backend, Backend::Mariadb);
        let name = self
            .url
            .rsplit('/')
            .next()
            .expect("the URL names a database");
        let mut connection =
            MysqlConnection::establish(&self.url).expect("the test database accepts connections");
        let sessions: Vec<Session> = diesel::sql_query(
            "SELECT CAST(id AS SIGNED) AS id FROM information_schema.processlist \
             WHERE db = ? AND id <> CONNECTION_ID()",
        )
        .bind::<diesel::sql_types::Text, _>(name)
        .load(&mut connection)
        .expect("the process list can be read");
        for session in &sessions {
            connection
                .batch_execute(&format!("KILL CONNECTION {}", session.id))
                .expect("a connection of the same user can be killed");
        }
        sessions.len()
    }

    /// SQL that makes a MariaDB session interpret timestamps as UTC.
    pub fn utc_session(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "",
            Backend::Mariadb => "SET time_zone = '+00:00'; ",
        }
    }
}

/// A running service and a client for it.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub database: TestDatabase,
    handle: actix_web::dev::ServerHandle,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            assert_no_leaks();
        }
        // Stops the workers without waiting, so each test frees its threads.
        let handle = self.handle.clone();
        actix_web::rt::spawn(async move { handle.stop(false).await });
    }
}

/// Settings of a test service: loopback on a free port, two workers, the
/// test token, and the given database.
pub fn test_settings(database_url: &str) -> Settings {
    let mut settings =
        Settings::load_from(None, Vec::new()).expect("the compiled-in defaults load");
    settings.server.host = "127.0.0.1".into();
    settings.server.port = 0;
    settings.server.workers = 2;
    settings.database.url = database_url.into();
    settings.auth.token_sha256 = vec![aries_image::http::auth::token_digest_hex(TOKEN)];
    settings
}

/// Starts the service on a fresh, migrated database of `backend`.
pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// Starts the service on a fresh database, with settings changed by `configure`.
pub async fn spawn_app_with(backend: Backend, configure: impl FnOnce(&mut Settings)) -> TestApp {
    let database = TestDatabase::create(backend);
    let mut settings = test_settings(&database.url);
    configure(&mut settings);
    start(settings, database).await
}

/// Starts the service with `settings` as they are and waits until it
/// reports ready, that is, until its migrations have run.
pub async fn start(settings: Settings, database: TestDatabase) -> TestApp {
    let app = start_unready(settings, database).await;
    app.wait_until_ready(Duration::from_secs(20)).await;
    app
}

/// Starts the service without waiting for the database.
pub async fn start_unready(settings: Settings, database: TestDatabase) -> TestApp {
    prepare_process();
    let application = Application::build(settings)
        .await
        .expect("the service starts");
    let address = format!("http://127.0.0.1:{}", application.port());
    let handle = application.handle();
    actix_web::rt::spawn(application.run_until_stopped());
    TestApp {
        address,
        client: http_client(),
        database,
        handle,
    }
}

impl TestApp {
    /// Polls `/readyz` until it returns 200; panics after `limit`.
    pub async fn wait_until_ready(&self, limit: Duration) {
        let started = std::time::Instant::now();
        loop {
            let status = self.get_anonymous("/readyz").await.status();
            if status == 200 {
                return;
            }
            assert!(
                started.elapsed() < limit,
                "the service was not ready within {limit:?} (last status {status})"
            );
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// GET `path` with the test token.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("the service answers")
    }

    /// GET the image route with a raw, already percent-encoded id.
    pub async fn get_image(&self, raw_id: &str) -> reqwest::Response {
        self.get(&format!("/aries/api/v1/image/{raw_id}")).await
    }

    /// Like [`TestApp::get_image`], for futures that outlive the id string.
    pub async fn get_image_owned(&self, raw_id: String) -> reqwest::Response {
        self.get_image(&raw_id).await
    }

    /// GET `path` without credentials.
    pub async fn get_anonymous(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("the service answers")
    }

    /// The value of one sample of `/metrics`, such as
    /// `aries_db_queries_total{outcome="found"}`.
    pub async fn metric(&self, sample: &str) -> f64 {
        let text = self
            .get_anonymous("/metrics")
            .await
            .text()
            .await
            .expect("the metrics are text");
        text.lines()
            .find_map(|line| line.strip_prefix(sample)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no sample {sample} in:\n{text}"))
            .parse()
            .expect("a sample value is a number")
    }

    /// Image queries the service sent to the database so far.
    pub async fn database_queries(&self) -> f64 {
        let mut total = 0.0;
        for outcome in ["found", "not_found", "error"] {
            total += self
                .metric(&format!("aries_db_queries_total{{outcome=\"{outcome}\"}}"))
                .await;
        }
        total
    }
}

/// The JSON body of an error response, checked against the contract's shape.
pub async fn error_body(response: reqwest::Response) -> serde_json::Value {
    let request_id = response
        .headers()
        .get("x-request-id")
        .expect("every response has X-Request-Id")
        .to_str()
        .unwrap()
        .to_owned();
    let content_type = response.headers().get("content-type").cloned();
    assert_eq!(
        content_type.as_ref().and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    let body: serde_json::Value = response.json().await.expect("the error body is JSON");
    assert_eq!(body["request_id"], request_id.as_str(), "{body}");
    assert!(body["code"].is_string(), "{body}");
    assert!(body["message"].is_string(), "{body}");
    body
}

/// Returns a command that runs the service binary on `database_url` and a
/// free loopback port, with the test token and nothing else of this
/// process's environment but PATH, and the port's address.
pub fn service_command(database_url: &str, rust_log: &str) -> (std::process::Command, String) {
    let port = crate::mariadb::free_port();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_aries-image"));
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("RUST_LOG", rust_log)
        .env("ARIES__SERVER__PORT", port.to_string())
        .env("ARIES__DATABASE__URL", database_url)
        .env(
            "ARIES__AUTH__TOKEN_SHA256",
            aries_image::http::auth::token_digest_hex(TOKEN),
        );
    (command, format!("http://127.0.0.1:{port}"))
}

/// Polls `address`/readyz until it returns 200; panics after `limit`.
pub async fn wait_for_ready_address(address: &str, limit: Duration) {
    let client = http_client();
    let started = std::time::Instant::now();
    loop {
        let ready = client
            .get(format!("{address}/readyz"))
            .send()
            .await
            .is_ok_and(|response| response.status() == 200);
        if ready {
            return;
        }
        assert!(
            started.elapsed() < limit,
            "{address} was not ready within {limit:?}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}
