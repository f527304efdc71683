//! The provider trait: what the engine may ask of any resource type.

use crate::schema::{Props, ResourceSchema, Violation, normalize_props};
use async_trait::async_trait;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// The error a cloud SDK returned, kept as the source of a [`ProviderError`].
pub type SdkSource = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A failure of a cloud operation.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The cloud refused or failed a call.
    #[error("{operation} failed: {message}")]
    Api {
        /// The API operation, such as `kinesis:CreateStream`.
        operation: String,
        /// What the cloud said, with its error code first.
        message: String,
        /// The SDK's own error, when there is one.
        #[source]
        source: Option<SdkSource>,
    },
    /// The resource does not exist (any more).
    #[error("{kind} `{id}` does not exist; it was deleted outside rinfra")]
    NotFound {
        /// A human name for the type, such as "Kinesis stream".
        kind: &'static str,
        /// The cloud id looked for.
        id: String,
    },
    /// A resource with this name exists already but is not in the state.
    #[error("{kind} `{name}` already exists and is not managed by this stack")]
    AlreadyExists {
        /// A human name for the type, such as "Kinesis stream".
        kind: &'static str,
        /// The cloud name.
        name: String,
    },
    /// The resource did not reach the wanted status in time.
    #[error("timed out after {seconds}s waiting for {what}")]
    Timeout {
        /// What we waited for.
        what: String,
        /// How long we waited.
        seconds: u64,
    },
    /// The inputs were not usable (only reached when validation was bypassed).
    #[error("invalid input: {0}")]
    Invalid(String),
    /// A create got as far as making the resource, then a later step failed.
    /// The resource exists and must be recorded.
    #[error("{source}")]
    Partial {
        /// The cloud id of the resource that now exists.
        id: String,
        /// The outputs known so far.
        outputs: Props,
        /// The step that failed.
        source: Box<ProviderError>,
    },
}

/// Shorthand for provider results.
pub type ProviderResult<T> = Result<T, ProviderError>;

impl ProviderError {
    /// An API failure without an SDK error behind it.
    pub fn api(operation: impl Into<String>, message: impl Into<String>) -> Self {
        ProviderError::Api { operation: operation.into(), message: message.into(), source: None }
    }
}

/// What to read for one resource.
#[derive(Debug, Clone, Default)]
pub struct ReadRequest {
    /// The cloud id.
    pub id: String,
    /// Property names the stack or the state sets. Properties that cost
    /// extra calls are read only when they are in this set.
    pub managed: BTreeSet<String>,
    /// Whether to read the ownership tags too (an extra call for some
    /// types), as reconciling an interrupted create needs.
    pub ownership: bool,
    /// The inputs the state records for the resource, such as the region
    /// it lives in; empty when there is no record.
    pub recorded: Props,
}

impl ReadRequest {
    /// A request for `id` reading the properties in `managed`.
    pub fn new(id: impl Into<String>, managed: BTreeSet<String>) -> Self {
        ReadRequest { id: id.into(), managed, ownership: false, recorded: Props::new() }
    }

    /// The same request, knowing the inputs the state records.
    pub fn with_recorded(mut self, recorded: &Props) -> Self {
        self.recorded = recorded.clone();
        self
    }

    /// The region recorded for the resource, if any.
    pub fn region(&self) -> Option<&str> {
        self.recorded.get("region").and_then(Value::as_str)
    }

    /// Whether this read needs the resource's tags: the stack manages them,
    /// or the ownership tags are asked for.
    pub fn needs_tags(&self) -> bool {
        self.ownership || self.managed.contains("tags")
    }

    /// Sorts the tags read for this request: the user's go into `inputs`
    /// as `tags` when the stack manages them (rinfra's own never do, so
    /// they never show as a diff), and the ownership they record is
    /// returned when it was asked for.
    pub fn take_tags(&self, mut tags: BTreeMap<String, String>, inputs: &mut Props) -> Option<Ownership> {
        let owner = if self.ownership { Ownership::from_tags(&tags) } else { None };
        tags.retain(|k, _| !Ownership::is_own_tag(k));
        if self.managed.contains("tags") {
            inputs.insert("tags".into(), serde_json::json!(tags));
        }
        owner
    }
}

