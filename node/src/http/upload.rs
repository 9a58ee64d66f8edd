//! Post submissions: the multipart form, and the upload's way into the blob store.
//!
//! Both the HTML forms and the JSON API post `multipart/form-data` with the
//! same field names (Maniwani's). The file goes through three gates before a
//! post references it: cheap checks on the bytes in hand (size, type sniffed
//! from the content, the board's accepted types), then the blob store, then
//! the thumbnailer (pixel limit before decoding, full decode, thumbnail).
//! Whatever fails after the bytes were stored removes them again unless
//! another post already uses the same content, so a refused upload leaves
//! nothing behind. What is stored is the upload with its metadata stripped
//! (EXIF, XMP, GPS, comments), keyed by the SHA-256 of those bytes, so
//! duplicates are found by what is served.

use super::ApiError;
use crate::config::MediaConfig;
use crate::state::AppState;
use axum::extract::multipart::{Multipart, MultipartError, MultipartRejection};
use axum::http::StatusCode;
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::Arc;
use wani_actors::PostDraft;
use wani_actors::Thumbnailer;
use wani_media::{AlphaThumb, MediaError, MediaLimits, ThumbOptions};
use wani_store::blob::BlobStore;
use wani_store::{Board, NewMedia};

/// Longest text field accepted (the body limit is checked later, with a
/// precise message; this only bounds memory).
const MAX_FIELD_BYTES: usize = 64 * 1024;

/// A submitted form.
#[derive(Default)]
pub struct Submission {
    pub fields: HashMap<String, String>,
    pub file: Option<Bytes>,
    /// The file's name as the client sent it, cleaned by [`file_name`].
    pub file_name: Option<String>,
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
            s.file_name = field.file_name().and_then(file_name);
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

/// [`read`] on a request with this `Content-Type` and body, as the router
/// hands it over, for the fuzz targets (`fuzz/`). `Ok` carries the number of
/// text fields and the file's length, if there is a file.
#[doc(hidden)]
pub async fn fuzz_read(
    content_type: &[u8],
    body: Bytes,
    max_upload: u64,
) -> Result<(usize, Option<usize>), ApiError> {
    use axum::extract::FromRequest;
    let request = axum::http::Request::builder()
        .method("POST")
        .header(axum::http::header::CONTENT_TYPE, content_type)
        .body(axum::body::Body::from(body))
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let form = Multipart::from_request(request, &()).await;
    let s = read(form, max_upload).await?;
    Ok((s.fields.len(), s.file.as_ref().map(Bytes::len)))
}

/// A board's limits, with the node's pixel limit as a ceiling.
pub fn board_limits(pipe: &MediaPipe<'_>, board: &Board) -> MediaLimits {
    let node_pixels = pipe.config.max_pixels;
    let max_pixels = match u64::try_from(board.max_pixels) {
        Ok(p) if p > 0 => p.min(node_pixels),
        _ => node_pixels,
    };
    MediaLimits {
        max_bytes: board.max_file_bytes.max(0) as u64,
        max_pixels,
        accepted: board.mimetypes.clone(),
        max_frames: board.max_frames.max(0) as u64,
        max_duration_ms: (board.max_duration_secs.max(0) as u64).saturating_mul(1000),
    }
}

/// What storing a file needs: a node's parts ([`AppState::media_pipe`]), or
/// an import's, which stores files the way an upload is stored.
pub struct MediaPipe<'a> {
    pub store: &'a wani_store::Store,
    pub blobs: &'a Arc<dyn BlobStore>,
    pub thumbnailer: &'a Thumbnailer,
    pub config: &'a MediaConfig,
}

impl AppState {
    /// This node's media pipeline.
    pub fn media_pipe(&self) -> MediaPipe<'_> {
        MediaPipe {
            store: &self.store,
            blobs: &self.blobs,
            thumbnailer: &self.thumbnailer,
            config: &self.config.media,
        }
    }
}

/// How thumbnails are made on this node.
pub fn thumb_options(pipe: &MediaPipe<'_>) -> ThumbOptions {
    ThumbOptions {
        max_side: pipe.config.thumb_max_side,
        background: crate::pages::theme_background(crate::pages::Theme::default()),
        jpeg_quality: 85,
        alpha: AlphaThumb::parse(&pipe.config.thumb_alpha).unwrap_or_default(),
    }
}

fn refuse(e: MediaError) -> ApiError {
    ApiError::from(wani_actors::ThumbError::Media(e))
}

/// Checks, strips, stores and thumbnails an upload for `board`.
///
/// The order keeps refused uploads from ever reaching the blob store: the
/// cheap checks, then metadata stripping and the polyglot scan (on a
/// blocking thread: they read every byte), then the hash of the *stripped*
/// bytes, which is the blob key. With that key, a board with "no reposts"
/// refuses a file it already shows, and a file stored before is reused
/// (its thumbnail and dimensions, held to this board's limits) instead of
/// being decoded again. Only then are the bytes stored and thumbnailed.
/// Two identical uploads racing on a "no reposts" board may both pass.
pub async fn store_media(
    pipe: &MediaPipe<'_>,
    board: &Board,
    file: Bytes,
    name: Option<String>,
) -> Result<NewMedia, ApiError> {
    let limits = board_limits(pipe, board);
    let sniffed = wani_media::precheck(&file, &limits).map_err(refuse)?;
    if matches!(sniffed.format, wani_media::FileFormat::Video(_))
        && !pipe.thumbnailer.video_available()
    {
        return Err(refuse(MediaError::VideoUnavailable));
    }
    let check = limits.clone();
    // Both digests of the bytes served, in the one pass off the runtime:
    // the blob key, and the MD5 the 4chan API publishes.
    let (prepared, key, md5) = tokio::task::spawn_blocking(move || {
        let prepared = wani_media::prepare(&file, &check)?;
        let key = wani_store::blob::blob_key(&prepared.bytes);
        let md5 = wani_media::md5_base64(&prepared.bytes);
        Ok::<_, MediaError>((prepared, key, md5))
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(refuse)?;
    let named = |m: NewMedia| NewMedia {
        file_name: name.clone(),
        md5: Some(md5.clone()),
        ..m
    };

    if board.no_reposts {
        if let Some((post, thread)) = pipe.store.post_with_blob(board.id, &key).await? {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!(
                    "this file is already on /{}/ (no reposts on this board): \
                     >>{post} at /threads/{thread}#{post}",
                    board.name
                ),
            ));
        }
    }
    if let Some(existing) = reusable(pipe, &key).await? {
        within_limits(&existing, &limits).map_err(refuse)?;
        return Ok(named(existing));
    }

    let key = pipe
        .blobs
        .put_typed(Bytes::from(prepared.bytes), sniffed.mimetype)
        .await?;
    match pipe
        .thumbnailer
        .process(key.clone(), limits, thumb_options(pipe))
        .await
    {
        Ok(m) => Ok(named(m)),
        Err(e) => {
            discard(pipe, &[key]).await;
            Err(e.into())
        }
    }
}

