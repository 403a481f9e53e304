//! Pub/Sub: a [`Subscriber`] with a connection of its own, measured like every command,
//! that reconnects and resubscribes by itself.
//!
//! One task per subscriber (the *driver*) owns the connection's life: it forwards pushed
//! messages to the subscriber's stream, PINGs the connection now and then, and when the
//! connection is lost opens a new one and subscribes it to everything the subscriber was
//! subscribed to. The wanted subscriptions and the live connection sit together behind one
//! async lock, so a SUBSCRIBE racing a reconnection is either sent on the new connection
//! or seen by the resubscription: never lost.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use redis::{PushInfo, PushKind, ToRedisArgs, Value};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use super::monitored::{command_span, ClientCore, Measurement};
use crate::pool::PooledConnection;
use crate::sink::{key, names, Counter, Gauge, Histogram};
use crate::span::SpanContext;
use crate::{Error, Result};

/// How often the driver PINGs an idle subscriber connection, to find a dead one (a server
/// that vanished without closing the socket) and, behind sentinels, a demoted primary.
pub const SUBSCRIBER_PING_INTERVAL: Duration = Duration::from_secs(3);
/// How long a PING of the driver may wait for its answer before the connection is
/// declared dead (when no shorter `socket_timeout` is configured).
const PING_TIMEOUT: Duration = Duration::from_secs(5);
/// Reconnection attempts wait this long at first, doubling up to
/// [`SUBSCRIBER_MAX_RETRY_WAIT`].
const FIRST_RETRY_WAIT: Duration = Duration::from_millis(50);
/// The longest wait between two reconnection attempts.
pub const SUBSCRIBER_MAX_RETRY_WAIT: Duration = Duration::from_secs(1);

/// What a message came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum SubscriptionKind {
    /// A channel named by SUBSCRIBE.
    Channel,
    /// A glob pattern named by PSUBSCRIBE.
    Pattern,
    /// A sharded channel named by SSUBSCRIBE (cluster).
    Shard,
}

impl SubscriptionKind {
    fn label(self) -> &'static str {
        match self {
            SubscriptionKind::Channel => "channel",
            SubscriptionKind::Pattern => "pattern",
            SubscriptionKind::Shard => "shard",
        }
    }
}

/// One message received by a [`Subscriber`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PubSubMessage {
    /// The channel it was published on.
    pub channel: Vec<u8>,
    /// The pattern it matched, for messages received through PSUBSCRIBE.
    pub pattern: Option<Vec<u8>>,
    /// What was published, unchanged.
    pub payload: Vec<u8>,
    /// The kind of subscription it came through.
    pub kind: SubscriptionKind,
}

impl PubSubMessage {
    /// A message as a backend would deliver it (for tests of code that consumes them).
    pub fn new(
        channel: impl Into<Vec<u8>>,
        pattern: Option<Vec<u8>>,
        payload: impl Into<Vec<u8>>,
    ) -> Self {
        let kind = if pattern.is_some() {
            SubscriptionKind::Pattern
        } else {
            SubscriptionKind::Channel
        };
        PubSubMessage {
            channel: channel.into(),
            pattern,
            payload: payload.into(),
            kind,
        }
    }

    /// The channel as text (invalid UTF-8 replaced).
    pub fn channel_str(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.channel)
    }

    /// The payload converted as a reply of Redis would be (`String`, `i64`, `Vec<u8>`…).
    pub fn payload_as<T: redis::FromRedisValue>(&self) -> redis::RedisResult<T> {
        Ok(redis::from_redis_value(Value::BulkString(
            self.payload.clone(),
        ))?)
    }

    /// The subscription it came through: the pattern, or else the channel.
    pub fn subscription(&self) -> &[u8] {
        self.pattern.as_deref().unwrap_or(&self.channel)
    }

    fn from_push(push: PushInfo) -> Option<Self> {
        let mut parts = push.data.into_iter().map(|part| match part {
            Value::BulkString(bytes) => Some(bytes),
            Value::SimpleString(text) => Some(text.into_bytes()),
            _ => None,
        });
        let mut next = || parts.next().flatten();
        let (kind, pattern) = match push.kind {
            PushKind::Message => (SubscriptionKind::Channel, None),
            PushKind::SMessage => (SubscriptionKind::Shard, None),
            PushKind::PMessage => (SubscriptionKind::Pattern, Some(next()?)),
            _ => return None,
        };
        Some(PubSubMessage {
            channel: next()?,
            pattern,
            payload: next()?,
            kind,
        })
    }
}

