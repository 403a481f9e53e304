//! A Prometheus recorder set up for this crate's metrics (feature `prometheus`).
//!
//! [`builder`] is a `metrics-exporter-prometheus` [`PrometheusBuilder`] whose
//! `redis_client_latency_seconds` is a real Prometheus histogram with the buckets of
//! [`LATENCY_BUCKETS`](super::names::LATENCY_BUCKETS) (without them the exporter renders
//! histograms as summaries). [`recorder`] builds a recorder from it to hand to
//! [`FacadeSink::with_recorder`](super::FacadeSink::with_recorder), and [`install`] makes it
//! the global `metrics` recorder. Either way, serve [`PrometheusHandle::render`] on your
//! `/metrics` route.
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
//! assert!(text.contains(r#"redis_client_latency_seconds_bucket{redis_command="get",le="0.005"} 1"#));
//! assert!(text.contains("# HELP redis_client_latency_seconds Latency of the Redis commands"));
//! ```

pub use metrics_exporter_prometheus::{
    BuildError, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

use metrics_exporter_prometheus::Matcher;

use super::names;

/// A [`PrometheusBuilder`] with the crate's latency buckets; add your own settings to it.
pub fn builder() -> PrometheusBuilder {
    PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(names::LATENCY_SECONDS.to_string()),
            names::LATENCY_BUCKETS,
        )
        // Only an empty bucket list is refused, and ours is not empty.
        .unwrap_or_else(|_| PrometheusBuilder::new())
}

/// A recorder with the crate's latency buckets, not installed anywhere: give it to
/// [`FacadeSink::with_recorder`](super::FacadeSink::with_recorder) and keep its
/// [`handle`](PrometheusRecorder::handle) to render `/metrics`.
pub fn recorder() -> PrometheusRecorder {
    let recorder = builder().build_recorder();
    describe(&recorder);
    recorder
}

/// Gives every metric of the crate its `# HELP` text.
fn describe(recorder: &PrometheusRecorder) {
    use metrics::{Recorder, SharedString};

    let help = |text: &'static str| SharedString::const_str(text);
    let histograms = [(
        names::LATENCY_SECONDS,
        "Latency of the Redis commands and pipelines made by the client, in seconds",
    )];
    let counters = [(
        names::REQUESTS_TOTAL,
        "Redis commands and pipelines made by the client",
    )];
    let gauges = [
        (
            names::ACTIVE_REQUESTS,
            "Redis commands and pipelines in flight",
        ),
        (
            names::POOL_MAX_SIZE,
            "The most connections the client's pool opens",
        ),
        (
            names::POOL_IDLE_CONNECTIONS,
            "Open connections of the pool not in use",
        ),
        (
            names::POOL_ACTIVE_CONNECTIONS,
            "Connections of the pool in use",
        ),
        (
            names::RUNTIME_POOL_SIZE,
            "The most connections the client's pool opens",
        ),
        (names::RUNTIME_POOL_IN_USE, "Connections of the pool in use"),
        (
            names::RUNTIME_POOL_OPEN_AND_AVAILABLE,
            "Open connections of the pool not in use",
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
    let recorder = recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder)?;
    Ok(handle)
}
