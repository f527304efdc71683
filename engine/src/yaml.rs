//! A YAML document tree where every node and every key knows its position.
//!
//! Built on the event stream of `saphyr-parser` rather than on a serde
//! model, because every later error (an unknown property, a dangling
//! reference) must point at the exact place in the file, and because
//! duplicate keys must be refused rather than silently merged.

use crate::diag::{Diagnostic, Span};
use saphyr_parser::{Event, Parser, ScalarStyle};
use std::collections::{HashMap, HashSet};

/// Files larger than this are refused before parsing.
pub const MAX_FILE_BYTES: usize = 4 * 1024 * 1024;
/// Deeper nesting than this is refused, which also bounds every later
/// recursive walk over the tree. Nesting brought in by an alias counts
/// where the alias stands.
pub const MAX_DEPTH: usize = 64;
/// The most nodes that aliases may copy into one document, anchored nodes
/// kept for later aliases included. A stack needs a few hundred; the limit
/// stops a "billion laughs" file, whose aliases of aliases would otherwise
/// expand a few hundred bytes into billions of nodes.
pub const MAX_ALIAS_NODES: usize = 100_000;

/// A YAML value with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// What the value is.
    pub kind: Kind,
    /// Where it is.
    pub span: Span,
}

/// A mapping key with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    /// The key text.
    pub text: String,
    /// Where it is.
    pub span: Span,
}

/// The kinds of YAML value, after resolving plain scalars by the YAML 1.2
/// core schema.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// `null`, `~` or nothing.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A whole number.
    Int(i64),
    /// A number with a fraction or exponent.
    Float(f64),
    /// Any other scalar, and every quoted one.
    Str(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in file order.
    Map(Vec<(Key, Node)>),
}

impl Node {
    /// The entries when this is a mapping.
    pub fn as_map(&self) -> Option<&[(Key, Node)]> {
        match &self.kind {
            Kind::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The text when this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The value as JSON, for tools that check stacks against a schema.
    /// Non-finite floats become null.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match &self.kind {
            Kind::Null => Value::Null,
            Kind::Bool(b) => Value::Bool(*b),
            Kind::Int(i) => Value::from(*i),
            Kind::Float(f) => serde_json::Number::from_f64(*f).map(Value::Number).unwrap_or(Value::Null),
            Kind::Str(s) => Value::String(s.clone()),
            Kind::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            Kind::Map(entries) => Value::Object(entries.iter().map(|(k, v)| (k.text.clone(), v.to_json())).collect()),
        }
    }

    /// A short description of the kind, for messages.
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            Kind::Null => "null",
            Kind::Bool(_) => "a boolean",
            Kind::Int(_) | Kind::Float(_) => "a number",
            Kind::Str(_) => "a string",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
        }
    }
}

fn resolve_plain(s: &str) -> Kind {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Kind::Null,
        "true" | "True" | "TRUE" => return Kind::Bool(true),
        "false" | "False" | "FALSE" => return Kind::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" => return Kind::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Kind::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Kind::Float(f64::NAN),
        _ => {}
    }
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(i) = s.parse::<i64>() {
            return Kind::Int(i);
        }
    }
    if let Some(hex) = s.strip_prefix("0x") {
        if let Ok(i) = i64::from_str_radix(hex, 16) {
            return Kind::Int(i);
        }
    }
    let looks_numeric = digits.starts_with(|c: char| c.is_ascii_digit() || c == '.')
        && digits.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'));
    if looks_numeric {
        if let Ok(f) = s.parse::<f64>() {
            return Kind::Float(f);
        }
    }
    Kind::Str(s.to_string())
}

fn span_of(s: &saphyr_parser::Span) -> Span {
    Span::new(s.start.line(), s.start.col() + 1, s.end.line(), s.end.col() + 1)
}

/// The size of a finished node, known without walking it: how many levels
/// of lists and mappings it nests, and how many nodes (keys included) it
/// holds.
#[derive(Clone, Copy)]
struct Size {
    height: usize,
    count: usize,
}

impl Size {
    const SCALAR: Size = Size { height: 0, count: 1 };
}

/// A node that an alias may copy, with its size measured when it was built.
struct Anchored {
    node: Node,
    size: Size,
}

enum Frame {
    Seq {
        items: Vec<Node>,
        span: Span,
        anchor: usize,
        children: Size,
    },
    Map {
        entries: Vec<(Key, Node)>,
        pending_key: Option<Key>,
        span: Span,
        anchor: usize,
        seen: HashMap<String, Span>,
        children: Size,
    },
}

impl Frame {
    /// The tallest child and the total count of the children so far.
    fn children(&mut self) -> &mut Size {
        match self {
            Frame::Seq { children, .. } | Frame::Map { children, .. } => children,
        }
    }
}

