//! Client-side caching on a real server: hits are served locally and measured, writes by
//! this client are read back at once, a concurrent writer's values are never read back in
//! time (differential check against a non-caching client), the cache is bounded, and it
//! is flushed when its tracking connection is lost.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use baseplate_redis::config::RawConfig;
use baseplate_redis::sink::{names, RecordingSink};
use baseplate_redis::span::RecordingObserver;
use baseplate_redis::{Baseplate, ContextSpec, MonitoredRedisConnection, RedisClient};
use common::RedisServer;
use redis::AsyncCommands;

struct Clients {
    baseplate: Baseplate,
    metrics: RecordingSink,
    spans: RecordingObserver,
}

/// `cached` with `client_cache` on, `plain` without, both on `server`.
fn clients(server: &RedisServer, cache: &[(&str, &str)]) -> Clients {
    let mut pairs = vec![
        ("cached.url".to_string(), server.url(0)),
        ("cached.client_cache".to_string(), "true".to_string()),
        ("plain.url".to_string(), server.url(0)),
    ];
    pairs.extend(
        cache
            .iter()
            .map(|(k, v)| (format!("cached.{k}"), v.to_string())),
    );
    let metrics = RecordingSink::new();
    let spans = RecordingObserver::new();
    let mut baseplate = Baseplate::new(RawConfig::from_pairs(pairs))
        .with_metrics_sink(Arc::new(metrics.clone()))
        .unwrap();
    baseplate.register(Arc::new(spans.clone()));
    baseplate
        .configure_context(
            ContextSpec::new()
                .client("cached", RedisClient::new())
                .client("plain", RedisClient::new()),
        )
        .unwrap();
    Clients {
        baseplate,
        metrics,
        spans,
    }
}

impl Clients {
    fn handle(&self, name: &str) -> MonitoredRedisConnection {
        self.baseplate.make_context_object().redis(name).unwrap()
    }

    fn count(&self, metric: &'static str) -> u64 {
        self.metrics
            .counter_value(metric, &[(names::LABEL_CLIENT_NAME, "cached")])
    }
}

