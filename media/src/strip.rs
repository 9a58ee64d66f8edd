//! Metadata stripping: the served original loses EXIF, XMP, GPS, comments
//! and editor chunks, without its pixels being re-encoded.
//!
//! Each format is rewritten by walking its own framing and copying every
//! part that is needed to show the image, dropping the rest:
//! - JPEG: APP1 (EXIF, XMP), APP3–APP13 (IPTC/Photoshop in APP13), APP15
//!   and COM segments go; APP0 (JFIF), APP2 only when it is an ICC profile,
//!   and APP14 (Adobe, which says how to read the colour channels) stay, as
//!   do tables, frames and scans byte for byte. Anything after EOI goes.
//! - PNG: critical chunks stay; of the ancillary ones only those that change
//!   how pixels look or move stay (tRNS, colour space and gamma chunks,
//!   pHYs, bKGD, sBIT, hIST, sPLT, and the APNG acTL/fcTL/fdAT). Text, time,
//!   eXIf and private chunks go, with anything after IEND.
//! - WebP: EXIF and XMP chunks go and the VP8X header's flags for them are
//!   cleared; the RIFF size is rewritten; anything after the RIFF goes.
//!
//! A colour profile over [`ICC_PROFILE_LIMIT`] goes too, in every format, as
//! does a PNG `iCCP` that does not inflate: the stored file is what the
//! thumbnailer decodes and browsers download, and a 1 MB `iCCP` that
//! inflates to 1 GB must cost neither of them a gigabyte (`metadata`).
//!
//! ## Orientation
//! Browsers rotate an `<img>` by its EXIF orientation, and the stored
//! width×height are the displayed ones. Dropping EXIF outright would show a
//! phone's portrait photo on its side. So when the orientation is not 1,
//! the stripped file carries a minimal EXIF block of one IFD entry (the
//! orientation tag, nothing else: 32 bytes, no GPS, no camera), in the place
//! the format reads it from. Pixels are never touched; the thumbnailer reads
//! the same tag and rotates the thumbnail.
//!
//! The blob store keys the stripped bytes, so duplicates are recognised by
//! the SHA-256 of what is served, not of what was uploaded: two copies of a
//! photo that differ only in metadata are one file.
//!
//! Not handled: GIF comment and XMP application extensions (GIF is copied
//! as uploaded), metadata inside ICC profiles, and video containers (their
//! tags stay as uploaded).

use super::error::MediaError;
use super::metadata::{png_iccp_ok, ICC_PROFILE_LIMIT};
use super::sniff::ImageFormat;

