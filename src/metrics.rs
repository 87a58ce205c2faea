//! Prometheus metrics of one service instance, rendered at `GET /metrics`.

use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::http::routes::{AppState, IMAGE_SCOPE};

/// Bucket bounds of the duration histograms, in seconds: a cache hit takes
/// tens of microseconds and a pool timeout a few seconds.
const DURATION_BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0,
];

/// Methods and statuses of the image route whose request counters are
/// resolved in advance.
const HOT_METHODS: [&str; 2] = ["GET", "HEAD"];
const HOT_STATUSES: [u16; 6] = [200, 304, 400, 401, 404, 500];

/// Metrics of one instance. Each instance has its own registry, so that
/// several services in one process, as in the tests, count separately.
/// Labelled children used on every request are resolved once here, so
/// counting on the request path is an atomic add without a label lookup.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    /// Children of `http_requests` for the image route, by `HOT_METHODS`
    /// and then `HOT_STATUSES`.
    hot_requests: Vec<IntCounter>,
    http_duration: HistogramVec,
    image_duration: Histogram,
    pub cache_hits: IntCounter,
    pub cache_missing_hits: IntCounter,
    pub cache_stale_hits: IntCounter,
    pub cache_misses: IntCounter,
    pub cache_loads_coalesced: IntCounter,
    cache_removals: IntCounterVec,
    cache_entries: IntGauge,
    cache_weighted_bytes: IntGauge,
    pub db_queries_found: IntCounter,
    pub db_queries_not_found: IntCounter,
    pub db_queries_failed: IntCounter,
    db_query_duration: Histogram,
    pool_connections: IntGaugeVec,
    pub change_polls_ok: IntCounter,
    pub change_polls_failed: IntCounter,
    pub change_queries: IntCounter,
    pub change_invalidations: IntCounter,
    /// Unix time in seconds of the last successful poll; 0 before the first.
    pub change_last_success: std::sync::Arc<std::sync::atomic::AtomicI64>,
    change_lag: IntGauge,
}

fn register<T: prometheus::core::Collector + Clone + 'static>(registry: &Registry, metric: T) -> T {
    registry
        .register(Box::new(metric.clone()))
        .expect("each metric name is registered once");
    metric
}

fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let metric = IntCounterVec::new(Opts::new(name, help), labels)
        .expect("the metric name and labels are valid");
    register(registry, metric)
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    let metric = IntGauge::new(name, help).expect("the metric name is valid");
    register(registry, metric)
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let http_requests = counter_vec(
            &registry,
            "aries_http_requests_total",
            "HTTP requests answered, by route, method and status.",
            &["route", "method", "status"],
        );
        let http_duration = register(
            &registry,
            HistogramVec::new(
                HistogramOpts::new(
                    "aries_http_request_duration_seconds",
                    "Time from routing a request to its response head, by route.",
                )
                .buckets(DURATION_BUCKETS.to_vec()),
                &["route"],
            )
            .expect("the histogram options are valid"),
        );
        let cache_lookups = counter_vec(
            &registry,
            "aries_cache_lookups_total",
            "Image cache lookups, by result: hit, missing_hit (a cached \"not found\"), \
             stale (served past its time to live while the database failed) or miss.",
            &["result"],
        );
        let cache_loads_coalesced = register(
            &registry,
            IntCounter::new(
                "aries_cache_loads_coalesced_total",
                "Cache misses that waited for a database query started by another request.",
            )
            .expect("the metric name is valid"),
        );
        let cache_removals = counter_vec(
            &registry,
            "aries_cache_removals_total",
            "Entries removed from the image cache, by cause: expired, size (evicted), replaced or explicit.",
            &["cause"],
        );
        let cache_entries = gauge(
            &registry,
            "aries_cache_entries",
            "Entries in the image cache.",
        );
        let cache_weighted_bytes = gauge(
            &registry,
            "aries_cache_weighted_bytes",
            "Weighted size of the image cache: bodies plus the per-entry estimate, in bytes.",
        );
        let db_queries = counter_vec(
            &registry,
            "aries_db_queries_total",
            "Image queries sent to the database, by outcome: found, not_found or error \
             (including no connection within the checkout timeout).",
            &["outcome"],
        );
        let db_query_duration = register(
            &registry,
            Histogram::with_opts(
                HistogramOpts::new(
                    "aries_db_query_duration_seconds",
                    "Duration of image queries, without the wait for a pooled connection.",
                )
                .buckets(DURATION_BUCKETS.to_vec()),
            )
            .expect("the histogram options are valid"),
        );
        let pool_connections = register(
            &registry,
            IntGaugeVec::new(
                Opts::new(
                    "aries_db_pool_connections",
                    "Open database connections of the pool, by state: in_use or idle.",
                ),
                &["state"],
            )
            .expect("the metric name and labels are valid"),
        );

        let change_polls = counter_vec(
            &registry,
            "aries_change_polls_total",
            "Polls of the change log, by result: ok or error.",
            &["result"],
        );
        let change_queries = register(
            &registry,
            IntCounter::new(
                "aries_change_queries_total",
                "Queries that change detection sent to the database.",
            )
            .expect("the metric name is valid"),
        );
        let change_invalidations = register(
            &registry,
            IntCounter::new(
                "aries_change_invalidations_total",
                "Cache entries removed because the change log named their id.",
            )
            .expect("the metric name is valid"),
        );
        let change_lag = gauge(
            &registry,
            "aries_change_lag_seconds",
            "Seconds since the last successful poll of the change log; -1 before the first.",
        );

        let mut hot_requests = Vec::new();
        for method in HOT_METHODS {
            for status in HOT_STATUSES {
                let status = status.to_string();
                hot_requests.push(http_requests.with_label_values(&["image", method, &status]));
            }
        }
        let image_duration = http_duration.with_label_values(&["image"]);

        Self {
            hot_requests,
            image_duration,
            change_polls_ok: change_polls.with_label_values(&["ok"]),
            change_polls_failed: change_polls.with_label_values(&["error"]),
            change_queries,
            change_invalidations,
            change_last_success: Default::default(),
            change_lag,
            cache_hits: cache_lookups.with_label_values(&["hit"]),
            cache_missing_hits: cache_lookups.with_label_values(&["missing_hit"]),
            cache_stale_hits: cache_lookups.with_label_values(&["stale"]),
            cache_misses: cache_lookups.with_label_values(&["miss"]),
            db_queries_found: db_queries.with_label_values(&["found"]),
            db_queries_not_found: db_queries.with_label_values(&["not_found"]),
            db_queries_failed: db_queries.with_label_values(&["error"]),
            http_requests,
            http_duration,
            cache_loads_coalesced,
            cache_removals,
            cache_entries,
            cache_weighted_bytes,
            db_query_duration,
            pool_connections,
            registry,
        }
    }

    /// Counts one completed request. `route` is a fixed route name, never a
    /// raw path, so that the number of series stays bounded.
    pub fn observe_request(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        // The responses that polling clients get most often have their series
        // resolved in advance, which saves two label lookups per request.
        let hot = (route == "image")
            .then(|| {
                let method_index = HOT_METHODS.iter().position(|hot| *hot == method)?;
                let status_index = HOT_STATUSES.iter().position(|hot| *hot == status)?;
                Some(&self.hot_requests[method_index * HOT_STATUSES.len() + status_index])
            })
            .flatten();
        match hot {
            Some(counter) => counter.inc(),
            None => {
                let mut status_text = itoa::Buffer::new();
                self.http_requests
                    .with_label_values(&[route, method, status_text.format(status)])
                    .inc();
            }
        }
        let seconds = elapsed.as_secs_f64();
        if route == "image" {
            self.image_duration.observe(seconds);
        } else {
            self.http_duration
                .with_label_values(&[route])
                .observe(seconds);
        }
    }

    pub fn observe_query(&self, elapsed: Duration) {
        self.db_query_duration.observe(elapsed.as_secs_f64());
    }

    pub fn count_cache_removal(&self, cause: &str) {
        self.cache_removals.with_label_values(&[cause]).inc();
    }

    pub fn set_cache_size(&self, entries: u64, weighted_bytes: u64) {
        self.cache_entries
            .set(i64::try_from(entries).unwrap_or(i64::MAX));
        self.cache_weighted_bytes
            .set(i64::try_from(weighted_bytes).unwrap_or(i64::MAX));
    }

    pub fn set_pool_connections(&self, in_use: u32, idle: u32) {
        self.pool_connections
            .with_label_values(&["in_use"])
            .set(i64::from(in_use));
        self.pool_connections
            .with_label_values(&["idle"])
            .set(i64::from(idle));
    }

    /// Renders every metric in the Prometheus text format.
    pub fn render(&self) -> String {
        let last = self
            .change_last_success
            .load(std::sync::atomic::Ordering::Relaxed);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::SystemTime::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs() as i64);
        self.change_lag.set(if last == 0 { -1 } else { now - last });
        let mut buffer = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buffer)
            .expect("encoding into a Vec does not fail");
        String::from_utf8(buffer).expect("the text format is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Middleware: counts every request by route name, method and status, and
/// observes its duration.
pub async fn record_metrics(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let state = request.app_data::<web::Data<AppState>>().cloned();
    let method = crate::http::method_label(request.method());
    let response = next.call(request).await?;
    if let Some(state) = state {
        // Named resources only, so that arbitrary paths cannot create series.
        let request = response.request();
        let route = match request.match_name() {
            Some(name) => name,
            None if request.path().starts_with(IMAGE_SCOPE) => "image",
            None => "other",
        };
        state
            .metrics
            .observe_request(route, method, response.status().as_u16(), started.elapsed());
    }
    Ok(response)
}
