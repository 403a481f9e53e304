//! The future of every command and pipeline on a handle stays small.
//!
//! `ConnectionLike` makes each command box its future, so its size is allocated and copied
//! per command. Past about 1 KiB glibc's per-thread cache no longer serves the allocation:
//! when the reply timeout's timer and the command's own future were held inline, a command's
//! future was 1,424 bytes and malloc's slow path and the copy showed up in profiles.

use std::sync::Arc;

use baseplate_redis::config::RawConfig;
use baseplate_redis::pool::{InMemoryBackend, PoolBackend};
use baseplate_redis::{pool_from_config, RedisContextFactory};
use redis::aio::ConnectionLike;

/// What the largest request served from glibc's thread cache may be (`tcache` holds chunks
/// of up to 1,032 usable bytes on 64-bit Linux), with room to spare.
const LIMIT: usize = 1024;

fn assert_small(pool: Arc<dyn PoolBackend>, what: &str) {
    let factory = RedisContextFactory::new(pool);
    let mut conn = factory.connection();
    let cmd = redis::cmd("GET").arg("key").clone();
    // Made, never polled: nothing is sent.
    let command = conn.req_packed_command(&cmd);
    let size = std::mem::size_of_val(&*command);
    drop(command);
    assert!(size <= LIMIT, "{what}: a command's future is {size} bytes");
    let mut pipe = redis::pipe();
    pipe.get("key");
    let pipeline = conn.req_packed_commands(&pipe, 0, 1);
    let size = std::mem::size_of_val(&*pipeline);
    drop(pipeline);
    assert!(size <= LIMIT, "{what}: a pipeline's future is {size} bytes");
}

#[tokio::test]
async fn futures_fit_the_allocators_thread_cache() {
    // Lazy: the pool connects on the first command, and no command runs here.
    let config = RawConfig::from_pairs([
        ("redis.url", "redis://127.0.0.1:1/0"),
        ("redis.socket_timeout", "1 second"),
    ]);
    let pool = pool_from_config(&config, "redis.").expect("pool");
    assert_small(pool, "redis:// with a socket timeout");
    assert_small(Arc::new(InMemoryBackend::new()), "memory://");
}
