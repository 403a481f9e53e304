//! Guarantee 4: blocking commands are not cut off by `socket_timeout`, and a connection that
//! was blocked when its caller gave up is never handed to the next caller (it would still
//! be blocked server-side and swallow the next message).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use baseplate_redis::config::RawConfig;
use baseplate_redis::pool::PoolBackend;
use baseplate_redis::{pool_from_config, MessageQueue, RedisContextFactory};
use common::RedisServer;
use redis::AsyncCommands;

fn client(
    server: &RedisServer,
    max_connections: u32,
) -> (Arc<dyn PoolBackend>, RedisContextFactory) {
    let config = RawConfig::from_pairs([
        ("redis.url", server.url(0)),
        ("redis.socket_timeout", "200 milliseconds".to_string()),
        ("redis.max_connections", max_connections.to_string()),
    ]);
    let pool = pool_from_config(&config, "redis.").unwrap();
    (pool.clone(), RedisContextFactory::new(pool))
}

#[tokio::test]
async fn blpop_waits_its_own_timeout_not_the_socket_timeout() {
    let server = RedisServer::start();
    let (pool, factory) = client(&server, 4);
    let mut redis = factory.connection();
    let started = Instant::now();
    let popped: Option<(String, String)> = redis.blpop("empty", 2.0).await.unwrap();
    let took = started.elapsed();
    assert_eq!(popped, None);
    assert!(took >= Duration::from_secs(2), "{took:?}");
    assert!(took < Duration::from_millis(3_000), "{took:?}");
    assert_eq!(pool.state().in_use, 0);
}

#[tokio::test]
async fn queue_get_waits_the_full_timeout() {
    let server = RedisServer::start();
    let (_pool, factory) = client(&server, 4);
    let mut queue = MessageQueue::new("jobs", factory.connection());
    let started = Instant::now();
    let err = queue.get(Some(Duration::from_secs(2))).await.unwrap_err();
    let took = started.elapsed();
    assert!(err.is_queue_timeout(), "{err}");
    assert!(took >= Duration::from_secs(2), "{took:?}");
    assert!(took < Duration::from_millis(3_000), "{took:?}");
}

#[tokio::test]
async fn queue_get_returns_a_message_pushed_after_a_second() {
    let server = RedisServer::start();
    let (_pool, factory) = client(&server, 4);
    let mut consumer = MessageQueue::new("jobs", factory.connection());
    let mut producer = MessageQueue::new("jobs", factory.connection());
    let started = Instant::now();
    let push = async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        producer.put(b"late \xff message").await.unwrap();
    };
    let (message, ()) = tokio::join!(consumer.get(Some(Duration::from_secs(2))), push);
    let took = started.elapsed();
    assert_eq!(message.unwrap(), b"late \xff message");
    assert!(took >= Duration::from_secs(1), "{took:?}");
    assert!(took < Duration::from_millis(1_900), "{took:?}");
}

/// How many clients the server has blocked in BLPOP and friends.
fn blocked_clients(server: &RedisServer) -> u64 {
    let info: String = server.query(&["INFO", "clients"]);
    info.lines()
        .find_map(|l| l.strip_prefix("blocked_clients:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_connection_blocked_when_its_caller_gave_up_is_not_reused() {
    let server = RedisServer::start();
    // One slot only: if the abandoned connection were given back, the next caller would get
    // it.
    let (pool, factory) = client(&server, 1);

    for cut in ["timeout", "drop"] {
        let mut redis = factory.connection();
        let blpop = redis.blpop::<_, Option<(String, Vec<u8>)>>("handoff", 10.0);
        match cut {
            "timeout" => {
                let limit = Duration::from_millis(300);
                assert!(tokio::time::timeout(limit, blpop).await.is_err());
            }
            _ => {
                tokio::pin!(blpop);
                tokio::select! {
                    _ = &mut blpop => panic!("BLPOP returned with nothing pushed"),
                    _ = tokio::time::sleep(Duration::from_millis(300)) => {}
                }
            }
        }
        drop(redis);
        assert_eq!(pool.state().in_use, 0, "{cut}");

        // The abandoned BLPOP's socket is closed, so the server stops blocking on it.
        let deadline = Instant::now() + Duration::from_secs(2);
        while blocked_clients(&server) > 0 {
            assert!(
                Instant::now() < deadline,
                "{cut}: the abandoned BLPOP is still blocked"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }

        // The next caller gets the message pushed now; nothing swallowed it.
        let mut next = factory.connection();
        let push = async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            server.query::<()>(&["RPUSH", "handoff", cut]);
        };
        let (popped, ()) = tokio::join!(
            next.blpop::<_, Option<(String, Vec<u8>)>>("handoff", 5.0),
            push
        );
        assert_eq!(
            popped.unwrap(),
            Some(("handoff".to_string(), cut.as_bytes().to_vec()))
        );
        assert_eq!(server.query::<u64>(&["LLEN", "handoff"]), 0);
    }
    assert!(pool.state().open <= 1);
}
