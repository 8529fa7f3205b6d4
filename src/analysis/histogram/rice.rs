//! Rice codes for the counts of a frozen histogram: a count (or, in the delta form, the
//! zigzagged difference from the bucket before it) `z` is written as `z >> k` in unary and
//! its `k` low bits, least significant bit first. A full slot's dense counts (tens per
//! bucket, close to their neighbours') take five to six bits this way against a varint
//! byte, and a thin slot's ones and twos two or three bits against a nibble.

/// Unary prefixes this long are an escape: seven bits of `z`'s bit length and `z` follow.
pub(super) const ESCAPE: u32 = 16;

/// The two value forms: the counts themselves, or each count's difference from the one
/// before it in its run (the first from zero), zigzagged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Form {
    Raw,
    Delta,
}

/// The coded values of one run's counts in `form`.
pub(super) fn values(counts: &[u64], form: Form) -> impl Iterator<Item = u64> + '_ {
    let mut prev = 0u64;
    counts.iter().map(move |&c| match form {
        Form::Raw => c,
        Form::Delta => {
            let d = c.wrapping_sub(prev) as i64;
            prev = c;
            zigzag(d)
        }
    })
}

fn zigzag(d: i64) -> u64 {
    ((d << 1) ^ (d >> 63)) as u64
}

fn unzigzag(z: u64) -> i64 {
    (z >> 1) as i64 ^ -((z & 1) as i64)
}

/// Bits of `z`'s code with parameter `k`.
#[inline]
pub(super) fn code_bits(z: u64, k: u32) -> usize {
    let q = z >> k;
    if q < ESCAPE as u64 {
        (q as u32 + 1 + k) as usize
    } else {
        (ESCAPE + 7 + (64 - z.leading_zeros())) as usize
    }
}

/// Appends bits to a byte vector, least significant first.
pub(super) struct BitWriter<'a> {
    out: &'a mut Vec<u8>,
    acc: u64,
    n: u32,
}

impl<'a> BitWriter<'a> {
    pub(super) fn new(out: &'a mut Vec<u8>) -> Self {
        Self { out, acc: 0, n: 0 }
    }

    /// Appends the low `bits` (at most 32) of `v`.
    fn put(&mut self, v: u64, bits: u32) {
        debug_assert!(bits <= 32);
        if bits == 0 {
            return;
        }
        self.acc |= (v & mask(bits)) << self.n;
        self.n += bits;
        while self.n >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.n -= 8;
        }
    }

    /// Appends `z`'s code with parameter `k`.
    pub(super) fn code(&mut self, z: u64, k: u32) {
        let q = z >> k;
        if q < ESCAPE as u64 {
            // q ones and the terminating zero, then the low bits.
            self.put((1 << q) - 1, q as u32 + 1);
            self.put(z, k);
        } else {
            let len = 64 - z.leading_zeros();
            self.put(mask(ESCAPE), ESCAPE);
            self.put(len as u64, 7);
            self.put(z, len.min(32));
            if len > 32 {
                self.put(z >> 32, len - 32);
            }
        }
    }

    /// Pads the last byte with zeros.
    pub(super) fn finish(self) {
        if self.n > 0 {
            self.out.push(self.acc as u8);
        }
    }
}

fn mask(bits: u32) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1 << bits) - 1
    }
}

/// At least 56 bits of `bytes` from bit `at` on (zeros past the end).
#[inline]
fn peek(bytes: &[u8], at: usize) -> u64 {
    let start = at / 8;
    if let Some(word) = bytes.get(start..start + 8) {
        let word: [u8; 8] = word.try_into().unwrap_or([0; 8]);
        return u64::from_le_bytes(word) >> (at % 8);
    }
    let mut word = [0u8; 8];
    let avail = bytes.len().saturating_sub(start).min(8);
    word[..avail].copy_from_slice(&bytes[start..start + avail]);
    u64::from_le_bytes(word) >> (at % 8)
}

/// Reads the code with parameter `k` at bit `at` of `bytes`, advancing `at`.
#[inline]
pub(super) fn read_code(bytes: &[u8], at: &mut usize, k: u32) -> u64 {
    let w = peek(bytes, *at);
    let q = w.trailing_ones().min(ESCAPE);
    if q < ESCAPE {
        *at += (q + 1 + k) as usize;
        return ((q as u64) << k) | ((w >> (q + 1)) & mask(k));
    }
    *at += ESCAPE as usize;
    let len = (peek(bytes, *at) & 0x7f) as u32;
    *at += 7;
    let low = peek(bytes, *at) & mask(len.min(32));
    *at += len.min(32) as usize;
    if len <= 32 {
        return low;
    }
    let high = peek(bytes, *at) & mask(len - 32);
    *at += (len - 32) as usize;
    low | (high << 32)
}

/// Turns coded values back into counts, one run at a time.
#[derive(Debug, Clone, Copy)]
pub(super) struct Decoder {
    pub form: Form,
    prev: u64,
}

impl Decoder {
    pub(super) fn new(form: Form) -> Self {
        Self { form, prev: 0 }
    }

    /// A new run starts: its first difference is from zero.
    pub(super) fn start_run(&mut self) {
        self.prev = 0;
    }

    #[inline]
    pub(super) fn count(&mut self, z: u64) -> u64 {
        match self.form {
            Form::Raw => z,
            Form::Delta => {
                self.prev = self.prev.wrapping_add(unzigzag(z) as u64);
                self.prev
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_read_back_for_every_parameter_and_size() {
        let zs = [
            0u64,
            1,
            2,
            7,
            15,
            16,
            255,
            256,
            65_535,
            1 << 31,
            (1 << 32) + 5,
            u64::MAX >> 1,
            u64::MAX,
        ];
        for k in 0..8 {
            let mut bytes = Vec::new();
            let mut w = BitWriter::new(&mut bytes);
            let mut bits = 0;
            for &z in &zs {
                w.code(z, k);
                bits += code_bits(z, k);
            }
            w.finish();
            assert_eq!(bytes.len(), bits.div_ceil(8), "k={k}");
            let mut at = 0;
            let back: Vec<u64> = zs.iter().map(|_| read_code(&bytes, &mut at, k)).collect();
            assert_eq!(back, zs, "k={k}");
            assert_eq!(at, bits);
        }
    }

    #[test]
    fn differences_zigzag_both_ways() {
        let counts = [3u64, 9, 2, 2, 0, u64::MAX, 1];
        let coded: Vec<u64> = values(&counts, Form::Delta).collect();
        assert_eq!(&coded[..5], &[6, 12, 13, 0, 3]);
        let mut d = Decoder::new(Form::Delta);
        d.start_run();
        let back: Vec<u64> = coded.iter().map(|&z| d.count(z)).collect();
        assert_eq!(back, counts);
        assert!(values(&counts, Form::Raw).eq(counts.iter().copied()));
    }
}
