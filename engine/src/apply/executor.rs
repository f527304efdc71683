//! The executor: which step may start, and running provider calls.
//!
//! Independent steps run at the same time, up to `parallel`. A step starts
//! when every step it depends on has finished: creates and updates after
//! their dependencies, deletes after their dependents. A replace has two
//! halves: deleting first, the create waits for the delete; creating
//! first, the delete of the old resource waits until every dependent has
//! been pointed at the new one. After a failure or an interrupt nothing new
//! starts, and what is in flight finishes, so its result is recorded.

use super::journal::{Journal, Store};
use crate::conventions::{attributes, attrs_of};
use crate::plan::{Op, Plan, PlanError, ReplaceOrder, Step, diff, eval_inputs};
use crate::stack::{Resolved, Stack};
use rinfra_provider::{Created, Observed, Ownership, Progress, Props, Provider, ProviderError, ReadRequest, Registry};
use rinfra_state::{PendingKind, PendingOperation, StateError, StateFile};
use std::collections::{BTreeMap, BTreeSet};
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
        /// Why it failed, rendered.
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

/// Why one step failed.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// The provider's call failed.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// Its inputs could not be evaluated.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The provider's task panicked: a bug in rinfra.
    #[error("the provider's task failed: {0}")]
    Panicked(String),
    /// The call outlasted the resource's `customTimeouts`. Whether it took
    /// effect is not known, so its pending operation stays in the state
    /// for the next run to settle by reading the cloud.
    #[error("timed out after {}s (customTimeouts); the next run reads the cloud to see what happened", .0.as_secs_f64())]
    TimedOut(Duration),
}

/// A step that failed.
#[derive(Debug)]
pub struct Failure {
    /// The resource.
    pub name: String,
    /// What was tried.
    pub op: Op,
    /// Why it failed.
    pub error: StepError,
}

/// What an apply did.
#[derive(Debug, Default)]
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

    /// How many finished steps did an operation that `matches` accepts.
    pub fn count(&self, matches: impl Fn(Op) -> bool) -> usize {
        self.done.iter().filter(|(_, o, _)| matches(*o)).count()
    }
}

/// Why an apply stopped early without a per-resource failure.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The state could not be saved; the run stops at once.
    #[error(transparent)]
    State(#[from] StateError),
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

/// Which half of a step a task runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Half {
    /// The only part of most steps; the first half of a replace.
    First,
    /// The second half of a replace.
    Second,
}

/// What a finished task did.
enum Outcome {
    Created(Created, Props),
    Updated(Props, Props),
    /// An update failed; what the cloud holds now, as read back after it.
    UpdateFailed {
        observed: Option<Option<Observed>>,
        desired: Props,
        error: ProviderError,
    },
    Deleted,
    /// The old half of a create-before-delete replace, with this id, was
    /// deleted.
    OldHalfDeleted(String),
    /// The delete half of a delete-before-create replace.
    ReplaceDeleted,
    Forgotten,
}

/// Reads one resource where `desired` says it lives (its region); `None`
/// when the read itself failed. What the cloud never reports back (the
/// region) is taken from `desired`, so the record keeps it.
async fn read_back(provider: &dyn Provider, id: &str, desired: &Props) -> Option<Option<Observed>> {
    let managed: BTreeSet<String> = desired.keys().cloned().collect();
    let found = provider.read(&[ReadRequest::new(id, managed).with_recorded(desired)]).await.pop()?.ok()?;
    Some(found.map(|mut o| {
        o.inputs = crate::conventions::current_inputs(provider, Some(&o), desired);
        o
    }))
}

