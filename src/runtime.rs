//! The periodic runtime-metrics reporter: pool size and use of every client.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::context::ContextFactory;
use crate::pool::PoolBackend;
use crate::sink::{key, names, MetricsSink};
use crate::telemetry::MetricNaming;

/// The usual reporting interval.
pub const DEFAULT_REPORT_INTERVAL: Duration = Duration::from_secs(10);

/// A tokio task that asks every registered factory to report its runtime metrics, every
/// interval. Made by [`Baseplate::start_runtime_reporter`](crate::Baseplate::start_runtime_reporter).
/// It stops at [`shutdown`](Self::shutdown) or when dropped.
///
/// ```
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use std::time::Duration;
/// use baseplate_redis::sink::{names, RecordingSink};
/// use baseplate_redis::{config::RawConfig, Baseplate, ContextSpec, RedisClient};
///
/// let sink = RecordingSink::new();
/// let config = RawConfig::from_pairs([("foo.url", "memory://doc-reporter")]);
/// let mut baseplate = Baseplate::new(config).with_metrics_sink(Arc::new(sink.clone()))?;
/// baseplate.configure_context(ContextSpec::new().client("foo", RedisClient::new()))?;
///
/// let reporter = baseplate.start_runtime_reporter(Duration::from_millis(10));
/// for _ in 0..100 {
///     if sink.gauge_value(names::RUNTIME_POOL_SIZE, &[("client", "foo")]).is_some() {
///         break;
///     }
///     tokio::time::sleep(Duration::from_millis(10)).await;
/// }
/// reporter.shutdown().await;
/// assert_eq!(sink.gauge_value(names::RUNTIME_POOL_SIZE, &[("client", "foo")]), Some(50.0));
/// # Ok(()) }
/// # tokio::runtime::Runtime::new().unwrap().block_on(run()).unwrap();
/// ```
#[derive(Debug)]
pub struct RuntimeReporter {
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl RuntimeReporter {
    pub(crate) fn start(
        factories: Arc<BTreeMap<String, Arc<dyn ContextFactory>>>,
        sink: Arc<dyn MetricsSink>,
        interval: Duration,
    ) -> Self {
        let (stop, mut stopped) = watch::channel(false);
        // A zero interval would spin; report at most every millisecond.
        let interval = interval.max(Duration::from_millis(1));
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = ticks.tick() => report_all(&factories, sink.as_ref()),
                    changed = stopped.changed() => {
                        if changed.is_err() || *stopped.borrow() {
                            return;
                        }
                    }
                }
            }
        });
        RuntimeReporter {
            stop,
            task: Some(task),
        }
    }

    /// Stops the reporter and waits for its task to end.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for RuntimeReporter {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Reports every factory once.
pub(crate) fn report_all(
    factories: &BTreeMap<String, Arc<dyn ContextFactory>>,
    sink: &dyn MetricsSink,
) {
    for factory in factories.values() {
        factory.report_runtime_metrics(sink);
    }
}

/// Reports a pool's size and use under the client's name, with baseplate.py's names and
/// formulas (`BlockingConnectionPool`: `in_use = max - free slots`), plus two gauges of ours
/// whose names say what they count; and, when `naming` asks for them, the OpenTelemetry
/// `db.client.connection.count` (idle, used) and `db.client.connection.max`.
pub(crate) fn report_pool_state(
    name: &str,
    pool: &dyn PoolBackend,
    sink: &dyn MetricsSink,
    naming: MetricNaming,
) {
    let state = pool.state();
    if naming.opentelemetry() {
        let pool_name = (names::OTEL_CONNECTION_POOL_NAME, name);
        for (state_name, count) in [
            (names::OTEL_STATE_IDLE, state.open_and_available()),
            (names::OTEL_STATE_USED, state.in_use),
        ] {
            let labels = [pool_name, (names::OTEL_CONNECTION_STATE, state_name)];
            sink.gauge(&key(names::OTEL_CONNECTION_COUNT, &labels))
                .set(f64::from(count));
        }
        sink.gauge(&key(names::OTEL_CONNECTION_MAX, &[pool_name]))
            .set(f64::from(state.max_size));
    }
    if !naming.baseplate() {
        return;
    }
    let client = [(names::LABEL_CLIENT, name)];
    let redis_pool = [(names::LABEL_POOL, name)];
    let gauges = [
        (names::RUNTIME_POOL_SIZE, &client, state.max_size),
        (names::RUNTIME_POOL_IN_USE, &client, state.in_use),
        (
            names::RUNTIME_POOL_OPEN_AND_AVAILABLE,
            &client,
            state.open_and_available(),
        ),
        (names::RUNTIME_POOL_OPEN_CONNECTIONS, &client, state.open),
        (names::POOL_MAX_SIZE, &redis_pool, state.max_size),
        (
            names::POOL_IDLE_CONNECTIONS,
            &redis_pool,
            state.free_slots(),
        ),
        (names::POOL_ACTIVE_CONNECTIONS, &redis_pool, state.open),
        (names::POOL_OPEN_CONNECTIONS, &redis_pool, state.open),
        (names::POOL_IN_USE_CONNECTIONS, &redis_pool, state.in_use),
    ];
    for (metric, labels, value) in gauges {
        sink.gauge(&key(metric, labels)).set(f64::from(value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::{MockPoolBackend, PoolState};
    use crate::sink::RecordingSink;

    #[test]
    fn pool_gauges_mean_what_they_meant_in_baseplate_py() {
        let mut pool = MockPoolBackend::new();
        // 10 slots, 3 connections open, 2 of them serving a caller.
        pool.expect_state().return_const(PoolState::new(10, 3, 2));
        let sink = RecordingSink::new();
        report_pool_state("foo", &pool, &sink, MetricNaming::Baseplate);
        let client = [(names::LABEL_CLIENT, "foo")];
        let redis_pool = [(names::LABEL_POOL, "foo")];
        for (metric, labels, want) in [
            (names::RUNTIME_POOL_SIZE, &client, 10.0),
            (names::RUNTIME_POOL_IN_USE, &client, 2.0),
            (names::RUNTIME_POOL_OPEN_AND_AVAILABLE, &client, 1.0),
            (names::RUNTIME_POOL_OPEN_CONNECTIONS, &client, 3.0),
            (names::POOL_MAX_SIZE, &redis_pool, 10.0),
            // Free slots (max - in use), as the original's queue size.
            (names::POOL_IDLE_CONNECTIONS, &redis_pool, 8.0),
            // Open connections, as the original's help text says.
            (names::POOL_ACTIVE_CONNECTIONS, &redis_pool, 3.0),
            (names::POOL_OPEN_CONNECTIONS, &redis_pool, 3.0),
            (names::POOL_IN_USE_CONNECTIONS, &redis_pool, 2.0),
        ] {
            assert_eq!(sink.gauge_value(metric, labels), Some(want), "{metric}");
        }
    }
}
