//! A multiplexed connection that applies the reply timeout itself and notices when it can
//! no longer be trusted.
//!
//! The `redis` crate's own response timeout would cut blocking commands short, so it is
//! switched off and applied here: `socket_timeout`, plus the command's own timeout for
//! BLPOP and friends. An exclusive connection whose command timed out, was cancelled
//! (its future dropped) or hit an unrecoverable error is *poisoned*: its socket may still
//! carry a late reply or server-side state, so it is closed instead of being reused.
//!
//! A *shared* connection whose command timed out is probed instead, off the caller's path: if
//! it does not answer a PING within the probe timeout it is half-open (a partition, a NAT or
//! load balancer that forgot it), stalled mid-reply or stuck in an endless reply, and it is
//! retired: its socket is closed at once (which also frees what it buffered) and the next
//! command opens a fresh one. Successful commands never pay for this.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{Cmd, Pipeline, RedisError, RedisFuture, Value};

use super::in_flight::{Counted, InFlightCount};
use super::CloseReason;
use crate::command::{display_name, pipeline_reply_timeout, reply_timeout};
use crate::Error;

/// Marks a connection that must not be reused. Shared between the connection, its pool
/// entry and whoever gives it back.
///
/// A connection opened to the primary a sentinel named is also poisoned, without anyone
/// setting it, once the sentinels name another primary (the `epoch` moved on).
#[derive(Debug, Clone, Default)]
pub(crate) struct Poison {
    health: Arc<Health>,
    epoch: Option<(u64, Arc<AtomicU64>)>,
}

#[derive(Debug, Default)]
struct Health {
    state: AtomicU8,
    // At most one liveness probe at a time per connection.
    probing: AtomicBool,
    // The task that reads and writes the socket, when we spawned it: retiring the connection
    // stops it, which closes the socket and frees what it buffered.
    driver: OnceLock<tokio::task::AbortHandle>,
}

// The state is 0 while clean, else the code of why the connection must close
// (`CloseReason::code`), which the lifecycle telemetry reports when it does.
const CLEAN: u8 = 0;

impl Poison {
    /// A poison that is also set when `current` moves away from `opened_at`.
    pub(crate) fn following(current: Arc<AtomicU64>, opened_at: u64) -> Self {
        Poison {
            health: Arc::default(),
            epoch: Some((opened_at, current)),
        }
    }

    /// The socket may carry stale state (a late reply, a WATCH): close it, for `reason`.
    pub(crate) fn set(&self, reason: CloseReason) {
        let _ = self.health.state.compare_exchange(
            CLEAN,
            reason.code(),
            Ordering::AcqRel,
            Ordering::Acquire,
        );
    }

    /// The socket itself failed (reset, EOF, garbled reply) with `err`: close it; its
    /// pool-mates may have failed too.
    pub(crate) fn set_broken(&self, err: &RedisError) {
        let reason = if err.is_connection_dropped() {
            CloseReason::ServerClosed
        } else {
            CloseReason::Error
        };
        self.health.state.store(reason.code(), Ordering::Release);
    }

    /// Gives the connection's driver task to the poison, to be stopped by [`retire`](Self::retire).
    pub(crate) fn attach_driver(&self, driver: tokio::task::AbortHandle) {
        let _ = self.health.driver.set(driver);
    }

    /// The connection is dead (it did not answer a probe): broken, and its socket closed now,
    /// so commands still waiting on it fail at once and an endless reply stops growing.
    pub(crate) fn retire(&self) {
        self.health
            .state
            .store(CloseReason::HalfOpen.code(), Ordering::Release);
        if let Some(driver) = self.health.driver.get() {
            driver.abort();
        }
    }

    /// Why the connection must be closed, if it must.
    pub(crate) fn reason(&self) -> Option<CloseReason> {
        match CloseReason::from_code(self.health.state.load(Ordering::Acquire)) {
            Some(reason) => Some(reason),
            None if self.epoch_moved() => Some(CloseReason::Failover),
            None => None,
        }
    }

