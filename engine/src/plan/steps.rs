//! Step generation: evaluating a resource's inputs, diffing them against
//! what the cloud and the state say, and choosing each step's operation,
//! order and reason.

use super::{
    DeleteFirst, Observations, Op, OutputChange, Plan, PlanError, PlanMode, PropChange, Reason, ReplaceOrder, Step,
};
use crate::conventions::{
    apply_provider_defaults, attributes, auto_name, current_inputs, is_auto_named, lookup_attribute,
    recorded_with_defaults, with_common_attributes,
};
use crate::stack::{Resolved, Stack};
use rinfra_provider::schema::{Change, Read, is_unknown, unknown};
use rinfra_provider::{Props, Provider, Registry};
use rinfra_state::StateFile;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
/// Evaluates a resource's properties against known attributes.
pub fn eval_inputs(
    stack: &Stack,
    resolved: &Resolved,
    name: &str,
    attrs: &BTreeMap<String, Props>,
    registry: &Registry,
) -> Result<Props, PlanError> {
    let lookup = |res: &str, path: &[String]| {
        lookup_attribute(attrs, res, path).or_else(|| stack.read_attribute(resolved, res, path))
    };
    let ctx = stack.context(resolved, &lookup);
    let decl = stack
        .resources
        .get(name)
        .ok_or_else(|| PlanError::Eval { resource: name.into(), message: "not in the stack".into() })?;
    match ctx.eval(&decl.properties) {
        Ok(Value::Object(mut m)) => {
            // Quoted scalars become the declared type, as at check time.
            if let Some(p) = registry.get(&decl.type_) {
                rinfra_provider::schema::coerce_props(&p.schema().properties, &mut m);
                apply_provider_defaults(&mut m, p.schema(), registry.defaults(), &decl.provider_defaults);
            }
            Ok(m.into_iter().filter(|(_, v)| !v.is_null()).collect())
        }
        Ok(_) => Ok(Props::new()),
        Err(d) => Err(PlanError::Eval { resource: name.into(), message: d.message }),
    }
}

/// Evaluates the stack outputs against known attributes.
pub fn eval_outputs(stack: &Stack, resolved: &Resolved, attrs: &BTreeMap<String, Props>) -> BTreeMap<String, Value> {
    let lookup = |res: &str, path: &[String]| {
        lookup_attribute(attrs, res, path).or_else(|| stack.read_attribute(resolved, res, path))
    };
    let ctx = stack.context(resolved, &lookup);
    // A path into a value that does not exist evaluates to null; unknown
    // values are explicit in the attributes.
    stack.outputs.iter().map(|(k, e)| (k.clone(), ctx.eval(e).unwrap_or(Value::Null))).collect()
}

/// Compares desired with current inputs, property by property.
pub fn diff(
    provider: &dyn Provider,
    desired: &Props,
    current: &Props,
    recorded: &Props,
    ignore: &BTreeSet<String>,
) -> Vec<PropChange> {
    let nd = provider.normalize(desired);
    let nc = provider.normalize(current);
    let nr = provider.normalize(recorded);
    let mut out = Vec::new();
    for p in &provider.schema().properties {
        if ignore.contains(p.name) || ignore.contains("*") {
            continue;
        }
        if p.read == Read::WhenManaged && !desired.contains_key(p.name) && !recorded.contains_key(p.name) {
            continue;
        }
        let (d, c) = (nd.get(p.name), nc.get(p.name));
        if d != c || d.is_some_and(is_unknown) {
            let drift = nr.get(p.name) != c && nr.get(p.name) == d;
            out.push(PropChange {
                name: p.name.to_string(),
                old: c.cloned(),
                new: d.cloned(),
                replaces: p.change == Change::Replace,
                drift,
                note: provider.change_note(p.name, c, d),
            });
        }
    }
    out
}

