//! The built-in captcha: a short code drawn by wani itself as a PNG (a
//! bitmap font, per-glyph jitter, a sine warp, noise), checked server-side
//! once, expiring after a while; a client that solved one may post without
//! another for a cooldown.
//!
//! [`CaptchaBook`] is the pure bookkeeping (time injected as `now` in ms),
//! [`draw`] the picture. The book lives in one node's memory: a captcha is
//! answered on the node that issued it (the cluster issue moves it to the
//! store or to signed, single-use tokens).
//!
//! Not a defence against determined OCR; it raises the cost of drive-by
//! spam, which is what it is for.

use std::collections::HashMap;
use std::io::Cursor;

use image::{ImageFormat, Rgb, RgbImage};
use rand::Rng;

/// Characters a code is made of: no look-alikes (0/O, 1/I/L, 2/Z, 5/S, 8/B).
const ALPHABET: &[u8] = b"ACDEFHJKMNPRTUVWXY3479";
/// Characters per code.
pub const CODE_LEN: usize = 6;
/// Pending captchas kept at most; beyond it the soonest to expire is dropped.
const MAX_PENDING: usize = 20_000;

/// Why an answer was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaptchaError {
    /// No captcha id or no answer was sent.
    Missing,
    /// Never issued, or already used once.
    Unknown,
    Expired,
    Wrong,
}

impl CaptchaError {
    /// What to tell the user.
    pub fn message(self) -> &'static str {
        match self {
            CaptchaError::Missing => "this board asks for a captcha: type the code from the image",
            CaptchaError::Unknown => {
                "this captcha was already used or never existed: load a new one and try again"
            }
            CaptchaError::Expired => "this captcha has expired: load a new one and try again",
            CaptchaError::Wrong => "the captcha answer is wrong: load a new one and try again",
        }
    }
}

/// Issued captchas and the clients in their cooldown.
#[derive(Debug)]
pub struct CaptchaBook {
    pending: HashMap<String, (String, i64)>,
    cleared: HashMap<String, i64>,
    ttl_ms: i64,
    cooldown_ms: i64,
}

impl CaptchaBook {
    /// A book whose captchas live `ttl_ms` and whose solvers may post
    /// without another for `cooldown_ms`.
    pub fn new(ttl_ms: i64, cooldown_ms: i64) -> CaptchaBook {
        CaptchaBook {
            pending: HashMap::new(),
            cleared: HashMap::new(),
            ttl_ms,
            cooldown_ms,
        }
    }

    /// Issues a captcha: its id (random, unguessable) and code.
    pub fn issue(&mut self, now: i64) -> (String, String) {
        let mut rng = rand::rng();
        let code: String = (0..CODE_LEN)
            .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
            .collect();
        let id = hex::encode(rng.random::<[u8; 16]>());
        self.sweep(now);
        if self.pending.len() >= MAX_PENDING {
            if let Some(k) = self
                .pending
                .iter()
                .min_by_key(|(_, (_, exp))| *exp)
                .map(|(k, _)| k.clone())
            {
                self.pending.remove(&k);
            }
        }
        self.pending
            .insert(id.clone(), (code.clone(), now + self.ttl_ms));
        (id, code)
    }

    /// The code of a pending captcha (to draw it), if it is still valid.
    pub fn code(&self, id: &str, now: i64) -> Option<&str> {
        self.pending
            .get(id)
            .filter(|(_, exp)| *exp > now)
            .map(|(c, _)| c.as_str())
    }

    /// Checks an answer. The captcha is used up whatever the outcome, so an
    /// answer cannot be guessed twice. On success `client` starts its cooldown.
    pub fn solve(
        &mut self,
        id: &str,
        answer: &str,
        client: &str,
        now: i64,
    ) -> Result<(), CaptchaError> {
        if id.is_empty() || answer.trim().is_empty() {
            return Err(CaptchaError::Missing);
        }
        let (code, expires) = self.pending.remove(id).ok_or(CaptchaError::Unknown)?;
        if expires <= now {
            return Err(CaptchaError::Expired);
        }
        let answer: String = answer
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_uppercase();
        if answer != code {
            return Err(CaptchaError::Wrong);
        }
        if self.cooldown_ms > 0 {
            self.cleared
                .insert(client.to_string(), now + self.cooldown_ms);
        }
        Ok(())
    }

    /// Whether `client` solved a captcha recently enough to skip one.
    pub fn in_cooldown(&self, client: &str, now: i64) -> bool {
        self.cleared.get(client).is_some_and(|until| *until > now)
    }

    /// Drops expired captchas and cooldowns.
    pub fn sweep(&mut self, now: i64) {
        self.pending.retain(|_, (_, exp)| *exp > now);
        self.cleared.retain(|_, until| *until > now);
    }
}

