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

/// A built-in function of Pulumi YAML, written `fn::<name>: <arguments>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    /// `fn::join: [delimiter, [values]]`: the values joined into text.
    Join,
    /// `fn::split: [delimiter, text]`: the text split into a list.
    Split,
    /// `fn::select: [index, [values]]`: one element of a list.
    Select,
    /// `fn::toJSON: value`: the value as compact JSON text.
    ToJson,
    /// `fn::toBase64: text`: the text's UTF-8 bytes in base64.
    ToBase64,
    /// `fn::fromBase64: text`: base64 decoded, as UTF-8 text.
    FromBase64,
    /// `fn::readFile: path`: a file's text, relative to the program.
    ReadFile,
    /// `fn::secret: value`: the value, shown and stored as a secret.
    Secret,
}

/// The functions rinfra has, as they are written.
pub const BUILTINS: &[(&str, Builtin)] = &[
    ("fn::join", Builtin::Join),
    ("fn::split", Builtin::Split),
    ("fn::select", Builtin::Select),
    ("fn::toJSON", Builtin::ToJson),
    ("fn::toBase64", Builtin::ToBase64),
    ("fn::fromBase64", Builtin::FromBase64),
    ("fn::readFile", Builtin::ReadFile),
    ("fn::secret", Builtin::Secret),
];

/// The largest file `fn::readFile` reads.
pub const MAX_READ_FILE: u64 = 1024 * 1024;

impl Builtin {
    /// How the function is written.
    pub fn name(self) -> &'static str {
        BUILTINS.iter().find(|(_, b)| *b == self).map_or("fn::?", |(n, _)| n)
    }
}

/// A call of a provider function, `fn::invoke` (or its short form
/// `fn::aws:getRegion: {}`).
#[derive(Debug, Clone, PartialEq)]
pub struct Invoke {
    /// The function's token, in canonical form.
    pub function: String,
    /// Where the token is written.
    pub function_span: Span,
    /// Its arguments, a mapping.
    pub arguments: Box<Expr>,
    /// The one returned value to keep, if `return:` names it.
    pub ret: Option<(String, Span)>,
}

impl Invoke {
    /// The key a result is cached under: the function and its arguments.
    pub fn key(&self, args: &Value) -> String {
        format!("{}\u{0}{args}", self.function)
    }
}

/// Results of provider functions already called, by [`Invoke::key`],
/// with the arguments each function gets unless a call gives them. One
/// run keeps one, so each distinct call is made once, as Pulumi makes it
/// once per preview or update. It is plain data: whoever owns it (the
/// session) changes it, never an evaluation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InvokeResults {
    results: BTreeMap<String, Value>,
    defaults: BTreeMap<String, serde_json::Map<String, Value>>,
}

impl InvokeResults {
    /// No results yet, with the arguments each function gets by default:
    /// those of the package's default provider (its region), as Pulumi
    /// sends an invoke to the default provider.
    pub fn with_defaults(defaults: BTreeMap<String, serde_json::Map<String, Value>>) -> Self {
        InvokeResults { results: BTreeMap::new(), defaults }
    }

    /// A call's arguments with the function's defaults filled in.
    pub fn arguments(&self, function: &str, args: Value) -> Value {
        match (self.defaults.get(function), args) {
            (Some(defaults), Value::Object(mut given)) => {
                for (k, v) in defaults {
                    given.entry(k.clone()).or_insert_with(|| v.clone());
                }
                Value::Object(given)
            }
            (_, args) => args,
        }
    }

    /// The result of the call with this key, if it was made.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.results.get(key)
    }

    /// Records a call's result.
    pub fn insert(&mut self, key: String, v: Value) {
        self.results.insert(key, v);
    }
}

/// A function token in canonical form: `aws:getRegion` and
/// `aws:index:getRegion` are `aws:index/getRegion:getRegion`, and
/// `aws:kinesis:getStream` is `aws:kinesis/getStream:getStream`.
pub fn canonical_function(token: &str) -> String {
    let parts: Vec<&str> = token.split(':').collect();
    match parts.as_slice() {
        [pkg, name] => format!("{pkg}:index/{name}:{name}"),
        [pkg, module, name] if !module.contains('/') => format!("{pkg}:{module}/{name}:{name}"),
        _ => token.to_string(),
    }
}

