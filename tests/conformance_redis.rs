//! The conformance suite against a real `redis-server` through the mobc-backed pool (one
//! server per test binary; each case uses its own key prefix).

#[path = "conformance/cases.rs"]
mod cases;
mod common;

use std::sync::OnceLock;

use baseplate_redis::config::RedisUrl;
use baseplate_redis::pool::{MobcBackend, PoolOptions};
use common::RedisServer;

fn server() -> &'static RedisServer {
    static SERVER: OnceLock<RedisServer> = OnceLock::new();
    SERVER.get_or_init(RedisServer::start)
}

fn mobc_backend() -> MobcBackend {
    let url = RedisUrl::parse(&server().url(0)).unwrap();
    MobcBackend::new(
        url.to_connection_info().unwrap(),
        &url.address(),
        PoolOptions::default().max_connections(8),
    )
    .unwrap()
}

conformance_suite!(mobc_backend());
