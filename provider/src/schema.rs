//! Resource schemas: the single description of a type's properties.
//!
//! The engine validates stacks, normalises values for comparison and
//! classifies changes from these definitions alone, so it never needs to know
//! any particular resource type. The editor JSON Schema is generated from
//! them too, which keeps the validator and the editor in agreement.

use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The properties of one resource, keyed by name.
pub type Props = BTreeMap<String, Value>;

/// The marker string that stands for a value not known until apply time,
/// such as the ARN of a stream that does not exist yet.
const UNKNOWN_MARKER: &str = "\u{1}rinfra:unknown\u{1}";

/// A value that will only be known after apply.
pub fn unknown() -> Value {
    Value::String(UNKNOWN_MARKER.to_string())
}

/// Whether `v` is, or contains, a value not yet known.
pub fn is_unknown(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains(UNKNOWN_MARKER),
        Value::Array(items) => items.iter().any(is_unknown),
        Value::Object(map) => map.values().any(is_unknown),
        _ => false,
    }
}

/// The type of a property value.
#[derive(Debug, Clone, PartialEq)]
pub enum Type {
    /// Any string.
    String,
    /// A whole number, optionally bounded (both ends inclusive).
    Integer {
        /// The least value allowed.
        min: Option<i64>,
        /// The greatest value allowed.
        max: Option<i64>,
    },
    /// A floating point number. `1` and `1.0` are the same value.
    Number,
    /// `true` or `false`.
    Bool,
    /// One string out of a fixed list.
    Enum(&'static [&'static str]),
    /// A list of items. When `set` is true the order does not matter and
    /// duplicates collapse, as AWS treats metric and action lists.
    List {
        /// The type of every item.
        item: Box<Type>,
        /// Whether the list is compared as a set.
        set: bool,
        /// The most items allowed.
        max_items: Option<usize>,
    },
    /// A map from string keys to values of one type.
    Map {
        /// The type of every value.
        value: Box<Type>,
        /// The most entries allowed.
        max_entries: Option<usize>,
    },
    /// A nested object with its own properties.
    Object(Vec<Property>),
    /// A JSON document, such as an IAM policy, given as JSON text or as a
    /// mapping. It compares as JSON: key order, whitespace, and a single
    /// statement or value against a one-element list make no difference.
    Json,
}

/// How a change to a property is carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The cloud can change it in place.
    Update,
    /// The resource must be replaced.
    Replace,
    /// It only affects rinfra's own behaviour (such as options used at
    /// delete time), so a change updates the state and calls nothing.
    StateOnly,
}

/// How the current value of a property is read back from the cloud.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// Every read returns it.
    Always,
    /// It costs extra calls (such as tags), so it is read only when the stack
    /// or the state manages it.
    WhenManaged,
    /// The cloud never returns it; it is compared with the recorded inputs.
    Never,
}

/// One property of a resource or of a nested object.
#[derive(Debug, Clone, PartialEq)]
pub struct Property {
    /// The name used in stack files, in camelCase.
    pub name: &'static str,
    /// The value's type.
    pub ty: Type,
    /// Whether the stack must set it.
    pub required: bool,
    /// The value the cloud uses when it is not set.
    pub default: Option<Value>,
    /// How a change is applied.
    pub change: Change,
    /// How its current value is read.
    pub read: Read,
    /// One sentence for users and editors.
    pub doc: &'static str,
}

impl Property {
    /// An optional, updatable, always-read property.
    pub fn new(name: &'static str, ty: Type, doc: &'static str) -> Self {
        Property { name, ty, required: false, default: None, change: Change::Update, read: Read::Always, doc }
    }
    /// Marks the property as required.
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }
    /// Sets the value the cloud assumes when the property is absent.
    pub fn default(mut self, v: Value) -> Self {
        self.default = Some(v);
        self
    }
    /// Marks a change of the property as forcing replacement.
    pub fn replaces(mut self) -> Self {
        self.change = Change::Replace;
        self
    }
    /// Marks the property as affecting rinfra only.
    pub fn state_only(mut self) -> Self {
        self.change = Change::StateOnly;
        self.read = Read::Never;
        self
    }
    /// Marks the property as read only when managed.
    pub fn read_when_managed(mut self) -> Self {
        self.read = Read::WhenManaged;
        self
    }
}

