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
///
/// # Contract
///
/// - [`make_object_for_context`](Self::make_object_for_context) is called on every
///   [`RequestContext::get`] (and [`RequestContext::redis`]): once per lookup, from any
///   thread, concurrently for concurrent requests. It must be cheap and never do I/O —
///   open connections lazily, on the object's first use. The box must hold exactly the
///   type callers ask `get::<T>` for; any other type is an
///   [`Error::WrongContextObjectType`] for them.
/// - [`report_runtime_metrics`](Self::report_runtime_metrics) is called every interval by
///   the [`RuntimeReporter`] (on a tokio worker thread) and whenever
///   [`Baseplate::report_runtime_metrics`] is called, with the Baseplate's sink. It should
///   only set gauges from state it already has (no I/O, no waiting); a factory with nothing
///   to report does nothing.
///
/// A factory added through a [`ContextSpec`] (by a [`ContextParser`], or ready-made with
/// [`ContextSpec::factory`]) is asked for objects under its full dotted context name.
///
/// ```
/// use std::any::Any;
/// use std::sync::Arc;
/// use baseplate_redis::sink::{key, MetricsSink};
/// use baseplate_redis::span::{SpanContext, SpanKind};
/// use baseplate_redis::{config::RawConfig, Baseplate, ContextFactory, ContextSpec};
///
/// /// What a handler gets: a feature-flag reader whose lookups are spans of the request.
/// struct Flags { span: SpanContext, enabled: Arc<[String]> }
///
/// impl Flags {
///     fn is_on(&self, flag: &str) -> bool {
///         self.span.child("flags.is_on", SpanKind::Local).finish();
///         self.enabled.iter().any(|f| f == flag)
///     }
/// }
///
/// #[derive(Debug)]
/// struct FlagsFactory { enabled: Arc<[String]> }
///
/// impl ContextFactory for FlagsFactory {
///     fn make_object_for_context(&self, _name: &str, span: &SpanContext) -> Box<dyn Any + Send> {
///         Box::new(Flags { span: span.clone(), enabled: self.enabled.clone() })
///     }
///
///     fn report_runtime_metrics(&self, sink: &dyn MetricsSink) {
///         sink.gauge(&key("flags_enabled", &[])).set(self.enabled.len() as f64);
///     }
/// }
///
/// let mut baseplate = Baseplate::new(RawConfig::new());
/// let factory = FlagsFactory { enabled: vec!["dark_mode".to_string()].into() };
/// baseplate.configure_context(ContextSpec::new().factory("flags", Arc::new(factory)))?;
///
/// let context = baseplate.make_context_object();
/// let flags: Flags = context.get("flags")?;
/// assert!(flags.is_on("dark_mode"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait ContextFactory: Send + Sync + fmt::Debug {
    /// The object for one request: `name` is the context name (`foo`, `caches.foo`) and
    /// `span` the request's span, parent of the object's spans. Must be cheap: no I/O.
    fn make_object_for_context(&self, name: &str, span: &SpanContext) -> Box<dyn Any + Send>;

    /// Reports runtime metrics (pool size and use) to `sink`. Called periodically by the
    /// [`RuntimeReporter`], and by [`Baseplate::report_runtime_metrics`].
    fn report_runtime_metrics(&self, sink: &dyn MetricsSink);
}

/// Turns a client's configuration into its [`ContextFactory`].
/// [`RedisClient`](crate::RedisClient) and [`ClusterRedisClient`](crate::ClusterRedisClient)
/// are parsers; [`ContextSpec`] maps names to them.
///
/// # Contract
///
/// [`parse`](Self::parse) is called once per context name by
/// [`Baseplate::configure_context`], at start-up, with the full dotted context name, the
/// service's whole configuration and the Baseplate's metrics sink (the one given to
/// [`Baseplate::with_metrics_sink`], else the global `metrics` recorder's). It reads the
/// keys under `name` plus a dot, and reports a bad or missing key as a
/// [`ConfigurationError`] naming the full key (`foo.url`), so the service fails to start
/// with a message saying what to fix. It should not connect anywhere: a server that is down
/// at start-up must not stop the service; connect on first use.
///
/// ```
/// use std::sync::Arc;
/// use baseplate_redis::config::{ConfigurationError, RawConfig};
/// use baseplate_redis::sink::MetricsSink;
/// use baseplate_redis::{Baseplate, ContextFactory, ContextParser, ContextSpec};
/// use baseplate_redis::{MonitoredRedisConnection, RedisContextFactory};
///
/// /// A Redis client whose database is chosen by a key of its own, `<name>.shard`.
/// struct ShardedClient;
///
/// impl ContextParser for ShardedClient {
///     fn parse(
///         &self,
///         name: &str,
///         config: &RawConfig,
///         sink: Arc<dyn MetricsSink>,
///     ) -> Result<Arc<dyn ContextFactory>, ConfigurationError> {
///         let key = format!("{name}.shard");
///         let shard = config
///             .get(&key)
///             .ok_or_else(|| ConfigurationError::new(&key, "required key is missing"))?;
///         let db: u8 = shard
///             .parse()
///             .map_err(|_| ConfigurationError::new(&key, format!("{shard:?} is not a shard")))?;
///         let pool = Arc::new(baseplate_redis::pool::InMemoryBackend::named("shards", db.into()));
///         Ok(Arc::new(RedisContextFactory::with_options(pool, name, sink)))
///     }
/// }
///
/// let config = RawConfig::from_pairs([("users.shard", "3")]);
/// let mut baseplate = Baseplate::new(config);
/// baseplate.configure_context(ContextSpec::new().client("users", ShardedClient))?;
/// let users: MonitoredRedisConnection = baseplate.make_context_object().redis("users")?;
///
/// let err = Baseplate::new(RawConfig::new())
///     .configure_context(ContextSpec::new().client("users", ShardedClient))
///     .unwrap_err();
/// assert_eq!(err.to_string(), "users.shard: required key is missing");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait ContextParser: Send + Sync {
    /// Parses the keys under `name` plus a dot (`foo.url` for `foo`) into the client's
    /// factory, which reports its metrics to `sink`.
    fn parse(
        &self,
        name: &str,
        config: &RawConfig,
        sink: Arc<dyn MetricsSink>,
    ) -> std::result::Result<Arc<dyn ContextFactory>, ConfigurationError>;
}

