//! A session: one command's checked stack, its state's location and the
//! providers, with the operations commands are made of. Commands in the
//! command line are thin sequences of these calls and print their results.

use crate::apply::{self, ApplyOptions, BackendStore, Observer, Report};
use crate::config::{self, StackConfig, Stored};
use crate::diag::{Diagnostic, Diagnostics};
use crate::error::{Error, SecretsError};
use crate::load::LoadError;
use crate::ops::{self, Recovered};
use crate::plan::{self, Observations, Plan, PlanMode};
use crate::project::{Project, Target};
use crate::render::Secrets;
use crate::stack::{ConfigInputs, Origin, Resolved, Stack, Supplied};
use rinfra_provider::Registry;
use rinfra_state::backend::{Backend, Lease, LocalBackend};
use rinfra_state::crypt::{Crypter, Sealer};
use rinfra_state::{StackId, StateFile};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

/// A checked stack, where its state lives, and the providers.
pub struct Session {
    /// The checked stack.
    pub stack: Stack,
    /// What this run has learned beyond the program: function results and
    /// `get` reads. The session owns it so the stack stays inert.
    pub resolved: Resolved,
    /// Which stack this is.
    pub id: StackId,
    /// The project, unless the program is a single file.
    pub project: Option<Project>,
    /// Where the state lives.
    pub backend: Arc<dyn Backend>,
    /// A local directory for this stack's drift history.
    pub local_dir: PathBuf,
    /// Config keys that `--config` set for this run only.
    pub overridden: Vec<String>,
    /// A state of this program from before projects, read while the stack
    /// has none of its own, and moved into it by the first command that
    /// writes.
    pub legacy: Option<PathBuf>,
    /// The legacy state moved by this run: from, to.
    pub migrated: Option<(PathBuf, String)>,
    /// The stack's config file, for a stack of a project.
    config: Option<StackConfig>,
    /// The stack's crypter, once one was needed.
    crypter: Option<Arc<Crypter>>,
    /// The text of every value found encrypted in the state as read, so
    /// that it stays encrypted even after its secret changed.
    opened: Vec<String>,
    /// The values of outputs the stack marks secret, found so far.
    secret_outputs: Vec<String>,
    /// The providers.
    pub registry: Registry,
    /// How many operations may run at once.
    pub parallel: usize,
    /// Set by an interrupt: no new work starts.
    pub cancel: Arc<AtomicBool>,
    /// Time spent per phase, for `--stats`.
    pub phases: Vec<(&'static str, Duration)>,
}

/// Where a command's state lives.
#[derive(Debug, Clone)]
pub enum StateLocation {
    /// The default: `<project>/.rinfra/<stack>.json`, or
    /// `.rinfra/<name>.json` for a single-file program.
    Default,
    /// One file, named with `--state`.
    File(PathBuf),
    /// A remote backend, such as a bucket.
    Remote(Arc<dyn Backend>),
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
    /// Resources renamed through `aliases`: the old name, then the new.
    pub renamed: Vec<(String, String)>,
}

impl Session {
    /// Loads and checks `target` with its config; nothing touches the
    /// cloud, and nothing is written. `registry` builds the providers from
    /// the provider settings the stack's config holds (`aws:region`,
    /// `aws:profile`).
    pub fn open(
        target: &Target,
        overrides: &BTreeMap<String, String>,
        location: StateLocation,
        registry: impl FnOnce(&BTreeMap<String, String>) -> Registry,
    ) -> Result<Session, Error> {
        let t = Instant::now();
        match target {
            Target::File(path) => {
                let registry = registry(&BTreeMap::new());
                let stack = crate::load::load_stack(path, overrides, &registry)?;
                let id = StackId::single(&stack.name);
                let default = crate::load::default_state_path(&stack.name);
                let mut local_dir = default.parent().map(Path::to_path_buf).unwrap_or_default();
                let backend: Arc<dyn Backend> = match location {
                    StateLocation::Default => Arc::new(LocalBackend::file(default)),
                    StateLocation::File(p) => {
                        // Drift histories stay beside a state named with --state.
                        local_dir = p.parent().map(Path::to_path_buf).unwrap_or_default();
                        Arc::new(LocalBackend::file(p))
                    }
                    StateLocation::Remote(b) => b,
                };
                Ok(Session::new(stack, id, None, backend, local_dir, registry, overrides, t))
            }
            Target::Stack { project, stack: name } => {
                let id = project.id(name);
                let cfg_path = project.config_path(name);
                let cfg = StackConfig::read(&cfg_path)
                    .map_err(|(source_text, p)| invalid_config(&cfg_path, source_text, p.0))?;
                let mut crypter = None;
                let (inputs, providers) = config_inputs(&cfg, project, name, overrides, &mut crypter)?;
                let registry = registry(&providers);
                let default = matches!(location, StateLocation::Default);
                let mut local_dir = project.state_dir();
                let backend: Arc<dyn Backend> = match location {
                    StateLocation::Default => Arc::new(LocalBackend::dir(project.state_dir())),
                    StateLocation::File(p) => {
                        local_dir = p.parent().map(Path::to_path_buf).unwrap_or_default();
                        Arc::new(LocalBackend::file(p))
                    }
                    StateLocation::Remote(b) => b,
                };
                project.existing(name, backend.as_ref())?;
                let bytes = std::fs::read(&project.program)
                    .map_err(|source| LoadError::Io { path: project.program.clone(), source })?;
                let mut stack = crate::stack::load_with(&bytes, &inputs, &registry).map_err(|f| {
                    if f.program.0.is_empty() {
                        invalid_config(&cfg_path, cfg.source_text.clone(), f.config.0)
                    } else {
                        Error::Load(LoadError::Invalid {
                            path: project.program.clone(),
                            source_text: String::from_utf8_lossy(&bytes).into_owned(),
                            diagnostics: f.program,
                        })
                    }
                })?;
                stack.name = id.owner();
                // Whether the stack has a state file at all, valid or not: a
                // damaged one must be reported, never replaced by a move.
                let target = project.state_path(name);
                let legacy = if default && !target.exists() { project.legacy_state() } else { None };
                let mut s = Session::new(stack, id, Some(project.clone()), backend, local_dir, registry, overrides, t);
                s.legacy = legacy;
                s.crypter = crypter;
                s.config = Some(cfg);
                Ok(s)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn new(
        stack: Stack,
        id: StackId,
        project: Option<Project>,
        backend: Arc<dyn Backend>,
        local_dir: PathBuf,
        registry: Registry,
        overrides: &BTreeMap<String, String>,
        t: Instant,
    ) -> Session {
        Session {
            resolved: Resolved::new(&stack),
            stack,
            id,
            project,
            backend,
            local_dir,
            overridden: overrides.keys().cloned().collect(),
            legacy: None,
            migrated: None,
            config: None,
            crypter: None,
            opened: Vec::new(),
            secret_outputs: Vec::new(),
            registry,
            parallel: 16,
            cancel: Arc::new(AtomicBool::new(false)),
            phases: vec![("parse", t.elapsed())],
        }
    }

    /// The stack's crypter, derived from the passphrase on first use. Never
    /// creates a salt: that happens only under the lock, in
    /// [`Session::prepare_write`], or in `stack init` and `config set`.
    pub fn crypter(&mut self) -> Result<Arc<Crypter>, Error> {
        if let Some(c) = &self.crypter {
            return Ok(c.clone());
        }
        let stack = self.id.to_string();
        let Some(cfg) = self.config.as_ref() else { return Err(SecretsError::SingleFile { stack }.into()) };
        let pass = required_passphrase(&stack)?;
        let c = cfg
            .crypter(&pass)
            .map_err(|d| invalid_config(&cfg.path, cfg.source_text.clone(), vec![d]))?
            .ok_or(SecretsError::NoSalt { stack, path: cfg.path.clone() })?;
        let c = Arc::new(c);
        self.crypter = Some(c.clone());
        Ok(c)
    }

    /// Readies a command that holds the lock to write: a stack with
    /// secrets gets its crypter (and its salt, written to the stack file,
    /// when it has none yet), and a state from before projects is moved
    /// into the stack. Call it right after taking the lock, before any
    /// call to the cloud.
    pub fn prepare_write(&mut self) -> Result<(), Error> {
        let has_secrets = !self.stack.secrets.is_empty() || self.stack.declares_secret_outputs();
        if self.project.is_some() && has_secrets && self.crypter.is_none() {
            // Read the file again under the lock: another run may have
            // given it a salt since this one opened it.
            let stack = self.id.to_string();
            let path = self.config.as_ref().map(|c| c.path.clone()).unwrap_or_default();
            let mut cfg =
                StackConfig::read(&path).map_err(|(source_text, p)| invalid_config(&path, source_text, p.0))?;
            let pass = required_passphrase(&stack)?;
            let had_salt = cfg.salt.is_some();
            let c = cfg.ensure_salt(&pass).map_err(|d| invalid_config(&path, cfg.source_text.clone(), vec![d]))?;
            if !had_salt {
                cfg.write().map_err(|source| Error::Io { path: path.clone(), source })?;
            }
            self.crypter = Some(Arc::new(c));
            if let Some(old) = self.config.as_mut() {
                old.salt = cfg.salt;
            }
        }
        if let Some(from) = self.legacy.take() {
            let target = self.project.as_ref().map(|p| p.state_path(&self.id.stack));
            if target.is_some_and(|t| !t.exists()) {
                let mut state = self.read_legacy(&from)?;
                self.save(&mut state)?;
                let mut kept = from.as_os_str().to_owned();
                kept.push(".migrated");
                std::fs::rename(&from, PathBuf::from(kept))
                    .map_err(|source| Error::Io { path: from.clone(), source })?;
                self.migrated = Some((from, self.backend.location(&self.id)));
            }
        }
        Ok(())
    }

    /// A state from before projects, as this stack's.
    fn read_legacy(&mut self, from: &Path) -> Result<StateFile, Error> {
        let mut state = rinfra_state::verify(from)?;
        state.project = self.id.project.clone();
        state.stack = self.id.stack.clone();
        let names: Vec<(String, String)> = state.resources.iter().map(|(n, r)| (n.clone(), r.type_.clone())).collect();
        for (name, type_) in names {
            let urn = state.urn(&type_, &name);
            if let Some(r) = state.resources.get_mut(&name) {
                r.urn = urn;
            }
        }
        Ok(state)
    }

    /// The text of every secret: the config's and the program's, and those
    /// the state held encrypted.
    fn secret_texts(&self) -> Vec<String> {
        self.stack.secrets.iter().chain(&self.opened).chain(&self.secret_outputs).cloned().collect()
    }

    /// Notes the values of the outputs the stack marks secret, as `state`
    /// holds them, so they are masked and sealed like other secrets.
    fn note_secret_outputs(&mut self, state: &StateFile) {
        let found = crate::apply::journal::secret_output_texts(state, &self.stack.secret_outputs());
        self.secret_outputs.extend(found);
        self.secret_outputs.sort();
        self.secret_outputs.dedup();
    }

    /// What encrypts this stack's secrets in its state, if it has any.
    fn sealer(&self) -> Result<Option<Arc<Sealer>>, Error> {
        let texts = self.secret_texts();
        if (texts.is_empty() && !self.stack.declares_secret_outputs()) || self.project.is_none() {
            return Ok(None);
        }
        match &self.crypter {
            Some(c) => Ok(Some(Arc::new(Sealer::new(c.clone(), texts)))),
            // A save without the key would write the secrets in clear.
            None => Err(SecretsError::Missing { stack: self.id.to_string() }.into()),
        }
    }

    /// The secrets of the stack, for masking what is shown: the config's
    /// and those the state held encrypted.
    pub fn secrets(&self) -> Secrets {
        Secrets::new(self.secret_texts())
    }

    /// Takes the state's lock for `command`.
    pub fn lock(&self, command: &str) -> Result<Box<dyn Lease>, Error> {
        Ok(self.backend.lock(&self.id, command)?)
    }

    /// The state, or a new empty one. While the stack has no state of its
    /// own, a state from before projects is read in its place.
    pub fn load_state(&mut self) -> Result<StateFile, Error> {
        Ok(self.read_state()?.unwrap_or_else(|| StateFile::new(&self.id)))
    }

    /// The state; an error when the stack was never deployed.
    pub fn existing_state(&mut self) -> Result<StateFile, Error> {
        self.read_state()?.ok_or_else(|| Error::NoState(self.backend.location(&self.id)))
    }

    fn read_state(&mut self) -> Result<Option<StateFile>, Error> {
        let found = match self.backend.load(&self.id)? {
            Some(s) => Some(s),
            None => match self.legacy.clone() {
                Some(from) => Some(self.read_legacy(&from)?),
                None => None,
            },
        };
        match found {
            Some(mut s) => {
                self.open_secrets(&mut s)?;
                Ok(Some(s))
            }
            None => Ok(None),
        }
    }

    /// Decrypts the secret values of a state just read, and remembers
    /// them so that they are encrypted again on every save.
    pub fn open_secrets(&mut self, state: &mut StateFile) -> Result<(), Error> {
        if rinfra_state::crypt::has_secrets(state) {
            let c = self.crypter()?;
            let texts = rinfra_state::crypt::open(state, &c).map_err(|source| rinfra_state::StateError::Secret {
                path: PathBuf::from(self.backend.location(&self.id)),
                source,
            })?;
            self.opened.extend(texts);
            self.opened.sort();
            self.opened.dedup();
        }
        Ok(())
    }

    /// Saves the state, with the values derived from secrets encrypted.
    pub fn save(&self, state: &mut StateFile) -> Result<(), Error> {
        let sealer = self.sealer()?;
        Ok(self.backend.save(&self.id, state, sealer.as_deref())?)
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
        self.note_secret_outputs(state);
        let recovered = self.reconcile(state, req.persist).await?;
        let mut imported = Vec::new();
        let mut renamed = Vec::new();
        if matches!(req.mode, PlanMode::Normal | PlanMode::Remediate) {
            renamed = ops::apply_aliases(state, &self.stack);
            if req.persist && !renamed.is_empty() {
                self.save(state)?;
            }
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
        // A program without function calls or `get` reads has nothing to
        // resolve; it skips copying every resource's attributes.
        let reads = self.stack.resources.values().any(|r| r.get.is_some()) || self.stack.has_invokes();
        if reads && matches!(req.mode, PlanMode::Normal | PlanMode::Remediate) {
            // Reads and function calls happen in previews too, as in
            // Pulumi: they change nothing.
            let t = Instant::now();
            let attrs = crate::conventions::attrs_of(state, &self.registry);
            let mut invoked =
                crate::resolve::resolve_invokes(&self.stack, &mut self.resolved, &attrs, &self.registry).await;
            // A read may wait on a call and a call on a read: go round
            // while reads are made, once per resource read with `get` at most.
            let gets = self.stack.resources.values().filter(|r| r.get.is_some()).count();
            for _ in 0..gets {
                if crate::resolve::resolve_gets(&self.stack, &mut self.resolved, state, &self.registry, false).await?
                    == 0
                {
                    break;
                }
                invoked =
                    crate::resolve::resolve_invokes(&self.stack, &mut self.resolved, &attrs, &self.registry).await;
            }
            crate::resolve::resolve_gets(&self.stack, &mut self.resolved, state, &self.registry, true).await?;
            if let Some(e) = invoked.failed.into_iter().next() {
                return Err(e.into());
            }
            for e in &invoked.deferred {
                tracing::warn!(error = %e, "a function call on a resource's values failed; it is made again at apply");
            }
            self.phases.push(("read", t.elapsed()));
        }
        let t = Instant::now();
        let planned = plan::plan_mode(&self.stack, &self.resolved, state, &self.registry, observed.as_ref(), req.mode)?;
        let mut p = planned.plan;
        if !req.targets.is_empty() {
            plan::restrict(&mut p, &req.targets, Some(&self.stack), state, req.mode == PlanMode::Destroy)?;
        }
        self.phases.push(("plan", t.elapsed()));
        Ok(Prepared { plan: p, recovered, imported, gone, skipped_protected: planned.skipped_protected, renamed })
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
        let store = BackendStore {
            backend: self.backend.clone(),
            id: self.id.clone(),
            sealer: self.sealer()?,
            secret_outputs: self.stack.secret_outputs(),
        };
        let stack = (mode != PlanMode::Destroy).then_some(&self.stack);
        let t = Instant::now();
        let report =
            apply::apply(plan, stack, &mut self.resolved, state, &store, &self.registry, &opts, observer).await;
        self.phases.push(("apply", t.elapsed()));
        let report = report?;
        self.note_secret_outputs(state);
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
        Ok(self.backend.record(&self.id, &update)?)
    }

    /// Writes the options and dependencies the stack now declares into the
    /// state, and saves when anything changed: options such as `protect`
    /// change nothing in the cloud, but the state must follow them.
    /// Returns whether it wrote.
    pub fn sync_metadata(&self, state: &mut StateFile) -> Result<bool, Error> {
        if ops::sync_metadata(&self.stack, state) {
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

/// The passphrase, which stack `stack` cannot do without.
fn required_passphrase(stack: &str) -> Result<String, SecretsError> {
    config::passphrase()
        .map_err(|message| SecretsError::PassphraseFile { message })?
        .ok_or_else(|| SecretsError::Missing { stack: stack.to_string() })
}

fn invalid_config(path: &std::path::Path, source_text: String, diagnostics: Vec<Diagnostic>) -> Error {
    Error::Load(LoadError::InvalidConfig {
        path: path.to_path_buf(),
        source_text,
        diagnostics: Diagnostics(diagnostics),
    })
}

use crate::config::{IGNORED_PROVIDER_KEYS, PROVIDER_KEYS};

/// The config values of a stack file, decrypted, with `--config` flags
/// over them; and the provider settings it holds.
fn config_inputs(
    cfg: &StackConfig,
    project: &Project,
    stack: &str,
    overrides: &BTreeMap<String, String>,
    crypter: &mut Option<Arc<Crypter>>,
) -> Result<(ConfigInputs, BTreeMap<String, String>), Error> {
    let bad = |d: Vec<Diagnostic>| invalid_config(&cfg.path, cfg.source_text.clone(), d);
    if let Some((_, first)) = cfg.entries.iter().find(|(_, e)| matches!(e.value, Stored::Secure(_))) {
        let pass = config::passphrase().map_err(|message| SecretsError::PassphraseFile { message })?;
        let Some(pass) = pass else {
            return Err(bad(vec![
                Diagnostic::new(format!("stack `{}` has secrets, and no passphrase is set", project.id(stack)))
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
            Some(_) if key == "aws:defaultTags" => match config::default_tags_text(&value) {
                Some(tags) => {
                    providers.insert(key.clone(), tags);
                }
                None => diags.push(
                    Diagnostic::new(format!("config `{key}` must be `tags:` with a map of text"))
                        .at(e.span, "unexpected value")
                        .with_hint("write `aws:defaultTags: {tags: {team: data}}`"),
                ),
            },
            Some(_) if PROVIDER_KEYS.contains(&key.as_str()) => match value {
                serde_json::Value::String(s) => {
                    providers.insert(key.clone(), s);
                }
                _ => diags.push(Diagnostic::new(format!("config `{key}` must be a string")).at(e.span, "not text")),
            },
            // They only skip checks rinfra never makes.
            Some(_) if IGNORED_PROVIDER_KEYS.contains(&key.as_str()) => {}
            Some(("aws", _)) => diags.push(
                Diagnostic::new(format!("config `{key}` is not supported by rinfra yet"))
                    .at(e.key_span, "not supported")
                    .with_hint(format!("rinfra reads {} from the `aws` namespace", PROVIDER_KEYS.join(", "))),
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
    values.extend(Supplied::flags(overrides, Some(&project.name)));
    // `fn::readFile` paths are relative to the program, which `main:` may
    // put in another directory.
    let program_dir = project.program.parent().map(Path::to_path_buf).unwrap_or_default();
    let base_dir = Some(if program_dir.as_os_str().is_empty() { PathBuf::from(".") } else { program_dir });
    let stack = Some(stack.to_string());
    Ok((ConfigInputs { values, namespace: Some(project.name.clone()), base_dir, stack }, providers))
}
