//! Reads one scenario definition file into `ScenarioDef`, against the loaded
//! config so that every reference (tenant, agent, MCP server, service, workflow,
//! template) is checked with its line. The `root:` span tree is read by `step`.

pub mod episode;
pub mod instability;
pub mod step;
#[cfg(test)]
mod tests;
pub mod topology;
pub mod v2;

use crate::diag::{Diags, Pos, Severity};
use crate::model::config::{AttemptSpec, Config};
use crate::model::read::config::control_plane::read_exception;
use crate::model::read::config::read_attempts;
use crate::model::read::did_you_mean;
use crate::model::read::samples::read_conversation;
use crate::model::scenario::{
    resolve_template_id, ContextDef, ControlPlaneDef, DataPlaneDef, Format, LlmInteraction,
    Overrides, ScenarioDef, StepDef, ERROR_PATTERNS, GOALS, MAX_INTERVAL_MS, MAX_WEIGHT,
    REDACTION_LEVELS,
};
use crate::yaml::{
    join, read_bool, read_f64, read_map_list, read_non_negative, read_prob, read_str,
    read_str_list, read_u64, Kind, MapReader, Node,
};
use step::read_step;

/// Loads a scenario file. `name` is the file stem. An unknown key is a warning:
/// folders of scenario files written for an older or newer tool must still load.
pub fn load(root: &Node, name: &str, cfg: &Config, d: &mut Diags) -> Option<ScenarioDef> {
    d.unknown_keys = Severity::Warning;
    if v2::is_v2(root) {
        return v2::load(root, name, cfg, d);
    }
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
    let workload_weight = r
        .get("workload_weight")
        .map_or(1.0, |n| read_workload_weight(n, d));
    let repeat_count = r
        .get("repeat_count")
        .and_then(|n| read_u64(n, "repeat_count", d))
        .unwrap_or(1)
        .min(u64::from(u32::MAX)) as u32;
    let interval = |r: &mut MapReader<'_>, k: &'static str, d: &mut Diags| {
        r.get(k).and_then(|n| read_interval(n, k, d))
    };
    let interval_ms = interval(&mut r, "interval_ms", d).unwrap_or(500.0);
    let interval_deviation_ms = interval(&mut r, "interval_deviation_ms", d).unwrap_or(0.0);
    let flag = |r: &mut MapReader<'_>, k: &'static str, d: &mut Diags| {
        r.get(k).and_then(|n| read_bool(n, k, d)).unwrap_or(true)
    };
    let emit_metrics = flag(&mut r, "emit_metrics", d);
    let emit_logs = flag(&mut r, "emit_logs", d);
    let opt_in = r
        .get("opt_in")
        .and_then(|n| read_bool(n, "opt_in", d))
        .unwrap_or(false);
    let redaction_node = r.get("redaction_applied");
    let top_mcp = r
        .get("mcp_server")
        .map(|n| (n, read_str(n, "mcp_server", d)));
    let goal_top = r
        .get_any(&["simulation_goal", "goal"])
        .map(|(k, n)| (n, k, read_str(n, k, d)));
    let overrides = r
        .get_any(&["realistic_overrides", "scenario_overrides"])
        .map(|(k, n)| read_overrides(n, k, cfg, d))
        .unwrap_or_default();
    let context = r.get("context").map(|n| read_context(n, cfg, d));
    let mut goal = goal_top.as_ref().and_then(|(_, _, g)| g.clone());
    let data_plane = r
        .get("data_plane")
        .map(|n| read_data_plane(n, cfg, &mut goal, d));
    let control_plane = r
        .get("control_plane")
        .map(|n| read_control_plane(n, cfg, d));
    let conversation = r
        .get("conversation")
        .map(|n| read_conversation(n, d))
        .unwrap_or_default();
    let cycle_samples = r
        .get("cycle_conversation_samples")
        .and_then(|n| read_bool(n, "cycle_conversation_samples", d))
        .unwrap_or(false);
    let cycle_written = r.get("cycle_conversation_samples").is_some();
    r.ignore("expected");
    let mut root_step = r.get("root").map(|n| read_step(n, "root", d));
    if let Some(n) = r.get("topology") {
        if root_step.is_some() {
            d.error(
                n.key_pos,
                "topology",
                "a scenario has either `root:` (a span tree) or `topology:` (requests between services), not both",
            );
        } else {
            root_step = Some(topology::read_topology(n, cfg, d));
        }
    }
    let instability = r.get("instability").map(|n| instability::read(n, d));
    let episode = r
        .get("episode")
        .and_then(|n| episode::read_episode(n, d).map(|e| (n.pos, e)));
    let track_costs = r
        .get("track_costs")
        .and_then(|n| read_bool(n, "track_costs", d))
        .unwrap_or(episode.is_some());
    if let Some((pos, e)) = &episode {
        if root_step.is_some() {
            d.error(
                *pos,
                "episode",
                "a scenario has either `episode:` or `root:`, not both",
            );
        }
        root_step = Some(Some(e.root_step(*pos)));
    }
    r.finish(d);

    let mut context = context.unwrap_or_default();
    let redaction = read_redaction(redaction_node, &context, d);
    let dp = data_plane.as_ref();
    let cp = control_plane.as_ref();
    let late_v1 = conversation.late_v1
        || cycle_written
        || context.tools.is_some()
        || !context.tool_call_arguments.is_empty()
        || !context.tool_call_results.is_empty()
        || dp.is_some_and(|dp| {
            !dp.llm_interactions.is_empty() || dp.higher_latency_condition.is_some()
        })
        || cp.is_some_and(|cp| cp.augmentation_exception != (None, None))
        || overrides.intended_division.is_some();
    let format = if late_v1 { Format::LateV1 } else { Format::V1 };
    check_goal_needs(goal.as_deref(), &context, dp, cfg, root.pos, d);
    if let Some((n, Some(key))) = &top_mcp {
        check_mcp_server(n, "mcp_server", key, cfg, d);
    }
    if let Some(Some(step)) = &root_step {
        check_services(step, cfg, d);
    }
    // A goal under data_plane was checked where it was read.
    if let Some((n, k, Some(g))) = &goal_top {
        check_goal(g, n.pos, k, cfg, d);
    }
    if context.tenant.is_none() && !cfg.tenants.is_empty() {
        context.tenant = Some(cfg.tenants[0].key.clone());
    }
    if context.agent.is_none() {
        context.agent = cfg.agents.first().cloned();
    }
    let has_workflow =
        data_plane.as_ref().is_some_and(|dp| dp.workflow.is_some()) || context.workflow.is_some();
    if root_step.is_none() && !has_workflow && control_plane.is_none() && instability.is_none() {
        d.error(
            root.pos,
            "",
            "the scenario describes no telemetry: add `root:` (an explicit span tree), `data_plane.workflow` (a workflow from config.yaml), `control_plane:` or `instability:`",
        );
    }
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
        mcp_server: top_mcp.and_then(|(_, k)| k),
        goal,
        overrides,
        data_plane,
        control_plane,
        context,
        turns: conversation.turns,
        samples: conversation.samples,
        cycle_samples,
        format,
        root: root_step.flatten(),
        v2: None,
        instability,
        episode: episode.map(|(_, e)| e),
        track_costs,
    })
}

