//! `rinfra stack …`: create, select, list, remove, export and import the
//! stacks of a project.

use super::EXIT_OK;
use crate::args::{
    Global, JsonArgs, OutputArgs, StackExportArgs, StackImportArgs, StackNameArg, StackRmArgs, StackSelectArgs,
};
use crate::context;
use crate::error::CliError;
use crate::output;
use rinfra_engine::config::StackConfig;
use rinfra_engine::project::{Project, ProjectError, Target, check_stack_name};
use rinfra_state::{StateFile, history};
use serde_json::{Value, json};
use std::io::Read;
use std::path::Path;

/// The largest state `stack import` reads, so that a wrong file cannot
/// make rinfra allocate without bound.
const MAX_IMPORT_BYTES: u64 = 64 * 1024 * 1024;

fn engine(e: impl Into<rinfra_engine::Error>) -> CliError {
    CliError::Engine(e.into())
}

/// Creates `name` in `p`: its state (adopting a pre-project state of the
/// program when there is one), and selects it.
fn create(p: &Project, name: &str) -> Result<(), CliError> {
    check_stack_name(name).map_err(engine)?;
    if p.exists(name) {
        return Err(engine(ProjectError::StackExists { project: p.name.clone(), stack: name.to_string() }));
    }
    match p.adopt_legacy(name)? {
        Some((from, to)) => output::note(&format!(
            "moved the state of `{}` from {} to {}; the old file is kept as {}.migrated",
            p.name,
            from.display(),
            to.display(),
            from.display()
        )),
        None => rinfra_state::save(&p.state_path(name), &mut StateFile::new(&p.id(name)))?,
    }
    // As `pulumi stack init` does, a passphrase in the environment gives
    // the new stack its salt at once, so its config file does not change
    // later when a secret first needs it.
    let pass = rinfra_engine::config::passphrase()
        .map_err(|message| engine(rinfra_engine::error::SecretsError::PassphraseFile { message }))?;
    if let Some(pass) = pass {
        let path = p.config_path(name);
        let mut cfg = StackConfig::read(&path).map_err(|(_, problem)| {
            CliError::Engine(rinfra_engine::Error::Config(rinfra_engine::config::ConfigError::Passphrase(
                problem.0.first().map(|d| d.message.clone()).unwrap_or_default(),
            )))
        })?;
        cfg.ensure_salt(&pass).map_err(|d| engine(rinfra_engine::config::ConfigError::Passphrase(d.message)))?;
        cfg.write().map_err(|source| engine(rinfra_engine::Error::Io { path: path.clone(), source }))?;
    }
    p.select(name).map_err(|source| engine(rinfra_engine::Error::Io { path: p.state_dir(), source }))?;
    Ok(())
}

/// `stack init NAME`.
pub fn init(g: &Global, a: StackNameArg) -> Result<i32, CliError> {
    let p = context::project(g)?;
    create(&p, &a.name)?;
    output::line(&format!("Created stack `{}` in project `{}`; it is selected.", a.name, p.name));
    Ok(EXIT_OK)
}

/// `stack select NAME [--create]`.
pub fn select(g: &Global, a: StackSelectArgs) -> Result<i32, CliError> {
    let p = context::project(g)?;
    if a.create && !p.exists(&a.name) {
        create(&p, &a.name)?;
        output::line(&format!("Created stack `{}`; it is selected.", a.name));
        return Ok(EXIT_OK);
    }
    p.existing(&a.name).map_err(engine)?;
    p.select(&a.name).map_err(|source| engine(rinfra_engine::Error::Io { path: p.state_dir(), source }))?;
    output::line(&format!("Selected stack `{}`.", a.name));
    Ok(EXIT_OK)
}

