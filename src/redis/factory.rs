//! The context factory of a standalone Redis client.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use super::client_cache::{ClientCache, ClientCacheOptions};
use super::instruments::ClientInstruments;
use super::monitored::{ClientCore, MonitoredRedisConnection};
use crate::context::ContextFactory;
use crate::pool::PoolBackend;
use crate::sink::{names, FacadeSink, MetricsSink};
use crate::span::SpanContext;
use crate::telemetry::TelemetryOptions;

/// Makes a [`MonitoredRedisConnection`] for every request, all sharing one pool.
///
/// Usually made by [`Baseplate::configure_context`](crate::Baseplate::configure_context)
/// from a [`RedisClient`](crate::RedisClient); make one directly to use a backend of your own.
#[derive(Clone)]
pub struct RedisContextFactory {
    core: Arc<ClientCore>,
}

impl RedisContextFactory {
    /// A factory named `redis` (spans `redis.GET`…) reporting to the global `metrics`
    /// recorder.
    pub fn new(pool: Arc<dyn PoolBackend>) -> Self {
        Self::with_options(pool, "redis", Arc::new(FacadeSink::global()))
    }

    /// A factory with a context name (used in span names and the `redis_client_name` label)
    /// and a metrics sink.
    pub fn with_options(
        pool: Arc<dyn PoolBackend>,
        name: &str,
        sink: Arc<dyn MetricsSink>,
    ) -> Self {
        Self::with_type(pool, name, sink, names::TYPE_STANDALONE)
    }

    /// As [`with_options`](Self::with_options), with the `redis_type` label given (`cluster`
    /// for cluster clients).
    pub fn with_type(
        pool: Arc<dyn PoolBackend>,
        name: &str,
        sink: Arc<dyn MetricsSink>,
        redis_type: &'static str,
    ) -> Self {
        let instruments = ClientInstruments::new(sink, name, pool.database(), redis_type);
        RedisContextFactory {
            core: Arc::new(ClientCore::new(pool, instruments)),
        }
    }

    /// The same factory with `label` as the `redis_client_name` metric label instead of the
    /// context name (baseplate.py's `RedisContextFactory(pool, name, redis_client_name)`).
    /// Call it before making connections: the metrics of handles made earlier keep the old
    /// label.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use baseplate_redis::{pool::InMemoryBackend, sink::RecordingSink, RedisContextFactory};
    ///
    /// let factory = RedisContextFactory::with_options(
    ///     Arc::new(InMemoryBackend::new()),
    ///     "foo",
    ///     Arc::new(RecordingSink::new()),
    /// )
    /// .with_redis_client_name("profile-cache");
    /// assert_eq!(factory.name(), "foo");
    /// assert_eq!(factory.redis_client_name(), "profile-cache");
    /// ```
    pub fn with_redis_client_name(self, label: &str) -> Self {
        if label == self.redis_client_name() {
            return self;
        }
        let telemetry = *self.core.instruments.telemetry();
        self.rebuilt(label, telemetry)
    }

    /// The same factory reporting as `telemetry` says: under OpenTelemetry's metric names
    /// too (or instead), with `db.query.text` on command spans. Call it before making
    /// handles: handles made earlier keep the settings they were made with.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use baseplate_redis::sink::{names, MetricsSink, RecordingSink};
    /// use baseplate_redis::telemetry::{MetricNaming, TelemetryOptions};
    /// use baseplate_redis::{pool::InMemoryBackend, RedisContextFactory};
    /// use redis::AsyncCommands;
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    ///
    /// let sink = RecordingSink::new();
    /// let pool = Arc::new(InMemoryBackend::new());
    /// let factory = RedisContextFactory::with_options(pool, "foo", Arc::new(sink.clone()))
    ///     .with_telemetry(TelemetryOptions::new().metric_naming(MetricNaming::OpenTelemetry));
    /// let _: () = factory.connection().set("k", "v").await?;
    ///
    /// let labels = [(names::OTEL_DB_OPERATION_NAME, "SET")];
    /// assert_eq!(sink.histogram_count(names::OTEL_OPERATION_DURATION, &labels), 1);
    /// assert_eq!(sink.counter_value(names::REQUESTS_TOTAL, &[]), 0);
    /// # Ok(()) }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(run()).unwrap();
    /// ```
    pub fn with_telemetry(self, telemetry: TelemetryOptions) -> Self {
        let label = self.redis_client_name().to_string();
        self.rebuilt(&label, telemetry)
    }

