//! Applying a plan: concurrent, in dependency order, and crash-safe.
//!
//! Independent steps run at the same time, up to `parallel`. A step starts
//! when every step it depends on has finished: creates and updates after
//! their dependencies, deletes after their dependents. Before each mutating
//! call a pending operation is written to the state, and after it the
//! result replaces it; the state is saved atomically each time, so an
//! interrupted run leaves a state that says what may exist. After a failure
//! or an interrupt nothing new starts, and what is in flight finishes.

use crate::plan::{Op, Plan, PlanError, Step, attributes, diff, eval_inputs, eval_outputs};
use crate::stack::Stack;
use rinfra_resources::{Created, Observed, Progress, Props, Provider, ProviderError, ReadRequest, Registry};
use rinfra_state::{PendingOperation, ResourceState, StateError, StateFile};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// Something that happened while applying, for progress display.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Work on a resource started.
    Started {
        /// The resource.
        name: String,
        /// What is being done.
        op: Op,
    },
    /// A status line from the provider, such as "waiting for ACTIVE".
    Status {
        /// The resource.
        name: String,
        /// The status.
        message: String,
    },
    /// Work on a resource finished.
    Done {
        /// The resource.
        name: String,
        /// What was done.
        op: Op,
        /// How long it took.
        elapsed: Duration,
    },
    /// Work on a resource failed.
    Failed {
        /// The resource.
        name: String,
        /// What was tried.
        op: Op,
        /// Why it failed.
        error: String,
    },
}

/// Receives [`Event`]s. Implemented by the command line.
pub trait Observer: Send + Sync {
    /// Called for every event, from any task.
    fn event(&self, e: Event);
}

/// An observer that ignores everything.
#[derive(Debug, Default)]
pub struct Quiet;

impl Observer for Quiet {
    fn event(&self, _e: Event) {}
}

/// Settings of one apply.
#[derive(Clone)]
pub struct ApplyOptions {
    /// How many steps may run at once.
    pub parallel: usize,
    /// Set to stop starting new steps (Ctrl-C).
    pub cancel: Arc<AtomicBool>,
    /// Whether to recompute the stack outputs at the end; a run limited
    /// to some targets leaves them as they are.
    pub update_outputs: bool,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions { parallel: 16, cancel: Arc::new(AtomicBool::new(false)), update_outputs: true }
    }
}

/// A failed step.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// The resource.
    pub name: String,
    /// What was tried.
    pub op: Op,
    /// Why it failed.
    pub error: String,
}

/// What an apply did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// Steps that finished, with their durations.
    pub done: Vec<(String, Op, Duration)>,
    /// Steps that failed.
    pub failures: Vec<Failure>,
    /// Whether the run was interrupted before every step started.
    pub interrupted: bool,
    /// Steps not started because another step failed.
    pub skipped: usize,
}

impl Report {
    /// Whether every step succeeded.
    pub fn ok(&self) -> bool {
        self.failures.is_empty() && !self.interrupted
    }
}

