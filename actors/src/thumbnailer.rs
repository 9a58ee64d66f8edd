//! ThumbnailerPool: blob key → checked media and a thumbnail, on a bounded pool.
//!
//! The HTTP layer stores an upload's bytes under their content hash and
//! sends only the key: media bytes never travel in actor messages. A worker
//! reads the blob, runs [`crate::media::process`] (type from the bytes,
//! pixel limit before decoding, full decode, thumbnail) on the blocking
//! thread pool so the async threads keep serving, stores the thumbnail, and
//! answers with the [`NewMedia`] record to commit.
//!
//! The queue is bounded: beyond `queue_limit` waiting jobs a new job is
//! refused at once (the caller answers "busy, try again") instead of letting
//! a burst of uploads hold unbounded memory.

use crate::error::ActorError;
use crate::media::{self, MediaError, MediaLimits, ThumbOptions};
use bytes::Bytes;
use ractor::factory::{
    queues, routing, worker_builder, DiscardMode, DiscardSettings, Factory, FactoryArguments,
    FactoryMessage, Job, Worker, WorkerId,
};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use std::sync::Arc;
use std::time::Duration;
use wani_store::blob::BlobStore;
use wani_store::NewMedia;

/// Why a thumbnail job failed.
#[derive(Debug, thiserror::Error)]
pub enum ThumbError {
    /// The file itself is refused (type, size, pixels, corrupt); tell the user.
    #[error(transparent)]
    Media(#[from] MediaError),
    /// The pool or the blob store could not do the work now.
    #[error("{0}")]
    Unavailable(String),
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

/// The blob store handed to each worker at start.
pub struct BlobsArg(Arc<dyn BlobStore>);
impl ractor::Message for BlobsArg {}

/// One worker of the pool.
pub struct ThumbWorker;

impl Worker for ThumbWorker {
    type Key = ();
    type Message = ThumbMsg;
    type Arguments = BlobsArg;
    type State = Arc<dyn BlobStore>;

    async fn pre_start(
        &self,
        _wid: WorkerId,
        _factory: &ActorRef<FactoryMessage<(), ThumbMsg>>,
        args: BlobsArg,
    ) -> Result<Arc<dyn BlobStore>, ActorProcessingErr> {
        Ok(args.0)
    }

    async fn handle(
        &self,
        _wid: WorkerId,
        _factory: &ActorRef<FactoryMessage<(), ThumbMsg>>,
        Job { msg, key, .. }: Job<(), ThumbMsg>,
        blobs: &mut Arc<dyn BlobStore>,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ThumbMsg::Process {
                blob,
                limits,
                options,
                reply,
            } => {
                let _ = reply.send(process(blobs.as_ref(), blob, limits, options).await);
            }
        }
        Ok(key)
    }
}

async fn process(
    blobs: &dyn BlobStore,
    blob: String,
    limits: MediaLimits,
    options: ThumbOptions,
) -> Result<NewMedia, ThumbError> {
    let bytes = blobs
        .get(&blob)
        .await
        .map_err(|e| ThumbError::Unavailable(format!("blob store: {e}")))?
        .ok_or_else(|| {
            ThumbError::Unavailable(format!("blob {blob} vanished before it was processed"))
        })?;
    let size = bytes.len() as i64;
    let processed = tokio::task::spawn_blocking(move || media::process(&bytes, &limits, &options))
        .await
        .map_err(|e| ThumbError::Unavailable(format!("thumbnailer task failed: {e}")))??;
    let thumb_blob = blobs
        .put(Bytes::from(processed.thumb))
        .await
        .map_err(|e| ThumbError::Unavailable(format!("blob store: {e}")))?;
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
    })
}

/// A handle to the thumbnailer pool.
#[derive(Clone)]
pub struct Thumbnailer {
    factory: ActorRef<FactoryMessage<(), ThumbMsg>>,
    timeout: Duration,
}

impl Thumbnailer {
    /// Starts `workers` workers (one per core is right: the work is CPU) with
    /// at most `queue_limit` jobs waiting.
    pub async fn spawn(
        supervisor: Option<ractor::ActorCell>,
        blobs: Arc<dyn BlobStore>,
        workers: usize,
        queue_limit: usize,
    ) -> Result<(Thumbnailer, ractor::concurrency::JoinHandle<()>), ActorError> {
        let args = FactoryArguments::builder()
            .worker_builder(Box::new(worker_builder(move |_wid| {
                (ThumbWorker, BlobsArg(blobs.clone()))
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
                factory,
                timeout: Duration::from_secs(60),
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
        let res = self
            .factory
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

    /// Jobs waiting for a worker.
    pub async fn queue_depth(&self) -> usize {
        match self.factory.queue_depth(Some(Duration::from_secs(1))).await {
            Ok(ractor::rpc::CallResult::Success(n)) => n,
            _ => 0,
        }
    }

    pub fn stop(&self) {
        self.factory.stop(None);
    }
}
