//! Failed commands carry `error.type` and `db.response.status_code` (OpenTelemetry database
//! conventions) on their spans and on `db.client.operation.duration`: the Redis error prefix
//! for error replies, a stable client-side type for every failure the reliability suite
//! provokes (timeouts, refused and closed connections, a full pool, cancellation).

mod common;

use std::sync::Arc;
use std::time::Duration;

use baseplate_redis::config::RawConfig;
use baseplate_redis::sink::{names, RecordingSink};
use baseplate_redis::span::RecordingObserver;
use baseplate_redis::telemetry::{ErrorClass, MetricNaming, TelemetryOptions};
use baseplate_redis::{Baseplate, ContextSpec, Error, MonitoredRedisConnection, RedisClient};
use common::RedisServer;
use redis::AsyncCommands;

struct Fixture {
    baseplate: Baseplate,
    spans: RecordingObserver,
    metrics: RecordingSink,
}

fn fixture(url: &str, extra: &[(&str, &str)]) -> Fixture {
    let mut config = RawConfig::from_pairs([("foo.url", url)]);
    for (k, v) in extra {
        config.insert(format!("foo.{k}"), *v);
    }
    let metrics = RecordingSink::new();
    let spans = RecordingObserver::new();
    let mut baseplate = Baseplate::new(config)
        .with_metrics_sink(Arc::new(metrics.clone()))
        .unwrap();
    baseplate.register(Arc::new(spans.clone()));
    let telemetry = TelemetryOptions::new().metric_naming(MetricNaming::Both);
    baseplate
        .configure_context(
            ContextSpec::new().client("foo", RedisClient::new().telemetry(telemetry)),
        )
        .unwrap();
    Fixture {
        baseplate,
        spans,
        metrics,
    }
}

impl Fixture {
    /// Runs `body` on a handle inside a request span, then finishes the span.
    async fn run(&self, body: impl AsyncFnOnce(&mut MonitoredRedisConnection)) {
        let mut context = self.baseplate.make_context_object();
        let span = self
            .baseplate
            .make_server_span(&mut context, "request", None);
        let mut foo = context.redis("foo").unwrap();
        body(&mut foo).await;
        drop(foo);
        span.finish();
    }

    /// Checks that span `span_name` and the duration histogram of `operation` both carry
    /// `error_type` and `status_code`.
    fn assert_failure(
        &self,
        span_name: &str,
        operation: &str,
        error_type: &str,
        status_code: Option<&str>,
    ) {
        let span = self
            .spans
            .find(span_name)
            .unwrap_or_else(|| panic!("no span {span_name}: {:?}", self.spans.names()));
        assert!(span.error.is_some(), "{span_name} finished without error");
        let tag = |key: &str| span.tags.get(key).map(|v| v.to_string());
        assert_eq!(tag("error.type").as_deref(), Some(error_type), "{span:?}");
        assert_eq!(
            tag("db.response.status_code").as_deref(),
            status_code,
            "{span:?}"
        );
        let mut labels = vec![
            (names::OTEL_DB_OPERATION_NAME, operation),
            (names::OTEL_ERROR_TYPE, error_type),
        ];
        if let Some(code) = status_code {
            labels.push((names::OTEL_DB_RESPONSE_STATUS_CODE, code));
        }
        assert_eq!(
            self.metrics
                .histogram_count(names::OTEL_OPERATION_DURATION, &labels),
            1,
            "{:#?}",
            self.metrics.series()
        );
        // Baseplate's series says only that it failed.
        let failed = [
            (names::LABEL_COMMAND, &*operation.to_lowercase()),
            (names::LABEL_SUCCESS, "false"),
        ];
        assert_eq!(
            self.metrics.counter_value(names::REQUESTS_TOTAL, &failed),
            1
        );
    }
}

