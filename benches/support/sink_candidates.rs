//! The metrics libraries considered for the native sink, each doing what one command does
//! to its metrics: in-flight gauge up, request counter, latency histogram with the crate's
//! buckets, gauge down. Kept so the choice can be checked again.

use std::sync::{Arc, Mutex};

use baseplate_redis::sink::prometheus::PrometheusHandle;
use baseplate_redis::sink::{key, names, Counter, FacadeSink, Gauge, Histogram};
use baseplate_redis::sink::{MetricsSink, NativeSink};

/// One metrics library, set up with the labels of one command.
pub trait Candidate: Sync {
    /// Records one command that took `latency` seconds.
    fn command(&self, latency: f64);
    /// What a scrape would do between measurements (drains sample buffers), untimed.
    fn upkeep(&self) {}
}

const LABELS: [(&str, &str); 5] = [
    (names::LABEL_COMMAND, "get"),
    (names::LABEL_DATABASE, "0"),
    (names::LABEL_CLIENT_NAME, "bench"),
    (names::LABEL_TYPE, names::TYPE_STANDALONE),
    (names::LABEL_SUCCESS, "true"),
];

/// Handles from one of our `MetricsSink`s.
pub struct SinkHandles {
    active: Gauge,
    requests: Counter,
    latency: Histogram,
    scrape: Option<PrometheusHandle>,
}

impl SinkHandles {
    fn new(sink: &dyn MetricsSink, scrape: Option<PrometheusHandle>) -> Self {
        SinkHandles {
            active: sink.gauge(&key(names::ACTIVE_REQUESTS, &LABELS[..4])),
            requests: sink.counter(&key(names::REQUESTS_TOTAL, &LABELS)),
            latency: sink.histogram(&key(names::LATENCY_SECONDS, &LABELS)),
            scrape,
        }
    }

    /// `metrics-exporter-prometheus` through the facade sink (the crate's recorder and
    /// buckets; built on `metrics-util`'s registry and atomic sample buckets).
    pub fn exporter() -> Self {
        let recorder = baseplate_redis::sink::prometheus::recorder();
        let handle = recorder.handle();
        Self::new(&FacadeSink::with_recorder(Arc::new(recorder)), Some(handle))
    }

    /// Our sharded sink.
    pub fn native() -> Self {
        Self::new(&NativeSink::new(), None)
    }
}

impl Candidate for SinkHandles {
    fn command(&self, latency: f64) {
        self.active.increment(1.0);
        self.requests.increment(1);
        self.latency.record(latency);
        self.active.decrement(1.0);
    }

    fn upkeep(&self) {
        if let Some(handle) = &self.scrape {
            handle.run_upkeep();
        }
    }
}

/// The `prometheus` crate's shared metrics (its `local` metrics are `!Sync` and must be
/// flushed by their thread, so they cannot back a handle shared by a runtime's workers).
pub struct PrometheusCrate {
    active: prometheus::IntGauge,
    requests: prometheus::IntCounter,
    latency: prometheus::Histogram,
}

impl PrometheusCrate {
    pub fn new() -> Self {
        let opts = prometheus::HistogramOpts::new(names::LATENCY_SECONDS, "latency")
            .buckets(names::LATENCY_BUCKETS.to_vec());
        PrometheusCrate {
            active: prometheus::IntGauge::new(names::ACTIVE_REQUESTS, "active").unwrap(),
            requests: prometheus::IntCounter::new(names::REQUESTS_TOTAL, "requests").unwrap(),
            latency: prometheus::Histogram::with_opts(opts).unwrap(),
        }
    }
}

impl Candidate for PrometheusCrate {
    fn command(&self, latency: f64) {
        self.active.inc();
        self.requests.inc();
        self.latency.observe(latency);
        self.active.dec();
    }
}

const BUCKETS: usize = names::LATENCY_BUCKETS.len();

/// The `measured` crate (bucket count fixed at compile time; a read lock per observation).
pub struct Measured {
    active: measured::Gauge,
    requests: measured::Counter,
    latency: measured::Histogram<BUCKETS>,
}

impl Measured {
    pub fn new() -> Self {
        let bounds: [f64; BUCKETS] = names::LATENCY_BUCKETS.try_into().unwrap();
        Measured {
            active: measured::Gauge::new(),
            requests: measured::Counter::new(),
            latency: measured::Histogram::with_metadata(
                measured::metric::histogram::Thresholds::with_buckets(bounds),
            ),
        }
    }
}

impl Candidate for Measured {
    fn command(&self, latency: f64) {
        self.active.inc();
        self.requests.inc();
        self.latency.observe(latency);
        self.active.dec();
    }
}

/// `metrics-util`'s fixed-bucket histogram (not thread-safe: behind a mutex), with atomics
/// for the counter and gauge.
pub struct MetricsUtil {
    active: std::sync::atomic::AtomicI64,
    requests: std::sync::atomic::AtomicU64,
    latency: Mutex<metrics_util::storage::Histogram>,
}

impl MetricsUtil {
    pub fn new() -> Self {
        MetricsUtil {
            active: Default::default(),
            requests: Default::default(),
            latency: Mutex::new(
                metrics_util::storage::Histogram::new(names::LATENCY_BUCKETS).unwrap(),
            ),
        }
    }
}

impl Candidate for MetricsUtil {
    fn command(&self, latency: f64) {
        use std::sync::atomic::Ordering::Relaxed;
        self.active.fetch_add(1, Relaxed);
        self.requests.fetch_add(1, Relaxed);
        self.latency.lock().unwrap().record(latency);
        self.active.fetch_sub(1, Relaxed);
    }
}
