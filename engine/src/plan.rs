//! Planning: what must change so that the cloud matches the stack.
//!
//! The plan compares, per resource, the desired inputs (the stack, with
//! references evaluated) with the current inputs (what a refresh read from
//! the cloud, or the state when refresh is off), after both are normalised
//! by the resource's provider. A property that differs from the state but
//! not from the stack was changed outside rinfra, and is marked as drift.

use crate::stack::Stack;
use rinfra_provider::schema::{Change, Read, is_unknown, unknown};
use rinfra_provider::{Observed, Props, Provider, Registry};
use rinfra_state::StateFile;
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// What kind of plan to make, as Terraform's plan modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanMode {
    /// Make the cloud match the stack (`preview`, `up`).
    Normal,
    /// Delete everything the state holds (`destroy`).
    Destroy,
    /// Change nothing in the cloud; only the state follows it (`refresh`).
    RefreshOnly,
    /// Like `Normal`, but protected resources are left as they are
    /// (`drift --remediate`).
    Remediate,
}

/// What happens to one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Nothing.
    Same,
    /// It is created.
    Create,
    /// It is changed in place.
    Update,
    /// It is replaced by a new resource, in the given order.
    Replace(ReplaceOrder),
    /// It is deleted.
    Delete,
    /// It leaves the state but stays in the cloud (`retainOnDelete`).
    Forget,
}

/// The order of the two halves of a replace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplaceOrder {
    /// The new resource is created, dependents are pointed at it, and only
    /// then is the old one deleted: Pulumi's default, with no outage.
    CreateBeforeDelete,
    /// The old resource is deleted before the new one is created.
    DeleteBeforeCreate(DeleteFirst),
}

/// Why a replace deletes the old resource first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteFirst {
    /// The resource sets `deleteBeforeReplace: true`.
    Requested,
    /// The new resource would have the old one's cloud id (its name is
    /// fixed), so both cannot exist at once.
    SameId,
    /// The type changes; the state holds one resource per name.
    TypeChanged,
}

impl ReplaceOrder {
    /// Whether the old resource goes first.
    pub fn deletes_first(self) -> bool {
        matches!(self, ReplaceOrder::DeleteBeforeCreate(_))
    }

    /// A sentence saying why this order, for plans.
    pub fn explain(self) -> &'static str {
        match self {
            ReplaceOrder::CreateBeforeDelete => "create replacement, then delete the old one",
            ReplaceOrder::DeleteBeforeCreate(DeleteFirst::Requested) => {
                "delete first: the resource sets deleteBeforeReplace"
            }
            ReplaceOrder::DeleteBeforeCreate(DeleteFirst::SameId) => {
                "delete first: the replacement keeps the same name, and two cannot exist at once"
            }
            ReplaceOrder::DeleteBeforeCreate(DeleteFirst::TypeChanged) => "delete first: the type changes",
        }
    }
}

impl Op {
    /// The symbol used in rendered plans.
    pub fn symbol(self) -> &'static str {
        match self {
            Op::Same => " ",
            Op::Create => "+",
            Op::Update => "~",
            Op::Replace(ReplaceOrder::CreateBeforeDelete) => "+/-",
            Op::Replace(ReplaceOrder::DeleteBeforeCreate(_)) => "-/+",
            Op::Delete => "-",
            Op::Forget => "-",
        }
    }

    /// The name of the operation in JSON documents.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Same => "same",
            Op::Create => "create",
            Op::Update => "update",
            Op::Replace(_) => "replace",
            Op::Delete => "delete",
            Op::Forget => "forget",
        }
    }

    /// Whether this is a replace, in either order.
    pub fn is_replace(self) -> bool {
        matches!(self, Op::Replace(_))
    }
}

impl Serialize for Op {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Why a step is planned, when the diff alone does not say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// The resource is in the state but was deleted outside rinfra.
    DeletedOutside,
    /// The stack declares another type under the same name.
    TypeChanged {
        /// The type the state holds.
        from: String,
    },
    /// The old half of a create-before-delete replace that an earlier run
    /// did not get to delete.
    LeftByReplace,
    /// It goes with the named resource (`deletedWith`), whose deletion
    /// deletes it too, so only the state forgets it.
    DeletedWith(String),
    /// What its provider says about deleting it (a subscription AWS
    /// cannot delete until it is confirmed).
    Provider(String),
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::DeletedOutside => f.write_str("deleted outside rinfra"),
            Reason::TypeChanged { from } => write!(f, "type changed from {from}"),
            Reason::LeftByReplace => f.write_str("replaced earlier; the old resource is still to be deleted"),
            Reason::DeletedWith(w) => write!(f, "deleted with `{w}`"),
            Reason::Provider(note) => f.write_str(note),
        }
    }
}

