//! Reads the explicit `root:` span tree of a scenario: each step's type, kind,
//! latency, errors, retries, attributes, children and `service`.

use crate::diag::{Diags, Pos};
use crate::model::distribution::Count;
use crate::model::read::attr_from_node;
use crate::model::read::distribution::{
    read_categorical, read_count, read_latency, read_numeric, DEFAULT_VARIANCE,
};
use crate::model::scenario::{AttrSpec, ErrorDef, RetryDef, StepDef};
use crate::model::{over_limit, MAX_ATTRIBUTES};
use crate::record::SpanKind;
use crate::yaml::{
    describe, join, read_bool, read_non_negative, read_prob, read_str, read_str_list, read_u64,
    Kind, MapReader, Node,
};

const STEP_KEYS_HELP: &str =
    "type, kind, latency, error, attributes, children, parallel, probability, count, retry, service";

/// Reads one span step of an explicit `root:` tree (recursively).
pub fn read_step(node: &Node, path: &str, d: &mut Diags) -> Option<StepDef> {
    let mut r = MapReader::new(node, path, d)?;
    let type_name = match r.get_any(&["type", "name"]) {
        Some((k, n)) => read_str(n, &r.sub(k), d),
        None => {
            d.error(
                node.pos,
                path,
                format!(
                    "a span step needs `type` (e.g. vendor.llm.call); step keys: {STEP_KEYS_HELP}"
                ),
            );
            None
        }
    };
    let kind = match r.get("kind") {
        Some(n) => match n.as_str().and_then(SpanKind::parse) {
            Some(k) => Some(k),
            None => {
                d.error(n.pos, &r.sub("kind"), format!("expected a span kind (internal, server, client, producer, consumer), found {}", describe(n)));
                None
            }
        },
        None => None,
    };
    let latency = r
        .get("latency")
        .and_then(|n| read_latency(n, &r.sub("latency"), DEFAULT_VARIANCE, d));
    let error = r
        .get("error")
        .map(|n| read_error(n, &r.sub("error"), d))
        .unwrap_or_default();
    let probability = r
        .get("probability")
        .and_then(|n| read_prob(n, &r.sub("probability"), d))
        .unwrap_or(1.0);
    let count = r
        .get("count")
        .and_then(|n| read_count(n, &r.sub("count"), d))
        .unwrap_or(Count::Fixed(1));
    let parallel = r
        .get("parallel")
        .and_then(|n| read_bool(n, &r.sub("parallel"), d))
        .unwrap_or(false);
    let retry = r
        .get("retry")
        .and_then(|n| read_retry(n, &r.sub("retry"), d));
    let attributes = r
        .get("attributes")
        .map(|n| read_attributes(n, &r.sub("attributes"), d))
        .unwrap_or_default();
    let children = r
        .get("children")
        .map(|n| read_children(n, &r.sub("children"), d))
        .unwrap_or_default();
    let service = r
        .get("service")
        .and_then(|n| read_str(n, &r.sub("service"), d).map(|s| (s, n.pos)));
    r.finish(d);
    Some(StepDef {
        type_name: type_name?,
        pos: node.pos,
        path: path.to_string(),
        kind,
        latency,
        error,
        attributes,
        children,
        parallel,
        probability,
        count,
        retry,
        service,
        call: None,
    })
}

/// `children: [step, ...]`; each child's path is `<parent>.children[i]`.
fn read_children(n: &Node, path: &str, d: &mut Diags) -> Vec<StepDef> {
    let Kind::Seq(items) = &n.kind else {
        d.error(
            n.pos,
            path,
            format!("expected a list of span steps, found {}", describe(n)),
        );
        return Vec::new();
    };
    items
        .iter()
        .enumerate()
        .filter_map(|(i, it)| read_step(it, &format!("{path}[{i}]"), d))
        .collect()
}

/// `error`: a bare rate, or `{rate, types, message, propagate, propagation, retryable_types}`.
pub(crate) fn read_error(node: &Node, path: &str, d: &mut Diags) -> ErrorDef {
    let mut e = ErrorDef::default();
    if node.as_f64().is_some() {
        e.rate = read_prob(node, path, d).unwrap_or(0.0);
        return e;
    }
    let Some(mut r) = MapReader::new(node, path, d) else {
        return e;
    };
    e.rate = r
        .get("rate")
        .and_then(|n| read_prob(n, &r.sub("rate"), d))
        .unwrap_or(0.0);
    e.types = r
        .get_any(&["types", "type"])
        .map(|(k, n)| read_str_list(n, &r.sub(k), d))
        .unwrap_or_default();
    e.retryable_types = r
        .get("retryable_types")
        .map(|n| read_str_list(n, &r.sub("retryable_types"), d))
        .unwrap_or_default();
    e.message = r
        .get("message")
        .and_then(|n| read_str(n, &r.sub("message"), d));
    if let Some(n) = r.get("propagate") {
        e.propagate = read_bool(n, &r.sub("propagate"), d).unwrap_or(true);
    }
    if let Some(n) = r.get("propagation") {
        let p = r.sub("propagation");
        if let Some(mut pr) = MapReader::new(n, &p, d) {
            e.from_parent = pr
                .get("from_parent")
                .and_then(|n| read_prob(n, &pr.sub("from_parent"), d))
                .unwrap_or(0.0);
            e.cascade_to_siblings = pr
                .get("cascade_to_siblings")
                .and_then(|n| read_prob(n, &pr.sub("cascade_to_siblings"), d))
                .unwrap_or(0.0);
            if let Some(n) = pr.get("to_parent") {
                e.propagate = read_bool(n, &pr.sub("to_parent"), d).unwrap_or(true);
            }
            pr.finish(d);
        }
    }
    r.finish(d);
    e
}

