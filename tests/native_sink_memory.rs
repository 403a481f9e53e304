//! The native sink's memory does not grow with the number of measurements: millions of
//! commands' worth of metrics, never scraped, leave the process size where it was.
//! (Alone in its file: the process size is measured, and no other test may run beside it.)

use std::time::{Duration, Instant};

use baseplate_redis::sink::{key, names, MetricsSink, NativeSink};

/// The process' resident memory, in bytes.
fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

#[test]
fn memory_stays_flat_without_scrapes() {
    let sink = NativeSink::new();
    let labels = [
        (names::LABEL_COMMAND, "get"),
        (names::LABEL_DATABASE, "0"),
        (names::LABEL_CLIENT_NAME, "foo"),
        (names::LABEL_TYPE, names::TYPE_STANDALONE),
        (names::LABEL_SUCCESS, "true"),
    ];
    let requests = sink.counter(&key(names::REQUESTS_TOTAL, &labels));
    let latency = sink.histogram(&key(names::LATENCY_SECONDS, &labels));
    let active = sink.gauge(&key(names::ACTIVE_REQUESTS, &labels[..4]));
    let command = |i: u64| {
        active.increment(1.0);
        requests.increment(1);
        latency.record((i % 5000) as f64 * 1e-6);
        active.decrement(1.0);
    };

    const THREADS: u64 = 4;
    const PER_ROUND: u64 = 250_000;
    let round = || {
        std::thread::scope(|s| {
            for _ in 0..THREADS {
                s.spawn(|| (0..PER_ROUND).for_each(command));
            }
        })
    };
    // Warm up: every thread has its shard, every allocation of the runtime is made.
    round();
    let before = resident_bytes();
    let started = Instant::now();
    let mut rounds = 1;
    // 4 million more commands (fewer if the machine is very slow: bounded at 20 s).
    while rounds < 5 && started.elapsed() < Duration::from_secs(20) {
        round();
        rounds += 1;
    }
    let grown = resident_bytes().saturating_sub(before);

    let commands = rounds * THREADS * PER_ROUND;
    let text = sink.render();
    assert!(
        text.contains(&format!("redis_client_latency_seconds_count{{redis_command=\"get\",redis_database=\"0\",redis_client_name=\"foo\",redis_type=\"standalone\",redis_success=\"true\"}} {commands}")),
        "{text}"
    );
    // A buffer of samples would hold 8 bytes per command: 32 MB here.
    assert!(
        grown < 2 << 20,
        "the process grew by {grown} bytes over {} commands",
        commands - THREADS * PER_ROUND
    );
}
