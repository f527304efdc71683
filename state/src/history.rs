//! A stack's update history: one JSON line per command that wrote its
//! state, beside the state (`<state>.history.jsonl`).

use crate::{Result, StateError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The longest history line read back; a longer one is skipped, so that a
/// damaged log cannot make rinfra allocate without bound.
const MAX_LINE: usize = 64 * 1024;

/// One update of a stack.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Update {
    /// The state's serial after the update.
    pub serial: u64,
    /// When it ended, as RFC 3339 UTC.
    pub time: String,
    /// The command, such as `up` or `destroy`.
    pub command: String,
    /// Whether it succeeded.
    pub ok: bool,
    /// Operations by kind (`create`, `update`, `delete`, …) with their counts.
    #[serde(default)]
    pub summary: BTreeMap<String, u64>,
}

/// The history log of the state at `state_path`.
pub fn path_for(state_path: &Path) -> PathBuf {
    let mut name = state_path.as_os_str().to_owned();
    name.push(".history.jsonl");
    PathBuf::from(name)
}

/// Appends `update` to the history of the state at `state_path`.
pub fn append(state_path: &Path, update: &Update) -> Result<()> {
    let path = path_for(state_path);
    let io = |source| StateError::Io { action: "append to", path: path.clone(), source };
    let mut line = serde_json::to_vec(update).unwrap_or_default();
    line.push(b'\n');
    let mut f = OpenOptions::new().create(true).append(true).mode(0o600).open(&path).map_err(io)?;
    // One write call per line keeps concurrent appends from interleaving.
    f.write_all(&line).map_err(io)
}

/// The updates recorded for the state at `state_path`, oldest first; lines
/// that cannot be read are skipped.
pub fn read(state_path: &Path) -> Result<Vec<Update>> {
    let path = path_for(state_path);
    let f = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(StateError::Io { action: "read", path, source }),
    };
    let mut out = Vec::new();
    let mut reader = BufReader::new(f);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = reader
            .by_ref()
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(|source| StateError::Io { action: "read", path: path.clone(), source })?;
        if n == 0 {
            break;
        }
        if buf.len() > MAX_LINE {
            // Skip the rest of an overlong line without holding it.
            if !buf.ends_with(b"\n") {
                reader.skip_until(b'\n').map_err(|source| StateError::Io {
                    action: "read",
                    path: path.clone(),
                    source,
                })?;
            }
            continue;
        }
        if let Ok(u) = serde_json::from_slice::<Update>(&buf) {
            out.push(u);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_and_reads_back_skipping_damage() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("dev.json");
        let u = Update { serial: 3, time: "t".into(), command: "up".into(), ok: true, summary: BTreeMap::new() };
        append(&state, &u).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(path_for(&state))
            .unwrap()
            .write_all(format!("not json\n{}\n", "x".repeat(MAX_LINE + 10)).as_bytes())
            .unwrap();
        append(&state, &Update { serial: 4, ..u.clone() }).unwrap();
        let got = read(&state).unwrap();
        assert_eq!(got.iter().map(|u| u.serial).collect::<Vec<_>>(), vec![3, 4]);
    }
}
