//! The captcha picture: hand-drawn-looking strokes, not a font.
//!
//! A generic reader of the old picture thresholded its one ink colour, cut
//! the glyphs at their fixed positions and matched a 5×7 font. Here nothing
//! is fixed that such a reader could key on:
//! - each glyph is a set of strokes (polylines and arcs) whose points wobble,
//!   then scaled, sheared and rotated at random, drawn with a random width;
//! - each glyph has its own dark ink, varied per pixel; neighbours overlap,
//!   so they touch and no column or colour separates them;
//! - long curves and short stroke fragments in inks drawn from the same
//!   distribution, with the same widths, cross the text, so colour and
//!   thickness do not tell text from clutter and connected pieces are never
//!   one glyph;
//! - the whole is bent by a smooth random 2-D warp and sprinkled with noise
//!   on a light, uneven background.
//!
//! Everything is drawn from a random generator the caller seeds: the server
//! seeds it from the captcha's id, so fetching the same id again gives the
//! same picture (no averaging of many renders of one answer).
//!
//! What it does not do: resist a model trained on its own output. It makes
//! a cheap generic script fail; the proof of work (see `pow`) prices volume.

use std::io::Cursor;

use image::{GrayImage, ImageFormat, Luma, Rgb, RgbImage};
use rand::{Rng, SeedableRng};

/// Width and height of the picture, in pixels.
pub const WIDTH: u32 = 260;
pub const HEIGHT: u32 = 90;

/// A stroke: points in glyph units (x 0..10 right, y 0..14 down).
type Stroke = Vec<(f32, f32)>;

/// Points of an elliptic arc around `(cx, cy)`, angles in degrees with y up
/// (so 90 is the top), from `a0` to `a1`.
fn arc(cx: f32, cy: f32, rx: f32, ry: f32, a0: f32, a1: f32) -> Stroke {
    let n = (((a1 - a0).abs() / 15.0).ceil() as usize).max(2);
    (0..=n)
        .map(|i| {
            let t = (a0 + (a1 - a0) * i as f32 / n as f32).to_radians();
            (cx + rx * t.cos(), cy - ry * t.sin())
        })
        .collect()
}

fn line(points: &[(f32, f32)]) -> Stroke {
    points.to_vec()
}

fn join(mut a: Stroke, b: Stroke) -> Stroke {
    a.extend(b);
    a
}

