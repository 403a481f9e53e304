//! Guarantee 1b: cancelling anything on a handle that is kept and reused is harmless.
//!
//! Eight tasks each keep one handle for their whole life and run random operations on it —
//! GETs, atomic pipelines, `transaction()`, hand-written WATCH/MULTI/EXEC spread over several
//! calls, BLPOPs — while every await may be cut (a random short timeout, or the future
//! dropped after a random number of polls). A disturber keeps rewriting the same keys so
//! that WATCHes really abort. Checked:
//! - groups of keys written together are always all-new or all-old (never half-applied);
//! - every reply is for its caller (values name their key, group or list);
//! - an operation reported as done really wrote (a per-task counter, written only in the
//!   same transactions, is checked after each one): no silent write loss;
//! - a custom `PoolBackend` that *reuses* the connections given back to it as
//!   `Release::Reuse` gets `Release::Discard` for every connection whose command did not
//!   complete (so correctness does not depend on the built-in pool's own poisoning).
//!
//! The same workload also runs on the built-in pool.

mod common;

use std::fmt;
use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use baseplate_redis::config::RawConfig;
use baseplate_redis::pool::{PoolBackend, PoolState, PooledConnection, Release};
use baseplate_redis::{pool_from_config, MonitoredRedisConnection, RedisContextFactory};
use common::RedisServer;
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{AsyncCommands, Cmd, Commands, Pipeline, RedisFuture, Value};

const TASKS: usize = 8;
const OPERATIONS_PER_TASK: usize = 800;
const GROUPS: usize = 3;
const PLAIN_KEYS: usize = 200;

#[derive(Default)]
struct Tally {
    operations: AtomicU32,
    timed_out: AtomicU32,
    dropped: AtomicU32,
    refused: AtomicU32,
    watch_aborts: AtomicU32,
}

impl Tally {
    fn cut(&self) -> u32 {
        self.timed_out.load(Ordering::Relaxed) + self.dropped.load(Ordering::Relaxed)
    }
}

/// Awaits `fut`, or cuts it: a random timeout of 10 µs–1.5 ms, or dropping it after 1–5
/// polls (at whatever await point it reached). `None` when cut.
/// (Boxed: a generic future here trips rustc's `Send` inference for the spawned tasks.)
async fn maybe_cut<'a, T>(
    fut: Pin<Box<dyn Future<Output = T> + Send + 'a>>,
    tally: &Tally,
) -> Option<T> {
    match fastrand::u32(0..10) {
        0..=1 => {
            let limit = Duration::from_micros(fastrand::u64(10..1_500));
            let reply = tokio::time::timeout(limit, fut).await.ok();
            if reply.is_none() {
                tally.timed_out.fetch_add(1, Ordering::Relaxed);
            }
            reply
        }
        2..=3 => {
            let mut polls = fastrand::u32(1..6);
            let mut fut = fut;
            let reply = poll_fn(|cx| match fut.as_mut().poll(cx) {
                Poll::Ready(reply) => Poll::Ready(Some(reply)),
                Poll::Pending => {
                    polls -= 1;
                    if polls == 0 {
                        Poll::Ready(None)
                    } else {
                        Poll::Pending
                    }
                }
            })
            .await;
            if reply.is_none() {
                tally.dropped.fetch_add(1, Ordering::Relaxed);
            }
            reply
        }
        _ => Some(fut.await),
    }
}

fn group_keys(task: usize, group: usize) -> [String; 3] {
    ["a", "b", "c"].map(|part| format!("g:{task}:{group}:{part}"))
}

fn counter_key(task: usize) -> String {
    format!("n:{task}")
}

/// A group's token names the group: a reply for another caller would not.
fn token(task: usize, group: usize, writer: &str, n: usize) -> String {
    format!("{task}:{group}:{writer}:{n}")
}

fn plain_key(i: usize) -> String {
    format!("k:{i}")
}

fn plain_value(i: usize) -> String {
    format!("value of k:{i}")
}

/// What an operation did to the task's counter.
enum Wrote {
    Nothing,
    Once,
    Unknown,
}

/// What a task knows of its counter: at least the writes reported done, at most those plus
/// the ones cut off (a cut command may still reach the server, even a little later).
#[derive(Clone, Copy, Default)]
struct Bounds {
    low: i64,
    high: i64,
}

