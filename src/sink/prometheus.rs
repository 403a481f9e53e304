//! A Prometheus recorder set up for this crate's metrics (feature `prometheus`).
//!
//! [`builder`] is a `metrics-exporter-prometheus` [`PrometheusBuilder`] whose
//! `redis_client_latency_seconds` is a real Prometheus histogram with the buckets of
//! [`LATENCY_BUCKETS`](super::names::LATENCY_BUCKETS), baseplate.py's
//! `default_latency_buckets` (without buckets the exporter renders histograms as summaries);
//! [`builder_with_latency_buckets`] sets others. [`recorder`] builds a recorder from it to
//! hand to [`FacadeSink::with_recorder`](super::FacadeSink::with_recorder), and [`install`]
//! makes it the global `metrics` recorder ([`recorder_with`] and [`install_with`] do the same
//! from a builder of yours). Either way, serve [`PrometheusHandle::render`] on your
//! `/metrics` route. The `# HELP` texts are baseplate.py's.
//!
//! ```
//! use std::sync::Arc;
//! use baseplate_redis::sink::{prometheus, FacadeSink, MetricsSink};
//! use baseplate_redis::sink::{key, names};
//!
//! let recorder = prometheus::recorder();
//! let handle = recorder.handle();
//! let sink = FacadeSink::with_recorder(Arc::new(recorder));
//! sink.histogram(&key(names::LATENCY_SECONDS, &[(names::LABEL_COMMAND, "get")]))
//!     .record(0.003);
//!
//! let text = handle.render();
//! assert!(text.contains(r#"redis_client_latency_seconds_bucket{redis_command="get",le="0.0025"} 0"#));
//! assert!(text.contains(r#"redis_client_latency_seconds_bucket{redis_command="get",le="0.005"} 1"#));
//! assert!(text.contains(r#"redis_client_latency_seconds_bucket{redis_command="get",le="30"} 1"#));
//! assert!(text.contains("# HELP redis_client_latency_seconds Latency histogram for calls made by clients"));
//!
//! // Other buckets, for users who want them.
//! let builder = prometheus::builder_with_latency_buckets(&[0.01, 0.001, 0.1]).unwrap();
//! let recorder = prometheus::recorder_with(builder);
//! let handle = recorder.handle();
//! let sink = FacadeSink::with_recorder(Arc::new(recorder));
//! sink.histogram(&key(names::LATENCY_SECONDS, &[])).record(0.003);
//! let text = handle.render();
//! assert!(text.contains(r#"redis_client_latency_seconds_bucket{le="0.001"} 0"#));
//! assert!(text.contains(r#"redis_client_latency_seconds_bucket{le="0.01"} 1"#));
//! assert!(!text.contains(r#"le="0.005""#));
//! ```

