//! Redis URLs: parsed and validated once, printed only with the password hidden.
//!
//! Accepted forms (the same as redis-rs, plus an in-process `memory://` backend):
//!
//! | URL | meaning |
//! |---|---|
//! | `redis://[user:pass@]host[:port][/db][?db=N]` | TCP, port 6379 and db 0 by default |
//! | `rediss://…` | the same over TLS |
//! | `unix:///path/to.sock[?db=N][&user=U][&pass=P]` | a Unix socket (`redis+unix://` too) |
//! | `memory://[name][/db]` | the in-process backend; name `default` by default |
//! | `redis+sentinel://[user:pass@]host[:port][,host[:port]…]/service[/db]` | the primary of `service`, found through the listed sentinels (port 26379 by default); the credentials and db are the primary's |
//!
//! `?protocol=resp2|resp3` (or `2|3`) is accepted everywhere, as in redis-rs.

use std::borrow::Cow;
use std::fmt;
use std::path::PathBuf;

/// The port used when a `redis://` or `rediss://` URL does not give one.
pub const DEFAULT_PORT: u16 = 6379;

/// The name of a `memory://` backend when the URL does not give one.
pub const DEFAULT_MEMORY_NAME: &str = "default";

/// The port of a sentinel in a `redis+sentinel://` URL that does not give one.
pub const DEFAULT_SENTINEL_PORT: u16 = 26379;

/// What the password is replaced with in printed URLs.
const MASK: &str = "***";

/// Why a Redis URL was rejected.
///
/// Messages never contain the password (nor the raw URL, which may hold one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// The text is not a URL at all.
    #[error("not a URL: {0}")]
    NotAUrl(url::ParseError),
    /// The scheme is not one we can connect with.
    #[error(
        "unknown scheme {0:?} (expected redis://, rediss://, unix://, redis+unix://, redis+sentinel:// or memory://)"
    )]
    UnknownScheme(String),
    /// A TCP URL without a host name.
    #[error("missing host")]
    MissingHost,
    /// The port is not a number in 1..=65535.
    #[error("invalid port")]
    InvalidPort,
    /// The database is not a non-negative integer.
    #[error("database must be a non-negative integer, got {0:?}")]
    InvalidDatabase(String),
    /// The database is given both in the path and in `?db=`, differently.
    #[error("the database is given twice, differently (in the path and in ?db=)")]
    ConflictingDatabase,
    /// A Unix-socket URL without a socket path, or with a relative one.
    #[error("missing socket path (expected e.g. unix:///run/redis.sock)")]
    MissingPath,
    /// A Unix-socket URL that names a host.
    #[error("a unix:// URL must not name a host (expected e.g. unix:///run/redis.sock)")]
    UnexpectedHost,
    /// A query parameter we do not understand.
    #[error("unsupported query parameter {0:?} (supported: {1})")]
    UnsupportedParameter(String, &'static str),
    /// `?protocol=` is neither `resp2`/`2` nor `resp3`/`3`.
    #[error("protocol must be resp2 or resp3, got {0:?}")]
    InvalidProtocol(String),
    /// The URL has a `#fragment` (redis-rs's `#insecure` is deliberately not supported).
    #[error("URL fragments (such as #insecure) are not supported")]
    Fragment,
    /// The user name or password is not valid percent-encoded UTF-8.
    #[error("the {0} is not valid percent-encoded UTF-8")]
    InvalidCredentials(&'static str),
    /// A `redis+sentinel://` URL without the service (master) name in its path.
    #[error("missing service name (expected e.g. redis+sentinel://host:26379/mymaster/0)")]
    MissingServiceName,
    /// The URL is valid but cannot be turned into a network connection (`memory://`), or this
    /// build cannot connect that way (TLS without a TLS feature, Unix sockets off Unix).
    #[error("{0}")]
    Unsupported(&'static str),
}

impl UrlError {
    /// Drops any echoed text that contains `secret` (a password in an odd place of the URL).
    fn hiding(self, secret: Option<&str>) -> UrlError {
        let Some(secret) = secret.filter(|s| !s.is_empty()) else {
            return self;
        };
        let hide = |text: String| {
            if text.contains(secret) {
                "<not shown>".to_owned()
            } else {
                text
            }
        };
        match self {
            UrlError::UnknownScheme(t) => UrlError::UnknownScheme(hide(t)),
            UrlError::InvalidDatabase(t) => UrlError::InvalidDatabase(hide(t)),
            UrlError::UnsupportedParameter(t, s) => UrlError::UnsupportedParameter(hide(t), s),
            UrlError::InvalidProtocol(t) => UrlError::InvalidProtocol(hide(t)),
            other => other,
        }
    }
}

/// Where a [`RedisUrl`] points.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UrlKind {
    /// A server over TCP (`redis://`), or over TLS (`rediss://`).
    Tcp {
        /// Host name or IP address (IPv6 without brackets).
        host: String,
        /// Port (6379 unless given).
        port: u16,
        /// Whether the connection uses TLS.
        tls: bool,
    },
    /// A server on a Unix socket (`unix://`, `redis+unix://`).
    Unix {
        /// The socket's path.
        path: PathBuf,
    },
    /// The primary of a service monitored by Redis Sentinel
    /// (`redis+sentinel://host:port,host:port/service`): the sentinels are asked where it is,
    /// and asked again after a failover.
    Sentinel {
        /// The sentinels' host names (IPv6 without brackets) and ports.
        sentinels: Vec<(String, u16)>,
        /// The service (master) name the sentinels monitor.
        service: String,
    },
    /// The in-process backend (`memory://name`).
    Memory {
        /// The backend's name (`default` unless given); equal names share data.
        name: String,
    },
}

/// A validated Redis URL.
///
/// `Debug` and `Display` print [`redacted`](RedisUrl::redacted), never the password.
///
/// ```
/// use baseplate_redis::config::{RedisUrl, UrlKind};
///
/// let url = RedisUrl::parse("redis://user:secret@cache.local:6380/2").unwrap();
/// assert_eq!(url.db(), 2);
/// assert_eq!(url.password(), Some("secret"));
/// assert_eq!(url.address(), "cache.local:6380");
/// assert_eq!(url.to_string(), "redis://user:***@cache.local:6380/2");
/// assert!(matches!(url.scheme_kind(), UrlKind::Tcp { port: 6380, tls: false, .. }));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl {
    kind: UrlKind,
    db: i64,
    username: Option<String>,
    password: Option<String>,
    resp3: bool,
    redacted: String,
}

