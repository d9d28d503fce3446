//! The process's allocator: mimalloc, asked for plain blocks whenever a plain
//! block is aligned enough.
//!
//! The `mimalloc` crate's allocator passes every request to mimalloc's aligned
//! entry point. For a block over 1 KiB, or of a size whose block is not a power
//! of two, that entry point takes a slow generic path and often over-allocates
//! to be sure of the alignment, even when it is only 8. Under `bench` every
//! span's attribute block (1–2 KiB) took that path: 69,000 of 365,000
//! allocations, 17 M instructions of 407 M. Every mimalloc block is a whole
//! number of words from a word-aligned start, so a request aligned to at most
//! a word is served by plain `mi_malloc` / `mi_realloc`; others keep the aligned calls.

use libmimalloc_sys as mi;
use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

/// The alignment every mimalloc block has: one machine word.
const WORD: usize = std::mem::size_of::<usize>();

/// mimalloc, with word-aligned requests on its plain (fast) paths.
pub struct Allocator;

// SAFETY: every method forwards to mimalloc, which returns blocks of at least
// the requested size aligned to at least `layout.align()` (plain calls only when
// that alignment is a word or less, which every mimalloc block meets), or null;
// `dealloc` and `realloc` receive only blocks mimalloc gave out.
unsafe impl GlobalAlloc for Allocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= WORD {
            mi::mi_malloc(layout.size()).cast()
        } else {
            mi::mi_malloc_aligned(layout.size(), layout.align()).cast()
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= WORD {
            mi::mi_zalloc(layout.size()).cast()
        } else {
            mi::mi_zalloc_aligned(layout.size(), layout.align()).cast()
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        mi::mi_free(ptr.cast::<c_void>());
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.align() <= WORD {
            mi::mi_realloc(ptr.cast(), new_size).cast()
        } else {
            mi::mi_realloc_aligned(ptr.cast(), new_size, layout.align()).cast()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Blocks of every size class up to 4 KiB, at every alignment up to 64, are
    /// aligned and usable through growth and shrinking.
    #[test]
    fn blocks_are_aligned_and_keep_their_bytes() {
        let a = Allocator;
        for align in [1, 2, 4, 8, 16, 32, 64] {
            for size in (1..=4096)
                .step_by(7)
                .chain([8, 16, 24, 1000, 1024, 2040, 2048])
            {
                let layout = Layout::from_size_align(size, align).unwrap();
                // SAFETY: a non-zero size; each block is written within its size,
                // reallocated with its own layout and freed once.
                unsafe {
                    let p = a.alloc(layout);
                    assert!(!p.is_null());
                    assert_eq!(p as usize % align, 0, "size {size} align {align}");
                    std::ptr::write_bytes(p, 0xA5, size);
                    let grown = a.realloc(p, layout, size * 3);
                    assert_eq!(grown as usize % align, 0, "grown {size} align {align}");
                    assert!((0..size).all(|i| *grown.add(i) == 0xA5));
                    let layout = Layout::from_size_align(size * 3, align).unwrap();
                    a.dealloc(grown, layout);
                    let z = a.alloc_zeroed(layout);
                    assert_eq!(z as usize % align, 0);
                    assert!((0..size * 3).all(|i| *z.add(i) == 0));
                    a.dealloc(z, layout);
                }
            }
        }
    }
}
