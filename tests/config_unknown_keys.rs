//! Keys under a client's prefix that it does not read: as baseplate.py ignores them, they
//! never fail start-up; each is warned about once at configure time, naming the closest
//! known key, and refused only in strict mode.

mod common;

use baseplate_redis::config::{from_config, from_config_checked, RawConfig, Timespan, UnknownKeys};
use baseplate_redis::{Baseplate, ClusterRedisClient, ContextSpec, RedisClient};
use common::logged;

#[derive(Debug, serde::Deserialize)]
struct Client {
    url: String,
    max_connections: Option<u32>,
    pool: Option<Pool>,
}

#[derive(Debug, serde::Deserialize)]
struct Pool {
    size: u32,
    #[allow(dead_code)]
    timeout: Option<Timespan>,
}

const PAIRS: [(&str, &str); 5] = [
    ("foo.url", "redis://h"),
    ("foo.max_conections", "9"),
    ("foo.key_prefix", "hunter2"),
    ("foo.pool.size", "1"),
    ("foo.pool.timout", "1 second"),
];

#[test]
fn each_unknown_key_is_warned_about_once_with_the_closest_known_key() {
    let (parsed, log) = logged(|| {
        from_config_checked::<Client>(&RawConfig::from_pairs(PAIRS), "foo.", UnknownKeys::Warn)
    });
    let parsed = parsed.unwrap();
    assert_eq!(
        (parsed.url.as_str(), parsed.max_connections),
        ("redis://h", None)
    );
    assert_eq!(parsed.pool.unwrap().size, 1);
    assert_eq!(log.lines().count(), 3, "{log}");
    assert_eq!(log.matches(" WARN ").count(), 3, "{log}");
    for (key, closest) in [
        ("foo.max_conections", "foo.max_connections"),
        ("foo.key_prefix", "foo."),
        // Nested keys are compared with the keys of their own level.
        ("foo.pool.timout", "foo.pool.timeout"),
    ] {
        let line = format!("unknown configuration key {key} ignored (closest known key: {closest}");
        assert!(log.contains(&line), "{line}\n{log}");
    }
    // Values are never logged: they may be secrets.
    assert!(!log.contains("hunter2"), "{log}");

    // Plain `from_config` ignores them silently, as serde does.
    let (parsed, log) = logged(|| from_config::<Client>(&RawConfig::from_pairs(PAIRS), "foo."));
    parsed.unwrap();
    assert_eq!(log, "");
}

#[test]
fn strict_mode_refuses_them() {
    let raw = RawConfig::from_pairs(PAIRS);
    let err = from_config_checked::<Client>(&raw, "foo.", UnknownKeys::Deny).unwrap_err();
    assert_eq!(err.key(), "foo.key_prefix");
    // Keys are checked in order; among equally distant known keys, the first is named.
    assert_eq!(
        err.reason(),
        "unknown key (did you mean foo.url? expected one of: foo.url, foo.max_connections, foo.pool)"
    );
    let raw = RawConfig::from_pairs([("foo.url", "redis://h"), ("foo.max_conections", "9")]);
    let err = from_config_checked::<Client>(&raw, "foo.", UnknownKeys::Deny).unwrap_err();
    assert_eq!(err.key(), "foo.max_conections");
    assert!(
        err.reason().contains("did you mean foo.max_connections?"),
        "{err}"
    );
    // Only known keys: no error, nothing logged.
    let raw = RawConfig::from_pairs([("foo.url", "redis://h")]);
    let ((), log) = logged(|| {
        from_config_checked::<Client>(&raw, "foo.", UnknownKeys::Deny).unwrap();
        from_config_checked::<Client>(&raw, "foo.", UnknownKeys::Warn).unwrap();
    });
    assert_eq!(log, "");
}

#[test]
fn clients_warn_at_configure_time_or_refuse_in_strict_mode() {
    let config = RawConfig::from_pairs([
        ("foo.url", "memory://unknown-keys"),
        ("foo.socket_timout", "1 second"),
        ("cache.url", "redis://127.0.0.1:1"),
        ("cache.decode_responses", "true"),
        ("cache.read_from_replica", "false"),
        ("unrelated.key", "x"),
    ]);
    let spec = || {
        ContextSpec::new()
            .client("foo", RedisClient::new())
            .client("cache", ClusterRedisClient::new())
    };
    let mut baseplate = Baseplate::new(config.clone());
    let (configured, log) = logged(|| baseplate.configure_context(spec()));
    configured.unwrap();
    let warnings: Vec<&str> = log.lines().collect();
    assert_eq!(warnings.len(), 2, "{log}");
    assert!(
        log.contains("foo.socket_timout ignored (closest known key: foo.socket_timeout)"),
        "{log}"
    );
    assert!(
        log.contains(
            "cache.read_from_replica ignored (closest known key: cache.read_from_replicas)"
        ),
        "{log}"
    );

    // Making handles and running commands warns no more: the keys were read once.
    let context = baseplate.make_context_object();
    let (_, log) = logged(|| context.redis("foo").unwrap());
    assert_eq!(log, "");

    for strict in [
        ContextSpec::new().client("foo", RedisClient::new().unknown_keys(UnknownKeys::Deny)),
        ContextSpec::new().client(
            "cache",
            ClusterRedisClient::new().unknown_keys(UnknownKeys::Deny),
        ),
    ] {
        let err = Baseplate::new(config.clone())
            .configure_context(strict)
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("foo.socket_timout") || text.contains("cache.read_from_replica"),
            "{text}"
        );
    }
}
