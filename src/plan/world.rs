//! What every scenario of a run shares: the prefix, interned keys, the semconv
//! enums, resources, the LLM model catalogue and id formats.

use super::services::Services;
use crate::diag::{Diags, Pos};
use crate::model::config::{Config, DEFAULT_GUARDRAIL_ID};
use crate::model::distribution::Categorical;
use crate::model::semconv::{
    AttrType, Semconv, ERROR_TYPES, GENAI_STRING_ARRAYS, RESPONSE_FORMATS, STEP_OUTCOMES,
};
use crate::model::AttrValue;
use crate::record::Key;
use std::collections::HashMap;
use std::sync::Arc;

/// Rewrites names written with `vendor.` or the semconv file's own namespace to
/// the active prefix, so every span and attribute carries one coherent prefix.
#[derive(Clone, Debug)]
pub struct Prefixer {
    /// The prefix every span name and vendor attribute gets (`--vendor`, lower-cased, no
    /// trailing dot).
    pub active: String,
    aliases: Vec<String>,
}

impl Prefixer {
    /// A prefixer to `active` that also rewrites `vendor.` and the semconv file's `namespace`.
    pub fn new(active: &str, semconv_namespace: Option<&str>) -> Self {
        let active = active.trim().trim_end_matches('.').to_ascii_lowercase();
        let mut aliases = vec!["vendor".to_string()];
        if let Some(ns) = semconv_namespace {
            if !aliases.iter().any(|a| a == ns) {
                aliases.push(ns.to_string());
            }
        }
        Prefixer { active, aliases }
    }

    /// `vendor.x` / `<ns>.x` → `<active>.x`; other names unchanged.
    pub fn rewrite(&self, name: &str) -> String {
        for a in self.aliases.iter().chain(std::iter::once(&self.active)) {
            if let Some(rest) = name
                .strip_prefix(a.as_str())
                .and_then(|r| r.strip_prefix('.'))
            {
                return format!("{}.{rest}", self.active);
            }
        }
        name.to_string()
    }

    /// The class of a span name: the name without its prefix.
    pub fn class_of<'a>(&self, name: &'a str) -> &'a str {
        for a in self.aliases.iter().chain(std::iter::once(&self.active)) {
            if let Some(rest) = name
                .strip_prefix(a.as_str())
                .and_then(|r| r.strip_prefix('.'))
            {
                return rest;
            }
        }
        name
    }

    /// Span type as written in YAML → (full name, class). Bare suffixes get the prefix.
    pub fn span_type(&self, written: &str) -> (String, String) {
        let class = self.class_of(written).to_string();
        (format!("{}.{class}", self.active), class)
    }

    /// `<active>.<short>`.
    pub fn attr(&self, short: &str) -> String {
        format!("{}.{short}", self.active)
    }
}

