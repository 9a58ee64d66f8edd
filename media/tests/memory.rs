//! Peak memory of an image job, measured, for a file built to blow it up.
//!
//! An 8×8 PNG with a 1 MB `iCCP` chunk that inflates to 1 GiB of zeros
//! once cost a thumbnailer ~380 MB: the png decoder inflated the profile up
//! to its allocation limit. Each job here runs in a child process (this
//! test binary, re-run on one test) so that its peak resident set
//! (`VmHWM`, reset before the job) is its own and nothing else's; the
//! parent checks it against [`MediaLimits::job_memory`].
//!
//! The bomb is written here bit by bit: one dynamic-Huffman DEFLATE block
//! whose only codes are the literal 0, "length 258" and "distance 1", one
//! bit each, so every 258 zeros cost two bits. It never exists inflated in
//! this process.

use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;

use image::{DynamicImage, ImageFormat, Rgb, RgbImage};
use wani_media::{MediaLimits, ThumbOptions};

/// Bits into bytes, least significant first, as DEFLATE packs them.
struct Bits<W: Write> {
    out: W,
    acc: u64,
    n: u32,
}

impl<W: Write> Bits<W> {
    fn put(&mut self, value: u64, n: u32) {
        self.acc |= value << self.n;
        self.n += n;
        while self.n >= 8 {
            self.out.write_all(&[self.acc as u8]).unwrap();
            self.acc >>= 8;
            self.n -= 8;
        }
    }

    /// A Huffman code goes most significant bit first.
    fn code(&mut self, code: u64, len: u32) {
        let reversed = (0..len).fold(0, |r, i| r | ((code >> i) & 1) << (len - 1 - i));
        self.put(reversed, len);
    }

    fn finish(mut self) -> W {
        if self.n > 0 {
            self.put(0, 8 - self.n);
        }
        self.out
    }
}

/// A zlib stream that inflates to `1 + 258 × matches` zero bytes.
fn zeros_zlib(matches: u64) -> (Vec<u8>, u64) {
    let mut bits = Bits {
        out: Vec::new(),
        acc: 0,
        n: 0,
    };
    bits.put(0x78, 8); // CMF: deflate, 32 KiB window
    bits.put(0x01, 8); // FLG: (0x78 << 8 | 0x01) % 31 == 0
    bits.put(1, 1); // the final block
    bits.put(2, 2); // dynamic Huffman codes
    bits.put(29, 5); // 286 literal/length codes
    bits.put(1, 5); // 2 distance codes
    bits.put(14, 4); // 18 code-length codes, in this order:
    for sym in [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1] {
        let len = match sym {
            18 => 1,
            1 | 2 => 2,
            _ => 0,
        };
        bits.put(len, 3);
    }
    // Code-length codes: 18 → 0, 1 → 10, 2 → 11.
    let (cl1, cl2, cl18) = ((2, 2), (3, 2), (0, 1));
    bits.code(cl2.0, cl2.1); // literal 0: length 2
    bits.code(cl18.0, cl18.1); // literals 1..=138: unused
    bits.put(138 - 11, 7);
    bits.code(cl18.0, cl18.1); // literals 139..=255: unused
    bits.put(117 - 11, 7);
    bits.code(cl2.0, cl2.1); // 256, end of block: length 2
    bits.code(cl18.0, cl18.1); // 257..=284: unused
    bits.put(28 - 11, 7);
    bits.code(cl1.0, cl1.1); // 285, length 258: length 1
    bits.code(cl1.0, cl1.1); // distance code 0 (distance 1): length 1
    bits.code(cl1.0, cl1.1); // distance code 1: length 1
                             // Literal/length codes: 285 → 0, 0 → 10, 256 → 11; distance 1 → 0.
    bits.code(2, 2); // one zero byte
    for _ in 0..matches {
        bits.put(0, 2); // 258 more, copied from one byte back
    }
    bits.code(3, 2); // end of block
    let mut out = bits.finish();
    let inflated = 1 + 258 * matches;
    // Adler-32 of zeros: a stays 1, b adds it once a byte.
    let adler = ((inflated % 65521) << 16) | 1;
    out.write_all(&(adler as u32).to_be_bytes()).unwrap();
    (out, inflated)
}

