//! The Redis Cluster backend: [`ClusterBackend`], on the `redis` crate's async cluster client.
//!
//! A *cluster connection* holds one multiplexed socket to every node of the cluster and routes
//! each command to the node that owns its key's slot (following `MOVED`/`ASK` redirections,
//! refreshing the slot map and reconnecting after failovers). One cluster connection, opened
//! by the first command, is shared by every caller for ordinary commands. Blocking commands
//! (BLPOP…) and pinned ones get a cluster connection of their own, opened on demand, kept
//! for reuse when given back clean, and bounded by `max_connections`.

use std::collections::HashSet;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::ConnectionLike;
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::cluster_read_routing::RandomReplicaStrategy;
use redis::cluster_routing::SingleNodeRoutingInfo;
use redis::{
    Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, RedisResult, ServerErrorKind, Value,
};
use tokio::sync::{OnceCell, OwnedSemaphorePermit, Semaphore};

use super::guarded::{within, InFlight, Poison, Sharing};
use super::hot_keys::HotKeyTracker;
use super::in_flight::InFlightCount;
use super::DEFAULT_POOL_TIMEOUT;
use super::{CloseReason, ConnectionLifecycle, Redirect};
use super::{PoolBackend, PoolState, PooledConnection, Release, DEFAULT_MAX_CONNECTIONS};
use crate::command::{display_name, pipeline_reply_timeout, reply_timeout};
use crate::config::{RedisUrl, UrlKind};
use crate::telemetry::ErrorClass;
use crate::{Error, Result};

/// How long connecting to one node may take when `socket_connect_timeout` is not set (the
/// cluster client needs a bound; this one is ours, not the `redis` crate's 1 second).
pub const DEFAULT_CLUSTER_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How many times one command is retried (after redirections, reconnections, `TRYAGAIN`,
/// `CLUSTERDOWN`…) before its error is returned.
pub const CLUSTER_RETRIES: u32 = 16;

/// The shortest and longest waits between retries that wait (the wait doubles from 10 ms
/// and is drawn at random between these bounds): enough to ride out a failover of a few
/// seconds within [`CLUSTER_RETRIES`] retries.
pub const CLUSTER_RETRY_WAIT: (Duration, Duration) =
    (Duration::from_millis(100), Duration::from_millis(1000));

/// The number of hash slots of a Redis Cluster.
const SLOTS: u64 = 16384;

/// How a cluster backend sizes itself, times out, routes reads and tracks hot keys.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ClusterOptions {
    /// The most sockets the client opens: in total (default), or per node when
    /// `max_connections_per_node` is set.
    pub max_connections: u32,
    /// Whether `max_connections` counts sockets per node rather than in total.
    pub max_connections_per_node: bool,
    /// How long connecting to one node may take; `None` means
    /// [`DEFAULT_CLUSTER_CONNECT_TIMEOUT`].
    pub connect_timeout: Option<Duration>,
    /// How long one attempt of a command may wait for its reply (blocking commands get their
    /// own timeout on top); `None` waits forever.
    pub socket_timeout: Option<Duration>,
    /// How long a caller waits for a free dedicated connection.
    pub pool_timeout: Duration,
    /// Whether read commands may be served by a replica of the slot's primary.
    pub read_from_replicas: bool,
    /// Whether to skip checking, when connecting, that every hash slot is served.
    pub skip_full_coverage_check: bool,
    /// The share (0 to 1) of read commands whose keys are counted in the hot-key set.
    pub track_key_reads_sample_rate: f64,
    /// The share (0 to 1) of write commands whose keys are counted in the hot-key set.
    pub track_key_writes_sample_rate: f64,
    /// Where the connections' lifecycle events (and slot-map refreshes) are reported;
    /// `None` reports nothing.
    pub lifecycle: Option<Arc<ConnectionLifecycle>>,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_node: false,
            connect_timeout: None,
            socket_timeout: None,
            pool_timeout: DEFAULT_POOL_TIMEOUT,
            read_from_replicas: true,
            skip_full_coverage_check: true,
            track_key_reads_sample_rate: 0.0,
            track_key_writes_sample_rate: 0.0,
            lifecycle: None,
        }
    }
}

