//! Decoding one resource declaration.

use super::ResourceDecl;
use super::checker::Checker;
use super::options::{Options, decode_options};
use super::tokens::short_token;
use crate::diag::Diagnostic;
use crate::expr::{Expr, parse_expr};
use crate::yaml::{Key, Node};
use rinfra_provider::schema::did_you_mean;
use rinfra_provider::{Props, Registry};
use std::collections::BTreeSet;

const RESOURCE_KEYS: &[&str] = &["type", "name", "properties", "options", "get", "defaultProvider"];

pub(super) fn decode_resource(
    ck: &mut Checker,
    key: &Key,
    value: &Node,
    lines: &[&str],
    registry: &Registry,
) -> Option<ResourceDecl> {
    check_resource_name(ck, key);
    let entries = ck.expect_map(value, &format!("resource `{}`", key.text))?;
    let mut type_ = None;
    let mut properties = None;
    let mut options = Options::default();
    let mut logical = key.text.clone();
    let mut get = None;
    for (k, v) in entries {
        match k.text.as_str() {
            "name" => {
                if let Some(n) = ck.expect_str(v, "a resource's `name`") {
                    if n.is_empty() || n.contains("::") {
                        ck.push(
                            Diagnostic::new(format!("`{n}` is not a valid logical name"))
                                .at(v.span, "invalid name")
                                .with_hint("a logical name is not empty and has no `::`"),
                        );
                    }
                    logical = n;
                }
            }
            "get" => {
                let Some(g) = ck.expect_map(v, "`get`") else { continue };
                for (gk, gv) in g {
                    match gk.text.as_str() {
                        "id" => match parse_expr(gv, lines) {
                            Ok(e) => get = Some(e),
                            Err(d) => ck.diags.extend(d),
                        },
                        "state" => ck.push(
                            Diagnostic::new("`get.state` is not supported yet")
                                .at(gk.span, "not supported")
                                .with_hint("read the resource by `id` alone"),
                        ),
                        _ => ck.unknown_key(gk, &["id", "state"], "`get`"),
                    }
                }
                if get.is_none() && !g.iter().any(|(gk, _)| gk.text == "id") {
                    ck.push(
                        Diagnostic::new(format!("`get` of `{}` has no `id`", key.text))
                            .at(v.span, "id missing")
                            .with_hint("add `id:` with the cloud id of the resource to read"),
                    );
                }
            }
            "defaultProvider" => ck.push(
                Diagnostic::new("`defaultProvider` is for provider resources")
                    .at(k.span, "not a provider")
                    .with_hint("set it on a `pulumi:providers:aws` resource"),
            ),
            "type" => {
                if let Some(t) = ck.expect_str(v, "a resource type").map(|t| short_token(&t)) {
                    if registry.get(&t).is_none() {
                        let hint = match did_you_mean(&t, registry.tokens()) {
                            Some(s) => format!("did you mean `{s}`?"),
                            None => format!("known types: {}", registry.tokens().collect::<Vec<_>>().join(", ")),
                        };
                        ck.push(
                            Diagnostic::new(format!("unknown resource type `{t}`"))
                                .at(v.span, "not a known type")
                                .with_hint(hint),
                        );
                    } else {
                        type_ = Some(t);
                    }
                }
            }
            "properties" => {
                if let Some(given) = ck.expect_map(v, "`properties`") {
                    // Properties Pulumi has and rinfra not yet: said at once,
                    // whatever else is wrong.
                    let token = entries.iter().find(|(k, _)| k.text == "type").and_then(|(_, t)| t.as_str());
                    let token = token.map(short_token);
                    let not_yet = token.as_ref().and_then(|t| registry.get(t)).map(|p| p.schema().not_yet.clone());
                    for (pk, _) in given {
                        if let Some((name, why)) = not_yet.iter().flatten().find(|(n, _)| *n == pk.text) {
                            ck.push(
                                Diagnostic::new(format!(
                                    "`{name}` of {} is not supported yet",
                                    token.as_deref().unwrap_or_default()
                                ))
                                .at(pk.span, "not supported yet")
                                .with_hint(format!("{why}; remove it")),
                            );
                        }
                    }
                    match parse_expr(v, lines) {
                        Ok(e) => properties = Some(e),
                        Err(d) => ck.diags.extend(d),
                    }
                }
            }
            "options" => options = decode_options(ck, v),
            _ => ck.unknown_key(k, RESOURCE_KEYS, "a resource"),
        }
    }
    if !entries.iter().any(|(k, _)| k.text == "type") {
        ck.push(
            Diagnostic::new(format!("resource `{}` has no `type`", key.text))
                .at(key.span, "type missing")
                .with_hint("add `type: aws:kinesis:Stream` or another resource type"),
        );
    }
    if get.is_some() && properties.is_some() {
        ck.push(
            Diagnostic::new(format!("`{}` is read with `get`, and has `properties`", key.text))
                .at(key.span, "both")
                .with_hint("a resource read with `get` is not managed; remove `properties`, or `get` to manage it"),
        );
    }
    let properties = properties.unwrap_or(Expr::Map(Vec::new(), value.span));
    Some(ResourceDecl {
        name: key.text.clone(),
        logical,
        name_span: key.span,
        get,
        provider_defaults: Props::new(),
        type_: type_?,
        properties,
        options,
        dependencies: BTreeSet::new(),
    })
}

/// Resource names are Pulumi's: letters, digits, `_`, `-` and `.`.
/// Names that are not identifiers are referenced as `${["my.name"].arn}`.
pub(super) fn check_resource_name(ck: &mut Checker, key: &Key) {
    let mut chars = key.text.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if !valid {
        ck.push(
            Diagnostic::new(format!("`{}` is not a valid resource name", key.text))
                .at(key.span, "invalid name")
                .with_hint("use letters, digits, `_`, `-` and `.`, starting with a letter"),
        );
    }
}

/// `${name}` as Pulumi writes a resource in options, or a plain name.
pub(super) fn resource_ref(s: &str) -> String {
    let inner = s.strip_prefix("${").and_then(|x| x.strip_suffix('}')).unwrap_or(s);
    inner.strip_prefix("[\"").and_then(|x| x.strip_suffix("\"]")).unwrap_or(inner).to_string()
}
