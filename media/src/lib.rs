//! Upload inspection and thumbnailing.
//!
//! [`process`] takes the bytes of an upload and a board's [`MediaLimits`],
//! and either refuses it with a [`MediaError`] the user can read, or returns
//! what it is ([`Processed`]: type, size, animation) with a JPEG thumbnail.
//! It is synchronous and CPU-bound; the thumbnailer pool runs it on blocking
//! threads, so this module knows nothing of actors, HTTP or storage.
//!
//! ## Why it has this shape
//! Everything about an upload is decided by its bytes, never by the
//! client's `Content-Type` or file name ([`sniff`]). The checks run
//! cheapest first, so hostile input costs as little as possible:
//!
//! ```text
//! empty → byte size → sniff → accepted? → strip metadata (walks the framing)
//!       → polyglot scan → header dimensions → pixel limit
//!       → container walk (truncation, frame limit) → decode → thumbnail
//! ```
//!
//! The first half ([`prepare`]) runs on the request path before the upload
//! is stored, because what is stored is the stripped file (`strip`) and its
//! hash is the duplicate key; the rest ([`process`]) runs in the
//! thumbnailer pool on the stored blob. Video takes the same first half,
//! then `video` (ffprobe, ffmpeg in child processes) instead of decoding.
//!
//! Memory: one job takes at most [`MediaLimits::job_memory`] beyond the
//! upload's bytes, `2 × max_bytes + 12 bytes × pixels + 16 MiB`, whatever
//! the file claims. Compressed metadata is the one part of a file that can
//! grow past its size (a 1 MB PNG `iCCP` inflates to 1 GB): it is only
//! ever inflated into a counter, and a colour profile over
//! [`ICC_PROFILE_LIMIT`] (4 MiB) is dropped from the stored file
//! (`metadata`).
//!
//! The pixel limit is checked against the header before any pixel is
//! decoded, which is what stops decompression bombs (a few hundred bytes
//! claiming 60 000×60 000); `image::Limits` back it up. The decoders are
//! forgiving of truncation, so completeness is judged by walking the file's
//! own framing (`structure`): a JPEG needs its EOI marker, a PNG its IEND
//! chunk, a GIF whole frames, a WebP the bytes its RIFF header promises.
//! The same walk counts animation frames without decoding them.
//!
//! Files: `sniff` (magic bytes), `options` (limits and thumbnail settings),
//! `strip` (metadata removal), `polyglot` (HTML hidden in media), `decode`
//! (the one place pixels are decoded, at reduced scale for big JPEGs),
//! `jpeg_dc` (big JPEGs at 1/8 scale from their DC coefficients alone),
//! `indexed` (a GIF's first frame as palette indices, expanded straight to
//! the thumbnail's RGB),
//! `metadata` (compressed metadata, inflated within a bound),
//! `structure` (container walks), `thumb` (flatten, SIMD resize, encode),
//! `video` (ffprobe/ffmpeg), `error` (user-facing refusals), `process`
//! (the pipeline).
//!
//! ## What it does not do
//! - Colour management: ICC profiles are kept in the original but ignored
//!   for thumbnails, so a wide-gamut photo's thumbnail is a little dull.
//! - Metadata in GIFs and in video containers is kept as uploaded.

mod decode;
mod error;
mod indexed;
mod jpeg_dc;
mod metadata;
mod options;
mod polyglot;
mod process;
mod sniff;
mod strip;
mod structure;
mod thumb;
pub mod video;

pub use error::MediaError;
pub use metadata::ICC_PROFILE_LIMIT;
pub use options::{AlphaThumb, MediaLimits, ThumbOptions, JOB_BYTES_PER_PIXEL, JOB_FIXED_MEMORY};
pub use process::{precheck, prepare, process, Prepared, Processed};
pub use sniff::{sniff, FileFormat, ImageFormat, Sniffed, VideoFormat};
pub use strip::{crc32, strip};

/// The MD5 of a stored original as 4chan's API publishes it: base64 of the
/// 16 raw bytes. Clients compare it with what they downloaded, so it is
/// taken over the bytes served (metadata already stripped).
pub fn md5_base64(bytes: &[u8]) -> String {
    use base64::Engine;
    use md5::Digest;
    base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(bytes))
}
