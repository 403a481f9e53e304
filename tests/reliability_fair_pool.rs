//! Issue 12, point 3: a fair pool with a real bound. Blocking commands never take the
//! shared connection's slot, so ordinary commands are never starved by them; no caller waits
//! longer than `pool_timeout` in total, however many wait beside it; and the server never
//! sees more than `max_connections` sockets (CLIENT LIST).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use baseplate_redis::config::RawConfig;
use baseplate_redis::pool::PoolBackend;
use baseplate_redis::{pool_from_config, RedisContextFactory};
use common::RedisServer;
use redis::AsyncCommands;

const POOL_TIMEOUT: Duration = Duration::from_secs(1);
/// Scheduling slack on a loaded 2-core CI machine.
const SLACK: Duration = Duration::from_millis(400);

fn client(
    server: &RedisServer,
    max_connections: u32,
) -> (Arc<dyn PoolBackend>, Arc<RedisContextFactory>) {
    let config = RawConfig::from_pairs([
        ("redis.url", server.url(0)),
        ("redis.max_connections", max_connections.to_string()),
        ("redis.pool_timeout", "1 second".to_string()),
    ]);
    let pool = pool_from_config(&config, "redis.").unwrap();
    (pool.clone(), Arc::new(RedisContextFactory::new(pool)))
}

type Popped = redis::RedisResult<Option<(String, String)>>;