    fn epoch_moved(&self) -> bool {
        self.epoch
            .as_ref()
            .is_some_and(|(opened_at, current)| current.load(Ordering::Acquire) != *opened_at)
    }

    pub(crate) fn is_set(&self) -> bool {
        self.health.state.load(Ordering::Acquire) != CLEAN || self.epoch_moved()
    }

    /// Whether the socket itself failed (its pool-mates may have failed too).
    pub(crate) fn is_broken(&self) -> bool {
        matches!(
            CloseReason::from_code(self.health.state.load(Ordering::Acquire)),
            Some(CloseReason::Error | CloseReason::ServerClosed | CloseReason::HalfOpen)
        )
    }

    /// Whether this caller may start the probe (nobody else is probing).
    fn begin_probe(&self) -> bool {
        !self.health.probing.swap(true, Ordering::AcqRel)
    }

    fn end_probe(&self) {
        self.health.probing.store(false, Ordering::Release);
    }
}

/// After a timeout on a shared connection: a PING must come back within `limit`, or the
/// connection is retired. Runs in its own task; the caller already has its timeout error.
fn probe_after_timeout(conn: &MultiplexedConnection, poison: &Poison, limit: Duration) {
    if poison.is_set() || !poison.begin_probe() {
        return;
    }
    let (mut conn, poison) = (conn.clone(), poison.clone());
    tokio::spawn(async move {
        // The PING queues behind the late reply on the same socket: it answers only if the
        // connection still makes progress.
        let ping = redis::cmd("PING");
        let ping = ping.query_async::<Value>(&mut conn);
        match tokio::time::timeout(limit, ping).await {
            Ok(Ok(_)) => poison.end_probe(),
            Ok(Err(err)) if !breaks_connection(&err) => poison.end_probe(),
            _ => poison.retire(),
        }
    });
}

/// Whether the connection serves one caller (a dropped command poisons it) or many.
#[derive(Debug, Clone)]
pub(crate) enum Sharing {
    Exclusive,
    /// Counts commands in flight, for the pool's `in_use`.
    Shared(Arc<InFlightCount>),
}

pub(crate) struct GuardedConnection {
    pub(crate) conn: MultiplexedConnection,
    pub(crate) socket_timeout: Option<Duration>,
    /// How long the PING after a timeout on a shared connection may take.
    pub(crate) probe_timeout: Duration,
    pub(crate) poison: Poison,
    pub(crate) sharing: Sharing,
    /// Whether a READONLY reply (the server was demoted to a replica) poisons the connection.
    pub(crate) poison_on_readonly: bool,
}

/// Whether a reply says the server is a read-only replica now.
fn is_readonly<T: Replies>(result: &Result<T, RedisError>) -> bool {
    use redis::{ErrorKind, ServerErrorKind};
    match result {
        Err(err) => err.kind() == ErrorKind::Server(ServerErrorKind::ReadOnly),
        Ok(replies) => replies.values().iter().any(|value| {
            matches!(value, Value::ServerError(err) if err.kind() == Some(ServerErrorKind::ReadOnly))
        }),
    }
}

/// The replies of a command (one) or of a pipeline (several), for [`is_readonly`].
trait Replies {
    fn values(&self) -> &[Value];
}

impl Replies for Value {
    fn values(&self) -> &[Value] {
        std::slice::from_ref(self)
    }
}

impl Replies for Vec<Value> {
    fn values(&self) -> &[Value] {
        self
    }
}

/// Runs while a command is in flight; dropped before [`finish`](Self::finish), the command
/// was cut off (cancelled or timed out), and an exclusive connection is poisoned.
pub(crate) struct InFlight<'a> {
    // On a shared connection: the command's place in the pool's in-flight count.
    _counted: Option<Counted<'a>>,
    poison: &'a Poison,
    exclusive: bool,
    done: bool,
}

impl<'a> InFlight<'a> {
    /// Counts a command in flight on a connection of this sharing, guarded by `poison`.
    pub(crate) fn start(sharing: &'a Sharing, poison: &'a Poison) -> Self {
        let (counted, exclusive) = match sharing {
            Sharing::Shared(count) => (Some(count.enter()), false),
            Sharing::Exclusive => (None, true),
        };
        InFlight {
            _counted: counted,
            poison,
            exclusive,
            done: false,
        }
    }
}

