//! Issue 12, point 2: a shared connection that stopped answering (half-open after a
//! partition, stalled mid-reply, or stuck in an endless reply) is found out after a command
//! times out on it, closed, and replaced: commands succeed again within
//! `socket_timeout + 1 s`, and an endless reply stops growing memory once its command timed
//! out.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use baseplate_redis::config::RawConfig;
use baseplate_redis::pool::PoolBackend;
use baseplate_redis::{pool_from_config, RedisContextFactory};
use common::fake_server::{FakeRedis, Reply};
use common::fault_proxy::{ConnectionFault, FaultProxy};
use common::RedisServer;
use redis::AsyncCommands;

const SOCKET_TIMEOUT: Duration = Duration::from_millis(200);

fn client(url: &str) -> (Arc<dyn PoolBackend>, RedisContextFactory) {
    let config = RawConfig::from_pairs([
        ("redis.url", url),
        ("redis.socket_timeout", "200 milliseconds"),
        ("redis.max_connections", "4"),
        ("redis.pool_timeout", "2 seconds"),
    ]);
    let pool = pool_from_config(&config, "redis.").unwrap();
    (pool.clone(), RedisContextFactory::new(pool))
}

/// Issues GETs (on `kept`, a handle kept across the fault, and on fresh handles) until one
/// succeeds; returns how long after `since` that was. Bounded in count and time.
async fn time_to_recover(
    factory: &RedisContextFactory,
    kept: &mut baseplate_redis::MonitoredRedisConnection,
    since: Instant,
) -> Duration {
    let give_up = since + Duration::from_secs(10);
    for attempt in 0..200 {
        let result: redis::RedisResult<Option<String>> = if attempt % 2 == 0 {
            kept.get("k").await
        } else {
            factory.connection().get("k").await
        };
        match result {
            Ok(value) => {
                assert_eq!(value.as_deref(), Some("v"));
                return since.elapsed();
            }
            // Every failure in the meantime is bounded by the socket timeout.
            Err(err) => assert!(
                err.is_timeout() || err.is_connection_dropped() || err.is_io_error(),
                "{err}"
            ),
        }
        assert!(Instant::now() < give_up, "no recovery after 10 s");
    }
    panic!("no recovery after 200 commands");
}