impl Bounds {
    fn add(&mut self, wrote: Wrote) {
        match wrote {
            Wrote::Nothing => {}
            Wrote::Once => {
                self.low += 1;
                self.high += 1;
            }
            Wrote::Unknown => self.high += 1,
        }
    }

    fn assert_holds(&self, now: i64) {
        assert!(
            now >= self.low,
            "a write reported done is missing: {now} < {}",
            self.low
        );
        assert!(
            now <= self.high,
            "a write nobody made: {now} > {}",
            self.high
        );
    }
}

/// One task's state: its handle (kept for good) and what it knows of its counter.
struct Worker {
    task: usize,
    redis: MonitoredRedisConnection,
    counter: Bounds,
    tally: Arc<Tally>,
}

impl Worker {
    async fn run(&mut self, ops: usize) {
        for n in 0..ops {
            let group = fastrand::usize(0..GROUPS);
            let wrote = match fastrand::u32(0..12) {
                0..=2 => self.plain_get().await,
                3..=4 => self.atomic_pipeline(group, n).await,
                5..=6 => self.transaction(group, n).await,
                7..=8 => self.hand_written_multi(group, n).await,
                9..=10 => self.hand_written_watch(group, n).await,
                _ => self.blocking_pop(n).await,
            };
            self.tally.operations.fetch_add(1, Ordering::Relaxed);
            self.check_counter(wrote).await;
        }
    }

    /// After each operation the handle is back to a clean state, so a GET on it is never
    /// refused; its reply is its own key's value.
    async fn plain_get(&mut self) -> Wrote {
        let i = fastrand::usize(0..PLAIN_KEYS);
        if let Some(reply) = maybe_cut(
            Box::pin(self.redis.get::<_, String>(plain_key(i))),
            &self.tally,
        )
        .await
        {
            assert_eq!(reply.unwrap(), plain_value(i));
        }
        Wrote::Nothing
    }

    /// `exec_async` of an atomic pipeline: `Ok(())` must mean written.
    async fn atomic_pipeline(&mut self, group: usize, n: usize) -> Wrote {
        let value = token(self.task, group, "pipeline", n);
        let mut pipe = self.redis.pipeline("group");
        for key in group_keys(self.task, group) {
            pipe.set(key, &value).ignore();
        }
        pipe.incr(counter_key(self.task), 1).ignore();
        match maybe_cut(Box::pin(pipe.exec_async(&mut self.redis)), &self.tally).await {
            Some(Ok(())) => Wrote::Once,
            Some(Err(err)) => panic!("an atomic pipeline on a clean handle failed: {err}"),
            None => Wrote::Unknown,
        }
    }

    /// `transaction()`, possibly cut inside its body; the disturber makes WATCH abort.
    async fn transaction(&mut self, group: usize, n: usize) -> Wrote {
        let (task, keys) = (self.task, group_keys(self.task, group));
        let value = token(task, group, "transaction", n);
        let counter = counter_key(task);
        let watched = keys.to_vec();
        let run = self.redis.transaction(watched, async move |conn, pipe| {
            let current: Option<String> = conn.get(&keys[0]).await?;
            if let Some(current) = current {
                assert!(
                    current.starts_with(&format!("{task}:{group}:")),
                    "{current}"
                );
            }
            for key in &keys {
                pipe.set(key, &value).ignore();
            }
            pipe.incr(&counter, 1);
            pipe.query_async::<Option<(i64,)>>(conn).await
        });
        match maybe_cut(Box::pin(run), &self.tally).await {
            Some(Ok((count,))) => {
                self.counter.add(Wrote::Once);
                self.counter.assert_holds(count);
                Wrote::Nothing
            }
            Some(Err(err)) => panic!("transaction() failed: {err}"),
            None => Wrote::Unknown,
        }
    }

    /// MULTI, the group's SETs, INCR and EXEC, one call each, any of them cut. The caller
    /// carries on after a cut (the worst case: its next commands must be refused, not run
    /// outside the transaction), or gives up with DISCARD.
    async fn hand_written_multi(&mut self, group: usize, n: usize) -> Wrote {
        let value = token(self.task, group, "multi", n);
        let mut cut = false;
        let multi = redis::cmd("MULTI");
        cut |= self.step(&multi).await.is_none();
        let carry_on = fastrand::bool();
        for key in group_keys(self.task, group) {
            if cut && !carry_on {
                break;
            }
            cut |= self
                .step(redis::cmd("SET").arg(key).arg(&value))
                .await
                .is_none();
        }
        if cut && !carry_on {
            // Ends the MULTI whatever happened: refused commands are not sent.
            self.step(&redis::cmd("DISCARD")).await;
            return Wrote::Unknown;
        }
        cut |= self
            .step(redis::cmd("INCR").arg(counter_key(self.task)))
            .await
            .is_none();
        self.finish_exec(cut).await
    }

