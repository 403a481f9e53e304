//! The native Prometheus sink: per-thread sharded metrics, rendered as Prometheus text.

mod exposition;
mod sharded;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use self::exposition::Exposition;
use self::sharded::{ShardedCounter, ShardedGauge, ShardedHistogram};
use super::help::fixed_buckets;
use super::{names, Counter, Gauge, Histogram, Key, MetricsSink};

/// A sink that keeps its own Prometheus metrics, sharded per thread, and renders them as
/// Prometheus text for a `/metrics` route. The sink to use with Prometheus.
///
/// Each counter, gauge and histogram keeps one shard per thread slot (sized from the
/// number of CPUs), each on cache lines of its own: recording a measurement is one or two
/// uncontended atomic adds on lines no other core writes, and the shards are only added up
/// by [`render`](Self::render). Histograms have fixed buckets (by default
/// [`LATENCY_BUCKETS`](names::LATENCY_BUCKETS)), so memory stays flat however many commands
/// run and however rarely `/metrics` is scraped. Nothing needs upkeep.
///
/// It renders the same names, labels, buckets and `# HELP` texts as
/// [`FacadeSink`](super::FacadeSink) over the [`prometheus`](super::prometheus) recorder
/// (whose histograms push every sample into a shared buffer until the next scrape); keep that
/// one for other `metrics` exporters (StatsD, OpenTelemetry…).
///
/// ```
/// use std::sync::Arc;
/// use baseplate_redis::sink::{names, NativeSink};
/// use baseplate_redis::{config::RawConfig, Baseplate, ContextSpec, RedisClient};
/// use redis::AsyncCommands;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let metrics = NativeSink::new();
/// let config = RawConfig::from_pairs([("foo.url", "memory://native-doc")]);
/// let mut baseplate = Baseplate::new(config).with_metrics_sink(Arc::new(metrics.clone()))?;
/// baseplate.configure_context(ContextSpec::new().client("foo", RedisClient::new()))?;
///
/// let mut foo = baseplate.make_context_object().redis("foo")?;
/// let _: () = foo.set("k", "v").await?;
///
/// let text = metrics.render(); // serve this on `/metrics`
/// assert!(text.contains("# TYPE redis_client_latency_seconds histogram"));
/// assert!(text.contains(
///     "redis_client_requests_total{redis_command=\"set\",redis_database=\"0\",\
///      redis_client_name=\"foo\",redis_type=\"standalone\",redis_success=\"true\"} 1"
/// ));
/// # Ok(()) }
/// # tokio::runtime::Runtime::new().unwrap().block_on(run()).unwrap();
/// ```
#[derive(Clone)]
pub struct NativeSink {
    registry: Arc<Registry>,
}

/// The bucket bounds given to [`NativeSink::with_buckets`] cannot make a histogram.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("histogram bucket bounds {bounds:?}: {reason}")]
#[non_exhaustive]
pub struct InvalidBuckets {
    /// The bounds given.
    pub bounds: Vec<f64>,
    /// What is wrong with them.
    pub reason: &'static str,
}

/// Every series of the sink, by key. Locked only to make a series or to render.
struct Registry {
    bounds: Box<[f64]>,
    series: Mutex<Series>,
}

#[derive(Default)]
struct Series {
    counters: HashMap<Key, Arc<ShardedCounter>>,
    gauges: HashMap<Key, Arc<ShardedGauge>>,
    histograms: HashMap<Key, Arc<ShardedHistogram>>,
}

impl NativeSink {
    /// A sink whose latency histograms have the crate's latency buckets
    /// ([`LATENCY_BUCKETS`](names::LATENCY_BUCKETS)); the crate's other histograms (connect
    /// and pool-wait times, OpenTelemetry durations) have the buckets `sink::prometheus`
    /// gives them.
    pub fn new() -> Self {
        Self::with_sorted_buckets(names::LATENCY_BUCKETS.into())
    }

    /// A sink whose latency histograms (and any histogram not of the crate) have the upper
    /// bounds `bounds` (in any order; `+Inf` is always added). Fails when there are none, or
    /// one is not a finite number.
    pub fn with_buckets(bounds: &[f64]) -> Result<Self, InvalidBuckets> {
        let invalid = |reason| InvalidBuckets {
            bounds: bounds.to_vec(),
            reason,
        };
        if bounds.is_empty() {
            return Err(invalid("a histogram needs at least one bound"));
        }
        if bounds.iter().any(|bound| !bound.is_finite()) {
            return Err(invalid(
                "every bound must be a finite number (+Inf is implied)",
            ));
        }
        let mut sorted = bounds.to_vec();
        sorted.sort_by(f64::total_cmp);
        sorted.dedup();
        Ok(Self::with_sorted_buckets(sorted.into()))
    }

