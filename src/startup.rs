//! Builds the service from its settings: database, cache, authentication
//! and the HTTP server. `main` and the tests share this code.

use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::{Condition, Logger, from_fn};
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use utoipa_swagger_ui::{Config, SwaggerUi};

use crate::cache::{ENTRY_OVERHEAD_BYTES, ImageStore};
use crate::config::{DatabaseLocation, Settings};
use crate::db::{self, DatabaseHealth, DbPool};
use crate::freshness::{ChangeDetector, Cursor};
use crate::http::access_log_request_line;
use crate::http::auth::{self, Authenticator};
use crate::http::request_id::assign_request_id;
use crate::http::routes::{self, AppState};
use crate::log_limit::LogLimiter;
use crate::metrics::{Metrics, record_metrics};
use crate::openapi::{DOCUMENT_PATH, SWAGGER_UI_PATH};
use crate::tls;

/// Access log line: client address, request line, status, body bytes,
/// duration and request id. Headers are left out, so tokens never appear.
/// The request line comes from `access_log_request_line`.
const ACCESS_LOG_FORMAT: &str = r#"%a "%{request}xi" %s %b %Dms request_id=%{X-Request-Id}o"#;

/// A service bound to its address and ready to run.
pub struct Application {
    port: u16,
    server: Server,
    monitor: actix_web::rt::task::JoinHandle<()>,
    stop_monitor: tokio::sync::watch::Sender<bool>,
}

impl Application {
    /// Prepares the database and binds the listener. With port 0 the system
    /// picks a free port, which [`Application::port`] returns.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let location = settings.database_location();
        let authenticator = build_authenticator(&settings, &location)?;
        log::info!("database: {}", describe_location(&location));

        if let DatabaseLocation::Embedded(path) = &location {
            if let Some(directory) = path.parent() {
                std::fs::create_dir_all(directory).with_context(|| {
                    format!(
                        "failed to create the data directory {}",
                        directory.display()
                    )
                })?;
            }
        }
        let pool = db::build_pool(location.clone(), &settings.pool);
        let health = Arc::new(DatabaseHealth::new());
        let prepared = if settings.database.exit_if_unavailable {
            Some(prepare_database(&pool, &settings, &location).await?)
        } else {
            None
        };

        log::info!(
            "cache: at most {} bytes (bodies plus an estimated {} bytes per entry), \
             time to live {} s, for \"not found\" {} s, served stale up to {} s more{}",
            settings.cache.max_bytes,
            ENTRY_OVERHEAD_BYTES,
            settings.cache.ttl_s,
            settings.cache.missing_ttl_s,
            settings.cache.max_stale_s,
            if settings.cache.ttl_s == 0 {
                " (cache disabled)"
            } else {
                ""
            }
        );
        let metrics = Metrics::new();
        let images = ImageStore::new(
            &settings.cache,
            pool.clone(),
            health.clone(),
            metrics.clone(),
        );
        let state = web::Data::new(AppState {
            authenticator,
            images: images.clone(),
            health: health.clone(),
            metrics: metrics.clone(),
            cache_control: AppState::cache_control_for(settings.server.max_age_s),
            error_log: LogLimiter::new(Duration::from_secs(1)),
        });

        let (stop_monitor, stop_signal) = tokio::sync::watch::channel(false);
        let context = MonitorContext {
            pool,
            settings: settings.clone(),
            location: location.clone(),
            health,
            images,
            metrics,
        };
        let monitor = actix_web::rt::spawn(monitor_database(context, prepared, stop_signal));

        let address = format!("{}:{}", settings.server.host, settings.server.port);
        let access_log = settings.server.access_log;
        let server_settings = &settings.server;
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .wrap(from_fn(record_metrics))
                .wrap(from_fn(assign_request_id))
                .wrap(Condition::new(
                    access_log,
                    Logger::new(ACCESS_LOG_FORMAT)
                        .custom_request_replace("request", access_log_request_line)
                        .log_target("aries_image::access"),
                ))
                .configure(configure_routes)
        })
        .workers(worker_count(server_settings.workers))
        .backlog(server_settings.backlog)
        .shutdown_timeout(server_settings.shutdown_timeout_s)
        .client_request_timeout(Duration::from_millis(
            server_settings.client_request_timeout_ms,
        ))
        .client_disconnect_timeout(Duration::from_millis(
            server_settings.client_disconnect_timeout_ms,
        ))
        .keep_alive(keep_alive(server_settings.keep_alive_s))
        .max_connections(server_settings.max_connections)
        .max_connection_rate(server_settings.max_connection_rate);

        let (server, scheme) = match tls::server_config(server_settings)? {
            Some(tls_config) => (server.bind_rustls_0_23(&address, tls_config), "https"),
            None => (server.bind(&address), "http"),
        };
        let server = server.with_context(|| format!("failed to listen on {address}"))?;
        let local_address = *server
            .addrs()
            .first()
            .context("the server is bound to no address")?;
        log::info!(
            "listening on {scheme}://{local_address}; API document at {DOCUMENT_PATH}, \
             Swagger UI at {SWAGGER_UI_PATH}"
        );

        Ok(Self {
            port: local_address.port(),
            server: server.run(),
            monitor,
            stop_monitor,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Handle to stop the server, for tests and signal handling.
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until the server is stopped, by SIGTERM, SIGINT or a
    /// [`Application::handle`], then stops the background task.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        log::info!("HTTP server stopped");
        let _ = self.stop_monitor.send(true);
        let _ = self.monitor.await;
        log::info!("database monitor stopped");
        result
    }
}

