//! The core client against a private redis-server: spans, metrics, pool, pipelines,
//! transactions, configuration.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use baseplate_redis::config::RawConfig;
use baseplate_redis::sink::{names, RecordingSink};
use baseplate_redis::span::RecordingObserver;
use baseplate_redis::{
    pool_from_config, Baseplate, ContextSpec, Error, MonitoredRedisConnection, RedisClient,
    RedisContextFactory,
};
use common::RedisServer;
use redis::AsyncCommands;

struct Fixture {
    baseplate: Baseplate,
    spans: RecordingObserver,
    metrics: RecordingSink,
}

/// A Baseplate with client `name` on `server` db `db`, plus any extra keys.
fn fixture(server: &RedisServer, name: &str, db: u32, extra: &[(&str, &str)]) -> Fixture {
    let mut config = RawConfig::from_pairs([(format!("{name}.url"), server.url(db))]);
    for (k, v) in extra {
        config.insert(format!("{name}.{k}"), *v);
    }
    let metrics = RecordingSink::new();
    let spans = RecordingObserver::new();
    let mut baseplate = Baseplate::new(config)
        .with_metrics_sink(Arc::new(metrics.clone()))
        .unwrap();
    baseplate.register(Arc::new(spans.clone()));
    let spec = match name.split_once('.') {
        Some((group, member)) => {
            ContextSpec::new().group(group, ContextSpec::new().client(member, RedisClient::new()))
        }
        None => ContextSpec::new().client(name, RedisClient::new()),
    };
    baseplate.configure_context(spec).unwrap();
    Fixture {
        baseplate,
        spans,
        metrics,
    }
}

fn handle(f: &Fixture, name: &str) -> (MonitoredRedisConnection, baseplate_redis::span::Span) {
    let mut context = f.baseplate.make_context_object();
    let span = f.baseplate.make_server_span(&mut context, "request", None);
    (context.redis(name).unwrap(), span)
}

#[tokio::test]
async fn ping_makes_a_child_span_named_after_the_context() {
    let server = RedisServer::start();
    let f = fixture(&server, "redis", 0, &[]);
    let (mut redis, span) = handle(&f, "redis");
    let pong: String = redis::cmd("PING").query_async(&mut redis).await.unwrap();
    let server_span_id = span.span_id();
    span.finish();

    assert_eq!(pong, "PONG");
    let ping = f.spans.find("redis.PING").unwrap();
    assert_eq!(ping.parent_id, Some(server_span_id));
    assert!(ping.finished);
    assert_eq!(ping.error, None);
    assert_eq!(f.spans.find("request").unwrap().trace_id, ping.trace_id);
    assert_eq!(
        ping.tags.get("db.system").map(|t| t.to_string()).as_deref(),
        Some("redis")
    );
}

#[tokio::test]
async fn named_pipeline_is_one_span_and_one_measurement() {
    let server = RedisServer::start();
    let f = fixture(&server, "redis", 0, &[]);
    let (mut redis, span) = handle(&f, "redis");
    let mut pipe = redis.pipeline("foo");
    pipe.set("p:a", 1).ignore().incr("p:a", 2).get("p:a");
    let (incremented, value): (i64, i64) = pipe.query_async(&mut redis).await.unwrap();
    span.finish();

    assert_eq!((incremented, value), (3, 3));
    assert_eq!(f.spans.names(), ["request", "redis.pipeline_foo"]);
    let labels = [
        (names::LABEL_COMMAND, "pipeline"),
        (names::LABEL_SUCCESS, "true"),
    ];
    assert_eq!(f.metrics.counter_value(names::REQUESTS_TOTAL, &labels), 1);
    assert_eq!(
        f.metrics.histogram_count(names::LATENCY_SECONDS, &labels),
        1
    );
}

