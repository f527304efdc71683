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
    /// Where each `ignoreChanges` entry is written.
    pub ignore_spans: Vec<(String, Span)>,
    /// Removing the resource from the stack only forgets it.
    pub retain_on_delete: bool,
    /// Adopt an existing resource with this cloud id instead of creating.
    pub import: Option<String>,
}

/// A resource declaration.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceDecl {
    /// Its logical name.
    pub name: String,
    /// Where the name is.
    pub name_span: Span,
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
}

impl Stack {
    /// The context to evaluate this stack's expressions in, with resource
    /// attributes from `resource`.
    pub fn context<'a>(&'a self, resource: &'a crate::expr::ResourceLookup<'a>) -> crate::expr::EvalContext<'a> {
        crate::expr::EvalContext {
            config: &self.config,
            variables: &self.variables,
            resource,
            base_dir: &self.base_dir,
        }
    }
}

const TOP_KEYS: &[&str] =
    &["name", "description", "runtime", "config", "variables", "resources", "outputs", "backend", "template"];

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
const RESOURCE_KEYS: &[&str] = &["type", "properties", "options"];
const OPTION_KEYS: &[&str] =
    &["dependsOn", "protect", "deleteBeforeReplace", "ignoreChanges", "retainOnDelete", "import"];
const CONFIG_KEYS: &[&str] = &["type", "default", "description", "secret"];

