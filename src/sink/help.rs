//! What the Prometheus renderings need to know about each metric of the crate: its kind,
//! unit, `# HELP` text (baseplate.py's where it has the metric, so that both kinds of service
//! agree) and, for histograms other than the latency one, their buckets.

use super::names;

/// What kind of metric a name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// One metric of the crate.
pub(crate) struct Description {
    pub(crate) name: &'static str,
    // Read by the `prometheus` feature's recorder, which declares each metric's kind.
    #[cfg_attr(not(feature = "prometheus"), allow(dead_code))]
    pub(crate) kind: Kind,
    /// Measured in seconds, with a name that does not say so (the OpenTelemetry names):
    /// Prometheus names get a `_seconds` suffix.
    pub(crate) seconds: bool,
    pub(crate) help: &'static str,
}

/// Every metric of the crate.
pub(crate) const DESCRIPTIONS: &[Description] = &[
    Description {
        name: names::LATENCY_SECONDS,
        kind: Kind::Histogram,
        seconds: false,
        help: "Latency histogram for calls made by clients",
    },
    Description {
        name: names::CONNECT_DURATION_SECONDS,
        kind: Kind::Histogram,
        seconds: false,
        help: "How long opening a Redis connection took, in seconds",
    },
    Description {
        name: names::POOL_WAIT_SECONDS,
        kind: Kind::Histogram,
        seconds: false,
        help: "How long callers waited for a pooled Redis connection, in seconds",
    },
    Description {
        name: names::REQUESTS_TOTAL,
        kind: Kind::Counter,
        seconds: false,
        help: "Total number of requests made by client",
    },
    Description {
        name: names::CONNECTIONS_OPENED_TOTAL,
        kind: Kind::Counter,
        seconds: false,
        help: "Redis connections opened",
    },
    Description {
        name: names::CONNECTIONS_CLOSED_TOTAL,
        kind: Kind::Counter,
        seconds: false,
        help: "Redis connections closed, by reason",
    },
    Description {
        name: names::CONNECT_FAILURES_TOTAL,
        kind: Kind::Counter,
        seconds: false,
        help: "Failed attempts to open a Redis connection, by error type",
    },
    Description {
        name: names::RECONNECTS_TOTAL,
        kind: Kind::Counter,
        seconds: false,
        help: "Redis connections opened to replace one lost to a failure",
    },
    Description {
        name: names::POOL_TIMEOUTS_TOTAL,
        kind: Kind::Counter,
        seconds: false,
        help: "Callers that gave up waiting for a pooled Redis connection",
    },
    Description {
        name: names::CLUSTER_REDIRECTS_TOTAL,
        kind: Kind::Counter,
        seconds: false,
        help: "MOVED and ASK redirects followed by the cluster client",
    },
    Description {
        name: names::CLUSTER_TOPOLOGY_REFRESHES_TOTAL,
        kind: Kind::Counter,
        seconds: false,
        help: "Slot-map loads and refreshes of the cluster client",
    },
    Description {
        name: names::SENTINEL_FAILOVERS_TOTAL,
        kind: Kind::Counter,
        seconds: false,
        help: "New primaries named by the sentinels and followed",
    },
    Description {
        name: names::OTEL_OPERATION_DURATION,
        kind: Kind::Histogram,
        seconds: true,
        help: "Duration of database client operations",
    },
    Description {
        name: names::OTEL_CONNECTION_CREATE_TIME,
        kind: Kind::Histogram,
        seconds: true,
        help: "The time it took to create a new connection",
    },
    Description {
        name: names::OTEL_CONNECTION_WAIT_TIME,
        kind: Kind::Histogram,
        seconds: true,
        help: "The time it took to obtain an open connection from the pool",
    },
    Description {
        name: names::OTEL_CONNECTION_COUNT,
        kind: Kind::Gauge,
        seconds: false,
        help: "The number of connections that are currently in the state described by the state attribute",
    },
    Description {
        name: names::OTEL_CONNECTION_MAX,
        kind: Kind::Gauge,
        seconds: false,
        help: "The maximum number of open connections allowed",
    },
    Description {
        name: names::OTEL_CONNECTION_PENDING_REQUESTS,
        kind: Kind::Gauge,
        seconds: false,
        help: "The number of current pending requests for an open connection",
    },
    Description {
        name: names::OTEL_CONNECTION_TIMEOUTS,
        kind: Kind::Counter,
        seconds: false,
        help: "The number of connection timeouts that have occurred trying to obtain a connection from the pool",
    },
    Description {
        name: names::ACTIVE_REQUESTS,
        kind: Kind::Gauge,
        seconds: false,
        help: "Number of active requests for a given client",
    },
    Description {
        name: names::POOL_MAX_SIZE,
        kind: Kind::Gauge,
        seconds: false,
        help: "Maximum number of connections allowed in this redis client connection pool",
    },
    Description {
        name: names::POOL_IDLE_CONNECTIONS,
        kind: Kind::Gauge,
        seconds: false,
        // The value is the free slots (max size - in use), as baseplate.py's.
        help: "Number of idle connections in this redis client connection pool",
    },
    Description {
        name: names::POOL_ACTIVE_CONNECTIONS,
        kind: Kind::Gauge,
        seconds: false,
        help: "Number of open connections in this redis client connection pool",
    },
    Description {
        name: names::POOL_OPEN_CONNECTIONS,
        kind: Kind::Gauge,
        seconds: false,
        help: "Number of open connections in this redis client connection pool",
    },
    Description {
        name: names::POOL_IN_USE_CONNECTIONS,
        kind: Kind::Gauge,
        seconds: false,
        help: "Number of connections of this redis client connection pool serving a caller",
    },
    Description {
        name: names::RUNTIME_POOL_SIZE,
        kind: Kind::Gauge,
        seconds: false,
        help: "The size limit of the connection pool",
    },
    Description {
        name: names::RUNTIME_POOL_IN_USE,
        kind: Kind::Gauge,
        seconds: false,
        help: "Connections of the pool checked out and being used",
    },
    Description {
        name: names::POOL_PENDING_REQUESTS,
        kind: Kind::Gauge,
        seconds: false,
        help: "Callers waiting for a pooled Redis connection",
    },
    Description {
        name: names::RUNTIME_POOL_OPEN_AND_AVAILABLE,
        kind: Kind::Gauge,
        seconds: false,
        help: "Open connections of the pool not in use",
    },
    Description {
        name: names::RUNTIME_POOL_OPEN_CONNECTIONS,
        kind: Kind::Gauge,
        seconds: false,
        help: "Open connections of the pool",
    },    Description {
        name: names::PUBSUB_MESSAGES_TOTAL,
        kind: Kind::Counter,
        seconds: false,
        help: "Pub/Sub messages received, by subscription (channel or pattern)",
    },
    Description {
        name: names::PUBSUB_SUBSCRIPTIONS,
        kind: Kind::Gauge,
        seconds: false,
        help: "Channels and patterns a subscriber is subscribed to",
    },
    Description {
        name: names::PUBSUB_RECONNECTS_TOTAL,
        kind: Kind::Counter,
        seconds: false,
        help: "Times a subscriber reconnected and resubscribed",
    },
    Description {
        name: names::PUBSUB_RECONNECT_GAP_SECONDS,
        kind: Kind::Histogram,
        seconds: false,
        help: "How long a subscriber was not subscribed while it reconnected, in seconds",
    },
    Description {
        name: names::CLIENT_CACHE_HITS_TOTAL,
        kind: Kind::Counter,
        seconds: false,
        help: "Reads served from the client-side cache",
    },
    Description {
        name: names::CLIENT_CACHE_MISSES_TOTAL,
        kind: Kind::Counter,
        seconds: false,
        help: "Cacheable reads sent to the server",
    },
    Description {
        name: names::CLIENT_CACHE_INVALIDATIONS_TOTAL,
        kind: Kind::Counter,
        seconds: false,
        help: "Keys the server invalidated in the client-side cache",
    },
    Description {
        name: names::CLIENT_CACHE_EVICTIONS_TOTAL,
        kind: Kind::Counter,
        seconds: false,
        help: "Keys evicted from the client-side cache by its size or TTL bound",
    },
    Description {
        name: names::CLIENT_CACHE_FLUSHES_TOTAL,
        kind: Kind::Counter,
        seconds: false,
        help: "Times the whole client-side cache was flushed (its tracking connection was lost)",
    },
    Description {
        name: names::CLIENT_CACHE_KEYS,
        kind: Kind::Gauge,
        seconds: false,
        help: "Keys held in the client-side cache",
    },
];

