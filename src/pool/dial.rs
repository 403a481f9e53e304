//! Opening one connection, every step bounded, with the socket options that find a dead peer.
//!
//! For `redis://` and `unix://` we open the socket ourselves, so each step has its own bound
//! and error: the connect gets the connect timeout; the handshake redis-rs sends (HELLO, AUTH,
//! SELECT, CLIENT SETINFO) and our CLIENT SETNAME get the socket timeout, as every other read.
//! We also spawn the connection's driver task ourselves and keep its abort handle, so that a
//! connection found dead is closed at once (see `Poison::retire`). For `rediss://` redis-rs
//! opens the TLS stream; its connect and handshake are bounded together, by the longer of the
//! two bounds.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::io::tcp::TcpSettings;
use redis::{AsyncConnectionConfig, ConnectionAddr, ConnectionInfo, RedisError};
use tokio::task::AbortHandle;

use super::PoolOptions;
use crate::{Error, Result};

/// A connection just opened, with its driver task when we spawned it.
pub(crate) struct Opened {
    pub(crate) conn: MultiplexedConnection,
    pub(crate) driver: DriverGuard,
}

/// Stops the connection's driver task (closing its socket) when dropped: when the pool drops
/// the connection, or when opening it is abandoned half-way. Clones of the connection still
/// held elsewhere then fail instead of keeping the socket open.
pub(crate) struct DriverGuard(Option<AbortHandle>);

impl DriverGuard {
    /// The driver task, when we spawned it (not for `rediss://`).
    pub(crate) fn handle(&self) -> Option<&AbortHandle> {
        self.0.as_ref()
    }
}

impl Drop for DriverGuard {
    fn drop(&mut self) {
        if let Some(driver) = &self.0 {
            driver.abort();
        }
    }
}

/// Opens connections with the pool's bounds and socket options.
pub(crate) struct Dialer {
    config: AsyncConnectionConfig,
    connect_timeout: Duration,
    handshake_timeout: Duration,
    keepalive: Option<Keepalive>,
    client_name: Option<String>,
    address: Arc<str>,
}

/// TCP keepalive probes, and the `TCP_USER_TIMEOUT` that goes with them.
#[derive(Clone, Copy)]
struct Keepalive {
    idle: Duration,
    interval: Duration,
}

/// Unanswered keepalive probes before the OS gives up on the peer.
const KEEPALIVE_PROBES: u32 = 3;

impl Keepalive {
    /// Probes after `idle`, then every `idle / 2` (at least a second each).
    fn new(idle: Duration) -> Self {
        let idle = idle.max(Duration::from_secs(1));
        Keepalive {
            idle,
            interval: (idle / 2).max(Duration::from_secs(1)),
        }
    }

    fn probes(&self) -> socket2::TcpKeepalive {
        socket2::TcpKeepalive::new()
            .with_time(self.idle)
            .with_interval(self.interval)
            .with_retries(KEEPALIVE_PROBES)
    }

    /// The same total as the keepalive probes: unacknowledged writes fail as fast as an
    /// unanswered keepalive.
    fn user_timeout(&self) -> Duration {
        self.idle + self.interval * KEEPALIVE_PROBES
    }

    fn apply(&self, stream: &tokio::net::TcpStream) -> std::io::Result<()> {
        let socket = socket2::SockRef::from(stream);
        socket.set_tcp_keepalive(&self.probes())?;
        #[cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux"))]
        socket.set_tcp_user_timeout(Some(self.user_timeout()))?;
        Ok(())
    }
}

/// The TCP settings redis-rs applies to the sockets it opens (`rediss://`).
pub(crate) fn tcp_settings(options: &PoolOptions) -> TcpSettings {
    // Nagle left on, as redis-rs leaves it (see `Dialer::open`).
    let settings = TcpSettings::default();
    let Some(keepalive) = options.tcp_keepalive.map(Keepalive::new) else {
        return settings;
    };
    let settings = settings.set_keepalive(keepalive.probes());
    #[cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux"))]
    let settings = settings.set_user_timeout(keepalive.user_timeout());
    settings
}

impl Dialer {
    pub(crate) fn new(options: &PoolOptions, address: Arc<str>) -> Self {
        Dialer {
            // Reply timeouts are ours to apply (see `guarded`): never the redis crate's.
            config: AsyncConnectionConfig::new()
                .set_connection_timeout(None)
                .set_response_timeout(None),
            connect_timeout: options.effective_connect_timeout(),
            handshake_timeout: options.handshake_timeout(),
            keepalive: options.tcp_keepalive.map(Keepalive::new),
            client_name: options.client_name.clone(),
            address,
        }
    }

