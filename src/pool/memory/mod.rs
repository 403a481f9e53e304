//! A Redis that lives in the process: no server, no sockets, the same replies.
//!
//! [`InMemoryBackend`] implements [`PoolBackend`] over a keyspace held in memory. Its
//! connections implement `redis::aio::ConnectionLike`, so every `redis::AsyncCommands`
//! method, pipelines (plain and atomic) and WATCH transactions work on them, and replies
//! and error replies are those of a Redis 7.0 server over RESP2 (`err.code()`,
//! `err.kind()`, `err.detail()` and `err.to_string()` included).
//!
//! Implemented: PING, ECHO, SELECT, CLIENT SETNAME/GETNAME, DBSIZE, FLUSHDB, FLUSHALL; DEL,
//! UNLINK, EXISTS, EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT, TTL, PTTL, PERSIST, TYPE, KEYS, SCAN,
//! RENAME; GET, SET (EX/PX/EXAT/PXAT/NX/XX/GET/KEEPTTL), SETNX, SETEX, PSETEX, MGET, MSET,
//! GETDEL, INCR, INCRBY, DECR, DECRBY, INCRBYFLOAT, APPEND, STRLEN, GETRANGE; LPUSH, RPUSH,
//! LPOP, RPOP, LLEN, LRANGE, LINDEX, LSET, LREM, LTRIM, BLPOP, BRPOP; HSET, HMSET, HSETNX,
//! HGET, HMGET, HGETALL, HDEL, HEXISTS, HLEN, HKEYS, HVALS, HINCRBY; SADD, SREM, SMEMBERS,
//! SISMEMBER, SCARD; PUBLISH, and SUBSCRIBE, PSUBSCRIBE (glob patterns), UNSUBSCRIBE,
//! PUNSUBSCRIBE through [`PoolBackend::subscriber`]; ZADD, ZINCRBY, ZSCORE, ZRANGE (rank, BYSCORE, BYLEX, REV, LIMIT,
//! WITHSCORES), ZRANGEBYSCORE, ZREVRANGE, ZREVRANGEBYSCORE, ZRANGEBYLEX, ZREVRANGEBYLEX,
//! ZREM, ZCARD; MULTI, EXEC, DISCARD, WATCH, UNWATCH. Scripts (EVAL, EVALSHA, SCRIPT,
//! FCALL, FUNCTION — what `redis::Script` sends) get an error naming `memory://` and what to
//! use instead: there is no Lua engine. Anything else gets Redis's unknown-command error.
//!
//! Known differences from Redis 7.0:
//! - INCRBYFLOAT computes in `f64`, not `long double`: results print as the shortest
//!   decimal (`10.6`), where Redis sometimes shows extended-precision digits
//!   (`1010.59999999999999998`).
//! - A transaction refused at EXEC because of a queuing error surfaces as an `EXECABORT`
//!   server error (same `kind()` and `code()` as redis-rs's "Transaction aborted" error,
//!   different text).
//! - SCAN walks keys in hash order with its own cursor values; blocked pops are woken
//!   together rather than strictly first-come first-served.

mod blocking;
mod commands;
mod connection;
mod pubsub;
mod store;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;

use self::connection::InMemoryConnection;
use self::pubsub::InMemorySubscriber;
use self::store::{Store, DATABASES};
use super::{PoolBackend, PoolState, PooledConnection, PushSender};
use crate::{Error, Result};

/// The pool size reported by default, as a real pool's default `max_connections`.
const DEFAULT_MAX_SIZE: u32 = 50;

/// Stores by name, shared by every [`InMemoryBackend::named`] backend of the process.
fn registry() -> &'static Mutex<HashMap<String, Arc<Store>>> {
    static REGISTRY: OnceLock<Mutex<HashMap<String, Arc<Store>>>> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

