//! The records wani stores, shared by the store, the actors and the HTTP layer.
//!
//! Ids are newtypes so a thread id is never passed where a post id belongs.
//! Times are milliseconds since the Unix epoch (UTC) in an `i64`: both SQLite
//! and PostgreSQL store that exactly, and JSON carries it without a format.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<$name> for i64 {
            fn from(id: $name) -> i64 {
                id.0
            }
        }

        impl From<i64> for $name {
            fn from(id: i64) -> $name {
                $name(id)
            }
        }
    };
}

id_type!(
    /// A board's numeric id (Maniwani's routes address boards by it).
    BoardId
);
id_type!(
    /// A thread's id; global, independent of the ids of its posts.
    ThreadId
);
id_type!(
    /// A post's id; global across every board and thread (`>>123` needs that).
    PostId
);
id_type!(
    /// A media row's id; `/upload/{id}` serves it.
    MediaId
);

/// A board and its settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Board {
    pub id: BoardId,
    /// Short name shown as `/name/`, at most 32 characters, `[a-z0-9_-]`.
    pub name: String,
    /// Longer title shown in the board header.
    pub title: String,
    /// The board's rules, in wani markup.
    pub rules: String,
    /// Live (non-archived) threads kept; a new thread beyond this archives the
    /// least recently bumped one.
    pub max_threads: i64,
    /// Replies after which a thread no longer bumps.
    pub bump_limit: i64,
    /// Accepted MIME types, e.g. `["image/jpeg", "image/png"]`.
    pub mimetypes: Vec<String>,
    /// Largest accepted upload in bytes.
    pub max_file_bytes: i64,
    /// Whether a new thread needs a solved captcha.
    pub captcha_threads: bool,
    /// Whether a reply needs a solved captcha.
    pub captcha_replies: bool,
    /// Flood control: seconds one address must wait between new threads.
    pub thread_interval_secs: i64,
    /// Flood control: seconds one address must wait between posts.
    pub reply_interval_secs: i64,
    /// Largest image or video in pixels (width × height); 0 leaves only the
    /// node's `media.max_pixels`.
    pub max_pixels: i64,
    /// Longest video in seconds; 0 means no limit of the board's own.
    pub max_duration_secs: i64,
    /// Most frames in an animated GIF, WebP or PNG; 0 means no limit.
    pub max_frames: i64,
    /// Refuse a file already posted on this board (same SHA-256 after
    /// metadata stripping), naming the post that has it.
    pub no_reposts: bool,
}

impl Board {
    /// The board `id` with `s` as its settings.
    pub fn new(id: BoardId, s: BoardSettings) -> Board {
        Board {
            id,
            name: s.name,
            title: s.title,
            rules: s.rules,
            max_threads: s.max_threads,
            bump_limit: s.bump_limit,
            mimetypes: s.mimetypes,
            max_file_bytes: s.max_file_bytes,
            captcha_threads: s.captcha_threads,
            captcha_replies: s.captcha_replies,
            thread_interval_secs: s.thread_interval_secs,
            reply_interval_secs: s.reply_interval_secs,
            max_pixels: s.max_pixels,
            max_duration_secs: s.max_duration_secs,
            max_frames: s.max_frames,
            no_reposts: s.no_reposts,
        }
    }

    /// The settings that recreate this board, to edit some of them.
    pub fn settings(&self) -> BoardSettings {
        BoardSettings {
            name: self.name.clone(),
            title: self.title.clone(),
            rules: self.rules.clone(),
            max_threads: self.max_threads,
            bump_limit: self.bump_limit,
            mimetypes: self.mimetypes.clone(),
            max_file_bytes: self.max_file_bytes,
            captcha_threads: self.captcha_threads,
            captcha_replies: self.captcha_replies,
            thread_interval_secs: self.thread_interval_secs,
            reply_interval_secs: self.reply_interval_secs,
            max_pixels: self.max_pixels,
            max_duration_secs: self.max_duration_secs,
            max_frames: self.max_frames,
            no_reposts: self.no_reposts,
        }
    }
}

/// What creating or editing a board takes; every field has a default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BoardSettings {
    pub name: String,
    pub title: String,
    pub rules: String,
    pub max_threads: i64,
    pub bump_limit: i64,
    pub mimetypes: Vec<String>,
    pub max_file_bytes: i64,
    pub captcha_threads: bool,
    pub captcha_replies: bool,
    pub thread_interval_secs: i64,
    pub reply_interval_secs: i64,
    pub max_pixels: i64,
    pub max_duration_secs: i64,
    pub max_frames: i64,
    pub no_reposts: bool,
}

impl Default for BoardSettings {
    fn default() -> Self {
        BoardSettings {
            name: String::new(),
            title: String::new(),
            rules: String::new(),
            max_threads: 50,
            bump_limit: 300,
            mimetypes: DEFAULT_MIMETYPES.iter().map(|s| s.to_string()).collect(),
            max_file_bytes: 8 * 1024 * 1024,
            captcha_threads: true,
            captcha_replies: false,
            thread_interval_secs: 60,
            reply_interval_secs: 10,
            max_pixels: 40_000_000,
            max_duration_secs: 300,
            max_frames: 1000,
            no_reposts: false,
        }
    }
}

