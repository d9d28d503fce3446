//! The types of `config.yaml` (plus the optional `resource.yaml` beside it): ids,
//! latencies, tenants, agents, MCP servers, services, workflows, control-plane
//! templates, conversation samples, resource and LLM catalogue.
//!
//! Plain data and lookups only; `model::read::config` reads them from YAML
//! (including the doc-era keys of the predecessor and their later aliases).

use crate::diag::Pos;
use crate::ids::IdTemplate;
use crate::model::distribution::Distribution;
use crate::model::AttrValue;
use std::collections::BTreeMap;

// Readers that used to live here; re-exported so existing paths keep working.
pub use crate::model::read::config::control_plane::{deep_merge, read_exception};
pub use crate::model::read::config::{load, read_attempts};
pub use crate::model::read::samples::{read_sample, read_samples};

/// Templates of the generated ids (`id_formats`).
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
    /// The key's distribution, or the built-in mean with this profile's variance.
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

/// Attribute values of the tools-recommend span (`tools_recommend`).
#[derive(Clone, Debug)]
pub struct ToolsRecommend {
    pub step_outcome: String,
    pub selection_strategy: String,
    pub selection_constraints: String,
    pub tools_selected_count: u64,
    pub selection_fallback_used: bool,
}

/// Retry policy of MCP tool calls (`mcp_retry`).
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

/// One tenant: its config key, id and optional display name.
#[derive(Clone, Debug)]
pub struct Tenant {
    pub key: String,
    pub id: String,
    pub display_name: Option<String>,
}

/// One tool of an MCP server.
#[derive(Clone, Debug)]
pub struct McpTool {
    pub name: String,
    pub uuid: String,
}

/// One MCP server (`mcp_servers.<key>`) and its tools.
#[derive(Clone, Debug)]
pub struct McpServer {
    pub key: String,
    pub uuid: String,
    pub description: String,
    pub tools: Vec<McpTool>,
}

/// How a simulation goal fails (`realistic_scenarios.error_templates.<goal>`).
#[derive(Clone, Debug, Default)]
pub struct ErrorTemplate {
    pub error_type: Option<String>,
    pub http_status_codes: Vec<i64>,
}

/// One conversation sample: user input and reply, with optional redacted forms.
#[derive(Clone, Debug, Default)]
pub struct Sample {
    pub user_input: String,
    pub llm_response: String,
    pub user_input_redacted: Option<String>,
    pub llm_response_redacted: Option<String>,
}

/// One validation error a control-plane step reports.
#[derive(Clone, Debug, Default)]
pub struct ValidationError {
    pub path: String,
    pub rule: String,
    pub code: String,
}

/// An exception event: type and message.
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

/// A control-plane validation template: the root step and optional sub-steps.
#[derive(Clone, Debug, Default)]
pub struct CpTemplate {
    pub root: CpStep,
    pub payload: Option<CpStep>,
    pub policy: Option<CpStep>,
    pub augmentation: Option<CpStep>,
}

/// A scenario declared in `control_plane.request_scenarios` (no YAML file of its own).
#[derive(Clone, Debug)]
pub struct RequestScenario {
    pub name: String,
    pub template: String,
    pub description: String,
    pub workload_weight: f64,
    pub pos: Pos,
}

/// The `control_plane` section: latencies, trace flow, request scenarios, templates.
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

/// Parts a `control_plane.trace_flow` outcome may list.
pub const TRACE_FLOW_PARTS: &[&str] = &["incoming_validation", "data_plane", "response_validation"];

/// Resource attributes per plane, from `resource:` or `resource.yaml`.
#[derive(Clone, Debug, Default)]
pub struct ResourceConfig {
    /// The file the resource attributes came from (config.yaml or resource.yaml).
    pub source: Option<String>,
    pub schema_url: Option<String>,
    pub data_plane: Vec<(String, AttrValue)>,
    pub control_plane: Vec<(String, AttrValue)>,
}

/// One service declared under `services:`; the map key is its `service.name`.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceDef {
    pub name: String,
    /// Resource attributes of the service, in file order (never `service.name`).
    pub attributes: Vec<(String, AttrValue)>,
    /// Where the service's key is in config.yaml.
    pub pos: Pos,
}

/// One model of the LLM catalogue, with its relative weight.
#[derive(Clone, Debug)]
pub struct LlmModel {
    pub provider: String,
    pub model: String,
    pub weight: f64,
}

/// A loaded `config.yaml`.
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
    /// `services:` in file order; empty when the config declares none.
    pub services: Vec<ServiceDef>,
    pub llm_models: Vec<LlmModel>,
}

impl Config {
    /// A tenant by key (any case) or id.
    pub fn tenant(&self, key: &str) -> Option<&Tenant> {
        let k = key.to_ascii_lowercase();
        self.tenants
            .iter()
            .find(|t| t.key.to_ascii_lowercase() == k || t.id == key)
    }

    pub fn mcp_server(&self, key: &str) -> Option<&McpServer> {
        self.mcp_servers.iter().find(|s| s.key == key)
    }

    /// A service declared under `services:`, by name.
    pub fn service(&self, name: &str) -> Option<&ServiceDef> {
        self.services.iter().find(|s| s.name == name)
    }

    /// Resolves a division name or an MCP server key to a server key.
    pub fn division_server(&self, name: &str) -> Option<&str> {
        self.divisions
            .iter()
            .find(|(d, _)| d == name)
            .map(|(_, s)| s.as_str())
            .or_else(|| self.mcp_server(name).map(|s| s.key.as_str()))
    }

    /// The named latency profile, or the default (`happy_path`) one.
    pub fn latency_profile(&self, name: Option<&str>) -> &LatencyProfile {
        name.and_then(|n| self.latency_profiles.get(n))
            .unwrap_or(&self.latency)
    }
}

/// The LLM catalogue used when config.yaml has no `llm:` section.
pub(crate) fn default_llm_models() -> Vec<LlmModel> {
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
