//! Upload inspection and thumbnails, end to end through `wani_media::process`.
//!
//! Every image is generated here with the `image` crate (or written byte by
//! byte, for the hostile ones): no binary fixtures. A counting allocator
//! proves that decompression bombs are refused before any allocation in
//! proportion to their claimed size.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Cursor;
use std::time::{Duration, Instant};

use image::codecs::gif::GifEncoder;
use image::codecs::jpeg::JpegEncoder;
use image::{Delay, DynamicImage, Frame, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};
use wani_media::{MediaError, MediaLimits, Processed, ThumbOptions};

// ---------------------------------------------------------------------------
// A global allocator that remembers, per thread, the largest single request.

struct Counting;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    // try_with: the allocator also runs while thread-locals are torn down.
    let _ = LARGEST.try_with(|largest| largest.set(largest.get().max(size)));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and returns its result with the largest allocation it made on
/// this thread.
fn largest_allocation<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LARGEST.with(|l| l.set(0));
    let out = f();
    (out, LARGEST.with(Cell::get))
}

// ---------------------------------------------------------------------------
// Generated images.

/// A smooth colour ramp with a little texture, so JPEG has real work to do.
fn photo(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        let t = (x.wrapping_mul(31) ^ y.wrapping_mul(17)) % 23;
        Rgb([
            (x * 255 / width.max(1)) as u8,
            (y * 255 / height.max(1)) as u8,
            (128 + t * 4) as u8,
        ])
    })
}

fn encode(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, format).expect("encode test image");
    out.into_inner()
}

fn jpeg(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, 90)
        .encode_image(&photo(width, height))
        .expect("encode JPEG");
    out
}

fn png(width: u32, height: u32) -> Vec<u8> {
    encode(
        &DynamicImage::ImageRgb8(photo(width, height)),
        ImageFormat::Png,
    )
}

fn gif_frames(width: u32, height: u32, frames: usize) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = GifEncoder::new(&mut out);
        for i in 0..frames {
            let shade = (i * 80) as u8;
            let buffer = RgbaImage::from_fn(width, height, |x, _| {
                Rgba([shade, (x % 256) as u8, 255 - shade, 255])
            });
            let frame = Frame::from_parts(buffer, 0, 0, Delay::from_numer_denom_ms(100, 1));
            encoder.encode_frame(frame).expect("encode GIF frame");
        }
    }
    out
}

fn webp(width: u32, height: u32) -> Vec<u8> {
    encode(
        &DynamicImage::ImageRgb8(photo(width, height)),
        ImageFormat::WebP,
    )
}

/// An animated WebP, assembled by hand (the `image` crate only encodes still
/// lossless WebP): VP8X with the animation flag, ANIM, and one ANMF chunk
/// per frame around a lossless still's VP8L chunk.
fn animated_webp(width: u32, height: u32, frames: usize) -> Vec<u8> {
    fn u24(v: u32) -> [u8; 3] {
        let b = v.to_le_bytes();
        [b[0], b[1], b[2]]
    }
    fn chunk(out: &mut Vec<u8>, fourcc: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(fourcc);
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(data);
        if data.len() % 2 == 1 {
            out.push(0);
        }
    }
    let still = webp(width, height);
    let vp8l = &still[12..]; // the still's only chunk, header included

    let mut body = b"WEBP".to_vec();
    let mut vp8x = vec![0x02, 0, 0, 0]; // animation flag
    vp8x.extend_from_slice(&u24(width - 1));
    vp8x.extend_from_slice(&u24(height - 1));
    chunk(&mut body, b"VP8X", &vp8x);
    chunk(&mut body, b"ANIM", &[0, 0, 0, 0, 0, 0]);
    for _ in 0..frames {
        let mut anmf = Vec::new();
        anmf.extend_from_slice(&u24(0)); // x / 2
        anmf.extend_from_slice(&u24(0)); // y / 2
        anmf.extend_from_slice(&u24(width - 1));
        anmf.extend_from_slice(&u24(height - 1));
        anmf.extend_from_slice(&u24(100)); // duration, ms
        anmf.push(0); // blend and dispose flags
        anmf.extend_from_slice(vp8l);
        chunk(&mut body, b"ANMF", &anmf);
    }
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

/// A valid 1×1 PNG whose IHDR is rewritten to claim `width`×`height`, CRC
/// fixed: a few dozen bytes that would decode to gigabytes.
fn png_bomb(width: u32, height: u32) -> Vec<u8> {
    let mut bytes = png(1, 1);
    assert_eq!(&bytes[12..16], b"IHDR");
    bytes[16..20].copy_from_slice(&width.to_be_bytes());
    bytes[20..24].copy_from_slice(&height.to_be_bytes());
    let crc = wani_media::crc32(&bytes[12..29]);
    bytes[29..33].copy_from_slice(&crc.to_be_bytes());
    bytes
}

/// A hand-written GIF claiming 65535×65535 with a one-pixel image in it.
fn gif_bomb() -> Vec<u8> {
    let mut b = b"GIF89a".to_vec();
    b.extend_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF, 0x80, 0, 0]); // screen, 2-colour table
    b.extend_from_slice(&[0, 0, 0, 255, 255, 255]);
    b.extend_from_slice(&[0x2C, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0]);
    b.extend_from_slice(&[2, 2, 0x4C, 0x01, 0, 0x3B]);
    b
}

