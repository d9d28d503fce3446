//! Progress while a run goes: one self-overwriting line on a terminal, plain
//! periodic lines otherwise (CI logs). Written to stderr so stdout stays the summary.

use crate::export::Counters;
use crate::pace::{Profile, RateUnit};
use std::io::{IsTerminal as _, Write as _};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

/// The progress line(s) of one run.
pub struct Progress {
    enabled: bool,
    tty: bool,
    started: Instant,
    last: Instant,
    every: Duration,
    target: Option<(Profile, RateUnit)>,
    /// Units counted at the last line, for the rate since then.
    last_units: u64,
}

impl Progress {
    /// Silent unless `enabled`; a `target` (shape and unit) adds the intended rate to each line.
    pub fn new(enabled: bool, target: Option<(Profile, RateUnit)>) -> Self {
        let tty = std::io::stderr().is_terminal();
        let now = Instant::now();
        Progress {
            enabled,
            tty,
            started: now,
            last: now,
            every: if tty {
                Duration::from_millis(250)
            } else {
                Duration::from_secs(10)
            },
            target,
            last_units: 0,
        }
    }

    /// Prints a progress line when one is due.
    pub fn tick(&mut self, c: &Counters, lag_ms: Option<f64>) {
        if !self.enabled || self.last.elapsed() < self.every {
            return;
        }
        let window = self.last.elapsed().as_secs_f64().max(1e-9);
        self.last = Instant::now();
        let secs = self.started.elapsed().as_secs_f64().max(1e-9);
        let traces = c.traces_generated.load(Relaxed);
        let spans = c.spans.generated.load(Relaxed);
        let (units, unit) = match self.target.as_ref().map(|t| t.1) {
            Some(RateUnit::Spans) => (spans, "spans"),
            _ => (traces, "traces"),
        };
        // The rate since the previous line (a ramp's average would lag behind it).
        let now_rate = units.saturating_sub(self.last_units) as f64 / window;
        self.last_units = units;
        let rate = match &self.target {
            Some((p, _)) => format!("{now_rate:.0}/{:.0} {unit}/s", p.rate_at(secs)),
            None => format!("{now_rate:.0} {unit}/s"),
        };
        let lag = lag_ms
            .map(|l| format!(" · lag {l:.1} ms"))
            .unwrap_or_default();
        let failed = c.spans.failed.load(Relaxed)
            + c.points.failed.load(Relaxed)
            + c.logs.failed.load(Relaxed);
        let line = format!(
            "{:>6.1}s · {traces} traces · {} spans ({} acked) · {} points · {} logs · {rate}{lag} · {failed} failed",
            secs,
            spans,
            c.spans.acked.load(Relaxed),
            c.points.generated.load(Relaxed),
            c.logs.generated.load(Relaxed),
        );
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r\x1b[2K{line}");
        } else {
            let _ = writeln!(err, "otelsim: {line}");
        }
        let _ = err.flush();
    }

    /// Clears the terminal line before the summary.
    pub fn finish(&self) {
        if self.enabled && self.tty {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
    }
}
