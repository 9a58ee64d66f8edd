//! The actors' error type: what a caller (the HTTP layer) can act on.

use wani_store::StoreError;
use wani_supervision::transport::Fault;

/// Why an entity could not do what was asked.
#[derive(Debug, Clone, PartialEq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum ActorError {
    /// The board, thread or post does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request breaks a rule (too long, missing file…); the message says which.
    #[error("{0}")]
    Invalid(String),
    /// The request conflicts with the entity's state (an archived thread…).
    #[error("{0}")]
    Conflict(String),
    /// The write was refused by the shard lease: another node owns the
    /// entity now. Nothing was stored; the request routed again reaches
    /// the new owner.
    #[error("shard {shard} moved to another node while the write was made; it was not stored")]
    Fenced { shard: i64 },
    /// The disk is full: nothing was stored, and retrying soon will not help.
    #[error("storage full: {0}")]
    StorageFull(String),
    /// Storage or an actor did not answer in time; retrying may work.
    #[error("{0}")]
    Unavailable(String),
}

impl ActorError {
    /// Whether the same request may succeed if tried again (a fenced write
    /// through the entity's new owner).
    pub fn is_retryable(&self) -> bool {
        matches!(self, ActorError::Unavailable(_) | ActorError::Fenced { .. })
    }
}

impl From<StoreError> for ActorError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(m) => ActorError::NotFound(m),
            StoreError::Conflict(m) => ActorError::Conflict(m),
            StoreError::Invalid(m) => ActorError::Invalid(m),
            StoreError::Fenced { shard, .. } => ActorError::Fenced { shard },
            StoreError::StorageFull(m) => ActorError::StorageFull(m),
            StoreError::Unavailable(m) => ActorError::Unavailable(m),
        }
    }
}

impl From<Fault> for ActorError {
    fn from(f: Fault) -> Self {
        match f {
            Fault::NotFound(m) => ActorError::NotFound(m),
            Fault::Invalid(m) => ActorError::Invalid(m),
            Fault::Conflict(m) => ActorError::Conflict(m),
            Fault::Unavailable(m) => ActorError::Unavailable(m),
        }
    }
}

impl From<ActorError> for Fault {
    /// Fenced and storage-full outcomes of a delivery become plain
    /// `Unavailable`: a delivery only activates, and reads.
    fn from(e: ActorError) -> Self {
        match e {
            ActorError::NotFound(m) => Fault::NotFound(m),
            ActorError::Invalid(m) => Fault::Invalid(m),
            ActorError::Conflict(m) => Fault::Conflict(m),
            other => Fault::Unavailable(other.to_string()),
        }
    }
}

impl<T> From<ractor::MessagingErr<T>> for ActorError {
    fn from(e: ractor::MessagingErr<T>) -> Self {
        ActorError::Unavailable(format!("actor unreachable: {e}"))
    }
}
