//! Resource options (`dependsOn`, `protect`, `customTimeouts`, …) and
//! their decoding.

use super::checker::Checker;
use super::resource::resource_ref;
use crate::diag::{Diagnostic, Span};
use crate::yaml::{Kind, Node};
use std::collections::BTreeSet;

/// A resource's options.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Options {
    /// Extra dependencies beyond references.
    pub depends_on: Vec<(String, Span)>,
    /// Refuse to delete or replace the resource.
    pub protect: bool,
    /// Delete the old resource before creating its replacement.
    pub delete_before_replace: bool,
    /// Properties whose differences are ignored after creation.
    pub ignore_changes: BTreeSet<String>,
    /// Every property an option names (`ignoreChanges`, `replaceOnChanges`,
    /// `hideDiffs`), with the option and where it is written.
    pub property_names: Vec<(&'static str, String, Span)>,
    /// Removing the resource from the stack only forgets it.
    pub retain_on_delete: bool,
    /// Adopt an existing resource with this cloud id instead of creating.
    pub import: Option<String>,
    /// Names the resource had before, so a rename keeps it.
    pub aliases: Vec<(String, Span)>,
    /// How long each operation may take.
    pub custom_timeouts: CustomTimeouts,
    /// Properties whose change replaces the resource, besides those the
    /// type says.
    pub replace_on_changes: BTreeSet<String>,
    /// Outputs to treat as secrets.
    pub additional_secret_outputs: Vec<(String, Span)>,
    /// A resource whose deletion deletes this one too, so its own delete
    /// is skipped when both go.
    pub deleted_with: Option<(String, Span)>,
    /// Properties whose values a plan does not show.
    pub hide_diffs: BTreeSet<String>,
    /// The resource's parent, which it follows.
    pub parent: Option<(String, Span)>,
    /// The explicit provider resource it is managed through.
    pub provider: Option<(String, Span)>,
}

/// Limits on how long a resource's operations may take, as Pulumi's
/// `customTimeouts` sets them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CustomTimeouts {
    /// For a create.
    pub create: Option<std::time::Duration>,
    /// For an update.
    pub update: Option<std::time::Duration>,
    /// For a delete.
    pub delete: Option<std::time::Duration>,
}

const OPTION_KEYS: &[&str] = &[
    "additionalSecretOutputs",
    "aliases",
    "customTimeouts",
    "deleteBeforeReplace",
    "deletedWith",
    "dependsOn",
    "hideDiffs",
    "ignoreChanges",
    "import",
    "parent",
    "pluginDownloadURL",
    "protect",
    "provider",
    "providers",
    "replaceOnChanges",
    "retainOnDelete",
    "version",
];

