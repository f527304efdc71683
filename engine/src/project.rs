//! Projects and their stacks, as Pulumi has them.
//!
//! A project is a directory with a `Pulumi.yaml` (or `Pulumi.yml`): the
//! program. A stack is one deployment of it (dev, staging, prod) with its
//! own config file, `Pulumi.<stack>.yaml`, beside the program, and its own
//! state and lock under `<project>/.rinfra/`. A single-file program given
//! by path (`-s stacks/old.yaml`) is still one stack, as before projects.

use crate::yaml::{Kind, parse_bytes};
use rinfra_state::backend::{Backend, LocalBackend};
use rinfra_state::{StackId, StateFile};
use std::path::{Path, PathBuf};

/// The names a project file may have, in the order they are looked for.
pub const PROJECT_FILES: &[&str] = &["Pulumi.yaml", "Pulumi.yml"];
/// The directory, inside the project, that holds states, locks and logs.
pub const STATE_DIR: &str = ".rinfra";
const SELECTED: &str = "selected-stack";
const MAX_STACK_NAME: usize = 100;

/// Why a project or stack could not be found.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    /// No project file here or above, and no stack file was given.
    #[error(
        "no Pulumi.yaml in {} or any directory above it; pass `-C DIR` for a project, or `-s FILE` for a single-file program",
        .0.display()
    )]
    NoProject(PathBuf),
    /// `-C` names a directory without a project file.
    #[error("{} has no Pulumi.yaml (or Pulumi.yml)", .0.display())]
    NotAProject(PathBuf),
    /// `main:` names a directory without a program.
    #[error("`main:` names {}, which has no Main.yaml (or Pulumi.yaml)", .0.display())]
    NoProgram(PathBuf),
    /// The project file has no usable `name:`.
    #[error("{}: the project has no `name:`; add `name: <project>` at the top", .0.display())]
    NoName(PathBuf),
    /// The project file could not be read.
    #[error("cannot read {}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// No stack was named and none is selected.
    #[error("no stack selected in project `{project}`{}", known(.stacks))]
    NoneSelected {
        /// The project.
        project: String,
        /// Its stacks.
        stacks: Vec<String>,
    },
    /// The stack does not exist.
    #[error("project `{project}` has no stack `{stack}`{}; create it with `rinfra stack init {stack}`", known(.stacks))]
    UnknownStack {
        /// The project.
        project: String,
        /// The name asked for.
        stack: String,
        /// Its stacks.
        stacks: Vec<String>,
    },
    /// The stack exists already.
    #[error("project `{project}` already has a stack `{stack}`; select it with `rinfra stack select {stack}`")]
    StackExists {
        /// The project.
        project: String,
        /// The stack.
        stack: String,
    },
    /// The name is not a valid stack name.
    #[error("`{0}` is not a valid stack name: use letters, digits, `-`, `_` and `.`, at most 100 characters")]
    BadName(String),
    /// `-s` is both a file and a stack.
    #[error(
        "`{0}` is both a file in this directory and a stack of project `{1}`; write `./{0}` for the file, or run from another directory for the stack"
    )]
    Ambiguous(String, String),
    /// `-s` names a path that does not exist.
    #[error("no stack file {}", .0.display())]
    NoFile(PathBuf),
    /// The project file is not valid YAML.
    #[error(transparent)]
    Invalid(Box<crate::load::LoadError>),
    /// The backend could not be asked.
    #[error(transparent)]
    Backend(#[from] rinfra_state::StateError),
    /// `-s` names a project file or directory rather than a stack.
    #[error("{} is a project; pass `-C {}` and name a stack with `-s NAME`", .0.display(), .1.display())]
    ProjectNotStack(PathBuf, PathBuf),
}

fn known(stacks: &[String]) -> String {
    if stacks.is_empty() { String::new() } else { format!(" (it has: {})", stacks.join(", ")) }
}

/// A project: its directory, program file and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    /// The directory that holds the program.
    pub dir: PathBuf,
    /// The project file, `Pulumi.yaml` or `Pulumi.yml`.
    pub file: PathBuf,
    /// The file holding the program: the project file, or `Main.yaml` in
    /// the directory `main:` names (or beside the project file), as
    /// Pulumi YAML reads it.
    pub program: PathBuf,
    /// The program's `name:`.
    pub name: String,
    /// The program's `backend: url:`, where its states live.
    pub backend_url: Option<String>,
}

/// What a command runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A single-file program, with its one stack.
    File(PathBuf),
    /// A stack of a project.
    Stack {
        /// The project.
        project: Project,
        /// The stack's name.
        stack: String,
    },
}

/// Checks a stack name as Pulumi allows it.
pub fn check_stack_name(name: &str) -> Result<(), ProjectError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_STACK_NAME
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if ok { Ok(()) } else { Err(ProjectError::BadName(name.to_string())) }
}