/// 5×7 bitmaps of [`ALPHABET`], one row per byte, high bit on the left.
fn glyph(c: u8) -> [u8; 7] {
    match c {
        b'A' => [0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        b'C' => [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E],
        b'D' => [0x1E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1E],
        b'E' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F],
        b'F' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10],
        b'H' => [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        b'J' => [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C],
        b'K' => [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11],
        b'M' => [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11],
        b'N' => [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
        b'P' => [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10],
        b'R' => [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
        b'T' => [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        b'U' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        b'V' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04],
        b'W' => [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A],
        b'X' => [0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11],
        b'Y' => [0x11, 0x11, 0x0A, 0x04, 0x04, 0x04, 0x04],
        b'3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        b'4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        b'7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        b'9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        _ => [0x1F, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1F],
    }
}

/// Pixels per font dot.
const SCALE: u32 = 4;
const WIDTH: u32 = 40 + CODE_LEN as u32 * 6 * SCALE;
const HEIGHT: u32 = 64;

/// Draws `code` as a PNG: glyphs with random vertical jitter, warped along
/// a random sine, over dots and lines of noise.
pub fn draw(code: &str) -> Vec<u8> {
    let mut rng = rand::rng();
    let mut img = RgbImage::from_pixel(WIDTH, HEIGHT, Rgb([246, 244, 238]));
    let ink = Rgb([40, 40, 70]);
    let phase: f32 = rng.random_range(0.0..std::f32::consts::TAU);
    let amp: f32 = rng.random_range(3.0..6.0);
    for (i, c) in code.bytes().enumerate() {
        let x0 = 20 + i as u32 * 6 * SCALE;
        let y0 = 14 + rng.random_range(0..8u32);
        for (row, bits) in glyph(c).iter().enumerate() {
            for col in 0..5u32 {
                if bits & (0x10 >> col) == 0 {
                    continue;
                }
                for dy in 0..SCALE {
                    for dx in 0..SCALE {
                        let x = x0 + col * SCALE + dx;
                        let warp = (amp * (x as f32 / 11.0 + phase).sin()) as i32;
                        let y = (y0 + row as u32 * SCALE + dy) as i32 + warp;
                        if x < WIDTH && (0..HEIGHT as i32).contains(&y) {
                            img.put_pixel(x, y as u32, ink);
                        }
                    }
                }
            }
        }
    }
    for _ in 0..(WIDTH * HEIGHT / 12) {
        let (x, y) = (rng.random_range(0..WIDTH), rng.random_range(0..HEIGHT));
        let v = rng.random_range(60..200u8);
        img.put_pixel(x, y, Rgb([v, v, v.saturating_add(30)]));
    }
    for _ in 0..4 {
        let (mut y, slope) = (
            rng.random_range(10.0..(HEIGHT as f32 - 10.0)),
            rng.random_range(-0.3f32..0.3),
        );
        for x in 0..WIDTH {
            y += slope;
            if (0.0..HEIGHT as f32).contains(&y) {
                img.put_pixel(x, y as u32, ink);
            }
        }
    }
    let mut out = Cursor::new(Vec::new());
    // Encoding an in-memory RGB image to PNG cannot fail short of OOM; an
    // empty body then just shows a broken image.
    let _ = img.write_to(&mut out, ImageFormat::Png);
    out.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_counts_once_and_starts_a_cooldown() {
        let mut book = CaptchaBook::new(600_000, 60_000);
        let (id, code) = book.issue(0);
        assert_eq!(code.len(), CODE_LEN);
        assert_eq!(book.code(&id, 1), Some(code.as_str()));
        assert!(!book.in_cooldown("c", 1));
        assert_eq!(book.solve(&id, &code.to_lowercase(), "c", 1), Ok(()));
        assert_eq!(
            book.solve(&id, &code, "c", 2),
            Err(CaptchaError::Unknown),
            "reused"
        );
        assert!(book.in_cooldown("c", 59_000));
        assert!(!book.in_cooldown("c", 60_002));
        assert!(!book.in_cooldown("other", 2));
    }

    #[test]
    fn wrong_expired_and_missing_answers() {
        let mut book = CaptchaBook::new(1_000, 0);
        let (id, code) = book.issue(0);
        assert_eq!(book.solve(&id, "nope", "c", 1), Err(CaptchaError::Wrong));
        assert_eq!(
            book.solve(&id, &code, "c", 1),
            Err(CaptchaError::Unknown),
            "one guess"
        );
        let (id, code) = book.issue(0);
        assert_eq!(book.code(&id, 1_000), None);
        assert_eq!(
            book.solve(&id, &code, "c", 1_000),
            Err(CaptchaError::Expired)
        );
        assert_eq!(book.solve("", "x", "c", 0), Err(CaptchaError::Missing));
        assert_eq!(book.solve("x", " ", "c", 0), Err(CaptchaError::Missing));
        assert!(!book.in_cooldown("c", 1), "no cooldown configured");
        let (id, _) = book.issue(0);
        book.sweep(5_000);
        assert_eq!(book.code(&id, 0), None, "swept");
    }

    #[test]
    fn the_picture_is_a_png_of_the_right_size() {
        let png = draw("ACDE34");
        let img = image::load_from_memory_with_format(&png, ImageFormat::Png).unwrap();
        assert_eq!((img.width(), img.height()), (WIDTH, HEIGHT));
        assert!(
            ALPHABET.iter().all(|c| glyph(*c) != glyph(b'?')),
            "every glyph drawn"
        );
    }
}
