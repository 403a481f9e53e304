//! Which metric names a client reports under: baseplate's, OpenTelemetry's, or both.

use std::fmt;
use std::str::FromStr;

/// The metric naming scheme of a client.
///
/// Baseplate's names (`redis_client_latency_seconds`…) are the default: existing dashboards
/// use them. OpenTelemetry's database conventions (`db.client.operation.duration`…) are
/// opt-in; `Both` reports each measurement under both names, for a migration.
///
/// ```
/// use baseplate_redis::telemetry::MetricNaming;
///
/// let naming: MetricNaming = "both".parse().unwrap();
/// assert!(naming.baseplate() && naming.opentelemetry());
/// assert!("statsd".parse::<MetricNaming>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
#[non_exhaustive]
pub enum MetricNaming {
    /// Baseplate's names only.
    #[default]
    Baseplate,
    /// OpenTelemetry's database conventions only.
    OpenTelemetry,
    /// Both, side by side.
    Both,
}

impl MetricNaming {
    /// Whether baseplate's names are reported.
    pub fn baseplate(self) -> bool {
        matches!(self, MetricNaming::Baseplate | MetricNaming::Both)
    }

    /// Whether OpenTelemetry's names are reported.
    pub fn opentelemetry(self) -> bool {
        matches!(self, MetricNaming::OpenTelemetry | MetricNaming::Both)
    }
}

/// A metric naming that is none of `baseplate`, `opentelemetry`, `both`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown metric naming {0:?}: expected baseplate, opentelemetry or both")]
pub struct UnknownMetricNaming(String);

impl FromStr for MetricNaming {
    type Err = UnknownMetricNaming;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "baseplate" => Ok(MetricNaming::Baseplate),
            "opentelemetry" | "otel" => Ok(MetricNaming::OpenTelemetry),
            "both" => Ok(MetricNaming::Both),
            _ => Err(UnknownMetricNaming(s.to_string())),
        }
    }
}

impl fmt::Display for MetricNaming {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MetricNaming::Baseplate => "baseplate",
            MetricNaming::OpenTelemetry => "opentelemetry",
            MetricNaming::Both => "both",
        })
    }
}
