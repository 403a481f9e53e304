//! A message queue on a Redis list.

use std::time::Duration;

use redis::Value;

use crate::{Error, MonitoredRedisConnection, Result};

/// A FIFO queue of binary messages kept in a Redis list.
///
/// [`put`](Self::put) appends (RPUSH); [`get`](Self::get) pops from the head, blocking as
/// asked; [`close`](Self::close) deletes the list. Messages come back byte for byte.
///
/// ```
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use baseplate_redis::{pool::InMemoryBackend, MessageQueue, RedisContextFactory};
///
/// let factory = RedisContextFactory::new(std::sync::Arc::new(InMemoryBackend::new()));
/// let mut queue = MessageQueue::new("jobs", factory.connection());
/// queue.put(b"\x00binary\xff").await?;
/// assert_eq!(queue.get(Some(Duration::from_secs(1))).await?, b"\x00binary\xff");
/// assert!(queue.get(Some(Duration::ZERO)).await.unwrap_err().is_queue_timeout());
/// queue.close().await?;
/// # Ok(()) }
/// # tokio::runtime::Runtime::new().unwrap().block_on(run()).unwrap();
/// ```
#[derive(Debug)]
pub struct MessageQueue {
    key: String,
    conn: MonitoredRedisConnection,
}

impl MessageQueue {
    /// The queue stored under `key`, used through `conn`.
    pub fn new(key: impl Into<String>, conn: MonitoredRedisConnection) -> Self {
        MessageQueue {
            key: key.into(),
            conn,
        }
    }

    /// The list's key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Appends a message to the tail of the queue.
    pub async fn put(&mut self, message: &[u8]) -> Result<()> {
        redis::cmd("RPUSH")
            .arg(&self.key)
            .arg(message)
            .exec_async(&mut self.conn)
            .await
            .map_err(self.failed("RPUSH"))?;
        Ok(())
    }

    /// Takes the message at the head of the queue.
    ///
    /// - `None`: waits until a message arrives;
    /// - `Some(Duration::ZERO)`: does not wait;
    /// - `Some(t)`: waits up to `t` (sub-second precision).
    ///
    /// When no message came in time the error is [`Error::QueueTimedOut`]
    /// ([`Error::is_queue_timeout`]).
    pub async fn get(&mut self, timeout: Option<Duration>) -> Result<Vec<u8>> {
        let waits = timeout.is_none_or(|t| !t.is_zero());
        let reply = match timeout {
            Some(t) if t.is_zero() => redis::cmd("LPOP")
                .arg(&self.key)
                .query_async::<Value>(&mut self.conn)
                .await
                .map_err(self.failed("LPOP"))?,
            _ => {
                let seconds = timeout.map_or(0.0, |t| t.as_secs_f64());
                // BLPOP 0 would block forever: round tiny waits up to a millisecond.
                let seconds = if timeout.is_some() {
                    seconds.max(0.001)
                } else {
                    seconds
                };
                let popped = redis::cmd("BLPOP")
                    .arg(&self.key)
                    .arg(format!("{seconds:.3}"))
                    .query_async::<Value>(&mut self.conn)
                    .await
                    .map_err(self.failed("BLPOP"))?;
                match popped {
                    Value::Array(mut pair) if pair.len() == 2 => pair.pop().unwrap_or(Value::Nil),
                    other => other,
                }
            }
        };
        match reply {
            Value::BulkString(message) => Ok(message),
            Value::Nil => Err(Error::QueueTimedOut {
                queue: self.key.clone(),
                timeout: timeout.unwrap_or(Duration::MAX),
            }),
            other => Err(Error::Command {
                command: if waits { "BLPOP" } else { "LPOP" }.into(),
                address: self.conn.address().to_string(),
                source: redis::RedisError::from((
                    redis::ErrorKind::UnexpectedReturnType,
                    "unexpected reply to a queue pop",
                    format!("{other:?}"),
                )),
            }),
        }
    }

    /// Deletes the queue and every message in it.
    pub async fn close(&mut self) -> Result<()> {
        redis::cmd("DEL")
            .arg(&self.key)
            .exec_async(&mut self.conn)
            .await
            .map_err(self.failed("DEL"))?;
        Ok(())
    }

    /// The error of a queue operation. The handle has named the command and the server in
    /// connection errors; Redis's own error replies (a key of another type…) get them here.
    fn failed(&self, command: &'static str) -> impl FnOnce(redis::RedisError) -> Error + '_ {
        move |source| match Error::from(source) {
            Error::Redis(source) => Error::Command {
                command: command.to_string(),
                address: self.conn.address().to_string(),
                source,
            },
            located => located,
        }
    }
}
