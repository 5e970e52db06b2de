//! The process's allocator: mimalloc, with its memory in 2 MiB pages where
//! the kernel gives them (transparent huge pages in `madvise` mode).
//!
//! Why: a large simulation is bound by memory access, not arithmetic. A
//! 5,000-node BGP fabric holds 25 million routes in about 1.1 GiB, and each
//! UPDATE a client takes in touches a dozen or more cache lines in as many
//! places; with 4 KiB pages nearly every one of them is also a TLB miss and
//! a page walk. glibc's allocator neither packs that memory into huge
//! pages nor (in `madvise` mode, as on the machines podpath is measured
//! on) asks for them.
//! mimalloc does both (figures: docs/performance.md, "Allocator"). The
//! allocator changes how fast memory is found, never what is computed:
//! runs stay byte-identical.
//!
//! Every binary that links sim-core (the `podpath` CLI, the tests, the
//! benches and examples) gets it through `#[global_allocator]` below, so
//! that what the benches measure is what users run. The cargo feature
//! `mimalloc` (on by default) turns it off for a program that brings its
//! own.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicBool, Ordering};

use mimalloc::MiMalloc;

/// mimalloc, told on first use to take huge pages (see the module docs).
pub struct Allocator;

static TUNED: AtomicBool = AtomicBool::new(false);

/// mimalloc v3's `mi_option_purge_delay` (its include/mimalloc.h; the
/// Rust bindings do not name it): how long freed memory waits before it is
/// given back to the kernel, in ms; -1 never.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

#[cold]
fn tune() {
    // SAFETY: sets process-wide options; takes no pointers.
    unsafe {
        // `allow_large_os_pages` (named `large_os_pages` before v2):
        // madvise(MADV_HUGEPAGE) on the memory it maps from now on. Set
        // before the first allocation of the process, so all of it is.
        libmimalloc_sys::mi_option_set(libmimalloc_sys::mi_option_large_os_pages, 1);
        // Never give freed memory back while the process runs. By default
        // mimalloc purges it after a second, and in huge pages that costs
        // a fault and the zeroing of 2 MiB each time it is used again: a
        // 2,000-node cluster's route install, which builds and drops a
        // table per node, spent over a second of system time zeroing ten
        // times its peak memory. A run is one process; the memory is
        // reused for the next allocations, and the peak is unchanged.
        libmimalloc_sys::mi_option_set(PURGE_DELAY, -1);
    }
    TUNED.store(true, Ordering::Relaxed);
}

// SAFETY: every call is passed on to mimalloc unchanged (after setting an
// option, which allocates nothing).
unsafe impl GlobalAlloc for Allocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !TUNED.load(Ordering::Relaxed) {
            tune();
        }
        // SAFETY: the caller's contract, passed on.
        unsafe { MiMalloc.alloc(layout) }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if !TUNED.load(Ordering::Relaxed) {
            tune();
        }
        // SAFETY: as above.
        unsafe { MiMalloc.alloc_zeroed(layout) }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { MiMalloc.dealloc(ptr, layout) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as above.
        unsafe { MiMalloc.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Allocator = Allocator;

#[cfg(test)]
mod tests {
    #[test]
    fn allocations_go_through_mimalloc() {
        let v = vec![7u64; 1 << 16];
        // SAFETY: asks mimalloc whether it owns a live pointer.
        let ours = unsafe { libmimalloc_sys::mi_is_in_heap_region(v.as_ptr().cast()) };
        assert!(ours, "a Vec's buffer comes from mimalloc");
        assert!(super::TUNED.load(std::sync::atomic::Ordering::Relaxed));
        // SAFETY: reads process-wide options.
        let (large, purge) = unsafe {
            (
                libmimalloc_sys::mi_option_get(libmimalloc_sys::mi_option_large_os_pages),
                libmimalloc_sys::mi_option_get(super::PURGE_DELAY),
            )
        };
        assert_eq!((large, purge), (1, -1));
    }
}