/// A small JPEG whose frame header is rewritten to claim 65535×65535.
fn jpeg_bomb() -> Vec<u8> {
    let mut bytes = jpeg(16, 16);
    let sof = bytes
        .windows(2)
        .position(|w| w == [0xFF, 0xC0])
        .expect("baseline JPEG has SOF0");
    // FF C0, length (2), precision (1), height (2), width (2).
    bytes[sof + 5..sof + 9].copy_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF]);
    bytes
}

/// Inserts an EXIF APP1 segment with the given orientation after SOI.
fn with_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    let mut tiff = b"MM\0\x2A\0\0\0\x08".to_vec();
    tiff.extend_from_slice(&1u16.to_be_bytes()); // one IFD entry
    tiff.extend_from_slice(&0x0112u16.to_be_bytes()); // Orientation
    tiff.extend_from_slice(&3u16.to_be_bytes()); // SHORT
    tiff.extend_from_slice(&1u32.to_be_bytes()); // count
    tiff.extend_from_slice(&orientation.to_be_bytes());
    tiff.extend_from_slice(&[0, 0]);
    tiff.extend_from_slice(&0u32.to_be_bytes()); // no next IFD
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);

    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2..]);
    out
}

// ---------------------------------------------------------------------------
// Helpers for assertions.

fn ok(bytes: &[u8]) -> Processed {
    wani_media::process(bytes, &MediaLimits::default(), &ThumbOptions::default())
        .unwrap_or_else(|e| panic!("expected the upload to be accepted, got: {e}"))
}

fn refused(bytes: &[u8], limits: &MediaLimits) -> MediaError {
    match wani_media::process(bytes, limits, &ThumbOptions::default()) {
        Ok(p) => panic!("expected a refusal, got {p:?}"),
        Err(e) => e,
    }
}

/// Decodes a thumbnail, checking it really is a JPEG of the announced size.
fn thumb_of(p: &Processed) -> RgbImage {
    assert_eq!(p.thumb_mimetype, "image/jpeg");
    assert_eq!(
        wani_media::sniff(&p.thumb).map(|s| s.mimetype),
        Some("image/jpeg")
    );
    let img = image::load_from_memory_with_format(&p.thumb, ImageFormat::Jpeg)
        .expect("the thumbnail decodes as JPEG")
        .into_rgb8();
    assert_eq!(img.dimensions(), (p.thumb_width, p.thumb_height));
    img
}

// ---------------------------------------------------------------------------
// Accepted uploads.

#[test]
fn each_accepted_type_round_trips() {
    let cases: [(&str, &str, Vec<u8>); 4] = [
        ("image/jpeg", "jpg", jpeg(800, 600)),
        ("image/png", "png", png(800, 600)),
        ("image/gif", "gif", gif_frames(800, 600, 1)),
        ("image/webp", "webp", webp(800, 600)),
    ];
    for (mimetype, ext, bytes) in cases {
        let p = ok(&bytes);
        assert_eq!((p.mimetype.as_str(), p.ext.as_str()), (mimetype, ext));
        assert_eq!((p.width, p.height), (800, 600), "{mimetype}");
        assert!(!p.is_animated, "{mimetype}");
        assert_eq!((p.thumb_width, p.thumb_height), (500, 375), "{mimetype}");
        thumb_of(&p);
    }
}

