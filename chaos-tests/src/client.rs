//! The HTTP client of the workload: one request, one recorded outcome.
//!
//! Every request has a deadline (the scenario's `op_timeout_ms`), so a node
//! that hangs shows up as `timed_out` instead of stalling the run. An error
//! answer is `Failed` with the message from wani's `{"error": "…"}` body; an
//! error answer without such a message is kept as it came, for the
//! clear-error checker to flag.

use crate::history::{Op, OpKind, Outcome, Recorder};
use std::time::Duration;

/// A 48×48 PNG whose pixels come from `seed`: a new thread needs a file,
/// and wani stores a file it already has only once, so every thread gets
/// its own bytes (the disk-fill fault needs new blobs to fail on).
/// Uncompressed (stored deflate blocks), so it is written without a codec.
pub fn png(seed: &str) -> Vec<u8> {
    const SIDE: usize = 48;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in seed.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
    }
    let mut raw = Vec::with_capacity(SIDE * (SIDE * 3 + 1));
    for _ in 0..SIDE {
        let row = (0..SIDE * 3).map(|_| {
            h ^= h << 13;
            h ^= h >> 7;
            h ^= h << 17;
            h as u8
        });
        // Each scanline starts with its filter type: none.
        raw.extend(std::iter::once(0).chain(row));
    }
    // zlib: header, stored blocks of at most 65535 bytes, Adler-32.
    let mut z = vec![0x78, 0x01];
    let chunks: Vec<&[u8]> = raw.chunks(65_535).collect();
    for (i, c) in chunks.iter().enumerate() {
        z.push((i + 1 == chunks.len()) as u8);
        let len = c.len() as u16;
        z.extend_from_slice(&len.to_le_bytes());
        z.extend_from_slice(&(!len).to_le_bytes());
        z.extend_from_slice(c);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &x in &raw {
        a = (a + x as u32) % 65_521;
        b = (b + a) % 65_521;
    }
    z.extend_from_slice(&((b << 16) | a).to_be_bytes());

    let mut out = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&(SIDE as u32).to_be_bytes());
    ihdr.extend_from_slice(&(SIDE as u32).to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB
    for (kind, data) in [(b"IHDR", &ihdr), (b"IDAT", &z), (b"IEND", &Vec::new())] {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let start = out.len();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let crc = wani_media::crc32(&out[start..]);
        out.extend_from_slice(&crc.to_be_bytes());
    }
    out
}

/// The body of the post with idempotency key `key`: the checkers find
/// posts by it.
pub fn body_of(key: &str) -> String {
    format!("chaos {key}")
}

/// The key in a post body written by [`body_of`].
pub fn key_in(body: &str) -> Option<&str> {
    body.trim().strip_prefix("chaos ")
}

/// A client for the nodes' HTTP addresses.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    /// `http://127.0.0.1:port` of each node, by index.
    pub urls: Vec<String>,
    pub timeout: Duration,
    pub recorder: Recorder,
}

/// What a request produced before it is recorded.
struct Answer {
    status: Option<u16>,
    json: Option<serde_json::Value>,
    error: Option<String>,
    timed_out: bool,
}

