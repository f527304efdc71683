//! Human-readable plans, in the style of Terraform and Pulumi.
//!
//! Rendering returns strings; only the command line prints them.

use crate::plan::{Op, Plan, PropChange, Reason, Step};
use rinfra_provider::schema::is_unknown;
use serde_json::Value;
use std::fmt::Write;

/// The exact line printed when nothing differs.
pub const NO_CHANGES: &str = "No changes. Your infrastructure matches the configuration.";

/// Colours for rendering, empty when colour is off.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    green: &'static str,
    yellow: &'static str,
    red: &'static str,
    dim: &'static str,
    bold: &'static str,
    reset: &'static str,
}

impl Style {
    /// ANSI colours when `color`, plain text otherwise.
    pub fn new(color: bool) -> Self {
        if color {
            Style {
                green: "\x1b[32m",
                yellow: "\x1b[33m",
                red: "\x1b[31m",
                dim: "\x1b[2m",
                bold: "\x1b[1m",
                reset: "\x1b[0m",
            }
        } else {
            Style { green: "", yellow: "", red: "", dim: "", bold: "", reset: "" }
        }
    }

    fn of(&self, op: Op) -> &'static str {
        match op {
            Op::Create => self.green,
            Op::Update => self.yellow,
            Op::Replace(_) | Op::Delete | Op::Forget => self.red,
            Op::Same => "",
        }
    }
}

const AFTER_APPLY: &str = "(known after apply)";

/// Renders a value on one line when it is short, or over several lines.
pub fn value(v: &Value, indent: usize) -> String {
    // Only a string can be unknown itself; a list or map shows its known
    // entries and marks the unknown ones.
    if v.is_string() && is_unknown(v) {
        return AFTER_APPLY.to_string();
    }
    let pad = " ".repeat(indent + 4);
    let close = " ".repeat(indent);
    match v {
        Value::String(s) if s.contains('\n') => {
            let mut out = String::from("<<-EOT\n");
            for line in s.lines() {
                let _ = writeln!(out, "{pad}{line}");
            }
            out.push_str(&close);
            out.push_str("EOT");
            out
        }
        Value::String(s) => {
            let shown = if s.chars().count() > 200 {
                format!("{}…", s.chars().take(200).collect::<String>())
            } else {
                s.clone()
            };
            format!("{shown:?}")
        }
        Value::Array(items) if items.is_empty() => "[]".into(),
        Value::Array(items) => {
            let mut out = String::from("[\n");
            for i in items {
                let _ = writeln!(out, "{pad}{},", value(i, indent + 4));
            }
            out.push_str(&close);
            out.push(']');
            out
        }
        Value::Object(m) if m.is_empty() => "{}".into(),
        Value::Object(m) => {
            let width = m.keys().map(|k| k.len() + 2).max().unwrap_or(0);
            let mut out = String::from("{\n");
            for (k, x) in m {
                let _ = writeln!(out, "{pad}{:<width$} = {}", format!("{k:?}"), value(x, indent + 4));
            }
            out.push_str(&close);
            out.push('}');
            out
        }
        other => other.to_string(),
    }
}

