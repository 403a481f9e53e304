//! Where connections come from: the [`PoolBackend`] trait, its state, and the backends.
//!
//! A backend hands out two kinds of connection:
//! - **shared** ones for ordinary commands: several callers multiplex commands over one
//!   socket, which is what makes an instrumented client as fast as a raw multiplexed
//!   `redis-rs` connection;
//! - **exclusive** ones for commands that block the socket (BLPOP…) or change its state
//!   (WATCH, SELECT…): the caller has the socket to itself until it drops the connection.
//!
//! Both count against the same `max_connections` limit, as do the connections of Pub/Sub
//! subscribers ([`PoolBackend::subscriber`]).

mod cluster_backend;
mod connection;
mod dial;
mod fault_injection;
mod guarded;
mod hot_keys;
mod in_flight;
mod lifecycle;
mod memory;
mod mobc_backend;
mod options;
mod scripted;
mod sentinel;
mod state;
pub(crate) mod subscriber_connection;

pub use cluster_backend::{
    ClusterBackend, ClusterOptions, CLUSTER_RETRIES, CLUSTER_RETRY_WAIT,
    DEFAULT_CLUSTER_CONNECT_TIMEOUT,
};
pub use hot_keys::{HOT_KEY_READS_SET, HOT_KEY_TTL, HOT_KEY_WRITES_SET};
pub use lifecycle::{CloseReason, ConnectionLifecycle, PendingRequest, Redirect};
pub use sentinel::{SentinelBackend, SENTINEL_CHECK_INTERVAL};

#[cfg(any(test, feature = "mock"))]
#[cfg_attr(docsrs, doc(cfg(feature = "mock")))]
pub use crate::mock::MockPoolBackend;
pub use connection::{PooledConnection, Release};
pub use fault_injection::{Fault, FaultInjectingBackend, FaultRule};
pub(crate) use guarded::breaks_connection;
pub use memory::InMemoryBackend;
pub use mobc_backend::MobcBackend;
pub use options::{
    ClientAuth, PoolOptions, TlsOptions, DEFAULT_CONNECT_TIMEOUT, DEFAULT_HEALTH_CHECK_INTERVAL,
    DEFAULT_MAX_CONNECTIONS, DEFAULT_POOL_TIMEOUT, DEFAULT_TCP_KEEPALIVE,
};
pub use scripted::ScriptedConnection;
pub use state::PoolState;

/// The attribute that implements [`PoolBackend`] (an `async_trait`), re-exported so a
/// backend needs no dependency of its own: `#[baseplate_redis::pool::async_trait]`.
pub use async_trait::async_trait;

use std::sync::Arc;

use crate::Result;

/// Where a subscriber connection sends what the server pushes: Pub/Sub messages,
/// (un)subscribe confirmations, and a `PushKind::Disconnection` when the connection is lost.
pub type PushSender = tokio::sync::mpsc::UnboundedSender<redis::PushInfo>;