/// Interned attribute keys every trace uses, built once with the active prefix.
#[derive(Clone, Debug)]
pub struct Keys {
    /// `<prefix>.session.id`: shared by every request of a session.
    pub session_id: Key,
    /// `gen_ai.conversation.id`: the session id again, under its GenAI name.
    pub conversation_id: Key,
    /// `<prefix>.request.id`: shared by every trace of one request.
    pub request_id: Key,
    /// `<prefix>.tenant.id`.
    pub tenant_id: Key,
    /// `<prefix>.span.class`: the class as written, without prefix.
    pub span_class: Key,
    /// `<prefix>.step.outcome`: `success`, `fail` or `skipped`.
    pub step_outcome: Key,
    /// `<prefix>.step.outcome.cp`: a control-plane step's `pass`, `fail`, `block` or `skip`.
    pub step_outcome_cp: Key,
    /// `<prefix>.request.outcome`: the gateway's verdict on a request.
    pub request_outcome: Key,
    /// `error.type`.
    pub error_type: Key,
    /// `<prefix>.error.category`: set by no rule, but owned by the code so semconv filling
    /// never invents one.
    pub error_category: Key,
    /// `<prefix>.a2a.outcome`: the agent turn's outcome.
    pub a2a_outcome: Key,
    /// `<prefix>.a2a.agent.target.id`: the agent a turn addresses.
    pub agent_target: Key,
    /// `<prefix>.enduser.pseudo.id`.
    pub enduser: Key,
    /// `<prefix>.redaction.applied`.
    pub redaction: Key,
    /// `<prefix>.turn.index`: 1-based turn of a multi-turn session.
    pub turn_index: Key,
    /// `<prefix>.task.id`.
    pub task_id: Key,
    /// `<prefix>.task.type`.
    pub task_type: Key,
    /// `gen_ai.tool.name`.
    pub tool_name: Key,
    /// `gen_ai.tool.call.id`.
    pub tool_call_id: Key,
    /// `<prefix>.mcp.tool.call.id`.
    pub mcp_call_id: Key,
    /// `<prefix>.mcp.server.uuid`.
    pub mcp_server_uuid: Key,
    /// `<prefix>.mcp.tool.uuid`.
    pub mcp_tool_uuid: Key,
    /// `<prefix>.mcp.attempt.index`.
    pub attempt_index: Key,
    /// `<prefix>.mcp.attempt.outcome`.
    pub attempt_outcome: Key,
    /// `<prefix>.retry.attempt`.
    pub retry_attempt: Key,
    /// `<prefix>.retry.count`.
    pub retry_count: Key,
    /// `<prefix>.retry.policy`.
    pub retry_policy: Key,
    /// `<prefix>.retry.reason`: why an attempt was retried (the previous attempt's error).
    pub retry_reason: Key,
    /// `<prefix>.response.format`.
    pub response_format: Key,
    /// `gen_ai.operation.name`.
    pub op_name: Key,
    /// `gen_ai.provider.name`.
    pub provider: Key,
    /// `gen_ai.system` (older GenAI conventions; set only when the semconv file declares it).
    pub system: Key,
    /// `gen_ai.request.model`.
    pub request_model: Key,
    /// `gen_ai.response.model`.
    pub response_model: Key,
    /// `gen_ai.usage.input_tokens`.
    pub input_tokens: Key,
    /// `gen_ai.usage.output_tokens`.
    pub output_tokens: Key,
    /// `gen_ai.response.finish_reason`: set only when the semconv file declares it.
    pub finish_reason: Key,
    /// `gen_ai.response.finish_reasons`.
    pub finish_reasons: Key,
    /// `gen_ai.request.type`: set only when the semconv file declares it.
    pub request_type: Key,
    /// `gen_ai.input.messages`.
    pub input_messages: Key,
    /// `gen_ai.output.messages`.
    pub output_messages: Key,
    /// `<prefix>.gen_ai.input.redacted`: the redacted user message.
    pub input_redacted: Key,
    /// `<prefix>.gen_ai.output.redacted`: the redacted reply.
    pub output_redacted: Key,
    /// `<prefix>.mcp.tools.available.count`.
    pub tools_available: Key,
    /// `<prefix>.mcp.tools.selected.count`.
    pub tools_selected: Key,
    /// `<prefix>.mcp.selection.latency.ms`.
    pub selection_latency: Key,
    /// `<prefix>.mcp.selection.strategy`.
    pub selection_strategy: Key,
    /// `<prefix>.mcp.selection.constraints`.
    pub selection_constraints: Key,
    /// `<prefix>.mcp.selection.fallback.used`.
    pub selection_fallback: Key,
    /// `<prefix>.enduser.request`: the event of what the user sent (late-v1 files).
    pub enduser_request_event: Key,
    /// `<prefix>.enduser.request.raw`: that event's text.
    pub enduser_request_raw: Key,
    /// `<prefix>.enduser.request.raw.redacted`: that text redacted.
    pub enduser_request_redacted: Key,
    /// `<prefix>.agent.response`: the event of what the agent answered (late-v1 files).
    pub agent_response_event: Key,
    /// `<prefix>.agent.response.raw`: that event's text.
    pub agent_response_raw: Key,
    /// `<prefix>.agent.response.raw.redacted`: that text redacted.
    pub agent_response_redacted: Key,
    /// `gen_ai.agent.id`: the agent an agent turn invokes.
    pub agent_id: Key,
    /// `gen_ai.agent.name`: its name (the configured agent id).
    pub agent_name: Key,
    /// `gen_ai.tool.call.arguments`: a tool call's arguments, JSON.
    pub tool_call_arguments: Key,
    /// `gen_ai.tool.call.result`: what a tool call returned, JSON.
    pub tool_call_result: Key,
    /// `<prefix>.agent.tool_selection`: the event a recommendation span records.
    pub tool_selection_event: Key,
    /// `<prefix>.agent.tool_selection.input.raw`: that event's user input.
    pub tool_selection_input: Key,
    /// `<prefix>.agent.tool_selection.tool.plan`: that event's chosen tools, as JSON.
    pub tool_selection_plan: Key,
    /// `exception`: the name of an exception event.
    pub exception: Key,
    /// `exception.type`.
    pub exception_type: Key,
    /// `exception.message`.
    pub exception_message: Key,
    /// `http.response.status_code`.
    pub http_status: Key,
    /// `rpc.response.status_code` of a topology's gRPC span.
    pub rpc_status: Key,
    /// `mcp.method.name`.
    pub mcp_method: Key,
    /// `mcp.session.id`.
    pub mcp_session: Key,
    /// `<prefix>.duration.ms` of a log record: the span's duration.
    pub duration_ms: Key,
    /// `<prefix>.retry.delay.ms` of a log record: the wait before the retry.
    pub retry_delay_ms: Key,
    /// `gen_ai.token.type` of the token-usage metric: `input` or `output`.
    pub token_type: Key,
    /// `server.address`: the host an LLM or MCP request goes to.
    pub server_address: Key,
    /// `server.port`: that host's port.
    pub server_port: Key,
    /// `gen_ai.request.max_tokens`.
    pub max_tokens: Key,
    /// `gen_ai.response.id`: the provider's id of a completion.
    pub response_id: Key,
    /// `gen_ai.usage.cache_read.input_tokens`: input tokens served from the provider's cache.
    pub cache_read_tokens: Key,
    /// `gen_ai.usage.cache_creation.input_tokens`: input tokens written to the provider's cache.
    pub cache_creation_tokens: Key,
    /// `aws.bedrock.guardrail.id`: the guardrail of a Bedrock call.
    pub guardrail_id: Key,
    /// `mcp.protocol.version`: the MCP revision a session speaks.
    pub mcp_protocol_version: Key,
    /// `jsonrpc.request.id`: the id of an MCP request within its session.
    pub jsonrpc_request_id: Key,
    /// `network.transport` of an MCP request.
    pub network_transport: Key,
    /// `gen_ai.usage.reasoning.output_tokens`: a reasoning model's thinking tokens.
    pub reasoning_tokens: Key,
    /// `<prefix>.gen_ai.thinking`: the name of a thinking event.
    pub thinking_event: Key,
    /// `<prefix>.thinking.stage` on a thinking event.
    pub thinking_stage: Key,
    /// `<prefix>.thinking.content` on a thinking event.
    pub thinking_content: Key,
}