/// What the subscriber wants to be subscribed to, and the connection it is on now.
#[derive(Default)]
struct Link {
    conn: Option<PooledConnection>,
    wanted: BTreeSet<(SubscriptionKind, Vec<u8>)>,
}

/// The subscriber's metrics, resolved once.
struct PubSubInstruments {
    subscriptions: Gauge,
    reconnects: Counter,
    gap: Histogram,
}

/// State shared by a subscriber and its driver.
struct Shared {
    core: Arc<ClientCore>,
    name: Arc<str>,
    link: tokio::sync::Mutex<Link>,
    instruments: PubSubInstruments,
    reconnects: AtomicU64,
    last_gap: Mutex<Option<Duration>>,
    // Subscriptions this subscriber added to the client's gauge (taken back on drop).
    counted: AtomicU64,
}

/// A Pub/Sub subscriber: (un)subscribe with its methods, read messages as a
/// [`Stream`](futures_core::Stream) or with [`next_message`](Self::next_message).
///
/// Made by [`MonitoredRedisConnection::pubsub`](crate::MonitoredRedisConnection::pubsub) or
/// [`RedisContextFactory::pubsub`](crate::RedisContextFactory::pubsub). It has a connection
/// of its own, opened with the client's settings (address, credentials, TLS files,
/// `client_name`, timeouts) and counted against `max_connections` while the subscriber
/// lives. Each SUBSCRIBE, PSUBSCRIBE, UNSUBSCRIBE, PUNSUBSCRIBE is a span
/// `<name>.SUBSCRIBE`… with the usual command metrics.
///
/// When the connection is lost (server restart, network, a sentinel failover) the
/// subscriber reconnects and resubscribes to everything by itself; messages published
/// while it was disconnected are **lost**: Redis Pub/Sub delivers at most once. Use a
/// [`MessageQueue`](crate::MessageQueue) or Redis streams when nothing may be lost.
/// [`reconnects`](Self::reconnects) and [`last_gap`](Self::last_gap) (and the metrics
/// `redis_client_pubsub_reconnects_total`, `redis_client_pubsub_reconnect_gap_seconds`)
/// say how often and for how long that happened.
///
/// Messages are buffered (unbounded) until read: read them steadily. Dropping the
/// subscriber closes its connection.
///
/// ```
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use baseplate_redis::{pool::InMemoryBackend, RedisContextFactory};
/// use redis::AsyncCommands;
///
/// let factory = RedisContextFactory::new(std::sync::Arc::new(InMemoryBackend::new()));
/// let mut subscriber = factory.pubsub().await?;
/// subscriber.subscribe("news").await?;
/// subscriber.psubscribe("sport.*").await?;
///
/// let mut redis = factory.connection();
/// let _: i64 = redis.publish("sport.golf", "birdie").await?;
/// let message = subscriber.next_message().await.expect("subscriber is open");
/// assert_eq!(message.channel_str(), "sport.golf");
/// assert_eq!(message.pattern.as_deref(), Some(&b"sport.*"[..]));
/// assert_eq!(message.payload_as::<String>()?, "birdie");
/// # Ok(()) }
/// # tokio::runtime::Runtime::new().unwrap().block_on(run()).unwrap();
/// ```
pub struct Subscriber {
    shared: Arc<Shared>,
    span: SpanContext,
    messages: UnboundedReceiver<PubSubMessage>,
    driver: tokio::task::JoinHandle<()>,
}

impl Subscriber {
    /// Opens the subscriber's connection (waiting, bounded, for a free one of the pool) and
    /// starts its driver.
    pub(crate) async fn open(
        core: Arc<ClientCore>,
        name: Arc<str>,
        span: SpanContext,
    ) -> Result<Subscriber> {
        let sink = core.instruments.sink().clone();
        let labels = core.instruments.client_labels();
        let instruments = PubSubInstruments {
            subscriptions: sink.gauge(&key(names::PUBSUB_SUBSCRIPTIONS, &labels)),
            reconnects: sink.counter(&key(names::PUBSUB_RECONNECTS_TOTAL, &labels)),
            gap: sink.histogram(&key(names::PUBSUB_RECONNECT_GAP_SECONDS, &labels)),
        };
        let (pushes, pushed) = unbounded_channel();
        let conn = core.pool.subscriber(pushes).await?;
        let shared = Arc::new(Shared {
            core,
            name,
            link: tokio::sync::Mutex::new(Link {
                conn: Some(conn),
                wanted: BTreeSet::new(),
            }),
            instruments,
            reconnects: AtomicU64::new(0),
            last_gap: Mutex::new(None),
            counted: AtomicU64::new(0),
        });
        let (messages_in, messages) = unbounded_channel();
        let driver = tokio::spawn(drive(shared.clone(), pushed, messages_in));
        Ok(Subscriber {
            shared,
            span,
            messages,
            driver,
        })
    }

