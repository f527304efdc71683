//! The journal: the only writer of the state during an apply.
//!
//! Before a mutating call starts, [`Journal::begin`] records its pending
//! operation and saves; when the call returns, one of the `record_*`
//! methods writes its result in place of the pending operation, and
//! [`Journal::save`] makes it durable. A crash between the two leaves a
//! pending operation that the next run reconciles by reading the cloud.

use crate::conventions::attrs_of;
use crate::plan::Step;
use crate::stack::{Resolved, Stack};
use rinfra_provider::{Created, Observed, Props, Registry};
use rinfra_state::StackId;
use rinfra_state::backend::Backend;
use rinfra_state::crypt::Sealer;
use rinfra_state::{PendingOperation, ReplacedResource, ResourceState, StateError, StateFile};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Where the state is saved during an apply.
pub trait Store: Send + Sync {
    /// Saves `state` atomically, bumping its serial and checksum.
    fn save(&self, state: &mut StateFile) -> Result<(), StateError>;

    /// Where the state lives, for messages.
    fn describe(&self) -> String;
}

/// One stack's state in a backend (a local directory, a bucket), with the
/// sealer that keeps its secrets encrypted.
#[derive(Debug, Clone)]
pub struct BackendStore {
    /// The backend.
    pub backend: Arc<dyn Backend>,
    /// The stack.
    pub id: StackId,
    /// Encrypts the values derived from secrets, when the stack has any.
    pub sealer: Option<Arc<Sealer>>,
    /// The outputs each resource marks secret (`additionalSecretOutputs`):
    /// their values are sealed too, from the first save that holds them.
    pub secret_outputs: BTreeMap<String, Vec<String>>,
}

/// The text of every value `secret_outputs` names in `state`.
pub fn secret_output_texts(state: &StateFile, secret_outputs: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    let mut out = Vec::new();
    for (name, outputs) in secret_outputs {
        let Some(r) = state.resources.get(name) else { continue };
        for o in outputs {
            let v = if o == "id" {
                Some(serde_json::Value::String(r.id.clone()))
            } else {
                r.outputs.get(o).or_else(|| r.inputs.get(o)).cloned()
            };
            if let Some(v) = v {
                texts_in(&v, &mut out);
            }
        }
    }
    out
}

/// Every text inside `v`, for sealing it by value: a map or list is sealed
/// through its strings. Numbers and booleans are left out: sealing every
/// `1` or `true` in a state would hide far more than the secret.
fn texts_in(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) if !s.is_empty() => out.push(s.clone()),
        serde_json::Value::Array(items) => items.iter().for_each(|i| texts_in(i, out)),
        serde_json::Value::Object(m) => m.values().for_each(|i| texts_in(i, out)),
        _ => {}
    }
}

impl Store for BackendStore {
    fn save(&self, state: &mut StateFile) -> Result<(), StateError> {
        let extra = secret_output_texts(state, &self.secret_outputs);
        match (&self.sealer, extra.is_empty()) {
            (Some(s), false) => self.backend.save(&self.id, state, Some(&s.with_more(&extra))),
            _ => self.backend.save(&self.id, state, self.sealer.as_deref()),
        }
    }

    fn describe(&self) -> String {
        self.backend.location(&self.id)
    }
}

/// The state of one apply, and where it is saved.
pub struct Journal<'a> {
    /// The state as it is now.
    pub state: &'a mut StateFile,
    store: &'a dyn Store,
    stack: Option<&'a Stack>,
}

impl<'a> Journal<'a> {
    /// A journal writing `state` to `store`. `stack` gives the options to
    /// record for created resources; it is `None` for a destroy.
    pub fn new(state: &'a mut StateFile, store: &'a dyn Store, stack: Option<&'a Stack>) -> Self {
        Journal { state, store, stack }
    }

    /// Records the intent of calls about to start, with one save.
    pub fn begin(&mut self, ops: impl IntoIterator<Item = PendingOperation>) -> Result<(), StateError> {
        let mut any = false;
        for p in ops {
            self.state.pending.retain(|q| !(q.resource == p.resource && q.kind == p.kind));
            self.state.pending.push(p);
            any = true;
        }
        if any { self.save() } else { Ok(()) }
    }

