//! `rinfra preview`: the plan, without changing anything.

use super::{EXIT_CHANGES, EXIT_OK};
use crate::args::{Global, PreviewArgs};
use crate::context;
use crate::error::CliError;
use crate::output;
use rinfra_engine::plan::PlanMode;
use rinfra_engine::session::PlanRequest;

/// Runs `preview`. Reconciling and importing happen in memory only: a
/// preview never writes.
pub async fn exec(g: &Global, a: PreviewArgs) -> Result<i32, CliError> {
    let mut c = context::open(g)?;
    c.announce_overrides();
    let mut state = c.s.load_state()?;
    let req = PlanRequest { mode: PlanMode::Normal, refresh: a.refresh, persist: false, targets: a.target };
    let prepared = c.s.prepare(&mut state, &req).await?;
    for (old, new) in &prepared.renamed {
        output::note(&format!("{new}: renamed from {old} (options.aliases); the resource is kept"));
    }
    let shown = c.s.secrets().plan(&prepared.plan);
    if a.json {
        output::json(&output::plan_json(&shown));
    } else {
        output::plan(&shown, c.color);
    }
    c.print_stats();
    Ok(if a.detailed_exitcode && !prepared.plan.is_empty() { EXIT_CHANGES } else { EXIT_OK })
}
