//! Reads a scenario file in the predecessor's v2 format (top-level `tenant`,
//! `agent` and `endusers`) into a `ScenarioDef` carrying a [`V2Scenario`]. Every
//! reference is checked against config.yaml, and tool payloads against its
//! `mcp_tool_genai_payloads` contracts when it has them.

use super::{check_mcp_server, unknown};
use crate::diag::{Diags, Pos};
use crate::model::config::Config;
use crate::model::read::{attr_from_node, did_you_mean};
use crate::model::scenario::{ContextDef, Format, ScenarioDef, MAX_INTERVAL_MS, REDACTION_LEVELS};
use crate::model::v2::{
    V2Duration, V2Enduser, V2Event, V2Scenario, V2SpanPlan, V2ToolStep, V2Turn, V2Window,
};
use crate::model::{over_limit, AttrValue, MAX_EVENTS, MAX_TURNS};
use crate::yaml::{
    join, read_bool, read_map_list, read_non_negative, read_str, read_str_list, read_u64, Kind,
    MapReader, Node,
};

/// The span classes a v2 file names (latency keys, plan children, event targets).
pub const V2_CLASSES: &[&str] = &[
    "request.validation",
    "payload.validation",
    "policy.validation",
    "augmentation.validation",
    "a2a.orchestrate",
    "planner",
    "task.execute",
    "llm.call",
    "tools.recommend",
    "mcp.tool.execute",
    "mcp.tool.execute.attempt",
    "response.compose",
    "response.validation",
];

/// The LLM keys a turn copies onto its `llm.call` span, as written (`gentoro.` and
/// `vendor.` spellings of the flags both read).
const LLM_KEYS: &[&str] = &[
    "gen_ai.request.type",
    "gen_ai.response.finish_reason",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "gentoro.llm.streaming",
    "vendor.llm.streaming",
    "gentoro.llm.content.capture.enabled",
    "vendor.llm.content.capture.enabled",
    "gentoro.llm.content.redaction.enabled",
    "vendor.llm.content.redaction.enabled",
    "gentoro.llm.turn.count",
    "vendor.llm.turn.count",
];

/// Whether a scenario file is written in the v2 format.
pub fn is_v2(root: &Node) -> bool {
    root.get("endusers").is_some()
        || (root.get("tenant").is_some() && root.get("context").is_none())
}

