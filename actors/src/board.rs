//! BoardActor: one board's live threads in bump order, its catalog, and the
//! single writer of "which threads the board holds".
//!
//! New threads are created here, so pruning is decided on a consistent list:
//! a board over `max_threads` archives its least recently bumped threads (they
//! stay readable, leave the catalog, and their media is collected). Replies
//! are not written here; each thread's actor sends the board a fresh summary
//! after its writes ([`CatalogChange`], through the sink [`catalog_sink`]
//! makes), and the board re-sorts.

use crate::catalog::{CatalogChange, CatalogSink};
use crate::context::Shared;
use crate::error::ActorError;
use crate::region::{Activation, Entities, Entity, EntityMsg};
use crate::rules::{self, PostBody};
use crate::thread::{now_ms, resolve_quotes, PostDraft, ThreadMsg};
use crate::views::{CachedView, CatalogView, ViewCache};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wani_store::{
    Board, BoardId, Committed, NewPost, NewThread, Post, Thread, ThreadId, ThreadSummary,
};
use wani_supervision::transport::{Remote, Reply};

/// The board actor's mailbox. The timer is local-only and comes last
/// (serde numbers skipped variants differently on each side).
#[derive(Serialize, Deserialize)]
pub enum BoardMsg {
    /// Creates a thread with its opening post; answers once committed.
    CreateThread {
        subject: Option<String>,
        tags: Vec<String>,
        draft: Box<PostDraft>,
        reply: Reply<Result<Committed<(Thread, Post)>, ActorError>>,
    },
    /// Answers with a rendered view of the catalog.
    View {
        view: CatalogView,
        reply: Reply<Result<CachedView, ActorError>>,
    },
    /// Answers with the board and its `limit` most recently bumped threads.
    Latest {
        limit: usize,
        reply: Reply<(Board, Vec<ThreadSummary>)>,
    },
    /// Answers with the board's settings.
    Info { reply: Reply<Board> },
    /// A thread of this board changed, arrived or left (sent by its actor).
    Catalog(CatalogChange),
    /// The board's settings or threads changed in the store: reload them.
    Reload {
        reply: Reply<Result<(), ActorError>>,
    },
    /// Periodic check for passivation.
    #[serde(skip)]
    Tick,
    /// Panics inside the actor, to exercise supervision. Debug builds only.
    #[cfg(debug_assertions)]
    #[serde(skip)]
    Crash,
}
impl ractor::Message for BoardMsg {}
impl Remote for BoardMsg {
    const KIND: &'static str = crate::names::BOARD;
}
impl EntityMsg for BoardMsg {
    type Actor = BoardActor;
    type Id = BoardId;

    /// A thread arriving or leaving need not wake an inactive board: it
    /// loads its list from the store when activated. A changed thread
    /// does, off the thread's write path, so the catalog is warm.
    fn activates(&self) -> bool {
        !matches!(
            self,
            BoardMsg::Catalog(CatalogChange::Added(_) | CatalogChange::Removed(_))
        )
    }
}

/// The sink threads report to: each change goes to its board, wherever it
/// lives, in the order each thread sent them.
pub fn catalog_sink(entities: Entities) -> CatalogSink {
    Arc::new(move |board, change| entities.tell(board, BoardMsg::Catalog(change)))
}

/// The board actor's state.
pub struct BoardState {
    shared: Shared,
    entities: Entities,
    board: Board,
    /// Live threads, most recently bumped first.
    threads: Vec<ThreadSummary>,
    views: ViewCache<CatalogView>,
    last_active: Instant,
    fence: Option<wani_store::Fence>,
}

/// The board actor.
#[derive(Default)]
pub struct BoardActor;

impl Entity for BoardActor {
    type Cache = ViewCache<CatalogView>;
}

/// A view of a board's catalog: from its cache when the board is active on
/// this node, else by asking its actor wherever it lives.
pub async fn view(
    entities: &Entities,
    id: BoardId,
    view: CatalogView,
) -> Result<CachedView, ActorError> {
    if let Some(v) = entities.cached::<BoardMsg>(id).and_then(|c| c.get(view)) {
        return Ok(v);
    }
    entities
        .ask(id, |reply| BoardMsg::View { view, reply })
        .await?
}

