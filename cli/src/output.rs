//! The one module of the command line that prints: plans, progress,
//! reports, outputs, errors, statistics and JSON documents. Plans, outputs
//! and reports reach it only as [`Shown`] values, with secrets masked.

use crate::args::ColorChoice;
use crate::error::CliError;
use rinfra_engine::apply::{Event, Observer, Report};
use rinfra_engine::plan::{Op, Plan};
use rinfra_engine::render::{self, Shown};
use rinfra_provider::schema::is_unknown;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

/// Version of every JSON document the command line prints.
pub const JSON_VERSION: u32 = 1;

/// Whether to colour output on `stream`.
pub fn use_color(choice: ColorChoice, stdout: bool) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            let tty = if stdout { std::io::stdout().is_terminal() } else { std::io::stderr().is_terminal() };
            tty && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        }
    }
}

/// Prints an error line to stderr.
pub fn error(color: bool, message: &str) {
    if color {
        eprintln!("\x1b[1;31merror\x1b[0m: {message}");
    } else {
        eprintln!("error: {message}");
    }
}

/// Prints a warning line to stderr.
pub fn warn(color: bool, message: &str) {
    if color {
        eprintln!("\x1b[1;33mwarning\x1b[0m: {message}");
    } else {
        eprintln!("warning: {message}");
    }
}

/// The verb for an operation, as progress lines say it.
pub fn verb(op: Op) -> (&'static str, &'static str) {
    match op {
        Op::Create => ("Creating", "Created"),
        Op::Update => ("Updating", "Updated"),
        Op::Replace(_) => ("Replacing", "Replaced"),
        Op::Delete => ("Deleting", "Deleted"),
        Op::Forget => ("Forgetting", "Forgot"),
        Op::Same => ("Checking", "Checked"),
    }
}

/// Formats a duration the way progress lines show it.
pub fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

/// Prints one plain line per event, as Terraform does on a pipe.
pub struct LinePrinter {
    lock: Mutex<()>,
}

impl Default for LinePrinter {
    fn default() -> Self {
        Self::new()
    }
}

impl LinePrinter {
    /// A printer to stdout.
    pub fn new() -> Self {
        LinePrinter { lock: Mutex::new(()) }
    }
}

impl Observer for LinePrinter {
    fn event(&self, e: Event) {
        let _guard = self.lock.lock();
        let mut out = std::io::stdout().lock();
        let _ = match e {
            Event::Started { name, op } => writeln!(out, "{name}: {}...", verb(op).0),
            Event::Status { name, message } => writeln!(out, "{name}: {message}"),
            Event::Done { name, op, elapsed } => writeln!(out, "{name}: {} ({})", verb(op).1, secs(elapsed)),
            Event::Failed { name, op, error } => writeln!(out, "{name}: {} failed: {error}", verb(op).0.to_lowercase()),
        };
        let _ = out.flush();
    }
}

/// Replaces values not known yet with a readable marker, for JSON output.
pub fn readable(v: Value) -> Value {
    match v {
        Value::String(_) if is_unknown(&v) => Value::String("(known after apply)".into()),
        Value::Array(items) => Value::Array(items.into_iter().map(readable).collect()),
        Value::Object(m) => Value::Object(m.into_iter().map(|(k, x)| (k, readable(x))).collect()),
        other => other,
    }
}

/// Prints a JSON document on stdout.
pub fn json(v: &Value) {
    match serde_json::to_string_pretty(v) {
        Ok(s) => println!("{s}"),
        Err(e) => error(false, &format!("cannot print JSON: {e}")),
    }
}

/// The schema name of the JSON lines that `up --json` and `destroy --json`
/// print.
pub const EVENTS_SCHEMA: &str = "rinfra.events/v1";

/// Prints one JSON object per line for every event, for machines.
pub struct JsonLines {
    lock: Mutex<()>,
    started: std::time::Instant,
}