/// The strokes of one character of [`super::ALPHABET`], or `None`.
pub fn strokes(c: u8) -> Option<Vec<Stroke>> {
    Some(match c {
        b'A' => vec![
            line(&[(0.0, 14.0), (5.0, 0.0), (10.0, 14.0)]),
            line(&[(2.2, 8.5), (7.8, 8.5)]),
        ],
        b'C' => vec![arc(6.0, 7.0, 5.5, 7.0, 50.0, 310.0)],
        b'D' => vec![join(
            line(&[(4.0, 14.0), (1.0, 14.0), (1.0, 0.0), (4.0, 0.0)]),
            arc(4.0, 7.0, 5.5, 7.0, 90.0, -90.0),
        )],
        b'E' => vec![
            line(&[(9.0, 0.0), (1.0, 0.0), (1.0, 14.0), (9.0, 14.0)]),
            line(&[(1.0, 7.0), (7.0, 7.0)]),
        ],
        b'F' => vec![
            line(&[(9.0, 0.0), (1.0, 0.0), (1.0, 14.0)]),
            line(&[(1.0, 7.0), (7.0, 7.0)]),
        ],
        b'H' => vec![
            line(&[(1.0, 0.0), (1.0, 14.0)]),
            line(&[(9.0, 0.0), (9.0, 14.0)]),
            line(&[(1.0, 7.0), (9.0, 7.0)]),
        ],
        b'J' => vec![
            line(&[(3.0, 0.0), (9.5, 0.0)]),
            join(line(&[(7.0, 0.0)]), arc(4.0, 10.0, 3.0, 4.0, 0.0, -180.0)),
        ],
        b'K' => vec![
            line(&[(1.0, 0.0), (1.0, 14.0)]),
            line(&[(9.0, 0.0), (1.0, 8.5)]),
            line(&[(4.0, 5.5), (9.5, 14.0)]),
        ],
        b'M' => vec![line(&[
            (0.0, 14.0),
            (1.0, 0.0),
            (5.0, 9.0),
            (9.0, 0.0),
            (10.0, 14.0),
        ])],
        b'N' => vec![line(&[(1.0, 14.0), (1.0, 0.0), (9.0, 14.0), (9.0, 0.0)])],
        b'P' => vec![join(
            line(&[(1.0, 14.0), (1.0, 0.0), (5.5, 0.0)]),
            join(arc(5.5, 4.0, 3.5, 4.0, 90.0, -90.0), line(&[(1.0, 8.0)])),
        )],
        b'R' => vec![
            join(
                line(&[(1.0, 14.0), (1.0, 0.0), (5.5, 0.0)]),
                join(arc(5.5, 4.0, 3.5, 4.0, 90.0, -90.0), line(&[(1.0, 8.0)])),
            ),
            line(&[(5.0, 8.0), (9.5, 14.0)]),
        ],
        b'T' => vec![
            line(&[(0.0, 0.0), (10.0, 0.0)]),
            line(&[(5.0, 0.0), (5.0, 14.0)]),
        ],
        b'W' => vec![line(&[
            (0.0, 0.0),
            (2.5, 14.0),
            (5.0, 5.0),
            (7.5, 14.0),
            (10.0, 0.0),
        ])],
        b'X' => vec![
            line(&[(1.0, 0.0), (9.0, 14.0)]),
            line(&[(9.0, 0.0), (1.0, 14.0)]),
        ],
        b'Y' => vec![
            line(&[(0.5, 0.0), (5.0, 7.0), (9.5, 0.0)]),
            line(&[(5.0, 7.0), (5.0, 14.0)]),
        ],
        b'3' => vec![
            arc(5.0, 3.6, 4.0, 3.6, 160.0, -90.0),
            arc(5.0, 10.4, 4.5, 3.6, 90.0, -160.0),
        ],
        b'4' => vec![line(&[(7.0, 14.0), (7.0, 0.0), (0.0, 10.0), (10.0, 10.0)])],
        b'7' => vec![line(&[(0.0, 0.0), (10.0, 0.0), (4.0, 14.0)])],
        b'9' => vec![
            arc(5.0, 4.5, 4.5, 4.5, 0.0, 360.0),
            line(&[(9.5, 4.5), (9.0, 10.0), (7.0, 13.5), (3.0, 14.0)]),
        ],
        _ => return None,
    })
}

/// An RGB canvas of floats (0..255), drawn with anti-aliased thick lines.
struct Canvas {
    w: usize,
    h: usize,
    px: Vec<[f32; 3]>,
}

impl Canvas {
    /// Blends `colour` into the canvas with the coverage of `strokes`
    /// (pixel coordinates) at `width`: one coverage layer per call, so
    /// joints of a polyline are not inked twice.
    fn ink(&mut self, strokes: &[Stroke], width: f32, colour: [f32; 3], rng: &mut impl Rng) {
        let mut cover = vec![0f32; self.w * self.h];
        let r = width / 2.0;
        for s in strokes {
            for seg in s.windows(2) {
                let ((x0, y0), (x1, y1)) = (seg[0], seg[1]);
                let lo_x = (x0.min(x1) - r - 1.0).floor().max(0.0) as usize;
                let hi_x = ((x0.max(x1) + r + 1.0).ceil().max(0.0) as usize).min(self.w);
                let lo_y = (y0.min(y1) - r - 1.0).floor().max(0.0) as usize;
                let hi_y = ((y0.max(y1) + r + 1.0).ceil().max(0.0) as usize).min(self.h);
                let (dx, dy) = (x1 - x0, y1 - y0);
                let len2 = (dx * dx + dy * dy).max(1e-6);
                for y in lo_y..hi_y {
                    for x in lo_x..hi_x {
                        let (px, py) = (x as f32 + 0.5, y as f32 + 0.5);
                        let t = (((px - x0) * dx + (py - y0) * dy) / len2).clamp(0.0, 1.0);
                        let (ex, ey) = (px - x0 - t * dx, py - y0 - t * dy);
                        let d = (ex * ex + ey * ey).sqrt();
                        let c = (r - d + 0.5).clamp(0.0, 1.0);
                        let cell = &mut cover[y * self.w + x];
                        *cell = cell.max(c);
                    }
                }
            }
        }
        for (i, c) in cover.iter().enumerate() {
            if *c <= 0.0 {
                continue;
            }
            let n = rng.random_range(-22.0f32..22.0);
            let p = &mut self.px[i];
            for k in 0..3 {
                let ink = (colour[k] + n).clamp(0.0, 255.0);
                p[k] = p[k] * (1.0 - c) + ink * c;
            }
        }
    }
}

