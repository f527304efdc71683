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
use rinfra_state::backend::History;
use serde_json::{Value, json};
use std::io::Read;
use std::path::{Path, PathBuf};

/// The largest state `stack import` reads, so that a wrong file cannot
/// make rinfra allocate without bound.
const MAX_IMPORT_BYTES: u64 = 16 * 1024 * 1024;

fn engine(e: impl Into<rinfra_engine::Error>) -> CliError {
    CliError::Engine(e.into())
}

/// Creates `name` in `p`: its config file (with a salt when a passphrase
/// is set, as `pulumi stack init` does), and selects it. The state appears
/// with the first command that writes one.
fn create(g: &Global, p: &Project, name: &str) -> Result<(), CliError> {
    check_stack_name(name).map_err(engine)?;
    // Every check comes before the first write.
    let pass = rinfra_engine::config::passphrase()
        .map_err(|message| engine(rinfra_engine::error::SecretsError::PassphraseFile { message }))?;
    let backend = context::backend_for(g, p)?;
    if p.exists(name, backend.as_ref()).map_err(engine)? {
        return Err(engine(ProjectError::StackExists { project: p.name.clone(), stack: name.to_string() }));
    }
    let path = p.config_path(name);
    let mut cfg = StackConfig { path: path.clone(), ..StackConfig::default() };
    if let Some(pass) = pass {
        cfg.ensure_salt(&pass).map_err(|d| engine(rinfra_engine::config::ConfigError::Passphrase(d.message)))?;
    }
    cfg.write().map_err(|source| engine(rinfra_engine::Error::Io { path: path.clone(), source }))?;
    p.select(name).map_err(|source| engine(rinfra_engine::Error::Io { path: p.state_dir(), source }))?;
    Ok(())
}

/// `stack init NAME`.
pub fn init(g: &Global, a: StackNameArg) -> Result<i32, CliError> {
    let p = context::project(g)?;
    create(g, &p, &a.name)?;
    output::line(&format!("Created stack `{}` in project `{}`; it is selected.", a.name, p.name));
    Ok(EXIT_OK)
}

/// `stack select NAME [--create]`.
pub fn select(g: &Global, a: StackSelectArgs) -> Result<i32, CliError> {
    let p = context::project(g)?;
    let backend = context::backend_for(g, &p)?;
    if a.create && !p.exists(&a.name, backend.as_ref()).map_err(engine)? {
        create(g, &p, &a.name)?;
        output::line(&format!("Created stack `{}`; it is selected.", a.name));
        return Ok(EXIT_OK);
    }
    p.existing(&a.name, backend.as_ref()).map_err(engine)?;
    p.select(&a.name).map_err(|source| engine(rinfra_engine::Error::Io { path: p.state_dir(), source }))?;
    output::line(&format!("Selected stack `{}`.", a.name));
    Ok(EXIT_OK)
}

/// The time of the last update a history shows.
fn last_update(h: &History) -> Option<String> {
    match h {
        History::Log(updates) => updates.last().map(|u| u.time.clone()),
        History::Versions(v) => v.last().map(|v| v.time.clone()),
        History::Unversioned(_) => None,
    }
}