/// What a goal needs from the rest of the file and from config.yaml.
fn check_goal_needs(
    goal: Option<&str>,
    context: &ContextDef,
    dp: Option<&DataPlaneDef>,
    cfg: &Config,
    pos: Pos,
    d: &mut Diags,
) {
    match goal {
        Some("higher_latency") => {
            let explicit = dp.and_then(|dp| dp.latency_profile.as_deref());
            let profile = match explicit {
                None | Some("happy_path") => "higher_latency",
                Some(p) => p,
            };
            if !cfg.latency_profiles.contains_key(profile) {
                d.error(
                    pos,
                    "data_plane.goal",
                    format!(
                        "goal `higher_latency` runs the turn with latency profile `{profile}`, which config.yaml does not define; defined latency_profiles: {}",
                        if cfg.latency_profiles.is_empty() {
                            "none (add `latency_profiles.higher_latency`)".to_string()
                        } else {
                            cfg.latency_profiles.keys().cloned().collect::<Vec<_>>().join(", ")
                        }
                    ),
                );
            }
        }
        Some("outlier_no_tools") if !context.tools.as_ref().is_some_and(|(_, t)| t.is_empty()) => {
            d.warn(
                pos,
                "data_plane.goal",
                "goal `outlier_no_tools` describes a turn without tool calls, but `context.tools` is not `[]`: the workflow's tool steps still run",
            );
        }
        _ => {}
    }
}