/// The JSON Schema fragment that accepts an interpolated string, which a
/// stack may use in place of any value.
pub fn interpolation_schema() -> Value {
    serde_json::json!({"type": "string", "pattern": "\\$\\{", "description": "An interpolation such as ${resource.property}."})
}

impl Type {
    /// A JSON Schema (draft-07) for values of this type. Every typed value
    /// also accepts an interpolated string, as the stack language does.
    pub fn json_schema(&self) -> Value {
        use serde_json::json;
        let or_ref = |s: Value| json!({"anyOf": [s, interpolation_schema()]});
        match self {
            Type::String => json!({"type": "string"}),
            Type::Integer { min, max } => {
                let mut s = json!({"type": "integer"});
                if let Some(m) = min {
                    s["minimum"] = json!(m);
                }
                if let Some(m) = max {
                    s["maximum"] = json!(m);
                }
                or_ref(s)
            }
            Type::Number => or_ref(json!({"type": "number"})),
            Type::Bool => or_ref(json!({"type": "boolean"})),
            Type::Enum(options) => or_ref(json!({"enum": options})),
            Type::List { item, set, max_items } => {
                let mut s = json!({"type": "array", "items": item.json_schema()});
                if *set {
                    s["uniqueItems"] = json!(true);
                }
                if let Some(m) = max_items {
                    s["maxItems"] = json!(m);
                }
                or_ref(s)
            }
            Type::Map { value, max_entries } => {
                let mut s = json!({"type": "object", "additionalProperties": value.json_schema()});
                if let Some(m) = max_entries {
                    s["maxProperties"] = json!(m);
                }
                or_ref(s)
            }
            Type::Object(props) => or_ref(properties_json_schema(props)),
            Type::Json => json!({"anyOf": [{"type": "string"}, {"type": "object"}]}),
        }
    }
}

/// A JSON Schema for an object with `properties`: known keys only, the
/// required ones required.
pub fn properties_json_schema(properties: &[Property]) -> Value {
    let mut props = Map::new();
    for p in properties {
        let mut s = p.ty.json_schema();
        if let Value::Object(m) = &mut s {
            m.insert("description".into(), Value::String(p.doc.to_string()));
            if let Some(d) = &p.default {
                m.insert("default".into(), d.clone());
            }
        }
        props.insert(p.name.to_string(), s);
    }
    let required: Vec<&str> = properties.iter().filter(|p| p.required).map(|p| p.name).collect();
    serde_json::json!({"type": "object", "additionalProperties": false, "required": required, "properties": props})
}

/// The `tags` property every taggable type shares: a map of at most 50
/// strings, read only when the stack or the state manages it.
pub fn tags_property(doc: &'static str) -> Property {
    Property::new("tags", Type::Map { value: Box::new(Type::String), max_entries: Some(50) }, doc)
        .default(Value::Object(Map::new()))
        .read_when_managed()
}

/// The `region` property every AWS type has, as in Pulumi AWS v7: the
/// region the resource lives in, the provider's when absent. A move is a
/// replacement. It is recorded, never read back: a resource cannot change
/// region.
pub fn region_property() -> Property {
    let mut p = Property::new("region", Type::String, "The region the resource lives in; the provider's by default.")
        .replaces();
    p.read = Read::Never;
    p
}

/// Whether `r` is shaped like an AWS region name (`us-west-2`,
/// `eu-central-1`, `us-gov-east-1`): lower-case words joined by dashes,
/// ending with a number.
pub fn is_region_name(r: &str) -> bool {
    let parts: Vec<&str> = r.split('-').collect();
    parts.len() >= 3
        && parts.iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()))
        && parts.last().is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()))
        && parts.first().is_some_and(|p| p.chars().all(|c| c.is_ascii_lowercase()))
}

/// A violation when `props` name a region that cannot be one.
pub fn region_violation(props: &Props) -> Option<Violation> {
    let r = props.get("region")?.as_str()?;
    (!is_unknown(&Value::String(r.to_string())) && !is_region_name(r)).then(|| {
        Violation::new(
            key_path("region"),
            format!("`{r}` is not a region"),
            Some("write a region such as us-east-1 or eu-west-2".into()),
        )
    })
}

