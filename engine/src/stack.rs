//! The stack language: Pulumi YAML syntax, decoded and checked.
//!
//! [`load`] turns file bytes into a [`Stack`] whose every reference resolves,
//! whose dependency graph is acyclic, and whose property values fit their
//! resource schemas as far as they can be known before apply. Every problem
//! is collected as a located [`Diagnostic`]; nothing here touches the cloud.

use crate::diag::{Diagnostic, Diagnostics, Span};
use crate::expr::{Expr, Ref, parse_expr};
use crate::yaml::{Key, Kind, Node, parse_bytes};
use rinfra_provider::schema::{PathSeg, did_you_mean, unknown, validate_props};
use rinfra_provider::{Props, Registry};
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

/// A resource declaration.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceDecl {
    /// Its name in the program, which references use.
    pub name: String,
    /// Its logical name, as Pulumi's URN and auto-naming use it: the
    /// resource's `name:`, or else its key.
    pub logical: String,
    /// Where the name is.
    pub name_span: Span,
    /// For a resource read with `get:`, the id to read: it is never
    /// created, changed or deleted.
    pub get: Option<Expr>,
    /// The values its provider gives it unless its properties set them
    /// (an explicit provider's `region` and default `tags`).
    pub provider_defaults: Props,
    /// The type token.
    pub type_: String,
    /// Its properties, as expressions.
    pub properties: Expr,
    /// Its options.
    pub options: Options,
    /// The resources it depends on, through references (also via
    /// variables) and `dependsOn`.
    pub dependencies: BTreeSet<String>,
}

/// A checked stack.
#[derive(Debug, Clone, PartialEq)]
pub struct Stack {
    /// The stack's name.
    pub name: String,
    /// Its description.
    pub description: Option<String>,
    /// Config values after defaults and `--config` overrides.
    pub config: BTreeMap<String, Value>,
    /// The text of every secret config value, to mask wherever it appears.
    pub secrets: Vec<String>,
    /// Variables, as expressions.
    pub variables: BTreeMap<String, Expr>,
    /// Resources by logical name.
    pub resources: BTreeMap<String, ResourceDecl>,
    /// Outputs, as expressions.
    pub outputs: BTreeMap<String, Expr>,
    /// Resource names in an order where every resource follows its
    /// dependencies.
    pub order: Vec<String>,
    /// The program's directory, which `fn::readFile` paths are relative to.
    pub base_dir: std::path::PathBuf,
    /// Explicit providers, by resource name.
    pub providers: BTreeMap<String, ProviderDecl>,
    /// Things worth saying that do not stop the run, such as options
    /// accepted and ignored.
    pub notes: Vec<Diagnostic>,
    /// The results of provider functions called so far in this run.
    pub invokes: crate::expr::InvokeResults,
    /// The attributes of the resources read with `get`, by name, once read.
    pub reads: crate::expr::InvokeResults,
}

impl Stack {
    /// Every provider function call of the program, calls inside
    /// arguments first.
    pub fn invoke_calls(&self) -> Vec<&crate::expr::Invoke> {
        let mut out = Vec::new();
        let exprs = self
            .resources
            .values()
            .flat_map(|r| std::iter::once(&r.properties).chain(r.get.iter()))
            .chain(self.variables.values())
            .chain(self.outputs.values());
        for e in exprs {
            e.collect_invokes(&mut out);
        }
        out
    }

    /// Whether the program calls any provider function.
    pub fn has_invokes(&self) -> bool {
        !self.invoke_calls().is_empty()
    }

    /// Whether a resource marks outputs secret with
    /// `additionalSecretOutputs`, so the stack needs its secrets key.
    pub fn declares_secret_outputs(&self) -> bool {
        self.resources.values().any(|r| !r.options.additional_secret_outputs.is_empty())
    }

    /// The outputs each resource marks secret, by resource.
    pub fn secret_outputs(&self) -> BTreeMap<String, Vec<String>> {
        self.resources
            .iter()
            .filter(|(_, r)| !r.options.additional_secret_outputs.is_empty())
            .map(|(k, r)| (k.clone(), r.options.additional_secret_outputs.iter().map(|(o, _)| o.clone()).collect()))
            .collect()
    }

