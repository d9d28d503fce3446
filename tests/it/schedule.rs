//! `run --workload-schedule`: config `workload_schedules` choose the scenario mix by
//! the local hour of each pick on the run's clock; without the flag they do nothing;
//! bad schedules are refused with file:line:col.
//!
//! Every run here writes OTLP/JSON to a file on a virtual clock (`--start-time`),
//! with one-span scenarios so one pick is one trace that ends at the pick's time.

use crate::support::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// 2024-01-15T14:00:00Z: 06:00 PST, where `night` (0-6) gives way to `day` (6-12).
const BOUNDARY_S: u64 = 1_705_327_200;
/// 05:30 PST on a winter Monday: the `night` bucket.
const WINTER_NIGHT: &str = "2024-01-15T13:30:00Z";
/// The same UTC time in summer is 06:30 PDT: the `day` bucket.
const SUMMER_DAY: &str = "2024-07-15T13:30:00Z";

const SCHEDULES: &str = r#"
workload_schedules:
  default:
    timezone: America/Los_Angeles
    buckets:
      night:
        hours: [0-6, 22-24]
        scenario_weights:
          night_a: 3
          night_b: 1
          nigt_a: 1
      day:
        hours: [[6, 12]]
        scenario_weights:
          day_a: 1
          Day B: 1
  utc:
    timezone: UTC
    buckets:
      all_day:
        hours: [0-24]
        scenario_weights: {other: 1}
  halves:
    timezone: UTC
    buckets:
      am: {hours: [0-12], scenario_weights: {night_a: 1}}
      pm: {hours: ["12-18"], scenario_weights: {day_a: 1}}
"#;

/// A config folder and a scenarios folder: the bundled config plus `schedules`,
/// and five one-span scenarios (`day_b` is named `Day B`).
struct Fixture {
    _dir: tempfile::TempDir,
    config: PathBuf,
    defs: PathBuf,
    out: PathBuf,
    report: PathBuf,
}

fn fixture(schedules: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let base = std::fs::read_to_string(repo().join("config/config.yaml")).unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, format!("{base}\n{schedules}")).unwrap();
    let defs = dir.path().join("defs");
    std::fs::create_dir(&defs).unwrap();
    let root = "root:\n  type: vendor.a2a.orchestrate\n  latency: 100\n";
    for (stem, head) in [
        ("night_a", "tags: [night]\n"),
        ("night_b", "tags: [night]\n"),
        ("day_a", "tags: [day]\n"),
        ("day_b", "name: Day B\ntags: [day]\n"),
        ("other", "tags: [other]\n"),
    ] {
        std::fs::write(defs.join(format!("{stem}.yaml")), format!("{head}{root}")).unwrap();
    }
    Fixture {
        out: dir.path().join("out.jsonl"),
        report: dir.path().join("run.json"),
        _dir: dir,
        config,
        defs,
    }
}

impl Fixture {
    /// `otelsim run` on this fixture's files, seed 7, writing OTLP/JSON and a report.
    fn run(&self, start: &str) -> Otelsim {
        Otelsim::new()
            .limit(Duration::from_secs(60))
            .cli("run")
            .arg("--config")
            .arg(&self.config)
            .arg("--scenarios-dir")
            .arg(&self.defs)
            .seed(7)
            .start_time(start)
            .output_file(&self.out)
            .report(&self.report)
    }

    /// (scenario, end of its one span in ns) of every pick written.
    fn picks(&self) -> Vec<(String, u64)> {
        spans_in(&self.out)
            .into_iter()
            .map(|s| (s.scope.trim_start_matches("otelsim.").to_string(), s.end))
            .collect()
    }

    /// Requests per scenario, from the run report.
    fn requests(&self) -> BTreeMap<String, u64> {
        let r = read_json(&self.report);
        r["report"]["scenarios"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v["requests"].as_u64().unwrap()))
            .collect()
    }
}

