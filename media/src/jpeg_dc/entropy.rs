//! The entropy-coded data: a bit reader over a scan, and Huffman tables
//! that decode a symbol, or skip several AC coefficients, in one lookup.
//!
//! The reader never looks past a marker: at one (or at the end of the
//! data) it feeds zero bits, as libjpeg does, so a scan cut short decodes
//! as flat blocks instead of reading the next segment as pixels. Every
//! loop over the data is bounded by the frame's block count, never by
//! what the bits say.

use super::DcError;

/// Bits of lookahead the tables resolve in one step. Ten covers nearly
/// every code of real files (libjpeg uses eight; ten trades 2 KiB a table
/// for fewer slow lookups).
const LOOKUP: u32 = 10;

/// Bits of lookahead for skipping several AC coefficients at once. Their
/// codes and values average about 5 bits in photos, so twelve bits hold
/// two or three; a larger table would not stay in the L1 cache beside
/// the second AC table.
const MULTI: u32 = 12;

/// A [`Huffman::multi`] entry with a prefix no block position passes: the
/// skip loop takes its slow paths.
const NO_RUN: u32 = 0xFF << 8;

/// A bit reader over entropy-coded bytes, undoing the 0xFF00 stuffing.
pub(super) struct Bits<'a> {
    data: &'a [u8],
    /// The next byte to load into `acc`.
    pos: usize,
    /// Loaded bits, most significant first; the bits below `n` are zero.
    acc: u64,
    /// How many bits of `acc` are loaded.
    n: u32,
    /// A marker (or the end of the data) is at `pos`: feed zeros.
    at_marker: bool,
}

impl<'a> Bits<'a> {
    /// A reader of the scan whose data starts at `pos`.
    pub(super) fn new(data: &'a [u8], pos: usize) -> Self {
        Self {
            data,
            pos,
            acc: 0,
            n: 0,
            at_marker: false,
        }
    }

    /// Makes sure 32 bits are loaded, enough for one Huffman code (at most
    /// 16 bits) and the extra bits after it (at most 15).
    #[inline(always)]
    pub(super) fn ensure(&mut self) {
        if self.n < 32 {
            self.refill();
        }
    }

    #[inline(always)]
    fn refill(&mut self) {
        // Fast path: eight bytes with no 0xFF among them (no stuffing, no
        // marker) are loaded with one read.
        if !self.at_marker {
            let word = self
                .data
                .get(self.pos..)
                .and_then(|rest| rest.first_chunk::<8>());
            if let Some(word) = word {
                let w = u64::from_be_bytes(*word);
                let inverted = !w;
                let has_ff = inverted.wrapping_sub(0x0101_0101_0101_0101)
                    & !inverted
                    & 0x8080_8080_8080_8080
                    != 0;
                if !has_ff {
                    // n < 32 here, so 4 ≤ bytes ≤ 8 and no shift reaches 64.
                    let bytes = (64 - self.n) / 8;
                    self.acc |= (w >> (64 - 8 * bytes)) << (64 - self.n - 8 * bytes);
                    self.pos += bytes as usize;
                    self.n += 8 * bytes;
                    return;
                }
            }
        }
        self.refill_bytewise();
    }

    /// The slow refill, near a marker or stuffed byte or the data's end.
    #[inline(never)]
    fn refill_bytewise(&mut self) {
        while self.n <= 56 {
            let byte = self.next_byte();
            self.acc |= u64::from(byte) << (56 - self.n);
            self.n += 8;
        }
    }

    fn next_byte(&mut self) -> u8 {
        if self.at_marker {
            return 0;
        }
        match self.data.get(self.pos) {
            Some(&0xFF) if self.data.get(self.pos + 1) == Some(&0x00) => {
                self.pos += 2;
                0xFF
            }
            Some(&byte) if byte != 0xFF => {
                self.pos += 1;
                byte
            }
            // A marker, or the end of the data.
            _ => {
                self.at_marker = true;
                0
            }
        }
    }

    /// The next `count` bits (1 to 32) without consuming them.
    #[inline(always)]
    pub(super) fn peek(&self, count: u32) -> u32 {
        (self.acc >> (64 - count)) as u32
    }

    /// Drops `count` bits (at most what `ensure` loaded).
    #[inline(always)]
    pub(super) fn consume(&mut self, count: u32) {
        self.acc <<= count;
        self.n -= count;
    }

