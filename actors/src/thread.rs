//! ThreadActor: the single writer of one thread's posts, and its read cache.
//!
//! Every reply to a thread goes through its actor, one at a time, so the
//! bump rule ("not if the same poster wrote the previous post") and reply
//! lists are decided on a consistent view without locks. The store is the
//! truth: the actor loads the thread in `pre_start`, applies a post to its
//! memory only after the store committed it, and can be dropped at any time
//! (idle passivation, a panic) and rebuilt from the store.
//!
//! A hot thread does not wait for one commit per reply. The actor checks a
//! reply, queues it in the store and goes on to the next one in its
//! mailbox, deciding each as if the ones queued before it were written
//! (the bump rule sees them). A small task beside the actor waits for the
//! commits, in order, and nudges it (`Flush`) as they come in; the actor
//! then applies each committed reply to memory and only then answers its
//! poster. So the actor checks the next replies while the store commits
//! the last ones, instead of the two taking turns. The store's writer puts
//! the queued replies in one transaction, so ids follow the mailbox order,
//! and a reply refused at commit fails alone. Any other command first
//! waits for what is queued to land, so it sees every earlier reply.
//!
//! Reads are served from [`ViewCache`]: rendered once per change, with an ETag.
//!
//! After a write the actor tells its board (a [`CatalogChange`] through the
//! catalog sink) and the active threads holding posts it quoted (their
//! "Replies:" lists).
//!
//! Every variant of [`ThreadMsg`] but the timer and the test hook can be
//! sent from any node (`Entities::ask`/`tell` route it to the owner); a new
//! command is a variant here and its arm in `handle`.
//!
//! Moderation (deleting posts or the thread, sticky, lock, move, spoiler)
//! goes through this actor too, in `thread/moderation.rs`, so each action
//! is applied once, after the store committed it, and the cached views are
//! dropped in the same step.

mod moderation;

pub use moderation::Removed;

use crate::catalog::CatalogChange;
use crate::context::Shared;
use crate::error::ActorError;
use crate::markup;
use crate::region::{Activation, Entities, Entity, EntityMsg};
use crate::renderer::QuoteLinks;
use crate::rules::{self, BumpInput, PostBody};
use crate::views::{CachedView, ThreadView, ViewCache};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
use wani_store::{
    poster_hex, Author, Board, BoardId, Committed, Fence, Landing, ModBy, NewMedia, NewPost, Post,
    PostId, StoreError, Thread, ThreadFull, ThreadId, ThreadSummary,
};
use wani_supervision::transport::{Remote, Reply};

/// A post as submitted, before the actor decides its poster id and bump.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct PostDraft {
    pub body: String,
    /// The client address (for the poster id and moderation; never served).
    pub ip: String,
    /// The upload, already checked and stored by the thumbnailer.
    pub media: Option<NewMedia>,
    pub spoiler: bool,
    pub sage: bool,
    /// Unique per submission; a retry with the same key is answered with the
    /// post stored the first time.
    pub idempotency_key: String,
    /// Who signs the post (anonymous, tripcode, or a slip with its badge).
    pub author: Author,
    /// Posted by a moderator of this board: may reply to a locked thread.
    pub privileged: bool,
}