/// Asserts `k` of `n` is within 4 binomial standard deviations of share `p`.
fn assert_share(k: u64, n: u64, p: f64, what: &str) {
    let sd = (n as f64 * p * (1.0 - p)).sqrt();
    let diff = (k as f64 - n as f64 * p).abs();
    assert!(
        diff <= 4.0 * sd,
        "{what}: {k} of {n}, expected about {:.0} (± {:.0})",
        n as f64 * p,
        4.0 * sd
    );
}

#[test]
fn inside_a_bucket_every_pick_is_one_of_its_scenarios_by_its_weights() {
    let f = fixture(SCHEDULES);
    let out = f
        .run(WINTER_NIGHT)
        .cli("--count 400 --interval 0 --workload-schedule")
        .run_ok();
    let req = f.requests();
    let names: Vec<&String> = req.keys().collect();
    assert_eq!(names, ["night_a", "night_b"], "{out}");
    let a = req["night_a"];
    assert_eq!(a + req["night_b"], 400);
    // night_a 3, night_b 1; the misspelt nigt_a is no scenario and takes no share.
    assert_share(a, 400, 0.75, "night_a");
    assert!(
        out.contains(
            "workload schedule default (America/Los_Angeles): night 400 picks, day 0 picks, no bucket 0"
        ),
        "{out}"
    );
    assert!(
        out.contains(
            "scenario_weights.nigt_a`: no loaded scenario has this name (did you mean `night_a`?)"
        ),
        "{out}"
    );
    let ws = &read_json(&f.report)["report"]["workload_schedule"];
    assert_eq!(ws["timezone"], "America/Los_Angeles");
    assert_eq!(ws["buckets"][0]["name"], "night");
    assert_eq!(ws["buckets"][0]["picks"], 400);
    assert_eq!(ws["no_bucket"], 0);
}

#[test]
fn the_hour_is_read_in_the_zone_with_its_summer_time() {
    // 13:30 UTC is 06:30 PDT in July: `day`, whose names are a stem and a display name.
    let f = fixture(SCHEDULES);
    let out = f
        .run(SUMMER_DAY)
        .cli("--count 400 --interval 0 --workload-schedule default")
        .run_ok();
    let req = f.requests();
    assert_eq!(req.keys().collect::<Vec<_>>(), ["day_a", "day_b"], "{out}");
    assert_share(req["day_a"], 400, 0.5, "day_a");
    assert!(out.contains("night 0 picks, day 400 picks"), "{out}");
}

#[test]
fn a_run_that_crosses_a_boundary_switches_the_mix_there() {
    let f = fixture(SCHEDULES);
    // 05:30 to 06:30 PST, one pick every 2 s: 900 picks each side of 06:00.
    let out = f
        .run(WINTER_NIGHT)
        .cli("--rate 0.5 --duration 1h --workload-schedule")
        .run_ok();
    let boundary = BOUNDARY_S * 1_000_000_000;
    let picks = f.picks();
    assert_eq!(picks.len(), 1800, "{out}");
    let (before, after): (Vec<_>, Vec<_>) = picks.iter().partition(|(_, end)| *end < boundary);
    assert_eq!((before.len(), after.len()), (900, 900), "{out}");
    for (name, end) in &before {
        assert!(
            name.starts_with("night_"),
            "{name} at {end} before 06:00 PST"
        );
    }
    for (name, end) in &after {
        assert!(
            name.starts_with("day_"),
            "{name} at {end} from 06:00 PST on"
        );
    }
    assert!(
        out.contains("night 900 picks, day 900 picks, no bucket 0"),
        "{out}"
    );
}