impl ClusterOptions {
    /// Sets `max_connections`.
    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = n;
        self
    }

    /// Sets whether `max_connections` is per node.
    pub fn max_connections_per_node(mut self, per_node: bool) -> Self {
        self.max_connections_per_node = per_node;
        self
    }

    /// Sets the per-node connect timeout.
    pub fn connect_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets the per-attempt reply timeout.
    pub fn socket_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.socket_timeout = timeout;
        self
    }

    /// Sets the pool wait bound.
    pub fn pool_timeout(mut self, timeout: Duration) -> Self {
        self.pool_timeout = timeout;
        self
    }

    /// Sets whether reads may go to replicas.
    pub fn read_from_replicas(mut self, enabled: bool) -> Self {
        self.read_from_replicas = enabled;
        self
    }

    /// Sets whether the slot coverage check is skipped.
    pub fn skip_full_coverage_check(mut self, skip: bool) -> Self {
        self.skip_full_coverage_check = skip;
        self
    }

    /// Reports the connections' lifecycle events to `lifecycle`.
    pub fn lifecycle(mut self, lifecycle: Option<Arc<ConnectionLifecycle>>) -> Self {
        self.lifecycle = lifecycle;
        self
    }

    /// Sets the hot-key sample rates for reads and writes (each 0 to 1).
    pub fn track_key_sample_rates(mut self, reads: f64, writes: f64) -> Self {
        self.track_key_reads_sample_rate = reads;
        self.track_key_writes_sample_rate = writes;
        self
    }
}

/// A pool of connections to a Redis Cluster, found from one seed node.
///
/// Built by [`cluster_pool_from_config`](crate::cluster_pool_from_config), or directly with
/// [`ClusterBackend::new`]. Making the backend opens no connection; the first command does.
///
/// Sizes in [`state`](PoolBackend::state) are in the unit of `max_connections`: sockets in
/// total (each cluster connection holds one socket per node), or, with
/// `max_connections_per_node`, sockets per node (= cluster connections). The node count is
/// learned when the shared connection opens.
pub struct ClusterBackend {
    shared_client: ClusterClient,
    exclusive_client: ClusterClient,
    // Pub/Sub subscribers each get a client of their own (RESP3, their own push sender).
    seed: redis::ConnectionInfo,
    shared: OnceCell<Shared>,
    idle: Arc<Mutex<Vec<ClusterConnection>>>,
    counts: Arc<Counts>,
    tracker: Option<Arc<HotKeyTracker>>,
    options: ClusterOptions,
    address: Arc<str>,
    lifecycle: Arc<ConnectionLifecycle>,
}

/// The client settings every cluster connection of a backend shares.
fn client_builder(seed: &redis::ConnectionInfo, options: &ClusterOptions) -> ClusterClientBuilder {
    let (min_wait, max_wait) = CLUSTER_RETRY_WAIT;
    ClusterClientBuilder::new(vec![seed.clone()])
        .connection_timeout(
            options
                .connect_timeout
                .unwrap_or(DEFAULT_CLUSTER_CONNECT_TIMEOUT),
        )
        .retries(CLUSTER_RETRIES)
        .min_retry_wait(min_wait.as_millis() as u64)
        .max_retry_wait(max_wait.as_millis() as u64)
        .retry_wait_formula(10, 2)
        // Retries (redirections, failovers) must not be cut short by the per-attempt
        // timeout: the number of retries bounds a command instead.
        .overall_response_timeout(None)
}

/// The shared cluster connection and what was learned when it opened.
struct Shared {
    conn: ClusterConnection,
    /// Sockets one cluster connection holds, in the unit of `max_connections`.
    units: u32,
    /// Permits for dedicated cluster connections.
    exclusive_permits: Arc<Semaphore>,
}

#[derive(Debug, Default)]
struct Counts {
    exclusive_open: AtomicU32,
    exclusive_in_use: AtomicU32,
    shared_in_flight: Arc<InFlightCount>,
}

