//! Keys under a client's prefix that its spec does not know: warned about (baseplate.py
//! ignores them) or, in strict mode, refused; either way naming the closest known key.

use super::error::ConfigurationError;

/// What to do with a key under a client's prefix that its config does not read.
///
/// baseplate.py's `SpecParser` reads the keys of its spec and ignores the rest, so a
/// service's INI often holds keys for other tools next to the client's (`foo.key_prefix`…)
/// and typos go unnoticed. The default, [`Warn`](Self::Warn), keeps start-up working and
/// makes the typo visible; [`Deny`](Self::Deny) is the strict opt-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum UnknownKeys {
    /// Ignore the key after one `tracing` warning (target `baseplate_redis::config`, fields
    /// `key` and `closest`) naming it and the closest known key.
    #[default]
    Warn,
    /// Fail with a [`ConfigurationError`] naming the key and the closest known key.
    Deny,
}

/// One key no field read, with the keys that were expected where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UnknownKey {
    key: String,
    known: Vec<String>,
}

impl UnknownKey {
    pub(crate) fn new(key: String, known: Vec<String>) -> Self {
        UnknownKey { key, known }
    }

    /// The known key nearest to this one in edit distance (the first of equals); `None`
    /// when nothing is known there.
    fn closest(&self) -> Option<&str> {
        self.known
            .iter()
            .min_by_key(|known| edit_distance(&self.key, known))
            .map(String::as_str)
    }
}

impl UnknownKeys {
    /// Warns about or refuses `unknown` (a refusal names the first).
    pub(crate) fn apply(self, unknown: &[UnknownKey]) -> Result<(), ConfigurationError> {
        for key in unknown {
            let closest = key.closest().unwrap_or("none");
            match self {
                UnknownKeys::Warn => tracing::warn!(
                    target: "baseplate_redis::config",
                    key = %key.key,
                    closest = %closest,
                    "unknown configuration key {} ignored (closest known key: {closest})",
                    key.key,
                ),
                UnknownKeys::Deny => {
                    return Err(ConfigurationError::new(
                        &key.key,
                        format!(
                            "unknown key (did you mean {closest}? expected one of: {})",
                            key.known.join(", ")
                        ),
                    ))
                }
            }
        }
        Ok(())
    }
}

/// The Levenshtein distance between `a` and `b`, in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        current[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unknown(key: &str, known: &[&str]) -> UnknownKey {
        UnknownKey::new(key.into(), known.iter().map(|k| k.to_string()).collect())
    }

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("abc", ""), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("max_conections", "max_connections"), 1);
        assert_eq!(edit_distance("ürl", "url"), 1);
    }

    #[test]
    fn closest_known_key() {
        let known = ["foo.url", "foo.max_connections", "foo.socket_timeout"];
        assert_eq!(
            unknown("foo.max_conections", &known).closest(),
            Some("foo.max_connections")
        );
        assert_eq!(unknown("foo.uri", &known).closest(), Some("foo.url"));
        assert_eq!(
            unknown("foo.sockettimeout", &known).closest(),
            Some("foo.socket_timeout")
        );
        assert_eq!(unknown("foo.x", &[]).closest(), None);
    }

    #[test]
    fn deny_names_the_key_and_the_closest() {
        let keys = [unknown("foo.urll", &["foo.url", "foo.socket_timeout"])];
        assert_eq!(UnknownKeys::Warn.apply(&keys), Ok(()));
        let err = UnknownKeys::Deny.apply(&keys).unwrap_err();
        assert_eq!(err.key(), "foo.urll");
        assert_eq!(
            err.reason(),
            "unknown key (did you mean foo.url? expected one of: foo.url, foo.socket_timeout)"
        );
        assert_eq!(UnknownKeys::Deny.apply(&[]), Ok(()));
        assert_eq!(UnknownKeys::default(), UnknownKeys::Warn);
    }
}
