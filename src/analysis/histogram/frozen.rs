//! The frozen form of a latency histogram for closed time slots: a layout byte, runs of
//! nearly consecutive buckets, and their counts as varints, nibbles or Rice codes
//! (optionally divided by a common unit), read back bucket by bucket.

use super::rice::{self, Form};
use super::LatencyHistogram;

impl LatencyHistogram {
    /// Encodes the populated buckets compactly for a closed time slot (see
    /// [`FrozenHistogram`] for the layout).
    pub fn freeze(&self) -> FrozenHistogram {
        let mut bytes = Vec::with_capacity(self.counts.len() + 8);
        self.freeze_into(&mut bytes);
        FrozenHistogram {
            bytes: bytes.into_boxed_slice(),
            total: self.total,
        }
    }

    /// Appends the [`FrozenHistogram`] encoding of the populated buckets to `bytes` (the
    /// count is not written: it is the sum of the buckets), in whichever count layout is
    /// smallest (varints, nibbles, or one of the Rice codes). Read back with
    /// [`frozen_buckets`].
    pub fn freeze_into(&self, bytes: &mut Vec<u8>) {
        self.freeze_as(bytes, None);
    }

    /// The same in a given layout (`byte` as [`Layout::byte`] writes it), for tests.
    #[cfg(test)]
    pub(super) fn freeze_in_layout(&self, byte: u8) -> Vec<u8> {
        let mut bytes = Vec::new();
        self.freeze_as(&mut bytes, Some(Layout::of_byte(byte)));
        bytes
    }

    /// Appends the encoding in `layout`, or in the smallest one.
    fn freeze_as(&self, bytes: &mut Vec<u8>, layout: Option<Layout>) {
        let runs = self.runs();
        if runs.is_empty() {
            return;
        }
        // Calls kept one in 2^k under thinning count 2^k each: stored divided, they are as
        // small as unthinned ones.
        let all = runs.iter().flat_map(|&(i, end)| i..end);
        let unit = all.clone().map(|j| self.counts.get(j)).fold(0, gcd).max(1);
        let counts: Vec<u64> = all.map(|j| self.counts.get(j) / unit).collect();
        let lens: Vec<usize> = runs.iter().map(|&(i, end)| end - i).collect();
        let layout = layout.unwrap_or_else(|| Layout::smallest(&counts, &lens));
        let divided = if unit > 1 { DIVIDED } else { 0 };
        bytes.push(layout.byte() | divided);
        if unit > 1 {
            put_varint(bytes, unit);
        }
        let (mut prev_end, mut at) = (0usize, 0usize);
        for (i, end) in runs {
            let start = self.offset as usize + i;
            put_varint(bytes, (start - prev_end) as u64);
            put_varint(bytes, (end - i) as u64);
            let run = &counts[at..at + end - i];
            match layout {
                Layout::Bytes => run.iter().for_each(|&c| put_varint(bytes, c)),
                Layout::Nibbles => put_nibbles(bytes, run.iter().copied()),
                Layout::Rice(form, k) => {
                    let mut w = rice::BitWriter::new(bytes);
                    rice::values(run, form).for_each(|z| w.code(z, k));
                    w.finish();
                }
            }
            prev_end = self.offset as usize + end;
            at += end - i;
        }
    }

    /// The runs to encode: (first position, end position), in order.
    fn runs(&self) -> Vec<(usize, usize)> {
        let (mut runs, mut i, len) = (Vec::new(), 0usize, self.counts.len());
        while i < len {
            if self.counts.get(i) == 0 {
                i += 1;
                continue;
            }
            let end = self.run_end(i);
            runs.push((i, end));
            i = end;
        }
        runs
    }

    /// End (exclusive) of the run starting at populated position `i`: it stops before the
    /// first stretch of more than [`MAX_RUN_GAP`] empty buckets, and ends on a populated one.
    fn run_end(&self, i: usize) -> usize {
        let (mut last, mut j) = (i, i + 1);
        while j < self.counts.len() && j - last <= MAX_RUN_GAP + 1 {
            if self.counts.get(j) > 0 {
                last = j;
            }
            j += 1;
        }
        last + 1
    }
}

/// Empty buckets tolerated inside a run: a zero costs one byte, a new run at least two.
const MAX_RUN_GAP: usize = 2;

