//! Checks over the whole decoded program: references, cycles, function
//! calls, secrets and property values.

use super::checker::Checker;
use super::{ConfigDecl, Decoded, ResourceDecl, Stack};
use crate::diag::{Diagnostic, Span};
use crate::expr::{Expr, Ref};
use rinfra_provider::schema::{PathSeg, did_you_mean, unknown, validate_props};
use rinfra_provider::{Props, Registry};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

struct Scope<'a> {
    broken: &'a BTreeSet<String>,
    config: &'a BTreeMap<String, ConfigDecl>,
    variables: &'a BTreeMap<String, (Span, Expr)>,
    resources: &'a BTreeMap<String, ResourceDecl>,
    registry: &'a Registry,
}

impl Scope<'_> {
    /// Checks every reference in `e` and returns them.
    fn check_refs(&self, e: &Expr, ck: &mut Checker) -> Vec<Ref> {
        let mut refs = Vec::new();
        e.collect_refs(&mut refs);
        for r in &refs {
            if let Some(res) = self.resources.get(&r.root) {
                let Some(p) = self.registry.get(&res.type_) else { continue };
                let schema = p.schema();
                match r.path.first() {
                    None => ck.push(
                        Diagnostic::new(format!("`${{{}}}` names a resource, not a value", r.root))
                            .at(r.span, "which property?")
                            .with_hint(format!(
                                "reference one of its properties, such as {}",
                                schema
                                    .outputs
                                    .iter()
                                    .map(|o| format!("`${{{}.{o}}}`", r.root))
                                    .collect::<Vec<_>>()
                                    .join(" or ")
                            )),
                    ),
                    Some(prop) => {
                        let common = crate::conventions::COMMON_ATTRIBUTES.iter().copied();
                        let known = schema
                            .outputs
                            .iter()
                            .copied()
                            .chain(schema.properties.iter().map(|p| p.name))
                            .chain(common.clone());
                        let is_common = crate::conventions::COMMON_ATTRIBUTES.contains(&prop.as_str())
                            && (prop != "tagsAll" || schema.property("tags").is_some());
                        if !is_common && !schema.outputs.contains(&prop.as_str()) && schema.property(prop).is_none() {
                            let hint = match did_you_mean(prop, known.clone()) {
                                Some(s) => format!("did you mean `{}.{s}`?", r.root),
                                None => format!(
                                    "{} has: {}",
                                    res.type_,
                                    known.collect::<BTreeSet<_>>().into_iter().collect::<Vec<_>>().join(", ")
                                ),
                            };
                            ck.push(
                                Diagnostic::new(format!("`{}` has no property `{prop}`", r.root))
                                    .at(r.span, "unknown property")
                                    .with_hint(hint),
                            );
                        }
                    }
                }
            } else if self.variables.contains_key(&r.root)
                || self.config.contains_key(&r.root)
                || self.broken.contains(&r.root)
            {
                // Variables and config values may be indexed into at run time.
            } else {
                let names =
                    self.resources.keys().chain(self.variables.keys()).chain(self.config.keys()).map(String::as_str);
                let hint = match did_you_mean(&r.root, names) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => "a reference names a resource, a variable or a config entry of this stack".to_string(),
                };
                ck.push(
                    Diagnostic::new(format!("`{}` is not defined", r.root)).at(r.span, "unknown name").with_hint(hint),
                );
            }
        }
        refs
    }
}

