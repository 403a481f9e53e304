//! The Grafana dashboard in `dashboards/` queries only metrics and labels the crate emits:
//! every metric and label name in its PromQL is found in a Prometheus scrape of a client
//! that ran real commands against a real server (both naming schemes), or, for the cluster
//! and sentinel metrics a standalone server cannot produce, among `sink::names`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use baseplate_redis::config::RawConfig;
use baseplate_redis::sink::{names, prometheus, FacadeSink};
use baseplate_redis::telemetry::{MetricNaming, TelemetryOptions};
use baseplate_redis::{Baseplate, ContextSpec, RedisClient};
use common::RedisServer;
use redis::AsyncCommands;

const DASHBOARD: &str = include_str!("../dashboards/baseplate-redis.json");

/// What one PromQL expression refers to.
#[derive(Debug, Default)]
struct Refs {
    metrics: BTreeSet<String>,
    labels: BTreeSet<String>,
}

/// PromQL words that are not metric names.
const KEYWORDS: &[&str] = &[
    "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile",
    "group", "and", "or", "unless", "bool", "offset",
];
/// Words followed by a list of label names.
const GROUPING: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

fn refs(expr: &str) -> Refs {
    let chars: Vec<char> = expr.chars().collect();
    let mut out = Refs::default();
    let mut i = 0;
    let ident_at = |i: usize| -> (String, usize) {
        let mut j = i;
        while j < chars.len() && is_ident(chars[j]) {
            j += 1;
        }
        (chars[i..j].iter().collect(), j)
    };
    let skip_space = |mut i: usize| {
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        i
    };
    while i < chars.len() {
        let c = chars[i];
        if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
        } else if c == '[' {
            while i < chars.len() && chars[i] != ']' {
                i += 1;
            }
            i += 1;
        } else if c == '{' {
            // Label matchers: `name op "value"`, comma separated.
            i += 1;
            while i < chars.len() && chars[i] != '}' {
                if is_ident_start(chars[i]) {
                    let (label, next) = ident_at(i);
                    out.labels.insert(label);
                    i = next;
                } else if chars[i] == '"' {
                    i += 1;
                    while i < chars.len() && chars[i] != '"' {
                        i += if chars[i] == '\\' { 2 } else { 1 };
                    }
                    i += 1;
                } else {
                    i += 1;
                }
            }
            i += 1;
        } else if c == '$' {
            i += 1;
            while i < chars.len() && is_ident(chars[i]) {
                i += 1;
            }
        } else if c.is_ascii_digit() || c == '.' {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
        } else if is_ident_start(c) {
            let (word, next) = ident_at(i);
            let after = skip_space(next);
            let calls = chars.get(after) == Some(&'(');
            if GROUPING.contains(&word.as_str()) {
                i = after;
                if calls {
                    while i < chars.len() && chars[i] != ')' {
                        if is_ident_start(chars[i]) {
                            let (label, next) = ident_at(i);
                            out.labels.insert(label);
                            i = next;
                        } else {
                            i += 1;
                        }
                    }
                }
            } else {
                if !calls && !KEYWORDS.contains(&word.as_str()) {
                    out.metrics.insert(word);
                }
                i = next;
            }
        } else {
            i += 1;
        }
    }
    out
}

/// Every PromQL expression of the dashboard: panel targets and template variable queries
/// (`label_values(metric, label)`, turned into the equivalent selector).
fn expressions(dashboard: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            out.push(target["expr"].as_str().unwrap().to_string());
        }
    }
    for variable in dashboard["templating"]["list"].as_array().unwrap() {
        if let Some(query) = variable["query"]["query"].as_str() {
            let inner = query
                .strip_prefix("label_values(")
                .and_then(|q| q.strip_suffix(')'))
                .unwrap_or_else(|| panic!("unexpected variable query {query}"));
            let (metric, label) = inner.split_once(',').unwrap();
            out.push(format!("sum by ({}) ({})", label.trim(), metric.trim()));
        }
    }
    out
}

/// Series name → label names, from Prometheus text.
fn scrape(text: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let name_end = line.find(['{', ' ']).unwrap();
        let labels = out.entry(line[..name_end].to_string()).or_default();
        if line[name_end..].starts_with('{') {
            let body = &line[name_end + 1..line.rfind('}').unwrap()];
            for pair in body.split("\",") {
                labels.insert(pair.split('=').next().unwrap().to_string());
            }
        }
    }
    out
}

