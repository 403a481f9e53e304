//! Guarantee 7: bad input gives a clear error, never a panic: invalid URLs and schemes, bad
//! timespans, zero or huge pool sizes, bad certificate files, keys and values with any
//! bytes, and a "server" that answers garbage.
//!
//! The parsers themselves (`parse_timespan`, `RedisUrl::parse`, INI, `from_config`) are
//! property-tested in `tests/config.rs`; the property here drives the whole client
//! configuration path (`pool_from_config`) with arbitrary values.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use baseplate_redis::config::RawConfig;
use baseplate_redis::pool::PoolBackend;
use baseplate_redis::{pool_from_config, MessageQueue, RedisContextFactory};
use common::RedisServer;
use proptest::prelude::*;
use redis::AsyncCommands;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn configure(
    pairs: &[(&str, &str)],
) -> Result<Arc<dyn PoolBackend>, baseplate_redis::ConfigurationError> {
    let config = RawConfig::from_pairs(pairs.iter().map(|(k, v)| (format!("redis.{k}"), *v)));
    pool_from_config(&config, "redis.")
}

/// Each value of `key` fails with an error naming `redis.<key>` and saying something.
fn rejects(key: &str, values: &[&str], base: &[(&str, &str)]) {
    for value in values {
        let mut pairs = base.to_vec();
        pairs.push((key, value));
        let Err(err) = configure(&pairs) else {
            panic!("{key} = {value:?} was accepted");
        };
        assert_eq!(err.key(), format!("redis.{key}"), "{value:?}: {err}");
        let message = err.to_string();
        assert!(
            message.len() > format!("redis.{key}: ").len() + 5,
            "{value:?}: unclear message {message:?}"
        );
    }
}

#[test]
fn invalid_urls_and_unknown_schemes_are_configuration_errors() {
    rejects(
        "url",
        &[
            "",
            "localhost:6379",
            "http://localhost",
            "redis//localhost",
            "redis://",
            "redis://host:notaport",
            "redis://host:99999",
            "redis://host/notadb",
            "redis://host/-1",
            "redis://host/0?db=1",
            "redis://host?nonsense=1",
            "redis://us%FFer:pw@host",
            "unix://",
            "memory://x/y/z",
            "\u{0}\u{ffff}",
        ],
        &[],
    );
    // An unknown scheme's message says which ones are known.
    let err = configure(&[("url", "mongodb://h")]).unwrap_err();
    assert!(err.to_string().contains("rediss://"), "{err}");
}

#[test]
fn bad_timespans_are_configuration_errors() {
    let base = [("url", "redis://127.0.0.1:1/0")];
    // (An empty value means "not set", as in baseplate.py.)
    let bad = [
        "10 florgles",
        "-1 seconds",
        "1.5.5 seconds",
        "seconds",
        "99999999999999999999999 days",
        "1e400 seconds",
        "NaN seconds",
        "inf seconds",
    ];
    for key in ["socket_timeout", "socket_connect_timeout", "pool_timeout"] {
        rejects(key, &bad, &base);
    }
}

#[test]
fn zero_and_huge_pool_sizes_are_configuration_errors() {
    let base = [("url", "redis://127.0.0.1:1/0")];
    rejects(
        "max_connections",
        &[
            "0",
            "-1",
            "10001",
            "4294967296",
            "99999999999999999999",
            "ten",
            "1.5",
        ],
        &base,
    );
    let pool = configure(&[
        ("url", "redis://127.0.0.1:1/0"),
        ("max_connections", "10000"),
    ])
    .unwrap();
    assert_eq!(pool.state().max_size, 10_000);
}

