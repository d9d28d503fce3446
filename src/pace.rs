//! Open-loop pacing: every pick has an intended send time on an absolute
//! schedule (`start + traces so far / rate`). When otelsim falls behind it does
//! not compress the schedule silently: it sends at once and records the lag, so
//! the report shows how late it was and what rate it really achieved. Pure
//! arithmetic: the caller supplies the clock.

/// The highest rate a shape may ask for, per second (of traces or spans).
pub const MAX_RATE: f64 = 100_000_000.0;

/// What a rate counts: whole traces, or spans (a trace of 12 spans takes 12 units).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
pub enum RateUnit {
    /// One unit per trace, whatever its size.
    #[value(name = "traces")]
    #[serde(rename = "traces")]
    Traces,
    /// One unit per span.
    #[value(name = "spans")]
    #[serde(rename = "spans")]
    Spans,
}

/// One linear piece of a load shape: the rate goes from `from` to `to` over `secs`
/// (`secs` infinite: hold `from` for ever).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Stage {
    /// Length in seconds; infinite for the last, held stage.
    pub secs: f64,
    /// Rate at the start of the stage.
    pub from: f64,
    /// Rate at its end.
    pub to: f64,
}

/// A periodic burst: every `every_s`, the rate is multiplied by `factor` for `secs`.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Burst {
    /// Multiplier on the shape's rate during a burst.
    pub factor: f64,
    /// Length of each burst in seconds.
    pub secs: f64,
    /// Seconds from the start of one burst to the next.
    pub every_s: f64,
}

/// A load shape: linear stages (k6-style ramps; a step is a zero-length ramp) with
/// optional periodic bursts on top. Rates are units per second.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Profile {
    /// The pieces in order; after the last one the rate is 0 unless it lasts for ever.
    pub stages: Vec<Stage>,
    /// Bursts on top of the stages, if any.
    pub burst: Option<Burst>,
}

impl Profile {
    /// A constant rate for ever.
    pub fn constant(rate: f64) -> Self {
        Profile {
            stages: vec![Stage {
                secs: f64::INFINITY,
                from: rate,
                to: rate,
            }],
            burst: None,
        }
    }

    /// `30s:100,2m:2000,30s:0`: ramp linearly from the previous target (0 at the
    /// start) to each target over its duration. `0s:500` is a step.
    pub fn parse_stages(s: &str) -> Result<Self, String> {
        let mut targets = Vec::new();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (d, r) = item
                .split_once(':')
                .ok_or_else(|| format!("stage `{item}`: expected DURATION:RATE, e.g. 30s:100"))?;
            let secs = parse_secs(d).map_err(|e| format!("stage `{item}`: {e}"))?;
            let to: f64 = r
                .trim()
                .parse()
                .ok()
                .filter(|v: &f64| v.is_finite() && (0.0..=MAX_RATE).contains(v))
                .ok_or_else(|| {
                    format!("stage `{item}`: rate `{r}` is not a number from 0 to {MAX_RATE}")
                })?;
            targets.push((secs, to));
        }
        if targets.is_empty() {
            return Err(format!(
                "`{s}`: no stages; expected e.g. 30s:100,2m:2000,30s:0"
            ));
        }
        Ok(Profile::ramps(targets))
    }

    /// Linear ramps from 0 to each (duration s, target) in turn.
    pub fn ramps(targets: impl IntoIterator<Item = (f64, f64)>) -> Self {
        let mut prev = 0.0;
        let stages = targets
            .into_iter()
            .map(|(secs, to)| {
                let st = Stage {
                    secs,
                    from: prev,
                    to,
                };
                prev = to;
                st
            })
            .collect();
        Profile {
            stages,
            burst: None,
        }
    }

    /// Total length in seconds (infinite for a constant rate).
    pub fn secs(&self) -> f64 {
        self.stages.iter().map(|s| s.secs).sum()
    }

    /// The rate at `t` seconds into the shape (for tests and progress).
    pub fn rate_at(&self, t: f64) -> f64 {
        let mut t0 = 0.0;
        for s in &self.stages {
            if t < t0 + s.secs {
                let base = if s.secs.is_finite() && s.secs > 0.0 {
                    s.from + (s.to - s.from) * (t - t0) / s.secs
                } else {
                    s.from
                };
                return base * self.burst_factor(t);
            }
            t0 += s.secs;
        }
        0.0
    }

    fn burst_factor(&self, t: f64) -> f64 {
        match self.burst {
            Some(b) if t.rem_euclid(b.every_s) < b.secs => b.factor,
            _ => 1.0,
        }
    }

    /// The highest rate anywhere in the shape.
    pub fn peak(&self) -> f64 {
        let f = self.burst.map_or(1.0, |b| b.factor.max(1.0));
        self.stages
            .iter()
            .map(|s| s.from.max(s.to))
            .fold(0.0, f64::max)
            * f
    }

    /// Units the shape offers over its first `t` seconds (its integral).
    pub fn units_until(&self, t: f64) -> f64 {
        let mut s = Schedule::new(0, self.clone());
        s.units_until(t)
    }
}

