//! The Redis clients (standalone, Sentinel, Cluster): configuration, factory, per-request
//! handle, pipelines.

mod client;
mod client_cache;
mod cluster;
mod factory;
mod handle_state;
mod instruments;
mod monitored;
mod pipeline;
mod pool_choice;
mod pubsub;

pub use client::{pool_from_config, RedisClient, RedisClientConfig, MAX_CONNECTIONS_LIMIT};
pub use client_cache::{
    ClientCacheOptions, CACHE_LIVENESS, DEFAULT_CACHE_MAX_KEYS, DEFAULT_CACHE_TTL,
};
pub use cluster::{cluster_pool_from_config, ClusterRedisClient, ClusterRedisClientConfig};
pub use factory::RedisContextFactory;
pub use monitored::{MonitoredRedisConnection, TRANSACTION_MAX_ATTEMPTS};
pub use pipeline::MonitoredPipeline;
pub use pubsub::{
    PubSubMessage, Subscriber, SubscriptionKind, SUBSCRIBER_MAX_RETRY_WAIT,
    SUBSCRIBER_PING_INTERVAL,
};
