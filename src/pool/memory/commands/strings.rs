//! String commands: GET, SET and its variants, counters, ranges.

use redis::Value;

use super::{
    arg_i64, arity_error, bulk, error, fail, int, parse_f64, parse_i64, Exec, Reply, NOT_FLOAT,
    NOT_INTEGER, SYNTAX,
};
use crate::pool::memory::store::{Data, Entry};

pub(super) fn get(x: &mut Exec<'_>) -> Reply {
    let key = x.arg(1).to_vec();
    Ok(x.get_str(&key)?.map(bulk).unwrap_or(Value::Nil))
}

/// Validates a relative or absolute expire argument as Redis's `getExpireMillisecondsOrReply`
/// and returns the deadline in unix milliseconds.
fn deadline(raw: &[u8], seconds: bool, absolute: bool, now: i64, cmd: &str) -> Result<i64, Value> {
    let n = arg_i64(raw)?;
    let invalid = || error(&format!("ERR invalid expire time in '{cmd}' command"));
    if n <= 0 || (seconds && n > i64::MAX / 1000) {
        return Err(invalid());
    }
    let ms = if seconds { n * 1000 } else { n };
    if absolute {
        Ok(ms)
    } else {
        ms.checked_add(now).ok_or_else(invalid)
    }
}

fn store_string(x: &mut Exec<'_>, key: &[u8], value: Vec<u8>, expires_at: Option<i64>) {
    x.insert(
        key,
        Entry {
            data: Data::Str(value),
            expires_at,
        },
    );
}

pub(super) fn set(x: &mut Exec<'_>) -> Reply {
    let (mut nx, mut xx, mut get, mut keepttl) = (false, false, false, false);
    // (raw value, in seconds, absolute)
    let mut expire: Option<(Vec<u8>, bool, bool)> = None;
    let mut j = 3;
    while j < x.args.len() {
        let opt = x.arg(j).to_ascii_lowercase();
        let has_next = j + 1 < x.args.len();
        match opt.as_slice() {
            b"nx" if !xx => nx = true,
            b"xx" if !nx => xx = true,
            b"get" => get = true,
            b"keepttl" if expire.is_none() => keepttl = true,
            b"ex" | b"px" | b"exat" | b"pxat" if !keepttl && expire.is_none() && has_next => {
                let seconds = opt == b"ex" || opt == b"exat";
                let absolute = opt.ends_with(b"at");
                expire = Some((x.arg(j + 1).to_vec(), seconds, absolute));
                j += 1;
            }
            _ => return fail(SYNTAX),
        }
        j += 1;
    }
    let expires_at = match &expire {
        Some((raw, seconds, absolute)) => Some(deadline(raw, *seconds, *absolute, x.now, "set")?),
        None => None,
    };
    let key = x.arg(1).to_vec();
    let old = if get { x.get_str(&key)? } else { None };
    let found = x.get(&key);
    let found_ttl = found.and_then(|e| e.expires_at);
    let found = found.is_some();
    if (nx && found) || (xx && !found) {
        return Ok(if get {
            old.map(bulk).unwrap_or(Value::Nil)
        } else {
            Value::Nil
        });
    }
    let expires_at = if keepttl { found_ttl } else { expires_at };
    store_string(x, &key, x.arg(2).to_vec(), expires_at);
    Ok(if get {
        old.map(bulk).unwrap_or(Value::Nil)
    } else {
        Value::Okay
    })
}

pub(super) fn setnx(x: &mut Exec<'_>) -> Reply {
    let key = x.arg(1).to_vec();
    if x.get(&key).is_some() {
        return Ok(int(0));
    }
    store_string(x, &key, x.arg(2).to_vec(), None);
    Ok(int(1))
}

fn setex_generic(x: &mut Exec<'_>, seconds: bool, cmd: &str) -> Reply {
    let at = deadline(x.arg(2), seconds, false, x.now, cmd)?;
    let key = x.arg(1).to_vec();
    store_string(x, &key, x.arg(3).to_vec(), Some(at));
    Ok(Value::Okay)
}

pub(super) fn setex(x: &mut Exec<'_>) -> Reply {
    setex_generic(x, true, "setex")
}

pub(super) fn psetex(x: &mut Exec<'_>) -> Reply {
    setex_generic(x, false, "psetex")
}

pub(super) fn mget(x: &mut Exec<'_>) -> Reply {
    let keys: Vec<Vec<u8>> = x.args[1..].to_vec();
    let values = keys
        .iter()
        .map(|k| match x.get(k).map(|e| &e.data) {
            Some(Data::Str(s)) => bulk(s.clone()),
            _ => Value::Nil,
        })
        .collect();
    Ok(Value::Array(values))
}

