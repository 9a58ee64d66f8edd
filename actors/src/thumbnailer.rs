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

use crate::error::ActorError;
use bytes::Bytes;
use ractor::factory::{
    queues, routing, worker_builder, DiscardMode, DiscardSettings, Factory, FactoryArguments,
    FactoryMessage, Job, Worker, WorkerId,
};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use std::sync::Arc;
use std::time::Duration;
use wani_media::video::{VideoError, VideoTools};
use wani_media::{self, MediaError, MediaLimits, ThumbOptions};
use wani_store::blob::BlobStore;
use wani_store::NewMedia;

/// Why a thumbnail job failed.
#[derive(Debug, thiserror::Error)]
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

/// A thumbnail job.
pub enum ThumbMsg {
    /// Checks the blob `blob` and makes its thumbnail.
    Process {
        blob: String,
        limits: MediaLimits,
        options: ThumbOptions,
        reply: RpcReplyPort<Result<NewMedia, ThumbError>>,
    },
}
impl ractor::Message for ThumbMsg {}

/// What each worker is handed at start: the blob store and the video tools.
pub struct BlobsArg(Arc<dyn BlobStore>, Option<VideoTools>);
impl ractor::Message for BlobsArg {}

/// A worker's state.
pub struct WorkerState {
    blobs: Arc<dyn BlobStore>,
    video: Option<VideoTools>,
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
        })
    }

    async fn handle(
        &self,
        _wid: WorkerId,
        _factory: &ActorRef<FactoryMessage<(), ThumbMsg>>,
        Job { msg, key, .. }: Job<(), ThumbMsg>,
        state: &mut WorkerState,
    ) -> Result<(), ActorProcessingErr> {
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
                let _ = reply.send(res);
            }
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
    let thumb_blob = blobs.put(Bytes::from(processed.thumb)).await?;
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
    })
}

/// A handle to the thumbnailer pool.
#[derive(Clone)]
pub struct Thumbnailer {
    /// This node's pool; `None` on a node without the `thumbnail` role,
    /// which sends its jobs to a node that has it.
    factory: Option<ActorRef<FactoryMessage<(), ThumbMsg>>>,
    timeout: Duration,
    video: bool,
    router: Arc<std::sync::OnceLock<Arc<crate::router::Router>>>,
}

impl Thumbnailer {
    /// Starts `workers` workers (one per core is right: the work is CPU) with
    /// at most `queue_limit` jobs waiting; `video` is what
    /// [`VideoTools::detect`] found (`None`: video is refused).
    pub async fn spawn(
        supervisor: Option<ractor::ActorCell>,
        blobs: Arc<dyn BlobStore>,
        video: Option<VideoTools>,
        workers: usize,
        queue_limit: usize,
    ) -> Result<(Thumbnailer, ractor::concurrency::JoinHandle<()>), ActorError> {
        let has_video = video.is_some();
        let args = FactoryArguments::builder()
            .worker_builder(Box::new(worker_builder(move |_wid| {
                (ThumbWorker, BlobsArg(blobs.clone(), video.clone()))
            })))
            .queue(queues::DefaultQueue::default())
            .router(routing::QueuerRouting::default())
            .num_initial_workers(workers.max(1))
            .discard_settings(DiscardSettings::Static {
                limit: queue_limit,
                mode: DiscardMode::Newest,
            })
            .build();
        let factory = Factory::<(), ThumbMsg, BlobsArg, ThumbWorker, _, _>::default();
        // Unregistered: several nodes may share one process (tests, benchmarks).
        let name = None;
        let spawned = match supervisor {
            Some(sup) => Actor::spawn_linked(name, factory, args, sup).await,
            None => Actor::spawn(name, factory, args).await,
        };
        let (factory, handle) =
            spawned.map_err(|e| ActorError::Unavailable(format!("thumbnailer: {e}")))?;
        Ok((
            Thumbnailer {
                factory: Some(factory),
                timeout: Duration::from_secs(60),
                video: has_video,
                router: Arc::default(),
            },
            handle,
        ))
    }

    /// Checks the stored upload `blob` and makes its thumbnail.
    pub async fn process(
        &self,
        blob: String,
        limits: MediaLimits,
        options: ThumbOptions,
    ) -> Result<NewMedia, ThumbError> {
        match (&self.factory, self.router.get()) {
            (Some(_), _) => self.process_here(blob, limits, options).await,
            (None, Some(router)) => router.thumbnail(blob, limits, options).await,
            (None, None) => Err(ThumbError::Unavailable(
                "this node has no thumbnail role and no cluster to ask".into(),
            )),
        }
    }

    /// A thumbnailer with no pool here: every job goes to a node with the
    /// `thumbnail` role (see [`Thumbnailer::set_router`]). Video is assumed
    /// available there; that node refuses it clearly if it is not.
    pub fn without_pool() -> Thumbnailer {
        Thumbnailer {
            factory: None,
            timeout: Duration::from_secs(60),
            video: true,
            router: Arc::default(),
        }
    }

    /// Lets a thumbnailer without a pool reach the cluster's thumbnail nodes.
    pub fn set_router(&self, router: Arc<crate::router::Router>) {
        let _ = self.router.set(router);
    }

    /// Processes on this node's pool.
    pub async fn process_here(
        &self,
        blob: String,
        limits: MediaLimits,
        options: ThumbOptions,
    ) -> Result<NewMedia, ThumbError> {
        let Some(factory) = &self.factory else {
            return Err(ThumbError::Unavailable(
                "this node has no thumbnail role".into(),
            ));
        };
        let res = factory
            .call_job(
                (),
                |reply| ThumbMsg::Process {
                    blob,
                    limits,
                    options,
                    reply,
                },
                Some(self.timeout),
            )
            .await
            .map_err(|e| ThumbError::Unavailable(format!("thumbnailer: {e}")))?;
        match res {
            ractor::rpc::CallResult::Success(r) => r,
            ractor::rpc::CallResult::Timeout => {
                Err(ThumbError::Unavailable("the thumbnailer timed out".into()))
            }
            // A full queue drops the job, and with it the reply port.
            ractor::rpc::CallResult::SenderError => Err(ThumbError::Unavailable(
                "the thumbnailer is busy; try again in a moment".into(),
            )),
        }
    }

    /// Whether video uploads can be processed (ffmpeg was found).
    pub fn video_available(&self) -> bool {
        self.video
    }

    /// Jobs waiting for a worker.
    pub async fn queue_depth(&self) -> usize {
        let Some(factory) = &self.factory else {
            return 0;
        };
        match factory.queue_depth(Some(Duration::from_secs(1))).await {
            Ok(ractor::rpc::CallResult::Success(n)) => n,
            _ => 0,
        }
    }

    pub fn stop(&self) {
        if let Some(f) = &self.factory {
            f.stop(None);
        }
    }
}
