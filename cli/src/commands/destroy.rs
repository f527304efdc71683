//! `rinfra destroy`: delete every resource of the stack.

use super::{EXIT_ERROR, EXIT_OK};
use crate::args::{DestroyArgs, Global};
use crate::context;
use crate::error::CliError;
use crate::output::JsonLines;
use rinfra_engine::plan::PlanMode;
use rinfra_engine::session::PlanRequest;
use std::sync::Arc;

/// Runs `destroy`.
pub async fn exec(g: &Global, a: DestroyArgs) -> Result<i32, CliError> {
    context::needs_terminal(a.yes, "destroy")?;
    let mut c = context::open(g)?;
    let events = a.json.then(|| Arc::new(JsonLines::new()));
    let _lock = c.lock("destroy")?;
    let mut state = c.s.load_state()?;
    let targeted = !a.target.is_empty();
    let req = PlanRequest { mode: PlanMode::Destroy, refresh: true, persist: true, targets: a.target };
    let prepared = c.s.prepare(&mut state, &req).await?;
    super::up::notes(&c, &prepared);
    if !prepared.gone.is_empty() {
        c.s.save(&mut state)?;
    }
    let ok =
        super::up::apply_plan(&mut c, &prepared.plan, &mut state, events, PlanMode::Destroy, targeted, a.yes).await?;
    c.print_stats();
    Ok(if ok { EXIT_OK } else { EXIT_ERROR })
}
