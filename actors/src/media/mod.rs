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
//! empty → byte size → sniff → accepted? → header dimensions → pixel limit
//!       → container walk (truncation, frame count) → decode → thumbnail
//! ```
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
//! `decode` (the one place pixels are decoded), `structure` (container
//! walks), `thumb` (flatten, resize, encode), `error` (user-facing refusals),
//! `process` (the pipeline).
//!
//! ## What it does not do
//! - Video (WebM/MP4): thumbnailed through ffmpeg elsewhere; here those
//!   bytes are an [`MediaError::UnknownType`].
//! - Stripping metadata from the original: the stored file is the upload as
//!   sent. The thumbnail carries no metadata.
//! - Colour management: ICC profiles are ignored, so a wide-gamut photo's
//!   thumbnail is a little dull.
//! - Reduced-scale JPEG decoding (decode a 12-megapixel photo at 1/4 size
//!   for a 500-pixel thumbnail): `decode` is the seam for it.

mod decode;
mod error;
mod options;
mod process;
mod sniff;
mod structure;
mod thumb;

pub use error::MediaError;
pub use options::{MediaLimits, ThumbOptions};
pub use process::{precheck, process, Processed};
pub use sniff::{sniff, ImageFormat, Sniffed};
