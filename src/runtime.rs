//! The periodic runtime-metrics reporter: pool size and use of every client.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::context::ContextFactory;
use crate::sink::MetricsSink;

/// The usual reporting interval.
pub const DEFAULT_REPORT_INTERVAL: Duration = Duration::from_secs(10);

/// A tokio task that asks every registered factory to report its runtime metrics, every
/// interval. Made by [`Baseplate::start_runtime_reporter`](crate::Baseplate::start_runtime_reporter).
/// It stops at [`shutdown`](Self::shutdown) or when dropped.
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