    /// Reads `size` bits (0 to 15) as a coefficient difference, sign
    /// extended as the standard says (F.2.2.1).
    #[inline(always)]
    pub(super) fn receive_extend(&mut self, size: u32) -> i32 {
        if size == 0 {
            return 0;
        }
        let v = self.peek(size) as i32;
        self.consume(size);
        if v < 1 << (size - 1) {
            v - (1 << size) + 1
        } else {
            v
        }
    }

    /// At a restart point: drops the padding bits and steps over the RSTn
    /// marker. A missing RST leaves the reader feeding zeros until the
    /// scan's blocks run out, libjpeg's answer to the same damage.
    pub(super) fn restart(&mut self) {
        self.acc = 0;
        self.n = 0;
        // The loaded bytes never include a marker, so the next one is at
        // or after `pos`.
        match find_marker(self.data, self.pos) {
            Some(at) if matches!(self.data.get(at + 1), Some(0xD0..=0xD7)) => {
                self.pos = at + 2;
                self.at_marker = false;
            }
            Some(at) => {
                self.pos = at;
                self.at_marker = true;
            }
            None => {
                self.pos = self.data.len();
                self.at_marker = true;
            }
        }
    }

    /// Where the marker that ends this scan starts (the data's end if none).
    pub(super) fn end_of_scan(&self) -> usize {
        next_segment(self.data, self.pos)
    }
}

/// The position of the first marker at or after `from` (an 0xFF followed by
/// a byte that is neither stuffing nor fill), restart markers included.
fn find_marker(data: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    loop {
        let ff = at + memchr::memchr(0xFF, data.get(at..)?)?;
        match data.get(ff + 1) {
            Some(0x00) => at = ff + 2,
            Some(0xFF) => at = ff + 1,
            Some(_) => return Some(ff),
            None => return None,
        }
    }
}

/// The position of the first marker at or after `from` that is not a
/// restart marker: where the segment after a scan begins. Used both to
/// end a decoded scan and to step over a scan without decoding it.
pub(super) fn next_segment(data: &[u8], from: usize) -> usize {
    let mut at = from;
    while let Some(m) = find_marker(data, at) {
        if matches!(data.get(m + 1), Some(0xD0..=0xD7)) {
            at = m + 2;
        } else {
            return m;
        }
    }
    data.len()
}

/// A Huffman table (one DHT entry), built for decoding symbols and, for AC
/// tables, for skipping coefficients.
pub(super) struct Huffman {
    /// Indexed by the next [`LOOKUP`] bits: `length << 8 | symbol` for a
    /// code of at most that length, 0 for a longer code.
    fast: Box<[u16; 1 << LOOKUP]>,
    /// Indexed the same way: `(run + 1) << 8 | (length + size)` — the bits
    /// one AC coefficient takes, code and value together, and how far it
    /// moves in the block (64 for end-of-block); 0 for a longer code.
    skip: Box<[u16; 1 << LOOKUP]>,
    /// Indexed by the next [`MULTI`] bits: the AC coefficients whose codes
    /// lie inside them, as many as there are (see [`Huffman::multi_entry`]);
    /// all [`NO_RUN`] until [`Huffman::prepare_skipping`].
    multi: Box<[u32; 1 << MULTI]>,
    multi_ready: bool,
    /// The largest code of each length (index 1 to 16), or -1.
    max_code: [i32; 17],
    /// `symbols` index of each length's first code, minus that code.
    offset: [i32; 17],
    symbols: Vec<u8>,
}

impl Huffman {
    /// Builds the table from a DHT's 16 counts and its symbols (Annex C).
    pub(super) fn new(counts: &[u8; 16], symbols: &[u8]) -> Result<Self, DcError> {
        let mut max_code = [-1i32; 17];
        let mut offset = [0i32; 17];
        let mut fast = Box::new([0u16; 1 << LOOKUP]);
        let mut skip = Box::new([0u16; 1 << LOOKUP]);
        let mut code: u32 = 0;
        let mut k: usize = 0;
        for len in 1..=16u32 {
            let count = usize::from(counts[len as usize - 1]);
            offset[len as usize] = k as i32 - code as i32;
            for _ in 0..count {
                // More codes than the length allows: not a prefix code,
                // and indexing by it would run off the tables.
                if code >= 1 << len {
                    return Err(DcError::Corrupt("a Huffman table is over-subscribed"));
                }
                let symbol = *symbols
                    .get(k)
                    .ok_or(DcError::Corrupt("a Huffman table lacks symbols"))?;
                if len <= LOOKUP {
                    let shift = LOOKUP - len;
                    let first = (code << shift) as usize;
                    let (run, size) = (u32::from(symbol >> 4), u32::from(symbol & 15));
                    let advance = match (run, size) {
                        (15, 0) => 16,
                        (_, 0) => 64, // end of block
                        _ => run + 1,
                    };
                    let fast_entry = (len << 8 | u32::from(symbol)) as u16;
                    let skip_entry = (advance << 8 | (len + size)) as u16;
                    for i in first..first + (1 << shift) {
                        fast[i] = fast_entry;
                        skip[i] = skip_entry;
                    }
                }
                code += 1;
                k += 1;
            }
            if count > 0 {
                max_code[len as usize] = code as i32 - 1;
            }
            code <<= 1;
        }
        Ok(Self {
            fast,
            skip,
            multi: Box::new([NO_RUN; 1 << MULTI]),
            multi_ready: false,
            max_code,
            offset,
            symbols: symbols.to_vec(),
        })
    }

