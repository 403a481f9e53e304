//! A wrapper backend that makes commands fail on purpose, for a service's own resilience
//! tests: latency, errors at a rate, timeouts, dropped connections, cluster redirections.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use redis::aio::ConnectionLike;
use redis::{Cmd, Pipeline, RedisError, RedisFuture, RedisResult, Value};

use super::{async_trait, PoolBackend, PoolState, PooledConnection, Release};
use crate::command::command_name;
use crate::Result;

/// What happens to a command a [`FaultRule`] picks.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Fault {
    /// The command waits this long, then runs (later rules may still apply).
    Latency(Duration),
    /// The command is not sent; it gets this error reply, written as the server writes it
    /// without the leading `-` (`"ERR injected"`, `"LOADING Redis is loading"`).
    ErrorReply(String),
    /// The command is not sent; after waiting this long it fails as a socket timeout does
    /// (`err.is_timeout()`).
    Timeout(Duration),
    /// The command is not sent; it fails as if the server closed the connection
    /// (`err.is_connection_dropped()`), and the connection is given back to be closed, so
    /// the next command opens a fresh one.
    DropConnection,
    /// A cluster redirection to `address` for `slot`: the reply `MOVED <slot> <address>`.
    Moved {
        /// The hash slot the reply names.
        slot: u16,
        /// The node it points to, `host:port`.
        address: String,
    },
    /// A one-shot cluster redirection: the reply `ASK <slot> <address>`.
    Ask {
        /// The hash slot the reply names.
        slot: u16,
        /// The node it points to, `host:port`.
        address: String,
    },
    /// The cluster's "slot is being migrated" reply, `TRYAGAIN …`.
    TryAgain,
}

/// Which commands get a [`Fault`], and how often.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultRule {
    fault: Fault,
    commands: Option<Vec<String>>,
    rate: f64,
}

impl FaultRule {
    /// `fault` for every command, every time.
    pub fn new(fault: Fault) -> Self {
        FaultRule {
            fault,
            commands: None,
            rate: 1.0,
        }
    }

    /// Only for these commands (names in any case: `"get"`, `"BLPOP"`). A pipeline is
    /// picked when any of its commands is.
    pub fn on<I, S>(mut self, commands: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let names = commands
            .into_iter()
            .map(|c| c.as_ref().to_ascii_uppercase())
            .collect();
        self.commands = Some(names);
        self
    }

    /// For this share of the commands it applies to, 0 to 1 (default 1: all); values
    /// outside are clamped, NaN is 0.
    pub fn rate(mut self, rate: f64) -> Self {
        self.rate = if rate.is_nan() {
            0.0
        } else {
            rate.clamp(0.0, 1.0)
        };
        self
    }

    fn covers(&self, names: &[&[u8]]) -> bool {
        match &self.commands {
            None => true,
            Some(commands) => names.iter().any(|name| {
                commands
                    .iter()
                    .any(|c| c.as_bytes().eq_ignore_ascii_case(name))
            }),
        }
    }
}

/// A [`PoolBackend`] around another that injects [`Fault`]s into the commands run on its
/// connections, by rules checked in order: every matching [`Fault::Latency`] adds its
/// delay, and the first other fault that matches (and whose rate's dice roll hits) replaces
/// the command's reply. Commands no fault picks run unchanged on the wrapped backend.
///
/// Plug it into a client with [`RedisClient::map_pool`](crate::RedisClient::map_pool) (or
/// [`ClusterRedisClient::map_pool`](crate::ClusterRedisClient::map_pool)), so the spans,
/// metrics and your handlers see the faults as they would see real ones. On a cluster
/// client the faults come on top of the cluster backend's own retries: an injected `MOVED`
/// reaches your code as if every retry had been redirected.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use baseplate_redis::pool::{Fault, FaultInjectingBackend, FaultRule};
/// use baseplate_redis::{config::RawConfig, Baseplate, ContextSpec, RedisClient};
/// use redis::AsyncCommands;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let client = RedisClient::new().map_pool(|pool| {
///     Arc::new(
///         FaultInjectingBackend::new(pool)
///             .with_rule(FaultRule::new(Fault::Latency(Duration::from_millis(20))).on(["GET"]))
///             .with_rule(FaultRule::new(Fault::ErrorReply("ERR injected".into())).on(["INCRBY"]))
///             .with_rule(FaultRule::new(Fault::DropConnection).on(["DEL"]).rate(0.5))
///             .with_seed(7),
///     )
/// });
/// let config = RawConfig::from_pairs([("cache.url", "memory://doc-faults")]);
/// let mut baseplate = Baseplate::new(config);
/// baseplate.configure_context(ContextSpec::new().client("cache", client))?;
/// let mut cache = baseplate.make_context_object().redis("cache")?;
///
/// let started = std::time::Instant::now();
/// let _: Option<String> = cache.get("k").await?;
/// assert!(started.elapsed() >= Duration::from_millis(20));
///
/// let err = cache.incr::<_, _, i64>("hits", 1).await.unwrap_err();
/// assert_eq!(err.code(), Some("ERR"));
///
/// // The service's own retry copes with a connection dropped half of the time.
/// let mut deleted = None;
/// for _ in 0..20 {
///     if let Ok(n) = cache.del::<_, i64>("k").await {
///         deleted = Some(n);
///         break;
///     }
/// }
/// assert_eq!(deleted, Some(0));
/// # Ok(()) }
/// # tokio::runtime::Runtime::new().unwrap().block_on(run()).unwrap();
/// ```
pub struct FaultInjectingBackend {
    inner: Arc<dyn PoolBackend>,
    faults: Arc<Faults>,
}

