//! `workload_schedules`: time-of-day scenario mixes, each a time zone and buckets
//! of local hours with the scenario weights that apply while a bucket is active.
//!
//! ```yaml
//! workload_schedules:
//!   default:
//!     timezone: America/Los_Angeles
//!     buckets:
//!       night: {hours: [0-6, 22-24], scenario_weights: {new_claim_phone: 0.45}}
//! ```
//!
//! Scenario names are checked against the loaded scenarios later
//! (`run::schedule::check_names`): the config is read before them.

use crate::diag::Diags;
use crate::model::config::{HourRange, ScheduleBucket, ScheduledWeight, WorkloadSchedule};
use crate::tz::Zone;
use crate::yaml::{describe, join, read_f64, read_str, Kind, MapReader, Node};

/// What a `hours` entry may be, for messages.
const HOURS_SHAPE: &str =
    "expected \"start-end\" (e.g. \"0-6\") or [start, end], with 0 <= start < end <= 24";

/// `workload_schedules: {<name>: {timezone, buckets}}`, in file order.
pub fn read_workload_schedules(node: &Node, d: &mut Diags) -> Vec<WorkloadSchedule> {
    let mut out = Vec::new();
    let Some(entries) = node.as_map() else {
        if node.kind != Kind::Null {
            d.error(
                node.pos,
                "workload_schedules",
                format!(
                    "expected a mapping of schedule name → {{timezone, buckets}}, found {}",
                    node.type_name()
                ),
            );
        }
        return out;
    };
    for (name, body) in entries {
        let path = join("workload_schedules", name);
        if let Some(s) = read_schedule(name, body, &path, d) {
            out.push(s);
        }
    }
    out
}

/// One schedule; `None` when it is not a mapping.
fn read_schedule(name: &str, node: &Node, path: &str, d: &mut Diags) -> Option<WorkloadSchedule> {
    let mut r = MapReader::new(node, path, d)?;
    let zone = match r.get("timezone") {
        Some(n) => read_str(n, &r.sub("timezone"), d).and_then(|z| {
            Zone::parse(z.trim())
                .map_err(|e| d.error(n.pos, &r.sub("timezone"), e))
                .ok()
        }),
        None => Some(Zone::utc()),
    };
    let mut buckets = Vec::new();
    match r.get("buckets") {
        Some(b) => match b.as_map() {
            Some(entries) => {
                for (bname, body) in entries {
                    let bpath = join(&r.sub("buckets"), bname);
                    if let Some(bucket) = read_bucket(bname, body, &bpath, d) {
                        buckets.push(bucket);
                    }
                }
                if entries.is_empty() {
                    d.warn(b.pos, &r.sub("buckets"), "no buckets: the schedule never changes the mix");
                }
            }
            None => d.error(
                b.pos,
                &r.sub("buckets"),
                format!(
                    "expected a mapping of bucket name → {{hours, scenario_weights}}, found {}",
                    b.type_name()
                ),
            ),
        },
        None => d.error(
            node.key_pos,
            path,
            "missing `buckets`: a mapping of bucket name → {hours: [\"0-6\", \"22-24\"], scenario_weights: {scenario: weight}}",
        ),
    }
    r.finish(d);
    Some(WorkloadSchedule {
        name: name.to_string(),
        zone: zone.unwrap_or_else(Zone::utc),
        buckets,
        pos: node.key_pos,
    })
}

