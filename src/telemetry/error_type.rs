//! `error.type` and `db.response.status_code` of a failed command, per the OpenTelemetry
//! database conventions.
//!
//! A reply from Redis carries its error prefix (`ERR`, `WRONGTYPE`, `MOVED`…), which is both
//! the status code and the error type. A failure on our side of the socket gets a stable,
//! low-cardinality type (`timeout`, `connection_closed`, `pool_timeout`…) and no status code.
//! Every value is a `&'static str` from a fixed list, so labels built from them stay bounded
//! whatever the server or a script answers.

use std::io;

use redis::{ErrorKind, RedisError};

use crate::Error;

/// What kind of failure ended a command: the `error.type` attribute and, for errors Redis
/// replied with, `db.response.status_code`.
///
/// ```
/// use baseplate_redis::telemetry::ErrorClass;
///
/// let reply = redis::make_extension_error("WRONGTYPE".into(), Some("wrong kind of value".into()));
/// let class = ErrorClass::of_redis(&reply);
/// assert_eq!(class.error_type(), "WRONGTYPE");
/// assert_eq!(class.status_code(), Some("WRONGTYPE"));
///
/// let reset = redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
/// assert_eq!(ErrorClass::of_redis(&reset).error_type(), "connection_closed");
/// assert_eq!(ErrorClass::of_redis(&reset).status_code(), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorClass {
    error_type: &'static str,
    status_code: Option<&'static str>,
}

/// The error prefixes Redis (and its modules, Sentinel and Cluster) reply with. A prefix not
/// listed here is reported as [`OTHER_STATUS_CODE`]: a Lua script may reply with any prefix.
pub const STATUS_CODES: &[&str] = &[
    "ERR",
    "WRONGTYPE",
    "MOVED",
    "ASK",
    "TRYAGAIN",
    "CLUSTERDOWN",
    "CROSSSLOT",
    "MASTERDOWN",
    "NOSCRIPT",
    "NOAUTH",
    "WRONGPASS",
    "NOPERM",
    "READONLY",
    "LOADING",
    "BUSY",
    "BUSYKEY",
    "BUSYGROUP",
    "NOGROUP",
    "EXECABORT",
    "MISCONF",
    "NOREPLICAS",
    "NOTBUSY",
    "NOSUB",
    "NOPROTO",
    "OOM",
    "UNKILLABLE",
    "UNBLOCKED",
    "NOTREADY",
    "INPROG",
    "IDLE",
];

/// `db.response.status_code` (and `error.type`) of an error reply whose prefix is not one of
/// [`STATUS_CODES`].
pub const OTHER_STATUS_CODE: &str = "OTHER";

/// `error.type` values of failures on the client's side; none has a status code.
pub mod client_side {
    /// The reply did not come within the command's timeout.
    pub const TIMEOUT: &str = "timeout";
    /// No pooled connection became free within the pool's wait bound.
    pub const POOL_TIMEOUT: &str = "pool_timeout";
    /// Opening a connection took longer than `socket_connect_timeout`.
    pub const CONNECT_TIMEOUT: &str = "connect_timeout";
    /// The server refused the connection (nothing listening).
    pub const CONNECTION_REFUSED: &str = "connection_refused";
    /// The connection was closed or reset under the command (server restart, kill, EOF).
    pub const CONNECTION_CLOSED: &str = "connection_closed";
    /// Opening a connection failed for another reason (DNS, TLS handshake, handshake reply).
    pub const CONNECT_ERROR: &str = "connect_error";
    /// Another I/O failure.
    pub const IO_ERROR: &str = "io_error";
    /// The reply could not be parsed.
    pub const PROTOCOL_ERROR: &str = "protocol_error";
    /// The server refused the credentials.
    pub const AUTHENTICATION_FAILED: &str = "authentication_failed";
    /// The reply was not of the type asked for.
    pub const RESPONSE_TYPE_ERROR: &str = "response_type_error";
    /// The command's future was dropped before the reply came.
    pub const CANCELLED: &str = "cancelled";
    /// The sentinels could not name a usable server.
    pub const SENTINEL_ERROR: &str = "sentinel_error";
    /// The cluster client found no connection to the node a slot belongs to.
    pub const CLUSTER_CONNECTION_NOT_FOUND: &str = "cluster_connection_not_found";
    /// The client's configuration is invalid.
    pub const CONFIGURATION_ERROR: &str = "configuration_error";
    /// The client refused the command before sending it (empty command, bad arguments…).
    pub const CLIENT_ERROR: &str = "client_error";
    /// `MessageQueue::get` waited its whole timeout.
    pub const QUEUE_TIMEOUT: &str = "queue_timeout";
}

