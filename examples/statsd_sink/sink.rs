//! A StatsD sink in a few lines: every measurement becomes one StatsD line (with DogStatsD
//! tags for the labels), sent over UDP.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;

use baseplate_redis::sink::{FnSink, Key, Measurement};

/// The StatsD line of one measurement: `name:value|type|#label:value,…`.
pub fn statsd_line(key: &Key, measurement: Measurement) -> Option<String> {
    let value = match measurement {
        Measurement::CounterIncrement(n) => format!("{n}|c"),
        Measurement::GaugeSet(v) => format!("{v}|g"),
        Measurement::GaugeIncrement(v) => format!("+{v}|g"),
        Measurement::GaugeDecrement(v) => format!("-{v}|g"),
        Measurement::HistogramRecord(seconds) => format!("{}|ms", seconds * 1000.0),
        _ => return None, // absolute counters: StatsD has no such thing
    };
    let tags: Vec<String> = key
        .labels()
        .map(|label| format!("{}:{}", label.key(), label.value()))
        .collect();
    Some(format!("{}:{value}|#{}", key.name(), tags.join(",")))
}

/// A sink sending each measurement's line to `target` from `socket`. Sending a datagram
/// does not wait for anyone; a lost line is a lost measurement, as with any StatsD client.
pub fn statsd_sink(socket: UdpSocket, target: SocketAddr) -> FnSink {
    let socket = Arc::new(socket);
    FnSink::new(move |key, measurement| {
        if let Some(line) = statsd_line(key, measurement) {
            let _ = socket.send_to(line.as_bytes(), target);
        }
    })
}
