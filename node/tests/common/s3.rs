//! A real S3-protocol server for the `s3` blob backend tests: s3rver (from
//! the npm registry; scripts/test installs it under target/s3rver), as its
//! own process on loopback, keeping objects in a directory so that a
//! restart loses nothing. It checks request signatures against its one
//! account, `S3RVER` / `S3RVER`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::process::free_port;

pub const BUCKET: &str = "wani";
pub const KEY: &str = "S3RVER";

/// The s3rver executable, or `None` (with a note) where it is not installed.
pub fn s3rver_or_skip() -> Option<PathBuf> {
    let path = std::env::var_os("WANI_TEST_S3RVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../target/s3rver/node_modules/.bin/s3rver")
        });
    if path.is_file() {
        Some(path)
    } else {
        println!(
            "S3 tests skipped: no s3rver at {} (scripts/test installs it; or set WANI_TEST_S3RVER)",
            path.display()
        );
        None
    }
}

/// A running s3rver with the bucket [`BUCKET`].
pub struct S3rver {
    exe: PathBuf,
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub port: u16,
}

impl S3rver {
    pub fn start() -> Option<S3rver> {
        let exe = s3rver_or_skip()?;
        let mut s = S3rver {
            exe,
            child: None,
            dir: tempfile::tempdir().unwrap(),
            port: free_port(),
        };
        s.spawn();
        Some(s)
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let child = Command::new(&self.exe)
            .arg("-d")
            .arg(self.dir.path())
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string(), "-s"])
            .args(["--no-vhost-buckets", "--configure-bucket", BUCKET])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start s3rver");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "s3rver did not listen within 30 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server (SIGKILL) and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port and directory.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// The `[blobs]` settings of a node using it, signing as `key` (s3rver
    /// knows [`KEY`] only; its secret is the same word).
    pub fn configure(&self, blobs: &mut wani_node::config::BlobConfig, key: &str) {
        blobs.backend = "s3".into();
        blobs.bucket = BUCKET.into();
        blobs.region = "us-east-1".into();
        blobs.endpoint = self.endpoint();
        blobs.path_style = true;
        blobs.access_key_id = key.into();
        blobs.secret_access_key = KEY.into();
        blobs.retry_secs = 20;
    }

    /// The same settings as `WANI_BLOBS__…` variables, for a `wani` process.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("BACKEND", "s3".to_string()),
            ("BUCKET", BUCKET.to_string()),
            ("REGION", "us-east-1".to_string()),
            ("ENDPOINT", self.endpoint()),
            ("PATH_STYLE", "true".to_string()),
            ("ACCESS_KEY_ID", KEY.to_string()),
            ("SECRET_ACCESS_KEY", KEY.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (format!("WANI_BLOBS__{k}"), v))
        .collect()
    }
}

impl Drop for S3rver {
    fn drop(&mut self) {
        self.kill();
    }
}
