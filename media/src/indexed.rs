//! A GIF's first frame as palette indices, expanded straight into the
//! pixels the thumbnail is resized from.
//!
//! Through `image`, the gif crate expands every palette index into four
//! RGBA bytes, and the thumbnail then flattens those onto the background
//! into three: two passes over the frame, and a buffer of four bytes a
//! pixel between them, for a picture of at most 256 colours. Here the gif
//! crate writes the indices as LZW yields them, one byte a pixel, and one
//! pass through a 256-entry table, already flattened onto the background,
//! writes the RGB the resizer reads. A thumbnail that keeps its alpha gets
//! RGBA from the same pass with another table. On the benchmark's noisy
//! 640×480 GIF (docs/BENCHMARKS.md, callgrind) decoding and flattening the
//! first frame took 24.7M instructions and take 13.5M, of which LZW is
//! 11.8M as before; the whole thumbnail went from 72.1M to 60.8M.
//!
//! The picture is `image`'s, pixel for pixel (the tests compare the two on
//! opaque, transparent, offset, clipped and interlaced frames): the frame
//! is placed at its offset on the logical screen and clipped to it; the
//! screen around it, the transparent index and any index past the end of
//! the palette are transparent. In RGBA that is (0, 0, 0, 0) around the
//! frame and past the palette, and the palette's colour under alpha 0 for
//! the transparent index, as the gif crate writes them.
//!
//! What it leaves alone: frames after the first (the container walk counts
//! them; the thumbnail shows the first, as before); the GIF's background
//! colour index, which browsers and `image` ignore; and a first frame with
//! no pixels, which the gif crate treats differently for indices than for
//! RGBA, so it goes to `image` to keep `image`'s verdict on it.

use gif::{ColorOutput, DecodeOptions};
use image::error::{
    DecodingError, ImageFormatHint, LimitError, LimitErrorKind, ParameterError, ParameterErrorKind,
};
use image::{ImageError, RgbImage, RgbaImage};

/// A GIF's first frame, still as palette indices.
pub(crate) struct IndexedFrame {
    /// The logical screen's width: the picture's.
    width: u32,
    /// The logical screen's height.
    height: u32,
    /// The frame's left edge on the screen. The frame may stick out of
    /// the screen on the right and at the bottom, or lie outside it.
    left: u32,
    /// The frame's top edge on the screen.
    top: u32,
    /// The frame's own width.
    frame_width: u32,
    /// The frame's own height.
    frame_height: u32,
    /// `frame_width × frame_height` indices, row by row, deinterlaced.
    indices: Vec<u8>,
    /// RGB triples: the frame's local colour table, else the global one.
    palette: Vec<u8>,
    /// The index the frame's graphic control extension marks transparent.
    transparent: Option<u8>,
}

impl IndexedFrame {
    /// Decodes the first frame of the GIF `bytes`, whose header the caller
    /// has checked against the pixel limit. A frame that sticks out of the
    /// screen is refused if its RGBA would take more than `max_alloc`
    /// bytes, as `image` refuses it (within the screen it cannot). `None`
    /// for a frame with no pixels, which the caller leaves to `image`.
    /// Errors are those `image` reports for the same file.
    pub(crate) fn decode(bytes: &[u8], max_alloc: u64) -> Result<Option<Self>, ImageError> {
        let mut options = DecodeOptions::new();
        options.set_color_output(ColorOutput::Indexed);
        let mut decoder = options.read_info(bytes).map_err(gif_error)?;
        let (width, height) = (u32::from(decoder.width()), u32::from(decoder.height()));
        let Some(frame) = decoder.next_frame_info().map_err(gif_error)? else {
            return Err(ImageError::Parameter(ParameterError::from_kind(
                ParameterErrorKind::NoMoreData,
            )));
        };
        let (left, top) = (u32::from(frame.left), u32::from(frame.top));
        let (frame_width, frame_height) = (u32::from(frame.width), u32::from(frame.height));
        let transparent = frame.transparent;
        let area = u64::from(frame_width) * u64::from(frame_height);
        if area == 0 {
            return Ok(None);
        }
        let too_big =
            || ImageError::Limits(LimitError::from_kind(LimitErrorKind::InsufficientMemory));
        if area.saturating_mul(4) > max_alloc {
            return Err(too_big());
        }
        let palette = decoder.palette().map_err(gif_error)?.to_vec();
        let mut indices = vec![0; usize::try_from(area).map_err(|_| too_big())?];
        decoder.read_into_buffer(&mut indices).map_err(gif_error)?;
        Ok(Some(IndexedFrame {
            width,
            height,
            left,
            top,
            frame_width,
            frame_height,
            indices,
            palette,
            transparent,
        }))
    }

