//! Sharding: one run split over N processes (a Kubernetes Indexed Job's pods),
//! each making its share of the picks and of the load shape. Shard `I` of `N`
//! makes the picks `i ≡ I (mod N)`: pick `i`'s content depends on the seed and
//! `i` only, so the union of the shards' picks is the single run's, pick for
//! pick. Interleaving (rather than contiguous blocks) keeps every shard's mix
//! and load shape the run's own, each at `1/N` of the rate.

use crate::pace::{Profile, Stage};

/// The variable a Kubernetes Indexed Job sets in each pod: its index.
pub const INDEX_ENV: &str = "JOB_COMPLETION_INDEX";

/// The shard count when `--shard` is not given (the index is then `JOB_COMPLETION_INDEX`).
pub const COUNT_ENV: &str = "OTELSIM_SHARDS";

/// The most shards a run may be split into (a Job's pods, not threads).
pub const MAX_SHARDS: u32 = 100_000;

/// Which share of the run this process makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Shard {
    /// This shard's number, from 0.
    pub index: u32,
    /// How many shards the run has.
    pub count: u32,
}

impl Default for Shard {
    /// The whole run: shard 0 of 1.
    fn default() -> Self {
        Shard { index: 0, count: 1 }
    }
}

impl Shard {
    /// `I/N` (shard I of N, I from 0).
    pub fn parse(text: &str) -> Result<Self, String> {
        let expected = "expected INDEX/COUNT, e.g. 0/3 for the first of 3 shards";
        let (i, n) = text
            .split_once('/')
            .ok_or_else(|| format!("--shard `{text}`: {expected}"))?;
        let index = i.trim().parse::<u32>().map_err(|_| {
            format!("--shard `{text}`: the index `{i}` is not a whole number ≥ 0; {expected}")
        })?;
        let count = parse_count(n).map_err(|e| format!("--shard `{text}`: {e}"))?;
        Shard::new(index, count).map_err(|e| format!("--shard `{text}`: {e}"))
    }

    fn new(index: u32, count: u32) -> Result<Self, String> {
        if index >= count {
            return Err(format!(
                "the index {index} must be below the count {count} (0 to {})",
                count - 1
            ));
        }
        Ok(Shard { index, count })
    }

    /// The shard of this process: `--shard I/N`, else `OTELSIM_SHARDS=N` with
    /// the index from `JOB_COMPLETION_INDEX`; `None` when neither is given (a
    /// whole run; `JOB_COMPLETION_INDEX` alone does not split a run, a Job need
    /// not be sharded).
    pub fn resolve(
        shard: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, String> {
        if let Some(s) = shard {
            return Shard::parse(s).map(Some);
        }
        let Some(v) = env(COUNT_ENV).filter(|v| !v.trim().is_empty()) else {
            return Ok(None);
        };
        let count = parse_count(&v).map_err(|e| format!("{COUNT_ENV}={v}: {e}"))?;
        let from = format!("{COUNT_ENV}={v}");
        let Some(raw) = env(INDEX_ENV) else {
            return Err(format!(
                "{from} needs {INDEX_ENV} (the shard's index, which a Kubernetes Indexed Job sets in each pod), or give --shard INDEX/COUNT"
            ));
        };
        let index = raw.trim().parse::<u32>().map_err(|_| {
            format!(
                "{INDEX_ENV}={raw}: expected the shard's index, a whole number from 0 to {}",
                count - 1
            )
        })?;
        Shard::new(index, count)
            .map(Some)
            .map_err(|e| format!("{INDEX_ENV}={raw} with {from}: {e}"))
    }

    /// The run's pick number of this shard's `k`-th pick.
    pub fn pick(&self, k: u64) -> u64 {
        k.saturating_mul(u64::from(self.count))
            .saturating_add(u64::from(self.index))
    }

    /// This shard's `k` of the run's pick `i` (which must be one of its own).
    pub fn local(&self, i: u64) -> u64 {
        i / u64::from(self.count)
    }

    /// How many of the run's first `total` picks are this shard's.
    pub fn share_of(&self, total: u64) -> u64 {
        let (i, n) = (u64::from(self.index), u64::from(self.count));
        if total <= i {
            0
        } else {
            (total - i).div_ceil(n)
        }
    }

    /// This shard's load shape: the run's, every rate divided by the count (bursts
    /// keep their factor and timing), so the shards together offer the run's shape.
    pub fn shape(&self, profile: &Profile) -> Profile {
        let n = f64::from(self.count);
        Profile {
            stages: profile
                .stages
                .iter()
                .map(|s| Stage {
                    secs: s.secs,
                    from: s.from / n,
                    to: s.to / n,
                })
                .collect(),
            burst: profile.burst,
        }
    }

    /// Whether this is a split run (more than one shard).
    pub fn is_split(&self) -> bool {
        self.count > 1
    }
}

/// A shard count: 1 to [`MAX_SHARDS`].
fn parse_count(text: &str) -> Result<u32, String> {
    match text.trim().parse::<u32>() {
        Ok(n) if (1..=MAX_SHARDS).contains(&n) => Ok(n),
        _ => Err(format!(
            "the count `{}` is not a whole number from 1 to {MAX_SHARDS}",
            text.trim()
        )),
    }
}

/// The run id every shard of a run derives alike from the seed and the shard
/// count, when neither `--run-id` nor `--start-time` gives one.
pub fn run_id(seed: u64, count: u32) -> String {
    let a = super::job::stream_seed(seed ^ 0x7368_6172_6473_5f69, u64::from(count));
    let b = super::job::stream_seed(a, seed);
    format!("{a:016x}{b:016x}")
}

/// What a run report says of the shards it covers: all of them for a whole run
/// or a complete merge, one for a shard's own report.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ShardsReport {
    /// How many shards the run was split into.
    pub count: u32,
    /// The shards whose reports this one covers, in order.
    pub included: Vec<u32>,
    /// The shards it does not cover: for a merged report, those whose report was
    /// not given (a shard that died writes none).
    pub missing: Vec<u32>,
    /// Shards that stopped early (Ctrl-C, SIGTERM, an export failure that stopped them).
    pub interrupted: Vec<u32>,
}

