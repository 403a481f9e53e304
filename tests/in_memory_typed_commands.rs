//! What redis-rs's typed methods send for sorted sets reaches the in-memory backend, and
//! scripts get an error naming `memory://` and what to use instead — through a client
//! configured as a service configures it.

use baseplate_redis::config::RawConfig;
use baseplate_redis::{Baseplate, ContextSpec, MonitoredRedisConnection, RedisClient};
use redis::AsyncCommands;

fn client(store: &str) -> MonitoredRedisConnection {
    let url = format!("memory://{store}");
    let mut baseplate = Baseplate::new(RawConfig::from_pairs([("cache.url", url.as_str())]));
    baseplate
        .configure_context(ContextSpec::new().client("cache", RedisClient::new()))
        .unwrap();
    baseplate.make_context_object().redis("cache").unwrap()
}

#[tokio::test]
async fn sorted_set_ranges_in_reverse_and_by_lex() {
    let mut cache = client("typed-zsets");
    let _: i64 = cache
        .zadd_multiple("scores", &[(1, "ann"), (3, "bob"), (2, "cid"), (5, "dee")])
        .await
        .unwrap();

    let top: Vec<String> = cache.zrevrange("scores", 0, 1).await.unwrap();
    assert_eq!(top, ["dee", "bob"]);
    let top: Vec<(String, f64)> = cache.zrevrange_withscores("scores", 0, 0).await.unwrap();
    assert_eq!(top, [("dee".to_string(), 5.0)]);
    let between: Vec<String> = cache.zrevrangebyscore("scores", 3, 2).await.unwrap();
    assert_eq!(between, ["bob", "cid"]);
    let limited: Vec<String> = cache
        .zrevrangebyscore_limit("scores", "+inf", "-inf", 1, 2)
        .await
        .unwrap();
    assert_eq!(limited, ["bob", "cid"]);

    let _: i64 = cache
        .zadd_multiple("names", &[(0, "apple"), (0, "banana"), (0, "cherry")])
        .await
        .unwrap();
    let from_b: Vec<String> = cache.zrangebylex("names", "[b", "+").await.unwrap();
    assert_eq!(from_b, ["banana", "cherry"]);
    let before_c: Vec<String> = cache.zrevrangebylex("names", "(c", "-").await.unwrap();
    assert_eq!(before_c, ["banana", "apple"]);
}

#[tokio::test]
async fn scripts_fail_with_an_error_naming_the_backend() {
    let mut cache = client("typed-scripts");
    let script = redis::Script::new("return redis.call('GET', KEYS[1])");
    let err = script
        .key("k")
        .invoke_async::<Option<String>>(&mut cache)
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(message.contains("memory://"), "{message}");
    assert!(message.contains("EVALSHA"), "{message}");
    assert!(message.contains("redis-server"), "{message}");

    for command in ["EVAL", "SCRIPT", "FCALL"] {
        let err = redis::cmd(command)
            .arg("x")
            .arg(0)
            .query_async::<()>(&mut cache)
            .await
            .unwrap_err();
        assert!(err.to_string().contains(command), "{err}");
        assert!(err.to_string().contains("memory://"), "{err}");
    }
}