/// Why an apply stopped early without a per-resource failure.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The state could not be saved; the run stops at once.
    #[error(transparent)]
    State(#[from] StateError),
    /// Inputs could not be evaluated.
    #[error(transparent)]
    Plan(#[from] PlanError),
}

struct StepProgress {
    name: String,
    observer: Arc<dyn Observer>,
}

impl Progress for StepProgress {
    fn status(&self, message: &str) {
        self.observer.event(Event::Status { name: self.name.clone(), message: message.to_string() });
    }
}

/// What a finished task did.
enum Outcome {
    Created(Created, Props),
    Updated(Props, Props),
    Deleted,
    /// The first half of a delete-before-create replace.
    ReplaceDeleted,
    Forgotten,
}

/// Reads a resource after a partial create so the state records what
/// really exists, falling back to the inputs that are certain.
async fn observe_partial(provider: &dyn Provider, id: &str, desired: &Props) -> Option<Observed> {
    let managed: BTreeSet<String> = desired.keys().cloned().collect();
    let mut r = provider.read(&[ReadRequest { id: id.to_string(), managed }]).await;
    r.pop().and_then(Result::ok).flatten()
}

/// Applies `plan`. `stack` is `None` for destroy, which only deletes.
pub async fn apply(
    plan: &Plan,
    stack: Option<&Stack>,
    state: &mut StateFile,
    state_path: &Path,
    registry: &Registry,
    options: &ApplyOptions,
    observer: Arc<dyn Observer>,
) -> Result<Report, ApplyError> {
    let steps: Vec<&Step> = plan.steps.iter().filter(|s| s.op != Op::Same).collect();
    let index: BTreeMap<&str, usize> = steps.iter().enumerate().map(|(i, s)| (s.name.as_str(), i)).collect();

    // What each step waits for.
    let mut waits: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); steps.len()];
    for (i, s) in steps.iter().enumerate() {
        match s.op {
            Op::Delete | Op::Forget => {
                // Dependents go first: anything that now depends on this.
                for (other, rec) in &state.resources {
                    if rec.dependencies.contains(&s.name) {
                        if let Some(j) = index.get(other.as_str()).filter(|j| **j != i) {
                            waits[i].insert(*j);
                        }
                    }
                }
            }
            _ => {
                for d in &s.dependencies {
                    if let Some(j) = index.get(d.as_str()) {
                        waits[i].insert(*j);
                    }
                }
                if s.op == Op::Replace {
                    // A removed resource that depended on this one must be
                    // deleted before this one is.
                    for (other, rec) in &state.resources {
                        if rec.dependencies.contains(&s.name) {
                            if let Some(j) =
                                index.get(other.as_str()).filter(|j| matches!(steps[**j].op, Op::Delete | Op::Forget))
                            {
                                waits[i].insert(*j);
                            }
                        }
                    }
                }
            }
        }
    }

    let mut report = Report::default();
    let mut started = vec![false; steps.len()];
    let mut finished = vec![false; steps.len()];
    let mut start_times: Vec<Option<Instant>> = vec![None; steps.len()];
    let mut replace_second_half: Vec<usize> = Vec::new();
    let mut set: JoinSet<(usize, Result<Outcome, ProviderError>)> = JoinSet::new();
    let parallel = options.parallel.max(1);
    // A state that cannot be saved stops everything, but only after what is
    // in flight has finished: dropping running calls would lose their result.
    let mut fatal: Option<StateError> = None;
    let fail = |report: &mut Report, step: &Step, error: String| {
        observer.event(Event::Failed { name: step.name.clone(), op: step.op, error: error.clone() });
        report.failures.push(Failure { name: step.name.clone(), op: step.op, error });
    };

    loop {
        let stopping = !report.failures.is_empty() || fatal.is_some() || options.cancel.load(Ordering::SeqCst);
        if !stopping {
            // Second halves of replaces go first: their deletes are done.
            let mut ready: Vec<(usize, bool)> = replace_second_half.drain(..).map(|i| (i, true)).collect();
            for i in 0..steps.len() {
                if !started[i] && waits[i].iter().all(|j| finished[*j]) {
                    ready.push((i, false));
                }
            }
            let mut batch = Vec::new();
            for (i, second_half) in ready {
                if set.len() + batch.len() >= parallel || fatal.is_some() {
                    if second_half {
                        replace_second_half.push(i);
                    }
                    continue;
                }
                started[i] = true;
                let step = steps[i];
                if !second_half {
                    start_times[i] = Some(Instant::now());
                    observer.event(Event::Started { name: step.name.clone(), op: step.op });
                }
                // The first half of a replace deletes the old resource with
                // the provider of the type it had.
                let type_ = match (step.op, second_half, &step.replaced_type) {
                    (Op::Replace, false, Some(old)) => old,
                    _ => &step.type_,
                };
                let Some(provider) = registry.get(type_).cloned() else {
                    fail(&mut report, step, format!("unknown resource type {type_}"));
                    continue;
                };
                let task = match prepare(step, second_half, stack, state, registry, provider.as_ref()) {
                    Ok(t) => t,
                    Err(e) => {
                        fail(&mut report, step, e);
                        continue;
                    }
                };
                batch.push((i, task, provider));
            }
            // Record the intent of every call about to start, with one
            // save, so a crash during any of them can be reconciled.
            if batch.iter().any(|(_, t, _)| t.pending.is_some()) {
                for (_, t, _) in &batch {
                    if let Some(p) = &t.pending {
                        state.pending.retain(|q| q.resource != p.resource);
                        state.pending.push(p.clone());
                    }
                }
                if let Err(e) = rinfra_state::save(state_path, state) {
                    // Nothing of this batch has started; say so and stop.
                    for (i, _, _) in batch.drain(..) {
                        started[i] = false;
                    }
                    fatal = Some(e);
                }
            }
            for (i, task, provider) in batch.drain(..) {
                let progress = StepProgress { name: steps[i].name.clone(), observer: observer.clone() };
                set.spawn(async move { (i, task.run(provider, progress).await) });
            }
        }
        let Some(first) = set.join_next().await else { break };
        // Take every other task that has finished too, and save once.
        let mut finished_now = vec![first];
        while let Some(more) = set.try_join_next() {
            finished_now.push(more);
        }
        for joined in finished_now {
            let (i, result) = match joined {
                Ok(x) => x,
                Err(e) => {
                    // A panicking provider is a bug; report it like a failure.
                    report.failures.push(Failure {
                        name: "?".into(),
                        op: Op::Same,
                        error: format!("task failed: {e}"),
                    });
                    continue;
                }
            };
            let step = steps[i];
            state.pending.retain(|p| p.resource != step.name);
            match result {
                Ok(Outcome::ReplaceDeleted) => {
                    state.resources.remove(&step.name);
                    if fatal.is_none() && !options.cancel.load(Ordering::SeqCst) {
                        replace_second_half.push(i);
                    }
                }
                Ok(outcome) => {
                    record(state, stack, step, outcome);
                    finished[i] = true;
                    let elapsed = start_times[i].map(|t| t.elapsed()).unwrap_or_default();
                    observer.event(Event::Done { name: step.name.clone(), op: step.op, elapsed });
                    report.done.push((step.name.clone(), step.op, elapsed));
                }
                Err(ProviderError::Partial { id, outputs, source }) => {
                    // The resource exists but is not fully configured: record
                    // what the cloud really holds, so nothing is orphaned and
                    // the next plan shows what is left to do.
                    let desired = stack
                        .and_then(|s| eval_inputs(s, &step.name, &attrs_of(state, registry)).ok())
                        .unwrap_or_default();
                    let provider = registry.get(&step.type_).cloned();
                    let observed = match provider {
                        Some(p) => observe_partial(p.as_ref(), &id, &desired).await,
                        None => None,
                    };
                    let (inputs, outs) = match observed {
                        Some(o) => (o.inputs, attributes(&outputs, &o.outputs)),
                        None => (
                            desired
                                .iter()
                                .filter(|(k, _)| k.as_str() == "name")
                                .map(|(k, v)| (k.clone(), v.clone()))
                                .collect(),
                            outputs,
                        ),
                    };
                    record(state, stack, step, Outcome::Created(Created { id, outputs: outs }, inputs));
                    fail(&mut report, step, source.to_string());
                }
                Err(e) => fail(&mut report, step, e.to_string()),
            }
        }
        if let Err(e) = rinfra_state::save(state_path, state) {
            fatal.get_or_insert(e);
        }
    }
    if let Some(e) = fatal {
        return Err(ApplyError::State(e));
    }
    // A step is done only when it finished: the delete half of a replace
    // alone is not done.
    let not_finished = finished.iter().filter(|f| !**f).count();
    let failed = report.failures.len();
    if failed == 0 {
        report.interrupted = not_finished > 0;
    } else {
        report.skipped = not_finished.saturating_sub(failed);
    }

    if report.ok() && options.update_outputs {
        state.outputs = match stack {
            Some(s) => eval_outputs(s, &attrs_of(state, registry)),
            None => BTreeMap::new(),
        };
        rinfra_state::save(state_path, state)?;
    }
    Ok(report)
}