/// The media already stored for blob `key`, if its original and thumbnail
/// are both still in the blob store.
async fn reusable(pipe: &MediaPipe<'_>, key: &str) -> Result<Option<NewMedia>, ApiError> {
    let Some(m) = pipe.store.media_by_blob(key).await? else {
        return Ok(None);
    };
    if !pipe.blobs.exists(&m.blob).await? || !pipe.blobs.exists(&m.thumb_blob).await? {
        return Ok(None);
    }
    Ok(Some(NewMedia {
        blob: m.blob,
        thumb_blob: m.thumb_blob,
        mimetype: m.mimetype,
        ext: m.ext,
        is_animated: m.is_animated,
        width: m.width,
        height: m.height,
        thumb_width: m.thumb_width,
        thumb_height: m.thumb_height,
        size_bytes: m.size_bytes,
        thumb_mimetype: m.thumb_mimetype,
        duration_ms: m.duration_ms,
        frames: m.frames,
        md5: m.md5,
        file_name: None,
    }))
}

/// A reused file is held to this board's limits, which may be stricter
/// than those of the board it was first posted on.
fn within_limits(m: &NewMedia, limits: &MediaLimits) -> Result<(), MediaError> {
    let (w, h) = (m.width.max(0) as u64, m.height.max(0) as u64);
    if w * h > limits.max_pixels {
        return Err(MediaError::TooManyPixels {
            width: w as u32,
            height: h as u32,
            limit: limits.max_pixels,
        });
    }
    let frames = m.frames.max(0) as u64;
    if limits.max_frames > 0 && frames > limits.max_frames {
        return Err(MediaError::TooManyFrames {
            frames,
            limit: limits.max_frames,
        });
    }
    let duration_ms = m.duration_ms.max(0) as u64;
    if limits.max_duration_ms > 0 && duration_ms > limits.max_duration_ms {
        return Err(MediaError::TooLong {
            duration_ms,
            limit_ms: limits.max_duration_ms,
        });
    }
    Ok(())
}

/// Deletes blobs of a post that was not written, unless a stored post uses
/// the same content.
pub async fn discard(pipe: &MediaPipe<'_>, keys: &[String]) {
    for key in keys {
        match pipe.store.blob_in_use(key).await {
            Ok(false) => {
                if let Err(e) = pipe.blobs.delete(key).await {
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
        discard(&state.media_pipe(), &[m.blob.clone(), m.thumb_blob.clone()]).await;
    }
}

/// Longest file name kept, in characters.
const MAX_FILE_NAME: usize = 128;

/// An uploaded file's name as shown to clients: the last path component
/// (some browsers send the whole path), without its extension (the stored
/// file's type decides that), without control characters, at most
/// [`MAX_FILE_NAME`] characters; `None` when nothing is left.
pub fn file_name(sent: &str) -> Option<String> {
    let base = sent.rsplit(['/', '\\']).next().unwrap_or(sent);
    let stem = match base.rsplit_once('.') {
        Some((stem, _)) if !stem.is_empty() => stem,
        _ => base,
    };
    let clean: String = stem
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_FILE_NAME)
        .collect();
    let clean = clean.trim();
    (!clean.is_empty()).then(|| clean.to_string())
}

/// The draft of a post from a submission; the idempotency key is the
/// client's, scoped to its sender ([`super::guard::Poster::idempotency_key`]),
/// or made up (a form without one is simply not retried safely).
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
        idempotency_key: idempotency_key.unwrap_or_else(random_key),
        // Set by the caller, which knows who posts (see `guard::Poster`).
        author: Default::default(),
        privileged: false,
    }
}

fn random_key() -> String {
    let bytes: [u8; 16] = rand::random();
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::file_name;

    #[test]
    fn file_names_lose_folders_extensions_and_control_characters() {
        assert_eq!(file_name("cat.png").as_deref(), Some("cat"));
        assert_eq!(
            file_name("C:\\fakepath\\My Cat.jpeg").as_deref(),
            Some("My Cat")
        );
        assert_eq!(file_name("/home/u/a.b.gif").as_deref(), Some("a.b"));
        assert_eq!(file_name(".bashrc").as_deref(), Some(".bashrc"));
        assert_eq!(file_name("a\u{0}b\nc.png").as_deref(), Some("abc"));
        assert_eq!(file_name("  .png"), None);
        assert_eq!(file_name(""), None);
        assert_eq!(
            file_name(&"x".repeat(500)).map(|n| n.chars().count()),
            Some(128)
        );
    }
}