async fn load(shared: &Shared, id: BoardId) -> Result<(Board, Vec<ThreadSummary>), ActorError> {
    // A thread an earlier activation was creating when it died may still
    // be queued: let it land first (see `Repo::settle`).
    shared.repo.settle(id.0).await?;
    let board = shared
        .repo
        .board(id)
        .await?
        .ok_or_else(|| ActorError::NotFound(format!("board {id} does not exist")))?;
    let threads = shared.repo.board_threads(id).await?;
    Ok((board, threads))
}

/// Catalog order: stickies first, then most recently bumped.
fn sort(threads: &mut [ThreadSummary]) {
    threads.sort_by(|a, b| {
        b.thread
            .sticky
            .cmp(&a.thread.sticky)
            .then_with(|| b.thread.last_updated.cmp(&a.thread.last_updated))
            .then_with(|| b.thread.id.cmp(&a.thread.id))
    });
}

impl BoardState {
    async fn create_thread(
        &mut self,
        subject: Option<String>,
        tags: Vec<String>,
        draft: PostDraft,
    ) -> Result<Committed<(Thread, Post)>, ActorError> {
        rules::check_thread_content(draft.media.is_some())?;
        let subject = rules::parse_subject(subject.as_deref())?;
        let body = PostBody::parse(&draft.body)?;
        let links = resolve_quotes(&self.shared, body.as_str(), |_| None).await?;
        let body_html = self
            .shared
            .renderer
            .render(body.as_str().to_string(), links.clone())
            .await?;
        let new = NewThread {
            board: self.board.id,
            subject,
            tags,
            op: NewPost {
                thread: ThreadId(0),
                body: body.into_string(),
                body_html,
                // Derived by the store once the thread id exists.
                poster: String::new(),
                ip: draft.ip,
                media: draft.media,
                spoiler: draft.spoiler,
                sage: false,
                quotes: links
                    .iter()
                    .filter(|(_, t)| t.is_some())
                    .map(|(p, _)| *p)
                    .collect(),
                idempotency_key: draft.idempotency_key,
                bump: true,
                now: now_ms(),
                fence: self.fence,
                author: draft.author,
            },
        };
        let committed = self.shared.repo.create_thread(new).await?;
        if let Committed::Created((thread, op)) = &committed {
            for (quoted, t) in &links {
                if let Some(t) = t {
                    self.entities.tell(
                        *t,
                        ThreadMsg::QuotedBy {
                            target: *quoted,
                            by: op.id,
                        },
                    );
                }
            }
            self.threads.insert(
                0,
                ThreadSummary {
                    thread: thread.clone(),
                    op: op.clone(),
                    num_replies: 0,
                    num_media: op.media.is_some() as i64,
                },
            );
            sort(&mut self.threads);
            if let Some(live) = &self.shared.live {
                live.publish(crate::live::Published::Post {
                    thread: thread.id,
                    board: self.board.id,
                    post: op.id,
                    quotes: links
                        .iter()
                        .filter_map(|(p, t)| t.map(|t| (*p, t)))
                        .collect(),
                    new_thread: true,
                });
            }
            self.prune().await;
            self.views.invalidate();
        }
        Ok(committed)
    }

    /// Archives the threads beyond `max_threads`. A failure leaves the
    /// thread live (a board one over its limit is harmless) and is retried
    /// by the next new thread.
    async fn prune(&mut self) {
        for victim in rules::prune_victims(&self.threads, self.board.max_threads) {
            match self.shared.repo.archive_thread(victim, self.fence).await {
                Ok(archived) => {
                    self.threads.retain(|t| t.thread.id != victim);
                    for blob in archived.orphaned_blobs {
                        if let Err(e) = self.shared.blobs.delete(&blob).await {
                            tracing::warn!(%blob, error = %e, "could not delete the media of an archived thread");
                        }
                    }
                    self.entities.tell(victim, ThreadMsg::Reload);
                    tracing::info!(board = %self.board.name, thread = %victim, "archived the least recently bumped thread");
                }
                Err(e) => {
                    tracing::warn!(thread = %victim, error = %e, "could not archive a thread")
                }
            }
        }
    }