#[tokio::test]
async fn non_atomic_pipeline_runs_without_multi() {
    let server = RedisServer::start();
    let f = fixture(&server, "redis", 0, &[]);
    let (mut redis, _span) = handle(&f, "redis");
    let mut pipe = redis.pipeline("plain").non_atomic();
    pipe.set("n:a", "x").ignore().get("n:a");
    let (value,): (String,) = pipe.query_async(&mut redis).await.unwrap();
    assert_eq!(value, "x");
    let stats: String = server.query(&["INFO", "commandstats"]);
    assert!(!stats.contains("cmdstat_multi"), "{stats}");
}

#[tokio::test]
async fn unknown_command_fails_its_span_and_counts_a_failure() {
    let server = RedisServer::start();
    let f = fixture(&server, "redis", 0, &[]);
    let (mut redis, span) = handle(&f, "redis");
    let err = redis::cmd("NOSUCHCOMMAND")
        .arg("x")
        .query_async::<()>(&mut redis)
        .await
        .unwrap_err();
    span.finish();

    assert!(err.to_string().contains("unknown command"), "{err}");
    let failed = f.spans.find("redis.NOSUCHCOMMAND").unwrap();
    assert!(failed.finished);
    assert!(failed.error.unwrap().contains("unknown command"));
    let labels = [
        (names::LABEL_COMMAND, "nosuchcommand"),
        (names::LABEL_SUCCESS, "false"),
    ];
    assert_eq!(f.metrics.counter_value(names::REQUESTS_TOTAL, &labels), 1);
    let active = [(names::LABEL_COMMAND, "nosuchcommand")];
    assert_eq!(
        f.metrics.gauge_value(names::ACTIVE_REQUESTS, &active),
        Some(0.0)
    );
}

#[tokio::test]
async fn set_counts_once_with_all_five_labels() {
    let server = RedisServer::start();
    let f = fixture(&server, "redis", 2, &[]);
    let (mut redis, _span) = handle(&f, "redis");
    let _: () = redis.set("k", "v").await.unwrap();

    let labels = [
        (names::LABEL_COMMAND, "set"),
        (names::LABEL_DATABASE, "2"),
        (names::LABEL_CLIENT_NAME, "redis"),
        (names::LABEL_TYPE, "standalone"),
        (names::LABEL_SUCCESS, "true"),
    ];
    assert_eq!(f.metrics.counter_value(names::REQUESTS_TOTAL, &labels), 1);
    assert_eq!(f.metrics.counter_value(names::REQUESTS_TOTAL, &[]), 1);
    assert_eq!(
        f.metrics.histogram_count(names::LATENCY_SECONDS, &labels),
        1
    );
    assert!(f.metrics.histogram_sum(names::LATENCY_SECONDS, &labels) > 0.0);
    let active = &labels[..4];
    assert_eq!(
        f.metrics.gauge_value(names::ACTIVE_REQUESTS, active),
        Some(0.0)
    );
    let series = f.metrics.series();
    let requests = series
        .iter()
        .find(|s| s.name == names::REQUESTS_TOTAL)
        .unwrap();
    assert_eq!(requests.labels.len(), 5);
}

#[tokio::test]
async fn url_database_is_selected() {
    let server = RedisServer::start();
    let f = fixture(&server, "foo", 3, &[]);
    let (mut foo, _span) = handle(&f, "foo");
    let _: () = foo.set("in-db-3", "yes").await.unwrap();
    let mut admin = server.admin();
    let _: () = redis::cmd("SELECT").arg(3).query(&mut admin).unwrap();
    let value: String = redis::cmd("GET").arg("in-db-3").query(&mut admin).unwrap();
    assert_eq!(value, "yes");
}

#[tokio::test]
async fn nested_context_names_are_dotted() {
    let server = RedisServer::start();
    let f = fixture(&server, "caches.foo", 0, &[]);
    let (mut foo, _span) = handle(&f, "caches.foo");
    let _: Option<String> = foo.get("missing").await.unwrap();
    assert!(
        f.spans.find("caches.foo.GET").is_some(),
        "{:?}",
        f.spans.names()
    );
    assert_eq!(
        f.metrics.counter_value(
            names::REQUESTS_TOTAL,
            &[(names::LABEL_CLIENT_NAME, "caches.foo")]
        ),
        1
    );
}