impl Keys {
    fn new(p: &Prefixer) -> Self {
        let k = |s: &str| -> Key { Key::from(s) };
        let v = |s: &str| -> Key { Key::from(p.attr(s).as_str()) };
        Keys {
            session_id: v("session.id"),
            conversation_id: k("gen_ai.conversation.id"),
            request_id: v("request.id"),
            tenant_id: v("tenant.id"),
            span_class: v("span.class"),
            step_outcome: v("step.outcome"),
            step_outcome_cp: v("step.outcome.cp"),
            request_outcome: v("request.outcome"),
            error_type: k("error.type"),
            error_category: v("error.category"),
            a2a_outcome: v("a2a.outcome"),
            agent_target: v("a2a.agent.target.id"),
            enduser: v("enduser.pseudo.id"),
            redaction: v("redaction.applied"),
            turn_index: v("turn.index"),
            task_id: v("task.id"),
            task_type: v("task.type"),
            tool_name: k("gen_ai.tool.name"),
            tool_call_id: k("gen_ai.tool.call.id"),
            mcp_call_id: v("mcp.tool.call.id"),
            mcp_server_uuid: v("mcp.server.uuid"),
            mcp_tool_uuid: v("mcp.tool.uuid"),
            attempt_index: v("mcp.attempt.index"),
            attempt_outcome: v("mcp.attempt.outcome"),
            retry_attempt: v("retry.attempt"),
            retry_count: v("retry.count"),
            retry_policy: v("retry.policy"),
            retry_reason: v("retry.reason"),
            response_format: v("response.format"),
            op_name: k("gen_ai.operation.name"),
            provider: k("gen_ai.provider.name"),
            system: k("gen_ai.system"),
            request_model: k("gen_ai.request.model"),
            response_model: k("gen_ai.response.model"),
            input_tokens: k("gen_ai.usage.input_tokens"),
            output_tokens: k("gen_ai.usage.output_tokens"),
            finish_reason: k("gen_ai.response.finish_reason"),
            finish_reasons: k("gen_ai.response.finish_reasons"),
            request_type: k("gen_ai.request.type"),
            input_messages: k("gen_ai.input.messages"),
            output_messages: k("gen_ai.output.messages"),
            input_redacted: v("gen_ai.input.redacted"),
            output_redacted: v("gen_ai.output.redacted"),
            tools_available: v("mcp.tools.available.count"),
            tools_selected: v("mcp.tools.selected.count"),
            selection_latency: v("mcp.selection.latency.ms"),
            selection_strategy: v("mcp.selection.strategy"),
            selection_constraints: v("mcp.selection.constraints"),
            selection_fallback: v("mcp.selection.fallback.used"),
            enduser_request_event: v("enduser.request"),
            enduser_request_raw: v("enduser.request.raw"),
            enduser_request_redacted: v("enduser.request.raw.redacted"),
            agent_response_event: v("agent.response"),
            agent_response_raw: v("agent.response.raw"),
            agent_response_redacted: v("agent.response.raw.redacted"),
            agent_id: k("gen_ai.agent.id"),
            agent_name: k("gen_ai.agent.name"),
            tool_call_arguments: k("gen_ai.tool.call.arguments"),
            tool_call_result: k("gen_ai.tool.call.result"),
            tool_selection_event: v("agent.tool_selection"),
            tool_selection_input: v("agent.tool_selection.input.raw"),
            tool_selection_plan: v("agent.tool_selection.tool.plan"),
            exception: k("exception"),
            exception_type: k("exception.type"),
            exception_message: k("exception.message"),
            http_status: k("http.response.status_code"),
            rpc_status: k("rpc.response.status_code"),
            mcp_method: k("mcp.method.name"),
            mcp_session: k("mcp.session.id"),
            duration_ms: v("duration.ms"),
            retry_delay_ms: v("retry.delay.ms"),
            token_type: k("gen_ai.token.type"),
            server_address: k("server.address"),
            server_port: k("server.port"),
            max_tokens: k("gen_ai.request.max_tokens"),
            response_id: k("gen_ai.response.id"),
            cache_read_tokens: k("gen_ai.usage.cache_read.input_tokens"),
            cache_creation_tokens: k("gen_ai.usage.cache_creation.input_tokens"),
            guardrail_id: k("aws.bedrock.guardrail.id"),
            mcp_protocol_version: k("mcp.protocol.version"),
            jsonrpc_request_id: k("jsonrpc.request.id"),
            network_transport: k("network.transport"),
            reasoning_tokens: k(crate::export::REASONING_TOKENS),
            thinking_event: k(&crate::export::thinking_event_name(&p.active)),
            thinking_stage: v(crate::export::THINKING_STAGE),
            thinking_content: v(crate::export::THINKING_CONTENT),
        }
    }
}

/// An LLM model the generator may attribute a call to.
#[derive(Clone, Debug)]
pub struct ModelChoice {
    /// `gen_ai.provider.name`, normalised to the semconv enum.
    pub provider: AttrValue,
    /// `gen_ai.request.model` and `gen_ai.response.model`.
    pub model: AttrValue,
    /// `gen_ai.request.max_tokens` of its calls.
    pub max_tokens: i64,
    /// `aws.bedrock.guardrail.id`: on Bedrock calls only.
    pub guardrail_id: Option<AttrValue>,
    /// What the provider's API is like (endpoint, cache report, response ids).
    pub api: &'static ProviderApi,
    /// `server.address` and `server.port` of the provider's endpoint.
    pub server: (AttrValue, AttrValue),
}

/// The cache usage a provider's API reports with every completion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheReport {
    /// None.
    Nothing,
    /// Input tokens read from the cache
    /// (`gen_ai.usage.cache_read.input_tokens`).
    Read,
    /// Input tokens read from and written to the cache (both `cache_*` usages).
    ReadAndCreation,
}

