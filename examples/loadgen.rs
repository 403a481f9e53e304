//! Load generator: what an instrumented, pooled client costs next to a raw `redis-rs`
//! multiplexed connection, measured side by side in one run.
//!
//! ```sh
//! cargo run --release --features prometheus --example loadgen                       # table + ratio lines
//! cargo run --release --features prometheus --example loadgen -- --chart benchmarks.png --markdown BENCHMARKS.md
//! cargo run --release --features prometheus --example loadgen -- --secs 1 --rounds 1 --tasks 1,64
//! ```
//!
//! It starts a private `redis-server` on a free loopback port (or uses `REDIS_URL`) and
//! measures, at each concurrency (tasks) and for GET, SET and a 100-command pipeline:
//!
//! - `raw`: one shared redis-rs `MultiplexedConnection`, cloned into every task;
//! - `inline`: `raw` with `full`'s instrumentation written by hand around each command (the
//!   same Prometheus series, one `tracing` span per command with the same fields under a
//!   request span): no library, no pool, no routing, so the least any client instrumented
//!   this way can cost;
//! - `noop`: our client (mobc pool, shared multiplexed connection) with the no-op sink and no
//!   span observer;
//! - `full`: our client fully instrumented the way of the facade: `FacadeSink::global()` with
//!   the crate's Prometheus recorder installed (`sink::prometheus::install()`: its latency
//!   buckets), and the `TracingObserver` under a `tracing` subscriber that builds every span
//!   (INFO level) and exports nothing (the registry; `--fmt-subscriber`: `fmt` writing to
//!   `std::io::sink`);
//! - `metrics` and `spans`: `full` with only its Prometheus metrics, or only its spans, to
//!   show which half costs what;
//! - `production`: the `NativeSink` on every command and the `TracingObserver`, with 1% of
//!   requests sampled (`tracing.sample_rate = 1%`): what a service runs;
//! - `traced`: the `NativeSink` and a `tracing` span for every command (every request
//!   sampled);
//! - `exclusive`: our pool with an exclusive checkout per command (what a classic pool does),
//!   no instrumentation;
//! - `redis-benchmark` at the same concurrency, when it is on PATH.
//!
//! Cells run interleaved (every mode, rotated each round) and the whole set
//! is repeated `--rounds` times; a mode's ratio is the median of its per-round ratios to the
//! raw cell of the same round. Output: a table, and lines `ratio <mode> <tasks> <op> <value>`.
//!
//! `/metrics` is scraped every 15 s (Prometheus' default interval): the Prometheus recorder
//! and the native sink are rendered. `RSS MiB` is how much the process' resident memory grew
//! during the mode's cells, added up over the run. `--soak SECS` then runs `production` and
//! `full` for SECS each (GET, highest concurrency, a bounded sample of latencies kept),
//! never scraped, and prints the resident memory before and after (lines `memory <mode> …`).
//!
//! Each task of `inline`, `noop`, `metrics`, `spans` and `full` works as a request handler
//! would: it opens a request (server span, and for our client a handle from the request
//! context) every 100 commands and runs them under it.

mod support;

use support::inline::InlineInstruments;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use baseplate_redis::config::RawConfig;
use baseplate_redis::pool::PoolBackend;
use baseplate_redis::sink::{FacadeSink, MetricsSink, NativeSink, NoopSink};
use baseplate_redis::span::{SampleRate, TracingObserver};
use baseplate_redis::{pool_from_config, Baseplate, ClientCacheOptions, RedisContextFactory};
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{AsyncConnectionConfig, Pipeline, Value};

/// Commands per request for the client modes, and per pipeline.
const REQUEST_COMMANDS: usize = 100;
const PIPELINE_COMMANDS: usize = 100;
const VALUE_SIZE: usize = 100;
/// How often `/metrics` is scraped (Prometheus' default).
const SCRAPE_INTERVAL: Duration = Duration::from_secs(15);
/// Latencies kept per task: all of them in the measured cells; in a soak, a bounded sample
/// (keeping them all would grow the process by 8 bytes per command: not the client's memory).
const ALL_LATENCIES: usize = usize::MAX;
const SOAK_LATENCIES: usize = 256;
/// The share of requests `production` samples.
const PRODUCTION_SAMPLE_RATE: f64 = 0.01;
const CLIENT: &str = "bench";
/// The `cached` mode's memory bound: at most this many keys in its client-side cache.
const CACHE_MAX_KEYS: u32 = 1_000;
/// Keys `loadgen:0`… set before the run (one per task, and more than the cache holds).
const PREPARED_KEYS: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Mode {
    Raw,
    Inline,
    Noop,
    Metrics,
    Spans,
    Full,
    Production,
    Traced,
    Exclusive,
    /// `full` with `client_cache` on: GETs of the tasks' hot keys served locally.
    Cached,
}

impl Mode {
    /// The modes `--modes` may name (raw always runs: it is what the others are compared to).
    const CHOSEN: [Mode; 9] = [
        Mode::Inline,
        Mode::Noop,
        Mode::Metrics,
        Mode::Spans,
        Mode::Full,
        Mode::Production,
        Mode::Traced,
        Mode::Exclusive,
        Mode::Cached,
    ];

    fn name(self) -> &'static str {
        match self {
            Mode::Raw => "raw",
            Mode::Inline => "inline",
            Mode::Noop => "noop",
            Mode::Metrics => "metrics",
            Mode::Spans => "spans",
            Mode::Full => "full",
            Mode::Production => "production",
            Mode::Traced => "traced",
            Mode::Exclusive => "exclusive",
            Mode::Cached => "cached",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Mode::Raw => "redis-rs, one shared MultiplexedConnection",
            Mode::Inline => {
                "`raw` with `full`'s metrics and spans written by hand around each command \
                 (no library, pool or routing): the floor for `full`"
            }
            Mode::Noop => "baseplate-redis, no-op sink, no observer",
            Mode::Metrics => {
                "baseplate-redis, Prometheus only (no observer): `full` less its spans"
            }
            Mode::Spans => {
                "baseplate-redis, tracing spans only (no-op sink): `full` less its metrics"
            }
            Mode::Full => {
                "baseplate-redis, Prometheus through the facade (the crate's recorder) + \
                 tracing spans"
            }
            Mode::Production => {
                "baseplate-redis, native sink + tracing observer, 1% of requests sampled"
            }
            Mode::Traced => "baseplate-redis, native sink + a tracing span for every command",
            Mode::Exclusive => "baseplate-redis pool, exclusive checkout per command",
            Mode::Cached => {
                "baseplate-redis, Prometheus + tracing spans, client-side cache (client_cache)"
            }
        }
    }

    /// The mode's colour in the chart.
    fn color(self) -> plotters::style::RGBColor {
        use plotters::style::colors::{BLACK, BLUE, RED};
        use plotters::style::RGBColor;
        match self {
            Mode::Raw => BLACK,
            Mode::Inline => RGBColor(0, 170, 170),
            Mode::Noop => BLUE,
            Mode::Metrics => RGBColor(230, 140, 0),
            Mode::Spans => RGBColor(0, 150, 0),
            Mode::Full => RED,
            Mode::Production => RGBColor(150, 0, 200),
            Mode::Traced => RGBColor(200, 0, 100),
            Mode::Exclusive => RGBColor(140, 140, 140),
            Mode::Cached => RGBColor(150, 0, 150),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    Get,
    Set,
    Pipeline,
}

impl Op {
    const ALL: [Op; 3] = [Op::Get, Op::Set, Op::Pipeline];

    fn name(self) -> &'static str {
        match self {
            Op::Get => "get",
            Op::Set => "set",
            Op::Pipeline => "pipe100",
        }
    }
}

