//! Keyspace commands: DEL, EXISTS, expiry, TYPE, KEYS, SCAN, RENAME; and Redis's glob.

use redis::Value;

use super::{arg_i64, bulk, error, fail, int, status, Exec, Reply, SYNTAX};

pub(super) fn del(x: &mut Exec<'_>) -> Reply {
    let keys: Vec<Vec<u8>> = x.args[1..].to_vec();
    let removed = keys.iter().filter(|k| x.remove(k).is_some()).count();
    Ok(int(removed as i64))
}

pub(super) fn exists(x: &mut Exec<'_>) -> Reply {
    let keys: Vec<Vec<u8>> = x.args[1..].to_vec();
    let found = keys.iter().filter(|k| x.get(k).is_some()).count();
    Ok(int(found as i64))
}

/// EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT, as Redis 7.0's `expireGenericCommand`.
fn expire_generic(x: &mut Exec<'_>, seconds: bool, absolute: bool, cmd: &str) -> Reply {
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for opt in &x.args[3..] {
        match opt.to_ascii_lowercase().as_slice() {
            b"nx" => nx = true,
            b"xx" => xx = true,
            b"gt" => gt = true,
            b"lt" => lt = true,
            _ => {
                return fail(&format!(
                    "ERR Unsupported option {}",
                    String::from_utf8_lossy(opt)
                ))
            }
        }
    }
    if nx && (xx || gt || lt) {
        return fail("ERR NX and XX, GT or LT options at the same time are not compatible");
    }
    if gt && lt {
        return fail("ERR GT and LT options at the same time are not compatible");
    }
    let when = arg_i64(x.arg(2))?;
    let invalid = || error(&format!("ERR invalid expire time in '{cmd}' command"));
    let mut when = if seconds {
        if !(i64::MIN / 1000..=i64::MAX / 1000).contains(&when) {
            return Err(invalid());
        }
        when * 1000
    } else {
        when
    };
    if !absolute {
        when = when.checked_add(x.now).ok_or_else(invalid)?;
    }
    let key = x.arg(1).to_vec();
    let now = x.now;
    let Some(entry) = x.get_mut(&key) else {
        return Ok(int(0));
    };
    let current = entry.expires_at;
    let refused = (nx && current.is_some())
        || (xx && current.is_none())
        || (gt && current.is_none_or(|t| when <= t))
        || (lt && current.is_some_and(|t| when >= t));
    if refused {
        return Ok(int(0));
    }
    if when <= now {
        x.remove(&key);
    } else {
        entry.expires_at = Some(when);
        x.touch(&key);
    }
    Ok(int(1))
}

pub(super) fn expire(x: &mut Exec<'_>) -> Reply {
    expire_generic(x, true, false, "expire")
}

pub(super) fn pexpire(x: &mut Exec<'_>) -> Reply {
    expire_generic(x, false, false, "pexpire")
}

pub(super) fn expireat(x: &mut Exec<'_>) -> Reply {
    expire_generic(x, true, true, "expireat")
}

pub(super) fn pexpireat(x: &mut Exec<'_>) -> Reply {
    expire_generic(x, false, true, "pexpireat")
}

fn ttl_ms(x: &mut Exec<'_>) -> Option<Option<i64>> {
    let now = x.now;
    let key = x.arg(1).to_vec();
    x.get(&key).map(|e| e.expires_at.map(|t| (t - now).max(0)))
}

pub(super) fn ttl(x: &mut Exec<'_>) -> Reply {
    Ok(int(match ttl_ms(x) {
        None => -2,
        Some(None) => -1,
        Some(Some(ms)) => (ms + 500) / 1000,
    }))
}

pub(super) fn pttl(x: &mut Exec<'_>) -> Reply {
    Ok(int(match ttl_ms(x) {
        None => -2,
        Some(None) => -1,
        Some(Some(ms)) => ms,
    }))
}

pub(super) fn persist(x: &mut Exec<'_>) -> Reply {
    let key = x.arg(1).to_vec();
    match x.get_mut(&key) {
        Some(e) if e.expires_at.is_some() => {
            e.expires_at = None;
            x.touch(&key);
            Ok(int(1))
        }
        _ => Ok(int(0)),
    }
}

pub(super) fn type_(x: &mut Exec<'_>) -> Reply {
    let key = x.arg(1).to_vec();
    Ok(status(x.get(&key).map_or("none", |e| e.data.type_name())))
}

pub(super) fn keys(x: &mut Exec<'_>) -> Reply {
    let pattern = x.arg(1).to_vec();
    let all = pattern == b"*";
    let found = x
        .live_keys()
        .into_iter()
        .filter(|k| all || glob_match(&pattern, k))
        .map(bulk)
        .collect();
    Ok(Value::Array(found))
}

