//! `ClusterRedisClient` and `cluster_pool_from_config`: a Redis Cluster client from
//! configuration keys, with the same per-request handle as the standalone client.

use crate::pool::ConnectionLifecycle;
use crate::telemetry::TelemetryOptions;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::client::{check_max_connections, metric_label};
use super::factory::RedisContextFactory;
use super::pool_choice::PoolChoice;
use crate::config::{
    from_config_checked, ConfigurationError, RawConfig, RedisUrl, Timespan, UnknownKeys, UrlKind,
};
use crate::context::{ContextFactory, ContextParser};
use crate::pool::{ClusterBackend, ClusterOptions, PoolBackend};
use crate::sink::{names, MetricsSink};

/// The keys of a cluster client, under its prefix (`foo.url`, `foo.max_connections`…): every
/// key of baseplate.py's `cluster_pool_from_config`. Other keys under the prefix are ignored
/// with a warning (or refused, see [`UnknownKeys`]).
#[derive(Debug, Clone, Deserialize)]
#[non_exhaustive]
pub struct ClusterRedisClientConfig {
    /// A seed node, `redis://[user:pass@]host[:port][/0]` or `rediss://…`: the rest of the
    /// cluster is discovered from it. Required.
    pub url: RedisUrl,
    /// The most sockets the client opens, in total (default 50; see
    /// `max_connections_per_node`).
    pub max_connections: Option<NonZeroU32>,
    /// Whether `max_connections` applies per node instead of in total (default false).
    pub max_connections_per_node: Option<bool>,
    /// How long connecting to a node may take (default `timeout`, else 5 seconds).
    pub socket_connect_timeout: Option<Timespan>,
    /// How long one attempt of a command may wait for its reply (default `timeout`, else no
    /// limit). Blocking commands get their own timeout on top.
    pub socket_timeout: Option<Timespan>,
    /// How long a caller waits for a free dedicated connection (default 5 seconds); also the
    /// default of both socket timeouts.
    pub timeout: Option<Timespan>,
    /// Whether read commands may be served by replicas (default true).
    pub read_from_replicas: Option<bool>,
    /// Whether to skip checking that every hash slot is served when connecting (default
    /// true).
    pub skip_full_coverage_check: Option<bool>,
    /// The share (0 to 1) of read commands whose keys are counted in the sorted set
    /// `baseplate-hot-key-tracker-reads` (default 0: off).
    pub track_key_reads_sample_rate: Option<f64>,
    /// The share (0 to 1) of write commands whose keys are counted in the sorted set
    /// `baseplate-hot-key-tracker-writes` (default 0: off).
    pub track_key_writes_sample_rate: Option<f64>,
    /// Accepted for baseplate.py's INI files, with no effect: baseplate.py passes it to
    /// redis-py-cluster's node manager, while the nodes here are always the ones the cluster
    /// itself reports, refreshed after redirections and failovers.
    pub nodemanager_follow_cluster: Option<bool>,
    /// Accepted for baseplate.py's INI files, with no effect: replies are decoded into
    /// whatever type the caller asks for (`String`, `Vec<u8>`…), not by a client setting.
    pub decode_responses: Option<bool>,
}

