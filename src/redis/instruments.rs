//! Metric handles and span names, resolved once per client and command.
//!
//! Resolving a metric by name and labels costs about a microsecond in most recorders; doing
//! it once per command name and keeping the handles makes the per-command cost a few atomic
//! operations, with no allocation.
//!
//! The handles of common commands sit in a fixed table found by comparing the name, and
//! are lent out by reference: no lock, no hashing and no reference count shared between
//! threads on the hot path. Other commands go through a map behind a lock.

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Deref;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use redis::Cmd;

use crate::command::{classify, CommandClass};
use crate::sink::{key, names, Counter, Gauge, Histogram, MetricsSink, NoopSink};
use crate::span::TagValue;
use crate::telemetry::{ErrorClass, OperationDuration, OperationTarget, TelemetryOptions};

/// The commands with a slot of their own, by their upper-case names.
const KNOWN: &[&str] = &[
    "GET",
    "SET",
    "DEL",
    "EXISTS",
    "EXPIRE",
    "PEXPIRE",
    "TTL",
    "PTTL",
    "INCR",
    "INCRBY",
    "DECR",
    "DECRBY",
    "MGET",
    "MSET",
    "SETEX",
    "SETNX",
    "GETDEL",
    "GETEX",
    "APPEND",
    "STRLEN",
    "HGET",
    "HSET",
    "HMGET",
    "HGETALL",
    "HDEL",
    "HINCRBY",
    "HEXISTS",
    "HLEN",
    "LPUSH",
    "RPUSH",
    "LPOP",
    "RPOP",
    "LRANGE",
    "LLEN",
    "LTRIM",
    "SADD",
    "SREM",
    "SMEMBERS",
    "SISMEMBER",
    "SCARD",
    "ZADD",
    "ZREM",
    "ZSCORE",
    "ZRANGE",
    "ZCARD",
    "ZINCRBY",
    "ZRANGEBYSCORE",
    "EVALSHA",
    "EVAL",
    "PING",
    "PUBLISH",
    "UNLINK",
    "SCAN",
    "TYPE",
];

/// The slot of the command named `name` (any case), if it has one.
fn known_slot(name: &[u8]) -> Option<usize> {
    // Compared in place (`eq_ignore_ascii_case` checks the length first). Copying the name
    // into an upper-case buffer first stalled on reading back what had just been written,
    // and cost more than all the comparisons.
    KNOWN
        .iter()
        .position(|known| known.as_bytes().eq_ignore_ascii_case(name))
}

/// The metrics of one client, by command.
pub(crate) struct ClientInstruments {
    sink: Arc<dyn MetricsSink>,
    client_name: Arc<str>,
    /// The `redis_client_name` label: the context name unless one was given.
    label_name: Arc<str>,
    database: String,
    redis_type: &'static str,
    known: Box<[OnceLock<CommandInstruments>]>,
    commands: RwLock<HashMap<Box<[u8]>, Arc<CommandInstruments>>>,
    pipeline: OnceLock<Arc<CommandInstruments>>,
    telemetry: TelemetryOptions,
    // Set when OpenTelemetry names are reported: their sink and the attributes they share.
    opentelemetry: Option<(Arc<dyn MetricsSink>, OperationTarget)>,
}

/// The instruments of one command: lent from the client's table, or shared from its map.
pub(crate) enum Instruments<'a> {
    Known(&'a CommandInstruments),
    Other(Arc<CommandInstruments>),
}

impl Instruments<'_> {
    /// How `cmd` (the command these instruments measure) is routed. Every command with a
    /// slot of its own is ordinary (a test checks it), so the common commands are not
    /// parsed a second time.
    pub(crate) fn class(&self, cmd: &Cmd) -> CommandClass {
        match self {
            Instruments::Known(_) => CommandClass::Ordinary,
            Instruments::Other(_) => classify(cmd),
        }
    }
}

impl Deref for Instruments<'_> {
    type Target = CommandInstruments;

    fn deref(&self) -> &CommandInstruments {
        match self {
            Instruments::Known(known) => known,
            Instruments::Other(other) => other,
        }
    }
}

