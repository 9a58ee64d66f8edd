//! Images through the whole media pipeline (`wani_media::process`): sniff,
//! header dimensions against the pixel limit, the container walk
//! (truncation, frame count), decoding (the `image` codecs, and wani's own
//! DC-only JPEG decoder for big JPEGs), EXIF orientation, flattening,
//! resizing and encoding the thumbnail.
//!
//! Limits as a board sets them, with a pixel limit of 4 megapixels so one
//! execution stays fast, and 32 px thumbnails so that small seeds take the
//! reduced-scale JPEG paths (1/8: wani's DC-only decoder; 1/2–1/4); at "about 8 bytes a pixel at worst" (options.rs)
//! a decode stays under 32 MiB, so the allocation limit is 96 MiB.
//! A panic anywhere is a crash here, even inside the codecs where
//! `process` would catch it and refuse the file.

use wani_media::{process, AlphaThumb, MediaLimits, ThumbOptions};

#[global_allocator]
static ALLOC: wani_fuzz::Limited = wani_fuzz::Limited::mib(96);

fn main() {
    let limits = MediaLimits {
        max_pixels: 4_000_000,
        max_frames: 100,
        ..MediaLimits::default()
    };
    let options = ThumbOptions {
        max_side: 32,
        background: [0xee, 0xf2, 0xff],
        jpeg_quality: 85,
        alpha: AlphaThumb::default(),
    };
    afl::fuzz!(|data: &[u8]| {
        let Ok(p) = process(data, &limits, &options) else {
            return;
        };
        assert!(
            u64::from(p.width) * u64::from(p.height) <= limits.max_pixels,
            "{p:?} is over the pixel limit"
        );
        assert!(p.thumb_width.max(p.thumb_height) <= options.max_side, "{p:?}");
        assert!(!p.thumb.is_empty(), "{p:?} has an empty thumbnail");
    });
}