/// An 8×8 PNG with an `iCCP` chunk of about 1 MB that inflates to 1 GiB.
fn iccp_bomb() -> Vec<u8> {
    let small = RgbImage::from_fn(8, 8, |x, y| Rgb([x as u8 * 30, y as u8 * 30, 200]));
    let mut png = std::io::Cursor::new(Vec::new());
    DynamicImage::ImageRgb8(small)
        .write_to(&mut png, ImageFormat::Png)
        .unwrap();
    let png = png.into_inner();
    assert_eq!(&png[12..16], b"IHDR");
    let (zlib, inflated) = zeros_zlib((1 << 30) / 258);
    assert!(inflated > 1_000_000_000);
    let mut data = b"bomb\0\0".to_vec();
    data.extend_from_slice(&zlib);
    let mut out = png[..33].to_vec(); // signature and IHDR
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(b"iCCP");
    out.extend_from_slice(&data);
    let crc = {
        let mut c = flate2::Crc::new();
        c.update(b"iCCP");
        c.update(&data);
        c.sum()
    };
    out.extend_from_slice(&crc.to_be_bytes());
    out.extend_from_slice(&png[33..]);
    out
}

#[test]
fn the_bomb_is_what_it_claims() {
    let bomb = iccp_bomb();
    assert!(bomb.len() < 1_100_000, "{} bytes", bomb.len());
    let at = bomb.windows(4).position(|w| w == b"iCCP").unwrap();
    // Inflated in a stream, never held.
    let mut z = flate2::read::ZlibDecoder::new(&bomb[at + 4 + 6..]);
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let n = z.read(&mut buf).expect("a valid zlib stream");
        if n == 0 {
            break;
        }
        if total == 0 {
            assert!(buf[..n].iter().all(|&b| b == 0));
        }
        total += n as u64;
    }
    assert_eq!(total, 1 + 258 * ((1 << 30) / 258));
}

/// Kilobytes from a `/proc/self/status` line such as `VmHWM:  1234 kB`.
fn status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

const JOB_ENV: &str = "WANI_MEDIA_MEMORY_JOB";

fn limits_named(name: &str) -> MediaLimits {
    match name {
        "default" => MediaLimits::default(),
        // As tight as an 8×8 image of ~1 MB allows.
        "tight" => MediaLimits {
            max_bytes: 2 * 1024 * 1024,
            max_pixels: 64,
            ..MediaLimits::default()
        },
        other => panic!("no limits named {other}"),
    }
}

