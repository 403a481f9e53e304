//! mockall mocks of the three traits (feature `mock`): for checking calls, and for making a
//! dependency fail or answer on cue in a service's unit tests.
//!
//! Enable the feature only for tests, in `[dev-dependencies]`:
//!
//! ```toml
//! [dev-dependencies]
//! baseplate-redis = { version = "0.1", features = ["mock"] }
//! ```

use std::any::Any;
use std::sync::Arc;

use mockall::mock;

use crate::context::ContextFactory;
use crate::pool::{async_trait, PoolBackend, PoolState, PooledConnection, ScriptedConnection};
use crate::sink::{Counter, Gauge, Histogram, Key, MetricsSink};
use crate::span::SpanContext;
use crate::Result;

mock! {
    /// A mockall mock of [`PoolBackend`]: set what `shared()`, `exclusive()`, `state()`,
    /// `database()` and `address()` return with `expect_*` (a call without an expectation
    /// panics, as mockall does).
    ///
    /// A client reads `database()` and `address()` as soon as it is made, so start from
    /// [`MockPoolBackend::at`] (those two answered) or [`MockPoolBackend::serving`] (a
    /// working connection too) rather than [`MockPoolBackend::new`].
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use baseplate_redis::pool::MockPoolBackend;
    /// use baseplate_redis::{Error, RedisContextFactory};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// // Redis is unreachable: every checkout fails as a real pool's would.
    /// let mut pool = MockPoolBackend::at("cache.internal:6379", 0);
    /// pool.expect_shared().returning(|| {
    ///     Err(Error::ConnectTimeout {
    ///         address: "cache.internal:6379".into(),
    ///         timeout: Duration::from_secs(1),
    ///     })
    /// });
    /// let mut redis = RedisContextFactory::new(Arc::new(pool)).connection();
    /// let err = redis::cmd("GET").arg("k").query_async::<Option<String>>(&mut redis).await.unwrap_err();
    /// assert!(err.is_timeout(), "{err}");
    /// # });
    /// ```
    #[derive(Debug)]
    pub PoolBackend {}

    #[async_trait]
    impl PoolBackend for PoolBackend {
        async fn shared(&self) -> Result<PooledConnection>;
        async fn exclusive(&self) -> Result<PooledConnection>;
        fn state(&self) -> PoolState;
        fn database(&self) -> i64;
        fn address(&self) -> Arc<str>;
    }
}

impl MockPoolBackend {
    /// A mock answering `address()` with `address` and `database()` with `db`, as often as
    /// asked; set `shared()`/`exclusive()` (and `state()`, if the runtime metrics are
    /// reported) yourself.
    pub fn at(address: &str, db: i64) -> Self {
        let mut mock = MockPoolBackend::new();
        let address: Arc<str> = Arc::from(address);
        mock.expect_address().returning(move || address.clone());
        mock.expect_database().return_const(db);
        mock
    }

    /// A mock whose every `shared()` and `exclusive()` hands out a clone of `conn` (a
    /// [`ScriptedConnection`]'s clones share its script), at `scripted:6379` on `conn`'s
    /// database, reporting a pool of 1 connection, open and idle.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use baseplate_redis::pool::{MockPoolBackend, ScriptedConnection};
    /// use baseplate_redis::RedisContextFactory;
    /// use redis::{AsyncCommands, Value};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let script = ScriptedConnection::new().reply(Value::Int(41)).reply(Value::Int(42));
    /// let pool = MockPoolBackend::serving(script.clone());
    /// let mut redis = RedisContextFactory::new(Arc::new(pool)).connection();
    /// assert_eq!(redis.incr::<_, _, i64>("hits", 1).await.unwrap(), 41);
    /// assert_eq!(redis.incr::<_, _, i64>("hits", 1).await.unwrap(), 42);
    /// assert_eq!(script.received()[1], ["INCRBY", "hits", "1"]);
    /// # });
    /// ```
    pub fn serving(conn: ScriptedConnection) -> Self {
        use redis::aio::ConnectionLike as _;

        let mut mock = MockPoolBackend::at("scripted:6379", conn.get_db());
        let shared = conn.clone();
        mock.expect_shared()
            .returning(move || Ok(PooledConnection::new(shared.clone())));
        mock.expect_exclusive()
            .returning(move || Ok(PooledConnection::new(conn.clone())));
        mock.expect_state().returning(|| PoolState::new(1, 1, 0));
        mock
    }
}

mock! {
    /// A mockall mock of [`MetricsSink`]: expect the metrics a piece of code must register
    /// (`expect_counter().withf(|key| key.name() == …)`) and return handles that count
    /// (`Counter::from_arc(Arc<AtomicU64>)`) or do nothing (`Counter::noop()`). To look at
    /// values rather than calls, [`RecordingSink`](crate::sink::RecordingSink) is simpler.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use std::sync::Arc;
    /// use baseplate_redis::sink::{key, names, Counter, MetricsSink, MockMetricsSink};
    ///
    /// let requests = Arc::new(AtomicU64::new(0));
    /// let mut sink = MockMetricsSink::new();
    /// let counted = requests.clone();
    /// sink.expect_counter()
    ///     .withf(|key| key.name() == names::REQUESTS_TOTAL)
    ///     .times(1)
    ///     .returning(move |_| Counter::from_arc(counted.clone()));
    ///
    /// sink.counter(&key(names::REQUESTS_TOTAL, &[])).increment(1);
    /// assert_eq!(requests.load(Ordering::Relaxed), 1);
    /// ```
    #[derive(Debug)]
    pub MetricsSink {}

    impl MetricsSink for MetricsSink {
        fn counter(&self, key: &Key) -> Counter;
        fn gauge(&self, key: &Key) -> Gauge;
        fn histogram(&self, key: &Key) -> Histogram;
    }
}

mock! {
    /// A mockall mock of [`ContextFactory`]: hand a handler under test an object of your
    /// choosing for a context name, or check that runtime metrics are reported.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use baseplate_redis::{config::RawConfig, Baseplate, ContextSpec, MockContextFactory};
    ///
    /// let mut flags = MockContextFactory::new();
    /// flags.expect_make_object_for_context()
    ///     .returning(|_name, _span| Box::new(vec!["dark_mode".to_string()]));
    /// flags.expect_report_runtime_metrics().times(1).return_const(());
    ///
    /// let mut baseplate = Baseplate::new(RawConfig::new());
    /// baseplate.configure_context(ContextSpec::new().factory("flags", Arc::new(flags)))?;
    /// let enabled: Vec<String> = baseplate.make_context_object().get("flags")?;
    /// assert_eq!(enabled, ["dark_mode"]);
    /// baseplate.report_runtime_metrics();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[derive(Debug)]
    pub ContextFactory {}

    impl ContextFactory for ContextFactory {
        fn make_object_for_context(&self, name: &str, span: &SpanContext) -> Box<dyn Any + Send>;
        fn report_runtime_metrics(&self, sink: &dyn MetricsSink);
    }
}
