//! A pool that follows Redis Sentinel failovers: [`SentinelBackend`].
//!
//! It is the mobc-backed pool of [`MobcBackend`], except that each new connection goes to the
//! server the sentinels name as the service's primary *at the time it is opened*. After a
//! failover the old primary drops its clients (sentinels send `CLIENT KILL` when they demote
//! it) or answers writes with `READONLY`; either way those connections are closed rather than
//! reused, and the next ones are opened to the new primary. While the pool is in use it
//! also asks the sentinels at most every [`SENTINEL_CHECK_INTERVAL`] whether the primary
//! moved, and stops trusting connections to the old one as soon as it did.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::{IntoConnectionInfo, RedisError};

use super::mobc_backend::Target;
use super::{MobcBackend, PoolBackend, PoolOptions, PoolState, PooledConnection};
use crate::config::{RedisUrl, UrlKind};
use crate::{Error, Result};

/// How often, at most, a pool in use asks the sentinels whether the primary moved.
pub const SENTINEL_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// Asks the sentinels where the service's primary is, and notices when it moves.
pub(crate) struct PrimaryResolver {
    client: tokio::sync::Mutex<SentinelClient>,
    service: String,
    // The primary the sentinels named last, for `address()` (no credentials in it).
    last_primary: Mutex<Option<String>>,
    // `<primary> (<service>)`, made when the primary changes and lent to `address()`.
    address: Mutex<Option<Arc<str>>>,
    // Bumped each time the sentinels name a different primary: connections opened under an
    // older epoch are poisoned (see `Poison::following`).
    epoch: Arc<AtomicU64>,
    created: Instant,
    // Milliseconds after `created` of the last check started.
    last_check_ms: AtomicU64,
    // Told of every new primary followed.
    lifecycle: Arc<super::ConnectionLifecycle>,
}

impl PrimaryResolver {
    /// A client for the primary the sentinels name now, and the epoch it belongs to. The
    /// redis crate checks with `ROLE` that the server it names really is a primary.
    pub(crate) async fn primary(&self) -> std::result::Result<(redis::Client, u64), RedisError> {
        let client = self.client.lock().await.async_get_client().await?;
        let address = client.get_connection_info().addr().to_string();
        let epoch = match self.last_primary.lock() {
            Ok(mut last) => {
                if last.as_ref().is_some_and(|last| *last != address) {
                    tracing::info!(
                        service = %self.service,
                        primary = %address,
                        "sentinels name a new primary"
                    );
                    self.epoch.fetch_add(1, Ordering::AcqRel);
                    self.lifecycle.failed_over();
                }
                if last.as_deref() != Some(address.as_str()) {
                    if let Ok(mut shown) = self.address.lock() {
                        *shown = Some(Arc::from(format!("{address} ({})", self.service)));
                    }
                }
                *last = Some(address);
                self.epoch.load(Ordering::Acquire)
            }
            Err(_) => self.epoch.load(Ordering::Acquire),
        };
        Ok((client, epoch))
    }

    /// The current epoch, shared with the connections' poisons.
    pub(crate) fn epoch(&self) -> Arc<AtomicU64> {
        self.epoch.clone()
    }

    /// Starts a check of the primary in the background if none ran for
    /// [`SENTINEL_CHECK_INTERVAL`] (cheap when not due; nothing outside a tokio runtime).
    pub(crate) fn check_if_due(self: &Arc<Self>) {
        let now = u64::try_from(self.created.elapsed().as_millis()).unwrap_or(u64::MAX);
        let last = self.last_check_ms.load(Ordering::Relaxed);
        let interval = SENTINEL_CHECK_INTERVAL.as_millis() as u64;
        if now.saturating_sub(last) < interval {
            return;
        }
        if self
            .last_check_ms
            .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let resolver = self.clone();
        runtime.spawn(async move {
            if let Err(err) = resolver.primary().await {
                tracing::warn!(service = %resolver.service, error = %err, "sentinel check failed");
            }
        });
    }