/// Worker threads: the setting, or one per CPU core when it is 0.
fn worker_count(setting: usize) -> usize {
    if setting > 0 {
        return setting;
    }
    std::thread::available_parallelism().map_or(1, |cores| cores.get())
}

fn keep_alive(seconds: u64) -> actix_web::http::KeepAlive {
    if seconds == 0 {
        actix_web::http::KeepAlive::Disabled
    } else {
        actix_web::http::KeepAlive::Timeout(Duration::from_secs(seconds))
    }
}

/// Registers every route; requests that match none get a JSON 404.
fn configure_routes(config: &mut web::ServiceConfig) {
    config
        .service(web::scope(routes::IMAGE_SCOPE).default_service(web::to(routes::image_route)))
        .service(
            web::resource("/healthz")
                .name("healthz")
                .route(web::get().to(routes::healthz))
                .route(web::head().to(routes::check_healthz))
                .default_service(web::to(routes::method_not_allowed)),
        )
        .service(
            web::resource("/readyz")
                .name("readyz")
                .route(web::get().to(routes::readyz))
                .route(web::head().to(routes::check_readyz))
                .default_service(web::to(routes::method_not_allowed)),
        )
        .service(
            web::resource("/metrics")
                .name("metrics")
                .route(web::get().to(routes::metrics))
                .route(web::head().to(routes::metrics))
                .default_service(web::to(routes::method_not_allowed)),
        )
        .service(
            // Swagger UI's default validator badge loads an image from
            // validator.swagger.io, so the validator is turned off.
            SwaggerUi::new(format!("{SWAGGER_UI_PATH}{{_:.*}}"))
                .config(Config::new([DOCUMENT_PATH]).validator_url("none")),
        )
        .service(
            web::resource(DOCUMENT_PATH)
                .route(web::get().to(routes::openapi_document))
                .route(web::head().to(routes::openapi_document))
                .default_service(web::to(routes::method_not_allowed)),
        )
        // SwaggerUi registers its files for GET only. This resource returns
        // 405 for the other methods on the same paths.
        .service(
            web::resource(format!("{SWAGGER_UI_PATH}{{_:.*}}"))
                .default_service(web::to(routes::get_only)),
        )
        .default_service(web::to(routes::unknown_route));
}

fn build_authenticator(
    settings: &Settings,
    location: &DatabaseLocation,
) -> anyhow::Result<Authenticator> {
    if !settings.auth.enabled {
        log::warn!(
            "authentication is disabled (auth.enabled = false): every client can read \
             every image; run the service only behind a gateway that authenticates clients"
        );
        return Ok(Authenticator::Disabled);
    }
    if !settings.auth.token_sha256.is_empty() {
        log::info!(
            "authentication: {} bearer token digest(s) configured",
            settings.auth.token_sha256.len()
        );
        return Ok(Authenticator::from_hex_digests(&settings.auth.token_sha256));
    }
    if matches!(location, DatabaseLocation::Embedded(_)) {
        log::warn!(
            "authentication: no tokens configured, so the embedded quick start accepts the \
             development token `{}`; configure auth.token_sha256 before serving real data",
            auth::DEVELOPMENT_TOKEN
        );
        let digest = auth::token_digest_hex(auth::DEVELOPMENT_TOKEN);
        return Ok(Authenticator::from_hex_digests(&[digest]));
    }
    anyhow::bail!(
        "no bearer tokens configured: add the SHA-256 digest of a token to auth.token_sha256 \
         (or ARIES__AUTH__TOKEN_SHA256, comma-separated); print a digest with \
         `aries-image hash-token`. Behind a gateway that authenticates clients, set \
         auth.enabled = false instead."
    )
}

