//! Command implementations, one file per family, and the table that finds them.
//!
//! Every handler gets the keyspace (already locked) and its arguments, and returns the reply
//! a Redis 7.0 server sends over RESP2, errors included.

mod hashes;
mod keys;
mod lists;
mod scripting;
mod server;
mod sets;
mod strings;
mod zsets;

use std::collections::{HashMap, HashSet, VecDeque};

use redis::Value;

use super::store::{now_ms, Data, Db, Entry, Keyspace};

pub(crate) use keys::glob_match;
pub(crate) use lists::{blocking_timeout, pop_first_nonempty};

/// A handler's result: `Err` carries an error reply, so `?` can bail out with one.
pub(crate) type Reply = Result<Value, Value>;

/// A command handler.
pub(crate) type Handler = fn(&mut Exec<'_>) -> Reply;

/// What a handler works on: the locked keyspace, the selected database, the arguments.
pub(crate) struct Exec<'a> {
    pub(crate) ks: &'a mut Keyspace,
    pub(crate) db: usize,
    pub(crate) now: i64,
    /// The whole command, name first.
    pub(crate) args: &'a [Vec<u8>],
    /// Set when a list gained elements, so blocked pops are woken.
    pub(crate) pushed: bool,
}

impl<'a> Exec<'a> {
    /// A command about to run now against database `db`.
    pub(crate) fn new(ks: &'a mut Keyspace, db: usize, args: &'a [Vec<u8>]) -> Self {
        Exec {
            ks,
            db,
            now: now_ms(),
            args,
            pushed: false,
        }
    }
}

pub(crate) const WRONGTYPE: &str =
    "WRONGTYPE Operation against a key holding the wrong kind of value";
pub(crate) const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
pub(crate) const NOT_FLOAT: &str = "ERR value is not a valid float";
pub(crate) const SYNTAX: &str = "ERR syntax error";

/// An error reply, built the way redis-rs parses one off the wire, so its `code()`,
/// `kind()`, `detail()` and `to_string()` are those of a real server's.
pub(crate) fn error(line: &str) -> Value {
    let clean: String = line
        .chars()
        .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
        .collect();
    redis::parse_redis_value(format!("-{clean}\r\n").as_bytes())
        .or_else(|_| redis::parse_redis_value(b"-ERR\r\n"))
        .unwrap_or(Value::Nil)
}

/// `Err(error(line))`, for `?`.
pub(crate) fn fail<T>(line: &str) -> Result<T, Value> {
    Err(error(line))
}

/// The arity error for `name` (lower case, `client|setname` for subcommands).
pub(crate) fn arity_error(name: &str) -> Value {
    error(&format!(
        "ERR wrong number of arguments for '{name}' command"
    ))
}

pub(crate) fn bulk(b: impl Into<Vec<u8>>) -> Value {
    Value::BulkString(b.into())
}

pub(crate) fn status(s: &str) -> Value {
    Value::SimpleString(s.to_string())
}

pub(crate) fn int(n: i64) -> Value {
    Value::Int(n)
}

/// Parses an integer as Redis's `string2ll`: no sign but `-`, no leading zeros, no spaces.
pub(crate) fn parse_i64(b: &[u8]) -> Option<i64> {
    if b.is_empty() || b.len() > 20 {
        return None;
    }
    if b == b"0" {
        return Some(0);
    }
    let (neg, digits) = match b.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, b),
    };
    match digits.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    let mut v: i128 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i128::from(d - b'0');
        if v > i128::from(i64::MAX) + 1 {
            return None;
        }
    }
    let v = if neg { -v } else { v };
    i64::try_from(v).ok()
}

/// An integer argument, or the not-an-integer error.
pub(crate) fn arg_i64(b: &[u8]) -> Result<i64, Value> {
    parse_i64(b).ok_or_else(|| error(NOT_INTEGER))
}

/// Parses a float as Redis's `string2d` (strtod): no spaces, no NaN; `inf` allowed.
pub(crate) fn parse_f64(b: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(b).ok()?;
    if s.is_empty() || s.starts_with(char::is_whitespace) || s.ends_with(char::is_whitespace) {
        return None;
    }
    let v: f64 = s.parse().ok()?;
    (!v.is_nan()).then_some(v)
}

/// Clamps a Redis `start`/`end` index pair (negative: from the end) to a list or sorted set
/// of `len`; `None` when the range is empty.
pub(crate) fn clamp_range(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let start = if start < 0 {
        (start + len).max(0)
    } else {
        start
    };
    let end = if end < 0 { end + len } else { end };
    if start > end || start >= len {
        return None;
    }
    Some((start as usize, end.min(len - 1) as usize))
}

