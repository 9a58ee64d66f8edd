//! Entity messages as they cross nodes.
//!
//! Entity message types stay local (they carry ractor reply ports, which
//! cannot be serialised). To reach an entity owned by another node, a
//! message is split ([`ThreadMsg::split`], [`BoardMsg::split`]) into a
//! serialisable [`Request`] and a [`Completion`] that later feeds the
//! [`Answer`] into the original reply port. The owner turns the request back
//! into a local message with a fresh reply port ([`serve`]), so callers keep
//! writing `entities.call_thread(id, |reply| ThreadMsg::View { .. })`
//! wherever the thread lives.
//!
//! Requests and answers travel as bincode (serde) inside the versioned wire
//! envelope of `wani-supervision`; media bytes never do, only blob keys
//! inside [`wani_store::NewMedia`].

use crate::board::BoardMsg;
use crate::error::ActorError;
use crate::region::Entities;
use crate::thread::{PostDraft, Removed, ThreadMsg};
use crate::views::{CachedView, CatalogView, ThreadView};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use wani_store::{Board, BoardId, Committed, Post, PostId, Thread, ThreadId, ThreadSummary};

/// A request to an entity.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Request {
    Thread(ThreadId, ThreadOp),
    Board(BoardId, BoardOp),
}

/// The serialisable part of a [`ThreadMsg`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ThreadOp {
    CreatePost(PostDraft),
    View(ThreadView),
    GetPost(PostId),
    Summary,
    QuotedBy {
        target: PostId,
        by: PostId,
    },
    DeletePost(PostId),
    DeleteThread,
    SetFlags {
        sticky: Option<bool>,
        locked: Option<bool>,
    },
    SetSpoiler {
        id: PostId,
        spoiler: bool,
    },
    MoveTo(BoardId),
    Reload,
}

/// The serialisable part of a [`BoardMsg`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum BoardOp {
    CreateThread {
        subject: Option<String>,
        tags: Vec<String>,
        draft: PostDraft,
    },
    View(CatalogView),
    Latest(usize),
    Info,
    ThreadChanged(Box<ThreadSummary>),
    ThreadAdded(Box<ThreadSummary>),
    ThreadRemoved(ThreadId),
    Reload,
}

/// A rendered view on the wire.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WireView {
    pub content_type: String,
    pub body: Vec<u8>,
    pub etag: String,
}

/// The answer to a [`Request`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Answer {
    /// For one-way messages.
    Done,
    Post(Result<Committed<Post>, ActorError>),
    View(Result<WireView, ActorError>),
    MaybePost(Option<Post>),
    Summary(ThreadSummary),
    Removed(Result<Removed, ActorError>),
    Unit(Result<(), ActorError>),
    Thread(Result<Thread, ActorError>),
    Created(Result<Committed<(Thread, Post)>, ActorError>),
    Latest(Board, Vec<ThreadSummary>),
    Board(Board),
    /// The owner could not run the request at all.
    Failed(ActorError),
}

/// Feeds an [`Answer`] into the reply port of the message it was split
/// from. An answer of the wrong kind (or `Failed`) drops the port, which the
/// caller sees as "stopped before answering" and may retry.
pub type Completion = Box<dyn FnOnce(Answer) + Send>;

fn to_wire(v: Result<CachedView, ActorError>) -> Answer {
    Answer::View(v.map(|v| WireView {
        content_type: v.content_type.to_string(),
        body: v.body.to_vec(),
        etag: v.etag.to_string(),
    }))
}

/// The content types views are rendered with, so a view from the wire gets
/// its `&'static str` back.
fn known_content_type(s: &str) -> &'static str {
    match s {
        "application/json" => "application/json",
        "text/html; charset=utf-8" => "text/html; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn from_wire(v: WireView) -> CachedView {
    CachedView {
        content_type: known_content_type(&v.content_type),
        body: Bytes::from(v.body),
        etag: Arc::from(v.etag),
    }
}

macro_rules! complete {
    ($reply:ident, $pat:pat => $val:expr) => {
        Box::new(move |a: Answer| {
            if let $pat = a {
                let _ = $reply.send($val);
            }
        }) as Completion
    };
}