/// Which steps each step waits for, by index into `steps`.
fn waits_of(steps: &[&Step], state: &StateFile) -> Vec<BTreeSet<usize>> {
    // Only steps on live resources are found by name; the deletes of old
    // halves of earlier replaces stand apart.
    let index: BTreeMap<&str, usize> =
        steps.iter().enumerate().filter(|(_, s)| !s.replaced).map(|(i, s)| (s.name.as_str(), i)).collect();
    let dependents_in_state = |name: &str| -> Vec<usize> {
        state
            .resources
            .iter()
            .filter(|(_, rec)| rec.dependencies.iter().any(|d| d == name))
            .filter_map(|(other, _)| index.get(other.as_str()).copied())
            .collect()
    };
    let mut waits: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); steps.len()];
    for (i, (s, w)) in steps.iter().zip(waits.iter_mut()).enumerate() {
        match s.op {
            _ if s.replaced => {}
            Op::Delete | Op::Forget => w.extend(dependents_in_state(&s.name).into_iter().filter(|j| *j != i)),
            _ => {
                w.extend(s.dependencies.iter().filter_map(|d| index.get(d.as_str()).copied()));
                if matches!(s.op, Op::Replace(ReplaceOrder::DeleteBeforeCreate(_))) {
                    // A removed resource that depended on this one must be
                    // deleted before this one is.
                    w.extend(
                        dependents_in_state(&s.name)
                            .into_iter()
                            .filter(|j| steps.get(*j).is_some_and(|o| matches!(o.op, Op::Delete | Op::Forget))),
                    );
                }
            }
        }
    }
    waits
}

/// Which steps the second half of each step waits for: for a
/// create-before-delete replace, every step whose resource depends on it
/// (in the stack or in the state), so the old resource is deleted only once
/// nothing points at it; nothing for any other step.
fn second_waits_of(steps: &[&Step], state: &StateFile) -> Vec<BTreeSet<usize>> {
    steps
        .iter()
        .enumerate()
        .map(|(i, me)| {
            if me.op != Op::Replace(ReplaceOrder::CreateBeforeDelete) {
                return BTreeSet::new();
            }
            steps
                .iter()
                .enumerate()
                .filter(|(j, s)| {
                    *j != i
                        && !s.replaced
                        && (s.dependencies.contains(&me.name)
                            || state.resources.get(&s.name).is_some_and(|r| r.dependencies.contains(&me.name)))
                })
                .map(|(j, _)| j)
                .collect()
        })
        .collect()
}

