//! The real pool: up to `max_connections` multiplexed connections to one Redis server,
//! managed by `mobc`.
//!
//! One pooled connection at a time is leased as the *shared* connection: ordinary commands
//! of every caller are multiplexed over it (as fast as a raw `redis-rs` multiplexed
//! connection). The others are checked out *exclusively*, one caller each, for blocking
//! commands and WATCH transactions. A connection that failed unrecoverably, timed out or was
//! cancelled mid-command is closed rather than reused, and the next caller opens a fresh
//! one, which is how the pool recovers by itself after a server restart. Once a connection
//! was found broken, idle ones not verified since are PINGed before they are handed out, so
//! a restart costs one failed command rather than one per open socket. A shared connection
//! that stops answering after a timeout (half-open, stalled) is retired by its probe (see
//! `guarded`) and closed at once, giving its slot to its replacement.
//!
//! Fairness: exclusive checkouts are limited to `max_connections - 1` by a FIFO semaphore, so
//! the shared connection always has its slot and ordinary commands never wait behind
//! blocking ones. Every wait of a caller (for a slot, for the connection being opened by
//! another caller, for its own connect) is under one deadline, `pool_timeout` from the call;
//! when it passes the error says whether the slots were all in use or a connect or handshake
//! never completed.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use async_trait::async_trait;
use redis::aio::MultiplexedConnection;
use redis::ConnectionInfo;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant as Deadline;

use super::dial::{tcp_settings, Dialer, DriverGuard, Opened};
use super::guarded::{GuardedConnection, Poison, Sharing};
use super::in_flight::InFlightCount;
use super::{CloseReason, ConnectionLifecycle};
use super::{PoolBackend, PoolOptions, PoolState, PooledConnection, Release};
use crate::telemetry::ErrorClass;
use crate::{Error, Result};

/// A Redis connection pool on `mobc`. Built by [`pool_from_config`](crate::pool_from_config)
/// for `redis://`, `rediss://` and `unix://` URLs, or directly with [`MobcBackend::new`].
///
/// Making the backend opens no connection; the first command does.
pub struct MobcBackend {
    pool: mobc::Pool<Manager>,
    shared: Arc<ArcSwapOption<SharedLease>>,
    // Only one caller opens the shared connection; the others wait for it.
    opening_shared: tokio::sync::Mutex<()>,
    // Exclusive checkouts: `max_connections - 1` of them, so the shared connection always
    // has its slot; waiters are served first come, first served.
    exclusive_slots: Arc<Semaphore>,
    counts: Arc<Counts>,
    options: PoolOptions,
    address: Arc<str>,
    db: i64,
    // Behind sentinels: asked now and then whether the primary moved; a READONLY reply
    // also means the server was demoted, so its connections are closed and the next ones go
    // to the new primary.
    sentinels: Option<Arc<super::sentinel::PrimaryResolver>>,
    lifecycle: Arc<ConnectionLifecycle>,
    // Opens Pub/Sub subscribers' connections, which mobc does not make.
    opener: Arc<Opener>,
}

#[derive(Debug, Default)]
struct Counts {
    open: AtomicU32,
    // Connects and handshakes under way, and when one was last abandoned unfinished (its
    // caller's deadline passed): a caller whose deadline passes while one is under way, or
    // after one was abandoned during its wait, is told that a connect did not complete, not
    // that the pool was full.
    connecting: AtomicU32,
    connect_abandoned: Mutex<Option<Instant>>,
    exclusive_in_use: AtomicU32,
    shared_in_flight: Arc<InFlightCount>,
    // When a connection was last found broken: idle connections not verified since then
    // (e.g. all of them, after a server restart) are checked before they are handed out.
    last_break: Mutex<Option<Instant>>,
    // Set when the backend is dropped: the connections closed from then on close for that.
    shutting_down: AtomicBool,
}

impl Counts {
    fn note_break(&self) {
        *self.last_break.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
    }

    /// Whether a connection last verified at `verified_at` may have died since.
    fn suspect(&self, verified_at: Instant) -> bool {
        let last_break = *self.last_break.lock().unwrap_or_else(|e| e.into_inner());
        last_break.is_some_and(|broke| verified_at <= broke)
    }
}

