//! Serves one request through a configured Redis client and prints what it recorded.
//!
//! ```sh
//! cargo run --example quickstart                                  # in-memory backend
//! REDIS_URL=redis://127.0.0.1:6379/0 cargo run --example quickstart   # a real server
//! ```

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use baseplate_redis::config::{RawConfig, RedisUrl};
use baseplate_redis::sink::NativeSink;
use baseplate_redis::span::RecordingObserver;
use baseplate_redis::{Baseplate, ContextSpec, MessageQueue, RedisClient};
use redis::AsyncCommands;

const CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/quickstart.ini");

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("quickstart: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let mut config = RawConfig::from_ini_file(CONFIG, "app:main").map_err(|e| e.to_string())?;
    if let Ok(url) = std::env::var("REDIS_URL") {
        config.insert("foo.url", url);
    }
    let url = RedisUrl::parse(config.get("foo.url").unwrap_or_default())
        .map_err(|e| format!("foo.url: {e}"))?;
    let backend = if url.is_memory() {
        "the in-memory backend"
    } else {
        "a real Redis server"
    };
    println!("Using {backend} at {url} (set REDIS_URL to change it)\n");

    // Prometheus metrics, sharded per thread: serve `metrics.render()` on `/metrics`.
    let metrics = NativeSink::new();
    let spans = RecordingObserver::new();

    let mut baseplate = Baseplate::new(config)
        .with_metrics_sink(Arc::new(metrics.clone()))
        .map_err(|e| e.to_string())?;
    baseplate.register(Arc::new(spans.clone()));
    baseplate
        .configure_context(ContextSpec::new().client("foo", RedisClient::new()))
        .map_err(|e| e.to_string())?;

    let served = baseplate
        .serve("quickstart_request", None, async |context| {
            let mut foo = context.redis("foo")?;
            let pong: String = redis::cmd("PING").query_async(&mut foo).await?;
            let _: () = foo.set("quickstart:greeting", "hello").await?;
            let greeting: String = foo.get("quickstart:greeting").await?;

            let mut pipe = foo.pipeline("counters");
            pipe.incr("quickstart:hits", 1)
                .expire("quickstart:hits", 60)
                .ignore();
            let (hits,): (i64,) = pipe.query_async(&mut foo).await?;

            let mut queue = MessageQueue::new("quickstart:queue", context.redis("foo")?);
            queue.put(b"job-42").await?;
            let job = queue.get(Some(Duration::from_secs(1))).await?;
            queue.close().await?;

            println!("PING -> {pong}");
            println!("GET quickstart:greeting -> {greeting}");
            println!("pipeline counters -> hits = {hits}");
            println!("queue round trip -> {}", String::from_utf8_lossy(&job));
            Ok::<_, baseplate_redis::Error>(())
        })
        .await;
    if let Err(err) = served {
        return Err(if err.is_connection_error() {
            format!("cannot reach Redis at {}: {err}", url.address())
        } else {
            format!("request failed against {}: {err}", url.address())
        });
    }

    baseplate.report_runtime_metrics();
    println!("\nSpans:\n{}", spans.render_tree());
    println!("Metrics (Prometheus text):\n{}", metrics.render());
    Ok(())
}
