//! The commands: each a short sequence of engine operations.

use super::output::{self, LinePrinter, readable, secs, use_color};
use super::{Cli, Command, DriftArgs, EXIT_CHANGES, EXIT_ERROR, EXIT_OK, Global, StateCommand};
use rinfra_engine::apply::{self, ApplyOptions};
use rinfra_engine::ops::{self, LoadError};
use rinfra_engine::plan::{self, Observations, Op, OutputChange, Plan};
use rinfra_engine::render;
use rinfra_engine::stack::Stack;
use rinfra_resources::{Aws, AwsSettings, Registry};
use rinfra_state::{LockStatus, StateError, StateFile, StateLock};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Version of every JSON document the command line prints.
const JSON_VERSION: u32 = 1;

/// One command's context: the checked stack, where its state lives, and
/// the providers (whose AWS clients are built on first use).
struct Session {
    stack: Stack,
    state_path: PathBuf,
    registry: Registry,
    aws: Arc<Aws>,
    color: bool,
    color_err: bool,
    parallel: usize,
    stats: bool,
    phases: Vec<(&'static str, Duration)>,
    targeted: bool,
    /// JSON lines instead of human text on stdout.
    events: Option<Arc<output::JsonLines>>,
}

type Exit = i32;

impl Session {
    fn open(g: &Global) -> Result<Session, Exit> {
        let color_err = use_color(g.color, false);
        let Some(path) = g.stack.clone() else {
            output::error(color_err, "no stack file given: pass `-s FILE` or set RINFRA_STACK");
            return Err(EXIT_ERROR);
        };
        let mut overrides = BTreeMap::new();
        for kv in &g.config {
            match kv.split_once('=') {
                Some((k, v)) => {
                    overrides.insert(k.to_string(), v.to_string());
                }
                None => {
                    output::error(color_err, &format!("--config `{kv}` must be KEY=VALUE"));
                    return Err(EXIT_ERROR);
                }
            }
        }
        let endpoint = g.endpoint_url.clone().or_else(|| std::env::var("AWS_ENDPOINT_URL").ok());
        if let Some(e) =
            endpoint.as_deref().filter(|e| e.starts_with("http://") && !rinfra_resources::aws::is_local_endpoint(e))
        {
            output::warn(
                color_err,
                &format!(
                    "the endpoint {e} is plain http to a host that is not this machine; requests and their signatures travel unencrypted"
                ),
            );
        }
        let mut rates = BTreeMap::new();
        for kv in &g.api_rate {
            match kv.split_once('=').map(|(k, v)| (k, v.parse::<f64>())) {
                Some((k, Ok(v))) if k.contains(':') => {
                    if let Err(msg) = rinfra_resources::aws::check_rate(k, v) {
                        output::error(color_err, &format!("--api-rate `{kv}`: {msg}"));
                        return Err(EXIT_ERROR);
                    }
                    rates.insert(k.to_string(), v);
                }
                _ => {
                    output::error(color_err, &format!("--api-rate `{kv}` must be SERVICE:Operation=CALLS_PER_SECOND"));
                    return Err(EXIT_ERROR);
                }
            }
        }
        let aws = Aws::new(AwsSettings {
            rates,
            region: g.region.clone(),
            endpoint_url: g.endpoint_url.clone(),
            profile: g.profile.clone(),
        });
        let registry = Registry::aws(aws.clone());
        let t = Instant::now();
        let stack = match ops::load_stack(&path, &overrides, &registry) {
            Ok(s) => s,
            Err(LoadError::Invalid { source_text, diagnostics }) => {
                eprint!("{}", diagnostics.render(&path.display().to_string(), &source_text, color_err));
                return Err(EXIT_ERROR);
            }
            Err(e) => {
                output::error(color_err, &e.to_string());
                return Err(EXIT_ERROR);
            }
        };
        let state_path = g.state.clone().unwrap_or_else(|| ops::default_state_path(&stack.name));
        Ok(Session {
            stack,
            state_path,
            registry,
            aws,
            color: use_color(g.color, true),
            color_err,
            parallel: g.parallel.max(1),
            stats: g.stats,
            phases: vec![("parse", t.elapsed())],
            targeted: false,
            events: None,
        })
    }

    fn fail(&self, message: impl std::fmt::Display) -> Exit {
        output::error(self.color_err, &message.to_string());
        EXIT_ERROR
    }

