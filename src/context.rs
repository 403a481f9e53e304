//! The service side: [`Baseplate`], per-request [`RequestContext`]s, and the
//! [`ContextFactory`] trait that makes per-request objects such as Redis handles.

use std::any::{type_name, Any};
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::config::{ConfigurationError, RawConfig};
use crate::runtime::RuntimeReporter;
use crate::sink::{FacadeSink, MetricsSink};
use crate::span::{Observers, SampleRate, ServerSpan, Span, SpanContext, SpanObserver, TraceInfo};
use crate::{Error, MonitoredRedisConnection, Result};

/// Makes the object a request handler uses for one client, and reports the client's runtime
/// metrics. Implement it to plug your own clients into a [`Baseplate`].
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
pub trait ContextFactory: Send + Sync + fmt::Debug {
    /// The object for one request: `name` is the context name (`foo`, `caches.foo`) and
    /// `span` the request's span, parent of the object's spans. Must be cheap: no I/O.
    fn make_object_for_context(&self, name: &str, span: &SpanContext) -> Box<dyn Any + Send>;

    /// Reports runtime metrics (pool size and use) to `sink`. Called periodically by the
    /// [`RuntimeReporter`].
    fn report_runtime_metrics(&self, sink: &dyn MetricsSink);
}

/// Turns a client's configuration into its [`ContextFactory`].
/// [`RedisClient`](crate::RedisClient) is one; [`ContextSpec`] maps names to them.
pub trait ContextParser: Send + Sync {
    /// Parses the keys under `prefix` (the context name plus a dot, e.g. `foo.`). The factory
    /// reports per-command metrics to `sink`.
    fn parse(
        &self,
        name: &str,
        config: &RawConfig,
        sink: Arc<dyn MetricsSink>,
    ) -> std::result::Result<Arc<dyn ContextFactory>, ConfigurationError>;
}

enum SpecEntry {
    Client(Box<dyn ContextParser>),
    Group(ContextSpec),
}

/// What [`Baseplate::configure_context`] sets up: context names mapped to clients, and named
/// groups of them (a group `caches` holding `foo` gives the context name `caches.foo`, read
/// from the keys `caches.foo.*`).
///
/// ```
/// use baseplate_redis::{ContextSpec, RedisClient};
///
/// let spec = ContextSpec::new()
///     .client("foo", RedisClient::new())
///     .group("caches", ContextSpec::new().client("bar", RedisClient::new()));
/// assert_eq!(spec.names(), ["caches.bar", "foo"]);
/// ```
#[derive(Default)]
pub struct ContextSpec {
    entries: BTreeMap<String, SpecEntry>,
}

impl ContextSpec {
    /// An empty spec.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a client under `name`.
    pub fn client(mut self, name: &str, parser: impl ContextParser + 'static) -> Self {
        self.entries
            .insert(name.to_string(), SpecEntry::Client(Box::new(parser)));
        self
    }

    /// Adds a group of clients under `name`.
    pub fn group(mut self, name: &str, spec: ContextSpec) -> Self {
        self.entries
            .insert(name.to_string(), SpecEntry::Group(spec));
        self
    }

    /// The full (dotted) context names this spec defines, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.visit("", &mut |name, _| out.push(name.to_string()));
        out.sort();
        out
    }

    fn visit(&self, prefix: &str, f: &mut dyn FnMut(&str, &dyn ContextParser)) {
        for (name, entry) in &self.entries {
            let full = format!("{prefix}{name}");
            match entry {
                SpecEntry::Client(parser) => f(&full, parser.as_ref()),
                SpecEntry::Group(group) => group.visit(&format!("{full}."), f),
            }
        }
    }
}

impl fmt::Debug for ContextSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContextSpec")
            .field("names", &self.names())
            .finish()
    }
}

type Factories = Arc<BTreeMap<String, Arc<dyn ContextFactory>>>;

/// The root of a service: its configuration, its clients, its span observers and metrics.
///
/// Build it at start-up, then for each request make a [`RequestContext`] and a server span
/// (or let [`Baseplate::serve`] do both).
pub struct Baseplate {
    config: RawConfig,
    sink: Arc<dyn MetricsSink>,
    observers: Observers,
    factories: Factories,
    // The share of new traces sampled, or why `tracing.sample_rate` could not be read
    // (returned by `configure_context`, the start-up call that reports configuration errors).
    sample_rate: std::result::Result<SampleRate, ConfigurationError>,
}

impl Baseplate {
    /// A Baseplate over a service's raw configuration, reporting metrics to the global
    /// `metrics` recorder, sampling new traces at the rate of `tracing.sample_rate` (see
    /// [`SampleRate`]; all of them when unset). An invalid rate is reported by
    /// [`configure_context`](Self::configure_context); until then every trace is sampled.
    pub fn new(config: RawConfig) -> Self {
        let sample_rate = SampleRate::from_config(&config);
        Baseplate {
            config,
            sink: Arc::new(FacadeSink::global()),
            observers: Arc::new([]),
            factories: Arc::new(BTreeMap::new()),
            sample_rate,
        }
    }

