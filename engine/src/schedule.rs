//! Drift detection on a schedule: one comparison of state and cloud, the
//! history file, the `--on-drift` hook, and remediation through the plan
//! and apply path of `up`.

use crate::drift::{Report, compare};
use crate::error::Error;
use crate::session::Session;
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

/// One drift comparison: a fresh read of the state and the cloud. A stack
/// that was never deployed is an error, not "in sync".
pub async fn check_once(s: &mut Session) -> Report {
    let started = SystemTime::now();
    let t = Instant::now();
    let state = match s.existing_state() {
        Ok(st) => st,
        Err(e) => return Report::failed(&s.stack.name, started, t.elapsed(), e.to_string()),
    };
    match s.refresh(&state).await {
        Ok(observed) => Report::new(&s.stack.name, started, t.elapsed(), compare(&state, &observed, &s.registry)),
        Err(e) => Report::failed(&s.stack.name, started, t.elapsed(), e.to_string()),
    }
}

/// Where `--every` appends its reports by default: `<dir>/<stack>.drift.jsonl`,
/// in the stack's local directory (beside a local state).
pub fn default_history(dir: &Path, stack: &str) -> PathBuf {
    dir.join(format!("{stack}.drift.jsonl"))
}

/// Appends one report as a JSON line, creating the file with mode 0600.
pub fn append_history(path: &Path, report: &Value) -> Result<(), Error> {
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| Error::Io { path: path.to_path_buf(), source };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut f = std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(path).map_err(io)?;
    let mut line = serde_json::to_vec(report).map_err(|e| io(std::io::Error::other(e)))?;
    line.push(b'\n');
    f.write_all(&line).map_err(io)
}

/// Why the `--on-drift` hook failed.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// It could not start.
    #[error("the --on-drift command could not start: {0}")]
    Start(#[source] std::io::Error),
    /// It ran and failed.
    #[error("the --on-drift command failed ({0})")]
    Failed(std::process::ExitStatus),
    /// Waiting for it failed.
    #[error("the --on-drift command failed: {0}")]
    Wait(#[source] std::io::Error),
}

/// Runs `sh -c cmd` with the JSON report on its stdin.
pub async fn run_hook(cmd: &str, report: &Value) -> Result<(), HookError> {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .map_err(HookError::Start)?;
    if let Some(mut stdin) = child.stdin.take() {
        let body = serde_json::to_vec(report).unwrap_or_default();
        // A hook that does not read its input is its own business.
        let _ = stdin.write_all(&body).await;
        let _ = stdin.write_all(b"\n").await;
    }
    let status = child.wait().await.map_err(HookError::Wait)?;
    if status.success() { Ok(()) } else { Err(HookError::Failed(status)) }
}