/// A client with both namings runs commands, fails some, waits for a full pool, loses a
/// connection and reconnects; a second one fails to connect. Returns the scrape.
async fn scrape_real_client() -> String {
    let server = RedisServer::start();
    let recorder = prometheus::recorder();
    let handle = recorder.handle();
    let sink = Arc::new(FacadeSink::with_recorder(Arc::new(recorder)));
    let dead = format!("redis://127.0.0.1:{}/0", common::free_port());
    let config = RawConfig::from_pairs([
        ("foo.url", server.url(0).as_str()),
        ("foo.max_connections", "2"),
        ("foo.pool_timeout", "100 milliseconds"),
        ("down.url", dead.as_str()),
    ]);
    let mut baseplate = Baseplate::new(config).with_metrics_sink(sink).unwrap();
    let telemetry = TelemetryOptions::new().metric_naming(MetricNaming::Both);
    baseplate
        .configure_context(
            ContextSpec::new()
                .client("foo", RedisClient::new().telemetry(telemetry))
                .client("down", RedisClient::new().telemetry(telemetry)),
        )
        .unwrap();
    let context = baseplate.make_context_object();
    let mut foo = context.redis("foo").unwrap();
    let _: () = foo.set("k", "v").await.unwrap();
    let _: String = foo.get("k").await.unwrap();
    let _ = foo.lpush::<_, _, i64>("k", "x").await.unwrap_err();

    let mut holder = baseplate.make_context_object().redis("foo").unwrap();
    let held = tokio::spawn(async move {
        let _: Option<(String, String)> = holder.blpop("empty", 0.4).await.unwrap();
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _ = foo
        .blpop::<_, Option<(String, String)>>("other", 0.1)
        .await
        .unwrap_err();
    held.await.unwrap();

    let _: i64 = server.query(&["CLIENT", "KILL", "TYPE", "normal"]);
    for _ in 0..50 {
        if foo.get::<_, String>("k").await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut down = context.redis("down").unwrap();
    let _ = down.get::<_, Option<String>>("k").await.unwrap_err();
    baseplate.report_runtime_metrics();
    handle.render()
}

/// The Prometheus names of the metrics only a cluster or sentinel client reports.
fn cluster_and_sentinel_metrics() -> BTreeSet<String> {
    [
        names::CLUSTER_TOPOLOGY_REFRESHES_TOTAL,
        names::CLUSTER_REDIRECTS_TOTAL,
        names::SENTINEL_FAILOVERS_TOTAL,
    ]
    .into_iter()
    .map(String::from)
    .collect()
}

#[tokio::test]
async fn every_metric_and_label_the_dashboard_queries_is_emitted() {
    let dashboard: serde_json::Value = serde_json::from_str(DASHBOARD).unwrap();
    let scraped = scrape(&scrape_real_client().await);
    let elsewhere = cluster_and_sentinel_metrics();
    let mut checked = 0;
    for expr in expressions(&dashboard) {
        let refs = refs(&expr);
        assert!(!refs.metrics.is_empty(), "no metric found in {expr}");
        let mut labels_available: BTreeSet<String> = BTreeSet::from(["le".to_string()]);
        for metric in &refs.metrics {
            match scraped.get(metric) {
                Some(labels) => labels_available.extend(labels.iter().cloned()),
                None => {
                    assert!(
                        elsewhere.contains(metric),
                        "{metric} (in {expr}) is not emitted; scraped: {:?}",
                        scraped.keys()
                    );
                    labels_available.insert(names::LABEL_POOL.to_string());
                }
            }
            checked += 1;
        }
        for label in &refs.labels {
            assert!(
                labels_available.contains(label),
                "label {label} (in {expr}) is on none of {:?}",
                refs.metrics
            );
        }
    }
    assert!(checked >= 20, "only {checked} metric references found");
}

#[test]
fn the_promql_reader_finds_metrics_and_labels() {
    let refs = refs(
        r#"histogram_quantile(0.99, sum by (le, redis_command) (rate(redis_client_latency_seconds_bucket{redis_client_name=~"$client",x!="a,b"}[$__rate_interval]))) / scalar(sum(rate(other_total[5m])))"#,
    );
    assert_eq!(
        refs.metrics,
        BTreeSet::from([
            "redis_client_latency_seconds_bucket".into(),
            "other_total".into()
        ])
    );
    assert_eq!(
        refs.labels,
        BTreeSet::from([
            "le".into(),
            "redis_command".into(),
            "redis_client_name".into(),
            "x".into()
        ])
    );
}