fn change_lines(out: &mut String, c: &PropChange, width: usize, st: &Style) {
    let pad = "      ";
    let mut forces = if c.replaces { format!(" {}# forces replacement{}", st.red, st.reset) } else { String::new() };
    if let Some(note) = &c.note {
        forces.push_str(&format!(" {}# {note}{}", st.dim, st.reset));
    }
    let drift = if c.drift { format!(" {}# changed outside rinfra{}", st.dim, st.reset) } else { String::new() };
    match (&c.old, &c.new) {
        (None, Some(n)) => {
            let _ = writeln!(out, "{pad}{}+{} {:<width$} = {}{forces}{drift}", st.green, st.reset, c.name, value(n, 6));
        }
        (Some(o), None) => {
            let _ = writeln!(out, "{pad}{}-{} {:<width$} = {}{forces}{drift}", st.red, st.reset, c.name, value(o, 6));
        }
        (Some(Value::String(o)), Some(Value::String(n)))
            if (o.contains('\n') || n.contains('\n')) && !is_unknown(&c.new.clone().unwrap_or_default()) =>
        {
            let _ = writeln!(out, "{pad}{}~{} {:<width$} = <<-EOT{forces}{drift}", st.yellow, st.reset, c.name);
            let diff = similar::TextDiff::from_lines(o.as_str(), n.as_str());
            for ch in diff.iter_all_changes() {
                let (sign, col) = match ch.tag() {
                    similar::ChangeTag::Delete => ("-", st.red),
                    similar::ChangeTag::Insert => ("+", st.green),
                    similar::ChangeTag::Equal => (" ", ""),
                };
                let _ = write!(out, "{pad}    {col}{sign} {}{}", ch.value().trim_end_matches('\n'), st.reset);
                out.push('\n');
            }
            let _ = writeln!(out, "{pad}  EOT");
        }
        (Some(Value::Object(o)), Some(Value::Object(n))) => {
            let _ = writeln!(out, "{pad}{}~{} {:<width$} = {{{forces}{drift}", st.yellow, st.reset, c.name);
            let keys: std::collections::BTreeSet<&String> = o.keys().chain(n.keys()).collect();
            for k in keys {
                match (o.get(k), n.get(k)) {
                    (Some(a), Some(b)) if a == b => {}
                    (Some(a), Some(b)) => {
                        let _ = writeln!(
                            out,
                            "{pad}    {}~{} {k:?} = {} -> {}",
                            st.yellow,
                            st.reset,
                            value(a, 10),
                            value(b, 10)
                        );
                    }
                    (None, Some(b)) => {
                        let _ = writeln!(out, "{pad}    {}+{} {k:?} = {}", st.green, st.reset, value(b, 10));
                    }
                    (Some(a), None) => {
                        let _ = writeln!(out, "{pad}    {}-{} {k:?} = {}", st.red, st.reset, value(a, 10));
                    }
                    (None, None) => {}
                }
            }
            let _ = writeln!(out, "{pad}  }}");
        }
        (Some(Value::Array(o)), Some(Value::Array(n))) if !is_unknown(&Value::Array(n.clone())) => {
            let _ = writeln!(out, "{pad}{}~{} {:<width$} = [{forces}{drift}", st.yellow, st.reset, c.name);
            for x in o.iter().filter(|x| !n.contains(x)) {
                let _ = writeln!(out, "{pad}    {}-{} {},", st.red, st.reset, value(x, 10));
            }
            for x in n.iter().filter(|x| !o.contains(x)) {
                let _ = writeln!(out, "{pad}    {}+{} {},", st.green, st.reset, value(x, 10));
            }
            let _ = writeln!(out, "{pad}  ]");
        }
        (Some(o), Some(n)) => {
            let _ = writeln!(
                out,
                "{pad}{}~{} {:<width$} = {} -> {}{forces}{drift}",
                st.yellow,
                st.reset,
                c.name,
                value(o, 6),
                value(n, 6)
            );
        }
        (None, None) => {}
    }
}

fn header(step: &Step) -> String {
    match step.op {
        Op::Create => match &step.reason {
            Some(r) => format!("{} will be created ({r})", step.name),
            None => format!("{} will be created", step.name),
        },
        Op::Update => format!("{} will be updated in place", step.name),
        Op::Replace(order) => {
            let why = step.reason.as_ref().map(|r| format!("; {r}")).unwrap_or_default();
            format!("{} must be replaced ({}{why})", step.name, order.explain())
        }
        Op::Delete => match &step.reason {
            Some(r) => format!("{} will be deleted ({r})", step.name),
            None => format!("{} will be deleted", step.name),
        },
        Op::Forget => match &step.reason {
            Some(r) => format!("{} will be removed from the state ({r})", step.name),
            None => format!("{} will be removed from the state but kept in the cloud (retainOnDelete)", step.name),
        },
        Op::Same => format!("{} is unchanged", step.name),
    }
}

/// Renders one step.
pub fn step(out: &mut String, s: &Step, st: &Style) {
    let col = st.of(s.op);
    let _ = writeln!(out, "  {}# {}{}", st.bold, header(s), st.reset);
    let _ = writeln!(out, "  {col}{}{} {}{}{} ({})", s.op.symbol(), st.reset, st.bold, s.name, st.reset, s.type_);
    match s.op {
        Op::Create => {
            let inputs = s.inputs.clone().unwrap_or_default();
            let width = inputs.keys().map(String::len).max().unwrap_or(0);
            for (k, v) in &inputs {
                let _ = writeln!(out, "      {}+{} {:<width$} = {}", st.green, st.reset, k, value(v, 6));
            }
        }
        Op::Update | Op::Replace(_) => {
            let width = s.changes.iter().map(|c| c.name.len()).max().unwrap_or(0);
            for c in &s.changes {
                change_lines(out, c, width, st);
            }
        }
        Op::Delete | Op::Forget => {
            if let Some(id) = &s.id {
                let _ = writeln!(out, "      {}id = {id:?}{}", st.dim, st.reset);
            }
        }
        Op::Same => {}
    }
    out.push('\n');
}