/// One pooled socket, as mobc holds it.
struct Managed {
    conn: MultiplexedConnection,
    poison: Poison,
    // When the connection last answered (opened, or passed a health check).
    verified_at: Instant,
    open: OpenGuard,
    _driver: DriverGuard,
}

/// Counts a connect under way, until it completes or its caller gives up (then noted as
/// abandoned).
struct ConnectingGuard<'a> {
    counts: &'a Counts,
    finished: bool,
}

impl<'a> ConnectingGuard<'a> {
    fn enter(counts: &'a Counts) -> Self {
        counts.connecting.fetch_add(1, Ordering::Relaxed);
        ConnectingGuard {
            counts,
            finished: false,
        }
    }
}

impl Drop for ConnectingGuard<'_> {
    fn drop(&mut self) {
        if !self.finished {
            let mut abandoned = self
                .counts
                .connect_abandoned
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            *abandoned = Some(Instant::now());
        }
        self.counts.connecting.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Counts {
    /// Whether a connect was under way, or was abandoned unfinished, since `since`.
    fn connect_stalled_since(&self, since: Instant) -> bool {
        self.connecting.load(Ordering::Relaxed) > 0
            || self
                .connect_abandoned
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_some_and(|at| at >= since)
    }
}

/// Counts open sockets: one per `Managed`, released when mobc drops it, and reports why it
/// closed (idle, unless whoever closed it said otherwise).
struct OpenGuard {
    counts: Arc<Counts>,
    lifecycle: Arc<ConnectionLifecycle>,
    reason: CloseReason,
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.counts.open.fetch_sub(1, Ordering::Relaxed);
        let reason = if self.counts.shutting_down.load(Ordering::Acquire) {
            CloseReason::Shutdown
        } else {
            self.reason
        };
        self.lifecycle.closed(reason);
    }
}

/// Where the pool's connections go: one fixed server, or wherever the sentinels say the
/// primary is now.
pub(crate) enum Target {
    Fixed(Box<redis::Client>),
    Sentinel(Arc<super::sentinel::PrimaryResolver>),
}

struct Manager {
    opener: Arc<Opener>,
    counts: Arc<Counts>,
    lifecycle: Arc<ConnectionLifecycle>,
}

/// How connections are opened: the pool's (by mobc), and its subscribers' (by the backend).
struct Opener {
    target: Target,
    dialer: Dialer,
    probe_timeout: Duration,
    address: Arc<str>,
}

/// The pooled connection currently used by everyone for ordinary commands. Handles hold it
/// (through an `Arc`) while they use it, so its socket stays counted until the last one is
/// done; then it goes back to the pool, or is closed if it was poisoned. A connection found
/// broken is closed at once instead (see [`SharedLease::close_if_broken`]).
struct SharedLease {
    lease: Mutex<Option<mobc::Connection<Manager>>>,
    conn: MultiplexedConnection,
    poison: Poison,
}

impl SharedLease {
    /// Closes a broken connection now and frees its slot for the next one, even while
    /// handles still hold it (their next command fails or moves to the new connection).
    fn close_if_broken(&self) {
        if self.poison.is_broken() {
            let lease = self.lease.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(lease) = lease {
                give_back(lease, self.poison.reason());
            }
        }
    }
}

impl Drop for SharedLease {
    fn drop(&mut self) {
        let lease = self
            .lease
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(lease) = lease {
            give_back(lease, self.poison.reason());
        }
    }
}

/// Gives a connection back to mobc for reuse, or closes it for `close`.
fn give_back(lease: mobc::Connection<Manager>, close: Option<CloseReason>) {
    if let Some(reason) = close {
        // Taking the raw connection out of mobc closes it and frees its slot.
        let mut managed = lease.into_inner();
        managed.open.reason = reason;
        drop(managed);
    } else {
        drop(lease);
    }
}

impl Opener {
    /// Opens a connection to the target; behind sentinels, asking them (within the connect
    /// timeout) where the primary is first. With `pushes`, a RESP3 connection whose server
    /// pushes go there (a subscriber's).
    async fn open(&self, pushes: Option<super::PushSender>) -> Result<(Opened, Poison)> {
        let (client, poison) = match &self.target {
            Target::Fixed(client) => ((**client).clone(), Poison::default()),
            Target::Sentinel(resolver) => {
                let asked = tokio::time::timeout(self.dialer.connect_timeout(), resolver.primary());
                let (client, epoch) = asked
                    .await
                    .map_err(|_| self.dialer.timed_out(self.dialer.connect_timeout()))?
                    .map_err(|e| self.dialer.failed(e))?;
                (client, Poison::following(resolver.epoch(), epoch))
            }
        };
        let opened = match pushes {
            None => self.dialer.open(&client).await?,
            Some(pushes) => self.dialer.open_with_pushes(&client, pushes).await?,
        };
        Ok((opened, poison))
    }
}

