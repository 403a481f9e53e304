//! Configuration end to end: INI file → RawConfig → typed client config.

use std::num::NonZeroU32;
use std::time::Duration;

use baseplate_redis::config::{
    from_config, parse_timespan, ConfigurationError, RawConfig, RedisUrl, Timespan, UrlKind,
};
use proptest::prelude::*;

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientConfig {
    url: RedisUrl,
    max_connections: Option<NonZeroU32>,
    socket_connect_timeout: Option<Timespan>,
    socket_timeout: Option<Timespan>,
}

const INI: &str = "\
[DEFAULT]
unused = 1

[app:main]
foo.url = redis://localhost:6379/0          # required
foo.max_connections = 99                    # optional: pool size limit
foo.socket_connect_timeout = 3 seconds      # optional: connect timeout
foo.socket_timeout = 200 milliseconds       # optional: per-command timeout
noodle.url = rediss://user:secret@cache.internal:6380/3 ; TLS
";

fn temp_ini(name: &str, text: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!(
        "baseplate-redis-config-{}-{name}.ini",
        std::process::id()
    ));
    std::fs::write(&path, text).unwrap();
    path
}

fn load(pairs: &[(&str, &str)]) -> Result<ClientConfig, ConfigurationError> {
    from_config(&RawConfig::from_pairs(pairs.iter().copied()), "foo.")
}

#[test]
fn loads_an_ini_file_with_inline_comments() {
    let path = temp_ini("main", INI);
    let raw = RawConfig::from_ini_file(&path, "app:main").unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(raw.get("foo.url"), Some("redis://localhost:6379/0"));
    assert_eq!(raw.get("foo.socket_timeout"), Some("200 milliseconds"));
    // configparser's `items(section)`, which baseplate.py's server reads, includes `[DEFAULT]`.
    assert_eq!(raw.get("unused"), Some("1"));

    let foo: ClientConfig = from_config(&raw, "foo.").unwrap();
    assert_eq!(
        foo.url.scheme_kind(),
        UrlKind::Tcp {
            host: "localhost".into(),
            port: 6379,
            tls: false
        }
    );
    assert_eq!(foo.url.db(), 0);
    assert_eq!(foo.max_connections, NonZeroU32::new(99));
    assert_eq!(
        foo.socket_connect_timeout.map(Duration::from),
        Some(Duration::from_secs(3))
    );
    assert_eq!(
        foo.socket_timeout.map(Duration::from),
        Some(Duration::from_millis(200))
    );

    let noodle: ClientConfig = from_config(&raw, "noodle.").unwrap();
    assert_eq!(
        noodle.url.scheme_kind(),
        UrlKind::Tcp {
            host: "cache.internal".into(),
            port: 6380,
            tls: true
        }
    );
    assert_eq!(noodle.url.db(), 3);
    assert_eq!(noodle.url.password(), Some("secret"));
    assert_eq!(noodle.max_connections, None);
}

#[test]
fn missing_section_and_file() {
    let err = RawConfig::from_ini_str(INI, "app:other").unwrap_err();
    assert_eq!(err.key(), "[app:other]");
    let path = std::env::temp_dir().join("baseplate-redis-config-does-not-exist.ini");
    let err = RawConfig::from_ini_file(&path, "app:main").unwrap_err();
    assert_eq!(err.key(), path.display().to_string());
}

#[test]
fn empty_config_names_the_url_key() {
    let err = load(&[]).unwrap_err();
    assert_eq!(err.key(), "foo.url");
    assert_eq!(err.to_string(), "foo.url: required key is missing");
}

#[test]
fn bad_values_name_their_key() {
    for value in ["0", "abc", "99999999999"] {
        let err = load(&[("foo.url", "redis://h"), ("foo.max_connections", value)]).unwrap_err();
        assert_eq!(err.key(), "foo.max_connections", "{value}: {err}");
    }
    let err = load(&[
        ("foo.url", "redis://h"),
        ("foo.socket_timeout", "10 florgles"),
    ])
    .unwrap_err();
    assert_eq!(err.key(), "foo.socket_timeout");
    let err = load(&[("foo.url", "redis://h"), ("foo.unknown", "1")]).unwrap_err();
    assert_eq!(err.key(), "foo.unknown");
}

#[test]
fn prefix_without_a_dot_is_an_error() {
    let raw = RawConfig::from_pairs([("foo.url", "redis://h")]);
    let err = from_config::<ClientConfig>(&raw, "foo").unwrap_err();
    assert_eq!(err.key(), "foo");
    assert!(from_config::<ClientConfig>(&raw, "").is_err());
}

