//! The operations behind the commands: load, refresh, reconcile, plan,
//! apply. Commands in the CLI are thin sequences of these calls.

use crate::conventions::current_inputs;
use crate::plan::Observations;
use crate::stack::Stack;
use rinfra_provider::{Observed, Ownership, ProviderError, ReadRequest, Registry};
use rinfra_state::{PendingKind, ReplacedResource, ResourceState, StateFile};
use std::collections::{BTreeMap, BTreeSet};

/// One resource that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("`{resource}`: {source}")]
pub struct ReadFailure {
    /// The resource.
    pub resource: String,
    /// Why.
    #[source]
    pub source: ProviderError,
}

/// Failed reads during refresh, each with its provider's error.
#[derive(Debug, thiserror::Error)]
#[error("refresh failed for {}", .0.iter().map(|f| f.to_string()).collect::<Vec<_>>().join("; "))]
pub struct RefreshError(pub Vec<ReadFailure>);

fn unknown_type(type_: &str) -> ProviderError {
    ProviderError::Invalid(format!("unknown resource type {type_}; upgrade rinfra or remove it with `rinfra state rm`"))
}

/// The property names of a resource that the stack sets, without
/// evaluating anything.
fn stack_keys(stack: Option<&Stack>, name: &str) -> BTreeSet<String> {
    match stack.and_then(|s| s.resources.get(name)).map(|r| &r.properties) {
        Some(crate::expr::Expr::Map(entries, _)) => entries.iter().map(|(k, _)| k.text.clone()).collect(),
        _ => BTreeSet::new(),
    }
}

/// Reads every resource in `state` from the cloud, all types at once and
/// each provider batching as its API allows.
pub async fn refresh(
    state: &StateFile,
    stack: Option<&Stack>,
    registry: &Registry,
) -> Result<Observations, RefreshError> {
    let mut by_type: BTreeMap<&str, Vec<(&String, &ResourceState)>> = BTreeMap::new();
    for (name, r) in &state.resources {
        by_type.entry(r.type_.as_str()).or_default().push((name, r));
    }
    let mut errors = Vec::new();
    let mut jobs = Vec::new();
    for (type_, members) in by_type {
        let Some(provider) = registry.get(type_) else {
            errors.extend(
                members.iter().map(|(n, _)| ReadFailure { resource: (*n).clone(), source: unknown_type(type_) }),
            );
            continue;
        };
        let requests: Vec<ReadRequest> = members
            .iter()
            .map(|(n, r)| {
                let mut managed: BTreeSet<String> = r.inputs.keys().cloned().collect();
                managed.extend(stack_keys(stack, n));
                ReadRequest::new(r.id.clone(), managed).with_recorded(&r.inputs)
            })
            .collect();
        let names: Vec<String> = members.iter().map(|(n, _)| (*n).clone()).collect();
        jobs.push(async move { (names, provider.read(&requests).await) });
    }
    let mut out = Observations::new();
    for (names, results) in futures::future::join_all(jobs).await {
        for (name, r) in names.into_iter().zip(results) {
            match r {
                Ok(o) => {
                    out.insert(name, o);
                }
                Err(source) => errors.push(ReadFailure { resource: name, source }),
            }
        }
    }
    if errors.is_empty() { Ok(out) } else { Err(RefreshError(errors)) }
}

/// Writes what the cloud holds into the state: current inputs and outputs
/// for resources that exist, removal for those that are gone.
pub fn apply_refresh(state: &mut StateFile, observed: &Observations, registry: &Registry) {
    let names: Vec<String> = state.resources.keys().cloned().collect();
    for name in names {
        match observed.get(&name) {
            Some(None) => {
                state.resources.remove(&name);
            }
            Some(Some(obs)) => {
                if let Some(rec) = state.resources.get_mut(&name) {
                    if let Some(provider) = registry.get(&rec.type_) {
                        rec.inputs = current_inputs(provider.as_ref(), Some(obs), &rec.inputs);
                        rec.outputs = obs.outputs.clone();
                    }
                }
            }
            None => {}
        }
    }
}

/// What reconciling one interrupted operation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovered {
    /// An interrupted create had made the resource, and its ownership tags
    /// prove this stack made it: it is now in the state.
    Adopted {
        /// The resource.
        name: String,
        /// Its cloud id.
        id: String,
    },
    /// A resource exists under the id an interrupted create would have
    /// used, but nothing proves this stack made it: it stays out of the
    /// state, and the user decides.
    NotAdopted {
        /// The resource.
        name: String,
        /// Its cloud id.
        id: String,
    },
    /// An interrupted create never reached the cloud.
    NeverCreated {
        /// The resource.
        name: String,
    },
    /// An interrupted operation had no cloud id to look for.
    NoId {
        /// The resource.
        name: String,
        /// What was interrupted.
        kind: PendingKind,
    },
    /// An interrupted delete had finished.
    Deleted {
        /// The resource.
        name: String,
    },
    /// An interrupted delete had not happened; the resource stays.
    NotDeleted {
        /// The resource.
        name: String,
    },
    /// An interrupted update: the state now holds what the cloud holds.
    Refreshed {
        /// The resource.
        name: String,
    },
    /// The resource of an interrupted update no longer exists.
    Vanished {
        /// The resource.
        name: String,
    },
}