struct Args {
    secs: f64,
    rounds: usize,
    tasks: Vec<usize>,
    ops: Vec<Op>,
    modes: Option<Vec<Mode>>,
    max_connections: u32,
    exclusive: bool,
    benchmark: bool,
    fmt_subscriber: bool,
    soak: Option<f64>,
    chart: Option<PathBuf>,
    markdown: Option<PathBuf>,
}

const USAGE: &str =
    "usage: loadgen [--secs S] [--rounds N] [--tasks 1,16,64] [--ops get,set,pipe100]
               [--modes inline,noop,metrics,spans,full,production,traced,exclusive,cached]
               [--max-connections N] [--no-exclusive] [--no-redis-benchmark]
               [--fmt-subscriber] [--soak SECS]
               [--chart FILE.png] [--markdown FILE.md]
env: REDIS_URL (default: a private redis-server), LOADGEN_SECS, LOADGEN_ROUNDS";

impl Args {
    fn parse() -> Result<Args, String> {
        let env_num = |name: &str| std::env::var(name).ok();
        let mut args = Args {
            secs: env_num("LOADGEN_SECS").map_or(Ok(0.5), |v| parse_num(&v, "LOADGEN_SECS"))?,
            rounds: env_num("LOADGEN_ROUNDS").map_or(Ok(7), |v| parse_num(&v, "LOADGEN_ROUNDS"))?,
            tasks: vec![1, 16, 64],
            ops: Op::ALL.to_vec(),
            modes: None,
            max_connections: 50,
            exclusive: true,
            benchmark: true,
            fmt_subscriber: false,
            soak: None,
            chart: None,
            markdown: None,
        };
        let mut it = std::env::args().skip(1);
        while let Some(flag) = it.next() {
            let mut value = || {
                it.next()
                    .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
            };
            match flag.as_str() {
                "--secs" => args.secs = parse_num(&value()?, "--secs")?,
                "--rounds" => args.rounds = parse_num(&value()?, "--rounds")?,
                "--tasks" => {
                    args.tasks = value()?
                        .split(',')
                        .map(|t| parse_num(t, "--tasks"))
                        .collect::<Result<_, _>>()?
                }
                "--ops" => {
                    args.ops = value()?
                        .split(',')
                        .map(|name| {
                            Op::ALL
                                .into_iter()
                                .find(|op| op.name() == name)
                                .ok_or_else(|| {
                                    format!("--ops: unknown op {name:?} (get, set, pipe100)")
                                })
                        })
                        .collect::<Result<_, _>>()?
                }
                "--modes" => {
                    args.modes = Some(
                        value()?
                            .split(',')
                            .map(|name| {
                                Mode::CHOSEN
                                    .into_iter()
                                    .find(|m| m.name() == name)
                                    .ok_or_else(|| {
                                        format!(
                                            "--modes: unknown mode {name:?} \
                                             (inline, noop, metrics, spans, full, production, \
                                             traced, exclusive)"
                                        )
                                    })
                            })
                            .collect::<Result<_, _>>()?,
                    )
                }
                "--max-connections" => {
                    args.max_connections = parse_num(&value()?, "--max-connections")?
                }
                "--no-exclusive" => args.exclusive = false,
                "--no-redis-benchmark" => args.benchmark = false,
                "--fmt-subscriber" => args.fmt_subscriber = true,
                "--soak" => args.soak = Some(parse_num(&value()?, "--soak")?),
                "--chart" => args.chart = Some(value()?.into()),
                "--markdown" => args.markdown = Some(value()?.into()),
                "--help" | "-h" => return Err(USAGE.to_string()),
                other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
            }
        }
        if args.secs.is_nan()
            || args.secs <= 0.0
            || args.rounds == 0
            || args.tasks.contains(&0)
            || args.ops.is_empty()
        {
            return Err(format!(
                "--secs, --rounds and --tasks must be positive\n{USAGE}"
            ));
        }
        Ok(args)
    }
}

fn parse_num<T: std::str::FromStr>(s: &str, what: &str) -> Result<T, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("{what}: {s:?} is not a valid number"))
}

/// What one cell (mode × tasks × op, one round) measured.
#[derive(Debug, Clone, Copy)]
struct Cell {
    ops_per_sec: f64,
    p50: Duration,
    p99: Duration,
    /// CPU time this process spent per op (all threads), when the OS tells.
    cpu_per_op: Option<Duration>,
}

/// The contenders, built once and reused by every cell.
struct Contenders {
    client: redis::Client,
    raw: MultiplexedConnection,
    /// The server's host and port, as `inline`'s spans name them.
    server: Arc<(String, u16)>,
    noop: RedisContextFactory,
    noop_pool: Arc<dyn PoolBackend>,
    metrics: Service,
    spans: Service,
    full: Service,
    production: Service,
    traced: Service,
    exclusive_pool: Arc<dyn PoolBackend>,
    cached: Service,
    cached_factory: RedisContextFactory,
}

