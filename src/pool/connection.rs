//! The connection a backend hands out, and what happens when it is given back.

use std::fmt;

use redis::aio::ConnectionLike;
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};

use super::guarded::GuardedConnection;

/// How a connection is given back to its backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Release {
    /// The connection is clean: it may serve the next caller.
    Reuse,
    /// The connection may hold stale state (a reply still in flight, a WATCH, a SELECT) or
    /// reported an unrecoverable error: close it instead of reusing it.
    Discard,
}

type ReleaseHook = Box<dyn FnOnce(Release) + Send + Sync>;
type StaleCheck = Box<dyn Fn() -> bool + Send + Sync>;

/// A connection checked out of a [`PoolBackend`](super::PoolBackend).
///
/// It forwards `redis::aio::ConnectionLike`, so any redis command runs on it. Dropping it gives
/// it back: reused, unless [`discard`](Self::discard) was called.
pub struct PooledConnection {
    conn: Inner,
    release: Option<ReleaseHook>,
    mode: Release,
    stale: Option<StaleCheck>,
}

enum Inner {
    // The mobc backend's connections, called without boxing their futures: the client's
    // handle awaits them inline (one allocation fewer per command).
    Guarded(GuardedConnection),
    Other(Box<dyn ConnectionLike + Send + Sync>),
}

impl Inner {
    fn as_dyn(&mut self) -> &mut (dyn ConnectionLike + Send + Sync) {
        match self {
            Inner::Guarded(conn) => conn,
            Inner::Other(conn) => conn.as_mut(),
        }
    }

    fn db(&self) -> i64 {
        match self {
            Inner::Guarded(conn) => conn.get_db(),
            Inner::Other(conn) => conn.get_db(),
        }
    }
}

impl PooledConnection {
    /// Wraps any connection; nothing happens when it is dropped but dropping `conn`.
    pub fn new(conn: impl ConnectionLike + Send + Sync + 'static) -> Self {
        PooledConnection {
            conn: Inner::Other(Box::new(conn)),
            release: None,
            mode: Release::Reuse,
            stale: None,
        }
    }

    /// Wraps a connection and calls `release` once when it is given back.
    pub fn with_release(
        conn: impl ConnectionLike + Send + Sync + 'static,
        release: impl FnOnce(Release) + Send + Sync + 'static,
    ) -> Self {
        PooledConnection {
            conn: Inner::Other(Box::new(conn)),
            release: Some(Box::new(release)),
            mode: Release::Reuse,
            stale: None,
        }
    }

    /// Adds a check telling holders that keep the connection between commands (such as a
    /// handle's shared connection) that the backend no longer trusts it and a fresh one
    /// should be asked for.
    pub fn with_stale_check(mut self, stale: impl Fn() -> bool + Send + Sync + 'static) -> Self {
        self.stale = Some(Box::new(stale));
        self
    }

    /// Whether the backend no longer trusts the connection (see
    /// [`with_stale_check`](Self::with_stale_check)); never, without a check.
    pub fn is_stale(&self) -> bool {
        self.stale.as_ref().is_some_and(|stale| stale())
    }

    /// A guarded connection of the mobc backend, given back through `release`.
    pub(crate) fn guarded(
        conn: GuardedConnection,
        release: impl FnOnce(Release) + Send + Sync + 'static,
    ) -> Self {
        PooledConnection {
            conn: Inner::Guarded(conn),
            release: Some(Box::new(release)),
            mode: Release::Reuse,
            stale: None,
        }
    }

    /// Runs one command; for the mobc backend's connections, without boxing its future.
    pub(crate) async fn command(&mut self, cmd: &Cmd) -> RedisResult<Value> {
        match &mut self.conn {
            Inner::Guarded(conn) => conn.command(cmd).await,
            Inner::Other(conn) => conn.req_packed_command(cmd).await,
        }
    }

    /// Runs a pipeline; for the mobc backend's connections, without boxing its future.
    pub(crate) async fn commands(
        &mut self,
        pipeline: &Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        match &mut self.conn {
            Inner::Guarded(conn) => conn.commands(pipeline, offset, count).await,
            Inner::Other(conn) => conn.req_packed_commands(pipeline, offset, count).await,
        }
    }

    /// Marks the connection as not reusable: it is closed when given back.
    pub fn discard(&mut self) {
        self.mode = Release::Discard;
    }

    /// Whether the connection will be discarded when given back.
    pub fn is_discarded(&self) -> bool {
        self.mode == Release::Discard
    }
}

impl fmt::Debug for PooledConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PooledConnection")
            .field("db", &self.conn.db())
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl Drop for PooledConnection {
    fn drop(&mut self) {
        if let Some(release) = self.release.take() {
            release(self.mode);
        }
    }
}

impl ConnectionLike for PooledConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        self.conn.as_dyn().req_packed_command(cmd)
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        self.conn
            .as_dyn()
            .req_packed_commands(pipeline, offset, count)
    }

    fn get_db(&self) -> i64 {
        self.conn.db()
    }
}
