//! Loading and saving state files: atomically, privately, and verified.

use crate::crypt::Sealer;
use crate::{Result, STATE_VERSION, StackId, StateError, StateFile};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The path of the backup kept beside `path` on every write.
pub fn backup_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".bak");
    PathBuf::from(name)
}

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StateError + 'a {
    move |source| StateError::Io { action, path: path.to_path_buf(), source }
}

/// Reads and checks a state file without tying it to a stack.
///
/// Refuses truncated or invalid JSON, an unknown version, and content that
/// does not match its checksum.
pub fn verify(path: &Path) -> Result<StateFile> {
    let bytes = fs::read(path).map_err(io("read", path))?;
    verify_bytes(path, &bytes)
}

/// Checks a state document given as bytes, as [`verify`] checks a file;
/// `path` names where the bytes came from, for messages.
pub fn verify_bytes(path: &Path, bytes: &[u8]) -> Result<StateFile> {
    // Read the version first, so that a newer format is reported as such
    // rather than as a field the parser does not know.
    let raw: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| StateError::Corrupt { path: path.to_path_buf(), reason: e.to_string() })?;
    match raw.get("version").and_then(serde_json::Value::as_u64) {
        Some(v) if v == u64::from(STATE_VERSION) => {}
        Some(v) => {
            return Err(StateError::Version {
                path: path.to_path_buf(),
                found: u32::try_from(v).unwrap_or(u32::MAX),
                supported: STATE_VERSION,
            });
        }
        None => {
            return Err(StateError::Corrupt { path: path.to_path_buf(), reason: "no `version` field".into() });
        }
    }
    let state: StateFile = serde_json::from_value(raw)
        .map_err(|e| StateError::Corrupt { path: path.to_path_buf(), reason: e.to_string() })?;
    let computed = state.compute_checksum();
    if state.checksum != computed {
        return Err(StateError::Checksum { path: path.to_path_buf(), found: state.checksum.clone(), computed });
    }
    Ok(state)
}

/// Loads the state of stack `id` from `path`, or `None` when there is no
/// file. A state of another stack or project is refused.
pub fn load(path: &Path, id: &StackId) -> Result<Option<StateFile>> {
    if !path.exists() {
        return Ok(None);
    }
    let state = verify(path)?;
    check_owner(path, &state, id)?;
    Ok(Some(state))
}

/// Refuses `state` when it belongs to a stack other than `id`.
pub fn check_owner(path: &Path, state: &StateFile, id: &StackId) -> Result<()> {
    let found = state.id();
    if found != *id {
        return Err(StateError::ForeignStack {
            path: path.to_path_buf(),
            found: found.to_string(),
            expected: id.to_string(),
        });
    }
    Ok(())
}

/// Loads the state of stack `id`, or starts an empty one.
pub fn load_or_new(path: &Path, id: &StackId) -> Result<StateFile> {
    Ok(load(path, id)?.unwrap_or_else(|| StateFile::new(id)))
}

/// Writes `state` to `path` atomically and bumps its serial.
///
/// The previous file is copied to `<path>.bak` first. The new content goes
/// to a temporary file in the same directory, is flushed to disk, and is
/// renamed over the old one, so a crash at any moment leaves either the old
/// or the new state, never a mix. Every file is created with mode 0600
/// because states hold the details of a whole infrastructure.
pub fn save(path: &Path, state: &mut StateFile) -> Result<()> {
    save_sealed(path, state, None)
}

/// Writes `state` as [`save`] does, with the values `sealer` names
/// encrypted in the file; `state` itself keeps them in clear.
pub fn save_sealed(path: &Path, state: &mut StateFile, sealer: Option<&Sealer>) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir).map_err(io("create the directory of", path))?;
    let bytes = encode(path, state, sealer)?;

    if path.exists() {
        // Never overwrite another stack's history: if the file on disk now
        // has a different lineage (it was swapped while we ran), stop. The
        // lineage is near the top, so only the head is read.
        if let Some(lineage) = lineage_on_disk(path)?.filter(|l| *l != state.lineage) {
            state.serial -= 1;
            return Err(StateError::ForeignLineage {
                path: path.to_path_buf(),
                found: lineage,
                expected: state.lineage.clone(),
            });
        }
        // The backup is a second name for the previous file, not a copy:
        // after the rename below it is the only name left for it.
        let bak = backup_path(path);
        let mut bak_tmp = bak.as_os_str().to_owned();
        bak_tmp.push(format!(".tmp.{}", std::process::id()));
        let bak_tmp = PathBuf::from(bak_tmp);
        let _ = fs::remove_file(&bak_tmp);
        fs::hard_link(path, &bak_tmp).map_err(io("back up", path))?;
        fs::rename(&bak_tmp, &bak).map_err(io("back up", path))?;
    }
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(format!(".tmp.{}", std::process::id()));
    let tmp = PathBuf::from(tmp_name);
    write_synced(&tmp, &bytes)?;
    fs::rename(&tmp, path).map_err(io("replace", path))?;
    // The rename is durable only once the directory entry is on disk.
    if let Ok(d) = File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// The next version of `state` as stored: its serial bumped, the values
