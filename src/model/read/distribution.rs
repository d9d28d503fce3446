//! Reads distributions from YAML: latencies, numeric and count specs, categorical
//! choices. Every parameter is range-checked here so that sampling
//! (`model::distribution`) cannot fail.

use crate::diag::Diags;
use crate::model::distribution::{Categorical, Count, Distribution, MAX_COUNT, MAX_PARAM};
use crate::yaml::{describe, read_f64, read_prob, read_u64, Kind, MapReader, Node};

/// Names accepted after `distribution:`, for error messages.
pub const NUMERIC_NAMES: &str =
    "constant, normal, normal_with_outliers, log_normal, uniform, exponential, poisson, geometric, bernoulli, mixture";

/// Defaults for the `mean`/`variance` latency shorthand.
pub const DEFAULT_VARIANCE: f64 = 0.3;

/// Reads a latency: a bare number (mean ms, default variance), the
/// `{mean_ms, variance, spike_rate, spike_multiplier}` shorthand, or `{distribution: ...}`.
pub fn read_latency(
    node: &Node,
    path: &str,
    default_variance: f64,
    diags: &mut Diags,
) -> Option<Distribution> {
    match &node.kind {
        Kind::Int(_) | Kind::Float(_) => {
            let mean = read_positive(node, path, diags)?;
            Some(Distribution::MeanVariance {
                mean,
                variance: default_variance,
                spike_rate: 0.0,
                spike_multiplier: 1.0,
            })
        }
        Kind::Map(_) if node.get("distribution").is_some() => read_numeric(node, path, diags),
        Kind::Map(_) => {
            let mut r = MapReader::new(node, path, diags)?;
            let mean = match r.get_any(&["mean_ms", "mean"]) {
                Some((k, n)) => read_positive(n, &r.sub(k), diags),
                None => {
                    diags.error(
                        r.pos(),
                        path,
                        "latency needs `mean_ms` (or `distribution: log_normal|normal|uniform|exponential|constant` with its parameters)",
                    );
                    None
                }
            };
            let variance = r
                .get("variance")
                .and_then(|n| read_bounded_non_negative(n, &r.sub("variance"), diags))
                .unwrap_or(default_variance);
            let spike_rate = r
                .get("spike_rate")
                .and_then(|n| read_prob(n, &r.sub("spike_rate"), diags))
                .unwrap_or(0.0);
            let spike_multiplier = r
                .get("spike_multiplier")
                .and_then(|n| read_positive(n, &r.sub("spike_multiplier"), diags))
                .unwrap_or(3.0);
            r.finish(diags);
            Some(Distribution::MeanVariance {
                mean: mean?,
                variance,
                spike_rate,
                spike_multiplier,
            })
        }
        _ => {
            diags.error(
                node.pos,
                path,
                format!(
                    "expected a latency (a number of ms, {{mean_ms, variance}}, or {{distribution: ...}}), found {}",
                    describe(node)
                ),
            );
            None
        }
    }
}

/// A finite number no larger in magnitude than `MAX_PARAM`.
pub fn read_bounded(node: &Node, path: &str, diags: &mut Diags) -> Option<f64> {
    let v = read_f64(node, path, diags)?;
    within_bound(v, node, path, diags)
}

/// A finite number in [0, `MAX_PARAM`] (weights, variances, constants).
pub fn read_bounded_non_negative(node: &Node, path: &str, diags: &mut Diags) -> Option<f64> {
    let v = crate::yaml::read_non_negative(node, path, diags)?;
    within_bound(v, node, path, diags)
}

fn within_bound(v: f64, node: &Node, path: &str, diags: &mut Diags) -> Option<f64> {
    if v.abs() > MAX_PARAM {
        diags.error(
            node.pos,
            path,
            format!("{v} is too large; values up to {MAX_PARAM:e} are accepted"),
        );
        return None;
    }
    Some(v)
}

fn read_positive(node: &Node, path: &str, diags: &mut Diags) -> Option<f64> {
    let v = read_bounded(node, path, diags)?;
    if v <= 0.0 {
        diags.error(node.pos, path, format!("{v} must be greater than 0"));
        return None;
    }
    Some(v)
}

/// Reads `{distribution: <name>, ...params}` (a bare number is a constant).
pub fn read_numeric(node: &Node, path: &str, diags: &mut Diags) -> Option<Distribution> {
    if node.as_f64().is_some() {
        return read_bounded_non_negative(node, path, diags).map(Distribution::Constant);
    }
    let mut r = MapReader::new(node, path, diags)?;
    let name = match r.get_any(&["distribution", "type"]) {
        Some((k, n)) => match n.as_str() {
            Some(s) => s.to_ascii_lowercase().replace('-', "_"),
            None => {
                diags.error(
                    n.pos,
                    &r.sub(k),
                    format!("expected a distribution name ({NUMERIC_NAMES})"),
                );
                return None;
            }
        },
        None => {
            diags.error(
                r.pos(),
                path,
                format!("missing `distribution` ({NUMERIC_NAMES})"),
            );
            return None;
        }
    };
    let d = read_params(&name, &mut r, diags);
    // Count caps are read by the caller (`min`/`max`) for count distributions.
    r.ignore("min");
    r.ignore("max");
    // `integer: true` is read by attribute readers.
    r.ignore("integer");
    r.finish(diags);
    d
}

