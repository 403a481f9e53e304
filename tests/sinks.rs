//! The metrics sinks: the facade reaches a real `metrics` exporter; the no-op sink costs
//! nothing and records nothing.

use std::sync::Arc;

use baseplate_redis::config::RawConfig;
use baseplate_redis::sink::{key, names, FacadeSink, MetricsSink, NoopSink, RecordingSink};
use baseplate_redis::{Baseplate, ContextSpec, RedisClient};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use redis::AsyncCommands;

#[tokio::test]
async fn facade_sink_feeds_a_prometheus_exporter() {
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(names::LATENCY_SECONDS.into()),
            names::LATENCY_BUCKETS,
        )
        .unwrap()
        .build_recorder();
    let handle = recorder.handle();
    let sink = Arc::new(FacadeSink::with_recorder(Arc::new(recorder)));
    let config = RawConfig::from_pairs([("foo.url", "memory://facade-test/4")]);
    let mut baseplate = Baseplate::new(config).with_metrics_sink(sink).unwrap();
    baseplate
        .configure_context(ContextSpec::new().client("foo", RedisClient::new()))
        .unwrap();
    let context = baseplate.make_context_object();
    let mut foo = context.redis("foo").unwrap();
    for _ in 0..3 {
        let _: () = foo.set("k", "v").await.unwrap();
    }
    baseplate.report_runtime_metrics();

    let text = handle.render();
    let requests = "redis_client_requests_total{redis_command=\"set\",redis_database=\"4\",\
                    redis_client_name=\"foo\",redis_type=\"standalone\",redis_success=\"true\"} 3";
    assert!(text.contains(requests), "{text}");
    assert!(
        text.contains("redis_client_latency_seconds_bucket{redis_command=\"set\""),
        "{text}"
    );
    assert!(
        text.contains("redis_client_active_requests{redis_command=\"set\""),
        "{text}"
    );
    assert!(
        text.contains("redis_client_pool_max_size{redis_pool=\"foo\"} 50"),
        "{text}"
    );
}

#[test]
fn noop_sink_records_nothing_and_recording_sink_sums_series() {
    let noop = NoopSink;
    noop.counter(&key("c", &[])).increment(5);
    noop.gauge(&key("g", &[])).set(1.0);
    noop.histogram(&key("h", &[])).record(1.0);

    let sink = RecordingSink::new();
    sink.gauge(&key("g", &[("a", "1")])).increment(2.0);
    sink.gauge(&key("g", &[("a", "1")])).decrement(0.5);
    sink.histogram(&key("h", &[("b", "x")])).record(0.25);
    sink.histogram(&key("h", &[("b", "y")])).record(0.75);
    assert_eq!(sink.gauge_value("g", &[("a", "1")]), Some(1.5));
    assert_eq!(sink.gauge_value("g", &[("a", "2")]), None);
    assert_eq!(sink.histogram_count("h", &[]), 2);
    assert_eq!(sink.histogram_sum("h", &[("b", "y")]), 0.75);
    assert_eq!(sink.series().len(), 3);
    sink.clear();
    assert!(sink.series().is_empty());
}
