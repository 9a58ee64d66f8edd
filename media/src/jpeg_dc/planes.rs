//! From planes of DC coefficients to pixels: the 1×1 inverse DCT,
//! chrominance brought to the luminance's size, and colour conversion. All
//! of it runs on the 1/8-scale image (190 000 pixels for 12 megapixels),
//! a few percent of the decode.

use super::{Component, DcError, DcImage, Frame};

/// The frame's planes as grey or RGB pixels; `rgb` says the three
/// components are R, G, B rather than Y, Cb, Cr.
pub(super) fn pixels(frame: &Frame, rgb: bool) -> Result<DcImage, DcError> {
    let out_w = frame.width.div_ceil(8);
    let out_h = frame.height.div_ceil(8);
    let grey = frame.components.len() == 1;
    let planes: Vec<Plane> = frame
        .components
        .iter()
        .map(|c| Plane::new(c, frame.max_h, frame.max_v, out_w, out_h))
        .collect();
    let mut pixels = Vec::with_capacity(out_w * out_h * if grey { 1 } else { 3 });
    let outside = DcError::Corrupt("a pixel outside the coefficient planes");
    for y in 0..out_h {
        match planes.as_slice() {
            [luma] => pixels.extend_from_slice(luma.row(y, out_w).ok_or(outside)?),
            [a, b, c] => {
                let (a, b, c) = (
                    a.row(y, out_w).ok_or(outside)?,
                    b.row(y, out_w).ok_or(outside)?,
                    c.row(y, out_w).ok_or(outside)?,
                );
                for ((&a, &b), &c) in a.iter().zip(b).zip(c) {
                    if rgb {
                        pixels.extend_from_slice(&[a, b, c]);
                    } else {
                        pixels.extend_from_slice(&ycbcr_to_rgb(a, b, c));
                    }
                }
            }
            _ => {
                return Err(DcError::Unsupported(
                    "neither grey nor three-component colour",
                ))
            }
        }
    }
    Ok(DcImage {
        width: out_w as u32,
        height: out_h as u32,
        grey,
        pixels,
    })
}

/// A component as samples at the output's size: its blocks through
/// libjpeg's 1×1 inverse DCT (the dequantised DC term divided by 8,
/// rounded, level-shifted), and a subsampled component interpolated
/// linearly between block centres, as libjpeg's "fancy" upsampling does
/// for the common 2:1 case.
struct Plane {
    /// `width` samples a row, `height` rows.
    samples: Vec<u8>,
    width: usize,
}

impl Plane {
    fn new(c: &Component, max_h: usize, max_v: usize, out_w: usize, out_h: usize) -> Self {
        let q = i32::from(c.quant.unwrap_or(0));
        let level = |dc: i16| {
            ((i32::from(dc) * q + 4) >> 3)
                .saturating_add(128)
                .clamp(0, 255) as u8
        };
        let columns = taps(out_w, c.h, max_h, c.coded_w);
        let rows = taps(out_h, c.v, max_v, c.coded_h);
        // Each block row the output needs, levelled and widened.
        let wide: Vec<Vec<u8>> = (0..c.coded_h)
            .map(|by| {
                let start = by * c.blocks_w;
                let blocks = c.dc.get(start..start + c.coded_w).unwrap_or(&[]);
                let levels: Vec<u8> = blocks.iter().map(|&dc| level(dc)).collect();
                columns
                    .iter()
                    .map(|&(i0, i1, w)| {
                        blend(
                            levels.get(i0).copied().unwrap_or(0),
                            levels.get(i1).copied().unwrap_or(0),
                            w,
                        )
                    })
                    .collect()
            })
            .collect();
        let mut samples = Vec::with_capacity(out_w * out_h);
        let empty = vec![0u8; out_w];
        for &(r0, r1, w) in &rows {
            let (a, b) = (
                wide.get(r0).unwrap_or(&empty),
                wide.get(r1).unwrap_or(&empty),
            );
            if w == 0 {
                samples.extend_from_slice(a);
            } else {
                samples.extend(a.iter().zip(b).map(|(&a, &b)| blend(a, b, w)));
            }
        }
        Self {
            samples,
            width: out_w,
        }
    }

    /// Output row `y`; `None` past the plane, which construction rules out.
    fn row(&self, y: usize, out_w: usize) -> Option<&[u8]> {
        let start = y * self.width;
        self.samples.get(start..start + out_w)
    }
}

/// For each of `out` output positions, the two component samples (of
/// `len`) it lies between and the weight of the second, in 256ths, for a
/// component sampled `factor` times where the largest is `max`. Sample
/// centres sit at `(i + ½) · max / factor` output pixels.
fn taps(out: usize, factor: usize, max: usize, len: usize) -> Vec<(usize, usize, u32)> {
    let last = len.saturating_sub(1);
    (0..out)
        .map(|x| {
            if factor == max {
                return (x.min(last), x.min(last), 0);
            }
            // Position in component samples, times 2·max:
            // (x + ½) · factor / max − ½.
            let num = ((2 * x + 1) * factor) as i64 - max as i64;
            let den = 2 * max as i64;
            let (i0, rem) = (num.div_euclid(den), num.rem_euclid(den));
            if i0 < 0 {
                return (0, 0, 0);
            }
            let i0 = (i0 as usize).min(last);
            (i0, (i0 + 1).min(last), (rem * 256 / den) as u32)
        })
        .collect()
}

/// `a` and `b` mixed with `w`/256 of `b`, rounded.
fn blend(a: u8, b: u8, w: u32) -> u8 {
    ((u32::from(a) * (256 - w) + u32::from(b) * w + 128) >> 8) as u8
}

/// JFIF's YCbCr to RGB, in libjpeg's 16-bit fixed point.
fn ycbcr_to_rgb(y: u8, cb: u8, cr: u8) -> [u8; 3] {
    let (y, cb, cr) = (i32::from(y), i32::from(cb) - 128, i32::from(cr) - 128);
    const HALF: i32 = 1 << 15;
    let r = y + ((91_881 * cr + HALF) >> 16);
    let g = y + ((-22_554 * cb - 46_802 * cr + HALF) >> 16);
    let b = y + ((116_130 * cb + HALF) >> 16);
    [r, g, b].map(|v| v.clamp(0, 255) as u8)
}