/// `stack ls`: every stack with its resource count and last update.
pub fn ls(g: &Global, a: JsonArgs) -> Result<i32, CliError> {
    let p = context::project(g)?;
    let selected = p.selected();
    let rows: Vec<Value> = p
        .stacks()
        .into_iter()
        .map(|name| {
            let path = p.state_path(&name);
            let resources = rinfra_state::verify(&path).ok().map(|s| s.resources.len());
            let last = history::read(&path).ok().and_then(|h| h.last().map(|u| u.time.clone()));
            json!({
                "name": name,
                "current": selected.as_deref() == Some(name.as_str()),
                "resourceCount": resources,
                "lastUpdate": last,
            })
        })
        .collect();
    if a.json {
        output::json(&json!({"version": output::JSON_VERSION, "project": p.name, "stacks": rows}));
        return Ok(EXIT_OK);
    }
    let cell = |v: &Value| match v {
        Value::Null => "n/a".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut lines = vec![["NAME".to_string(), "LAST UPDATE".to_string(), "RESOURCE COUNT".to_string()]];
    for r in &rows {
        let star = if r["current"] == json!(true) { "*" } else { "" };
        let name = format!("{}{star}", cell(&r["name"]));
        let last = if r["lastUpdate"].is_null() { "never".to_string() } else { cell(&r["lastUpdate"]) };
        lines.push([name, last, cell(&r["resourceCount"])]);
    }
    let w0 = lines.iter().map(|l| l[0].len()).max().unwrap_or(0);
    let w1 = lines.iter().map(|l| l[1].len()).max().unwrap_or(0);
    for l in lines {
        output::line(format!("{:<w0$}  {:<w1$}  {}", l[0], l[1], l[2]).trim_end());
    }
    Ok(EXIT_OK)
}

/// `stack rm [NAME]`: refuses while the state has resources, unless `--force`.
pub fn rm(g: &Global, a: StackRmArgs) -> Result<i32, CliError> {
    context::needs_terminal(a.yes, "stack rm")?;
    let p = context::project(g)?;
    let name = match a.name.or_else(|| p.selected()) {
        Some(n) => n,
        None => return Err(engine(ProjectError::NoneSelected { project: p.name.clone(), stacks: p.stacks() })),
    };
    p.existing(&name).map_err(engine)?;
    let path = p.state_path(&name);
    let lock = rinfra_state::StateLock::acquire(&path, "stack rm")?;
    let count = match rinfra_state::load(&path, &p.id(&name))? {
        Some(s) => s.resources.len() + s.replaced.len() + s.pending.len(),
        None => 0,
    };
    if count > 0 && !a.force {
        return Err(CliError::StackNotEmpty { stack: name, count });
    }
    if !a.yes
        && !output::confirm(&format!(
            "Remove stack `{name}`{}?",
            if count > 0 {
                format!(" and forget its {count} resources (they stay in the cloud)")
            } else {
                String::new()
            }
        ))
    {
        output::line("\nRemove cancelled.");
        return Ok(super::EXIT_ERROR);
    }
    let mut files = vec![
        path.clone(),
        rinfra_state::backup_path(&path),
        history::path_for(&path),
        rinfra_engine::schedule::default_history(&path),
    ];
    if !a.preserve_config {
        files.push(p.config_path(&name));
    }
    for f in files {
        match std::fs::remove_file(&f) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(engine(rinfra_engine::Error::Io { path: f, source })),
        }
    }
    drop(lock);
    p.unselect(&name);
    output::line(&format!("Removed stack `{name}`."));
    Ok(EXIT_OK)
}

/// `stack output`: as `output`.
pub fn output(g: &Global, a: OutputArgs) -> Result<i32, CliError> {
    super::output::exec(g, a)
}

/// `stack history`: the updates recorded for the stack.
pub fn history(g: &Global, a: JsonArgs) -> Result<i32, CliError> {
    let c = context::open(g)?;
    let updates = history::read(&c.s.state_path)?;
    if a.json {
        output::json(&json!({"version": output::JSON_VERSION, "stack": c.s.stack.name, "updates": updates}));
        return Ok(EXIT_OK);
    }
    if updates.is_empty() {
        output::line(&format!("Stack `{}` has no updates yet.", c.s.stack.name));
    }
    for u in updates.iter().rev() {
        let summary: Vec<String> = u.summary.iter().map(|(k, n)| format!("{k} {n}")).collect();
        let result = if u.ok { "succeeded" } else { "failed" };
        output::line(&format!(
            "#{:<4} {}  {:<18} {result:<9}  {}",
            u.serial,
            u.time,
            u.command,
            if summary.is_empty() { "no changes".to_string() } else { summary.join(", ") }
        ));
    }
    Ok(EXIT_OK)
}

