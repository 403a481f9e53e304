//! The service of `examples/service.rs`: an axum router whose handlers use Redis through
//! baseplate-redis, a worker task draining a job queue, and `/metrics` in Prometheus text.
//!
//! It is a module of its own so the end-to-end test (`tests/service_e2e.rs`) serves exactly
//! this code on a free port against a private `redis-server`.
//!
//! Routes:
//! - `POST /counters/{name}` increments a counter, `GET /counters/{name}` reads it;
//! - `GET /limited/{client}` is rate limited per client (`service.rate_limit` requests per
//!   `service.rate_limit_window`), answering `429 Too Many Requests` beyond it;
//! - `POST /jobs` queues the request body as a job on a [`MessageQueue`]; the worker task
//!   takes it, and `GET /jobs/{id}` shows its result once done;
//! - `GET /metrics`: per-command metrics and pool gauges, Prometheus text format.

// Shared by the example's `main` and the end-to-end test; each uses only part of it.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path as UrlPath, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use baseplate_redis::config::{from_config, RawConfig, Timespan};
use baseplate_redis::sink::NativeSink;
use baseplate_redis::span::SpanObserver;
use baseplate_redis::web::BaseplateLayer;
use baseplate_redis::{
    Baseplate, ContextSpec, Error, MessageQueue, RedisClient, RequestContext, RuntimeReporter,
};
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The context name of the service's Redis client (keys `redis.*`).
pub const REDIS: &str = "redis";

/// The `service.*` keys of the configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Requests a client may make per window on `/limited/{client}`.
    pub rate_limit: u32,
    /// The rate limit's window (whole seconds; at least one).
    pub rate_limit_window: Timespan,
    /// The Redis list holding queued jobs.
    pub job_queue: String,
    /// How long a finished job's result is kept.
    pub job_result_ttl: Timespan,
    /// How often the pool gauges are refreshed between scrapes.
    pub report_interval: Timespan,
}

/// Loads `[app:main]` of the INI file at `path`; a `redis_url` replaces `redis.url`.
pub fn load_config(path: &Path, redis_url: Option<String>) -> Result<RawConfig, String> {
    let mut config = RawConfig::from_ini_file(path, "app:main").map_err(|e| e.to_string())?;
    if let Some(url) = redis_url {
        config.insert(format!("{REDIS}.url"), url);
    }
    Ok(config)
}

/// The running service: its router (serve it with `axum::serve`), and the tasks behind it.
pub struct Service {
    /// The HTTP routes, with the baseplate layer on them.
    pub router: Router,
    /// The service's baseplate (its Redis client, observers and metrics sink).
    pub baseplate: Arc<Baseplate>,
    worker: JoinHandle<()>,
    stop: watch::Sender<bool>,
    _reporter: RuntimeReporter,
}

#[derive(Clone)]
struct AppState {
    baseplate: Arc<Baseplate>,
    metrics: NativeSink,
    settings: Arc<Settings>,
}

/// Builds the service from its configuration: the Redis client, a native Prometheus sink of
/// its own (sharded per thread, nothing global, so several services can live in one
/// process), the worker
/// task and the periodic pool reporter. `observers` see every span (requests, jobs,
/// commands). Needs a tokio runtime.
pub fn start(config: RawConfig, observers: &[Arc<dyn SpanObserver>]) -> Result<Service, String> {
    let settings: Settings = from_config(&config, "service.").map_err(|e| e.to_string())?;
    if settings.rate_limit_window.as_duration() < Duration::from_secs(1) {
        return Err("service.rate_limit_window: must be at least 1 second".to_string());
    }
    let native_sink = NativeSink::new();
    let mut baseplate = Baseplate::new(config)
        .with_metrics_sink(Arc::new(native_sink.clone()))
        .map_err(|e| e.to_string())?;
    for observer in observers {
        baseplate.register(observer.clone());
    }
    baseplate
        .configure_context(ContextSpec::new().client(REDIS, RedisClient::new()))
        .map_err(|e| e.to_string())?;
    let baseplate = Arc::new(baseplate);
    baseplate.report_runtime_metrics();
    let reporter = baseplate.start_runtime_reporter(settings.report_interval.as_duration());

    let (stop, stopped) = watch::channel(false);
    let settings = Arc::new(settings);
    let worker = tokio::spawn(worker(baseplate.clone(), settings.clone(), stopped));

    let state = AppState {
        baseplate: baseplate.clone(),
        metrics: native_sink,
        settings,
    };
    let router = Router::new()
        .route("/", get(index))
        .route(
            "/counters/{name}",
            get(read_counter).post(increment_counter),
        )
        .route("/limited/{client}", get(limited))
        .route("/jobs", post(submit_job))
        .route("/jobs/{id}", get(job_result))
        .route("/metrics", get(metrics))
        .layer(BaseplateLayer::new(baseplate.clone()))
        .with_state(state);
    Ok(Service {
        router,
        baseplate,
        worker,
        stop,
        _reporter: reporter,
    })
}

impl Service {
    /// Stops the worker (after the job it is doing, if any) and the pool reporter.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.worker.await;
    }
}

async fn index() -> &'static str {
    "baseplate-redis example service\n\
     POST /counters/{name}   increment a counter\n\
     GET  /counters/{name}   read it\n\
     GET  /limited/{client}  a rate-limited endpoint\n\
     POST /jobs              queue the body as a job\n\
     GET  /jobs/{id}         the job's result\n\
     GET  /metrics           Prometheus metrics\n"
}

