//! The pool's own cost: checking a connection out and giving it back, against a private
//! `redis-server` (no command is sent, so no I/O is measured, unless a socket is opened).
//!
//! ```sh
//! cargo bench --bench pool
//! ```

#[path = "../examples/support/mod.rs"]
mod support;

use std::sync::Arc;

use baseplate_redis::config::RawConfig;
use baseplate_redis::pool::{InMemoryBackend, PoolBackend};
use baseplate_redis::pool_from_config;
use criterion::{criterion_group, criterion_main, Criterion};

fn checkout(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = match support::RedisServer::start() {
        Ok(server) => server,
        Err(e) => panic!("the pool benchmarks need a private redis-server: {e}"),
    };
    let url = server.url();
    let config =
        RawConfig::from_pairs([("bench.url", url.as_str()), ("bench.max_connections", "4")]);
    let pool: Arc<dyn PoolBackend> = pool_from_config(&config, "bench.").unwrap();
    // Open the connections before measuring.
    runtime.block_on(async {
        let held = [
            pool.exclusive().await.unwrap(),
            pool.exclusive().await.unwrap(),
        ];
        drop(held);
        drop(pool.shared().await.unwrap());
    });

    c.bench_function("pool/exclusive checkout + return", |b| {
        b.to_async(&runtime)
            .iter(|| async { drop(pool.exclusive().await.unwrap()) })
    });
    c.bench_function("pool/shared checkout + return", |b| {
        b.to_async(&runtime)
            .iter(|| async { drop(pool.shared().await.unwrap()) })
    });
    let memory: Arc<dyn PoolBackend> = Arc::new(InMemoryBackend::new());
    c.bench_function("pool/in-memory exclusive checkout + return", |b| {
        b.to_async(&runtime)
            .iter(|| async { drop(memory.exclusive().await.unwrap()) })
    });
    // mobc spawns a task when a pool closes: drop the pools inside the runtime.
    runtime.block_on(async move {
        drop(pool);
        drop(memory);
    });
    drop(server);
}

criterion_group! {
    name = benches;
    // Our `plotters` has no system font (see the loadgen's chart), so no HTML plots.
    config = Criterion::default().without_plots();
    targets = checkout
}
criterion_main!(benches);
