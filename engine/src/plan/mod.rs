//! Planning: what must change so that the cloud matches the stack.
//!
//! The plan compares, per resource, the desired inputs (the stack, with
//! references evaluated) with the current inputs (what a refresh read from
//! the cloud, or the state when refresh is off), after both are normalised
//! by the resource's provider. A property that differs from the state but
//! not from the stack was changed outside rinfra, and is marked as drift.

use rinfra_provider::{Observed, Props};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

mod steps;

pub use steps::{Planned, delete_steps, diff, eval_inputs, eval_outputs, plan, plan_mode, restrict};

/// What kind of plan to make, as Terraform's plan modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanMode {
    /// Make the cloud match the stack (`preview`, `up`).
    Normal,
    /// Delete everything the state holds (`destroy`).
    Destroy,
    /// Change nothing in the cloud; only the state follows it (`refresh`).
    RefreshOnly,
    /// Like `Normal`, but protected resources are left as they are
    /// (`drift --remediate`).
    Remediate,
}

/// What happens to one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Nothing.
    Same,
    /// It is created.
    Create,
    /// It is changed in place.
    Update,
    /// It is replaced by a new resource, in the given order.
    Replace(ReplaceOrder),
    /// It is deleted.
    Delete,
    /// It leaves the state but stays in the cloud (`retainOnDelete`).
    Forget,
}

/// The order of the two halves of a replace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplaceOrder {
    /// The new resource is created, dependents are pointed at it, and only
    /// then is the old one deleted: Pulumi's default, with no outage.
    CreateBeforeDelete,
    /// The old resource is deleted before the new one is created.
    DeleteBeforeCreate(DeleteFirst),
}

/// Why a replace deletes the old resource first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteFirst {
    /// The resource sets `deleteBeforeReplace: true`.
    Requested,
    /// The new resource would have the old one's cloud id (its name is
    /// fixed), so both cannot exist at once.
    SameId,
    /// The type changes; the state holds one resource per name.
    TypeChanged,
}

impl ReplaceOrder {
    /// Whether the old resource goes first.
    pub fn deletes_first(self) -> bool {
        matches!(self, ReplaceOrder::DeleteBeforeCreate(_))
    }

    /// A sentence saying why this order, for plans.
    pub fn explain(self) -> &'static str {
        match self {
            ReplaceOrder::CreateBeforeDelete => "create replacement, then delete the old one",
            ReplaceOrder::DeleteBeforeCreate(DeleteFirst::Requested) => {
                "delete first: the resource sets deleteBeforeReplace"
            }
            ReplaceOrder::DeleteBeforeCreate(DeleteFirst::SameId) => {
                "delete first: the replacement keeps the same name, and two cannot exist at once"
            }
            ReplaceOrder::DeleteBeforeCreate(DeleteFirst::TypeChanged) => "delete first: the type changes",
        }
    }
}

impl Op {
    /// The symbol used in rendered plans.
    pub fn symbol(self) -> &'static str {
        match self {
            Op::Same => " ",
            Op::Create => "+",
            Op::Update => "~",
            Op::Replace(ReplaceOrder::CreateBeforeDelete) => "+/-",
            Op::Replace(ReplaceOrder::DeleteBeforeCreate(_)) => "-/+",
            Op::Delete => "-",
            Op::Forget => "-",
        }
    }

    /// The name of the operation in JSON documents.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Same => "same",
            Op::Create => "create",
            Op::Update => "update",
            Op::Replace(_) => "replace",
            Op::Delete => "delete",
            Op::Forget => "forget",
        }
    }

    /// Whether this is a replace, in either order.
    pub fn is_replace(self) -> bool {
        matches!(self, Op::Replace(_))
    }
}

impl Serialize for Op {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Why a step is planned, when the diff alone does not say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// The resource is in the state but was deleted outside rinfra.
    DeletedOutside,
    /// The stack declares another type under the same name.
    TypeChanged {
        /// The type the state holds.
        from: String,
    },
    /// The old half of a create-before-delete replace that an earlier run
    /// did not get to delete.
    LeftByReplace,
    /// It goes with the named resource (`deletedWith`), whose deletion
    /// deletes it too, so only the state forgets it.
    DeletedWith(String),
    /// What its provider says about deleting it (a subscription AWS
    /// cannot delete until it is confirmed).
    Provider(String),
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::DeletedOutside => f.write_str("deleted outside rinfra"),
            Reason::TypeChanged { from } => write!(f, "type changed from {from}"),
            Reason::LeftByReplace => f.write_str("replaced earlier; the old resource is still to be deleted"),
            Reason::DeletedWith(w) => write!(f, "deleted with `{w}`"),
            Reason::Provider(note) => f.write_str(note),
        }
    }
}

