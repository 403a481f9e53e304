//! Typed configs: the keys under a prefix, deserialized into a struct with serde.
//!
//! The values are strings; a small [`serde::Deserializer`] parses them as the field types ask:
//! integers, floats, booleans (`true/false`, `yes/no`, `on/off`, `1/0`, any case), strings,
//! `char`, unit-variant enums (by name), comma-separated sequences (`a, b, c`), `Option`
//! (a present key is `Some`, an empty value is `None`), newtypes, and every type that
//! deserializes from a string ([`Timespan`](super::Timespan), [`RedisUrl`](super::RedisUrl)…).
//! A field whose type is a struct reads the dotted sub-keys (`foo.pool.size` fills
//! `pool: Pool { size }`); a map field reads the keys under it, flat.

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;

use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};

use super::error::ConfigurationError;
use super::raw::{display_value, is_secret_key, RawConfig};
use super::unknown::{UnknownKey, UnknownKeys};

/// Deserializes the keys of `config` that start with `prefix` (prefix removed) into a `T`.
///
/// `prefix` must end with a dot (`"foo."`). Every error is a [`ConfigurationError`] naming the
/// full key: a missing required field is `{prefix}{field}: required key is missing`, a value
/// that does not parse says what was expected, and, when `T` has
/// `#[serde(deny_unknown_fields)]`, an unknown key under the prefix is reported with the keys
/// that were expected. Values of secret-looking keys (`…password`, `…secret`, `…token`,
/// `…credential`) and URL passwords are never echoed in a reason.
///
/// ```
/// use std::num::NonZeroU32;
/// use baseplate_redis::config::{from_config, RawConfig, RedisUrl, Timespan};
///
/// #[derive(serde::Deserialize)]
/// #[serde(deny_unknown_fields)]
/// struct ClientConfig {
///     url: RedisUrl,
///     max_connections: Option<NonZeroU32>,
///     socket_timeout: Option<Timespan>,
/// }
///
/// let raw = RawConfig::from_pairs([
///     ("foo.url", "redis://localhost:6379/0"),
///     ("foo.socket_timeout", "200 milliseconds"),
/// ]);
/// let config: ClientConfig = from_config(&raw, "foo.").unwrap();
/// assert_eq!(config.url.db(), 0);
/// assert_eq!(config.max_connections, None);
/// assert_eq!(config.socket_timeout.unwrap().as_duration().as_millis(), 200);
///
/// let err = from_config::<ClientConfig>(&RawConfig::new(), "foo.").err().unwrap();
/// assert_eq!(err.to_string(), "foo.url: required key is missing");
///
/// let raw = RawConfig::from_pairs([("foo.url", "redis://h"), ("foo.max_connections", "0")]);
/// let err = from_config::<ClientConfig>(&raw, "foo.").err().unwrap();
/// assert_eq!(err.key(), "foo.max_connections");
/// ```
pub fn from_config<T: de::DeserializeOwned>(
    config: &RawConfig,
    prefix: &str,
) -> Result<T, ConfigurationError> {
    deserialize(config, prefix).map(|(value, _)| value)
}

/// Deserializes the keys under `prefix` into a `T` as [`from_config`] does, and deals with
/// the keys under the prefix that `T` does not read as `unknown_keys` says: with
/// [`UnknownKeys::Warn`], one `tracing` warning per key naming the closest known key (as
/// baseplate.py's `SpecParser` reads its spec's keys and ignores the rest, never failing a
/// start-up for them); with [`UnknownKeys::Deny`], a [`ConfigurationError`] naming the key.
///
/// ```
/// use baseplate_redis::config::{from_config_checked, RawConfig, UnknownKeys};
///
/// #[derive(serde::Deserialize)]
/// struct ClientConfig {
///     url: String,
///     max_connections: Option<u32>,
/// }
///
/// let raw = RawConfig::from_pairs([("foo.url", "redis://h"), ("foo.max_conections", "9")]);
/// // Warned about ("closest known key: foo.max_connections"), then ignored.
/// let config: ClientConfig = from_config_checked(&raw, "foo.", UnknownKeys::Warn).unwrap();
/// assert_eq!(config.max_connections, None);
///
/// let err = from_config_checked::<ClientConfig>(&raw, "foo.", UnknownKeys::Deny)
///     .err()
///     .unwrap();
/// assert_eq!(err.key(), "foo.max_conections");
/// assert!(err.reason().contains("did you mean foo.max_connections?"));
/// ```
pub fn from_config_checked<T: de::DeserializeOwned>(
    config: &RawConfig,
    prefix: &str,
    unknown_keys: UnknownKeys,
) -> Result<T, ConfigurationError> {
    let (value, unknown) = deserialize(config, prefix)?;
    unknown_keys.apply(&unknown)?;
    Ok(value)
}