/// Maximum wait between two attempts to prepare the database.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(30);
/// Interval of pings while the database is marked unavailable.
const PING_INTERVAL: Duration = Duration::from_secs(1);

/// Background task: prepares the database, retrying with exponential
/// backoff while it is unreachable, starts change detection, then pings the
/// database while it is marked unavailable so that recovery is noticed
/// without a request.
async fn monitor_database(
    context: MonitorContext,
    prepared: Option<Option<Cursor>>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let MonitorContext {
        pool,
        settings,
        location,
        health,
        images,
        metrics,
    } = context;

    let cursor = match prepared {
        Some(cursor) => cursor,
        None => {
            let mut delay = Duration::from_secs(1);
            loop {
                match prepare_database(&pool, &settings, &location).await {
                    Ok(cursor) => break cursor,
                    Err(error) => {
                        log::warn!(
                            "database: preparing failed: {error:#}; retrying in {} s",
                            delay.as_secs()
                        );
                        tokio::select! {
                            _ = actix_web::rt::time::sleep(delay) => {}
                            _ = stop.changed() => return,
                        }
                        delay = (delay * 2).min(MAX_RETRY_DELAY);
                    }
                }
            }
        }
    };
    let detector = cursor.map(|cursor| {
        let detector = ChangeDetector::new(pool.clone(), images, settings.changes.clone(), metrics);
        actix_web::rt::spawn(detector.run(cursor, stop.clone()))
    });
    health.set_prepared();
    log::info!("database: ready");

    let ping_timeout = settings.checkout_timeout().min(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = actix_web::rt::time::sleep(PING_INTERVAL) => {}
            _ = stop.changed() => break,
        }
        if health.is_available() {
            continue;
        }
        let pinged_pool = pool.clone();
        let outcome = web::block(move || db::health::ping(&pinged_pool, ping_timeout)).await;
        if matches!(outcome, Ok(Ok(()))) {
            health.record_success();
        }
    }
    if let Some(detector) = detector {
        let _ = detector.await;
        log::info!("change detection stopped");
    }
}

/// Inputs of the database monitor task.
struct MonitorContext {
    pool: DbPool,
    settings: Settings,
    location: DatabaseLocation,
    health: Arc<DatabaseHealth>,
    images: ImageStore,
    metrics: Metrics,
}

/// Applies the migrations and loads the sample images, as configured, and
/// reads the start of the change log when change detection is on.
async fn prepare_database(
    pool: &DbPool,
    settings: &Settings,
    location: &DatabaseLocation,
) -> anyhow::Result<Option<Cursor>> {
    let pool = pool.clone();
    let run_migrations = settings.database.run_migrations;
    let load_samples = matches!(location, DatabaseLocation::Embedded(_));
    let detect_changes = settings.changes.enabled;
    let (applied, samples, cursor) = web::block(move || -> anyhow::Result<_> {
        let mut connection = pool
            .get()
            .context("failed to connect to the database to prepare it")?;
        let applied = if run_migrations {
            Some(db::run_migrations(&mut connection)?)
        } else {
            None
        };
        let samples = if load_samples {
            db::insert_samples_if_empty(&mut connection)?
        } else {
            0
        };
        let cursor = if detect_changes {
            let cursor = Cursor::start(&mut connection)
                .context("failed to read the change log (table image_changes)")?;
            Some(cursor)
        } else {
            None
        };
        Ok((applied, samples, cursor))
    })
    .await??;

    match applied {
        Some(versions) if versions.is_empty() => log::info!("migrations: schema is up to date"),
        Some(versions) => log::info!("migrations: applied {}", versions.join(", ")),
        None => log::info!("migrations: not run (database.run_migrations = false)"),
    }
    if load_samples {
        log::info!("sample images: {samples} inserted (only into an empty embedded database)");
    }
    Ok(cursor)
}

/// Names the database without the password that a MySQL URL may contain.
fn describe_location(location: &DatabaseLocation) -> String {
    match location {
        DatabaseLocation::Embedded(path) => {
            format!("embedded SQLite file {}", path.display())
        }
        DatabaseLocation::Sqlite(path) => format!("SQLite file {}", path.display()),
        DatabaseLocation::Mysql(url) => match url::Url::parse(url) {
            Ok(parsed) => format!(
                "MySQL at {}:{}{}",
                parsed.host_str().unwrap_or("localhost"),
                parsed.port().unwrap_or(3306),
                parsed.path()
            ),
            Err(_) => "MySQL (the URL could not be parsed)".into(),
        },
    }
}
