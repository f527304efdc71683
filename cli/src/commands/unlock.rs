//! `rinfra unlock`: remove a lock left by a process that is gone.

use super::EXIT_OK;
use crate::args::{Global, UnlockArgs};
use crate::context;
use crate::error::CliError;
use crate::output;
use rinfra_state::LockStatus;

/// Runs `unlock`.
pub fn exec(g: &Global, a: UnlockArgs) -> Result<i32, CliError> {
    let c = context::open(g)?;
    let (backend, id) = (&c.s.backend, &c.s.id);
    let where_ = backend.location(id);
    let who = match backend.lock_status(id)? {
        LockStatus::Free => {
            output::line(&format!("{where_} is not locked."));
            return Ok(EXIT_OK);
        }
        LockStatus::Held(h) => format!("the lock held by pid {} on {} ({})", h.pid, h.host, h.command),
        // A SIGKILL between creating and writing a lock left it empty or
        // garbled: nobody can be named, and --force may remove it.
        LockStatus::Unreadable { reason } => format!("an unreadable lock of {where_} ({reason})"),
    };
    if !a.force {
        return Err(CliError::LockHeld(format!("{where_} is locked: {who}")));
    }
    backend.force_unlock(id)?;
    output::line(&format!("Removed {who}."));
    Ok(EXIT_OK)
}
