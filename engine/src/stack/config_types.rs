//! Config entries a program declares, the values a run supplies, and
//! their types and coercion.

use super::checker::Checker;
use crate::diag::{Diagnostic, Diagnostics, Span};
use crate::yaml::{Kind, Node, parse_bytes};
use rinfra_provider::schema::did_you_mean;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// The type of a config value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    /// Text.
    String,
    /// A whole number.
    Integer,
    /// Any number.
    Number,
    /// `true` or `false`.
    Boolean,
    /// A list of values of one scalar type, as Pulumi writes
    /// `List<String>`.
    List(Scalar),
}

/// The type of the items of a list config value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scalar {
    /// Text.
    String,
    /// A whole number.
    Integer,
    /// Any number.
    Number,
    /// `true` or `false`.
    Boolean,
}

impl Scalar {
    fn config_type(self) -> ConfigType {
        match self {
            Scalar::String => ConfigType::String,
            Scalar::Integer => ConfigType::Integer,
            Scalar::Number => ConfigType::Number,
            Scalar::Boolean => ConfigType::Boolean,
        }
    }
}

impl std::fmt::Display for ConfigType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigType::List(item) => write!(f, "List<{}>", item.config_type()),
            other => write!(f, "{other:?}"),
        }
    }
}

impl ConfigType {
    /// The type a config `type:` names, as Pulumi spells them: `String`,
    /// `Integer`, `Number`, `Boolean`, `List<String>` and the other lists,
    /// in any case; `int`, `bool` and `array` (of strings) too.
    pub fn parse(t: &str) -> Option<ConfigType> {
        let scalar = |t: &str| match t.trim().to_lowercase().as_str() {
            "string" => Some(Scalar::String),
            "integer" | "int" => Some(Scalar::Integer),
            "number" => Some(Scalar::Number),
            "boolean" | "bool" => Some(Scalar::Boolean),
            _ => None,
        };
        let lower = t.trim().to_lowercase();
        if lower == "array" {
            return Some(ConfigType::List(Scalar::String));
        }
        if let Some(inner) = lower.strip_prefix("list<").and_then(|r| r.strip_suffix('>')) {
            return scalar(inner).map(ConfigType::List);
        }
        scalar(&lower).map(Scalar::config_type)
    }

    /// The type of a literal, for the shorthand `key: value`.
    fn of_literal(kind: &Kind) -> Option<ConfigType> {
        Some(match kind {
            Kind::Str(_) => ConfigType::String,
            Kind::Int(_) => ConfigType::Integer,
            Kind::Float(_) => ConfigType::Number,
            Kind::Bool(_) => ConfigType::Boolean,
            Kind::Seq(items) => {
                let first = items.first().map_or(Some(ConfigType::String), |i| ConfigType::of_literal(&i.kind))?;
                let item = match first {
                    ConfigType::String => Scalar::String,
                    ConfigType::Integer => Scalar::Integer,
                    ConfigType::Number => Scalar::Number,
                    ConfigType::Boolean => Scalar::Boolean,
                    ConfigType::List(_) => return None,
                };
                ConfigType::List(item)
            }
            _ => return None,
        })
    }
}

/// A declared config entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigDecl {
    /// Its type.
    pub ty: ConfigType,
    /// The value used when none is given with `--config`.
    pub default: Option<Value>,
    /// Whether the value is a secret, never shown in plans or outputs.
    pub secret: bool,
    /// Where it is declared.
    pub span: Span,
}

const CONFIG_KEYS: &[&str] = &["type", "default", "value", "description", "secret", "items"];

/// A supplied config value as its declared type: Pulumi keeps config as
/// text, so `"2"` is an integer where an integer is declared. Text is read
/// as a property's quoted scalar is (`schema::coerce_value`); anything
/// that is then not of the type is refused.
fn coerce_config_value(ty: ConfigType, v: &Value) -> Option<Value> {
    use rinfra_provider::schema::{Type, coerce_value};
    if let ConfigType::List(item) = ty {
        // A list given as text is JSON, as `pulumi config set --path` and
        // `--config k='["a","b"]'` write it.
        let parsed;
        let items = match v {
            Value::Array(items) => items,
            Value::String(s) => {
                parsed = serde_json::from_str::<Value>(s).ok()?;
                parsed.as_array()?
            }
            _ => return None,
        };
        let out: Option<Vec<Value>> = items.iter().map(|i| coerce_config_value(item.config_type(), i)).collect();
        return out.map(Value::Array);
    }
    let as_schema = match ty {
        ConfigType::List(_) => return None,
        ConfigType::String => {
            return match v {
                Value::String(_) => Some(v.clone()),
                Value::Number(_) | Value::Bool(_) => Some(Value::String(v.to_string())),
                _ => None,
            };
        }
        ConfigType::Integer => Type::Integer { min: None, max: None },
        ConfigType::Number => Type::Number,
        ConfigType::Boolean => Type::Bool,
    };
    let c = coerce_value(&as_schema, v);
    match (ty, &c) {
        (ConfigType::Integer, Value::Number(n)) if n.is_i64() => Some(c),
        (ConfigType::Number, Value::Number(_)) | (ConfigType::Boolean, Value::Bool(_)) => Some(c),
        _ => None,
    }
}

