//! The real pool: up to `max_connections` multiplexed connections to one Redis server,
//! managed by `mobc`.
//!
//! One pooled connection at a time is leased as the *shared* connection: ordinary commands
//! of every caller are multiplexed over it (as fast as a raw `redis-rs` multiplexed
//! connection). The others are checked out *exclusively*, one caller each, for blocking
//! commands and WATCH transactions. A connection that failed unrecoverably, timed out or was
//! cancelled mid-command is closed rather than reused, and the next caller opens a fresh
//! one, which is how the pool recovers by itself after a server restart.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use async_trait::async_trait;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, ConnectionInfo};

use super::guarded::{GuardedConnection, Poison, Sharing};
use super::{PoolBackend, PoolOptions, PoolState, PooledConnection, Release};
use crate::{Error, Result};

/// A Redis connection pool on `mobc`. Built by [`pool_from_config`](crate::pool_from_config)
/// for `redis://`, `rediss://` and `unix://` URLs, or directly with [`MobcBackend::new`].
///
/// Making the backend opens no connection; the first command does.
pub struct MobcBackend {
    pool: mobc::Pool<Manager>,
    shared: Arc<ArcSwapOption<SharedLease>>,
    // Only one caller opens the shared connection; the others wait for it.
    opening_shared: tokio::sync::Mutex<()>,
    counts: Arc<Counts>,
    options: PoolOptions,
    address: Arc<str>,
    db: i64,
}

#[derive(Debug, Default)]
struct Counts {
    open: AtomicU32,
    exclusive_in_use: AtomicU32,
    shared_in_flight: Arc<AtomicU32>,
}

/// One pooled socket, as mobc holds it.
struct Managed {
    conn: MultiplexedConnection,
    poison: Poison,
    _open: OpenGuard,
}