/// Deserializes a `T`, with the keys it did not read.
fn deserialize<T: de::DeserializeOwned>(
    config: &RawConfig,
    prefix: &str,
) -> Result<(T, Vec<UnknownKey>), ConfigurationError> {
    if prefix.is_empty() {
        return Err(ConfigurationError::new(
            prefix,
            "the config prefix is empty; it must be a name ending with a dot, such as \"foo.\"",
        ));
    }
    if !prefix.ends_with('.') {
        return Err(ConfigurationError::new(
            prefix,
            format!("the config prefix must end with a dot, such as \"{prefix}.\""),
        ));
    }
    let unknown = Unknowns::default();
    let branch = Branch {
        path: prefix.to_owned(),
        entries: config.with_prefix(prefix).collect(),
        unknown: unknown.clone(),
    };
    let value = T::deserialize(branch).map_err(|err| {
        let err = err.locate_in(prefix);
        let key = err.key.unwrap_or_else(|| prefix.to_owned());
        ConfigurationError::new(key, err.reason)
    })?;
    let unknown = std::mem::take(&mut *unknown.borrow_mut());
    Ok((value, unknown))
}

/// The keys no struct field read, gathered while deserializing.
type Unknowns = Rc<RefCell<Vec<UnknownKey>>>;

/// The deserializer's error: a reason, and the full key once known.
#[derive(Debug)]
struct Error {
    key: Option<String>,
    reason: String,
    /// Set by `missing_field`: the field, to be joined to the struct's path.
    missing: Option<String>,
    /// Set by `unknown_field`: the expected fields, to be joined to the struct's path.
    expected: Option<&'static [&'static str]>,
}

impl Error {
    fn new(reason: impl Into<String>) -> Error {
        Error {
            key: None,
            reason: reason.into(),
            missing: None,
            expected: None,
        }
    }

    /// Names the key of a missing field of the struct at `path` (which ends with a dot).
    fn locate_in(mut self, path: &str) -> Error {
        if self.key.is_none() {
            if let Some(field) = self.missing.take() {
                self.key = Some(format!("{path}{field}"));
            }
        }
        self
    }

    /// Names the key of an error from the value `value` of `key`, hiding secrets.
    fn at(mut self, key: &str, value: &str) -> Error {
        if self.key.is_none() {
            self.reason = scrub(&self.reason, key, value);
            self.key = Some(key.to_owned());
        }
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(key) => write!(f, "{key}: {}", self.reason),
            None => f.write_str(&self.reason),
        }
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error::new(msg.to_string())
    }

    fn invalid_type(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        Error::new(format!("expected {exp}, got {unexp}"))
    }

    fn invalid_value(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        Error::new(format!("expected {exp}, got {unexp}"))
    }

    fn invalid_length(len: usize, exp: &dyn de::Expected) -> Self {
        Error::new(format!("expected {exp}, got {len} item(s)"))
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        Error::new(format!(
            "unknown value {variant:?} (expected one of: {})",
            expected.join(", ")
        ))
    }

    fn unknown_field(_field: &str, expected: &'static [&'static str]) -> Self {
        Error {
            expected: Some(expected),
            ..Error::new("unknown key")
        }
    }

    fn missing_field(field: &'static str) -> Self {
        Error {
            missing: Some(field.to_owned()),
            ..Error::new("required key is missing")
        }
    }

    fn duplicate_field(_field: &'static str) -> Self {
        Error::new("the key is given twice (once as a value and once with sub-keys)")
    }
}

