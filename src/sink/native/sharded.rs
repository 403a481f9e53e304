//! Counters, gauges and fixed-bucket histograms split into per-thread shards.
//!
//! Each metric holds one shard per thread slot, every shard on cache lines of its own. A
//! thread that records claims a slot for as long as it lives (the runtime's workers, in
//! practice): it is then the only writer of that slot's shards, so a measurement is a plain
//! load and store on a line no other core writes, with no locked instruction. Threads beyond
//! the slots share one more shard, with atomic adds (slower, never wrong). Readers add the
//! shards up when the metrics are rendered. Memory is fixed when a metric is made: nothing
//! grows with the number of measurements.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use metrics::{CounterFn, GaugeFn, HistogramFn};

/// Words per cache line (two 64-byte lines: adjacent-line prefetch pulls lines in pairs).
const LINE_WORDS: usize = 16;

/// One cache-line-aligned block of words.
#[repr(align(128))]
struct Line([AtomicU64; LINE_WORDS]);

impl Line {
    fn zeroed() -> Self {
        Line(std::array::from_fn(|_| AtomicU64::new(0)))
    }
}

/// `shards` shards of `words` words each, every shard starting on a line of its own.
struct ShardedWords {
    lines: Box<[Line]>,
    lines_per_shard: usize,
}

impl ShardedWords {
    fn new(words: usize) -> Self {
        let lines_per_shard = words.div_ceil(LINE_WORDS).max(1);
        ShardedWords {
            lines: (0..lines_per_shard * shard_count())
                .map(|_| Line::zeroed())
                .collect(),
            lines_per_shard,
        }
    }

    /// The calling thread's shard.
    #[inline]
    fn local(&self) -> Shard<'_> {
        let (shard, owned) = this_threads_shard();
        let first = shard * self.lines_per_shard;
        Shard {
            lines: &self.lines[first..first + self.lines_per_shard],
            owned,
        }
    }

    #[inline]
    fn word(&self, shard: usize, index: usize) -> &AtomicU64 {
        let line = shard * self.lines_per_shard + index / LINE_WORDS;
        &self.lines[line].0[index % LINE_WORDS]
    }

    /// Word `index` of every shard.
    fn across_shards(&self, index: usize) -> impl Iterator<Item = &AtomicU64> {
        (0..shard_count()).map(move |shard| self.word(shard, index))
    }
}

/// One thread's view of its shard of a metric.
struct Shard<'a> {
    lines: &'a [Line],
    /// Whether the thread owns the shard (the shared shard needs atomic adds).
    owned: bool,
}

impl Shard<'_> {
    #[inline]
    fn word(&self, index: usize) -> &AtomicU64 {
        &self.lines[index / LINE_WORDS].0[index % LINE_WORDS]
    }

    /// Adds `value` to word `index`.
    #[inline]
    fn add_u64(&self, index: usize, value: u64) {
        let word = self.word(index);
        if self.owned {
            // The only writer: no locked instruction needed.
            word.store(
                word.load(Ordering::Relaxed).wrapping_add(value),
                Ordering::Relaxed,
            );
        } else {
            word.fetch_add(value, Ordering::Relaxed);
        }
    }

    /// Adds `value` to the `f64` kept as bits in word `index`.
    #[inline]
    fn add_f64(&self, index: usize, value: f64) {
        let word = self.word(index);
        if self.owned {
            let sum = f64::from_bits(word.load(Ordering::Relaxed)) + value;
            word.store(sum.to_bits(), Ordering::Relaxed);
            return;
        }
        let mut current = word.load(Ordering::Relaxed);
        loop {
            let new = (f64::from_bits(current) + value).to_bits();
            match word.compare_exchange_weak(current, new, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return,
                Err(actual) => current = actual,
            }
        }
    }
}

/// How many thread slots there are: twice the CPUs (the runtime's workers, and a few more
/// threads), from 4 to 64.
fn owned_slots() -> usize {
    static SLOTS: OnceLock<usize> = OnceLock::new();
    *SLOTS.get_or_init(|| {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        (cpus * 2).clamp(4, 64)
    })
}

/// Shards per metric: one per slot, and the one shared by threads without a slot.
fn shard_count() -> usize {
    owned_slots() + 1
}

/// The slots not owned by a live thread (returned ones, then never used ones).
struct FreeSlots {
    returned: Vec<usize>,
    never_used: usize,
}

static FREE_SLOTS: Mutex<FreeSlots> = Mutex::new(FreeSlots {
    returned: Vec::new(),
    never_used: 0,
});