    /// Fills [`Huffman::multi`], once, for a table that AC coefficients
    /// will be skipped with (DC tables and progressive files never are).
    pub(super) fn prepare_skipping(&mut self) {
        if self.multi_ready {
            return;
        }
        for i in 0..1 << MULTI {
            self.multi[i] = self.multi_entry(i as u32);
        }
        self.multi_ready = true;
    }

    /// The entry of [`Huffman::multi`] for the lookahead bits `bits`:
    /// `all << 16 | prefix << 8 | length`, where `length` is the bits the
    /// coefficients starting there take, codes and values, `all` how far
    /// they move in the block together and `prefix` how far all but the
    /// last do. The run stops after an end of block, since what follows
    /// belongs to the next block.
    fn multi_entry(&self, bits: u32) -> u32 {
        let (mut used, mut all, mut prefix) = (0u32, 0u32, 0u32);
        // Codes must lie inside the window; the value bits of the last
        // coefficient may run past it (they are skipped unseen), so an
        // entry spans up to MULTI + 15 bits, which the caller checks are
        // loaded.
        while used < MULTI {
            let Some((len, symbol)) = self.code_at(bits, used) else {
                break;
            };
            let (run, size) = (u32::from(symbol >> 4), u32::from(symbol & 15));
            let advance = match (run, size) {
                (15, 0) => 16,
                (_, 0) => 64,
                _ => run + 1,
            };
            used += len + size;
            prefix = all;
            all += advance;
            if all >= 64 {
                break;
            }
        }
        if used == 0 {
            return NO_RUN;
        }
        all.min(127) << 16 | prefix << 8 | used
    }

    /// The code starting `from` bits into the [`MULTI`]-bit `bits`, if a
    /// whole one of at most [`LOOKUP`] bits is there: its length and
    /// symbol. (Longer codes are left to the slow path.)
    fn code_at(&self, bits: u32, from: u32) -> Option<(u32, u8)> {
        let window = (bits << from) & ((1 << MULTI) - 1);
        let entry = self.fast[(window >> (MULTI - LOOKUP)) as usize];
        let len = u32::from(entry >> 8);
        (entry != 0 && len <= MULTI - from).then_some((len, entry as u8))
    }

    /// Decodes one symbol; `bits` must have been `ensure`d.
    #[inline(always)]
    pub(super) fn decode(&self, bits: &mut Bits) -> Result<u8, DcError> {
        let entry = self.fast[bits.peek(LOOKUP) as usize];
        if entry != 0 {
            bits.consume(u32::from(entry >> 8));
            return Ok(entry as u8);
        }
        self.decode_long(bits)
    }

    /// Codes longer than [`LOOKUP`], one length at a time (F.2.2.3).
    #[inline(never)]
    fn decode_long(&self, bits: &mut Bits) -> Result<u8, DcError> {
        let code16 = bits.peek(16) as i32;
        for len in LOOKUP + 1..=16 {
            let code = code16 >> (16 - len);
            if code <= self.max_code[len as usize] {
                bits.consume(len);
                let index = self.offset[len as usize] + code;
                return usize::try_from(index)
                    .ok()
                    .and_then(|i| self.symbols.get(i).copied())
                    .ok_or(DcError::Corrupt("a Huffman code has no symbol"));
            }
        }
        Err(DcError::Corrupt("a Huffman code matches no table entry"))
    }