/// A dark ink of random hue: what glyphs and clutter are both drawn with.
fn ink(rng: &mut impl Rng) -> [f32; 3] {
    hsv(
        rng.random_range(0.0..360.0),
        rng.random_range(0.25..0.95),
        rng.random_range(0.12..0.5),
    )
}

/// A light paper colour.
fn paper(rng: &mut impl Rng) -> [f32; 3] {
    hsv(
        rng.random_range(0.0..360.0),
        rng.random_range(0.03..0.22),
        rng.random_range(0.86..0.98),
    )
}

fn hsv(h: f32, s: f32, v: f32) -> [f32; 3] {
    let c = v * s;
    let x = c * (1.0 - ((h / 60.0) % 2.0 - 1.0).abs());
    let (r, g, b) = match (h / 60.0) as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = v - c;
    [(r + m) * 255.0, (g + m) * 255.0, (b + m) * 255.0]
}

/// Splits each segment into pieces of about one glyph unit and moves every
/// point a little, smoothly along the stroke: no two renders of a
/// character share an outline.
fn wobble(s: &Stroke, amount: f32, rng: &mut impl Rng) -> Stroke {
    let mut out = Vec::new();
    let (mut drift_x, mut drift_y) = (0.0f32, 0.0f32);
    for (i, seg) in s.windows(2).enumerate() {
        let ((x0, y0), (x1, y1)) = (seg[0], seg[1]);
        let n = ((x1 - x0).hypot(y1 - y0).ceil() as usize).max(1);
        for j in 0..n {
            if i > 0 && j == 0 {
                continue;
            }
            let t = j as f32 / n as f32;
            drift_x =
                (drift_x + rng.random_range(-amount..amount)).clamp(-2.0 * amount, 2.0 * amount);
            drift_y =
                (drift_y + rng.random_range(-amount..amount)).clamp(-2.0 * amount, 2.0 * amount);
            out.push((x0 + t * (x1 - x0) + drift_x, y0 + t * (y1 - y0) + drift_y));
        }
    }
    if let Some(last) = s.last() {
        out.push((last.0 + drift_x, last.1 + drift_y));
    }
    out
}

/// A cubic Bézier from `p0` to `p3` as a polyline.
fn bezier(p: [(f32, f32); 4]) -> Stroke {
    (0..=40)
        .map(|i| {
            let t = i as f32 / 40.0;
            let u = 1.0 - t;
            let (a, b, c, d) = (u * u * u, 3.0 * u * u * t, 3.0 * u * t * t, t * t * t);
            (
                a * p[0].0 + b * p[1].0 + c * p[2].0 + d * p[3].0,
                a * p[0].1 + b * p[1].1 + c * p[2].1 + d * p[3].1,
            )
        })
        .collect()
}

