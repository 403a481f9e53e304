//! Spans: a server span per request, child spans per Redis command or pipeline, and the
//! observers that see them.
//!
//! A [`Span`] reports its start, tags and end (with the error, if any) to every
//! [`SpanObserver`] registered on the [`Baseplate`](crate::Baseplate). With no observer a
//! span costs nothing: the Redis handle does not even build its name.
//!
//! Only sampled traces are reported. A request's server span is sampled when its caller
//! says so ([`TraceInfo::sampled`], read from the request's headers by the `web` layer), or,
//! when the caller sent no decision, at the [`SampleRate`] of the configuration
//! (`tracing.sample_rate`). The decision passes to every child span: the spans of an
//! unsampled request reach no observer, and its Redis commands make none (their metrics are
//! recorded all the same).

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod recording;
mod sampling;
mod tracing_bridge;

pub use recording::{RecordedSpan, RecordingObserver};
pub use sampling::{SampleRate, SAMPLE_RATE_KEY};
pub use tracing_bridge::TracingObserver;

/// Whether a span serves a request, or is work done on the way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SpanKind {
    /// The span of a whole incoming request.
    Server,
    /// A call to another service, such as one Redis command or pipeline.
    Client,
    /// Local work inside a request.
    Local,
}

/// A tag's value.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum TagValue {
    /// Text.
    Str(Cow<'static, str>),
    /// An integer.
    Int(i64),
    /// A boolean.
    Bool(bool),
    /// A float.
    Float(f64),
}

impl fmt::Display for TagValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TagValue::Str(s) => f.write_str(s),
            TagValue::Int(i) => write!(f, "{i}"),
            TagValue::Bool(b) => write!(f, "{b}"),
            TagValue::Float(x) => write!(f, "{x}"),
        }
    }
}

impl From<&'static str> for TagValue {
    fn from(s: &'static str) -> Self {
        TagValue::Str(Cow::Borrowed(s))
    }
}

impl From<String> for TagValue {
    fn from(s: String) -> Self {
        TagValue::Str(Cow::Owned(s))
    }
}

impl From<i64> for TagValue {
    fn from(i: i64) -> Self {
        TagValue::Int(i)
    }
}

impl From<bool> for TagValue {
    fn from(b: bool) -> Self {
        TagValue::Bool(b)
    }
}

impl From<f64> for TagValue {
    fn from(x: f64) -> Self {
        TagValue::Float(x)
    }
}

/// Trace identity coming from the caller of a request (e.g. from its headers; the `web`
/// module, feature `axum`, reads the usual ones).
///
/// ```
/// use baseplate_redis::span::{RecordingObserver, TraceInfo};
/// use baseplate_redis::{Baseplate, RawConfig};
///
/// let mut baseplate = Baseplate::new(RawConfig::new());
/// let spans = RecordingObserver::new();
/// baseplate.register(spans.clone().into_observer());
///
/// let mut context = baseplate.make_context_object();
/// let caller = TraceInfo::from_parent(1234, Some(5678));
/// baseplate.make_server_span(&mut context, "handler", Some(caller)).finish();
///
/// let span = spans.find("handler").unwrap();
/// assert_eq!((span.trace_id, span.parent_id), (1234, Some(5678)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct TraceInfo {
    /// The trace this request belongs to.
    pub trace_id: u64,
    /// The caller's span, which becomes the server span's parent.
    pub parent_id: Option<u64>,
    /// The id for the server span (a new one is made when `None`).
    pub span_id: Option<u64>,
    /// Whether the caller sampled the trace; `None` leaves the decision to the
    /// [`SampleRate`] of the [`Baseplate`](crate::Baseplate).
    pub sampled: Option<bool>,
}

impl TraceInfo {
    /// Trace info from the caller's trace and span ids.
    pub fn from_parent(trace_id: u64, parent_id: Option<u64>) -> Self {
        TraceInfo {
            trace_id,
            parent_id,
            span_id: None,
            sampled: None,
        }
    }

    /// Trace info for a new trace, with fresh random ids.
    pub fn new_root() -> Self {
        TraceInfo::from_parent(new_id(), None)
    }

    /// The same trace with the sampling decision `sampled`.
    pub fn with_sampled(mut self, sampled: bool) -> Self {
        self.sampled = Some(sampled);
        self
    }
}

