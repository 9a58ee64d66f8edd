//! `process`: from uploaded bytes to stored metadata and a thumbnail.

use std::fmt;
use std::panic::{self, AssertUnwindSafe};

use super::decode::decode;
use super::error::MediaError;
use super::options::{MediaLimits, ThumbOptions};
use super::polyglot::html_marker;
use super::sniff::{sniff, FileFormat, Sniffed};
use super::strip::strip;
use super::thumb::{fit, thumbnail};

/// What an accepted upload turned out to be, and its thumbnail.
#[derive(Clone, PartialEq, Eq)]
pub struct Processed {
    /// MIME type from the bytes, e.g. `image/png`.
    pub mimetype: String,
    /// Extension to store and serve the original under, without a dot.
    pub ext: String,
    /// Width as displayed, i.e. after the EXIF rotation (which browsers apply).
    pub width: u32,
    /// Height as displayed.
    pub height: u32,
    /// A GIF, WebP or APNG with more than one frame.
    pub is_animated: bool,
    /// Frames in the container (1 for a still or a video).
    pub frames: u64,
    /// A video's length in milliseconds; 0 for images.
    pub duration_ms: u64,
    /// The encoded thumbnail.
    pub thumb: Vec<u8>,
    /// `image/jpeg`, or `image/png` / `image/webp` for an image with
    /// transparency when [`ThumbOptions::alpha`] asks for it.
    pub thumb_mimetype: String,
    /// Thumbnail width; at most [`ThumbOptions::max_side`], and no larger
    /// than the original.
    pub thumb_width: u32,
    /// Thumbnail height.
    pub thumb_height: u32,
}

impl fmt::Debug for Processed {
    /// Like a derive, but the thumbnail shows as its length, not its bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Processed")
            .field("mimetype", &self.mimetype)
            .field("ext", &self.ext)
            .field("width", &self.width)
            .field("height", &self.height)
            .field("is_animated", &self.is_animated)
            .field("frames", &self.frames)
            .field("duration_ms", &self.duration_ms)
            .field("thumb", &format_args!("<{} bytes>", self.thumb.len()))
            .field("thumb_mimetype", &self.thumb_mimetype)
            .field("thumb_width", &self.thumb_width)
            .field("thumb_height", &self.thumb_height)
            .finish()
    }
}

/// The checks that need no decoding: empty, byte size, sniffed type,
/// accepted type. Cheap enough to run on the request path before an upload
/// is stored; [`process`] runs them again first.
pub fn precheck(bytes: &[u8], limits: &MediaLimits) -> Result<Sniffed, MediaError> {
    if bytes.is_empty() {
        return Err(MediaError::Empty);
    }
    let size = bytes.len() as u64;
    if size > limits.max_bytes {
        return Err(MediaError::TooLarge {
            size,
            limit: limits.max_bytes,
        });
    }
    let sniffed = sniff(bytes).ok_or(MediaError::UnknownType)?;
    if !limits.accepts(sniffed.mimetype) {
        return Err(MediaError::NotAccepted {
            mimetype: sniffed.mimetype.to_owned(),
            accepted: limits.accepted.clone(),
        });
    }
    Ok(sniffed)
}

/// An upload ready to be stored: checked, and stripped of metadata.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// What the bytes are.
    pub sniffed: Sniffed,
    /// The bytes to store and serve: the upload without EXIF, XMP, comments
    /// and trailers (JPEG, PNG, WebP), or as uploaded (GIF, video).
    pub bytes: Vec<u8>,
}

/// [`precheck`], then metadata stripping (which walks the file's framing,
/// so a truncated image is refused here) and the polyglot scan. Linear in
/// the size of the upload and allocation-light: meant for a blocking
/// thread on the request path, before the upload is stored.
pub fn prepare(bytes: &[u8], limits: &MediaLimits) -> Result<Prepared, MediaError> {
    let sniffed = precheck(bytes, limits)?;
    let stripped = match sniffed.format {
        FileFormat::Image(format) => strip(bytes, format)?,
        FileFormat::Video(_) => bytes.to_vec(),
    };
    // The original is scanned, not the stripped copy: a file built to be a
    // web page is refused even when stripping would have defused it.
    if let Some(marker) = html_marker(bytes) {
        return Err(MediaError::Polyglot(marker.to_owned()));
    }
    Ok(Prepared {
        sniffed,
        bytes: stripped,
    })
}

/// Checks an upload against `limits` and makes its thumbnail.
///
/// The checks run cheapest first, and each only once the previous passed:
/// empty, byte size, type sniffed from the bytes, type accepted by the
/// board, dimensions from the header against the pixel limit, the file's
/// framing (truncation), and finally the full decode. CPU-bound and
/// synchronous: call it from a blocking thread, not an async task.
pub fn process(
    bytes: &[u8],
    limits: &MediaLimits,
    options: &ThumbOptions,
) -> Result<Processed, MediaError> {
    let sniffed = precheck(bytes, limits)?;
    let Some(format) = sniffed.format.image() else {
        // Video goes through `video::process` (ffmpeg) in the thumbnailer.
        return Err(MediaError::VideoUnavailable);
    };

    // The codecs are third-party parsers fed hostile bytes. Should one of
    // them panic, that is a corrupt file for this upload, not a crashed
    // thumbnailer for everyone queued behind it. Nothing outlives the
    // closure but its result, so no broken state can be observed.
    let made = panic::catch_unwind(AssertUnwindSafe(|| {
        let decoded = decode(
            bytes,
            format,
            limits.max_pixels,
            limits.max_frames,
            options.max_side,
        )?;
        if let Some(marker) = html_marker(bytes) {
            return Err(MediaError::Polyglot(marker.to_owned()));
        }
        let (width, height) = displayed_size(&decoded);
        let size = fit(decoded.width, decoded.height, options.max_side);
        let thumb = thumbnail(decoded.pixels, decoded.orientation, size, options)?;
        Ok::<_, MediaError>((width, height, decoded.frames, thumb))
    }));
    let (width, height, frames, thumb) = match made {
        Ok(result) => result?,
        Err(_) => {
            return Err(MediaError::Corrupt(
                "the decoder failed on this file".to_owned(),
            ))
        }
    };

    Ok(Processed {
        mimetype: sniffed.mimetype.to_owned(),
        ext: sniffed.ext.to_owned(),
        width,
        height,
        is_animated: frames > 1,
        frames,
        duration_ms: 0,
        thumb: thumb.bytes,
        thumb_mimetype: thumb.mimetype.to_owned(),
        thumb_width: thumb.width,
        thumb_height: thumb.height,
    })
}

/// The stored size with the quarter-turn rotations applied.
fn displayed_size(decoded: &super::decode::Decoded) -> (u32, u32) {
    use image::metadata::Orientation::*;
    let (w, h) = (decoded.width, decoded.height);
    match decoded.orientation {
        Rotate90 | Rotate270 | Rotate90FlipH | Rotate270FlipH => (h, w),
        NoTransforms | Rotate180 | FlipHorizontal | FlipVertical => (w, h),
    }
}
