//! The native sink renders what the facade sink over the crate's Prometheus recorder
//! renders: same names, labels, buckets, counts and sums, for the same commands.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use baseplate_redis::config::RawConfig;
use baseplate_redis::sink::{prometheus, Counter, FacadeSink, Gauge, Histogram, Key};
use baseplate_redis::sink::{MetricsSink, NativeSink};
use baseplate_redis::telemetry::{MetricNaming, TelemetryOptions};
use baseplate_redis::{Baseplate, ContextSpec, RedisClient};
use common::RedisServer;
use metrics::{CounterFn, GaugeFn, HistogramFn};
use redis::AsyncCommands;

/// Hands every measurement to both sinks, so they see the very same latencies.
#[derive(Debug)]
struct Both(NativeSink, FacadeSink);

struct BothCounters(Counter, Counter);
struct BothGauges(Gauge, Gauge);
struct BothHistograms(Histogram, Histogram);

impl MetricsSink for Both {
    fn counter(&self, key: &Key) -> Counter {
        Counter::from_arc(Arc::new(BothCounters(
            self.0.counter(key),
            self.1.counter(key),
        )))
    }

    fn gauge(&self, key: &Key) -> Gauge {
        Gauge::from_arc(Arc::new(BothGauges(self.0.gauge(key), self.1.gauge(key))))
    }

    fn histogram(&self, key: &Key) -> Histogram {
        Histogram::from_arc(Arc::new(BothHistograms(
            self.0.histogram(key),
            self.1.histogram(key),
        )))
    }
}

impl CounterFn for BothCounters {
    fn increment(&self, value: u64) {
        self.0.increment(value);
        self.1.increment(value);
    }

    fn absolute(&self, value: u64) {
        self.0.absolute(value);
        self.1.absolute(value);
    }
}

impl GaugeFn for BothGauges {
    fn increment(&self, value: f64) {
        self.0.increment(value);
        self.1.increment(value);
    }

    fn decrement(&self, value: f64) {
        self.0.decrement(value);
        self.1.decrement(value);
    }

    fn set(&self, value: f64) {
        self.0.set(value);
        self.1.set(value);
    }
}

impl HistogramFn for BothHistograms {
    fn record(&self, value: f64) {
        self.0.record(value);
        self.1.record(value);
    }
}

/// A rendering as `# HELP`/`# TYPE` lines and `series -> value`.
#[derive(Debug, PartialEq)]
struct Parsed {
    comments: Vec<String>,
    samples: BTreeMap<String, f64>,
}

fn parse(text: &str) -> Parsed {
    let mut comments = Vec::new();
    let mut samples = BTreeMap::new();
    for line in text.lines().filter(|line| !line.is_empty()) {
        if line.starts_with('#') {
            comments.push(line.to_string());
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap();
        let value: f64 = value.parse().unwrap();
        assert!(
            samples.insert(series.to_string(), value).is_none(),
            "{series} twice"
        );
    }
    comments.sort();
    Parsed { comments, samples }
}

#[tokio::test]
async fn native_sink_renders_what_the_prometheus_recorder_renders() {
    let server = RedisServer::start();
    let native = NativeSink::new();
    let recorder = prometheus::recorder();
    let exporter = recorder.handle();
    let both = Both(
        native.clone(),
        FacadeSink::with_recorder(Arc::new(recorder)),
    );

    let config = RawConfig::from_pairs([
        ("foo.url", server.url(3)),
        ("foo.max_connections", "7".to_string()),
        ("bar.url", server.url(0)),
    ]);
    let mut baseplate = Baseplate::new(config)
        .with_metrics_sink(Arc::new(both))
        .unwrap();
    baseplate
        .configure_context(
            ContextSpec::new()
                .client("foo", RedisClient::new())
                // Baseplate's names and OpenTelemetry's side by side: units, `_total`, buckets.
                .client(
                    "bar",
                    RedisClient::new()
                        .telemetry(TelemetryOptions::new().metric_naming(MetricNaming::Both)),
                ),
        )
        .unwrap();

    let context = baseplate.make_context_object();
    let mut foo = context.redis("foo").unwrap();
    let mut bar = context.redis("bar").unwrap();
    for i in 0..25 {
        let _: () = foo.set(format!("k{i}"), i).await.unwrap();
        let _: i64 = foo.get(format!("k{i}")).await.unwrap();
    }
    let _: () = bar.set("text", "not a number").await.unwrap();
    for _ in 0..3 {
        let failed: redis::RedisResult<i64> = bar.incr("text", 1).await;
        assert!(failed.is_err());
    }
    let echoed: String = redis::cmd("ECHO")
        .arg("hi")
        .query_async(&mut bar)
        .await
        .unwrap();
    assert_eq!(echoed, "hi");
    let mut pipe = foo.pipeline("counters");
    pipe.incr("hits", 1).incr("hits", 2);
    let _: (i64, i64) = pipe.query_async(&mut foo).await.unwrap();
    baseplate.report_runtime_metrics();

    let ours = native.render();
    let theirs = exporter.render();
    let (ours, theirs) = (parse(&ours), parse(&theirs));
    assert_eq!(ours.comments, theirs.comments);
    let series = |parsed: &Parsed| parsed.samples.keys().cloned().collect::<Vec<_>>();
    assert_eq!(series(&ours), series(&theirs));
    for (series, value) in &ours.samples {
        let expected = theirs.samples[series];
        // Sums are added in another order: equal up to rounding.
        let close = (value - expected).abs() <= 1e-9 * expected.abs().max(1.0);
        assert!(close, "{series}: ours {value}, theirs {expected}");
    }

    // The comparison covered what matters: failures, pipelines, other commands, the pool.
    let get = "redis_client_latency_seconds_count{redis_command=\"get\",redis_database=\"3\",\
               redis_client_name=\"foo\",redis_type=\"standalone\",redis_success=\"true\"}";
    assert_eq!(ours.samples[get], 25.0);
    let failed = "redis_client_requests_total{redis_command=\"incrby\",redis_database=\"0\",\
                  redis_client_name=\"bar\",redis_type=\"standalone\",redis_success=\"false\"}";
    assert_eq!(ours.samples[failed], 3.0);
    assert!(ours
        .samples
        .keys()
        .any(|s| s.contains("redis_command=\"echo\"")));
    assert!(ours
        .samples
        .keys()
        .any(|s| s.contains("redis_command=\"pipeline\"")));
    assert_eq!(
        ours.samples["redis_client_pool_max_size{redis_pool=\"foo\"}"],
        7.0
    );
    assert!(ours
        .samples
        .keys()
        .any(|s| s.starts_with("runtime_pool_size{")));
    assert!(ours
        .samples
        .keys()
        .any(|s| s.starts_with("db_client_operation_duration_seconds_bucket{")));
    let buckets = ours
        .samples
        .keys()
        .filter(|s| s.starts_with("redis_client_latency_seconds_bucket{redis_command=\"get\""))
        .count();
    assert_eq!(
        buckets,
        baseplate_redis::sink::names::LATENCY_BUCKETS.len() + 1
    );
}
