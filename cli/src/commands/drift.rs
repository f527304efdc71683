//! `rinfra drift`: how the cloud differs from the state, once or on a
//! schedule, with a hook and remediation.

use super::{EXIT_CHANGES, EXIT_ERROR, EXIT_OK};
use crate::args::{DriftArgs, Global};
use crate::context::{self, Ctx};
use crate::error::CliError;
use crate::output;
use rinfra_engine::plan::PlanMode;
use rinfra_engine::project::Target;
use rinfra_engine::schedule;
use rinfra_engine::session::PlanRequest;
use std::sync::atomic::Ordering;

/// The sessions `drift` checks: the one stack, or with `--all-stacks`
/// every stack of the project that has a state.
fn sessions(g: &Global, a: &DriftArgs) -> Result<Vec<Ctx>, CliError> {
    if !a.all_stacks {
        return Ok(vec![context::open(g)?]);
    }
    // A stack named on the command line contradicts "every stack"; one set
    // in RINFRA_STACK for other commands does not.
    let from_env = std::env::var("RINFRA_STACK").ok();
    if g.stack.is_some() && g.stack != from_env {
        return Err(CliError::Flag {
            flag: "--all-stacks",
            value: String::new(),
            message: "cannot be combined with -s/--stack".into(),
        });
    }
    if g.state.is_some() {
        return Err(CliError::Flag {
            flag: "--all-stacks",
            value: String::new(),
            message: "cannot be combined with --state, which names one stack's file".into(),
        });
    }
    let project = context::project(g)?;
    let backend = context::backend_for(g, &project)?;
    let mut out = Vec::new();
    for stack in project.stacks(backend.as_ref()).map_err(rinfra_engine::Error::from)? {
        if !backend.exists(&project.id(&stack))? {
            output::note(&format!("stack `{stack}` was never deployed; it is not checked"));
            continue;
        }
        out.push(context::open_target(g, &Target::Stack { project: project.clone(), stack })?);
    }
    Ok(out)
}

/// Runs `drift`.
pub async fn exec(g: &Global, a: DriftArgs) -> Result<i32, CliError> {
    let every = a.every.as_deref().map(rinfra_engine::duration::parse_duration).transpose().map_err(|e| {
        CliError::Flag { flag: "--every", value: a.every.clone().unwrap_or_default(), message: e.to_string() }
    })?;
    let mut ctxs = sessions(g, &a)?;
    // SIGINT and SIGTERM end the loop after the current run.
    if every.is_some() {
        crate::signals::graceful(true);
    }
    // An error outranks drift, which outranks "in sync".
    let rank = |code: i32| match code {
        EXIT_ERROR => 2,
        EXIT_CHANGES => 1,
        _ => 0,
    };
    let mut runs = 0u64;
    let mut code;
    loop {
        runs = runs.saturating_add(1);
        code = EXIT_OK;
        for c in &mut ctxs {
            // One report and one history line per stack and run; the worst
            // outcome decides the exit code.
            let this = check(c, &a, every.is_some()).await;
            if rank(this) > rank(code) {
                code = this;
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
    for c in &ctxs {
        c.print_stats();
    }
    Ok(code)
}

/// One check of one stack: the report, its history line, the hook and
/// remediation. Returns the exit code it calls for.
async fn check(c: &mut Ctx, a: &DriftArgs, scheduled: bool) -> i32 {
    let history =
        a.history.clone().or_else(|| scheduled.then(|| schedule::default_history(&c.s.local_dir, &c.s.id.stack)));
    let secrets = c.s.secrets();
    let report = schedule::check_once(&mut c.s).await;
    let doc = secrets.value(&serde_json::to_value(&report).unwrap_or_default());
    if let Some(h) = &history {
        if let Err(e) = schedule::append_history(h, doc.get()) {
            output::warn(c.color_err, &e.to_string());
        }
    }
    output::drift_report(&secrets, &report, &doc, a.json, scheduled, c.color_err);
    let mut code = match report.status {
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
            && !remediate(c).await.unwrap_or_else(|e| {
                output::render_error(c.color_err, &e);
                false
            })
        {
            code = EXIT_ERROR;
        }
    }
    code
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
