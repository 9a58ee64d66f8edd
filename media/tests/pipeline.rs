//! The media pipeline beyond decoding: metadata stripping, polyglots, frame
//! limits, reduced-scale JPEG decoding, alpha thumbnails, and video through
//! ffmpeg (skipped, with a note, where ffmpeg is not installed).
//!
//! Every file is generated here: images with the `image` crate plus
//! hand-written metadata, videos with ffmpeg's own test sources.

use std::io::Cursor;
use std::time::Duration;

use image::codecs::gif::GifEncoder;
use image::codecs::jpeg::JpegEncoder;
use image::{Delay, DynamicImage, Frame, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};
use wani_media::video::{VideoError, VideoTools};
use wani_media::{AlphaThumb, MediaError, MediaLimits, ThumbOptions};

fn photo(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        Rgb([(x * 255 / width) as u8, (y * 255 / height) as u8, 128])
    })
}

fn jpeg(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, 90)
        .encode_image(&photo(width, height))
        .expect("encode JPEG");
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// A big-endian TIFF block: orientation, camera make "SecretCam", and a GPS
/// IFD with a latitude reference.
fn exif_tiff(orientation: u16) -> Vec<u8> {
    let mut t = b"MM\0\x2A\0\0\0\x08".to_vec();
    t.extend_from_slice(&3u16.to_be_bytes());
    // Make: ASCII, 10 bytes, at offset 50.
    t.extend_from_slice(&[0x01, 0x0F, 0, 2, 0, 0, 0, 10, 0, 0, 0, 50]);
    t.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1]);
    t.extend_from_slice(&orientation.to_be_bytes());
    t.extend_from_slice(&[0, 0]);
    // GPSInfo IFD pointer at offset 60.
    t.extend_from_slice(&[0x88, 0x25, 0, 4, 0, 0, 0, 1, 0, 0, 0, 60]);
    t.extend_from_slice(&[0, 0, 0, 0]);
    t.resize(50, 0);
    t.extend_from_slice(b"SecretCam\0");
    // GPS IFD: one entry, GPSLatitudeRef "N".
    t.extend_from_slice(&1u16.to_be_bytes());
    t.extend_from_slice(&[0x00, 0x01, 0, 2, 0, 0, 0, 2, b'N', 0, 0, 0]);
    t.extend_from_slice(&[0, 0, 0, 0]);
    t
}

/// A JPEG with EXIF (orientation, make, GPS), XMP and a comment.
fn jpeg_with_metadata(width: u32, height: u32, orientation: u16) -> Vec<u8> {
    let plain = jpeg(width, height);
    let mut out = plain[..2].to_vec();
    let mut segment = |marker: u8, data: &[u8]| {
        out.extend_from_slice(&[0xFF, marker]);
        out.extend_from_slice(&((data.len() + 2) as u16).to_be_bytes());
        out.extend_from_slice(data);
    };
    let mut exif = b"Exif\0\0".to_vec();
    exif.extend_from_slice(&exif_tiff(orientation));
    segment(0xE1, &exif);
    segment(
        0xE1,
        b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta>GPSLatitude 48.85</x:xmpmeta>",
    );
    segment(0xFE, b"shot at my house");
    out.extend_from_slice(&plain[2..]);
    out
}

/// The entropy-coded data and everything after the first SOS.
fn scan(jpeg: &[u8]) -> &[u8] {
    let at = jpeg
        .windows(2)
        .position(|w| w == [0xFF, 0xDA])
        .expect("SOS");
    &jpeg[at..]
}

