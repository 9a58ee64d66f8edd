//! One error type for every handler.
//!
//! 4xx answers carry their message (what the user did wrong and how to fix
//! it); 5xx answers say only that something failed, and the cause is logged
//! once here. API routes answer `{"error": "..."}`; page routes answer an
//! HTML page with the same message.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use wani_actors::{ActorError, ThumbError};
use wani_store::StoreError;

/// How an error is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Html,
}

/// An error answered to a client.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub format: Format,
    /// Seconds, for 429 and 503.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            format: Format::Json,
            retry_after: None,
        }
    }
    pub fn bad_request(m: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, m)
    }
    pub fn not_found(m: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, m)
    }
    /// 403: the request is understood and refused (a role, a ban, a
    /// missing CSRF token or captcha); the message says why.
    pub fn forbidden(m: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, m)
    }
    /// 429 with `Retry-After: secs`.
    pub fn too_many(secs: u64, m: impl Into<String>) -> ApiError {
        ApiError {
            retry_after: Some(secs.max(1)),
            ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, m)
        }
    }
    /// An internal failure: the cause is logged, the client sees a generic message.
    pub fn internal(cause: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %cause, "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "something went wrong on our side; please try again",
        )
    }
    /// A temporary failure: logged, and the client is told to retry.
    pub fn unavailable(cause: impl std::fmt::Display) -> ApiError {
        tracing::warn!(error = %cause, "service unavailable");
        ApiError {
            retry_after: Some(2),
            ..ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the server is busy; please try again in a moment",
            )
        }
    }
    /// A full disk (507): nothing was stored, and retrying soon will not help.
    pub fn storage_full(cause: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %cause, "storage full");
        ApiError::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "the server's storage is full: nothing was stored; please try again later",
        )
    }
    /// A write refused by its shard lease (503): nothing was stored, and the
    /// same request, sent again, reaches the entity's new owner.
    pub fn fenced(cause: impl std::fmt::Display) -> ApiError {
        tracing::info!(error = %cause, "write fenced off during a hand-over");
        ApiError {
            retry_after: Some(1),
            ..ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "this was not stored: the thread was moving to another server; please send it again",
            )
        }
    }
    /// Shows this error as an HTML page.
    pub fn html(mut self) -> ApiError {
        self.format = Format::Html;
        self
    }
}

impl From<ActorError> for ApiError {
    fn from(e: ActorError) -> Self {
        match e {
            ActorError::NotFound(m) => ApiError::not_found(m),
            ActorError::Invalid(m) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, m),
            ActorError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, m),
            e @ ActorError::Fenced { .. } => ApiError::fenced(e),
            ActorError::StorageFull(m) => ApiError::storage_full(m),
            ActorError::Unavailable(m) => ApiError::unavailable(m),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(m) => ApiError::not_found(m),
            StoreError::Invalid(m) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, m),
            StoreError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, m),
            e @ StoreError::Fenced { .. } => ApiError::fenced(e),
            StoreError::StorageFull(m) => ApiError::storage_full(m),
            StoreError::Unavailable(m) => ApiError::unavailable(m),
        }
    }
}

impl From<ThumbError> for ApiError {
    fn from(e: ThumbError) -> Self {
        match e {
            ThumbError::Media(m) => {
                let status =
                    StatusCode::from_u16(m.status()).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
                ApiError::new(status, m.to_string())
            }
            ThumbError::StorageFull(m) => ApiError::storage_full(m),
            ThumbError::Unavailable(m) => ApiError::unavailable(m),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = match self.format {
            Format::Json => {
                let body = serde_json::json!({ "error": self.message }).to_string();
                (
                    self.status,
                    [(header::CONTENT_TYPE, "application/json")],
                    body,
                )
                    .into_response()
            }
            Format::Html => {
                let ctx = crate::pages::PageCtx {
                    theme: crate::pages::Theme::default(),
                    site_name: "wani",
                    boards: &[],
                };
                let body = crate::pages::error(&ctx, self.status.as_u16(), &self.message);
                (
                    self.status,
                    [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                    body,
                )
                    .into_response()
            }
        };
        if let Some(secs) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                res.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The status follows the error's type, whichever entity or layer
    /// raised it: a fenced thread or board write is "not stored, send it
    /// again" (503), a full disk is 507 whatever its message says.
    #[test]
    fn typed_errors_choose_the_status() {
        let fenced_reply = ApiError::from(ActorError::Fenced { shard: 3 });
        let fenced_thread = ApiError::from(StoreError::Fenced { shard: 3, epoch: 9 });
        for e in [fenced_reply, fenced_thread] {
            assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
            assert!(e.message.contains("not stored"), "{}", e.message);
            assert_eq!(e.retry_after, Some(1));
        }
        for e in [
            ApiError::from(ActorError::StorageFull("x".into())),
            ApiError::from(StoreError::StorageFull("x".into())),
            ApiError::from(ThumbError::StorageFull("x".into())),
        ] {
            assert_eq!(e.status, StatusCode::INSUFFICIENT_STORAGE);
        }
        // Text that merely mentions a full disk is not a full disk.
        let busy = ApiError::from(ActorError::Unavailable("No space left on device".into()));
        assert_eq!(busy.status, StatusCode::SERVICE_UNAVAILABLE);
    }
}
