//! The file type, from magic bytes only.
//!
//! The client's `Content-Type` and file name are chosen by whoever uploads,
//! so they decide nothing: a PNG named `cat.jpg` is a PNG, and an HTML page
//! named `cat.jpg` is refused. Only the four image formats wani decodes are
//! recognised here; video (WebM/MP4) goes through ffmpeg elsewhere.

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

/// What [`sniff`] found: the format and the names it is stored under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sniffed {
    /// The decoded format.
    pub format: ImageFormat,
    /// Its MIME type, e.g. `image/png`.
    pub mimetype: &'static str,
    /// Its extension without a dot, e.g. `png`.
    pub ext: &'static str,
}

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// Identifies an image from its first bytes, or `None` if it is not a JPEG,
/// PNG, GIF or WebP.
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
        return None;
    };
    Some(Sniffed {
        format,
        mimetype: format.mimetype(),
        ext: format.ext(),
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
            assert_eq!(sniff(bytes).map(|s| s.format), *want, "{bytes:?}");
        }
    }
}