/// The handles of one command (or of pipelines) of one client.
pub(crate) struct CommandInstruments {
    /// The upper-case command name, as span names and errors spell it.
    pub(crate) upper: Arc<str>,
    /// The same, as the `db.operation.name` tag: built once, lent to every span.
    pub(crate) operation_tag: TagValue,
    /// `<client>.<COMMAND>`, built only when a span needs it.
    span_name: OnceLock<Box<str>>,
    labels: [(&'static str, String); 4],
    active: Gauge,
    succeeded: (Counter, Histogram),
    // Resolved on the first failure, so a client that never fails exports no failure series.
    failed: OnceLock<(Counter, Histogram)>,
    sink: Arc<dyn MetricsSink>,
    // `db.client.operation.duration`, when OpenTelemetry names are reported.
    duration: Option<OperationDuration>,
}

impl ClientInstruments {
    pub(crate) fn new(
        sink: Arc<dyn MetricsSink>,
        client_name: &str,
        database: i64,
        redis_type: &'static str,
    ) -> Self {
        let client_name: Arc<str> = Arc::from(client_name);
        ClientInstruments {
            sink,
            label_name: client_name.clone(),
            client_name,
            database: database.to_string(),
            redis_type,
            known: KNOWN.iter().map(|_| OnceLock::new()).collect(),
            commands: RwLock::new(HashMap::new()),
            pipeline: OnceLock::new(),
            telemetry: TelemetryOptions::default(),
            opentelemetry: None,
        }
    }

    /// The same instruments with `label` as the `redis_client_name` label (none is resolved
    /// yet, so nothing is lost).
    pub(crate) fn with_label_name(self, label: &str) -> Self {
        ClientInstruments {
            label_name: Arc::from(label),
            ..self
        }
    }

    /// Reports under the naming of `telemetry`; `address` is the pool's (`host:port`). Call
    /// before any command is measured.
    pub(crate) fn with_telemetry(mut self, telemetry: TelemetryOptions, address: &str) -> Self {
        let naming = telemetry.metric_naming;
        self.opentelemetry = naming.opentelemetry().then(|| {
            let (host, port) = match super::monitored::split_host_port(address) {
                Some((host, port)) => (host.to_string(), Some(port.to_string())),
                None => (address.to_string(), None),
            };
            let target = OperationTarget {
                namespace: self.database.clone(),
                host,
                port,
            };
            (self.sink.clone(), target)
        });
        if !naming.baseplate() {
            self.sink = Arc::new(NoopSink);
        }
        self.telemetry = telemetry;
        self
    }

    /// The client's telemetry settings.
    pub(crate) fn telemetry(&self) -> &TelemetryOptions {
        &self.telemetry
    }

    /// The sink for the client's own measurements (pool, lifecycle): the real one even when
    /// baseplate's per-command names are off.
    pub(crate) fn sink(&self) -> &Arc<dyn MetricsSink> {
        match &self.opentelemetry {
            Some((sink, _)) => sink,
            None => &self.sink,
        }
    }

    /// The client's context name, as spans use it.
    pub(crate) fn client_name(&self) -> &Arc<str> {
        &self.client_name
    }

    /// The `redis_client_name` label.
    pub(crate) fn label_name(&self) -> &str {
        &self.label_name
    }

    /// The `redis_type` label.
    pub(crate) fn redis_type(&self) -> &'static str {
        self.redis_type
    }

    /// The labels naming the client on every metric: name, database, type.
    pub(crate) fn client_labels(&self) -> [(&'static str, &str); 3] {
        [
            (names::LABEL_CLIENT_NAME, &*self.label_name),
            (names::LABEL_DATABASE, &self.database),
            (names::LABEL_TYPE, self.redis_type),
        ]
    }

    /// The instruments for pipelines, made on first use.
    pub(crate) fn pipeline(&self) -> &Arc<CommandInstruments> {
        self.pipeline.get_or_init(|| {
            let instruments = CommandInstruments::new(
                &self.sink,
                &self.label_name,
                &self.database,
                self.redis_type,
                names::COMMAND_PIPELINE,
                Arc::from("PIPELINE"),
            );
            Arc::new(self.with_duration(instruments))
        })
    }

    /// The instruments for the command named `name` (any case), made on first use.
    pub(crate) fn command(&self, name: &[u8]) -> Instruments<'_> {
        if let Some(slot) = known_slot(name) {
            return Instruments::Known(self.known[slot].get_or_init(|| {
                let upper = KNOWN[slot];
                self.make(&upper.to_lowercase(), Arc::from(upper))
            }));
        }
        Instruments::Other(self.other_command(name))
    }

    fn make(&self, lower: &str, upper: Arc<str>) -> CommandInstruments {
        let instruments = CommandInstruments::new(
            &self.sink,
            &self.label_name,
            &self.database,
            self.redis_type,
            lower,
            upper,
        );
        self.with_duration(instruments)
    }

    fn with_duration(&self, mut instruments: CommandInstruments) -> CommandInstruments {
        if let Some((sink, target)) = &self.opentelemetry {
            instruments.duration = Some(OperationDuration::new(
                sink.clone(),
                target,
                &instruments.upper,
            ));
        }
        instruments
    }

    fn other_command(&self, name: &[u8]) -> Arc<CommandInstruments> {
        if let Some(found) = self
            .commands
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
        {
            return found.clone();
        }
        let upper = String::from_utf8_lossy(name).to_uppercase();
        let lower = upper.to_lowercase();
        let made = Arc::new(self.make(&lower, Arc::from(upper)));
        self.commands
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(name.into())
            .or_insert(made)
            .clone()
    }
}

impl CommandInstruments {
    fn new(
        sink: &Arc<dyn MetricsSink>,
        label_name: &str,
        database: &str,
        redis_type: &'static str,
        command_label: &str,
        upper: Arc<str>,
    ) -> Self {
        let labels = [
            (names::LABEL_COMMAND, command_label.to_string()),
            (names::LABEL_DATABASE, database.to_string()),
            (names::LABEL_CLIENT_NAME, label_name.to_string()),
            (names::LABEL_TYPE, redis_type.to_string()),
        ];
        let active = sink.gauge(&key(names::ACTIVE_REQUESTS, &as_refs(&labels, None)));
        let succeeded = outcome(sink, &labels, "true");
        CommandInstruments {
            operation_tag: TagValue::Str(Cow::Owned(upper.to_string())),
            upper,
            span_name: OnceLock::new(),
            labels,
            active,
            succeeded,
            failed: OnceLock::new(),
            sink: sink.clone(),
            duration: None,
        }
    }

