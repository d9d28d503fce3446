//! Reads the `control_plane` section of config.yaml: latencies, trace flow,
//! request scenarios, and the request/response validation templates.

use crate::diag::Diags;
use crate::model::config::{
    ControlPlane, CpStep, CpTemplate, ExceptionSpec, RequestScenario, ValidationError,
    TRACE_FLOW_PARTS,
};
use crate::model::read::attr_from_node;
use crate::model::{over_limit, MAX_ATTRIBUTES, MAX_EVENTS};
use crate::yaml::{
    describe, join, read_bool, read_non_negative, read_prob, read_str, read_str_list, Kind,
    MapReader, Node,
};
use std::collections::BTreeMap;

/// Deep-merges `over` onto `base` (mappings merge key by key; anything else is replaced).
pub fn deep_merge(base: &Node, over: &Node) -> Node {
    match (&base.kind, &over.kind) {
        (Kind::Map(b), Kind::Map(o)) => {
            let mut out: Vec<(String, Node)> = b.clone();
            for (k, v) in o {
                match out.iter_mut().find(|(bk, _)| bk == k) {
                    Some((_, bv)) => *bv = deep_merge(bv, v),
                    None => out.push((k.clone(), v.clone())),
                }
            }
            Node {
                pos: over.pos,
                key_pos: over.key_pos,
                kind: Kind::Map(out),
            }
        }
        _ => over.clone(),
    }
}