/// `bytes` (sniffed as `format`) without metadata. `Corrupt` if the
/// framing is broken (the same truncation the container walk refuses).
pub fn strip(bytes: &[u8], format: ImageFormat) -> Result<Vec<u8>, MediaError> {
    let out = match format {
        ImageFormat::Jpeg => jpeg(bytes),
        ImageFormat::Png => png(bytes),
        ImageFormat::WebP => webp(bytes),
        ImageFormat::Gif => Ok(bytes.to_vec()),
    };
    out.map_err(MediaError::Corrupt)
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

/// The orientation (1–8) in a TIFF block (EXIF without the `Exif\0\0`
/// prefix), or `None` if it has none or cannot be read.
pub(crate) fn tiff_orientation(tiff: &[u8]) -> Option<u16> {
    let le = match tiff.get(..4)? {
        b"II*\0" => true,
        b"MM\0*" => false,
        _ => return None,
    };
    let u16_at = |at: usize| -> Option<u16> {
        let b = tiff.get(at..at.checked_add(2)?)?;
        Some(if le {
            u16::from_le_bytes([b[0], b[1]])
        } else {
            u16::from_be_bytes([b[0], b[1]])
        })
    };
    let ifd = if le {
        u32_le(tiff, 4)?
    } else {
        u32_be(tiff, 4)?
    } as usize;
    let count = usize::from(u16_at(ifd)?);
    for i in 0..count {
        let entry = ifd.checked_add(2 + i * 12)?;
        // Tag 0x0112, type SHORT, its value in the first two bytes.
        if u16_at(entry)? == 0x0112 && u16_at(entry + 2)? == 3 {
            return u16_at(entry + 8).filter(|o| (1..=8).contains(o));
        }
    }
    None
}

/// A big-endian TIFF block with one IFD entry: the orientation.
fn minimal_tiff(orientation: u16) -> Vec<u8> {
    let mut t = Vec::with_capacity(26);
    t.extend_from_slice(b"MM\0*\0\0\0\x08"); // header, IFD0 at offset 8
    t.extend_from_slice(&1u16.to_be_bytes()); // one entry
    t.extend_from_slice(&[0x01, 0x12, 0x00, 0x03, 0, 0, 0, 1]); // orientation, SHORT, 1
    t.extend_from_slice(&orientation.to_be_bytes());
    t.extend_from_slice(&[0, 0]); // value padding
    t.extend_from_slice(&[0, 0, 0, 0]); // no next IFD
    t
}

const JPEG_TRUNCATED: &str = "the JPEG data ends before its end-of-image marker";

/// Whether a JPEG segment with `marker` and payload `data` is kept;
/// `keep_icc` says whether the file's colour profile is.
fn jpeg_keeps(marker: u8, data: &[u8], keep_icc: bool) -> bool {
    match marker {
        0xE0 | 0xEE => true,                                 // JFIF, Adobe
        0xE2 => keep_icc && data.starts_with(ICC_SIGNATURE), // not MPF or FlashPix
        0xE1 | 0xE3..=0xED | 0xEF | 0xFE => false,           // EXIF/XMP, others, COM
        _ => true,                                           // tables, frames, scans
    }
}

const ICC_SIGNATURE: &[u8] = b"ICC_PROFILE\0";

/// The bytes of the colour profile a JPEG carries in its APP2 segments
/// (split over up to 255 of them, each after a 14-byte header), summed over
/// the segments before the first scan, where readers look for it.
fn jpeg_icc_len(bytes: &[u8]) -> u64 {
    let mut total = 0u64;
    let mut pos = 2;
    loop {
        while bytes.get(pos) == Some(&0xFF) {
            pos += 1;
        }
        let Some(&marker) = bytes.get(pos) else {
            return total;
        };
        pos += 1;
        if matches!(marker, 0xD9 | 0xDA) {
            return total;
        }
        if matches!(marker, 0x00 | 0x01 | 0xD0..=0xD8) {
            continue;
        }
        let Some(len) = u16_be(bytes, pos).filter(|&l| l >= 2) else {
            return total;
        };
        let data = bytes.get(pos + 2..pos + len).unwrap_or(&[]);
        if marker == 0xE2 && data.starts_with(ICC_SIGNATURE) {
            total += data.len().saturating_sub(ICC_SIGNATURE.len() + 2) as u64;
        }
        pos += len;
    }
}

fn jpeg(bytes: &[u8]) -> Result<Vec<u8>, String> {
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return Err("the JPEG has no start-of-image marker".into());
    }
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(&[0xFF, 0xD8]);
    let mut orientation = None;
    let mut wrote_exif = false;
    let keep_icc = jpeg_icc_len(bytes) <= ICC_PROFILE_LIMIT;
    let mut pos = 2;
    loop {
        while bytes.get(pos).is_some_and(|&b| b != 0xFF) {
            pos += 1;
        }
        while bytes.get(pos) == Some(&0xFF) {
            pos += 1;
        }
        let marker = *bytes.get(pos).ok_or(JPEG_TRUNCATED)?;
        pos += 1;
        match marker {
            0xD9 => {
                out.extend_from_slice(&[0xFF, 0xD9]);
                return Ok(out);
            }
            0x00 | 0x01 | 0xD0..=0xD8 => out.extend_from_slice(&[0xFF, marker]),
            _ => {
                let len = u16_be(bytes, pos).ok_or(JPEG_TRUNCATED)?;
                if len < 2 {
                    return Err(format!("a JPEG segment has an invalid length {len}"));
                }
                let end = pos + len;
                let data = bytes.get(pos + 2..end).ok_or(JPEG_TRUNCATED)?;
                if marker == 0xE1 && data.starts_with(b"Exif\0\0") && orientation.is_none() {
                    orientation = tiff_orientation(&data[6..]);
                }
                let keep = jpeg_keeps(marker, data, keep_icc);
                // The orientation goes where readers look for EXIF: right
                // after JFIF, before the tables.
                if keep && marker != 0xE0 && !wrote_exif {
                    wrote_exif = true;
                    write_jpeg_exif(&mut out, orientation);
                }
                if keep {
                    out.extend_from_slice(&[0xFF, marker]);
                    out.extend_from_slice(&bytes[pos..end]);
                }
                pos = end;
                if marker == 0xDA {
                    let scan_end = skip_entropy_coded(bytes, pos).ok_or(JPEG_TRUNCATED)?;
                    out.extend_from_slice(&bytes[pos..scan_end]);
                    pos = scan_end;
                }
            }
        }
    }
}