    /// Drops the pending operation of `name` (its result is being recorded).
    pub fn settle(&mut self, name: &str) {
        self.state.pending.retain(|p| p.resource != name);
    }

    /// Saves the state as it is now.
    pub fn save(&mut self) -> Result<(), StateError> {
        self.store.save(self.state)
    }

    fn options(&self, name: &str) -> (bool, bool, Option<String>) {
        self.stack
            .and_then(|s| s.resources.get(name))
            .map(|d| {
                (d.options.protect, d.options.retain_on_delete, d.options.deleted_with.as_ref().map(|(w, _)| w.clone()))
            })
            .unwrap_or_default()
    }

    /// The logical name of `name`, as its URN has it.
    fn logical<'n>(&'n self, name: &'n str) -> &'n str {
        self.stack.and_then(|s| s.resources.get(name)).map_or(name, |d| d.logical.as_str())
    }

    /// A new resource now exists. For a create-before-delete replace, the
    /// old resource of the same name moves to the `replaced` list, to be
    /// deleted once its dependents point at the new one.
    pub fn record_created(&mut self, step: &Step, created: Created, inputs: Props) {
        let (protect, retain_on_delete, deleted_with) = self.options(&step.name);
        let new = ResourceState {
            urn: self.state.urn(&step.type_, self.logical(&step.name)),
            deleted_with,
            type_: step.type_.clone(),
            id: created.id,
            inputs,
            outputs: created.outputs,
            dependencies: step.dependencies.clone(),
            protect,
            retain_on_delete,
        };
        if let Some(old) = self.state.resources.insert(step.name.clone(), new) {
            if step.op.is_replace() {
                self.state.replaced.push(ReplacedResource { name: step.name.clone(), resource: old });
            }
        }
    }

    /// An update finished: the cloud holds `inputs`.
    pub fn record_updated(&mut self, step: &Step, outputs: Props, inputs: Props) {
        let (protect, retain_on_delete, deleted_with) = self.options(&step.name);
        if let Some(r) = self.state.resources.get_mut(&step.name) {
            r.inputs = inputs;
            r.outputs.extend(outputs);
            r.dependencies = step.dependencies.clone();
            r.protect = protect;
            r.retain_on_delete = retain_on_delete;
            r.deleted_with = deleted_with;
        }
    }

    /// An update failed part way. What the cloud holds now was read back
    /// (`Some(None)` when the resource is gone, `None` when the read failed
    /// too), so the state records what was really applied, not the old
    /// inputs.
    pub fn record_update_failed(
        &mut self,
        step: &Step,
        registry: &Registry,
        observed: Option<Option<Observed>>,
        desired: &Props,
    ) {
        match observed {
            Some(None) => {
                self.state.resources.remove(&step.name);
            }
            Some(Some(obs)) => {
                if let (Some(r), Some(p)) = (self.state.resources.get_mut(&step.name), registry.get(&step.type_)) {
                    r.inputs = crate::conventions::current_inputs(p.as_ref(), Some(&obs), &r.inputs);
                    r.outputs.extend(obs.outputs);
                }
            }
            None => {
                // Nothing could be read: keep a pending update, so the next
                // run reads the resource before trusting the state.
                if let Some(r) = self.state.resources.get(&step.name) {
                    let pending = PendingOperation {
                        kind: rinfra_state::PendingKind::Update,
                        resource: step.name.clone(),
                        type_: step.type_.clone(),
                        id: r.id.clone(),
                        inputs: desired.clone(),
                        dependencies: step.dependencies.clone(),
                    };
                    self.state.pending.push(pending);
                }
            }
        }
    }

    /// The resource of `step` was deleted (or forgotten).
    pub fn record_deleted(&mut self, step: &Step) {
        self.state.resources.remove(&step.name);
    }

    /// The old half of a replace of `name`, with cloud id `id`, was deleted.
    pub fn record_old_half_deleted(&mut self, name: &str, id: &str) {
        self.state.replaced.retain(|r| !(r.name == name && r.resource.id == id));
    }

    /// Recomputes the stack outputs from what the state now holds.
    pub fn record_outputs(&mut self, registry: &Registry, resolved: &Resolved) {
        self.state.outputs = match self.stack {
            Some(s) => crate::plan::eval_outputs(s, resolved, &attrs_of(self.state, registry)),
            None => BTreeMap::new(),
        };
    }
}