/// Loads a v2 scenario file. `name` is the file stem.
pub fn load(root: &Node, name: &str, cfg: &Config, d: &mut Diags) -> Option<ScenarioDef> {
    let mut r = MapReader::new(root, "", d)?;
    let text = |r: &mut MapReader<'_>, k: &'static str, d: &mut Diags| {
        r.get(k).and_then(|n| read_str(n, k, d))
    };
    let display_name = text(&mut r, "name", d).unwrap_or_else(|| name.to_string());
    let description = text(&mut r, "description", d).unwrap_or_default();
    let tags = r
        .get("tags")
        .map(|n| read_str_list(n, "tags", d))
        .unwrap_or_default();
    let mut context = ContextDef::default();
    if let Some(n) = r.get("tenant") {
        if let Some(t) = read_str(n, "tenant", d) {
            if cfg.tenant(&t).is_none() {
                let keys = cfg.tenants.iter().map(|t| t.key.as_str());
                d.error(n.pos, "tenant", unknown("tenants", &t, keys));
            }
            context.tenant = Some(t);
        }
    }
    // Any agent id is accepted, as the format does: agents are not declared per tenant.
    context.agent = text(&mut r, "agent", d);
    let mcp_server = r.get("mcp_server").and_then(|n| {
        let k = read_str(n, "mcp_server", d)?;
        check_mcp_server(n, "mcp_server", &k, cfg, d);
        Some(k)
    });
    let redaction = match r.get_any(&["vendor.redaction.applied", "redaction_applied"]) {
        Some((k, n)) => {
            let v = read_str(n, k, d).unwrap_or_else(|| "none".into());
            if !REDACTION_LEVELS.contains(&v.as_str()) {
                d.error(
                    n.pos,
                    k,
                    format!(
                        "unknown level `{v}`; valid: {}",
                        REDACTION_LEVELS.join(", ")
                    ),
                );
            }
            v
        }
        None => "none".into(),
    };
    let workload_weight = r
        .get("workload_weight")
        .and_then(|n| read_non_negative(n, "workload_weight", d))
        .unwrap_or(1.0);
    let interval = |r: &mut MapReader<'_>, k: &'static str, default: f64, d: &mut Diags| match r
        .get(k)
        .and_then(|n| read_non_negative(n, k, d).map(|v| (n, v)))
    {
        Some((n, v)) if v > MAX_INTERVAL_MS => {
            d.error(n.pos, k, format!("{v} ms is longer than one day"));
            default
        }
        Some((_, v)) => v,
        None => default,
    };
    let interval_ms = interval(&mut r, "trace_interval_ms", 200.0, d);
    let interval_deviation_ms = interval(&mut r, "trace_interval_deviation_ms", 0.0, d);
    let repeat_count = r
        .get("repeat_count")
        .and_then(|n| read_u64(n, "repeat_count", d))
        .unwrap_or(1)
        .min(u64::from(u32::MAX)) as u32;
    let flag = |r: &mut MapReader<'_>, k: &'static str, d: &mut Diags| {
        r.get(k).and_then(|n| read_bool(n, k, d)).unwrap_or(true)
    };
    let emit_metrics = flag(&mut r, "emit_metrics", d);
    let emit_logs = flag(&mut r, "emit_logs", d);
    let opt_in = r
        .get("opt_in")
        .and_then(|n| read_bool(n, "opt_in", d))
        .unwrap_or(false);
    let mut v2 = V2Scenario {
        default_profile: text(&mut r, "default_latency_profile", d)
            .unwrap_or_else(|| "normal".into()),
        ..Default::default()
    };
    if let Some(n) = r.get("latency_profiles") {
        v2.latency_profiles = read_profiles(n, d);
    }
    if let Some(n) = r.get("latency_profile_conditions") {
        v2.profile_conditions = read_conditions(n, d);
    }
    if let Some(n) = r.get("workload_schedule") {
        v2.schedule = read_schedule(n, d);
    }
    for w in &v2.schedule {
        if !v2.latency_profiles.iter().any(|(p, _)| *p == w.profile) {
            d.warn(
                w.pos,
                &join("workload_schedule", &w.profile),
                format!(
                    "no latency profile `{}` in this file: the window changes nothing",
                    w.profile
                ),
            );
        }
    }
    if let Some(n) = r.get("endusers") {
        v2.endusers = read_endusers(n, mcp_server.as_deref(), cfg, d);
    }
    // Top-level `x_*` keys hold YAML anchors (shared span plans) and mean nothing themselves.
    r.ignore_where(|k| k.starts_with("x_"));
    r.finish(d);
    if v2.endusers.iter().all(|e| e.turns.is_empty()) {
        d.error(
            root.pos,
            "endusers",
            "the scenario describes no telemetry: add `endusers` with at least one turn",
        );
    }
    if context.tenant.is_none() {
        context.tenant = cfg.tenants.first().map(|t| t.key.clone());
    }
    context.mcp_server = mcp_server.clone();
    Some(ScenarioDef {
        name: name.to_string(),
        display_name,
        description,
        source: d.file.to_string(),
        tags,
        workload_weight,
        opt_in,
        repeat_count,
        interval_ms,
        interval_deviation_ms,
        emit_metrics,
        emit_logs,
        redaction,
        mcp_server,
        goal: None,
        overrides: Default::default(),
        data_plane: None,
        control_plane: None,
        context,
        turns: Vec::new(),
        samples: Vec::new(),
        cycle_samples: false,
        format: Format::V2,
        root: None,
        v2: Some(Box::new(v2)),
        instability: None,
        episode: None,
        track_costs: false,
    })
}

fn check_class(n: &Node, path: &str, class: &str, d: &mut Diags) {
    if !V2_CLASSES.contains(&class) {
        d.warn(
            n.pos,
            path,
            format!(
                "`{class}` is no span class of the format{}; valid: {}",
                did_you_mean(class, V2_CLASSES.iter().copied()),
                V2_CLASSES.join(", ")
            ),
        );
    }
}

