//! The HTTP listener under connection abuse, against the `wani` binary:
//! a flood of idle connections from one address, a request head trickled a
//! byte at a time, kept-alive connections left idle, and live streams that
//! must outlive all of those limits.
//!
//! Attackers and normal clients are told apart by their source address: the
//! whole of 127/8 is local, so the attacker binds 127.0.0.2 (or .3) and the
//! normal client 127.0.0.1.

mod common;

use common::process::{free_port, wani, Server};
use common::{form, png};
use std::io::{BufRead, BufReader, ErrorKind, Read};
use std::net::{IpAddr, SocketAddr};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// `[http]` limits of one test's node.
struct Limits {
    head_secs: u64,
    idle_secs: u64,
    per_addr: u32,
}

/// Starts `wani serve` in `dir` with `limits`; with `fd_limit`, the node runs under
/// that open-file limit (soft and hard), as a server whose limit is smaller
/// than what an attacker can open.
fn start(dir: &Path, limits: &Limits, fd_limit: Option<u64>) -> (Server, SocketAddr) {
    let port = free_port();
    let cfg = format!(
        "[node]\nlisten = \"127.0.0.1:{port}\"\n\
         [http]\nhead_timeout_secs = {}\nidle_timeout_secs = {}\nmax_connections_per_addr = {}\n\
         [abuse]\nsame_content_secs = 0\n\
         [[bootstrap.boards]]\nname = \"b\"\ntitle = \"Random\"\ncaptcha_threads = false\n\
         thread_interval_secs = 0\nreply_interval_secs = 0\n",
        limits.head_secs, limits.idle_secs, limits.per_addr
    );
    std::fs::write(dir.join("cluster.toml"), cfg).unwrap();
    let mut cmd = wani(dir);
    // Its log is kept in `dir/wani.log`, for the tests that read it.
    let log = std::fs::File::create(dir.join("wani.log")).unwrap();
    cmd.arg("serve").stdout(Stdio::piped()).stderr(log);
    if let Some(n) = fd_limit {
        // SAFETY: only setrlimit, async-signal-safe, runs between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                let lim = libc::rlimit {
                    rlim_cur: n,
                    rlim_max: n,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let mut child = cmd.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("wani is serving ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .trim_end_matches('/')
        .to_string();
    let addr = url.trim_start_matches("http://").parse().unwrap();
    (Server(child, url), addr)
}

/// Raises this test process's open-file limit to its hard limit; returns it.
fn raise_own_fd_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write `lim`.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
    }
    lim.rlim_cur
}

/// A connection to `addr` from the source address `from`.
async fn connect_from(from: &str, addr: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    // The port is then picked at connect time, per destination: without
    // this, each bind to port 0 scans every port already bound, and
    // twenty thousand binds take minutes.
    let on: libc::c_int = 1;
    // SAFETY: a valid socket and an int-sized option value.
    unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&socket),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
    socket.bind(SocketAddr::new(from.parse::<IpAddr>().unwrap(), 0))?;
    socket.connect(addr).await
}

/// A client from 127.0.0.1 that opens a new connection for every request,
/// so each answer also proves a connection was accepted.
fn normal_client() -> reqwest::Client {
    reqwest::Client::builder()
        .local_address("127.0.0.1".parse::<IpAddr>().unwrap())
        .pool_max_idle_per_host(0)
        // Room for one lost SYN (retried after 1 s) on a loaded machine.
        .timeout(Duration::from_secs(4))
        .build()
        .unwrap()
}

/// Reads what an attacker socket got; `false` once the server closed it.
/// Sets `saw_429` if the server's refusal was among it.
fn still_open(s: &mut std::net::TcpStream, saw_429: &mut bool) -> bool {
    let mut buf = [0u8; 512];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return false,
            Ok(n) => {
                if buf[..n].starts_with(b"HTTP/1.1 429") {
                    *saw_429 = true;
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
}

/// Keeps the attacker sockets the server has not closed; returns how many.
fn prune(held: &mut Vec<std::net::TcpStream>, saw_429: &mut bool) -> usize {
    held.retain_mut(|s| still_open(s, saw_429));
    held.len()
}

/// Waits until `check` holds, polling every 50 ms; fails with `what` at the deadline.
async fn until(what: &str, deadline: Duration, mut check: impl FnMut() -> bool) {
    let end = Instant::now() + deadline;
    while !check() {
        assert!(Instant::now() < end, "{what} (waited {deadline:?})");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Reads one response (head and `content-length` body) from `s`.
async fn read_response(s: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..end]).to_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map(|v| v.trim().parse().unwrap())
                .unwrap_or(0);
            if got.len() >= end + 4 + len {
                return String::from_utf8_lossy(&got).into_owned();
            }
        }
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .expect("a response within 5 s")
            .expect("reading a response");
        assert!(n > 0, "the connection closed before its response: {got:?}");
        got.extend_from_slice(&buf[..n]);
    }
}