/// What an observer learns about a span when it starts.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct SpanInfo<'a> {
    /// The trace id, shared by every span of a request.
    pub trace_id: u64,
    /// This span's id.
    pub span_id: u64,
    /// The parent span's id; `None` for a root span.
    pub parent_id: Option<u64>,
    /// The span's name, e.g. `foo.GET` or `foo.pipeline_bar`.
    pub name: &'a str,
    /// What kind of span this is.
    pub kind: SpanKind,
}

/// Sees spans start. Register observers with
/// [`Baseplate::register`](crate::Baseplate::register).
///
/// [`RecordingObserver`] (tests) and [`TracingObserver`] (to `tracing` and OpenTelemetry) are
/// ready-made; a custom observer is a few lines:
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
/// use std::time::Duration;
/// use baseplate_redis::span::{SpanInfo, SpanKind, SpanObserver, SpanRecorder, TagValue};
/// use baseplate_redis::{Baseplate, RawConfig};
///
/// /// Counts failed client spans (Redis commands and pipelines).
/// #[derive(Default)]
/// struct FailedCommands(Arc<AtomicUsize>);
///
/// struct Recorder(Arc<AtomicUsize>);
///
/// impl SpanObserver for FailedCommands {
///     fn on_start(&self, span: &SpanInfo<'_>) -> Option<Box<dyn SpanRecorder>> {
///         (span.kind == SpanKind::Client).then(|| Box::new(Recorder(self.0.clone())) as _)
///     }
/// }
///
/// impl SpanRecorder for Recorder {
///     fn on_tag(&mut self, _key: &str, _value: &TagValue) {}
///     fn on_finish(self: Box<Self>, _took: Duration, error: Option<&dyn std::error::Error>) {
///         if error.is_some() {
///             self.0.fetch_add(1, Ordering::Relaxed);
///         }
///     }
/// }
///
/// let mut baseplate = Baseplate::new(RawConfig::new());
/// baseplate.register(Arc::new(FailedCommands::default()));
/// ```
pub trait SpanObserver: Send + Sync {
    /// A span started. Return a recorder to be told its tags and end, or `None` to ignore it.
    fn on_start(&self, span: &SpanInfo<'_>) -> Option<Box<dyn SpanRecorder>>;

    /// A span started with tags already set (a Redis command's span: its database tags).
    /// By default [`on_start`](Self::on_start), then [`on_tags`](SpanRecorder::on_tags) on
    /// the recorder; override it when the tags are cheaper to take as the span is made
    /// ([`TracingObserver`] makes its `tracing` span with them, which spares a second call
    /// into the subscriber per command).
    fn on_start_tagged(
        &self,
        span: &SpanInfo<'_>,
        tags: &[(&str, &TagValue)],
    ) -> Option<Box<dyn SpanRecorder>> {
        let mut recorder = self.on_start(span)?;
        recorder.on_tags(tags);
        Some(recorder)
    }
}

/// Follows one span from start to end, for one observer.
pub trait SpanRecorder: Send {
    /// A tag was set on the span.
    fn on_tag(&mut self, key: &str, value: &TagValue);
    /// Several tags were set at once (a Redis command's span starts with its database tags).
    /// By default, [`on_tag`](Self::on_tag) for each; override it to record them in one go.
    fn on_tags(&mut self, tags: &[(&str, &TagValue)]) {
        for (key, value) in tags {
            self.on_tag(key, value);
        }
    }
    /// The span ended, after `duration`; `error` is set when the work failed.
    fn on_finish(self: Box<Self>, duration: Duration, error: Option<&dyn std::error::Error>);
}

/// The observers of a [`Baseplate`](crate::Baseplate), shared by all its spans.
pub type Observers = Arc<[Arc<dyn SpanObserver>]>;

/// What a child span needs from its parent: ids, sampling decision and observers. Cheap
/// to clone.
#[derive(Clone)]
pub struct SpanContext {
    trace_id: u64,
    span_id: u64,
    sampled: bool,
    // Empty when the trace is not sampled: nothing of it reaches an observer.
    observers: Observers,
}

impl SpanContext {
    /// A context with no observers and fresh ids, for objects used outside any request.
    pub fn detached() -> Self {
        SpanContext {
            trace_id: new_id(),
            span_id: new_id(),
            sampled: true,
            observers: Arc::new([]),
        }
    }

    /// The trace id.
    pub fn trace_id(&self) -> u64 {
        self.trace_id
    }

    /// The span id children get as their parent id.
    pub fn span_id(&self) -> u64 {
        self.span_id
    }

    /// Whether the trace is sampled (its spans reach the observers).
    pub fn is_sampled(&self) -> bool {
        self.sampled
    }

