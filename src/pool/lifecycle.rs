//! Connection lifecycle telemetry: what the pool's connections did (opened, closed and why,
//! how long connecting and waiting took, reconnects, redirects, failovers).
//!
//! A backend holds one [`ConnectionLifecycle`] and calls it as things happen; it resolves
//! its metric handles once, so each event costs an atomic operation or two. Without a sink
//! ([`ConnectionLifecycle::disabled`]) every event is a no-op.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::sink::{key, names, Counter, Gauge, Histogram, Key, MetricsSink, NoopSink};
use crate::telemetry::{ErrorClass, MetricNaming, PerErrorClass};

/// Why a connection was closed: the `reason` label of
/// [`CONNECTIONS_CLOSED_TOTAL`](names::CONNECTIONS_CLOSED_TOTAL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseReason {
    /// Idle too long or past its lifetime: closed by the pool itself.
    Idle,
    /// The socket failed (garbled reply, unrecoverable error).
    Error,
    /// A command on it timed out or was cancelled, so a late reply may still come.
    Timeout,
    /// It failed the health check before reuse: the server side was gone.
    HalfOpen,
    /// The server closed it (EOF, connection reset).
    ServerClosed,
    /// The pool was shut down.
    Shutdown,
    /// Its server is no longer the primary (a sentinel failover, a READONLY reply).
    Failover,
    /// A caller changed its state (SELECT, CLIENT SETNAME…) and gave it back for closing.
    Discarded,
}

impl CloseReason {
    /// Every reason, in the order of [`names::CLOSE_REASONS`].
    pub const ALL: [CloseReason; 8] = [
        CloseReason::Idle,
        CloseReason::Error,
        CloseReason::Timeout,
        CloseReason::HalfOpen,
        CloseReason::ServerClosed,
        CloseReason::Shutdown,
        CloseReason::Failover,
        CloseReason::Discarded,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        names::CLOSE_REASONS[self.index()]
    }

    /// Whether the connection was lost to a failure, so opening the next one is a
    /// reconnect.
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            CloseReason::Error
                | CloseReason::Timeout
                | CloseReason::HalfOpen
                | CloseReason::ServerClosed
                | CloseReason::Failover
        )
    }

    fn index(self) -> usize {
        self as usize
    }

    /// The reason stored as `code` by [`code`](Self::code); `None` for 0.
    pub(crate) fn from_code(code: u8) -> Option<Self> {
        Self::ALL.get(usize::from(code).checked_sub(1)?).copied()
    }

    /// A non-zero code for this reason, for atomics that keep 0 for "none".
    pub(crate) fn code(self) -> u8 {
        self as u8 + 1
    }
}

/// Whether a MOVED or an ASK redirect was followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Redirect {
    /// The slot moved for good.
    Moved,
    /// The slot is being migrated: ask the other node this once.
    Ask,
}

/// The lifecycle metrics of one pool, under the names its [`MetricNaming`] asks for
/// (baseplate-style names from [`names`], the OpenTelemetry `db.client.connection.*`
/// ones, or both), labelled with the pool's (client's) name.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use baseplate_redis::pool::{CloseReason, ConnectionLifecycle};
/// use baseplate_redis::sink::{names, RecordingSink};
/// use baseplate_redis::telemetry::MetricNaming;
///
/// let sink = RecordingSink::new();
/// let lifecycle = ConnectionLifecycle::new(Arc::new(sink.clone()), "foo", MetricNaming::Baseplate);
/// lifecycle.opened(Duration::from_millis(2));
/// lifecycle.closed(CloseReason::ServerClosed);
/// lifecycle.opened(Duration::from_millis(3));
///
/// let pool = [(names::LABEL_POOL, "foo")];
/// assert_eq!(sink.counter_value(names::CONNECTIONS_OPENED_TOTAL, &pool), 2);
/// assert_eq!(sink.counter_value(names::RECONNECTS_TOTAL, &pool), 1);
/// let closed = [(names::LABEL_POOL, "foo"), (names::LABEL_REASON, "server_closed")];
/// assert_eq!(sink.counter_value(names::CONNECTIONS_CLOSED_TOTAL, &closed), 1);
/// ```
///
/// Each handle is resolved when first needed, so a pool that never waits, fails or
/// reconnects exports no such series (and a mock sink is asked for nothing it did not see).
pub struct ConnectionLifecycle {
    // Baseplate-style names go here (nowhere when only OpenTelemetry names are asked for).
    sink: Arc<dyn MetricsSink>,
    // The `db.client.connection.*` names go here, when asked for.
    otel_sink: Option<Arc<dyn MetricsSink>>,
    pool: String,
    naming: MetricNaming,
    handles: Handles,
    closed: [OnceLock<Counter>; CloseReason::ALL.len()],
    // Connections lost to failures and not yet replaced: the next opens are reconnects.
    lost: AtomicU64,
    failures: PerErrorClass<Counter>,
    redirects: [OnceLock<Counter>; 2],
}

