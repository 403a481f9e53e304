//! The connection the in-memory backend hands out: `redis::aio::ConnectionLike` over a
//! [`Store`], with the per-connection state a Redis client has (selected database, name,
//! MULTI queue, WATCHed keys).

use std::sync::Arc;

use redis::aio::ConnectionLike;
use redis::{Arg, Cmd, Pipeline, RedisError, RedisFuture, Value};

use super::blocking;
use super::commands::{self, arity_error, arity_ok, error, Exec};
use super::store::{now_ms, Keyspace, Store, DATABASES};

/// Commands whose state lives in the connection, with their Redis arity.
fn connection_command(name: &str) -> Option<i32> {
    Some(match name {
        "select" => 2,
        "client" => -2,
        "multi" => 1,
        "exec" => 1,
        "discard" => 1,
        "watch" => -2,
        "unwatch" => 1,
        "blpop" | "brpop" => -3,
        "publish" => 3,
        _ => return None,
    })
}

/// Redis 7.0's reply to a command it does not know (argument text capped at 128 bytes).
fn unknown_command(args: &[Vec<u8>]) -> Value {
    fn clip(b: &[u8], max: usize) -> &[u8] {
        let b = b.split(|&c| c == 0).next().unwrap_or(&[]);
        &b[..b.len().min(max)]
    }
    let mut listed: Vec<u8> = Vec::new();
    for a in &args[1..] {
        if listed.len() >= 128 {
            break;
        }
        listed.push(b'\'');
        listed.extend_from_slice(clip(a, 128 - (listed.len() - 1)));
        listed.extend_from_slice(b"' ");
    }
    let name = String::from_utf8_lossy(clip(&args[0], 128));
    error(&format!(
        "ERR unknown command '{name}', with args beginning with: {}",
        String::from_utf8_lossy(&listed)
    ))
}

/// A queued transaction.
#[derive(Debug, Default)]
struct Multi {
    commands: Vec<Vec<Vec<u8>>>,
    /// A command was rejected while queuing: EXEC aborts.
    failed: bool,
}

/// One client connection to an in-memory store.
#[derive(Debug)]
pub(crate) struct InMemoryConnection {
    store: Arc<Store>,
    db: i64,
    name: Option<Vec<u8>>,
    multi: Option<Multi>,
    /// (db, key, version at WATCH time)
    watched: Vec<(usize, Vec<u8>, u64)>,
}

impl InMemoryConnection {
    pub(crate) fn new(store: Arc<Store>, db: i64) -> Self {
        InMemoryConnection {
            store,
            db,
            name: None,
            multi: None,
            watched: Vec::new(),
        }
    }

    /// Runs one command and returns the reply Redis would send (errors as
    /// `Value::ServerError`). Only a blocking pop outside MULTI awaits.
    pub(crate) async fn call(&mut self, args: Vec<Vec<u8>>) -> Value {
        let Some(first) = args.first() else {
            return error("ERR empty command");
        };
        let name = String::from_utf8_lossy(first).to_ascii_lowercase();
        if self.multi.is_none() && (name == "blpop" || name == "brpop") && args.len() >= 3 {
            return blocking::pop(&self.store, self.db as usize, &args, name == "blpop").await;
        }
        let (reply, pushed) = {
            let store = self.store.clone();
            let mut ks = store.lock();
            self.call_locked(&mut ks, &name, &args)
        };
        if pushed {
            self.store.pushed.notify_waiters();
        }
        reply
    }

