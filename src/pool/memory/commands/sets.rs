//! Set commands.

use redis::Value;

use super::{bulk, int, Exec, Reply};

pub(super) fn sadd(x: &mut Exec<'_>) -> Reply {
    let key = x.arg(1).to_vec();
    let members: Vec<Vec<u8>> = x.args[2..].to_vec();
    let set = x.set_or_create(&key)?;
    let added = members
        .into_iter()
        .filter(|m| set.insert(m.clone()))
        .count();
    x.touch(&key);
    Ok(int(added as i64))
}

pub(super) fn srem(x: &mut Exec<'_>) -> Reply {
    let key = x.arg(1).to_vec();
    let members: Vec<Vec<u8>> = x.args[2..].to_vec();
    let Some(set) = x.set(&key)? else {
        return Ok(int(0));
    };
    let removed = members.iter().filter(|m| set.remove(*m)).count();
    if removed > 0 {
        x.touch(&key);
    }
    Ok(int(removed as i64))
}

pub(super) fn smembers(x: &mut Exec<'_>) -> Reply {
    let key = x.arg(1).to_vec();
    let items = x
        .set(&key)?
        .map(|s| s.iter().cloned().map(bulk).collect())
        .unwrap_or_default();
    Ok(Value::Array(items))
}

pub(super) fn sismember(x: &mut Exec<'_>) -> Reply {
    let key = x.arg(1).to_vec();
    let member = x.arg(2).to_vec();
    Ok(int(x.set(&key)?.is_some_and(|s| s.contains(&member)) as i64))
}

pub(super) fn scard(x: &mut Exec<'_>) -> Reply {
    let key = x.arg(1).to_vec();
    Ok(int(x.set(&key)?.map_or(0, |s| s.len()) as i64))
}
