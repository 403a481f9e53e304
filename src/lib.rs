#![doc = include_str!("../README.md")]
#![warn(missing_docs, unreachable_pub)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod command;
pub mod config;
mod context;
mod error;
#[cfg(any(test, feature = "mock"))]
mod mock;
pub mod pool;
mod queue;
mod redis;
pub mod runtime;
pub mod sink;
pub mod span;
pub mod telemetry;
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod web;

pub use crate::config::{ConfigurationError, RawConfig};
pub use crate::context::{Baseplate, ContextFactory, ContextParser, ContextSpec, RequestContext};
pub use crate::error::{Error, Result};
#[cfg(any(test, feature = "mock"))]
#[cfg_attr(docsrs, doc(cfg(feature = "mock")))]
pub use crate::mock::MockContextFactory;
pub use crate::queue::MessageQueue;
pub use crate::redis::{
    cluster_pool_from_config, pool_from_config, ClusterRedisClient, ClusterRedisClientConfig,
    MonitoredPipeline, MonitoredRedisConnection, PubSubMessage, RedisClient, RedisClientConfig,
    RedisContextFactory, Subscriber, SubscriptionKind, MAX_CONNECTIONS_LIMIT,
    SUBSCRIBER_MAX_RETRY_WAIT, SUBSCRIBER_PING_INTERVAL, TRANSACTION_MAX_ATTEMPTS,
};
pub use crate::redis::{
    ClientCacheOptions, CACHE_LIVENESS, DEFAULT_CACHE_MAX_KEYS, DEFAULT_CACHE_TTL,
};
pub use crate::runtime::RuntimeReporter;
