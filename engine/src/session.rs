//! A session: one command's checked stack, its state's location and the
//! providers, with the operations commands are made of. Commands in the
//! command line are thin sequences of these calls and print their results.

use crate::apply::{self, ApplyOptions, LocalStore, Observer, Report};
use crate::config::{self, StackConfig, Stored};
use crate::diag::{Diagnostic, Diagnostics};
use crate::error::{Error, SecretsError};
use crate::ops::{self, LoadError, Recovered};
use crate::plan::{self, Observations, Plan, PlanMode};
use crate::project::{Project, Target};
use crate::render::Secrets;
use crate::stack::{ConfigInputs, Origin, Stack, Supplied};
use rinfra_provider::Registry;
use rinfra_state::crypt::{Crypter, Sealer};
use rinfra_state::{StackId, StateFile, StateLock};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

/// A checked stack, where its state lives, and the providers.
pub struct Session {
    /// The checked stack.
    pub stack: Stack,
    /// Which stack this is.
    pub id: StackId,
    /// The project, unless the program is a single file.
    pub project: Option<Project>,
    /// The state file.
    pub state_path: PathBuf,
    /// Config keys that `--config` set for this run only.
    pub overridden: Vec<String>,
    /// A state found at its pre-project path and moved: from, to.
    pub migrated: Option<(PathBuf, PathBuf)>,
    /// The stack's config file, for a stack of a project.
    config: Option<StackConfig>,
    /// The stack's crypter, once one was needed.
    crypter: Option<Arc<Crypter>>,
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
    /// Loads and checks `target` with its config; nothing touches the
    /// cloud. `registry` builds the providers from the provider settings
    /// the stack's config holds (`aws:region`, `aws:profile`).
    pub fn open(
        target: &Target,
        overrides: &BTreeMap<String, String>,
        state_path: Option<PathBuf>,
        registry: impl FnOnce(&BTreeMap<String, String>) -> Registry,
    ) -> Result<Session, Error> {
        let t = Instant::now();
        match target {
            Target::File(path) => {
                let registry = registry(&BTreeMap::new());
                let stack = ops::load_stack(path, overrides, &registry)?;
                let id = StackId::single(&stack.name);
                let state_path = state_path.unwrap_or_else(|| ops::default_state_path(&stack.name));
                Ok(Session::new(stack, id, None, state_path, registry, overrides, t))
            }
            Target::Stack { project, stack: name } => {
                project.existing(name)?;
                let id = project.id(name);
                let cfg_path = project.config_path(name);
                let cfg = StackConfig::read(&cfg_path)
                    .map_err(|(source_text, p)| invalid_config(&cfg_path, source_text, p.0))?;
                let mut crypter = None;
                let (inputs, providers) = config_inputs(&cfg, project, overrides, &mut crypter)?;
                let registry = registry(&providers);
                let bytes = std::fs::read(&project.file)
                    .map_err(|source| LoadError::Io { path: project.file.clone(), source })?;
                let mut stack = crate::stack::load_with(&bytes, &inputs, &registry).map_err(|f| {
                    if f.program.0.is_empty() {
                        invalid_config(&cfg_path, cfg.source_text.clone(), f.config.0)
                    } else {
                        Error::Load(LoadError::Invalid {
                            path: project.file.clone(),
                            source_text: String::from_utf8_lossy(&bytes).into_owned(),
                            diagnostics: f.program,
                        })
                    }
                })?;
                stack.name = id.owner();
                let (state_path, migrated) = match state_path {
                    Some(p) => (p, None),
                    None => {
                        let to = project.state_path(name);
                        (to.clone(), project.adopt_legacy(name)?)
                    }
                };
                let mut s = Session::new(stack, id, Some(project.clone()), state_path, registry, overrides, t);
                s.migrated = migrated;
                s.crypter = crypter;
                s.config = Some(cfg);
                if !s.stack.secrets.is_empty() {
                    // Values derived from secrets are kept encrypted in the
                    // state, which needs the stack's key.
                    s.crypter()?;
                }
                Ok(s)
            }
        }
    }

    fn new(
        stack: Stack,
        id: StackId,
        project: Option<Project>,
        state_path: PathBuf,
        registry: Registry,
        overrides: &BTreeMap<String, String>,
        t: Instant,
    ) -> Session {
        Session {
            stack,
            id,
            project,
            state_path,
            overridden: overrides.keys().cloned().collect(),
            migrated: None,
            config: None,
            crypter: None,
            registry,
            parallel: 16,
            cancel: Arc::new(AtomicBool::new(false)),
            phases: vec![("parse", t.elapsed())],
        }
    }