/// Draws `code` (characters of [`super::ALPHABET`]; others are skipped) as
/// a PNG, every random choice taken from `rng`.
pub fn draw_with(code: &str, rng: &mut impl Rng) -> Vec<u8> {
    let (w, h) = (WIDTH as usize, HEIGHT as usize);
    let (top, bottom) = (paper(rng), paper(rng));
    let mut canvas = Canvas {
        w,
        h,
        px: (0..w * h)
            .map(|i| {
                let t = (i / w) as f32 / h as f32;
                let s = (i % w) as f32 / w as f32;
                let m = (t + s) / 2.0;
                [0, 1, 2].map(|k| top[k] * (1.0 - m) + bottom[k] * m)
            })
            .collect(),
    };
    // Faint blotches: the background is not one colour to subtract.
    for _ in 0..rng.random_range(3..7) {
        let (cx, cy) = (
            rng.random_range(0.0..w as f32),
            rng.random_range(0.0..h as f32),
        );
        let r = rng.random_range(10.0..35.0f32);
        let c = paper(rng);
        let blot = arc(cx, cy, r / 2.0, r / 2.0, 0.0, 360.0);
        canvas.ink(&[blot], r, c, rng);
    }

    // Glyphs: laid out left to right with random size, slant and overlap.
    let mut placed: Vec<(Vec<Stroke>, f32, [f32; 3])> = Vec::new();
    let mut pen = 0.0f32;
    let mut extent = (f32::MAX, f32::MIN);
    for c in code.bytes() {
        let Some(shape) = strokes(c.to_ascii_uppercase()) else {
            continue;
        };
        let height = rng.random_range(33.0..42.0f32);
        let unit = height / 14.0;
        let sx = unit * rng.random_range(1.0..1.25);
        let angle = rng.random_range(-0.35..0.35f32);
        let shear = rng.random_range(-0.25..0.25f32);
        let (sin, cos) = angle.sin_cos();
        let baseline = h as f32 / 2.0 + rng.random_range(-6.0..6.0);
        let centre_x = pen + 5.0 * sx;
        let pts: Vec<Stroke> = shape
            .iter()
            .map(|s| {
                wobble(s, 0.22, rng)
                    .into_iter()
                    .map(|(gx, gy)| {
                        let (x, y) = ((gx - 5.0) * sx, (gy - 7.0) * unit);
                        let x = x + shear * y;
                        (centre_x + x * cos - y * sin, baseline + x * sin + y * cos)
                    })
                    .collect()
            })
            .collect();
        for (x, _) in pts.iter().flatten() {
            extent = (extent.0.min(*x), extent.1.max(*x));
        }
        // The next glyph starts inside this one: neighbours overlap.
        pen += 10.0 * sx * rng.random_range(0.86..1.02);
        placed.push((pts, rng.random_range(2.6..4.2), ink(rng)));
    }
    // Centre the text, with a random margin left over.
    let span = extent.1 - extent.0;
    let slack = (w as f32 - span).max(8.0);
    let shift = -extent.0 + rng.random_range(slack * 0.25..slack * 0.75);

    // Clutter under the text: short fragments shaped like glyph strokes.
    let fragment = |rng: &mut dyn rand::RngCore| -> Stroke {
        let (x, y) = (
            rng.random_range(0.0..w as f32),
            rng.random_range(10.0..h as f32 - 10.0),
        );
        let len = rng.random_range(8.0..18.0f32);
        let a = rng.random_range(0.0..std::f32::consts::TAU);
        let bend = rng.random_range(-8.0..8.0f32);
        bezier([
            (x, y),
            (
                x + len * a.cos() / 3.0 + bend,
                y + len * a.sin() / 3.0 - bend,
            ),
            (
                x + 2.0 * len * a.cos() / 3.0 - bend,
                y + 2.0 * len * a.sin() / 3.0 + bend,
            ),
            (x + len * a.cos(), y + len * a.sin()),
        ])
    };
    for _ in 0..rng.random_range(1..4) {
        let s = fragment(rng);
        let (wd, c) = (rng.random_range(2.0..3.6), ink(rng));
        canvas.ink(&[s], wd, c, rng);
    }
    for (pts, width, colour) in &placed {
        let moved: Vec<Stroke> = pts
            .iter()
            .map(|s| s.iter().map(|(x, y)| (x + shift, *y)).collect())
            .collect();
        canvas.ink(&moved, *width, *colour, rng);
    }
    // Clutter over the text: long curves through the text band, and more
    // fragments, in the same inks and about the same widths as the glyphs.
    let band = |rng: &mut dyn rand::RngCore| rng.random_range(h as f32 * 0.25..h as f32 * 0.75);
    for _ in 0..rng.random_range(1..3) {
        let s = bezier([
            (rng.random_range(-10.0..30.0), band(rng)),
            (
                rng.random_range(50.0..110.0),
                rng.random_range(-20.0..h as f32 + 20.0),
            ),
            (
                rng.random_range(150.0..210.0),
                rng.random_range(-20.0..h as f32 + 20.0),
            ),
            (
                rng.random_range(w as f32 - 30.0..w as f32 + 10.0),
                band(rng),
            ),
        ]);
        let (wd, c) = (rng.random_range(1.5..2.8), ink(rng));
        canvas.ink(&[s], wd, c, rng);
    }
    for _ in 0..rng.random_range(1..4) {
        let s = fragment(rng);
        let (wd, c) = (rng.random_range(2.0..3.6), ink(rng));
        canvas.ink(&[s], wd, c, rng);
    }

    // A smooth random 2-D warp: three plane waves per axis.
    let waves: Vec<[f32; 4]> = (0..6)
        .map(|_| {
            let a = rng.random_range(0.0..std::f32::consts::TAU);
            let k = std::f32::consts::TAU / rng.random_range(45.0..140.0f32);
            [
                k * a.cos(),
                k * a.sin(),
                rng.random_range(0.0..std::f32::consts::TAU),
                rng.random_range(0.8..2.2),
            ]
        })
        .collect();
    let offset = |x: f32, y: f32, ws: &[[f32; 4]]| -> f32 {
        ws.iter()
            .map(|[kx, ky, p, a]| a * (kx * x + ky * y + p).sin())
            .sum()
    };
    let mut img = RgbImage::new(WIDTH, HEIGHT);
    for y in 0..h {
        for x in 0..w {
            let (fx, fy) = (x as f32, y as f32);
            let sx = fx + offset(fx, fy, &waves[..3]);
            let sy = fy + offset(fx, fy, &waves[3..]);
            let p = sample(&canvas, sx, sy);
            let n = rng.random_range(-14.0f32..14.0);
            let px = p.map(|v| (v + n + rng.random_range(-6.0f32..6.0)).clamp(0.0, 255.0) as u8);
            img.put_pixel(x as u32, y as u32, Rgb(px));
        }
    }
    // Specks of ink: dark dots that are neither text nor background.
    for _ in 0..rng.random_range(60..140) {
        let (x, y) = (rng.random_range(0..WIDTH), rng.random_range(0..HEIGHT));
        let c = ink(rng).map(|v| v as u8);
        img.put_pixel(x, y, Rgb(c));
    }
    let mut out = Cursor::new(Vec::new());
    // Encoding an in-memory RGB image to PNG cannot fail short of OOM; an
    // empty body then just shows a broken image.
    let _ = img.write_to(&mut out, ImageFormat::Png);
    out.into_inner()
}