    /// WATCH, GET, MULTI, SETs, INCR, EXEC, one call each, any of them cut; EXEC returns nil
    /// when the disturber changed a watched key.
    async fn hand_written_watch(&mut self, group: usize, n: usize) -> Wrote {
        let keys = group_keys(self.task, group);
        let value = token(self.task, group, "watch", n);
        let mut cut = self.step(redis::cmd("WATCH").arg(&keys)).await.is_none();
        match maybe_cut(
            Box::pin(self.redis.get::<_, Option<String>>(&keys[0])),
            &self.tally,
        )
        .await
        {
            Some(Ok(Some(current))) => {
                let prefix = format!("{}:{group}:", self.task);
                assert!(current.starts_with(&prefix), "{current}");
            }
            Some(Ok(None)) => {}
            Some(Err(err)) => {
                assert!(cut, "a GET after a completed WATCH failed: {err}");
                self.tally.refused.fetch_add(1, Ordering::Relaxed);
            }
            None => cut = true,
        }
        cut |= self.step(&redis::cmd("MULTI")).await.is_none();
        for key in &keys {
            cut |= self
                .step(redis::cmd("SET").arg(key).arg(&value))
                .await
                .is_none();
        }
        cut |= self
            .step(redis::cmd("INCR").arg(counter_key(self.task)))
            .await
            .is_none();
        self.finish_exec(cut).await
    }

    /// EXEC after a hand-written group: refused if anything before it was cut (nothing is
    /// written then), nil if a WATCH aborted it, the replies if it ran.
    async fn finish_exec(&mut self, cut_before: bool) -> Wrote {
        let exec = redis::cmd("EXEC");
        match maybe_cut(
            Box::pin(exec.query_async::<Value>(&mut self.redis)),
            &self.tally,
        )
        .await
        {
            Some(Ok(Value::Nil)) => {
                self.tally.watch_aborts.fetch_add(1, Ordering::Relaxed);
                Wrote::Nothing
            }
            Some(Ok(Value::Array(replies))) => {
                assert!(!cut_before, "EXEC ran a group of which a command was cut");
                let Some(Value::Int(count)) = replies.last() else {
                    panic!("EXEC replied {replies:?}");
                };
                self.counter.add(Wrote::Once);
                self.counter.assert_holds(*count);
                Wrote::Nothing
            }
            Some(Ok(other)) => panic!("EXEC replied {other:?}"),
            Some(Err(err)) => {
                assert!(cut_before, "EXEC of an uncut group failed: {err}");
                assert!(err.to_string().contains("is lost"), "{err}");
                self.tally.refused.fetch_add(1, Ordering::Relaxed);
                Wrote::Nothing
            }
            None => Wrote::Unknown,
        }
    }

    /// A command of a hand-written group, maybe cut. Refusals (after an earlier cut) are
    /// expected; any other error is not.
    async fn step(&mut self, cmd: &Cmd) -> Option<()> {
        let reply = maybe_cut(
            Box::pin(cmd.query_async::<Value>(&mut self.redis)),
            &self.tally,
        )
        .await?;
        if let Err(err) = reply {
            assert!(err.to_string().contains("is lost"), "{err}");
            self.tally.refused.fetch_add(1, Ordering::Relaxed);
        }
        Some(())
    }

    /// RPUSH then BLPOP on the task's own list: what comes back is the task's.
    async fn blocking_pop(&mut self, n: usize) -> Wrote {
        let list = format!("q:{}", self.task);
        if fastrand::bool() {
            let item = format!("{list}:{n}");
            let _ = maybe_cut(
                Box::pin(self.redis.rpush::<_, _, i64>(&list, item)),
                &self.tally,
            )
            .await;
        }
        let pop = self.redis.blpop::<_, Option<(String, String)>>(&list, 0.02);
        if let Some(reply) = maybe_cut(Box::pin(pop), &self.tally).await {
            if let Some((from, item)) = reply.unwrap() {
                assert_eq!(from, list);
                assert!(item.starts_with(&format!("{list}:")), "{item}");
            }
        }
        Wrote::Nothing
    }

