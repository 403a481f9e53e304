//! Guarantee 1: cancelling a command (a timeout around it, or dropping its future) never
//! lets a later command read the cancelled command's reply, and leaks no connection.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use baseplate_redis::config::RawConfig;
use baseplate_redis::{pool_from_config, RedisContextFactory};
use common::RedisServer;
use redis::AsyncCommands;

const KEYS: usize = 20_000;
const TASKS: usize = 64;
const MAX_CONNECTIONS: u32 = 8;

fn key(i: usize) -> String {
    format!("cancel:{i}")
}

fn value(i: usize) -> String {
    format!("value of cancel:{i}")
}

#[derive(Default)]
struct Tally {
    replied: AtomicU32,
    timed_out: AtomicU32,
    dropped: AtomicU32,
}

/// How one GET is cut: not at all, by a random short timeout, or by dropping its future
/// after it was sent (the first poll writes the request; a yield later it is dropped).
/// Returns whether it was cut.
async fn one_get(
    redis: &mut baseplate_redis::MonitoredRedisConnection,
    i: usize,
    tally: &Tally,
) -> bool {
    let get = redis.get::<_, String>(key(i));
    // A third get a random timeout (which fires on about a third of them), a quarter are
    // dropped after being sent: about a third of all commands are cut.
    let reply = match fastrand::u32(0..12) {
        0..=3 => {
            let limit = Duration::from_micros(fastrand::u64(20..2_000));
            match tokio::time::timeout(limit, get).await {
                Ok(reply) => reply,
                Err(_) => {
                    tally.timed_out.fetch_add(1, Ordering::Relaxed);
                    return true;
                }
            }
        }
        4..=6 => {
            tokio::pin!(get);
            tokio::select! {
                biased;
                reply = &mut get => reply,
                _ = tokio::task::yield_now() => {
                    tally.dropped.fetch_add(1, Ordering::Relaxed);
                    return true;
                }
            }
        }
        _ => get.await,
    };
    // Every reply that arrives is its own key's value.
    assert_eq!(reply.unwrap(), value(i));
    tally.replied.fetch_add(1, Ordering::Relaxed);
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancelled_commands_never_mix_replies() {
    let server = RedisServer::start();
    let mut admin = server.admin();
    let mut seed = redis::pipe();
    for i in 0..KEYS {
        seed.set(key(i), value(i)).ignore();
    }
    seed.exec(&mut admin).unwrap();

    let config = RawConfig::from_pairs([
        ("redis.url", server.url(0)),
        ("redis.max_connections", MAX_CONNECTIONS.to_string()),
        ("redis.socket_timeout", "5 seconds".to_string()),
    ]);
    let pool = pool_from_config(&config, "redis.").unwrap();
    let factory = Arc::new(RedisContextFactory::new(pool.clone()));
    let tally = Arc::new(Tally::default());

    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let factory = factory.clone();
        let tally = tally.clone();
        tasks.push(tokio::spawn(async move {
            // One long-lived handle per task, plus a fresh one now and then.
            let mut redis = factory.connection();
            for (n, i) in (t..KEYS).step_by(TASKS).enumerate() {
                if n % 16 == 0 {
                    redis = factory.connection();
                }
                one_get(&mut redis, i, &tally).await;
            }
        }));
    }
    let all = async {
        for task in tasks {
            task.await.unwrap();
        }
    };
    tokio::time::timeout(Duration::from_secs(60), all)
        .await
        .unwrap();

    let replied = tally.replied.load(Ordering::Relaxed);
    let cut = tally.timed_out.load(Ordering::Relaxed) + tally.dropped.load(Ordering::Relaxed);
    eprintln!(
        "{replied} replied, {} cut by a timeout, {} dropped mid-flight",
        tally.timed_out.load(Ordering::Relaxed),
        tally.dropped.load(Ordering::Relaxed)
    );
    assert_eq!(replied + cut, KEYS as u32);
    // Both kinds of cut really happened, on a sizeable share of the commands.
    assert!(
        tally.timed_out.load(Ordering::Relaxed) > 500,
        "{replied} replied"
    );
    assert!(
        tally.dropped.load(Ordering::Relaxed) > 500,
        "{replied} replied"
    );
    assert!(cut > KEYS as u32 / 5, "only {cut} of {KEYS} cut");

    // Nothing is in use afterwards, and the pool stayed within its bound.
    let state = pool.state();
    assert_eq!(state.in_use, 0, "{state:?}");
    assert!(state.open <= MAX_CONNECTIONS, "{state:?}");
    assert!(server.connected_clients() <= MAX_CONNECTIONS as usize);

    // The client still answers correctly after all that.
    let mut redis = factory.connection();
    let reply: String = redis.get(key(7)).await.unwrap();
    assert_eq!(reply, value(7));
}

/// The same with exclusive connections: GETs issued inside WATCH (so pinned to a connection
/// of their own), cut the same ways. A cut one closes that connection, WATCH and all, so the
/// next command is refused (it would run without the WATCH) until UNWATCH.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancelled_commands_on_pinned_connections_never_mix_replies() {
    let server = RedisServer::start();
    let mut admin = server.admin();
    let mut seed = redis::pipe();
    for i in 0..2_000 {
        seed.set(key(i), value(i)).ignore();
    }
    seed.exec(&mut admin).unwrap();

    let config = RawConfig::from_pairs([
        ("redis.url", server.url(0)),
        ("redis.max_connections", "6".to_string()),
        ("redis.pool_timeout", "10 seconds".to_string()),
    ]);
    let pool = pool_from_config(&config, "redis.").unwrap();
    let factory = Arc::new(RedisContextFactory::new(pool.clone()));
    let tally = Arc::new(Tally::default());

    let mut tasks = Vec::new();
    for t in 0..8 {
        let factory = factory.clone();
        let tally = tally.clone();
        tasks.push(tokio::spawn(async move {
            for i in (t..2_000).step_by(8) {
                let mut redis = factory.connection();
                redis::cmd("WATCH")
                    .arg(key(i))
                    .exec_async(&mut redis)
                    .await
                    .unwrap();
                if one_get(&mut redis, i, &tally).await {
                    let refused = redis.get::<_, String>(key(i)).await.unwrap_err();
                    assert!(
                        refused.to_string().contains("WATCH it had is lost"),
                        "{refused}"
                    );
                    redis::cmd("UNWATCH").exec_async(&mut redis).await.unwrap();
                }
                one_get(&mut redis, i, &tally).await;
            }
        }));
    }
    let all = async {
        for task in tasks {
            task.await.unwrap();
        }
    };
    tokio::time::timeout(Duration::from_secs(60), all)
        .await
        .unwrap();

    let cut = tally.timed_out.load(Ordering::Relaxed) + tally.dropped.load(Ordering::Relaxed);
    assert!(cut > 200, "only {cut} cut");
    let state = pool.state();
    assert_eq!(state.in_use, 0, "{state:?}");
    assert!(state.open <= 6, "{state:?}");
}
