//! Container walks: is the file complete, and is it animated?
//!
//! The decoders are lenient on purpose (zune-jpeg fills a truncated scan
//! with grey and reports success; a PNG cut after its last IDAT decodes
//! fine), so completeness is checked here by walking the format's own
//! framing: JPEG markers up to EOI, PNG chunks up to IEND, GIF blocks up to
//! the trailer, WebP RIFF chunks up to the size the RIFF header declares.
//! The same walk counts frames (GIF image descriptors, WebP `ANMF` chunks,
//! the APNG `acTL` frame count) without decompressing any of them, so a
//! 10 000-frame animation costs a few thousand byte hops, not 10 000 decodes.
//!
//! What this does not do: validate pixel data or checksums (the decoder does
//! that), or judge data after the end marker (cameras and editors append
//! trailers; browsers ignore them, so do we).

use super::sniff::ImageFormat;

/// What a container walk learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    /// Frames: more than one for an animated GIF, WebP or APNG.
    pub frames: u64,
}

impl Layout {
    fn of(frames: u32) -> Layout {
        Layout {
            frames: u64::from(frames.max(1)),
        }
    }
}

/// Walks the container of `bytes`, already sniffed as `format`; the error
/// says, for the user, where the file stops making sense.
pub(crate) fn walk(format: ImageFormat, bytes: &[u8]) -> Result<Layout, String> {
    match format {
        ImageFormat::Jpeg => jpeg(bytes),
        ImageFormat::Png => png(bytes),
        ImageFormat::Gif => gif(bytes),
        ImageFormat::WebP => webp(bytes),
    }
}

fn u16_be(bytes: &[u8], at: usize) -> Option<usize> {
    let b = bytes.get(at..at.checked_add(2)?)?;
    Some(usize::from(u16::from_be_bytes([b[0], b[1]])))
}

