//! Span attributes of the OpenTelemetry database conventions beyond the basic ones:
//! `db.stored_procedure.name` on script and function calls, the opt-in `db.query.text`
//! (never a value, never credentials), and no attribute or label that grows with the data
//! (key names, values) unless opted in.

mod common;

use std::sync::Arc;

use baseplate_redis::config::RawConfig;
use baseplate_redis::sink::RecordingSink;
use baseplate_redis::span::RecordingObserver;
use baseplate_redis::telemetry::{MetricNaming, TelemetryOptions};
use baseplate_redis::{Baseplate, ContextSpec, MonitoredRedisConnection, RedisClient};
use common::RedisServer;
use redis::AsyncCommands;

fn fixture(
    url: &str,
    telemetry: TelemetryOptions,
) -> (Baseplate, RecordingObserver, RecordingSink) {
    let config = RawConfig::from_pairs([("foo.url", url)]);
    let metrics = RecordingSink::new();
    let spans = RecordingObserver::new();
    let mut baseplate = Baseplate::new(config)
        .with_metrics_sink(Arc::new(metrics.clone()))
        .unwrap();
    baseplate.register(Arc::new(spans.clone()));
    baseplate
        .configure_context(
            ContextSpec::new().client("foo", RedisClient::new().telemetry(telemetry)),
        )
        .unwrap();
    (baseplate, spans, metrics)
}

async fn in_request(baseplate: &Baseplate, body: impl AsyncFnOnce(&mut MonitoredRedisConnection)) {
    let mut context = baseplate.make_context_object();
    let span = baseplate.make_server_span(&mut context, "request", None);
    let mut foo = context.redis("foo").unwrap();
    body(&mut foo).await;
    drop(foo);
    span.finish();
}

fn tag(spans: &RecordingObserver, span: &str, key: &str) -> Option<String> {
    let found = spans
        .find(span)
        .unwrap_or_else(|| panic!("no span {span}: {:?}", spans.names()));
    found.tags.get(key).map(|v| v.to_string())
}

#[tokio::test]
async fn script_and_function_calls_name_their_stored_procedure() {
    let server = RedisServer::start();
    let (baseplate, spans, _) = fixture(&server.url(0), TelemetryOptions::new());
    let sha: String = server.query(&["SCRIPT", "LOAD", "return ARGV[1]"]);
    let library = "#!lua name=telemetry_lib\nredis.register_function('echo_first', function(keys, args) return args[1] end)";
    let _: String = server.query(&["FUNCTION", "LOAD", library]);

    in_request(&baseplate, async |foo| {
        let echoed: String = redis::cmd("EVALSHA")
            .arg(&sha)
            .arg(0)
            .arg("value-1")
            .query_async(foo)
            .await
            .unwrap();
        assert_eq!(echoed, "value-1");
        let echoed: String = redis::cmd("FCALL")
            .arg("echo_first")
            .arg(0)
            .arg("value-2")
            .query_async(foo)
            .await
            .unwrap();
        assert_eq!(echoed, "value-2");
        let _: () = foo.set("plain", "x").await.unwrap();
    })
    .await;

    assert_eq!(
        tag(&spans, "foo.EVALSHA", "db.stored_procedure.name").as_deref(),
        Some(sha.as_str())
    );
    assert_eq!(
        tag(&spans, "foo.FCALL", "db.stored_procedure.name").as_deref(),
        Some("echo_first")
    );
    assert_eq!(tag(&spans, "foo.SET", "db.stored_procedure.name"), None);
}

#[tokio::test]
async fn query_text_is_opt_in_and_never_holds_a_value() {
    let server = RedisServer::start();
    let (off, off_spans, _) = fixture(&server.url(0), TelemetryOptions::new());
    in_request(&off, async |foo| {
        let _: () = foo.set("user:1", "hunter2").await.unwrap();
    })
    .await;
    assert_eq!(tag(&off_spans, "foo.SET", "db.query.text"), None);

    let (on, spans, _) = fixture(&server.url(0), TelemetryOptions::new().query_text(true));
    in_request(&on, async |foo| {
        let _: () = foo.set("user:1", "hunter2").await.unwrap();
        let _: Option<String> = foo.get("user:1").await.unwrap();
        let _: () = redis::cmd("CLIENT")
            .arg("SETNAME")
            .arg("web-7")
            .query_async(foo)
            .await
            .unwrap();
        // The server has no password: AUTH fails, and its span still names no argument.
        let _ = redis::cmd("AUTH")
            .arg("admin")
            .arg("hunter2")
            .exec_async(foo)
            .await;
        let mut pipe = redis::pipe();
        pipe.incr("visits:alice", 1).expire("visits:alice", 60);
        let _: (i64, bool) = pipe.query_async(foo).await.unwrap();
    })
    .await;
    assert_eq!(
        tag(&spans, "foo.SET", "db.query.text").as_deref(),
        Some("SET ? ?")
    );
    assert_eq!(
        tag(&spans, "foo.GET", "db.query.text").as_deref(),
        Some("GET ?")
    );
    assert_eq!(
        tag(&spans, "foo.CLIENT", "db.query.text").as_deref(),
        Some("CLIENT SETNAME ?")
    );
    assert_eq!(
        tag(&spans, "foo.AUTH", "db.query.text").as_deref(),
        Some("AUTH")
    );
    assert_eq!(
        tag(&spans, "foo.pipeline", "db.query.text").as_deref(),
        Some("INCRBY ? ?; EXPIRE ? ?")
    );
    let everything = format!("{:?}", spans.spans());
    for secret in ["hunter2", "user:1", "web-7", "alice", "admin"] {
        assert!(!everything.contains(secret), "{secret} in {everything}");
    }
}

/// Keys and values made unique per call: if any of them reached a label or an attribute,
/// the number of distinct values would grow with the number of calls.
#[tokio::test]
async fn no_label_or_attribute_grows_with_keys_or_values_by_default() {
    let server = RedisServer::start();
    for naming in [MetricNaming::Baseplate, MetricNaming::Both] {
        let (baseplate, spans, metrics) = fixture(
            &server.url(0),
            TelemetryOptions::new().metric_naming(naming),
        );
        for i in 0..20 {
            in_request(&baseplate, async |foo| {
                let key = format!("unbounded-key-{i}");
                let value = format!("unbounded-value-{i}");
                let _: () = foo.set(&key, &value).await.unwrap();
                let _: String = foo.get(&key).await.unwrap();
                // Failures too: their error text names the key's type, never the key.
                let _ = foo.lpush::<_, _, i64>(&key, &value).await.unwrap_err();
                let mut pipe = redis::pipe();
                pipe.get(&key).hset(format!("h-{i}"), &key, &value);
                let _: (String, i64) = pipe.query_async(foo).await.unwrap();
            })
            .await;
        }
        let recorded = format!("{:?}", metrics.series());
        assert!(!recorded.contains("unbounded"), "{naming}: {recorded}");
        let series = metrics.series().len();
        // One more round: no new series.
        in_request(&baseplate, async |foo| {
            let _: () = foo
                .set("unbounded-key-x", "unbounded-value-x")
                .await
                .unwrap();
            let _: String = foo.get("unbounded-key-x").await.unwrap();
            let _ = foo
                .lpush::<_, _, i64>("unbounded-key-x", "v")
                .await
                .unwrap_err();
        })
        .await;
        assert_eq!(metrics.series().len(), series, "{naming}");
        for span in spans.spans() {
            for (key, value) in &span.tags {
                assert!(
                    !value.to_string().contains("unbounded"),
                    "{naming}: {} tag {key} = {value}",
                    span.name
                );
            }
        }
    }
}
