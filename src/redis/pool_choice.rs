//! How a client declared in a `ContextSpec` gets its pool: made from its keys or given by
//! the user, then passed through the user's wrappers.

use std::fmt;
use std::sync::Arc;

use crate::config::ConfigurationError;
use crate::pool::PoolBackend;

type PoolMap = Arc<dyn Fn(Arc<dyn PoolBackend>) -> Arc<dyn PoolBackend> + Send + Sync>;

/// The pool options of `RedisClient` and `ClusterRedisClient`.
#[derive(Clone, Default)]
pub(crate) struct PoolChoice {
    /// Used instead of a pool made from the keys (which are then not read).
    given: Option<Arc<dyn PoolBackend>>,
    /// Applied in order to the pool, whichever way it was made.
    maps: Vec<PoolMap>,
}

impl PoolChoice {
    pub(crate) fn given(pool: Arc<dyn PoolBackend>) -> Self {
        PoolChoice {
            given: Some(pool),
            maps: Vec::new(),
        }
    }

    pub(crate) fn push_map(
        &mut self,
        map: impl Fn(Arc<dyn PoolBackend>) -> Arc<dyn PoolBackend> + Send + Sync + 'static,
    ) {
        self.maps.push(Arc::new(map));
    }

    /// The client's pool: the given one, or `from_keys`'s, through every map.
    pub(crate) fn pool(
        &self,
        from_keys: impl FnOnce() -> Result<Arc<dyn PoolBackend>, ConfigurationError>,
    ) -> Result<Arc<dyn PoolBackend>, ConfigurationError> {
        let pool = match &self.given {
            Some(pool) => pool.clone(),
            None => from_keys()?,
        };
        Ok(self.maps.iter().fold(pool, |pool, map| map(pool)))
    }
}

impl fmt::Debug for PoolChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolChoice")
            .field("given", &self.given)
            .field("maps", &self.maps.len())
            .finish()
    }
}
