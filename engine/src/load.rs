//! Reading a single-file program from disk into a checked stack, and the
//! error that names the file when it cannot be.

use crate::diag::Diagnostics;
use crate::stack::Stack;
use rinfra_provider::Registry;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Why a stack could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read stack file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The stack's config file is invalid.
    #[error("{diagnostics}")]
    InvalidConfig {
        /// The file.
        path: PathBuf,
        /// The file's text, for rendering carets.
        source_text: String,
        /// What is wrong.
        diagnostics: Diagnostics,
    },
    /// The stack is invalid.
    #[error("{diagnostics}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The file's text, for rendering carets.
        source_text: String,
        /// What is wrong.
        diagnostics: Diagnostics,
    },
}

/// Reads and checks the stack at `path`.
pub fn load_stack(path: &Path, overrides: &BTreeMap<String, String>, registry: &Registry) -> Result<Stack, LoadError> {
    let bytes = std::fs::read(path).map_err(|source| LoadError::Io { path: path.to_path_buf(), source })?;
    let values = crate::stack::Supplied::flags(overrides, None);
    let base_dir = path.parent().map(Path::to_path_buf);
    let inputs = crate::stack::ConfigInputs { values, namespace: None, base_dir, stack: None };
    crate::stack::load_with(&bytes, &inputs, registry).map_err(|f| f.program).map_err(|diagnostics| {
        LoadError::Invalid {
            path: path.to_path_buf(),
            source_text: String::from_utf8_lossy(&bytes).into_owned(),
            diagnostics,
        }
    })
}

/// The default state path for a stack: `.rinfra/<name>.json`.
pub fn default_state_path(stack_name: &str) -> PathBuf {
    PathBuf::from(".rinfra").join(format!("{stack_name}.json"))
}
