//! `config.yaml`: ids, latencies, tenants, agents, MCP servers, workflows,
//! control-plane templates, conversation samples, resource and LLM catalogue.
//!
//! Accepts the doc-era keys of the predecessor and their later aliases
//! (`realistic_scenarios`/`scenarios`, `happy_path_latency`/`latency_profiles.happy_path`).

use crate::diag::{Diags, Pos};
use crate::ids::IdTemplate;
use crate::model::distribution::Distribution;
use crate::model::AttrValue;
use crate::yaml::{
    join, read_bool, read_f64, read_non_negative, read_prob, read_str, read_str_list, read_u64,
    Kind, MapReader, Node,
};
use std::collections::BTreeMap;

#[derive(Clone, Debug)]
pub struct IdFormats {
    pub session_id: IdTemplate,
    pub conversation_id: IdTemplate,
    pub request_id: IdTemplate,
    pub mcp_tool_call_id: IdTemplate,
    pub enduser_pseudo_id: IdTemplate,
}

/// Mean latency (ms) per span key with relative variance; see `Distribution::MeanVariance`.
#[derive(Clone, Debug, Default)]
pub struct LatencyProfile {
    pub default_variance: f64,
    pub spans: BTreeMap<String, Distribution>,
}

/// Span keys a latency profile may set.
pub const LATENCY_KEYS: &[&str] = &[
    "a2a_orchestrate",
    "planner",
    "task_execute",
    "llm_call",
    "tools_recommend",
    "mcp_tool_execute",
    "response_compose",
    "request_validation",
    "response_validation",
    "validation_payload",
    "validation_policy",
    "augmentation",
    "rag_retrieve",
    "a2a_call",
];

/// Built-in means used when the config has no latency for a key.
pub fn default_latency_ms(key: &str) -> f64 {
    match key {
        "a2a_orchestrate" => 1500.0,
        "planner" => 250.0,
        "task_execute" => 80.0,
        "llm_call" => 400.0,
        "tools_recommend" => 50.0,
        "mcp_tool_execute" => 150.0,
        "response_compose" => 60.0,
        "request_validation" | "response_validation" => 40.0,
        "rag_retrieve" => 120.0,
        "a2a_call" => 300.0,
        _ => 20.0,
    }
}

impl LatencyProfile {
    pub fn get(&self, key: &str) -> Distribution {
        self.spans
            .get(key)
            .cloned()
            .unwrap_or(Distribution::MeanVariance {
                mean: default_latency_ms(key),
                variance: self.default_variance,
                spike_rate: 0.0,
                spike_multiplier: 1.0,
            })
    }
}

#[derive(Clone, Debug)]
pub struct ToolsRecommend {
    pub step_outcome: String,
    pub selection_strategy: String,
    pub selection_constraints: String,
    pub tools_selected_count: u64,
    pub selection_fallback_used: bool,
}

#[derive(Clone, Debug)]
pub struct McpRetry {
    pub retry_policy: String,
    pub latency_by_error_type: BTreeMap<String, f64>,
    pub backoff_base_ms: f64,
    pub backoff_multiplier: f64,
    pub backoff_jitter: f64,
}

/// One scripted attempt of an MCP retry template.
#[derive(Clone, Debug, PartialEq)]
pub struct AttemptSpec {
    pub success: bool,
    pub error_type: Option<String>,
    pub latency_mean_ms: Option<f64>,
}

#[derive(Clone, Debug)]
pub struct Tenant {
    pub key: String,
    pub id: String,
    pub display_name: Option<String>,
}

#[derive(Clone, Debug)]
pub struct McpTool {
    pub name: String,
    pub uuid: String,
}

#[derive(Clone, Debug)]
pub struct McpServer {
    pub key: String,
    pub uuid: String,
    pub description: String,
    pub tools: Vec<McpTool>,
}

#[derive(Clone, Debug, Default)]
pub struct ErrorTemplate {
    pub error_type: Option<String>,
    pub http_status_codes: Vec<i64>,
}