/// `5x:10s/1m`: multiply the rate by 5 for 10 s of every minute.
pub fn parse_burst(s: &str) -> Result<Burst, String> {
    let err = || format!("burst `{s}`: expected FACTORx:DURATION/PERIOD, e.g. 5x:10s/1m");
    let (f, rest) = s.split_once(':').ok_or_else(err)?;
    let (d, e) = rest.split_once('/').ok_or_else(err)?;
    let factor: f64 = f
        .trim()
        .trim_end_matches(['x', 'X'])
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite() && *v >= 0.0)
        .ok_or_else(err)?;
    let secs = parse_secs(d).map_err(|m| format!("burst `{s}`: {m}"))?;
    let every_s = parse_secs(e).map_err(|m| format!("burst `{s}`: {m}"))?;
    if every_s <= 0.0 || secs > every_s {
        return Err(format!(
            "burst `{s}`: the burst ({secs} s) must fit in a period > 0 ({every_s} s)"
        ));
    }
    Ok(Burst {
        factor,
        secs,
        every_s,
    })
}

fn parse_secs(d: &str) -> Result<f64, String> {
    let d = d.trim();
    if d == "0" {
        return Ok(0.0);
    }
    humantime::parse_duration(d)
        .map(|d| d.as_secs_f64())
        .map_err(|_| format!("`{d}` is not a duration such as 30s, 2m or 1h"))
}

/// Intended send times along a [`Profile`]: unit `u` is due when the shape's
/// integral reaches `u`. Absolute (depends on counts only, never on when picks
/// really went out); pure arithmetic, the caller supplies the clock.
#[derive(Clone, Debug)]
pub struct Schedule {
    start_ns: u64,
    profile: Profile,
    /// Units scheduled so far.
    units: f64,
    /// Cursor over the shape's pieces, moving forward only.
    piece: Piece,
}

/// A stretch of the shape where the rate is linear: from `t0` (s) for `secs`,
/// rate `a + b·τ`, with `c0` units offered before it.
#[derive(Clone, Copy, Debug)]
struct Piece {
    stage: usize,
    t0: f64,
    secs: f64,
    a: f64,
    b: f64,
    c0: f64,
}

impl Piece {
    fn area(&self) -> f64 {
        if self.secs.is_infinite() {
            return if self.a > 0.0 { f64::INFINITY } else { 0.0 };
        }
        self.a * self.secs + self.b * self.secs * self.secs / 2.0
    }

    /// Seconds into the piece at which `du` units have been offered.
    fn solve(&self, du: f64) -> f64 {
        if du <= 0.0 {
            return 0.0;
        }
        // a·τ + b·τ²/2 = du, in the form that stays exact when b is 0 or tiny.
        let disc = (self.a * self.a + 2.0 * self.b * du).max(0.0);
        let denom = self.a + disc.sqrt();
        if denom <= 0.0 {
            return self.secs;
        }
        (2.0 * du / denom).min(self.secs)
    }
}

