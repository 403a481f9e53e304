//! The per-request Redis handle: every command and pipeline traced and measured.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;

use redis::aio::ConnectionLike;
use redis::{Cmd, Pipeline, RedisError, RedisFuture, RedisResult, ToRedisArgs, Value};

use super::instruments::{ActiveRequest, ClientInstruments, CommandInstruments};
use super::pipeline::MonitoredPipeline;
use crate::command::{classify, command_name, CommandClass};
use crate::pool::{PoolBackend, PooledConnection};
use crate::sink::names;
use crate::span::{LeafSpan, SpanContext, SpanKind, TagValue};

/// What a client's handles share: its pool, its metric handles, its name.
pub(crate) struct ClientCore {
    pub(crate) pool: Arc<dyn PoolBackend>,
    pub(crate) instruments: ClientInstruments,
    // Span tags built once and lent to every span.
    namespace_tag: TagValue,
    // The server tags, rebuilt only when the pool's address changes (a sentinel pool's
    // address follows the current primary).
    address_tags: ArcSwap<AddressTags>,
}

/// `server.address` and `server.port` for one address.
struct AddressTags {
    address: Arc<str>,
    host: TagValue,
    // `None` for socket paths and `memory://` addresses, which have no port.
    port: Option<TagValue>,
}

impl AddressTags {
    fn new(address: Arc<str>) -> Self {
        let (host, port) = match split_host_port(&address) {
            Some((host, port)) => (
                TagValue::from(host.to_string()),
                Some(TagValue::from(i64::from(port))),
            ),
            None => (TagValue::from(address.to_string()), None),
        };
        AddressTags {
            address,
            host,
            port,
        }
    }
}

impl ClientCore {
    pub(crate) fn new(pool: Arc<dyn PoolBackend>, instruments: ClientInstruments) -> Self {
        ClientCore {
            namespace_tag: TagValue::from(pool.database().to_string()),
            address_tags: ArcSwap::from_pointee(AddressTags::new(pool.address())),
            pool,
            instruments,
        }
    }

    /// Starts the span of a command or pipeline, with the tags every such span carries
    /// (OpenTelemetry database conventions; the address never carries credentials) and, for
    /// a pipeline, its size.
    fn start_span(
        &self,
        parent: &SpanContext,
        name: &str,
        operation: &TagValue,
        batch_size: Option<&TagValue>,
    ) -> LeafSpan {
        let address = self.pool.address();
        let mut current = self.address_tags.load();
        if !Arc::ptr_eq(&current.address, &address) && *current.address != *address {
            self.address_tags.store(Arc::new(AddressTags::new(address)));
            current = self.address_tags.load();
        }
        let mut tags = [
            ("db.system.name", &DB_SYSTEM),
            ("db.system", &DB_SYSTEM),
            ("db.operation.name", operation),
            ("db.namespace", &self.namespace_tag),
            ("server.address", &current.host),
            // Placeholders for the optional tags below.
            ("", &DB_SYSTEM),
            ("", &DB_SYSTEM),
        ];
        let mut len = 5;
        for optional in [
            current.port.as_ref().map(|port| ("server.port", port)),
            batch_size.map(|size| ("db.operation.batch.size", size)),
        ]
        .into_iter()
        .flatten()
        {
            tags[len] = optional;
            len += 1;
        }
        parent.leaf_child(name, SpanKind::Client, &tags[..len])
    }
}

/// `host:port` or `[v6 host]:port` split in two; `None` for socket paths and `memory://`.
fn split_host_port(address: &str) -> Option<(&str, u16)> {
    if let Some(rest) = address.strip_prefix('[') {
        let (host, port) = rest.split_once("]:")?;
        return Some((host, port.parse().ok()?));
    }
    let (host, port) = address.rsplit_once(':')?;
    if host.is_empty() || host.contains(':') || host.contains('/') {
        return None;
    }
    Some((host, port.parse().ok()?))
}

const DB_SYSTEM: TagValue = TagValue::Str(Cow::Borrowed("redis"));
const PIPELINE_OPERATION: TagValue = TagValue::Str(Cow::Borrowed("PIPELINE"));

