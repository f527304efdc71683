//! A session: one command's checked stack, its state's location and the
//! providers, with the operations commands are made of. Commands in the
//! command line are thin sequences of these calls and print their results.

use crate::apply::{self, ApplyOptions, LocalStore, Observer, Report};
use crate::error::Error;
use crate::ops::{self, Recovered};
use crate::plan::{self, Observations, Plan, PlanMode};
use crate::render::Secrets;
use crate::stack::Stack;
use rinfra_provider::Registry;
use rinfra_state::{StateFile, StateLock};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

/// A checked stack, where its state lives, and the providers.
pub struct Session {
    /// The checked stack.
    pub stack: Stack,
    /// The state file.
    pub state_path: PathBuf,
    /// The providers.
    pub registry: Registry,
    /// How many operations may run at once.
    pub parallel: usize,
    /// Set by an interrupt: no new work starts.
    pub cancel: Arc<AtomicBool>,
    /// Time spent per phase, for `--stats`.
    pub phases: Vec<(&'static str, Duration)>,
}

/// What to do before planning.
#[derive(Debug, Clone)]
pub struct PlanRequest {
    /// The kind of plan.
    pub mode: PlanMode,
    /// Read the cloud first.
    pub refresh: bool,
    /// Write what reconciling and importing found (never for a preview).
    pub persist: bool,
    /// Limit the plan to these resources and what they need.
    pub targets: Vec<String>,
}

/// A plan and what was found on the way to it.
#[derive(Debug)]
pub struct Prepared {
    /// The plan.
    pub plan: Plan,
    /// Interrupted operations of an earlier run that were settled.
    pub recovered: Vec<Recovered>,
    /// Resources imported through `options.import`.
    pub imported: Vec<(String, String)>,
    /// Resources found deleted outside rinfra and dropped (destroy only).
    pub gone: Vec<String>,
    /// Protected resources whose drift stays (remediation only).
    pub skipped_protected: Vec<String>,
}

impl Session {
    /// Loads and checks the stack at `path`; nothing touches the cloud.
    pub fn open(
        path: &Path,
        overrides: &BTreeMap<String, String>,
        registry: Registry,
        state_path: Option<PathBuf>,
    ) -> Result<Session, Error> {
        let t = Instant::now();
        let stack = ops::load_stack(path, overrides, &registry)?;
        let state_path = state_path.unwrap_or_else(|| ops::default_state_path(&stack.name));
        Ok(Session {
            stack,
            state_path,
            registry,
            parallel: 16,
            cancel: Arc::new(AtomicBool::new(false)),
            phases: vec![("parse", t.elapsed())],
        })
    }

    /// The secrets of the stack, for masking what is shown.
    pub fn secrets(&self) -> Secrets {
        Secrets::new(self.stack.secrets.clone())
    }

    /// Takes the state's lock for `command`.
    pub fn lock(&self, command: &str) -> Result<StateLock, Error> {
        Ok(StateLock::acquire(&self.state_path, command)?)
    }

    /// The state, or a new empty one.
    pub fn load_state(&self) -> Result<StateFile, Error> {
        Ok(rinfra_state::load_or_new(&self.state_path, &self.stack.name)?)
    }

    /// The state; an error when the stack was never deployed.
    pub fn existing_state(&self) -> Result<StateFile, Error> {
        rinfra_state::load(&self.state_path, &self.stack.name)?.ok_or_else(|| Error::NoState(self.state_path.clone()))
    }

    /// Saves the state.
    pub fn save(&self, state: &mut StateFile) -> Result<(), Error> {
        Ok(rinfra_state::save(&self.state_path, state)?)
    }

    /// Reads every resource of the state from the cloud.
    pub async fn refresh(&mut self, state: &StateFile) -> Result<Observations, Error> {
        let t = Instant::now();
        let r = ops::refresh(state, Some(&self.stack), &self.registry).await;
        self.phases.push(("refresh", t.elapsed()));
        Ok(r?)
    }

    /// Settles the operations an interrupted run left pending, by reading
    /// the cloud, and saves the result when `persist`.
    pub async fn reconcile(&self, state: &mut StateFile, persist: bool) -> Result<Vec<Recovered>, Error> {
        if state.pending.is_empty() {
            return Ok(Vec::new());
        }
        let recovered = ops::reconcile_pending(state, Some(&self.stack), &self.registry).await?;
        if persist {
            self.save(state)?;
        }
        Ok(recovered)
    }

    /// Reconciles, imports, refreshes and plans, as `req` says.
    pub async fn prepare(&mut self, state: &mut StateFile, req: &PlanRequest) -> Result<Prepared, Error> {
        let recovered = self.reconcile(state, req.persist).await?;
        let mut imported = Vec::new();
        if matches!(req.mode, PlanMode::Normal | PlanMode::Remediate) {
            for name in ops::import_declared(state, &self.stack, &self.registry).await? {
                let id = state.resources.get(&name).map(|r| r.id.clone()).unwrap_or_default();
                imported.push((name, id));
            }
            if req.persist && !imported.is_empty() {
                self.save(state)?;
            }
        }
        let observed = if req.refresh { Some(self.refresh(state).await?) } else { None };
        let mut gone = Vec::new();
        if let (PlanMode::Destroy, Some(o)) = (req.mode, &observed) {
            // A destroy has nothing to do for what is already gone.
            gone = ops::drop_gone(state, o);
        }
        let t = Instant::now();
        let planned = plan::plan_mode(&self.stack, state, &self.registry, observed.as_ref(), req.mode)?;
        let mut p = planned.plan;
        if !req.targets.is_empty() {
            plan::restrict(&mut p, &req.targets, Some(&self.stack), state, req.mode == PlanMode::Destroy)?;
        }
        self.phases.push(("plan", t.elapsed()));
        Ok(Prepared { plan: p, recovered, imported, gone, skipped_protected: planned.skipped_protected })
    }

    /// Applies `plan` to the cloud, saving the state after every step. A
    /// destroy passes no stack; a targeted run keeps the outputs as they are.
    pub async fn apply(
        &mut self,
        plan: &Plan,
        state: &mut StateFile,
        mode: PlanMode,
        targeted: bool,
        observer: Arc<dyn Observer>,
    ) -> Result<Report, Error> {
        let opts = ApplyOptions { parallel: self.parallel, cancel: self.cancel.clone(), update_outputs: !targeted };
        let store = LocalStore { path: self.state_path.clone() };
        let stack = (mode != PlanMode::Destroy).then_some(&self.stack);
        let t = Instant::now();
        let report = apply::apply(plan, stack, state, &store, &self.registry, &opts, observer).await;
        self.phases.push(("apply", t.elapsed()));
        let report = report?;
        if report.ok() && mode != PlanMode::Destroy {
            self.sync_metadata(state)?;
        }
        Ok(report)
    }

    /// Writes the options and dependencies the stack now declares into the
    /// state, and saves when anything changed: options such as `protect`
    /// change nothing in the cloud, but the state must follow them.
    /// Returns whether it wrote.
    pub fn sync_metadata(&self, state: &mut StateFile) -> Result<bool, Error> {
        if plan::sync_metadata(&self.stack, state) {
            self.save(state)?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Adopts the existing cloud resource `id` as `name`, and saves.
    pub async fn import(&self, state: &mut StateFile, name: &str, id: &str) -> Result<String, Error> {
        ops::import(state, &self.stack, &self.registry, name, id).await?;
        self.save(state)?;
        Ok(state.resources.get(name).map(|r| r.type_.clone()).unwrap_or_default())
    }
}
