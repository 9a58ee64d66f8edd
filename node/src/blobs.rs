//! `wani blobs migrate --to s3`: copies every file the database names from
//! the blob store `[blobs] backend` names now (`fs` or `db`) into the S3
//! bucket the same section describes, so that `backend = "s3"` can be
//! switched on afterwards.
//!
//! Each object is read back from the bucket and its SHA-256 compared with
//! its key before it counts as copied; one already in the bucket (a second
//! run, or after an interruption) is left alone, so a run can be repeated
//! until it reports no failure. The source is never changed.

use std::sync::Arc;

use anyhow::{bail, Context as _};
use futures::StreamExt as _;
use wani_store::blob::{blob_key, BlobStore};
use wani_store::s3::S3BlobStore;

use crate::config::Config;
use crate::progress::Progress;

#[derive(clap::Subcommand, Debug)]
pub enum BlobsCommand {
    /// Copy every stored file from the current backend into S3, verified.
    Migrate {
        /// The backend to move to; `s3` is the one there is.
        #[arg(long, value_parser = ["s3"])]
        to: String,
        /// Files copied at once.
        #[arg(long, default_value_t = 8)]
        parallel: usize,
    },
}

/// What a migration did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Moved {
    pub copied: u64,
    pub already: u64,
    /// Each failed file with its reason.
    pub failed: Vec<String>,
}

pub async fn run(config: Config, cmd: BlobsCommand) -> anyhow::Result<()> {
    let BlobsCommand::Migrate { to: _, parallel } = cmd;
    let moved = migrate_to_s3(&config, parallel).await?;
    println!(
        "copied {}, already in the bucket {}, failed {}",
        moved.copied,
        moved.already,
        moved.failed.len()
    );
    for f in &moved.failed {
        println!("  {f}");
    }
    if !moved.failed.is_empty() {
        bail!(
            "{} files were not copied: run it again once the cause is fixed",
            moved.failed.len()
        );
    }
    println!("every file is in the bucket: set [blobs] backend = \"s3\" and restart the nodes");
    Ok(())
}

/// The migration itself.
pub async fn migrate_to_s3(config: &Config, parallel: usize) -> anyhow::Result<Moved> {
    if config.blobs.backend == "s3" {
        bail!("[blobs] backend is \"s3\" already: the source is the backend files are in now (fs or db)");
    }
    let store = crate::node::open_store(config).await?;
    let result = async {
        let source = crate::node::open_blobs(config, &store).await?;
        let target = S3BlobStore::new(&config.blobs.s3())?;
        target
            .check()
            .await
            .with_context(|| format!("the S3 bucket {:?}", config.blobs.bucket))?;
        let target: Arc<dyn BlobStore> = Arc::new(target);
        let blobs = store.media_blobs().await?;
        let mut bar = Progress::new("files", blobs.len() as u64);
        let mut moved = Moved::default();
        let mut results = futures::stream::iter(blobs)
            .map(|(key, mimetype)| {
                let (source, target) = (source.clone(), target.clone());
                async move { (key.clone(), copy(&*source, &*target, &key, &mimetype).await) }
            })
            .buffer_unordered(parallel.max(1));
        while let Some((key, r)) = results.next().await {
            bar.add(1);
            match r {
                Ok(true) => moved.copied += 1,
                Ok(false) => moved.already += 1,
                Err(why) => moved.failed.push(format!("{key}: {why}")),
            }
        }
        bar.finish();
        anyhow::Ok(moved)
    }
    .await;
    store.close().await;
    result
}

/// Copies one blob; `Ok(false)` if the bucket has it already.
async fn copy(
    source: &dyn BlobStore,
    target: &dyn BlobStore,
    key: &str,
    mimetype: &str,
) -> Result<bool, String> {
    if target.exists(key).await.map_err(|e| e.to_string())? {
        return Ok(false);
    }
    let bytes = verified(source, key, "the current store").await?;
    target
        .put_typed(bytes, mimetype)
        .await
        .map_err(|e| e.to_string())?;
    verified(target, key, "the bucket, after the upload").await?;
    Ok(true)
}

/// The blob `key` of `store`, whose bytes must hash to their key.
async fn verified(store: &dyn BlobStore, key: &str, which: &str) -> Result<bytes::Bytes, String> {
    let bytes = store
        .get(key)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("missing from {which}"))?;
    if blob_key(&bytes) != key {
        return Err(format!(
            "its bytes in {which} do not match its name (damaged)"
        ));
    }
    Ok(bytes)
}