fn write_jpeg_exif(out: &mut Vec<u8>, orientation: Option<u16>) {
    let Some(o) = orientation.filter(|&o| o != 1) else {
        return;
    };
    let tiff = minimal_tiff(o);
    let len = 2 + 6 + tiff.len();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&(len as u16).to_be_bytes());
    out.extend_from_slice(b"Exif\0\0");
    out.extend_from_slice(&tiff);
}

/// As in `structure`: the offset of the marker that ends a scan.
fn skip_entropy_coded(bytes: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        let ff = pos + bytes.get(pos..)?.iter().position(|&b| b == 0xFF)?;
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

/// Ancillary PNG chunks that affect how the image looks or animates.
const PNG_KEPT_ANCILLARY: &[&[u8; 4]] = &[
    b"tRNS", b"cHRM", b"gAMA", b"iCCP", b"sBIT", b"sRGB", b"cICP", b"mDCV", b"cLLI", b"bKGD",
    b"hIST", b"pHYs", b"sPLT", b"acTL", b"fcTL", b"fdAT",
];

fn png(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(bytes.get(..8).ok_or(PNG_TRUNCATED)?);
    let mut pos = 8;
    loop {
        let len = u32_be(bytes, pos).ok_or(PNG_TRUNCATED)?;
        if len > 0x7FFF_FFFF {
            return Err(format!("a PNG chunk has an invalid length {len}"));
        }
        let kind: [u8; 4] = bytes
            .get(pos + 4..pos + 8)
            .and_then(|k| k.try_into().ok())
            .ok_or(PNG_TRUNCATED)?;
        let end = (pos + 8).saturating_add(len as usize).saturating_add(4);
        if end > bytes.len() {
            return Err(PNG_TRUNCATED.to_owned());
        }
        let critical = kind[0].is_ascii_uppercase();
        if &kind == b"iCCP" {
            // Inflated into a counter, never a buffer: see `metadata`.
            if png_iccp_ok(&bytes[pos + 8..end - 4]) {
                out.extend_from_slice(&bytes[pos..end]);
            }
        } else if critical || PNG_KEPT_ANCILLARY.contains(&&kind) {
            out.extend_from_slice(&bytes[pos..end]);
        } else if &kind == b"eXIf" {
            let data = &bytes[pos + 8..end - 4];
            if let Some(o) = tiff_orientation(data).filter(|&o| o != 1) {
                png_chunk(&mut out, b"eXIf", &minimal_tiff(o));
            }
        }
        if &kind == b"IEND" {
            return Ok(out);
        }
        pos = end;
    }
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// CRC-32 (IEEE), as PNG chunks carry it. Public for the tests and tools
/// that make PNG chunks by hand.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = flate2::Crc::new();
    crc.update(data);
    crc.sum()
}

/// VP8X flag bits for the EXIF and XMP chunks.
const VP8X_EXIF: u8 = 0x08;
const VP8X_XMP: u8 = 0x04;
const VP8X_ICC: u8 = 0x20;

fn webp(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let declared = u32_le(bytes, 4).ok_or("the WebP header is incomplete")?;
    let end = (declared as usize).saturating_add(8);
    if end > bytes.len() || end < 12 {
        return Err(format!(
            "the WebP data is {} bytes long but its header says {end}",
            bytes.len()
        ));
    }
    let mut out = Vec::with_capacity(end);
    out.extend_from_slice(&bytes[..12]);
    let mut vp8x_flags_at = None;
    let mut orientation = None;
    let mut dropped_icc = false;
    let mut pos = 12;
    while pos + 8 <= end {
        let fourcc = &bytes[pos..pos + 4];
        let len = u32_le(bytes, pos + 4).ok_or("the WebP header is incomplete")? as usize;
        let data_end = (pos + 8).saturating_add(len);
        if data_end > end {
            return Err("a WebP chunk runs past the end of the file".to_owned());
        }
        let padded_end = (data_end + (len & 1)).min(end);
        match fourcc {
            b"EXIF" => {
                let data = &bytes[pos + 8..data_end];
                // Some writers keep JPEG's "Exif\0\0" prefix; readers accept both.
                let tiff = data.strip_prefix(b"Exif\0\0").unwrap_or(data);
                orientation = tiff_orientation(tiff).filter(|&o| o != 1);
            }
            b"XMP " => {}
            b"ICCP" if len as u64 > ICC_PROFILE_LIMIT => dropped_icc = true,
            _ => {
                if fourcc == b"VP8X" {
                    vp8x_flags_at = Some(out.len() + 8);
                }
                out.extend_from_slice(&bytes[pos..padded_end]);
                if padded_end < data_end + (len & 1) {
                    out.push(0); // the missing pad byte of a last chunk
                }
            }
        }
        pos = data_end.saturating_add(len & 1);
    }
    if let Some(at) = vp8x_flags_at {
        if let Some(flags) = out.get_mut(at) {
            *flags &= !(VP8X_EXIF | VP8X_XMP);
            if dropped_icc {
                *flags &= !VP8X_ICC;
            }
            if orientation.is_some() {
                *flags |= VP8X_EXIF;
            }
        }
        // EXIF belongs after the image data; readers take it from anywhere.
        if let Some(o) = orientation {
            let tiff = minimal_tiff(o);
            out.extend_from_slice(b"EXIF");
            out.extend_from_slice(&(tiff.len() as u32).to_le_bytes());
            out.extend_from_slice(&tiff);
        }
    }
    let size = (out.len() - 8) as u32;
    out[4..8].copy_from_slice(&size.to_le_bytes());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_tiff_round_trips() {
        for o in 1..=8 {
            assert_eq!(tiff_orientation(&minimal_tiff(o)), Some(o));
        }
        assert_eq!(tiff_orientation(b"junk"), None);
        assert_eq!(tiff_orientation(b"II*\0\xFF\xFF\xFF\xFF"), None);
    }

    #[test]
    fn jpeg_segments_are_dropped_and_kept() {
        // SOI, APP0, COM, APP1 (EXIF, orientation 6), DQT-ish, SOS, scan, EOI, trailer.
        let mut j = b"\xFF\xD8\xFF\xE0\x00\x04ab\xFF\xFE\x00\x07hello".to_vec();
        let mut exif = b"Exif\0\0".to_vec();
        exif.extend_from_slice(&minimal_tiff(6));
        j.extend_from_slice(&[0xFF, 0xE1]);
        j.extend_from_slice(&((exif.len() + 2) as u16).to_be_bytes());
        j.extend_from_slice(&exif);
        j.extend_from_slice(b"\xFF\xDB\x00\x03q\xFF\xDA\x00\x02\x12\xFF\x00\x34\xFF\xD9<html>");
        let s = jpeg(&j).unwrap();
        assert!(!s.windows(5).any(|w| w == b"hello"));
        assert!(!s.windows(6).any(|w| w == b"<html>"));
        assert!(s.ends_with(b"\xFF\xD9"));
        let at = s.windows(6).position(|w| w == b"Exif\0\0").unwrap();
        assert_eq!(tiff_orientation(&s[at + 6..]), Some(6));
        assert!(jpeg(&j[..j.len() - 9]).is_err());
    }
}
