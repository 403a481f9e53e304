//! The connection a backend hands out, and what happens when it is given back.

use std::fmt;

use redis::aio::ConnectionLike;
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};

use super::guarded::GuardedConnection;

/// How a connection is given back to its backend.
///
/// A backend's release hook gets [`Release::Discard`] for an exclusive connection (one from
/// [`PoolBackend::exclusive`](super::PoolBackend::exclusive)) whose last command did not
/// complete — its future was dropped, its reply timed out, or its socket failed — whatever
/// the backend: the socket may still carry that command's reply or server-side state.
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
    // Set while a command is in flight, and left set when it did not complete (its future
    // dropped, its reply timed out, its socket failed).
    unfinished: bool,
    // Held by one caller across commands: an unfinished command makes it unfit for reuse. (A
    // shared connection's multiplexer drops a late reply itself.)
    exclusive: bool,
}

/// Whether a command that ended with `result` may have left something on its socket: a
/// reply still on its way (a timeout) or a socket that can no longer be trusted.
fn left_unfinished<T>(result: &RedisResult<T>) -> bool {
    matches!(result, Err(err) if err.is_timeout() || super::breaks_connection(err))
}

enum Inner {
    // The mobc backend's connections, called without boxing their futures: the client's
    // handle awaits them inline (one allocation fewer per command).
    Guarded(GuardedConnection),
    Other(Box<dyn ConnectionLike + Send + Sync>),
}

impl Inner {
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
            unfinished: false,
            exclusive: false,
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
            unfinished: false,
            exclusive: false,
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
            unfinished: false,
            exclusive: false,
        }
    }

    /// Marks a connection from [`PoolBackend::exclusive`](super::PoolBackend::exclusive):
    /// given back after a command that did not complete, it is discarded.
    pub(crate) fn held_exclusively(mut self) -> Self {
        self.exclusive = true;
        self
    }

    /// Whether the last command on this connection did not complete (cancelled, timed out,
    /// socket failed), so the state of its socket is unknown.
    pub(crate) fn is_unfinished(&self) -> bool {
        self.unfinished
    }

    /// Runs one command; for the mobc backend's connections, without boxing its future.
    pub(crate) async fn command(&mut self, cmd: &Cmd) -> RedisResult<Value> {
        // Cleared only when the command completes: a dropped future leaves it set.
        self.unfinished = true;
        let result = match &mut self.conn {
            Inner::Guarded(conn) => conn.command(cmd).await,
            Inner::Other(conn) => conn.req_packed_command(cmd).await,
        };
        self.unfinished = left_unfinished(&result);
        result
    }

    /// Runs a pipeline; for the mobc backend's connections, without boxing its future.
    pub(crate) async fn commands(
        &mut self,
        pipeline: &Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        self.unfinished = true;
        let result = match &mut self.conn {
            Inner::Guarded(conn) => conn.commands(pipeline, offset, count).await,
            Inner::Other(conn) => conn.req_packed_commands(pipeline, offset, count).await,
        };
        self.unfinished = left_unfinished(&result);
        result
    }

    /// Marks the connection as not reusable: it is closed when given back.
    pub fn discard(&mut self) {
        self.mode = Release::Discard;
    }

    /// Whether the connection will be discarded when given back: [`discard`](Self::discard)
    /// was called, or it is exclusive and its last command did not complete.
    pub fn is_discarded(&self) -> bool {
        self.release_mode() == Release::Discard
    }

    fn release_mode(&self) -> Release {
        if self.exclusive && self.unfinished {
            Release::Discard
        } else {
            self.mode
        }
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
        let mode = self.release_mode();
        if let Some(release) = self.release.take() {
            release(mode);
        }
    }
}

/// Tracked like the crate's own calls, so that a command cut off here, too, discards an
/// exclusive connection.
impl ConnectionLike for PooledConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(self.command(cmd))
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(self.commands(pipeline, offset, count))
    }

    fn get_db(&self) -> i64 {
        self.conn.db()
    }
}
