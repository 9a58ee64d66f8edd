//! The moderation routes: the mod view of a thread and its actions, the
//! moderation log, reports, bans and board admin; and reporting a post.
//!
//! Every `/mod` route needs a logged-in moderator ([`Staff`], else 403),
//! every POST the session's CSRF token, and every action on a post or
//! thread a role on that thread's board. Actions go to the owning entity
//! actor (`ThreadMsg::DeletePost`, `SetFlags`, `MoveTo`…), which writes
//! through the store and drops its cached views; then the action is written
//! to the moderation log with who, what, when and why. Pages are rendered
//! per request and never cached; actions answer `303` back to a page.
//!
//! Not here: the rules (`abuse::roles`, `abuse::bans`), the HTML (`pages`).

use super::auth::{now_ms, Staff};
use super::client::{ClientAddr, ThemeChoice};
use super::slip::{private_html, read_form};
use super::{csrf, ApiError};
use crate::abuse::{addr::Cidr, roles, Limited};
use crate::pages::{self, PageCtx, Theme};
use crate::state::AppState;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use std::collections::HashMap;
use wani_actors::thread::Removed;
use wani_actors::{ActorError, BoardMsg, ThreadMsg};
use wani_store::{Ban, Board, BoardId, BoardSettings, ModBy, ModLogEntry, PostId, Slip, ThreadId};
use wani_supervision::transport::Reply;

type Fields = HashMap<String, String>;
type FormResult = Result<Form<Fields>, FormRejection>;

/// The `/mod` routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/mod", get(home))
        .route("/mod/thread/{id}", get(thread))
        .route("/mod/thread/{id}/delete", post(thread_delete))
        .route("/mod/thread/{id}/sticky", post(thread_sticky))
        .route("/mod/thread/{id}/lock", post(thread_lock))
        .route("/mod/thread/{id}/move", post(thread_move))
        .route("/mod/post/{id}/delete", post(post_delete))
        .route("/mod/post/{id}/spoiler", post(post_spoiler))
        .route("/mod/post/{id}/file/delete", post(post_file_delete))
        .route("/mod/post/{id}/ban", post(post_ban))
        .route("/mod/log", get(log_page))
        .route("/mod/reports", get(reports))
        .route("/mod/reports/{id}/dismiss", post(dismiss))
        .route("/mod/bans", get(bans).post(ban_new))
        .route("/mod/bans/{id}/delete", post(unban))
        .route("/mod/boards", get(boards).post(board_create))
        .route("/mod/boards/{id}", post(board_edit))
}

fn id(raw: &str, what: &str) -> Result<i64, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::not_found(format!("there is no {what} {raw:?}")).html())
}

/// The form's fields once its CSRF token checked out.
fn checked(staff: &Staff, form: FormResult) -> Result<Fields, ApiError> {
    let f = read_form(form)?;
    csrf::check_token(&staff.0, f.get(csrf::FIELD).map(String::as_str))?;
    Ok(f)
}

fn reason(f: &Fields) -> String {
    f.get("reason")
        .map(|r| r.trim().to_string())
        .unwrap_or_default()
}

fn require(slip: &Slip, board: BoardId) -> Result<(), ApiError> {
    if roles::can_moderate(slip, board) {
        Ok(())
    } else {
        Err(ApiError::forbidden("you do not moderate this board").html())
    }
}

fn require_admin(slip: &Slip) -> Result<(), ApiError> {
    if roles::can_admin(slip) {
        Ok(())
    } else {
        Err(ApiError::forbidden("only admins manage boards").html())
    }
}

/// Writes one entry to the moderation log.
async fn log(
    state: &AppState,
    slip: &Slip,
    action: &str,
    board: Option<BoardId>,
    target: String,
    reason: &str,
) -> Result<(), ApiError> {
    let entry = ModLogEntry {
        id: 0,
        at: now_ms(),
        slip: Some(slip.id),
        slip_name: slip.name.clone(),
        action: action.to_string(),
        board,
        target,
        reason: reason.to_string(),
    };
    state.store.log_mod_action(&entry).await?;
    Ok(())
}