/// Removes from a reason anything of `value` that must not be printed.
fn scrub(reason: &str, key: &str, value: &str) -> String {
    let mut secrets: Vec<&str> = Vec::new();
    if is_secret_key(key) {
        secrets.push(value);
        secrets.extend(
            value
                .split(|c: char| c.is_whitespace() || c == ',')
                .filter(|w| w.len() >= 3),
        );
    }
    let password = url::Url::parse(value)
        .ok()
        .and_then(|url| url.password().map(str::to_owned));
    let mut out = reason.to_owned();
    if let Some(password) = &password {
        out = out.replace(value, &display_value(key, value));
        secrets.push(password);
    }
    secrets.retain(|s| !s.is_empty());
    // Longest first, so a word inside the whole value does not leave the rest behind.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for secret in secrets {
        out = out.replace(secret, "<redacted>");
    }
    out
}

/// The keys under a path (relative), deserialized as a struct or a map.
struct Branch<'a> {
    /// The full path, ending with a dot (`foo.` or `foo.pool.`).
    path: String,
    entries: Vec<(&'a str, &'a str)>,
    unknown: Unknowns,
}

/// One entry of a branch as the visitor sees it: a value, or a group of sub-keys.
enum Node<'a> {
    Leaf(Leaf<'a>),
    Branch(Branch<'a>),
}

impl<'a> Branch<'a> {
    fn leaf(&self, relative: &str, value: &'a str) -> Node<'a> {
        Node::Leaf(Leaf {
            key: format!("{}{relative}", self.path),
            value,
        })
    }

    fn full_key(&self) -> &str {
        self.path.strip_suffix('.').unwrap_or(&self.path)
    }

    /// Groups the entries by the struct's fields: `size` is a value; `pool.size` goes into the
    /// `pool` group when `pool` is a field; anything else is left as is (an unknown key).
    fn group(self, fields: &'static [&'static str]) -> Vec<(String, Node<'a>)> {
        let mut items: Vec<(String, Node<'a>)> = Vec::new();
        for &(relative, value) in &self.entries {
            if fields.contains(&relative) {
                items.push((relative.to_owned(), self.leaf(relative, value)));
                continue;
            }
            let field = fields
                .iter()
                .filter(|f| {
                    relative
                        .strip_prefix(**f)
                        .is_some_and(|rest| rest.starts_with('.'))
                })
                .max_by_key(|f| f.len());
            let Some(field) = field else {
                self.unknown.borrow_mut().push(UnknownKey::new(
                    format!("{}{relative}", self.path),
                    fields.iter().map(|f| format!("{}{f}", self.path)).collect(),
                ));
                items.push((relative.to_owned(), self.leaf(relative, value)));
                continue;
            };
            let sub_key = &relative[field.len() + 1..];
            let existing = items.iter_mut().find_map(|(name, node)| match node {
                Node::Branch(branch) if name == field => Some(branch),
                _ => None,
            });
            match existing {
                Some(branch) => branch.entries.push((sub_key, value)),
                None => items.push((
                    (*field).to_owned(),
                    Node::Branch(Branch {
                        path: format!("{}{field}.", self.path),
                        entries: vec![(sub_key, value)],
                        unknown: self.unknown.clone(),
                    }),
                )),
            }
        }
        items
    }

    fn into_map(self) -> BranchMap<'a> {
        let items = self
            .entries
            .iter()
            .map(|&(relative, value)| (relative.to_owned(), self.leaf(relative, value)))
            .collect::<Vec<_>>();
        BranchMap {
            path: self.path,
            items: items.into_iter(),
            value: None,
        }
    }

    fn not_a_value(&self) -> Error {
        Error {
            key: Some(self.full_key().to_owned()),
            ..Error::new(format!(
                "expected a single value, but found sub-keys ({}…)",
                self.path
            ))
        }
    }
}

struct BranchMap<'a> {
    path: String,
    items: std::vec::IntoIter<(String, Node<'a>)>,
    value: Option<Node<'a>>,
}

impl<'de> MapAccess<'de> for BranchMap<'de> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let Some((name, node)) = self.items.next() else {
            return Ok(None);
        };
        let full_key = match &node {
            Node::Leaf(leaf) => leaf.key.clone(),
            Node::Branch(branch) => branch.full_key().to_owned(),
        };
        self.value = Some(node);
        let key_de: de::value::StringDeserializer<Error> = name.into_deserializer();
        seed.deserialize(key_de).map(Some).map_err(|mut err| {
            if let Some(expected) = err.expected.take() {
                let expected: Vec<String> = expected
                    .iter()
                    .map(|f| format!("{}{f}", self.path))
                    .collect();
                err.reason = format!(
                    "{} (expected one of: {})",
                    err.reason,
                    if expected.is_empty() {
                        "no keys".to_owned()
                    } else {
                        expected.join(", ")
                    }
                );
            }
            err.key = Some(full_key);
            err
        })
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        match self.value.take() {
            Some(Node::Leaf(leaf)) => {
                let (key, value) = (leaf.key.clone(), leaf.value);
                seed.deserialize(leaf).map_err(|err| err.at(&key, value))
            }
            Some(Node::Branch(branch)) => {
                let key = branch.full_key().to_owned();
                seed.deserialize(branch).map_err(|err| err.at(&key, ""))
            }
            None => Err(Error::new(
                "internal error: a value was asked for before its key",
            )),
        }
    }
}

