//! The stack language: Pulumi YAML syntax, decoded and checked.
//!
//! [`load`] turns file bytes into a [`Stack`] whose every reference resolves,
//! whose dependency graph is acyclic, and whose property values fit their
//! resource schemas as far as they can be known before apply. Every problem
//! is collected as a located [`Diagnostic`]; nothing here touches the cloud.

mod checker;
mod checks;
mod config_types;
mod options;
mod providers;
mod resource;
mod tokens;

pub use config_types::{
    ConfigDecl, ConfigInputs, ConfigType, Origin, Scalar, Supplied, check_config_value, declared_config,
};
pub use options::{CustomTimeouts, Options};
pub use providers::ProviderDecl;
pub use tokens::{canonical_token, short_token};

use crate::diag::{Diagnostic, Diagnostics, Span};
use crate::expr::{Expr, parse_expr};
use crate::yaml::{Key, Node, parse_bytes};
use checker::{Checker, valid_ident};
use rinfra_provider::schema::unknown;
use rinfra_provider::{Props, Registry};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

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
    /// The arguments each provider function gets unless a call gives
    /// them: those of the package's default provider, by function token.
    pub invoke_defaults: BTreeMap<String, serde_json::Map<String, Value>>,
}

/// What a run learns beyond its program: the results of provider functions
/// and the attributes of the resources read with `get`. The session owns
/// it and the resolve step fills it in; the [`Stack`] stays the program's
/// inert, checked value, equal to itself whatever the run has read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resolved {
    /// The results of provider functions called so far.
    pub invokes: crate::expr::InvokeResults,
    /// The attributes of the resources read with `get`, by name, once read.
    pub reads: BTreeMap<String, Props>,
}

impl Resolved {
    /// Nothing read yet for `stack`.
    pub fn new(stack: &Stack) -> Self {
        Resolved {
            invokes: crate::expr::InvokeResults::with_defaults(stack.invoke_defaults.clone()),
            reads: BTreeMap::new(),
        }
    }
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
    pub fn read_attribute(&self, resolved: &Resolved, res: &str, path: &[String]) -> Option<Value> {
        self.resources.get(res)?.get.as_ref()?;
        let Some(attrs) = resolved.reads.get(res) else { return Some(unknown()) };
        let (first, rest) = path.split_first()?;
        let mut v = attrs.get(first).cloned().unwrap_or(Value::Null);
        for p in rest {
            v = crate::expr::step(&v, p)?;
        }
        Some(v)
    }

    /// The context to evaluate this stack's expressions in, with resource
    /// attributes from `resource` and function results from `resolved`.
    pub fn context<'a>(
        &'a self,
        resolved: &'a Resolved,
        resource: &'a crate::expr::ResourceLookup<'a>,
    ) -> crate::expr::EvalContext<'a> {
        crate::expr::EvalContext {
            config: &self.config,
            variables: &self.variables,
            resource,
            base_dir: &self.base_dir,
            invokes: &resolved.invokes,
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
    let values = Supplied::flags(overrides, None);
    load_with(bytes, &ConfigInputs { values, namespace: None, base_dir: None, stack: None }, registry)
        .map_err(|f| f.program)
}

/// What the top level of a program declares, before config values,
/// providers and references are resolved.
#[derive(Default)]
struct Decoded<'n> {
    name: Option<String>,
    description: Option<String>,
    config_decls: BTreeMap<String, ConfigDecl>,
    /// Config entries declared with a mistake already reported: that they
    /// end up without a value is not a second mistake.
    broken_config: BTreeSet<String>,
    variables: BTreeMap<String, (Span, Expr)>,
    resources: BTreeMap<String, ResourceDecl>,
    outputs: BTreeMap<String, (Span, Expr)>,
    provider_nodes: Vec<(&'n Key, &'n Node)>,
    /// Resources declared with a mistake already reported: references to
    /// them are not a second mistake.
    broken_resources: BTreeSet<String>,
}