impl ClusterBackend {
    /// A pool for the cluster that the node `url` names belongs to (`redis://` or
    /// `rediss://`, database 0: a cluster has no other).
    pub fn new(url: &RedisUrl, options: ClusterOptions) -> Result<Self> {
        let address = url.address();
        let config_error = |what: String| Error::Connect {
            address: address.clone(),
            source: RedisError::from((
                redis::ErrorKind::InvalidClientConfig,
                "invalid cluster configuration",
                what,
            )),
        };
        if !matches!(url.scheme_kind(), UrlKind::Tcp { .. }) {
            return Err(config_error(
                "a cluster seed must be a redis:// or rediss:// URL".into(),
            ));
        }
        if url.db() != 0 {
            return Err(config_error(format!(
                "a cluster has only database 0, the URL names database {}",
                url.db()
            )));
        }
        let info = url
            .to_connection_info()
            .map_err(|e| config_error(e.to_string()))?;
        let lifecycle = match &options.lifecycle {
            Some(lifecycle) => lifecycle.clone(),
            None => Arc::new(ConnectionLifecycle::disabled()),
        };
        let builder = || {
            let mut builder = client_builder(&info, &options);
            if options.read_from_replicas {
                builder = builder.read_routing_strategy(TopologyWatch(lifecycle.clone()));
            }
            if url.is_resp3() {
                builder = builder.use_protocol(redis::ProtocolVersion::RESP3);
            }
            builder
        };
        let mut shared = builder();
        if let Some(timeout) = options.socket_timeout {
            shared = shared.response_timeout(timeout);
        }
        let shared_client = shared.build().map_err(|source| Error::Connect {
            address: address.clone(),
            source,
        })?;
        // Dedicated connections serve blocking commands: their timeout is ours to apply.
        let exclusive_client = builder().build().map_err(|source| Error::Connect {
            address: address.clone(),
            source,
        })?;
        let tracker = HotKeyTracker::new(
            options.track_key_reads_sample_rate,
            options.track_key_writes_sample_rate,
        )
        .map(Arc::new);
        Ok(ClusterBackend {
            shared_client,
            exclusive_client,
            seed: info,
            shared: OnceCell::new(),
            idle: Arc::new(Mutex::new(Vec::new())),
            counts: Arc::new(Counts::default()),
            tracker,
            options,
            address: Arc::from(address),
            lifecycle,
        })
    }

    /// Opens a cluster connection with `client`, telling the lifecycle how it went.
    async fn connect(&self, client: &ClusterClient) -> Result<ClusterConnection> {
        let started = std::time::Instant::now();
        match client.get_async_connection().await {
            Ok(conn) => {
                self.lifecycle.opened(started.elapsed());
                Ok(conn)
            }
            Err(source) => {
                let err = self.connect_error(source);
                self.lifecycle.connect_failed(ErrorClass::of_error(&err));
                Err(err)
            }
        }
    }

    /// A permit for one more dedicated cluster connection, waiting at most `pool_timeout`.
    async fn exclusive_permit(&self) -> Result<OwnedSemaphorePermit> {
        let shared = self.shared_state().await?;
        let pending = self.lifecycle.wait_started();
        let started = std::time::Instant::now();
        let acquired = tokio::time::timeout(
            self.options.pool_timeout,
            shared.exclusive_permits.clone().acquire_owned(),
        )
        .await;
        drop(pending);
        match acquired {
            Ok(Ok(permit)) => {
                self.lifecycle.waited(started.elapsed());
                Ok(permit)
            }
            _ => {
                self.lifecycle.pool_timed_out();
                Err(Error::PoolTimeout {
                    address: self.address.to_string(),
                    waited: self.options.pool_timeout,
                    max_connections: self.options.max_connections,
                })
            }
        }
    }

    fn connect_error(&self, source: RedisError) -> Error {
        Error::Connect {
            address: self.address.to_string(),
            source,
        }
    }

    async fn shared_state(&self) -> Result<&Shared> {
        self.shared.get_or_try_init(|| self.open_shared()).await
    }

    async fn open_shared(&self) -> Result<Shared> {
        let mut conn = self.connect(&self.shared_client).await?;
        let slots: Value = redis::cmd("CLUSTER")
            .arg("SLOTS")
            .query_async(&mut conn)
            .await
            .map_err(|e| self.connect_error(e))?;
        let (nodes, covered) = topology(&slots);
        if !self.options.skip_full_coverage_check && covered < SLOTS {
            return Err(self.connect_error(RedisError::from((
                redis::ErrorKind::Server(redis::ServerErrorKind::ClusterDown),
                "full coverage check failed",
                format!("only {covered} of {SLOTS} hash slots are served"),
            ))));
        }
        let units = if self.options.max_connections_per_node {
            1
        } else {
            nodes.max(1)
        };
        // The shared connection takes its share of the limit; the rest is for dedicated ones.
        let exclusive = (self.options.max_connections / units).saturating_sub(1);
        Ok(Shared {
            conn,
            units,
            exclusive_permits: Arc::new(Semaphore::new(exclusive as usize)),
        })
    }

