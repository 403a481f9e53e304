//! Metric naming: baseplate's names by default; OpenTelemetry's database conventions
//! (`db.client.operation.duration`, `db.client.connection.*`) when asked, alone or beside
//! baseplate's; rendered in Prometheus text with the usual translation; exported through an
//! OpenTelemetry meter.

mod common;

#[path = "../examples/support/otel_meter.rs"]
mod otel_meter;

use std::sync::Arc;
use std::time::Duration;

use baseplate_redis::config::RawConfig;
use baseplate_redis::sink::{names, prometheus, FacadeSink, MetricsSink, RecordingSink};
use baseplate_redis::telemetry::{MetricNaming, TelemetryOptions};
use baseplate_redis::{Baseplate, ContextSpec, RedisClient};
use common::RedisServer;
use redis::AsyncCommands;

fn baseplate(url: &str, sink: Arc<dyn MetricsSink>, naming: MetricNaming) -> Baseplate {
    let config = RawConfig::from_pairs([
        ("foo.url", url),
        ("foo.max_connections", "2"),
        ("foo.pool_timeout", "200 milliseconds"),
    ]);
    let mut baseplate = Baseplate::new(config).with_metrics_sink(sink).unwrap();
    let telemetry = TelemetryOptions::new().metric_naming(naming);
    baseplate
        .configure_context(
            ContextSpec::new().client("foo", RedisClient::new().telemetry(telemetry)),
        )
        .unwrap();
    baseplate
}