/// What turns the string map `from` into `to`: the keys to remove, and
/// the entries to set (new keys, and keys whose value changes). Tag APIs
/// take exactly these two calls.
pub fn map_changes(
    from: &BTreeMap<String, String>,
    to: &BTreeMap<String, String>,
) -> (Vec<String>, BTreeMap<String, String>) {
    let removed = from.keys().filter(|k| !to.contains_key(*k)).cloned().collect();
    let set = to.iter().filter(|(k, v)| from.get(*k) != Some(*v)).map(|(k, v)| (k.clone(), v.clone())).collect();
    (removed, set)
}

/// [`map_changes`] of the `tags` of two sets of properties.
pub fn tag_changes(old: &Props, new: &Props) -> (Vec<String>, BTreeMap<String, String>) {
    map_changes(&string_map(old, "tags"), &string_map(new, "tags"))
}

/// The string map under `key` (such as tags or dimensions), empty when
/// absent.
pub fn string_map(p: &Props, key: &str) -> BTreeMap<String, String> {
    p.get(key)
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect())
        .unwrap_or_default()
}

/// The full description of a resource type.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceSchema {
    /// The type token used in stacks, such as `aws:kinesis:Stream`.
    pub token: &'static str,
    /// One sentence for users and editors.
    pub doc: &'static str,
    /// The input properties.
    pub properties: Vec<Property>,
    /// The output names other resources can reference, besides inputs.
    pub outputs: Vec<&'static str>,
    /// The input property that holds the resource's cloud name. A change to
    /// it replaces the resource, and because the name is chosen by the user
    /// the old resource must be deleted before the new one is created.
    /// When the property is optional, a stack that leaves it out gets a
    /// generated name (auto-naming).
    pub name_property: &'static str,
    /// Properties the Pulumi provider has that rinfra does not support
    /// yet, each with the reason: a stack that sets one gets a located
    /// error saying so, not "unknown property".
    pub not_yet: Vec<(&'static str, &'static str)>,
}

impl ResourceSchema {
    /// The property called `name`, if there is one.
    pub fn property(&self, name: &str) -> Option<&Property> {
        self.properties.iter().find(|p| p.name == name)
    }
}

/// A step in the path to a value inside a resource's properties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSeg {
    /// A map key or property name.
    Key(String),
    /// A list index.
    Index(usize),
}

/// A problem with a property value, located by its path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Where the bad value is, from the resource's properties down.
    pub path: Vec<PathSeg>,
    /// Whether the problem is the key itself (an unknown property) rather
    /// than its value.
    pub at_key: bool,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
}

impl Violation {
    /// A problem with the value at `path`.
    pub fn new(path: Vec<PathSeg>, message: impl Into<String>, hint: Option<String>) -> Self {
        Violation { path, at_key: false, message: message.into(), hint }
    }
}

/// A path with one property name.
pub fn key_path(name: &str) -> Vec<PathSeg> {
    vec![PathSeg::Key(name.to_string())]
}

/// The closest of `candidates` to `word`, if any is close enough to be a
/// likely typo.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let word_l = word.to_lowercase();
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let c_l = c.to_lowercase();
        // A prefix of a longer name ("retention" for "retentionPeriod")
        // is as likely a slip as a typo.
        let d = if word_l.len() >= 4 && (c_l.starts_with(&word_l) || c_l.ends_with(&word_l)) {
            1
        } else {
            levenshtein(&word_l, &c_l)
        };
        let limit = (word.len().max(c.len()) / 3).max(1);
        if d <= limit && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

fn type_name(ty: &Type) -> String {
    match ty {
        Type::String => "a string".into(),
        Type::Integer { .. } => "a whole number".into(),
        Type::Number => "a number".into(),
        Type::Bool => "true or false".into(),
        Type::Enum(_) => "one of a fixed set of strings".into(),
        Type::List { item, .. } => format!("a list of {}", type_name(item).trim_start_matches("a ")),
        Type::Map { .. } => "a map".into(),
        Type::Object(_) => "an object".into(),
        Type::Json => "a JSON document".into(),
    }
}

fn example(ty: &Type) -> String {
    match ty {
        Type::String => "write text; quote it if it looks like a number or boolean".into(),
        Type::Integer { .. } => "write a whole number, such as `1`".into(),
        Type::Number => "write a number, such as `1` or `0.5`".into(),
        Type::Bool => "write `true` or `false`".into(),
        Type::Enum(options) => format!("write one of: {}", options.join(", ")),
        Type::List { .. } => "write a list, as `- item` lines or `[a, b]`".into(),
        Type::Map { .. } | Type::Object(_) => "write `key: value` entries on indented lines".into(),
        Type::Json => "write the document as JSON text, or as a mapping (`fn::toJSON` also works)".into(),
    }
}

