//! The store's error type: variants are what a caller can act on.

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The record does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The write conflicts with what is stored (archived thread, duplicate
    /// unique name).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The input breaks a rule of the schema.
    #[error("invalid: {0}")]
    Invalid(String),
    /// The write carried a shard lease epoch that is no longer current:
    /// another node took the shard over. Nothing was written; the same
    /// request sent to the new owner succeeds.
    #[error("fenced: shard {shard} is no longer at epoch {epoch}")]
    Fenced { shard: i64, epoch: i64 },
    /// The disk (or the database's) is full: nothing was written, and
    /// retrying soon will not help.
    #[error("storage full: {0}")]
    StorageFull(String),
    /// The database or blob store could not be reached or failed; retrying may work.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
}

impl StoreError {
    /// Whether the same call may succeed if tried again (a fenced write
    /// succeeds through the shard's new owner).
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_) | StoreError::Fenced { .. })
    }

    /// The error for a failed file operation: a full disk (or quota) is
    /// [`StoreError::StorageFull`], anything else is unavailable.
    pub fn from_io(what: impl std::fmt::Display, e: std::io::Error) -> StoreError {
        if is_storage_full(&e) {
            StoreError::StorageFull(format!("{what}: {e}"))
        } else {
            StoreError::Unavailable(format!("{what}: {e}"))
        }
    }
}

/// Whether an I/O error means "no space left" (ENOSPC, or EDQUOT).
pub fn is_storage_full(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::StorageFull
        || e.kind() == std::io::ErrorKind::QuotaExceeded
        || matches!(
            e.raw_os_error(),
            Some(libc_codes::ENOSPC | libc_codes::EDQUOT)
        )
}

/// The two errno values, without a libc dependency (Linux numbering).
mod libc_codes {
    pub const ENOSPC: i32 = 28;
    pub const EDQUOT: i32 = 122;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_its_own_error() {
        let full = std::io::Error::from_raw_os_error(28);
        assert!(matches!(
            StoreError::from_io("writing x", full),
            StoreError::StorageFull(_)
        ));
        let other = std::io::Error::from_raw_os_error(5);
        assert!(matches!(
            StoreError::from_io("writing x", other),
            StoreError::Unavailable(_)
        ));
        assert!(StoreError::Fenced { shard: 1, epoch: 2 }.is_retryable());
        assert!(!StoreError::StorageFull(String::new()).is_retryable());
    }
}
