//! The DC-only decoder against jpeg-decoder's 1/8 scale (the general path
//! it replaces), over the encodings photos arrive in: grey and colour,
//! every common chroma subsampling, baseline and progressive, with and
//! without restart markers, at sizes that are not multiples of a block.

use jpeg_encoder::{ColorType, Encoder, SamplingFactor};

use super::*;

/// A smooth colour ramp with a little texture and a few hard edges.
fn photo(width: u16, height: u16) -> Vec<u8> {
    let (w, h) = (u32::from(width), u32::from(height));
    let mut rgb = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            let texture = (x.wrapping_mul(31) ^ y.wrapping_mul(17)) % 23;
            let disc = (x as i32 - w as i32 / 3).pow(2) + (y as i32 - h as i32 / 2).pow(2)
                < (h as i32 / 4).pow(2);
            rgb.extend_from_slice(&[
                (x * 255 / w) as u8,
                if disc { 240 } else { (y * 255 / h) as u8 },
                (128 + texture * 4) as u8,
            ]);
        }
    }
    rgb
}

struct Case {
    width: u16,
    height: u16,
    grey: bool,
    sampling: SamplingFactor,
    progressive: bool,
    restart: Option<u16>,
}

fn encode(case: &Case) -> Vec<u8> {
    let rgb = photo(case.width, case.height);
    let mut out = Vec::new();
    let mut encoder = Encoder::new(&mut out, 90);
    encoder.set_sampling_factor(case.sampling);
    encoder.set_progressive(case.progressive);
    if let Some(interval) = case.restart {
        encoder.set_restart_interval(interval);
    }
    let result = if case.grey {
        let luma: Vec<u8> = rgb.chunks_exact(3).map(|p| p[1]).collect();
        encoder.encode(&luma, case.width, case.height, ColorType::Luma)
    } else {
        encoder.encode(&rgb, case.width, case.height, ColorType::Rgb)
    };
    result.expect("encode test JPEG");
    out
}

/// jpeg-decoder's output at 1/8 scale, as grey or RGB bytes.
fn reference(bytes: &[u8]) -> (u16, u16, Vec<u8>) {
    let mut decoder = jpeg_decoder::Decoder::new(bytes);
    let (w, h) = decoder.scale(1, 1).expect("header");
    let pixels = decoder.decode().expect("jpeg-decoder decodes it");
    (w, h, pixels)
}

#[test]
fn matches_jpeg_decoder_at_one_eighth() {
    let samplings = [
        SamplingFactor::F_1_1,
        SamplingFactor::F_2_1,
        SamplingFactor::F_1_2,
        SamplingFactor::F_2_2,
        SamplingFactor::F_4_1,
    ];
    let mut cases = Vec::new();
    for (width, height) in [(203, 157), (64, 48), (9, 17)] {
        for progressive in [false, true] {
            for restart in [None, Some(3)] {
                cases.push(Case {
                    width,
                    height,
                    grey: true,
                    sampling: SamplingFactor::F_1_1,
                    progressive,
                    restart,
                });
                for sampling in samplings {
                    cases.push(Case {
                        width,
                        height,
                        grey: false,
                        sampling,
                        progressive,
                        restart,
                    });
                }
            }
        }
    }
    for case in &cases {
        let label = format!(
            "{}×{} {} {:?} progressive={} restart={:?}",
            case.width,
            case.height,
            if case.grey { "grey" } else { "colour" },
            case.sampling,
            case.progressive,
            case.restart
        );
        let bytes = encode(case);
        let ours = decode(&bytes).unwrap_or_else(|e| panic!("{label}: {e:?}"));
        let (w, h, theirs) = reference(&bytes);
        assert_eq!(
            (ours.width, ours.height),
            (u32::from(w), u32::from(h)),
            "{label}"
        );
        assert_eq!(ours.grey, case.grey, "{label}");
        assert_eq!(ours.pixels.len(), theirs.len(), "{label}");
        let diffs: Vec<u32> = ours
            .pixels
            .iter()
            .zip(&theirs)
            .map(|(&a, &b)| u32::from(a.abs_diff(b)))
            .collect();
        let max = diffs.iter().copied().max().unwrap_or(0);
        let mean = f64::from(diffs.iter().sum::<u32>()) / diffs.len() as f64;
        // Luminance is the same arithmetic (libjpeg rounds, jpeg-decoder
        // truncates: one level). Colour differs where jpeg-decoder
        // interpolates subsampled chrominance and this repeats it.
        // Luminance is the same arithmetic (libjpeg rounds where
        // jpeg-decoder truncates: one level), and colour conversion adds
        // a little. jpeg-decoder repeats 4:1 chrominance where this
        // interpolates it, so there colour edges differ by design.
        let (max_allowed, mean_allowed) = match (case.grey, case.sampling) {
            (true, _) => (1, 1.0),
            (false, SamplingFactor::F_4_1) => (64, 10.0),
            (false, _) => (6, 1.5),
        };
        assert!(
            max <= max_allowed && mean <= mean_allowed,
            "{label}: max difference {max}, mean {mean:.2}"
        );
    }
}

