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
    let mut builder = PrometheusBuilder::new().with_recommended_naming(true);
    for (name, values) in super::help::FIXED_BUCKETS {
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

/// Gives every metric of the crate its `# HELP` text, and the OpenTelemetry histograms the
/// unit that gives their Prometheus suffix.
fn describe(recorder: &PrometheusRecorder) {
    use super::help::{Kind, DESCRIPTIONS};
    use metrics::{Recorder, SharedString, Unit};

    for described in DESCRIPTIONS {
        let name = described.name.into();
        let unit = described.seconds.then_some(Unit::Seconds);
        let help = SharedString::const_str(described.help);
        match described.kind {
            Kind::Counter => recorder.describe_counter(name, unit, help),
            Kind::Gauge => recorder.describe_gauge(name, unit, help),
            Kind::Histogram => recorder.describe_histogram(name, unit, help),
        }
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
