//! Client-side caching (opt-in, `client_cache = true`): GET, MGET and HGET replies kept in
//! the process and served from there until Redis says the key changed.
//!
//! Reads that miss go over a connection of the cache's own (RESP3, `CLIENT TRACKING ON`,
//! counted against `max_connections`, opened like a Pub/Sub subscriber's), so the server
//! remembers the keys read there and pushes an `invalidate` on that connection when one
//! changes. Correctness before speed:
//!
//! - Pushes are applied before every lookup and every insertion, so a value is never
//!   served after its invalidation reached the process.
//! - A reply is stored only if no invalidation, flush or write through this client touched
//!   its key while it was in flight (a sequence number, bumped by those, must not move).
//! - Writes through this client invalidate the keys they name at once, before and after
//!   they run: a handle reads its own writes.
//! - When the tracking connection is lost, or has not proved alive for
//!   [`CACHE_LIVENESS`], nothing is served from the cache; on loss it is flushed.
//! - Only one miss at a time is fetched over the tracking connection; the others go the
//!   ordinary way and are not stored, so misses never queue behind each other.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use redis::{Arg, Cmd, Pipeline, PushInfo, PushKind, RedisResult, Value};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

use super::instruments::ClientInstruments;
use crate::pool::{PoolBackend, PooledConnection};
use crate::sink::{key, names, Counter, Gauge};

/// How often the tracking connection is PINGed; hits are served only while it answered
/// within [`CACHE_LIVENESS`].
const PING_INTERVAL: Duration = Duration::from_millis(500);
/// How long the tracking connection may go without proving alive before the cache stops
/// serving (a connection that died silently would deliver no invalidations).
pub const CACHE_LIVENESS: Duration = Duration::from_secs(2);
/// How long a PING may take before the tracking connection is declared dead.
const PING_TIMEOUT: Duration = Duration::from_secs(1);
/// How long after a failed attempt to open the tracking connection the next one is made.
const REOPEN_WAIT: Duration = Duration::from_millis(200);

/// Default most keys kept (`client_cache_max_keys`).
pub const DEFAULT_CACHE_MAX_KEYS: u32 = 10_000;
/// Default longest time a value is kept (`client_cache_ttl`), whatever the server says.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(60);

/// Settings of a client's cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientCacheOptions {
    /// The most Redis keys kept; the least recently used go first.
    pub max_keys: u32,
    /// The longest a value is kept.
    pub ttl: Duration,
}

impl Default for ClientCacheOptions {
    fn default() -> Self {
        ClientCacheOptions {
            max_keys: DEFAULT_CACHE_MAX_KEYS,
            ttl: DEFAULT_CACHE_TTL,
        }
    }
}

impl ClientCacheOptions {
    /// Sets the most keys kept.
    pub fn max_keys(mut self, max_keys: u32) -> Self {
        self.max_keys = max_keys.max(1);
        self
    }

    /// Sets the longest a value is kept.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }
}

/// A read the cache can answer.
enum Read {
    /// GET key, HGET key field: one reply, stored under (key, what).
    One { key: Vec<u8>, what: Vec<Vec<u8>> },
    /// MGET keys: one GET entry per key.
    Many(Vec<Vec<u8>>),
}

const GET: &[u8] = b"GET";

fn simple_args(cmd: &Cmd) -> Vec<&[u8]> {
    cmd.args_iter()
        .filter_map(|arg| match arg {
            Arg::Simple(bytes) => Some(bytes),
            _ => None,
        })
        .collect()
}

fn read_of(cmd: &Cmd) -> Option<Read> {
    let args = simple_args(cmd);
    let name = args.first()?;
    if name.eq_ignore_ascii_case(b"GET") && args.len() == 2 {
        Some(Read::One {
            key: args[1].to_vec(),
            what: vec![GET.to_vec()],
        })
    } else if name.eq_ignore_ascii_case(b"HGET") && args.len() == 3 {
        Some(Read::One {
            key: args[1].to_vec(),
            what: vec![b"HGET".to_vec(), args[2].to_vec()],
        })
    } else if name.eq_ignore_ascii_case(b"MGET") && args.len() >= 2 {
        Some(Read::Many(args[1..].iter().map(|k| k.to_vec()).collect()))
    } else {
        None
    }
}

/// The cache's metrics, resolved once.
struct CacheInstruments {
    hits: Counter,
    misses: Counter,
    invalidations: Counter,
    evictions: Counter,
    flushes: Counter,
    keys: Gauge,
}

struct Entry {
    replies: HashMap<Vec<Vec<u8>>, Value>,
    expires: Instant,
    used: u64,
}

