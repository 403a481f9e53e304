//! Named pipelines: one span and one measurement for a batch of commands.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use redis::{FromRedisValue, Pipeline, RedisResult};

use super::monitored::MonitoredRedisConnection;

/// A pipeline with a name, made by [`MonitoredRedisConnection::pipeline`].
///
/// It dereferences to [`redis::Pipeline`], so commands are queued the usual way; run it with
/// [`query_async`](Self::query_async) or [`exec_async`](Self::exec_async) on the handle that
/// made it. Its span is `<client>.pipeline_<name>`.
///
/// ```
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// # use baseplate_redis::{pool::InMemoryBackend, RedisContextFactory};
/// # let factory = RedisContextFactory::new(std::sync::Arc::new(InMemoryBackend::new()));
/// let mut redis = factory.connection();
/// let mut pipe = redis.pipeline("warm_cache");
/// pipe.set("a", 1).ignore().incr("a", 41);
/// let (answer,): (i64,) = pipe.query_async(&mut redis).await?;
/// assert_eq!(answer, 42);
/// # Ok(()) }
/// # tokio::runtime::Runtime::new().unwrap().block_on(run()).unwrap();
/// ```
#[derive(Clone)]
pub struct MonitoredPipeline {
    pipeline: Pipeline,
    span_name: Arc<str>,
}

impl MonitoredPipeline {
    /// A pipeline sent as MULTI/EXEC when `atomic`.
    pub(crate) fn new(span_name: Arc<str>, atomic: bool) -> Self {
        let mut pipeline = redis::pipe();
        if atomic {
            pipeline.atomic();
        }
        MonitoredPipeline {
            pipeline,
            span_name,
        }
    }

    /// Sends the commands as a plain pipeline, without MULTI/EXEC (a cluster client's
    /// pipelines are plain already; `.atomic()` makes one a transaction). Call it before queueing
    /// commands, as in `redis.pipeline("name").non_atomic()`: commands queued earlier are
    /// kept, but not their `ignore()` marks.
    pub fn non_atomic(mut self) -> Self {
        let mut plain = redis::pipe();
        for cmd in self.pipeline.cmd_iter() {
            plain.add_command(cmd.clone());
        }
        self.pipeline = plain;
        self
    }

    /// The span name: `<client>.pipeline_<name>`.
    pub fn span_name(&self) -> &str {
        &self.span_name
    }

    /// Runs the pipeline on `conn` and converts the replies.
    pub async fn query_async<T: FromRedisValue>(
        &self,
        conn: &mut MonitoredRedisConnection,
    ) -> RedisResult<T> {
        conn.name_next_pipeline(self.span_name.clone());
        self.pipeline.query_async(conn).await
    }

    /// Runs the pipeline on `conn`, ignoring the replies (errors still fail it).
    pub async fn exec_async(&self, conn: &mut MonitoredRedisConnection) -> RedisResult<()> {
        conn.name_next_pipeline(self.span_name.clone());
        self.pipeline.exec_async(conn).await
    }
}

impl Deref for MonitoredPipeline {
    type Target = Pipeline;

    fn deref(&self) -> &Pipeline {
        &self.pipeline
    }
}

impl DerefMut for MonitoredPipeline {
    fn deref_mut(&mut self) -> &mut Pipeline {
        &mut self.pipeline
    }
}

impl std::fmt::Debug for MonitoredPipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MonitoredPipeline")
            .field("span_name", &self.span_name)
            .field("commands", &self.pipeline.len())
            .finish()
    }
}