/// The thread actor's mailbox. The timer and the test hook are local-only
/// and come last (serde numbers skipped variants differently on each side).
#[derive(Serialize, Deserialize)]
pub enum ThreadMsg {
    /// Adds a reply; answers once it is committed.
    CreatePost {
        draft: Box<PostDraft>,
        reply: Reply<Result<Committed<Post>, ActorError>>,
    },
    /// Answers with a rendered view of the thread.
    View {
        view: ThreadView,
        reply: Reply<Result<CachedView, ActorError>>,
    },
    /// Answers with one post of this thread, if it has it.
    GetPost {
        id: PostId,
        reply: Reply<Option<Post>>,
    },
    /// Answers with the catalog summary of the thread.
    Summary { reply: Reply<ThreadSummary> },
    /// A post (in this or another thread) quoted one of ours.
    QuotedBy { target: PostId, by: PostId },
    /// Deletes a post with its media; the opening post deletes the thread.
    /// Moderation messages carry who does it and why (`by`): the log entry
    /// is written with the change, in one transaction.
    DeletePost {
        id: PostId,
        by: Option<ModBy>,
        reply: Reply<Result<Removed, ActorError>>,
    },
    /// Deletes the whole thread; the actor stops afterwards.
    DeleteThread {
        by: Option<ModBy>,
        reply: Reply<Result<(), ActorError>>,
    },
    /// Sets the sticky and/or locked flags (`None` keeps a flag); answers
    /// with the thread row as it is now.
    SetFlags {
        sticky: Option<bool>,
        locked: Option<bool>,
        by: Option<ModBy>,
        reply: Reply<Result<Thread, ActorError>>,
    },
    /// Sets the spoiler flag of one post's media.
    SetSpoiler {
        id: PostId,
        spoiler: bool,
        by: Option<ModBy>,
        reply: Reply<Result<(), ActorError>>,
    },
    /// Moves the thread to another board.
    MoveTo {
        board: BoardId,
        by: Option<ModBy>,
        reply: Reply<Result<(), ActorError>>,
    },
    /// Deletes one post's file and keeps the post (marked `file_deleted`).
    DeleteFile {
        id: PostId,
        by: Option<ModBy>,
        reply: Reply<Result<(), ActorError>>,
    },
    /// The stored thread changed behind the actor's back (archived): reload it.
    Reload,
    /// Answers with the thread's row (its board, flags, bump time): for a
    /// caller that needs no post, cheaper than `Summary`, which copies the
    /// opening post with its list of replies.
    Head { reply: Reply<Thread> },
    /// Periodic check for passivation.
    #[serde(skip)]
    Tick,
    /// Commits of queued replies are in: apply them and answer their
    /// posters.
    #[serde(skip)]
    Flush,
    /// Panics inside the actor, to exercise supervision. Debug builds only.
    #[cfg(debug_assertions)]
    #[serde(skip)]
    Crash,
}
impl ractor::Message for ThreadMsg {}
impl Remote for ThreadMsg {
    const KIND: &'static str = crate::names::THREAD;
}
impl EntityMsg for ThreadMsg {
    type Actor = ThreadActor;
    type Id = ThreadId;

    /// Notices about what an activation loads from the store anyway do not
    /// wake an inactive thread.
    fn activates(&self) -> bool {
        !matches!(self, ThreadMsg::QuotedBy { .. } | ThreadMsg::Reload)
    }
}

/// The thread actor's state.
pub struct ThreadState {
    shared: Shared,
    entities: Entities,
    board: Board,
    full: ThreadFull,
    /// Position of each post in `full.posts`.
    index: HashMap<PostId, usize>,
    num_media: i64,
    views: ViewCache<ThreadView>,
    last_active: Instant,
    /// Every write carries it; a write refused as fenced means another node
    /// owns the thread now, and this activation stops.
    fence: Option<Fence>,
    fenced: bool,
    /// Replies queued in the store and not yet answered, oldest first;
    /// their commits arrive through `landings` in the same order.
    pending: VecDeque<Pending>,
    /// `None` only while `reload` rebuilds the state.
    landings: Option<Landings>,
}

/// A reply queued in the store, with what applying it needs.
struct Pending {
    links: QuoteLinks,
    bump: bool,
    poster: String,
    reply: Reply<Result<Committed<Post>, ActorError>>,
}

/// The commits of queued replies, awaited off the actor by a task that
/// owns their [`Landing`]s and hands back each outcome in queue order.
struct Landings {
    queued: mpsc::UnboundedSender<Landing<Committed<Post>>>,
    landed: mpsc::UnboundedReceiver<Result<Committed<Post>, StoreError>>,
    /// A `Flush` is in the mailbox: the task sends at most one at a time,
    /// and the actor clears this before taking what has landed, so a
    /// commit that lands meanwhile sends the next one.
    nudged: Arc<AtomicBool>,
}

impl Landings {
    /// Starts the task; it ends once the actor's state is dropped and the
    /// writes it was given have answered (they commit regardless).
    fn spawn(actor: ActorRef<ThreadMsg>) -> Landings {
        let (queued, mut waiting) = mpsc::unbounded_channel::<Landing<Committed<Post>>>();
        let (done, landed) = mpsc::unbounded_channel();
        let nudged = Arc::new(AtomicBool::new(false));
        let flag = nudged.clone();
        tokio::spawn(async move {
            while let Some(landing) = waiting.recv().await {
                if done.send(landing.await).is_err() {
                    return;
                }
                if !flag.swap(true, Ordering::AcqRel) {
                    let _ = actor.send_message(ThreadMsg::Flush);
                }
            }
        });
        Landings {
            queued,
            landed,
            nudged,
        }
    }
}

