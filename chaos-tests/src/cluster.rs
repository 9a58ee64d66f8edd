//! The system under test: a throwaway PostgreSQL and N `wani serve`
//! processes on it, each in its own directory with its own `cluster.toml`.
//!
//! Nodes reach each other through the fault-injecting proxy (`proxy.rs`):
//! each node's seeds are the proxy ports of its links, never a peer's own
//! port. PostgreSQL is started with `scripts/postgres.sh` so the nemesis can
//! stop and start it; with `--postgres URL` the harness uses a server it
//! does not own, and the `pg-restart` fault is then reported as not injected.

use crate::proxy::{Link, Links};
use anyhow::{bail, Context};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The repository root (scripts live there).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("chaos-tests sits in the repository")
        .to_path_buf()
}

/// A port nobody listens on now, below the ephemeral range (so an outgoing
/// connection cannot take it meanwhile).
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    // Spread from the pid so concurrent runs rarely try the same ports.
    let base = 10_000 + (std::process::id() % 200) * 47;
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let p = 10_000 + ((base + n * 7) % 20_000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
}

/// A PostgreSQL binary: PATH first, then Debian's newest install.
fn pg_binary(name: &str) -> anyhow::Result<PathBuf> {
    if let Ok(out) = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
    {
        let p = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.status.success() && !p.is_empty() {
            return Ok(PathBuf::from(p));
        }
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin").join(name))
        .filter(|p| p.exists())
        .collect();
    found.sort();
    found
        .pop()
        .with_context(|| format!("cannot find {name}: apt-get install -y postgresql"))
}

/// The PostgreSQL server of a run.
pub struct Postgres {
    /// `postgres://…/postgres` (the server, not a run's database).
    pub url: String,
    /// The data directory, when the harness owns the server.
    dir: Option<(PathBuf, u16)>,
}

impl Postgres {
    /// Starts a throwaway server in `dir` on a free port.
    pub fn start(dir: &Path) -> anyhow::Result<Postgres> {
        let port = free_port();
        let url = postgres_sh(&["start", &dir.display().to_string(), &port.to_string()])?;
        Ok(Postgres {
            url,
            dir: Some((dir.to_path_buf(), port)),
        })
    }

    /// A server someone else runs.
    pub fn external(url: &str) -> Postgres {
        Postgres {
            url: url.to_string(),
            dir: None,
        }
    }

    /// Whether the nemesis may stop and start it.
    pub fn owned(&self) -> bool {
        self.dir.is_some()
    }

    /// Stops the server (fast shutdown: clients are disconnected).
    pub fn stop(&self) -> anyhow::Result<()> {
        let (dir, _) = self
            .dir
            .as_ref()
            .context("PostgreSQL is not ours to stop")?;
        postgres_sh(&["stop", &dir.display().to_string()])?;
        Ok(())
    }

    /// Starts it again on the same port.
    pub fn restart(&self) -> anyhow::Result<()> {
        let (dir, port) = self
            .dir
            .as_ref()
            .context("PostgreSQL is not ours to start")?;
        postgres_sh(&["start", &dir.display().to_string(), &port.to_string()])?;
        Ok(())
    }

    /// Creates a fresh database and returns its URL.
    pub fn create_database(&self, name: &str) -> anyhow::Result<String> {
        psql(&self.url, &format!("CREATE DATABASE {name}"))?;
        let base = self
            .url
            .rsplit_once('/')
            .map(|(b, _)| b)
            .context("a PostgreSQL URL ends in /database")?;
        Ok(format!("{base}/{name}"))
    }

    /// Drops a run's database.
    pub fn drop_database(&self, name: &str) {
        let _ = psql(
            &self.url,
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        );
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some((dir, _)) = &self.dir {
            let _ = postgres_sh(&["stop", &dir.display().to_string()]);
        }
    }
}

fn postgres_sh(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(repo_root().join("scripts/postgres.sh"))
        .args(args)
        .output()
        .context("running scripts/postgres.sh")?;
    if !out.status.success() {
        bail!(
            "scripts/postgres.sh {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Runs one SQL statement with `psql`; rows as tab-separated fields.
pub fn psql(url: &str, sql: &str) -> anyhow::Result<Vec<Vec<String>>> {
    let out = Command::new(pg_binary("psql")?)
        .args([
            "-X",
            "-q",
            "-A",
            "-t",
            "-F",
            "\t",
            "-v",
            "ON_ERROR_STOP=1",
            url,
            "-c",
            sql,
        ])
        .output()
        .context("running psql")?;
    if !out.status.success() {
        bail!(
            "psql: {sql}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect())
}

/// One `wani serve` process (or its place while it is down).
pub struct Node {
    pub name: String,
    /// The address it listens on (its namespace's, or 127.0.0.1).
    pub host: String,
    /// Its network namespace, in the netns mode.
    pub netns: Option<String>,
    pub dir: PathBuf,
    pub http: u16,
    pub cluster: u16,
    child: Option<Child>,
    wani: PathBuf,
    env: Vec<(String, String)>,
}

impl Node {
    /// `http://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("http://{}:{}", self.host, self.http)
    }

    /// Starts the process and waits until it prints the URL it serves.
    pub fn start(&mut self) -> anyhow::Result<()> {
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("wani.log"))?;
        let mut cmd = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                // `ip netns exec` execs the program: the pid stays wani's.
                c.args(["netns", "exec", ns]).arg(&self.wani);
                c
            }
            None => Command::new(&self.wani),
        };
        let mut child = cmd
            .current_dir(&self.dir)
            .env(
                "RUST_LOG",
                std::env::var("WANI_CHAOS_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .envs(self.env.iter().cloned())
            .arg("serve")
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("starting {}", self.wani.display()))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        reader.read_line(&mut line)?;
        if !line.starts_with("wani is serving ") {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "node {} did not start (first line {line:?}); see {}",
                self.name,
                self.dir.join("wani.log").display()
            );
        }
        // Keep draining stdout: a closed pipe would fail wani's later prints.
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("stdout.log"))?;
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut reader, &mut log);
        });
        self.child = Some(child);
        Ok(())
    }

    /// Sends `sig` to the process, if it runs.
    pub fn signal(&self, sig: i32) {
        if let Some(c) = &self.child {
            // SAFETY: kill(2) on our own child's pid has no memory effects.
            unsafe { libc::kill(c.id() as i32, sig) };
        }
    }

    /// `kill -9` and reap.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            self.signal_pid(c.id(), libc::SIGCONT);
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn signal_pid(&self, pid: u32, sig: i32) {
        // SAFETY: as in `signal`.
        unsafe { libc::kill(pid as i32, sig) };
    }

    /// Whether the process runs.
    pub fn running(&mut self) -> bool {
        match &mut self.child {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Settings of the nodes of one run.
pub struct ClusterSpec<'a> {
    pub names: Vec<String>,
    pub root: &'a Path,
    pub wani: &'a Path,
    pub db_url: &'a str,
    pub env: Vec<(String, String)>,
    pub cluster_settings: &'a str,
    /// `[blobs]` section lines (the database by default).
    pub blobs: String,
    /// Use network namespaces (else the link proxy).
    pub netns: bool,
}

/// The nodes and the links between them.
pub struct Cluster {
    // Fields drop in order: the processes go before their namespaces.
    pub nodes: Vec<Node>,
    pub links: Arc<Links>,
    /// How links between nodes are faulted, as the report says it.
    pub network: String,
    /// The namespaces, in the netns mode.
    pub netns: Option<crate::netns::Netns>,
    /// PostgreSQL's forwarder on the bridge, in the netns mode.
    _pg_forward: Option<Link>,
}

impl Cluster {
    /// Writes configs, starts the proxies (or namespaces) and the processes.
    pub async fn start(spec: ClusterSpec<'_>) -> anyhow::Result<Cluster> {
        let n = spec.names.len();
        let netns = if spec.netns {
            Some(crate::netns::Netns::create(n).context("creating network namespaces")?)
        } else {
            None
        };
        // In namespaces every node has its own address, so the same ports.
        let ports: Vec<(u16, u16)> = match &netns {
            Some(_) => (0..n).map(|_| (8080, 7000)).collect(),
            None => (0..n).map(|_| (free_port(), free_port())).collect(),
        };
        let host = |i: usize| match &netns {
            Some(ns) => ns.ip(i).to_string(),
            None => "127.0.0.1".to_string(),
        };
        let mut links = Links::default();
        if netns.is_none() {
            for i in 0..n {
                for (j, &(_, cluster_port)) in ports.iter().enumerate() {
                    if i != j {
                        let link = Link::start(i, j, free_port(), cluster_port)
                            .await
                            .context("starting a link proxy")?;
                        links.links.push(Arc::new(link));
                    }
                }
            }
        }
        let (db_url, pg_forward) = match &netns {
            Some(ns) => {
                let (prefix, rest) = spec
                    .db_url
                    .split_once("@127.0.0.1:")
                    .context("the netns mode needs PostgreSQL on 127.0.0.1 (the harness's own)")?;
                let (port, db) = rest
                    .split_once('/')
                    .context("a PostgreSQL URL with a database")?;
                let port: u16 = port.parse().context("PostgreSQL's port")?;
                let fwd_port = free_port();
                let fwd = Link::start_on(&ns.host_ip, 0, 0, fwd_port, port)
                    .await
                    .context("starting PostgreSQL's forwarder on the bridge")?;
                (
                    format!("{prefix}@{}:{fwd_port}/{db}", ns.host_ip),
                    Some(fwd),
                )
            }
            None => (spec.db_url.to_string(), None),
        };
        let mut nodes = Vec::new();
        for (i, name) in spec.names.iter().enumerate() {
            let dir = spec.root.join(name);
            std::fs::create_dir_all(&dir)?;
            let seeds: Vec<String> = (0..n)
                .filter(|j| *j != i)
                .map(|j| match &netns {
                    Some(_) => format!("\"{}:{}\"", host(j), ports[j].1),
                    None => format!(
                        "\"127.0.0.1:{}\"",
                        links.port(i, j).expect("a link per pair")
                    ),
                })
                .collect();
            let cluster = if n > 1 {
                format!(
                    "[cluster]\nenabled = true\nlisten = \"{h}:{cl}\"\nseeds = [{seeds}]\n\
                     cookie = \"chaos cookie\"\n{extra}\n",
                    h = host(i),
                    cl = ports[i].1,
                    seeds = seeds.join(", "),
                    extra = spec.cluster_settings,
                )
            } else {
                String::new()
            };
            let cfg = format!(
                "[node]\nname = \"{name}\"\nlisten = \"{h}:{http}\"\n\
                 [database]\nurl = \"{db}\"\nmax_connections = 8\n\
                 {blobs}\n\
                 [abuse]\nsame_content_secs = 0\n\
                 {cluster}\
                 [[bootstrap.boards]]\nname = \"b\"\ntitle = \"Chaos\"\nmax_threads = 100000\nbump_limit = 1000000\n\
                 captcha_threads = false\nthread_interval_secs = 0\nreply_interval_secs = 0\n",
                h = host(i),
                http = ports[i].0,
                db = db_url,
                blobs = spec.blobs,
            );
            std::fs::write(dir.join("cluster.toml"), cfg)?;
            nodes.push(Node {
                name: name.clone(),
                host: host(i),
                netns: netns.as_ref().map(|ns| ns.ns(i).to_string()),
                dir,
                http: ports[i].0,
                cluster: ports[i].1,
                child: None,
                wani: spec.wani.to_path_buf(),
                env: spec.env.clone(),
            });
        }
        let network = match &netns {
            Some(ns) => ns.describe(),
            None => "proxy".into(),
        };
        let mut cluster = Cluster {
            nodes,
            links: Arc::new(links),
            network,
            netns,
            _pg_forward: pg_forward,
        };
        // One after the other: each migrates the schema before it prints its
        // URL, so no two migrations race.
        for node in cluster.nodes.iter_mut() {
            node.start()?;
        }
        Ok(cluster)
    }

    /// The index of the node that owns `thread` when `up` nodes are live.
    pub fn owner(&self, thread: i64, up: &[usize]) -> Option<usize> {
        use wani_supervision::{owner_of, shard_of, EntityKey, NodeName, DEFAULT_SHARDS};
        let names: Vec<NodeName> = up
            .iter()
            .map(|&i| NodeName(self.nodes[i].name.clone()))
            .collect();
        let shard = shard_of(&EntityKey::new("thread", thread), DEFAULT_SHARDS);
        let o = owner_of(shard, &names)?;
        self.nodes.iter().position(|n| n.name == o.0)
    }

    /// The nodes' HTTP base URLs.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(Node::url).collect()
    }
}

/// Polls `f` until it answers `Some`, or fails after `within`.
pub async fn eventually<T, F, Fut>(what: &str, within: Duration, mut f: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f().await {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("{what}: not within {} s", within.as_secs_f64());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