/// One bucket: `hours` and `scenario_weights`, both required.
fn read_bucket(name: &str, node: &Node, path: &str, d: &mut Diags) -> Option<ScheduleBucket> {
    let mut r = MapReader::new(node, path, d)?;
    let hours = match r.get("hours") {
        Some(h) => read_hours(h, &r.sub("hours"), d),
        None => {
            d.error(
                node.key_pos,
                path,
                format!("missing `hours`: a list of local hour ranges, {HOURS_SHAPE}"),
            );
            Vec::new()
        }
    };
    let scenario_weights = match r.get("scenario_weights") {
        Some(w) => read_weights(w, &r.sub("scenario_weights"), d),
        None => {
            d.error(
                node.key_pos,
                path,
                "missing `scenario_weights`: a mapping of scenario name → weight (> 0)",
            );
            Vec::new()
        }
    };
    r.finish(d);
    Some(ScheduleBucket {
        name: name.to_string(),
        hours,
        scenario_weights,
        pos: node.key_pos,
    })
}

/// `hours: ["0-6", [22, 24]]`; one string alone is one range.
fn read_hours(node: &Node, path: &str, d: &mut Diags) -> Vec<HourRange> {
    let items: Vec<&Node> = match &node.kind {
        Kind::Seq(items) => items.iter().collect(),
        Kind::Str(_) => vec![node],
        _ => {
            d.error(
                node.pos,
                path,
                format!(
                    "expected a list of hour ranges, found {}; each {HOURS_SHAPE}",
                    describe(node)
                ),
            );
            return Vec::new();
        }
    };
    if items.is_empty() {
        d.error(
            node.pos,
            path,
            format!("no hours: the bucket would never be active; list at least one range, {HOURS_SHAPE}"),
        );
    }
    // `[0, 6]` is two entries, not one range: say how to write the range.
    let two_numbers = items.len() == 2 && items.iter().all(|n| matches!(n.kind, Kind::Int(_)));
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let p = if matches!(node.kind, Kind::Seq(_)) {
            format!("{path}[{i}]")
        } else {
            path.to_string()
        };
        match hour_range(item) {
            Ok(r) => out.push(r),
            Err(e) => {
                let hint = if two_numbers {
                    "; for one range write [[start, end]] or [\"start-end\"]"
                } else {
                    ""
                };
                d.error(item.pos, &p, format!("{e}{hint}"));
            }
        }
    }
    out
}

/// One range, `"a-b"` or `[a, b]`, checked.
fn hour_range(node: &Node) -> Result<HourRange, String> {
    let (a, b) = match &node.kind {
        Kind::Str(s) => {
            let parsed = s.split_once('-').and_then(|(a, b)| {
                Some((a.trim().parse::<i64>().ok()?, b.trim().parse::<i64>().ok()?))
            });
            parsed.ok_or_else(|| format!("`{s}` is not an hour range; {HOURS_SHAPE}"))?
        }
        Kind::Seq(pair) => match pair.as_slice() {
            [x, y] => match (&x.kind, &y.kind) {
                (Kind::Int(a), Kind::Int(b)) => (*a, *b),
                _ => {
                    return Err(format!(
                        "[{}, {}] is not an hour range; {HOURS_SHAPE}",
                        describe(x),
                        describe(y)
                    ))
                }
            },
            _ => {
                return Err(format!(
                    "a list of {} item(s) is not an hour range; {HOURS_SHAPE}",
                    pair.len()
                ))
            }
        },
        _ => {
            return Err(format!(
                "{} is not an hour range; {HOURS_SHAPE}",
                describe(node)
            ))
        }
    };
    if !(0..=24).contains(&a) || !(0..=24).contains(&b) {
        return Err(format!("hours {a}-{b} are outside 0..24; {HOURS_SHAPE}"));
    }
    if a >= b {
        return Err(format!(
            "hours {a}-{b}: the start must be before the end (a range past midnight is two: \"{a}-24\" and \"0-{b}\"); {HOURS_SHAPE}"
        ));
    }
    Ok(HourRange {
        start: a as u8,
        end: b as u8,
    })
}

