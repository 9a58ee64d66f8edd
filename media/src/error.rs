//! Why an upload was refused, in words the uploader can act on.
//!
//! The `Display` text of every variant is shown to the user as is, so it
//! names the numbers involved ("the file is 9.1 MB; this board accepts at
//! most 8 MB") rather than a code. [`MediaError::status`] maps each variant
//! to the HTTP status the web layer answers with.

use std::fmt::Write as _;

/// Why [`process`](super::process) refused an upload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum MediaError {
    /// The upload has no bytes at all.
    #[error("the file is empty")]
    Empty,
    /// The upload is larger than the board allows.
    #[error("the file is {}; this board accepts at most {}", size_up(*.size), size_down(*.limit))]
    TooLarge {
        /// The upload's size in bytes.
        size: u64,
        /// The board's limit in bytes.
        limit: u64,
    },
    /// The bytes are not a JPEG, PNG, GIF, WebP, WebM or MP4, whatever the
    /// file is called.
    #[error("the file is not an image or video wani can read (JPEG, PNG, GIF, WebP, WebM or MP4)")]
    UnknownType,
    /// The bytes are an image, but of a type the board does not take.
    #[error("{mimetype} is not accepted on this board (accepted: {})", type_list(.accepted))]
    NotAccepted {
        /// The sniffed type, e.g. `image/gif`.
        mimetype: String,
        /// The board's accepted MIME types, to tell the user what would do.
        accepted: Vec<String>,
    },
    /// The header claims more pixels than the board allows (a large photo, or
    /// a decompression bomb: a tiny file that would expand to gigabytes).
    #[error(
        "the image is {width}×{height} pixels; at most {} megapixels are accepted",
        megapixels_down(*.limit)
    )]
    TooManyPixels {
        /// Width from the header.
        width: u32,
        /// Height from the header.
        height: u32,
        /// The board's limit in pixels.
        limit: u64,
    },
    /// The image could not be decoded: truncated, corrupt, or using a feature
    /// the decoder lacks. The text says which part failed.
    #[error("the image is truncated or corrupt ({0})")]
    Corrupt(String),
    /// An animation with more frames than the board allows.
    #[error("the animation has {frames} frames; this board accepts at most {limit}")]
    TooManyFrames {
        /// Frames counted in the container.
        frames: u64,
        /// The board's limit.
        limit: u64,
    },
    /// A video longer than the board allows.
    #[error(
        "the video is {} long; this board accepts at most {}",
        seconds_up(*.duration_ms),
        seconds_down(*.limit_ms)
    )]
    TooLong {
        /// The video's duration from ffprobe.
        duration_ms: u64,
        /// The board's limit.
        limit_ms: u64,
    },
    /// The file is a valid image or video that is also an HTML document or
    /// script (a polyglot), which a browser could be tricked into running.
    #[error("the file also contains {0:?} markup (an image that is also a web page is refused)")]
    Polyglot(String),
    /// A WebM or MP4 with no video stream (audio only, or empty).
    #[error("the file has no video stream")]
    NoVideoStream,
    /// ffprobe or ffmpeg could not read the video; the text says why.
    #[error("the video could not be read ({0})")]
    VideoUnreadable(String),
    /// This server has no ffmpeg, so it takes no video.
    #[error("video uploads are not available on this server (ffmpeg is not installed)")]
    VideoUnavailable,
}

impl MediaError {
    /// The HTTP status for this refusal: 413 when the upload is too big
    /// (bytes, pixels, frames, seconds), 415 when its type is wrong (or a
    /// polyglot, or video without ffmpeg), 422 when it is empty or cannot be
    /// decoded.
    pub fn status(&self) -> u16 {
        match self {
            MediaError::TooLarge { .. }
            | MediaError::TooManyPixels { .. }
            | MediaError::TooManyFrames { .. }
            | MediaError::TooLong { .. } => 413,
            MediaError::UnknownType
            | MediaError::NotAccepted { .. }
            | MediaError::Polyglot(_)
            | MediaError::VideoUnavailable => 415,
            MediaError::Empty
            | MediaError::Corrupt(_)
            | MediaError::NoVideoStream
            | MediaError::VideoUnreadable(_) => 422,
        }
    }
}

const MIB: u64 = 1024 * 1024;
const KIB: u64 = 1024;

/// A size rounded *up* to one decimal, so a file one byte over an 8 MB
/// limit reads "8.1 MB", never "8 MB; at most 8 MB".
fn size_up(bytes: u64) -> String {
    human_size(bytes, true)
}

