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
    builder().build_recorder()
}

/// Installs a recorder with the crate's latency buckets as the global `metrics` recorder
/// (which [`FacadeSink::global`](super::FacadeSink::global), the default sink of a
/// [`Baseplate`](crate::Baseplate), reports to) and returns its handle.
///
/// Fails when a global recorder is already installed. Histograms need no upkeep; if you add
/// summaries or idle timeouts to the builder, call
/// [`PrometheusHandle::run_upkeep`] now and then.
pub fn install() -> Result<PrometheusHandle, BuildError> {
    builder().install_recorder()
}