/// A value from the stack file, still unevaluated.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A built-in function applied to its argument.
    Call(Builtin, Box<Expr>, Span),
    /// A provider function called with its arguments.
    Invoke(Box<Invoke>, Span),
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
            Expr::Call(_, _, s)
            | Expr::Invoke(_, s)
            | Expr::Null(s)
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
            Expr::Call(_, arg, _) => arg.collect_refs(out),
            Expr::Invoke(i, _) => i.arguments.collect_refs(out),
            _ => {}
        }
    }

    /// Appends every provider function call in the expression to `out`,
    /// calls inside arguments first.
    pub fn collect_invokes<'e>(&'e self, out: &mut Vec<&'e Invoke>) {
        match self {
            Expr::List(items, _) => items.iter().for_each(|i| i.collect_invokes(out)),
            Expr::Map(entries, _) => entries.iter().for_each(|(_, v)| v.collect_invokes(out)),
            Expr::Call(_, arg, _) => arg.collect_invokes(out),
            Expr::Invoke(i, _) => {
                i.arguments.collect_invokes(out);
                out.push(i);
            }
            _ => {}
        }
    }

    /// Whether the expression applies `fn::secret` anywhere.
    pub fn has_secret(&self) -> bool {
        match self {
            Expr::Call(Builtin::Secret, _, _) => true,
            Expr::Call(_, arg, _) => arg.has_secret(),
            Expr::Invoke(i, _) => i.arguments.has_secret(),
            Expr::List(items, _) => items.iter().any(Expr::has_secret),
            Expr::Map(entries, _) => entries.iter().any(|(_, v)| v.has_secret()),
            _ => false,
        }
    }
}

/// Parses a property access as Pulumi YAML writes it: a name, then any of
/// `.name`, `[0]` and `["key"]`. Returns the root and the path, whose
/// segments are keys or list indexes written in decimal.
fn parse_access(text: &str) -> Option<(String, Vec<String>)> {
    let ident_len = |t: &str| t.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-')).unwrap_or(t.len());
    // A name that is not an identifier (`lb-tg`, `my.bucket`) is written
    // `["lb-tg"]`, as Pulumi YAML writes it.
    let (root, mut rest) = match text.strip_prefix("[\"") {
        Some(r) => {
            let end = r.find("\"]")?;
            (&r[..end], &r[end + 2..])
        }
        None => {
            let n = ident_len(text);
            (&text[..n], &text[n..])
        }
    };
    if root.is_empty() || (!text.starts_with('[') && !valid_ref_segment(root)) {
        return None;
    }
    let mut path = Vec::new();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let n = ident_len(r);
            if !valid_ref_segment(&r[..n]) {
                return None;
            }
            path.push(r[..n].to_string());
            rest = &r[n..];
        } else if let Some(r) = rest.strip_prefix("[\"") {
            let end = r.find("\"]")?;
            path.push(r[..end].to_string());
            rest = &r[end + 2..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            let index = &r[..end];
            if index.is_empty() || !index.chars().all(|c| c.is_ascii_digit()) {
                return None;
            }
            // Written in decimal, so `[01]` and `[1]` read the same element.
            path.push(index.parse::<usize>().ok()?.to_string());
            rest = &r[end + 1..];
        } else {
            return None;
        }
    }
    Some((root.to_string(), path))
}

