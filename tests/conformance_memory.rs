//! The conformance suite against the in-memory backend (no server needed).

#[path = "conformance/cases.rs"]
mod cases;

use baseplate_redis::pool::InMemoryBackend;

conformance_suite!(InMemoryBackend::new());
