//! A CDR byte writer with XCDR1/XCDR2 alignment and back-patched lengths.

pub(crate) struct Writer {
    pub(crate) buf: Vec<u8>,
    pub(crate) origin: usize,
    pub(crate) big_endian: bool,
    pub(crate) max_align: usize,
}

macro_rules! write_int {
    ($name:ident, $t:ty, $n:expr) => {
        #[inline]
        pub(crate) fn $name(&mut self, v: $t) {
            self.align($n);
            if self.big_endian {
                self.buf.extend_from_slice(&v.to_be_bytes());
            } else {
                self.buf.extend_from_slice(&v.to_le_bytes());
            }
        }
    };
}

impl Writer {
    pub(crate) fn new(big_endian: bool, max_align: usize, capacity: usize) -> Self {
        Writer {
            buf: Vec::with_capacity(capacity),
            origin: 0,
            big_endian,
            max_align,
        }
    }

    #[inline]
    pub(crate) fn align(&mut self, n: usize) {
        let a = n.min(self.max_align);
        if a > 1 {
            let off = (self.buf.len() - self.origin) % a;
            if off != 0 {
                self.buf.resize(self.buf.len() + a - off, 0);
            }
        }
    }

    #[inline]
    pub(crate) fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    write_int!(u16, u16, 2);
    write_int!(u32, u32, 4);
    write_int!(u64, u64, 8);

    /// Writes a placeholder u32 (aligned) and returns its offset.
    pub(crate) fn reserve_u32(&mut self) -> usize {
        self.u32(0);
        self.buf.len() - 4
    }

    pub(crate) fn patch_u32(&mut self, at: usize, v: u32) {
        let b = if self.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        self.buf[at..at + 4].copy_from_slice(&b);
    }

    /// Patches the u32 at `at` with the number of bytes written after it.
    pub(crate) fn patch_len(&mut self, at: usize) {
        let n = self.buf.len() - at - 4;
        self.patch_u32(at, u32::try_from(n).unwrap_or(u32::MAX));
    }
}
