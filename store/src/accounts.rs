//! The records of accounts and moderation: slips (accounts) and their
//! sessions, bans, the moderation log and reports.
//!
//! Kept apart from [`crate::model`] (posts, threads, boards) because only the
//! HTTP layer uses them: the actors never see a slip, only the
//! [`crate::Author`] it signs a post with.
//!
//! Not here: password hashing and session tokens (the node hashes with
//! argon2 and passes the store a hash), address matching of bans (the node
//! parses `cidr` into its in-memory ban list).

use serde::{Deserialize, Serialize};

use crate::model::{BoardId, PostId, ThreadId};

/// An account. Roles: `is_admin` (everything, including boards), `is_mod`
/// (moderates every board), or a volunteer of the boards in `boards`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slip {
    pub id: i64,
    /// Unique, 1 to 20 characters.
    pub name: String,
    pub is_admin: bool,
    pub is_mod: bool,
    /// Boards this slip moderates as a volunteer (besides global roles).
    pub boards: Vec<BoardId>,
}

/// A logged-in session, looked up by the hash of its cookie token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub slip: Slip,
    /// The token every state-changing form of this session must carry.
    pub csrf: String,
    /// Milliseconds since the epoch after which the session is void.
    pub expires: i64,
}

/// A ban as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ban {
    pub id: i64,
    /// The banned address or range, canonical (`203.0.113.0/24`, `2001:db8::/64`).
    pub cidr: String,
    /// `None`: every board.
    pub board: Option<BoardId>,
    /// Shown to the banned user.
    pub reason: String,
    pub created: i64,
    /// `None`: never expires.
    pub expires: Option<i64>,
    /// The slip that banned.
    pub slip: Option<i64>,
    /// The post the ban was issued from, if any.
    pub post: Option<PostId>,
}

/// One entry of the moderation log: who did what, when and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModLogEntry {
    /// Ignored when writing.
    pub id: i64,
    pub at: i64,
    pub slip: Option<i64>,
    pub slip_name: String,
    /// `delete_post`, `delete_thread`, `move_thread`, `sticky`, `lock`,
    /// `spoiler`, `ban`, `unban`, `dismiss_report`, `create_board`, `edit_board`…
    pub action: String,
    pub board: Option<BoardId>,
    /// What was acted on, as text ("post 12", "thread 3 to /tech/").
    pub target: String,
    pub reason: String,
}

/// A reported post; repeated reports of the same post fold into `count`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub id: i64,
    pub post: PostId,
    pub thread: ThreadId,
    pub board: BoardId,
    /// The first reporter's reason.
    pub reason: String,
    pub count: i64,
    pub first_at: i64,
    pub last_at: i64,
}