    fn handle(&self, conn: ClusterConnection, sharing: Sharing, poison: Poison) -> ClusterHandle {
        // The shared connection's per-attempt timeout is the cluster client's own.
        let socket_timeout = match sharing {
            Sharing::Exclusive => self.options.socket_timeout,
            Sharing::Shared(_) => None,
        };
        ClusterHandle {
            conn,
            sharing,
            poison,
            socket_timeout,
            tracker: self.tracker.clone(),
            lifecycle: self.lifecycle.clone(),
        }
    }
}

/// Reads the node count and the number of served slots from a `CLUSTER SLOTS` reply.
fn topology(reply: &Value) -> (u32, u64) {
    let mut nodes = HashSet::new();
    let mut covered = 0u64;
    let Value::Array(ranges) = reply else {
        return (0, 0);
    };
    for range in ranges {
        let Value::Array(fields) = range else {
            continue;
        };
        if let (Some(Value::Int(start)), Some(Value::Int(end))) = (fields.first(), fields.get(1)) {
            covered += u64::try_from(end - start + 1).unwrap_or(0);
        }
        for node in fields.iter().skip(2) {
            if let Value::Array(parts) = node {
                if let (Some(host), Some(Value::Int(port))) = (parts.first(), parts.get(1)) {
                    let host = match host {
                        Value::BulkString(bytes) => String::from_utf8_lossy(bytes).into_owned(),
                        Value::SimpleString(text) => text.clone(),
                        _ => continue,
                    };
                    nodes.insert((host, *port));
                }
            }
        }
    }
    (u32::try_from(nodes.len()).unwrap_or(u32::MAX), covered)
}

#[async_trait]
impl PoolBackend for ClusterBackend {
    async fn shared(&self) -> Result<PooledConnection> {
        let shared = self.shared_state().await?;
        let handle = self.handle(
            shared.conn.clone(),
            Sharing::Shared(self.counts.shared_in_flight.clone()),
            Poison::default(),
        );
        Ok(PooledConnection::new(handle))
    }

    async fn exclusive(&self) -> Result<PooledConnection> {
        let permit = self.exclusive_permit().await?;
        let reused = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let conn = match reused {
            Some(conn) => conn,
            None => {
                let conn = self.connect(&self.exclusive_client).await?;
                self.counts.exclusive_open.fetch_add(1, Ordering::Relaxed);
                conn
            }
        };
        self.counts.exclusive_in_use.fetch_add(1, Ordering::Relaxed);
        let poison = Poison::default();
        let handle = self.handle(conn.clone(), Sharing::Exclusive, poison.clone());
        let idle = self.idle.clone();
        let counts = self.counts.clone();
        let lifecycle = self.lifecycle.clone();
        Ok(PooledConnection::with_release(handle, move |release| {
            counts.exclusive_in_use.fetch_sub(1, Ordering::Relaxed);
            let discarded = (release == Release::Discard).then_some(CloseReason::Discarded);
            let close = poison.reason().or(discarded);
            let kept = close.is_none() && idle.lock().map(|mut idle| idle.push(conn)).is_ok();
            if !kept {
                counts.exclusive_open.fetch_sub(1, Ordering::Relaxed);
                lifecycle.closed(close.unwrap_or(CloseReason::Idle));
            }
            drop(permit);
        }))
    }

    /// A cluster connection of its own (RESP3, one socket per node), counted as a
    /// dedicated one. Sharded channels (SSUBSCRIBE) go to the node owning their slot.
    async fn subscriber(&self, pushes: super::PushSender) -> Result<PooledConnection> {
        let permit = self.exclusive_permit().await?;
        // Subscriptions on primaries only (no replica routing): one node per sharded
        // channel, the slot's owner.
        let client = client_builder(&self.seed, &self.options)
            .use_protocol(redis::ProtocolVersion::RESP3)
            .push_sender(pushes)
            .build()
            .map_err(|e| self.connect_error(e))?;
        let conn = self.connect(&client).await?;
        self.counts.exclusive_open.fetch_add(1, Ordering::Relaxed);
        self.counts.exclusive_in_use.fetch_add(1, Ordering::Relaxed);
        let conn = super::subscriber_connection::SubscriberConnection {
            conn: super::subscriber_connection::Link::Cluster(conn),
            socket_timeout: self.options.socket_timeout,
            address: self.address.clone(),
        };
        let counts = self.counts.clone();
        let lifecycle = self.lifecycle.clone();
        Ok(PooledConnection::with_release(conn, move |_| {
            counts.exclusive_in_use.fetch_sub(1, Ordering::Relaxed);
            counts.exclusive_open.fetch_sub(1, Ordering::Relaxed);
            lifecycle.closed(CloseReason::Discarded);
            drop(permit);
        }))
    }