impl Project {
    /// The project in `dir`, which must hold a project file.
    pub fn at(dir: &Path) -> Result<Project, ProjectError> {
        let file = PROJECT_FILES
            .iter()
            .map(|f| dir.join(f))
            .find(|p| p.is_file())
            .ok_or_else(|| ProjectError::NotAProject(dir.to_path_buf()))?;
        let bytes = std::fs::read(&file).map_err(|source| ProjectError::Io { path: file.clone(), source })?;
        // Only the name and the backend are read here; the whole program is
        // checked, with located errors, when a command loads it.
        let root = match parse_bytes(&bytes) {
            Ok(r) => r,
            Err(d) => {
                return Err(ProjectError::Invalid(Box::new(crate::load::LoadError::Invalid {
                    path: file.clone(),
                    source_text: String::from_utf8_lossy(&bytes).into_owned(),
                    diagnostics: crate::diag::Diagnostics(vec![d]),
                })));
            }
        };
        let top = root.as_map();
        let get = |key: &str| top.and_then(|m| m.iter().find(|(k, _)| k.text == key)).map(|(_, v)| v);
        let name = match get("name").map(|v| &v.kind) {
            Some(Kind::Str(s)) if !s.is_empty() => s.clone(),
            _ => return Err(ProjectError::NoName(file.clone())),
        };
        let backend_url = get("backend")
            .and_then(|b| b.as_map())
            .and_then(|m| m.iter().find(|(k, _)| k.text == "url"))
            .and_then(|(_, v)| match &v.kind {
                Kind::Str(s) if !s.is_empty() => Some(s.clone()),
                _ => None,
            });
        let main = match get("main").map(|v| &v.kind) {
            Some(Kind::Str(m)) => Some(dir.join(m)),
            _ => None,
        };
        let program = match &main {
            Some(m) => ["Main.yaml", "Main.yml", "Pulumi.yaml", "Pulumi.yml"]
                .iter()
                .map(|f| m.join(f))
                .find(|p| p.is_file())
                .ok_or_else(|| ProjectError::NoProgram(m.clone()))?,
            None => ["Main.yaml", "Main.yml"].iter().map(|f| dir.join(f)).find(|p| p.is_file()).unwrap_or(file.clone()),
        };
        Ok(Project { dir: dir.to_path_buf(), file, program, name, backend_url })
    }

    /// The project in `start` or the nearest directory above it. When
    /// that is `start` itself, its paths are relative (`Pulumi.dev.yaml`),
    /// so that messages name files as the user sees them.
    pub fn find(start: &Path) -> Result<Option<Project>, ProjectError> {
        for dir in start.ancestors() {
            if PROJECT_FILES.iter().any(|f| dir.join(f).is_file()) {
                let shown = if dir == start { Path::new("") } else { dir };
                return Project::at(shown).map(Some);
            }
        }
        Ok(None)
    }

    /// The directory, as a path the file system accepts (`.` for the
    /// current one).
    fn dir_path(&self) -> &Path {
        if self.dir.as_os_str().is_empty() { Path::new(".") } else { &self.dir }
    }

    /// Where the project's states live.
    pub fn state_dir(&self) -> PathBuf {
        self.dir.join(STATE_DIR)
    }

    /// The state file of `stack`.
    pub fn state_path(&self, stack: &str) -> PathBuf {
        self.state_dir().join(format!("{stack}.json"))
    }

    /// The config file of `stack`: `Pulumi.<stack>.yaml` beside the
    /// program, with the program file's extension, as Pulumi names it.
    pub fn config_path(&self, stack: &str) -> PathBuf {
        let ext = self.file.extension().and_then(|e| e.to_str()).unwrap_or("yaml");
        self.dir.join(format!("Pulumi.{stack}.{ext}"))
    }

    /// The id of `stack` in this project.
    pub fn id(&self, stack: &str) -> StackId {
        StackId::of(&self.name, stack)
    }

    /// The selected stack, if any.
    pub fn selected(&self) -> Option<String> {
        let text = std::fs::read_to_string(self.state_dir().join(SELECTED)).ok()?;
        let name = text.trim().to_string();
        check_stack_name(&name).ok().map(|_| name)
    }

    /// Selects `stack` for later commands in this project.
    pub fn select(&self, stack: &str) -> std::io::Result<()> {
        std::fs::create_dir_all(self.state_dir())?;
        std::fs::write(self.state_dir().join(SELECTED), format!("{stack}\n"))
    }

    /// Forgets the selection when it is `stack`.
    pub fn unselect(&self, stack: &str) {
        if self.selected().as_deref() == Some(stack) {
            let _ = std::fs::remove_file(self.state_dir().join(SELECTED));
        }
    }

    /// Whether `stack` exists: it has a state in `backend`, or a config file.
    pub fn exists(&self, stack: &str, backend: &dyn Backend) -> Result<bool, ProjectError> {
        Ok(self.config_path(stack).is_file() || backend.exists(&self.id(stack))?)
    }