#[test]
fn url_parts_are_parsed() {
    let config = load(&[("foo.url", "redis://cache.example:7000/5")]).unwrap();
    assert_eq!(
        config.url.scheme_kind(),
        UrlKind::Tcp {
            host: "cache.example".into(),
            port: 7000,
            tls: false
        }
    );
    assert_eq!(config.url.db(), 5);
    assert_eq!(config.url.address(), "cache.example:7000");
}

#[test]
fn the_password_never_shows() {
    let url = "redis://user:secret@host/0";
    let raw = RawConfig::from_pairs([("foo.url", url)]);
    assert!(!format!("{raw:?}").contains("secret"));
    let parsed = RedisUrl::parse(url).unwrap();
    assert!(!format!("{parsed:?}").contains("secret"));
    assert!(!parsed.to_string().contains("secret"));
    let config: ClientConfig = from_config(&raw, "foo.").unwrap();
    assert!(!format!("{config:?}").contains("secret"));

    let neighbours = [
        ("foo.max_connections", "0"),
        ("foo.max_connections", "abc"),
        ("foo.socket_timeout", "10 florgles"),
        ("foo.socket_timeout", "secret seconds"),
        ("foo.bogus", "secret"),
    ];
    for (key, value) in neighbours {
        let err = load(&[("foo.url", url), (key, value)]).unwrap_err();
        for text in [err.to_string(), format!("{err:?}")] {
            // `secret` may be the neighbour's own non-secret value; never the URL's password.
            assert!(!text.contains("user:secret"), "{text}");
        }
    }
    for bad in [
        "redis://user:secret@host/x",
        "redis://user:secret@host:bad/0",
        "http://user:secret@host",
    ] {
        let err = load(&[("foo.url", bad)]).unwrap_err();
        assert_eq!(err.key(), "foo.url");
        for text in [err.to_string(), format!("{err:?}")] {
            assert!(!text.contains("secret"), "{text}");
        }
        let raw = RawConfig::from_pairs([("foo.url", bad)]);
        assert!(!format!("{raw:?}").contains("secret"), "{raw:?}");
    }
}

const UNITS: [&str; 10] = [
    "millisecond",
    "milliseconds",
    "second",
    "seconds",
    "minute",
    "minutes",
    "hour",
    "hours",
    "day",
    "days",
];

fn unit_millis(unit: &str) -> u64 {
    match unit.trim_end_matches('s') {
        "millisecond" => 1,
        "second" => 1_000,
        "minute" => 60_000,
        "hour" => 3_600_000,
        "day" => 86_400_000,
        other => panic!("unit {other}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn parse_timespan_never_panics(text in "\\PC*") {
        let _ = parse_timespan(&text);
    }

    #[test]
    fn parse_timespan_never_panics_on_near_misses(
        n in "[-+0-9.]{0,25}", ws in "[ \t]{0,3}", unit in "[a-z]{0,13}"
    ) {
        let _ = parse_timespan(&format!("{n}{ws}{unit}"));
    }

    #[test]
    fn redis_url_parse_never_panics(text in "\\PC*") {
        let _ = RedisUrl::parse(&text);
    }

    #[test]
    fn redis_url_parse_never_panics_on_url_shapes(
        scheme in "(redis|rediss|unix|redis\\+unix|memory|http)",
        rest in "[a-z0-9:@/?=&%.\\[\\]#-]{0,30}",
    ) {
        if let Ok(url) = RedisUrl::parse(&format!("{scheme}://{rest}")) {
            let _ = url.to_connection_info();
            let _ = url.address();
        }
    }

    #[test]
    fn from_ini_str_never_panics(text in "\\PC*") {
        let _ = RawConfig::from_ini_str(&text, "app:main");
    }

    #[test]
    fn from_ini_str_never_panics_on_ini_shapes(
        lines in proptest::collection::vec("[\\[\\]a-z:.=#; \\\\\"']{0,20}", 0..8)
    ) {
        let _ = RawConfig::from_ini_str(&format!("[app:main]\n{}", lines.join("\n")), "app:main");
    }

    #[test]
    fn from_config_never_panics(
        pairs in proptest::collection::vec(
            ("foo\\.(url|max_connections|socket_timeout|socket_connect_timeout|x|url\\.y)", "\\PC{0,30}"),
            0..5,
        ),
        prefix in "(foo\\.|foo|)",
    ) {
        let raw = RawConfig::from_pairs(pairs);
        let _ = from_config::<ClientConfig>(&raw, &prefix);
    }

    #[test]
    fn timespan_round_trips(n in 0u64..1_000_000_000, unit in proptest::sample::select(&UNITS[..])) {
        let parsed = parse_timespan(&format!("{n} {unit}")).unwrap();
        prop_assert_eq!(parsed, Duration::from_millis(n * unit_millis(unit)));
        let span = Timespan(parsed);
        prop_assert_eq!(span.to_string().parse::<Timespan>().unwrap(), span);
    }
}