#[test]
fn portrait_thumbnail_keeps_its_aspect() {
    let p = ok(&png(300, 1200));
    assert_eq!((p.thumb_width, p.thumb_height), (125, 500));
    thumb_of(&p);
}

#[test]
fn small_images_are_not_upscaled() {
    for bytes in [
        jpeg(100, 50),
        png(100, 50),
        gif_frames(100, 50, 1),
        webp(100, 50),
    ] {
        let p = ok(&bytes);
        assert_eq!((p.thumb_width, p.thumb_height), (100, 50), "{}", p.mimetype);
        thumb_of(&p);
    }
}

#[test]
fn thumbnail_size_follows_options() {
    let options = ThumbOptions {
        max_side: 64,
        ..ThumbOptions::default()
    };
    let p =
        wani_media::process(&jpeg(640, 480), &MediaLimits::default(), &options).expect("accepted");
    assert_eq!((p.thumb_width, p.thumb_height), (64, 48));
    thumb_of(&p);
}

#[test]
fn transparency_is_flattened_onto_the_background() {
    // Left half fully transparent (with red hidden under it), right half opaque black.
    let img = RgbaImage::from_fn(200, 100, |x, _| {
        if x < 100 {
            Rgba([255, 0, 0, 0])
        } else {
            Rgba([0, 0, 0, 255])
        }
    });
    let bytes = encode(&DynamicImage::ImageRgba8(img), ImageFormat::Png);
    for background in [[255, 255, 255], [20, 160, 240]] {
        let options = ThumbOptions {
            background,
            ..ThumbOptions::default()
        };
        let p = wani_media::process(&bytes, &MediaLimits::default(), &options).expect("accepted");
        let thumb = thumb_of(&p);
        let near = |a: [u8; 3], b: [u8; 3]| a.iter().zip(b).all(|(&x, y)| x.abs_diff(y) <= 6);
        let transparent = thumb.get_pixel(20, 50).0;
        assert!(
            near(transparent, background),
            "transparent pixel became {transparent:?}, not {background:?}"
        );
        let opaque = thumb.get_pixel(180, 50).0;
        assert!(near(opaque, [0, 0, 0]), "opaque pixel became {opaque:?}");
    }
}

#[test]
fn exif_rotation_is_applied_to_size_and_thumbnail() {
    // Stored 400×200, shown rotated a quarter turn (orientation 6): 200×400.
    let p = ok(&with_orientation(&jpeg(400, 200), 6));
    assert_eq!((p.width, p.height), (200, 400));
    assert_eq!((p.thumb_width, p.thumb_height), (200, 400));
    thumb_of(&p);
}

/// Options under which a JPEG of `width` px takes the DC-only path (1/8
/// scale keeps the thumbnail's size) without test images of 12 MP.
fn reduced(max_side: u32) -> ThumbOptions {
    ThumbOptions {
        max_side,
        ..ThumbOptions::default()
    }
}

/// Mean absolute difference per channel between two images of one size.
fn mean_difference(a: &RgbImage, b: &RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let total: u64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(&x, &y)| u64::from(x.abs_diff(y)))
        .sum();
    total as f64 / a.as_raw().len() as f64
}

/// The thumbnail a full decode and a plain resize would give.
fn reference_thumb(bytes: &[u8], width: u32, height: u32) -> RgbImage {
    let full = image::load_from_memory_with_format(bytes, ImageFormat::Jpeg)
        .expect("reference decode")
        .into_rgb8();
    image::imageops::resize(&full, width, height, image::imageops::FilterType::Triangle)
}

/// A progressive 4:2:0 JPEG with restart markers, as cameras and web
/// tools write them (the `image` encoder writes baseline 4:4:4 only).
fn progressive_jpeg(width: u16, height: u16) -> Vec<u8> {
    let rgb = photo(u32::from(width), u32::from(height));
    let mut out = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut out, 90);
    encoder.set_progressive(true);
    encoder.set_sampling_factor(jpeg_encoder::SamplingFactor::F_2_2);
    encoder.set_restart_interval(4);
    encoder
        .encode(rgb.as_raw(), width, height, jpeg_encoder::ColorType::Rgb)
        .expect("encode progressive JPEG");
    out
}

