//! Settings shared by the pool backends.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::ConnectionLifecycle;

/// How a pool sizes itself and how long it waits.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolOptions {
    /// The most sockets the pool opens, shared and exclusive together.
    pub max_connections: u32,
    /// How long the TCP connect of a new connection may take; `None` means
    /// [`DEFAULT_CONNECT_TIMEOUT`].
    pub connect_timeout: Option<Duration>,
    /// How long a command may wait for its reply (blocking commands get their own timeout
    /// on top); `None` waits forever. It also bounds the handshake of a new connection
    /// (HELLO, AUTH, SELECT, CLIENT SETINFO, CLIENT SETNAME), which otherwise gets the connect
    /// timeout.
    pub socket_timeout: Option<Duration>,
    /// The most a caller waits for a connection, in total: for a free slot and for opening
    /// the connection. The shared connection always has a slot of its own.
    pub pool_timeout: Duration,
    /// Sent with `CLIENT SETNAME` on every new connection.
    pub client_name: Option<String>,
    /// How often an idle connection is checked with a PING before reuse; `None` never.
    pub health_check_interval: Option<Duration>,
    /// Certificates for `rediss://` connections; `None` trusts the system's root CAs.
    pub tls: Option<TlsOptions>,
    /// TCP keepalive: an idle socket is probed after this long, then every half of it, and
    /// after three unanswered probes (or data unacknowledged for 2.5 times this long,
    /// `TCP_USER_TIMEOUT` on Linux) the OS closes it. So a dead peer is found within
    /// 2.5 × this, even without a `socket_timeout`. `None` leaves the OS defaults (off).
    pub tcp_keepalive: Option<Duration>,
    /// Where the connections' lifecycle events are reported; `None` reports nothing.
    pub lifecycle: Option<Arc<ConnectionLifecycle>>,
}

/// Certificates for `rediss://` connections, PEM encoded.
///
/// `Debug` never prints the certificates or the private key.
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsOptions {
    /// CA certificates the server's certificate must chain to; `None` trusts the system's
    /// root CAs.
    pub root_certs: Option<Vec<u8>>,
    /// The client certificate chain and its private key, for servers that ask for one
    /// (mutual TLS).
    pub client_auth: Option<ClientAuth>,
}

/// A client certificate chain and its private key, PEM encoded.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientAuth {
    /// The certificate chain.
    pub cert: Vec<u8>,
    /// The private key.
    pub key: Vec<u8>,
}

impl TlsOptions {
    /// Trusts the system's root CAs and sends no client certificate.
    pub fn new() -> Self {
        Self::default()
    }

    /// Trusts only the CA certificates in `pem`.
    pub fn root_certs(mut self, pem: Vec<u8>) -> Self {
        self.root_certs = Some(pem);
        self
    }

    /// Sends the certificate chain `cert` (signed with `key`) when the server asks for one.
    pub fn client_auth(mut self, cert: Vec<u8>, key: Vec<u8>) -> Self {
        self.client_auth = Some(ClientAuth { cert, key });
        self
    }

    pub(crate) fn to_redis(&self) -> redis::TlsCertificates {
        redis::TlsCertificates {
            client_tls: self
                .client_auth
                .as_ref()
                .map(|auth| redis::ClientTlsConfig {
                    client_cert: auth.cert.clone(),
                    client_key: auth.key.clone(),
                }),
            root_cert: self.root_certs.clone(),
        }
    }
}

impl fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsOptions")
            .field("root_certs", &self.root_certs.as_ref().map(|p| p.len()))
            .field("client_auth", &self.client_auth)
            .finish()
    }
}

impl fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientAuth")
            .field("cert", &format_args!("<{} bytes>", self.cert.len()))
            .field("key", &"<redacted>")
            .finish()
    }
}

/// The default `max_connections`.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 50;
/// The default pool wait bound.
pub const DEFAULT_POOL_TIMEOUT: Duration = Duration::from_secs(5);
/// The default idle-connection health check interval.
pub const DEFAULT_HEALTH_CHECK_INTERVAL: Duration = Duration::from_secs(5);
/// How long the TCP connect of a new connection may take when no connect timeout is set.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The default TCP keepalive idle time: a dead peer is found within 2.5 × 10 s = 25 s.
pub const DEFAULT_TCP_KEEPALIVE: Duration = Duration::from_secs(10);

