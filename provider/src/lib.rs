//! What the rinfra engine may ask of any resource type.
//!
//! This crate holds the [`Provider`] trait, the schema types every resource
//! type describes itself with, and the [`Registry`] from type token to
//! provider. It depends on no cloud SDK, so the engine, which depends on
//! this crate and not on `rinfra-resources`, cannot call AWS: providers are
//! plugged in by the binary.

pub mod provider;
pub mod schema;

pub use provider::{Created, Observed, Ownership, Progress, Provider, ProviderError, ProviderResult, ReadRequest};
pub use schema::{Props, ResourceSchema};

use std::collections::BTreeMap;
use std::sync::Arc;

/// The providers available to a run, by type token.
#[derive(Clone, Default)]
pub struct Registry {
    providers: BTreeMap<String, Arc<dyn Provider>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").field("types", &self.providers.keys().collect::<Vec<_>>()).finish()
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

    /// The provider for `token`.
    pub fn get(&self, token: &str) -> Option<&Arc<dyn Provider>> {
        self.providers.get(token)
    }

    /// Every registered token, sorted.
    pub fn tokens(&self) -> impl Iterator<Item = &str> {
        self.providers.keys().map(String::as_str)
    }
}