impl Serialize for Reason {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A change to one property.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PropChange {
    /// The property name.
    pub name: String,
    /// The current value, if set.
    pub old: Option<Value>,
    /// The desired value, if set. May be unknown until apply.
    pub new: Option<Value>,
    /// Whether this change forces replacement.
    pub replaces: bool,
    /// Whether the current value was changed outside rinfra (it differs
    /// from what the state recorded).
    pub drift: bool,
    /// How the provider will make the change, when that is worth saying
    /// (a shard count changed in several steps).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The plan for one resource.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    /// The logical name.
    pub name: String,
    /// The type token.
    #[serde(rename = "type")]
    pub type_: String,
    /// What happens.
    pub op: Op,
    /// The cloud id of the existing resource.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Property changes (for updates and replaces).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<PropChange>,
    /// The desired inputs (for creates, updates and replaces).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inputs: Option<Props>,
    /// The current inputs (for updates, replaces and deletes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<Props>,
    /// Why, when it is not obvious.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    /// Whether this step deletes the old half of an earlier replace (held
    /// in the state's `replaced` list), not the resource of this name.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub replaced: bool,
    /// The resources it depends on.
    pub dependencies: Vec<String>,
    /// For a replace that changes the type: the old type, whose provider
    /// deletes the old resource.
    #[serde(rename = "replacedType", skip_serializing_if = "Option::is_none")]
    pub replaced_type: Option<String>,
}

/// A change to a stack output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutputChange {
    /// The output name.
    pub name: String,
    /// The value in the state.
    pub old: Option<Value>,
    /// The value after apply, possibly unknown.
    pub new: Option<Value>,
}

/// A whole plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// The stack's name.
    pub stack: String,
    /// Every resource, in the order work would start: creates and updates
    /// in dependency order, then deletes in reverse dependency order.
    pub steps: Vec<Step>,
    /// Output changes (unchanged outputs are left out).
    pub outputs: Vec<OutputChange>,
    /// Whether the cloud was read before planning.
    pub refreshed: bool,
}

/// Counts of planned operations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Creates.
    pub create: usize,
    /// Updates.
    pub update: usize,
    /// Replaces.
    pub replace: usize,
    /// Deletes (forgets included).
    pub delete: usize,
    /// Unchanged resources.
    pub same: usize,
}

impl Plan {
    /// Counts the steps by operation.
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for step in &self.steps {
            match step.op {
                Op::Same => s.same += 1,
                Op::Create => s.create += 1,
                Op::Update => s.update += 1,
                Op::Replace(_) => s.replace += 1,
                Op::Delete | Op::Forget => s.delete += 1,
            }
        }
        s
    }

    /// Whether applying the plan would change nothing at all.
    pub fn is_empty(&self) -> bool {
        self.steps.iter().all(|s| s.op == Op::Same) && self.outputs.is_empty()
    }

    /// Whether any resource would change (outputs aside).
    pub fn has_resource_changes(&self) -> bool {
        self.steps.iter().any(|s| s.op != Op::Same)
    }
}

/// Why a plan cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// A reference could not be evaluated.
    #[error("cannot evaluate resource `{resource}`: {message}")]
    Eval {
        /// The resource.
        resource: String,
        /// What went wrong.
        message: String,
    },
    /// The state names a type this build does not know.
    #[error(
        "the state holds `{resource}` of unknown type `{type_}`; upgrade rinfra or remove it with `rinfra state rm`"
    )]
    UnknownType {
        /// The resource.
        resource: String,
        /// Its type.
        type_: String,
    },
    /// The change cannot be made in place.
    #[error("cannot update `{resource}`: {message}{}", .hint.as_ref().map(|h| format!(" ({h})")).unwrap_or_default())]
    Unsupported {
        /// The resource.
        resource: String,
        /// What is wrong.
        message: String,
        /// How to get there.
        hint: Option<String>,
    },
    /// A `--target` names no resource of the stack or state.
    #[error("--target `{target}` is not a resource of this stack or its state{}", .suggestion.as_ref().map(|s| format!("; did you mean `{s}`?")).unwrap_or_default())]
    UnknownTarget {
        /// The name given.
        target: String,
        /// The closest name, if any.
        suggestion: Option<String>,
    },
    /// A resource the state manages is now read with `get`.
    #[error(
        "`{resource}` is managed by this stack and is now read with `get`; run `rinfra state rm {resource}` first, or remove `get`"
    )]
    ManagedGet {
        /// The resource.
        resource: String,
    },
    /// A provider function failed.
    #[error("`{function}` failed: {message}")]
    Invoke {
        /// The function's token.
        function: String,
        /// What went wrong.
        message: String,
    },
    /// A resource read with `get` could not be read.
    #[error("cannot read `{resource}` (id `{id}`) with get: {message}")]
    Get {
        /// The resource.
        resource: String,
        /// The id it was read by.
        id: String,
        /// What went wrong.
        message: String,
    },
    /// A protected resource would be deleted or replaced.
    #[error("resource `{resource}` is protected and would be {action}; remove `protect: true` from its options first")]
    Protected {
        /// The resource.
        resource: String,
        /// "deleted" or "replaced".
        action: &'static str,
    },
}

