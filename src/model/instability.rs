//! `instability:` of a scenario file: multi-turn sessions whose behaviour
//! drifts, gets corrected and recovers (or not), for testing detectors of early
//! instability. One session is one trace; each operation is a span whose
//! `<prefix>.instability.event` says what it is (`step`, `drift_like`, …).

/// How noisy a session is: latency jitter and inconsistent argument shapes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Noise {
    /// Almost no jitter, arguments always the same shape.
    Low,
    /// Some jitter; one step in ten writes its arguments in another shape.
    Medium,
    /// Wide jitter; three steps in ten change shape.
    High,
}

/// The names `noise:` takes.
pub const NOISE_LEVELS: &[&str] = &["low", "medium", "high"];

impl Noise {
    /// `low`, `medium` or `high`.
    pub fn parse(s: &str) -> Option<Noise> {
        match s {
            "low" => Some(Noise::Low),
            "medium" => Some(Noise::Medium),
            "high" => Some(Noise::High),
            _ => None,
        }
    }

    /// The name it is written with.
    pub fn as_str(self) -> &'static str {
        match self {
            Noise::Low => "low",
            Noise::Medium => "medium",
            Noise::High => "high",
        }
    }

    /// Standard deviation of a latency, as a share of its mean.
    pub fn jitter(self) -> f64 {
        match self {
            Noise::Low => 0.05,
            Noise::Medium => 0.2,
            Noise::High => 0.45,
        }
    }

    /// Chance that a step writes its arguments in another shape.
    pub fn odd_shape(self) -> f64 {
        match self {
            Noise::Low => 0.0,
            Noise::Medium => 0.1,
            Noise::High => 0.3,
        }
    }
}

/// The session outcomes, as labels and the root span name them.
pub const OUTCOMES: &[&str] = &["stable", "unstable", "recovered", "failed"];

/// `instability:`: the knobs of the session family. The outcome shares follow
/// from the rates: stable `1 − d`, recovered `d·c·r`, failed
/// `d·c·(1 − r) + d·(1 − c)·f`, unstable `d·(1 − c)·(1 − f)`.
#[derive(Clone, Debug, PartialEq)]
pub struct InstabilityDef {
    /// `turns: {min, max}`: turns per session, drawn uniformly (long chains: large values).
    pub turns: (u32, u32),
    /// `noise`: latency jitter and inconsistent argument shapes.
    pub noise: Noise,
    /// `drift_rate` (d): share of sessions with a drift episode.
    pub drift_rate: f64,
    /// `correction_rate` (c): share of drifted sessions where a correction follows.
    pub correction_rate: f64,
    /// `recovery_rate` (r): share of corrected sessions that recover.
    pub recovery_rate: f64,
    /// `fail_rate` (f): share of uncorrected drifts that end in failure.
    pub fail_rate: f64,
    /// `branching`: chance that a step turn splits into two diverging sibling spans.
    pub branching: f64,
    /// `step_ms`: mean latency of a step, in ms.
    pub step_ms: f64,
}

impl Default for InstabilityDef {
    fn default() -> Self {
        InstabilityDef {
            turns: (4, 8),
            noise: Noise::Low,
            drift_rate: 0.5,
            correction_rate: 0.5,
            recovery_rate: 0.7,
            fail_rate: 0.3,
            branching: 0.0,
            step_ms: 85.0,
        }
    }
}

impl InstabilityDef {
    /// The expected share of each of [`OUTCOMES`], in that order.
    pub fn outcome_shares(&self) -> [f64; 4] {
        let (d, c, r, f) = (
            self.drift_rate,
            self.correction_rate,
            self.recovery_rate,
            self.fail_rate,
        );
        [
            1.0 - d,
            d * (1.0 - c) * (1.0 - f),
            d * c * r,
            d * c * (1.0 - r) + d * (1.0 - c) * f,
        ]
    }
}