/// Checks every reference and every option that names a resource, refuses
/// cycles, records each resource's dependencies, and returns the resources
/// in dependency order (empty when there is a cycle).
pub(super) fn check_graph(ck: &mut Checker, d: &mut Decoded<'_>, registry: &Registry) -> Vec<String> {
    let scope = Scope {
        config: &d.config_decls,
        variables: &d.variables,
        resources: &d.resources,
        registry,
        broken: &d.broken_resources,
    };
    let mut var_refs: BTreeMap<String, Vec<Ref>> = BTreeMap::new();
    for (k, (_, e)) in &d.variables {
        var_refs.insert(k.clone(), scope.check_refs(e, ck));
    }
    let mut res_refs: BTreeMap<String, Vec<Ref>> = BTreeMap::new();
    for (k, r) in &d.resources {
        res_refs.insert(k.clone(), scope.check_refs(&r.properties, ck));
        check_option_refs(ck, k, r, &d.resources);
        if let Some(g) = &r.get {
            res_refs.entry(k.clone()).or_default().extend(scope.check_refs(g, ck));
        }
    }
    for (_, e) in d.outputs.values() {
        scope.check_refs(e, ck);
    }
    if check_cycles(ck, d, &var_refs, &res_refs) {
        return Vec::new();
    }
    // Resource dependencies follow variables transitively.
    let deps_of = |refs: &[Ref]| -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut seen = BTreeSet::new();
        let mut todo: Vec<&Ref> = refs.iter().collect();
        while let Some(r) = todo.pop() {
            if d.resources.contains_key(&r.root) {
                out.insert(r.root.clone());
            } else if let Some(vr) = var_refs.get(&r.root) {
                if seen.insert(r.root.clone()) {
                    todo.extend(vr.iter());
                }
            }
        }
        out
    };
    let computed: BTreeMap<String, BTreeSet<String>> =
        res_refs.iter().map(|(k, refs)| (k.clone(), deps_of(refs))).collect();
    let names: BTreeSet<String> = d.resources.keys().cloned().collect();
    for (k, r) in d.resources.iter_mut() {
        let mut deps = computed.get(k).cloned().unwrap_or_default();
        // A parent is registered before its children, as in Pulumi.
        let explicit = r.options.depends_on.iter().chain(r.options.parent.iter());
        deps.extend(explicit.map(|(dep, _)| dep.clone()).filter(|dep| dep != k && names.contains(dep)));
        r.dependencies = deps;
    }
    let nodes = d.resources.iter().map(|(k, r)| (k.clone(), r.dependencies.clone())).collect();
    crate::graph::order_by_deps(&nodes)
}

/// Checks the options of `r` (named `k`) that name other resources:
/// `dependsOn`, `parent`, `deletedWith`, a `get` id and `aliases`.
fn check_option_refs(ck: &mut Checker, k: &str, r: &ResourceDecl, resources: &BTreeMap<String, ResourceDecl>) {
    let named = r
        .options
        .depends_on
        .iter()
        .map(|(dep, s)| ("dependsOn", dep, s))
        .chain(r.options.parent.iter().map(|(dep, s)| ("parent", dep, s)))
        .chain(r.options.deleted_with.iter().map(|(dep, s)| ("deletedWith", dep, s)));
    for (option, dep, span) in named {
        if !resources.contains_key(dep) {
            let hint = match did_you_mean(dep, resources.keys().map(String::as_str)) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("{option} names a resource of this stack"),
            };
            ck.push(
                Diagnostic::new(format!("{option} names unknown resource `{dep}`"))
                    .at(*span, "no such resource")
                    .with_hint(hint),
            );
        }
    }
    if let Some((w, span)) = &r.options.deleted_with {
        // Following the chain back to this resource would forget every
        // member and delete none.
        let mut seen = BTreeSet::new();
        let mut at = Some(w);
        while let Some(cur) = at {
            if cur == k {
                ck.push(
                    Diagnostic::new(format!("deletedWith of `{k}` leads back to `{k}`"))
                        .at(*span, "a cycle")
                        .with_hint("deletedWith names the resource whose deletion deletes this one"),
                );
                break;
            }
            if !seen.insert(cur.clone()) {
                break;
            }
            at = resources.get(cur).and_then(|t| t.options.deleted_with.as_ref()).map(|(n, _)| n);
        }
    }
    if let Some(g) = &r.get {
        let mut refs = Vec::new();
        g.collect_refs(&mut refs);
        for rf in refs.iter().filter(|rf| resources.get(&rf.root).is_some_and(|t| t.get.is_none())) {
            ck.push(
                Diagnostic::new(format!("the id of `{k}` reads `{}`, which this stack manages", rf.root))
                    .at(rf.span, "known only after apply")
                    .with_hint("a resource read with `get` is read before anything is made; give its id from config or a literal"),
            );
        }
    }
    for (alias, span) in &r.options.aliases {
        if alias != k && resources.contains_key(alias) {
            ck.push(
                Diagnostic::new(format!("alias `{alias}` of `{k}` is another resource of the stack"))
                    .at(*span, "taken")
                    .with_hint("an alias is a name the resource had before, which no resource has now"),
            );
        }
    }
}