#[async_trait]
impl mobc::Manager for Manager {
    type Connection = Managed;
    type Error = Error;

    async fn connect(&self) -> Result<Managed> {
        let mut connecting = ConnectingGuard::enter(&self.counts);
        let started = Instant::now();
        let opened = self.opener.open(None).await;
        // Failed or not, it completed: only a connect cut off by its caller is abandoned.
        connecting.finished = true;
        let (opened, poison) = opened.inspect_err(|err| {
            self.lifecycle.connect_failed(ErrorClass::of_error(err));
        })?;
        self.lifecycle.opened(started.elapsed());
        if let Some(driver) = opened.driver.handle() {
            poison.attach_driver(driver.clone());
        }
        self.counts.open.fetch_add(1, Ordering::Relaxed);
        Ok(Managed {
            conn: opened.conn,
            poison,
            verified_at: Instant::now(),
            open: OpenGuard {
                counts: self.counts.clone(),
                lifecycle: self.lifecycle.clone(),
                reason: CloseReason::Idle,
            },
            _driver: opened.driver,
        })
    }

    /// An idle connection is checked (at most every health-check interval) before reuse:
    /// `UNWATCH` then `PING` with a unique payload, which must come back unchanged.
    async fn check(&self, mut managed: Managed) -> Result<Managed> {
        let opener = &self.opener;
        if let Err(err) = health_check(&mut managed, opener.probe_timeout, &opener.address).await {
            managed.open.reason = CloseReason::HalfOpen;
            return Err(err);
        }
        Ok(managed)
    }

    fn validate(&self, managed: &mut Managed) -> bool {
        match managed.poison.reason() {
            Some(reason) => {
                managed.open.reason = reason;
                false
            }
            None => true,
        }
    }
}

/// `UNWATCH` then `PING` with a unique payload, which must come back unchanged in time.
async fn health_check(managed: &mut Managed, limit: Duration, address: &str) -> Result<()> {
    let broken = |what: &'static str| Error::Connect {
        address: address.to_string(),
        source: redis::RedisError::from((redis::ErrorKind::Io, what)),
    };
    let payload = format!("baseplate-redis-check-{}", fastrand::u64(..));
    let conn = &mut managed.conn;
    let check = async {
        redis::cmd("UNWATCH").exec_async(&mut *conn).await?;
        redis::cmd("PING")
            .arg(&payload)
            .query_async::<String>(&mut *conn)
            .await
    };
    match tokio::time::timeout(limit, check).await {
        Ok(Ok(echo)) if echo == payload => {
            managed.verified_at = Instant::now();
            Ok(())
        }
        Ok(Ok(_)) => Err(broken("health check PING echoed a different payload")),
        Ok(Err(source)) => Err(Error::Connect {
            address: address.to_string(),
            source,
        }),
        Err(_) => Err(broken("health check timed out")),
    }
}

