#![doc = "baseplate-redis (work in progress)"]
#![warn(missing_docs, unreachable_pub)]

mod command;
pub mod config;
mod error;
pub mod pool;
pub mod sink;
pub mod span;

pub use error::{Error, Result};
