//! Migration fidelity: an INI written as a baseplate.py service writes it (environment
//! variables, mixed-case option names, keys of other tools, every cluster key) loads
//! unchanged, and the clients it declares serve commands on real private servers with
//! baseplate.py's metric names, labels, gauge meanings and latency buckets.

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use baseplate_redis::config::RawConfig;
use baseplate_redis::pool::{HOT_KEY_READS_SET, HOT_KEY_WRITES_SET};
use baseplate_redis::sink::{names, prometheus, FacadeSink, RecordingSink};
use baseplate_redis::{Baseplate, ClusterRedisClient, ContextSpec, RedisClient};
use common::cluster::{query, RedisCluster};
use common::{logged, RedisServer};
use redis::AsyncCommands;

/// A service's INI as baseplate.py reads it: `[DEFAULT]`, comments, `${VAR}` and `$VAR`,
/// option names in any case, and keys other code reads next to the clients'.
const SERVICE_INI: &str = "\
[DEFAULT]
debug = false

[app:main]
factory = my_service:make_processor

# required: what redis instance to connect to
Cache.URL = redis://${MIGRATION_HOST}:$MIGRATION_PORT/3   # env vars, as expandvars expands them
cache.Max_Connections = 7
cache.socket_connect_timeout = 3 seconds
CACHE.socket_timeout = 200 milliseconds
# read by the service's own code, not by the client: baseplate.py ignores them
cache.key_prefix = svc:
cache.health_check_interval = 5

sessions.url = redis://${MIGRATION_HOST}:${MIGRATION_PORT}/4
sessions.max_connections = 5
sessions.Retry_On_Timeout = $MIGRATION_SURELY_UNSET_VARIABLE

queue.url = redis://$MIGRATION_HOST:${MIGRATION_PORT}/5
queue.max_conections = 3   # a typo: ignored, as baseplate.py ignores it, but warned about

[server:main]
factory = baseplate.server.thrift
";

/// Points the INI's variables at `server` and writes it to a file in the server's directory.
fn write_service_ini(server: &RedisServer) -> PathBuf {
    // Each test binary is its own process; every test here sets the same values.
    std::env::set_var("MIGRATION_HOST", "127.0.0.1");
    std::env::set_var("MIGRATION_PORT", server.port().to_string());
    let path = server.dir().join("service.ini");
    std::fs::write(&path, SERVICE_INI).unwrap();
    path
}

/// The clients of the INI, declared as baseplate.py services declare them.
fn service_spec() -> ContextSpec {
    ContextSpec::new()
        // client_name: sent with CLIENT SETNAME, and the redis_client_name label.
        .client("cache", RedisClient::new().client_name("svc-cache"))
        // redis_client_name: the label only (for proxies refusing CLIENT SETNAME).
        .client(
            "sessions",
            RedisClient::new()
                .client_name("svc-sessions")
                .redis_client_name("sessions-label"),
        )
        // Neither: the context name.
        .client("queue", RedisClient::new())
}

/// The labels of one standalone command measurement.
fn labels<'a>(command: &'a str, db: &'a str, client_name: &'a str) -> [(&'static str, &'a str); 5] {
    [
        (names::LABEL_COMMAND, command),
        (names::LABEL_DATABASE, db),
        (names::LABEL_CLIENT_NAME, client_name),
        (names::LABEL_TYPE, "standalone"),
        (names::LABEL_SUCCESS, "true"),
    ]
}

