//! List commands: pushes, pops, ranges; and the non-blocking half of BLPOP/BRPOP.

use redis::Value;

use super::{arg_i64, bulk, clamp_range, error, fail, int, Exec, Reply};

fn push(x: &mut Exec<'_>, left: bool) -> Reply {
    let key = x.arg(1).to_vec();
    let values: Vec<Vec<u8>> = x.args[2..].to_vec();
    let list = x.list_or_create(&key)?;
    for v in values {
        if left {
            list.push_front(v);
        } else {
            list.push_back(v);
        }
    }
    let len = list.len();
    x.touch(&key);
    x.pushed = true;
    Ok(int(len as i64))
}

pub(super) fn lpush(x: &mut Exec<'_>) -> Reply {
    push(x, true)
}

pub(super) fn rpush(x: &mut Exec<'_>) -> Reply {
    push(x, false)
}

fn pop(x: &mut Exec<'_>, left: bool) -> Reply {
    if x.args.len() > 3 {
        return Err(super::arity_error(if left { "lpop" } else { "rpop" }));
    }
    let count = if x.args.len() == 3 {
        let must_be_positive = || error("ERR value is out of range, must be positive");
        let n = super::parse_i64(x.arg(2)).ok_or_else(must_be_positive)?;
        if n < 0 {
            return Err(must_be_positive());
        }
        Some(n as usize)
    } else {
        None
    };
    let key = x.arg(1).to_vec();
    let Some(list) = x.list(&key)? else {
        return Ok(Value::Nil);
    };
    let take = |list: &mut std::collections::VecDeque<Vec<u8>>| {
        if left {
            list.pop_front()
        } else {
            list.pop_back()
        }
    };
    let reply = match count {
        None => take(list).map(bulk).unwrap_or(Value::Nil),
        Some(n) => Value::Array(
            std::iter::from_fn(|| take(list))
                .take(n)
                .map(bulk)
                .collect(),
        ),
    };
    if count != Some(0) {
        x.touch(&key);
    }
    Ok(reply)
}

pub(super) fn lpop(x: &mut Exec<'_>) -> Reply {
    pop(x, true)
}

pub(super) fn rpop(x: &mut Exec<'_>) -> Reply {
    pop(x, false)
}

pub(super) fn llen(x: &mut Exec<'_>) -> Reply {
    let key = x.arg(1).to_vec();
    Ok(int(x.list(&key)?.map_or(0, |l| l.len()) as i64))
}

pub(super) fn lrange(x: &mut Exec<'_>) -> Reply {
    let start = arg_i64(x.arg(2))?;
    let end = arg_i64(x.arg(3))?;
    let key = x.arg(1).to_vec();
    let Some(list) = x.list(&key)? else {
        return Ok(Value::Array(vec![]));
    };
    let items = match clamp_range(start, end, list.len()) {
        None => vec![],
        Some((s, e)) => list.range(s..=e).cloned().map(bulk).collect(),
    };
    Ok(Value::Array(items))
}

fn list_index(index: i64, len: usize) -> Option<usize> {
    let len = len as i64;
    let i = if index < 0 { index + len } else { index };
    (0..len).contains(&i).then_some(i as usize)
}

pub(super) fn lindex(x: &mut Exec<'_>) -> Reply {
    let key = x.arg(1).to_vec();
    let raw = x.arg(2).to_vec();
    let Some(list) = x.list(&key)? else {
        return Ok(Value::Nil);
    };
    let index = arg_i64(&raw)?;
    Ok(list_index(index, list.len())
        .and_then(|i| list.get(i).cloned())
        .map(bulk)
        .unwrap_or(Value::Nil))
}

pub(super) fn lset(x: &mut Exec<'_>) -> Reply {
    let key = x.arg(1).to_vec();
    let raw = x.arg(2).to_vec();
    let value = x.arg(3).to_vec();
    let Some(list) = x.list(&key)? else {
        return fail("ERR no such key");
    };
    let index = arg_i64(&raw)?;
    match list_index(index, list.len()).and_then(|i| list.get_mut(i)) {
        Some(slot) => *slot = value,
        None => return fail("ERR index out of range"),
    }
    x.touch(&key);
    Ok(Value::Okay)
}

pub(super) fn lrem(x: &mut Exec<'_>) -> Reply {
    let count = arg_i64(x.arg(2))?;
    let key = x.arg(1).to_vec();
    let value = x.arg(3).to_vec();
    let Some(list) = x.list(&key)? else {
        return Ok(int(0));
    };
    let limit = if count == 0 {
        usize::MAX
    } else {
        count.unsigned_abs() as usize
    };
    let mut removed = 0;
    if count >= 0 {
        let mut i = 0;
        while i < list.len() && removed < limit {
            if list[i] == value {
                list.remove(i);
                removed += 1;
            } else {
                i += 1;
            }
        }
    } else {
        let mut i = list.len();
        while i > 0 && removed < limit {
            i -= 1;
            if list[i] == value {
                list.remove(i);
                removed += 1;
            }
        }
    }
    if removed > 0 {
        x.touch(&key);
    }
    Ok(int(removed as i64))
}

pub(super) fn ltrim(x: &mut Exec<'_>) -> Reply {
    let start = arg_i64(x.arg(2))?;
    let end = arg_i64(x.arg(3))?;
    let key = x.arg(1).to_vec();
    let Some(list) = x.list(&key)? else {
        return Ok(Value::Okay);
    };
    match clamp_range(start, end, list.len()) {
        None => list.clear(),
        Some((s, e)) => {
            list.truncate(e + 1);
            list.drain(..s);
        }
    }
    x.touch(&key);
    Ok(Value::Okay)
}

/// Parses a BLPOP/BRPOP timeout as Redis 7.0: seconds as a float, truncated to whole
/// milliseconds; `Ok(None)` means wait forever.
pub(crate) fn blocking_timeout(raw: &[u8]) -> Result<Option<std::time::Duration>, Value> {
    let secs =
        super::parse_f64(raw).ok_or_else(|| error("ERR timeout is not a float or out of range"))?;
    let ms = secs * 1000.0;
    // Redis casts to long long; out-of-range values (inf included) become LLONG_MIN.
    if !(ms > -9.2e18 && ms < 9.2e18) || ms <= -1.0 {
        return fail("ERR timeout is negative");
    }
    let ms = ms.trunc() as i64;
    Ok((ms > 0).then(|| std::time::Duration::from_millis(ms as u64)))
}

/// The non-blocking half of BLPOP/BRPOP: pops from the first non-empty list of `keys`,
/// replying `[key, value]`; `Ok(None)` when all are empty or missing.
pub(crate) fn pop_first_nonempty(
    x: &mut Exec<'_>,
    keys: &[Vec<u8>],
    left: bool,
) -> Result<Option<Value>, Value> {
    for key in keys {
        let Some(list) = x.list(key)? else { continue };
        let item = if left {
            list.pop_front()
        } else {
            list.pop_back()
        };
        if let Some(item) = item {
            x.touch(key);
            return Ok(Some(Value::Array(vec![bulk(key.clone()), bulk(item)])));
        }
    }
    Ok(None)
}
