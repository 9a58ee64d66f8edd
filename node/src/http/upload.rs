//! Post submissions: the multipart form, and the upload's way into the blob store.
//!
//! Both the HTML forms and the JSON API post `multipart/form-data` with the
//! same field names (Maniwani's). The file goes through three gates before a
//! post references it: cheap checks on the bytes in hand (size, type sniffed
//! from the content, the board's accepted types), then the blob store, then
//! the thumbnailer (pixel limit before decoding, full decode, thumbnail).
//! Whatever fails after the bytes were stored removes them again unless
//! another post already uses the same content, so a refused upload leaves
//! nothing behind.

use super::{ApiError, AppState};
use axum::extract::multipart::{Multipart, MultipartError, MultipartRejection};
use axum::http::StatusCode;
use bytes::Bytes;
use std::collections::HashMap;
use wani_actors::media::{self, MediaLimits, ThumbOptions};
use wani_actors::PostDraft;
use wani_store::{Board, NewMedia};

/// Longest text field accepted (the body limit is checked later, with a
/// precise message; this only bounds memory).
const MAX_FIELD_BYTES: usize = 64 * 1024;

/// A submitted form.
#[derive(Default)]
pub struct Submission {
    pub fields: HashMap<String, String>,
    pub file: Option<Bytes>,
}

impl Submission {
    pub fn text(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
    /// A checkbox or boolean field: on, true, 1, yes.
    pub fn flag(&self, name: &str) -> bool {
        matches!(
            self.text(name)
                .map(|v| v.trim().to_ascii_lowercase())
                .as_deref(),
            Some("on" | "true" | "1" | "yes")
        )
    }
}

fn multipart_error(e: MultipartError, max: u64) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the upload is larger than the {} this server accepts",
                crate::pages::html::human_size(max as i64)
            ),
        )
    } else {
        ApiError::bad_request(format!("the form could not be read: {}", e.body_text()))
    }
}

/// Reads the whole form. The file field is `media` (also `file`).
pub async fn read(
    form: Result<Multipart, MultipartRejection>,
    max_upload: u64,
) -> Result<Submission, ApiError> {
    let mut form = form.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("expected a multipart/form-data body: {}", e.body_text()),
        )
    })?;
    let mut s = Submission::default();
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| multipart_error(e, max_upload))?
    {
        let name = field.name().unwrap_or("").to_string();
        if name == "media" || name == "file" {
            let has_name = field.file_name().is_some_and(|n| !n.is_empty());
            let bytes = field
                .bytes()
                .await
                .map_err(|e| multipart_error(e, max_upload))?;
            // Browsers send an empty, unnamed part when no file was chosen.
            if has_name || !bytes.is_empty() {
                s.file = Some(bytes);
            }
        } else {
            let bytes = field
                .bytes()
                .await
                .map_err(|e| multipart_error(e, max_upload))?;
            if bytes.len() > MAX_FIELD_BYTES {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("the field {name:?} is too long"),
                ));
            }
            let text = String::from_utf8(bytes.to_vec()).map_err(|_| {
                ApiError::bad_request(format!("the field {name:?} is not valid UTF-8 text"))
            })?;
            s.fields.insert(name, text);
        }
    }
    Ok(s)
}

/// Checks, stores and thumbnails an upload for `board`.
pub async fn store_media(
    state: &AppState,
    board: &Board,
    file: Bytes,
) -> Result<NewMedia, ApiError> {
    let limits = MediaLimits {
        max_bytes: board.max_file_bytes.max(0) as u64,
        max_pixels: state.config.media.max_pixels,
        accepted: board.mimetypes.clone(),
    };
    media::precheck(&file, &limits)
        .map_err(|e| ApiError::from(wani_actors::ThumbError::Media(e)))?;
    let key = state.blobs.put(file).await?;
    let options = ThumbOptions {
        max_side: state.config.media.thumb_max_side,
        background: crate::pages::theme_background(crate::pages::Theme::default()),
        jpeg_quality: 85,
    };
    match state
        .thumbnailer
        .process(key.clone(), limits, options)
        .await
    {
        Ok(m) => Ok(m),
        Err(e) => {
            discard(state, &[key]).await;
            Err(e.into())
        }
    }
}

/// Deletes blobs of a post that was not written, unless a stored post uses
/// the same content.
pub async fn discard(state: &AppState, keys: &[String]) {
    for key in keys {
        match state.store.blob_in_use(key).await {
            Ok(false) => {
                if let Err(e) = state.blobs.delete(key).await {
                    tracing::warn!(%key, error = %e, "could not delete an unused upload");
                }
            }
            Ok(true) => {}
            Err(e) => {
                tracing::warn!(%key, error = %e, "could not check whether an upload is in use")
            }
        }
    }
}

/// Removes the media of a failed write.
pub async fn discard_media(state: &AppState, media: &Option<NewMedia>) {
    if let Some(m) = media {
        discard(state, &[m.blob.clone(), m.thumb_blob.clone()]).await;
    }
}

/// The draft of a post from a submission; the idempotency key comes from the
/// `Idempotency-Key` header or field, or is made up (a form without one is
/// simply not retried safely).
pub fn draft(
    s: &Submission,
    ip: String,
    media: Option<NewMedia>,
    idempotency_key: Option<String>,
) -> PostDraft {
    PostDraft {
        body: s.text("body").unwrap_or("").to_string(),
        ip,
        media,
        spoiler: s.flag("spoiler"),
        sage: s.flag("sage")
            || s.text("email")
                .is_some_and(|e| e.trim().eq_ignore_ascii_case("sage")),
        idempotency_key: idempotency_key
            .or_else(|| s.text("idempotency_key").map(str::to_string))
            .filter(|k| !k.is_empty() && k.len() <= 128)
            .unwrap_or_else(random_key),
    }
}

fn random_key() -> String {
    let bytes: [u8; 16] = rand::random();
    hex::encode(bytes)
}
