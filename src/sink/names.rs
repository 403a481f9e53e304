//! Every metric and label name the crate emits. Nothing else spells them.

/// Histogram of command and pipeline latency, in seconds.
pub const LATENCY_SECONDS: &str = "redis_client_latency_seconds";
/// Counter of commands and pipelines run.
pub const REQUESTS_TOTAL: &str = "redis_client_requests_total";
/// Gauge of commands and pipelines in flight.
pub const ACTIVE_REQUESTS: &str = "redis_client_active_requests";

/// Counter of Pub/Sub messages received, by subscription ([`LABEL_PUBSUB_SUBSCRIPTION`],
/// [`LABEL_PUBSUB_KIND`]) and client labels.
pub const PUBSUB_MESSAGES_TOTAL: &str = "redis_client_pubsub_messages_total";
/// Gauge of the channels and patterns the client's subscribers are subscribed to.
pub const PUBSUB_SUBSCRIPTIONS: &str = "redis_client_pubsub_subscriptions";
/// Counter of subscriber reconnections (each one resubscribed to everything).
pub const PUBSUB_RECONNECTS_TOTAL: &str = "redis_client_pubsub_reconnects_total";
/// Histogram of how long subscribers were disconnected, from the loss of the connection
/// to the end of resubscribing, in seconds: messages published then were not received.
pub const PUBSUB_RECONNECT_GAP_SECONDS: &str = "redis_client_pubsub_reconnect_gap_seconds";

/// Counter of reads answered from the client-side cache.
pub const CLIENT_CACHE_HITS_TOTAL: &str = "redis_client_cache_hits_total";
/// Counter of cacheable reads the client-side cache could not answer.
pub const CLIENT_CACHE_MISSES_TOTAL: &str = "redis_client_cache_misses_total";
/// Counter of cached keys the server invalidated.
pub const CLIENT_CACHE_INVALIDATIONS_TOTAL: &str = "redis_client_cache_invalidations_total";
/// Counter of cached keys dropped to stay within `client_cache_max_keys`.
pub const CLIENT_CACHE_EVICTIONS_TOTAL: &str = "redis_client_cache_evictions_total";
/// Counter of whole-cache flushes (tracking connection lost or replaced, FLUSHALL).
pub const CLIENT_CACHE_FLUSHES_TOTAL: &str = "redis_client_cache_flushes_total";
/// Gauge of the keys held in the client-side cache.
pub const CLIENT_CACHE_KEYS: &str = "redis_client_cache_keys";

/// Span tag of a cacheable read on a client with `client_cache`: whether the client-side
/// cache answered it (`true`) or the server did (`false`).
pub const TAG_CLIENT_CACHE_HIT: &str = "redis.client_cache.hit";

/// Gauge: the pool's size limit (Prometheus name).
pub const POOL_MAX_SIZE: &str = "redis_client_pool_max_size";
/// Gauge: free slots, `max size - in use` (Prometheus name). The name says "idle", but
/// baseplate.py reports its `BlockingConnectionPool`'s free slots under it; so do we.
pub const POOL_IDLE_CONNECTIONS: &str = "redis_client_pool_idle_connections";
/// Gauge: *open* connections (Prometheus name). The name says "active", but baseplate.py
/// reports open connections under it ("Number of open connections"); so do we.
pub const POOL_ACTIVE_CONNECTIONS: &str = "redis_client_pool_active_connections";
/// Gauge (ours, not baseplate.py's): connections open now, the same value as
/// [`POOL_ACTIVE_CONNECTIONS`] under a name that says so (Prometheus name).
pub const POOL_OPEN_CONNECTIONS: &str = "redis_client_pool_open_connections";
/// Gauge (ours, not baseplate.py's): connections serving a caller now (Prometheus name).
pub const POOL_IN_USE_CONNECTIONS: &str = "redis_client_pool_in_use_connections";

/// Runtime metric: the pool's size limit.
pub const RUNTIME_POOL_SIZE: &str = "runtime.pool.size";
/// Runtime metric: connections checked out now.
pub const RUNTIME_POOL_IN_USE: &str = "runtime.pool.in_use";
/// Runtime metric: connections open now (baseplate.py's cluster client reports it; for a
/// cluster: sockets, see `ClusterBackend`).
pub const RUNTIME_POOL_OPEN_CONNECTIONS: &str = "runtime.pool.open_connections";
/// Runtime metric: connections open and not in use, `open - in use`.
pub const RUNTIME_POOL_OPEN_AND_AVAILABLE: &str = "runtime.pool.open_and_available";

/// Label: the lower-cased command name, or `pipeline`.
pub const LABEL_COMMAND: &str = "redis_command";
/// Label: the database number.
pub const LABEL_DATABASE: &str = "redis_database";
/// Label: the client's context name.
pub const LABEL_CLIENT_NAME: &str = "redis_client_name";
/// Label: `standalone` or `cluster`.
pub const LABEL_TYPE: &str = "redis_type";
/// Label: `true` or `false`.
pub const LABEL_SUCCESS: &str = "redis_success";
/// Label of the Prometheus pool gauges: the client's context name.
pub const LABEL_POOL: &str = "redis_pool";
/// Tag of the runtime metrics: the client's context name.
pub const LABEL_CLIENT: &str = "client";