/// Reports every cycle among resources and variables, through references
/// and `dependsOn`; whether there was one.
fn check_cycles(
    ck: &mut Checker,
    d: &Decoded<'_>,
    var_refs: &BTreeMap<String, Vec<Ref>>,
    res_refs: &BTreeMap<String, Vec<Ref>>,
) -> bool {
    let nodes: Vec<&str> = d.variables.keys().chain(d.resources.keys()).map(String::as_str).collect();
    let mut edges: Vec<(&str, &str, Span)> = Vec::new();
    for (from, refs) in var_refs.iter().chain(res_refs.iter()) {
        edges.extend(refs.iter().map(|r| (from.as_str(), r.root.as_str(), r.span)));
    }
    for (from, r) in &d.resources {
        edges.extend(r.options.depends_on.iter().map(|(dep, span)| (from.as_str(), dep.as_str(), *span)));
    }
    let found = crate::graph::cycles(&nodes, &edges);
    for cycle in &found {
        let mut spans: Vec<(Span, String)> =
            cycle.edges.iter().map(|(a, b, s)| (*s, format!("`{a}` depends on `{b}` here"))).collect();
        spans.sort_by_key(|(s, _)| (s.line, s.col));
        let mut diag = Diagnostic::new(format!(
            "dependency cycle between {}",
            cycle.members.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", ")
        ))
        .with_hint("break the cycle: one of these must not depend on the others");
        if let Some((first, label)) = spans.first().cloned() {
            diag = diag.at(first, label);
        }
        for (s, l) in spans.into_iter().skip(1) {
            diag = diag.with_note(s, l);
        }
        ck.push(diag);
    }
    !found.is_empty()
}

/// Finds the expression at `path` inside `e`, or the deepest one on the way.
fn locate(e: &Expr, path: &[PathSeg], at_key: bool) -> Span {
    let mut cur = e;
    let mut span = e.span();
    for (i, seg) in path.iter().enumerate() {
        let last = i + 1 == path.len();
        match (cur, seg) {
            (Expr::Map(entries, _), PathSeg::Key(k)) => match entries.iter().find(|(key, _)| &key.text == k) {
                Some((key, v)) => {
                    span = if last && at_key { key.span } else { v.span() };
                    cur = v;
                }
                None => return span,
            },
            (Expr::List(items, _), PathSeg::Index(n)) => match items.get(*n) {
                Some(v) => {
                    span = v.span();
                    cur = v;
                }
                None => return span,
            },
            _ => return span,
        }
    }
    span
}

/// The text of every value the program wraps in `fn::secret`, so that it
/// is masked and sealed as config secrets are. Such a value must be known
/// before apply: a resource output cannot be marked secret yet.
pub(super) fn secret_texts(ck: &mut Checker, stack: &Stack) -> Vec<String> {
    fn walk(e: &Expr, ctx: &crate::expr::EvalContext<'_>, ck: &mut Checker, out: &mut Vec<String>) {
        match e {
            Expr::Call(crate::expr::Builtin::Secret, arg, span) => match ctx.eval(arg) {
                Ok(v) if rinfra_provider::schema::is_unknown(&v) => ck.push(
                    Diagnostic::new("`fn::secret` of a value known only after apply is not supported yet")
                        .at(*span, "its value comes from a resource")
                        .with_hint("wrap a config value or a literal; or declare the config entry `secret: true`"),
                ),
                Ok(Value::String(t)) => out.push(t),
                Ok(Value::Null) => {}
                Ok(other) => out.push(other.to_string()),
                Err(d) => ck.push(d),
            },
            Expr::Call(_, arg, _) => walk(arg, ctx, ck, out),
            Expr::Invoke(i, _) => walk(&i.arguments, ctx, ck, out),
            Expr::List(items, _) => items.iter().for_each(|i| walk(i, ctx, ck, out)),
            Expr::Map(entries, _) => entries.iter().for_each(|(_, v)| walk(v, ctx, ck, out)),
            _ => {}
        }
    }
    let unknown_attrs = |_: &str, _: &[String]| Some(unknown());
    let nothing_read = super::Resolved::new(stack);
    let ctx = stack.context(&nothing_read, &unknown_attrs);
    let mut out = Vec::new();
    let exprs =
        stack.resources.values().map(|r| &r.properties).chain(stack.variables.values()).chain(stack.outputs.values());
    for e in exprs {
        walk(e, &ctx, ck, &mut out);
    }
    out.retain(|t| !t.is_empty());
    out
}