    /// The counter moved as the operation says (read, never cut).
    async fn check_counter(&mut self, wrote: Wrote) {
        self.counter.add(wrote);
        let now: Option<i64> = self.redis.get(counter_key(self.task)).await.unwrap();
        self.counter.assert_holds(now.unwrap_or(0));
    }
}

/// Rewrites groups (atomically, all three keys) until told to stop, so WATCHes abort.
async fn disturb(factory: Arc<RedisContextFactory>, stop: Arc<AtomicBool>) {
    let mut redis = factory.connection();
    for n in 0..200_000 {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let (task, group) = (fastrand::usize(0..TASKS), fastrand::usize(0..GROUPS));
        let value = token(task, group, "disturber", n);
        let mut pipe = redis::pipe();
        pipe.atomic();
        for key in group_keys(task, group) {
            pipe.set(key, &value).ignore();
        }
        pipe.exec_async(&mut redis).await.unwrap();
        tokio::time::sleep(Duration::from_micros(300)).await;
    }
}

/// Every group is all-old or all-new at every moment: read with MGET (atomic on the server).
fn assert_groups_whole(server: &RedisServer) {
    let mut admin = server.admin();
    for task in 0..TASKS {
        for group in 0..GROUPS {
            let keys = group_keys(task, group);
            let values: Vec<Option<String>> =
                redis::cmd("MGET").arg(&keys).query(&mut admin).unwrap();
            assert!(
                values.iter().all(|v| *v == values[0]),
                "group {task}/{group} half-applied: {values:?}"
            );
        }
    }
}

/// Runs the whole workload on `pool`; returns the tally.
async fn run_workload(server: &RedisServer, pool: Arc<dyn PoolBackend>) -> Arc<Tally> {
    let mut admin = server.admin();
    let mut seed = redis::pipe();
    for i in 0..PLAIN_KEYS {
        seed.set(plain_key(i), plain_value(i)).ignore();
    }
    seed.exec(&mut admin).unwrap();

    let factory = Arc::new(RedisContextFactory::new(pool));
    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let disturber = tokio::spawn(disturb(factory.clone(), stop.clone()));
    let checker = {
        let stop = stop.clone();
        let url = server.url(0);
        tokio::task::spawn_blocking(move || {
            let client = redis::Client::open(url).unwrap();
            let mut admin = client.get_connection().unwrap();
            let mut checks = 0;
            while !stop.load(Ordering::Relaxed) && checks < 100_000 {
                let (task, group) = (fastrand::usize(0..TASKS), fastrand::usize(0..GROUPS));
                let values: Vec<Option<String>> = redis::cmd("MGET")
                    .arg(&group_keys(task, group))
                    .query(&mut admin)
                    .unwrap();
                assert!(
                    values.iter().all(|v| *v == values[0]),
                    "group {task}/{group} half-applied: {values:?}"
                );
                checks += 1;
            }
            checks
        })
    };
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let (factory, tally) = (factory.clone(), tally.clone());
        tasks.push(tokio::spawn(async move {
            let mut worker = Worker {
                task,
                redis: factory.connection(),
                counter: Bounds::default(),
                tally,
            };
            worker.run(OPERATIONS_PER_TASK).await;
        }));
    }
    let all = async {
        for task in tasks {
            task.await.unwrap();
        }
    };
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(90), all)
        .await
        .unwrap();
    stop.store(true, Ordering::Relaxed);
    disturber.await.unwrap();
    let checks = checker.await.unwrap();
    assert_groups_whole(server);
    eprintln!(
        "{} operations in {:?}: {} cut by a timeout, {} dropped mid-flight, {} refused after a \
         cut, {} EXECs aborted by WATCH; {checks} group checks",
        tally.operations.load(Ordering::Relaxed),
        started.elapsed(),
        tally.timed_out.load(Ordering::Relaxed),
        tally.dropped.load(Ordering::Relaxed),
        tally.refused.load(Ordering::Relaxed),
        tally.watch_aborts.load(Ordering::Relaxed),
    );
    assert!(tally.cut() > 1_000, "only {} cut", tally.cut());
    assert!(tally.refused.load(Ordering::Relaxed) > 0);
    tally
}