#[tokio::test]
async fn error_replies_carry_their_prefix() {
    let server = RedisServer::start();
    let f = fixture(&server.url(0), &[]);
    f.run(async |foo| {
        let _: () = foo.lpush("list", "a").await.unwrap();
        let err = foo.get::<_, String>("list").await.unwrap_err();
        assert_eq!(err.code(), Some("WRONGTYPE"));
        redis::cmd("NOSUCHCOMMAND")
            .exec_async(foo)
            .await
            .unwrap_err();
        let sha = "0000000000000000000000000000000000000000";
        redis::cmd("EVALSHA")
            .arg(sha)
            .arg(0)
            .exec_async(foo)
            .await
            .unwrap_err();
    })
    .await;
    f.assert_failure("foo.GET", "GET", "WRONGTYPE", Some("WRONGTYPE"));
    f.assert_failure("foo.NOSUCHCOMMAND", "NOSUCHCOMMAND", "ERR", Some("ERR"));
    f.assert_failure("foo.EVALSHA", "EVALSHA", "NOSCRIPT", Some("NOSCRIPT"));
}

#[tokio::test]
async fn a_server_without_our_credentials_answers_noauth() {
    let server = RedisServer::start_with(&["--requirepass", "s3cret"]);
    let f = fixture(&server.url(0), &[]);
    f.run(async |foo| {
        foo.get::<_, Option<String>>("k").await.unwrap_err();
    })
    .await;
    f.assert_failure("foo.GET", "GET", "NOAUTH", Some("NOAUTH"));
}

#[tokio::test]
async fn a_wrong_password_is_an_authentication_failure() {
    // The redis crate turns the WRONGPASS reply to the handshake's AUTH into its own kind.
    let server = RedisServer::start_with(&["--requirepass", "s3cret"]);
    let url = format!("redis://:wrong@127.0.0.1:{}/0", server.port());
    let f = fixture(&url, &[]);
    f.run(async |foo| {
        foo.get::<_, Option<String>>("k").await.unwrap_err();
    })
    .await;
    f.assert_failure("foo.GET", "GET", "authentication_failed", None);
}

#[tokio::test]
async fn a_slow_reply_is_a_timeout() {
    let server = RedisServer::start();
    let f = fixture(&server.url(0), &[("socket_timeout", "200 milliseconds")]);
    f.run(async |foo| {
        let err = redis::cmd("DEBUG")
            .arg("SLEEP")
            .arg(1)
            .exec_async(foo)
            .await
            .unwrap_err();
        assert!(err.is_timeout(), "{err}");
    })
    .await;
    f.assert_failure("foo.DEBUG", "DEBUG", "timeout", None);
}

#[tokio::test]
async fn a_listener_that_never_answers_is_a_connect_timeout() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "redis://127.0.0.1:{}/0",
        listener.local_addr().unwrap().port()
    );
    let f = fixture(&url, &[("socket_connect_timeout", "200 milliseconds")]);
    f.run(async |foo| {
        foo.get::<_, Option<String>>("k").await.unwrap_err();
    })
    .await;
    f.assert_failure("foo.GET", "GET", "connect_timeout", None);
    drop(listener);
}

#[tokio::test]
async fn nothing_listening_is_a_refused_connection() {
    let url = format!("redis://127.0.0.1:{}/0", common::free_port());
    let f = fixture(&url, &[("socket_connect_timeout", "1 second")]);
    f.run(async |foo| {
        foo.get::<_, Option<String>>("k").await.unwrap_err();
    })
    .await;
    f.assert_failure("foo.GET", "GET", "connection_refused", None);
}

