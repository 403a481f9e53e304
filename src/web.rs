//! Tower and axum integration (feature `axum`): a layer that gives every HTTP request its
//! [`RequestContext`] and server span, and an extractor that hands the context to a handler.
//!
//! [`BaseplateLayer`] wraps a router. For each request it
//! - reads the caller's trace ids and sampling decision from the usual headers
//!   ([`trace_info_from_headers`]); a request without a decision is sampled at the
//!   configured rate ([`SampleRate`](crate::span::SampleRate), `tracing.sample_rate`), and
//!   the spans of an unsampled request reach no observer;
//! - starts the server span, named after the matched route (`GET /counter/{name}`) or, when
//!   no route matched, the method and path;
//! - puts the [`RequestContext`] in the request's extensions, where the handler's
//!   `RequestContext` argument finds it — so every Redis command of the handler is a child
//!   span of the request's span;
//! - finishes the span with the tag `http.response.status_code`, and with an error for a
//!   5xx status, when the handler returns its response (before a streamed body is sent).
//!   A request whose future is dropped (the client went away) ends its span as cancelled.
//!
//! Put the layer on the router with `Router::layer` (not on the outer service), so the
//! matched route is known when the span starts.
//!
//! ```
//! use std::sync::Arc;
//! use axum::{routing::get, Router};
//! use baseplate_redis::{config::RawConfig, web::BaseplateLayer, Baseplate, ContextSpec};
//! use baseplate_redis::{RedisClient, RequestContext};
//! use redis::AsyncCommands;
//!
//! async fn hits(context: RequestContext) -> Result<String, baseplate_redis::Error> {
//!     let mut redis = context.redis("redis")?;
//!     let hits: i64 = redis.incr("hits", 1).await?;
//!     Ok(hits.to_string())
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = RawConfig::from_pairs([("redis.url", "memory://web-doc")]);
//! let mut baseplate = Baseplate::new(config);
//! baseplate.configure_context(ContextSpec::new().client("redis", RedisClient::new()))?;
//!
//! let app: Router = Router::new()
//!     .route("/hits", get(hits))
//!     .layer(BaseplateLayer::new(Arc::new(baseplate)));
//! # Ok(()) }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::{FromRequestParts, MatchedPath};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Request, Response, StatusCode};
use axum::response::IntoResponse;
use tower_layer::Layer;
use tower_service::Service;

use crate::span::TraceInfo;
use crate::{Baseplate, Error, RequestContext};

/// Tag on the server span: the HTTP method.
pub const TAG_METHOD: &str = "http.request.method";
/// Tag on the server span: the matched route template, e.g. `/counter/{name}`.
pub const TAG_ROUTE: &str = "http.route";
/// Tag on the server span: the request's path.
pub const TAG_PATH: &str = "url.path";
/// Tag on the server span: the response's status code.
pub const TAG_STATUS_CODE: &str = "http.response.status_code";

/// A tower [`Layer`] that makes the [`RequestContext`] and server span of every request.
/// Add it to an axum `Router` with `.layer(BaseplateLayer::new(baseplate))`; see the
/// [module documentation](self).
#[derive(Clone)]
pub struct BaseplateLayer {
    baseplate: Arc<Baseplate>,
}

impl BaseplateLayer {
    /// A layer serving requests through `baseplate`'s clients and observers.
    pub fn new(baseplate: Arc<Baseplate>) -> Self {
        BaseplateLayer { baseplate }
    }
}

impl fmt::Debug for BaseplateLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BaseplateLayer")
            .field("baseplate", &self.baseplate)
            .finish()
    }
}

impl<S> Layer<S> for BaseplateLayer {
    type Service = BaseplateService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BaseplateService {
            inner,
            baseplate: self.baseplate.clone(),
        }
    }
}

/// The service [`BaseplateLayer`] wraps around each route.
#[derive(Clone)]
pub struct BaseplateService<S> {
    inner: S,
    baseplate: Arc<Baseplate>,
}

impl<S: fmt::Debug> fmt::Debug for BaseplateService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BaseplateService")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

/// The response future of [`BaseplateService`].
pub type ResponseFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, B, R> Service<Request<B>> for BaseplateService<S>
where
    S: Service<Request<B>, Response = Response<R>>,
    S::Future: Send + 'static,
    S::Error: fmt::Display,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = ResponseFuture<Response<R>, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let trace = trace_info_from_headers(request.headers());
        let mut context = self.baseplate.make_context_object();
        let route = request.extensions().get::<MatchedPath>();
        let method = request.method().as_str();
        let path = request.uri().path();
        let name = format!("{method} {}", route.map_or(path, MatchedPath::as_str));
        let mut span = self.baseplate.make_server_span(&mut context, &name, trace);
        // The tags of an unsampled request would reach no observer: not even built.
        if span.is_sampled() {
            span.set_tag(TAG_METHOD, method.to_string());
            if let Some(route) = route {
                span.set_tag(TAG_ROUTE, route.as_str().to_string());
            }
            span.set_tag(TAG_PATH, path.to_string());
        }
        request.extensions_mut().insert(context);

        let response = self.inner.call(request);
        Box::pin(async move {
            // Dropping this future drops `span` unfinished: it ends as cancelled.
            let result = response.await;
            match &result {
                Ok(response) => {
                    let status = response.status();
                    span.set_tag(TAG_STATUS_CODE, i64::from(status.as_u16()));
                    if status.is_server_error() {
                        span.finish_with_error(&ServerErrorStatus(status));
                    } else {
                        span.finish();
                    }
                }
                Err(err) => span.finish_with_error(&ServiceError(err.to_string())),
            }
            result
        })
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the handler answered {0}")]
struct ServerErrorStatus(StatusCode);