impl RedisUrl {
    /// Parses and validates `text`.
    pub fn parse(text: &str) -> Result<RedisUrl, UrlError> {
        if let Some(rest) = strip_prefix_ignore_case(text, SENTINEL_SCHEME) {
            return parse_sentinel(rest);
        }
        let url = url::Url::parse(text).map_err(|err| match err {
            url::ParseError::InvalidPort => UrlError::InvalidPort,
            url::ParseError::EmptyHost => UrlError::MissingHost,
            other => UrlError::NotAUrl(other),
        })?;
        if url.fragment().is_some() {
            return Err(UrlError::Fragment);
        }
        let parsed = match url.scheme() {
            "redis" => parse_tcp(&url, false),
            "rediss" => parse_tcp(&url, true),
            "unix" | "redis+unix" => parse_unix(&url),
            "memory" => parse_memory(&url),
            other => Err(UrlError::UnknownScheme(shown(other))),
        };
        parsed.map_err(|err| err.hiding(url.password()))
    }

    /// Where the URL points.
    pub fn scheme_kind(&self) -> UrlKind {
        self.kind.clone()
    }

    /// The database number (0 unless given).
    pub fn db(&self) -> i64 {
        self.db
    }

    /// The user name (percent-decoded), if any.
    pub fn username(&self) -> Option<&str> {
        self.username.as_deref()
    }

    /// The password (percent-decoded), if any. Handle with care: nothing else here prints it.
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// Whether `?protocol=resp3` was asked for.
    pub fn is_resp3(&self) -> bool {
        self.resp3
    }

    /// Whether this is the in-process `memory://` backend.
    pub fn is_memory(&self) -> bool {
        matches!(self.kind, UrlKind::Memory { .. })
    }

    /// The URL with its password (if any) replaced by `***`.
    pub fn redacted(&self) -> String {
        self.redacted.clone()
    }

    /// `host:port`, the socket path, or `memory://name`; never credentials.
    pub fn address(&self) -> String {
        match &self.kind {
            UrlKind::Tcp { host, port, .. } if host.contains(':') => format!("[{host}]:{port}"),
            UrlKind::Tcp { host, port, .. } => format!("{host}:{port}"),
            UrlKind::Unix { path } => path.display().to_string(),
            UrlKind::Memory { name } => format!("memory://{name}"),
            UrlKind::Sentinel { sentinels, service } => {
                let hosts: Vec<String> = sentinels.iter().map(|(h, p)| host_port(h, *p)).collect();
                format!("{service} via sentinels {}", hosts.join(","))
            }
        }
    }