impl std::fmt::Display for Recovered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Recovered::Adopted { name, id } => {
                write!(f, "adopted `{name}` ({id}): an interrupted create had made it, and its tags name this stack")
            }
            Recovered::NotAdopted { name, id } => write!(
                f,
                "`{id}` exists, but its tags do not show that this stack made it, so `{name}` was left out of the state; if it is yours, run `rinfra import {name} {id}`"
            ),
            Recovered::NeverCreated { name } => {
                write!(f, "dropped an interrupted create of `{name}`: it never reached the cloud")
            }
            Recovered::NoId { name, kind } => write!(f, "dropped an interrupted {kind} of `{name}` with no cloud id"),
            Recovered::Deleted { name } => {
                write!(f, "removed `{name}` from the state: an interrupted delete had finished")
            }
            Recovered::NotDeleted { name } => write!(f, "kept `{name}`: an interrupted delete had not happened"),
            Recovered::Refreshed { name } => write!(f, "refreshed `{name}` after an interrupted update"),
            Recovered::Vanished { name } => write!(f, "removed `{name}`: it no longer exists"),
        }
    }
}

/// Settles operations a crashed run left pending, by reading the cloud
/// through the provider that was called. A resource an interrupted create
/// may have made is adopted only when its ownership tags name this stack
/// and resource, and then with the options the stack gives it.
pub async fn reconcile_pending(
    state: &mut StateFile,
    stack: Option<&Stack>,
    registry: &Registry,
) -> Result<Vec<Recovered>, RefreshError> {
    let pending = std::mem::take(&mut state.pending);
    let mut notes = Vec::new();
    for mut p in pending {
        let name = p.resource.clone();
        let Some(provider) = registry.get(&p.type_) else {
            return Err(RefreshError(vec![ReadFailure { resource: name, source: unknown_type(&p.type_) }]));
        };
        if p.id.is_empty() && p.kind == PendingKind::Create {
            // The cloud chose the id: look for what the create may have
            // made by its inputs.
            match provider.find_created(&p.inputs).await {
                Ok(Some(id)) => p.id = id,
                Ok(None) => {}
                Err(source) => return Err(RefreshError(vec![ReadFailure { resource: name, source }])),
            }
        }
        if p.id.is_empty() {
            notes.push(Recovered::NoId { name, kind: p.kind });
            continue;
        }
        let managed: BTreeSet<String> = p.inputs.keys().cloned().collect();
        let request = ReadRequest {
            id: p.id.clone(),
            managed,
            ownership: p.kind == PendingKind::Create,
            recorded: p.inputs.clone(),
        };
        let found: Option<Observed> = provider
            .read(&[request])
            .await
            .pop()
            .transpose()
            .map_err(|source| RefreshError(vec![ReadFailure { resource: name.clone(), source }]))?
            .flatten();
        let note = match (p.kind, found) {
            (PendingKind::Create, Some(obs)) => {
                let ours = Ownership::new(state.id().owner(), name.clone());
                if obs.owner.as_ref() != Some(&ours) {
                    notes.push(Recovered::NotAdopted { name, id: p.id });
                    continue;
                }
                let options = stack.and_then(|s| s.resources.get(&name)).map(|d| d.options.clone()).unwrap_or_default();
                let adopted = ResourceState {
                    urn: state.urn(&p.type_, &name),
                    type_: p.type_.clone(),
                    id: p.id.clone(),
                    inputs: current_inputs(provider.as_ref(), Some(&obs), &p.inputs),
                    outputs: obs.outputs,
                    dependencies: p.dependencies.clone(),
                    protect: options.protect,
                    retain_on_delete: options.retain_on_delete,
                    deleted_with: options.deleted_with.map(|(w, _)| w),
                };
                // The create of a create-before-delete replace: the old
                // resource still exists, and must still be deleted.
                if let Some(old) = state.resources.insert(name.clone(), adopted) {
                    if old.id != p.id {
                        state.replaced.push(ReplacedResource { name: name.clone(), resource: old });
                    }
                }
                Recovered::Adopted { name, id: p.id }
            }
            (PendingKind::Create, None) => Recovered::NeverCreated { name },
            (PendingKind::Delete, None) => {
                state.resources.remove(&name);
                Recovered::Deleted { name }
            }
            (PendingKind::DeleteReplaced, None) => {
                state.replaced.retain(|r| !(r.name == name && r.resource.id == p.id));
                Recovered::Deleted { name }
            }
            (PendingKind::Delete | PendingKind::DeleteReplaced, Some(_)) => Recovered::NotDeleted { name },
            (PendingKind::Update, Some(obs)) => {
                if let Some(rec) = state.resources.get_mut(&name) {
                    rec.inputs = current_inputs(provider.as_ref(), Some(&obs), &rec.inputs);
                    rec.outputs = obs.outputs;
                }
                Recovered::Refreshed { name }
            }
            (PendingKind::Update, None) => {
                state.resources.remove(&name);
                Recovered::Vanished { name }
            }
        };
        notes.push(note);
    }
    Ok(notes)
}

