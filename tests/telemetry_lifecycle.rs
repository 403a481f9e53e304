//! Connection lifecycle telemetry on a real server: connections opened (and how long that
//! took), closed with the reason why, reconnects, connect failures, pool waits, pending
//! callers and pool timeouts.

mod common;

use std::sync::Arc;
use std::time::Duration;

use baseplate_redis::config::RawConfig;
use baseplate_redis::sink::{names, RecordingSink};
use baseplate_redis::{Baseplate, ContextSpec, MonitoredRedisConnection, RedisClient};
use common::RedisServer;
use redis::AsyncCommands;

fn baseplate(url: &str, extra: &[(&str, &str)]) -> (Baseplate, RecordingSink) {
    let mut config = RawConfig::from_pairs([("foo.url", url)]);
    for (k, v) in extra {
        config.insert(format!("foo.{k}"), *v);
    }
    let sink = RecordingSink::new();
    let mut baseplate = Baseplate::new(config)
        .with_metrics_sink(Arc::new(sink.clone()))
        .unwrap();
    baseplate
        .configure_context(ContextSpec::new().client("foo", RedisClient::new()))
        .unwrap();
    (baseplate, sink)
}

const POOL: (&str, &str) = (names::LABEL_POOL, "foo");

fn closed(sink: &RecordingSink, reason: &str) -> u64 {
    sink.counter_value(
        names::CONNECTIONS_CLOSED_TOTAL,
        &[POOL, (names::LABEL_REASON, reason)],
    )
}

/// Waits (bounded) until `check` holds; connections close when their last user lets go.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..200 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{what} did not happen within 2 s");
}