    fn lock(&self, command: &str) -> Result<Held, Exit> {
        let lock = StateLock::acquire(&self.state_path, command).map_err(|e| self.fail(e))?;
        super::signals::holding(Some(StateLock::path_for(&self.state_path)));
        Ok(Held(lock))
    }

    fn load_state(&self) -> Result<StateFile, Exit> {
        rinfra_state::load_or_new(&self.state_path, &self.stack.name).map_err(|e| self.fail(e))
    }

    fn save(&self, state: &mut StateFile) -> Result<(), Exit> {
        rinfra_state::save(&self.state_path, state).map_err(|e| self.fail(e))
    }

    async fn reconcile(&self, state: &mut StateFile, persist: bool) -> Result<(), Exit> {
        if state.pending.is_empty() {
            return Ok(());
        }
        let notes = ops::reconcile_pending(state, &self.registry).await.map_err(|e| self.fail(e))?;
        for n in notes {
            output::warn(self.color_err, &format!("recovered from an interrupted run: {n}"));
        }
        if persist {
            self.save(state)?;
        }
        Ok(())
    }

    async fn import_declared(&self, state: &mut StateFile, persist: bool) -> Result<(), Exit> {
        let done = ops::import_declared(state, &self.stack, &self.registry).await.map_err(|e| self.fail(e))?;
        for name in &done {
            let id = state.resources.get(name).map(|r| r.id.clone()).unwrap_or_default();
            eprintln!("{name}: imported {id} (options.import)");
        }
        if persist && !done.is_empty() {
            self.save(state)?;
        }
        Ok(())
    }

    async fn refresh(&mut self, state: &StateFile) -> Result<Observations, Exit> {
        let t = Instant::now();
        let r = ops::refresh(state, Some(&self.stack), &self.registry).await.map_err(|e| self.fail(e));
        self.phases.push(("refresh", t.elapsed()));
        r
    }

    fn plan(&mut self, state: &StateFile, observed: Option<&Observations>) -> Result<Plan, Exit> {
        let t = Instant::now();
        let p = plan::plan(&self.stack, state, &self.registry, observed).map_err(|e| self.fail(e));
        self.phases.push(("plan", t.elapsed()));
        p
    }

    /// A copy of `p` fit to show: secrets masked.
    fn shown(&self, p: &Plan) -> Plan {
        let mut shown = p.clone();
        render::mask_plan(&mut shown, &self.stack.secrets);
        shown
    }

    /// The outputs fit to show: secrets masked.
    fn shown_outputs(&self, outputs: &BTreeMap<String, Value>) -> BTreeMap<String, Value> {
        let mut o = outputs.clone();
        for v in o.values_mut() {
            render::mask_value(v, &self.stack.secrets);
        }
        o
    }

    /// Applies `p` with progress lines and Ctrl-C handling, prints the
    /// summary and the outputs, and says whether every step succeeded.
    async fn apply(&mut self, p: &Plan, state: &mut StateFile) -> Result<bool, Exit> {
        let opts = ApplyOptions {
            parallel: self.parallel,
            cancel: super::signals::STOP.clone(),
            update_outputs: !self.targeted,
        };
        let was_graceful = super::signals::graceful(true);
        let started = Instant::now();
        let report =
            apply::apply(p, Some(&self.stack), state, &self.state_path, &self.registry, &opts, self.observer()).await;
        super::signals::graceful(was_graceful);
        let report = report.map_err(|e| self.fail(e))?;
        self.phases.push(("apply", started.elapsed()));
        print_report(self, &report, started, "Apply", &self.shown_outputs(&state.outputs));
        if report.ok() && !state.outputs.is_empty() && self.events.is_none() {
            println!("\nOutputs:\n");
            print!("{}", render::outputs(&self.shown_outputs(&state.outputs)));
        }
        Ok(report.ok())
    }

    /// What shows progress: JSON lines, bars on a terminal, or plain lines.
    fn observer(&self) -> Arc<dyn apply::Observer> {
        match &self.events {
            Some(e) => e.clone(),
            None if std::io::stdout().is_terminal() => Arc::new(output::TermProgress::new(self.color)),
            None => Arc::new(LinePrinter::new()),
        }
    }

    /// Prints the plan as text, or as a `plan` event in JSON mode.
    fn show_plan(&self, p: &Plan) {
        let p = self.shown(p);
        match &self.events {
            Some(e) => e.emit("plan", json!({"plan": plan_json(&p)})),
            None => print!("{}", render::plan(&p, self.color)),
        }
    }