#[test]
fn large_jpegs_reduced_to_dc_terms_look_like_a_full_decode() {
    // 800×400 for a 100 px thumbnail: 1/8 scale is exactly the thumbnail,
    // the path a 4000×3000 photo takes for 500 px.
    for (label, bytes) in [
        ("baseline", jpeg(800, 400)),
        ("progressive", progressive_jpeg(800, 400)),
    ] {
        let p =
            wani_media::process(&bytes, &MediaLimits::default(), &reduced(100)).expect("accepted");
        assert_eq!((p.width, p.height), (800, 400), "{label}");
        assert_eq!((p.thumb_width, p.thumb_height), (100, 50), "{label}");
        let diff = mean_difference(&thumb_of(&p), &reference_thumb(&bytes, 100, 50));
        assert!(
            diff < 3.0,
            "{label}: mean difference {diff:.2} from a full decode"
        );
    }
}

#[test]
fn exif_rotation_is_applied_on_the_reduced_path() {
    let stored = jpeg(800, 400);
    let p = wani_media::process(
        &with_orientation(&stored, 6),
        &MediaLimits::default(),
        &reduced(100),
    )
    .expect("accepted");
    assert_eq!((p.width, p.height), (400, 800));
    assert_eq!((p.thumb_width, p.thumb_height), (50, 100));
    let want = image::imageops::rotate90(&reference_thumb(&stored, 100, 50));
    let diff = mean_difference(&thumb_of(&p), &want);
    assert!(
        diff < 3.0,
        "mean difference {diff:.2} from the rotated reference"
    );
}

#[test]
fn animation_is_flagged_from_the_second_frame() {
    assert!(ok(&gif_frames(64, 48, 3)).is_animated, "3-frame GIF");
    assert!(ok(&gif_frames(64, 48, 2)).is_animated, "2-frame GIF");
    assert!(!ok(&gif_frames(64, 48, 1)).is_animated, "still GIF");

    let p = ok(&animated_webp(64, 48, 2));
    assert_eq!(p.mimetype, "image/webp");
    assert!(p.is_animated, "2-frame WebP");
    assert_eq!((p.width, p.height), (64, 48));
    thumb_of(&p);
    // An animation of one frame is still a still.
    assert!(!ok(&animated_webp(64, 48, 1)).is_animated, "1-frame WebP");
    assert!(!ok(&webp(64, 48)).is_animated, "still WebP");
}

#[test]
fn the_type_comes_from_the_bytes_not_the_name() {
    // `process` is never told the name or the client's Content-Type: a PNG
    // uploaded as "cat.jpg" with `Content-Type: image/jpeg` is these bytes.
    let renamed_png = png(32, 32);
    let sniffed = wani_media::sniff(&renamed_png).expect("sniffed");
    assert_eq!((sniffed.mimetype, sniffed.ext), ("image/png", "png"));
    let p = ok(&renamed_png);
    assert_eq!((p.mimetype.as_str(), p.ext.as_str()), ("image/png", "png"));
}

// ---------------------------------------------------------------------------
// Refusals.

#[test]
fn non_images_are_refused_as_unknown_type() {
    let limits = MediaLimits::default();
    let cases: [&[u8]; 5] = [
        b"just some text\n",
        b"<!DOCTYPE html><html><script>alert(1)</script></html>",
        b"PK\x03\x04\x14\x00\x00\x00\x08\x00zip archive follows",
        b"BM\x3A\x00\x00\x00\x00\x00\x00\x00\x36\x00\x00\x00", // BMP
        b"RIFF\x24\x00\x00\x00WAVEfmt ",
    ];
    for bytes in cases {
        let e = refused(bytes, &limits);
        assert_eq!(e, MediaError::UnknownType, "{bytes:?}");
        assert_eq!(e.status(), 415);
        assert!(
            e.to_string().contains("JPEG, PNG, GIF, WebP, WebM or MP4"),
            "{e}"
        );
    }
}

#[test]
fn empty_upload_is_refused() {
    let e = refused(b"", &MediaLimits::default());
    assert_eq!(e, MediaError::Empty);
    assert_eq!(e.status(), 422);
    assert_eq!(e.to_string(), "the file is empty");
}

