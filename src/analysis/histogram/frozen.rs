//! The frozen form of a latency histogram for closed time slots: a layout byte, runs of
//! nearly consecutive buckets, and their counts as varints or nibbles (optionally divided
//! by a common unit), read back bucket by bucket.

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
    /// count is not written: it is the sum of the buckets), in whichever of the two count
    /// layouts is smaller. Read back with [`frozen_buckets`].
    pub fn freeze_into(&self, bytes: &mut Vec<u8>) {
        let runs = self.runs();
        if runs.is_empty() {
            return;
        }
        let all = || {
            runs.iter()
                .flat_map(|&(i, end)| i..end)
                .map(|j| self.counts.get(j))
        };
        // Calls kept one in 2^k under thinning count 2^k each: stored divided, they are as
        // small as unthinned ones.
        let unit = all().fold(0, gcd).max(1);
        let (mut as_bytes, mut as_nibbles) = (0, 0);
        for &(i, end) in &runs {
            as_nibbles += (end - i).div_ceil(2);
        }
        for c in all().map(|c| c / unit) {
            as_bytes += varint_len(c);
            if c >= NIBBLE_ESCAPE {
                as_nibbles += varint_len(c - NIBBLE_ESCAPE);
            }
        }
        let nibbles = as_nibbles < as_bytes;
        let divided = if unit > 1 { DIVIDED } else { 0 };
        bytes.push(if nibbles { NIBBLES } else { BYTES } | divided);
        if unit > 1 {
            put_varint(bytes, unit);
        }
        let mut prev_end = 0usize;
        for (i, end) in runs {
            let start = self.offset as usize + i;
            put_varint(bytes, (start - prev_end) as u64);
            put_varint(bytes, (end - i) as u64);
            let counts = (i..end).map(|j| self.counts.get(j) / unit);
            if nibbles {
                put_nibbles(bytes, counts);
            } else {
                counts.for_each(|c| put_varint(bytes, c));
            }
            prev_end = self.offset as usize + end;
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

/// An immutable histogram for closed slots: a layout byte, then runs of nearly
/// consecutive buckets, each as LEB128 varints `gap from the previous run's end, run
/// length` and the run's counts (zeros inside a run for short holes). The counts are
/// varints (one byte below 128) or, when that is smaller, nibbles two to a byte followed by
/// the run's escaped counts (`count - 15` as varints): short slots and thin streams count
/// mostly 1 to 3 per bucket, which nibbles hold in half a byte. When every count is a
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
    FrozenBuckets {
        nibbles: layout & NIBBLES != 0,
        unit,
        bytes,
        pos,
        idx: 0,
        left_in_run: 0,
        nibble_at: 0,
        nibble: 0,
    }
}

/// Iterator over a frozen histogram's buckets.
pub struct FrozenBuckets<'a> {
    bytes: &'a [u8],
    nibbles: bool,
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
}

impl FrozenBuckets<'_> {
    /// Reads the next count of the current run.
    #[inline]
    fn count(&mut self) -> u64 {
        if !self.nibbles {
            return get_varint(self.bytes, &mut self.pos);
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
                if self.nibbles {
                    // The escaped counts follow the run's nibbles.
                    (self.nibble_at, self.nibble) = (self.pos, 0);
                    self.pos += (self.left_in_run as usize).div_ceil(2);
                }
                continue;
            }
            let count = self.count();
            let idx = self.idx as u16;
            self.idx += 1;
            self.left_in_run -= 1;
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
