//! Pub/Sub in the in-memory backend: PUBLISH on any connection of a store reaches the
//! subscribers of that store (whatever their database, as in Redis), by channel name or by
//! glob pattern (Redis's `stringmatchlen` rules).
//!
//! Messages are pushed as a RESP3 server pushes them (`message [channel, payload]`,
//! `pmessage [pattern, channel, payload]`), in publishing order.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use redis::aio::ConnectionLike;
use redis::{Cmd, Pipeline, PushInfo, PushKind, RedisError, RedisFuture, Value};

use super::commands::glob_match;
use super::store::Store;
use crate::pool::PushSender;

/// Who listens to what, in one store.
#[derive(Debug, Default)]
pub(crate) struct Broker {
    inner: Mutex<Listeners>,
}

#[derive(Debug, Default)]
struct Listeners {
    next_id: u64,
    by_id: HashMap<u64, Listener>,
}

#[derive(Debug)]
struct Listener {
    channels: BTreeSet<Vec<u8>>,
    patterns: BTreeSet<Vec<u8>>,
    pushes: PushSender,
}

impl Listener {
    fn count(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }
}

impl Broker {
    fn listeners(&self) -> std::sync::MutexGuard<'_, Listeners> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// PUBLISH: delivers `payload` to every subscription matching `channel` and returns how
    /// many received it (channel subscribers first, then pattern subscribers, as Redis).
    pub(crate) fn publish(&self, channel: &[u8], payload: &[u8]) -> i64 {
        let mut listeners = self.listeners();
        let mut received = 0;
        let mut gone = Vec::new();
        for (id, listener) in &listeners.by_id {
            if listener.channels.contains(channel) {
                let push = push(PushKind::Message, [channel, payload]);
                match listener.pushes.send(push) {
                    Ok(()) => received += 1,
                    Err(_) => gone.push(*id),
                }
            }
        }
        for (id, listener) in &listeners.by_id {
            for pattern in &listener.patterns {
                if glob_match(pattern, channel) {
                    let push = push(PushKind::PMessage, [pattern, channel, payload]);
                    match listener.pushes.send(push) {
                        Ok(()) => received += 1,
                        Err(_) => gone.push(*id),
                    }
                }
            }
        }
        // A subscriber whose receiver is gone is gone.
        for id in gone {
            listeners.by_id.remove(&id);
        }
        received
    }
}

fn push<const N: usize>(kind: PushKind, data: [&[u8]; N]) -> PushInfo {
    PushInfo {
        kind,
        data: data
            .iter()
            .map(|part| Value::BulkString(part.to_vec()))
            .collect(),
    }
}

/// A subscriber's connection to an in-memory store: SUBSCRIBE, PSUBSCRIBE, UNSUBSCRIBE,
/// PUNSUBSCRIBE and PING. Dropping it ends its subscriptions.
#[derive(Debug)]
pub(crate) struct InMemorySubscriber {
    store: Arc<Store>,
    id: u64,
}

impl InMemorySubscriber {
    pub(crate) fn new(store: Arc<Store>, pushes: PushSender) -> Self {
        let id = {
            let mut listeners = store.broker.listeners();
            listeners.next_id += 1;
            let id = listeners.next_id;
            listeners.by_id.insert(
                id,
                Listener {
                    channels: BTreeSet::new(),
                    patterns: BTreeSet::new(),
                    pushes,
                },
            );
            id
        };
        InMemorySubscriber { store, id }
    }