    /// The redis-rs connection info (address, db, user name, password, protocol).
    ///
    /// Fails for `memory://` URLs, for `rediss://` when redis-rs was built without a TLS
    /// feature, and for Unix sockets on platforms without them.
    pub fn to_connection_info(&self) -> Result<redis::ConnectionInfo, UrlError> {
        use redis::IntoConnectionInfo as _;

        let addr = match &self.kind {
            UrlKind::Tcp {
                host,
                port,
                tls: false,
            } => redis::ConnectionAddr::Tcp(host.clone(), *port),
            UrlKind::Tcp {
                host,
                port,
                tls: true,
            } => {
                let addr = redis::ConnectionAddr::TcpTls {
                    host: host.clone(),
                    port: *port,
                    insecure: false,
                    tls_params: None,
                };
                if !addr.is_supported() {
                    return Err(UrlError::Unsupported(
                        "rediss:// needs redis-rs built with the tls-rustls or tls-native-tls feature",
                    ));
                }
                addr
            }
            UrlKind::Unix { path } => {
                let addr = redis::ConnectionAddr::Unix(path.clone());
                if !addr.is_supported() {
                    return Err(UrlError::Unsupported(
                        "unix sockets are not supported on this platform",
                    ));
                }
                addr
            }
            UrlKind::Memory { .. } => {
                return Err(UrlError::Unsupported(
                    "memory:// URLs are served in-process and have no network address",
                ))
            }
            UrlKind::Sentinel { .. } => {
                return Err(UrlError::Unsupported(
                    "redis+sentinel:// URLs name sentinels: the server's address comes from them",
                ))
            }
        };
        let info = addr
            .into_connection_info()
            .map_err(|_| UrlError::Unsupported("redis-rs rejected the connection address"))?;
        Ok(info.set_redis_settings(self.redis_settings()))
    }

    /// The redis-rs settings of the server's connections: db, user name, password, protocol.
    pub fn redis_settings(&self) -> redis::RedisConnectionInfo {
        let mut redis_info = redis::RedisConnectionInfo::default().set_db(self.db);
        if let Some(user) = &self.username {
            redis_info = redis_info.set_username(user);
        }
        if let Some(password) = &self.password {
            redis_info = redis_info.set_password(password);
        }
        if self.resp3 {
            redis_info = redis_info.set_protocol(redis::ProtocolVersion::RESP3);
        }
        redis_info
    }
}

impl fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted)
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RedisUrl").field(&self.redacted).finish()
    }
}

impl std::str::FromStr for RedisUrl {
    type Err = UrlError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        RedisUrl::parse(text)
    }
}

impl<'de> serde::Deserialize<'de> for RedisUrl {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;

        impl serde::de::Visitor<'_> for Visitor {
            type Value = RedisUrl;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a Redis URL such as redis://localhost:6379/0")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<RedisUrl, E> {
                RedisUrl::parse(text).map_err(E::custom)
            }
        }

        deserializer.deserialize_str(Visitor)
    }
}

/// Returns `text` with the password of the URL in it replaced by `***`.
///
/// Returns `text` unchanged (borrowed) when it holds no URL password. Text that does not parse
/// as a URL but looks like `scheme://user:pass@…` is redacted too (everything between the
/// first `:` of the user info and the last `@`), so a malformed URL does not leak either.
///
/// ```
/// use baseplate_redis::config::redact_url;
///
/// assert_eq!(redact_url("redis://u:hunter2@host/0"), "redis://u:***@host/0");
/// assert_eq!(redact_url("unix:///r.sock?pass=hunter2"), "unix:///r.sock?pass=***");
/// assert_eq!(redact_url("30 seconds"), "30 seconds");
/// ```
pub fn redact_url(text: &str) -> Cow<'_, str> {
    if let Ok(url) = url::Url::parse(text) {
        let has_secret_query = url.query_pairs().any(|(k, _)| is_secret_query_key(&k));
        if url.password().is_some() || has_secret_query {
            return Cow::Owned(redact_parsed(url));
        }
    }
    redact_heuristic(text)
}

fn is_secret_query_key(key: &str) -> bool {
    key == "pass" || key == "password"
}

/// Replaces the password in the userinfo and in `?pass=`, and wherever else it is repeated.
fn redact_parsed(url: url::Url) -> String {
    let mut secrets: Vec<String> = url
        .query_pairs()
        .filter(|(k, _)| is_secret_query_key(k))
        .map(|(_, v)| v.into_owned())
        .collect();
    if let Some(password) = url.password() {
        secrets.push(password.to_owned());
        secrets.extend(percent_decode(password));
    }
    let redacted = redact_parsed_fields(url);
    secrets
        .iter()
        .filter(|s| !s.is_empty())
        .fold(redacted, |text, secret| text.replace(secret.as_str(), MASK))
}

