//! The diagnostics collector every decoding step writes to.

use crate::diag::Diagnostic;
use crate::yaml::{Key, Kind, Node};
use rinfra_provider::schema::did_you_mean;

/// Collects diagnostics while decoding.
#[derive(Default)]
pub(super) struct Checker {
    pub(super) diags: Vec<Diagnostic>,
    /// Remarks that do not fail the load.
    pub(super) notes: Vec<Diagnostic>,
}

impl Checker {
    pub(super) fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    pub(super) fn unknown_key(&mut self, key: &Key, known: &[&str], what: &str) {
        let hint = match did_you_mean(&key.text, known.iter().copied()) {
            Some(s) => format!("did you mean `{s}`?"),
            None => format!("{what} accepts: {}", known.join(", ")),
        };
        self.push(
            Diagnostic::new(format!("unknown key `{}` in {what}", key.text))
                .at(key.span, "not recognised")
                .with_hint(hint),
        );
    }

    pub(super) fn expect_map<'n>(&mut self, node: &'n Node, what: &str) -> Option<&'n [(Key, Node)]> {
        match node.as_map() {
            Some(m) => Some(m),
            None => {
                self.push(
                    Diagnostic::new(format!("{what} must be a mapping, found {}", node.kind_name()))
                        .at(node.span, "expected `key: value` entries here"),
                );
                None
            }
        }
    }

    pub(super) fn expect_str(&mut self, node: &Node, what: &str) -> Option<String> {
        match &node.kind {
            Kind::Str(s) => Some(s.clone()),
            _ => {
                self.push(
                    Diagnostic::new(format!("{what} must be a string, found {}", node.kind_name()))
                        .at(node.span, "expected text"),
                );
                None
            }
        }
    }

    pub(super) fn expect_bool(&mut self, node: &Node, what: &str) -> bool {
        match node.kind {
            Kind::Bool(b) => b,
            _ => {
                self.push(
                    Diagnostic::new(format!("{what} must be true or false, found {}", node.kind_name()))
                        .at(node.span, "expected a boolean"),
                );
                false
            }
        }
    }
}

pub(super) fn valid_ident(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}