#[tokio::test]
async fn a_connection_the_server_closed_is_connection_closed() {
    let server = RedisServer::start();
    let f = fixture(&server.url(0), &[]);
    f.run(async |foo| {
        let _: () = foo.set("k", "v").await.unwrap();
        let _: i64 = server.query(&["CLIENT", "KILL", "TYPE", "normal"]);
        // The multiplexer notices the EOF as soon as it reads: bounded wait for it.
        let mut failed = None;
        for _ in 0..50 {
            match foo.get::<_, Option<String>>("k").await {
                Ok(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                Err(err) => {
                    failed = Some(err);
                    break;
                }
            }
        }
        let err = failed.expect("a command on the killed connection failed");
        assert!(err.is_connection_dropped() || err.is_io_error(), "{err}");
    })
    .await;
    let span = f
        .spans
        .spans()
        .into_iter()
        .find(|s| s.name == "foo.GET" && s.error.is_some())
        .unwrap();
    assert_eq!(
        span.tags
            .get("error.type")
            .map(|v| v.to_string())
            .as_deref(),
        Some("connection_closed")
    );
    let labels = [(names::OTEL_ERROR_TYPE, "connection_closed")];
    assert_eq!(
        f.metrics
            .histogram_count(names::OTEL_OPERATION_DURATION, &labels),
        1
    );
}

#[tokio::test]
async fn a_full_pool_is_a_pool_timeout() {
    let server = RedisServer::start();
    let f = fixture(
        &server.url(0),
        &[
            ("max_connections", "1"),
            ("pool_timeout", "200 milliseconds"),
        ],
    );
    // The only connection is held by a BLPOP for a second.
    let mut holder = f.baseplate.make_context_object().redis("foo").unwrap();
    let held = tokio::spawn(async move {
        let _: Option<(String, String)> = holder.blpop("never", 1.0).await.unwrap();
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    f.run(async |foo| {
        let err = foo
            .blpop::<_, Option<(String, String)>>("other", 1.0)
            .await
            .unwrap_err();
        assert!(err.is_timeout(), "{err}");
    })
    .await;
    held.await.unwrap();
    f.assert_failure("foo.BLPOP", "BLPOP", "pool_timeout", None);
}

#[tokio::test]
async fn a_dropped_command_is_cancelled() {
    let server = RedisServer::start();
    let f = fixture(&server.url(0), &[]);
    f.run(async |foo| {
        let _: () = foo.set("k", "v").await.unwrap();
        let sleep = redis::cmd("DEBUG").arg("SLEEP").arg(0.5).clone();
        let slow = sleep.exec_async(foo);
        assert!(tokio::time::timeout(Duration::from_millis(50), slow)
            .await
            .is_err());
    })
    .await;
    f.assert_failure("foo.DEBUG", "DEBUG", "cancelled", None);
}

#[test]
fn every_other_error_of_the_crate_has_a_stable_type() {
    let address = "127.0.0.1:1".to_string();
    // Kinds a live server cannot easily be made to produce.
    let cases: Vec<(Error, &str)> = vec![
        (
            Error::QueueTimedOut {
                queue: "q".into(),
                timeout: Duration::from_secs(1),
            },
            "queue_timeout",
        ),
        (
            Error::Redis(redis::RedisError::from((
                redis::ErrorKind::Parse,
                "garbled reply",
            ))),
            "protocol_error",
        ),
        (
            Error::Redis(redis::RedisError::from((
                redis::ErrorKind::UnexpectedReturnType,
                "not an integer",
            ))),
            "response_type_error",
        ),
        (
            Error::Connect {
                address,
                source: redis::RedisError::from((
                    redis::ErrorKind::InvalidClientConfig,
                    "bad TLS name",
                )),
            },
            "configuration_error",
        ),
        (
            Error::Connect {
                address: "127.0.0.1:2".into(),
                source: redis::RedisError::from(std::io::Error::other("TLS handshake failed")),
            },
            "connect_error",
        ),
        (
            Error::Redis(redis::RedisError::from((
                redis::ErrorKind::MasterNameNotFoundBySentinel,
                "no master",
            ))),
            "sentinel_error",
        ),
    ];
    for (err, expected) in cases {
        let class = ErrorClass::of_error(&err);
        assert_eq!(class.error_type(), expected, "{err}");
        assert_eq!(class.status_code(), None, "{err}");
        // The same through a `RedisError`, as `ConnectionLike` callers see it.
        let through = redis::RedisError::from(err);
        assert_eq!(ErrorClass::of_redis(&through).error_type(), expected);
    }
    // A script may reply with any prefix: unknown ones collapse into one value.
    let scripted = redis::make_extension_error("USER_42_NOT_FOUND".into(), None);
    assert_eq!(ErrorClass::of_redis(&scripted).status_code(), Some("OTHER"));
}