/// Counts open sockets: one per `Managed`, released when mobc drops it.
struct OpenGuard(Arc<Counts>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

struct Manager {
    client: redis::Client,
    config: AsyncConnectionConfig,
    connect_timeout: Option<Duration>,
    client_name: Option<String>,
    address: Arc<str>,
    counts: Arc<Counts>,
}

/// The pooled connection currently used by everyone for ordinary commands. Handles hold it
/// (through an `Arc`) while they use it, so its socket stays counted until the last one is
/// done; then it goes back to the pool, or is closed if it was poisoned.
struct SharedLease {
    lease: Option<mobc::Connection<Manager>>,
    conn: MultiplexedConnection,
    poison: Poison,
}

impl Drop for SharedLease {
    fn drop(&mut self) {
        if let Some(lease) = self.lease.take() {
            give_back(lease, self.poison.is_set());
        }
    }
}

fn give_back(lease: mobc::Connection<Manager>, discard: bool) {
    if discard {
        // Taking the raw connection out of mobc closes it and frees its slot.
        drop(lease.into_inner());
    } else {
        drop(lease);
    }
}

#[async_trait]
impl mobc::Manager for Manager {
    type Connection = Managed;
    type Error = Error;

    async fn connect(&self) -> Result<Managed> {
        let connecting = self
            .client
            .get_multiplexed_async_connection_with_config(&self.config);
        let connected = match self.connect_timeout {
            Some(timeout) => tokio::time::timeout(timeout, connecting)
                .await
                .map_err(|_| Error::ConnectTimeout {
                    address: self.address.to_string(),
                    timeout,
                })?,
            None => connecting.await,
        };
        let mut conn = connected.map_err(|source| Error::Connect {
            address: self.address.to_string(),
            source,
        })?;
        if let Some(name) = &self.client_name {
            redis::cmd("CLIENT")
                .arg("SETNAME")
                .arg(name)
                .exec_async(&mut conn)
                .await
                .map_err(|source| Error::Connect {
                    address: self.address.to_string(),
                    source,
                })?;
        }
        self.counts.open.fetch_add(1, Ordering::Relaxed);
        Ok(Managed {
            conn,
            poison: Poison::default(),
            _open: OpenGuard(self.counts.clone()),
        })
    }

    /// An idle connection is checked (at most every health-check interval) before reuse:
    /// `UNWATCH` then `PING` with a unique payload, which must come back unchanged.
    async fn check(&self, mut managed: Managed) -> Result<Managed> {
        let payload = format!("baseplate-redis-check-{}", fastrand::u64(..));
        let check = async {
            redis::cmd("UNWATCH").exec_async(&mut managed.conn).await?;
            redis::cmd("PING")
                .arg(&payload)
                .query_async::<String>(&mut managed.conn)
                .await
        };
        let limit = self.connect_timeout.unwrap_or(Duration::from_secs(5));
        match tokio::time::timeout(limit, check).await {
            Ok(Ok(echo)) if echo == payload => Ok(managed),
            Ok(Ok(_)) => Err(self.broken("health check PING echoed a different payload")),
            Ok(Err(source)) => Err(Error::Connect {
                address: self.address.to_string(),
                source,
            }),
            Err(_) => Err(self.broken("health check timed out")),
        }
    }

    fn validate(&self, managed: &mut Managed) -> bool {
        !managed.poison.is_set()
    }
}

impl Manager {
    fn broken(&self, what: &'static str) -> Error {
        Error::Connect {
            address: self.address.to_string(),
            source: redis::RedisError::from((redis::ErrorKind::Io, what)),
        }
    }
}

impl MobcBackend {
    /// A pool of connections to the server `info` names.
    ///
    /// `address` is how errors and spans name the server; it must not contain a password
    /// (see [`RedisUrl::address`](crate::config::RedisUrl::address)).
    pub fn new(info: ConnectionInfo, address: &str, options: PoolOptions) -> Result<Self> {
        let address: Arc<str> = Arc::from(address);
        let db = info.redis_settings().db();
        let client = redis::Client::open(info).map_err(|source| Error::Connect {
            address: address.to_string(),
            source,
        })?;
        let counts = Arc::new(Counts::default());
        // Timeouts are ours to apply (see `guarded`): never the redis crate's defaults.
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(None)
            .set_response_timeout(None);
        let manager = Manager {
            client,
            config,
            connect_timeout: options.connect_timeout,
            client_name: options.client_name.clone(),
            address: address.clone(),
            counts: counts.clone(),
        };
        let max = u64::from(options.max_connections.max(1));
        let pool = mobc::Pool::builder()
            .max_open(max)
            // mobc's default keeps only 2 idle and reopens the rest under load.
            .max_idle(max)
            .test_on_check_out(options.health_check_interval.is_some())
            .health_check_interval(options.health_check_interval)
            .get_timeout(Some(options.pool_timeout))
            .build(manager);
        Ok(MobcBackend {
            pool,
            shared: Arc::new(ArcSwapOption::empty()),
            opening_shared: tokio::sync::Mutex::new(()),
            counts,
            options,
            address,
            db,
        })
    }

    async fn checkout(&self) -> Result<mobc::Connection<Manager>> {
        self.pool.get().await.map_err(|err| match err {
            mobc::Error::Inner(err) => err,
            mobc::Error::Timeout => Error::PoolTimeout {
                address: self.address.to_string(),
                waited: self.options.pool_timeout,
                max_connections: self.options.max_connections,
            },
            mobc::Error::BadConn => Error::Connect {
                address: self.address.to_string(),
                source: redis::RedisError::from((
                    redis::ErrorKind::Io,
                    "no healthy connection after retries",
                )),
            },
            mobc::Error::PoolClosed => Error::Connect {
                address: self.address.to_string(),
                source: redis::RedisError::from((redis::ErrorKind::Io, "pool closed")),
            },
        })
    }

    fn current_shared(&self) -> Option<Arc<SharedLease>> {
        self.shared
            .load_full()
            .filter(|lease| !lease.poison.is_set())
    }

    async fn shared_lease(&self) -> Result<Arc<SharedLease>> {
        if let Some(lease) = self.current_shared() {
            return Ok(lease);
        }
        let _opening = self.opening_shared.lock().await;
        if let Some(lease) = self.current_shared() {
            return Ok(lease);
        }
        let lease = self.checkout().await?;
        let shared = Arc::new(SharedLease {
            conn: lease.conn.clone(),
            poison: lease.poison.clone(),
            lease: Some(lease),
        });
        self.shared.store(Some(shared.clone()));
        Ok(shared)
    }

    fn guarded(
        &self,
        conn: MultiplexedConnection,
        poison: Poison,
        sharing: Sharing,
    ) -> GuardedConnection {
        GuardedConnection {
            conn,
            socket_timeout: self.options.socket_timeout,
            poison,
            sharing,
        }
    }
}

#[async_trait]
impl PoolBackend for MobcBackend {
    async fn shared(&self) -> Result<PooledConnection> {
        let lease = self.shared_lease().await?;
        let conn = self.guarded(
            lease.conn.clone(),
            lease.poison.clone(),
            Sharing::Shared(self.counts.shared_in_flight.clone()),
        );
        let slot = self.shared.clone();
        Ok(PooledConnection::guarded(conn, move |release| {
            if release == Release::Discard {
                lease.poison.set();
            }
            if lease.poison.is_set() {
                // Stop handing it out; it closes when its last user is done.
                slot.compare_and_swap(&Some(lease.clone()), None);
            }
            drop(lease);
        }))
    }

    async fn exclusive(&self) -> Result<PooledConnection> {
        let lease = self.checkout().await?;
        self.counts.exclusive_in_use.fetch_add(1, Ordering::Relaxed);
        let conn = self.guarded(lease.conn.clone(), lease.poison.clone(), Sharing::Exclusive);
        let counts = self.counts.clone();
        Ok(PooledConnection::guarded(conn, move |release| {
            counts.exclusive_in_use.fetch_sub(1, Ordering::Relaxed);
            let discard = release == Release::Discard || lease.poison.is_set();
            give_back(lease, discard);
        }))
    }

    fn state(&self) -> PoolState {
        let shared_busy = u32::from(self.counts.shared_in_flight.load(Ordering::Relaxed) > 0);
        PoolState::new(
            self.options.max_connections,
            self.counts.open.load(Ordering::Relaxed),
            self.counts.exclusive_in_use.load(Ordering::Relaxed) + shared_busy,
        )
    }

    fn database(&self) -> i64 {
        self.db
    }

    fn address(&self) -> String {
        self.address.to_string()
    }
}

impl fmt::Debug for MobcBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MobcBackend")
            .field("address", &self.address)
            .field("db", &self.db)
            .field("options", &self.options)
            .field("state", &self.state())
            .finish()
    }
}
