//! Where measurements go: the [`MetricsSink`] trait and its sinks.
//!
//! A sink hands out `metrics` crate handles (`Counter`, `Gauge`, `Histogram`) for a metric
//! name and its labels. The client asks once per command name and keeps the handles, so the
//! per-command cost is a few atomic operations whatever the sink.

mod facade;
mod help;
pub mod names;
mod native;
mod noop;
#[cfg(feature = "prometheus")]
#[cfg_attr(docsrs, doc(cfg(feature = "prometheus")))]
pub mod prometheus;
mod recording;

pub use facade::FacadeSink;
pub use metrics::{Counter, Gauge, Histogram, Key, Label};
pub use native::{InvalidBuckets, NativeSink};
pub use noop::NoopSink;
pub use recording::RecordingSink;

/// A destination for metrics. Synchronous and object-safe; implementations must be cheap to
/// call more than once for the same key (the client caches what they return).
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
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