impl MobcBackend {
    /// A pool of connections to the server `info` names.
    ///
    /// `address` is how errors and spans name the server; it must not contain a password
    /// (see [`RedisUrl::address`](crate::config::RedisUrl::address)). For `rediss://`,
    /// `options.tls` gives the CA (and client) certificates; without it the system's root
    /// CAs are trusted.
    pub fn new(info: ConnectionInfo, address: &str, options: PoolOptions) -> Result<Self> {
        let db = info.redis_settings().db();
        if matches!(info.addr(), redis::ConnectionAddr::TcpTls { .. }) {
            // redis-rs asks rustls for the process's crypto provider, and panics when several
            // are compiled in and none was chosen: choose ring unless the application did.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        // Used where redis-rs opens the socket itself (`rediss://`); we open the others.
        let info = info.set_tcp_settings(tcp_settings(&options));
        let client = match &options.tls {
            Some(tls) => redis::Client::build_with_tls(info, tls.to_redis()),
            None => redis::Client::open(info),
        }
        .map_err(|source| Error::Connect {
            address: address.to_string(),
            source,
        })?;
        Ok(Self::with_target(
            Target::Fixed(Box::new(client)),
            db,
            address,
            options,
        ))
    }

    /// A pool whose connections go where `target` says, at the time each one is opened.
    pub(crate) fn with_target(
        target: Target,
        db: i64,
        address: &str,
        options: PoolOptions,
    ) -> Self {
        let address: Arc<str> = Arc::from(address);
        let sentinels = match &target {
            Target::Sentinel(resolver) => Some(resolver.clone()),
            Target::Fixed(_) => None,
        };
        let counts = Arc::new(Counts::default());
        let lifecycle = options.lifecycle_or_disabled();
        let opener = Arc::new(Opener {
            target,
            dialer: Dialer::new(&options, address.clone()),
            probe_timeout: options.probe_timeout(),
            address: address.clone(),
        });
        let manager = Manager {
            opener: opener.clone(),
            counts: counts.clone(),
            lifecycle: lifecycle.clone(),
        };
        let max = options.max_connections.max(1);
        let pool = mobc::Pool::builder()
            .max_open(u64::from(max))
            // mobc's default keeps only 2 idle and reopens the rest under load.
            .max_idle(u64::from(max))
            .test_on_check_out(options.health_check_interval.is_some())
            .health_check_interval(options.health_check_interval)
            // Callers wait under their own deadline (see `until`), not mobc's.
            .get_timeout(None)
            .build(manager);
        // With a single connection there is no slot to reserve: exclusive checkouts wait
        // for the shared connection to be given back.
        let exclusive = if max >= 2 { max - 1 } else { 1 };
        MobcBackend {
            pool,
            shared: Arc::new(ArcSwapOption::empty()),
            opening_shared: tokio::sync::Mutex::new(()),
            exclusive_slots: Arc::new(Semaphore::new(exclusive as usize)),
            counts,
            options,
            address,
            db,
            sentinels,
            lifecycle,
            opener,
        }
    }

    /// A connection from the pool. After a connection was found broken (a server restart
    /// kills them all, a partition leaves them half-open), idle ones not verified since are
    /// checked first, and the dead ones closed, so each dead socket costs at most the one
    /// command that discovered it.
    async fn checkout(&self) -> Result<mobc::Connection<Manager>> {
        // Bounded: every failed check closes one of at most `max_connections` sockets, and
        // all the checks of one checkout together take at most one probe timeout; suspects
        // met after that are closed unchecked (a new connection is cheaper than a wait).
        let checks_until = Instant::now() + self.options.probe_timeout();
        for _ in 0..self.options.max_connections.clamp(1, 64) {
            let mut lease = self.checkout_once().await?;
            if !self.counts.suspect(lease.verified_at) {
                return Ok(lease);
            }
            let left = checks_until.saturating_duration_since(Instant::now());
            if !left.is_zero() && health_check(&mut lease, left, &self.address).await.is_ok() {
                return Ok(lease);
            }
            // Dead, or unchecked for lack of time and closed as its pool-mates were found dead.
            give_back(lease, Some(CloseReason::HalfOpen));
        }
        self.checkout_once().await
    }

    async fn checkout_once(&self) -> Result<mobc::Connection<Manager>> {
        self.pool.get().await.map_err(|err| match err {
            mobc::Error::Inner(err) => err,
            mobc::Error::Timeout => Error::PoolTimeout {
                address: self.address.to_string(),
                waited: self.options.pool_timeout,
                max_connections: self.options.max_connections,
            },
            mobc::Error::BadConn => Error::Connect {
                address: self.address.to_string(),
                source: redis::RedisError::from((
                    redis::ErrorKind::Io,
                    "no healthy connection after retries",
                )),
            },
            mobc::Error::PoolClosed => Error::Connect {
                address: self.address.to_string(),
                source: redis::RedisError::from((redis::ErrorKind::Io, "pool closed")),
            },
        })
    }

    /// An exclusive slot and a pooled connection for it, first come first served (the shared
    /// connection's slot is never taken), both within one `pool_timeout` from now.
    async fn exclusive_lease(&self) -> Result<(OwnedSemaphorePermit, mobc::Connection<Manager>)> {
        if let Some(sentinels) = &self.sentinels {
            sentinels.check_if_due();
        }
        let deadline = Deadline::now() + self.options.pool_timeout;
        self.waiting(async {
            let slot: OwnedSemaphorePermit =
                tokio::time::timeout_at(deadline, self.exclusive_slots.clone().acquire_owned())
                    .await
                    .map_err(|_| self.exhausted())?
                    .map_err(|_| self.exhausted())?;
            let lease = self.until(deadline, self.checkout_trusted()).await?;
            Ok((slot, lease))
        })
        .await
    }

    /// A checkout that skips (and closes) idle connections that can no longer be trusted,
    /// such as those to a server that is no longer the primary.
    async fn checkout_trusted(&self) -> Result<mobc::Connection<Manager>> {
        let mut lease = self.checkout().await?;
        for _ in 0..self.options.max_connections {
            let Some(reason) = lease.poison.reason() else {
                break;
            };
            give_back(lease, Some(reason));
            lease = self.checkout().await?;
        }
        Ok(lease)
    }

    fn current_shared(&self) -> Option<Arc<SharedLease>> {
        self.shared
            .load_full()
            .filter(|lease| !lease.poison.is_set())
    }

    async fn shared_lease(&self) -> Result<Arc<SharedLease>> {
        if let Some(lease) = self.current_shared() {
            return Ok(lease);
        }
        let deadline = Deadline::now() + self.options.pool_timeout;
        self.waiting(self.until(deadline, async {
            let _opening = self.opening_shared.lock().await;
            if let Some(lease) = self.current_shared() {
                return Ok(lease);
            }
            // A broken predecessor gives its slot back before the new one takes one.
            if let Some(old) = self.shared.load_full() {
                old.close_if_broken();
            }
            let lease = self.checkout_trusted().await?;
            let shared = Arc::new(SharedLease {
                conn: lease.conn.clone(),
                poison: lease.poison.clone(),
                lease: Mutex::new(Some(lease)),
            });
            self.shared.store(Some(shared.clone()));
            Ok(shared)
        }))
        .await
    }

    /// Runs a caller's wait for a connection, counted as pending meanwhile and timed.
    async fn waiting<T>(&self, wait: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        let pending = self.lifecycle.wait_started();
        let started = Instant::now();
        let got = wait.await;
        drop(pending);
        if got.is_ok() {
            self.lifecycle.waited(started.elapsed());
        }
        got
    }

    /// Runs `wait` until the caller's `deadline`; past it, the error says what the caller
    /// was waiting for.
    async fn until<T>(
        &self,
        deadline: Deadline,
        wait: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        let since = (deadline - self.options.pool_timeout).into_std();
        match tokio::time::timeout_at(deadline, wait).await {
            Ok(result) => result,
            Err(_) if self.counts.connect_stalled_since(since) => Err(Error::ConnectTimeout {
                address: self.address.to_string(),
                timeout: self.options.pool_timeout,
            }),
            Err(_) => Err(self.exhausted()),
        }
    }

    /// Every slot stayed in use for the caller's whole wait: the caller gives up.
    fn exhausted(&self) -> Error {
        self.lifecycle.pool_timed_out();
        Error::PoolTimeout {
            address: self.address.to_string(),
            waited: self.options.pool_timeout,
            max_connections: self.options.max_connections,
        }
    }

    fn guarded(
        &self,
        conn: MultiplexedConnection,
        poison: Poison,
        sharing: Sharing,
    ) -> GuardedConnection {
        GuardedConnection {
            conn,
            socket_timeout: self.options.socket_timeout,
            probe_timeout: self.options.probe_timeout(),
            poison,
            sharing,
            poison_on_readonly: self.sentinels.is_some(),
        }
    }
}

#[async_trait]
impl PoolBackend for MobcBackend {
    async fn shared(&self) -> Result<PooledConnection> {
        if let Some(sentinels) = &self.sentinels {
            sentinels.check_if_due();
        }
        let lease = self.shared_lease().await?;
        let conn = self.guarded(
            lease.conn.clone(),
            lease.poison.clone(),
            Sharing::Shared(self.counts.shared_in_flight.clone()),
        );
        let slot = self.shared.clone();
        let counts = self.counts.clone();
        let stale = {
            let poison = lease.poison.clone();
            let sentinels = self.sentinels.clone();
            move || {
                if let Some(sentinels) = &sentinels {
                    sentinels.check_if_due();
                }
                poison.is_set()
            }
        };
        Ok(PooledConnection::guarded(conn, move |release| {
            // A connection the handle gave up because it went stale keeps the reason why.
            if release == Release::Discard && !lease.poison.is_set() {
                lease.poison.set(CloseReason::Discarded);
            }
            if lease.poison.is_set() {
                // Stop handing it out; it closes when its last user is done.
                let was = slot.compare_and_swap(&Some(lease.clone()), None);
                let removed_now = was.as_ref().is_some_and(|was| Arc::ptr_eq(was, &lease));
                if removed_now && lease.poison.is_broken() {
                    counts.note_break();
                }
                lease.close_if_broken();
            }
            drop(lease);
        })
        .with_stale_check(stale))
    }

