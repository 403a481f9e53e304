//! placeholder
use super::{ConfigurationError, RawConfig};
/// x
pub fn from_config<T: serde::de::DeserializeOwned>(
    _config: &RawConfig,
    prefix: &str,
) -> Result<T, ConfigurationError> {
    Err(ConfigurationError::new(prefix, "todo"))
}