/// The attributes a resource will have once `op` is applied, as far as
/// they can be known now.
fn planned_attributes(
    provider: &dyn Provider,
    step: &Step,
    desired: &Props,
    outputs: Option<&Props>,
    urn: &str,
) -> Props {
    let op = step.op;
    let mut outs: Props = provider.schema().outputs.iter().map(|o| (o.to_string(), unknown())).collect();
    if op == Op::Same || op == Op::Update {
        if let Some(o) = outputs {
            outs.extend(o.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
    }
    outs.extend(provider.predict_outputs(desired));
    let id = match op {
        Op::Same | Op::Update => step.id.clone(),
        _ => provider.id_from_inputs(desired),
    };
    with_common_attributes(attributes(&provider.normalize(desired), &outs), id.as_deref(), urn)
}

fn provider_for<'r>(registry: &'r Registry, name: &str, type_: &str) -> Result<&'r Arc<dyn Provider>, PlanError> {
    registry.get(type_).ok_or_else(|| PlanError::UnknownType { resource: name.into(), type_: type_.into() })
}

/// Plans `stack` against `state`. `observed` holds what a refresh read, or
/// is `None` to plan against the state alone.
pub fn plan(
    stack: &Stack,
    resolved: &Resolved,
    state: &StateFile,
    registry: &Registry,
    observed: Option<&Observations>,
) -> Result<Plan, PlanError> {
    plan_mode(stack, resolved, state, registry, observed, PlanMode::Normal).map(|p| p.plan)
}

/// A plan and the protected resources it had to leave alone.
#[derive(Debug, Clone)]
pub struct Planned {
    /// The plan.
    pub plan: Plan,
    /// In `Remediate` mode: protected resources whose drift stays.
    pub skipped_protected: Vec<String>,
}