    /// Validates and runs (or queues) a command with the keyspace locked. Returns the reply
    /// and whether a list was pushed to.
    fn call_locked(&mut self, ks: &mut Keyspace, name: &str, args: &[Vec<u8>]) -> (Value, bool) {
        let arity = match commands::lookup(name) {
            Some((arity, _)) => Some(arity),
            None => connection_command(name),
        };
        let Some(arity) = arity else {
            if let Some(m) = &mut self.multi {
                m.failed = true;
            }
            return (unknown_command(args), false);
        };
        if !arity_ok(arity, args.len()) {
            if name == "exec" {
                // Redis rejects a malformed EXEC as an aborted transaction, in MULTI or not.
                self.multi = None;
                self.watched.clear();
                return (
                    error("EXECABORT Transaction discarded because of: wrong number of arguments for 'exec' command"),
                    false,
                );
            }
            if let Some(m) = &mut self.multi {
                m.failed = true;
            }
            return (arity_error(name), false);
        }
        if let Some(m) = &mut self.multi {
            match name {
                "exec" | "discard" | "multi" | "watch" => {}
                "client" => {
                    if let Err(e) = client_subcommand_arity(args) {
                        m.failed = true;
                        return (e, false);
                    }
                    m.commands.push(args.to_vec());
                    return (commands::status("QUEUED"), false);
                }
                _ => {
                    m.commands.push(args.to_vec());
                    return (commands::status("QUEUED"), false);
                }
            }
        }
        self.run(ks, name, args)
    }

    /// Runs a validated command now.
    fn run(&mut self, ks: &mut Keyspace, name: &str, args: &[Vec<u8>]) -> (Value, bool) {
        let reply = match name {
            "select" => self.select(args),
            "client" => self.client(args),
            "multi" => {
                if self.multi.is_some() {
                    error("ERR MULTI calls can not be nested")
                } else {
                    self.multi = Some(Multi::default());
                    Value::Okay
                }
            }
            "discard" => match self.multi.take() {
                None => error("ERR DISCARD without MULTI"),
                Some(_) => {
                    self.watched.clear();
                    Value::Okay
                }
            },
            "watch" => {
                if self.multi.is_some() {
                    error("ERR WATCH inside MULTI is not allowed")
                } else {
                    let now = now_ms();
                    let db = self.db as usize;
                    for key in &args[1..] {
                        let v = ks.dbs[db].version(key, now, &mut ks.clock);
                        self.watched.push((db, key.clone(), v));
                    }
                    Value::Okay
                }
            }
            "unwatch" => {
                self.watched.clear();
                Value::Okay
            }
            "exec" => return self.exec(ks),
            "publish" => commands::int(self.store.broker.publish(&args[1], &args[2])),
            "blpop" | "brpop" => {
                // Inside a transaction a blocking pop does not block.
                let keys = &args[1..args.len() - 1];
                let timeout = args.last().map(Vec::as_slice).unwrap_or(&[]);
                if let Err(e) = commands::blocking_timeout(timeout) {
                    return (e, false);
                }
                let mut x = Exec::new(ks, self.db as usize, args);
                match commands::pop_first_nonempty(&mut x, keys, name == "blpop") {
                    Ok(Some(v)) => v,
                    Ok(None) => Value::Nil,
                    Err(e) => e,
                }
            }
            _ => {
                let Some((_, handler)) = commands::lookup(name) else {
                    return (error("ERR unknown command"), false);
                };
                let mut x = Exec::new(ks, self.db as usize, args);
                let reply = handler(&mut x).unwrap_or_else(|e| e);
                return (reply, x.pushed);
            }
        };
        (reply, false)
    }

    fn exec(&mut self, ks: &mut Keyspace) -> (Value, bool) {
        let Some(multi) = self.multi.take() else {
            return (error("ERR EXEC without MULTI"), false);
        };
        let watched = std::mem::take(&mut self.watched);
        if multi.failed {
            return (
                error("EXECABORT Transaction discarded because of previous errors."),
                false,
            );
        }
        let now = now_ms();
        for (db, key, version) in &watched {
            if ks.dbs[*db].version(key, now, &mut ks.clock) != *version {
                return (Value::Nil, false);
            }
        }
        let mut replies = Vec::with_capacity(multi.commands.len());
        let mut pushed = false;
        for args in &multi.commands {
            let name = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
            let (reply, p) = self.run(ks, &name, args);
            pushed |= p;
            replies.push(reply);
        }
        (Value::Array(replies), pushed)
    }

    fn select(&mut self, args: &[Vec<u8>]) -> Value {
        match commands::parse_i64(&args[1]) {
            None => error(commands::NOT_INTEGER),
            Some(db) if !(0..DATABASES).contains(&db) => error("ERR DB index is out of range"),
            Some(db) => {
                self.db = db;
                Value::Okay
            }
        }
    }

