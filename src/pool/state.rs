//! A snapshot of a pool's size and use.

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
    /// Connections open and not in use.
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
}