    fn run(&mut self, cmd: &Cmd) -> Result<Value, RedisError> {
        let args: Vec<&[u8]> = cmd
            .args_iter()
            .filter_map(|arg| match arg {
                redis::Arg::Simple(bytes) => Some(bytes),
                _ => None,
            })
            .collect();
        let Some((name, names)) = args.split_first() else {
            return Err((redis::ErrorKind::Client, "empty command").into());
        };
        let name = name.to_ascii_uppercase();
        let mut listeners = self.store.broker.listeners();
        let Some(listener) = listeners.by_id.get_mut(&self.id) else {
            return Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe).into());
        };
        let (patterns, subscribing) = match name.as_slice() {
            b"PING" => return Ok(Value::SimpleString("PONG".into())),
            b"SUBSCRIBE" => (false, true),
            b"UNSUBSCRIBE" => (false, false),
            b"PSUBSCRIBE" => (true, true),
            b"PUNSUBSCRIBE" => (true, false),
            _ => {
                return Err(RedisError::from((
                    redis::ErrorKind::Client,
                    "unsupported on an in-memory subscriber",
                    format!(
                        "{}: only (P)SUBSCRIBE, (P)UNSUBSCRIBE and PING are",
                        String::from_utf8_lossy(&name)
                    ),
                )))
            }
        };
        if subscribing && names.is_empty() {
            return Err(RedisError::from((
                redis::ErrorKind::Server(redis::ServerErrorKind::ResponseError),
                "wrong number of arguments",
                format!(
                    "for '{}' command",
                    String::from_utf8_lossy(&name).to_lowercase()
                ),
            )));
        }
        let set = if patterns {
            &mut listener.patterns
        } else {
            &mut listener.channels
        };
        // UNSUBSCRIBE without names ends every subscription of its kind.
        let names: Vec<Vec<u8>> = if names.is_empty() {
            set.iter().cloned().collect()
        } else {
            names.iter().map(|n| n.to_vec()).collect()
        };
        for n in &names {
            if subscribing {
                set.insert(n.clone());
            } else {
                set.remove(n);
            }
        }
        let count = listener.count() as i64;
        let push_kind = match name.as_slice() {
            b"SUBSCRIBE" => PushKind::Subscribe,
            b"UNSUBSCRIBE" => PushKind::Unsubscribe,
            b"PSUBSCRIBE" => PushKind::PSubscribe,
            _ => PushKind::PUnsubscribe,
        };
        for n in names {
            let _ = listener.pushes.send(PushInfo {
                kind: push_kind.clone(),
                data: vec![Value::BulkString(n), Value::Int(count)],
            });
        }
        Ok(Value::Okay)
    }
}

impl Drop for InMemorySubscriber {
    fn drop(&mut self) {
        self.store.broker.listeners().by_id.remove(&self.id);
    }
}

impl ConnectionLike for InMemorySubscriber {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        let reply = self.run(cmd);
        Box::pin(async move { reply })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        _pipeline: &'a Pipeline,
        _offset: usize,
        _count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async { Err(crate::pool::subscriber_connection::no_pipelines()) })
    }

    fn get_db(&self) -> i64 {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(args: &[&str]) -> Cmd {
        let mut c = redis::cmd(args[0]);
        for a in &args[1..] {
            c.arg(*a);
        }
        c
    }

    #[test]
    fn publish_reaches_channels_and_matching_patterns() {
        let store = Arc::new(Store::new());
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut sub = InMemorySubscriber::new(store.clone(), tx);
        sub.run(&cmd(&["SUBSCRIBE", "news"])).unwrap();
        sub.run(&cmd(&["PSUBSCRIBE", "n?ws", "sport.*"])).unwrap();
        let kinds: Vec<PushKind> = std::iter::from_fn(|| rx.try_recv().ok())
            .map(|p| p.kind)
            .collect();
        assert_eq!(
            kinds,
            [
                PushKind::Subscribe,
                PushKind::PSubscribe,
                PushKind::PSubscribe
            ]
        );

        assert_eq!(store.broker.publish(b"news", b"a"), 2);
        assert_eq!(store.broker.publish(b"sport.golf", b"b"), 1);
        assert_eq!(store.broker.publish(b"weather", b"c"), 0);
        let got: Vec<PushInfo> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].kind, PushKind::Message);
        assert_eq!(got[1].kind, PushKind::PMessage);
        assert_eq!(got[1].data[0], Value::BulkString(b"n?ws".to_vec()));
        assert_eq!(got[2].data[1], Value::BulkString(b"sport.golf".to_vec()));

        sub.run(&cmd(&["UNSUBSCRIBE"])).unwrap();
        sub.run(&cmd(&["PUNSUBSCRIBE", "n?ws"])).unwrap();
        assert_eq!(store.broker.publish(b"news", b"d"), 0);
        drop(sub);
        assert_eq!(store.broker.publish(b"sport.golf", b"e"), 0);
    }
}