/// One step of a property path: a key of a mapping, or an index of a list.
pub fn step(v: &Value, segment: &str) -> Option<Value> {
    match v {
        Value::Array(items) => items.get(segment.parse::<usize>().ok()?).cloned(),
        _ => v.get(segment).cloned(),
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
            let Some((root, path)) = parse_access(inner.trim()) else {
                return Err(Diagnostic::new(format!("`${{{inner}}}` is not a valid reference"))
                    .at(span, "invalid reference")
                    .with_hint(
                        "write `${resource.property}`, `${res.list[0]}`, `${res.tags[\"key\"]}` or `${variable}`",
                    ));
            };
            if !lit.is_empty() {
                parts.push(Part::Lit(std::mem::take(&mut lit)));
            }
            parts.push(Part::Ref(Ref { root, path, span }));
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
        // A mapping whose one key is `fn::…` is a call, as in Pulumi YAML.
        Kind::Map(entries) if entries.len() == 1 && entries[0].0.text.starts_with("fn::") => {
            let (key, arg) = &entries[0];
            if key.text == "fn::invoke" {
                return build_invoke(arg, span, lines, diags);
            }
            // The short form: `fn::aws:getRegion: {…}`, a token as the name.
            if let Some(token) = key.text.strip_prefix("fn::").filter(|t| t.contains(':')) {
                let arguments = match &arg.kind {
                    Kind::Null => Expr::Map(Vec::new(), arg.span),
                    _ => build(arg, lines, diags),
                };
                return Expr::Invoke(
                    Box::new(Invoke {
                        function: canonical_function(token),
                        function_span: key.span,
                        arguments: Box::new(arguments),
                        ret: None,
                    }),
                    span,
                );
            }
            match BUILTINS.iter().find(|(n, _)| *n == key.text) {
                Some((_, f)) => Expr::Call(*f, Box::new(build(arg, lines, diags)), span),
                None => {
                    let names: Vec<&str> =
                        BUILTINS.iter().map(|(n, _)| *n).chain(std::iter::once("fn::invoke")).collect();
                    let hint = match rinfra_provider::schema::did_you_mean(&key.text, names.iter().copied()) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => format!("rinfra supports {}", names.join(", ")),
                    };
                    diags.push(
                        Diagnostic::new(format!("unknown function `{}`", key.text))
                            .at(key.span, "not a function rinfra has")
                            .with_hint(hint),
                    );
                    Expr::Null(span)
                }
            }
        }
        Kind::Map(entries) => {
            Expr::Map(entries.iter().map(|(k, v)| (k.clone(), build(v, lines, diags))).collect(), span)
        }
    }
}

/// Decodes `fn::invoke: {function, arguments, return}`.
fn build_invoke(arg: &Node, span: Span, lines: &[&str], diags: &mut Vec<Diagnostic>) -> Expr {
    let Some(entries) = arg.as_map() else {
        diags.push(
            Diagnostic::new("`fn::invoke` takes a mapping")
                .at(arg.span, "expected `function:`, `arguments:` and `return:`")
                .with_hint("write `fn::invoke: {function: aws:index/getRegion:getRegion, return: name}`"),
        );
        return Expr::Null(span);
    };
    let mut function = None;
    let mut arguments = Expr::Map(Vec::new(), arg.span);
    let mut ret = None;
    for (k, v) in entries {
        match (k.text.as_str(), &v.kind) {
            ("function", Kind::Str(t)) => function = Some((canonical_function(t), v.span)),
            ("arguments", Kind::Map(_)) => arguments = build(v, lines, diags),
            ("arguments", Kind::Null) => {}
            ("return", Kind::Str(r)) => ret = Some((r.clone(), v.span)),
            // Pulumi's invoke options (provider, parent, version) choose
            // where the call goes; rinfra has one provider per package.
            ("options", _) => diags.push(
                Diagnostic::new("`fn::invoke` options are not supported yet")
                    .at(k.span, "not supported")
                    .with_hint("remove `options:`; the call goes to the stack's default provider"),
            ),
            ("function" | "arguments" | "return", _) => diags.push(
                Diagnostic::new(format!("`fn::invoke` `{}` has the wrong form", k.text))
                    .at(v.span, "unexpected value")
                    .with_hint("`function` and `return` are text, `arguments` a mapping"),
            ),
            _ => diags.push(
                Diagnostic::new(format!("unknown key `{}` in `fn::invoke`", k.text))
                    .at(k.span, "not recognised")
                    .with_hint("`fn::invoke` accepts: function, arguments, return"),
            ),
        }
    }
    let Some((function, function_span)) = function else {
        if !entries.iter().any(|(k, _)| k.text == "function") {
            diags.push(
                Diagnostic::new("`fn::invoke` has no `function`")
                    .at(arg.span, "function missing")
                    .with_hint("add `function: aws:index/getRegion:getRegion` or another function token"),
            );
        }
        return Expr::Null(span);
    };
    Expr::Invoke(Box::new(Invoke { function, function_span, arguments: Box::new(arguments), ret }), span)
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
    /// The directory `fn::readFile` paths are relative to.
    pub base_dir: &'a std::path::Path,
    /// Results of the provider functions called so far; a call not made
    /// yet is unknown.
    pub invokes: &'a InvokeResults,
}