/// Which stack and resource made a cloud resource, as rinfra records it in
/// tags at creation: the evidence an interrupted create is adopted on.
/// CloudFormation tags its resources the same way.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ownership {
    /// The stack's name.
    pub stack: String,
    /// The resource's logical name in the stack.
    pub resource: String,
}

impl Ownership {
    /// The tag naming the stack.
    pub const STACK_TAG: &'static str = "rinfra:stack";
    /// The tag naming the logical resource.
    pub const RESOURCE_TAG: &'static str = "rinfra:resource";
    /// Tags starting with this are rinfra's own: never shown as a diff,
    /// never removed by an update.
    pub const PREFIX: &'static str = "rinfra:";

    /// The ownership of `resource` in `stack`.
    pub fn new(stack: impl Into<String>, resource: impl Into<String>) -> Self {
        Ownership { stack: stack.into(), resource: resource.into() }
    }

    /// The tags that record it.
    pub fn tags(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (Self::STACK_TAG.to_string(), self.stack.clone()),
            (Self::RESOURCE_TAG.to_string(), self.resource.clone()),
        ])
    }

    /// Reads it back from a resource's tags; `None` when either is missing.
    pub fn from_tags(tags: &BTreeMap<String, String>) -> Option<Ownership> {
        Some(Ownership::new(tags.get(Self::STACK_TAG)?.clone(), tags.get(Self::RESOURCE_TAG)?.clone()))
    }

    /// Whether a tag key is one of rinfra's own.
    pub fn is_own_tag(key: &str) -> bool {
        key.starts_with(Self::PREFIX)
    }
}

/// A resource as the cloud holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    /// The current value of every readable property, in stack terms.
    /// rinfra's ownership tags are never among them.
    pub inputs: Props,
    /// The outputs, such as `arn`.
    pub outputs: Props,
    /// Who made it, when the request asked and the tags say.
    pub owner: Option<Ownership>,
}

/// The result of a create.
#[derive(Debug, Clone, PartialEq)]
pub struct Created {
    /// The cloud id of the new resource.
    pub id: String,
    /// Its outputs.
    pub outputs: Props,
}

/// Reports progress of long operations, such as waiting for ACTIVE.
pub trait Progress: Send + Sync {
    /// Called with a short status line for the resource being worked on.
    fn status(&self, message: &str);
}

/// One resource type: its schema and the cloud operations on it.
///
/// Implementations must be idempotent where they can: the engine may retry
/// a create after a crash, so a create that finds its own resource should
/// say so with [`ProviderError::AlreadyExists`] rather than overwrite it.
#[async_trait]
pub trait Provider: Send + Sync {
    /// The type's schema.
    fn schema(&self) -> &ResourceSchema;

    /// Checks rules that span several properties, such as "exactly one of
    /// statistic and extendedStatistic". Runs before any API call. Values
    /// not yet known (see [`crate::schema::is_unknown`]) must be skipped.
    fn check(&self, _props: &Props) -> Vec<Violation> {
        Vec::new()
    }

    /// A sentence on how a change of `property` from `current` to
    /// `desired` will be made, for plans, when it is not one plain call.
    fn change_note(&self, _property: &str, _current: Option<&Value>, _desired: Option<&Value>) -> Option<String> {
        None
    }

    /// Checks that the cloud can go from `current` to `desired` in place,
    /// for limits that depend on both (such as how far a shard count may
    /// move in one step). Runs at plan time, before any write.
    fn check_change(&self, _current: &Props, _desired: &Props) -> Vec<Violation> {
        Vec::new()
    }

