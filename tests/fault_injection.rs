//! The fault-injecting backend, as a service uses it to test its own retries and timeouts:
//! plugged into a client from configuration, around a real `redis-server`.

mod common;

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use baseplate_redis::config::RawConfig;
use baseplate_redis::pool::{Fault, FaultInjectingBackend, FaultRule, PoolBackend};
use baseplate_redis::sink::{names, RecordingSink};
use baseplate_redis::{Baseplate, ContextSpec, RedisClient, RequestContext};
use common::RedisServer;
use redis::AsyncCommands;

/// A service whose `cache` client runs through a fault injector with `rules`; the injector
/// is kept so tests can count its faults.
fn service(
    url: &str,
    rules: Vec<FaultRule>,
) -> (
    Baseplate,
    RecordingSink,
    Arc<OnceLock<Arc<FaultInjectingBackend>>>,
) {
    let injector = Arc::new(OnceLock::new());
    let made = injector.clone();
    let client = RedisClient::new().map_pool(move |pool| {
        let faulty = rules
            .iter()
            .cloned()
            .fold(FaultInjectingBackend::new(pool), |backend, rule| {
                backend.with_rule(rule)
            })
            .with_seed(11);
        let faulty = Arc::new(faulty);
        made.set(faulty.clone()).unwrap();
        faulty as Arc<dyn PoolBackend>
    });
    let metrics = RecordingSink::new();
    let config = RawConfig::from_pairs([("cache.url", url), ("cache.socket_timeout", "2 seconds")]);
    let mut baseplate = Baseplate::new(config)
        .with_metrics_sink(Arc::new(metrics.clone()))
        .unwrap();
    baseplate
        .configure_context(ContextSpec::new().client("cache", client))
        .unwrap();
    (baseplate, metrics, injector)
}

/// The handler under test: reads a value, retrying up to `attempts` times on errors that
/// a retry can fix (connection errors and timeouts).
async fn read_with_retries(
    context: &RequestContext,
    attempts: u32,
) -> Result<Option<String>, String> {
    let mut last = String::new();
    for _ in 0..attempts {
        let mut cache = context.redis("cache").map_err(|e| e.to_string())?;
        match cache.get::<_, Option<String>>("greeting").await {
            Ok(value) => return Ok(value),
            Err(err) if err.is_connection_dropped() || err.is_timeout() || err.is_io_error() => {
                last = err.to_string()
            }
            Err(err) => return Err(err.to_string()),
        }
    }
    Err(last)
}

#[tokio::test]
async fn a_retrying_handler_survives_dropped_connections() {
    let server = RedisServer::start();
    let _: () = server.query(&["SET", "greeting", "hello"]);
    let rules = vec![FaultRule::new(Fault::DropConnection).on(["get"]).rate(0.5)];
    let (baseplate, metrics, injector) = service(&server.url(0), rules);

    for _ in 0..20 {
        let context = baseplate.make_context_object();
        let value = read_with_retries(&context, 12).await.unwrap();
        assert_eq!(value.as_deref(), Some("hello"));
    }
    let injected = injector.get().unwrap().injected();
    assert!(injected > 0, "no fault was injected");
    // Every injected failure is measured as a failed GET.
    let failed = [
        (names::LABEL_COMMAND, "get"),
        (names::LABEL_SUCCESS, "false"),
    ];
    assert_eq!(
        metrics.counter_value(names::REQUESTS_TOTAL, &failed),
        injected
    );
    let succeeded = [
        (names::LABEL_COMMAND, "get"),
        (names::LABEL_SUCCESS, "true"),
    ];
    assert_eq!(metrics.counter_value(names::REQUESTS_TOTAL, &succeeded), 20);
}

#[tokio::test]
async fn an_injected_timeout_fails_as_a_timeout_and_the_next_command_works() {
    let server = RedisServer::start();
    let rules = vec![FaultRule::new(Fault::Timeout(Duration::from_millis(100))).on(["SET"])];
    let (baseplate, _metrics, _injector) = service(&server.url(0), rules);
    let mut cache = baseplate.make_context_object().redis("cache").unwrap();

    let started = Instant::now();
    let err = cache.set::<_, _, ()>("k", "v").await.unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert!(started.elapsed() >= Duration::from_millis(100));
    // The command was never sent.
    let stored: Option<String> = server.query(&["GET", "k"]);
    assert_eq!(stored, None);
    // Other commands are untouched.
    let n: i64 = cache.incr("n", 1).await.unwrap();
    assert_eq!(n, 1);
}