/// The `control_plane` section; request scenarios must name a declared request template.
pub(crate) fn read_control_plane(node: &Node, d: &mut Diags) -> ControlPlane {
    let mut cp = ControlPlane::default();
    let Some(mut r) = MapReader::new(node, "control_plane", d) else {
        return cp;
    };
    if let Some(n) = r.get("latencies_ms") {
        let p = r.sub("latencies_ms");
        if let Some(mut lr) = MapReader::new(n, &p, d) {
            let entries: Vec<(String, Node)> = lr.rest().cloned().collect();
            for (k, v) in entries {
                if let Some(ms) = read_non_negative(&v, &join(&p, &k), d) {
                    cp.latencies_ms.insert(k, ms);
                }
            }
        }
    }
    cp.default_data_plane_workflow = r
        .get("default_data_plane_workflow")
        .and_then(|n| read_str(n, "control_plane.default_data_plane_workflow", d));
    cp.trace_flow = read_trace_flow(r.get("trace_flow"), &r.sub("trace_flow"), d);
    if let Some(n) = r.get("trace_flow_mode") {
        match n.as_str() {
            Some("single") => cp.single_trace = true,
            // `linked` is what `--trace-flow` calls it.
            Some("separate" | "linked") => cp.single_trace = false,
            _ => d.error(n.pos, "control_plane.trace_flow_mode", format!("expected `separate` or `linked` (one trace per part, linked) or `single` (one trace per request), found {}", describe(n))),
        }
    }
    if let Some(n) = r.get("request_scenarios") {
        cp.request_scenarios = read_request_scenarios(n, &r.sub("request_scenarios"), d);
    }
    cp.request_templates = read_cp_templates(
        r.get("request_validation_templates"),
        "control_plane.request_validation_templates",
        d,
    );
    cp.response_templates = read_cp_templates(
        r.get("response_validation_templates"),
        "control_plane.response_validation_templates",
        d,
    );
    r.finish(d);
    for rs in &cp.request_scenarios {
        if !cp.request_templates.contains_key(&rs.template) {
            d.error(
                rs.pos,
                &format!("control_plane.request_scenarios.{}.template", rs.name),
                format!(
                    "unknown request_validation_templates id `{}`; defined: {}",
                    rs.template,
                    cp.request_templates
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
    }
    cp
}

/// `trace_flow: {allowed|blocked|error: [parts]}` over the built-in flow.
fn read_trace_flow(node: Option<&Node>, p: &str, d: &mut Diags) -> BTreeMap<String, Vec<String>> {
    let mut flow: BTreeMap<String, Vec<String>> = [
        (
            "allowed",
            vec!["incoming_validation", "data_plane", "response_validation"],
        ),
        ("blocked", vec!["incoming_validation"]),
        ("error", vec!["incoming_validation"]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.into_iter().map(String::from).collect()))
    .collect();
    let Some(mut tr) = node.and_then(|n| MapReader::new(n, p, d)) else {
        return flow;
    };
    for outcome in ["allowed", "blocked", "error"] {
        if let Some(v) = tr.get(outcome) {
            let parts = read_str_list(v, &join(p, outcome), d);
            for part in &parts {
                if !TRACE_FLOW_PARTS.contains(&part.as_str()) {
                    d.error(
                        v.pos,
                        &join(p, outcome),
                        format!(
                            "unknown part `{part}`; valid: {}",
                            TRACE_FLOW_PARTS.join(", ")
                        ),
                    );
                }
            }
            flow.insert(outcome.to_string(), parts);
        }
    }
    tr.finish(d);
    flow
}

/// `request_scenarios: {<name>: {template, description, workload_weight}}`.
fn read_request_scenarios(n: &Node, p: &str, d: &mut Diags) -> Vec<RequestScenario> {
    let mut out = Vec::new();
    let Some(mut sr) = MapReader::new(n, p, d) else {
        return out;
    };
    let entries: Vec<(String, Node)> = sr.rest().cloned().collect();
    for (name, body) in entries {
        let np = join(p, &name);
        let Some(mut er) = MapReader::new(&body, &np, d) else {
            continue;
        };
        let template = er
            .get("template")
            .and_then(|n| read_str(n, &er.sub("template"), d));
        let description = er
            .get("description")
            .and_then(|n| read_str(n, &er.sub("description"), d))
            .unwrap_or_default();
        let workload_weight = er
            .get("workload_weight")
            .and_then(|n| read_non_negative(n, &er.sub("workload_weight"), d))
            .unwrap_or(1.0);
        er.finish(d);
        match template {
            Some(template) => out.push(RequestScenario {
                name,
                template,
                description,
                workload_weight,
                pos: body.pos,
            }),
            None => d.error(body.pos, &np, "request scenario needs a `template`"),
        }
    }
    out
}

/// `*_validation_templates: {<id>: template}`; `_defaults` is merged under each one.
fn read_cp_templates(
    node: Option<&Node>,
    path: &str,
    d: &mut Diags,
) -> BTreeMap<String, CpTemplate> {
    let mut out = BTreeMap::new();
    let Some(node) = node else {
        return out;
    };
    let Some(entries) = node.as_map() else {
        d.error(
            node.pos,
            path,
            "expected a mapping of template id → template",
        );
        return out;
    };
    let defaults = node.get("_defaults");
    // `_defaults` is copied into every template: bounded like alias copies.
    let mut copied = 0usize;
    for (id, body) in entries {
        if id == "_defaults" {
            continue;
        }
        let merged = match defaults {
            Some(def) => deep_merge(def, body),
            None => body.clone(),
        };
        copied = copied.saturating_add(crate::yaml::cost(&merged));
        if copied > crate::yaml::MAX_DOCUMENT_BYTES {
            d.error(
                body.key_pos,
                &join(path, id),
                format!(
                    "the templates with `_defaults` merged in take more than {}; use fewer templates or smaller defaults",
                    crate::input_file::human_size(crate::yaml::MAX_DOCUMENT_BYTES as u64)
                ),
            );
            break;
        }
        if let Some(t) = read_cp_template(&merged, &join(path, id), d) {
            out.insert(id.to_ascii_lowercase(), t);
        }
    }
    out
}

/// One template: its steps, per-step `error_rate`, and `include_*` switches.
fn read_cp_template(node: &Node, path: &str, d: &mut Diags) -> Option<CpTemplate> {
    let mut r = MapReader::new(node, path, d)?;
    let mut rates: BTreeMap<String, f64> = BTreeMap::new();
    if let Some(n) = r.get("error_rate") {
        let p = r.sub("error_rate");
        if let Some(mut er) = MapReader::new(n, &p, d) {
            for k in ["root", "payload", "policy", "augmentation"] {
                if let Some(v) = er.get(k) {
                    if let Some(x) = read_prob(v, &join(&p, k), d) {
                        rates.insert(k.into(), x);
                    }
                }
            }
            er.finish(d);
        }
    }
    let include_policy = r
        .get("include_policy")
        .and_then(|n| read_bool(n, &r.sub("include_policy"), d))
        .unwrap_or(true);
    let include_aug = r
        .get("include_augmentation")
        .and_then(|n| read_bool(n, &r.sub("include_augmentation"), d))
        .unwrap_or(true);
    let step = |name: &'static str, r: &mut MapReader<'_>, d: &mut Diags| {
        let n = r.get(name)?;
        let mut s = read_cp_step(n, &r.sub(name), d)?;
        s.error_rate = rates.get(name).copied().unwrap_or(0.0);
        Some(s)
    };
    let root = step("root", &mut r, d).unwrap_or_default();
    let payload = step("payload", &mut r, d);
    let policy = step("policy", &mut r, d).filter(|_| include_policy);
    let augmentation = step("augmentation", &mut r, d).filter(|_| include_aug);
    r.finish(d);
    let mut root = root;
    root.error_rate = rates.get("root").copied().unwrap_or(0.0);
    Some(CpTemplate {
        root,
        payload,
        policy,
        augmentation,
    })
}

/// One step: `validation_errors`, `exception`, and every other key as an attribute.
fn read_cp_step(node: &Node, path: &str, d: &mut Diags) -> Option<CpStep> {
    let mut r = MapReader::new(node, path, d)?;
    let mut step = CpStep::default();
    if let Some(n) = r.get("validation_errors") {
        let p = r.sub("validation_errors");
        if let Kind::Seq(items) = &n.kind {
            if items.len() > MAX_EVENTS {
                d.error(
                    n.pos,
                    &p,
                    over_limit(
                        items.len(),
                        "validation errors (one event each)",
                        MAX_EVENTS,
                        "OpenTelemetry SDKs keep 128 events per span by default",
                    ),
                );
            }
            for (i, it) in items.iter().take(MAX_EVENTS).enumerate() {
                let ip = format!("{p}[{i}]");
                let Some(mut vr) = MapReader::new(it, &ip, d) else {
                    continue;
                };
                let mut get = |k: &'static str, vr: &mut MapReader<'_>| {
                    vr.get(k)
                        .and_then(|n| read_str(n, &join(&ip, k), d))
                        .unwrap_or_default()
                };
                let path_v = get("path", &mut vr);
                let rule = get("rule", &mut vr);
                let code = get("code", &mut vr);
                vr.finish(d);
                step.validation_errors.push(ValidationError {
                    path: path_v,
                    rule,
                    code,
                });
            }
        } else {
            d.error(n.pos, &p, "expected a list of `{path, rule, code}`");
        }
    }
    if let Some(n) = r.get("exception") {
        step.exception = read_exception(n, &r.sub("exception"), d);
    }
    let rest: Vec<(String, Node)> = r.rest().cloned().collect();
    if rest.len() > MAX_ATTRIBUTES {
        d.error(
            node.pos,
            path,
            over_limit(
                rest.len(),
                "attributes",
                MAX_ATTRIBUTES,
                "OpenTelemetry SDKs keep 128 per span by default",
            ),
        );
        return Some(step);
    }
    for (k, v) in rest {
        match attr_from_node(&v) {
            Some(val) => step.attrs.push((k, val)),
            None => d.error(
                v.pos,
                &join(path, &k),
                "attribute values must be scalars (string, number, boolean)",
            ),
        }
    }
    Some(step)
}

/// `{type, message}` of an exception event.
pub fn read_exception(node: &Node, path: &str, d: &mut Diags) -> Option<ExceptionSpec> {
    let mut r = MapReader::new(node, path, d)?;
    let type_name = r.get("type").and_then(|n| read_str(n, &r.sub("type"), d));
    let message = r
        .get("message")
        .and_then(|n| read_str(n, &r.sub("message"), d))
        .unwrap_or_default();
    r.finish(d);
    match type_name {
        Some(type_name) => Some(ExceptionSpec { type_name, message }),
        None => {
            d.error(
                node.pos,
                path,
                "exception needs a `type` (and usually a `message`)",
            );
            None
        }
    }
}
