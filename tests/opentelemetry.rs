//! Spans exported through `tracing` + `tracing-opentelemetry` carry the OpenTelemetry
//! database semantic-convention attributes, against a private password-protected
//! redis-server — and never the password.

mod common;

use std::sync::{Arc, Mutex};

use baseplate_redis::config::RawConfig;
use baseplate_redis::span::TracingObserver;
use baseplate_redis::{Baseplate, ContextSpec, RedisClient};
use common::RedisServer;
use opentelemetry::trace::{SpanKind, Status, TracerProvider as _};
use opentelemetry::Value;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use redis::AsyncCommands;
use tracing_subscriber::layer::SubscriberExt;

/// Keeps every exported span.
#[derive(Debug, Clone, Default)]
struct Collect(Arc<Mutex<Vec<SpanData>>>);

impl SpanExporter for Collect {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.0.lock().unwrap().extend(batch);
        Ok(())
    }
}

fn attribute(span: &SpanData, key: &str) -> Option<Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.clone())
}

#[tokio::test]
async fn exported_spans_carry_the_database_conventions() {
    let server = RedisServer::start_with(&["--requirepass", "s3cret-pw"]);
    let url = format!("redis://:s3cret-pw@127.0.0.1:{}/3", server.port());
    let mut baseplate = Baseplate::new(RawConfig::from_pairs([("foo.url", url)]));
    baseplate.register(Arc::new(TracingObserver::new()));
    baseplate
        .configure_context(ContextSpec::new().client("foo", RedisClient::new()))
        .unwrap();

    let exported = Collect::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exported.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    let guard = tracing::subscriber::set_default(subscriber);

    let mut context = baseplate.make_context_object();
    let span = baseplate.make_server_span(&mut context, "GET /profile", None);
    let mut foo = context.redis("foo").unwrap();
    let _: () = foo.set("k", "not a number").await.unwrap();
    let mut pipe = foo.pipeline("warm");
    pipe.get("k").get("k");
    let _: (String, String) = pipe.query_async(&mut foo).await.unwrap();
    assert!(foo.incr::<_, _, i64>("k", 1).await.is_err());
    span.finish();
    drop(guard);
    provider.shutdown().unwrap();

    let spans = exported.0.lock().unwrap().clone();
    let find = |name: &str| spans.iter().find(|s| s.name == name).unwrap().clone();
    let request = find("GET /profile");
    assert_eq!(request.span_kind, SpanKind::Server);

    let set = find("foo.SET");
    assert_eq!(set.span_kind, SpanKind::Client);
    assert_eq!(set.parent_span_id, request.span_context.span_id());
    assert_eq!(set.span_context.trace_id(), request.span_context.trace_id());
    assert_eq!(attribute(&set, "db.system.name"), Some("redis".into()));
    assert_eq!(attribute(&set, "db.system"), Some("redis".into()));
    assert_eq!(attribute(&set, "db.operation.name"), Some("SET".into()));
    assert_eq!(attribute(&set, "db.namespace"), Some("3".into()));
    assert_eq!(attribute(&set, "server.address"), Some("127.0.0.1".into()));
    assert_eq!(
        attribute(&set, "server.port"),
        Some(Value::I64(i64::from(server.port())))
    );
    assert_eq!(set.status, Status::Unset);

    let pipeline = find("foo.pipeline_warm");
    assert_eq!(
        attribute(&pipeline, "db.operation.name"),
        Some("PIPELINE".into())
    );
    assert_eq!(
        attribute(&pipeline, "db.operation.batch.size"),
        Some(Value::I64(2))
    );

    let failed = find("foo.INCRBY");
    assert!(
        matches!(failed.status, Status::Error { .. }),
        "{:?}",
        failed.status
    );
    // INCR of a string: Redis's `ERR value is not an integer`, as the conventions' attributes.
    assert_eq!(attribute(&failed, "error.type"), Some("ERR".into()));
    assert_eq!(
        attribute(&failed, "db.response.status_code"),
        Some("ERR".into())
    );
    assert_eq!(attribute(&set, "error.type"), None);

    for span in &spans {
        for kv in &span.attributes {
            assert!(
                !kv.value.to_string().contains("s3cret"),
                "password in {} of {}",
                kv.key,
                span.name
            );
        }
    }
}
