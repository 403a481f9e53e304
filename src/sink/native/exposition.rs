//! The Prometheus text exposition format, written the way `metrics-exporter-prometheus`
//! writes it (same names, label order, number formatting), so dashboards see no difference.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::sharded::HistogramTotals;
use crate::sink::help::{describe, Kind};
use crate::sink::Key;

/// Families of series, collected and then written in a stable order.
#[derive(Default)]
pub(super) struct Exposition {
    families: BTreeMap<(u8, String), Family>,
}

struct Family {
    name: String,
    kind: Kind,
    help: Option<&'static str>,
    /// The series' lines, by their labels (sorted, so the output is stable).
    series: BTreeMap<String, String>,
}

impl Exposition {
    pub(super) fn counter(&mut self, key: &Key, value: u64) {
        let labels = labels(key);
        let (name, lines) = self.series(key, Kind::Counter, &labels);
        line(lines, name, "", &labels, None, value);
    }

    pub(super) fn gauge(&mut self, key: &Key, value: f64) {
        let labels = labels(key);
        let (name, lines) = self.series(key, Kind::Gauge, &labels);
        line(lines, name, "", &labels, None, value);
    }

    pub(super) fn histogram(&mut self, key: &Key, bounds: &[f64], totals: &HistogramTotals) {
        let labels = labels(key);
        let (name, lines) = self.series(key, Kind::Histogram, &labels);
        for (bound, count) in bounds.iter().zip(&totals.cumulative) {
            line(lines, name, "_bucket", &labels, Some(bound), count);
        }
        line(lines, name, "_bucket", &labels, Some(&"+Inf"), totals.count);
        line(lines, name, "_sum", &labels, None, totals.sum);
        line(lines, name, "_count", &labels, None, totals.count);
    }

    /// The family's name and the (empty) text of one of its series.
    fn series(&mut self, key: &Key, kind: Kind, labels: &str) -> (&str, &mut String) {
        let order = match kind {
            Kind::Counter => 0,
            Kind::Gauge => 1,
            Kind::Histogram => 2,
        };
        let described = describe(key.name());
        let name = prometheus_name(key.name(), kind, described.is_some_and(|d| d.seconds));
        let Family { name, series, .. } = self
            .families
            .entry((order, name.clone()))
            .or_insert_with(|| Family {
                name,
                kind,
                help: described.map(|d| d.help),
                series: BTreeMap::new(),
            });
        // Two keys that differ only in characters made `_` share a line: the last one wins.
        let text = series.entry(labels.to_string()).or_default();
        text.clear();
        (name, text)
    }

    pub(super) fn finish(self) -> String {
        let mut out = String::new();
        for family in self.families.into_values() {
            let name = &family.name;
            if let Some(help) = family.help {
                let _ = writeln!(out, "# HELP {name} {}", help.replace('\n', "\\n"));
            }
            let kind = match family.kind {
                Kind::Counter => "counter",
                Kind::Gauge => "gauge",
                Kind::Histogram => "histogram",
            };
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for text in family.series.values() {
                out.push_str(text);
            }
            out.push('\n');
        }
        out
    }
}

/// `key="value",…` for the key's labels, in their order, escaped.
fn labels(key: &Key) -> String {
    let mut out = String::new();
    for (i, label) in key.labels().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&sanitize_label_key(label.key()));
        out.push_str("=\"");
        escape_label_value(&mut out, label.value());
        out.push('"');
    }
    out
}

/// One sample line: `name[suffix]{labels[,le="bound"]} value`.
fn line(
    out: &mut String,
    name: &str,
    suffix: &str,
    labels: &str,
    le: Option<&dyn std::fmt::Display>,
    value: impl std::fmt::Display,
) {
    out.push_str(name);
    out.push_str(suffix);
    if !labels.is_empty() || le.is_some() {
        out.push('{');
        out.push_str(labels);
        if let Some(le) = le {
            if !labels.is_empty() {
                out.push(',');
            }
            let _ = write!(out, "le=\"{le}\"");
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

/// The name Prometheus' naming recommendations give the metric (as the exporter's
/// recommended naming does): made valid, `_seconds` on metrics in seconds whose name does
/// not say so, `_total` on counters.
fn prometheus_name(name: &str, kind: Kind, seconds: bool) -> String {
    let mut name = sanitize_name(name);
    if seconds && !name.ends_with("_seconds") {
        name.push_str("_seconds");
    }
    if kind == Kind::Counter && !name.ends_with("_total") {
        name.push_str("_total");
    }
    name
}

/// A valid metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`, other characters made `_`.
fn sanitize_name(name: &str) -> String {
    sanitize(name, |c| c == ':')
}

/// A valid label name: `[a-zA-Z_][a-zA-Z0-9_]*`, other characters made `_`.
fn sanitize_label_key(key: &str) -> String {
    sanitize(key, |_| false)
}

fn sanitize(name: &str, also_valid: impl Fn(char) -> bool) -> String {
    name.chars()
        .enumerate()
        .map(|(i, c)| {
            let valid = c.is_ascii_alphabetic()
                || c == '_'
                || also_valid(c)
                || (i > 0 && c.is_ascii_digit());
            if valid {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Backslash, double quote and line feed escaped, as the format requires.
fn escape_label_value(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_labels_are_made_valid() {
        assert_eq!(sanitize_name("runtime.pool.size"), "runtime_pool_size");
        assert_eq!(sanitize_name("9lives:x"), "_lives:x");
        let name = |name, kind, seconds| prometheus_name(name, kind, seconds);
        assert_eq!(
            name("db.client.operation.duration", Kind::Histogram, true),
            "db_client_operation_duration_seconds"
        );
        assert_eq!(
            name("db.client.connection.timeouts", Kind::Counter, false),
            "db_client_connection_timeouts_total"
        );
        assert_eq!(
            name("redis_client_requests_total", Kind::Counter, false),
            "redis_client_requests_total"
        );
        assert_eq!(sanitize_label_key("a:b"), "a_b");
        let mut out = String::new();
        escape_label_value(&mut out, "a\"b\\c\nd");
        assert_eq!(out, "a\\\"b\\\\c\\nd");
    }
}
