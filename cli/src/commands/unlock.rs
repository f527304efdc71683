//! `rinfra unlock`: remove a lock left by a process that is gone.

use super::EXIT_OK;
use crate::args::{Global, UnlockArgs};
use crate::context;
use crate::error::CliError;
use crate::output;
use rinfra_state::{LockStatus, StateLock};

/// Runs `unlock`.
pub fn exec(g: &Global, a: UnlockArgs) -> Result<i32, CliError> {
    let c = context::open(g)?;
    let path = &c.s.state_path;
    let lock_path = StateLock::path_for(path);
    let who = match StateLock::status(&lock_path)? {
        LockStatus::Free => {
            output::line(&format!("{} is not locked.", path.display()));
            return Ok(EXIT_OK);
        }
        LockStatus::Held(h) => format!("the lock held by pid {} on {} ({})", h.pid, h.host, h.command),
        // A SIGKILL between creating and writing a lock left it empty or
        // garbled: nobody can be named, and --force may remove it.
        LockStatus::Unreadable { reason } => format!("an unreadable lock file {} ({reason})", lock_path.display()),
    };
    if !a.force {
        return Err(CliError::LockHeld(format!("{} is locked: {who}", path.display())));
    }
    StateLock::force_unlock(path)?;
    output::line(&format!("Removed {who}."));
    Ok(EXIT_OK)
}
