//! The keyspace: databases of typed values with optional deadlines, and per-key versions
//! for WATCH.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::Notify;

/// How many databases a store has, as a default Redis (`databases 16`).
pub(crate) const DATABASES: i64 = 16;

/// A value held under a key.
#[derive(Debug, Clone)]
pub(crate) enum Data {
    Str(Vec<u8>),
    List(VecDeque<Vec<u8>>),
    Hash(HashMap<Vec<u8>, Vec<u8>>),
    Set(HashSet<Vec<u8>>),
    ZSet(HashMap<Vec<u8>, f64>),
}

impl Data {
    /// The name `TYPE` replies with.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Data::Str(_) => "string",
            Data::List(_) => "list",
            Data::Hash(_) => "hash",
            Data::Set(_) => "set",
            Data::ZSet(_) => "zset",
        }
    }

    /// Redis deletes aggregates that become empty.
    fn is_empty_aggregate(&self) -> bool {
        match self {
            Data::Str(_) => false,
            Data::List(l) => l.is_empty(),
            Data::Hash(h) => h.is_empty(),
            Data::Set(s) => s.is_empty(),
            Data::ZSet(z) => z.is_empty(),
        }
    }
}

/// A value and its deadline (unix milliseconds).
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) data: Data,
    pub(crate) expires_at: Option<i64>,
}

/// One numbered database.
#[derive(Debug, Default)]
pub(crate) struct Db {
    entries: HashMap<Vec<u8>, Entry>,
    /// Bumped on every write to the key (kept after deletion, so WATCH sees deletions).
    versions: HashMap<Vec<u8>, u64>,
}

/// Milliseconds since the unix epoch, the clock deadlines are kept in.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Db {
    fn expire_if_due(&mut self, key: &[u8], now: i64, clock: &mut u64) {
        let due =
            matches!(self.entries.get(key), Some(Entry { expires_at: Some(t), .. }) if *t <= now);
        if due {
            self.entries.remove(key);
            Self::bump(&mut self.versions, key, clock);
        }
    }

    fn bump(versions: &mut HashMap<Vec<u8>, u64>, key: &[u8], clock: &mut u64) {
        *clock += 1;
        versions.insert(key.to_vec(), *clock);
    }

    /// The live entry under `key`.
    pub(crate) fn get(&mut self, key: &[u8], now: i64, clock: &mut u64) -> Option<&Entry> {
        self.expire_if_due(key, now, clock);
        self.entries.get(key)
    }

    /// The live entry under `key`, to modify in place; call [`Db::touch`] after a change.
    pub(crate) fn get_mut(&mut self, key: &[u8], now: i64, clock: &mut u64) -> Option<&mut Entry> {
        self.expire_if_due(key, now, clock);
        self.entries.get_mut(key)
    }

    /// Stores `entry` under `key`, replacing what was there.
    pub(crate) fn insert(&mut self, key: &[u8], entry: Entry, clock: &mut u64) {
        self.entries.insert(key.to_vec(), entry);
        Self::bump(&mut self.versions, key, clock);
    }

    /// Removes `key`; whether it was there (and live).
    pub(crate) fn remove(&mut self, key: &[u8], now: i64, clock: &mut u64) -> Option<Entry> {
        self.expire_if_due(key, now, clock);
        let old = self.entries.remove(key);
        if old.is_some() {
            Self::bump(&mut self.versions, key, clock);
        }
        old
    }

    /// Records a change to `key`, and deletes it if it became an empty aggregate.
    pub(crate) fn touch(&mut self, key: &[u8], clock: &mut u64) {
        if self
            .entries
            .get(key)
            .is_some_and(|e| e.data.is_empty_aggregate())
        {
            self.entries.remove(key);
        }
        Self::bump(&mut self.versions, key, clock);
    }

    /// The key's version, for WATCH.
    pub(crate) fn version(&mut self, key: &[u8], now: i64, clock: &mut u64) -> u64 {
        self.expire_if_due(key, now, clock);
        self.versions.get(key).copied().unwrap_or(0)
    }

    /// Every live key.
    pub(crate) fn live_keys(&mut self, now: i64, clock: &mut u64) -> Vec<Vec<u8>> {
        let due: Vec<Vec<u8>> = self
            .entries
            .iter()
            .filter(|(_, e)| e.expires_at.is_some_and(|t| t <= now))
            .map(|(k, _)| k.clone())
            .collect();
        for k in due {
            self.expire_if_due(&k, now, clock);
        }
        self.entries.keys().cloned().collect()
    }

    /// Deletes every key (each deletion is seen by WATCH).
    pub(crate) fn flush(&mut self, clock: &mut u64) {
        let keys: Vec<Vec<u8>> = self.entries.keys().cloned().collect();
        self.entries.clear();
        for k in keys {
            Self::bump(&mut self.versions, &k, clock);
        }
    }
}

/// All databases, and the clock that versions writes.
#[derive(Debug)]
pub(crate) struct Keyspace {
    pub(crate) dbs: Vec<Db>,
    pub(crate) clock: u64,
}

/// A store shared by every connection of a backend (or of a named registry entry).
#[derive(Debug)]
pub(crate) struct Store {
    keyspace: Mutex<Keyspace>,
    /// Signalled whenever a list may have gained elements, to wake blocked pops.
    pub(crate) pushed: Notify,
    /// Pub/Sub subscribers of this store.
    pub(crate) broker: super::pubsub::Broker,
}

impl Store {
    /// An empty store.
    pub(crate) fn new() -> Self {
        Store {
            keyspace: Mutex::new(Keyspace {
                dbs: (0..DATABASES).map(|_| Db::default()).collect(),
                clock: 0,
            }),
            pushed: Notify::new(),
            broker: Default::default(),
        }
    }

    /// Locks the keyspace. A panic while holding it cannot leave it half-written in a way
    /// that matters more than losing the store, so a poisoned lock is simply taken over.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Keyspace> {
        self.keyspace.lock().unwrap_or_else(|p| p.into_inner())
    }
}