#[derive(Default)]
struct State {
    pushes: Option<UnboundedReceiver<PushInfo>>,
    entries: HashMap<Vec<u8>, Entry>,
    // Least recently used first: use tick → key.
    lru: BTreeMap<u64, Vec<u8>>,
    tick: u64,
    // Moves whenever a stored or in-flight key is invalidated or the cache is flushed: a
    // reply fetched across a move is not stored.
    seq: u64,
    in_flight: HashMap<Vec<u8>, usize>,
    // The tracking connection is open and proved alive at `alive_at`.
    connected: bool,
    alive_at: Option<Instant>,
}

/// Keys being fetched over the tracking connection, and the sequence number when the fetch
/// was sent. Dropped unfinished (the command was cancelled), it still forgets its keys.
struct Fetching<'a> {
    cache: &'a ClientCache,
    keys: Vec<Vec<u8>>,
    seq: u64,
    done: bool,
}

impl<'a> Fetching<'a> {
    fn start(cache: &'a ClientCache, keys: Vec<Vec<u8>>) -> Self {
        let mut state = cache.lock();
        for key in &keys {
            *state.in_flight.entry(key.clone()).or_default() += 1;
        }
        let seq = state.seq;
        Fetching {
            cache,
            keys,
            seq,
            done: false,
        }
    }

    /// The fetch is back: its keys are no longer in flight. Returns the sequence number
    /// it was sent at.
    fn finish(mut self, state: &mut State) -> u64 {
        self.forget(state);
        self.done = true;
        self.seq
    }

    fn forget(&self, state: &mut State) {
        for key in &self.keys {
            if let Some(count) = state.in_flight.get_mut(key) {
                *count -= 1;
                if *count == 0 {
                    state.in_flight.remove(key);
                }
            }
        }
    }
}

impl Drop for Fetching<'_> {
    fn drop(&mut self) {
        if !self.done {
            let mut state = self.cache.lock();
            self.forget(&mut state);
        }
    }
}

/// The tracking connection, used by one fetch (or PING) at a time.
#[derive(Default)]
struct Tracking {
    conn: Option<PooledConnection>,
    failed_at: Option<Instant>,
}

/// A client's cache. See the module's documentation for its guarantees.
pub(crate) struct ClientCache {
    this: Weak<ClientCache>,
    keep_alive: std::sync::Once,
    pool: Arc<dyn PoolBackend>,
    options: ClientCacheOptions,
    state: Mutex<State>,
    tracking: tokio::sync::Mutex<Tracking>,
    instruments: CacheInstruments,
}

/// How a cacheable command was answered, for its span.
pub(crate) enum Served {
    Hit(Value),
    Fetched(RedisResult<Value>),
    /// Not answered by the cache: run it the ordinary way.
    Pass,
}

impl ClientCache {
    pub(crate) fn new(
        pool: Arc<dyn PoolBackend>,
        options: ClientCacheOptions,
        instruments: &ClientInstruments,
    ) -> Arc<Self> {
        let sink = instruments.sink();
        let labels = instruments.client_labels();
        let counter = |name| sink.counter(&key(name, &labels));
        Arc::new_cyclic(|this| ClientCache {
            this: this.clone(),
            keep_alive: std::sync::Once::new(),
            pool,
            options,
            state: Mutex::new(State::default()),
            tracking: tokio::sync::Mutex::new(Tracking::default()),
            instruments: CacheInstruments {
                hits: counter(names::CLIENT_CACHE_HITS_TOTAL),
                misses: counter(names::CLIENT_CACHE_MISSES_TOTAL),
                invalidations: counter(names::CLIENT_CACHE_INVALIDATIONS_TOTAL),
                evictions: counter(names::CLIENT_CACHE_EVICTIONS_TOTAL),
                flushes: counter(names::CLIENT_CACHE_FLUSHES_TOTAL),
                keys: sink.gauge(&key(names::CLIENT_CACHE_KEYS, &labels)),
            },
        })
    }

    /// Its settings.
    pub(crate) fn options(&self) -> ClientCacheOptions {
        self.options
    }

    /// How many keys it holds now.
    pub(crate) fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether the cache answers `cmd` (GET, HGET, MGET).
    pub(crate) fn handles(cmd: &Cmd) -> bool {
        read_of(cmd).is_some()
    }

