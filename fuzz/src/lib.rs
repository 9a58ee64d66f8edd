//! What every fuzz target shares: an allocator that turns an allocation
//! over the target's stated limit into a crash AFL++ records.
//!
//! A parser fed a few hundred hostile bytes must not reserve memory in
//! proportion to a length field it read (a decompression bomb, a bincode
//! length prefix, a PNG chunk size): the limits are what wani promises, so
//! crossing one is a bug even when the machine had the memory. The
//! allocator counts live bytes; an allocation that would take them past
//! the limit, or a single allocation past it, prints its size and aborts,
//! which AFL++ records as a crash with the input that caused it.
//!
//! Each target binary declares its own limit:
//! ```ignore
//! #[global_allocator]
//! static ALLOC: wani_fuzz::Limited = wani_fuzz::Limited::mib(64);
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The system allocator with a cap on live bytes.
pub struct Limited {
    limit: usize,
    live: AtomicUsize,
}

impl Limited {
    /// A cap of `mib` MiB on the bytes live at once.
    pub const fn mib(mib: usize) -> Limited {
        Limited {
            limit: mib << 20,
            live: AtomicUsize::new(0),
        }
    }

    /// Counts `size` more bytes, or aborts if that crosses the limit.
    fn claim(&self, size: usize) {
        let before = self.live.fetch_add(size, Ordering::Relaxed);
        if size > self.limit || before + size > self.limit {
            over_limit(size, before, self.limit);
        }
    }
}

/// Reports without allocating (the allocator is the one that refused) and
/// aborts, so AFL++ keeps the input as a crash.
#[cold]
fn over_limit(size: usize, live: usize, limit: usize) -> ! {
    let mut buf = [0u8; 160];
    let mut w = Cursor { buf: &mut buf, len: 0 };
    let _ = std::fmt::Write::write_fmt(
        &mut w,
        format_args!(
            "wani-fuzz: allocation of {size} bytes with {live} live is over the limit of {limit} bytes\n"
        ),
    );
    let len = w.len;
    // SAFETY: writing a byte buffer we own to stderr.
    unsafe {
        libc_write(2, buf.as_ptr(), len);
    }
    std::process::abort();
}

struct Cursor<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl std::fmt::Write for Cursor<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let room = self.buf.len() - self.len;
        let n = s.len().min(room);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

extern "C" {
    #[link_name = "write"]
    fn libc_write(fd: i32, buf: *const u8, count: usize) -> isize;
}

// SAFETY: every call is forwarded to `System` unchanged; the counter only
// observes sizes.
unsafe impl GlobalAlloc for Limited {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.claim(layout.size());
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        self.claim(layout.size());
        System.alloc_zeroed(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        self.live.fetch_sub(layout.size(), Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            self.claim(new_size - layout.size());
        } else {
            self.live
                .fetch_sub(layout.size() - new_size, Ordering::Relaxed);
        }
        System.realloc(ptr, layout, new_size)
    }
}