#[derive(Debug, thiserror::Error)]
#[error("the service failed: {0}")]
struct ServiceError(String);

/// The caller's trace ids from a request's headers, or `None` (start a new trace) when
/// there are none or they cannot be read. Looked for in this order:
///
/// 1. W3C `traceparent` (`00-<trace id>-<parent id>-<flags>`);
/// 2. baseplate's `X-Trace`, `X-Parent`, `X-Span`, `X-Sampled` (decimal ids);
/// 3. B3: `X-B3-TraceId`, `X-B3-SpanId`, `X-B3-ParentSpanId`, `X-B3-Sampled` (hex ids), or
///    the single `b3` header.
///
/// Trace ids are 64 bits here: of a 128-bit trace id, the low 64 bits are kept (as Zipkin
/// does when it talks to 64-bit tracers).
///
/// ```
/// use axum::http::HeaderMap;
/// use baseplate_redis::web::trace_info_from_headers;
///
/// let mut headers = HeaderMap::new();
/// headers.insert(
///     "traceparent",
///     "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".parse().unwrap(),
/// );
/// let trace = trace_info_from_headers(&headers).unwrap();
/// assert_eq!(trace.trace_id, 0x8448eb211c80319c);
/// assert_eq!(trace.parent_id, Some(0xb7ad6b7169203331));
/// assert_eq!(trace.sampled, Some(true));
///
/// assert_eq!(trace_info_from_headers(&HeaderMap::new()), None);
/// ```
pub fn trace_info_from_headers(headers: &HeaderMap) -> Option<TraceInfo> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(trace) = header("traceparent").and_then(parse_traceparent) {
        return Some(trace);
    }
    if let Some(trace_id) = header("x-trace").and_then(parse_decimal) {
        return Some(TraceInfo {
            trace_id,
            // baseplate sends the server span's own id in X-Span, its parent in X-Parent.
            parent_id: header("x-parent").and_then(parse_decimal),
            span_id: header("x-span").and_then(parse_decimal),
            sampled: header("x-sampled").and_then(parse_sampled),
        });
    }
    if let Some(trace_id) = header("x-b3-traceid").and_then(parse_hex_id) {
        return Some(TraceInfo {
            trace_id,
            parent_id: header("x-b3-parentspanid").and_then(parse_hex_id),
            span_id: header("x-b3-spanid").and_then(parse_hex_id),
            sampled: header("x-b3-sampled").and_then(parse_sampled),
        });
    }
    header("b3").and_then(parse_b3_single)
}

/// `version-traceid-parentid-flags`; an all-zero id or version `ff` is invalid.
fn parse_traceparent(value: &str) -> Option<TraceInfo> {
    let mut parts = value.trim().split('-');
    let version = parts.next()?;
    let trace = parts.next()?;
    let parent = parts.next()?;
    let flags = parts.next()?;
    if version.len() != 2
        || version.eq_ignore_ascii_case("ff")
        || (version == "00" && parts.next().is_some())
    {
        return None;
    }
    if trace.len() != 32 || parent.len() != 16 || flags.len() != 2 {
        return None;
    }
    u128::from_str_radix(trace, 16).ok().filter(|id| *id != 0)?;
    let trace_id = parse_hex_id(trace)?;
    let parent_id = parse_hex_id(parent)?;
    let flags = u8::from_str_radix(flags, 16).ok()?;
    Some(TraceInfo {
        trace_id,
        parent_id: Some(parent_id),
        span_id: None,
        sampled: Some(flags & 1 == 1),
    })
}

/// `traceid-spanid[-sampled[-parentspanid]]`, or just the sampling decision (ignored).
fn parse_b3_single(value: &str) -> Option<TraceInfo> {
    let mut parts = value.trim().split('-');
    let trace_id = parse_hex_id(parts.next()?)?;
    let span_id = parse_hex_id(parts.next()?)?;
    let sampled = parts.next().and_then(parse_sampled);
    let parent_id = parts.next().and_then(parse_hex_id);
    Some(TraceInfo {
        trace_id,
        parent_id,
        span_id: Some(span_id),
        sampled,
    })
}