/// A factory made by hand, added through a [`ContextSpec`] as it is.
struct ReadyFactory(Arc<dyn ContextFactory>);

impl ContextParser for ReadyFactory {
    fn parse(
        &self,
        _name: &str,
        _config: &RawConfig,
        _sink: Arc<dyn MetricsSink>,
    ) -> std::result::Result<Arc<dyn ContextFactory>, ConfigurationError> {
        Ok(self.0.clone())
    }
}

enum SpecEntry {
    Client(Box<dyn ContextParser>),
    Group(ContextSpec),
}

/// What [`Baseplate::configure_context`] sets up: context names mapped to clients, and named
/// groups of them (a group `caches` holding `foo` gives the context name `caches.foo`, read
/// from the keys `caches.foo.*`).
///
/// A name used twice — two clients, or a client and a group — is a [`ConfigurationError`]
/// naming it when the spec is configured.
///
/// ```
/// use baseplate_redis::{config::RawConfig, Baseplate, ContextSpec, RedisClient};
///
/// let spec = ContextSpec::new()
///     .client("foo", RedisClient::new())
///     .group("caches", ContextSpec::new().client("bar", RedisClient::new()));
/// assert_eq!(spec.names(), ["caches.bar", "foo"]);
///
/// let twice = ContextSpec::new()
///     .client("foo", RedisClient::new())
///     .client("foo", RedisClient::new());
/// let config = RawConfig::from_pairs([("foo.url", "memory://doc-spec")]);
/// let err = Baseplate::new(config).configure_context(twice).unwrap_err();
/// assert_eq!(err.key(), "foo");
/// ```
#[derive(Default)]
pub struct ContextSpec {
    // In the order given, duplicates included: they are reported, not silently replaced.
    entries: Vec<(String, SpecEntry)>,
}

impl ContextSpec {
    /// An empty spec.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a client under `name`: `parser` (a [`RedisClient`](crate::RedisClient), a
    /// [`ClusterRedisClient`](crate::ClusterRedisClient) or your own [`ContextParser`])
    /// makes its factory from the keys under `name` plus a dot.
    pub fn client(mut self, name: &str, parser: impl ContextParser + 'static) -> Self {
        self.entries
            .push((name.to_string(), SpecEntry::Client(Box::new(parser))));
        self
    }

    /// Adds a factory made by hand under `name`, as it is (no configuration key is read).
    /// To give a Redis client a backend of your own and still report to the Baseplate's
    /// sink, use [`RedisClient::with_backend`](crate::RedisClient::with_backend) instead.
    pub fn factory(self, name: &str, factory: Arc<dyn ContextFactory>) -> Self {
        self.client(name, ReadyFactory(factory))
    }

    /// Adds a group of clients under `name`.
    pub fn group(mut self, name: &str, spec: ContextSpec) -> Self {
        self.entries
            .push((name.to_string(), SpecEntry::Group(spec)));
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

    /// The first name given twice at one level (a client or group, anywhere in the tree),
    /// as a full dotted name.
    fn duplicate(&self, prefix: &str) -> Option<String> {
        let mut seen = std::collections::BTreeSet::new();
        for (name, entry) in &self.entries {
            let full = format!("{prefix}{name}");
            if !seen.insert(name.as_str()) {
                return Some(full);
            }
            if let SpecEntry::Group(group) = entry {
                if let Some(duplicate) = group.duplicate(&format!("{full}.")) {
                    return Some(duplicate);
                }
            }
        }
        None
    }
}

impl fmt::Debug for ContextSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContextSpec")
            .field("names", &self.names())
            .finish()
    }
}

