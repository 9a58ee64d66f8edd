//! The captcha against the readers a spammer tries first, on live captchas
//! from a real node (`GET /captcha`, then the picture):
//!
//! - a segmenting reader: threshold the ink (Otsu on luminance, the best a
//!   colour threshold can do when inks vary), open it (erase what is
//!   thinner than three pixels: specks, thin lines), cut connected components,
//!   merge or split them into as many pieces as the code has characters,
//!   and match each against the generator's own glyphs, upright and
//!   rotated (the attack that read every one of the old captchas);
//! - a colour-separating reader: group the dark pixels by ink colour
//!   (k-means), each group a glyph, matched the same way;
//! - Tesseract (Debian's `tesseract-ocr`), on the picture as served and on
//!   its thresholded, enlarged form, restricted to the captcha's alphabet.
//!
//! Each must solve fewer than 5% of 200 captchas. Another test writes a
//! sheet of 20 captchas with their answers under them
//! (`target/test-artifacts/captcha-sheet.png`; with `WANI_CAPTCHA_SHEET=PATH`
//! to PATH, which is how `docs/captcha-sheet.png` is made) for a human to
//! check that they stay readable.

mod common;

use common::{Db, TestNode};
use image::{GrayImage, Luma, Rgb, RgbImage};
use std::path::{Path, PathBuf};
use std::process::Command;
use wani_node::abuse::captcha::{draw, ALPHABET, CODE_LEN};

const SAMPLES: usize = 200;
/// Fewer than 5% of [`SAMPLES`].
const MAX_SOLVED: usize = SAMPLES * 5 / 100 - 1;