    /// Samples new traces (requests whose caller sent no decision) at `rate` instead.
    pub fn with_sample_rate(mut self, rate: SampleRate) -> Self {
        self.sample_rate = Ok(rate);
        self
    }

    /// Sends metrics to `sink` instead (set it before `configure_context`).
    pub fn with_metrics_sink(mut self, sink: Arc<dyn MetricsSink>) -> Self {
        self.sink = sink;
        self
    }

    /// The raw configuration.
    pub fn config(&self) -> &RawConfig {
        &self.config
    }

    /// The metrics sink.
    pub fn metrics_sink(&self) -> &Arc<dyn MetricsSink> {
        &self.sink
    }

    /// Registers an observer: it sees every span started from now on.
    pub fn register(&mut self, observer: Arc<dyn SpanObserver>) {
        let mut observers: Vec<_> = self.observers.iter().cloned().collect();
        observers.push(observer);
        self.observers = observers.into();
    }

    /// Parses every client of `spec` from the configuration and adds it to the context.
    /// Nothing is added if any client's configuration, or `tracing.sample_rate`, is invalid.
    pub fn configure_context(
        &mut self,
        spec: ContextSpec,
    ) -> std::result::Result<(), ConfigurationError> {
        self.sample_rate.clone()?;
        let mut parsed = Vec::new();
        let mut failure = None;
        spec.visit("", &mut |name, parser| {
            if failure.is_none() {
                match parser.parse(name, &self.config, self.sink.clone()) {
                    Ok(factory) => parsed.push((name.to_string(), factory)),
                    Err(err) => failure = Some(err),
                }
            }
        });
        if let Some(err) = failure {
            return Err(err);
        }
        let mut factories = (*self.factories).clone();
        factories.extend(parsed);
        self.factories = Arc::new(factories);
        Ok(())
    }

    /// Adds an already-built factory under `name`.
    pub fn add_to_context(&mut self, name: &str, factory: Arc<dyn ContextFactory>) {
        let mut factories = (*self.factories).clone();
        factories.insert(name.to_string(), factory);
        self.factories = Arc::new(factories);
    }

    /// The registered factories, by context name.
    pub fn factories(&self) -> impl Iterator<Item = (&str, &Arc<dyn ContextFactory>)> {
        self.factories.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// A new request context, not yet inside a span (its objects' spans have no observers
    /// until [`make_server_span`](Self::make_server_span) is called on it).
    pub fn make_context_object(&self) -> RequestContext {
        RequestContext {
            factories: self.factories.clone(),
            span: SpanContext::detached(),
        }
    }

    /// Starts the server span of a request and makes `context`'s objects its children.
    /// `trace` carries the caller's trace ids; `None` starts a new trace. The request is
    /// sampled as the caller decided, or else at the [`SampleRate`].
    pub fn make_server_span(
        &self,
        context: &mut RequestContext,
        name: &str,
        trace: Option<TraceInfo>,
    ) -> ServerSpan {
        let trace = trace.unwrap_or_else(TraceInfo::new_root);
        let sampled = trace
            .sampled
            .unwrap_or_else(|| self.sample_rate.as_ref().map_or(true, |rate| rate.sample()));
        // Each sampled request gets its own copy of the (short) observer list: every span
        // of the request clones it, and a list shared by all requests would bounce its
        // reference count between cores on every Redis command.
        let observers: Observers = match (sampled, self.observers.is_empty()) {
            (_, true) => self.observers.clone(),
            // An unsampled request reports nothing: it holds no observer.
            (false, false) => Arc::new([]),
            (true, false) => self.observers.iter().cloned().collect(),
        };
        let span = Span::server(name, trace.with_sampled(sampled), observers);
        context.span = span.context().clone();
        span
    }

    /// Runs `handler` for one request: makes the context and server span, and finishes the
    /// span with the handler's error, if any.
    ///
    /// ```
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// use baseplate_redis::{config::RawConfig, Baseplate, ContextSpec, RedisClient};
    /// use redis::AsyncCommands;
    ///
    /// let config = RawConfig::from_pairs([("foo.url", "memory://doc-serve")]);
    /// let mut baseplate = Baseplate::new(config);
    /// baseplate.configure_context(ContextSpec::new().client("foo", RedisClient::new()))?;
    ///
    /// let pong: String = baseplate
    ///     .serve("ping_handler", None, async |context| {
    ///         let mut foo = context.redis("foo")?;
    ///         let pong: String = redis::cmd("PING").query_async(&mut foo).await?;
    ///         Ok::<_, baseplate_redis::Error>(pong)
    ///     })
    ///     .await?;
    /// assert_eq!(pong, "PONG");
    /// # Ok(()) }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(run()).unwrap();
    /// ```
    pub async fn serve<T, E, F, Fut>(
        &self,
        name: &str,
        trace: Option<TraceInfo>,
        handler: F,
    ) -> std::result::Result<T, E>
    where
        F: FnOnce(RequestContext) -> Fut,
        Fut: Future<Output = std::result::Result<T, E>>,
        E: std::error::Error,
    {
        let mut context = self.make_context_object();
        let span = self.make_server_span(&mut context, name, trace);
        let result = handler(context).await;
        span.finish_with(&result);
        result
    }

    /// Starts the periodic runtime-metrics reporter over every registered factory (pool
    /// size and use, every `interval`; 10 s is the usual choice). It stops when the
    /// returned handle is dropped or shut down. Needs a tokio runtime.
    pub fn start_runtime_reporter(&self, interval: Duration) -> RuntimeReporter {
        RuntimeReporter::start(self.factories.clone(), self.sink.clone(), interval)
    }

    /// Reports the runtime metrics (pool size and use) of every registered factory to the
    /// metrics sink, now. Call it when `/metrics` is scraped to export fresh pool numbers,
    /// with or without the periodic [`start_runtime_reporter`](Self::start_runtime_reporter).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use baseplate_redis::sink::{names, RecordingSink};
    /// use baseplate_redis::{config::RawConfig, Baseplate, ContextSpec, RedisClient};
    ///
    /// let sink = RecordingSink::new();
    /// let config = RawConfig::from_pairs([
    ///     ("foo.url", "memory://doc-report"),
    ///     ("foo.max_connections", "7"),
    /// ]);
    /// let mut baseplate = Baseplate::new(config).with_metrics_sink(Arc::new(sink.clone()));
    /// baseplate.configure_context(ContextSpec::new().client("foo", RedisClient::new()))?;
    ///
    /// baseplate.report_runtime_metrics();
    /// let max = sink.gauge_value(names::POOL_MAX_SIZE, &[(names::LABEL_POOL, "foo")]);
    /// assert_eq!(max, Some(7.0));
    /// # Ok::<(), baseplate_redis::ConfigurationError>(())
    /// ```
    pub fn report_runtime_metrics(&self) {
        crate::runtime::report_all(&self.factories, self.sink.as_ref());
    }
}

impl fmt::Debug for Baseplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Baseplate")
            .field("config", &self.config)
            .field("sink", &self.sink)
            .field("observers", &self.observers.len())
            .field("factories", &self.factories)
            .finish()
    }
}