/// Who acts and why, for the log entry an entity writes with its change.
fn by(slip: &Slip, reason: &str) -> ModBy {
    ModBy {
        slip: Some(slip.id),
        slip_name: slip.name.clone(),
        reason: reason.to_string(),
    }
}

/// The board a thread is on now (from its actor).
async fn thread_board(state: &AppState, thread: ThreadId) -> Result<BoardId, ApiError> {
    let head = state
        .entities
        .ask(thread, |reply| ThreadMsg::Head { reply })
        .await?;
    Ok(head.board)
}

/// The thread and board of a post.
async fn post_place(
    state: &AppState,
    post: PostId,
) -> Result<(String, ThreadId, BoardId), ApiError> {
    let (ip, thread) = state
        .store
        .post_origin(post)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("post {post} does not exist")))?;
    Ok((ip, thread, thread_board(state, thread).await?))
}

/// Deletes a post as `slip` (the opening post deletes its thread); the
/// thread's actor logs it with the deletion. Shared with the API's
/// `DELETE /thread/post/{id}`.
pub(crate) async fn delete_post_as(
    state: &AppState,
    slip: &Slip,
    post: PostId,
    why: &str,
) -> Result<(Removed, ThreadId), ApiError> {
    let (_, thread, board) = post_place(state, post).await.map_err(ApiError::html)?;
    require(slip, board)?;
    let removed = state
        .entities
        .ask(thread, |reply| ThreadMsg::DeletePost {
            id: post,
            by: Some(by(slip, why)),
            reply,
        })
        .await
        .and_then(|r| r)
        .map_err(|e| ApiError::from(e).html())?;
    Ok((removed, thread))
}

async fn page_ctx_boards(state: &AppState) -> Result<Vec<Board>, ApiError> {
    state.boards().await.map_err(ApiError::html)
}

fn ctx<'a>(state: &'a AppState, theme: Theme, boards: &'a [Board]) -> PageCtx<'a> {
    PageCtx {
        theme,
        site_name: &state.config.site.name,
        boards,
    }
}

/// `GET /mod`.
async fn home(
    State(state): State<AppState>,
    ThemeChoice(theme): ThemeChoice,
    staff: Staff,
) -> Result<Response, ApiError> {
    let boards = page_ctx_boards(&state).await?;
    let open = state
        .store
        .reports(None)
        .await
        .map_err(|e| ApiError::from(e).html())?
        .iter()
        .filter(|r| roles::can_moderate(&staff.0.slip, r.board))
        .count();
    Ok(private_html(pages::mod_home(
        &ctx(&state, theme, &boards),
        &staff.0.slip,
        open,
    )))
}

/// `GET /mod/thread/{id}`: the thread with action buttons.
async fn thread(
    State(state): State<AppState>,
    ThemeChoice(theme): ThemeChoice,
    staff: Staff,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    let id = ThreadId(id(&raw, "thread")?);
    let full = wani_store::Repo::thread(&state.store, id)
        .await
        .map_err(|e| ApiError::from(e).html())?
        .ok_or_else(|| ApiError::not_found(format!("thread {id} does not exist")).html())?;
    require(&staff.0.slip, full.thread.board)?;
    let boards = page_ctx_boards(&state).await?;
    let board = boards
        .iter()
        .find(|b| b.id == full.thread.board)
        .cloned()
        .ok_or_else(|| ApiError::not_found("the thread's board is gone").html())?;
    Ok(private_html(pages::mod_thread(
        &ctx(&state, theme, &boards),
        &board,
        &full,
        &staff.0.csrf,
    )))
}

/// `POST /mod/post/{id}/delete`.
async fn post_delete(
    State(state): State<AppState>,
    staff: Staff,
    Path(raw): Path<String>,
    form: FormResult,
) -> Result<Response, ApiError> {
    let f = checked(&staff, form)?;
    let post = PostId(id(&raw, "post")?);
    let (removed, thread) = delete_post_as(&state, &staff.0.slip, post, &reason(&f)).await?;
    Ok(match removed {
        Removed::Post => Redirect::to(&format!("/mod/thread/{thread}")),
        Removed::Thread => Redirect::to("/mod"),
    }
    .into_response())
}

