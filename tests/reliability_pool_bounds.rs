//! Guarantee 5: the pool never opens more than `max_connections` sockets, however many
//! commands run at once, and every command still completes.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use baseplate_redis::config::RawConfig;
use baseplate_redis::sink::{names, RecordingSink};
use baseplate_redis::{pool_from_config, ContextFactory, RedisContextFactory};
use common::RedisServer;
use redis::AsyncCommands;

const COMMANDS: usize = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_connections_serve_fifty_concurrent_commands() {
    let server = RedisServer::start();
    server.query::<()>(&["SET", "counter", "0"]);
    for i in 0..COMMANDS {
        server.query::<()>(&["RPUSH", "items", &i.to_string()]);
    }
    let config = RawConfig::from_pairs([
        ("redis.url", server.url(0)),
        ("redis.max_connections", "2".to_string()),
        ("redis.pool_timeout", "10 seconds".to_string()),
    ]);
    let pool = pool_from_config(&config, "redis.").unwrap();
    let sink = RecordingSink::new();
    let factory = Arc::new(RedisContextFactory::with_options(
        pool.clone(),
        "redis",
        Arc::new(sink.clone()),
    ));

    // Watch the server's client list and the pool's own numbers while the commands run.
    let done = Arc::new(AtomicBool::new(false));
    let most_clients = Arc::new(AtomicUsize::new(0));
    let most_in_use = Arc::new(AtomicUsize::new(0));
    let watcher = {
        let (done, most_clients, most_in_use) =
            (done.clone(), most_clients.clone(), most_in_use.clone());
        let (factory, sink) = (factory.clone(), sink.clone());
        let url = server.url(0);
        tokio::task::spawn_blocking(move || {
            let mut admin = redis::Client::open(url)
                .unwrap()
                .get_connection_with_timeout(Duration::from_secs(5))
                .unwrap();
            let mut samples = 0;
            while !done.load(Ordering::Relaxed) && samples < 100_000 {
                samples += 1;
                let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut admin).unwrap();
                // Minus the watcher's own connection.
                let clients = list.lines().count() - 1;
                most_clients.fetch_max(clients, Ordering::Relaxed);
                factory.report_runtime_metrics(&sink);
                let in_use = sink
                    .gauge_value(
                        names::RUNTIME_POOL_IN_USE,
                        &[(names::LABEL_CLIENT, "redis")],
                    )
                    .unwrap();
                most_in_use.fetch_max(in_use as usize, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(1));
            }
            samples
        })
    };

    let mut tasks = Vec::new();
    for i in 0..COMMANDS {
        let factory = factory.clone();
        tasks.push(tokio::spawn(async move {
            let mut redis = factory.connection();
            match i % 3 {
                // Blocking commands need a connection of their own.
                0 => {
                    let popped: Option<(String, String)> = redis.blpop("items", 1.0).await.unwrap();
                    assert!(popped.is_some());
                }
                // So does a WATCH transaction.
                1 => {
                    let (n,): (i64,) = redis
                        .transaction(&["counter"], async |conn, pipe| {
                            let n: i64 = conn.get("counter").await?;
                            pipe.set("counter", n + 1).ignore().get("counter");
                            pipe.query_async(conn).await
                        })
                        .await
                        .unwrap();
                    assert!(n > 0);
                }
                _ => {
                    let _: i64 = redis.incr("plain", 1).await.unwrap();
                }
            }
        }));
    }
    let all = async {
        for task in tasks {
            task.await.unwrap();
        }
    };
    tokio::time::timeout(Duration::from_secs(30), all)
        .await
        .unwrap();
    done.store(true, Ordering::Relaxed);
    let samples = watcher.await.unwrap();

    // Every command completed.
    assert_eq!(server.query::<i64>(&["GET", "counter"]), 17);
    assert_eq!(server.query::<i64>(&["GET", "plain"]), 16);
    assert_eq!(
        server.query::<i64>(&["LLEN", "items"]),
        (COMMANDS - 17) as i64
    );
    // Never more than two sockets, as the server and the runtime metrics saw it.
    assert!(samples > 0);
    let most_clients = most_clients.load(Ordering::Relaxed);
    assert!(most_clients <= 2, "{most_clients} clients seen");
    assert!(most_clients >= 1);
    assert!(most_in_use.load(Ordering::Relaxed) <= 2);
    let state = pool.state();
    assert!(state.open <= 2, "{state:?}");
    assert_eq!(state.in_use, 0, "{state:?}");
}