/// Renders the changes made outside rinfra that a refresh found, as
/// Terraform's "Objects have changed outside of Terraform" note.
fn drift_note(out: &mut String, plan: &Plan, st: &Style) {
    let drifted: Vec<&Step> = plan
        .steps
        .iter()
        .filter(|s| s.changes.iter().any(|c| c.drift) || s.reason == Some(Reason::DeletedOutside))
        .collect();
    if drifted.is_empty() {
        return;
    }
    let _ = writeln!(out, "{}Objects have changed outside of rinfra:{}\n", st.bold, st.reset);
    for s in drifted {
        if s.reason == Some(Reason::DeletedOutside) {
            let _ = writeln!(out, "  {}# {} has been deleted{}", st.bold, s.name, st.reset);
            continue;
        }
        let _ = writeln!(out, "  {}# {} has changed{}", st.bold, s.name, st.reset);
        for c in s.changes.iter().filter(|c| c.drift) {
            let _ = writeln!(
                out,
                "      {}~{} {} = {} (was {})",
                st.yellow,
                st.reset,
                c.name,
                c.old.as_ref().map(|v| value(v, 6)).unwrap_or_else(|| "null".into()),
                c.new.as_ref().map(|v| value(v, 6)).unwrap_or_else(|| "null".into()),
            );
        }
    }
    out.push('\n');
}

/// Renders a whole plan, or the "No changes" line.
pub fn plan(p: &Plan, color: bool) -> String {
    let st = Style::new(color);
    if p.is_empty() {
        return format!("{NO_CHANGES}\n");
    }
    let mut out = String::new();
    drift_note(&mut out, p, &st);
    if p.has_resource_changes() {
        let _ = writeln!(out, "rinfra will perform the following actions:\n");
        for s in p.steps.iter().filter(|s| s.op != Op::Same) {
            step(&mut out, s, &st);
        }
    }
    let sum = p.summary();
    let _ = writeln!(
        out,
        "{}Plan:{} {} to create, {} to update, {} to replace, {} to delete.",
        st.bold, st.reset, sum.create, sum.update, sum.replace, sum.delete
    );
    if !p.outputs.is_empty() {
        let _ = writeln!(out, "\nChanges to outputs:");
        let width = p.outputs.iter().map(|o| o.name.len()).max().unwrap_or(0);
        for o in &p.outputs {
            let line = match (&o.old, &o.new) {
                (None, Some(n)) => format!("{}+{} {:<width$} = {}", st.green, st.reset, o.name, value(n, 2)),
                (Some(old), None) => format!("{}-{} {:<width$} = {}", st.red, st.reset, o.name, value(old, 2)),
                (Some(old), Some(n)) => {
                    format!("{}~{} {:<width$} = {} -> {}", st.yellow, st.reset, o.name, value(old, 2), value(n, 2))
                }
                (None, None) => continue,
            };
            let _ = writeln!(out, "  {line}");
        }
    }
    out
}

/// Renders stack outputs as `name = value` lines, aligned.
pub fn outputs(values: &std::collections::BTreeMap<String, Value>) -> String {
    let width = values.keys().map(String::len).max().unwrap_or(0);
    let mut out = String::new();
    for (k, v) in values {
        let _ = writeln!(out, "{k:<width$} = {}", value(v, 0));
    }
    out
}

/// Renders the resources that drifted, property by property.
pub fn drift(resources: &[crate::drift::ResourceDrift]) -> String {
    use crate::drift::Status;
    let mut out = String::new();
    for r in resources {
        match r.status {
            Status::InSync => {}
            Status::Deleted => {
                let _ = writeln!(out, "  # {} ({}) has been deleted", r.name, r.type_);
            }
            Status::Modified => {
                let _ = writeln!(out, "  # {} ({}) has changed", r.name, r.type_);
                let width = r.changes.iter().map(|c| c.property.len()).max().unwrap_or(0);
                for c in &r.changes {
                    let show = |v: &Option<Value>| v.as_ref().map(|v| value(v, 6)).unwrap_or_else(|| "null".into());
                    let _ =
                        writeln!(out, "      ~ {:<width$} = {} -> {}", c.property, show(&c.recorded), show(&c.actual));
                }
            }
        }
    }
    out
}

