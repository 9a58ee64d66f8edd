//! Test harness: a real node in-process, listening on 127.0.0.1:0, with a
//! fresh database (SQLite in a temp dir, or a fresh PostgreSQL database when
//! `WANI_TEST_POSTGRES_URL` is set) and its own blob directory. Dropped or
//! stopped, it shuts down like `wani serve` on SIGTERM.
//!
//! [`both_backends!`] turns `async fn case(db: Db)` into one test per
//! backend, so every HTTP behaviour is checked on SQLite and PostgreSQL.

#![allow(dead_code)] // each test binary uses a different part of the harness

pub mod cluster;
pub mod process;
pub mod s3;
pub mod sse;

use std::net::IpAddr;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use wani_node::http::AppState;
use wani_node::{Config, Node};

/// Which database a test node uses.
#[derive(Clone, Copy, Debug)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// A running node.
pub struct TestNode {
    pub url: String,
    pub state: AppState,
    pub dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    pg: Option<(String, String)>,
}

impl TestNode {
    /// Starts a node; `None` when the backend is not available here (a note is printed).
    pub async fn start(db: Db, tweak: impl FnOnce(&mut Config)) -> Option<TestNode> {
        let (config, dir, pg) = TestNode::prepare(db, tweak).await?;
        Some(TestNode::start_with(config, dir, pg, "127.0.0.1:0").await)
    }

    /// The test configuration, its directory and its PostgreSQL database.
    async fn prepare(
        db: Db,
        tweak: impl FnOnce(&mut Config),
    ) -> Option<(Config, tempfile::TempDir, Option<(String, String)>)> {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config::parse("").expect("default config");
        let mut pg = None;
        config.database.url = match db {
            Db::Sqlite => format!("sqlite://{}/wani.db", dir.path().display()),
            Db::Postgres => {
                let Some(admin) = wani_store::testing::postgres_admin_url() else {
                    println!(
                        "PostgreSQL tests skipped: set {}",
                        wani_store::testing::POSTGRES_ENV
                    );
                    return None;
                };
                let (url, name) = wani_store::testing::create_postgres_database(&admin)
                    .await
                    .expect("create test database");
                pg = Some((admin, name));
                url
            }
        };
        config.blobs.dir = dir.path().join("blobs");
        // Tests post fast, from one address, often the same text: anti-abuse
        // is off unless a test turns it on (tests/moderation.rs does).
        config.abuse.same_content_secs = 0;
        config.bootstrap.boards = vec![wani_store::BoardSettings {
            name: "b".into(),
            title: "Random".into(),
            captcha_threads: false,
            thread_interval_secs: 0,
            reply_interval_secs: 0,
            ..Default::default()
        }];
        tweak(&mut config);
        Some((config, dir, pg))
    }

    /// Like [`TestNode::start`], listening on `listen` (e.g. the dual-stack
    /// `[::]:0`); the URL still points at 127.0.0.1, so IPv4 clients reach
    /// it the way they reach a dual-stack listener.
    pub async fn start_on(
        listen: &str,
        db: Db,
        tweak: impl FnOnce(&mut Config),
    ) -> Option<TestNode> {
        let (config, dir, pg) = TestNode::prepare(db, tweak).await?;
        Some(TestNode::start_with(config, dir, pg, listen).await)
    }

    async fn start_with(
        config: Config,
        dir: tempfile::TempDir,
        pg: Option<(String, String)>,
        listen: &str,
    ) -> TestNode {
        let node = Node::start(config).await.expect("node starts");
        let state = node.state.clone();
        let listener = tokio::net::TcpListener::bind(listen).await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let url = format!("http://127.0.0.1:{port}");
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(node.serve(listener, async move {
            let _ = rx.await;
        }));
        TestNode {
            url,
            state,
            dir,
            stop: Some(tx),
            task: Some(task),
            pg,
        }
    }

    /// A client whose requests come from 127.0.0.1.
    pub fn client(&self) -> reqwest::Client {
        self.client_from("127.0.0.1")
    }

    /// A client whose requests come from another loopback address, i.e.
    /// another poster as far as poster ids and bumping are concerned.
    pub fn client_from(&self, ip: &str) -> reqwest::Client {
        reqwest::Client::builder()
            .local_address(ip.parse::<IpAddr>().expect("ip"))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client")
    }

    pub fn at(&self, path: &str) -> String {
        format!("{}{}", self.url, path)
    }

    /// Stops the node the way SIGTERM does and waits for it.
    pub async fn stop(mut self) {
        self.shutdown().await;
    }