impl Serialize for Reason {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A change to one property.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PropChange {
    /// The property name.
    pub name: String,
    /// The current value, if set.
    pub old: Option<Value>,
    /// The desired value, if set. May be unknown until apply.
    pub new: Option<Value>,
    /// Whether this change forces replacement.
    pub replaces: bool,
    /// Whether the current value was changed outside rinfra (it differs
    /// from what the state recorded).
    pub drift: bool,
    /// How the provider will make the change, when that is worth saying
    /// (a shard count changed in several steps).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The plan for one resource.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    /// The logical name.
    pub name: String,
    /// The type token.
    #[serde(rename = "type")]
    pub type_: String,
    /// What happens.
    pub op: Op,
    /// The cloud id of the existing resource.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Property changes (for updates and replaces).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<PropChange>,
    /// The desired inputs (for creates, updates and replaces).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inputs: Option<Props>,
    /// The current inputs (for updates, replaces and deletes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<Props>,
    /// Why, when it is not obvious.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    /// Whether this step deletes the old half of an earlier replace (held
    /// in the state's `replaced` list), not the resource of this name.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub replaced: bool,
    /// The resources it depends on.
    pub dependencies: Vec<String>,
    /// For a replace that changes the type: the old type, whose provider
    /// deletes the old resource.
    #[serde(rename = "replacedType", skip_serializing_if = "Option::is_none")]
    pub replaced_type: Option<String>,
}

/// A change to a stack output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutputChange {
    /// The output name.
    pub name: String,
    /// The value in the state.
    pub old: Option<Value>,
    /// The value after apply, possibly unknown.
    pub new: Option<Value>,
}

/// A whole plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// The stack's name.
    pub stack: String,
    /// Every resource, in the order work would start: creates and updates
    /// in dependency order, then deletes in reverse dependency order.
    pub steps: Vec<Step>,
    /// Output changes (unchanged outputs are left out).
    pub outputs: Vec<OutputChange>,
    /// Whether the cloud was read before planning.
    pub refreshed: bool,
}

/// Counts of planned operations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Creates.
    pub create: usize,
    /// Updates.
    pub update: usize,
    /// Replaces.
    pub replace: usize,
    /// Deletes (forgets included).
    pub delete: usize,
    /// Unchanged resources.
    pub same: usize,
}

impl Plan {
    /// Counts the steps by operation.
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for step in &self.steps {
            match step.op {
                Op::Same => s.same += 1,
                Op::Create => s.create += 1,
                Op::Update => s.update += 1,
                Op::Replace(_) => s.replace += 1,
                Op::Delete | Op::Forget => s.delete += 1,
            }
        }
        s
    }

    /// Whether applying the plan would change nothing at all.
    pub fn is_empty(&self) -> bool {
        self.steps.iter().all(|s| s.op == Op::Same) && self.outputs.is_empty()
    }

    /// Whether any resource would change (outputs aside).
    pub fn has_resource_changes(&self) -> bool {
        self.steps.iter().any(|s| s.op != Op::Same)
    }
}

/// Why a plan cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// A reference could not be evaluated.
    #[error("cannot evaluate resource `{resource}`: {message}")]
    Eval {
        /// The resource.
        resource: String,
        /// What went wrong.
        message: String,
    },
    /// The state names a type this build does not know.
    #[error(
        "the state holds `{resource}` of unknown type `{type_}`; upgrade rinfra or remove it with `rinfra state rm`"
    )]
    UnknownType {
        /// The resource.
        resource: String,
        /// Its type.
        type_: String,
    },
    /// The change cannot be made in place.
    #[error("cannot update `{resource}`: {message}{}", .hint.as_ref().map(|h| format!(" ({h})")).unwrap_or_default())]
    Unsupported {
        /// The resource.
        resource: String,
        /// What is wrong.
        message: String,
        /// How to get there.
        hint: Option<String>,
    },
    /// A `--target` names no resource of the stack or state.
    #[error("--target `{target}` is not a resource of this stack or its state{}", .suggestion.as_ref().map(|s| format!("; did you mean `{s}`?")).unwrap_or_default())]
    UnknownTarget {
        /// The name given.
        target: String,
        /// The closest name, if any.
        suggestion: Option<String>,
    },
    /// A resource the state manages is now read with `get`.
    #[error(
        "`{resource}` is managed by this stack and is now read with `get`; run `rinfra state rm {resource}` first, or remove `get`"
    )]
    ManagedGet {
        /// The resource.
        resource: String,
    },
    /// A provider function failed.
    #[error("`{function}` failed: {message}")]
    Invoke {
        /// The function's token.
        function: String,
        /// What went wrong.
        message: String,
    },
    /// A resource read with `get` could not be read.
    #[error("cannot read `{resource}` (id `{id}`) with get: {message}")]
    Get {
        /// The resource.
        resource: String,
        /// The id it was read by.
        id: String,
        /// What went wrong.
        message: String,
    },
    /// A protected resource would be deleted or replaced.
    #[error("resource `{resource}` is protected and would be {action}; remove `protect: true` from its options first")]
    Protected {
        /// The resource.
        resource: String,
        /// "deleted" or "replaced".
        action: &'static str,
    },
}

/// What a refresh found: per resource in the state, `Some(observed)` or
/// `None` when the resource is gone from the cloud.
pub type Observations = BTreeMap<String, Option<Observed>>;