/// How long until the server closes `s` (reading and discarding whatever
/// comes); `None` if it is still open after `wait`.
async fn closed_after(s: &mut TcpStream, wait: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    let end = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(end, s.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

const GET_HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: wani\r\n\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_thousand_idle_connections_from_one_address_leave_the_node_answering() {
    const WANTED: u64 = 20_000;
    const NODE_FD_LIMIT: u64 = 4096;
    let own = raise_own_fd_limit();
    // The test's own descriptors: the runtime, the client, the child's pipes.
    let attack = WANTED.min(own.saturating_sub(500));
    if attack < WANTED {
        eprintln!(
            "NOTE: this process may open {own} files (hard limit): the flood is {attack} \
             connections, not {WANTED} (raise `ulimit -Hn` for the full size)"
        );
    }
    assert!(
        attack >= 5_000,
        "the open-file hard limit {own} is too low for a flood larger than the node's own \
         limit (4,096); raise `ulimit -Hn`"
    );
    let limits = Limits {
        head_secs: 3,
        idle_secs: 3,
        per_addr: 64,
    };
    let dir = tempfile::tempdir().unwrap();
    // The node may hold 4,096 descriptors: without a cap, the flood alone
    // would take them all, as 20,000 did in production.
    let (server, addr) = start(dir.path(), &limits, Some(NODE_FD_LIMIT));
    let url = format!("{}/api/v1/boards/", server.1);
    let client = normal_client();
    assert!(client.get(&url).send().await.unwrap().status().is_success());

    // The attacker opens its connections 256 at a time and sends nothing;
    // the phase is bounded whatever the server does.
    let flood = tokio::spawn(async move {
        let deadline = Instant::now() + Duration::from_secs(25);
        let mut held = Vec::new();
        let mut failed = 0u64;
        let mut opened = 0u64;
        while opened + failed < attack && Instant::now() < deadline {
            let batch = (attack - opened - failed).min(256);
            let tries = (0..batch).map(|_| {
                tokio::time::timeout(Duration::from_secs(2), connect_from("127.0.0.2", addr))
            });
            for r in futures::future::join_all(tries).await {
                match r {
                    Ok(Ok(s)) => {
                        let s = s.into_std().unwrap();
                        s.set_nonblocking(true).unwrap();
                        held.push(s);
                        opened += 1;
                    }
                    _ => failed += 1,
                }
            }
        }
        (held, opened, failed)
    });

    // Meanwhile, and after, the normal client gets every answer in time.
    let mut answered = 0;
    let mut slowest = Duration::ZERO;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    while !flood.is_finished() || answered < 10 {
        tick.tick().await;
        let started = Instant::now();
        let res = client.get(&url).send().await;
        let took = started.elapsed();
        match res {
            Ok(r) if r.status().is_success() => {
                answered += 1;
                slowest = slowest.max(took);
            }
            other => panic!(
                "a normal client's GET failed during the flood after {took:?}: {other:?} \
                 ({answered} answered before)"
            ),
        }
    }
    let (mut held, opened, failed) = flood.await.unwrap();
    eprintln!(
        "flood: {opened} connections opened from 127.0.0.2 ({failed} failed); \
         {answered} GETs from 127.0.0.1 answered, the slowest in {slowest:?}"
    );
    // On a busy machine the flood may not all open in its 25 s; it must at
    // least be well over what the node could hold without the cap.
    assert!(
        opened >= 2 * NODE_FD_LIMIT,
        "the node stopped taking connections: only {opened} of {attack} opened ({failed} failed)"
    );

    // The server closed every connection past the cap at once (saying 429),
    // and the rest once they had sent no head for the head timeout.
    let mut saw_429 = false;
    until(
        "at most the per-address cap of the attacker's connections stay open",
        Duration::from_secs(2),
        || prune(&mut held, &mut saw_429) <= limits.per_addr as usize,
    )
    .await;
    assert!(saw_429, "connections over the cap are answered 429");
    until(
        "the silent connections are closed after the head timeout",
        Duration::from_secs(limits.head_secs + 3),
        || prune(&mut held, &mut saw_429) == 0,
    )
    .await;
    // The refusals are logged, but not once per connection.
    let log = std::fs::read_to_string(dir.path().join("wani.log")).unwrap();
    let warnings = log.matches("refused connections over").count();
    assert!(
        (1..=2).contains(&warnings),
        "{warnings} warnings about refused connections (one a minute at most):\n{log}"
    );
    // And the node is still there for everyone, the attacker's address too.
    assert!(client.get(&url).send().await.unwrap().status().is_success());
    let mut again = connect_from("127.0.0.2", addr).await.unwrap();
    again.write_all(GET_HEALTHZ).await.unwrap();
    assert!(read_response(&mut again).await.starts_with("HTTP/1.1 200"));
}

/// Sends `bytes` one at a time, `every` apart, until the server closes the
/// connection; returns how long after the first byte that was, and how many
/// bytes had gone out (`None` if it never closed within `wait`).
async fn trickle(
    s: TcpStream,
    bytes: &[u8],
    every: Duration,
    wait: Duration,
) -> Option<(Duration, usize)> {
    let (mut rd, mut wr) = s.into_split();
    let bytes = bytes.to_vec();
    let (sent_tx, sent_rx) = tokio::sync::watch::channel(0usize);
    let writer = tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        for (i, b) in bytes.iter().enumerate() {
            tick.tick().await;
            if wr.write_all(&[*b]).await.is_err() {
                return;
            }
            let _ = sent_tx.send(i + 1);
        }
    });
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    // The server sends nothing before the head is whole: the first thing
    // read is the close.
    let closed = match tokio::time::timeout(wait, rd.read(&mut buf)).await {
        Err(_) => None,
        Ok(Ok(0)) | Ok(Err(_)) => Some(started.elapsed()),
        Ok(Ok(n)) => panic!(
            "the server answered a head that never finished: {:?}",
            String::from_utf8_lossy(&buf[..n])
        ),
    };
    writer.abort();
    let sent = *sent_rx.borrow();
    closed.map(|t| (t, sent))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_trickled_a_byte_at_a_time_is_cut_at_the_head_timeout() {
    let limits = Limits {
        head_secs: 2,
        idle_secs: 30,
        per_addr: 64,
    };
    let dir = tempfile::tempdir().unwrap();
    let (_server, addr) = start(dir.path(), &limits, None);
    let head = Duration::from_secs(limits.head_secs);
    // Far longer than the head timeout if sent whole: 60 bytes, one every 300 ms.
    let slow = b"GET /healthz HTTP/1.1\r\nHost: wani\r\nX-Pad: aaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let every = Duration::from_millis(300);

    // On a fresh connection.
    let s = connect_from("127.0.0.2", addr).await.unwrap();
    let (took, sent) = trickle(s, slow, every, head + Duration::from_secs(6))
        .await
        .expect("a trickled head on a fresh connection is cut");
    assert!(
        took >= head - Duration::from_millis(300) && took <= head + Duration::from_secs(2),
        "cut after {took:?} ({sent} bytes sent), the head timeout is {head:?}"
    );
    assert!(sent < slow.len(), "the head never finished");

    // On a kept-alive connection after a request: the idle timeout (30 s)
    // does not protect a next head that has started.
    let mut s = connect_from("127.0.0.2", addr).await.unwrap();
    s.write_all(GET_HEALTHZ).await.unwrap();
    assert!(read_response(&mut s).await.starts_with("HTTP/1.1 200"));
    let (took, sent) = trickle(s, slow, every, head + Duration::from_secs(6))
        .await
        .expect("a trickled head on a kept-alive connection is cut");
    assert!(
        took <= head + Duration::from_secs(2),
        "cut after {took:?} ({sent} bytes sent), the head timeout is {head:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed_after_their_timeouts() {
    let limits = Limits {
        head_secs: 1,
        idle_secs: 3,
        per_addr: 64,
    };
    let dir = tempfile::tempdir().unwrap();
    let (_server, addr) = start(dir.path(), &limits, None);
    let (head, idle) = (
        Duration::from_secs(limits.head_secs),
        Duration::from_secs(limits.idle_secs),
    );

    // A connection that never sends anything owes its head from the start.
    let mut silent = connect_from("127.0.0.2", addr).await.unwrap();
    let took = closed_after(&mut silent, head + Duration::from_secs(5))
        .await
        .expect("a silent connection is closed");
    assert!(
        took >= head - Duration::from_millis(300) && took <= head + Duration::from_secs(2),
        "closed after {took:?}, the head timeout is {head:?}"
    );

    // A kept-alive connection waits longer than the head timeout between
    // requests: still served two seconds after its first answer.
    let mut kept = connect_from("127.0.0.2", addr).await.unwrap();
    kept.write_all(GET_HEALTHZ).await.unwrap();
    assert!(read_response(&mut kept).await.starts_with("HTTP/1.1 200"));
    // The pause is what is tested: longer than the head timeout, shorter than the idle one.
    tokio::time::sleep(head + Duration::from_secs(1)).await;
    kept.write_all(GET_HEALTHZ).await.unwrap();
    assert!(read_response(&mut kept).await.starts_with("HTTP/1.1 200"));
    // Then idle for good: closed after the idle timeout.
    let took = closed_after(&mut kept, idle + Duration::from_secs(5))
        .await
        .expect("an idle kept-alive connection is closed");
    assert!(
        took >= idle - Duration::from_millis(300) && took <= idle + Duration::from_secs(2),
        "closed after {took:?}, the idle timeout is {idle:?}"
    );
}

/// SIGTERM drains a node: requests in flight finish, and connections with
/// nothing in flight close at once, whether kept alive after an answer or
/// silent since they opened. A silent one used to hold the exit up until it
/// was given up on: 10 s (the wait for a live stream's request line) or the
/// head timeout, a minute here; the node must be gone well before either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_node_does_not_wait_for_idle_connections() {
    let limits = Limits {
        head_secs: 60,
        idle_secs: 120,
        per_addr: 64,
    };
    let dir = tempfile::tempdir().unwrap();
    let (mut server, addr) = start(dir.path(), &limits, None);
    let mut silent = Vec::new();
    for _ in 0..3 {
        silent.push(connect_from("127.0.0.2", addr).await.unwrap());
    }
    let mut kept = connect_from("127.0.0.2", addr).await.unwrap();
    kept.write_all(GET_HEALTHZ).await.unwrap();
    assert!(read_response(&mut kept).await.starts_with("HTTP/1.1 200"));
    let status =
        tokio::task::spawn_blocking(move || server.terminate_within(Duration::from_secs(5)))
            .await
            .unwrap();
    assert!(status.success(), "{status:?}");
    for mut s in silent.into_iter().chain([kept]) {
        assert!(
            closed_after(&mut s, Duration::from_secs(5)).await.is_some(),
            "connection left open by an exited node"
        );
    }
}

/// Opens a live stream for `thread` on `s` and reads up to its `new-client` event.
async fn open_stream(s: &mut TcpStream, thread: i64) -> String {
    s.write_all(
        format!("GET /api/v1/live?thread={thread} HTTP/1.1\r\nHost: wani\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    read_until(s, "new-client").await
}

/// Reads from `s` until `what` has come.
async fn read_until(s: &mut TcpStream, what: &str) -> String {
    let mut got = String::new();
    let mut buf = [0u8; 4096];
    while !got.contains(what) {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no {what:?} within 10 s; got {got:?}"))
            .expect("reading the stream");
        assert!(n > 0, "the stream closed before {what:?}: {got:?}");
        got.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_streams_outlive_the_timeouts_and_count_towards_the_cap() {
    let limits = Limits {
        head_secs: 1,
        idle_secs: 2,
        per_addr: 2,
    };
    let dir = tempfile::tempdir().unwrap();
    let (server, addr) = start(dir.path(), &limits, None);
    let c = reqwest::Client::new();
    let res = c
        .post(format!("{}/api/v1/thread/new", server.1))
        .multipart(form(
            &[("board", "b"), ("subject", "live"), ("body", "op")],
            Some(("a.png", png(20, 20, false))),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let thread = res.json::<serde_json::Value>().await.unwrap()["id"]
        .as_i64()
        .unwrap();

    // One stream opened on a fresh connection (served off hyper), one on a
    // connection that served a request first (served through hyper).
    let mut direct = connect_from("127.0.0.3", addr).await.unwrap();
    let first = open_stream(&mut direct, thread).await;
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    let mut reused = connect_from("127.0.0.3", addr).await.unwrap();
    reused.write_all(GET_HEALTHZ).await.unwrap();
    assert!(read_response(&mut reused).await.starts_with("HTTP/1.1 200"));
    let first = open_stream(&mut reused, thread).await;
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");

    // The two streams hold 127.0.0.3's two connections: a third is refused.
    let mut third = connect_from("127.0.0.3", addr).await.unwrap();
    let mut answer = String::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), third.read_to_string(&mut answer)).await;
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer:?}");

    // Longer than both timeouts, with nothing on the streams: that silence is the point.
    tokio::time::sleep(Duration::from_secs(limits.head_secs + limits.idle_secs + 1)).await;
    let res = c
        .post(format!("{}/api/v1/thread/{thread}/new", server.1))
        .multipart(form(&[("body", "still there?")], None))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    read_until(&mut direct, "new-post").await;
    read_until(&mut reused, "new-post").await;

    // Closing a stream gives its place back.
    drop(direct);
    until_connects("127.0.0.3", addr).await;
}

/// Waits until a connection from `from` is served again.
async fn until_connects(from: &str, addr: SocketAddr) {
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        let mut s = connect_from(from, addr).await.unwrap();
        s.write_all(GET_HEALTHZ).await.unwrap();
        let mut buf = [0u8; 64];
        let n = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf))
            .await
            .ok()
            .and_then(|r| r.ok())
            .unwrap_or(0);
        if buf[..n].starts_with(b"HTTP/1.1 200") {
            return;
        }
        assert!(
            Instant::now() < end,
            "{from} is still refused after its stream closed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