impl ThreadMsg {
    /// The request to send and how to complete this message's reply port;
    /// `None` for messages that only make sense locally (timers, test hooks).
    pub fn split(self) -> Option<(ThreadOp, Completion)> {
        let noop: Completion = Box::new(|_| {});
        Some(match self {
            ThreadMsg::CreatePost { draft, reply } => (
                ThreadOp::CreatePost(draft),
                complete!(reply, Answer::Post(r) => r),
            ),
            ThreadMsg::View { view, reply } => (
                ThreadOp::View(view),
                complete!(reply, Answer::View(r) => r.map(from_wire)),
            ),
            ThreadMsg::GetPost { id, reply } => (
                ThreadOp::GetPost(id),
                complete!(reply, Answer::MaybePost(p) => p),
            ),
            ThreadMsg::Summary { reply } => {
                (ThreadOp::Summary, complete!(reply, Answer::Summary(s) => s))
            }
            ThreadMsg::QuotedBy { target, by } => (ThreadOp::QuotedBy { target, by }, noop),
            ThreadMsg::DeletePost { id, reply } => (
                ThreadOp::DeletePost(id),
                complete!(reply, Answer::Removed(r) => r),
            ),
            ThreadMsg::DeleteThread { reply } => (
                ThreadOp::DeleteThread,
                complete!(reply, Answer::Unit(r) => r),
            ),
            ThreadMsg::SetFlags {
                sticky,
                locked,
                reply,
            } => (
                ThreadOp::SetFlags { sticky, locked },
                complete!(reply, Answer::Thread(r) => r),
            ),
            ThreadMsg::SetSpoiler { id, spoiler, reply } => (
                ThreadOp::SetSpoiler { id, spoiler },
                complete!(reply, Answer::Unit(r) => r),
            ),
            ThreadMsg::MoveTo { board, reply } => (
                ThreadOp::MoveTo(board),
                complete!(reply, Answer::Unit(r) => r),
            ),
            ThreadMsg::Reload => (ThreadOp::Reload, noop),
            ThreadMsg::Tick => return None,
            #[cfg(debug_assertions)]
            ThreadMsg::Crash => return None,
        })
    }
}

impl BoardMsg {
    /// The request to send and how to complete this message's reply port;
    /// `None` for messages that only make sense locally.
    pub fn split(self) -> Option<(BoardOp, Completion)> {
        let noop: Completion = Box::new(|_| {});
        Some(match self {
            BoardMsg::CreateThread {
                subject,
                tags,
                draft,
                reply,
            } => (
                BoardOp::CreateThread {
                    subject,
                    tags,
                    draft,
                },
                complete!(reply, Answer::Created(r) => r),
            ),
            BoardMsg::View { view, reply } => (
                BoardOp::View(view),
                complete!(reply, Answer::View(r) => r.map(from_wire)),
            ),
            BoardMsg::Latest { limit, reply } => (
                BoardOp::Latest(limit),
                complete!(reply, Answer::Latest(b, t) => (b, t)),
            ),
            BoardMsg::Info { reply } => (BoardOp::Info, complete!(reply, Answer::Board(b) => b)),
            BoardMsg::ThreadChanged(s) => (BoardOp::ThreadChanged(s), noop),
            BoardMsg::ThreadAdded(s) => (BoardOp::ThreadAdded(s), noop),
            BoardMsg::ThreadRemoved(t) => (BoardOp::ThreadRemoved(t), noop),
            BoardMsg::Reload { reply } => (BoardOp::Reload, complete!(reply, Answer::Unit(r) => r)),
            BoardMsg::Tick => return None,
        })
    }
}

/// Runs a request from another node on the entity here, and answers.
pub async fn serve(entities: &Entities, req: Request) -> Answer {
    let res = match req {
        Request::Thread(id, op) => serve_thread(entities, id, op).await,
        Request::Board(id, op) => serve_board(entities, id, op).await,
    };
    res.unwrap_or_else(Answer::Failed)
}