/// `sealer` names encrypted, and its checksum set. `state` keeps its
/// values in clear and takes the new serial and checksum; on an error it
/// is left as it was. `path` names the destination, for messages.
pub fn encode(path: &Path, state: &mut StateFile, sealer: Option<&Sealer>) -> Result<Vec<u8>> {
    state.serial += 1;
    let mut stored = match sealer {
        Some(s) => s.seal(state).map_err(|source| {
            state.serial -= 1;
            StateError::Secret { path: path.to_path_buf(), source }
        })?,
        None => state.clone(),
    };
    stored.checksum = stored.compute_checksum();
    let mut bytes = match serde_json::to_vec_pretty(&stored) {
        Ok(b) => b,
        Err(e) => {
            state.serial -= 1;
            return Err(StateError::Corrupt { path: path.to_path_buf(), reason: e.to_string() });
        }
    };
    state.checksum = stored.checksum;
    bytes.push(b'\n');
    Ok(bytes)
}

/// The lineage recorded in the file at `path`, read from its first bytes.
fn lineage_on_disk(path: &Path) -> Result<Option<String>> {
    use std::io::Read;
    let mut head = vec![0u8; 4096];
    let mut f = File::open(path).map_err(io("read", path))?;
    let n = f.read(&mut head).map_err(io("read", path))?;
    let text = String::from_utf8_lossy(&head[..n]);
    Ok(text.split_once("\"lineage\"").and_then(|(_, rest)| {
        let start = rest.find('"')? + 1;
        let len = rest[start..].find('"')?;
        Some(rest[start..start + len].to_string())
    }))
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f =
        OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path).map_err(io("write", path))?;
    f.write_all(bytes).map_err(io("write", path))?;
    f.sync_all().map_err(io("flush", path))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn save_then_load_round_trips_and_bumps_serial() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        let mut s = StateFile::new(&StackId::single("demo"));
        s.outputs.insert("x".into(), serde_json::json!("y"));
        save(&path, &mut s).unwrap();
        save(&path, &mut s).unwrap();
        let back = load(&path, &StackId::single("demo")).unwrap().unwrap();
        assert_eq!(back.serial, 2);
        assert_eq!(back, s);
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let bak = fs::metadata(backup_path(&path)).unwrap().permissions().mode() & 0o777;
        assert_eq!(bak, 0o600);
        assert_eq!(verify(&backup_path(&path)).unwrap().serial, 1);
    }

    #[test]
    fn tampered_state_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        let mut s = StateFile::new(&StackId::single("demo"));
        save(&path, &mut s).unwrap();
        let text = fs::read_to_string(&path).unwrap().replace("\"serial\": 1", "\"serial\": 7");
        fs::write(&path, &text).unwrap();
        assert!(matches!(load(&path, &StackId::single("demo")), Err(StateError::Checksum { .. })));
        assert_eq!(fs::read_to_string(&path).unwrap(), text);
    }

    #[test]
    fn truncated_foreign_and_future_states_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        let mut s = StateFile::new(&StackId::single("demo"));
        save(&path, &mut s).unwrap();
        assert!(matches!(load(&path, &StackId::single("other")), Err(StateError::ForeignStack { .. })));
        let text = fs::read_to_string(&path).unwrap();
        fs::write(&path, &text[..text.len() / 2]).unwrap();
        assert!(matches!(load(&path, &StackId::single("demo")), Err(StateError::Corrupt { .. })));
        fs::write(&path, text.replace("\"version\": 1", "\"version\": 9")).unwrap();
        assert!(matches!(load(&path, &StackId::single("demo")), Err(StateError::Version { found: 9, .. })));
    }

    #[test]
    fn a_state_with_a_foreign_lineage_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        let mut ours = StateFile::new(&StackId::single("demo"));
        save(&path, &mut ours).unwrap();
        let mut theirs = StateFile::new(&StackId::single("demo"));
        save(&dir.path().join("other.json"), &mut theirs).unwrap();
        fs::copy(dir.path().join("other.json"), &path).unwrap();
        let before = fs::read(&path).unwrap();
        assert!(matches!(save(&path, &mut ours), Err(StateError::ForeignLineage { .. })));
        assert_eq!(fs::read(&path).unwrap(), before);
    }

    #[test]
    fn missing_state_is_none() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(&dir.path().join("none.json"), &StackId::single("demo")).unwrap().is_none());
    }
}
