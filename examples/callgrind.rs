//! Instructions per command, counted by callgrind: repeatable whatever else the machine runs,
//! unlike wall-clock benchmarks on a loaded machine.
//!
//! Runs GETs one after another on a private `redis-server`, through a raw redis-rs
//! `MultiplexedConnection` (`raw`) or through the client's handle with the no-op sink and no
//! observer (`handle`), on a current-thread runtime. Only `callgrind_measured` is counted
//! (the server's start, the connection and a warm-up are not):
//!
//! ```sh
//! cargo build --release --example callgrind
//! for mode in raw handle; do
//!   valgrind --tool=callgrind --toggle-collect='*callgrind_measured*' \
//!     --callgrind-out-file=callgrind.$mode target/release/examples/callgrind $mode 20000
//! done
//! callgrind_annotate callgrind.handle | head -40   # where the handle spends
//! ```
//!
//! Instructions per command = the `Collected` total divided by the count (20000). Without
//! valgrind it runs as a plain program (and says so), which checks the driver itself.

mod support;

use std::process::ExitCode;
use std::sync::Arc;

use baseplate_redis::config::RawConfig;
use baseplate_redis::sink::NoopSink;
use baseplate_redis::{pool_from_config, RedisContextFactory};
use redis::aio::ConnectionLike;
use redis::{AsyncConnectionConfig, Cmd};
use tokio::runtime::Runtime;

const WARM_UP: usize = 1_000;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_default();
    let count = match args.next().map(|n| n.parse::<usize>()) {
        None => 20_000,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => return usage("the count must be a positive integer"),
    };
    match run(&mode, count) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => usage(&e),
    }
}

fn usage(problem: &str) -> ExitCode {
    eprintln!("{problem}\nusage: callgrind raw|handle [COUNT]");
    ExitCode::FAILURE
}

fn run(mode: &str, count: usize) -> Result<(), String> {
    let server = support::RedisServer::start()?;
    let url = server.url();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let cmd = redis::cmd("GET").arg("callgrind:key").clone();
    match mode {
        "raw" => {
            let client = redis::Client::open(url.as_str()).map_err(|e| e.to_string())?;
            // Like the pool's connections (and the load generator's raw contender): no
            // redis-rs response timeout, whose timer would be counted against raw.
            let config = AsyncConnectionConfig::new()
                .set_connection_timeout(None)
                .set_response_timeout(None);
            let mut conn = runtime
                .block_on(client.get_multiplexed_async_connection_with_config(&config))
                .map_err(|e| format!("{url}: {e}"))?;
            gets(&runtime, &mut conn, &cmd, WARM_UP)?;
            callgrind_measured(&runtime, &mut conn, &cmd, count)?;
        }
        "handle" => {
            let config = RawConfig::from_pairs([("bench.url", url.as_str())]);
            let pool = pool_from_config(&config, "bench.").map_err(|e| e.to_string())?;
            let factory = RedisContextFactory::with_options(pool, "bench", Arc::new(NoopSink));
            let mut conn = factory.connection();
            gets(&runtime, &mut conn, &cmd, WARM_UP)?;
            callgrind_measured(&runtime, &mut conn, &cmd, count)?;
        }
        other => return Err(format!("unknown mode {other:?}")),
    }
    println!("{mode}: {count} GETs measured");
    Ok(())
}

/// The part callgrind counts (`--toggle-collect='*callgrind_measured*'`).
#[inline(never)]
fn callgrind_measured(
    runtime: &Runtime,
    conn: &mut impl ConnectionLike,
    cmd: &Cmd,
    count: usize,
) -> Result<(), String> {
    gets(runtime, conn, cmd, count)
}

fn gets(
    runtime: &Runtime,
    conn: &mut impl ConnectionLike,
    cmd: &Cmd,
    count: usize,
) -> Result<(), String> {
    runtime.block_on(async {
        for _ in 0..count {
            let _: Option<Vec<u8>> = cmd
                .query_async(&mut *conn)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    })
}