async fn serve_thread(e: &Entities, id: ThreadId, op: ThreadOp) -> Result<Answer, ActorError> {
    Ok(match op {
        ThreadOp::CreatePost(draft) => Answer::Post(
            e.call_thread_here(id, |reply| ThreadMsg::CreatePost {
                draft: draft.clone(),
                reply,
            })
            .await?,
        ),
        ThreadOp::View(view) => to_wire(
            e.call_thread_here(id, |reply| ThreadMsg::View { view, reply })
                .await?,
        ),
        ThreadOp::GetPost(pid) => Answer::MaybePost(
            e.call_thread_here(id, |reply| ThreadMsg::GetPost { id: pid, reply })
                .await?,
        ),
        ThreadOp::Summary => Answer::Summary(
            e.call_thread_here(id, |reply| ThreadMsg::Summary { reply })
                .await?,
        ),
        ThreadOp::QuotedBy { target, by } => {
            e.tell_thread_if_active(id, ThreadMsg::QuotedBy { target, by });
            Answer::Done
        }
        ThreadOp::DeletePost(pid) => Answer::Removed(
            e.call_thread_here(id, |reply| ThreadMsg::DeletePost { id: pid, reply })
                .await?,
        ),
        ThreadOp::DeleteThread => Answer::Unit(
            e.call_thread_here(id, |reply| ThreadMsg::DeleteThread { reply })
                .await?,
        ),
        ThreadOp::SetFlags { sticky, locked } => Answer::Thread(
            e.call_thread_here(id, |reply| ThreadMsg::SetFlags {
                sticky,
                locked,
                reply,
            })
            .await?,
        ),
        ThreadOp::SetSpoiler { id: pid, spoiler } => Answer::Unit(
            e.call_thread_here(id, |reply| ThreadMsg::SetSpoiler {
                id: pid,
                spoiler,
                reply,
            })
            .await?,
        ),
        ThreadOp::MoveTo(board) => Answer::Unit(
            e.call_thread_here(id, |reply| ThreadMsg::MoveTo { board, reply })
                .await?,
        ),
        ThreadOp::Reload => {
            e.tell_thread_if_active(id, ThreadMsg::Reload);
            Answer::Done
        }
    })
}

async fn serve_board(e: &Entities, id: BoardId, op: BoardOp) -> Result<Answer, ActorError> {
    Ok(match op {
        BoardOp::CreateThread {
            subject,
            tags,
            draft,
        } => Answer::Created(
            e.call_board_here(id, |reply| BoardMsg::CreateThread {
                subject: subject.clone(),
                tags: tags.clone(),
                draft: draft.clone(),
                reply,
            })
            .await?,
        ),
        BoardOp::View(view) => to_wire(
            e.call_board_here(id, |reply| BoardMsg::View { view, reply })
                .await?,
        ),
        BoardOp::Latest(limit) => {
            let (b, t) = e
                .call_board_here(id, |reply| BoardMsg::Latest { limit, reply })
                .await?;
            Answer::Latest(b, t)
        }
        BoardOp::Info => Answer::Board(
            e.call_board_here(id, |reply| BoardMsg::Info { reply })
                .await?,
        ),
        BoardOp::ThreadChanged(s) => {
            e.tell_board_here(id, BoardMsg::ThreadChanged(s)).await?;
            Answer::Done
        }
        BoardOp::ThreadAdded(s) => {
            e.tell_board_here(id, BoardMsg::ThreadAdded(s)).await?;
            Answer::Done
        }
        BoardOp::ThreadRemoved(t) => {
            e.tell_board_here(id, BoardMsg::ThreadRemoved(t)).await?;
            Answer::Done
        }
        BoardOp::Reload => Answer::Unit(
            e.call_board_here(id, |reply| BoardMsg::Reload { reply })
                .await?,
        ),
    })
}

/// Encodes a request or answer for the wire.
pub fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, ActorError> {
    bincode::serde::encode_to_vec(v, bincode::config::standard())
        .map_err(|e| ActorError::Unavailable(format!("could not encode a cluster message: {e}")))
}

/// The largest answer accepted, joined from its parts: a thread's view at
/// its bump limit is a few MiB.
pub const MAX_ANSWER: usize = 64 << 20;

/// Decodes a request or answer from the wire; a broken payload is an error.
pub fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ActorError> {
    let config = bincode::config::standard().with_limit::<MAX_ANSWER>();
    bincode::serde::decode_from_slice(bytes, config)
        .map(|(v, _)| v)
        .map_err(|e| ActorError::Unavailable(format!("could not decode a cluster message: {e}")))
}
