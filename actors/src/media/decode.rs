//! The one place pixels are decoded, behind the header and pixel checks.
//!
//! Order matters: the decoder is opened and asked only for the header's
//! dimensions; the pixel limit is checked against them; only then are the
//! container walked and the pixels decoded. A 60 000×60 000 PNG of a few
//! hundred bytes is thus refused having allocated nothing in proportion to
//! its claim. `image::Limits` are set as well, as a second line of defence
//! should a decoder ever allocate more than the header promised.
//!
//! Decoding at reduced scale (a 1/8-size DCT for a 12-megapixel JPEG that
//! only needs a 500-pixel thumbnail) belongs here when it comes: nothing
//! else in the module decodes.

use std::io::Cursor;

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageError, ImageReader, Limits};

use super::error::MediaError;
use super::sniff::ImageFormat;
use super::structure;

/// A decoded image with what the header and container said about it.
pub(crate) struct Decoded {
    /// The pixels of the first (or only) frame, as stored (not yet rotated).
    pub image: DynamicImage,
    /// The EXIF orientation the viewer should apply.
    pub orientation: Orientation,
    /// More than one frame.
    pub animated: bool,
}

/// Room for metadata (ICC profiles, EXIF, PNG text) beside the pixels.
const METADATA_ALLOWANCE: u64 = 64 * 1024 * 1024;

/// The most bytes a pixel can take in any format we decode (RGBA, 16 bits
/// a channel: a 16-bit PNG with alpha).
const MAX_BYTES_PER_PIXEL: u64 = 8;

/// The gif crate refuses frame buffers over 50 MB (RGBA, so 12.5 megapixels)
/// and `image` does not let us raise that; refusing such GIFs up front gives
/// the user the real limit instead of "memory limit reached".
const GIF_MAX_PIXELS: u64 = 50_000_000 / 4;

/// Decodes the first frame of `bytes` (sniffed as `format`), refusing it
/// before any pixel is decoded if it has more than `max_pixels` pixels.
pub(crate) fn decode(
    bytes: &[u8],
    format: ImageFormat,
    max_pixels: u64,
) -> Result<Decoded, MediaError> {
    let max_pixels = match format {
        ImageFormat::Gif => max_pixels.min(GIF_MAX_PIXELS),
        _ => max_pixels,
    };
    let max_alloc = max_pixels
        .saturating_mul(MAX_BYTES_PER_PIXEL)
        .saturating_add(METADATA_ALLOWANCE);

    // The header is read with only the allocation limit: a strict
    // dimension limit would fail here without telling us the dimensions,
    // and the user deserves to hear them.
    let mut header_limits = Limits::default();
    header_limits.max_alloc = Some(max_alloc);
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format.codec());
    reader.limits(header_limits);
    let mut decoder = reader.into_decoder().map_err(corrupt)?;

    let (width, height) = decoder.dimensions();
    if width == 0 || height == 0 {
        return Err(MediaError::Corrupt(format!(
            "the header says it is {width}×{height} pixels"
        )));
    }
    if u64::from(width) * u64::from(height) > max_pixels {
        return Err(MediaError::TooManyPixels {
            width,
            height,
            limit: max_pixels,
        });
    }

    // Second line: the header's dimensions become strict limits, so a
    // decoder that meets a frame larger than its header (GIF and WebP
    // frames carry their own sizes) fails instead of allocating for it.
    let mut limits = Limits::default();
    limits.max_alloc = Some(max_alloc);
    limits.max_image_width = Some(width);
    limits.max_image_height = Some(height);
    decoder.set_limits(limits).map_err(corrupt)?;
    if decoder.total_bytes() > max_alloc {
        return Err(MediaError::TooManyPixels {
            width,
            height,
            limit: max_pixels,
        });
    }

    // Before the decode, because decoders return partial pixels for some
    // truncated files (zune-jpeg fills the rest of a scan; a PNG cut after
    // its last IDAT decodes): completeness is judged from the container.
    let layout = structure::walk(format, bytes).map_err(MediaError::Corrupt)?;

    // A broken EXIF block should not sink an image that decodes; it only
    // loses its rotation.
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let image = DynamicImage::from_decoder(decoder).map_err(corrupt)?;
    Ok(Decoded {
        image,
        orientation,
        animated: layout.animated,
    })
}

/// A decoder's error as the reason in [`MediaError::Corrupt`].
fn corrupt(e: ImageError) -> MediaError {
    let reason = match &e {
        // Limits can only trip here if a decoder wanted more than the
        // header announced, which is itself a sign of a malformed file.
        ImageError::Limits(_) => {
            format!("the decoder needed more memory than its size allows: {e}")
        }
        ImageError::Unsupported(_) => format!("it uses a feature wani cannot decode: {e}"),
        _ => e.to_string(),
    };
    MediaError::Corrupt(reason)
}