/// The handles labelled with the pool's name alone, made on first use.
#[derive(Default)]
struct Handles {
    opened: OnceLock<Counter>,
    connect_duration: OnceLock<Histogram>,
    reconnects: OnceLock<Counter>,
    wait: OnceLock<Histogram>,
    timeouts: OnceLock<Counter>,
    pending: OnceLock<Gauge>,
    refreshes: OnceLock<Counter>,
    failovers: OnceLock<Counter>,
    otel_create_time: OnceLock<Histogram>,
    otel_wait_time: OnceLock<Histogram>,
    otel_timeouts: OnceLock<Counter>,
    otel_pending: OnceLock<Gauge>,
}

type Make<H> = fn(&dyn MetricsSink, &Key) -> H;
const COUNTER: Make<Counter> = |sink, key| sink.counter(key);
const GAUGE: Make<Gauge> = |sink, key| sink.gauge(key);
const HISTOGRAM: Make<Histogram> = |sink, key| sink.histogram(key);

impl ConnectionLifecycle {
    /// Lifecycle metrics of the pool `pool` (the client's context name) reported to `sink`.
    pub fn new(sink: Arc<dyn MetricsSink>, pool: &str, naming: MetricNaming) -> Self {
        let otel_sink = naming.opentelemetry().then(|| sink.clone());
        let sink: Arc<dyn MetricsSink> = if naming.baseplate() {
            sink
        } else {
            Arc::new(NoopSink)
        };
        ConnectionLifecycle {
            sink,
            otel_sink,
            pool: pool.to_string(),
            naming,
            handles: Handles::default(),
            closed: Default::default(),
            lost: AtomicU64::new(0),
            failures: PerErrorClass::new(),
            redirects: Default::default(),
        }
    }

    /// The baseplate-style handle `name` labelled with the pool, made on first use.
    fn pool_handle<'a, H>(
        &self,
        slot: &'a OnceLock<H>,
        name: &'static str,
        make: Make<H>,
    ) -> &'a H {
        slot.get_or_init(|| {
            make(
                self.sink.as_ref(),
                &key(name, &[(names::LABEL_POOL, self.pool.as_str())]),
            )
        })
    }

    /// The OpenTelemetry handle `name`, if those names are asked for.
    fn otel_handle<'a, H>(
        &self,
        slot: &'a OnceLock<H>,
        name: &'static str,
        make: Make<H>,
    ) -> Option<&'a H> {
        let sink = self.otel_sink.as_ref()?;
        Some(slot.get_or_init(|| {
            make(
                sink.as_ref(),
                &key(
                    name,
                    &[(names::OTEL_CONNECTION_POOL_NAME, self.pool.as_str())],
                ),
            )
        }))
    }

    /// Reports nothing: for pools built without a metrics sink.
    pub fn disabled() -> Self {
        Self::new(Arc::new(NoopSink), "", MetricNaming::Baseplate)
    }

    /// The pool's name, as the labels give it.
    pub fn pool_name(&self) -> &str {
        &self.pool
    }

    /// The naming the metrics are reported under.
    pub fn naming(&self) -> MetricNaming {
        self.naming
    }

    /// A connection was opened; connecting took `took`.
    pub fn opened(&self, took: Duration) {
        let h = &self.handles;
        self.pool_handle(&h.opened, names::CONNECTIONS_OPENED_TOTAL, COUNTER)
            .increment(1);
        self.pool_handle(
            &h.connect_duration,
            names::CONNECT_DURATION_SECONDS,
            HISTOGRAM,
        )
        .record(took.as_secs_f64());
        if let Some(create_time) = self.otel_handle(
            &h.otel_create_time,
            names::OTEL_CONNECTION_CREATE_TIME,
            HISTOGRAM,
        ) {
            create_time.record(took.as_secs_f64());
        }
        let replaced = self
            .lost
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |lost| {
                lost.checked_sub(1)
            });
        if replaced.is_ok() {
            self.pool_handle(&h.reconnects, names::RECONNECTS_TOTAL, COUNTER)
                .increment(1);
        }
    }

    /// Opening a connection failed with an error of this class.
    pub fn connect_failed(&self, class: ErrorClass) {
        let make = || {
            let labels = [
                (names::LABEL_POOL, self.pool.as_str()),
                (names::LABEL_ERROR_TYPE, class.error_type()),
            ];
            self.sink
                .counter(&key(names::CONNECT_FAILURES_TOTAL, &labels))
        };
        self.failures.get(class, make).increment(1);
    }

    /// A connection was closed, for `reason`.
    pub fn closed(&self, reason: CloseReason) {
        self.closed[reason.index()]
            .get_or_init(|| {
                let labels = [
                    (names::LABEL_POOL, self.pool.as_str()),
                    (names::LABEL_REASON, reason.as_str()),
                ];
                self.sink
                    .counter(&key(names::CONNECTIONS_CLOSED_TOTAL, &labels))
            })
            .increment(1);
        if reason.is_failure() {
            self.lost.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// A caller starts waiting for a pooled connection: counted as pending until the
    /// returned guard is dropped (however the wait ends).
    pub fn wait_started(&self) -> PendingRequest<'_> {
        let h = &self.handles;
        let pending = self.pool_handle(&h.pending, names::POOL_PENDING_REQUESTS, GAUGE);
        let otel = self.otel_handle(
            &h.otel_pending,
            names::OTEL_CONNECTION_PENDING_REQUESTS,
            GAUGE,
        );
        pending.increment(1.0);
        if let Some(otel) = otel {
            otel.increment(1.0);
        }
        PendingRequest { pending, otel }
    }

    /// A caller got a pooled connection after waiting `took`.
    pub fn waited(&self, took: Duration) {
        let h = &self.handles;
        self.pool_handle(&h.wait, names::POOL_WAIT_SECONDS, HISTOGRAM)
            .record(took.as_secs_f64());
        if let Some(wait_time) = self.otel_handle(
            &h.otel_wait_time,
            names::OTEL_CONNECTION_WAIT_TIME,
            HISTOGRAM,
        ) {
            wait_time.record(took.as_secs_f64());
        }
    }

    /// A caller gave up waiting for a pooled connection.
    pub fn pool_timed_out(&self) {
        let h = &self.handles;
        self.pool_handle(&h.timeouts, names::POOL_TIMEOUTS_TOTAL, COUNTER)
            .increment(1);
        if let Some(timeouts) =
            self.otel_handle(&h.otel_timeouts, names::OTEL_CONNECTION_TIMEOUTS, COUNTER)
        {
            timeouts.increment(1);
        }
    }

    /// The cluster client followed a MOVED or ASK redirect.
    pub fn redirected(&self, redirect: Redirect) {
        let (slot, value) = match redirect {
            Redirect::Moved => (0, names::REDIRECT_MOVED),
            Redirect::Ask => (1, names::REDIRECT_ASK),
        };
        self.redirects[slot]
            .get_or_init(|| {
                let labels = [
                    (names::LABEL_POOL, self.pool.as_str()),
                    (names::LABEL_REDIRECT, value),
                ];
                self.sink
                    .counter(&key(names::CLUSTER_REDIRECTS_TOTAL, &labels))
            })
            .increment(1);
    }

    /// The cluster client refreshed its slot map.
    pub fn topology_refreshed(&self) {
        let refreshes = &self.handles.refreshes;
        self.pool_handle(refreshes, names::CLUSTER_TOPOLOGY_REFRESHES_TOTAL, COUNTER)
            .increment(1);
    }

    /// The sentinels named a new primary, and the pool follows it.
    pub fn failed_over(&self) {
        let failovers = &self.handles.failovers;
        self.pool_handle(failovers, names::SENTINEL_FAILOVERS_TOTAL, COUNTER)
            .increment(1);
    }
}