impl ClusterRedisClientConfig {
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
        let parsed: ClusterRedisClientConfig = from_config_checked(config, prefix, unknown_keys)?;
        check_max_connections(prefix, parsed.max_connections)?;
        for (key, rate) in [
            (
                "track_key_reads_sample_rate",
                parsed.track_key_reads_sample_rate,
            ),
            (
                "track_key_writes_sample_rate",
                parsed.track_key_writes_sample_rate,
            ),
        ] {
            if let Some(rate) = rate {
                if !(0.0..=1.0).contains(&rate) {
                    return Err(ConfigurationError::new(
                        format!("{prefix}{key}"),
                        format!("a sample rate is between 0 and 1, got {rate}"),
                    ));
                }
            }
        }
        match parsed.url.scheme_kind() {
            UrlKind::Tcp { .. } if parsed.url.db() == 0 => {}
            UrlKind::Tcp { .. } => {
                return Err(ConfigurationError::new(
                    format!("{prefix}url"),
                    format!(
                        "a cluster has only database 0, the URL names database {}",
                        parsed.url.db()
                    ),
                ))
            }
            _ => {
                return Err(ConfigurationError::new(
                    format!("{prefix}url"),
                    "a cluster seed node is a redis:// or rediss:// URL",
                ))
            }
        }
        Ok(parsed)
    }

    /// The backend settings these keys describe.
    pub fn cluster_options(&self) -> ClusterOptions {
        let defaults = ClusterOptions::default();
        let timeout = self.timeout.map(Duration::from);
        ClusterOptions::default()
            .max_connections(
                self.max_connections
                    .map_or(defaults.max_connections, NonZeroU32::get),
            )
            .max_connections_per_node(
                self.max_connections_per_node
                    .unwrap_or(defaults.max_connections_per_node),
            )
            .connect_timeout(self.socket_connect_timeout.map(Duration::from).or(timeout))
            .socket_timeout(self.socket_timeout.map(Duration::from).or(timeout))
            .pool_timeout(timeout.unwrap_or(defaults.pool_timeout))
            .read_from_replicas(
                self.read_from_replicas
                    .unwrap_or(defaults.read_from_replicas),
            )
            .skip_full_coverage_check(
                self.skip_full_coverage_check
                    .unwrap_or(defaults.skip_full_coverage_check),
            )
            .track_key_sample_rates(
                self.track_key_reads_sample_rate.unwrap_or(0.0),
                self.track_key_writes_sample_rate.unwrap_or(0.0),
            )
    }
}

/// Makes the cluster connection pool the keys under `prefix` describe.
///
/// No connection is opened here; the first command opens one.
///
/// ```
/// use baseplate_redis::{config::RawConfig, cluster_pool_from_config};
///
/// let config = RawConfig::from_pairs([
///     ("cache.url", "redis://10.0.0.1:7000"),
///     ("cache.max_connections", "60"),
///     ("cache.read_from_replicas", "false"),
/// ]);
/// let pool = cluster_pool_from_config(&config, "cache.").unwrap();
/// assert_eq!(pool.database(), 0);
/// assert_eq!(pool.state().max_size, 60);
///
/// let config = RawConfig::from_pairs([
///     ("cache.url", "redis://10.0.0.1:7000"),
///     ("cache.track_key_reads_sample_rate", "1.5"),
/// ]);
/// let err = cluster_pool_from_config(&config, "cache.").unwrap_err();
/// assert_eq!(err.key(), "cache.track_key_reads_sample_rate");
/// ```
pub fn cluster_pool_from_config(
    config: &RawConfig,
    prefix: &str,
) -> Result<Arc<dyn PoolBackend>, ConfigurationError> {
    let parsed = ClusterRedisClientConfig::from_config(config, prefix)?;
    pool_from_parsed(&parsed, prefix, None)
}

fn pool_from_parsed(
    parsed: &ClusterRedisClientConfig,
    prefix: &str,
    lifecycle: Option<Arc<ConnectionLifecycle>>,
) -> Result<Arc<dyn PoolBackend>, ConfigurationError> {
    let options = parsed.cluster_options().lifecycle(lifecycle);
    let backend = ClusterBackend::new(&parsed.url, options)
        .map_err(|e| ConfigurationError::new(format!("{prefix}url"), e.to_string()))?;
    Ok(Arc::new(backend))
}

/// Declares a Redis Cluster client in [`ContextSpec`](crate::ContextSpec): its keys are read
/// from the context name's prefix, and each request gets a
/// [`MonitoredRedisConnection`](crate::MonitoredRedisConnection) — the same handle as the
/// standalone client's, with the same spans, and metrics labelled `redis_type="cluster"`.
/// Its pipelines are plain pipelines, not transactions, as in baseplate.py.
///
/// The `redis_client_name` label of its metrics is, as for [`RedisClient`](crate::RedisClient),
/// [`redis_client_name`](Self::redis_client_name) if given, else
/// [`client_name`](Self::client_name), else the context name.
///
/// As with [`RedisClient`](crate::RedisClient), the pool can be wrapped
/// ([`map_pool`](Self::map_pool)) or replaced ([`with_backend`](Self::with_backend)).
#[derive(Debug, Clone, Default)]
pub struct ClusterRedisClient {
    client_name: Option<String>,
    redis_client_name: Option<String>,
    unknown_keys: UnknownKeys,
    telemetry: TelemetryOptions,
    pool: PoolChoice,
}

