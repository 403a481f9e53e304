//! `db.client.operation.duration`: the OpenTelemetry histogram of one command (or of
//! pipelines) of one client, with its handles resolved once.

use std::sync::Arc;
use std::time::Duration;

use super::{ErrorClass, PerErrorClass};
use crate::sink::{key, names, Histogram, MetricsSink};

/// Where a client's commands go, as the OpenTelemetry attributes name it.
#[derive(Debug, Clone)]
pub(crate) struct OperationTarget {
    pub(crate) namespace: String,
    pub(crate) host: String,
    // `None` for socket paths and `memory://` addresses.
    pub(crate) port: Option<String>,
}

/// The histogram handles of one operation: one for successes, one per error class seen.
pub(crate) struct OperationDuration {
    sink: Arc<dyn MetricsSink>,
    labels: Vec<(&'static str, String)>,
    succeeded: Histogram,
    failed: PerErrorClass<Histogram>,
}

impl OperationDuration {
    pub(crate) fn new(
        sink: Arc<dyn MetricsSink>,
        target: &OperationTarget,
        operation: &str,
    ) -> Self {
        let mut labels = vec![
            (
                names::OTEL_DB_SYSTEM_NAME,
                names::OTEL_SYSTEM_REDIS.to_string(),
            ),
            (names::OTEL_DB_OPERATION_NAME, operation.to_string()),
            (names::OTEL_DB_NAMESPACE, target.namespace.clone()),
            (names::OTEL_SERVER_ADDRESS, target.host.clone()),
        ];
        if let Some(port) = &target.port {
            labels.push((names::OTEL_SERVER_PORT, port.clone()));
        }
        let succeeded = sink.histogram(&key(names::OTEL_OPERATION_DURATION, &refs(&labels)));
        OperationDuration {
            sink,
            labels,
            succeeded,
            failed: PerErrorClass::new(),
        }
    }

    /// Records one operation that took `took` and failed with `failure`, if it did.
    pub(crate) fn record(&self, failure: Option<ErrorClass>, took: Duration) {
        let seconds = took.as_secs_f64();
        let Some(class) = failure else {
            self.succeeded.record(seconds);
            return;
        };
        self.failed
            .get(class, || self.failure_histogram(class))
            .record(seconds);
    }

    fn failure_histogram(&self, class: ErrorClass) -> Histogram {
        let mut labels = refs(&self.labels);
        labels.push((names::OTEL_ERROR_TYPE, class.error_type()));
        if let Some(code) = class.status_code() {
            labels.push((names::OTEL_DB_RESPONSE_STATUS_CODE, code));
        }
        self.sink
            .histogram(&key(names::OTEL_OPERATION_DURATION, &labels))
    }
}

fn refs<'a>(labels: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    labels.iter().map(|(k, v)| (*k, v.as_str())).collect()
}