/// How many times [`MonitoredRedisConnection::transaction`] retries when a watched key
/// changed under it, before giving up.
pub const TRANSACTION_MAX_ATTEMPTS: usize = 100;

/// A Redis handle for one request (or one piece of work).
///
/// It implements [`redis::aio::ConnectionLike`], so every [`redis::AsyncCommands`] method
/// works on it. Each command makes a child span `<name>.<COMMAND>` of the request's span and
/// updates `redis_client_requests_total`, `redis_client_latency_seconds` and
/// `redis_client_active_requests`.
///
/// Making a handle opens no connection. Ordinary commands share the client's multiplexed
/// connection; blocking commands (BLPOP…) take a connection of their own for their duration;
/// WATCH, MULTI and state changes (SELECT, CLIENT SETNAME…) pin a connection to this handle
/// until EXEC/DISCARD/UNWATCH (or, for state changes, until the handle is dropped, when that
/// connection is closed rather than reused).
///
/// ```
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use baseplate_redis::{pool::InMemoryBackend, RedisContextFactory};
/// use redis::AsyncCommands;
///
/// let factory = RedisContextFactory::new(std::sync::Arc::new(InMemoryBackend::new()));
/// let mut redis = factory.connection();
/// let _: () = redis.set("greeting", "hello").await?;
/// let greeting: String = redis.get("greeting").await?;
/// assert_eq!(greeting, "hello");
/// # Ok(()) }
/// # tokio::runtime::Runtime::new().unwrap().block_on(run()).unwrap();
/// ```
pub struct MonitoredRedisConnection {
    core: Arc<ClientCore>,
    name: Arc<str>,
    span: SpanContext,
    conns: Connections,
    next_pipeline: Option<Arc<str>>,
}

/// The connections a handle holds, apart from its client core so that a command can borrow
/// the core's instruments while it routes.
#[derive(Default)]
struct Connections {
    shared: Option<PooledConnection>,
    pinned: Option<Pinned>,
}

/// An exclusive connection held by this handle, and why.
struct Pinned {
    conn: PooledConnection,
    watching: bool,
    in_multi: bool,
    // SELECT, CLIENT SETNAME…: the connection differs from its pool-mates for good.
    changed: bool,
}

impl Pinned {
    fn needed(&self) -> bool {
        self.watching || self.in_multi || self.changed
    }
}

impl MonitoredRedisConnection {
    pub(crate) fn new(core: Arc<ClientCore>, name: Arc<str>, span: SpanContext) -> Self {
        MonitoredRedisConnection {
            core,
            name,
            span,
            conns: Connections::default(),
            next_pipeline: None,
        }
    }

    /// The context name spans are named after (`foo` in `foo.GET`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A named pipeline: one span `<name>.pipeline_<pipeline name>`, metrics with
    /// `redis_command="pipeline"`. As in baseplate.py, a standalone client's pipeline is
    /// atomic (MULTI/EXEC) unless [`non_atomic`](MonitoredPipeline::non_atomic) is called,
    /// and a cluster client's is a plain pipeline unless `.atomic()` is called.
    pub fn pipeline(&self, name: &str) -> MonitoredPipeline {
        let atomic = self.core.instruments.redis_type() != names::TYPE_CLUSTER;
        MonitoredPipeline::new(Arc::from(format!("{}.pipeline_{name}", self.name)), atomic)
    }

