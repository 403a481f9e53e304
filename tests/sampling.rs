//! Sampled tracing: the caller's sampling decision, or the configured rate for new traces,
//! decides whether a request's spans reach the observers; metrics count every command.

mod common;

use std::sync::Arc;

use baseplate_redis::config::RawConfig;
use baseplate_redis::sink::{names, RecordingSink};
use baseplate_redis::span::{RecordingObserver, SampleRate, TraceInfo};
use baseplate_redis::{Baseplate, ContextSpec, RedisClient};
use common::RedisServer;
use redis::AsyncCommands;

fn baseplate(
    server: &RedisServer,
    extra: &[(&str, &str)],
) -> (Baseplate, RecordingSink, RecordingObserver) {
    let mut pairs = vec![("foo.url".to_string(), server.url(0))];
    pairs.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let metrics = RecordingSink::new();
    let spans = RecordingObserver::new();
    let mut baseplate = Baseplate::new(RawConfig::from_pairs(pairs))
        .with_metrics_sink(Arc::new(metrics.clone()))
        .unwrap();
    baseplate.register(spans.clone().into_observer());
    baseplate
        .configure_context(ContextSpec::new().client("foo", RedisClient::new()))
        .unwrap();
    (baseplate, metrics, spans)
}

/// Serves one request running `commands` SETs, as trace `trace`; returns the server span's
/// sampling decision.
async fn request(
    baseplate: &Baseplate,
    name: &str,
    trace: Option<TraceInfo>,
    commands: usize,
) -> bool {
    let mut context = baseplate.make_context_object();
    let span = baseplate.make_server_span(&mut context, name, trace);
    let sampled = span.is_sampled();
    assert_eq!(context.span().is_sampled(), sampled);
    let mut foo = context.redis("foo").unwrap();
    for i in 0..commands {
        let _: () = foo.set(format!("{name}:{i}"), i).await.unwrap();
    }
    let mut pipe = foo.pipeline("both");
    pipe.get(format!("{name}:0")).get(format!("{name}:1"));
    let _: (Option<i64>, Option<i64>) = pipe.query_async(&mut foo).await.unwrap();
    span.finish();
    sampled
}

fn set_count(metrics: &RecordingSink) -> u64 {
    metrics.counter_value(names::REQUESTS_TOTAL, &[(names::LABEL_COMMAND, "set")])
}

#[tokio::test]
async fn callers_decision_is_honoured_and_metrics_count_both() {
    let server = RedisServer::start();
    // A rate of zero: only the callers' decisions make sampled traces.
    let (baseplate, metrics, spans) = baseplate(&server, &[("tracing.sample_rate", "0%")]);

    let sampled = TraceInfo::from_parent(11, Some(12)).with_sampled(true);
    assert!(request(&baseplate, "sampled", Some(sampled), 3).await);
    let unsampled = TraceInfo::from_parent(21, Some(22)).with_sampled(false);
    assert!(!request(&baseplate, "unsampled", Some(unsampled), 5).await);

    let server_span = spans.find("sampled").unwrap();
    assert_eq!(server_span.trace_id, 11);
    let children = spans.children_of(server_span.span_id);
    assert_eq!(children.len(), 4, "{:?}", spans.names());
    assert!(children.iter().all(|c| c.trace_id == 11 && c.finished));
    assert!(spans.find("unsampled").is_none());
    assert!(
        spans.spans().iter().all(|s| s.trace_id == 11),
        "{:?}",
        spans.names()
    );

    // Every command is measured, sampled or not.
    assert_eq!(set_count(&metrics), 8);
    assert_eq!(
        metrics.counter_value(names::REQUESTS_TOTAL, &[(names::LABEL_COMMAND, "pipeline")]),
        2
    );
    assert_eq!(
        metrics.histogram_count(names::LATENCY_SECONDS, &[(names::LABEL_COMMAND, "set")]),
        8
    );
}

#[tokio::test]
async fn new_traces_are_sampled_at_the_configured_rate() {
    let server = RedisServer::start();

    let (none, metrics, spans) = baseplate(&server, &[("tracing.sample_rate", "0")]);
    for _ in 0..20 {
        assert!(!request(&none, "new", None, 1).await);
    }
    assert!(spans.spans().is_empty(), "{:?}", spans.names());
    assert_eq!(set_count(&metrics), 20);
    // A caller's trace without a decision is a new decision too.
    assert!(
        !request(
            &none,
            "no decision",
            Some(TraceInfo::from_parent(5, None)),
            1
        )
        .await
    );
    assert!(spans.spans().is_empty());

    let (all, _, spans) = baseplate(&server, &[]);
    for _ in 0..20 {
        assert!(request(&all, "new", None, 1).await);
    }
    assert_eq!(spans.spans().len(), 20 * 3);

    let (half, _, spans) = baseplate(&server, &[("tracing.sample_rate", "50%")]);
    let mut sampled = 0;
    for _ in 0..200 {
        sampled += usize::from(request(&half, "new", None, 0).await);
    }
    assert!(
        (50..150).contains(&sampled),
        "{sampled} of 200 sampled at 50%"
    );
    assert_eq!(spans.spans().len(), sampled * 2);

    // Set in code instead of configuration.
    let (coded, _, spans) = baseplate(&server, &[]);
    let coded = coded.with_sample_rate(SampleRate::NONE);
    assert!(!request(&coded, "new", None, 1).await);
    assert!(spans.spans().is_empty());
}

#[tokio::test]
async fn an_invalid_rate_is_a_configuration_error() {
    for bad in ["lots", "150%", "2", "-0.5"] {
        let config = RawConfig::from_pairs([
            ("foo.url", "memory://sampling-bad"),
            ("tracing.sample_rate", bad),
        ]);
        let err = Baseplate::new(config)
            .configure_context(ContextSpec::new().client("foo", RedisClient::new()))
            .unwrap_err();
        assert_eq!(err.key(), "tracing.sample_rate");
        assert!(err.to_string().contains(bad), "{err}");
    }
}