/// Decodes and checks a program with the config values of one stack.
pub fn load_with(bytes: &[u8], inputs: &ConfigInputs, registry: &Registry) -> Result<Stack, LoadFailure> {
    let fail = |d: Vec<Diagnostic>, c: Vec<Diagnostic>| LoadFailure { program: Diagnostics(d), config: Diagnostics(c) };
    let root = parse_bytes(bytes).map_err(|d| fail(vec![d], Vec::new()))?;
    let source = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = source.lines().collect();
    let mut ck = Checker::default();
    let Some(top) = ck.expect_map(&root, "a stack file") else {
        return Err(fail(ck.diags, Vec::new()));
    };
    let mut d = decode_top(&mut ck, top, &lines, registry);
    // A program in `Main.yaml` has no name of its own: the project's.
    if d.name.is_none() && inputs.namespace.is_some() {
        d.name = inputs.namespace.clone();
    }
    if d.name.is_none() && !top.iter().any(|(k, _)| k.text == "name") {
        ck.push(
            Diagnostic::new("the stack has no `name`")
                .at(root.span.sub(0, 1), "the stack starts here")
                .with_hint("add `name: my-stack` at the top; it names the state file"),
        );
    }
    check_distinct_names(&mut ck, &d);
    let mut config_diags = Vec::new();
    let (config, supplied_secrets) =
        config_types::resolve_config(&mut ck, &mut config_diags, &d.config_decls, &d.broken_config, inputs);
    add_pulumi_variable(&mut d, inputs);
    // Explicit providers: their settings must be known before anything is
    // created, so they may use config and variables, not resource outputs.
    let base_dir = inputs.base_dir.clone().unwrap_or_else(|| std::path::PathBuf::from("."));
    let providers =
        providers::decode_providers(&mut ck, &d.provider_nodes, &config, &d.variables, &base_dir, &lines, registry);
    providers::resolve_providers(&mut ck, &providers, &mut d.resources);
    check_urns(&mut ck, &d.resources);
    let order = checks::check_graph(&mut ck, &mut d, registry);

    let secrets = d
        .config_decls
        .iter()
        .filter(|(_, decl)| decl.secret)
        .filter_map(|(k, _)| config.get(k))
        .chain(supplied_secrets.iter())
        .map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .filter(|s| !s.is_empty())
        .collect();
    let mut stack = Stack {
        name: d.name.unwrap_or_default(),
        description: d.description,
        secrets,
        config,
        variables: d.variables.into_iter().map(|(k, (_, e))| (k, e)).collect(),
        resources: d.resources,
        outputs: d.outputs.into_iter().map(|(k, (_, e))| (k, e)).collect(),
        order,
        base_dir,
        providers,
        notes: Vec::new(),
        invoke_defaults: BTreeMap::new(),
    };

    // With references sound and no cycles, values can be checked: every
    // resource output is treated as unknown, so nothing but config and
    // literals is assumed.
    if ck.diags.is_empty() && config_diags.is_empty() {
        stack.invoke_defaults = checks::check_invokes(&mut ck, &stack, registry);
        checks::check_values(&mut ck, &stack, registry);
    }
    if ck.diags.is_empty() && config_diags.is_empty() {
        let found = checks::secret_texts(&mut ck, &stack);
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

/// Decodes the top-level keys of a program.
fn decode_top<'n>(ck: &mut Checker, top: &'n [(Key, Node)], lines: &[&str], registry: &Registry) -> Decoded<'n> {
    let mut d = Decoded::default();
    for (key, value) in top {
        match key.text.as_str() {
            "name" => d.name = decode_name(ck, value),
            "description" => d.description = ck.expect_str(value, "`description`"),
            "backend" => decode_backend(ck, value),
            // A project template's prompts matter only to `pulumi new`.
            "template" => {}
            "runtime" => decode_runtime(ck, value),
            // `configuration:` is the older spelling of `config:`.
            "config" | "configuration" => {
                config_types::decode_config(ck, value, &mut d.config_decls, &mut d.broken_config)
            }
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
            "variables" => decode_variables(ck, value, lines, &mut d.variables),
            "resources" => {
                if let Some(m) = ck.expect_map(value, "`resources`") {
                    for (k, v) in m {
                        let token = v
                            .as_map()
                            .and_then(|e| e.iter().find(|(ek, _)| ek.text == "type"))
                            .and_then(|(_, t)| t.as_str());
                        if token.is_some_and(|t| t.starts_with(providers::PROVIDER_PREFIX)) {
                            d.provider_nodes.push((k, v));
                        } else if let Some(r) = resource::decode_resource(ck, k, v, lines, registry) {
                            d.resources.insert(k.text.clone(), r);
                        } else {
                            d.broken_resources.insert(k.text.clone());
                        }
                    }
                }
            }
            "outputs" => {
                if let Some(m) = ck.expect_map(value, "`outputs`") {
                    for (k, v) in m {
                        match parse_expr(v, lines) {
                            Ok(e) => {
                                d.outputs.insert(k.text.clone(), (k.span, e));
                            }
                            Err(diags) => ck.diags.extend(diags),
                        }
                    }
                }
            }
            _ => ck.unknown_key(key, TOP_KEYS, "a stack"),
        }
    }
    d
}