#[tokio::test]
async fn latency_is_added_per_command() {
    let server = RedisServer::start();
    let rules = vec![FaultRule::new(Fault::Latency(Duration::from_millis(150))).on(["INCRBY"])];
    let (baseplate, metrics, _injector) = service(&server.url(0), rules);
    let mut cache = baseplate.make_context_object().redis("cache").unwrap();

    let _: i64 = cache.incr("n", 1).await.unwrap();
    let _: Option<String> = cache.get("n").await.unwrap();
    let slow = [(names::LABEL_COMMAND, "incrby")];
    let fast = [(names::LABEL_COMMAND, "get")];
    let slow_seconds = metrics.histogram_sum(names::LATENCY_SECONDS, &slow);
    let fast_seconds = metrics.histogram_sum(names::LATENCY_SECONDS, &fast);
    assert!(slow_seconds >= 0.15, "INCRBY took {slow_seconds} s");
    assert!(fast_seconds < 0.15, "GET took {fast_seconds} s");
}

#[tokio::test]
async fn cluster_redirections_reach_the_caller_as_their_replies() {
    let server = RedisServer::start();
    let rules = vec![
        FaultRule::new(Fault::Moved {
            slot: 3999,
            address: "10.0.0.2:6379".into(),
        })
        .on(["GET"]),
        FaultRule::new(Fault::Ask {
            slot: 12,
            address: "10.0.0.3:6379".into(),
        })
        .on(["HGET"]),
        FaultRule::new(Fault::TryAgain).on(["MGET"]),
        FaultRule::new(Fault::ErrorReply("LOADING Redis is loading".into())).on(["LLEN"]),
    ];
    let (baseplate, _metrics, _injector) = service(&server.url(0), rules);
    let mut cache = baseplate.make_context_object().redis("cache").unwrap();

    let err = cache.get::<_, Option<String>>("k").await.unwrap_err();
    assert_eq!(err.code(), Some("MOVED"), "{err}");
    assert_eq!(err.redirect_node(), Some(("10.0.0.2:6379", 3999)));
    let err = cache
        .hget::<_, _, Option<String>>("h", "f")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("ASK"), "{err}");
    let err = cache
        .mget::<_, Vec<Option<String>>>(&["a", "b"])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("TRYAGAIN"), "{err}");
    let err = cache.llen::<_, i64>("l").await.unwrap_err();
    assert_eq!(err.code(), Some("LOADING"), "{err}");
    // A pipeline holding a picked command fails as a whole.
    let mut pipe = cache.pipeline("reads");
    pipe.get("k").get("other");
    let err = pipe
        .query_async::<(Option<String>, Option<String>)>(&mut cache)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("MOVED"), "{err}");
}

#[tokio::test]
async fn a_rate_of_zero_injects_nothing_and_a_seed_repeats_the_faults() {
    let server = RedisServer::start();
    let rules = vec![FaultRule::new(Fault::DropConnection).rate(0.0)];
    let (baseplate, _metrics, injector) = service(&server.url(0), rules);
    let mut cache = baseplate.make_context_object().redis("cache").unwrap();
    for i in 0..50 {
        let n: i64 = cache.incr("n", 1).await.unwrap();
        assert_eq!(n, i + 1);
    }
    assert_eq!(injector.get().unwrap().injected(), 0);

    // The same seed and rate pick the same commands on every run.
    let outcomes = || async {
        let rules = vec![FaultRule::new(Fault::ErrorReply("ERR injected".into())).rate(0.3)];
        let (baseplate, _metrics, _injector) = service("memory://fault-seed", rules);
        let mut cache = baseplate.make_context_object().redis("cache").unwrap();
        let mut failed = Vec::new();
        for _ in 0..40 {
            failed.push(cache.get::<_, Option<String>>("k").await.is_err());
        }
        failed
    };
    let first = outcomes().await;
    assert_eq!(first, outcomes().await);
    assert!(first.contains(&true) && first.contains(&false), "{first:?}");
}
