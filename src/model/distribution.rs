//! Distributions (numeric, count, categorical) and their sampling.
//!
//! Latencies are in milliseconds. Every parameter is checked when the YAML is read
//! (`model::read::distribution`), so sampling never fails and never returns a
//! negative or non-finite value. The order of RNG calls here is part of the output:
//! a seeded run must stay byte-identical.

use crate::model::AttrValue;
use rand::Rng;
use rand_distr::{Distribution as _, Exp, Geometric, LogNormal, Normal, Poisson};

// Readers that used to live here; re-exported so existing paths keep working.
pub use crate::model::read::distribution::{
    read_bounded, read_bounded_non_negative, read_categorical, read_count, read_latency,
    read_numeric, DEFAULT_VARIANCE, NUMERIC_NAMES,
};

/// A numeric distribution: latencies in ms, numeric attributes, counts.
#[derive(Clone, Debug, PartialEq)]
pub enum Distribution {
    /// Always this value.
    Constant(f64),
    /// Gaussian (`normal`).
    Normal {
        /// Mean (ms for latencies).
        mean: f64,
        /// Standard deviation, in the same unit.
        stddev: f64,
    },
    /// `log_normal`: right-skewed, the usual shape of latencies.
    LogNormal {
        /// Median (e^μ of the underlying normal).
        median: f64,
        /// Standard deviation of the underlying normal.
        sigma: f64,
    },
    /// Uniform over `min..max`.
    Uniform {
        /// Lower bound (inclusive).
        min: f64,
        /// Upper bound (exclusive); `min` itself when not above it.
        max: f64,
    },
    /// `exponential`.
    Exponential {
        /// Mean (1 / rate).
        mean: f64,
    },
    /// `poisson`: a count of events.
    Poisson {
        /// Mean count.
        lambda: f64,
    },
    /// `geometric`: failures before the first success.
    Geometric {
        /// Success probability of each trial.
        p: f64,
    },
    /// `bernoulli`: 1 with probability `p`, else 0.
    Bernoulli {
        /// Probability of 1.
        p: f64,
    },
    /// `mean × (1 + N(0, variance))`, with an optional spike (the predecessor's latency model).
    MeanVariance {
        /// The mean the noise is applied to (a draw never falls below 5% of it).
        mean: f64,
        /// Standard deviation of the relative noise, despite the name (0.2: about ±20%).
        variance: f64,
        /// Chance (0–1) that a draw is a spike.
        spike_rate: f64,
        /// Factor a spike multiplies the draw by.
        spike_multiplier: f64,
    },
    /// `mixture`: (weight, distribution) pairs; each draw picks one by weight.
    Mixture(Vec<(f64, Distribution)>),
    /// `normal_with_outliers`: a normal body; a share of draws is an outlier,
    /// the body's draw times a factor (a slow request behind a lock or a GC pause).
    NormalOutliers {
        /// Mean of the body (ms for latencies).
        mean: f64,
        /// Standard deviation of the body.
        stddev: f64,
        /// Chance (0–1) that a draw is an outlier.
        outlier_share: f64,
        /// Factor an outlier multiplies the draw by.
        outlier_factor: f64,
    },
}

impl Distribution {
    /// Draws one value; never negative, never NaN.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        let v = match self {
            Distribution::Constant(v) => *v,
            Distribution::Normal { mean, stddev } => {
                Normal::new(*mean, *stddev).map_or(*mean, |d| d.sample(rng))
            }
            Distribution::LogNormal { median, sigma } => {
                LogNormal::new(median.ln(), *sigma).map_or(*median, |d| d.sample(rng))
            }
            Distribution::Uniform { min, max } => {
                if max > min {
                    rng.random_range(*min..*max)
                } else {
                    *min
                }
            }
            Distribution::Exponential { mean } => {
                Exp::new(1.0 / mean).map_or(*mean, |d: Exp<f64>| d.sample(rng))
            }
            Distribution::Poisson { lambda } => {
                Poisson::new(*lambda).map_or(*lambda, |d: Poisson<f64>| d.sample(rng))
            }
            Distribution::Geometric { p } => {
                Geometric::new(*p).map_or(0.0, |d| d.sample(rng) as f64)
            }
            Distribution::Bernoulli { p } => f64::from(u8::from(rng.random_bool(*p))),
            Distribution::MeanVariance {
                mean,
                variance,
                spike_rate,
                spike_multiplier,
            } => {
                let noise = Normal::new(0.0, *variance).map_or(0.0, |d| d.sample(rng));
                // Keep the floor proportional so a wide variance never yields ~0 ms spans.
                let mut v = (mean * (1.0 + noise)).max(mean * 0.05);
                if *spike_rate > 0.0 && rng.random_bool(spike_rate.min(1.0)) {
                    v *= spike_multiplier;
                }
                v
            }
            Distribution::Mixture(parts) => {
                let total: f64 = parts.iter().map(|(w, _)| w).sum();
                let mut x = rng.random_range(0.0..total);
                let mut chosen = &parts[parts.len() - 1].1;
                for (w, d) in parts {
                    if x < *w {
                        chosen = d;
                        break;
                    }
                    x -= w;
                }
                chosen.sample(rng)
            }
            Distribution::NormalOutliers {
                mean,
                stddev,
                outlier_share,
                outlier_factor,
            } => {
                // The body never falls below 5% of the mean: a latency is never ~0 ms.
                let body = Normal::new(*mean, *stddev)
                    .map_or(*mean, |d| d.sample(rng))
                    .max(mean * 0.05);
                if *outlier_share > 0.0 && rng.random_bool(outlier_share.min(1.0)) {
                    body * outlier_factor
                } else {
                    body
                }
            }
        };
        if v.is_finite() {
            v.clamp(0.0, MAX_VALUE)
        } else if v > 0.0 {
            MAX_VALUE
        } else {
            0.0
        }
    }

    /// True for distributions whose values are whole numbers (counts).
    pub fn is_discrete(&self) -> bool {
        matches!(
            self,
            Distribution::Poisson { .. }
                | Distribution::Geometric { .. }
                | Distribution::Bernoulli { .. }
        )
    }

    /// A representative value, used to describe a distribution (never for emitted data).
    pub fn typical(&self) -> f64 {
        match self {
            Distribution::Constant(v) => *v,
            Distribution::Normal { mean, .. } => *mean,
            Distribution::LogNormal { median, .. } => *median,
            Distribution::Uniform { min, max } => (min + max) / 2.0,
            Distribution::Exponential { mean } => *mean,
            Distribution::Poisson { lambda } => *lambda,
            Distribution::Geometric { p } => (1.0 - p) / p,
            Distribution::Bernoulli { p } => *p,
            Distribution::MeanVariance { mean, .. } => *mean,
            Distribution::Mixture(parts) => {
                let total: f64 = parts.iter().map(|(w, _)| w).sum();
                parts.iter().map(|(w, d)| w * d.typical()).sum::<f64>() / total
            }
            Distribution::NormalOutliers { mean, .. } => *mean,
        }
    }
}

