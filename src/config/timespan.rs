//! Timespans as baseplate writes them: `30 seconds`, `200 milliseconds`, `1 day`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// The units, with their length in milliseconds, largest first (for `Display`).
const UNITS: [(&str, u64); 5] = [
    ("day", 86_400_000),
    ("hour", 3_600_000),
    ("minute", 60_000),
    ("second", 1_000),
    ("millisecond", 1),
];

const EXPECTED_UNITS: &str = "millisecond(s), second(s), minute(s), hour(s) or day(s)";

/// Why a timespan was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TimespanError {
    /// The text is empty or only whitespace.
    #[error("empty timespan (expected a number and a unit, e.g. \"30 seconds\")")]
    Empty,
    /// The text is not exactly two words.
    #[error("expected two words, a number and a unit (e.g. \"30 seconds\"), got {0} word(s)")]
    WordCount(usize),
    /// The first word is not an unsigned integer.
    #[error("{0:?} is not a whole non-negative number (expected e.g. \"30 seconds\")")]
    InvalidNumber(String),
    /// The second word is not a unit we know.
    #[error("unknown unit {0:?} (expected {EXPECTED_UNITS})")]
    UnknownUnit(String),
    /// The timespan does not fit in a `Duration`.
    #[error("timespan too large")]
    Overflow,
}

/// Parses a baseplate timespan: exactly two whitespace-separated words, an unsigned integer and
/// a unit (`millisecond`, `second`, `minute`, `hour`, `day`, singular or plural, lowercase).
///
/// ```
/// use std::time::Duration;
/// use baseplate_redis::config::parse_timespan;
///
/// assert_eq!(parse_timespan("30 seconds").unwrap(), Duration::from_secs(30));
/// assert_eq!(parse_timespan("300 milliseconds").unwrap(), Duration::from_millis(300));
/// assert!(parse_timespan("3.2 hours").is_err());
/// ```
pub fn parse_timespan(text: &str) -> Result<Duration, TimespanError> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let (number, unit) = match words.as_slice() {
        [] => return Err(TimespanError::Empty),
        [number, unit] => (*number, *unit),
        other => return Err(TimespanError::WordCount(other.len())),
    };
    if !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TimespanError::InvalidNumber(number.to_owned()));
    }
    // Only digits, so the one possible failure is overflow.
    let count: u64 = number.parse().map_err(|_| TimespanError::Overflow)?;
    let singular = unit.strip_suffix('s').unwrap_or(unit);
    let millis_per_unit = UNITS
        .iter()
        .find(|(name, _)| *name == singular)
        .map(|(_, ms)| *ms)
        .ok_or_else(|| TimespanError::UnknownUnit(unit.to_owned()))?;
    if millis_per_unit == 1 {
        return Ok(Duration::from_millis(count));
    }
    let secs = count
        .checked_mul(millis_per_unit / 1_000)
        .ok_or(TimespanError::Overflow)?;
    Ok(Duration::from_secs(secs))
}

/// A [`Duration`] written as a baseplate timespan (`30 seconds`).
///
/// `FromStr` and `Deserialize` (from a string) use [`parse_timespan`]. `Display` writes the
/// largest unit that divides the duration exactly (`90 seconds` → `90 seconds`, `120 seconds` →
/// `2 minutes`), so it parses back to the same value; a duration that is not a whole number of
/// milliseconds (which parsing never produces) is shown as `Duration`'s `Debug` form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timespan(pub Duration);

impl Timespan {
    /// The duration.
    pub fn as_duration(&self) -> Duration {
        self.0
    }
}

impl From<Timespan> for Duration {
    fn from(span: Timespan) -> Duration {
        span.0
    }
}

impl From<Duration> for Timespan {
    fn from(duration: Duration) -> Timespan {
        Timespan(duration)
    }
}

impl FromStr for Timespan {
    type Err = TimespanError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        parse_timespan(text).map(Timespan)
    }
}

impl fmt::Display for Timespan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.subsec_nanos() % 1_000_000 != 0 {
            return write!(f, "{:?}", self.0);
        }
        let millis = self.0.as_millis();
        if millis == 0 {
            return f.write_str("0 seconds");
        }
        let (name, per) = UNITS
            .iter()
            .map(|(name, per)| (*name, u128::from(*per)))
            .find(|(_, per)| millis % per == 0)
            .unwrap_or(("millisecond", 1));
        let count = millis / per;
        let plural = if count == 1 { "" } else { "s" };
        write!(f, "{count} {name}{plural}")
    }
}

impl<'de> serde::Deserialize<'de> for Timespan {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;