/// A 16- or 32-digit hex id (the low 64 bits of a 128-bit one); zero is no id.
fn parse_hex_id(value: &str) -> Option<u64> {
    let value = value.trim();
    let low = match value.len() {
        1..=16 => value,
        32 => {
            u64::from_str_radix(&value[..16], 16).ok()?;
            &value[16..]
        }
        _ => return None,
    };
    u64::from_str_radix(low, 16).ok().filter(|id| *id != 0)
}

fn parse_decimal(value: &str) -> Option<u64> {
    let value = value.trim();
    // baseplate.py may send ids as signed 64-bit integers.
    value
        .parse::<u64>()
        .ok()
        .or_else(|| value.parse::<i64>().ok().map(|id| id as u64))
        .filter(|id| *id != 0)
}

fn parse_sampled(value: &str) -> Option<bool> {
    match value.trim() {
        "1" | "true" | "d" => Some(true),
        "0" | "false" => Some(false),
        _ => None,
    }
}

/// The handler's [`RequestContext`], put in the request's extensions by [`BaseplateLayer`].
///
/// Without the layer the request is answered `500 Internal Server Error` with a message
/// saying so (a [`MissingContext`] rejection).
impl<S: Send + Sync> FromRequestParts<S> for RequestContext {
    type Rejection = MissingContext;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<RequestContext>()
            .cloned()
            .ok_or(MissingContext)
    }
}

/// The rejection of the [`RequestContext`] extractor when [`BaseplateLayer`] is not on the
/// route: a `500 Internal Server Error` saying what to add.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "no RequestContext for this request: add `.layer(baseplate_redis::web::BaseplateLayer::new(baseplate))` \
     to the router (after the routes that use it)"
)]
#[non_exhaustive]
pub struct MissingContext;

impl IntoResponse for MissingContext {
    fn into_response(self) -> axum::response::Response {
        (StatusCode::INTERNAL_SERVER_ERROR, self.to_string()).into_response()
    }
}

/// Lets handlers return `Result<_, baseplate_redis::Error>`: a Redis that cannot be reached
/// or timed out is `503 Service Unavailable`, anything else `500 Internal Server Error`; the
/// body is the error's message (which never holds a password).
impl IntoResponse for Error {
    fn into_response(self) -> axum::response::Response {
        let status = if self.is_connection_error() || self.is_timeout() {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        };
        (status, self.to_string()).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, v.parse().unwrap());
        }
        map
    }

    #[test]
    fn traceparent_is_read() {
        let trace = trace_info_from_headers(&headers(&[(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
        )]))
        .unwrap();
        assert_eq!(trace.trace_id, 0xa3ce929d0e0e4736);
        assert_eq!(trace.parent_id, Some(0x00f067aa0ba902b7));
        assert_eq!(trace.span_id, None);
        assert_eq!(trace.sampled, Some(false));
    }

    #[test]
    fn bad_traceparents_are_ignored() {
        for bad in [
            "",
            "00",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-zzf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert_eq!(
                trace_info_from_headers(&headers(&[("traceparent", bad)])),
                None,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn baseplate_headers_are_read() {
        let trace = trace_info_from_headers(&headers(&[
            ("X-Trace", "1234"),
            ("X-Parent", "5678"),
            ("X-Span", "91011"),
            ("X-Sampled", "1"),
        ]))
        .unwrap();
        assert_eq!(trace.trace_id, 1234);
        assert_eq!(trace.parent_id, Some(5678));
        assert_eq!(trace.span_id, Some(91011));
        assert_eq!(trace.sampled, Some(true));

        let negative = trace_info_from_headers(&headers(&[("X-Trace", "-2")])).unwrap();
        assert_eq!(negative.trace_id, u64::MAX - 1);
        assert_eq!(
            trace_info_from_headers(&headers(&[("X-Trace", "abc")])),
            None
        );
    }

    #[test]
    fn b3_headers_are_read() {
        let trace = trace_info_from_headers(&headers(&[
            ("X-B3-TraceId", "80f198ee56343ba864fe8b2a57d3eff7"),
            ("X-B3-SpanId", "e457b5a2e4d86bd1"),
            ("X-B3-ParentSpanId", "05e3ac9a4f6e3b90"),
            ("X-B3-Sampled", "1"),
        ]))
        .unwrap();
        assert_eq!(trace.trace_id, 0x64fe8b2a57d3eff7);
        assert_eq!(trace.span_id, Some(0xe457b5a2e4d86bd1));
        assert_eq!(trace.parent_id, Some(0x05e3ac9a4f6e3b90));
        assert_eq!(trace.sampled, Some(true));

        let single = trace_info_from_headers(&headers(&[(
            "b3",
            "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90",
        )]))
        .unwrap();
        assert_eq!(single, trace);
        assert_eq!(trace_info_from_headers(&headers(&[("b3", "0")])), None);
    }

    #[test]
    fn traceparent_wins_over_other_headers() {
        let trace = trace_info_from_headers(&headers(&[
            ("X-Trace", "1234"),
            (
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
        ]))
        .unwrap();
        assert_eq!(trace.trace_id, 0xa3ce929d0e0e4736);
    }
}
