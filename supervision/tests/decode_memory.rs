//! Cluster payloads that claim more than they carry are refused without
//! reserving what they claim.
//!
//! Found by fuzzing (`fuzz/`, target `cluster_frame`): a 12-byte thread
//! message whose body string claimed 33.6 MB made the receiver allocate
//! 33.6 MB before finding the bytes missing; any claim up to 64 MiB
//! (`MAX_ANSWER`) went through. The allocator below records the largest
//! allocation made on the test's thread.

use serde::Deserialize;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use wani_supervision::transport::{decode, encode, Fault};

struct Largest;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards to `System` unchanged; only observes sizes.
unsafe impl GlobalAlloc for Largest {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = LARGEST.try_with(|l| l.set(l.get().max(layout.size())));
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let _ = LARGEST.try_with(|l| l.set(l.get().max(layout.size())));
        System.alloc_zeroed(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOC: Largest = Largest;

/// The shape of the message the fuzzer broke (a post draft's body first).
#[derive(Debug, serde::Serialize, Deserialize, PartialEq)]
enum Msg {
    CreatePost { body: String, ip: String },
}

/// The largest allocation `f` makes on this thread.
fn largest<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LARGEST.with(|l| l.set(0));
    let out = f();
    (out, LARGEST.with(Cell::get))
}

#[test]
fn a_short_payload_claiming_a_huge_string_is_refused_without_reserving_it() {
    // Variant 0, then a string length of 0x02010A05 (bincode's varint:
    // 0xFC and a little-endian u32), then six bytes of it.
    let payload = [
        0x00, 0xFC, 0x05, 0x0A, 0x01, 0x02, 0x06, 0x66, 0x00, 0x00, 0x00, 0x80,
    ];
    let (result, biggest) = largest(|| decode::<Msg>(&payload));
    assert!(
        matches!(result, Err(Fault::Invalid(_))),
        "a truncated payload must be refused: {result:?}"
    );
    assert!(
        biggest < 1 << 20,
        "decoding 12 bytes allocated {biggest} bytes at once"
    );
}

#[test]
fn long_payloads_still_decode() {
    // Past a frame, as a joined answer is: the limit grows with the payload.
    let msg = Msg::CreatePost {
        body: "x".repeat(3 << 20),
        ip: "127.0.0.1".into(),
    };
    let bytes = encode(&msg).unwrap();
    assert_eq!(decode::<Msg>(&bytes).unwrap(), msg);
    let small = Msg::CreatePost {
        body: "hello".into(),
        ip: String::new(),
    };
    assert_eq!(decode::<Msg>(&encode(&small).unwrap()).unwrap(), small);
}
