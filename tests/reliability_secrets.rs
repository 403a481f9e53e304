//! Guarantee 8: with `redis://user:secret@…`, the password appears in no `Debug` or
//! `Display` of any config, pool, factory, handle, Baseplate or error, in no span name or
//! tag, in no metric label and in no log line (every `tracing` event and `log` record at
//! TRACE level is captured and searched). ACL users work; a wrong password is a clear
//! authentication error.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use baseplate_redis::config::{RawConfig, RedisUrl};
use baseplate_redis::sink::RecordingSink;
use baseplate_redis::span::{RecordingObserver, TracingObserver};
use baseplate_redis::{
    pool_from_config, Baseplate, ContextSpec, MessageQueue, RedisClient, RedisClientConfig,
};
use common::RedisServer;
use redis::AsyncCommands;

const PASSWORD: &str = "secret";

/// Everything every test in this file logged.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs (once per test binary) a TRACE-level subscriber writing to a buffer; `log`
/// records (mobc's, redis-rs's) are forwarded to it too.
fn captured_logs() -> Captured {
    static LOGS: OnceLock<Captured> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Captured::default();
        let writer = logs.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_span_events(tracing_subscriber::fmt::format::FmtSpan::FULL)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .try_init()
            .unwrap();
        logs
    })
    .clone()
}

/// A server with ACL user `alice` (password `secret`); the default user needs a password
/// too, so nothing works without credentials.
fn acl_server() -> RedisServer {
    let server = RedisServer::start();
    server.query::<()>(&[
        "ACL", "SETUSER", "alice", "on", ">secret", "~*", "&*", "+@all",
    ]);
    server
}

fn url(server: &RedisServer, user: &str, password: &str) -> String {
    format!("redis://{user}:{password}@127.0.0.1:{}/0", server.port())
}