#[test]
fn a_backfilled_run_follows_the_hours_of_its_window() {
    // --backfill 30h ends now and covers every hour: each pick's bucket is its hour's.
    let f = fixture(SCHEDULES);
    let out = Otelsim::new()
        .limit(Duration::from_secs(60))
        .cli("run --rate 0.05 --backfill 30h --workload-schedule halves --seed 3")
        .arg("--config")
        .arg(&f.config)
        .arg("--scenarios-dir")
        .arg(&f.defs)
        .output_file(&f.out)
        .run_ok();
    let picks = f.picks();
    assert!(picks.len() > 5000, "{out}");
    let mut others = 0;
    for (name, end) in &picks {
        let hour = end / 1_000_000_000 / 3600 % 24;
        match hour {
            0..=11 => assert_eq!(name, "night_a", "at {hour}:xx UTC"),
            12..=17 => assert_eq!(name, "day_a", "at {hour}:xx UTC"),
            _ => others += usize::from(name != "night_a" && name != "day_a"),
        }
    }
    assert!(
        others > 0,
        "the hours of no bucket use the normal mix: {out}"
    );
}

#[test]
fn without_the_flag_the_schedule_does_nothing() {
    let f = fixture(SCHEDULES);
    let out = f.run(WINTER_NIGHT).cli("--count 400 --interval 0").run_ok();
    let req = f.requests();
    // The five scenarios (and the config's own control-plane scenario) by
    // workload_weight, as if there were no schedule: not night's two alone.
    for name in ["night_a", "night_b", "day_a", "day_b", "other"] {
        assert!(
            req.get(name).is_some_and(|n| *n > 40),
            "{name}: {req:?}\n{out}"
        );
    }
    assert!(!out.contains("workload schedule"), "{out}");
    assert!(read_json(&f.report)["report"]
        .get("workload_schedule")
        .is_none());
}

#[test]
fn the_environment_variable_names_the_schedule() {
    let f = fixture(SCHEDULES);
    let out = f
        .run(WINTER_NIGHT)
        .cli("--count 50 --interval 0")
        .env("OTELSIM_WORKLOAD_SCHEDULE", "utc")
        .run_ok();
    assert_eq!(f.requests().keys().collect::<Vec<_>>(), ["other"], "{out}");
    assert!(
        out.contains("workload schedule utc (UTC): all_day 50 picks, no bucket 0"),
        "{out}"
    );
}

#[test]
fn a_bucket_that_tags_empty_falls_back_to_the_normal_mix_with_one_warning() {
    let f = fixture(SCHEDULES);
    let out = f
        .run(WINTER_NIGHT)
        .cli("--count 40 --interval 0 --tags other,day --workload-schedule")
        .run_ok();
    let req = f.requests();
    // Night is active; none of its scenarios is tagged other or day: the normal mix.
    assert!(
        req.keys().all(|k| k == "other" || k.starts_with("day_")),
        "{req:?}"
    );
    assert_eq!(req.values().sum::<u64>(), 40);
    assert_eq!(
        out.matches("no scenario of this bucket is selected")
            .count(),
        1,
        "{out}"
    );
    assert!(out.contains("night 40 picks (normal mix)"), "{out}");
}

#[test]
fn a_scheduled_run_is_byte_identical_with_the_same_seed_and_start() {
    let f = fixture(SCHEDULES);
    let digest = |path: &Path| std::fs::read(path).unwrap();
    f.run(WINTER_NIGHT)
        .cli("--rate 0.5 --duration 1h --workload-schedule")
        .run_ok();
    let first = digest(&f.out);
    f.run(WINTER_NIGHT)
        .cli("--rate 0.5 --duration 1h --workload-schedule")
        .run_ok();
    assert!(
        first == digest(&f.out),
        "same seed and start, different output"
    );
    assert!(first.len() > 100_000);
}

/// Runs with `schedules` in the config; asserts exit 2 and returns the output.
fn refused(schedules: &str, flags: &str) -> String {
    let f = fixture(schedules);
    f.run(WINTER_NIGHT).cli("--count 1").cli(flags).run_exit(2)
}

/// The line in the fixture's config of line `n` of the schedules text.
fn config_line(n: usize) -> usize {
    let base = std::fs::read_to_string(repo().join("config/config.yaml")).unwrap();
    assert!(base.ends_with('\n'));
    // The bundled config, an empty line, then the schedules.
    base.lines().count() + 1 + n
}

