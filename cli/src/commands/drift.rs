//! `rinfra drift`: how the cloud differs from the state, once or on a
//! schedule, with a hook and remediation.

use super::{EXIT_CHANGES, EXIT_ERROR, EXIT_OK};
use crate::args::{DriftArgs, Global};
use crate::context::{self, Ctx};
use crate::error::CliError;
use crate::output;
use rinfra_engine::plan::PlanMode;
use rinfra_engine::schedule;
use rinfra_engine::session::PlanRequest;
use std::sync::atomic::Ordering;

/// Runs `drift`.
pub async fn exec(g: &Global, a: DriftArgs) -> Result<i32, CliError> {
    let mut c = context::open(g)?;
    let every = a
        .every
        .as_deref()
        .map(rinfra_engine::drift::parse_duration)
        .transpose()
        .map_err(|message| CliError::Flag { flag: "--every", value: a.every.clone().unwrap_or_default(), message })?;
    let history =
        a.history.clone().or_else(|| every.map(|_| schedule::default_history(&c.s.state_path, &c.s.stack.name)));
    // SIGINT and SIGTERM end the loop after the current run.
    if every.is_some() {
        crate::signals::graceful(true);
    }
    let secrets = c.s.secrets();
    let mut runs = 0u64;
    let mut code;
    loop {
        let report = schedule::check_once(&mut c.s).await;
        let doc = secrets.value(&serde_json::to_value(&report).unwrap_or_default());
        runs = runs.saturating_add(1);
        if let Some(h) = &history {
            if let Err(e) = schedule::append_history(h, doc.get()) {
                output::warn(c.color_err, &e.to_string());
            }
        }
        output::drift_report(&secrets, &report, &doc, a.json, every.is_some(), c.color_err);
        code = match report.status {
            "in-sync" => EXIT_OK,
            "drifted" => EXIT_CHANGES,
            _ => EXIT_ERROR,
        };
        if report.drifted() {
            if let Some(cmd) = &a.on_drift {
                if let Err(e) = schedule::run_hook(cmd, doc.get()).await {
                    output::warn(c.color_err, &e.to_string());
                }
            }
            if a.remediate
                && !remediate(&mut c).await.unwrap_or_else(|e| {
                    output::render_error(c.color_err, &e);
                    false
                })
            {
                code = EXIT_ERROR;
            }
        }
        let Some(period) = every else { break };
        if a.max_runs.is_some_and(|m| runs >= m) || crate::signals::STOP.load(Ordering::SeqCst) {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(period) => {},
            _ = crate::signals::WAKE.notified() => {},
        }
        if crate::signals::STOP.load(Ordering::SeqCst) {
            break;
        }
    }
    c.print_stats();
    Ok(code)
}

/// Brings the cloud back to the stack through the plan and apply path of
/// `up`, leaving protected resources alone. Holds the lock only meanwhile.
async fn remediate(c: &mut Ctx) -> Result<bool, CliError> {
    let _lock = c.lock("drift --remediate")?;
    let mut state = c.s.load_state()?;
    let req = PlanRequest { mode: PlanMode::Remediate, refresh: true, persist: true, targets: Vec::new() };
    let prepared = c.s.prepare(&mut state, &req).await?;
    super::up::notes(c, &prepared);
    if prepared.plan.is_empty() {
        output::line("Nothing to remediate.");
        return Ok(true);
    }
    super::up::apply_plan(c, &prepared.plan, &mut state, None, PlanMode::Remediate, false, true).await
}
