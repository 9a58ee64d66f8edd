//! Both blob stores pass the same suite: files on disk, and the `blob`
//! table on SQLite and on PostgreSQL.

#[macro_use]
mod common;

use bytes::Bytes;
use common::TestDb;
use wani_store::blob::{blob_key, BlobStore, DbBlobStore, FsBlobStore};
use wani_store::StoreError;

/// SHA-256 of "hello", as `sha256sum` prints it.
const HELLO: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

async fn behaves_like_a_blob_store(blobs: &dyn BlobStore) {
    let key = blobs.put(Bytes::from_static(b"hello")).await.unwrap();
    assert_eq!(key, HELLO);
    assert_eq!(
        blobs.put(Bytes::from_static(b"hello")).await.unwrap(),
        HELLO
    );
    assert_eq!(
        blobs.get(HELLO).await.unwrap().as_deref(),
        Some(&b"hello"[..])
    );
    assert!(blobs.exists(HELLO).await.unwrap());

    // Large enough to be hashed off the async thread.
    let big: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let big_key = blobs.put(Bytes::from(big.clone())).await.unwrap();
    assert_eq!(big_key, blob_key(&big));
    assert_eq!(
        blobs.get(&big_key).await.unwrap().as_deref(),
        Some(&big[..])
    );
    let empty = blobs.put(Bytes::new()).await.unwrap();
    assert_eq!(blobs.get(&empty).await.unwrap().as_deref(), Some(&b""[..]));

    blobs.delete(HELLO).await.unwrap();
    assert_eq!(blobs.get(HELLO).await.unwrap(), None);
    assert!(!blobs.exists(HELLO).await.unwrap());
    blobs.delete(HELLO).await.unwrap();
    assert!(
        blobs.exists(&big_key).await.unwrap(),
        "deleting one blob left the others"
    );

    let upper = HELLO.to_uppercase();
    let bad = [
        "",
        "../../etc/passwd",
        &HELLO[..63],
        &upper,
        "2c/../../../../../../../../../../../../../../../../../../../etc/passwd0",
        &format!("{HELLO}0"),
    ];
    for key in bad {
        assert!(
            matches!(blobs.get(key).await, Err(StoreError::Invalid(_))),
            "get {key:?}"
        );
        assert!(
            matches!(blobs.exists(key).await, Err(StoreError::Invalid(_))),
            "exists {key:?}"
        );
        assert!(
            matches!(blobs.delete(key).await, Err(StoreError::Invalid(_))),
            "delete {key:?}"
        );
    }
}

#[tokio::test]
async fn fs_blob_store() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = FsBlobStore::new(dir.path().join("blobs"));
    behaves_like_a_blob_store(&blobs).await;
    // Files sit at dir/ab/abcdef…, and no temporary file is left behind.
    let key = blobs.put(Bytes::from_static(b"layout")).await.unwrap();
    let shard = dir.path().join("blobs").join(&key[..2]);
    assert_eq!(std::fs::read(shard.join(&key)).unwrap(), b"layout");
    let names: Vec<_> = std::fs::read_dir(&shard)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, [key]);
}

async fn db_blob_store(db: &TestDb) {
    behaves_like_a_blob_store(&DbBlobStore::new(db.store.clone())).await;
}

both_backends!(db_blob_store);
