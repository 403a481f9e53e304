//! The fault proxy in `tests/common/fault_proxy.rs` does what the reliability tests rely on:
//! each fault checked with raw RESP on a private `redis-server`.

mod common;

use std::time::{Duration, Instant};

use common::fault_proxy::{FaultProxy, NewConnections};
use common::RedisServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

const QUIET: Duration = Duration::from_millis(300);

async fn connect(proxy: &FaultProxy) -> TcpStream {
    TcpStream::connect(("127.0.0.1", proxy.port()))
        .await
        .unwrap()
}

/// Sends an inline PING and reads the reply, or `None` if nothing arrives within `QUIET`.
async fn ping(stream: &mut TcpStream) -> Option<std::io::Result<Vec<u8>>> {
    stream.write_all(b"PING\r\n").await.unwrap();
    let mut reply = vec![0u8; 7];
    match timeout(QUIET, stream.read_exact(&mut reply)).await {
        Err(_) => None,
        Ok(read) => Some(read.map(|_| reply)),
    }
}

#[tokio::test]
async fn forwards_and_adds_latency() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.port()).await;
    let mut stream = connect(&proxy).await;
    assert_eq!(ping(&mut stream).await.unwrap().unwrap(), b"+PONG\r\n");

    proxy.set_latency(Duration::from_millis(150));
    let started = Instant::now();
    assert_eq!(ping(&mut stream).await.unwrap().unwrap(), b"+PONG\r\n");
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert_eq!(proxy.accepted(), 1);
}

#[tokio::test]
async fn blackholes_existing_connections_only() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.port()).await;
    let mut old = connect(&proxy).await;
    assert!(ping(&mut old).await.unwrap().is_ok());

    proxy.blackhole_existing();
    assert!(
        ping(&mut old).await.is_none(),
        "a blackholed connection answered"
    );
    let mut new = connect(&proxy).await;
    assert_eq!(ping(&mut new).await.unwrap().unwrap(), b"+PONG\r\n");
    assert_eq!(
        proxy.open_connections(),
        2,
        "the blackholed socket stays open"
    );
}

#[tokio::test]
async fn resets_existing_connections() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.port()).await;
    let mut old = connect(&proxy).await;
    assert!(ping(&mut old).await.unwrap().is_ok());

    proxy.reset_existing();
    let mut buf = [0u8; 16];
    let read = timeout(Duration::from_secs(5), old.read(&mut buf))
        .await
        .unwrap();
    let err = read.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
}

#[tokio::test]
async fn refuses_then_accepts_again() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.port()).await;
    proxy.set_new_connections(NewConnections::Refuse);
    let mut refused = false;
    // The listener closes asynchronously: allow it a bounded moment.
    for _ in 0..50 {
        match TcpStream::connect(("127.0.0.1", proxy.port())).await {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                refused = true;
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    assert!(refused, "connections were not refused");

    proxy.set_new_connections(NewConnections::Forward);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut stream = loop {
        match TcpStream::connect(("127.0.0.1", proxy.port())).await {
            Ok(stream) => break stream,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(e) => panic!("proxy did not listen again: {e}"),
        }
    };
    assert_eq!(ping(&mut stream).await.unwrap().unwrap(), b"+PONG\r\n");
}

#[tokio::test]
async fn accepts_new_connections_without_answering() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.port()).await;
    proxy.set_new_connections(NewConnections::Blackhole);
    let mut stream = connect(&proxy).await;
    assert!(ping(&mut stream).await.is_none());
    assert_eq!(server.connected_clients(), 0, "nothing reached the server");
}

#[tokio::test]
async fn cuts_replies_after_n_bytes() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.port()).await;
    let mut stalled = connect(&proxy).await;
    assert!(ping(&mut stalled).await.unwrap().is_ok());

    proxy.cut_replies_after(3, false);
    stalled.write_all(b"ECHO hello-world\r\n").await.unwrap();
    let mut got = vec![0u8; 3];
    stalled.read_exact(&mut got).await.unwrap();
    assert_eq!(got, b"$11");
    let mut more = [0u8; 1];
    assert!(
        timeout(QUIET, stalled.read(&mut more)).await.is_err(),
        "stall expected"
    );

    proxy.cut_replies_after(4, true);
    let mut closed = connect(&proxy).await;
    closed.write_all(b"ECHO hello-world\r\n").await.unwrap();
    let mut all = Vec::new();
    timeout(Duration::from_secs(5), closed.read_to_end(&mut all))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(all, b"$11\r");
}
