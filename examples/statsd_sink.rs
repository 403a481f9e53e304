//! A service's metrics as StatsD lines over UDP, with a custom sink of a few lines
//! (`examples/statsd_sink/sink.rs`). Without `STATSD_ADDR`, it listens on a local port
//! itself and prints the lines that arrive.
//!
//! ```sh
//! cargo run --example statsd_sink                              # prints the lines
//! STATSD_ADDR=127.0.0.1:8125 cargo run --example statsd_sink   # sends them to a StatsD agent
//! ```

use std::net::{SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use baseplate_redis::config::RawConfig;
use baseplate_redis::{Baseplate, ContextSpec, RedisClient};
use redis::AsyncCommands;

#[path = "statsd_sink/sink.rs"]
mod sink;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("statsd_sink: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let listener = UdpSocket::bind("127.0.0.1:0")?;
    listener.set_read_timeout(Some(Duration::from_millis(200)))?;
    let target: SocketAddr = match std::env::var("STATSD_ADDR") {
        Ok(addr) => addr.parse()?,
        Err(_) => listener.local_addr()?,
    };
    let sink = sink::statsd_sink(UdpSocket::bind("127.0.0.1:0")?, target);

    let config = RawConfig::from_pairs([("cache.url", "memory://statsd-example")]);
    let mut baseplate = Baseplate::new(config).with_metrics_sink(Arc::new(sink))?;
    baseplate.configure_context(ContextSpec::new().client("cache", RedisClient::new()))?;
    let mut cache = baseplate.make_context_object().redis("cache")?;
    let _: () = cache.set("greeting", "hello").await?;
    let _: Option<String> = cache.get("greeting").await?;
    baseplate.report_runtime_metrics();

    if std::env::var("STATSD_ADDR").is_err() {
        let mut buf = [0u8; 1500];
        while let Ok(n) = listener.recv(&mut buf) {
            println!("{}", String::from_utf8_lossy(&buf[..n]));
        }
    }
    Ok(())
}
