//! Located diagnostics for stack files, rendered like rustc and cargo.

use std::fmt::Write;

/// A range in a source file. Lines and columns count from 1; columns count
/// characters, not bytes. The end is exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// The first line.
    pub line: usize,
    /// The first column.
    pub col: usize,
    /// The line the range ends on.
    pub end_line: usize,
    /// The column just after the range.
    pub end_col: usize,
}

impl Span {
    /// A range from `line:col` to `end_line:end_col`.
    pub fn new(line: usize, col: usize, end_line: usize, end_col: usize) -> Self {
        Span { line, col, end_line, end_col }
    }

    /// A one-character range.
    pub fn point(line: usize, col: usize) -> Self {
        Span { line, col, end_line: line, end_col: col + 1 }
    }

    /// A range on the same line as `self`, `offset` characters in and `len`
    /// long. Used to point inside a string, such as at one `${…}`.
    pub fn sub(&self, offset: usize, len: usize) -> Self {
        let col = self.col + offset;
        Span { line: self.line, col, end_line: self.line, end_col: col + len.max(1) }
    }
}

/// One problem found in a stack, with where it is and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// What is wrong, in one sentence.
    pub message: String,
    /// Where, when known.
    pub span: Option<Span>,
    /// A short label printed under the caret.
    pub label: String,
    /// How to fix it.
    pub hint: Option<String>,
    /// Other places that explain the problem, such as the other members of
    /// a cycle.
    pub notes: Vec<(Span, String)>,
}

impl Diagnostic {
    /// A diagnostic with no position yet.
    pub fn new(message: impl Into<String>) -> Self {
        Diagnostic { message: message.into(), span: None, label: String::new(), hint: None, notes: Vec::new() }
    }

    /// Places the diagnostic at `span` with `label` under the caret.
    pub fn at(mut self, span: Span, label: impl Into<String>) -> Self {
        self.span = Some(span);
        self.label = label.into();
        self
    }

    /// Adds a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Adds a secondary location.
    pub fn with_note(mut self, span: Span, label: impl Into<String>) -> Self {
        self.notes.push((span, label.into()));
        self
    }

    /// Renders the diagnostic against `source`, named `path`, the way rustc
    /// does: a headline, `--> file:line:col`, the line with a caret under
    /// the offending text, and a help line.
    pub fn render(&self, path: &str, source: &str, color: bool) -> String {
        let (red, blue, bold, reset) =
            if color { ("\x1b[1;31m", "\x1b[1;34m", "\x1b[1m", "\x1b[0m") } else { ("", "", "", "") };
        let mut out = String::new();
        let _ = writeln!(out, "{red}error{reset}{bold}: {}{reset}", self.message);
        let lines: Vec<&str> = source.lines().collect();
        // An error at the end of the file points past the last line; show
        // the last line instead, with the caret after its text.
        let shown_line = |span: &Span| {
            if span.line > lines.len() && !lines.is_empty() { (lines.len(), true) } else { (span.line, false) }
        };
        // Every snippet of one diagnostic shares one gutter, as wide as the
        // largest line number shown, so the `|` bars line up down the whole
        // diagnostic even when its lines cross a power of ten.
        let width = self
            .span
            .iter()
            .chain(self.notes.iter().map(|(span, _)| span))
            .map(|span| shown_line(span).0.to_string().len())
            .max()
            .unwrap_or(1);
        let pad = " ".repeat(width);
        let snippet = |span: &Span, label: &str, primary: bool, out: &mut String| {
            let (line_no, at_end) = shown_line(span);
            let col = if at_end { lines.last().map_or(0, |l| l.chars().count()) + 1 } else { span.col };
            let _ = writeln!(out, "{pad}{blue}-->{reset} {path}:{line_no}:{col}");
            if let Some(text) = lines.get(line_no.saturating_sub(1)) {
                // Tabs would misalign the caret, so show them as spaces.
                let shown: String = text.chars().map(|c| if c == '\t' { ' ' } else { c }).collect();
                let len = shown.chars().count();
                let start = if at_end { len } else { span.col.saturating_sub(1).min(len) };
                let end = if span.end_line == span.line && !at_end { span.end_col.saturating_sub(1) } else { len };
                let carets = end.saturating_sub(start).max(1);
                let mark = if primary { "^" } else { "-" };
                let _ = writeln!(out, "{pad} {blue}|{reset}");
                let _ = writeln!(out, "{blue}{:>width$} |{reset} {shown}", line_no);
                let _ = writeln!(
                    out,
                    "{pad} {blue}|{reset} {}{red}{}{}{reset}",
                    " ".repeat(start),
                    mark.repeat(carets),
                    if label.is_empty() { String::new() } else { format!(" {label}") }
                );
            }
        };
        match &self.span {
            Some(span) => snippet(span, &self.label, true, &mut out),
            None => {
                let _ = writeln!(out, "{pad}{blue}-->{reset} {path}");
            }
        }
        for (span, label) in &self.notes {
            snippet(span, label, false, &mut out);
        }
        if let Some(h) = &self.hint {
            let _ = writeln!(out, "{pad} {blue}={reset} {bold}help{reset}: {h}");
        }
        out
    }
}

/// Every problem found in one stack, in file order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} error(s) in the stack", .0.len())]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// Renders every diagnostic and a closing count.
    pub fn render(&self, path: &str, source: &str, color: bool) -> String {
        let mut out = String::new();
        let mut sorted = self.0.clone();
        sorted.sort_by_key(|d| d.span.map(|s| (s.line, s.col)));
        for d in &sorted {
            out.push_str(&d.render(path, source, color));
            out.push('\n');
        }
        let n = sorted.len();
        let _ =
            writeln!(out, "{} {} found; nothing was sent to the cloud.", n, if n == 1 { "error" } else { "errors" });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caret_sits_under_the_span() {
        let src = "name: x\nresources:\n  s:\n    type: aws:kinesis:Strem\n";
        let d = Diagnostic::new("unknown resource type")
            .at(Span::new(4, 11, 4, 29), "not a known type")
            .with_hint("did you mean `aws:kinesis:Stream`?");
        let r = d.render("stack.yaml", src, false);
        assert!(r.contains("--> stack.yaml:4:11"), "{r}");
        assert!(r.contains("  |           ^^^^^^^^^^^^^^^^^^ not a known type"), "{r}");
    }
    #[test]
    fn multi_snippet_gutters_are_aligned() {
        let src: String = (1..=12).map(|i| format!("line{i}: ${{x.name}}\n")).collect();
        let d = Diagnostic::new("dependency cycle")
            .at(Span::new(9, 8, 9, 17), "first")
            .with_note(Span::new(10, 8, 10, 17), "second")
            .with_hint("break the cycle");
        let r = d.render("stack.yaml", &src, false);
        let expected = "\
error: dependency cycle
  --> stack.yaml:9:8
   |
 9 | line9: ${x.name}
   |        ^^^^^^^^^ first
  --> stack.yaml:10:8
   |
10 | line10: ${x.name}
   |        --------- second
   = help: break the cycle
";
        assert_eq!(r, expected);
    }
}