/// A user's backend that keeps what is given back as `Release::Reuse` and hands it out
/// again, and records whether a connection with a command still unfinished came back as
/// anything but `Release::Discard`.
struct ReusingBackend {
    client: redis::Client,
    shared: tokio::sync::OnceCell<MultiplexedConnection>,
    idle: Arc<Mutex<Vec<MultiplexedConnection>>>,
    releases: Arc<Releases>,
    address: Arc<str>,
}

#[derive(Default)]
struct Releases {
    reused: AtomicU32,
    discarded: AtomicU32,
    /// Given back with a command that never completed.
    unfinished: AtomicU32,
    /// …and yet as `Release::Reuse`.
    unfinished_reused: AtomicU32,
    out: AtomicU32,
}

/// Counts the commands started and completed on one checked-out connection.
struct Tracked {
    conn: MultiplexedConnection,
    started: Arc<AtomicU64>,
    completed: Arc<AtomicU64>,
}

impl ConnectionLike for Tracked {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            self.started.fetch_add(1, Ordering::SeqCst);
            let reply = self.conn.req_packed_command(cmd).await;
            self.completed.fetch_add(1, Ordering::SeqCst);
            reply
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            self.started.fetch_add(1, Ordering::SeqCst);
            let reply = self.conn.req_packed_commands(pipeline, offset, count).await;
            self.completed.fetch_add(1, Ordering::SeqCst);
            reply
        })
    }

    fn get_db(&self) -> i64 {
        0
    }
}

impl ReusingBackend {
    fn new(server: &RedisServer) -> Self {
        ReusingBackend {
            client: redis::Client::open(server.url(0)).unwrap(),
            shared: tokio::sync::OnceCell::new(),
            idle: Arc::default(),
            releases: Arc::default(),
            address: Arc::from(format!("127.0.0.1:{}", server.port())),
        }
    }

    async fn connect(&self) -> baseplate_redis::Result<MultiplexedConnection> {
        let config = redis::AsyncConnectionConfig::new().set_response_timeout(None);
        Ok(self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?)
    }
}

impl fmt::Debug for ReusingBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReusingBackend").finish_non_exhaustive()
    }
}

#[async_trait]
impl PoolBackend for ReusingBackend {
    async fn shared(&self) -> baseplate_redis::Result<PooledConnection> {
        let conn = self.shared.get_or_try_init(|| self.connect()).await?;
        Ok(PooledConnection::new(conn.clone()))
    }

    async fn exclusive(&self) -> baseplate_redis::Result<PooledConnection> {
        let reused = self.idle.lock().unwrap().pop();
        let conn = match reused {
            Some(conn) => conn,
            None => self.connect().await?,
        };
        let (started, completed) = (Arc::<AtomicU64>::default(), Arc::<AtomicU64>::default());
        let tracked = Tracked {
            conn: conn.clone(),
            started: started.clone(),
            completed: completed.clone(),
        };
        let (idle, releases) = (self.idle.clone(), self.releases.clone());
        releases.out.fetch_add(1, Ordering::SeqCst);
        Ok(PooledConnection::with_release(tracked, move |release| {
            releases.out.fetch_sub(1, Ordering::SeqCst);
            let unfinished = started.load(Ordering::SeqCst) != completed.load(Ordering::SeqCst);
            if unfinished {
                releases.unfinished.fetch_add(1, Ordering::SeqCst);
            }
            match release {
                Release::Discard => {
                    releases.discarded.fetch_add(1, Ordering::SeqCst);
                }
                _ => {
                    if unfinished {
                        releases.unfinished_reused.fetch_add(1, Ordering::SeqCst);
                    }
                    releases.reused.fetch_add(1, Ordering::SeqCst);
                    idle.lock().unwrap().push(conn);
                }
            }
        }))
    }

    fn state(&self) -> PoolState {
        let out = self.releases.out.load(Ordering::SeqCst);
        PoolState::new(u32::MAX, out, out)
    }

    fn database(&self) -> i64 {
        0
    }

