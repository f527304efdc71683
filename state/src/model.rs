//! The state document and its parts.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// The state format version this build reads and writes.
pub const STATE_VERSION: u32 = 1;

/// The whole state of one stack.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateFile {
    /// The format version, [`STATE_VERSION`].
    pub version: u32,
    /// The project the stack belongs to; absent for a single-file program.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// The stack's name: for a project, such as `dev`; for a single-file
    /// program, the program's `name`.
    pub stack: String,
    /// Grows by one on every write, so readers can tell two states apart.
    pub serial: u64,
    /// A random id fixed when the state is first created. Two files with
    /// different lineages describe different stacks, even with one name.
    pub lineage: String,
    /// The managed resources, keyed by their logical name in the stack.
    #[serde(default)]
    pub resources: BTreeMap<String, ResourceState>,
    /// The stack outputs computed by the last successful `up`.
    #[serde(default)]
    pub outputs: BTreeMap<String, Value>,
    /// Mutations that were started but not yet recorded as finished. A crash
    /// leaves them here, and the next run reconciles them with the cloud.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<PendingOperation>,
    /// Old resources of create-before-delete replaces whose replacement
    /// exists but which are not deleted yet. The next apply deletes them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replaced: Vec<ReplacedResource>,
    /// The sha256 of the canonical document with this field empty.
    #[serde(default)]
    pub checksum: String,
}

/// What rinfra knows about one managed resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceState {
    /// A stable, unique name: `urn:rinfra:<stack>::<type>::<name>`.
    pub urn: String,
    /// The resource type token, such as `aws:kinesis:Stream`.
    #[serde(rename = "type")]
    pub type_: String,
    /// The id the cloud knows the resource by.
    pub id: String,
    /// The inputs the resource was last created or updated with.
    pub inputs: BTreeMap<String, Value>,
    /// The outputs the cloud reported for it.
    pub outputs: BTreeMap<String, Value>,
    /// The logical names of the resources it depends on.
    #[serde(default)]
    pub dependencies: Vec<String>,
    /// Whether the resource is protected from deletion.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub protect: bool,
    /// Whether deleting it from the stack only forgets it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not", rename = "retainOnDelete")]
    pub retain_on_delete: bool,
    /// The resource whose deletion takes this one with it
    /// (`deletedWith`): when both go, this one's delete is skipped.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "deletedWith")]
    pub deleted_with: Option<String>,
}

/// The old half of a create-before-delete replace, still in the cloud.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplacedResource {
    /// The logical name it had, which its replacement now has.
    pub name: String,
    /// What rinfra knows of it.
    pub resource: ResourceState,
}

/// What kind of mutation a pending operation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PendingKind {
    /// A create: the resource may exist under the recorded id.
    Create,
    /// An update in place: some of the changes may have been applied.
    Update,
    /// A delete of a resource in `resources`.
    Delete,
    /// A delete of a resource in `replaced`.
    DeleteReplaced,
}

impl std::fmt::Display for PendingKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PendingKind::Create => "create",
            PendingKind::Update => "update",
            PendingKind::Delete => "delete",
            PendingKind::DeleteReplaced => "delete of a replaced resource",
        })
    }
}

/// A mutation that was started and may or may not have reached the cloud.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PendingOperation {
    /// What is being done.
    pub kind: PendingKind,
    /// The logical name of the resource.
    pub resource: String,
    /// The type token of the provider called: for the delete half of a
    /// replace that changes the type, the old type.
    #[serde(rename = "type")]
    pub type_: String,
    /// The cloud id being acted on (for a create, the id it will have).
    pub id: String,
    /// The inputs being applied (empty for a delete).
    #[serde(default)]
    pub inputs: BTreeMap<String, Value>,
    /// The dependencies the resource will have.
    #[serde(default)]
    pub dependencies: Vec<String>,
}

/// Which stack a state belongs to: a project's stack, or a single-file
/// program (which has one stack, named by the program).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StackId {
    /// The project, for a stack of a project.
    pub project: Option<String>,
    /// The stack's name.
    pub stack: String,
}

impl StackId {
    /// The one stack of a single-file program named `name`.
    pub fn single(name: &str) -> StackId {
        StackId { project: None, stack: name.to_string() }
    }

    /// Stack `stack` of `project`.
    pub fn of(project: &str, stack: &str) -> StackId {
        StackId { project: Some(project.to_string()), stack: stack.to_string() }
    }

    /// The text the `rinfra:stack` ownership tag holds: `project/stack`, or
    /// the program's name for a single-file program.
    pub fn owner(&self) -> String {
        match &self.project {
            Some(p) => format!("{p}/{}", self.stack),
            None => self.stack.clone(),
        }
    }
}

impl std::fmt::Display for StackId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.owner())
    }
}

impl StateFile {
    /// A fresh, empty state for stack `id` with a new lineage.
    pub fn new(id: &StackId) -> Self {
        StateFile {
            version: STATE_VERSION,
            project: id.project.clone(),
            stack: id.stack.clone(),
            serial: 0,
            lineage: uuid::Uuid::new_v4().to_string(),
            resources: BTreeMap::new(),
            outputs: BTreeMap::new(),
            pending: Vec::new(),
            replaced: Vec::new(),
            checksum: String::new(),
        }
    }

    /// Which stack this state belongs to.
    pub fn id(&self) -> StackId {
        StackId { project: self.project.clone(), stack: self.stack.clone() }
    }

    /// The URN of a resource of `type_` named `name` in this state's stack:
    /// `urn:rinfra:<stack>::<project>::<type>::<name>` as Pulumi spells it,
    /// or `urn:rinfra:<program>::<type>::<name>` for a single-file program.
    pub fn urn(&self, type_: &str, name: &str) -> String {
        match &self.project {
            Some(p) => format!("urn:rinfra:{}::{p}::{type_}::{name}", self.stack),
            None => format!("urn:rinfra:{}::{type_}::{name}", self.stack),
        }
    }

    /// Seven hex digits for the auto-name of `resource`, the same for a
    /// preview and the `up` after it (they see the same state), and new
    /// once the state has moved on, as it has by the time a replacement
    /// needs a name. A saved state's lineage keeps two stacks of one name
    /// in different backends apart.
    pub fn name_suffix(&self, resource: &str) -> String {
        use sha2::{Digest, Sha256};
        let lineage = if self.serial > 0 { self.lineage.as_str() } else { "" };
        let seed = format!("{}\0{lineage}\0{}\0{resource}", self.id().owner(), self.serial);
        hex::encode(Sha256::digest(seed.as_bytes()))[..7].to_string()
    }

    /// The sha256 of the canonical serialisation with an empty checksum.
    ///
    /// Maps are BTreeMaps and `serde_json` is built without order
    /// preservation, so the same state always serialises to the same bytes.
    pub fn compute_checksum(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut copy = self.clone();
        copy.checksum = String::new();
        // Serialising plain data with string keys cannot fail.
        let bytes = serde_json::to_vec(&copy).unwrap_or_default();
        hex::encode(Sha256::digest(&bytes))
    }
}