/// Where a config value given for one run comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A `--config KEY=VALUE` flag.
    Flag,
    /// The stack's config file, `Pulumi.<stack>.yaml`.
    StackFile {
        /// Where its key is.
        key_span: Span,
        /// Where its value is.
        span: Span,
    },
}

/// A config value given for one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Supplied {
    /// The value, decrypted when it was a secret.
    pub value: Value,
    /// Where it comes from.
    pub origin: Origin,
    /// Whether it was stored encrypted.
    pub secret: bool,
}

impl Supplied {
    /// The values of `--config KEY=VALUE` flags, as text, keyed without
    /// the project's namespace (`project:key` and `key` are one key).
    pub fn flags(overrides: &BTreeMap<String, String>, namespace: Option<&str>) -> BTreeMap<String, Supplied> {
        overrides
            .iter()
            .map(|(k, v)| {
                let key = namespace.and_then(|ns| k.strip_prefix(ns)?.strip_prefix(':')).unwrap_or(k);
                (key.to_string(), Supplied { value: Value::String(v.clone()), origin: Origin::Flag, secret: false })
            })
            .collect()
    }
}

/// The config values a run supplies, keyed without the project's namespace.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfigInputs {
    /// The values, with `--config` flags already winning over the file.
    pub values: BTreeMap<String, Supplied>,
    /// The project's name, to write keys as the config file has them.
    pub namespace: Option<String>,
    /// The program's directory, which `fn::readFile` paths are relative to.
    pub base_dir: Option<std::path::PathBuf>,
    /// The stack's name, for `${pulumi.stack}` (a single-file program's is
    /// its own name).
    pub stack: Option<String>,
}

/// The config entries a program declares, read without their values.
pub fn declared_config(bytes: &[u8]) -> Result<BTreeMap<String, ConfigDecl>, Diagnostics> {
    let root = parse_bytes(bytes).map_err(|d| Diagnostics(vec![d]))?;
    let mut ck = Checker::default();
    let mut decls = BTreeMap::new();
    if let Some(top) = ck.expect_map(&root, "a stack file") {
        if let Some((_, v)) = top.iter().find(|(k, _)| k.text == "config") {
            decode_config(&mut ck, v, &mut decls, &mut BTreeSet::new());
        }
    }
    if ck.diags.is_empty() { Ok(decls) } else { Err(Diagnostics(ck.diags)) }
}

/// Checks `raw` as a value of type `ty`, as config values are given.
pub fn check_config_value(ty: ConfigType, raw: &str) -> bool {
    coerce_config_value(ty, &Value::String(raw.to_string())).is_some()
}

pub(super) fn decode_config(
    ck: &mut Checker,
    value: &Node,
    decls: &mut BTreeMap<String, ConfigDecl>,
    broken: &mut BTreeSet<String>,
) {
    let Some(m) = ck.expect_map(value, "`config`") else { return };
    for (k, v) in m {
        let errors_before = ck.diags.len();
        if !matches!(v.kind, Kind::Map(_)) {
            // The shorthand `key: value`: a default, of the literal's type.
            match ConfigType::of_literal(&v.kind) {
                Some(ty) => {
                    let default = decode_default(ck, &k.text, ty, v);
                    decls.insert(k.text.clone(), ConfigDecl { ty, default, secret: false, span: k.span });
                }
                None => ck.push(
                    Diagnostic::new(format!("config `{}` is {}", k.text, v.kind_name()))
                        .at(v.span, "not a config value")
                        .with_hint("write `key: value`, or `key: {type: String, default: …}`"),
                ),
            }
            continue;
        }
        let Some(entries) = ck.expect_map(v, &format!("config `{}`", k.text)) else { continue };
        let mut ty = None;
        let mut default = None;
        let mut secret = false;
        for (ek, ev) in entries {
            match ek.text.as_str() {
                "type" => {
                    if let Some(t) = ck.expect_str(ev, "a config type") {
                        ty = ConfigType::parse(&t);
                        if ty.is_none() {
                            ck.push(
                                Diagnostic::new(format!("unknown config type `{t}`"))
                                    .at(ev.span, "not a type")
                                    .with_hint("use String, Integer, Number, Boolean or List<String>"),
                            );
                        }
                    }
                }
                // Pulumi's project form lists an array's item type apart.
                "items" => {}
                "default" | "value" => default = Some(ev),
                "description" => {
                    ck.expect_str(ev, "a config description");
                }
                "secret" => secret = ck.expect_bool(ev, "`secret`"),
                _ => ck.unknown_key(ek, CONFIG_KEYS, "a config entry"),
            }
        }
        let Some(ty) = ty else {
            if !entries.iter().any(|(ek, _)| ek.text == "type") {
                ck.push(
                    Diagnostic::new(format!("config `{}` has no `type`", k.text))
                        .at(k.span, "type missing")
                        .with_hint("add `type: String` (or Integer, Number, Boolean)"),
                );
            }
            continue;
        };
        let default = default.and_then(|d| decode_default(ck, &k.text, ty, d));
        if ck.diags.len() > errors_before {
            // One mistake in an entry is enough; do not also report that
            // the entry ends up without a value.
            broken.insert(k.text.clone());
        }
        decls.insert(k.text.clone(), ConfigDecl { ty, default, secret, span: k.span });
    }
}