    fn address(&self) -> Arc<str> {
        self.address.clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn random_cancellations_on_reused_handles_with_a_reusing_custom_backend() {
    let server = RedisServer::start();
    let backend = Arc::new(ReusingBackend::new(&server));
    let releases = backend.releases.clone();
    run_workload(&server, backend).await;
    let count = |n: &AtomicU32| n.load(Ordering::SeqCst);
    eprintln!(
        "custom backend: {} given back for reuse, {} discarded, {} with a command unfinished",
        count(&releases.reused),
        count(&releases.discarded),
        count(&releases.unfinished),
    );
    assert_eq!(
        count(&releases.unfinished_reused),
        0,
        "unfinished but reused"
    );
    assert!(
        count(&releases.unfinished) > 100,
        "too few cut on exclusive connections"
    );
    assert!(
        count(&releases.reused) > 100,
        "clean connections are reused"
    );
    assert_eq!(count(&releases.out), 0, "every connection was given back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn random_cancellations_on_reused_handles_with_the_built_in_pool() {
    let server = RedisServer::start();
    let config = RawConfig::from_pairs([
        ("redis.url", server.url(0)),
        ("redis.max_connections", "24".to_string()),
        ("redis.pool_timeout", "10 seconds".to_string()),
        ("redis.socket_timeout", "5 seconds".to_string()),
    ]);
    let pool = pool_from_config(&config, "redis.").unwrap();
    run_workload(&server, pool.clone()).await;
    let state = pool.state();
    assert_eq!(state.in_use, 0, "{state:?}");
    assert!(state.open <= 24, "{state:?}");
}

// The reported cases, one by one.

fn builtin_factory(server: &RedisServer) -> RedisContextFactory {
    let config = RawConfig::from_pairs([("redis.url", server.url(0))]);
    RedisContextFactory::new(pool_from_config(&config, "redis.").unwrap())
}

/// Polls `fut` once (the request goes out) and drops it.
async fn drop_after_first_poll<F: Future>(fut: F) {
    let mut fut = pin!(fut);
    poll_fn(|cx| {
        assert!(fut.as_mut().poll(cx).is_pending(), "finished at once");
        Poll::Ready(())
    })
    .await;
}

#[tokio::test]
async fn a_transaction_dropped_in_its_body_leaves_no_watch_behind() {
    let server = RedisServer::start();
    let factory = builtin_factory(&server);
    let mut redis = factory.connection();
    let (entered, release) = (tokio::sync::Notify::new(), tokio::sync::Notify::new());
    let transaction = redis.transaction(&["balance"], async |_conn, pipe| {
        entered.notify_one();
        release.notified().await;
        pipe.set("balance", 1).ignore();
        pipe.query_async::<Option<()>>(_conn).await
    });
    tokio::select! {
        _ = transaction => panic!("the body never finishes"),
        _ = entered.notified() => {}
    }
    // The watched key changes; then an unrelated atomic pipeline on the same handle.
    let _: () = server.admin().set("balance", 100).unwrap();
    let mut pipe = redis.pipeline("unrelated");
    pipe.set("balance", 5).ignore().set("other", 6).ignore();
    pipe.exec_async(&mut redis).await.unwrap();
    let written: (i64, i64) = server.admin().mget(&["balance", "other"]).unwrap();
    assert_eq!(written, (5, 6), "Ok(()) but nothing written");
}

#[tokio::test]
async fn an_atomic_pipeline_is_never_nested_in_an_open_multi() {
    let server = RedisServer::start();
    let factory = builtin_factory(&server);
    let mut redis = factory.connection();
    redis::cmd("MULTI").exec_async(&mut redis).await.unwrap();
    let queued: Value = redis::cmd("SET")
        .arg("a")
        .arg(1)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(
        queued,
        Value::SimpleString("QUEUED".into()),
        "runs as written"
    );
    let mut pipe = redis.pipeline("group");
    pipe.set("b", 2).ignore().set("c", 3).ignore();
    let err = pipe.exec_async(&mut redis).await.unwrap_err();
    assert!(err.to_string().contains("MULTI open"), "{err}");
    let applied: Value = redis::cmd("EXEC").query_async(&mut redis).await.unwrap();
    assert_eq!(
        applied,
        Value::Array(vec![Value::Okay]),
        "only the caller's own SET"
    );
    let values: (Option<i64>, Option<i64>, Option<i64>) =
        server.admin().mget(&["a", "b", "c"]).unwrap();
    assert_eq!(values, (Some(1), None, None));
    // Once the MULTI is over, the same pipeline runs.
    pipe.exec_async(&mut redis).await.unwrap();
    let values: (i64, i64) = server.admin().mget(&["b", "c"]).unwrap();
    assert_eq!(values, (2, 3));
}

#[tokio::test]
async fn a_multi_whose_command_was_cut_is_refused_until_discard() {
    let server = RedisServer::start();
    let factory = builtin_factory(&server);
    let mut redis = factory.connection();
    redis::cmd("MULTI").exec_async(&mut redis).await.unwrap();
    drop_after_first_poll(redis::cmd("SET").arg("a").arg(1).exec_async(&mut redis)).await;
    // Whether the SET was queued is unknown: its connection is closed, and what follows
    // is refused rather than run outside the transaction.
    let err = redis.set::<_, _, ()>("b", 2).await.unwrap_err();
    assert!(err.to_string().contains("MULTI it had is lost"), "{err}");
    let nested = redis::cmd("MULTI").exec_async(&mut redis).await;
    assert!(nested.is_err(), "a MULTI in a lost MULTI is no success");
    let mut pipe = redis.pipeline("group");
    pipe.set("c", 3).ignore();
    assert!(pipe.exec_async(&mut redis).await.is_err());
    redis::cmd("DISCARD").exec_async(&mut redis).await.unwrap();
    let values: (Option<i64>, Option<i64>, Option<i64>) =
        server.admin().mget(&["a", "b", "c"]).unwrap();
    assert_eq!(
        values,
        (None, None, None),
        "nothing of the group was written"
    );
    // Clean again.
    let _: () = redis.set("b", 2).await.unwrap();
    let cleared: Option<i64> = redis.get("b").await.unwrap();
    assert_eq!(cleared, Some(2));
}

#[tokio::test]
async fn a_custom_backend_gets_discard_for_a_cancelled_blocking_command() {
    let server = RedisServer::start();
    let backend = Arc::new(ReusingBackend::new(&server));
    let releases = backend.releases.clone();
    let factory = RedisContextFactory::new(backend);
    let mut redis = factory.connection();
    let mut blpop = Box::pin(redis.blpop::<_, Option<(String, String)>>("jobs", 5.0));
    // Cancelled once the server has it blocked (not while it is still connecting: on a
    // loaded machine that can take longer than any fixed delay).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        tokio::select! {
            reply = &mut blpop => panic!("BLPOP returned before it was cancelled: {reply:?}"),
            _ = tokio::time::sleep(Duration::from_millis(10)) => {}
        }
        let info: String = server.query(&["INFO", "clients"]);
        if info.contains("blocked_clients:1") {
            break;
        }
        assert!(Instant::now() < deadline, "BLPOP never blocked: {info}");
    }
    drop(blpop);
    assert_eq!(releases.discarded.load(Ordering::SeqCst), 1);
    assert_eq!(releases.reused.load(Ordering::SeqCst), 0);
    // The abandoned BLPOP's socket is closed: nothing is left blocked on the server.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let info: String = server.query(&["INFO", "clients"]);
        if info.contains("blocked_clients:0") {
            break;
        }
        assert!(Instant::now() < deadline, "{info}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A custom backend hands out a shared connection on which someone left a WATCH: an EXEC
/// it aborts is an error, not `Ok(())` with nothing written.
#[tokio::test]
async fn an_exec_aborted_by_a_watch_this_handle_did_not_set_is_an_error() {
    let server = RedisServer::start();
    let backend = Arc::new(ReusingBackend::new(&server));
    let mut stale = backend.shared().await.unwrap();
    redis::cmd("WATCH")
        .arg("k")
        .exec_async(&mut stale)
        .await
        .unwrap();
    let _: () = server.admin().set("k", "changed").unwrap();
    let factory = RedisContextFactory::new(backend);
    let mut redis = factory.connection();
    let mut pipe = redis.pipeline("write");
    pipe.set("k", "mine").ignore();
    let err = pipe.exec_async(&mut redis).await.unwrap_err();
    assert!(err.to_string().contains("set no WATCH"), "{err}");
}

/// A `transaction()` that failed (here: its WATCH found no free connection) leaves no WATCH,
/// lost or real, behind: the handle works as before.
#[tokio::test]
async fn a_failed_transaction_leaves_the_handle_clean() {
    let server = RedisServer::start();
    let config = RawConfig::from_pairs([
        ("redis.url", server.url(0)),
        ("redis.max_connections", "2".to_string()),
        ("redis.pool_timeout", "200 milliseconds".to_string()),
    ]);
    let factory = RedisContextFactory::new(pool_from_config(&config, "redis.").unwrap());
    let mut redis = factory.connection();
    let _: () = redis.set("k", 1).await.unwrap();
    // The shared connection and one exclusive one: the pool is full.
    let mut holder = factory.connection();
    redis::cmd("WATCH")
        .arg("x")
        .exec_async(&mut holder)
        .await
        .unwrap();
    let failed = redis
        .transaction(&["k"], async |conn, pipe| {
            pipe.incr("k", 1).ignore();
            pipe.query_async::<Option<()>>(conn).await
        })
        .await
        .unwrap_err();
    assert!(failed.is_timeout(), "{failed}");
    drop(holder);
    let value: i64 = redis.get("k").await.unwrap();
    assert_eq!(value, 1);
    let (value,): (i64,) = redis
        .transaction(&["k"], async |conn, pipe| {
            pipe.incr("k", 1);
            pipe.query_async(conn).await
        })
        .await
        .unwrap();
    assert_eq!(value, 2);
}

/// Polls `fut` up to `polls` times (yielding in between) and drops it unless it finished.
async fn cut_after_polls<F: Future>(fut: F, polls: usize) -> Option<F::Output> {
    let mut fut = pin!(fut);
    for _ in 0..polls {
        if let Poll::Ready(output) = poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await {
            return Some(output);
        }
        tokio::task::yield_now().await;
    }
    None
}

/// A hand-written WATCH k / GET k / MULTI / SET k / EXEC, one call each, cut at each step
/// after 1–3 polls, then carried on as written by a caller who does not notice: when another
/// client changed `k` after the WATCH, `k` is never overwritten (every step after a cut is
/// refused, never run without its WATCH or MULTI). Afterwards DISCARD and UNWATCH, and the
/// handle runs commands, an atomic pipeline and `transaction()` as written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_written_watch_transaction_cut_at_each_step_never_writes_past_its_watch() {
    let server = RedisServer::start();
    let factory = builtin_factory(&server);
    let steps: [&[&str]; 5] = [
        &["WATCH", "k"],
        &["GET", "k"],
        &["MULTI"],
        &["SET", "k", "mine"],
        &["EXEC"],
    ];
    for disturbed in [true, false] {
        for cut_step in 0..steps.len() {
            for polls in 1..4 {
                let _: () = server.admin().set("k", "old").unwrap();
                let mut redis = factory.connection();
                let mut log = Vec::new();
                for (i, step) in steps.iter().enumerate() {
                    let mut cmd = redis::cmd(step[0]);
                    cmd.arg(&step[1..]);
                    let reply = cmd.query_async::<Value>(&mut redis);
                    let outcome = if i == cut_step {
                        cut_after_polls(reply, polls).await
                    } else {
                        Some(reply.await)
                    };
                    log.push(format!("{}: {outcome:?}", step[0]));
                    if i == 0 && disturbed {
                        let _: () = server.admin().set("k", "other").unwrap();
                    }
                }
                let k: String = server.admin().get("k").unwrap();
                if disturbed {
                    assert_eq!(k, "other", "cut at {cut_step} after {polls} polls: {log:?}");
                } else {
                    assert!(k == "old" || k == "mine", "{k}: {log:?}");
                }
                let _ = redis::cmd("DISCARD").exec_async(&mut redis).await;
                let _ = redis::cmd("UNWATCH").exec_async(&mut redis).await;
                let _: () = redis.set("n", 1).await.unwrap();
                let mut pipe = redis.pipeline("after");
                pipe.incr("n", 1);
                let (n,): (i64,) = pipe
                    .query_async(&mut redis)
                    .await
                    .unwrap_or_else(|err| panic!("{log:?}: {err}"));
                assert_eq!(n, 2);
                let (n,): (i64,) = redis
                    .transaction(&["n"], async |conn, pipe| {
                        pipe.incr("n", 1);
                        pipe.query_async(conn).await
                    })
                    .await
                    .unwrap();
                assert_eq!(n, 3);
            }
        }
    }
}
