//! Expressions: YAML values whose strings may interpolate `${…}` references.

use crate::diag::{Diagnostic, Span};
use crate::yaml::{Key, Kind, Node};
use serde_json::Value;
use std::collections::BTreeMap;

/// A reference such as `${stream.name}` or `${prefix}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ref {
    /// The resource, variable or config name.
    pub root: String,
    /// The property path after the root.
    pub path: Vec<String>,
    /// Where the reference is written.
    pub span: Span,
}

/// A piece of an interpolated string.
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    /// Literal text.
    Lit(String),
    /// A reference to substitute.
    Ref(Ref),
}

/// A value from the stack file, still unevaluated.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// `null`.
    Null(Span),
    /// A boolean.
    Bool(bool, Span),
    /// A number.
    Number(serde_json::Number, Span),
    /// A string, possibly with references.
    Template(Vec<Part>, Span),
    /// A list.
    List(Vec<Expr>, Span),
    /// A mapping with its keys.
    Map(Vec<(Key, Expr)>, Span),
}

impl Expr {
    /// Where the expression is written.
    pub fn span(&self) -> Span {
        match self {
            Expr::Null(s)
            | Expr::Bool(_, s)
            | Expr::Number(_, s)
            | Expr::Template(_, s)
            | Expr::List(_, s)
            | Expr::Map(_, s) => *s,
        }
    }

    /// Appends every reference in the expression to `out`.
    pub fn collect_refs(&self, out: &mut Vec<Ref>) {
        match self {
            Expr::Template(parts, _) => out.extend(parts.iter().filter_map(|p| match p {
                Part::Ref(r) => Some(r.clone()),
                Part::Lit(_) => None,
            })),
            Expr::List(items, _) => items.iter().for_each(|i| i.collect_refs(out)),
            Expr::Map(entries, _) => entries.iter().for_each(|(_, v)| v.collect_refs(out)),
            _ => {}
        }
    }
}

fn valid_ref_segment(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Splits a string into literal text and references. `$${` writes a
/// literal `${`. `base` is where the string's first character is written,
/// or `None` when positions inside it cannot be known (block scalars).
pub fn parse_template(text: &str, node_span: Span, base: Option<Span>) -> Result<Vec<Part>, Diagnostic> {
    let chars: Vec<char> = text.chars().collect();
    let at = |offset: usize, len: usize| base.map(|b| b.sub(offset, len)).unwrap_or(node_span);
    let mut parts = Vec::new();
    let mut lit = String::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '$' && chars.get(i + 1) == Some(&'$') && chars.get(i + 2) == Some(&'{') {
            lit.push_str("${");
            i += 3;
            continue;
        }
        if chars[i] == '$' && chars.get(i + 1) == Some(&'{') {
            let Some(close) = chars[i + 2..].iter().position(|c| *c == '}') else {
                return Err(Diagnostic::new("`${` is never closed")
                    .at(at(i, 2), "opened here")
                    .with_hint("close the reference with `}`, or write `$${` for a literal `${`"));
            };
            let inner: String = chars[i + 2..i + 2 + close].iter().collect();
            let span = at(i, close + 3);
            let segments: Vec<&str> = inner.trim().split('.').collect();
            if segments.iter().any(|s| !valid_ref_segment(s)) {
                return Err(Diagnostic::new(format!("`${{{inner}}}` is not a valid reference"))
                    .at(span, "invalid reference")
                    .with_hint("write `${resource.property}`, `${variable}` or `${config}`"));
            }
            if !lit.is_empty() {
                parts.push(Part::Lit(std::mem::take(&mut lit)));
            }
            parts.push(Part::Ref(Ref {
                root: segments[0].to_string(),
                path: segments[1..].iter().map(|s| s.to_string()).collect(),
                span,
            }));
            i += close + 3;
            continue;
        }
        lit.push(chars[i]);
        i += 1;
    }
    if !lit.is_empty() || parts.is_empty() {
        parts.push(Part::Lit(lit));
    }
    Ok(parts)
}

/// Turns a YAML node into an expression, parsing every string's references.
/// Collects every malformed reference rather than stopping at the first.
pub fn parse_expr(node: &Node, lines: &[&str]) -> Result<Expr, Vec<Diagnostic>> {
    let mut diags = Vec::new();
    let e = build(node, lines, &mut diags);
    if diags.is_empty() { Ok(e) } else { Err(diags) }
}

