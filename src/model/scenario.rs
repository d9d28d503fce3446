//! One scenario definition file, read against the loaded config so that every
//! reference (tenant, agent, MCP server, workflow, template) is checked with its line.

use crate::diag::{Diags, Pos};
use crate::model::config::{self, AttemptSpec, Config, ExceptionSpec, Sample};
use crate::model::distribution::{self, Categorical, Count, Distribution};
use crate::model::AttrValue;
use crate::record::SpanKind;
use crate::yaml::{
    describe, join, read_bool, read_f64, read_non_negative, read_prob, read_str, read_str_list,
    read_u64, Kind, MapReader, Node,
};

/// Largest `workload_weight` (weights are relative; this keeps their sum finite).
pub const MAX_WEIGHT: f64 = 1e6;
/// Longest interval between iterations or picks, in ms (one day).
pub const MAX_INTERVAL_MS: f64 = 86_400_000.0;

pub const REDACTION_LEVELS: &[&str] = &["none", "basic", "strict"];
pub const GOALS: &[&str] = &[
    "happy_path",
    "4xx_invalid_arguments",
    "wrong_division",
    "partial_workflow",
    "ungrounded_response",
];

#[derive(Clone, Debug, PartialEq)]
pub enum AttrSpec {
    Literal(AttrValue),
    Numeric { dist: Distribution, integer: bool },
    Categorical(Categorical),
}

#[derive(Clone, Debug, PartialEq)]
pub struct ErrorDef {
    pub rate: f64,
    /// Allowed `error.type` values to choose from when this span fails on its own.
    pub types: Vec<String>,
    /// Whether this span's failure marks its parent failed too.
    pub propagate: bool,
    /// Probability that each child fails when this span fails on its own.
    pub from_parent: f64,
    /// Probability that a later sibling fails after this one failed.
    pub cascade_to_siblings: f64,
    pub message: Option<String>,
    /// Error types worth retrying; a failed attempt of another type ends the retries.
    pub retryable_types: Vec<String>,
}