/// Checks every `fn::invoke`: the function exists, its arguments are
/// ones it takes, the required ones are there, and `return` names a value
/// it returns.
/// Returns the arguments each function gets from the package's default
/// provider.
pub(super) fn check_invokes(
    ck: &mut Checker,
    stack: &Stack,
    registry: &Registry,
) -> BTreeMap<String, serde_json::Map<String, Value>> {
    let mut defaults = BTreeMap::new();
    for i in stack.invoke_calls() {
        let Some(f) = registry.function(&i.function) else {
            let known: Vec<&str> = registry.function_tokens().collect();
            let hint = match did_you_mean(&i.function, known.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("rinfra has: {}", known.join(", ")),
            };
            ck.push(
                Diagnostic::new(format!("unknown function `{}`", i.function))
                    .at(i.function_span, "not a function rinfra has")
                    .with_hint(hint),
            );
            continue;
        };
        let names: Vec<&str> = f.arguments().iter().map(|(n, _)| *n).collect();
        // A call goes to the package's default provider: an explicit one
        // marked `defaultProvider` gives its settings as arguments.
        let package = i.function.split(':').next().unwrap_or_default();
        if let Some(p) = stack.providers.values().find(|p| p.default && p.package == package) {
            let given: serde_json::Map<String, Value> = p
                .defaults
                .iter()
                .filter(|(k, _)| names.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            defaults.insert(i.function.clone(), given);
        }
        if let Expr::Map(entries, span) = i.arguments.as_ref() {
            for (k, _) in entries {
                if !names.contains(&k.text.as_str()) {
                    let hint = match did_you_mean(&k.text, names.iter().copied()) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None if names.is_empty() => "it takes no arguments".to_string(),
                        None => format!("it takes: {}", names.join(", ")),
                    };
                    ck.push(
                        Diagnostic::new(format!("`{}` has no argument `{}`", i.function, k.text))
                            .at(k.span, "unknown argument")
                            .with_hint(hint),
                    );
                }
            }
            for (n, required) in f.arguments() {
                if *required && !entries.iter().any(|(k, _)| k.text == *n) {
                    ck.push(
                        Diagnostic::new(format!("`{}` needs the argument `{n}`", i.function))
                            .at(*span, "argument missing")
                            .with_hint(format!("add `{n}:` under `arguments`")),
                    );
                }
            }
        }
        if let Some((r, span)) = &i.ret {
            if !f.returns().contains(&r.as_str()) {
                let hint = match did_you_mean(r, f.returns().iter().copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("it returns: {}", f.returns().join(", ")),
                };
                ck.push(
                    Diagnostic::new(format!("`{}` returns no `{r}`", i.function))
                        .at(*span, "not returned")
                        .with_hint(hint),
                );
            }
        }
    }
    defaults
}

