//! `wani bench-live --floor`: the least any server has to do for the worst
//! fan-out, measured under the same load generator as wani.
//!
//! A bare server, in its own process like `wani serve`: it answers a stream
//! request with the same head and `new-client` event, keeps the sockets in
//! one shard per core, and for every `POST` hands the post's number to one
//! writer thread per shard, which writes wani's own `new-post` frame (the
//! same bytes, from `sse_event`) to each of its sockets with one blocking
//! `write`. No HTTP parsing beyond the head, no actors, no database, no
//! queues per connection: what is left is the kernel's cost of a TCP write
//! per subscriber and the load generator's read of it. If this floor is
//! above a latency goal on a machine, no server reaches the goal there.

use anyhow::Context;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use wani_actors::live::sse_event;

/// Options of the hidden `wani bench-live-floor` (started by
/// `wani bench-live --floor`).
#[derive(clap::Args, Debug, Clone)]
pub struct FloorArgs {
    /// Address to listen on.
    #[arg(long)]
    pub listen: String,
    /// Writer threads, each with its share of the sockets (default: one
    /// per core, as `wani serve` has one worker per core).
    #[arg(long)]
    pub writers: Option<usize>,
}

/// Serves until killed.
pub fn serve(args: FloorArgs) -> anyhow::Result<()> {
    let listener =
        TcpListener::bind(&args.listen).with_context(|| format!("listening on {}", args.listen))?;
    let writers = args
        .writers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .max(1);
    let mut shards = Vec::with_capacity(writers);
    let mut posts = Vec::with_capacity(writers);
    for _ in 0..writers {
        let shard: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (tx, rx) = mpsc::channel::<i64>();
        let mine = shard.clone();
        std::thread::spawn(move || {
            for post in rx {
                let frame = sse_event(
                    "new-post",
                    Some(post as u64),
                    &serde_json::json!({"thread": 1, "post": post}).to_string(),
                );
                let mut socks = mine.lock().unwrap_or_else(|e| e.into_inner());
                // A socket whose reader left is dropped here, as a server
                // would end its stream.
                socks.retain_mut(|s| s.write_all(frame.as_bytes()).is_ok());
            }
        });
        shards.push(shard);
        posts.push(tx);
    }
    let mut next_post = 0i64;
    let mut streams = 0usize;
    for conn in listener.incoming() {
        let Ok(mut conn) = conn else { continue };
        // One accept loop reads every head: a client that connects and
        // says nothing must not hold it for long.
        let _ = conn.set_read_timeout(Some(std::time::Duration::from_secs(5)));
        let Ok(head) = read_head(&mut conn) else {
            continue;
        };
        if head.starts_with(b"GET ") {
            let _ = conn.set_nodelay(true);
            // A reader that stopped reading fails its write after a while
            // and is dropped, instead of holding its writer's shard.
            let _ = conn.set_write_timeout(Some(std::time::Duration::from_secs(10)));
            let first = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-store\r\n\
                 x-accel-buffering: no\r\nconnection: close\r\n\r\n{}",
                sse_event("new-client", None, "floor")
            );
            if conn.write_all(first.as_bytes()).is_ok() {
                shards[streams % writers]
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(conn);
                streams += 1;
            }
        } else {
            // A post: its body is read and ignored, its number is the next.
            if read_body(&mut conn, &head).is_err() {
                continue;
            }
            next_post += 1;
            for tx in &posts {
                let _ = tx.send(next_post);
            }
            let body = format!("{{\"id\":{next_post}}}");
            let _ = conn.write_all(
                format!(
                    "HTTP/1.1 201 Created\r\ncontent-type: application/json\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
        }
    }
    Ok(())
}

/// The request head, through its blank line, and whatever followed it.
fn read_head(conn: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = conn.read(&mut chunk)?;
        if n == 0 || head.len() > 64 * 1024 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        head.extend_from_slice(&chunk[..n]);
    }
    Ok(head)
}

/// Reads the rest of a body whose length the head gives.
fn read_body(conn: &mut TcpStream, head: &[u8]) -> std::io::Result<()> {
    let text = String::from_utf8_lossy(head);
    let end = text.find("\r\n\r\n").map_or(text.len(), |i| i + 4);
    let len = crate::bench::content_length(&text[..end]);
    let mut left = len.saturating_sub(head.len() - end);
    let mut chunk = [0u8; 4096];
    while left > 0 {
        let n = conn.read(&mut chunk[..left.min(4096)])?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        left -= n;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// Reads from `conn` until `needle` has arrived (within 10 s).
    fn read_until(conn: &mut TcpStream, got: &mut Vec<u8>, needle: &[u8]) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut chunk = [0u8; 1024];
        while !got.windows(needle.len()).any(|w| w == needle) {
            assert!(Instant::now() < deadline, "no {needle:?} in {got:?}");
            let n = conn.read(&mut chunk).unwrap();
            assert!(n > 0, "closed before {needle:?}");
            got.extend_from_slice(&chunk[..n]);
        }
    }

    #[test]
    fn a_post_reaches_every_stream_as_wani_frames_it() {
        let listen = format!("127.0.0.1:{}", crate::bench_cluster::port());
        let args = FloorArgs {
            listen: listen.clone(),
            writers: Some(2),
        };
        std::thread::spawn(move || serve(args));
        let deadline = Instant::now() + Duration::from_secs(10);
        let connect = || loop {
            match TcpStream::connect(&listen) {
                Ok(c) => break c,
                Err(e) => {
                    assert!(Instant::now() < deadline, "floor not listening: {e}");
                    std::thread::yield_now();
                }
            }
        };
        let mut streams: Vec<(TcpStream, Vec<u8>)> = (0..3)
            .map(|_| {
                let mut c = connect();
                c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                c.write_all(b"GET /api/v1/live?thread=1 HTTP/1.1\r\nHost: t\r\n\r\n")
                    .unwrap();
                let mut got = Vec::new();
                read_until(&mut c, &mut got, b"event: new-client");
                (c, got)
            })
            .collect();
        let mut post = connect();
        post.write_all(b"POST /api/v1/thread/1/new HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody")
            .unwrap();
        let mut answer = Vec::new();
        read_until(&mut post, &mut answer, b"{\"id\":1}");
        assert!(answer.starts_with(b"HTTP/1.1 201"));
        let data = serde_json::json!({"thread": 1, "post": 1}).to_string();
        let frame = sse_event("new-post", Some(1), &data);
        for (c, got) in &mut streams {
            read_until(c, got, frame.as_bytes());
        }
    }
}
