//! End to end: the example service (`examples/service/app.rs`, the very module
//! `examples/service.rs` runs) served over HTTP on a free port against a private
//! `redis-server`, driven with reqwest; then `/metrics` is scraped and checked.
//!
//! The service is built in-process from the example's module rather than by spawning the
//! example's binary: `cargo test --test service_e2e` does not build examples, and a child
//! process would need its port read back from its output. The code served is the same.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use baseplate_redis::sink::names;
use baseplate_redis::span::RecordingObserver;
use common::RedisServer;
use serde_json::Value;

#[path = "../examples/service/app.rs"]
mod app;

const CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/service.ini");

/// One sample of the Prometheus text format: name, labels, value.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses Prometheus text exposition (no escaped quotes in our label values).
fn parse_metrics(text: &str) -> Vec<Sample> {
    let mut samples = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap();
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap(),
        };
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').unwrap();
                let labels = body
                    .split("\",")
                    .filter(|pair| !pair.is_empty())
                    .map(|pair| {
                        let (k, v) = pair.split_once("=\"").unwrap();
                        (k.to_string(), v.trim_end_matches('"').to_string())
                    })
                    .collect();
                (name.to_string(), labels)
            }
            None => (series.to_string(), BTreeMap::new()),
        };
        samples.push(Sample {
            name,
            labels,
            value,
        });
    }
    samples
}

/// The samples named `name` whose labels include `labels`.
fn find<'a>(samples: &'a [Sample], name: &str, labels: &[(&str, &str)]) -> Vec<&'a Sample> {
    samples
        .iter()
        .filter(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .collect()
}

/// The value of the one sample named `name` with `labels`.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    let found = find(samples, name, labels);
    assert_eq!(found.len(), 1, "{name} {labels:?}: {found:?}");
    found[0].value
}

fn command_labels<'a>(command: &'a str, success: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        (names::LABEL_COMMAND, command),
        (names::LABEL_DATABASE, "2"),
        (names::LABEL_CLIENT_NAME, "redis"),
        (names::LABEL_TYPE, names::TYPE_STANDALONE),
        (names::LABEL_SUCCESS, success),
    ]
}

struct Running {
    base: String,
    http: reqwest::Client,
    service: app::Service,
    server_task: tokio::task::JoinHandle<()>,
    spans: RecordingObserver,
}

async fn start_service(redis: &RedisServer) -> Running {
    let config = app::load_config(Path::new(CONFIG), Some(redis.url(2))).unwrap();
    let spans = RecordingObserver::new();
    let service = app::start(config, &[spans.clone().into_observer()]).unwrap();
    // Port 0: the OS picks a free port, so nothing can take it between probe and bind.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let router = service.router.clone();
    let server_task = tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    Running {
        base: format!("http://{address}"),
        http,
        service,
        server_task,
        spans,
    }
}

