//! The rinfra state file.
//!
//! One JSON document per stack records what rinfra believes exists in the
//! cloud: every managed resource with its cloud id, the inputs it was last
//! applied with, the outputs the cloud returned, and its dependencies. The
//! file carries a serial that grows on every write, a lineage that never
//! changes for the life of the stack, and a sha256 checksum of its canonical
//! content so that a hand-edited or truncated file is refused instead of
//! silently trusted.
//!
//! This crate knows nothing of YAML or AWS: values are plain JSON.

pub mod backend;
pub mod crypt;
pub mod history;
mod lock;
mod model;
mod store;

pub use lock::{LockInfo, LockStatus, StateLock};
pub use model::{PendingKind, PendingOperation, ReplacedResource, ResourceState, STATE_VERSION, StackId, StateFile};
pub use store::{backup_path, check_owner, encode, load, load_or_new, save, save_sealed, verify, verify_bytes};

use std::path::PathBuf;

/// Everything that can go wrong while reading, writing or locking a state file.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The file could not be read or written.
    #[error("cannot {action} state file {path}: {source}")]
    Io {
        /// What we were doing, such as "read" or "write".
        action: &'static str,
        /// The file involved.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The file is not valid JSON, or not a state document.
    #[error(
        "state file {path} is not valid ({reason}); it was not modified. Restore it from {path}.bak or fix it by hand"
    )]
    Corrupt {
        /// The file involved.
        path: PathBuf,
        /// What the parser said.
        reason: String,
    },
    /// The content does not match the checksum recorded in it.
    #[error(
        "state file {path} fails its integrity check (checksum {found} recorded, {computed} computed); it was edited or damaged. Restore it from {path}.bak, or run `rinfra state verify` after repairing it"
    )]
    Checksum {
        /// The file involved.
        path: PathBuf,
        /// The checksum written in the file.
        found: String,
        /// The checksum of the content as read.
        computed: String,
    },
    /// The file was written by a format this build does not understand.
    #[error("state file {path} has version {found}, but this rinfra understands version {supported}; upgrade rinfra")]
    Version {
        /// The file involved.
        path: PathBuf,
        /// The version found in the file.
        found: u32,
        /// The version this build writes.
        supported: u32,
    },
    /// The file belongs to another stack.
    #[error("state file {path} belongs to stack `{found}`, not `{expected}`; nothing was read or written")]
    ForeignStack {
        /// The file involved.
        path: PathBuf,
        /// The stack recorded in the file, as `project/stack`.
        found: String,
        /// The stack being operated on, as `project/stack`.
        expected: String,
    },
    /// The backend keeps no versions of states.
    #[error("{location}: {reason}")]
    NoVersions {
        /// Where the state is.
        location: String,
        /// What to do instead.
        reason: String,
    },
    /// Someone else wrote the state since this run read it: nothing was
    /// overwritten, and this run's state is kept in a recovery file.
    #[error(
        "the state at {location} was changed by another run since this one read it, so it was not overwritten; this run's state is kept in {}. Run `rinfra refresh` and `rinfra up` to converge; `rinfra stack import --file {} --force` would restore this run's state instead",
        .recovery.display(), .recovery.display()
    )]
    Conflict {
        /// Where the state is.
        location: String,
        /// The local file holding this run's state.
        recovery: PathBuf,
    },
    /// A remote backend failed.
    #[error("{operation} {location}: {message}")]
    Remote {
        /// The call, such as `s3:PutObject`.
        operation: &'static str,
        /// The object.
        location: String,
        /// What the service said.
        message: String,
        /// The client's error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// A secret value could not be encrypted or decrypted.
    #[error("state file {path}: {source}")]
    Secret {
        /// The file involved.
        path: PathBuf,
        /// What went wrong.
        source: crypt::CryptError,
    },
    /// The file on disk was replaced by a state of another lineage.
    #[error(
        "state file {path} now has lineage {found}, not {expected}: it was replaced by another state while rinfra ran; nothing was written. Check which state is right before running again"
    )]
    ForeignLineage {
        /// The file involved.
        path: PathBuf,
        /// The lineage now on disk.
        found: String,
        /// The lineage of the state being written.
        expected: String,
    },
    /// Another process holds the lock.
    #[error(
        "state {path} is locked by pid {} on {} ({}) since {}; wait for it to finish, or run `rinfra unlock --force` if it is gone{}",
        .holder.pid, .holder.host, .holder.command, .holder.started, if *.stale { " (the lock looks stale: that process is not running)" } else { "" }
    )]
    Locked {
        /// The lock file.
        path: PathBuf,
        /// Who holds it (boxed: a lock record is large, errors are moved often).
        holder: Box<LockInfo>,
        /// Whether the holder's process is gone on this host.
        stale: bool,
    },
    /// A lock file exists but says nothing usable about its holder.
    #[error(
        "state {path} is locked, but the lock file cannot be read ({reason}); if no rinfra is running on this state, run `rinfra unlock --force` to remove it"
    )]
    LockUnreadable {
        /// The lock file.
        path: PathBuf,
        /// Why it could not be parsed.
        reason: String,
    },
}

/// Shorthand for results in this crate.
pub type Result<T, E = StateError> = std::result::Result<T, E>;