impl Schedule {
    /// A schedule whose first unit is due at `start_ns`.
    pub fn new(start_ns: u64, profile: Profile) -> Self {
        let mut s = Schedule {
            start_ns,
            profile,
            units: 0.0,
            piece: Piece {
                stage: 0,
                t0: 0.0,
                secs: 0.0,
                a: 0.0,
                b: 0.0,
                c0: 0.0,
            },
        };
        s.piece = s.piece_at(0, 0.0, 0.0);
        s
    }

    /// The linear piece starting at `t0` inside stage `stage` (cut at burst edges).
    fn piece_at(&self, stage: usize, t0: f64, c0: f64) -> Piece {
        let mut stage_start = 0.0;
        for st in &self.profile.stages[..stage.min(self.profile.stages.len())] {
            stage_start += st.secs;
        }
        let Some(st) = self.profile.stages.get(stage) else {
            // Past the end: a piece of rate 0 for ever.
            return Piece {
                stage,
                t0,
                secs: f64::INFINITY,
                a: 0.0,
                b: 0.0,
                c0,
            };
        };
        let slope = if st.secs.is_finite() && st.secs > 0.0 {
            (st.to - st.from) / st.secs
        } else {
            0.0
        };
        let mut end = stage_start + st.secs;
        let mut factor = 1.0;
        if let Some(b) = self.profile.burst {
            // Snap phases within a nanosecond of an edge onto it, so float
            // rounding never yields an empty or skipped piece.
            // The margin grows with t0, so edges stay distinct on very long runs.
            let eps = 1e-9_f64.max(t0.abs() * 8.0 * f64::EPSILON);
            let mut phase = t0.rem_euclid(b.every_s);
            if b.every_s - phase < eps {
                phase = 0.0;
            }
            let in_burst = phase < b.secs && b.secs - phase >= eps;
            let edge = if in_burst {
                t0 - phase + b.secs
            } else {
                t0 - phase + b.every_s
            };
            if in_burst {
                factor = b.factor;
            }
            end = end.min(edge.max(t0 + eps));
        }
        let base = st.from + slope * (t0 - stage_start);
        Piece {
            stage,
            t0,
            secs: end - t0,
            a: base * factor,
            b: slope * factor,
            c0,
        }
    }

    /// Moves the cursor to the next piece; `false` when the current one lasts for ever.
    fn next_piece(&mut self) -> bool {
        let p = self.piece;
        if p.secs.is_infinite() {
            return false;
        }
        let t_end = p.t0 + p.secs;
        let stages = &self.profile.stages;
        let stage_end: f64 = stages[..(p.stage + 1).min(stages.len())]
            .iter()
            .map(|s| s.secs)
            .sum();
        let eps = 1e-9_f64.max(t_end.abs() * 8.0 * f64::EPSILON);
        let stage = if t_end >= stage_end - eps {
            p.stage + 1
        } else {
            p.stage
        };
        self.piece = self.piece_at(stage, t_end, p.c0 + p.area());
        true
    }

    /// Moves the cursor to the piece holding unit `u`; `false` when the shape ends first.
    fn seek(&mut self, u: f64) -> bool {
        // Each step moves to a later stage or at least a burst edge further on, so
        // this ends; the cap only guards against a pathological shape.
        for _ in 0..100_000_000u64 {
            let p = self.piece;
            if u < p.c0 + p.area() {
                return true;
            }
            if !self.next_piece() {
                return false;
            }
        }
        false
    }

    /// Seconds into the shape at which `u` units have been offered; `None` if never.
    fn time_of(&mut self, u: f64) -> Option<f64> {
        if !self.seek(u) {
            return None;
        }
        let p = self.piece;
        Some(p.t0 + p.solve(u - p.c0))
    }

    /// When the next pick is due; `None` once the shape has ended.
    pub fn next_due_ns(&mut self) -> Option<u64> {
        let t = self.time_of(self.units)?;
        Some(self.start_ns.saturating_add((t * 1e9) as u64))
    }

    /// Accounts for a pick worth `units` (traces or spans).
    pub fn advance(&mut self, units: u64) {
        self.units += units as f64;
    }