    /// Reads `path` from a resource read with `get`: `None` when it is not
    /// such a resource, unknown until it has been read.
    pub fn read_attribute(&self, res: &str, path: &[String]) -> Option<Value> {
        self.resources.get(res)?.get.as_ref()?;
        let Some(attrs) = self.reads.get(res) else { return Some(unknown()) };
        let (first, rest) = path.split_first()?;
        let mut v = attrs.get(first).cloned().unwrap_or(Value::Null);
        for p in rest {
            v = crate::expr::step(&v, p)?;
        }
        Some(v)
    }

    /// The context to evaluate this stack's expressions in, with resource
    /// attributes from `resource`.
    pub fn context<'a>(&'a self, resource: &'a crate::expr::ResourceLookup<'a>) -> crate::expr::EvalContext<'a> {
        crate::expr::EvalContext {
            config: &self.config,
            variables: &self.variables,
            resource,
            base_dir: &self.base_dir,
            invokes: &self.invokes,
        }
    }
}

const TOP_KEYS: &[&str] = &[
    "name",
    "description",
    "runtime",
    "config",
    "configuration",
    "variables",
    "resources",
    "outputs",
    "backend",
    "template",
    "main",
    "stackConfigDir",
    "options",
    "plugins",
];

/// A type token in Pulumi's canonical form: `aws:kinesis:Stream` becomes
/// `aws:kinesis/stream:Stream`.
pub fn canonical_token(token: &str) -> String {
    let parts: Vec<&str> = token.split(':').collect();
    if let [pkg, module, name] = parts.as_slice() {
        if !module.contains('/') {
            return format!("{pkg}:{module}/{}:{name}", lower_first(name));
        }
    }
    token.to_string()
}

/// `MetricAlarm` as the member of a canonical token spells it: `metricAlarm`.
fn lower_first(name: &str) -> String {
    let mut chars = name.chars();
    chars.next().map(|c| c.to_lowercase().chain(chars).collect()).unwrap_or_default()
}

/// A type token in its short form. Pulumi writes each type two ways:
/// `aws:kinesis:Stream`, and the canonical `aws:kinesis/stream:Stream`
/// (the module, then the type's name with a lower-case first letter).
pub fn short_token(token: &str) -> String {
    let parts: Vec<&str> = token.split(':').collect();
    if let [pkg, module, name] = parts.as_slice() {
        if let Some((module, member)) = module.split_once('/') {
            if member == lower_first(name) {
                return format!("{pkg}:{module}:{name}");
            }
        }
    }
    token.to_string()
}
const RESOURCE_KEYS: &[&str] = &["type", "name", "properties", "options", "get", "defaultProvider"];
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

/// The token prefix of explicit provider resources.
const PROVIDER_PREFIX: &str = "pulumi:providers:";
const CONFIG_KEYS: &[&str] = &["type", "default", "value", "description", "secret", "items"];

/// Collects diagnostics while decoding.
#[derive(Default)]
struct Checker {
    diags: Vec<Diagnostic>,
    /// Remarks that do not fail the load.
    notes: Vec<Diagnostic>,
}

impl Checker {
    fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    fn unknown_key(&mut self, key: &Key, known: &[&str], what: &str) {
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

    fn expect_map<'n>(&mut self, node: &'n Node, what: &str) -> Option<&'n [(Key, Node)]> {
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