impl Default for JsonLines {
    fn default() -> Self {
        Self::new()
    }
}

impl JsonLines {
    /// A printer to stdout.
    pub fn new() -> Self {
        JsonLines { lock: Mutex::new(()), started: std::time::Instant::now() }
    }

    /// Prints one event line of `kind` with `fields`.
    pub fn emit(&self, kind: &str, fields: Value) {
        let elapsed = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let mut line = serde_json::json!({"schema": EVENTS_SCHEMA, "event": kind, "elapsedMs": elapsed});
        if let (Value::Object(m), Value::Object(f)) = (&mut line, fields) {
            m.extend(f);
        }
        let _guard = self.lock.lock();
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", serde_json::to_string(&readable(line)).unwrap_or_default());
        let _ = out.flush();
    }
}

impl Observer for JsonLines {
    fn event(&self, e: Event) {
        use serde_json::json;
        match e {
            Event::Started { name, op } => self.emit("started", json!({"resource": name, "op": op})),
            Event::Status { name, message } => self.emit("status", json!({"resource": name, "message": message})),
            Event::Done { name, op, elapsed } => {
                self.emit("done", json!({"resource": name, "op": op, "seconds": elapsed.as_secs_f64()}))
            }
            Event::Failed { name, op, error } => {
                self.emit("failed", json!({"resource": name, "op": op, "error": error}))
            }
        }
    }
}

/// Live progress on a terminal: a spinner per resource with its current
/// status and elapsed time, replaced by a result line when it ends.
pub struct TermProgress {
    multi: indicatif::MultiProgress,
    bars: Mutex<std::collections::BTreeMap<String, indicatif::ProgressBar>>,
    color: bool,
}

impl TermProgress {
    /// Progress bars on stdout.
    pub fn new(color: bool) -> Self {
        TermProgress { multi: indicatif::MultiProgress::new(), bars: Mutex::new(Default::default()), color }
    }
}

impl Observer for TermProgress {
    fn event(&self, e: Event) {
        let Ok(mut bars) = self.bars.lock() else { return };
        let (ok, fail, reset) = if self.color { ("\x1b[32m", "\x1b[31m", "\x1b[0m") } else { ("", "", "") };
        match e {
            Event::Started { name, op } => {
                let bar = self.multi.add(indicatif::ProgressBar::new_spinner());
                if let Ok(style) = indicatif::ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
                    bar.set_style(style);
                }
                bar.enable_steady_tick(Duration::from_millis(120));
                bar.set_message(format!("{name}: {}...", verb(op).0));
                bars.insert(name, bar);
            }
            Event::Status { name, message } => {
                if let Some(bar) = bars.get(&name) {
                    bar.set_message(format!("{name}: {message}"));
                }
            }
            Event::Done { name, op, elapsed } => {
                if let Some(bar) = bars.remove(&name) {
                    bar.set_style(
                        indicatif::ProgressStyle::default_spinner()
                            .template("{msg}")
                            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
                    );
                    bar.finish_with_message(format!("{ok}✓{reset} {name}: {} ({})", verb(op).1, secs(elapsed)));
                }
            }
            Event::Failed { name, op, error } => {
                if let Some(bar) = bars.remove(&name) {
                    bar.set_style(
                        indicatif::ProgressStyle::default_spinner()
                            .template("{msg}")
                            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
                    );
                    bar.finish_with_message(format!(
                        "{fail}✗{reset} {name}: {} failed: {error}",
                        verb(op).0.to_lowercase()
                    ));
                }
            }
        }
    }
}

/// Prints a line on stdout.
pub fn line(text: &str) {
    println!("{text}");
}

/// Prints text on stdout as it is.
pub fn text(text: &str) {
    print!("{text}");
}

/// Prints a note on stderr.
pub fn note(text: &str) {
    eprintln!("{text}");
}