/// `latency_profiles: {<name>: {span_durations_ms: {<class>: {mean, deviation} | ms}}}`.
fn read_profiles(n: &Node, d: &mut Diags) -> Vec<(String, Vec<(String, V2Duration)>)> {
    let mut out = Vec::new();
    let Some(mut r) = MapReader::new(n, "latency_profiles", d) else {
        return out;
    };
    let entries: Vec<(String, Node)> = r.rest().cloned().collect();
    for (name, body) in entries {
        let path = join("latency_profiles", &name);
        let Some(mut pr) = MapReader::new(&body, &path, d) else {
            continue;
        };
        let mut spans = Vec::new();
        if let Some((k, sn)) = pr.get_any(&["span_durations_ms", "span_durations"]) {
            let sp = pr.sub(k);
            if let Some(mut sr) = MapReader::new(sn, &sp, d) {
                let classes: Vec<(String, Node)> = sr.rest().cloned().collect();
                for (class, v) in classes {
                    let cp = join(&sp, &class);
                    check_class(&v, &cp, &class, d);
                    let dur = match &v.kind {
                        Kind::Map(_) => {
                            let Some(mut dr) = MapReader::new(&v, &cp, d) else {
                                continue;
                            };
                            let mean = dr
                                .get("mean")
                                .and_then(|m| read_non_negative(m, &dr.sub("mean"), d))
                                .unwrap_or(50.0);
                            let deviation = dr
                                .get("deviation")
                                .and_then(|m| read_non_negative(m, &dr.sub("deviation"), d))
                                .unwrap_or(0.0);
                            dr.finish(d);
                            V2Duration { mean, deviation }
                        }
                        _ => match read_non_negative(&v, &cp, d) {
                            Some(mean) => V2Duration {
                                mean,
                                deviation: 0.0,
                            },
                            None => continue,
                        },
                    };
                    spans.push((class, dur));
                }
            }
        }
        pr.finish(d);
        out.push((name, spans));
    }
    out
}

/// `latency_profile_conditions: [{profile, higher_latency_attributes}]`.
fn read_conditions(n: &Node, d: &mut Diags) -> Vec<(String, Vec<(String, AttrValue)>)> {
    let shape = "{profile, higher_latency_attributes}";
    read_map_list(n, "latency_profile_conditions", shape, d, |mut r, _, d| {
        let profile = r
            .get("profile")
            .and_then(|v| read_str(v, &r.sub("profile"), d));
        let attrs = r
            .get("higher_latency_attributes")
            .map(|v| scalar_map(v, &r.sub("higher_latency_attributes"), d))
            .unwrap_or_default();
        r.finish(d);
        profile.map(|p| (p, attrs))
    })
}

/// `workload_schedule: {<profile>: {timezone, weekdays, start_hour, end_hour}}`.
fn read_schedule(n: &Node, d: &mut Diags) -> Vec<V2Window> {
    let mut out = Vec::new();
    let Some(mut r) = MapReader::new(n, "workload_schedule", d) else {
        return out;
    };
    let entries: Vec<(String, Node)> = r.rest().cloned().collect();
    for (profile, body) in entries {
        let path = join("workload_schedule", &profile);
        let Some(mut wr) = MapReader::new(&body, &path, d) else {
            continue;
        };
        let timezone = wr
            .get("timezone")
            .and_then(|v| read_str(v, &wr.sub("timezone"), d))
            .unwrap_or_else(|| "UTC".into());
        let weekdays: Vec<u8> = match wr.get("weekdays") {
            Some(v) => match &v.kind {
                Kind::Seq(items) => items
                    .iter()
                    .filter_map(|it| match read_u64(it, &wr.sub("weekdays"), d) {
                        Some(w @ 1..=7) => Some(w as u8),
                        Some(w) => {
                            d.error(
                                it.pos,
                                &wr.sub("weekdays"),
                                format!("{w} is no ISO weekday; valid: 1 (Monday) to 7 (Sunday)"),
                            );
                            None
                        }
                        None => None,
                    })
                    .collect(),
                _ => {
                    d.error(
                        v.pos,
                        &wr.sub("weekdays"),
                        "expected a list of ISO weekdays (1 Monday … 7 Sunday)",
                    );
                    Vec::new()
                }
            },
            None => Vec::new(),
        };
        let mut hour = |k: &'static str, max: u64, d: &mut Diags| -> u8 {
            match wr.get(k).map(|v| (v, read_u64(v, &join(&path, k), d))) {
                Some((v, Some(h))) if h > max => {
                    d.error(
                        v.pos,
                        &join(&path, k),
                        format!("{h} is not an hour of the day (0–{max})"),
                    );
                    0
                }
                Some((_, Some(h))) => h as u8,
                _ => 0,
            }
        };
        let start_hour = hour("start_hour", 23, d);
        let end_hour = hour("end_hour", 24, d);
        wr.finish(d);
        if let Err(e) = crate::tz::Zone::parse(&timezone) {
            d.error(body.pos, &join(&path, "timezone"), e);
        }
        out.push(V2Window {
            profile,
            timezone,
            weekdays,
            start_hour,
            end_hour,
            pos: body.pos,
        });
    }
    out
}

