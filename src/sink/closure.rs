//! A sink made of one function: every measurement, as it happens, with its metric's key.

use std::fmt;
use std::sync::Arc;

use metrics::{CounterFn, GaugeFn, HistogramFn};

use super::{Counter, Gauge, Histogram, Key, MetricsSink};

/// One measurement handed to a [`FnSink`]'s function.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Measurement {
    /// A counter went up by this much (`redis_client_requests_total`: by 1 per command).
    CounterIncrement(u64),
    /// A counter was set to this value.
    CounterAbsolute(u64),
    /// A gauge was set to this value (the pool gauges).
    GaugeSet(f64),
    /// A gauge went up by this much (`redis_client_active_requests` when a command starts).
    GaugeIncrement(f64),
    /// A gauge went down by this much (`redis_client_active_requests` when it ends).
    GaugeDecrement(f64),
    /// A histogram got this sample (`redis_client_latency_seconds`: seconds).
    HistogramRecord(f64),
}

type MeasurementFn = dyn Fn(&Key, Measurement) + Send + Sync;

/// A [`MetricsSink`] that calls one function for every measurement: a custom sink in a few
/// lines, without writing `metrics` handle types.
///
/// The function runs inline on the measuring thread (on every command: keep it short and
/// never block — hand lines to a channel or buffer to send them elsewhere). The key's name
/// and labels are those in the [`MetricsSink`] table.
///
/// A StatsD sink, sending one line per measurement:
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use baseplate_redis::sink::{FnSink, Measurement};
/// use baseplate_redis::{config::RawConfig, Baseplate, ContextSpec, RedisClient};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let lines = Arc::new(Mutex::new(Vec::new())); // a UDP socket, in a real service
/// let sent = lines.clone();
/// let statsd = FnSink::new(move |key, measurement| {
///     let tags: Vec<String> = key.labels().map(|l| format!("{}:{}", l.key(), l.value())).collect();
///     let value = match measurement {
///         Measurement::CounterIncrement(n) => format!("{n}|c"),
///         Measurement::GaugeSet(v) => format!("{v}|g"),
///         Measurement::GaugeIncrement(v) => format!("+{v}|g"),
///         Measurement::GaugeDecrement(v) => format!("-{v}|g"),
///         Measurement::HistogramRecord(seconds) => format!("{}|ms", seconds * 1000.0),
///         _ => return,
///     };
///     let line = format!("{}:{value}|#{}", key.name(), tags.join(","));
///     sent.lock().unwrap().push(line);
/// });
///
/// let config = RawConfig::from_pairs([("cache.url", "memory://doc-statsd")]);
/// let mut baseplate = Baseplate::new(config).with_metrics_sink(Arc::new(statsd))?;
/// baseplate.configure_context(ContextSpec::new().client("cache", RedisClient::new()))?;
/// let mut cache = baseplate.make_context_object().redis("cache")?;
/// let _: () = redis::AsyncCommands::set(&mut cache, "k", "v").await?;
///
/// let lines = lines.lock().unwrap();
/// assert!(lines.contains(&"redis_client_requests_total:1|c|#redis_command:set,\
///     redis_database:0,redis_client_name:cache,redis_type:standalone,redis_success:true"
///     .to_string()), "{lines:#?}");
/// assert!(lines.iter().any(|l| l.starts_with("redis_client_latency_seconds:")));
/// # Ok(()) }
/// # tokio::runtime::Runtime::new().unwrap().block_on(run()).unwrap();
/// ```
#[derive(Clone)]
pub struct FnSink {
    f: Arc<MeasurementFn>,
}

impl FnSink {
    /// A sink calling `f` with each measurement and its metric's key.
    pub fn new(f: impl Fn(&Key, Measurement) + Send + Sync + 'static) -> Self {
        FnSink { f: Arc::new(f) }
    }

    fn handle(&self, key: &Key) -> Arc<FnHandle> {
        Arc::new(FnHandle {
            key: key.clone(),
            f: self.f.clone(),
        })
    }
}

impl fmt::Debug for FnSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FnSink").finish_non_exhaustive()
    }
}

impl MetricsSink for FnSink {
    fn counter(&self, key: &Key) -> Counter {
        Counter::from_arc(self.handle(key))
    }

    fn gauge(&self, key: &Key) -> Gauge {
        Gauge::from_arc(self.handle(key))
    }

    fn histogram(&self, key: &Key) -> Histogram {
        Histogram::from_arc(self.handle(key))
    }
}

/// One metric's handle: its key, kept so each measurement names its metric.
struct FnHandle {
    key: Key,
    f: Arc<MeasurementFn>,
}

impl FnHandle {
    fn send(&self, measurement: Measurement) {
        (self.f)(&self.key, measurement);
    }
}

impl CounterFn for FnHandle {
    fn increment(&self, value: u64) {
        self.send(Measurement::CounterIncrement(value));
    }

    fn absolute(&self, value: u64) {
        self.send(Measurement::CounterAbsolute(value));
    }
}

impl GaugeFn for FnHandle {
    fn increment(&self, value: f64) {
        self.send(Measurement::GaugeIncrement(value));
    }

    fn decrement(&self, value: f64) {
        self.send(Measurement::GaugeDecrement(value));
    }

    fn set(&self, value: f64) {
        self.send(Measurement::GaugeSet(value));
    }
}

impl HistogramFn for FnHandle {
    fn record(&self, value: f64) {
        self.send(Measurement::HistogramRecord(value));
    }
}
