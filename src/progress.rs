//! Progress of the long-running commands (`demo`, `eval …`, `bench …`), always on standard error
//! so that standard output keeps only the report (and stays pure JSON with `--json`): a bar with
//! its ETA when standard error is a terminal, otherwise a plain line now and then (every tenth of
//! the way, at most one every few seconds) that a log file or CI keeps readably.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// Plain lines come at most this often, and at least every tenth of the way.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub struct Progress {
    label: String,
    total: u64,
    bar: Option<ProgressBar>,
    plain: Mutex<Plain>,
}

#[derive(Debug)]
struct Plain {
    started: Instant,
    last_line: Option<Instant>,
    last_tenth: u64,
    position: u64,
    message: String,
    finished: bool,
}

impl Progress {
    /// A task of `total` steps of `unit` (e.g. "virtual hours", "tests").
    pub fn new(label: &str, total: u64, unit: &str) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let style = ProgressStyle::with_template(&format!(
                "{{prefix}} [{{bar:30}}] {{pos}}/{{len}} {unit} · {{elapsed}} · ETA {{eta}} {{msg}}"
            ))
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            let bar = ProgressBar::new(total).with_style(style).with_prefix(label.to_owned());
            bar.enable_steady_tick(Duration::from_millis(250));
            bar
        });
        Self::with_bar(label, total, bar)
    }

    fn with_bar(label: &str, total: u64, bar: Option<ProgressBar>) -> Self {
        Self {
            label: label.to_owned(),
            total: total.max(1),
            bar,
            plain: Mutex::new(Plain {
                started: Instant::now(),
                last_line: None,
                last_tenth: 0,
                position: 0,
                message: String::new(),
                finished: false,
            }),
        }
    }

    /// A step of unknown length (a spinner with the time spent; plain: one line at the start).
    pub fn spinner(label: &str) -> Self {
        let terminal = std::io::stderr().is_terminal();
        let bar = terminal.then(|| {
            let style = ProgressStyle::with_template("{spinner} {prefix} · {elapsed} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner());
            let bar = ProgressBar::new_spinner().with_style(style).with_prefix(label.to_owned());
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        if !terminal {
            eprintln!("{label} …");
        }
        Self {
            label: label.to_owned(),
            total: 0,
            bar,
            plain: Mutex::new(Plain {
                started: Instant::now(),
                last_line: Some(Instant::now()),
                last_tenth: 10,
                position: 0,
                message: String::new(),
                finished: false,
            }),
        }
    }

    /// Moves to `position` (of `total`).
    pub fn set(&self, position: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(position);
            return;
        }
        let mut p = self.plain.lock().unwrap_or_else(|e| e.into_inner());
        p.position = position.min(self.total);
        if let Some(line) = self.plain_line(&mut p) {
            eprintln!("{line}");
        }
    }

    pub fn inc(&self, steps: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(steps);
            return;
        }
        let position = self.plain.lock().unwrap_or_else(|e| e.into_inner()).position + steps;
        self.set(position);
    }

    /// A short note shown beside the bar (and in the next plain line), e.g. live counts.
    pub fn message(&self, message: impl Into<String>) {
        let message = message.into();
        match &self.bar {
            Some(bar) => bar.set_message(message),
            None => self.plain.lock().unwrap_or_else(|e| e.into_inner()).message = message,
        }
    }

    /// Clears the bar (the report follows); plain: one last line with the time it took.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
            return;
        }
        let mut p = self.plain.lock().unwrap_or_else(|e| e.into_inner());
        if !p.finished {
            p.finished = true;
            eprintln!("{}: done in {:.0} s", self.label, p.started.elapsed().as_secs_f64());
        }
    }

    /// The plain line due at this step, if one is.
    fn plain_line(&self, p: &mut Plain) -> Option<String> {
        let tenth = p.position * 10 / self.total;
        let due = p.last_line.is_none_or(|at| at.elapsed() >= PLAIN_EVERY);
        if !(tenth > p.last_tenth || due) {
            return None;
        }
        p.last_tenth = tenth;
        p.last_line = Some(Instant::now());
        let elapsed = p.started.elapsed().as_secs_f64();
        let done = p.position as f64 / self.total as f64;
        let eta = if done > 0.0 { format!(", ETA {:.0} s", elapsed * (1.0 - done) / done) } else { String::new() };
        let note = if p.message.is_empty() { String::new() } else { format!(" · {}", p.message) };
        Some(format!(
            "{}: {}/{} ({:.0} %), {elapsed:.0} s{eta}{note}",
            self.label,
            p.position,
            self.total,
            done * 100.0
        ))
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        // A bar left behind by an error path would stay drawn over what follows.
        if let Some(bar) = &self.bar
            && !bar.is_finished()
        {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_come_every_tenth_of_the_way_not_at_every_step() {
        let progress = Progress::with_bar("replay", 1000, None);
        let lines: Vec<String> = (1..=1000)
            .filter_map(|i| {
                let mut p = progress.plain.lock().unwrap_or_else(|e| e.into_inner());
                p.position = i;
                progress.plain_line(&mut p)
            })
            .collect();
        // The first step, then each tenth (a fast loop never waits for the time-based line).
        assert_eq!(lines.len(), 11, "{lines:#?}");
        assert!(lines[0].starts_with("replay: 1/1000 (0 %)"), "{}", lines[0]);
        assert!(lines[5].starts_with("replay: 500/1000 (50 %)") && lines[5].contains("ETA"), "{}", lines[5]);
        assert!(lines[10].starts_with("replay: 1000/1000 (100 %)"), "{}", lines[10]);
    }
}
