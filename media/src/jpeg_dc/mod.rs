//! JPEG at 1/8 scale from the DC coefficients alone: the fast path for
//! thumbnails of photos at least eight times the thumbnail's size.
//!
//! ## Why it exists
//! At 1/8 scale each 8×8 block becomes one pixel, its DC coefficient (the
//! block's average); the 63 AC coefficients are not needed. A general
//! decoder still decodes them: libjpeg-turbo, jpeg-decoder and zune-jpeg
//! all reconstruct every coefficient's value and only then drop it, and
//! that entropy decoding is most of their time at 1/8 (libjpeg-turbo takes
//! 29 ms at 1/8 on the benchmark's 12-megapixel photo, 52 at full size).
//! Here a table indexed by the next 12 bits gives the whole length of the
//! AC coefficients starting there, codes and values together (two or
//! three of them, at about 5 bits each in photos), so skipping them is a
//! lookup and a shift: 15 ms for that photo. In a progressive file the AC
//! scans are not decoded at all: the DC scans come first and the rest is
//! stepped over by searching for the next marker.
//!
//! It is a decoder of hostile input written here rather than taken from a
//! crate because no JPEG crate exposes DC-only decoding; it is kept small
//! (no IDCT, no AC values, no upsampling of full-size planes), checked
//! against jpeg-decoder on every sampling layout, and never the last word
//! on a file (below).
//!
//! The output is what libjpeg produces with `scale_denom = 8` for the
//! luminance (its 1×1 IDCT, rounding included); subsampled chrominance is
//! interpolated linearly between block centres, as jpeg-decoder does at
//! 1/8 (libjpeg instead decodes chrominance at 2×2 there, using three AC
//! coefficients a block: sharper colour edges, invisible at thumbnail
//! size, and not worth decoding AC values for).
//!
//! ## What it does not handle
//! Anything but 8-bit Huffman-coded baseline, extended or progressive
//! JPEGs with one (grey) or three (YCbCr or RGB) components: arithmetic
//! coding, lossless and hierarchical files, 12-bit samples, CMYK, a
//! height given by a DNL marker. These come back as
//! [`DcError::Unsupported`], and the caller decodes them as before.
//! [`DcError::Corrupt`] is what a general decoder would also trip on; the
//! caller falls back as well, so this path never refuses a file that the
//! general one accepts. Colour management and EXIF are the caller's.
//!
//! Bounds: the frame's dimensions were checked against the pixel limit
//! before this is called; the coefficient planes take 2 bytes per 64
//! pixels; each sequential scan decodes its blocks once, each component has
//! at most 14 DC scans (a first and 13 refinements), and the loops run over
//! blocks, never over what the data claims.

mod entropy;
mod planes;

use entropy::{next_segment, Bits, Huffman};