/// A config entry's default, which must be of its declared type.
fn decode_default(ck: &mut Checker, key: &str, ty: ConfigType, d: &Node) -> Option<Value> {
    let value = match (&d.kind, ty) {
        (Kind::Str(s), ConfigType::String) => Some(Value::String(s.clone())),
        (Kind::Int(i), ConfigType::Integer | ConfigType::Number) => Some(Value::from(*i)),
        (Kind::Float(f), ConfigType::Number) => serde_json::Number::from_f64(*f).map(Value::Number),
        (Kind::Bool(b), ConfigType::Boolean) => Some(Value::Bool(*b)),
        (Kind::Seq(_), ConfigType::List(_)) => coerce_config_value(ty, &d.to_json()),
        _ => None,
    };
    if value.is_none() {
        ck.push(
            Diagnostic::new(format!("the default of config `{key}` is {}, not {ty}", d.kind_name()))
                .at(d.span, "wrong type")
                .with_hint("make the default match the declared type"),
        );
    }
    value
}

/// The value of every declared config entry: its default, then the
/// stack's file and `--config` flags. Problems in the program go to `ck`,
/// problems in the stack's config file to `config_diags`. Returns the
/// values and those that were stored as secrets.
pub(super) fn resolve_config(
    ck: &mut Checker,
    config_diags: &mut Vec<Diagnostic>,
    decls: &BTreeMap<String, ConfigDecl>,
    broken: &BTreeSet<String>,
    inputs: &ConfigInputs,
) -> (BTreeMap<String, Value>, Vec<Value>) {
    let full = |k: &str| match &inputs.namespace {
        Some(ns) => format!("{ns}:{k}"),
        None => k.to_string(),
    };
    let mut config = BTreeMap::new();
    let mut supplied_secrets = Vec::new();
    for (k, decl) in decls {
        let v = match inputs.values.get(k) {
            Some(s) => match (coerce_config_value(decl.ty, &s.value), s.origin) {
                (Some(v), _) => {
                    if s.secret {
                        supplied_secrets.push(v.clone());
                    }
                    Some(v)
                }
                (None, Origin::Flag) => {
                    let raw = s.value.as_str().map_or_else(|| s.value.to_string(), str::to_string);
                    ck.push(
                        Diagnostic::new(format!("--config {k}={raw} is not a valid {}", decl.ty).to_lowercase())
                            .at(decl.span, "declared here")
                            .with_hint(format!("give `{k}` a value of type {}", decl.ty)),
                    );
                    None
                }
                (None, Origin::StackFile { span, .. }) => {
                    let shown = if s.secret { "a secret".to_string() } else { s.value.to_string() };
                    config_diags.push(
                        Diagnostic::new(format!(
                            "config `{}` is {shown}, not a valid {}",
                            full(k),
                            decl.ty.to_string().to_lowercase()
                        ))
                        .at(span, "wrong type")
                        .with_hint(format!("the program declares `{k}` with `type: {}`", decl.ty)),
                    );
                    None
                }
            },
            None => decl.default.clone(),
        };
        match v {
            Some(v) => {
                config.insert(k.clone(), v);
            }
            None if !inputs.values.contains_key(k) && !broken.contains(k) => ck.push(
                Diagnostic::new(format!("config `{k}` has no value"))
                    .at(decl.span, "declared without a default")
                    .with_hint(match &inputs.namespace {
                        Some(_) => format!("run `rinfra config set {k} …`, or add a `default:`"),
                        None => format!("pass `--config {k}=…` or add a `default:`"),
                    }),
            ),
            None => {}
        }
    }
    for (k, s) in &inputs.values {
        if decls.contains_key(k) {
            continue;
        }
        let suggestion = did_you_mean(k, decls.keys().map(String::as_str));
        match s.origin {
            Origin::Flag => {
                let hint = match suggestion {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => "declare it under `config:` first".to_string(),
                };
                ck.push(Diagnostic::new(format!("--config {k} is not declared by the stack")).with_hint(hint));
            }
            Origin::StackFile { key_span, .. } => {
                let hint = match suggestion {
                    Some(s) => format!("did you mean `{}`?", full(s)),
                    None => "declare it under `config:` in the program first".to_string(),
                };
                config_diags.push(
                    Diagnostic::new(format!("config `{}` is not declared by the program", full(k)))
                        .at(key_span, "not declared")
                        .with_hint(hint),
                );
            }
        }
    }
    (config, supplied_secrets)
}