    /// The picture flattened onto `background`: what `image`'s RGBA would
    /// give through `thumb::flatten`, without the RGBA.
    pub(crate) fn to_rgb(&self, background: [u8; 3]) -> RgbImage {
        let [r, g, b] = background;
        // Four bytes an entry, the last unused, for `rgb_row`.
        let mut table = [[r, g, b, 0]; 256];
        for (entry, rgb) in table.iter_mut().zip(self.palette.chunks_exact(3)) {
            entry[..3].copy_from_slice(rgb);
        }
        if let Some(t) = self.transparent {
            table[usize::from(t)] = [r, g, b, 0];
        }
        let mut out = RgbImage::new(self.width, self.height);
        self.expand(3, &background, &mut out, |dst, src| {
            rgb_row(dst, src, &table)
        });
        out
    }

    /// The picture with its transparency, as `image` decodes it.
    pub(crate) fn to_rgba(&self) -> RgbaImage {
        // Past the palette's end the gif crate leaves the zeroed buffer
        // alone, hence a zero entry there.
        let mut table = [[0; 4]; 256];
        for (entry, rgb) in table.iter_mut().zip(self.palette.chunks_exact(3)) {
            *entry = [rgb[0], rgb[1], rgb[2], 255];
        }
        if let Some(t) = self.transparent {
            table[usize::from(t)][3] = 0;
        }
        let mut out = RgbaImage::new(self.width, self.height);
        self.expand(4, &[0; 4], &mut out, |dst, src| {
            for (pixel, &i) in dst.chunks_exact_mut(4).zip(src) {
                pixel.copy_from_slice(&table[usize::from(i)]);
            }
        });
        out
    }

    /// Fills `out` (`width × height` pixels of `channels` bytes) with
    /// `clear` around the frame, and has `write_row` write each row of the
    /// frame's visible part from its indices.
    fn expand(
        &self,
        channels: usize,
        clear: &[u8],
        out: &mut [u8],
        mut write_row: impl FnMut(&mut [u8], &[u8]),
    ) {
        let (width, left, top) = (self.width as usize, self.left as usize, self.top as usize);
        let frame_width = self.frame_width as usize;
        let covers = left == 0
            && top == 0
            && self.frame_width == self.width
            && self.frame_height == self.height;
        if !covers {
            for pixel in out.chunks_exact_mut(channels) {
                pixel.copy_from_slice(clear);
            }
        }
        if left >= width {
            return;
        }
        let right = (left + frame_width).min(width);
        // Zipping rows clips the frame at the screen's bottom edge.
        let rows = out.chunks_exact_mut(width * channels).skip(top);
        for (row, src) in rows.zip(self.indices.chunks_exact(frame_width)) {
            write_row(&mut row[left * channels..right * channels], src);
        }
    }
}

/// Writes the colours of the indices `src` into the RGB row `dst`, as far
/// as `dst` goes. Four pixels at a time, each copied as the four bytes of
/// its entry, the fourth overwritten by the next pixel: one load and one
/// store a pixel, where a three-byte copy takes two of each. This loop is
/// all the path costs beyond LZW; copying three bytes a pixel it took 8
/// instructions a pixel, this way 4.5.
fn rgb_row(dst: &mut [u8], src: &[u8], table: &[[u8; 4]; 256]) {
    let (dst_quads, _) = dst.as_chunks_mut::<12>();
    let (src_quads, _) = src.as_chunks::<4>();
    let quads = dst_quads.len().min(src_quads.len());
    for (d, s) in dst_quads.iter_mut().zip(src_quads) {
        d[0..4].copy_from_slice(&table[usize::from(s[0])]);
        d[3..7].copy_from_slice(&table[usize::from(s[1])]);
        d[6..10].copy_from_slice(&table[usize::from(s[2])]);
        d[9..12].copy_from_slice(&table[usize::from(s[3])][..3]);
    }
    // The last one to three pixels, when the row is no whole number of quads.
    for (d, &i) in dst[quads * 12..].chunks_exact_mut(3).zip(&src[quads * 4..]) {
        d.copy_from_slice(&table[usize::from(i)][..3]);
    }
}