#[test]
fn an_image_header_on_other_data_is_corrupt() {
    // Sniffed as JPEG from its first bytes; the rest gives it away.
    let e = refused(
        b"\xFF\xD8\xFF\xE0<html>not really</html>",
        &MediaLimits::default(),
    );
    assert!(matches!(e, MediaError::Corrupt(_)), "{e:?}");
    assert_eq!(e.status(), 422);
}

#[test]
fn truncated_files_are_refused_as_corrupt() {
    let limits = MediaLimits::default();
    let files = [
        ("JPEG", jpeg(256, 256)),
        ("PNG", png(256, 256)),
        ("GIF", gif_frames(256, 256, 2)),
        ("WebP", webp(256, 256)),
    ];
    for (name, full) in files {
        // Half the file, and the file without its last few bytes (the JPEG
        // EOI marker, the PNG IEND chunk, the GIF trailer and frame end):
        // the decoders would happily return partial pixels for some of these.
        for cut in [full.len() / 2, full.len() - 3] {
            let e = refused(&full[..cut], &limits);
            assert!(
                matches!(e, MediaError::Corrupt(_)),
                "{name} cut to {cut} of {}: {e:?}",
                full.len()
            );
            assert_eq!(e.status(), 422);
            assert!(
                e.to_string()
                    .starts_with("the image is truncated or corrupt"),
                "{e}"
            );
        }
    }
}

#[test]
fn oversize_upload_is_refused_before_anything_else() {
    let limits = MediaLimits {
        max_bytes: 1000,
        ..MediaLimits::default()
    };
    let bytes = jpeg(256, 256);
    assert!(bytes.len() > 1000);
    let e = refused(&bytes, &limits);
    assert_eq!(
        e,
        MediaError::TooLarge {
            size: bytes.len() as u64,
            limit: 1000
        }
    );
    assert_eq!(e.status(), 413);
    // Checked before the type: an oversize non-image is still "too large".
    let e = refused(&vec![b'x'; 2000], &limits);
    assert!(matches!(e, MediaError::TooLarge { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "the file is 2 KB; this board accepts at most 1000 bytes"
    );
}

#[test]
fn types_the_board_does_not_take_are_refused() {
    let limits = MediaLimits {
        accepted: vec!["image/jpeg".into(), "IMAGE/PNG".into()],
        ..MediaLimits::default()
    };
    let e = refused(&gif_frames(16, 16, 1), &limits);
    assert!(
        matches!(&e, MediaError::NotAccepted { mimetype, .. } if mimetype == "image/gif"),
        "{e:?}"
    );
    assert_eq!(e.status(), 415);
    assert_eq!(
        e.to_string(),
        "image/gif is not accepted on this board (accepted: JPEG, PNG)"
    );
    // Case-insensitive match: the PNG is fine.
    assert!(wani_media::process(&png(16, 16), &limits, &ThumbOptions::default()).is_ok());
}

#[test]
fn too_many_pixels_are_refused() {
    let limits = MediaLimits {
        max_pixels: 1_000_000,
        ..MediaLimits::default()
    };
    let e = refused(&png(2000, 1000), &limits);
    assert_eq!(
        e,
        MediaError::TooManyPixels {
            width: 2000,
            height: 1000,
            limit: 1_000_000
        }
    );
    assert_eq!(e.status(), 413);
    assert_eq!(
        e.to_string(),
        "the image is 2000×1000 pixels; at most 1 megapixels are accepted"
    );
    // Exactly at the limit is fine.
    assert!(wani_media::process(&png(1000, 1000), &limits, &ThumbOptions::default()).is_ok());
}

#[test]
fn decompression_bombs_are_refused_without_allocating() {
    let limits = MediaLimits::default();
    let bombs = [
        ("PNG", png_bomb(60_000, 60_000), (60_000, 60_000)),
        ("GIF", gif_bomb(), (65_535, 65_535)),
        ("JPEG", jpeg_bomb(), (65_535, 65_535)),
    ];
    for (name, bytes, (width, height)) in bombs {
        assert!(bytes.len() < 2048, "{name} bomb is {} bytes", bytes.len());
        let (result, largest) =
            largest_allocation(|| wani_media::process(&bytes, &limits, &ThumbOptions::default()));
        match result {
            Err(MediaError::TooManyPixels {
                width: w,
                height: h,
                ..
            }) => assert_eq!((w, h), (width, height), "{name}"),
            other => panic!("{name} bomb: expected TooManyPixels, got {other:?}"),
        }
        // A decode would need gigabytes; the refusal needs next to nothing.
        assert!(
            largest < 1 << 20,
            "{name} bomb: an allocation of {largest} bytes was made"
        );
    }
}

#[test]
fn hostile_bytes_never_panic() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    // `process` catches codec panics and reports them as Corrupt; this
    // counts them anyway (a caught panic is still a bug to know about).
    let panics = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&panics);
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        counter.fetch_add(1, Ordering::SeqCst);
        eprintln!("panic: {info}");
    }));

    let limits = MediaLimits::default();
    // JPEGs twice: at the default size (the general decoder) and for a
    // 16 px thumbnail (1/8 scale, the DC-only decoder).
    let files = [
        (jpeg(40, 30), ThumbOptions::default()),
        (png(40, 30), ThumbOptions::default()),
        (gif_frames(40, 30, 2), ThumbOptions::default()),
        (webp(40, 30), ThumbOptions::default()),
        (animated_webp(40, 30, 2), ThumbOptions::default()),
        (jpeg(160, 96), reduced(16)),
        (progressive_jpeg(160, 96), reduced(16)),
    ];
    let mut outcomes = 0;
    for (full, options) in &files {
        let options = options.clone();
        // Every prefix.
        for cut in 0..full.len() {
            let _ = wani_media::process(&full[..cut], &limits, &options);
            outcomes += 1;
        }
        // Every byte flipped, one at a time, in the first 512 bytes
        // (headers, tables, chunk lengths) and a spread after that.
        let positions = (0..full.len().min(512)).chain((512..full.len()).step_by(37));
        for pos in positions {
            for flip in [0xFF, 0x80, 0x01] {
                let mut bytes = full.clone();
                bytes[pos] ^= flip;
                let _ = wani_media::process(&bytes, &limits, &options);
                outcomes += 1;
            }
        }
    }

    std::panic::set_hook(previous);
    assert!(outcomes > 1000);
    assert_eq!(
        panics.load(Ordering::SeqCst),
        0,
        "panics while processing hostile bytes"
    );
}

