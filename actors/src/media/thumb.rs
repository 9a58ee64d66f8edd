//! Thumbnails: flatten, shrink, rotate, encode as JPEG.
//!
//! Transparency is flattened onto the board's background *before* resizing:
//! resampling straight RGBA lets the colour hidden under transparent pixels
//! bleed into the edges, while compositing first is what a browser would
//! show anyway, and leaves three channels to resample instead of four.
//! The EXIF rotation is applied to the small image, where it costs nothing.

use image::codecs::jpeg::JpegEncoder;
use image::imageops::FilterType;
use image::metadata::Orientation;
use image::{DynamicImage, ExtendedColorType, RgbImage};

use super::error::MediaError;

/// An encoded thumbnail.
pub(crate) struct Thumb {
    pub jpeg: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

/// Above this shrink factor the box pre-pass runs; see [`shrink`].
const PREPASS_RATIO: u32 = 3;

/// Makes the thumbnail of `image`, which the viewer should show rotated by
/// `orientation`.
pub(crate) fn thumbnail(
    image: DynamicImage,
    orientation: Orientation,
    max_side: u32,
    background: [u8; 3],
    quality: u8,
) -> Result<Thumb, MediaError> {
    let flat = flatten(image, background);
    let (width, height) = fit(flat.width(), flat.height(), max_side);
    let mut small = shrink(DynamicImage::ImageRgb8(flat), width, height);
    small.apply_orientation(orientation);
    let small = small.into_rgb8();

    let mut jpeg = Vec::new();
    JpegEncoder::new_with_quality(&mut jpeg, quality.clamp(1, 100))
        .encode(
            small.as_raw(),
            small.width(),
            small.height(),
            ExtendedColorType::Rgb8,
        )
        // Encoding our own well-formed buffer fails only on a bug; it is
        // still reported, not unwrapped, since the input was hostile.
        .map_err(|e| MediaError::Corrupt(format!("the thumbnail could not be encoded: {e}")))?;
    Ok(Thumb {
        jpeg,
        width: small.width(),
        height: small.height(),
    })
}

/// The largest size within `max_side`×`max_side` with the aspect of
/// `width`×`height`, never larger than the original and never zero.
pub(crate) fn fit(width: u32, height: u32, max_side: u32) -> (u32, u32) {
    let max_side = max_side.max(1);
    if width <= max_side && height <= max_side {
        return (width, height);
    }
    let scale = |short: u32, long: u32| -> u32 {
        let scaled =
            (u64::from(short) * u64::from(max_side) + u64::from(long) / 2) / u64::from(long);
        // The short side is at most the long one, so this fits in u32.
        u32::try_from(scaled).unwrap_or(max_side).max(1)
    };
    if width >= height {
        (max_side, scale(height, width))
    } else {
        (scale(width, height), max_side)
    }
}

/// Composites any alpha onto `background`; opaque images pass through
/// (without a copy if they are already 8-bit RGB, as JPEGs are).
fn flatten(image: DynamicImage, background: [u8; 3]) -> RgbImage {
    if !image.color().has_alpha() {
        return image.into_rgb8();
    }
    let rgba = image.into_rgba8();
    let (width, height) = rgba.dimensions();
    let mut out = RgbImage::new(width, height);
    let bg = background.map(u32::from);
    for (dst, src) in out.chunks_exact_mut(3).zip(rgba.as_raw().chunks_exact(4)) {
        let alpha = u32::from(src[3]);
        let rest = 255 - alpha;
        for c in 0..3 {
            // Rounded integer blend; at most 255 * 255 + 127, so /255 fits u8.
            dst[c] = ((u32::from(src[c]) * alpha + bg[c] * rest + 127) / 255) as u8;
        }
    }
    out
}

/// Resizes to exactly `width`×`height`.
///
/// A filter's cost grows with the shrink factor (Triangle over a 4000-pixel
/// side shrunk to 500 reads 16 source pixels per output pixel and axis), so
/// large shrinks first box-average down to about twice the target, which
/// touches each source pixel once, and finish with Triangle for a smooth
/// result. See the timings in `actors/tests/media.rs` (`timing`).
fn shrink(image: DynamicImage, width: u32, height: u32) -> DynamicImage {
    if (image.width(), image.height()) == (width, height) {
        return image;
    }
    let (w, h) = (image.width(), image.height());
    let image =
        if w > width.saturating_mul(PREPASS_RATIO) || h > height.saturating_mul(PREPASS_RATIO) {
            // Capped at the source so a 100 000×1 strip is not stretched.
            image.thumbnail_exact(
                width.saturating_mul(2).min(w),
                height.saturating_mul(2).min(h),
            )
        } else {
            image
        };
    image.resize_exact(width, height, FilterType::Triangle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_keeps_aspect_and_never_upscales() {
        assert_eq!(fit(100, 50, 500), (100, 50));
        assert_eq!(fit(500, 500, 500), (500, 500));
        assert_eq!(fit(4000, 3000, 500), (500, 375));
        assert_eq!(fit(3000, 4000, 500), (375, 500));
        assert_eq!(fit(100_000, 1, 500), (500, 1));
        assert_eq!(fit(1, 100_000, 500), (1, 500));
        assert_eq!(fit(10, 10, 0), (1, 1));
    }

    #[test]
    fn flatten_blends_onto_background() {
        let mut img = image::RgbaImage::new(3, 1);
        img.put_pixel(0, 0, image::Rgba([10, 20, 30, 0]));
        img.put_pixel(1, 0, image::Rgba([10, 20, 30, 255]));
        img.put_pixel(2, 0, image::Rgba([0, 0, 0, 128]));
        let flat = flatten(DynamicImage::ImageRgba8(img), [200, 100, 50]);
        assert_eq!(flat.get_pixel(0, 0).0, [200, 100, 50]);
        assert_eq!(flat.get_pixel(1, 0).0, [10, 20, 30]);
        assert_eq!(flat.get_pixel(2, 0).0, [100, 50, 25]);
    }
}