impl ShardsReport {
    /// The report of one shard's own run.
    pub fn of(shard: Shard, interrupted: bool) -> Self {
        ShardsReport {
            count: shard.count,
            included: vec![shard.index],
            missing: (0..shard.count).filter(|i| *i != shard.index).collect(),
            interrupted: if interrupted {
                vec![shard.index]
            } else {
                Vec::new()
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let v: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| v.iter().find(|(n, _)| n == k).map(|(_, x)| x.clone())
    }

    #[test]
    fn the_shards_partition_the_picks() {
        for n in [1u32, 2, 3, 7] {
            for total in [0u64, 1, 5, 6, 7, 100] {
                let mut seen = Vec::new();
                for i in 0..n {
                    let s = Shard { index: i, count: n };
                    for k in 0..s.share_of(total) {
                        let p = s.pick(k);
                        assert_eq!(s.local(p), k);
                        seen.push(p);
                    }
                }
                seen.sort_unstable();
                assert_eq!(seen, (0..total).collect::<Vec<_>>(), "n={n} total={total}");
            }
        }
    }

    #[test]
    fn flags_and_job_variables_name_the_shard() {
        let none = env_of(&[]);
        assert_eq!(Shard::resolve(None, &none), Ok(None));
        assert_eq!(
            Shard::resolve(Some("2/3"), &none),
            Ok(Some(Shard { index: 2, count: 3 }))
        );
        let job = env_of(&[(INDEX_ENV, "1"), (COUNT_ENV, "3")]);
        assert_eq!(
            Shard::resolve(None, &job),
            Ok(Some(Shard { index: 1, count: 3 }))
        );
        // The flag beats the variables.
        assert_eq!(
            Shard::resolve(Some("0/2"), &job),
            Ok(Some(Shard { index: 0, count: 2 }))
        );
        // An Indexed Job that is not sharded: the index alone splits nothing.
        assert_eq!(Shard::resolve(None, &env_of(&[(INDEX_ENV, "1")])), Ok(None));
    }

    #[test]
    fn bad_shards_are_refused_with_what_would_be_valid() {
        let none = env_of(&[]);
        let err = |s: &str| Shard::resolve(Some(s), &none).unwrap_err();
        assert!(err("3/3").contains("the index 3 must be below the count 3 (0 to 2)"));
        assert!(err("x").contains("expected INDEX/COUNT"));
        assert!(err("1/0").contains("not a whole number from 1 to"));
        assert!(err("-1/3").contains("the index `-1`"));
        let e = Shard::resolve(None, &env_of(&[(COUNT_ENV, "3")])).unwrap_err();
        assert!(
            e.contains("OTELSIM_SHARDS=3 needs JOB_COMPLETION_INDEX"),
            "{e}"
        );
        let e = Shard::resolve(None, &env_of(&[(COUNT_ENV, "3"), (INDEX_ENV, "5")])).unwrap_err();
        assert!(
            e.contains("JOB_COMPLETION_INDEX=5 with OTELSIM_SHARDS=3"),
            "{e}"
        );
        let e = Shard::resolve(None, &env_of(&[(COUNT_ENV, "three")])).unwrap_err();
        assert!(e.starts_with("OTELSIM_SHARDS=three: the count"), "{e}");
    }

    #[test]
    fn each_shard_offers_its_share_of_the_shape() {
        let p = Profile::parse_stages("10s:300,20s:300,10s:0").unwrap();
        let s = Shard { index: 1, count: 3 };
        let share = s.shape(&p);
        let whole = p.units_until(40.0);
        assert!((share.units_until(40.0) * 3.0 - whole).abs() < 1e-6);
        assert_eq!(share.secs(), p.secs());
    }

    #[test]
    fn every_shard_derives_the_same_run_id() {
        assert_eq!(run_id(7, 3), run_id(7, 3));
        assert_ne!(run_id(7, 3), run_id(8, 3));
        assert_ne!(run_id(7, 3), run_id(7, 4));
        assert_eq!(run_id(7, 3).len(), 32);
    }
}
