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
