//! Configuration parsing: an INI file's section, then a client's keys.
//!
//! ```sh
//! cargo bench --bench config
//! ```

use std::hint::black_box;

use baseplate_redis::config::RawConfig;
use baseplate_redis::{pool_from_config, RedisClientConfig};
use criterion::{criterion_group, criterion_main, Criterion};

const INI: &str = "\
[DEFAULT]
debug = false

[app:main]
factory = my_service.app:make_app
foo.url = redis://cache.example.com:6379/3
foo.max_connections = 25
foo.socket_connect_timeout = 3 seconds
foo.socket_timeout = 200 milliseconds
foo.pool_timeout = 1 second
foo.client_name = my-service
bar.url = memory://bar/1
metrics.namespace = my_service
tracing.service_name = my-service
";

fn parse(c: &mut Criterion) {
    c.bench_function("config/ini section", |b| {
        b.iter(|| RawConfig::from_ini_str(black_box(INI), "app:main").unwrap())
    });
    let raw = RawConfig::from_ini_str(INI, "app:main").unwrap();
    c.bench_function("config/client keys", |b| {
        b.iter(|| RedisClientConfig::from_config(black_box(&raw), "foo.").unwrap())
    });
    c.bench_function("config/ini + client keys", |b| {
        b.iter(|| {
            let raw = RawConfig::from_ini_str(black_box(INI), "app:main").unwrap();
            RedisClientConfig::from_config(&raw, "foo.").unwrap()
        })
    });
    // Includes making the (unconnected) mobc pool.
    c.bench_function("config/pool_from_config", |b| {
        b.iter(|| pool_from_config(black_box(&raw), "foo.").unwrap())
    });
}

criterion_group! {
    name = benches;
    // Our `plotters` has no system font (see the loadgen's chart), so no HTML plots.
    config = Criterion::default().without_plots();
    targets = parse
}
criterion_main!(benches);
