//! Issue 12, points 3 and 4: opening a connection is bounded step by step. The handshake
//! (HELLO/AUTH/SELECT/CLIENT SETINFO, and our CLIENT SETNAME) is a read like any other and
//! gets `socket_timeout`; a connect or handshake that never completes fails within the
//! caller's `pool_timeout` with an error that says so and names the address (never "all in
//! use" while nothing is open).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use baseplate_redis::config::RawConfig;
use baseplate_redis::pool::PoolBackend;
use baseplate_redis::{pool_from_config, RedisContextFactory};
use common::fault_proxy::{FaultProxy, NewConnections};
use common::RedisServer;
use redis::AsyncCommands;

/// Scheduling slack on a loaded 2-core CI machine.
const SLACK: Duration = Duration::from_millis(400);

fn client(url: &str, extra: &[(&str, &str)]) -> (Arc<dyn PoolBackend>, Arc<RedisContextFactory>) {
    let mut config = RawConfig::from_pairs([("redis.url", url)]);
    for (key, value) in extra {
        config.insert(format!("redis.{key}"), *value);
    }
    let pool = pool_from_config(&config, "redis.").unwrap();
    (pool.clone(), Arc::new(RedisContextFactory::new(pool)))
}

/// The error of a GET on a fresh handle, and how long it took.
async fn first_error(factory: &RedisContextFactory) -> (redis::RedisError, Duration) {
    let started = Instant::now();
    let err = factory
        .connection()
        .get::<_, Option<String>>("k")
        .await
        .unwrap_err();
    (err, started.elapsed())
}

fn assert_never_completed(err: &redis::RedisError, port: u16) {
    let message = err.to_string();
    assert!(err.is_timeout(), "{message}");
    assert!(message.contains("did not complete"), "{message}");
    assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
    assert!(!message.contains("in use"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handshake_with_a_busy_server_is_bounded_by_the_socket_timeout() {
    let server = RedisServer::start();
    server.query::<()>(&["SET", "k", "v"]);
    let (pool, factory) = client(
        &server.url(0),
        &[
            ("socket_timeout", "200 milliseconds"),
            ("client_name", "handshake-test"),
        ],
    );
    // Another client keeps the (single-threaded) server busy for 2 s.
    let mut busy = server.admin();
    let sleeper = std::thread::spawn(move || {
        redis::cmd("DEBUG")
            .arg("SLEEP")
            .arg(2)
            .exec(&mut busy)
            .unwrap();
    });
    std::thread::sleep(Duration::from_millis(100));

    let (err, took) = first_error(&factory).await;
    println!("handshake with a server busy for 2 s failed after {took:?}: {err}");
    assert_never_completed(&err, server.port());
    assert!(took >= Duration::from_millis(200), "{took:?}");
    assert!(took <= Duration::from_millis(200) + SLACK, "{took:?}");
    assert_eq!(pool.state().open, 0);

    sleeper.join().unwrap();
    // Once the server is free the client recovers by itself. A loaded machine can still make
    // one handshake miss its 200 ms, so the first success within 2 s counts.
    let deadline = Instant::now() + Duration::from_secs(2);
    let value: Option<String> = loop {
        match factory.connection().get("k").await {
            Ok(value) => break value,
            Err(err) => assert!(Instant::now() < deadline, "no recovery: {err}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(value.as_deref(), Some("v"));
    let names: String = server.query(&["CLIENT", "LIST"]);
    assert!(names.contains("name=handshake-test"), "{names}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_accepts_but_never_answers_fails_every_caller_within_the_pool_timeout() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.port()).await;
    proxy.set_new_connections(NewConnections::Blackhole);
    // No socket timeout: the caller's pool timeout is what bounds the wait.
    let (pool, factory) = client(&proxy.url(0), &[("pool_timeout", "1 second")]);

    let callers: Vec<_> = (0..5)
        .map(|_| {
            let factory = factory.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                let result = factory.connection().get::<_, Option<String>>("k").await;
                (result, started.elapsed())
            })
        })
        .collect();
    let mut longest = Duration::ZERO;
    for caller in callers {
        let (result, took) = caller.await.unwrap();
        assert_never_completed(&result.unwrap_err(), proxy.port());
        longest = longest.max(took);
    }
    println!("5 callers against a silent server: longest wait {longest:?} (pool_timeout 1 s)");
    assert!(longest <= Duration::from_secs(1) + SLACK, "{longest:?}");
    assert_eq!(pool.state().open, 0);

    // Once the server answers again, so does the client.
    proxy.set_new_connections(NewConnections::Forward);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match factory.connection().get::<_, Option<String>>("k").await {
            Ok(value) => break assert_eq!(value, None),
            Err(err) => assert!(Instant::now() < deadline, "{err}"),
        }
    }
}

#[tokio::test]
async fn with_a_socket_timeout_a_silent_server_fails_the_handshake_within_it() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.port()).await;
    proxy.set_new_connections(NewConnections::Blackhole);
    let (_pool, factory) = client(&proxy.url(0), &[("socket_timeout", "200 milliseconds")]);
    let (err, took) = first_error(&factory).await;
    assert_never_completed(&err, proxy.port());
    assert!(took <= Duration::from_millis(200) + SLACK, "{took:?}");
}

/// With `requirepass`, the AUTH of a new connection to a busy server is bounded by the
/// socket timeout too, and its error names the address, never the password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_auth_handshake_with_a_busy_server_is_bounded_and_hides_the_password() {
    const PASSWORD: &str = "s3cret-handshake-pw";
    let server = RedisServer::start_with(&["--requirepass", PASSWORD]);
    let url = format!("redis://:{PASSWORD}@127.0.0.1:{}/0", server.port());
    // Connected (and authenticated) before the thread starts: it only has to send the sleep.
    let mut conn = redis::Client::open(url.as_str())
        .unwrap()
        .get_connection()
        .unwrap();
    let busy = std::thread::spawn(move || {
        redis::cmd("DEBUG")
            .arg("SLEEP")
            .arg("1.5")
            .exec(&mut conn)
            .unwrap();
    });
    std::thread::sleep(Duration::from_millis(100));
    let (_pool, factory) = client(&url, &[("socket_timeout", "300 milliseconds")]);
    let (err, took) = first_error(&factory).await;
    println!("AUTH handshake with a busy server failed after {took:?}: {err}");
    assert_never_completed(&err, server.port());
    assert!(took < Duration::from_millis(300) + SLACK, "{took:?}");
    assert!(!err.to_string().contains(PASSWORD), "{err}");
    busy.join().unwrap();
    let value: Option<String> = factory.connection().get("k").await.unwrap();
    assert_eq!(value, None);
}
