//! The CPU cost of instrumenting one command, without I/O: a handle over a connection that
//! answers at once, against that connection used directly, and against the same metrics and
//! span written by hand around it (the floor any instrumented client has).
//!
//! ```sh
//! cargo bench --bench instrumentation
//! ```

#[path = "../examples/support/inline.rs"]
mod inline;
#[path = "../tests/instant_backend/mod.rs"]
mod instant_backend;

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use baseplate_redis::config::RawConfig;
use baseplate_redis::sink::{FacadeSink, MetricsSink, NoopSink};
use baseplate_redis::span::{
    SpanContext, SpanInfo, SpanObserver, SpanRecorder, TagValue, TracingObserver,
};
use baseplate_redis::{Baseplate, MonitoredRedisConnection, RedisContextFactory};
use criterion::{criterion_group, criterion_main, Criterion};
use instant_backend::{now, InstantBackend, InstantConnection};
use redis::aio::ConnectionLike;
use redis::Cmd;

/// Takes every span, does nothing with it.
struct Ignoring;

impl SpanObserver for Ignoring {
    fn on_start(&self, _span: &SpanInfo<'_>) -> Option<Box<dyn SpanRecorder>> {
        Some(Box::new(Ignoring))
    }
}

impl SpanRecorder for Ignoring {
    fn on_tag(&mut self, _key: &str, _value: &TagValue) {}

    fn on_finish(self: Box<Self>, _duration: Duration, _error: Option<&dyn std::error::Error>) {}
}

fn handle(sink: Arc<dyn MetricsSink>, span: &SpanContext) -> MonitoredRedisConnection {
    let factory =
        RedisContextFactory::with_options(Arc::new(InstantBackend::default()), "bench", sink);
    factory.connection_in(span)
}

fn run(c: &mut Criterion, name: &str, conn: &mut impl ConnectionLike, cmd: &Cmd) {
    c.bench_function(name, |b| {
        b.iter(|| now(conn.req_packed_command(black_box(cmd))).unwrap())
    });
}

fn per_command(c: &mut Criterion) {
    let cmd = redis::cmd("GET").arg("key").clone();
    let prometheus: Arc<dyn MetricsSink> = Arc::new(FacadeSink::with_recorder(Arc::new(
        metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder(),
    )));

    run(c, "command/direct", &mut InstantConnection, &cmd);

    let detached = SpanContext::detached();
    run(
        c,
        "command/noop sink",
        &mut handle(Arc::new(NoopSink), &detached),
        &cmd,
    );
    run(
        c,
        "command/prometheus",
        &mut handle(prometheus.clone(), &detached),
        &cmd,
    );

    // Our span machinery alone: an observer that takes every span and ignores what it hears.
    let mut baseplate = Baseplate::new(RawConfig::new());
    baseplate.register(Arc::new(Ignoring));
    let mut context = baseplate.make_context_object();
    let server_span = baseplate.make_server_span(&mut context, "bench", None);
    run(
        c,
        "command/prometheus + spans (ignoring observer)",
        &mut handle(prometheus.clone(), context.span()),
        &cmd,
    );
    server_span.finish();

    // Spans for real: a `tracing` subscriber that enables INFO spans and writes nowhere.
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_writer(std::io::sink)
        .finish();
    let _default = tracing::subscriber::set_default(subscriber);
    let mut baseplate = Baseplate::new(RawConfig::new());
    baseplate.register(Arc::new(TracingObserver::new()));
    let mut context = baseplate.make_context_object();
    let server_span = baseplate.make_server_span(&mut context, "bench", None);
    run(
        c,
        "command/prometheus + tracing (fmt)",
        &mut handle(prometheus.clone(), context.span()),
        &cmd,
    );
    server_span.finish();
    drop(_default);

    // The same with the bare registry: the span is built, nothing formats its fields.
    use tracing_subscriber::layer::SubscriberExt;
    let subscriber =
        tracing_subscriber::registry().with(tracing_subscriber::filter::LevelFilter::INFO);
    let _default = tracing::subscriber::set_default(subscriber);
    let mut context = baseplate.make_context_object();
    let server_span = baseplate.make_server_span(&mut context, "bench", None);
    run(
        c,
        "command/prometheus + tracing (registry)",
        &mut handle(prometheus, context.span()),
        &cmd,
    );
    server_span.finish();

    // The floor: the same metrics and span written by hand around the direct connection.
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let instruments = inline::InlineInstruments::new(&recorder, "GET", None, ("127.0.0.1", 6379));
    let request = tracing::info_span!("baseplate.span", otel.name = "bench", otel.kind = "server");
    let mut conn = InstantConnection;
    c.bench_function(
        "command/inline prometheus + tracing (registry), no library",
        |b| {
            b.iter(|| {
                now(instruments.measured(&request, conn.req_packed_command(black_box(&cmd))))
                    .unwrap()
            })
        },
    );
}

criterion_group! {
    name = benches;
    // Our `plotters` has no system font (see the loadgen's chart), so no HTML plots.
    config = Criterion::default().without_plots();
    targets = per_command
}
criterion_main!(benches);
