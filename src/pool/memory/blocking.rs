//! Blocking pops: wait for a push from another connection, or for the timeout.

use std::pin::pin;

use redis::Value;

use super::commands::{blocking_timeout, pop_first_nonempty, Exec};
use super::store::Store;

/// BLPOP/BRPOP `args` (name, keys…, timeout) on database `db`. The wait is cancel-safe:
/// nothing is popped until the reply is ready.
pub(crate) async fn pop(store: &Store, db: usize, args: &[Vec<u8>], left: bool) -> Value {
    let timeout = match blocking_timeout(args.last().map(Vec::as_slice).unwrap_or(&[])) {
        Ok(t) => t,
        Err(e) => return e,
    };
    let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
    let keys = &args[1..args.len() - 1];
    loop {
        // Register for wake-ups before looking, so a push between the look and the wait
        // is not missed.
        let mut notified = pin!(store.pushed.notified());
        notified.as_mut().enable();
        {
            let mut ks = store.lock();
            let mut x = Exec::new(&mut ks, db, args);
            match pop_first_nonempty(&mut x, keys, left) {
                Ok(Some(reply)) => return reply,
                Ok(None) => {}
                Err(e) => return e,
            }
        }
        match deadline {
            Some(deadline) => {
                if tokio::time::timeout_at(deadline, notified).await.is_err() {
                    return Value::Nil;
                }
            }
            None => notified.await,
        }
    }
}
