//! The raw configuration: the flat `key = value` strings of one INI section.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use super::error::ConfigurationError;
use super::url::redact_url;

/// Words that make a key's value secret (matched case-insensitively in the key's last
/// dotted component).
const SECRET_WORDS: [&str; 4] = ["password", "secret", "token", "credential"];

/// The section whose keys configparser shows in every other section.
const DEFAULT_SECTION: &str = "DEFAULT";

/// A flat map of configuration keys (`foo.url`) to their string values.
///
/// Keys are case-insensitive, as option names are in baseplate.py's `configparser`: they are
/// stored lower-cased (`Foo.URL` is `foo.url`), and [`get`](Self::get),
/// [`contains_key`](Self::contains_key) and [`with_prefix`](Self::with_prefix) lower-case
/// what they are asked for. Iteration is sorted by key. `Debug` never prints secrets:
/// values of keys that look secret (`…password`, `…secret`, `…token`, `…credential`) are shown
/// as `"<redacted>"` and URL passwords as `***`.
///
/// ```
/// use baseplate_redis::config::RawConfig;
///
/// let config = RawConfig::from_ini_str(
///     "[app:main]\nfoo.url = redis://localhost:6379/0   # required\n",
///     "app:main",
/// )
/// .unwrap();
/// assert_eq!(config.get("foo.url"), Some("redis://localhost:6379/0"));
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RawConfig {
    entries: BTreeMap<String, String>,
}

impl RawConfig {
    /// An empty config.
    pub fn new() -> RawConfig {
        RawConfig::default()
    }

    /// A config holding `pairs` (a later duplicate key wins).
    pub fn from_pairs<K, V>(pairs: impl IntoIterator<Item = (K, V)>) -> RawConfig
    where
        K: Into<String>,
        V: Into<String>,
    {
        pairs.into_iter().collect()
    }

    /// Loads the keys of `[section]` from INI `text`, expanding environment variables in the
    /// values.
    ///
    /// The dialect follows Python's `configparser` as baseplate.py's server reads it: `=` or
    /// `:` separates key and value; option names are lower-cased; whole-line comments start
    /// with `#` or `;`; an inline comment starts with `#` or `;` *preceded by whitespace* (so
    /// `redis://h/0  # required` is `redis://h/0` while `a#b` stays `a#b`); values are
    /// trimmed; quotes and backslashes are kept as written; keys of a `[DEFAULT]` section
    /// apply to every section that does not set them. When a section or key appears twice,
    /// the later value wins. Every value then goes through [`expand_vars`] with the process
    /// environment, as baseplate.py's `EnvironmentInterpolation` runs `os.path.expandvars`:
    /// `$VAR` and `${VAR}` are replaced, an unset variable is left as written. Use
    /// [`from_ini_str_raw`](Self::from_ini_str_raw) to read values as written.
    ///
    /// A missing section is an error whose key is `[section]`.
    ///
    /// ```
    /// use baseplate_redis::config::RawConfig;
    ///
    /// let text = "[app:main]\nFoo.URL = redis://${BASEPLATE_DOC_UNSET_HOST}:6379/0\n";
    /// let config = RawConfig::from_ini_str(text, "app:main").unwrap();
    /// // Option names are case-insensitive; an unset variable is left as written.
    /// assert_eq!(config.get("foo.url"), Some("redis://${BASEPLATE_DOC_UNSET_HOST}:6379/0"));
    /// ```
    pub fn from_ini_str(text: &str, section: &str) -> Result<RawConfig, ConfigurationError> {
        load(text, section, "INI text", Some(&process_env))
    }

    /// Loads the keys of `[section]` from INI `text` as [`from_ini_str`] does, but with the
    /// values as written: no environment variable is expanded (Python's
    /// `RawConfigParser` without interpolation).
    ///
    /// [`from_ini_str`]: RawConfig::from_ini_str
    pub fn from_ini_str_raw(text: &str, section: &str) -> Result<RawConfig, ConfigurationError> {
        load(text, section, "INI text", None)
    }