impl ClusterRedisClient {
    /// A client configured entirely from its keys.
    pub fn new() -> Self {
        Self::default()
    }

    /// The `redis_client_name` label of the client's metrics unless
    /// [`redis_client_name`](Self::redis_client_name) is given, as baseplate.py's
    /// `client_name` argument. Unlike there, cluster connections send no `CLIENT SETNAME`:
    /// redis-rs's cluster client has no way to send it on the connections it opens.
    pub fn client_name(mut self, name: impl Into<String>) -> Self {
        self.client_name = Some(name.into());
        self
    }

    /// The `redis_client_name` label of the client's metrics, as baseplate.py's
    /// `redis_client_name` (cluster connections send no `CLIENT SETNAME`).
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

    /// A client over `pool`, a backend made by hand: none of its keys is read. Its metrics
    /// say `redis_type="cluster"` and go to the Baseplate's sink.
    pub fn with_backend(pool: Arc<dyn PoolBackend>) -> Self {
        ClusterRedisClient {
            pool: PoolChoice::given(pool),
            ..Self::default()
        }
    }

    /// Passes the client's pool through `map` before the client uses it (see
    /// [`RedisClient::map_pool`](crate::RedisClient::map_pool)).
    pub fn map_pool(
        mut self,
        map: impl Fn(Arc<dyn PoolBackend>) -> Arc<dyn PoolBackend> + Send + Sync + 'static,
    ) -> Self {
        self.pool.push_map(map);
        self
    }
}