/// Waits (at most 5 s) until `n` connections are in use.
async fn wait_for_in_use(pool: &Arc<dyn PoolBackend>, n: u32) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while pool.state().in_use < n {
        assert!(Instant::now() < deadline, "{:?}", pool.state());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Starts a BLPOP on an empty list that blocks for `secs`; returns its outcome and duration.
fn blpop(
    factory: &Arc<RedisContextFactory>,
    key: &str,
    secs: f64,
) -> tokio::task::JoinHandle<(Popped, Duration)> {
    let (factory, key) = (factory.clone(), key.to_string());
    tokio::spawn(async move {
        let started = Instant::now();
        let result = factory.connection().blpop(&key, secs).await;
        (result, started.elapsed())
    })
}

/// Runs `n` GETs of `k` (which holds `v`) at once, each on a fresh handle; the slowest one's
/// duration.
async fn slowest_of_concurrent_gets(factory: &Arc<RedisContextFactory>, n: usize) -> Duration {
    let gets: Vec<_> = (0..n)
        .map(|_| {
            let factory = factory.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                let value: Option<String> = factory.connection().get("k").await.unwrap();
                assert_eq!(value.as_deref(), Some("v"));
                started.elapsed()
            })
        })
        .collect();
    let mut slowest = Duration::ZERO;
    for get in gets {
        slowest = slowest.max(get.await.unwrap());
    }
    slowest
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_commands_that_came_first_never_starve_ordinary_ones() {
    let server = RedisServer::start();
    server.query::<()>(&["SET", "k", "v"]);
    let (pool, factory) = client(&server, 4);

    // Four BLPOPs arrive first: three get the exclusive slots, the fourth waits.
    let blockers: Vec<_> = (0..4)
        .map(|i| blpop(&factory, &format!("empty{i}"), 3.0))
        .collect();
    wait_for_in_use(&pool, 3).await;

    // Ordinary commands, many at once, all go through at once on the shared connection.
    let started = Instant::now();
    let slowest = slowest_of_concurrent_gets(&factory, 20).await;
    println!("slowest of 20 GETs beside 4 BLPOPs with max_connections = 4: {slowest:?}");
    assert!(slowest < Duration::from_millis(500), "{slowest:?}");
    assert!(started.elapsed() < Duration::from_millis(500));
    assert!(
        server.connected_clients() <= 4,
        "{}",
        server.query::<String>(&["CLIENT", "LIST"])
    );

    // The fourth BLPOP waited at most the pool timeout and says the pool was exhausted.
    let mut timed_out = 0;
    for blocker in blockers {
        let (result, took) = blocker.await.unwrap();
        if let Err(err) = result {
            timed_out += 1;
            assert!(err.is_timeout(), "{err}");
            assert!(err.to_string().contains("all 4 in use"), "{err}");
            assert!(
                took >= POOL_TIMEOUT && took <= POOL_TIMEOUT + SLACK,
                "{took:?}"
            );
        }
    }
    assert_eq!(timed_out, 1);
    assert_eq!(pool.state().in_use, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_caller_waits_longer_than_the_pool_timeout_however_many_wait() {
    let server = RedisServer::start();
    server.query::<()>(&["SET", "k", "v"]);
    let (pool, factory) = client(&server, 2);

    // One BLPOP holds the only exclusive slot for 4 s; eight more queue behind it.
    let holder = blpop(&factory, "held", 4.0);
    wait_for_in_use(&pool, 1).await;
    let waiters: Vec<_> = (0..8)
        .map(|i| blpop(&factory, &format!("w{i}"), 0.1))
        .collect();
    // Meanwhile ordinary commands are served.
    let value: Option<String> = factory.connection().get("k").await.unwrap();
    assert_eq!(value.as_deref(), Some("v"));

    let mut longest = Duration::ZERO;
    for waiter in waiters {
        let (result, took) = waiter.await.unwrap();
        let err = result.unwrap_err();
        assert!(err.is_timeout(), "{err}");
        assert!(err.to_string().contains("no redis connection"), "{err}");
        assert!(
            err.to_string()
                .contains(&format!("127.0.0.1:{}", server.port())),
            "{err}"
        );
        longest = longest.max(took);
    }
    println!(
        "longest wait of 8 callers queued for 1 exclusive slot: {longest:?} (pool_timeout 1 s)"
    );
    assert!(longest <= POOL_TIMEOUT + SLACK, "{longest:?}");
    assert!(server.connected_clients() <= 2);
    holder.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_are_served_in_arrival_order() {
    let server = RedisServer::start();
    let (pool, factory) = client(&server, 2);
    let holder = blpop(&factory, "first", 0.3);
    wait_for_in_use(&pool, 1).await;
    // Three more, 20 ms apart: each gets the slot after the one before it, all in time.
    let mut waiters = Vec::new();
    for i in 0..3 {
        waiters.push(blpop(&factory, &format!("next{i}"), 0.15));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    holder.await.unwrap().0.unwrap();
    let mut finished = Vec::new();
    for waiter in waiters {
        let (result, took) = waiter.await.unwrap();
        assert_eq!(result.unwrap(), None);
        finished.push(took);
    }
    // Started 20 ms apart, so in arrival order each ends 0.15 s after the one before it
    // (it waited for that one's BLPOP): completion times, from the first start, increase.
    let ended: Vec<Duration> = finished
        .iter()
        .enumerate()
        .map(|(i, took)| *took + Duration::from_millis(20) * i as u32)
        .collect();
    assert!(ended.windows(2).all(|w| w[0] < w[1]), "{ended:?}");
}

/// With a tiny pool (2 or 3) and more blocking commands than it holds, ordinary commands
/// are still served at once, 25 exclusive waiters each get an answer within the pool
/// timeout, and the server never sees more than `max_connections` clients.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tiny_pool_hogged_by_blocking_commands_still_serves_and_bounds_every_wait() {
    for max_connections in [2, 3] {
        let server = RedisServer::start();
        server.query::<()>(&["SET", "k", "v"]);
        let (pool, factory) = client(&server, max_connections);
        let hogs: Vec<_> = (0..max_connections + 2)
            .map(|i| blpop(&factory, &format!("hog{i}"), 1.2))
            .collect();
        wait_for_in_use(&pool, max_connections - 1).await;

        let slowest = slowest_of_concurrent_gets(&factory, 25).await;
        assert!(
            slowest < SLACK,
            "max_connections {max_connections}: {slowest:?}"
        );
        assert!(server.connected_clients() <= max_connections as usize);

        let waiters: Vec<_> = (0..25).map(|_| blpop(&factory, "w", 0.05)).collect();
        let mut longest = Duration::ZERO;
        for waiter in waiters {
            let (result, took) = waiter.await.unwrap();
            if let Err(err) = result {
                assert!(err.is_timeout(), "{err}");
            }
            longest = longest.max(took);
        }
        println!(
            "max_connections {max_connections}: slowest of 25 GETs {slowest:?}, longest of 25 \
             exclusive waiters {longest:?}"
        );
        assert!(longest < POOL_TIMEOUT + SLACK, "{longest:?}");
        for hog in hogs {
            let (_, took) = hog.await.unwrap();
            assert!(took < Duration::from_millis(1200) + SLACK, "{took:?}");
        }
        assert!(server.connected_clients() <= max_connections as usize);
        assert_eq!(pool.state().in_use, 0, "{:?}", pool.state());
    }
}
