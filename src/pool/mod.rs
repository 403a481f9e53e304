//! Where connections come from: the [`PoolBackend`] trait, its state, and the backends.
//!
//! A backend hands out two kinds of connection:
//! - **shared** ones for ordinary commands: several callers multiplex commands over one
//!   socket, which is what makes an instrumented client as fast as a raw multiplexed
//!   `redis-rs` connection;
//! - **exclusive** ones for commands that block the socket (BLPOP…) or change its state
//!   (WATCH, SELECT…): the caller has the socket to itself until it drops the connection.
//!
//! Both count against the same `max_connections` limit.

mod cluster_backend;
mod connection;
mod dial;
mod guarded;
mod hot_keys;
mod in_flight;
mod lifecycle;
mod memory;
mod mobc_backend;
mod options;
mod sentinel;
mod state;

pub use cluster_backend::{
    ClusterBackend, ClusterOptions, CLUSTER_RETRIES, CLUSTER_RETRY_WAIT,
    DEFAULT_CLUSTER_CONNECT_TIMEOUT,
};
pub use hot_keys::{HOT_KEY_READS_SET, HOT_KEY_TTL, HOT_KEY_WRITES_SET};
pub use lifecycle::{CloseReason, ConnectionLifecycle, PendingRequest, Redirect};
pub use sentinel::{SentinelBackend, SENTINEL_CHECK_INTERVAL};

pub use connection::{PooledConnection, Release};
pub(crate) use guarded::breaks_connection;
pub use memory::InMemoryBackend;
pub use mobc_backend::MobcBackend;
pub use options::{
    ClientAuth, PoolOptions, TlsOptions, DEFAULT_CONNECT_TIMEOUT, DEFAULT_HEALTH_CHECK_INTERVAL,
    DEFAULT_MAX_CONNECTIONS, DEFAULT_POOL_TIMEOUT, DEFAULT_TCP_KEEPALIVE,
};
pub use state::PoolState;

use std::sync::Arc;

use async_trait::async_trait;

use crate::Result;

/// A source of Redis connections. Implemented by the real mobc-backed pool, by the in-memory
/// backend, and (with the `mock` feature) by mockall's `MockPoolBackend`.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait PoolBackend: Send + Sync + std::fmt::Debug {
    /// A connection for ordinary commands. It may be shared with other callers; dropping it
    /// never closes a socket that others use.
    async fn shared(&self) -> Result<PooledConnection>;

    /// A connection for this caller alone (blocking commands, WATCH transactions, state
    /// changes). Waits, bounded by the pool's wait timeout, when all are in use. Its release
    /// hook gets [`Release::Discard`] when a command on it did not complete (see [`Release`]).
    async fn exclusive(&self) -> Result<PooledConnection>;

    /// How many connections exist and how many are in use, now.
    fn state(&self) -> PoolState;

    /// The database number commands run against.
    fn database(&self) -> i64;

    /// Where the connections go, without credentials (for errors, logs and span tags).
    fn address(&self) -> Arc<str>;
}