/// A gif crate error as `image` wraps it, so the user reads the reason
/// the general decoder would have given.
fn gif_error(e: gif::DecodingError) -> ImageError {
    match e {
        gif::DecodingError::Io(e) => ImageError::IoError(e),
        other => ImageError::Decoding(DecodingError::new(
            ImageFormatHint::Exact(image::ImageFormat::Gif),
            other,
        )),
    }
}

#[cfg(test)]
mod tests {
    use image::metadata::Orientation;
    use image::DynamicImage;

    use super::super::decode::Pixels;
    use super::super::options::{AlphaThumb, ThumbOptions};
    use super::super::thumb::{fit, flatten, thumbnail};
    use super::*;

    /// A palette of `colours` entries, no two alike.
    fn palette(colours: usize) -> Vec<u8> {
        (0..colours)
            .flat_map(|i| [(i * 7) as u8, (i * 13 + 5) as u8, 255 - i as u8])
            .collect()
    }

    /// Indices that cover `0..below` in no simple pattern (a resize or an
    /// off-by-one row would show).
    fn noise(width: u16, height: u16, below: usize) -> Vec<u8> {
        (0..usize::from(width) * usize::from(height))
            .map(|i| ((i * 7919 + i / 13 * 31) % below) as u8)
            .collect()
    }

    /// A GIF of a `screen`-sized logical screen with a 256-colour global
    /// palette, holding `frames` (the second frame, when there is one, is
    /// there to be ignored).
    fn gif(screen: (u16, u16), frames: &[gif::Frame<'_>]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut encoder =
            gif::Encoder::new(&mut out, screen.0, screen.1, &palette(256)).expect("encoder");
        for frame in frames {
            encoder.write_frame(frame).expect("frame");
        }
        encoder.into_inner().expect("trailer");
        out
    }

    /// A frame of noise over indices `0..below`, at `(left, top)`.
    fn frame(
        (left, top): (u16, u16),
        (width, height): (u16, u16),
        below: usize,
        transparent: Option<u8>,
    ) -> gif::Frame<'static> {
        let mut frame = gif::Frame::from_indexed_pixels(
            width,
            height,
            noise(width, height, below),
            transparent,
        );
        frame.left = left;
        frame.top = top;
        frame
    }

    /// The GIFs the new path must decode as `image` does, by name.
    fn samples() -> Vec<(&'static str, Vec<u8>)> {
        let opaque = frame((0, 0), (37, 23), 256, None);
        let second = frame((3, 2), (10, 10), 256, None);
        let mut local = frame((7, 5), (20, 10), 8, Some(2));
        // Four colours, so indices 4..8 point past the table's end.
        local.palette = Some(palette(4));
        let mut interlaced = frame((25, 15), (30, 20), 256, Some(9));
        interlaced.interlaced = true;
        let mut interlaced_inside = frame((0, 0), (40, 30), 256, None);
        interlaced_inside.interlaced = true;
        vec![
            ("opaque, two frames", gif((37, 23), &[opaque, second])),
            (
                "transparent index",
                gif((37, 23), &[frame((0, 0), (37, 23), 16, Some(5))]),
            ),
            (
                "offset, local palette shorter than the indices",
                gif((40, 30), &[local]),
            ),
            (
                "interlaced, sticking out of the screen",
                gif((40, 30), &[interlaced]),
            ),
            (
                "interlaced, whole screen",
                gif((40, 30), &[interlaced_inside]),
            ),
            (
                "full-width band",
                gif((40, 30), &[frame((0, 12), (40, 10), 64, Some(0))]),
            ),
            (
                "off the screen entirely",
                gif((40, 30), &[frame((50, 3), (8, 8), 256, None)]),
            ),
        ]
    }

    fn old(bytes: &[u8]) -> Result<DynamicImage, ImageError> {
        image::load_from_memory_with_format(bytes, image::ImageFormat::Gif)
    }