    /// The factory with its instruments made anew for `label` and `telemetry` (none is
    /// resolved before handles are made, so nothing is lost).
    fn rebuilt(&self, label: &str, telemetry: TelemetryOptions) -> Self {
        let old = &self.core.instruments;
        let instruments = ClientInstruments::new(
            old.sink().clone(),
            old.client_name(),
            self.core.pool.database(),
            old.redis_type(),
        )
        .with_label_name(label)
        .with_telemetry(telemetry, &self.core.pool.address());
        let core = ClientCore::new(self.core.pool.clone(), instruments);
        if let Some(cache) = self.core.cache.get() {
            // The cache's metrics carry the label too: a new one with the same settings.
            let cache =
                ClientCache::new(self.core.pool.clone(), cache.options(), &core.instruments);
            let _ = core.cache.set(cache);
        }
        RedisContextFactory {
            core: Arc::new(core),
        }
    }

    /// The `redis_client_name` label of the factory's metrics.
    pub fn redis_client_name(&self) -> &str {
        self.core.instruments.label_name()
    }

    /// Turns on client-side caching of GET, MGET and HGET replies for every handle of this
    /// factory (and its clones): see the README's *Client-side caching*. The first call
    /// wins. Needs a backend with [`PoolBackend::subscriber`] on a RESP3-capable server
    /// (Redis 6 or later); without one every read simply goes to the server.
    ///
    /// Cluster clients are left without one: one tracking connection cannot hear the
    /// invalidations of every node.
    pub fn with_client_cache(self, options: ClientCacheOptions) -> Self {
        if self.core.instruments.redis_type() == names::TYPE_CLUSTER {
            tracing::warn!(client = %self.name(), "client_cache is not supported on cluster clients; ignored");
            return self;
        }
        let cache = ClientCache::new(self.core.pool.clone(), options, &self.core.instruments);
        let _ = self.core.cache.set(cache);
        self
    }

    /// How many keys the client-side cache holds now; `None` without one.
    pub fn client_cache_keys(&self) -> Option<usize> {
        self.core.cache.get().map(|cache| cache.len())
    }

    /// The context name.
    pub fn name(&self) -> &str {
        self.core.instruments.client_name()
    }

    /// The pool behind the factory.
    pub fn pool(&self) -> &Arc<dyn PoolBackend> {
        &self.core.pool
    }

    /// A Pub/Sub [`Subscriber`](crate::Subscriber) outside any request (its commands are
    /// measured but make no spans), with a connection of its own counted against
    /// `max_connections`.
    pub async fn pubsub(&self) -> crate::Result<super::pubsub::Subscriber> {
        super::pubsub::Subscriber::open(
            self.core.clone(),
            self.core.instruments.client_name().clone(),
            SpanContext::detached(),
        )
        .await
    }

    /// A handle outside any request: its commands are measured but make no spans.
    pub fn connection(&self) -> MonitoredRedisConnection {
        self.connection_in(&SpanContext::detached())
    }

    /// A handle whose command spans are children of `span`.
    pub fn connection_in(&self, span: &SpanContext) -> MonitoredRedisConnection {
        MonitoredRedisConnection::new(
            self.core.clone(),
            self.core.instruments.client_name().clone(),
            span.clone(),
        )
    }
}

impl ContextFactory for RedisContextFactory {
    fn make_object_for_context(&self, name: &str, span: &SpanContext) -> Box<dyn Any + Send> {
        let name = if name == &**self.core.instruments.client_name() {
            self.core.instruments.client_name().clone()
        } else {
            Arc::from(name)
        };
        Box::new(MonitoredRedisConnection::new(
            self.core.clone(),
            name,
            span.clone(),
        ))
    }

    fn report_runtime_metrics(&self, sink: &dyn MetricsSink) {
        let naming = self.core.instruments.telemetry().metric_naming;
        crate::runtime::report_pool_state(self.name(), self.core.pool.as_ref(), sink, naming);
    }
}

impl fmt::Debug for RedisContextFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisContextFactory")
            .field("name", &self.name())
            .field("pool", &self.core.pool)
            .finish()
    }
}
