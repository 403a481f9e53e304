//! Server and connection commands that only need the keyspace: PING, ECHO, DBSIZE, FLUSH*.

use redis::Value;

use super::{arity_error, bulk, fail, int, status, Exec, Reply, SYNTAX};

pub(super) fn ping(x: &mut Exec<'_>) -> Reply {
    match x.args.len() {
        1 => Ok(status("PONG")),
        2 => Ok(bulk(x.arg(1))),
        _ => Err(arity_error("ping")),
    }
}

pub(super) fn echo(x: &mut Exec<'_>) -> Reply {
    Ok(bulk(x.arg(1)))
}

pub(super) fn dbsize(x: &mut Exec<'_>) -> Reply {
    Ok(int(x.live_keys().len() as i64))
}

fn flush_mode_ok(x: &Exec<'_>) -> Result<(), Value> {
    match x.args.len() {
        1 => Ok(()),
        2 if x.arg(1).eq_ignore_ascii_case(b"sync") || x.arg(1).eq_ignore_ascii_case(b"async") => {
            Ok(())
        }
        _ => fail(SYNTAX),
    }
}

pub(super) fn flushdb(x: &mut Exec<'_>) -> Reply {
    flush_mode_ok(x)?;
    let (db, clock) = x.db_mut();
    db.flush(clock);
    Ok(Value::Okay)
}

pub(super) fn flushall(x: &mut Exec<'_>) -> Reply {
    flush_mode_ok(x)?;
    let ks = &mut *x.ks;
    for db in &mut ks.dbs {
        db.flush(&mut ks.clock);
    }
    Ok(Value::Okay)
}