/// A thread's slot, given back when the thread ends. The mutex that hands it over orders
/// the old owner's last writes before the new owner's first ones.
struct OwnedSlot(Option<usize>);

impl OwnedSlot {
    fn claim() -> Self {
        let mut free = FREE_SLOTS.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = free.returned.pop() {
            return OwnedSlot(Some(slot));
        }
        if free.never_used < owned_slots() {
            free.never_used += 1;
            return OwnedSlot(Some(free.never_used - 1));
        }
        OwnedSlot(None)
    }
}

impl Drop for OwnedSlot {
    fn drop(&mut self) {
        if let Some(slot) = self.0 {
            let mut free = FREE_SLOTS.lock().unwrap_or_else(|e| e.into_inner());
            free.returned.push(slot);
        }
    }
}

thread_local! {
    static SLOT: OwnedSlot = OwnedSlot::claim();
}

/// The calling thread's shard, and whether the thread owns it.
#[inline]
fn this_threads_shard() -> (usize, bool) {
    // A thread whose slot is already given back (it is ending) writes the shared shard.
    match SLOT.try_with(|slot| slot.0) {
        Ok(Some(slot)) => (slot, true),
        _ => (owned_slots(), false),
    }
}

fn sum_f64<'a>(words: impl Iterator<Item = &'a AtomicU64>) -> f64 {
    words
        .map(|word| f64::from_bits(word.load(Ordering::Relaxed)))
        .sum()
}

/// A counter: a `u64` per shard, plus a base moved by `absolute`.
pub(super) struct ShardedCounter {
    words: ShardedWords,
    base: AtomicU64,
    // Serialises `absolute` (rare), which reads every shard before moving the base.
    absolute: Mutex<()>,
}

impl ShardedCounter {
    pub(super) fn new() -> Self {
        ShardedCounter {
            words: ShardedWords::new(1),
            base: AtomicU64::new(0),
            absolute: Mutex::new(()),
        }
    }

    /// The counter's value now.
    pub(super) fn value(&self) -> u64 {
        self.words
            .across_shards(0)
            .fold(self.base.load(Ordering::Relaxed), |total, word| {
                total.wrapping_add(word.load(Ordering::Relaxed))
            })
    }
}

impl CounterFn for ShardedCounter {
    #[inline]
    fn increment(&self, value: u64) {
        self.words.local().add_u64(0, value);
    }

    /// Raises the counter to `value` if it is below (a counter never goes down).
    fn absolute(&self, value: u64) {
        let _serialised = self.absolute.lock().unwrap_or_else(|e| e.into_inner());
        let current = self.value();
        if value > current {
            self.base.fetch_add(value - current, Ordering::Relaxed);
        }
    }
}

/// A gauge: an `f64` change per shard, plus a base that `set` moves so that the total is the
/// value set.
pub(super) struct ShardedGauge {
    words: ShardedWords,
    base: AtomicU64,
    // Serialises `set` (rare: the pool gauges), which reads every shard before moving the base.
    set: Mutex<()>,
}

impl ShardedGauge {
    pub(super) fn new() -> Self {
        ShardedGauge {
            words: ShardedWords::new(1),
            base: AtomicU64::new(0.0f64.to_bits()),
            set: Mutex::new(()),
        }
    }

    /// The gauge's value now.
    pub(super) fn value(&self) -> f64 {
        f64::from_bits(self.base.load(Ordering::Relaxed)) + sum_f64(self.words.across_shards(0))
    }
}

impl GaugeFn for ShardedGauge {
    #[inline]
    fn increment(&self, value: f64) {
        self.words.local().add_f64(0, value);
    }

    #[inline]
    fn decrement(&self, value: f64) {
        self.words.local().add_f64(0, -value);
    }

    /// Changes made while the shards are read count as made after the `set` or before it,
    /// never as lost.
    fn set(&self, value: f64) {
        let _serialised = self.set.lock().unwrap_or_else(|e| e.into_inner());
        let changes = sum_f64(self.words.across_shards(0));
        self.base
            .store((value - changes).to_bits(), Ordering::Relaxed);
    }
}

/// A histogram with fixed bucket bounds. Each shard holds one count per bucket (not
/// cumulative), one for values above the last bound, and the sum of the values.
pub(super) struct ShardedHistogram {
    bounds: Box<[f64]>,
    words: ShardedWords,
}

