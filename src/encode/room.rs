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

    /// Appends the `N` bytes of `head` (a field's header) and then `b`, with one check.
    #[inline]
    pub(crate) fn array_and_bytes<const N: usize>(&mut self, head: [u8; N], b: &[u8]) {
        // No overflow: a slice holds at most `isize::MAX` bytes, and `N` is a few.
        assert!(
            N + b.len() <= self.end - self.len,
            "encoder wrote past its reserved room"
        );
        // SAFETY: the `N + b.len()` bytes from `len` are inside the allocation
        // (checked above); `b` cannot overlap them, as they are not yet part of any slice.
        unsafe {
            let at = self.buf.as_mut_ptr().add(self.len);
            std::ptr::write_unaligned(at.cast(), head);
            copy(b.as_ptr(), at.add(N), b.len());
        }
        self.len += N + b.len();
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
        unsafe { copy(b.as_ptr(), self.buf.as_mut_ptr().add(self.len), b.len()) };
        self.len += b.len();
    }
}

/// Copies `n` bytes from `src` to `dst`. Most copies are attribute keys and values
/// of 10–40 bytes: through `copy_nonoverlapping` each was a call into libc's
/// memcpy (a tenth of encoding's instructions). Up to 64 bytes they are done
/// inline instead, as two or four fixed-size moves that overlap in the middle,
/// so that one path serves every length of its class.
///
/// # Safety
/// `src` must be valid for reading and `dst` for writing `n` bytes, and the two
/// ranges must not overlap.
#[inline(always)]
unsafe fn copy(src: *const u8, dst: *mut u8, n: usize) {
    /// Moves the `N` bytes at `from` of `src` to `from` of `dst`.
    #[inline(always)]
    unsafe fn chunk<const N: usize>(src: *const u8, dst: *mut u8, from: usize) {
        // SAFETY: the caller keeps `from + N` within the `n` bytes of both ranges.
        unsafe {
            let v = std::ptr::read_unaligned(src.add(from).cast::<[u8; N]>());
            std::ptr::write_unaligned(dst.add(from).cast::<[u8; N]>(), v);
        }
    }
    // SAFETY (every branch): each chunk lies within the first `n` bytes, as its
    // length class guarantees (e.g. 8 ≤ n ≤ 16: chunks at 0 and n − 8 of 8 bytes).
    unsafe {
        if n <= 16 {
            if n >= 8 {
                chunk::<8>(src, dst, 0);
                chunk::<8>(src, dst, n - 8);
            } else if n >= 4 {
                chunk::<4>(src, dst, 0);
                chunk::<4>(src, dst, n - 4);
            } else if n > 0 {
                chunk::<1>(src, dst, 0);
                chunk::<1>(src, dst, n / 2);
                chunk::<1>(src, dst, n - 1);
            }
        } else if n <= 32 {
            chunk::<16>(src, dst, 0);
            chunk::<16>(src, dst, n - 16);
        } else if n <= 64 {
            chunk::<16>(src, dst, 0);
            chunk::<16>(src, dst, 16);
            chunk::<16>(src, dst, n - 32);
            chunk::<16>(src, dst, n - 16);
        } else {
            std::ptr::copy_nonoverlapping(src, dst, n);
        }
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
            r.array_and_bytes([7], b"de");
        }
        assert_eq!(
            buf,
            [1, 2, 3, 0xac, 0x02, b'a', b'b', b'c', 9, 8, 7, b'd', b'e']
        );
    }

    #[test]
    fn copies_of_every_length_class_match_a_plain_copy() {
        // Every length up to past the inline classes (0..=64), at odd offsets on both sides.
        let src: Vec<u8> = (0..200u8).map(|i| i.wrapping_mul(37) ^ 0x5a).collect();
        for n in 0..=70 {
            for (from, at) in [(0, 0), (3, 1), (7, 5)] {
                let mut buf = vec![0xee; at];
                {
                    let mut r = Room::new(&mut buf, n + 1);
                    r.bytes(&src[from..from + n]);
                    r.byte(0xff);
                }
                let mut expected = vec![0xee; at];
                expected.extend_from_slice(&src[from..from + n]);
                expected.push(0xff);
                assert_eq!(buf, expected, "{n} bytes from {from} to {at}");
            }
        }
    }

    #[test]
    #[should_panic(expected = "past its reserved room")]
    fn a_header_and_body_past_the_room_panic_too() {
        let mut buf = Vec::new();
        let mut r = Room::new(&mut buf, 4);
        r.array_and_bytes([2, 3], &[4; 4096]);
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