impl ContextParser for ClusterRedisClient {
    fn parse(
        &self,
        name: &str,
        config: &RawConfig,
        sink: Arc<dyn MetricsSink>,
    ) -> Result<Arc<dyn ContextFactory>, ConfigurationError> {
        let prefix = format!("{name}.");
        let naming = self.telemetry.metric_naming;
        let pool = self.pool.pool(|| {
            let parsed =
                ClusterRedisClientConfig::from_config_with(config, &prefix, self.unknown_keys)?;
            let lifecycle = ConnectionLifecycle::new(sink.clone(), name, naming);
            pool_from_parsed(&parsed, &prefix, Some(Arc::new(lifecycle)))
        })?;
        let label = metric_label(
            self.redis_client_name.as_deref(),
            self.client_name.as_deref(),
            name,
        );
        Ok(Arc::new(
            RedisContextFactory::with_type(pool, name, sink, names::TYPE_CLUSTER)
                .with_redis_client_name(label)
                .with_telemetry(self.telemetry),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<ClusterRedisClientConfig, ConfigurationError> {
        let config = RawConfig::from_pairs(pairs.iter().map(|(k, v)| (*k, *v)));
        ClusterRedisClientConfig::from_config(&config, "c.")
    }

    #[test]
    fn defaults_follow_the_original() {
        let options = parse(&[("c.url", "redis://h:7000")])
            .unwrap()
            .cluster_options();
        assert_eq!(options, ClusterOptions::default());
        assert_eq!(options.max_connections, 50);
        assert!(options.read_from_replicas);
        assert!(options.skip_full_coverage_check);
        assert!(!options.max_connections_per_node);
        assert_eq!(options.track_key_reads_sample_rate, 0.0);
    }

    #[test]
    fn timeout_fills_unset_socket_timeouts_and_the_pool_wait() {
        let options = parse(&[
            ("c.url", "redis://h:7000"),
            ("c.timeout", "200 milliseconds"),
            ("c.socket_timeout", "1 second"),
        ])
        .unwrap()
        .cluster_options();
        assert_eq!(options.socket_timeout, Some(Duration::from_secs(1)));
        assert_eq!(options.connect_timeout, Some(Duration::from_millis(200)));
        assert_eq!(options.pool_timeout, Duration::from_millis(200));
    }

    #[test]
    fn every_key_is_read() {
        let options = parse(&[
            ("c.url", "redis://h:7000/0"),
            ("c.max_connections", "12"),
            ("c.max_connections_per_node", "true"),
            ("c.socket_connect_timeout", "3 seconds"),
            ("c.read_from_replicas", "false"),
            ("c.skip_full_coverage_check", "false"),
            ("c.track_key_reads_sample_rate", "0.25"),
            ("c.track_key_writes_sample_rate", "1"),
        ])
        .unwrap()
        .cluster_options();
        assert_eq!(options.max_connections, 12);
        assert!(options.max_connections_per_node);
        assert_eq!(options.connect_timeout, Some(Duration::from_secs(3)));
        assert_eq!(options.socket_timeout, None);
        assert!(!options.read_from_replicas);
        assert!(!options.skip_full_coverage_check);
        assert_eq!(options.track_key_reads_sample_rate, 0.25);
        assert_eq!(options.track_key_writes_sample_rate, 1.0);
    }

    #[test]
    fn every_key_of_the_original_spec_is_accepted() {
        // baseplate.py's cluster spec, key for key; the two without effect here included.
        let parsed = parse(&[
            ("c.url", "redis://h:7000"),
            ("c.max_connections", "50"),
            ("c.max_connections_per_node", "false"),
            ("c.socket_connect_timeout", "1 second"),
            ("c.socket_timeout", "1 second"),
            ("c.timeout", "1 second"),
            ("c.read_from_replicas", "true"),
            ("c.skip_full_coverage_check", "true"),
            ("c.nodemanager_follow_cluster", "true"),
            ("c.decode_responses", "false"),
            ("c.track_key_reads_sample_rate", "0"),
            ("c.track_key_writes_sample_rate", "0"),
        ])
        .unwrap();
        assert_eq!(parsed.nodemanager_follow_cluster, Some(true));
        assert_eq!(parsed.decode_responses, Some(false));
        let strict = |pairs: &[(&str, &str)]| {
            let config = RawConfig::from_pairs(pairs.iter().map(|(k, v)| (*k, *v)));
            ClusterRedisClientConfig::from_config_with(&config, "c.", UnknownKeys::Deny)
        };
        assert!(strict(&[("c.url", "redis://h"), ("c.decode_responses", "true")]).is_ok());
        // Their values are still checked, as the original's spec checks them.
        let err = strict(&[("c.url", "redis://h"), ("c.decode_responses", "maybe")]).unwrap_err();
        assert_eq!(err.key(), "c.decode_responses");
        // Keys outside the spec: a warning, or an error in strict mode.
        let extra = [("c.url", "redis://h"), ("c.read_from_replica", "false")];
        assert!(parse(&extra).unwrap().read_from_replicas.is_none());
        let err = strict(&extra).unwrap_err();
        assert_eq!(err.key(), "c.read_from_replica");
        assert!(
            err.reason().contains("did you mean c.read_from_replicas?"),
            "{err}"
        );
    }

    #[test]
    fn bad_keys_are_named() {
        let key = |pairs: &[(&str, &str)]| parse(pairs).unwrap_err().key().to_string();
        assert_eq!(key(&[]), "c.url");
        assert_eq!(key(&[("c.url", "redis://h/2")]), "c.url");
        assert_eq!(key(&[("c.url", "memory://x")]), "c.url");
        assert_eq!(
            key(&[
                ("c.url", "redis://h"),
                ("c.track_key_writes_sample_rate", "-0.1")
            ]),
            "c.track_key_writes_sample_rate"
        );
        assert_eq!(
            key(&[("c.url", "redis://h"), ("c.read_from_replicas", "maybe")]),
            "c.read_from_replicas"
        );
        assert_eq!(
            key(&[("c.url", "redis://h"), ("c.max_connections", "0")]),
            "c.max_connections"
        );
    }
}
