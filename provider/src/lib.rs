//! What the rinfra engine may ask of any resource type.
//!
//! This crate holds the [`Provider`] trait, the schema types every resource
//! type describes itself with, and the [`Registry`] from type token to
//! provider. It depends on no cloud SDK, so the engine, which depends on
//! this crate and not on `rinfra-resources`, cannot call AWS: providers are
//! plugged in by the binary.

pub mod provider;
pub mod schema;

pub use provider::{
    Created, Function, Observed, Ownership, Progress, Provider, ProviderError, ProviderResult, ReadRequest,
};
pub use schema::{Props, ResourceSchema};

use std::collections::BTreeMap;
use std::sync::Arc;

/// The providers available to a run, by type token, with the functions
/// `fn::invoke` may call and the defaults a package's provider applies.
#[derive(Clone, Default)]
pub struct Registry {
    providers: BTreeMap<String, Arc<dyn Provider>>,
    functions: BTreeMap<String, Arc<dyn Function>>,
    defaults: Props,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("types", &self.providers.keys().collect::<Vec<_>>())
            .field("functions", &self.functions.keys().collect::<Vec<_>>())
            .field("defaults", &self.defaults)
            .finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Registry::default()
    }

    /// Adds a provider under its schema's token.
    pub fn register(&mut self, p: Arc<dyn Provider>) {
        self.providers.insert(p.schema().token.to_string(), p);
    }

    /// Adds a function under its token.
    pub fn register_function(&mut self, f: Arc<dyn Function>) {
        self.functions.insert(f.token().to_string(), f);
    }

    /// The provider for `token`.
    pub fn get(&self, token: &str) -> Option<&Arc<dyn Provider>> {
        self.providers.get(token)
    }

    /// The function for `token`.
    pub fn function(&self, token: &str) -> Option<&Arc<dyn Function>> {
        self.functions.get(token)
    }

    /// Every registered token, sorted.
    pub fn tokens(&self) -> impl Iterator<Item = &str> {
        self.providers.keys().map(String::as_str)
    }

    /// Every registered function token, sorted.
    pub fn function_tokens(&self) -> impl Iterator<Item = &str> {
        self.functions.keys().map(String::as_str)
    }

    /// Sets the values the default provider gives every resource whose
    /// schema has the property and whose stack leaves it out: its
    /// `region`, and its default `tags`, which merge under the stack's own.
    pub fn set_defaults(&mut self, defaults: Props) {
        self.defaults = defaults;
    }

    /// The default provider's values; see [`Registry::set_defaults`].
    pub fn defaults(&self) -> &Props {
        &self.defaults
    }
}
