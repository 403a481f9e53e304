//! Pub/Sub without a server: a `memory://` client's subscriber hears what any client of
//! the same named store publishes, by channel or glob pattern, and is instrumented as a
//! real one.

use std::sync::Arc;
use std::time::Duration;

use baseplate_redis::config::RawConfig;
use baseplate_redis::sink::{names, RecordingSink};
use baseplate_redis::{Baseplate, ContextSpec, PubSubMessage, RedisClient, Subscriber};
use redis::AsyncCommands;

async fn next(subscriber: &mut Subscriber) -> PubSubMessage {
    tokio::time::timeout(Duration::from_secs(5), subscriber.next_message())
        .await
        .expect("a message within 5 s")
        .expect("subscriber open")
}

#[tokio::test]
async fn in_memory_subscribers_hear_channels_and_glob_patterns() {
    let metrics = RecordingSink::new();
    // Two clients of one named store, in different databases: Pub/Sub ignores databases.
    let config = RawConfig::from_pairs([
        ("events.url", "memory://pubsub-memory-test/0"),
        ("other.url", "memory://pubsub-memory-test/5"),
    ]);
    let mut baseplate = Baseplate::new(config)
        .with_metrics_sink(Arc::new(metrics.clone()))
        .unwrap();
    baseplate
        .configure_context(
            ContextSpec::new()
                .client("events", RedisClient::new())
                .client("other", RedisClient::new()),
        )
        .unwrap();
    let context = baseplate.make_context_object();
    let mut subscriber = context.redis("events").unwrap().pubsub().await.unwrap();
    subscriber.subscribe("cache:flush").await.unwrap();
    subscriber
        .psubscribe(&["cache:user:[0-9]*", "h?llo", "esc\\*aped"])
        .await
        .unwrap();

    let mut other = context.redis("other").unwrap();
    let mut publish = async |channel: &str, payload: &[u8]| -> i64 {
        other.publish(channel, payload).await.unwrap()
    };
    assert_eq!(publish("cache:flush", b"\x00\xff all").await, 1);
    assert_eq!(publish("cache:user:42", b"u").await, 1);
    assert_eq!(publish("cache:user:x", b"no").await, 0);
    assert_eq!(publish("hallo", b"h").await, 1);
    assert_eq!(publish("esc*aped", b"e").await, 1);
    assert_eq!(publish("escXaped", b"no").await, 0);

    let flush = next(&mut subscriber).await;
    assert_eq!(
        (flush.channel_str().into_owned(), flush.payload.clone()),
        ("cache:flush".to_string(), b"\x00\xff all".to_vec())
    );
    let user = next(&mut subscriber).await;
    assert_eq!(user.pattern.as_deref(), Some(&b"cache:user:[0-9]*"[..]));
    assert_eq!(user.channel, b"cache:user:42");
    assert_eq!(next(&mut subscriber).await.payload, b"h");
    assert_eq!(next(&mut subscriber).await.payload, b"e");

    subscriber.punsubscribe("h?llo").await.unwrap();
    assert_eq!(publish("hallo", b"gone").await, 0);

    let by_pattern = [
        (names::LABEL_PUBSUB_SUBSCRIPTION, "cache:user:[0-9]*"),
        (names::LABEL_CLIENT_NAME, "events"),
    ];
    assert_eq!(
        metrics.counter_value(names::PUBSUB_MESSAGES_TOTAL, &by_pattern),
        1
    );
    let psubscribes = [
        (names::LABEL_COMMAND, "psubscribe"),
        (names::LABEL_SUCCESS, "true"),
    ];
    assert_eq!(
        metrics.counter_value(names::REQUESTS_TOTAL, &psubscribes),
        1
    );

    // Dropping the subscriber ends its subscriptions.
    drop(subscriber);
    assert_eq!(publish("cache:flush", b"late").await, 0);
}