    /// Opens a connection to the server `client` names.
    pub(crate) async fn open(&self, client: &redis::Client) -> Result<Opened> {
        self.open_with(client, &self.config).await
    }

    /// Opens a RESP3 connection to the server `client` names whose server pushes (Pub/Sub
    /// messages, invalidations, and a `Disconnection` when it is lost) go to `pushes`. TLS
    /// settings travel in the connection info, so they are kept.
    pub(crate) async fn open_with_pushes(
        &self,
        client: &redis::Client,
        pushes: super::PushSender,
    ) -> Result<Opened> {
        let info = client.get_connection_info().clone();
        let settings = info
            .redis_settings()
            .clone()
            .set_protocol(redis::ProtocolVersion::RESP3);
        let client =
            redis::Client::open(info.set_redis_settings(settings)).map_err(|e| self.failed(e))?;
        let config = self.config.clone().set_push_sender(pushes);
        self.open_with(&client, &config).await
    }

    async fn open_with(
        &self,
        client: &redis::Client,
        config: &AsyncConnectionConfig,
    ) -> Result<Opened> {
        let info = client.get_connection_info();
        let mut opened = match info.addr() {
            ConnectionAddr::Tcp(host, port) => {
                let stream = self
                    .connect(tokio::net::TcpStream::connect((host.as_str(), *port)))
                    .await?;
                // Nagle stays on, as on the sockets redis-rs opens: many callers' commands
                // on one multiplexed socket then leave in fewer segments. TCP_NODELAY cost a
                // quarter of the throughput at 64 tasks in the load generator (0.75 → 0.98
                // of raw redis-rs for GET with it off).
                let _ = stream.set_nodelay(false);
                if let Some(keepalive) = &self.keepalive {
                    keepalive
                        .apply(&stream)
                        .map_err(|e| self.failed(e.into()))?;
                }
                self.handshake(info, stream, config).await?
            }
            #[cfg(unix)]
            ConnectionAddr::Unix(path) => {
                let stream = self.connect(tokio::net::UnixStream::connect(path)).await?;
                self.handshake(info, stream, config).await?
            }
            _ => {
                // One bound for connect, TLS and handshake together: the longer of the two.
                let limit = self.connect_timeout.max(self.handshake_timeout);
                let opening = client.get_multiplexed_async_connection_with_config(config);
                let conn = tokio::time::timeout(limit, opening)
                    .await
                    .map_err(|_| self.timed_out(limit))?
                    .map_err(|e| self.failed(e))?;
                Opened {
                    conn,
                    driver: DriverGuard(None),
                }
            }
        };
        if let Some(name) = &self.client_name {
            let mut setname = redis::cmd("CLIENT");
            setname.arg("SETNAME").arg(name);
            let setname = setname.exec_async(&mut opened.conn);
            let named = tokio::time::timeout(self.handshake_timeout, setname).await;
            // On an error `opened` is dropped, and with it the driver task.
            named
                .map_err(|_| self.timed_out(self.handshake_timeout))?
                .map_err(|e| self.failed(e))?;
        }
        Ok(opened)
    }

    async fn connect<S>(&self, connecting: impl Future<Output = std::io::Result<S>>) -> Result<S> {
        tokio::time::timeout(self.connect_timeout, connecting)
            .await
            .map_err(|_| self.timed_out(self.connect_timeout))?
            .map_err(|e| self.failed(e.into()))
    }

    /// redis-rs's handshake on `stream`, bounded by the handshake timeout; then the driver
    /// task, spawned here so that we hold its abort handle.
    async fn handshake<S>(
        &self,
        info: &ConnectionInfo,
        stream: S,
        config: &AsyncConnectionConfig,
    ) -> Result<Opened>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let handshake =
            MultiplexedConnection::new_with_config(info.redis_settings(), stream, config.clone());
        let (conn, driver) = tokio::time::timeout(self.handshake_timeout, handshake)
            .await
            .map_err(|_| self.timed_out(self.handshake_timeout))?
            .map_err(|e| self.failed(e))?;
        let driver = DriverGuard(Some(tokio::spawn(driver).abort_handle()));
        Ok(Opened { conn, driver })
    }

    /// How long a TCP connect may take.
    pub(crate) fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// Opening the connection did not complete within `timeout`.
    pub(crate) fn timed_out(&self, timeout: Duration) -> Error {
        Error::ConnectTimeout {
            address: self.address.to_string(),
            timeout,
        }
    }

    /// Opening the connection failed.
    pub(crate) fn failed(&self, source: RedisError) -> Error {
        Error::Connect {
            address: self.address.to_string(),
            source,
        }
    }
}