/// Our client as a service sets it up, with its own pool.
struct Service {
    baseplate: Arc<Baseplate>,
    pool: Arc<dyn PoolBackend>,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("loadgen: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let args = Args::parse()?;
    let (_server, url, port) = match std::env::var("REDIS_URL") {
        Ok(url) => {
            let port = url::Url::parse(&url)
                .ok()
                .and_then(|u| u.port())
                .unwrap_or(6379);
            (None, url, port)
        }
        Err(_) => {
            let server = support::RedisServer::start()?;
            let (url, port) = (server.url(), server.port());
            (Some(server), url, port)
        }
    };
    let native = NativeSink::new();
    let scraping = install_observability(args.fmt_subscriber, native.clone())?;
    let mut contenders = Contenders::build(&url, args.max_connections, native).await?;
    prepare_keys(&contenders.raw).await?;

    let mut modes: Vec<Mode> = [Mode::Raw]
        .into_iter()
        .chain(
            Mode::CHOSEN
                .into_iter()
                .filter(|m| args.modes.as_ref().is_none_or(|only| only.contains(m))),
        )
        .collect();
    if !args.exclusive {
        modes.retain(|m| *m != Mode::Exclusive);
    }
    let cells_total = args.rounds * args.tasks.len() * args.ops.len() * modes.len();
    eprintln!(
        "loadgen: {cells_total} cells of {} s ({} rounds × tasks {:?} × {} ops × {} modes)",
        args.secs,
        args.rounds,
        args.tasks,
        args.ops.len(),
        modes.len()
    );
    let mut results: BTreeMap<(Mode, usize, Op), Vec<Cell>> = BTreeMap::new();
    let mut ratios: BTreeMap<(Mode, usize, Op), Vec<f64>> = BTreeMap::new();
    let mut sockets: BTreeMap<Mode, u32> = BTreeMap::new();
    let mut benchmark: BTreeMap<(usize, Op), Vec<f64>> = BTreeMap::new();
    let mut memory: BTreeMap<Mode, i64> = BTreeMap::new();
    let redis_benchmark = args.benchmark && redis_benchmark_present();
    let duration = Duration::from_secs_f64(args.secs);
    for round in 0..args.rounds {
        for &tasks in &args.tasks {
            for &op in &args.ops {
                let mut order = modes.clone();
                order.rotate_left(round % modes.len());
                let mut this_round = BTreeMap::new();
                for &mode in &order {
                    let rss_before = resident_bytes();
                    let (cell, peak) = match contenders
                        .run_cell(mode, tasks, op, duration, ALL_LATENCIES)
                        .await
                    {
                        Ok(measured) => measured,
                        Err(e) => {
                            // Once, the server closed a socket mid-run on this shared machine:
                            // say so, reconnect the raw connection (our pools recover by
                            // themselves) and measure the cell again.
                            eprintln!(
                                "loadgen: {} {tasks} {}: {e}; retrying",
                                mode.name(),
                                op.name()
                            );
                            contenders.reconnect_raw().await?;
                            contenders
                                .run_cell(mode, tasks, op, duration, ALL_LATENCIES)
                                .await?
                        }
                    };
                    if let (Some(before), Some(after)) = (rss_before, resident_bytes()) {
                        *memory.entry(mode).or_default() += after as i64 - before as i64;
                    }
                    if let Some(peak) = peak {
                        let max = sockets.entry(mode).or_default();
                        *max = (*max).max(peak);
                    }
                    eprintln!(
                        "  round {} {:>3} tasks {:<8} {:<9} {:>10.0} ops/s  p50 {:>7.1} µs  p99 {:>7.1} µs  cpu {:>6.2} µs/op",
                        round + 1,
                        tasks,
                        op.name(),
                        mode.name(),
                        cell.ops_per_sec,
                        micros(cell.p50),
                        micros(cell.p99),
                        cell.cpu_per_op.map_or(f64::NAN, micros),
                    );
                    this_round.insert(mode, cell);
                    results.entry((mode, tasks, op)).or_default().push(cell);
                }
                let raw = this_round[&Mode::Raw].ops_per_sec;
                for (&mode, cell) in &this_round {
                    ratios
                        .entry((mode, tasks, op))
                        .or_default()
                        .push(cell.ops_per_sec / raw);
                }
                if redis_benchmark {
                    let total = (raw * args.secs).max(1000.0) as u64;
                    match run_redis_benchmark(port, tasks, op, total) {
                        Ok(ops) => {
                            eprintln!(
                                "  round {} {:>3} tasks {:<8} redis-benchmark {:>10.0} ops/s",
                                round + 1,
                                tasks,
                                op.name(),
                                ops
                            );
                            benchmark.entry((tasks, op)).or_default().push(ops / raw)
                        }
                        Err(e) => eprintln!("loadgen: redis-benchmark failed: {e}"),
                    }
                }
            }
        }
    }

    let mut soaks = Vec::new();
    if let Some(secs) = args.soak {
        // Memory with nobody scraping: the native sink's should not move.
        scraping.store(false, Ordering::Relaxed);
        let tasks = args.tasks.iter().copied().max().unwrap_or(64);
        for mode in [Mode::Production, Mode::Full] {
            let before = resident_bytes().unwrap_or(0);
            let duration = Duration::from_secs_f64(secs);
            let (cell, _) = contenders
                .run_cell(mode, tasks, Op::Get, duration, SOAK_LATENCIES)
                .await?;
            let after = resident_bytes().unwrap_or(0);
            let soak = Soak {
                mode,
                secs,
                tasks,
                commands: (cell.ops_per_sec * secs) as u64,
                before,
                after,
            };
            println!("{}", soak.line());
            soaks.push(soak);
        }
        scraping.store(true, Ordering::Relaxed);
    }

    let max_sockets = args.max_connections;
    let report = Report {
        args: &args,
        modes: &modes,
        results: &results,
        ratios: &ratios,
        benchmark: &benchmark,
        sockets: &sockets,
        memory: &memory,
        soaks: &soaks,
    };
    print!("{}", report.table());
    for ((mode, tasks, op), values) in &ratios {
        if *mode != Mode::Raw {
            println!(
                "ratio {} {tasks} {} {:.3}",
                mode.name(),
                op.name(),
                median(values)
            );
        }
    }
    for ((tasks, op), values) in &benchmark {
        println!(
            "ratio redis-benchmark {tasks} {} {:.3}",
            op.name(),
            median(values)
        );
    }
    for (mode, grown) in &memory {
        println!("rss {} {:+.1} MiB", mode.name(), mib(*grown));
    }
    if modes.contains(&Mode::Cached) {
        let (read, held) = fill_cache(&contenders.cached_factory).await?;
        println!("client_cache read {read} distinct keys, held {held} max_keys {CACHE_MAX_KEYS}");
    }
    for (mode, peak) in &sockets {
        println!(
            "sockets {} {peak} max_connections {max_sockets}",
            mode.name()
        );
    }
    if let Some(path) = &args.chart {
        chart::draw(path, &report)?;
        eprintln!("loadgen: wrote {}", path.display());
    }
    if let Some(path) = &args.markdown {
        let chart_name = args
            .chart
            .as_ref()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned());
        std::fs::write(path, report.markdown(chart_name.as_deref()))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        eprintln!("loadgen: wrote {}", path.display());
    }
    if sockets.values().any(|&peak| peak > max_sockets) {
        return Err(format!(
            "more than max_connections ({max_sockets}) sockets were open"
        ));
    }
    Ok(())
}

/// The "fully instrumented" environment: the crate's Prometheus recorder as the global
/// `metrics` recorder (what the README tells users to install), both it and `native`
/// scraped every [`SCRAPE_INTERVAL`] while the returned flag is set, and a `tracing`
/// subscriber that enables (and so builds) every INFO span but exports nothing: the
/// registry (spans are created, stored and closed), or with `--fmt-subscriber` the `fmt`
/// subscriber writing to `std::io::sink` (it also formats every span's fields into a string).
fn install_observability(fmt: bool, native: NativeSink) -> Result<Arc<AtomicBool>, String> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let prometheus = baseplate_redis::sink::prometheus::install()
        .map_err(|e| format!("cannot install the Prometheus recorder: {e}"))?;
    let scraping = Arc::new(AtomicBool::new(true));
    let scrape = scraping.clone();
    std::thread::Builder::new()
        .name("scraper".into())
        .spawn(move || loop {
            std::thread::sleep(SCRAPE_INTERVAL);
            if scrape.load(Ordering::Relaxed) {
                std::hint::black_box((prometheus.render(), native.render()));
            }
        })
        .map_err(|e| format!("cannot start the scraper thread: {e}"))?;
    let installed = if fmt {
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_writer(std::io::sink)
            .try_init()
            .map_err(|e| e.to_string())
    } else {
        tracing_subscriber::registry()
            .with(tracing_subscriber::filter::LevelFilter::INFO)
            .try_init()
            .map_err(|e| e.to_string())
    };
    installed.map_err(|e| format!("cannot install the tracing subscriber: {e}"))?;
    Ok(scraping)
}

