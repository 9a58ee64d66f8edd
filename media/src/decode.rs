//! The one place pixels are decoded, behind the header and pixel checks.
//!
//! Order matters: the decoder is opened and asked only for the header's
//! dimensions; the pixel limit is checked against them; only then are the
//! container walked and the pixels decoded. A 60 000×60 000 PNG of a few
//! hundred bytes is thus refused having allocated nothing in proportion to
//! its claim. `image::Limits` are set as well, as a second line of defence
//! should a decoder ever allocate more than the header promised.
//!
//! Shrink-on-load: a 12-megapixel JPEG that only needs a 500-pixel
//! thumbnail is decoded at reduced scale. When 1/8 keeps at least the
//! thumbnail's size (a 4000×3000 photo for 500 px), `jpeg_dc` decodes it
//! from its DC coefficients alone: one pixel per 8×8 block, the block's
//! average (a sound box-filter downscale), without reconstructing a single
//! AC coefficient; 15 ms for that photo where libjpeg-turbo at the same
//! scale takes 29 and jpeg-decoder 41 (docs/BENCHMARKS.md). Files it
//! leaves aside (arithmetic coding, CMYK, 12-bit, damage) and photos
//! between two and eight times the thumbnail go to jpeg-decoder's `scale`
//! at 1/2 or 1/4, as before. Both stop at the smallest scale that keeps
//! the thumbnail's size; Pillow's `thumbnail` stops at twice the target and
//! filters the rest, which measured here cost 35% of the throughput for a
//! difference hard to see at 500 px. zune-jpeg (inside `image`) reads the
//! header, the EXIF orientation and any JPEG neither can scale.
//! Nothing else in the module decodes. A PNG reaches the decoder without
//! its colour profile and text chunks (`metadata`), which the thumbnail
//! does not use and the decoder would otherwise inflate.
//!
//! A GIF's first frame is decoded to palette indices (`indexed`), which
//! the thumbnail expands straight to flattened RGB: `image` would expand
//! them to RGBA first, a pass and a buffer the thumbnail then flattens away.

use std::borrow::Cow;
use std::io::Cursor;

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageError, ImageReader, Limits, RgbaImage};

use super::error::MediaError;
use super::indexed::IndexedFrame;
use super::jpeg_dc;
use super::metadata::png_for_decoding;
use super::sniff::ImageFormat;
use super::structure;

/// The pixels of a first (or only) frame, in the form its decoder gives
/// most cheaply.
pub(crate) enum Pixels {
    /// Decoded to one of `image`'s colour types.
    Image(DynamicImage),
    /// A GIF's palette indices, expanded once the thumbnail knows whether
    /// it keeps alpha.
    Indexed(IndexedFrame),
}

impl Pixels {
    /// Whether the pixels may be transparent. Every GIF counts, as it did
    /// when `image` decoded GIFs (always to RGBA), so which thumbnails keep
    /// their alpha did not change with the palette path.
    pub(crate) fn has_alpha(&self) -> bool {
        match self {
            Pixels::Image(image) => image.color().has_alpha(),
            Pixels::Indexed(_) => true,
        }
    }

    /// The pixels as 8-bit RGBA.
    pub(crate) fn into_rgba8(self) -> RgbaImage {
        match self {
            Pixels::Image(image) => image.into_rgba8(),
            Pixels::Indexed(frame) => frame.to_rgba(),
        }
    }
}

/// A decoded image with what the header and container said about it.
pub(crate) struct Decoded {
    /// The pixels of the first (or only) frame, as stored (not yet
    /// rotated); smaller than the file when decoded at reduced scale.
    pub pixels: Pixels,
    /// The stored width of the file, whatever scale `pixels` were decoded at.
    pub width: u32,
    /// The stored height of the file.
    pub height: u32,
    /// The EXIF orientation the viewer should apply.
    pub orientation: Orientation,
    /// Frames in the container (1 for a still).
    pub frames: u64,
}

/// Room for metadata beside the pixels, as a second line only: decoders
/// see no compressed metadata (`metadata::png_for_decoding`), so what they
/// keep of it is a copy of bytes of the file.
const METADATA_ALLOWANCE: u64 = 64 * 1024 * 1024;

/// The most bytes a pixel can take in any format we decode (RGBA, 16 bits
/// a channel: a 16-bit PNG with alpha).
const MAX_BYTES_PER_PIXEL: u64 = 8;

/// The gif crate refuses frame buffers over 50 MB (RGBA, so 12.5 megapixels)
/// and `image` does not let us raise that; refusing such GIFs up front gives
/// the user the real limit instead of "memory limit reached".
const GIF_MAX_PIXELS: u64 = 50_000_000 / 4;