/// Every `error.type` value a client-side failure can have.
pub const CLIENT_SIDE_ERROR_TYPES: &[&str] = &[
    client_side::TIMEOUT,
    client_side::POOL_TIMEOUT,
    client_side::CONNECT_TIMEOUT,
    client_side::CONNECTION_REFUSED,
    client_side::CONNECTION_CLOSED,
    client_side::CONNECT_ERROR,
    client_side::IO_ERROR,
    client_side::PROTOCOL_ERROR,
    client_side::AUTHENTICATION_FAILED,
    client_side::RESPONSE_TYPE_ERROR,
    client_side::CANCELLED,
    client_side::SENTINEL_ERROR,
    client_side::CLUSTER_CONNECTION_NOT_FOUND,
    client_side::CONFIGURATION_ERROR,
    client_side::CLIENT_ERROR,
    client_side::QUEUE_TIMEOUT,
];

impl ErrorClass {
    /// The `error.type` value.
    pub fn error_type(&self) -> &'static str {
        self.error_type
    }

    /// The `db.response.status_code` value: the error prefix of a Redis error reply, `None`
    /// for client-side failures.
    pub fn status_code(&self) -> Option<&'static str> {
        self.status_code
    }

    /// A command cancelled before its reply came (its future was dropped).
    pub fn cancelled() -> Self {
        Self::client(client_side::CANCELLED)
    }

    /// The class of an error reply with this prefix (`WRONGTYPE`, `ERR`…).
    pub fn of_status_code(code: &str) -> Self {
        let code = STATUS_CODES
            .iter()
            .copied()
            .find(|known| known.eq_ignore_ascii_case(code))
            .unwrap_or(OTHER_STATUS_CODE);
        ErrorClass {
            error_type: code,
            status_code: Some(code),
        }
    }

    /// The class of an error reply found inside a reply (`Value::ServerError`).
    pub fn of_server_error(err: &redis::ServerError) -> Self {
        Self::of_status_code(err.code())
    }

    /// The class of an error the `redis` crate (or our connection layer, through it)
    /// reported.
    pub fn of_redis(err: &RedisError) -> Self {
        // Our own error travels inside a `RedisError` (`ConnectionLike` returns only those).
        if let Some(ours) = crate::error::carried(err) {
            return Self::of_error(ours);
        }
        if let Some(code) = err.code() {
            return Self::of_status_code(code);
        }
        if err.is_connection_refusal() {
            return Self::client(client_side::CONNECTION_REFUSED);
        }
        if err.is_timeout() {
            return Self::client(client_side::TIMEOUT);
        }
        if err.is_connection_dropped() {
            return Self::client(client_side::CONNECTION_CLOSED);
        }
        Self::client(match err.kind() {
            ErrorKind::Io => client_side::IO_ERROR,
            ErrorKind::Parse => client_side::PROTOCOL_ERROR,
            ErrorKind::AuthenticationFailed => client_side::AUTHENTICATION_FAILED,
            ErrorKind::UnexpectedReturnType => client_side::RESPONSE_TYPE_ERROR,
            ErrorKind::InvalidClientConfig => client_side::CONFIGURATION_ERROR,
            ErrorKind::ClusterConnectionNotFound => client_side::CLUSTER_CONNECTION_NOT_FOUND,
            ErrorKind::MasterNameNotFoundBySentinel
            | ErrorKind::NoValidReplicasFoundBySentinel
            | ErrorKind::EmptySentinelList => client_side::SENTINEL_ERROR,
            _ => client_side::CLIENT_ERROR,
        })
    }

    /// The class of one of the crate's errors.
    pub fn of_error(err: &Error) -> Self {
        match err {
            Error::PoolTimeout { .. } => Self::client(client_side::POOL_TIMEOUT),
            Error::ConnectTimeout { .. } => Self::client(client_side::CONNECT_TIMEOUT),
            Error::CommandTimeout { .. } => Self::client(client_side::TIMEOUT),
            Error::QueueTimedOut { .. } => Self::client(client_side::QUEUE_TIMEOUT),
            Error::Configuration(_) => Self::client(client_side::CONFIGURATION_ERROR),
            Error::Connect { source, .. } => {
                let class = Self::of_redis(source);
                match class.error_type {
                    // The handshake's own reply (AUTH, SELECT, CLIENT SETNAME) keeps its code.
                    _ if class.status_code.is_some() => class,
                    client_side::CONNECTION_REFUSED
                    | client_side::AUTHENTICATION_FAILED
                    | client_side::CONFIGURATION_ERROR
                    | client_side::SENTINEL_ERROR
                    | client_side::TIMEOUT => class,
                    _ => Self::client(client_side::CONNECT_ERROR),
                }
            }
            Error::Command { source, .. } | Error::Redis(source) => Self::of_redis(source),
            _ => Self::client(client_side::CLIENT_ERROR),
        }
    }

    /// The class of any error a command's caller may see: ours, the `redis` crate's, or a
    /// cancellation.
    pub fn of_dyn(err: &(dyn std::error::Error + 'static)) -> Self {
        if let Some(redis) = err.downcast_ref::<RedisError>() {
            Self::of_redis(redis)
        } else if let Some(ours) = err.downcast_ref::<Error>() {
            Self::of_error(ours)
        } else if let Some(io) = err.downcast_ref::<io::Error>() {
            Self::of_redis(&RedisError::from(io::Error::from(io.kind())))
        } else {
            Self::client(client_side::CLIENT_ERROR)
        }
    }

    fn client(error_type: &'static str) -> Self {
        ErrorClass {
            error_type,
            status_code: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_prefixes_are_their_own_status_code_in_any_case() {
        for code in STATUS_CODES {
            let class = ErrorClass::of_status_code(&code.to_lowercase());
            assert_eq!(class.status_code(), Some(*code));
            assert_eq!(class.error_type(), *code);
        }
        assert_eq!(
            ErrorClass::of_status_code("MYSCRIPTCODE").status_code(),
            Some(OTHER_STATUS_CODE)
        );
    }

    #[test]
    fn any_error_a_span_observer_sees_is_classified() {
        let reply = redis::make_extension_error("WRONGTYPE".into(), None);
        assert_eq!(ErrorClass::of_dyn(&reply).error_type(), "WRONGTYPE");
        let ours = Error::CommandTimeout {
            command: "GET".into(),
            timeout: std::time::Duration::from_millis(5),
        };
        assert_eq!(ErrorClass::of_dyn(&ours).error_type(), "timeout");
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(
            ErrorClass::of_dyn(&refused).error_type(),
            "connection_refused"
        );
        let other = std::fmt::Error;
        assert_eq!(ErrorClass::of_dyn(&other).error_type(), "client_error");
    }

    #[test]
    fn our_errors_keep_their_class_through_a_redis_error() {
        let timeout = Error::PoolTimeout {
            address: "127.0.0.1:1".into(),
            waited: std::time::Duration::from_millis(5),
            max_connections: 1,
        };
        let carried = RedisError::from(timeout);
        assert!(carried.is_timeout());
        assert_eq!(ErrorClass::of_redis(&carried).error_type(), "pool_timeout");
    }
}