    fn last_primary(&self) -> Option<String> {
        self.last_primary.lock().ok().and_then(|last| last.clone())
    }
}

/// A pool of connections to the primary of a service monitored by Redis Sentinel, built by
/// [`pool_from_config`](crate::pool_from_config) for `redis+sentinel://` URLs.
///
/// The URL lists the sentinels and names the service:
/// `redis+sentinel://[user:pass@]host1:26379,host2:26379/mymaster[/db]`. The user name,
/// password and database are the primary's (sentinels are asked without credentials).
///
/// Making the backend opens no connection; the first command asks the sentinels.
pub struct SentinelBackend {
    pool: MobcBackend,
    resolver: Arc<PrimaryResolver>,
    sentinels: String,
}

impl SentinelBackend {
    /// A pool for the service a `redis+sentinel://` URL names.
    pub fn new(url: &RedisUrl, options: PoolOptions) -> Result<Self> {
        let UrlKind::Sentinel { sentinels, service } = url.scheme_kind() else {
            return Err(Error::Connect {
                address: url.address(),
                source: RedisError::from((
                    redis::ErrorKind::InvalidClientConfig,
                    "not a redis+sentinel:// URL",
                )),
            });
        };
        let address = url.address();
        let connect_error = |source: RedisError| Error::Connect {
            address: address.clone(),
            source,
        };
        let mut nodes = Vec::with_capacity(sentinels.len());
        for (host, port) in &sentinels {
            nodes.push(
                redis::ConnectionAddr::Tcp(host.clone(), *port)
                    .into_connection_info()
                    .map_err(connect_error)?,
            );
        }
        let node_info =
            SentinelNodeConnectionInfo::default().set_redis_connection_info(url.redis_settings());
        let client = SentinelClient::build(
            nodes,
            service.clone(),
            Some(node_info),
            SentinelServerType::Master,
        )
        .map_err(connect_error)?;
        let resolver = Arc::new(PrimaryResolver {
            client: tokio::sync::Mutex::new(client),
            service,
            last_primary: Mutex::new(None),
            address: Mutex::new(None),
            epoch: Arc::new(AtomicU64::new(0)),
            created: Instant::now(),
            last_check_ms: AtomicU64::new(0),
            lifecycle: options.lifecycle_or_disabled(),
        });
        let pool = MobcBackend::with_target(
            Target::Sentinel(resolver.clone()),
            url.db(),
            &address,
            options,
        );
        let sentinels = sentinels
            .iter()
            .map(|(host, port)| format!("{host}:{port}"))
            .collect::<Vec<_>>()
            .join(",");
        Ok(SentinelBackend {
            pool,
            resolver,
            sentinels,
        })
    }

    /// The primary the sentinels named last (`host:port`), if any connection was opened yet.
    pub fn current_primary(&self) -> Option<String> {
        self.resolver.last_primary()
    }
}

#[async_trait]
impl PoolBackend for SentinelBackend {
    async fn shared(&self) -> Result<PooledConnection> {
        self.pool.shared().await
    }

    async fn exclusive(&self) -> Result<PooledConnection> {
        self.pool.exclusive().await
    }

    fn state(&self) -> PoolState {
        self.pool.state()
    }

    fn database(&self) -> i64 {
        self.pool.database()
    }

    /// `<primary host:port> (<service>)` once a primary is known, else the service and its
    /// sentinels.
    fn address(&self) -> Arc<str> {
        let shown = self.resolver.address.lock().ok().and_then(|a| a.clone());
        shown.unwrap_or_else(|| self.pool.address())
    }
}

impl fmt::Debug for SentinelBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SentinelBackend")
            .field("service", &self.resolver.service)
            .field("sentinels", &self.sentinels)
            .field("primary", &self.resolver.last_primary())
            .field("pool", &self.pool)
            .finish()
    }
}
