//! `rinfra refresh`: write what the cloud holds into the state.

use super::EXIT_OK;
use crate::args::{Global, RefreshArgs};
use crate::context;
use crate::error::CliError;
use crate::output;
use rinfra_engine::drift::{Status, compare};
use rinfra_engine::ops;
use serde_json::json;

/// Runs `refresh`. Writing needs `--yes` or a terminal to ask on, with
/// `--json` as without it; `--preview-only` never writes.
pub async fn exec(g: &Global, a: RefreshArgs) -> Result<i32, CliError> {
    let writes = !a.preview_only;
    if writes {
        context::needs_terminal(a.yes, "refresh")?;
    }
    let mut c = context::open(g)?;
    let _lock = if writes { Some(c.lock("refresh")?) } else { None };
    let mut state = c.s.load_state()?;
    for r in c.s.reconcile(&mut state, writes).await? {
        output::warn(c.color_err, &format!("recovered from an interrupted run: {r}"));
    }
    let observed = c.s.refresh(&state).await?;
    let changes: Vec<_> =
        compare(&state, &observed, &c.s.registry).into_iter().filter(|r| r.status != Status::InSync).collect();
    let secrets = c.s.secrets();
    let shown = secrets.value(&serde_json::to_value(&changes).unwrap_or_default());
    let write = writes && !changes.is_empty();
    if a.json {
        if write {
            ops::apply_refresh(&mut state, &observed, &c.s.registry);
            c.s.save(&mut state)?;
            c.s.record(&state, "refresh", true, [("refresh".to_string(), changes.len() as u64)].into())?;
        }
        output::json(
            &json!({"version": output::JSON_VERSION, "stack": c.s.stack.name, "changes": shown.get(), "written": write}),
        );
        c.print_stats();
        return Ok(EXIT_OK);
    }
    if changes.is_empty() {
        output::line("The state matches the cloud; nothing to refresh.");
        c.print_stats();
        return Ok(EXIT_OK);
    }
    output::line("Objects have changed outside of rinfra:\n");
    output::drift(&secrets, &changes);
    if !writes {
        c.print_stats();
        return Ok(EXIT_OK);
    }
    if !a.yes && !output::confirm("Do you want to write these changes into the state?") {
        output::line("\nRefresh cancelled.");
        return Ok(super::EXIT_ERROR);
    }
    ops::apply_refresh(&mut state, &observed, &c.s.registry);
    c.s.save(&mut state)?;
    c.s.record(&state, "refresh", true, [("refresh".to_string(), changes.len() as u64)].into())?;
    let removed = changes.iter().filter(|r| r.status == Status::Deleted).count();
    output::line(&format!(
        "\nRefresh complete! {} updated, {removed} removed from the state.",
        changes.len().saturating_sub(removed)
    ));
    c.print_stats();
    Ok(EXIT_OK)
}