/// A caller waiting for a pooled connection; see [`ConnectionLifecycle::wait_started`].
pub struct PendingRequest<'a> {
    pending: &'a Gauge,
    otel: Option<&'a Gauge>,
}

impl Drop for PendingRequest<'_> {
    fn drop(&mut self) {
        self.pending.decrement(1.0);
        if let Some(otel) = self.otel {
            otel.decrement(1.0);
        }
    }
}

impl fmt::Debug for PendingRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingRequest").finish_non_exhaustive()
    }
}

impl fmt::Debug for ConnectionLifecycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionLifecycle")
            .field("pool", &self.pool)
            .field("naming", &self.naming)
            .finish_non_exhaustive()
    }
}

/// Two lifecycles are equal when they are the same one (pool options compare equal when
/// they report to the same place).
impl PartialEq for ConnectionLifecycle {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

impl Eq for ConnectionLifecycle {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_round_trip_through_their_codes_and_match_the_label_list() {
        for (index, reason) in CloseReason::ALL.iter().enumerate() {
            assert_eq!(CloseReason::from_code(reason.code()), Some(*reason));
            assert_eq!(reason.as_str(), names::CLOSE_REASONS[index]);
        }
        assert_eq!(CloseReason::from_code(0), None);
        assert_eq!(CloseReason::from_code(200), None);
    }

    #[test]
    fn cluster_and_sentinel_events_are_counted_per_pool() {
        let sink = crate::sink::RecordingSink::new();
        let lifecycle = ConnectionLifecycle::new(Arc::new(sink.clone()), "c", MetricNaming::Both);
        lifecycle.redirected(Redirect::Ask);
        lifecycle.redirected(Redirect::Ask);
        lifecycle.redirected(Redirect::Moved);
        lifecycle.topology_refreshed();
        lifecycle.failed_over();
        let pool = (names::LABEL_POOL, "c");
        let redirects = |kind| {
            sink.counter_value(
                names::CLUSTER_REDIRECTS_TOTAL,
                &[pool, (names::LABEL_REDIRECT, kind)],
            )
        };
        assert_eq!(redirects(names::REDIRECT_ASK), 2);
        assert_eq!(redirects(names::REDIRECT_MOVED), 1);
        assert_eq!(
            sink.counter_value(names::CLUSTER_TOPOLOGY_REFRESHES_TOTAL, &[pool]),
            1
        );
        assert_eq!(
            sink.counter_value(names::SENTINEL_FAILOVERS_TOTAL, &[pool]),
            1
        );
        // Nothing else was asked of the sink: handles are made on first use.
        assert_eq!(sink.series().len(), 4);
    }
}