    /// Whether the trace is sampled and any observer watches spans: when false, callers may
    /// skip building spans.
    #[inline]
    pub fn is_observed(&self) -> bool {
        // An unsampled context holds no observers: one test decides both.
        !self.observers.is_empty()
    }

    /// Starts a child span.
    pub fn child(&self, name: impl Into<Arc<str>>, kind: SpanKind) -> Span {
        Span::start(
            name.into(),
            kind,
            self.trace_id,
            new_id(),
            Some(self.span_id),
            self.sampled,
            self.observers.clone(),
        )
    }

    /// Starts a child span that will have no children (a Redis command's), with its tags.
    /// The tags are lent: the client builds them once, so a command's span copies none.
    pub(crate) fn leaf_child(
        &self,
        name: &str,
        kind: SpanKind,
        tags: &[(&str, &TagValue)],
    ) -> LeafSpan {
        let info = SpanInfo {
            trace_id: self.trace_id,
            span_id: new_id(),
            parent_id: Some(self.span_id),
            name,
            kind,
        };
        LeafSpan {
            reporting: Reporting::start(&info, tags, &self.observers),
        }
    }
}

impl fmt::Debug for SpanContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpanContext")
            .field("trace_id", &self.trace_id)
            .field("span_id", &self.span_id)
            .field("sampled", &self.sampled)
            .field("observers", &self.observers.len())
            .finish()
    }
}

/// A span: a named piece of work with a start, tags, and an end.
///
/// End it with [`finish`](Self::finish) or [`finish_with_error`](Self::finish_with_error).
/// A span dropped without being finished (its future was cancelled) ends with an error
/// saying so.
pub struct Span {
    name: Arc<str>,
    kind: SpanKind,
    context: SpanContext,
    parent_id: Option<u64>,
    reporting: Reporting,
}

/// The recorders of a span: usually one (one observer), held without a `Vec` allocation.
#[derive(Default)]
enum Recorders {
    #[default]
    None,
    One(Box<dyn SpanRecorder>),
    Many(Vec<Box<dyn SpanRecorder>>),
}

impl Recorders {
    fn iter_mut(&mut self) -> std::slice::IterMut<'_, Box<dyn SpanRecorder>> {
        match self {
            Recorders::None => [].iter_mut(),
            Recorders::One(one) => std::slice::from_mut(one).iter_mut(),
            Recorders::Many(many) => many.iter_mut(),
        }
    }
}

impl FromIterator<Box<dyn SpanRecorder>> for Recorders {
    fn from_iter<I: IntoIterator<Item = Box<dyn SpanRecorder>>>(iter: I) -> Self {
        let mut iter = iter.into_iter();
        let Some(first) = iter.next() else {
            return Recorders::None;
        };
        match iter.next() {
            None => Recorders::One(first),
            Some(second) => Recorders::Many([first, second].into_iter().chain(iter).collect()),
        }
    }
}

/// What every span does between its start and its end: hand tags to its recorders, then
/// tell them how it ended, exactly once (a span dropped unfinished ends as cancelled).
struct Reporting {
    start: Instant,
    recorders: Recorders,
    finished: bool,
}

impl Reporting {
    fn start(
        info: &SpanInfo<'_>,
        tags: &[(&str, &TagValue)],
        observers: &[Arc<dyn SpanObserver>],
    ) -> Self {
        let recorders = observers
            .iter()
            .filter_map(|o| o.on_start_tagged(info, tags))
            .collect();
        Reporting {
            start: Instant::now(),
            recorders,
            finished: false,
        }
    }

    fn end_at(&mut self, error: Option<&dyn std::error::Error>, ended: Option<Instant>) {
        if self.finished {
            return;
        }
        self.finished = true;
        let duration = match ended {
            Some(ended) => ended.saturating_duration_since(self.start),
            None => self.start.elapsed(),
        };
        match std::mem::take(&mut self.recorders) {
            Recorders::None => {}
            Recorders::One(recorder) => recorder.on_finish(duration, error),
            Recorders::Many(recorders) => {
                for recorder in recorders {
                    recorder.on_finish(duration, error);
                }
            }
        }
    }
}

impl Drop for Reporting {
    fn drop(&mut self) {
        if !self.finished {
            self.end_at(Some(&Cancelled), None);
        }
    }
}

/// The span of one Redis command or pipeline: a child span that never has children of its
/// own, so it keeps neither its name nor the observers (both are only lent to the observers
/// when it starts). Sparing the two reference counts that every command would otherwise
/// bump on lines shared by all threads is worth a type of its own.
pub(crate) struct LeafSpan {
    reporting: Reporting,
}

