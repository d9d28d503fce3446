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

/// Names of the built-in workflow steps; any other step names an MCP tool.
pub const WORKFLOW_STEPS: &[&str] = &[
    "planner",
    "planning",
    "task",
    "task_execute",
    "task.execute",
    "llm",
    "llm_call",
    "tools_recommend",
    "tools.recommend",
    "response_compose",
    "response",
    "response.compose",
];

/// Templates of the generated ids (`id_formats`).
#[derive(Clone, Debug)]
pub struct IdFormats {
    /// `<prefix>.session.id` (also `gen_ai.conversation.id`); default `sess_{hex:12}`.
    pub session_id: IdTemplate,
    /// Read for compatibility only: `gen_ai.conversation.id` carries the session id.
    pub conversation_id: IdTemplate,
    /// `<prefix>.request.id`; default `req_{hex:6}`.
    pub request_id: IdTemplate,
    /// `<prefix>.mcp.tool.call.id` of each tool call; default `mcp_call_{hex:12}`.
    pub mcp_tool_call_id: IdTemplate,
    /// `<prefix>.enduser.pseudo.id`; default `user_{hex:6}`.
    pub enduser_pseudo_id: IdTemplate,
}

/// Mean latency (ms) per span key with relative variance; see `Distribution::MeanVariance`.
#[derive(Clone, Debug, Default)]
pub struct LatencyProfile {
    /// Relative variance of the keys the profile leaves out, and of bare means.
    pub default_variance: f64,
    /// Latency per span key (see [`LATENCY_KEYS`]), in ms.
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
    /// `<prefix>.step.outcome`; default `success`.
    pub step_outcome: String,
    /// `<prefix>.mcp.selection.strategy`; default `default`.
    pub selection_strategy: String,
    /// `<prefix>.mcp.selection.constraints`; default `none`.
    pub selection_constraints: String,
    /// `<prefix>.mcp.tools.selected.count`; default 1.
    pub tools_selected_count: u64,
    /// `<prefix>.mcp.selection.fallback.used`; default false.
    pub selection_fallback_used: bool,
}

/// Retry policy of MCP tool calls (`mcp_retry`).
#[derive(Clone, Debug)]
pub struct McpRetry {
    /// `<prefix>.retry.policy` of retried tool calls; default `exponential`.
    pub retry_policy: String,
    /// Mean duration in ms of a failed attempt, by its `error.type`.
    pub latency_by_error_type: BTreeMap<String, f64>,
    /// Gap before the second attempt, in ms (default 100).
    pub backoff_base_ms: f64,
    /// Growth factor of the gap from one attempt to the next (default 2).
    pub backoff_multiplier: f64,
    /// How far each gap varies at random, as a fraction (default 0.2: ±20%).
    pub backoff_jitter: f64,
}

/// One scripted attempt of an MCP retry template.
#[derive(Clone, Debug, PartialEq)]
pub struct AttemptSpec {
    /// Whether the attempt succeeds.
    pub success: bool,
    /// `error.type` of a failed attempt; `None`: `timeout`.
    pub error_type: Option<String>,
    /// Mean duration in ms (±20%); `None`: by error type, else the profile's tool-call latency.
    pub latency_mean_ms: Option<f64>,
}

/// One tenant: its config key, id and optional display name.
#[derive(Clone, Debug)]
pub struct Tenant {
    /// The key scenarios name it by (`context.tenant`).
    pub key: String,
    /// `<prefix>.tenant.id`.
    pub id: String,
    /// Human-readable name, as written; not emitted.
    pub display_name: Option<String>,
}

/// One tool of an MCP server.
#[derive(Clone, Debug)]
pub struct McpTool {
    /// `gen_ai.tool.name`.
    pub name: String,
    /// `<prefix>.mcp.tool.uuid` (`tool_uuid`).
    pub uuid: String,
}

/// One MCP server (`mcp_servers.<key>`) and its tools.
#[derive(Clone, Debug)]
pub struct McpServer {
    /// Its key under `mcp_servers:`, which scenarios and divisions name.
    pub key: String,
    /// `<prefix>.mcp.server.uuid` (`mcp_server_uuid`).
    pub uuid: String,
    /// As written; not emitted.
    pub description: String,
    /// `server.address` and `server.port` of its MCP requests (`address: host[:port]`;
    /// default `mcp-<key>:443`).
    pub address: (String, u16),
    /// The tools it serves, in file order.
    pub tools: Vec<McpTool>,
}