/// A counter's value.
#[derive(Debug, Serialize)]
pub struct Counter {
    /// The counter's name.
    pub name: String,
    /// Its value.
    pub value: i64,
}

async fn increment_counter(
    context: RequestContext,
    UrlPath(name): UrlPath<String>,
) -> Result<Json<Counter>, Error> {
    let mut redis = context.redis(REDIS)?;
    let value: i64 = redis.incr(format!("counter:{name}"), 1).await?;
    Ok(Json(Counter { name, value }))
}

async fn read_counter(
    context: RequestContext,
    UrlPath(name): UrlPath<String>,
) -> Result<Json<Counter>, Error> {
    let mut redis = context.redis(REDIS)?;
    let value: Option<i64> = redis.get(format!("counter:{name}")).await?;
    Ok(Json(Counter {
        name,
        value: value.unwrap_or(0),
    }))
}

/// What `/limited/{client}` answers.
#[derive(Debug, Serialize)]
pub struct Quota {
    /// The client the limit applies to.
    pub client: String,
    /// Requests made in the current window, this one included.
    pub used: u32,
    /// Requests allowed per window.
    pub limit: u32,
}

async fn limited(
    State(state): State<AppState>,
    context: RequestContext,
    UrlPath(client): UrlPath<String>,
) -> Result<Response, Error> {
    let mut redis = context.redis(REDIS)?;
    let key = format!("ratelimit:{client}");
    let window = state.settings.rate_limit_window.as_duration().as_secs();
    // A fixed window: the first request creates the key with its expiry, every one counts.
    let mut pipe = redis.pipeline("rate_limit");
    pipe.cmd("SET")
        .arg(&key)
        .arg(0)
        .arg("EX")
        .arg(window)
        .arg("NX")
        .ignore()
        .incr(&key, 1);
    let (used,): (u32,) = pipe.query_async(&mut redis).await?;
    let limit = state.settings.rate_limit;
    let status = if used > limit {
        StatusCode::TOO_MANY_REQUESTS
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(Quota {
            client,
            used,
            limit,
        }),
    )
        .into_response())
}

/// A queued job.
#[derive(Debug, Serialize)]
pub struct Job {
    /// The job's id.
    pub id: i64,
    /// `queued`, or `done` with its result.
    pub status: String,
    /// What the worker made of it.
    pub result: Option<String>,
}

async fn submit_job(
    State(state): State<AppState>,
    context: RequestContext,
    body: String,
) -> Result<Response, Error> {
    let mut redis = context.redis(REDIS)?;
    let id: i64 = redis.incr("jobs:next_id", 1).await?;
    let mut queue = MessageQueue::new(state.settings.job_queue.clone(), redis);
    queue.put(format!("{id}\n{body}").as_bytes()).await?;
    let job = Job {
        id,
        status: "queued".to_string(),
        result: None,
    };
    Ok((StatusCode::ACCEPTED, Json(job)).into_response())
}

async fn job_result(context: RequestContext, UrlPath(id): UrlPath<i64>) -> Result<Response, Error> {
    let mut redis = context.redis(REDIS)?;
    let result: Option<String> = redis.get(format!("job:{id}:result")).await?;
    let (status, state) = match result {
        Some(_) => (StatusCode::OK, "done"),
        None => (StatusCode::NOT_FOUND, "queued"),
    };
    let job = Job {
        id,
        status: state.to_string(),
        result,
    };
    Ok((status, Json(job)).into_response())
}

async fn metrics(State(state): State<AppState>) -> Response {
    // Fresh pool numbers at every scrape, on top of the periodic reporter.
    state.baseplate.report_runtime_metrics();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

/// Takes jobs off the queue until told to stop. Waiting for a job is not traced (it would
/// make a span a second); each job is served as a request of its own, `worker.job`, so its
/// commands are spans under it.
async fn worker(
    baseplate: Arc<Baseplate>,
    settings: Arc<Settings>,
    mut stopped: watch::Receiver<bool>,
) {
    let waiting = baseplate.make_context_object();
    let redis = match waiting.redis(REDIS) {
        Ok(redis) => redis,
        Err(err) => {
            eprintln!("worker: {err}");
            return;
        }
    };
    let mut queue = MessageQueue::new(settings.job_queue.clone(), redis);
    loop {
        let message = tokio::select! {
            _ = stopped.changed() => return,
            message = queue.get(Some(Duration::from_secs(1))) => message,
        };
        let message = match message {
            Ok(message) => message,
            Err(err) if err.is_queue_timeout() => continue,
            Err(err) => {
                eprintln!("worker: cannot take a job: {err}");
                // Redis is unreachable: try again in a moment rather than spin.
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        let done = baseplate
            .serve("worker.job", None, async |context| {
                run_job(&context, &message, settings.job_result_ttl.as_duration()).await
            })
            .await;
        if let Err(err) = done {
            eprintln!("worker: job failed: {err}");
        }
    }
}

/// A job is `<id>\n<text>`; its result is the text's word count and the text upper-cased.
async fn run_job(context: &RequestContext, message: &[u8], ttl: Duration) -> Result<(), Error> {
    let text = String::from_utf8_lossy(message);
    let (id, body) = text.split_once('\n').unwrap_or((&text, ""));
    let result = format!(
        "{} words: {}",
        body.split_whitespace().count(),
        body.to_uppercase()
    );
    let mut redis = context.redis(REDIS)?;
    let _: () = redis
        .set_ex(format!("job:{id}:result"), result, ttl.as_secs().max(1))
        .await?;
    Ok(())
}