/// White noise at quality 100: the largest coefficients and the longest
/// Huffman codes (past the one-lookup tables), which photos rarely reach.
#[test]
fn matches_jpeg_decoder_on_noise_at_full_quality() {
    let (w, h) = (128u16, 96u16);
    let mut state = 0x2545_F491u32;
    let noise: Vec<u8> = (0..usize::from(w) * usize::from(h) * 3)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state >> 24) as u8
        })
        .collect();
    for sampling in [SamplingFactor::F_1_1, SamplingFactor::F_2_2] {
        for optimized in [false, true] {
            let mut bytes = Vec::new();
            let mut encoder = Encoder::new(&mut bytes, 100);
            encoder.set_sampling_factor(sampling);
            encoder.set_optimized_huffman_tables(optimized);
            encoder
                .encode(&noise, w, h, ColorType::Rgb)
                .expect("encode noise");
            let ours = decode(&bytes).expect("decodes");
            let (_, _, theirs) = reference(&bytes);
            let max = ours
                .pixels
                .iter()
                .zip(&theirs)
                .map(|(&a, &b)| a.abs_diff(b))
                .max();
            assert!(
                max.is_some_and(|m| m <= 6),
                "{sampling:?} optimized={optimized}: max difference {max:?}"
            );
        }
    }
}

#[test]
fn leaves_cmyk_to_the_general_decoder() {
    let (w, h) = (32u16, 24u16);
    let cmyk: Vec<u8> = photo(w, h)
        .chunks_exact(3)
        .flat_map(|p| [p[0], p[1], p[2], 0])
        .collect();
    let mut out = Vec::new();
    Encoder::new(&mut out, 90)
        .encode(&cmyk, w, h, ColorType::Cmyk)
        .expect("encode CMYK");
    assert!(matches!(decode(&out), Err(DcError::Unsupported(_))));
}

#[test]
fn refuses_what_is_not_a_jpeg() {
    assert!(matches!(decode(b""), Err(DcError::Corrupt(_))));
    assert!(matches!(
        decode(b"\x89PNG\r\n\x1a\n"),
        Err(DcError::Corrupt(_))
    ));
    // A JPEG that ends before its frame, or before its end marker.
    let bytes = encode(&Case {
        width: 64,
        height: 48,
        grey: false,
        sampling: SamplingFactor::F_2_2,
        progressive: true,
        restart: None,
    });
    assert!(decode(&bytes[..20]).is_err());
    assert!(decode(&bytes[..bytes.len() - 2]).is_err());
}

/// Every prefix and thousands of single-byte changes: an error or an
/// image, never a panic, and never more pixels than the frame claims.
#[test]
fn damaged_files_never_panic() {
    let files = [
        encode(&Case {
            width: 72,
            height: 40,
            grey: false,
            sampling: SamplingFactor::F_2_2,
            progressive: false,
            restart: Some(2),
        }),
        encode(&Case {
            width: 72,
            height: 40,
            grey: false,
            sampling: SamplingFactor::F_2_1,
            progressive: true,
            restart: None,
        }),
        encode(&Case {
            width: 40,
            height: 72,
            grey: true,
            sampling: SamplingFactor::F_1_1,
            progressive: true,
            restart: Some(1),
        }),
    ];
    for full in &files {
        let check = |bytes: &[u8]| {
            if let Ok(image) = decode(bytes) {
                let channels = if image.grey { 1 } else { 3 };
                assert_eq!(
                    image.pixels.len(),
                    (image.width * image.height * channels) as usize
                );
                assert!(image.width <= 65_535u32.div_ceil(8));
            }
        };
        for cut in 0..full.len() {
            check(&full[..cut]);
        }
        // Every byte of the headers and tables, a spread of the scans.
        for pos in (0..full.len().min(700)).chain((700..full.len()).step_by(5)) {
            for flip in [0xFF, 0x10, 0x01] {
                let mut bytes = full.clone();
                bytes[pos] ^= flip;
                check(&bytes);
            }
        }
    }
}