/// Decodes the first frame of `bytes` (sniffed as `format`), refusing it
/// before any pixel is decoded if it has more than `max_pixels` pixels or
/// (`max_frames` > 0) more frames. A JPEG much larger than `target_side`
/// (the thumbnail's longest side) is decoded at reduced scale.
pub(crate) fn decode(
    bytes: &[u8],
    format: ImageFormat,
    max_pixels: u64,
    max_frames: u64,
    target_side: u32,
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
    // The png decoder inflates a colour profile while reading the header,
    // up to `max_alloc`: a 1 MB chunk could cost hundreds of megabytes.
    let seen = match format {
        ImageFormat::Png => png_for_decoding(bytes),
        _ => Cow::Borrowed(bytes),
    };
    let mut reader = ImageReader::with_format(Cursor::new(&seen[..]), format.codec());
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
    if max_frames > 0 && layout.frames > max_frames {
        return Err(MediaError::TooManyFrames {
            frames: layout.frames,
            limit: max_frames,
        });
    }

    // A broken EXIF block should not sink an image that decodes; it only
    // loses its rotation.
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let special = match format {
        ImageFormat::Jpeg => jpeg_reduced(bytes, width, height, target_side)?.map(Pixels::Image),
        ImageFormat::Gif => IndexedFrame::decode(bytes, max_alloc)
            .map_err(corrupt)?
            .map(Pixels::Indexed),
        _ => None,
    };
    let pixels = match special {
        Some(pixels) => pixels,
        None => Pixels::Image(DynamicImage::from_decoder(decoder).map_err(corrupt)?),
    };
    Ok(Decoded {
        pixels,
        width,
        height,
        orientation,
        frames: layout.frames,
    })
}

/// Decodes a JPEG at reduced scale when the thumbnail is small enough:
/// from its DC coefficients alone (`jpeg_dc`) when 1/8 scale keeps the
/// thumbnail's size, else with jpeg-decoder at 1/2 or 1/4. `None` when
/// neither applies (the caller decodes at full size).
fn jpeg_reduced(
    bytes: &[u8],
    width: u32,
    height: u32,
    target_side: u32,
) -> Result<Option<DynamicImage>, MediaError> {
    let (tw, th) = super::thumb::fit(width, height, target_side.max(1));
    if width.div_ceil(8) >= tw && height.div_ceil(8) >= th {
        match jpeg_dc::decode(bytes) {
            Ok(dc) => {
                let image = if dc.grey {
                    image::GrayImage::from_raw(dc.width, dc.height, dc.pixels)
                        .map(DynamicImage::ImageLuma8)
                } else {
                    image::RgbImage::from_raw(dc.width, dc.height, dc.pixels)
                        .map(DynamicImage::ImageRgb8)
                };
                // A buffer of the wrong length would be a bug in jpeg_dc;
                // the general decoder then has the last word.
                if image.is_some() {
                    return Ok(image);
                }
            }
            // Unsupported features and damaged data alike go to the
            // general decoder, which accepts or refuses as it always has.
            Err(reason) => tracing::debug!(?reason, "JPEG left to the general decoder"),
        }
    }
    jpeg_scaled(bytes, width, height, target_side)
}

/// Decodes a JPEG at the smallest DCT scale (1/2, 1/4, 1/8) that keeps at
/// least `target_side` on the long side; `None` when no scaling
/// applies or jpeg-decoder cannot produce RGB or grey for it (the caller
/// then decodes at full size).
fn jpeg_scaled(
    bytes: &[u8],
    width: u32,
    height: u32,
    target_side: u32,
) -> Result<Option<DynamicImage>, MediaError> {
    let long = width.max(height);
    let want = target_side.max(1);
    if long < want.saturating_mul(2) {
        return Ok(None); // not even a 1/2 scale would keep the target
    }
    let (tw, th) = super::thumb::fit(width, height, want);
    let mut d = jpeg_decoder::Decoder::new(bytes);
    let (req_w, req_h) = (
        u16::try_from(tw).unwrap_or(u16::MAX),
        u16::try_from(th).unwrap_or(u16::MAX),
    );
    let Ok((w, h)) = d.scale(req_w, req_h) else {
        return Ok(None);
    };
    let Some(info) = d.info() else {
        return Ok(None);
    };
    let pixels = match info.pixel_format {
        jpeg_decoder::PixelFormat::RGB24 | jpeg_decoder::PixelFormat::L8 => {
            d.decode().map_err(|e| MediaError::Corrupt(e.to_string()))?
        }
        _ => return Ok(None),
    };
    let (w, h) = (u32::from(w), u32::from(h));
    let image = match info.pixel_format {
        jpeg_decoder::PixelFormat::RGB24 => {
            image::RgbImage::from_raw(w, h, pixels).map(DynamicImage::ImageRgb8)
        }
        _ => image::GrayImage::from_raw(w, h, pixels).map(DynamicImage::ImageLuma8),
    };
    // A buffer of the wrong length would be a decoder bug; full decode then.
    Ok(image)
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