#[test]
fn jpeg_metadata_is_stripped_without_reencoding() {
    let original = jpeg_with_metadata(400, 200, 6);
    let prepared = wani_media::prepare(&original, &MediaLimits::default()).expect("accepted");
    let stripped = &prepared.bytes;
    for secret in [
        &b"SecretCam"[..],
        b"GPSLatitude",
        b"shot at my house",
        b"xmpmeta",
    ] {
        assert!(contains(&original, secret));
        assert!(
            !contains(stripped, secret),
            "{:?} survived",
            String::from_utf8_lossy(secret)
        );
    }
    assert!(
        !contains(stripped, &[0x88, 0x25]),
        "the GPS IFD pointer survived"
    );
    // The pixels are the same bytes: nothing was re-encoded.
    assert_eq!(scan(stripped), scan(&original));
    // The orientation is kept, so the stripped file still displays upright.
    let p = wani_media::process(stripped, &MediaLimits::default(), &ThumbOptions::default())
        .expect("the stripped file is accepted");
    assert_eq!((p.width, p.height), (200, 400));
    assert_eq!((p.thumb_width, p.thumb_height), (200, 400));
    // Without an orientation, no EXIF at all is left.
    let upright = wani_media::prepare(&jpeg_with_metadata(64, 32, 1), &MediaLimits::default())
        .expect("accepted");
    assert!(!contains(&upright.bytes, b"Exif"));
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc = !0u32;
    for &b in &out[start..] {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    out.extend_from_slice(&(!crc).to_be_bytes());
}

#[test]
fn png_text_and_exif_chunks_are_stripped() {
    let mut plain = Cursor::new(Vec::new());
    DynamicImage::ImageRgb8(photo(40, 30))
        .write_to(&mut plain, ImageFormat::Png)
        .unwrap();
    let plain = plain.into_inner();
    // Signature and IHDR (8 + 25 bytes), then metadata, then the rest.
    let mut png = plain[..33].to_vec();
    png_chunk(&mut png, b"tEXt", b"Comment\0SecretCam");
    png_chunk(&mut png, b"tIME", &[7, 0xE8, 1, 2, 3, 4, 5]);
    png_chunk(&mut png, b"eXIf", &exif_tiff(1));
    png.extend_from_slice(&plain[33..]);
    let stripped = wani_media::prepare(&png, &MediaLimits::default())
        .unwrap()
        .bytes;
    assert!(!contains(&stripped, b"SecretCam"));
    assert!(!contains(&stripped, b"tIME") && !contains(&stripped, b"eXIf"));
    assert_eq!(stripped, plain, "only the metadata chunks differ");
}

#[test]
fn webp_exif_and_xmp_chunks_are_stripped() {
    let mut still = Cursor::new(Vec::new());
    DynamicImage::ImageRgb8(photo(40, 30))
        .write_to(&mut still, ImageFormat::WebP)
        .unwrap();
    let still = still.into_inner();
    let vp8l = &still[12..];
    let mut body = b"WEBP".to_vec();
    let chunk = |body: &mut Vec<u8>, fourcc: &[u8; 4], data: &[u8]| {
        body.extend_from_slice(fourcc);
        body.extend_from_slice(&(data.len() as u32).to_le_bytes());
        body.extend_from_slice(data);
        if data.len() % 2 == 1 {
            body.push(0);
        }
    };
    let mut vp8x = vec![0x08 | 0x04, 0, 0, 0];
    vp8x.extend_from_slice(&39u32.to_le_bytes()[..3]);
    vp8x.extend_from_slice(&29u32.to_le_bytes()[..3]);
    chunk(&mut body, b"VP8X", &vp8x);
    body.extend_from_slice(vp8l);
    chunk(&mut body, b"EXIF", &exif_tiff(1));
    chunk(&mut body, b"XMP ", b"<x:xmpmeta>SecretPlace</x:xmpmeta>");
    let mut webp = b"RIFF".to_vec();
    webp.extend_from_slice(&(body.len() as u32).to_le_bytes());
    webp.extend_from_slice(&body);

    let stripped = wani_media::prepare(&webp, &MediaLimits::default())
        .unwrap()
        .bytes;
    assert!(!contains(&stripped, b"SecretCam") && !contains(&stripped, b"SecretPlace"));
    assert_eq!(
        stripped[20] & 0x0C,
        0,
        "the VP8X EXIF/XMP flags are cleared"
    );
    let declared = u32::from_le_bytes(stripped[4..8].try_into().unwrap()) as usize;
    assert_eq!(declared + 8, stripped.len());
    let p = wani_media::process(&stripped, &MediaLimits::default(), &ThumbOptions::default())
        .expect("the stripped WebP decodes");
    assert_eq!((p.width, p.height), (40, 30));
}

/// A JPEG with a colour profile of `len` bytes after its SOI, split over
/// APP2 segments as ICC.1 says (14-byte header, at most 65519 bytes each).
fn jpeg_with_icc(len: usize) -> Vec<u8> {
    let plain = jpeg(32, 32);
    let profile: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    let parts: Vec<&[u8]> = profile.chunks(65_519).collect();
    let mut out = plain[..2].to_vec();
    for (i, part) in parts.iter().enumerate() {
        out.extend_from_slice(&[0xFF, 0xE2]);
        out.extend_from_slice(&((part.len() + 16) as u16).to_be_bytes());
        out.extend_from_slice(b"ICC_PROFILE\0");
        out.extend_from_slice(&[i as u8 + 1, parts.len() as u8]);
        out.extend_from_slice(part);
    }
    out.extend_from_slice(&plain[2..]);
    out
}

#[test]
fn colour_profiles_over_the_limit_are_dropped_from_jpeg_and_webp() {
    let limit = wani_media::ICC_PROFILE_LIMIT as usize;
    let small = jpeg_with_icc(3_000);
    let kept = wani_media::prepare(&small, &MediaLimits::default())
        .unwrap()
        .bytes;
    assert!(contains(&kept, b"ICC_PROFILE\0"), "a real profile stays");
    let big = jpeg_with_icc(limit + 1);
    let stripped = wani_media::prepare(&big, &MediaLimits::default())
        .unwrap()
        .bytes;
    assert!(!contains(&stripped, b"ICC_PROFILE\0"));
    assert_eq!(scan(&stripped), scan(&big), "the pixels are untouched");

    let mut still = Cursor::new(Vec::new());
    DynamicImage::ImageRgb8(photo(40, 30))
        .write_to(&mut still, ImageFormat::WebP)
        .unwrap();
    let still = still.into_inner();
    let mut body = b"WEBP".to_vec();
    let mut vp8x = vec![0x20, 0, 0, 0]; // the ICC flag
    vp8x.extend_from_slice(&39u32.to_le_bytes()[..3]);
    vp8x.extend_from_slice(&29u32.to_le_bytes()[..3]);
    body.extend_from_slice(b"VP8X\x0a\0\0\0");
    body.extend_from_slice(&vp8x);
    body.extend_from_slice(b"ICCP");
    body.extend_from_slice(&((limit + 2) as u32).to_le_bytes());
    body.resize(body.len() + limit + 2, 7);
    body.extend_from_slice(&still[12..]);
    let mut webp = b"RIFF".to_vec();
    webp.extend_from_slice(&(body.len() as u32).to_le_bytes());
    webp.extend_from_slice(&body);
    let stripped = wani_media::prepare(&webp, &MediaLimits::default())
        .unwrap()
        .bytes;
    assert!(!contains(&stripped, b"ICCP"));
    assert_eq!(stripped[20] & 0x20, 0, "the VP8X ICC flag is cleared");
    let p = wani_media::process(&stripped, &MediaLimits::default(), &ThumbOptions::default())
        .expect("the stripped WebP decodes");
    assert_eq!((p.width, p.height), (40, 30));
}

#[test]
fn polyglots_are_refused() {
    let plain = jpeg(32, 32);
    let mut commented = plain[..2].to_vec();
    let html = b"<html><script>alert(document.cookie)</script></html>";
    commented.extend_from_slice(&[0xFF, 0xFE]);
    commented.extend_from_slice(&((html.len() + 2) as u16).to_be_bytes());
    commented.extend_from_slice(html);
    commented.extend_from_slice(&plain[2..]);
    let mut trailer = plain.clone();
    trailer.extend_from_slice(b"<!DOCTYPE html><p>hi</p>");
    for bytes in [commented, trailer] {
        let e = wani_media::prepare(&bytes, &MediaLimits::default()).unwrap_err();
        assert!(matches!(e, MediaError::Polyglot(_)), "{e:?}");
        assert_eq!(e.status(), 415);
        assert!(e.to_string().contains("web page"), "{e}");
    }
}

fn gif_frames(frames: usize) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = GifEncoder::new(&mut out);
        for i in 0..frames {
            let buffer = RgbaImage::from_pixel(16, 16, Rgba([(i * 40) as u8, 0, 0, 255]));
            let frame = Frame::from_parts(buffer, 0, 0, Delay::from_numer_denom_ms(50, 1));
            encoder.encode_frame(frame).unwrap();
        }
    }
    out
}

