//! Zero-copy protobuf wire reader used by the hot trace decoder: walks a `&[u8]` field by
//! field, hands out borrowed slices for length-delimited fields and skips everything else
//! without allocating.

/// Protobuf wire types.
pub(crate) const VARINT: u8 = 0;
pub(crate) const FIXED64: u8 = 1;
pub(crate) const LEN: u8 = 2;
const START_GROUP: u8 = 3;
const END_GROUP: u8 = 4;
pub(crate) const FIXED32: u8 = 5;

/// Nesting limit for groups (prost uses 100 for messages).
const MAX_GROUP_DEPTH: u32 = 100;

/// A malformed wire encoding: what went wrong and at which byte offset of the enclosing
/// message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WireError {
    pub what: &'static str,
    pub offset: usize,
}

/// Cursor over one protobuf message.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// True when every field has been read.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn err(&self, what: &'static str) -> WireError {
        WireError {
            what,
            offset: self.pos,
        }
    }

    /// Reads a base-128 varint (at most 10 bytes).
    #[inline]
    pub fn varint(&mut self) -> Result<u64, WireError> {
        let b = *self
            .buf
            .get(self.pos)
            .ok_or_else(|| self.err("truncated varint"))?;
        if b < 0x80 {
            self.pos += 1;
            return Ok(u64::from(b));
        }
        self.varint_slow()
    }

    fn varint_slow(&mut self) -> Result<u64, WireError> {
        let mut value = 0u64;
        for i in 0..10 {
            let b = *self
                .buf
                .get(self.pos + i)
                .ok_or_else(|| self.err("truncated varint"))?;
            if i == 9 && b > 1 {
                return Err(self.err("varint overflows 64 bits"));
            }
            value |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                self.pos += i + 1;
                return Ok(value);
            }
        }
        Err(self.err("varint longer than 10 bytes"))
    }

    /// Reads a field key: (field number, wire type).
    #[inline]
    pub fn key(&mut self) -> Result<(u32, u8), WireError> {
        let k = self.varint()?;
        if k > u64::from(u32::MAX) {
            return Err(self.err("field key out of range"));
        }
        let wire_type = (k & 7) as u8;
        let field = (k >> 3) as u32;
        if field == 0 {
            return Err(self.err("field number 0"));
        }
        if wire_type > FIXED32 {
            return Err(self.err("invalid wire type"));
        }
        Ok((field, wire_type))
    }

    /// Reads a length-delimited field's payload.
    #[inline]
    pub fn bytes(&mut self) -> Result<&'a [u8], WireError> {
        let len = self.varint()?;
        let remaining = (self.buf.len() - self.pos) as u64;
        if len > remaining {
            return Err(self.err("length-delimited field runs past the end"));
        }
        let start = self.pos;
        self.pos += len as usize;
        Ok(&self.buf[start..self.pos])
    }

    /// Reads a little-endian fixed64.
    #[inline]
    pub fn fixed64(&mut self) -> Result<u64, WireError> {
        let end = self.pos + 8;
        let raw = self
            .buf
            .get(self.pos..end)
            .ok_or_else(|| self.err("truncated fixed64"))?;
        let mut b = [0u8; 8];
        b.copy_from_slice(raw);
        self.pos = end;
        Ok(u64::from_le_bytes(b))
    }

    /// Skips one field's payload of the given wire type.
    #[inline]
    pub fn skip(&mut self, wire_type: u8, field: u32) -> Result<(), WireError> {
        match wire_type {
            VARINT => self.varint().map(drop),
            FIXED64 => self.advance(8),
            LEN => self.bytes().map(drop),
            FIXED32 => self.advance(4),
            START_GROUP => self.skip_group(field),
            _ => Err(self.err("unexpected end-group")),
        }
    }

    fn advance(&mut self, n: usize) -> Result<(), WireError> {
        if self.buf.len() - self.pos < n {
            return Err(self.err("truncated fixed-size field"));
        }
        self.pos += n;
        Ok(())
    }

    /// Skips a (deprecated) group up to its matching end-group key.
    fn skip_group(&mut self, field: u32) -> Result<(), WireError> {
        let mut open = vec![field];
        while let Some(&top) = open.last() {
            if open.len() as u32 > MAX_GROUP_DEPTH {
                return Err(self.err("groups nested too deeply"));
            }
            let k = self.varint()?;
            let (f, wt) = ((k >> 3) as u32, (k & 7) as u8);
            match wt {
                END_GROUP if f == top => {
                    open.pop();
                }
                END_GROUP => return Err(self.err("mismatched end-group")),
                START_GROUP => open.push(f),
                VARINT | FIXED64 | LEN | FIXED32 => self.skip(wt, f)?,
                _ => return Err(self.err("invalid wire type")),
            }
        }
        Ok(())
    }
}

/// Errors unless `wire_type` is the expected one for a known field (prost does the same).
#[inline]
pub(crate) fn expect(wire_type: u8, want: u8, r: &Reader<'_>) -> Result<(), WireError> {
    if wire_type == want {
        Ok(())
    } else {
        Err(r.err("wrong wire type for a known field"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_multi_byte_varints_and_rejects_overflow() {
        let mut r = Reader::new(&[0xac, 0x02]);
        assert_eq!(r.varint().unwrap(), 300);
        assert!(r.is_empty());
        let mut max = Reader::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
        assert_eq!(max.varint().unwrap(), u64::MAX);
        let mut over = Reader::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]);
        assert_eq!(over.varint().unwrap_err().what, "varint overflows 64 bits");
        let mut cut = Reader::new(&[0x80]);
        assert_eq!(cut.varint().unwrap_err().what, "truncated varint");
    }

    #[test]
    fn rejects_lengths_past_the_end_and_bad_keys() {
        let mut r = Reader::new(&[0x0a, 0x05, 1, 2]);
        assert_eq!(r.key().unwrap(), (1, LEN));
        assert_eq!(
            r.bytes().unwrap_err().what,
            "length-delimited field runs past the end"
        );
        assert_eq!(
            Reader::new(&[0x00]).key().unwrap_err().what,
            "field number 0"
        );
        assert_eq!(
            Reader::new(&[0x0e]).key().unwrap_err().what,
            "invalid wire type"
        );
    }

    #[test]
    fn skips_nested_groups() {
        // field 1 start-group, field 2 varint 7, field 3 start, field 3 end, field 1 end, then field 4 varint.
        let data = [0x0b, 0x10, 0x07, 0x1b, 0x1c, 0x0c, 0x20, 0x01];
        let mut r = Reader::new(&data);
        let (f, wt) = r.key().unwrap();
        r.skip(wt, f).unwrap();
        assert_eq!(r.key().unwrap(), (4, VARINT));
        assert_eq!(r.varint().unwrap(), 1);
        let bad = [0x0b, 0x14];
        let mut r = Reader::new(&bad);
        let (f, wt) = r.key().unwrap();
        assert_eq!(r.skip(wt, f).unwrap_err().what, "mismatched end-group");
    }
}
