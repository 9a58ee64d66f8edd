//! Debug-only routes for the chaos harness (`chaos-tests/`). Compiled into
//! debug builds only: a release build has no such routes at all.
//!
//! `POST /api/v1/debug/panic/thread/{id}` makes the thread's actor panic if
//! this node hosts it (200 once it has stopped), and answers 404 otherwise,
//! so the harness asks every node. The supervisor must then restart the
//! thread on its next message, from the store, with nothing lost.

use super::{ApiError, AppState};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use std::time::Duration;
use wani_actors::region::Route;
use wani_store::ThreadId;

/// The debug routes, nested under `/api/v1/debug`.
pub fn routes() -> axum::Router<AppState> {
    axum::Router::new().route(
        "/debug/panic/thread/{id}",
        axum::routing::post(panic_thread),
    )
}

async fn panic_thread(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    if state
        .entities
        .route(wani_actors::names::thread(ThreadId(id)))
        != Route::Here
    {
        return Err(ApiError::not_found(format!(
            "thread {id} is not hosted on this node"
        )));
    }
    let actor = state
        .entities
        .actor::<wani_actors::ThreadMsg>(ThreadId(id))
        .await?;
    actor
        .cast(wani_actors::ThreadMsg::Crash)
        .map_err(|e| ApiError::internal(format!("the thread actor stopped first: {e}")))?;
    // Answer once it is gone, so the harness knows the next message restarts it.
    let _ = actor.wait(Some(Duration::from_secs(5))).await;
    Ok((StatusCode::OK, Json(serde_json::json!({"panicked": id}))))
}