    /// Units offered over the first `t` seconds.
    fn units_until(&mut self, t: f64) -> f64 {
        for _ in 0..100_000_000u64 {
            let p = self.piece;
            if t <= p.t0 + p.secs || !self.next_piece() {
                let tau = (t - p.t0).clamp(0.0, p.secs);
                return p.c0 + p.a * tau + p.b * tau * tau / 2.0;
            }
        }
        self.piece.c0
    }
}

/// Lag of each pick behind its intended time, in a fixed set of log-spaced
/// buckets so memory stays constant however long the run.
#[derive(Clone, Debug)]
pub struct LagStats {
    /// Bucket i counts lags below `bound(i)` (1 µs × 2^i); the last is open.
    buckets: [u64; 40],
    /// Picks recorded.
    pub count: u64,
    /// Picks later than `late_after_ns`.
    pub late: u64,
    /// The worst lag seen.
    pub max_ns: u64,
    late_after_ns: u64,
}

fn bound(i: usize) -> u64 {
    1_000u64 << i
}

impl LagStats {
    /// Empty stats; a lag above `late_after_ns` counts as late.
    pub fn new(late_after_ns: u64) -> Self {
        LagStats {
            buckets: [0; 40],
            count: 0,
            late: 0,
            max_ns: 0,
            late_after_ns,
        }
    }

    /// Adds another worker's lags.
    pub fn merge(&mut self, o: &LagStats) {
        for (a, b) in self.buckets.iter_mut().zip(o.buckets.iter()) {
            *a += b;
        }
        self.count += o.count;
        self.late += o.late;
        self.max_ns = self.max_ns.max(o.max_ns);
    }

    /// Counts one pick that was `lag_ns` behind its intended time.
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
        let mut s = Schedule::new(1_000_000_000, Profile::constant(100.0));
        assert_eq!(s.next_due_ns(), Some(1_000_000_000));
        s.advance(1);
        assert_eq!(s.next_due_ns(), Some(1_010_000_000));
        // A pick of three traces (e.g. a control-plane flow) takes three slots.
        s.advance(3);
        assert_eq!(s.next_due_ns(), Some(1_040_000_000));
        // Falling behind never moves the schedule: due times depend on counts only.
        for _ in 0..996 {
            s.advance(1);
        }
        assert_eq!(s.next_due_ns(), Some(11_000_000_000));
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

    fn due_s(s: &mut Schedule) -> f64 {
        s.next_due_ns().expect("due") as f64 / 1e9
    }

    #[test]
    fn a_linear_ramp_follows_the_integral() {
        // 0 → 100/s over 10 s offers 500 units; unit u is due at sqrt(2u/10).
        let p = Profile::parse_stages("10s:100").unwrap();
        assert!((p.units_until(10.0) - 500.0).abs() < 1e-9);
        let mut s = Schedule::new(0, p);
        for u in [0u64, 1, 50, 250, 499] {
            let mut c = s.clone();
            c.advance(u);
            let expected = (2.0 * u as f64 / 10.0).sqrt();
            assert!((due_s(&mut c) - expected).abs() < 1e-6, "unit {u}");
        }
        // The shape ends after its last stage.
        s.advance(500);
        assert_eq!(s.next_due_ns(), None);
    }

    #[test]
    fn stages_ramp_hold_step_and_ramp_down() {
        let p = Profile::parse_stages("10s:100,10s:100,0s:300,5s:300,10s:0").unwrap();
        assert_eq!(p.stages.len(), 5);
        assert!((p.secs() - 35.0).abs() < 1e-12);
        assert!((p.rate_at(5.0) - 50.0).abs() < 1e-9);
        assert!((p.rate_at(15.0) - 100.0).abs() < 1e-9);
        assert!((p.rate_at(22.0) - 300.0).abs() < 1e-9);
        assert!((p.rate_at(30.0) - 150.0).abs() < 1e-9);
        // 500 (ramp) + 1000 (hold) + 0 (step) + 1500 (hold) + 1500 (ramp down).
        let total = p.units_until(35.0);
        assert!((total - 4500.0).abs() < 1e-6, "{total}");
        let mut s = Schedule::new(0, p);
        s.advance(500);
        assert!((due_s(&mut s) - 10.0).abs() < 1e-9);
        s.advance(1000);
        assert!(
            (due_s(&mut s) - 20.0).abs() < 1e-9,
            "the step starts at 20 s"
        );
        s.advance(300);
        assert!((due_s(&mut s) - 21.0).abs() < 1e-9, "300/s after the step");
        s.advance(1200 + 1499);
        assert!(due_s(&mut s) < 35.0);
        s.advance(1);
        assert_eq!(s.next_due_ns(), None);
    }

