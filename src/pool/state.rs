//! A snapshot of a pool's size and use, and the gauges baseplate.py derives from it.

/// How many connections a pool may open, has open, and has in use, at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct PoolState {
    /// The most connections the pool opens (`max_connections`).
    pub max_size: u32,
    /// Connections open now.
    pub open: u32,
    /// Connections serving a caller now (a shared connection counts while it has a command
    /// in flight; an exclusive one while it is checked out).
    pub in_use: u32,
    /// Connections open and not in use (`open - in_use`). Not what the
    /// `redis_client_pool_idle_connections` gauge reports: that is
    /// [`free_slots`](Self::free_slots), as in baseplate.py.
    pub idle: u32,
}

impl PoolState {
    /// A state; `idle` is derived as `open - in_use`.
    pub fn new(max_size: u32, open: u32, in_use: u32) -> Self {
        let in_use = in_use.min(open);
        PoolState {
            max_size,
            open,
            in_use,
            idle: open - in_use,
        }
    }

    /// Slots free for a new checkout: `max_size - in_use`. baseplate.py's
    /// `BlockingConnectionPool` queue size, reported as `redis_client_pool_idle_connections`.
    pub fn free_slots(&self) -> u32 {
        self.max_size.saturating_sub(self.in_use)
    }

    /// Open connections not in use: `open - in_use`, baseplate.py's
    /// `runtime.pool.open_and_available` (the same as [`idle`](Self::idle)).
    pub fn open_and_available(&self) -> u32 {
        self.open.saturating_sub(self.in_use)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gauges_follow_the_original_formulas() {
        let state = PoolState::new(10, 3, 2);
        assert_eq!(state.free_slots(), 8);
        assert_eq!(state.open_and_available(), 1);
        assert_eq!(state.idle, 1);
        let fresh = PoolState::new(50, 0, 0);
        assert_eq!((fresh.free_slots(), fresh.open_and_available()), (50, 0));
        // Never negative, even from a backend whose counts race.
        let full = PoolState {
            max_size: 2,
            open: 1,
            in_use: 3,
            idle: 0,
        };
        assert_eq!((full.free_slots(), full.open_and_available()), (0, 0));
    }
}