/// `workload_weight`: relative, in [0, `MAX_WEIGHT`]; a bad value counts as 0 (not run).
fn read_workload_weight(n: &Node, d: &mut Diags) -> f64 {
    match read_f64(n, "workload_weight", d) {
        Some(w) if w > MAX_WEIGHT => {
            d.error(
                n.pos,
                "workload_weight",
                format!("{w} is too large; weights are relative, up to {MAX_WEIGHT}"),
            );
            0.0
        }
        Some(w) if w < 0.0 => {
            d.error(n.pos, "workload_weight", format!("{w} is negative; use 0 to exclude the scenario from `run`, or a positive relative weight"));
            0.0
        }
        Some(w) => w,
        None => 1.0,
    }
}

/// `redaction_applied` (top level, else under `context` as the predecessor had it).
fn read_redaction(node: Option<&Node>, context: &ContextDef, d: &mut Diags) -> String {
    let redaction_set = node
        .and_then(|n| read_str(n, "redaction_applied", d).map(|s| (n.pos, s)))
        .or(context.redaction_applied.clone());
    match redaction_set {
        Some((pos, s)) => {
            if !REDACTION_LEVELS.contains(&s.as_str()) {
                d.error(
                    pos,
                    "redaction_applied",
                    format!(
                        "unknown level `{s}`; valid: {}",
                        REDACTION_LEVELS.join(", ")
                    ),
                );
            }
            s
        }
        None => "none".into(),
    }
}

fn read_interval(n: &Node, path: &str, d: &mut Diags) -> Option<f64> {
    let v = read_non_negative(n, path, d)?;
    if v > MAX_INTERVAL_MS {
        d.error(
            n.pos,
            path,
            format!("{v} ms is longer than one day ({MAX_INTERVAL_MS} ms)"),
        );
        return None;
    }
    Some(v)
}

/// "unknown <section> key `k` (did you mean ...); defined in config.yaml: ...".
pub(super) fn unknown<'a>(what: &str, key: &str, defined: impl Iterator<Item = &'a str>) -> String {
    let defined: Vec<&str> = defined.collect();
    let hint = did_you_mean(key, defined.iter().copied());
    format!(
        "unknown {what} key `{key}`{hint}; defined in config.yaml: {}",
        defined.join(", ")
    )
}

/// Reports `key` at `n` unless config.yaml declares that MCP server.
pub(super) fn check_mcp_server(n: &Node, path: &str, key: &str, cfg: &Config, d: &mut Diags) {
    if cfg.mcp_server(key).is_none() {
        d.error(
            n.pos,
            path,
            unknown(
                "mcp_servers",
                key,
                cfg.mcp_servers.iter().map(|s| s.key.as_str()),
            ),
        );
    }
}

/// Checks every `service:` in a `root:` tree against config.yaml's `services:`.
fn check_services(step: &StepDef, cfg: &Config, d: &mut Diags) {
    if let Some((name, pos)) = &step.service {
        if cfg.service(name).is_none() {
            let path = join(&step.path, "service");
            let message = if cfg.services.is_empty() {
                format!("unknown service `{name}`; config.yaml declares no services: add `{name}` under a top-level `services:` map")
            } else {
                unknown(
                    "services",
                    name,
                    cfg.services.iter().map(|s| s.name.as_str()),
                )
            };
            d.error(*pos, &path, message);
        }
    }
    for child in &step.children {
        check_services(child, cfg, d);
    }
}

/// A goal is honoured or refused, never silently a happy path: a name otelsim gives
/// no meaning to is an error, even when config.yaml has an error template of that name.
fn check_goal(goal: &str, pos: Pos, key: &str, cfg: &Config, d: &mut Diags) {
    if GOALS.contains(&goal) {
        return;
    }
    let hint = did_you_mean(goal, GOALS.iter().copied());
    let why = if cfg.error_templates.contains_key(goal) {
        format!("config.yaml has an error template `{goal}`, but a template only sets the error type of a goal otelsim knows, so this goal would inject nothing")
    } else {
        format!("unknown simulation goal `{goal}`{hint}")
    };
    d.error(pos, key, format!("{why}; valid: {}", GOALS.join(", ")));
}

