//! Every metric and label name the crate emits. Nothing else spells them.

/// Histogram of command and pipeline latency, in seconds.
pub const LATENCY_SECONDS: &str = "redis_client_latency_seconds";
/// Counter of commands and pipelines run.
pub const REQUESTS_TOTAL: &str = "redis_client_requests_total";
/// Gauge of commands and pipelines in flight.
pub const ACTIVE_REQUESTS: &str = "redis_client_active_requests";

/// Gauge: the pool's size limit (Prometheus name).
pub const POOL_MAX_SIZE: &str = "redis_client_pool_max_size";
/// Gauge: open connections not in use (Prometheus name).
pub const POOL_IDLE_CONNECTIONS: &str = "redis_client_pool_idle_connections";
/// Gauge: connections in use (Prometheus name).
pub const POOL_ACTIVE_CONNECTIONS: &str = "redis_client_pool_active_connections";

/// Runtime metric: the pool's size limit.
pub const RUNTIME_POOL_SIZE: &str = "runtime.pool.size";
/// Runtime metric: connections checked out now.
pub const RUNTIME_POOL_IN_USE: &str = "runtime.pool.in_use";
/// Runtime metric: connections open now (for a cluster: sockets, see `ClusterBackend`).
pub const RUNTIME_POOL_OPEN_CONNECTIONS: &str = "runtime.pool.open_connections";
/// Gauge: connections open now (Prometheus name).
pub const POOL_OPEN_CONNECTIONS: &str = "redis_client_pool_open_connections";
/// Runtime metric: connections open and available.
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

/// `redis_command` value for pipelines.
pub const COMMAND_PIPELINE: &str = "pipeline";
/// `redis_type` value for a standalone server.
pub const TYPE_STANDALONE: &str = "standalone";
/// `redis_type` value for a cluster.
pub const TYPE_CLUSTER: &str = "cluster";

/// Upper bounds (seconds) of the latency histogram buckets, for exporters that need them.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];