#[test]
fn bad_schedules_are_refused_with_file_line_and_key() {
    let cases = [
        (
            "workload_schedules:\n  default:\n    timezone: America/Los_Angles\n    buckets:\n      b: {hours: [0-6], scenario_weights: {other: 1}}\n",
            (3, 15),
            "key `workload_schedules.default.timezone`: unknown time zone `America/Los_Angles` (did you mean `America/Los_Angeles`?); expected an IANA time-zone name",
        ),
        (
            "workload_schedules:\n  default:\n    buckets:\n      b: {hours: [0-25], scenario_weights: {other: 1}}\n",
            (4, 19),
            "key `workload_schedules.default.buckets.b.hours[0]`: hours 0-25 are outside 0..24",
        ),
        (
            "workload_schedules:\n  default:\n    buckets:\n      b: {hours: [6-6], scenario_weights: {other: 1}}\n",
            (4, 19),
            "key `workload_schedules.default.buckets.b.hours[0]`: hours 6-6: the start must be before the end",
        ),
        (
            "workload_schedules:\n  default:\n    buckets:\n      b: {hours: [morning], scenario_weights: {other: 1}}\n",
            (4, 19),
            "key `workload_schedules.default.buckets.b.hours[0]`: `morning` is not an hour range; expected \"start-end\"",
        ),
        (
            "workload_schedules:\n  default:\n    buckets:\n      b:\n        hours: [0-6]\n        scenario_weights: {other: 0}\n",
            (6, 35),
            "key `workload_schedules.default.buckets.b.scenario_weights.other`: weight 0 must be greater than 0",
        ),
    ];
    for (schedules, (line, col), expected) in cases {
        let expected = format!("config.yaml:{}:{col}: error: {expected}", config_line(line));
        // Refused with or without the flag: the config is read whole.
        for flags in ["", "--workload-schedule"] {
            let out = refused(schedules, flags);
            assert!(out.contains(&expected), "{expected}\n{flags}\n{out}");
        }
    }
}

#[test]
fn a_schedule_the_config_does_not_define_is_refused() {
    let out = refused(SCHEDULES, "--workload-schedule dfault");
    assert!(
        out.contains("error: key `workload_schedules`: --workload-schedule dfault: no such schedule (did you mean `default`?); defined here: default, utc, halves"),
        "{out}"
    );
    // The schedules' position in the file: line:col after the file name.
    let line = out.lines().find(|l| l.contains("dfault")).unwrap();
    let at = line.split("config.yaml:").nth(1).unwrap();
    let mut nums = at.split(':').take(2).map(|n| n.parse::<u32>());
    assert!(nums.all(|n| n.is_ok_and(|n| n > 0)), "{line}");
    // The bundled config defines none.
    let out = Otelsim::new()
        .cli("run --count 1 --workload-schedule --output-file /dev/null")
        .run_exit(2);
    assert!(out.contains("defines no workload_schedules"), "{out}");
}

#[test]
fn validate_and_list_name_the_schedules() {
    let f = fixture(SCHEDULES);
    let files = |o: Otelsim| {
        o.arg("--config")
            .arg(&f.config)
            .arg("--scenarios-dir")
            .arg(&f.defs)
    };
    let out = files(Otelsim::new().cli("validate")).run_ok();
    assert!(
        out.contains("workload schedule default (America/Los_Angeles): night 0-6,22-24 (3 scenarios), day 6-12 (2 scenarios); used by `otelsim run --workload-schedule`"),
        "{out}"
    );
    assert!(out.contains("workload schedule utc (UTC): all_day 0-24 (1 scenario); used by `otelsim run --workload-schedule utc`"), "{out}");
    assert!(
        out.contains(
            "warning: key `workload_schedules.default.buckets.night.scenario_weights.nigt_a`"
        ),
        "{out}"
    );
    let out = files(Otelsim::new().cli("list --long")).run_ok();
    assert_eq!(out.matches("workload schedule ").count(), 3, "{out}");
}