/// Why a file was not decoded here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DcError {
    /// A valid JPEG using a feature this path leaves to the general decoder.
    Unsupported(&'static str),
    /// Data a general decoder would also refuse or have to guess around.
    Corrupt(&'static str),
}

/// A JPEG reduced to one pixel per 8×8 block.
pub(crate) struct DcImage {
    /// `ceil(width / 8)` of the file.
    pub width: u32,
    /// `ceil(height / 8)` of the file.
    pub height: u32,
    /// Grey (one byte a pixel) or RGB (three).
    pub grey: bool,
    pub pixels: Vec<u8>,
}

/// Decodes `data`, a whole JPEG file, at 1/8 scale.
pub(crate) fn decode(data: &[u8]) -> Result<DcImage, DcError> {
    if data.get(..2) != Some(&[0xFF, 0xD8]) {
        return Err(DcError::Corrupt("no start-of-image marker"));
    }
    let mut state = State::default();
    let mut pos = 2;
    loop {
        let (marker, at) = read_marker(data, pos)?;
        pos = at;
        match marker {
            0xD9 => break,
            // No length: stray stuffing or restarts, TEM, a second SOI.
            0x00 | 0x01 | 0xD0..=0xD8 => continue,
            0xDA => {
                let (scan, data_at) = read_scan_header(data, pos, &mut state)?;
                pos = state.run_scan(data, data_at, &scan)?;
                continue;
            }
            _ => {}
        }
        let body = segment(data, pos)?;
        pos += 2 + body.len();
        match marker {
            0xC0 | 0xC1 => state.read_frame(body, false)?,
            0xC2 => state.read_frame(body, true)?,
            0xC3 | 0xC5..=0xC7 | 0xCB | 0xCD..=0xCF => {
                return Err(DcError::Unsupported("lossless or hierarchical JPEG"))
            }
            0xC9 | 0xCA | 0xCC => return Err(DcError::Unsupported("arithmetic coding")),
            0xC4 => state.read_huffman(body)?,
            0xDB => state.read_quant(body)?,
            0xDD => state.restart_interval = u16::from_be_bytes(two(body, 0)?),
            0xDC => return Err(DcError::Unsupported("height given by a DNL marker")),
            0xE0 if body.starts_with(b"JFIF\0") => state.jfif = true,
            0xEE if body.starts_with(b"Adobe") => state.adobe_transform = body.get(11).copied(),
            _ => {} // APPn, COM and the rest carry no pixels
        }
    }
    state.finish()
}

/// The marker at `pos` (after any 0xFF fill bytes) and where its segment
/// starts. Bytes that are not a marker are stepped over, as libjpeg does
/// with a warning.
fn read_marker(data: &[u8], pos: usize) -> Result<(u8, usize), DcError> {
    let mut at = pos;
    if data.get(at) != Some(&0xFF) {
        at = next_segment(data, at);
    }
    while data.get(at) == Some(&0xFF) {
        at += 1;
    }
    match data.get(at) {
        Some(&marker) => Ok((marker, at + 1)),
        None => Err(DcError::Corrupt("the file ends before its end marker")),
    }
}

/// The body of the length-prefixed segment at `pos`.
fn segment(data: &[u8], pos: usize) -> Result<&[u8], DcError> {
    let len = usize::from(u16::from_be_bytes(two(data, pos)?));
    if len < 2 {
        return Err(DcError::Corrupt("a segment length under 2"));
    }
    data.get(pos + 2..pos + len)
        .ok_or(DcError::Corrupt("a segment runs past the end of the file"))
}

fn two(data: &[u8], at: usize) -> Result<[u8; 2], DcError> {
    data.get(at..at + 2)
        .and_then(|s| s.first_chunk::<2>())
        .copied()
        .ok_or(DcError::Corrupt("a segment is too short"))
}

fn byte(data: &[u8], at: usize) -> Result<u8, DcError> {
    data.get(at)
        .copied()
        .ok_or(DcError::Corrupt("a segment is too short"))
}

/// A component of the frame and its plane of DC coefficients.
struct Component {
    id: u8,
    h: usize,
    v: usize,
    quant_table: usize,
    /// The DC quantiser, taken from the table when the component's first
    /// scan starts (a later DQT may reuse the slot for another table).
    quant: Option<u16>,
    /// Plane size in blocks, padded to whole MCUs.
    blocks_w: usize,
    blocks_h: usize,
    /// Blocks a non-interleaved scan codes (the plane without padding).
    coded_w: usize,
    coded_h: usize,
    dc: Vec<i16>,
    /// Whether a sequential or first DC scan has filled `dc`.
    seen: bool,
    /// The point transform of its last DC scan (progressive).
    al: u8,
}

struct Frame {
    width: usize,
    height: usize,
    progressive: bool,
    max_h: usize,
    max_v: usize,
    mcus_w: usize,
    mcus_h: usize,
    components: Vec<Component>,
}

/// What a scan header says, with components as indices into the frame.
struct Scan {
    components: Vec<ScanComponent>,
    ss: u8,
    se: u8,
    ah: u8,
    al: u8,
}

struct ScanComponent {
    index: usize,
    dc_table: usize,
    ac_table: usize,
}

/// DHT tables a file may define (and redefine) before it is refused.
const MAX_TABLE_DEFINITIONS: usize = 256;

#[derive(Default)]
struct State {
    frame: Option<Frame>,
    dc_tables: [Option<Huffman>; 4],
    ac_tables: [Option<Huffman>; 4],
    table_definitions: usize,
    /// The DC quantiser of each table slot.
    quant: [Option<u16>; 4],
    restart_interval: u16,
    jfif: bool,
    adobe_transform: Option<u8>,
}

impl State {
    fn read_frame(&mut self, body: &[u8], progressive: bool) -> Result<(), DcError> {
        if self.frame.is_some() {
            return Err(DcError::Unsupported("more than one frame"));
        }
        if byte(body, 0)? != 8 {
            return Err(DcError::Unsupported("samples of more than 8 bits"));
        }
        let height = usize::from(u16::from_be_bytes(two(body, 1)?));
        let width = usize::from(u16::from_be_bytes(two(body, 3)?));
        let count = usize::from(byte(body, 5)?);
        if height == 0 {
            return Err(DcError::Unsupported("height given by a DNL marker"));
        }
        if width == 0 {
            return Err(DcError::Corrupt("a frame of width 0"));
        }
        if count != 1 && count != 3 {
            return Err(DcError::Unsupported(
                "neither grey nor three-component colour",
            ));
        }
        let mut components = Vec::with_capacity(count);
        for i in 0..count {
            let at = 6 + 3 * i;
            let id = byte(body, at)?;
            let hv = byte(body, at + 1)?;
            let quant_table = usize::from(byte(body, at + 2)?);
            let (h, v) = (usize::from(hv >> 4), usize::from(hv & 15));
            if !(1..=4).contains(&h) || !(1..=4).contains(&v) || quant_table > 3 {
                return Err(DcError::Corrupt("bad component parameters"));
            }
            if components.iter().any(|c: &Component| c.id == id) {
                return Err(DcError::Unsupported("two components with the same id"));
            }
            components.push(Component {
                id,
                h,
                v,
                quant_table,
                quant: None,
                blocks_w: 0,
                blocks_h: 0,
                coded_w: 0,
                coded_h: 0,
                dc: Vec::new(),
                seen: false,
                al: 0,
            });
        }
        // A lone component is coded non-interleaved: its sampling factors
        // only scale it against itself.
        if count == 1 {
            components[0].h = 1;
            components[0].v = 1;
        }
        let max_h = components.iter().map(|c| c.h).max().unwrap_or(1);
        let max_v = components.iter().map(|c| c.v).max().unwrap_or(1);
        let mcus_w = width.div_ceil(8 * max_h);
        let mcus_h = height.div_ceil(8 * max_v);
        for c in &mut components {
            c.blocks_w = mcus_w * c.h;
            c.blocks_h = mcus_h * c.v;
            c.coded_w = (width * c.h).div_ceil(max_h).div_ceil(8);
            c.coded_h = (height * c.v).div_ceil(max_v).div_ceil(8);
            c.dc = vec![0; c.blocks_w * c.blocks_h];
        }
        self.frame = Some(Frame {
            width,
            height,
            progressive,
            max_h,
            max_v,
            mcus_w,
            mcus_h,
            components,
        });
        Ok(())
    }

    fn read_huffman(&mut self, body: &[u8]) -> Result<(), DcError> {
        let mut at = 0;
        while at < body.len() {
            let class_id = byte(body, at)?;
            let (class, id) = (class_id >> 4, usize::from(class_id & 15));
            if class > 1 || id > 3 {
                return Err(DcError::Corrupt("bad Huffman table class or id"));
            }
            let counts = body
                .get(at + 1..at + 17)
                .and_then(|s| s.first_chunk::<16>())
                .ok_or(DcError::Corrupt("a Huffman table is cut short"))?;
            let total: usize = counts.iter().map(|&c| usize::from(c)).sum();
            if total > 256 {
                return Err(DcError::Corrupt("a Huffman table has over 256 codes"));
            }
            let symbols = body
                .get(at + 17..at + 17 + total)
                .ok_or(DcError::Corrupt("a Huffman table is cut short"))?;
            self.table_definitions += 1;
            if self.table_definitions > MAX_TABLE_DEFINITIONS {
                return Err(DcError::Corrupt("too many Huffman tables"));
            }
            let table = Some(Huffman::new(counts, symbols)?);
            if class == 0 {
                self.dc_tables[id] = table;
            } else {
                self.ac_tables[id] = table;
            }
            at += 17 + total;
        }
        Ok(())
    }

    fn read_quant(&mut self, body: &[u8]) -> Result<(), DcError> {
        let mut at = 0;
        while at < body.len() {
            let precision_id = byte(body, at)?;
            let (wide, id) = (precision_id >> 4, usize::from(precision_id & 15));
            if wide > 1 || id > 3 {
                return Err(DcError::Corrupt("bad quantisation table precision or id"));
            }
            // Only the first entry (zigzag 0, the DC term) matters here.
            let dc = if wide == 1 {
                u16::from_be_bytes(two(body, at + 1)?)
            } else {
                u16::from(byte(body, at + 1)?)
            };
            let len = if wide == 1 { 128 } else { 64 };
            if body.len() < at + 1 + len {
                return Err(DcError::Corrupt("a quantisation table is cut short"));
            }
            self.quant[id] = Some(dc);
            at += 1 + len;
        }
        Ok(())
    }

    /// Decodes (or steps over) the scan whose data starts at `pos`;
    /// returns where the next marker starts.
    fn run_scan(&mut self, data: &[u8], pos: usize, scan: &Scan) -> Result<usize, DcError> {
        let frame = self
            .frame
            .as_mut()
            .ok_or(DcError::Corrupt("a scan before the frame header"))?;
        let progressive = frame.progressive;
        if progressive && scan.ss > 0 {
            // AC bands: nothing in them changes a block's average.
            return Ok(next_segment(data, pos));
        }
        if !progressive {
            for sc in &scan.components {
                if let Some(table) = self.ac_tables[sc.ac_table].as_mut() {
                    table.prepare_skipping();
                }
            }
        }
        // Refinements read one raw bit a block and need no table.
        let (dc_tables, ac_tables) = if progressive && scan.ah > 0 {
            (Vec::new(), Vec::new())
        } else {
            tables_for(scan, &self.dc_tables, &self.ac_tables, progressive)?
        };
        for sc in &scan.components {
            let c = &mut frame.components[sc.index];
            if c.quant.is_none() {
                c.quant = Some(
                    self.quant[c.quant_table]
                        .ok_or(DcError::Corrupt("a component has no quantisation table"))?,
                );
            }
        }
        let mut bits = Bits::new(data, pos);
        let restart = usize::from(self.restart_interval);
        if !progressive {
            // libjpeg only warns, and decodes as if they were absent.
            if scan.ss != 0 || scan.se != 63 || scan.ah != 0 || scan.al != 0 {
                return Err(DcError::Unsupported(
                    "a sequential scan with progressive parameters",
                ));
            }
            for sc in &scan.components {
                let c = &mut frame.components[sc.index];
                if c.seen {
                    return Err(DcError::Corrupt("a component is in two sequential scans"));
                }
                c.seen = true;
            }
            for_each_block(frame, scan, restart, &mut bits, |bits, i, pred, dc| {
                *pred = pred.wrapping_add(dc_difference(&dc_tables, i, bits)?);
                *dc = *pred as i16;
                ac_tables.get(i).ok_or(NO_TABLE)?.skip_ac(bits)
            })?;
        } else if scan.se != 0 {
            return Err(DcError::Corrupt(
                "a progressive DC scan with AC coefficients",
            ));
        } else if scan.ah == 0 {
            if scan.al > 13 {
                return Err(DcError::Corrupt("a DC point transform over 13"));
            }
            for sc in &scan.components {
                let c = &mut frame.components[sc.index];
                if c.seen {
                    return Err(DcError::Unsupported("a component in two first DC scans"));
                }
                c.seen = true;
                c.al = scan.al;
            }
            let al = scan.al;
            for_each_block(frame, scan, restart, &mut bits, |bits, i, pred, dc| {
                *pred = pred.wrapping_add(dc_difference(&dc_tables, i, bits)?);
                *dc = (*pred << al) as i16;
                Ok(())
            })?;
        } else {
            // A refinement adds one bit below the last one, so each
            // component has at most 13 of them: the bound on DC work.
            for sc in &scan.components {
                let c = &mut frame.components[sc.index];
                if !c.seen || scan.ah != c.al || scan.al + 1 != scan.ah {
                    return Err(DcError::Corrupt("a DC refinement out of sequence"));
                }
                c.al = scan.al;
            }
            let bit = 1i16 << scan.al;
            for_each_block(frame, scan, restart, &mut bits, |bits, _, _, dc| {
                bits.ensure();
                if bits.peek(1) != 0 {
                    *dc |= bit;
                }
                bits.consume(1);
                Ok(())
            })?;
        }
        Ok(bits.end_of_scan())
    }

    /// The image, once every scan is read.
    fn finish(self) -> Result<DcImage, DcError> {
        let frame = self.frame.ok_or(DcError::Corrupt("no frame header"))?;
        if frame.components.iter().any(|c| !c.seen) {
            return Err(DcError::Corrupt("a component has no scan"));
        }
        // libjpeg's rule: RGB when Adobe says no transform, or when the
        // component ids spell it and no JFIF marker says otherwise.
        let ids: Vec<u8> = frame.components.iter().map(|c| c.id).collect();
        let rgb = match self.adobe_transform {
            Some(t) => t == 0,
            None => !self.jfif && ids == b"RGB",
        };
        planes::pixels(&frame, rgb)
    }
}

const OUT_OF_PLANE: DcError = DcError::Corrupt("a block outside its plane");
const NO_TABLE: DcError = DcError::Corrupt("a scan uses an undefined Huffman table");

/// Resolves a scan's Huffman tables up front, one DC table per scan
/// component and (sequential only) one AC table.
fn tables_for<'t>(
    scan: &Scan,
    dc_tables: &'t [Option<Huffman>; 4],
    ac_tables: &'t [Option<Huffman>; 4],
    progressive: bool,
) -> Result<(Vec<&'t Huffman>, Vec<&'t Huffman>), DcError> {
    let mut dc = Vec::with_capacity(scan.components.len());
    let mut ac = Vec::with_capacity(scan.components.len());
    for sc in &scan.components {
        dc.push(dc_tables[sc.dc_table].as_ref().ok_or(NO_TABLE)?);
        if !progressive {
            ac.push(ac_tables[sc.ac_table].as_ref().ok_or(NO_TABLE)?);
        }
    }
    Ok((dc, ac))
}