/// `POST /mod/post/{id}/spoiler` (`on` = true/false).
async fn post_spoiler(
    State(state): State<AppState>,
    staff: Staff,
    Path(raw): Path<String>,
    form: FormResult,
) -> Result<Response, ApiError> {
    let f = checked(&staff, form)?;
    let on = f.get("on").is_none_or(|v| v != "false");
    file_action(&state, &staff, &raw, &f, |id, by, reply| {
        ThreadMsg::SetSpoiler {
            id,
            spoiler: on,
            by,
            reply,
        }
    })
    .await
}

/// `POST /mod/post/{id}/file/delete`: deletes the file, keeps the post.
async fn post_file_delete(
    State(state): State<AppState>,
    staff: Staff,
    Path(raw): Path<String>,
    form: FormResult,
) -> Result<Response, ApiError> {
    let f = checked(&staff, form)?;
    file_action(&state, &staff, &raw, &f, |id, by, reply| {
        ThreadMsg::DeleteFile { id, by, reply }
    })
    .await
}

/// Sends a moderator's change to one post's file to the post's thread,
/// once the moderator is allowed on its board; back to the post after.
async fn file_action(
    state: &AppState,
    staff: &Staff,
    raw: &str,
    f: &Fields,
    msg: impl Fn(PostId, Option<ModBy>, Reply<Result<(), ActorError>>) -> ThreadMsg,
) -> Result<Response, ApiError> {
    let post = PostId(id(raw, "post")?);
    let (_, thread, board) = post_place(state, post).await.map_err(ApiError::html)?;
    require(&staff.0.slip, board)?;
    let by = Some(by(&staff.0.slip, &reason(f)));
    state
        .entities
        .ask(thread, |reply| msg(post, by.clone(), reply))
        .await
        .and_then(|r| r)
        .map_err(|e| ApiError::from(e).html())?;
    Ok(Redirect::to(&format!("/mod/thread/{thread}#{post}")).into_response())
}

/// `POST /mod/post/{id}/ban`: bans the poster's address (its /64 for
/// IPv6), on this board or all (`scope`), for `hours` (0: forever);
/// `delete=on` deletes the post too.
async fn post_ban(
    State(state): State<AppState>,
    staff: Staff,
    Path(raw): Path<String>,
    form: FormResult,
) -> Result<Response, ApiError> {
    let f = checked(&staff, form)?;
    let post = PostId(id(&raw, "post")?);
    let (ip, thread, board) = post_place(&state, post).await.map_err(ApiError::html)?;
    require(&staff.0.slip, board)?;
    let why = reason(&f);
    let ip = ip
        .parse()
        .map_err(|_| ApiError::bad_request("this post has no address to ban").html())?;
    let global = f.get("scope").is_some_and(|s| s == "global");
    if global && !(staff.0.slip.is_admin || staff.0.slip.is_mod) {
        return Err(ApiError::forbidden("board volunteers ban on their boards only").html());
    }
    let hours: i64 = f.get("hours").and_then(|h| h.parse().ok()).unwrap_or(24);
    let ban = new_ban(
        &state,
        &staff.0.slip,
        Cidr::of_client(ip),
        (!global).then_some(board),
        &why,
        hours,
        Some(post),
    )
    .await?;
    log(
        &state,
        &staff.0.slip,
        "ban",
        ban.board,
        format!("poster of post {post} ({})", ban.cidr),
        &why,
    )
    .await
    .map_err(ApiError::html)?;
    if f.get("delete").is_some_and(|d| d == "on") {
        let (removed, _) = delete_post_as(&state, &staff.0.slip, post, &why).await?;
        if removed == Removed::Thread {
            return Ok(Redirect::to("/mod").into_response());
        }
    }
    Ok(Redirect::to(&format!("/mod/thread/{thread}")).into_response())
}