/// How a provider's completion ids look: a prefix, then random characters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdStyle {
    /// The prefix and that many characters of `[0-9A-Za-z]`.
    Alnum(&'static str, usize),
    /// The prefix and that many lower-case hex digits.
    Hex(&'static str, usize),
    /// A version-4 UUID after the prefix.
    Uuid(&'static str),
}

/// What a GenAI provider's API looks like to its client: the facts a real
/// client's telemetry reflects.
#[derive(Debug, PartialEq, Eq)]
pub struct ProviderApi {
    /// `gen_ai.provider.name`.
    pub provider: &'static str,
    /// `server.address` of its inference endpoint (the public one; regional
    /// providers: a common region).
    pub host: &'static str,
    /// The cache usage its completions report.
    pub cache: CacheReport,
    /// How its completion ids (`gen_ai.response.id`) look.
    pub response_id: IdStyle,
}

/// Every `gen_ai.provider.name` of the GenAI conventions, with its API's
/// endpoint (port 443), cache report and response-id form.
pub const PROVIDER_APIS: &[ProviderApi] = &[
    api(
        "openai",
        "api.openai.com",
        CacheReport::Read,
        IdStyle::Alnum("chatcmpl-", 29),
    ),
    api(
        "azure.ai.openai",
        "eastus.api.cognitive.microsoft.com",
        CacheReport::Read,
        IdStyle::Alnum("chatcmpl-", 29),
    ),
    api(
        "azure.ai.inference",
        "models.inference.ai.azure.com",
        CacheReport::Nothing,
        IdStyle::Hex("", 32),
    ),
    api(
        "anthropic",
        "api.anthropic.com",
        CacheReport::ReadAndCreation,
        IdStyle::Alnum("msg_", 24),
    ),
    api(
        "gcp.gemini",
        "generativelanguage.googleapis.com",
        CacheReport::Read,
        IdStyle::Alnum("", 23),
    ),
    api(
        "gcp.gen_ai",
        "generativelanguage.googleapis.com",
        CacheReport::Read,
        IdStyle::Alnum("", 23),
    ),
    api(
        "gcp.vertex_ai",
        "us-central1-aiplatform.googleapis.com",
        CacheReport::Read,
        IdStyle::Alnum("", 23),
    ),
    api(
        "aws.bedrock",
        "bedrock-runtime.us-east-1.amazonaws.com",
        CacheReport::ReadAndCreation,
        IdStyle::Uuid(""),
    ),
    api(
        "cohere",
        "api.cohere.com",
        CacheReport::Nothing,
        IdStyle::Uuid(""),
    ),
    api(
        "mistral_ai",
        "api.mistral.ai",
        CacheReport::Nothing,
        IdStyle::Hex("", 32),
    ),
    api(
        "deepseek",
        "api.deepseek.com",
        CacheReport::Read,
        IdStyle::Uuid(""),
    ),
    api(
        "groq",
        "api.groq.com",
        CacheReport::Nothing,
        IdStyle::Alnum("chatcmpl-", 26),
    ),
    api(
        "perplexity",
        "api.perplexity.ai",
        CacheReport::Nothing,
        IdStyle::Uuid(""),
    ),
    api("x_ai", "api.x.ai", CacheReport::Read, IdStyle::Uuid("")),
    api(
        "ibm.watsonx.ai",
        "us-south.ml.cloud.ibm.com",
        CacheReport::Nothing,
        IdStyle::Hex("chat-", 32),
    ),
];

const fn api(
    provider: &'static str,
    host: &'static str,
    cache: CacheReport,
    response_id: IdStyle,
) -> ProviderApi {
    ProviderApi {
        provider,
        host,
        cache,
        response_id,
    }
}

/// A provider outside the conventions' list (a semconv file may allow others):
/// no cache report, UUID response ids, its name as the host.
static OTHER_API: ProviderApi = api("", "", CacheReport::Nothing, IdStyle::Uuid(""));

/// The API of `provider`.
pub fn provider_api(provider: &str) -> &'static ProviderApi {
    PROVIDER_APIS
        .iter()
        .find(|a| a.provider == provider)
        .unwrap_or(&OTHER_API)
}

/// `mcp.protocol.version` of otelsim's MCP sessions: the revision of the MCP
/// specification they speak.
pub const MCP_PROTOCOL_VERSION: &str = "2025-06-18";

/// Everything shared by all scenarios of a run: prefix, keys, enums, resources, models.
#[derive(Debug)]
pub struct World {
    /// Rewrites written names to the active prefix.
    pub prefix: Prefixer,
    /// The attribute keys the generator writes, interned once.
    pub keys: Keys,
    /// Full attribute name → allowed values.
    pub enums: HashMap<String, Vec<AttrValue>>,
    /// The LLM models of config `llm.models`, in file order.
    pub models: Vec<ModelChoice>,
    /// Weights of `models`: picks the index of an LLM call's model.
    pub model_weights: Categorical,
    /// Schema URL of every resource and scope (config `resource.schema_url`).
    pub schema_url: Option<String>,
    /// The services spans are emitted under (the planes, then `services:`).
    pub services: Services,
    /// How session, request, end-user and MCP call ids are rendered.
    pub id_formats: crate::model::config::IdFormats,
    /// `<prefix>.retry.policy` of retried tool calls (config `mcp_retry.retry_policy`,
    /// normalised).
    pub retry_policy: AttrValue,
    /// `network.transport` of MCP requests (Streamable HTTP: `tcp`, in the enum when
    /// the semconv file has one).
    pub mcp_transport: AttrValue,
    /// `mcp.protocol.version` of MCP requests.
    pub mcp_protocol_version: AttrValue,
    /// Whether the semconv file declares `gen_ai.system`, so LLM spans also carry it.
    pub semconv_has_gen_ai_system: bool,
    /// `--tenant-id`: the tenant of every scenario, over what the scenarios say.
    pub tenant_override: Option<String>,
    /// Every attribute name the semconv file declares (prefix applied).
    pub declared: std::collections::HashSet<String>,
    /// Whether the semconv file declares `keys.finish_reason`, which LLM calls then
    /// carry (looked up once, not per call).
    pub declares_llm_finish_reason: bool,
    /// Whether the semconv file declares `keys.request_type`, likewise.
    pub declares_llm_request_type: bool,
    /// `--genai-profile`: which attribute families describe GenAI work.
    pub genai_profile: crate::generate::GenAiProfile,
    /// The OpenInference keys and span kinds, interned once.
    pub oi_keys: crate::generate::OiKeys,
    /// config.yaml `retrieval`: what retrieval steps search and find.
    pub retrieval: Option<crate::model::config::Retrieval>,
    /// config.yaml `prices`: what LLM calls cost, for scenarios that track costs.
    pub prices: Vec<crate::model::config::Price>,
    /// `<prefix>.llm.cost.usd`: the cost of an LLM call.
    pub cost_key: Key,
    /// Attributes whose values are string arrays: those the file declares
    /// `string[]` and those the GenAI conventions fix ([`GENAI_STRING_ARRAYS`]).
    pub string_arrays: std::collections::HashSet<String>,
    /// `jsonrpc.request.id` 1, 2, …: the ids of a trace's first MCP requests.
    jsonrpc_ids: Vec<AttrValue>,
    /// `<prefix>.task.id` `task_1`, `task_2`, …: the ids of a trace's first task spans.
    task_ids: Vec<AttrValue>,
    /// One-item string arrays the generator writes over and over: each finish
    /// reason, as the `gen_ai.response.finish_reasons` enum allows it.
    literal_arrays: Vec<(&'static str, Arc<[Arc<str>]>)>,
}

/// Settings that shape the world beyond the files.
#[derive(Clone, Debug, Default)]
pub struct WorldOptions {
    /// `--vendor` / `VENDOR`: the attribute and span-name prefix.
    pub vendor: String,
    /// `--service-name` / `OTEL_SERVICE_NAME`: `service.name` of the planes (declared services
    /// keep their own).
    pub service_name: Option<String>,
    /// `OTEL_RESOURCE_ATTRIBUTES` pairs; they win over config.
    pub extra_resource: Vec<(String, String)>,
    /// `--tenant-id`: the tenant of every scenario.
    pub tenant_id: Option<String>,
    /// `--genai-profile`: which attribute families describe GenAI work.
    pub genai_profile: crate::generate::GenAiProfile,
}

/// `jsonrpc.request.id` values made once; a trace with more MCP requests makes the rest.
const JSONRPC_IDS: u32 = 16;

/// `<prefix>.task.id` values made once; a trace with more task spans makes the rest.
const TASK_IDS: u32 = 32;

/// Finish reasons: the one-item arrays `gen_ai.response.finish_reasons` takes.
const FINISH_REASONS: &[&str] = &["stop", "length", "tool_call", "error"];

impl World {
    /// `jsonrpc.request.id` of the `n`-th request (1-based) of an MCP session.
    pub fn jsonrpc_id(&self, n: u32) -> AttrValue {
        match self.jsonrpc_ids.get(n.wrapping_sub(1) as usize) {
            Some(v) => v.clone(),
            None => AttrValue::str(&n.to_string()),
        }
    }

    /// `<prefix>.task.id` of the `n`-th task span (1-based) of a trace.
    pub fn task_id(&self, n: u32) -> AttrValue {
        match self.task_ids.get(n.wrapping_sub(1) as usize) {
            Some(v) => v.clone(),
            None => AttrValue::str(&format!("task_{n}")),
        }
    }

    /// `[s]` as a string-array value: shared, and inside the enum of
    /// `gen_ai.response.finish_reasons`, when `s` is a finish reason.
    pub fn lit_array(&self, s: &str) -> AttrValue {
        match self.literal_arrays.iter().find(|(r, _)| *r == s) {
            Some((_, l)) => AttrValue::StrArray(l.clone()),
            None => AttrValue::str_array(&[s]),
        }
    }

    /// Interns the string values spans copy from the world (models, providers, enums,
    /// ids), as `ScenarioPlan::intern_texts` does for a scenario's.
    fn intern_texts(&mut self) {
        self.enums
            .values_mut()
            .flatten()
            .for_each(AttrValue::intern);
        for m in &mut self.models {
            m.provider.intern();
            m.model.intern();
            m.guardrail_id.iter_mut().for_each(AttrValue::intern);
            m.server.0.intern();
            m.server.1.intern();
        }
        self.model_weights
            .values
            .iter_mut()
            .for_each(AttrValue::intern);
        self.jsonrpc_ids.iter_mut().for_each(AttrValue::intern);
        self.task_ids.iter_mut().for_each(AttrValue::intern);
        self.retry_policy.intern();
        self.mcp_transport.intern();
        self.mcp_protocol_version.intern();
    }

    /// Builds the world of a run; values normalised to the semconv enums are warnings in `d`.
    pub fn new(cfg: &Config, sc: &Semconv, opts: &WorldOptions, d: &mut Diags) -> World {
        let prefix = Prefixer::new(&opts.vendor, sc.namespace.as_deref());
        let keys = Keys::new(&prefix);
        let mut enums: HashMap<String, Vec<AttrValue>> = HashMap::new();
        for (_, attrs) in &sc.sections {
            for a in attrs {
                if !a.allowed.is_empty() {
                    enums
                        .entry(prefix.rewrite(&a.name))
                        .or_insert_with(|| a.allowed.clone());
                }
            }
        }
        // The spec fixes these whatever the file says.
        let fixed = |vals: &[&str]| vals.iter().map(|v| AttrValue::str(v)).collect::<Vec<_>>();
        enums.insert("error.type".into(), fixed(ERROR_TYPES));
        enums
            .entry(prefix.attr("step.outcome"))
            .or_insert_with(|| fixed(STEP_OUTCOMES));
        enums
            .entry(prefix.attr("response.format"))
            .or_insert_with(|| fixed(RESPONSE_FORMATS));

        // Providers are an enum in the GenAI conventions: normalise config values once.
        let provider_key = "gen_ai.provider.name";
        let models: Vec<ModelChoice> = cfg
            .llm_models
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let raw = AttrValue::str(&m.provider);
                let provider = match enums.get(provider_key) {
                    Some(allowed) if !allowed.contains(&raw) => {
                        let fixed = closest_allowed(&raw, allowed);
                        d.warn(Pos::default(), &format!("llm.models[{i}].provider"), format!("`{raw}` is not an allowed value of {provider_key}; emitted as `{fixed}`"));
                        fixed
                    }
                    _ => raw,
                };
                let api = provider_api(provider.as_str().unwrap_or_default());
                let host = if api.host.is_empty() { &m.provider } else { api.host };
                let bedrock = api.provider == "aws.bedrock";
                if bedrock && m.guardrail_id.is_none() {
                    d.warn(Pos::default(), &format!("llm.models[{i}].guardrail_id"), format!("the GenAI conventions require aws.bedrock.guardrail.id on Bedrock calls; none given, so `{DEFAULT_GUARDRAIL_ID}` is emitted"));
                }
                ModelChoice {
                    provider,
                    model: AttrValue::str(&m.model),
                    max_tokens: i64::try_from(m.max_tokens).unwrap_or(i64::MAX),
                    guardrail_id: bedrock.then(|| {
                        AttrValue::str(m.guardrail_id.as_deref().unwrap_or(DEFAULT_GUARDRAIL_ID))
                    }),
                    api,
                    server: (AttrValue::str(host), AttrValue::Int(443)),
                }
            })
            .collect();
        let mut sd = Diags::new(sc.source.as_str());
        for (section, attrs) in &sc.sections {
            for a in attrs {
                if let (Some(def), false) = (&a.default, a.allowed.is_empty()) {
                    if !a.allowed.contains(def) {
                        sd.warn(
                            Pos::default(),
                            &format!("{section}.{}.default", a.name),
                            format!(
                                "default `{def}` is not one of its allowed_values; emitted as `{}`",
                                closest_allowed(def, &a.allowed)
                            ),
                        );
                    }
                }
            }
        }
        d.items.append(&mut sd.items);
        let model_weights = Categorical::new(
            cfg.llm_models
                .iter()
                .enumerate()
                .map(|(i, m)| (AttrValue::Int(i as i64), m.weight))
                .collect(),
        )
        .unwrap_or_else(|| Categorical::uniform(vec![AttrValue::Int(0)]).expect("one value"));

        let cost_key: Key = Key::from(format!(
            "{}.{}",
            prefix.active,
            crate::export::session::COST_SUFFIX
        ));
        let mut world = World {
            keys,
            enums,
            models,
            model_weights,
            schema_url: cfg.resource.schema_url.clone(),
            services: Services::default(),
            id_formats: cfg.id_formats.clone(),
            retry_policy: AttrValue::str(&cfg.mcp_retry.retry_policy),
            tenant_override: opts.tenant_id.clone(),
            semconv_has_gen_ai_system: sc
                .sections
                .iter()
                .any(|(_, a)| a.iter().any(|x| x.name == "gen_ai.system")),
            declared: sc
                .sections
                .iter()
                .flat_map(|(_, a)| a.iter().map(|x| prefix.rewrite(&x.name)))
                .collect(),
            declares_llm_finish_reason: false,
            declares_llm_request_type: false,
            string_arrays: sc
                .sections
                .iter()
                .flat_map(|(_, a)| a.iter())
                .filter(|x| x.ty == AttrType::StringArray)
                .map(|x| prefix.rewrite(&x.name))
                .chain(GENAI_STRING_ARRAYS.iter().map(ToString::to_string))
                .collect(),
            prefix,
            genai_profile: opts.genai_profile,
            oi_keys: crate::generate::OiKeys::default(),
            retrieval: cfg.retrieval.clone(),
            prices: cfg.prices.clone(),
            cost_key,
            literal_arrays: Vec::new(),
            jsonrpc_ids: (1..=JSONRPC_IDS)
                .map(|i| AttrValue::str(&i.to_string()))
                .collect(),
            task_ids: (1..=TASK_IDS)
                .map(|i| AttrValue::str(&format!("task_{i}")))
                .collect(),
            mcp_transport: AttrValue::str("tcp"),
            mcp_protocol_version: AttrValue::str(MCP_PROTOCOL_VERSION),
        };
        world.declares_llm_finish_reason = world.semconv_declares(&world.keys.finish_reason);
        world.declares_llm_request_type = world.semconv_declares(&world.keys.request_type);
        let finish = world.enums.get(&*world.keys.finish_reasons);
        world.literal_arrays = FINISH_REASONS
            .iter()
            .map(|r| {
                let v = AttrValue::str(r);
                let item = match (finish, v) {
                    (Some(a), v) if !a.contains(&v) => closest_allowed(&v, a),
                    (_, v) => v,
                };
                let item: Arc<str> = Arc::from(item.to_string());
                (*r, Arc::from([item]))
            })
            .collect();
        let transport = world.keys.network_transport;
        world.mcp_transport = world.normalise(
            &transport,
            world.mcp_transport.clone(),
            Pos::default(),
            "network.transport of MCP requests",
            d,
        );
        let rp = world.keys.retry_policy;
        world.retry_policy = world.normalise(
            &rp,
            world.retry_policy.clone(),
            Pos::default(),
            "mcp_retry.retry_policy",
            d,
        );
        let mut rd = Diags::new(
            cfg.resource
                .source
                .clone()
                .unwrap_or_else(|| cfg.source.clone()),
        );
        let data_plane = world.resource(&cfg.resource.data_plane, None, cfg, opts, &mut rd);
        let control_plane = world.resource(&cfg.resource.control_plane, None, cfg, opts, &mut rd);
        let declared = declared_services(cfg)
            .into_iter()
            .map(|(name, attrs)| {
                let r = world.resource(&attrs, Some(&name), cfg, opts, &mut rd);
                (name, r)
            })
            .collect();
        world.services = Services::new(
            &data_plane,
            &control_plane,
            &world.prefix.attr("component"),
            declared,
        );
        // Both planes usually share attributes: report each normalisation once.
        let mut seen = std::collections::HashSet::new();
        rd.items.retain(|i| seen.insert(i.to_string()));
        d.items.append(&mut rd.items);
        world.intern_texts();
        world
    }

    /// A service's resource attributes: its own (prefix applied, enums
    /// normalised), the tenant, `OTEL_RESOURCE_ATTRIBUTES`, `service.name`
    /// (a declared service's own `name`, else `--service-name`, else the
    /// config's, else `otelsim`) and the SDK attributes.
    fn resource(
        &self,
        attrs: &[(String, AttrValue)],
        name: Option<&str>,
        cfg: &Config,
        opts: &WorldOptions,
        d: &mut Diags,
    ) -> Vec<(String, AttrValue)> {
        let mut out: Vec<(String, AttrValue)> = Vec::new();
        fn set(out: &mut Vec<(String, AttrValue)>, k: String, v: AttrValue) {
            match out.iter_mut().find(|(ok, _)| *ok == k) {
                Some((_, ov)) => *ov = v,
                None => out.push((k, v)),
            }
        }
        for (k, v) in attrs {
            // Short platform keys (module, component, otel.source) get the prefix.
            let key = if matches!(k.as_str(), "module" | "component" | "otel.source") {
                self.prefix.attr(k)
            } else {
                self.prefix.rewrite(k)
            };
            let v = self.normalise(&key, v.clone(), Pos::default(), &format!("resource.{k}"), d);
            set(&mut out, key, v);
        }
        let k = self.prefix.attr("tenant.id");
        match (&opts.tenant_id, cfg.tenants.first()) {
            (Some(t), _) => set(&mut out, k, AttrValue::str(t)),
            (None, Some(t)) if !out.iter().any(|(ok, _)| *ok == k) => {
                set(&mut out, k, AttrValue::str(&t.id))
            }
            _ => {}
        }
        for (k, v) in &opts.extra_resource {
            let v = self.normalise(
                k,
                AttrValue::str(v),
                Pos::default(),
                &format!("OTEL_RESOURCE_ATTRIBUTES {k}"),
                d,
            );
            set(&mut out, k.clone(), v);
        }
        if let Some(s) = name.or(opts.service_name.as_deref()) {
            set(&mut out, "service.name".into(), AttrValue::str(s));
        }
        if !out.iter().any(|(k, _)| k == "service.name") {
            set(&mut out, "service.name".into(), AttrValue::str("otelsim"));
        }
        set(
            &mut out,
            "telemetry.sdk.name".into(),
            AttrValue::str("otelsim"),
        );
        set(
            &mut out,
            "telemetry.sdk.language".into(),
            AttrValue::str("rust"),
        );
        set(
            &mut out,
            "telemetry.sdk.version".into(),
            AttrValue::str(env!("CARGO_PKG_VERSION")),
        );
        out
    }

    /// Returns `value` if `key` has no enum or the value is allowed; otherwise the
    /// closest allowed value, with a warning naming where the value came from.
    pub fn normalise(
        &self,
        key: &str,
        value: AttrValue,
        pos: Pos,
        path: &str,
        d: &mut Diags,
    ) -> AttrValue {
        // A single string for a string-array attribute is its one item.
        let value = match value {
            AttrValue::Str(s) if self.string_arrays.contains(key) => {
                AttrValue::StrArray(Arc::from([Arc::from(s)]))
            }
            v => v,
        };
        let Some(allowed) = self.enums.get(key) else {
            return value;
        };
        if let AttrValue::StrArray(items) = &value {
            // An array's allowed values are those of its items.
            let fixed: Vec<Arc<str>> = items
                .iter()
                .map(|item| {
                    let v = AttrValue::Str(item.clone().into());
                    match self.normalise_item(key, v, allowed, pos, path, d) {
                        AttrValue::Str(s) => Arc::from(s),
                        other => Arc::from(other.to_string()),
                    }
                })
                .collect();
            return AttrValue::StrArray(fixed.into());
        }
        self.normalise_item(key, value, allowed, pos, path, d)
    }

    /// `value` if allowed, else the closest allowed value, with a warning.
    fn normalise_item(
        &self,
        key: &str,
        value: AttrValue,
        allowed: &[AttrValue],
        pos: Pos,
        path: &str,
        d: &mut Diags,
    ) -> AttrValue {
        if allowed.contains(&value) {
            return value;
        }
        let fixed = closest_allowed(&value, allowed);
        let list: Vec<String> = allowed.iter().map(ToString::to_string).collect();
        d.warn(
            pos,
            path,
            format!(
                "value `{value}` of `{key}` is not an allowed value ({}); emitted as `{fixed}`",
                list.join(", ")
            ),
        );
        fixed
    }

    /// Whether calls to some model of the catalogue carry `key`, an attribute
    /// only some providers have (cache usage, a Bedrock guardrail).
    pub fn model_sets(&self, key: &str) -> bool {
        let k = &self.keys;
        self.models.iter().any(|m| {
            if *key == *k.guardrail_id {
                m.guardrail_id.is_some()
            } else if *key == *k.cache_read_tokens {
                m.api.cache != CacheReport::Nothing
            } else if *key == *k.cache_creation_tokens {
                m.api.cache == CacheReport::ReadAndCreation
            } else {
                false
            }
        })
    }

    /// Whether the semconv file declares the attribute `name` (prefix applied).
    pub fn semconv_declares(&self, name: &str) -> bool {
        self.declared.contains(name)
    }

    pub(crate) fn enum_choice(&self, key: &str) -> Option<Categorical> {
        Categorical::uniform(self.enums.get(key)?.clone())
    }
}