/// The metric named `name` (as the crate spells it), if the crate has it.
pub(crate) fn describe(name: &str) -> Option<&'static Description> {
    DESCRIPTIONS.iter().find(|described| described.name == name)
}

/// The buckets of the crate's histograms other than `redis_client_latency_seconds` (whose
/// buckets are the sink's setting).
pub(crate) const FIXED_BUCKETS: &[(&str, &[f64])] = &[
    (
        names::OTEL_OPERATION_DURATION,
        names::OTEL_OPERATION_DURATION_BUCKETS,
    ),
    (
        names::CONNECT_DURATION_SECONDS,
        names::CONNECTION_TIME_BUCKETS,
    ),
    (names::POOL_WAIT_SECONDS, names::CONNECTION_TIME_BUCKETS),
    (
        names::PUBSUB_RECONNECT_GAP_SECONDS,
        names::CONNECTION_TIME_BUCKETS,
    ),
    (
        names::OTEL_CONNECTION_CREATE_TIME,
        names::CONNECTION_TIME_BUCKETS,
    ),
    (
        names::OTEL_CONNECTION_WAIT_TIME,
        names::CONNECTION_TIME_BUCKETS,
    ),
];

/// The fixed buckets of the histogram named `name`, if it has some.
pub(crate) fn fixed_buckets(name: &str) -> Option<&'static [f64]> {
    FIXED_BUCKETS
        .iter()
        .find(|(fixed, _)| *fixed == name)
        .map(|(_, buckets)| *buckets)
}