impl Default for PoolOptions {
    fn default() -> Self {
        PoolOptions {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            connect_timeout: None,
            socket_timeout: None,
            pool_timeout: DEFAULT_POOL_TIMEOUT,
            client_name: None,
            health_check_interval: Some(DEFAULT_HEALTH_CHECK_INTERVAL),
            tls: None,
            tcp_keepalive: Some(DEFAULT_TCP_KEEPALIVE),
            lifecycle: None,
        }
    }
}

impl PoolOptions {
    /// Sets `max_connections`.
    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = n;
        self
    }

    /// Sets the connect timeout.
    pub fn connect_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets the per-command reply timeout.
    pub fn socket_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.socket_timeout = timeout;
        self
    }

    /// Sets the pool wait bound.
    pub fn pool_timeout(mut self, timeout: Duration) -> Self {
        self.pool_timeout = timeout;
        self
    }

    /// Sets the name sent with `CLIENT SETNAME`.
    pub fn client_name(mut self, name: Option<String>) -> Self {
        self.client_name = name;
        self
    }

    /// Sets the idle-connection health check interval.
    pub fn health_check_interval(mut self, interval: Option<Duration>) -> Self {
        self.health_check_interval = interval;
        self
    }

    /// Sets the certificates for `rediss://` connections.
    pub fn tls(mut self, tls: Option<TlsOptions>) -> Self {
        self.tls = tls;
        self
    }

    /// Sets the TCP keepalive idle time (`None`: the OS defaults).
    pub fn tcp_keepalive(mut self, idle: Option<Duration>) -> Self {
        self.tcp_keepalive = idle;
        self
    }

    /// Reports the connections' lifecycle events to `lifecycle`.
    pub fn lifecycle(mut self, lifecycle: Option<Arc<ConnectionLifecycle>>) -> Self {
        self.lifecycle = lifecycle;
        self
    }

    /// The lifecycle reporter, or one that reports nothing.
    pub(crate) fn lifecycle_or_disabled(&self) -> Arc<ConnectionLifecycle> {
        self.lifecycle
            .clone()
            .unwrap_or_else(|| Arc::new(ConnectionLifecycle::disabled()))
    }

    /// The TCP connect bound: the connect timeout, or [`DEFAULT_CONNECT_TIMEOUT`].
    pub(crate) fn effective_connect_timeout(&self) -> Duration {
        self.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT)
    }

    /// The bound on the handshake's reads: the socket timeout, or else the connect bound.
    pub(crate) fn handshake_timeout(&self) -> Duration {
        self.socket_timeout
            .unwrap_or_else(|| self.effective_connect_timeout())
    }

    /// How long a connection that just timed out, or an idle one that may have died, gets to
    /// answer a PING: the socket timeout, at most [`MAX_PROBE_TIMEOUT`].
    pub(crate) fn probe_timeout(&self) -> Duration {
        self.socket_timeout
            .map_or(MAX_PROBE_TIMEOUT, |t| t.min(MAX_PROBE_TIMEOUT))
    }
}

/// The longest a liveness PING may take: keeps the time to replace a half-open connection
/// within `socket_timeout + 1 s`.
pub(crate) const MAX_PROBE_TIMEOUT: Duration = Duration::from_secs(1);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_set_up_bounds_follow_the_configured_timeouts() {
        let defaults = PoolOptions::default();
        assert_eq!(
            defaults.effective_connect_timeout(),
            DEFAULT_CONNECT_TIMEOUT
        );
        // Without a socket timeout the handshake gets the connect bound.
        assert_eq!(defaults.handshake_timeout(), DEFAULT_CONNECT_TIMEOUT);
        assert_eq!(defaults.probe_timeout(), MAX_PROBE_TIMEOUT);
        assert_eq!(defaults.tcp_keepalive, Some(DEFAULT_TCP_KEEPALIVE));

        let fast = PoolOptions::default()
            .connect_timeout(Some(Duration::from_secs(3)))
            .socket_timeout(Some(Duration::from_millis(200)));
        assert_eq!(fast.effective_connect_timeout(), Duration::from_secs(3));
        assert_eq!(fast.handshake_timeout(), Duration::from_millis(200));
        assert_eq!(fast.probe_timeout(), Duration::from_millis(200));

        // A long socket timeout still probes within a second.
        let slow = PoolOptions::default().socket_timeout(Some(Duration::from_secs(30)));
        assert_eq!(slow.probe_timeout(), MAX_PROBE_TIMEOUT);
        assert_eq!(slow.handshake_timeout(), Duration::from_secs(30));
    }
}