/// A stable 64-bit position for a key (FNV-1a): SCAN walks keys in this order, so a key
/// present for the whole iteration is returned however others come and go.
fn scan_position(key: &[u8]) -> u64 {
    key.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

pub(super) fn scan(x: &mut Exec<'_>) -> Reply {
    let cursor: u64 = std::str::from_utf8(x.arg(1))
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| error("ERR invalid cursor"))?;
    let mut count: i64 = 10;
    let mut pattern: Option<Vec<u8>> = None;
    let mut type_filter: Option<Vec<u8>> = None;
    let mut j = 2;
    while j < x.args.len() {
        if j + 1 >= x.args.len() {
            return fail(SYNTAX);
        }
        let value = x.arg(j + 1).to_vec();
        match x.arg(j).to_ascii_lowercase().as_slice() {
            b"count" => {
                count = arg_i64(&value)?;
                if count < 1 {
                    return fail(SYNTAX);
                }
            }
            b"match" => pattern = Some(value),
            b"type" => type_filter = Some(value.to_ascii_lowercase()),
            _ => return fail(SYNTAX),
        }
        j += 2;
    }
    let mut keys: Vec<(u64, Vec<u8>)> = x
        .live_keys()
        .into_iter()
        .map(|k| (scan_position(&k), k))
        .filter(|(p, _)| *p >= cursor)
        .collect();
    keys.sort();
    let mut batch = Vec::new();
    let mut next = 0;
    for (i, (pos, key)) in keys.iter().enumerate() {
        // Keys sharing a position go in the same batch, so none is skipped.
        if i as i64 >= count && keys[i - 1].0 != *pos {
            next = *pos;
            break;
        }
        batch.push(key.clone());
    }
    let mut out = Vec::new();
    for key in batch {
        if pattern
            .as_ref()
            .is_some_and(|p| p.as_slice() != b"*" && !glob_match(p, &key))
        {
            continue;
        }
        if let Some(t) = &type_filter {
            let name = x.get(&key).map_or("none", |e| e.data.type_name());
            if name.as_bytes() != t.as_slice() {
                continue;
            }
        }
        out.push(bulk(key));
    }
    Ok(Value::Array(vec![
        bulk(next.to_string().into_bytes()),
        Value::Array(out),
    ]))
}

pub(super) fn rename(x: &mut Exec<'_>) -> Reply {
    let from = x.arg(1).to_vec();
    let to = x.arg(2).to_vec();
    if x.get(&from).is_none() {
        return fail("ERR no such key");
    }
    if from == to {
        return Ok(Value::Okay);
    }
    if let Some(entry) = x.remove(&from) {
        x.insert(&to, entry);
    }
    Ok(Value::Okay)
}

/// Redis's glob (`stringmatchlen`): `*`, `?`, `[abc]`, `[^a]`, `[a-z]`, `\x`.
pub(crate) fn glob_match(pattern: &[u8], string: &[u8]) -> bool {
    let (mut p, mut s) = (0usize, 0usize);
    while p < pattern.len() && s < string.len() {
        match pattern[p] {
            b'*' => {
                while p + 1 < pattern.len() && pattern[p + 1] == b'*' {
                    p += 1;
                }
                if p + 1 == pattern.len() {
                    return true;
                }
                return (s..string.len()).any(|i| glob_match(&pattern[p + 1..], &string[i..]));
            }
            b'?' => s += 1,
            b'[' => {
                p += 1;
                let not = pattern.get(p) == Some(&b'^');
                if not {
                    p += 1;
                }
                let mut matched = false;
                loop {
                    match pattern.get(p) {
                        None => {
                            p -= 1;
                            break;
                        }
                        Some(b'\\') if p + 1 < pattern.len() => {
                            p += 1;
                            if pattern[p] == string[s] {
                                matched = true;
                            }
                        }
                        Some(b']') => break,
                        Some(&start)
                            if pattern.get(p + 1) == Some(&b'-') && p + 2 < pattern.len() =>
                        {
                            let end = pattern[p + 2];
                            let (lo, hi) = if start > end {
                                (end, start)
                            } else {
                                (start, end)
                            };
                            p += 2;
                            if (lo..=hi).contains(&string[s]) {
                                matched = true;
                            }
                        }
                        Some(&c) => {
                            if c == string[s] {
                                matched = true;
                            }
                        }
                    }
                    p += 1;
                }
                if not {
                    matched = !matched;
                }
                if !matched {
                    return false;
                }
                s += 1;
            }
            b'\\' if p + 1 < pattern.len() => {
                p += 1;
                if pattern[p] != string[s] {
                    return false;
                }
                s += 1;
            }
            c => {
                if c != string[s] {
                    return false;
                }
                s += 1;
            }
        }
        p += 1;
        if s == string.len() {
            while p < pattern.len() && pattern[p] == b'*' {
                p += 1;
            }
            break;
        }
    }
    p == pattern.len() && s == string.len()
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs_match_like_redis() {
        assert!(glob_match(b"*", b"x"));
        assert!(glob_match(b"h?llo", b"hello"));
        assert!(glob_match(b"h*llo", b"heeeello"));
        assert!(glob_match(b"h[ae]llo", b"hallo"));
        assert!(!glob_match(b"h[^e]llo", b"hello"));
        assert!(glob_match(b"h[a-b]llo", b"hbllo"));
        assert!(glob_match(b"h[b-a]llo", b"hallo"));
        assert!(glob_match(b"a\\*b", b"a*b"));
        assert!(!glob_match(b"a\\*b", b"axb"));
        assert!(glob_match(b"k*", b"k"));
        assert!(!glob_match(b"k?", b"k"));
        assert!(glob_match(b"[abc", b"a"));
    }
}
