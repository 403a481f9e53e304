//! The axum layer honours the sampling decision in a request's headers: spans only for
//! sampled requests, metrics for all.

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use axum::Router;
use baseplate_redis::sink::{names, RecordingSink};
use baseplate_redis::span::RecordingObserver;
use baseplate_redis::web::BaseplateLayer;
use baseplate_redis::{config::RawConfig, Baseplate, ContextSpec, RedisClient, RequestContext};
use common::RedisServer;
use redis::AsyncCommands;
use tower::ServiceExt;

async fn hit(context: RequestContext) -> Result<String, baseplate_redis::Error> {
    let mut redis = context.redis("foo")?;
    let hits: i64 = redis.incr("hits", 1).await?;
    Ok(hits.to_string())
}

#[tokio::test]
async fn spans_only_for_sampled_requests() {
    let server = RedisServer::start();
    let config = RawConfig::from_pairs([
        ("foo.url", server.url(0)),
        ("tracing.sample_rate", "0%".to_string()),
    ]);
    let metrics = RecordingSink::new();
    let spans = RecordingObserver::new();
    let mut baseplate = Baseplate::new(config)
        .with_metrics_sink(Arc::new(metrics.clone()))
        .unwrap();
    baseplate.register(spans.clone().into_observer());
    baseplate
        .configure_context(ContextSpec::new().client("foo", RedisClient::new()))
        .unwrap();
    let router = Router::new()
        .route("/hits", get(hit))
        .layer(BaseplateLayer::new(Arc::new(baseplate)));

    let requests: [(&[(&str, &str)], bool); 7] = [
        (
            &[(
                "traceparent",
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            )],
            true,
        ),
        (
            &[(
                "traceparent",
                "00-0af7651916cd43dd8448eb211c80319d-b7ad6b7169203331-00",
            )],
            false,
        ),
        (
            &[("X-Trace", "1001"), ("X-Span", "7"), ("X-Sampled", "1")],
            true,
        ),
        (
            &[("X-Trace", "1002"), ("X-Span", "8"), ("X-Sampled", "0")],
            false,
        ),
        (
            &[
                ("X-B3-TraceId", "00000000000003eb"),
                ("X-B3-SpanId", "9"),
                ("X-B3-Sampled", "1"),
            ],
            true,
        ),
        (&[("b3", "00000000000003ec-000000000000000a-0")], false),
        // No decision: the rate (0%) decides.
        (&[], false),
    ];
    for (headers, _) in &requests {
        let mut request = Request::get("/hits");
        for (name, value) in *headers {
            request = request.header(*name, *value);
        }
        let response = router
            .clone()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }

    let sampled = requests.iter().filter(|(_, sampled)| *sampled).count();
    let servers: Vec<_> = spans
        .spans()
        .into_iter()
        .filter(|s| s.name == "GET /hits")
        .collect();
    assert_eq!(servers.len(), sampled, "{:?}", spans.names());
    let mut traces: Vec<u64> = servers.iter().map(|s| s.trace_id).collect();
    traces.sort();
    assert_eq!(traces, [1001, 1003, 0x8448eb211c80319c]);
    for server_span in &servers {
        let children = spans.children_of(server_span.span_id);
        assert_eq!(children.len(), 1);
        assert_eq!(children[0].name, "foo.INCRBY");
    }
    assert_eq!(spans.spans().len(), sampled * 2);
    assert_eq!(
        metrics.counter_value(names::REQUESTS_TOTAL, &[(names::LABEL_COMMAND, "incrby")]),
        requests.len() as u64
    );
}
