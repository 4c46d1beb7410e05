//! What the hooks of a component share: the hooks it declared (`Hooks`; each kind lives in
//! its own file) and their counters (`HookStats`, shown under `components.NAME` in
//! `/status`).

use super::validate::ValidateFn;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The hooks one component declared, in declaration order.
#[derive(Default)]
pub struct Hooks {
    /// (table, validator): run on the owner's writer before a local write commits.
    pub validators: Vec<(String, Arc<ValidateFn>)>,
}

/// What one component's hooks came to, node-wide.
#[derive(Debug, Default)]
pub struct HookStats {
    /// Validator runs.
    pub validations: AtomicU64,
    /// Writes a validator refused.
    pub validations_refused: AtomicU64,
    /// Validators that panicked (the write was refused with 500).
    pub validation_panics: AtomicU64,
}

impl HookStats {
    /// Adds the counters to a component's `/status` object.
    pub fn add_json(&self, into: &mut serde_json::Value) {
        let Some(map) = into.as_object_mut() else {
            return;
        };
        let pairs: [(&str, &AtomicU64); 3] = [
            ("validations", &self.validations),
            ("validations_refused", &self.validations_refused),
            ("validation_panics", &self.validation_panics),
        ];
        for (name, counter) in pairs {
            map.insert(name.into(), counter.load(Ordering::Relaxed).into());
        }
    }
}

/// Bumps a counter.
pub fn count(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}
