//! Metric handles kept per error class, made on first use: the classes are a fixed list, so
//! the list stays small and a lookup is a short scan under a read lock.

use std::sync::RwLock;

use super::ErrorClass;

pub(crate) struct PerErrorClass<H> {
    seen: RwLock<Vec<(ErrorClass, H)>>,
}

impl<H: Clone> PerErrorClass<H> {
    pub(crate) fn new() -> Self {
        PerErrorClass {
            seen: RwLock::new(Vec::new()),
        }
    }

    /// The handle of `class`, made by `make` the first time.
    pub(crate) fn get(&self, class: ErrorClass, make: impl FnOnce() -> H) -> H {
        let found = self
            .seen
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|(seen, _)| *seen == class)
            .map(|(_, handle)| handle.clone());
        if let Some(handle) = found {
            return handle;
        }
        let mut seen = self.seen.write().unwrap_or_else(|e| e.into_inner());
        // Another thread may have made it meanwhile.
        if let Some((_, handle)) = seen.iter().find(|(seen, _)| *seen == class) {
            return handle.clone();
        }
        let handle = make();
        seen.push((class, handle.clone()));
        handle
    }
}
