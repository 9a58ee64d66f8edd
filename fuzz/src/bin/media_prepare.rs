//! Uploads through the request-path half of the media pipeline
//! (`wani_media::prepare`): type sniffing from magic bytes (JPEG, PNG, GIF,
//! WebP, WebM, MP4), metadata stripping (walks the JPEG segments, PNG
//! chunks and WebP RIFF chunks and rewrites them) and the polyglot scan.
//!
//! Besides panics and hangs: allocations over 64 MiB (stripping copies
//! the file once; inputs here are small), and the stripped output must
//! sniff as the same type and strip again to itself.

use wani_media::{prepare, sniff, strip, MediaLimits};

#[global_allocator]
static ALLOC: wani_fuzz::Limited = wani_fuzz::Limited::mib(64);

fn main() {
    let mut limits = MediaLimits::default();
    limits.accepted.extend(["video/webm", "video/mp4"].map(String::from));
    afl::fuzz!(|data: &[u8]| {
        let Ok(prepared) = prepare(data, &limits) else {
            return;
        };
        let again = sniff(&prepared.bytes).map(|s| s.format);
        assert_eq!(again, Some(prepared.sniffed.format), "stripping changed the type");
        if let Some(format) = prepared.sniffed.format.image() {
            let twice = strip(&prepared.bytes, format).expect("a stripped file strips again");
            assert!(twice == prepared.bytes, "stripping is not idempotent");
        }
    });
}
