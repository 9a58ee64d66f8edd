//! `/api/v1/live` requests (`node/src/http/live.rs`): the JSON body of a
//! `POST` (client id, topics to subscribe and unsubscribe), and the head of
//! a `GET` served directly off the socket (httparse, the query string's
//! `thread=`/`board=` lists, `Last-Event-ID`).
//!
//! Input: a selector byte (even: POST body; odd: GET head), then the bytes.
//! Allocation limit 64 MiB.

#[global_allocator]
static ALLOC: wani_fuzz::Limited = wani_fuzz::Limited::mib(64);

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let _ = wani_node::http::fuzzing::live(data);
    });
}
