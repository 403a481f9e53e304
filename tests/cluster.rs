//! The cluster client on a real 6-node Redis Cluster (3 primaries, 3 replicas) started by the
//! harness: every slot, named pipelines, replica reads, hot keys, blocking commands, a slot
//! migration under load and a primary failover under load.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use baseplate_redis::config::RawConfig;
use baseplate_redis::pool::{HOT_KEY_READS_SET, HOT_KEY_TTL, HOT_KEY_WRITES_SET};
use baseplate_redis::sink::{names, RecordingSink};
use baseplate_redis::span::RecordingObserver;
use baseplate_redis::{Baseplate, ClusterRedisClient, ContextSpec, MonitoredRedisConnection};
use common::cluster::{query, slot, wait_until, RedisCluster};
use redis::AsyncCommands;

/// The cluster shared by the tests that do not change its topology; started by the first
/// test that needs it, stopped when the last one using it is done.
fn shared_cluster() -> Arc<RedisCluster> {
    static SHARED: Mutex<Weak<RedisCluster>> = Mutex::new(Weak::new());
    let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(cluster) = shared.upgrade() {
        return cluster;
    }
    let cluster = Arc::new(RedisCluster::start());
    *shared = Arc::downgrade(&cluster);
    cluster
}

struct Fixture {
    baseplate: Baseplate,
    spans: RecordingObserver,
    metrics: RecordingSink,
}

/// A Baseplate with cluster client `cluster` seeded by `cluster`'s first node.
fn fixture(cluster: &RedisCluster, extra: &[(&str, &str)]) -> Fixture {
    let mut config = RawConfig::from_pairs([("cluster.url", cluster.seed_url())]);
    for (k, v) in extra {
        config.insert(format!("cluster.{k}"), *v);
    }
    let metrics = RecordingSink::new();
    let spans = RecordingObserver::new();
    let mut baseplate = Baseplate::new(config)
        .with_metrics_sink(Arc::new(metrics.clone()))
        .unwrap();
    baseplate.register(Arc::new(spans.clone()));
    baseplate
        .configure_context(ContextSpec::new().client("cluster", ClusterRedisClient::new()))
        .unwrap();
    Fixture {
        baseplate,
        spans,
        metrics,
    }
}

impl Fixture {
    /// Has the cluster client report its runtime metrics (pool size, sockets, in use).
    fn report_runtime_metrics(&self) {
        let (_, factory) = self
            .baseplate
            .factories()
            .find(|(name, _)| *name == "cluster")
            .expect("the fixture configures client `cluster`");
        factory.report_runtime_metrics(&self.metrics);
    }

    /// The cluster client's runtime gauge `name`, as last reported.
    fn runtime_gauge(&self, name: &str) -> Option<f64> {
        self.metrics
            .gauge_value(name, &[(names::LABEL_CLIENT, "cluster")])
    }
}

fn handle(f: &Fixture) -> MonitoredRedisConnection {
    f.baseplate.make_context_object().redis("cluster").unwrap()
}

/// A synchronous cluster connection for checks from outside the client under test.
fn admin(cluster: &RedisCluster) -> redis::cluster::ClusterConnection {
    redis::cluster::ClusterClient::new(vec![cluster.seed_url()])
        .unwrap()
        .get_connection()
        .unwrap()
}