impl Contenders {
    async fn build(
        url: &str,
        max_connections: u32,
        native: NativeSink,
    ) -> Result<Contenders, String> {
        let client = redis::Client::open(url).map_err(|e| format!("{url}: {e}"))?;
        let server = match client.get_connection_info().addr() {
            redis::ConnectionAddr::Tcp(host, port) => (host.clone(), *port),
            other => (other.to_string(), 0),
        };
        let raw = connect_raw(&client)
            .await
            .map_err(|e| format!("cannot connect to {url}: {e}"))?;
        // Built from configuration keys, as a service would.
        let pool = |_: &str| -> Result<Arc<dyn PoolBackend>, String> {
            let max = max_connections.to_string();
            let config = RawConfig::from_pairs([
                ("bench.url", url),
                ("bench.max_connections", max.as_str()),
            ]);
            pool_from_config(&config, "bench.").map_err(|e| e.to_string())
        };
        let noop_pool = pool("noop")?;
        let noop = RedisContextFactory::with_options(noop_pool.clone(), CLIENT, Arc::new(NoopSink));
        // A service's set-up: a Baseplate with its sink and observers, the client in its
        // request contexts.
        // `sampled`: the share of requests traced, `None` for no observer at all.
        let service = |sink: Arc<dyn MetricsSink>,
                       sampled: Option<f64>,
                       cache: Option<ClientCacheOptions>|
         -> Result<(Service, RedisContextFactory), String> {
            let pool = pool("service")?;
            let mut baseplate = Baseplate::new(RawConfig::new())
                .with_metrics_sink(sink.clone())
                .map_err(|e| e.to_string())?;
            if let Some(rate) = sampled {
                let rate = SampleRate::from_fraction(rate).ok_or("bad sample rate".to_string())?;
                baseplate = baseplate.with_sample_rate(rate);
                baseplate.register(Arc::new(TracingObserver::new()));
            }
            let mut factory = RedisContextFactory::with_options(pool.clone(), CLIENT, sink);
            if let Some(cache) = cache {
                factory = factory.with_client_cache(cache);
            }
            baseplate
                .add_to_context(CLIENT, Arc::new(factory.clone()))
                .unwrap();
            let service = Service {
                baseplate: Arc::new(baseplate),
                pool,
            };
            Ok((service, factory))
        };
        let (cached, cached_factory) = service(
            Arc::new(FacadeSink::global()),
            Some(1.0),
            Some(ClientCacheOptions::default().max_keys(CACHE_MAX_KEYS)),
        )?;
        Ok(Contenders {
            client,
            raw,
            server: Arc::new(server),
            noop,
            noop_pool,
            metrics: service(Arc::new(FacadeSink::global()), None, None)?.0,
            spans: service(Arc::new(NoopSink), Some(1.0), None)?.0,
            full: service(Arc::new(FacadeSink::global()), Some(1.0), None)?.0,
            production: service(Arc::new(native.clone()), Some(PRODUCTION_SAMPLE_RATE), None)?.0,
            traced: service(Arc::new(native), Some(1.0), None)?.0,
            exclusive_pool: pool("exclusive")?,
            cached,
            cached_factory,
        })
    }

    async fn reconnect_raw(&mut self) -> Result<(), String> {
        self.raw = connect_raw(&self.client)
            .await
            .map_err(|e| format!("cannot reconnect: {e}"))?;
        Ok(())
    }

    fn pool(&self, mode: Mode) -> Option<&Arc<dyn PoolBackend>> {
        match mode {
            Mode::Raw | Mode::Inline => None,
            Mode::Noop => Some(&self.noop_pool),
            Mode::Metrics => Some(&self.metrics.pool),
            Mode::Spans => Some(&self.spans.pool),
            Mode::Full => Some(&self.full.pool),
            Mode::Production => Some(&self.production.pool),
            Mode::Traced => Some(&self.traced.pool),
            Mode::Exclusive => Some(&self.exclusive_pool),
            Mode::Cached => Some(&self.cached.pool),
        }
    }

    /// Runs `tasks` tasks doing `op` for `duration`, each keeping the latencies of its first
    /// `max_latencies` commands; returns the cell and, for our modes, the most sockets the
    /// pool had open meanwhile.
    async fn run_cell(
        &self,
        mode: Mode,
        tasks: usize,
        op: Op,
        duration: Duration,
        max_latencies: usize,
    ) -> Result<(Cell, Option<u32>), String> {
        let start = Arc::new(tokio::sync::Barrier::new(tasks + 1));
        let mut handles = Vec::with_capacity(tasks);
        for task in 0..tasks {
            let worker = Worker::new(task, op, max_latencies);
            let start = start.clone();
            let target = match mode {
                Mode::Raw => Target::Raw(self.raw.clone()),
                Mode::Inline => Target::Inline(self.raw.clone(), self.server.clone()),
                Mode::Noop => Target::Noop(self.noop.clone()),
                Mode::Metrics => Target::Service(self.metrics.baseplate.clone()),
                Mode::Spans => Target::Service(self.spans.baseplate.clone()),
                Mode::Full => Target::Service(self.full.baseplate.clone()),
                Mode::Production => Target::Service(self.production.baseplate.clone()),
                Mode::Traced => Target::Service(self.traced.baseplate.clone()),
                Mode::Exclusive => Target::Exclusive(self.exclusive_pool.clone()),
                Mode::Cached => Target::Service(self.cached.baseplate.clone()),
            };
            handles.push(tokio::spawn(async move {
                worker.run(target, &start, duration).await
            }));
        }
        // Sample the pool's open sockets while the cell runs.
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU32::new(0));
        let sampler = self.pool(mode).cloned().map(|pool| {
            let (stop, peak) = (stop.clone(), peak.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    peak.fetch_max(pool.state().open, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                peak.fetch_max(pool.state().open, Ordering::Relaxed);
            })
        });
        start.wait().await;
        let began = Instant::now();
        let cpu_before = process_cpu();
        let mut latencies = Vec::new();
        let mut ops = 0u64;
        for handle in handles {
            let done = handle
                .await
                .map_err(|e| format!("a task panicked: {e}"))??;
            ops += done.0;
            latencies.extend(done.1);
        }
        let elapsed = began.elapsed();
        let cpu = process_cpu()
            .zip(cpu_before)
            .map(|(after, before)| after.saturating_sub(before));
        stop.store(true, Ordering::Relaxed);
        let peak = match sampler {
            Some(sampler) => {
                let _ = sampler.await;
                Some(peak.load(Ordering::Relaxed))
            }
            None => None,
        };
        latencies.sort_unstable();
        let pick = |q: f64| {
            let i = ((latencies.len() as f64 - 1.0) * q).round() as usize;
            Duration::from_nanos(latencies.get(i).copied().unwrap_or(0))
        };
        Ok((
            Cell {
                ops_per_sec: ops as f64 / elapsed.as_secs_f64(),
                p50: pick(0.50),
                p99: pick(0.99),
                cpu_per_op: cpu.map(|cpu| cpu / (ops.max(1) as u32)),
            },
            peak,
        ))
    }
}

/// Like our pool's: no redis-rs response timeout (ours applies `socket_timeout` itself, and
/// none is configured here).
fn raw_config() -> AsyncConnectionConfig {
    AsyncConnectionConfig::new()
        .set_connection_timeout(None)
        .set_response_timeout(None)
}

