//! The context factory of a standalone Redis client.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

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
        RedisContextFactory {
            core: Arc::new(ClientCore::new(self.core.pool.clone(), instruments)),
        }
    }

    /// The `redis_client_name` label of the factory's metrics.
    pub fn redis_client_name(&self) -> &str {
        self.core.instruments.label_name()
    }

    /// The context name.
    pub fn name(&self) -> &str {
        self.core.instruments.client_name()
    }

    /// The pool behind the factory.
    pub fn pool(&self) -> &Arc<dyn PoolBackend> {
        &self.core.pool
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
