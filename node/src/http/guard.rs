//! The gate every post passes on its way to an entity: bans, captcha, the
//! board's proof of work (`[captcha] pow_bits`) and flood control, in that
//! order, then who signs it.
//!
//! Costs no database query: bans are the node's in-memory list, captchas
//! and flood counters live in [`crate::abuse::Abuse`]. Moderators of the
//! board pass the gate untouched (they may also reply to locked threads).
//! Shared by the HTML forms and the JSON API, so both refuse alike.

use super::upload::Submission;
use super::ApiError;
use crate::abuse::flood::{Admission, Intervals, PostKind};
use crate::abuse::{roles, tripcode};
use crate::pages::html::UtcTime;
use crate::state::AppState;
use wani_store::{Author, Board, Slip};

/// Who is posting.
pub struct Poster {
    /// The client address ([`super::client::ClientAddr`]).
    pub ip: String,
    /// The slip posting (session cookie or Basic auth), if any.
    pub slip: Option<Slip>,
    /// The captcha being answered: the `captcha_id` field, or the
    /// `wani_captcha` cookie set when the form's captcha image was drawn.
    pub captcha_id: Option<String>,
}

impl Poster {
    /// An anonymous poster at `ip`.
    pub fn anonymous(ip: String) -> Poster {
        Poster {
            ip,
            slip: None,
            captcha_id: None,
        }
    }

    /// Whether the poster moderates `board`.
    pub fn moderates(&self, board: &Board) -> bool {
        self.slip
            .as_ref()
            .is_some_and(|s| roles::can_moderate(s, board.id))
    }

    /// The idempotency key the client sent (`Idempotency-Key` header, else
    /// the `idempotency_key` field), scoped to the sender: the slip when
    /// posting with one, else the client's address key (its /64 for IPv6).
    /// So a key reused by someone else is another key: it neither returns
    /// their post nor collides with it. `None` when the client sent none.
    pub fn idempotency_key(&self, s: &Submission, header: Option<String>) -> Option<String> {
        let key = header
            .or_else(|| s.text("idempotency_key").map(str::to_string))
            .filter(|k| !k.is_empty() && k.len() <= 128)?;
        let scope = match &self.slip {
            Some(slip) => format!("slip:{}", slip.id),
            None => crate::abuse::addr::client_key(&self.ip),
        };
        Some(format!("{scope} {key}"))
    }

    /// Who signs the post: the slip (name and badge) when posting with
    /// one, else the `name` field (with its tripcode), else nobody.
    pub fn author(&self, s: &Submission, site_secret: &[u8]) -> Author {
        match &self.slip {
            Some(slip) => Author {
                slip: Some(slip.id),
                name: Some(slip.name.clone()),
                capcode: roles::capcode(slip).map(str::to_string),
            },
            None => Author {
                slip: None,
                name: s
                    .text("name")
                    .and_then(|n| tripcode::display_name(n, site_secret)),
                capcode: None,
            },
        }
    }
}

/// Refuses the post if the poster is banned, has not solved the board's
/// captcha, or posts too soon; records it for flood control otherwise, under
/// the post's idempotency `key`. The caller gives the [`Admission`] back
/// ([`crate::abuse::Abuse::flood_release`]) when the post is not stored.
pub fn check(
    state: &AppState,
    board: &Board,
    poster: &Poster,
    kind: PostKind,
    s: &Submission,
    key: &str,
) -> Result<Option<Admission>, ApiError> {
    if poster.moderates(board) {
        return Ok(None);
    }
    let now = super::auth::now_ms();
    if let Some(ban) = state.abuse.ban_for(&poster.ip, board.id, now) {
        let scope = match ban.board {
            Some(_) => format!("on /{}/", board.name),
            None => "on every board".to_string(),
        };
        let until = match ban.expires {
            Some(ms) => format!("The ban expires {}.", UtcTime::from_millis(ms).readable()),
            None => "The ban does not expire.".to_string(),
        };
        return Err(ApiError::forbidden(format!(
            "You are banned from posting {scope}. Reason: {}. {until} You can still read.",
            ban.reason
        )));
    }
    let captcha = match kind {
        PostKind::Thread => board.captcha_threads,
        PostKind::Reply => board.captcha_replies,
    };
    if captcha {
        let id = s
            .text("captcha_id")
            .or(poster.captcha_id.as_deref())
            .unwrap_or("");
        let answer = s.text("captcha").unwrap_or("");
        state
            .abuse
            .check_captcha(&poster.ip, board.id.0, id, answer, now)
            .map_err(|e| ApiError::forbidden(e.message()))?;
    }
    let work = state.config.captcha.pow_for(&board.name);
    if work > 0 {
        state
            .abuse
            .check_pow(
                s.text("pow_challenge").unwrap_or(""),
                s.text("pow_nonce").unwrap_or(""),
                &board.name,
                work,
                now,
            )
            .map_err(|e| ApiError::forbidden(e.message()))?;
    }
    let limits = Intervals {
        post_secs: board.reply_interval_secs,
        thread_secs: board.thread_interval_secs,
        same_content_secs: state.abuse.same_content_secs,
    };
    state
        .abuse
        .flood_check(
            &poster.ip,
            kind,
            s.text("body").unwrap_or(""),
            key,
            limits,
            now,
        )
        .map(Some)
        .map_err(|(secs, why)| {
            ApiError::too_many(secs, format!("{why}: wait {secs} seconds and post again"))
        })
}