/// The attributes of every resource in the state: its inputs with schema
/// defaults filled in, overlaid with its outputs.
pub fn attrs_of(state: &StateFile, registry: &Registry) -> BTreeMap<String, Props> {
    state
        .resources
        .iter()
        .map(|(k, r)| {
            let inputs = registry.get(&r.type_).map(|p| p.normalize(&r.inputs)).unwrap_or_else(|| r.inputs.clone());
            (k.clone(), attributes(&inputs, &r.outputs))
        })
        .collect()
}

/// Everything a task needs, owned, so it can run on its own.
struct Task {
    op: Op,
    second_half: bool,
    id: Option<String>,
    desired: Props,
    current: Props,
    changed: BTreeSet<String>,
    pending: Option<PendingOperation>,
}

fn prepare(
    step: &Step,
    second_half: bool,
    stack: Option<&Stack>,
    state: &StateFile,
    registry: &Registry,
    provider: &dyn Provider,
) -> Result<Task, String> {
    let recorded = state.resources.get(&step.name);
    let current = step.current.clone().or_else(|| recorded.map(|r| r.inputs.clone())).unwrap_or_default();
    let mut desired = Props::new();
    let mut changed = BTreeSet::new();
    if let (Some(stack), Op::Create | Op::Update | Op::Replace) = (stack, step.op) {
        // Evaluate now: dependencies have finished, so values that were
        // unknown at plan time are known.
        desired = eval_inputs(stack, &step.name, &attrs_of(state, registry)).map_err(|e| e.to_string())?;
        // Every dependency has finished, so nothing may still be unknown;
        // a placeholder must never reach the cloud.
        if let Some((k, _)) = desired.iter().find(|(_, v)| rinfra_resources::schema::is_unknown(v)) {
            return Err(format!("the value of `{k}` is still unknown after its dependencies finished"));
        }
        if step.op == Op::Update {
            let ignore = stack.resources.get(&step.name).map(|d| d.options.ignore_changes.clone()).unwrap_or_default();
            for p in &ignore {
                match current.get(p) {
                    Some(v) => desired.insert(p.clone(), v.clone()),
                    None => desired.remove(p),
                };
            }
            let rec = recorded.map(|r| r.inputs.clone()).unwrap_or_default();
            changed = diff(provider, &desired, &current, &rec, &ignore).into_iter().map(|c| c.name).collect();
        }
    }
    let kind = match (step.op, second_half) {
        (Op::Create, _) | (Op::Replace, true) => "create",
        (Op::Update, _) => "update",
        (Op::Forget, _) | (Op::Same, _) => "",
        _ => "delete",
    };
    let id = match kind {
        "create" => provider.id_from_inputs(&desired),
        _ => step.id.clone(),
    };
    let pending = (!kind.is_empty()).then(|| PendingOperation {
        kind: kind.to_string(),
        resource: step.name.clone(),
        type_: step.type_.clone(),
        id: id.clone().unwrap_or_default(),
        inputs: desired.clone(),
        dependencies: step.dependencies.clone(),
    });
    Ok(Task { op: step.op, second_half, id: step.id.clone(), desired, current, changed, pending })
}

