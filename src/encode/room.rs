//! Appending to a byte buffer with one capacity check for many small writes.
//!
//! The wire encoder writes a dozen header bytes (tags, lengths) around each
//! attribute's key and value. Through `Vec::push` each byte re-reads and re-checks
//! the vector's length and capacity, which measured as much as the copying itself.
//! A [`Room`] reserves once, keeps the length in a register, and commits it when
//! dropped.

/// Room reserved at the end of a buffer; the bytes written land after its
/// current end, and the buffer's length grows when the `Room` is dropped.
pub(crate) struct Room<'a> {
    buf: &'a mut Vec<u8>,
    len: usize,
    /// `buf`'s capacity: no write may reach past it.
    end: usize,
}

impl<'a> Room<'a> {
    /// Room for at least `n` more bytes.
    #[inline]
    pub(crate) fn new(buf: &'a mut Vec<u8>, n: usize) -> Self {
        buf.reserve(n);
        let (len, end) = (buf.len(), buf.capacity());
        Room { buf, len, end }
    }

    /// Appends one byte.
    #[inline]
    pub(crate) fn byte(&mut self, b: u8) {
        // A caller that asked for too little room stops here rather than writing past the end.
        assert!(self.len < self.end, "encoder wrote past its reserved room");
        // SAFETY: `len < end = capacity`: the byte is inside the allocation; it
        // becomes part of the vector only in `drop`, after it is written.
        unsafe { *self.buf.as_mut_ptr().add(self.len) = b };
        self.len += 1;
    }

    /// Appends `v` as a protobuf varint.
    #[inline]
    pub(crate) fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.byte((v as u8) | 0x80);
            v >>= 7;
        }
        self.byte(v as u8);
    }

    /// Appends the `N` bytes of `b` (a few header bytes), with one check.
    #[inline]
    pub(crate) fn array<const N: usize>(&mut self, b: [u8; N]) {
        assert!(
            N <= self.end - self.len,
            "encoder wrote past its reserved room"
        );
        // SAFETY: the `N` bytes from `len` are inside the allocation (checked above).
        unsafe { std::ptr::write_unaligned(self.buf.as_mut_ptr().add(self.len).cast(), b) };
        self.len += N;
    }

    /// Appends `b`.
    #[inline]
    pub(crate) fn bytes(&mut self, b: &[u8]) {
        assert!(
            b.len() <= self.end - self.len,
            "encoder wrote past its reserved room"
        );
        // SAFETY: the `b.len()` bytes from `len` are inside the allocation (checked
        // above); `b` cannot overlap them, as they are not yet part of any slice.
        unsafe {
            std::ptr::copy_nonoverlapping(b.as_ptr(), self.buf.as_mut_ptr().add(self.len), b.len())
        };
        self.len += b.len();
    }
}

impl Drop for Room<'_> {
    fn drop(&mut self) {
        // SAFETY: every byte up to `len` was written by `byte` or `bytes`, within capacity.
        unsafe { self.buf.set_len(self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::Room;

    #[test]
    fn writes_land_after_the_end_and_count_on_drop() {
        let mut buf = vec![1u8, 2];
        {
            let mut r = Room::new(&mut buf, 14);
            r.byte(3);
            r.varint(300);
            r.bytes(b"abc");
            r.array([9, 8]);
        }
        assert_eq!(buf, [1, 2, 3, 0xac, 0x02, b'a', b'b', b'c', 9, 8]);
    }

    #[test]
    #[should_panic(expected = "past its reserved room")]
    fn asking_for_too_little_room_panics_instead_of_overflowing() {
        let mut buf = Vec::new();
        let mut r = Room::new(&mut buf, 2);
        let big = vec![0u8; 4096];
        r.bytes(&big);
    }
}