    /// Answers a cacheable read: from the cache, over the tracking connection (storing the
    /// reply), or not at all ([`Served::Pass`]).
    pub(crate) async fn read(&self, cmd: &Cmd) -> Served {
        let Some(read) = read_of(cmd) else {
            return Served::Pass;
        };
        {
            let mut state = self.lock();
            if let Some(hit) = self.lookup(&mut state, &read) {
                self.instruments.hits.increment(1);
                return Served::Hit(hit);
            }
        }
        self.instruments.misses.increment(1);
        // One fetch at a time over the tracking connection; the others pass.
        let Ok(mut tracking) = self.tracking.try_lock() else {
            return Served::Pass;
        };
        if !self.ensure_connected(&mut tracking).await {
            return Served::Pass;
        }
        let Some(conn) = tracking.conn.as_mut() else {
            return Served::Pass;
        };
        let keys = match &read {
            Read::One { key, .. } => vec![key.clone()],
            Read::Many(keys) => keys.clone(),
        };
        let fetching = Fetching::start(self, keys);
        let reply = conn.command(cmd).await;
        let mut state = self.lock();
        // Invalidations that came before the reply must see its keys in flight.
        self.apply_pushes(&mut state);
        let seq = fetching.finish(&mut state);
        match &reply {
            Ok(value) => {
                state.alive_at = Some(Instant::now());
                if state.seq == seq && state.connected {
                    self.store(&mut state, read, value);
                }
            }
            Err(err) if crate::pool::breaks_connection(err) || err.is_timeout() => {
                self.disconnected(&mut state);
                drop(state);
                tracking.conn = None;
                // The ordinary way may still work (or will report the failure).
                return Served::Pass;
            }
            Err(_) => {}
        }
        Served::Fetched(reply)
    }

    /// A command that may write, about to run (or just run) through this client: the keys
    /// it names are dropped from the cache at once.
    pub(crate) fn written(&self, cmd: &Cmd) {
        let args = simple_args(cmd);
        let mut state = self.lock();
        self.apply_pushes(&mut state);
        for arg in args.iter().skip(1) {
            self.invalidate(&mut state, arg, false);
        }
        self.instruments.keys.set(state.entries.len() as f64);
    }