/// How a simulation goal fails (`realistic_scenarios.error_templates.<goal>`).
#[derive(Clone, Debug, Default)]
pub struct ErrorTemplate {
    /// The failure's `error.type`, instead of the goal's built-in one.
    pub error_type: Option<String>,
    /// `http.response.status_code` values of `4xx_invalid_arguments` (one picked per failure;
    /// default 400).
    pub http_status_codes: Vec<i64>,
}

/// One conversation sample: user input and reply, with optional redacted forms.
#[derive(Clone, Debug, Default)]
pub struct Sample {
    /// The user's message.
    pub user_input: String,
    /// The agent's reply (`llm_response` or `agent_response`).
    pub llm_response: String,
    /// A redacted form of the message to emit instead of masking it.
    pub user_input_redacted: Option<String>,
    /// A redacted form of the reply to emit instead of masking it.
    pub llm_response_redacted: Option<String>,
    /// A turn's own workflow steps (`conversation.turns[].steps`), replacing the scenario's.
    pub steps: Option<Vec<String>>,
}

/// One validation error a control-plane step reports.
#[derive(Clone, Debug, Default)]
pub struct ValidationError {
    /// `<prefix>.validation.error.path`: the request field that failed.
    pub path: String,
    /// `<prefix>.validation.error.rule`: the rule it broke.
    pub rule: String,
    /// `<prefix>.validation.error.code`.
    pub code: String,
}

/// An exception event: type and message.
#[derive(Clone, Debug, Default)]
pub struct ExceptionSpec {
    /// `exception.type`.
    pub type_name: String,
    /// `exception.message` (may be empty).
    pub message: String,
}

/// One step (root, payload, policy or augmentation) of a control-plane template.
#[derive(Clone, Debug, Default)]
pub struct CpStep {
    /// Un-prefixed attribute keys (`request.outcome`); the prefix is applied at compile time.
    pub attrs: Vec<(String, AttrValue)>,
    /// Each one a `<prefix>.validation.error` event on the step's span.
    pub validation_errors: Vec<ValidationError>,
    /// The exception event the span records when it fails.
    pub exception: Option<ExceptionSpec>,
    /// Chance (0–1) that the step fails (the template's `error_rate.<step>`).
    pub error_rate: f64,
}

/// A control-plane validation template: the root step and optional sub-steps.
#[derive(Clone, Debug, Default)]
pub struct CpTemplate {
    /// The validation span itself.
    pub root: CpStep,
    /// `payload`: the payload validation step.
    pub payload: Option<CpStep>,
    /// `policy`: the policy check; `None` too when `include_policy: false`.
    pub policy: Option<CpStep>,
    /// `augmentation`: the augmentation step; `None` too when `include_augmentation: false`.
    pub augmentation: Option<CpStep>,
}

/// A scenario declared in `control_plane.request_scenarios` (no YAML file of its own).
#[derive(Clone, Debug)]
pub struct RequestScenario {
    /// Its key under `request_scenarios`: the scenario's name.
    pub name: String,
    /// The `request_validation_templates` id the scenario runs.
    pub template: String,
    /// Shown by `otelsim list`.
    pub description: String,
    /// Relative weight in `run`'s random mix (default 1).
    pub workload_weight: f64,
    /// Where it is declared, for diagnostics.
    pub pos: Pos,
}

/// The `control_plane` section: latencies, trace flow, request scenarios, templates.
#[derive(Clone, Debug, Default)]
pub struct ControlPlane {
    /// `trace_flow_mode: single`: an allowed request is one trace instead of linked ones.
    pub single_trace: bool,
    /// Mean latency in ms per control-plane span key (`request_validation`, …); 20 when absent.
    pub latencies_ms: BTreeMap<String, f64>,
    /// The `workflow_templates` key of a scenario that names no workflow.
    pub default_data_plane_workflow: Option<String>,
    /// outcome (allowed / blocked / error) → parts to emit.
    pub trace_flow: BTreeMap<String, Vec<String>>,
    /// Scenarios declared here rather than in files.
    pub request_scenarios: Vec<RequestScenario>,
    /// `request_validation_templates` by id (lower-cased), `_defaults` merged into each.
    pub request_templates: BTreeMap<String, CpTemplate>,
    /// `response_validation_templates` by id (lower-cased), `_defaults` merged into each.
    pub response_templates: BTreeMap<String, CpTemplate>,
}

/// Parts a `control_plane.trace_flow` outcome may list.
pub const TRACE_FLOW_PARTS: &[&str] = &["incoming_validation", "data_plane", "response_validation"];

