//! OpenTelemetry database conventions: error classes, sanitised query text, stored
//! procedure names, and the choice of metric naming.
//!
//! Every command span carries `db.system.name`, `db.operation.name`, `db.namespace`,
//! `server.address` and `server.port`; a failed one also `error.type` and (for an error
//! reply) `db.response.status_code` ([`ErrorClass`]); an `EVALSHA`/`FCALL` one
//! `db.stored_procedure.name` ([`stored_procedure_name`]); and, when
//! [`TelemetryOptions::query_text`] is on, `db.query.text` ([`query_text`]).
//! Metrics are reported under baseplate's names unless [`MetricNaming`] says otherwise; the
//! names of both schemes are in [`sink::names`](crate::sink::names).

mod error_type;
mod naming;
mod operation_metrics;
mod options;
mod per_error_class;
mod query_text;
mod stored_procedure;

pub use error_type::{
    client_side, ErrorClass, CLIENT_SIDE_ERROR_TYPES, OTHER_STATUS_CODE, STATUS_CODES,
};
pub use naming::{MetricNaming, UnknownMetricNaming};
pub(crate) use operation_metrics::{OperationDuration, OperationTarget};
pub use options::TelemetryOptions;
pub(crate) use per_error_class::PerErrorClass;
pub use query_text::{pipeline_query_text, query_text, PIPELINE_QUERY_TEXT_LIMIT};
pub use stored_procedure::stored_procedure_name;
