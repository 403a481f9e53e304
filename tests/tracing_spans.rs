//! The `tracing` bridge: a request's command spans become children of its `tracing` span,
//! with their Redis tags recorded (in one `record_all` call) as fields.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use baseplate_redis::config::RawConfig;
use baseplate_redis::pool::InMemoryBackend;
use baseplate_redis::sink::NoopSink;
use baseplate_redis::span::TracingObserver;
use baseplate_redis::{Baseplate, RedisContextFactory};
use redis::AsyncCommands;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

#[derive(Debug, Default, Clone)]
struct Seen {
    parent: Option<u64>,
    fields: BTreeMap<String, String>,
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<BTreeMap<u64, Seen>>>);

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().to_string(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), value.to_string());
    }
}

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut seen = Seen {
            parent: ctx
                .span(id)
                .and_then(|s| s.parent())
                .map(|p| p.id().into_u64()),
            ..Seen::default()
        };
        attrs.record(&mut Fields(&mut seen.fields));
        self.0.lock().unwrap().insert(id.into_u64(), seen);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _ctx: Context<'_, S>) {
        let mut spans = self.0.lock().unwrap();
        let seen = spans.entry(id.into_u64()).or_default();
        values.record(&mut Fields(&mut seen.fields));
    }
}

#[test]
fn command_spans_hang_under_the_request_span_with_their_tags() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    tracing::subscriber::with_default(subscriber, || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let mut baseplate = Baseplate::new(RawConfig::new());
            baseplate.register(Arc::new(TracingObserver::new()));
            let factory = RedisContextFactory::with_options(
                Arc::new(InMemoryBackend::named("tracing-spans", 0)),
                "foo",
                Arc::new(NoopSink),
            );
            baseplate.add_to_context("foo", Arc::new(factory)).unwrap();
            let mut context = baseplate.make_context_object();
            let span = baseplate.make_server_span(&mut context, "handler", None);
            let mut foo = context.redis("foo").unwrap();
            let _: () = foo.set("k", "v").await.unwrap();
            let got: String = foo.get("k").await.unwrap();
            assert_eq!(got, "v");
            span.finish();
        });
    });

    let spans = capture.0.lock().unwrap().clone();
    let by_name = |name: &str| {
        spans
            .iter()
            .find(|(_, s)| s.fields.get("otel.name").map(String::as_str) == Some(name))
            .map(|(id, s)| (*id, s.clone()))
            .unwrap_or_else(|| panic!("no span named {name} in {spans:?}"))
    };
    let (handler_id, handler) = by_name("handler");
    assert_eq!(handler.parent, None);
    for (name, operation) in [("foo.SET", "SET"), ("foo.GET", "GET")] {
        let (_, command) = by_name(name);
        assert_eq!(command.parent, Some(handler_id), "{name}'s parent");
        let field = |key: &str| command.fields.get(key).map(String::as_str);
        assert_eq!(field("db.system"), Some("redis"), "{name}");
        assert_eq!(field("db.operation.name"), Some(operation), "{name}");
        assert_eq!(field("db.namespace"), Some("0"), "{name}");
        assert!(
            field("server.address").is_some(),
            "{name}: {:?}",
            command.fields
        );
        assert_eq!(field("otel.kind"), Some("client"), "{name}");
    }
}