fn param(
    r: &mut MapReader<'_>,
    keys: &[&'static str],
    diags: &mut Diags,
    what: &str,
) -> Option<f64> {
    match r.get_any(keys) {
        Some((k, n)) => read_bounded(n, &r.sub(k), diags),
        None => {
            diags.error(r.pos(), r.path(), format!("{what} needs `{}`", keys[0]));
            None
        }
    }
}

fn read_params(name: &str, r: &mut MapReader<'_>, diags: &mut Diags) -> Option<Distribution> {
    let path = r.path().to_string();
    let pos = r.pos();
    let bad = |diags: &mut Diags, msg: String| {
        diags.error(pos, &path, msg);
        None::<Distribution>
    };
    match name {
        "constant" | "fixed" => {
            let v = param(r, &["value_ms", "value", "ms"], diags, "constant")?;
            if v < 0.0 {
                return bad(diags, format!("constant value {v} is negative"));
            }
            Some(Distribution::Constant(v))
        }
        "normal" | "gaussian" => {
            let mean = param(r, &["mean_ms", "mean"], diags, "normal");
            let sd = param(r, &["stddev_ms", "stddev", "std_ms", "std"], diags, "normal");
            let (mean, sd) = (mean?, sd?);
            if sd < 0.0 || mean < 0.0 {
                return bad(diags, format!("normal needs mean ≥ 0 and stddev ≥ 0 (got mean {mean}, stddev {sd})"));
            }
            Some(Distribution::Normal { mean, stddev: sd })
        }
        "normal_with_outliers" => {
            let mean = param(r, &["mean_ms", "mean"], diags, "normal_with_outliers");
            let sd = param(r, &["stddev_ms", "stddev"], diags, "normal_with_outliers");
            let (mean, sd) = (mean?, sd?);
            let share = match r.get("outlier_share") {
                Some(n) => read_bounded(n, &r.sub("outlier_share"), diags)?,
                None => 0.02,
            };
            let factor = match r.get("outlier_factor") {
                Some(n) => read_bounded(n, &r.sub("outlier_factor"), diags)?,
                None => 5.0,
            };
            if sd < 0.0 || mean <= 0.0 || !(0.0..=1.0).contains(&share) || !(1.0..=1000.0).contains(&factor) {
                return bad(diags, format!("normal_with_outliers needs mean_ms > 0, stddev_ms ≥ 0, 0 ≤ outlier_share ≤ 1 and 1 ≤ outlier_factor ≤ 1000 (got mean {mean}, stddev {sd}, outlier_share {share}, outlier_factor {factor})"));
            }
            Some(Distribution::NormalOutliers { mean, stddev: sd, outlier_share: share, outlier_factor: factor })
        }
        "log_normal" | "lognormal" => {
            let median = param(r, &["median_ms", "median"], diags, "log_normal")?;
            let sigma = match r.get("sigma") {
                Some(n) => read_bounded(n, &r.sub("sigma"), diags)?,
                None => 0.8,
            };
            if median <= 0.0 || !(0.0..=10.0).contains(&sigma) {
                return bad(diags, format!("log_normal needs median_ms > 0 and 0 ≤ sigma ≤ 10 (got median {median}, sigma {sigma})"));
            }
            Some(Distribution::LogNormal { median, sigma })
        }
        "uniform" => {
            let min = param(r, &["min_ms", "min", "low"], diags, "uniform");
            let max = param(r, &["max_ms", "max", "high"], diags, "uniform");
            let (min, max) = (min?, max?);
            if min < 0.0 || max < min {
                return bad(diags, format!("uniform needs 0 ≤ min ≤ max (got min {min}, max {max})"));
            }
            Some(Distribution::Uniform { min, max })
        }
        "exponential" => read_exponential(r, diags),
        "poisson" => {
            let lambda = param(r, &["lambda", "mean"], diags, "poisson")?;
            if lambda <= 0.0 || lambda > 1e6 {
                return bad(diags, format!("poisson lambda must be in (0, 1e6] (got {lambda})"));
            }
            Some(Distribution::Poisson { lambda })
        }
        "geometric" => {
            let p = param(r, &["p"], diags, "geometric")?;
            if !(p > 0.0 && p <= 1.0) {
                return bad(diags, format!("geometric p must be in (0, 1] (got {p})"));
            }
            Some(Distribution::Geometric { p })
        }
        "bernoulli" => {
            let p = param(r, &["p"], diags, "bernoulli")?;
            if !(0.0..=1.0).contains(&p) {
                return bad(diags, format!("bernoulli p must be in [0, 1] (got {p})"));
            }
            Some(Distribution::Bernoulli { p })
        }
        "mixture" => read_mixture(r, diags),
        other => bad(diags, format!("unknown distribution `{other}`; valid: {NUMERIC_NAMES}, categorical (for attributes)")),
    }
}

/// Reports `msg` against the distribution being read and yields nothing.
fn reject(r: &MapReader<'_>, diags: &mut Diags, msg: String) -> Option<Distribution> {
    diags.error(r.pos(), r.path(), msg);
    None
}

/// `exponential`: `mean_ms` (or `mean`), or its inverse `rate` (or `lambda`).
fn read_exponential(r: &mut MapReader<'_>, diags: &mut Diags) -> Option<Distribution> {
    let mean = match r.get_any(&["mean_ms", "mean"]) {
        Some((k, n)) => read_bounded(n, &r.sub(k), diags)?,
        None => match r.get_any(&["rate", "lambda"]) {
            Some((k, n)) => {
                let rate = read_bounded(n, &r.sub(k), diags)?;
                if rate <= 0.0 {
                    return reject(
                        r,
                        diags,
                        format!("exponential rate must be > 0 (got {rate})"),
                    );
                }
                1.0 / rate
            }
            None => return reject(r, diags, "exponential needs `mean_ms` (or `rate`)".into()),
        },
    };
    if mean <= 0.0 {
        return reject(
            r,
            diags,
            format!("exponential mean must be > 0 (got {mean})"),
        );
    }
    Some(Distribution::Exponential { mean })
}

/// `mixture`: `components: [{weight, distribution, ...}]`, each read as a numeric distribution.
fn read_mixture(r: &mut MapReader<'_>, diags: &mut Diags) -> Option<Distribution> {
    let Some(list) = r.get("components") else {
        return reject(
            r,
            diags,
            "mixture needs `components: [{weight, distribution, ...}]`".into(),
        );
    };
    let Kind::Seq(items) = &list.kind else {
        return reject(r, diags, "mixture `components` must be a list".into());
    };
    let mut parts = Vec::new();
    for (i, it) in items.iter().enumerate() {
        let p = format!("{}.components[{i}]", r.path());
        let w = it
            .get("weight")
            .and_then(|w| read_bounded_non_negative(w, &format!("{p}.weight"), diags))
            .unwrap_or(1.0);
        let Some(inner) = strip_key(it, "weight") else {
            diags.error(it.pos, &p, "each mixture component must be a mapping");
            continue;
        };
        if let Some(d) = read_numeric(&inner, &p, diags) {
            parts.push((w, d));
        }
    }
    if parts.is_empty() || parts.iter().map(|(w, _)| w).sum::<f64>() <= 0.0 {
        return reject(
            r,
            diags,
            "mixture needs at least one component with weight > 0".into(),
        );
    }
    Some(Distribution::Mixture(parts))
}

fn strip_key(node: &Node, key: &str) -> Option<Node> {
    let m = node.as_map()?;
    Some(Node {
        pos: node.pos,
        key_pos: node.key_pos,
        kind: Kind::Map(m.iter().filter(|(k, _)| k != key).cloned().collect()),
    })
}

/// Reads a count: an integer, `{min, max}` (uniform), or a distribution with optional caps.
pub fn read_count(node: &Node, path: &str, diags: &mut Diags) -> Option<Count> {
    if matches!(node.kind, Kind::Int(_) | Kind::Float(_)) {
        let n = read_u64(node, path, diags)?;
        if n > u64::from(MAX_COUNT) {
            diags.error(
                node.pos,
                path,
                format!("count {n} exceeds the limit of {MAX_COUNT}"),
            );
            return None;
        }
        return Some(Count::Fixed(n as u32));
    }
    let min = node
        .get("min")
        .and_then(|n| read_u64(n, &format!("{path}.min"), diags))
        .unwrap_or(0);
    let max = node
        .get("max")
        .and_then(|n| read_u64(n, &format!("{path}.max"), diags))
        .unwrap_or(u64::from(MAX_COUNT));
    if min > max || max > u64::from(MAX_COUNT) {
        diags.error(
            node.pos,
            path,
            format!("count needs 0 ≤ min ≤ max ≤ {MAX_COUNT} (got min {min}, max {max})"),
        );
        return None;
    }
    if node.get("distribution").is_none() && node.get("type").is_none() {
        // `{min, max}` alone means uniform over the integers in range.
        return Some(Count::Sampled {
            dist: Distribution::Uniform {
                min: min as f64,
                max: max as f64 + 0.999,
            },
            min: min as u32,
            max: max as u32,
        });
    }
    let dist = read_numeric(node, path, diags)?;
    Some(Count::Sampled {
        dist,
        min: min as u32,
        max: max as u32,
    })
}

/// Reads `{distribution: categorical, values: {a: 0.7, b: 0.3}}` or
/// `{distribution: categorical, values: [a, b], weights: [0.7, 0.3]}`.
pub fn read_categorical(node: &Node, path: &str, diags: &mut Diags) -> Option<Categorical> {
    let mut r = MapReader::new(node, path, diags)?;
    r.get_any(&["distribution", "type"]);
    let values = r.get_any(&["values", "choices"]);
    let weights = r.get("weights");
    r.finish(diags);
    let Some((vk, values)) = values else {
        diags.error(node.pos, path, "categorical needs `values` (a mapping value → weight, or a list with optional `weights`)");
        return None;
    };
    let vpath = format!("{path}.{vk}");
    let mut pairs = Vec::new();
    match &values.kind {
        Kind::Map(m) => {
            for (k, w) in m {
                let w = read_bounded_non_negative(w, &format!("{vpath}.{k}"), diags)?;
                pairs.push((super::attr_from_key(k), w));
            }
        }
        Kind::Seq(items) => {
            let ws: Vec<f64> = match weights {
                Some(wn) => match &wn.kind {
                    Kind::Seq(ws) if ws.len() == items.len() => ws
                        .iter()
                        .enumerate()
                        .filter_map(|(i, w)| {
                            read_bounded_non_negative(w, &format!("{path}.weights[{i}]"), diags)
                        })
                        .collect(),
                    _ => {
                        diags.error(
                            wn.pos,
                            &format!("{path}.weights"),
                            format!(
                                "`weights` must be a list of {} numbers, one per value",
                                items.len()
                            ),
                        );
                        return None;
                    }
                },
                None => vec![1.0; items.len()],
            };
            if ws.len() != items.len() {
                return None;
            }
            for (it, w) in items.iter().zip(ws) {
                match super::attr_from_node(it) {
                    Some(v) => pairs.push((v, w)),
                    None => {
                        diags.error(it.pos, &vpath, "categorical values must be scalars");
                        return None;
                    }
                }
            }
        }
        _ => {
            diags.error(
                values.pos,
                &vpath,
                "expected a mapping value → weight or a list of values",
            );
            return None;
        }
    }
    let c = Categorical::new(pairs);
    if c.is_none() {
        diags.error(
            node.pos,
            path,
            "categorical needs at least one value with weight > 0",
        );
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AttrValue;
    use crate::yaml::parse;

    fn node(src: &str) -> Node {
        let mut d = Diags::new("t");
        parse(src, &mut d).unwrap()
    }

    #[test]
    fn yaml_forms_read_to_the_expected_values() {
        let mut d = Diags::new("t");
        let latency = read_latency(
            &node("distribution: log_normal\nmedian_ms: 200\nsigma: 0.8\n"),
            "latency",
            0.3,
            &mut d,
        );
        assert_eq!(
            latency,
            Some(Distribution::LogNormal {
                median: 200.0,
                sigma: 0.8
            })
        );
        let count = read_count(
            &node("distribution: poisson\nlambda: 50\nmax: 3\n"),
            "count",
            &mut d,
        );
        assert_eq!(
            count,
            Some(Count::Sampled {
                dist: Distribution::Poisson { lambda: 50.0 },
                min: 0,
                max: 3
            })
        );
        let choice = read_categorical(
            &node("distribution: categorical\nvalues: {a: 3, b: 1}\n"),
            "x",
            &mut d,
        );
        assert_eq!(
            choice,
            Categorical::new(vec![(AttrValue::str("a"), 3.0), (AttrValue::str("b"), 1.0)])
        );
        assert!(d.items.is_empty(), "{:?}", d.items);
    }

    #[test]
    fn impossible_parameters_are_rejected_with_the_reason() {
        for (src, needle) in [
            (
                "distribution: log_normal\nmedian_ms: 200\nsigma: -1\n",
                "sigma",
            ),
            ("distribution: uniform\nmin_ms: 5\nmax_ms: 1\n", "min ≤ max"),
            ("distribution: poisson\nlambda: 0\n", "lambda"),
            (
                "distribution: normal\nmean_ms: 5\nstddev_ms: -2\n",
                "stddev",
            ),
            ("distribution: banana\n", "unknown distribution"),
        ] {
            let mut d = Diags::new("t");
            assert!(read_numeric(&node(src), "x", &mut d).is_none(), "{src}");
            assert!(
                d.items.iter().any(|i| i.message.contains(needle)),
                "{src}: {:?}",
                d.items
            );
        }
    }
}