    fn print_stats(&self) {
        if !self.stats {
            return;
        }
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "\nStatistics:");
        for (phase, d) in &self.phases {
            let _ = writeln!(err, "  {phase:<8} {:>8.1} ms", d.as_secs_f64() * 1000.0);
        }
        let calls = self.aws.stats().snapshot();
        let _ = writeln!(err, "  API calls: {}", calls.values().sum::<u64>());
        for (op, n) in calls {
            let _ = writeln!(err, "    {op:<40} {n}");
        }
    }
}

/// A held lock; releasing it also tells the signal handler.
struct Held(#[allow(dead_code)] StateLock);

impl Drop for Held {
    fn drop(&mut self) {
        super::signals::holding(None);
    }
}

/// Refuses at once when confirmation is needed but cannot be asked for.
fn needs_terminal(yes: bool, command: &str, color: bool) -> Result<(), Exit> {
    if !yes && !std::io::stdin().is_terminal() {
        output::error(
            color,
            &format!("`rinfra {command}` needs confirmation, but stdin is not a terminal; pass --yes to go ahead"),
        );
        return Err(EXIT_ERROR);
    }
    Ok(())
}

fn confirm(question: &str) -> bool {
    print!("\n{question}\n  Only 'yes' will be accepted to approve.\n\n  Enter a value: ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    line.trim() == "yes"
}

fn plan_json(p: &Plan) -> Value {
    let s = p.summary();
    readable(json!({
        "version": JSON_VERSION,
        "stack": p.stack,
        "refreshed": p.refreshed,
        "changes": !p.is_empty(),
        "summary": s,
        "steps": p.steps,
        "outputs": p.outputs,
    }))
}

/// Runs the command and returns the exit code.
pub async fn run(cli: Cli) -> Exit {
    let g = cli.global;
    super::signals::install(use_color(g.color, false));
    let result = match cli.command {
        Command::Preview(a) => preview(&g, a.json, a.refresh, a.detailed_exitcode, &a.target).await,
        Command::Up(a) => up(&g, a.yes, a.refresh, &a.target, a.json).await,
        Command::Refresh(a) => refresh(&g, a.yes, a.preview_only, a.json).await,
        Command::Destroy(a) => destroy(&g, a.yes, &a.target, a.json).await,
        Command::Drift(a) => drift(&g, a).await,
        Command::Import(a) => import(&g, &a.name, &a.id).await,
        Command::Output(a) => output_cmd(&g, a.name.as_deref(), a.json, a.show_secrets),
        Command::Validate(a) => validate(&g, a.json),
        Command::Unlock(a) => unlock(&g, a.force),
        Command::State(StateCommand::Verify) => state_verify(&g),
        Command::State(StateCommand::List(a)) => state_list(&g, a.json),
        Command::State(StateCommand::Show(a)) => state_show(&g, &a.name, a.json),
        Command::State(StateCommand::Rm(a)) => state_rm(&g, &a.name),
        Command::State(StateCommand::Mv(a)) => state_mv(&g, &a.old, &a.new),
        Command::Graph(a) => graph(&g, a.plan).await,
        Command::Schema => {
            let registry = Registry::aws(Aws::new(AwsSettings::default()));
            output::json(&rinfra_engine::stack_schema::stack_schema(&registry));
            Ok(EXIT_OK)
        }
        Command::Completions(a) => {
            use clap::CommandFactory;
            clap_complete::generate(a.shell, &mut Cli::command(), "rinfra", &mut std::io::stdout());
            Ok(EXIT_OK)
        }
    };
    match result {
        Ok(code) | Err(code) => code,
    }
}

async fn preview(g: &Global, as_json: bool, refresh: bool, detailed: bool, targets: &[String]) -> Result<Exit, Exit> {
    let mut s = Session::open(g)?;
    let mut state = s.load_state()?;
    // Reconcile and import in memory only: a preview never writes.
    s.reconcile(&mut state, false).await?;
    s.import_declared(&mut state, false).await?;
    let observed = if refresh { Some(s.refresh(&state).await?) } else { None };
    let mut p = s.plan(&state, observed.as_ref())?;
    if !targets.is_empty() {
        plan::restrict(&mut p, targets, Some(&s.stack), &state, false).map_err(|e| s.fail(e))?;
    }
    if as_json {
        output::json(&plan_json(&s.shown(&p)));
    } else {
        print!("{}", render::plan(&s.shown(&p), s.color));
    }
    s.print_stats();
    Ok(if detailed && !p.is_empty() { EXIT_CHANGES } else { EXIT_OK })
}

fn print_report(s: &Session, report: &apply::Report, started: Instant, verb: &str, outputs: &BTreeMap<String, Value>) {
    let count = |ops: &[Op]| report.done.iter().filter(|(_, o, _)| ops.contains(o)).count();
    if let Some(e) = &s.events {
        let failures: Vec<Value> =
            report.failures.iter().map(|f| json!({"resource": f.name, "op": f.op, "error": f.error})).collect();
        e.emit(
            "summary",
            json!({
                "ok": report.ok(),
                "created": count(&[Op::Create]),
                "updated": count(&[Op::Update]),
                "replaced": count(&[Op::Replace]),
                "deleted": count(&[Op::Delete, Op::Forget]),
                "failures": failures,
                "interrupted": report.interrupted,
                "skipped": report.skipped,
                "durationMs": started.elapsed().as_millis() as u64,
                "outputs": outputs,
            }),
        );
        return;
    }
    if report.ok() {
        println!(
            "\n{verb} complete! Resources: {} created, {} updated, {} replaced, {} deleted. ({})",
            count(&[Op::Create]),
            count(&[Op::Update]),
            count(&[Op::Replace]),
            count(&[Op::Delete, Op::Forget]),
            secs(started.elapsed())
        );
    } else {
        for f in &report.failures {
            output::error(
                s.color_err,
                &format!("{} of `{}` failed: {}", output::verb(f.op).0.to_lowercase(), f.name, f.error),
            );
        }
        if report.interrupted {
            output::error(s.color_err, "interrupted before every operation started; run the command again to finish");
        }
        if report.skipped > 0 {
            output::error(
                s.color_err,
                &format!("{} operation(s) were not started because of the failure", report.skipped),
            );
        }
        output::error(
            s.color_err,
            &format!("{verb} failed after {} operation(s) succeeded; the state records what exists", report.done.len()),
        );
    }
}

async fn up(g: &Global, yes: bool, refresh: bool, targets: &[String], as_json: bool) -> Result<Exit, Exit> {
    needs_terminal(yes, "up", use_color(g.color, false))?;
    let mut s = Session::open(g)?;
    if as_json {
        s.events = Some(Arc::new(output::JsonLines::new()));
    }
    let _lock = s.lock("up")?;
    let mut state = s.load_state()?;
    s.reconcile(&mut state, true).await?;
    s.import_declared(&mut state, true).await?;
    let observed = if refresh { Some(s.refresh(&state).await?) } else { None };
    let mut p = s.plan(&state, observed.as_ref())?;
    s.targeted = !targets.is_empty();
    if s.targeted {
        plan::restrict(&mut p, targets, Some(&s.stack), &state, false).map_err(|e| s.fail(e))?;
    }
    if p.is_empty() {
        // Options such as `protect` change nothing in the cloud, but the
        // state must follow them.
        if plan::sync_metadata(&s.stack, &mut state) {
            s.save(&mut state)?;
        }
        match &s.events {
            Some(e) => {
                e.emit("plan", json!({"plan": plan_json(&p)}));
                e.emit("summary", json!({"ok": true, "changes": false, "outputs": state.outputs}));
            }
            None => println!("{}", render::NO_CHANGES),
        }
        s.print_stats();
        return Ok(EXIT_OK);
    }
    s.show_plan(&p);
    if !yes && !confirm("Do you want to perform these actions?") {
        println!("\nApply cancelled.");
        return Ok(EXIT_ERROR);
    }
    if s.events.is_none() {
        println!();
    }
    let ok = s.apply(&p, &mut state).await?;
    if ok && plan::sync_metadata(&s.stack, &mut state) {
        s.save(&mut state)?;
    }
    s.print_stats();
    Ok(if ok { EXIT_OK } else { EXIT_ERROR })
}

async fn refresh(g: &Global, yes: bool, preview_only: bool, as_json: bool) -> Result<Exit, Exit> {
    if !preview_only {
        needs_terminal(yes, "refresh", use_color(g.color, false))?;
    }
    let mut s = Session::open(g)?;
    let _lock = if preview_only { None } else { Some(s.lock("refresh")?) };
    let mut state = s.load_state()?;
    s.reconcile(&mut state, !preview_only).await?;
    let observed = s.refresh(&state).await?;
    let changes: Vec<_> = rinfra_engine::drift::compare(&state, &observed, &s.registry)
        .into_iter()
        .filter(|r| r.status != rinfra_engine::drift::Status::InSync)
        .collect();
    if as_json {
        let written = !preview_only && !changes.is_empty();
        if written {
            ops::apply_refresh(&mut state, &observed, &s.registry);
            s.save(&mut state)?;
        }
        output::json(&json!({"version": JSON_VERSION, "stack": s.stack.name, "changes": changes, "written": written}));
        s.print_stats();
        return Ok(EXIT_OK);
    }
    if changes.is_empty() {
        println!("The state matches the cloud; nothing to refresh.");
        s.print_stats();
        return Ok(EXIT_OK);
    }
    println!("Objects have changed outside of rinfra:\n");
    print!("{}", render::drift(&changes));
    if preview_only {
        s.print_stats();
        return Ok(EXIT_OK);
    }
    if !yes && !confirm("Do you want to write these changes into the state?") {
        println!("\nRefresh cancelled.");
        return Ok(EXIT_ERROR);
    }
    ops::apply_refresh(&mut state, &observed, &s.registry);
    s.save(&mut state)?;
    let removed = changes.iter().filter(|c| c.status == rinfra_engine::drift::Status::Deleted).count();
    println!("\nRefresh complete! {} updated, {} removed from the state.", changes.len() - removed, removed);
    s.print_stats();
    Ok(EXIT_OK)
}

async fn destroy(g: &Global, yes: bool, targets: &[String], as_json: bool) -> Result<Exit, Exit> {
    needs_terminal(yes, "destroy", use_color(g.color, false))?;
    let mut s = Session::open(g)?;
    if as_json {
        s.events = Some(Arc::new(output::JsonLines::new()));
    }
    let _lock = s.lock("destroy")?;
    let mut state = s.load_state()?;
    s.reconcile(&mut state, true).await?;
    let observed = s.refresh(&state).await?;
    let gone = ops::drop_gone(&mut state, &observed);
    for name in &gone {
        eprintln!("{name}: already deleted outside rinfra; removing it from the state");
    }
    let steps = plan::delete_steps(&state, &s.registry, |_| true).map_err(|e| s.fail(e))?;
    let outputs =
        state.outputs.iter().map(|(k, v)| OutputChange { name: k.clone(), old: Some(v.clone()), new: None }).collect();
    let mut p = Plan { stack: s.stack.name.clone(), steps, outputs, refreshed: true };
    if !targets.is_empty() {
        plan::restrict(&mut p, targets, Some(&s.stack), &state, true).map_err(|e| s.fail(e))?;
    }
    if p.is_empty() {
        if !gone.is_empty() {
            s.save(&mut state)?;
        }
        match &s.events {
            Some(e) => e.emit("summary", json!({"ok": true, "changes": false})),
            None => println!("Nothing to destroy: the stack has no resources."),
        }
        s.print_stats();
        return Ok(EXIT_OK);
    }
    s.show_plan(&p);
    if !yes && !confirm("Do you really want to destroy all resources?") {
        println!("\nDestroy cancelled.");
        return Ok(EXIT_ERROR);
    }
    if s.events.is_none() {
        println!();
    }
    let opts =
        ApplyOptions { parallel: s.parallel, cancel: super::signals::STOP.clone(), update_outputs: targets.is_empty() };
    let was_graceful = super::signals::graceful(true);
    let started = Instant::now();
    let report = apply::apply(&p, None, &mut state, &s.state_path, &s.registry, &opts, s.observer()).await;
    super::signals::graceful(was_graceful);
    let report = report.map_err(|e| s.fail(e))?;
    s.phases.push(("apply", started.elapsed()));
    print_report(&s, &report, started, "Destroy", &state.outputs);
    s.print_stats();
    Ok(if report.ok() { EXIT_OK } else { EXIT_ERROR })
}

fn output_cmd(g: &Global, name: Option<&str>, as_json: bool, show_secrets: bool) -> Result<Exit, Exit> {
    let s = Session::open(g)?;
    let Some(mut state) = rinfra_state::load(&s.state_path, &s.stack.name).map_err(|e| s.fail(e))? else {
        return Err(s.fail(format!("no state at {}: run `rinfra up` first", s.state_path.display())));
    };
    if !show_secrets {
        state.outputs = s.shown_outputs(&state.outputs);
    }
    match name {
        Some(n) => {
            let Some(v) = state.outputs.get(n) else {
                let known: Vec<&str> = state.outputs.keys().map(String::as_str).collect();
                return Err(s.fail(format!("the stack has no output `{n}`; it has: {}", known.join(", "))));
            };
            if as_json {
                output::json(v);
            } else {
                match v {
                    Value::String(text) => println!("{text}"),
                    other => println!("{}", render::value(other, 0)),
                }
            }
        }
        None if as_json => output::json(&Value::Object(state.outputs.clone().into_iter().collect())),
        None => print!("{}", render::outputs(&state.outputs)),
    }
    Ok(EXIT_OK)
}

fn validate(g: &Global, as_json: bool) -> Result<Exit, Exit> {
    let s = Session::open(g)?;
    if as_json {
        output::json(
            &json!({"version": JSON_VERSION, "valid": true, "stack": s.stack.name, "resources": s.stack.order}),
        );
    } else {
        println!("The stack `{}` is valid: {} resources.", s.stack.name, s.stack.resources.len());
    }
    Ok(EXIT_OK)
}

fn unlock(g: &Global, force: bool) -> Result<Exit, Exit> {
    let s = Session::open(g)?;
    let lock_path = StateLock::path_for(&s.state_path);
    let holder = match StateLock::status(&lock_path).map_err(|e| s.fail(e))? {
        LockStatus::Free => {
            println!("{} is not locked.", s.state_path.display());
            return Ok(EXIT_OK);
        }
        LockStatus::Held(holder) => holder,
        // A lock file that names no holder can only be removed by force.
        LockStatus::Unreadable { reason } => {
            if !force {
                return Err(s.fail(StateError::LockUnreadable { path: lock_path, reason }));
            }
            StateLock::force_unlock(&s.state_path).map_err(|e| s.fail(e))?;
            println!("Removed an unreadable lock file {} ({reason}).", lock_path.display());
            return Ok(EXIT_OK);
        }
    };
    if !force {
        return Err(s.fail(format!(
            "{} is locked by pid {} on {} ({}); pass --force to remove the lock",
            s.state_path.display(),
            holder.pid,
            holder.host,
            holder.command
        )));
    }
    StateLock::force_unlock(&s.state_path).map_err(|e| s.fail(e))?;
    println!("Removed the lock held by pid {} on {} ({}).", holder.pid, holder.host, holder.command);
    Ok(EXIT_OK)
}

fn state_verify(g: &Global) -> Result<Exit, Exit> {
    let s = Session::open(g)?;
    // Integrity, version, and that the state belongs to this stack.
    let Some(st) = rinfra_state::load(&s.state_path, &s.stack.name).map_err(|e| s.fail(e))? else {
        return Err(s.fail(format!("there is no state at {}", s.state_path.display())));
    };
    println!(
        "{} is valid: stack `{}`, serial {}, lineage {}, {} resources.",
        s.state_path.display(),
        st.stack,
        st.serial,
        st.lineage,
        st.resources.len()
    );
    Ok(EXIT_OK)
}

/// One drift comparison: a fresh read of the state and the cloud.
async fn drift_once(s: &mut Session) -> rinfra_engine::drift::Report {
    use rinfra_engine::drift::{Report, compare};
    let started = std::time::SystemTime::now();
    let t = Instant::now();
    let state = match rinfra_state::load_or_new(&s.state_path, &s.stack.name) {
        Ok(st) => st,
        Err(e) => return Report::failed(&s.stack.name, started, t.elapsed(), e.to_string()),
    };
    match ops::refresh(&state, Some(&s.stack), &s.registry).await {
        Ok(observed) => Report::new(&s.stack.name, started, t.elapsed(), compare(&state, &observed, &s.registry)),
        Err(e) => Report::failed(&s.stack.name, started, t.elapsed(), e.to_string()),
    }
}

/// Runs the `--on-drift` hook with the report on its stdin.
async fn run_hook(cmd: &str, report: &Value, color: bool) {
    use tokio::io::AsyncWriteExt;
    let child = tokio::process::Command::new("sh").arg("-c").arg(cmd).stdin(std::process::Stdio::piped()).spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return output::warn(color, &format!("the --on-drift command could not start: {e}")),
    };
    if let Some(mut stdin) = child.stdin.take() {
        let body = serde_json::to_vec(report).unwrap_or_default();
        let _ = stdin.write_all(&body).await;
        let _ = stdin.write_all(b"\n").await;
    }
    match child.wait().await {
        Ok(st) if st.success() => {}
        Ok(st) => output::warn(color, &format!("the --on-drift command failed ({st})")),
        Err(e) => output::warn(color, &format!("the --on-drift command failed: {e}")),
    }
}

/// Brings the cloud back to the stack through the plan and apply path of
/// `up`, leaving protected resources alone. Holds the lock only meanwhile.
async fn remediate(s: &mut Session) -> Result<bool, Exit> {
    let _lock = s.lock("drift --remediate")?;
    let mut state = s.load_state()?;
    s.reconcile(&mut state, true).await?;
    let observed = s.refresh(&state).await?;
    let (p, skipped) = plan::plan_with(&s.stack, &state, &s.registry, Some(&observed), true).map_err(|e| s.fail(e))?;
    for name in &skipped {
        output::warn(s.color_err, &format!("`{name}` is protected; rinfra leaves its drift as it is"));
    }
    if p.is_empty() {
        println!("Nothing to remediate.");
        return Ok(true);
    }
    s.show_plan(&p);
    println!();
    s.apply(&p, &mut state).await
}

fn append_history(path: &std::path::Path, report: &Value) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(path)?;
    let mut line = serde_json::to_vec(report).map_err(std::io::Error::other)?;
    line.push(b'\n');
    f.write_all(&line)
}