/// Largest value any distribution yields (fits an i64 attribute; latencies are capped further).
pub const MAX_VALUE: f64 = 1e15;
/// Largest parameter (mean, median, bound) a distribution may declare.
pub const MAX_PARAM: f64 = 1e12;

/// A count: an integer, or a distribution with optional `min`/`max` caps.
#[derive(Clone, Debug, PartialEq)]
pub enum Count {
    /// Always this many.
    Fixed(u32),
    /// Drawn from `dist`, rounded and clamped to `min..=max`.
    Sampled {
        /// The distribution drawn from.
        dist: Distribution,
        /// Fewest instances (default 0).
        min: u32,
        /// Most instances (default and limit [`MAX_COUNT`]).
        max: u32,
    },
}

/// Upper bound on any sampled count, so a typo cannot build a million-span trace.
pub const MAX_COUNT: u32 = 1000;

impl Count {
    /// Draws one count, clamped to the declared caps.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> u32 {
        match self {
            Count::Fixed(n) => *n,
            Count::Sampled { dist, min, max } => {
                (dist.sample(rng).round() as u32).clamp(*min, *max)
            }
        }
    }
}

/// A weighted choice among values (`categorical`), for attributes.
#[derive(Clone, Debug, PartialEq)]
pub struct Categorical {
    /// The values, in the order their weights accumulate.
    pub values: Vec<AttrValue>,
    /// Cumulative weights, last = total.
    pub cumulative: Vec<f64>,
}

impl Categorical {
    /// Drops zero-weight values; `None` when nothing with weight > 0 remains.
    pub fn new(pairs: Vec<(AttrValue, f64)>) -> Option<Self> {
        let mut acc = 0.0;
        let mut values = Vec::new();
        let mut cumulative = Vec::new();
        for (v, w) in pairs {
            if w > 0.0 {
                acc += w;
                values.push(v);
                cumulative.push(acc);
            }
        }
        (!values.is_empty()).then_some(Categorical { values, cumulative })
    }

    /// Every value equally likely.
    pub fn uniform(values: Vec<AttrValue>) -> Option<Self> {
        Self::new(values.into_iter().map(|v| (v, 1.0)).collect())
    }

    /// Draws one value by weight (one RNG call).
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> &AttrValue {
        let total = *self.cumulative.last().unwrap_or(&1.0);
        let x = rng.random_range(0.0..total);
        let idx = self
            .cumulative
            .partition_point(|c| *c <= x)
            .min(self.values.len() - 1);
        &self.values[idx]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_pcg::Pcg64Mcg;

    #[test]
    fn log_normal_median_is_honoured() {
        let dist = Distribution::LogNormal {
            median: 200.0,
            sigma: 0.8,
        };
        let mut rng = Pcg64Mcg::seed_from_u64(7);
        let mut xs: Vec<f64> = (0..20_001).map(|_| dist.sample(&mut rng)).collect();
        xs.sort_by(f64::total_cmp);
        let median = xs[10_000];
        assert!((median - 200.0).abs() < 10.0, "median {median}");
    }

    #[test]
    fn counts_respect_caps() {
        let c = Count::Sampled {
            dist: Distribution::Poisson { lambda: 50.0 },
            min: 0,
            max: 3,
        };
        let mut rng = Pcg64Mcg::seed_from_u64(1);
        assert!((0..1000).all(|_| c.sample(&mut rng) <= 3));
    }

    #[test]
    fn categorical_weights_are_honoured() {
        let c =
            Categorical::new(vec![(AttrValue::str("a"), 3.0), (AttrValue::str("b"), 1.0)]).unwrap();
        let mut rng = Pcg64Mcg::seed_from_u64(3);
        let n = 40_000;
        let a = (0..n)
            .filter(|_| c.sample(&mut rng) == &AttrValue::Str("a".into()))
            .count();
        let share = a as f64 / n as f64;
        assert!((share - 0.75).abs() < 0.01, "share {share}");
    }
}
