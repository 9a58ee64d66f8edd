//! A progress bar per stage, on stderr: redrawn in place on a terminal,
//! a line every few seconds (and one at the end) when stderr is a file or
//! a pipe, so logs of long imports stay readable.

use std::io::{IsTerminal as _, Write as _};
use std::time::{Duration, Instant};

/// How often a bar is drawn: often enough to look alive on a terminal,
/// seldom enough in a log.
const TTY_EVERY: Duration = Duration::from_millis(100);
const LOG_EVERY: Duration = Duration::from_secs(5);

pub struct Progress {
    stage: &'static str,
    total: u64,
    done: u64,
    start: Instant,
    drawn: Option<Instant>,
    tty: bool,
}

impl Progress {
    pub fn new(stage: &'static str, total: u64) -> Progress {
        Progress {
            stage,
            total,
            done: 0,
            start: Instant::now(),
            drawn: None,
            tty: std::io::stderr().is_terminal(),
        }
    }

    pub fn add(&mut self, n: u64) {
        self.done += n;
        let every = if self.tty { TTY_EVERY } else { LOG_EVERY };
        if self.drawn.is_none_or(|d| d.elapsed() >= every) {
            self.draw(false);
        }
    }

    pub fn finish(&mut self) {
        self.draw(true);
    }

    fn draw(&mut self, last: bool) {
        self.drawn = Some(Instant::now());
        let line = self.line();
        let mut err = std::io::stderr().lock();
        let _ = match (self.tty, last) {
            (true, false) => write!(err, "\r{line}\x1b[K"),
            (true, true) => writeln!(err, "\r{line}\x1b[K"),
            (false, _) => writeln!(err, "{line}"),
        };
        let _ = err.flush();
    }

    fn line(&self) -> String {
        const WIDTH: u64 = 24;
        let filled = (self.done * WIDTH).checked_div(self.total).unwrap_or(WIDTH);
        let bar: String = (0..WIDTH)
            .map(|i| if i < filled { '#' } else { '-' })
            .collect();
        let secs = self.start.elapsed().as_secs_f64().max(1e-3);
        format!(
            "{:<8} [{bar}] {}/{}  {:.0}/s",
            self.stage,
            self.done,
            self.total,
            self.done as f64 / secs
        )
    }
}
