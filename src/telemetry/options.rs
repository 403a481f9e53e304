//! What a client reports beyond the defaults.

use super::MetricNaming;

/// A client's telemetry settings: its metric naming, and the opt-in span attributes.
///
/// ```
/// use baseplate_redis::telemetry::{MetricNaming, TelemetryOptions};
/// use baseplate_redis::RedisClient;
///
/// let telemetry = TelemetryOptions::new()
///     .metric_naming(MetricNaming::Both)
///     .query_text(true);
/// let client = RedisClient::new().telemetry(telemetry);
/// # let _ = client;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct TelemetryOptions {
    /// The names metrics are reported under (default: baseplate's).
    pub metric_naming: MetricNaming,
    /// Whether command spans carry `db.query.text` (the command with `?` for every
    /// argument; never values). Off by default, as the conventions advise.
    pub query_text: bool,
}

impl TelemetryOptions {
    /// Baseplate's metric names, no opt-in attributes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reports metrics under `naming`.
    pub fn metric_naming(mut self, naming: MetricNaming) -> Self {
        self.metric_naming = naming;
        self
    }

    /// Adds `db.query.text` to command and pipeline spans.
    pub fn query_text(mut self, enabled: bool) -> Self {
        self.query_text = enabled;
        self
    }
}
