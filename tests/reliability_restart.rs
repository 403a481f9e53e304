//! Guarantee 2: when the server is killed and restarted on the same port, commands in the
//! gap fail with connection-class errors (no panic, no hang beyond the configured timeouts),
//! and within a second of the restart commands succeed again with no action from the user.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use baseplate_redis::config::RawConfig;
use baseplate_redis::{pool_from_config, RedisContextFactory};
use common::RedisServer;
use redis::AsyncCommands;

const TASKS: usize = 16;
const MAX_CONNECTIONS: u32 = 8;
const SOCKET_TIMEOUT: Duration = Duration::from_millis(500);
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
const POOL_TIMEOUT: Duration = Duration::from_millis(500);

/// One command's outcome: when it started, how long it took, and its error if any.
struct Outcome {
    started: Instant,
    took: Duration,
    error: Option<redis::RedisError>,
}

fn connection_class(err: &redis::RedisError) -> bool {
    err.is_io_error()
        || err.is_connection_dropped()
        || err.is_connection_refusal()
        || err.is_timeout()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pool_recovers_by_itself_after_a_server_restart() {
    let mut server = RedisServer::start();
    let config = RawConfig::from_pairs([
        ("redis.url", server.url(0)),
        ("redis.max_connections", MAX_CONNECTIONS.to_string()),
        ("redis.socket_timeout", "500 milliseconds".to_string()),
        (
            "redis.socket_connect_timeout",
            "500 milliseconds".to_string(),
        ),
        ("redis.pool_timeout", "500 milliseconds".to_string()),
    ]);
    let pool = pool_from_config(&config, "redis.").unwrap();
    let factory = Arc::new(RedisContextFactory::new(pool.clone()));
    let stop = Arc::new(AtomicBool::new(false));
    let outcomes = Arc::new(Mutex::new(Vec::<Outcome>::new()));

    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let factory = factory.clone();
        let stop = stop.clone();
        let outcomes = outcomes.clone();
        tasks.push(tokio::spawn(async move {
            // Long-lived handles (as a worker holding one would), renewed now and then.
            let mut redis = factory.connection();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) && n < 1_000_000 {
                n += 1;
                if n % 50 == 0 {
                    redis = factory.connection();
                }
                let started = Instant::now();
                let key = format!("restart:{t}");
                let result = match n % 3 {
                    // Some of the work uses exclusive connections too.
                    0 => redis
                        .blpop::<_, Option<(String, String)>>(format!("{key}:list"), 0.01)
                        .await
                        .map(drop),
                    1 => redis.set::<_, _, ()>(&key, n).await,
                    _ => redis.get::<_, Option<u64>>(&key).await.map(drop),
                };
                outcomes.lock().unwrap().push(Outcome {
                    started,
                    took: started.elapsed(),
                    error: result.err(),
                });
                if n % 3 == 0 {
                    // Keep failing loops from spinning.
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
        }));
    }

    tokio::time::sleep(Duration::from_millis(300)).await;
    let killed = Instant::now();
    server.kill();
    tokio::time::sleep(Duration::from_millis(700)).await;
    // `restart` returns once the new server on the same port answers PING.
    let server = tokio::task::spawn_blocking(move || {
        server.restart();
        server
    })
    .await
    .unwrap();
    let restarted = Instant::now();
    // Long enough after the 1 s recovery bound for a loaded CI machine to run plenty.
    tokio::time::sleep(Duration::from_millis(3_000)).await;
    stop.store(true, Ordering::Relaxed);
    let all = async {
        for task in tasks {
            task.await.unwrap();
        }
    };
    tokio::time::timeout(Duration::from_secs(10), all)
        .await
        .unwrap();

    let outcomes = outcomes.lock().unwrap();
    let bound = SOCKET_TIMEOUT + CONNECT_TIMEOUT + POOL_TIMEOUT + Duration::from_millis(300);
    let mut gap_errors = 0;
    for o in outcomes.iter() {
        // No command hangs longer than the configured timeouts allow.
        assert!(o.took < bound, "a command took {:?}", o.took);
        if let Some(err) = &o.error {
            assert!(connection_class(err), "not a connection error: {err}");
            if o.started >= killed && o.started < restarted {
                gap_errors += 1;
            }
        }
    }
    assert!(
        gap_errors > 0,
        "no command failed while the server was down"
    );
    let last_failure = outcomes
        .iter()
        .filter(|o| o.error.is_some() && o.started >= restarted)
        .map(|o| o.started + o.took - restarted)
        .max()
        .unwrap_or_default();
    eprintln!(
        "{} commands, {gap_errors} failed while the server was down, \
         last failure {last_failure:?} after the restart",
        outcomes.len()
    );
    // Within a second of the restart, everything works again.
    let late: Vec<_> = outcomes
        .iter()
        .filter(|o| o.started >= restarted + Duration::from_secs(1))
        .collect();
    // A liveness check, not a throughput one: every task had time for several commands.
    assert!(
        late.len() >= TASKS * 3,
        "only {} commands after recovery",
        late.len()
    );
    for o in &late {
        assert!(o.error.is_none(), "failed after recovery: {:?}", o.error);
    }
    drop(outcomes);

    // No connection leaks: nothing in use, and no more sockets than allowed.
    let state = pool.state();
    assert_eq!(state.in_use, 0, "{state:?}");
    assert!(state.open <= MAX_CONNECTIONS, "{state:?}");
    assert!(server.connected_clients() <= MAX_CONNECTIONS as usize);
}

/// A restart while the client is idle: the sockets it had open are dead but nobody has
/// noticed yet. Only the command that discovers the first dead socket fails (with a
/// connection-class error): the pool then checks its other idle sockets before using them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_restart_costs_one_failed_command() {
    let mut server = RedisServer::start();
    let config = RawConfig::from_pairs([
        ("redis.url", server.url(0)),
        ("redis.max_connections", "4".to_string()),
        ("redis.socket_timeout", "500 milliseconds".to_string()),
        (
            "redis.socket_connect_timeout",
            "500 milliseconds".to_string(),
        ),
    ]);
    let pool = pool_from_config(&config, "redis.").unwrap();
    let factory = Arc::new(RedisContextFactory::new(pool.clone()));

    // Open the shared connection and three exclusive ones, then leave them idle.
    let _: Option<String> = factory.connection().get("k").await.unwrap();
    let mut blpops = Vec::new();
    for _ in 0..3 {
        let factory = factory.clone();
        blpops.push(tokio::spawn(async move {
            let mut redis = factory.connection();
            redis
                .blpop::<_, Option<(String, String)>>("idle-list", 0.2)
                .await
                .unwrap()
        }));
    }
    for blpop in blpops {
        assert_eq!(blpop.await.unwrap(), None);
    }
    let open = pool.state().open;
    assert_eq!(open, 4, "{:?}", pool.state());

    let mut server = tokio::task::spawn_blocking(move || {
        server.restart();
        server
    })
    .await
    .unwrap();

    let (mut get_failures, mut blpop_failures) = (0, 0);
    for i in 0..20 {
        let mut redis = factory.connection();
        match redis.get::<_, Option<String>>("k").await {
            Ok(_) => {}
            Err(err) => {
                assert!(connection_class(&err), "{err}");
                assert!(i < 10, "GET still failing after {i} attempts: {err}");
                get_failures += 1;
            }
        }
        match redis
            .blpop::<_, Option<(String, String)>>("idle-list", 0.01)
            .await
        {
            Ok(_) => {}
            Err(err) => {
                assert!(connection_class(&err), "{err}");
                assert!(i < 10, "BLPOP still failing after {i} attempts: {err}");
                blpop_failures += 1;
            }
        }
    }
    eprintln!("after an idle restart: {get_failures} GET and {blpop_failures} BLPOP failures");
    // The first command finds the first dead socket; the others are checked before use.
    assert!(
        get_failures + blpop_failures <= 1,
        "{get_failures} GETs and {blpop_failures} BLPOPs failed"
    );
    let state = pool.state();
    assert_eq!(state.in_use, 0, "{state:?}");
    assert!(state.open <= 4, "{state:?}");
    server.kill();
}
