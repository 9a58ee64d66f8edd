//! Moderation applied by the thread actor: deleting a post or the thread,
//! sticky and lock, spoilering a post's media, moving the thread to another
//! board.
//!
//! Each action writes through [`wani_store::Repo::moderate`] first — the
//! change, the check of this activation's shard lease, and the moderator's
//! log entry, in one transaction — and changes the actor's memory only once
//! the store committed, then drops the cached views and tells the board(s),
//! exactly as a new post does. Blobs the store reports as unreferenced are
//! deleted here, after the commit.
//!
//! A deleted post disappears from the thread, its "Replies:" entries and the
//! catalog. Posts of this thread that quoted it are re-rendered so the quote
//! shows as dead; posts in other threads keep their link (it then leads to
//! a thread without that post) — re-rendering across threads is left out.
//! Who may do this is not decided here: the HTTP layer checks roles.

use super::{now_ms, resolve_quotes, ThreadState};
use crate::catalog::CatalogChange;
use crate::error::ActorError;
use crate::thread::ThreadMsg;
use wani_store::{BoardId, Change, Deleted, ModBy, Moderation, PostId, Thread};

/// What a [`ThreadMsg::DeletePost`] removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Removed {
    /// One reply.
    Post,
    /// The opening post was asked for, so the whole thread went.
    Thread,
}

impl ThreadState {
    /// Writes `change` fenced with this activation's lease, with the log
    /// entry `by` makes of `action` on `target`, in one transaction.
    async fn moderate(
        &self,
        change: Change,
        by: Option<&ModBy>,
        action: &str,
        target: String,
    ) -> Result<Deleted, ActorError> {
        let log = by.map(|b| b.entry(now_ms(), action, Some(self.board.id), target));
        Ok(self
            .shared
            .repo
            .moderate(Moderation {
                change,
                fence: self.fence,
                log,
            })
            .await?)
    }

    fn reindex(&mut self) {
        self.index = self
            .full
            .posts
            .iter()
            .enumerate()
            .map(|(i, p)| (p.id, i))
            .collect();
    }

    /// Deletes blobs the store no longer references; failures only leave a
    /// file behind, so they are logged, not returned.
    async fn collect(&self, blobs: Vec<String>) {
        for blob in blobs {
            if let Err(e) = self.shared.blobs.delete(&blob).await {
                tracing::warn!(%blob, error = %e, "could not delete the media of a deleted post");
            }
        }
    }

    /// Tells live subscribers a post (or, for the opening post, the thread) is gone.
    fn publish_deleted(&self, post: PostId) {
        if let Some(live) = &self.shared.live {
            live.publish(crate::live::Published::Deleted {
                thread: self.id(),
                board: self.board.id,
                post,
            });
        }
    }

    pub(super) async fn delete_post(
        &mut self,
        id: PostId,
        by: Option<ModBy>,
    ) -> Result<Removed, ActorError> {
        let Some(&i) = self.index.get(&id) else {
            return Err(ActorError::NotFound(format!(
                "post {id} is not in thread {}",
                self.id()
            )));
        };
        if i == 0 {
            self.delete_thread(by.as_ref(), Some(id)).await?;
            return Ok(Removed::Thread);
        }
        let target = format!("post {id} in thread {}", self.id());
        let deleted = self
            .moderate(Change::DeletePost(id), by.as_ref(), "delete_post", target)
            .await?;
        // Before the quoting posts are re-rendered: their link must die.
        self.shared.post_homes.forget(id);
        self.publish_deleted(id);
        let post = self.full.posts.remove(i);
        self.reindex();
        if post.media.is_some() {
            self.num_media -= 1;
        }
        for p in &mut self.full.posts {
            p.replies.retain(|r| *r != id);
        }
        self.views.invalidate();
        self.tell_board();
        self.collect(deleted.orphaned_blobs).await;

        let me = self.id();
        // Other threads list the deleted post under the posts it quoted; an
        // active one reloads (an inactive one reads the store when activated).
        match resolve_quotes(&self.shared, &post.body, |p| {
            self.index.contains_key(&p).then_some(me)
        })
        .await
        {
            Ok(links) => {
                for t in links.iter().filter_map(|(_, t)| *t).filter(|t| *t != me) {
                    self.entities.tell(t, ThreadMsg::Reload);
                }
            }
            Err(e) => tracing::warn!(post = %id, error = %e, "could not tell quoted threads"),
        }
        for quoting in post.replies {
            if let Err(e) = self.rerender(quoting).await {
                tracing::warn!(post = %quoting, error = %e, "could not re-render a dead quote");
            }
        }
        self.views.invalidate();
        Ok(Removed::Post)
    }