/// SET, GET, a WRONGTYPE failure, and a pool timeout (the shared connection and a BLPOP
/// holding the other one take both connections).
async fn workload(baseplate: &Baseplate) {
    let mut foo = baseplate.make_context_object().redis("foo").unwrap();
    let _: () = foo.set("k", "v").await.unwrap();
    let _: String = foo.get("k").await.unwrap();
    let _ = foo.lpush::<_, _, i64>("k", "x").await.unwrap_err();
    let holders: Vec<_> = (0..1)
        .map(|i| {
            let mut holder = baseplate.make_context_object().redis("foo").unwrap();
            tokio::spawn(async move {
                let _: Option<(String, String)> =
                    holder.blpop(format!("empty-{i}"), 0.6).await.unwrap();
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(150)).await;
    let err = foo
        .blpop::<_, Option<(String, String)>>("other", 0.1)
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    for holder in holders {
        holder.await.unwrap();
    }
    baseplate.report_runtime_metrics();
}

#[tokio::test]
async fn baseplate_names_are_the_default() {
    let server = RedisServer::start();
    let sink = RecordingSink::new();
    workload(&baseplate(
        &server.url(0),
        Arc::new(sink.clone()),
        MetricNaming::default(),
    ))
    .await;
    let series = sink.series();
    assert!(series.iter().any(|s| s.name == names::REQUESTS_TOTAL));
    assert!(series
        .iter()
        .any(|s| s.name == names::CONNECTIONS_OPENED_TOTAL));
    assert!(
        series.iter().all(|s| !s.name.starts_with("db.")),
        "{series:#?}"
    );
}

#[tokio::test]
async fn opentelemetry_names_carry_the_conventions_attributes() {
    let server = RedisServer::start();
    let sink = RecordingSink::new();
    workload(&baseplate(
        &server.url(3),
        Arc::new(sink.clone()),
        MetricNaming::OpenTelemetry,
    ))
    .await;
    let series = sink.series();
    assert!(
        series.iter().all(|s| s.name.starts_with("db.")),
        "only OpenTelemetry names: {series:#?}"
    );

    let port = server.port().to_string();
    let set = [
        (names::OTEL_DB_SYSTEM_NAME, "redis"),
        (names::OTEL_DB_OPERATION_NAME, "SET"),
        (names::OTEL_DB_NAMESPACE, "3"),
        (names::OTEL_SERVER_ADDRESS, "127.0.0.1"),
        (names::OTEL_SERVER_PORT, port.as_str()),
    ];
    assert_eq!(
        sink.histogram_count(names::OTEL_OPERATION_DURATION, &set),
        1
    );
    let duration = series
        .iter()
        .find(|s| s.name == names::OTEL_OPERATION_DURATION)
        .unwrap();
    assert!(
        duration.value > 0.0 && duration.value < 5.0,
        "seconds: {duration:?}"
    );
    let wrongtype = [
        (names::OTEL_DB_OPERATION_NAME, "LPUSH"),
        (names::OTEL_ERROR_TYPE, "WRONGTYPE"),
        (names::OTEL_DB_RESPONSE_STATUS_CODE, "WRONGTYPE"),
    ];
    assert_eq!(
        sink.histogram_count(names::OTEL_OPERATION_DURATION, &wrongtype),
        1
    );
    // Successes carry neither failure attribute.
    for s in series
        .iter()
        .filter(|s| s.name == names::OTEL_OPERATION_DURATION)
    {
        let failed = s.labels.iter().any(|(k, _)| k == names::OTEL_ERROR_TYPE);
        let coded = s
            .labels
            .iter()
            .any(|(k, _)| k == names::OTEL_DB_RESPONSE_STATUS_CODE);
        assert!(failed || !coded, "{s:?}");
    }

    let pool = (names::OTEL_CONNECTION_POOL_NAME, "foo");
    assert_eq!(
        sink.gauge_value(names::OTEL_CONNECTION_MAX, &[pool]),
        Some(2.0)
    );
    let idle = [pool, (names::OTEL_CONNECTION_STATE, names::OTEL_STATE_IDLE)];
    let used = [pool, (names::OTEL_CONNECTION_STATE, names::OTEL_STATE_USED)];
    assert_eq!(
        sink.gauge_value(names::OTEL_CONNECTION_COUNT, &used),
        Some(0.0)
    );
    assert!(
        sink.gauge_value(names::OTEL_CONNECTION_COUNT, &idle)
            .unwrap()
            >= 1.0
    );
    assert_eq!(
        sink.gauge_value(names::OTEL_CONNECTION_PENDING_REQUESTS, &[pool]),
        Some(0.0)
    );
    assert_eq!(
        sink.counter_value(names::OTEL_CONNECTION_TIMEOUTS, &[pool]),
        1
    );
    assert!(sink.histogram_count(names::OTEL_CONNECTION_CREATE_TIME, &[pool]) >= 2);
    assert!(sink.histogram_count(names::OTEL_CONNECTION_WAIT_TIME, &[pool]) >= 2);
}

#[tokio::test]
async fn both_namings_render_in_prometheus_text() {
    let server = RedisServer::start();
    let recorder = prometheus::recorder();
    let handle = recorder.handle();
    let sink = Arc::new(FacadeSink::with_recorder(Arc::new(recorder)));
    workload(&baseplate(&server.url(0), sink, MetricNaming::Both)).await;
    let text = handle.render();
    let port = server.port();
    for expected in [
        // Baseplate's names, unchanged.
        "redis_client_requests_total{redis_command=\"set\"".to_string(),
        "redis_client_latency_seconds_bucket{redis_command=\"get\"".to_string(),
        "redis_client_pool_max_size{redis_pool=\"foo\"} 2".to_string(),
        "redis_client_connections_opened_total{redis_pool=\"foo\"}".to_string(),
        "redis_client_pool_timeouts_total{redis_pool=\"foo\"} 1".to_string(),
        // OpenTelemetry's, translated: dots to underscores, unit and `_total` suffixes, the
        // advised buckets.
        format!(
            "db_client_operation_duration_seconds_bucket{{db_system_name=\"redis\",\
             db_operation_name=\"SET\",db_namespace=\"0\",server_address=\"127.0.0.1\",\
             server_port=\"{port}\",le=\"0.001\"}}"
        ),
        "db_client_operation_duration_seconds_bucket{db_system_name=\"redis\",db_operation_name=\"SET\"".to_string(),
        "error_type=\"WRONGTYPE\",db_response_status_code=\"WRONGTYPE\"".to_string(),
        "db_client_connection_count{db_client_connection_pool_name=\"foo\",db_client_connection_state=\"idle\"}".to_string(),
        "db_client_connection_max{db_client_connection_pool_name=\"foo\"} 2".to_string(),
        "db_client_connection_timeouts_total{db_client_connection_pool_name=\"foo\"} 1".to_string(),
        "db_client_connection_create_time_seconds_bucket{db_client_connection_pool_name=\"foo\"".to_string(),
        "db_client_connection_wait_time_seconds_count{db_client_connection_pool_name=\"foo\"}".to_string(),
        "# TYPE db_client_operation_duration_seconds histogram".to_string(),
    ] {
        assert!(text.contains(&expected), "missing {expected}\n{text}");
    }
    // Exactly the advised buckets (and +Inf).
    let buckets = text
        .lines()
        .filter(|l| l.starts_with("db_client_operation_duration_seconds_bucket{db_system_name=\"redis\",db_operation_name=\"SET\""))
        .count();
    assert_eq!(
        buckets,
        names::OTEL_OPERATION_DURATION_BUCKETS.len() + 1,
        "{text}"
    );
}

#[tokio::test]
async fn an_opentelemetry_meter_exports_the_conventions_metrics() {
    use opentelemetry::metrics::MeterProvider as _;
    use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
    use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};

    let server = RedisServer::start();
    let exporter = InMemoryMetricExporter::default();
    let provider = SdkMeterProvider::builder()
        .with_reader(PeriodicReader::builder(exporter.clone()).build())
        .build();
    let sink = Arc::new(otel_meter::MeterSink::new(provider.meter("test")));
    workload(&baseplate(
        &server.url(0),
        sink,
        MetricNaming::OpenTelemetry,
    ))
    .await;
    provider.force_flush().unwrap();

    let exported = exporter.get_finished_metrics().unwrap();
    let metrics: Vec<_> = exported
        .iter()
        .flat_map(|r| r.scope_metrics())
        .flat_map(|s| s.metrics())
        .collect();
    let names: Vec<&str> = metrics.iter().map(|m| m.name()).collect();
    for expected in [
        names::OTEL_OPERATION_DURATION,
        names::OTEL_CONNECTION_COUNT,
        names::OTEL_CONNECTION_MAX,
        names::OTEL_CONNECTION_PENDING_REQUESTS,
        names::OTEL_CONNECTION_CREATE_TIME,
        names::OTEL_CONNECTION_WAIT_TIME,
        names::OTEL_CONNECTION_TIMEOUTS,
    ] {
        assert!(names.contains(&expected), "{expected} not in {names:?}");
    }
    let duration = metrics
        .iter()
        .find(|m| m.name() == names::OTEL_OPERATION_DURATION)
        .unwrap();
    assert_eq!(duration.unit(), "s");
    let AggregatedMetrics::F64(MetricData::Histogram(histogram)) = duration.data() else {
        panic!("not an f64 histogram: {:?}", duration.data());
    };
    let set = histogram
        .data_points()
        .find(|p| {
            p.attributes().any(|kv| {
                kv.key.as_str() == names::OTEL_DB_OPERATION_NAME && kv.value.as_str() == "SET"
            })
        })
        .unwrap();
    assert_eq!(set.count(), 1);
    let bounds: Vec<f64> = set.bounds().collect();
    assert_eq!(bounds, names::OTEL_OPERATION_DURATION_BUCKETS);
    provider.shutdown().unwrap();
}