#[tokio::test]
async fn a_baseplate_py_ini_serves_with_the_original_labels_and_gauges() {
    let server = RedisServer::start();
    let path = write_service_ini(&server);
    let config = RawConfig::from_ini_file(&path, "app:main").unwrap();
    assert_eq!(
        config.get("cache.url"),
        Some(server.url(3).as_str()),
        "{config:?}"
    );
    assert_eq!(
        config.get("sessions.retry_on_timeout"),
        Some("$MIGRATION_SURELY_UNSET_VARIABLE")
    );
    assert_eq!(config.get("debug"), Some("false"));

    let metrics = RecordingSink::new();
    let mut baseplate = Baseplate::new(config)
        .with_metrics_sink(Arc::new(metrics.clone()))
        .unwrap();
    let (configured, log) = logged(|| baseplate.configure_context(service_spec()));
    configured.unwrap();

    // Keys outside the clients' specs: one warning each, naming the closest known key;
    // keys outside every client's prefix (`debug`, `factory`) are none of their business.
    let warnings: Vec<&str> = log.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warnings.len(), 4, "{log}");
    for (key, closest) in [
        ("cache.key_prefix", "cache."),
        ("cache.health_check_interval", "cache."),
        ("sessions.retry_on_timeout", "sessions."),
        ("queue.max_conections", "queue.max_connections"),
    ] {
        let line = warnings
            .iter()
            .find(|l| l.contains(&format!("unknown configuration key {key} ignored")))
            .unwrap_or_else(|| panic!("no warning about {key}:\n{log}"));
        assert!(
            line.contains(&format!("closest known key: {closest}")),
            "{line}"
        );
    }
    assert!(!log.contains("svc:"), "values are never logged:\n{log}");

    // A request: commands on each client.
    let context = baseplate.make_context_object();
    let mut cache = context.redis("cache").unwrap();
    let _: () = cache.set("greeting", "hello").await.unwrap();
    let greeting: String = cache.get("greeting").await.unwrap();
    assert_eq!(greeting, "hello");
    let mut sessions = context.redis("sessions").unwrap();
    let mut pipe = sessions.pipeline("touch");
    // Standalone pipelines are transactions by default, as baseplate.py's.
    assert!(pipe.is_transaction());
    pipe.set("session:1", "ada").ignore().incr("visits", 1);
    let (visits,): (i64,) = pipe.query_async(&mut sessions).await.unwrap();
    assert_eq!(visits, 1);
    let mut queue = context.redis("queue").unwrap();
    let _: i64 = queue.rpush("jobs", "job-1").await.unwrap();

    // The data went to the databases the expanded URLs name.
    let mut admin = server.admin();
    for (db, key) in [(3, "greeting"), (4, "session:1"), (5, "jobs")] {
        let _: () = redis::cmd("SELECT").arg(db).query(&mut admin).unwrap();
        let exists: bool = redis::cmd("EXISTS").arg(key).query(&mut admin).unwrap();
        assert!(exists, "{key} in db {db}");
    }
    // client_name was sent with CLIENT SETNAME; redis_client_name was not.
    let clients: String = server.query(&["CLIENT", "LIST"]);
    assert!(clients.contains("name=svc-cache"), "{clients}");
    assert!(clients.contains("name=svc-sessions"), "{clients}");
    assert!(!clients.contains("name=sessions-label"), "{clients}");

    // Metrics with baseplate.py's labels; redis_client_name by its precedence.
    for (command, db, client, count) in [
        ("set", "3", "svc-cache", 1),
        ("get", "3", "svc-cache", 1),
        ("pipeline", "4", "sessions-label", 1),
        ("rpush", "5", "queue", 1),
    ] {
        let labels = labels(command, db, client);
        assert_eq!(
            metrics.counter_value(names::REQUESTS_TOTAL, &labels),
            count,
            "{labels:?}"
        );
        assert_eq!(
            metrics.histogram_count(names::LATENCY_SECONDS, &labels),
            count,
            "{labels:?}"
        );
        assert_eq!(
            metrics.gauge_value(names::ACTIVE_REQUESTS, &labels[..4]),
            Some(0.0),
            "{labels:?}"
        );
    }

    // Pool gauges with the original's meanings: one connection open, none in use.
    baseplate.report_runtime_metrics();
    for (name, max) in [("cache", 7.0), ("sessions", 5.0), ("queue", 50.0)] {
        let pool = [(names::LABEL_POOL, name)];
        let client = [(names::LABEL_CLIENT, name)];
        let gauge = |metric, labels: &[(&str, &str)]| metrics.gauge_value(metric, labels);
        assert_eq!(gauge(names::POOL_MAX_SIZE, &pool), Some(max), "{name}");
        // idle = free slots (max - in use); active = open connections.
        assert_eq!(
            gauge(names::POOL_IDLE_CONNECTIONS, &pool),
            Some(max),
            "{name}"
        );
        assert_eq!(
            gauge(names::POOL_ACTIVE_CONNECTIONS, &pool),
            Some(1.0),
            "{name}"
        );
        assert_eq!(
            gauge(names::RUNTIME_POOL_SIZE, &client),
            Some(max),
            "{name}"
        );
        assert_eq!(
            gauge(names::RUNTIME_POOL_IN_USE, &client),
            Some(0.0),
            "{name}"
        );
        assert_eq!(
            gauge(names::RUNTIME_POOL_OPEN_AND_AVAILABLE, &client),
            Some(1.0),
            "{name}"
        );
    }
}