/// What a refresh found: per resource in the state, `Some(observed)` or
/// `None` when the resource is gone from the cloud.
pub type Observations = BTreeMap<String, Option<Observed>>;

/// The attributes of a resource that references may read: its inputs,
/// overlaid with its outputs.
pub fn attributes(inputs: &Props, outputs: &Props) -> Props {
    let mut a = inputs.clone();
    a.extend(outputs.iter().map(|(k, v)| (k.clone(), v.clone())));
    a
}

/// Attributes every resource has, whatever its type: its cloud `id`, its
/// `urn`, and for a taggable type `tagsAll`, its tags with the provider's
/// default tags merged in.
pub const COMMON_ATTRIBUTES: &[&str] = &["id", "urn", "tagsAll"];

/// Adds [`COMMON_ATTRIBUTES`] to `attrs`: `id` is the cloud id when it is
/// known, else unknown.
pub fn with_common_attributes(mut attrs: Props, id: Option<&str>, urn: &str) -> Props {
    attrs.insert("id".into(), id.map_or_else(unknown, |i| Value::String(i.to_string())));
    attrs.insert("urn".into(), Value::String(urn.to_string()));
    if let Some(tags) = attrs.get("tags").cloned() {
        attrs.insert("tagsAll".into(), tags);
    }
    attrs
}

/// Reads `path` from the attributes of resource `res`. Unknown values are
/// explicit in the attributes, so a property that is simply not set reads
/// as null; a path into an unknown value stays unknown.
pub fn lookup_attribute(attrs: &BTreeMap<String, Props>, res: &str, path: &[String]) -> Option<Value> {
    let (first, rest) = path.split_first()?;
    let mut v = attrs.get(res)?.get(first).cloned().unwrap_or(Value::Null);
    for p in rest {
        if is_unknown(&v) {
            return Some(v);
        }
        v = crate::expr::step(&v, p)?;
    }
    Some(v)
}

