//! Everything the command line prints besides plans: progress, errors,
//! statistics, and JSON documents.

use super::ColorChoice;
use rinfra_engine::apply::{Event, Observer};
use rinfra_engine::plan::Op;
use rinfra_resources::schema::is_unknown;
use serde_json::Value;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

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
        Op::Replace => ("Replacing", "Replaced"),
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

impl JsonLines {
    /// A printer to stdout.
    pub fn new() -> Self {
        JsonLines { lock: Mutex::new(()), started: std::time::Instant::now() }
    }

    /// Prints one event line of `kind` with `fields`.
    pub fn emit(&self, kind: &str, fields: Value) {
        let mut line = serde_json::json!({"schema": EVENTS_SCHEMA, "event": kind, "elapsedMs": self.started.elapsed().as_millis() as u64});
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
