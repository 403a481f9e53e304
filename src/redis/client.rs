//! `RedisClient` and `pool_from_config`: a standalone client from configuration keys.

use crate::telemetry::TelemetryOptions;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::client_cache::ClientCacheOptions;
use super::factory::RedisContextFactory;
use super::pool_choice::PoolChoice;
use crate::config::{
    from_config_checked, ConfigurationError, RawConfig, RedisUrl, Timespan, UnknownKeys, UrlKind,
};
use crate::context::{ContextFactory, ContextParser};
use crate::pool::{
    ConnectionLifecycle, InMemoryBackend, MobcBackend, PoolBackend, PoolOptions, SentinelBackend,
    TlsOptions,
};
use crate::sink::MetricsSink;

/// The most connections one client may be configured to open. Redis itself accepts 10,000
/// clients by default; a larger pool is a typo.
pub const MAX_CONNECTIONS_LIMIT: u32 = 10_000;

/// Rejects a `max_connections` above [`MAX_CONNECTIONS_LIMIT`] (zero is already rejected by
/// its type).
pub(crate) fn check_max_connections(
    prefix: &str,
    max_connections: Option<NonZeroU32>,
) -> Result<(), ConfigurationError> {
    match max_connections {
        Some(n) if n.get() > MAX_CONNECTIONS_LIMIT => Err(ConfigurationError::new(
            format!("{prefix}max_connections"),
            format!("{n} is too many connections (at most {MAX_CONNECTIONS_LIMIT})"),
        )),
        _ => Ok(()),
    }
}

/// The `redis_client_name` metric label, with baseplate.py's precedence: the
/// `redis_client_name` given to the client, else its `client_name`, else (where baseplate.py
/// leaves the label empty) the context name. Empty names count as not given.
pub(crate) fn metric_label<'a>(
    redis_client_name: Option<&'a str>,
    client_name: Option<&'a str>,
    context_name: &'a str,
) -> &'a str {
    [redis_client_name, client_name]
        .into_iter()
        .flatten()
        .find(|name| !name.is_empty())
        .unwrap_or(context_name)
}

/// The keys of a standalone client, under its prefix (`foo.url`, `foo.max_connections`…):
/// those of baseplate.py's `pool_from_config` (`url`, `max_connections`,
/// `socket_connect_timeout`, `socket_timeout`) and ours. Other keys under the prefix are
/// ignored with a warning (or refused, see [`UnknownKeys`]).
#[derive(Debug, Clone, Deserialize)]
#[non_exhaustive]
pub struct RedisClientConfig {
    /// `redis://[user:pass@]host[:port][/db]`, `rediss://…` (TLS), `unix:///path?db=N`,
    /// `redis+sentinel://[user:pass@]host:port[,host:port…]/service[/db]` (the primary the
    /// sentinels name), or `memory://[name][/db]` for the in-process backend. Required.
    pub url: RedisUrl,
    /// The most sockets the client opens (default 50).
    pub max_connections: Option<NonZeroU32>,
    /// How long the TCP connect of a new connection may take (default 5 seconds).
    pub socket_connect_timeout: Option<Timespan>,
    /// How long a command may wait for its reply (default: no limit); it also bounds the
    /// handshake of a new connection. Blocking commands (BLPOP…) get their own timeout on top.
    pub socket_timeout: Option<Timespan>,
    /// The most a caller waits for a connection, in total (default 5 seconds).
    pub pool_timeout: Option<Timespan>,
    /// TCP keepalive idle time (default 10 seconds; `0 seconds` turns keepalive off): a dead
    /// peer is found within 2.5 times this, even without a `socket_timeout`.
    pub tcp_keepalive: Option<Timespan>,
    /// Sent with `CLIENT SETNAME` on each new connection.
    pub client_name: Option<String>,
    /// `rediss://` only: a PEM file of the CA certificates the server's certificate must
    /// chain to (default: the system's root CAs).
    pub tls_ca_file: Option<String>,
    /// `rediss://` only: a PEM file with the client certificate chain, for servers that
    /// ask for one (`tls_key_file` too).
    pub tls_cert_file: Option<String>,
    /// `rediss://` only: a PEM file with the private key of `tls_cert_file`.
    pub tls_key_file: Option<String>,
    /// Client-side caching of GET, MGET and HGET replies, invalidated by the server
    /// (RESP3 `CLIENT TRACKING`, Redis 6 or later). Off by default.
    pub client_cache: Option<bool>,
    /// The most keys the client-side cache holds (default 10,000); least recently used go
    /// first.
    pub client_cache_max_keys: Option<NonZeroU32>,
    /// The longest a value stays in the client-side cache (default 60 seconds).
    pub client_cache_ttl: Option<Timespan>,
}

