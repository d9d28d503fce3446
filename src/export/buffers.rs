//! Encode buffers kept for reuse. A trace request is encoded into a buffer of
//! about half a megabyte; allocated fresh each time, its pages are returned to
//! the OS (the allocator's purge) and faulted in again, zeroed, for the next
//! one. A writer keeps the buffers of finished requests here instead, a bounded
//! number of them, and encodes the next requests into those.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;

/// A buffer larger than this is not kept: a request that big is unusual (a
/// huge `--max-batch-spans`), and keeping it would hold its memory for the run.
/// A request of 512 spans is about 0.5 MB.
pub(super) const LARGEST_KEPT: usize = 8 << 20;

/// The idle encode buffers of one writer, at most `bound` of them.
pub(super) struct Buffers {
    kept: Mutex<Vec<Vec<u8>>>,
    bound: usize,
    reused: AtomicU64,
    fresh: AtomicU64,
    /// Given back while something else still held the bytes (then let go).
    shared: AtomicU64,
    /// Given back but not kept: too large, or the pool was full.
    dropped: AtomicU64,
    /// The most buffers kept at once.
    most: AtomicUsize,
}

/// What a writer's buffers did over a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct BufferStats {
    pub reused: u64,
    pub fresh: u64,
    pub shared: u64,
    pub dropped: u64,
    pub most: usize,
    pub bound: usize,
}

impl Buffers {
    /// A pool that keeps at most `bound` (at least 1) idle buffers.
    pub(super) fn new(bound: usize) -> Buffers {
        Buffers {
            kept: Mutex::new(Vec::new()),
            bound: bound.max(1),
            reused: AtomicU64::new(0),
            fresh: AtomicU64::new(0),
            shared: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            most: AtomicUsize::new(0),
        }
    }

    /// An empty buffer with room for at least `capacity` bytes: the smallest
    /// kept one that is large enough (the larger ones stay for larger
    /// requests), else a new one (never a kept one grown: growing copies it
    /// into new pages anyway) with an eighth more room, so that the next
    /// requests, a little larger or smaller, fit it.
    pub(super) fn take(&self, capacity: usize) -> Vec<u8> {
        let found = {
            let mut kept = self.lock();
            let best = kept
                .iter()
                .enumerate()
                .filter(|(_, b)| b.capacity() >= capacity)
                .min_by_key(|(_, b)| b.capacity())
                .map(|(i, _)| i);
            best.map(|i| kept.swap_remove(i))
        };
        match found {
            Some(buf) => {
                self.reused.fetch_add(1, Relaxed);
                buf
            }
            None => {
                self.fresh.fetch_add(1, Relaxed);
                Vec::with_capacity(capacity + capacity / 8)
            }
        }
    }

    /// Keeps `buf` (cleared) for a later [`take`](Self::take), unless it is
    /// larger than [`LARGEST_KEPT`]. A full pool keeps its largest buffers: a
    /// smaller one is let go to make room (small ones would otherwise fill it,
    /// and every large request would need a new buffer).
    pub(super) fn give(&self, mut buf: Vec<u8>) {
        if buf.capacity() == 0 {
            return;
        }
        if buf.capacity() > LARGEST_KEPT {
            self.dropped.fetch_add(1, Relaxed);
            return;
        }
        buf.clear();
        let mut kept = self.lock();
        if kept.len() >= self.bound {
            let smallest = (0..kept.len()).min_by_key(|&i| kept[i].capacity());
            match smallest {
                Some(i) if kept[i].capacity() < buf.capacity() => {
                    kept[i] = buf;
                }
                _ => {}
            }
            drop(kept);
            self.dropped.fetch_add(1, Relaxed);
            return;
        }
        kept.push(buf);
        self.most.fetch_max(kept.len(), Relaxed);
    }

    /// Gives back the buffer behind `bytes` when no one else holds it any more
    /// (an HTTP or gRPC connection may still hold a clone while it writes);
    /// otherwise lets it go, counted as shared.
    pub(super) fn give_bytes(&self, bytes: bytes::Bytes) {
        match bytes.try_into_mut() {
            Ok(mut b) => {
                // Cleared first, so turning it back into a Vec moves no bytes.
                b.clear();
                self.give(Vec::from(b));
            }
            Err(_) => {
                self.shared.fetch_add(1, Relaxed);
            }
        }
    }