    /// Steps over the AC coefficients of one block (positions 1 to 63)
    /// without computing them: only their bit lengths and runs matter when
    /// the block is reduced to its DC term. The hottest loop of the
    /// module: the reader's state is kept in registers between refills.
    #[inline(always)]
    pub(super) fn skip_ac(&self, bits: &mut Bits) -> Result<(), DcError> {
        let mut k = 1u32;
        let (mut acc, mut n) = (bits.acc, bits.n);
        while k < 64 {
            if n < MULTI {
                (bits.acc, bits.n) = (acc, n);
                bits.refill();
                (acc, n) = (bits.acc, bits.n);
            }
            let lookahead = (acc >> (64 - MULTI)) as usize;
            let entry = self.multi[lookahead];
            let used = entry & 0xFF;
            // All the coefficients but the last must start inside the
            // block, and the last one's value bits must be loaded.
            if k + (entry >> 8 & 0xFF) < 64 && used <= n {
                acc <<= used;
                n -= used;
                k += entry >> 16;
                continue;
            }
            if n < 32 {
                (bits.acc, bits.n) = (acc, n);
                bits.refill();
                (acc, n) = (bits.acc, bits.n);
                continue;
            }
            // Near the end of the block, or a code over LOOKUP bits: one
            // coefficient at a time.
            let entry = self.skip[lookahead >> (MULTI - LOOKUP)];
            if entry != 0 {
                let used = u32::from(entry & 0xFF);
                acc <<= used;
                n -= used;
                k += u32::from(entry >> 8);
                continue;
            }
            (bits.acc, bits.n) = (acc, n);
            let symbol = self.decode_long(bits)?;
            let (run, size) = (u32::from(symbol >> 4), u32::from(symbol & 15));
            match (run, size) {
                (15, 0) => k += 16,
                (_, 0) => k = 64,
                _ => {
                    bits.consume(size);
                    k += run + 1;
                }
            }
            (acc, n) = (bits.acc, bits.n);
        }
        (bits.acc, bits.n) = (acc, n);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table with codes 0 (len 1, symbol 0x00), 10 (len 2, symbol 0x01)
    /// and 11 (len 2, symbol 0xF0).
    fn small() -> Huffman {
        let mut counts = [0u8; 16];
        counts[0] = 1;
        counts[1] = 2;
        Huffman::new(&counts, &[0x00, 0x01, 0xF0]).expect("valid table")
    }

    #[test]
    fn decodes_canonical_codes() {
        let table = small();
        // 0 | 10 | 11 | padding
        let data = [0b0101_1000u8, 0, 0, 0, 0, 0, 0, 0];
        let mut bits = Bits::new(&data, 0);
        bits.ensure();
        assert_eq!(table.decode(&mut bits).ok(), Some(0x00));
        assert_eq!(table.decode(&mut bits).ok(), Some(0x01));
        assert_eq!(table.decode(&mut bits).ok(), Some(0xF0));
    }

    #[test]
    fn refuses_an_over_subscribed_table() {
        let mut counts = [0u8; 16];
        counts[0] = 3;
        assert!(Huffman::new(&counts, &[1, 2, 3]).is_err());
    }

    #[test]
    fn unstuffs_and_stops_at_markers() {
        let data = [0xFF, 0x00, 0x12, 0xFF, 0xD9, 0x34];
        let mut bits = Bits::new(&data, 0);
        bits.ensure();
        assert_eq!(bits.peek(16), 0xFF12);
        bits.consume(16);
        // Past the marker: zeros, and the byte after it is never read.
        assert_eq!(bits.peek(16), 0);
        assert_eq!(bits.end_of_scan(), 3);
    }

    #[test]
    fn restart_steps_over_rst_markers() {
        let data = [0xAB, 0xFF, 0xD3, 0xCD, 0xFF, 0xD9];
        let mut bits = Bits::new(&data, 0);
        bits.ensure();
        bits.consume(8);
        bits.restart();
        bits.ensure();
        assert_eq!(bits.peek(8), 0xCD);
        assert_eq!(next_segment(&data, 0), 4);
    }

    #[test]
    fn receive_extend_follows_the_standard() {
        // 3-bit values: 000 is -7, 011 is -4, 100 is 4, 111 is 7.
        let data = [0b0000_1110u8, 0b0111_0000, 0, 0, 0, 0, 0, 0];
        let mut bits = Bits::new(&data, 0);
        bits.ensure();
        assert_eq!(bits.receive_extend(3), -7);
        assert_eq!(bits.receive_extend(3), -4);
        assert_eq!(bits.receive_extend(3), 4);
        assert_eq!(bits.receive_extend(3), 7);
    }
}