/// Resource attributes per plane, from `resource:` or `resource.yaml`.
#[derive(Clone, Debug, Default)]
pub struct ResourceConfig {
    /// The file the resource attributes came from (config.yaml or resource.yaml).
    pub source: Option<String>,
    /// `schema_url` of every resource and scope.
    pub schema_url: Option<String>,
    /// Data-plane resource attributes, as written (the prefix is applied later).
    pub data_plane: Vec<(String, AttrValue)>,
    /// Control-plane resource attributes, as written (the prefix is applied later).
    pub control_plane: Vec<(String, AttrValue)>,
}

/// One service declared under `services:`; the map key is its `service.name`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServiceDef {
    /// `service.name`: its key under `services:`.
    pub name: String,
    /// Resource attributes of the service, in file order (never `service.name`).
    pub attributes: Vec<(String, AttrValue)>,
    /// Where the service's key is in config.yaml.
    pub pos: Pos,
    /// `kind:` in a topology; `None`: a plain service (its steps are spans as written).
    pub kind: Option<ServiceKind>,
    /// `latency:` of one request it handles, in ms; `None`: its steps' own.
    pub latency: Option<crate::model::distribution::Distribution>,
    /// `error_rate:` chance (0–1) that a request it handles fails on its own.
    pub error_rate: f64,
    /// `error_types:` the `error.type` values its own failures pick from.
    pub error_types: Vec<String>,
    /// `address:` the host callers reach it at (`server.address`); default its name.
    pub address: Option<String>,
    /// `db_system:` a database's `db.system.name` (default `postgresql`).
    pub db_system: Option<String>,
    /// `protocol:` what callers speak to it (HTTP unless `grpc`).
    pub protocol: ServiceProtocol,
}

/// What a topology's calls to a service speak: its spans' conventions follow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ServiceProtocol {
    /// HTTP: `http.*`, `url.*` attributes, operations `METHOD /route`.
    #[default]
    Http,
    /// gRPC: `rpc.*` attributes, operations `package.Service/Method`.
    Grpc,
}

impl ServiceProtocol {
    /// The values `protocol:` accepts.
    pub const NAMES: &'static str = "http, grpc";

    /// The protocol written in YAML.
    pub fn parse(s: &str) -> Option<ServiceProtocol> {
        match s {
            "http" => Some(ServiceProtocol::Http),
            "grpc" => Some(ServiceProtocol::Grpc),
            _ => None,
        }
    }
}

/// What a service is in a topology: whether it is instrumented (emits SERVER
/// spans) or only seen by its callers (CLIENT spans).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServiceKind {
    /// The entry point of requests (HTTP, instrumented).
    Gateway,
    /// An instrumented service: a call to it is a CLIENT span and its SERVER child.
    Internal,
    /// A database: calls to it are CLIENT spans with `db.*` attributes only.
    Database,
    /// A third-party API: calls to it are HTTP CLIENT spans only.
    External,
}

impl ServiceKind {
    /// The values `kind:` accepts.
    pub const NAMES: &'static str = "gateway, internal, database, external";

    /// The kind written in YAML.
    pub fn parse(s: &str) -> Option<ServiceKind> {
        Some(match s {
            "gateway" => ServiceKind::Gateway,
            "internal" => ServiceKind::Internal,
            "database" => ServiceKind::Database,
            "external" => ServiceKind::External,
            _ => return None,
        })
    }

    /// Whether it emits spans of its own (a SERVER span per request).
    pub fn instrumented(self) -> bool {
        matches!(self, ServiceKind::Gateway | ServiceKind::Internal)
    }
}

/// `prices.<model>`: a model's list price in USD per million tokens.
#[derive(Clone, Debug, PartialEq)]
pub struct Price {
    /// The `gen_ai.request.model` it prices.
    pub model: String,
    /// `input`: per million prompt tokens.
    pub input: f64,
    /// `output`: per million completion tokens.
    pub output: f64,
    /// `cached_input`: per million prompt tokens read from the provider's cache
    /// (`None`: they cost `input`).
    pub cached_input: Option<f64>,
}

impl Price {
    /// The cost in USD of a call with these token counts (`cached` of the
    /// `input` tokens read from the cache).
    pub fn cost(&self, input: i64, cached: i64, output: i64) -> f64 {
        let cached = cached.clamp(0, input.max(0));
        let fresh = (input.max(0) - cached) as f64;
        let cached_price = self.cached_input.unwrap_or(self.input);
        (fresh * self.input + cached as f64 * cached_price + output.max(0) as f64 * self.output)
            / 1e6
    }
}