/// The anchors that some alias refers to. Only these are copied when their
/// node is finished, so an anchor nobody uses costs nothing. A syntax error
/// ends the scan quietly; the real parse reports it.
fn aliased_anchors(text: &str) -> HashSet<usize> {
    Parser::new_from_str(text)
        .map_while(Result::ok)
        .filter_map(|(event, _)| match event {
            Event::Alias(id) => Some(id),
            _ => None,
        })
        .collect()
}

fn too_many_alias_nodes(span: Span, label: &str) -> Diagnostic {
    Diagnostic::new(format!("the YAML aliases in this file expand to more than {MAX_ALIAS_NODES} nodes"))
        .at(span, label)
        .with_hint("aliases of aliases multiply; write the repeated values out, or alias smaller pieces")
}

/// Checks that `bytes` are UTF-8 and of a sane size, and parses them into
/// one document.
pub fn parse_bytes(bytes: &[u8]) -> Result<Node, Diagnostic> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(Diagnostic::new(format!(
            "the stack file is {} bytes; the limit is {} bytes",
            bytes.len(),
            MAX_FILE_BYTES
        ))
        .with_hint("split the stack into smaller stacks"));
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let good = &bytes[..e.valid_up_to()];
            let line = good.iter().filter(|b| **b == b'\n').count() + 1;
            let col =
                String::from_utf8_lossy(good.rsplit(|b| *b == b'\n').next().unwrap_or_default()).chars().count() + 1;
            return Err(Diagnostic::new("the stack file is not valid UTF-8")
                .at(Span::point(line, col), "invalid byte here")
                .with_hint("save the file as UTF-8"));
        }
    };
    parse_str(text)
}