    fn thread_changed(&mut self, summary: ThreadSummary) {
        let Some(slot) = self
            .threads
            .iter_mut()
            .find(|t| t.thread.id == summary.thread.id)
        else {
            // Archived meanwhile, or from another board: not in this catalog.
            return;
        };
        *slot = summary;
        sort(&mut self.threads);
        self.views.invalidate();
    }
}

impl Actor for BoardActor {
    type Msg = BoardMsg;
    type State = BoardState;
    type Arguments = Activation<ViewCache<CatalogView>>;

    async fn pre_start(
        &self,
        _myself: ActorRef<BoardMsg>,
        args: Self::Arguments,
    ) -> Result<BoardState, ActorProcessingErr> {
        let (board, threads) = load(&args.shared, BoardId(args.id)).await?;
        Ok(BoardState {
            shared: args.shared,
            entities: args.entities,
            board,
            threads,
            views: args.cache,
            last_active: Instant::now(),
            fence: args.fence,
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<BoardMsg>,
        state: &mut BoardState,
    ) -> Result<(), ActorProcessingErr> {
        let every = (state.shared.config.idle_timeout / 4).max(Duration::from_millis(50));
        myself.send_interval(every, || BoardMsg::Tick);
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<BoardMsg>,
        msg: BoardMsg,
        state: &mut BoardState,
    ) -> Result<(), ActorProcessingErr> {
        if !matches!(msg, BoardMsg::Tick) {
            state.last_active = Instant::now();
        }
        match msg {
            BoardMsg::CreateThread {
                subject,
                tags,
                draft,
                reply,
            } => {
                let result = state.create_thread(subject, tags, *draft).await;
                // Another node owns the board now: this activation is stale.
                let fenced = matches!(result, Err(ActorError::Fenced { .. }));
                reply.send(result);
                if fenced {
                    tracing::warn!(board = %state.board.id, "fenced off: another node owns this board now");
                    myself.stop(Some("fenced".into()));
                }
            }
            BoardMsg::View { view, reply } => {
                let (shared, board, threads) = (&state.shared, &state.board, &state.threads);
                let v = state
                    .views
                    .get_or_render(view, || shared.views.catalog(view, board, threads));
                reply.send(Ok(v));
            }
            BoardMsg::Latest { limit, reply } => {
                reply.send((
                    state.board.clone(),
                    state.threads.iter().take(limit).cloned().collect(),
                ));
            }
            BoardMsg::Info { reply } => {
                reply.send(state.board.clone());
            }
            BoardMsg::Catalog(CatalogChange::Changed(summary)) => state.thread_changed(*summary),
            BoardMsg::Catalog(CatalogChange::Added(summary)) => {
                let id = summary.thread.id;
                state.threads.retain(|t| t.thread.id != id);
                state.threads.push(*summary);
                sort(&mut state.threads);
                state.views.invalidate();
            }
            BoardMsg::Catalog(CatalogChange::Removed(id)) => {
                state.threads.retain(|t| t.thread.id != id);
                state.views.invalidate();
            }
            BoardMsg::Reload { reply } => {
                let r = load(&state.shared, state.board.id)
                    .await
                    .map(|(board, threads)| {
                        state.board = board;
                        state.threads = threads;
                        state.views.invalidate();
                    });
                reply.send(r);
            }
            BoardMsg::Tick => {
                if state.last_active.elapsed() >= state.shared.config.idle_timeout {
                    myself.stop(Some("idle".into()));
                }
            }
            #[cfg(debug_assertions)]
            BoardMsg::Crash => panic!("crash requested for board {} (test hook)", state.board.id),
        }
        Ok(())
    }
}