/// Keeps only the observations of resources that still exist, as a
/// destroy needs: gone resources are dropped from the state without calls.
pub fn drop_gone(state: &mut StateFile, observed: &Observations) -> Vec<String> {
    let gone: Vec<String> = observed.iter().filter(|(_, o)| o.is_none()).map(|(k, _)| k.clone()).collect();
    for g in &gone {
        state.resources.remove(g);
    }
    gone
}

/// Why an import failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The stack has no such resource.
    #[error("the stack has no resource `{0}`; add it to the stack before importing")]
    NotInStack(String),
    /// The state already manages it.
    #[error("`{0}` is already in the state; run `rinfra state rm {0}` first to import it again")]
    AlreadyManaged(String),
    /// The cloud has no resource with that id.
    #[error("cannot import `{name}`: no {type_} with id `{id}` exists")]
    NotFound {
        /// The resource.
        name: String,
        /// Its type.
        type_: String,
        /// The id looked for.
        id: String,
    },
    /// Reading it failed.
    #[error("cannot import `{name}`: {source}")]
    Read {
        /// The resource.
        name: String,
        /// What went wrong.
        #[source]
        source: ProviderError,
    },
}

/// Adopts the existing cloud resource `id` as the stack's resource `name`:
/// reads it and records what the cloud holds, so the next plan shows only
/// real differences between the stack and the cloud.
pub async fn import(
    state: &mut StateFile,
    stack: &Stack,
    registry: &Registry,
    name: &str,
    id: &str,
) -> Result<(), ImportError> {
    let decl = stack.resources.get(name).ok_or_else(|| ImportError::NotInStack(name.to_string()))?;
    if state.resources.contains_key(name) {
        return Err(ImportError::AlreadyManaged(name.to_string()));
    }
    let provider = registry
        .get(&decl.type_)
        .ok_or_else(|| ImportError::Read { name: name.into(), source: unknown_type(&decl.type_) })?;
    let managed = stack_keys(Some(stack), name);
    // Where the resource lives: its provider's region, as a create would
    // have put it.
    let place = crate::conventions::where_it_lives(&decl.provider_defaults, provider.as_ref(), registry);
    let mut found = provider
        .read(&[ReadRequest::new(id, managed).with_recorded(&place)])
        .await
        .pop()
        .transpose()
        .map_err(|source| ImportError::Read { name: name.into(), source })?
        .flatten()
        .ok_or_else(|| ImportError::NotFound { name: name.into(), type_: decl.type_.clone(), id: id.into() })?;
    found.inputs.extend(place);
    state.resources.insert(
        name.to_string(),
        ResourceState {
            urn: state.urn(&decl.type_, &decl.logical),
            deleted_with: decl.options.deleted_with.as_ref().map(|(w, _)| w.clone()),
            type_: decl.type_.clone(),
            id: id.to_string(),
            inputs: found.inputs,
            outputs: found.outputs,
            dependencies: decl.dependencies.iter().cloned().collect(),
            protect: decl.options.protect,
            retain_on_delete: decl.options.retain_on_delete,
        },
    );
    record_known_outputs(state, stack, registry);
    Ok(())
}

/// Records every stack output whose references are all in the state, so
/// that once everything is imported a preview shows no changes.
fn record_known_outputs(state: &mut StateFile, stack: &Stack, registry: &Registry) {
    let attrs = crate::conventions::attrs_of(state, registry);
    let lookup = |res: &str, path: &[String]| -> Option<serde_json::Value> {
        let mut v = attrs.get(res)?.get(path.first()?)?.clone();
        for p in &path[1..] {
            v = crate::expr::step(&v, p)?;
        }
        Some(v)
    };
    // Imports run before the run's function calls and `get` reads, so
    // outputs that need them stay unrecorded until the next apply.
    let resolved = crate::stack::Resolved::new(stack);
    let ctx = stack.context(&resolved, &lookup);
    for (name, e) in &stack.outputs {
        if let Ok(v) = ctx.eval(e) {
            state.outputs.insert(name.clone(), v);
        }
    }
}