/// Decodes one DC difference with the table of scan component `i`.
#[inline(always)]
fn dc_difference(tables: &[&Huffman], i: usize, bits: &mut Bits) -> Result<i32, DcError> {
    bits.ensure();
    let size = u32::from(tables.get(i).ok_or(NO_TABLE)?.decode(bits)?);
    if size > 15 {
        return Err(DcError::Corrupt("a DC difference over 15 bits"));
    }
    Ok(bits.receive_extend(size))
}

/// Reads the SOS segment at `pos`: the scan's components and parameters,
/// and where its entropy-coded data starts.
fn read_scan_header(data: &[u8], pos: usize, state: &mut State) -> Result<(Scan, usize), DcError> {
    let body = segment(data, pos)?;
    let frame = state
        .frame
        .as_ref()
        .ok_or(DcError::Corrupt("a scan before the frame header"))?;
    let count = usize::from(byte(body, 0)?);
    if count == 0 || count > 4 {
        return Err(DcError::Corrupt("a scan of no or over four components"));
    }
    let mut components: Vec<ScanComponent> = Vec::with_capacity(count);
    for i in 0..count {
        let id = byte(body, 1 + 2 * i)?;
        let tables = byte(body, 2 + 2 * i)?;
        let index = frame
            .components
            .iter()
            .position(|c| c.id == id)
            .ok_or(DcError::Corrupt("a scan names a component the frame lacks"))?;
        if components.iter().any(|c| c.index == index) {
            return Err(DcError::Corrupt("a scan names a component twice"));
        }
        let (dc_table, ac_table) = (usize::from(tables >> 4), usize::from(tables & 15));
        if dc_table > 3 || ac_table > 3 {
            return Err(DcError::Corrupt("a scan names a Huffman table over 3"));
        }
        components.push(ScanComponent {
            index,
            dc_table,
            ac_table,
        });
    }
    let at = 1 + 2 * count;
    let approximation = byte(body, at + 2)?;
    let scan = Scan {
        components,
        ss: byte(body, at)?,
        se: byte(body, at + 1)?,
        ah: approximation >> 4,
        al: approximation & 15,
    };
    // An MCU of more than ten blocks is outside the standard (B.2.3), and
    // bounds the work per MCU.
    let blocks: usize = scan
        .components
        .iter()
        .map(|sc| {
            let c = &frame.components[sc.index];
            c.h * c.v
        })
        .sum();
    if scan.components.len() > 1 && blocks > 10 {
        return Err(DcError::Corrupt("an MCU of more than ten blocks"));
    }
    Ok((scan, pos + 2 + body.len()))
}