fn value_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

/// Checks `props` against the property list, reporting unknown and missing
/// properties and values of the wrong type or out of range. Values not yet
/// known are not checked.
pub fn validate_props(properties: &[Property], props: &Map<String, Value>, path: &[PathSeg], out: &mut Vec<Violation>) {
    for (key, value) in props {
        let mut p = path.to_vec();
        p.push(PathSeg::Key(key.clone()));
        match properties.iter().find(|prop| prop.name == key) {
            Some(prop) => validate_value(&prop.ty, value, &p, out),
            None => {
                let hint = match did_you_mean(key, properties.iter().map(|p| p.name)) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!(
                        "known properties are: {}",
                        properties.iter().map(|p| p.name).collect::<Vec<_>>().join(", ")
                    ),
                };
                out.push(Violation {
                    path: p,
                    at_key: true,
                    message: format!("unknown property `{key}`"),
                    hint: Some(hint),
                });
            }
        }
    }
    // A required property that an unknown key was suggested for is the
    // same mistake; report it once, at the key.
    let suggested: Vec<&str> = props
        .keys()
        .filter(|k| !properties.iter().any(|p| p.name == k.as_str()))
        .filter_map(|k| did_you_mean(k, properties.iter().map(|p| p.name)))
        .collect();
    for prop in properties.iter().filter(|p| p.required && !suggested.contains(&p.name)) {
        if !props.contains_key(prop.name) {
            out.push(Violation::new(
                path.to_vec(),
                format!("missing required property `{}`", prop.name),
                Some(format!("add `{}:` ({})", prop.name, prop.doc)),
            ));
        }
    }
}

/// Checks one value against its type.
pub fn validate_value(ty: &Type, value: &Value, path: &[PathSeg], out: &mut Vec<Violation>) {
    if is_unknown(value)
        && !matches!(
            (ty, value),
            (Type::List { .. } | Type::Map { .. } | Type::Object(_), Value::Array(_) | Value::Object(_))
        )
    {
        // A reference to an output not known yet: its type is checked when
        // it resolves, because outputs are all strings today.
        if !matches!(ty, Type::String | Type::Enum(_)) {
            if let Value::String(s) = value {
                if s != UNKNOWN_MARKER {
                    out.push(Violation::new(
                        path.to_vec(),
                        format!("expected {}, found text", type_name(ty)),
                        Some(
                            "an interpolated string is always text; use a whole-string `${…}` to keep a value's type"
                                .into(),
                        ),
                    ));
                }
            }
        }
        return;
    }
    let mismatch = |out: &mut Vec<Violation>| {
        out.push(Violation::new(
            path.to_vec(),
            format!("expected {}, found {}", type_name(ty), value_kind(value)),
            Some(example(ty)),
        ));
    };
    match ty {
        Type::String => {
            if !value.is_string() {
                mismatch(out);
            }
        }
        Type::Bool => {
            if !value.is_boolean() {
                mismatch(out);
            }
        }
        Type::Number => {
            if !value.is_number() {
                mismatch(out);
            }
        }
        Type::Integer { min, max } => match integer_of(value) {
            Some(n) => {
                let low = min.is_some_and(|m| n < m);
                let high = max.is_some_and(|m| n > m);
                if low || high {
                    let range = match (min, max) {
                        (Some(a), Some(b)) => format!("from {a} to {b}"),
                        (Some(a), None) => format!("at least {a}"),
                        (None, Some(b)) => format!("at most {b}"),
                        (None, None) => String::new(),
                    };
                    out.push(Violation::new(
                        path.to_vec(),
                        format!("{n} is out of range"),
                        Some(format!("the value must be {range}")),
                    ));
                }
            }
            None => mismatch(out),
        },
        Type::Enum(options) => match value.as_str() {
            Some(s) if options.contains(&s) => {}
            Some(s) => {
                let hint = match did_you_mean(s, options.iter().copied()) {
                    Some(m) => format!("did you mean `{m}`?"),
                    None => format!("expected one of: {}", options.join(", ")),
                };
                out.push(Violation::new(path.to_vec(), format!("`{s}` is not a valid value"), Some(hint)));
            }
            None => mismatch(out),
        },
        Type::List { item, max_items, .. } => match value.as_array() {
            Some(items) => {
                if let Some(m) = max_items.filter(|m| items.len() > *m) {
                    out.push(Violation::new(
                        path.to_vec(),
                        format!("{} items, but at most {m} are allowed", items.len()),
                        None,
                    ));
                }
                for (i, v) in items.iter().enumerate() {
                    let mut p = path.to_vec();
                    p.push(PathSeg::Index(i));
                    validate_value(item, v, &p, out);
                }
            }
            None => mismatch(out),
        },
        Type::Map { value: vt, max_entries } => match value.as_object() {
            Some(map) => {
                if let Some(m) = max_entries.filter(|m| map.len() > *m) {
                    out.push(Violation::new(
                        path.to_vec(),
                        format!("{} entries, but at most {m} are allowed", map.len()),
                        None,
                    ));
                }
                for (k, v) in map {
                    let mut p = path.to_vec();
                    p.push(PathSeg::Key(k.clone()));
                    validate_value(vt, v, &p, out);
                }
            }
            None => mismatch(out),
        },
        Type::Object(props) => match value.as_object() {
            Some(map) => validate_props(props, map, path, out),
            None => mismatch(out),
        },
        Type::Json => match value {
            Value::Object(_) => {}
            Value::String(s) => {
                if let Err(e) = serde_json::from_str::<Value>(s) {
                    out.push(Violation::new(
                        path.to_vec(),
                        format!("not a JSON document: {e}"),
                        Some("check the quotes and commas, or write the document as a mapping".into()),
                    ));
                }
            }
            _ => mismatch(out),
        },
    }
}

