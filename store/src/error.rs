//! The store's error type: variants are what a caller can act on.

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The record does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The write conflicts with what is stored (archived thread, lost fence,
    /// duplicate unique name).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The input breaks a rule of the schema.
    #[error("invalid: {0}")]
    Invalid(String),
    /// The database or blob store could not be reached or failed; retrying may work.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
}

impl StoreError {
    /// Whether the same call may succeed if tried again.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}