    fn with_sorted_buckets(bounds: Box<[f64]>) -> Self {
        NativeSink {
            registry: Arc::new(Registry {
                bounds,
                series: Mutex::new(Series::default()),
            }),
        }
    }

    /// Every metric in the Prometheus text exposition format: families sorted by name,
    /// counters first, then gauges, then histograms, each with its `# HELP` (for the crate's
    /// metrics) and `# TYPE` lines. Names are made valid Prometheus names (`runtime.pool.size`
    /// becomes `runtime_pool_size`).
    pub fn render(&self) -> String {
        let series = self.registry.lock();
        let mut out = Exposition::default();
        for (key, counter) in &series.counters {
            out.counter(key, counter.value());
        }
        for (key, gauge) in &series.gauges {
            out.gauge(key, gauge.value());
        }
        for (key, histogram) in &series.histograms {
            out.histogram(key, histogram.bounds(), &histogram.totals());
        }
        drop(series);
        out.finish()
    }
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, Series> {
        self.series.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Default for NativeSink {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for NativeSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let series = self.registry.lock();
        f.debug_struct("NativeSink")
            .field("buckets", &self.registry.bounds)
            .field("counters", &series.counters.len())
            .field("gauges", &series.gauges.len())
            .field("histograms", &series.histograms.len())
            .finish()
    }
}

impl MetricsSink for NativeSink {
    fn counter(&self, key: &Key) -> Counter {
        let mut series = self.registry.lock();
        let counter = series
            .counters
            .entry(key.clone())
            .or_insert_with(|| Arc::new(ShardedCounter::new()));
        Counter::from_arc(counter.clone())
    }

    fn gauge(&self, key: &Key) -> Gauge {
        let mut series = self.registry.lock();
        let gauge = series
            .gauges
            .entry(key.clone())
            .or_insert_with(|| Arc::new(ShardedGauge::new()));
        Gauge::from_arc(gauge.clone())
    }

    fn histogram(&self, key: &Key) -> Histogram {
        let mut series = self.registry.lock();
        // The crate's other histograms keep their own buckets, as with the exporter.
        let bounds = fixed_buckets(key.name()).unwrap_or(&self.registry.bounds);
        let histogram = series
            .histograms
            .entry(key.clone())
            .or_insert_with(|| Arc::new(ShardedHistogram::new(bounds)));
        Histogram::from_arc(histogram.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::key;

    #[test]
    fn same_key_same_series() {
        let sink = NativeSink::new();
        let labels = [(names::LABEL_COMMAND, "get")];
        sink.counter(&key(names::REQUESTS_TOTAL, &labels))
            .increment(2);
        sink.counter(&key(names::REQUESTS_TOTAL, &labels))
            .increment(3);
        sink.counter(&key(
            names::REQUESTS_TOTAL,
            &[(names::LABEL_COMMAND, "set")],
        ))
        .increment(1);
        let text = sink.render();
        assert!(
            text.contains("redis_client_requests_total{redis_command=\"get\"} 5\n"),
            "{text}"
        );
        assert!(
            text.contains("redis_client_requests_total{redis_command=\"set\"} 1\n"),
            "{text}"
        );
    }

    #[test]
    fn buckets_are_checked_and_sorted() {
        assert!(NativeSink::with_buckets(&[]).is_err());
        let err = NativeSink::with_buckets(&[1.0, f64::INFINITY]).unwrap_err();
        assert!(err.to_string().contains("finite"), "{err}");
        assert!(NativeSink::with_buckets(&[f64::NAN]).is_err());

        let sink = NativeSink::with_buckets(&[2.0, 0.5, 2.0]).unwrap();
        sink.histogram(&key("h", &[])).record(1.0);
        let text = sink.render();
        assert_eq!(
            text,
            "# TYPE h histogram\n\
             h_bucket{le=\"0.5\"} 0\n\
             h_bucket{le=\"2\"} 1\n\
             h_bucket{le=\"+Inf\"} 1\n\
             h_sum 1\n\
             h_count 1\n\n"
        );
    }
}