fn read_overrides(node: &Node, path: &str, cfg: &Config, d: &mut Diags) -> Overrides {
    let mut o = Overrides::default();
    let Some(mut r) = MapReader::new(node, path, d) else {
        return o;
    };
    o.step_index_for_4xx = r
        .get("step_index_for_4xx")
        .and_then(|n| read_u64(n, &r.sub("step_index_for_4xx"), d))
        .map(|v| v as u32);
    o.step_index_wrong_division = r
        .get("step_index_wrong_division")
        .and_then(|n| read_u64(n, &r.sub("step_index_wrong_division"), d))
        .map(|v| v as u32);
    if let Some(n) = r.get("wrong_division_target") {
        o.wrong_division_target = read_str(n, &r.sub("wrong_division_target"), d);
        if let Some(t) = &o.wrong_division_target {
            if cfg.division_server(t).is_none() {
                let names: Vec<&str> = cfg
                    .divisions
                    .iter()
                    .map(|(k, _)| k.as_str())
                    .chain(cfg.mcp_servers.iter().map(|s| s.key.as_str()))
                    .collect();
                d.error(
                    n.pos,
                    &r.sub("wrong_division_target"),
                    format!(
                        "unknown division or MCP server `{t}`; valid: {}",
                        names.join(", ")
                    ),
                );
            }
        }
    }
    o.actual_steps = r
        .get("actual_steps")
        .map(|n| read_str_list(n, &r.sub("actual_steps"), d));
    if let Some(n) = r.get("skip_steps") {
        match &n.kind {
            Kind::Seq(items) => {
                for it in items {
                    if let Some(i) = read_u64(it, &r.sub("skip_steps"), d) {
                        o.skip_steps.push(i as u32);
                    }
                }
            }
            _ => d.error(
                n.pos,
                &r.sub("skip_steps"),
                "expected a list of step indices",
            ),
        }
    }
    if let Some(n) = r.get("mcp_server_key") {
        o.mcp_server_key = read_str(n, &r.sub("mcp_server_key"), d);
        if let Some(k) = &o.mcp_server_key {
            check_mcp_server(n, &r.sub("mcp_server_key"), k, cfg, d);
        }
    }
    if let Some(n) = r.get("intended_division") {
        o.intended_division = read_str(n, &r.sub("intended_division"), d);
        if let Some(t) = &o.intended_division {
            if cfg.division_server(t).is_none() {
                d.error(
                    n.pos,
                    &r.sub("intended_division"),
                    unknown(
                        "divisions or mcp_servers",
                        t,
                        cfg.divisions
                            .iter()
                            .map(|(k, _)| k.as_str())
                            .chain(cfg.mcp_servers.iter().map(|s| s.key.as_str())),
                    ),
                );
            }
        }
    }
    o.exception_type = r
        .get("exception_type")
        .and_then(|n| read_str(n, &r.sub("exception_type"), d));
    o.exception_message = r
        .get("exception_message")
        .and_then(|n| read_str(n, &r.sub("exception_message"), d));
    r.finish(d);
    o
}