/// The whole number held by `v`, accepting `3.0` but not `3.5`.
pub fn integer_of(v: &Value) -> Option<i64> {
    if let Some(i) = v.as_i64() {
        return Some(i);
    }
    let f = v.as_f64()?;
    // The range check keeps the cast exact.
    (f.fract() == 0.0 && f.abs() < 9.0e15).then_some(f as i64)
}

/// Puts a value into the canonical form used for comparison: defaults
/// filled in, numbers in one representation, sets sorted and deduplicated.
pub fn normalize_value(ty: &Type, v: &Value) -> Value {
    match (ty, v) {
        (Type::Integer { .. }, v) => integer_of(v).map(Value::from).unwrap_or_else(|| v.clone()),
        (Type::Number, Value::Number(n)) => {
            // Whole numbers compare as integers so `1` and `1.0` agree.
            match n.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Value::from(f as i64),
                _ => v.clone(),
            }
        }
        (Type::List { item, set, .. }, Value::Array(items)) => {
            let mut out: Vec<Value> = items.iter().map(|i| normalize_value(item, i)).collect();
            if *set {
                out.sort_by_key(|a| a.to_string());
                out.dedup();
            }
            Value::Array(out)
        }
        (Type::Map { value, .. }, Value::Object(map)) => {
            Value::Object(map.iter().map(|(k, x)| (k.clone(), normalize_value(value, x))).collect())
        }
        (Type::Object(props), Value::Object(map)) => {
            let inner: Props = map.iter().map(|(k, x)| (k.clone(), x.clone())).collect();
            Value::Object(normalize_props(props, &inner).into_iter().collect())
        }
        (Type::Json, v) if !is_unknown(v) => canonical_json(v).unwrap_or_else(|| v.clone()),
        _ => v.clone(),
    }
}

/// The keys of a policy document whose value may be one item or a list
/// of them, with the same meaning: AWS writes a single item either way.
const ONE_OR_MANY: &[&str] = &["Action", "NotAction", "Resource", "NotResource", "AWS", "Service", "Federated"];