#[test]
fn bad_tls_settings_are_configuration_errors() {
    let dir = std::env::temp_dir().join(format!("baseplate-redis-bad-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let garbage = dir.join("garbage.pem");
    std::fs::write(&garbage, b"-----BEGIN CERTIFICATE-----\nnot base64!\n").unwrap();
    let empty = dir.join("empty.pem");
    std::fs::write(&empty, b"").unwrap();
    let missing = dir.join("missing.pem");
    let (garbage, empty, missing) = (
        garbage.to_str().unwrap(),
        empty.to_str().unwrap(),
        missing.to_str().unwrap(),
    );

    // Certificate files with a plain redis:// URL are a mistake, not silently ignored.
    rejects(
        "tls_ca_file",
        &[garbage],
        &[("url", "redis://127.0.0.1:1/0")],
    );
    let tls = [("url", "rediss://127.0.0.1:1/0")];
    rejects("tls_ca_file", &[garbage, empty, missing], &tls);
    let err = configure(&[tls[0], ("tls_ca_file", missing)]).unwrap_err();
    assert!(err.to_string().contains("missing.pem"), "{err}");
    // A certificate needs its key and a key its certificate.
    let err = configure(&[tls[0], ("tls_cert_file", garbage)]).unwrap_err();
    assert_eq!(err.key(), "redis.tls_key_file", "{err}");
    let err = configure(&[tls[0], ("tls_key_file", garbage)]).unwrap_err();
    assert_eq!(err.key(), "redis.tls_cert_file", "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn keys_and_values_with_any_bytes_round_trip() {
    let server = RedisServer::start();
    let pool = configure(&[("url", &server.url(0))]).unwrap();
    let factory = RedisContextFactory::new(pool);
    let mut redis = factory.connection();

    let every_byte: Vec<u8> = (0..=255u8).collect();
    let reversed: Vec<u8> = every_byte.iter().rev().copied().collect();
    let protocol_like = b"*1\r\n$4\r\nPING\r\n-ERR not really\r\n+OK\r\n".to_vec();
    let cases: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (every_byte.clone(), reversed.clone()),
        (Vec::new(), b"empty key".to_vec()),
        (b"empty value".to_vec(), Vec::new()),
        (protocol_like.clone(), protocol_like.clone()),
        (b"\xff\xfe\x00".to_vec(), vec![0u8; 100_000]),
        (
            "ключ 🔑".as_bytes().to_vec(),
            "значение".as_bytes().to_vec(),
        ),
    ];
    for (key, value) in &cases {
        let _: () = redis.set(key, value).await.unwrap();
        let got: Vec<u8> = redis.get(key).await.unwrap();
        assert_eq!(&got, value, "key {key:?}");
        let _: () = redis.hset("any-bytes-hash", key, value).await.unwrap();
    }
    // The same through a pipeline and a hash.
    let mut pipe = redis::pipe();
    for (key, _) in &cases {
        pipe.get(key);
    }
    let values: Vec<Vec<u8>> = pipe.query_async(&mut redis).await.unwrap();
    let expected: Vec<Vec<u8>> = cases.iter().map(|(_, v)| v.clone()).collect();
    assert_eq!(values, expected);
    let field: Vec<u8> = redis.hget("any-bytes-hash", &every_byte).await.unwrap();
    assert_eq!(field, reversed);

    // A queue whose key and messages are odd too.
    let mut queue = MessageQueue::new("queue \r\n\u{0} key", factory.connection());
    queue.put(&protocol_like).await.unwrap();
    queue.put(&[]).await.unwrap();
    assert_eq!(
        queue.get(Some(Duration::from_secs(1))).await.unwrap(),
        protocol_like
    );
    assert_eq!(queue.get(Some(Duration::from_secs(1))).await.unwrap(), b"");
}

/// What the fake server sends back once it has read something.
#[derive(Clone, Copy, Debug)]
enum Garbage {
    Nonsense,
    NegativeLength,
    HugeLength,
    CloseAtOnce,
    Silence,
    /// Answers the connection hello properly, then nonsense to every command.
    HelloThenNonsense,
}

impl Garbage {
    fn reply(self) -> &'static [u8] {
        match self {
            Garbage::Nonsense => b"HTTP/1.1 400 Bad Request\r\n\r\n\xff\xfe garbage",
            Garbage::NegativeLength => b"$-5\r\nabc\r\n*-7\r\n",
            Garbage::HugeLength => b"$99999999999999999999\r\n",
            Garbage::HelloThenNonsense => b"\xff\x00 what?\r\n",
            Garbage::CloseAtOnce | Garbage::Silence => b"",
        }
    }
}

/// A listener that speaks `garbage` to every connection, until the test ends.
async fn garbage_server(garbage: Garbage) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        for _ in 0..100 {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                if let Garbage::CloseAtOnce = garbage {
                    return;
                }
                let mut buf = [0u8; 4096];
                for round in 0..100 {
                    match tokio::time::timeout(Duration::from_secs(5), socket.read(&mut buf)).await
                    {
                        Ok(Ok(n)) if n > 0 => {
                            let reply = match garbage {
                                // The hello is a pipeline of CLIENT SETINFO commands.
                                Garbage::HelloThenNonsense if round == 0 => {
                                    let commands =
                                        buf[..n].windows(7).filter(|w| w == b"SETINFO").count();
                                    b"+OK\r\n".repeat(commands.max(1))
                                }
                                _ => garbage.reply().to_vec(),
                            };
                            if socket.write_all(&reply).await.is_err() {
                                return;
                            }
                        }
                        _ => return,
                    }
                }
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_speaks_garbage_gives_clear_errors() {
    for garbage in [
        Garbage::Nonsense,
        Garbage::NegativeLength,
        Garbage::HugeLength,
        Garbage::CloseAtOnce,
        Garbage::Silence,
        Garbage::HelloThenNonsense,
    ] {
        let port = garbage_server(garbage).await;
        let url = format!("redis://127.0.0.1:{port}/0");
        let pool = configure(&[
            ("url", &url),
            ("socket_timeout", "500 milliseconds"),
            ("socket_connect_timeout", "500 milliseconds"),
            ("max_connections", "3"),
        ])
        .unwrap();
        let factory = RedisContextFactory::new(pool.clone());
        for attempt in 0..3 {
            let mut redis = factory.connection();
            let started = Instant::now();
            let err = match attempt {
                0 => redis.get::<_, Option<String>>("k").await.unwrap_err(),
                1 => redis
                    .blpop::<_, Option<(String, String)>>("q", 0.1)
                    .await
                    .unwrap_err(),
                _ => {
                    let mut pipe = redis::pipe();
                    pipe.set("a", 1).get("a");
                    pipe.query_async::<(String, i64)>(&mut redis)
                        .await
                        .unwrap_err()
                }
            };
            let took = started.elapsed();
            let message = err.to_string();

            assert!(!message.is_empty());
            // Connection failures name the address; a garbled reply is a parse error (or,
            // for the rest of a pipeline, the dropped connection that follows it).
            assert!(
                message.contains(&format!("redis at 127.0.0.1:{port}"))
                    || (matches!(garbage, Garbage::HelloThenNonsense)
                        && (err.kind() == redis::ErrorKind::Parse || err.is_connection_dropped())),
                "{garbage:?}: unclear error {message:?} ({:?})",
                err.kind()
            );
            assert!(took < Duration::from_secs(3), "{garbage:?}: took {took:?}");
        }
        let state = pool.state();
        assert_eq!(state.in_use, 0, "{garbage:?}: {state:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    /// The whole client configuration path: any value under any key is either accepted or a
    /// configuration error naming a key under the prefix, never a panic.
    #[test]
    fn pool_from_config_never_panics(
        url in "(redis|rediss|unix|memory|http)://[a-z0-9:@/?=&%.\\[\\]-]{0,25}",
        pairs in proptest::collection::vec(
            (
                "(max_connections|socket_timeout|socket_connect_timeout|pool_timeout|client_name|tls_ca_file|tls_cert_file|tls_key_file|bogus)",
                "\\PC{0,20}",
            ),
            0..4,
        ),
    ) {
        let mut config = RawConfig::from_pairs([("redis.url", url)]);
        for (k, v) in pairs {
            config.insert(format!("redis.{k}"), v);
        }
        if let Err(err) = pool_from_config(&config, "redis.") {
            prop_assert!(err.key().starts_with("redis."), "{}", err);
            prop_assert!(!err.to_string().is_empty());
        }
    }
}