    /// Subscribes to one or more channels (`"news"`, `&["a", "b"]`).
    ///
    /// `Ok` once the server confirmed. On an error the connection is lost, the subscription
    /// is kept and made again when the subscriber has reconnected; a refusal by the server
    /// (such as an ACL error) forgets it.
    pub async fn subscribe(&self, channels: impl ToRedisArgs) -> Result<()> {
        self.change(SubscriptionKind::Channel, true, channels).await
    }

    /// Subscribes to one or more glob patterns (`news.*`, `user:?:events`, `[ab]*`).
    pub async fn psubscribe(&self, patterns: impl ToRedisArgs) -> Result<()> {
        self.change(SubscriptionKind::Pattern, true, patterns).await
    }

    /// Subscribes to sharded channels (Redis 7 SSUBSCRIBE), on a cluster client: each is
    /// subscribed on the node owning its slot. When the slot moves, the node drops the
    /// subscription and the subscriber reconnects (counted and measured as a reconnection),
    /// which subscribes it on the new owner. Other clients answer an error.
    pub async fn ssubscribe(&self, channels: impl ToRedisArgs) -> Result<()> {
        self.change(SubscriptionKind::Shard, true, channels).await
    }

    /// Unsubscribes from sharded channels; from every one when given none.
    pub async fn sunsubscribe(&self, channels: impl ToRedisArgs) -> Result<()> {
        self.change(SubscriptionKind::Shard, false, channels).await
    }

    /// Unsubscribes from channels; from every channel when given none (`&[] as &[&str]`).
    pub async fn unsubscribe(&self, channels: impl ToRedisArgs) -> Result<()> {
        self.change(SubscriptionKind::Channel, false, channels)
            .await
    }

    /// Unsubscribes from patterns; from every pattern when given none.
    pub async fn punsubscribe(&self, patterns: impl ToRedisArgs) -> Result<()> {
        self.change(SubscriptionKind::Pattern, false, patterns)
            .await
    }

    /// The next message, or `None` once the subscriber can receive no more (its client's
    /// backend is gone). Waits for one; never returns `None` because of a reconnection.
    pub async fn next_message(&mut self) -> Option<PubSubMessage> {
        self.messages.recv().await
    }

    /// How many times the connection was lost and remade (each time resubscribed).
    pub fn reconnects(&self) -> u64 {
        self.shared.reconnects.load(Ordering::Relaxed)
    }

    /// How long the last reconnection left the subscriber without a subscribed connection
    /// (from the loss to the end of resubscribing); `None` before the first.
    pub fn last_gap(&self) -> Option<Duration> {
        *self
            .shared
            .last_gap
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// The channels and patterns subscribed to now, as (kind, name).
    pub async fn subscriptions(&self) -> Vec<(SubscriptionKind, Vec<u8>)> {
        self.shared
            .link
            .lock()
            .await
            .wanted
            .iter()
            .cloned()
            .collect()
    }

    async fn change(
        &self,
        kind: SubscriptionKind,
        subscribe: bool,
        names: impl ToRedisArgs,
    ) -> Result<()> {
        let names = names.to_redis_args();
        let command = command_for(kind, subscribe);
        let mut link = self.shared.link.lock().await;
        let names: Vec<Vec<u8>> = if names.is_empty() && !subscribe {
            link.wanted
                .iter()
                .filter(|(k, _)| *k == kind)
                .map(|(_, n)| n.clone())
                .collect()
        } else {
            names
        };
        let before = link.wanted.len();
        for name in &names {
            if subscribe {
                link.wanted.insert((kind, name.clone()));
            } else {
                link.wanted.remove(&(kind, name.clone()));
            }
        }
        self.shared.count_subscriptions(before, link.wanted.len());
        let Some(conn) = link.conn.as_mut() else {
            // Reconnecting: the driver subscribes the new connection to `wanted`.
            return Ok(());
        };
        if names.is_empty() {
            return Ok(());
        }
        let result = self.shared.send(conn, command, &names, &self.span).await;
        if let Err(err) = &result {
            let refused = !crate::pool::breaks_connection(err) && !err.is_timeout();
            if refused && subscribe {
                let before = link.wanted.len();
                for name in &names {
                    link.wanted.remove(&(kind, name.clone()));
                }
                self.shared.count_subscriptions(before, link.wanted.len());
            }
        }
        result.map(drop).map_err(|source| Error::Command {
            command: command.to_string(),
            address: self.shared.core.pool.address().to_string(),
            source,
        })
    }
}

fn command_for(kind: SubscriptionKind, subscribe: bool) -> &'static str {
    match (kind, subscribe) {
        (SubscriptionKind::Channel, true) => "SUBSCRIBE",
        (SubscriptionKind::Channel, false) => "UNSUBSCRIBE",
        (SubscriptionKind::Pattern, true) => "PSUBSCRIBE",
        (SubscriptionKind::Pattern, false) => "PUNSUBSCRIBE",
        (SubscriptionKind::Shard, true) => "SSUBSCRIBE",
        (SubscriptionKind::Shard, false) => "SUNSUBSCRIBE",
    }
}