async fn drift(g: &Global, a: DriftArgs) -> Result<Exit, Exit> {
    let mut s = Session::open(g)?;
    let every = match a.every.as_deref().map(rinfra_engine::drift::parse_duration).transpose() {
        Ok(e) => e,
        Err(msg) => return Err(s.fail(format!("--every: {msg}"))),
    };
    let history = a
        .history
        .clone()
        .or_else(|| every.map(|_| s.state_path.with_file_name(format!("{}.drift.jsonl", s.stack.name))));
    // SIGINT and SIGTERM end the loop after the current run.
    if every.is_some() {
        super::signals::graceful(true);
    }
    let stop = super::signals::STOP.clone();
    let mut runs = 0u64;
    let mut code;
    loop {
        let report = drift_once(&mut s).await;
        let doc = serde_json::to_value(&report).unwrap_or(Value::Null);
        runs += 1;
        if let Some(h) = &history {
            if let Err(e) = append_history(h, &doc) {
                output::warn(s.color_err, &format!("cannot append to {}: {e}", h.display()));
            }
        }
        if a.json {
            if every.is_some() {
                println!("{}", serde_json::to_string(&doc).unwrap_or_default());
            } else {
                output::json(&doc);
            }
        } else if every.is_some() {
            println!("{}", report.one_line());
        } else if let Some(e) = &report.error {
            output::error(s.color_err, e);
        } else if report.drifted() {
            println!("Drift found in stack `{}`:\n", report.stack);
            print!("{}", render::drift(&report.resources));
            println!(
                "\n{} modified, {} deleted, {} in sync ({} ms).",
                report.summary.modified, report.summary.deleted, report.summary.in_sync, report.duration_ms
            );
        } else {
            println!(
                "No drift: all {} resources of stack `{}` match the state ({} ms).",
                report.summary.in_sync, report.stack, report.duration_ms
            );
        }
        code = match report.status {
            "in-sync" => EXIT_OK,
            "drifted" => EXIT_CHANGES,
            _ => EXIT_ERROR,
        };
        if report.drifted() {
            if let Some(cmd) = &a.on_drift {
                run_hook(cmd, &doc, s.color_err).await;
            }
            if a.remediate {
                match remediate(&mut s).await {
                    Ok(true) => {}
                    Ok(false) | Err(_) => code = EXIT_ERROR,
                }
            }
        }
        let Some(period) = every else { break };
        if a.max_runs.is_some_and(|m| runs >= m) || stop.load(Ordering::SeqCst) {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(period) => {},
            _ = super::signals::WAKE.notified() => {},
        }
        if stop.load(Ordering::SeqCst) {
            break;
        }
    }
    s.print_stats();
    Ok(code)
}