/// A [`PoolBackend`] whose "server" is a keyspace in this process: for tests, examples and
/// local development without a `redis-server`.
///
/// [`new`](Self::new) makes a private store; [`named`](Self::named) one shared by every
/// backend of the process created with the same name (as clients of one server). Named
/// stores live as long as the process.
///
/// ```
/// use baseplate_redis::pool::{InMemoryBackend, PoolBackend};
/// use redis::AsyncCommands;
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let backend = InMemoryBackend::named("cache", 0);
/// let mut conn = backend.shared().await?;
/// let _: () = conn.set_ex("greeting", "hello", 60).await?;
/// let greeting: String = conn.get("greeting").await?;
/// assert_eq!(greeting, "hello");
///
/// // Another backend with the same name sees the same data.
/// let other = InMemoryBackend::named("cache", 0);
/// let ttl: i64 = other.shared().await?.ttl("greeting").await?;
/// assert!(ttl > 0 && ttl <= 60);
///
/// // Errors are the server's own.
/// let err = conn.lpush::<_, _, i64>("greeting", "x").await.unwrap_err();
/// assert_eq!(err.code(), Some("WRONGTYPE"));
/// assert_eq!(&*backend.address(), "memory://cache");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
pub struct InMemoryBackend {
    store: Arc<Store>,
    name: String,
    // `memory://<name>`, made once.
    address: Arc<str>,
    db: i64,
    max_size: u32,
    in_use: Arc<AtomicU32>,
}

impl InMemoryBackend {
    /// A backend over a new private store (database 0) that no other backend sees.
    pub fn new() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        Self::with_store(Arc::new(Store::new()), format!("private-{n}"), 0)
    }

    /// A backend over the process-wide store called `name`, using database `db` (0–15).
    /// Backends with the same name share data; different names are separate.
    pub fn named(name: &str, db: i64) -> Self {
        let store = registry()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(name.to_string())
            .or_insert_with(|| Arc::new(Store::new()))
            .clone();
        Self::with_store(store, name.to_string(), db)
    }

    fn with_store(store: Arc<Store>, name: String, db: i64) -> Self {
        InMemoryBackend {
            store,
            address: Arc::from(format!("memory://{name}")),
            name,
            db,
            max_size: DEFAULT_MAX_SIZE,
            in_use: Arc::new(AtomicU32::new(0)),
        }
    }

    /// Sets the pool size [`state`](PoolBackend::state) reports (default 50). Connections
    /// are not limited by it.
    pub fn with_max_size(mut self, max_size: u32) -> Self {
        self.max_size = max_size;
        self
    }

    fn connection(&self) -> Result<InMemoryConnection> {
        if !(0..DATABASES).contains(&self.db) {
            return Err(Error::Connect {
                address: self.address.to_string(),
                source: redis::RedisError::from((
                    redis::ErrorKind::InvalidClientConfig,
                    "DB index is out of range",
                    format!("database {} (an in-memory store has 0 to 15)", self.db),
                )),
            });
        }
        Ok(InMemoryConnection::new(self.store.clone(), self.db))
    }
}

impl Default for InMemoryBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for InMemoryBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InMemoryBackend")
            .field("name", &self.name)
            .field("db", &self.db)
            .field("max_size", &self.max_size)
            .field("in_use", &self.in_use.load(Ordering::Relaxed))
            .finish()
    }
}

#[async_trait]
impl PoolBackend for InMemoryBackend {
    async fn shared(&self) -> Result<PooledConnection> {
        Ok(PooledConnection::new(self.connection()?))
    }

    async fn exclusive(&self) -> Result<PooledConnection> {
        let conn = self.connection()?;
        self.in_use.fetch_add(1, Ordering::Relaxed);
        let in_use = self.in_use.clone();
        Ok(PooledConnection::with_release(conn, move |_| {
            in_use.fetch_sub(1, Ordering::Relaxed);
        }))
    }

    /// A subscriber of this backend's store: PUBLISH on any backend sharing the store
    /// reaches it. Counted as in use while it lives.
    async fn subscriber(&self, pushes: PushSender) -> Result<PooledConnection> {
        let conn = InMemorySubscriber::new(self.store.clone(), pushes);
        self.in_use.fetch_add(1, Ordering::Relaxed);
        let in_use = self.in_use.clone();
        Ok(PooledConnection::with_release(conn, move |_| {
            in_use.fetch_sub(1, Ordering::Relaxed);
        }))
    }

    fn state(&self) -> PoolState {
        let in_use = self.in_use.load(Ordering::Relaxed);
        PoolState::new(self.max_size, in_use, in_use)
    }

    fn database(&self) -> i64 {
        self.db
    }

    fn address(&self) -> Arc<str> {
        self.address.clone()
    }
}
