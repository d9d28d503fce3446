//! Open-loop pacing: every pick has an intended send time on an absolute
//! schedule (`start + traces so far / rate`). When otelsim falls behind it does
//! not compress the schedule silently: it sends at once and records the lag, so
//! the report shows how late it was and what rate it really achieved. Pure
//! arithmetic: the caller supplies the clock.

/// Intended send times for a target rate in traces per second.
#[derive(Clone, Debug)]
pub struct Schedule {
    start_ns: u64,
    rate_per_s: f64,
    /// Traces scheduled so far.
    traces: u64,
}

impl Schedule {
    pub fn new(start_ns: u64, rate_per_s: f64) -> Self {
        Schedule {
            start_ns,
            rate_per_s,
            traces: 0,
        }
    }

    /// When the next pick is due.
    pub fn next_due_ns(&self) -> u64 {
        self.start_ns
            .saturating_add((self.traces as f64 / self.rate_per_s * 1e9) as u64)
    }

    /// Accounts for a pick that produced `traces` traces.
    pub fn advance(&mut self, traces: u64) {
        self.traces += traces;
    }
}

/// Lag of each pick behind its intended time, in a fixed set of log-spaced
/// buckets so memory stays constant however long the run.
#[derive(Clone, Debug)]
pub struct LagStats {
    /// Bucket i counts lags below `bound(i)` (1 µs × 2^i); the last is open.
    buckets: [u64; 40],
    pub count: u64,
    /// Picks later than `late_after_ns`.
    pub late: u64,
    pub max_ns: u64,
    late_after_ns: u64,
}

fn bound(i: usize) -> u64 {
    1_000u64 << i
}

impl LagStats {
    pub fn new(late_after_ns: u64) -> Self {
        LagStats {
            buckets: [0; 40],
            count: 0,
            late: 0,
            max_ns: 0,
            late_after_ns,
        }
    }

    pub fn record(&mut self, lag_ns: u64) {
        let i = (0..self.buckets.len() - 1)
            .find(|&i| lag_ns < bound(i))
            .unwrap_or(self.buckets.len() - 1);
        self.buckets[i] += 1;
        self.count += 1;
        self.max_ns = self.max_ns.max(lag_ns);
        if lag_ns > self.late_after_ns {
            self.late += 1;
        }
    }

    /// The `q`-quantile (0..=1), as the upper bound of its bucket (an over-estimate
    /// by at most 2×, never more than the maximum seen).
    pub fn quantile_ns(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return if i == 0 { 0 } else { bound(i).min(self.max_ns) };
            }
        }
        self.max_ns
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_is_absolute_and_counts_traces() {
        let mut s = Schedule::new(1_000_000_000, 100.0);
        assert_eq!(s.next_due_ns(), 1_000_000_000);
        s.advance(1);
        assert_eq!(s.next_due_ns(), 1_010_000_000);
        // A pick of three traces (e.g. a control-plane flow) takes three slots.
        s.advance(3);
        assert_eq!(s.next_due_ns(), 1_040_000_000);
        // Falling behind never moves the schedule: due times depend on counts only.
        for _ in 0..996 {
            s.advance(1);
        }
        assert_eq!(s.next_due_ns(), 11_000_000_000);
    }

    #[test]
    fn lag_quantiles_and_late_counts() {
        let mut l = LagStats::new(1_000_000);
        for _ in 0..98 {
            l.record(500);
        }
        l.record(5_000_000);
        l.record(80_000_000);
        assert_eq!(l.count, 100);
        assert_eq!(l.late, 2);
        assert_eq!(l.max_ns, 80_000_000);
        assert_eq!(l.quantile_ns(0.5), 0);
        assert!(l.quantile_ns(0.99) >= 5_000_000 && l.quantile_ns(0.99) <= 10_240_000);
        assert_eq!(l.quantile_ns(1.0), 80_000_000);
    }
}