/// A JSON document in one canonical form, as text: parsed from text if it
/// is text, keys sorted (serde_json's maps are ordered), `Statement` always
/// a list in a set's order, and a one-element list under the keys of
/// [`ONE_OR_MANY`] or a `Condition` key (`aws:SourceArn`) written as its
/// element. `None` when the text is not JSON.
pub fn canonical_json(v: &Value) -> Option<Value> {
    fn canon(v: Value, key: Option<&str>) -> Value {
        match v {
            Value::Object(m) => Value::Object(
                m.into_iter()
                    .map(|(k, x)| {
                        let x = canon(x, Some(&k));
                        // Statements are a set, as AWS evaluates them.
                        let x = match (k.as_str(), x) {
                            ("Statement", Value::Object(o)) => Value::Array(vec![Value::Object(o)]),
                            ("Statement", Value::Array(mut s)) => {
                                s.sort_by_key(ToString::to_string);
                                Value::Array(s)
                            }
                            (_, other) => other,
                        };
                        (k, x)
                    })
                    .collect(),
            ),
            Value::Array(items) => {
                // Account ids inside an `AWS` list are principals too.
                let inner = key.filter(|k| *k == "AWS");
                let mut items: Vec<Value> = items.into_iter().map(|i| canon(i, inner)).collect();
                let single = key.is_some_and(|k| ONE_OR_MANY.contains(&k) || k.contains(':'));
                if single && items.len() == 1 {
                    return items.remove(0);
                }
                if single {
                    // Actions and resources are sets.
                    items.sort_by_key(ToString::to_string);
                }
                Value::Array(items)
            }
            // A bare account id as a principal is that account's root,
            // which is how AWS stores it.
            Value::String(s) if key == Some("AWS") && s.len() == 12 && s.chars().all(|c| c.is_ascii_digit()) => {
                Value::String(format!("arn:aws:iam::{s}:root"))
            }
            other => other,
        }
    }
    let doc = match v {
        Value::String(s) => serde_json::from_str::<Value>(s).ok()?,
        other => other.clone(),
    };
    Some(Value::String(canon(doc, None).to_string()))
}

/// Turns quoted scalars into the type a property declares, as Pulumi
/// does: `'2'` is an integer where an integer is expected, `'true'` a
/// boolean. Anything that does not parse is left for validation to report.
pub fn coerce_value(ty: &Type, v: &Value) -> Value {
    match (ty, v) {
        (_, Value::String(s)) if is_unknown(v) => Value::String(s.clone()),
        (Type::Integer { .. }, Value::String(s)) => {
            s.trim().parse::<i64>().map(Value::from).unwrap_or_else(|_| v.clone())
        }
        (Type::Number, Value::String(s)) => s
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .unwrap_or_else(|| v.clone()),
        (Type::Bool, Value::String(s)) => match s.trim() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => v.clone(),
        },
        (Type::List { item, .. }, Value::Array(items)) => {
            Value::Array(items.iter().map(|i| coerce_value(item, i)).collect())
        }
        (Type::Map { value, .. }, Value::Object(map)) => {
            Value::Object(map.iter().map(|(k, x)| (k.clone(), coerce_value(value, x))).collect())
        }
        (Type::Object(props), Value::Object(map)) => Value::Object(
            map.iter()
                .map(|(k, x)| {
                    let c = props.iter().find(|p| p.name == k).map_or_else(|| x.clone(), |p| coerce_value(&p.ty, x));
                    (k.clone(), c)
                })
                .collect(),
        ),
        // A document written as a mapping is sent as its JSON text.
        (Type::Json, Value::Object(_) | Value::Array(_)) if !is_unknown(v) => Value::String(v.to_string()),
        _ => v.clone(),
    }
}

/// [`coerce_value`] for every property a resource sets.
pub fn coerce_props(properties: &[Property], props: &mut Map<String, Value>) {
    for (k, v) in props.iter_mut() {
        if let Some(p) = properties.iter().find(|p| p.name == k) {
            *v = coerce_value(&p.ty, v);
        }
    }
}