    #[test]
    fn bursts_multiply_the_rate_inside_their_window() {
        let mut p = Profile::constant(10.0);
        p.burst = Some(parse_burst("5x:2s/10s").unwrap());
        assert_eq!(p.rate_at(1.0), 50.0);
        assert_eq!(p.rate_at(5.0), 10.0);
        assert_eq!(p.rate_at(11.0), 50.0);
        // Per period: 2 s × 50 + 8 s × 10 = 180 units.
        assert!((p.units_until(10.0) - 180.0).abs() < 1e-9);
        assert!((p.units_until(100.0) - 1800.0).abs() < 1e-6);
        let mut s = Schedule::new(0, p.clone());
        s.advance(100);
        assert!((due_s(&mut s) - 2.0).abs() < 1e-9);
        s.advance(80);
        assert!((due_s(&mut s) - 10.0).abs() < 1e-9);
        // Long runs keep their accuracy: unit 1800·k is due at 100·k s.
        s.advance(1800 * 999 - 180 + 1800);
        assert!((due_s(&mut s) - 100_000.0).abs() < 1e-6);
    }

    #[test]
    fn picks_of_many_units_never_claim_beyond_the_integral() {
        // 10 s at 2/s offers 20 units; picks of 1 to 5 units each claim the next
        // slot: the last claimed slot lies inside the shape, so the total is at
        // most the integral plus one pick less one unit.
        let p = Profile::parse_stages("0s:2,10s:2").unwrap();
        let mut s = Schedule::new(0, p);
        let (mut total, mut k) = (0u64, 0u64);
        while let Some(due) = s.next_due_ns() {
            assert!(due < 10_000_000_000, "slot at {due} past the shape");
            k = k % 5 + 1;
            s.advance(k);
            total += k;
        }
        assert!((20..20 + 5).contains(&total), "{total}");
    }

    #[test]
    fn bursts_stay_exact_on_very_long_runs() {
        // Edges that are not exact in binary, far out (≈ 4 years): a fixed 1 ns
        // margin would vanish against t and stall the schedule.
        let mut p = Profile::constant(10.0);
        p.burst = Some(Burst {
            factor: 3.0,
            secs: 23_333.3,
            every_s: 70_000.7,
        });
        let periods = 1800.0;
        let t = periods * 70_000.7;
        let per_period = 3.0 * 23_333.3 * 10.0 + (70_000.7 - 23_333.3) * 10.0;
        let got = p.units_until(t);
        assert!((got / (periods * per_period) - 1.0).abs() < 1e-9, "{got}");
        let mut s = Schedule::new(0, p);
        s.advance(got as u64);
        let due = s.next_due_ns().expect("the shape goes on") as f64 / 1e9;
        assert!((due - t).abs() < 1.0, "{due} vs {t}");
    }

    #[test]
    fn bad_shapes_are_refused_with_an_example() {
        for bad in ["", "30s", "x:100", "30s:-1", "30s:abc"] {
            let e = Profile::parse_stages(bad).unwrap_err();
            assert!(
                e.contains("e.g.") || e.contains("number") || e.contains("duration"),
                "{bad}: {e}"
            );
        }
        for bad in ["5x", "5x:10s", "x:1s/2s", "2x:10s/5s", "2x:1s/0s"] {
            assert!(parse_burst(bad).is_err(), "{bad}");
        }
    }
}
