//! Explicit providers (`pulumi:providers:aws`) and how each resource
//! gets its provider's settings.

use super::ResourceDecl;
use super::checker::Checker;
use crate::diag::{Diagnostic, Span};
use crate::expr::parse_expr;
use crate::yaml::{Key, Node};
use rinfra_provider::schema::did_you_mean;
use rinfra_provider::{Props, Registry};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// An explicit provider: a `pulumi:providers:aws` resource, which other
/// resources choose with `options.provider`.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderDecl {
    /// The package it provides, such as `aws`.
    pub package: String,
    /// The values it gives its resources: `region`, and `tags` from its
    /// `defaultTags`.
    pub defaults: Props,
    /// Whether it replaces the default provider for every resource of its
    /// package (`defaultProvider: true`).
    pub default: bool,
    /// Where its name is written.
    pub span: Span,
}

/// The token prefix of explicit provider resources.
pub(super) const PROVIDER_PREFIX: &str = "pulumi:providers:";

/// The settings of an explicit provider rinfra can honour.
const PROVIDER_SETTINGS: &[&str] = &["region", "defaultTags", "profile"];

/// Settings of Pulumi's AWS provider that only skip checks rinfra does
/// not make; accepted with a note.
const PROVIDER_SKIPS: &[&str] =
    &["skipCredentialsValidation", "skipMetadataApiCheck", "skipRegionValidation", "skipRequestingAccountId"];

fn decode_provider(
    ck: &mut Checker,
    key: &Key,
    node: &Node,
    lines: &[&str],
    ctx: &crate::expr::EvalContext<'_>,
    registry: &Registry,
) -> Option<ProviderDecl> {
    let entries = ck.expect_map(node, &format!("provider `{}`", key.text))?;
    let mut decl = ProviderDecl { package: String::new(), defaults: Props::new(), default: false, span: key.span };
    for (k, v) in entries {
        match k.text.as_str() {
            "type" => {
                let t = v.as_str().unwrap_or_default();
                decl.package = t.trim_start_matches(PROVIDER_PREFIX).to_string();
                let prefix = format!("{}:", decl.package);
                if !registry.tokens().any(|t| t.starts_with(&prefix)) {
                    let packages: BTreeSet<&str> = registry.tokens().filter_map(|t| t.split(':').next()).collect();
                    ck.push(
                        Diagnostic::new(format!("provider package `{}` is not supported", decl.package))
                            .at(v.span, "unknown package")
                            .with_hint(format!(
                                "rinfra has: {}",
                                packages
                                    .iter()
                                    .map(|p| format!("`{PROVIDER_PREFIX}{p}`"))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )),
                    );
                }
            }
            "defaultProvider" => decl.default = ck.expect_bool(v, "`defaultProvider`"),
            "options" => {
                // A provider's own options (`version`) choose a plugin.
                ck.notes.push(
                    Diagnostic::new(format!("the options of provider `{}` are ignored", key.text))
                        .at(k.span, "ignored"),
                );
            }
            "properties" => {
                let Some(props) = ck.expect_map(v, "`properties`") else { continue };
                for (pk, pv) in props {
                    let name = pk.text.as_str();
                    if PROVIDER_SKIPS.contains(&name) {
                        ck.notes.push(
                            Diagnostic::new(format!(
                                "provider setting `{name}` is ignored: rinfra makes no such check"
                            ))
                            .at(pk.span, "ignored"),
                        );
                        continue;
                    }
                    if !PROVIDER_SETTINGS.contains(&name) {
                        ck.push(
                            Diagnostic::new(format!("provider setting `{name}` is not supported yet"))
                                .at(pk.span, "not supported")
                                .with_hint(
                                    "rinfra's explicit providers take `region` and `defaultTags`; endpoints and credentials come from the command line and the environment",
                                ),
                        );
                        continue;
                    }
                    let value = match parse_expr(pv, lines).map(|e| ctx.eval(&e)) {
                        Ok(Ok(v)) if !rinfra_provider::schema::is_unknown(&v) => v,
                        Ok(Ok(_)) => {
                            ck.push(
                                Diagnostic::new(format!("provider setting `{name}` must be known before apply"))
                                    .at(pv.span, "depends on a resource")
                                    .with_hint("use config values, variables and literals in provider settings"),
                            );
                            continue;
                        }
                        Ok(Err(d)) => {
                            ck.push(d);
                            continue;
                        }
                        Err(d) => {
                            ck.diags.extend(d);
                            continue;
                        }
                    };
                    match (name, &value) {
                        ("region", Value::String(r)) if !rinfra_provider::schema::is_region_name(r) => ck.push(
                            Diagnostic::new(format!("`{r}` is not a region"))
                                .at(pv.span, "not a region")
                                .with_hint("write a region such as us-east-1 or eu-west-2"),
                        ),
                        ("region", Value::String(_)) => {
                            decl.defaults.insert("region".into(), value);
                        }
                        ("defaultTags", Value::Object(m)) => {
                            let tags = m.get("tags").and_then(Value::as_object);
                            match tags {
                                Some(t) if t.values().all(Value::is_string) && m.len() == 1 => {
                                    decl.defaults.insert("tags".into(), Value::Object(t.clone()));
                                }
                                _ => ck.push(
                                    Diagnostic::new("`defaultTags` takes `tags:`, a map of text")
                                        .at(pv.span, "unexpected value")
                                        .with_hint("write `defaultTags: {tags: {team: data}}`"),
                                ),
                            }
                        }
                        // One set of credentials per run: a provider may name
                        // the profile the stack already uses, no other.
                        ("profile", _) => ck.push(
                            Diagnostic::new("a provider with its own `profile` is not supported yet")
                                .at(pk.span, "not supported")
                                .with_hint("set `aws:profile` for the stack, or run with --profile"),
                        ),
                        _ => ck.push(
                            Diagnostic::new(format!("provider setting `{name}` has the wrong type"))
                                .at(pv.span, "unexpected value")
                                .with_hint("`region` is text; `defaultTags` is `{tags: {key: value}}`"),
                        ),
                    }
                }
            }
            _ => ck.unknown_key(k, &["type", "properties", "options", "defaultProvider"], "a provider"),
        }
    }
    Some(decl)
}

