//! Resource providers for rinfra.
//!
//! This is the only crate that talks to the cloud. It defines the
//! [`Provider`] trait the engine programs against, the schema types every
//! resource type describes itself with, and one provider per file:
//!
//! - [`kinesis_stream`] provides `aws:kinesis:Stream`;
//! - [`metric_alarm`] provides `aws:cloudwatch:MetricAlarm`.
//!
//! [`Registry`] maps type tokens to providers. Adding a type means adding a
//! file and one line in [`Registry::aws`]; the engine does not change.

pub mod aws;
pub mod kinesis_stream;
pub mod metric_alarm;
pub mod provider;
pub mod schema;

pub use aws::{Aws, AwsSettings, CallStats};
pub use provider::{Created, Observed, Progress, Provider, ProviderError, ProviderResult, ReadRequest};
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
    /// An empty registry, for tests that bring their own providers.
    pub fn new() -> Self {
        Registry::default()
    }

    /// Every built-in AWS resource type, sharing one lazily built `aws`.
    pub fn aws(aws: Arc<Aws>) -> Self {
        let mut r = Registry::new();
        r.register(Arc::new(kinesis_stream::KinesisStream::new(aws.clone())));
        r.register(Arc::new(metric_alarm::MetricAlarmProvider::new(aws)));
        r
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