    fn state(&self) -> PoolState {
        let Some(shared) = self.shared.get() else {
            return PoolState::new(self.options.max_connections, 0, 0);
        };
        let shared_busy = u32::from(self.counts.shared_in_flight.total() > 0);
        let open = 1 + self.counts.exclusive_open.load(Ordering::Relaxed);
        let in_use = shared_busy + self.counts.exclusive_in_use.load(Ordering::Relaxed);
        PoolState::new(
            self.options.max_connections,
            open.saturating_mul(shared.units),
            in_use.saturating_mul(shared.units),
        )
    }

    fn database(&self) -> i64 {
        0
    }

    fn address(&self) -> Arc<str> {
        self.address.clone()
    }
}

impl fmt::Debug for ClusterBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterBackend")
            .field("seed", &self.address)
            .field("options", &self.options)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

/// A cluster connection as handed out: counts, timeouts and hot-key tracking around it.
///
/// Shared by every caller, it counts commands in flight. One caller's (exclusive), its
/// poison is set when a command was cut off (timed out or cancelled), after which a reply may
/// still be on its way, so the connection is closed rather than reused.
struct ClusterHandle {
    conn: ClusterConnection,
    sharing: Sharing,
    poison: Poison,
    // Applied by the handle itself: exclusive connections only.
    socket_timeout: Option<Duration>,
    tracker: Option<Arc<HotKeyTracker>>,
    lifecycle: Arc<ConnectionLifecycle>,
}

impl ClusterHandle {
    /// Runs one request: in flight counted, bounded by `timeout`.
    async fn run<T>(
        sharing: &Sharing,
        poison: &Poison,
        timeout: Option<Duration>,
        command: impl FnOnce() -> String,
        request: impl Future<Output = RedisResult<T>>,
    ) -> RedisResult<T> {
        let in_flight = InFlight::start(sharing, poison);
        let result = within(timeout, command, request).await?;
        in_flight.finish();
        result
    }
}

/// How many times a command that still ends in a redirection is sent again.
const REDIRECT_ATTEMPTS: usize = 3;

/// Sends a command that ended in a redirection once more, to the node the redirection
/// names: after `ASK`, as `ASKING` + the command in one pipeline; after `MOVED`, as is.
///
/// The cluster client sends `ASKING` and the command as two requests on a multiplexed
/// connection, so under load another caller's command can slip in between, take the
/// one-shot `ASKING` flag, and the command bounces between the two nodes of a migrating
/// slot until its retries run out. A pipeline is written in one piece: nothing slips in.
/// A `MOVED` can also come back from that resend when the migration ends in between.
async fn follow_redirects(
    conn: &mut ClusterConnection,
    cmd: &Cmd,
    mut result: RedisResult<Value>,
    lifecycle: &ConnectionLifecycle,
) -> RedisResult<Value> {
    for _ in 0..REDIRECT_ATTEMPTS {
        let Some((host, port, asking)) = redirection(&result) else {
            return result;
        };
        lifecycle.redirected(if asking {
            Redirect::Ask
        } else {
            Redirect::Moved
        });
        let mut pipe = redis::pipe();
        if asking {
            pipe.cmd("ASKING");
        }
        pipe.add_command(cmd.clone());
        let offset = usize::from(asking);
        result = conn
            .route_pipeline(
                pipe,
                offset,
                1,
                SingleNodeRoutingInfo::ByAddress { host, port },
            )
            .await
            .and_then(|mut values| match values.pop() {
                Some(Value::ServerError(err)) => Err(err.into()),
                Some(value) => Ok(value),
                None => Err(RedisError::from((
                    ErrorKind::Io,
                    "empty reply to a redirected command",
                ))),
            });
    }
    result
}

/// The node an `ASK` (true) or `MOVED` (false) reply sends the command to, if it is one.
fn redirection(result: &RedisResult<Value>) -> Option<(String, u16, bool)> {
    let err: RedisError = match result {
        Err(err) => err.clone(),
        Ok(Value::ServerError(err)) => err.clone().into(),
        Ok(_) => return None,
    };
    let asking = match err.kind() {
        ErrorKind::Server(ServerErrorKind::Ask) => true,
        ErrorKind::Server(ServerErrorKind::Moved) => false,
        _ => return None,
    };
    let (address, _slot) = err.redirect_node()?;
    let (host, port) = address.rsplit_once(':')?;
    Some((host.to_string(), port.parse().ok()?, asking))
}