/// The image types a board accepts unless configured otherwise.
pub const DEFAULT_MIMETYPES: &[&str] = &["image/jpeg", "image/png", "image/gif", "image/webp"];

/// A stored file and its thumbnail. Bytes live in the blob store under
/// `blob` / `thumb_blob` (hex SHA-256 of the content). For JPEG, PNG and
/// WebP, `blob` is the hash of the file *after* its metadata was stripped,
/// which is what is served and what duplicates are recognised by.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Media {
    pub id: MediaId,
    pub blob: String,
    pub thumb_blob: String,
    pub mimetype: String,
    /// File extension without the dot (`jpg`, `png`, `gif`, `webp`).
    pub ext: String,
    pub is_animated: bool,
    pub width: i64,
    pub height: i64,
    pub thumb_width: i64,
    pub thumb_height: i64,
    pub size_bytes: i64,
    pub thumb_mimetype: String,
    /// Video length in milliseconds; 0 for images.
    pub duration_ms: i64,
    /// Animation frames (1 for a still image or a video).
    pub frames: i64,
    /// MD5 of the original, base64 of the raw 16 bytes (what 4chan clients
    /// check a download against); `None` until filled in for old files.
    #[serde(default)]
    pub md5: Option<String>,
    /// The name it was uploaded under, without extension or folders.
    #[serde(default)]
    pub file_name: Option<String>,
}

/// A media file ready to be recorded: its blobs are already in the blob store.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewMedia {
    pub blob: String,
    pub thumb_blob: String,
    pub mimetype: String,
    pub ext: String,
    pub is_animated: bool,
    pub width: i64,
    pub height: i64,
    pub thumb_width: i64,
    pub thumb_height: i64,
    pub size_bytes: i64,
    pub thumb_mimetype: String,
    /// Video length in milliseconds; 0 for images.
    pub duration_ms: i64,
    /// Animation frames (1 for a still image or a video).
    pub frames: i64,
    /// MD5 of the original, base64 of the raw 16 bytes.
    #[serde(default)]
    pub md5: Option<String>,
    /// The name it was uploaded under, without extension or folders.
    #[serde(default)]
    pub file_name: Option<String>,
}

/// One post as stored, with the ids of the posts that quote it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Post {
    pub id: PostId,
    pub thread: ThreadId,
    /// The markup as written.
    pub body: String,
    /// The markup rendered to safe HTML when the post was written.
    pub body_html: String,
    /// Only an opening post carries a subject.
    pub subject: Option<String>,
    pub datetime: i64,
    /// 4 hex digits, stable per (thread, client address).
    pub poster: String,
    pub media: Option<Media>,
    pub spoiler: bool,
    pub sage: bool,
    /// Posts that quote this one (`>>id`), oldest first.
    pub replies: Vec<PostId>,
    /// The name shown: the slip's name when posted with a slip, or
    /// `name !tripcode`; `None` for an anonymous post.
    #[serde(default)]
    pub slip_name: Option<String>,
    /// The role badge ("Admin", "Mod") of a post made with a slip that has one.
    #[serde(default)]
    pub capcode: Option<String>,
    /// A moderator deleted the post's file (and kept the post).
    #[serde(default)]
    pub file_deleted: bool,
}

/// Who signs a post: nobody (anonymous), a name with a tripcode, or a slip.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Author {
    /// The slip posting, if any (kept for moderation; never served).
    pub slip: Option<i64>,
    /// The name shown ([`Post::slip_name`]).
    pub name: Option<String>,
    /// The role badge ([`Post::capcode`]).
    pub capcode: Option<String>,
}

/// A post to commit. `thread` is ignored when the post opens a new thread.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewPost {
    pub thread: ThreadId,
    pub body: String,
    pub body_html: String,
    /// The poster id (4 hex digits). Left empty, the store derives it with
    /// [`poster_hex`] from the poster secret, the thread and `ip`: an opening
    /// post must, as its thread id does not exist before the write.
    pub poster: String,
    /// The client address, kept for moderation; never served.
    pub ip: String,
    pub media: Option<NewMedia>,
    pub spoiler: bool,
    pub sage: bool,
    /// Existing posts this one quotes; recorded as replies.
    pub quotes: Vec<PostId>,
    /// Unique per post; a retry with the same key returns the stored post.
    /// The node writes a client's key as `<sender> <key>` (the sender's slip
    /// or address key), so keys are scoped to who sent them.
    pub idempotency_key: String,
    /// Whether this post moves the thread's `last_updated` to `now`.
    pub bump: bool,
    pub now: i64,
    /// When set, the write commits only if the shard lease still has this epoch.
    pub fence: Option<Fence>,
    /// Who signs the post.
    #[serde(default)]
    pub author: Author,
}

/// A new thread: its opening post and thread-level fields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewThread {
    pub board: BoardId,
    pub subject: Option<String>,
    pub tags: Vec<String>,
    pub op: NewPost,
}

/// A shard lease epoch a write must still hold (cluster fencing).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fence {
    pub shard: i64,
    pub epoch: i64,
}