impl RedisClientConfig {
    /// Reads and checks the keys under `prefix` (which must end with a dot); other keys under
    /// it are ignored, each with a warning naming the closest known key.
    pub fn from_config(config: &RawConfig, prefix: &str) -> Result<Self, ConfigurationError> {
        Self::from_config_with(config, prefix, UnknownKeys::Warn)
    }

    /// Reads and checks the keys under `prefix`, dealing with other keys under it as
    /// `unknown_keys` says.
    pub fn from_config_with(
        config: &RawConfig,
        prefix: &str,
        unknown_keys: UnknownKeys,
    ) -> Result<Self, ConfigurationError> {
        let parsed: RedisClientConfig = from_config_checked(config, prefix, unknown_keys)?;
        check_max_connections(prefix, parsed.max_connections)?;
        Ok(parsed)
    }

    /// The client-side cache these keys ask for; `None` when `client_cache` is off.
    pub fn client_cache_options(&self) -> Option<ClientCacheOptions> {
        if self.client_cache != Some(true) {
            return None;
        }
        let defaults = ClientCacheOptions::default();
        Some(
            defaults
                .max_keys(
                    self.client_cache_max_keys
                        .map_or(defaults.max_keys, NonZeroU32::get),
                )
                .ttl(self.client_cache_ttl.map_or(defaults.ttl, Duration::from)),
        )
    }

    /// The pool settings these keys describe.
    pub fn pool_options(&self) -> PoolOptions {
        let defaults = PoolOptions::default();
        PoolOptions::default()
            .max_connections(
                self.max_connections
                    .map_or(defaults.max_connections, NonZeroU32::get),
            )
            .connect_timeout(self.socket_connect_timeout.map(Duration::from))
            .socket_timeout(self.socket_timeout.map(Duration::from))
            .pool_timeout(
                self.pool_timeout
                    .map_or(defaults.pool_timeout, Duration::from),
            )
            .client_name(self.client_name.clone())
            .tcp_keepalive(
                self.tcp_keepalive
                    .map_or(defaults.tcp_keepalive, |idle| Some(idle.into()))
                    .filter(|idle| !idle.is_zero()),
            )
    }
}

/// Makes the connection pool the keys under `prefix` describe: the mobc-backed pool for
/// `redis://`, `rediss://` and `unix://` URLs, the sentinel-following pool for
/// `redis+sentinel://` URLs, the in-memory backend for `memory://`.
///
/// No connection is opened here; the first command opens one.
///
/// ```
/// use baseplate_redis::{config::RawConfig, pool_from_config};
///
/// let config = RawConfig::from_pairs([
///     ("noodle.url", "redis://localhost:6379/3"),
///     ("noodle.max_connections", "10"),
/// ]);
/// let pool = pool_from_config(&config, "noodle.").unwrap();
/// assert_eq!(pool.database(), 3);
/// assert_eq!(pool.state().max_size, 10);
///
/// let err = pool_from_config(&RawConfig::new(), "foo.").unwrap_err();
/// assert_eq!(err.key(), "foo.url");
/// ```
pub fn pool_from_config(
    config: &RawConfig,
    prefix: &str,
) -> Result<Arc<dyn PoolBackend>, ConfigurationError> {
    let parsed = RedisClientConfig::from_config(config, prefix)?;
    pool_from_parsed(&parsed, prefix, None)
}