/// A limit rounded *down*, for the same reason.
fn size_down(bytes: u64) -> String {
    human_size(bytes, false)
}

fn human_size(bytes: u64, up: bool) -> String {
    // Binary units under the usual imageboard name: "8 MB" means 8 MiB.
    let (unit, name) = if bytes >= MIB {
        (MIB, "MB")
    } else if bytes >= KIB {
        (KIB, "KB")
    } else {
        return format!("{bytes} bytes");
    };
    format!("{} {name}", tenths(bytes, unit, up))
}

fn seconds_up(ms: u64) -> String {
    format!("{} s", tenths(ms, 1000, true))
}

fn seconds_down(ms: u64) -> String {
    format!("{} s", tenths(ms, 1000, false))
}

fn megapixels_down(pixels: u64) -> String {
    tenths(pixels, 1_000_000, false)
}

/// `value / unit` with one decimal, rounded up or down, with a trailing
/// ".0" dropped ("8", "9.1").
fn tenths(value: u64, unit: u64, up: bool) -> String {
    let scaled = u128::from(value) * 10;
    let unit = u128::from(unit);
    let t = if up {
        scaled.div_ceil(unit)
    } else {
        scaled / unit
    };
    if t % 10 == 0 {
        format!("{}", t / 10)
    } else {
        format!("{}.{}", t / 10, t % 10)
    }
}

/// "JPEG, PNG, GIF, WebP" rather than the raw MIME types, which users do
/// not read; types without a short name are shown as they are.
fn type_list(accepted: &[String]) -> String {
    if accepted.is_empty() {
        return "nothing".to_owned();
    }
    let mut out = String::new();
    for (i, mimetype) in accepted.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let name = match mimetype.to_ascii_lowercase().as_str() {
            "image/jpeg" => "JPEG",
            "image/png" => "PNG",
            "image/gif" => "GIF",
            "image/webp" => "WebP",
            "video/webm" => "WebM",
            "video/mp4" => "MP4",
            _ => {
                let _ = write!(out, "{mimetype}");
                continue;
            }
        };
        out.push_str(name);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_numbers() {
        let e = MediaError::TooLarge {
            size: 9_542_000,
            limit: 8 * MIB,
        };
        assert_eq!(
            e.to_string(),
            "the file is 9.1 MB; this board accepts at most 8 MB"
        );
        let e = MediaError::TooLarge {
            size: 8 * MIB + 1,
            limit: 8 * MIB,
        };
        assert_eq!(
            e.to_string(),
            "the file is 8.1 MB; this board accepts at most 8 MB"
        );
        let e = MediaError::TooLarge {
            size: 2000,
            limit: 1000,
        };
        assert_eq!(
            e.to_string(),
            "the file is 2 KB; this board accepts at most 1000 bytes"
        );
        let e = MediaError::NotAccepted {
            mimetype: "image/gif".into(),
            accepted: vec![
                "image/jpeg".into(),
                "image/png".into(),
                "video/x-foo".into(),
            ],
        };
        assert_eq!(
            e.to_string(),
            "image/gif is not accepted on this board (accepted: JPEG, PNG, video/x-foo)"
        );
        let e = MediaError::TooManyPixels {
            width: 30000,
            height: 30000,
            limit: 40_000_000,
        };
        assert_eq!(
            e.to_string(),
            "the image is 30000×30000 pixels; at most 40 megapixels are accepted"
        );
        let e = MediaError::TooManyPixels {
            width: 5000,
            height: 5000,
            limit: 12_500_000,
        };
        assert!(e
            .to_string()
            .ends_with("at most 12.5 megapixels are accepted"));
    }

    #[test]
    fn statuses() {
        assert_eq!(MediaError::Empty.status(), 422);
        assert_eq!(MediaError::Corrupt("x".into()).status(), 422);
        assert_eq!(MediaError::UnknownType.status(), 415);
        assert_eq!(MediaError::TooLarge { size: 2, limit: 1 }.status(), 413);
        let long = MediaError::TooLong {
            duration_ms: 61_200,
            limit_ms: 60_000,
        };
        assert_eq!(long.status(), 413);
        assert_eq!(
            long.to_string(),
            "the video is 61.2 s long; this board accepts at most 60 s"
        );
        assert_eq!(MediaError::Polyglot("<html".into()).status(), 415);
        assert_eq!(MediaError::NoVideoStream.status(), 422);
    }
}