/// What a histogram holds, added up over its shards.
pub(super) struct HistogramTotals {
    /// Cumulative counts: values at most each bound, in the order of the bounds.
    pub(super) cumulative: Vec<u64>,
    /// Every value recorded (the `+Inf` bucket).
    pub(super) count: u64,
    /// The sum of the values.
    pub(super) sum: f64,
}

impl ShardedHistogram {
    /// `bounds` are sorted upper bounds (the sink sorts and checks them).
    pub(super) fn new(bounds: &[f64]) -> Self {
        ShardedHistogram {
            bounds: bounds.into(),
            // A count per bound, one above the last bound, the sum.
            words: ShardedWords::new(bounds.len() + 2),
        }
    }

    /// The bucket bounds.
    pub(super) fn bounds(&self) -> &[f64] {
        &self.bounds
    }

    fn sum_index(&self) -> usize {
        self.bounds.len() + 1
    }

    pub(super) fn totals(&self) -> HistogramTotals {
        let mut cumulative = Vec::with_capacity(self.bounds.len());
        let mut count = 0u64;
        for bucket in 0..=self.bounds.len() {
            count += self
                .words
                .across_shards(bucket)
                .map(|word| word.load(Ordering::Relaxed))
                .sum::<u64>();
            if bucket < self.bounds.len() {
                cumulative.push(count);
            }
        }
        HistogramTotals {
            cumulative,
            count,
            sum: sum_f64(self.words.across_shards(self.sum_index())),
        }
    }

    #[inline]
    fn record_n(&self, value: f64, n: u64) {
        // The first bucket whose bound is at least `value` (Prometheus' `le`); NaN and values
        // above every bound land past the last bound, in `+Inf` only.
        // Counted without branches: latencies fall in unpredictable buckets, and a
        // mispredicted search costs more than comparing with every bound.
        let below = self
            .bounds
            .iter()
            .map(|bound| usize::from(*bound < value))
            .sum::<usize>();
        let bucket = if value.is_nan() {
            self.bounds.len()
        } else {
            below
        };
        let shard = self.words.local();
        shard.add_u64(bucket, n);
        shard.add_f64(self.sum_index(), value * n as f64);
    }
}

impl HistogramFn for ShardedHistogram {
    #[inline]
    fn record(&self, value: f64) {
        self.record_n(value, 1);
    }

    fn record_many(&self, value: f64, count: usize) {
        self.record_n(value, count as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_adds_up_every_thread() {
        let counter = ShardedCounter::new();
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..1000 {
                        counter.increment(2);
                    }
                });
            }
        });
        assert_eq!(counter.value(), 16_000);
        counter.absolute(10);
        assert_eq!(counter.value(), 16_000, "a counter never goes down");
        counter.absolute(20_000);
        assert_eq!(counter.value(), 20_000);
        counter.increment(1);
        assert_eq!(counter.value(), 20_001);
    }

    #[test]
    fn slots_of_ended_threads_are_reused_without_losing_counts() {
        let counter = ShardedCounter::new();
        for _ in 0..3 * owned_slots() {
            std::thread::scope(|s| {
                for _ in 0..3 {
                    s.spawn(|| (0..100).for_each(|_| counter.increment(1)));
                }
            });
        }
        assert_eq!(counter.value(), 9 * owned_slots() as u64 * 100);
    }

    #[test]
    fn gauge_set_wins_over_earlier_changes_and_keeps_later_ones() {
        let gauge = ShardedGauge::new();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..500 {
                        gauge.increment(1.0);
                    }
                    for _ in 0..200 {
                        gauge.decrement(1.0);
                    }
                });
            }
        });
        assert_eq!(gauge.value(), 1200.0);
        gauge.set(7.0);
        assert_eq!(gauge.value(), 7.0);
        gauge.increment(1.5);
        assert_eq!(gauge.value(), 8.5);
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_inclusive() {
        let histogram = ShardedHistogram::new(&[0.1, 1.0, 10.0]);
        for value in [0.05, 0.1, 0.5, 1.0, 5.0, 50.0, f64::NAN] {
            histogram.record(value);
        }
        histogram.record_many(2.0, 3);
        let totals = histogram.totals();
        assert_eq!(totals.cumulative, vec![2, 4, 8]);
        assert_eq!(totals.count, 10);
        assert!(totals.sum.is_nan());

        let histogram = ShardedHistogram::new(&[1.0]);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..250 {
                        histogram.record(0.5);
                        histogram.record(2.0);
                    }
                });
            }
        });
        let totals = histogram.totals();
        assert_eq!((totals.cumulative[0], totals.count), (1000, 2000));
        assert_eq!(totals.sum, 2500.0);
    }
}
