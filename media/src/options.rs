//! What a board allows, and what a thumbnail looks like.

/// A board's limits on uploads; [`process`](super::process) refuses anything
/// outside them before decoding a single pixel.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MediaLimits {
    /// Largest upload in bytes.
    pub max_bytes: u64,
    /// Largest image in pixels (width × height), checked against the header
    /// before decoding; this is what stops decompression bombs, and it also
    /// bounds the memory one decode may take (about 8 bytes a pixel at worst).
    pub max_pixels: u64,
    /// Accepted MIME types (`image/jpeg`, …), compared case-insensitively
    /// with the type sniffed from the bytes.
    pub accepted: Vec<String>,
    /// Most frames in an animation, counted from the container without
    /// decoding; 0 means no limit.
    pub max_frames: u64,
    /// Longest video in milliseconds; 0 means no limit.
    pub max_duration_ms: u64,
}

/// Bytes one image job may hold per decoded pixel at worst: the decoded
/// frame at 8 bytes a pixel (16-bit RGBA) and the 8-bit copy the thumbnail
/// is resized from (4 more) alive together while one becomes the other.
pub const JOB_BYTES_PER_PIXEL: u64 = 12;

/// Memory an image job may take that grows with nothing in the file: the
/// decoders' tables and buffers, the bounded inflater that judges a colour
/// profile (`ICC_PROFILE_LIMIT` is inflated into a counter, not kept), the
/// thumbnail and its encoder.
pub const JOB_FIXED_MEMORY: u64 = 16 * 1024 * 1024;

impl MediaLimits {
    /// The memory [`prepare`](super::prepare) or [`process`](super::process)
    /// may take for an upload of `pixels` pixels, beyond the upload's own
    /// bytes: `2 × max_bytes + 12 × pixels + 16 MiB`. The two copies of
    /// the file are the stripped one (or, in `process`, the PNG the decoder
    /// reads, without its profile and text) and what the decoders keep of
    /// uncompressed metadata, which is never more than the file; no
    /// compressed metadata is ever inflated into memory (see
    /// [`ICC_PROFILE_LIMIT`](super::ICC_PROFILE_LIMIT)). The pixel term is
    /// checked from the header before decoding, so `job_memory(max_pixels)`
    /// is the most a board's limits let one job take: 490 MiB with the
    /// defaults. Video runs in child processes with their own limit.
    pub fn job_memory(&self, pixels: u64) -> u64 {
        self.max_bytes
            .saturating_mul(2)
            .saturating_add(pixels.saturating_mul(JOB_BYTES_PER_PIXEL))
            .saturating_add(JOB_FIXED_MEMORY)
    }

    /// Whether `mimetype` is on this board's list.
    pub fn accepts(&self, mimetype: &str) -> bool {
        self.accepted
            .iter()
            .any(|a| a.trim().eq_ignore_ascii_case(mimetype))
    }
}

impl Default for MediaLimits {
    /// 8 MiB, 40 megapixels, 1000 frames, five minutes, and the four image
    /// types wani decodes.
    fn default() -> Self {
        MediaLimits {
            max_bytes: 8 * 1024 * 1024,
            max_pixels: 40_000_000,
            accepted: ["image/jpeg", "image/png", "image/gif", "image/webp"]
                .map(String::from)
                .to_vec(),
            max_frames: 1000,
            max_duration_ms: 300_000,
        }
    }
}

/// How thumbnails are made.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ThumbOptions {
    /// Longest side of a thumbnail in pixels; smaller images are not
    /// enlarged. Zero is treated as one.
    pub max_side: u32,
    /// The colour transparent pixels are flattened onto (JPEG has no alpha).
    pub background: [u8; 3],
    /// JPEG quality, 1–100 (values outside are clamped).
    pub jpeg_quality: u8,
    /// The format of thumbnails of images with transparency.
    pub alpha: AlphaThumb,
}

/// What a thumbnail of an image with transparency is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum AlphaThumb {
    /// Flattened onto the background and encoded as JPEG, as Maniwani does:
    /// the smallest files, and every thumbnail is the same type.
    #[default]
    Jpeg,
    /// PNG, keeping the transparency.
    Png,
    /// Lossless WebP, keeping the transparency (smaller than PNG).
    WebP,
}

impl AlphaThumb {
    /// From a config value: `jpeg`, `png` or `webp`.
    pub fn parse(s: &str) -> Option<AlphaThumb> {
        match s.trim().to_ascii_lowercase().as_str() {
            "jpeg" | "jpg" => Some(AlphaThumb::Jpeg),
            "png" => Some(AlphaThumb::Png),
            "webp" => Some(AlphaThumb::WebP),
            _ => None,
        }
    }
}

impl Default for ThumbOptions {
    /// 500 px on white, as Maniwani does, at JPEG quality 85.
    fn default() -> Self {
        ThumbOptions {
            max_side: 500,
            background: [255, 255, 255],
            jpeg_quality: 85,
            alpha: AlphaThumb::Jpeg,
        }
    }
}