/// A map of scalar attributes (other values are reported).
fn scalar_map(n: &Node, path: &str, d: &mut Diags) -> Vec<(String, AttrValue)> {
    let Some(entries) = n.as_map() else {
        d.error(n.pos, path, "expected a map of attribute name to value");
        return Vec::new();
    };
    let mut out = Vec::new();
    for (k, v) in entries {
        match attr_from_node(v) {
            Some(a) => out.push((k.clone(), a)),
            // Lists and maps are kept as their JSON text, as the format stringifies them.
            None => out.push((k.clone(), AttrValue::str(&json_text(v)))),
        }
    }
    out
}

/// A YAML value as compact JSON text.
fn json_text(n: &Node) -> String {
    fn to_json(n: &Node) -> serde_json::Value {
        match &n.kind {
            Kind::Null => serde_json::Value::Null,
            Kind::Bool(b) => (*b).into(),
            Kind::Int(i) => (*i).into(),
            Kind::Float(f) => {
                serde_json::Number::from_f64(*f).map_or(serde_json::Value::Null, Into::into)
            }
            Kind::Str(s) => s.as_str().into(),
            Kind::Seq(items) => items.iter().map(to_json).collect(),
            Kind::Map(entries) => entries
                .iter()
                .map(|(k, v)| (k.clone(), to_json(v)))
                .collect::<serde_json::Map<_, _>>()
                .into(),
        }
    }
    to_json(n).to_string()
}

