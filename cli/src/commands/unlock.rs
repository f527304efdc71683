//! `rinfra unlock`: remove a lock left by a process that is gone.

use super::EXIT_OK;
use crate::args::{Global, UnlockArgs};
use crate::context;
use crate::error::CliError;
use crate::output;
use rinfra_state::StateLock;

/// Runs `unlock`.
pub fn exec(g: &Global, a: UnlockArgs) -> Result<i32, CliError> {
    let c = context::open(g)?;
    let path = &c.s.state_path;
    let lock_path = StateLock::path_for(path);
    let Some(holder) = StateLock::holder(&lock_path) else {
        output::line(&format!("{} is not locked.", path.display()));
        return Ok(EXIT_OK);
    };
    let who = format!("pid {} on {} ({})", holder.pid, holder.host, holder.command);
    if !a.force {
        return Err(CliError::LockHeld(format!("{} is locked by {who}", path.display())));
    }
    StateLock::force_unlock(path)?;
    output::line(&format!("Removed the lock held by {who}."));
    Ok(EXIT_OK)
}
