//! An observer that records every span, for tests and the quick start.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::{SpanInfo, SpanKind, SpanObserver, SpanRecorder, TagValue};

/// One span as recorded by [`RecordingObserver`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RecordedSpan {
    /// The trace id.
    pub trace_id: u64,
    /// The span id.
    pub span_id: u64,
    /// The parent's span id.
    pub parent_id: Option<u64>,
    /// The span's name.
    pub name: String,
    /// The span's kind.
    pub kind: SpanKind,
    /// Tags in the order they were set (later values of a key replace earlier ones).
    pub tags: BTreeMap<String, TagValue>,
    /// Whether the span has ended.
    pub finished: bool,
    /// How long it took, once finished.
    pub duration: Option<Duration>,
    /// The error it ended with, rendered with `Display`.
    pub error: Option<String>,
}

/// Records every span it sees, in start order.
///
/// ```
/// use std::sync::Arc;
/// use baseplate_redis::span::{RecordingObserver, Span, SpanKind, TraceInfo};
///
/// let observer = RecordingObserver::new();
/// let span = Span::server("handler", TraceInfo::new_root(), Arc::new([observer.clone().into_observer()]));
/// span.child("handler.work", SpanKind::Local).finish();
/// span.finish();
/// assert_eq!(observer.names(), ["handler", "handler.work"]);
/// assert!(observer.spans().iter().all(|s| s.finished && s.error.is_none()));
/// ```
#[derive(Debug, Clone, Default)]
pub struct RecordingObserver {
    spans: Arc<Mutex<Vec<RecordedSpan>>>,
}

struct Recorder {
    spans: Arc<Mutex<Vec<RecordedSpan>>>,
    index: usize,
}

impl RecordingObserver {
    /// An observer with nothing recorded yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// This observer as the shared trait object `Baseplate` and `Span::server` take.
    pub fn into_observer(self) -> Arc<dyn SpanObserver> {
        Arc::new(self)
    }

    /// Every span recorded so far, in start order.
    pub fn spans(&self) -> Vec<RecordedSpan> {
        lock(&self.spans).clone()
    }

    /// The names of the spans, in start order.
    pub fn names(&self) -> Vec<String> {
        lock(&self.spans).iter().map(|s| s.name.clone()).collect()
    }

    /// The first span with this name.
    pub fn find(&self, name: &str) -> Option<RecordedSpan> {
        lock(&self.spans).iter().find(|s| s.name == name).cloned()
    }

    /// The spans whose parent is `span_id`.
    pub fn children_of(&self, span_id: u64) -> Vec<RecordedSpan> {
        lock(&self.spans)
            .iter()
            .filter(|s| s.parent_id == Some(span_id))
            .cloned()
            .collect()
    }

    /// Forgets every recorded span.
    pub fn clear(&self) {
        lock(&self.spans).clear();
    }

    /// The spans as an indented tree, one line each: name, duration, error.
    pub fn render_tree(&self) -> String {
        let spans = self.spans();
        let mut out = String::new();
        let roots = spans.iter().filter(|s| {
            s.parent_id
                .is_none_or(|p| !spans.iter().any(|o| o.span_id == p))
        });
        for root in roots {
            render(&spans, root, 0, &mut out);
        }
        out
    }
}

fn render(spans: &[RecordedSpan], span: &RecordedSpan, depth: usize, out: &mut String) {
    let duration = span
        .duration
        .map(|d| format!("{:.3} ms", d.as_secs_f64() * 1e3))
        .unwrap_or_else(|| "unfinished".into());
    let _ = write!(
        out,
        "{:indent$}{} ({duration})",
        "",
        span.name,
        indent = depth * 2
    );
    if let Some(error) = &span.error {
        let _ = write!(out, " error: {error}");
    }
    out.push('\n');
    for child in spans.iter().filter(|c| c.parent_id == Some(span.span_id)) {
        render(spans, child, depth + 1, out);
    }
}

impl SpanObserver for RecordingObserver {
    fn on_start(&self, span: &SpanInfo<'_>) -> Option<Box<dyn SpanRecorder>> {
        let mut spans = lock(&self.spans);
        spans.push(RecordedSpan {
            trace_id: span.trace_id,
            span_id: span.span_id,
            parent_id: span.parent_id,
            name: span.name.to_string(),
            kind: span.kind,
            tags: BTreeMap::new(),
            finished: false,
            duration: None,
            error: None,
        });
        Some(Box::new(Recorder {
            spans: self.spans.clone(),
            index: spans.len() - 1,
        }))
    }
}

impl SpanRecorder for Recorder {
    fn on_tag(&mut self, key: &str, value: &TagValue) {
        if let Some(span) = lock(&self.spans).get_mut(self.index) {
            span.tags.insert(key.to_string(), value.clone());
        }
    }

    fn on_finish(self: Box<Self>, duration: Duration, error: Option<&dyn std::error::Error>) {
        if let Some(span) = lock(&self.spans).get_mut(self.index) {
            span.finished = true;
            span.duration = Some(duration);
            span.error = error.map(|e| e.to_string());
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