#[test]
fn frame_limit_is_enforced_without_decoding() {
    let limits = MediaLimits {
        max_frames: 3,
        ..MediaLimits::default()
    };
    let e = wani_media::process(&gif_frames(5), &limits, &ThumbOptions::default()).unwrap_err();
    assert_eq!(
        e,
        MediaError::TooManyFrames {
            frames: 5,
            limit: 3
        }
    );
    assert_eq!(e.status(), 413);
    assert_eq!(
        e.to_string(),
        "the animation has 5 frames; this board accepts at most 3"
    );
    let p = wani_media::process(&gif_frames(3), &limits, &ThumbOptions::default()).unwrap();
    assert_eq!((p.frames, p.is_animated), (3, true));
}

#[test]
fn large_jpegs_are_shrunk_on_load_with_the_right_colours() {
    // Left half red, right half blue: a reduced-scale decode must keep both.
    let img = RgbImage::from_fn(4000, 3000, |x, _| {
        if x < 2000 {
            Rgb([220, 20, 20])
        } else {
            Rgb([20, 20, 220])
        }
    });
    let mut bytes = Vec::new();
    JpegEncoder::new_with_quality(&mut bytes, 90)
        .encode_image(&img)
        .unwrap();
    let limits = MediaLimits {
        max_bytes: 64 << 20,
        ..MediaLimits::default()
    };
    let p = wani_media::process(&bytes, &limits, &ThumbOptions::default()).unwrap();
    assert_eq!((p.width, p.height), (4000, 3000));
    assert_eq!((p.thumb_width, p.thumb_height), (500, 375));
    let thumb = image::load_from_memory(&p.thumb).unwrap().into_rgb8();
    let left = thumb.get_pixel(100, 187).0;
    let right = thumb.get_pixel(400, 187).0;
    assert!(left[0] > 180 && left[2] < 60, "left {left:?}");
    assert!(right[2] > 180 && right[0] < 60, "right {right:?}");
}