    /// The stack's crypter, derived from the passphrase on first use; a
    /// stack file without a salt gets one, written to the file.
    pub fn crypter(&mut self) -> Result<Arc<Crypter>, Error> {
        if let Some(c) = &self.crypter {
            return Ok(c.clone());
        }
        let stack = self.id.to_string();
        let Some(cfg) = self.config.as_mut() else { return Err(SecretsError::SingleFile { stack }.into()) };
        let pass = config::passphrase()
            .map_err(|message| SecretsError::PassphraseFile { message })?
            .ok_or(SecretsError::Missing { stack })?;
        let had_salt = cfg.salt.is_some();
        let c = cfg.ensure_salt(&pass).map_err(|d| invalid_config(&cfg.path, cfg.source_text.clone(), vec![d]))?;
        if !had_salt {
            cfg.write().map_err(|source| Error::Io { path: cfg.path.clone(), source })?;
        }
        let c = Arc::new(c);
        self.crypter = Some(c.clone());
        Ok(c)
    }

    /// What encrypts this stack's secrets in its state, if it has any.
    fn sealer(&self) -> Option<Arc<Sealer>> {
        let c = self.crypter.clone()?;
        (!self.stack.secrets.is_empty()).then(|| Arc::new(Sealer::new(c, self.stack.secrets.clone())))
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
    pub fn load_state(&mut self) -> Result<StateFile, Error> {
        match rinfra_state::load(&self.state_path, &self.id)? {
            Some(mut s) => {
                self.open_secrets(&mut s)?;
                Ok(s)
            }
            None => Ok(StateFile::new(&self.id)),
        }
    }

    /// The state; an error when the stack was never deployed.
    pub fn existing_state(&mut self) -> Result<StateFile, Error> {
        let mut s =
            rinfra_state::load(&self.state_path, &self.id)?.ok_or_else(|| Error::NoState(self.state_path.clone()))?;
        self.open_secrets(&mut s)?;
        Ok(s)
    }

    /// Decrypts the secret values of a state just read.
    pub fn open_secrets(&mut self, state: &mut StateFile) -> Result<(), Error> {
        if rinfra_state::crypt::has_secrets(state) {
            let c = self.crypter()?;
            rinfra_state::crypt::open(state, &c)
                .map_err(|source| rinfra_state::StateError::Secret { path: self.state_path.clone(), source })?;
        }
        Ok(())
    }

    /// Saves the state, with the values derived from secrets encrypted.
    pub fn save(&self, state: &mut StateFile) -> Result<(), Error> {
        Ok(rinfra_state::save_sealed(&self.state_path, state, self.sealer().as_deref())?)
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
        let store = LocalStore { path: self.state_path.clone(), sealer: self.sealer() };
        let stack = (mode != PlanMode::Destroy).then_some(&self.stack);
        let t = Instant::now();
        let report = apply::apply(plan, stack, state, &store, &self.registry, &opts, observer).await;
        self.phases.push(("apply", t.elapsed()));
        let report = report?;
        if report.ok() && mode != PlanMode::Destroy {
            self.sync_metadata(state)?;
        }
        let mut summary = BTreeMap::new();
        for (_, op, _) in &report.done {
            let name = serde_json::to_value(op).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
            *summary.entry(name).or_insert(0) += 1;
        }
        let command = match mode {
            PlanMode::Destroy => "destroy",
            PlanMode::Remediate => "drift --remediate",
            PlanMode::Normal | PlanMode::RefreshOnly => "up",
        };
        self.record(state, command, report.ok(), summary)?;
        Ok(report)
    }

    /// Appends one update to the stack's history log.
    pub fn record(
        &self,
        state: &StateFile,
        command: &str,
        ok: bool,
        summary: BTreeMap<String, u64>,
    ) -> Result<(), Error> {
        let update = rinfra_state::history::Update {
            serial: state.serial,
            time: crate::drift::rfc3339(std::time::SystemTime::now()),
            command: command.to_string(),
            ok,
            summary,
        };
        Ok(rinfra_state::history::append(&self.state_path, &update)?)
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
        self.record(state, "import", true, BTreeMap::from([("import".to_string(), 1)]))?;
        Ok(state.resources.get(name).map(|r| r.type_.clone()).unwrap_or_default())
    }
}

fn invalid_config(path: &std::path::Path, source_text: String, diagnostics: Vec<Diagnostic>) -> Error {
    Error::Load(LoadError::InvalidConfig {
        path: path.to_path_buf(),
        source_text,
        diagnostics: Diagnostics(diagnostics),
    })
}

/// The provider settings rinfra reads from a stack's config.
const PROVIDER_KEYS: &[&str] = &["aws:region", "aws:profile"];

/// The config values of a stack file, decrypted, with `--config` flags
/// over them; and the provider settings it holds.
fn config_inputs(
    cfg: &StackConfig,
    project: &Project,
    overrides: &BTreeMap<String, String>,
    crypter: &mut Option<Arc<Crypter>>,
) -> Result<(ConfigInputs, BTreeMap<String, String>), Error> {
    let bad = |d: Vec<Diagnostic>| invalid_config(&cfg.path, cfg.source_text.clone(), d);
    if let Some((_, first)) = cfg.entries.iter().find(|(_, e)| matches!(e.value, Stored::Secure(_))) {
        let pass = config::passphrase().map_err(|message| SecretsError::PassphraseFile { message })?;
        let Some(pass) = pass else {
            return Err(bad(vec![
                Diagnostic::new(format!("stack `{}` has secrets, and no passphrase is set", project.id(stack_of(cfg))))
                    .at(first.span, "encrypted")
                    .with_hint(format!(
                        "set {} (or PULUMI_CONFIG_PASSPHRASE) to the stack's passphrase",
                        config::PASSPHRASE_VARS[0]
                    )),
            ]));
        };
        match cfg.crypter(&pass).map_err(|d| bad(vec![d]))? {
            Some(c) => *crypter = Some(Arc::new(c)),
            None => {
                return Err(bad(vec![
                    Diagnostic::new("the file has `secure:` values but no `encryptionsalt:`")
                        .at(first.span, "cannot be decrypted")
                        .with_hint("copy the `encryptionsalt:` line of the stack that encrypted it"),
                ]));
            }
        }
    }
    let mut values = BTreeMap::new();
    let mut providers = BTreeMap::new();
    let mut diags = Vec::new();
    for (key, e) in &cfg.entries {
        let (value, secret) = match (&e.value, crypter.as_ref()) {
            (Stored::Plain(v), _) => (v.clone(), false),
            (Stored::Secure(ct), Some(c)) => match c.decrypt(ct) {
                Ok(text) => (serde_json::Value::String(text), true),
                Err(err) => {
                    diags
                        .push(Diagnostic::new(format!("config `{key}` cannot be decrypted: {err}")).at(e.span, "here"));
                    continue;
                }
            },
            (Stored::Secure(_), None) => continue,
        };
        let origin = Origin::StackFile { key_span: e.key_span, span: e.span };
        match key.split_once(':') {
            None => {
                values.insert(key.clone(), Supplied { value, origin, secret });
            }
            Some((ns, k)) if ns == project.name => {
                values.insert(k.to_string(), Supplied { value, origin, secret });
            }
            Some(_) if PROVIDER_KEYS.contains(&key.as_str()) => match value {
                serde_json::Value::String(s) => {
                    providers.insert(key.clone(), s);
                }
                _ => diags.push(Diagnostic::new(format!("config `{key}` must be a string")).at(e.span, "not text")),
            },
            Some(("aws", _)) => diags.push(
                Diagnostic::new(format!("config `{key}` is not supported by rinfra yet"))
                    .at(e.key_span, "not supported")
                    .with_hint(format!("rinfra reads {} from the `aws` namespace", PROVIDER_KEYS.join(" and "))),
            ),
            Some((ns, _)) => diags.push(
                Diagnostic::new(format!("config `{key}` is not a key of project `{}`", project.name))
                    .at(e.key_span, format!("namespace `{ns}`"))
                    .with_hint(format!(
                        "is this the config file of project `{ns}`? This project's keys are `{}:<name>`",
                        project.name
                    )),
            ),
        }
    }
    if !diags.is_empty() {
        return Err(bad(diags));
    }
    for (k, v) in overrides {
        let key = k.strip_prefix(&format!("{}:", project.name)).unwrap_or(k);
        values.insert(
            key.to_string(),
            Supplied { value: serde_json::Value::String(v.clone()), origin: Origin::Flag, secret: false },
        );
    }
    Ok((ConfigInputs { values, namespace: Some(project.name.clone()) }, providers))
}

/// The stack a config file belongs to, from its name `Pulumi.<stack>.yaml`.
fn stack_of(cfg: &StackConfig) -> &str {
    cfg.path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("Pulumi."))
        .and_then(|n| n.strip_suffix(".yaml"))
        .unwrap_or("?")
}
