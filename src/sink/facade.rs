//! The sink over the `metrics` crate facade: any `metrics` exporter receives our metrics.

use std::fmt;
use std::sync::Arc;

use metrics::{Level, Metadata, Recorder};

use super::{Counter, Gauge, Histogram, Key, MetricsSink};

static METADATA: Metadata<'static> =
    Metadata::new("baseplate_redis", Level::INFO, Some(module_path!()));

/// Sends metrics to a `metrics` recorder: the global one (installed by an exporter such as
/// `metrics-exporter-prometheus`), or one given explicitly.
///
/// Histogram buckets are the exporter's setting: give it
/// [`names::LATENCY_BUCKETS`](super::names::LATENCY_BUCKETS) (baseplate.py's
/// `default_latency_buckets`) for `redis_client_latency_seconds`, as
/// `sink::prometheus::builder` (feature `prometheus`) does, so that its `le` labels match
/// those of Python services.
///
/// ```
/// use std::sync::Arc;
/// use baseplate_redis::sink::{key, names, FacadeSink, MetricsSink};
/// use metrics_exporter_prometheus::PrometheusBuilder;
///
/// let recorder = PrometheusBuilder::new().build_recorder();
/// let handle = recorder.handle();
/// let sink = FacadeSink::with_recorder(Arc::new(recorder));
/// sink.counter(&key(names::REQUESTS_TOTAL, &[(names::LABEL_COMMAND, "get")]))
///     .increment(1);
/// assert!(handle.render().contains(r#"redis_client_requests_total{redis_command="get"} 1"#));
/// ```
#[derive(Clone, Default)]
pub struct FacadeSink {
    recorder: Option<Arc<dyn Recorder + Send + Sync>>,
}

impl FacadeSink {
    /// Registers metrics with the global recorder at the moment each is first used. When no
    /// recorder is installed, measurements are dropped (the facade's own behaviour).
    pub fn global() -> Self {
        FacadeSink { recorder: None }
    }

    /// Registers metrics with `recorder`, whatever the global recorder is.
    pub fn with_recorder(recorder: Arc<dyn Recorder + Send + Sync>) -> Self {
        FacadeSink {
            recorder: Some(recorder),
        }
    }

    fn register<T>(&self, f: impl FnOnce(&dyn Recorder) -> T) -> T {
        match &self.recorder {
            Some(recorder) => f(recorder.as_ref()),
            None => metrics::with_recorder(f),
        }
    }
}

impl fmt::Debug for FacadeSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let target = if self.recorder.is_some() {
            "explicit recorder"
        } else {
            "global recorder"
        };
        f.debug_tuple("FacadeSink").field(&target).finish()
    }
}

impl MetricsSink for FacadeSink {
    fn counter(&self, key: &Key) -> Counter {
        self.register(|r| r.register_counter(key, &METADATA))
    }

    fn gauge(&self, key: &Key) -> Gauge {
        self.register(|r| r.register_gauge(key, &METADATA))
    }

    fn histogram(&self, key: &Key) -> Histogram {
        self.register(|r| r.register_histogram(key, &METADATA))
    }
}
