//! Reads a scenario's `instability:` section (see `model::instability`).

use crate::diag::Diags;
use crate::model::instability::{InstabilityDef, Noise, NOISE_LEVELS};
use crate::yaml::{read_non_negative, read_prob, read_str, read_u64, MapReader, Node};

/// Most turns a session may have (a long chain, still one trace).
pub const MAX_TURNS: u64 = 1_000;

/// `instability: {turns: {min, max}, noise, drift_rate, correction_rate,
/// recovery_rate, fail_rate, branching, step_ms}`; a bad value is reported and
/// its default kept.
pub fn read(node: &Node, d: &mut Diags) -> InstabilityDef {
    let mut out = InstabilityDef::default();
    let Some(mut r) = MapReader::new(node, "instability", d) else {
        return out;
    };
    if let Some(n) = r.get("turns") {
        read_turns(n, &mut out, d);
    }
    if let Some(n) = r.get("noise") {
        if let Some(s) = read_str(n, "instability.noise", d) {
            match Noise::parse(&s) {
                Some(noise) => out.noise = noise,
                None => d.error(
                    n.pos,
                    "instability.noise",
                    format!(
                        "unknown noise level `{s}`; valid: {}",
                        NOISE_LEVELS.join(", ")
                    ),
                ),
            }
        }
    }
    for (key, slot) in [
        ("drift_rate", &mut out.drift_rate),
        ("correction_rate", &mut out.correction_rate),
        ("recovery_rate", &mut out.recovery_rate),
        ("fail_rate", &mut out.fail_rate),
        ("branching", &mut out.branching),
    ] {
        if let Some(n) = r.get(key) {
            if let Some(v) = read_prob(n, &format!("instability.{key}"), d) {
                *slot = v;
            }
        }
    }
    if let Some(n) = r.get("step_ms") {
        match read_non_negative(n, "instability.step_ms", d) {
            Some(v) if (1.0..=600_000.0).contains(&v) => out.step_ms = v,
            Some(v) => d.error(
                n.pos,
                "instability.step_ms",
                format!("{v} is out of range; expected 1 to 600000 ms"),
            ),
            None => {}
        }
    }
    r.finish(d);
    out
}

/// `turns: {min, max}` or `turns: N`; a session needs room for an episode (4 turns).
fn read_turns(n: &Node, out: &mut InstabilityDef, d: &mut Diags) {
    let one = |n: &Node, path: &str, d: &mut Diags| {
        let v = read_u64(n, path, d)?;
        if !(4..=MAX_TURNS).contains(&v) {
            d.error(
                n.pos,
                path,
                format!(
                    "{v} turns is out of range; expected 4 to {MAX_TURNS} (an episode needs 4)"
                ),
            );
            return None;
        }
        Some(v as u32)
    };
    if n.as_map().is_none() {
        if let Some(v) = one(n, "instability.turns", d) {
            out.turns = (v, v);
        }
        return;
    }
    let Some(mut r) = MapReader::new(n, "instability.turns", d) else {
        return;
    };
    let min = r
        .get("min")
        .and_then(|v| one(v, "instability.turns.min", d));
    let max = r
        .get("max")
        .and_then(|v| one(v, "instability.turns.max", d));
    r.finish(d);
    let (lo, hi) = (
        min.unwrap_or(out.turns.0),
        max.unwrap_or(out.turns.1.max(min.unwrap_or(0))),
    );
    if lo > hi {
        d.error(
            n.pos,
            "instability.turns",
            format!("min {lo} is above max {hi}"),
        );
        return;
    }
    out.turns = (lo, hi);
}
