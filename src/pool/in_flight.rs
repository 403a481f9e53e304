//! Commands in flight on a shared connection, for the pool's `in_use`.
//!
//! Every command on a shared connection counts itself in and out. With one counter, the
//! worker threads would pass its cache line back and forth twice per command; here each
//! thread counts in a shard of its own and only the (rare) reader adds the shards up.

use std::cell::Cell;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

const SHARDS: usize = 16;

/// A count of commands in flight, sharded by thread.
#[derive(Debug, Default)]
pub(crate) struct InFlightCount {
    shards: [Shard; SHARDS],
}

#[derive(Debug, Default)]
// Two cache lines: adjacent-line prefetching would otherwise couple neighbours.
#[repr(align(128))]
struct Shard(AtomicI64);

/// A command counted in; dropping it counts it out of the same shard.
#[must_use = "the command counts as in flight until this is dropped"]
pub(crate) struct Counted<'a> {
    shard: &'a AtomicI64,
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.shard.fetch_sub(1, Ordering::Relaxed);
    }
}

impl InFlightCount {
    /// Counts one command in until the returned guard is dropped (on whatever thread).
    pub(crate) fn enter(&self) -> Counted<'_> {
        let shard = &self.shards[thread_shard()].0;
        shard.fetch_add(1, Ordering::Relaxed);
        Counted { shard }
    }

    /// How many commands are in flight now.
    pub(crate) fn total(&self) -> u32 {
        let sum: i64 = self
            .shards
            .iter()
            .map(|s| s.0.load(Ordering::Relaxed))
            .sum();
        u32::try_from(sum.max(0)).unwrap_or(u32::MAX)
    }
}

/// This thread's shard: threads are numbered as they first count, round-robin.
fn thread_shard() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: Cell<Option<usize>> = const { Cell::new(None) };
    }
    SHARD.with(|shard| match shard.get() {
        Some(index) => index,
        None => {
            let index = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
            shard.set(Some(index));
            index
        }
    })
}

#[cfg(test)]
mod tests {
    use super::InFlightCount;
    use std::sync::Arc;

    #[test]
    fn counts_across_threads_even_when_a_command_ends_on_another_thread() {
        let count = Arc::new(InFlightCount::default());
        let held: Vec<_> = (0..3).map(|_| count.enter()).collect();
        assert_eq!(count.total(), 3);
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    let a = count.enter();
                    let b = count.enter();
                    assert!(count.total() >= 5);
                    drop((a, b));
                });
            }
        });
        assert_eq!(count.total(), 3);
        // Counted in here, counted out on another thread.
        std::thread::scope(|scope| {
            let mut held = held;
            let last = held.pop();
            scope.spawn(move || drop(last));
            drop(held);
        });
        assert_eq!(count.total(), 0);
    }
}
