//! A bounds-checked CDR byte reader with XCDR1/XCDR2 alignment.

use super::error::CdrError;

pub(crate) struct Reader<'a> {
    pub(crate) buf: &'a [u8],
    pub(crate) pos: usize,
    /// Alignment is relative to this offset (reset inside XCDR1 parameters).
    pub(crate) origin: usize,
    /// End of the current delimited region (DHEADER / parameter).
    pub(crate) end: usize,
    pub(crate) big_endian: bool,
    /// 8 for XCDR1, 4 for XCDR2.
    pub(crate) max_align: usize,
}

macro_rules! read_int {
    ($name:ident, $t:ty, $n:expr) => {
        #[inline]
        pub(crate) fn $name(&mut self) -> Result<$t, CdrError> {
            self.align($n)?;
            let b = self.take($n)?;
            let mut a = [0u8; $n];
            a.copy_from_slice(b);
            Ok(if self.big_endian {
                <$t>::from_be_bytes(a)
            } else {
                <$t>::from_le_bytes(a)
            })
        }
    };
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], big_endian: bool, max_align: usize) -> Self {
        Reader {
            buf,
            pos: 0,
            origin: 0,
            end: buf.len(),
            big_endian,
            max_align,
        }
    }

    #[inline]
    pub(crate) fn remaining(&self) -> usize {
        self.end.saturating_sub(self.pos)
    }

    #[inline]
    pub(crate) fn align(&mut self, n: usize) -> Result<(), CdrError> {
        let a = n.min(self.max_align);
        if a > 1 {
            let off = (self.pos - self.origin) % a;
            if off != 0 {
                let pad = a - off;
                if pad > self.remaining() {
                    return Err(CdrError::truncated(pad, self.remaining()));
                }
                self.pos += pad;
            }
        }
        Ok(())
    }

    #[inline]
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], CdrError> {
        if n > self.remaining() {
            return Err(CdrError::truncated(n, self.remaining()));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    #[inline]
    pub(crate) fn u8(&mut self) -> Result<u8, CdrError> {
        Ok(self.take(1)?[0])
    }

    read_int!(u16, u16, 2);
    read_int!(u32, u32, 4);
    read_int!(u64, u64, 8);

    /// Reads a u32 length and checks that `len * min_elem` bytes could follow.
    pub(crate) fn count(&mut self, min_elem: usize) -> Result<usize, CdrError> {
        let n = self.u32()? as usize;
        let need = n.saturating_mul(min_elem.max(1));
        if need > self.remaining() {
            return Err(CdrError::truncated(need, self.remaining()));
        }
        Ok(n)
    }

    /// Reads a DHEADER and returns the end of the region it delimits.
    pub(crate) fn dheader(&mut self) -> Result<usize, CdrError> {
        let n = self.u32()? as usize;
        if n > self.remaining() {
            return Err(CdrError::malformed(format!(
                "DHEADER says {n} bytes, {} left",
                self.remaining()
            )));
        }
        Ok(self.pos + n)
    }
}
