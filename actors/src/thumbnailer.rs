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
use ractor::{Actor, ActorProcessingErr, ActorRef};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use wani_media::video::{VideoError, VideoTools};
use wani_media::{self, MediaError, MediaLimits, ThumbOptions};
use wani_store::blob::BlobStore;
use wani_store::NewMedia;
use wani_supervision::transport::{delivered, Fault, NoReply, Remote, Reply, Transport};
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

/// A thumbnail job.
#[derive(Serialize, Deserialize)]
pub enum ThumbMsg {
    /// Checks the blob `blob` and makes its thumbnail.
    Process {
        blob: String,
        limits: MediaLimits,
        options: ThumbOptions,
        reply: Reply<Result<NewMedia, ThumbError>>,
    },
}
impl ractor::Message for ThumbMsg {}
impl Remote for ThumbMsg {
    const KIND: &'static str = "thumbnail";
}

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
                reply.send(res);
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
    transport: Transport,
    /// Whose turn it is among the thumbnail nodes.
    turn: Arc<AtomicU64>,
}

impl Thumbnailer {
    /// Starts `workers` workers (one per core is right: the work is CPU) with
    /// at most `queue_limit` jobs waiting, and takes jobs from other nodes;
    /// `video` is what [`VideoTools::detect`] found (`None`: video is refused).
    pub async fn spawn(
        supervisor: Option<ractor::ActorCell>,
        blobs: Arc<dyn BlobStore>,
        video: Option<VideoTools>,
        workers: usize,
        queue_limit: usize,
        transport: Transport,
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
        let pool = factory.clone();
        transport.serve::<ThumbMsg>(move |_, msg| {
            delivered(
                pool.cast(FactoryMessage::Dispatch(Job::new((), msg)))
                    .map_err(|e| Fault::Unavailable(format!("thumbnailer: {e}"))),
            )
        });
        Ok((
            Thumbnailer {
                factory: Some(factory),
                timeout: Duration::from_secs(60),
                video: has_video,
                transport,
                turn: Arc::default(),
            },
            handle,
        ))
    }

    /// A thumbnailer with no pool here: every job goes to a node with the
    /// `thumbnail` role, through `transport`. Video is assumed available
    /// there; that node refuses it clearly if it is not.
    pub fn without_pool(transport: Transport) -> Thumbnailer {
        Thumbnailer {
            factory: None,
            timeout: Duration::from_secs(60),
            video: true,
            transport,
            turn: Arc::default(),
        }
    }

    /// Checks the stored upload `blob` and makes its thumbnail, on this
    /// node's pool or on a node with the `thumbnail` role.
    pub async fn process(
        &self,
        blob: String,
        limits: MediaLimits,
        options: ThumbOptions,
    ) -> Result<NewMedia, ThumbError> {
        let msg = |reply| ThumbMsg::Process {
            blob,
            limits,
            options,
            reply,
        };
        if let Some(factory) = &self.factory {
            let (reply, wait) = Reply::local();
            factory
                .cast(FactoryMessage::Dispatch(Job::new((), msg(reply))))
                .map_err(|e| ThumbError::Unavailable(format!("thumbnailer: {e}")))?;
            return match wait.wait(self.timeout).await {
                Ok(r) => r,
                Err(NoReply::TimedOut) => {
                    Err(ThumbError::Unavailable("the thumbnailer timed out".into()))
                }
                // A full queue drops the job, and with it the reply port.
                Err(NoReply::Dropped) => Err(ThumbError::Unavailable(
                    "the thumbnailer is busy; try again in a moment".into(),
                )),
            };
        }
        let turn = self.turn.fetch_add(1, Ordering::Relaxed);
        let node = self
            .transport
            .cluster()
            .and_then(|c| c.pick(Role::Thumbnail, turn))
            .ok_or_else(|| {
                ThumbError::Unavailable("no node with the thumbnail role is up".into())
            })?;
        self.transport
            .ask(&node, 0, msg)
            .await
            .map_err(|f| ThumbError::Unavailable(f.to_string()))?
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