/// Parses `text` into one document.
pub fn parse_str(text: &str) -> Result<Node, Diagnostic> {
    let mut parser = Parser::new_from_str(text);
    let mut stack: Vec<Frame> = Vec::new();
    let used_anchors = aliased_anchors(text);
    let mut anchors: HashMap<usize, Anchored> = HashMap::new();
    // Nodes copied so far by aliases and by keeping anchored nodes for them.
    let mut copied: usize = 0;
    // The last alias seen, to blame when copying an anchored value made of
    // aliases runs over the budget.
    let mut last_alias: Option<Span> = None;
    let mut root: Option<Node> = None;
    let mut documents = 0;

    for item in parser.by_ref() {
        let (event, span) = match item {
            Ok(x) => x,
            Err(e) => {
                let m = e.marker();
                let mut d = Diagnostic::new(format!("YAML syntax error: {}", e.info()))
                    .at(Span::point(m.line(), m.col() + 1), "here");
                if e.info().contains("tab") {
                    d = d.with_hint("YAML does not allow tabs for indentation; use spaces");
                } else {
                    d = d.with_hint("check the indentation and the quoting around this place");
                }
                return Err(d);
            }
        };
        let sp = span_of(&span);
        let node = match event {
            Event::StreamStart | Event::StreamEnd | Event::Nothing | Event::DocumentEnd => continue,
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(Diagnostic::new("a stack file holds exactly one YAML document")
                        .at(sp, "a second document starts here")
                        .with_hint("remove the `---` separator and merge the documents"));
                }
                continue;
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(Diagnostic::new(format!("the stack nests deeper than {MAX_DEPTH} levels"))
                        .at(sp, "too deep")
                        .with_hint("flatten the structure"));
                }
                let children = Size { height: 0, count: 0 };
                if matches!(event, Event::SequenceStart(..)) {
                    stack.push(Frame::Seq { items: Vec::new(), span: sp, anchor, children });
                } else {
                    stack.push(Frame::Map {
                        entries: Vec::new(),
                        pending_key: None,
                        span: sp,
                        anchor,
                        seen: HashMap::new(),
                        children,
                    });
                }
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let Some(frame) = stack.pop() else { continue };
                let (kind, start, anchor, children) = match frame {
                    Frame::Seq { items, span, anchor, children } => (Kind::Seq(items), span, anchor, children),
                    Frame::Map { entries, span, anchor, children, .. } => (Kind::Map(entries), span, anchor, children),
                };
                let node = Node { kind, span: Span::new(start.line, start.col, sp.end_line, sp.end_col) };
                let size = Size { height: children.height + 1, count: children.count.saturating_add(1) };
                if used_anchors.contains(&anchor) {
                    // Keeping a copy costs as much as an alias expanding it,
                    // and nested anchors would otherwise copy the same
                    // nodes once per level.
                    copied = copied.saturating_add(size.count);
                    if copied > MAX_ALIAS_NODES {
                        let inner = last_alias.filter(|a| (a.line, a.col) >= (node.span.line, node.span.col));
                        return Err(match inner {
                            Some(alias) => too_many_alias_nodes(alias, "the aliases up to here expand too far"),
                            None => too_many_alias_nodes(node.span, "this anchored value is copied for its aliases"),
                        });
                    }
                    anchors.insert(anchor, Anchored { node: node.clone(), size });
                }
                (node, size)
            }
            Event::Alias(id) => {
                let Some(anchored) = anchors.get(&id) else {
                    return Err(Diagnostic::new("unknown YAML alias").at(sp, "no anchor with this name"));
                };
                // Both checks use the size measured when the anchor was
                // built, so a refused alias is never walked or copied.
                if stack.len() + anchored.size.height > MAX_DEPTH {
                    return Err(Diagnostic::new(format!(
                        "this YAML alias makes the stack nest deeper than {MAX_DEPTH} levels"
                    ))
                    .at(sp, "expands too deep here")
                    .with_hint("alias a smaller piece, or flatten the anchored value"));
                }
                last_alias = Some(sp);
                copied = copied.saturating_add(anchored.size.count);
                if copied > MAX_ALIAS_NODES {
                    return Err(too_many_alias_nodes(sp, "the budget runs out at this alias"));
                }
                (Node { kind: anchored.node.kind.clone(), span: sp }, anchored.size)
            }
            Event::Scalar(value, style, anchor, _tag) => {
                let kind =
                    if style == ScalarStyle::Plain { resolve_plain(&value) } else { Kind::Str(value.into_owned()) };
                let node = Node { kind, span: sp };
                if used_anchors.contains(&anchor) {
                    copied = copied.saturating_add(1);
                    if copied > MAX_ALIAS_NODES {
                        return Err(too_many_alias_nodes(sp, "this anchored value is copied for its aliases"));
                    }
                    anchors.insert(anchor, Anchored { node: node.clone(), size: Size::SCALAR });
                }
                (node, Size::SCALAR)
            }
        };
        let (node, size) = node;
        if let Some(parent) = stack.last_mut() {
            let children = parent.children();
            children.height = children.height.max(size.height);
            children.count = children.count.saturating_add(size.count);
        }
        // Attach the finished node to its parent.
        match stack.last_mut() {
            None => root = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { entries, pending_key, seen, .. }) => match pending_key.take() {
                None => {
                    let text = match &node.kind {
                        Kind::Str(s) => s.clone(),
                        Kind::Int(i) => i.to_string(),
                        Kind::Bool(b) => b.to_string(),
                        Kind::Float(f) => f.to_string(),
                        Kind::Null => "null".to_string(),
                        Kind::Seq(_) | Kind::Map(_) => {
                            return Err(Diagnostic::new("mapping keys must be plain text")
                                .at(node.span, "a complex key")
                                .with_hint("use a string key"));
                        }
                    };
                    if let Some(first) = seen.get(&text) {
                        return Err(Diagnostic::new(format!("duplicate key `{text}`"))
                            .at(node.span, "defined again here")
                            .with_hint(format!("`{text}` is first defined at line {}; keep only one", first.line)));
                    }
                    seen.insert(text.clone(), node.span);
                    *pending_key = Some(Key { text, span: node.span });
                }
                Some(key) => entries.push((key, node)),
            },
        }
    }
    match root {
        Some(Node { kind: Kind::Null, .. }) | None => Err(Diagnostic::new("the stack file is empty")
            .at(Span::point(1, 1), "nothing here")
            .with_hint("a stack needs at least `name:` and `resources:`")),
        Some(n) => Ok(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_resolve_by_the_core_schema() {
        let n = parse_str("a: 1\nb: 1.5\nc: true\nd: '1'\ne: ~\nf: text\n").unwrap();
        let m = n.as_map().unwrap();
        let kinds: Vec<&Kind> = m.iter().map(|(_, v)| &v.kind).collect();
        assert_eq!(kinds[0], &Kind::Int(1));
        assert_eq!(kinds[1], &Kind::Float(1.5));
        assert_eq!(kinds[2], &Kind::Bool(true));
        assert_eq!(kinds[3], &Kind::Str("1".into()));
        assert_eq!(kinds[4], &Kind::Null);
        assert_eq!(kinds[5], &Kind::Str("text".into()));
    }

    #[test]
    fn positions_are_one_based() {
        let n = parse_str("name: x\nresources:\n  s:\n    type: t\n").unwrap();
        let (k, v) = &n.as_map().unwrap()[1];
        assert_eq!((k.span.line, k.span.col), (2, 1));
        let (k2, _) = &v.as_map().unwrap()[0];
        assert_eq!((k2.span.line, k2.span.col), (3, 3));
    }

    #[test]
    fn duplicate_keys_are_refused() {
        let e = parse_str("a: 1\na: 2\n").unwrap_err();
        assert!(e.message.contains("duplicate key `a`"));
        assert_eq!(e.span.map(|s| s.line), Some(2));
    }

    #[test]
    fn aliases_are_expanded() {
        let n = parse_str("a: &x {b: 1}\nc: *x\n").unwrap();
        let m = n.as_map().unwrap();
        assert_eq!(m[0].1.kind, m[1].1.kind);
    }

    #[test]
    fn deep_nesting_is_refused_without_overflowing() {
        let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
        let e = parse_str(&deep).unwrap_err();
        assert!(e.message.contains("nests deeper") || e.message.contains("recursion"), "{}", e.message);
    }

    #[test]
    fn empty_and_non_utf8_files_are_refused() {
        assert!(parse_bytes(b"").unwrap_err().message.contains("empty"));
        let e = parse_bytes(b"name: a\nx: \xff\n").unwrap_err();
        assert_eq!(e.span.map(|s| (s.line, s.col)), Some((2, 4)));
    }
    /// Nine levels of nine aliases each: about 387 million nodes if expanded.
    fn billion_laughs() -> String {
        let mut text = String::from("a: &a [x, x, x, x, x, x, x, x, x]\n");
        for (prev, name) in
            ["a", "b", "c", "d", "e", "f", "g", "h"].iter().zip(["b", "c", "d", "e", "f", "g", "h", "i"])
        {
            let refs = vec![format!("*{prev}"); 9].join(", ");
            text.push_str(&format!("{name}: &{name} [{refs}]\n"));
        }
        text
    }

    #[test]
    fn yaml_alias_bomb_is_refused_quickly() {
        let text = billion_laughs();
        assert!(text.len() < 600, "{}", text.len());
        let e = parse_str(&text).unwrap_err();
        assert!(e.message.contains("alias"), "{}", e.message);
        // The diagnostic points at one of the aliases that went over budget.
        let span = e.span.unwrap();
        let line = text.lines().nth(span.line - 1).unwrap();
        assert!(line[span.col - 1..].starts_with('*'), "{line} at {span:?}");
    }

    #[test]
    fn yaml_anchor_chain_is_refused_without_overflowing_the_stack() {
        let mut text = String::from("a1: &a1 [x]\n");
        for i in 2..=5000 {
            text.push_str(&format!("a{i}: &a{i} [*a{}]\n", i - 1));
        }
        let e = parse_str(&text).unwrap_err();
        assert!(e.message.contains("alias") && e.message.contains("deeper"), "{}", e.message);
        let span = e.span.unwrap();
        let line = text.lines().nth(span.line - 1).unwrap();
        assert!(line[span.col - 1..].starts_with("*a"), "{line} at {span:?}");
    }

    #[test]
    fn an_alias_that_fits_the_depth_limit_exactly_is_kept() {
        // The anchored list nests 62 levels; under the root mapping and the
        // list around the alias that makes 64, the limit.
        let inner = format!("{}x{}", "[".repeat(62), "]".repeat(62));
        let n = parse_str(&format!("a: &a {inner}\nb: [*a]\n")).unwrap();
        assert_eq!(n.as_map().unwrap()[1].1.to_json(), serde_json::json!([n.as_map().unwrap()[0].1.to_json()]));
        let e = parse_str(&format!("a: &a {inner}\nb: [[*a]]\n")).unwrap_err();
        assert!(e.message.contains("alias"), "{}", e.message);
    }

    #[test]
    fn small_aliases_still_expand_many_times() {
        let mut text = String::from("tags: &t {team: data, env: prod}\nresources:\n");
        for i in 0..200 {
            text.push_str(&format!("  s{i}: {{tags: *t}}\n"));
        }
        let n = parse_str(&text).unwrap();
        let resources = n.as_map().unwrap()[1].1.as_map().unwrap();
        assert_eq!(resources.len(), 200);
        assert_eq!(resources[199].1.as_map().unwrap()[0].1.kind, n.as_map().unwrap()[0].1.kind);
    }
    #[test]
    fn nested_anchors_count_their_copies_against_the_alias_budget() {
        // Each of the 40 anchored levels keeps its own copy of the 5000
        // scalars at the bottom: 200000 copied nodes from a 25 KB file.
        let bottom = vec!["x"; 5000].join(", ");
        let mut text = String::from("a: ");
        for i in 0..40 {
            text.push_str(&format!("&l{i} ["));
        }
        text.push_str(&bottom);
        text.push_str(&"]".repeat(40));
        let refs: Vec<String> = (0..40).map(|i| format!("*l{i}")).collect();
        text.push_str(&format!("\nb: [{}]\n", refs.join(", ")));
        let e = parse_str(&text).unwrap_err();
        assert!(e.message.contains("aliases"), "{}", e.message);
        // The copies alone run over, before the first alias is reached.
        assert_eq!(e.span.map(|s| s.line), Some(1));
    }
}