/// Not a test of its own: the body of a child run by
/// [`a_png_profile_that_inflates_to_a_gigabyte_costs_megabytes`]. As the
/// node does it: `prepare` (strip) on the upload, `process` on what would
/// be stored; then `process` on the upload as it came, for a caller that
/// skips `prepare`.
#[test]
fn memory_child() {
    let Ok(job) = std::env::var(JOB_ENV) else {
        return;
    };
    let mut parts = job.splitn(3, ':');
    let (limits, at_once, path) = (
        limits_named(parts.next().unwrap()),
        parts.next().unwrap().parse::<usize>().unwrap(),
        parts.next().unwrap(),
    );
    let bytes = std::fs::read(path).unwrap();
    // "5" resets the peak to the current resident set (Linux 4.0+), so the
    // peak below is the job's alone.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let before = status_kb("VmRSS:");
    let prepared = wani_media::prepare(&bytes, &limits);
    let stored = prepared.as_ref().map(|p| p.bytes.clone());
    let from_stored = stored
        .as_ref()
        .map(|s| wani_media::process(s, &limits, &ThumbOptions::default()));
    let from_upload = wani_media::process(&bytes, &limits, &ThumbOptions::default());
    let peak = status_kb("VmHWM:");
    let iccp_kept = stored
        .as_ref()
        .map(|s| s.windows(4).any(|w| w == b"iCCP"))
        .unwrap_or(false);
    let show = |r: Result<&wani_media::Processed, &wani_media::MediaError>| match r {
        Ok(p) => format!("thumbnail {}x{}", p.thumb_width, p.thumb_height),
        Err(e) => format!("refused: {e}"),
    };
    let grew = peak.saturating_sub(before);

    // As a thumbnailer pool with `at_once` workers would: the same upload,
    // processed on that many threads at the same time.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let before = status_kb("VmRSS:");
    let start = std::sync::Barrier::new(at_once);
    let together_ok = std::thread::scope(|s| {
        let jobs: Vec<_> = (0..at_once)
            .map(|_| {
                s.spawn(|| {
                    start.wait();
                    wani_media::process(&bytes, &limits, &ThumbOptions::default()).is_ok()
                })
            })
            .collect();
        jobs.into_iter().all(|j| j.join().unwrap())
    });
    let together = status_kb("VmHWM:").saturating_sub(before);
    println!(
        "JOB prepare={}|iccp_kept={iccp_kept}|stored={}|upload={}|grew_kb={}\
         |together_ok={together_ok}|together_kb={together}",
        prepared.as_ref().map(|_| "ok").unwrap_or("refused"),
        match &from_stored {
            Ok(r) => show(r.as_ref()),
            Err(e) => format!("refused: {e}"),
        },
        show(from_upload.as_ref()),
        grew
    );
}

/// Runs [`memory_child`] in a child process on `file` with the limits
/// named `limits`, then `at_once` jobs together; its report line.
fn run_child(limits: &str, at_once: usize, file: &Path) -> String {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "memory_child",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(JOB_ENV, format!("{limits}:{at_once}:{}", file.display()))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .find_map(|l| l.split_once("JOB ").map(|(_, report)| report.to_owned()))
        .unwrap_or_else(|| panic!("no report from the child: {stdout}"))
}

/// The value of `name` in a child's report (`key=value|key=value`).
fn field<'a>(report: &'a str, name: &str) -> &'a str {
    report
        .split('|')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {name} in {report}"))
}

#[test]
fn a_png_profile_that_inflates_to_a_gigabyte_costs_megabytes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bomb.png");
    std::fs::File::create(&path)
        .unwrap()
        .write_all(&iccp_bomb())
        .unwrap();
    // Eight at once, as the issue measured them.
    const AT_ONCE: u64 = 8;
    for limits in ["default", "tight"] {
        let report = run_child(limits, AT_ONCE as usize, &path);
        println!("{limits} limits: {report}");
        // The upload is taken, without its profile, and thumbnailed.
        assert_eq!(field(&report, "prepare"), "ok", "{report}");
        assert_eq!(field(&report, "iccp_kept"), "false", "{report}");
        assert_eq!(field(&report, "stored"), "thumbnail 8x8", "{report}");
        assert_eq!(field(&report, "upload"), "thumbnail 8x8", "{report}");
        // And costs what an 8×8 image may, not what its profile claims.
        let grew = field(&report, "grew_kb").parse::<u64>().unwrap() * 1024;
        let bound = limits_named(limits).job_memory(64);
        assert!(
            grew <= bound,
            "{limits} limits: the job took {} KiB, over the {} KiB an 8x8 image may take",
            grew / 1024,
            bound / 1024
        );
        assert_eq!(field(&report, "together_ok"), "true", "{report}");
        let together = field(&report, "together_kb").parse::<u64>().unwrap() * 1024;
        assert!(
            together <= AT_ONCE * bound,
            "{limits} limits: {AT_ONCE} jobs at once took {} KiB, over {} KiB",
            together / 1024,
            AT_ONCE * bound / 1024
        );
    }
}
