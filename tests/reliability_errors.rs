//! Guarantee 10: errors say what failed and where.
//!
//! Through a fault proxy, in front of a password-protected `redis-server`: a reply cut in the
//! middle of a bulk string, a reset connection, and a server that can no longer be reached
//! give errors that name the command (or the pipeline's commands) and the server's address,
//! never the password; the cut reply and the reset are connection errors
//! (`is_connection_error()`, `503` in the axum layer). The queue's operations the same.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use baseplate_redis::config::RawConfig;
use baseplate_redis::pool::PoolBackend;
use baseplate_redis::{pool_from_config, Error, MessageQueue, RedisContextFactory};
use common::fault_proxy::{FaultProxy, NewConnections};
use common::RedisServer;
use redis::AsyncCommands;

const PASSWORD: &str = "s3cret-for-errors";
/// Longer than any connection handshake's replies, far shorter than the value read.
const CUT_AFTER: usize = 2_000;

struct Setup {
    _server: RedisServer,
    proxy: FaultProxy,
    pool: Arc<dyn PoolBackend>,
    factory: RedisContextFactory,
}

impl Setup {
    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.proxy.port())
    }
}

async fn setup() -> Setup {
    let server = RedisServer::start_with(&["--requirepass", PASSWORD]);
    let proxy = FaultProxy::start(server.port()).await;
    let config = RawConfig::from_pairs([
        (
            "redis.url",
            format!("redis://:{PASSWORD}@127.0.0.1:{}/0", proxy.port()),
        ),
        ("redis.socket_timeout", "2 seconds".to_string()),
        ("redis.socket_connect_timeout", "2 seconds".to_string()),
        ("redis.pool_timeout", "2 seconds".to_string()),
    ]);
    let pool = pool_from_config(&config, "redis.").unwrap();
    let factory = RedisContextFactory::new(pool.clone());
    let big = "x".repeat(100_000);
    let mut redis = factory.connection();
    let _: () = redis.set("big", &big).await.unwrap();
    let _: () = redis.rpush("jobs", &big).await.unwrap();
    Setup {
        _server: server,
        proxy,
        pool,
        factory,
    }
}

