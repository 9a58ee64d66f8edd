//! `multipart/form-data` bodies through the form reader of post submissions
//! (`node/src/http/upload.rs`: axum's `Multipart`, then wani's field rules),
//! as the router hands a request over.
//!
//! Input: the `Content-Type` header value, a newline, then the body.
//! Allocation limit 64 MiB (a body here is at most a few KiB; the reader
//! must not reserve what a header claims).

#[global_allocator]
static ALLOC: wani_fuzz::Limited = wani_fuzz::Limited::mib(64);

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime needs no resources that can be missing");
    afl::fuzz!(|data: &[u8]| {
        let (content_type, body) = match data.iter().position(|&b| b == b'\n') {
            Some(i) => (&data[..i], &data[i + 1..]),
            None => (&b"multipart/form-data; boundary=X"[..], data),
        };
        let body = bytes::Bytes::copy_from_slice(body);
        let _ = runtime.block_on(wani_node::http::fuzzing::multipart(
            content_type,
            body,
            1024 * 1024,
        ));
    });
}
