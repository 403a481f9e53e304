//! The hot-key tracker of the cluster client, as in baseplate.py's `HotKeyTracker`.
//!
//! With a sample rate above zero, a sampled command that reads (or writes) keys adds 1 per
//! key to the sorted set [`HOT_KEY_READS_SET`] (or [`HOT_KEY_WRITES_SET`]) and resets that
//! set's time to live to [`HOT_KEY_TTL`]: over time the most used keys rise to the top of
//! `ZREVRANGE baseplate-hot-key-tracker-reads 0 9 WITHSCORES`. Tracking runs beside the
//! command (in a spawned task, after the command succeeded) and its failures are only logged:
//! it never fails nor slows the user's command.

use std::time::Duration;

use redis::aio::ConnectionLike;
use redis::{Arg, Cmd};

/// The sorted set counting sampled key reads.
pub const HOT_KEY_READS_SET: &str = "baseplate-hot-key-tracker-reads";
/// The sorted set counting sampled key writes.
pub const HOT_KEY_WRITES_SET: &str = "baseplate-hot-key-tracker-writes";
/// The time to live set on a tracking set each time it is updated.
pub const HOT_KEY_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// Read commands whose first argument is their only key.
const SINGLE_KEY_READS: &[&str] = &[
    "BITCOUNT",
    "BITPOS",
    "GEODIST",
    "GEOHASH",
    "GEOPOS",
    "GEORADIUS",
    "GEORADIUSBYMEMBER",
    "GET",
    "GETBIT",
    "GETRANGE",
    "HEXISTS",
    "HGET",
    "HGETALL",
    "HKEYS",
    "HLEN",
    "HMGET",
    "HSTRLEN",
    "HVALS",
    "LINDEX",
    "LLEN",
    "LRANGE",
    "PTTL",
    "SCARD",
    "SISMEMBER",
    "SMEMBERS",
    "SRANDMEMBER",
    "STRLEN",
    "TTL",
    "ZCARD",
    "ZCOUNT",
    "ZRANGE",
    "ZSCORE",
];

/// Read commands whose arguments are all keys.
const MULTI_KEY_READS: &[&str] = &["EXISTS", "MGET", "SDIFF", "SINTER", "SUNION"];

/// Write commands whose first argument is their only key.
const SINGLE_KEY_WRITES: &[&str] = &[
    "EXPIRE",
    "EXPIREAT",
    "HINCRBY",
    "HINCRBYFLOAT",
    "HDEL",
    "HMSET",
    "HSET",
    "HSETNX",
    "LPUSH",
    "LREM",
    "LPOP",
    "LSET",
    "LTRIM",
    "RPOP",
    "RPUSH",
    "SADD",
    "SET",
    "SETNX",
    "SPOP",
    "SREM",
    "ZADD",
    "ZINCRBY",
    "ZPOPMAX",
    "ZPOPMIN",
    "ZREM",
    "ZREMRANGEBYLEX",
    "ZREMRANGEBYRANK",
    "ZREMRANGEBYSCORE",
];

/// Write commands whose arguments are all keys.
const MULTI_KEY_WRITES: &[&str] = &["DEL"];

/// Write commands taking `key value [key value…]`.
const BATCH_WRITES: &[&str] = &["MSET", "MSETNX"];

/// Samples commands and counts their keys in the tracking sets.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HotKeyTracker {
    reads_sample_rate: f64,
    writes_sample_rate: f64,
}

/// The keys of one command chosen for counting.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Sampled {
    pub(crate) reads: Vec<Vec<u8>>,
    pub(crate) writes: Vec<Vec<u8>>,
}

impl HotKeyTracker {
    /// A tracker, or `None` when both rates are zero (nothing would ever be sampled).
    pub(crate) fn new(reads_sample_rate: f64, writes_sample_rate: f64) -> Option<Self> {
        (reads_sample_rate > 0.0 || writes_sample_rate > 0.0).then_some(HotKeyTracker {
            reads_sample_rate,
            writes_sample_rate,
        })
    }

    /// Which keys of `cmd` to count, after sampling (one draw for reads, one for writes).
    pub(crate) fn sample(&self, cmd: &Cmd) -> Sampled {
        let mut args = cmd.args_iter().filter_map(|arg| match arg {
            Arg::Simple(bytes) => Some(bytes),
            _ => None,
        });
        let Some(name) = args.next() else {
            return Sampled::default();
        };
        let name = String::from_utf8_lossy(name).to_ascii_uppercase();
        let rest: Vec<&[u8]> = args.collect();
        let is = |set: &[&str]| set.contains(&name.as_str());
        let mut sampled = Sampled::default();
        if fastrand::f64() < self.reads_sample_rate {
            if is(SINGLE_KEY_READS) {
                sampled.reads.extend(rest.first().map(|k| k.to_vec()));
            } else if is(MULTI_KEY_READS) {
                sampled.reads.extend(rest.iter().map(|k| k.to_vec()));
            }
        }
        if fastrand::f64() < self.writes_sample_rate {
            if is(SINGLE_KEY_WRITES) {
                sampled.writes.extend(rest.first().map(|k| k.to_vec()));
            } else if is(MULTI_KEY_WRITES) {
                sampled.writes.extend(rest.iter().map(|k| k.to_vec()));
            } else if is(BATCH_WRITES) {
                sampled
                    .writes
                    .extend(rest.iter().step_by(2).map(|k| k.to_vec()));
            }
        }
        sampled
    }