/// Imports every resource whose `options.import` names an id and that the
/// state does not manage yet. Returns the names imported.
pub async fn import_declared(
    state: &mut StateFile,
    stack: &Stack,
    registry: &Registry,
) -> Result<Vec<String>, ImportError> {
    let mut done = Vec::new();
    for (name, decl) in &stack.resources {
        if let Some(id) = &decl.options.import {
            if !state.resources.contains_key(name) {
                import(state, stack, registry, name, id).await?;
                done.push(name.clone());
            }
        }
    }
    Ok(done)
}

/// Why `state rm` or `state mv` cannot do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum StateEditError {
    /// The state has no resource of that name.
    #[error("the state has no resource `{name}`{}", known_names(.known))]
    NoSuchResource {
        /// The name asked for.
        name: String,
        /// The names it has.
        known: Vec<String>,
    },
    /// The state has a resource of that name already.
    #[error("the state already has a resource `{0}`")]
    ResourceExists(String),
}

/// "; it has: a, b" for the names a state has, or nothing when it has none.
pub(crate) fn known_names(known: &[String]) -> String {
    if known.is_empty() { String::new() } else { format!("; it has: {}", known.join(", ")) }
}

/// Forgets `name` without deleting it from the cloud. Returns what was
/// removed and the resources that still depend on it.
pub fn state_rm(state: &mut StateFile, name: &str) -> Result<(ResourceState, Vec<String>), StateEditError> {
    let Some(r) = state.resources.remove(name) else {
        return Err(StateEditError::NoSuchResource {
            name: name.into(),
            known: state.resources.keys().cloned().collect(),
        });
    };
    let dependents = state
        .resources
        .iter()
        .filter(|(_, o)| o.dependencies.iter().any(|d| d == name))
        .map(|(k, _)| k.clone())
        .collect();
    Ok((r, dependents))
}

/// Renames `old` to `new` in the state, with its URN and every dependency
/// on it, so a rename in the stack does not replace the resource.
pub fn state_mv(state: &mut StateFile, old: &str, new: &str) -> Result<(), StateEditError> {
    if state.resources.contains_key(new) {
        return Err(StateEditError::ResourceExists(new.to_string()));
    }
    let Some(mut r) = state.resources.remove(old) else {
        return Err(StateEditError::NoSuchResource {
            name: old.into(),
            known: state.resources.keys().cloned().collect(),
        });
    };
    r.urn = state.urn(&r.type_, new);
    state.resources.insert(new.to_string(), r);
    for other in state.resources.values_mut() {
        for d in other.dependencies.iter_mut().filter(|d| *d == old) {
            *d = new.to_string();
        }
    }
    Ok(())
}

/// Moves the state's record of every resource that `aliases` says was
/// renamed, so a rename keeps the resource instead of replacing it.
/// Returns the renames made, old name first.
pub fn apply_aliases(state: &mut StateFile, stack: &Stack) -> Vec<(String, String)> {
    let mut moved = Vec::new();
    for (name, decl) in &stack.resources {
        if state.resources.contains_key(name) {
            continue;
        }
        let old = decl.options.aliases.iter().map(|(a, _)| a).find(|a| {
            !stack.resources.contains_key(*a) && state.resources.get(*a).is_some_and(|r| r.type_ == decl.type_)
        });
        if let Some(old) = old.cloned() {
            if state_mv(state, &old, name).is_ok() {
                let urn = state.urn(&decl.type_, &decl.logical);
                if let Some(r) = state.resources.get_mut(name) {
                    r.urn = urn;
                }
                moved.push((old, name.clone()));
            }
        }
    }
    moved
}

/// Writes the options and dependencies the stack now declares into the
/// state for resources that exist in both. A resource whose only change is
/// `protect: false` still needs the state to know. Returns whether anything
/// changed.
pub fn sync_metadata(stack: &Stack, state: &mut StateFile) -> bool {
    let mut changed = false;
    for (name, decl) in &stack.resources {
        let Some(rec) = state.resources.get_mut(name) else { continue };
        if rec.type_ != decl.type_ {
            continue;
        }
        let deps: Vec<String> = decl.dependencies.iter().cloned().collect();
        let deleted_with = decl.options.deleted_with.as_ref().map(|(w, _)| w.clone());
        if rec.protect != decl.options.protect
            || rec.retain_on_delete != decl.options.retain_on_delete
            || rec.dependencies != deps
            || rec.deleted_with != deleted_with
        {
            rec.protect = decl.options.protect;
            rec.retain_on_delete = decl.options.retain_on_delete;
            rec.dependencies = deps;
            rec.deleted_with = deleted_with;
            changed = true;
        }
    }
    changed
}