impl Shared {
    /// Runs one (un)subscribe command (or PING) on the subscriber's connection, with its
    /// span and metrics.
    async fn send(
        &self,
        conn: &mut PooledConnection,
        command: &str,
        args: &[Vec<u8>],
        parent: &SpanContext,
    ) -> redis::RedisResult<Value> {
        let mut cmd = redis::cmd(command);
        for arg in args {
            cmd.arg(arg.as_slice());
        }
        let instruments = self.core.instruments.command(command.as_bytes());
        let span = command_span(&self.core, &self.name, parent, &instruments, &cmd);
        let measurement = Measurement::start(&instruments, span);
        let result = conn.command(&cmd).await;
        if result.as_ref().is_err_and(crate::pool::breaks_connection) {
            conn.discard();
        }
        measurement.finish(&result);
        result
    }

    /// Keeps the client's subscription gauge in step with this subscriber's count.
    fn count_subscriptions(&self, before: usize, after: usize) {
        let gauge = &self.instruments.subscriptions;
        if after > before {
            gauge.increment((after - before) as f64);
            self.counted
                .fetch_add((after - before) as u64, Ordering::Relaxed);
        } else if before > after {
            gauge.decrement((before - after) as f64);
            self.counted
                .fetch_sub((before - after) as u64, Ordering::Relaxed);
        }
    }

    /// Subscribes a fresh connection to everything wanted, one command per kind.
    async fn resubscribe(&self, link: &mut Link, mut conn: PooledConnection) -> Result<()> {
        for kind in [
            SubscriptionKind::Channel,
            SubscriptionKind::Pattern,
            SubscriptionKind::Shard,
        ] {
            let names: Vec<Vec<u8>> = link
                .wanted
                .iter()
                .filter(|(k, _)| *k == kind)
                .map(|(_, n)| n.clone())
                .collect();
            if names.is_empty() {
                continue;
            }
            let command = command_for(kind, true);
            self.send(&mut conn, command, &names, &SpanContext::detached())
                .await
                .map_err(|source| Error::Command {
                    command: command.to_string(),
                    address: self.core.pool.address().to_string(),
                    source,
                })?;
        }
        link.conn = Some(conn);
        Ok(())
    }
}

/// The driver: forwards messages, watches the connection, reconnects and resubscribes.
async fn drive(
    shared: Arc<Shared>,
    mut pushed: UnboundedReceiver<PushInfo>,
    messages: UnboundedSender<PubSubMessage>,
) {
    let mut counters: HashMap<(SubscriptionKind, Vec<u8>), Counter> = HashMap::new();
    loop {
        let lost = receive(&shared, &mut pushed, &messages, &mut counters).await;
        let Some(lost_at) = lost else {
            return; // The subscriber is gone.
        };
        shared.link.lock().await.conn = None;
        match reconnect(&shared, &messages).await {
            Some(fresh) => pushed = fresh,
            None => return,
        }
        let gap = lost_at.elapsed();
        shared.reconnects.fetch_add(1, Ordering::Relaxed);
        *shared.last_gap.lock().unwrap_or_else(|e| e.into_inner()) = Some(gap);
        shared.instruments.reconnects.increment(1);
        shared.instruments.gap.record(gap.as_secs_f64());
        tracing::info!(
            client = %shared.name,
            gap_ms = gap.as_millis() as u64,
            "redis subscriber reconnected and resubscribed; messages published meanwhile were lost"
        );
    }
}