/// Records a ban and refreshes this node's ban list.
async fn new_ban(
    state: &AppState,
    slip: &Slip,
    cidr: Cidr,
    board: Option<BoardId>,
    why: &str,
    hours: i64,
    post: Option<PostId>,
) -> Result<Ban, ApiError> {
    if why.is_empty() {
        return Err(ApiError::bad_request("a ban needs a reason: the banned user sees it").html());
    }
    let now = now_ms();
    let ban = state
        .store
        .create_ban(Ban {
            id: 0,
            cidr: cidr.to_string(),
            board,
            reason: why.to_string(),
            created: now,
            expires: (hours > 0).then(|| now.saturating_add(hours.saturating_mul(3_600_000))),
            slip: Some(slip.id),
            post,
        })
        .await
        .map_err(|e| ApiError::from(e).html())?;
    state
        .bans_changed()
        .await
        .map_err(|e| ApiError::from(e).html())?;
    Ok(ban)
}

/// The thread actions share their shape: check, ask the actor (which logs
/// the action with its change), go back.
async fn thread_action<T: serde::Serialize + serde::de::DeserializeOwned + Send + 'static>(
    state: &AppState,
    staff: &Staff,
    raw: &str,
    f: &Fields,
    msg: impl Fn(ModBy, Reply<Result<T, wani_actors::ActorError>>) -> ThreadMsg + Send + Sync,
) -> Result<ThreadId, ApiError> {
    let thread = ThreadId(id(raw, "thread")?);
    let board = thread_board(state, thread).await.map_err(ApiError::html)?;
    require(&staff.0.slip, board)?;
    let who = by(&staff.0.slip, &reason(f));
    state
        .entities
        .ask(thread, |reply| msg(who.clone(), reply))
        .await
        .and_then(|r| r)
        .map_err(|e| ApiError::from(e).html())?;
    Ok(thread)
}

fn flag_on(f: &Fields) -> bool {
    f.get("on").is_none_or(|v| v != "false")
}

/// `POST /mod/thread/{id}/delete`.
async fn thread_delete(
    State(state): State<AppState>,
    staff: Staff,
    Path(raw): Path<String>,
    form: FormResult,
) -> Result<Response, ApiError> {
    let f = checked(&staff, form)?;
    thread_action(&state, &staff, &raw, &f, |by, reply| {
        ThreadMsg::DeleteThread {
            by: Some(by),
            reply,
        }
    })
    .await?;
    Ok(Redirect::to("/mod").into_response())
}

/// `POST /mod/thread/{id}/sticky` (`on` = true/false).
async fn thread_sticky(
    State(state): State<AppState>,
    staff: Staff,
    Path(raw): Path<String>,
    form: FormResult,
) -> Result<Response, ApiError> {
    thread_flag(&state, &staff, &raw, form, Flag::Sticky).await
}

/// `POST /mod/thread/{id}/lock` (`on` = true/false).
async fn thread_lock(
    State(state): State<AppState>,
    staff: Staff,
    Path(raw): Path<String>,
    form: FormResult,
) -> Result<Response, ApiError> {
    thread_flag(&state, &staff, &raw, form, Flag::Locked).await
}

/// A thread flag a moderator turns on or off.
#[derive(Clone, Copy)]
enum Flag {
    Sticky,
    Locked,
}

/// Sets `flag` from the form's `on`, logs it, and goes back to the mod view.
async fn thread_flag(
    state: &AppState,
    staff: &Staff,
    raw: &str,
    form: FormResult,
    flag: Flag,
) -> Result<Response, ApiError> {
    let f = checked(staff, form)?;
    let on = flag_on(&f);
    let t = thread_action(state, staff, raw, &f, |by, reply| ThreadMsg::SetFlags {
        sticky: matches!(flag, Flag::Sticky).then_some(on),
        locked: matches!(flag, Flag::Locked).then_some(on),
        by: Some(by),
        reply,
    })
    .await?;
    Ok(Redirect::to(&format!("/mod/thread/{t}")).into_response())
}