fn assert_hidden(what: &str, text: &str) {
    assert!(
        !text.contains(PASSWORD),
        "the password shows in {what}: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_password_shows_nowhere() {
    let logs = captured_logs();
    let server = acl_server();
    let good = url(&server, "alice", PASSWORD);
    let config = RawConfig::from_pairs([
        ("redis.url", good.clone()),
        ("redis.socket_timeout", "200 milliseconds".to_string()),
        ("redis.max_connections", "4".to_string()),
        // A second client whose server is down.
        (
            "down.url",
            format!(
                "redis://alice:{PASSWORD}@127.0.0.1:{}/0",
                common::free_port()
            ),
        ),
        (
            "down.socket_connect_timeout",
            "300 milliseconds".to_string(),
        ),
    ]);
    let metrics = RecordingSink::new();
    let spans = RecordingObserver::new();
    let mut baseplate = Baseplate::new(config.clone())
        .with_metrics_sink(Arc::new(metrics.clone()))
        .unwrap();
    baseplate.register(Arc::new(spans.clone()));
    baseplate.register(Arc::new(TracingObserver::new()));
    baseplate
        .configure_context(
            ContextSpec::new()
                .client("redis", RedisClient::new())
                .client("down", RedisClient::new()),
        )
        .unwrap();

    let mut shown = Vec::new();
    let mut context = baseplate.make_context_object();
    let span = baseplate.make_server_span(&mut context, "request", None);
    let mut redis = context.redis("redis").unwrap();

    // Commands that work, and ones that fail every way we can make them fail.
    let _: () = redis.set("k", "v").await.unwrap();
    let value: String = redis.get("k").await.unwrap();
    assert_eq!(value, "v");
    let wrongtype = redis.lpush::<_, _, ()>("k", "x").await.unwrap_err();
    let timeout = redis::cmd("DEBUG")
        .arg("SLEEP")
        .arg("0.5")
        .exec_async(&mut redis)
        .await
        .unwrap_err();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (n,): (i64,) = redis
        .pipeline("counting")
        .incr("n", 1)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(n, 1);
    let mut queue = MessageQueue::new("q", context.redis("redis").unwrap());
    queue.put(b"m").await.unwrap();
    assert_eq!(queue.get(Some(Duration::from_secs(1))).await.unwrap(), b"m");
    let queue_timeout = queue
        .get(Some(Duration::from_millis(10)))
        .await
        .unwrap_err();
    let mut down = context.redis("down").unwrap();
    let down_err = down.get::<_, Option<String>>("k").await.unwrap_err();
    assert!(
        down_err.to_string().contains("cannot connect"),
        "{down_err}"
    );

    for err in [&wrongtype, &timeout, &down_err] {
        shown.push(("redis error", format!("{err} {err:?}")));
    }
    shown.push(("queue error", format!("{queue_timeout} {queue_timeout:?}")));
    shown.push(("handle", format!("{redis:?}")));
    shown.push(("down handle", format!("{down:?}")));
    shown.push(("queue", format!("{queue:?}")));
    shown.push(("context", format!("{context:?}")));
    shown.push(("baseplate", format!("{baseplate:?}")));
    for (name, factory) in baseplate.factories() {
        shown.push(("factory", format!("{name} {factory:?}")));
    }
    span.finish();

    // Configuration, parsed and raw, and the pools made from it.
    shown.push(("raw config", format!("{config:?}")));
    let parsed = RedisClientConfig::from_config(&config, "redis.").unwrap();
    shown.push((
        "client config",
        format!("{parsed:?} {:?}", parsed.pool_options()),
    ));
    let parsed_url = RedisUrl::parse(&good).unwrap();
    assert_eq!(parsed_url.password(), Some(PASSWORD));
    shown.push((
        "url",
        format!(
            "{parsed_url} {parsed_url:?} {} {}",
            parsed_url.redacted(),
            parsed_url.address()
        ),
    ));
    let pool = pool_from_config(&config, "redis.").unwrap();
    shown.push(("pool", format!("{pool:?} {}", pool.address())));
    shown.push((
        "client declaration",
        format!("{:?}", RedisClient::new().client_name("svc")),
    ));

    // Configuration errors about URLs that hold the password.
    for bad in [
        format!("redis://alice:{PASSWORD}@127.0.0.1:notaport/0"),
        format!("redis://alice:{PASSWORD}@127.0.0.1:1/notadb"),
        format!("redis://alice:{PASSWORD}@127.0.0.1:1/0?bogus={PASSWORD}"),
        format!("http://alice:{PASSWORD}@127.0.0.1:1/0"),
        format!("redis://alice:{PASSWORD}/x@127.0.0.1:1/0"),
        format!("redis://alice:{PASSWORD}@[::1/0"),
    ] {
        let raw = RawConfig::from_pairs([("redis.url", bad.as_str())]);
        let err = pool_from_config(&raw, "redis.").unwrap_err();
        shown.push(("configuration error", format!("{err} {err:?}")));
        shown.push(("raw config with a bad url", format!("{raw:?}")));
        let mut baseplate = Baseplate::new(raw);
        let err = baseplate
            .configure_context(ContextSpec::new().client("redis", RedisClient::new()))
            .unwrap_err();
        shown.push(("configure_context error", format!("{err} {err:?}")));
    }

    for (what, text) in &shown {
        assert_hidden(what, text);
    }
    // Spans: names, tags and errors.
    let recorded = spans.spans();
    assert!(recorded.iter().any(|s| s.name == "redis.GET"));
    assert!(recorded.iter().any(|s| s.error.is_some()));
    for s in &recorded {
        assert_hidden("a span name", &s.name);
        assert_hidden("a span error", s.error.as_deref().unwrap_or(""));
        for (key, value) in &s.tags {
            assert_hidden("a span tag", &format!("{key}={value:?}"));
        }
    }
    // Metric names and labels.
    let series = metrics.series();
    assert!(!series.is_empty());
    assert_hidden("a metric", &format!("{series:?}"));
    // Log lines (with the spans' open/close events, so tags and errors are in them too).
    let text = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    assert!(text.contains("redis.GET"), "the logs were not captured");
    for line in text.lines() {
        assert_hidden("a log line", line);
    }
}

#[tokio::test]
async fn acl_users_work_and_a_wrong_password_is_a_clear_authentication_error() {
    let logs = captured_logs();
    let server = acl_server();

    let config = RawConfig::from_pairs([("redis.url", url(&server, "alice", PASSWORD))]);
    let pool = pool_from_config(&config, "redis.").unwrap();
    let factory = baseplate_redis::RedisContextFactory::new(pool);
    let mut redis = factory.connection();
    let who: String = redis::cmd("ACL")
        .arg("WHOAMI")
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(who, "alice");
    let _: () = redis.set("acl", 1).await.unwrap();

    for (user, password) in [("alice", "wrong-password"), ("mallory", PASSWORD)] {
        let config = RawConfig::from_pairs([("redis.url", url(&server, user, password))]);
        let pool = pool_from_config(&config, "redis.").unwrap();
        let factory = baseplate_redis::RedisContextFactory::new(pool.clone());
        let mut redis = factory.connection();
        let err = redis.get::<_, Option<String>>("acl").await.unwrap_err();
        assert_eq!(err.kind(), redis::ErrorKind::AuthenticationFailed, "{err}");
        let message = err.to_string();
        assert!(
            message.contains("cannot connect to redis at 127.0.0.1:"),
            "{message}"
        );
        assert!(
            message.contains("WRONGPASS") || message.to_lowercase().contains("auth"),
            "{message}"
        );
        assert!(!message.contains(password), "{message}");
        assert_hidden("an authentication error", &format!("{err:?}"));
        // A failed authentication is not retried into a leak.
        assert_eq!(pool.state().open, 0);
        assert_eq!(pool.state().in_use, 0);
    }
    let text = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    for line in text.lines() {
        assert_hidden("a log line", line);
        assert!(!line.contains("wrong-password"), "{line}");
    }
}
