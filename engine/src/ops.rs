//! The operations behind the commands: load, refresh, reconcile, plan,
//! apply. Commands in the CLI are thin sequences of these calls.

use crate::diag::Diagnostics;
use crate::plan::{Observations, current_inputs};
use crate::stack::Stack;
use rinfra_resources::{Observed, ReadRequest, Registry};
use rinfra_state::{ResourceState, StateFile};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Why a stack could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read stack file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The stack is invalid.
    #[error("{diagnostics}")]
    Invalid {
        /// The file's text, for rendering carets.
        source_text: String,
        /// What is wrong.
        diagnostics: Diagnostics,
    },
}

/// Reads and checks the stack at `path`.
pub fn load_stack(path: &Path, overrides: &BTreeMap<String, String>, registry: &Registry) -> Result<Stack, LoadError> {
    let bytes = std::fs::read(path).map_err(|source| LoadError::Io { path: path.to_path_buf(), source })?;
    crate::stack::load(&bytes, overrides, registry).map_err(|diagnostics| LoadError::Invalid {
        source_text: String::from_utf8_lossy(&bytes).into_owned(),
        diagnostics,
    })
}

/// The default state path for a stack: `.rinfra/<name>.json`.
pub fn default_state_path(stack_name: &str) -> PathBuf {
    PathBuf::from(".rinfra").join(format!("{stack_name}.json"))
}

/// A failed read during refresh.
#[derive(Debug, thiserror::Error)]
#[error("refresh failed for {}: {}", .0.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", "), .0.iter().map(|(_, e)| e.as_str()).collect::<Vec<_>>().join("; "))]
pub struct RefreshError(pub Vec<(String, String)>);

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
            errors.extend(members.iter().map(|(n, _)| ((*n).clone(), format!("unknown type {type_}"))));
            continue;
        };
        let requests: Vec<ReadRequest> = members
            .iter()
            .map(|(n, r)| {
                let mut managed: BTreeSet<String> = r.inputs.keys().cloned().collect();
                managed.extend(stack_keys(stack, n));
                ReadRequest { id: r.id.clone(), managed }
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
                Err(e) => errors.push((name, e.to_string())),
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

/// Settles operations a crashed run left pending, by reading the cloud.
/// Returns a sentence per operation saying what was done.
pub async fn reconcile_pending(state: &mut StateFile, registry: &Registry) -> Result<Vec<String>, RefreshError> {
    let pending = std::mem::take(&mut state.pending);
    let mut notes = Vec::new();
    for p in pending {
        let Some(provider) = registry.get(&p.type_) else {
            return Err(RefreshError(vec![(p.resource.clone(), format!("unknown type {}", p.type_))]));
        };
        if p.id.is_empty() {
            notes.push(format!("dropped an interrupted {} of `{}` with no cloud id", p.kind, p.resource));
            continue;
        }
        let managed: BTreeSet<String> = p.inputs.keys().cloned().collect();
        let found: Option<Observed> = provider
            .read(&[ReadRequest { id: p.id.clone(), managed }])
            .await
            .pop()
            .transpose()
            .map_err(|e| RefreshError(vec![(p.resource.clone(), e.to_string())]))?
            .flatten();
        match (p.kind.as_str(), found) {
            ("create", Some(obs)) => {
                let urn = StateFile::urn(&state.stack, &p.type_, &p.resource);
                state.resources.insert(
                    p.resource.clone(),
                    ResourceState {
                        urn,
                        type_: p.type_.clone(),
                        id: p.id.clone(),
                        inputs: current_inputs(provider.as_ref(), Some(&obs), &p.inputs),
                        outputs: obs.outputs,
                        dependencies: p.dependencies.clone(),
                        protect: false,
                        retain_on_delete: false,
                    },
                );
                notes.push(format!("adopted `{}` ({}): an interrupted create had made it", p.resource, p.id));
            }
            ("create", None) => {
                notes.push(format!("dropped an interrupted create of `{}`: it never reached the cloud", p.resource))
            }
            ("delete", None) => {
                state.resources.remove(&p.resource);
                notes.push(format!("removed `{}` from the state: an interrupted delete had finished", p.resource));
            }
            ("delete", Some(_)) => notes.push(format!("kept `{}`: an interrupted delete had not happened", p.resource)),
            (_, Some(obs)) => {
                if let Some(rec) = state.resources.get_mut(&p.resource) {
                    rec.inputs = current_inputs(provider.as_ref(), Some(&obs), &rec.inputs);
                    rec.outputs = obs.outputs;
                }
                notes.push(format!("refreshed `{}` after an interrupted update", p.resource));
            }
            (_, None) => {
                state.resources.remove(&p.resource);
                notes.push(format!("removed `{}`: it no longer exists", p.resource));
            }
        }
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
    #[error("cannot import `{name}`: {message}")]
    Read {
        /// The resource.
        name: String,
        /// What went wrong.
        message: String,
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
        .ok_or_else(|| ImportError::Read { name: name.into(), message: format!("unknown type {}", decl.type_) })?;
    let managed = stack_keys(Some(stack), name);
    let found = provider
        .read(&[ReadRequest { id: id.to_string(), managed }])
        .await
        .pop()
        .transpose()
        .map_err(|e| ImportError::Read { name: name.into(), message: e.to_string() })?
        .flatten()
        .ok_or_else(|| ImportError::NotFound { name: name.into(), type_: decl.type_.clone(), id: id.into() })?;
    state.resources.insert(
        name.to_string(),
        ResourceState {
            urn: StateFile::urn(&state.stack, &decl.type_, name),
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
    let attrs = crate::apply::attrs_of(state, registry);
    let lookup = |res: &str, path: &[String]| -> Option<serde_json::Value> {
        let mut v = attrs.get(res)?.get(path.first()?)?.clone();
        for p in &path[1..] {
            v = v.get(p)?.clone();
        }
        Some(v)
    };
    let ctx = crate::expr::EvalContext { config: &stack.config, variables: &stack.variables, resource: &lookup };
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