fn duplicate_name(name: &str) -> ConfigurationError {
    ConfigurationError::new(
        name,
        "this context name is given twice (two clients, or a client and a group); \
         each client needs a name of its own",
    )
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

    /// Sends metrics to `sink` instead of the global `metrics` recorder.
    ///
    /// Clients take the sink when they are added, so it must be set first: once
    /// [`configure_context`](Self::configure_context) or
    /// [`add_to_context`](Self::add_to_context) has added a client, this is an
    /// [`Error::MetricsSinkAfterClients`] (rather than a sink only some metrics reach).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use baseplate_redis::sink::RecordingSink;
    /// use baseplate_redis::{config::RawConfig, Baseplate, ContextSpec, RedisClient};
    ///
    /// let config = RawConfig::from_pairs([("foo.url", "memory://doc-sink")]);
    /// let mut baseplate = Baseplate::new(config).with_metrics_sink(Arc::new(RecordingSink::new()))?;
    /// baseplate.configure_context(ContextSpec::new().client("foo", RedisClient::new()))?;
    ///
    /// let late = baseplate.with_metrics_sink(Arc::new(RecordingSink::new()));
    /// assert!(late.unwrap_err().to_string().contains("before clients are added"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_metrics_sink(mut self, sink: Arc<dyn MetricsSink>) -> Result<Self> {
        if !self.factories.is_empty() {
            return Err(Error::MetricsSinkAfterClients {
                clients: self.context_names(),
            });
        }
        self.sink = sink;
        Ok(self)
    }

    fn context_names(&self) -> String {
        let names: Vec<&str> = self.factories.keys().map(String::as_str).collect();
        names.join(", ")
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
    /// Nothing is added if any client's configuration, or `tracing.sample_rate`, is invalid,
    /// or if a name is given twice (in `spec`, or already added).
    pub fn configure_context(
        &mut self,
        spec: ContextSpec,
    ) -> std::result::Result<(), ConfigurationError> {
        self.sample_rate.clone()?;
        if let Some(name) = spec.duplicate("") {
            return Err(duplicate_name(&name));
        }
        let mut parsed = Vec::new();
        let mut failure = None;
        spec.visit("", &mut |name, parser| {
            if failure.is_some() {
                return;
            }
            if self.factories.contains_key(name) {
                failure = Some(duplicate_name(name));
                return;
            }
            match parser.parse(name, &self.config, self.sink.clone()) {
                Ok(factory) => parsed.push((name.to_string(), factory)),
                Err(err) => failure = Some(err),
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

    /// Adds an already-built factory under `name`; a name already added is a
    /// [`ConfigurationError`]. (In a [`ContextSpec`], [`ContextSpec::factory`] does the same.)
    pub fn add_to_context(
        &mut self,
        name: &str,
        factory: Arc<dyn ContextFactory>,
    ) -> std::result::Result<(), ConfigurationError> {
        self.configure_context(ContextSpec::new().factory(name, factory))
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
    /// let mut baseplate = Baseplate::new(config).with_metrics_sink(Arc::new(sink.clone()))?;
    /// baseplate.configure_context(ContextSpec::new().client("foo", RedisClient::new()))?;
    ///
    /// baseplate.report_runtime_metrics();
    /// let max = sink.gauge_value(names::POOL_MAX_SIZE, &[(names::LABEL_POOL, "foo")]);
    /// assert_eq!(max, Some(7.0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
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
                expected: public_type_name(type_name::<T>()),
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

/// `type_name`'s path of a type with our private modules left out: the path users import
/// it by (`baseplate_redis::redis::monitored::MonitoredRedisConnection` becomes
/// `baseplate_redis::MonitoredRedisConnection`, `baseplate_redis::pool::memory::InMemoryBackend`
/// becomes `baseplate_redis::pool::InMemoryBackend`). Other crates' paths are kept.
fn public_type_name(full: &str) -> String {
    const CRATE: &str = "baseplate_redis::";
    const PUBLIC_MODULES: &[&str] = &["config", "pool", "runtime", "sink", "span", "web"];
    let mut out = String::with_capacity(full.len());
    let mut rest = full;
    while let Some(at) = rest.find(CRATE) {
        out.push_str(&rest[..at + CRATE.len()]);
        rest = &rest[at + CRATE.len()..];
        let mut first = true;
        // Module segments are lower case; the type's own segment ends the path.
        while let Some((segment, tail)) = rest.split_once("::") {
            if !segment.starts_with(|c: char| c.is_ascii_lowercase()) {
                break;
            }
            if first && PUBLIC_MODULES.contains(&segment) {
                out.push_str(segment);
                out.push_str("::");
            }
            first = false;
            rest = tail;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::public_type_name;

    #[test]
    fn type_names_use_public_paths() {
        let cases = [
            (
                "baseplate_redis::redis::monitored::MonitoredRedisConnection",
                "baseplate_redis::MonitoredRedisConnection",
            ),
            (
                "baseplate_redis::pool::memory::InMemoryBackend",
                "baseplate_redis::pool::InMemoryBackend",
            ),
            (
                "core::option::Option<baseplate_redis::span::recording::RecordingObserver>",
                "core::option::Option<baseplate_redis::span::RecordingObserver>",
            ),
            ("alloc::string::String", "alloc::string::String"),
            ("my_service::Flags", "my_service::Flags"),
        ];
        for (full, public) in cases {
            assert_eq!(public_type_name(full), public);
        }
    }
}
