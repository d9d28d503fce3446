//! Load profiles in YAML (`run --load-profile FILE`): the same shapes as
//! `--rate`, `--stages` and `--burst`, kept in a file next to the scenarios.
//!
//! ```yaml
//! unit: spans            # traces (default) or spans
//! stages:                # ramp linearly to each target over its duration
//!   - { duration: 30s, target: 1000 }
//!   - { duration: 5m, target: 1000 }
//!   - { duration: 30s, target: 0 }
//! burst: { factor: 5, duration: 10s, every: 1m }
//! ```
//! `rate: 1000` instead of `stages` holds one rate for the whole run.
//! `incidents:` adds incident windows (see `crate::incidents`).

use crate::diag::{Diags, LoadError};
use crate::pace::{Burst, Profile, RateUnit};
use crate::yaml::{self, MapReader, Node};

/// A parsed profile: the shape and, when the file says, its unit.
pub struct LoadProfile {
    /// Rate over time: stages or a fixed rate, with any burst on top.
    pub profile: Profile,
    /// `unit:` from the file; `None` leaves the command line's.
    pub unit: Option<RateUnit>,
    /// `incidents:` windows in which a service fails more or slows down.
    pub incidents: Vec<crate::incidents::Incident>,
}

/// Reads and validates a load profile; every problem is reported with file, line and key.
pub fn load(path: &std::path::Path) -> Result<LoadProfile, LoadError> {
    let name = path.display().to_string();
    let mut d = Diags::new(name.as_str());
    let text = match crate::input_file::read_text(path, crate::input_file::MAX_YAML_BYTES) {
        Ok(t) => t,
        Err(e) => {
            d.error(
                Default::default(),
                "",
                format!("cannot read the load profile: it {e}"),
            );
            return Err(LoadError {
                diagnostics: d.items,
            });
        }
    };
    let parsed = yaml::parse(&text, &mut d).and_then(|root| read(&root, &mut d));
    match parsed {
        Some(p) if !d.has_errors() => Ok(p),
        _ => Err(LoadError {
            diagnostics: d.items,
        }),
    }
}

fn read(root: &Node, d: &mut Diags) -> Option<LoadProfile> {
    let mut m = MapReader::new(root, "", d)?;
    let unit = m.get("unit").and_then(|n| match n.as_str() {
        Some("traces") => Some(RateUnit::Traces),
        Some("spans") => Some(RateUnit::Spans),
        _ => {
            d.error(
                n.pos,
                "unit",
                format!("expected `traces` or `spans`, found {}", yaml::describe(n)),
            );
            None
        }
    });
    let rate = m.get("rate");
    let stages = m.get("stages");
    let burst = m.get("burst").and_then(|n| read_burst(n, d));
    let incidents = m
        .get("incidents")
        .map(|n| crate::incidents::read(n, d))
        .unwrap_or_default();
    let mut profile = match (rate, stages) {
        (Some(r), None) => Profile::constant(positive(r, "rate", d)?),
        (None, Some(s)) => read_stages(s, d)?,
        (Some(_), Some(s)) => {
            d.error(
                s.key_pos,
                "stages",
                "give either `rate` or `stages`, not both",
            );
            return None;
        }
        (None, None) => {
            d.error(
                root.pos,
                "",
                "a load profile needs `rate: N` or `stages: [{ duration: 30s, target: N }, ...]`",
            );
            return None;
        }
    };
    profile.burst = burst;
    m.finish(d);
    Some(LoadProfile {
        profile,
        unit,
        incidents,
    })
}

fn read_stages(node: &Node, d: &mut Diags) -> Option<Profile> {
    let yaml::Kind::Seq(items) = &node.kind else {
        d.error(
            node.pos,
            "stages",
            format!(
                "expected a list of {{ duration, target }}, found {}",
                yaml::describe(node)
            ),
        );
        return None;
    };
    let mut targets = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("stages[{i}]");
        let Some(mut m) = MapReader::new(item, &path, d) else {
            continue;
        };
        let secs = match m.get("duration") {
            Some(n) => duration(n, &m.sub("duration"), d),
            None => {
                d.error(item.pos, &path, "missing `duration` (e.g. 30s)");
                None
            }
        };
        let target = match m.get("target") {
            Some(n) => non_negative(n, &m.sub("target"), d),
            None => {
                d.error(item.pos, &path, "missing `target` (a rate per second)");
                None
            }
        };
        m.finish(d);
        if let (Some(secs), Some(to)) = (secs, target) {
            targets.push((secs, to));
        }
    }
    if targets.is_empty() {
        d.error(node.pos, "stages", "the list is empty");
        return None;
    }
    Some(Profile::ramps(targets))
}

fn read_burst(node: &Node, d: &mut Diags) -> Option<Burst> {
    let mut m = MapReader::new(node, "burst", d)?;
    let factor = m
        .get("factor")
        .and_then(|n| non_negative(n, "burst.factor", d));
    let secs = m
        .get("duration")
        .and_then(|n| duration(n, "burst.duration", d));
    let every_s = m.get("every").and_then(|n| duration(n, "burst.every", d));
    m.finish(d);
    match (factor, secs, every_s) {
        (Some(factor), Some(secs), Some(every_s)) if every_s > 0.0 && secs <= every_s => {
            Some(Burst {
                factor,
                secs,
                every_s,
            })
        }
        (Some(_), Some(_), Some(_)) => {
            d.error(
                node.pos,
                "burst",
                "the burst `duration` must fit in its period `every` (> 0)",
            );
            None
        }
        _ => {
            d.error(
                node.pos,
                "burst",
                "a burst needs `factor`, `duration` and `every`, e.g. { factor: 5, duration: 10s, every: 1m }",
            );
            None
        }
    }
}

pub(crate) fn duration(n: &Node, path: &str, d: &mut Diags) -> Option<f64> {
    if n.as_f64() == Some(0.0) {
        return Some(0.0);
    }
    match n.as_str().map(|s| humantime::parse_duration(s.trim())) {
        Some(Ok(v)) => Some(v.as_secs_f64()),
        _ => {
            d.error(
                n.pos,
                path,
                format!(
                    "expected a duration such as 30s, 2m or 1h, found {}",
                    yaml::describe(n)
                ),
            );
            None
        }
    }
}

fn non_negative(n: &Node, path: &str, d: &mut Diags) -> Option<f64> {
    let v = yaml::read_non_negative(n, path, d)?;
    if v > crate::pace::MAX_RATE {
        d.error(
            n.pos,
            path,
            format!("at most {} per second", crate::pace::MAX_RATE),
        );
        return None;
    }
    Some(v)
}

fn positive(n: &Node, path: &str, d: &mut Diags) -> Option<f64> {
    let v = non_negative(n, path, d)?;
    if v == 0.0 {
        d.error(n.pos, path, "must be greater than 0");
        return None;
    }
    Some(v)
}