impl LeafSpan {
    /// When the span started.
    pub(crate) fn started(&self) -> Instant {
        self.reporting.start
    }

    /// Sets tags learnt after the span started (a script's name, a failure's class).
    pub(crate) fn set_tags(&mut self, tags: &[(&str, &TagValue)]) {
        for recorder in self.reporting.recorders.iter_mut() {
            recorder.on_tags(tags);
        }
    }

    /// Ends the span at `ended` (read by the caller, who also needed it).
    pub(crate) fn finish_at(mut self, ended: Instant, error: Option<&dyn std::error::Error>) {
        self.reporting.end_at(error, Some(ended));
    }
}

/// The span of a whole request, made by
/// [`Baseplate::make_server_span`](crate::Baseplate::make_server_span).
pub type ServerSpan = Span;

#[derive(Debug, thiserror::Error)]
#[error("span dropped before it finished (its work was cancelled)")]
struct Cancelled;

impl Span {
    /// Starts a root server span for an incoming request. It is sampled unless
    /// `trace.sampled` is `Some(false)` ([`Baseplate::make_server_span`](crate::Baseplate::make_server_span)
    /// decides for traces that come without a decision).
    pub fn server(name: impl Into<Arc<str>>, trace: TraceInfo, observers: Observers) -> Self {
        Span::start(
            name.into(),
            SpanKind::Server,
            trace.trace_id,
            trace.span_id.unwrap_or_else(new_id),
            trace.parent_id,
            trace.sampled.unwrap_or(true),
            observers,
        )
    }

    fn start(
        name: Arc<str>,
        kind: SpanKind,
        trace_id: u64,
        span_id: u64,
        parent_id: Option<u64>,
        sampled: bool,
        observers: Observers,
    ) -> Self {
        // The spans of an unsampled trace keep no observer, so none of it is reported.
        let observers = if sampled || observers.is_empty() {
            observers
        } else {
            Arc::new([])
        };
        let info = SpanInfo {
            trace_id,
            span_id,
            parent_id,
            name: &name,
            kind,
        };
        let reporting = Reporting::start(&info, &[], &observers);
        Span {
            name,
            kind,
            context: SpanContext {
                trace_id,
                span_id,
                sampled,
                observers,
            },
            parent_id,
            reporting,
        }
    }

    /// The span's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The span's kind.
    pub fn kind(&self) -> SpanKind {
        self.kind
    }

    /// The trace id.
    pub fn trace_id(&self) -> u64 {
        self.context.trace_id
    }

    /// This span's id.
    pub fn span_id(&self) -> u64 {
        self.context.span_id
    }

    /// The parent's id, if any.
    pub fn parent_id(&self) -> Option<u64> {
        self.parent_id
    }

    /// Whether the trace is sampled: only the spans of sampled traces reach the observers.
    pub fn is_sampled(&self) -> bool {
        self.context.sampled
    }

    /// What children of this span need.
    pub fn context(&self) -> &SpanContext {
        &self.context
    }

    /// Starts a child span.
    pub fn child(&self, name: impl Into<Arc<str>>, kind: SpanKind) -> Span {
        self.context.child(name, kind)
    }

    /// Sets a tag, seen by every observer of this span.
    pub fn set_tag(&mut self, key: &str, value: impl Into<TagValue>) {
        if matches!(self.reporting.recorders, Recorders::None) {
            return;
        }
        let value = value.into();
        for recorder in self.reporting.recorders.iter_mut() {
            recorder.on_tag(key, &value);
        }
    }

    /// Ends the span successfully.
    pub fn finish(mut self) {
        self.reporting.end_at(None, None);
    }

    /// Ends the span with the error that made its work fail.
    pub fn finish_with_error(mut self, error: &dyn std::error::Error) {
        self.reporting.end_at(Some(error), None);
    }

    /// Ends the span with a result's error, if it has one.
    pub fn finish_with<T, E: std::error::Error>(self, result: &Result<T, E>) {
        match result {
            Ok(_) => self.finish(),
            Err(e) => self.finish_with_error(e),
        }
    }
}

impl fmt::Debug for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Span")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("trace_id", &self.context.trace_id)
            .field("span_id", &self.context.span_id)
            .field("parent_id", &self.parent_id)
            .field("sampled", &self.context.sampled)
            .finish_non_exhaustive()
    }
}

/// A random non-zero 64-bit id.
pub(crate) fn new_id() -> u64 {
    fastrand::u64(1..)
}
