//! The command line's errors: the engine's, and the few of its own.

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// An engine operation failed.
    #[error(transparent)]
    Engine(#[from] rinfra_engine::Error),
    /// A flag's value is wrong.
    #[error("{flag} `{value}`: {message}")]
    Flag {
        /// The flag, such as `--config`.
        flag: &'static str,
        /// The value given.
        value: String,
        /// What is wrong with it.
        message: String,
    },
    /// A stack still has resources.
    #[error(
        "stack `{stack}` still has {count} resources; run `rinfra destroy -s {stack}` first, or pass --force to forget them (they stay in the cloud)"
    )]
    StackNotEmpty {
        /// The stack.
        stack: String,
        /// How many resources its state records.
        count: usize,
    },
    /// `stack import` would lose newer state.
    #[error("the state was not imported: {reason}; pass --force to replace it anyway")]
    ImportRefused {
        /// Why.
        reason: String,
    },
    /// A command that needs a stack of a project got a single file.
    #[error("{} is a single-file program; config commands need a stack of a project (a Pulumi.yaml and `-s NAME`)", .0.display())]
    NotAProjectStack(std::path::PathBuf),
    /// Confirmation is needed, and there is no terminal to ask on.
    #[error("`rinfra {0}` needs confirmation, but stdin is not a terminal; pass --yes to go ahead")]
    NeedsTerminal(&'static str),
    /// The lock is held, and `--force` was not given.
    #[error("{0}; pass --force to remove the lock")]
    LockHeld(String),
    /// The async runtime could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

impl From<rinfra_state::StateError> for CliError {
    fn from(e: rinfra_state::StateError) -> Self {
        CliError::Engine(e.into())
    }
}
