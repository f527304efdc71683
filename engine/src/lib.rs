//! The rinfra engine: the stack language, the dependency graph, planning
//! and applying, independent of any resource type.
//!
//! Data flows one way: [`stack::load`] checks a stack file into a
//! [`stack::Stack`]; [`ops::refresh`] reads what the cloud holds for every
//! resource in the state; [`plan::plan_mode`] compares the two into a
//! [`plan::Plan`]; [`apply::apply`] carries it out, its journal saving the
//! state after every operation. [`session::Session`] strings these into the
//! operations commands are made of. Providers come through a registry of
//! `rinfra-provider` trait objects; this crate depends on no cloud SDK and
//! knows no particular resource type.

// Diagnostics carry a message, a label, a hint and secondary spans; they
// only travel on the error path, where their size costs nothing that
// matters, so boxing them would only add noise.
#![allow(clippy::result_large_err)]

pub mod apply;
pub mod config;
pub mod conventions;
pub mod diag;
pub mod drift;
pub mod duration;
pub mod error;
pub mod expr;
pub mod graph;
pub mod load;
pub mod ops;
pub mod plan;
pub mod project;
pub mod render;
pub mod resolve;
pub mod schedule;
pub mod session;
pub mod stack;
pub mod stack_schema;
pub mod yaml;

pub use error::Error;

#[cfg(test)]
mod engine_tests;
#[cfg(test)]
mod layers_tests;
#[cfg(test)]
mod memory;
