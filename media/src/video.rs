//! Video: WebM and MP4 probed with ffprobe and thumbnailed with ffmpeg.
//!
//! Video decoders are large C libraries fed hostile bytes, so they never
//! run in wani's process: each job writes the (already stored) file to a
//! temporary path and runs `ffprobe`, then `ffmpeg`, as child processes
//! with a wall-clock limit (the child is killed when it is reached) and an
//! address-space limit (`RLIMIT_AS`, set between fork and exec), one
//! thread each. The thumbnailer pool runs them, so at most one video job
//! per worker is in flight.
//!
//! The thumbnail frame is taken a few percent into the video (5%, at most
//! 10 s in), not at 0: many videos open on black. If that frame is still
//! black (98% of its pixels darker than 32/255) or one flat colour, up to
//! three more are tried, a third, a half and two thirds through, and the
//! first that is neither is used; a video that never shows one (all
//! black, a still colour) gets the least black, most detailed of those
//! seen, never a refusal. Each try is its own ffmpeg child under the same
//! memory limit, scaled to thumbnail size, and the tries share one
//! timeout, so a video that opens on black costs a few child runs, not a
//! decode of the whole stream. ffmpeg applies the stream's rotation
//! itself, so dimensions are reported as displayed.
//!
//! [`VideoTools::detect`] looks for both programs once at start-up; without
//! them the node logs it and refuses video with
//! [`MediaError::VideoUnavailable`].
//!
//! Not handled: audio-only files (refused: no video stream), container
//! metadata (kept as uploaded), animated video previews.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use image::metadata::Orientation;
use tokio::process::Command;

use super::decode::Pixels;
use super::error::MediaError;
use super::options::{MediaLimits, ThumbOptions};
use super::process::Processed;
use super::sniff::Sniffed;
use super::thumb::{fit, thumbnail};

/// Where ffmpeg and ffprobe are, and how far a child may go.
#[derive(Debug, Clone)]
pub struct VideoTools {
    ffmpeg: PathBuf,
    ffprobe: PathBuf,
    /// Wall-clock limit per child process.
    pub timeout: Duration,
    /// Address-space limit per child process, in bytes.
    pub memory_bytes: u64,
}

/// Why a video job failed.
#[derive(Debug)]
pub enum VideoError {
    /// The file is refused; tell the user.
    Media(MediaError),
    /// wani could not run the job (temporary files, spawning).
    Unavailable(String),
}

impl From<MediaError> for VideoError {
    fn from(e: MediaError) -> Self {
        VideoError::Media(e)
    }
}

impl VideoTools {
    /// Finds `ffmpeg` and `ffprobe` on the `PATH` (each must answer
    /// `-version`); `None` if either is missing.
    pub async fn detect(timeout: Duration, memory_bytes: u64) -> Option<VideoTools> {
        let ffmpeg = which("ffmpeg")?;
        let ffprobe = which("ffprobe")?;
        for tool in [&ffmpeg, &ffprobe] {
            let ok = Command::new(tool)
                .arg("-version")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .status()
                .await
                .map(|s| s.success())
                .unwrap_or(false);
            if !ok {
                return None;
            }
        }
        Some(VideoTools {
            ffmpeg,
            ffprobe,
            timeout,
            memory_bytes,
        })
    }

    /// Probes `bytes` (sniffed as a video), checks `limits`, and makes a
    /// thumbnail from a frame a few percent in.
    pub async fn process(
        &self,
        bytes: &[u8],
        sniffed: Sniffed,
        limits: &MediaLimits,
        options: &ThumbOptions,
    ) -> Result<Processed, VideoError> {
        let file = TempFile::write(bytes, sniffed.ext).await?;
        let probe = self.probe(file.path()).await?;
        let (width, height) = (probe.width, probe.height);
        if u64::from(width) * u64::from(height) > limits.max_pixels {
            return Err(MediaError::TooManyPixels {
                width,
                height,
                limit: limits.max_pixels,
            }
            .into());
        }
        if limits.max_duration_ms > 0 && probe.duration_ms > limits.max_duration_ms {
            return Err(MediaError::TooLong {
                duration_ms: probe.duration_ms,
                limit_ms: limits.max_duration_ms,
            }
            .into());
        }
        let (tw, th) = fit(width, height, options.max_side);
        let image = self
            .pick_frame(file.path(), probe.duration_ms, (tw, th))
            .await?;
        let size = (image.width(), image.height());
        let thumb = thumbnail(
            Pixels::Image(image),
            Orientation::NoTransforms,
            size,
            options,
        )?;
        Ok(Processed {
            mimetype: sniffed.mimetype.to_owned(),
            ext: sniffed.ext.to_owned(),
            width,
            height,
            is_animated: false,
            frames: 1,
            duration_ms: probe.duration_ms,
            thumb: thumb.bytes,
            thumb_mimetype: thumb.mimetype.to_owned(),
            thumb_width: thumb.width,
            thumb_height: thumb.height,
        })
    }

