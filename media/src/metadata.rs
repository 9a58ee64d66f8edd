//! Metadata that could cost more memory than the file it came in.
//!
//! A PNG's colour profile (`iCCP`) is zlib-compressed, and zlib reaches
//! about 1000:1 on a run of one byte: a 1 MB chunk can inflate to 1 GB.
//! The png decoder inflates `iCCP` as soon as it reads the header, into
//! one buffer bounded only by the decoder's allocation limit (hundreds of
//! megabytes for a board's pixel limit), so an 8×8 image could cost a
//! thumbnailer as much memory as a 40-megapixel one. Here such chunks are
//! judged before any decoder sees them: inflated through a 32 KiB window
//! into a counter, never into a buffer, and abandoned at the first byte
//! over [`ICC_PROFILE_LIMIT`]; checking the worst of them costs 4 MiB of
//! inflation, not 1 GB.
//!
//! Uncompressed metadata (JPEG APP2/APP1 segments, WebP `ICCP`, `EXIF`,
//! `XMP ` chunks) cannot grow: it costs at most the bytes of the file. A
//! colour profile over the same limit is dropped from those too, so the
//! limit is one rule for every format.
//!
//! Text chunks (`zTXt`, `iTXt`) are never inflated at all: `strip` drops
//! them, and [`png_for_decoding`] hides them and `iCCP` from the decoder,
//! so a PNG handed to `process` without `prepare` is bounded as well.

use std::borrow::Cow;
use std::io::{self, Read};
use std::ops::Range;

use flate2::read::ZlibDecoder;

/// The largest colour profile kept, inflated: 4 MiB. Real RGB and grey
/// profiles are a few hundred bytes to a few hundred kilobytes (the
/// largest, with big lookup tables, about 1 MB); browsers ignore larger
/// ones. A PNG, JPEG or WebP whose profile is larger, or whose `iCCP`
/// does not inflate, loses the profile and keeps its pixels.
pub const ICC_PROFILE_LIMIT: u64 = 4 * 1024 * 1024;

/// Whether the zlib stream `data` inflates, completely, to at most `limit`
/// bytes. Memory: the inflater's window and tables (under 100 KiB), however
/// much the stream claims; time: at most `limit` bytes of inflation.
pub(crate) fn zlib_within(data: &[u8], limit: u64) -> bool {
    let mut inflater = ZlibDecoder::new(data).take(limit.saturating_add(1));
    match io::copy(&mut inflater, &mut io::sink()) {
        // Exactly `limit + 1` bytes means the stream had more to give.
        Ok(n) => n <= limit,
        Err(_) => false,
    }
}

/// Whether the data of a PNG `iCCP` chunk (profile name, NUL, compression
/// method 0, zlib stream) holds a profile we keep: well formed, and at most
/// [`ICC_PROFILE_LIMIT`] bytes once inflated.
pub(crate) fn png_iccp_ok(chunk: &[u8]) -> bool {
    // The name is 1–79 Latin-1 bytes; the NUL ends it.
    let Some(nul) = chunk.iter().take(80).position(|&b| b == 0) else {
        return false;
    };
    if nul == 0 {
        return false;
    }
    match chunk.get(nul + 1..) {
        Some([0, stream @ ..]) => zlib_within(stream, ICC_PROFILE_LIMIT),
        _ => false,
    }
}

/// PNG chunks the decoder would inflate or copy and the thumbnail never
/// uses: the colour profile (thumbnails are not colour-managed) and text.
const PNG_HIDDEN_FROM_DECODER: &[&[u8; 4]] = &[b"iCCP", b"tEXt", b"zTXt", b"iTXt"];