fn pool_from_parsed(
    parsed: &RedisClientConfig,
    prefix: &str,
    lifecycle: Option<Arc<ConnectionLifecycle>>,
) -> Result<Arc<dyn PoolBackend>, ConfigurationError> {
    let url_key = format!("{prefix}url");
    let options = parsed.pool_options().lifecycle(lifecycle);
    if let UrlKind::Memory { name } = parsed.url.scheme_kind() {
        return Ok(Arc::new(
            InMemoryBackend::named(&name, parsed.url.db()).with_max_size(options.max_connections),
        ));
    }
    let options = options.tls(tls_options(parsed, prefix)?);
    if let UrlKind::Sentinel { .. } = parsed.url.scheme_kind() {
        let backend = SentinelBackend::new(&parsed.url, options)
            .map_err(|e| ConfigurationError::new(&url_key, e.to_string()))?;
        return Ok(Arc::new(backend));
    }
    let info = parsed
        .url
        .to_connection_info()
        .map_err(|e| ConfigurationError::new(&url_key, e.to_string()))?;
    let backend = MobcBackend::new(info, &parsed.url.address(), options)
        .map_err(|e| ConfigurationError::new(&url_key, e.to_string()))?;
    Ok(Arc::new(backend))
}

/// Reads the certificate files the `tls_*` keys name; `None` when none is set.
fn tls_options(
    parsed: &RedisClientConfig,
    prefix: &str,
) -> Result<Option<TlsOptions>, ConfigurationError> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let files = [
        ("tls_ca_file", &parsed.tls_ca_file),
        ("tls_cert_file", &parsed.tls_cert_file),
        ("tls_key_file", &parsed.tls_key_file),
    ];
    let Some((first, _)) = files.iter().find(|(_, path)| path.is_some()) else {
        return Ok(None);
    };
    if !matches!(parsed.url.scheme_kind(), UrlKind::Tcp { tls: true, .. }) {
        return Err(ConfigurationError::new(
            format!("{prefix}{first}"),
            "TLS certificate files need a rediss:// URL",
        ));
    }
    let read = |key: &str, path: &str| {
        std::fs::read(path).map_err(|e| {
            ConfigurationError::new(format!("{prefix}{key}"), format!("cannot read {path}: {e}"))
        })
    };
    let certificates = |key: &str, path: &str| {
        let pem = read(key, path)?;
        let parsed: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(&pem).collect();
        match parsed {
            Ok(certs) if !certs.is_empty() => Ok(pem),
            Ok(_) => Err(ConfigurationError::new(
                format!("{prefix}{key}"),
                format!("{path} holds no PEM certificate"),
            )),
            Err(e) => Err(ConfigurationError::new(
                format!("{prefix}{key}"),
                format!("{path} is not a valid PEM certificate file: {e}"),
            )),
        }
    };
    let mut tls = TlsOptions::new();
    if let Some(path) = &parsed.tls_ca_file {
        tls = tls.root_certs(certificates("tls_ca_file", path)?);
    }
    match (&parsed.tls_cert_file, &parsed.tls_key_file) {
        (Some(cert), Some(key)) => {
            let cert = certificates("tls_cert_file", cert)?;
            let key_pem = read("tls_key_file", key)?;
            // Never echo the key's bytes: only say that it does not parse.
            if PrivateKeyDer::from_pem_slice(&key_pem).is_err() {
                return Err(ConfigurationError::new(
                    format!("{prefix}tls_key_file"),
                    format!("{key} holds no PEM private key"),
                ));
            }
            tls = tls.client_auth(cert, key_pem);
        }
        (Some(_), None) => {
            return Err(ConfigurationError::new(
                format!("{prefix}tls_key_file"),
                "required when tls_cert_file is set",
            ))
        }
        (None, Some(_)) => {
            return Err(ConfigurationError::new(
                format!("{prefix}tls_cert_file"),
                "required when tls_key_file is set",
            ))
        }
        (None, None) => {}
    }
    Ok(Some(tls))
}

