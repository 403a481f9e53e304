//! Issue 12, point 2: every socket the client opens has TCP keepalive on (default 10 s,
//! `tcp_keepalive` sets it, `0 seconds` turns it off), so that a dead peer is found even
//! without a `socket_timeout`. Checked in the kernel's own table of sockets (Linux).

mod common;

use std::time::Duration;

use baseplate_redis::config::RawConfig;
use baseplate_redis::{pool_from_config, RedisContextFactory};
use common::RedisServer;
use redis::AsyncCommands;

/// The keepalive timers (time left until the next probe) of the established client sockets
/// to `port`, from /proc/net/tcp; `None` for a socket without one.
fn keepalive_timers(port: u16) -> Vec<Option<Duration>> {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let mut timers = Vec::new();
    for line in table.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let remote_port = fields[2].rsplit(':').next().unwrap();
        let established = fields[3] == "01";
        if !established || u16::from_str_radix(remote_port, 16).unwrap() != port {
            continue;
        }
        // `tr:tm->when`: timer kind 2 is keepalive; `when` is in clock ticks (1/100 s).
        let (kind, when) = fields[5].split_once(':').unwrap();
        let ticks = u64::from_str_radix(when, 16).unwrap();
        timers.push((kind == "02").then(|| Duration::from_millis(ticks * 10)));
    }
    timers
}

async fn timers_with(server: &RedisServer, keepalive: Option<&str>) -> Vec<Option<Duration>> {
    let mut config = RawConfig::from_pairs([("redis.url", server.url(0))]);
    if let Some(keepalive) = keepalive {
        config.insert("redis.tcp_keepalive".to_string(), keepalive);
    }
    let factory = RedisContextFactory::new(pool_from_config(&config, "redis.").unwrap());
    let mut redis = factory.connection();
    let _: Option<String> = redis.get("k").await.unwrap();
    // A blocking command takes a second socket (an exclusive one).
    let _: Option<(String, String)> = redis.blpop("q", 0.05).await.unwrap();
    keepalive_timers(server.port())
}

#[tokio::test]
async fn sockets_have_keepalive_by_default() {
    let server = RedisServer::start();
    let timers = timers_with(&server, None).await;
    assert_eq!(timers.len(), 2, "{timers:?}");
    for timer in timers {
        let timer = timer.expect("a socket without keepalive");
        assert!(timer <= Duration::from_secs(10), "{timer:?}");
    }
}

#[tokio::test]
async fn tcp_keepalive_sets_the_idle_time() {
    let server = RedisServer::start();
    let timers = timers_with(&server, Some("2 seconds")).await;
    assert_eq!(timers.len(), 2, "{timers:?}");
    for timer in timers {
        let timer = timer.expect("a socket without keepalive");
        assert!(timer <= Duration::from_secs(2), "{timer:?}");
        assert!(timer > Duration::from_secs(1), "{timer:?}");
    }
}

#[tokio::test]
async fn zero_turns_keepalive_off() {
    let server = RedisServer::start();
    let timers = timers_with(&server, Some("0 seconds")).await;
    assert_eq!(timers, vec![None, None]);
}
