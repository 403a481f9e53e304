//! Spans and observers: tracing bridge, cancellation, handles that open nothing.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use baseplate_redis::config::RawConfig;
use baseplate_redis::sink::{names, RecordingSink};
use baseplate_redis::span::{RecordingObserver, SpanKind, TraceInfo, TracingObserver};
use baseplate_redis::{Baseplate, ContextSpec, RedisClient};
use common::RedisServer;
use redis::AsyncCommands;

fn baseplate(server: &RedisServer, metrics: &RecordingSink) -> Baseplate {
    let config = RawConfig::from_pairs([("foo.url", server.url(0))]);
    let mut baseplate = Baseplate::new(config)
        .with_metrics_sink(Arc::new(metrics.clone()))
        .unwrap();
    baseplate
        .configure_context(ContextSpec::new().client("foo", RedisClient::new()))
        .unwrap();
    baseplate
}

#[tokio::test]
async fn making_handles_opens_no_connection() {
    let server = RedisServer::start();
    let metrics = RecordingSink::new();
    let baseplate = baseplate(&server, &metrics);
    for _ in 0..20 {
        let context = baseplate.make_context_object();
        let _handle = context.redis("foo").unwrap();
    }
    assert_eq!(server.connected_clients(), 0);
    let (_, factory) = baseplate.factories().next().unwrap();
    factory.report_runtime_metrics(&metrics);
    assert_eq!(
        metrics.gauge_value(names::RUNTIME_POOL_OPEN_AND_AVAILABLE, &[]),
        Some(0.0)
    );
}

#[tokio::test]
async fn incoming_trace_ids_are_kept() {
    let server = RedisServer::start();
    let metrics = RecordingSink::new();
    let mut baseplate = baseplate(&server, &metrics);
    let spans = RecordingObserver::new();
    baseplate.register(Arc::new(spans.clone()));
    let mut context = baseplate.make_context_object();
    let span = baseplate.make_server_span(
        &mut context,
        "handler",
        Some(TraceInfo::from_parent(1234, Some(99))),
    );
    let mut foo = context.redis("foo").unwrap();
    let _: Option<String> = foo.get("x").await.unwrap();
    span.finish();
    let server_span = spans.find("handler").unwrap();
    assert_eq!(server_span.trace_id, 1234);
    assert_eq!(server_span.parent_id, Some(99));
    assert_eq!(server_span.kind, SpanKind::Server);
    let get = spans.find("foo.GET").unwrap();
    assert_eq!(get.trace_id, 1234);
    assert_eq!(get.parent_id, Some(server_span.span_id));
    assert_eq!(get.kind, SpanKind::Client);
}

#[tokio::test]
async fn a_cancelled_command_ends_its_span_and_lowers_the_gauge() {
    let server = RedisServer::start();
    let metrics = RecordingSink::new();
    let mut baseplate = baseplate(&server, &metrics);
    let spans = RecordingObserver::new();
    baseplate.register(Arc::new(spans.clone()));
    let mut context = baseplate.make_context_object();
    let _span = baseplate.make_server_span(&mut context, "handler", None);
    let mut foo = context.redis("foo").unwrap();
    let mut sleep = redis::cmd("DEBUG");
    sleep.arg("SLEEP").arg("0.5");
    let slow = sleep.query_async::<()>(&mut foo);
    assert!(tokio::time::timeout(Duration::from_millis(50), slow)
        .await
        .is_err());

    let sleep = spans.find("foo.DEBUG").unwrap();
    assert!(sleep.finished);
    assert!(sleep.error.unwrap().contains("cancelled"));
    let labels = [(names::LABEL_COMMAND, "debug")];
    assert_eq!(
        metrics.gauge_value(names::ACTIVE_REQUESTS, &labels),
        Some(0.0)
    );
    let failed = [
        (names::LABEL_COMMAND, "debug"),
        (names::LABEL_SUCCESS, "false"),
    ];
    assert_eq!(metrics.counter_value(names::REQUESTS_TOTAL, &failed), 1);
}

/// Collects the spans a `tracing` subscriber sees, with their recorded fields.
#[derive(Clone, Default)]
struct Collected(Arc<Mutex<Vec<String>>>);

struct Visitor<'a>(&'a mut String);

impl tracing::field::Visit for Visitor<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!(" {}={:?}", field.name(), value));
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Collected {
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        _id: &tracing::span::Id,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let mut line = String::from("new");
        attrs.record(&mut Visitor(&mut line));
        self.0.lock().unwrap().push(line);
    }

    fn on_record(
        &self,
        _id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let mut line = String::from("record");
        values.record(&mut Visitor(&mut line));
        self.0.lock().unwrap().push(line);
    }
}

#[tokio::test]
async fn tracing_observer_forwards_spans_with_redis_fields() {
    use tracing_subscriber::layer::SubscriberExt;

    let server = RedisServer::start();
    let metrics = RecordingSink::new();
    let mut baseplate = baseplate(&server, &metrics);
    baseplate.register(Arc::new(TracingObserver::new()));
    let collected = Collected::default();
    let subscriber = tracing_subscriber::registry().with(collected.clone());
    let _guard = tracing::subscriber::set_default(subscriber);

    let mut context = baseplate.make_context_object();
    let span = baseplate.make_server_span(&mut context, "handler", None);
    let mut foo = context.redis("foo").unwrap();
    let _: () = foo.set("k", "v").await.unwrap();
    let _ = foo.incr::<_, _, i64>("k", 1).await;
    span.finish();

    let lines = collected.0.lock().unwrap().join("\n");
    assert!(lines.contains("otel.name=\"handler\""), "{lines}");
    assert!(lines.contains("otel.name=\"foo.SET\""), "{lines}");
    assert!(lines.contains("db.system=\"redis\""), "{lines}");
    assert!(lines.contains("db.operation.name=\"SET\""), "{lines}");
    // OpenTelemetry semantic conventions: host and port in two attributes.
    assert!(lines.contains("db.system.name=\"redis\""), "{lines}");
    assert!(lines.contains("server.address=\"127.0.0.1\""), "{lines}");
    assert!(
        lines.contains(&format!("server.port={}", server.port())),
        "{lines}"
    );
    assert!(lines.contains("otel.status_code=\"ERROR\""), "{lines}");
}
