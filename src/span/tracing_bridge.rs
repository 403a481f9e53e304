//! Forwards spans to the `tracing` crate, so any `tracing` subscriber (fmt, OpenTelemetry…)
//! sees them.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
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
    parents: Parents,
}

/// The open parent spans by id, in shards so that requests served on different cores rarely
/// take the same lock, nor pass its cache line between them (every command span looks its
/// parent up): with a few hundred requests in flight, most have a shard to themselves.
#[derive(Debug)]
struct ParentShards([Shard; SHARDS]);

const SHARDS: usize = 256;

impl Default for ParentShards {
    fn default() -> Self {
        ParentShards(std::array::from_fn(|_| Shard::default()))
    }
}

#[derive(Debug, Default)]
#[repr(align(128))]
struct Shard(Mutex<SpansById>);

type SpansById = HashMap<u64, tracing::Span, BuildHasherDefault<IdHasher>>;

/// Span ids are random already: one multiplication spreads them over the table's buckets
/// (the shard took their low bits), for a fraction of SipHash's cost.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.write_u64(self.0 ^ u64::from(*byte));
        }
    }

    fn write_u64(&mut self, id: u64) {
        self.0 = id.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(32);
    }
}

impl ParentShards {
    fn shard(&self, span_id: u64) -> std::sync::MutexGuard<'_, SpansById> {
        // Span ids are random: their low bits spread requests evenly.
        self.0[(span_id % SHARDS as u64) as usize]
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

type Parents = Arc<ParentShards>;

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

/// How many finished recorders' boxes a thread keeps for its next spans.
const SPARE_BOXES: usize = 64;

// The boxes themselves are what is kept: they are handed out again as they are.
#[allow(clippy::vec_box)]
type SpareBoxes = Vec<Box<TracingRecorder>>;

thread_local! {
    // Boxes of finished recorders, reused: a span per command would otherwise allocate and
    // free one per command, and under load the allocator's slow paths showed in profiles.
    static SPARE: std::cell::RefCell<SpareBoxes> = const { std::cell::RefCell::new(Vec::new()) };
}

impl TracingRecorder {
    /// A boxed recorder, in a spare box when this thread has one.
    fn boxed(recorder: TracingRecorder) -> Box<TracingRecorder> {
        let spare = SPARE
            .try_with(|spare| spare.try_borrow_mut().ok()?.pop())
            .ok()
            .flatten();
        match spare {
            Some(mut spare) => {
                *spare = recorder;
                spare
            }
            None => Box::new(recorder),
        }
    }

    /// Keeps a finished recorder's box for a later span (its span is already closed).
    fn recycle(self: Box<Self>) {
        let _ = SPARE.try_with(|spare| {
            if let Ok(mut spare) = spare.try_borrow_mut() {
                if spare.len() < SPARE_BOXES {
                    spare.push(self);
                }
            }
        });
    }
}

impl SpanObserver for TracingObserver {
    fn on_start(&self, info: &SpanInfo<'_>) -> Option<Box<dyn SpanRecorder>> {
        self.on_start_tagged(info, &[])
    }

