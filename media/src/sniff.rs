//! The file type, from magic bytes only.
//!
//! The client's `Content-Type` and file name are chosen by whoever uploads,
//! so they decide nothing: a PNG named `cat.jpg` is a PNG, and an HTML page
//! named `cat.jpg` is refused. The four image formats wani decodes are
//! recognised here, and the two video containers it hands to ffmpeg (WebM:
//! an EBML header whose doctype is `webm`; MP4: an `ftyp` box whose brands
//! are MP4's, not HEIF's or QuickTime's).

/// An image format wani can decode and thumbnail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ImageFormat {
    /// JPEG (`FF D8 FF`).
    Jpeg,
    /// PNG (the 8-byte `\x89PNG\r\n\x1a\n` signature); APNG included.
    Png,
    /// GIF87a or GIF89a.
    Gif,
    /// WebP (`RIFF`, a 4-byte size, `WEBP`), lossy, lossless or animated.
    WebP,
}

impl ImageFormat {
    /// The MIME type stored with the media and matched against a board's list.
    pub fn mimetype(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "image/jpeg",
            ImageFormat::Png => "image/png",
            ImageFormat::Gif => "image/gif",
            ImageFormat::WebP => "image/webp",
        }
    }

    /// The file extension the upload is stored and served under, without a dot.
    pub fn ext(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "jpg",
            ImageFormat::Png => "png",
            ImageFormat::Gif => "gif",
            ImageFormat::WebP => "webp",
        }
    }

    /// The `image` crate's name for the format, for building its decoder.
    pub(crate) fn codec(self) -> image::ImageFormat {
        match self {
            ImageFormat::Jpeg => image::ImageFormat::Jpeg,
            ImageFormat::Png => image::ImageFormat::Png,
            ImageFormat::Gif => image::ImageFormat::Gif,
            ImageFormat::WebP => image::ImageFormat::WebP,
        }
    }
}

/// A video container wani probes and thumbnails with ffmpeg.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VideoFormat {
    /// WebM (Matroska with the `webm` doctype).
    WebM,
    /// MP4 (ISO base media file with an MP4 brand).
    Mp4,
}

/// Any format wani accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileFormat {
    /// Decoded in-process.
    Image(ImageFormat),
    /// Probed and thumbnailed by ffmpeg in a child process.
    Video(VideoFormat),
}

impl FileFormat {
    /// The image format, if this is one.
    pub fn image(self) -> Option<ImageFormat> {
        match self {
            FileFormat::Image(f) => Some(f),
            FileFormat::Video(_) => None,
        }
    }
}

/// What [`sniff`] found: the format and the names it is stored under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sniffed {
    /// The format.
    pub format: FileFormat,
    /// Its MIME type, e.g. `image/png`.
    pub mimetype: &'static str,
    /// Its extension without a dot, e.g. `png`.
    pub ext: &'static str,
}

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// Identifies a file from its first bytes, or `None` if it is not a JPEG,
/// PNG, GIF, WebP, WebM or MP4.
///
/// Only the signature is checked; whether the rest of the file is sound is
/// for [`process`](super::process) to find out.
pub fn sniff(bytes: &[u8]) -> Option<Sniffed> {
    let format = if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        ImageFormat::Jpeg
    } else if bytes.starts_with(PNG_SIGNATURE) {
        ImageFormat::Png
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        ImageFormat::Gif
    } else if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
        // RIFF alone is also WAV and AVI; the form type is what makes it WebP.
        ImageFormat::WebP
    } else {
        return sniff_video(bytes);
    };
    Some(Sniffed {
        format: FileFormat::Image(format),
        mimetype: format.mimetype(),
        ext: format.ext(),
    })
}

/// MP4 brands (major or compatible) that make an `ftyp` file a video we take.
const MP4_BRANDS: &[&[u8; 4]] = &[
    b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"avc1", b"M4V ",
    b"dash", b"mmp4",
];

