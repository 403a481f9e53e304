//! The configuration error: which key, and what is wrong with it.

/// A configuration key is missing or its value is invalid.
///
/// The message names the full key (`foo.url`) and the reason; it never contains a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct ConfigurationError {
    key: String,
    reason: String,
}

impl ConfigurationError {
    /// An error about `key`.
    pub fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigurationError {
            key: key.into(),
            reason: reason.into(),
        }
    }

    /// The full key the error is about (`foo.url`).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// What is wrong with it.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}