    /// The project's stacks, sorted: those with a state in `backend` and
    /// those with a config file.
    pub fn stacks(&self, backend: &dyn Backend) -> Result<Vec<String>, ProjectError> {
        let mut out: std::collections::BTreeSet<String> = backend.stacks(&self.name)?.into_iter().collect();
        let ext = self.file.extension().and_then(|e| e.to_str()).unwrap_or("yaml");
        if let Ok(entries) = std::fs::read_dir(self.dir_path()) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let stack = name.strip_prefix("Pulumi.").and_then(|n| n.strip_suffix(&format!(".{ext}")));
                if let Some(stack) = stack.filter(|s| check_stack_name(s).is_ok()) {
                    out.insert(stack.to_string());
                }
            }
        }
        Ok(out.into_iter().collect())
    }

    /// Checks that `stack` exists.
    pub fn existing(&self, stack: &str, backend: &dyn Backend) -> Result<(), ProjectError> {
        check_stack_name(stack)?;
        if self.exists(stack, backend)? {
            return Ok(());
        }
        Err(ProjectError::UnknownStack {
            project: self.name.clone(),
            stack: stack.to_string(),
            stacks: self.stacks(backend)?,
        })
    }

    /// A state written for this program before it was a project: the
    /// single-file state `.rinfra/<project>.json`, in the current directory
    /// or the project's, that names the program and no project.
    pub fn legacy_state(&self) -> Option<PathBuf> {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        let file = format!("{}.json", self.name);
        [cwd.join(STATE_DIR).join(&file), self.state_dir().join(&file)]
            .into_iter()
            .find(|p| rinfra_state::verify(p).is_ok_and(|s: StateFile| s.project.is_none() && s.stack == self.name))
    }
}

/// Resolves `-s`/`--stack` and `-C`/`--cwd` into what a command runs on.
///
/// A value that contains `/` or ends in `.yaml`/`.yml` is a path to a
/// single-file program. A bare name is a stack of the project, unless it is
/// also a file in the current directory: a file and no such stack is the
/// file; both is an error. With no `-s`, the project's selected stack.
pub fn resolve(stack: Option<&str>, cwd: Option<&Path>) -> Result<Target, ProjectError> {
    let here = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let project = || match cwd {
        Some(dir) => Project::at(dir).map(Some),
        None => Project::find(&here),
    };
    let Some(value) = stack else {
        let p = project()?.ok_or_else(|| ProjectError::NoProject(here.clone()))?;
        let Some(selected) = p.selected() else {
            // The local listing: naming no stack must not reach a backend.
            let stacks = p.stacks(&LocalBackend::dir(p.state_dir())).unwrap_or_default();
            return Err(ProjectError::NoneSelected { project: p.name.clone(), stacks });
        };
        return Ok(Target::Stack { project: p, stack: selected });
    };
    let path = Path::new(value);
    let path_like = value.contains('/') || value.ends_with(".yaml") || value.ends_with(".yml");
    if path_like || (cwd.is_none() && path.is_file()) {
        if path.is_dir() || PROJECT_FILES.iter().any(|f| path.file_name().is_some_and(|n| n == *f)) {
            let dir = if path.is_dir() { path } else { path.parent().unwrap_or(Path::new(".")) };
            return Err(ProjectError::ProjectNotStack(path.to_path_buf(), dir.to_path_buf()));
        }
        if !path.is_file() {
            return Err(ProjectError::NoFile(path.to_path_buf()));
        }
        if !path_like {
            // A bare name that is a file here: the file, unless the project
            // around also has a stack of that name.
            if let Ok(Some(p)) = project() {
                let local = LocalBackend::dir(p.state_dir());
                if check_stack_name(value).is_ok() && p.exists(value, &local).unwrap_or(false) {
                    return Err(ProjectError::Ambiguous(value.to_string(), p.name));
                }
            }
        }
        return Ok(Target::File(path.to_path_buf()));
    }
    check_stack_name(value)?;
    let p = project()?.ok_or_else(|| ProjectError::NoProject(here.clone()))?;
    Ok(Target::Stack { project: p, stack: value.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_names() {
        for ok in ["dev", "prod-eu.1", "a_b"] {
            assert!(check_stack_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".hidden", "a/b", "a b", &"x".repeat(101)] {
            assert!(check_stack_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn finds_the_project_above_and_lists_stacks() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Pulumi.yaml"), "name: demo\nruntime: yaml\n").unwrap();
        std::fs::write(dir.path().join("Pulumi.dev.yaml"), "config: {}\n").unwrap();
        let sub = dir.path().join("a/b");
        std::fs::create_dir_all(&sub).unwrap();
        let p = Project::find(&sub).unwrap().unwrap();
        assert_eq!(p.name, "demo");
        let local = LocalBackend::dir(p.state_dir());
        assert_eq!(p.stacks(&local).unwrap(), vec!["dev".to_string()]);
        assert!(p.existing("dev", &local).is_ok());
        assert!(matches!(p.existing("prod", &local), Err(ProjectError::UnknownStack { .. })));
        p.select("dev").unwrap();
        assert_eq!(p.selected().as_deref(), Some("dev"));
    }
}
