//! An exclusive lock on a stack's state, so two writers never interleave.

use crate::{Result, StateError};
use serde::{Deserialize, Serialize};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Who holds a lock, written into the lock file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LockInfo {
    /// The holder's process id.
    pub pid: u32,
    /// The host it runs on.
    pub host: String,
    /// The command it runs, such as `up`.
    pub command: String,
    /// When it took the lock, as seconds since the Unix epoch.
    pub started: u64,
}

/// A held lock. Dropping it removes the lock file.
#[derive(Debug)]
pub struct StateLock {
    path: PathBuf,
}

fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".to_string())
}

fn pid_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else { return false };
    // Signal 0 checks for existence without delivering anything.
    // SAFETY: kill with signal 0 has no side effects.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

impl StateLock {
    /// The lock file that guards the state at `state_path`.
    pub fn path_for(state_path: &Path) -> PathBuf {
        let mut name = state_path.as_os_str().to_owned();
        name.push(".lock");
        PathBuf::from(name)
    }

    /// Takes the lock for `state_path`, failing at once if it is held.
    pub fn acquire(state_path: &Path, command: &str) -> Result<StateLock> {
        let path = Self::path_for(state_path);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(|source| StateError::Io {
                action: "create the directory of",
                path: path.clone(),
                source,
            })?;
        }
        let info = LockInfo {
            pid: std::process::id(),
            host: hostname(),
            command: command.to_string(),
            started: SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
        };
        match OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path) {
            Ok(mut f) => {
                let body = serde_json::to_vec(&info).unwrap_or_default();
                f.write_all(&body).and_then(|()| f.sync_all()).map_err(|source| StateError::Io {
                    action: "write",
                    path: path.clone(),
                    source,
                })?;
                Ok(StateLock { path })
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let holder = Self::holder(&path).unwrap_or(LockInfo {
                    pid: 0,
                    host: "unknown".into(),
                    command: "unknown".into(),
                    started: 0,
                });
                let stale = holder.host == info.host && !pid_alive(holder.pid);
                Err(StateError::Locked { path, holder, stale })
            }
            Err(source) => Err(StateError::Io { action: "create", path, source }),
        }
    }

    /// Reads who holds the lock at `lock_path`, if anyone.
    pub fn holder(lock_path: &Path) -> Option<LockInfo> {
        let bytes = fs::read(lock_path).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Removes the lock for `state_path` whoever holds it. Returns whether
    /// there was one.
    pub fn force_unlock(state_path: &Path) -> Result<bool> {
        let path = Self::path_for(state_path);
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(source) => Err(StateError::Io { action: "remove", path, source }),
        }
    }
}

impl Drop for StateLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_acquire_fails_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("s.json");
        let first = StateLock::acquire(&state, "up").unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(StateLock::path_for(&state)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        match StateLock::acquire(&state, "up") {
            Err(StateError::Locked { holder, stale, .. }) => {
                assert_eq!(holder.pid, std::process::id());
                assert!(!stale);
            }
            other => panic!("expected Locked, got {other:?}"),
        }
        drop(first);
        assert!(StateLock::acquire(&state, "up").is_ok());
    }
}
