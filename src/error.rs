//! The crate's error type.

use std::time::Duration;

use crate::config::ConfigurationError;

/// Everything that can go wrong outside of Redis's own command replies.
///
/// Messages say what failed and where (the client, the command, the address without its
/// password). Use the predicates (`is_timeout`, `is_connection_error`…) rather than matching
/// on variants: new variants may be added.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is invalid; the error names the key.
    #[error(transparent)]
    Configuration(#[from] ConfigurationError),

    /// Redis (or the connection to it) answered a command with an error.
    #[error("redis command {command} failed: {source}")]
    Command {
        /// The command name, upper case (`GET`, `BLPOP`, `pipeline`).
        command: String,
        /// What Redis or the connection said.
        #[source]
        source: redis::RedisError,
    },

    /// Redis answered with an error, or the connection failed (from `?` on a command).
    #[error("redis error: {0}")]
    Redis(#[from] redis::RedisError),

    /// Opening a connection failed.
    #[error("cannot connect to redis at {address}: {source}")]
    Connect {
        /// Where we tried to connect, without credentials.
        address: String,
        /// Why it failed.
        #[source]
        source: redis::RedisError,
    },

    /// Opening a connection took longer than `socket_connect_timeout`.
    #[error("connecting to redis at {address} timed out after {timeout:?}")]
    ConnectTimeout {
        /// Where we tried to connect, without credentials.
        address: String,
        /// The configured connect timeout.
        timeout: Duration,
    },

    /// Every connection of the pool stayed in use for longer than the pool's wait bound.
    #[error(
        "no redis connection to {address} became free within {waited:?} \
         (all {max_connections} in use; raise max_connections or the pool wait timeout)"
    )]
    PoolTimeout {
        /// The pool's server, without credentials.
        address: String,
        /// How long the caller waited.
        waited: Duration,
        /// The pool's size limit.
        max_connections: u32,
    },

    /// A command did not answer within its timeout (`socket_timeout`, plus the blocking
    /// command's own timeout for BLPOP and friends).
    #[error("redis command {command} timed out after {timeout:?}")]
    CommandTimeout {
        /// The command name, upper case.
        command: String,
        /// How long we waited.
        timeout: Duration,
    },

    /// `MessageQueue::get` waited its whole timeout and no message came.
    #[error("no message arrived on queue {queue} within {timeout:?}")]
    QueueTimedOut {
        /// The queue's key.
        queue: String,
        /// The timeout the caller gave.
        timeout: Duration,
    },

    /// The request context has no client registered under this name.
    #[error("no context object named {name:?} is configured (configured: {configured})")]
    UnknownContextObject {
        /// The name asked for.
        name: String,
        /// The configured names, comma separated.
        configured: String,
    },

    /// The context object exists but is not of the type asked for.
    #[error("context object {name:?} is not a {expected}")]
    WrongContextObjectType {
        /// The name asked for.
        name: String,
        /// The type asked for.
        expected: &'static str,
    },
}

impl Error {
    /// True for every kind of timeout: connect, command, pool wait, queue wait.
    pub fn is_timeout(&self) -> bool {
        match self {
            Error::ConnectTimeout { .. }
            | Error::PoolTimeout { .. }
            | Error::CommandTimeout { .. }
            | Error::QueueTimedOut { .. } => true,
            Error::Command { source, .. }
            | Error::Connect { source, .. }
            | Error::Redis(source) => source.is_timeout(),
            _ => false,
        }
    }

    /// True when the connection to the server failed or was lost (retrying later may work).
    pub fn is_connection_error(&self) -> bool {
        match self {
            Error::Connect { .. } | Error::ConnectTimeout { .. } => true,
            Error::Command { source, .. } | Error::Redis(source) => {
                source.is_io_error()
                    || source.is_connection_dropped()
                    || source.is_connection_refusal()
            }
            _ => false,
        }
    }

    /// True when `MessageQueue::get` timed out without a message.
    pub fn is_queue_timeout(&self) -> bool {
        matches!(self, Error::QueueTimedOut { .. })
    }

    /// True for configuration errors.
    pub fn is_configuration_error(&self) -> bool {
        matches!(self, Error::Configuration(_))
    }

    /// The Redis error behind this one, if Redis or its connection reported it.
    pub fn redis_error(&self) -> Option<&redis::RedisError> {
        match self {
            Error::Command { source, .. }
            | Error::Connect { source, .. }
            | Error::Redis(source) => Some(source),
            _ => None,
        }
    }
}

/// Carries our errors through `redis::aio::ConnectionLike`, whose methods return
/// `RedisError`. Timeouts become I/O timeouts so `RedisError::is_timeout` stays true.
impl From<Error> for redis::RedisError {
    fn from(err: Error) -> Self {
        match err {
            Error::Command { source, .. } | Error::Redis(source) => source,
            // Keep the address in the message, and the kind so the predicates still hold.
            Error::Connect { .. } => {
                let message = err.to_string();
                let Error::Connect { source, .. } = err else {
                    unreachable!("matched above")
                };
                match io_kind(&source) {
                    Some(kind) => std::io::Error::new(kind, message).into(),
                    None => (source.kind(), "connection failed", message).into(),
                }
            }
            other if other.is_timeout() => {
                std::io::Error::new(std::io::ErrorKind::TimedOut, other.to_string()).into()
            }
            other if other.is_connection_error() => {
                std::io::Error::new(std::io::ErrorKind::NotConnected, other.to_string()).into()
            }
            other => (
                redis::ErrorKind::Client,
                "baseplate-redis",
                other.to_string(),
            )
                .into(),
        }
    }
}

/// An I/O error kind that keeps `source`'s predicates (`is_connection_refusal`,
/// `is_timeout`, `is_connection_dropped`, `is_io_error`), or `None` if it is no I/O error.
fn io_kind(source: &redis::RedisError) -> Option<std::io::ErrorKind> {
    use std::io::ErrorKind;

    if !source.is_io_error() {
        None
    } else if source.is_connection_refusal() {
        Some(ErrorKind::ConnectionRefused)
    } else if source.is_timeout() {
        Some(ErrorKind::TimedOut)
    } else if source.is_connection_dropped() {
        Some(ErrorKind::ConnectionReset)
    } else {
        Some(ErrorKind::Other)
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