macro_rules! branch_not_a_value {
    ($($method:ident)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Error> {
                Err(self.not_a_value())
            }
        )*
    };
}

impl<'de> de::Deserializer<'de> for Branch<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_map(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let path = self.path.clone();
        visitor
            .visit_map(self.into_map())
            .map_err(|err| err.locate_in(&path))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let path = self.path.clone();
        let items = self.group(fields);
        let map = BranchMap {
            path: path.clone(),
            items: items.into_iter(),
            value: None,
        };
        visitor.visit_map(map).map_err(|err| err.locate_in(&path))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _visitor: V,
    ) -> Result<V::Value, Error> {
        Err(self.not_a_value())
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        _visitor: V,
    ) -> Result<V::Value, Error> {
        Err(self.not_a_value())
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        _visitor: V,
    ) -> Result<V::Value, Error> {
        Err(self.not_a_value())
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Error> {
        Err(self.not_a_value())
    }

    branch_not_a_value! {
        deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64
        deserialize_u128 deserialize_f32 deserialize_f64 deserialize_char deserialize_str
        deserialize_string deserialize_bytes deserialize_byte_buf deserialize_unit
        deserialize_seq deserialize_identifier
    }
}

/// One value, with its full key (for messages).
struct Leaf<'a> {
    key: String,
    value: &'a str,
}

impl Leaf<'_> {
    /// The value as it may appear in a message.
    fn shown(&self) -> Cow<'_, str> {
        display_value(&self.key, self.value)
    }

    fn expected(&self, what: &str) -> Error {
        Error::new(format!("expected {what}, got {:?}", self.shown()))
    }

    fn parse_int<T>(&self, signed: bool) -> Result<T, Error>
    where
        T: std::str::FromStr + Bounded,
    {
        self.value.parse::<T>().map_err(|_| {
            let digits = self.value.strip_prefix(['-', '+']).unwrap_or(self.value);
            let numeric = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
            let negative = self.value.starts_with('-');
            if numeric && (signed || !negative) {
                let (min, max) = T::range();
                self.expected(&format!("an integer between {min} and {max}"))
            } else if signed {
                self.expected("an integer")
            } else {
                self.expected("a non-negative integer")
            }
        })
    }

    fn parse_bool(&self) -> Result<bool, Error> {
        match self.value.to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" => Ok(true),
            "false" | "no" | "off" | "0" => Ok(false),
            _ => Err(self.expected("a boolean (true/false, yes/no, on/off or 1/0)")),
        }
    }

    fn parse_float<T: std::str::FromStr>(&self) -> Result<T, Error> {
        self.value.parse().map_err(|_| self.expected("a number"))
    }

    fn not_a_branch(&self) -> Error {
        Error::new(format!(
            "expected sub-keys ({}.…), but found a single value",
            self.key
        ))
    }
}

