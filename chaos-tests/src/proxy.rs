//! A fault-injecting TCP proxy for the links between nodes.
//!
//! Every ordered pair of nodes (i → j) gets its own listening port that
//! forwards to j's cluster port, and node i's seeds name those ports instead
//! of its peers'. wani dials only its seeds (ractor_cluster runs in isolated
//! mode, so no address is learnt from a peer), so all traffic between i and
//! j crosses the link (i → j) or (j → i), and the nemesis can cut, slow or
//! reset it without touching the processes: a partition blocks every link
//! touching a node, latency delays each chunk, a drop resets the
//! connections open now and lets the next ones through.
//!
//! What it does not model: packet loss without a reset, or asymmetric
//! partitions (both directions of a pair are always cut together).

use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What a link does to its traffic right now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkMode {
    /// Refuse new connections and close the open ones.
    pub blocked: bool,
    /// Delay added to every chunk, each direction.
    pub latency_ms: u64,
    /// Bumped to reset every connection open now.
    pub generation: u64,
}

/// One proxied link (i → j).
pub struct Link {
    pub from: usize,
    pub to: usize,
    /// Where node `from` dials (its seed for `to`).
    pub port: u16,
    mode: watch::Sender<LinkMode>,
    task: tokio::task::JoinHandle<()>,
}

impl Link {
    /// Listens on 127.0.0.1:`port` and forwards to 127.0.0.1:`upstream`.
    pub async fn start(from: usize, to: usize, port: u16, upstream: u16) -> std::io::Result<Link> {
        Link::start_on("127.0.0.1", from, to, port, upstream).await
    }

    /// Listens on `host`:`port` and forwards to 127.0.0.1:`upstream`.
    pub async fn start_on(
        host: &str,
        from: usize,
        to: usize,
        port: u16,
        upstream: u16,
    ) -> std::io::Result<Link> {
        let listener = TcpListener::bind((host, port)).await?;
        let (tx, rx) = watch::channel(LinkMode::default());
        let task = tokio::spawn(accept(listener, upstream, rx));
        Ok(Link {
            from,
            to,
            port,
            mode: tx,
            task,
        })
    }

    /// Changes what the link does; open connections see it at once.
    pub fn set(&self, f: impl FnOnce(&mut LinkMode)) {
        self.mode.send_modify(f);
    }

    /// Whether the link touches node `n`.
    pub fn touches(&self, n: usize) -> bool {
        self.from == n || self.to == n
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept(listener: TcpListener, upstream: u16, rx: watch::Receiver<LinkMode>) {
    loop {
        let Ok((down, _)) = listener.accept().await else {
            continue;
        };
        let mode = *rx.borrow();
        if mode.blocked {
            drop(down);
            continue;
        }
        let rx = rx.clone();
        tokio::spawn(async move {
            let Ok(up) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                return;
            };
            let _ = down.set_nodelay(true);
            let _ = up.set_nodelay(true);
            let (dr, dw) = down.into_split();
            let (ur, uw) = up.into_split();
            let gen = mode.generation;
            let mut a = tokio::spawn(pipe(dr, uw, rx.clone(), gen));
            let mut b = tokio::spawn(pipe(ur, dw, rx, gen));
            // Either direction ending ends the connection: a half-open
            // cluster link would only confuse the failure detector.
            tokio::select! {
                _ = &mut a => b.abort(),
                _ = &mut b => a.abort(),
            }
        });
    }
}

/// Copies one direction until EOF, an error, a block or a reset.
async fn pipe(
    mut r: tokio::net::tcp::OwnedReadHalf,
    mut w: tokio::net::tcp::OwnedWriteHalf,
    mut rx: watch::Receiver<LinkMode>,
    generation: u64,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let cut = |m: &LinkMode| m.blocked || m.generation != generation;
        if cut(&rx.borrow()) {
            return;
        }
        tokio::select! {
            n = r.read(&mut buf) => {
                let n = match n { Ok(0) | Err(_) => return, Ok(n) => n };
                let latency = rx.borrow().latency_ms;
                if latency > 0 {
                    tokio::time::sleep(Duration::from_millis(latency)).await;
                }
                if cut(&rx.borrow()) || w.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
            changed = rx.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}

/// Every link of a cluster.
#[derive(Default)]
pub struct Links {
    pub links: Vec<Arc<Link>>,
}

impl Links {
    /// Applies `f` to every link touching node `n`.
    pub fn around(&self, n: usize, f: impl Fn(&mut LinkMode)) {
        for l in self.links.iter().filter(|l| l.touches(n)) {
            l.set(&f);
        }
    }

    /// Blocks the links between the two sides.
    pub fn split(&self, side: &[usize]) {
        for l in &self.links {
            if side.contains(&l.from) != side.contains(&l.to) {
                l.set(|m| m.blocked = true);
            }
        }
    }

    /// Every link back to normal.
    pub fn heal(&self) {
        for l in &self.links {
            l.set(|m| {
                m.blocked = false;
                m.latency_ms = 0;
            });
        }
    }

    /// The port node `from` dials to reach `to`.
    pub fn port(&self, from: usize, to: usize) -> Option<u16> {
        self.links
            .iter()
            .find(|l| l.from == from && l.to == to)
            .map(|l| l.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn echo_server() -> u16 {
        let l = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = l.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut b = [0u8; 1024];
                    while let Ok(n) = s.read(&mut b).await {
                        if n == 0 || s.write_all(&b[..n]).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        port
    }

    fn free() -> u16 {
        std::net::TcpListener::bind(("127.0.0.1", 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    #[tokio::test]
    async fn forwards_then_cuts_then_heals() {
        let up = echo_server().await;
        let link = Link::start(0, 1, free(), up).await.unwrap();
        let mut s = TcpStream::connect(("127.0.0.1", link.port)).await.unwrap();
        s.write_all(b"ping").await.unwrap();
        let mut b = [0u8; 4];
        s.read_exact(&mut b).await.unwrap();
        assert_eq!(&b, b"ping");

        link.set(|m| m.blocked = true);
        let n = s.read(&mut b).await.unwrap_or(0);
        assert_eq!(n, 0, "the open connection is closed by the block");
        let mut s2 = TcpStream::connect(("127.0.0.1", link.port)).await.unwrap();
        assert_eq!(
            s2.read(&mut b).await.unwrap_or(0),
            0,
            "a new one is refused"
        );

        link.set(|m| m.blocked = false);
        let mut s3 = TcpStream::connect(("127.0.0.1", link.port)).await.unwrap();
        s3.write_all(b"pong").await.unwrap();
        s3.read_exact(&mut b).await.unwrap();
        assert_eq!(&b, b"pong");
    }

    #[tokio::test]
    async fn a_drop_resets_open_connections_only() {
        let up = echo_server().await;
        let link = Link::start(0, 1, free(), up).await.unwrap();
        let mut s = TcpStream::connect(("127.0.0.1", link.port)).await.unwrap();
        s.write_all(b"x").await.unwrap();
        let mut b = [0u8; 1];
        s.read_exact(&mut b).await.unwrap();
        link.set(|m| m.generation += 1);
        assert_eq!(s.read(&mut b).await.unwrap_or(0), 0);
        let mut s2 = TcpStream::connect(("127.0.0.1", link.port)).await.unwrap();
        s2.write_all(b"y").await.unwrap();
        s2.read_exact(&mut b).await.unwrap();
        assert_eq!(&b, b"y");
    }
}
