//! A backend whose connection answers every command at once from memory, without
//! allocating beyond the boxed future `ConnectionLike` makes every implementation return:
//! it isolates the cost of the instrumentation from I/O. Shared by the allocation test and
//! the instrumentation benchmarks.

#![allow(dead_code, unreachable_pub)]

use std::future::{ready, Future};
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use async_trait::async_trait;
use baseplate_redis::pool::{PoolBackend, PoolState, PooledConnection};
use redis::aio::ConnectionLike;
use redis::{Cmd, Pipeline, RedisFuture, Value};

/// Replies `OK` to every command, and `OK`s to every pipeline (allocating that `Vec`).
#[derive(Debug, Clone, Copy, Default)]
pub struct InstantConnection;

impl ConnectionLike for InstantConnection {
    fn req_packed_command<'a>(&'a mut self, _cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(ready(Ok(Value::Okay)))
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        _pipeline: &'a Pipeline,
        _offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(ready(Ok(vec![Value::Okay; count])))
    }

    fn get_db(&self) -> i64 {
        0
    }
}

/// Hands out [`InstantConnection`]s.
#[derive(Debug)]
pub struct InstantBackend {
    address: std::sync::Arc<str>,
}

impl Default for InstantBackend {
    fn default() -> Self {
        InstantBackend {
            address: std::sync::Arc::from("instant:0"),
        }
    }
}

#[async_trait]
impl PoolBackend for InstantBackend {
    async fn shared(&self) -> baseplate_redis::Result<PooledConnection> {
        Ok(PooledConnection::new(InstantConnection))
    }

    async fn exclusive(&self) -> baseplate_redis::Result<PooledConnection> {
        Ok(PooledConnection::new(InstantConnection))
    }

    fn state(&self) -> PoolState {
        PoolState::new(1, 1, 0)
    }

    fn database(&self) -> i64 {
        0
    }

    fn address(&self) -> std::sync::Arc<str> {
        self.address.clone()
    }
}

/// Runs a future that never waits (everything here answers at once) to completion.
pub fn now<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the instant backend's future waited"),
    }
}
