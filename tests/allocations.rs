//! The per-command instrumentation makes no heap allocation once warm.
//!
//! A counting global allocator counts, per thread, the allocations made while commands run
//! through a `MonitoredRedisConnection` over a connection that answers at once from memory.
//! The baseline is the same commands through a pass-through handle that does nothing but
//! forward (it, too, must box its future: `ConnectionLike` makes every implementation
//! return one). The difference is what routing, metrics and spans cost: zero.

#[path = "instant_backend/mod.rs"]
mod instant_backend;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use baseplate_redis::config::RawConfig;
use baseplate_redis::sink::{key, names, Counter, Gauge, Histogram, MetricsSink};
use baseplate_redis::sink::{NativeSink, NoopSink};
use baseplate_redis::span::{SpanContext, SpanInfo, SpanObserver, SpanRecorder, TraceInfo};
use baseplate_redis::{Baseplate, MonitoredRedisConnection, RedisContextFactory};
use instant_backend::{now, InstantBackend, InstantConnection};
use redis::aio::ConnectionLike;
use redis::{Cmd, Pipeline, RedisFuture, Value};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: defers to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

const COMMANDS: u64 = 1000;

/// Allocations per command (rounded up) made on this thread by `COMMANDS` runs of `cmd`,
/// after a warm-up.
fn per_command(conn: &mut impl ConnectionLike, cmd: &Cmd) -> u64 {
    for _ in 0..10 {
        now(conn.req_packed_command(cmd)).unwrap();
    }
    let before = allocations();
    for _ in 0..COMMANDS {
        now(conn.req_packed_command(cmd)).unwrap();
    }
    (allocations() - before).div_ceil(COMMANDS)
}

fn per_pipeline(conn: &mut impl ConnectionLike, pipe: &Pipeline) -> u64 {
    for _ in 0..10 {
        now(conn.req_packed_commands(pipe, 0, pipe.len())).unwrap();
    }
    let before = allocations();
    for _ in 0..COMMANDS {
        now(conn.req_packed_commands(pipe, 0, pipe.len())).unwrap();
    }
    (allocations() - before).div_ceil(COMMANDS)
}

/// A handle that only forwards: what any `ConnectionLike` wrapper must allocate.
struct PassThrough(InstantConnection);

impl ConnectionLike for PassThrough {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move { self.0.req_packed_command(cmd).await })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move { self.0.req_packed_commands(pipeline, offset, count).await })
    }

    fn get_db(&self) -> i64 {
        0
    }
}

/// A sink whose handles really count and sum (atomics), as an exporter's do.
#[derive(Debug, Default)]
struct AtomicSink;

#[derive(Debug, Default)]
struct AtomicHistogram(AtomicU64);

impl metrics::HistogramFn for AtomicHistogram {
    fn record(&self, value: f64) {
        self.0
            .fetch_add(value.to_bits() & 1, std::sync::atomic::Ordering::Relaxed);
    }
}

impl MetricsSink for AtomicSink {
    fn counter(&self, _key: &metrics::Key) -> Counter {
        Counter::from_arc(Arc::new(AtomicU64::new(0)))
    }

    fn gauge(&self, _key: &metrics::Key) -> Gauge {
        Gauge::from_arc(Arc::new(AtomicU64::new(0)))
    }

    fn histogram(&self, _key: &metrics::Key) -> Histogram {
        Histogram::from_arc(Arc::new(AtomicHistogram::default()))
    }
}

/// Watches spans but wants none of them: spans are started (so span names are asked for)
/// without any recorder.
#[derive(Debug)]
struct Uninterested;

impl SpanObserver for Uninterested {
    fn on_start(&self, _span: &SpanInfo<'_>) -> Option<Box<dyn SpanRecorder>> {
        None
    }
}

fn handle(sink: Arc<dyn MetricsSink>, span: &SpanContext) -> MonitoredRedisConnection {
    RedisContextFactory::with_options(Arc::new(InstantBackend::default()), "alloc", sink)
        .connection_in(span)
}

#[test]
fn instrumentation_adds_no_allocation_per_command() {
    // The sinks must be real: a key built and registered once is fine, per command is not.
    let _ = key(names::REQUESTS_TOTAL, &[]);
    let detached = SpanContext::detached();
    let mut baseplate = Baseplate::new(RawConfig::new());
    baseplate.register(Arc::new(Uninterested));
    let mut context = baseplate.make_context_object();
    let server_span = baseplate.make_server_span(&mut context, "alloc", None);
    let mut unsampled = baseplate.make_context_object();
    let not_traced = TraceInfo::new_root().with_sampled(false);
    let unsampled_span = baseplate.make_server_span(&mut unsampled, "alloc", Some(not_traced));

    let mut pipe = redis::pipe();
    pipe.set("k", "v").ignore().get("k");

    for (name, cmd) in [
        ("GET", redis::cmd("GET").arg("key").clone()),
        ("set", redis::cmd("set").arg("key").arg("value").clone()),
        // Not in the table of common commands: found through the map.
        (
            "OBJECT",
            redis::cmd("OBJECT").arg("ENCODING").arg("key").clone(),
        ),
    ] {
        let direct = per_command(&mut InstantConnection, &cmd);
        let baseline = per_command(&mut PassThrough(InstantConnection), &cmd);
        assert_eq!(
            direct, 1,
            "the instant connection boxes its future, nothing else"
        );
        assert_eq!(baseline, 2, "a forwarding handle adds its own boxed future");
        let cases: [(&str, Arc<dyn MetricsSink>, &SpanContext); 5] = [
            ("no-op sink", Arc::new(NoopSink), &detached),
            ("atomic sink", Arc::new(AtomicSink), &detached),
            (
                "atomic sink, observed spans",
                Arc::new(AtomicSink),
                context.span(),
            ),
            ("native sink", Arc::new(NativeSink::new()), context.span()),
            (
                "native sink, unsampled request",
                Arc::new(NativeSink::new()),
                unsampled.span(),
            ),
        ];
        for (case, sink, span) in cases {
            let mut monitored = handle(sink, span);
            assert_eq!(
                per_command(&mut monitored, &cmd),
                baseline,
                "{case}: allocations per {name} beyond a forwarding handle's",
            );
        }
    }

    let direct = per_pipeline(&mut InstantConnection, &pipe);
    let baseline = per_pipeline(&mut PassThrough(InstantConnection), &pipe);
    assert_eq!(baseline, direct + 1);
    let mut monitored = handle(Arc::new(AtomicSink), &detached);
    assert_eq!(per_pipeline(&mut monitored, &pipe), baseline, "pipelines");
    server_span.finish();
    unsampled_span.finish();
}