    /// Makes the `tracing` span with the tags as its fields' first values: one call into the
    /// subscriber rather than a second one to record them.
    fn on_start_tagged(
        &self,
        info: &SpanInfo<'_>,
        tags: &[(&str, &TagValue)],
    ) -> Option<Box<dyn SpanRecorder>> {
        let mut values: [Option<Primitive<'_>>; TAG_FIELDS.len()] = Default::default();
        for (key, value) in tags {
            // Tags without a field of their own are dropped, as `record` would drop them.
            if let Some(slot) = TAG_FIELDS.iter().position(|field| field == key) {
                values[slot] = Some(Primitive::of(value));
            }
        }
        let [system_name, system, operation, batch_size, namespace, address, port, method, route, path, status] =
            values
                .each_ref()
                .map(|v| v.as_ref().map(Primitive::as_value));
        // The lock is held while the span is made, so the parent stays open meanwhile and
        // its handle need not be cloned (a clone and a close in the subscriber, per span).
        let parent_shard = info.parent_id.map(|p| (p, self.parents.shard(p)));
        let parent = parent_shard
            .as_ref()
            .and_then(|(p, shard)| shard.get(p)?.id());
        let kind = match info.kind {
            SpanKind::Server => "server",
            SpanKind::Client => "client",
            SpanKind::Local => "internal",
        };
        let span = tracing::info_span!(
            parent: parent,
            "baseplate.span",
            otel.name = info.name,
            otel.kind = kind,
            otel.status_code = Empty,
            trace_id = info.trace_id,
            span_id = info.span_id,
            parent_id = info.parent_id,
            db.system.name = system_name,
            db.system = system,
            db.operation.name = operation,
            db.operation.batch.size = batch_size,
            db.namespace = namespace,
            server.address = address,
            server.port = port,
            http.request.method = method,
            http.route = route,
            url.path = path,
            http.response.status_code = status,
            error.message = Empty,
            // Set after the span starts: a script's name, the opt-in query text, a
            // failure's class.
            db.stored_procedure.name = Empty,
            db.query.text = Empty,
            error.type = Empty,
            db.response.status_code = Empty,
        );
        drop(parent_shard);
        let parents = (info.kind != SpanKind::Client).then(|| {
            self.parents
                .shard(info.span_id)
                .insert(info.span_id, span.clone());
            self.parents.clone()
        });
        Some(TracingRecorder::boxed(TracingRecorder {
            span,
            span_id: info.span_id,
            parents,
        }))
    }
}

/// The span fields a tag may fill, in the order the span declares them.
const TAG_FIELDS: [&str; 11] = [
    "db.system.name",
    "db.system",
    "db.operation.name",
    "db.operation.batch.size",
    "db.namespace",
    "server.address",
    "server.port",
    "http.request.method",
    "http.route",
    "url.path",
    "http.response.status_code",
];

/// A tag's value, borrowed in a form `tracing` can record.
enum Primitive<'a> {
    Str(&'a str),
    Int(i64),
    Bool(bool),
    Float(f64),
}

impl<'a> Primitive<'a> {
    fn of(value: &'a TagValue) -> Self {
        match value {
            TagValue::Str(s) => Primitive::Str(s),
            TagValue::Int(i) => Primitive::Int(*i),
            TagValue::Bool(b) => Primitive::Bool(*b),
            TagValue::Float(x) => Primitive::Float(*x),
        }
    }

    fn as_value(&self) -> &dyn tracing::Value {
        match self {
            Primitive::Str(s) => s,
            Primitive::Int(i) => i,
            Primitive::Bool(b) => b,
            Primitive::Float(x) => x,
        }
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

    /// Records the tags this observer's spans have fields for in one call to the
    /// subscriber (each call costs a dispatch and, in `fmt`, a formatting pass); others are
    /// recorded one by one.
    fn on_tags(&mut self, tags: &[(&str, &TagValue)]) {
        // Tags set together after a span starts (an HTTP server span's) fit in one batch.
        const BATCH: usize = 8;
        let fields = self.span.metadata().map(|m| m.fields());
        let (Some(fields), Some(any_field)) = (fields, fields.and_then(|f| f.iter().next())) else {
            return;
        };
        let mut batch: [(Option<tracing::field::Field>, Primitive<'_>); BATCH] =
            std::array::from_fn(|_| (None, Primitive::Bool(false)));
        let mut batched = 0;
        for (key, value) in tags {
            match fields.field(key) {
                Some(field) if batched < BATCH => {
                    batch[batched] = (Some(field), Primitive::of(value));
                    batched += 1;
                }
                _ => self.on_tag(key, value),
            }
        }
        let entries: [(&tracing::field::Field, Option<&dyn tracing::Value>); BATCH] =
            std::array::from_fn(|i| match &batch[i] {
                (Some(field), value) => (field, Some(value.as_value())),
                (None, _) => (&any_field, None),
            });
        self.span.record_all(&fields.value_set(&entries));
    }

    fn on_finish(mut self: Box<Self>, _duration: Duration, error: Option<&dyn std::error::Error>) {
        if let Some(error) = error {
            self.span.record("otel.status_code", "ERROR");
            self.span
                .record("error.message", tracing::field::display(error));
        }
        if let Some(parents) = self.parents.take() {
            parents.shard(self.span_id).remove(&self.span_id);
        }
        // Closes the `tracing` span (the registry closes it once the parents' copy is gone).
        self.span = tracing::Span::none();
        self.recycle();
    }
}