/// Plans in `mode`. In `Remediate` mode protected resources are left as
/// they are instead of stopping the plan, and their names are returned:
/// remediation must never touch a protected resource. In `Destroy` mode
/// every resource of the state is deleted, dependents first; in
/// `RefreshOnly` mode nothing changes in the cloud.
pub fn plan_mode(
    stack: &Stack,
    resolved: &Resolved,
    state: &StateFile,
    registry: &Registry,
    observed: Option<&Observations>,
    mode: PlanMode,
) -> Result<Planned, PlanError> {
    let refreshed = observed.is_some();
    match mode {
        PlanMode::Destroy => {
            let mut steps = delete_steps(state, registry, |_| true)?;
            steps.extend(replaced_steps(state, registry)?);
            let outputs = state
                .outputs
                .iter()
                .map(|(k, v)| OutputChange { name: k.clone(), old: Some(v.clone()), new: None })
                .collect();
            let plan = Plan { stack: stack.name.clone(), steps, outputs, refreshed };
            return Ok(Planned { plan, skipped_protected: Vec::new() });
        }
        PlanMode::RefreshOnly => {
            let plan = Plan { stack: stack.name.clone(), steps: Vec::new(), outputs: Vec::new(), refreshed };
            return Ok(Planned { plan, skipped_protected: Vec::new() });
        }
        PlanMode::Normal | PlanMode::Remediate => {}
    }
    let skip_protected = mode == PlanMode::Remediate;
    let mut steps = Vec::new();
    let mut attrs: BTreeMap<String, Props> = BTreeMap::new();
    for name in &stack.order {
        let Some(decl) = stack.resources.get(name) else { continue };
        if decl.get.is_some() {
            // Read, never managed: it has no step, and references read
            // what the read found.
            if state.resources.contains_key(name) {
                return Err(PlanError::ManagedGet { resource: name.clone() });
            }
            continue;
        }
        let provider = provider_for(registry, name, &decl.type_)?;
        let mut desired = eval_inputs(stack, resolved, name, &attrs, registry)?;
        let recorded = state.resources.get(name).filter(|r| r.type_ == decl.type_);
        // An auto-named resource keeps the name it was given; a new one
        // gets a fresh name.
        let name_key = provider.schema().name_property;
        let auto_named = is_auto_named(provider.schema()) && !desired.contains_key(name_key);
        if auto_named {
            let kept = recorded.and_then(|r| r.inputs.get(name_key)).cloned();
            let fresh = || Value::String(auto_name(state, name, &decl.logical));
            desired.insert(name_key.to_string(), kept.unwrap_or_else(fresh));
        }
        let obs = recorded.and_then(|_| observed.map(|o| o.get(name).cloned().flatten()));
        let dependencies: Vec<String> = decl.dependencies.iter().cloned().collect();
        let mut step = Step {
            name: name.clone(),
            type_: decl.type_.clone(),
            op: Op::Create,
            id: None,
            changes: Vec::new(),
            inputs: Some(desired.clone()),
            current: None,
            reason: None,
            replaced: false,
            dependencies,
            replaced_type: None,
        };
        let mut outputs = None;
        match recorded {
            None => {
                if let Some(other) = state.resources.get(name) {
                    // Same name, another type: the old one must go first,
                    // deleted by the provider of its own type.
                    if (decl.options.protect || other.protect) && !skip_protected {
                        return Err(PlanError::Protected { resource: name.clone(), action: "replaced" });
                    }
                    step.op = Op::Replace(ReplaceOrder::DeleteBeforeCreate(DeleteFirst::TypeChanged));
                    step.id = Some(other.id.clone());
                    step.reason = Some(Reason::TypeChanged { from: other.type_.clone() });
                    step.current = Some(other.inputs.clone());
                    step.replaced_type = Some(other.type_.clone());
                }
            }
            Some(_) if matches!(obs, Some(None)) => {
                step.reason = Some(Reason::DeletedOutside);
            }
            Some(rec) => {
                let rec_inputs = recorded_with_defaults(provider.as_ref(), registry, &rec.inputs);
                let current = current_inputs(provider.as_ref(), obs.as_ref().and_then(Option::as_ref), &rec_inputs);
                let mut changes =
                    diff(provider.as_ref(), &desired, &current, &rec_inputs, &decl.options.ignore_changes);
                let forced = |n: &str| {
                    decl.options.replace_on_changes.contains(n) || decl.options.replace_on_changes.contains("*")
                };
                for c in changes.iter_mut().filter(|c| forced(&c.name)) {
                    c.replaces = true;
                }
                let replaces = changes.iter().any(|c| c.replaces);
                if replaces && auto_named {
                    // The replacement gets a name of its own, so both can
                    // exist at once and it is created before the old one
                    // goes.
                    let fresh = Value::String(auto_name(state, name, &decl.logical));
                    desired.insert(name_key.to_string(), fresh.clone());
                    step.inputs = Some(desired.clone());
                    if let Some(c) = changes.iter_mut().find(|c| c.name == name_key) {
                        c.new = Some(fresh);
                    } else {
                        changes.push(PropChange {
                            name: name_key.to_string(),
                            old: current.get(name_key).cloned(),
                            new: Some(fresh),
                            replaces: true,
                            drift: false,
                            note: None,
                        });
                    }
                }
                if !changes.is_empty() && !replaces {
                    if let Some(v) = provider.check_change(&current, &desired).into_iter().next() {
                        return Err(PlanError::Unsupported {
                            resource: name.clone(),
                            message: v.message,
                            hint: v.hint,
                        });
                    }
                }
                // hideDiffs: the change is planned and applied, but its
                // values are not shown.
                let hidden = |n: &str| decl.options.hide_diffs.contains(n) || decl.options.hide_diffs.contains("*");
                for c in changes.iter_mut().filter(|c| hidden(&c.name)) {
                    let hidden = || Value::String("[hidden by hideDiffs]".into());
                    c.old = c.old.as_ref().map(|_| hidden());
                    c.new = c.new.as_ref().map(|_| hidden());
                }
                step.id = Some(rec.id.clone());
                step.op = if replaces {
                    Op::Replace(replace_order(provider.as_ref(), decl.options.delete_before_replace, &rec.id, &desired))
                } else if changes.is_empty() {
                    Op::Same
                } else {
                    Op::Update
                };
                step.changes = changes;
                step.current = Some(current);
                let obs_out = obs.as_ref().and_then(Option::as_ref).map(|o| o.outputs.clone());
                outputs = Some(obs_out.unwrap_or_else(|| rec.outputs.clone()));
                if step.op.is_replace() && (decl.options.protect || rec.protect) && !skip_protected {
                    return Err(PlanError::Protected { resource: name.clone(), action: "replaced" });
                }
            }
        }
        if step.op == Op::Same {
            step.inputs = None;
        }
        let urn = state.urn(&decl.type_, &decl.logical);
        attrs.insert(name.clone(), planned_attributes(provider.as_ref(), &step, &desired, outputs.as_ref(), &urn));
        steps.push(step);
    }

    // Resources in the state but not in the stack are deleted, dependents
    // before their dependencies.
    let mut skipped = Vec::new();
    let removed = |n: &str| !stack.resources.contains_key(n);
    let protected_removed = |n: &str| removed(n) && state.resources.get(n).is_some_and(|r| r.protect);
    if skip_protected {
        steps.extend(delete_steps(state, registry, |n| removed(n) && !protected_removed(n))?);
        skipped.extend(state.resources.keys().filter(|n| protected_removed(n)).cloned());
        for step in steps.iter_mut() {
            let protected = stack.resources.get(&step.name).is_some_and(|d| d.options.protect)
                || state.resources.get(&step.name).is_some_and(|r| r.protect);
            if protected && state.resources.contains_key(&step.name) && step.op != Op::Same {
                skipped.push(step.name.clone());
                step.op = Op::Same;
                step.changes.clear();
                step.inputs = None;
            }
        }
    } else {
        steps.extend(delete_steps(state, registry, removed)?);
    }
    steps.extend(replaced_steps(state, registry)?);

    let new_outputs = eval_outputs(stack, resolved, &attrs);
    let mut outputs = Vec::new();
    let names: BTreeSet<&String> = new_outputs.keys().chain(state.outputs.keys()).collect();
    for k in names {
        let (old, new) = (state.outputs.get(k), new_outputs.get(k));
        if old != new || new.is_some_and(is_unknown) {
            outputs.push(OutputChange { name: k.clone(), old: old.cloned(), new: new.cloned() });
        }
    }
    Ok(Planned { plan: Plan { stack: stack.name.clone(), steps, outputs, refreshed }, skipped_protected: skipped })
}

