//! Progress while a run goes, on stderr so stdout stays the summary: a progress
//! bar on a terminal when the run has a known end (a pick count or a duration),
//! a self-overwriting line on a terminal otherwise, and plain periodic lines when
//! stderr is not a terminal (CI logs).

use crate::export::Counters;
use crate::pace::{Profile, RateUnit};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal as _, Write as _};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

/// Where a run ends, when that is known in advance: what the bar fills up to.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum End {
    /// This many picks.
    Picks(u64),
    /// This long on the wall clock.
    After(Duration),
}

/// The progress display of one run.
pub struct Progress {
    enabled: bool,
    tty: bool,
    started: Instant,
    last: Instant,
    every: Duration,
    target: Option<(Profile, RateUnit)>,
    /// Units counted at the last line, for the rate since then.
    last_units: u64,
    end: Option<End>,
    bar: Option<ProgressBar>,
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
            end: None,
            bar: None,
        }
    }

    /// A run with a known end shows a bar on a terminal (lines elsewhere, as before).
    pub fn with_end(mut self, end: Option<End>) -> Self {
        self.end = end;
        if self.enabled && self.tty {
            self.bar = end.map(new_bar);
        }
        self
    }

    /// Updates the display when an update is due; `picks` is how many picks were
    /// made so far (for the bar of a counted run).
    pub fn tick(&mut self, c: &Counters, lag_ms: Option<f64>, picks: u64) {
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
        let counts = format!(
            "{traces} traces · {} spans ({} acked) · {} points · {} logs · {rate}{lag} · {failed} failed",
            spans,
            c.spans.acked.load(Relaxed),
            c.points.generated.load(Relaxed),
            c.logs.generated.load(Relaxed),
        );
        if let (Some(bar), Some(end)) = (&self.bar, self.end) {
            bar.set_position(match end {
                End::Picks(n) => picks.min(n),
                End::After(d) => (secs * 1000.0).min(d.as_secs_f64() * 1000.0) as u64,
            });
            bar.set_message(counts);
            return;
        }
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r\x1b[2K{secs:>6.1}s · {counts}");
        } else {
            let _ = writeln!(err, "otelsim: {secs:>6.1}s · {counts}");
        }
        let _ = err.flush();
    }

    /// Clears the bar or the terminal line before the summary.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        } else if self.enabled && self.tty {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
    }
}

/// A bar over picks, or over the milliseconds of a duration, with the counts as its message.
fn new_bar(end: End) -> ProgressBar {
    let (len, template) = match end {
        End::Picks(n) => (n, "{bar:25} {pos}/{len} picks · ETA {eta} · {wide_msg}"),
        End::After(d) => (
            d.as_millis().min(u128::from(u64::MAX)) as u64,
            "{bar:25} {elapsed} of {duration} · {wide_msg}",
        ),
    };
    let style = ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    // Redrawn at most 4 times a second, as often as the line it replaces.
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr_with_hz(4));
    bar.set_style(style);
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bar_only_on_a_terminal_and_only_with_an_end() {
        let mut p = Progress::new(true, None).with_end(Some(End::Picks(10)));
        // Tests run without a terminal on stderr: plain lines, no bar.
        assert_eq!(p.bar.is_some(), p.tty);
        p.tty = true;
        let p = p.with_end(None);
        assert!(p.bar.is_none(), "no end, no bar");
        let p = Progress::new(false, None).with_end(Some(End::Picks(10)));
        assert!(p.bar.is_none(), "disabled, no bar");
    }

    #[test]
    fn a_duration_bar_counts_milliseconds() {
        let bar = new_bar(End::After(Duration::from_secs(60)));
        assert_eq!(bar.length(), Some(60_000));
        let bar = new_bar(End::Picks(500));
        assert_eq!(bar.length(), Some(500));
    }
}
