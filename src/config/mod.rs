//! Configuration: the raw INI key/value config, timespans, and typed client configs.

mod error;

pub use error::ConfigurationError;