    /// Puts inputs into the canonical form used for comparison. The default
    /// fills in schema defaults, sorts sets and unifies numbers.
    fn normalize(&self, props: &Props) -> Props {
        normalize_props(&self.schema().properties, props)
    }

    /// The outputs that can be predicted from the inputs before the
    /// resource exists, such as a name that mirrors an input. Anything not
    /// returned is unknown until apply.
    fn predict_outputs(&self, props: &Props) -> Props {
        let name = self.schema().name_property;
        props.get(name).map(|v| BTreeMap::from([("name".to_string(), v.clone())])).unwrap_or_default()
    }

    /// The cloud id a resource with these inputs will have, used to find a
    /// resource whose create may have happened before a crash.
    fn id_from_inputs(&self, props: &Props) -> Option<String> {
        props.get(self.schema().name_property).and_then(Value::as_str).map(str::to_string)
    }

    /// A sentence for plans about deleting a resource with these outputs,
    /// when the delete is not what it seems (AWS cannot delete it yet).
    fn delete_note(&self, _outputs: &Props) -> Option<String> {
        None
    }

    /// For a type whose cloud id the cloud chooses (a subscription's ARN):
    /// the id of a resource with these inputs, if one exists, so that a
    /// create interrupted before its id was saved can be found again.
    async fn find_created(&self, _props: &Props) -> ProviderResult<Option<String>> {
        Ok(None)
    }

    /// Reads many resources at once. Each result is `None` when the
    /// resource no longer exists. Implementations batch where the API
    /// allows it.
    async fn read(&self, requests: &[ReadRequest]) -> Vec<ProviderResult<Option<Observed>>>;

    /// Creates the resource, tagged with `owner` (at creation where the API
    /// allows it), and waits until it is usable.
    async fn create(&self, props: &Props, owner: &Ownership, progress: &dyn Progress) -> ProviderResult<Created>;

    /// Changes `changed` properties in place from `old` (the cloud's current
    /// values) to `new`, and returns the new outputs.
    async fn update(
        &self,
        id: &str,
        old: &Props,
        new: &Props,
        changed: &BTreeSet<String>,
        progress: &dyn Progress,
    ) -> ProviderResult<Props>;

    /// Deletes the resource and waits until it is gone, so that a resource
    /// with the same name can be created right after.
    async fn delete(&self, id: &str, props: &Props, progress: &dyn Progress) -> ProviderResult<()>;
}

/// A function a program may call with `fn::invoke`, such as
/// `aws:index/getRegion:getRegion`. Pulumi runs invokes during preview
/// too: they only read.
#[async_trait]
pub trait Function: Send + Sync {
    /// The function's token, in Pulumi's canonical form.
    fn token(&self) -> &'static str;

    /// The argument names it accepts, with whether each is required.
    fn arguments(&self) -> &'static [(&'static str, bool)];

    /// The names of the values it returns.
    fn returns(&self) -> &'static [&'static str];

    /// Calls it with `args`, which are known and have been checked against
    /// [`Function::arguments`].
    async fn invoke(&self, args: &Props) -> ProviderResult<Props>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ownership_tags_are_returned_when_asked_and_never_become_inputs() {
        let tags: BTreeMap<String, String> =
            Ownership::new("demo", "stream").tags().into_iter().chain([("team".into(), "a".into())]).collect();
        let mut req = ReadRequest::new("s1", BTreeSet::from(["tags".to_string()]));
        let mut inputs = Props::new();
        assert_eq!(req.take_tags(tags.clone(), &mut inputs), None, "ownership only when asked for");
        assert_eq!(inputs["tags"], serde_json::json!({"team": "a"}));
        req.ownership = true;
        req.managed.clear();
        let mut inputs = Props::new();
        assert_eq!(req.take_tags(tags, &mut inputs), Some(Ownership::new("demo", "stream")));
        assert!(inputs.is_empty(), "tags the stack does not manage are not read into inputs");
    }
}
