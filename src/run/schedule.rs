//! A run's workload schedule (`run --workload-schedule [NAME]`): the config's
//! `workload_schedules.NAME` turned into one picker per bucket, chosen per pick by
//! the local hour of the pick's time on the run's clock.
//!
//! The first bucket whose hours hold that hour decides: only its scenarios are
//! eligible, with its weights in place of `workload_weight`. With no bucket active,
//! or a bucket that `--tags` left empty, the run's normal weighted pick applies.

use crate::diag::{Diagnostic, Diags, Pos};
use crate::model::config::{Config, WorkloadSchedule};
use crate::model::scenario::ScenarioDef;
use crate::registry::{Picker, Registry};
use crate::tz::{local_hour_and_weekday, Zone};

/// A schedule ready to pick from, built once per run.
#[derive(Debug)]
pub struct WorkloadMix {
    /// The schedule's name in the config.
    pub name: String,
    zone: Zone,
    /// Per bucket, in config order: its name and its picker (`None`: nothing
    /// eligible after `--tags`, so the normal pick applies).
    buckets: Vec<(String, Option<Picker>)>,
    /// The bucket active at each local hour (0..=23), precomputed.
    by_hour: [Option<usize>; 24],
}

/// How many picks each bucket took, for the summary and the report.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ScheduleReport {
    /// The schedule's name in the config.
    pub name: String,
    /// The IANA time zone its hours are read in.
    pub timezone: String,
    /// Each bucket in config order.
    pub buckets: Vec<BucketPicks>,
    /// Picks made while no bucket was active (the normal mix).
    pub no_bucket: u64,
}

/// One bucket's share of a run.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BucketPicks {
    /// Its name in the config.
    pub name: String,
    /// Picks made while it was active.
    pub picks: u64,
    /// Whether `--tags` left it no scenario, so its picks used the normal mix.
    pub normal_mix: bool,
}

impl WorkloadMix {
    /// Builds schedule `name` of the config over `candidates` (the scenarios the
    /// run's `--tags` selected). An unknown name is an error naming the config and
    /// the schedules it defines; the warnings (scenario names that match nothing, a
    /// bucket left without scenarios) come with the mix.
    pub fn new(
        name: &str,
        registry: &Registry,
        candidates: &[&ScenarioDef],
    ) -> Result<(WorkloadMix, Vec<Diagnostic>), Diagnostic> {
        let cfg = &registry.config;
        let Some(schedule) = cfg.workload_schedule(name) else {
            return Err(unknown_schedule(name, cfg));
        };
        let mut d = Diags::new(cfg.source.as_str());
        warn_unknown_names(schedule, &registry.scenarios, &mut d);
        let mut buckets = Vec::new();
        for b in &schedule.buckets {
            let mut weights: Vec<(String, f64)> = Vec::new();
            for w in &b.scenario_weights {
                for s in matching(&w.scenario, candidates.iter().copied()) {
                    match weights.iter_mut().find(|(n, _)| *n == s.name) {
                        Some(e) => e.1 += w.weight,
                        None => weights.push((s.name.clone(), w.weight)),
                    }
                }
            }
            let picker = Picker::from_weights(weights).ok();
            if picker.is_none() {
                d.warn(
                    b.pos,
                    &format!("workload_schedules.{}.buckets.{}", schedule.name, b.name),
                    "no scenario of this bucket is selected (check --tags); while it is active the normal weighted mix applies",
                );
            }
            buckets.push((b.name.clone(), picker));
        }
        let mut by_hour = [None; 24];
        for (h, slot) in by_hour.iter_mut().enumerate() {
            *slot = schedule.bucket_at_hour(h as u8);
        }
        let mix = WorkloadMix {
            name: schedule.name.clone(),
            zone: schedule.zone.clone(),
            buckets,
            by_hour,
        };
        Ok((mix, d.items))
    }

    /// The bucket active at `unix_ns`, as an index into the buckets; `None` when no
    /// bucket's hours hold the local hour.
    pub fn bucket_at(&self, unix_ns: u64) -> Option<usize> {
        let (hour, _) = local_hour_and_weekday(&self.zone, unix_ns);
        self.by_hour.get(usize::from(hour)).copied().flatten()
    }

    /// The scenario at `u` (0..1) for a pick at `unix_ns`, and the bucket it fell in
    /// (`None`: no bucket); `normal` is the run's own weighted pick.
    pub fn pick_at<'a>(
        &'a self,
        u: f64,
        unix_ns: u64,
        normal: &'a Picker,
    ) -> (&'a str, Option<usize>) {
        let bucket = self.bucket_at(unix_ns);
        let picker = bucket
            .and_then(|b| self.buckets.get(b))
            .and_then(|(_, p)| p.as_ref())
            .unwrap_or(normal);
        (picker.pick_at(u), bucket)
    }

    /// Counters for every bucket plus the last one for "no bucket", all zero.
    pub fn zero_counts(&self) -> Vec<u64> {
        vec![0; self.buckets.len() + 1]
    }

    /// The report of a run that made `counts` picks (as [`WorkloadMix::zero_counts`]).
    pub fn report(&self, counts: &[u64]) -> ScheduleReport {
        let at = |i: usize| counts.get(i).copied().unwrap_or(0);
        ScheduleReport {
            name: self.name.clone(),
            timezone: self.zone.name().to_string(),
            buckets: self
                .buckets
                .iter()
                .enumerate()
                .map(|(i, (name, p))| BucketPicks {
                    name: name.clone(),
                    picks: at(i),
                    normal_mix: p.is_none(),
                })
                .collect(),
            no_bucket: at(self.buckets.len()),
        }
    }
}