/// Applies `plan`. `stack` is `None` for destroy, which only deletes.
/// Function calls that waited on steps are made as those steps finish,
/// and their results kept in `resolved`.
#[allow(clippy::too_many_arguments)]
pub async fn apply(
    plan: &Plan,
    stack: Option<&Stack>,
    resolved: &mut Resolved,
    state: &mut StateFile,
    store: &dyn Store,
    registry: &Registry,
    options: &ApplyOptions,
    observer: Arc<dyn Observer>,
) -> Result<Report, ApplyError> {
    let steps: Vec<&Step> = plan.steps.iter().filter(|s| s.op != Op::Same).collect();
    let waits = waits_of(&steps, state);
    let second_waits = second_waits_of(&steps, state);
    let mut journal = Journal::new(state, store, stack);
    let mut report = Report::default();
    let n = steps.len();
    let mut started = vec![false; n];
    let mut finished = vec![false; n];
    let mut start_times: Vec<Option<Instant>> = vec![None; n];
    // Replaces whose first half is done and whose second half may start.
    let mut second_halves: Vec<usize> = Vec::new();
    let mut tasks: JoinSet<(usize, Half, Result<Outcome, StepError>)> = JoinSet::new();
    let mut running: BTreeMap<tokio::task::Id, usize> = BTreeMap::new();
    let parallel = options.parallel.max(1);
    // A state that cannot be saved stops everything, but only after what is
    // in flight has finished: dropping running calls would lose their result.
    let mut fatal: Option<StateError> = None;
    let fail = |report: &mut Report, step: &Step, error: StepError| {
        observer.event(Event::Failed { name: step.name.clone(), op: step.op, error: error.to_string() });
        report.failures.push(Failure { name: step.name.clone(), op: step.op, error });
    };

    // Whether any function call waits on steps: decided once, not per batch.
    let invoking = stack.filter(|s| s.has_invokes());
    loop {
        let stopping = !report.failures.is_empty() || fatal.is_some() || options.cancel.load(Ordering::SeqCst);
        if !stopping {
            let mut ready: Vec<(usize, Half)> = Vec::new();
            // Second halves first: a create-before-delete's delete waits for
            // every dependent to have moved to the new resource.
            second_halves.retain(|&i| {
                let free =
                    second_waits.get(i).is_none_or(|w| w.iter().all(|j| finished.get(*j).copied().unwrap_or(true)));
                if free {
                    ready.push((i, Half::Second));
                }
                !free
            });
            for (i, w) in waits.iter().enumerate() {
                if !started.get(i).copied().unwrap_or(true)
                    && w.iter().all(|j| finished.get(*j).copied().unwrap_or(true))
                {
                    ready.push((i, Half::First));
                }
            }
            // Provider functions whose arguments waited on finished steps
            // can be called now.
            let mut invoke_error = None;
            if let (Some(stack), false) = (invoking, ready.is_empty()) {
                let invoked =
                    crate::resolve::resolve_invokes(stack, resolved, &attrs_of(journal.state, registry), registry)
                        .await;
                invoke_error = invoked.failed.iter().chain(&invoked.deferred).next().map(ToString::to_string);
            }
            let mut batch = Vec::new();
            for (i, half) in ready {
                let Some(step) = steps.get(i).copied() else { continue };
                if tasks.len() + batch.len() >= parallel {
                    if half == Half::Second {
                        second_halves.push(i);
                    }
                    continue;
                }
                if half == Half::First {
                    if let Some(s) = started.get_mut(i) {
                        *s = true;
                    }
                    if let Some(t) = start_times.get_mut(i) {
                        *t = Some(Instant::now());
                    }
                    observer.event(Event::Started { name: step.name.clone(), op: step.op });
                }
                match prepare(step, half, stack, resolved, journal.state, registry) {
                    Ok(t) => batch.push((i, half, t)),
                    // A value still unknown because a function call failed:
                    // say which call, not just that the value is unknown.
                    Err(StepError::Plan(PlanError::Eval { .. })) if invoke_error.is_some() => {
                        let message = invoke_error.clone().unwrap_or_default();
                        let e = PlanError::Invoke { function: "fn::invoke".into(), message };
                        fail(&mut report, step, e.into());
                    }
                    Err(e) => fail(&mut report, step, e),
                }
            }
            // Record the intent of every call about to start, with one
            // save, so a crash during any of them can be reconciled.
            if let Err(e) = journal.begin(batch.iter().filter_map(|(_, _, t)| t.pending.clone())) {
                // Nothing of this batch has started; say so and stop.
                for (i, half, _) in batch.drain(..) {
                    if half == Half::First {
                        if let Some(s) = started.get_mut(i) {
                            *s = false;
                        }
                    }
                }
                fatal = Some(e);
            }
            for (i, half, task) in batch.drain(..) {
                let name = steps.get(i).map(|s| s.name.clone()).unwrap_or_default();
                let progress = StepProgress { name, observer: observer.clone() };
                let handle = tasks.spawn(async move { (i, half, task.run(progress).await) });
                running.insert(handle.id(), i);
            }
        }
        let Some(first) = tasks.join_next_with_id().await else { break };
        // Take every other task that has finished too, and save once.
        let mut finished_now = vec![first];
        while let Some(more) = tasks.try_join_next_with_id() {
            finished_now.push(more);
        }
        for joined in finished_now {
            let (i, half, result) = match joined {
                Ok((id, x)) => {
                    running.remove(&id);
                    x
                }
                Err(e) => {
                    // A panicking provider is a bug; report it like a
                    // failure of the resource it was working on.
                    let Some(i) = running.remove(&e.id()) else { continue };
                    (i, Half::First, Err(StepError::Panicked(e.to_string())))
                }
            };
            let Some(step) = steps.get(i).copied() else { continue };
            if !matches!(result, Err(StepError::TimedOut(_))) {
                journal.settle(&step.name);
            }
            let elapsed = start_times.get(i).copied().flatten().map(|t| t.elapsed()).unwrap_or_default();
            let done = |report: &mut Report| {
                observer.event(Event::Done { name: step.name.clone(), op: step.op, elapsed });
                report.done.push((step.name.clone(), step.op, elapsed));
            };
            match result {
                Ok(Outcome::ReplaceDeleted) => {
                    journal.record_deleted(step);
                    second_halves.push(i);
                }
                Ok(Outcome::Created(c, inputs)) => {
                    journal.record_created(step, c, inputs);
                    if let Some(f) = finished.get_mut(i) {
                        *f = true;
                    }
                    if step.op == Op::Replace(ReplaceOrder::CreateBeforeDelete) && half == Half::First {
                        second_halves.push(i);
                    } else {
                        done(&mut report);
                    }
                }
                Ok(Outcome::Updated(outputs, inputs)) => {
                    journal.record_updated(step, outputs, inputs);
                    if let Some(f) = finished.get_mut(i) {
                        *f = true;
                    }
                    done(&mut report);
                }
                Ok(Outcome::UpdateFailed { observed, desired, error }) => {
                    journal.record_update_failed(step, registry, observed, &desired);
                    fail(&mut report, step, error.into());
                }
                Ok(Outcome::Deleted | Outcome::Forgotten) => {
                    journal.record_deleted(step);
                    if let Some(f) = finished.get_mut(i) {
                        *f = true;
                    }
                    done(&mut report);
                }
                Ok(Outcome::OldHalfDeleted(id)) => {
                    journal.record_old_half_deleted(&step.name, &id);
                    if let Some(f) = finished.get_mut(i) {
                        *f = true;
                    }
                    done(&mut report);
                }
                Err(StepError::Provider(ProviderError::Partial { id, outputs, source })) => {
                    // The resource exists but is not fully configured: record
                    // what the cloud really holds, so nothing is orphaned and
                    // the next plan shows what is left to do.
                    let mut desired = stack
                        .and_then(|s| {
                            eval_inputs(s, resolved, &step.name, &attrs_of(journal.state, registry), registry).ok()
                        })
                        .unwrap_or_default();
                    if let Some(p) = registry.get(&step.type_) {
                        crate::conventions::keep_auto_name(p.as_ref(), &mut desired, step.inputs.as_ref(), None);
                    }
                    let observed = match registry.get(&step.type_) {
                        Some(p) => read_back(p.as_ref(), &id, &desired).await.flatten(),
                        None => None,
                    };
                    let (inputs, outs) = match observed {
                        Some(o) => (o.inputs, attributes(&outputs, &o.outputs)),
                        // Unread, it has at least its name and where it is.
                        None => {
                            let never_read = |k: &str| {
                                registry.get(&step.type_).and_then(|p| p.schema().property(k)).is_some_and(|p| {
                                    p.read == rinfra_provider::schema::Read::Never
                                        && p.change == rinfra_provider::schema::Change::Replace
                                })
                            };
                            let kept = desired.into_iter().filter(|(k, _)| k.as_str() == "name" || never_read(k));
                            (kept.collect(), outputs)
                        }
                    };
                    journal.record_created(step, Created { id, outputs: outs }, inputs);
                    fail(&mut report, step, StepError::Provider(*source));
                }
                Err(e) => fail(&mut report, step, e),
            }
        }
        if let Err(e) = journal.save() {
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
        report.interrupted = not_finished > 0 || !second_halves.is_empty();
    } else {
        report.skipped = not_finished.saturating_sub(failed);
    }

    if report.ok() && options.update_outputs {
        if let Some(stack) = invoking {
            // Outputs may call functions on what was just made.
            let invoked =
                crate::resolve::resolve_invokes(stack, resolved, &attrs_of(journal.state, registry), registry).await;
            for e in invoked.failed.iter().chain(&invoked.deferred) {
                tracing::warn!(error = %e, "a function call for the outputs failed; the output is left empty");
            }
        }
        journal.record_outputs(registry, resolved);
        journal.save()?;
    }
    Ok(report)
}

/// Everything a task needs, owned, so it can run on its own.
struct Task {
    kind: TaskKind,
    provider: Arc<dyn Provider>,
    id: String,
    desired: Props,
    current: Props,
    changed: BTreeSet<String>,
    owner: Ownership,
    pending: Option<PendingOperation>,
    /// The resource's `customTimeouts` for this kind of call.
    timeout: Option<Duration>,
}

/// The provider call a task makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TaskKind {
    Create,
    Update,
    Delete,
    /// The delete half of a delete-before-create replace.
    DeleteFirst,
    /// A delete of the old half of a create-before-delete replace, held in
    /// the state's `replaced` list.
    DeleteOldHalf,
    Forget,
}

