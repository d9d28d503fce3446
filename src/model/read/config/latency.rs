//! Reads latency profiles: `latency_profiles: {<name>: profile}` and the
//! doc-era `happy_path_latency`, which also becomes the default profile.

use crate::diag::Diags;
use crate::model::config::{LatencyProfile, LATENCY_KEYS};
use crate::model::distribution::Distribution;
use crate::yaml::{join, read_f64, read_non_negative, read_prob, Kind, MapReader, Node};
use std::collections::BTreeMap;

/// Reads both latency keys; returns the default profile and every named one.
pub(crate) fn read_latency_sections(
    r: &mut MapReader<'_>,
    d: &mut Diags,
) -> (LatencyProfile, BTreeMap<String, LatencyProfile>) {
    let mut latency_profiles = BTreeMap::new();
    let mut latency = LatencyProfile {
        default_variance: 0.2,
        spans: BTreeMap::new(),
    };
    if let Some(n) = r.get("latency_profiles") {
        if let Some(mut pr) = MapReader::new(n, "latency_profiles", d) {
            let names: Vec<(String, Node)> = pr.rest().cloned().collect();
            for (name, body) in names {
                let p = read_latency_profile(&body, &join("latency_profiles", &name), d);
                latency_profiles.insert(name, p);
            }
        }
    }
    if let Some(p) = latency_profiles.get("happy_path") {
        latency = p.clone();
    }
    if let Some(n) = r.get("happy_path_latency") {
        latency = read_latency_profile(n, "happy_path_latency", d);
        latency_profiles.insert("happy_path".into(), latency.clone());
    }
    (latency, latency_profiles)
}

/// One profile: `{default_variance, spans: {<latency key>: entry}}`.
fn read_latency_profile(node: &Node, path: &str, d: &mut Diags) -> LatencyProfile {
    let mut profile = LatencyProfile {
        default_variance: 0.2,
        spans: BTreeMap::new(),
    };
    let Some(mut r) = MapReader::new(node, path, d) else {
        return profile;
    };
    if let Some(n) = r.get("default_variance") {
        profile.default_variance =
            read_non_negative(n, &r.sub("default_variance"), d).unwrap_or(0.2);
    }
    if let Some(spans) = r.get("spans") {
        let spath = r.sub("spans");
        if let Some(mut sr) = MapReader::new(spans, &spath, d) {
            let entries: Vec<(String, Node)> = sr.rest().cloned().collect();
            for (key, body) in entries {
                let kpath = join(&spath, &key);
                if !LATENCY_KEYS.contains(&key.as_str()) {
                    d.warn(
                        body.pos,
                        &kpath,
                        format!(
                            "latency key not used by otelsim; known keys: {}",
                            LATENCY_KEYS.join(", ")
                        ),
                    );
                }
                if let Some(dist) = read_profile_entry(&body, &kpath, profile.default_variance, d) {
                    profile.spans.insert(key, dist);
                }
            }
        }
    }
    r.finish(d);
    profile
}

/// `{mean_ms, variance, spike: {probability, multiplier_range}}`, a bare mean, or a distribution.
fn read_profile_entry(
    node: &Node,
    path: &str,
    default_variance: f64,
    d: &mut Diags,
) -> Option<Distribution> {
    if node.get("spike").is_none() {
        return crate::model::read::distribution::read_latency(node, path, default_variance, d);
    }
    let mut r = MapReader::new(node, path, d)?;
    let mean = r
        .get_any(&["mean_ms", "mean"])
        .and_then(|(k, n)| read_non_negative(n, &r.sub(k), d));
    let variance = r
        .get("variance")
        .and_then(|n| read_non_negative(n, &r.sub("variance"), d))
        .unwrap_or(default_variance);
    let spike = r.get("spike")?;
    let spath = r.sub("spike");
    let mut sr = MapReader::new(spike, &spath, d)?;
    let prob = sr
        .get_any(&["probability", "rate"])
        .and_then(|(k, n)| read_prob(n, &sr.sub(k), d))
        .unwrap_or(0.0);
    let mult = match sr.get("multiplier_range") {
        Some(n) => match &n.kind {
            Kind::Seq(v) if v.len() == 2 => {
                let lo = read_f64(&v[0], &sr.sub("multiplier_range"), d).unwrap_or(1.0);
                let hi = read_f64(&v[1], &sr.sub("multiplier_range"), d).unwrap_or(lo);
                (lo + hi) / 2.0
            }
            _ => {
                d.error(n.pos, &sr.sub("multiplier_range"), "expected [low, high]");
                1.0
            }
        },
        None => sr
            .get("multiplier")
            .and_then(|n| read_f64(n, &sr.sub("multiplier"), d))
            .unwrap_or(3.0),
    };
    sr.finish(d);
    r.finish(d);
    Some(Distribution::MeanVariance {
        mean: mean.filter(|m| *m > 0.0)?,
        variance,
        spike_rate: prob,
        spike_multiplier: mult,
    })
}