    fn new(bytes: &[u8]) -> IndexedFrame {
        IndexedFrame::decode(bytes, u64::MAX)
            .expect("decodes")
            .expect("has pixels")
    }

    #[test]
    fn pixels_match_image_decode_then_flatten() {
        for background in [[255, 255, 255], [200, 100, 50]] {
            for (name, bytes) in samples() {
                let want = flatten(old(&bytes).expect(name), background);
                let got = new(&bytes).to_rgb(background);
                assert_eq!(got.dimensions(), want.dimensions(), "{name}");
                assert!(got.as_raw() == want.as_raw(), "{name} on {background:?}");
            }
        }
    }

    #[test]
    fn rgba_matches_image_decode() {
        for (name, bytes) in samples() {
            let want = old(&bytes).expect(name).into_rgba8();
            let got = new(&bytes).to_rgba();
            assert!(got.as_raw() == want.as_raw(), "{name}");
            // The samples are meant to exercise transparency, not to be
            // trivially opaque.
            if name != "opaque, two frames" && name != "interlaced, whole screen" {
                assert!(
                    got.pixels().any(|p| p.0[3] == 0),
                    "{name} has no clear pixel"
                );
            }
        }
    }

    #[test]
    fn thumbnails_are_byte_identical_to_the_general_path() {
        for alpha in [AlphaThumb::Jpeg, AlphaThumb::Png, AlphaThumb::WebP] {
            let options = ThumbOptions {
                max_side: 16,
                alpha,
                ..ThumbOptions::default()
            };
            for (name, bytes) in samples() {
                let frame = new(&bytes);
                let size = fit(frame.width, frame.height, options.max_side);
                let make = |pixels| {
                    thumbnail(pixels, Orientation::NoTransforms, size, &options).expect(name)
                };
                let want = make(Pixels::Image(old(&bytes).expect(name)));
                let got = make(Pixels::Indexed(frame));
                assert_eq!(got.mimetype, want.mimetype, "{name}, {alpha:?}");
                assert!(got.bytes == want.bytes, "{name}, {alpha:?}");
            }
        }
    }

    #[test]
    fn damaged_files_fail_where_image_fails() {
        let mut checked = 0;
        for (name, full) in samples() {
            let flips = (0..full.len()).flat_map(|pos| {
                [0xFF, 0x01].map(|flip| {
                    let mut bytes = full.clone();
                    bytes[pos] ^= flip;
                    bytes
                })
            });
            let cuts = (0..full.len()).map(|cut| full[..cut].to_vec());
            for bytes in cuts.chain(flips) {
                let got = match IndexedFrame::decode(&bytes, u64::MAX) {
                    Ok(Some(frame)) => Ok(frame.to_rgba()),
                    // Left to `image`, so the same by construction.
                    Ok(None) => continue,
                    Err(e) => Err(e),
                };
                match (got, old(&bytes)) {
                    (Ok(got), Ok(want)) => {
                        assert!(got.as_raw() == want.into_rgba8().as_raw(), "{name}")
                    }
                    (Err(got), Err(want)) => {
                        assert_eq!(got.to_string(), want.to_string(), "{name}")
                    }
                    (got, want) => panic!(
                        "{name}: {:?} here, {:?} through image",
                        got.err(),
                        want.err()
                    ),
                }
                checked += 1;
            }
        }
        assert!(checked > 5000, "{checked}");
    }

    #[test]
    fn a_frame_larger_than_the_screen_is_held_to_the_allocation_limit() {
        let bytes = gif((1, 1), &[frame((0, 0), (100, 100), 256, None)]);
        let rgba = 100 * 100 * 4;
        assert!(matches!(
            IndexedFrame::decode(&bytes, rgba - 1),
            Err(ImageError::Limits(_))
        ));
        let frame = IndexedFrame::decode(&bytes, rgba)
            .expect("decodes")
            .expect("pixels");
        assert_eq!(frame.to_rgb([0; 3]).dimensions(), (1, 1));
    }

    #[test]
    fn a_frame_without_pixels_is_left_to_image() {
        let bytes = gif((4, 4), &[frame((0, 0), (0, 0), 256, None)]);
        assert!(matches!(IndexedFrame::decode(&bytes, u64::MAX), Ok(None)));
    }
}