impl Task {
    async fn run(self, provider: Arc<dyn Provider>, progress: StepProgress) -> Result<Outcome, ProviderError> {
        let id = self.id.clone().unwrap_or_default();
        match (self.op, self.second_half) {
            (Op::Create, _) | (Op::Replace, true) => {
                let c = provider.create(&self.desired, &progress).await?;
                Ok(Outcome::Created(c, self.desired))
            }
            (Op::Replace, false) => {
                provider.delete(&id, &self.current, &progress).await?;
                Ok(Outcome::ReplaceDeleted)
            }
            (Op::Update, _) => {
                if self.changed.is_empty() {
                    // The unknowns resolved to the current values.
                    return Ok(Outcome::Updated(Props::new(), self.desired));
                }
                let outputs = provider.update(&id, &self.current, &self.desired, &self.changed, &progress).await?;
                Ok(Outcome::Updated(outputs, self.desired))
            }
            (Op::Delete, _) => {
                provider.delete(&id, &self.current, &progress).await?;
                Ok(Outcome::Deleted)
            }
            (Op::Forget, _) | (Op::Same, _) => Ok(Outcome::Forgotten),
        }
    }
}

fn record(state: &mut StateFile, stack: Option<&Stack>, step: &Step, outcome: Outcome) {
    let options = stack.and_then(|s| s.resources.get(&step.name)).map(|d| d.options.clone()).unwrap_or_default();
    match outcome {
        Outcome::Created(c, inputs) => {
            let urn = StateFile::urn(&state.stack, &step.type_, &step.name);
            state.resources.insert(
                step.name.clone(),
                ResourceState {
                    urn,
                    type_: step.type_.clone(),
                    id: c.id,
                    inputs,
                    outputs: c.outputs,
                    dependencies: step.dependencies.clone(),
                    protect: options.protect,
                    retain_on_delete: options.retain_on_delete,
                },
            );
        }
        Outcome::Updated(outputs, inputs) => {
            if let Some(r) = state.resources.get_mut(&step.name) {
                r.inputs = inputs;
                r.outputs.extend(outputs);
                r.dependencies = step.dependencies.clone();
                r.protect = options.protect;
                r.retain_on_delete = options.retain_on_delete;
            }
        }
        Outcome::Deleted | Outcome::Forgotten | Outcome::ReplaceDeleted => {
            state.resources.remove(&step.name);
        }
    }
}