    /// Runs `body` in a WATCH transaction on `keys`: WATCH, then `body` queues commands on
    /// the (atomic) pipeline it is given and runs it on this handle; when EXEC finds a
    /// watched key changed, `body` returns `Ok(None)` (as `query_async` of an atomic pipeline
    /// gives `None`) and the whole transaction is retried, up to
    /// [`TRANSACTION_MAX_ATTEMPTS`] times.
    ///
    /// ```
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// # use baseplate_redis::{pool::InMemoryBackend, RedisContextFactory};
    /// # let factory = RedisContextFactory::new(std::sync::Arc::new(InMemoryBackend::new()));
    /// # let mut redis = factory.connection();
    /// use redis::AsyncCommands;
    ///
    /// let _: () = redis.set("balance", 10).await?;
    /// let (new_balance,): (i64,) = redis
    ///     .transaction(&["balance"], async |conn, pipe| {
    ///         let balance: i64 = conn.get("balance").await?;
    ///         pipe.set("balance", balance - 3).ignore().get("balance");
    ///         pipe.query_async(conn).await
    ///     })
    ///     .await?;
    /// assert_eq!(new_balance, 7);
    /// # Ok(()) }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(run()).unwrap();
    /// ```
    pub async fn transaction<K: ToRedisArgs, T>(
        &mut self,
        keys: K,
        mut body: impl AsyncFnMut(&mut Self, &mut Pipeline) -> RedisResult<Option<T>>,
    ) -> RedisResult<T> {
        for _ in 0..TRANSACTION_MAX_ATTEMPTS {
            redis::cmd("WATCH")
                .arg(&keys)
                .exec_async(&mut *self)
                .await?;
            let mut pipe = redis::pipe();
            pipe.atomic();
            self.next_pipeline = None;
            match body(self, &mut pipe).await {
                Ok(Some(value)) => {
                    self.unwatch_if_pinned().await?;
                    return Ok(value);
                }
                Ok(None) => continue,
                Err(err) => {
                    // Best effort: the connection is discarded anyway if this fails.
                    let _ = self.unwatch_if_pinned().await;
                    return Err(err);
                }
            }
        }
        Err(RedisError::from((
            redis::ErrorKind::Client,
            "transaction aborted",
            format!("watched keys kept changing for {TRANSACTION_MAX_ATTEMPTS} attempts"),
        )))
    }

    async fn unwatch_if_pinned(&mut self) -> RedisResult<()> {
        if self.conns.pinned.as_ref().is_some_and(|p| p.watching) {
            redis::cmd("UNWATCH").exec_async(&mut *self).await?;
        }
        Ok(())
    }

    /// Names the next pipeline run on this handle (used by [`MonitoredPipeline`]).
    pub(crate) fn name_next_pipeline(&mut self, span_name: Arc<str>) {
        self.next_pipeline = Some(span_name);
    }
}

/// The child span of a command, if anyone observes spans.
fn command_span(
    core: &ClientCore,
    name: &Arc<str>,
    parent: &SpanContext,
    instruments: &CommandInstruments,
) -> Option<LeafSpan> {
    if !parent.is_observed() {
        return None;
    }
    let client_name = core.instruments.client_name();
    let operation = &instruments.operation_tag;
    // Handles are usually named after their client, and then share its name.
    let span = if Arc::ptr_eq(name, client_name) || name == client_name {
        core.start_span(parent, instruments.span_name(name), operation, None)
    } else {
        let span_name = format!("{name}.{}", instruments.upper);
        core.start_span(parent, &span_name, operation, None)
    };
    Some(span)
}

impl Connections {
    async fn shared_connection(
        &mut self,
        pool: &dyn PoolBackend,
    ) -> RedisResult<&mut PooledConnection> {
        if self.shared.as_ref().is_some_and(PooledConnection::is_stale) {
            // Poisoned through another handle, or the sentinels named a new primary.
            if let Some(mut conn) = self.shared.take() {
                conn.discard();
            }
        }
        let conn = match self.shared.take() {
            Some(conn) => conn,
            None => pool.shared().await?,
        };
        Ok(self.shared.insert(conn))
    }

    async fn pin(&mut self, pool: &dyn PoolBackend) -> RedisResult<&mut Pinned> {
        let pinned = match self.pinned.take() {
            Some(pinned) => pinned,
            None => Pinned {
                conn: pool.exclusive().await?,
                watching: false,
                in_multi: false,
                changed: false,
            },
        };
        Ok(self.pinned.insert(pinned))
    }

