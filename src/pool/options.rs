//! Settings shared by the pool backends.

use std::time::Duration;

/// How a pool sizes itself and how long it waits.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolOptions {
    /// The most sockets the pool opens, shared and exclusive together.
    pub max_connections: u32,
    /// How long opening a connection may take; `None` waits as long as the OS does.
    pub connect_timeout: Option<Duration>,
    /// How long a command may wait for its reply (blocking commands get their own timeout
    /// on top); `None` waits forever.
    pub socket_timeout: Option<Duration>,
    /// How long a caller waits for a free exclusive connection before a pool-timeout error.
    pub pool_timeout: Duration,
    /// Sent with `CLIENT SETNAME` on every new connection.
    pub client_name: Option<String>,
    /// How often an idle connection is checked with a PING before reuse; `None` never.
    pub health_check_interval: Option<Duration>,
}

/// The default `max_connections`.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 50;
/// The default pool wait bound.
pub const DEFAULT_POOL_TIMEOUT: Duration = Duration::from_secs(5);
/// The default idle-connection health check interval.
pub const DEFAULT_HEALTH_CHECK_INTERVAL: Duration = Duration::from_secs(5);

impl Default for PoolOptions {
    fn default() -> Self {
        PoolOptions {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            connect_timeout: None,
            socket_timeout: None,
            pool_timeout: DEFAULT_POOL_TIMEOUT,
            client_name: None,
            health_check_interval: Some(DEFAULT_HEALTH_CHECK_INTERVAL),
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
}