/// `scenario_weights: {<scenario>: weight > 0}`, in file order.
fn read_weights(node: &Node, path: &str, d: &mut Diags) -> Vec<ScheduledWeight> {
    let mut out = Vec::new();
    let Some(entries) = node.as_map() else {
        d.error(
            node.pos,
            path,
            format!(
                "expected a mapping of scenario name → weight (> 0), found {}",
                node.type_name()
            ),
        );
        return out;
    };
    if entries.is_empty() {
        d.error(
            node.pos,
            path,
            "no scenarios: list at least one scenario name with a weight > 0",
        );
    }
    for (name, v) in entries {
        let p = join(path, name);
        let Some(w) = read_f64(v, &p, d) else {
            continue;
        };
        if w <= 0.0 {
            d.error(
                v.pos,
                &p,
                format!("weight {w} must be greater than 0; to leave the scenario out of this bucket, remove it"),
            );
            continue;
        }
        out.push(ScheduledWeight {
            scenario: name.clone(),
            weight: w,
            pos: v.key_pos,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::diag::Diags;
    use crate::model::config::{Config, HourRange};

    fn load(src: &str) -> (Config, Vec<String>) {
        let mut d = Diags::new("config.yaml");
        let node = crate::yaml::parse(src, &mut d).expect("test YAML parses");
        let cfg = crate::model::read::config::load(&node, None, &mut d).expect("config loads");
        (cfg, d.items.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn schedules_read_both_hour_forms_in_file_order() {
        let (cfg, diags) = load(
            "workload_schedules:\n  default:\n    timezone: Europe/Berlin\n    buckets:\n      night:\n        hours: [0-6, [22, 24]]\n        scenario_weights: {a: 0.45, B c: 2}\n      all: {hours: \" 0 - 24 \", scenario_weights: {b: 1}}\n",
        );
        assert!(diags.is_empty(), "{diags:#?}");
        let s = cfg.workload_schedule("default").expect("read");
        assert_eq!(s.zone.name(), "Europe/Berlin");
        let night = &s.buckets[0];
        assert_eq!(night.name, "night");
        assert_eq!(
            night.hours,
            [
                HourRange { start: 0, end: 6 },
                HourRange { start: 22, end: 24 }
            ]
        );
        let w: Vec<(&str, f64)> = night
            .scenario_weights
            .iter()
            .map(|w| (w.scenario.as_str(), w.weight))
            .collect();
        assert_eq!(w, [("a", 0.45), ("B c", 2.0)]);
        // The first bucket that holds the hour wins; `all` holds the rest.
        assert_eq!(s.bucket_at_hour(5), Some(0));
        assert_eq!(s.bucket_at_hour(23), Some(0));
        assert_eq!(s.bucket_at_hour(6), Some(1));
        assert_eq!(s.buckets[1].hours, [HourRange { start: 0, end: 24 }]);
    }

    #[test]
    fn a_schedule_without_a_timezone_reads_utc_and_one_without_buckets_is_refused() {
        let (cfg, diags) = load(
            "workload_schedules:\n  plain:\n    buckets:\n      b: {hours: [9-17], scenario_weights: {a: 1}}\n  empty: {timezone: UTC}\n",
        );
        assert_eq!(cfg.workload_schedules[0].zone.name(), "UTC");
        assert_eq!(cfg.workload_schedules[0].bucket_at_hour(8), None);
        assert_eq!(diags.len(), 1, "{diags:#?}");
        assert!(
            diags[0].starts_with(
                "config.yaml:5:3: error: key `workload_schedules.empty`: missing `buckets`"
            ),
            "{diags:#?}"
        );
    }

    #[test]
    fn two_bare_numbers_are_explained_as_one_range() {
        let (_, diags) = load(
            "workload_schedules:\n  d:\n    buckets:\n      b: {hours: [0, 6], scenario_weights: {a: 1}}\n",
        );
        assert_eq!(diags.len(), 2, "{diags:#?}");
        assert!(
            diags[0].contains("hours[0]`: the integer 0 is not an hour range")
                && diags[0].contains("for one range write [[start, end]]"),
            "{diags:#?}"
        );
    }
}
