//! A subscriber survives a server restart: it reconnects and resubscribes to its channels
//! and patterns by itself, within a bounded time, and reports the gap.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use baseplate_redis::config::RawConfig;
use baseplate_redis::sink::{names, RecordingSink};
use baseplate_redis::{Baseplate, ContextSpec, RedisClient, SUBSCRIBER_MAX_RETRY_WAIT};
use common::RedisServer;
use redis::AsyncCommands;

/// A Baseplate with client `foo` configured by `pairs`, reporting to `metrics`.
fn baseplate(pairs: Vec<(&str, String)>, metrics: &RecordingSink) -> Baseplate {
    let mut baseplate = Baseplate::new(RawConfig::from_pairs(pairs))
        .with_metrics_sink(Arc::new(metrics.clone()))
        .unwrap();
    baseplate
        .configure_context(ContextSpec::new().client("foo", RedisClient::new()))
        .unwrap();
    baseplate
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriber_resubscribes_after_a_server_restart() {
    let mut server = RedisServer::start();
    let metrics = RecordingSink::new();
    let baseplate = baseplate(
        vec![
            ("foo.url", server.url(0)),
            ("foo.socket_timeout", "500 milliseconds".to_string()),
            ("foo.socket_connect_timeout", "500 milliseconds".to_string()),
            ("foo.pool_timeout", "500 milliseconds".to_string()),
        ],
        &metrics,
    );
    let context = baseplate.make_context_object();
    let mut foo = context.redis("foo").unwrap();
    let mut subscriber = foo.pubsub().await.unwrap();
    subscriber.subscribe("jobs").await.unwrap();
    subscriber.psubscribe("alerts.*").await.unwrap();
    let _: i64 = foo.publish("jobs", "before").await.unwrap();
    let before = tokio::time::timeout(Duration::from_secs(5), subscriber.next_message())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(before.payload, b"before");

    server.restart();
    let restarted = Instant::now();

    // Publish until the subscriber hears both subscriptions again. The bound: the socket
    // timeout, the longest wait between reconnection attempts, and a second of slack.
    let bound = Duration::from_millis(500) + SUBSCRIBER_MAX_RETRY_WAIT + Duration::from_secs(1);
    let mut heard = (false, false);
    while !(heard.0 && heard.1) {
        assert!(
            restarted.elapsed() < bound,
            "not resubscribed within {bound:?} of the restart (heard {heard:?})"
        );
        // The handle may see the restart as one failed command.
        let _: Result<i64, _> = foo.publish("jobs", "after").await;
        let _: Result<i64, _> = foo.publish("alerts.disk", "after").await;
        if let Ok(Some(message)) =
            tokio::time::timeout(Duration::from_millis(50), subscriber.next_message()).await
        {
            assert_eq!(message.payload, b"after");
            match message.pattern {
                None => heard.0 = true,
                Some(pattern) => {
                    assert_eq!(pattern, b"alerts.*");
                    heard.1 = true;
                }
            }
        }
    }
    let resubscribed_after = restarted.elapsed();

    assert_eq!(subscriber.reconnects(), 1);
    let gap = subscriber.last_gap().expect("the gap is measured");
    assert!(gap < bound, "gap {gap:?}");
    let client = [("redis_client_name", "foo")];
    assert_eq!(
        metrics.counter_value(names::PUBSUB_RECONNECTS_TOTAL, &client),
        1
    );
    assert_eq!(
        metrics.histogram_count(names::PUBSUB_RECONNECT_GAP_SECONDS, &client),
        1
    );
    // Both subscriptions are still counted once.
    assert_eq!(
        metrics.gauge_value(names::PUBSUB_SUBSCRIPTIONS, &client),
        Some(2.0)
    );
    println!("resubscribed {resubscribed_after:?} after the restart; measured gap {gap:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriber_resubscribes_after_its_connection_is_killed() {
    let server = RedisServer::start();
    let baseplate = baseplate(vec![("foo.url", server.url(0))], &RecordingSink::new());
    let context = baseplate.make_context_object();
    let mut foo = context.redis("foo").unwrap();
    let mut subscriber = foo.pubsub().await.unwrap();
    subscriber.subscribe(&["a", "b"]).await.unwrap();

    let killed: i64 = server.query(&["CLIENT", "KILL", "TYPE", "pubsub"]);
    assert_eq!(killed, 1);
    let killed_at = Instant::now();
    let bound = SUBSCRIBER_MAX_RETRY_WAIT + Duration::from_secs(2);
    loop {
        assert!(
            killed_at.elapsed() < bound,
            "not resubscribed within {bound:?}"
        );
        let _: i64 = foo.publish("b", "again").await.unwrap();
        if let Ok(Some(message)) =
            tokio::time::timeout(Duration::from_millis(50), subscriber.next_message()).await
        {
            assert_eq!(
                (message.channel, message.payload),
                (b"b".to_vec(), b"again".to_vec())
            );
            break;
        }
    }
    assert_eq!(subscriber.reconnects(), 1);
    let (_, subscribed): (String, i64) = server.query(&["PUBSUB", "NUMSUB", "a"]);
    assert_eq!(subscribed, 1);
}