/// One model of the LLM catalogue, with its relative weight.
#[derive(Clone, Debug)]
pub struct LlmModel {
    /// `gen_ai.provider.name` (normalised to the semconv enum when the world is built).
    pub provider: String,
    /// `gen_ai.request.model` and `gen_ai.response.model`.
    pub model: String,
    /// Relative weight among the models.
    pub weight: f64,
    /// `gen_ai.request.max_tokens` of its calls (`max_tokens`, default [`DEFAULT_MAX_TOKENS`]).
    pub max_tokens: u64,
    /// `aws.bedrock.guardrail.id` of its calls (`guardrail_id`), which the GenAI
    /// conventions require on Bedrock calls.
    pub guardrail_id: Option<String>,
}

/// `gen_ai.request.max_tokens` of a model that gives no `max_tokens`.
pub const DEFAULT_MAX_TOKENS: u64 = 1024;

/// `aws.bedrock.guardrail.id` of a Bedrock model that gives no `guardrail_id`.
pub const DEFAULT_GUARDRAIL_ID: &str = "gr-default";

/// Hours of the day `start <= hour < end` (0..=24) of a schedule bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HourRange {
    /// The first hour in the range, 0..=23.
    pub start: u8,
    /// The first hour after it, 1..=24 (greater than `start`).
    pub end: u8,
}

impl HourRange {
    /// Whether the range holds `hour` (0..=23).
    pub fn contains(&self, hour: u8) -> bool {
        self.start <= hour && hour < self.end
    }
}

/// One scenario of a schedule bucket and its weight there.
#[derive(Clone, Debug)]
pub struct ScheduledWeight {
    /// A scenario's name (file stem) or display name, as written.
    pub scenario: String,
    /// Its weight while the bucket is active (> 0), in place of its `workload_weight`.
    pub weight: f64,
    /// Where it is written.
    pub pos: Pos,
}

/// One bucket of a workload schedule: when it is active and what it picks from.
#[derive(Clone, Debug)]
pub struct ScheduleBucket {
    /// Its key under `buckets:`.
    pub name: String,
    /// The local hours it is active, as written.
    pub hours: Vec<HourRange>,
    /// The only scenarios picked while it is active, with their weights, in file order.
    pub scenario_weights: Vec<ScheduledWeight>,
    /// Where its key is.
    pub pos: Pos,
}

/// A time-of-day scenario mix (`workload_schedules.<name>`): the first bucket whose
/// hours hold the local hour in `zone` decides the picks.
#[derive(Clone, Debug)]
pub struct WorkloadSchedule {
    /// Its key under `workload_schedules:`.
    pub name: String,
    /// Where the hours are read (`timezone`; UTC when absent).
    pub zone: crate::tz::Zone,
    /// The buckets in file order: the first that matches wins.
    pub buckets: Vec<ScheduleBucket>,
    /// Where its key is.
    pub pos: Pos,
}

impl WorkloadSchedule {
    /// The index of the first bucket active at local hour `hour`, if any.
    pub fn bucket_at_hour(&self, hour: u8) -> Option<usize> {
        self.buckets
            .iter()
            .position(|b| b.hours.iter().any(|r| r.contains(hour)))
    }
}