/// Renders an error once: stack diagnostics with carets under the
/// offending source, anything else as one line with its causes.
pub fn render_error(color: bool, e: &CliError) {
    use rinfra_engine::load::LoadError;
    let load = match e {
        CliError::Engine(rinfra_engine::Error::Load(l)) => Some(l),
        CliError::Engine(rinfra_engine::Error::Project(rinfra_engine::project::ProjectError::Invalid(l))) => {
            Some(l.as_ref())
        }
        _ => None,
    };
    if let Some(
        LoadError::Invalid { path, source_text, diagnostics }
        | LoadError::InvalidConfig { path, source_text, diagnostics },
    ) = load
    {
        eprint!("{}", diagnostics.render(&path.display().to_string(), source_text, color));
        return;
    }
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        // Wrapped errors that repeat their cause add nothing.
        if !message.contains(&text) {
            message = format!("{message}: {text}");
        }
        source = s.source();
    }
    error(color, &message);
}

/// Asks on the terminal; only `yes` approves.
pub fn confirm(question: &str) -> bool {
    print!("\n{question}\n  Only 'yes' will be accepted to approve.\n\n  Enter a value: ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    line.trim() == "yes"
}

/// A plan as its JSON document.
pub fn plan_json(p: &Shown<Plan>) -> Value {
    let p = p.get();
    let mut steps = serde_json::to_value(&p.steps).unwrap_or(Value::Null);
    // Which half of a replace goes first is part of the document.
    if let Value::Array(items) = &mut steps {
        for (item, step) in items.iter_mut().zip(&p.steps) {
            if let (Value::Object(m), Op::Replace(order)) = (item, step.op) {
                if order.deletes_first() {
                    m.insert("deleteBeforeReplace".into(), json!(true));
                }
            }
        }
    }
    readable(json!({
        "version": JSON_VERSION,
        "stack": p.stack,
        "refreshed": p.refreshed,
        "changes": !p.is_empty(),
        "summary": p.summary(),
        "steps": steps,
        "outputs": p.outputs,
    }))
}

/// Prints a plan as text.
pub fn plan(p: &Shown<Plan>, color: bool) {
    print!("{}", render::plan(p.get(), color));
}

/// Prints text as it is, such as an exported state.
pub fn raw(text: &str) {
    print!("{text}");
}

/// Prints stack outputs as `name = value` lines.
pub fn outputs(o: &Shown<BTreeMap<String, Value>>) {
    print!("{}", render::outputs(o.get()));
}

/// Prints the end of an apply: the summary, or every failure. With
/// `events`, one `summary` JSON line instead.
pub fn report(
    color_err: bool,
    events: Option<&JsonLines>,
    report: &Report,
    title: &str,
    took: Duration,
    outputs: &Shown<BTreeMap<String, Value>>,
) {
    let created = report.count(|o| o == Op::Create);
    let updated = report.count(|o| o == Op::Update);
    let replaced = report.count(Op::is_replace);
    let deleted = report.count(|o| matches!(o, Op::Delete | Op::Forget));
    if let Some(e) = events {
        let failures: Vec<Value> = report
            .failures
            .iter()
            .map(|f| json!({"resource": f.name, "op": f.op, "error": f.error.to_string()}))
            .collect();
        e.emit(
            "summary",
            json!({
                "ok": report.ok(),
                "created": created,
                "updated": updated,
                "replaced": replaced,
                "deleted": deleted,
                "failures": failures,
                "interrupted": report.interrupted,
                "skipped": report.skipped,
                "durationMs": u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
                "outputs": outputs.get(),
            }),
        );
        return;
    }
    if report.ok() {
        println!(
            "\n{title} complete! Resources: {created} created, {updated} updated, {replaced} replaced, {deleted} deleted. ({})",
            secs(took)
        );
        if !outputs.get().is_empty() {
            println!("\nOutputs:\n");
            print!("{}", render::outputs(outputs.get()));
        }
        return;
    }
    for f in &report.failures {
        error(color_err, &format!("{} of `{}` failed: {}", verb(f.op).0.to_lowercase(), f.name, f.error));
    }
    if report.interrupted {
        error(color_err, "interrupted before every operation started; run the command again to finish");
    }
    if report.skipped > 0 {
        error(color_err, &format!("{} operation(s) were not started because of the failure", report.skipped));
    }
    error(
        color_err,
        &format!("{title} failed after {} operation(s) succeeded; the state records what exists", report.done.len()),
    );
}

/// Prints time per phase and API calls per operation on stderr.
pub fn stats(phases: &[(&'static str, Duration)], calls: &BTreeMap<String, u64>) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "\nStatistics:");
    for (phase, d) in phases {
        let _ = writeln!(err, "  {phase:<8} {:>8.1} ms", d.as_secs_f64() * 1000.0);
    }
    let _ = writeln!(err, "  API calls: {}", calls.values().sum::<u64>());
    for (op, n) in calls {
        let _ = writeln!(err, "    {op:<40} {n}");
    }
}

/// The progress display for an apply: bars on a terminal, else lines.
pub fn progress(color: bool) -> std::sync::Arc<dyn Observer> {
    if std::io::stdout().is_terminal() {
        std::sync::Arc::new(TermProgress::new(color))
    } else {
        std::sync::Arc::new(LinePrinter::new())
    }
}

/// Prints drifted resources as text, secrets masked.
pub fn drift(secrets: &rinfra_engine::render::Secrets, changes: &[rinfra_engine::drift::ResourceDrift]) {
    let mut shown = changes.to_vec();
    for r in &mut shown {
        for ch in &mut r.changes {
            for v in ch.recorded.iter_mut().chain(ch.actual.iter_mut()) {
                *v = secrets.value(v).get().clone();
            }
        }
    }
    print!("{}", render::drift(&shown));
}

/// Prints one drift run: JSON (a line per run on a schedule), a summary
/// line on a schedule, or the full text once.
pub fn drift_report(
    secrets: &rinfra_engine::render::Secrets,
    report: &rinfra_engine::drift::Report,
    doc: &Shown<Value>,
    as_json: bool,
    scheduled: bool,
    color_err: bool,
) {
    if as_json {
        if scheduled {
            println!("{}", serde_json::to_string(doc.get()).unwrap_or_default());
        } else {
            json(doc.get());
        }
    } else if scheduled {
        println!("{}", secrets.value(&Value::String(report.one_line())).get().as_str().unwrap_or_default());
    } else if let Some(e) = &report.error {
        error(color_err, e);
    } else if report.drifted() {
        println!("Drift found in stack `{}`:\n", report.stack);
        drift(secrets, &report.resources);
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
}

/// Prints one resource of the state, as JSON or as text.
pub fn resource(v: &Shown<Value>, as_json: bool) {
    let v = v.get();
    if as_json {
        return json(v);
    }
    let field = |k: &str| v.get(k).cloned().unwrap_or(Value::Null);
    let props = |k: &str| -> BTreeMap<String, Value> {
        field(k).as_object().map(|m| m.clone().into_iter().collect()).unwrap_or_default()
    };
    println!("# {}: {}", field("name").as_str().unwrap_or_default(), field("type").as_str().unwrap_or_default());
    println!("urn = {}\nid  = {}", field("urn"), field("id"));
    for section in ["inputs", "outputs"] {
        println!("\n{section}:");
        for l in render::outputs(&props(section)).lines() {
            println!("  {l}");
        }
    }
    let deps: Vec<String> =
        field("dependencies").as_array().into_iter().flatten().filter_map(|d| d.as_str().map(str::to_string)).collect();
    if !deps.is_empty() {
        println!("\ndependencies: {}", deps.join(", "));
    }
}

/// Prints shell completions.
pub fn completions(shell: clap_complete::Shell, cmd: &mut clap::Command) {
    clap_complete::generate(shell, cmd, "rinfra", &mut std::io::stdout());
}