/// Label of Pub/Sub message counts: the subscription the message came through (the
/// channel subscribed to, or the pattern), never the channel of a pattern match.
pub const LABEL_PUBSUB_SUBSCRIPTION: &str = "redis_pubsub_subscription";
/// Label of Pub/Sub message counts: `channel`, `pattern` or `shard`.
pub const LABEL_PUBSUB_KIND: &str = "redis_pubsub_kind";

/// `redis_command` value for pipelines.
pub const COMMAND_PIPELINE: &str = "pipeline";
/// `redis_type` value for a standalone server.
pub const TYPE_STANDALONE: &str = "standalone";
/// `redis_type` value for a cluster.
pub const TYPE_CLUSTER: &str = "cluster";

/// Upper bounds (seconds) of the latency histogram buckets, for exporters that need them:
/// baseplate.py's `default_latency_buckets` (100 µs, 500 µs, 1, 2.5, 5, 10, 25, 50, 100, 250,
/// 500 ms, 1, 5, 15, 30 s), so that the `le` labels of Python and Rust services match and their
/// histograms aggregate. `sink::prometheus::builder_with_latency_buckets` sets others.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 15.0, 30.0,
];

// ---------------------------------------------------------------------------------------
// Connection lifecycle (baseplate-style names), reported as it happens by the pool
// backends. All labelled with `redis_pool` (the client's context name).

/// Counter: connections opened.
pub const CONNECTIONS_OPENED_TOTAL: &str = "redis_client_connections_opened_total";
/// Counter: connections closed, by [`LABEL_REASON`].
pub const CONNECTIONS_CLOSED_TOTAL: &str = "redis_client_connections_closed_total";
/// Counter: connection attempts that failed, by [`LABEL_ERROR_TYPE`].
pub const CONNECT_FAILURES_TOTAL: &str = "redis_client_connect_failures_total";
/// Histogram: how long opening a connection took (successful ones), in seconds.
pub const CONNECT_DURATION_SECONDS: &str = "redis_client_connect_duration_seconds";
/// Counter: connections opened to replace one closed by a failure (error, timeout,
/// half-open, server closed, failover).
pub const RECONNECTS_TOTAL: &str = "redis_client_reconnects_total";
/// Histogram: how long callers waited for a pooled connection, in seconds.
pub const POOL_WAIT_SECONDS: &str = "redis_client_pool_wait_seconds";
/// Counter: callers that gave up waiting for a pooled connection.
pub const POOL_TIMEOUTS_TOTAL: &str = "redis_client_pool_timeouts_total";
/// Gauge: callers waiting for a pooled connection now.
pub const POOL_PENDING_REQUESTS: &str = "redis_client_pool_pending_requests";
/// Counter (cluster client): MOVED and ASK redirects the client followed itself, by
/// [`LABEL_REDIRECT`]: those the `redis` crate's cluster connection handed back after its own
/// retries (it follows most redirects invisibly; each MOVED it follows also refreshes its
/// slot map, counted in [`CLUSTER_TOPOLOGY_REFRESHES_TOTAL`]).
pub const CLUSTER_REDIRECTS_TOTAL: &str = "redis_client_cluster_redirects_total";
/// Counter (cluster client): slot-map refreshes.
pub const CLUSTER_TOPOLOGY_REFRESHES_TOTAL: &str = "redis_client_cluster_topology_refreshes_total";
/// Counter (sentinel client): primary changes followed.
pub const SENTINEL_FAILOVERS_TOTAL: &str = "redis_client_sentinel_failovers_total";

/// Label of [`CONNECTIONS_CLOSED_TOTAL`]: why the connection was closed, one of
/// [`CLOSE_REASONS`].
pub const LABEL_REASON: &str = "reason";
/// Label of [`CONNECT_FAILURES_TOTAL`]: the failure's `error.type`.
pub const LABEL_ERROR_TYPE: &str = "error_type";
/// Label of [`CLUSTER_REDIRECTS_TOTAL`]: `moved` or `ask`.
pub const LABEL_REDIRECT: &str = "redirect";

