//! ThumbnailerPool: blob key → checked media and a thumbnail, on a bounded pool.
//!
//! The HTTP layer stores an upload's bytes under their content hash and
//! sends only the key: media bytes never travel in actor messages. A worker
//! reads the blob, runs [`wani_media::process`] (type from the bytes,
//! pixel limit before decoding, full decode, thumbnail) on the blocking
//! thread pool so the async threads keep serving, stores the thumbnail, and
//! answers with the [`NewMedia`] record to commit.
//!
//! The queue is bounded: beyond `queue_limit` waiting jobs a new job is
//! refused at once (the caller answers "busy, try again") instead of letting
//! a burst of uploads hold unbounded memory; [`Thumbnailer::queue_depth`]
//! is shown at `/api/v1/status`. Each worker runs one job at a time, so at
//! most `workers` decodes (or ffmpeg children) are in flight.
//!
//! Video goes to [`VideoTools`] (ffprobe and ffmpeg as child processes with
//! time and memory limits) when the node found them at start-up; without
//! them a video job is refused with [`MediaError::VideoUnavailable`].

use crate::pool::{PanicCounter, Pool, PoolError};
use bytes::Bytes;
use ractor::factory::{FactoryMessage, Job, Worker, WorkerId};
use ractor::{ActorProcessingErr, ActorRef};
use serde::{Deserialize, Serialize};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;
use wani_media::video::{VideoError, VideoTools};
use wani_media::{self, MediaError, MediaLimits, ThumbOptions};
use wani_store::blob::BlobStore;
use wani_store::NewMedia;
use wani_supervision::transport::{Remote, Reply, Transport};
use wani_supervision::tree::ChildSpec;
use wani_supervision::Role;

/// Why a thumbnail job failed.
#[derive(Debug, thiserror::Error, Serialize, Deserialize)]
pub enum ThumbError {
    /// The file itself is refused (type, size, pixels, corrupt); tell the user.
    #[error(transparent)]
    Media(#[from] MediaError),
    /// The blob store's disk is full: nothing was stored.
    #[error("storage full: {0}")]
    StorageFull(String),
    /// The pool or the blob store could not do the work now.
    #[error("{0}")]
    Unavailable(String),
}

impl From<wani_store::StoreError> for ThumbError {
    fn from(e: wani_store::StoreError) -> Self {
        match e {
            wani_store::StoreError::StorageFull(m) => ThumbError::StorageFull(m),
            other => ThumbError::Unavailable(format!("blob store: {other}")),
        }
    }
}

/// A thumbnail job. The test hook is local-only and comes last (serde
/// numbers skipped variants differently on each side).
#[derive(Serialize, Deserialize)]
pub enum ThumbMsg {
    /// Checks the blob `blob` and makes its thumbnail.
    Process {
        blob: String,
        limits: MediaLimits,
        options: ThumbOptions,
        reply: Reply<Result<NewMedia, ThumbError>>,
    },
    /// Panics in the worker, to exercise supervision. Debug builds only.
    #[cfg(debug_assertions)]
    #[serde(skip)]
    Crash,
}
impl ractor::Message for ThumbMsg {}
impl Remote for ThumbMsg {
    const KIND: &'static str = "thumbnail";
}

/// What each worker is handed at start: the blob store, the video tools,
/// and the pool's panic count.
pub struct BlobsArg(Arc<dyn BlobStore>, Option<VideoTools>, Arc<AtomicU64>);
impl ractor::Message for BlobsArg {}

/// A worker's state.
pub struct WorkerState {
    blobs: Arc<dyn BlobStore>,
    video: Option<VideoTools>,
    crashes: Arc<AtomicU64>,
}

/// One worker of the pool.
pub struct ThumbWorker;

impl Worker for ThumbWorker {
    type Key = ();
    type Message = ThumbMsg;
    type Arguments = BlobsArg;
    type State = WorkerState;

    async fn pre_start(
        &self,
        _wid: WorkerId,
        _factory: &ActorRef<FactoryMessage<(), ThumbMsg>>,
        args: BlobsArg,
    ) -> Result<WorkerState, ActorProcessingErr> {
        Ok(WorkerState {
            blobs: args.0,
            video: args.1,
            crashes: args.2,
        })
    }

