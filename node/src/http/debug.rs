//! Debug-only routes for the chaos harness and the supervision tests.
//! Compiled into debug builds only: a release build has no such routes.
//!
//! - `POST /api/v1/debug/panic/thread/{id}` and `…/board/{id}`: the entity's
//!   actor panics if this node hosts it (200 once it has stopped; 404
//!   otherwise, so the harness asks every node). Its next message
//!   re-activates it from the store.
//! - `POST /api/v1/debug/panic/actor/{name}[?times=N]`: the child `name` of
//!   this node's supervision tree (`region`, `live-hub`, `transport`,
//!   `cluster/membership`, `renderer` and `thumbnailer` (one of their
//!   workers), `handover`, `lease-renewal`, `ban-reload`) panics, N times in
//!   a row (default 1); each time the answer waits until the crash is
//!   counted. Enough times in a row is a crash loop: the node turns unready.

use super::ApiError;
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use std::time::{Duration, Instant};
use wani_actors::region::Route;
use wani_actors::{BoardMsg, EntityMsg, ThreadMsg};
use wani_store::{BoardId, ThreadId};

/// The debug routes, nested under `/api/v1`.
pub fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route(
            "/debug/panic/thread/{id}",
            axum::routing::post(panic_thread),
        )
        .route("/debug/panic/board/{id}", axum::routing::post(panic_board))
        .route(
            "/debug/panic/actor/{*name}",
            axum::routing::post(panic_actor),
        )
}

async fn panic_thread(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    panic_entity::<ThreadMsg>(&state, ThreadId(id), ThreadMsg::Crash).await
}

async fn panic_board(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    panic_entity::<BoardMsg>(&state, BoardId(id), BoardMsg::Crash).await
}

async fn panic_entity<M: EntityMsg>(
    state: &AppState,
    id: M::Id,
    crash: M,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let key = wani_supervision::EntityKey::new(M::KIND, id.into());
    if state.entities.route(key) != Route::Here {
        return Err(ApiError::not_found(format!(
            "{key} is not hosted on this node"
        )));
    }
    let actor = state.entities.actor::<M>(id).await?;
    actor
        .cast(crash)
        .map_err(|e| ApiError::internal(format!("the actor stopped first: {e}")))?;
    // Answer once it is gone, so the harness knows the next message restarts it.
    let _ = actor.wait(Some(Duration::from_secs(5))).await;
    Ok((
        StatusCode::OK,
        Json(serde_json::json!({"panicked": key.to_string()})),
    ))
}

#[derive(serde::Deserialize)]
struct Times {
    #[serde(default = "one")]
    times: u32,
}

fn one() -> u32 {
    1
}

async fn panic_actor(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<Times>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    // A pool's hook makes one of its workers panic; the pool counts those.
    let counted = match name.as_str() {
        "renderer" => "renderer-worker".to_string(),
        "thumbnailer" => "thumbnailer-worker".to_string(),
        other => other.to_string(),
    };
    let restarts = |state: &AppState| {
        state
            .restarts()
            .into_iter()
            .find(|(a, _)| *a == counted)
            .map_or(0, |(_, n)| n)
    };
    for _ in 0..q.times.clamp(1, 100) {
        let before = restarts(&state);
        if !state.tree.crash(&name).await {
            return Err(ApiError::not_found(format!(
                "this node runs no actor {name:?} with a crash hook"
            )));
        }
        // Counted as restarted, or (a crash loop) as the reason the node
        // is not ready.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let looping = state
                .tree
                .health()
                .unready_reason()
                .is_some_and(|r| r.starts_with(&format!("{name}:")));
            if restarts(&state) > before || looping {
                break;
            }
            if Instant::now() > deadline {
                return Err(ApiError::internal(format!(
                    "{name} did not crash and restart within 5 s"
                )));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    Ok((
        StatusCode::OK,
        Json(serde_json::json!({"panicked": name, "restarts": restarts(&state)})),
    ))
}