/// Connects from a runtime task, as the pool does (it connects inside the first caller's
/// task): where redis-rs spawns the connection's driver task then matches.
async fn connect_raw(client: &redis::Client) -> Result<MultiplexedConnection, String> {
    let client = client.clone();
    tokio::spawn(async move {
        client
            .get_multiplexed_async_connection_with_config(&raw_config())
            .await
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())
}

/// What a task sends its commands through.
enum Target {
    Raw(MultiplexedConnection),
    /// The raw connection, and the server's host and port (span fields).
    Inline(MultiplexedConnection, Arc<(String, u16)>),
    Noop(RedisContextFactory),
    Service(Arc<Baseplate>),
    Exclusive(Arc<dyn PoolBackend>),
}

/// One task: its key, value and pipeline, built before the clock starts.
struct Worker {
    op: Op,
    max_latencies: usize,
    key: String,
    value: Vec<u8>,
    pipeline: Pipeline,
}

impl Worker {
    fn new(task: usize, op: Op, max_latencies: usize) -> Worker {
        let key = format!("loadgen:{task}");
        let value = vec![b'x'; VALUE_SIZE];
        let mut pipeline = redis::pipe();
        for i in 0..PIPELINE_COMMANDS {
            pipeline
                .cmd("SET")
                .arg(format!("loadgen:{task}:{i}"))
                .arg(&value)
                .ignore();
        }
        Worker {
            op,
            max_latencies,
            key,
            value,
            pipeline,
        }
    }

    async fn one(&self, conn: &mut impl ConnectionLike) -> Result<(), String> {
        let result = match self.op {
            Op::Get => redis::cmd("GET")
                .arg(&self.key)
                .query_async::<Value>(conn)
                .await
                .map(drop),
            Op::Set => {
                redis::cmd("SET")
                    .arg(&self.key)
                    .arg(&self.value)
                    .exec_async(conn)
                    .await
            }
            Op::Pipeline => self.pipeline.exec_async(conn).await,
        };
        result.map_err(|e| format!("{} failed: {e}", self.op.name()))
    }

    /// Runs commands until `duration` after the start signal; returns how many ran and the
    /// latencies (ns) of the first `max_latencies`. A few commands before the signal warm the
    /// connection and caches up.
    async fn run(
        self,
        target: Target,
        start: &tokio::sync::Barrier,
        duration: Duration,
    ) -> Result<(u64, Vec<u64>), String> {
        let mut latencies = Vec::with_capacity((1 << 14).min(self.max_latencies));
        let mut ops = 0u64;
        let mut warmup = 10;
        let mut deadline = None;
        let max_latencies = self.max_latencies;
        let timed = |started: Instant, latencies: &mut Vec<u64>, ops: &mut u64| {
            *ops += 1;
            if latencies.len() < max_latencies {
                latencies.push(started.elapsed().as_nanos() as u64);
            }
        };
        let gate = async |warmup: &mut usize, deadline: &mut Option<Instant>| -> bool {
            if *warmup > 0 {
                *warmup -= 1;
                if *warmup == 0 {
                    start.wait().await;
                    *deadline = Some(Instant::now() + duration);
                }
                return true;
            }
            deadline.is_some_and(|d| Instant::now() < d)
        };
        match target {
            Target::Raw(mut conn) => {
                while gate(&mut warmup, &mut deadline).await {
                    let t = Instant::now();
                    self.one(&mut conn).await?;
                    if deadline.is_some() {
                        timed(t, &mut latencies, &mut ops);
                    }
                }
            }
            Target::Inline(mut conn, server) => {
                let (operation, batch_size) = match self.op {
                    Op::Get => ("GET", None),
                    Op::Set => ("SET", None),
                    Op::Pipeline => ("PIPELINE", Some(PIPELINE_COMMANDS)),
                };
                let instruments = metrics::with_recorder(|recorder| {
                    InlineInstruments::new(recorder, operation, batch_size, (&server.0, server.1))
                });
                'requests: loop {
                    let request = tracing::info_span!(
                        "baseplate.span",
                        otel.name = "loadgen",
                        otel.kind = "server"
                    );
                    for _ in 0..REQUEST_COMMANDS {
                        if !gate(&mut warmup, &mut deadline).await {
                            break 'requests;
                        }
                        let t = Instant::now();
                        instruments.measured(&request, self.one(&mut conn)).await?;
                        if deadline.is_some() {
                            timed(t, &mut latencies, &mut ops);
                        }
                    }
                }
            }
            Target::Noop(factory) => 'outer: loop {
                let mut conn = factory.connection();
                for _ in 0..REQUEST_COMMANDS {
                    if !gate(&mut warmup, &mut deadline).await {
                        break 'outer;
                    }
                    let t = Instant::now();
                    self.one(&mut conn).await?;
                    if deadline.is_some() {
                        timed(t, &mut latencies, &mut ops);
                    }
                }
            },
            Target::Service(baseplate) => 'outer: loop {
                let mut context = baseplate.make_context_object();
                let span = baseplate.make_server_span(&mut context, "loadgen", None);
                let mut conn = context.redis(CLIENT).map_err(|e| e.to_string())?;
                for _ in 0..REQUEST_COMMANDS {
                    if !gate(&mut warmup, &mut deadline).await {
                        span.finish();
                        break 'outer;
                    }
                    let t = Instant::now();
                    self.one(&mut conn).await?;
                    if deadline.is_some() {
                        timed(t, &mut latencies, &mut ops);
                    }
                }
                span.finish();
            },
            Target::Exclusive(pool) => {
                while gate(&mut warmup, &mut deadline).await {
                    let t = Instant::now();
                    let mut conn = pool.exclusive().await.map_err(|e| e.to_string())?;
                    self.one(&mut conn).await?;
                    drop(conn);
                    if deadline.is_some() {
                        timed(t, &mut latencies, &mut ops);
                    }
                }
            }
        }
        Ok((ops, latencies))
    }
}

async fn prepare_keys(conn: &MultiplexedConnection) -> Result<(), String> {
    let mut conn = conn.clone();
    let mut pipe = redis::pipe();
    for task in 0..PREPARED_KEYS {
        pipe.set(format!("loadgen:{task}"), vec![b'x'; VALUE_SIZE])
            .ignore();
    }
    pipe.exec_async(&mut conn)
        .await
        .map_err(|e| format!("cannot prepare keys: {e}"))
}

/// The process' resident memory, in bytes (Linux).
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn mib(bytes: i64) -> f64 {
    bytes as f64 / f64::from(1 << 20)
}

/// A mode run for a long while, never scraped, and the process' memory around it.
struct Soak {
    mode: Mode,
    secs: f64,
    tasks: usize,
    commands: u64,
    before: u64,
    after: u64,
}

impl Soak {
    fn line(&self) -> String {
        format!(
            "memory {} {:.0} s {} tasks {} commands: {:.1} MiB -> {:.1} MiB ({:+.1} MiB), no scrape",
            self.mode.name(),
            self.secs,
            self.tasks,
            self.commands,
            mib(self.before as i64),
            mib(self.after as i64),
            mib(self.after as i64 - self.before as i64)
        )
    }
}

/// The `cached` mode's memory bound: reads every prepared key (more than
/// [`CACHE_MAX_KEYS`]) twice through the caching client; returns how many distinct keys
/// were read and how many the cache holds afterwards.
async fn fill_cache(factory: &RedisContextFactory) -> Result<(usize, usize), String> {
    let mut conn = factory.connection();
    for _ in 0..2 {
        for task in 0..PREPARED_KEYS {
            redis::cmd("GET")
                .arg(format!("loadgen:{task}"))
                .query_async::<Value>(&mut conn)
                .await
                .map_err(|e| format!("cache fill: {e}"))?;
        }
    }
    Ok((PREPARED_KEYS, factory.client_cache_keys().unwrap_or(0)))
}

/// CPU time used so far by every thread of this process (Linux: from `schedstat`, in ns).
fn process_cpu() -> Option<Duration> {
    let mut total = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(Duration::from_nanos(total))
}

