//! Media in S3-compatible object storage (`[blobs] backend = "s3"`), through
//! the `object_store` crate: request signing, retries with backoff, and
//! multipart uploads are its work, not ours.
//!
//! Objects are named `<prefix><key>` (the key is the SHA-256 of the bytes,
//! as in every backend), so storing a file twice stores it once and an
//! object never changes: a CDN in front may cache it forever. Each object
//! is stored with the content type its writer knows (the sniffed type of
//! an upload, the thumbnail's type), which is what a CDN serves it with.
//!
//! Credentials come from the config or, when it has none, from the usual
//! environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_SESSION_TOKEN`, `AWS_REGION`…). [`S3BlobStore::check`] is run at
//! start so wrong credentials or a missing bucket stop the node with a
//! clear error instead of failing the first upload.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{
    Attribute, Attributes, ObjectStore as _, ObjectStoreExt as _, PutOptions, PutPayload,
    RetryConfig, WriteMultipart,
};

use crate::blob::{check_key, key_of, slice_range, BlobStore};
use crate::error::StoreError;

/// How to reach the bucket.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct S3Options {
    pub bucket: String,
    /// e.g. `us-east-1`; empty takes `AWS_REGION` or `us-east-1`.
    pub region: String,
    /// The service URL for a non-AWS store (`http://127.0.0.1:9000`); empty
    /// for AWS itself.
    pub endpoint: String,
    /// Bucket in the path (`endpoint/bucket/key`) rather than in the host
    /// name (`bucket.endpoint/key`); most self-hosted stores want this.
    pub path_style: bool,
    /// Empty: from the environment.
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Put in front of every object name (`wani/`), to share a bucket.
    pub prefix: String,
    /// Files larger than this are uploaded in parts of this size.
    pub multipart_bytes: usize,
    /// How long one request is retried (with backoff) before it fails.
    pub retry_secs: u64,
}

/// Blobs in an S3 bucket.
#[derive(Clone, Debug)]
pub struct S3BlobStore {
    s3: Arc<AmazonS3>,
    prefix: String,
    multipart_bytes: usize,
}

/// Smallest part S3 accepts (every part but the last).
const MIN_PART: usize = 5 * 1024 * 1024;

impl S3BlobStore {
    /// Builds the client; does not contact the store (see [`S3BlobStore::check`]).
    pub fn new(o: &S3Options) -> Result<S3BlobStore, StoreError> {
        if o.bucket.is_empty() {
            return Err(StoreError::Invalid(
                "blobs.bucket must name the S3 bucket".into(),
            ));
        }
        let mut b = AmazonS3Builder::from_env()
            .with_bucket_name(&o.bucket)
            .with_virtual_hosted_style_request(!o.path_style)
            .with_retry(RetryConfig {
                retry_timeout: Duration::from_secs(o.retry_secs.max(1)),
                ..RetryConfig::default()
            });
        if !o.region.is_empty() {
            b = b.with_region(&o.region);
        }
        if !o.endpoint.is_empty() {
            b = b
                .with_endpoint(&o.endpoint)
                .with_allow_http(o.endpoint.starts_with("http://"));
        }
        if !o.access_key_id.is_empty() {
            b = b
                .with_access_key_id(&o.access_key_id)
                .with_secret_access_key(&o.secret_access_key);
        }
        let s3 = b
            .build()
            .map_err(|e| StoreError::Invalid(format!("S3 bucket {:?}: {e}", o.bucket)))?;
        Ok(S3BlobStore {
            s3: Arc::new(s3),
            prefix: o.prefix.clone(),
            multipart_bytes: o.multipart_bytes.max(MIN_PART),
        })
    }

    fn path(&self, key: &str) -> Path {
        Path::from(format!("{}{key}", self.prefix))
    }

    /// Writes, reads back and deletes a small object, the three things a
    /// node does with the bucket: wrong credentials, a missing bucket or
    /// one the key may only read are an error naming the cause, at start
    /// rather than at the first upload. (A read alone proves little: some
    /// stores answer "not found" before they check the signature.)
    pub async fn check(&self) -> Result<(), StoreError> {
        let probe = self.path("wani-start-up-check");
        let failed = |what: &str, e: object_store::Error| {
            StoreError::Unavailable(format!(
                "the S3 bucket refused to {what} with these settings and credentials: {e}"
            ))
        };
        self.s3
            .put(&probe, PutPayload::from_static(b"wani"))
            .await
            .map_err(|e| failed("store an object", e))?;
        self.s3
            .head(&probe)
            .await
            .map_err(|e| failed("read an object", e))?;
        self.s3
            .delete(&probe)
            .await
            .map_err(|e| failed("delete an object", e))?;
        Ok(())
    }
}

