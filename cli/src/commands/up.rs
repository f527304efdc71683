//! `rinfra up`: make the cloud match the stack.

use super::{EXIT_ERROR, EXIT_OK};
use crate::args::{Global, UpArgs};
use crate::context::{self, Ctx};
use crate::error::CliError;
use crate::output::{self, JsonLines};
use rinfra_engine::plan::{Plan, PlanMode};
use rinfra_engine::session::{PlanRequest, Prepared};
use rinfra_state::StateFile;
use serde_json::json;
use std::sync::Arc;

/// Runs `up`.
pub async fn exec(g: &Global, a: UpArgs) -> Result<i32, CliError> {
    context::needs_terminal(a.yes, "up")?;
    let mut c = context::open(g)?;
    c.announce_overrides();
    let events = a.json.then(|| Arc::new(JsonLines::new()));
    let _lock = c.lock("up")?;
    let mut state = c.s.load_state()?;
    let targeted = !a.target.is_empty();
    let req = PlanRequest { mode: PlanMode::Normal, refresh: a.refresh, persist: true, targets: a.target };
    let prepared = c.s.prepare(&mut state, &req).await?;
    notes(&c, &prepared);
    let ok = apply_plan(&mut c, &prepared.plan, &mut state, events, PlanMode::Normal, targeted, a.yes).await?;
    c.print_stats();
    Ok(if ok { EXIT_OK } else { EXIT_ERROR })
}

/// Says what settling an earlier run and importing did.
pub fn notes(c: &Ctx, p: &Prepared) {
    for r in &p.recovered {
        output::warn(c.color_err, &format!("recovered from an interrupted run: {r}"));
    }
    for (old, new) in &p.renamed {
        output::note(&format!("{new}: renamed from {old} (options.aliases); the resource is kept"));
    }
    for (name, id) in &p.imported {
        output::note(&format!("{name}: imported {id} (options.import)"));
    }
    for name in &p.gone {
        output::note(&format!("{name}: already deleted outside rinfra; removing it from the state"));
    }
    for name in &p.skipped_protected {
        output::warn(c.color_err, &format!("`{name}` is protected; rinfra leaves its drift as it is"));
    }
}

/// Shows `plan`, asks unless `yes`, applies it and reports. Shared by `up`,
/// `destroy` and `drift --remediate`. Returns whether every step succeeded.
pub async fn apply_plan(
    c: &mut Ctx,
    plan: &Plan,
    state: &mut StateFile,
    events: Option<Arc<JsonLines>>,
    mode: PlanMode,
    targeted: bool,
    yes: bool,
) -> Result<bool, CliError> {
    let secrets = c.s.secrets();
    let destroy = mode == PlanMode::Destroy;
    if plan.is_empty() {
        if !destroy && !c.s.sync_metadata(state)? && state.serial == 0 {
            // A stack deployed with nothing to change still gets its state,
            // so that it exists and records its outputs.
            c.s.save(state)?;
        }
        // Every output path masks: the outputs of a no-change run too.
        let outputs = secrets.outputs(&state.outputs);
        match &events {
            Some(e) => {
                e.emit("plan", json!({"plan": output::plan_json(&secrets.plan(plan))}));
                e.emit("summary", json!({"ok": true, "changes": false, "outputs": outputs.get()}));
            }
            None if destroy => output::line("Nothing to destroy: the stack has no resources."),
            None => output::line(rinfra_engine::render::NO_CHANGES),
        }
        return Ok(true);
    }
    match &events {
        Some(e) => e.emit("plan", json!({"plan": output::plan_json(&secrets.plan(plan))})),
        None => output::plan(&secrets.plan(plan), c.color),
    }
    let question =
        if destroy { "Do you really want to destroy all resources?" } else { "Do you want to perform these actions?" };
    let verb = if destroy { "Destroy" } else { "Apply" };
    if !yes && !output::confirm(question) {
        output::line(&format!("\n{verb} cancelled."));
        return Ok(false);
    }
    if events.is_none() {
        output::line("");
    }
    let observer: Arc<dyn rinfra_engine::apply::Observer> = match &events {
        Some(e) => e.clone(),
        None => output::progress(c.color),
    };
    let was_graceful = crate::signals::graceful(true);
    let started = std::time::Instant::now();
    let report = c.s.apply(plan, state, mode, targeted, observer).await;
    crate::signals::graceful(was_graceful);
    let report = report?;
    // Outputs marked secret by `additionalSecretOutputs` are known now.
    let outputs = c.s.secrets().outputs(&state.outputs);
    output::report(c.color_err, events.as_deref(), &report, verb, started.elapsed(), &outputs);
    Ok(report.ok())
}
