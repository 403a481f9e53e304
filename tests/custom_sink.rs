//! A custom metrics sink written as a user writes it — the StatsD sink of
//! `examples/statsd_sink` over `FnSink` — receives every metric of a service talking to a
//! real `redis-server`.

mod common;

#[path = "../examples/statsd_sink/sink.rs"]
mod sink;

use std::net::UdpSocket;
use std::sync::Arc;
use std::time::{Duration, Instant};

use baseplate_redis::config::RawConfig;
use baseplate_redis::sink::{key, names, FnSink, Measurement, MetricsSink};
use baseplate_redis::{Baseplate, ContextSpec, RedisClient};
use common::RedisServer;
use redis::AsyncCommands;

/// The lines that arrive at `listener` until none came for 200 ms (at most 5 s).
fn received(listener: &UdpSocket) -> Vec<String> {
    listener
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut lines = Vec::new();
    let mut buf = [0u8; 1500];
    while Instant::now() < deadline {
        match listener.recv(&mut buf) {
            Ok(n) => lines.push(String::from_utf8_lossy(&buf[..n]).into_owned()),
            Err(_) => break,
        }
    }
    lines
}

#[tokio::test]
async fn a_statsd_sink_gets_every_command_metric_and_pool_gauge() {
    let server = RedisServer::start();
    let listener = UdpSocket::bind("127.0.0.1:0").unwrap();
    let statsd = sink::statsd_sink(
        UdpSocket::bind("127.0.0.1:0").unwrap(),
        listener.local_addr().unwrap(),
    );
    let config = RawConfig::from_pairs([("cache.url", server.url(2))]);
    let mut baseplate = Baseplate::new(config)
        .with_metrics_sink(Arc::new(statsd))
        .unwrap();
    baseplate
        .configure_context(ContextSpec::new().client("cache", RedisClient::new()))
        .unwrap();

    let mut cache = baseplate.make_context_object().redis("cache").unwrap();
    let _: () = cache.set("k", "v").await.unwrap();
    let err = cache.incr::<_, _, i64>("k", 1).await.unwrap_err();
    assert_eq!(err.code(), Some("ERR"), "{err}");
    baseplate.report_runtime_metrics();

    let lines = received(&listener);
    let labels = "redis_command:set,redis_database:2,redis_client_name:cache,redis_type:standalone";
    for expected in [
        format!("redis_client_active_requests:+1|g|#{labels}"),
        format!("redis_client_active_requests:-1|g|#{labels}"),
        format!("redis_client_requests_total:1|c|#{labels},redis_success:true"),
        // INCRBY on "v" fails: counted with redis_success false.
        "redis_client_requests_total:1|c|#redis_command:incrby,redis_database:2,\
         redis_client_name:cache,redis_type:standalone,redis_success:false"
            .to_string(),
        "redis_client_pool_max_size:50|g|#redis_pool:cache".to_string(),
        "runtime.pool.size:50|g|#client:cache".to_string(),
    ] {
        assert!(lines.contains(&expected), "{expected} not in {lines:#?}");
    }
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("redis_client_latency_seconds:") && l.contains("|ms|#")),
        "{lines:#?}"
    );
}

#[test]
fn every_kind_of_measurement_reaches_the_function() {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    let sink = FnSink::new(move |key, measurement| {
        record
            .lock()
            .unwrap()
            .push((key.name().to_string(), measurement));
    });
    let k = key(names::REQUESTS_TOTAL, &[]);
    sink.counter(&k).increment(2);
    sink.counter(&k).absolute(9);
    sink.gauge(&k).set(1.5);
    sink.gauge(&k).increment(1.0);
    sink.gauge(&k).decrement(0.5);
    sink.histogram(&k).record(0.25);
    let seen = seen.lock().unwrap();
    let measurements: Vec<Measurement> = seen.iter().map(|(_, m)| *m).collect();
    assert_eq!(
        measurements,
        [
            Measurement::CounterIncrement(2),
            Measurement::CounterAbsolute(9),
            Measurement::GaugeSet(1.5),
            Measurement::GaugeIncrement(1.0),
            Measurement::GaugeDecrement(0.5),
            Measurement::HistogramRecord(0.25),
        ]
    );
    assert!(seen.iter().all(|(name, _)| name == names::REQUESTS_TOTAL));
    assert_eq!(
        sink::statsd_line(&k, Measurement::HistogramRecord(0.25)).as_deref(),
        Some("redis_client_requests_total:250|ms|#")
    );
}
