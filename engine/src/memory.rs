//! An in-memory cloud for unit tests of the engine: one provider per
//! schema, a shared log of calls, and failures on demand.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use async_trait::async_trait;
use rinfra_provider::schema::{Property, ResourceSchema, Type};
use rinfra_provider::{
    Created, Observed, Ownership, Progress, Props, Provider, ProviderError, ProviderResult, ReadRequest, Registry,
};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

/// What the fake cloud holds, and every call made to it.
#[derive(Default)]
pub struct Cloud {
    /// Resources by "type/id".
    pub resources: Mutex<BTreeMap<String, Props>>,
    /// Calls in order, as "op type id".
    pub log: Mutex<Vec<String>>,
    /// Ids whose create fails.
    pub fail_create: Mutex<BTreeSet<String>>,
    /// Ids whose create makes the resource, then fails.
    pub partial_create: Mutex<BTreeSet<String>>,
    /// The ownership tags each id was created with.
    pub owners: Mutex<BTreeMap<String, Ownership>>,
    /// Ids whose update applies its first changed property, then fails.
    pub fail_update: Mutex<BTreeSet<String>>,
    /// Ids whose create panics, standing in for a bug in a provider.
    pub panic_create: Mutex<BTreeSet<String>>,
    /// Set when any delete runs, standing in for a Ctrl-C at that moment.
    pub interrupt_on_delete: Mutex<Option<Arc<std::sync::atomic::AtomicBool>>>,
}

impl Cloud {
    fn key(token: &str, id: &str) -> String {
        format!("{token}/{id}")
    }

    /// The calls made so far, with reads left out.
    pub fn writes(&self) -> Vec<String> {
        self.log.lock().map(|l| l.iter().filter(|c| !c.starts_with("read")).cloned().collect()).unwrap_or_default()
    }

    /// Changes a property behind the engine's back.
    pub fn set(&self, token: &str, id: &str, prop: &str, v: serde_json::Value) {
        if let Some(r) = self
            .resources
            .lock()
            .ok()
            .and_then(|mut m| m.get_mut(&Cloud::key(token, id)).map(|r| r.insert(prop.into(), v)))
        {
            let _ = r;
        }
    }

    /// Deletes a resource behind the engine's back.
    pub fn remove(&self, token: &str, id: &str) {
        if let Ok(mut m) = self.resources.lock() {
            m.remove(&Cloud::key(token, id));
        }
    }
}

/// A provider whose resources live in a [`Cloud`].
pub struct Memory {
    schema: ResourceSchema,
    cloud: Arc<Cloud>,
}

/// A stream-like type: `test:Stream` with a name (auto-named when left
/// out), a size, a set and tags.
pub fn stream_schema() -> ResourceSchema {
    ResourceSchema {
        token: "test:Stream",
        doc: "A test stream.",
        properties: vec![
            Property::new("name", Type::String, "The name.").replaces(),
            rinfra_provider::schema::tags_property("Tags."),
            rinfra_provider::schema::region_property(),
            Property::new("size", Type::Integer { min: Some(1), max: Some(100) }, "The size.").default(json!(1)),
            Property::new(
                "metrics",
                Type::List { item: Box::new(Type::String), set: true, max_items: None },
                "A set of metric names.",
            )
            .default(json!([])),
            Property::new("note", Type::String, "A multi-line note.").default(json!("")),
            Property::new("kind", Type::String, "A property whose change forces replacement.").replaces(),
        ],
        outputs: vec!["name", "arn"],
        name_property: "name",
        not_yet: Vec::new(),
    }
}

/// An alarm-like type: `test:Alarm` that names a stream.
pub fn alarm_schema() -> ResourceSchema {
    ResourceSchema {
        token: "test:Alarm",
        doc: "A test alarm.",
        properties: vec![
            Property::new("name", Type::String, "The name.").required().replaces(),
            Property::new("threshold", Type::Number, "The threshold.").required(),
            Property::new("dimensions", Type::Map { value: Box::new(Type::String), max_entries: None }, "Dimensions.")
                .default(json!({})),
        ],
        outputs: vec!["name", "arn"],
        name_property: "name",
        not_yet: Vec::new(),
    }
}

/// A registry with both test types and the `echo` function over one cloud.
pub fn registry(cloud: Arc<Cloud>) -> Registry {
    let mut r = Registry::new();
    r.register(Arc::new(Memory { schema: stream_schema(), cloud: cloud.clone() }));
    r.register(Arc::new(Memory { schema: alarm_schema(), cloud: cloud.clone() }));
    r.register_function(Arc::new(Echo { cloud }));
    r
}

/// `test:index/echo:echo`: returns its `text` argument as `text` and
/// upper-cased as `upper`, and logs each call.
pub struct Echo {
    cloud: Arc<Cloud>,
}