fn redis_benchmark_present() -> bool {
    Command::new("redis-benchmark")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs `redis-benchmark` with `tasks` clients; returns ops/s in the unit of `op` (pipelines
/// per second for the pipeline).
fn run_redis_benchmark(port: u16, tasks: usize, op: Op, total: u64) -> Result<f64, String> {
    let mut cmd = Command::new("redis-benchmark");
    cmd.args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-c", &tasks.to_string(), "-d", &VALUE_SIZE.to_string()])
        .args(["--csv", "-q"]);
    let (test, per_op) = match op {
        Op::Get => ("get", 1),
        Op::Set => ("set", 1),
        Op::Pipeline => ("set", PIPELINE_COMMANDS as u64),
    };
    cmd.args(["-t", test, "-n", &(total * per_op).to_string()]);
    if per_op > 1 {
        cmd.args(["-P", &per_op.to_string()]);
    }
    let output = cmd.output().map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let rps = stdout
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(',').map(|f| f.trim_matches('"')).collect();
            (fields.len() > 1 && fields[0].eq_ignore_ascii_case(test))
                .then(|| fields[1].parse::<f64>().ok())
                .flatten()
        })
        .next()
        .ok_or_else(|| format!("no {test} result in its output: {stdout}"))?;
    Ok(rps / per_op as f64)
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

fn median_duration(values: impl Iterator<Item = Duration>) -> Duration {
    let mut sorted: Vec<Duration> = values.collect();
    sorted.sort();
    sorted.get(sorted.len() / 2).copied().unwrap_or_default()
}

/// Per-round ratios as the table's last column shows them.
fn per_round(ratios: &[f64]) -> String {
    ratios
        .iter()
        .map(|r| format!("{r:.3}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Everything measured, ready to print.
struct Report<'a> {
    args: &'a Args,
    modes: &'a [Mode],
    results: &'a BTreeMap<(Mode, usize, Op), Vec<Cell>>,
    ratios: &'a BTreeMap<(Mode, usize, Op), Vec<f64>>,
    benchmark: &'a BTreeMap<(usize, Op), Vec<f64>>,
    sockets: &'a BTreeMap<Mode, u32>,
    /// How much resident memory grew during each mode's cells, over the run (bytes).
    memory: &'a BTreeMap<Mode, i64>,
    soaks: &'a [Soak],
}

impl Report<'_> {
    /// Median ops/s, p50, p99 of a mode's cell over the rounds.
    fn summary(&self, mode: Mode, tasks: usize, op: Op) -> Option<Cell> {
        let cells = self.results.get(&(mode, tasks, op))?;
        Some(Cell {
            ops_per_sec: median(&cells.iter().map(|c| c.ops_per_sec).collect::<Vec<_>>()),
            p50: median_duration(cells.iter().map(|c| c.p50)),
            p99: median_duration(cells.iter().map(|c| c.p99)),
            cpu_per_op: cells
                .iter()
                .all(|c| c.cpu_per_op.is_some())
                .then(|| median_duration(cells.iter().filter_map(|c| c.cpu_per_op))),
        })
    }

    fn ratio(&self, mode: Mode, tasks: usize, op: Op) -> Option<(f64, &[f64])> {
        let values = self.ratios.get(&(mode, tasks, op))?;
        Some((median(values), values))
    }

    /// redis-benchmark's ops/s, estimated as its median ratio times raw's median ops/s.
    fn benchmark_ops(&self, tasks: usize, op: Op) -> Option<(f64, f64)> {
        let ratio = median(self.benchmark.get(&(tasks, op))?);
        let raw = self.summary(Mode::Raw, tasks, op)?.ops_per_sec;
        Some((ratio * raw, ratio))
    }

    fn rows(&self) -> Vec<[String; 9]> {
        let mut rows = Vec::new();
        for &op in &self.args.ops {
            for &tasks in &self.args.tasks {
                for &mode in self.modes {
                    let (Some(cell), Some((ratio, runs))) =
                        (self.summary(mode, tasks, op), self.ratio(mode, tasks, op))
                    else {
                        continue;
                    };
                    let runs = per_round(runs);
                    rows.push([
                        op.name().to_string(),
                        tasks.to_string(),
                        mode.name().to_string(),
                        format!("{:.0}", cell.ops_per_sec),
                        format!("{:.1}", micros(cell.p50)),
                        format!("{:.1}", micros(cell.p99)),
                        cell.cpu_per_op
                            .map_or_else(|| "-".to_string(), |c| format!("{:.2}", micros(c))),
                        format!("{ratio:.3}"),
                        runs,
                    ]);
                }
                if let Some((ops, ratio)) = self.benchmark_ops(tasks, op) {
                    let runs = per_round(&self.benchmark[&(tasks, op)]);
                    rows.push([
                        op.name().to_string(),
                        tasks.to_string(),
                        "redis-benchmark".to_string(),
                        format!("{ops:.0}"),
                        "-".to_string(),
                        "-".to_string(),
                        "-".to_string(),
                        format!("{ratio:.3}"),
                        runs,
                    ]);
                }
            }
        }
        rows
    }

    const HEADER: [&'static str; 9] = [
        "op",
        "tasks",
        "mode",
        "ops/s",
        "p50 µs",
        "p99 µs",
        "CPU µs/op",
        "× raw",
        "per-round ratios",
    ];

    fn table(&self) -> String {
        let rows = self.rows();
        let mut widths = Self::HEADER.map(|h| h.chars().count());
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let line = |cells: &[&str], out: &mut String| {
            for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
                let pad = w - cell.chars().count();
                if i < 3 || i == 8 {
                    let _ = write!(out, "{cell}{}  ", " ".repeat(pad));
                } else {
                    let _ = write!(out, "{}{cell}  ", " ".repeat(pad));
                }
            }
            out.truncate(out.trim_end().len());
            out.push('\n');
        };
        line(&Self::HEADER, &mut out);
        for row in &rows {
            line(&row.each_ref().map(String::as_str), &mut out);
        }
        out
    }

    /// The issue's targets for the three profiles, each with the ratio measured in this run
    /// and whether it was met.
    fn targets(&self) -> String {
        let mut out = String::from(
            "\n### Targets (ratio to raw redis-rs)\n\n\
             | profile | op | tasks | target | measured | met |\n\
             |---|---|---|---|---|---|\n",
        );
        let mut wanted = Vec::new();
        for op in [Op::Get, Op::Set] {
            for (mode, at_64, at_1) in [
                (Mode::Noop, 0.98, 0.98),
                (Mode::Production, 0.95, 0.95),
                (Mode::Traced, 0.90, 0.95),
            ] {
                wanted.push((mode, op, 64, at_64));
                wanted.push((mode, op, 1, at_1));
            }
        }
        for tasks in [1, 16, 64] {
            wanted.push((Mode::Production, Op::Pipeline, tasks, 0.95));
        }
        for (mode, op, tasks, target) in wanted {
            if let Some((ratio, _)) = self.ratio(mode, tasks, op) {
                let met = if ratio >= target { "yes" } else { "**no**" };
                let _ = writeln!(
                    out,
                    "| `{}` | {} | {tasks} | ≥ {target:.2} | {ratio:.3} | {met} |",
                    mode.name(),
                    op.name()
                );
            }
        }
        out
    }

    /// Resident memory grown during each mode's cells, and the soaks without scrapes.
    fn memory(&self) -> String {
        let mut out = String::from(
            "\n### Memory\n\n\
             Resident memory the process gained during each mode's cells, added up over the \
             run (`/metrics` scraped every 15 s):\n\n| mode | RSS growth MiB |\n|---|---|\n",
        );
        for (mode, grown) in self.memory {
            let _ = writeln!(out, "| `{}` | {:+.1} |", mode.name(), mib(*grown));
        }
        if !self.soaks.is_empty() {
            out.push_str("\nNever scraped, GET at full load:\n\n");
            for soak in self.soaks {
                let _ = writeln!(out, "- `{}`", soak.line());
            }
        }
        out
    }

    /// What each mode's client costs in CPU per op over raw redis-rs at the highest
    /// concurrency, where CPU is what bounds throughput.
    fn cost_split(&self) -> String {
        let Some(&tasks) = self.args.tasks.iter().max() else {
            return String::new();
        };
        let mut out = format!(
            "\n### Where the CPU goes at {tasks} tasks\n\n\
             Client CPU per op (a command, or one {PIPELINE_COMMANDS}-command pipeline) over raw \
             redis-rs (µs, medians over the rounds):\n\n\
             | op | {} |\n|---|{}\n",
            self.modes
                .iter()
                .filter(|m| **m != Mode::Raw)
                .map(|m| format!("`{}`", m.name()))
                .collect::<Vec<_>>()
                .join(" | "),
            "---|".repeat(self.modes.len() - 1)
        );
        for &op in &self.args.ops {
            let cpu = |mode| {
                self.summary(mode, tasks, op)
                    .and_then(|c| c.cpu_per_op)
                    .map(|d| d.as_secs_f64() * 1e6)
            };
            let Some(raw) = cpu(Mode::Raw) else { continue };
            let cells: Vec<String> = self
                .modes
                .iter()
                .filter(|m| **m != Mode::Raw)
                .map(|&m| cpu(m).map_or("-".to_string(), |c| format!("{:+.2}", c - raw)))
                .collect();
            let _ = writeln!(out, "| {} | {} |", op.name(), cells.join(" | "));
        }
        out
    }

    fn markdown(&self, chart: Option<&str>) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# Benchmarks\n");
        let _ = writeln!(
            out,
            "What an instrumented, pooled `baseplate-redis` client costs next to a raw \
             `redis-rs` connection. Regenerate this file (and the chart) with:\n\n\
             ```sh\ncargo run --release --features prometheus --example loadgen -- --chart benchmarks.png --markdown BENCHMARKS.md\n```\n\n\
             The load generator starts a private `redis-server` on a free loopback port. \
             GET/SET use one key per task with {VALUE_SIZE}-byte values; `pipe100` is a \
             non-atomic pipeline of {PIPELINE_COMMANDS} SETs, counted as one op. Each cell \
             runs {} s; the cells of one row group run interleaved, and the whole set is \
             repeated {} times. ops/s, p50 and p99 are medians over the rounds; `× raw` is \
             the median of the per-round ratios to the raw redis-rs cell of the same round. \
             `CPU µs/op` is the CPU time the load generator's process (all its threads, \
             client side only) spent per op, median over the rounds: it is what the client \
             costs, and is less disturbed than ops/s by other work on the machine.\n",
            self.args.secs, self.args.rounds
        );
        let _ = writeln!(out, "## Machine\n\n{}\n", machine());
        let _ = writeln!(out, "## Contenders\n");
        for &mode in self.modes {
            let _ = writeln!(out, "- `{}`: {}", mode.name(), mode.describe());
        }
        if !self.benchmark.is_empty() {
            let _ = writeln!(
                out,
                "- `redis-benchmark`: the C client at the same concurrency (`-c tasks -d {VALUE_SIZE}`, \
                 `-P {PIPELINE_COMMANDS}` for the pipeline, reported in pipelines/s)"
            );
        }
        let _ = writeln!(
            out,
            "\nThe tasks of `inline` and of our client work like request handlers: a new \
             request (a server span and, for our client, a handle from the request context) \
             every {REQUEST_COMMANDS} commands. In `full`, `traced` and `inline`, every \
             command makes a real `tracing` span (subscriber: {}); `production` makes them \
             for 1% of the requests. `metrics`, `full` and `inline` update Prometheus metrics \
             through the `metrics` facade and the crate's recorder; `production` and \
             `traced` through the native sink.\n",
            if self.args.fmt_subscriber {
                "`tracing_subscriber::fmt` at INFO, writing to `std::io::sink`"
            } else {
                "the `tracing_subscriber` registry with an INFO level filter: spans are \
                 created, stored and closed, nothing is exported"
            }
        );
        let _ = writeln!(out, "## Results\n");
        if let Some(chart) = chart {
            let _ = writeln!(out, "![ops/s against tasks]({chart})\n");
        }
        let _ = writeln!(out, "| {} |", Self::HEADER.join(" | "));
        let _ = writeln!(out, "|{}", "---|".repeat(Self::HEADER.len()));
        for row in self.rows() {
            let _ = writeln!(out, "| {} |", row.join(" | "));
        }
        out.push_str(&self.targets());
        out.push_str(&self.cost_split());
        out.push_str(&self.memory());
        let _ = writeln!(
            out,
            "\nMost sockets each pool had open (sampled every 20 ms):\n"
        );
        for (mode, peak) in self.sockets {
            let _ = writeln!(
                out,
                "- `{}`: {peak} (max_connections {})",
                mode.name(),
                self.args.max_connections
            );
        }
        let _ = writeln!(
            out,
            "\n{READING}\n{MICRO_BENCHMARKS}\n{INSTRUCTIONS}\n{FROM_THE_ISSUE}"
        );
        out
    }
}