/// The program's `name:`.
fn decode_name(ck: &mut Checker, value: &Node) -> Option<String> {
    let name = ck.expect_str(value, "`name`");
    if let Some(n) = &name {
        if !valid_ident(n) {
            ck.push(
                Diagnostic::new(format!("`{n}` is not a valid stack name"))
                    .at(value.span, "invalid name")
                    .with_hint("use letters, digits, `_` and `-`, starting with a letter"),
            );
        }
    }
    name
}

/// `backend:`, where the states live; the command line reads it, and this
/// only checks its shape.
fn decode_backend(ck: &mut Checker, value: &Node) {
    let Some(m) = ck.expect_map(value, "`backend`") else { return };
    for (bk, bv) in m {
        match bk.text.as_str() {
            "url" => {
                if let Some(url) = ck.expect_str(bv, "`backend.url`") {
                    if !url.starts_with("s3://") {
                        ck.push(
                            Diagnostic::new(format!("backend `{url}` is not supported"))
                                .at(bv.span, "not an s3:// URL")
                                .with_hint("use `s3://BUCKET/PREFIX`, or remove `backend:` for local state"),
                        );
                    }
                }
            }
            _ => ck.unknown_key(bk, &["url"], "`backend`"),
        }
    }
}

/// `runtime:`, accepted for Pulumi compatibility; rinfra is the runtime.
/// Pulumi also writes it as `{name: yaml, options: …}`.
fn decode_runtime(ck: &mut Checker, value: &Node) {
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

/// `variables:`, each parsed as an expression.
fn decode_variables(ck: &mut Checker, value: &Node, lines: &[&str], out: &mut BTreeMap<String, (Span, Expr)>) {
    let Some(m) = ck.expect_map(value, "`variables`") else { return };
    for (k, v) in m {
        if !valid_ident(&k.text) {
            ck.push(
                Diagnostic::new(format!("`{}` is not a valid variable name", k.text))
                    .at(k.span, "invalid name")
                    .with_hint("use letters, digits, `_` and `-`"),
            );
        }
        match parse_expr(v, lines) {
            Ok(e) => {
                out.insert(k.text.clone(), (k.span, e));
            }
            Err(d) => {
                ck.diags.extend(d);
                // Still a variable: its uses are not a second mistake to
                // report.
                out.insert(k.text.clone(), (k.span, Expr::Null(v.span)));
            }
        }
    }
}

/// Config entries, variables and resources share one namespace.
fn check_distinct_names(ck: &mut Checker, d: &Decoded<'_>) {
    for (k, decl) in &d.config_decls {
        if d.resources.contains_key(k) {
            ck.push(
                Diagnostic::new(format!("`{k}` is declared more than once"))
                    .at(decl.span, "this config entry has the name of a resource")
                    .with_hint("give config entries and resources distinct names"),
            );
        }
    }
    for (k, (span, _)) in &d.variables {
        if d.resources.contains_key(k) || d.config_decls.contains_key(k) {
            ck.push(
                Diagnostic::new(format!("`{k}` is declared more than once"))
                    .at(*span, "this variable shadows a resource or config entry")
                    .with_hint("give variables, config entries and resources distinct names"),
            );
        }
    }
}

/// `${pulumi.stack}`, `${pulumi.project}` and `${pulumi.organization}`,
/// as Pulumi YAML has them, unless the program names something `pulumi`.
fn add_pulumi_variable(d: &mut Decoded<'_>, inputs: &ConfigInputs) {
    if d.variables.contains_key("pulumi") || d.config_decls.contains_key("pulumi") || d.resources.contains_key("pulumi")
    {
        return;
    }
    let program = d.name.clone().unwrap_or_default();
    let at = Span::point(1, 1);
    let text = |t: &str| Expr::Template(vec![crate::expr::Part::Lit(t.to_string())], at);
    let key = |k: &str| Key { text: k.to_string(), span: at };
    let entries = vec![
        (key("stack"), text(inputs.stack.as_deref().unwrap_or(&program))),
        (key("project"), text(inputs.namespace.as_deref().unwrap_or(&program))),
        // Pulumi's name for the organization of a self-managed backend.
        (key("organization"), text("organization")),
    ];
    d.variables.insert("pulumi".to_string(), (at, Expr::Map(entries, at)));
}

/// Two resources with one logical name and type would share a URN.
fn check_urns(ck: &mut Checker, resources: &BTreeMap<String, ResourceDecl>) {
    let mut urns: BTreeMap<(&str, &str), &str> = BTreeMap::new();
    for (k, r) in resources {
        if let Some(first) = urns.insert((r.type_.as_str(), r.logical.as_str()), k.as_str()) {
            ck.push(
                Diagnostic::new(format!("`{first}` and `{k}` both have the logical name `{}`", r.logical))
                    .at(r.name_span, "same name and type")
                    .with_hint("give each resource of a type its own `name:`"),
            );
        }
    }
}