    /// Renders a post of this thread again (its quotes resolved as of now)
    /// and stores the new HTML.
    async fn rerender(&mut self, id: PostId) -> Result<(), ActorError> {
        let Some(&j) = self.index.get(&id) else {
            return Ok(());
        };
        let me = self.id();
        let body = self.full.posts[j].body.clone();
        let links = resolve_quotes(&self.shared, &body, |p| {
            self.index.contains_key(&p).then_some(me)
        })
        .await?;
        let html = self.shared.renderer.render(body, links).await?;
        let change = Change::BodyHtml {
            post: id,
            html: html.clone(),
        };
        self.moderate(change, None, "", String::new()).await?;
        self.full.posts[j].body_html = html;
        Ok(())
    }

    /// Deletes the thread; `via` is the opening post when that is what the
    /// moderator deleted.
    pub(super) async fn delete_thread(
        &mut self,
        by: Option<&ModBy>,
        via: Option<PostId>,
    ) -> Result<(), ActorError> {
        let target = match via {
            Some(post) => format!("thread {} (via post {post})", self.id()),
            None => format!("thread {}", self.id()),
        };
        let deleted = self
            .moderate(Change::DeleteThread(self.id()), by, "delete_thread", target)
            .await?;
        for p in &self.full.posts {
            self.shared.post_homes.forget(p.id);
        }
        if let Some(op) = self.full.posts.first() {
            self.publish_deleted(op.id);
        }
        self.views.invalidate();
        (self.shared.catalog)(self.board.id, CatalogChange::Removed(self.id()));
        self.collect(deleted.orphaned_blobs).await;
        Ok(())
    }

    pub(super) async fn set_flags(
        &mut self,
        set_sticky: Option<bool>,
        set_locked: Option<bool>,
        by: Option<ModBy>,
    ) -> Result<Thread, ActorError> {
        let sticky = set_sticky.unwrap_or(self.full.thread.sticky);
        let locked = set_locked.unwrap_or(self.full.thread.locked);
        let action = match (set_sticky, set_locked) {
            (Some(true), _) => "sticky",
            (Some(false), _) => "unsticky",
            (None, Some(true)) => "lock",
            (None, Some(false)) => "unlock",
            (None, None) => "flags",
        };
        let change = Change::Flags {
            thread: self.id(),
            sticky,
            locked,
        };
        let target = format!("thread {}", self.id());
        self.moderate(change, by.as_ref(), action, target).await?;
        self.full.thread.sticky = sticky;
        self.full.thread.locked = locked;
        self.views.invalidate();
        self.tell_board();
        Ok(self.full.thread.clone())
    }

    /// Where post `id` is in the thread, when it is here and has a file.
    fn post_with_file(&self, id: PostId) -> Result<usize, ActorError> {
        let Some(&i) = self.index.get(&id) else {
            return Err(ActorError::NotFound(format!(
                "post {id} is not in thread {}",
                self.id()
            )));
        };
        if self.full.posts[i].media.is_none() {
            return Err(ActorError::Invalid(format!("post {id} has no file")));
        }
        Ok(i)
    }

    pub(super) async fn set_spoiler(
        &mut self,
        id: PostId,
        spoiler: bool,
        by: Option<ModBy>,
    ) -> Result<(), ActorError> {
        let i = self.post_with_file(id)?;
        let action = if spoiler { "spoiler" } else { "unspoiler" };
        let change = Change::Spoiler { post: id, spoiler };
        self.moderate(change, by.as_ref(), action, format!("post {id}"))
            .await?;
        self.full.posts[i].spoiler = spoiler;
        self.views.invalidate();
        if i == 0 {
            self.tell_board();
        }
        Ok(())
    }

    pub(super) async fn delete_file(
        &mut self,
        id: PostId,
        by: Option<ModBy>,
    ) -> Result<(), ActorError> {
        let i = self.post_with_file(id)?;
        let deleted = self
            .moderate(
                Change::DeleteFile(id),
                by.as_ref(),
                "delete_file",
                format!("post {id}"),
            )
            .await?;
        let post = &mut self.full.posts[i];
        post.media = None;
        post.spoiler = false;
        post.file_deleted = true;
        self.views.invalidate();
        self.tell_board();
        self.collect(deleted.orphaned_blobs).await;
        Ok(())
    }

    pub(super) async fn move_to(
        &mut self,
        to: BoardId,
        by: Option<ModBy>,
    ) -> Result<(), ActorError> {
        if to == self.board.id {
            return Ok(());
        }
        if self.full.thread.archived {
            return Err(ActorError::Conflict(
                "an archived thread stays on its board".into(),
            ));
        }
        let board = self
            .shared
            .repo
            .board(to)
            .await?
            .ok_or_else(|| ActorError::NotFound(format!("board {to} does not exist")))?;
        let change = Change::Move {
            thread: self.id(),
            board: to,
        };
        let action = format!("move_thread to board {to}");
        let target = format!("thread {}", self.id());
        self.moderate(change, by.as_ref(), &action, target).await?;
        let from = self.board.id;
        self.board = board;
        self.full.thread.board = to;
        self.views.invalidate();
        (self.shared.catalog)(from, CatalogChange::Removed(self.id()));
        if let Some(summary) = self.summary() {
            (self.shared.catalog)(to, CatalogChange::Added(Box::new(summary)));
        }
        Ok(())
    }
}