fn redact_parsed_fields(mut url: url::Url) -> String {
    if url.password().is_some() && url.set_password(Some(MASK)).is_err() {
        // Cannot happen for a URL that has a password, but never fall back to the secret.
        return format!("{}://<redacted>", url.scheme());
    }
    if url.query_pairs().any(|(k, _)| is_secret_query_key(&k)) {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let v = if is_secret_query_key(&k) {
                    MASK.to_owned()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.into()
}

/// For text the URL parser rejects (or reads differently, e.g. an unescaped `/` in the
/// password): hide everything from the userinfo's first `:` to the last `@`.
fn redact_heuristic(text: &str) -> Cow<'_, str> {
    let Some(start) = text.find("://").map(|i| i + 3) else {
        return Cow::Borrowed(text);
    };
    let rest = &text[start..];
    let Some(at) = rest.rfind('@') else {
        return Cow::Borrowed(text);
    };
    let Some(colon) = rest[..at].find(':') else {
        return Cow::Borrowed(text);
    };
    Cow::Owned(format!(
        "{}{}{MASK}{}",
        &text[..start],
        &rest[..=colon],
        &rest[at..]
    ))
}

fn parse_tcp(url: &url::Url, tls: bool) -> Result<RedisUrl, UrlError> {
    let host = match url.host() {
        Some(url::Host::Domain(d)) if !d.is_empty() => d.to_owned(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        _ => return Err(UrlError::MissingHost),
    };
    let port = url.port().unwrap_or(DEFAULT_PORT);
    if port == 0 {
        return Err(UrlError::InvalidPort);
    }
    let query = Query::read(url, false)?;
    let path_db = parse_path_db(url.path())?;
    let db = merge_db(path_db, query.db)?;
    let (username, password) = userinfo(url)?;
    finish(
        url,
        UrlKind::Tcp { host, port, tls },
        db,
        username,
        password,
        query.resp3,
    )
}

fn parse_unix(url: &url::Url) -> Result<RedisUrl, UrlError> {
    match url.host_str() {
        None | Some("") | Some("localhost") => {}
        Some(_) => return Err(UrlError::UnexpectedHost),
    }
    let raw_path = url.path();
    if !raw_path.starts_with('/') || raw_path.len() < 2 {
        return Err(UrlError::MissingPath);
    }
    let path = percent_decode(raw_path).ok_or(UrlError::MissingPath)?;
    let query = Query::read(url, true)?;
    let (user, pass) = userinfo(url)?;
    finish(
        url,
        UrlKind::Unix {
            path: PathBuf::from(path),
        },
        query.db.unwrap_or(0),
        user.or(query.user),
        pass.or(query.pass),
        query.resp3,
    )
}

fn parse_memory(url: &url::Url) -> Result<RedisUrl, UrlError> {
    let name = match url.host_str() {
        None | Some("") => DEFAULT_MEMORY_NAME.to_owned(),
        Some(name) => percent_decode(name).ok_or(UrlError::InvalidCredentials("name"))?,
    };
    let query = Query::read(url, false)?;
    let db = merge_db(parse_path_db(url.path())?, query.db)?;
    let (username, password) = userinfo(url)?;
    finish(
        url,
        UrlKind::Memory { name },
        db,
        username,
        password,
        query.resp3,
    )
}

const SENTINEL_SCHEME: &str = "redis+sentinel://";

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// `redis+sentinel://[user:pass@]host[:port][,host[:port]…]/service[/db][?protocol=…]`, parsed
/// by hand: the URL crate cannot read a comma-separated host list.
fn parse_sentinel(rest: &str) -> Result<RedisUrl, UrlError> {
    if rest.contains('#') {
        return Err(UrlError::Fragment);
    }
    let (rest, query) = match rest.split_once('?') {
        Some((rest, query)) => (rest, Some(query)),
        None => (rest, None),
    };
    let (authority, path) = match rest.find('/') {
        Some(slash) => (&rest[..slash], &rest[slash..]),
        None => (rest, ""),
    };
    let (userinfo, hosts) = match authority.rfind('@') {
        Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
        None => (None, authority),
    };
    let (username, password) = match userinfo {
        None => (None, None),
        Some(info) => {
            let (user, pass) = match info.split_once(':') {
                Some((user, pass)) => (user, Some(pass)),
                None => (info, None),
            };
            let user = match user {
                "" => None,
                user => {
                    Some(percent_decode(user).ok_or(UrlError::InvalidCredentials("user name"))?)
                }
            };
            let pass = match pass {
                None => None,
                Some(pass) => {
                    Some(percent_decode(pass).ok_or(UrlError::InvalidCredentials("password"))?)
                }
            };
            (user, pass)
        }
    };
    let secret = password.clone();
    let hide = |err: UrlError| err.hiding(secret.as_deref());
    let mut sentinels = Vec::new();
    for host in hosts.split(',') {
        sentinels.push(parse_sentinel_host(host).map_err(hide)?);
    }
    let mut segments = path.strip_prefix('/').unwrap_or(path).splitn(2, '/');
    let service = match segments.next() {
        Some(service) if !service.is_empty() => {
            percent_decode(service).ok_or(UrlError::MissingServiceName)?
        }
        _ => return Err(UrlError::MissingServiceName),
    };
    let path_db = match segments.next() {
        None | Some("") => None,
        Some(db) => Some(parse_db(db).map_err(hide)?),
    };
    let query_text = query;
    let query = match query {
        Some(query) => Query::read_pairs(url::form_urlencoded::parse(query.as_bytes()), false),
        None => Ok(Query::default()),
    }
    .map_err(hide)?;
    let db = merge_db(path_db, query.db)?;
    let redacted = match (userinfo, &password) {
        (Some(info), Some(_)) => {
            let user = info.split_once(':').map_or(info, |(user, _)| user);
            let query = query_text.map(|q| format!("?{q}")).unwrap_or_default();
            format!("{SENTINEL_SCHEME}{user}:{MASK}@{hosts}{path}{query}")
        }
        _ => {
            let query = query_text.map(|q| format!("?{q}")).unwrap_or_default();
            format!("{SENTINEL_SCHEME}{rest}{query}")
        }
    };
    Ok(RedisUrl {
        kind: UrlKind::Sentinel { sentinels, service },
        db,
        username,
        password,
        resp3: query.resp3,
        redacted,
    })
}

fn parse_sentinel_host(text: &str) -> Result<(String, u16), UrlError> {
    let (host, port) = if let Some(v6) = text.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or(UrlError::MissingHost)?;
        let port = match after {
            "" => None,
            after => Some(after.strip_prefix(':').ok_or(UrlError::InvalidPort)?),
        };
        (host, port)
    } else {
        match text.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    if host.is_empty() || host.contains(['/', '@', ' ']) {
        return Err(UrlError::MissingHost);
    }
    let port = match port {
        None => DEFAULT_SENTINEL_PORT,
        Some(port) => match port.parse::<u16>() {
            Ok(port) if port != 0 => port,
            _ => return Err(UrlError::InvalidPort),
        },
    };
    Ok((host.to_owned(), port))
}

fn finish(
    url: &url::Url,
    kind: UrlKind,
    db: i64,
    username: Option<String>,
    password: Option<String>,
    resp3: bool,
) -> Result<RedisUrl, UrlError> {
    Ok(RedisUrl {
        kind,
        db,
        username,
        password,
        resp3,
        redacted: redact_parsed(url.clone()),
    })
}

/// The query parameters we understand.
#[derive(Default)]
struct Query {
    db: Option<i64>,
    user: Option<String>,
    pass: Option<String>,
    resp3: bool,
}

impl Query {
    fn read(url: &url::Url, unix: bool) -> Result<Query, UrlError> {
        Self::read_pairs(url.query_pairs(), unix)
    }

    fn read_pairs<'a>(
        pairs: impl Iterator<Item = (Cow<'a, str>, Cow<'a, str>)>,
        unix: bool,
    ) -> Result<Query, UrlError> {
        let supported = if unix {
            "db, user, pass, protocol"
        } else {
            "db, protocol"
        };
        let mut query = Query::default();
        for (key, value) in pairs {
            match &*key {
                "db" => query.db = Some(parse_db(&value)?),
                "protocol" => {
                    query.resp3 = match &*value {
                        "2" | "resp2" => false,
                        "3" | "resp3" => true,
                        other => return Err(UrlError::InvalidProtocol(shown(other))),
                    }
                }
                "user" if unix => query.user = Some(value.into_owned()),
                "pass" if unix => query.pass = Some(value.into_owned()),
                other => {
                    return Err(UrlError::UnsupportedParameter(shown(other), supported));
                }
            }
        }
        Ok(query)
    }
}

fn parse_path_db(path: &str) -> Result<Option<i64>, UrlError> {
    match path.strip_prefix('/').unwrap_or(path) {
        "" => Ok(None),
        db => parse_db(db).map(Some),
    }
}

fn parse_db(text: &str) -> Result<i64, UrlError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(UrlError::InvalidDatabase(shown(text)));
    }
    text.parse::<i64>()
        .map_err(|_| UrlError::InvalidDatabase(shown(text)))
}

