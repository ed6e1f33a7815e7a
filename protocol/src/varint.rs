//! LEB128 varints and zigzag, for the binary state blob.

use crate::delta::DeltaError;

/// Appends `v` as an unsigned LEB128 varint (1 byte below 128).
pub(crate) fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends a signed value zigzag-encoded (small magnitudes stay small).
pub(crate) fn put_signed(out: &mut Vec<u8>, v: i32) {
    put(out, u64::from(zigzag(v)));
}

/// Maps a signed value to an unsigned one: 0, -1, 1, -2 -> 0, 1, 2, 3.
pub(crate) fn zigzag(v: i32) -> u32 {
    ((v << 1) ^ (v >> 31)) as u32
}

/// The inverse of [`zigzag`].
pub(crate) fn unzigzag(v: u32) -> i32 {
    ((v >> 1) as i32) ^ -((v & 1) as i32)
}

/// A cursor over a byte slice that reads varints and bytes, refusing
/// truncated input and values past 32 bits (a non-minimal encoding of a
/// value in range, such as `80 00` for 0, is read as that value).
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.pos)
    }

    pub(crate) fn byte(&mut self) -> Result<u8, DeltaError> {
        let b = *self.bytes.get(self.pos).ok_or(DeltaError::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    /// Reads a varint of a u32: at most 5 bytes, value at most `u32::MAX`.
    pub(crate) fn u32(&mut self) -> Result<u32, DeltaError> {
        let mut value: u64 = 0;
        for shift in (0..35).step_by(7) {
            let b = self.byte()?;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return u32::try_from(value).map_err(|_| DeltaError::BadVarint);
            }
        }
        Err(DeltaError::BadVarint)
    }

    pub(crate) fn signed(&mut self) -> Result<i32, DeltaError> {
        Ok(unzigzag(self.u32()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_their_edges() {
        for v in [0u32, 1, 127, 128, 16_383, 16_384, u32::MAX] {
            let mut out = Vec::new();
            put(&mut out, u64::from(v));
            let mut r = Reader::new(&out);
            assert_eq!(r.u32(), Ok(v));
            assert!(r.is_empty());
        }
        for v in [0i32, -1, 1, -64, 63, 64, i32::MIN, i32::MAX] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
        assert_eq!(zigzag(-1), 1);
        assert_eq!(zigzag(1), 2);
    }

    #[test]
    fn bad_varints_are_refused() {
        assert_eq!(Reader::new(&[0x80]).u32(), Err(DeltaError::Truncated));
        assert_eq!(Reader::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01]).u32(), Err(DeltaError::BadVarint));
        assert_eq!(Reader::new(&[0xff, 0xff, 0xff, 0xff, 0x1f]).u32(), Err(DeltaError::BadVarint));
        assert_eq!(Reader::new(&[0xff, 0xff, 0xff, 0xff, 0x0f]).u32(), Ok(u32::MAX));
    }
}