async fn import(g: &Global, name: &str, id: &str) -> Result<Exit, Exit> {
    let s = Session::open(g)?;
    let _lock = s.lock("import")?;
    let mut state = s.load_state()?;
    ops::import(&mut state, &s.stack, &s.registry, name, id).await.map_err(|e| s.fail(e))?;
    s.save(&mut state)?;
    let type_ = state.resources.get(name).map(|r| r.type_.clone()).unwrap_or_default();
    println!("Imported `{id}` as `{name}` ({type_}). Run `rinfra preview` to see how it differs from the stack.");
    Ok(EXIT_OK)
}

fn load_existing_state(s: &Session) -> Result<StateFile, Exit> {
    match rinfra_state::load(&s.state_path, &s.stack.name).map_err(|e| s.fail(e))? {
        Some(st) => Ok(st),
        None => Err(s.fail(format!("there is no state at {}: run `rinfra up` first", s.state_path.display()))),
    }
}

fn state_list(g: &Global, as_json: bool) -> Result<Exit, Exit> {
    let s = Session::open(g)?;
    let state = load_existing_state(&s)?;
    if as_json {
        let resources: Vec<Value> = state
            .resources
            .iter()
            .map(|(name, r)| json!({"name": name, "type": r.type_, "id": r.id, "urn": r.urn, "dependencies": r.dependencies}))
            .collect();
        output::json(
            &json!({"version": JSON_VERSION, "stack": state.stack, "serial": state.serial, "resources": resources}),
        );
    } else {
        let width = state.resources.keys().map(String::len).max().unwrap_or(0);
        for (name, r) in &state.resources {
            println!("{name:<width$}  {:<28}  {}", r.type_, r.id);
        }
    }
    Ok(EXIT_OK)
}