// ---------------------------------------------------------------------------
// Timing: `cargo test --release -p wani-media --test media timing -- --ignored
// --nocapture --test-threads=1` (alone: two timings at once share two cores).

fn fastest(mut f: impl FnMut()) -> Duration {
    (0..5)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .min()
        .unwrap_or_default()
}

/// Prints how long `process` takes on `bytes`, and how much of that is the
/// bare decode (what a reduced-scale decode could cut).
fn time(label: &str, bytes: &[u8], format: ImageFormat, limits: &MediaLimits) {
    let options = ThumbOptions::default();
    let process = fastest(|| {
        let p = wani_media::process(bytes, limits, &options).expect("accepted");
        assert!(p.thumb_width <= 500 && p.thumb_height <= 500);
    });
    let decode = fastest(|| {
        image::load_from_memory_with_format(bytes, format).expect("decodes");
    });
    println!(
        "{label}, {} bytes: process {process:.1?} (fastest of 5), of which decoding {decode:.1?}",
        bytes.len()
    );
}

#[test]
#[ignore = "timing, not a check; run with --release --ignored --nocapture --test-threads=1"]
fn timing() {
    let limits = MediaLimits {
        max_bytes: 64 << 20,
        ..MediaLimits::default()
    };
    time(
        "12 MP JPEG (4000×3000, q90)",
        &jpeg(4000, 3000),
        ImageFormat::Jpeg,
        &limits,
    );

    let alpha = RgbaImage::from_fn(1600, 1250, |x, y| {
        Rgba([
            (x % 256) as u8,
            (y % 256) as u8,
            ((x + y) % 256) as u8,
            ((x ^ y) % 256) as u8,
        ])
    });
    let alpha_png = encode(&DynamicImage::ImageRgba8(alpha), ImageFormat::Png);
    time(
        "2 MP RGBA PNG (1600×1250)",
        &alpha_png,
        ImageFormat::Png,
        &limits,
    );
}
