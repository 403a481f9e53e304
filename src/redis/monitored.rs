//! The per-request Redis handle: every command and pipeline traced and measured.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;

use redis::aio::ConnectionLike;
use redis::{Cmd, Pipeline, RedisError, RedisFuture, RedisResult, ToRedisArgs, Value};

use super::client_cache::{ClientCache, Served};
use super::handle_state::{lost_error, nested_multi_error, unexpected_abort_error, Marks, Own};
use super::instruments::{ActiveRequest, ClientInstruments, CommandInstruments};
use super::pipeline::MonitoredPipeline;
use crate::command::{classify, command_name, display_name, refused_on_handle, CommandClass};
use crate::error::in_context;
use crate::pool::{PoolBackend, PooledConnection};
use crate::sink::names;
use crate::span::{LeafSpan, SpanContext, SpanKind, TagValue};
use crate::telemetry::{self, ErrorClass};

/// What a client's handles share: its pool, its metric handles, its name.
pub(crate) struct ClientCore {
    pub(crate) pool: Arc<dyn PoolBackend>,
    pub(crate) instruments: ClientInstruments,
    // Set when `client_cache` is on.
    pub(crate) cache: std::sync::OnceLock<Arc<ClientCache>>,
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
            cache: std::sync::OnceLock::new(),
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
pub(crate) fn split_host_port(address: &str) -> Option<(&str, u16)> {
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
/// Dropping a command's future (a timeout around it, a `select!`) is harmless at any await
/// point. On a shared connection the reply is discarded when it comes. A connection of the
/// handle's own whose command did not complete is closed, since whether the command got
/// through is unknown; if it carried a WATCH, a MULTI or a SELECT, later commands on the
/// handle are refused with an error saying so (rather than run without it) until DISCARD,
/// EXEC or UNWATCH ends that state — for a SELECT or CLIENT SETNAME, for good. An atomic
/// pipeline sent while a hand-written MULTI is open is refused rather than nested, and an
/// EXEC that a WATCH aborted is an error unless the WATCH was set through this handle (which
/// then gets `None`, as from [`transaction`](Self::transaction)'s pipeline).
///
/// Errors from the connection (I/O, a reply cut short, timeouts, no free connection) name
/// the command and the server's address; a reply cut short is an I/O error, so
/// [`Error::is_connection_error`](crate::Error::is_connection_error) holds for it. Redis's
/// own error replies are passed on unchanged.
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
    own: Own,
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

    /// A Pub/Sub [`Subscriber`](crate::Subscriber) of this handle's client, with a
    /// connection of its own (counted against `max_connections`); its (un)subscribe
    /// commands are spans under this handle's span. SUBSCRIBE and friends sent on the
    /// handle itself are refused: their messages would be lost.
    pub async fn pubsub(&self) -> crate::Result<super::pubsub::Subscriber> {
        super::pubsub::Subscriber::open(self.core.clone(), self.name.clone(), self.span.clone())
            .await
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
        body: impl AsyncFnMut(&mut Self, &mut Pipeline) -> RedisResult<Option<T>>,
    ) -> RedisResult<T> {
        // On a handle of its own, holding this one's connections until it is done: if this
        // future is dropped midway, that handle is dropped with it and closes the connection
        // holding the WATCH, so no stale WATCH can ever reach a later command on this one.
        let mut tx = self.lend();
        let result = tx.run_transaction(keys, body).await;
        // Whatever happened (a WATCH that found no connection, a failed UNWATCH), its WATCH
        // ends with it.
        tx.conns.own.settle();
        tx.conns.own.forget_watch();
        self.conns = std::mem::take(&mut tx.conns);
        result
    }

    async fn run_transaction<K: ToRedisArgs, T>(
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
                    self.unwatch_if_watching().await?;
                    return Ok(value);
                }
                Ok(None) => continue,
                Err(err) => {
                    // Best effort: the connection is discarded anyway if this fails.
                    let _ = self.unwatch_if_watching().await;
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

    /// A handle for the same request that takes over this one's connections. While they
    /// are lent, this handle's own connection counts as lost: should the borrower be
    /// dropped, the state that connection carried (a SELECT, say) is gone with it.
    fn lend(&mut self) -> Self {
        self.conns.own.settle();
        let conns = std::mem::take(&mut self.conns);
        self.conns.own = Own::after_loss(conns.own.marks());
        MonitoredRedisConnection {
            core: self.core.clone(),
            name: self.name.clone(),
            span: self.span.clone(),
            conns,
            next_pipeline: None,
        }
    }

    async fn unwatch_if_watching(&mut self) -> RedisResult<()> {
        if self.conns.own.marks().watching {
            redis::cmd("UNWATCH").exec_async(&mut *self).await?;
        }
        Ok(())
    }

    /// The server's address, without credentials.
    pub(crate) fn address(&self) -> Arc<str> {
        self.core.pool.address()
    }

    /// Names the next pipeline run on this handle (used by [`MonitoredPipeline`]).
    pub(crate) fn name_next_pipeline(&mut self, span_name: Arc<str>) {
        self.next_pipeline = Some(span_name);
    }
}

/// The child span of a command, if anyone observes spans.
pub(super) fn command_span(
    core: &ClientCore,
    name: &Arc<str>,
    parent: &SpanContext,
    instruments: &CommandInstruments,
    cmd: &Cmd,
) -> Option<LeafSpan> {
    if !parent.is_observed() {
        return None;
    }
    let client_name = core.instruments.client_name();
    let operation = &instruments.operation_tag;
    // Handles are usually named after their client, and then share its name.
    let mut span = if Arc::ptr_eq(name, client_name) || name == client_name {
        core.start_span(parent, instruments.span_name(name), operation, None)
    } else {
        let span_name = format!("{name}.{}", instruments.upper);
        core.start_span(parent, &span_name, operation, None)
    };
    if let Some(procedure) = telemetry::stored_procedure_name(cmd) {
        span.set_tags(&[(
            names::OTEL_DB_STORED_PROCEDURE_NAME,
            &TagValue::from(procedure),
        )]);
    }
    if core.instruments.telemetry().query_text {
        let text = TagValue::from(telemetry::query_text(cmd));
        span.set_tags(&[(names::OTEL_DB_QUERY_TEXT, &text)]);
    }
    Some(span)
}

/// Tags a failed command's span with its `error.type` and `db.response.status_code`.
fn tag_failure(span: &mut LeafSpan, class: ErrorClass) {
    let error_type = TagValue::from(class.error_type());
    match class.status_code() {
        Some(code) => span.set_tags(&[
            (names::OTEL_ERROR_TYPE, &error_type),
            (names::OTEL_DB_RESPONSE_STATUS_CODE, &TagValue::from(code)),
        ]),
        None => span.set_tags(&[(names::OTEL_ERROR_TYPE, &error_type)]),
    }
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
        if self.shared.is_none() {
            self.shared = Some(pool.shared().await?);
        }
        // Used where it lies: moving it out and back in copied it twice per command.
        match &mut self.shared {
            Some(conn) => Ok(conn),
            None => unreachable!("the shared connection was set just above"),
        }
    }

    /// Runs one command on the connection its class needs.
    async fn route_command(
        &mut self,
        pool: &dyn PoolBackend,
        cmd: &Cmd,
        class: CommandClass,
    ) -> RedisResult<Value> {
        // A command cut off earlier left its connection unfinished: close it first.
        self.own.settle();
        if class == CommandClass::Subscribes {
            // Whatever the handle's state: never on a connection that answers commands.
            return Err(refused_on_handle(cmd));
        }
        let result = match &mut self.own {
            Own::Pinned { conn, marks } => run_pinned(conn, marks, class, cmd).await,
            Own::Lost(lost) => {
                let lost = *lost;
                return refuse_while_lost(&mut self.own, lost, class, cmd);
            }
            Own::Free => match class {
                CommandClass::Ordinary | CommandClass::EndsState => {
                    let conn = self.shared_connection(pool).await?;
                    let result = conn.command(cmd).await;
                    self.forget_broken_shared(&result);
                    return result;
                }
                CommandClass::Blocking { .. } => {
                    // A connection of its own for just this command, closed if the command
                    // does not complete. Boxed: held across the wait, the connection would
                    // make every command's future larger.
                    return Box::pin(async {
                        let mut conn = exclusive(pool).await?;
                        conn.command(cmd).await
                    })
                    .await;
                }
                CommandClass::Subscribes => return Err(refused_on_handle(cmd)),
                CommandClass::BeginsState | CommandClass::ChangesConnection => {
                    // Until the command is through, what it begins counts as lost: if this
                    // future is dropped, the connection goes with it (closed, as unfinished).
                    self.own = Own::Lost(Marks::default().after(cmd));
                    let mut conn = exclusive(pool).await?;
                    let mut marks = Marks::default();
                    let result = run_pinned(&mut conn, &mut marks, class, cmd).await;
                    self.own = Own::Pinned { conn, marks };
                    result
                }
            },
        };
        self.own.settle();
        result
    }

    async fn route_pipeline(
        &mut self,
        pool: &dyn PoolBackend,
        pipeline: &Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        if let Some(cmd) = pipeline
            .cmd_iter()
            .find(|cmd| classify(cmd) == CommandClass::Subscribes)
        {
            return Err(refused_on_handle(cmd));
        }
        self.own.settle();
        let atomic = pipeline.is_transaction();
        let before = self.own.marks();
        let after = before.after_pipeline(pipeline);
        let result = match &mut self.own {
            Own::Pinned { .. } if atomic && before.in_multi => return Err(nested_multi_error()),
            Own::Pinned { conn, marks } => {
                *marks = after;
                conn.commands(pipeline, offset, count).await
            }
            Own::Lost(lost) => {
                let lost = *lost;
                // An atomic pipeline in a MULTI would not have ended it, only nested.
                if !(atomic && lost.in_multi) {
                    self.own = Own::after_loss(after);
                }
                return Err(lost_error(lost));
            }
            Own::Free if after.any() => {
                // It leaves state behind (WATCH, SELECT, an unbalanced MULTI): a connection
                // of the handle's own from now on, counted as lost until the pipeline is
                // through. MULTI…EXEC balanced inside one pipeline is written to the socket
                // in one piece, so it can share the multiplexed connection.
                self.own = Own::Lost(after);
                let mut conn = exclusive(pool).await?;
                let result = conn.commands(pipeline, offset, count).await;
                self.own = Own::Pinned { conn, marks: after };
                result
            }
            Own::Free
                if pipeline
                    .cmd_iter()
                    .any(|cmd| matches!(classify(cmd), CommandClass::Blocking { .. })) =>
            {
                let mut conn = exclusive(pool).await?;
                conn.commands(pipeline, offset, count).await
            }
            Own::Free => {
                let conn = self.shared_connection(pool).await?;
                let result = conn.commands(pipeline, offset, count).await;
                self.forget_broken_shared(&result);
                result
            }
        };
        self.own.settle();
        refuse_unexpected_abort(atomic, before, result)
    }

    /// Runs one command of a client with a cache: reads it can answer are answered there
    /// (or fetched so that it can), the keys of other commands are dropped from it.
    async fn route_cached(
        &mut self,
        cache: &ClientCache,
        pool: &dyn PoolBackend,
        cmd: &Cmd,
        class: CommandClass,
        measurement: &mut Measurement<'_>,
    ) -> RedisResult<Value> {
        if ClientCache::handles(cmd) {
            // Inside WATCH/MULTI a read belongs to the transaction.
            if matches!(self.own, Own::Free) {
                let served = cache.read(cmd).await;
                measurement.tag_cache_hit(matches!(served, Served::Hit(_)));
                match served {
                    Served::Hit(value) => return Ok(value),
                    Served::Fetched(result) => return result,
                    Served::Pass => {
                        // Read elsewhere, the reply may be newer than what the cache holds
                        // (its invalidation still on the way): drop those keys.
                        let result = self.route_command(pool, cmd, class).await;
                        cache.written(cmd);
                        return result;
                    }
                }
            }
            return self.route_command(pool, cmd, class).await;
        }
        cache.written(cmd);
        let result = self.route_command(pool, cmd, class).await;
        cache.written(cmd);
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
}

/// Runs one command on the handle's own connection. Before it is sent, `marks` is set to
/// what the connection carries if it gets through: a future dropped midway leaves `marks`
/// saying what the connection may carry.
async fn run_pinned(
    conn: &mut PooledConnection,
    marks: &mut Marks,
    class: CommandClass,
    cmd: &Cmd,
) -> RedisResult<Value> {
    let before = *marks;
    *marks = before.after(cmd);
    let result = conn.command(cmd).await;
    // Redis refused it (WATCH inside MULTI, SELECT of a database that does not exist…):
    // nothing began.
    let refused = match &result {
        Ok(value) => matches!(value, Value::ServerError(_)),
        Err(_) => !conn.is_unfinished(),
    };
    if refused
        && matches!(
            class,
            CommandClass::BeginsState | CommandClass::ChangesConnection
        )
    {
        *marks = before;
    }
    result
}

/// The reply to a command while the handle's state is lost: DISCARD and UNWATCH asked for
/// what closing the connection did, and end the lost state; EXEC's transaction, and any
/// other command, cannot run as written.
fn refuse_while_lost(
    own: &mut Own,
    lost: Marks,
    class: CommandClass,
    cmd: &Cmd,
) -> RedisResult<Value> {
    let after = lost.after(cmd);
    *own = Own::after_loss(after);
    let exec = command_name(cmd).eq_ignore_ascii_case(b"EXEC");
    if class == CommandClass::EndsState && after != lost && !exec {
        Ok(Value::Okay)
    } else {
        Err(lost_error(lost))
    }
}

/// A connection for this caller alone, closed when given back after a command on it did
/// not complete, whatever the backend.
async fn exclusive(pool: &dyn PoolBackend) -> RedisResult<PooledConnection> {
    Ok(pool.exclusive().await?.held_exclusively())
}

/// An atomic pipeline's EXEC returns nil when a WATCH aborted it. That is the expected
/// outcome when the caller set the WATCH through this handle (`transaction` retries on it);
/// otherwise it would read as success to `query_async::<()>` although nothing was written.
fn refuse_unexpected_abort(
    atomic: bool,
    before: Marks,
    result: RedisResult<Vec<Value>>,
) -> RedisResult<Vec<Value>> {
    match result {
        Ok(replies) if atomic && !before.watching && matches!(replies.last(), Some(Value::Nil)) => {
            Err(unexpected_abort_error())
        }
        result => result,
    }
}

/// The name a pipeline's errors give it: `pipeline (GET, SET…)`.
fn pipeline_name(pipeline: &Pipeline) -> String {
    const SHOWN: usize = 4;
    let mut name = String::from("pipeline (");
    for (i, cmd) in pipeline.cmd_iter().enumerate() {
        if i == SHOWN {
            name.push('…');
            break;
        }
        if i > 0 {
            name.push_str(", ");
        }
        name.push_str(&display_name(cmd));
    }
    name.push(')');
    name
}

impl Drop for MonitoredRedisConnection {
    fn drop(&mut self) {
        // What it carries (WATCH, MULTI, SELECT…) must not reach the next user.
        if let Own::Pinned { conn, .. } = &mut self.conns.own {
            conn.discard();
        }
    }
}

/// A reply that may carry Redis error replies inside it: the `redis` crate hands error
/// replies back as `Value::ServerError` and only turns them into `Err` when converting.
pub(super) trait Reply {
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
pub(super) struct Measurement<'a> {
    instruments: &'a CommandInstruments,
    span: Option<LeafSpan>,
    started: Instant,
    // Taken when the command ends: still here when dropped, the command was cancelled.
    active: Option<ActiveRequest<'a>>,
}

impl<'a> Measurement<'a> {
    pub(super) fn start(instruments: &'a CommandInstruments, span: Option<LeafSpan>) -> Self {
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

    /// Tags the span with whether the client-side cache answered.
    fn tag_cache_hit(&mut self, hit: bool) {
        if let Some(span) = self.span.as_mut() {
            span.set_tags(&[(
                crate::sink::names::TAG_CLIENT_CACHE_HIT,
                &TagValue::from(hit),
            )]);
        }
    }

    /// Records how the command ended.
    pub(super) fn finish<T: Reply>(mut self, result: &RedisResult<T>) {
        let ended = Instant::now();
        let server_error = result.as_ref().ok().and_then(Reply::server_error);
        let failure = match (result, server_error) {
            (Err(err), _) => Some(ErrorClass::of_redis(err)),
            (Ok(_), Some(err)) => Some(ErrorClass::of_server_error(err)),
            (Ok(_), None) => None,
        };
        self.instruments
            .record(failure, ended.saturating_duration_since(self.started));
        self.active = None;
        if let Some(mut span) = self.span.take() {
            if let Some(class) = failure {
                tag_failure(&mut span, class);
            }
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
            let cancelled = ErrorClass::cancelled();
            self.instruments
                .record(Some(cancelled), self.started.elapsed());
            if let Some(span) = self.span.as_mut() {
                tag_failure(span, cancelled);
            }
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
            let span = command_span(core, name, span, &instruments, cmd);
            let class = instruments.class(cmd);
            let mut measurement = Measurement::start(&instruments, span);
            let result = match core.cache.get() {
                None => conns.route_command(core.pool.as_ref(), cmd, class).await,
                Some(cache) => {
                    let pool = core.pool.as_ref();
                    Box::pin(conns.route_cached(cache, pool, cmd, class, &mut measurement)).await
                }
            }
            .map_err(|err| in_context(err, || display_name(cmd), &core.pool.address()));
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
                let mut span =
                    core.start_span(parent, &span_name, &PIPELINE_OPERATION, Some(&batch_size));
                if core.instruments.telemetry().query_text {
                    let text = TagValue::from(telemetry::pipeline_query_text(pipeline));
                    span.set_tags(&[(names::OTEL_DB_QUERY_TEXT, &text)]);
                }
                span
            });
            let measurement = Measurement::start(instruments, span);
            let cache = core.cache.get();
            // Writes through this client drop the keys they name from its cache.
            if let Some(cache) = cache {
                cache.pipeline_written(pipeline);
            }
            let result = conns
                .route_pipeline(core.pool.as_ref(), pipeline, offset, count)
                .await
                .map_err(|err| in_context(err, || pipeline_name(pipeline), &core.pool.address()));
            if let Some(cache) = cache {
                cache.pipeline_written(pipeline);
            }
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
            .field("pinned", &matches!(self.conns.own, Own::Pinned { .. }))
            .field("lost", &matches!(self.conns.own, Own::Lost(_)))
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
