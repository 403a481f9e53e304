//! The crate's error type.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use crate::config::ConfigurationError;

/// Everything that can go wrong: configuration, connections, commands, the queue.
///
/// Messages say what failed and where (the client, the command, the address without its
/// password); a command's error keeps them through `RedisError` and `?` (as
/// [`Error::Command`]). Use the predicates (`is_timeout`, `is_connection_error`…) rather than
/// matching on variants: new variants may be added.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is invalid; the error names the key.
    #[error(transparent)]
    Configuration(#[from] ConfigurationError),

    /// A command (or pipeline) failed on its way to or from the server: its connection failed
    /// or closed in the middle of a reply, it timed out, no connection could be had, or the
    /// handle refused it. Every such error of a handle names the command and the server.
    #[error("redis command {command} on {address} failed: {source}")]
    Command {
        /// The command name, upper case (`GET`, `BLPOP`), or `pipeline (GET, SET…)`.
        command: String,
        /// The server, without credentials.
        address: String,
        /// What went wrong. A reply cut short is an I/O error of kind `UnexpectedEof`.
        #[source]
        source: redis::RedisError,
    },

    /// Redis answered with an error reply (`WRONGTYPE`…, passed on with its kind and code),
    /// or a reply could not be converted to the type asked for (from `?` on a command).
    #[error("redis error: {0}")]
    Redis(#[source] redis::RedisError),

    /// Opening a connection failed.
    #[error("cannot connect to redis at {address}: {source}")]
    Connect {
        /// Where we tried to connect, without credentials.
        address: String,
        /// Why it failed.
        #[source]
        source: redis::RedisError,
    },

    /// Opening a connection did not complete in time: the TCP connect (bounded by
    /// `socket_connect_timeout`), the handshake (bounded by `socket_timeout`), or both within
    /// the caller's `pool_timeout`.
    #[error(
        "connecting to redis at {address} timed out after {timeout:?}: the TCP connect or \
         the handshake (HELLO/AUTH/SELECT/CLIENT SETNAME) did not complete"
    )]
    ConnectTimeout {
        /// Where we tried to connect, without credentials.
        address: String,
        /// How long it was given.
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

    /// The pool backend cannot do what was asked (such as Pub/Sub on a backend without it).
    #[error("{operation} is not supported by the pool backend of {address}")]
    Unsupported {
        /// What was asked, e.g. `Pub/Sub`.
        operation: &'static str,
        /// The backend's server, without credentials.
        address: String,
    },

    /// A new subscriber would leave no connection of `max_connections` for commands (a
    /// client with `max_connections = 1`).
    #[error(
        "cannot open another Pub/Sub subscriber to {address}: {subscribers} of its \
         {max_connections} connections are subscribers already and one must stay for \
         commands (raise max_connections)"
    )]
    TooManySubscribers {
        /// The pool's server, without credentials.
        address: String,
        /// Subscribers open now.
        subscribers: u32,
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
        /// The type asked for, by its public path (`baseplate_redis::MonitoredRedisConnection`).
        expected: String,
    },

    /// [`Baseplate::with_metrics_sink`](crate::Baseplate::with_metrics_sink) was called
    /// after clients were added: their metrics would still go to the old sink.
    #[error(
        "the metrics sink must be set before clients are added (already added: {clients}); \
         call with_metrics_sink before configure_context and add_to_context"
    )]
    MetricsSinkAfterClients {
        /// The context names already added, comma separated.
        clients: String,
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

    /// True when the backend does not support the operation (see [`Error::Unsupported`]).
    pub fn is_unsupported(&self) -> bool {
        matches!(self, Error::Unsupported { .. })
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
/// `RedisError`: inside an I/O error of the matching kind, so that `RedisError`'s predicates
/// (`is_timeout`, `is_connection_dropped`…) still hold and [`Error::from`] gets it back.
impl From<Error> for redis::RedisError {
    fn from(err: Error) -> Self {
        if let Error::Redis(source) = err {
            return source;
        }
        match err.io_kind() {
            Some(kind) => io::Error::new(kind, err).into(),
            None => {
                let kind = err
                    .redis_error()
                    .map_or(redis::ErrorKind::Client, redis::RedisError::kind);
                match &err {
                    Error::Command {
                        command,
                        address,
                        source,
                    } => (
                        kind,
                        "redis command failed",
                        format!("{command} on {address}: {source}"),
                    )
                        .into(),
                    Error::Connect { .. } => (kind, "connection failed", err.to_string()).into(),
                    _ => (kind, "baseplate-redis", err.to_string()).into(),
                }
            }
        }
    }
}

/// A command's error, with the context a handle added, back as [`Error::Command`]; any other
/// `RedisError` as [`Error::Redis`].
impl From<redis::RedisError> for Error {
    fn from(err: redis::RedisError) -> Self {
        match carried(&err) {
            Some(Error::Command {
                command,
                address,
                source,
            }) => Error::Command {
                command: command.clone(),
                address: address.clone(),
                source: source.clone(),
            },
            _ => Error::Redis(err),
        }
    }
}

impl Error {
    /// The I/O error kind this error travels as inside a `RedisError`, if it is one.
    fn io_kind(&self) -> Option<io::ErrorKind> {
        if self.is_timeout() {
            return Some(io::ErrorKind::TimedOut);
        }
        match self {
            Error::Command { source, .. }
            | Error::Connect { source, .. }
            | Error::Redis(source) => io_kind(source),
            _ => None,
        }
    }
}

/// Adds what failed and where to an error leaving a handle: the one place commands get this
/// context. Redis's error replies are left as they are (callers match on their kind and code);
/// a reply cut short or garbled becomes an I/O error, as its connection is gone.
pub(crate) fn in_context(
    err: redis::RedisError,
    command: impl FnOnce() -> String,
    address: &str,
) -> redis::RedisError {
    if matches!(
        err.kind(),
        redis::ErrorKind::Server(_) | redis::ErrorKind::Extension
    ) {
        return err;
    }
    let source = match carried(&err) {
        Some(Error::Command { .. }) => return err,
        // Our reply timeout already names the command: say only how long we waited.
        Some(Error::CommandTimeout { timeout, .. }) => io::Error::new(
            io::ErrorKind::TimedOut,
            format!("timed out after {timeout:?}"),
        )
        .into(),
        _ if err.kind() == redis::ErrorKind::Parse => {
            // The parser's report spans several lines; one is enough in a log line.
            let parser = err.to_string();
            let parser = parser.split_whitespace().collect::<Vec<_>>().join(" ");
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("the connection closed or garbled in the middle of a reply ({parser})"),
            )
            .into()
        }
        _ => err,
    };
    Error::Command {
        command: command(),
        address: address.to_string(),
        source,
    }
    .into()
}

/// Our error, if `err` carries one (see `From<Error> for RedisError`).
pub(crate) fn carried(err: &redis::RedisError) -> Option<&Error> {
    io_error(err)?.get_ref()?.downcast_ref::<Error>()
}

/// The I/O error inside `err`, if it holds one.
fn io_error(err: &redis::RedisError) -> Option<&io::Error> {
    let source = std::error::Error::source(err)?;
    // redis-rs keeps it behind an `Arc`, which is what `source` hands out.
    match source.downcast_ref::<Arc<dyn std::error::Error + Send + Sync>>() {
        Some(inner) => inner.downcast_ref::<io::Error>(),
        None => source.downcast_ref::<io::Error>(),
    }
}

/// An I/O error kind that keeps `source`'s predicates (`is_connection_refusal`,
/// `is_timeout`, `is_connection_dropped`, `is_io_error`), or `None` if it is no I/O error.
fn io_kind(source: &redis::RedisError) -> Option<io::ErrorKind> {
    if !source.is_io_error() {
        None
    } else if let Some(io) = io_error(source) {
        Some(io.kind())
    } else if source.is_connection_refusal() {
        Some(io::ErrorKind::ConnectionRefused)
    } else if source.is_timeout() {
        Some(io::ErrorKind::TimedOut)
    } else if source.is_connection_dropped() {
        Some(io::ErrorKind::ConnectionReset)
    } else {
        Some(io::ErrorKind::Other)
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    fn in_context_of_get(err: redis::RedisError) -> redis::RedisError {
        in_context(err, || "GET".to_string(), "127.0.0.1:7000")
    }

    #[test]
    fn command_context_survives_the_trip_through_redis_error() {
        let reset: redis::RedisError = io::Error::from(io::ErrorKind::ConnectionReset).into();
        let err = in_context_of_get(reset);
        assert!(err.is_connection_dropped() && err.is_io_error(), "{err}");
        assert!(err
            .to_string()
            .starts_with("redis command GET on 127.0.0.1:7000 failed"));
        let err = Error::from(err);
        assert!(matches!(&err, Error::Command { command, .. } if command == "GET"));
        assert!(err.is_connection_error() && !err.is_timeout(), "{err}");
        // Added once: a second boundary leaves it alone.
        let again = in_context_of_get(err.into());
        assert_eq!(
            again.to_string().matches("127.0.0.1:7000").count(),
            1,
            "{again}"
        );
    }

    #[test]
    fn a_reply_cut_short_is_a_connection_error() {
        let cut = redis::RedisError::from((redis::ErrorKind::Parse, "Unexpected end of input"));
        let err = Error::from(in_context_of_get(cut));
        assert!(err.is_connection_error(), "{err}");
        assert!(err.to_string().contains("middle of a reply"), "{err}");
        // A reply that merely has another type than asked for is no connection error.
        let conversion = redis::RedisError::from((redis::ErrorKind::Parse, "not an integer"));
        assert!(!Error::from(conversion).is_connection_error());
    }

    #[test]
    fn a_timeout_names_the_command_once() {
        let timeout = Error::CommandTimeout {
            command: "GET".into(),
            timeout: Duration::from_millis(200),
        };
        let err = in_context_of_get(timeout.into());
        assert!(err.is_timeout(), "{err}");
        assert_eq!(
            err.to_string(),
            "redis command GET on 127.0.0.1:7000 failed: timed out after 200ms"
        );
    }

    #[test]
    fn error_replies_and_client_errors_keep_their_kind() {
        let reply = redis::RedisError::from((
            redis::ErrorKind::Server(redis::ServerErrorKind::ResponseError),
            "WRONGTYPE",
        ));
        assert_eq!(
            in_context_of_get(reply.clone()).to_string(),
            reply.to_string()
        );
        let refused = redis::RedisError::from((redis::ErrorKind::Client, "refused"));
        let err = in_context_of_get(refused);
        assert_eq!(err.kind(), redis::ErrorKind::Client);
        assert!(err.to_string().contains("GET on 127.0.0.1:7000"), "{err}");
        assert!(!Error::from(err).is_connection_error());
    }
}
