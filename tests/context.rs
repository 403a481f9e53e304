//! The context: user-written factories, groups, lookups, the runtime reporter's lifetime.

use std::any::Any;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use baseplate_redis::config::{ConfigurationError, RawConfig};
use baseplate_redis::sink::{key, MetricsSink, RecordingSink};
use baseplate_redis::span::{RecordingObserver, SpanContext, SpanKind};
use baseplate_redis::{
    Baseplate, ContextFactory, ContextParser, ContextSpec, Error, MonitoredRedisConnection,
};

/// A user's own client: a greeter that makes a span per greeting.
#[derive(Debug)]
struct GreeterFactory {
    greeting: String,
    reports: Arc<AtomicUsize>,
}

struct Greeter {
    name: String,
    greeting: String,
    span: SpanContext,
}

impl Greeter {
    fn greet(&self, who: &str) -> String {
        let span = self
            .span
            .child(format!("{}.greet", self.name), SpanKind::Local);
        span.finish();
        format!("{} {who}", self.greeting)
    }
}

impl ContextFactory for GreeterFactory {
    fn make_object_for_context(&self, name: &str, span: &SpanContext) -> Box<dyn Any + Send> {
        Box::new(Greeter {
            name: name.to_string(),
            greeting: self.greeting.clone(),
            span: span.clone(),
        })
    }

    fn report_runtime_metrics(&self, sink: &dyn MetricsSink) {
        self.reports.fetch_add(1, Ordering::Relaxed);
        sink.gauge(&key("greeter_ready", &[])).set(1.0);
    }
}

struct GreeterClient {
    reports: Arc<AtomicUsize>,
}

impl ContextParser for GreeterClient {
    fn parse(
        &self,
        name: &str,
        config: &RawConfig,
        _sink: Arc<dyn MetricsSink>,
    ) -> Result<Arc<dyn ContextFactory>, ConfigurationError> {
        let key = format!("{name}.greeting");
        let greeting = config
            .get(&key)
            .ok_or_else(|| ConfigurationError::new(&key, "required key is missing"))?;
        Ok(Arc::new(GreeterFactory {
            greeting: greeting.to_string(),
            reports: self.reports.clone(),
        }))
    }
}

#[tokio::test]
async fn users_plug_in_their_own_factories_in_groups() {
    let reports = Arc::new(AtomicUsize::new(0));
    let config = RawConfig::from_pairs([("svc.hello.greeting", "Hello,")]);
    let mut baseplate = Baseplate::new(config);
    let spans = RecordingObserver::new();
    baseplate.register(Arc::new(spans.clone()));
    baseplate
        .configure_context(ContextSpec::new().group(
            "svc",
            ContextSpec::new().client(
                "hello",
                GreeterClient {
                    reports: reports.clone(),
                },
            ),
        ))
        .unwrap();

    let greeting = baseplate
        .serve("handler", None, async |context| {
            let greeter: Greeter = context.get("svc.hello")?;
            Ok::<_, Error>(greeter.greet("world"))
        })
        .await
        .unwrap();
    assert_eq!(greeting, "Hello, world");
    assert_eq!(spans.names(), ["handler", "svc.hello.greet"]);

    let context = baseplate.make_context_object();
    let err = context.redis("svc.hello").unwrap_err();
    assert!(matches!(err, Error::WrongContextObjectType { .. }), "{err}");
    assert!(
        err.to_string().contains("MonitoredRedisConnection"),
        "{err}"
    );
    let err = context.get::<MonitoredRedisConnection>("nope").unwrap_err();
    assert!(err.to_string().contains("svc.hello"), "{err}");

    let missing = Baseplate::new(RawConfig::new())
        .configure_context(ContextSpec::new().client(
            "hello",
            GreeterClient {
                reports: reports.clone(),
            },
        ))
        .unwrap_err();
    assert_eq!(missing.key(), "hello.greeting");
}

#[tokio::test]
async fn runtime_reporter_stops_when_dropped() {
    let reports = Arc::new(AtomicUsize::new(0));
    let metrics = RecordingSink::new();
    let config = RawConfig::from_pairs([("g.greeting", "Hi")]);
    let mut baseplate = Baseplate::new(config)
        .with_metrics_sink(Arc::new(metrics.clone()))
        .unwrap();
    baseplate
        .configure_context(ContextSpec::new().client(
            "g",
            GreeterClient {
                reports: reports.clone(),
            },
        ))
        .unwrap();
    let reporter = baseplate.start_runtime_reporter(Duration::from_millis(10));
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(reporter);
    let seen = reports.load(Ordering::Relaxed);
    assert!(seen >= 2, "reported {seen} times");
    assert_eq!(metrics.gauge_value("greeter_ready", &[]), Some(1.0));
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert!(reports.load(Ordering::Relaxed) <= seen + 1);
}