fn read_context(node: &Node, cfg: &Config, d: &mut Diags) -> ContextDef {
    let mut c = ContextDef::default();
    let Some(mut r) = MapReader::new(node, "context", d) else {
        return c;
    };
    if let Some(n) = r.get("tenant") {
        if let Some(t) = read_str(n, "context.tenant", d) {
            if cfg.tenant(&t).is_none() {
                d.error(
                    n.pos,
                    "context.tenant",
                    unknown("tenants", &t, cfg.tenants.iter().map(|t| t.key.as_str())),
                );
            }
            c.tenant = Some(t);
        }
    }
    c.tenant_uuid = r
        .get("tenant_uuid")
        .and_then(|n| read_str(n, "context.tenant_uuid", d));
    if let Some(n) = r.get("agent") {
        if let Some(a) = read_str(n, "context.agent", d) {
            if !cfg.agents.contains(&a) {
                d.error(
                    n.pos,
                    "context.agent",
                    unknown("agents", &a, cfg.agents.iter().map(String::as_str)),
                );
            }
            c.agent = Some(a);
        }
    }
    if let Some(n) = r.get("mcp_server") {
        if let Some(m) = read_str(n, "context.mcp_server", d) {
            check_mcp_server(n, "context.mcp_server", &m, cfg, d);
            c.mcp_server = Some(m);
        }
    }
    if let Some(n) = r.get("workflow") {
        c.workflow = read_workflow_ref(n, "context.workflow", cfg, d);
    }
    if let Some(n) = r.get("correct_flow") {
        let list = n.get("steps").unwrap_or(n);
        c.correct_flow = read_str_list(list, "context.correct_flow", d);
    }
    if let Some(n) = r.get("error_pattern") {
        if let Some(p) = read_str(n, "context.error_pattern", d) {
            if !ERROR_PATTERNS.contains(&p.as_str()) {
                d.error(
                    n.pos,
                    "context.error_pattern",
                    format!(
                        "unknown error pattern `{p}`; valid: {}",
                        ERROR_PATTERNS.join(", ")
                    ),
                );
            }
            c.error_pattern = Some(p);
        }
    }
    if let Some(n) = r.get("error_config") {
        if let Some(mut er) = MapReader::new(n, "context.error_config", d) {
            c.error_rate = er
                .get("rate")
                .and_then(|v| read_prob(v, "context.error_config.rate", d));
            c.error_step_index = match er.get("step_index") {
                Some(v) if v.as_str() == Some("random") => None,
                Some(v) => read_u64(v, "context.error_config.step_index", d).map(|i| i as u32),
                None => None,
            };
            er.finish(d);
        }
    }
    c.redaction_applied = r
        .get("redaction_applied")
        .and_then(|n| read_str(n, "context.redaction_applied", d).map(|v| (n.pos, v)));
    if let Some(n) = r.get("tools") {
        let tools = read_str_list(n, "context.tools", d);
        let known = |t: &str| {
            cfg.mcp_servers
                .iter()
                .any(|s| s.tools.iter().any(|x| x.name == t))
        };
        for t in tools.iter().filter(|t| !known(t)) {
            d.error(
                n.pos,
                "context.tools",
                format!("`{t}` is not a tool of any MCP server in config.yaml"),
            );
        }
        c.tools = Some((n.pos, tools));
    }
    for (k, slot) in [
        ("tool_call_arguments", &mut c.tool_call_arguments),
        ("tool_call_results", &mut c.tool_call_results),
    ] {
        if let Some(n) = r.get(k) {
            *slot = read_tool_payloads(n, &format!("context.{k}"), d);
        }
    }
    r.finish(d);
    c
}

/// `tool_call_arguments` / `tool_call_results`: a map from tool name to any YAML value.
fn read_tool_payloads(n: &Node, path: &str, d: &mut Diags) -> Vec<(String, Node)> {
    match &n.kind {
        Kind::Map(entries) => entries.clone(),
        Kind::Null => Vec::new(),
        _ => {
            d.error(
                n.pos,
                path,
                format!(
                    "expected a map from tool name to its payload, found {}",
                    n.type_name()
                ),
            );
            Vec::new()
        }
    }
}

fn read_workflow_ref(n: &Node, path: &str, cfg: &Config, d: &mut Diags) -> Option<String> {
    let w = read_str(n, path, d)?;
    if !cfg.workflow_templates.contains_key(&w) {
        d.error(
            n.pos,
            path,
            unknown(
                "workflow_templates",
                &w,
                cfg.workflow_templates.keys().map(String::as_str),
            ),
        );
    }
    Some(w)
}

