//! MessageQueue against a private redis-server.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use baseplate_redis::config::RawConfig;
use baseplate_redis::sink::NoopSink;
use baseplate_redis::{pool_from_config, MessageQueue, RedisContextFactory};
use common::RedisServer;

fn factory(server: &RedisServer) -> RedisContextFactory {
    let config = RawConfig::from_pairs([
        ("q.url", server.url(0)),
        ("q.socket_timeout", "200 milliseconds".to_string()),
    ]);
    let pool = pool_from_config(&config, "q.").unwrap();
    RedisContextFactory::with_options(pool, "q", Arc::new(NoopSink))
}

#[tokio::test]
async fn put_get_round_trip_is_binary_safe_and_fifo() {
    let server = RedisServer::start();
    let factory = factory(&server);
    let mut queue = MessageQueue::new("jobs", factory.connection());
    let messages: Vec<Vec<u8>> = vec![
        b"first".to_vec(),
        vec![],
        (0..=255u8).collect(),
        vec![0xff, 0xfe, 0x00],
    ];
    for m in &messages {
        queue.put(m).await.unwrap();
    }
    for m in &messages {
        assert_eq!(&queue.get(Some(Duration::from_secs(1))).await.unwrap(), m);
    }
    queue.close().await.unwrap();
    let exists: i64 = server.query(&["EXISTS", "jobs"]);
    assert_eq!(exists, 0);
}

#[tokio::test]
async fn zero_timeout_on_an_empty_queue_is_the_timed_out_error() {
    let server = RedisServer::start();
    let factory = factory(&server);
    let mut queue = MessageQueue::new("empty", factory.connection());
    let started = Instant::now();
    let err = queue.get(Some(Duration::ZERO)).await.unwrap_err();
    assert!(err.is_queue_timeout(), "{err}");
    assert!(err.is_timeout());
    assert!(started.elapsed() < Duration::from_millis(500));
    assert!(err.to_string().contains("empty"), "{err}");
}

#[tokio::test]
async fn fractional_timeout_waits_that_long_beyond_the_socket_timeout() {
    let server = RedisServer::start();
    let factory = factory(&server);
    let mut queue = MessageQueue::new("slow", factory.connection());
    let started = Instant::now();
    let err = queue
        .get(Some(Duration::from_millis(600)))
        .await
        .unwrap_err();
    let waited = started.elapsed();
    assert!(err.is_queue_timeout(), "{err}");
    // Longer than socket_timeout (200 ms): the blocking pop is not cut off.
    assert!(waited >= Duration::from_millis(550), "{waited:?}");
    assert!(waited < Duration::from_secs(3), "{waited:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_without_timeout_waits_for_a_message() {
    let server = RedisServer::start();
    let factory = factory(&server);
    let mut consumer = MessageQueue::new("wake", factory.connection());
    let waiting = tokio::spawn(async move { consumer.get(None).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished());
    let mut producer = MessageQueue::new("wake", factory.connection());
    producer.put(b"hello").await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(got, b"hello");
}
