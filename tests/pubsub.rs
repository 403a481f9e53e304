//! Pub/Sub on a real server through a configured client: round trip with channels,
//! patterns and binary payloads; spans and metrics; the subscriber's connection uses the
//! client's settings and counts against `max_connections`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use baseplate_redis::config::RawConfig;
use baseplate_redis::sink::{names, RecordingSink};
use baseplate_redis::span::RecordingObserver;
use baseplate_redis::{
    Baseplate, ContextSpec, PubSubMessage, RedisClient, Subscriber, SubscriptionKind,
};
use common::RedisServer;
use futures_util::StreamExt;
use redis::AsyncCommands;

fn baseplate(server: &RedisServer, extra: &[(&str, &str)], metrics: &RecordingSink) -> Baseplate {
    let mut pairs = vec![("foo.url".to_string(), server.url(3))];
    pairs.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let config = RawConfig::from_pairs(pairs);
    let mut baseplate = Baseplate::new(config)
        .with_metrics_sink(Arc::new(metrics.clone()))
        .unwrap();
    baseplate
        .configure_context(ContextSpec::new().client("foo", RedisClient::new()))
        .unwrap();
    baseplate
}

async fn next(subscriber: &mut Subscriber) -> PubSubMessage {
    tokio::time::timeout(Duration::from_secs(5), subscriber.next())
        .await
        .expect("a message within 5 s")
        .expect("subscriber open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_round_trip_through_channels_and_patterns_with_binary_payloads() {
    let server = RedisServer::start();
    let metrics = RecordingSink::new();
    let mut baseplate = baseplate(
        &server,
        &[
            ("foo.client_name", "listener"),
            ("foo.socket_timeout", "2 seconds"),
        ],
        &metrics,
    );
    let spans = RecordingObserver::new();
    baseplate.register(Arc::new(spans.clone()));
    let mut context = baseplate.make_context_object();
    let request = baseplate.make_server_span(&mut context, "handler", None);
    let mut foo = context.redis("foo").unwrap();

    let mut subscriber = foo.pubsub().await.unwrap();
    subscriber.subscribe(&["orders", "refunds"]).await.unwrap();
    subscriber.psubscribe("user:*:events").await.unwrap();
    assert_eq!(
        subscriber.subscriptions().await,
        vec![
            (SubscriptionKind::Channel, b"orders".to_vec()),
            (SubscriptionKind::Channel, b"refunds".to_vec()),
            (SubscriptionKind::Pattern, b"user:*:events".to_vec()),
        ]
    );

    let binary: Vec<u8> = (0..=255u8).rev().chain(*b"\r\n$-1\r\n").collect();
    let received: i64 = foo.publish("orders", &binary).await.unwrap();
    assert_eq!(received, 1);
    let _: i64 = foo.publish("user:42:events", "login").await.unwrap();
    let _: i64 = foo.publish("user:7:events", 17).await.unwrap();
    let _: i64 = foo.publish("elsewhere", "unseen").await.unwrap();

    let first = next(&mut subscriber).await;
    assert_eq!(first.channel, b"orders");
    assert_eq!(first.pattern, None);
    assert_eq!(first.kind, SubscriptionKind::Channel);
    assert_eq!(first.payload, binary);
    let second = next(&mut subscriber).await;
    assert_eq!(second.channel_str(), "user:42:events");
    assert_eq!(second.pattern.as_deref(), Some(&b"user:*:events"[..]));
    assert_eq!(second.kind, SubscriptionKind::Pattern);
    assert_eq!(second.payload_as::<String>().unwrap(), "login");
    let third = next(&mut subscriber).await;
    assert_eq!(third.payload_as::<i64>().unwrap(), 17);

    subscriber.unsubscribe("orders").await.unwrap();
    subscriber.punsubscribe(&[] as &[&str]).await.unwrap();
    let received: i64 = foo.publish("orders", "late").await.unwrap();
    assert_eq!(received, 0);
    let received: i64 = foo.publish("refunds", "still here").await.unwrap();
    assert_eq!(received, 1);
    assert_eq!(next(&mut subscriber).await.payload, b"still here");
    request.finish();

    // Spans: one per (un)subscribe command, children of the request's span.
    let parent = spans.find("handler").unwrap().span_id;
    for name in [
        "foo.SUBSCRIBE",
        "foo.PSUBSCRIBE",
        "foo.UNSUBSCRIBE",
        "foo.PUNSUBSCRIBE",
    ] {
        let span = spans.find(name).unwrap_or_else(|| panic!("no span {name}"));
        assert_eq!(span.parent_id, Some(parent), "{name}");
        assert!(span.finished, "{name}");
    }

    // Metrics: the command metrics, and messages by subscription, never by channel for
    // pattern matches. The `redis_client_name` label is the configured client_name.
    let client = [("redis_client_name", "listener"), ("redis_database", "3")];
    let subscribes = [&client[..], &[("redis_command", "subscribe")]].concat();
    assert_eq!(metrics.counter_value(names::REQUESTS_TOTAL, &subscribes), 1);
    let by_pattern = [
        &client[..],
        &[
            (names::LABEL_PUBSUB_SUBSCRIPTION, "user:*:events"),
            (names::LABEL_PUBSUB_KIND, "pattern"),
        ],
    ]
    .concat();
    assert_eq!(
        metrics.counter_value(names::PUBSUB_MESSAGES_TOTAL, &by_pattern),
        2
    );
    let by_channel = [(names::LABEL_PUBSUB_SUBSCRIPTION, "orders")];
    assert_eq!(
        metrics.counter_value(names::PUBSUB_MESSAGES_TOTAL, &by_channel),
        1
    );
    for series in metrics.series() {
        if series.name == names::PUBSUB_MESSAGES_TOTAL {
            assert!(
                !series.labels.iter().any(|(_, v)| v.contains(":42:")),
                "a channel name leaked into labels: {series:?}"
            );
        }
    }
    assert_eq!(
        metrics.gauge_value(names::PUBSUB_SUBSCRIPTIONS, &client),
        Some(1.0)
    );

    // The subscriber's connection carries the client's name and database.
    let clients: String = server.query(&["CLIENT", "LIST"]);
    let line = clients
        .lines()
        .find(|l| l.contains("sub=1"))
        .unwrap_or_else(|| panic!("no subscribed connection in {clients}"));
    assert!(line.contains("name=listener"), "{line}");
    assert!(line.contains("db=3"), "{line}");

    drop(subscriber);
    assert_eq!(
        metrics.gauge_value(names::PUBSUB_SUBSCRIPTIONS, &client),
        Some(0.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_count_against_max_connections() {
    let server = RedisServer::start();
    let metrics = RecordingSink::new();
    let baseplate = baseplate(
        &server,
        &[
            ("foo.max_connections", "3"),
            ("foo.pool_timeout", "300 milliseconds"),
        ],
        &metrics,
    );
    let context = baseplate.make_context_object();
    let foo = context.redis("foo").unwrap();

    let first = foo.pubsub().await.unwrap();
    let second = foo.pubsub().await.unwrap();
    // A third would leave no connection for commands.
    let err = foo.pubsub().await.unwrap_err();
    assert!(err.to_string().contains("max_connections"), "{err}");

    // Commands still run, sharing the one connection left.
    let mut handles: Vec<_> = (0..4).map(|_| context.redis("foo").unwrap()).collect();
    let commands = handles.iter_mut().enumerate().map(|(i, h)| async move {
        let _: () = h.set(format!("k{i}"), i).await.unwrap();
        let got: i64 = h.get(format!("k{i}")).await.unwrap();
        assert_eq!(got, i as i64);
    });
    futures_util::future::join_all(commands).await;
    assert!(
        server.connected_clients() <= 3,
        "{} connections open with max_connections = 3",
        server.connected_clients()
    );
    let (_, factory) = baseplate.factories().next().unwrap();
    factory.report_runtime_metrics(&metrics);
    let pool = [(names::LABEL_POOL, "foo")];
    assert_eq!(
        metrics.gauge_value(names::POOL_OPEN_CONNECTIONS, &pool),
        Some(server.connected_clients() as f64)
    );

    // A dropped subscriber gives its connection back.
    drop(first);
    let mut third = None;
    for _ in 0..50 {
        match foo.pubsub().await {
            Ok(subscriber) => {
                third = Some(subscriber);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    assert!(
        third.is_some(),
        "the dropped subscriber's slot never came back"
    );
    drop((second, third));
}