    /// Loads the keys of `[section]` from the INI file at `path`, expanding environment
    /// variables (see [`from_ini_str`]).
    ///
    /// An unreadable file is an error whose key is the path.
    ///
    /// [`from_ini_str`]: RawConfig::from_ini_str
    pub fn from_ini_file(
        path: impl AsRef<Path>,
        section: &str,
    ) -> Result<RawConfig, ConfigurationError> {
        load_file(path.as_ref(), section, Some(&process_env))
    }

    /// Loads the keys of `[section]` from the INI file at `path` with the values as written
    /// (see [`from_ini_str_raw`]).
    ///
    /// [`from_ini_str_raw`]: RawConfig::from_ini_str_raw
    pub fn from_ini_file_raw(
        path: impl AsRef<Path>,
        section: &str,
    ) -> Result<RawConfig, ConfigurationError> {
        load_file(path.as_ref(), section, None)
    }

    /// Sets `key` (lower-cased) to `value`, replacing any previous value.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) {
        let key = key.into();
        let key = match lower_case(&key) {
            Cow::Borrowed(_) => key,
            Cow::Owned(lower) => lower,
        };
        self.entries.insert(key, value.into());
    }

    /// The value of `key` (in any case), if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .get(lower_case(key).as_ref())
            .map(String::as_str)
    }

    /// Whether `key` (in any case) is set.
    pub fn contains_key(&self, key: &str) -> bool {
        self.entries.contains_key(lower_case(key).as_ref())
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// All `(key, value)` pairs, sorted by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The pairs whose key starts with `prefix` (in any case), sorted, with `prefix` removed
    /// from the keys.
    ///
    /// ```
    /// use baseplate_redis::config::RawConfig;
    ///
    /// let config = RawConfig::from_pairs([("foo.url", "redis://h"), ("bar.url", "redis://b")]);
    /// let foo: Vec<_> = config.with_prefix("foo.").collect();
    /// assert_eq!(foo, [("url", "redis://h")]);
    /// ```
    pub fn with_prefix<'a>(&'a self, prefix: &str) -> impl Iterator<Item = (&'a str, &'a str)> {
        let prefix = lower_case(prefix).into_owned();
        self.entries
            .range::<str, _>((
                std::ops::Bound::Included(prefix.as_str()),
                std::ops::Bound::Unbounded,
            ))
            .map_while(move |(k, v)| Some((k.strip_prefix(prefix.as_str())?, v.as_str())))
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for RawConfig {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut config = RawConfig::new();
        config.extend(iter);
        config
    }
}

impl<K: Into<String>, V: Into<String>> Extend<(K, V)> for RawConfig {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        for (k, v) in iter {
            self.insert(k, v);
        }
    }
}

impl fmt::Debug for RawConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.iter().map(|(k, v)| (k, display_value(k, v))))
            .finish()
    }
}

/// `key` lower-cased as Python's `str.lower` does (configparser's `optionxform`), borrowed
/// when it has nothing to lower.
fn lower_case(key: &str) -> Cow<'_, str> {
    if key.bytes().any(|b| b.is_ascii_uppercase() || !b.is_ascii()) {
        Cow::Owned(key.to_lowercase())
    } else {
        Cow::Borrowed(key)
    }
}

