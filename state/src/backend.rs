//! Where states live: the `Backend` trait, and the local backend.
//!
//! Every command reaches a stack's state, lock and history through a
//! backend, so the local directory and a shared bucket behave alike. The
//! calls are blocking: a remote backend waits for its answer, which keeps
//! the journal's "record, then call the cloud" order plain.

use crate::crypt::Sealer;
use crate::history::{self, Update};
use crate::{LockStatus, Result, StackId, StateError, StateFile, StateLock};
use std::path::{Path, PathBuf};

/// A held lock; dropping it releases the lock.
pub trait Lease: Send {
    /// A function that releases the lock from an interrupt handler, when
    /// the process must exit without unwinding.
    fn releaser(&self) -> Box<dyn Fn() + Send + Sync>;
}

/// One stored version of a state, in a backend that keeps them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Version {
    /// The backend's id of the version.
    pub id: String,
    /// When it was written, as RFC 3339 UTC.
    pub time: String,
    /// Its size in bytes.
    pub size: u64,
    /// Whether it is the current version.
    pub latest: bool,
}

/// A stack's history, as its backend keeps it.
#[derive(Debug, Clone, PartialEq)]
pub enum History {
    /// A log of updates, one per command that wrote the state.
    Log(Vec<Update>),
    /// The stored versions of the state, oldest first.
    Versions(Vec<Version>),
    /// The backend keeps no history (a bucket without versioning).
    Unversioned(String),
}

/// Where the states, locks and histories of stacks live.
pub trait Backend: Send + Sync + std::fmt::Debug {
    /// Where stack `id`'s state is, for messages.
    fn location(&self, id: &StackId) -> String;
    /// The state of `id`, checked, or `None` when it has none.
    fn load(&self, id: &StackId) -> Result<Option<StateFile>>;
    /// Writes `state`, bumping its serial, with the values `sealer` names
    /// encrypted. Never overwrites a state written by someone else since
    /// this backend read or wrote it.
    fn save(&self, id: &StackId, state: &mut StateFile, sealer: Option<&Sealer>) -> Result<()>;
    /// Takes the lock of `id` for `command`, failing at once when it is held.
    fn lock(&self, id: &StackId, command: &str) -> Result<Box<dyn Lease>>;
    /// Who holds the lock of `id`.
    fn lock_status(&self, id: &StackId) -> Result<LockStatus>;
    /// Removes the lock of `id`, whoever holds it; returns whether there was one.
    fn force_unlock(&self, id: &StackId) -> Result<bool>;
    /// Whether `id` has a state.
    fn exists(&self, id: &StackId) -> Result<bool>;
    /// The stacks of `project` that have a state.
    fn stacks(&self, project: &str) -> Result<Vec<String>>;
    /// Removes the state of `id`, its backup and its history.
    fn remove(&self, id: &StackId) -> Result<()>;
    /// Records one update in the history of `id`, where the backend keeps a
    /// log; a versioned store needs none.
    fn record(&self, id: &StackId, update: &Update) -> Result<()>;
    /// The history of `id`.
    fn history(&self, id: &StackId) -> Result<History>;
    /// The bytes of the state of `id` as stored, or of one stored version.
    fn export(&self, id: &StackId, version: Option<&str>) -> Result<Option<Vec<u8>>>;
}

/// States in local files: `<dir>/<stack>.json` for a project's stacks, or
/// one fixed file (`--state`, or a single-file program's).
#[derive(Debug, Clone)]
pub struct LocalBackend {
    layout: Layout,
}

#[derive(Debug, Clone)]
enum Layout {
    Dir(PathBuf),
    File(PathBuf),
}

impl LocalBackend {
    /// States as `<dir>/<stack>.json`.
    pub fn dir(dir: impl Into<PathBuf>) -> LocalBackend {
        LocalBackend { layout: Layout::Dir(dir.into()) }
    }

