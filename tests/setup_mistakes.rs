//! Mistakes made while setting up a Baseplate are errors that say what to fix, never silent:
//! a metrics sink set after clients exist, a context name used twice, a handle asked for as
//! the wrong type.

use std::sync::Arc;

use baseplate_redis::config::RawConfig;
use baseplate_redis::sink::RecordingSink;
use baseplate_redis::{
    Baseplate, ContextSpec, Error, MonitoredRedisConnection, RedisClient, RedisContextFactory,
};

fn config() -> RawConfig {
    RawConfig::from_pairs([
        ("foo.url", "memory://setup-mistakes"),
        ("bar.url", "memory://setup-mistakes"),
        ("caches.foo.url", "memory://setup-mistakes"),
    ])
}

#[test]
fn a_sink_set_after_clients_exist_is_an_error() {
    let mut baseplate = Baseplate::new(config());
    baseplate
        .configure_context(ContextSpec::new().client("foo", RedisClient::new()))
        .unwrap();
    let err = baseplate
        .with_metrics_sink(Arc::new(RecordingSink::new()))
        .unwrap_err();
    assert!(
        matches!(err, Error::MetricsSinkAfterClients { .. }),
        "{err}"
    );
    let message = err.to_string();
    assert!(message.contains("foo"), "{message}");
    assert!(message.contains("before configure_context"), "{message}");
}

#[test]
fn a_sink_set_after_a_hand_made_factory_is_an_error() {
    let mut baseplate = Baseplate::new(RawConfig::new());
    let pool = Arc::new(baseplate_redis::pool::InMemoryBackend::new());
    baseplate
        .add_to_context("mine", Arc::new(RedisContextFactory::new(pool)))
        .unwrap();
    let err = baseplate
        .with_metrics_sink(Arc::new(RecordingSink::new()))
        .unwrap_err();
    assert!(err.to_string().contains("mine"), "{err}");
}

#[test]
fn a_sink_set_first_reaches_every_client() {
    let sink = RecordingSink::new();
    let mut baseplate = Baseplate::new(config())
        .with_metrics_sink(Arc::new(sink.clone()))
        .unwrap();
    baseplate
        .configure_context(
            ContextSpec::new()
                .client("foo", RedisClient::new())
                .client("bar", RedisClient::new()),
        )
        .unwrap();
    baseplate.report_runtime_metrics();
    for client in ["foo", "bar"] {
        let size = sink.gauge_value("runtime.pool.size", &[("client", client)]);
        assert_eq!(size, Some(50.0), "{client}");
    }
}

#[test]
fn two_clients_with_one_name_are_a_configuration_error() {
    let mut baseplate = Baseplate::new(config());
    let spec = ContextSpec::new()
        .client("foo", RedisClient::new())
        .client("bar", RedisClient::new())
        .client("foo", RedisClient::new().client_name("other"));
    let err = baseplate.configure_context(spec).unwrap_err();
    assert_eq!(err.key(), "foo");
    assert!(err.reason().contains("twice"), "{err}");
    // Nothing was added.
    assert_eq!(baseplate.factories().count(), 0);
}

#[test]
fn a_client_and_a_group_with_one_name_are_a_configuration_error() {
    let mut baseplate = Baseplate::new(config());
    let spec = ContextSpec::new()
        .group(
            "caches",
            ContextSpec::new().client("foo", RedisClient::new()),
        )
        .client("caches", RedisClient::new());
    let err = baseplate.configure_context(spec).unwrap_err();
    assert_eq!(err.key(), "caches");
}

#[test]
fn a_duplicate_inside_a_group_is_named_in_full() {
    let mut baseplate = Baseplate::new(config());
    let group = ContextSpec::new()
        .client("foo", RedisClient::new())
        .client("foo", RedisClient::new());
    let err = baseplate
        .configure_context(ContextSpec::new().group("caches", group))
        .unwrap_err();
    assert_eq!(err.key(), "caches.foo");
}

#[test]
fn a_name_added_again_later_is_a_configuration_error() {
    let mut baseplate = Baseplate::new(config());
    baseplate
        .configure_context(ContextSpec::new().client("foo", RedisClient::new()))
        .unwrap();
    let err = baseplate
        .configure_context(
            ContextSpec::new()
                .client("bar", RedisClient::new())
                .client("foo", RedisClient::new()),
        )
        .unwrap_err();
    assert_eq!(err.key(), "foo");
    let names: Vec<&str> = baseplate.factories().map(|(name, _)| name).collect();
    assert_eq!(names, ["foo"], "nothing of the failed spec was added");

    let pool = Arc::new(baseplate_redis::pool::InMemoryBackend::new());
    let err = baseplate
        .add_to_context("foo", Arc::new(RedisContextFactory::new(pool)))
        .unwrap_err();
    assert_eq!(err.key(), "foo");
}

#[test]
fn the_wrong_type_error_names_public_types() {
    let mut baseplate = Baseplate::new(config());
    baseplate
        .configure_context(ContextSpec::new().client("foo", RedisClient::new()))
        .unwrap();
    let context = baseplate.make_context_object();

    let err = context.get::<String>("foo").unwrap_err();
    assert!(matches!(err, Error::WrongContextObjectType { .. }), "{err}");
    assert!(err.to_string().contains("String"), "{err}");

    let err = context
        .get::<Option<MonitoredRedisConnection>>("foo")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("baseplate_redis::MonitoredRedisConnection"),
        "{err}"
    );
    assert!(!err.contains("monitored::"), "a private module path: {err}");
}