pub(super) fn mset(x: &mut Exec<'_>) -> Reply {
    if x.args.len() % 2 == 0 {
        return Err(arity_error("mset"));
    }
    let pairs: Vec<Vec<u8>> = x.args[1..].to_vec();
    for pair in pairs.chunks(2) {
        store_string(x, &pair[0], pair[1].clone(), None);
    }
    Ok(Value::Okay)
}

pub(super) fn getdel(x: &mut Exec<'_>) -> Reply {
    let key = x.arg(1).to_vec();
    let old = x.get_str(&key)?;
    if old.is_some() {
        x.remove(&key);
    }
    Ok(old.map(bulk).unwrap_or(Value::Nil))
}

fn incr_by(x: &mut Exec<'_>, by: i64) -> Reply {
    let key = x.arg(1).to_vec();
    let current = match x.get_str(&key)? {
        None => 0,
        Some(s) => parse_i64(&s).ok_or_else(|| error(NOT_INTEGER))?,
    };
    let next = current
        .checked_add(by)
        .ok_or_else(|| error("ERR increment or decrement would overflow"))?;
    let ttl = x.get(&key).and_then(|e| e.expires_at);
    store_string(x, &key, next.to_string().into_bytes(), ttl);
    Ok(int(next))
}

pub(super) fn incr(x: &mut Exec<'_>) -> Reply {
    incr_by(x, 1)
}

pub(super) fn decr(x: &mut Exec<'_>) -> Reply {
    incr_by(x, -1)
}

pub(super) fn incrby(x: &mut Exec<'_>) -> Reply {
    let by = arg_i64(x.arg(2))?;
    incr_by(x, by)
}

pub(super) fn decrby(x: &mut Exec<'_>) -> Reply {
    let by = arg_i64(x.arg(2))?;
    if by == i64::MIN {
        return fail("ERR decrement would overflow");
    }
    incr_by(x, -by)
}

/// Formats an INCRBYFLOAT result. Redis uses a long double and `%.17Lf` with trailing zeros
/// removed; we compute in f64 and print the shortest exact representation, which agrees for
/// the usual decimal inputs (see the module docs for the known difference).
fn format_float(v: f64) -> String {
    let s = format!("{v}");
    if s == "-0" {
        "0".into()
    } else {
        s
    }
}

pub(super) fn incrbyfloat(x: &mut Exec<'_>) -> Reply {
    let key = x.arg(1).to_vec();
    let current = match x.get_str(&key)? {
        None => 0.0,
        Some(s) => parse_f64(&s).ok_or_else(|| error(NOT_FLOAT))?,
    };
    let by = parse_f64(x.arg(2)).ok_or_else(|| error(NOT_FLOAT))?;
    let next = current + by;
    if !next.is_finite() {
        return fail("ERR increment would produce NaN or Infinity");
    }
    let text = format_float(next).into_bytes();
    let ttl = x.get(&key).and_then(|e| e.expires_at);
    store_string(x, &key, text.clone(), ttl);
    Ok(bulk(text))
}

pub(super) fn append(x: &mut Exec<'_>) -> Reply {
    let key = x.arg(1).to_vec();
    let suffix = x.arg(2).to_vec();
    let current = x.get_str(&key)?;
    match current {
        None => {
            let len = suffix.len();
            store_string(x, &key, suffix, None);
            Ok(int(len as i64))
        }
        Some(_) => {
            let len = match x.get_mut(&key).map(|e| &mut e.data) {
                Some(Data::Str(s)) => {
                    s.extend_from_slice(&suffix);
                    s.len()
                }
                _ => 0,
            };
            x.touch(&key);
            Ok(int(len as i64))
        }
    }
}

pub(super) fn strlen(x: &mut Exec<'_>) -> Reply {
    let key = x.arg(1).to_vec();
    Ok(int(x.get_str(&key)?.map_or(0, |s| s.len()) as i64))
}

pub(super) fn getrange(x: &mut Exec<'_>) -> Reply {
    let mut start = arg_i64(x.arg(2))?;
    let mut end = arg_i64(x.arg(3))?;
    let key = x.arg(1).to_vec();
    let s = x.get_str(&key)?.unwrap_or_default();
    if start < 0 && end < 0 && start > end {
        return Ok(bulk(Vec::new()));
    }
    let len = s.len() as i64;
    if start < 0 {
        start += len;
    }
    if end < 0 {
        end += len;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= len {
        end = len - 1;
    }
    if start > end || len == 0 {
        return Ok(bulk(Vec::new()));
    }
    Ok(bulk(s[start as usize..=end as usize].to_vec()))
}