/// Evaluates a resource's properties against known attributes.
pub fn eval_inputs(
    stack: &Stack,
    name: &str,
    attrs: &BTreeMap<String, Props>,
    registry: &Registry,
) -> Result<Props, PlanError> {
    let lookup =
        |res: &str, path: &[String]| lookup_attribute(attrs, res, path).or_else(|| stack.read_attribute(res, path));
    let ctx = stack.context(&lookup);
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

/// Fills in what a resource's provider gives it: the explicit provider's
/// values over the default provider's, each only where the schema has the
/// property. A value the resource sets wins; maps (default tags) merge
/// under the resource's own entries.
pub fn apply_provider_defaults(
    props: &mut serde_json::Map<String, Value>,
    schema: &rinfra_provider::ResourceSchema,
    registry_defaults: &Props,
    explicit: &Props,
) {
    let mut defaults = registry_defaults.clone();
    for (k, v) in explicit {
        match (defaults.get_mut(k), v) {
            (Some(Value::Object(base)), Value::Object(over)) => {
                base.extend(over.iter().map(|(a, b)| (a.clone(), b.clone())));
            }
            _ => {
                defaults.insert(k.clone(), v.clone());
            }
        }
    }
    for (k, v) in defaults {
        if schema.property(&k).is_none() {
            continue;
        }
        match (props.get_mut(&k), v) {
            (Some(Value::Object(own)), Value::Object(base)) => {
                for (a, b) in base {
                    own.entry(a).or_insert(b);
                }
            }
            (Some(_), _) => {}
            (None, v) => {
                props.insert(k, v);
            }
        }
    }
}

/// A record's inputs, with the default provider's value for every
/// recorded-only property (`region`) that the record lacks: it was made
/// before rinfra recorded that property, by the default provider.
pub fn recorded_with_defaults(provider: &dyn Provider, registry: &Registry, recorded: &Props) -> Props {
    let mut out = recorded.clone();
    for (k, v) in registry.defaults() {
        let never_read = provider.schema().property(k).is_some_and(|p| p.read == Read::Never);
        if never_read && !out.contains_key(k) {
            out.insert(k.clone(), v.clone());
        }
    }
    out
}

/// The name rinfra gives a resource whose stack leaves out its name
/// property, as Pulumi auto-names: the logical name, a dash and seven hex
/// digits ([`StateFile::name_suffix`]).
pub fn auto_name(state: &StateFile, name: &str, logical: &str) -> String {
    format!("{logical}-{}", state.name_suffix(name))
}

/// Gives `desired`, evaluated again at apply time, the auto-name the plan
/// chose (or the state records): a name is generated once, at plan time.
pub fn keep_auto_name(provider: &dyn Provider, desired: &mut Props, planned: Option<&Props>, recorded: Option<&Props>) {
    let key = provider.schema().name_property;
    if !is_auto_named(provider.schema()) || desired.contains_key(key) {
        return;
    }
    if let Some(v) = planned.and_then(|p| p.get(key)).or_else(|| recorded.and_then(|r| r.get(key))) {
        desired.insert(key.to_string(), v.clone());
    }
}

/// Whether resources of this schema are auto-named: they have a name
/// property that the stack may leave out.
pub fn is_auto_named(schema: &rinfra_provider::ResourceSchema) -> bool {
    schema.property(schema.name_property).is_some_and(|p| !p.required)
}

/// Evaluates the stack outputs against known attributes.
pub fn eval_outputs(stack: &Stack, attrs: &BTreeMap<String, Props>) -> BTreeMap<String, Value> {
    let lookup =
        |res: &str, path: &[String]| lookup_attribute(attrs, res, path).or_else(|| stack.read_attribute(res, path));
    let ctx = stack.context(&lookup);
    // A path into a value that does not exist evaluates to null; unknown
    // values are explicit in the attributes.
    stack.outputs.iter().map(|(k, e)| (k.clone(), ctx.eval(e).unwrap_or(Value::Null))).collect()
}

/// The current inputs of a resource: what the cloud reported, completed by
/// the state for properties the cloud never returns or that were not read.
pub fn current_inputs(provider: &dyn Provider, observed: Option<&Observed>, recorded: &Props) -> Props {
    let Some(obs) = observed else { return recorded.clone() };
    let mut cur = obs.inputs.clone();
    for p in &provider.schema().properties {
        let not_read = p.read == Read::Never || (p.read == Read::WhenManaged && !obs.inputs.contains_key(p.name));
        if not_read {
            match recorded.get(p.name) {
                Some(v) => {
                    cur.insert(p.name.to_string(), v.clone());
                }
                None => {
                    cur.remove(p.name);
                }
            }
        }
    }
    cur
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
    state: &StateFile,
    registry: &Registry,
    observed: Option<&Observations>,
) -> Result<Plan, PlanError> {
    plan_mode(stack, state, registry, observed, PlanMode::Normal).map(|p| p.plan)
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
        let mut desired = eval_inputs(stack, name, &attrs, registry)?;
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

    let new_outputs = eval_outputs(stack, &attrs);
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

/// Writes the options and dependencies the stack now declares into the
/// state for resources that exist in both. A resource whose only change is
/// `protect: false` still needs the state to know. Returns whether anything
/// changed.
pub fn sync_metadata(stack: &Stack, state: &mut StateFile) -> bool {
    let mut changed = false;
    for (name, decl) in &stack.resources {
        let Some(rec) = state.resources.get_mut(name) else { continue };
        if rec.type_ != decl.type_ {
            continue;
        }
        let deps: Vec<String> = decl.dependencies.iter().cloned().collect();
        let deleted_with = decl.options.deleted_with.as_ref().map(|(w, _)| w.clone());
        if rec.protect != decl.options.protect
            || rec.retain_on_delete != decl.options.retain_on_delete
            || rec.dependencies != deps
            || rec.deleted_with != deleted_with
        {
            rec.protect = decl.options.protect;
            rec.retain_on_delete = decl.options.retain_on_delete;
            rec.dependencies = deps;
            rec.deleted_with = deleted_with;
            changed = true;
        }
    }
    changed
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