    /// The counts so far.
    pub(super) fn stats(&self) -> BufferStats {
        BufferStats {
            reused: self.reused.load(Relaxed),
            fresh: self.fresh.load(Relaxed),
            shared: self.shared.load(Relaxed),
            dropped: self.dropped.load(Relaxed),
            most: self.most.load(Relaxed),
            bound: self.bound,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Vec<u8>>> {
        // The list stays valid whatever a panicking holder did.
        self.kept.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl std::fmt::Display for BufferStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} reused, {} fresh, {} still shared when done, {} not kept, at most {} kept (bound {})",
            self.reused, self.fresh, self.shared, self.dropped, self.most, self.bound
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_given_back_is_taken_again_empty_with_its_capacity() {
        let pool = Buffers::new(4);
        let mut buf = pool.take(1000);
        buf.extend_from_slice(&[7; 900]);
        let ptr = buf.as_ptr();
        pool.give(buf);
        let again = pool.take(800);
        assert_eq!(again.as_ptr(), ptr);
        assert!(again.is_empty() && again.capacity() >= 1000);
        let s = pool.stats();
        assert_eq!((s.fresh, s.reused), (1, 1));
    }

    #[test]
    fn the_pool_never_keeps_more_than_its_bound() {
        let pool = Buffers::new(3);
        let bufs: Vec<_> = (0..10).map(|_| pool.take(64)).collect();
        for b in bufs {
            pool.give(b);
        }
        assert_eq!(pool.lock().len(), 3);
        let s = pool.stats();
        assert_eq!((s.most, s.dropped, s.bound), (3, 7, 3));
    }

    #[test]
    fn absurdly_large_buffers_are_not_kept() {
        let pool = Buffers::new(3);
        pool.give(Vec::with_capacity(LARGEST_KEPT + 1));
        assert!(pool.lock().is_empty());
        assert_eq!(pool.stats().dropped, 1);
    }

    #[test]
    fn a_request_takes_the_smallest_buffer_large_enough_or_a_new_one() {
        let pool = Buffers::new(3);
        for cap in [100, 50_000, 20_000] {
            pool.give(Vec::with_capacity(cap));
        }
        assert_eq!(pool.take(10_000).capacity(), 20_000);
        assert!(pool.take(60_000).capacity() >= 60_000);
        let s = pool.stats();
        assert_eq!((s.reused, s.fresh), (1, 1));
        // The kept ones were left as they were.
        let mut caps: Vec<_> = pool.lock().iter().map(Vec::capacity).collect();
        caps.sort_unstable();
        assert_eq!(caps, [100, 50_000]);
    }

    #[test]
    fn a_full_pool_keeps_its_largest_buffers() {
        let pool = Buffers::new(2);
        for cap in [100, 200, 50_000, 10] {
            pool.give(Vec::with_capacity(cap));
        }
        let mut caps: Vec<_> = pool.lock().iter().map(Vec::capacity).collect();
        caps.sort_unstable();
        assert_eq!(caps, [200, 50_000]);
        assert_eq!(pool.stats().dropped, 2);
    }

    #[test]
    fn bytes_come_back_only_when_no_one_else_holds_them() {
        let pool = Buffers::new(3);
        let mut buf = pool.take(4096);
        buf.extend_from_slice(b"request");
        let ptr = buf.as_ptr();
        let bytes = bytes::Bytes::from(buf);
        let clone = bytes.clone();
        pool.give_bytes(bytes);
        assert!(pool.lock().is_empty());
        assert_eq!(pool.stats().shared, 1);
        // The last holder gives it back: the same memory, empty.
        pool.give_bytes(clone);
        let again = pool.take(10);
        assert_eq!(again.as_ptr(), ptr);
        assert!(again.is_empty() && again.capacity() >= 4096);
    }
}