/// After the fault, every later command works on both kinds of handle.
async fn all_work(
    factory: &RedisContextFactory,
    kept: &mut baseplate_redis::MonitoredRedisConnection,
) {
    for _ in 0..20 {
        let value: Option<String> = kept.get("k").await.unwrap();
        assert_eq!(value.as_deref(), Some("v"));
        let value: Option<String> = factory.connection().get("k").await.unwrap();
        assert_eq!(value.as_deref(), Some("v"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blackholed_shared_connection_is_replaced_within_socket_timeout_plus_one_second() {
    let server = RedisServer::start();
    server.query::<()>(&["SET", "k", "v"]);
    let proxy = FaultProxy::start(server.port()).await;
    let (pool, factory) = client(&proxy.url(0));
    let mut kept = factory.connection();
    let _: Option<String> = kept.get("k").await.unwrap();
    assert_eq!(proxy.accepted(), 1);

    // The existing socket stops carrying anything either way; new ones would work.
    proxy.blackhole_existing();
    let since = Instant::now();
    let took = time_to_recover(&factory, &mut kept, since).await;
    println!("half-open shared connection replaced; commands succeed again after {took:?}");
    assert!(took <= SOCKET_TIMEOUT + Duration::from_secs(1), "{took:?}");
    assert!(proxy.accepted() >= 2, "no new connection was opened");
    all_work(&factory, &mut kept).await;
    assert!(pool.state().open <= 4, "{:?}", pool.state());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_stalled_mid_reply_is_left_for_a_new_connection() {
    let server = RedisServer::start();
    server.query::<()>(&["SET", "k", "v"]);
    server.query::<()>(&["SET", "big", &"x".repeat(100_000)]);
    let proxy = FaultProxy::start(server.port()).await;
    let (_pool, factory) = client(&proxy.url(0));
    let mut kept = factory.connection();
    let _: Option<String> = kept.get("k").await.unwrap();

    // The next reply stops after 1000 bytes, and the socket stays open.
    proxy.apply_to_existing(ConnectionFault::CutRepliesAfter {
        bytes: 1000,
        then_close: false,
    });
    let since = Instant::now();
    let err = kept.get::<_, String>("big").await.unwrap_err();
    assert!(err.is_timeout(), "{err}");
    let took = time_to_recover(&factory, &mut kept, since).await;
    println!("stalled connection replaced; commands succeed again after {took:?}");
    assert!(
        took <= SOCKET_TIMEOUT * 2 + Duration::from_secs(1),
        "{took:?}"
    );
    all_work(&factory, &mut kept).await;
    let big: String = kept.get("big").await.unwrap();
    assert_eq!(big.len(), 100_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_reply_is_cut_off_when_its_command_times_out() {
    let fake = FakeRedis::start(|command| match command[0].to_ascii_uppercase().as_slice() {
        // A 10 GB bulk string, streamed for as long as the client reads.
        b"GET" => Reply::Endless {
            header: b"$10000000000\r\n".to_vec(),
        },
        b"PING" => Reply::Bytes(b"+PONG\r\n".to_vec()),
        _ => Reply::Bytes(b"+OK\r\n".to_vec()),
    })
    .await;
    let (_pool, factory) = client(&fake.url());
    let mut redis = factory.connection();
    let pong: String = redis::cmd("PING").query_async(&mut redis).await.unwrap();
    assert_eq!(pong, "PONG");

    let started = Instant::now();
    let err = redis.get::<_, String>("huge").await.unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert!(
        started.elapsed() < SOCKET_TIMEOUT * 3,
        "{:?}",
        started.elapsed()
    );

    // The connection is closed once found stuck (socket timeout + probe): the server sees
    // it closed, and the bytes it managed to send stop growing.
    let deadline = Instant::now() + Duration::from_secs(5);
    while fake.connections_closed_by_client() == 0 {
        assert!(
            Instant::now() < deadline,
            "the stuck connection was never closed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let closed_after = started.elapsed();
    let sent = fake.endless_bytes_sent();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(fake.endless_bytes_sent(), sent, "the reply kept flowing");
    println!(
        "endless reply closed {closed_after:?} after its GET started, after {} MiB",
        sent / (1024 * 1024)
    );
    assert!(
        closed_after <= SOCKET_TIMEOUT + Duration::from_secs(1),
        "{closed_after:?}"
    );

    // And the client works again on a new connection.
    let pong: String = redis::cmd("PING").query_async(&mut redis).await.unwrap();
    assert_eq!(pong, "PONG");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_but_alive_connection_is_kept() {
    let server = RedisServer::start();
    server.query::<()>(&["SET", "k", "v"]);
    let proxy = FaultProxy::start(server.port()).await;
    let (_pool, factory) = client(&proxy.url(0));
    let mut redis = factory.connection();
    let _: Option<String> = redis.get("k").await.unwrap();

    // The reply comes 50 ms after the command's timeout: the probe's PING, queued behind it,
    // is answered well within its own 200 ms, so the connection is not replaced.
    let err = redis::cmd("DEBUG")
        .arg("SLEEP")
        .arg("0.25")
        .exec_async(&mut redis)
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    all_work(&factory, &mut redis).await;
    assert_eq!(proxy.accepted(), 1, "a live connection was replaced");
}

/// Bursts of `tasks` GETs on fresh handles until a whole burst succeeds; how long that took.
async fn time_to_recover_under_load(factory: &Arc<RedisContextFactory>, tasks: usize) -> Duration {
    let since = Instant::now();
    for _ in 0..400 {
        let burst: Vec<_> = (0..tasks)
            .map(|_| {
                let factory = factory.clone();
                tokio::spawn(
                    async move { factory.connection().get::<_, Option<String>>("k").await },
                )
            })
            .collect();
        let mut succeeded = 0;
        for get in burst {
            if let Ok(value) = get.await.unwrap() {
                assert_eq!(value.as_deref(), Some("v"));
                succeeded += 1;
            }
        }
        if succeeded == tasks {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < Duration::from_secs(10),
            "no recovery after 10 s"
        );
    }
    panic!("no recovery after 400 bursts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_socket_timeouts_recover_within_it_plus_one_second_with_many_in_flight() {
    for (text, socket_timeout) in [
        ("100 milliseconds", Duration::from_millis(100)),
        ("500 milliseconds", Duration::from_millis(500)),
    ] {
        let server = RedisServer::start();
        server.query::<()>(&["SET", "k", "v"]);
        let proxy = FaultProxy::start(server.port()).await;
        let config = RawConfig::from_pairs([
            ("redis.url", proxy.url(0)),
            ("redis.socket_timeout", text.to_string()),
            ("redis.max_connections", "3".to_string()),
        ]);
        let pool = pool_from_config(&config, "redis.").unwrap();
        let factory = Arc::new(RedisContextFactory::new(pool.clone()));
        time_to_recover_under_load(&factory, 30).await;
        proxy.blackhole_existing();
        let took = time_to_recover_under_load(&factory, 30).await;
        println!("socket_timeout {text}, 30 GETs at a time: recovered after {took:?}");
        assert!(
            took <= socket_timeout + Duration::from_secs(1),
            "{text}: {took:?}"
        );
        assert!(pool.state().open <= 3, "{:?}", pool.state());
    }
}

/// No recovery is possible (existing sockets blackholed, new connections refused): every
/// caller fails within its bounds, none hangs, and no connection stays in use.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_way_out_every_caller_fails_in_bounded_time_and_nothing_leaks() {
    let server = RedisServer::start();
    server.query::<()>(&["SET", "k", "v"]);
    let proxy = FaultProxy::start(server.port()).await;
    let (pool, factory) = client(&proxy.url(0));
    let factory = Arc::new(factory);
    time_to_recover_under_load(&factory, 10).await;
    proxy.set_new_connections(common::fault_proxy::NewConnections::Refuse);
    proxy.blackhole_existing();
    // The proxy's connection tasks take the fault on their next turn: until a GET fails,
    // it is not in force yet.
    for attempt in 0..50 {
        if factory
            .connection()
            .get::<_, Option<String>>("k")
            .await
            .is_err()
        {
            break;
        }
        assert!(attempt < 49, "the fault never took hold");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for _wave in 0..2 {
        let callers: Vec<_> = (0..25)
            .map(|i| {
                let factory = factory.clone();
                tokio::spawn(async move {
                    let started = Instant::now();
                    let mut redis = factory.connection();
                    let result = if i % 5 == 0 {
                        redis
                            .blpop::<_, Option<(String, String)>>("list", 0.3)
                            .await
                            .map(drop)
                    } else {
                        redis.get::<_, Option<String>>("k").await.map(drop)
                    };
                    (result, started.elapsed())
                })
            })
            .collect();
        for caller in callers {
            let (result, took) = caller.await.unwrap();
            let err = baseplate_redis::Error::from(result.unwrap_err());
            assert!(err.is_connection_error() || err.is_timeout(), "{err}");
            // pool_timeout (2 s) bounds the longest of them.
            assert!(took < Duration::from_millis(2500), "{took:?}: {err}");
        }
    }
    assert_eq!(pool.state().in_use, 0, "{:?}", pool.state());
    proxy.set_new_connections(common::fault_proxy::NewConnections::Forward);
    time_to_recover_under_load(&factory, 10).await;
}
