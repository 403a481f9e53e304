//! The CPU cost of instrumenting one command, without I/O: a handle over a connection that
//! answers at once, against that connection used directly, and against the same metrics and
//! span written by hand around it (the floor any instrumented client has).
//!
//! The `sinks/` rows measure the metrics libraries considered for the native sink, alone
//! and with two threads recording into the same series at once (the contention a
//! multi-threaded runtime creates).
//!
//! ```sh
//! cargo bench --bench instrumentation
//! cargo bench --bench instrumentation -- sinks/   # the sink candidates only
//! ```

#[path = "../examples/support/inline.rs"]
mod inline;
#[path = "../tests/instant_backend/mod.rs"]
mod instant_backend;
#[path = "support/sink_candidates.rs"]
mod sink_candidates;

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use baseplate_redis::config::RawConfig;
use baseplate_redis::sink::{prometheus, FacadeSink, MetricsSink, NativeSink, NoopSink};
use baseplate_redis::span::{
    SpanContext, SpanInfo, SpanObserver, SpanRecorder, TagValue, TraceInfo, TracingObserver,
};
use baseplate_redis::{Baseplate, MonitoredRedisConnection, RedisContextFactory};
use criterion::{criterion_group, criterion_main, Criterion};
use instant_backend::{now, InstantBackend, InstantConnection};
use redis::aio::ConnectionLike;
use redis::Cmd;
use sink_candidates::SinkHandles;

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
    // What users run: the crate's recorder, with its latency buckets.
    let prometheus: Arc<dyn MetricsSink> =
        Arc::new(FacadeSink::with_recorder(Arc::new(prometheus::recorder())));
    let native: Arc<dyn MetricsSink> = Arc::new(NativeSink::new());

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
    run(
        c,
        "command/native",
        &mut handle(native.clone(), &detached),
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
    run(
        c,
        "command/native + tracing (registry)",
        &mut handle(native.clone(), context.span()),
        &cmd,
    );
    server_span.finish();

    // The same observer, in a request that is not sampled: metrics only.
    let unsampled = TraceInfo::new_root().with_sampled(false);
    let server_span = baseplate.make_server_span(&mut context, "bench", Some(unsampled));
    run(
        c,
        "command/native + tracing, unsampled request",
        &mut handle(native.clone(), context.span()),
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

/// Each candidate records what one command records, on one thread and on two at once.
fn sinks(c: &mut Criterion) {
    let candidates = [
        ("metrics-exporter-prometheus", SinkHandles::exporter()),
        ("prometheus", sink_candidates::prometheus_crate()),
        ("measured", sink_candidates::measured()),
        ("metrics-util (mutex)", sink_candidates::metrics_util()),
        ("native (sharded)", SinkHandles::native()),
    ];
    for (name, candidate) in &candidates {
        for threads in [1, 2] {
            c.bench_function(&format!("sinks/{name}, {threads} thread(s)"), |b| {
                b.iter_custom(|iters| {
                    let took = record_on_threads(candidate, threads, iters);
                    candidate.upkeep();
                    took
                })
            });
        }
    }
}

/// The wall time of `threads` threads each recording `iters` commands at once: per
/// command, the time one thread takes when others write the same series.
fn record_on_threads(candidate: &SinkHandles, threads: usize, iters: u64) -> Duration {
    let start = std::sync::Barrier::new(threads);
    let took: Vec<Duration> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    start.wait();
                    let began = Instant::now();
                    for i in 0..iters {
                        candidate.command(black_box((i % 2000) as f64 * 1e-6));
                    }
                    began.elapsed()
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    took.into_iter().max().unwrap_or_default()
}

criterion_group! {
    name = benches;
    // Our `plotters` has no system font (see the loadgen's chart), so no HTML plots.
    config = Criterion::default().without_plots();
    targets = per_command, sinks
}
criterion_main!(benches);