/// Declares a standalone Redis client in [`ContextSpec`](crate::ContextSpec): its keys are
/// read from the context name's prefix, and each request gets a
/// [`MonitoredRedisConnection`](crate::MonitoredRedisConnection).
///
/// The `redis_client_name` label of its metrics is, as in baseplate.py,
/// [`redis_client_name`](Self::redis_client_name) if given, else the client name
/// ([`client_name`](Self::client_name) or the `client_name` key), else the context name.
///
/// The pool the keys describe can be wrapped ([`map_pool`](Self::map_pool)) or replaced
/// ([`with_backend`](Self::with_backend)) by a [`PoolBackend`] of your own; either way the
/// client keeps its name, spans, metrics and the Baseplate's metrics sink.
///
/// ```
/// use std::sync::Arc;
/// use baseplate_redis::pool::{InMemoryBackend, PoolBackend};
/// use baseplate_redis::{config::RawConfig, Baseplate, ContextSpec, RedisClient};
///
/// let config = RawConfig::from_pairs([
///     ("foo.url", "memory://doc-client"),
///     ("foo.max_connections", "8"),
/// ]);
/// let mut baseplate = Baseplate::new(config);
/// baseplate.configure_context(
///     ContextSpec::new()
///         // The pool made from `foo.*`, seen (or wrapped) before the client uses it.
///         .client("foo", RedisClient::new().map_pool(|pool| {
///             assert_eq!(pool.state().max_size, 8);
///             pool
///         }))
///         // A backend made by hand: no `bar.*` key is read.
///         .client("bar", RedisClient::with_backend(Arc::new(InMemoryBackend::new()))),
/// )?;
/// # Ok::<(), baseplate_redis::ConfigurationError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct RedisClient {
    client_name: Option<String>,
    redis_client_name: Option<String>,
    unknown_keys: UnknownKeys,
    telemetry: TelemetryOptions,
    pool: PoolChoice,
}

impl RedisClient {
    /// A client configured entirely from its keys.
    pub fn new() -> Self {
        Self::default()
    }

    /// A client over `pool`, a backend made by hand (your own [`PoolBackend`], or one of
    /// the crate's): none of its keys is read, not even `url`. Its handles are named after
    /// the context name and report to the Baseplate's metrics sink, like any client's.
    pub fn with_backend(pool: Arc<dyn PoolBackend>) -> Self {
        RedisClient {
            pool: PoolChoice::given(pool),
            ..Self::default()
        }
    }

    /// Sends `CLIENT SETNAME name` on every connection (the `client_name` key wins if set);
    /// also the `redis_client_name` label unless [`redis_client_name`](Self::redis_client_name)
    /// is given. Not sent with [`with_backend`](Self::with_backend), whose pool is made.
    pub fn client_name(mut self, name: impl Into<String>) -> Self {
        self.client_name = Some(name.into());
        self
    }

    /// The `redis_client_name` label of the client's metrics, without sending `CLIENT
    /// SETNAME` (for proxies that refuse it), as baseplate.py's
    /// `RedisClient(redis_client_name=…)`.
    pub fn redis_client_name(mut self, name: impl Into<String>) -> Self {
        self.redis_client_name = Some(name.into());
        self
    }

    /// What to do with keys under the client's prefix that it does not read: warn (the
    /// default, as baseplate.py ignores them) or refuse ([`UnknownKeys::Deny`], strict).
    pub fn unknown_keys(mut self, unknown_keys: UnknownKeys) -> Self {
        self.unknown_keys = unknown_keys;
        self
    }

    /// Reports as `telemetry` says (OpenTelemetry metric names, `db.query.text`); see
    /// [`RedisContextFactory::with_telemetry`].
    pub fn telemetry(mut self, telemetry: TelemetryOptions) -> Self {
        self.telemetry = telemetry;
        self
    }

    /// Passes the client's pool (made from its keys, or given to
    /// [`with_backend`](Self::with_backend)) through `map` before the client uses it: return
    /// a wrapper around it (fault injection, extra logging, a cache…) or another pool.
    /// Called once, when the Baseplate parses the client; several maps apply in order.
    pub fn map_pool(
        mut self,
        map: impl Fn(Arc<dyn PoolBackend>) -> Arc<dyn PoolBackend> + Send + Sync + 'static,
    ) -> Self {
        self.pool.push_map(map);
        self
    }
}