/// Calls `block(bits, scan component, DC predictor, DC slot)` for every
/// block the scan codes, in coding order: MCU by MCU for an interleaved
/// scan, the component's own blocks in raster order for a single one.
/// Handles restart intervals (the predictors start again at 0).
fn for_each_block(
    frame: &mut Frame,
    scan: &Scan,
    restart_interval: usize,
    bits: &mut Bits,
    mut block: impl FnMut(&mut Bits, usize, &mut i32, &mut i16) -> Result<(), DcError>,
) -> Result<(), DcError> {
    let mut preds = [0i32; 4];
    let restart = |mcu: usize, bits: &mut Bits, preds: &mut [i32; 4]| {
        if restart_interval > 0 && mcu > 0 && mcu.is_multiple_of(restart_interval) {
            bits.restart();
            *preds = [0; 4];
        }
    };
    if let [only] = scan.components.as_slice() {
        let c = &mut frame.components[only.index];
        let mut mcu = 0;
        for by in 0..c.coded_h {
            for bx in 0..c.coded_w {
                restart(mcu, bits, &mut preds);
                mcu += 1;
                let slot = c.dc.get_mut(by * c.blocks_w + bx).ok_or(OUT_OF_PLANE)?;
                block(bits, 0, &mut preds[0], slot)?;
            }
        }
        return Ok(());
    }
    // The blocks of one MCU: (scan component, component, x, y) offsets.
    let mut layout = Vec::new();
    for (i, sc) in scan.components.iter().enumerate() {
        let c = &frame.components[sc.index];
        for dy in 0..c.v {
            for dx in 0..c.h {
                layout.push((i, sc.index, dx, dy));
            }
        }
    }
    let mut mcu = 0;
    for my in 0..frame.mcus_h {
        for mx in 0..frame.mcus_w {
            restart(mcu, bits, &mut preds);
            mcu += 1;
            for &(i, index, dx, dy) in &layout {
                let c = &mut frame.components[index];
                let at = (my * c.v + dy) * c.blocks_w + mx * c.h + dx;
                let slot = c.dc.get_mut(at).ok_or(OUT_OF_PLANE)?;
                block(bits, i, &mut preds[i], slot)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