/// `stack export`: the state as stored (secrets stay encrypted).
pub fn export(g: &Global, a: StackExportArgs) -> Result<i32, CliError> {
    let c = context::open(g)?;
    let path = &c.s.state_path;
    if !path.exists() {
        return Err(engine(rinfra_engine::Error::NoState(path.clone())));
    }
    let state = rinfra_state::verify(path)?;
    rinfra_state::check_owner(path, &state, &c.s.id)?;
    let text = serde_json::to_string_pretty(&state).unwrap_or_default() + "\n";
    match a.file {
        Some(f) => std::fs::write(&f, text).map_err(|source| engine(rinfra_engine::Error::Io { path: f, source }))?,
        None => output::raw(&text),
    }
    Ok(EXIT_OK)
}

/// `stack import`: replaces the state with an export, after checking its
/// checksum, its stack, its secrets and its serial.
pub fn import(g: &Global, a: StackImportArgs) -> Result<i32, CliError> {
    let mut c = context::open(g)?;
    let (label, bytes) = read_input(a.file.as_deref())?;
    let label = Path::new(&label);
    let imported = rinfra_state::verify_bytes(label, &bytes)?;
    rinfra_state::check_owner(label, &imported, &c.s.id)?;
    // The secrets must open with this stack's key, or the state is of no use.
    let mut probe = imported.clone();
    c.s.open_secrets(&mut probe)?;
    let _lock = c.lock("stack import")?;
    let path = c.s.state_path.clone();
    if let Some(current) = rinfra_state::load(&path, &c.s.id)? {
        let older = current.lineage == imported.lineage && current.serial > imported.serial;
        if (older || current.lineage != imported.lineage) && !a.force {
            return Err(CliError::ImportRefused {
                reason: if older {
                    format!("the import has serial {}, older than the state's {}", imported.serial, current.serial)
                } else {
                    format!("the import has lineage {}, the state {}", imported.lineage, current.lineage)
                },
            });
        }
        if current.lineage != imported.lineage {
            // Saving checks the lineage on disk; a forced import of another
            // lineage moves the current state to its backup first.
            std::fs::rename(&path, rinfra_state::backup_path(&path))
                .map_err(|source| engine(rinfra_engine::Error::Io { path: path.clone(), source }))?;
        }
    }
    let mut stored = imported;
    rinfra_state::save(&path, &mut stored)?;
    c.s.record(&stored, "stack import", true, Default::default())?;
    output::line(&format!(
        "Imported the state into stack `{}`: {} resources, serial {}.",
        c.s.stack.name,
        stored.resources.len(),
        stored.serial
    ));
    Ok(EXIT_OK)
}

fn read_input(file: Option<&Path>) -> Result<(String, Vec<u8>), CliError> {
    let mut bytes = Vec::new();
    let label = match file {
        Some(f) => {
            let h = std::fs::File::open(f)
                .map_err(|source| engine(rinfra_engine::Error::Io { path: f.to_path_buf(), source }))?;
            h.take(MAX_IMPORT_BYTES + 1)
                .read_to_end(&mut bytes)
                .map_err(|source| engine(rinfra_engine::Error::Io { path: f.to_path_buf(), source }))?;
            f.display().to_string()
        }
        None => {
            std::io::stdin()
                .take(MAX_IMPORT_BYTES + 1)
                .read_to_end(&mut bytes)
                .map_err(|source| engine(rinfra_engine::Error::Io { path: "<stdin>".into(), source }))?;
            "<stdin>".to_string()
        }
    };
    if bytes.len() as u64 > MAX_IMPORT_BYTES {
        return Err(CliError::ImportRefused { reason: format!("{label} is larger than 64 MiB") });
    }
    Ok((label, bytes))
}

/// Whether `g` names a stack of a project (as config commands need).
pub fn stack_target(g: &Global) -> Result<(Project, String), CliError> {
    match context::target(g)? {
        Target::Stack { project, stack } => Ok((project, stack)),
        Target::File(f) => Err(CliError::NotAProjectStack(f)),
    }
}
