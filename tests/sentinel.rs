//! The standalone client behind Redis Sentinel (1 primary, 1 replica, 3 sentinels started by
//! the harness): it finds the primary through the sentinels and follows a forced failover.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use baseplate_redis::config::RawConfig;
use baseplate_redis::sink::{names, RecordingSink};
use baseplate_redis::span::RecordingObserver;
use baseplate_redis::{pool_from_config, Baseplate, ContextSpec, RedisClient};
use common::cluster::{
    query, wait_until, SentinelSetup, SENTINEL_FAILOVER_TIMEOUT_MS, SENTINEL_SERVICE,
};
use redis::AsyncCommands;

fn baseplate(url: &str) -> (Baseplate, RecordingObserver, RecordingSink) {
    let config = RawConfig::from_pairs([
        ("cache.url", url),
        ("cache.socket_timeout", "1 second"),
        ("cache.socket_connect_timeout", "1 second"),
    ]);
    let spans = RecordingObserver::new();
    let metrics = RecordingSink::new();
    let mut baseplate = Baseplate::new(config)
        .with_metrics_sink(Arc::new(metrics.clone()))
        .unwrap();
    baseplate.register(Arc::new(spans.clone()));
    baseplate
        .configure_context(ContextSpec::new().client("cache", RedisClient::new()))
        .unwrap();
    (baseplate, spans, metrics)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn follows_a_forced_failover() {
    let setup = Arc::new(
        tokio::task::spawn_blocking(SentinelSetup::start)
            .await
            .unwrap(),
    );
    let (primary, replica) = (setup.primary.port(), setup.replica.port());
    let (baseplate, spans, metrics) = baseplate(&setup.url(2));

    // Found through the sentinels: the commands land on the primary, in the URL's db.
    let mut context = baseplate.make_context_object();
    let span = baseplate.make_server_span(&mut context, "request", None);
    let mut cache = context.redis("cache").unwrap();
    let _: () = cache.set("greeting", "hello").await.unwrap();
    let _: String = cache.get("greeting").await.unwrap();
    span.finish();
    // Once connected, spans name the primary the sentinels gave.
    let get = spans.find("cache.GET").unwrap();
    let address = get.tags.get("server.address").unwrap().to_string();
    assert!(
        address.contains(&primary.to_string()) && address.contains(SENTINEL_SERVICE),
        "{address}"
    );
    let stored: Option<String> = redis::cmd("GET")
        .arg("greeting")
        .query(&mut {
            let mut conn = common::cluster::admin(primary);
            let _: () = redis::cmd("SELECT").arg(2).query(&mut conn).unwrap();
            conn
        })
        .unwrap();
    assert_eq!(stored.as_deref(), Some("hello"));

    // Load: each task increments its own counter.
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..4)
        .map(|t| {
            let mut cache = baseplate.make_context_object().redis("cache").unwrap();
            let stop = stop.clone();
            tokio::spawn(async move {
                let key = format!("counter:{t}");
                let mut ops = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    let result: redis::RedisResult<i64> = cache.incr(&key, 1).await;
                    ops.push((started, Instant::now(), result.map_err(|e| e.to_string())));
                    if ops.last().is_some_and(|op| op.2.is_err()) {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
                ops
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let failover = Instant::now();
    let switched = tokio::task::spawn_blocking({
        let setup = setup.clone();
        move || {
            let _: () = query(
                setup.sentinels[0].port(),
                &["SENTINEL", "FAILOVER", SENTINEL_SERVICE],
            );
            wait_until(
                Duration::from_secs(15),
                "sentinels report the replica as primary",
                || setup.reported_primary() == replica,
            );
            Instant::now()
        }
    })
    .await
    .unwrap();

    // Follows within the failover time: a write sent after the switch lands on the new
    // primary.
    let follow_limit = Duration::from_millis(SENTINEL_FAILOVER_TIMEOUT_MS) * 2;
    let followed = loop {
        // A handle per attempt, as per request (the load tasks keep theirs).
        let mut probe = baseplate.make_context_object().redis("cache").unwrap();
        let marker = format!("{:?}", Instant::now());
        if probe.set::<_, _, ()>("marker", &marker).await.is_ok() {
            let mut conn = common::cluster::admin(replica);
            let _: () = redis::cmd("SELECT").arg(2).query(&mut conn).unwrap();
            let on_new: Option<String> = redis::cmd("GET").arg("marker").query(&mut conn).unwrap();
            if on_new.as_deref() == Some(marker.as_str()) {
                break Instant::now();
            }
        }
        assert!(
            switched.elapsed() < follow_limit,
            "the client still writes elsewhere {follow_limit:?} after the switch"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let mut ops = Vec::new();
    for task in tasks {
        ops.extend(task.await.unwrap());
    }

    let failed: Vec<&(Instant, Instant, Result<i64, String>)> =
        ops.iter().filter(|op| op.2.is_err()).collect();
    let errors: std::collections::BTreeSet<&str> = failed
        .iter()
        .filter_map(|op| op.2.as_ref().err())
        .map(String::as_str)
        .collect();
    let slowest = ops.iter().map(|op| op.1 - op.0).max().unwrap_or_default();
    println!(
        "sentinel failover: sentinels switched {:?} after SENTINEL FAILOVER; the client wrote \
         to the new primary {:?} after the switch; {} commands, {} failed ({errors:?}); \
         slowest command {slowest:?}",
        switched - failover,
        followed.saturating_duration_since(switched),
        ops.len(),
        failed.len(),
    );
    // After following, every command works.
    let late_failures = ops
        .iter()
        .filter(|op| op.0 > followed + Duration::from_millis(100) && op.2.is_err())
        .count();
    assert_eq!(late_failures, 0);
    let role: Vec<redis::Value> = query(replica, &["ROLE"]);
    assert_eq!(role[0], redis::Value::BulkString(b"master".to_vec()));
    // Lifecycle telemetry: the failover was followed, and the old primary's connection
    // closed for it once its last user let go.
    let pool = [(names::LABEL_POOL, "cache")];
    assert_eq!(
        metrics.counter_value(names::SENTINEL_FAILOVERS_TOTAL, &pool),
        1
    );
    drop(cache);
    drop(context);
    let failover_closes = [
        (names::LABEL_POOL, "cache"),
        (names::LABEL_REASON, names::REASON_FAILOVER),
    ];
    let mut closed = 0;
    for _ in 0..100 {
        closed = metrics.counter_value(names::CONNECTIONS_CLOSED_TOTAL, &failover_closes);
        if closed >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(closed >= 1, "{:#?}", metrics.series());
}

#[test]
fn sentinel_urls_make_a_sentinel_pool() {
    let config = RawConfig::from_pairs([(
        "cache.url",
        "redis+sentinel://:secret@127.0.0.1:26379,127.0.0.1:26380/mymaster/3",
    )]);
    let pool = pool_from_config(&config, "cache.").unwrap();
    assert_eq!(pool.database(), 3);
    assert!(pool.address().contains("mymaster"), "{}", pool.address());
    assert!(!format!("{pool:?}").contains("secret"));
    let config = RawConfig::from_pairs([("cache.url", "redis+sentinel://127.0.0.1:26379")]);
    let err = pool_from_config(&config, "cache.").unwrap_err();
    assert_eq!(err.key(), "cache.url");
    assert!(err.to_string().contains("service name"), "{err}");
}