#[async_trait]
impl rinfra_provider::Function for Echo {
    fn token(&self) -> &'static str {
        "test:index/echo:echo"
    }

    fn arguments(&self) -> &'static [(&'static str, bool)] {
        &[("text", true)]
    }

    fn returns(&self) -> &'static [&'static str] {
        &["text", "upper"]
    }

    async fn invoke(&self, args: &Props) -> ProviderResult<Props> {
        let text = args.get("text").and_then(|v| v.as_str()).unwrap_or_default().to_string();
        if let Ok(mut l) = self.cloud.log.lock() {
            l.push(format!("invoke echo {text}"));
        }
        Ok(Props::from([("upper".into(), json!(text.to_uppercase())), ("text".into(), json!(text))]))
    }
}

impl Memory {
    fn log(&self, op: &str, id: &str) {
        if let Ok(mut l) = self.cloud.log.lock() {
            l.push(format!("{op} {} {id}", self.schema.token));
        }
    }

    fn outputs(&self, id: &str) -> Props {
        Props::from([("name".into(), json!(id)), ("arn".into(), json!(format!("arn:test:{}:{id}", self.schema.token)))])
    }
}

#[async_trait]
impl Provider for Memory {
    fn schema(&self) -> &ResourceSchema {
        &self.schema
    }

    async fn read(&self, requests: &[ReadRequest]) -> Vec<ProviderResult<Option<Observed>>> {
        let mut out = Vec::new();
        for r in requests {
            self.log("read", &r.id);
            let found =
                self.cloud.resources.lock().ok().and_then(|m| m.get(&Cloud::key(self.schema.token, &r.id)).cloned());
            let owner =
                if r.ownership { self.cloud.owners.lock().ok().and_then(|o| o.get(&r.id).cloned()) } else { None };
            out.push(Ok(found.map(|inputs| Observed { inputs, outputs: self.outputs(&r.id), owner })));
        }
        out
    }

    async fn create(&self, props: &Props, owner: &Ownership, _progress: &dyn Progress) -> ProviderResult<Created> {
        let id = props.get("name").and_then(|v| v.as_str()).unwrap_or_default().to_string();
        if self.cloud.panic_create.lock().map(|s| s.contains(&id)).unwrap_or(false) {
            panic!("injected panic creating {id}");
        }
        if let Ok(mut o) = self.cloud.owners.lock() {
            o.insert(id.clone(), owner.clone());
        }
        self.log("create", &id);
        if self.cloud.fail_create.lock().map(|s| s.contains(&id)).unwrap_or(false) {
            return Err(ProviderError::api("test:Create", "injected failure"));
        }
        let key = Cloud::key(self.schema.token, &id);
        let mut m = self.cloud.resources.lock().map_err(|e| ProviderError::Invalid(e.to_string()))?;
        if m.contains_key(&key) {
            return Err(ProviderError::AlreadyExists { kind: "test resource", name: id });
        }
        if self.cloud.partial_create.lock().map(|s| s.contains(&id)).unwrap_or(false) {
            // Made, but only with its name: a later step failed.
            m.insert(key, Props::from([("name".to_string(), json!(id))]));
            return Err(ProviderError::Partial {
                id: id.clone(),
                outputs: self.outputs(&id),
                source: Box::new(ProviderError::api("test:Configure", "injected")),
            });
        }
        m.insert(key, props.clone());
        Ok(Created { id: id.clone(), outputs: self.outputs(&id) })
    }

    async fn update(
        &self,
        id: &str,
        _old: &Props,
        new: &Props,
        changed: &BTreeSet<String>,
        _progress: &dyn Progress,
    ) -> ProviderResult<Props> {
        self.log(&format!("update[{}]", changed.iter().cloned().collect::<Vec<_>>().join(",")), id);
        if self.cloud.fail_update.lock().map(|s| s.contains(id)).unwrap_or(false) {
            // Like a Kinesis update whose third of six calls fails: the
            // first change is made, the rest are not.
            if let (Ok(mut m), Some(first)) = (self.cloud.resources.lock(), changed.iter().next()) {
                if let (Some(r), Some(v)) = (m.get_mut(&Cloud::key(self.schema.token, id)), new.get(first)) {
                    r.insert(first.clone(), v.clone());
                }
            }
            return Err(ProviderError::api("test:Update", "injected failure after the first change"));
        }
        if let Ok(mut m) = self.cloud.resources.lock() {
            m.insert(Cloud::key(self.schema.token, id), new.clone());
        }
        Ok(self.outputs(id))
    }

    async fn delete(&self, id: &str, _props: &Props, _progress: &dyn Progress) -> ProviderResult<()> {
        self.log("delete", id);
        if let Some(flag) = self.cloud.interrupt_on_delete.lock().ok().and_then(|f| f.clone()) {
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        if let Ok(mut m) = self.cloud.resources.lock() {
            m.remove(&Cloud::key(self.schema.token, id));
        }
        Ok(())
    }
}
