//! Content-addressed blob storage for media originals and thumbnails.
//!
//! A blob's key is the lowercase hex SHA-256 of its bytes, so storing the
//! same file twice stores it once, and a key names exactly one content.
//! Two backends behave the same (one test suite runs on both):
//! - [`FsBlobStore`]: files under a directory, fanned out by the first two
//!   hex digits (`dir/ab/abcdef…`) so no directory grows huge. A blob is
//!   written to a temporary file in the same directory and renamed into
//!   place, so a reader never sees half a blob under its key.
//! - [`DbBlobStore`]: the `blob` table of a [`Store`], for clusters whose
//!   nodes share a database but no filesystem.
//!
//! Keys from outside are validated (64 lowercase hex digits) before they
//! touch a path or a query, so a key can never name a file outside the
//! directory.
//!
//! A third, [`S3BlobStore`](crate::s3::S3BlobStore), keeps them in an S3
//! bucket.
//!
//! Not handled: garbage collection (the caller deletes the keys that
//! [`Repo::archive_thread`](crate::Repo::archive_thread) reports orphaned)
//! and streaming (media are bounded by the board's upload limit).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::error::StoreError;
use crate::store::{db_err, Store};

/// Above this size the hash is computed on the blocking pool, so a large
/// upload does not stall the async worker for milliseconds.
const INLINE_HASH_BYTES: usize = 64 * 1024;

/// Where media bytes live. Keys are lowercase hex SHA-256 of the content.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Stores `bytes` and returns their key. Idempotent: storing the same
    /// bytes again returns the same key and keeps one copy.
    async fn put(&self, bytes: Bytes) -> Result<String, StoreError>;
    /// The bytes under `key`, or `None` if absent. `Invalid` for a malformed key.
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError>;
    /// Removes the blob; removing an absent one succeeds.
    async fn delete(&self, key: &str) -> Result<(), StoreError>;
    /// Whether a blob is stored under `key`.
    async fn exists(&self, key: &str) -> Result<bool, StoreError>;

    /// [`BlobStore::put`], for a backend that keeps a content type with the
    /// bytes (S3, whose objects a CDN serves directly).
    async fn put_typed(&self, bytes: Bytes, _content_type: &str) -> Result<String, StoreError> {
        self.put(bytes).await
    }

    /// Bytes `range` of the blob (clamped to its end), or `None` if absent.
    async fn get_range(
        &self,
        key: &str,
        range: std::ops::Range<u64>,
    ) -> Result<Option<Bytes>, StoreError> {
        Ok(self.get(key).await?.map(|b| slice_range(&b, range)))
    }

    /// The blob's length in bytes, or `None` if absent.
    async fn size(&self, key: &str) -> Result<Option<u64>, StoreError> {
        Ok(self.get(key).await?.map(|b| b.len() as u64))
    }
}

/// Bytes `range` of `b`, clamped to its end.
pub(crate) fn slice_range(b: &Bytes, range: std::ops::Range<u64>) -> Bytes {
    let end = (range.end as usize).min(b.len());
    b.slice((range.start as usize).min(end)..end)
}

/// The key of `bytes`: lowercase hex SHA-256.
pub fn blob_key(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Whether `key` has the shape of a blob key (64 lowercase hex digits).
pub fn is_valid_key(key: &str) -> bool {
    key.len() == 64 && key.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

pub(crate) fn check_key(key: &str) -> Result<(), StoreError> {
    if is_valid_key(key) {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "blob key must be 64 lowercase hex digits, got {:?}",
            key.chars().take(80).collect::<String>()
        )))
    }
}

/// Hashes on the blocking pool when the input is large.
pub(crate) async fn key_of(bytes: &Bytes) -> Result<String, StoreError> {
    if bytes.len() <= INLINE_HASH_BYTES {
        return Ok(blob_key(bytes));
    }
    let shared = bytes.clone();
    tokio::task::spawn_blocking(move || blob_key(&shared))
        .await
        .map_err(|e| StoreError::Unavailable(format!("hashing task failed: {e}")))
}