    /// A pipeline about to run (or just run): every key it names is dropped.
    pub(crate) fn pipeline_written(&self, pipeline: &Pipeline) {
        for cmd in pipeline.cmd_iter() {
            self.written(cmd);
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lookup(&self, state: &mut State, read: &Read) -> Option<Value> {
        self.apply_pushes(state);
        let alive = state.connected
            && state
                .alive_at
                .is_some_and(|at| at.elapsed() < CACHE_LIVENESS);
        if !alive {
            return None;
        }
        let now = Instant::now();
        let found = |state: &mut State, key: &[u8], what: &[Vec<u8>]| -> Option<Value> {
            let entry = state.entries.get(key)?;
            if entry.expires <= now {
                let key = key.to_vec();
                self.remove(state, &key);
                return None;
            }
            entry.replies.get(what).cloned()
        };
        let value = match read {
            Read::One { key, what } => found(state, key, what)?,
            Read::Many(keys) => {
                let get = [GET.to_vec()];
                let mut values = Vec::with_capacity(keys.len());
                for key in keys {
                    values.push(found(state, key, &get)?);
                }
                Value::Array(values)
            }
        };
        match read {
            Read::One { key, .. } => self.touch(state, key),
            Read::Many(keys) => keys.iter().for_each(|key| self.touch(state, key)),
        }
        Some(value)
    }

    fn touch(&self, state: &mut State, key: &[u8]) {
        state.tick += 1;
        let tick = state.tick;
        if let Some(entry) = state.entries.get_mut(key) {
            state.lru.remove(&entry.used);
            entry.used = tick;
            state.lru.insert(tick, key.to_vec());
        }
    }

    fn store(&self, state: &mut State, read: Read, value: &Value) {
        let pairs: Vec<(Vec<u8>, Vec<Vec<u8>>, Value)> = match (read, value) {
            (Read::One { key, what }, value) => vec![(key, what, value.clone())],
            (Read::Many(keys), Value::Array(values)) if keys.len() == values.len() => keys
                .into_iter()
                .zip(values.iter().cloned())
                .map(|(key, value)| (key, vec![GET.to_vec()], value))
                .collect(),
            _ => return,
        };
        let expires = Instant::now() + self.options.ttl;
        for (key, what, value) in pairs {
            if matches!(value, Value::ServerError(_)) {
                continue;
            }
            if !state.entries.contains_key(&key) {
                while state.entries.len() >= self.options.max_keys as usize {
                    let Some((_, oldest)) = state.lru.pop_first() else {
                        break;
                    };
                    state.entries.remove(&oldest);
                    self.instruments.evictions.increment(1);
                }
                state.entries.insert(
                    key.clone(),
                    Entry {
                        replies: HashMap::new(),
                        expires,
                        used: 0,
                    },
                );
            }
            if let Some(entry) = state.entries.get_mut(&key) {
                entry.replies.insert(what, value);
                entry.expires = entry.expires.min(expires);
            }
            self.touch(state, &key);
        }
        self.instruments.keys.set(state.entries.len() as f64);
    }

    fn remove(&self, state: &mut State, key: &[u8]) -> bool {
        match state.entries.remove(key) {
            Some(entry) => {
                state.lru.remove(&entry.used);
                true
            }
            None => false,
        }
    }

    /// Drops `key`; moves the sequence if it was stored or is being fetched.
    fn invalidate(&self, state: &mut State, key: &[u8], by_server: bool) {
        let stored = self.remove(state, key);
        if stored || state.in_flight.contains_key(key) {
            state.seq += 1;
        }
        if stored && by_server {
            self.instruments.invalidations.increment(1);
        }
    }

    fn flush(&self, state: &mut State) {
        state.entries.clear();
        state.lru.clear();
        state.seq += 1;
        self.instruments.flushes.increment(1);
        self.instruments.keys.set(0.0);
    }

    fn disconnected(&self, state: &mut State) {
        state.connected = false;
        state.alive_at = None;
        self.flush(state);
    }

    /// Applies what the server pushed on the tracking connection, in order.
    fn apply_pushes(&self, state: &mut State) {
        let mut pushed = Vec::new();
        let mut closed = false;
        if let Some(pushes) = state.pushes.as_mut() {
            loop {
                match pushes.try_recv() {
                    Ok(push) => pushed.push(push),
                    Err(tokio::sync::mpsc::error::TryRecvError::Empty) => break,
                    Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => {
                        closed = true;
                        break;
                    }
                }
            }
        }
        for push in pushed {
            match push.kind {
                PushKind::Invalidate => match push.data.first() {
                    Some(Value::Array(keys)) => {
                        for key in keys {
                            if let Value::BulkString(key) = key {
                                self.invalidate(state, key, true);
                            }
                        }
                        self.instruments.keys.set(state.entries.len() as f64);
                    }
                    // FLUSHALL/FLUSHDB: everything.
                    _ => self.flush(state),
                },
                PushKind::Disconnection => {
                    self.disconnected(state);
                    closed = true;
                }
                _ => {}
            }
        }
        if closed && state.connected {
            self.disconnected(state);
        }
    }

    /// Opens the tracking connection if there is none (at most once per
    /// [`REOPEN_WAIT`]). `false` when there is none to use.
    async fn ensure_connected(&self, tracking: &mut Tracking) -> bool {
        let connected = self.lock().connected;
        if tracking.conn.is_some() && connected {
            return true;
        }
        tracking.conn = None;
        if tracking
            .failed_at
            .is_some_and(|at| at.elapsed() < REOPEN_WAIT)
        {
            return false;
        }
        let (pushes, pushed) = unbounded_channel();
        let opened = async {
            let mut conn = self.pool.subscriber(pushes).await.ok()?;
            redis::cmd("CLIENT")
                .arg("TRACKING")
                .arg("ON")
                .exec_async(&mut conn)
                .await
                .ok()?;
            Some(conn)
        };
        match opened.await {
            Some(conn) => {
                let mut state = self.lock();
                // Whatever was stored before was not tracked by this connection.
                self.flush(&mut state);
                state.pushes = Some(pushed);
                state.connected = true;
                state.alive_at = Some(Instant::now());
                tracking.conn = Some(conn);
                tracking.failed_at = None;
                drop(state);
                // Started here, inside the runtime, once the cache has a connection.
                self.keep_alive
                    .call_once(|| drop(tokio::spawn(keep_alive(self.this.clone()))));
                true
            }
            None => {
                tracking.failed_at = Some(Instant::now());
                false
            }
        }
    }

    /// PINGs the tracking connection (when no fetch uses it): proves it alive, or finds it
    /// dead and flushes.
    async fn ping(&self) {
        let Ok(mut tracking) = self.tracking.try_lock() else {
            return; // A fetch is using it: its reply proves it alive.
        };
        let Some(conn) = tracking.conn.as_mut() else {
            return;
        };
        let ping = redis::cmd("PING");
        let answered = matches!(
            tokio::time::timeout(PING_TIMEOUT, conn.command(&ping)).await,
            Ok(Ok(_))
        );
        let mut state = self.lock();
        if answered && !conn.is_stale() {
            state.alive_at = Some(Instant::now());
            self.apply_pushes(&mut state);
        } else {
            self.disconnected(&mut state);
            drop(state);
            tracking.conn = None;
        }
    }
}

/// Keeps proving the tracking connection alive while the cache exists.
async fn keep_alive(cache: Weak<ClientCache>) {
    let mut ticks = tokio::time::interval(PING_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(cache) = cache.upgrade() else {
            return;
        };
        cache.ping().await;
    }
}

impl std::fmt::Debug for ClientCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("ClientCache")
            .field("options", &self.options)
            .field("keys", &state.entries.len())
            .field("connected", &state.connected)
            .finish()
    }
}