    /// Runs one command on the connection its class needs.
    async fn route_command(&mut self, pool: &dyn PoolBackend, cmd: &Cmd) -> RedisResult<Value> {
        let class = classify(cmd);
        if self.pinned.is_none() {
            match class {
                CommandClass::Ordinary | CommandClass::EndsState => {
                    let conn = self.shared_connection(pool).await?;
                    let result = conn.command(cmd).await;
                    self.forget_broken_shared(&result);
                    return result;
                }
                CommandClass::Blocking { .. } => {
                    // A connection of its own for just this command; the guard closes it if
                    // the command is cancelled or times out. Boxed: held across the wait, the
                    // connection would make every command's future larger.
                    return Box::pin(async {
                        let mut conn = pool.exclusive().await?;
                        conn.command(cmd).await
                    })
                    .await;
                }
                CommandClass::BeginsState | CommandClass::ChangesConnection => {}
            }
        }
        let pinned = self.pin(pool).await?;
        let result = pinned.conn.command(cmd).await;
        let succeeded = result.is_ok();
        let upper = command_name(cmd).to_ascii_uppercase();
        match (class, upper.as_slice()) {
            (CommandClass::BeginsState, b"WATCH") if succeeded => pinned.watching = true,
            (CommandClass::BeginsState, b"MULTI") if succeeded => pinned.in_multi = true,
            (CommandClass::EndsState, b"UNWATCH") if succeeded && !pinned.in_multi => {
                pinned.watching = false
            }
            (CommandClass::EndsState, b"EXEC" | b"DISCARD") => {
                pinned.watching = false;
                pinned.in_multi = false;
            }
            (CommandClass::ChangesConnection, _) => pinned.changed = true,
            _ => {}
        }
        self.release_pin_if_done();
        result
    }

    async fn route_pipeline(
        &mut self,
        pool: &dyn PoolBackend,
        pipeline: &Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        let mut blocking = false;
        let mut stateful = false;
        for cmd in pipeline.cmd_iter() {
            match classify(cmd) {
                CommandClass::Blocking { .. } => blocking = true,
                CommandClass::ChangesConnection => stateful = true,
                CommandClass::BeginsState if command_name(cmd).eq_ignore_ascii_case(b"WATCH") => {
                    stateful = true
                }
                // MULTI…EXEC inside one pipeline is written to the socket in one piece, so an
                // atomic pipeline can share the multiplexed connection.
                _ => {}
            }
        }
        if let Some(pinned) = self.pinned.as_mut() {
            let result = pinned.conn.commands(pipeline, offset, count).await;
            if stateful {
                pinned.changed = true;
            }
            return result;
        }
        if stateful {
            let pinned = self.pin(pool).await?;
            pinned.changed = true;
            return pinned.conn.commands(pipeline, offset, count).await;
        }
        if blocking {
            let mut conn = pool.exclusive().await?;
            return conn.commands(pipeline, offset, count).await;
        }
        let conn = self.shared_connection(pool).await?;
        let result = conn.commands(pipeline, offset, count).await;
        self.forget_broken_shared(&result);
        result
    }

    /// A shared connection whose socket failed is given back for closing; the next command
    /// gets a fresh one.
    fn forget_broken_shared<T>(&mut self, result: &RedisResult<T>) {
        if let Err(err) = result {
            if crate::pool::breaks_connection(err) {
                if let Some(mut conn) = self.shared.take() {
                    conn.discard();
                }
            }
        }
    }

    fn release_pin_if_done(&mut self) {
        if self.pinned.as_ref().is_some_and(|p| !p.needed()) {
            // Clean: back to the pool for reuse.
            self.pinned = None;
        }
    }
}

impl Drop for MonitoredRedisConnection {
    fn drop(&mut self) {
        if let Some(mut pinned) = self.conns.pinned.take() {
            if pinned.needed() {
                pinned.conn.discard();
            }
        }
    }
}

/// A reply that may carry Redis error replies inside it: the `redis` crate hands error
/// replies back as `Value::ServerError` and only turns them into `Err` when converting.
trait Reply {
    fn server_error(&self) -> Option<&redis::ServerError>;
}

impl Reply for Value {
    fn server_error(&self) -> Option<&redis::ServerError> {
        match self {
            Value::ServerError(err) => Some(err),
            // EXEC's reply holds the replies of the transaction's commands.
            Value::Array(items) => items.iter().find_map(Reply::server_error),
            _ => None,
        }
    }
}

impl Reply for Vec<Value> {
    fn server_error(&self) -> Option<&redis::ServerError> {
        self.iter().find_map(Reply::server_error)
    }
}