/// Gives each resource its provider's settings: the one its options name,
/// or else its package's `defaultProvider: true` provider.
pub(super) fn resolve_providers(
    ck: &mut Checker,
    providers: &BTreeMap<String, ProviderDecl>,
    resources: &mut BTreeMap<String, ResourceDecl>,
) {
    let defaults: Vec<(&String, &ProviderDecl)> = providers.iter().filter(|(_, p)| p.default).collect();
    for (name, p) in defaults.iter().skip(1) {
        ck.push(
            Diagnostic::new(format!("`{name}` and `{}` are both the default provider", defaults[0].0))
                .at(p.span, "second default")
                .with_hint("keep `defaultProvider: true` on one provider"),
        );
    }
    for r in resources.values_mut() {
        let package = r.type_.split(':').next().unwrap_or_default();
        let chosen = match &r.options.provider {
            Some((p, span)) => match providers.get(p) {
                Some(decl) if decl.package == package => Some(decl),
                Some(decl) => {
                    ck.push(
                        Diagnostic::new(format!("`{p}` provides `{}`, not `{package}`", decl.package))
                            .at(*span, "wrong package")
                            .with_hint(format!("choose a `pulumi:providers:{package}` provider")),
                    );
                    None
                }
                None => {
                    let hint = match did_you_mean(p, providers.keys().map(String::as_str)) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => "declare it as a resource of type `pulumi:providers:aws`".to_string(),
                    };
                    ck.push(
                        Diagnostic::new(format!("`{p}` is not a provider of this stack"))
                            .at(*span, "no such provider")
                            .with_hint(hint),
                    );
                    None
                }
            },
            None => defaults.iter().find(|(_, d)| d.package == package).map(|(_, d)| *d),
        };
        if let Some(d) = chosen {
            r.provider_defaults = d.defaults.clone();
        }
    }
}

/// Decodes the explicit providers. Their settings must be known before
/// anything is created, so they may use config and variables, never a
/// resource's outputs: those evaluate as unknown here.
pub(super) fn decode_providers(
    ck: &mut Checker,
    nodes: &[(&Key, &Node)],
    config: &BTreeMap<String, Value>,
    variables: &BTreeMap<String, (Span, crate::expr::Expr)>,
    base_dir: &std::path::Path,
    lines: &[&str],
    registry: &Registry,
) -> BTreeMap<String, ProviderDecl> {
    let unknown_attrs = |_: &str, _: &[String]| Some(rinfra_provider::schema::unknown());
    let plain_vars: BTreeMap<String, crate::expr::Expr> =
        variables.iter().map(|(k, (_, e))| (k.clone(), e.clone())).collect();
    let invokes = crate::expr::InvokeResults::default();
    let ctx = crate::expr::EvalContext {
        config,
        variables: &plain_vars,
        resource: &unknown_attrs,
        base_dir,
        invokes: &invokes,
    };
    let mut providers = BTreeMap::new();
    for (k, v) in nodes {
        super::resource::check_resource_name(ck, k);
        if let Some(p) = decode_provider(ck, k, v, lines, &ctx, registry) {
            providers.insert(k.text.clone(), p);
        }
    }
    providers
}