impl ContextParser for RedisClient {
    fn parse(
        &self,
        name: &str,
        config: &RawConfig,
        sink: Arc<dyn MetricsSink>,
    ) -> Result<Arc<dyn ContextFactory>, ConfigurationError> {
        let prefix = format!("{name}.");
        let naming = self.telemetry.metric_naming;
        let mut client_name = self.client_name.clone();
        let mut cache = None;
        let pool = self.pool.pool(|| {
            let mut parsed =
                RedisClientConfig::from_config_with(config, &prefix, self.unknown_keys)?;
            if parsed.client_name.is_none() {
                parsed.client_name = self.client_name.clone();
            }
            client_name = parsed.client_name.clone();
            // In-process data needs no cache in front of it.
            if !matches!(parsed.url.scheme_kind(), UrlKind::Memory { .. }) {
                cache = parsed.client_cache_options();
            }
            let lifecycle = ConnectionLifecycle::new(sink.clone(), name, naming);
            pool_from_parsed(&parsed, &prefix, Some(Arc::new(lifecycle)))
        })?;
        let label = metric_label(
            self.redis_client_name.as_deref(),
            client_name.as_deref(),
            name,
        );
        let factory = RedisContextFactory::with_options(pool, name, sink)
            .with_redis_client_name(label)
            .with_telemetry(self.telemetry);
        let factory = match cache {
            Some(options) => factory.with_client_cache(options),
            None => factory,
        };
        Ok(Arc::new(factory))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_label_follows_the_original_precedence() {
        assert_eq!(metric_label(Some("label"), Some("setname"), "foo"), "label");
        assert_eq!(metric_label(None, Some("setname"), "foo"), "setname");
        assert_eq!(metric_label(Some(""), Some("setname"), "foo"), "setname");
        assert_eq!(metric_label(Some(""), Some(""), "foo"), "foo");
        assert_eq!(metric_label(None, None, "foo"), "foo");
    }

    #[test]
    fn keys_outside_the_spec_warn_or_fail_in_strict_mode() {
        let config = RawConfig::from_pairs([
            ("foo.url", "redis://h:1/2"),
            ("foo.health_check_interval", "5"),
            ("foo.key_prefix", "x:"),
            ("foo.socket_timout", "1 second"),
        ]);
        let parsed = RedisClientConfig::from_config(&config, "foo.").unwrap();
        assert_eq!(parsed.url.db(), 2);
        assert_eq!(parsed.socket_timeout, None);
        assert!(pool_from_config(&config, "foo.").is_ok());
        let err =
            RedisClientConfig::from_config_with(&config, "foo.", UnknownKeys::Deny).unwrap_err();
        assert_eq!(err.key(), "foo.health_check_interval");
        let typo = RawConfig::from_pairs([("foo.url", "redis://h"), ("foo.socket_timout", "1")]);
        let err =
            RedisClientConfig::from_config_with(&typo, "foo.", UnknownKeys::Deny).unwrap_err();
        assert_eq!(err.key(), "foo.socket_timout");
        assert!(
            err.reason().contains("did you mean foo.socket_timeout?"),
            "{err}"
        );
    }

    fn keepalive(value: Option<&str>) -> Option<Duration> {
        let mut config = RawConfig::from_pairs([("foo.url", "redis://localhost:6379/0")]);
        if let Some(value) = value {
            config.insert("foo.tcp_keepalive".to_string(), value);
        }
        RedisClientConfig::from_config(&config, "foo.")
            .unwrap()
            .pool_options()
            .tcp_keepalive
    }

    #[test]
    fn tcp_keepalive_is_on_by_default_configurable_and_zero_turns_it_off() {
        assert_eq!(keepalive(None), Some(crate::pool::DEFAULT_TCP_KEEPALIVE));
        assert_eq!(keepalive(Some("30 seconds")), Some(Duration::from_secs(30)));
        assert_eq!(keepalive(Some("0 seconds")), None);
        let mut config = RawConfig::from_pairs([("foo.url", "redis://localhost:6379/0")]);
        config.insert("foo.tcp_keepalive".to_string(), "often");
        let err = RedisClientConfig::from_config(&config, "foo.").unwrap_err();
        assert_eq!(err.key(), "foo.tcp_keepalive");
    }
}