    /// One state file, whatever the stack.
    pub fn file(path: impl Into<PathBuf>) -> LocalBackend {
        LocalBackend { layout: Layout::File(path.into()) }
    }

    /// The state file of `id`.
    pub fn path(&self, id: &StackId) -> PathBuf {
        match &self.layout {
            Layout::Dir(d) => d.join(format!("{}.json", id.stack)),
            Layout::File(p) => p.clone(),
        }
    }
}

struct LocalLease {
    // Held for its Drop, which removes the lock file.
    _lock: StateLock,
    path: PathBuf,
}

impl Lease for LocalLease {
    fn releaser(&self) -> Box<dyn Fn() + Send + Sync> {
        let path = self.path.clone();
        Box::new(move || {
            let _ = std::fs::remove_file(&path);
        })
    }
}

fn remove_if_there(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(StateError::Io { action: "remove", path: path.to_path_buf(), source }),
    }
}

impl Backend for LocalBackend {
    fn location(&self, id: &StackId) -> String {
        self.path(id).display().to_string()
    }

    fn load(&self, id: &StackId) -> Result<Option<StateFile>> {
        crate::load(&self.path(id), id)
    }

    fn save(&self, id: &StackId, state: &mut StateFile, sealer: Option<&Sealer>) -> Result<()> {
        crate::save_sealed(&self.path(id), state, sealer)
    }

    fn lock(&self, id: &StackId, command: &str) -> Result<Box<dyn Lease>> {
        let path = self.path(id);
        let lock = StateLock::acquire(&path, command)?;
        Ok(Box::new(LocalLease { _lock: lock, path: StateLock::path_for(&path) }))
    }

    fn lock_status(&self, id: &StackId) -> Result<LockStatus> {
        StateLock::status(&StateLock::path_for(&self.path(id)))
    }

    fn force_unlock(&self, id: &StackId) -> Result<bool> {
        StateLock::force_unlock(&self.path(id))
    }

    fn exists(&self, id: &StackId) -> Result<bool> {
        // A valid file of another stack or program at this path is not this
        // stack's state, as `stacks` also says; a damaged one is, so that
        // loading it reports the damage and nothing overwrites it.
        let path = self.path(id);
        Ok(path.is_file() && crate::verify(&path).map_or(true, |s| s.id() == *id))
    }

    fn stacks(&self, project: &str) -> Result<Vec<String>> {
        let Layout::Dir(dir) = &self.layout else { return Ok(Vec::new()) };
        let mut out = Vec::new();
        let Ok(entries) = std::fs::read_dir(dir) else { return Ok(out) };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(stack) = name.strip_suffix(".json") else { continue };
            // Only states of this project count: a leftover of a
            // single-file program is not one of its stacks.
            if crate::verify(&e.path()).is_ok_and(|s| s.project.as_deref() == Some(project)) {
                out.push(stack.to_string());
            }
        }
        out.sort();
        Ok(out)
    }

    fn remove(&self, id: &StackId) -> Result<()> {
        let path = self.path(id);
        for p in [crate::backup_path(&path), history::path_for(&path), path.with_extension("drift.jsonl"), path] {
            remove_if_there(&p)?;
        }
        Ok(())
    }

    fn record(&self, id: &StackId, update: &Update) -> Result<()> {
        history::append(&self.path(id), update)
    }

    fn history(&self, id: &StackId) -> Result<History> {
        Ok(History::Log(history::read(&self.path(id))?))
    }

    fn export(&self, id: &StackId, version: Option<&str>) -> Result<Option<Vec<u8>>> {
        let path = self.path(id);
        if let Some(v) = version {
            return Err(StateError::NoVersions {
                location: path.display().to_string(),
                reason: format!(
                    "a local state keeps no versions (asked for {v}); only {} and its .bak",
                    path.display()
                ),
            });
        }
        match std::fs::read(&path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StateError::Io { action: "read", path, source }),
        }
    }
}