/// Major brands of still-image formats in the same box structure (HEIF,
/// AVIF), which list `iso*` among their compatible brands too.
const IMAGE_BRANDS: &[&[u8; 4]] = &[
    b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis",
];

fn sniff_video(bytes: &[u8]) -> Option<Sniffed> {
    let format = if bytes.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) {
        // The DocType element (0x4282) sits in the first few dozen bytes of
        // the EBML header; "matroska" files are not WebM and are refused.
        let head = &bytes[..bytes.len().min(64)];
        let doctype = head.windows(2).position(|w| w == [0x42, 0x82])?;
        if !head[doctype..].windows(4).any(|w| w == b"webm") {
            return None;
        }
        VideoFormat::WebM
    } else if bytes.get(4..8) == Some(b"ftyp") {
        let size = u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
        let major: &[u8; 4] = bytes.get(8..12)?.try_into().ok()?;
        if IMAGE_BRANDS.contains(&major) {
            return None;
        }
        let box_end = size.clamp(16, 256).min(bytes.len());
        let compatible = bytes.get(16..box_end).unwrap_or(&[]);
        let mp4 = MP4_BRANDS.contains(&major)
            || compatible
                .chunks_exact(4)
                .any(|b| MP4_BRANDS.iter().any(|m| &m[..] == b));
        if !mp4 {
            return None;
        }
        VideoFormat::Mp4
    } else {
        return None;
    };
    let (mimetype, ext) = match format {
        VideoFormat::WebM => ("video/webm", "webm"),
        VideoFormat::Mp4 => ("video/mp4", "mp4"),
    };
    Some(Sniffed {
        format: FileFormat::Video(format),
        mimetype,
        ext,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures() {
        let cases: &[(&[u8], Option<ImageFormat>)] = &[
            (b"\xFF\xD8\xFF\xE0\x00\x10JFIF", Some(ImageFormat::Jpeg)),
            (b"\x89PNG\r\n\x1a\n\x00\x00", Some(ImageFormat::Png)),
            (b"GIF87a..", Some(ImageFormat::Gif)),
            (b"GIF89a..", Some(ImageFormat::Gif)),
            (b"RIFF\x10\x00\x00\x00WEBPVP8 ", Some(ImageFormat::WebP)),
            (b"RIFF\x10\x00\x00\x00WAVEfmt ", None),
            (b"RIFF\x10\x00\x00", None),
            (b"\xFF\xD8", None),
            (b"\x89PNG\r\n", None),
            (b"GIF88a", None),
            (b"BM\x00\x00", None),
            (b"<!DOCTYPE html>", None),
            (b"PK\x03\x04", None),
            (b"", None),
        ];
        for (bytes, want) in cases {
            assert_eq!(
                sniff(bytes).and_then(|s| s.format.image()),
                *want,
                "{bytes:?}"
            );
        }
    }

    #[test]
    fn video_signatures() {
        let webm = b"\x1A\x45\xDF\xA3\x9F\x42\x86\x81\x01\x42\x82\x84webm\x42\x87";
        let mkv = b"\x1A\x45\xDF\xA3\x9F\x42\x86\x81\x01\x42\x82\x88matroska";
        let mp4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isommp41";
        let heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic";
        let mov = b"\x00\x00\x00\x14ftypqt  \x00\x00\x02\x00qt  ";
        let kind = |b: &[u8]| sniff(b).map(|s| s.format);
        assert_eq!(kind(webm), Some(FileFormat::Video(VideoFormat::WebM)));
        assert_eq!(kind(mp4), Some(FileFormat::Video(VideoFormat::Mp4)));
        assert_eq!(kind(mkv), None);
        assert_eq!(kind(heic), None);
        assert_eq!(kind(mov), None);
        assert_eq!(sniff(mp4).map(|s| s.mimetype), Some("video/mp4"));
    }
}
