//! A connection that answers from a script: canned replies, errors and delays, for tests.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use redis::aio::ConnectionLike;
use redis::{Arg, Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, RedisResult, Value};

/// A connection that answers each command with the next step of a script, and remembers
/// the commands it received: what a mocked backend's `shared()`/`exclusive()` hand out to
/// test a handler against replies, errors and slow answers of your choosing.
///
/// Clones share the script and the record, so keep one to look at
/// [`received`](Self::received) after handing clones out. A command that finds the script
/// empty fails with an error saying so. Pipelines take one step per command (an atomic
/// pipeline gets them back as its EXEC reply).
///
/// ```
/// use std::time::Duration;
/// use baseplate_redis::pool::{PoolBackend, ScriptedConnection};
/// use redis::{AsyncCommands, Value};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let script = ScriptedConnection::new()
///     .reply(Value::Okay)
///     .delay(Duration::from_millis(5))
///     .reply(Value::BulkString(b"hello".to_vec()))
///     .error_reply("WRONGTYPE Operation against a key holding the wrong kind of value");
///
/// let mut conn = script.clone();
/// let _: () = conn.set("greeting", "hello").await.unwrap();
/// let greeting: String = conn.get("greeting").await.unwrap();
/// assert_eq!(greeting, "hello");
/// let err = conn.lpush::<_, _, i64>("greeting", "x").await.unwrap_err();
/// assert_eq!(err.code(), Some("WRONGTYPE"));
/// let err = conn.get::<_, String>("more").await.unwrap_err();
/// assert!(err.to_string().contains("no reply scripted for GET more"), "{err}");
///
/// assert_eq!(script.received()[0], ["SET", "greeting", "hello"]);
/// # });
/// ```
#[derive(Clone, Default)]
pub struct ScriptedConnection {
    inner: Arc<Mutex<Script>>,
}

#[derive(Default)]
struct Script {
    steps: VecDeque<Step>,
    received: Vec<Vec<String>>,
    db: i64,
}

enum Step {
    Reply(Value),
    Fail(RedisError),
    Wait(Duration),
    Hang,
}

impl ScriptedConnection {
    /// An empty script, on database 0.
    pub fn new() -> Self {
        Self::default()
    }

    fn push(self, step: Step) -> Self {
        self.lock().steps.push_back(step);
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Script> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Answers the next command with `value` (`Value::Okay`, `Value::Int(1)`,
    /// `Value::BulkString(…)`, `Value::Nil`, `Value::Array(…)`…).
    pub fn reply(self, value: Value) -> Self {
        self.push(Step::Reply(value))
    }

    /// Answers the next command with a Redis error reply, written as the server writes it
    /// without the leading `-`: `"WRONGTYPE Operation against…"`, `"MOVED 3999 10.0.0.2:6379"`,
    /// `"TRYAGAIN Multiple keys request during rehashing of slot"`.
    pub fn error_reply(self, line: &str) -> Self {
        let value = redis::parse_redis_value(format!("-{line}\r\n").as_bytes())
            .unwrap_or_else(|e| Value::SimpleString(format!("unparsable error reply: {e}")));
        self.push(Step::Reply(value))
    }

    /// Fails the next command with `err`, as a broken connection would (for instance
    /// `std::io::Error::from(std::io::ErrorKind::ConnectionReset).into()`).
    pub fn error(self, err: RedisError) -> Self {
        self.push(Step::Fail(err))
    }

    /// Waits `duration` before answering the next command (with the step after this one).
    pub fn delay(self, duration: Duration) -> Self {
        self.push(Step::Wait(duration))
    }

    /// Never answers the next command: for testing timeouts and cancellation.
    pub fn hang(self) -> Self {
        self.push(Step::Hang)
    }

    /// Reports `db` as the connection's database.
    pub fn on_database(self, db: i64) -> Self {
        self.lock().db = db;
        self
    }

    /// The commands received so far, in order, each as its name and arguments (bytes that
    /// are not UTF-8 shown lossily).
    pub fn received(&self) -> Vec<Vec<String>> {
        self.lock().received.clone()
    }

    /// How many steps of the script are left.
    pub fn remaining(&self) -> usize {
        self.lock().steps.len()
    }

    /// Runs the script for one command: waits as scripted, then its answer.
    async fn answer(&self, cmd: &Cmd) -> RedisResult<Value> {
        let words = words(cmd);
        self.lock().received.push(words.clone());
        loop {
            let step = self.lock().steps.pop_front();
            match step {
                Some(Step::Reply(value)) => return Ok(value),
                Some(Step::Fail(err)) => return Err(err),
                Some(Step::Wait(duration)) => tokio::time::sleep(duration).await,
                Some(Step::Hang) => std::future::pending::<()>().await,
                None => {
                    return Err(RedisError::from((
                        ErrorKind::Client,
                        "ScriptedConnection",
                        format!("no reply scripted for {}", words.join(" ")),
                    )))
                }
            }
        }
    }
}

fn words(cmd: &Cmd) -> Vec<String> {
    cmd.args_iter()
        .map(|arg| match arg {
            Arg::Simple(bytes) => String::from_utf8_lossy(bytes).into_owned(),
            Arg::Cursor => "0".to_string(),
            _ => "?".to_string(),
        })
        .collect()
}

impl fmt::Debug for ScriptedConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let script = self.lock();
        f.debug_struct("ScriptedConnection")
            .field("steps_left", &script.steps.len())
            .field("received", &script.received.len())
            .field("db", &script.db)
            .finish()
    }
}

impl ConnectionLike for ScriptedConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(self.answer(cmd))
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let mut replies = Vec::new();
            for cmd in pipeline.cmd_iter() {
                replies.push(self.answer(cmd).await?);
            }
            // What a server sends for MULTI, each queued command and EXEC.
            if pipeline.is_transaction() {
                let queued = replies.iter().map(|_| Value::SimpleString("QUEUED".into()));
                let mut all = vec![Value::Okay];
                all.extend(queued);
                all.push(Value::Array(replies));
                replies = all;
            }
            Ok(replies.into_iter().skip(offset).take(count).collect())
        })
    }

    fn get_db(&self) -> i64 {
        self.lock().db
    }
}