/// Case-insensitive match, then prefix match either way, then the first value
/// (or a catch-all such as `unknown`/`other` when the enum has one).
pub fn closest_allowed(value: &AttrValue, allowed: &[AttrValue]) -> AttrValue {
    let text = value.to_string().to_ascii_lowercase();
    let as_text: Vec<String> = allowed
        .iter()
        .map(|a| a.to_string().to_ascii_lowercase())
        .collect();
    if let Some(i) = as_text.iter().position(|a| *a == text) {
        return allowed[i].clone();
    }
    if !text.is_empty() {
        let hits: Vec<usize> = (0..as_text.len())
            .filter(|&i| as_text[i].starts_with(&text) || text.starts_with(&as_text[i]))
            .collect();
        if hits.len() == 1 {
            return allowed[hits[0]].clone();
        }
    }
    for catch_all in ["unknown", "other", "transient_error"] {
        if let Some(i) = as_text.iter().position(|a| a == catch_all) {
            return allowed[i].clone();
        }
    }
    allowed[0].clone()
}

/// The services config `services:` declares, as (name, attributes), `service.name` first.
fn declared_services(cfg: &Config) -> Vec<(String, Vec<(String, AttrValue)>)> {
    cfg.services
        .iter()
        .map(|s| {
            let mut attrs = vec![("service.name".to_string(), AttrValue::str(&s.name))];
            attrs.extend(s.attributes.iter().cloned());
            (s.name.clone(), attrs)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;

    fn world() -> World {
        let reg = Registry::load(&Default::default()).expect("bundled files load");
        let opts = WorldOptions {
            vendor: "vendor".into(),
            ..Default::default()
        };
        World::new(&reg.config, &reg.semconv, &opts, &mut Diags::new("t"))
    }

    #[test]
    fn a_string_array_attribute_takes_a_single_string_as_its_item_and_checks_each_item() {
        let w = world();
        let key = "gen_ai.response.finish_reasons";
        let mut d = Diags::new("t.yaml");
        let v = w.normalise(
            key,
            AttrValue::str("tool_call"),
            Pos::default(),
            "p",
            &mut d,
        );
        assert_eq!(v, AttrValue::str_array(&["tool_call"]));
        assert!(d.items.is_empty());
        let v = w.normalise(
            key,
            AttrValue::str_array(&["stop", "STOP", "content_filter"]),
            Pos::default(),
            "p",
            &mut d,
        );
        assert_eq!(v, AttrValue::str_array(&["stop", "stop", "stop"]));
        assert_eq!(d.items.len(), 2, "one warning per item outside the enum");
        assert_eq!(w.lit_array("stop"), AttrValue::str_array(&["stop"]));
        // Other attributes keep their strings.
        let v = w.normalise(
            "vendor.route",
            AttrValue::str("x"),
            Pos::default(),
            "p",
            &mut d,
        );
        assert_eq!(v, AttrValue::str("x"));
    }

    #[test]
    fn every_provider_of_the_conventions_has_its_api() {
        let reg = Registry::load(&Default::default()).expect("bundled files load");
        let allowed = reg
            .semconv
            .sections
            .iter()
            .flat_map(|(_, a)| a)
            .find(|a| a.name == "gen_ai.provider.name")
            .map(|a| a.allowed.clone())
            .expect("declared");
        for p in &allowed {
            let api = provider_api(p.as_str().unwrap());
            assert_eq!(api.provider, p.as_str().unwrap());
            assert!(api.host.contains('.'), "{p}: {}", api.host);
        }
        assert_eq!(allowed.len(), PROVIDER_APIS.len());
        let w = world();
        let bedrock = w
            .models
            .iter()
            .find(|m| m.provider == AttrValue::str("aws.bedrock"))
            .expect("a Bedrock model");
        assert!(bedrock.guardrail_id.is_some());
        assert!(w.model_sets(&w.keys.guardrail_id));
        assert!(w.model_sets(&w.keys.cache_creation_tokens));
    }

    #[test]
    fn a_bedrock_model_without_a_guardrail_is_warned_about() {
        let mut reg = Registry::load(&Default::default()).expect("bundled files load");
        for m in &mut reg.config.llm_models {
            m.guardrail_id = None;
        }
        let mut d = Diags::new("t");
        let opts = WorldOptions {
            vendor: "vendor".into(),
            ..Default::default()
        };
        let w = World::new(&reg.config, &reg.semconv, &opts, &mut d);
        let text: Vec<String> = d.items.iter().map(ToString::to_string).collect();
        assert!(
            text.iter()
                .any(|t| t.contains("guardrail_id") && t.contains(DEFAULT_GUARDRAIL_ID)),
            "{text:?}"
        );
        let bedrock = w.models.iter().find_map(|m| m.guardrail_id.clone());
        assert_eq!(bedrock, Some(AttrValue::str(DEFAULT_GUARDRAIL_ID)));
    }
}