fn prepare(
    step: &Step,
    half: Half,
    stack: Option<&Stack>,
    resolved: &Resolved,
    state: &StateFile,
    registry: &Registry,
) -> Result<Task, StepError> {
    let kind = match (step.op, half) {
        (Op::Create, _) => TaskKind::Create,
        (Op::Update, _) => TaskKind::Update,
        (Op::Replace(ReplaceOrder::DeleteBeforeCreate(_)), Half::First) => TaskKind::DeleteFirst,
        (Op::Replace(ReplaceOrder::DeleteBeforeCreate(_)), Half::Second) => TaskKind::Create,
        (Op::Replace(ReplaceOrder::CreateBeforeDelete), Half::First) => TaskKind::Create,
        (Op::Replace(ReplaceOrder::CreateBeforeDelete), Half::Second) => TaskKind::DeleteOldHalf,
        (Op::Delete, _) if step.replaced => TaskKind::DeleteOldHalf,
        (Op::Delete, _) => TaskKind::Delete,
        (Op::Forget | Op::Same, _) => TaskKind::Forget,
    };
    // The delete half of a replace that changes the type uses the provider
    // of the old type, and the pending operation names that type, so that a
    // crash is reconciled through the provider that was really called.
    let type_ = match (kind, &step.replaced_type) {
        (TaskKind::DeleteFirst, Some(old)) => old.clone(),
        _ => step.type_.clone(),
    };
    let provider = registry
        .get(&type_)
        .cloned()
        .ok_or_else(|| PlanError::UnknownType { resource: step.name.clone(), type_: type_.clone() })?;
    let recorded = state.resources.get(&step.name);
    let old_half = state.replaced.iter().rev().find(|r| r.name == step.name).map(|r| &r.resource);
    let (id, current) = match (kind, half) {
        // The old resource of a replace made in this run is in the
        // `replaced` list by now.
        (TaskKind::DeleteOldHalf, Half::Second) => {
            let old = old_half.ok_or_else(|| PlanError::Eval {
                resource: step.name.clone(),
                message: "the replaced resource is not in the state".into(),
            })?;
            (old.id.clone(), old.inputs.clone())
        }
        _ => (
            step.id.clone().unwrap_or_default(),
            step.current.clone().or_else(|| recorded.map(|r| r.inputs.clone())).unwrap_or_default(),
        ),
    };
    let mut desired = Props::new();
    let mut changed = BTreeSet::new();
    if let (Some(stack), TaskKind::Create | TaskKind::Update) = (stack, kind) {
        // Evaluate now: dependencies have finished, so values that were
        // unknown at plan time are known.
        desired = eval_inputs(stack, resolved, &step.name, &attrs_of(state, registry), registry)?;
        crate::conventions::keep_auto_name(
            provider.as_ref(),
            &mut desired,
            step.inputs.as_ref(),
            recorded.map(|r| &r.inputs),
        );
        // Every dependency has finished, so nothing may still be unknown;
        // a placeholder must never reach the cloud.
        if let Some((k, _)) = desired.iter().find(|(_, v)| rinfra_provider::schema::is_unknown(v)) {
            return Err(PlanError::Eval {
                resource: step.name.clone(),
                message: format!("the value of `{k}` is still unknown after its dependencies finished"),
            }
            .into());
        }
        if kind == TaskKind::Update {
            let ignore = stack.resources.get(&step.name).map(|d| d.options.ignore_changes.clone()).unwrap_or_default();
            for p in &ignore {
                match current.get(p) {
                    Some(v) => desired.insert(p.clone(), v.clone()),
                    None => desired.remove(p),
                };
            }
            let rec = recorded
                .map(|r| crate::conventions::recorded_with_defaults(provider.as_ref(), registry, &r.inputs))
                .unwrap_or_default();
            changed = diff(provider.as_ref(), &desired, &current, &rec, &ignore).into_iter().map(|c| c.name).collect();
        }
    }
    let pending_kind = match kind {
        TaskKind::Create => Some(PendingKind::Create),
        TaskKind::Update => Some(PendingKind::Update),
        TaskKind::Delete | TaskKind::DeleteFirst => Some(PendingKind::Delete),
        TaskKind::DeleteOldHalf => Some(PendingKind::DeleteReplaced),
        TaskKind::Forget => None,
    };
    let pending_id = match kind {
        TaskKind::Create => provider.id_from_inputs(&desired).unwrap_or_default(),
        _ => id.clone(),
    };
    let pending = pending_kind.map(|kind| PendingOperation {
        kind,
        resource: step.name.clone(),
        type_: type_.clone(),
        id: pending_id,
        inputs: if kind == PendingKind::Create || kind == PendingKind::Update {
            desired.clone()
        } else {
            current.clone()
        },
        dependencies: step.dependencies.clone(),
    });
    let timeouts = stack.and_then(|s| s.resources.get(&step.name)).map(|d| d.options.custom_timeouts);
    let timeout = timeouts.and_then(|t| match kind {
        TaskKind::Create => t.create,
        TaskKind::Update => t.update,
        TaskKind::Delete | TaskKind::DeleteFirst | TaskKind::DeleteOldHalf => t.delete,
        TaskKind::Forget => None,
    });
    Ok(Task {
        timeout,
        kind,
        provider,
        id,
        desired,
        current,
        changed,
        owner: Ownership::new(state.id().owner(), step.name.clone()),
        pending,
    })
}

