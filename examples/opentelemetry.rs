//! Exports the spans of a request and its Redis commands as OpenTelemetry spans, through
//! `tracing` and `tracing-opentelemetry`, and the client's metrics under the OpenTelemetry
//! database conventions' names through an OpenTelemetry meter, both to stdout.
//!
//! ```sh
//! cargo run --example opentelemetry                                  # in-memory backend
//! REDIS_URL=redis://127.0.0.1:6379/0 cargo run --example opentelemetry   # a real server
//! ```
//!
//! Each Redis command becomes a client span (`redis.SET`, `redis.pipeline_counters`…) under
//! the request's server span, with the database semantic-convention attributes
//! `db.system.name` / `db.system` = `redis`, `db.operation.name`, `db.namespace` (the db
//! index), `server.address` and `server.port` (never credentials); a failed one also
//! `error.type` and `db.response.status_code`, and (opted in here) `db.query.text`.
//!
//! The metrics (`MetricNaming::OpenTelemetry`) are `db.client.operation.duration` and the
//! `db.client.connection.*` pool metrics, reported through `support/otel_meter.rs`, a
//! `MetricsSink` over any OpenTelemetry `Meter` (swap the stdout exporter for OTLP).

#[path = "support/otel_meter.rs"]
mod otel_meter;

use std::process::ExitCode;
use std::sync::Arc;

use baseplate_redis::config::RawConfig;
use baseplate_redis::span::TracingObserver;
use baseplate_redis::telemetry::{MetricNaming, TelemetryOptions};
use baseplate_redis::{Baseplate, ContextSpec, RedisClient};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::SdkTracerProvider;
use redis::AsyncCommands;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

#[tokio::main]
async fn main() -> ExitCode {
    // Simple exporter: each span is printed as soon as it ends.
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(opentelemetry_stdout::SpanExporter::default())
        .build();
    let tracer = provider.tracer("baseplate-redis-example");
    tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(tracer))
        .init();

    // Metrics: exported when the provider shuts down (and every 60 s until then).
    let meters = SdkMeterProvider::builder()
        .with_reader(
            PeriodicReader::builder(opentelemetry_stdout::MetricExporter::default()).build(),
        )
        .build();
    let sink = Arc::new(otel_meter::MeterSink::new(
        meters.meter("baseplate-redis-example"),
    ));

    let result = run(sink).await;
    if let Err(err) = provider.shutdown() {
        eprintln!("opentelemetry: shutting the exporter down failed: {err}");
    }
    if let Err(err) = meters.shutdown() {
        eprintln!("opentelemetry: shutting the metrics exporter down failed: {err}");
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("opentelemetry: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(sink: Arc<otel_meter::MeterSink>) -> Result<(), String> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "memory://otel".to_string());
    let config = RawConfig::from_pairs([("redis.url", url)]);
    let mut baseplate = Baseplate::new(config)
        .with_metrics_sink(sink)
        .map_err(|e| e.to_string())?;
    baseplate.register(Arc::new(TracingObserver::new()));
    let telemetry = TelemetryOptions::new()
        .metric_naming(MetricNaming::OpenTelemetry)
        .query_text(true);
    baseplate
        .configure_context(
            ContextSpec::new().client("redis", RedisClient::new().telemetry(telemetry)),
        )
        .map_err(|e| e.to_string())?;

    baseplate
        .serve("GET /profile/{user}", None, async |context| {
            let mut redis = context.redis("redis")?;
            let _: () = redis.set("profile:alice", "Alice").await?;
            let _: String = redis.get("profile:alice").await?;
            let mut pipe = redis.pipeline("counters");
            pipe.incr("views:alice", 1)
                .expire("views:alice", 60)
                .ignore();
            let _: (i64,) = pipe.query_async(&mut redis).await?;
            Ok::<_, baseplate_redis::Error>(())
        })
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    // The pool gauges (db.client.connection.count, .max), as the periodic reporter would.
    baseplate.report_runtime_metrics();
    Ok(())
}