impl Client {
    /// A client with `timeout` as every request's deadline.
    pub fn new(urls: Vec<String>, timeout: Duration, recorder: Recorder) -> Client {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            // A node killed mid-run leaves dead keep-alive sockets behind.
            .pool_max_idle_per_host(4)
            .build()
            .expect("a reqwest client with plain settings");
        Client {
            http,
            urls,
            timeout,
            recorder,
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Answer {
        match req.send().await {
            Err(e) => Answer {
                status: None,
                json: None,
                timed_out: e.is_timeout(),
                error: Some(error_chain(&e)),
            },
            Ok(res) => {
                let status = res.status().as_u16();
                match res.bytes().await {
                    Err(e) => Answer {
                        status: Some(status),
                        json: None,
                        timed_out: e.is_timeout(),
                        error: Some(format!("reading the answer: {}", error_chain(&e))),
                    },
                    Ok(bytes) => {
                        let json: Option<serde_json::Value> = serde_json::from_slice(&bytes).ok();
                        let error = if (200..300).contains(&status) {
                            None
                        } else {
                            Some(
                                json.as_ref()
                                    .and_then(|j| j["error"].as_str())
                                    .map(|m| m.to_string())
                                    .unwrap_or_else(|| {
                                        format!(
                                            "no error message: {:?}",
                                            String::from_utf8_lossy(&bytes[..bytes.len().min(120)])
                                        )
                                    }),
                            )
                        };
                        Answer {
                            status: Some(status),
                            json,
                            error,
                            timed_out: false,
                        }
                    }
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)] // one call site per request kind
    fn op(
        &self,
        client: &str,
        kind: OpKind,
        node: usize,
        thread: Option<i64>,
        key: Option<&str>,
        start_ms: f64,
        a: &Answer,
    ) -> Op {
        let ok = a.status.is_some_and(|s| (200..300).contains(&s)) && a.json.is_some();
        let outcome = if ok {
            Outcome::Ok
        } else if a.status.is_some() && !a.timed_out && a.json.is_some() {
            Outcome::Failed
        } else if a.status.is_some() && !a.timed_out {
            // An answer, but not wani's JSON: still a refusal, recorded as failed.
            Outcome::Failed
        } else {
            Outcome::Unknown
        };
        Op {
            client: client.to_string(),
            kind,
            node,
            thread,
            key: key.map(str::to_string),
            start_ms,
            end_ms: self.recorder.now_ms(),
            outcome,
            status: a.status,
            post: None,
            error: a.error.clone(),
            timed_out: a.timed_out,
            served: None,
        }
    }

    /// Creates a thread on board `b` through `node`; records and returns
    /// the operation (its `thread` and `post` set when acknowledged).
    pub async fn create_thread(&self, client: &str, node: usize, key: &str) -> Op {
        let start = self.recorder.now_ms();
        let form = reqwest::multipart::Form::new()
            .text("board", "b")
            .text("body", body_of(key))
            .part(
                "media",
                reqwest::multipart::Part::bytes(png(key))
                    .file_name("chaos.png")
                    .mime_str("image/png")
                    .expect("a valid MIME type"),
            );
        let req = self
            .http
            .post(format!("{}/api/v1/thread/new", self.urls[node]))
            .header("Idempotency-Key", key)
            .multipart(form);
        let a = self.send(req).await;
        let mut op = self.op(
            client,
            OpKind::CreateThread,
            node,
            None,
            Some(key),
            start,
            &a,
        );
        if op.outcome == Outcome::Ok {
            let j = a.json.as_ref().expect("ok implies JSON");
            op.thread = j["id"].as_i64();
            op.post = j["post"]["id"].as_i64();
        }
        self.recorder.record(op.clone());
        op
    }

    /// Replies to `thread` through `node` with idempotency key `key`.
    pub async fn reply(&self, client: &str, node: usize, thread: i64, key: &str) -> Op {
        let start = self.recorder.now_ms();
        let form = reqwest::multipart::Form::new().text("body", body_of(key));
        let req = self
            .http
            .post(format!("{}/api/v1/thread/{thread}/new", self.urls[node]))
            .header("Idempotency-Key", key)
            .multipart(form);
        let a = self.send(req).await;
        let mut op = self.op(
            client,
            OpKind::Reply,
            node,
            Some(thread),
            Some(key),
            start,
            &a,
        );
        if op.outcome == Outcome::Ok {
            op.post = a.json.as_ref().and_then(|j| j["id"].as_i64());
        }
        self.recorder.record(op.clone());
        op
    }

    /// Reads a thread through `node`: `(post id, body)` in the order served.
    pub async fn read(
        &self,
        client: &str,
        node: usize,
        thread: i64,
        record: bool,
    ) -> (Op, Option<Vec<(i64, String)>>) {
        let start = self.recorder.now_ms();
        let req = self
            .http
            .get(format!("{}/api/v1/thread/{thread}", self.urls[node]));
        let a = self.send(req).await;
        let mut op = self.op(client, OpKind::Read, node, Some(thread), None, start, &a);
        let posts: Option<Vec<(i64, String)>> = if op.outcome == Outcome::Ok {
            a.json.as_ref().and_then(|j| j.as_array()).map(|list| {
                list.iter()
                    .map(|p| {
                        (
                            p["id"].as_i64().unwrap_or(-1),
                            p["body"].as_str().unwrap_or("").to_string(),
                        )
                    })
                    .collect()
            })
        } else {
            None
        };
        if record {
            op.served = posts.as_ref().map(|p| {
                let ids: Vec<i64> = p.iter().map(|x| x.0).collect();
                crate::history::Served::of(&ids)
            });
            self.recorder.record(op.clone());
        }
        (op, posts)
    }

    /// `(name, state)` of every member in `node`'s view, sorted.
    pub async fn view(&self, node: usize) -> Option<Vec<(String, String)>> {
        let res = self
            .http
            .get(format!("{}/api/v1/cluster", self.urls[node]))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .ok()?;
        let v: serde_json::Value = res.json().await.ok()?;
        let mut out: Vec<(String, String)> = v["members"]
            .as_array()?
            .iter()
            .map(|m| {
                (
                    m["name"].as_str().unwrap_or("").to_string(),
                    m["state"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        out.sort();
        Some(out)
    }

    /// Whether `node` serves entity requests (the board's catalog answers).
    pub async fn routes(&self, node: usize) -> bool {
        matches!(
            self.http
                .get(format!("{}/api/v1/board/b/catalog", self.urls[node]))
                .timeout(Duration::from_secs(3))
                .send()
                .await,
            Ok(r) if r.status().is_success()
        )
    }

    /// `POST` with no body; the status, or `None` without an answer.
    pub async fn post_empty(&self, node: usize, path: &str) -> Option<u16> {
        self.http
            .post(format!("{}{path}", self.urls[node]))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .ok()
            .map(|r| r.status().as_u16())
    }

    /// The underlying client, for the live subscribers' streams.
    pub fn raw(&self) -> &reqwest::Client {
        &self.http
    }
}

/// An error with its sources, on one line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_crc_is_png_s() {
        // The CRC of "IEND" with no data, as every PNG ends.
        assert_eq!(wani_media::crc32(b"IEND"), 0xae42_6082);
    }

    #[test]
    fn every_key_gets_its_own_png() {
        let (a, b) = (super::png("k1"), super::png("k2"));
        assert_ne!(a, b);
        assert!(a.starts_with(b"\x89PNG"));
    }
}
