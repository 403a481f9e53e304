//! The connection a Pub/Sub subscriber gets from a real server or cluster: a RESP3
//! multiplexed (or cluster) connection whose pushes go to the subscriber, with the pool's
//! socket timeout.
//!
//! RESP3 rather than a RESP2 `redis::aio::PubSub`: the connection still answers ordinary
//! commands (CLIENT SETNAME before subscribing, PING to prove it alive while subscribed),
//! and redis-rs reports its loss with a `Disconnection` push.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use redis::{Arg, Cmd, Pipeline, RedisError, RedisFuture, RedisResult, Value};

use crate::command::{command_name, display_name};

/// A subscriber's socket(s).
pub(crate) struct SubscriberConnection {
    pub(crate) conn: Link,
    pub(crate) socket_timeout: Option<Duration>,
    pub(crate) address: Arc<str>,
}

/// A single server's connection, or a cluster's (one socket per node; sharded channels).
pub(crate) enum Link {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

/// Runs `$method` of whichever connection `$link` is.
macro_rules! on_link {
    ($link:expr, $method:ident($($arg:expr),*)) => {
        match $link {
            Link::Single(conn) => conn.$method($($arg),*).await,
            Link::Cluster(conn) => conn.$method($($arg),*).await,
        }
    };
}

impl SubscriberConnection {
    async fn run(&mut self, cmd: &Cmd) -> RedisResult<Value> {
        let channels: Vec<&[u8]> = cmd
            .args_iter()
            .skip(1)
            .filter_map(|arg| match arg {
                Arg::Simple(bytes) => Some(bytes),
                _ => None,
            })
            .collect();
        let name = command_name(cmd).to_ascii_uppercase();
        let conn = &mut self.conn;
        // The subscribe family waits for every confirmation push: redis-rs knows how many.
        let sent = async {
            let done = match name.as_slice() {
                b"SUBSCRIBE" => on_link!(conn, subscribe(channels)),
                b"UNSUBSCRIBE" => on_link!(conn, unsubscribe(channels)),
                b"PSUBSCRIBE" => on_link!(conn, psubscribe(channels)),
                b"PUNSUBSCRIBE" => on_link!(conn, punsubscribe(channels)),
                b"SSUBSCRIBE" | b"SUNSUBSCRIBE" => match conn {
                    Link::Cluster(conn) if name == b"SSUBSCRIBE" => conn.ssubscribe(channels).await,
                    Link::Cluster(conn) => conn.sunsubscribe(channels).await,
                    Link::Single(_) => Err(RedisError::from((
                        redis::ErrorKind::Client,
                        "sharded channels need a cluster client",
                        String::from_utf8_lossy(&name).into_owned(),
                    ))),
                },
                _ => {
                    return match conn {
                        Link::Single(conn) => conn.send_packed_command(cmd).await,
                        Link::Cluster(conn) => conn.req_packed_command(cmd).await,
                    }
                }
            };
            done.map(|()| Value::Okay)
        };
        match self.socket_timeout {
            None => sent.await,
            Some(limit) => tokio::time::timeout(limit, sent).await.unwrap_or_else(|_| {
                Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "{} on the subscriber connection to {} timed out after {limit:?}",
                        display_name(cmd),
                        self.address
                    ),
                )
                .into())
            }),
        }
    }
}

/// What a subscriber connection answers a pipeline with (of every backend).
pub(crate) fn no_pipelines() -> RedisError {
    RedisError::from((
        redis::ErrorKind::Client,
        "pipelines are not supported on a subscriber connection",
    ))
}

impl ConnectionLike for SubscriberConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(self.run(cmd))
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        _pipeline: &'a Pipeline,
        _offset: usize,
        _count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async { Err(no_pipelines()) })
    }

    fn get_db(&self) -> i64 {
        match &self.conn {
            Link::Single(conn) => conn.get_db(),
            Link::Cluster(_) => 0,
        }
    }
}