impl Default for ErrorDef {
    fn default() -> Self {
        ErrorDef {
            rate: 0.0,
            types: Vec::new(),
            propagate: true,
            from_parent: 0.0,
            cascade_to_siblings: 0.0,
            message: None,
            retryable_types: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct RetryDef {
    pub max_attempts: u32,
    pub force_initial_failure: bool,
    /// Success probability of attempt i (0-based); the last entry repeats.
    pub success_rate_per_attempt: Vec<f64>,
    pub backoff_base_ms: f64,
    pub backoff_multiplier: f64,
    pub backoff_jitter: f64,
    pub error_types: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct StepDef {
    pub type_name: String,
    pub pos: Pos,
    pub path: String,
    pub kind: Option<SpanKind>,
    pub latency: Option<Distribution>,
    pub error: ErrorDef,
    pub attributes: Vec<(String, AttrSpec, Pos)>,
    pub children: Vec<StepDef>,
    pub parallel: bool,
    pub probability: f64,
    pub count: Count,
    pub retry: Option<RetryDef>,
}

#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub step_index_for_4xx: Option<u32>,
    pub wrong_division_target: Option<String>,
    pub step_index_wrong_division: Option<u32>,
    pub actual_steps: Option<Vec<String>>,
    pub skip_steps: Vec<u32>,
    pub mcp_server_key: Option<String>,
    pub exception_type: Option<String>,
    pub exception_message: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct DataPlaneDef {
    pub workflow: Option<String>,
    pub control_plane_template: Option<String>,
    pub mcp_retry: Option<Vec<AttemptSpec>>,
    pub latency_profile: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct ControlPlaneDef {
    pub template: Option<String>,
    pub request_outcome: Option<String>,
    pub block_reason: Option<String>,
    pub policy_exception: Option<ExceptionSpec>,
}

#[derive(Clone, Debug, Default)]
pub struct ContextDef {
    pub tenant: Option<String>,
    pub agent: Option<String>,
    pub mcp_server: Option<String>,
    pub workflow: Option<String>,
    pub correct_flow: Vec<String>,
    pub error_pattern: Option<String>,
    /// `error_config.rate`: chance per trace that `error_pattern` injects its failure.
    pub error_rate: Option<f64>,
    /// `error_config.step_index`: which tool step fails (None = random).
    pub error_step_index: Option<u32>,
    /// `context.tenant_uuid`: a literal tenant id that overrides the `tenant` key.
    pub tenant_uuid: Option<String>,
    /// Used when the top-level `redaction_applied` is absent (predecessor layout).
    pub redaction_applied: Option<(Pos, String)>,
}

pub const ERROR_PATTERNS: &[&str] = &[
    "happy_path",
    "none",
    "single_tool_failure",
    "first_tool_failure",
    "last_tool_failure",
    "cascade",
    "random",
];

#[derive(Clone, Debug)]
pub struct ScenarioDef {
    /// Lookup name: the file stem (or the registry key).
    pub name: String,
    pub display_name: String,
    pub description: String,
    pub source: String,
    pub tags: Vec<String>,
    pub workload_weight: f64,
    pub repeat_count: u32,
    pub interval_ms: f64,
    pub interval_deviation_ms: f64,
    pub emit_metrics: bool,
    pub emit_logs: bool,
    pub redaction: String,
    pub mcp_server: Option<String>,
    pub goal: Option<String>,
    pub overrides: Overrides,
    pub data_plane: Option<DataPlaneDef>,
    pub control_plane: Option<ControlPlaneDef>,
    pub context: ContextDef,
    pub turns: Vec<Sample>,
    pub samples: Vec<Sample>,
    pub root: Option<StepDef>,
}

impl ScenarioDef {
    /// A scenario exposed by `control_plane.request_scenarios` without a YAML file.
    pub fn from_request_scenario(rs: &config::RequestScenario, cfg: &Config) -> Self {
        ScenarioDef {
            name: rs.name.clone(),
            display_name: rs.name.clone(),
            description: rs.description.clone(),
            source: format!(
                "{} (control_plane.request_scenarios.{})",
                cfg.source, rs.name
            ),
            tags: vec!["control-plane".into()],
            workload_weight: rs.workload_weight,
            repeat_count: 2,
            interval_ms: 50.0,
            interval_deviation_ms: 0.0,
            emit_metrics: true,
            emit_logs: true,
            redaction: "none".into(),
            mcp_server: None,
            goal: None,
            overrides: Overrides::default(),
            data_plane: None,
            control_plane: Some(ControlPlaneDef {
                template: Some(rs.template.clone()),
                ..Default::default()
            }),
            context: ContextDef {
                tenant: cfg.tenants.first().map(|t| t.key.clone()),
                agent: cfg.agents.first().cloned(),
                ..Default::default()
            },
            turns: Vec::new(),
            samples: Vec::new(),
            root: None,
        }
    }
}

/// Loads a scenario file. `name` is the file stem.
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
    let workload_weight = match r.get("workload_weight") {
        Some(n) => match read_f64(n, "workload_weight", d) {
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
        },
        None => 1.0,
    };
    let repeat_count = r
        .get("repeat_count")
        .and_then(|n| read_u64(n, "repeat_count", d))
        .unwrap_or(1)
        .min(u64::from(u32::MAX)) as u32;
    let interval_ms = r
        .get("interval_ms")
        .and_then(|n| read_interval(n, "interval_ms", d))
        .unwrap_or(500.0);
    let interval_deviation_ms = r
        .get("interval_deviation_ms")
        .and_then(|n| read_interval(n, "interval_deviation_ms", d))
        .unwrap_or(0.0);
    let emit_metrics = r
        .get("emit_metrics")
        .and_then(|n| read_bool(n, "emit_metrics", d))
        .unwrap_or(true);
    let emit_logs = r
        .get("emit_logs")
        .and_then(|n| read_bool(n, "emit_logs", d))
        .unwrap_or(true);
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
    let (turns, samples) = r
        .get("conversation")
        .map(|n| read_conversation(n, d))
        .unwrap_or_default();
    r.ignore("expected");
    let root_step = r.get("root").map(|n| read_step(n, "root", d));
    r.finish(d);

    let mut context = context.unwrap_or_default();
    let redaction_set = redaction_node
        .and_then(|n| read_str(n, "redaction_applied", d).map(|s| (n.pos, s)))
        .or(context.redaction_applied.clone());
    let redaction = match redaction_set {
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
    };
    if let Some((n, Some(key))) = &top_mcp {
        if cfg.mcp_server(key).is_none() {
            d.error(
                n.pos,
                "mcp_server",
                unknown(
                    "mcp_servers",
                    key,
                    cfg.mcp_servers.iter().map(|s| s.key.as_str()),
                ),
            );
        }
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
    if root_step.is_none() && !has_workflow && control_plane.is_none() {
        d.error(
            root.pos,
            "",
            "the scenario describes no telemetry: add `root:` (an explicit span tree), `data_plane.workflow` (a workflow from config.yaml) or `control_plane:`",
        );
    }
    Some(ScenarioDef {
        name: name.to_string(),
        display_name,
        description,
        source: d.file.to_string(),
        tags,
        workload_weight,
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
        turns,
        samples,
        root: root_step.flatten(),
    })
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

fn unknown<'a>(what: &str, key: &str, defined: impl Iterator<Item = &'a str>) -> String {
    let defined: Vec<&str> = defined.collect();
    let hint = crate::diag::closest(key, defined.iter().copied())
        .map(|c| format!(" (did you mean `{c}`?)"))
        .unwrap_or_default();
    format!(
        "unknown {what} key `{key}`{hint}; defined in config.yaml: {}",
        defined.join(", ")
    )
}

fn check_goal(goal: &str, pos: Pos, key: &str, cfg: &Config, d: &mut Diags) {
    if !GOALS.contains(&goal) && !cfg.error_templates.contains_key(goal) {
        d.error(
            pos,
            key,
            format!(
                "unknown simulation goal `{goal}`; valid: {}",
                GOALS.join(", ")
            ),
        );
    }
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
            if cfg.mcp_server(k).is_none() {
                d.error(
                    n.pos,
                    &r.sub("mcp_server_key"),
                    unknown(
                        "mcp_servers",
                        k,
                        cfg.mcp_servers.iter().map(|s| s.key.as_str()),
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
            if cfg.mcp_server(&m).is_none() {
                d.error(
                    n.pos,
                    "context.mcp_server",
                    unknown(
                        "mcp_servers",
                        &m,
                        cfg.mcp_servers.iter().map(|s| s.key.as_str()),
                    ),
                );
            }
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
    r.finish(d);
    c
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
    r.finish(d);
    dp
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
    config::read_attempts(n, path, d)
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
        c.policy_exception = config::read_exception(n, "control_plane.policy_exception", d);
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

/// `allowed` → `allowed`; `error` → `error`; `blocked` + reason → `blocked_<reason>`.
pub fn resolve_template_id(outcome: Option<&str>, reason: Option<&str>) -> Option<String> {
    match outcome? {
        "allowed" => Some("allowed".into()),
        "error" => Some("error".into()),
        "blocked" => Some(format!("blocked_{}", reason.unwrap_or("invalid_context"))),
        _ => None,
    }
}

fn read_conversation(node: &Node, d: &mut Diags) -> (Vec<Sample>, Vec<Sample>) {
    let Some(mut r) = MapReader::new(node, "conversation", d) else {
        return Default::default();
    };
    let turns = r.get("turns").map(|n| read_turns(n, d)).unwrap_or_default();
    let samples = r
        .get("samples")
        .map(|n| config::read_samples(n, "conversation.samples", d))
        .unwrap_or_default();
    r.finish(d);
    (turns, samples)
}

/// Turns as `{user_input, llm_response}` pairs or alternating `{role, text}` entries.
fn read_turns(node: &Node, d: &mut Diags) -> Vec<Sample> {
    let Kind::Seq(items) = &node.kind else {
        d.error(node.pos, "conversation.turns", "expected a list of turns");
        return Vec::new();
    };
    let role_style = items.iter().any(|it| it.get("role").is_some());
    if !role_style {
        return config::read_samples(node, "conversation.turns", d);
    }
    let mut out: Vec<Sample> = Vec::new();
    for (i, it) in items.iter().enumerate() {
        let p = format!("conversation.turns[{i}]");
        let Some(mut r) = MapReader::new(it, &p, d) else {
            continue;
        };
        let role = r
            .get("role")
            .and_then(|n| read_str(n, &r.sub("role"), d))
            .unwrap_or_default();
        let text = r
            .get_any(&["text", "content"])
            .and_then(|(k, n)| read_str(n, &r.sub(k), d))
            .unwrap_or_default();
        r.finish(d);
        match role.as_str() {
            "user" => out.push(Sample {
                user_input: text,
                ..Default::default()
            }),
            "assistant" | "agent" | "llm" => match out.last_mut() {
                Some(s) if s.llm_response.is_empty() => s.llm_response = text,
                _ => out.push(Sample {
                    llm_response: text,
                    ..Default::default()
                }),
            },
            other => d.error(
                it.pos,
                &format!("{p}.role"),
                format!("unknown role `{other}`; valid: user, assistant"),
            ),
        }
    }
    out
}

const STEP_KEYS_HELP: &str =
    "type, kind, latency, error, attributes, children, parallel, probability, count, retry";

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
    let latency = r.get("latency").and_then(|n| {
        distribution::read_latency(n, &r.sub("latency"), distribution::DEFAULT_VARIANCE, d)
    });
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
        .and_then(|n| distribution::read_count(n, &r.sub("count"), d))
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
    let mut children = Vec::new();
    if let Some(n) = r.get("children") {
        match &n.kind {
            Kind::Seq(items) => {
                for (i, it) in items.iter().enumerate() {
                    if let Some(c) = read_step(it, &format!("{path}.children[{i}]"), d) {
                        children.push(c);
                    }
                }
            }
            _ => d.error(
                n.pos,
                &r.sub("children"),
                format!("expected a list of span steps, found {}", describe(n)),
            ),
        }
    }
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
    })
}

fn read_error(node: &Node, path: &str, d: &mut Diags) -> ErrorDef {
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
    let mut rates = Vec::new();
    if let Some(n) = r.get("success_rate_per_attempt") {
        match &n.kind {
            Kind::Seq(items) => {
                for (i, it) in items.iter().enumerate() {
                    if let Some(p) =
                        read_prob(it, &format!("{path}.success_rate_per_attempt[{i}]"), d)
                    {
                        rates.push(p);
                    }
                }
            }
            _ => {
                if let Some(p) = read_prob(n, &r.sub("success_rate_per_attempt"), d) {
                    rates.push(p);
                }
            }
        }
    }
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

fn read_attributes(node: &Node, path: &str, d: &mut Diags) -> Vec<(String, AttrSpec, Pos)> {
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
                        distribution::read_categorical(v, &p, d).map(AttrSpec::Categorical)
                    }
                    "" => {
                        d.error(v.pos, &p, "an attribute value that is a mapping must name a `distribution` (categorical, uniform, normal, poisson, ...)");
                        None
                    }
                    _ => distribution::read_numeric(v, &p, d).map(|dist| {
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
            _ => crate::model::attr_from_node(v).map(AttrSpec::Literal),
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