    async fn probe(&self, path: &Path) -> Result<Probe, VideoError> {
        let out = self
            .run(
                Command::new(&self.ffprobe)
                    .args(["-v", "error", "-print_format", "json", "-show_format"])
                    .args(["-show_streams", "-i"])
                    .arg(path),
            )
            .await?;
        if !out.status.success() {
            return Err(MediaError::VideoUnreadable(first_line(&out.stderr)).into());
        }
        parse_probe(&out.stdout).map_err(VideoError::Media)
    }

    /// The frame the thumbnail is made of, scaled to `size`: the first of
    /// [`sample_times`] that [`FrameLook::is_representative`], else the
    /// best of those seen. The samples share one `timeout` (a child is
    /// killed when it runs out; one that finished stands), and the first
    /// frame, tried when no sample gave one, has its own, as before: at
    /// most two timeouts here, whatever the video holds.
    async fn pick_frame(
        &self,
        path: &Path,
        duration_ms: u64,
        size: (u32, u32),
    ) -> Result<image::DynamicImage, VideoError> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut best: Option<(FrameLook, image::DynamicImage)> = None;
        for (i, at_ms) in sample_times(duration_ms).into_iter().enumerate() {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                break;
            }
            let frame = match self.frame(path, at_ms, size, left).await {
                Ok(frame) => frame,
                // A later sample failing leaves the earlier ones standing.
                Err(_) if best.is_some() => break,
                Err(e) => return Err(e),
            };
            // Empty: the seek landed past the last frame (a wrong duration
            // in the header); the next, earlier-or-later, sample may not.
            if frame.is_empty() {
                continue;
            }
            let image = image::load_from_memory_with_format(&frame, image::ImageFormat::Png)
                .map_err(|e| MediaError::VideoUnreadable(format!("the frame: {e}")))?;
            let look = FrameLook::of(&image);
            tracing::debug!(at_ms, sample = i, ?look, "video thumbnail candidate");
            if look.is_representative() {
                return Ok(image);
            }
            if best.as_ref().is_none_or(|(b, _)| look.better_than(b)) {
                best = Some((look, image));
            }
        }
        if let Some((_, image)) = best {
            return Ok(image);
        }
        let frame = self.frame(path, 0, size, self.timeout).await?;
        if frame.is_empty() {
            return Err(MediaError::VideoUnreadable("ffmpeg produced no frame".into()).into());
        }
        image::load_from_memory_with_format(&frame, image::ImageFormat::Png)
            .map_err(|e| MediaError::VideoUnreadable(format!("the frame: {e}")).into())
    }

    /// One frame at `at_ms`, scaled to `w`×`h` after rotation, as PNG; empty
    /// if there is no frame there. The child is killed after `timeout`.
    async fn frame(
        &self,
        path: &Path,
        at_ms: u64,
        (w, h): (u32, u32),
        timeout: Duration,
    ) -> Result<Vec<u8>, VideoError> {
        let out = self
            .run_for(
                timeout,
                Command::new(&self.ffmpeg)
                    .args(["-v", "error", "-nostdin", "-threads", "1"])
                    .args(["-ss", &format!("{}.{:03}", at_ms / 1000, at_ms % 1000)])
                    .arg("-i")
                    .arg(path)
                    .args(["-map", "0:v:0", "-frames:v", "1", "-an", "-sn"])
                    .args(["-vf", &format!("scale={w}:{h}:flags=bicubic")])
                    .args(["-f", "image2pipe", "-c:v", "png", "-"]),
            )
            .await?;
        if !out.status.success() {
            return Err(MediaError::VideoUnreadable(first_line(&out.stderr)).into());
        }
        Ok(out.stdout)
    }

    /// Runs a child with the limits; a child past its time is killed.
    async fn run(&self, cmd: &mut Command) -> Result<std::process::Output, VideoError> {
        self.run_for(self.timeout, cmd).await
    }

    /// [`run`](Self::run) with its own wall-clock limit.
    async fn run_for(
        &self,
        timeout: Duration,
        cmd: &mut Command,
    ) -> Result<std::process::Output, VideoError> {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let limit = self.memory_bytes as libc::rlim_t;
        // SAFETY: between fork and exec only async-signal-safe calls are
        // allowed; setrlimit is one, and nothing here allocates.
        unsafe {
            cmd.pre_exec(move || {
                let rl = libc::rlimit {
                    rlim_cur: limit,
                    rlim_max: limit,
                };
                if libc::setrlimit(libc::RLIMIT_AS, &rl) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .map_err(|e| VideoError::Unavailable(format!("starting ffmpeg: {e}")))?;
        match tokio::time::timeout(timeout, child.wait_with_output()).await {
            Ok(Ok(out)) => Ok(out),
            Ok(Err(e)) => Err(VideoError::Unavailable(format!("running ffmpeg: {e}"))),
            // Dropping the future drops the child, which kills it.
            Err(_) => Err(MediaError::VideoUnreadable(format!(
                "it took longer than {} s to read",
                timeout.as_secs()
            ))
            .into()),
        }
    }
}

/// Where frames are tried, in order: 5% in (at most 10 s), where most
/// videos already show what they are about, then a third, a half and two
/// thirds of the way through, for those that open on black, a title card or
/// a fade. Fewer for a video too short to tell the points apart.
fn sample_times(duration_ms: u64) -> Vec<u64> {
    let mut times = vec![(duration_ms / 20).min(10_000)];
    for at in [duration_ms / 3, duration_ms / 2, duration_ms * 2 / 3] {
        if times.last().is_some_and(|&last| at > last) {
            times.push(at);
        }
    }
    times
}

/// How a candidate frame looks, from its luma (BT.601) alone.
#[derive(Debug, Clone, Copy, PartialEq)]
struct FrameLook {
    /// Share of pixels darker than 32 of 255 (ffmpeg's `blackframe`
    /// counts the same way).
    dark: f64,
    /// Standard deviation of luma: near 0 for a flat colour, a fade's
    /// white or black, a title card's background.
    spread: f64,
}

impl FrameLook {
    /// Pixels darker than this count as black.
    const DARK_LUMA: u32 = 32;
    /// A frame with at least this share of dark pixels is black.
    const BLACK_SHARE: f64 = 0.98;
    /// A frame whose luma varies less than this is one flat colour.
    const FLAT_SPREAD: f64 = 10.0;

    fn of(image: &image::DynamicImage) -> FrameLook {
        let rgb = image.to_rgb8();
        let n = (u64::from(rgb.width()) * u64::from(rgb.height())).max(1) as f64;
        let (mut dark, mut sum, mut sum_sq) = (0u64, 0f64, 0f64);
        for p in rgb.pixels() {
            let [r, g, b] = p.0.map(u32::from);
            let y = (299 * r + 587 * g + 114 * b) / 1000;
            if y < Self::DARK_LUMA {
                dark += 1;
            }
            sum += f64::from(y);
            sum_sq += f64::from(y * y);
        }
        let mean = sum / n;
        FrameLook {
            dark: dark as f64 / n,
            spread: (sum_sq / n - mean * mean).max(0.0).sqrt(),
        }
    }

    fn is_black(&self) -> bool {
        self.dark >= Self::BLACK_SHARE
    }

    /// Neither black nor one flat colour: worth showing as it is.
    fn is_representative(&self) -> bool {
        !self.is_black() && self.spread >= Self::FLAT_SPREAD
    }

    /// For when no sample is representative: anything over black, then
    /// the more detailed; a tie keeps the earlier frame.
    fn better_than(&self, other: &FrameLook) -> bool {
        match (self.is_black(), other.is_black()) {
            (false, true) => true,
            (true, false) => false,
            _ => self.spread > other.spread + 1.0,
        }
    }
}

/// What ffprobe said about the first video stream.
#[derive(Debug, PartialEq, Eq)]
struct Probe {
    /// As displayed (rotation applied).
    width: u32,
    height: u32,
    duration_ms: u64,
}

fn parse_probe(json: &[u8]) -> Result<Probe, MediaError> {
    let v: serde_json::Value = serde_json::from_slice(json)
        .map_err(|e| MediaError::VideoUnreadable(format!("ffprobe's answer: {e}")))?;
    let streams = v["streams"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let video = streams
        .iter()
        // Cover art in an MP4 is a "video" stream of one picture; skip it.
        .find(|s| s["codec_type"] == "video" && s["disposition"]["attached_pic"] != 1)
        .ok_or(MediaError::NoVideoStream)?;
    let dim = |k: &str| video[k].as_u64().and_then(|n| u32::try_from(n).ok());
    let (Some(w), Some(h)) = (dim("width"), dim("height")) else {
        return Err(MediaError::VideoUnreadable(
            "the video stream has no dimensions".into(),
        ));
    };
    if w == 0 || h == 0 {
        return Err(MediaError::VideoUnreadable(format!("the video is {w}×{h}")));
    }
    let rotation = video["side_data_list"]
        .as_array()
        .and_then(|l| l.iter().find_map(|d| d["rotation"].as_i64()))
        .or_else(|| {
            video["tags"]["rotate"]
                .as_str()
                .and_then(|r| r.parse().ok())
        })
        .unwrap_or(0);
    let (width, height) = if rotation.rem_euclid(180) == 90 {
        (h, w)
    } else {
        (w, h)
    };
    let seconds = |x: &serde_json::Value| x.as_str().and_then(|s| s.parse::<f64>().ok());
    let duration = seconds(&v["format"]["duration"])
        .or_else(|| seconds(&video["duration"]))
        .filter(|d| d.is_finite() && *d >= 0.0)
        .unwrap_or(0.0);
    Ok(Probe {
        width,
        height,
        duration_ms: (duration * 1000.0).round() as u64,
    })
}

/// The Rust side of probing on one input, for the fuzz targets (`fuzz/`):
/// ffprobe's JSON answer as [`VideoTools::process`] reads it (width,
/// height and duration as displayed), and the first line of ffmpeg's
/// complaint as the user would see it. The JSON is ffprobe's, but what it
/// carries (tags, side data) is the uploader's.
#[doc(hidden)]
pub fn fuzz_probe(ffprobe_json: &[u8]) -> (Result<(u32, u32, u64), MediaError>, String) {
    let probe = parse_probe(ffprobe_json).map(|p| (p.width, p.height, p.duration_ms));
    (probe, first_line(ffprobe_json))
}

fn first_line(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let line: String = line.chars().take(200).collect();
    if line.is_empty() {
        "ffmpeg could not read it".to_owned()
    } else {
        // Paths in messages are ours, not the user's; keep only the reason.
        line.rsplit(": ").next().unwrap_or(&line).to_owned()
    }
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// A file in the temporary directory, removed on drop.
struct TempFile(PathBuf);

static TEMP_SEQ: AtomicU64 = AtomicU64::new(0);

impl TempFile {
    async fn write(bytes: &[u8], ext: &str) -> Result<TempFile, VideoError> {
        let n = TEMP_SEQ.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("wani-video-{}-{n}.{ext}", std::process::id()));
        tokio::fs::write(&path, bytes)
            .await
            .map_err(|e| VideoError::Unavailable(format!("writing {}: {e}", path.display())))?;
        Ok(TempFile(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_reads_dimensions_rotation_and_duration() {
        let json = br#"{"streams":[{"codec_type":"audio"},
            {"codec_type":"video","width":1920,"height":1080,
             "side_data_list":[{"rotation":-90}]}],
            "format":{"duration":"12.345"}}"#;
        assert_eq!(
            parse_probe(json).unwrap(),
            Probe {
                width: 1080,
                height: 1920,
                duration_ms: 12_345
            }
        );
        let audio = br#"{"streams":[{"codec_type":"audio"}],"format":{"duration":"3"}}"#;
        assert_eq!(parse_probe(audio), Err(MediaError::NoVideoStream));
        assert!(parse_probe(b"{}").is_err());
    }

    #[test]
    fn samples_are_ordered_and_distinct() {
        assert_eq!(sample_times(4_000), vec![200, 1_333, 2_000, 2_666]);
        assert_eq!(
            sample_times(600_000),
            vec![10_000, 200_000, 300_000, 400_000]
        );
        assert_eq!(sample_times(0), vec![0]);
        assert_eq!(sample_times(1), vec![0]);
    }

    #[test]
    fn black_and_flat_frames_are_not_representative() {
        let flat = |c: [u8; 3]| {
            image::DynamicImage::ImageRgb8(image::RgbImage::from_pixel(16, 16, image::Rgb(c)))
        };
        let black = FrameLook::of(&flat([2, 2, 2]));
        let red = FrameLook::of(&flat([220, 10, 10]));
        let bars = FrameLook::of(&image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(
            16,
            16,
            |x, _| image::Rgb([(x * 16) as u8, 200, (255 - x * 16) as u8]),
        )));
        assert!(black.is_black() && !black.is_representative());
        assert!(!red.is_black() && !red.is_representative());
        assert!(bars.is_representative());
        assert!(red.better_than(&black) && !black.better_than(&red));
        assert!(!black.better_than(&black), "a tie keeps the earlier frame");
    }
}