fn state_show(g: &Global, name: &str, as_json: bool) -> Result<Exit, Exit> {
    let s = Session::open(g)?;
    let state = load_existing_state(&s)?;
    let Some(r) = state.resources.get(name) else {
        let known: Vec<&str> = state.resources.keys().map(String::as_str).collect();
        return Err(s.fail(format!("the state has no resource `{name}`; it has: {}", known.join(", "))));
    };
    if as_json {
        let mut v = serde_json::to_value(r).unwrap_or(Value::Null);
        if let Value::Object(m) = &mut v {
            m.insert("version".into(), json!(JSON_VERSION));
            m.insert("name".into(), json!(name));
        }
        output::json(&v);
    } else {
        println!("# {name}: {}", r.type_);
        println!("urn = {:?}\nid  = {:?}", r.urn, r.id);
        println!("\ninputs:");
        print!("{}", render::outputs(&r.inputs).lines().map(|l| format!("  {l}\n")).collect::<String>());
        println!("\noutputs:");
        print!("{}", render::outputs(&r.outputs).lines().map(|l| format!("  {l}\n")).collect::<String>());
        if !r.dependencies.is_empty() {
            println!("\ndependencies: {}", r.dependencies.join(", "));
        }
    }
    Ok(EXIT_OK)
}