        impl serde::de::Visitor<'_> for Visitor {
            type Value = Timespan;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a timespan such as \"30 seconds\"")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Timespan, E> {
                text.parse().map_err(E::custom)
            }
        }

        deserializer.deserialize_str(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_every_unit_singular_and_plural() {
        let cases = [
            ("1 millisecond", Duration::from_millis(1)),
            ("30 milliseconds", Duration::from_millis(30)),
            ("1 second", Duration::from_secs(1)),
            ("30 seconds", Duration::from_secs(30)),
            ("1 minute", Duration::from_secs(60)),
            ("5 minutes", Duration::from_secs(300)),
            ("1 hour", Duration::from_secs(3600)),
            ("2 hours", Duration::from_secs(7200)),
            ("1 day", Duration::from_secs(86_400)),
            ("3 days", Duration::from_secs(3 * 86_400)),
            ("0 seconds", Duration::ZERO),
            ("300 milliseconds", Duration::from_millis(300)),
            ("  7\tseconds \n", Duration::from_secs(7)),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_timespan(text), Ok(expected), "{text:?}");
        }
    }

    #[test]
    fn rejects_malformed_timespans() {
        for text in [
            "3.2 hours",
            "10 florgles",
            "a b",
            "a b c",
            "",
            "   ",
            "-1 seconds",
            "+1 seconds",
            "1second",
            "1  ",
            "1 Seconds",
            "1 SECOND",
            "1 secondss",
            "1 s",
            "1 ms",
            "1 ",
            "seconds 1",
            "１ second",
        ] {
            assert!(parse_timespan(text).is_err(), "{text:?} should be rejected");
        }
    }

    #[test]
    fn errors_say_what_is_wrong() {
        assert_eq!(parse_timespan(""), Err(TimespanError::Empty));
        assert_eq!(parse_timespan("a b c"), Err(TimespanError::WordCount(3)));
        assert_eq!(parse_timespan("1second"), Err(TimespanError::WordCount(1)));
        assert_eq!(
            parse_timespan("3.2 hours"),
            Err(TimespanError::InvalidNumber("3.2".into()))
        );
        let err = parse_timespan("10 florgles").unwrap_err();
        assert_eq!(err, TimespanError::UnknownUnit("florgles".into()));
        assert!(err.to_string().contains("florgles"));
        assert!(err.to_string().contains("millisecond(s)"), "{err}");
    }

    #[test]
    fn overflow_is_an_error_not_a_panic() {
        assert_eq!(
            parse_timespan("99999999999999999999 days"),
            Err(TimespanError::Overflow)
        );
        assert_eq!(
            parse_timespan(&format!("{} days", u64::MAX)),
            Err(TimespanError::Overflow)
        );
        assert_eq!(
            parse_timespan(&format!("{} hours", u64::MAX / 3600 + 1)),
            Err(TimespanError::Overflow)
        );
        assert_eq!(
            parse_timespan(&format!("{} milliseconds", u64::MAX)),
            Ok(Duration::from_millis(u64::MAX))
        );
        assert_eq!(
            parse_timespan(&format!("{} seconds", u64::MAX)),
            Ok(Duration::from_secs(u64::MAX))
        );
    }

    #[test]
    fn display_uses_the_largest_exact_unit_and_round_trips() {
        let cases = [
            (Duration::ZERO, "0 seconds"),
            (Duration::from_millis(1), "1 millisecond"),
            (Duration::from_millis(300), "300 milliseconds"),
            (Duration::from_secs(1), "1 second"),
            (Duration::from_secs(90), "90 seconds"),
            (Duration::from_secs(120), "2 minutes"),
            (Duration::from_secs(7200), "2 hours"),
            (Duration::from_secs(86_400), "1 day"),
        ];
        for (duration, text) in cases {
            assert_eq!(Timespan(duration).to_string(), text);
            assert_eq!(text.parse::<Timespan>(), Ok(Timespan(duration)));
        }
        assert_eq!(Timespan(Duration::from_nanos(1500)).to_string(), "1.5µs");
    }

    #[test]
    fn conversions() {
        let span: Timespan = "2 seconds".parse().unwrap();
        assert_eq!(span.as_duration(), Duration::from_secs(2));
        assert_eq!(Duration::from(span), Duration::from_secs(2));
        assert_eq!(Timespan::from(Duration::from_secs(2)), span);
    }

    #[test]
    fn deserializes_from_a_string() {
        use serde::de::value::{Error, StrDeserializer};
        use serde::de::IntoDeserializer as _;
        use serde::Deserialize as _;

        let de: StrDeserializer<'_, Error> = "5 minutes".into_deserializer();
        assert_eq!(
            Timespan::deserialize(de).unwrap(),
            Timespan(Duration::from_secs(300))
        );
        let de: StrDeserializer<'_, Error> = "5 florgles".into_deserializer();
        assert!(Timespan::deserialize(de)
            .unwrap_err()
            .to_string()
            .contains("unknown unit"));
    }
}
