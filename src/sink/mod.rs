//! Where measurements go: the [`MetricsSink`] trait and its sinks.
//!
//! A sink hands out `metrics` crate handles (`Counter`, `Gauge`, `Histogram`) for a metric
//! name and its labels. The client asks once per command name and keeps the handles, so the
//! per-command cost is a few atomic operations whatever the sink.
//!
//! Sinks: [`FacadeSink`] (any `metrics` exporter: Prometheus, StatsD…), [`RecordingSink`]
//! (tests), [`NoopSink`], [`FnSink`] (a function per measurement: a custom sink in a few
//! lines) and, with the `mock` feature, mockall's `MockMetricsSink`.

mod closure;
mod facade;
mod help;
pub mod names;
mod native;
mod noop;
#[cfg(feature = "prometheus")]
#[cfg_attr(docsrs, doc(cfg(feature = "prometheus")))]
pub mod prometheus;
mod recording;

#[cfg(any(test, feature = "mock"))]
#[cfg_attr(docsrs, doc(cfg(feature = "mock")))]
pub use crate::mock::MockMetricsSink;
pub use closure::{FnSink, Measurement};
pub use facade::FacadeSink;
/// The `metrics` crate's handle types and the traits behind them, re-exported so a sink
/// needs no `metrics` dependency of its own (nor one kept in step with ours).
pub use metrics::{Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, Label};
pub use native::{InvalidBuckets, NativeSink};
pub use noop::NoopSink;
pub use recording::RecordingSink;

/// A destination for metrics. Synchronous and object-safe.
///
/// # Contract
///
/// The client asks for a handle the first time it needs a series and keeps it: a sink is
/// asked about once per client, command and outcome, not once per command, so its methods
/// may be slow (a lock, a map lookup) while the handles it returns must be cheap (they are
/// touched on every command, from many threads). It must return a working handle for a
/// key asked for again (the runtime metrics are asked for on every report). To write a
/// sink without handle types, use [`FnSink`]; to give handles of your own, implement
/// [`CounterFn`], [`GaugeFn`] and [`HistogramFn`] and wrap them with `Counter::from_arc`
/// (and the like).
///
/// # Every metric
///
/// Names and labels are constants in [`names`]. Per command or pipeline, with the labels
/// `redis_command` (the lower-cased command name, or `pipeline`), `redis_database`,
/// `redis_client_name` and `redis_type` (`standalone` or `cluster`):
///
/// | kind | name | extra labels | asked for | touched |
/// |---|---|---|---|---|
/// | gauge | `redis_client_active_requests` | — | a command name's first use | `increment(1)` when a command starts, `decrement(1)` when it ends however it ends (success, error, cancellation) |
/// | counter | `redis_client_requests_total` | `redis_success` = `true` | a command name's first use | `increment(1)` per successful command |
/// | histogram | `redis_client_latency_seconds` | `redis_success` = `true` | a command name's first use | `record(seconds)` per successful command |
/// | counter | `redis_client_requests_total` | `redis_success` = `false` | the name's first failure | `increment(1)` per failed command |
/// | histogram | `redis_client_latency_seconds` | `redis_success` = `false` | the name's first failure | `record(seconds)` per failed command |
///
/// Per client, by [`Baseplate::report_runtime_metrics`](crate::Baseplate::report_runtime_metrics)
/// and the [`RuntimeReporter`](crate::RuntimeReporter) every interval: gauges, asked for and
/// `set` on every report, with baseplate.py's names and meanings. Labelled `client` = the
/// context name: `runtime.pool.size` (the size limit), `runtime.pool.in_use`,
/// `runtime.pool.open_and_available` (open − in use), `runtime.pool.open_connections`.
/// Labelled `redis_pool` = the context name: `redis_client_pool_max_size`,
/// `redis_client_pool_idle_connections` (free slots: limit − in use),
/// `redis_client_pool_active_connections` (open), `redis_client_pool_open_connections`,
/// `redis_client_pool_in_use_connections`.
///
/// The `redis_client_name` label is the client's `redis_client_name`, else its client
/// name, else the context name (see [`RedisClient`](crate::RedisClient)).
///
/// Connection lifecycle metrics, labelled `redis_pool` (and `reason`, `error_type` or
/// `redirect` where they say so), are touched as connections are opened, closed or fail
/// to open and as callers wait for the pool: the counters
/// `redis_client_connections_opened_total`, `redis_client_connections_closed_total`,
/// `redis_client_connect_failures_total`, `redis_client_reconnects_total`,
/// `redis_client_pool_timeouts_total`, `redis_client_cluster_redirects_total`,
/// `redis_client_cluster_topology_refreshes_total`, `redis_client_sentinel_failovers_total`,
/// the histograms `redis_client_connect_duration_seconds` and
/// `redis_client_pool_wait_seconds`, and the gauge `redis_client_pool_pending_requests`.
/// With [`MetricNaming`](crate::telemetry::MetricNaming) set to OpenTelemetry names, the
/// command and pool metrics are reported under `db.client.*` names instead (the
/// `names::OTEL_*` constants; see [`telemetry`](crate::telemetry)).
///
/// ```
/// use baseplate_redis::sink::{key, names, Counter, CounterFn, Gauge, Histogram, Key, MetricsSink};
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::sync::Arc;
///
/// /// Counts requests only; drops everything else.
/// #[derive(Debug, Default)]
/// struct RequestsOnly(Arc<AtomicU64>);
///
/// impl MetricsSink for RequestsOnly {
///     fn counter(&self, key: &Key) -> Counter {
///         if key.name() == names::REQUESTS_TOTAL {
///             Counter::from_arc(self.0.clone()) // AtomicU64 is a CounterFn
///         } else {
///             Counter::noop()
///         }
///     }
///     fn gauge(&self, _key: &Key) -> Gauge {
///         Gauge::noop()
///     }
///     fn histogram(&self, _key: &Key) -> Histogram {
///         Histogram::noop()
///     }
/// }
///
/// let sink = RequestsOnly::default();
/// sink.counter(&key(names::REQUESTS_TOTAL, &[])).increment(2);
/// assert_eq!(sink.0.load(Ordering::Relaxed), 2);
/// # let _ = <AtomicU64 as CounterFn>::increment;
/// ```
pub trait MetricsSink: Send + Sync + std::fmt::Debug {
    /// The counter for `key` (name and labels).
    fn counter(&self, key: &Key) -> Counter;
    /// The gauge for `key`.
    fn gauge(&self, key: &Key) -> Gauge;
    /// The histogram for `key`.
    fn histogram(&self, key: &Key) -> Histogram;
}

/// Builds a metric key from a name and `(label, value)` pairs.
pub fn key(name: &'static str, labels: &[(&'static str, &str)]) -> Key {
    let labels: Vec<Label> = labels
        .iter()
        .map(|(k, v)| Label::new(*k, v.to_string()))
        .collect();
    Key::from_parts(name, labels)
}