impl InFlight<'_> {
    /// The command ended with a reply (or an error that leaves no reply pending).
    pub(crate) fn finish(mut self) {
        self.done = true;
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if self.exclusive && !self.done {
            // A reply may still be on its way: nobody else may read from this socket.
            self.poison.set(CloseReason::Timeout);
        }
    }
}

/// Whether an error means the socket can no longer be trusted, so the connection must be
/// replaced: redis-rs's "unrecoverable" errors, and any I/O failure (a reset, an EOF after a
/// server restart, a broken pipe) except our own reply timeouts.
pub(crate) fn breaks_connection(err: &RedisError) -> bool {
    err.is_unrecoverable_error()
        || err.is_connection_dropped()
        || (err.is_io_error() && !err.is_timeout())
}

/// Runs one request under the connection's guard: counts it in flight, applies the timeout,
/// and poisons the connection when it can no longer be trusted.
async fn guarded<T: Replies>(
    GuardedConnection {
        conn,
        poison,
        sharing,
        poison_on_readonly,
        probe_timeout,
        ..
    }: &mut GuardedConnection,
    timeout: Option<Duration>,
    command: impl FnOnce() -> String,
    request: impl AsyncFnOnce(&mut MultiplexedConnection) -> Result<T, RedisError>,
) -> Result<T, RedisError> {
    let in_flight = InFlight::start(sharing, poison);
    // On a timeout the reply may still arrive: on a shared connection the multiplexer
    // discards it (and a probe checks the connection is alive); an exclusive one is
    // poisoned because `in_flight` is not finished.
    let result = match within(timeout, command, request(conn)).await {
        Ok(result) => result,
        Err(timed_out) => {
            if matches!(sharing, Sharing::Shared(_)) {
                probe_after_timeout(conn, poison, *probe_timeout);
            }
            return Err(timed_out);
        }
    };
    if let Err(err) = &result {
        if breaks_connection(err) {
            poison.set_broken(err);
        }
    }
    if *poison_on_readonly && is_readonly(&result) {
        // A sentinel pool still talking to a demoted primary.
        poison.set(CloseReason::Failover);
    }
    in_flight.finish();
    result
}

/// Awaits `request` for at most `limit` (`None`: for as long as it takes). The outer error
/// is the timeout, naming the command; the inner result is the request's own.
pub(crate) async fn within<T>(
    limit: Option<Duration>,
    command: impl FnOnce() -> String,
    request: impl Future<Output = Result<T, RedisError>>,
) -> Result<Result<T, RedisError>, RedisError> {
    match limit {
        // Boxed: a timer is large (cache-aligned) and would make every command's future as
        // large, timer or not; a future that large is costly to move and to allocate.
        Some(limit) => Box::pin(tokio::time::timeout(limit, request))
            .await
            .map_err(|_| {
                Error::CommandTimeout {
                    command: command(),
                    timeout: limit,
                }
                .into()
            }),
        None => Ok(request.await),
    }
}

impl GuardedConnection {
    /// Runs one command under the guard.
    pub(crate) async fn command(&mut self, cmd: &Cmd) -> Result<Value, RedisError> {
        guarded(
            self,
            reply_timeout(self.socket_timeout, cmd),
            || display_name(cmd),
            async |conn| conn.req_packed_command(cmd).await,
        )
        .await
    }

    /// Runs a pipeline under the guard.
    pub(crate) async fn commands(
        &mut self,
        pipeline: &Pipeline,
        offset: usize,
        count: usize,
    ) -> Result<Vec<Value>, RedisError> {
        guarded(
            self,
            pipeline_reply_timeout(self.socket_timeout, pipeline),
            || "pipeline".to_string(),
            async |conn| conn.req_packed_commands(pipeline, offset, count).await,
        )
        .await
    }
}

impl ConnectionLike for GuardedConnection {
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
        self.conn.get_db()
    }
}
