//! How a service tests its own handlers without a Redis server: the in-memory backend with a
//! recording sink and observer, mockall's `MockMetricsSink` to check metric calls,
//! `MockPoolBackend` to simulate an outage or serve a `ScriptedConnection`'s replies, and
//! `MockContextFactory` for a client of the service's own. (README: "Testing your service".)

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use baseplate_redis::config::RawConfig;
use baseplate_redis::pool::{MockPoolBackend, ScriptedConnection};
use baseplate_redis::sink::{names, Counter, Gauge, Histogram, MockMetricsSink, RecordingSink};
use baseplate_redis::span::RecordingObserver;
use baseplate_redis::{
    Baseplate, ContextSpec, Error, MockContextFactory, RedisClient, RequestContext,
};
use redis::{AsyncCommands, Value};

/// The handler under test: counts views of a page.
async fn record_view(context: &RequestContext, page: &str) -> Result<i64, Error> {
    let mut cache = context.redis("cache")?;
    Ok(cache.incr(format!("views:{page}"), 1).await?)
}

#[tokio::test]
async fn handler_on_the_in_memory_backend() {
    // A store name of its own keeps this test's data apart from other tests'.
    let config = RawConfig::from_pairs([("cache.url", "memory://handler-test")]);
    let metrics = RecordingSink::new();
    let spans = RecordingObserver::new();
    let mut baseplate = Baseplate::new(config)
        .with_metrics_sink(Arc::new(metrics.clone()))
        .unwrap();
    baseplate.register(Arc::new(spans.clone()));
    baseplate
        .configure_context(ContextSpec::new().client("cache", RedisClient::new()))
        .unwrap();

    for expected in 1..=3 {
        let views = baseplate
            .serve("record_view", None, async |context| {
                record_view(&context, "home").await
            })
            .await
            .unwrap();
        assert_eq!(views, expected);
    }

    let labels = [
        (names::LABEL_COMMAND, "incrby"),
        (names::LABEL_CLIENT_NAME, "cache"),
        (names::LABEL_SUCCESS, "true"),
    ];
    assert_eq!(metrics.counter_value(names::REQUESTS_TOTAL, &labels), 3);
    assert_eq!(
        spans.names(),
        [
            "record_view",
            "cache.INCRBY",
            "record_view",
            "cache.INCRBY",
            "record_view",
            "cache.INCRBY"
        ]
    );
}

#[tokio::test]
async fn handler_with_a_mock_metrics_sink() {
    let requests = Arc::new(AtomicU64::new(0));
    let mut sink = MockMetricsSink::new();
    let counted = requests.clone();
    sink.expect_counter()
        .withf(|key| {
            key.name() == names::REQUESTS_TOTAL
                && key
                    .labels()
                    .any(|l| l.key() == names::LABEL_COMMAND && l.value() == "incrby")
                && key
                    .labels()
                    .any(|l| l.key() == names::LABEL_SUCCESS && l.value() == "true")
        })
        .times(1)
        .returning(move |_| Counter::from_arc(counted.clone()));
    sink.expect_gauge()
        .withf(|key| key.name() == names::ACTIVE_REQUESTS)
        .times(1)
        .returning(|_| Gauge::noop());
    sink.expect_histogram()
        .withf(|key| key.name() == names::LATENCY_SECONDS)
        .times(1)
        .returning(|_| Histogram::noop());

    let config = RawConfig::from_pairs([("cache.url", "memory://mock-sink-test")]);
    let mut baseplate = Baseplate::new(config)
        .with_metrics_sink(Arc::new(sink))
        .unwrap();
    baseplate
        .configure_context(ContextSpec::new().client("cache", RedisClient::new()))
        .unwrap();
    let context = baseplate.make_context_object();
    assert_eq!(record_view(&context, "about").await.unwrap(), 1);
    assert_eq!(record_view(&context, "about").await.unwrap(), 2);
    // Handles are resolved once (times(1) above) and incremented per command.
    assert_eq!(requests.load(Ordering::Relaxed), 2);
}

#[tokio::test]
async fn handler_when_redis_is_down() {
    let mut pool = MockPoolBackend::at("cache.internal:6379", 0);
    pool.expect_shared().times(1).returning(|| {
        Err(Error::ConnectTimeout {
            address: "cache.internal:6379".into(),
            timeout: std::time::Duration::from_secs(3),
        })
    });
    let metrics = RecordingSink::new();
    // The client reports to the Baseplate's sink: no need to pass it again.
    let mut baseplate = Baseplate::new(RawConfig::new())
        .with_metrics_sink(Arc::new(metrics.clone()))
        .unwrap();
    baseplate
        .configure_context(
            ContextSpec::new().client("cache", RedisClient::with_backend(Arc::new(pool))),
        )
        .unwrap();

    let context = baseplate.make_context_object();
    let err = record_view(&context, "home").await.unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert!(err.to_string().contains("cache.internal:6379"), "{err}");
    let failed = [(names::LABEL_SUCCESS, "false")];
    assert_eq!(metrics.counter_value(names::REQUESTS_TOTAL, &failed), 1);
}

#[tokio::test]
async fn handler_on_scripted_replies() {
    // Redis answers from a script: a slow reply, then a reply of the wrong type.
    let script = ScriptedConnection::new()
        .delay(std::time::Duration::from_millis(20))
        .reply(Value::Int(41))
        .error_reply("WRONGTYPE Operation against a key holding the wrong kind of value");
    let mut baseplate = Baseplate::new(RawConfig::new());
    baseplate
        .configure_context(ContextSpec::new().client(
            "cache",
            RedisClient::with_backend(Arc::new(MockPoolBackend::serving(script.clone()))),
        ))
        .unwrap();

    let context = baseplate.make_context_object();
    assert_eq!(record_view(&context, "home").await.unwrap(), 41);
    let err = record_view(&context, "home").await.unwrap_err();
    assert_eq!(err.redis_error().and_then(|e| e.code()), Some("WRONGTYPE"));
    assert_eq!(
        script.received(),
        [["INCRBY", "views:home", "1"], ["INCRBY", "views:home", "1"]]
    );
    assert_eq!(script.remaining(), 0);
}

/// A handler using another client besides Redis: feature flags from a factory of the
/// service's own, replaced in the test by a `MockContextFactory`.
async fn greeting(context: &RequestContext) -> Result<String, Error> {
    let flags: Vec<String> = context.get("flags")?;
    Ok(if flags.iter().any(|f| f == "shout") {
        "HELLO".to_string()
    } else {
        "hello".to_string()
    })
}

#[tokio::test]
async fn handler_with_a_mock_context_factory() {
    let mut flags = MockContextFactory::new();
    flags
        .expect_make_object_for_context()
        .withf(|name, _span| name == "flags")
        .times(2)
        .returning(|_, _| Box::new(vec!["shout".to_string()]));
    flags
        .expect_report_runtime_metrics()
        .times(1)
        .return_const(());

    let mut baseplate = Baseplate::new(RawConfig::new());
    baseplate
        .configure_context(ContextSpec::new().factory("flags", Arc::new(flags)))
        .unwrap();
    let context = baseplate.make_context_object();
    assert_eq!(greeting(&context).await.unwrap(), "HELLO");
    // Asked for as the wrong type, the error names both.
    let err = context.redis("flags").unwrap_err().to_string();
    assert!(
        err.contains("flags") && err.contains("MonitoredRedisConnection"),
        "{err}"
    );
    baseplate.report_runtime_metrics();
}