const READING: &str = "## Reading these numbers

- The machine may be shared (when these numbers were taken, other builds ran on it), so one
  cell can be off by a third. Each round pairs the contenders within a few seconds; the median
  of the per-round ratios is the signal, and `CPU µs/op` is steadier than ops/s.
- At 1 task, throughput is bound by the round trip, which on a virtual machine depends on how
  fast a parked thread wakes up more than on the client's CPU: ratios above 1 there reflect
  scheduling, not a client faster than redis-rs. The client's own cost is in the CPU column
  and in the micro-benchmarks below.
- At 64 tasks the client is CPU-bound on 2 cores shared with `redis-server`: every extra
  100 ns of CPU per command shows. `redis-benchmark` (single-threaded C, one connection per
  client, no pipelining) is the reference for what one core of a C client does, not a
  ceiling.
- `exclusive` is what a classic pool gives: one connection per command in flight.
- `inline` is the floor for `full`: the same metrics and spans written by hand around each
  command of the raw connection, with no pool, no routing and no library. The gap between
  `raw` and `inline` is what the Prometheus recorder and the `tracing` subscriber cost; the
  gap between `inline` and `full` is what this client adds. Where `inline` misses a target
  too, no client instrumented this way meets it on this machine.
- `metrics` and `spans` split `full`'s cost between the facade's Prometheus recorder and the
  `tracing` spans: the recorder's atomics (every command updates a counter, a histogram
  sample buffer and, twice, a gauge that both worker threads share) and `tracing-subscriber`'s
  span creation and closing. The three profiles of the targets remove them: `production` and
  `traced` record into the `NativeSink` (per-thread shards, no shared cache line written per
  command, fixed buckets), and `production` makes spans for 1% of the requests only (an
  unsampled request's commands skip span work on one branch).
- The memory table adds up the resident memory the process gained during each mode's
  cells; the facade recorder's histograms keep every sample until the next scrape, the
  native sink keeps fixed counts.
";

const MICRO_BENCHMARKS: &str = "## CPU-only micro-benchmarks

The load above mixes the client's cost with the network, the server and whatever else runs on
the machine. The criterion benchmarks measure the client alone:

```sh
cargo bench --bench instrumentation  # one command through a handle over an in-memory connection:
                                     # direct, no-op sink, Prometheus, native sink, + tracing
                                     # spans (sampled or not), and the same metrics and span
                                     # by hand (no library); `sinks/`: each metrics library
                                     # considered, on one thread and on two at once
cargo bench --bench pool             # exclusive and shared checkout + return
cargo bench --bench config           # INI section, client keys, pool_from_config
cargo test --test allocations        # the instrumentation allocates nothing per command
```
";

/// Measured separately, with `examples/callgrind.rs` (its doc says how).
const INSTRUCTIONS: &str = r#"## Instructions per command (callgrind)

Wall-clock numbers on a loaded machine are noisy; instruction counts are not (repeat runs
agree within 0.05 %). `examples/callgrind.rs` runs GETs one after another on a private
`redis-server` (current-thread runtime, real socket I/O), through a raw redis-rs
`MultiplexedConnection` (no response timeout, like the pool's) or through the client's handle
with the no-op sink and no observer; callgrind counts only the measured loop:

```sh
cargo build --release --example callgrind
for mode in raw handle; do
  valgrind --tool=callgrind --toggle-collect='*callgrind_measured*' \
    --callgrind-out-file=callgrind.$mode target/release/examples/callgrind $mode 10000
done   # instructions per GET = "Collected" / 10000
callgrind_annotate callgrind.handle | head -40
```

Measured for issue 16 (lever 3), 10,000 GETs, instructions per GET (client process only; the
server and the kernel are not counted):

| | raw redis-rs | handle | handle − raw |
|---|---|---|---|
| before (main at 7cbfe64, with the client-side cache check) | 10,165 | 11,695 | +1,530 (+15.1 %) |
| after: known commands not classified twice; shared connection used in place | 10,165 | 11,530 | +1,365 (+13.4 %) |

Each change alone, measured before the cache was merged: not classifying a command that has a
slot in the instruments' table (all are ordinary) saved 61; using the shared connection where
it lies instead of moving it out and back in saved 83.

Where the remaining ~1,370 go (`callgrind_annotate`, handle minus raw): the handle itself
(~580: the command's metric handles found by name, the cache check, routing on the held shared
connection, the in-flight gauge, the reply check for error replies), the guarded connection
(~370: reply-timeout choice, pool in-flight count, poison checks), one more boxed future (~130 in malloc/free/memcpy: the
`ConnectionLike` signature boxes ours, as redis-rs boxes its own), the clock itself (~110), and
the rest of the difference falls in redis-rs's connection driver, whose code is the same but
inlined differently in the two builds of it.
"#;

const FROM_THE_ISSUE: &str = "## Other clients (from the issue, not re-measured)

Measured by the issue's author on a 2-core CI-class machine, ops/s GET/SET, 1 task and 64 tasks:

| client | 1 task GET/SET | 64 tasks GET/SET |
|---|---|---|
| redis-benchmark (C), no pipelining | 7,642 / 7,203 | 54,103 / 60,914 |
| redis-benchmark -P 16 | - | 712,420 / 694,444 |
| redis-rs, one shared MultiplexedConnection | 6,505 / 6,383 | 198,282 / 185,950 |
| fred 10 | 5,788 / 5,326 | 227,697 / 147,860 |
| bb8, pool check off | 6,418 / 6,815 | 84,738 / 79,780 |
| mobc tuned, exclusive per command | 7,054 / 7,020 | 46,865 / 51,249 |
| mobc default | 3,418 / 3,432 | 21,681 / 21,772 |
| deadpool-redis | 3,153 / 3,159 | 31,153 / 34,396 |
| naive span + metrics wrapper over the shared connection | 6,119 / 5,121 | 146,727 / 136,883 |
| Python original (baseplate.py) | 3,209 / 3,028 | - |
";

/// The machine, as `nproc`, `/proc/cpuinfo` and the kernel describe it.
fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".to_string());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".to_string());
    let server = Command::new("redis-server")
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".to_string());
    format!(
        "- CPUs available: {cpus}\n- CPU: {model}\n- Linux kernel {kernel}\n- {server}\n\
         - tokio multi-thread runtime, {cpus} workers; redis-server on the same machine"
    )
}