/// The dependency graph as Graphviz DOT: an edge from each resource to
/// what depends on it, and with a plan, each node marked with its
/// operation (resources only in the state appear as deletes).
pub fn dot(stack: &crate::stack::Stack, plan: Option<&Plan>) -> String {
    let quote = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    let mut out = String::from(
        "digraph rinfra {\n  rankdir=LR;\n  node [shape=box, style=\"rounded,filled\", fillcolor=white, fontname=\"Helvetica\"];\n",
    );
    let _ = writeln!(out, "  label={};\n  labelloc=t;", quote(&format!("stack {}", stack.name)));
    let op_of = |name: &str| plan.and_then(|p| p.steps.iter().find(|s| s.name == name)).map(|s| s.op);
    let fill = |op: Option<Op>| match op {
        Some(Op::Create) => "#d4f7d4",
        Some(Op::Update) => "#fff3c4",
        Some(Op::Replace(_)) => "#ffd6a5",
        Some(Op::Delete | Op::Forget) => "#ffd0d0",
        _ => "white",
    };
    let mut nodes: Vec<(String, String, Option<Op>)> = stack
        .order
        .iter()
        .filter_map(|n| stack.resources.get(n))
        .map(|r| (r.name.clone(), r.type_.clone(), op_of(&r.name)))
        .collect();
    if let Some(p) = plan {
        for s in p.steps.iter().filter(|s| matches!(s.op, Op::Delete | Op::Forget)) {
            nodes.push((s.name.clone(), s.type_.clone(), Some(s.op)));
        }
    }
    for (name, type_, op) in &nodes {
        let label = match op {
            Some(o) if plan.is_some() && *o != Op::Same => format!("{} {name}\\n{type_}", o.symbol()),
            _ => format!("{name}\\n{type_}"),
        };
        let _ =
            writeln!(out, "  {} [label=\"{}\", fillcolor=\"{}\"];", quote(name), label.replace('"', "\\\""), fill(*op));
    }
    for n in &stack.order {
        if let Some(r) = stack.resources.get(n) {
            for d in &r.dependencies {
                let _ = writeln!(out, "  {} -> {};", quote(d), quote(n));
            }
        }
    }
    out.push_str("}\n");
    out
}

/// The text shown instead of a secret.
pub const SECRET: &str = "[secret]";

/// Replaces every occurrence of a secret inside `v` with [`SECRET`].
fn mask_value(v: &mut Value, secrets: &[String]) {
    match v {
        Value::String(s) => {
            for secret in secrets {
                if s.contains(secret.as_str()) {
                    *s = s.replace(secret.as_str(), SECRET);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| mask_value(i, secrets)),
        Value::Object(m) => m.values_mut().for_each(|i| mask_value(i, secrets)),
        Value::Number(n) if secrets.iter().any(|s| *s == n.to_string()) => *v = Value::String(SECRET.into()),
        _ => {}
    }
}

/// Masks the secrets in every value of a plan, before it is shown.
fn mask_plan(p: &mut Plan, secrets: &[String]) {
    if secrets.is_empty() {
        return;
    }
    let props = |m: &mut Option<rinfra_provider::Props>| {
        for v in m.iter_mut().flat_map(|m| m.values_mut()) {
            mask_value(v, secrets);
        }
    };
    for s in &mut p.steps {
        props(&mut s.inputs);
        props(&mut s.current);
        for c in &mut s.changes {
            c.old.iter_mut().chain(c.new.iter_mut()).for_each(|v| mask_value(v, secrets));
        }
    }
    for o in &mut p.outputs {
        o.old.iter_mut().chain(o.new.iter_mut()).for_each(|v| mask_value(v, secrets));
    }
}

/// A value fit to show: every secret in it masked, or revealed on purpose.
/// The command line prints plans, outputs and drift reports only through
/// this type, so a path that forgets to mask does not compile.
#[derive(Debug, Clone, PartialEq)]
pub struct Shown<T>(T);

impl<T> Shown<T> {
    /// The value.
    pub fn get(&self) -> &T {
        &self.0
    }

    /// Shows `value` as it is: for `--show-secrets`, and for values that
    /// cannot hold a secret.
    pub fn revealed(value: T) -> Self {
        Shown(value)
    }
}

/// The secret values of a stack, and the one place that masks them.
#[derive(Debug, Clone, Default)]
pub struct Secrets(Vec<String>);

impl Secrets {
    /// The secrets `values`.
    pub fn new(values: Vec<String>) -> Self {
        Secrets(values)
    }

    /// A plan with its secrets masked.
    pub fn plan(&self, p: &Plan) -> Shown<Plan> {
        let mut shown = p.clone();
        mask_plan(&mut shown, &self.0);
        Shown(shown)
    }

    /// Stack outputs with their secrets masked.
    pub fn outputs(
        &self,
        o: &std::collections::BTreeMap<String, Value>,
    ) -> Shown<std::collections::BTreeMap<String, Value>> {
        let mut o = o.clone();
        o.values_mut().for_each(|v| mask_value(v, &self.0));
        Shown(o)
    }

    /// Any JSON value (a drift report, a resource) with its secrets masked.
    pub fn value(&self, v: &Value) -> Shown<Value> {
        let mut v = v.clone();
        mask_value(&mut v, &self.0);
        Shown(v)
    }
}
