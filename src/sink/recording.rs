//! An in-memory sink that records everything, with a query API for tests.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use metrics::{GaugeFn, HistogramFn};

use super::{Counter, Gauge, Histogram, Key, MetricsSink};

/// Labels sorted by name, so the same series is found whatever order labels were given in.
type SeriesLabels = Vec<(String, String)>;
type Series<T> = BTreeMap<(String, SeriesLabels), Arc<T>>;

/// Records every measurement in memory and answers questions about them.
///
/// Queries take a metric name and a set of labels; every series of that name whose labels
/// include the given ones is summed (`&[]` sums all series of the name).
///
/// ```
/// use baseplate_redis::sink::{key, MetricsSink, RecordingSink};
///
/// let sink = RecordingSink::new();
/// sink.counter(&key("hits", &[("page", "home")])).increment(2);
/// sink.counter(&key("hits", &[("page", "about")])).increment(1);
/// assert_eq!(sink.counter_value("hits", &[("page", "home")]), 2);
/// assert_eq!(sink.counter_value("hits", &[]), 3);
/// ```
#[derive(Debug, Clone, Default)]
pub struct RecordingSink {
    inner: Arc<Recorded>,
}

#[derive(Debug, Default)]
struct Recorded {
    counters: Mutex<Series<AtomicU64>>,
    gauges: Mutex<Series<AtomicGauge>>,
    histograms: Mutex<Series<RecordedHistogram>>,
}

#[derive(Debug, Default)]
struct AtomicGauge(AtomicU64);

#[derive(Debug, Default)]
struct RecordedHistogram(Mutex<Vec<f64>>);

/// One recorded series, as returned by [`RecordingSink::series`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RecordedSeries {
    /// The metric name.
    pub name: String,
    /// The labels, sorted by name.
    pub labels: Vec<(String, String)>,
    /// `counter`, `gauge` or `histogram`.
    pub kind: &'static str,
    /// Counter value, gauge value, or histogram sum.
    pub value: f64,
    /// Histogram sample count (1 for counters and gauges).
    pub count: u64,
}

impl RecordingSink {
    /// An empty recording sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sum of the counters named `name` whose labels include `labels`; 0 if none.
    pub fn counter_value(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        let counters = lock(&self.inner.counters);
        matching(&counters, name, labels)
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }

    /// The value of the gauge named `name` with `labels` (summed over matching series), or
    /// `None` when no such gauge was ever registered.
    pub fn gauge_value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let gauges = lock(&self.inner.gauges);
        let mut found = None;
        for gauge in matching(&gauges, name, labels) {
            *found.get_or_insert(0.0) += gauge.get();
        }
        found
    }

    /// How many samples the matching histograms hold.
    pub fn histogram_count(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        let histograms = lock(&self.inner.histograms);
        matching(&histograms, name, labels)
            .map(|h| lock(&h.0).len() as u64)
            .sum()
    }

    /// The sum of the samples of the matching histograms.
    pub fn histogram_sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let histograms = lock(&self.inner.histograms);
        matching(&histograms, name, labels)
            .map(|h| lock(&h.0).iter().sum::<f64>())
            .sum()
    }

    /// Every sample of the matching histograms.
    pub fn histogram_samples(&self, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
        let histograms = lock(&self.inner.histograms);
        matching(&histograms, name, labels)
            .flat_map(|h| lock(&h.0).clone())
            .collect()
    }

    /// Every recorded series, sorted by name then labels.
    pub fn series(&self) -> Vec<RecordedSeries> {
        let mut out = Vec::new();
        for ((name, labels), c) in lock(&self.inner.counters).iter() {
            out.push(RecordedSeries {
                name: name.clone(),
                labels: labels.clone(),
                kind: "counter",
                value: c.load(Ordering::Relaxed) as f64,
                count: 1,
            });
        }
        for ((name, labels), g) in lock(&self.inner.gauges).iter() {
            out.push(RecordedSeries {
                name: name.clone(),
                labels: labels.clone(),
                kind: "gauge",
                value: g.get(),
                count: 1,
            });
        }
        for ((name, labels), h) in lock(&self.inner.histograms).iter() {
            let samples = lock(&h.0);
            out.push(RecordedSeries {
                name: name.clone(),
                labels: labels.clone(),
                kind: "histogram",
                value: samples.iter().sum(),
                count: samples.len() as u64,
            });
        }
        out.sort_by(|a, b| (&a.name, &a.labels).cmp(&(&b.name, &b.labels)));
        out
    }

    /// Forgets everything recorded. Handles handed out before keep working but are no longer
    /// seen by queries.
    pub fn clear(&self) {
        lock(&self.inner.counters).clear();
        lock(&self.inner.gauges).clear();
        lock(&self.inner.histograms).clear();
    }
}

impl MetricsSink for RecordingSink {
    fn counter(&self, key: &Key) -> Counter {
        Counter::from_arc(series(&self.inner.counters, key))
    }

    fn gauge(&self, key: &Key) -> Gauge {
        Gauge::from_arc(series(&self.inner.gauges, key))
    }

    fn histogram(&self, key: &Key) -> Histogram {
        Histogram::from_arc(series(&self.inner.histograms, key))
    }
}

impl AtomicGauge {
    fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }

    fn update(&self, f: impl Fn(f64) -> f64) {
        // A compare-and-swap loop: concurrent increments must not be lost.
        let _ = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some(f(f64::from_bits(bits)).to_bits())
            });
    }
}

impl GaugeFn for AtomicGauge {
    fn increment(&self, value: f64) {
        self.update(|v| v + value);
    }

    fn decrement(&self, value: f64) {
        self.update(|v| v - value);
    }

    fn set(&self, value: f64) {
        self.0.store(value.to_bits(), Ordering::Relaxed);
    }
}

impl HistogramFn for RecordedHistogram {
    fn record(&self, value: f64) {
        lock(&self.0).push(value);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere while holding the lock leaves plain data behind; keep recording.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn series<T: Default>(map: &Mutex<Series<T>>, key: &Key) -> Arc<T> {
    let mut labels: SeriesLabels = key
        .labels()
        .map(|l| (l.key().to_string(), l.value().to_string()))
        .collect();
    labels.sort();
    lock(map)
        .entry((key.name().to_string(), labels))
        .or_default()
        .clone()
}

fn matching<'a, T>(
    map: &'a Series<T>,
    name: &'a str,
    labels: &'a [(&'a str, &'a str)],
) -> impl Iterator<Item = &'a Arc<T>> + 'a {
    map.iter()
        .filter(move |((n, series_labels), _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| series_labels.iter().any(|(sk, sv)| sk == k && sv == v))
        })
        .map(|(_, value)| value)
}
