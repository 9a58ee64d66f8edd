//! Thumbnails: flatten (or keep alpha), shrink, rotate, encode.
//!
//! Opaque images become JPEG. Images with transparency are, by default,
//! flattened onto the board's background *before* resizing: resampling
//! straight RGBA lets the colour hidden under transparent pixels bleed
//! into the edges, while compositing first is what a browser would show
//! anyway, and leaves three channels to resample instead of four. With
//! [`AlphaThumb::Png`] or [`AlphaThumb::WebP`] they keep their alpha
//! instead, resized premultiplied (same reason) and encoded losslessly.
//! The EXIF rotation is applied to the small image, where it costs nothing.
//! A GIF arrives as palette indices (`indexed`) and is flattened in the
//! same pass that expands them, through a palette already flattened.
//!
//! Resizing is fast_image_resize's SIMD convolution with a Catmull-Rom
//! (bicubic) kernel, the filter Pillow's `thumbnail` uses; JPEGs arrive
//! already shrunk by the decoder (see `decode`), so it filters at most
//! about twice the target size. JPEG thumbnails are encoded by
//! jpeg-encoder (SIMD DCT), 2 ms for 500×375 where `image`'s encoder took 4:
//! a tenth of a thumbnail's time once decoding got fast.

use fast_image_resize as fr;
use image::codecs::png::PngEncoder;
use image::codecs::webp::WebPEncoder;
use image::metadata::Orientation;
use image::{DynamicImage, ExtendedColorType, ImageEncoder, RgbImage, RgbaImage};
use jpeg_encoder::{ColorType, Encoder, SamplingFactor};

use super::decode::Pixels;
use super::error::MediaError;
use super::options::{AlphaThumb, ThumbOptions};

/// An encoded thumbnail.
pub(crate) struct Thumb {
    pub bytes: Vec<u8>,
    pub mimetype: &'static str,
    pub width: u32,
    pub height: u32,
}

/// Makes the thumbnail of `pixels`, of exactly `width`×`height` before
/// rotation (the caller fits the *stored* size, which `pixels` may be a
/// reduced-scale decode of), shown rotated by `orientation`.
pub(crate) fn thumbnail(
    pixels: Pixels,
    orientation: Orientation,
    (width, height): (u32, u32),
    options: &ThumbOptions,
) -> Result<Thumb, MediaError> {
    let keep_alpha = pixels.has_alpha() && options.alpha != AlphaThumb::Jpeg;
    let small = if keep_alpha {
        let rgba = pixels.into_rgba8();
        let out = resize(
            rgba.as_raw(),
            rgba.dimensions(),
            (width, height),
            fr::PixelType::U8x4,
        )?;
        DynamicImage::ImageRgba8(
            RgbaImage::from_raw(width, height, out).ok_or_else(|| bug("RGBA buffer size"))?,
        )
    } else {
        let flat = match pixels {
            Pixels::Image(image) => flatten(image, options.background),
            Pixels::Indexed(frame) => frame.to_rgb(options.background),
        };
        let out = resize(
            flat.as_raw(),
            flat.dimensions(),
            (width, height),
            fr::PixelType::U8x3,
        )?;
        DynamicImage::ImageRgb8(
            RgbImage::from_raw(width, height, out).ok_or_else(|| bug("RGB buffer size"))?,
        )
    };
    let mut small = small;
    small.apply_orientation(orientation);
    let (w, h) = (small.width(), small.height());
    let mut bytes = Vec::new();
    let mimetype = match (&small, options.alpha) {
        (DynamicImage::ImageRgba8(rgba), AlphaThumb::WebP) => {
            WebPEncoder::new_lossless(&mut bytes)
                .write_image(rgba.as_raw(), w, h, ExtendedColorType::Rgba8)
                .map_err(|e| bug(&e.to_string()))?;
            "image/webp"
        }
        (DynamicImage::ImageRgba8(rgba), _) => {
            PngEncoder::new(&mut bytes)
                .write_image(rgba.as_raw(), w, h, ExtendedColorType::Rgba8)
                .map_err(|e| bug(&e.to_string()))?;
            "image/png"
        }
        _ => {
            let rgb = small.into_rgb8();
            let (w16, h16) = (
                u16::try_from(w).map_err(|_| bug("thumbnail wider than JPEG allows"))?,
                u16::try_from(h).map_err(|_| bug("thumbnail taller than JPEG allows"))?,
            );
            let mut encoder = Encoder::new(&mut bytes, options.jpeg_quality.clamp(1, 100));
            // Full-resolution colour, as before this encoder replaced
            // `image`'s: thumbnails of screenshots and drawings keep sharp
            // colour edges, for a few percent more bytes.
            encoder.set_sampling_factor(SamplingFactor::F_1_1);
            encoder
                .encode(rgb.as_raw(), w16, h16, ColorType::Rgb)
                .map_err(|e| bug(&e.to_string()))?;
            "image/jpeg"
        }
    };
    Ok(Thumb {
        bytes,
        mimetype,
        width: w,
        height: h,
    })
}

