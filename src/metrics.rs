//! Prometheus metrics of one service instance, rendered at `GET /metrics`.

use prometheus::{Encoder, IntCounter, IntCounterVec, Opts, Registry, TextEncoder};

/// Counters of one instance. Each instance has its own registry, so that
/// several services in one process, as in the tests, count separately.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    pub cache_hits: IntCounter,
    pub cache_misses: IntCounter,
    pub db_queries_found: IntCounter,
    pub db_queries_not_found: IntCounter,
    pub db_queries_failed: IntCounter,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let cache_lookups = IntCounterVec::new(
            Opts::new(
                "aries_cache_lookups_total",
                "Image cache lookups, by result (hit or miss).",
            ),
            &["result"],
        )
        .expect("the metric name and labels are valid");
        let db_queries = IntCounterVec::new(
            Opts::new(
                "aries_db_queries_total",
                "Image queries sent to the database, by outcome.",
            ),
            &["outcome"],
        )
        .expect("the metric name and labels are valid");
        registry
            .register(Box::new(cache_lookups.clone()))
            .expect("each metric is registered once");
        registry
            .register(Box::new(db_queries.clone()))
            .expect("each metric is registered once");

        // Labelled children are resolved once here, so that counting on the
        // request path is one atomic add without a label lookup.
        Self {
            cache_hits: cache_lookups.with_label_values(&["hit"]),
            cache_misses: cache_lookups.with_label_values(&["miss"]),
            db_queries_found: db_queries.with_label_values(&["found"]),
            db_queries_not_found: db_queries.with_label_values(&["not_found"]),
            db_queries_failed: db_queries.with_label_values(&["error"]),
            registry,
        }
    }

    /// Renders every metric in the Prometheus text format.
    pub fn render(&self) -> String {
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