fn merge_db(path: Option<i64>, query: Option<i64>) -> Result<i64, UrlError> {
    match (path, query) {
        (Some(a), Some(b)) if a != b => Err(UrlError::ConflictingDatabase),
        (a, b) => Ok(a.or(b).unwrap_or(0)),
    }
}

/// Text from a URL that is safe to echo in a message: short, and with no sign of being part
/// of misplaced credentials (an unescaped `/` in a password ends up in the path).
fn shown(text: &str) -> String {
    let safe = text.len() <= 32 && !text.contains(['@', ':']);
    if safe {
        text.to_owned()
    } else {
        "<not shown>".to_owned()
    }
}

fn userinfo(url: &url::Url) -> Result<(Option<String>, Option<String>), UrlError> {
    let username = match url.username() {
        "" => None,
        user => Some(percent_decode(user).ok_or(UrlError::InvalidCredentials("user name"))?),
    };
    let password = match url.password() {
        None => None,
        Some(pass) => Some(percent_decode(pass).ok_or(UrlError::InvalidCredentials("password"))?),
    };
    Ok((username, password))
}

/// Decodes `%XX` escapes; `None` when the result is not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push((hi * 16 + lo) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(url: &RedisUrl) -> (String, u16, bool) {
        match url.scheme_kind() {
            UrlKind::Tcp { host, port, tls } => (host, port, tls),
            other => panic!("not tcp: {other:?}"),
        }
    }

    #[test]
    fn tcp_urls() {
        let url = RedisUrl::parse("redis://localhost:6379/0").unwrap();
        assert_eq!(tcp(&url), ("localhost".into(), 6379, false));
        assert_eq!(url.db(), 0);
        assert_eq!(url.username(), None);
        assert_eq!(url.password(), None);
        assert_eq!(url.address(), "localhost:6379");
        assert!(!url.is_memory());

        let url = RedisUrl::parse("redis://cache.example").unwrap();
        assert_eq!(tcp(&url), ("cache.example".into(), DEFAULT_PORT, false));
        assert_eq!(url.db(), 0);

        let url = RedisUrl::parse("redis://10.0.0.1:7000/12").unwrap();
        assert_eq!(tcp(&url), ("10.0.0.1".into(), 7000, false));
        assert_eq!(url.db(), 12);

        let url = RedisUrl::parse("redis://[::1]:7001/3").unwrap();
        assert_eq!(tcp(&url), ("::1".into(), 7001, false));
        assert_eq!(url.address(), "[::1]:7001");

        let url = RedisUrl::parse("redis://host/?db=5").unwrap();
        assert_eq!(url.db(), 5);
        let url = RedisUrl::parse("redis://host/5?db=5").unwrap();
        assert_eq!(url.db(), 5);
        let url = RedisUrl::parse("redis://host/").unwrap();
        assert_eq!(url.db(), 0);

        let url = RedisUrl::parse("rediss://host:6380/1").unwrap();
        assert_eq!(tcp(&url), ("host".into(), 6380, true));

        let url = RedisUrl::parse("redis://h?protocol=resp3").unwrap();
        assert!(url.is_resp3());
    }

    #[test]
    fn credentials_are_percent_decoded() {
        let url = RedisUrl::parse("redis://us%40er:p%3Ass%2Fw@host/0").unwrap();
        assert_eq!(url.username(), Some("us@er"));
        assert_eq!(url.password(), Some("p:ss/w"));
        let url = RedisUrl::parse("redis://:only@host").unwrap();
        assert_eq!(url.username(), None);
        assert_eq!(url.password(), Some("only"));
        assert!(matches!(
            RedisUrl::parse("redis://u:%FF@host"),
            Err(UrlError::InvalidCredentials("password"))
        ));
    }

    #[test]
    fn unix_urls() {
        let url = RedisUrl::parse("unix:///run/redis.sock?db=3").unwrap();
        assert_eq!(
            url.scheme_kind(),
            UrlKind::Unix {
                path: PathBuf::from("/run/redis.sock")
            }
        );
        assert_eq!(url.db(), 3);
        assert_eq!(url.address(), "/run/redis.sock");

        let url = RedisUrl::parse("redis+unix:///tmp/r%20s.sock?user=u&pass=hunter2").unwrap();
        assert_eq!(
            url.scheme_kind(),
            UrlKind::Unix {
                path: PathBuf::from("/tmp/r s.sock")
            }
        );
        assert_eq!(url.db(), 0);
        assert_eq!(url.username(), Some("u"));
        assert_eq!(url.password(), Some("hunter2"));
        assert!(!url.to_string().contains("hunter2"), "{url}");
        assert!(!format!("{url:?}").contains("hunter2"), "{url:?}");

        assert_eq!(RedisUrl::parse("unix://"), Err(UrlError::MissingPath));
        assert_eq!(RedisUrl::parse("unix:///"), Err(UrlError::MissingPath));
        assert_eq!(
            RedisUrl::parse("unix:relative.sock"),
            Err(UrlError::MissingPath)
        );
        assert_eq!(
            RedisUrl::parse("unix://host/x.sock"),
            Err(UrlError::UnexpectedHost)
        );
    }

    #[test]
    fn memory_urls() {
        for (text, name, db) in [
            ("memory://", "default", 0),
            ("memory://name", "name", 0),
            ("memory:///3", "default", 3),
            ("memory://name/3", "name", 3),
            ("memory://name/?db=4", "name", 4),
        ] {
            let url = RedisUrl::parse(text).unwrap();
            assert!(url.is_memory(), "{text}");
            assert_eq!(
                url.scheme_kind(),
                UrlKind::Memory { name: name.into() },
                "{text}"
            );
            assert_eq!(url.db(), db, "{text}");
            assert_eq!(url.address(), format!("memory://{name}"));
            assert!(url.to_connection_info().is_err());
        }
    }

    #[test]
    fn rejects_bad_urls_with_clear_messages() {
        let err = RedisUrl::parse("http://host").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown scheme \"http\" (expected redis://, rediss://, unix://, redis+unix://, redis+sentinel:// or memory://)"
        );
        assert_eq!(RedisUrl::parse("redis://"), Err(UrlError::MissingHost));
        assert_eq!(RedisUrl::parse("redis:///0"), Err(UrlError::MissingHost));
        assert_eq!(RedisUrl::parse("redis://h:abc"), Err(UrlError::InvalidPort));
        assert_eq!(
            RedisUrl::parse("redis://h:99999"),
            Err(UrlError::InvalidPort)
        );
        assert_eq!(RedisUrl::parse("redis://h:0"), Err(UrlError::InvalidPort));
        assert_eq!(
            RedisUrl::parse("redis://h/x").unwrap_err().to_string(),
            "database must be a non-negative integer, got \"x\""
        );
        assert!(RedisUrl::parse("redis://h/-1").is_err());
        assert!(RedisUrl::parse("redis://h/1/2").is_err());
        assert!(RedisUrl::parse("redis://h/99999999999999999999").is_err());
        assert_eq!(
            RedisUrl::parse("redis://h/1?db=2"),
            Err(UrlError::ConflictingDatabase)
        );
        assert!(matches!(
            RedisUrl::parse("redis://h/?foo=1"),
            Err(UrlError::UnsupportedParameter(..))
        ));
        assert!(matches!(
            RedisUrl::parse("redis://h/?pass=x"),
            Err(UrlError::UnsupportedParameter(..))
        ));
        assert!(matches!(
            RedisUrl::parse("redis://h/?protocol=9"),
            Err(UrlError::InvalidProtocol(_))
        ));
        assert_eq!(
            RedisUrl::parse("rediss://h/#insecure"),
            Err(UrlError::Fragment)
        );
        let err = RedisUrl::parse("").unwrap_err();
        assert!(err.to_string().starts_with("not a URL: "), "{err}");
        assert!(RedisUrl::parse("localhost:6379").is_err());
    }

    #[test]
    fn errors_never_show_the_password() {
        for text in [
            "redis://user:hunter2@h:badport/0",
            "redis://user:hunter2@/0",
            "redis://user:hunter2@h/x@y",
            "redis://u:12/hunter2@host",
            "redis://u:hunter2@host/0?hunter2=1",
            "http://u:hunter2@host",
            "redis://u:hunter2@h/0#frag",
        ] {
            let err = RedisUrl::parse(text).unwrap_err();
            assert!(!err.to_string().contains("hunter2"), "{text}: {err}");
            assert!(!format!("{err:?}").contains("hunter2"), "{text}: {err:?}");
        }
    }

    #[test]
    fn display_and_debug_are_redacted() {
        let url = RedisUrl::parse("redis://user:secret@host/0").unwrap();
        assert_eq!(url.password(), Some("secret"));
        assert_eq!(url.redacted(), "redis://user:***@host/0");
        assert_eq!(url.to_string(), "redis://user:***@host/0");
        assert_eq!(format!("{url:?}"), "RedisUrl(\"redis://user:***@host/0\")");
        let url = RedisUrl::parse("redis://host:6379/0").unwrap();
        assert_eq!(url.to_string(), "redis://host:6379/0");
    }

    #[test]
    fn redact_url_cases() {
        assert_eq!(redact_url("redis://u:pw@h/0"), "redis://u:***@h/0");
        assert_eq!(redact_url("redis://:pw@h"), "redis://:***@h");
        assert_eq!(
            redact_url("unix:///s?db=1&pass=pw"),
            "unix:///s?db=1&pass=***"
        );
        assert!(matches!(redact_url("redis://h/0"), Cow::Borrowed(_)));
        assert!(matches!(redact_url("plain text"), Cow::Borrowed(_)));
        assert!(matches!(redact_url("redis://user@h"), Cow::Borrowed(_)));
        // Not parseable, still redacted.
        assert_eq!(redact_url("redis://u:pw@h:bad"), "redis://u:***@h:bad");
        assert_eq!(redact_url("redis://u:p/w@h"), "redis://u:***@h");
        assert_eq!(redact_url("redis://u:p@w@h/0"), "redis://u:***@h/0");
    }

    #[test]
    fn connection_info_keeps_db_user_and_password() {
        let url = RedisUrl::parse("redis://us%40er:p%3Ass@host:6380/7").unwrap();
        let info = url.to_connection_info().unwrap();
        assert_eq!(
            info.addr(),
            &redis::ConnectionAddr::Tcp("host".into(), 6380)
        );
        assert_eq!(info.redis_settings().db(), 7);
        assert_eq!(info.redis_settings().username(), Some("us@er"));
        assert_eq!(info.redis_settings().password(), Some("p:ss"));

        let info = RedisUrl::parse("redis://h/?db=4&protocol=resp3")
            .unwrap()
            .to_connection_info()
            .unwrap();
        assert_eq!(info.redis_settings().db(), 4);
        assert_eq!(
            info.redis_settings().protocol(),
            redis::ProtocolVersion::RESP3
        );

        let info = RedisUrl::parse("unix:///run/r.sock?db=2&pass=pw")
            .unwrap()
            .to_connection_info()
            .unwrap();
        assert_eq!(
            info.addr(),
            &redis::ConnectionAddr::Unix(PathBuf::from("/run/r.sock"))
        );
        assert_eq!(info.redis_settings().db(), 2);
        assert_eq!(info.redis_settings().password(), Some("pw"));
    }

    #[test]
    fn connection_info_matches_redis_rs_for_plain_urls() {
        use redis::IntoConnectionInfo as _;
        for text in [
            "redis://u:p@h:1234/5",
            "redis://h",
            "unix:///x.sock?db=3&pass=p",
        ] {
            let ours = RedisUrl::parse(text).unwrap().to_connection_info().unwrap();
            let theirs = text.into_connection_info().unwrap();
            assert_eq!(ours.addr(), theirs.addr(), "{text}");
            let (a, b) = (ours.redis_settings(), theirs.redis_settings());
            assert_eq!(a.db(), b.db(), "{text}");
            assert_eq!(a.username(), b.username(), "{text}");
            assert_eq!(a.password(), b.password(), "{text}");
        }
    }

    #[test]
    fn deserializes_from_a_string() {
        use serde::de::value::{Error, StrDeserializer};
        use serde::de::IntoDeserializer as _;
        use serde::Deserialize as _;

        let de: StrDeserializer<'_, Error> = "redis://h:1/2".into_deserializer();
        assert_eq!(RedisUrl::deserialize(de).unwrap().db(), 2);
        let de: StrDeserializer<'_, Error> = "ftp://h".into_deserializer();
        assert!(RedisUrl::deserialize(de).is_err());
        assert_eq!("redis://h".parse::<RedisUrl>().unwrap().address(), "h:6379");
    }

    #[test]
    fn sentinel_urls() {
        let url =
            RedisUrl::parse("redis+sentinel://u:hunter2@10.0.0.1:26380,s2,[::1]:26381/mymaster/3")
                .unwrap();
        assert_eq!(
            url.scheme_kind(),
            UrlKind::Sentinel {
                sentinels: vec![
                    ("10.0.0.1".into(), 26380),
                    ("s2".into(), DEFAULT_SENTINEL_PORT),
                    ("::1".into(), 26381)
                ],
                service: "mymaster".into(),
            }
        );
        assert_eq!(url.db(), 3);
        assert_eq!(url.username(), Some("u"));
        assert_eq!(url.password(), Some("hunter2"));
        assert_eq!(
            url.to_string(),
            "redis+sentinel://u:***@10.0.0.1:26380,s2,[::1]:26381/mymaster/3"
        );
        assert!(!format!("{url:?}").contains("hunter2"));
        assert_eq!(
            url.address(),
            "mymaster via sentinels 10.0.0.1:26380,s2:26379,[::1]:26381"
        );
        assert!(url.to_connection_info().is_err());
        assert_eq!(url.redis_settings().password(), Some("hunter2"));

        let url = RedisUrl::parse("redis+sentinel://h:1/svc?db=2&protocol=resp3").unwrap();
        assert_eq!(url.db(), 2);
        assert!(url.is_resp3());
        assert_eq!(
            url.to_string(),
            "redis+sentinel://h:1/svc?db=2&protocol=resp3"
        );

        assert_eq!(
            RedisUrl::parse("redis+sentinel://h:1"),
            Err(UrlError::MissingServiceName)
        );
        assert_eq!(
            RedisUrl::parse("redis+sentinel://h:1/"),
            Err(UrlError::MissingServiceName)
        );
        assert_eq!(
            RedisUrl::parse("redis+sentinel://h:x/svc"),
            Err(UrlError::InvalidPort)
        );
        assert_eq!(
            RedisUrl::parse("redis+sentinel://h:1,,h2/svc"),
            Err(UrlError::MissingHost)
        );
        assert_eq!(
            RedisUrl::parse("redis+sentinel://h/svc/x")
                .unwrap_err()
                .to_string(),
            "database must be a non-negative integer, got \"x\""
        );
        let err = RedisUrl::parse("redis+sentinel://u:hunter2@h:0/svc").unwrap_err();
        assert!(!err.to_string().contains("hunter2"));
    }
}
