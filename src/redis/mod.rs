//! The Redis clients (standalone, Sentinel, Cluster): configuration, factory, per-request
//! handle, pipelines.

mod client;
mod cluster;
mod factory;
mod handle_state;
mod instruments;
mod monitored;
mod pipeline;
mod pool_choice;

pub use client::{pool_from_config, RedisClient, RedisClientConfig, MAX_CONNECTIONS_LIMIT};
pub use cluster::{cluster_pool_from_config, ClusterRedisClient, ClusterRedisClientConfig};
pub use factory::RedisContextFactory;
pub use monitored::{MonitoredRedisConnection, TRANSACTION_MAX_ATTEMPTS};
pub use pipeline::MonitoredPipeline;