/// `stack ls`: every stack with its resource count and last update.
pub fn ls(g: &Global, a: JsonArgs) -> Result<i32, CliError> {
    let p = context::project(g)?;
    let backend = context::backend_for(g, &p)?;
    let selected = p.selected();
    let mut rows = Vec::new();
    for name in p.stacks(backend.as_ref()).map_err(engine)? {
        let id = p.id(&name);
        let state = backend.load(&id).ok().flatten();
        let last = match &state {
            Some(_) => backend.history(&id).ok().and_then(|h| last_update(&h)),
            None => None,
        };
        rows.push(json!({
            "name": name,
            "current": selected.as_deref() == Some(name.as_str()),
            "resourceCount": state.map(|s| s.resources.len()),
            "lastUpdate": last,
        }));
    }
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
    // `-s` names the stack as for every other command; a second, different
    // name is a mistake, not a choice.
    let name = match (a.name, g.stack.clone()) {
        (Some(n), Some(s)) if n != s => {
            return Err(CliError::Flag {
                flag: "--stack",
                value: s,
                message: format!("names another stack than `{n}`; give one of them"),
            });
        }
        (Some(n), _) | (None, Some(n)) => n,
        (None, None) => match p.selected() {
            Some(n) => n,
            None => {
                let stacks = p.stacks(context::backend_for(g, &p)?.as_ref()).map_err(engine)?;
                return Err(engine(ProjectError::NoneSelected { project: p.name.clone(), stacks }));
            }
        },
    };
    let backend = context::backend_for(g, &p)?;
    p.existing(&name, backend.as_ref()).map_err(engine)?;
    let id = p.id(&name);
    let lock = backend.lock(&id, "stack rm")?;
    let count = match backend.load(&id)? {
        Some(s) => s.resources.len() + s.replaced.len() + s.pending.len(),
        None => 0,
    };
    if count > 0 && !a.force {
        return Err(CliError::StackNotEmpty { stack: name, count });
    }
    let forget =
        if count > 0 { format!(" and forget its {count} resources (they stay in the cloud)") } else { String::new() };
    if !a.yes && !output::confirm(&format!("Remove stack `{name}`{forget}?")) {
        output::line("\nRemove cancelled.");
        return Ok(super::EXIT_ERROR);
    }
    backend.remove(&id)?;
    let config = p.config_path(&name);
    match std::fs::remove_file(&config) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => return Err(engine(rinfra_engine::Error::Io { path: config, source })),
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

/// `stack history`: the updates recorded for the stack, or the stored
/// versions of its state in a versioned bucket.
pub fn history(g: &Global, a: JsonArgs) -> Result<i32, CliError> {
    let c = context::open(g)?;
    let name = &c.s.stack.name;
    match c.s.backend.history(&c.s.id)? {
        History::Log(updates) if a.json => {
            output::json(&json!({"version": output::JSON_VERSION, "stack": name, "updates": updates}));
        }
        History::Log(updates) => {
            if updates.is_empty() {
                output::line(&format!("Stack `{name}` has no updates yet."));
            }
            for u in updates.iter().rev() {
                let summary: Vec<String> = u.summary.iter().map(|(k, n)| format!("{k} {n}")).collect();
                let result = if u.ok { "succeeded" } else { "failed" };
                let counts = if summary.is_empty() { "no changes".to_string() } else { summary.join(", ") };
                output::line(&format!("#{:<4} {}  {:<18} {result:<9}  {counts}", u.serial, u.time, u.command));
            }
        }
        History::Versions(versions) if a.json => {
            output::json(&json!({"version": output::JSON_VERSION, "stack": name, "versions": versions}));
        }
        History::Versions(versions) => {
            for (i, v) in versions.iter().enumerate().rev() {
                let current = if v.latest { "  (current)" } else { "" };
                output::line(&format!("#{:<4} {}  {:>8} bytes  {}{current}", i + 1, v.time, v.size, v.id));
            }
            output::line("\n`rinfra stack export --version N` prints one.");
        }
        History::Unversioned(why) => output::line(&why),
    }
    Ok(EXIT_OK)
}

/// `stack export [--version N]`: the state as stored (secrets stay
/// encrypted), checked first.
pub fn export(g: &Global, a: StackExportArgs) -> Result<i32, CliError> {
    let c = context::open(g)?;
    let (backend, id) = (&c.s.backend, &c.s.id);
    let version = match a.version.as_deref() {
        None => None,
        Some(v) => Some(match (v.parse::<usize>(), backend.history(id)?) {
            (Ok(n), History::Versions(all)) => match n.checked_sub(1).and_then(|i| all.get(i)) {
                Some(found) => found.id.clone(),
                None => {
                    return Err(CliError::Flag {
                        flag: "--version",
                        value: v.to_string(),
                        message: format!("the state has {} versions", all.len()),
                    });
                }
            },
            (_, History::Unversioned(why)) => {
                return Err(CliError::Flag { flag: "--version", value: v.to_string(), message: why });
            }
            _ => v.to_string(),
        }),
    };
    let location = PathBuf::from(backend.location(id));
    let bytes = backend
        .export(id, version.as_deref())?
        .ok_or_else(|| engine(rinfra_engine::Error::NoState(backend.location(id))))?;
    let state = rinfra_state::verify_bytes(&location, &bytes)?;
    rinfra_state::check_owner(&location, &state, id)?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    match a.file {
        Some(f) => write_private(&f, text.as_bytes())?,
        None => output::raw(&text),
    }
    Ok(EXIT_OK)
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(bytes))
        .map_err(|source| engine(rinfra_engine::Error::Io { path: path.to_path_buf(), source }))
}

/// `stack import`: replaces the state with an export, after checking its
/// checksum, its stack, its secrets and its serial. It is written as every
/// state is: sealed, and only over the version this run read.
pub fn import(g: &Global, a: StackImportArgs) -> Result<i32, CliError> {
    let mut c = context::open(g)?;
    let (label, bytes) = read_input(a.file.as_deref())?;
    let label = Path::new(&label);
    let mut imported = rinfra_state::verify_bytes(label, &bytes)?;
    drop(bytes);
    rinfra_state::check_owner(label, &imported, &c.s.id)?;
    let _lock = c.lock("stack import")?;
    // Its secrets must open with this stack's key; they are sealed again on
    // the way in, along with any the export held in clear.
    c.s.open_secrets(&mut imported)?;
    if let Some(current) = c.s.backend.load(&c.s.id)? {
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
        // A forced import takes the place of the stack's state, and keeps
        // its lineage, which the saves of other runs check.
        imported.lineage = current.lineage;
    }
    c.s.save(&mut imported)?;
    c.s.record(&imported, "stack import", true, Default::default())?;
    output::line(&format!(
        "Imported the state into stack `{}`: {} resources, serial {}.",
        c.s.stack.name,
        imported.resources.len(),
        imported.serial
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
        return Err(CliError::ImportRefused { reason: format!("{label} is larger than 16 MiB") });
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
