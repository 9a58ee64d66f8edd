//! The Rust side of video probing (`wani_media::video`): ffprobe's JSON
//! answer (whose tags and side data come from the uploaded file) read into
//! dimensions and duration, and ffmpeg's complaint cut to the line a user
//! sees; plus the video sniffing of the upload's first bytes.
//! Allocation limit 64 MiB.

#[global_allocator]
static ALLOC: wani_fuzz::Limited = wani_fuzz::Limited::mib(64);

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let (probe, line) = wani_media::video::fuzz_probe(data);
        if let Ok((w, h, _)) = probe {
            assert!(w > 0 && h > 0, "a {w}×{h} video was accepted");
        }
        assert!(line.chars().count() <= 200, "an error line of {} chars", line.len());
        let _ = wani_media::sniff(data);
    });
}