/// `POST /mod/thread/{id}/move` (`board` = the destination's id).
async fn thread_move(
    State(state): State<AppState>,
    staff: Staff,
    Path(raw): Path<String>,
    form: FormResult,
) -> Result<Response, ApiError> {
    let f = checked(&staff, form)?;
    let to = f
        .get("board")
        .map(|b| state.board_id(b.trim()))
        .ok_or_else(|| ApiError::bad_request("choose the board to move the thread to").html())?
        .await
        .map_err(ApiError::html)?;
    // Moving a thread takes a role on both boards.
    require(&staff.0.slip, to)?;
    let t = thread_action(&state, &staff, &raw, &f, |by, reply| ThreadMsg::MoveTo {
        board: to,
        by: Some(by),
        reply,
    })
    .await?;
    Ok(Redirect::to(&format!("/mod/thread/{t}")).into_response())
}

/// `GET /mod/log`.
async fn log_page(
    State(state): State<AppState>,
    ThemeChoice(theme): ThemeChoice,
    staff: Staff,
) -> Result<Response, ApiError> {
    let boards = page_ctx_boards(&state).await?;
    let entries = state
        .store
        .mod_log_of(200, roles::held_boards(&staff.0.slip))
        .await
        .map_err(|e| ApiError::from(e).html())?;
    Ok(private_html(pages::mod_log(
        &ctx(&state, theme, &boards),
        &staff.0.slip,
        &entries,
    )))
}

/// `GET /mod/reports[?board=ID]`: open reports of the boards the viewer moderates.
async fn reports(
    State(state): State<AppState>,
    ThemeChoice(theme): ThemeChoice,
    staff: Staff,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let selected = q.get("board").and_then(|b| b.parse().ok()).map(BoardId);
    let boards = page_ctx_boards(&state).await?;
    let list: Vec<_> = state
        .store
        .reports(selected)
        .await
        .map_err(|e| ApiError::from(e).html())?
        .into_iter()
        .filter(|r| roles::can_moderate(&staff.0.slip, r.board))
        .collect();
    Ok(private_html(pages::reports(
        &ctx(&state, theme, &boards),
        &staff.0.slip,
        &staff.0.csrf,
        selected,
        &list,
    )))
}

/// `POST /mod/reports/{id}/dismiss`.
async fn dismiss(
    State(state): State<AppState>,
    staff: Staff,
    Path(raw): Path<String>,
    form: FormResult,
) -> Result<Response, ApiError> {
    let f = checked(&staff, form)?;
    let rid = id(&raw, "report")?;
    let report = state
        .store
        .report(rid)
        .await
        .map_err(|e| ApiError::from(e).html())?
        .ok_or_else(|| ApiError::not_found("this report is no longer open").html())?;
    require(&staff.0.slip, report.board)?;
    state
        .store
        .dismiss_report(rid)
        .await
        .map_err(|e| ApiError::from(e).html())?;
    log(
        &state,
        &staff.0.slip,
        "dismiss_report",
        Some(report.board),
        format!("report of post {}", report.post),
        &reason(&f),
    )
    .await
    .map_err(ApiError::html)?;
    Ok(Redirect::to("/mod/reports").into_response())
}

/// `GET /mod/bans`.
async fn bans(
    State(state): State<AppState>,
    ThemeChoice(theme): ThemeChoice,
    staff: Staff,
) -> Result<Response, ApiError> {
    let boards = page_ctx_boards(&state).await?;
    // A volunteer sees the bans of the boards they hold, not the addresses
    // banned elsewhere or site-wide.
    let list: Vec<_> = state
        .abuse
        .bans()
        .into_iter()
        .filter(|b| match b.board {
            Some(board) => roles::can_moderate(&staff.0.slip, board),
            None => roles::held_boards(&staff.0.slip).is_none(),
        })
        .collect();
    Ok(private_html(pages::bans(
        &ctx(&state, theme, &boards),
        &staff.0.slip,
        &staff.0.csrf,
        &list,
    )))
}