impl Task {
    async fn run(self, progress: StepProgress) -> Result<Outcome, StepError> {
        match self.timeout {
            Some(limit) => {
                tokio::time::timeout(limit, self.call(progress)).await.unwrap_or(Err(StepError::TimedOut(limit)))
            }
            None => self.call(progress).await,
        }
    }

    async fn call(self, progress: StepProgress) -> Result<Outcome, StepError> {
        let p = self.provider.as_ref();
        tracing::debug!(resource = %progress.name, kind = ?self.kind, id = %self.id, "step starts");
        match self.kind {
            TaskKind::Create => {
                let c = p.create(&self.desired, &self.owner, &progress).await?;
                Ok(Outcome::Created(c, self.desired))
            }
            TaskKind::DeleteFirst => {
                p.delete(&self.id, &self.current, &progress).await?;
                Ok(Outcome::ReplaceDeleted)
            }
            TaskKind::Update => {
                if self.changed.is_empty() {
                    // The unknowns resolved to the current values.
                    return Ok(Outcome::Updated(Props::new(), self.desired));
                }
                match p.update(&self.id, &self.current, &self.desired, &self.changed, &progress).await {
                    Ok(outputs) => Ok(Outcome::Updated(outputs, self.desired)),
                    Err(error) => {
                        // Some of the calls may have been made: read back
                        // what the cloud holds, so the state does not lie.
                        let observed = read_back(p, &self.id, &self.desired).await;
                        Ok(Outcome::UpdateFailed { observed, desired: self.desired, error })
                    }
                }
            }
            TaskKind::Delete => {
                p.delete(&self.id, &self.current, &progress).await?;
                Ok(Outcome::Deleted)
            }
            TaskKind::DeleteOldHalf => {
                p.delete(&self.id, &self.current, &progress).await?;
                Ok(Outcome::OldHalfDeleted(self.id))
            }
            TaskKind::Forget => Ok(Outcome::Forgotten),
        }
    }
}