    async fn exclusive(&self) -> Result<PooledConnection> {
        let (slot, lease) = self.exclusive_lease().await?;
        self.counts.exclusive_in_use.fetch_add(1, Ordering::Relaxed);
        let conn = self.guarded(lease.conn.clone(), lease.poison.clone(), Sharing::Exclusive);
        let counts = self.counts.clone();
        Ok(PooledConnection::guarded(conn, move |release| {
            counts.exclusive_in_use.fetch_sub(1, Ordering::Relaxed);
            let discarded = (release == Release::Discard).then_some(CloseReason::Discarded);
            let close = lease.poison.reason().or(discarded);
            if lease.poison.is_broken() {
                counts.note_break();
            }
            give_back(lease, close);
            drop(slot);
        }))
    }

    /// Takes an exclusive slot and a connection of the pool (waiting, bounded, as
    /// [`exclusive`](Self::exclusive)) and puts the subscriber's RESP3 connection in the
    /// pooled one's place: the slot stays counted while the subscriber lives, and its socket
    /// is closed, never reused, when it is dropped.
    async fn subscriber(&self, pushes: super::PushSender) -> Result<PooledConnection> {
        if self.options.max_connections < 2 {
            // The one connection must stay for commands.
            return Err(Error::TooManySubscribers {
                address: self.address.to_string(),
                subscribers: 0,
                max_connections: self.options.max_connections,
            });
        }
        let (slot, mut lease) = self.exclusive_lease().await?;
        let (opened, poison) = self.opener.open(Some(pushes)).await?;
        if let Some(driver) = opened.driver.handle() {
            poison.attach_driver(driver.clone());
        }
        // The pooled socket closes with its driver; the slot is the subscriber's.
        lease.conn = opened.conn.clone();
        lease._driver = opened.driver;
        lease.poison = poison.clone();
        self.counts.exclusive_in_use.fetch_add(1, Ordering::Relaxed);
        let conn = super::subscriber_connection::SubscriberConnection {
            conn: super::subscriber_connection::Link::Single(opened.conn),
            socket_timeout: self.options.socket_timeout,
            address: self.address.clone(),
        };
        let counts = self.counts.clone();
        let sentinels = self.sentinels.clone();
        let release = move |_| {
            counts.exclusive_in_use.fetch_sub(1, Ordering::Relaxed);
            // A subscriber's socket is never reused for commands.
            give_back(lease, Some(CloseReason::Discarded));
            drop(slot);
        };
        let stale = move || {
            if let Some(sentinels) = &sentinels {
                sentinels.check_if_due();
            }
            poison.is_set()
        };
        Ok(PooledConnection::with_release(conn, release).with_stale_check(stale))
    }

    fn state(&self) -> PoolState {
        let shared_busy = u32::from(self.counts.shared_in_flight.total() > 0);
        PoolState::new(
            self.options.max_connections,
            self.counts.open.load(Ordering::Relaxed),
            self.counts.exclusive_in_use.load(Ordering::Relaxed) + shared_busy,
        )
    }

    fn database(&self) -> i64 {
        self.db
    }

    fn address(&self) -> Arc<str> {
        self.address.clone()
    }
}

impl Drop for MobcBackend {
    fn drop(&mut self) {
        self.counts.shutting_down.store(true, Ordering::Release);
    }
}

impl fmt::Debug for MobcBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MobcBackend")
            .field("address", &self.address)
            .field("db", &self.db)
            .field("options", &self.options)
            .field("state", &self.state())
            .finish()
    }
}