/// Expands environment variables in `value` as Python's `os.path.expandvars` does (on
/// POSIX), looking names up with `lookup`.
///
/// `$NAME` (a name of ASCII letters, digits and `_`) and `${NAME}` (anything up to the next
/// `}`) are replaced by the variable's value; a variable `lookup` does not know is left as
/// written, and so is a `$` that starts neither form. Replacements are not expanded again.
///
/// ```
/// use baseplate_redis::config::expand_vars;
///
/// let env = |name: &str| match name {
///     "REDIS_HOST" => Some("cache.internal".to_string()),
///     "REDIS_DB" => Some("3".to_string()),
///     _ => None,
/// };
/// assert_eq!(
///     expand_vars("redis://${REDIS_HOST}:6380/$REDIS_DB", env),
///     "redis://cache.internal:6380/3"
/// );
/// assert_eq!(expand_vars("$UNSET/${UNSET}/$/${", env), "$UNSET/${UNSET}/$/${");
/// ```
pub fn expand_vars<'a>(value: &'a str, lookup: impl Fn(&str) -> Option<String>) -> Cow<'a, str> {
    if !value.contains('$') {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len());
    // `copied` is where the text not yet copied to `out` starts.
    let (mut copied, mut i) = (0, 0);
    while let Some(offset) = value[i..].find('$') {
        let start = i + offset;
        let rest = &value[start + 1..];
        let (name, end) = if let Some(braced) = rest.strip_prefix('{') {
            match braced.find('}') {
                Some(close) => (&braced[..close], start + 2 + close + 1),
                None => ("", start + 1),
            }
        } else {
            let len = rest
                .bytes()
                .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
                .count();
            (&rest[..len], start + 1 + len)
        };
        if end == start + 1 {
            // Neither form: a lone `$`.
            i = start + 1;
            continue;
        }
        if let Some(found) = lookup(name) {
            out.push_str(&value[copied..start]);
            out.push_str(&found);
            copied = end;
        }
        i = end;
    }
    if copied == 0 {
        return Cow::Borrowed(value);
    }
    out.push_str(&value[copied..]);
    Cow::Owned(out)
}

/// The process environment, as `os.environ` (a value that is not UTF-8 is converted lossily).
fn process_env(name: &str) -> Option<String> {
    if name.is_empty() || name.contains(['=', '\0']) {
        return None;
    }
    std::env::var_os(name).map(|value| value.to_string_lossy().into_owned())
}

/// Whether the value of `key` must never be printed: its last dotted component contains
/// `password`, `secret`, `token` or `credential`, in any case.
pub(crate) fn is_secret_key(key: &str) -> bool {
    let last = key.rsplit('.').next().unwrap_or(key).to_ascii_lowercase();
    SECRET_WORDS.iter().any(|word| last.contains(word))
}

/// The value of `key` as it may be printed: `<redacted>` for secret keys, URL passwords
/// replaced by `***`.
pub(crate) fn display_value<'a>(key: &str, value: &'a str) -> Cow<'a, str> {
    if is_secret_key(key) {
        Cow::Borrowed("<redacted>")
    } else {
        redact_url(value)
    }
}

/// How values are expanded: `None` keeps them as written.
type Lookup<'a> = Option<&'a dyn Fn(&str) -> Option<String>>;

fn load_file(
    path: &Path,
    section: &str,
    lookup: Lookup<'_>,
) -> Result<RawConfig, ConfigurationError> {
    let text = std::fs::read_to_string(path).map_err(|err| {
        ConfigurationError::new(
            path.display().to_string(),
            format!("cannot read the config file: {err}"),
        )
    })?;
    load(&text, section, &path.display().to_string(), lookup)
}