/// `png` as the decoder should see it: without [`PNG_HIDDEN_FROM_DECODER`]
/// chunks, so that it inflates nothing but pixels, whatever `process` was
/// given (the stored, stripped file or an upload as it came). Borrowed when
/// there is nothing to hide; otherwise one copy, at most the file's size.
/// Framing errors are left for the decoder and the container walk: from
/// the first chunk that does not fit, the rest is copied as it is (the
/// decoder never parses a chunk it cannot read whole).
pub(crate) fn png_for_decoding(png: &[u8]) -> Cow<'_, [u8]> {
    let hidden = |kind: &[u8]| PNG_HIDDEN_FROM_DECODER.iter().any(|h| &h[..] == kind);
    let chunks = || png_chunks(png).map_while(Result::ok);
    if !chunks().any(|(kind, _)| hidden(kind)) {
        return Cow::Borrowed(png);
    }
    let mut out = Vec::with_capacity(png.len());
    out.extend_from_slice(&png[..8]);
    let mut pos = 8;
    for chunk in png_chunks(png) {
        match chunk {
            Ok((kind, range)) => {
                if !hidden(kind) {
                    out.extend_from_slice(&png[range.clone()]);
                }
                pos = range.end;
            }
            Err(()) => break,
        }
    }
    out.extend_from_slice(&png[pos..]);
    Cow::Owned(out)
}

/// The chunks of a PNG after its signature: each one's type and byte range
/// (length, type, data, CRC), up to IEND; an `Err` where a chunk does not
/// fit in the file, then nothing.
fn png_chunks(png: &[u8]) -> impl Iterator<Item = Result<(&[u8], Range<usize>), ()>> + '_ {
    let mut pos = 8;
    let mut done = png.len() < 8;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        let chunk = (|| {
            let len = png.get(pos..pos + 4)?;
            let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
            let kind = png.get(pos + 4..pos + 8)?;
            let end = (pos + 12).checked_add(len).filter(|&e| e <= png.len())?;
            Some((kind, pos..end))
        })();
        let Some((kind, range)) = chunk else {
            done = true;
            return Some(Err(()));
        };
        done = kind == b"IEND";
        pos = range.end;
        Some(Ok((kind, range)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::ZlibEncoder;
    use flate2::Compression;
    use std::io::Write;

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut e = ZlibEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn zlib_within_counts_without_keeping() {
        let z = zlib(&[7u8; 10_000]);
        assert!(zlib_within(&z, 10_000));
        assert!(!zlib_within(&z, 9_999));
        assert!(!zlib_within(&z[..z.len() - 6], 10_000), "truncated");
        assert!(!zlib_within(b"not zlib", 10_000));
    }

    #[test]
    fn iccp_needs_a_name_method_and_a_small_profile() {
        let mut ok = b"sRGB\0\0".to_vec();
        ok.extend_from_slice(&zlib(&[1u8; 3000]));
        assert!(png_iccp_ok(&ok));
        let mut method = ok.clone();
        method[5] = 1;
        assert!(!png_iccp_ok(&method));
        assert!(!png_iccp_ok(&ok[4..]), "no name");
        let mut big = b"x\0\0".to_vec();
        big.extend_from_slice(&zlib(&vec![0u8; ICC_PROFILE_LIMIT as usize + 1]));
        assert!(!png_iccp_ok(&big));
    }

    fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let mut c = (data.len() as u32).to_be_bytes().to_vec();
        c.extend_from_slice(kind);
        c.extend_from_slice(data);
        c.extend_from_slice(&[0; 4]); // the CRC is not looked at here
        c
    }

    #[test]
    fn the_decoder_sees_no_profile_or_text() {
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        png.extend(chunk(b"IHDR", &[0; 13]));
        let plain = [png.clone(), chunk(b"IDAT", b"px"), chunk(b"IEND", b"")].concat();
        assert!(matches!(png_for_decoding(&plain), Cow::Borrowed(_)));
        png.extend(chunk(b"iCCP", b"x\0\0zz"));
        png.extend(chunk(b"zTXt", b"k\0\0zz"));
        png.extend(chunk(b"IDAT", b"px"));
        png.extend(chunk(b"IEND", b""));
        png.extend_from_slice(b"trailer");
        let seen = png_for_decoding(&png);
        assert_eq!(&seen[..], &[&plain[..], b"trailer"].concat()[..]);
        // Cut inside the IDAT: the cut chunk is passed on for the decoder to refuse.
        let cut = &png[..png.len() - 20];
        let seen = png_for_decoding(cut);
        assert!(!seen.windows(4).any(|w| w == b"iCCP"));
        assert!(seen.ends_with(&cut[cut.len() - 5..]));
    }
}