pub use metrics_exporter_prometheus::{
    BuildError, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

use metrics_exporter_prometheus::Matcher;

use super::names;

/// A [`PrometheusBuilder`] with the crate's histogram buckets (baseplate.py's latency
/// buckets; for `db.client.operation.duration`, the ones the OpenTelemetry conventions
/// advise) and Prometheus's recommended naming, which renders the OpenTelemetry names the
/// usual way: dots as underscores, the unit as a suffix, `_total` on counters
/// (`db_client_operation_duration_seconds`, `db_client_connection_timeouts_total`). Add your
/// own settings to it (a later `set_buckets_for_metric` for the same metric wins).
pub fn builder() -> PrometheusBuilder {
    // Only an empty bucket list is refused, and ours is not empty.
    builder_with_latency_buckets(names::LATENCY_BUCKETS).unwrap_or_else(|_| base_builder())
}

/// A [`PrometheusBuilder`] whose `redis_client_latency_seconds` histogram has the upper
/// bounds `buckets` (seconds; sorted here, duplicates and non-finite values dropped).
///
/// Fails when no bucket is left. Histograms aggregate across services only when their
/// buckets match: keep [`LATENCY_BUCKETS`](names::LATENCY_BUCKETS) where Python services
/// report the same metric.
pub fn builder_with_latency_buckets(buckets: &[f64]) -> Result<PrometheusBuilder, BuildError> {
    let mut buckets: Vec<f64> = buckets.iter().copied().filter(|b| b.is_finite()).collect();
    buckets.sort_by(f64::total_cmp);
    buckets.dedup();
    base_builder()
        .set_buckets_for_metric(Matcher::Full(names::LATENCY_SECONDS.to_string()), &buckets)
}

/// Recommended naming, and the buckets of every histogram but the latency one.
fn base_builder() -> PrometheusBuilder {
    let buckets: [(&str, &[f64]); 5] = [
        (
            names::OTEL_OPERATION_DURATION,
            names::OTEL_OPERATION_DURATION_BUCKETS,
        ),
        (
            names::CONNECT_DURATION_SECONDS,
            names::CONNECTION_TIME_BUCKETS,
        ),
        (names::POOL_WAIT_SECONDS, names::CONNECTION_TIME_BUCKETS),
        (
            names::OTEL_CONNECTION_CREATE_TIME,
            names::CONNECTION_TIME_BUCKETS,
        ),
        (
            names::OTEL_CONNECTION_WAIT_TIME,
            names::CONNECTION_TIME_BUCKETS,
        ),
    ];
    let mut builder = PrometheusBuilder::new().with_recommended_naming(true);
    for (name, values) in buckets {
        // Only an empty bucket list is refused, and none of these is empty.
        builder = builder
            .set_buckets_for_metric(Matcher::Full(name.to_string()), values)
            .expect("bucket lists are not empty");
    }
    builder
}

/// A recorder with the crate's latency buckets, not installed anywhere: give it to
/// [`FacadeSink::with_recorder`](super::FacadeSink::with_recorder) and keep its
/// [`handle`](PrometheusRecorder::handle) to render `/metrics`.
pub fn recorder() -> PrometheusRecorder {
    recorder_with(builder())
}

/// A recorder from `builder` (such as [`builder_with_latency_buckets`]'s), with the crate's
/// `# HELP` texts, not installed anywhere.
pub fn recorder_with(builder: PrometheusBuilder) -> PrometheusRecorder {
    let recorder = builder.build_recorder();
    describe(&recorder);
    recorder
}

/// Gives every metric of the crate its `# HELP` text.
fn describe(recorder: &PrometheusRecorder) {
    use metrics::{Recorder, SharedString, Unit};

    let help = |text: &'static str| SharedString::const_str(text);
    // baseplate.py's texts where it has the metric, so that both kinds of service agree.
    let histograms = [
        (
            names::LATENCY_SECONDS,
            "Latency histogram for calls made by clients",
        ),
        (
            names::CONNECT_DURATION_SECONDS,
            "How long opening a Redis connection took, in seconds",
        ),
        (
            names::POOL_WAIT_SECONDS,
            "How long callers waited for a pooled Redis connection, in seconds",
        ),
    ];
    let counters = [
        (
            names::REQUESTS_TOTAL,
            "Total number of requests made by client",
        ),
        (names::CONNECTIONS_OPENED_TOTAL, "Redis connections opened"),
        (
            names::CONNECTIONS_CLOSED_TOTAL,
            "Redis connections closed, by reason",
        ),
        (
            names::CONNECT_FAILURES_TOTAL,
            "Failed attempts to open a Redis connection, by error type",
        ),
        (
            names::RECONNECTS_TOTAL,
            "Redis connections opened to replace one lost to a failure",
        ),
        (
            names::POOL_TIMEOUTS_TOTAL,
            "Callers that gave up waiting for a pooled Redis connection",
        ),
        (
            names::CLUSTER_REDIRECTS_TOTAL,
            "MOVED and ASK redirects followed by the cluster client",
        ),
        (
            names::CLUSTER_TOPOLOGY_REFRESHES_TOTAL,
            "Slot-map loads and refreshes of the cluster client",
        ),
        (
            names::SENTINEL_FAILOVERS_TOTAL,
            "New primaries named by the sentinels and followed",
        ),
    ];
    // OpenTelemetry names, with the units that give their Prometheus suffixes.
    let otel_histograms = [
        (
            names::OTEL_OPERATION_DURATION,
            "Duration of database client operations",
        ),
        (
            names::OTEL_CONNECTION_CREATE_TIME,
            "The time it took to create a new connection",
        ),
        (
            names::OTEL_CONNECTION_WAIT_TIME,
            "The time it took to obtain an open connection from the pool",
        ),
    ];
    let otel_gauges = [
        (
            names::OTEL_CONNECTION_COUNT,
            "The number of connections that are currently in the state described by the state attribute",
        ),
        (
            names::OTEL_CONNECTION_MAX,
            "The maximum number of open connections allowed",
        ),
        (
            names::OTEL_CONNECTION_PENDING_REQUESTS,
            "The number of current pending requests for an open connection",
        ),
    ];
    for (name, text) in otel_histograms {
        recorder.describe_histogram(name.into(), Some(Unit::Seconds), help(text));
    }
    for (name, text) in otel_gauges {
        recorder.describe_gauge(name.into(), None, help(text));
    }
    recorder.describe_counter(
        names::OTEL_CONNECTION_TIMEOUTS.into(),
        None,
        help("The number of connection timeouts that have occurred trying to obtain a connection from the pool"),
    );
    let gauges = [
        (
            names::ACTIVE_REQUESTS,
            "Number of active requests for a given client",
        ),
        (
            names::POOL_MAX_SIZE,
            "Maximum number of connections allowed in this redis client connection pool",
        ),
        (
            names::POOL_IDLE_CONNECTIONS,
            // The value is the free slots (max size - in use), as baseplate.py's.
            "Number of idle connections in this redis client connection pool",
        ),
        (
            names::POOL_ACTIVE_CONNECTIONS,
            "Number of open connections in this redis client connection pool",
        ),
        (
            names::POOL_OPEN_CONNECTIONS,
            "Number of open connections in this redis client connection pool",
        ),
        (
            names::POOL_IN_USE_CONNECTIONS,
            "Number of connections of this redis client connection pool serving a caller",
        ),
        (
            names::RUNTIME_POOL_SIZE,
            "The size limit of the connection pool",
        ),
        (
            names::RUNTIME_POOL_IN_USE,
            "Connections of the pool checked out and being used",
        ),
        (
            names::POOL_PENDING_REQUESTS,
            "Callers waiting for a pooled Redis connection",
        ),
        (
            names::RUNTIME_POOL_OPEN_AND_AVAILABLE,
            "Open connections of the pool not in use",
        ),
        (
            names::RUNTIME_POOL_OPEN_CONNECTIONS,
            "Open connections of the pool",
        ),
    ];
    for (name, text) in histograms {
        recorder.describe_histogram(name.into(), None, help(text));
    }
    for (name, text) in counters {
        recorder.describe_counter(name.into(), None, help(text));
    }
    for (name, text) in gauges {
        recorder.describe_gauge(name.into(), None, help(text));
    }
}

/// Installs a recorder with the crate's latency buckets as the global `metrics` recorder
/// (which [`FacadeSink::global`](super::FacadeSink::global), the default sink of a
/// [`Baseplate`](crate::Baseplate), reports to) and returns its handle.
///
/// Fails when a global recorder is already installed. Histograms need no upkeep; if you add
/// summaries or idle timeouts to the builder, call
/// [`PrometheusHandle::run_upkeep`] now and then.
pub fn install() -> Result<PrometheusHandle, BuildError> {
    install_with(builder())
}

/// Installs a recorder from `builder` (such as [`builder_with_latency_buckets`]'s), with the
/// crate's `# HELP` texts, as the global `metrics` recorder and returns its handle; fails
/// when a global recorder is already installed.
pub fn install_with(builder: PrometheusBuilder) -> Result<PrometheusHandle, BuildError> {
    let recorder = recorder_with(builder);
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder)?;
    Ok(handle)
}
