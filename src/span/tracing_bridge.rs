//! Forwards spans to the `tracing` crate, so any `tracing` subscriber (fmt, OpenTelemetry…)
//! sees them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tracing::field::Empty;

use super::{SpanInfo, SpanKind, SpanObserver, SpanRecorder, TagValue};

/// Turns every span into a `tracing` span named `baseplate.span`, with the span's name in the
/// `otel.name` field (which `tracing-opentelemetry` uses as the exported span's name), its
/// ids, its kind, the OpenTelemetry database fields of Redis spans (`db.system.name` and
/// `db.system` = `redis`, `db.operation.name` = the command, `db.operation.batch.size` for
/// pipelines, `db.namespace` = the db index, `server.address` and `server.port`, never
/// credentials), the HTTP fields of server spans made by the `axum` layer
/// (`http.request.method`, `http.route`, `url.path`, `http.response.status_code`) and, on
/// failure, `otel.status_code = "ERROR"` and `error.message`. Tags with other keys are not
/// forwarded (a `tracing` span's fields are fixed when it starts).
///
/// With `tracing-opentelemetry` these spans are exported as OpenTelemetry spans named after
/// `otel.name`, of kind `otel.kind`, with the fields as attributes (see
/// `examples/opentelemetry.rs`).
///
/// ```
/// use std::sync::Arc;
/// use baseplate_redis::{span::TracingObserver, Baseplate, RawConfig};
///
/// let mut baseplate = Baseplate::new(RawConfig::new());
/// baseplate.register(Arc::new(TracingObserver::new()));
/// ```
///
/// Child spans are attached to the `tracing` span of their parent request.
#[derive(Debug, Default)]
pub struct TracingObserver {
    // The tracing span of every open server or local span, so children can hang under it.
    parents: Arc<Mutex<HashMap<u64, tracing::Span>>>,
}

type Parents = Arc<Mutex<HashMap<u64, tracing::Span>>>;

impl TracingObserver {
    /// A new observer.
    pub fn new() -> Self {
        Self::default()
    }
}

struct TracingRecorder {
    span: tracing::Span,
    span_id: u64,
    // Set for spans that may have children: they unregister themselves when they end.
    parents: Option<Parents>,
}

impl SpanObserver for TracingObserver {
    fn on_start(&self, info: &SpanInfo<'_>) -> Option<Box<dyn SpanRecorder>> {
        let parent = info.parent_id.and_then(|p| {
            self.parents
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&p)
                .cloned()
        });
        let kind = match info.kind {
            SpanKind::Server => "server",
            SpanKind::Client => "client",
            SpanKind::Local => "internal",
        };
        let span = tracing::info_span!(
            parent: parent.as_ref().and_then(|p| p.id()),
            "baseplate.span",
            otel.name = info.name,
            otel.kind = kind,
            otel.status_code = Empty,
            trace_id = info.trace_id,
            span_id = info.span_id,
            parent_id = info.parent_id,
            db.system.name = Empty,
            db.system = Empty,
            db.operation.name = Empty,
            db.operation.batch.size = Empty,
            db.namespace = Empty,
            server.address = Empty,
            server.port = Empty,
            http.request.method = Empty,
            http.route = Empty,
            url.path = Empty,
            http.response.status_code = Empty,
            error.message = Empty,
        );
        let parents = (info.kind != SpanKind::Client).then(|| {
            self.parents
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(info.span_id, span.clone());
            self.parents.clone()
        });
        Some(Box::new(TracingRecorder {
            span,
            span_id: info.span_id,
            parents,
        }))
    }
}

impl SpanRecorder for TracingRecorder {
    fn on_tag(&mut self, key: &str, value: &TagValue) {
        match value {
            TagValue::Str(s) => self.span.record(key, s.as_ref()),
            TagValue::Int(i) => self.span.record(key, i),
            TagValue::Bool(b) => self.span.record(key, b),
            TagValue::Float(x) => self.span.record(key, x),
        };
    }

    fn on_finish(self: Box<Self>, _duration: Duration, error: Option<&dyn std::error::Error>) {
        if let Some(error) = error {
            self.span.record("otel.status_code", "ERROR");
            self.span
                .record("error.message", tracing::field::display(error));
        }
        if let Some(parents) = &self.parents {
            parents
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&self.span_id);
        }
    }
}