/// Collects diagnostics while decoding.
#[derive(Default)]
struct Checker {
    diags: Vec<Diagnostic>,
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
    let as_schema = match ty {
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
            "config" => decode_config(&mut ck, value, &mut config_decls, &mut broken_config),
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
                        if let Some(r) = decode_resource(&mut ck, k, v, &lines, registry) {
                            resources.insert(k.text.clone(), r);
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
                        Diagnostic::new(format!("--config {k}={raw} is not a valid {:?}", decl.ty).to_lowercase())
                            .at(decl.span, "declared here")
                            .with_hint(format!("give `{k}` a value of type {:?}", decl.ty)),
                    );
                    None
                }
                (None, Origin::StackFile { span, .. }) => {
                    let shown = if s.secret { "a secret".to_string() } else { s.value.to_string() };
                    config_diags.push(
                        Diagnostic::new(format!(
                            "config `{}` is {shown}, not a valid {}",
                            full(k),
                            format!("{:?}", decl.ty).to_lowercase()
                        ))
                        .at(span, "wrong type")
                        .with_hint(format!("the program declares `{k}` with `type: {:?}`", decl.ty)),
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

    // Check every reference, and find the dependencies of each node.
    let scope = Scope { config: &config_decls, variables: &variables, resources: &resources, registry };
    let mut var_refs: BTreeMap<String, Vec<Ref>> = BTreeMap::new();
    for (k, (_, e)) in &variables {
        var_refs.insert(k.clone(), scope.check_refs(e, &mut ck));
    }
    let mut res_refs: BTreeMap<String, Vec<Ref>> = BTreeMap::new();
    for (k, r) in &resources {
        res_refs.insert(k.clone(), scope.check_refs(&r.properties, &mut ck));
        for (dep, span) in &r.options.depends_on {
            if !resources.contains_key(dep) {
                let hint = match did_you_mean(dep, resources.keys().map(String::as_str)) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => "dependsOn lists resources of this stack".into(),
                };
                ck.push(
                    Diagnostic::new(format!("dependsOn names unknown resource `{dep}`"))
                        .at(*span, "no such resource")
                        .with_hint(hint),
                );
            }
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
        for (k, r) in resources.iter_mut() {
            let mut deps = computed.get(k).cloned().unwrap_or_default();
            deps.extend(r.options.depends_on.iter().map(|(d, _)| d.clone()).filter(|d| d != k));
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
    };

    // With references sound and no cycles, values can be checked: every
    // resource output is treated as unknown, so nothing but config and
    // literals is assumed.
    if ck.diags.is_empty() && config_diags.is_empty() {
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
        let Some(entries) = ck.expect_map(v, &format!("config `{}`", k.text)) else { continue };
        let mut ty = None;
        let mut default = None;
        let mut secret = false;
        for (ek, ev) in entries {
            match ek.text.as_str() {
                "type" => {
                    if let Some(t) = ck.expect_str(ev, "a config type") {
                        ty = match t.to_lowercase().as_str() {
                            "string" => Some(ConfigType::String),
                            "integer" | "int" => Some(ConfigType::Integer),
                            "number" => Some(ConfigType::Number),
                            "boolean" | "bool" => Some(ConfigType::Boolean),
                            _ => {
                                ck.push(
                                    Diagnostic::new(format!("unknown config type `{t}`"))
                                        .at(ev.span, "not a type")
                                        .with_hint("use String, Integer, Number or Boolean"),
                                );
                                None
                            }
                        };
                    }
                }
                "default" => default = Some(ev),
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
        let default = match default.map(|d| (d, &d.kind)) {
            None => None,
            Some((_, Kind::Str(s))) if ty == ConfigType::String => Some(Value::String(s.clone())),
            Some((_, Kind::Int(i))) if matches!(ty, ConfigType::Integer | ConfigType::Number) => Some(Value::from(*i)),
            Some((_, Kind::Float(f))) if ty == ConfigType::Number => {
                serde_json::Number::from_f64(*f).map(Value::Number)
            }
            Some((_, Kind::Bool(b))) if ty == ConfigType::Boolean => Some(Value::Bool(*b)),
            Some((d, _)) => {
                ck.push(
                    Diagnostic::new(format!("the default of config `{}` is {}, not {:?}", k.text, d.kind_name(), ty))
                        .at(d.span, "wrong type")
                        .with_hint("make the default match the declared type"),
                );
                None
            }
        };
        if ck.diags.len() > errors_before {
            // One mistake in an entry is enough; do not also report that
            // the entry ends up without a value.
            broken.insert(k.text.clone());
        }
        decls.insert(k.text.clone(), ConfigDecl { ty, default, secret, span: k.span });
    }
}

fn decode_resource(
    ck: &mut Checker,
    key: &Key,
    value: &Node,
    lines: &[&str],
    registry: &Registry,
) -> Option<ResourceDecl> {
    if !valid_ident(&key.text) {
        ck.push(
            Diagnostic::new(format!("`{}` is not a valid resource name", key.text))
                .at(key.span, "invalid name")
                .with_hint(
                    "use letters, digits, `_` and `-`, starting with a letter; `.` would break `${name.property}`",
                ),
        );
    }
    let entries = ck.expect_map(value, &format!("resource `{}`", key.text))?;
    let mut type_ = None;
    let mut properties = None;
    let mut options = Options::default();
    for (k, v) in entries {
        match k.text.as_str() {
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
                if ck.expect_map(v, "`properties`").is_some() {
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
    let properties = properties.unwrap_or(Expr::Map(Vec::new(), value.span));
    Some(ResourceDecl {
        name: key.text.clone(),
        name_span: key.span,
        type_: type_?,
        properties,
        options,
        dependencies: BTreeSet::new(),
    })
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
                            let name = s.strip_prefix("${").and_then(|x| x.strip_suffix('}')).unwrap_or(&s).to_string();
                            o.depends_on.push((name, item.span));
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
            "ignoreChanges" => match &v.kind {
                Kind::Seq(items) => {
                    for item in items {
                        if let Some(s) = ck.expect_str(item, "an ignoreChanges entry") {
                            o.ignore_spans.push((s.clone(), item.span));
                            o.ignore_changes.insert(s);
                        }
                    }
                }
                _ => ck.push(
                    Diagnostic::new("`ignoreChanges` must be a list of property names").at(v.span, "expected a list"),
                ),
            },
            _ => ck.unknown_key(k, OPTION_KEYS, "resource options"),
        }
    }
    o
}

struct Scope<'a> {
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
                        let known = schema.outputs.iter().copied().chain(schema.properties.iter().map(|p| p.name));
                        if !schema.outputs.contains(&prop.as_str()) && schema.property(prop).is_none() {
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
            } else if self.variables.contains_key(&r.root) || self.config.contains_key(&r.root) {
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

fn check_values(ck: &mut Checker, stack: &Stack, registry: &Registry) {
    // Every resource attribute is unknown at this point.
    let unknown_attrs = |_: &str, _: &[String]| Some(unknown());
    let ctx = stack.context(&unknown_attrs);
    for r in stack.resources.values() {
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
            let span = if v.path.is_empty() { r.name_span } else { locate(&r.properties, &v.path, v.at_key) };
            let mut d =
                Diagnostic::new(format!("{} (resource `{}`, {})", v.message, r.name, r.type_)).at(span, label_for(&v));
            if let Some(h) = v.hint {
                d = d.with_hint(h);
            }
            ck.push(d);
        }
        for (p, span) in &r.options.ignore_spans {
            if provider.schema().property(p).is_none() {
                let hint = match did_you_mean(p, provider.schema().properties.iter().map(|p| p.name)) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => "list property names of this resource".into(),
                };
                ck.push(
                    Diagnostic::new(format!("ignoreChanges names unknown property `{p}` of `{}`", r.name))
                        .at(*span, "no such property")
                        .with_hint(hint),
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