pub(super) fn check_values(ck: &mut Checker, stack: &Stack, registry: &Registry) {
    // Every resource attribute is unknown at this point.
    let unknown_attrs = |_: &str, _: &[String]| Some(unknown());
    let nothing_read = super::Resolved::new(stack);
    let ctx = stack.context(&nothing_read, &unknown_attrs);
    for r in stack.resources.values().filter(|r| r.get.is_none()) {
        let Some(provider) = registry.get(&r.type_) else { continue };
        let mut props = match ctx.eval(&r.properties) {
            Ok(Value::Object(m)) => m,
            Ok(_) => continue,
            Err(d) => {
                ck.push(d);
                continue;
            }
        };
        rinfra_provider::schema::coerce_props(&provider.schema().properties, &mut props);
        crate::conventions::apply_provider_defaults(
            &mut props,
            provider.schema(),
            registry.defaults(),
            &r.provider_defaults,
        );
        // An auto-name is checked as the name it will be: the logical name
        // and seven hex digits.
        let name_key = provider.schema().name_property;
        let auto = crate::conventions::is_auto_named(provider.schema()) && !props.contains_key(name_key);
        if auto {
            props.insert(name_key.to_string(), Value::String(format!("{}-0000000", r.logical)));
        }
        let mut violations = Vec::new();
        validate_props(&provider.schema().properties, &props, &[], &mut violations);
        // Cross-property rules run even when a value is wrong, so one run
        // reports every problem, but not after a misspelt or missing
        // property: their complaints would only echo that mistake.
        let structural = violations.iter().any(|v| v.at_key || v.message.starts_with("missing required"));
        if !structural {
            let as_props: Props = props.into_iter().collect();
            for v in provider.check(&as_props) {
                // One complaint per value is enough.
                if !violations.iter().any(|w| w.path == v.path && !v.path.is_empty()) {
                    violations.push(v);
                }
            }
        }
        for v in violations {
            let generated = auto && v.path == [PathSeg::Key(name_key.to_string())];
            let span =
                if v.path.is_empty() || generated { r.name_span } else { locate(&r.properties, &v.path, v.at_key) };
            let mut d =
                Diagnostic::new(format!("{} (resource `{}`, {})", v.message, r.name, r.type_)).at(span, label_for(&v));
            if generated {
                d = d.with_hint(format!(
                    "the name is generated from the logical name `{}`; set the `{name_key}` property, or a shorter resource-level `name:`",
                    r.logical
                ));
            } else if let Some(h) = v.hint {
                d = d.with_hint(h);
            }
            ck.push(d);
        }
        for (option, p, span) in &r.options.property_names {
            if p == "*" {
                continue;
            }
            if p.contains(['.', '[']) {
                let top = p.split(['.', '[']).next().unwrap_or(p);
                ck.push(
                    Diagnostic::new(format!("{option} of `{}` names a path inside a property, `{p}`", r.name))
                        .at(*span, "nested paths are not supported yet")
                        .with_hint(format!("name the whole property, `{top}`")),
                );
                continue;
            }
            let top = p.as_str();
            if provider.schema().property(top).is_none() {
                let hint = match did_you_mean(top, provider.schema().properties.iter().map(|p| p.name)) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => "list property names of this resource".into(),
                };
                ck.push(
                    Diagnostic::new(format!("{option} names unknown property `{p}` of `{}`", r.name))
                        .at(*span, "no such property")
                        .with_hint(hint),
                );
            }
        }
        for (o, span) in &r.options.additional_secret_outputs {
            let schema = provider.schema();
            if !schema.outputs.contains(&o.as_str()) && schema.property(o).is_none() && o != "id" {
                ck.push(
                    Diagnostic::new(format!("additionalSecretOutputs names unknown output `{o}` of `{}`", r.name))
                        .at(*span, "no such output")
                        .with_hint(format!("{} has outputs: {}", r.type_, schema.outputs.join(", "))),
                );
            }
        }
    }
    for e in stack.outputs.values() {
        if let Err(d) = ctx.eval(e) {
            ck.push(d);
        }
    }
}

fn label_for(v: &rinfra_provider::schema::Violation) -> &'static str {
    if v.at_key {
        "unknown property"
    } else if v.path.is_empty() {
        "in this resource"
    } else if v.message.starts_with("missing") {
        "in here"
    } else {
        "invalid value"
    }
}