/// 200 captchas as a script gets them: ids from `GET /captcha`, pictures
/// from their URL, answers read from the node (to score the readers).
async fn live_captchas(n: usize) -> Vec<(Vec<u8>, String)> {
    let node = TestNode::start(Db::Sqlite, |c| {
        c.bootstrap.boards[0].captcha_threads = true;
    })
    .await
    .expect("SQLite node");
    let mut out = Vec::new();
    // Each address may fetch a limited number: spread over several.
    for i in 0..n {
        let c = node.client_from(&format!("127.0.1.{}", 1 + i / 8));
        let v: serde_json::Value = c
            .get(node.at("/captcha"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = v["captcha_id"].as_str().unwrap().to_string();
        let res = c
            .get(node.at(v["image"].as_str().unwrap()))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let png = res.bytes().await.unwrap().to_vec();
        let code = node
            .state
            .abuse
            .captcha_code(&id, wani_node::http::auth::now_ms())
            .expect("pending captcha");
        out.push((png, code));
    }
    node.stop().await;
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generic_readers_solve_fewer_than_one_in_twenty() {
    let captchas = live_captchas(SAMPLES).await;

    let reader = Segmenter::new();
    let segmented = captchas
        .iter()
        .filter(|(png, code)| reader.read(&luma_ink(png)).eq_ignore_ascii_case(code))
        .count();
    let by_colour = captchas
        .iter()
        .filter(|(png, code)| reader.read_by_colour(png).eq_ignore_ascii_case(code))
        .count();
    // How close the segmenting reader gets, character by character: the
    // picture is hard, not the scoring broken.
    let chars: usize = captchas
        .iter()
        .map(|(png, code)| {
            reader
                .read(&luma_ink(png))
                .chars()
                .zip(code.chars())
                .filter(|(a, b)| a == b)
                .count()
        })
        .sum();
    println!(
        "segmenting reader: {segmented}/{SAMPLES} solved, {chars}/{} characters right; \
         colour-separating reader: {by_colour}/{SAMPLES} solved",
        SAMPLES * CODE_LEN
    );
    assert!(
        segmented <= MAX_SOLVED,
        "segmenting reader solved {segmented}/{SAMPLES}"
    );
    assert!(
        by_colour <= MAX_SOLVED,
        "colour reader solved {by_colour}/{SAMPLES}"
    );

    if Command::new("tesseract").arg("--version").output().is_err() {
        println!("tesseract attack skipped: install tesseract-ocr (scripts/test does)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let solved = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for (part, chunk) in captchas.chunks(SAMPLES / 2).enumerate() {
            let (dir, solved) = (dir.path(), &solved);
            s.spawn(move || {
                for (i, (png, code)) in chunk.iter().enumerate() {
                    if tesseract_reads(dir, &format!("{part}-{i}"), png, code) {
                        solved.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            });
        }
    });
    let solved = solved.into_inner();
    println!("tesseract: {solved}/{SAMPLES} solved");
    assert!(solved <= MAX_SOLVED, "tesseract solved {solved}/{SAMPLES}");
}

/// Twenty captchas with their answers, to be looked at by a person.
#[test]
fn a_sheet_of_captchas_for_people_to_read() {
    let captchas: Vec<(Vec<u8>, String)> = (0..20)
        .map(|_| {
            let code: String = (0..CODE_LEN)
                .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
                .collect();
            (draw(&code), code)
        })
        .collect();
    write_sheet(&captchas);
}

/// Whether Tesseract reads `code` from the picture as served, or from its
/// thresholded form enlarged twice (what helps it most on small text).
fn tesseract_reads(dir: &Path, name: &str, png: &[u8], code: &str) -> bool {
    let raw = dir.join(format!("{name}.png"));
    std::fs::write(&raw, png).unwrap();
    let ink = luma_ink(png);
    let big = image::imageops::resize(
        &ink.map_to_gray(),
        ink.w as u32 * 2,
        ink.h as u32 * 2,
        image::imageops::FilterType::Triangle,
    );
    let bin = dir.join(format!("{name}-bin.png"));
    big.save(&bin).unwrap();
    [raw, bin].iter().any(|path| {
        let out = Command::new("tesseract")
            .arg(path)
            .arg("stdout")
            .args(["--psm", "7", "-c"])
            .arg(format!(
                "tessedit_char_whitelist={}",
                std::str::from_utf8(ALPHABET).unwrap()
            ))
            .output()
            .expect("tesseract runs");
        let text: String = String::from_utf8_lossy(&out.stdout)
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        text.eq_ignore_ascii_case(code)
    })
}

/// A binary picture: `true` is ink.
struct Mask {
    w: usize,
    h: usize,
    ink: Vec<bool>,
}

impl Mask {
    fn map_to_gray(&self) -> GrayImage {
        GrayImage::from_fn(self.w as u32, self.h as u32, |x, y| {
            Luma([if self.ink[y as usize * self.w + x as usize] {
                0
            } else {
                255
            }])
        })
    }

    /// Morphological opening (3×3 erosion, then dilation): removes ink
    /// thinner than three pixels — noise dots and thin crossing lines —
    /// and keeps thicker strokes.
    fn opened(&self) -> Mask {
        let at = |m: &Vec<bool>, x: i32, y: i32| {
            x >= 0
                && y >= 0
                && x < self.w as i32
                && y < self.h as i32
                && m[y as usize * self.w + x as usize]
        };
        let pass = |m: &Vec<bool>, all: bool| -> Vec<bool> {
            (0..self.ink.len())
                .map(|i| {
                    let (x, y) = ((i % self.w) as i32, (i / self.w) as i32);
                    let mut n = (-1..=1).flat_map(|dy| (-1..=1).map(move |dx| (dx, dy)));
                    if all {
                        n.all(|(dx, dy)| at(m, x + dx, y + dy))
                    } else {
                        n.any(|(dx, dy)| at(m, x + dx, y + dy))
                    }
                })
                .collect()
        };
        let eroded = pass(&self.ink, true);
        Mask {
            w: self.w,
            h: self.h,
            ink: pass(&eroded, false),
        }
    }

    /// 8-connected components of ink, as pixel lists.
    fn components(&self) -> Vec<Vec<(usize, usize)>> {
        let mut seen = vec![false; self.ink.len()];
        let mut out = Vec::new();
        for start in 0..self.ink.len() {
            if !self.ink[start] || seen[start] {
                continue;
            }
            let mut stack = vec![start];
            seen[start] = true;
            let mut pix = Vec::new();
            while let Some(i) = stack.pop() {
                let (x, y) = (i % self.w, i / self.w);
                pix.push((x, y));
                for dy in -1i32..=1 {
                    for dx in -1i32..=1 {
                        let (nx, ny) = (x as i32 + dx, y as i32 + dy);
                        if nx < 0 || ny < 0 || nx >= self.w as i32 || ny >= self.h as i32 {
                            continue;
                        }
                        let j = ny as usize * self.w + nx as usize;
                        if self.ink[j] && !seen[j] {
                            seen[j] = true;
                            stack.push(j);
                        }
                    }
                }
            }
            out.push(pix);
        }
        out
    }
}

fn rgb(png: &[u8]) -> RgbImage {
    image::load_from_memory(png).unwrap().to_rgb8()
}

/// Otsu's threshold over the luminance: ink is what falls below it.
fn luma_ink(png: &[u8]) -> Mask {
    let img = rgb(png);
    let luma: Vec<u8> = img
        .pixels()
        .map(|Rgb([r, g, b])| ((*r as u32 * 299 + *g as u32 * 587 + *b as u32 * 114) / 1000) as u8)
        .collect();
    let mut hist = [0f64; 256];
    for l in &luma {
        hist[*l as usize] += 1.0;
    }
    let total = luma.len() as f64;
    let sum: f64 = hist.iter().enumerate().map(|(i, n)| i as f64 * n).sum();
    let (mut best, mut t, mut w0, mut s0) = (0.0, 0u8, 0.0, 0.0);
    for (i, n) in hist.iter().enumerate() {
        w0 += n;
        s0 += i as f64 * n;
        let w1 = total - w0;
        if w0 == 0.0 || w1 == 0.0 {
            continue;
        }
        let (m0, m1) = (s0 / w0, (sum - s0) / w1);
        let between = w0 * w1 * (m0 - m1) * (m0 - m1);
        if between > best {
            best = between;
            t = i as u8;
        }
    }
    Mask {
        w: img.width() as usize,
        h: img.height() as usize,
        ink: luma.iter().map(|l| *l <= t).collect(),
    }
}

/// Side of the square every piece and template is scaled to.
const CELL: usize = 20;

/// A piece of ink scaled into a CELL×CELL grid by its bounding box.
fn normalise(pix: &[(usize, usize)]) -> Vec<f32> {
    let (x0, x1) = (
        pix.iter().map(|p| p.0).min().unwrap(),
        pix.iter().map(|p| p.0).max().unwrap(),
    );
    let (y0, y1) = (
        pix.iter().map(|p| p.1).min().unwrap(),
        pix.iter().map(|p| p.1).max().unwrap(),
    );
    let (w, h) = ((x1 - x0 + 1) as f32, (y1 - y0 + 1) as f32);
    let mut cell = vec![0f32; CELL * CELL];
    for (x, y) in pix {
        let cx = (((x - x0) as f32 / w) * CELL as f32) as usize;
        let cy = (((y - y0) as f32 / h) * CELL as f32) as usize;
        cell[cy.min(CELL - 1) * CELL + cx.min(CELL - 1)] = 1.0;
    }
    cell
}

/// Templates of every character (upright and rotated) and the matching.
struct Segmenter {
    templates: Vec<(char, Vec<f32>)>,
}

impl Segmenter {
    fn new() -> Segmenter {
        let mut templates = Vec::new();
        for c in ALPHABET.iter().map(|b| *b as char) {
            let g = draw::glyph_template(c, 48).expect("a glyph for every character");
            for deg in [-30.0f32, -20.0, -10.0, 0.0, 10.0, 20.0, 30.0] {
                let (s, co) = deg.to_radians().sin_cos();
                let (cx, cy) = (g.width() as f32 / 2.0, g.height() as f32 / 2.0);
                let mut pix = Vec::new();
                for (x, y, p) in g.enumerate_pixels() {
                    if p.0[0] < 128 {
                        let (dx, dy) = (x as f32 - cx, y as f32 - cy);
                        let rx = (cx * 2.0 + dx * co - dy * s) as usize;
                        let ry = (cy * 2.0 + dx * s + dy * co) as usize;
                        pix.push((rx, ry));
                    }
                }
                templates.push((c, normalise(&pix)));
            }
        }
        Segmenter { templates }
    }

    fn best(&self, pix: &[(usize, usize)]) -> char {
        let cell = normalise(pix);
        let score = |t: &[f32]| -> f32 {
            let (mut both, mut either) = (0.0, 0.0);
            for (a, b) in cell.iter().zip(t) {
                both += a.min(*b);
                either += a.max(*b);
            }
            both / either.max(1.0)
        };
        self.templates
            .iter()
            .max_by(|a, b| score(&a.1).total_cmp(&score(&b.1)))
            .map(|t| t.0)
            .unwrap_or('?')
    }

    /// Components, merged or split into CODE_LEN pieces left to right.
    fn read(&self, mask: &Mask) -> String {
        let mut parts: Vec<Vec<(usize, usize)>> = mask
            .opened()
            .components()
            .into_iter()
            .filter(|c| c.len() >= 25)
            .collect();
        if parts.is_empty() {
            return String::new();
        }
        let centre = |p: &Vec<(usize, usize)>| p.iter().map(|q| q.0).sum::<usize>() / p.len();
        parts.sort_by_key(centre);
        // Too many: fold the smallest into its nearest neighbour.
        while parts.len() > CODE_LEN {
            let (i, _) = parts
                .iter()
                .enumerate()
                .min_by_key(|(_, p)| p.len())
                .unwrap();
            let small = parts.remove(i);
            let c = centre(&small);
            let j = (0..parts.len())
                .min_by_key(|j| centre(&parts[*j]).abs_diff(c))
                .unwrap();
            parts[j].extend(small);
        }
        // Too few: cut the widest in two at its middle column.
        while parts.len() < CODE_LEN {
            let width = |p: &Vec<(usize, usize)>| {
                p.iter().map(|q| q.0).max().unwrap() - p.iter().map(|q| q.0).min().unwrap()
            };
            let (i, _) = parts
                .iter()
                .enumerate()
                .max_by_key(|(_, p)| width(p))
                .unwrap();
            let p = parts.remove(i);
            let mid = p.iter().map(|q| q.0).min().unwrap() + width(&p) / 2;
            let (l, r): (Vec<_>, Vec<_>) = p.into_iter().partition(|q| q.0 <= mid);
            for half in [r, l] {
                if !half.is_empty() {
                    parts.insert(i, half);
                }
            }
            if parts.len() < CODE_LEN && parts.iter().all(|p| width(p) < 2) {
                break;
            }
        }
        parts.sort_by_key(centre);
        parts.iter().map(|p| self.best(p)).collect()
    }

    /// Groups the ink by colour (k-means, k = CODE_LEN), one glyph a group.
    fn read_by_colour(&self, png: &[u8]) -> String {
        let img = rgb(png);
        let mask = luma_ink(png);
        let ink: Vec<(usize, usize, [f32; 3])> = img
            .enumerate_pixels()
            .filter(|(x, y, _)| mask.ink[*y as usize * mask.w + *x as usize])
            .map(|(x, y, p)| (x as usize, y as usize, p.0.map(f32::from)))
            .collect();
        if ink.len() < CODE_LEN {
            return String::new();
        }
        let mut centres: Vec<[f32; 3]> = (0..CODE_LEN)
            .map(|k| ink[k * ink.len() / CODE_LEN].2)
            .collect();
        let mut label = vec![0usize; ink.len()];
        for _ in 0..12 {
            for (i, (_, _, c)) in ink.iter().enumerate() {
                label[i] = (0..CODE_LEN)
                    .min_by(|a, b| dist(c, &centres[*a]).total_cmp(&dist(c, &centres[*b])))
                    .unwrap();
            }
            for (k, centre) in centres.iter_mut().enumerate() {
                let members: Vec<&[f32; 3]> = ink
                    .iter()
                    .zip(&label)
                    .filter(|(_, l)| **l == k)
                    .map(|(p, _)| &p.2)
                    .collect();
                if !members.is_empty() {
                    *centre = [0, 1, 2]
                        .map(|j| members.iter().map(|m| m[j]).sum::<f32>() / members.len() as f32);
                }
            }
        }
        let mut groups: Vec<Vec<(usize, usize)>> = vec![Vec::new(); CODE_LEN];
        for ((x, y, _), l) in ink.iter().zip(&label) {
            groups[*l].push((*x, *y));
        }
        groups.retain(|g| !g.is_empty());
        groups.sort_by_key(|g| g.iter().map(|q| q.0).sum::<usize>() / g.len());
        groups.iter().map(|g| self.best(g)).collect()
    }
}

fn dist(a: &[f32; 3], b: &[f32; 3]) -> f32 {
    (0..3).map(|i| (a[i] - b[i]) * (a[i] - b[i])).sum()
}

/// Captchas in two columns, each with its answer drawn under it.
fn write_sheet(captchas: &[(Vec<u8>, String)]) {
    let first = rgb(&captchas[0].0);
    let (cw, ch) = (first.width(), first.height());
    let (label, pad) = (28u32, 10u32);
    let rows = captchas.len().div_ceil(2) as u32;
    let mut sheet = RgbImage::from_pixel(
        2 * cw + 3 * pad,
        rows * (ch + label + pad) + pad,
        Rgb([255, 255, 255]),
    );
    for (i, (png, code)) in captchas.iter().enumerate() {
        let (x, y) = (
            pad + (i as u32 % 2) * (cw + pad),
            pad + (i as u32 / 2) * (ch + label + pad),
        );
        image::imageops::overlay(&mut sheet, &rgb(png), x as i64, y as i64);
        let mut gx = x;
        for c in code.chars() {
            let g = draw::glyph_template(c, 22).unwrap();
            for (px, py, p) in g.enumerate_pixels() {
                if p.0[0] < 128 {
                    sheet.put_pixel(gx + px, y + ch + 4 + py, Rgb([200, 0, 0]));
                }
            }
            gx += g.width() + 2;
        }
    }
    let path = std::env::var_os("WANI_CAPTCHA_SHEET")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts");
            std::fs::create_dir_all(&dir).unwrap();
            dir.join("captcha-sheet.png")
        });
    sheet.save(&path).unwrap();
    println!("captcha sheet: {}", path.display());
}