/// `calls` of `cmdstat_<command>` in a node's `INFO commandstats`.
fn command_calls(port: u16, command: &str) -> u64 {
    let info: String = query(port, &["INFO", "commandstats"]);
    let prefix = format!("cmdstat_{command}:calls=");
    info.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_slot_is_reachable_with_cluster_spans_and_metrics() {
    let cluster = tokio::task::spawn_blocking(shared_cluster).await.unwrap();
    let f = fixture(&cluster, &[]);

    // One key per hash slot.
    let mut keys = vec![None; 16384];
    let mut missing = keys.len();
    let mut i = 0u64;
    while missing > 0 {
        let key = format!("slot-key-{i}");
        let entry = &mut keys[usize::from(slot(&key))];
        if entry.is_none() {
            *entry = Some(key);
            missing -= 1;
        }
        i += 1;
    }
    let keys: Vec<String> = keys.into_iter().map(Option::unwrap).collect();
    assert_eq!(
        query::<u16>(cluster.seed_port(), &["CLUSTER", "KEYSLOT", &keys[1234]]),
        1234
    );

    let tasks: Vec<_> = keys
        .chunks(1024)
        .map(|chunk| {
            let chunk = chunk.to_vec();
            let mut redis = handle(&f);
            tokio::spawn(async move {
                for key in &chunk {
                    let _: () = redis.set(key, key).await.unwrap();
                }
                for key in &chunk {
                    let value: String = redis.get(key).await.unwrap();
                    assert_eq!(&value, key);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let primaries = cluster.primaries();
    let stored: Vec<u64> = primaries
        .iter()
        .map(|p| query::<u64>(p.port, &["DBSIZE"]))
        .collect();
    assert!(stored.iter().all(|&n| n > 0), "{stored:?}");
    assert!(stored.iter().sum::<u64>() >= 16384, "{stored:?}");

    // Within a request: the same span names as the standalone client.
    let mut context = f.baseplate.make_context_object();
    let span = f.baseplate.make_server_span(&mut context, "request", None);
    let mut redis = context.redis("cluster").unwrap();
    let _: () = redis.set("spanned", "1").await.unwrap();
    let value: String = redis.get("spanned").await.unwrap();
    assert_eq!(value, "1");
    let err = redis::cmd("INCR")
        .arg(&keys[0])
        .query_async::<i64>(&mut redis)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not an integer"), "{err}");
    let request_id = span.span_id();
    span.finish();
    let set = f.spans.find("cluster.SET").unwrap();
    assert_eq!(set.parent_id, Some(request_id));
    assert!(set.finished && set.error.is_none());
    assert!(f.spans.find("cluster.GET").unwrap().error.is_none());
    assert!(f.spans.find("cluster.INCR").unwrap().error.is_some());
    // Lifecycle telemetry: the shared cluster connection was opened, and loaded its slot map.
    let pool = [(names::LABEL_POOL, "cluster")];
    assert!(
        f.metrics
            .counter_value(names::CONNECTIONS_OPENED_TOTAL, &pool)
            >= 1
    );
    assert!(
        f.metrics
            .counter_value(names::CLUSTER_TOPOLOGY_REFRESHES_TOTAL, &pool)
            >= 1
    );

    let labels = [
        (names::LABEL_COMMAND, "get"),
        (names::LABEL_DATABASE, "0"),
        (names::LABEL_CLIENT_NAME, "cluster"),
        (names::LABEL_TYPE, "cluster"),
        (names::LABEL_SUCCESS, "true"),
    ];
    assert_eq!(
        f.metrics.counter_value(names::REQUESTS_TOTAL, &labels),
        16384 + 1
    );
    let failed = [
        (names::LABEL_COMMAND, "incr"),
        (names::LABEL_TYPE, "cluster"),
        (names::LABEL_SUCCESS, "false"),
    ];
    assert_eq!(f.metrics.counter_value(names::REQUESTS_TOTAL, &failed), 1);
    assert_eq!(
        f.metrics.gauge_value(
            names::ACTIVE_REQUESTS,
            &[
                (names::LABEL_TYPE, "cluster"),
                (names::LABEL_COMMAND, "set")
            ]
        ),
        Some(0.0)
    );
    assert_eq!(
        f.metrics.histogram_count(
            names::LATENCY_SECONDS,
            &[
                (names::LABEL_TYPE, "cluster"),
                (names::LABEL_COMMAND, "set")
            ]
        ),
        16384 + 1
    );

    // Runtime metrics: the limit, and the shared connection's one socket per node.
    f.report_runtime_metrics();
    assert_eq!(f.runtime_gauge(names::RUNTIME_POOL_SIZE), Some(50.0));
    assert_eq!(
        f.runtime_gauge(names::RUNTIME_POOL_OPEN_CONNECTIONS),
        Some(6.0)
    );
    assert_eq!(
        f.metrics.gauge_value(
            names::POOL_OPEN_CONNECTIONS,
            &[(names::LABEL_POOL, "cluster")]
        ),
        Some(6.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn named_pipeline_on_one_slot_is_one_span_and_one_measurement() {
    let cluster = tokio::task::spawn_blocking(shared_cluster).await.unwrap();
    let f = fixture(&cluster, &[]);
    let mut context = f.baseplate.make_context_object();
    let span = f.baseplate.make_server_span(&mut context, "request", None);
    let mut redis = context.redis("cluster").unwrap();

    let mut pipe = redis.pipeline("profile");
    pipe.set("{user:7}:name", "ada")
        .ignore()
        .incr("{user:7}:visits", 1)
        .get("{user:7}:name");
    let (count, value): (i64, String) = pipe.query_async(&mut redis).await.unwrap();
    let mut pipe = redis.pipeline("plain").non_atomic();
    pipe.incr("{user:7}:visits", 1);
    let (plain,): (i64,) = pipe.query_async(&mut redis).await.unwrap();
    span.finish();

    assert_eq!((count, value.as_str(), plain), (1, "ada", 2));
    assert_eq!(
        f.spans.names(),
        [
            "request",
            "cluster.pipeline_profile",
            "cluster.pipeline_plain"
        ]
    );
    let labels = [
        (names::LABEL_COMMAND, "pipeline"),
        (names::LABEL_TYPE, "cluster"),
        (names::LABEL_SUCCESS, "true"),
    ];
    assert_eq!(f.metrics.counter_value(names::REQUESTS_TOTAL, &labels), 2);

    // Keys of different slots cannot share a pipeline: an error, measured as a failure.
    let mut pipe = redis.pipeline("cross");
    pipe.set("{a}x", 1).set("{b}x", 1);
    let err = pipe.query_async::<()>(&mut redis).await;
    assert!(err.is_err());
    let failed = [
        (names::LABEL_COMMAND, "pipeline"),
        (names::LABEL_SUCCESS, "false"),
    ];
    assert_eq!(f.metrics.counter_value(names::REQUESTS_TOTAL, &failed), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reads_go_to_replicas_only_when_enabled() {
    let cluster = tokio::task::spawn_blocking(shared_cluster).await.unwrap();
    let replicas: Vec<u16> = cluster.replicas().iter().map(|n| n.port).collect();
    let primaries: Vec<u16> = cluster.primaries().iter().map(|n| n.port).collect();
    assert_eq!((replicas.len(), primaries.len()), (3, 3));
    let calls = |ports: &[u16], command: &str| -> u64 {
        ports.iter().map(|&p| command_calls(p, command)).sum()
    };
    // Each client reads with a command no other test uses, so counts are its own.
    let before = (calls(&replicas, "strlen"), calls(&primaries, "strlen"));
    let f = fixture(&cluster, &[("read_from_replicas", "false")]);
    let mut redis = handle(&f);
    for i in 0..100 {
        let _: i64 = redis.strlen(format!("replica-read-{i}")).await.unwrap();
    }
    let after = (calls(&replicas, "strlen"), calls(&primaries, "strlen"));
    assert_eq!(after.0 - before.0, 0, "replicas served reads");
    assert_eq!(after.1 - before.1, 100);

    let before = calls(&replicas, "getrange");
    let f = fixture(&cluster, &[]);
    let mut redis = handle(&f);
    for i in 0..100 {
        let _: String = redis
            .getrange(format!("replica-read-{i}"), 0, 1)
            .await
            .unwrap();
    }
    let served = calls(&replicas, "getrange") - before;
    println!("read_from_replicas=true: replicas served {served} of 100 reads");
    assert!(served > 0, "no read reached a replica");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hot_keys_are_counted_and_tracking_failures_are_ignored() {
    let cluster = tokio::task::spawn_blocking(shared_cluster).await.unwrap();
    let f = fixture(
        &cluster,
        &[
            ("track_key_reads_sample_rate", "1"),
            ("track_key_writes_sample_rate", "1.0"),
        ],
    );
    let mut redis = handle(&f);
    let _: () = redis.set("hk:set", "v").await.unwrap();
    let _: Option<String> = redis.get("hk:get").await.unwrap();
    let _: i64 = redis.hset("hk:hash", "f", "v").await.unwrap();
    let _: Option<String> = redis.hget("hk:hash", "f").await.unwrap();
    let _: i64 = redis.lpush("hk:list", "x").await.unwrap();
    let _: Vec<String> = redis.zrange("hk:z", 0, -1).await.unwrap();
    let _: () = redis
        .mset(&[("{hk}m1", "1"), ("{hk}m2", "2")])
        .await
        .unwrap();
    let _: Vec<Option<String>> = redis.mget(&["{hk}m1", "{hk}m2"]).await.unwrap();
    let _: i64 = redis.exists(&["{hk}m1", "{hk}m2"]).await.unwrap();
    let _: i64 = redis.del(&["{hk}m1", "{hk}m2"]).await.unwrap();
    let _: String = redis::cmd("PING").query_async(&mut redis).await.unwrap();
    // Every command queued in a pipeline is tracked too, as in baseplate.py; a cluster
    // pipeline is a plain pipeline, not a transaction.
    let mut pipe = redis.pipeline("tracked");
    assert!(!pipe.is_transaction());
    pipe.set("{hk}p-set", "v")
        .ignore()
        .get("{hk}p-get")
        .mget(&["{hk}p-get", "{hk}m1"]);
    let _: (Option<String>, Vec<Option<String>>) = pipe.query_async(&mut redis).await.unwrap();

    let expected_reads = [
        ("hk:get", 1.0),
        ("hk:hash", 1.0),
        ("hk:z", 1.0),
        ("{hk}m1", 3.0),
        ("{hk}m2", 2.0),
        ("{hk}p-get", 2.0),
    ];
    let expected_writes = [
        ("hk:set", 1.0),
        ("hk:hash", 1.0),
        ("hk:list", 1.0),
        ("{hk}m1", 2.0),
        ("{hk}m2", 2.0),
        ("{hk}p-set", 1.0),
    ];
    let mut admin = tokio::task::spawn_blocking({
        let cluster = cluster.clone();
        move || admin(&cluster)
    })
    .await
    .unwrap();
    let score = |admin: &mut redis::cluster::ClusterConnection, set: &str, key: &str| {
        redis::cmd("ZSCORE")
            .arg(set)
            .arg(key)
            .query::<Option<f64>>(admin)
            .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let reads_done = expected_reads
            .iter()
            .all(|(k, n)| score(&mut admin, HOT_KEY_READS_SET, k) == Some(*n));
        let writes_done = expected_writes
            .iter()
            .all(|(k, n)| score(&mut admin, HOT_KEY_WRITES_SET, k) == Some(*n));
        if reads_done && writes_done {
            break;
        }
        assert!(Instant::now() < deadline, "hot keys not counted in 5 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Only keys are counted: not values, nor keys of other families.
    let reads: Vec<String> = redis::cmd("ZRANGE")
        .arg(HOT_KEY_READS_SET)
        .arg(0)
        .arg(-1)
        .query(&mut admin)
        .unwrap();
    assert_eq!(reads.len(), expected_reads.len(), "{reads:?}");
    let writes: Vec<String> = redis::cmd("ZRANGE")
        .arg(HOT_KEY_WRITES_SET)
        .arg(0)
        .arg(-1)
        .query(&mut admin)
        .unwrap();
    assert_eq!(writes.len(), expected_writes.len(), "{writes:?}");
    for set in [HOT_KEY_READS_SET, HOT_KEY_WRITES_SET] {
        let ttl: i64 = redis::cmd("TTL").arg(set).query(&mut admin).unwrap();
        let day = HOT_KEY_TTL.as_secs() as i64;
        assert!(ttl > day - 60 && ttl <= day, "{set} ttl {ttl}");
    }

    // Tracking that fails (the set is not a sorted set) never fails the command.
    let _: () = redis::cmd("SET")
        .arg(HOT_KEY_READS_SET)
        .arg("not a sorted set")
        .query(&mut admin)
        .unwrap();
    for _ in 0..10 {
        let value: Option<String> = redis.get("hk:get").await.unwrap();
        assert_eq!(value, None);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let kind: String = redis::cmd("TYPE")
        .arg(HOT_KEY_READS_SET)
        .query(&mut admin)
        .unwrap();
    assert_eq!(kind, "string");
    let failed = [(names::LABEL_SUCCESS, "false")];
    assert_eq!(f.metrics.counter_value(names::REQUESTS_TOTAL, &failed), 0);
    let _: () = redis::cmd("DEL")
        .arg(HOT_KEY_READS_SET)
        .query(&mut admin)
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn blocking_commands_get_a_dedicated_connection() {
    let cluster = tokio::task::spawn_blocking(shared_cluster).await.unwrap();
    let f = fixture(&cluster, &[("socket_timeout", "500 milliseconds")]);
    let mut waiter = handle(&f);
    let mut pusher = handle(&f);

    // Longer than socket_timeout: the command's own timeout is added.
    let started = Instant::now();
    let nothing: Option<(String, String)> = waiter.blpop("{bq}empty", 0.8).await.unwrap();
    assert_eq!(nothing, None);
    assert!(started.elapsed() >= Duration::from_millis(700));

    let popped = tokio::spawn(async move {
        let popped: Option<(String, String)> = waiter.blpop("{bq}jobs", 5.0).await.unwrap();
        popped
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _: i64 = pusher.rpush("{bq}jobs", "job-1").await.unwrap();
    let popped = tokio::time::timeout(Duration::from_secs(5), popped)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(popped, Some(("{bq}jobs".to_string(), "job-1".to_string())));

    // The dedicated connection was given back clean and kept: shared + 1 dedicated, 6
    // sockets each.
    f.report_runtime_metrics();
    assert_eq!(
        f.runtime_gauge(names::RUNTIME_POOL_OPEN_CONNECTIONS),
        Some(12.0)
    );
    assert_eq!(f.runtime_gauge(names::RUNTIME_POOL_IN_USE), Some(0.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn max_connections_counts_sockets_on_every_node() {
    let cluster = tokio::task::spawn_blocking(shared_cluster).await.unwrap();
    // 12 sockets on 6 nodes: the shared cluster connection and one dedicated one.
    let f = fixture(
        &cluster,
        &[
            ("max_connections", "12"),
            ("timeout", "300 milliseconds"),
            ("skip_full_coverage_check", "false"),
        ],
    );
    let mut first = handle(&f);
    let mut second = handle(&f);
    let blocked = tokio::spawn(async move {
        let popped: Option<(String, String)> = first.blpop("{limit}a", 1.5).await.unwrap();
        popped
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let err = second
        .blpop::<_, Option<(String, String)>>("{limit}b", 1.0)
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_millis(1000));
    assert!(err.to_string().contains("max_connections"), "{err}");
    assert_eq!(blocked.await.unwrap(), None);

    // Once the dedicated connection is back, the next blocking command gets it.
    let nothing: Option<(String, String)> = second.blpop("{limit}b", 0.1).await.unwrap();
    assert_eq!(nothing, None);
    f.report_runtime_metrics();
    assert_eq!(f.runtime_gauge(names::RUNTIME_POOL_SIZE), Some(12.0));
    assert_eq!(
        f.runtime_gauge(names::RUNTIME_POOL_OPEN_CONNECTIONS),
        Some(12.0)
    );
}

/// One command of a load loop: when it started and ended, and whether it worked.
#[derive(Debug, Clone)]
struct Op {
    started: Instant,
    ended: Instant,
    ok: bool,
    key: String,
    error: Option<String>,
}

/// Runs SET/GET pairs on `keys` from `tasks` handles until `stop`; GET must return what
/// this task just wrote. Returns every command's outcome.
async fn load(
    f: &Fixture,
    keys: Vec<String>,
    tasks: usize,
    stop: Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<(Vec<Op>, u64)>> {
    (0..tasks)
        .map(|t| {
            let mut redis = handle(f);
            let keys: Vec<String> = keys.iter().skip(t).step_by(tasks).cloned().collect();
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut ops = Vec::new();
                let mut wrong_values = 0;
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let key = &keys[(n as usize) % keys.len()];
                    let value = format!("{n}");
                    let started = Instant::now();
                    let set: redis::RedisResult<()> = redis.set(key, &value).await;
                    ops.push(Op {
                        started,
                        ended: Instant::now(),
                        ok: set.is_ok(),
                        key: key.clone(),
                        error: set.as_ref().err().map(|e| e.to_string()),
                    });
                    if set.is_ok() {
                        let started = Instant::now();
                        let got: redis::RedisResult<Option<String>> = redis.get(key).await;
                        if matches!(&got, Ok(Some(v)) if *v != value) {
                            wrong_values += 1;
                        }
                        ops.push(Op {
                            started,
                            ended: Instant::now(),
                            ok: got.is_ok(),
                            key: key.clone(),
                            error: got.as_ref().err().map(|e| e.to_string()),
                        });
                    } else {
                        // Do not spin on a dead shard.
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    n += 1;
                }
                (ops, wrong_values)
            })
        })
        .collect()
}

async fn collect(tasks: Vec<tokio::task::JoinHandle<(Vec<Op>, u64)>>) -> (Vec<Op>, u64) {
    let mut all = Vec::new();
    let mut wrong = 0;
    for task in tasks {
        let (ops, w) = task.await.unwrap();
        all.extend(ops);
        wrong += w;
    }
    (all, wrong)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slot_migration_under_load_loses_no_command() {
    let cluster = Arc::new(
        tokio::task::spawn_blocking(RedisCluster::start)
            .await
            .unwrap(),
    );
    // Reads on primaries, so that every GET must see the SET before it.
    let f = fixture(
        &cluster,
        &[
            ("read_from_replicas", "false"),
            ("socket_timeout", "2 seconds"),
        ],
    );
    let keys: Vec<String> = (0..40).map(|i| format!("{{moving}}:{i}")).collect();
    let moving = slot(&keys[0]);
    let source = cluster.owner_of(moving);
    let target = cluster
        .primaries()
        .into_iter()
        .find(|p| p.id != source.id)
        .unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let tasks = load(&f, keys.clone(), 8, stop.clone()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let migration = tokio::task::spawn_blocking({
        let cluster = cluster.clone();
        let target = target.clone();
        move || {
            let started = Instant::now();
            let slot = moving.to_string();
            let primaries = cluster.primaries();
            let _: () = query(
                target.port,
                &["CLUSTER", "SETSLOT", &slot, "IMPORTING", &source.id],
            );
            let _: () = query(
                source.port,
                &["CLUSTER", "SETSLOT", &slot, "MIGRATING", &target.id],
            );
            // Let the load run against a half-migrated slot (ASK redirections).
            std::thread::sleep(Duration::from_millis(300));
            let mut batches = 0;
            loop {
                let keys: Vec<String> =
                    query(source.port, &["CLUSTER", "GETKEYSINSLOT", &slot, "5"]);
                if keys.is_empty() {
                    break;
                }
                let mut migrate = redis::cmd("MIGRATE");
                migrate
                    .arg("127.0.0.1")
                    .arg(target.port)
                    .arg("")
                    .arg(0)
                    .arg(5000)
                    .arg("KEYS")
                    .arg(&keys);
                let _: () = migrate
                    .query(&mut common::cluster::admin(source.port))
                    .unwrap();
                batches += 1;
                assert!(batches < 1000, "migration does not finish");
                std::thread::sleep(Duration::from_millis(30));
            }
            for node in [&target, &source] {
                let _: () = query(
                    node.port,
                    &["CLUSTER", "SETSLOT", &slot, "NODE", &target.id],
                );
            }
            for node in primaries
                .iter()
                .filter(|p| p.id != source.id && p.id != target.id)
            {
                let _: () = query(
                    node.port,
                    &["CLUSTER", "SETSLOT", &slot, "NODE", &target.id],
                );
            }
            (started, Instant::now(), batches)
        }
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let (ops, wrong_values) = collect(tasks).await;

    let (started, ended, batches) = migration;
    let during = ops
        .iter()
        .filter(|op| op.started >= started && op.ended <= ended)
        .count();
    let failed = ops.iter().filter(|op| !op.ok).count();
    let slowest = ops
        .iter()
        .map(|op| op.ended - op.started)
        .max()
        .unwrap_or_default();
    println!(
        "slot migration: slot {moving} moved in {:?} ({batches} MIGRATE batches); \
         {} commands in all, {during} during the migration, {failed} failed, \
         {wrong_values} wrong values, slowest command {slowest:?}",
        ended - started,
        ops.len()
    );
    let errors: std::collections::BTreeSet<&str> =
        ops.iter().filter_map(|op| op.error.as_deref()).collect();
    assert_eq!(
        failed, 0,
        "commands failed during the migration: {errors:?}"
    );
    assert_eq!(wrong_values, 0);
    assert!(during > 0, "no command ran during the migration");
    let owner = tokio::task::spawn_blocking({
        let cluster = cluster.clone();
        move || {
            wait_until(Duration::from_secs(10), "slot moved", || {
                cluster.owner_of(moving).id == target.id
            });
            query::<u64>(
                target.port,
                &["CLUSTER", "COUNTKEYSINSLOT", &moving.to_string()],
            )
        }
    })
    .await
    .unwrap();
    assert_eq!(owner, keys.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn primary_failover_under_load_recovers() {
    let cluster = tokio::task::spawn_blocking(RedisCluster::start)
        .await
        .unwrap();
    let f = fixture(
        &cluster,
        &[
            ("read_from_replicas", "false"),
            ("socket_timeout", "1 second"),
        ],
    );
    let keys: Vec<String> = (0..60).map(|i| format!("failover:{i}")).collect();
    let victim = cluster.owner_of(slot(&keys[0]));
    let heir = cluster
        .replicas()
        .into_iter()
        .find(|r| r.primary_id.as_deref() == Some(victim.id.as_str()))
        .unwrap();
    let in_victim = |key: &str| {
        let s = slot(key);
        victim.slots.iter().any(|&(a, b)| (a..=b).contains(&s))
    };

    let stop = Arc::new(AtomicBool::new(false));
    let tasks = load(&f, keys.clone(), 6, stop.clone()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let killed = Instant::now();
    let cluster = Arc::new(std::sync::Mutex::new(cluster));
    let promoted = tokio::task::spawn_blocking({
        let cluster = cluster.clone();
        let heir = heir.id.clone();
        move || {
            let mut cluster = cluster.lock().unwrap();
            cluster.kill(victim.port);
            wait_until(Duration::from_secs(20), "replica promoted", || {
                cluster
                    .primaries()
                    .iter()
                    .any(|p| p.id == heir && !p.slots.is_empty())
            });
            Instant::now()
        }
    })
    .await
    .unwrap();

    // Recovered: a command on the dead primary's slots, sent after the promotion, works.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut redis = handle(&f);
    let victim_key = keys.iter().find(|k| in_victim(k)).unwrap().clone();
    loop {
        if redis.set::<_, _, ()>(&victim_key, "after").await.is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "the client did not recover");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let recovered = Instant::now();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, Ordering::Relaxed);
    let (ops, wrong_values) = collect(tasks).await;

    let after_kill: Vec<&Op> = ops.iter().filter(|op| op.ended >= killed).collect();
    let failures: Vec<&&Op> = after_kill.iter().filter(|op| !op.ok).collect();
    let failed_elsewhere = failures.iter().filter(|op| !in_victim(&op.key)).count();
    let first_failure = failures.iter().map(|op| op.ended).min();
    let last_failure = failures.iter().map(|op| op.ended).max();
    // Outage: from the kill until the dead shard served a command sent after the kill.
    let back = after_kill
        .iter()
        .filter(|op| op.ok && in_victim(&op.key) && op.started > killed)
        .map(|op| op.ended)
        .min()
        .unwrap_or(recovered);
    let slowest = after_kill
        .iter()
        .map(|op| op.ended - op.started)
        .max()
        .unwrap_or_default();
    let since_kill = |t: Option<Instant>| t.map(|t| t - killed);
    println!(
        "primary failover: replica promoted {:?} after the kill; dead shard served again \
         {:?} after the kill; {} commands after the kill, {} failed ({failed_elsewhere} on \
         other shards), failures from {:?} to {:?} after the kill; slowest command \
         {slowest:?}; {wrong_values} wrong values",
        promoted - killed,
        back - killed,
        after_kill.len(),
        failures.len(),
        since_kill(first_failure),
        since_kill(last_failure),
    );
    // Every command sent well after the promotion works.
    let settled = recovered + Duration::from_millis(200);
    let late_failures = ops
        .iter()
        .filter(|op| op.started > settled && !op.ok)
        .count();
    let errors: std::collections::BTreeSet<&str> =
        ops.iter().filter_map(|op| op.error.as_deref()).collect();
    println!("primary failover: errors seen: {errors:?}");
    assert_eq!(late_failures, 0);
    assert!(ops
        .iter()
        .any(|op| op.started > settled && in_victim(&op.key) && op.ok));
    assert_eq!(failed_elsewhere, 0, "other shards were disturbed");
}