fn u32_be(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn u32_le(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

const JPEG_TRUNCATED: &str = "the JPEG data ends before its end-of-image marker";

/// Segment by segment to EOI. Segments carry their length, so an EXIF
/// thumbnail (a whole JPEG with its own EOI inside APP1) is skipped, not
/// mistaken for the end. Entropy-coded data after SOS has no length and is
/// scanned for the next real marker (`FF 00` is a stuffed byte, `FF D0..D7`
/// a restart marker); progressive files repeat SOS, which the loop handles.
fn jpeg(bytes: &[u8]) -> Result<Layout, String> {
    let mut pos = 2; // after SOI
    loop {
        // Lenient like the decoder: junk before a marker is skipped.
        while bytes.get(pos).is_some_and(|&b| b != 0xFF) {
            pos += 1;
        }
        while bytes.get(pos) == Some(&0xFF) {
            pos += 1;
        }
        let Some(&marker) = bytes.get(pos) else {
            return Err(JPEG_TRUNCATED.to_owned());
        };
        pos += 1;
        match marker {
            0xD9 => return Ok(Layout::of(1)),
            // No length: stuffed byte, restart markers, TEM, a stray SOI.
            0x00 | 0x01 | 0xD0..=0xD8 => {}
            _ => {
                let len = u16_be(bytes, pos).ok_or(JPEG_TRUNCATED)?;
                if len < 2 {
                    return Err(format!("a JPEG segment has an invalid length {len}"));
                }
                pos += len;
                if pos > bytes.len() {
                    return Err(JPEG_TRUNCATED.to_owned());
                }
                if marker == 0xDA {
                    pos = skip_entropy_coded(bytes, pos).ok_or(JPEG_TRUNCATED)?;
                }
            }
        }
    }
}

/// From the start of scan data, the offset of the `FF` that begins the next
/// marker that is not part of the scan, or `None` if the data runs out.
fn skip_entropy_coded(bytes: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        let ff = pos + memchr::memchr(0xFF, bytes.get(pos..)?)?;
        let mut next = ff + 1;
        while bytes.get(next) == Some(&0xFF) {
            next += 1;
        }
        match bytes.get(next)? {
            0x00 | 0xD0..=0xD7 => pos = next + 1,
            _ => return Some(ff),
        }
    }
}

const PNG_TRUNCATED: &str = "the PNG data ends before its IEND chunk";

/// Chunk by chunk to IEND. A chunk is length, type, data, CRC; the CRC is
/// the decoder's business.
fn png(bytes: &[u8]) -> Result<Layout, String> {
    let mut pos = 8; // after the signature
    let mut frames = 1;
    loop {
        let len = u32_be(bytes, pos).ok_or(PNG_TRUNCATED)?;
        if len > 0x7FFF_FFFF {
            return Err(format!("a PNG chunk has an invalid length {len}"));
        }
        let kind = bytes.get(pos + 4..pos + 8).ok_or(PNG_TRUNCATED)?;
        let data = pos + 8;
        // Saturating: on a 32-bit target a hostile length must not wrap.
        let end = data.saturating_add(len as usize).saturating_add(4);
        if end > bytes.len() {
            return Err(PNG_TRUNCATED.to_owned());
        }
        match kind {
            b"IEND" => return Ok(Layout::of(frames)),
            // APNG: the frame count is the first field of the animation
            // control chunk; browsers animate it, so it is flagged too.
            b"acTL" => frames = u32_be(bytes, data).unwrap_or(1),
            _ => {}
        }
        pos = end;
    }
}

/// Block by block to the trailer, counting image descriptors.
fn gif(bytes: &[u8]) -> Result<Layout, String> {
    let truncated = |frames: u32| {
        if frames == 0 {
            "the GIF data ends before its first frame is complete".to_owned()
        } else {
            format!(
                "the GIF data ends in the middle of frame {}",
                frames.saturating_add(1)
            )
        }
    };
    // 6-byte signature, 7-byte logical screen descriptor.
    let packed = *bytes.get(10).ok_or_else(|| truncated(0))?;
    let mut pos = 13 + color_table_len(packed);
    let mut frames: u32 = 0;
    loop {
        let Some(&introducer) = bytes.get(pos) else {
            // A missing trailer after complete frames is common enough in
            // the wild (and harmless) that browsers accept it; so do we.
            return if frames > 0 {
                Ok(Layout::of(frames))
            } else {
                Err(truncated(0))
            };
        };
        match introducer {
            0x3B => {
                return if frames > 0 {
                    Ok(Layout::of(frames))
                } else {
                    Err("the GIF contains no image".to_owned())
                };
            }
            0x21 => {
                // Extension: label byte, then data sub-blocks.
                pos = skip_sub_blocks(bytes, pos + 2).ok_or_else(|| truncated(frames))?;
            }
            0x2C => {
                // Image descriptor: 9 bytes after the separator, an optional
                // local colour table, the LZW code size, then sub-blocks.
                let packed = *bytes.get(pos + 9).ok_or_else(|| truncated(frames))?;
                pos = pos + 10 + color_table_len(packed) + 1;
                pos = skip_sub_blocks(bytes, pos).ok_or_else(|| truncated(frames))?;
                frames = frames.saturating_add(1);
            }
            // Junk where a block should start: after a complete frame,
            // browsers stop and show what they have; before one, it is no GIF.
            _ if frames > 0 => return Ok(Layout::of(frames)),
            other => return Err(format!("the GIF has an unknown block type 0x{other:02X}")),
        }
    }
}

/// The size of the colour table a GIF packed-fields byte announces.
fn color_table_len(packed: u8) -> usize {
    if packed & 0x80 != 0 {
        3 << ((packed & 0x07) + 1)
    } else {
        0
    }
}

/// Skips a chain of length-prefixed sub-blocks ending in a zero length;
/// returns the offset after the terminator.
fn skip_sub_blocks(bytes: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        let len = usize::from(*bytes.get(pos)?);
        pos += 1;
        if len == 0 {
            return Some(pos);
        }
        pos += len;
        if pos > bytes.len() {
            return None;
        }
    }
}