fn state_rm(g: &Global, name: &str) -> Result<Exit, Exit> {
    let s = Session::open(g)?;
    let _lock = s.lock("state rm")?;
    let mut state = load_existing_state(&s)?;
    let Some(r) = state.resources.remove(name) else {
        return Err(s.fail(format!("the state has no resource `{name}`")));
    };
    let dependents: Vec<&String> =
        state.resources.iter().filter(|(_, o)| o.dependencies.iter().any(|d| d == name)).map(|(k, _)| k).collect();
    if !dependents.is_empty() {
        output::warn(
            s.color_err,
            &format!(
                "{} still depend on `{name}`",
                dependents.iter().map(|d| format!("`{d}`")).collect::<Vec<_>>().join(", ")
            ),
        );
    }
    s.save(&mut state)?;
    println!("Removed `{name}` ({} {}) from the state; it still exists in the cloud.", r.type_, r.id);
    Ok(EXIT_OK)
}

fn state_mv(g: &Global, old: &str, new: &str) -> Result<Exit, Exit> {
    let s = Session::open(g)?;
    let _lock = s.lock("state mv")?;
    let mut state = load_existing_state(&s)?;
    if state.resources.contains_key(new) {
        return Err(s.fail(format!("the state already has a resource `{new}`")));
    }
    let Some(mut r) = state.resources.remove(old) else {
        return Err(s.fail(format!("the state has no resource `{old}`")));
    };
    r.urn = StateFile::urn(&state.stack, &r.type_, new);
    state.resources.insert(new.to_string(), r);
    for other in state.resources.values_mut() {
        for d in other.dependencies.iter_mut().filter(|d| *d == old) {
            *d = new.to_string();
        }
    }
    s.save(&mut state)?;
    println!("Renamed `{old}` to `{new}` in the state; nothing in the cloud changed.");
    Ok(EXIT_OK)
}

async fn graph(g: &Global, with_plan: bool) -> Result<Exit, Exit> {
    let mut s = Session::open(g)?;
    let p = if with_plan {
        let mut state = s.load_state()?;
        s.reconcile(&mut state, false).await?;
        s.import_declared(&mut state, false).await?;
        let observed = s.refresh(&state).await?;
        Some(s.plan(&state, Some(&observed))?)
    } else {
        None
    };
    print!("{}", render::dot(&s.stack, p.as_ref()));
    Ok(EXIT_OK)
}