/// A source of Redis connections: where a client's commands go. Implemented by
/// [`MobcBackend`] (real Redis), [`SentinelBackend`], [`ClusterBackend`],
/// [`InMemoryBackend`] (no server) and, with the `mock` feature, mockall's
/// `MockPoolBackend`. Implement it to send commands somewhere else, or to wrap a backend.
///
/// Implement it with [`#[async_trait]`](macro@async_trait) (re-exported here). Plug it into
/// a service through [`RedisClient::with_backend`](crate::RedisClient::with_backend) (a
/// backend of your own) or [`RedisClient::map_pool`](crate::RedisClient::map_pool) (a
/// wrapper around the pool the configuration describes); either keeps the client's other
/// options, its spans and metrics.
///
/// # Contract
///
/// What the client does with a backend, and so what a backend must guarantee:
///
/// - **[`shared`](Self::shared)** is asked once by each handle
///   ([`MonitoredRedisConnection`](crate::MonitoredRedisConnection)), on its first ordinary
///   command, and the connection is kept for the handle's life. It is asked again only after
///   the connection reported an error that breaks it (an I/O error other than a timeout, a
///   dropped connection, an unrecoverable error) or when
///   [`PooledConnection::is_stale`] turns true. Every request's handle holds one at the same
///   time, so a shared connection must be *multiplexed*: many handles' clones sending
///   concurrently over one socket (as redis-rs's `MultiplexedConnection` does), never a
///   socket per handle. It must also be *cancel-safe*: a command future dropped before its
///   reply arrived (a request timing out, a client going away) must leave the connection
///   able to serve the next command with the next command's reply.
/// - **[`exclusive`](Self::exclusive)** is asked for each blocking command (BLPOP…), each
///   pipeline holding one, and for a handle's WATCH/MULTI or connection-state changes
///   (SELECT, CLIENT SETNAME), which pin it to the handle until done. The caller has it to
///   itself and drops it when done: a connection dropped in the middle of a command, or
///   with state left on it, is handed back with [`Release::Discard`] (see
///   [`PooledConnection::with_release`]) and must be closed, never handed out again.
///   When all connections are in use it waits, bounded, then fails with
///   [`Error::PoolTimeout`](crate::Error::PoolTimeout).
/// - **[`address`](Self::address)** is read at the start of every command's span (the
///   `server.address`/`server.port` tags), so it is on the hot path: return a stored
///   `Arc<str>` (a clone is one atomic increment), never format one per call. It may change
///   (a Sentinel failover); it must never hold credentials.
/// - **[`database`](Self::database)** is read once, when the client's factory is made (the
///   `redis_database` label and the `db.namespace` tag).
/// - **[`state`](Self::state)** is read by the runtime reporter every interval (pool
///   gauges); it must be cheap and never wait.
/// - **Errors.** Errors of `shared`/`exclusive` fail the command that needed the connection
///   (its span and `redis_success="false"`). With the `axum` feature a handler's
///   [`Error`](crate::Error) answers `503 Service Unavailable` when
///   [`is_connection_error`](crate::Error::is_connection_error) or
///   [`is_timeout`](crate::Error::is_timeout) holds — return
///   [`Error::Connect`](crate::Error::Connect), [`Error::ConnectTimeout`](crate::Error::ConnectTimeout)
///   or [`Error::PoolTimeout`](crate::Error::PoolTimeout) (or a `redis::RedisError` that
///   is an I/O error) for "Redis is unreachable" — and `500` for anything else.
///
/// # A wrapper backend
///
/// A backend that counts checkouts around any other backend, plugged in from
/// configuration with [`RedisClient::map_pool`](crate::RedisClient::map_pool):
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::sync::Arc;
/// use baseplate_redis::pool::{async_trait, PoolBackend, PoolState, PooledConnection};
/// use baseplate_redis::{config::RawConfig, Baseplate, ContextSpec, RedisClient};
///
/// #[derive(Debug)]
/// struct Counting {
///     inner: Arc<dyn PoolBackend>,
///     exclusive: AtomicU64,
/// }
///
/// #[async_trait]
/// impl PoolBackend for Counting {
///     async fn shared(&self) -> baseplate_redis::Result<PooledConnection> {
///         self.inner.shared().await
///     }
///     async fn exclusive(&self) -> baseplate_redis::Result<PooledConnection> {
///         self.exclusive.fetch_add(1, Ordering::Relaxed);
///         self.inner.exclusive().await
///     }
///     fn state(&self) -> PoolState {
///         self.inner.state()
///     }
///     fn database(&self) -> i64 {
///         self.inner.database()
///     }
///     fn address(&self) -> Arc<str> {
///         self.inner.address()
///     }
/// }
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let counting = Arc::new(std::sync::OnceLock::<Arc<Counting>>::new());
/// let client = RedisClient::new().map_pool({
///     let counting = counting.clone();
///     move |inner| {
///         let wrapper = Arc::new(Counting { inner, exclusive: AtomicU64::new(0) });
///         counting.set(wrapper.clone()).unwrap();
///         wrapper
///     }
/// });
/// let config = RawConfig::from_pairs([("foo.url", "memory://doc-wrapper")]);
/// let mut baseplate = Baseplate::new(config);
/// baseplate.configure_context(ContextSpec::new().client("foo", client))?;
///
/// let mut foo = baseplate.make_context_object().redis("foo")?;
/// let _: () = redis::cmd("RPUSH").arg("jobs").arg("a").query_async(&mut foo).await?;
/// let _: Option<(String, String)> =
///     redis::cmd("BLPOP").arg("jobs").arg(1).query_async(&mut foo).await?;
/// assert_eq!(counting.get().unwrap().exclusive.load(Ordering::Relaxed), 1);
/// # Ok(()) }
/// # tokio::runtime::Runtime::new().unwrap().block_on(run()).unwrap();
/// ```
#[async_trait]
pub trait PoolBackend: Send + Sync + std::fmt::Debug {
    /// A connection for ordinary commands, kept by the asking handle: multiplexed (shared
    /// with other handles) and cancel-safe. Dropping it never closes a socket that others
    /// use.
    async fn shared(&self) -> Result<PooledConnection>;

    /// A connection for this caller alone (blocking commands, WATCH transactions, state
    /// changes). Waits, bounded by the pool's wait timeout, when all are in use. Its release
    /// hook gets [`Release::Discard`] when a command on it did not complete (see [`Release`]).
    async fn exclusive(&self) -> Result<PooledConnection>;

    /// A connection of its own for a Pub/Sub subscriber, counted against the pool's limit
    /// until it is dropped. SUBSCRIBE, PSUBSCRIBE, UNSUBSCRIBE, PUNSUBSCRIBE (and SSUBSCRIBE
    /// where the backend has sharded channels) and PING run on it; the messages the server
    /// pushes go to `pushes`, in order, and a `redis::PushKind::Disconnection` push (or
    /// `pushes` being dropped) says the connection is gone. Messages are RESP3 pushes:
    /// `message [channel, payload]`, `pmessage [pattern, channel, payload]`,
    /// `smessage [channel, payload]`.
    ///
    /// The default says the backend has no Pub/Sub
    /// ([`Error::Unsupported`](crate::Error::Unsupported)), so backends
    /// written before it keep compiling; the crate's own backends all implement it.
    async fn subscriber(&self, pushes: PushSender) -> Result<PooledConnection> {
        drop(pushes);
        Err(crate::Error::Unsupported {
            operation: "Pub/Sub",
            address: self.address().to_string(),
        })
    }

    /// How many connections exist and how many are in use, now. Cheap: read every
    /// reporting interval.
    fn state(&self) -> PoolState;

    /// The database number commands run against. Read once, when the client is made.
    fn database(&self) -> i64;

    /// Where the connections go, without credentials (for errors, logs and span tags).
    /// Read on every command: return a stored `Arc<str>`.
    fn address(&self) -> Arc<str>;
}