async fn json(response: reqwest::Response) -> Value {
    serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_serves_requests_and_exports_its_metrics() {
    let redis = RedisServer::start();
    let run = start_service(&redis).await;
    let http = &run.http;
    let base = &run.base;

    // Counters: 3 increments of `visits`, 2 of `likes`, 2 reads.
    for expected in 1..=3 {
        let response = http
            .post(format!("{base}/counters/visits"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(json(response).await["value"], expected);
    }
    for _ in 0..2 {
        let response = http
            .post(format!("{base}/counters/likes"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let visits = json(
        http.get(format!("{base}/counters/visits"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(visits["value"], 3);
    let unknown = json(
        http.get(format!("{base}/counters/nobody"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(unknown["value"], 0);
    // The data really is in the private server, db 2.
    let mut admin = redis.admin();
    redis::cmd("SELECT").arg(2).exec(&mut admin).unwrap();
    let stored: i64 = redis::cmd("GET")
        .arg("counter:visits")
        .query(&mut admin)
        .unwrap();
    assert_eq!(stored, 3, "counter not in db 2 of the private server");

    // Rate limit: 5 per window in fixtures/service.ini; 7 requests → 5 OK, 2 refused.
    let mut statuses = Vec::new();
    for _ in 0..7 {
        let response = http
            .get(format!("{base}/limited/alice"))
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429, 429]);
    let ttl: i64 = redis::cmd("TTL")
        .arg("ratelimit:alice")
        .query(&mut admin)
        .unwrap();
    assert!(
        (1..=10).contains(&ttl),
        "rate-limit window not set: ttl {ttl}"
    );

    // Jobs: 3 queued, each taken by the worker; poll for results (bounded).
    let mut ids = Vec::new();
    for text in ["hello queued world", "one", "a b c d"] {
        let response = http
            .post(format!("{base}/jobs"))
            .body(text)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
        ids.push(json(response).await["id"].as_i64().unwrap());
    }
    assert_eq!(ids, [1, 2, 3]);
    let mut results = Vec::new();
    let mut result_gets = 0u64;
    let deadline = Instant::now() + Duration::from_secs(10);
    for id in &ids {
        loop {
            let response = http.get(format!("{base}/jobs/{id}")).send().await.unwrap();
            result_gets += 1;
            if response.status() == 200 {
                results.push(json(response).await["result"].as_str().unwrap().to_string());
                break;
            }
            assert_eq!(response.status(), 404);
            assert!(Instant::now() < deadline, "job {id} was never done");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert_eq!(
        results,
        [
            "3 words: HELLO QUEUED WORLD",
            "1 words: ONE",
            "4 words: A B C D"
        ]
    );

    // A result is visible as soon as Redis ran the worker's SETEX, a moment before the worker
    // records it: wait (bounded) until the three job spans have finished.
    let deadline = Instant::now() + Duration::from_secs(10);
    while run
        .spans
        .spans()
        .iter()
        .filter(|s| s.name == "worker.job" && s.finished)
        .count()
        < 3
    {
        assert!(
            Instant::now() < deadline,
            "the worker never finished its jobs"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // Scrape.
    let response = http.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let text = response.text().await.unwrap();
    let samples = parse_metrics(&text);
    for (name, kind) in [
        (names::LATENCY_SECONDS, "histogram"),
        (names::REQUESTS_TOTAL, "counter"),
        (names::ACTIVE_REQUESTS, "gauge"),
        (names::POOL_MAX_SIZE, "gauge"),
        (names::POOL_IDLE_CONNECTIONS, "gauge"),
        (names::POOL_ACTIVE_CONNECTIONS, "gauge"),
    ] {
        assert!(
            text.contains(&format!("# TYPE {name} {kind}\n")),
            "{name}:\n{text}"
        );
        assert!(text.contains(&format!("# HELP {name} ")), "{name}:\n{text}");
    }

    // Requests made (redis-rs sends `incr` as INCRBY, `set_ex` as SETEX): INCRBY = 5 counter
    // increments + 3 job ids; GET = 2 counter reads + the
    // job result polls; RPUSH = 3 jobs; SETEX = 3 job results (by the worker); pipeline = 7
    // rate-limit checks. None failed.
    let expected = [
        ("incrby", 8.0),
        ("get", 2.0 + result_gets as f64),
        ("rpush", 3.0),
        ("setex", 3.0),
        (names::COMMAND_PIPELINE, 7.0),
    ];
    for (command, count) in expected {
        let labels = command_labels(command, "true");
        assert_eq!(
            value(&samples, names::REQUESTS_TOTAL, &labels),
            count,
            "{} for {command}",
            names::REQUESTS_TOTAL
        );
        // The latency histogram is a real histogram: buckets, count and sum.
        let count_name = format!("{}_count", names::LATENCY_SECONDS);
        assert_eq!(
            value(&samples, &count_name, &labels),
            count,
            "{count_name} {command}"
        );
        let sum = value(
            &samples,
            &format!("{}_sum", names::LATENCY_SECONDS),
            &labels,
        );
        assert!(
            sum > 0.0 && sum < count * 10.0,
            "latency sum {sum} for {command}"
        );
        let bucket_name = format!("{}_bucket", names::LATENCY_SECONDS);
        let buckets = find(&samples, &bucket_name, &labels);
        assert_eq!(
            buckets.len(),
            names::LATENCY_BUCKETS.len() + 1,
            "{command} buckets"
        );
        let infinite = value(
            &samples,
            &bucket_name,
            &[labels.clone(), vec![("le", "+Inf")]].concat(),
        );
        assert_eq!(infinite, count, "+Inf bucket of {command}");
        let mut previous = 0.0;
        for bound in names::LATENCY_BUCKETS {
            let le = bound.to_string();
            let cumulative = value(
                &samples,
                &bucket_name,
                &[labels.clone(), vec![("le", le.as_str())]].concat(),
            );
            assert!(
                cumulative >= previous,
                "buckets of {command} not cumulative"
            );
            previous = cumulative;
        }
        // Nothing in flight any more.
        let active_labels = &labels[..4];
        assert_eq!(value(&samples, names::ACTIVE_REQUESTS, active_labels), 0.0);
    }
    // The worker waits with BLPOP: at least one per job, all successful.
    let blpops = value(
        &samples,
        names::REQUESTS_TOTAL,
        &command_labels("blpop", "true"),
    );
    assert!(blpops >= 3.0, "blpop count {blpops}");
    // No command failed.
    assert!(
        find(
            &samples,
            names::REQUESTS_TOTAL,
            &[(names::LABEL_SUCCESS, "false")]
        )
        .is_empty(),
        "failed commands:\n{text}"
    );

    // Pool gauges, as configured in fixtures/service.ini (max_connections = 10); the
    // worker's BLPOP may hold a connection at the moment of the scrape.
    let pool = [(names::LABEL_POOL, "redis")];
    assert_eq!(value(&samples, names::POOL_MAX_SIZE, &pool), 10.0);
    // baseplate.py's meanings: "active" counts open connections, "idle" free slots.
    let open = value(&samples, names::POOL_ACTIVE_CONNECTIONS, &pool);
    let free = value(&samples, names::POOL_IDLE_CONNECTIONS, &pool);
    let in_use = value(&samples, names::POOL_IN_USE_CONNECTIONS, &pool);
    assert!((1.0..=2.0).contains(&open), "open connections {open}");
    assert_eq!(value(&samples, names::POOL_OPEN_CONNECTIONS, &pool), open);
    assert!(in_use <= open, "in use {in_use}, open {open}");
    assert_eq!(free, 10.0 - in_use, "free slots {free}, in use {in_use}");

    // Every request was a server span with its commands as children.
    let spans = run.spans.spans();
    let request = spans
        .iter()
        .find(|s| s.name == "POST /counters/{name}")
        .unwrap();
    assert_eq!(
        request
            .tags
            .get("http.response.status_code")
            .map(|t| t.to_string())
            .as_deref(),
        Some("200")
    );
    let children = run.spans.children_of(request.span_id);
    assert_eq!(
        children.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["redis.INCRBY"]
    );
    let job = spans.iter().find(|s| s.name == "worker.job").unwrap();
    let job_children = run.spans.children_of(job.span_id);
    assert_eq!(job_children[0].name, "redis.SETEX");

    run.server_task.abort();
    run.service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_redis_is_a_503_and_a_failure_metric() {
    let mut redis = RedisServer::start();
    let run = start_service(&redis).await;
    let base = &run.base;
    let response = run
        .http
        .post(format!("{base}/counters/before"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    redis.kill();
    let response = run
        .http
        .post(format!("{base}/counters/after"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    let body = response.text().await.unwrap();
    assert!(!body.is_empty());

    let text = run
        .http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let samples = parse_metrics(&text);
    assert_eq!(
        value(
            &samples,
            names::REQUESTS_TOTAL,
            &command_labels("incrby", "true")
        ),
        1.0
    );
    assert_eq!(
        value(
            &samples,
            names::REQUESTS_TOTAL,
            &command_labels("incrby", "false")
        ),
        1.0
    );
    let failed = run
        .spans
        .spans()
        .into_iter()
        .find(|s| s.name == "POST /counters/{name}" && s.error.is_some())
        .unwrap();
    assert_eq!(
        failed
            .tags
            .get("http.response.status_code")
            .map(|t| t.to_string())
            .as_deref(),
        Some("503")
    );

    run.server_task.abort();
    run.service.shutdown().await;
}

#[test]
fn the_example_configuration_loads() {
    let config = app::load_config(Path::new(CONFIG), None).unwrap();
    assert_eq!(config.get("redis.url"), Some("memory://service"));
    let overridden =
        app::load_config(Path::new(CONFIG), Some("redis://127.0.0.1:1/0".into())).unwrap();
    assert_eq!(overridden.get("redis.url"), Some("redis://127.0.0.1:1/0"));
}