    /// Samples `cmd` and, if any of its keys are to be counted, counts them on `conn` in a
    /// task of their own. Outside a tokio runtime nothing is counted.
    pub(crate) fn maybe_track<C>(&self, cmd: &Cmd, conn: &C)
    where
        C: ConnectionLike + Clone + Send + 'static,
    {
        self.maybe_track_all(std::iter::once(cmd), conn);
    }

    /// Samples every command of `cmds` (those queued in a pipeline, as baseplate.py tracks
    /// each command queued in a cluster pipeline) and counts the chosen keys on `conn` in
    /// one task. Outside a tokio runtime nothing is counted.
    pub(crate) fn maybe_track_all<'c, C>(&self, cmds: impl IntoIterator<Item = &'c Cmd>, conn: &C)
    where
        C: ConnectionLike + Clone + Send + 'static,
    {
        let mut sampled = Sampled::default();
        for cmd in cmds {
            let one = self.sample(cmd);
            sampled.reads.extend(one.reads);
            sampled.writes.extend(one.writes);
        }
        if sampled.reads.is_empty() && sampled.writes.is_empty() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mut conn = conn.clone();
        runtime.spawn(async move {
            for (set, keys) in [
                (HOT_KEY_READS_SET, sampled.reads),
                (HOT_KEY_WRITES_SET, sampled.writes),
            ] {
                if keys.is_empty() {
                    continue;
                }
                let mut pipe = redis::pipe();
                for key in &keys {
                    pipe.zincr(set, key.as_slice(), 1).ignore();
                }
                pipe.expire(set, HOT_KEY_TTL.as_secs() as i64).ignore();
                if let Err(err) = pipe.exec_async(&mut conn).await {
                    tracing::warn!(set, error = %err, "hot-key tracking failed (ignored)");
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(args: &[&str]) -> Cmd {
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        cmd
    }

    fn keys(list: &[&str]) -> Vec<Vec<u8>> {
        list.iter().map(|k| k.as_bytes().to_vec()).collect()
    }

    #[test]
    fn zero_rates_track_nothing() {
        assert_eq!(HotKeyTracker::new(0.0, 0.0), None);
    }

    #[test]
    fn families_pick_their_keys() {
        let always = HotKeyTracker::new(1.0, 1.0).unwrap();
        assert_eq!(always.sample(&cmd(&["GET", "a"])).reads, keys(&["a"]));
        assert_eq!(always.sample(&cmd(&["hget", "h", "f"])).reads, keys(&["h"]));
        assert_eq!(
            always.sample(&cmd(&["ZRANGE", "z", "0", "-1"])).reads,
            keys(&["z"])
        );
        assert_eq!(
            always.sample(&cmd(&["MGET", "a", "b", "c"])).reads,
            keys(&["a", "b", "c"])
        );
        assert_eq!(
            always.sample(&cmd(&["EXISTS", "a", "b"])).reads,
            keys(&["a", "b"])
        );
        let set = always.sample(&cmd(&["SET", "k", "v"]));
        assert_eq!(set.writes, keys(&["k"]));
        assert!(set.reads.is_empty());
        assert_eq!(
            always.sample(&cmd(&["LPUSH", "l", "1", "2"])).writes,
            keys(&["l"])
        );
        assert_eq!(
            always.sample(&cmd(&["DEL", "a", "b"])).writes,
            keys(&["a", "b"])
        );
        assert_eq!(
            always
                .sample(&cmd(&["MSET", "a", "1", "b", "2", "c", "3"]))
                .writes,
            keys(&["a", "b", "c"])
        );
        assert_eq!(
            always.sample(&cmd(&["MSETNX", "a", "1"])).writes,
            keys(&["a"])
        );
        assert_eq!(always.sample(&cmd(&["PING"])), Sampled::default());
        assert_eq!(
            always.sample(&cmd(&["BLPOP", "l", "1"])),
            Sampled::default()
        );
    }

    #[test]
    fn rates_are_separate() {
        let reads_only = HotKeyTracker::new(1.0, 0.0).unwrap();
        assert!(reads_only
            .sample(&cmd(&["SET", "k", "v"]))
            .writes
            .is_empty());
        assert_eq!(reads_only.sample(&cmd(&["GET", "k"])).reads, keys(&["k"]));
        let writes_only = HotKeyTracker::new(0.0, 1.0).unwrap();
        assert!(writes_only.sample(&cmd(&["GET", "k"])).reads.is_empty());
    }

    #[test]
    fn sampling_follows_the_rate() {
        let half = HotKeyTracker::new(0.5, 0.0).unwrap();
        let get = cmd(&["GET", "k"]);
        let tracked = (0..4000)
            .filter(|_| !half.sample(&get).reads.is_empty())
            .count();
        // Binomial(4000, 0.5): outside 1700..2300 is astronomically unlikely.
        assert!((1700..2300).contains(&tracked), "{tracked}");
    }
}