fn load(
    text: &str,
    section: &str,
    source: &str,
    lookup: Lookup<'_>,
) -> Result<RawConfig, ConfigurationError> {
    let options = ini::ParseOption {
        // configparser keeps quotes and backslashes as written.
        enabled_quote: false,
        enabled_escape: false,
        ..ini::ParseOption::default()
    };
    let ini = ini::Ini::load_from_str_opt(&blank_comment_lines(text), options).map_err(|err| {
        ConfigurationError::new(
            source,
            format!(
                "INI syntax error at line {}, column {}: {}",
                err.line, err.col, err.msg
            ),
        )
    })?;
    let section_name = section.trim();
    let mut found = false;
    let mut config = RawConfig::new();
    for properties in ini.section_all(Some(section_name)) {
        found = true;
        for (key, value) in properties.iter() {
            config.insert(key, strip_inline_comment(value));
        }
    }
    // configparser: `[DEFAULT]` keys are seen in every section that does not set them.
    if found && section_name != DEFAULT_SECTION {
        for properties in ini.section_all(Some(DEFAULT_SECTION)) {
            for (key, value) in properties.iter() {
                if !config.contains_key(key) {
                    config.insert(key, strip_inline_comment(value));
                }
            }
        }
    }
    if let Some(lookup) = lookup {
        for value in config.entries.values_mut() {
            if let Cow::Owned(expanded) = expand_vars(value, lookup) {
                *value = expanded;
            }
        }
    }
    if !found {
        let known: Vec<String> = ini
            .sections()
            .flatten()
            .map(|name| format!("[{name}]"))
            .collect();
        let known = if known.is_empty() {
            "none".to_owned()
        } else {
            known.join(", ")
        };
        return Err(ConfigurationError::new(
            format!("[{section_name}]"),
            format!("section not found in {source} (sections found: {known})"),
        ));
    }
    Ok(config)
}

/// Empties whole-line comments (even indented ones, which rust-ini would otherwise read as a
/// key), keeping line numbers for error messages.
fn blank_comment_lines(text: &str) -> Cow<'_, str> {
    let is_comment = |line: &str| line.trim_start().starts_with(['#', ';']);
    if !text.lines().any(is_comment) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        if is_comment(line) {
            out.push_str(if line.ends_with("\r\n") {
                "\r\n"
            } else if line.ends_with('\n') {
                "\n"
            } else {
                ""
            });
        } else {
            out.push_str(line);
        }
    }
    Cow::Owned(out)
}

