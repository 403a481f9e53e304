//! The conformance suite against a real `redis-server` through the mobc-backed pool. Each
//! case gets its own server, stopped when the case ends.

#[path = "conformance/cases.rs"]
mod cases;
mod common;

use async_trait::async_trait;
use baseplate_redis::config::RedisUrl;
use baseplate_redis::pool::{
    MobcBackend, PoolBackend, PoolOptions, PoolState, PooledConnection, PushSender,
};
use common::RedisServer;

/// A mobc backend over a server of its own, which lives as long as the backend.
#[derive(Debug)]
struct ServedBackend {
    backend: MobcBackend,
    _server: ServerGuard,
}

struct ServerGuard(RedisServer);

impl std::fmt::Debug for ServerGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "redis-server on port {}", self.0.port())
    }
}

fn mobc_backend() -> ServedBackend {
    let server = RedisServer::start();
    let url = RedisUrl::parse(&server.url(0)).unwrap();
    let backend = MobcBackend::new(
        url.to_connection_info().unwrap(),
        &url.address(),
        PoolOptions::default().max_connections(8),
    )
    .unwrap();
    ServedBackend {
        backend,
        _server: ServerGuard(server),
    }
}

#[async_trait]
impl PoolBackend for ServedBackend {
    async fn shared(&self) -> baseplate_redis::Result<PooledConnection> {
        self.backend.shared().await
    }

    async fn exclusive(&self) -> baseplate_redis::Result<PooledConnection> {
        self.backend.exclusive().await
    }

    async fn subscriber(&self, pushes: PushSender) -> baseplate_redis::Result<PooledConnection> {
        self.backend.subscriber(pushes).await
    }

    fn state(&self) -> PoolState {
        self.backend.state()
    }

    fn database(&self) -> i64 {
        self.backend.database()
    }

    fn address(&self) -> std::sync::Arc<str> {
        self.backend.address()
    }
}

conformance_suite!(mobc_backend());