#[derive(Clone, Debug, Default)]
pub struct Sample {
    pub user_input: String,
    pub llm_response: String,
    pub user_input_redacted: Option<String>,
    pub llm_response_redacted: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct ValidationError {
    pub path: String,
    pub rule: String,
    pub code: String,
}

#[derive(Clone, Debug, Default)]
pub struct ExceptionSpec {
    pub type_name: String,
    pub message: String,
}

/// One step (root, payload, policy or augmentation) of a control-plane template.
#[derive(Clone, Debug, Default)]
pub struct CpStep {
    /// Un-prefixed attribute keys (`request.outcome`); the prefix is applied at compile time.
    pub attrs: Vec<(String, AttrValue)>,
    pub validation_errors: Vec<ValidationError>,
    pub exception: Option<ExceptionSpec>,
    pub error_rate: f64,
}

#[derive(Clone, Debug, Default)]
pub struct CpTemplate {
    pub root: CpStep,
    pub payload: Option<CpStep>,
    pub policy: Option<CpStep>,
    pub augmentation: Option<CpStep>,
}

#[derive(Clone, Debug)]
pub struct RequestScenario {
    pub name: String,
    pub template: String,
    pub description: String,
    pub workload_weight: f64,
    pub pos: Pos,
}

#[derive(Clone, Debug, Default)]
pub struct ControlPlane {
    /// `trace_flow_mode: single`: an allowed request is one trace instead of linked ones.
    pub single_trace: bool,
    pub latencies_ms: BTreeMap<String, f64>,
    pub default_data_plane_workflow: Option<String>,
    /// outcome (allowed / blocked / error) → parts to emit.
    pub trace_flow: BTreeMap<String, Vec<String>>,
    pub request_scenarios: Vec<RequestScenario>,
    pub request_templates: BTreeMap<String, CpTemplate>,
    pub response_templates: BTreeMap<String, CpTemplate>,
}

pub const TRACE_FLOW_PARTS: &[&str] = &["incoming_validation", "data_plane", "response_validation"];

#[derive(Clone, Debug, Default)]
pub struct ResourceConfig {
    /// The file the resource attributes came from (config.yaml or resource.yaml).
    pub source: Option<String>,
    pub schema_url: Option<String>,
    pub data_plane: Vec<(String, AttrValue)>,
    pub control_plane: Vec<(String, AttrValue)>,
}

#[derive(Clone, Debug)]
pub struct LlmModel {
    pub provider: String,
    pub model: String,
    pub weight: f64,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub source: String,
    pub id_formats: IdFormats,
    pub latency: LatencyProfile,
    pub latency_profiles: BTreeMap<String, LatencyProfile>,
    pub tools_recommend: ToolsRecommend,
    pub mcp_retry: McpRetry,
    pub mcp_retry_templates: BTreeMap<String, Vec<AttemptSpec>>,
    pub tenants: Vec<Tenant>,
    pub agents: Vec<String>,
    pub mcp_servers: Vec<McpServer>,
    /// division name → MCP server key.
    pub divisions: Vec<(String, String)>,
    pub error_templates: BTreeMap<String, ErrorTemplate>,
    pub workflow_templates: BTreeMap<String, Vec<String>>,
    pub control_plane: ControlPlane,
    pub conversation_samples: BTreeMap<String, Vec<Sample>>,
    pub resource: ResourceConfig,
    pub llm_models: Vec<LlmModel>,
}

impl Config {
    pub fn tenant(&self, key: &str) -> Option<&Tenant> {
        let k = key.to_ascii_lowercase();
        self.tenants
            .iter()
            .find(|t| t.key.to_ascii_lowercase() == k || t.id == key)
    }

    pub fn mcp_server(&self, key: &str) -> Option<&McpServer> {
        self.mcp_servers.iter().find(|s| s.key == key)
    }

    /// Resolves a division name or an MCP server key to a server key.
    pub fn division_server(&self, name: &str) -> Option<&str> {
        self.divisions
            .iter()
            .find(|(d, _)| d == name)
            .map(|(_, s)| s.as_str())
            .or_else(|| self.mcp_server(name).map(|s| s.key.as_str()))
    }