/// Blobs as files under one directory.
#[derive(Clone, Debug)]
pub struct FsBlobStore {
    dir: PathBuf,
}

impl FsBlobStore {
    /// A store rooted at `dir`; the directory is created on first write.
    pub fn new(dir: impl Into<PathBuf>) -> FsBlobStore {
        FsBlobStore { dir: dir.into() }
    }

    /// The file for a validated key: `dir/ab/abcdef…`.
    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(&key[..2]).join(key)
    }
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> StoreError {
    StoreError::from_io(format_args!("{what} {}", path.display()), e)
}

/// Writes `bytes` to a fresh temporary file in `path`'s directory, flushes
/// it to disk, and renames it over `path`: the rename is atomic, so the key
/// names either nothing or the whole blob. Blocking; run off the runtime.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let dir = path
        .parent()
        .ok_or_else(|| StoreError::Invalid(format!("no parent for {}", path.display())))?;
    std::fs::create_dir_all(dir).map_err(|e| io_err("creating", dir, e))?;
    let mut suffix = [0u8; 8];
    rand::rng().fill_bytes(&mut suffix);
    let tmp = dir.join(format!(".tmp-{}", hex::encode(suffix)));
    let result = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| io_err("creating", &tmp, e))?;
        file.write_all(bytes)
            .map_err(|e| io_err("writing", &tmp, e))?;
        file.sync_all().map_err(|e| io_err("syncing", &tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| io_err("renaming into", path, e))
    })();
    if result.is_err() {
        // Best effort: a leftover temp file is harmless (never a valid key).
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[async_trait]
impl BlobStore for FsBlobStore {
    async fn put(&self, bytes: Bytes) -> Result<String, StoreError> {
        let key = key_of(&bytes).await?;
        let path = self.path(&key);
        if tokio::fs::try_exists(&path)
            .await
            .map_err(|e| io_err("checking", &path, e))?
        {
            return Ok(key);
        }
        tokio::task::spawn_blocking(move || write_atomically(&path, &bytes))
            .await
            .map_err(|e| StoreError::Unavailable(format!("blob write task failed: {e}")))??;
        Ok(key)
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        check_key(key)?;
        let path = self.path(key);
        match tokio::fs::read(&path).await {
            Ok(bytes) => Ok(Some(Bytes::from(bytes))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("reading", &path, e)),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        check_key(key)?;
        let path = self.path(key);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("deleting", &path, e)),
        }
    }

    async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        check_key(key)?;
        let path = self.path(key);
        tokio::fs::try_exists(&path)
            .await
            .map_err(|e| io_err("checking", &path, e))
    }
}

/// Blobs in the `blob` table of a [`Store`].
#[derive(Clone)]
pub struct DbBlobStore {
    store: Store,
}

impl DbBlobStore {
    /// A blob store sharing `store`'s database (and read pool).
    pub fn new(store: Store) -> DbBlobStore {
        DbBlobStore { store }
    }
}

#[async_trait]
impl BlobStore for DbBlobStore {
    async fn put(&self, bytes: Bytes) -> Result<String, StoreError> {
        let key = key_of(&bytes).await?;
        sqlx::query("INSERT INTO blob (key, bytes) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
            .bind(&key)
            .bind(bytes.to_vec())
            .execute(self.store.pool())
            .await
            .map_err(db_err)?;
        Ok(key)
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        check_key(key)?;
        let bytes: Option<Vec<u8>> = sqlx::query_scalar("SELECT bytes FROM blob WHERE key = $1")
            .bind(key)
            .fetch_optional(self.store.pool())
            .await
            .map_err(db_err)?;
        Ok(bytes.map(Bytes::from))
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        check_key(key)?;
        sqlx::query("DELETE FROM blob WHERE key = $1")
            .bind(key)
            .execute(self.store.pool())
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        check_key(key)?;
        let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM blob WHERE key = $1")
            .bind(key)
            .fetch_optional(self.store.pool())
            .await
            .map_err(db_err)?;
        Ok(found.is_some())
    }
}
