//! The axum layer and extractor (feature `axum`), on the in-memory backend: span per
//! request named after the route, trace ids from headers, status tags, Redis commands as
//! children, and a clear 500 when the layer is missing.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use axum::Router;
use baseplate_redis::span::{RecordingObserver, SpanKind};
use baseplate_redis::web::BaseplateLayer;
use baseplate_redis::{config::RawConfig, Baseplate, ContextSpec, RedisClient, RequestContext};
use redis::AsyncCommands;
use tower::ServiceExt;

async fn hit(context: RequestContext) -> Result<String, baseplate_redis::Error> {
    let mut redis = context.redis("foo")?;
    let hits: i64 = redis.incr("hits", 1).await?;
    let _: Option<String> = redis.get("other").await?;
    Ok(hits.to_string())
}

async fn broken() -> (StatusCode, &'static str) {
    (StatusCode::BAD_GATEWAY, "upstream is down")
}

/// A Baseplate with client `foo` on the in-memory backend `memory://{name}`, and its spans.
fn baseplate(name: &str) -> (Baseplate, RecordingObserver) {
    let config = RawConfig::from_pairs([("foo.url", format!("memory://{name}"))]);
    let mut baseplate = Baseplate::new(config);
    let spans = RecordingObserver::new();
    baseplate.register(spans.clone().into_observer());
    baseplate
        .configure_context(ContextSpec::new().client("foo", RedisClient::new()))
        .unwrap();
    (baseplate, spans)
}

fn app(name: &str) -> (Router, RecordingObserver) {
    let (baseplate, spans) = baseplate(name);
    let router = Router::new()
        .route("/hits/{page}", get(hit))
        .route("/broken", get(broken))
        .layer(BaseplateLayer::new(Arc::new(baseplate)));
    (router, spans)
}

async fn body_text(response: axum::response::Response) -> String {
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[tokio::test]
async fn each_request_gets_a_server_span_with_its_commands_as_children() {
    let (router, spans) = app("web-children");
    let response = router
        .oneshot(Request::get("/hits/home").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body_text(response).await, "1");

    let request = spans.find("GET /hits/{page}").unwrap();
    assert_eq!(request.kind, SpanKind::Server);
    assert!(request.finished);
    assert_eq!(request.error, None);
    assert_eq!(request.parent_id, None);
    let tag = |key: &str| request.tags.get(key).map(|v| v.to_string());
    assert_eq!(tag("http.request.method").as_deref(), Some("GET"));
    assert_eq!(tag("http.route").as_deref(), Some("/hits/{page}"));
    assert_eq!(tag("url.path").as_deref(), Some("/hits/home"));
    assert_eq!(tag("http.response.status_code").as_deref(), Some("200"));

    let children = spans.children_of(request.span_id);
    let names: Vec<_> = children.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["foo.INCRBY", "foo.GET"]);
    for child in &children {
        assert_eq!(child.trace_id, request.trace_id);
        assert_eq!(child.kind, SpanKind::Client);
        assert_eq!(
            child
                .tags
                .get("db.system")
                .map(|v| v.to_string())
                .as_deref(),
            Some("redis")
        );
    }
}

#[tokio::test]
async fn the_callers_trace_is_continued() {
    let (router, spans) = app("web-traceparent");
    let request = Request::get("/hits/a")
        .header(
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        )
        .body(Body::empty())
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let span = spans.find("GET /hits/{page}").unwrap();
    assert_eq!(span.trace_id, 0x8448eb211c80319c);
    assert_eq!(span.parent_id, Some(0xb7ad6b7169203331));

    spans.clear();
    let request = Request::get("/hits/b")
        .header("X-Trace", "1000")
        .header("X-Parent", "2000")
        .header("X-Span", "3000")
        .body(Body::empty())
        .unwrap();
    router.oneshot(request).await.unwrap();
    let span = spans.find("GET /hits/{page}").unwrap();
    assert_eq!(
        (span.trace_id, span.parent_id, span.span_id),
        (1000, Some(2000), 3000)
    );
    let child = spans.find("foo.INCRBY").unwrap();
    assert_eq!((child.trace_id, child.parent_id), (1000, Some(3000)));
}

#[tokio::test]
async fn a_server_error_status_fails_the_span_and_others_do_not() {
    let (router, spans) = app("web-status");
    let response = router
        .clone()
        .oneshot(Request::get("/broken").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    let span = spans.find("GET /broken").unwrap();
    assert_eq!(
        span.tags
            .get("http.response.status_code")
            .map(|v| v.to_string())
            .as_deref(),
        Some("502")
    );
    assert!(span.error.unwrap().contains("502"));

    // No route matched: the span is named after the method and path, and a 404 is no error.
    let response = router
        .oneshot(Request::get("/nowhere").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let span = spans.find("GET /nowhere").unwrap();
    assert_eq!(span.error, None);
    assert!(span.finished);
}

#[tokio::test]
async fn the_extractor_without_the_layer_is_a_clear_500() {
    let router: Router = Router::new().route("/hits/{page}", get(hit));
    let response = router
        .oneshot(Request::get("/hits/x").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let text = body_text(response).await;
    assert!(text.contains("BaseplateLayer"), "{text}");
}

#[tokio::test]
async fn a_cancelled_request_ends_its_span_as_cancelled() {
    async fn slow(context: RequestContext) -> String {
        let _ = context;
        std::future::pending::<String>().await
    }
    let config = RawConfig::from_pairs([("foo.url", "memory://web-cancel")]);
    let mut baseplate = Baseplate::new(config);
    let spans = RecordingObserver::new();
    baseplate.register(spans.clone().into_observer());
    let router: Router = Router::new()
        .route("/slow", get(slow))
        .layer(BaseplateLayer::new(Arc::new(baseplate)));
    let request = router.oneshot(Request::get("/slow").body(Body::empty()).unwrap());
    let timed_out = tokio::time::timeout(std::time::Duration::from_millis(50), request).await;
    assert!(timed_out.is_err());
    let span = spans.find("GET /slow").unwrap();
    assert!(span.finished);
    assert!(span.error.unwrap().contains("cancelled"));
}

#[tokio::test]
async fn the_layer_wraps_any_tower_service() {
    use axum::http::Response;

    let (baseplate, spans) = baseplate("web-tower");
    let service = tower::ServiceBuilder::new()
        .layer(BaseplateLayer::new(Arc::new(baseplate)))
        .service_fn(|request: Request<()>| async move {
            let context = request.extensions().get::<RequestContext>().unwrap();
            let mut redis = context.redis("foo").unwrap();
            let _: i64 = redis.incr("calls", 1).await.unwrap();
            if request.uri().path() == "/fail" {
                return Err(std::io::Error::other("backend exploded"));
            }
            Ok(Response::new(String::from("ok")))
        });

    let response = service
        .clone()
        .oneshot(Request::get("/ok").body(()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.into_body(), "ok");
    let ok = spans.find("GET /ok").unwrap();
    assert_eq!(ok.error, None);
    assert_eq!(spans.children_of(ok.span_id)[0].name, "foo.INCRBY");

    let err = service
        .oneshot(Request::post("/fail").body(()).unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "backend exploded");
    let failed = spans.find("POST /fail").unwrap();
    assert!(failed.error.unwrap().contains("backend exploded"));
    assert_eq!(failed.tags.get("http.response.status_code"), None);
}