/// Formats a double as Redis 7.0 replies with it (`%.17g`).
pub(crate) fn format_score(x: f64) -> String {
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if x == 0.0 {
        return if x.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let sci = format!("{x:.16e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..17).contains(&exp) {
        let m = trim_fraction(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{m}e{sign}{:02}", exp.abs())
    } else {
        let decimals = (16 - exp).max(0) as usize;
        trim_fraction(&format!("{x:.decimals$}")).to_string()
    }
}

fn trim_fraction(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

impl Exec<'_> {
    /// The argument at `i` (the command name is 0).
    pub(crate) fn arg(&self, i: usize) -> &[u8] {
        self.args.get(i).map(Vec::as_slice).unwrap_or(&[])
    }

    fn split(&mut self) -> (&mut Db, &mut u64) {
        let Keyspace { dbs, clock } = &mut *self.ks;
        (&mut dbs[self.db], clock)
    }

    pub(crate) fn get(&mut self, key: &[u8]) -> Option<&Entry> {
        let now = self.now;
        let (db, clock) = self.split();
        db.get(key, now, clock)
    }

    pub(crate) fn get_mut(&mut self, key: &[u8]) -> Option<&mut Entry> {
        let now = self.now;
        let (db, clock) = self.split();
        db.get_mut(key, now, clock)
    }

    pub(crate) fn insert(&mut self, key: &[u8], entry: Entry) {
        let (db, clock) = self.split();
        db.insert(key, entry, clock);
    }

    pub(crate) fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        let now = self.now;
        let (db, clock) = self.split();
        db.remove(key, now, clock)
    }

    /// Records a change made through [`Exec::get_mut`] (and drops emptied aggregates).
    pub(crate) fn touch(&mut self, key: &[u8]) {
        let (db, clock) = self.split();
        db.touch(key, clock);
    }

    pub(crate) fn live_keys(&mut self) -> Vec<Vec<u8>> {
        let now = self.now;
        let (db, clock) = self.split();
        db.live_keys(now, clock)
    }

    pub(crate) fn db_mut(&mut self) -> (&mut Db, &mut u64) {
        self.split()
    }

    /// The string under `key`, or WRONGTYPE.
    pub(crate) fn get_str(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, Value> {
        match self.get(key).map(|e| &e.data) {
            None => Ok(None),
            Some(Data::Str(s)) => Ok(Some(s.clone())),
            Some(_) => fail(WRONGTYPE),
        }
    }
}

macro_rules! typed_access {
    ($get:ident, $get_or_create:ident, $variant:ident, $ty:ty) => {
        impl Exec<'_> {
            /// The value under `key` if it has this type; WRONGTYPE if another.
            pub(crate) fn $get(&mut self, key: &[u8]) -> Result<Option<&mut $ty>, Value> {
                match self.get_mut(key).map(|e| &mut e.data) {
                    None => Ok(None),
                    Some(Data::$variant(v)) => Ok(Some(v)),
                    Some(_) => fail(WRONGTYPE),
                }
            }

            /// Like the getter, creating an empty value when the key is missing.
            #[allow(dead_code)]
            pub(crate) fn $get_or_create(&mut self, key: &[u8]) -> Result<&mut $ty, Value> {
                if self.get(key).is_none() {
                    self.insert(
                        key,
                        Entry {
                            data: Data::$variant(Default::default()),
                            expires_at: None,
                        },
                    );
                }
                match self.get_mut(key).map(|e| &mut e.data) {
                    Some(Data::$variant(v)) => Ok(v),
                    _ => fail(WRONGTYPE),
                }
            }
        }
    };
}

typed_access!(list, list_or_create, List, VecDeque<Vec<u8>>);
typed_access!(hash, hash_or_create, Hash, HashMap<Vec<u8>, Vec<u8>>);
typed_access!(set, set_or_create, Set, HashSet<Vec<u8>>);
typed_access!(zset, zset_or_create, ZSet, HashMap<Vec<u8>, f64>);

/// The handler and Redis arity (negative: at least) of a keyspace command, by lower-case
/// name. Connection-state commands (SELECT, MULTI, BLPOP…) are handled by the connection.
pub(crate) fn lookup(name: &str) -> Option<(i32, Handler)> {
    let found: (i32, Handler) = match name {
        "ping" => (-1, server::ping),
        "echo" => (2, server::echo),
        "dbsize" => (1, server::dbsize),
        "flushdb" => (-1, server::flushdb),
        "flushall" => (-1, server::flushall),
        "del" => (-2, keys::del),
        "unlink" => (-2, keys::del),
        "exists" => (-2, keys::exists),
        "expire" => (-3, keys::expire),
        "pexpire" => (-3, keys::pexpire),
        "expireat" => (-3, keys::expireat),
        "pexpireat" => (-3, keys::pexpireat),
        "ttl" => (2, keys::ttl),
        "pttl" => (2, keys::pttl),
        "persist" => (2, keys::persist),
        "type" => (2, keys::type_),
        "keys" => (2, keys::keys),
        "scan" => (-2, keys::scan),
        "rename" => (3, keys::rename),
        "get" => (2, strings::get),
        "set" => (-3, strings::set),
        "setnx" => (3, strings::setnx),
        "setex" => (4, strings::setex),
        "psetex" => (4, strings::psetex),
        "mget" => (-2, strings::mget),
        "mset" => (-3, strings::mset),
        "getdel" => (2, strings::getdel),
        "incr" => (2, strings::incr),
        "incrby" => (3, strings::incrby),
        "decr" => (2, strings::decr),
        "decrby" => (3, strings::decrby),
        "incrbyfloat" => (3, strings::incrbyfloat),
        "append" => (3, strings::append),
        "strlen" => (2, strings::strlen),
        "getrange" => (4, strings::getrange),
        "lpush" => (-3, lists::lpush),
        "rpush" => (-3, lists::rpush),
        "lpop" => (-2, lists::lpop),
        "rpop" => (-2, lists::rpop),
        "llen" => (2, lists::llen),
        "lrange" => (4, lists::lrange),
        "lindex" => (3, lists::lindex),
        "lset" => (4, lists::lset),
        "lrem" => (4, lists::lrem),
        "ltrim" => (4, lists::ltrim),
        "hset" => (-4, hashes::hset),
        "hmset" => (-4, hashes::hmset),
        "hsetnx" => (4, hashes::hsetnx),
        "hget" => (3, hashes::hget),
        "hmget" => (-3, hashes::hmget),
        "hgetall" => (2, hashes::hgetall),
        "hdel" => (-3, hashes::hdel),
        "hexists" => (3, hashes::hexists),
        "hlen" => (2, hashes::hlen),
        "hkeys" => (2, hashes::hkeys),
        "hvals" => (2, hashes::hvals),
        "hincrby" => (4, hashes::hincrby),
        "sadd" => (-3, sets::sadd),
        "srem" => (-3, sets::srem),
        "smembers" => (2, sets::smembers),
        "sismember" => (3, sets::sismember),
        "scard" => (2, sets::scard),
        "zadd" => (-4, zsets::zadd),
        "zincrby" => (4, zsets::zincrby),
        "zscore" => (3, zsets::zscore),
        "zrange" => (-4, zsets::zrange),
        "zrangebyscore" => (-4, zsets::zrangebyscore),
        "zrevrange" => (-4, zsets::zrevrange),
        "zrevrangebyscore" => (-4, zsets::zrevrangebyscore),
        "zrangebylex" => (-4, zsets::zrangebylex),
        "zrevrangebylex" => (-4, zsets::zrevrangebylex),
        "eval" | "evalsha" | "eval_ro" | "evalsha_ro" | "script" | "fcall" | "fcall_ro"
        | "function" => (-1, scripting::unsupported),
        "zrem" => (-3, zsets::zrem),
        "zcard" => (2, zsets::zcard),
        _ => return None,
    };
    Some(found)
}

/// Whether `args` has the arity Redis requires (`arity` counts the name; negative: at least).
pub(crate) fn arity_ok(arity: i32, argc: usize) -> bool {
    let argc = argc as i64;
    let arity = i64::from(arity);
    if arity >= 0 {
        argc == arity
    } else {
        argc >= -arity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_format_like_printf_17g() {
        assert_eq!(format_score(1.5), "1.5");
        assert_eq!(format_score(0.1), "0.10000000000000001");
        assert_eq!(format_score(1e20), "1e+20");
        assert_eq!(format_score(1.0), "1");
        assert_eq!(format_score(0.0001), "0.0001");
        assert_eq!(format_score(0.00001), "1.0000000000000001e-05");
        assert_eq!(format_score(123456789.0), "123456789");
        assert_eq!(format_score(f64::NEG_INFINITY), "-inf");
    }

    #[test]
    fn integers_parse_like_string2ll() {
        assert_eq!(parse_i64(b"-12"), Some(-12));
        assert_eq!(parse_i64(b"012"), None);
        assert_eq!(parse_i64(b"+1"), None);
        assert_eq!(parse_i64(b" 1"), None);
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64(b"9223372036854775808"), None);
    }

    #[test]
    fn errors_parse_like_server_errors() {
        let e: redis::RedisError = match error(WRONGTYPE) {
            Value::ServerError(e) => e.into(),
            other => panic!("{other:?}"),
        };
        assert_eq!(e.code(), Some("WRONGTYPE"));
    }
}
