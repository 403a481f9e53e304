//! Pub/Sub on a cluster client: channels, patterns and sharded channels (SSUBSCRIBE), and a
//! sharded subscription that follows its slot to a new owner.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use baseplate_redis::config::RawConfig;
use baseplate_redis::sink::RecordingSink;
use baseplate_redis::span::RecordingObserver;
use baseplate_redis::{
    Baseplate, ClusterRedisClient, ContextSpec, PubSubMessage, Subscriber, SubscriptionKind,
};
use common::cluster::{query, slot, RedisCluster};
use redis::AsyncCommands;

async fn next(subscriber: &mut Subscriber) -> PubSubMessage {
    tokio::time::timeout(Duration::from_secs(5), subscriber.next_message())
        .await
        .expect("a message within 5 s")
        .expect("subscriber open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cluster_subscribers_hear_channels_patterns_and_moving_shards() {
    let cluster = tokio::task::spawn_blocking(RedisCluster::start)
        .await
        .unwrap();
    let config = RawConfig::from_pairs([
        ("cluster.url", cluster.seed_url()),
        ("cluster.socket_timeout", "2 seconds".to_string()),
        // SPUBLISH on primaries, where the subscriber subscribes.
        ("cluster.read_from_replicas", "false".to_string()),
    ]);
    let metrics = RecordingSink::new();
    let spans = RecordingObserver::new();
    let mut baseplate = Baseplate::new(config)
        .with_metrics_sink(Arc::new(metrics.clone()))
        .unwrap();
    baseplate.register(Arc::new(spans.clone()));
    baseplate
        .configure_context(ContextSpec::new().client("cluster", ClusterRedisClient::new()))
        .unwrap();
    let mut context = baseplate.make_context_object();
    let request = baseplate.make_server_span(&mut context, "handler", None);
    let mut handle = context.redis("cluster").unwrap();

    let mut subscriber = handle.pubsub().await.unwrap();
    subscriber.subscribe("broadcast").await.unwrap();
    subscriber.psubscribe("metrics.*").await.unwrap();
    let shard = "{shard}news";
    subscriber.ssubscribe(shard).await.unwrap();

    let _: i64 = handle.publish("broadcast", "to all").await.unwrap();
    let message = next(&mut subscriber).await;
    assert_eq!(
        (message.channel_str().into_owned(), message.kind),
        ("broadcast".to_string(), SubscriptionKind::Channel)
    );
    let _: i64 = handle.publish("metrics.cpu", "93").await.unwrap();
    let message = next(&mut subscriber).await;
    assert_eq!(message.pattern.as_deref(), Some(&b"metrics.*"[..]));
    let spublish = |payload: &'static str| redis::cmd("SPUBLISH").arg(shard).arg(payload).clone();
    let heard: i64 = spublish("sharded").query_async(&mut handle).await.unwrap();
    assert_eq!(heard, 1);
    let message = next(&mut subscriber).await;
    assert_eq!(message.kind, SubscriptionKind::Shard);
    assert_eq!(message.payload, b"sharded");
    request.finish();
    assert!(
        spans.find("cluster.SSUBSCRIBE").is_some(),
        "{:?}",
        spans.names()
    );

    // Move the (empty) slot of the sharded channel to another primary.
    let moving = slot(shard);
    let source = cluster.owner_of(moving);
    let target = cluster
        .primaries()
        .into_iter()
        .find(|p| p.id != source.id)
        .unwrap();
    let slot_arg = moving.to_string();
    for node in cluster.primaries() {
        let _: () = query(
            node.port,
            &["CLUSTER", "SETSLOT", &slot_arg, "NODE", &target.id],
        );
    }
    let moved_at = Instant::now();
    // The subscriber hears the sharded channel again, from its new owner.
    loop {
        assert!(
            moved_at.elapsed() < Duration::from_secs(10),
            "the sharded subscription did not follow its slot"
        );
        let published: Result<i64, _> = spublish("moved").query_async(&mut handle).await;
        if let Ok(Ok(Some(message))) =
            tokio::time::timeout(Duration::from_millis(100), subscriber.next_message())
                .await
                .map(Ok::<_, ()>)
        {
            assert_eq!(message.payload, b"moved", "{published:?}");
            break;
        }
    }
    // Subscribed in the target's shard (its primary or replica), nowhere else.
    let subscribed_on = |port: u16| -> i64 {
        let (_, n): (String, i64) = query(port, &["PUBSUB", "SHARDNUMSUB", shard]);
        n
    };
    let in_shard = |node: &common::cluster::NodeInfo| {
        node.id == target.id || node.primary_id.as_deref() == Some(target.id.as_str())
    };
    let (inside, outside): (Vec<_>, Vec<_>) = cluster.nodes().into_iter().partition(in_shard);
    let counts = |nodes: &[common::cluster::NodeInfo]| -> Vec<i64> {
        nodes.iter().map(|n| subscribed_on(n.port)).collect()
    };
    // Replicas of the old owner learn of the move by gossip, a little later.
    let settled = Instant::now();
    loop {
        let (i, o) = (counts(&inside), counts(&outside));
        if i.iter().sum::<i64>() == 1 && o.iter().sum::<i64>() == 0 {
            break;
        }
        assert!(
            settled.elapsed() < Duration::from_secs(10),
            "subscriptions inside the new shard {i:?}, outside {o:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Following the slot was a measured reconnection.
    assert!(subscriber.reconnects() >= 1);
    drop(subscriber);
}