/// Forwards messages until the connection is lost (`Some(when)`) or the subscriber is
/// dropped (`None`).
async fn receive(
    shared: &Shared,
    pushed: &mut UnboundedReceiver<PushInfo>,
    messages: &UnboundedSender<PubSubMessage>,
    counters: &mut HashMap<(SubscriptionKind, Vec<u8>), Counter>,
) -> Option<Instant> {
    let mut ticks = tokio::time::interval(SUBSCRIBER_PING_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        tokio::select! {
            push = pushed.recv() => {
                let Some(push) = push else { return Some(Instant::now()) };
                if push.kind == PushKind::Disconnection {
                    return Some(Instant::now());
                }
                if push.kind == PushKind::SUnsubscribe && shard_moved(shared, &push).await {
                    // Start over on a fresh cluster connection, which subscribes each
                    // sharded channel once, on its slot's new owner.
                    return Some(Instant::now());
                }
                let Some(message) = PubSubMessage::from_push(push) else { continue };
                let subscription = (message.kind, message.subscription().to_vec());
                counters
                    .entry(subscription)
                    .or_insert_with_key(|(kind, name)| message_counter(shared, *kind, name))
                    .increment(1);
                if messages.send(message).is_err() {
                    return None;
                }
            }
            _ = ticks.tick() => {
                if messages.is_closed() {
                    return None;
                }
                if !ping(shared).await {
                    return Some(Instant::now());
                }
            }
            _ = messages.closed() => return None,
        }
    }
}

/// Whether a `sunsubscribe` push is a cluster node dropping a sharded subscription still
/// wanted (its slot moved away), rather than the answer to our own SUNSUBSCRIBE.
async fn shard_moved(shared: &Shared, push: &PushInfo) -> bool {
    let Some(Value::BulkString(channel)) = push.data.first() else {
        return false;
    };
    let link = shared.link.lock().await;
    link.wanted
        .contains(&(SubscriptionKind::Shard, channel.clone()))
}

fn message_counter(shared: &Shared, kind: SubscriptionKind, name: &[u8]) -> Counter {
    let name = String::from_utf8_lossy(name);
    let labels = shared.core.instruments.client_labels();
    let mut all: Vec<(&'static str, &str)> = labels.to_vec();
    all.push((names::LABEL_PUBSUB_SUBSCRIPTION, &name));
    all.push((names::LABEL_PUBSUB_KIND, kind.label()));
    shared
        .core
        .instruments
        .sink()
        .counter(&key(names::PUBSUB_MESSAGES_TOTAL, &all))
}

/// Whether the connection still answers (and still goes where it should).
async fn ping(shared: &Shared) -> bool {
    let mut link = shared.link.lock().await;
    let Some(conn) = link.conn.as_mut() else {
        return false;
    };
    if conn.is_stale() || conn.is_discarded() {
        return false;
    }
    let ping = redis::cmd("PING");
    let pinged = conn.command(&ping);
    matches!(tokio::time::timeout(PING_TIMEOUT, pinged).await, Ok(Ok(_)))
}

/// Opens a new connection and resubscribes it, retrying with a growing wait until it
/// works or the subscriber is dropped.
async fn reconnect(
    shared: &Shared,
    messages: &UnboundedSender<PubSubMessage>,
) -> Option<UnboundedReceiver<PushInfo>> {
    let mut wait = FIRST_RETRY_WAIT;
    loop {
        if messages.is_closed() {
            return None;
        }
        let (pushes, pushed) = unbounded_channel();
        let attempt = async {
            let conn = shared.core.pool.subscriber(pushes).await?;
            let mut link = shared.link.lock().await;
            shared.resubscribe(&mut link, conn).await
        };
        match attempt.await {
            Ok(()) => return Some(pushed),
            Err(err) => {
                tracing::warn!(client = %shared.name, error = %err, "redis subscriber cannot reconnect yet");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = messages.closed() => return None,
        }
        wait = (wait * 2).min(SUBSCRIBER_MAX_RETRY_WAIT);
    }
}

impl futures_core::Stream for Subscriber {
    type Item = PubSubMessage;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<PubSubMessage>> {
        self.messages.poll_recv(cx)
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        // The driver would notice on its own; stopping it and closing the connection here
        // ends the subscriptions now (unless the driver holds the link this instant, and
        // then as soon as its task is dropped).
        self.driver.abort();
        if let Ok(mut link) = self.shared.link.try_lock() {
            link.conn = None;
        }
        let counted = self.shared.counted.swap(0, Ordering::Relaxed);
        self.shared
            .instruments
            .subscriptions
            .decrement(counted as f64);
    }
}

impl fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscriber")
            .field("name", &self.shared.name)
            .field("address", &self.shared.core.pool.address())
            .field("reconnects", &self.reconnects())
            .finish_non_exhaustive()
    }
}
