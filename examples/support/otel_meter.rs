//! A `MetricsSink` over an OpenTelemetry `Meter`: the crate's measurements exported by any
//! OpenTelemetry metrics exporter (OTLP, stdout, Prometheus…). Shared by
//! `examples/opentelemetry.rs` and the test that checks what it exports.
//!
//! Histograms are recorded in seconds; `db.client.operation.duration` gets the buckets the
//! conventions advise. Gauges keep their value here (the crate raises and lowers some, such
//! as `db.client.connection.pending_requests`) and report it as an OpenTelemetry gauge.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use baseplate_redis::sink::{names, Counter, Gauge, Histogram, Key, MetricsSink};
use opentelemetry::metrics::Meter;
use opentelemetry::KeyValue;

/// Reports to `meter`.
#[derive(Debug)]
pub struct MeterSink {
    meter: Meter,
}

impl MeterSink {
    pub fn new(meter: Meter) -> Self {
        MeterSink { meter }
    }
}

fn attributes(key: &Key) -> Vec<KeyValue> {
    key.labels()
        .map(|label| KeyValue::new(label.key().to_string(), label.value().to_string()))
        .collect()
}

struct OtelCounter(opentelemetry::metrics::Counter<u64>, Vec<KeyValue>);

impl metrics::CounterFn for OtelCounter {
    fn increment(&self, value: u64) {
        self.0.add(value, &self.1);
    }

    fn absolute(&self, _value: u64) {
        // No caller of the crate sets a counter outright.
    }
}

struct OtelGauge {
    gauge: opentelemetry::metrics::Gauge<f64>,
    attributes: Vec<KeyValue>,
    value: AtomicU64,
}

impl OtelGauge {
    fn update(&self, change: impl Fn(f64) -> f64) {
        let mut now = 0.0;
        let _ = self
            .value
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |bits| {
                now = change(f64::from_bits(bits));
                Some(now.to_bits())
            });
        self.gauge.record(now, &self.attributes);
    }
}

impl metrics::GaugeFn for OtelGauge {
    fn increment(&self, value: f64) {
        self.update(|old| old + value);
    }

    fn decrement(&self, value: f64) {
        self.update(|old| old - value);
    }

    fn set(&self, value: f64) {
        self.update(|_| value);
    }
}

struct OtelHistogram(opentelemetry::metrics::Histogram<f64>, Vec<KeyValue>);

impl metrics::HistogramFn for OtelHistogram {
    fn record(&self, value: f64) {
        self.0.record(value, &self.1);
    }
}

impl MetricsSink for MeterSink {
    fn counter(&self, key: &Key) -> Counter {
        let counter = self.meter.u64_counter(key.name().to_string()).build();
        Counter::from_arc(Arc::new(OtelCounter(counter, attributes(key))))
    }

    fn gauge(&self, key: &Key) -> Gauge {
        let gauge = self.meter.f64_gauge(key.name().to_string()).build();
        Gauge::from_arc(Arc::new(OtelGauge {
            gauge,
            attributes: attributes(key),
            value: AtomicU64::new(0f64.to_bits()),
        }))
    }

    fn histogram(&self, key: &Key) -> Histogram {
        let builder = self
            .meter
            .f64_histogram(key.name().to_string())
            .with_unit("s");
        let histogram = if key.name() == names::OTEL_OPERATION_DURATION {
            builder
                .with_boundaries(names::OTEL_OPERATION_DURATION_BUCKETS.to_vec())
                .build()
        } else {
            builder.build()
        };
        Histogram::from_arc(Arc::new(OtelHistogram(histogram, attributes(key))))
    }
}
