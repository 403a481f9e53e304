//! Which traces are sampled: the caller's decision when it sent one, otherwise a configured
//! share of new traces.

use crate::config::{ConfigurationError, RawConfig};

/// The configuration key of the share of new traces that are sampled.
pub const SAMPLE_RATE_KEY: &str = "tracing.sample_rate";

/// The share of traces started here (requests whose caller sent no sampling decision) whose
/// spans observers see. Spans of unsampled requests are not made at all: a Redis command
/// of an unsampled request costs one branch for its span, while its metrics are still
/// recorded.
///
/// Read from `tracing.sample_rate` ([`SAMPLE_RATE_KEY`]) by
/// [`Baseplate::new`](crate::Baseplate::new): a percentage (`1%`, `12.5%`) or a fraction
/// from 0 to 1 (`0.01`). Unset, every trace is sampled (baseplate.py's tracing client
/// samples 10% by default: set `tracing.sample_rate = 10%` to match it).
///
/// ```
/// use baseplate_redis::span::SampleRate;
/// use baseplate_redis::RawConfig;
///
/// let config = RawConfig::from_pairs([("tracing.sample_rate", "1%")]);
/// assert_eq!(SampleRate::from_config(&config)?.fraction(), 0.01);
/// assert_eq!(SampleRate::from_config(&RawConfig::new())?, SampleRate::ALL);
///
/// let bad = RawConfig::from_pairs([("tracing.sample_rate", "often")]);
/// let err = SampleRate::from_config(&bad).unwrap_err();
/// assert_eq!(err.key(), "tracing.sample_rate");
/// # Ok::<(), baseplate_redis::ConfigurationError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleRate(f64);

impl SampleRate {
    /// Every trace sampled (the default).
    pub const ALL: SampleRate = SampleRate(1.0);
    /// No new trace sampled (callers' sampled traces still are).
    pub const NONE: SampleRate = SampleRate(0.0);

    /// A rate from a fraction between 0 and 1; `None` outside that range.
    pub fn from_fraction(fraction: f64) -> Option<Self> {
        (0.0..=1.0)
            .contains(&fraction)
            .then_some(SampleRate(fraction))
    }

    /// The rate set by `tracing.sample_rate` in `config`, or [`ALL`](Self::ALL) when unset.
    pub fn from_config(config: &RawConfig) -> Result<Self, ConfigurationError> {
        match config.get(SAMPLE_RATE_KEY) {
            None => Ok(SampleRate::ALL),
            Some(text) => Self::parse(text).ok_or_else(|| {
                ConfigurationError::new(
                    SAMPLE_RATE_KEY,
                    format!(
                        "{text:?} is not a sampling rate: give a percentage (\"1%\") or a \
                         fraction from 0 to 1 (\"0.01\")"
                    ),
                )
            }),
        }
    }

    fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let fraction = match text.strip_suffix('%') {
            Some(percent) => percent.trim().parse::<f64>().ok()? / 100.0,
            None => text.parse::<f64>().ok()?,
        };
        Self::from_fraction(fraction)
    }

    /// The fraction of new traces sampled.
    pub fn fraction(self) -> f64 {
        self.0
    }

    /// Decides whether a new trace is sampled.
    pub fn sample(self) -> bool {
        self.0 >= 1.0 || (self.0 > 0.0 && fastrand::f64() < self.0)
    }
}

impl Default for SampleRate {
    fn default() -> Self {
        SampleRate::ALL
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_and_fractions_are_read() {
        for (text, fraction) in [
            ("1%", 0.01),
            (" 12.5 % ", 0.125),
            ("100%", 1.0),
            ("0", 0.0),
            ("0.25", 0.25),
            ("1", 1.0),
        ] {
            assert_eq!(
                SampleRate::parse(text),
                Some(SampleRate(fraction)),
                "{text}"
            );
        }
        for bad in ["", "%", "often", "101%", "-1%", "1.5", "NaN", "0.1%%"] {
            assert_eq!(SampleRate::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn rates_sample_their_share() {
        assert!((0..1000).all(|_| SampleRate::ALL.sample()));
        assert!((0..1000).all(|_| !SampleRate::NONE.sample()));
        let sampled = (0..10_000).filter(|_| SampleRate(0.1).sample()).count();
        assert!((700..1300).contains(&sampled), "{sampled}");
    }
}