fn read_data_plane(
    node: &Node,
    cfg: &Config,
    goal: &mut Option<String>,
    d: &mut Diags,
) -> DataPlaneDef {
    let mut dp = DataPlaneDef::default();
    let Some(mut r) = MapReader::new(node, "data_plane", d) else {
        return dp;
    };
    if let Some(n) = r.get("workflow") {
        dp.workflow = read_workflow_ref(n, "data_plane.workflow", cfg, d);
    }
    if let Some((k, n)) = r.get_any(&["simulation_goal", "goal"]) {
        if let Some(g) = read_str(n, &r.sub(k), d) {
            check_goal(&g, n.pos, &r.sub(k), cfg, d);
            *goal = Some(g);
        }
    }
    if let Some(n) = r.get("control_plane_template") {
        if let Some(t) = read_str(n, "data_plane.control_plane_template", d) {
            let t = t.to_ascii_lowercase();
            if !cfg.control_plane.request_templates.is_empty()
                && !cfg.control_plane.request_templates.contains_key(&t)
            {
                d.error(
                    n.pos,
                    "data_plane.control_plane_template",
                    unknown(
                        "request_validation_templates",
                        &t,
                        cfg.control_plane
                            .request_templates
                            .keys()
                            .map(String::as_str),
                    ),
                );
            }
            dp.control_plane_template = Some(t);
        }
    }
    if let Some(n) = r.get("mcp_retry") {
        dp.mcp_retry = read_mcp_retry_ref(n, cfg, d);
    }
    if let Some(n) = r.get("latency_profile") {
        if let Some(p) = read_str(n, "data_plane.latency_profile", d) {
            if !cfg.latency_profiles.contains_key(&p) {
                d.error(
                    n.pos,
                    "data_plane.latency_profile",
                    unknown(
                        "latency_profiles",
                        &p,
                        cfg.latency_profiles.keys().map(String::as_str),
                    ),
                );
            }
            dp.latency_profile = Some(p);
        }
    }
    if let Some(n) = r.get("llm_interactions") {
        dp.llm_interactions = read_llm_interactions(n, d);
    }
    if let Some(n) = r.get("higher_latency_condition") {
        if n.as_map().is_some() {
            dp.higher_latency_condition = Some(n.clone());
        } else {
            d.error(
                n.pos,
                "data_plane.higher_latency_condition",
                format!("expected a map of conditions (e.g. `peak_hours: {{timezone, start_hour, end_hour, weekdays}}`), found {}", n.type_name()),
            );
        }
    }
    if let Some(n) = r.get("reasoning") {
        dp.reasoning = read_reasoning(n, d);
    }
    r.finish(d);
    dp
}

/// `reasoning: {tokens: {min, max} | N, stage}`.
fn read_reasoning(n: &Node, d: &mut Diags) -> Option<crate::model::scenario::ReasoningDef> {
    let mut r = MapReader::new(n, "data_plane.reasoning", d)?;
    let mut out = crate::model::scenario::ReasoningDef {
        tokens: (200, 800),
        stage: "planning".into(),
    };
    let count = |n: &Node, path: &str, d: &mut Diags| {
        let v = read_u64(n, path, d)?;
        if !(1..=100_000).contains(&v) {
            d.error(
                n.pos,
                path,
                format!("{v} tokens is out of range; expected 1 to 100000"),
            );
            return None;
        }
        Some(v as u32)
    };
    if let Some(t) = r.get("tokens") {
        if t.as_map().is_some() {
            let mut tr = MapReader::new(t, "data_plane.reasoning.tokens", d)?;
            let min = tr
                .get("min")
                .and_then(|v| count(v, "data_plane.reasoning.tokens.min", d));
            let max = tr
                .get("max")
                .and_then(|v| count(v, "data_plane.reasoning.tokens.max", d));
            tr.finish(d);
            let (lo, hi) = (min.unwrap_or(out.tokens.0), max.unwrap_or(out.tokens.1));
            if lo > hi {
                d.error(
                    t.pos,
                    "data_plane.reasoning.tokens",
                    format!("min {lo} is above max {hi}"),
                );
            } else {
                out.tokens = (lo, hi);
            }
        } else if let Some(v) = count(t, "data_plane.reasoning.tokens", d) {
            out.tokens = (v, v);
        }
    }
    if let Some(s) = r.get("stage") {
        if let Some(v) = read_str(s, "data_plane.reasoning.stage", d) {
            out.stage = v;
        }
    }
    r.finish(d);
    Some(out)
}

