//! A test-only `PoolBackend` straight over redis-rs: one multiplexed connection for shared
//! use, a fresh one per exclusive checkout. Stands in for the real pool in conformance runs.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use baseplate_redis::pool::{PoolBackend, PoolState, PooledConnection};
use baseplate_redis::{Error, Result};
use redis::aio::MultiplexedConnection;
use redis::AsyncConnectionConfig;
use tokio::sync::OnceCell;

#[derive(Debug)]
pub struct DirectBackend {
    client: redis::Client,
    db: i64,
    shared: OnceCell<MultiplexedConnection>,
    in_use: Arc<AtomicU32>,
}

impl DirectBackend {
    pub fn new(url: &str, db: i64) -> Self {
        DirectBackend {
            client: redis::Client::open(url).unwrap(),
            db,
            shared: OnceCell::new(),
            in_use: Arc::new(AtomicU32::new(0)),
        }
    }

    async fn connect(&self) -> Result<MultiplexedConnection> {
        let config = AsyncConnectionConfig::new()
            .set_response_timeout(None)
            .set_connection_timeout(None);
        self.client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|source| Error::Connect {
                address: self.address(),
                source,
            })
    }
}

#[async_trait]
impl PoolBackend for DirectBackend {
    async fn shared(&self) -> Result<PooledConnection> {
        let conn = self.shared.get_or_try_init(|| self.connect()).await?;
        Ok(PooledConnection::new(conn.clone()))
    }

    async fn exclusive(&self) -> Result<PooledConnection> {
        let conn = self.connect().await?;
        self.in_use.fetch_add(1, Ordering::Relaxed);
        let in_use = self.in_use.clone();
        Ok(PooledConnection::with_release(conn, move |_| {
            in_use.fetch_sub(1, Ordering::Relaxed);
        }))
    }

    fn state(&self) -> PoolState {
        let n = self.in_use.load(Ordering::Relaxed);
        PoolState::new(50, n + 1, n)
    }

    fn database(&self) -> i64 {
        self.db
    }

    fn address(&self) -> String {
        let info = self.client.get_connection_info();
        info.addr().to_string()
    }
}