/// Bilinear sample of the canvas at `(x, y)`, clamped to its edges.
fn sample(c: &Canvas, x: f32, y: f32) -> [f32; 3] {
    let x = x.clamp(0.0, (c.w - 1) as f32);
    let y = y.clamp(0.0, (c.h - 1) as f32);
    let (x0, y0) = (x.floor() as usize, y.floor() as usize);
    let (x1, y1) = ((x0 + 1).min(c.w - 1), (y0 + 1).min(c.h - 1));
    let (tx, ty) = (x - x0 as f32, y - y0 as f32);
    let at = |x: usize, y: usize| c.px[y * c.w + x];
    let (a, b, d, e) = (at(x0, y0), at(x1, y0), at(x0, y1), at(x1, y1));
    [0, 1, 2].map(|k| {
        let top = a[k] * (1.0 - tx) + b[k] * tx;
        let bot = d[k] * (1.0 - tx) + e[k] * tx;
        top * (1.0 - ty) + bot * ty
    })
}

/// The clean, upright shape of `c`: black strokes on white, `height`
/// pixels tall. What an attacker matching "the generator's own glyphs"
/// would start from; the attack tests use it as their templates.
pub fn glyph_template(c: char, height: u32) -> Option<GrayImage> {
    let shape = strokes(c.to_ascii_uppercase() as u8)?;
    let unit = height as f32 / 16.0;
    let w = (12.0 * unit).ceil() as usize;
    let h = height as usize;
    let mut canvas = Canvas {
        w,
        h,
        px: vec![[255.0; 3]; w * h],
    };
    let pts: Vec<Stroke> = shape
        .iter()
        .map(|s| {
            s.iter()
                .map(|(x, y)| ((x + 1.0) * unit, (y + 1.0) * unit))
                .collect()
        })
        .collect();
    // A generator seeded with zero: the ink's per-pixel variation is the
    // only randomness, and black stays black.
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    canvas.ink(&pts, unit * 1.1, [0.0; 3], &mut rng);
    let mut img = GrayImage::new(w as u32, h as u32);
    for (i, p) in canvas.px.iter().enumerate() {
        img.put_pixel(
            (i % w) as u32,
            (i / w) as u32,
            Luma([p[0].clamp(0.0, 255.0) as u8]),
        );
    }
    Some(img)
}

/// Draws `code` as a PNG with fresh randomness (the server draws through
/// [`super::Captchas::picture`], seeded by the id).
pub fn draw(code: &str) -> Vec<u8> {
    draw_with(code, &mut rand::rng())
}