/// Names `command` and the address, never the password, is a connection error, and is a
/// 503 in the axum layer.
fn assert_says_what_and_where(err: Error, command: &str, address: &str) {
    let message = err.to_string();
    eprintln!("{message}");
    assert!(message.contains(command), "names no {command}: {message}");
    assert!(message.contains(address), "names no {address}: {message}");
    assert!(!message.contains(PASSWORD), "leaks the password: {message}");
    assert!(
        !format!("{err:?}").contains(PASSWORD),
        "leaks the password: {err:?}"
    );
    assert!(
        err.is_connection_error(),
        "not a connection error: {message}"
    );
    assert_eq!(
        err.into_response().status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_cut_mid_bulk_is_a_connection_error_naming_command_and_address() {
    let setup = setup().await;
    let address = setup.address();
    let mut redis = setup.factory.connection();
    setup.proxy.cut_replies_after(CUT_AFTER, true);

    // On the shared connection: redis-rs alone says "Parse error … Unexpected end of input".
    let err = redis.get::<_, String>("big").await.unwrap_err();
    assert!(err.is_io_error(), "{err}");
    assert_says_what_and_where(Error::from(err), "GET", &address);

    // A pipeline names its commands.
    let mut pipe = redis.pipeline("read_big");
    pipe.get("big").strlen("big");
    let err = pipe
        .query_async::<(String, i64)>(&mut redis)
        .await
        .unwrap_err();
    assert_says_what_and_where(Error::from(err), "pipeline (GET, STRLEN)", &address);

    // On an exclusive connection (a queue's BLPOP).
    let mut queue = MessageQueue::new("jobs", setup.factory.connection());
    let err = queue.get(Some(Duration::from_secs(1))).await.unwrap_err();
    assert_says_what_and_where(err, "BLPOP", &address);

    // Once replies flow again, the client recovers by itself and nothing is left in use.
    setup.proxy.pass_through();
    let mut recovered = false;
    for _ in 0..20 {
        if let Ok(value) = redis.get::<_, String>("big").await {
            assert_eq!(value.len(), 100_000);
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(recovered, "no GET succeeded after the cut was lifted");
    assert_eq!(setup.pool.state().in_use, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_reset_commands_and_queue_operations_name_command_and_address() {
    let setup = setup().await;
    let address = setup.address();
    let mut redis = setup.factory.connection();
    let mut queue = MessageQueue::new("jobs", setup.factory.connection());
    // Connections open, shared and exclusive, then reset; new ones are refused so that
    // nothing recovers under the test.
    queue.put(b"first").await.unwrap();
    assert!(!queue.get(Some(Duration::ZERO)).await.unwrap().is_empty());
    setup.proxy.set_new_connections(NewConnections::Refuse);
    setup.proxy.reset_existing();
    tokio::time::sleep(Duration::from_millis(50)).await;

    let err = redis.get::<_, String>("big").await.unwrap_err();
    assert_says_what_and_where(Error::from(err), "GET", &address);
    let err = redis.set::<_, _, ()>("k", "v").await.unwrap_err();
    assert_says_what_and_where(Error::from(err), "SET", &address);
    let err = queue.put(b"second").await.unwrap_err();
    assert_says_what_and_where(err, "RPUSH", &address);
    let err = queue.get(Some(Duration::ZERO)).await.unwrap_err();
    assert_says_what_and_where(err, "LPOP", &address);
    let err = queue
        .get(Some(Duration::from_millis(200)))
        .await
        .unwrap_err();
    assert_says_what_and_where(err, "BLPOP", &address);
    let err = queue.close().await.unwrap_err();
    assert_says_what_and_where(err, "DEL", &address);
    assert_eq!(setup.pool.state().in_use, 0);
}

/// Redis's own error replies stay as they are: not connection errors, and with their code.
#[tokio::test]
async fn error_replies_are_passed_on_unchanged() {
    let setup = setup().await;
    let mut redis = setup.factory.connection();
    let err = redis.incr::<_, _, i64>("big", 1).await.unwrap_err();
    assert_eq!(err.code(), Some("ERR"), "{err}");
    let err = Error::from(err);
    assert!(!err.is_connection_error(), "{err}");
    assert_eq!(
        err.into_response().status(),
        StatusCode::INTERNAL_SERVER_ERROR
    );
    // The queue names its command and the server in them too.
    let mut queue = MessageQueue::new("big", setup.factory.connection());
    let err = queue.put(b"job").await.unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("RPUSH") && message.contains(&setup.address()),
        "{message}"
    );
    assert!(message.contains("WRONGTYPE"), "{message}");
    assert!(!err.is_connection_error(), "{message}");
}

/// A reply cut at any byte (inside `$len`, inside the payload, before its CRLF, inside an
/// array, inside a pipeline's replies) and the socket closed: a connection error naming the
/// command and the address, never a timeout or a parse error; the handle goes on working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_cut_at_every_byte_is_a_connection_error() {
    let server = RedisServer::start();
    server.query::<()>(&["SET", "k", "hello"]);
    server.query::<()>(&["RPUSH", "l", "a", "bb"]);
    // `$5\r\nhello\r\n` is 11 bytes, `*2\r\n$1\r\na\r\n$2\r\nbb\r\n` 19; the atomic
    // pipeline's replies (+OK, 2 × +QUEUED, then both in an array) 5 + 2 × 9 + 4 + 11 + 19.
    for (what, len) in [("GET", 11), ("LRANGE", 19), ("pipeline", 57)] {
        for cut in 0..len {
            let proxy = FaultProxy::start(server.port()).await;
            let config = RawConfig::from_pairs([
                ("redis.url", proxy.url(0)),
                ("redis.socket_timeout", "2 seconds".to_string()),
            ]);
            let factory = RedisContextFactory::new(pool_from_config(&config, "redis.").unwrap());
            let mut redis = factory.connection();
            redis::cmd("PING").exec_async(&mut redis).await.unwrap();
            proxy.apply_to_existing(common::fault_proxy::ConnectionFault::CutRepliesAfter {
                bytes: cut,
                then_close: true,
            });
            // The proxy's task takes the fault on its next turn: a reply forwarded whole
            // before that leaves the cut for the next one.
            let mut result = Ok(());
            for _ in 0..20 {
                result = match what {
                    "GET" => redis.get::<_, String>("k").await.map(drop),
                    "LRANGE" => redis.lrange::<_, Vec<String>>("l", 0, -1).await.map(drop),
                    _ => {
                        let mut pipe = redis.pipeline("cut");
                        pipe.get("k").lrange("l", 0, -1);
                        pipe.query_async::<(String, Vec<String>)>(&mut redis)
                            .await
                            .map(drop)
                    }
                };
                if result.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let err = Error::from(result.unwrap_err());
            let message = err.to_string();
            assert!(
                err.is_connection_error() && !err.is_timeout(),
                "{what} cut after {cut}: {message}"
            );
            assert!(message.contains(what), "{what} cut after {cut}: {message}");
            assert!(
                message.contains(&format!("127.0.0.1:{}", proxy.port())),
                "{message}"
            );
            let value: String = redis.get("k").await.unwrap();
            assert_eq!(value, "hello");
        }
    }
}