    fn expect_str(&mut self, node: &Node, what: &str) -> Option<String> {
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

    fn expect_bool(&mut self, node: &Node, what: &str) -> bool {
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

fn valid_ident(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

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

/// Why a program could not be loaded with its config.
#[derive(Debug)]
pub struct LoadFailure {
    /// Problems in the program, located in it.
    pub program: Diagnostics,
    /// Problems in the stack's config file, located in that file.
    pub config: Diagnostics,
}

/// Decodes and checks a stack file.
///
/// `overrides` are `--config key=value` pairs. The registry is used for its
/// schemas only; no provider is called.
pub fn load(bytes: &[u8], overrides: &BTreeMap<String, String>, registry: &Registry) -> Result<Stack, Diagnostics> {
    let values = overrides
        .iter()
        .map(|(k, v)| (k.clone(), Supplied { value: Value::String(v.clone()), origin: Origin::Flag, secret: false }))
        .collect();
    load_with(bytes, &ConfigInputs { values, namespace: None, base_dir: None, stack: None }, registry)
        .map_err(|f| f.program)
}

/// Decodes and checks a program with the config values of one stack.
pub fn load_with(bytes: &[u8], inputs: &ConfigInputs, registry: &Registry) -> Result<Stack, LoadFailure> {
    let mut config_diags = Vec::new();
    let fail = |d: Vec<Diagnostic>, c: Vec<Diagnostic>| LoadFailure { program: Diagnostics(d), config: Diagnostics(c) };
    let root = parse_bytes(bytes).map_err(|d| fail(vec![d], Vec::new()))?;
    let source = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = source.lines().collect();
    let mut ck = Checker::default();
    let Some(top) = ck.expect_map(&root, "a stack file") else {
        return Err(fail(ck.diags, Vec::new()));
    };

    let mut name = None;
    let mut description = None;
    let mut config_decls: BTreeMap<String, ConfigDecl> = BTreeMap::new();
    let mut broken_config: BTreeSet<String> = BTreeSet::new();
    let mut variables: BTreeMap<String, (Span, Expr)> = BTreeMap::new();
    let mut resources: BTreeMap<String, ResourceDecl> = BTreeMap::new();
    let mut outputs: BTreeMap<String, (Span, Expr)> = BTreeMap::new();
    let mut provider_nodes: Vec<(&Key, &Node)> = Vec::new();
    // Resources declared with a mistake already reported: references to
    // them are not a second mistake.
    let mut broken_resources: BTreeSet<String> = BTreeSet::new();

    for (key, value) in top {
        match key.text.as_str() {
            "name" => {
                name = ck.expect_str(value, "`name`");
                if let Some(n) = &name {
                    if !valid_ident(n) {
                        ck.push(
                            Diagnostic::new(format!("`{n}` is not a valid stack name"))
                                .at(value.span, "invalid name")
                                .with_hint("use letters, digits, `_` and `-`, starting with a letter"),
                        );
                    }
                }
            }
            "description" => description = ck.expect_str(value, "`description`"),
            "backend" => {
                // Where the states live; the command line reads it.
                if let Some(m) = ck.expect_map(value, "`backend`") {
                    for (bk, bv) in m {
                        match bk.text.as_str() {
                            "url" => {
                                if let Some(url) = ck.expect_str(bv, "`backend.url`") {
                                    if !url.starts_with("s3://") {
                                        ck.push(
                                            Diagnostic::new(format!("backend `{url}` is not supported"))
                                                .at(bv.span, "not an s3:// URL")
                                                .with_hint(
                                                    "use `s3://BUCKET/PREFIX`, or remove `backend:` for local state",
                                                ),
                                        );
                                    }
                                }
                            }
                            _ => ck.unknown_key(bk, &["url"], "`backend`"),
                        }
                    }
                }
            }
            // A project template's prompts matter only to `pulumi new`.
            "template" => {}
            "runtime" => {
                // Accepted for Pulumi compatibility; rinfra is the runtime.
                // Pulumi also writes it as `{name: yaml, options: …}`.
                let name = match value.as_map() {
                    Some(m) => match m.iter().find(|(k, _)| k.text == "name") {
                        Some((_, n)) => ck.expect_str(n, "`runtime.name`"),
                        None => {
                            ck.push(
                                Diagnostic::new("`runtime` has no `name`")
                                    .at(value.span, "name missing")
                                    .with_hint("write `runtime: yaml`"),
                            );
                            None
                        }
                    },
                    None => ck.expect_str(value, "`runtime`"),
                };
                if let Some(r) = name {
                    if r != "yaml" {
                        ck.push(
                            Diagnostic::new(format!("runtime `{r}` is not supported"))
                                .at(value.span, "only `yaml` is supported")
                                .with_hint("use `runtime: yaml` or remove the line"),
                        );
                    }
                }
            }
            // `configuration:` is the older spelling of `config:`.
            "config" | "configuration" => decode_config(&mut ck, value, &mut config_decls, &mut broken_config),
            // The project's program directory; the project loader reads it.
            "main" => {
                ck.expect_str(value, "`main`");
            }
            // Project options (`refresh: always`) and plugin sources matter
            // to the Pulumi CLI only.
            "options" | "plugins" => ck.notes.push(
                Diagnostic::new(format!("`{}` is a Pulumi CLI setting; rinfra ignores it", key.text))
                    .at(key.span, "ignored"),
            ),
            "stackConfigDir" => ck.push(
                Diagnostic::new("`stackConfigDir` is not supported yet")
                    .at(key.span, "not supported")
                    .with_hint("keep the Pulumi.<stack>.yaml files beside Pulumi.yaml"),
            ),
            "variables" => {
                if let Some(m) = ck.expect_map(value, "`variables`") {
                    for (k, v) in m {
                        if !valid_ident(&k.text) {
                            ck.push(
                                Diagnostic::new(format!("`{}` is not a valid variable name", k.text))
                                    .at(k.span, "invalid name")
                                    .with_hint("use letters, digits, `_` and `-`"),
                            );
                        }
                        match parse_expr(v, &lines) {
                            Ok(e) => {
                                variables.insert(k.text.clone(), (k.span, e));
                            }
                            Err(d) => {
                                ck.diags.extend(d);
                                // Still a variable: its uses are not a second
                                // mistake to report.
                                variables.insert(k.text.clone(), (k.span, Expr::Null(v.span)));
                            }
                        }
                    }
                }
            }
            "resources" => {
                if let Some(m) = ck.expect_map(value, "`resources`") {
                    for (k, v) in m {
                        let token = v
                            .as_map()
                            .and_then(|e| e.iter().find(|(ek, _)| ek.text == "type"))
                            .and_then(|(_, t)| t.as_str());
                        if token.is_some_and(|t| t.starts_with(PROVIDER_PREFIX)) {
                            provider_nodes.push((k, v));
                        } else if let Some(r) = decode_resource(&mut ck, k, v, &lines, registry) {
                            resources.insert(k.text.clone(), r);
                        } else {
                            broken_resources.insert(k.text.clone());
                        }
                    }
                }
            }
            "outputs" => {
                if let Some(m) = ck.expect_map(value, "`outputs`") {
                    for (k, v) in m {
                        match parse_expr(v, &lines) {
                            Ok(e) => {
                                outputs.insert(k.text.clone(), (k.span, e));
                            }
                            Err(d) => ck.diags.extend(d),
                        }
                    }
                }
            }
            _ => ck.unknown_key(key, TOP_KEYS, "a stack"),
        }
    }
    // A program in `Main.yaml` has no name of its own: the project's.
    if name.is_none() && inputs.namespace.is_some() {
        name = inputs.namespace.clone();
    }
    if name.is_none() && !top.iter().any(|(k, _)| k.text == "name") {
        ck.push(
            Diagnostic::new("the stack has no `name`")
                .at(root.span.sub(0, 1), "the stack starts here")
                .with_hint("add `name: my-stack` at the top; it names the state file"),
        );
    }
    for (k, decl) in &config_decls {
        if resources.contains_key(k) {
            ck.push(
                Diagnostic::new(format!("`{k}` is declared more than once"))
                    .at(decl.span, "this config entry has the name of a resource")
                    .with_hint("give config entries and resources distinct names"),
            );
        }
    }
    for (k, (span, _)) in &variables {
        if resources.contains_key(k) || config_decls.contains_key(k) {
            ck.push(
                Diagnostic::new(format!("`{k}` is declared more than once"))
                    .at(*span, "this variable shadows a resource or config entry")
                    .with_hint("give variables, config entries and resources distinct names"),
            );
        }
    }

    // Resolve config values: defaults, then the stack's file and flags.
    let full = |k: &str| match &inputs.namespace {
        Some(ns) => format!("{ns}:{k}"),
        None => k.to_string(),
    };
    let mut config = BTreeMap::new();
    let mut supplied_secrets = Vec::new();
    for (k, decl) in &config_decls {
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
            None if !inputs.values.contains_key(k) && !broken_config.contains(k) => ck.push(
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
        if config_decls.contains_key(k) {
            continue;
        }
        let suggestion = did_you_mean(k, config_decls.keys().map(String::as_str));
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

    // `${pulumi.stack}`, `${pulumi.project}` and `${pulumi.organization}`,
    // as Pulumi YAML has them, unless the program names something `pulumi`.
    if !variables.contains_key("pulumi") && !config_decls.contains_key("pulumi") && !resources.contains_key("pulumi") {
        let program = name.clone().unwrap_or_default();
        let at = Span::point(1, 1);
        let text = |t: &str| Expr::Template(vec![crate::expr::Part::Lit(t.to_string())], at);
        let key = |k: &str| Key { text: k.to_string(), span: at };
        let entries = vec![
            (key("stack"), text(inputs.stack.as_deref().unwrap_or(&program))),
            (key("project"), text(inputs.namespace.as_deref().unwrap_or(&program))),
            // Pulumi's name for the organization of a self-managed backend.
            (key("organization"), text("organization")),
        ];
        variables.insert("pulumi".to_string(), (at, Expr::Map(entries, at)));
    }

    // Explicit providers: their settings must be known before anything is
    // created, so they may use config and variables, not resource outputs.
    let mut providers = BTreeMap::new();
    {
        let unknown_attrs = |_: &str, _: &[String]| Some(unknown());
        let plain_vars: BTreeMap<String, Expr> = variables.iter().map(|(k, (_, e))| (k.clone(), e.clone())).collect();
        let invokes = crate::expr::InvokeResults::default();
        let base_dir = inputs.base_dir.clone().unwrap_or_else(|| std::path::PathBuf::from("."));
        let ctx = crate::expr::EvalContext {
            config: &config,
            variables: &plain_vars,
            resource: &unknown_attrs,
            base_dir: &base_dir,
            invokes: &invokes,
        };
        for (k, v) in &provider_nodes {
            check_resource_name(&mut ck, k);
            if let Some(p) = decode_provider(&mut ck, k, v, &lines, &ctx, registry) {
                providers.insert(k.text.clone(), p);
            }
        }
    }
    resolve_providers(&mut ck, &providers, &mut resources);
    // Two resources with one logical name and type would share a URN.
    let mut urns: BTreeMap<(&str, &str), &str> = BTreeMap::new();
    for (k, r) in &resources {
        if let Some(first) = urns.insert((r.type_.as_str(), r.logical.as_str()), k.as_str()) {
            ck.push(
                Diagnostic::new(format!("`{first}` and `{k}` both have the logical name `{}`", r.logical))
                    .at(r.name_span, "same name and type")
                    .with_hint("give each resource of a type its own `name:`"),
            );
        }
    }

    // Check every reference, and find the dependencies of each node.
    let scope = Scope {
        config: &config_decls,
        variables: &variables,
        resources: &resources,
        registry,
        broken: &broken_resources,
    };
    let mut var_refs: BTreeMap<String, Vec<Ref>> = BTreeMap::new();
    for (k, (_, e)) in &variables {
        var_refs.insert(k.clone(), scope.check_refs(e, &mut ck));
    }
    let mut res_refs: BTreeMap<String, Vec<Ref>> = BTreeMap::new();
    for (k, r) in &resources {
        res_refs.insert(k.clone(), scope.check_refs(&r.properties, &mut ck));
        let named = r
            .options
            .depends_on
            .iter()
            .map(|(d, s)| ("dependsOn", d, s))
            .chain(r.options.parent.iter().map(|(d, s)| ("parent", d, s)))
            .chain(r.options.deleted_with.iter().map(|(d, s)| ("deletedWith", d, s)));
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
        if let Some(g) = &r.get {
            res_refs.entry(k.clone()).or_default().extend(scope.check_refs(g, &mut ck));
        }
    }
    for (_, e) in outputs.values() {
        scope.check_refs(e, &mut ck);
    }

    // Cycles: among resources and variables, through references and dependsOn.
    let cyclic = check_cycles(&mut ck, &variables, &resources, &var_refs, &res_refs);

    let mut order = Vec::new();
    if !cyclic {
        // Resource dependencies follow variables transitively.
        let deps_of = |refs: &[Ref]| -> BTreeSet<String> {
            let mut out = BTreeSet::new();
            let mut seen = BTreeSet::new();
            let mut todo: Vec<&Ref> = refs.iter().collect();
            while let Some(r) = todo.pop() {
                if resources.contains_key(&r.root) {
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
        let names: BTreeSet<String> = resources.keys().cloned().collect();
        for (k, r) in resources.iter_mut() {
            let mut deps = computed.get(k).cloned().unwrap_or_default();
            // A parent is registered before its children, as in Pulumi.
            let explicit = r.options.depends_on.iter().chain(r.options.parent.iter());
            deps.extend(explicit.map(|(d, _)| d.clone()).filter(|d| d != k && names.contains(d)));
            r.dependencies = deps;
        }
        order = crate::graph::topo_order(&resources);
    }

    let secrets = config_decls
        .iter()
        .filter(|(_, d)| d.secret)
        .filter_map(|(k, _)| config.get(k))
        .chain(supplied_secrets.iter())
        .map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .filter(|s| !s.is_empty())
        .collect();
    let mut stack = Stack {
        name: name.unwrap_or_default(),
        description,
        secrets,
        config,
        variables: variables.into_iter().map(|(k, (_, e))| (k, e)).collect(),
        resources,
        outputs: outputs.into_iter().map(|(k, (_, e))| (k, e)).collect(),
        order,
        base_dir: inputs.base_dir.clone().unwrap_or_else(|| std::path::PathBuf::from(".")),
        providers,
        notes: Vec::new(),
        invokes: crate::expr::InvokeResults::default(),
        reads: crate::expr::InvokeResults::default(),
    };

    // With references sound and no cycles, values can be checked: every
    // resource output is treated as unknown, so nothing but config and
    // literals is assumed.
    if ck.diags.is_empty() && config_diags.is_empty() {
        check_invokes(&mut ck, &stack, registry);
        check_values(&mut ck, &stack, registry);
    }
    if ck.diags.is_empty() && config_diags.is_empty() {
        let found = secret_texts(&mut ck, &stack);
        stack.secrets.extend(found);
    }
    if ck.diags.is_empty() && config_diags.is_empty() {
        stack.order.retain(|n| stack.resources.contains_key(n));
        stack.secrets.sort();
        stack.secrets.dedup();
        stack.notes = ck.notes;
        Ok(stack)
    } else {
        Err(fail(ck.diags, config_diags))
    }
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

fn decode_config(
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

fn decode_resource(
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
fn check_resource_name(ck: &mut Checker, key: &Key) {
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
fn resource_ref(s: &str) -> String {
    let inner = s.strip_prefix("${").and_then(|x| x.strip_suffix('}')).unwrap_or(s);
    inner.strip_prefix("[\"").and_then(|x| x.strip_suffix("\"]")).unwrap_or(inner).to_string()
}

/// A duration as Go writes it, as Pulumi's `customTimeouts` take them:
/// `30s`, `5m`, `1h30m`, `1.5h`.
pub fn parse_duration(text: &str) -> Option<std::time::Duration> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let n = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let value: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += value * scale;
    }
    std::time::Duration::try_from_secs_f64(total).ok()
}

fn decode_options(ck: &mut Checker, value: &Node) -> Options {
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
                    match ck.expect_str(tv, "a timeout").map(|t| (parse_duration(&t), t)) {
                        Some((Some(d), _)) if !d.is_zero() => *slot = Some(d),
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
fn resolve_providers(
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
                        let common = crate::plan::COMMON_ATTRIBUTES.iter().copied();
                        let known = schema
                            .outputs
                            .iter()
                            .copied()
                            .chain(schema.properties.iter().map(|p| p.name))
                            .chain(common.clone());
                        let is_common = crate::plan::COMMON_ATTRIBUTES.contains(&prop.as_str())
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

fn check_cycles(
    ck: &mut Checker,
    variables: &BTreeMap<String, (Span, Expr)>,
    resources: &BTreeMap<String, ResourceDecl>,
    var_refs: &BTreeMap<String, Vec<Ref>>,
    res_refs: &BTreeMap<String, Vec<Ref>>,
) -> bool {
    use petgraph::graph::DiGraph;
    let mut g: DiGraph<&str, Span> = DiGraph::new();
    let mut idx = BTreeMap::new();
    for k in variables.keys().chain(resources.keys()) {
        idx.insert(k.as_str(), g.add_node(k.as_str()));
    }
    let edges = var_refs.iter().chain(res_refs.iter());
    for (from, refs) in edges {
        for r in refs {
            if let (Some(a), Some(b)) = (idx.get(from.as_str()), idx.get(r.root.as_str())) {
                g.add_edge(*a, *b, r.span);
            }
        }
    }
    for (from, r) in resources {
        for (dep, span) in &r.options.depends_on {
            if let (Some(a), Some(b)) = (idx.get(from.as_str()), idx.get(dep.as_str())) {
                g.add_edge(*a, *b, *span);
            }
        }
    }
    let mut found = false;
    for scc in petgraph::algo::tarjan_scc(&g) {
        let self_loop = scc.len() == 1 && g.find_edge(scc[0], scc[0]).is_some();
        if scc.len() < 2 && !self_loop {
            continue;
        }
        found = true;
        let mut members: Vec<&str> = scc.iter().map(|n| g[*n]).collect();
        members.sort();
        let in_cycle: BTreeSet<_> = scc.iter().copied().collect();
        let mut spans: Vec<(Span, String)> = g
            .edge_indices()
            .filter_map(|e| {
                let (a, b) = g.edge_endpoints(e)?;
                (in_cycle.contains(&a) && in_cycle.contains(&b))
                    .then(|| (g[e], format!("`{}` depends on `{}` here", g[a], g[b])))
            })
            .collect();
        spans.sort_by_key(|(s, _)| (s.line, s.col));
        let mut d = Diagnostic::new(format!(
            "dependency cycle between {}",
            members.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", ")
        ))
        .with_hint("break the cycle: one of these must not depend on the others");
        if let Some((first, label)) = spans.first().cloned() {
            d = d.at(first, label);
        }
        for (s, l) in spans.into_iter().skip(1) {
            d = d.with_note(s, l);
        }
        ck.push(d);
    }
    found
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
fn secret_texts(ck: &mut Checker, stack: &Stack) -> Vec<String> {
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
    let ctx = stack.context(&unknown_attrs);
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
fn check_invokes(ck: &mut Checker, stack: &Stack, registry: &Registry) {
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
            stack.invokes.set_defaults(&i.function, given);
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
}

fn check_values(ck: &mut Checker, stack: &Stack, registry: &Registry) {
    // Every resource attribute is unknown at this point.
    let unknown_attrs = |_: &str, _: &[String]| Some(unknown());
    let ctx = stack.context(&unknown_attrs);
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
        crate::plan::apply_provider_defaults(&mut props, provider.schema(), registry.defaults(), &r.provider_defaults);
        // An auto-name is checked as the name it will be: the logical name
        // and seven hex digits.
        let name_key = provider.schema().name_property;
        let auto = crate::plan::is_auto_named(provider.schema()) && !props.contains_key(name_key);
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
