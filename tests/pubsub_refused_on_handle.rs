//! SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE and MONITOR sent on an ordinary handle are refused
//! with an error pointing to `pubsub()`, and the handle keeps working: no reply is lost.

mod common;

use std::sync::Arc;

use baseplate_redis::config::RawConfig;
use baseplate_redis::pool::InMemoryBackend;
use baseplate_redis::{pool_from_config, MonitoredRedisConnection, RedisContextFactory};
use common::RedisServer;
use redis::AsyncCommands;

async fn refuses_and_keeps_working(mut handle: MonitoredRedisConnection) {
    for args in [
        &["SUBSCRIBE", "news"][..],
        &["subscribe", "a", "b"],
        &["PSUBSCRIBE", "news.*"],
        &["SSUBSCRIBE", "shard"],
        &["MONITOR"],
    ] {
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        let err = cmd.exec_async(&mut handle).await.unwrap_err();
        let text = err.to_string();
        assert!(text.contains(&args[0].to_uppercase()), "{args:?}: {text}");
        let points_to = if args[0] == "MONITOR" {
            "get_async_monitor"
        } else {
            "pubsub()"
        };
        assert!(text.contains(points_to), "{args:?}: {text}");

        // In a pipeline too, before anything of it is sent.
        let mut pipe = redis::pipe();
        pipe.set("refused:pipelined", 1).ignore().add_command(cmd);
        let err = pipe.exec_async(&mut handle).await.unwrap_err();
        assert!(err.to_string().contains("pubsub()") || args[0] == "MONITOR");
        let set: Option<i64> = handle.get("refused:pipelined").await.unwrap();
        assert_eq!(set, None, "part of a refused pipeline ran");

        // The handle is unharmed: replies still match their commands.
        let pong: String = redis::cmd("PING").query_async(&mut handle).await.unwrap();
        assert_eq!(pong, "PONG");
        let _: () = handle.set("refused:k", "v").await.unwrap();
        let got: String = handle.get("refused:k").await.unwrap();
        assert_eq!(got, "v");
    }
}

#[tokio::test]
async fn a_real_servers_handle_refuses_subscribing() {
    let server = RedisServer::start();
    let config = RawConfig::from_pairs([("foo.url", server.url(0))]);
    let pool = pool_from_config(&config, "foo.").unwrap();
    let factory = RedisContextFactory::new(pool.clone());
    refuses_and_keeps_working(factory.connection()).await;
    // Nothing was left subscribed on the server.
    let (_, subscribed): (String, i64) = server.query(&["PUBSUB", "NUMSUB", "news"]);
    assert_eq!(subscribed, 0);
    assert_eq!(pool.state().in_use, 0);
}

#[tokio::test]
async fn an_in_memory_handle_refuses_subscribing() {
    let factory = RedisContextFactory::new(Arc::new(InMemoryBackend::new()));
    refuses_and_keeps_working(factory.connection()).await;
}