/// `POST /mod/bans`: a ban by address or range (`cidr`, `board`, `reason`, `hours`).
async fn ban_new(
    State(state): State<AppState>,
    staff: Staff,
    form: FormResult,
) -> Result<Response, ApiError> {
    let f = checked(&staff, form)?;
    let cidr = Cidr::parse(f.get("cidr").map(String::as_str).unwrap_or(""))
        .map_err(|e| ApiError::bad_request(e).html())?;
    let board = match f.get("board").map(|b| b.trim()).filter(|b| !b.is_empty()) {
        Some(b) => Some(state.board_id(b).await.map_err(ApiError::html)?),
        None => None,
    };
    match board {
        Some(b) => require(&staff.0.slip, b)?,
        None if staff.0.slip.is_admin || staff.0.slip.is_mod => {}
        None => {
            return Err(ApiError::forbidden("board volunteers ban on their boards only").html())
        }
    }
    let hours: i64 = f.get("hours").and_then(|h| h.parse().ok()).unwrap_or(24);
    let why = reason(&f);
    let ban = new_ban(&state, &staff.0.slip, cidr, board, &why, hours, None).await?;
    log(&state, &staff.0.slip, "ban", board, ban.cidr.clone(), &why)
        .await
        .map_err(ApiError::html)?;
    Ok(Redirect::to("/mod/bans").into_response())
}

/// `POST /mod/bans/{id}/delete`: lifts a ban.
async fn unban(
    State(state): State<AppState>,
    staff: Staff,
    Path(raw): Path<String>,
    form: FormResult,
) -> Result<Response, ApiError> {
    let f = checked(&staff, form)?;
    let bid = id(&raw, "ban")?;
    let ban = state
        .abuse
        .bans()
        .into_iter()
        .find(|b| b.id == bid)
        .ok_or_else(|| ApiError::not_found("this ban is not active").html())?;
    match ban.board {
        Some(b) => require(&staff.0.slip, b)?,
        None if staff.0.slip.is_admin || staff.0.slip.is_mod => {}
        None => return Err(ApiError::forbidden("you do not moderate every board").html()),
    }
    state
        .store
        .delete_ban(bid)
        .await
        .map_err(|e| ApiError::from(e).html())?;
    state
        .bans_changed()
        .await
        .map_err(|e| ApiError::from(e).html())?;
    log(
        &state,
        &staff.0.slip,
        "unban",
        ban.board,
        ban.cidr,
        &reason(&f),
    )
    .await
    .map_err(ApiError::html)?;
    Ok(Redirect::to("/mod/bans").into_response())
}

/// `GET /mod/boards` (admins).
async fn boards(
    State(state): State<AppState>,
    ThemeChoice(theme): ThemeChoice,
    staff: Staff,
) -> Result<Response, ApiError> {
    require_admin(&staff.0.slip)?;
    let boards = page_ctx_boards(&state).await?;
    Ok(private_html(pages::board_admin(
        &ctx(&state, theme, &boards),
        &staff.0.slip,
        &staff.0.csrf,
    )))
}

/// Board settings from the admin form, over `base`.
fn board_settings(f: &Fields, mut s: BoardSettings) -> Result<BoardSettings, ApiError> {
    let num = |k: &str, v: &mut i64| -> Result<(), ApiError> {
        if let Some(raw) = f.get(k).map(|r| r.trim()).filter(|r| !r.is_empty()) {
            *v = raw
                .parse()
                .map_err(|_| ApiError::bad_request(format!("{k} must be a whole number")).html())?;
        }
        Ok(())
    };
    if let Some(n) = f.get("name") {
        s.name = n.trim().to_string();
    }
    if let Some(t) = f.get("title") {
        s.title = t.trim().to_string();
    }
    if let Some(r) = f.get("rules") {
        s.rules = r.clone();
    }
    if let Some(m) = f.get("mimetypes") {
        s.mimetypes = m
            .split(',')
            .map(|m| m.trim().to_string())
            .filter(|m| !m.is_empty())
            .collect();
    }
    num("max_threads", &mut s.max_threads)?;
    num("bump_limit", &mut s.bump_limit)?;
    num("max_file_bytes", &mut s.max_file_bytes)?;
    num("thread_interval_secs", &mut s.thread_interval_secs)?;
    num("reply_interval_secs", &mut s.reply_interval_secs)?;
    // Unticked checkboxes are absent from the form.
    s.captcha_threads = f.get("captcha_threads").is_some_and(|v| v == "on");
    s.captcha_replies = f.get("captcha_replies").is_some_and(|v| v == "on");
    Ok(s)
}