/// `retry`; `enabled: false` reads as no retries.
fn read_retry(node: &Node, path: &str, d: &mut Diags) -> Option<RetryDef> {
    let mut r = MapReader::new(node, path, d)?;
    let enabled = r
        .get("enabled")
        .and_then(|n| read_bool(n, &r.sub("enabled"), d))
        .unwrap_or(true);
    let max_attempts = r
        .get("max_attempts")
        .and_then(|n| read_u64(n, &r.sub("max_attempts"), d))
        .unwrap_or(3);
    if !(1..=20).contains(&max_attempts) {
        d.error(
            node.pos,
            &r.sub("max_attempts"),
            format!("max_attempts {max_attempts} must be between 1 and 20"),
        );
    }
    let force_initial_failure = r
        .get("force_initial_failure")
        .and_then(|n| read_bool(n, &r.sub("force_initial_failure"), d))
        .unwrap_or(false);
    let mut rates = r
        .get("success_rate_per_attempt")
        .map(|n| read_success_rates(n, &r.sub("success_rate_per_attempt"), d))
        .unwrap_or_default();
    if rates.is_empty() {
        rates = vec![0.0, 0.7, 0.85, 0.95];
        if !force_initial_failure {
            rates[0] = 0.9;
        }
    }
    // Bounded so that base × multiplier^(attempts−1) stays a plausible wait.
    let mut num = |k: &'static str, dflt: f64, max: f64, why: &str, r: &mut MapReader<'_>| {
        let Some(n) = r.get(k) else { return dflt };
        match read_non_negative(n, &join(path, k), d) {
            Some(v) if v <= max => v,
            Some(v) => {
                d.error(
                    n.pos,
                    &join(path, k),
                    format!("{v} is too large: {why} (at most {max})"),
                );
                dflt
            }
            None => dflt,
        }
    };
    let backoff_base_ms = num(
        "backoff_base_ms",
        100.0,
        3_600_000.0,
        "the first wait is in ms, at most one hour",
        &mut r,
    );
    let backoff_multiplier = num(
        "backoff_multiplier",
        2.0,
        10.0,
        "each wait is this many times the previous one",
        &mut r,
    );
    let backoff_jitter = num(
        "backoff_jitter",
        0.2,
        1.0,
        "jitter is a fraction of the delay",
        &mut r,
    );
    let error_types = r
        .get("error_types")
        .map(|n| read_str_list(n, &r.sub("error_types"), d))
        .unwrap_or_default();
    r.finish(d);
    enabled.then_some(RetryDef {
        max_attempts: max_attempts.clamp(1, 20) as u32,
        force_initial_failure,
        success_rate_per_attempt: rates,
        backoff_base_ms,
        backoff_multiplier,
        backoff_jitter: backoff_jitter.min(1.0),
        error_types,
    })
}

/// `success_rate_per_attempt`: one probability, or a list (one per attempt).
fn read_success_rates(n: &Node, path: &str, d: &mut Diags) -> Vec<f64> {
    match &n.kind {
        Kind::Seq(items) => items
            .iter()
            .enumerate()
            .filter_map(|(i, it)| read_prob(it, &format!("{path}[{i}]"), d))
            .collect(),
        _ => read_prob(n, path, d).into_iter().collect(),
    }
}

/// `attributes`: literal scalars, or a mapping naming a distribution to draw from.
pub(crate) fn read_attributes(
    node: &Node,
    path: &str,
    d: &mut Diags,
) -> Vec<(String, AttrSpec, Pos)> {
    let Some(entries) = node.as_map() else {
        d.error(
            node.pos,
            path,
            format!(
                "expected a mapping of attribute name → value, found {}",
                describe(node)
            ),
        );
        return Vec::new();
    };
    if entries.len() > MAX_ATTRIBUTES {
        d.error(
            node.pos,
            path,
            over_limit(
                entries.len(),
                "attributes",
                MAX_ATTRIBUTES,
                "OpenTelemetry SDKs keep 128 per span by default",
            ),
        );
        return Vec::new();
    }
    let mut out = Vec::new();
    for (k, v) in entries {
        let p = join(path, k);
        let spec = match &v.kind {
            Kind::Map(_) => {
                let name = v
                    .get("distribution")
                    .or(v.get("type"))
                    .and_then(|n| n.as_str())
                    .unwrap_or("");
                match name {
                    "categorical" | "choice" | "weighted" => {
                        read_categorical(v, &p, d).map(AttrSpec::Categorical)
                    }
                    "" => {
                        d.error(v.pos, &p, "an attribute value that is a mapping must name a `distribution` (categorical, uniform, normal, poisson, ...)");
                        None
                    }
                    _ => read_numeric(v, &p, d).map(|dist| {
                        let integer = dist.is_discrete()
                            || v.get("integer").is_some_and(|n| n.kind == Kind::Bool(true));
                        AttrSpec::Numeric { dist, integer }
                    }),
                }
            }
            Kind::Seq(_) => {
                d.error(v.pos, &p, "list values are not supported; use `{distribution: categorical, values: [...]}` to choose one");
                None
            }
            Kind::Null => {
                d.error(v.pos, &p, "attribute has no value");
                None
            }
            _ => attr_from_node(v).map(AttrSpec::Literal),
        };
        if let Some(s) = spec {
            out.push((k.clone(), s, v.pos));
        }
    }
    out
}

/// Reads the whole of a scenario's `root` for tests that need a step alone.
pub fn parse_step_for_test(src: &str) -> (Option<StepDef>, Diags) {
    let mut d = Diags::new("test.yaml");
    let node = crate::yaml::parse(src, &mut d);
    let step = node.and_then(|n| read_step(&n, "root", &mut d));
    (step, d)
}