impl ConnectionLike for ClusterHandle {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let timeout = reply_timeout(self.socket_timeout, cmd);
            let ClusterHandle {
                conn,
                sharing,
                poison,
                tracker,
                lifecycle,
                ..
            } = self;
            let request = async {
                let result = conn.req_packed_command(cmd).await;
                follow_redirects(conn, cmd, result, lifecycle).await
            };
            let result = Self::run(sharing, poison, timeout, || display_name(cmd), request).await;
            if let (Some(tracker), Ok(value)) = (tracker, &result) {
                if !matches!(value, Value::ServerError(_)) {
                    tracker.maybe_track(cmd, conn);
                }
            }
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
            let timeout = pipeline_reply_timeout(self.socket_timeout, pipeline);
            let ClusterHandle {
                conn,
                sharing,
                poison,
                tracker,
                ..
            } = self;
            let result = Self::run(
                sharing,
                poison,
                timeout,
                || "pipeline".to_string(),
                conn.req_packed_commands(pipeline, offset, count),
            )
            .await;
            // As baseplate.py, every command queued in the pipeline is sampled.
            if let (Some(tracker), Ok(_)) = (tracker, &result) {
                tracker.maybe_track_all(pipeline.cmd_iter(), conn);
            }
            result
        })
    }

    fn get_db(&self) -> i64 {
        0
    }
}

/// The read routing of a cluster connection that reads from replicas (a random one, as
/// `RandomReplicaStrategy`), which also tells the lifecycle each time the connection loads
/// its slot map: the `redis` crate's only signal of a topology refresh.
struct TopologyWatch(Arc<ConnectionLifecycle>);

struct WatchingStrategy(Arc<ConnectionLifecycle>);

impl redis::cluster_read_routing::ReadRoutingStrategyFactory for TopologyWatch {
    fn create_strategy(&self) -> Box<dyn redis::cluster_read_routing::ReadRoutingStrategy> {
        Box::new(WatchingStrategy(self.0.clone()))
    }
}

impl redis::cluster_read_routing::ReadRoutingStrategy for WatchingStrategy {
    fn on_topology_changed(&self, _topology: redis::cluster_read_routing::ClusterTopology) {
        self.0.topology_refreshed();
    }

    fn route_read<'a>(
        &self,
        candidates: &redis::cluster_read_routing::ReadCandidates<'a>,
    ) -> &'a redis::cluster::NodeAddress {
        RandomReplicaStrategy.route_read(candidates)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(host: &str, port: i64) -> Value {
        Value::Array(vec![
            Value::BulkString(host.as_bytes().to_vec()),
            Value::Int(port),
            Value::BulkString(b"id".to_vec()),
        ])
    }

    #[test]
    fn topology_counts_nodes_and_slots() {
        let reply = Value::Array(vec![
            Value::Array(vec![
                Value::Int(0),
                Value::Int(5460),
                node("127.0.0.1", 7000),
                node("127.0.0.1", 7003),
            ]),
            Value::Array(vec![
                Value::Int(5461),
                Value::Int(10922),
                node("127.0.0.1", 7001),
            ]),
            Value::Array(vec![
                Value::Int(10923),
                Value::Int(16383),
                node("127.0.0.1", 7000),
            ]),
        ]);
        assert_eq!(topology(&reply), (3, SLOTS));
        assert_eq!(topology(&Value::Nil), (0, 0));
    }

    #[test]
    fn rejects_non_cluster_urls() {
        let options = ClusterOptions::default;
        for url in ["memory://x", "redis://h/3", "unix:///r.sock"] {
            let url = RedisUrl::parse(url).unwrap();
            assert!(ClusterBackend::new(&url, options()).is_err(), "{url}");
        }
        let url = RedisUrl::parse("redis://u:hunter2@h:7000").unwrap();
        let backend = ClusterBackend::new(&url, options()).unwrap();
        assert_eq!(&*backend.address(), "h:7000");
        assert_eq!(backend.database(), 0);
        assert_eq!(backend.state().max_size, DEFAULT_MAX_CONNECTIONS);
        assert!(!format!("{backend:?}").contains("hunter2"));
    }
}