/// GETs (at most 50, 20 ms apart) until one succeeds (`ok`) or fails (`!ok`); whether it did.
async fn get_until(foo: &mut MonitoredRedisConnection, ok: bool) -> bool {
    for _ in 0..50 {
        if foo.get::<_, Option<String>>("k").await.is_ok() == ok {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
async fn a_connection_the_server_kills_is_closed_and_replaced() {
    let server = RedisServer::start();
    let (baseplate, sink) = baseplate(&server.url(0), &[]);
    let mut foo = baseplate.make_context_object().redis("foo").unwrap();
    let _: () = foo.set("k", "v").await.unwrap();
    assert_eq!(
        sink.counter_value(names::CONNECTIONS_OPENED_TOTAL, &[POOL]),
        1
    );
    let connect = sink.histogram_samples(names::CONNECT_DURATION_SECONDS, &[POOL]);
    assert_eq!(connect.len(), 1);
    assert!(connect[0] > 0.0 && connect[0] < 5.0, "{connect:?}");

    let _: i64 = server.query(&["CLIENT", "KILL", "TYPE", "normal"]);
    assert!(
        get_until(&mut foo, false).await,
        "the killed connection never failed"
    );
    let value: String = foo.get("k").await.unwrap();
    assert_eq!(value, "v");

    eventually("the killed connection is reported closed", || {
        closed(&sink, names::REASON_SERVER_CLOSED) == 1
    })
    .await;
    assert_eq!(
        sink.counter_value(names::CONNECTIONS_OPENED_TOTAL, &[POOL]),
        2
    );
    assert_eq!(sink.counter_value(names::RECONNECTS_TOTAL, &[POOL]), 1);
}

#[tokio::test]
async fn idle_connections_dead_after_a_restart_are_closed_as_half_open() {
    let mut server = RedisServer::start();
    let (baseplate, sink) = baseplate(&server.url(0), &[("socket_connect_timeout", "1 second")]);
    let mut foo = baseplate.make_context_object().redis("foo").unwrap();
    // A shared connection and an exclusive one, given back clean: idle in the pool.
    let _: () = foo.set("k", "v").await.unwrap();
    let _: Option<(String, String)> = foo.blpop("empty", 0.05).await.unwrap();

    server.restart();
    // The shared connection's command discovers the restart; the idle one is then checked
    // before reuse, and closed.
    assert!(
        get_until(&mut foo, true).await,
        "no command succeeded after the restart"
    );
    let _: Option<(String, String)> = foo.blpop("empty", 0.05).await.unwrap();
    eventually("the dead idle connection is reported half-open", || {
        closed(&sink, names::REASON_HALF_OPEN) == 1
    })
    .await;
    assert!(sink.counter_value(names::RECONNECTS_TOTAL, &[POOL]) >= 1);
}

#[tokio::test]
async fn cut_off_and_state_changed_connections_close_for_their_reason() {
    let server = RedisServer::start();
    let (baseplate, sink) = baseplate(&server.url(0), &[]);

    // A BLPOP cut off mid-flight: its socket may still get the reply.
    let mut foo = baseplate.make_context_object().redis("foo").unwrap();
    let cut = tokio::time::timeout(
        Duration::from_millis(50),
        foo.blpop::<_, Option<(String, String)>>("empty", 2.0),
    )
    .await;
    assert!(cut.is_err());
    eventually("the cut-off connection is reported closed", || {
        closed(&sink, names::REASON_TIMEOUT) == 1
    })
    .await;

    // A handle that SELECTed another database gives its connection back for closing.
    let _: () = redis::cmd("SELECT")
        .arg(1)
        .query_async(&mut foo)
        .await
        .unwrap();
    drop(foo);
    eventually("the state-changed connection is reported closed", || {
        closed(&sink, names::REASON_DISCARDED) == 1
    })
    .await;
    // The cut-off connection counts as lost to a failure (a timeout), so the next one opened
    // is a reconnect; the discarded one does not.
    let mut foo = baseplate.make_context_object().redis("foo").unwrap();
    let _: Option<(String, String)> = foo.blpop("empty", 0.05).await.unwrap();
    assert_eq!(sink.counter_value(names::RECONNECTS_TOTAL, &[POOL]), 1);
}

#[tokio::test]
async fn a_full_pool_reports_waits_pending_callers_and_timeouts() {
    let server = RedisServer::start();
    let (baseplate, sink) = baseplate(
        &server.url(0),
        &[
            ("max_connections", "1"),
            ("pool_timeout", "200 milliseconds"),
        ],
    );
    let mut holder = baseplate.make_context_object().redis("foo").unwrap();
    let held = tokio::spawn(async move {
        let _: Option<(String, String)> = holder.blpop("empty", 0.6).await.unwrap();
    });
    tokio::time::sleep(Duration::from_millis(100)).await;

    let mut foo = baseplate.make_context_object().redis("foo").unwrap();
    let waiting = tokio::spawn(async move {
        let _ = foo.blpop::<_, Option<(String, String)>>("other", 0.1).await;
        foo
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        sink.gauge_value(names::POOL_PENDING_REQUESTS, &[POOL]),
        Some(1.0)
    );
    let mut foo = waiting.await.unwrap();
    assert_eq!(sink.counter_value(names::POOL_TIMEOUTS_TOTAL, &[POOL]), 1);
    assert_eq!(
        sink.gauge_value(names::POOL_PENDING_REQUESTS, &[POOL]),
        Some(0.0)
    );
    held.await.unwrap();

    let _: Option<(String, String)> = foo.blpop("other", 0.05).await.unwrap();
    let waits = sink.histogram_samples(names::POOL_WAIT_SECONDS, &[POOL]);
    assert!(waits.len() >= 2, "{waits:?}");
    assert!(waits.iter().all(|w| *w >= 0.0 && *w < 1.0), "{waits:?}");
}

#[tokio::test]
async fn failed_connects_are_counted_by_error_type() {
    let url = format!("redis://127.0.0.1:{}/0", common::free_port());
    let (baseplate, sink) = baseplate(&url, &[("socket_connect_timeout", "1 second")]);
    let mut foo = baseplate.make_context_object().redis("foo").unwrap();
    foo.get::<_, Option<String>>("k").await.unwrap_err();
    let refused = [POOL, (names::LABEL_ERROR_TYPE, "connection_refused")];
    assert!(sink.counter_value(names::CONNECT_FAILURES_TOTAL, &refused) >= 1);
    assert_eq!(
        sink.counter_value(names::CONNECTIONS_OPENED_TOTAL, &[POOL]),
        0
    );
}

#[tokio::test]
async fn connections_left_when_the_client_goes_away_close_for_shutdown() {
    let server = RedisServer::start();
    let (baseplate, sink) = baseplate(&server.url(0), &[]);
    let mut foo = baseplate.make_context_object().redis("foo").unwrap();
    let _: () = foo.set("k", "v").await.unwrap();
    let _: Option<(String, String)> = foo.blpop("empty", 0.05).await.unwrap();
    drop(foo);
    drop(baseplate);
    eventually("the pool's connections are reported closed", || {
        closed(&sink, names::REASON_SHUTDOWN) == 2
    })
    .await;
    assert_eq!(closed(&sink, names::REASON_IDLE), 0);
}