fn build(node: &Node, lines: &[&str], diags: &mut Vec<Diagnostic>) -> Expr {
    let span = node.span;
    match &node.kind {
        Kind::Null => Expr::Null(span),
        Kind::Bool(b) => Expr::Bool(*b, span),
        Kind::Int(i) => Expr::Number((*i).into(), span),
        Kind::Float(f) => match serde_json::Number::from_f64(*f) {
            Some(n) => Expr::Number(n, span),
            None => {
                diags.push(Diagnostic::new("numbers must be finite").at(span, "not a finite number"));
                Expr::Null(span)
            }
        },
        Kind::Str(s) => {
            // Positions inside the string are exact for one-line scalars;
            // a quote before the text shifts them by one.
            let base = if span.line == span.end_line {
                let first =
                    lines.get(span.line.saturating_sub(1)).and_then(|l| l.chars().nth(span.col.saturating_sub(1)));
                match first {
                    Some('"') | Some('\'') => Some(span.sub(1, 0)),
                    Some('|') | Some('>') => None,
                    _ => Some(span),
                }
            } else {
                None
            };
            match parse_template(s, span, base) {
                Ok(parts) => Expr::Template(parts, span),
                Err(d) => {
                    diags.push(d);
                    Expr::Null(span)
                }
            }
        }
        Kind::Seq(items) => Expr::List(items.iter().map(|i| build(i, lines, diags)).collect(), span),
        Kind::Map(entries) => {
            Expr::Map(entries.iter().map(|(k, v)| (k.clone(), build(v, lines, diags))).collect(), span)
        }
    }
}

/// Looks up an attribute of a resource: `Some(value)` (possibly unknown), or
/// `None` when the resource has no such attribute.
pub type ResourceLookup<'a> = dyn Fn(&str, &[String]) -> Option<Value> + 'a;

/// What references resolve against.
pub struct EvalContext<'a> {
    /// Config values.
    pub config: &'a BTreeMap<String, Value>,
    /// Variable expressions.
    pub variables: &'a BTreeMap<String, Expr>,
    /// Resource attributes.
    pub resource: &'a ResourceLookup<'a>,
}

fn walk(mut v: Value, path: &[String]) -> Option<Value> {
    for p in path {
        if rinfra_provider::schema::is_unknown(&v) && v.is_string() {
            return Some(v);
        }
        v = v.get(p)?.clone();
    }
    Some(v)
}

fn to_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

impl EvalContext<'_> {
    fn lookup(&self, r: &Ref) -> Result<Value, Diagnostic> {
        let missing = || {
            Diagnostic::new(format!("`{}` has no value at `{}`", r.root, r.path.join(".")))
                .at(r.span, "nothing here")
                .with_hint("check the property path")
        };
        if let Some(v) = self.config.get(&r.root) {
            return walk(v.clone(), &r.path).ok_or_else(missing);
        }
        if let Some(e) = self.variables.get(&r.root) {
            let v = self.eval(e)?;
            return walk(v, &r.path).ok_or_else(missing);
        }
        (self.resource)(&r.root, &r.path).ok_or_else(missing)
    }

    /// Evaluates `e`. A string that is exactly one `${…}` keeps the type of
    /// what it references; anything else interpolates into text.
    pub fn eval(&self, e: &Expr) -> Result<Value, Diagnostic> {
        Ok(match e {
            Expr::Null(_) => Value::Null,
            Expr::Bool(b, _) => Value::Bool(*b),
            Expr::Number(n, _) => Value::Number(n.clone()),
            Expr::Template(parts, _) => match parts.as_slice() {
                [Part::Ref(r)] => self.lookup(r)?,
                _ => {
                    let mut s = String::new();
                    for p in parts {
                        match p {
                            Part::Lit(l) => s.push_str(l),
                            Part::Ref(r) => s.push_str(&to_text(&self.lookup(r)?)),
                        }
                    }
                    Value::String(s)
                }
            },
            Expr::List(items, _) => Value::Array(items.iter().map(|i| self.eval(i)).collect::<Result<_, _>>()?),
            Expr::Map(entries, _) => {
                let mut m = serde_json::Map::new();
                for (k, v) in entries {
                    m.insert(k.text.clone(), self.eval(v)?);
                }
                Value::Object(m)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sp() -> Span {
        Span::new(1, 10, 1, 40)
    }

    #[test]
    fn templates_split_into_literals_and_refs() {
        let parts = parse_template("${prefix}-kinesis-${s.name}", sp(), Some(sp())).unwrap();
        assert_eq!(parts.len(), 3);
        match &parts[2] {
            Part::Ref(r) => {
                assert_eq!(r.root, "s");
                assert_eq!(r.path, vec!["name".to_string()]);
                assert_eq!(r.span.col, 10 + 18);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn escapes_and_unclosed_refs() {
        assert_eq!(parse_template("$${x}", sp(), Some(sp())).unwrap(), vec![Part::Lit("${x}".into())]);
        let e = parse_template("a ${b", sp(), Some(sp())).unwrap_err();
        assert!(e.message.contains("never closed"));
        assert_eq!(e.span.map(|s| s.col), Some(12));
    }

    #[test]
    fn whole_string_refs_keep_their_type() {
        let config = BTreeMap::from([("n".to_string(), Value::from(3))]);
        let vars = BTreeMap::new();
        let none = |_: &str, _: &[String]| None;
        let ctx = EvalContext { config: &config, variables: &vars, resource: &none };
        let whole = Expr::Template(parse_template("${n}", sp(), None).unwrap(), sp());
        assert_eq!(ctx.eval(&whole).unwrap(), Value::from(3));
        let text = Expr::Template(parse_template("n=${n}", sp(), None).unwrap(), sp());
        assert_eq!(ctx.eval(&text).unwrap(), Value::from("n=3"));
    }
}