/// Measures one command or pipeline: active gauge, latency, count, span. A reply holding an
/// error reply counts as a failure, as the caller will see it as one.
///
/// A guard rather than an `async fn` wrapping the command's future: the caller awaits that
/// future in its own state, so the boxed future of every command stays small (an `async fn`
/// taking a future keeps room for it twice).
struct Measurement<'a> {
    instruments: &'a CommandInstruments,
    span: Option<LeafSpan>,
    started: Instant,
    // Taken when the command ends: still here when dropped, the command was cancelled.
    active: Option<ActiveRequest<'a>>,
}

impl<'a> Measurement<'a> {
    fn start(instruments: &'a CommandInstruments, span: Option<LeafSpan>) -> Self {
        let active = instruments.start();
        // One clock reading serves the span and the latency metric, at each end.
        let started = span.as_ref().map_or_else(Instant::now, LeafSpan::started);
        Measurement {
            instruments,
            span,
            started,
            active: Some(active),
        }
    }

    /// Records how the command ended.
    fn finish<T: Reply>(mut self, result: &RedisResult<T>) {
        let ended = Instant::now();
        let server_error = result.as_ref().ok().and_then(Reply::server_error);
        self.instruments.record(
            result.is_ok() && server_error.is_none(),
            ended.saturating_duration_since(self.started),
        );
        self.active = None;
        if let Some(span) = self.span.take() {
            match (result, server_error) {
                (Err(err), _) => span.finish_at(ended, Some(err)),
                (Ok(_), Some(err)) => span.finish_at(ended, Some(&RedisError::from(err.clone()))),
                (Ok(_), None) => span.finish_at(ended, None),
            }
        }
    }
}

impl Drop for Measurement<'_> {
    /// The command was cancelled (its future dropped mid-flight): a failure. The span ends
    /// as cancelled when dropped.
    fn drop(&mut self) {
        if self.active.is_some() {
            self.instruments.record(false, self.started.elapsed());
        }
    }
}

impl ConnectionLike for MonitoredRedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let MonitoredRedisConnection {
                core,
                name,
                span,
                conns,
                ..
            } = self;
            let core: &ClientCore = core;
            let instruments = core.instruments.command(command_name(cmd));
            let span = command_span(core, name, span, &instruments);
            let measurement = Measurement::start(&instruments, span);
            let result = conns.route_command(core.pool.as_ref(), cmd).await;
            measurement.finish(&result);
            result
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let MonitoredRedisConnection {
                core,
                name,
                span: parent,
                conns,
                next_pipeline,
            } = self;
            let core: &ClientCore = core;
            let instruments = core.instruments.pipeline();
            let span_name = next_pipeline.take();
            let span = parent.is_observed().then(|| {
                let span_name: Cow<'_, str> = match &span_name {
                    Some(span_name) => Cow::Borrowed(span_name),
                    None => Cow::Owned(format!("{name}.pipeline")),
                };
                let batch_size = TagValue::Int(pipeline.len() as i64);
                core.start_span(parent, &span_name, &PIPELINE_OPERATION, Some(&batch_size))
            });
            let measurement = Measurement::start(instruments, span);
            let result = conns
                .route_pipeline(core.pool.as_ref(), pipeline, offset, count)
                .await;
            measurement.finish(&result);
            result
        })
    }

    fn get_db(&self) -> i64 {
        self.core.pool.database()
    }
}

impl fmt::Debug for MonitoredRedisConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MonitoredRedisConnection")
            .field("name", &self.name)
            .field("address", &self.core.pool.address())
            .field("db", &self.core.pool.database())
            .field("span", &self.span)
            .field("pinned", &self.conns.pinned.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::split_host_port;

    #[test]
    fn addresses_split_into_host_and_port() {
        assert_eq!(split_host_port("127.0.0.1:6379"), Some(("127.0.0.1", 6379)));
        assert_eq!(
            split_host_port("cache.internal:7000"),
            Some(("cache.internal", 7000))
        );
        assert_eq!(split_host_port("[::1]:6380"), Some(("::1", 6380)));
        assert_eq!(split_host_port("/run/redis.sock"), None);
        assert_eq!(split_host_port("memory://quickstart"), None);
        assert_eq!(split_host_port("host:notaport"), None);
    }
}