/// The order of a replace. Creating first is the default, as in Pulumi;
/// deleting first is forced when the new resource would have the old one's
/// id (a fixed name), and chosen with `deleteBeforeReplace`.
fn replace_order(provider: &dyn Provider, requested: bool, old_id: &str, desired: &Props) -> ReplaceOrder {
    if requested {
        return ReplaceOrder::DeleteBeforeCreate(DeleteFirst::Requested);
    }
    // An id that cannot be predicted yet may turn out to be the same one.
    match provider.id_from_inputs(desired) {
        Some(new_id) if new_id != old_id && !is_unknown(&Value::String(new_id.clone())) => {
            ReplaceOrder::CreateBeforeDelete
        }
        _ => ReplaceOrder::DeleteBeforeCreate(DeleteFirst::SameId),
    }
}

/// Delete steps for the old halves of earlier replaces still in the cloud.
fn replaced_steps(state: &StateFile, registry: &Registry) -> Result<Vec<Step>, PlanError> {
    let mut steps = Vec::new();
    for r in &state.replaced {
        provider_for(registry, &r.name, &r.resource.type_)?;
        steps.push(Step {
            name: r.name.clone(),
            type_: r.resource.type_.clone(),
            op: Op::Delete,
            id: Some(r.resource.id.clone()),
            changes: Vec::new(),
            inputs: None,
            current: Some(r.resource.inputs.clone()),
            reason: Some(Reason::LeftByReplace),
            replaced: true,
            dependencies: Vec::new(),
            replaced_type: None,
        });
    }
    Ok(steps)
}

