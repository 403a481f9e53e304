//! `full`'s instrumentation written by hand around one command of a raw connection: the
//! Prometheus handles resolved once, and one `tracing` span per command with the fields
//! `TracingObserver` gives a command's span. No library, pool or routing: the least any
//! client instrumented this way costs. The load generator's `inline` contender and the
//! `instrumentation` micro-benchmark both use it.

use std::future::Future;
use std::time::Instant;

use baseplate_redis::sink::{key, names};
use metrics::{Counter, Gauge, Histogram, Level, Metadata, Recorder};

static METADATA: Metadata<'static> = Metadata::new("inline", Level::INFO, Some(module_path!()));

/// The metric handles and span fields of one command (or of pipelines).
pub struct InlineInstruments {
    operation: &'static str,
    span_name: String,
    batch_size: Option<usize>,
    host: String,
    port: u16,
    active: Gauge,
    requests: Counter,
    latency: Histogram,
}

impl InlineInstruments {
    /// Handles for the command `operation` (upper case: `GET`…, or `PIPELINE` with a
    /// `batch_size`) from `recorder`, with the series and span name our client gives a client
    /// named `inline`; spans name the server `host:port`.
    pub fn new(
        recorder: &dyn Recorder,
        operation: &'static str,
        batch_size: Option<usize>,
        (host, port): (&str, u16),
    ) -> Self {
        let (span_name, command) = match operation {
            "PIPELINE" => (
                "inline.pipeline".to_string(),
                names::COMMAND_PIPELINE.to_string(),
            ),
            _ => (format!("inline.{operation}"), operation.to_lowercase()),
        };
        let labels = [
            (names::LABEL_COMMAND, command.as_str()),
            (names::LABEL_DATABASE, "0"),
            (names::LABEL_CLIENT_NAME, "inline"),
            (names::LABEL_TYPE, names::TYPE_STANDALONE),
        ];
        let mut outcome = labels.to_vec();
        outcome.push((names::LABEL_SUCCESS, "true"));
        InlineInstruments {
            operation,
            span_name,
            batch_size,
            host: host.to_string(),
            port,
            active: recorder.register_gauge(&key(names::ACTIVE_REQUESTS, &labels), &METADATA),
            requests: recorder.register_counter(&key(names::REQUESTS_TOTAL, &outcome), &METADATA),
            latency: recorder.register_histogram(&key(names::LATENCY_SECONDS, &outcome), &METADATA),
        }
    }

    /// Runs `command` under a span child of `request`, counting it in flight and recording
    /// its latency and count.
    pub async fn measured<T>(
        &self,
        request: &tracing::Span,
        command: impl Future<Output = T>,
    ) -> T {
        self.active.increment(1.0);
        let started = Instant::now();
        let span = tracing::info_span!(
            parent: request,
            "baseplate.span",
            otel.name = self.span_name.as_str(),
            otel.kind = "client",
            db.system.name = "redis",
            db.system = "redis",
            db.operation.name = self.operation,
            db.operation.batch.size = self.batch_size,
            db.namespace = "0",
            server.address = self.host.as_str(),
            server.port = self.port,
        );
        let result = command.await;
        self.latency.record(started.elapsed().as_secs_f64());
        self.requests.increment(1);
        self.active.decrement(1.0);
        drop(span);
        result
    }
}