/// The rules and their dice, shared by the backend and its connections.
struct Faults {
    rules: Vec<FaultRule>,
    rng: Mutex<fastrand::Rng>,
    injected: AtomicU64,
}

/// What a fault does instead of the command.
enum Injected {
    /// An error reply (a `Value::ServerError`), as the server would send it.
    Reply(Value),
    /// A failure of the connection itself.
    Fail(RedisError),
    /// The connection is dropped: a failure, and the connection must be closed.
    Drop(RedisError),
}

impl Clone for Faults {
    fn clone(&self) -> Self {
        Faults {
            rules: self.rules.clone(),
            rng: Mutex::new(
                self.rng
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .fork(),
            ),
            injected: AtomicU64::new(self.injected.load(Ordering::Relaxed)),
        }
    }
}

impl Faults {
    /// Waits the matching latencies, then picks the fault replacing the command, if any.
    async fn apply(&self, names: &[&[u8]]) -> Option<Injected> {
        let mut delay = Duration::ZERO;
        let mut replacing = None;
        for rule in self.rules.iter().filter(|rule| rule.covers(names)) {
            if !self.roll(rule.rate) {
                continue;
            }
            match &rule.fault {
                Fault::Latency(latency) => delay += *latency,
                fault => {
                    replacing = Some(fault.clone());
                    break;
                }
            }
        }
        if delay > Duration::ZERO || replacing.is_some() {
            self.injected.fetch_add(1, Ordering::Relaxed);
        }
        if delay > Duration::ZERO {
            tokio::time::sleep(delay).await;
        }
        Some(match replacing? {
            Fault::Latency(_) => unreachable!("latencies only add delay"),
            Fault::ErrorReply(line) => Injected::Reply(error_reply(&line)),
            Fault::Moved { slot, address } => {
                Injected::Reply(error_reply(&format!("MOVED {slot} {address}")))
            }
            Fault::Ask { slot, address } => {
                Injected::Reply(error_reply(&format!("ASK {slot} {address}")))
            }
            Fault::TryAgain => Injected::Reply(error_reply(
                "TRYAGAIN Multiple keys request during rehashing of slot",
            )),
            Fault::Timeout(after) => {
                tokio::time::sleep(after).await;
                let message = format!("injected timeout after {after:?}");
                Injected::Fail(std::io::Error::new(std::io::ErrorKind::TimedOut, message).into())
            }
            Fault::DropConnection => Injected::Drop(
                std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "injected: connection dropped",
                )
                .into(),
            ),
        })
    }

    fn roll(&self, rate: f64) -> bool {
        rate >= 1.0
            || self
                .rng
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .f64()
                < rate
    }
}

/// An error reply as the server sends it (a `Value::ServerError`).
fn error_reply(line: &str) -> Value {
    // One line, as on the wire: a line break would end the reply early.
    let line = line.replace(['\r', '\n'], " ");
    redis::parse_redis_value(format!("-{line}\r\n").as_bytes())
        .unwrap_or_else(|_| Value::SimpleString(line))
}

impl FaultInjectingBackend {
    /// Wraps `inner`; no fault until rules are added.
    pub fn new(inner: Arc<dyn PoolBackend>) -> Self {
        FaultInjectingBackend {
            inner,
            faults: Arc::new(Faults {
                rules: Vec::new(),
                rng: Mutex::new(fastrand::Rng::new()),
                injected: AtomicU64::new(0),
            }),
        }
    }