fn s3_err(what: &str, key: &str, e: object_store::Error) -> StoreError {
    StoreError::Unavailable(format!("S3 {what} {key}: {e}"))
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn put(&self, bytes: Bytes) -> Result<String, StoreError> {
        self.put_typed(bytes, "application/octet-stream").await
    }

    async fn put_typed(&self, bytes: Bytes, content_type: &str) -> Result<String, StoreError> {
        // No lookup first: the pipeline has asked the database whether it
        // holds this file already, and putting the same bytes under their
        // own name again changes nothing.
        let key = key_of(&bytes).await?;
        let path = self.path(&key);
        let mut attributes = Attributes::new();
        attributes.insert(Attribute::ContentType, content_type.to_string().into());
        // Named by its content: never changes, may be cached for good.
        attributes.insert(
            Attribute::CacheControl,
            "public, max-age=31536000, immutable".into(),
        );
        if bytes.len() <= self.multipart_bytes {
            let opts = PutOptions {
                attributes,
                ..PutOptions::default()
            };
            self.s3
                .put_opts(&path, PutPayload::from(bytes), opts)
                .await
                .map_err(|e| s3_err("upload of", &key, e))?;
            return Ok(key);
        }
        let upload = self
            .s3
            .put_multipart_opts(
                &path,
                object_store::PutMultipartOptions {
                    attributes,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| s3_err("multipart upload of", &key, e))?;
        // Parts are slices of the one buffer: the file is never copied.
        let mut writer = WriteMultipart::new_with_chunk_size(upload, self.multipart_bytes);
        let mut rest = bytes;
        while !rest.is_empty() {
            let part = rest.split_to(self.multipart_bytes.min(rest.len()));
            writer
                .wait_for_capacity(2)
                .await
                .map_err(|e| s3_err("multipart upload of", &key, e))?;
            writer.put(part);
        }
        writer
            .finish()
            .await
            .map_err(|e| s3_err("multipart upload of", &key, e))?;
        Ok(key)
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        check_key(key)?;
        match self.s3.get(&self.path(key)).await {
            Ok(r) => r
                .bytes()
                .await
                .map(Some)
                .map_err(|e| s3_err("download of", key, e)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(s3_err("download of", key, e)),
        }
    }

    async fn get_range(
        &self,
        key: &str,
        range: std::ops::Range<u64>,
    ) -> Result<Option<Bytes>, StoreError> {
        check_key(key)?;
        match self.s3.get_range(&self.path(key), range).await {
            Ok(b) => Ok(Some(b)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(s3_err("ranged download of", key, e)),
        }
    }

    async fn size(&self, key: &str) -> Result<Option<u64>, StoreError> {
        check_key(key)?;
        match self.s3.head(&self.path(key)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(s3_err("lookup of", key, e)),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        check_key(key)?;
        match self.s3.delete(&self.path(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(s3_err("delete of", key, e)),
        }
    }

    async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        Ok(self.size(key).await?.is_some())
    }
}

/// Small blobs (thumbnails, mostly) kept in memory in front of a store that
/// is a network hop away: a page of thumbnails read from a bucket is one
/// request per image otherwise. A key names one content for good, so an
/// entry is never stale; it leaves when the budget is spent (oldest first)
/// or when the blob is deleted.
pub struct CachedBlobStore {
    inner: Arc<dyn BlobStore>,
    /// Largest blob kept, and all kept together, in bytes.
    max_item: usize,
    budget: usize,
    kept: std::sync::Mutex<Kept>,
}

#[derive(Default)]
struct Kept {
    blobs: std::collections::HashMap<String, Bytes>,
    order: std::collections::VecDeque<String>,
    bytes: usize,
}

impl CachedBlobStore {
    /// Keeps blobs up to `max_item` bytes, `budget` bytes in all.
    pub fn new(inner: Arc<dyn BlobStore>, max_item: usize, budget: usize) -> CachedBlobStore {
        CachedBlobStore {
            inner,
            max_item,
            budget,
            kept: Default::default(),
        }
    }

    fn lookup(&self, key: &str) -> Option<Bytes> {
        let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        kept.blobs.get(key).cloned()
    }

    fn keep(&self, key: &str, bytes: &Bytes) {
        if bytes.len() > self.max_item || bytes.len() > self.budget {
            return;
        }
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        if kept.blobs.contains_key(key) {
            return;
        }
        while kept.bytes + bytes.len() > self.budget {
            let Some(old) = kept.order.pop_front() else {
                break;
            };
            if let Some(b) = kept.blobs.remove(&old) {
                kept.bytes -= b.len();
            }
        }
        kept.bytes += bytes.len();
        kept.order.push_back(key.to_string());
        kept.blobs.insert(key.to_string(), bytes.clone());
    }

    fn forget(&self, key: &str) {
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = kept.blobs.remove(key) {
            kept.bytes -= b.len();
            kept.order.retain(|k| k != key);
        }
    }
}

#[async_trait]
impl BlobStore for CachedBlobStore {
    async fn put(&self, bytes: Bytes) -> Result<String, StoreError> {
        let key = self.inner.put(bytes.clone()).await?;
        self.keep(&key, &bytes);
        Ok(key)
    }

    async fn put_typed(&self, bytes: Bytes, content_type: &str) -> Result<String, StoreError> {
        let key = self.inner.put_typed(bytes.clone(), content_type).await?;
        // Just stored is about to be read: a new post's thumbnail.
        self.keep(&key, &bytes);
        Ok(key)
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        if let Some(b) = self.lookup(key) {
            return Ok(Some(b));
        }
        let got = self.inner.get(key).await?;
        if let Some(b) = &got {
            self.keep(key, b);
        }
        Ok(got)
    }

    async fn get_range(
        &self,
        key: &str,
        range: std::ops::Range<u64>,
    ) -> Result<Option<Bytes>, StoreError> {
        match self.lookup(key) {
            Some(b) => Ok(Some(slice_range(&b, range))),
            None => self.inner.get_range(key, range).await,
        }
    }

    async fn size(&self, key: &str) -> Result<Option<u64>, StoreError> {
        match self.lookup(key) {
            Some(b) => Ok(Some(b.len() as u64)),
            None => self.inner.size(key).await,
        }
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.forget(key);
        self.inner.delete(key).await
    }

    async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        if self.lookup(key).is_some() {
            return Ok(true);
        }
        self.inner.exists(key).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blob::FsBlobStore;

    #[tokio::test]
    async fn the_cache_answers_small_blobs_and_forgets_deleted_and_oldest_ones() {
        let dir = tempfile::tempdir().unwrap();
        let disk: Arc<dyn BlobStore> = Arc::new(FsBlobStore::new(dir.path()));
        let cached = CachedBlobStore::new(disk.clone(), 100, 250);
        let small = |n: u8| Bytes::from(vec![n; 100]);
        let a = cached.put(small(1)).await.unwrap();
        // Gone from the disk, still answered: it came from memory.
        std::fs::remove_dir_all(dir.path()).unwrap();
        assert_eq!(cached.get(&a).await.unwrap(), Some(small(1)));
        assert_eq!(
            cached.get_range(&a, 10..20).await.unwrap(),
            Some(small(1).slice(10..20))
        );
        // Too large to keep: read through every time.
        let big = cached.put(Bytes::from(vec![9; 101])).await.unwrap();
        assert!(cached.lookup(&big).is_none());
        // Over the budget, the oldest leaves first.
        let b = cached.put(small(2)).await.unwrap();
        let c = cached.put(small(3)).await.unwrap();
        assert!(cached.lookup(&a).is_none(), "the oldest made room");
        assert!(cached.lookup(&b).is_some() && cached.lookup(&c).is_some());
        // A deleted blob is not answered from memory afterwards.
        cached.delete(&b).await.unwrap();
        assert!(!cached.exists(&b).await.unwrap());
        assert_eq!(cached.get(&b).await.unwrap(), None);
        assert_eq!(cached.get(&c).await.unwrap(), Some(small(3)));
    }
}