fn walk(mut v: Value, path: &[String]) -> Option<Value> {
    for p in path {
        if rinfra_provider::schema::is_unknown(&v) && v.is_string() {
            return Some(v);
        }
        v = step(&v, p)?;
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
            Expr::Call(f, arg, span) => self.call(*f, &self.eval(arg)?, *span)?,
            Expr::Invoke(i, _) => {
                let args = self.invokes.arguments(&i.function, self.eval(&i.arguments)?);
                if rinfra_provider::schema::is_unknown(&args) {
                    return Ok(rinfra_provider::schema::unknown());
                }
                let Some(result) = self.invokes.get(&i.key(&args)) else {
                    return Ok(rinfra_provider::schema::unknown());
                };
                match &i.ret {
                    None => result.clone(),
                    Some((name, span)) => result.get(name).cloned().ok_or_else(|| {
                        Diagnostic::new(format!("`{}` returned no `{name}`", i.function)).at(*span, "not returned")
                    })?,
                }
            }
        })
    }

    /// Applies a built-in to its evaluated argument. A value not known
    /// before apply makes the result unknown, as in a Pulumi preview.
    fn call(&self, f: Builtin, arg: &Value, span: Span) -> Result<Value, Diagnostic> {
        use rinfra_provider::schema::{is_unknown, unknown};
        let bad = |what: &str| {
            Diagnostic::new(format!("`{}` takes {what}", f.name())).at(span, "wrong arguments").with_hint(match f {
                Builtin::Join => "write `fn::join: [\",\", [a, b]]`",
                Builtin::Split => "write `fn::split: [\",\", \"a,b\"]`",
                Builtin::Select => "write `fn::select: [0, [a, b]]`",
                Builtin::ReadFile => "write `fn::readFile: ./file.txt`",
                _ => "see Pulumi YAML's built-in functions",
            })
        };
        let pair = |v: &Value| match v {
            Value::Array(items) if items.len() == 2 => Some((items[0].clone(), items[1].clone())),
            _ => None,
        };
        Ok(match f {
            Builtin::Secret => arg.clone(),
            Builtin::ToJson if is_unknown(arg) => unknown(),
            Builtin::ToJson => Value::String(arg.to_string()),
            Builtin::Join => {
                let (delim, items) = pair(arg).ok_or_else(|| bad("a delimiter and a list"))?;
                let (Value::String(delim), Value::Array(items)) = (&delim, &items) else {
                    return Err(bad("a delimiter (text) and a list"));
                };
                if items.iter().any(is_unknown) || is_unknown(&Value::String(delim.clone())) {
                    return Ok(unknown());
                }
                let texts: Option<Vec<String>> = items
                    .iter()
                    .map(|i| match i {
                        Value::String(s) => Some(s.clone()),
                        Value::Number(n) => Some(n.to_string()),
                        Value::Bool(b) => Some(b.to_string()),
                        _ => None,
                    })
                    .collect();
                Value::String(texts.ok_or_else(|| bad("a list of text, numbers or booleans"))?.join(delim))
            }
            Builtin::Split => {
                let (delim, text) = pair(arg).ok_or_else(|| bad("a delimiter and a text"))?;
                let (Value::String(delim), Value::String(text)) = (&delim, &text) else {
                    return Err(bad("a delimiter and a text"));
                };
                if is_unknown(&Value::String(text.clone())) || is_unknown(&Value::String(delim.clone())) {
                    return Ok(unknown());
                }
                if delim.is_empty() {
                    return Err(bad("a delimiter that is not empty"));
                }
                Value::Array(text.split(delim.as_str()).map(|p| Value::String(p.to_string())).collect())
            }
            Builtin::Select => {
                let (index, list) = pair(arg).ok_or_else(|| bad("an index and a list"))?;
                if is_unknown(&index) || (list.is_string() && is_unknown(&list)) {
                    return Ok(unknown());
                }
                let (Some(i), Value::Array(items)) = (index.as_u64(), &list) else {
                    return Err(bad("an index (a whole number from 0) and a list"));
                };
                let len = items.len();
                usize::try_from(i).ok().and_then(|i| items.get(i)).cloned().ok_or_else(|| {
                    Diagnostic::new(format!("`fn::select` index {i} is past the end of a list of {len}"))
                        .at(span, "out of range")
                })?
            }
            Builtin::ToBase64 | Builtin::FromBase64 | Builtin::ReadFile => {
                let Value::String(text) = arg else { return Err(bad("a text")) };
                if is_unknown(arg) {
                    return Ok(unknown());
                }
                match f {
                    Builtin::ToBase64 => Value::String(base64_encode(text.as_bytes())),
                    Builtin::FromBase64 => {
                        let bytes = base64_decode(text).ok_or_else(|| bad("valid base64"))?;
                        Value::String(String::from_utf8(bytes).map_err(|_| bad("base64 of UTF-8 text"))?)
                    }
                    _ => Value::String(self.read_file(text, span)?),
                }
            }
        })
    }

    fn read_file(&self, path: &str, span: Span) -> Result<String, Diagnostic> {
        use std::io::Read;
        let full = self.base_dir.join(path);
        let fail = |why: String| {
            Diagnostic::new(format!("`fn::readFile` cannot read {}: {why}", full.display())).at(span, "here")
        };
        let f = std::fs::File::open(&full).map_err(|e| fail(e.to_string()))?;
        let mut text = String::new();
        f.take(MAX_READ_FILE + 1).read_to_string(&mut text).map_err(|e| fail(e.to_string()))?;
        if text.len() as u64 > MAX_READ_FILE {
            return Err(fail("it is larger than 1 MiB".into()));
        }
        Ok(text)
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding, as Go's `base64.StdEncoding` (Pulumi's).
fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(B64[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard base64 with padding; `None` when it is not.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    if text.len() % 4 != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    for chunk in text.as_bytes().chunks(4) {
        let mut n = 0u32;
        let mut pad = 0;
        for (i, c) in chunk.iter().enumerate() {
            let v = match c {
                b'=' if i >= 2 => {
                    pad += 1;
                    0
                }
                _ if pad > 0 => return None,
                _ => u32::try_from(B64.iter().position(|b| b == c)?).ok()?,
            };
            n = (n << 6) | v;
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Some(out)
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
        let ctx = EvalContext {
            config: &config,
            variables: &vars,
            resource: &none,
            base_dir: std::path::Path::new("."),
            invokes: &Default::default(),
        };
        let whole = Expr::Template(parse_template("${n}", sp(), None).unwrap(), sp());
        assert_eq!(ctx.eval(&whole).unwrap(), Value::from(3));
        let text = Expr::Template(parse_template("n=${n}", sp(), None).unwrap(), sp());
        assert_eq!(ctx.eval(&text).unwrap(), Value::from("n=3"));
    }

    fn call(text: &str) -> Result<Value, Diagnostic> {
        let node = crate::yaml::parse_str(text).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let e = parse_expr(&node, &lines).map_err(|mut d| d.remove(0))?;
        let config = BTreeMap::from([("later".to_string(), rinfra_provider::schema::unknown())]);
        let vars = BTreeMap::new();
        let none = |_: &str, _: &[String]| None;
        let dir = std::env::temp_dir();
        let ctx = EvalContext {
            config: &config,
            variables: &vars,
            resource: &none,
            base_dir: &dir,
            invokes: &Default::default(),
        };
        ctx.eval(&e)
    }

    #[test]
    fn builtins_follow_pulumi_yaml() {
        assert_eq!(call("fn::join: ['-', [a, 1, true]]").unwrap(), Value::from("a-1-true"));
        assert_eq!(call("fn::split: [',', 'a,b,,c']").unwrap(), serde_json::json!(["a", "b", "", "c"]));
        assert_eq!(call("fn::select: [1, [x, y, z]]").unwrap(), Value::from("y"));
        assert_eq!(call("fn::toJSON: {b: [1, 2], a: x}").unwrap(), Value::from(r#"{"a":"x","b":[1,2]}"#));
        assert_eq!(call("fn::toBase64: hello").unwrap(), Value::from("aGVsbG8="));
        assert_eq!(call("fn::fromBase64: aGVsbG8=").unwrap(), Value::from("hello"));
        for s in ["", "a", "ab", "abc", "abcd", "ünïcödé"] {
            assert_eq!(base64_decode(&base64_encode(s.as_bytes())).unwrap(), s.as_bytes(), "{s}");
        }
        assert_eq!(call("fn::secret: s3cr3t").unwrap(), Value::from("s3cr3t"));
        // Nested calls, as Pulumi programs write them.
        assert_eq!(call("fn::join: ['', {fn::split: ['-', 'a-b']}]").unwrap(), Value::from("ab"));
    }

    #[test]
    fn builtins_of_unknown_values_are_unknown() {
        use rinfra_provider::schema::is_unknown;
        assert!(is_unknown(&call("fn::join: ['-', [a, '${later}']]").unwrap()));
        assert!(is_unknown(&call("fn::toJSON: {a: '${later}'}").unwrap()));
        assert!(is_unknown(&call("fn::toBase64: '${later}'").unwrap()));
        assert!(is_unknown(&call("fn::split: [',', '${later}']").unwrap()));
    }

    #[test]
    fn builtins_refuse_wrong_arguments_with_a_location() {
        for (text, message) in [
            ("fn::join: 3", "takes a delimiter and a list"),
            ("fn::join: [',', a]", "a delimiter (text) and a list"),
            ("fn::join: [',', [[x]]]", "a list of text"),
            ("fn::select: [5, [a]]", "past the end of a list of 1"),
            ("fn::select: [-1, [a]]", "an index"),
            ("fn::split: ['', abc]", "not empty"),
            ("fn::fromBase64: '%%%'", "valid base64"),
            ("fn::fromBase64: '//79'", "UTF-8"),
            ("fn::readFile: no-such-file-here.txt", "cannot read"),
            ("fn::nope: 1", "unknown function `fn::nope`"),
        ] {
            let e = call(text).unwrap_err();
            assert!(e.message.contains(message), "{text}: {}", e.message);
            assert!(e.span.is_some(), "{text}: located");
        }
    }

    #[test]
    fn read_file_reads_relative_to_the_program_and_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("policy.json"), "{\"a\": 1}").unwrap();
        std::fs::write(dir.path().join("big.txt"), vec![b'x'; (MAX_READ_FILE + 1) as usize]).unwrap();
        let config = BTreeMap::new();
        let vars = BTreeMap::new();
        let none = |_: &str, _: &[String]| None;
        let ctx = EvalContext {
            config: &config,
            variables: &vars,
            resource: &none,
            base_dir: dir.path(),
            invokes: &Default::default(),
        };
        let read = |p: &str| {
            let text = format!("fn::readFile: {p}");
            let node = crate::yaml::parse_str(&text).unwrap();
            ctx.eval(&parse_expr(&node, &[text.as_str()]).unwrap())
        };
        assert_eq!(read("policy.json").unwrap(), Value::from("{\"a\": 1}"));
        assert!(read("big.txt").unwrap_err().message.contains("larger than 1 MiB"));
    }

    #[test]
    fn function_tokens_take_every_pulumi_spelling() {
        assert_eq!(canonical_function("aws:getRegion"), "aws:index/getRegion:getRegion");
        assert_eq!(canonical_function("aws:index:getRegion"), "aws:index/getRegion:getRegion");
        assert_eq!(canonical_function("aws:kinesis:getStream"), "aws:kinesis/getStream:getStream");
        assert_eq!(canonical_function("aws:kinesis/getStream:getStream"), "aws:kinesis/getStream:getStream");
    }

    #[test]
    fn invokes_parse_in_long_and_short_form_and_bad_forms_are_located() {
        let build_one = |yaml: &str| {
            let node = crate::yaml::parse_bytes(yaml.as_bytes()).unwrap();
            let lines: Vec<&str> = yaml.lines().collect();
            parse_expr(&node, &lines)
        };
        let long = build_one("fn::invoke:\n  function: aws:getRegion\n  return: name\n").unwrap();
        let Expr::Invoke(i, _) = long else { panic!("{long:?}") };
        assert_eq!(
            (i.function.as_str(), i.ret.as_ref().map(|r| r.0.as_str())),
            ("aws:index/getRegion:getRegion", Some("name"))
        );
        let short = build_one("fn::aws:kinesis:getStream:\n  name: s\n").unwrap();
        let Expr::Invoke(i, _) = short else { panic!("{short:?}") };
        assert_eq!(i.function, "aws:kinesis/getStream:getStream");
        for bad in ["fn::invoke: text\n", "fn::invoke:\n  return: x\n", "fn::invoke:\n  function: f\n  extra: 1\n"] {
            let d = build_one(bad).unwrap_err();
            assert!(d[0].span.is_some(), "{bad}: {d:?}");
        }
    }

    #[test]
    fn references_index_lists_and_quote_keys() {
        assert_eq!(parse_access("s.metrics[0]"), Some(("s".into(), vec!["metrics".into(), "0".into()])));
        assert_eq!(parse_access("s.tags[\"team\"]"), Some(("s".into(), vec!["tags".into(), "team".into()])));
        assert_eq!(
            parse_access("s[\"name-with.dots\"].arn"),
            Some(("s".into(), vec!["name-with.dots".into(), "arn".into()]))
        );
        assert_eq!(parse_access("a.b[10].c"), Some(("a".into(), vec!["b".into(), "10".into(), "c".into()])));
        // A resource whose name is not an identifier, as the Registry's
        // NLB example writes it.
        assert_eq!(parse_access("[\"lb-tg\"].arnSuffix"), Some(("lb-tg".into(), vec!["arnSuffix".into()])));
        assert_eq!(parse_access("[\"my.stream\"]"), Some(("my.stream".into(), vec![])));
        for bad in ["", "1a", "a.", "a[", "a[x]", "a[-1]", "a[\"k]", "a..b", "a b", "[\"\"].x", "[\"a\"]b"] {
            assert_eq!(parse_access(bad), None, "{bad}");
        }
        let config = BTreeMap::from([("list".to_string(), serde_json::json!({"xs": ["a", "b"], "m": {"k-1": 3}}))]);
        let vars = BTreeMap::new();
        let none = |_: &str, _: &[String]| None;
        let dir = std::path::PathBuf::from(".");
        let ctx = EvalContext {
            config: &config,
            variables: &vars,
            resource: &none,
            base_dir: &dir,
            invokes: &Default::default(),
        };
        let e = |t: &str| Expr::Template(parse_template(t, sp(), None).unwrap(), sp());
        assert_eq!(ctx.eval(&e("${list.xs[1]}")).unwrap(), Value::from("b"));
        assert_eq!(ctx.eval(&e("${list.m[\"k-1\"]}")).unwrap(), Value::from(3));
        assert!(ctx.eval(&e("${list.xs[2]}")).is_err());
    }
}