    async fn handle(
        &self,
        _wid: WorkerId,
        _factory: &ActorRef<FactoryMessage<(), ThumbMsg>>,
        Job { msg, key, .. }: Job<(), ThumbMsg>,
        state: &mut WorkerState,
    ) -> Result<(), ActorProcessingErr> {
        let _counted = PanicCounter(state.crashes.clone());
        match msg {
            ThumbMsg::Process {
                blob,
                limits,
                options,
                reply,
            } => {
                let res = process(
                    state.blobs.as_ref(),
                    state.video.as_ref(),
                    blob,
                    limits,
                    options,
                )
                .await;
                reply.send(res);
            }
            #[cfg(debug_assertions)]
            ThumbMsg::Crash => panic!("crash requested for a thumbnail worker (test hook)"),
        }
        Ok(key)
    }
}

async fn process(
    blobs: &dyn BlobStore,
    video: Option<&VideoTools>,
    blob: String,
    limits: MediaLimits,
    options: ThumbOptions,
) -> Result<NewMedia, ThumbError> {
    let bytes = blobs.get(&blob).await?.ok_or_else(|| {
        ThumbError::Unavailable(format!("blob {blob} vanished before it was processed"))
    })?;
    let size = bytes.len() as i64;
    let sniffed = wani_media::precheck(&bytes, &limits)?;
    let processed = if let wani_media::FileFormat::Video(_) = sniffed.format {
        let tools = video.ok_or(MediaError::VideoUnavailable)?;
        tools
            .process(&bytes, sniffed, &limits, &options)
            .await
            .map_err(|e| match e {
                VideoError::Media(m) => ThumbError::Media(m),
                VideoError::Unavailable(m) => ThumbError::Unavailable(m),
            })?
    } else {
        tokio::task::spawn_blocking(move || wani_media::process(&bytes, &limits, &options))
            .await
            .map_err(|e| ThumbError::Unavailable(format!("thumbnailer task failed: {e}")))??
    };
    let thumb_blob = blobs
        .put_typed(Bytes::from(processed.thumb), &processed.thumb_mimetype)
        .await?;
    Ok(NewMedia {
        blob,
        thumb_blob,
        mimetype: processed.mimetype,
        ext: processed.ext,
        is_animated: processed.is_animated,
        width: processed.width as i64,
        height: processed.height as i64,
        thumb_width: processed.thumb_width as i64,
        thumb_height: processed.thumb_height as i64,
        size_bytes: size,
        thumb_mimetype: processed.thumb_mimetype,
        duration_ms: processed.duration_ms as i64,
        frames: processed.frames as i64,
        // The node hashes the upload (MD5 beside the blob key) and knows its
        // name; the thumbnailer sees the stored bytes only.
        md5: None,
        file_name: None,
    })
}

/// A handle to the thumbnailer pool. Cheap to clone.
#[derive(Clone)]
pub struct Thumbnailer {
    pool: Pool<ThumbMsg>,
    video: Option<VideoTools>,
    video_elsewhere: bool,
    blobs: Arc<dyn BlobStore>,
    workers: usize,
    queue_limit: usize,
}

impl Thumbnailer {
    /// The thumbnailer of a node; with `here` (the `thumbnail` role) it
    /// runs `workers` workers (one per core is right: the work is CPU) with
    /// at most `queue_limit` jobs waiting (start it with
    /// [`Thumbnailer::child`]), else it sends jobs to a node with the role.
    /// `video` is what [`VideoTools::detect`] found (`None`: video is
    /// refused).
    pub fn new(
        transport: Transport,
        here: bool,
        blobs: Arc<dyn BlobStore>,
        video: Option<VideoTools>,
        workers: usize,
        queue_limit: usize,
    ) -> Thumbnailer {
        Thumbnailer {
            pool: Pool::new(transport, Role::Thumbnail, here, Duration::from_secs(60)),
            video,
            // A node without the role sends video elsewhere, where it is
            // assumed available; that node refuses it clearly if it is not.
            video_elsewhere: !here,
            blobs,
            workers,
            queue_limit,
        }
    }

    /// The pool, for the node's tree (none without the role).
    pub fn child(&self) -> Option<ChildSpec> {
        let (blobs, video) = (self.blobs.clone(), self.video.clone());
        #[cfg(debug_assertions)]
        let crash: Option<fn() -> ThumbMsg> = Some(|| ThumbMsg::Crash);
        #[cfg(not(debug_assertions))]
        let crash = None;
        self.pool.child(
            "thumbnailer",
            self.workers,
            Some(self.queue_limit),
            move |crashes| (ThumbWorker, BlobsArg(blobs.clone(), video.clone(), crashes)),
            crash,
        )
    }

    /// Checks the stored upload `blob` and makes its thumbnail, on this
    /// node's pool or on a node with the `thumbnail` role.
    pub async fn process(
        &self,
        blob: String,
        limits: MediaLimits,
        options: ThumbOptions,
    ) -> Result<NewMedia, ThumbError> {
        let job = |reply| ThumbMsg::Process {
            blob,
            limits,
            options,
            reply,
        };
        match self.pool.ask(job).await {
            Ok(r) => r,
            Err(PoolError::TimedOut) => {
                Err(ThumbError::Unavailable("the thumbnailer timed out".into()))
            }
            // A full queue drops the job, and with it the reply port.
            Err(PoolError::Dropped) => Err(ThumbError::Unavailable(
                "the thumbnailer is busy; try again in a moment".into(),
            )),
            Err(PoolError::NoNode) => Err(ThumbError::Unavailable(
                "no node with the thumbnail role is up".into(),
            )),
            Err(PoolError::Fault(f)) => Err(ThumbError::Unavailable(f.to_string())),
        }
    }

    /// Whether video uploads can be processed (ffmpeg was found).
    pub fn video_available(&self) -> bool {
        self.video.is_some() || self.video_elsewhere
    }

    /// Jobs waiting for a worker.
    pub async fn queue_depth(&self) -> usize {
        self.pool.queue_depth().await
    }

    /// Thumbnail workers that panicked (and were replaced) since start.
    pub fn worker_crashes(&self) -> u64 {
        self.pool.worker_crashes()
    }
}
