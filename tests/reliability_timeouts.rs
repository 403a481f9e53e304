//! Guarantee 3: each configured timeout does what it says: `socket_timeout` cuts a slow
//! reply (and the client keeps working), `socket_connect_timeout` cuts a connect to a
//! listener that never answers, and a full pool makes callers wait at most the pool wait
//! bound.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use baseplate_redis::config::RawConfig;
use baseplate_redis::pool::PoolBackend;
use baseplate_redis::{pool_from_config, RedisContextFactory};
use common::RedisServer;
use redis::AsyncCommands;

fn client(url: &str, extra: &[(&str, &str)]) -> (Arc<dyn PoolBackend>, RedisContextFactory) {
    let mut config = RawConfig::from_pairs([("redis.url", url)]);
    for (k, v) in extra {
        config.insert(format!("redis.{k}"), *v);
    }
    let pool = pool_from_config(&config, "redis.").unwrap();
    (pool.clone(), RedisContextFactory::new(pool))
}

#[tokio::test]
async fn socket_timeout_cuts_a_slow_reply_and_the_client_keeps_working() {
    let server = RedisServer::start();
    server.query::<()>(&["SET", "after", "its own value"]);
    let (pool, factory) = client(
        &server.url(0),
        &[
            ("socket_timeout", "200 milliseconds"),
            ("max_connections", "4"),
        ],
    );
    let mut redis = factory.connection();
    // Open the connection first so the measured time is the reply wait alone.
    let _: String = redis::cmd("PING").query_async(&mut redis).await.unwrap();

    let started = Instant::now();
    let err = redis::cmd("DEBUG")
        .arg("SLEEP")
        .arg(1)
        .exec_async(&mut redis)
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(err.is_timeout(), "{err}");
    assert!(err.to_string().contains("DEBUG"), "{err}");
    assert!(err.to_string().contains("timed out after 200ms"), "{err}");
    assert!(took >= Duration::from_millis(200), "{took:?}");
    assert!(took < Duration::from_millis(400), "{took:?}");

    // The server is busy for the rest of that second (it is single-threaded); once it is
    // free, the next command on the same handle works and gets its own reply, not the late
    // `OK` of DEBUG SLEEP.
    tokio::time::sleep(Duration::from_millis(1_100).saturating_sub(started.elapsed())).await;
    let value: String = redis.get("after").await.unwrap();
    assert_eq!(value, "its own value");
    let mut fresh = factory.connection();
    let value: String = fresh.get("after").await.unwrap();
    assert_eq!(value, "its own value");
    assert_eq!(pool.state().in_use, 0);
}

#[tokio::test]
async fn socket_timeout_on_an_exclusive_connection_closes_it() {
    let server = RedisServer::start();
    let (pool, factory) = client(
        &server.url(0),
        &[
            ("socket_timeout", "200 milliseconds"),
            ("max_connections", "2"),
        ],
    );
    let mut redis = factory.connection();
    // WATCH pins an exclusive connection to the handle.
    redis::cmd("WATCH")
        .arg("k")
        .exec_async(&mut redis)
        .await
        .unwrap();
    let started = Instant::now();
    let err = redis::cmd("DEBUG")
        .arg("SLEEP")
        .arg(1)
        .exec_async(&mut redis)
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert!(started.elapsed() < Duration::from_millis(400));
    drop(redis);
    tokio::time::sleep(Duration::from_millis(1_100).saturating_sub(started.elapsed())).await;

    // The timed-out connection was closed rather than given back.
    let deadline = Instant::now() + Duration::from_secs(2);
    while server.connected_clients() > 0 {
        assert!(
            Instant::now() < deadline,
            "the timed-out connection stayed open"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut redis = factory.connection();
    redis::cmd("WATCH")
        .arg("k")
        .exec_async(&mut redis)
        .await
        .unwrap();
    let pong: String = redis::cmd("PING").query_async(&mut redis).await.unwrap();
    assert_eq!(pong, "PONG");
    drop(redis);
    assert_eq!(pool.state().in_use, 0);
}

#[tokio::test]
async fn connect_timeout_is_honoured_against_a_listener_that_never_accepts() {
    // A bound socket that never calls accept: the kernel may finish the TCP handshake, but
    // nothing ever answers the client's hello.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (pool, factory) = client(
        &format!("redis://127.0.0.1:{port}/0"),
        &[("socket_connect_timeout", "300 milliseconds")],
    );
    let mut redis = factory.connection();
    let started = Instant::now();
    let err = redis.get::<_, Option<String>>("k").await.unwrap_err();
    let took = started.elapsed();
    assert!(err.is_timeout(), "{err}");
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
    assert!(err.to_string().contains("timed out after 300ms"), "{err}");
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < Duration::from_millis(1_500), "{took:?}");
    assert_eq!(pool.state().in_use, 0);
    assert_eq!(pool.state().open, 0);
    drop(listener);
}

#[tokio::test]
async fn a_full_pool_makes_callers_wait_at_most_the_pool_timeout() {
    let server = RedisServer::start();
    let (pool, factory) = client(
        &server.url(0),
        &[
            ("max_connections", "3"),
            ("pool_timeout", "300 milliseconds"),
        ],
    );
    // Two handles each pin a connection with WATCH: the pool is full (the third slot is the
    // shared connection's, kept for ordinary commands).
    let mut holders = Vec::new();
    for _ in 0..2 {
        let mut redis = factory.connection();
        redis::cmd("WATCH")
            .arg("k")
            .exec_async(&mut redis)
            .await
            .unwrap();
        holders.push(redis);
    }
    assert_eq!(pool.state().in_use, 2);

    let mut waiting = factory.connection();
    let started = Instant::now();
    let err = waiting
        .blpop::<_, Option<(String, String)>>("queue", 0.1)
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(err.is_timeout(), "{err}");
    assert!(err.to_string().contains("no redis connection"), "{err}");
    assert!(err.to_string().contains("max_connections"), "{err}");
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < Duration::from_millis(1_000), "{took:?}");

    // Once a connection is given back, the next caller gets it.
    holders.pop();
    server.query::<()>(&["RPUSH", "queue", "m"]);
    let popped: Option<(String, String)> = waiting.blpop("queue", 1.0).await.unwrap();
    assert_eq!(popped, Some(("queue".to_string(), "m".to_string())));
    drop(holders);
    drop(waiting);
    assert_eq!(pool.state().in_use, 0);
}
