//! Configuration: the raw INI key/value config, timespans, Redis URLs and typed client configs.
//!
//! A service's configuration is one flat INI section (usually `[app:main]`) of dotted keys:
//!
//! ```ini
//! [app:main]
//! foo.url = redis://localhost:6379/0          # required
//! foo.max_connections = 99                    # optional: pool size limit
//! foo.socket_connect_timeout = 3 seconds      # optional: connect timeout
//! foo.socket_timeout = 200 milliseconds       # optional: per-command timeout
//! ```
//!
//! [`RawConfig`] holds those strings, read as baseplate.py reads them: environment variables
//! expanded ([`expand_vars`]), option names case-insensitive, `[DEFAULT]` keys in every
//! section. [`from_config`] turns the keys under a prefix (`foo.`) into any
//! `serde::Deserialize` struct, with [`RedisUrl`] and [`Timespan`] as field types;
//! [`from_config_checked`] also warns about (or, with [`UnknownKeys::Deny`], refuses) the keys
//! under the prefix that the struct does not read.
//! Every failure is a [`ConfigurationError`] naming the full key (`foo.url`); no message or
//! `Debug` output ever contains a password.

mod error;
mod raw;
mod timespan;
mod typed;
mod unknown;
mod url;

pub use error::ConfigurationError;
pub use raw::{expand_vars, RawConfig};
pub use timespan::{parse_timespan, Timespan, TimespanError};
pub use typed::{from_config, from_config_checked};
pub use unknown::UnknownKeys;
pub use url::{
    redact_url, RedisUrl, UrlError, UrlKind, DEFAULT_MEMORY_NAME, DEFAULT_PORT,
    DEFAULT_SENTINEL_PORT,
};