#[tokio::test]
async fn the_prometheus_exposition_matches_a_python_service() {
    let server = RedisServer::start();
    let path = write_service_ini(&server);
    let config = RawConfig::from_ini_file(&path, "app:main").unwrap();
    let recorder = prometheus::recorder();
    let handle = recorder.handle();
    let mut baseplate = Baseplate::new(config)
        .with_metrics_sink(Arc::new(FacadeSink::with_recorder(Arc::new(recorder))))
        .unwrap();
    baseplate.configure_context(service_spec()).unwrap();

    let context = baseplate.make_context_object();
    let mut cache = context.redis("cache").unwrap();
    let _: Option<String> = cache.get("missing").await.unwrap();
    // A blocking command holds a connection of its own while the gauges are reported.
    let mut blocked = context.redis("cache").unwrap();
    let blpop = tokio::spawn(async move {
        let _: Option<(String, String)> = blocked.blpop("never", 2.0).await.unwrap();
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    let text = loop {
        baseplate.report_runtime_metrics();
        let text = handle.render();
        if text.contains(r#"redis_client_pool_in_use_connections{redis_pool="cache"} 1"#) {
            break text;
        }
        assert!(Instant::now() < deadline, "BLPOP never in use:\n{text}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };

    let get = r#"redis_command="get",redis_database="3",redis_client_name="svc-cache",redis_type="standalone",redis_success="true""#;
    assert!(
        text.contains(&format!("redis_client_requests_total{{{get}}} 1")),
        "{text}"
    );
    // baseplate.py's default_latency_buckets, so `le` series of both services aggregate.
    let bounds: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with(&format!("redis_client_latency_seconds_bucket{{{get}")))
        .map(|l| l.split("le=\"").nth(1).unwrap().split('"').next().unwrap())
        .collect();
    assert_eq!(
        bounds,
        [
            "0.0001", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25",
            "0.5", "1", "5", "15", "30", "+Inf"
        ],
        "{text}"
    );
    // Pool gauges: 7 slots, 2 open (shared + BLPOP's own), 1 in use.
    for line in [
        r#"redis_client_pool_max_size{redis_pool="cache"} 7"#,
        r#"redis_client_pool_idle_connections{redis_pool="cache"} 6"#,
        r#"redis_client_pool_active_connections{redis_pool="cache"} 2"#,
        "# HELP redis_client_pool_active_connections Number of open connections in this redis client connection pool",
        "# HELP redis_client_latency_seconds Latency histogram for calls made by clients",
    ] {
        assert!(text.contains(line), "{line}:\n{text}");
    }
    blpop.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_baseplate_py_cluster_ini_serves_with_the_original_behaviour() {
    let cluster = tokio::task::spawn_blocking(RedisCluster::start)
        .await
        .unwrap();
    std::env::set_var("MIGRATION_CLUSTER_SEED", cluster.seed_url());
    // Every key of baseplate.py's cluster spec, in the case and form services write them.
    let text = "\
[app:main]
Cluster.URL = ${MIGRATION_CLUSTER_SEED}
cluster.max_connections = 30
cluster.max_connections_per_node = false
cluster.Timeout = 2 seconds
cluster.socket_connect_timeout = 1 second
cluster.socket_timeout = 1 second
cluster.read_from_replicas = false
cluster.skip_full_coverage_check = true
cluster.nodemanager_follow_cluster = true
cluster.decode_responses = true
cluster.track_key_reads_sample_rate = 1.0
cluster.track_key_writes_sample_rate = 1
Named.URL = ${MIGRATION_CLUSTER_SEED}
";
    let config = RawConfig::from_ini_str(text, "app:main").unwrap();
    let metrics = RecordingSink::new();
    let mut baseplate = Baseplate::new(config)
        .with_metrics_sink(Arc::new(metrics.clone()))
        .unwrap();
    let (configured, log) = logged(|| {
        baseplate.configure_context(
            ContextSpec::new()
                .client(
                    "cluster",
                    // redis_client_name wins over client_name, as in baseplate.py.
                    ClusterRedisClient::new()
                        .client_name("cluster-setname")
                        .redis_client_name("cluster-cache"),
                )
                // client_name alone is the label.
                .client(
                    "named",
                    ClusterRedisClient::new().client_name("named-cache"),
                ),
        )
    });
    configured.unwrap();
    assert!(!log.contains("WARN"), "every key is known:\n{log}");

    let context = baseplate.make_context_object();
    let mut redis = context.redis("cluster").unwrap();
    let _: () = redis.set("{user:1}:name", "ada").await.unwrap();
    // A cluster pipeline is a plain pipeline (no MULTI/EXEC), as in baseplate.py.
    let mut pipe = redis.pipeline("profile");
    assert!(!pipe.is_transaction());
    pipe.get("{user:1}:name").set("{user:1}:seen", "1").ignore();
    let (name,): (String,) = pipe.query_async(&mut redis).await.unwrap();
    assert_eq!(name, "ada");

    let labels = |command| {
        [
            (names::LABEL_COMMAND, command),
            (names::LABEL_DATABASE, "0"),
            (names::LABEL_CLIENT_NAME, "cluster-cache"),
            (names::LABEL_TYPE, "cluster"),
            (names::LABEL_SUCCESS, "true"),
        ]
    };
    assert_eq!(
        metrics.counter_value(names::REQUESTS_TOTAL, &labels("set")),
        1
    );
    assert_eq!(
        metrics.counter_value(names::REQUESTS_TOTAL, &labels("pipeline")),
        1
    );
    let mut named = context.redis("named").unwrap();
    let _: Option<String> = named.get("{user:1}:name").await.unwrap();
    let named_get = [
        (names::LABEL_COMMAND, "get"),
        (names::LABEL_DATABASE, "0"),
        (names::LABEL_CLIENT_NAME, "named-cache"),
        (names::LABEL_TYPE, "cluster"),
        (names::LABEL_SUCCESS, "true"),
    ];
    assert_eq!(metrics.counter_value(names::REQUESTS_TOTAL, &named_get), 1);

    // No node ran a MULTI; every command queued in the pipeline was tracked as a hot key.
    let ports: Vec<u16> = cluster.nodes().iter().map(|n| n.port).collect();
    let seed = cluster.seed_url();
    let check = tokio::task::spawn_blocking(move || {
        for port in &ports {
            let stats: String = query(*port, &["INFO", "commandstats"]);
            assert!(!stats.contains("cmdstat_multi"), "node {port}:\n{stats}");
        }
        let mut admin = redis::cluster::ClusterClient::new(vec![seed])
            .unwrap()
            .get_connection()
            .unwrap();
        let mut score = |set: &str, key: &str| -> Option<f64> {
            redis::cmd("ZSCORE")
                .arg(set)
                .arg(key)
                .query(&mut admin)
                .unwrap()
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let counted = (
                score(HOT_KEY_READS_SET, "{user:1}:name"),
                score(HOT_KEY_WRITES_SET, "{user:1}:name"),
                score(HOT_KEY_WRITES_SET, "{user:1}:seen"),
            );
            if counted == (Some(1.0), Some(1.0), Some(1.0)) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "hot keys not counted: {counted:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    check.await.unwrap();
}
