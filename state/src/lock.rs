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
    /// A random id of this taking of the lock, so that two holders never
    /// look alike (containers share hostnames and small pids).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
}

/// What a lock file says about its stack's state.
#[derive(Debug, Clone, PartialEq)]
pub enum LockStatus {
    /// There is no lock file.
    Free,
    /// The lock is held by this holder.
    Held(LockInfo),
    /// A lock file exists but is empty or not a lock record, as an older
    /// rinfra killed between creating and writing it could leave.
    Unreadable {
        /// Why it could not be parsed.
        reason: String,
    },
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

impl LockStatus {
    /// What a lock's bytes say: a holder, or nothing usable (empty, or not
    /// a lock record), as an older rinfra killed while writing one left.
    pub fn of_bytes(bytes: &[u8]) -> LockStatus {
        if bytes.is_empty() {
            return LockStatus::Unreadable { reason: "the file is empty".to_string() };
        }
        match serde_json::from_slice(bytes) {
            Ok(info) => LockStatus::Held(info),
            Err(e) => LockStatus::Unreadable { reason: e.to_string() },
        }
    }

    /// The error that refuses a run at the lock `path`; `None` when free.
    pub fn refusal(self, path: PathBuf) -> Option<StateError> {
        match self {
            LockStatus::Free => None,
            LockStatus::Held(holder) => {
                let stale = holder.is_stale_here();
                Some(StateError::Locked { path, holder: Box::new(holder), stale })
            }
            LockStatus::Unreadable { reason } => Some(StateError::LockUnreadable { path, reason }),
        }
    }
}

impl LockInfo {
    /// A lock record for this process running `command`, now.
    pub fn here(command: &str) -> LockInfo {
        LockInfo {
            pid: std::process::id(),
            host: hostname(),
            command: command.to_string(),
            started: SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
            nonce: Some(uuid::Uuid::new_v4().simple().to_string()),
        }
    }

    /// Whether the holder is a process of this host that is gone.
    pub fn is_stale_here(&self) -> bool {
        self.host == hostname() && !pid_alive(self.pid)
    }
}

impl StateLock {
    /// The lock file that guards the state at `state_path`.
    pub fn path_for(state_path: &Path) -> PathBuf {
        let mut name = state_path.as_os_str().to_owned();
        name.push(".lock");
        PathBuf::from(name)
    }

    /// Takes the lock for `state_path`, failing at once if it is held.
    ///
    /// The lock file appears with its whole content or not at all: the
    /// content is written and synced to a temporary file first, which is then
    /// hard-linked to the lock path. Linking fails if a lock already exists,
    /// so taking the lock stays exclusive, and a crash at any moment leaves at
    /// worst a stray temporary file, never an empty or partial lock.
    pub fn acquire(state_path: &Path, command: &str) -> Result<StateLock> {
        let path = Self::path_for(state_path);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(|source| StateError::Io {
                action: "create the directory of",
                path: path.clone(),
                source,
            })?;
        }
        let info = LockInfo::here(command);
        let body = serde_json::to_vec(&info).map_err(|e| StateError::Io {
            action: "write",
            path: path.clone(),
            source: std::io::Error::other(e),
        })?;
        // A lock that disappears between our failed link and our read of it
        // was released meanwhile, so the link is tried again; a few attempts
        // are plenty, as each one needs another process to win a race.
        for _ in 0..3 {
            if Self::publish(&path, &body)? {
                return Ok(StateLock { path });
            }
            if let Some(refused) = Self::status(&path)?.refusal(path.clone()) {
                return Err(refused);
            }
        }
        Err(StateError::Io {
            action: "create",
            path,
            source: std::io::Error::other("the lock was taken and released repeatedly by other processes"),
        })
    }