/// Encoding or resizing a buffer we built can only fail on a bug; reported
/// all the same, since no upload may panic the thumbnailer.
fn bug(what: &str) -> MediaError {
    MediaError::Corrupt(format!("the thumbnail could not be made: {what}"))
}

/// Resizes packed 8-bit pixels from `src` size to `dst` size with SIMD
/// Catmull-Rom; a same-size "resize" is a copy.
fn resize(
    pixels: &[u8],
    (sw, sh): (u32, u32),
    (dw, dh): (u32, u32),
    pixel_type: fr::PixelType,
) -> Result<Vec<u8>, MediaError> {
    if (sw, sh) == (dw, dh) {
        return Ok(pixels.to_vec());
    }
    let src =
        fr::images::ImageRef::new(sw, sh, pixels, pixel_type).map_err(|e| bug(&e.to_string()))?;
    let mut dst = fr::images::Image::new(dw.max(1), dh.max(1), pixel_type);
    let options =
        fr::ResizeOptions::new().resize_alg(fr::ResizeAlg::Convolution(fr::FilterType::CatmullRom));
    fr::Resizer::new()
        .resize(&src, &mut dst, &options)
        .map_err(|e| bug(&e.to_string()))?;
    Ok(dst.into_vec())
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
pub(crate) fn flatten(image: DynamicImage, background: [u8; 3]) -> RgbImage {
    if !image.color().has_alpha() {
        return image.into_rgb8();
    }
    let rgba = image.into_rgba8();
    let (width, height) = rgba.dimensions();
    let mut out = RgbImage::new(width, height);
    let [br, bg, bb] = background.map(u16::from);
    for (dst, src) in out.chunks_exact_mut(3).zip(rgba.as_raw().chunks_exact(4)) {
        let alpha = u16::from(src[3]);
        // Most pixels of a typical sticker or screenshot are fully opaque or
        // fully clear, and need no arithmetic.
        match alpha {
            255 => dst.copy_from_slice(&src[..3]),
            0 => dst.copy_from_slice(&background),
            _ => {
                let rest = 255 - alpha;
                dst[0] = div255(u16::from(src[0]) * alpha + br * rest);
                dst[1] = div255(u16::from(src[1]) * alpha + bg * rest);
                dst[2] = div255(u16::from(src[2]) * alpha + bb * rest);
            }
        }
    }
    out
}

/// `v / 255`, rounded, for `v <= 255 * 255` (exact over that range).
fn div255(v: u16) -> u8 {
    let v = u32::from(v) + 128;
    ((v + (v >> 8)) >> 8) as u8
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

    #[test]
    fn div255_rounds_exactly() {
        for v in 0..=255u16 * 255 {
            let want = ((f64::from(v) / 255.0).round()) as u8;
            assert_eq!(div255(v), want, "{v}");
        }
    }
}