/// `llm_interactions: [{role, system_prompt, output}]`.
fn read_llm_interactions(n: &Node, d: &mut Diags) -> Vec<LlmInteraction> {
    let shape = "{role, system_prompt, output}";
    read_map_list(n, "data_plane.llm_interactions", shape, d, |mut r, p, d| {
        let text = |r: &mut MapReader<'_>, k: &'static str, d: &mut Diags| {
            r.get(k).and_then(|n| read_str(n, &join(p, k), d))
        };
        let role = text(&mut r, "role", d).unwrap_or_default();
        let system_prompt = text(&mut r, "system_prompt", d);
        let output = text(&mut r, "output", d);
        // A prompt template documents the call; the messages come from the conversation.
        r.ignore("user_prompt_template");
        r.finish(d);
        Some(LlmInteraction {
            role,
            system_prompt,
            output,
        })
    })
}

/// `mcp_retry`: a template name, `{template: name}`, `{attempts: [...]}` or a bare list.
fn read_mcp_retry_ref(n: &Node, cfg: &Config, d: &mut Diags) -> Option<Vec<AttemptSpec>> {
    let path = "data_plane.mcp_retry";
    let name = match &n.kind {
        Kind::Str(s) => Some((s.clone(), n.pos)),
        Kind::Map(_) if n.get("template").is_some() => n
            .get("template")
            .and_then(|t| read_str(t, path, d).map(|s| (s, t.pos))),
        _ => None,
    };
    if let Some((name, pos)) = name {
        return match cfg.mcp_retry_templates.get(&name) {
            Some(a) => Some(a.clone()),
            None => {
                d.error(
                    pos,
                    path,
                    unknown(
                        "mcp_retry_templates",
                        &name,
                        cfg.mcp_retry_templates.keys().map(String::as_str),
                    ),
                );
                None
            }
        };
    }
    read_attempts(n, path, d)
}

fn read_control_plane(node: &Node, cfg: &Config, d: &mut Diags) -> ControlPlaneDef {
    let mut c = ControlPlaneDef::default();
    let Some(mut r) = MapReader::new(node, "control_plane", d) else {
        return c;
    };
    let templates = &cfg.control_plane.request_templates;
    if let Some(n) = r.get("template") {
        if let Some(t) = read_str(n, "control_plane.template", d) {
            let t = t.to_ascii_lowercase();
            if !templates.contains_key(&t) {
                d.error(
                    n.pos,
                    "control_plane.template",
                    unknown(
                        "request_validation_templates",
                        &t,
                        templates.keys().map(String::as_str),
                    ),
                );
            }
            c.template = Some(t);
        }
    }
    if let Some(n) = r.get("request_outcome") {
        if let Some(o) = read_str(n, "control_plane.request_outcome", d) {
            if !["allowed", "blocked", "error"].contains(&o.as_str()) {
                d.error(
                    n.pos,
                    "control_plane.request_outcome",
                    format!("unknown outcome `{o}`; valid: allowed, blocked, error"),
                );
            }
            c.request_outcome = Some(o);
        }
    }
    if let Some(n) = r.get("block_reason") {
        c.block_reason = read_str(n, "control_plane.block_reason", d).map(|s| s.replace('-', "_"));
    }
    if let Some(n) = r.get("policy_exception") {
        c.policy_exception = read_exception(n, "control_plane.policy_exception", d);
    }
    if let Some(n) = r.get("augmentation_exception") {
        let path = "control_plane.augmentation_exception";
        if let Some(mut er) = MapReader::new(n, path, d) {
            let ty = er.get("type").and_then(|v| read_str(v, &er.sub("type"), d));
            let msg = er
                .get("message")
                .and_then(|v| read_str(v, &er.sub("message"), d));
            er.finish(d);
            if ty.is_none() && msg.is_none() {
                d.error(n.pos, path, "give a `type`, a `message` or both");
            }
            c.augmentation_exception = (ty, msg);
        }
    }
    r.finish(d);
    if c.template.is_none() {
        if let Some(id) =
            resolve_template_id(c.request_outcome.as_deref(), c.block_reason.as_deref())
        {
            if !templates.contains_key(&id) {
                d.error(node.pos, "control_plane", format!(
                    "request_outcome/block_reason resolve to template `{id}`, which control_plane.request_validation_templates does not define; defined: {}",
                    templates.keys().cloned().collect::<Vec<_>>().join(", ")
                ));
            }
        }
    }
    c
}