#[tokio::test]
async fn client_name_is_sent_and_password_authenticates() {
    let server = RedisServer::start_with(&["--requirepass", "s3cret-pw"]);
    let config = RawConfig::from_pairs([
        (
            "foo.url",
            format!("redis://:s3cret-pw@127.0.0.1:{}/0", server.port()),
        ),
        ("foo.client_name", "quick-svc".to_string()),
    ]);
    let mut baseplate = Baseplate::new(config);
    baseplate
        .configure_context(ContextSpec::new().client("foo", RedisClient::new()))
        .unwrap();
    let context = baseplate.make_context_object();
    let mut foo = context.redis("foo").unwrap();
    let _: () = foo.set("a", 1).await.unwrap();

    let client =
        redis::Client::open(format!("redis://:s3cret-pw@127.0.0.1:{}/0", server.port())).unwrap();
    let mut admin = client.get_connection().unwrap();
    let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut admin).unwrap();
    assert!(list.contains("name=quick-svc"), "{list}");
    assert!(!format!("{baseplate:?}").contains("s3cret-pw"));
}

#[tokio::test]
async fn wrong_password_is_a_clear_error() {
    let server = RedisServer::start_with(&["--requirepass", "right"]);
    let config = RawConfig::from_pairs([(
        "foo.url",
        format!("redis://:wrong@127.0.0.1:{}/0", server.port()),
    )]);
    let pool = pool_from_config(&config, "foo.").unwrap();
    let factory = RedisContextFactory::new(pool);
    let mut foo = factory.connection();
    let err = redis::cmd("PING")
        .query_async::<String>(&mut foo)
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("WRONGPASS") || message.to_lowercase().contains("auth"),
        "{message}"
    );
    assert!(!message.contains("wrong@"), "{message}");
}

#[tokio::test]
async fn alternate_prefix_and_parsed_url() {
    let server = RedisServer::start();
    let config = RawConfig::from_pairs([
        ("noodle.url", server.url(5)),
        ("noodle.max_connections", "7".to_string()),
    ]);
    let pool = pool_from_config(&config, "noodle.").unwrap();
    assert_eq!(pool.database(), 5);
    assert_eq!(&*pool.address(), format!("127.0.0.1:{}", server.port()));
    assert_eq!(pool.state().max_size, 7);
    let mut conn = RedisContextFactory::new(pool).connection();
    let pong: String = redis::cmd("PING").query_async(&mut conn).await.unwrap();
    assert_eq!(pong, "PONG");
}