    pub fn latency_profile(&self, name: Option<&str>) -> &LatencyProfile {
        name.and_then(|n| self.latency_profiles.get(n))
            .unwrap_or(&self.latency)
    }
}

fn default_llm_models() -> Vec<LlmModel> {
    [
        ("openai", "gpt-4.1-mini", 4.0),
        ("openai", "gpt-4o", 2.0),
        ("anthropic", "claude-sonnet-4", 2.0),
        ("gcp.gemini", "gemini-2.5-flash", 1.0),
        ("aws.bedrock", "amazon.nova-pro-v1", 0.5),
    ]
    .into_iter()
    .map(|(p, m, w)| LlmModel {
        provider: p.into(),
        model: m.into(),
        weight: w,
    })
    .collect()
}

fn template(text: &str, pos: Pos, key: &str, d: &mut Diags) -> IdTemplate {
    IdTemplate::parse(text).unwrap_or_else(|e| {
        d.error(pos, key, e);
        IdTemplate::parse("invalid_{hex:8}").expect("literal template is valid")
    })
}

/// Loads `config.yaml`. `resource_yaml` is the optional `resource.yaml` beside it
/// (the predecessor kept resource attributes there), with its file name for errors.
pub fn load(
    root: &Node,
    resource_yaml: Option<(&Node, &mut Diags)>,
    d: &mut Diags,
) -> Option<Config> {
    let mut r = MapReader::new(root, "", d)?;

    let id_formats = read_id_formats(r.get("id_formats"), d);
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

    let tools_recommend = read_tools_recommend(r.get("tools_recommend"), d);
    let mcp_retry = read_mcp_retry(r.get("mcp_retry"), d);
    let mut mcp_retry_templates = BTreeMap::new();
    if let Some(n) = r.get("mcp_retry_templates") {
        if let Some(mut tr) = MapReader::new(n, "mcp_retry_templates", d) {
            let entries: Vec<(String, Node)> = tr.rest().cloned().collect();
            for (name, body) in entries {
                let path = join("mcp_retry_templates", &name);
                if let Some(a) = read_attempts(&body, &path, d) {
                    mcp_retry_templates.insert(name, a);
                }
            }
        }
    }

    let mut tenants = read_tenants(r.get("tenants"), d);
    if let Some(n) = r.get("tenant") {
        // The spec's single-tenant form: `tenant: {id: ...}`.
        if let Some(mut tr) = MapReader::new(n, "tenant", d) {
            let id = tr.get("id").and_then(|v| read_str(v, "tenant.id", d));
            let display_name = tr
                .get("display_name")
                .and_then(|v| read_str(v, "tenant.display_name", d));
            tr.finish(d);
            if let Some(id) = id {
                tenants.insert(
                    0,
                    Tenant {
                        key: "default".into(),
                        id,
                        display_name,
                    },
                );
            }
        }
    }
    let agents = read_agents(r.get("agents"), d);
    let mcp_servers = read_mcp_servers(r.get("mcp_servers"), d);

    let mut divisions = Vec::new();
    let mut error_templates = BTreeMap::new();
    let mut workflow_templates = BTreeMap::new();
    if let Some((k, n)) = r.get_any(&["realistic_scenarios", "scenarios"]) {
        read_realistic(
            n,
            k,
            &mut divisions,
            &mut error_templates,
            &mut workflow_templates,
            d,
        );
    }
    for (div, server) in &divisions {
        if !mcp_servers.iter().any(|s| &s.key == server) {
            d.error(
                root.get("realistic_scenarios")
                    .or(root.get("scenarios"))
                    .map_or(Pos::default(), |n| n.pos),
                &format!("realistic_scenarios.divisions.{div}"),
                format!(
                    "unknown mcp_servers key `{server}`; defined: {}",
                    keys_of(&mcp_servers)
                ),
            );
        }
    }

    let control_plane = r
        .get("control_plane")
        .map(|n| read_control_plane(n, d))
        .unwrap_or_default();
    let conversation_samples = read_samples_by_workflow(r.get("conversation_samples"), d);
    let mut resource = r
        .get("resource")
        .map(|n| read_resource(n, "resource", d))
        .unwrap_or_default();
    if let Some((node, rd)) = resource_yaml {
        let extra = read_resource(node, "", rd);
        if resource.data_plane.is_empty() && resource.control_plane.is_empty() {
            resource.source = Some(rd.file.to_string());
        }
        if resource.schema_url.is_none() {
            resource.schema_url = extra.schema_url;
        }
        if resource.data_plane.is_empty() {
            resource.data_plane = extra.data_plane;
        }
        if resource.control_plane.is_empty() {
            resource.control_plane = extra.control_plane;
        }
    }
    let llm_models = r
        .get("llm")
        .map(|n| read_llm(n, d))
        .unwrap_or_else(default_llm_models);
    for k in [
        "workload_schedules",
        "default_latency_profile",
        "mcp_tool_genai_payloads",
    ] {
        if let Some(n) = r.get(k) {
            d.warn(
                n.pos,
                k,
                "recognised but not supported by this version; ignored",
            );
        }
    }
    r.finish(d);

    Some(Config {
        source: d.file.to_string(),
        id_formats,
        latency,
        latency_profiles,
        tools_recommend,
        mcp_retry,
        mcp_retry_templates,
        tenants,
        agents,
        mcp_servers,
        divisions,
        error_templates,
        workflow_templates,
        control_plane,
        conversation_samples,
        resource,
        llm_models,
    })
}

fn keys_of(servers: &[McpServer]) -> String {
    servers
        .iter()
        .map(|s| s.key.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn read_id_formats(node: Option<&Node>, d: &mut Diags) -> IdFormats {
    let defaults = [
        ("session_id", "sess_{hex:12}"),
        ("conversation_id", "sess_{hex:12}"),
        ("request_id", "req_{hex:6}"),
        ("mcp_tool_call_id", "mcp_call_{hex:12}"),
        ("enduser_pseudo_id", "user_{hex:6}"),
    ];
    let mut vals: Vec<IdTemplate> = Vec::new();
    let mut reader = node.and_then(|n| MapReader::new(n, "id_formats", d));
    for (key, default) in defaults {
        let t = match reader.as_mut().and_then(|r| r.get(key)) {
            Some(n) => match read_str(n, &join("id_formats", key), d) {
                Some(s) => template(&s, n.pos, &join("id_formats", key), d),
                None => template(default, Pos::default(), key, d),
            },
            None => template(default, Pos::default(), key, d),
        };
        vals.push(t);
    }
    if let Some(r) = reader {
        r.finish(d);
    }
    let mut it = vals.into_iter();
    let mut next = || it.next().expect("five templates");
    IdFormats {
        session_id: next(),
        conversation_id: next(),
        request_id: next(),
        mcp_tool_call_id: next(),
        enduser_pseudo_id: next(),
    }
}

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
        return crate::model::distribution::read_latency(node, path, default_variance, d);
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

fn read_tools_recommend(node: Option<&Node>, d: &mut Diags) -> ToolsRecommend {
    let mut t = ToolsRecommend {
        step_outcome: "success".into(),
        selection_strategy: "default".into(),
        selection_constraints: "none".into(),
        tools_selected_count: 1,
        selection_fallback_used: false,
    };
    let Some(mut r) = node.and_then(|n| MapReader::new(n, "tools_recommend", d)) else {
        return t;
    };
    if let Some(n) = r.get("step_outcome") {
        t.step_outcome = read_str(n, &r.sub("step_outcome"), d).unwrap_or(t.step_outcome);
    }
    if let Some(n) = r.get("selection_strategy") {
        t.selection_strategy =
            read_str(n, &r.sub("selection_strategy"), d).unwrap_or(t.selection_strategy);
    }
    if let Some(n) = r.get("selection_constraints") {
        t.selection_constraints =
            read_str(n, &r.sub("selection_constraints"), d).unwrap_or(t.selection_constraints);
    }
    if let Some(n) = r.get("tools_selected_count") {
        t.tools_selected_count = read_u64(n, &r.sub("tools_selected_count"), d).unwrap_or(1);
    }
    if let Some(n) = r.get("selection_fallback_used") {
        t.selection_fallback_used =
            read_bool(n, &r.sub("selection_fallback_used"), d).unwrap_or(false);
    }
    r.finish(d);
    t
}

fn read_mcp_retry(node: Option<&Node>, d: &mut Diags) -> McpRetry {
    let mut m = McpRetry {
        retry_policy: "exponential".into(),
        latency_by_error_type: BTreeMap::new(),
        backoff_base_ms: 100.0,
        backoff_multiplier: 2.0,
        backoff_jitter: 0.2,
    };
    let Some(mut r) = node.and_then(|n| MapReader::new(n, "mcp_retry", d)) else {
        return m;
    };
    if let Some(n) = r.get("retry_policy") {
        m.retry_policy = read_str(n, &r.sub("retry_policy"), d).unwrap_or(m.retry_policy);
    }
    if let Some(n) = r.get("latency_by_error_type") {
        let p = r.sub("latency_by_error_type");
        if let Some(mut lr) = MapReader::new(n, &p, d) {
            let entries: Vec<(String, Node)> = lr.rest().cloned().collect();
            for (k, v) in entries {
                if let Some(ms) = read_non_negative(&v, &join(&p, &k), d) {
                    m.latency_by_error_type.insert(k, ms);
                }
            }
        }
    }
    for (key, slot) in [
        ("backoff_base_ms", &mut m.backoff_base_ms),
        ("backoff_multiplier", &mut m.backoff_multiplier),
        ("backoff_jitter", &mut m.backoff_jitter),
    ] {
        if let Some(n) = r.get(key) {
            *slot = read_non_negative(n, &r.sub(key), d).unwrap_or(*slot);
        }
    }
    r.finish(d);
    m
}

/// Attempts: `{attempts: [...]}`, a bare list, or `{template: name}` (resolved by the caller).
pub fn read_attempts(node: &Node, path: &str, d: &mut Diags) -> Option<Vec<AttemptSpec>> {
    let list = match &node.kind {
        Kind::Seq(_) => node,
        Kind::Map(_) => {
            let mut r = MapReader::new(node, path, d)?;
            let l = r.get("attempts");
            r.finish(d);
            l?
        }
        _ => {
            d.error(
                node.pos,
                path,
                "expected `attempts: [{outcome: success|failure, error_type, latency_mean_ms}]`",
            );
            return None;
        }
    };
    let Kind::Seq(items) = &list.kind else {
        d.error(list.pos, path, "`attempts` must be a list");
        return None;
    };
    let mut out = Vec::new();
    for (i, it) in items.iter().enumerate() {
        let p = format!("{path}.attempts[{i}]");
        let Some(mut r) = MapReader::new(it, &p, d) else {
            continue;
        };
        let outcome = r
            .get("outcome")
            .and_then(|n| read_str(n, &r.sub("outcome"), d))
            .unwrap_or_else(|| "success".into());
        let success = match outcome.as_str() {
            "success" | "ok" => true,
            "failure" | "fail" | "error" => false,
            other => {
                d.error(
                    it.pos,
                    &r.sub("outcome"),
                    format!("unknown outcome `{other}`; valid: success, failure"),
                );
                true
            }
        };
        let error_type = r
            .get("error_type")
            .and_then(|n| read_str(n, &r.sub("error_type"), d));
        let latency_mean_ms = r
            .get("latency_mean_ms")
            .and_then(|n| read_non_negative(n, &r.sub("latency_mean_ms"), d));
        r.finish(d);
        out.push(AttemptSpec {
            success,
            error_type,
            latency_mean_ms,
        });
    }
    if out.is_empty() {
        // The predecessor treats an empty list as one successful attempt.
        out.push(AttemptSpec {
            success: true,
            error_type: None,
            latency_mean_ms: None,
        });
    }
    Some(out)
}

fn read_tenants(node: Option<&Node>, d: &mut Diags) -> Vec<Tenant> {
    let mut out = Vec::new();
    let Some(mut r) = node.and_then(|n| MapReader::new(n, "tenants", d)) else {
        return out;
    };
    let entries: Vec<(String, Node)> = r.rest().cloned().collect();
    for (key, body) in entries {
        let p = join("tenants", &key);
        let Some(mut tr) = MapReader::new(&body, &p, d) else {
            continue;
        };
        let id = tr.get("id").and_then(|n| read_str(n, &tr.sub("id"), d));
        let display_name = tr
            .get("display_name")
            .and_then(|n| read_str(n, &tr.sub("display_name"), d));
        tr.finish(d);
        match id {
            Some(id) => out.push(Tenant {
                key,
                id,
                display_name,
            }),
            None => d.error(body.pos, &p, "tenant needs an `id`"),
        }
    }
    out
}

fn read_agents(node: Option<&Node>, d: &mut Diags) -> Vec<String> {
    let Some(node) = node else {
        return Vec::new();
    };
    let Kind::Seq(items) = &node.kind else {
        d.error(node.pos, "agents", "expected a list of `{id: ...}`");
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, it) in items.iter().enumerate() {
        let p = format!("agents[{i}]");
        if let Some(s) = it.as_str() {
            out.push(s.to_string());
            continue;
        }
        let Some(mut r) = MapReader::new(it, &p, d) else {
            continue;
        };
        r.ignore("description");
        r.ignore("name");
        match r.get("id").and_then(|n| read_str(n, &r.sub("id"), d)) {
            Some(id) => out.push(id),
            None => d.error(it.pos, &p, "agent needs an `id`"),
        }
        r.finish(d);
    }
    out
}

fn read_mcp_servers(node: Option<&Node>, d: &mut Diags) -> Vec<McpServer> {
    let mut out = Vec::new();
    let Some(mut r) = node.and_then(|n| MapReader::new(n, "mcp_servers", d)) else {
        return out;
    };
    let entries: Vec<(String, Node)> = r.rest().cloned().collect();
    for (key, body) in entries {
        let p = join("mcp_servers", &key);
        let Some(mut sr) = MapReader::new(&body, &p, d) else {
            continue;
        };
        let uuid = sr
            .get_any(&["mcp_server_uuid", "uuid"])
            .and_then(|(k, n)| read_str(n, &sr.sub(k), d));
        let description = sr
            .get("description")
            .and_then(|n| read_str(n, &sr.sub("description"), d))
            .unwrap_or_default();
        let mut tools = Vec::new();
        if let Some(tn) = sr.get("tools") {
            match &tn.kind {
                Kind::Seq(items) => {
                    for (i, it) in items.iter().enumerate() {
                        let tp = format!("{p}.tools[{i}]");
                        let Some(mut tr) = MapReader::new(it, &tp, d) else {
                            continue;
                        };
                        let name = tr.get("name").and_then(|n| read_str(n, &tr.sub("name"), d));
                        let tuuid = tr
                            .get_any(&["tool_uuid", "uuid"])
                            .and_then(|(k, n)| read_str(n, &tr.sub(k), d));
                        tr.ignore("description");
                        tr.finish(d);
                        match (name, tuuid) {
                            (Some(name), Some(uuid)) => tools.push(McpTool { name, uuid }),
                            _ => d.error(it.pos, &tp, "tool needs `name` and `tool_uuid`"),
                        }
                    }
                }
                _ => d.error(
                    tn.pos,
                    &sr.sub("tools"),
                    "expected a list of `{name, tool_uuid}`",
                ),
            }
        }
        sr.finish(d);
        match uuid {
            Some(uuid) => out.push(McpServer {
                key,
                uuid,
                description,
                tools,
            }),
            None => d.error(body.pos, &p, "MCP server needs `mcp_server_uuid`"),
        }
    }
    out
}

fn read_realistic(
    node: &Node,
    path: &str,
    divisions: &mut Vec<(String, String)>,
    error_templates: &mut BTreeMap<String, ErrorTemplate>,
    workflows: &mut BTreeMap<String, Vec<String>>,
    d: &mut Diags,
) {
    let Some(mut r) = MapReader::new(node, path, d) else {
        return;
    };
    if let Some(n) = r.get("divisions") {
        let p = r.sub("divisions");
        if let Some(mut dr) = MapReader::new(n, &p, d) {
            let entries: Vec<(String, Node)> = dr.rest().cloned().collect();
            for (k, v) in entries {
                if let Some(s) = read_str(&v, &join(&p, &k), d) {
                    divisions.push((k, s));
                }
            }
        }
    }
    if let Some(n) = r.get("error_templates") {
        let p = r.sub("error_templates");
        if let Some(mut er) = MapReader::new(n, &p, d) {
            let entries: Vec<(String, Node)> = er.rest().cloned().collect();
            for (goal, body) in entries {
                let gp = join(&p, &goal);
                let Some(mut gr) = MapReader::new(&body, &gp, d) else {
                    continue;
                };
                let error_type = gr
                    .get("error_type")
                    .and_then(|n| read_str(n, &gr.sub("error_type"), d));
                let mut codes = Vec::new();
                if let Some(cn) = gr.get("http_status_codes") {
                    match &cn.kind {
                        Kind::Seq(items) => {
                            for it in items {
                                match it.kind {
                                    Kind::Int(c) if (100..600).contains(&c) => codes.push(c),
                                    _ => d.error(
                                        it.pos,
                                        &gr.sub("http_status_codes"),
                                        "expected HTTP status codes (100–599)",
                                    ),
                                }
                            }
                        }
                        _ => d.error(
                            cn.pos,
                            &gr.sub("http_status_codes"),
                            "expected a list of HTTP status codes",
                        ),
                    }
                }
                gr.finish(d);
                error_templates.insert(
                    goal,
                    ErrorTemplate {
                        error_type,
                        http_status_codes: codes,
                    },
                );
            }
        }
    }
    if let Some(n) = r.get("workflow_templates") {
        let p = r.sub("workflow_templates");
        if let Some(mut wr) = MapReader::new(n, &p, d) {
            let entries: Vec<(String, Node)> = wr.rest().cloned().collect();
            for (name, body) in entries {
                let wp = join(&p, &name);
                let steps = match body.get("steps") {
                    Some(s) => read_str_list(s, &format!("{wp}.steps"), d),
                    None => read_str_list(&body, &wp, d),
                };
                if steps.is_empty() {
                    d.error(body.pos, &wp, "a workflow needs at least one step");
                }
                workflows.insert(name, steps);
            }
        }
    }
    r.finish(d);
}

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

fn read_control_plane(node: &Node, d: &mut Diags) -> ControlPlane {
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
    cp.trace_flow = [
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
    if let Some(n) = r.get("trace_flow") {
        let p = r.sub("trace_flow");
        if let Some(mut tr) = MapReader::new(n, &p, d) {
            for outcome in ["allowed", "blocked", "error"] {
                if let Some(v) = tr.get(outcome) {
                    let parts = read_str_list(v, &join(&p, outcome), d);
                    for part in &parts {
                        if !TRACE_FLOW_PARTS.contains(&part.as_str()) {
                            d.error(
                                v.pos,
                                &join(&p, outcome),
                                format!(
                                    "unknown part `{part}`; valid: {}",
                                    TRACE_FLOW_PARTS.join(", ")
                                ),
                            );
                        }
                    }
                    cp.trace_flow.insert(outcome.to_string(), parts);
                }
            }
            tr.finish(d);
        }
    }
    if let Some(n) = r.get("trace_flow_mode") {
        match n.as_str() {
            Some("single") => cp.single_trace = true,
            Some("separate") => cp.single_trace = false,
            _ => d.error(n.pos, "control_plane.trace_flow_mode", format!("expected `separate` (one trace per part, linked) or `single` (one trace per request), found {}", crate::yaml::describe(n))),
        }
    }
    if let Some(n) = r.get("request_scenarios") {
        let p = r.sub("request_scenarios");
        if let Some(mut sr) = MapReader::new(n, &p, d) {
            let entries: Vec<(String, Node)> = sr.rest().cloned().collect();
            for (name, body) in entries {
                let np = join(&p, &name);
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
                    Some(template) => cp.request_scenarios.push(RequestScenario {
                        name,
                        template,
                        description,
                        workload_weight,
                        pos: body.pos,
                    }),
                    None => d.error(body.pos, &np, "request scenario needs a `template`"),
                }
            }
        }
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
    for (id, body) in entries {
        if id == "_defaults" {
            continue;
        }
        let merged = match defaults {
            Some(def) => deep_merge(def, body),
            None => body.clone(),
        };
        if let Some(t) = read_cp_template(&merged, &join(path, id), d) {
            out.insert(id.to_ascii_lowercase(), t);
        }
    }
    out
}

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

fn read_cp_step(node: &Node, path: &str, d: &mut Diags) -> Option<CpStep> {
    let mut r = MapReader::new(node, path, d)?;
    let mut step = CpStep::default();
    if let Some(n) = r.get("validation_errors") {
        let p = r.sub("validation_errors");
        if let Kind::Seq(items) = &n.kind {
            for (i, it) in items.iter().enumerate() {
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
    for (k, v) in rest {
        match crate::model::attr_from_node(&v) {
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

/// `conversation_samples: {<workflow>: {samples: [...]}}`.
fn read_samples_by_workflow(node: Option<&Node>, d: &mut Diags) -> BTreeMap<String, Vec<Sample>> {
    let mut out = BTreeMap::new();
    let Some(mut r) = node.and_then(|n| MapReader::new(n, "conversation_samples", d)) else {
        return out;
    };
    let entries: Vec<(String, Node)> = r.rest().cloned().collect();
    for (wf, body) in entries {
        let p = join("conversation_samples", &wf);
        let Some(mut wr) = MapReader::new(&body, &p, d) else {
            continue;
        };
        wr.ignore("status_enum");
        wr.ignore("description");
        if let Some(s) = wr.get("samples") {
            out.insert(wf.clone(), read_samples(s, &wr.sub("samples"), d));
        }
        wr.finish(d);
    }
    out
}

pub fn read_samples(node: &Node, path: &str, d: &mut Diags) -> Vec<Sample> {
    let Kind::Seq(items) = &node.kind else {
        d.error(
            node.pos,
            path,
            "expected a list of `{user_input, llm_response}`",
        );
        return Vec::new();
    };
    items
        .iter()
        .enumerate()
        .filter_map(|(i, it)| read_sample(it, &format!("{path}[{i}]"), d))
        .collect()
}

pub fn read_sample(node: &Node, path: &str, d: &mut Diags) -> Option<Sample> {
    let mut r = MapReader::new(node, path, d)?;
    let user = r
        .get("user_input")
        .and_then(|n| read_str(n, &r.sub("user_input"), d));
    let reply = r
        .get_any(&["llm_response", "agent_response"])
        .and_then(|(k, n)| read_str(n, &r.sub(k), d));
    let user_red = r
        .get("user_input_redacted")
        .and_then(|n| read_str(n, &r.sub("user_input_redacted"), d));
    let reply_red = r
        .get_any(&["llm_response_redacted", "agent_response_redacted"])
        .and_then(|(k, n)| read_str(n, &r.sub(k), d));
    r.finish(d);
    if user.is_none() && reply.is_none() {
        d.error(
            node.pos,
            path,
            "a sample needs `user_input` and `llm_response`",
        );
        return None;
    }
    Some(Sample {
        user_input: user.unwrap_or_default(),
        llm_response: reply.unwrap_or_default(),
        user_input_redacted: user_red,
        llm_response_redacted: reply_red,
    })
}

fn read_attr_map(node: &Node, path: &str, d: &mut Diags) -> Vec<(String, AttrValue)> {
    let mut out = Vec::new();
    let Some(entries) = node.as_map() else {
        d.error(
            node.pos,
            path,
            "expected a mapping of attribute name → value",
        );
        return out;
    };
    for (k, v) in entries {
        match crate::model::attr_from_node(v) {
            Some(val) => out.push((k.clone(), val)),
            None => d.error(v.pos, &join(path, k), "attribute values must be scalars"),
        }
    }
    out
}

/// Resource section: `{schema_url, attributes}`, `{schema_url, control_plane: {attributes}, data_plane: {attributes}}`,
/// or flat attributes beside `schema_url`.
fn read_resource(node: &Node, path: &str, d: &mut Diags) -> ResourceConfig {
    let mut res = ResourceConfig::default();
    let Some(mut r) = MapReader::new(node, path, d) else {
        return res;
    };
    res.schema_url = r
        .get("schema_url")
        .and_then(|n| read_str(n, &r.sub("schema_url"), d));
    let mut shared = Vec::new();
    if let Some(n) = r.get("attributes") {
        shared = read_attr_map(n, &r.sub("attributes"), d);
    }
    for (plane, slot) in [
        ("data_plane", &mut res.data_plane),
        ("control_plane", &mut res.control_plane),
    ] {
        if let Some(n) = r.get(plane) {
            let p = r.sub(plane);
            if let Some(mut pr) = MapReader::new(n, &p, d) {
                if let Some(a) = pr.get("attributes") {
                    *slot = read_attr_map(a, &pr.sub("attributes"), d);
                }
                pr.finish(d);
            }
        }
    }
    let flat: Vec<(String, Node)> = r.rest().cloned().collect();
    for (k, v) in flat {
        match crate::model::attr_from_node(&v) {
            Some(val) => shared.push((k, val)),
            None => d.error(
                v.pos,
                &join(path, &k),
                "resource attribute values must be scalars",
            ),
        }
    }
    for slot in [&mut res.data_plane, &mut res.control_plane] {
        for (k, v) in &shared {
            if !slot.iter().any(|(sk, _)| sk == k) {
                slot.push((k.clone(), v.clone()));
            }
        }
    }
    res
}

/// `llm: {models: [{provider, model, weight}]}`: the catalogue LLM spans draw from.
fn read_llm(node: &Node, d: &mut Diags) -> Vec<LlmModel> {
    let mut out = Vec::new();
    let Some(mut r) = MapReader::new(node, "llm", d) else {
        return default_llm_models();
    };
    if let Some(n) = r.get("models") {
        match &n.kind {
            Kind::Seq(items) => {
                for (i, it) in items.iter().enumerate() {
                    let p = format!("llm.models[{i}]");
                    let Some(mut mr) = MapReader::new(it, &p, d) else {
                        continue;
                    };
                    let provider = mr
                        .get("provider")
                        .and_then(|n| read_str(n, &mr.sub("provider"), d));
                    let model = mr
                        .get("model")
                        .and_then(|n| read_str(n, &mr.sub("model"), d));
                    let weight = mr
                        .get("weight")
                        .and_then(|n| read_non_negative(n, &mr.sub("weight"), d))
                        .unwrap_or(1.0);
                    mr.finish(d);
                    match (provider, model) {
                        (Some(provider), Some(model)) => out.push(LlmModel {
                            provider,
                            model,
                            weight,
                        }),
                        _ => d.error(it.pos, &p, "each model needs `provider` and `model`"),
                    }
                }
            }
            _ => d.error(
                n.pos,
                "llm.models",
                "expected a list of `{provider, model, weight}`",
            ),
        }
    }
    r.finish(d);
    if out.iter().all(|m| m.weight <= 0.0) {
        d.error(
            node.pos,
            "llm.models",
            "needs at least one model with weight > 0",
        );
        return default_llm_models();
    }
    out
}