    fn client(&mut self, args: &[Vec<u8>]) -> Value {
        if let Err(e) = client_subcommand_arity(args) {
            return e;
        }
        if args[1].eq_ignore_ascii_case(b"getname") {
            return self
                .name
                .clone()
                .map(Value::BulkString)
                .unwrap_or(Value::Nil);
        }
        let name = &args[2];
        if name.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
            return error(
                "ERR Client names cannot contain spaces, newlines or special characters.",
            );
        }
        self.name = (!name.is_empty()).then(|| name.clone());
        Value::Okay
    }
}

/// The subcommands of CLIENT we implement, with Redis's errors for the others.
fn client_subcommand_arity(args: &[Vec<u8>]) -> Result<(), Value> {
    let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
    let arity = match sub.as_str() {
        "setname" => 3,
        "getname" => 2,
        _ => {
            return Err(error(&format!(
                "ERR unknown subcommand '{}'. Try CLIENT HELP.",
                String::from_utf8_lossy(&args[1])
            )))
        }
    };
    if args.len() != arity {
        return Err(arity_error(&format!("client|{sub}")));
    }
    Ok(())
}

/// The arguments of a command as bytes (a SCAN cursor argument is read from the packed form).
fn command_args(cmd: &Cmd) -> Vec<Vec<u8>> {
    let has_cursor = cmd.args_iter().any(|a| !matches!(a, Arg::Simple(_)));
    if !has_cursor {
        return cmd
            .args_iter()
            .map(|a| match a {
                Arg::Simple(b) => b.to_vec(),
                _ => Vec::new(),
            })
            .collect();
    }
    unpack(&cmd.get_packed_command())
}

/// Decodes a packed RESP command (`*N\r\n$len\r\nbytes\r\n…`).
fn unpack(packed: &[u8]) -> Vec<Vec<u8>> {
    fn line(buf: &[u8], pos: &mut usize) -> Option<usize> {
        let start = *pos + 1;
        let end = start + buf.get(start..)?.windows(2).position(|w| w == b"\r\n")?;
        *pos = end + 2;
        std::str::from_utf8(&buf[start..end]).ok()?.parse().ok()
    }
    let mut pos = 0;
    let mut out = Vec::new();
    let Some(n) = line(packed, &mut pos) else {
        return out;
    };
    for _ in 0..n {
        let Some(len) = line(packed, &mut pos) else {
            break;
        };
        let Some(bytes) = packed.get(pos..pos + len) else {
            break;
        };
        out.push(bytes.to_vec());
        pos += len + 2;
    }
    out
}

impl ConnectionLike for InMemoryConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move { Ok(self.call(command_args(cmd)).await) })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let atomic = pipeline.is_transaction();
            let mut replies = Vec::new();
            if atomic {
                replies.push(self.call(vec![b"MULTI".to_vec()]).await);
            }
            for cmd in pipeline.cmd_iter() {
                replies.push(self.call(command_args(cmd)).await);
            }
            if atomic {
                replies.push(self.call(vec![b"EXEC".to_vec()]).await);
                // As redis-rs's multiplexed connection: an error while queuing fails the
                // whole transaction.
                if let Some(err) = replies[..offset.min(replies.len())]
                    .iter()
                    .find_map(|v| match v {
                        Value::ServerError(_) => Some(v.clone()),
                        _ => None,
                    })
                {
                    return Err(aborted_transaction(err));
                }
            }
            Ok(replies.into_iter().skip(offset).take(count).collect())
        })
    }

    fn get_db(&self) -> i64 {
        self.db
    }
}

/// The error redis-rs reports for a transaction the server refused with EXECABORT.
fn aborted_transaction(_first_error: Value) -> RedisError {
    match error("EXECABORT Transaction discarded because of previous errors.") {
        Value::ServerError(e) => e.into(),
        _ => (redis::ErrorKind::Client, "transaction aborted").into(),
    }
}