/// Delete steps for every resource of `state` that `selected` accepts, in
/// reverse dependency order. Protected resources stop the plan.
pub fn delete_steps(
    state: &StateFile,
    registry: &Registry,
    selected: impl Fn(&str) -> bool,
) -> Result<Vec<Step>, PlanError> {
    let nodes: BTreeMap<String, BTreeSet<String>> = state
        .resources
        .iter()
        .filter(|(k, _)| selected(k))
        .map(|(k, r)| (k.clone(), r.dependencies.iter().cloned().collect()))
        .collect();
    let mut order = crate::graph::order_by_deps(&nodes);
    order.reverse();
    let mut steps = Vec::new();
    for name in order {
        let Some(rec) = state.resources.get(&name) else { continue };
        provider_for(registry, &name, &rec.type_)?;
        if rec.protect && !rec.retain_on_delete {
            return Err(PlanError::Protected { resource: name, action: "deleted" });
        }
        // Deleting what it was made with deletes it too: only forget it.
        // A target that is only forgotten (`retainOnDelete`) stays, and so
        // must this one's delete.
        let target_goes = |w: &String| {
            w != &name && nodes.contains_key(w) && state.resources.get(w).is_some_and(|t| !t.retain_on_delete)
        };
        let goes_with = rec.deleted_with.as_ref().filter(|w| target_goes(w) && !rec.retain_on_delete);
        steps.push(Step {
            name: name.clone(),
            type_: rec.type_.clone(),
            op: if rec.retain_on_delete || goes_with.is_some() { Op::Forget } else { Op::Delete },
            id: Some(rec.id.clone()),
            changes: Vec::new(),
            inputs: None,
            current: Some(rec.inputs.clone()),
            reason: goes_with
                .map(|w| Reason::DeletedWith(w.clone()))
                .or_else(|| registry.get(&rec.type_).and_then(|p| p.delete_note(&rec.outputs)).map(Reason::Provider)),
            replaced: false,
            dependencies: rec.dependencies.clone(),
            replaced_type: None,
        });
    }
    Ok(steps)
}

/// Limits `plan` to the resources named in `targets` and what they need:
/// their dependencies for a create or update run, their dependents for a
/// destroy (which must go first). Output changes are dropped, because a
/// targeted run leaves the stack outputs as they are.
pub fn restrict(
    plan: &mut Plan,
    targets: &[String],
    stack: Option<&Stack>,
    state: &StateFile,
    destroy: bool,
) -> Result<(), PlanError> {
    let known: BTreeSet<&str> =
        plan.steps.iter().map(|s| s.name.as_str()).chain(state.resources.keys().map(String::as_str)).collect();
    for t in targets {
        if !known.contains(t.as_str()) {
            let suggestion = rinfra_provider::schema::did_you_mean(t, known.iter().copied()).map(str::to_string);
            return Err(PlanError::UnknownTarget { target: t.clone(), suggestion });
        }
    }
    // Edges to follow from each resource.
    let mut next: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    if destroy {
        for (name, rec) in &state.resources {
            for d in &rec.dependencies {
                next.entry(d.as_str()).or_default().push(name.as_str());
            }
        }
    } else {
        for step in &plan.steps {
            let deps = stack
                .and_then(|s| s.resources.get(&step.name))
                .map(|d| d.dependencies.iter().map(String::as_str).collect());
            next.insert(
                step.name.as_str(),
                deps.unwrap_or_else(|| step.dependencies.iter().map(String::as_str).collect()),
            );
        }
    }
    let mut keep: BTreeSet<String> = BTreeSet::new();
    let mut todo: Vec<&str> = targets.iter().map(String::as_str).collect();
    while let Some(n) = todo.pop() {
        if keep.insert(n.to_string()) {
            todo.extend(next.get(n).into_iter().flatten().copied());
        }
    }
    plan.steps.retain(|s| keep.contains(&s.name) && !s.replaced);
    plan.outputs.clear();
    Ok(())
}