/// Normalises every property and fills in defaults for absent ones, so that
/// "not set" and "set to the default" compare equal.
pub fn normalize_props(properties: &[Property], props: &Props) -> Props {
    let mut out = Props::new();
    for prop in properties {
        match props.get(prop.name) {
            Some(v) if !v.is_null() => {
                out.insert(prop.name.to_string(), normalize_value(&prop.ty, v));
            }
            _ => {
                if let Some(d) = &prop.default {
                    out.insert(prop.name.to_string(), normalize_value(&prop.ty, d));
                }
            }
        }
    }
    // Keep unknown keys too, so nothing is silently dropped from a diff.
    for (k, v) in props {
        out.entry(k.clone()).or_insert_with(|| v.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quoted_scalars_coerce_to_the_declared_type() {
        let int = Type::Integer { min: None, max: None };
        assert_eq!(coerce_value(&int, &json!("2")), json!(2));
        assert_eq!(coerce_value(&int, &json!("two")), json!("two"), "left for validation");
        assert_eq!(coerce_value(&Type::Number, &json!("1.5")), json!(1.5));
        assert_eq!(coerce_value(&Type::Bool, &json!("true")), json!(true));
        assert_eq!(coerce_value(&Type::String, &json!("2")), json!("2"));
        let list = Type::List { item: Box::new(int.clone()), set: false, max_items: None };
        assert_eq!(coerce_value(&list, &json!(["1", 2])), json!([1, 2]));
        assert_eq!(coerce_value(&int, &unknown()), unknown(), "an unknown stays unknown");
    }

    #[test]
    fn numbers_and_sets_normalise() {
        let set = Type::List { item: Box::new(Type::String), set: true, max_items: None };
        assert_eq!(normalize_value(&Type::Number, &json!(1.0)), normalize_value(&Type::Number, &json!(1)));
        assert_eq!(normalize_value(&set, &json!(["b", "a", "b"])), json!(["a", "b"]));
        let list = Type::List { item: Box::new(Type::String), set: false, max_items: None };
        assert_eq!(normalize_value(&list, &json!(["b", "a"])), json!(["b", "a"]));
    }

    #[test]
    fn defaults_fill_absent_properties() {
        let props = vec![Property::new("retention", Type::Integer { min: None, max: None }, "").default(json!(24))];
        let n = normalize_props(&props, &Props::new());
        assert_eq!(n.get("retention"), Some(&json!(24)));
    }

    #[test]
    fn policy_documents_compare_as_json() {
        let a = json!(
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":["sqs:SendMessage"],"Resource":"*"}}"#
        );
        let b = json!({"Statement": [{"Resource": ["*"], "Action": "sqs:SendMessage", "Effect": "Allow"}], "Version": "2012-10-17"});
        assert_eq!(normalize_value(&Type::Json, &a), normalize_value(&Type::Json, &b));
        let c = json!({"Statement": [{"Action": ["b", "a"]}]});
        let d = json!({"Statement": [{"Action": ["a", "b"]}]});
        assert_eq!(normalize_value(&Type::Json, &c), normalize_value(&Type::Json, &d), "actions are a set");
        let e = json!({"Statement": [{"Action": "a"}, {"Action": "b"}]});
        let f = json!({"Statement": [{"Action": "b"}, {"Action": "a"}]});
        assert_eq!(normalize_value(&Type::Json, &e), normalize_value(&Type::Json, &f), "statements are a set");
        let g = json!({"Statement": [{"Principal": {"AWS": "123456789012"}}]});
        let h = json!({"Statement": [{"Principal": {"AWS": ["arn:aws:iam::123456789012:root"]}}]});
        assert_eq!(normalize_value(&Type::Json, &g), normalize_value(&Type::Json, &h), "an account is its root");
        let i = json!({"Statement": [{"Effect": "Allow", "Action": "a"}]});
        let j = json!({"Statement": [{"Effect": "Deny", "Action": "a"}]});
        assert_ne!(normalize_value(&Type::Json, &i), normalize_value(&Type::Json, &j));
        let mut bad = Vec::new();
        validate_value(&Type::Json, &json!("{not json"), &[], &mut bad);
        assert_eq!(bad.len(), 1);
    }

    #[test]
    fn typos_are_suggested() {
        assert_eq!(did_you_mean("shardCont", ["shardCount", "name"]), Some("shardCount"));
        assert_eq!(did_you_mean("zzzz", ["shardCount", "name"]), None);
    }

    #[test]
    fn integers_are_range_checked() {
        let mut out = Vec::new();
        validate_value(&Type::Integer { min: Some(24), max: Some(8760) }, &json!(23), &[], &mut out);
        assert_eq!(out.len(), 1);
        assert!(out[0].message.contains("23"));
        out.clear();
        validate_value(&Type::Integer { min: Some(1), max: None }, &json!(1.5), &[], &mut out);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn unknowns_are_not_checked_but_interpolated_text_is() {
        let mut out = Vec::new();
        validate_value(&Type::Integer { min: None, max: None }, &unknown(), &[], &mut out);
        assert!(out.is_empty());
        let text = Value::String(format!("x{UNKNOWN_MARKER}"));
        validate_value(&Type::Integer { min: None, max: None }, &text, &[], &mut out);
        assert_eq!(out.len(), 1);
    }
}