/// The answer for a reply whose commit can no longer be awaited: the task
/// awaiting them panicked (it outlives the state otherwise).
fn watcher_stopped() -> StoreError {
    StoreError::Unavailable("the thread's commit watcher stopped".into())
}

/// The thread actor.
#[derive(Default)]
pub struct ThreadActor;

impl Entity for ThreadActor {
    type Cache = ViewCache<ThreadView>;
}

/// A view of a thread: straight from its cache when the thread is active
/// on this node and the view is rendered, else by asking its actor
/// (wherever it lives), which renders and caches it.
pub async fn view(
    entities: &Entities,
    id: ThreadId,
    view: ThreadView,
) -> Result<CachedView, ActorError> {
    if let Some(v) = entities.cached::<ThreadMsg>(id).and_then(|c| c.get(view)) {
        return Ok(v);
    }
    entities
        .ask(id, |reply| ThreadMsg::View { view, reply })
        .await?
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

async fn load(shared: &Shared, id: ThreadId) -> Result<(Board, ThreadFull), ActorError> {
    // A reply an earlier activation was writing when it died (its region
    // restarted, say) may still be queued and commit after this load: it
    // would then sit before posts this activation writes, and readers
    // would have been served the thread without it. Let it land first.
    shared.repo.settle(id.0).await?;
    let full = shared
        .repo
        .thread(id)
        .await?
        .ok_or_else(|| ActorError::NotFound(format!("thread {id} does not exist")))?;
    let board = shared
        .boards
        .get(shared.repo.as_ref(), full.thread.board)
        .await?
        .ok_or_else(|| {
            ActorError::NotFound(format!("board {} does not exist", full.thread.board))
        })?;
    Ok((board, full))
}

/// Where each post quoted in `body` lives: this thread's own posts are known
/// here, posts quoted in the last second are in the node's
/// [`PostHomes`](crate::context::PostHomes); the rest are asked of the
/// store in one query.
pub(crate) async fn resolve_quotes(
    shared: &Shared,
    body: &str,
    local: impl Fn(PostId) -> Option<ThreadId>,
) -> Result<QuoteLinks, ActorError> {
    let ids = markup::quoted_ids(body);
    let known = |id: PostId| local(id).or_else(|| shared.post_homes.get(id));
    let missing: Vec<PostId> = ids
        .iter()
        .copied()
        .filter(|id| known(*id).is_none())
        .collect();
    let found = if missing.is_empty() {
        HashMap::new()
    } else {
        let found = shared.repo.threads_of_posts(&missing).await?;
        shared.post_homes.remember(&found);
        found
    };
    Ok(ids
        .into_iter()
        .map(|id| (id, known(id).or_else(|| found.get(&id).copied())))
        .collect())
}

impl ThreadState {
    fn new(shared: Shared, entities: Entities, board: Board, full: ThreadFull) -> ThreadState {
        let index = full
            .posts
            .iter()
            .enumerate()
            .map(|(i, p)| (p.id, i))
            .collect();
        let num_media = full.posts.iter().filter(|p| p.media.is_some()).count() as i64;
        ThreadState {
            shared,
            entities,
            board,
            full,
            index,
            num_media,
            views: ViewCache::default(),
            last_active: Instant::now(),
            fence: None,
            fenced: false,
            pending: VecDeque::new(),
            landings: None,
        }
    }

    fn id(&self) -> ThreadId {
        self.full.thread.id
    }

    fn summary(&self) -> Option<ThreadSummary> {
        let op = self.full.posts.first()?.clone();
        Some(ThreadSummary {
            thread: self.full.thread.clone(),
            op,
            num_replies: self.full.posts.len() as i64 - 1,
            num_media: self.num_media,
        })
    }

    /// Checks a reply and queues it in the store; it is answered when it
    /// lands (see [`ThreadState::land`]), or now if refused.
    async fn queue_post(
        &mut self,
        draft: PostDraft,
        reply: Reply<Result<Committed<Post>, ActorError>>,
    ) {
        match self.check_post(draft).await {
            Ok((new, links)) => {
                let (bump, poster) = (new.bump, new.poster.clone());
                let Some(landings) = &self.landings else {
                    return reply.send(Err(ActorError::Unavailable(
                        "the thread is reloading".into(),
                    )));
                };
                match self.shared.repo.queue_post(new).await {
                    Ok(landing) => {
                        if landings.queued.send(landing).is_err() {
                            return reply.send(Err(watcher_stopped().into()));
                        }
                        self.pending.push_back(Pending {
                            links,
                            bump,
                            poster,
                            reply,
                        })
                    }
                    Err(e) => reply.send(Err(e.into())),
                }
            }
            Err(e) => reply.send(Err(e)),
        }
    }

    /// Applies the thread's rules to a reply, as if every reply queued
    /// before it were written, and makes the row to store.
    async fn check_post(&mut self, draft: PostDraft) -> Result<(NewPost, QuoteLinks), ActorError> {
        if self.full.thread.archived {
            return Err(ActorError::Conflict(
                "this thread is archived and takes no more replies".into(),
            ));
        }
        if self.full.thread.locked && !draft.privileged {
            return Err(ActorError::Conflict(
                "this thread is locked: only moderators may reply".into(),
            ));
        }
        let body = PostBody::parse(&draft.body)?;
        rules::check_reply_content(&body, draft.media.is_some())?;
        let me = self.id();
        let links = resolve_quotes(&self.shared, body.as_str(), |p| {
            self.index.contains_key(&p).then_some(me)
        })
        .await?;
        self.learn_quoted_ops(&links).await;
        let body_html = self
            .shared
            .renderer
            .render(body.as_str().to_string(), links.clone())
            .await?;
        let poster = poster_hex(&self.shared.poster_secret, me, &draft.ip);
        let last_poster = match self.pending.back() {
            Some(p) => p.poster.as_str(),
            None => self
                .full
                .posts
                .last()
                .map(|p| p.poster.as_str())
                .unwrap_or(""),
        };
        let bump = rules::bumps(BumpInput {
            previous_poster: last_poster,
            poster: &poster,
            sage: draft.sage,
            replies_before: (self.full.posts.len() + self.pending.len()) as i64 - 1,
            bump_limit: self.board.bump_limit,
        });
        let new = NewPost {
            thread: me,
            body: body.into_string(),
            body_html,
            poster,
            ip: draft.ip,
            media: draft.media,
            spoiler: draft.spoiler,
            sage: draft.sage,
            quotes: links
                .iter()
                .filter(|(_, t)| t.is_some())
                .map(|(p, _)| *p)
                .collect(),
            idempotency_key: draft.idempotency_key,
            bump,
            now: now_ms(),
            fence: self.fence,
            author: draft.author,
        };
        Ok((new, links))
    }

    /// Waits for every queued reply to commit, in the order queued, applies
    /// each to memory and answers its poster.
    async fn land(&mut self) {
        self.take_landed(true).await;
    }

    /// Applies and answers the queued replies whose commits are in (the
    /// oldest first), or, with `wait`, every queued reply.
    async fn take_landed(&mut self, wait: bool) {
        if let Some(l) = &self.landings {
            l.nudged.store(false, Ordering::Release);
        }
        let mut changed = false;
        while !self.pending.is_empty() {
            let Some(landings) = &mut self.landings else {
                break;
            };
            let committed = if wait {
                landings.landed.recv().await
            } else {
                match landings.landed.try_recv() {
                    Ok(c) => Some(c),
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => None,
                }
            };
            let committed = committed.unwrap_or_else(|| Err(watcher_stopped()));
            let Some(p) = self.pending.pop_front() else {
                break;
            };
            let result = self.landed(committed, &p.links, p.bump).await;
            changed |= matches!(result, Ok(Committed::Created(_)));
            // Nothing was stored, and another node owns the thread now:
            // this activation is stale, and the caller routes again.
            self.fenced |= matches!(result, Err(ActorError::Fenced { .. }));
            p.reply.send(result);
        }
        // Once for all the replies landed: the summary copies the opening
        // post, whose list of replies is what grows in a hot thread.
        if changed {
            self.tell_board();
        }
    }

    async fn landed(
        &mut self,
        committed: Result<Committed<Post>, StoreError>,
        links: &QuoteLinks,
        bump: bool,
    ) -> Result<Committed<Post>, ActorError> {
        let committed = committed?;
        match &committed {
            Committed::Created(post) => self.apply(post, links, bump),
            // A retry of a post that an earlier activation of this thread
            // committed after this one loaded (its answer was lost when
            // that activation died mid-write, e.g. its region restarting):
            // memory is behind the store, so reload it, and tell live
            // subscribers, who never heard of the post.
            Committed::Replayed(post) if !self.index.contains_key(&post.id) => {
                self.reload().await?;
                self.tell_board();
                self.publish_post(post, links);
            }
            Committed::Replayed(_) => {}
        }
        Ok(committed)
    }

    /// Learns the opening post of each other thread `links` quotes that the
    /// thread did not know (the 4chan API links to threads by it). Best
    /// effort: without it the API links to the quoted post's own number,
    /// which leads to the same thread.
    async fn learn_quoted_ops(&mut self, links: &QuoteLinks) {
        let me = self.id();
        let known = &self.full.quoted_ops;
        let mut unknown: Vec<ThreadId> = links
            .iter()
            .filter_map(|(_, t)| *t)
            .filter(|t| *t != me && !known.iter().any(|(k, _)| k == t))
            .collect();
        unknown.dedup();
        if unknown.is_empty() {
            return;
        }
        match self.shared.repo.thread_ops(&unknown).await {
            Ok(ops) => self.full.quoted_ops.extend(ops),
            Err(e) => tracing::debug!(error = %e, "opening posts of quoted threads not found"),
        }
    }

    /// Reloads the thread from the store, keeping the fence and the readers'
    /// cache handle (emptied).
    async fn reload(&mut self) -> Result<(), ActorError> {
        let (board, full) = load(&self.shared, self.id()).await?;
        let (fence, mut views) = (self.fence, self.views.clone());
        let pending = std::mem::take(&mut self.pending);
        let landings = self.landings.take();
        *self = ThreadState::new(self.shared.clone(), self.entities.clone(), board, full);
        self.fence = fence;
        views.invalidate();
        self.views = views;
        self.pending = pending;
        self.landings = landings;
        Ok(())
    }

    /// Applies a committed post to memory and tells whoever must know (the
    /// board after the batch, see [`ThreadState::land`]).
    fn apply(&mut self, post: &Post, links: &QuoteLinks, bumped: bool) {
        if self.index.contains_key(&post.id) {
            return;
        }
        self.index.insert(post.id, self.full.posts.len());
        self.full.posts.push(post.clone());
        if post.media.is_some() {
            self.num_media += 1;
        }
        if bumped {
            self.full.thread.last_updated = post.datetime;
        }
        for (quoted, thread) in links {
            match thread {
                Some(t) if *t == self.id() => self.add_reply(*quoted, post.id),
                Some(t) => self.entities.tell(
                    *t,
                    ThreadMsg::QuotedBy {
                        target: *quoted,
                        by: post.id,
                    },
                ),
                None => {}
            }
        }
        self.views.invalidate();
        self.publish_post(post, links);
    }

    fn publish_post(&self, post: &Post, links: &QuoteLinks) {
        if let Some(live) = &self.shared.live {
            live.publish(crate::live::Published::Post {
                thread: self.id(),
                board: self.board.id,
                post: post.id,
                quotes: links
                    .iter()
                    .filter_map(|(p, t)| t.map(|t| (*p, t)))
                    .collect(),
                new_thread: false,
            });
        }
    }

    fn add_reply(&mut self, target: PostId, by: PostId) {
        if let Some(&i) = self.index.get(&target) {
            // Kept sorted; a new reply usually goes last, and a post quoted
            // by every reply of a hot thread has thousands.
            let replies = &mut self.full.posts[i].replies;
            if let Err(at) = replies.binary_search(&by) {
                replies.insert(at, by);
                self.views.invalidate();
            }
        }
    }

    /// Sends the board this thread's new summary for its catalog. The sink
    /// keeps this actor's send order, and an inactive board is activated
    /// off the write path; it loads the thread list from the store anyway,
    /// and drops summaries older than what it holds, so a late one cannot
    /// roll the catalog back.
    fn tell_board(&self) {
        if let Some(summary) = self.summary() {
            (self.shared.catalog)(self.board.id, CatalogChange::Changed(Box::new(summary)));
        }
    }
}

impl Actor for ThreadActor {
    type Msg = ThreadMsg;
    type State = ThreadState;
    type Arguments = Activation<ViewCache<ThreadView>>;

    async fn pre_start(
        &self,
        myself: ActorRef<ThreadMsg>,
        args: Self::Arguments,
    ) -> Result<ThreadState, ActorProcessingErr> {
        let (board, full) = load(&args.shared, ThreadId(args.id)).await?;
        let mut state = ThreadState::new(args.shared, args.entities, board, full);
        state.fence = args.fence;
        state.views = args.cache;
        state.landings = Some(Landings::spawn(myself));
        Ok(state)
    }

    async fn post_start(
        &self,
        myself: ActorRef<ThreadMsg>,
        state: &mut ThreadState,
    ) -> Result<(), ActorProcessingErr> {
        let every = (state.shared.config.idle_timeout / 4).max(Duration::from_millis(50));
        myself.send_interval(every, || ThreadMsg::Tick);
        Ok(())
    }

    /// A stop (a hand-over, a drain) can come while replies are queued:
    /// their commits still land, so answer their posters.
    async fn post_stop(
        &self,
        _myself: ActorRef<ThreadMsg>,
        state: &mut ThreadState,
    ) -> Result<(), ActorProcessingErr> {
        state.land().await;
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<ThreadMsg>,
        msg: ThreadMsg,
        state: &mut ThreadState,
    ) -> Result<(), ActorProcessingErr> {
        if !matches!(msg, ThreadMsg::Tick) {
            state.last_active = Instant::now();
        }
        // Reads and replies go past queued replies; everything else sees
        // them landed first.
        if !matches!(
            msg,
            ThreadMsg::CreatePost { .. }
                | ThreadMsg::Flush
                | ThreadMsg::View { .. }
                | ThreadMsg::GetPost { .. }
                | ThreadMsg::Summary { .. }
                | ThreadMsg::Head { .. }
                | ThreadMsg::QuotedBy { .. }
        ) {
            state.land().await;
        }
        match msg {
            ThreadMsg::CreatePost { draft, reply } => state.queue_post(*draft, reply).await,
            ThreadMsg::Flush => state.take_landed(false).await,
            ThreadMsg::View { view, reply } => {
                let (shared, board, full) = (&state.shared, &state.board, &state.full);
                let v = state
                    .views
                    .get_or_render(view, || shared.views.thread(view, board, full));
                reply.send(Ok(v));
            }
            ThreadMsg::GetPost { id, reply } => {
                reply.send(state.index.get(&id).map(|&i| state.full.posts[i].clone()));
            }
            ThreadMsg::Summary { reply } => {
                if let Some(s) = state.summary() {
                    reply.send(s);
                }
            }
            ThreadMsg::Head { reply } => reply.send(state.full.thread.clone()),
            ThreadMsg::QuotedBy { target, by } => state.add_reply(target, by),
            ThreadMsg::DeletePost { id, by, reply } => {
                let r = state.delete_post(id, by).await;
                let stop = matches!(r, Ok(Removed::Thread));
                state.fenced |= matches!(r, Err(ActorError::Fenced { .. }));
                reply.send(r);
                if stop {
                    myself.stop(Some("thread deleted".into()));
                }
            }
            ThreadMsg::DeleteThread { by, reply } => {
                let r = state.delete_thread(by.as_ref(), None).await;
                let stop = r.is_ok();
                state.fenced |= matches!(r, Err(ActorError::Fenced { .. }));
                reply.send(r);
                if stop {
                    myself.stop(Some("thread deleted".into()));
                }
            }
            ThreadMsg::SetFlags {
                sticky,
                locked,
                by,
                reply,
            } => {
                let r = state.set_flags(sticky, locked, by).await;
                state.fenced |= matches!(r, Err(ActorError::Fenced { .. }));
                reply.send(r);
            }
            ThreadMsg::SetSpoiler {
                id,
                spoiler,
                by,
                reply,
            } => {
                let r = state.set_spoiler(id, spoiler, by).await;
                state.fenced |= matches!(r, Err(ActorError::Fenced { .. }));
                reply.send(r);
            }
            ThreadMsg::DeleteFile { id, by, reply } => {
                let r = state.delete_file(id, by).await;
                state.fenced |= matches!(r, Err(ActorError::Fenced { .. }));
                reply.send(r);
            }
            ThreadMsg::MoveTo { board, by, reply } => {
                let r = state.move_to(board, by).await;
                state.fenced |= matches!(r, Err(ActorError::Fenced { .. }));
                reply.send(r);
            }
            ThreadMsg::Reload => state.reload().await?,
            ThreadMsg::Tick => {
                if state.last_active.elapsed() >= state.shared.config.idle_timeout {
                    myself.stop(Some("idle".into()));
                }
            }
            #[cfg(debug_assertions)]
            ThreadMsg::Crash => panic!("crash requested for thread {} (test hook)", state.id()),
        }
        // A write refused by the shard lease: another node owns the thread
        // now, and what this activation holds may be stale.
        if state.fenced {
            tracing::warn!(thread = %state.id(), "fenced off: another node owns this thread now");
            myself.stop(Some("fenced".into()));
        }
        Ok(())
    }
}