/// A loaded `config.yaml`.
#[derive(Clone, Debug)]
pub struct Config {
    /// The file it was read from (or its embedded name), for diagnostics.
    pub source: String,
    /// Templates of the generated ids.
    pub id_formats: IdFormats,
    /// The default latency profile (`latency_profiles.happy_path` or `happy_path_latency`).
    pub latency: LatencyProfile,
    /// Every named latency profile, for `data_plane.latency_profile`.
    pub latency_profiles: BTreeMap<String, LatencyProfile>,
    /// Attribute values of tools-recommend spans.
    pub tools_recommend: ToolsRecommend,
    /// Backoff, policy and failure latencies of MCP tool-call retries.
    pub mcp_retry: McpRetry,
    /// Scripted attempt lists by name, for a scenario's `data_plane.mcp_retry`.
    pub mcp_retry_templates: BTreeMap<String, Vec<AttemptSpec>>,
    /// Tenants in file order; the first is the default.
    pub tenants: Vec<Tenant>,
    /// Agent ids in file order; the first is the default `context.agent`.
    pub agents: Vec<String>,
    /// MCP servers in file order.
    pub mcp_servers: Vec<McpServer>,
    /// division name → MCP server key.
    pub divisions: Vec<(String, String)>,
    /// How each simulation goal fails (`realistic_scenarios.error_templates`).
    pub error_templates: BTreeMap<String, ErrorTemplate>,
    /// Workflow steps by name (`realistic_scenarios.workflow_templates`).
    pub workflow_templates: BTreeMap<String, Vec<String>>,
    /// Where each step of each workflow is written (same order as its steps), so
    /// a problem a scenario finds in a workflow is reported at its config line.
    pub workflow_step_pos: BTreeMap<String, Vec<Pos>>,
    /// The `control_plane` section.
    pub control_plane: ControlPlane,
    /// Conversation samples by workflow name (`default` for the others).
    pub conversation_samples: BTreeMap<String, Vec<Sample>>,
    /// Resource attributes of the planes.
    pub resource: ResourceConfig,
    /// `services:` in file order; empty when the config declares none.
    pub services: Vec<ServiceDef>,
    /// The LLM catalogue (`llm:`; a built-in one when absent).
    pub llm_models: Vec<LlmModel>,
    /// `prices:`: list prices per model, for scenarios that track costs.
    pub prices: Vec<Price>,
    /// `llm.system_prompt`: the system instructions of an agent's LLM calls when the
    /// scenario gives none.
    pub llm_system_prompt: Option<String>,
    /// `retrieval`: what retrieval steps search and find.
    pub retrieval: Option<Retrieval>,
    /// `mcp_tool_genai_payloads`: per tool, the fields its arguments and result may have
    /// and the sample payloads a v2 scenario's own payloads are merged over.
    pub tool_payloads: BTreeMap<String, ToolPayloadContract>,
    /// `workload_schedules`, in file order; used only when a run asks for one.
    pub workload_schedules: Vec<WorkloadSchedule>,
    /// `agent_trace`: the agent event log output (`--output agent-trace`).
    pub agent_trace: AgentTraceConfig,
}

/// `agent_trace`: the agent event log output, with the names its users know.
#[derive(Clone, Debug, PartialEq)]
pub struct AgentTraceConfig {
    /// `enabled`: write agent event logs on every `run` and `scenario`, as if
    /// `--output agent-trace` were given (default false).
    pub enabled: bool,
    /// `trace_dir`: the folder of `--output agent-trace` without a path (default `./traces`).
    pub trace_dir: String,
    /// `sample_rate`: the share of sessions written, 0 to 1 (default 1).
    pub sample_rate: f64,
    /// `include_messages`: write message text (default true).
    pub include_messages: bool,
    /// `include_thinking`: write thinking steps (default true).
    pub include_thinking: bool,
    /// `max_content_length`: longest string written, in characters (default 10000).
    pub max_content_length: u64,
}

impl Default for AgentTraceConfig {
    fn default() -> Self {
        AgentTraceConfig {
            enabled: false,
            trace_dir: "./traces".into(),
            sample_rate: 1.0,
            include_messages: true,
            include_thinking: true,
            max_content_length: 10_000,
        }
    }
}

/// `retrieval`: the knowledge base retrieval steps search and the passages they find.
#[derive(Clone, Debug, Default)]
pub struct Retrieval {
    /// `data_source`: `gen_ai.data_source.id`.
    pub data_source: String,
    /// `top_k`: documents returned per retrieval.
    pub top_k: usize,
    /// `documents`: (id, content) of every passage there is.
    pub documents: Vec<(String, String)>,
}

/// One tool's payload contract (`mcp_tool_genai_payloads.<tool>`).
#[derive(Clone, Debug, Default)]
pub struct ToolPayloadContract {
    /// `gen_ai.tool.call.arguments`: allowed fields and the sample.
    pub arguments: Option<PayloadContract>,
    /// `gen_ai.tool.call.result`: allowed fields and the sample.
    pub result: Option<PayloadContract>,
}

/// The fields a payload may have (`structure` keys) and its default (`sample`).
#[derive(Clone, Debug, Default)]
pub struct PayloadContract {
    /// The allowed field names, in file order; empty: any.
    pub fields: Vec<String>,
    /// The default payload scenario payloads are merged over.
    pub sample: Vec<(String, crate::yaml::Node)>,
}

impl Config {
    /// A tenant by key (any case) or id.
    pub fn tenant(&self, key: &str) -> Option<&Tenant> {
        let k = key.to_ascii_lowercase();
        self.tenants
            .iter()
            .find(|t| t.key.to_ascii_lowercase() == k || t.id == key)
    }

    /// An MCP server by its key.
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

    /// The workload schedule of this name.
    pub fn workload_schedule(&self, name: &str) -> Option<&WorkloadSchedule> {
        self.workload_schedules.iter().find(|s| s.name == name)
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
        max_tokens: DEFAULT_MAX_TOKENS,
        guardrail_id: (p == "aws.bedrock").then(|| DEFAULT_GUARDRAIL_ID.to_string()),
    })
    .collect()
}