mod chart {
    //! ops/s against tasks, one panel per op, one line per contender.

    use std::path::Path;

    use plotters::prelude::*;

    use super::{Op, Report};

    /// One contender's line: its name, colour and (tasks, ops/s) points.
    type Line = (String, RGBColor, Vec<(f64, f64)>);

    pub(super) fn draw(path: &Path, report: &Report<'_>) -> Result<(), String> {
        plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular())
            .map_err(|_| "cannot load the chart font".to_string())?;
        let root = BitMapBackend::new(path, (1200, 420)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let panels = root.split_evenly((1, report.args.ops.len()));
        let tasks = &report.args.tasks;
        let max_tasks = tasks.iter().copied().max().unwrap_or(1) as f64;
        for (panel, &op) in panels.iter().zip(&report.args.ops) {
            let mut lines: Vec<Line> = Vec::new();
            for &mode in report.modes {
                let points = tasks
                    .iter()
                    .filter_map(|&t| Some((t as f64, report.summary(mode, t, op)?.ops_per_sec)))
                    .collect();
                lines.push((mode.name().to_string(), mode.color(), points));
            }
            let bench: Vec<(f64, f64)> = tasks
                .iter()
                .filter_map(|&t| Some((t as f64, report.benchmark_ops(t, op)?.0)))
                .collect();
            if !bench.is_empty() {
                lines.push(("redis-benchmark".to_string(), MAGENTA, bench));
            }
            let top = lines
                .iter()
                .flat_map(|(_, _, p)| p.iter().map(|(_, y)| *y))
                .fold(1.0, f64::max)
                * 1.1;
            let unit = if op == Op::Pipeline {
                "pipelines/s"
            } else {
                "ops/s"
            };
            let mut chart = ChartBuilder::on(panel)
                .caption(format!("{} ({unit})", op.name()), ("sans-serif", 20))
                .margin(10)
                .x_label_area_size(35)
                .y_label_area_size(70)
                .build_cartesian_2d((1.0..max_tasks * 1.05).log_scale(), 0.0..top)
                .map_err(|e| e.to_string())?;
            chart
                .configure_mesh()
                .x_desc("tasks")
                .x_labels(8)
                .x_label_formatter(&|x| format!("{x:.0}"))
                .y_label_formatter(&|y| format!("{:.0}k", y / 1000.0))
                .draw()
                .map_err(|e| e.to_string())?;
            for (name, color, points) in lines {
                chart
                    .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
                    .map_err(|e| e.to_string())?
                    .label(name)
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                    });
                chart
                    .draw_series(
                        points
                            .into_iter()
                            .map(|p| Circle::new(p, 3, color.filled())),
                    )
                    .map_err(|e| e.to_string())?;
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(|e| e.to_string())?;
        }
        root.present().map_err(|e| e.to_string())?;
        Ok(())
    }
}
