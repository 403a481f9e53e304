//! The conformance suite against a real `redis-server` (started by the harness, one per
//! test binary; each case uses its own key prefix).

#[path = "conformance/cases.rs"]
mod cases;
mod common;

use std::sync::OnceLock;

use common::{DirectBackend, RedisServer};

fn server() -> &'static RedisServer {
    static SERVER: OnceLock<RedisServer> = OnceLock::new();
    SERVER.get_or_init(RedisServer::start)
}

conformance_suite!(DirectBackend::new(&server().url(0), 0));
