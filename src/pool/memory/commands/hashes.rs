//! Hash commands.

use redis::Value;

use super::{arg_i64, arity_error, bulk, error, int, parse_i64, Exec, Reply};

fn set_pairs(x: &mut Exec<'_>, name: &str) -> Result<usize, Value> {
    if x.args.len() % 2 == 1 {
        return Err(arity_error(name));
    }
    let key = x.arg(1).to_vec();
    let pairs: Vec<Vec<u8>> = x.args[2..].to_vec();
    let hash = x.hash_or_create(&key)?;
    let mut added = 0;
    for pair in pairs.chunks(2) {
        if hash.insert(pair[0].clone(), pair[1].clone()).is_none() {
            added += 1;
        }
    }
    x.touch(&key);
    Ok(added)
}

pub(super) fn hset(x: &mut Exec<'_>) -> Reply {
    Ok(int(set_pairs(x, "hset")? as i64))
}

pub(super) fn hmset(x: &mut Exec<'_>) -> Reply {
    set_pairs(x, "hmset")?;
    Ok(Value::Okay)
}

pub(super) fn hsetnx(x: &mut Exec<'_>) -> Reply {
    let key = x.arg(1).to_vec();
    let field = x.arg(2).to_vec();
    let value = x.arg(3).to_vec();
    let hash = x.hash_or_create(&key)?;
    if hash.contains_key(&field) {
        return Ok(int(0));
    }
    hash.insert(field, value);
    x.touch(&key);
    Ok(int(1))
}

pub(super) fn hget(x: &mut Exec<'_>) -> Reply {
    let key = x.arg(1).to_vec();
    let field = x.arg(2).to_vec();
    Ok(x.hash(&key)?
        .and_then(|h| h.get(&field).cloned())
        .map(bulk)
        .unwrap_or(Value::Nil))
}

pub(super) fn hmget(x: &mut Exec<'_>) -> Reply {
    let key = x.arg(1).to_vec();
    let fields: Vec<Vec<u8>> = x.args[2..].to_vec();
    let hash = x.hash(&key)?;
    Ok(Value::Array(
        fields
            .iter()
            .map(|f| {
                hash.as_ref()
                    .and_then(|h| h.get(f).cloned())
                    .map(bulk)
                    .unwrap_or(Value::Nil)
            })
            .collect(),
    ))
}

pub(super) fn hgetall(x: &mut Exec<'_>) -> Reply {
    let key = x.arg(1).to_vec();
    let items = x
        .hash(&key)?
        .map(|h| {
            h.iter()
                .flat_map(|(f, v)| [bulk(f.clone()), bulk(v.clone())])
                .collect()
        })
        .unwrap_or_default();
    Ok(Value::Array(items))
}

pub(super) fn hdel(x: &mut Exec<'_>) -> Reply {
    let key = x.arg(1).to_vec();
    let fields: Vec<Vec<u8>> = x.args[2..].to_vec();
    let Some(hash) = x.hash(&key)? else {
        return Ok(int(0));
    };
    let removed = fields.iter().filter(|f| hash.remove(*f).is_some()).count();
    if removed > 0 {
        x.touch(&key);
    }
    Ok(int(removed as i64))
}

pub(super) fn hexists(x: &mut Exec<'_>) -> Reply {
    let key = x.arg(1).to_vec();
    let field = x.arg(2).to_vec();
    Ok(int(
        x.hash(&key)?.is_some_and(|h| h.contains_key(&field)) as i64
    ))
}

pub(super) fn hlen(x: &mut Exec<'_>) -> Reply {
    let key = x.arg(1).to_vec();
    Ok(int(x.hash(&key)?.map_or(0, |h| h.len()) as i64))
}

pub(super) fn hkeys(x: &mut Exec<'_>) -> Reply {
    let key = x.arg(1).to_vec();
    let items = x
        .hash(&key)?
        .map(|h| h.keys().cloned().map(bulk).collect())
        .unwrap_or_default();
    Ok(Value::Array(items))
}

pub(super) fn hvals(x: &mut Exec<'_>) -> Reply {
    let key = x.arg(1).to_vec();
    let items = x
        .hash(&key)?
        .map(|h| h.values().cloned().map(bulk).collect())
        .unwrap_or_default();
    Ok(Value::Array(items))
}

pub(super) fn hincrby(x: &mut Exec<'_>) -> Reply {
    let by = arg_i64(x.arg(3))?;
    let key = x.arg(1).to_vec();
    let field = x.arg(2).to_vec();
    let hash = x.hash_or_create(&key)?;
    let current = match hash.get(&field) {
        None => 0,
        Some(v) => parse_i64(v).ok_or_else(|| error("ERR hash value is not an integer"))?,
    };
    let next = current
        .checked_add(by)
        .ok_or_else(|| error("ERR increment or decrement would overflow"))?;
    hash.insert(field, next.to_string().into_bytes());
    x.touch(&key);
    Ok(int(next))
}
