//! sqlx errors mapped to [`StoreError`], the variants callers act on.
//!
//! Constraint violations say something about the input (`Conflict` for a
//! duplicate, `Invalid` for a broken rule); everything else — the pool, the
//! socket, a lock that would not come free, a decoding surprise — is
//! `Unavailable`, which supervision may retry. Writes carry idempotency keys,
//! so retrying after an ambiguous failure never stores a post twice.

use sqlx::error::ErrorKind;

use crate::error::StoreError;

/// Maps one sqlx error; logs the ones that point at a broken server or bug.
pub(crate) fn db_err(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::RowNotFound => StoreError::NotFound("row".into()),
        sqlx::Error::Database(d) => match d.kind() {
            ErrorKind::UniqueViolation => StoreError::Conflict(d.message().to_string()),
            ErrorKind::ForeignKeyViolation => {
                StoreError::NotFound(format!("referenced record: {}", d.message()))
            }
            ErrorKind::NotNullViolation | ErrorKind::CheckViolation => {
                StoreError::Invalid(d.message().to_string())
            }
            // SQLITE_FULL (13), and PostgreSQL's disk_full (53100).
            _ if matches!(d.code().as_deref(), Some("13" | "53100")) => {
                tracing::error!(error = %d, "the database's disk is full");
                StoreError::StorageFull(d.message().to_string())
            }
            _ => {
                tracing::warn!(error = %d, code = ?d.code(), "database error");
                StoreError::Unavailable(d.message().to_string())
            }
        },
        sqlx::Error::Configuration(e) => StoreError::Invalid(format!("configuration: {e}")),
        sqlx::Error::Io(io) if crate::error::is_storage_full(&io) => {
            StoreError::StorageFull(io.to_string())
        }
        other => {
            tracing::warn!(error = %other, "database unavailable");
            StoreError::Unavailable(other.to_string())
        }
    }
}
