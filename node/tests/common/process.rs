//! `wani` as child processes: start one on a config, signal it, stop it.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `wani` binary, run in `dir` with quiet logs (`WANI_TEST_LOG` sets
/// its `RUST_LOG` instead, to debug a failing multi-process test).
pub fn wani(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wani"));
    c.current_dir(dir).env(
        "RUST_LOG",
        std::env::var("WANI_TEST_LOG").unwrap_or_else(|_| "warn".into()),
    );
    c
}

/// A port nobody listens on right now, and that no other test is about
/// to use. Drawn at random below the kernel's ephemeral range (32768 and
/// up), so that it is not taken meanwhile by some process's outgoing
/// connection or `bind(0)`. Between this check and the child binding it,
/// another test could draw the same port (it happened: "Address already in
/// use"), so each port handed out is also claimed by a lock file that this
/// test process holds until it exits; tests run one per process, or share
/// the process and its claims.
pub fn free_port() -> u16 {
    static CLAIMS: std::sync::Mutex<Vec<std::fs::File>> = std::sync::Mutex::new(Vec::new());
    let dir = std::env::temp_dir().join("wani-test-ports");
    let _ = std::fs::create_dir_all(&dir);
    loop {
        let port = 10_000 + rand::random::<u16>() % 10_000;
        let Ok(claim) = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(port.to_string()))
        else {
            continue;
        };
        // A lock belongs to its open file: a second claim fails even from
        // this process, and every claim ends with the process.
        use std::os::fd::AsRawFd;
        if unsafe { libc::flock(claim.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            continue;
        }
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            CLAIMS.lock().unwrap().push(claim);
            return port;
        }
    }
}

/// A `wani serve` child; killed on drop if still running.
pub struct Server(pub Child, pub String);

impl Server {
    /// Starts `wani serve` in `dir` (reading `dir/cluster.toml`) and waits
    /// for the URL it prints once its socket listens.
    pub fn start(dir: &Path) -> Server {
        Server::start_with(dir, &[])
    }

    /// As [`Server::start`], with environment variables set (the config's
    /// `WANI_SECTION__KEY` overrides).
    pub fn start_with(dir: &Path, env: &[(&str, &str)]) -> Server {
        let mut child = wani(dir)
            .envs(env.iter().copied())
            .arg("serve")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let url = line
            .trim()
            .strip_prefix("wani is serving ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        Server(child, url.trim_end_matches('/').to_string())
    }

    /// Sends a signal (SIGSTOP, SIGCONT, SIGKILL…).
    pub fn signal(&self, sig: i32) {
        unsafe { libc::kill(self.0.id() as i32, sig) };
    }

    /// SIGTERM, then waits (20 s at most) for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        self.terminate_within(Duration::from_secs(20))
    }

    /// SIGTERM, then waits (`limit` at most) for the exit status.
    pub fn terminate_within(&mut self, limit: Duration) -> std::process::ExitStatus {
        self.signal(libc::SIGTERM);
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "wani did not exit within {limit:?} of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // A stopped process must be continued to die of SIGKILL promptly.
        self.signal(libc::SIGCONT);
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
