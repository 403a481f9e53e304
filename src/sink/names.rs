//! Every metric and label name the crate emits. Nothing else spells them.

/// Histogram of command and pipeline latency, in seconds.
pub const LATENCY_SECONDS: &str = "redis_client_latency_seconds";
/// Counter of commands and pipelines run.
pub const REQUESTS_TOTAL: &str = "redis_client_requests_total";
/// Gauge of commands and pipelines in flight.
pub const ACTIVE_REQUESTS: &str = "redis_client_active_requests";

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
