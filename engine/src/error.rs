//! The one error type of the engine's operations. Every variant keeps its
//! source; the command line renders it once.

use crate::apply::ApplyError;
use crate::load::LoadError;
use crate::ops::{ImportError, RefreshError, StateEditError};
use crate::plan::PlanError;
use rinfra_state::StateError;
use std::path::PathBuf;

/// Why an operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The stack could not be read or is invalid.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The state could not be read, written or locked.
    #[error(transparent)]
    State(#[from] StateError),
    /// Reading the cloud failed.
    #[error(transparent)]
    Refresh(#[from] RefreshError),
    /// No plan could be made.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// An apply stopped early.
    #[error(transparent)]
    Apply(#[from] ApplyError),
    /// An import failed.
    #[error(transparent)]
    Import(#[from] ImportError),
    /// The project or stack could not be found.
    #[error(transparent)]
    Project(#[from] crate::project::ProjectError),
    /// A secret could not be encrypted or decrypted.
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    /// A config command failed.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The command needs a state, and there is none.
    #[error("there is no state at {0}: the stack was never deployed; run `rinfra up` first")]
    NoState(String),
    /// `state rm` or `state mv` named a resource wrongly.
    #[error(transparent)]
    StateEdit(#[from] StateEditError),
    /// The stack has no output of that name.
    #[error("the stack has no output `{name}`{}", crate::ops::known_names(.known))]
    NoSuchOutput {
        /// The name asked for.
        name: String,
        /// The names it has.
        known: Vec<String>,
    },
    /// A file beside the state (a drift history) could not be written.
    #[error("cannot write {}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Why the secrets of a stack cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    /// The stack has secrets and no passphrase is set.
    #[error(
        "stack `{stack}` has secret values, which its state keeps encrypted, and no passphrase is set; set RINFRA_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE)"
    )]
    Missing {
        /// The stack.
        stack: String,
    },
    /// The passphrase file could not be read.
    #[error("{message}")]
    PassphraseFile {
        /// What went wrong.
        message: String,
    },
    /// The stack file has no salt to derive the key from.
    #[error(
        "stack `{stack}` holds encrypted values, but {} has no `encryptionsalt:`; restore that line from version control",
        .path.display()
    )]
    NoSalt {
        /// The stack.
        stack: String,
        /// Its config file.
        path: PathBuf,
    },
    /// A single-file program has no config file to keep a key in.
    #[error(
        "the state of `{stack}` holds encrypted values, but a single-file program has no stack config file with a key; run it as a stack of a project"
    )]
    SingleFile {
        /// The program.
        stack: String,
    },
}
