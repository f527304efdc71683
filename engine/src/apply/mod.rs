//! Applying a plan: concurrent, in dependency order, and crash-safe.
//!
//! Two parts, as Terraform's and Pulumi's deployment engines have them:
//! [`executor`] schedules steps (what may start, what waits for what) and
//! runs provider calls; [`journal`] owns the state while that happens,
//! recording a pending operation before every mutating call and its result
//! after it, each with an atomic save. Nothing else writes the state during
//! an apply.

pub mod executor;
pub mod journal;

pub use executor::{ApplyError, ApplyOptions, Event, Failure, Observer, Quiet, Report, StepError, apply};
pub use journal::{BackendStore, Store};