    /// `<client>.<COMMAND>` (or `<client>.pipeline_<name>` for named pipelines, which do not
    /// come through here).
    pub(crate) fn span_name(&self, client_name: &str) -> &str {
        self.span_name
            .get_or_init(|| format!("{client_name}.{}", self.upper).into())
    }

    /// Counts the command in flight until the returned guard is dropped.
    pub(crate) fn start(&self) -> ActiveRequest<'_> {
        self.active.increment(1.0);
        ActiveRequest { instruments: self }
    }

    /// Records one finished command, failed with `failure` if it did.
    pub(crate) fn record(&self, failure: Option<ErrorClass>, latency: Duration) {
        let (requests, latency_histogram) = if failure.is_none() {
            &self.succeeded
        } else {
            self.failed
                .get_or_init(|| outcome(&self.sink, &self.labels, "false"))
        };
        requests.increment(1);
        latency_histogram.record(latency.as_secs_f64());
        if let Some(duration) = &self.duration {
            duration.record(failure, latency);
        }
    }
}

/// Keeps `redis_client_active_requests` raised while a command runs, and lowers it however
/// the command ends: success, failure or cancellation.
pub(crate) struct ActiveRequest<'a> {
    instruments: &'a CommandInstruments,
}

impl Drop for ActiveRequest<'_> {
    fn drop(&mut self) {
        self.instruments.active.decrement(1.0);
    }
}

fn outcome(
    sink: &Arc<dyn MetricsSink>,
    labels: &[(&'static str, String); 4],
    success: &str,
) -> (Counter, Histogram) {
    let labels = as_refs(labels, Some(success));
    (
        sink.counter(&key(names::REQUESTS_TOTAL, &labels)),
        sink.histogram(&key(names::LATENCY_SECONDS, &labels)),
    )
}

fn as_refs<'a>(
    labels: &'a [(&'static str, String); 4],
    success: Option<&'a str>,
) -> Vec<(&'static str, &'a str)> {
    let mut out: Vec<(&'static str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
    if let Some(success) = success {
        out.push((names::LABEL_SUCCESS, success));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{known_slot, KNOWN};
    use crate::command::{classify, CommandClass};

    #[test]
    fn known_commands_are_found_in_any_case() {
        for (slot, name) in KNOWN.iter().enumerate() {
            assert_eq!(known_slot(name.as_bytes()), Some(slot), "{name}");
            assert_eq!(
                known_slot(name.to_lowercase().as_bytes()),
                Some(slot),
                "{name}"
            );
        }
        assert_eq!(known_slot(b"gEt"), Some(0));
    }

    #[test]
    fn known_commands_are_ordinary() {
        // `Instruments::class` relies on it: a blocking or state-changing command given a
        // slot would be routed to the shared connection.
        for name in KNOWN {
            let cmd = redis::cmd(name).arg("key").arg(0).clone();
            assert_eq!(classify(&cmd), CommandClass::Ordinary, "{name}");
        }
    }

    #[test]
    fn other_names_have_no_slot() {
        for name in [&b""[..], b"GE", b"GETT", b"BLPOP", b"G\xc3\xa9T", b"client"] {
            assert_eq!(
                known_slot(name),
                None,
                "{:?}",
                String::from_utf8_lossy(name)
            );
        }
    }
}