/// Close reason: idle too long (or past its lifetime), closed by the pool.
pub const REASON_IDLE: &str = "idle";
/// Close reason: the socket failed (reset, garbled reply, unrecoverable error).
pub const REASON_ERROR: &str = "error";
/// Close reason: a command on it timed out or was cancelled, so a late reply may follow.
pub const REASON_TIMEOUT: &str = "timeout";
/// Close reason: it failed the health check (PING) before reuse: half-open.
pub const REASON_HALF_OPEN: &str = "half_open";
/// Close reason: the server closed it (EOF, connection reset).
pub const REASON_SERVER_CLOSED: &str = "server_closed";
/// Close reason: the pool was shut down.
pub const REASON_SHUTDOWN: &str = "shutdown";
/// Close reason: its server is no longer the primary (sentinel failover, READONLY).
pub const REASON_FAILOVER: &str = "failover";
/// Close reason: the connection's state was changed (SELECT, CLIENT SETNAME…) by a caller.
pub const REASON_DISCARDED: &str = "discarded";
/// Every close reason.
pub const CLOSE_REASONS: &[&str] = &[
    REASON_IDLE,
    REASON_ERROR,
    REASON_TIMEOUT,
    REASON_HALF_OPEN,
    REASON_SERVER_CLOSED,
    REASON_SHUTDOWN,
    REASON_FAILOVER,
    REASON_DISCARDED,
];

/// `redirect` value of a MOVED redirect.
pub const REDIRECT_MOVED: &str = "moved";
/// `redirect` value of an ASK redirect.
pub const REDIRECT_ASK: &str = "ask";

/// Upper bounds (seconds) of the connect-duration and pool-wait histograms.
pub const CONNECTION_TIME_BUCKETS: &[f64] = &[
    0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

// ---------------------------------------------------------------------------------------
// OpenTelemetry database conventions (opt-in: `telemetry::MetricNaming`). The names are
// the conventions'; a Prometheus exporter renders them with dots as underscores and the
// unit as a suffix (`db_client_operation_duration_seconds`), as `sink::prometheus` does.

/// Histogram: duration of commands and pipelines, in seconds.
pub const OTEL_OPERATION_DURATION: &str = "db.client.operation.duration";
/// Gauge (an up-down counter in OpenTelemetry): connections by [`OTEL_CONNECTION_STATE`].
pub const OTEL_CONNECTION_COUNT: &str = "db.client.connection.count";
/// Gauge: the most connections the pool opens.
pub const OTEL_CONNECTION_MAX: &str = "db.client.connection.max";
/// Gauge (an up-down counter in OpenTelemetry): callers waiting for a connection.
pub const OTEL_CONNECTION_PENDING_REQUESTS: &str = "db.client.connection.pending_requests";
/// Histogram: how long callers waited for a connection, in seconds.
pub const OTEL_CONNECTION_WAIT_TIME: &str = "db.client.connection.wait_time";
/// Histogram: how long opening a connection took, in seconds.
pub const OTEL_CONNECTION_CREATE_TIME: &str = "db.client.connection.create_time";
/// Counter: callers that gave up waiting for a connection.
pub const OTEL_CONNECTION_TIMEOUTS: &str = "db.client.connection.timeouts";

/// Attribute: the database system, always `redis`.
pub const OTEL_DB_SYSTEM_NAME: &str = "db.system.name";
/// Attribute: the command name in capitals (`GET`, `PIPELINE`).
pub const OTEL_DB_OPERATION_NAME: &str = "db.operation.name";
/// Attribute: the database number, as a string.
pub const OTEL_DB_NAMESPACE: &str = "db.namespace";
/// Attribute: the server's host (no credentials).
pub const OTEL_SERVER_ADDRESS: &str = "server.address";
/// Attribute: the server's port.
pub const OTEL_SERVER_PORT: &str = "server.port";
/// Attribute (failures only): the Redis error prefix (`ERR`, `WRONGTYPE`…).
pub const OTEL_DB_RESPONSE_STATUS_CODE: &str = "db.response.status_code";
/// Attribute (failures only): the class of error (`telemetry::ErrorClass`).
pub const OTEL_ERROR_TYPE: &str = "error.type";
/// Span attribute: the script SHA1 of `EVALSHA`, the function of `FCALL`.
pub const OTEL_DB_STORED_PROCEDURE_NAME: &str = "db.stored_procedure.name";
/// Span attribute (opt-in): the command with `?` for every argument.
pub const OTEL_DB_QUERY_TEXT: &str = "db.query.text";
/// Span attribute: how many commands a pipeline holds.
pub const OTEL_DB_OPERATION_BATCH_SIZE: &str = "db.operation.batch.size";
/// Attribute of the pool metrics: the client's context name.
pub const OTEL_CONNECTION_POOL_NAME: &str = "db.client.connection.pool.name";
/// Attribute of [`OTEL_CONNECTION_COUNT`]: `idle` or `used`.
pub const OTEL_CONNECTION_STATE: &str = "db.client.connection.state";
/// `db.client.connection.state` of open connections not in use.
pub const OTEL_STATE_IDLE: &str = "idle";
/// `db.client.connection.state` of connections in use.
pub const OTEL_STATE_USED: &str = "used";
/// `db.system.name` value.
pub const OTEL_SYSTEM_REDIS: &str = "redis";

/// The buckets the conventions advise for `db.client.operation.duration` (seconds).
pub const OTEL_OPERATION_DURATION_BUCKETS: &[f64] =
    &[0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0];
