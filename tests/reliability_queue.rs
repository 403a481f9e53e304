//! Guarantee 6: a `MessageQueue` loses nothing and duplicates nothing: 8 producers and 8
//! consumers move 100,000 binary messages (empty ones, 1 MiB ones, bytes that are not UTF-8)
//! and the multiset received equals the multiset sent.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use baseplate_redis::config::RawConfig;
use baseplate_redis::{pool_from_config, MessageQueue, RedisContextFactory};
use common::RedisServer;

const MESSAGES: usize = 100_000;
const PRODUCERS: usize = 8;
const CONSUMERS: usize = 8;
const MIB: usize = 1 << 20;

/// Message `i`: mostly small and not UTF-8; every 10,000th empty (so some are equal);
/// four of 1 MiB.
fn message(i: usize) -> Vec<u8> {
    if i % 10_000 == 0 {
        return Vec::new();
    }
    if i % 25_000 == 1 {
        let mut big = vec![(i % 251) as u8; MIB];
        big[..8].copy_from_slice(&(i as u64).to_le_bytes());
        big[MIB - 1] = 0xff;
        return big;
    }
    let mut small = vec![0xff, 0xfe, 0x00, b'\r', b'\n'];
    small.extend_from_slice(&(i as u64).to_le_bytes());
    small.extend_from_slice(&[0x80, 0xc3, 0x28]);
    small
}

fn count(counts: &mut HashMap<Vec<u8>, u32>, message: Vec<u8>) {
    *counts.entry(message).or_default() += 1;
}

#[test]
fn queue_moves_every_message_exactly_once() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(100), run())
            .await
            .unwrap()
    });
}

async fn run() {
    let server = RedisServer::start();
    let config = RawConfig::from_pairs([
        ("redis.url", server.url(0)),
        ("redis.max_connections", "12".to_string()),
        ("redis.socket_timeout", "5 seconds".to_string()),
    ]);
    let pool = pool_from_config(&config, "redis.").unwrap();
    let factory = Arc::new(RedisContextFactory::new(pool.clone()));
    let started = Instant::now();

    let producers_done = Arc::new(AtomicBool::new(false));
    let received_total = Arc::new(AtomicUsize::new(0));
    let blocking_pops = Arc::new(AtomicUsize::new(0));
    let mut consumers = Vec::new();
    for _ in 0..CONSUMERS {
        let factory = factory.clone();
        let producers_done = producers_done.clone();
        let received_total = received_total.clone();
        let blocking_pops = blocking_pops.clone();
        consumers.push(tokio::spawn(async move {
            let mut queue = MessageQueue::new("reliability:queue", factory.connection());
            let mut received = HashMap::new();
            // Bounded: a consumer stops after a quiet spell once all was produced.
            let mut wait = Duration::ZERO;
            for _ in 0..2 * MESSAGES {
                // Drain without blocking (LPOP) while messages are there; block (BLPOP) when
                // the queue runs dry, so both paths are exercised.
                match queue.get(Some(wait)).await {
                    Ok(message) => {
                        if wait > Duration::ZERO {
                            blocking_pops.fetch_add(1, Ordering::Relaxed);
                        }
                        wait = Duration::ZERO;
                        count(&mut received, message);
                        received_total.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(err) if err.is_queue_timeout() => {
                        if wait > Duration::ZERO && producers_done.load(Ordering::Relaxed) {
                            break;
                        }
                        wait = Duration::from_millis(300);
                    }
                    Err(err) => panic!("consumer failed: {err}"),
                }
            }
            received
        }));
    }

    let mut producers = Vec::new();
    for p in 0..PRODUCERS {
        let factory = factory.clone();
        producers.push(tokio::spawn(async move {
            let mut queue = MessageQueue::new("reliability:queue", factory.connection());
            let mut sent = HashMap::new();
            for i in (p..MESSAGES).step_by(PRODUCERS) {
                let message = message(i);
                queue.put(&message).await.unwrap();
                count(&mut sent, message);
            }
            sent
        }));
    }

    let mut sent: HashMap<Vec<u8>, u32> = HashMap::new();
    for producer in producers {
        for (message, n) in producer.await.unwrap() {
            *sent.entry(message).or_default() += n;
        }
    }
    eprintln!("produced in {:?}", started.elapsed());
    producers_done.store(true, Ordering::Relaxed);
    let mut received: HashMap<Vec<u8>, u32> = HashMap::new();
    for consumer in consumers {
        for (message, n) in consumer.await.unwrap() {
            *received.entry(message).or_default() += n;
        }
    }
    eprintln!(
        "moved {} messages in {:?} ({} by a blocking pop)",
        received_total.load(Ordering::Relaxed),
        started.elapsed(),
        blocking_pops.load(Ordering::Relaxed)
    );

    assert_eq!(sent.values().map(|&n| n as usize).sum::<usize>(), MESSAGES);
    assert_eq!(sent.get(&Vec::new()), Some(&10));
    assert_eq!(sent.keys().filter(|m| m.len() == MIB).count(), 4);
    assert!(sent.keys().any(|m| std::str::from_utf8(m).is_err()));
    assert_eq!(received_total.load(Ordering::Relaxed), MESSAGES);
    // Compared without printing 100,000 messages on failure.
    let lost = sent
        .iter()
        .filter(|(m, n)| received.get(*m) != Some(n))
        .count();
    let extra = received.keys().filter(|m| !sent.contains_key(*m)).count();
    assert_eq!((lost, extra), (0, 0), "messages lost or duplicated");
    assert!(sent == received);
    assert_eq!(server.query::<u64>(&["LLEN", "reliability:queue"]), 0);
    let state = pool.state();
    assert_eq!(state.in_use, 0, "{state:?}");
    assert!(state.open <= 12, "{state:?}");
}