#[test]
fn alpha_thumbnails_keep_transparency_when_configured() {
    let img = RgbaImage::from_fn(800, 400, |x, _| {
        Rgba([10, 200, 10, if x < 400 { 0 } else { 255 }])
    });
    let mut png = Cursor::new(Vec::new());
    DynamicImage::ImageRgba8(img)
        .write_to(&mut png, ImageFormat::Png)
        .unwrap();
    let png = png.into_inner();
    for (alpha, mimetype) in [
        (AlphaThumb::Png, "image/png"),
        (AlphaThumb::WebP, "image/webp"),
        (AlphaThumb::Jpeg, "image/jpeg"),
    ] {
        let options = ThumbOptions {
            alpha,
            ..ThumbOptions::default()
        };
        let p = wani_media::process(&png, &MediaLimits::default(), &options).unwrap();
        assert_eq!(p.thumb_mimetype, mimetype);
        assert_eq!(
            wani_media::sniff(&p.thumb).map(|s| s.mimetype),
            Some(mimetype)
        );
        let thumb = image::load_from_memory(&p.thumb).unwrap().into_rgba8();
        assert_eq!(thumb.dimensions(), (500, 250));
        let clear = thumb.get_pixel(50, 125).0[3];
        if alpha == AlphaThumb::Jpeg {
            assert_eq!(clear, 255);
        } else {
            assert_eq!(clear, 0, "{mimetype} lost its transparency");
        }
    }
    // Opaque images are JPEG whatever the setting.
    let options = ThumbOptions {
        alpha: AlphaThumb::WebP,
        ..ThumbOptions::default()
    };
    let p = wani_media::process(&jpeg(64, 64), &MediaLimits::default(), &options).unwrap();
    assert_eq!(p.thumb_mimetype, "image/jpeg");
}

// ---------------------------------------------------------------------------
// Video.

async fn tools() -> Option<VideoTools> {
    let t = VideoTools::detect(Duration::from_secs(60), 2048 << 20).await;
    if t.is_none() {
        println!("video tests skipped: install ffmpeg");
    }
    t
}

/// Runs ffmpeg to make a test file; `args` go between the inputs and the output.
fn ffmpeg(args: &[&str], ext: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("out.{ext}"));
    let status = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y"])
        .args(args)
        .arg(&path)
        .status()
        .expect("run ffmpeg");
    assert!(status.success(), "ffmpeg {args:?}");
    std::fs::read(path).unwrap()
}

/// 0.1 s of black, then 3.9 s of red, 160×120.
fn black_then_red(codec: &[&str], ext: &str) -> Vec<u8> {
    let mut args = vec![
        "-f",
        "lavfi",
        "-i",
        "color=c=black:s=160x120:d=0.1:r=25",
        "-f",
        "lavfi",
        "-i",
        "color=c=red:s=160x120:d=3.9:r=25",
        "-filter_complex",
        "[0][1]concat=n=2:v=1:a=0",
    ];
    args.extend_from_slice(codec);
    ffmpeg(&args, ext)
}

async fn process_video(
    tools: &VideoTools,
    bytes: &[u8],
    limits: &MediaLimits,
) -> Result<wani_media::Processed, MediaError> {
    let limits = MediaLimits {
        accepted: vec!["video/webm".into(), "video/mp4".into()],
        ..limits.clone()
    };
    let sniffed = wani_media::precheck(bytes, &limits)?;
    match tools
        .process(bytes, sniffed, &limits, &ThumbOptions::default())
        .await
    {
        Ok(p) => Ok(p),
        Err(VideoError::Media(e)) => Err(e),
        Err(VideoError::Unavailable(e)) => panic!("could not run ffmpeg: {e}"),
    }
}