/// A thread's own row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Thread {
    pub id: ThreadId,
    pub board: BoardId,
    pub subject: Option<String>,
    pub tags: Vec<String>,
    pub created: i64,
    pub last_updated: i64,
    pub archived: bool,
    pub views: i64,
    /// Pinned first in the catalog by a mod.
    #[serde(default)]
    pub sticky: bool,
    /// Takes replies from mods only.
    #[serde(default)]
    pub locked: bool,
}

/// A thread with all its posts, opening post first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ThreadFull {
    pub thread: Thread,
    pub posts: Vec<Post>,
    /// The opening post of each other thread that a post here quotes (how
    /// the 4chan API numbers those threads).
    #[serde(default)]
    pub quoted_ops: Vec<(ThreadId, PostId)>,
}

/// What a catalog shows of one thread.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ThreadSummary {
    pub thread: Thread,
    /// The opening post.
    pub op: Post,
    pub num_replies: i64,
    pub num_media: i64,
}

/// The outcome of a write carrying an idempotency key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Committed<T> {
    /// Written now.
    Created(T),
    /// The key had been used: this is what was written then; nothing new was.
    Replayed(T),
}

impl<T> Committed<T> {
    pub fn into_inner(self) -> T {
        match self {
            Committed::Created(t) | Committed::Replayed(t) => t,
        }
    }
    pub fn is_created(&self) -> bool {
        matches!(self, Committed::Created(_))
    }
}

/// What archiving a thread freed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Archived {
    /// Blob keys no longer referenced by any live post; the caller deletes them.
    pub orphaned_blobs: Vec<String>,
}

/// A change to a thread other than a new post: a moderator's, or the board
/// archiving it. Written in one transaction with its shard lease check and,
/// when it is a moderator's, its moderation log entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Change {
    /// Deletes a reply (an opening post is refused: delete the thread).
    DeletePost(PostId),
    /// Deletes a thread and every post in it.
    DeleteThread(ThreadId),
    /// Sets a thread's sticky and locked flags.
    Flags {
        thread: ThreadId,
        sticky: bool,
        locked: bool,
    },
    /// Moves a thread to another board.
    Move { thread: ThreadId, board: BoardId },
    /// Sets the spoiler flag of a post's media.
    Spoiler { post: PostId, spoiler: bool },
    /// Deletes a post's file and keeps the post, marked `file_deleted`.
    DeleteFile(PostId),
    /// Replaces a post's rendered HTML (a quote of it died).
    BodyHtml { post: PostId, html: String },
}

/// A [`Change`] with its fence and its log entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Moderation {
    pub change: Change,
    /// The shard lease epoch the writing entity holds (clusters only): a
    /// stale owner's change is refused as [`StoreError::Fenced`](crate::StoreError::Fenced).
    pub fence: Option<Fence>,
    /// Appended to the moderation log in the same transaction.
    pub log: Option<crate::ModLogEntry>,
}

/// Who makes a moderation change and why: what the log entry needs from
/// the moderator; the entity that applies the change says what it did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModBy {
    pub slip: Option<i64>,
    pub slip_name: String,
    pub reason: String,
}

impl ModBy {
    /// The log entry for `action` on `target` (board `board`) at `at`.
    pub fn entry(
        &self,
        at: i64,
        action: impl Into<String>,
        board: Option<BoardId>,
        target: impl Into<String>,
    ) -> crate::ModLogEntry {
        crate::ModLogEntry {
            id: 0,
            at,
            slip: self.slip,
            slip_name: self.slip_name.clone(),
            action: action.into(),
            board,
            target: target.into(),
            reason: self.reason.clone(),
        }
    }
}

/// What deleting a post or thread freed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Deleted {
    /// Blob keys no longer referenced by any media row; the caller deletes them.
    pub orphaned_blobs: Vec<String>,
}

/// A poster id: 4 hex digits, stable for one client address within one
/// thread and unrelated across threads. Keyed by a server secret so the
/// address cannot be recovered by trying addresses against the id.
pub fn poster_hex(secret: &[u8], thread: ThreadId, ip: &str) -> String {
    let mut h = Sha256::new();
    // The secret has a fixed length (32 bytes), so prefixing it is a sound
    // keyed hash here; the separators keep (thread, ip) pairs unambiguous.
    h.update(secret);
    h.update(b"\0poster\0");
    h.update(thread.0.to_le_bytes());
    h.update(ip.as_bytes());
    hex::encode(&h.finalize()[..2])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poster_ids_are_stable_per_thread_and_address() {
        let s = [7u8; 32];
        let a = poster_hex(&s, ThreadId(1), "10.0.0.1");
        assert_eq!(a.len(), 4);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(a, poster_hex(&s, ThreadId(1), "10.0.0.1"));
        let others: std::collections::HashSet<_> = (2..40)
            .map(|t| poster_hex(&s, ThreadId(t), "10.0.0.1"))
            .collect();
        assert!(others.len() > 30, "ids should differ across threads");
        assert_ne!(a, poster_hex(&[8u8; 32], ThreadId(1), "10.0.0.1"));
    }
}