impl ScheduleReport {
    /// One line for the summary:
    /// `workload schedule default (America/Los_Angeles): night 120 picks, day 380 picks, no bucket 0`.
    pub fn render(&self) -> String {
        let mut parts: Vec<String> = self
            .buckets
            .iter()
            .map(|b| {
                let note = if b.normal_mix { " (normal mix)" } else { "" };
                format!("{} {}{note}", b.name, picks(b.picks))
            })
            .collect();
        parts.push(format!("no bucket {}", self.no_bucket));
        format!(
            "workload schedule {} ({}): {}",
            self.name,
            self.timezone,
            parts.join(", ")
        )
    }
}

/// One line about a schedule of the config, for `validate` and `list --long`:
/// `workload schedule default (America/Los_Angeles): night 0-6,22-24 (2 scenarios), day 6-12 (2 scenarios); run --workload-schedule default`.
pub fn describe(s: &WorkloadSchedule) -> String {
    let buckets: Vec<String> = s
        .buckets
        .iter()
        .map(|b| {
            let hours: Vec<String> = b
                .hours
                .iter()
                .map(|r| format!("{}-{}", r.start, r.end))
                .collect();
            let n = b.scenario_weights.len();
            format!(
                "{} {} ({n} scenario{})",
                b.name,
                hours.join(","),
                if n == 1 { "" } else { "s" }
            )
        })
        .collect();
    let flag = if s.name == "default" {
        "--workload-schedule".to_string()
    } else {
        format!("--workload-schedule {}", s.name)
    };
    format!(
        "workload schedule {} ({}): {}; used by `otelsim run {flag}`",
        s.name,
        s.zone.name(),
        if buckets.is_empty() {
            "no buckets".to_string()
        } else {
            buckets.join(", ")
        }
    )
}

/// `1 pick`, `2 picks`.
fn picks(n: u64) -> String {
    if n == 1 {
        "1 pick".to_string()
    } else {
        format!("{n} picks")
    }
}

/// The scenarios a `scenario_weights` key names: the one with that lookup name (file
/// stem), else those whose display name (`name:`) it is.
fn matching<'a>(
    key: &str,
    scenarios: impl Iterator<Item = &'a ScenarioDef> + Clone,
) -> Vec<&'a ScenarioDef> {
    if let Some(s) = scenarios.clone().find(|s| s.name == key) {
        return vec![s];
    }
    scenarios.filter(|s| s.display_name == key).collect()
}

/// A warning for every `scenario_weights` key that names no loaded scenario, with
/// the closest name when one is near.
fn warn_unknown_names(schedule: &WorkloadSchedule, scenarios: &[ScenarioDef], d: &mut Diags) {
    for b in &schedule.buckets {
        for w in &b.scenario_weights {
            if !matching(&w.scenario, scenarios.iter()).is_empty() {
                continue;
            }
            let names = scenarios
                .iter()
                .flat_map(|s| [s.name.as_str(), s.display_name.as_str()]);
            let hint = crate::diag::closest(&w.scenario, names)
                .map(|c| format!(" (did you mean `{c}`?)"))
                .unwrap_or_default();
            d.warn(
                w.pos,
                &format!(
                    "workload_schedules.{}.buckets.{}.scenario_weights.{}",
                    schedule.name, b.name, w.scenario
                ),
                format!(
                    "no loaded scenario has this name{hint}; it is never picked (names are file stems or `name:` values; `otelsim list` shows them)"
                ),
            );
        }
    }
}

/// Warnings for every schedule of the config whose scenario names match no loaded
/// scenario (for `validate`, which checks all schedules).
pub fn check_names(registry: &Registry) -> Vec<Diagnostic> {
    let mut d = Diags::new(registry.config.source.as_str());
    for s in &registry.config.workload_schedules {
        warn_unknown_names(s, &registry.scenarios, &mut d);
    }
    d.items
}

/// `--workload-schedule NAME` that the config does not define, pointing at its
/// schedules (or at the file when it has none).
fn unknown_schedule(name: &str, cfg: &Config) -> Diagnostic {
    let defined: Vec<&str> = cfg
        .workload_schedules
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    let pos = cfg
        .workload_schedules
        .first()
        .map_or(Pos::default(), |s| s.pos);
    let message = if defined.is_empty() {
        format!(
            "--workload-schedule {name}: this config defines no workload_schedules; add `workload_schedules: {{{name}: {{timezone, buckets}}}}` or drop the flag"
        )
    } else {
        format!(
            "--workload-schedule {name}: no such schedule{}; defined here: {}",
            crate::model::read::did_you_mean(name, defined.iter().copied()),
            defined.join(", ")
        )
    };
    let mut d = Diags::new(cfg.source.as_str());
    d.error(pos, "workload_schedules", message);
    d.items.remove(0)
}