/// Reads `key` through `cached` until it answers `want`, for at most 2 s.
async fn until_cached_reads(cached: &mut MonitoredRedisConnection, key: &str, want: i64) {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let got: Option<i64> = cached.get(key).await.unwrap();
        if got == Some(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{key}: still {got:?}, want {want}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hits_are_served_locally_measured_and_invalidated() {
    let server = RedisServer::start();
    let c = clients(&server, &[]);
    let mut context = c.baseplate.make_context_object();
    let request = c.baseplate.make_server_span(&mut context, "handler", None);
    let mut cached = context.redis("cached").unwrap();
    let mut plain = c.handle("plain");
    let _: () = plain.set("greeting", "hello").await.unwrap();
    let _: () = plain.hset("user:1", "name", "ada").await.unwrap();

    let calls_before = get_calls(&server);
    for _ in 0..5 {
        let got: String = cached.get("greeting").await.unwrap();
        assert_eq!(got, "hello");
        let name: String = cached.hget("user:1", "name").await.unwrap();
        assert_eq!(name, "ada");
        let both: Vec<Option<String>> = cached.mget(&["greeting", "nothing"]).await.unwrap();
        assert_eq!(both, [Some("hello".to_string()), None]);
    }
    // The first round fetched (GET, HGET, MGET); the other four were local.
    assert_eq!(c.count(names::CLIENT_CACHE_HITS_TOTAL), 12);
    assert_eq!(get_calls(&server) - calls_before, 1);
    request.finish();
    // Hits are still measured and traced, tagged as hits.
    let gets = [
        (names::LABEL_CLIENT_NAME, "cached"),
        (names::LABEL_COMMAND, "get"),
    ];
    assert_eq!(c.metrics.counter_value(names::REQUESTS_TOTAL, &gets), 5);
    let tagged: Vec<bool> = c
        .spans
        .spans()
        .iter()
        .filter(|s| s.name == "cached.GET")
        .map(|s| s.tags.get(names::TAG_CLIENT_CACHE_HIT) == Some(&true.into()))
        .collect();
    assert_eq!(tagged, [false, true, true, true, true]);

    // Another client's write invalidates the key.
    let _: () = plain.set("greeting", "bonjour").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let got: String = cached.get("greeting").await.unwrap();
        if got == "bonjour" {
            break;
        }
        assert_eq!(got, "hello");
        assert!(Instant::now() < deadline, "invalidation never arrived");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(c.count(names::CLIENT_CACHE_INVALIDATIONS_TOTAL) >= 1);
    // A write through the caching client itself is read back at once.
    let _: () = cached.hset("user:1", "name", "grace").await.unwrap();
    let name: String = cached.hget("user:1", "name").await.unwrap();
    assert_eq!(name, "grace");
    // FLUSHALL empties the cache.
    let _: () = redis::cmd("FLUSHALL")
        .query_async(&mut plain)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    while cached
        .get::<_, Option<String>>("greeting")
        .await
        .unwrap()
        .is_some()
    {
        assert!(
            Instant::now() < deadline,
            "FLUSHALL did not empty the cache"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn get_calls(server: &RedisServer) -> u64 {
    let info: String = server.query(&["INFO", "commandstats"]);
    info.lines()
        .find_map(|line| line.strip_prefix("cmdstat_get:calls="))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_through_the_caching_client_are_read_back_at_once() {
    let server = RedisServer::start();
    let c = clients(&server, &[]);
    let stop = Arc::new(AtomicBool::new(false));
    // Readers keep the key cached and fetches of it in flight.
    let mut readers = Vec::new();
    for _ in 0..3 {
        let mut reader = c.handle("cached");
        let stop = stop.clone();
        readers.push(tokio::spawn(async move {
            let mut reads = 0u32;
            while !stop.load(Ordering::Relaxed) && reads < 200_000 {
                let _: Option<i64> = reader.get("counter").await.unwrap();
                reads += 1;
                // Leave the writer its share of two cores.
                tokio::task::yield_now().await;
            }
        }));
    }
    let mut writer = c.handle("cached");
    for i in 1..=1000i64 {
        let _: () = writer.set("counter", i).await.unwrap();
        let got: Option<i64> = writer.get("counter").await.unwrap();
        assert_eq!(got, Some(i), "read back a stale value after writing {i}");
    }
    stop.store(true, Ordering::Relaxed);
    for reader in readers {
        reader.await.unwrap();
    }
    assert!(
        c.count(names::CLIENT_CACHE_HITS_TOTAL) > 0,
        "the cache was never used"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_concurrent_writers_values_are_never_read_back_in_time() {
    const KEYS: usize = 8;
    const WRITES: i64 = 3000;
    let server = RedisServer::start();
    let c = clients(&server, &[]);
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let mut plain = c.handle("plain");
        let done = done.clone();
        tokio::spawn(async move {
            for i in 1..=WRITES {
                let _: () = plain
                    .set(format!("k{}", i as usize % KEYS), i)
                    .await
                    .unwrap();
                if i % 16 == 0 {
                    tokio::task::yield_now().await;
                }
            }
            done.store(true, Ordering::Relaxed);
        })
    };
    let mut readers = Vec::new();
    for r in 0..4usize {
        let mut cached = c.handle("cached");
        let mut plain = c.handle("plain");
        let done = done.clone();
        readers.push(tokio::spawn(async move {
            let mut last = [0i64; KEYS];
            let mut reads = 0u64;
            let mut j = r;
            while !done.load(Ordering::Relaxed) && reads < 500_000 {
                j = (j + 1 + reads as usize % 3) % KEYS;
                let key = format!("k{j}");
                let got: i64 = cached
                    .get::<_, Option<i64>>(&key)
                    .await
                    .unwrap()
                    .unwrap_or(0);
                let server_now: i64 = plain
                    .get::<_, Option<i64>>(&key)
                    .await
                    .unwrap()
                    .unwrap_or(0);
                assert!(
                    got <= server_now,
                    "{key}: cache {got} ahead of the server {server_now}"
                );
                assert!(got >= last[j], "{key}: read {got} after {}", last[j]);
                last[j] = got;
                reads += 1;
            }
            reads
        }));
    }
    writer.await.unwrap();
    let mut reads = 0;
    for reader in readers {
        reads += reader.await.unwrap();
    }
    assert!(reads >= 1000, "only {reads} differential reads");
    // Once the writer stopped, the cache agrees with the server on every key.
    let mut cached = c.handle("cached");
    let mut plain = c.handle("plain");
    for j in 0..KEYS {
        let key = format!("k{j}");
        let want: i64 = plain.get(&key).await.unwrap();
        until_cached_reads(&mut cached, &key, want).await;
    }
    assert!(
        c.count(names::CLIENT_CACHE_HITS_TOTAL) > 0,
        "the cache was never used"
    );
    println!(
        "{reads} differential reads; hits {}, misses {}, invalidations {}",
        c.count(names::CLIENT_CACHE_HITS_TOTAL),
        c.count(names::CLIENT_CACHE_MISSES_TOTAL),
        c.count(names::CLIENT_CACHE_INVALIDATIONS_TOTAL)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_is_flushed_when_its_tracking_connection_drops() {
    let server = RedisServer::start();
    let c = clients(&server, &[]);
    let mut cached = c.handle("cached");
    let mut plain = c.handle("plain");
    let _: () = plain.set("k", 1).await.unwrap();
    let _: i64 = cached.get("k").await.unwrap();
    let _: i64 = cached.get("k").await.unwrap();
    assert_eq!(c.count(names::CLIENT_CACHE_HITS_TOTAL), 1);

    // Kill the tracking connection (flag `t` in CLIENT LIST): its invalidations stop.
    let clients: String = server.query(&["CLIENT", "LIST"]);
    let id = clients
        .lines()
        .find(|l| {
            l.split(' ')
                .any(|f| f.starts_with("flags=") && f.contains('t'))
        })
        .and_then(|l| l.split(' ').find_map(|f| f.strip_prefix("id=")))
        .unwrap_or_else(|| panic!("no tracking connection in {clients}"))
        .to_string();
    let _: () = server.query(&["CLIENT", "KILL", "ID", &id]);
    let deadline = Instant::now() + Duration::from_secs(2);
    while c.count(names::CLIENT_CACHE_FLUSHES_TOTAL) < 2 {
        assert!(Instant::now() < deadline, "the loss was never noticed");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        c.metrics.gauge_value(
            names::CLIENT_CACHE_KEYS,
            &[(names::LABEL_CLIENT_NAME, "cached")]
        ),
        Some(0.0)
    );
    // Written while nobody would have told the cache: read fresh.
    let _: () = plain.set("k", 2).await.unwrap();
    let got: i64 = cached.get("k").await.unwrap();
    assert_eq!(got, 2);
    // And caching resumes on a new tracking connection.
    let _: () = plain.set("k", 3).await.unwrap();
    until_cached_reads(&mut cached, "k", 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_holds_at_most_max_keys() {
    let server = RedisServer::start();
    let c = clients(&server, &[("client_cache_max_keys", "5")]);
    let mut cached = c.handle("cached");
    for i in 0..20 {
        let _: Option<String> = cached.get(format!("key{i}")).await.unwrap();
    }
    let held = c.metrics.gauge_value(
        names::CLIENT_CACHE_KEYS,
        &[(names::LABEL_CLIENT_NAME, "cached")],
    );
    assert_eq!(held, Some(5.0));
    assert_eq!(c.count(names::CLIENT_CACHE_EVICTIONS_TOTAL), 15);
    // The most recent ones are the ones kept.
    let hits = c.count(names::CLIENT_CACHE_HITS_TOTAL);
    for i in 15..20 {
        let _: Option<String> = cached.get(format!("key{i}")).await.unwrap();
    }
    assert_eq!(c.count(names::CLIENT_CACHE_HITS_TOTAL), hits + 5);
}
