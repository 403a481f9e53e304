//! The metrics libraries considered for the native sink, each doing what one command does
//! to its metrics: in-flight gauge up, request counter, latency histogram with the crate's
//! buckets, gauge down. Every candidate is reached through `metrics` handles, as a
//! `MetricsSink` must hand them out. Kept so the choice can be checked again.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use metrics::{CounterFn, GaugeFn, HistogramFn};

use baseplate_redis::sink::prometheus::PrometheusHandle;
use baseplate_redis::sink::{key, names, Counter, FacadeSink, Gauge, Histogram};
use baseplate_redis::sink::{MetricsSink, NativeSink};

const LABELS: [(&str, &str); 5] = [
    (names::LABEL_COMMAND, "get"),
    (names::LABEL_DATABASE, "0"),
    (names::LABEL_CLIENT_NAME, "bench"),
    (names::LABEL_TYPE, names::TYPE_STANDALONE),
    (names::LABEL_SUCCESS, "true"),
];

/// The handles of one command's metrics, from one metrics library.
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

    fn from_parts(
        active: Arc<impl GaugeFn + Send + Sync + 'static>,
        requests: Arc<impl CounterFn + Send + Sync + 'static>,
        latency: Arc<impl HistogramFn + Send + Sync + 'static>,
    ) -> Self {
        SinkHandles {
            active: Gauge::from_arc(active),
            requests: Counter::from_arc(requests),
            latency: Histogram::from_arc(latency),
            scrape: None,
        }
    }
}

impl SinkHandles {
    /// Records one command that took `latency` seconds.
    pub fn command(&self, latency: f64) {
        self.active.increment(1.0);
        self.requests.increment(1);
        self.latency.record(latency);
        self.active.decrement(1.0);
    }

    /// What a scrape would do between measurements (drains sample buffers), untimed.
    pub fn upkeep(&self) {
        if let Some(handle) = &self.scrape {
            handle.run_upkeep();
        }
    }
}

/// The `prometheus` crate's shared metrics (its `local` metrics are `!Sync` and must be
/// flushed by their thread, so they cannot back a handle shared by a runtime's workers).
pub fn prometheus_crate() -> SinkHandles {
    struct C(prometheus::IntCounter);
    struct G(prometheus::Gauge);
    struct H(prometheus::Histogram);
    impl CounterFn for C {
        fn increment(&self, value: u64) {
            self.0.inc_by(value);
        }
        fn absolute(&self, _value: u64) {}
    }
    impl GaugeFn for G {
        fn increment(&self, value: f64) {
            self.0.add(value);
        }
        fn decrement(&self, value: f64) {
            self.0.sub(value);
        }
        fn set(&self, value: f64) {
            self.0.set(value);
        }
    }
    impl HistogramFn for H {
        fn record(&self, value: f64) {
            self.0.observe(value);
        }
    }
    let opts = prometheus::HistogramOpts::new(names::LATENCY_SECONDS, "latency")
        .buckets(names::LATENCY_BUCKETS.to_vec());
    SinkHandles::from_parts(
        Arc::new(G(
            prometheus::Gauge::new(names::ACTIVE_REQUESTS, "active").unwrap()
        )),
        Arc::new(C(prometheus::IntCounter::new(
            names::REQUESTS_TOTAL,
            "requests",
        )
        .unwrap())),
        Arc::new(H(prometheus::Histogram::with_opts(opts).unwrap())),
    )
}

const BUCKETS: usize = names::LATENCY_BUCKETS.len();

/// The `measured` crate (bucket count fixed at compile time; a shared read lock per
/// observation).
pub fn measured() -> SinkHandles {
    struct C(measured::Counter);
    struct G(measured::Gauge);
    struct H(measured::Histogram<BUCKETS>);
    impl CounterFn for C {
        fn increment(&self, value: u64) {
            self.0.inc_by(value);
        }
        fn absolute(&self, _value: u64) {}
    }
    impl GaugeFn for G {
        fn increment(&self, value: f64) {
            self.0.inc_by(value as i64);
        }
        fn decrement(&self, value: f64) {
            self.0.dec_by(value as i64);
        }
        fn set(&self, value: f64) {
            self.0.set(value as i64);
        }
    }
    impl HistogramFn for H {
        fn record(&self, value: f64) {
            self.0.observe(value);
        }
    }
    let bounds: [f64; BUCKETS] = names::LATENCY_BUCKETS.try_into().unwrap();
    SinkHandles::from_parts(
        Arc::new(G(measured::Gauge::new())),
        Arc::new(C(measured::Counter::new())),
        Arc::new(H(measured::Histogram::with_metadata(
            measured::metric::histogram::Thresholds::with_buckets(bounds),
        ))),
    )
}

/// `metrics-util`'s fixed-bucket histogram (not thread-safe: behind a mutex), with atomics
/// for the counter and gauge.
pub fn metrics_util() -> SinkHandles {
    struct C(AtomicU64);
    struct G(AtomicI64);
    struct H(Mutex<metrics_util::storage::Histogram>);
    impl CounterFn for C {
        fn increment(&self, value: u64) {
            self.0.fetch_add(value, Relaxed);
        }
        fn absolute(&self, _value: u64) {}
    }
    impl GaugeFn for G {
        fn increment(&self, value: f64) {
            self.0.fetch_add(value as i64, Relaxed);
        }
        fn decrement(&self, value: f64) {
            self.0.fetch_sub(value as i64, Relaxed);
        }
        fn set(&self, value: f64) {
            self.0.store(value as i64, Relaxed);
        }
    }
    impl HistogramFn for H {
        fn record(&self, value: f64) {
            self.0.lock().unwrap().record(value);
        }
    }
    let histogram = metrics_util::storage::Histogram::new(names::LATENCY_BUCKETS).unwrap();
    SinkHandles::from_parts(
        Arc::new(G(AtomicI64::new(0))),
        Arc::new(C(AtomicU64::new(0))),
        Arc::new(H(Mutex::new(histogram))),
    )
}