    /// Writes `body` to a unique temporary file next to `path` and links it
    /// to `path`. Returns false when `path` already exists. The temporary
    /// file is removed whatever happens.
    fn publish(path: &Path, body: &[u8]) -> Result<bool> {
        let mut tmp_name = path.as_os_str().to_owned();
        tmp_name.push(format!(".{}.{}.tmp", std::process::id(), uuid::Uuid::new_v4().simple()));
        let tmp = PathBuf::from(tmp_name);
        let written = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .and_then(|mut f| f.write_all(body).and_then(|()| f.sync_all()));
        if let Err(source) = written {
            let _ = fs::remove_file(&tmp);
            return Err(StateError::Io { action: "write", path: tmp, source });
        }
        let linked = fs::hard_link(&tmp, path);
        // The link, if made, keeps the content alive under the lock's name;
        // the temporary name is no longer needed either way.
        let _ = fs::remove_file(&tmp);
        match linked {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(source) => Err(StateError::Io { action: "create", path: path.to_path_buf(), source }),
        }
    }

    /// Reads the lock file at `lock_path`: whether there is none, who holds
    /// it, or that it exists but cannot be parsed.
    pub fn status(lock_path: &Path) -> Result<LockStatus> {
        let bytes = match fs::read(lock_path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(LockStatus::Free),
            Err(source) => return Err(StateError::Io { action: "read", path: lock_path.to_path_buf(), source }),
        };
        Ok(LockStatus::of_bytes(&bytes))
    }

    /// Removes the lock for `state_path` whoever holds it, including a lock
    /// file that cannot be parsed. Returns whether there was one.
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
    #[test]
    fn garbled_lock_file_is_reported_and_force_unlock_removes_it() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("s.json");
        let lock = StateLock::path_for(&state);
        fs::write(&lock, b"{\"pid\": 12").unwrap();
        match StateLock::acquire(&state, "up") {
            Err(e @ StateError::LockUnreadable { .. }) => {
                let text = e.to_string();
                assert!(text.contains("cannot be read"), "{text}");
                assert!(text.contains("rinfra unlock --force"), "{text}");
                assert!(!text.contains("pid 0"), "{text}");
            }
            other => panic!("expected LockUnreadable, got {other:?}"),
        }
        assert!(matches!(StateLock::status(&lock).unwrap(), LockStatus::Unreadable { .. }));
        assert!(StateLock::force_unlock(&state).unwrap());
        assert!(!lock.exists());
        assert!(StateLock::acquire(&state, "up").is_ok());
    }

    #[test]
    fn empty_lock_file_is_reported_and_force_unlock_removes_it() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("s.json");
        let lock = StateLock::path_for(&state);
        fs::write(&lock, b"").unwrap();
        let err = StateLock::acquire(&state, "up").unwrap_err();
        assert!(matches!(err, StateError::LockUnreadable { .. }), "{err:?}");
        assert!(!err.to_string().contains("pid 0"), "{err}");
        assert!(matches!(StateLock::status(&lock).unwrap(), LockStatus::Unreadable { .. }));
        assert!(StateLock::force_unlock(&state).unwrap());
        assert_eq!(StateLock::status(&lock).unwrap(), LockStatus::Free);
    }

    #[test]
    fn acquire_never_leaves_a_partial_or_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("s.json");
        let lock = StateLock::path_for(&state);
        let first = StateLock::acquire(&state, "up").unwrap();
        // The lock is complete the moment it exists.
        match StateLock::status(&lock).unwrap() {
            LockStatus::Held(info) => {
                assert_eq!(info.pid, std::process::id());
                assert_eq!(info.command, "up");
            }
            other => panic!("expected Held, got {other:?}"),
        }
        match StateLock::acquire(&state, "destroy") {
            Err(StateError::Locked { holder, .. }) => {
                assert_eq!(holder.pid, std::process::id());
                assert_eq!(holder.command, "up");
            }
            other => panic!("expected Locked, got {other:?}"),
        }
        // Only the lock itself is in the directory: no temporary file was left
        // behind, neither by the winner nor by the loser.
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![lock.file_name().unwrap().to_owned()]);
        drop(first);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