/// One request's view of the service's clients: ask it for the object of a context name.
///
/// Made by [`Baseplate::make_context_object`] (or [`Baseplate::serve`]); in an axum
/// service, the `web` module's layer (feature `axum`) makes one per HTTP request and
/// handlers take it as an argument. Cloning it is cheap; clones share the request's span.
///
/// ```
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use baseplate_redis::{config::RawConfig, Baseplate, ContextSpec, RedisClient};
/// use redis::AsyncCommands;
///
/// let config = RawConfig::from_pairs([("foo.url", "memory://doc-request-context")]);
/// let mut baseplate = Baseplate::new(config);
/// baseplate.configure_context(ContextSpec::new().client("foo", RedisClient::new()))?;
///
/// let mut context = baseplate.make_context_object();
/// let span = baseplate.make_server_span(&mut context, "handler", None);
/// let mut foo = context.redis("foo")?;
/// let _: () = foo.set("k", 1).await?;
/// assert!(context.redis("bar").unwrap_err().to_string().contains("bar"));
/// span.finish();
/// # Ok(()) }
/// # tokio::runtime::Runtime::new().unwrap().block_on(run()).unwrap();
/// ```
#[derive(Clone)]
pub struct RequestContext {
    factories: Factories,
    span: SpanContext,
}

impl RequestContext {
    /// The object the factory named `name` makes for this request, as a `T`.
    pub fn get<T: Any>(&self, name: &str) -> Result<T> {
        let factory = self
            .factories
            .get(name)
            .ok_or_else(|| Error::UnknownContextObject {
                name: name.to_string(),
                configured: self
                    .factories
                    .keys()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
        factory
            .make_object_for_context(name, &self.span)
            .downcast::<T>()
            .map(|object| *object)
            .map_err(|_| Error::WrongContextObjectType {
                name: name.to_string(),
                expected: type_name::<T>(),
            })
    }

    /// The Redis handle named `name` (cheap: no connection is opened to make it).
    pub fn redis(&self, name: &str) -> Result<MonitoredRedisConnection> {
        self.get(name)
    }

    /// The request's span, parent of every object's spans.
    pub fn span(&self) -> &SpanContext {
        &self.span
    }
}

impl fmt::Debug for RequestContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestContext")
            .field("objects", &self.factories.keys().collect::<Vec<_>>())
            .field("span", &self.span)
            .finish()
    }
}