#[tokio::test]
async fn videos_are_probed_and_thumbnailed_past_the_black_start() {
    let Some(tools) = tools().await else { return };
    let webm = black_then_red(&["-c:v", "libvpx", "-b:v", "200k"], "webm");
    let mp4 = black_then_red(&["-c:v", "libx264", "-pix_fmt", "yuv420p"], "mp4");
    for (bytes, mimetype) in [(webm, "video/webm"), (mp4, "video/mp4")] {
        let p = process_video(&tools, &bytes, &MediaLimits::default())
            .await
            .unwrap();
        assert_eq!(p.mimetype, mimetype);
        assert_eq!((p.width, p.height), (160, 120));
        assert!((3900..=4100).contains(&p.duration_ms), "{}", p.duration_ms);
        assert_eq!((p.thumb_width, p.thumb_height), (160, 120));
        let thumb = image::load_from_memory(&p.thumb).unwrap().into_rgb8();
        let px = thumb.get_pixel(80, 60).0;
        assert!(
            px[0] > 150 && px[1] < 80,
            "{mimetype}: the thumbnail is {px:?}, not red"
        );
    }
}

#[tokio::test]
async fn bad_videos_are_refused_with_a_reason() {
    let Some(tools) = tools().await else { return };
    let audio = ffmpeg(
        &["-f", "lavfi", "-i", "sine=d=1", "-c:a", "libvorbis"],
        "webm",
    );
    let e = process_video(&tools, &audio, &MediaLimits::default())
        .await
        .unwrap_err();
    assert_eq!(e, MediaError::NoVideoStream);
    assert_eq!(e.status(), 422);

    let long = black_then_red(&["-c:v", "libvpx", "-b:v", "100k"], "webm");
    let limits = MediaLimits {
        max_duration_ms: 2_000,
        ..MediaLimits::default()
    };
    let e = process_video(&tools, &long, &limits).await.unwrap_err();
    assert!(matches!(e, MediaError::TooLong { .. }), "{e:?}");
    assert_eq!(e.status(), 413);
    assert!(e.to_string().contains("at most 2 s"), "{e}");

    // A WebM header on garbage: sniffed as WebM, unreadable to ffprobe.
    let mut junk = long[..40].to_vec();
    junk.extend(std::iter::repeat_n(0x55u8, 4000));
    let e = process_video(&tools, &junk, &MediaLimits::default())
        .await
        .unwrap_err();
    assert!(matches!(e, MediaError::VideoUnreadable(_)), "{e:?}");
    assert_eq!(e.status(), 422);
}

/// Mean of all channels of a thumbnail, 0 (black) to 255.
fn mean_brightness(thumb: &[u8]) -> f64 {
    let rgb = image::load_from_memory(thumb).unwrap().into_rgb8();
    let sum: u64 = rgb.as_raw().iter().map(|&c| u64::from(c)).sum();
    sum as f64 / rgb.as_raw().len() as f64
}

#[tokio::test]
async fn a_video_that_opens_on_a_black_second_is_thumbnailed_from_what_follows() {
    let Some(tools) = tools().await else { return };
    // 4 s: one second of black, then three of the bright test pattern; the
    // frame 5% in (0.2 s) is black.
    let webm = ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "color=c=black:s=320x240:d=1:r=25",
            "-f",
            "lavfi",
            "-i",
            "testsrc=s=320x240:d=3:r=25",
            "-filter_complex",
            "[0][1]concat=n=2:v=1:a=0",
            "-c:v",
            "libvpx",
            "-b:v",
            "500k",
        ],
        "webm",
    );
    let p = process_video(&tools, &webm, &MediaLimits::default())
        .await
        .unwrap();
    assert!((3900..=4100).contains(&p.duration_ms), "{}", p.duration_ms);
    assert_eq!((p.thumb_width, p.thumb_height), (320, 240));
    let brightness = mean_brightness(&p.thumb);
    assert!(
        brightness > 40.0,
        "the thumbnail is black (mean brightness {brightness:.1} of 255)"
    );
}

#[tokio::test]
async fn an_all_black_video_still_gets_a_thumbnail() {
    let Some(tools) = tools().await else { return };
    let webm = ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "color=c=black:s=160x120:d=4:r=25",
            "-c:v",
            "libvpx",
            "-b:v",
            "100k",
        ],
        "webm",
    );
    let p = process_video(&tools, &webm, &MediaLimits::default())
        .await
        .unwrap();
    assert_eq!((p.thumb_width, p.thumb_height), (160, 120));
    assert!(mean_brightness(&p.thumb) < 20.0, "black is what it shows");
}