/// Cuts an inline comment: `#` or `;` preceded by whitespace (configparser's
/// `inline_comment_prefixes`); rust-ini keeps them unless built with its `inline-comment`
/// feature, in which case there is nothing left to cut.
fn strip_inline_comment(value: &str) -> &str {
    let bytes = value.as_bytes();
    let cut = (1..bytes.len())
        .find(|&i| matches!(bytes[i], b'#' | b';') && bytes[i - 1].is_ascii_whitespace());
    match cut {
        Some(i) => value[..i].trim(),
        None => value.trim(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "\
[app:main]
foo.url = redis://localhost:6379/0          # required
foo.max_connections = 99                    ; optional: pool size limit
foo.socket_connect_timeout = 3 seconds      # optional: connect timeout
foo.socket_timeout = 200 milliseconds
# a comment line
    ; an indented comment line
Foo.Mixed.Case = kept
fragment = a#b;c
quoted = \"x\"  # comment
path = C:\\temp\\x
empty =

[other]
foo.url = redis://elsewhere
";

    #[test]
    fn rust_ini_keeps_inline_comments_itself() {
        // What we post-process: rust-ini (without its inline-comment feature) leaves them in.
        let ini = ini::Ini::load_from_str_noescape("[s]\na = b   # c\n").unwrap();
        let value = ini.get_from(Some("s"), "a").unwrap();
        assert!(value == "b   # c" || value == "b", "{value:?}");
    }

    #[test]
    fn loads_a_section_with_inline_comments() {
        let config = RawConfig::from_ini_str(EXAMPLE, "app:main").unwrap();
        assert_eq!(config.get("foo.url"), Some("redis://localhost:6379/0"));
        assert_eq!(config.get("foo.max_connections"), Some("99"));
        assert_eq!(config.get("foo.socket_connect_timeout"), Some("3 seconds"));
        assert_eq!(config.get("foo.socket_timeout"), Some("200 milliseconds"));
        // Option names are case-insensitive, as configparser lower-cases them.
        assert_eq!(config.get("Foo.Mixed.Case"), Some("kept"));
        assert_eq!(config.get("foo.mixed.case"), Some("kept"));
        assert!(config.iter().any(|(k, _)| k == "foo.mixed.case"));
        assert_eq!(config.get("fragment"), Some("a#b;c"));
        assert_eq!(config.get("quoted"), Some("\"x\""));
        assert_eq!(config.get("path"), Some("C:\\temp\\x"));
        assert_eq!(config.get("empty"), Some(""));
        assert_eq!(config.len(), 9);
        let other = RawConfig::from_ini_str(EXAMPLE, "other").unwrap();
        assert_eq!(other.get("foo.url"), Some("redis://elsewhere"));
    }

    #[test]
    fn missing_section_names_the_section() {
        let err = RawConfig::from_ini_str(EXAMPLE, "app:nope").unwrap_err();
        assert_eq!(err.key(), "[app:nope]");
        assert!(err.reason().contains("not found"), "{err}");
        assert!(err.reason().contains("[app:main]"), "{err}");
        let err = RawConfig::from_ini_str("", "app:main").unwrap_err();
        assert_eq!(err.key(), "[app:main]");
    }

    #[test]
    fn unreadable_file_names_the_path() {
        let err = RawConfig::from_ini_file("/nonexistent/dir/x.ini", "app:main").unwrap_err();
        assert_eq!(err.key(), "/nonexistent/dir/x.ini");
        assert!(err.reason().contains("cannot read"), "{err}");
    }

    #[test]
    fn duplicate_sections_and_keys_later_wins() {
        let text = "[s]\na = 1\nb = 1\n[t]\na = 9\n[s]\na = 2\n";
        let config = RawConfig::from_ini_str(text, "s").unwrap();
        assert_eq!(config.get("a"), Some("2"));
        assert_eq!(config.get("b"), Some("1"));
    }

    #[test]
    fn keys_are_case_insensitive() {
        let mut config =
            RawConfig::from_pairs([("Foo.URL", "redis://h"), ("foo.Max_Connections", "3")]);
        config.insert("FOO.socket_timeout", "1 second");
        assert_eq!(config.get("foo.url"), Some("redis://h"));
        assert_eq!(config.get("FOO.url"), Some("redis://h"));
        assert!(config.contains_key("foo.MAX_CONNECTIONS"));
        let foo: Vec<_> = config.with_prefix("Foo.").collect();
        assert_eq!(
            foo,
            [
                ("max_connections", "3"),
                ("socket_timeout", "1 second"),
                ("url", "redis://h")
            ]
        );
        // A later key differing only in case replaces the earlier one, as in configparser.
        config.insert("foo.URL", "redis://other");
        assert_eq!(config.get("foo.url"), Some("redis://other"));
        assert_eq!(config.len(), 3);
        // Non-ASCII names lower-case as Python's `str.lower` does.
        config.insert("Ünïcode.KEY", "x");
        assert_eq!(config.get("ünïcode.key"), Some("x"));
    }

    fn env(name: &str) -> Option<String> {
        match name {
            "REDIS_HOST" => Some("cache.internal".into()),
            "REDIS_DB" => Some("3".into()),
            "DOLLAR" => Some("$REDIS_HOST".into()),
            "EMPTY" => Some(String::new()),
            "_x1" => Some("underscore".into()),
            _ => None,
        }
    }

    #[test]
    fn expand_vars_follows_python_expandvars() {
        for (input, want) in [
            (
                "redis://${REDIS_HOST}:6380/$REDIS_DB",
                "redis://cache.internal:6380/3",
            ),
            ("$REDIS_HOST$REDIS_DB", "cache.internal3"),
            ("${REDIS_HOST}x", "cache.internalx"),
            // `$NAME` takes every word character: `$REDIS_DBx` names `REDIS_DBx`.
            ("$REDIS_DBx", "$REDIS_DBx"),
            ("$REDIS_DB.x", "3.x"),
            ("$_x1-", "underscore-"),
            // Unknown variables, lone dollars, unclosed and empty braces stay as written.
            ("$UNSET and ${UNSET}", "$UNSET and ${UNSET}"),
            ("cost: 5$", "cost: 5$"),
            ("$ $- $.", "$ $- $."),
            ("${REDIS_HOST", "${REDIS_HOST"),
            ("${}", "${}"),
            ("${UNSET}$REDIS_DB", "${UNSET}3"),
            // A replacement is not expanded again.
            ("$DOLLAR", "$REDIS_HOST"),
            ("[$EMPTY]", "[]"),
            // Names are ASCII: `$é` is a lone dollar.
            ("$é$REDIS_DB", "$é3"),
            ("no dollar", "no dollar"),
        ] {
            assert_eq!(expand_vars(input, env), want, "{input}");
        }
        assert!(matches!(expand_vars("$UNSET", env), Cow::Borrowed(_)));
    }

    /// Python's results, generated once with `os.path.expandvars` (python3, POSIX) in an
    /// environment holding exactly the variables `python_env` knows.
    fn python_env(name: &str) -> Option<String> {
        let value = match name {
            "A" => "alpha",
            "B" => "beta",
            "A_B" => "ab",
            "EMPTY" => "",
            "DOLLAR" => "$A",
            "BRACE" => "}x{",
            "_" => "under",
            "A1" => "a-one",
            "a" => "lower",
            _ => return None,
        };
        Some(value.to_owned())
    }

    #[test]
    fn expand_vars_matches_python_results() {
        for (input, python) in [
            ("${A}${B}", "alphabeta"),
            ("$A_B", "ab"),
            ("$A$B", "alphabeta"),
            ("$$", "$$"),
            ("$$A", "$alpha"),
            ("$", "$"),
            ("x$", "x$"),
            ("$A$", "alpha$"),
            ("${A}$", "alpha$"),
            ("${UNSET}", "${UNSET}"),
            ("$UNSET", "$UNSET"),
            ("$UNSET_A", "$UNSET_A"),
            ("${A_B}", "ab"),
            ("${A}_B", "alpha_B"),
            ("$A-B", "alpha-B"),
            ("$A.B", "alpha.B"),
            ("${", "${"),
            ("${A", "${A"),
            ("${A}}", "alpha}"),
            ("${{A}}", "${{A}}"),
            ("$}{A}", "$}{A}"),
            ("${}", "${}"),
            ("${ }", "${ }"),
            ("${A B}", "${A B}"),
            ("$A1x", "$A1x"),
            ("$A1", "a-one"),
            ("$_", "under"),
            ("$__", "$__"),
            ("$a", "lower"),
            ("$1", "$1"),
            ("${1}", "${1}"),
            ("${$A}", "${$A}"),
            ("$${A}", "$alpha"),
            ("$${A}}", "$alpha}"),
            ("$DOLLAR", "$A"),
            ("${DOLLAR}$A", "$Aalpha"),
            ("$BRACE$A", "}x{alpha"),
            ("${BRACE}", "}x{"),
            ("$EMPTY$EMPTY", ""),
            ("[${EMPTY}]", "[]"),
            ("a$Ab", "a$Ab"),
            ("$Aé", "alphaé"),
            ("é$A", "éalpha"),
            ("$é", "$é"),
            ("${é}", "${é}"),
            ("redis://${A}:6380/$B", "redis://alpha:6380/beta"),
            ("%A%", "%A%"),
            ("$A\\$B", "alpha\\beta"),
            ("'$A'", "'alpha'"),
            ("\"${B}\"", "\"beta\""),
        ] {
            assert_eq!(expand_vars(input, python_env), python, "{input}");
        }
    }

    #[test]
    fn ini_values_expand_the_process_environment_unless_raw() {
        // PATH is set in any test environment; compare with what the process sees anyway.
        let path = std::env::var("PATH").ok();
        let text = "[s]\na = ${PATH}\nb = $BASEPLATE_REDIS_SURELY_UNSET_VAR\n";
        let config = RawConfig::from_ini_str(text, "s").unwrap();
        assert_eq!(config.get("a"), Some(path.as_deref().unwrap_or("${PATH}")));
        assert_eq!(config.get("b"), Some("$BASEPLATE_REDIS_SURELY_UNSET_VAR"));
        let raw = RawConfig::from_ini_str_raw(text, "s").unwrap();
        assert_eq!(raw.get("a"), Some("${PATH}"));
        assert_eq!(process_env(""), None);
        assert_eq!(process_env("A=B"), None);
    }

    #[test]
    fn default_section_applies_to_every_section() {
        let text = "[DEFAULT]\nshared = 1\nfoo.url = redis://default\n[s]\nFOO.URL = redis://s\n";
        let config = RawConfig::from_ini_str(text, "s").unwrap();
        assert_eq!(config.get("shared"), Some("1"));
        assert_eq!(config.get("foo.url"), Some("redis://s"));
        assert_eq!(config.len(), 2);
        let defaults = RawConfig::from_ini_str(text, "DEFAULT").unwrap();
        assert_eq!(defaults.get("foo.url"), Some("redis://default"));
    }

    #[test]
    fn strip_inline_comment_rules() {
        assert_eq!(strip_inline_comment("a # b"), "a");
        assert_eq!(strip_inline_comment("a\t; b"), "a");
        assert_eq!(strip_inline_comment("a#b"), "a#b");
        assert_eq!(strip_inline_comment("#a"), "#a");
        assert_eq!(strip_inline_comment("  a  "), "a");
        assert_eq!(strip_inline_comment("a ;b # c"), "a");
    }

    #[test]
    fn map_api() {
        let mut config = RawConfig::new();
        assert!(config.is_empty());
        config.insert("b.x", "2");
        config.insert("a.y", "1");
        config.insert("a.x", "0");
        config.insert("a.x", "3");
        assert_eq!(config.len(), 3);
        assert!(config.contains_key("a.x"));
        let keys: Vec<_> = config.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["a.x", "a.y", "b.x"]);
        let a: Vec<_> = config.with_prefix("a.").collect();
        assert_eq!(a, [("x", "3"), ("y", "1")]);
        assert_eq!(config.with_prefix("c.").count(), 0);
        assert_eq!(config.with_prefix("").count(), 3);
        assert_eq!(
            RawConfig::from_pairs([("a.x", "3"), ("a.y", "1"), ("b.x", "2")]),
            config
        );
    }

    #[test]
    fn debug_hides_secrets() {
        let config = RawConfig::from_pairs([
            ("foo.url", "redis://user:hunter2@host:6379/0"),
            ("foo.password", "hunter3"),
            ("foo.API_Token", "hunter4"),
            ("foo.client_secret", "hunter5"),
            ("foo.credentials", "hunter6"),
            ("foo.password.hint", "visible"),
            ("foo.timeout", "3 seconds"),
        ]);
        let debug = format!("{config:?}");
        for secret in ["hunter2", "hunter3", "hunter4", "hunter5", "hunter6"] {
            assert!(!debug.contains(secret), "{debug}");
        }
        assert!(debug.contains("redis://user:***@host:6379/0"), "{debug}");
        assert!(
            debug.contains("\"foo.password\": \"<redacted>\""),
            "{debug}"
        );
        assert!(debug.contains("visible"), "{debug}");
        assert!(debug.contains("3 seconds"), "{debug}");
    }

    #[test]
    fn secret_keys() {
        assert!(is_secret_key("password"));
        assert!(is_secret_key("foo.db_PASSWORD"));
        assert!(is_secret_key("a.b.token"));
        assert!(!is_secret_key("foo.password.hint"));
        assert!(!is_secret_key("foo.url"));
    }
}