    // Connections already handed out keep the rules they were made with.
    fn faults_mut(&mut self) -> &mut Faults {
        Arc::make_mut(&mut self.faults)
    }

    /// Adds a rule (checked after those added before).
    pub fn with_rule(mut self, rule: FaultRule) -> Self {
        self.faults_mut().rules.push(rule);
        self
    }

    /// Seeds the dice of the rules' rates, for a test that injects the same faults on
    /// every run.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.faults_mut().rng = Mutex::new(fastrand::Rng::with_seed(seed));
        self
    }

    /// How many commands got a fault (latency included) so far.
    pub fn injected(&self) -> u64 {
        self.faults.injected.load(Ordering::Relaxed)
    }

    /// Wraps a connection of the inner backend; a shared one is replaced from the inner
    /// backend when it goes stale.
    fn wrap(&self, inner: PooledConnection, shared: bool) -> PooledConnection {
        let discard = Arc::new(AtomicBool::new(false));
        let conn = FaultyConnection {
            inner,
            faults: self.faults.clone(),
            refetch: shared.then(|| self.inner.clone()),
            discard: discard.clone(),
        };
        // The client decides through the outer connection that it must be closed; the
        // inner one is what the wrapped backend closes.
        PooledConnection::with_release(conn, move |release| {
            if release == Release::Discard {
                discard.store(true, Ordering::Relaxed);
            }
        })
    }
}

#[async_trait]
impl PoolBackend for FaultInjectingBackend {
    async fn shared(&self) -> Result<PooledConnection> {
        Ok(self.wrap(self.inner.shared().await?, true))
    }

    async fn exclusive(&self) -> Result<PooledConnection> {
        Ok(self.wrap(self.inner.exclusive().await?.held_exclusively(), false))
    }

    fn state(&self) -> PoolState {
        self.inner.state()
    }

    fn database(&self) -> i64 {
        self.inner.database()
    }

    fn address(&self) -> Arc<str> {
        self.inner.address()
    }
}

impl fmt::Debug for FaultInjectingBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultInjectingBackend")
            .field("inner", &self.inner)
            .field("rules", &self.faults.rules)
            .field("injected", &self.injected())
            .finish()
    }
}

/// A connection of the inner backend, with the faults in front of it.
struct FaultyConnection {
    inner: PooledConnection,
    faults: Arc<Faults>,
    refetch: Option<Arc<dyn PoolBackend>>,
    discard: Arc<AtomicBool>,
}

impl FaultyConnection {
    /// Replaces a shared connection its backend stopped trusting (the handle holding this
    /// wrapper cannot see the inner connection's staleness).
    async fn refresh(&mut self) -> RedisResult<()> {
        if let Some(backend) = &self.refetch {
            if self.inner.is_stale() {
                let mut fresh = backend.shared().await?;
                std::mem::swap(&mut self.inner, &mut fresh);
                fresh.discard();
            }
        }
        Ok(())
    }
}

impl FaultyConnection {
    /// The command's outcome under `injected`.
    fn injected(&mut self, injected: Injected) -> RedisResult<Value> {
        match injected {
            Injected::Reply(value) => Ok(value),
            Injected::Fail(err) => Err(err),
            Injected::Drop(err) => {
                self.inner.discard();
                Err(err)
            }
        }
    }
}

impl ConnectionLike for FaultyConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            self.refresh().await?;
            match self.faults.apply(&[command_name(cmd)]).await {
                Some(injected) => self.injected(injected),
                None => self.inner.req_packed_command(cmd).await,
            }
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            self.refresh().await?;
            let names: Vec<&[u8]> = pipeline.cmd_iter().map(command_name).collect();
            match self.faults.apply(&names).await {
                // A pipeline fails as a whole: its error reply becomes the error.
                Some(injected) => match self.injected(injected)?.extract_error() {
                    Err(err) => Err(err),
                    Ok(other) => Err(RedisError::from((
                        redis::ErrorKind::Client,
                        "injected fault",
                        format!("{other:?}"),
                    ))),
                },
                None => {
                    self.inner
                        .req_packed_commands(pipeline, offset, count)
                        .await
                }
            }
        })
    }

    fn get_db(&self) -> i64 {
        self.inner.get_db()
    }
}

impl Drop for FaultyConnection {
    fn drop(&mut self) {
        if self.discard.load(Ordering::Relaxed) {
            self.inner.discard();
        }
    }
}
