//! From global flags to an engine session: config overrides, API rates,
//! AWS settings and the registry of AWS providers. Nothing here prints.

use crate::args::Global;
use crate::error::CliError;
use crate::output::use_color;
use rinfra_engine::project::{Project, ProjectError, Target};
use rinfra_engine::session::{Session, StateLocation};
use rinfra_resources::s3_backend::S3Backend;
use rinfra_resources::{Aws, AwsSettings};
use rinfra_state::backend::{Backend, Lease, LocalBackend};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

/// One command's session, with how to show things.
pub struct Ctx {
    /// The engine session.
    pub s: Session,
    /// The AWS clients, for call statistics.
    pub aws: Arc<Aws>,
    /// Colour on stdout.
    pub color: bool,
    /// Colour on stderr.
    pub color_err: bool,
    /// Whether `--stats` was given.
    pub stats: bool,
}

/// Parses `KEY=VALUE` flags.
fn pairs(flag: &'static str, values: &[String]) -> Result<BTreeMap<String, String>, CliError> {
    let mut out = BTreeMap::new();
    for kv in values {
        let Some((k, v)) = kv.split_once('=') else {
            return Err(CliError::Flag { flag, value: kv.clone(), message: "must be KEY=VALUE".into() });
        };
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

/// The AWS settings the flags give; rates are checked before anything runs.
pub fn aws_settings(g: &Global) -> Result<AwsSettings, CliError> {
    let mut rates = BTreeMap::new();
    for (k, v) in pairs("--api-rate", &g.api_rate)? {
        let bad = |message: String| CliError::Flag { flag: "--api-rate", value: format!("{k}={v}"), message };
        if !k.contains(':') {
            return Err(bad("must be SERVICE:Operation=CALLS_PER_SECOND".into()));
        }
        let rate: f64 = v.parse().map_err(|_| bad("the rate must be a number of calls per second".into()))?;
        rinfra_resources::aws::check_rate(&k, rate).map_err(bad)?;
        rates.insert(k, rate);
    }
    Ok(AwsSettings {
        rates,
        region: g.region.clone(),
        endpoint_url: g.endpoint_url.clone(),
        profile: g.profile.clone(),
    })
}

/// What `-s` and `-C` name: a stack of a project, or a single-file program.
pub fn target(g: &Global) -> Result<Target, CliError> {
    Ok(rinfra_engine::project::resolve(g.stack.as_deref(), g.cwd.as_deref()).map_err(rinfra_engine::Error::from)?)
}

/// The project `-C` names or the current directory is in.
pub fn project(g: &Global) -> Result<Project, CliError> {
    let here = std::env::current_dir().unwrap_or_else(|_| ".".into());
    let found = match &g.cwd {
        Some(dir) => Project::at(dir).map(Some),
        None => Project::find(&here),
    }
    .map_err(rinfra_engine::Error::from)?;
    Ok(found.ok_or_else(|| rinfra_engine::Error::from(ProjectError::NoProject(here)))?)
}

/// The backend URL: `--backend` (or RINFRA_BACKEND_URL), then
/// PULUMI_BACKEND_URL, then the project's `backend.url`. Pulumi's variable
/// may name a backend only Pulumi has (its cloud service); rinfra then says
/// so and keeps states locally.
fn backend_url(g: &Global, project: Option<&Project>) -> Option<String> {
    let pulumi = std::env::var("PULUMI_BACKEND_URL").ok().filter(|u| !u.is_empty()).filter(|u| {
        let ours = u.starts_with("s3://") || u.starts_with("file://");
        if !ours {
            crate::output::note(&format!(
                "PULUMI_BACKEND_URL={u} is a backend rinfra does not have; states stay local (set RINFRA_BACKEND_URL to choose)"
            ));
        }
        ours
    });
    g.backend.clone().or(pulumi).or_else(|| project.and_then(|p| p.backend_url.clone()))
}

/// Where the state of `target` lives, and the S3 backend to connect when
/// it is in a bucket. A bad URL is refused here, before anything runs.
fn location(g: &Global, target: &Target) -> Result<(StateLocation, Option<Arc<S3Backend>>), CliError> {
    if let Some(p) = &g.state {
        return Ok((StateLocation::File(p.clone()), None));
    }
    let project = match target {
        Target::Stack { project, .. } => Some(project),
        Target::File(_) => None,
    };
    let Some(url) = backend_url(g, project) else { return Ok((StateLocation::Default, None)) };
    if let Some(dir) = url.strip_prefix("file://") {
        // As Pulumi's file backend: a directory that holds every project's
        // states, `<dir>/.rinfra/<project>/<stack>.json`.
        let dir = match (dir.strip_prefix('~'), std::env::var_os("HOME")) {
            (Some(rest), Some(home)) => PathBuf::from(home).join(rest.trim_start_matches('/')),
            _ => PathBuf::from(dir),
        };
        let root = dir.join(".rinfra");
        let root = project.map_or(root.clone(), |p| root.join(&p.name));
        return Ok((StateLocation::Remote(Arc::new(LocalBackend::dir(root))), None));
    }
    let recovery = project.map_or_else(|| PathBuf::from(".rinfra"), Project::state_dir).join("recovery");
    let b = Arc::new(S3Backend::parse(&url, recovery).map_err(|message| CliError::Flag {
        flag: "--backend",
        value: url.clone(),
        message,
    })?);
    Ok((StateLocation::Remote(b.clone()), Some(b)))
}

/// The backend of `project`'s stacks, for commands that open no program
/// (`stack ls`, `init`, `rm`).
pub fn backend_for(g: &Global, project: &Project) -> Result<Arc<dyn Backend>, CliError> {
    if let Some(p) = &g.state {
        return Ok(Arc::new(LocalBackend::file(p.clone())));
    }
    let target = Target::Stack { project: project.clone(), stack: String::new() };
    match location(g, &target)? {
        (StateLocation::Remote(b), Some(s3)) => {
            s3.connect(Aws::new(aws_settings(g)?));
            Ok(b)
        }
        (StateLocation::Remote(b), None) => Ok(b),
        _ => Ok(Arc::new(LocalBackend::dir(project.state_dir()))),
    }
}

/// Checks the stack and flags; nothing touches the cloud.
pub fn open(g: &Global) -> Result<Ctx, CliError> {
    open_target(g, &target(g)?)
}

/// Checks `target` and the flags; nothing touches the cloud.
pub fn open_target(g: &Global, target: &Target) -> Result<Ctx, CliError> {
    let overrides = pairs("--config", &g.config)?;
    let mut settings = aws_settings(g)?;
    let endpoint = g.endpoint_url.clone().or_else(|| std::env::var("AWS_ENDPOINT_URL").ok());
    if let Some(e) = endpoint.filter(|e| e.starts_with("http://") && !rinfra_resources::aws::is_local_endpoint(e)) {
        crate::output::warn(
            use_color(g.color, false),
            &format!(
                "the endpoint {e} is plain http to a host that is not this machine; requests and their signatures travel unencrypted"
            ),
        );
    }
    let (location, s3) = location(g, target)?;
    let mut aws = None;
    let mut s = Session::open(target, &overrides, location, |providers| {
        // The stack's `aws:region` and `aws:profile` apply unless a flag
        // names them; the environment comes after both, as in Pulumi.
        if settings.region.is_none() {
            settings.region = providers.get("aws:region").cloned();
        }
        if settings.profile.is_none() {
            settings.profile = providers.get("aws:profile").cloned();
        }
        // The region is settled once, so that every resource records the
        // one it is made in, and a provider in another region is told apart.
        let region = rinfra_resources::aws::resolve_region(&settings);
        settings.region = Some(region.clone());
        let a = Aws::new(settings);
        if let Some(b) = &s3 {
            b.connect(a.clone());
        }
        aws = Some(a.clone());
        let mut registry = rinfra_resources::registry(a);
        let mut defaults = rinfra_provider::Props::from([("region".to_string(), serde_json::json!(region))]);
        if let Some(tags) = providers.get("aws:defaultTags").and_then(|t| serde_json::from_str(t).ok()) {
            defaults.insert("tags".into(), tags);
        }
        registry.set_defaults(defaults);
        registry
    })?;
    for n in &s.stack.notes {
        let at = n.span.map(|sp| format!(" (line {}, column {})", sp.line, sp.col)).unwrap_or_default();
        crate::output::note(&format!("note: {}{at}", n.message));
    }
    let aws = aws.ok_or_else(|| CliError::Flag {
        flag: "--stack",
        value: String::new(),
        message: "the providers were not built".into(),
    })?;
    if let Some(from) = &s.legacy {
        crate::output::note(&format!(
            "stack `{}` has no state yet; {} holds this program's state from before projects, and is read in its place. The next command that writes (such as `up`) moves it into the stack",
            s.stack.name,
            from.display()
        ));
    }
    s.parallel = g.parallel.max(1);
    s.cancel = crate::signals::STOP.clone();
    Ok(Ctx { s, aws, color: use_color(g.color, true), color_err: use_color(g.color, false), stats: g.stats })
}

/// Refuses at once when confirmation is needed but cannot be asked for.
pub fn needs_terminal(yes: bool, command: &'static str) -> Result<(), CliError> {
    if !yes && !std::io::stdin().is_terminal() {
        return Err(CliError::NeedsTerminal(command));
    }
    Ok(())
}

impl Ctx {
    /// Says which config values `--config` overrides for this run only,
    /// for a stack whose config lives in its file.
    pub fn announce_overrides(&self) {
        if let (Some(p), false) = (&self.s.project, self.s.overridden.is_empty()) {
            crate::output::note(&format!(
                "--config overrides {} for this run only; {} is unchanged (use `rinfra config set` to keep a value)",
                self.s.overridden.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", "),
                p.config_path(&self.s.id.stack).display()
            ));
        }
    }

    /// Prints statistics when `--stats` was given.
    pub fn print_stats(&self) {
        if self.stats {
            crate::output::stats(&self.s.phases, &self.aws.stats().snapshot());
        }
    }

    /// Takes the state lock, tells the signal handler about it, and readies
    /// the session to write (its key, and a move of a state from before
    /// projects), before anything reaches the cloud.
    pub fn lock(&mut self, command: &str) -> Result<Held, CliError> {
        let lease = self.s.lock(command)?;
        crate::signals::holding(Some(lease.releaser()));
        let held = Held(lease);
        self.s.prepare_write()?;
        if let Some((from, to)) = &self.s.migrated {
            crate::output::note(&format!(
                "moved the state of `{}` from {} to {}; the old file is kept as {}.migrated",
                self.s.stack.name,
                from.display(),
                to,
                from.display()
            ));
        }
        Ok(held)
    }
}

/// A held lock; releasing it also tells the signal handler.
pub struct Held(#[allow(dead_code)] Box<dyn Lease>);

impl Drop for Held {
    fn drop(&mut self) {
        crate::signals::holding(None);
    }
}
