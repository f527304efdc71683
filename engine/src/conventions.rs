//! The conventions every resource follows, whatever its type: the
//! attributes references may read (`id`, `urn`, `tagsAll`), the values a
//! provider gives its resources (region, default tags), auto-names, and how
//! the current inputs of a resource are made of what the cloud says and
//! what the state records.
//!
//! These are Pulumi's conventions, not knowledge of a type: they read only
//! a schema's `name_property`, `tags` and `region` properties.

use rinfra_provider::schema::Read;
use rinfra_provider::{Observed, Props, Provider, Registry};
use rinfra_state::StateFile;
use serde_json::Value;
use std::collections::BTreeMap;

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
    attrs.insert("id".into(), id.map_or_else(rinfra_provider::schema::unknown, |i| Value::String(i.to_string())));
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
        if rinfra_provider::schema::is_unknown(&v) {
            return Some(v);
        }
        v = crate::expr::step(&v, p)?;
    }
    Some(v)
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

/// The attributes of every resource in the state: its inputs with schema
/// defaults filled in, overlaid with its outputs.
pub fn attrs_of(state: &StateFile, registry: &Registry) -> BTreeMap<String, Props> {
    state
        .resources
        .iter()
        .map(|(k, r)| {
            let inputs = registry.get(&r.type_).map(|p| p.normalize(&r.inputs)).unwrap_or_else(|| r.inputs.clone());
            (k.clone(), with_common_attributes(attributes(&inputs, &r.outputs), Some(&r.id), &r.urn))
        })
        .collect()
}

/// The values a resource's provider gives it that the cloud never reports
/// back (its region): what a read of it must be told, and what its record
/// keeps.
pub fn where_it_lives(
    provider_defaults: &Props,
    provider: &dyn rinfra_provider::Provider,
    registry: &Registry,
) -> rinfra_provider::Props {
    let mut given = serde_json::Map::new();
    crate::conventions::apply_provider_defaults(&mut given, provider.schema(), registry.defaults(), provider_defaults);
    given
        .into_iter()
        .filter(|(k, _)| provider.schema().property(k).is_some_and(|p| p.read == rinfra_provider::schema::Read::Never))
        .collect()
}
