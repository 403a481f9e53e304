//! A small HTTP service on axum: counters, a rate-limited endpoint and a job queue backed by
//! Redis, and `/metrics` in Prometheus text format. Configured from `fixtures/service.ini`.
//!
//! ```sh
//! cargo run --features axum,prometheus --example service          # in-memory backend
//! REDIS_URL=redis://127.0.0.1:6379/0 cargo run --features axum,prometheus --example service
//!
//! curl -X POST localhost:8080/counters/visits
//! curl localhost:8080/limited/alice
//! curl -X POST --data 'hello queued world' localhost:8080/jobs
//! curl localhost:8080/jobs/1
//! curl localhost:8080/metrics
//! ```
//!
//! Environment: `BIND` (default `127.0.0.1`), `PORT` (default `8080`; `0` picks a free
//! one), `REDIS_URL` (replaces `redis.url`), `SERVICE_CONFIG` (another INI file),
//! `RUST_LOG` (default `info`: one log line per finished span).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use baseplate_redis::span::TracingObserver;
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::EnvFilter;

#[path = "service/app.rs"]
mod app;

const DEFAULT_CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/service.ini");

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_span_events(FmtSpan::CLOSE)
        .init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("service: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let config_path = std::env::var_os("SERVICE_CONFIG")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG));
    let config = app::load_config(&config_path, std::env::var("REDIS_URL").ok())?;
    let bind = std::env::var("BIND").unwrap_or_else(|_| "127.0.0.1".to_string());
    let port = match std::env::var("PORT") {
        Ok(port) => port
            .parse::<u16>()
            .map_err(|_| format!("PORT: {port:?} is not a port number"))?,
        Err(_) => 8080,
    };
    let address: SocketAddr = format!("{bind}:{port}")
        .parse()
        .or_else(|_| format!("[{bind}]:{port}").parse())
        .map_err(|_| format!("BIND: {bind:?} is not an IP address"))?;

    let redis_url = config.get("redis.url").unwrap_or_default().to_string();
    let service = app::start(config, &[Arc::new(TracingObserver::new())])?;
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|e| format!("cannot listen on {address}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let redis = baseplate_redis::config::RedisUrl::parse(&redis_url)
        .map(|url| url.address())
        .unwrap_or_else(|_| "an unreadable URL".to_string());
    println!("listening on http://{local} (Redis: {redis}); metrics at http://{local}/metrics");

    axum::serve(listener, service.router.clone())
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|e| format!("server failed: {e}"))?;
    service.shutdown().await;
    Ok(())
}

/// Ctrl-C, or SIGTERM (what container runtimes send): finish the requests in flight, stop.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    println!("shutting down");
}