pub(super) fn decode_options(ck: &mut Checker, value: &Node) -> Options {
    let mut o = Options::default();
    let Some(entries) = ck.expect_map(value, "`options`") else { return o };
    for (k, v) in entries {
        match k.text.as_str() {
            "dependsOn" => match &v.kind {
                Kind::Seq(items) => {
                    for item in items {
                        if let Some(s) = ck.expect_str(item, "a dependsOn entry") {
                            // Pulumi writes `${name}`; plain names work too.
                            o.depends_on.push((resource_ref(&s), item.span));
                        }
                    }
                }
                _ => ck.push(
                    Diagnostic::new("`dependsOn` must be a list of resource names")
                        .at(v.span, "expected a list")
                        .with_hint("write `dependsOn: [\"${stream}\"]`"),
                ),
            },
            "protect" => o.protect = ck.expect_bool(v, "`protect`"),
            "deleteBeforeReplace" => o.delete_before_replace = ck.expect_bool(v, "`deleteBeforeReplace`"),
            "retainOnDelete" => o.retain_on_delete = ck.expect_bool(v, "`retainOnDelete`"),
            "import" => o.import = ck.expect_str(v, "`import`"),
            "ignoreChanges" | "replaceOnChanges" | "hideDiffs" => {
                let option: &'static str = match k.text.as_str() {
                    "ignoreChanges" => "ignoreChanges",
                    "replaceOnChanges" => "replaceOnChanges",
                    _ => "hideDiffs",
                };
                for (name, span) in string_list(ck, v, option) {
                    let set = match option {
                        "ignoreChanges" => &mut o.ignore_changes,
                        "replaceOnChanges" => &mut o.replace_on_changes,
                        _ => &mut o.hide_diffs,
                    };
                    set.insert(name.clone());
                    o.property_names.push((option, name, span));
                }
            }
            "aliases" => {
                // An alias is an old name, or an old URN whose last part is
                // the name; a rename keeps the resource instead of replacing.
                let Kind::Seq(items) = &v.kind else {
                    ck.push(Diagnostic::new("`aliases` must be a list").at(v.span, "expected a list"));
                    continue;
                };
                for item in items {
                    match (&item.kind, item.as_map()) {
                        (Kind::Str(s), _) => {
                            let name = s.rsplit("::").next().unwrap_or(s);
                            o.aliases.push((resource_ref(name), item.span));
                        }
                        (_, Some(m)) => match m.iter().find(|(mk, _)| mk.text == "name") {
                            Some((_, n)) if m.len() == 1 => {
                                if let Some(n) = ck.expect_str(n, "an alias's `name`") {
                                    o.aliases.push((n, item.span));
                                }
                            }
                            _ => ck.push(
                                Diagnostic::new("only `name:` aliases are supported")
                                    .at(item.span, "not supported")
                                    .with_hint("an alias names the resource's old name; parents, stacks and projects cannot change"),
                            ),
                        },
                        _ => ck.push(Diagnostic::new("an alias is a name or a URN").at(item.span, "expected text")),
                    }
                }
            }
            "customTimeouts" => {
                let Some(m) = ck.expect_map(v, "`customTimeouts`") else { continue };
                for (tk, tv) in m {
                    let slot = match tk.text.as_str() {
                        "create" => &mut o.custom_timeouts.create,
                        "update" => &mut o.custom_timeouts.update,
                        "delete" => &mut o.custom_timeouts.delete,
                        _ => {
                            ck.unknown_key(tk, &["create", "update", "delete"], "`customTimeouts`");
                            continue;
                        }
                    };
                    match ck.expect_str(tv, "a timeout").map(|t| (crate::duration::parse_duration(&t), t)) {
                        Some((Ok(d), _)) => *slot = Some(d),
                        Some((_, t)) => ck.push(
                            Diagnostic::new(format!("`{t}` is not a duration"))
                                .at(tv.span, "not a duration")
                                .with_hint("write a duration such as `30s`, `5m` or `1h30m`"),
                        ),
                        None => {}
                    }
                }
            }
            "additionalSecretOutputs" => o.additional_secret_outputs = string_list(ck, v, "additionalSecretOutputs"),
            "deletedWith" => o.deleted_with = ck.expect_str(v, "`deletedWith`").map(|s| (resource_ref(&s), v.span)),
            "parent" => o.parent = ck.expect_str(v, "`parent`").map(|s| (resource_ref(&s), v.span)),
            "provider" => o.provider = ck.expect_str(v, "`provider`").map(|s| (resource_ref(&s), v.span)),
            "providers" => match &v.kind {
                // A component's provider map; for a resource, its package's
                // entry is its provider.
                Kind::Seq(items) if items.len() == 1 => {
                    o.provider = ck.expect_str(&items[0], "a provider").map(|s| (resource_ref(&s), items[0].span));
                }
                _ => ck.push(
                    Diagnostic::new("`providers` with more than one entry is for components")
                        .at(v.span, "not supported")
                        .with_hint("use `provider: ${name}`"),
                ),
            },
            // Plugin versions and download locations matter to Pulumi's
            // plugin manager; rinfra's providers are built in.
            "version" | "pluginDownloadURL" => {
                ck.expect_str(v, &format!("`{}`", k.text));
                ck.notes.push(
                    Diagnostic::new(format!("option `{}` is ignored: rinfra's providers are built in", k.text))
                        .at(k.span, "ignored"),
                );
            }
            _ => ck.unknown_key(k, OPTION_KEYS, "resource options"),
        }
    }
    o
}

/// A list of strings, each with where it is written.
fn string_list(ck: &mut Checker, v: &Node, what: &str) -> Vec<(String, Span)> {
    match &v.kind {
        Kind::Seq(items) => {
            items.iter().filter_map(|i| ck.expect_str(i, &format!("a `{what}` entry")).map(|s| (s, i.span))).collect()
        }
        _ => {
            ck.push(Diagnostic::new(format!("`{what}` must be a list of names")).at(v.span, "expected a list"));
            Vec::new()
        }
    }
}