/// First byte of a frozen histogram: its counts are LEB128 varints.
pub(super) const BYTES: u8 = 0;
/// First byte of a frozen histogram: its counts are 4-bit nibbles.
pub(super) const NIBBLES: u8 = 1;
/// Flag of the layout byte: every count is a multiple of the varint that follows it, and is
/// stored divided by it.
pub(super) const DIVIDED: u8 = 2;
/// A nibble of 15 says the count is 15 or more, the rest following as a varint.
const NIBBLE_ESCAPE: u64 = 15;
/// Flag of the layout byte: the counts are Rice codes (see [`rice`]) with the parameter in
/// the byte's bits 4 to 6.
pub(super) const RICE: u8 = 4;
/// Flag of the layout byte, with [`RICE`]: the codes are of each count's difference from
/// the bucket before it.
pub(super) const DELTA: u8 = 8;
/// Largest Rice parameter tried.
const MAX_K: u32 = 7;

/// How a frozen histogram's counts are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    Bytes,
    Nibbles,
    Rice(Form, u32),
}

impl Layout {
    /// The layout that writes these counts (runs of `lens`) in the fewest bytes; on a tie,
    /// the one read fastest (bytes, then nibbles).
    fn smallest(counts: &[u64], lens: &[usize]) -> Layout {
        let as_bytes: usize = counts.iter().map(|&c| varint_len(c)).sum();
        let escaped: usize = counts
            .iter()
            .filter(|&&c| c >= NIBBLE_ESCAPE)
            .map(|&c| varint_len(c - NIBBLE_ESCAPE))
            .sum();
        let as_nibbles = lens.iter().map(|l| l.div_ceil(2)).sum::<usize>() + escaped;
        let mut best = (as_bytes, Layout::Bytes);
        if as_nibbles < best.0 {
            best = (as_nibbles, Layout::Nibbles);
        }
        let mut bits = [0usize; MAX_K as usize + 1];
        for form in [Form::Raw, Form::Delta] {
            let mut size = [0usize; MAX_K as usize + 1];
            let mut at = 0;
            for &len in lens {
                bits.fill(0);
                for z in rice::values(&counts[at..at + len], form) {
                    for (k, b) in bits.iter_mut().enumerate() {
                        *b += rice::code_bits(z, k as u32);
                    }
                }
                for (s, b) in size.iter_mut().zip(&bits) {
                    *s += b.div_ceil(8);
                }
                at += len;
            }
            for (k, &s) in size.iter().enumerate() {
                if s < best.0 {
                    best = (s, Layout::Rice(form, k as u32));
                }
            }
        }
        best.1
    }

    /// The layout byte (without [`DIVIDED`]).
    fn byte(self) -> u8 {
        match self {
            Layout::Bytes => BYTES,
            Layout::Nibbles => NIBBLES,
            Layout::Rice(Form::Raw, k) => RICE | (k as u8) << 4,
            Layout::Rice(Form::Delta, k) => RICE | DELTA | (k as u8) << 4,
        }
    }

    fn of_byte(b: u8) -> Layout {
        if b & RICE != 0 {
            let form = if b & DELTA != 0 {
                Form::Delta
            } else {
                Form::Raw
            };
            Layout::Rice(form, u32::from(b >> 4) & MAX_K)
        } else if b & NIBBLES != 0 {
            Layout::Nibbles
        } else {
            Layout::Bytes
        }
    }
}

/// An immutable histogram for closed slots: a layout byte, then runs of nearly
/// consecutive buckets, each as LEB128 varints `gap from the previous run's end, run
/// length` and the run's counts (zeros inside a run for short holes). The counts are
/// varints (one byte below 128) or, when that is smaller, nibbles two to a byte followed by
/// the run's escaped counts (`count - 15` as varints): short slots and thin streams count
/// mostly 1 to 3 per bucket, which nibbles hold in half a byte. Or, when smaller still,
/// Rice codes of the counts or of their differences along the run (see [`rice`]), each
/// run's codes padded to a whole byte: a full slot's counts are tens per bucket and close
/// to their neighbours', a few bits of difference each. When every count is a
/// multiple of some unit above 1 (calls weighted by the graph's thinning), the layout byte
/// says so, the unit follows it and the counts are stored divided by it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FrozenHistogram {
    pub(super) bytes: Box<[u8]>,
    total: u64,
}

impl FrozenHistogram {
    pub fn count(&self) -> u64 {
        self.total
    }

    /// Populated buckets as (bucket index, count), in increasing value order.
    pub fn buckets(&self) -> FrozenBuckets<'_> {
        frozen_buckets(&self.bytes)
    }

    pub fn heap_bytes(&self) -> usize {
        self.bytes.len()
    }
}