/// The range of an integer type, for messages.
trait Bounded {
    fn range() -> (String, String);
}

macro_rules! bounded {
    ($($t:ty)*) => {
        $(
            impl Bounded for $t {
                fn range() -> (String, String) {
                    (<$t>::MIN.to_string(), <$t>::MAX.to_string())
                }
            }
        )*
    };
}

bounded! { i8 i16 i32 i64 i128 isize u8 u16 u32 u64 u128 usize }

macro_rules! leaf_int {
    ($($method:ident $visit:ident $t:ty, $signed:expr;)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
                visitor.$visit(self.parse_int::<$t>($signed)?)
            }
        )*
    };
}

impl<'de> de::Deserializer<'de> for Leaf<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_borrowed_str(self.value)
    }

    leaf_int! {
        deserialize_i8 visit_i8 i8, true;
        deserialize_i16 visit_i16 i16, true;
        deserialize_i32 visit_i32 i32, true;
        deserialize_i64 visit_i64 i64, true;
        deserialize_i128 visit_i128 i128, true;
        deserialize_u8 visit_u8 u8, false;
        deserialize_u16 visit_u16 u16, false;
        deserialize_u32 visit_u32 u32, false;
        deserialize_u64 visit_u64 u64, false;
        deserialize_u128 visit_u128 u128, false;
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_bool(self.parse_bool()?)
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_f32(self.parse_float()?)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_f64(self.parse_float()?)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let mut chars = self.value.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => visitor.visit_char(c),
            _ => Err(self.expected("a single character")),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_borrowed_str(self.value)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_borrowed_str(self.value)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_borrowed_str(self.value)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_borrowed_bytes(self.value.as_bytes())
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_borrowed_bytes(self.value.as_bytes())
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        // baseplate's Optional: an empty value means "not set".
        if self.value.is_empty() {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        if self.value.is_empty() {
            visitor.visit_unit()
        } else {
            Err(self.expected("an empty value"))
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let items: Vec<&str> = if self.value.trim().is_empty() {
            Vec::new()
        } else {
            self.value.split(',').map(str::trim).collect()
        };
        visitor.visit_seq(LeafSeq {
            key: self.key,
            items: items.into_iter(),
        })
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Error> {
        Err(self.not_a_branch())
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Error> {
        Err(self.not_a_branch())
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_enum(de::value::BorrowedStrDeserializer::new(self.value))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }
}

/// The comma-separated items of one value.
struct LeafSeq<'a> {
    key: String,
    items: std::vec::IntoIter<&'a str>,
}

impl<'de> SeqAccess<'de> for LeafSeq<'de> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        match self.items.next() {
            None => Ok(None),
            Some(value) => seed
                .deserialize(Leaf {
                    key: self.key.clone(),
                    value,
                })
                .map(Some),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::num::NonZeroU32;
    use std::time::Duration;

    use serde::Deserialize;

    use super::*;
    use crate::config::{RedisUrl, Timespan};

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Client {
        url: RedisUrl,
        max_connections: Option<NonZeroU32>,
        socket_timeout: Option<Timespan>,
    }

    fn load<T: de::DeserializeOwned>(
        pairs: &[(&str, &str)],
        prefix: &str,
    ) -> Result<T, ConfigurationError> {
        from_config(&RawConfig::from_pairs(pairs.iter().copied()), prefix)
    }

    #[test]
    fn loads_a_client_config() {
        let client: Client = load(
            &[
                ("foo.url", "redis://h:1/2"),
                ("foo.max_connections", "99"),
                ("foo.socket_timeout", "200 milliseconds"),
                ("bar.url", "ignored"),
            ],
            "foo.",
        )
        .unwrap();
        assert_eq!(client.url.db(), 2);
        assert_eq!(client.max_connections, NonZeroU32::new(99));
        assert_eq!(
            client.socket_timeout,
            Some(Timespan(Duration::from_millis(200)))
        );
    }

    #[test]
    fn prefix_must_end_with_a_dot() {
        let err = load::<Client>(&[("foo.url", "redis://h")], "foo").unwrap_err();
        assert_eq!(err.key(), "foo");
        assert!(err.reason().contains("end with a dot"), "{err}");
        let err = load::<Client>(&[], "").unwrap_err();
        assert_eq!(err.key(), "");
        assert!(err.reason().contains("empty"), "{err}");
    }

    #[test]
    fn missing_and_bad_values_name_the_full_key() {
        let err = load::<Client>(&[], "foo.").unwrap_err();
        assert_eq!(
            (err.key(), err.reason()),
            ("foo.url", "required key is missing")
        );

        for (value, needle) in [
            ("0", "nonzero"),
            ("abc", "expected a non-negative integer, got \"abc\""),
            ("-3", "non-negative"),
            ("99999999999", "between 0 and 4294967295"),
        ] {
            let err = load::<Client>(
                &[("foo.url", "redis://h"), ("foo.max_connections", value)],
                "foo.",
            )
            .unwrap_err();
            assert_eq!(err.key(), "foo.max_connections", "{value}");
            assert!(err.reason().contains(needle), "{value}: {err}");
        }
        let err = load::<Client>(
            &[
                ("foo.url", "redis://h"),
                ("foo.socket_timeout", "10 florgles"),
            ],
            "foo.",
        )
        .unwrap_err();
        assert_eq!(err.key(), "foo.socket_timeout");
        assert!(err.reason().contains("florgles"), "{err}");
        let err = load::<Client>(&[("foo.url", "http://h")], "foo.").unwrap_err();
        assert_eq!(err.key(), "foo.url");
        assert!(err.reason().contains("unknown scheme"), "{err}");
    }

    #[test]
    fn unknown_keys_list_the_expected_ones() {
        let err =
            load::<Client>(&[("foo.url", "redis://h"), ("foo.bogus", "1")], "foo.").unwrap_err();
        assert_eq!(err.key(), "foo.bogus");
        assert!(err.reason().starts_with("unknown key"), "{err}");
        assert!(
            err.reason()
                .contains("foo.url, foo.max_connections, foo.socket_timeout"),
            "{err}"
        );
    }

    #[test]
    fn empty_optional_is_none() {
        let client: Client = load(
            &[("foo.url", "redis://h"), ("foo.max_connections", "")],
            "foo.",
        )
        .unwrap();
        assert_eq!(client.max_connections, None);
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Scalars {
        a: u8,
        b: i64,
        c: f64,
        d: bool,
        e: String,
        f: char,
        g: Vec<u16>,
        h: Mode,
        i: Wrapper,
        j: usize,
        #[serde(default)]
        k: Option<bool>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "lowercase")]
    enum Mode {
        Fast,
        Slow,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Wrapper(u32);

    #[test]
    fn scalar_types() {
        let s: Scalars = load(
            &[
                ("x.a", "255"),
                ("x.b", "-42"),
                ("x.c", "1.5"),
                ("x.d", "YES"),
                ("x.e", "hello world"),
                ("x.f", "z"),
                ("x.g", "1, 2,3"),
                ("x.h", "slow"),
                ("x.i", "7"),
                ("x.j", "8"),
            ],
            "x.",
        )
        .unwrap();
        assert_eq!(
            s,
            Scalars {
                a: 255,
                b: -42,
                c: 1.5,
                d: true,
                e: "hello world".into(),
                f: 'z',
                g: vec![1, 2, 3],
                h: Mode::Slow,
                i: Wrapper(7),
                j: 8,
                k: None,
            }
        );
    }

    #[test]
    fn booleans() {
        #[derive(Deserialize)]
        struct B {
            b: bool,
        }
        for (text, want) in [
            ("true", true),
            ("True", true),
            ("yes", true),
            ("on", true),
            ("1", true),
            ("false", false),
            ("No", false),
            ("OFF", false),
            ("0", false),
        ] {
            assert_eq!(load::<B>(&[("p.b", text)], "p.").unwrap().b, want, "{text}");
        }
        let err = load::<B>(&[("p.b", "maybe")], "p.").err().unwrap();
        assert_eq!(err.key(), "p.b");
        assert!(err.reason().contains("boolean"), "{err}");
    }

    #[test]
    fn bad_enum_value_lists_the_variants() {
        #[derive(Debug, Deserialize)]
        struct E {
            #[allow(dead_code)]
            m: Mode,
        }
        let err = load::<E>(&[("p.m", "medium")], "p.").unwrap_err();
        assert_eq!(err.key(), "p.m");
        assert!(err.reason().contains("fast, slow"), "{err}");
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        name: String,
        pool: Pool,
        extra: Option<Pool>,
        #[serde(default)]
        labels: BTreeMap<String, String>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Pool {
        size: u32,
        timeout: Option<Timespan>,
    }

    #[test]
    fn nested_structs_read_dotted_sub_keys() {
        let outer: Outer = load(
            &[
                ("foo.name", "n"),
                ("foo.pool.size", "4"),
                ("foo.pool.timeout", "1 second"),
                ("foo.labels.a.b", "x"),
                ("foo.labels.c", "y"),
            ],
            "foo.",
        )
        .unwrap();
        assert_eq!(outer.pool.size, 4);
        assert_eq!(outer.pool.timeout, Some(Timespan(Duration::from_secs(1))));
        assert_eq!(outer.extra, None);
        assert_eq!(outer.labels.get("a.b").map(String::as_str), Some("x"));
        assert_eq!(outer.labels.len(), 2);

        let err = load::<Outer>(&[("foo.name", "n")], "foo.").unwrap_err();
        assert_eq!(err.key(), "foo.pool");
        let err = load::<Outer>(
            &[("foo.name", "n"), ("foo.pool.timeout", "1 second")],
            "foo.",
        )
        .unwrap_err();
        assert_eq!(
            (err.key(), err.reason()),
            ("foo.pool.size", "required key is missing")
        );
        let err = load::<Outer>(&[("foo.name", "n"), ("foo.pool.size", "x")], "foo.").unwrap_err();
        assert_eq!(err.key(), "foo.pool.size");
        let err = load::<Outer>(
            &[
                ("foo.name", "n"),
                ("foo.pool.size", "1"),
                ("foo.pool.bogus", "1"),
            ],
            "foo.",
        )
        .unwrap_err();
        assert_eq!(err.key(), "foo.pool.bogus");
        assert!(
            err.reason().contains("foo.pool.size, foo.pool.timeout"),
            "{err}"
        );
        let err =
            load::<Outer>(&[("foo.name.x", "n"), ("foo.pool.size", "1")], "foo.").unwrap_err();
        assert_eq!(err.key(), "foo.name");
        assert!(err.reason().contains("sub-keys"), "{err}");
        let err = load::<Outer>(&[("foo.name", "n"), ("foo.pool", "1")], "foo.").unwrap_err();
        assert_eq!(err.key(), "foo.pool");
        assert!(err.reason().contains("sub-keys"), "{err}");
    }

    #[test]
    fn secrets_never_appear_in_reasons() {
        #[derive(Debug, Deserialize)]
        struct S {
            #[allow(dead_code)]
            password: u32,
            #[allow(dead_code)]
            url: Option<u32>,
            #[allow(dead_code)]
            mode: Option<Mode>,
            #[allow(dead_code)]
            api_token: Option<Mode>,
        }
        let err = load::<S>(&[("s.password", "hunter2")], "s.").unwrap_err();
        assert_eq!(err.key(), "s.password");
        assert!(!err.reason().contains("hunter2"), "{err}");
        let err = load::<S>(
            &[("s.password", "1"), ("s.url", "redis://u:hunter2@h")],
            "s.",
        )
        .unwrap_err();
        assert_eq!(err.key(), "s.url");
        assert!(!err.reason().contains("hunter2"), "{err}");
        assert!(err.reason().contains("redis://u:***@h"), "{err}");
        let err = load::<S>(
            &[("s.password", "1"), ("s.mode", "redis://u:hunter2@h")],
            "s.",
        )
        .unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let err =
            load::<S>(&[("s.password", "1"), ("s.api_token", "hunter2 x")], "s.").unwrap_err();
        assert_eq!(err.key(), "s.api_token");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}