fn read_endusers(
    n: &Node,
    scenario_server: Option<&str>,
    cfg: &Config,
    d: &mut Diags,
) -> Vec<V2Enduser> {
    let Kind::Seq(items) = &n.kind else {
        d.error(
            n.pos,
            "endusers",
            "expected a list of end users, each with `id` and `turns`",
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut total_turns = 0;
    for (i, it) in items.iter().enumerate() {
        let p = format!("endusers[{i}]");
        let Some(mut r) = MapReader::new(it, &p, d) else {
            continue;
        };
        let id = r
            .get("id")
            .and_then(|v| read_str(v, &r.sub("id"), d))
            .unwrap_or_else(|| format!("enduser_{}", i + 1));
        let pseudo_id = r
            .get_any(&["vendor.enduser.pseudo.id", "enduser_pseudo_id"])
            .and_then(|(k, v)| read_str(v, &r.sub(k), d))
            .filter(|s| !s.is_empty());
        let server = match r.get("mcp_server") {
            Some(v) => read_str(v, &r.sub("mcp_server"), d).inspect(|k| {
                check_mcp_server(v, &r.sub("mcp_server"), k, cfg, d);
            }),
            None => scenario_server.map(String::from),
        };
        // Channel and fixed single-turn ids document the end user; every turn gets fresh ids.
        for k in [
            "channel",
            "vendor.session.id",
            "gen_ai.conversation.id",
            "session_id",
            "conversation_id",
        ] {
            r.ignore(k);
        }
        let turns = match r.get("turns") {
            Some(t) => read_turns(t, &r.sub("turns"), server.as_deref(), cfg, d),
            None => Vec::new(),
        };
        r.finish(d);
        total_turns += turns.len();
        out.push(V2Enduser {
            id,
            pseudo_id,
            turns,
        });
    }
    if total_turns > MAX_TURNS {
        d.error(
            n.pos,
            "endusers",
            over_limit(
                total_turns,
                "turns",
                MAX_TURNS,
                "one iteration runs them all",
            ),
        );
        return Vec::new();
    }
    out
}

fn read_turns(
    n: &Node,
    path: &str,
    server: Option<&str>,
    cfg: &Config,
    d: &mut Diags,
) -> Vec<V2Turn> {
    let Kind::Seq(items) = &n.kind else {
        d.error(n.pos, path, "expected a list of turns");
        return Vec::new();
    };
    items
        .iter()
        .enumerate()
        .filter_map(|(i, it)| read_turn(it, &format!("{path}[{i}]"), i, server, cfg, d))
        .collect()
}

fn read_turn(
    n: &Node,
    path: &str,
    index: usize,
    server: Option<&str>,
    cfg: &Config,
    d: &mut Diags,
) -> Option<V2Turn> {
    let mut r = MapReader::new(n, path, d)?;
    let mut t = V2Turn {
        turn_index: r
            .get("turn_index")
            .and_then(|v| read_u64(v, &r.sub("turn_index"), d))
            .map_or(index as u32 + 1, |v| v.min(u64::from(u32::MAX)) as u32),
        ..Default::default()
    };
    if let Some(v) = r.get("span_plan") {
        t.span_plan = Some(read_span_plan(v, &r.sub("span_plan"), d));
    }
    t.request_raw = r
        .get_any(&["vendor.enduser.request.raw", "request_raw"])
        .and_then(|(k, v)| read_str(v, &r.sub(k), d));
    r.ignore("vendor.enduser.request.raw.redacted");
    t.agent_response = r
        .get("agent_response")
        .and_then(|v| read_str(v, &r.sub("agent_response"), d));
    if let Some(v) = r.get("span_events") {
        t.events = read_events(v, &r.sub("span_events"), d);
    }
    if let Some(v) = r.get("tool_chain") {
        t.has_tool_chain = true;
        let servers = r
            .get("tool_chain_mcp_servers")
            .map(|s| read_str_list(s, &r.sub("tool_chain_mcp_servers"), d));
        t.tool_chain = read_tool_chain(v, &r.sub("tool_chain"), servers, server, cfg, d);
    }
    for (k, slot) in [
        ("gen_ai.tool.call.arguments", &mut t.arguments),
        ("gen_ai.tool.call.result", &mut t.results),
    ] {
        if let Some(v) = r.get(k) {
            match &v.kind {
                Kind::Map(m) => *slot = m.clone(),
                _ => d.error(
                    v.pos,
                    &r.sub(k),
                    "expected a map from tool name to its payload",
                ),
            }
        }
    }
    for k in LLM_KEYS {
        if let Some(v) = r.get(k) {
            match attr_from_node(v) {
                Some(a) => t.llm_attrs.push((k.to_string(), a)),
                None => d.error(
                    v.pos,
                    &r.sub(k),
                    format!("expected a scalar, found {}", v.type_name()),
                ),
            }
        }
    }
    // Content capture is on when its flag is true (as a boolean, or written "true", "1", "yes").
    t.capture = t.llm_attrs.iter().any(|(k, v)| {
        k.ends_with("llm.content.capture.enabled")
            && match v {
                AttrValue::Bool(b) => *b,
                AttrValue::Str(s) => matches!(&**s, "true" | "1" | "yes"),
                _ => false,
            }
    });
    for (k, slot) in [
        ("gen_ai.input.messages", &mut t.messages.0),
        ("gen_ai.output.messages", &mut t.messages.1),
    ] {
        if let Some(v) = r.get(k) {
            *slot = Some(match &v.kind {
                Kind::Str(s) => s.clone(),
                _ => json_text(v),
            });
        }
    }
    // Planner and compose prompts document the turn; the format emits nothing from them.
    r.ignore("planner");
    r.ignore("response_compose");
    if let Some(v) = r.get("mcp_tool_retries") {
        d.warn(
            v.pos,
            &r.sub("mcp_tool_retries"),
            "per-tool retries of the format's 1.1 files are not supported: every tool call has one successful attempt",
        );
    }
    r.finish(d);
    check_payloads(&t, n.pos, path, cfg, d);
    Some(t)
}

fn read_span_plan(n: &Node, path: &str, d: &mut Diags) -> V2SpanPlan {
    let mut plan = V2SpanPlan::default();
    let Some(mut r) = MapReader::new(n, path, d) else {
        return plan;
    };
    for (k, slot) in [
        ("cp_request", &mut plan.cp_request),
        ("data_plane", &mut plan.data_plane),
        ("cp_response", &mut plan.cp_response),
    ] {
        let Some(seg) = r.get(k) else { continue };
        let sp = join(path, k);
        let Some(mut sr) = MapReader::new(seg, &sp, d) else {
            continue;
        };
        // The root of each segment is fixed by the format; it is read for its check only.
        if let Some(root) = sr.get("root") {
            if let Some(c) = read_str(root, &sr.sub("root"), d) {
                check_class(root, &sr.sub("root"), &c, d);
            }
        }
        let children = match sr.get("children") {
            Some(c) => {
                let list = read_str_list(c, &sr.sub("children"), d);
                for class in &list {
                    check_class(c, &sr.sub("children"), class, d);
                }
                list
            }
            None => Vec::new(),
        };
        sr.finish(d);
        *slot = Some(children);
    }
    r.finish(d);
    plan
}

fn read_events(n: &Node, path: &str, d: &mut Diags) -> Vec<V2Event> {
    if let Kind::Seq(items) = &n.kind {
        if items.len() > MAX_EVENTS {
            let why = "OpenTelemetry SDKs keep 128 per span by default";
            d.error(
                n.pos,
                path,
                over_limit(items.len(), "events", MAX_EVENTS, why),
            );
            return Vec::new();
        }
    }
    let shape = "{target_span_class, name, attributes}";
    read_map_list(n, path, shape, d, |mut r, p, d| {
        let target = r.get("target_span_class").and_then(|v| {
            let c = read_str(v, &r.sub("target_span_class"), d)?;
            check_class(v, &r.sub("target_span_class"), &c, d);
            Some(c)
        });
        let name = r.get("name").and_then(|v| read_str(v, &r.sub("name"), d));
        let attrs = r
            .get("attributes")
            .map(|v| scalar_map(v, &r.sub("attributes"), d))
            .unwrap_or_default();
        // Events are stamped at their span's start; an explicit time is not kept.
        r.ignore("timestamp_ns");
        let pos = r.pos();
        r.finish(d);
        match (target, name) {
            (Some(target), Some(name)) => Some(V2Event {
                target,
                name,
                attrs,
            }),
            _ => {
                d.error(pos, p, "an event needs `target_span_class` and `name`");
                None
            }
        }
    })
}

/// `tool_chain`: `[{mcp_server, tool}]` (also `mcp`, `name`), or a list of tool names with
/// an optional parallel `tool_chain_mcp_servers`; mixing the two forms is an error.
fn read_tool_chain(
    n: &Node,
    path: &str,
    servers: Option<Vec<String>>,
    default_server: Option<&str>,
    cfg: &Config,
    d: &mut Diags,
) -> Vec<V2ToolStep> {
    let Kind::Seq(items) = &n.kind else {
        d.error(n.pos, path, "expected a list of `{mcp_server, tool}` steps");
        return Vec::new();
    };
    let rich = items.iter().any(|it| it.as_map().is_some());
    let plain = items.iter().any(|it| matches!(it.kind, Kind::Str(_)));
    if rich && plain {
        d.error(
            n.pos,
            path,
            "mixes `{mcp_server, tool}` steps and bare tool names; use one form",
        );
        return Vec::new();
    }
    let mut out = Vec::new();
    for (i, it) in items.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let (server, tool) = if rich {
            let Some(mut r) = MapReader::new(it, &p, d) else {
                continue;
            };
            let server = r
                .get_any(&["mcp_server", "mcp"])
                .and_then(|(k, v)| read_str(v, &r.sub(k), d))
                .filter(|s| !s.is_empty());
            let tool = r
                .get_any(&["tool", "name"])
                .and_then(|(k, v)| read_str(v, &r.sub(k), d));
            r.finish(d);
            let Some(tool) = tool else {
                d.error(it.pos, &p, "a tool-chain step needs `tool`");
                continue;
            };
            (server, tool)
        } else {
            let Some(tool) = read_str(it, &p, d) else {
                continue;
            };
            (servers.as_ref().and_then(|s| s.get(i).cloned()), tool)
        };
        let key = server
            .clone()
            .or_else(|| default_server.map(String::from))
            .unwrap_or_else(|| "phone".into());
        match cfg.mcp_server(&key) {
            None => check_mcp_server(it, &p, &key, cfg, d),
            Some(srv) if !srv.tools.iter().any(|t| t.name == tool) => d.error(
                it.pos,
                &p,
                format!(
                    "MCP server `{key}` has no tool `{tool}`{}; its tools: {}",
                    did_you_mean(&tool, srv.tools.iter().map(|t| t.name.as_str())),
                    srv.tools
                        .iter()
                        .map(|t| t.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
            Some(_) => {}
        }
        out.push(V2ToolStep {
            server: Some(key),
            tool,
        });
    }
    out
}

/// A turn's payloads against config.yaml's contracts (when it declares any): every
/// tool of the chain has one, payloads name only tools of the chain, and use only the
/// fields the contract's `structure` lists.
fn check_payloads(t: &V2Turn, pos: Pos, path: &str, cfg: &Config, d: &mut Diags) {
    if cfg.tool_payloads.is_empty() {
        return;
    }
    for step in &t.tool_chain {
        if !cfg.tool_payloads.contains_key(&step.tool) {
            d.error(
                pos,
                &join(path, "tool_chain"),
                format!(
                    "tool `{}` has no payload contract in config.yaml `mcp_tool_genai_payloads`",
                    step.tool
                ),
            );
        }
    }
    for (key, map, result) in [
        ("gen_ai.tool.call.arguments", &t.arguments, false),
        ("gen_ai.tool.call.result", &t.results, true),
    ] {
        for (tool, payload) in map {
            let p = join(&join(path, key), tool);
            if !t.tool_chain.iter().any(|s| s.tool == *tool) {
                d.error(
                    payload.key_pos,
                    &p,
                    format!("`{tool}` is not a tool of this turn's tool_chain"),
                );
                continue;
            }
            let Some(contract) = cfg.tool_payloads.get(tool).and_then(|c| {
                if result {
                    c.result.as_ref()
                } else {
                    c.arguments.as_ref()
                }
            }) else {
                continue;
            };
            let Some(fields) = payload.as_map() else {
                d.error(payload.pos, &p, "expected a map of payload fields");
                continue;
            };
            if contract.fields.is_empty() {
                continue;
            }
            for (f, v) in fields {
                if !contract.fields.contains(f) {
                    d.error(
                        v.key_pos,
                        &join(&p, f),
                        format!(
                            "field `{f}` is not in the contract's structure{}; allowed: {}",
                            did_you_mean(f, contract.fields.iter().map(String::as_str)),
                            contract.fields.join(", ")
                        ),
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_files_are_told_apart_by_their_top_level_keys() {
        let parse = |s: &str| crate::yaml::parse(s, &mut Diags::new("t")).unwrap();
        assert!(is_v2(&parse("tenant: toro\nendusers: []\n")));
        assert!(is_v2(&parse("tenant: toro\nagent: a\n")));
        assert!(!is_v2(&parse(
            "context: {tenant: toro}\ndata_plane: {workflow: x}\n"
        )));
        assert!(!is_v2(&parse("tenant: toro\ncontext: {tenant: toro}\n")));
    }

    #[test]
    fn durations_read_as_maps_or_bare_numbers() {
        let n = crate::yaml::parse(
            "normal:\n  span_durations_ms:\n    llm.call: {mean: 400, deviation: 50}\n    planner: 120\n",
            &mut Diags::new("t"),
        )
        .unwrap();
        let mut d = Diags::new("t");
        let p = read_profiles(&n, &mut d);
        assert_eq!(p[0].0, "normal");
        assert_eq!(
            p[0].1[0],
            (
                "llm.call".into(),
                V2Duration {
                    mean: 400.0,
                    deviation: 50.0
                }
            )
        );
        assert_eq!(
            p[0].1[1],
            (
                "planner".into(),
                V2Duration {
                    mean: 120.0,
                    deviation: 0.0
                }
            )
        );
        assert!(!d.has_errors());
    }

    #[test]
    fn json_text_keeps_lists_and_maps() {
        let n = crate::yaml::parse("[1, 2, {a: b}]\n", &mut Diags::new("t")).unwrap();
        assert_eq!(json_text(&n), r#"[1,2,{"a":"b"}]"#);
    }

    #[test]
    fn an_unknown_read_tz_zone_is_refused() {
        let n = crate::yaml::parse(
            "peak_hours: {timezone: Mars/Olympus, weekdays: [1, 9], start_hour: 7, end_hour: 10}\n",
            &mut Diags::new("t"),
        )
        .unwrap();
        let mut d = Diags::new("t");
        let w = read_schedule(&n, &mut d);
        assert_eq!(w[0].weekdays, vec![1]);
        let text: Vec<String> = d.items.iter().map(|x| x.to_string()).collect();
        assert!(
            text.iter()
                .any(|t| t.contains("unknown time zone `Mars/Olympus`")),
            "{text:?}"
        );
        assert!(
            text.iter().any(|t| t.contains("9 is no ISO weekday")),
            "{text:?}"
        );
    }
}