/// `POST /mod/boards`: creates a board.
async fn board_create(
    State(state): State<AppState>,
    staff: Staff,
    form: FormResult,
) -> Result<Response, ApiError> {
    let f = checked(&staff, form)?;
    require_admin(&staff.0.slip)?;
    let settings = board_settings(&f, BoardSettings::default())?;
    let board = state
        .store
        .create_board(settings)
        .await
        .map_err(|e| ApiError::from(e).html())?;
    state.boards().await.map_err(ApiError::html)?;
    log(
        &state,
        &staff.0.slip,
        "create_board",
        Some(board.id),
        format!("/{}/", board.name),
        &reason(&f),
    )
    .await
    .map_err(ApiError::html)?;
    Ok(Redirect::to("/mod/boards").into_response())
}

/// `POST /mod/boards/{id}`: edits a board; its actor reloads the settings.
async fn board_edit(
    State(state): State<AppState>,
    staff: Staff,
    Path(raw): Path<String>,
    form: FormResult,
) -> Result<Response, ApiError> {
    let f = checked(&staff, form)?;
    require_admin(&staff.0.slip)?;
    let bid = BoardId(id(&raw, "board")?);
    let current = state
        .entities
        .ask(bid, |reply| BoardMsg::Info { reply })
        .await
        .map_err(|e| ApiError::from(e).html())?;
    let settings = board_settings(&f, current.settings())?;
    let board = state
        .store
        .update_board(bid, settings)
        .await
        .map_err(|e| ApiError::from(e).html())?;
    state
        .entities
        .ask(bid, |reply| BoardMsg::Reload { reply })
        .await
        .and_then(|r| r)
        .map_err(|e| ApiError::from(e).html())?;
    state.board_cache.forget(bid);
    state.boards().await.map_err(ApiError::html)?;
    log(
        &state,
        &staff.0.slip,
        "edit_board",
        Some(bid),
        format!("/{}/", board.name),
        &reason(&f),
    )
    .await
    .map_err(ApiError::html)?;
    Ok(Redirect::to("/mod/boards").into_response())
}

/// `GET /report/{post}`: the report form (anyone).
pub async fn report_form(
    State(state): State<AppState>,
    ThemeChoice(theme): ThemeChoice,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    let post = PostId(id(&raw, "post")?);
    let boards = page_ctx_boards(&state).await?;
    Ok(private_html(pages::report_form(
        &ctx(&state, theme, &boards),
        post,
    )))
}

/// Longest report reason kept, in characters.
const MAX_REASON_CHARS: usize = 200;

/// `POST /report/{post}`: anyone reports a post with a reason; reports of
/// the same post fold together. The cross-site guard covers this form
/// (it is anonymous, so it has no session token).
pub async fn report(
    State(state): State<AppState>,
    ThemeChoice(theme): ThemeChoice,
    ClientAddr(ip): ClientAddr,
    Path(raw): Path<String>,
    form: FormResult,
) -> Result<Response, ApiError> {
    let f = read_form(form)?;
    let post = PostId(id(&raw, "post")?);
    let why: String = reason(&f).chars().take(MAX_REASON_CHARS).collect();
    if why.is_empty() {
        return Err(ApiError::bad_request("say why you report this post").html());
    }
    state
        .abuse
        .limit(Limited::Report, &ip, now_ms())
        .map_err(|secs| {
            ApiError::too_many(
                secs,
                format!("you have sent many reports: wait {secs} seconds before the next"),
            )
            .html()
        })?;
    let r = state
        .store
        .report_post(post, &why, now_ms())
        .await
        .map_err(|e| ApiError::from(e).html())?;
    let boards = page_ctx_boards(&state).await?;
    Ok(private_html(pages::done(
        &ctx(&state, theme, &boards),
        "Thank you: the moderators will look at this post.",
        &format!("/threads/{}#{}", r.thread, r.post),
    )))
}