/// RIFF chunk by chunk up to the size in the RIFF header, counting `ANMF`
/// (animation frame) chunks.
fn webp(bytes: &[u8]) -> Result<Layout, String> {
    let declared = u32_le(bytes, 4).ok_or("the WebP header is incomplete")?;
    let end = (declared as usize).saturating_add(8);
    if end > bytes.len() {
        return Err(format!(
            "the WebP data is {} bytes long but its header says {}",
            bytes.len(),
            end
        ));
    }
    let mut pos = 12; // after RIFF, size, WEBP
    let mut frames: u32 = 0;
    let mut chunks = 0;
    while pos + 8 <= end {
        let len = u32_le(bytes, pos + 4).ok_or("the WebP header is incomplete")? as usize;
        let data_end = (pos + 8).saturating_add(len);
        if data_end > end {
            return Err("a WebP chunk runs past the end of the file".to_owned());
        }
        if bytes.get(pos..pos + 4) == Some(b"ANMF") {
            frames = frames.saturating_add(1);
        }
        chunks += 1;
        // Chunks are padded to an even length; some encoders omit the pad
        // byte of the last chunk, so the +1 may step past `end`.
        pos = data_end.saturating_add(len & 1);
    }
    if chunks == 0 {
        return Err("the WebP contains no image".to_owned());
    }
    Ok(Layout::of(frames))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jpeg_needs_eoi_but_tolerates_trailers() {
        // SOI, APP0 (len 4), SOS (len 2), scan with a stuffed FF and RST0, EOI.
        let full =
            b"\xFF\xD8\xFF\xE0\x00\x04ab\xFF\xDA\x00\x02\x12\xFF\x00\x34\xFF\xD0\x56\xFF\xD9";
        assert!(jpeg(full).is_ok());
        let mut trailer = full.to_vec();
        trailer.extend_from_slice(b"garbage");
        assert!(jpeg(&trailer).is_ok());
        for cut in 2..full.len() - 1 {
            assert!(jpeg(&full[..cut]).is_err(), "cut at {cut}");
        }
        // Progressive: several scans, each followed by tables, then EOI.
        let progressive = b"\xFF\xD8\xFF\xC2\x00\x03x\xFF\xC4\x00\x03h\xFF\xDA\x00\x02\x01\x02\xFF\xC4\x00\x03h\xFF\xDA\x00\x02\x03\xFF\x00\xFF\xD9";
        assert!(jpeg(progressive).is_ok());
        assert!(jpeg(&progressive[..progressive.len() - 2]).is_err());
        // An EOI hidden inside an APP1 segment (an EXIF thumbnail) is not the end.
        let exif = b"\xFF\xD8\xFF\xE1\x00\x06\xFF\xD8\xFF\xD9\xFF\xDA\x00\x02\x12";
        assert!(jpeg(exif).is_err());
    }

    #[test]
    fn gif_counts_frames_and_needs_whole_frames() {
        let frame = b"\x2C\0\0\0\0\x01\0\x01\0\x00\x02\x02\x4C\x01\x00";
        let mut one = b"GIF89a\x01\0\x01\0\x00\0\0".to_vec();
        one.extend_from_slice(frame);
        let mut two = one.clone();
        two.extend_from_slice(frame);
        one.push(0x3B);
        two.push(0x3B);
        assert_eq!(gif(&one), Ok(Layout::of(1)));
        assert_eq!(gif(&two), Ok(Layout::of(2)));
        assert!(gif(&two[..two.len() - 3]).is_err());
        assert!(
            gif(&one[..one.len() - 1]).is_ok(),
            "a missing trailer is tolerated"
        );
        assert!(gif(b"GIF89a\x01\0\x01\0\x00\0\0\x3B").is_err());
    }

    #[test]
    fn webp_counts_anmf_and_checks_riff_size() {
        let mut webp_bytes = b"RIFF\0\0\0\0WEBP".to_vec();
        for _ in 0..2 {
            webp_bytes.extend_from_slice(b"ANMF\x03\0\0\0abc\0");
        }
        let size = (webp_bytes.len() - 8) as u32;
        webp_bytes[4..8].copy_from_slice(&size.to_le_bytes());
        assert_eq!(webp(&webp_bytes), Ok(Layout::of(2)));
        assert!(webp(&webp_bytes[..webp_bytes.len() - 2]).is_err());
    }

    #[test]
    fn never_panics_on_prefixes_of_junk() {
        let junk: Vec<u8> = (0..600u32).map(|i| (i * 7919 % 251) as u8).collect();
        for format in [
            ImageFormat::Jpeg,
            ImageFormat::Png,
            ImageFormat::Gif,
            ImageFormat::WebP,
        ] {
            for cut in 0..junk.len() {
                let _ = walk(format, &junk[..cut]);
            }
        }
    }
}