#[tokio::test]
async fn empty_config_is_a_configuration_error() {
    let err = pool_from_config(&RawConfig::new(), "foo.").unwrap_err();
    assert_eq!(err.key(), "foo.url");
    let mut baseplate = Baseplate::new(RawConfig::from_pairs([("foo.url", "redis://x")]));
    let err = baseplate
        .configure_context(
            ContextSpec::new()
                .client("foo", RedisClient::new())
                .client("bar", RedisClient::new()),
        )
        .unwrap_err();
    assert_eq!(err.key(), "bar.url");
    // Nothing was added when one client failed.
    assert_eq!(baseplate.factories().count(), 0);
    let err = baseplate.make_context_object().redis("foo").unwrap_err();
    assert!(matches!(err, Error::UnknownContextObject { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_never_opens_more_than_max_connections() {
    let server = RedisServer::start();
    let f = fixture(&server, "foo", 0, &[("max_connections", "3")]);
    let context = f.baseplate.make_context_object();
    let mut tasks = Vec::new();
    for i in 0..50 {
        let mut foo = context.redis("foo").unwrap();
        tasks.push(tokio::spawn(async move {
            if i % 5 == 0 {
                // Blocking commands need a connection of their own.
                let popped: Option<(String, String)> =
                    foo.blpop(format!("empty-{i}"), 0.2).await.unwrap();
                assert!(popped.is_none());
            } else {
                let _: () = foo.set(format!("k{i}"), i).await.unwrap();
                let v: i64 = foo.get(format!("k{i}")).await.unwrap();
                assert_eq!(v, i);
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut most = 0;
    while !tasks.iter().all(|t| t.is_finished()) {
        assert!(Instant::now() < deadline, "commands did not finish in 20 s");
        most = most.max(server.connected_clients());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for task in tasks {
        task.await.unwrap();
    }
    let (_, factory) = f.baseplate.factories().next().unwrap();
    let _ = factory;
    assert!(most <= 3, "server saw {most} client connections");
    assert!(server.connected_clients() <= 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_commands_wait_for_a_connection_then_time_out_clearly() {
    let server = RedisServer::start();
    let f = fixture(
        &server,
        "foo",
        0,
        &[
            ("max_connections", "2"),
            ("pool_timeout", "300 milliseconds"),
        ],
    );
    let context = f.baseplate.make_context_object();
    // One connection is the shared one, the other is held by this blocked pop.
    let mut holder = context.redis("foo").unwrap();
    let _: () = holder.set("warm", 1).await.unwrap();
    let blocked = tokio::spawn(async move {
        let _: Option<(String, String)> = holder.blpop("never", 1.5).await.unwrap();
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut waiter = context.redis("foo").unwrap();
    let started = Instant::now();
    let err = waiter
        .blpop::<_, Option<(String, String)>>("never", 0.1)
        .await
        .unwrap_err();
    let waited = started.elapsed();
    assert!(err.is_timeout(), "{err}");
    assert!(err.to_string().contains("no redis connection"), "{err}");
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(2),
        "{waited:?}"
    );
    // Ordinary commands still flow over the shared connection meanwhile.
    let _: () = waiter.set("still", "works").await.unwrap();
    blocked.await.unwrap();
}

#[tokio::test]
async fn watch_transaction_commits_and_retries_on_conflict() {
    let server = RedisServer::start();
    let f = fixture(&server, "foo", 0, &[]);
    let (mut foo, _span) = handle(&f, "foo");
    let _: () = foo.set("balance", 100).await.unwrap();
    let mut attempts = 0;
    let admin_url = server.url(0);
    let (balance,): (i64,) = foo
        .transaction("balance", async |conn, pipe| {
            attempts += 1;
            let balance: i64 = conn.get("balance").await?;
            if attempts == 1 {
                // Someone else changes the watched key: EXEC must fail and we retry.
                let client = redis::Client::open(admin_url.as_str())?;
                let mut other = client.get_multiplexed_async_connection().await?;
                let _: () = other.set("balance", 50).await?;
            }
            pipe.set("balance", balance - 10).ignore().get("balance");
            pipe.query_async(conn).await
        })
        .await
        .unwrap();
    assert_eq!(attempts, 2);
    assert_eq!(balance, 40);
    let stats: String = server.query(&["INFO", "commandstats"]);
    assert!(stats.contains("cmdstat_watch:calls=2"), "{stats}");
}

#[tokio::test]
async fn no_default_response_timeout_and_socket_timeout_applies() {
    let server = RedisServer::start();
    // Without socket_timeout a slow command is waited for (no hidden 500 ms default).
    let f = fixture(&server, "slow", 0, &[]);
    let (mut slow, _span) = handle(&f, "slow");
    let _: () = redis::cmd("DEBUG")
        .arg("SLEEP")
        .arg("0.7")
        .query_async(&mut slow)
        .await
        .unwrap();

    let f = fixture(
        &server,
        "fast",
        0,
        &[("socket_timeout", "200 milliseconds")],
    );
    let (mut fast, _span) = handle(&f, "fast");
    let started = Instant::now();
    let err = redis::cmd("DEBUG")
        .arg("SLEEP")
        .arg("1")
        .query_async::<()>(&mut fast)
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert!(started.elapsed() < Duration::from_millis(900));
    tokio::time::sleep(Duration::from_millis(900)).await;
    let pong: String = redis::cmd("PING").query_async(&mut fast).await.unwrap();
    assert_eq!(pong, "PONG");
}

#[tokio::test]
async fn killed_connection_is_replaced() {
    let server = RedisServer::start();
    let f = fixture(&server, "foo", 0, &[("client_name", "victim")]);
    let context = f.baseplate.make_context_object();
    let mut foo = context.redis("foo").unwrap();
    let _: () = foo.set("a", 1).await.unwrap();
    let killed: i64 = server.query(&["CLIENT", "KILL", "SKIPME", "yes", "TYPE", "normal"]);
    assert!(killed >= 1);
    // The next command may fail on the dead socket; within a few tries it must work again.
    let mut recovered = false;
    for _ in 0..5 {
        let mut foo = context.redis("foo").unwrap();
        if foo.get::<_, i64>("a").await.is_ok() {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(recovered);
}

#[tokio::test]
async fn runtime_reporter_reports_pool_metrics_and_stops() {
    let server = RedisServer::start();
    let f = fixture(&server, "foo", 0, &[("max_connections", "4")]);
    let context = f.baseplate.make_context_object();
    let mut foo = context.redis("foo").unwrap();
    let _: () = foo.set("a", 1).await.unwrap();

    let reporter = f
        .baseplate
        .start_runtime_reporter(Duration::from_millis(20));
    tokio::time::sleep(Duration::from_millis(100)).await;
    reporter.shutdown().await;

    let client = [(names::LABEL_CLIENT, "foo")];
    let pool = [(names::LABEL_POOL, "foo")];
    assert_eq!(
        f.metrics.gauge_value(names::RUNTIME_POOL_SIZE, &client),
        Some(4.0)
    );
    assert_eq!(
        f.metrics.gauge_value(names::RUNTIME_POOL_IN_USE, &client),
        Some(0.0)
    );
    assert_eq!(
        f.metrics
            .gauge_value(names::RUNTIME_POOL_OPEN_AND_AVAILABLE, &client),
        Some(1.0)
    );
    assert_eq!(
        f.metrics.gauge_value(names::POOL_MAX_SIZE, &pool),
        Some(4.0)
    );
    // baseplate.py's meanings: idle = free slots (max - in use), active = open.
    assert_eq!(
        f.metrics.gauge_value(names::POOL_IDLE_CONNECTIONS, &pool),
        Some(4.0)
    );
    assert_eq!(
        f.metrics.gauge_value(names::POOL_ACTIVE_CONNECTIONS, &pool),
        Some(1.0)
    );

    // Stopped: no more reports.
    f.metrics.clear();
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert_eq!(
        f.metrics.gauge_value(names::RUNTIME_POOL_SIZE, &client),
        None
    );
}

#[tokio::test]
async fn serve_finishes_the_server_span_with_the_handlers_error() {
    let server = RedisServer::start();
    let f = fixture(&server, "foo", 0, &[]);
    let result = f
        .baseplate
        .serve("failing_handler", None, async |context| {
            let mut foo = context.redis("foo")?;
            let _: () = foo.set("s", "text").await?;
            let n: i64 = foo.incr("s", 1).await?;
            Ok::<_, Error>(n)
        })
        .await;
    assert!(result.is_err());
    let server_span = f.spans.find("failing_handler").unwrap();
    assert!(server_span.finished);
    assert!(server_span.error.unwrap().contains("not an integer"));
    // redis-rs sends `incr` as INCRBY.
    assert!(f.spans.find("foo.INCRBY").unwrap().error.is_some());
    assert_eq!(f.spans.find("foo.SET").unwrap().error, None);
}