    async fn shutdown(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await
                .expect("node task")
                .expect("node stopped cleanly");
        }
        if let Some((admin, name)) = self.pg.take() {
            let _ = wani_store::testing::drop_postgres_database(&admin, &name).await;
        }
    }

    /// Files in the blob directory.
    pub fn blob_files(&self) -> usize {
        files_under(&self.dir.path().join("blobs"))
    }
}

/// Files under `dir`, in every folder below it.
pub fn files_under(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| match e.path().is_dir() {
                    true => files_under(&e.path()),
                    false => 1,
                })
                .sum()
        })
        .unwrap_or(0)
}

impl Drop for TestNode {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// Polls `check` until it returns `Some`, or panics after `deadline`.
pub async fn eventually<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if start.elapsed() > deadline {
            panic!("timed out after {deadline:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A PNG of `w`×`h` pixels, opaque unless `alpha`.
pub fn png(w: u32, h: u32, alpha: bool) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    if alpha {
        let img = image::RgbaImage::from_fn(w, h, |x, y| {
            image::Rgba([
                (x % 256) as u8,
                (y % 256) as u8,
                90,
                if x < w / 2 { 0 } else { 255 },
            ])
        });
        img.write_to(&mut out, image::ImageFormat::Png)
            .expect("encode png");
    } else {
        let img = image::RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
        });
        img.write_to(&mut out, image::ImageFormat::Png)
            .expect("encode png");
    }
    out.into_inner()
}

/// A small PNG whose header claims `w`×`h` pixels (a decompression bomb):
/// a valid IHDR (with its CRC) and a tiny IDAT.
pub fn png_claiming(w: u32, h: u32) -> Vec<u8> {
    let mut bytes = png(1, 1, false);
    bytes[16..20].copy_from_slice(&w.to_be_bytes());
    bytes[20..24].copy_from_slice(&h.to_be_bytes());
    let crc = wani_media::crc32(&bytes[12..29]);
    bytes[29..33].copy_from_slice(&crc.to_be_bytes());
    bytes
}

/// A JPEG of `w`×`h` pixels.
pub fn jpeg(w: u32, h: u32) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 200])
    });
    img.write_to(&mut out, image::ImageFormat::Jpeg)
        .expect("encode jpeg");
    out.into_inner()
}

/// A multipart form with text fields and an optional file.
pub fn form(fields: &[(&str, &str)], file: Option<(&str, Vec<u8>)>) -> reqwest::multipart::Form {
    let mut f = reqwest::multipart::Form::new();
    for (k, v) in fields {
        f = f.text(k.to_string(), v.to_string());
    }
    if let Some((name, bytes)) = file {
        f = f.part(
            "media",
            reqwest::multipart::Part::bytes(bytes).file_name(name.to_string()),
        );
    }
    f
}

/// Runs each `async fn(Db)` case once on SQLite and once on PostgreSQL.
#[macro_export]
macro_rules! both_backends {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::common::Db::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::common::Db::Postgres).await
                }
            )*
        }
    };
}

/// The status and JSON body of a response (panics, showing the body, when
/// it is not JSON).
pub async fn json(res: reqwest::Response) -> (reqwest::StatusCode, serde_json::Value) {
    let status = res.status();
    let body = res.text().await.expect("body");
    let v = serde_json::from_str(&body).unwrap_or_else(|_| panic!("not JSON ({status}): {body}"));
    (status, v)
}

/// A JPEG with an EXIF block holding a camera make and a GPS position.
pub fn jpeg_with_gps(w: u32, h: u32) -> Vec<u8> {
    let plain = jpeg(w, h);
    let mut t = b"Exif\0\0MM\0\x2A\0\0\0\x08".to_vec();
    t.extend_from_slice(&2u16.to_be_bytes());
    t.extend_from_slice(&[0x01, 0x0F, 0, 2, 0, 0, 0, 10, 0, 0, 0, 38]);
    t.extend_from_slice(&[0x88, 0x25, 0, 4, 0, 0, 0, 1, 0, 0, 0, 48]);
    t.extend_from_slice(&[0, 0, 0, 0]);
    t.extend_from_slice(b"SecretCam\0");
    t.extend_from_slice(&1u16.to_be_bytes());
    t.extend_from_slice(&[0x00, 0x02, 0, 5, 0, 0, 0, 3, 0, 0, 0, 66]);
    t.extend_from_slice(&[0, 0, 0, 0]);
    t.extend_from_slice(b"GPS:48.8584N,2.2945E");
    let mut out = plain[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((t.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&t);
    out.extend_from_slice(&plain[2..]);
    out
}
