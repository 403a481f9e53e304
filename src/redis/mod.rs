//! The standalone Redis client: configuration, factory, per-request handle, pipelines.

mod client;
mod factory;
mod instruments;
mod monitored;
mod pipeline;

pub use client::{pool_from_config, RedisClient, RedisClientConfig, MAX_CONNECTIONS_LIMIT};
pub use factory::RedisContextFactory;
pub use monitored::{MonitoredRedisConnection, TRANSACTION_MAX_ATTEMPTS};
pub use pipeline::MonitoredPipeline;