/// The populated buckets of bytes written by [`LatencyHistogram::freeze_into`], as
/// (bucket index, count) in increasing value order.
pub fn frozen_buckets(bytes: &[u8]) -> FrozenBuckets<'_> {
    let layout = bytes.first().copied().unwrap_or(BYTES);
    let mut pos = 1;
    let unit = if layout & DIVIDED != 0 {
        get_varint(bytes, &mut pos)
    } else {
        1
    };
    let layout = Layout::of_byte(layout);
    FrozenBuckets {
        layout,
        unit,
        bytes,
        pos,
        idx: 0,
        left_in_run: 0,
        nibble_at: 0,
        nibble: 0,
        bit: 0,
        decoder: rice::Decoder::new(match layout {
            Layout::Rice(form, _) => form,
            _ => Form::Raw,
        }),
    }
}

/// Iterator over a frozen histogram's buckets.
pub struct FrozenBuckets<'a> {
    bytes: &'a [u8],
    layout: Layout,
    /// What one stored count stands for.
    unit: u64,
    /// Next varint to read: a run header, a count, or (nibbles) an escaped count.
    pos: usize,
    /// Index of the next bucket to read.
    idx: u32,
    left_in_run: u64,
    /// Nibble layout: the byte offset of the run's nibbles and the next one's position.
    nibble_at: usize,
    nibble: usize,
    /// Rice layout: the bit position of the run's next code, and its differences' sum.
    bit: usize,
    decoder: rice::Decoder,
}

impl FrozenBuckets<'_> {
    /// Reads the next count of the current run.
    #[inline]
    fn count(&mut self) -> u64 {
        match self.layout {
            Layout::Bytes => return get_varint(self.bytes, &mut self.pos),
            Layout::Rice(_, k) => {
                let z = rice::read_code(self.bytes, &mut self.bit, k);
                return self.decoder.count(z);
            }
            Layout::Nibbles => {}
        }
        let b = self.bytes[self.nibble_at + self.nibble / 2];
        let n = if self.nibble % 2 == 0 {
            b & 0xf
        } else {
            b >> 4
        } as u64;
        self.nibble += 1;
        if n < NIBBLE_ESCAPE {
            n
        } else {
            NIBBLE_ESCAPE + get_varint(self.bytes, &mut self.pos)
        }
    }
}

impl Iterator for FrozenBuckets<'_> {
    type Item = (u16, u64);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.left_in_run == 0 {
                if self.pos >= self.bytes.len() {
                    return None;
                }
                self.idx += get_varint(self.bytes, &mut self.pos) as u32;
                self.left_in_run = get_varint(self.bytes, &mut self.pos);
                match self.layout {
                    Layout::Nibbles => {
                        // The escaped counts follow the run's nibbles.
                        (self.nibble_at, self.nibble) = (self.pos, 0);
                        self.pos += (self.left_in_run as usize).div_ceil(2);
                    }
                    Layout::Rice(..) => {
                        self.bit = self.pos * 8;
                        self.decoder.start_run();
                    }
                    Layout::Bytes => {}
                }
                continue;
            }
            let count = self.count();
            let idx = self.idx as u16;
            self.idx += 1;
            self.left_in_run -= 1;
            if self.left_in_run == 0 && matches!(self.layout, Layout::Rice(..)) {
                // The run's codes end on a byte boundary; the next run's header follows.
                self.pos = self.bit.div_ceil(8);
            }
            if count > 0 {
                return Some((idx, count * self.unit));
            }
        }
    }
}

/// Appends counts as nibbles, two to a byte (low first), then the escaped ones' rest.
fn put_nibbles(out: &mut Vec<u8>, counts: impl Iterator<Item = u64> + Clone) {
    let mut pending: Option<u8> = None;
    for c in counts.clone() {
        let n = c.min(NIBBLE_ESCAPE) as u8;
        match pending.take() {
            None => pending = Some(n),
            Some(low) => out.push(low | (n << 4)),
        }
    }
    if let Some(low) = pending {
        out.push(low);
    }
    for c in counts.filter(|c| *c >= NIBBLE_ESCAPE) {
        put_varint(out, c - NIBBLE_ESCAPE);
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Bytes of `v` as a LEB128 varint.
fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// Appends `v` as a LEB128 varint (the frozen encodings here and in `slot_log`).
pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a LEB128 varint written by [`put_varint`] at `pos`, advancing it.
pub(crate) fn get_varint(bytes: &[u8], pos: &mut usize) -> u64 {
    let mut v = 0u64;
    let mut shift = 0;
    // Invariant: only `put_varint` wrote these bytes, so every varint is complete.
    while let Some(&b) = bytes.get(*pos) {
        *pos += 1;
        v |= ((b & 0x7f) as u64) << shift;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    v
}
