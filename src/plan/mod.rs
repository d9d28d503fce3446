//! The resolved plan of a scenario: what the generator samples from.
//!
//! `compile` turns scenario + config + semconv into these types: span names carry
//! the active prefix, references are resolved to ids, literal attribute values are
//! checked against the semconv enums (and normalised, with a warning), and both ways
//! of describing a trace (an explicit `root:` tree and a `data_plane.workflow`)
//! become the same `Node` tree. `world` holds what every scenario of a run shares.

mod compile;
mod services;
mod world;

pub use compile::{outcome_of_template, sanitize_scope, Compiler, MAX_SPANS_PER_TRACE};
pub use services::{Service, Services, PLANE_COMPONENTS};
pub use world::{closest_allowed, Keys, ModelChoice, Prefixer, World, WorldOptions};

use crate::class::{ClassOf, SpanClass};
use crate::model::config::Sample;
use crate::model::distribution::{Categorical, Count, Distribution};
use crate::model::AttrValue;
use crate::record::{Key, ServiceId, SpanKind};
use std::sync::Arc;

/// What a span is, which decides the attributes the generator adds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Orchestrate,
    Planner,
    Task,
    Llm,
    ToolsRecommend,
    McpExecute,
    McpAttempt,
    Compose,
    Rag,
    ControlPlane,
    Generic,
}

impl Role {
    /// The role of a span class (an attempt of a tool call is `McpAttempt`;
    /// other attempts add nothing of their own).
    pub fn of(class: ClassOf) -> Role {
        if class.attempt {
            return match class.class {
                SpanClass::McpToolExecute => Role::McpAttempt,
                _ => Role::Generic,
            };
        }
        match class.class {
            SpanClass::Orchestrate => Role::Orchestrate,
            SpanClass::Planner => Role::Planner,
            SpanClass::TaskExecute => Role::Task,
            SpanClass::LlmCall => Role::Llm,
            SpanClass::ToolsRecommend => Role::ToolsRecommend,
            SpanClass::McpToolExecute => Role::McpExecute,
            SpanClass::ResponseCompose => Role::Compose,
            SpanClass::ContextAugment | SpanClass::RagRetrieve => Role::Rag,
            c if c.is_control_plane() => Role::ControlPlane,
            _ => Role::Generic,
        }
    }

    /// Resource component (semconv `component` enum) the span belongs to.
    pub fn component(self) -> Option<&'static str> {
        Some(match self {
            Role::Orchestrate | Role::Task | Role::Compose => "orchestrator",
            Role::Planner => "planning",
            Role::Llm => "llm",
            Role::ToolsRecommend => "tool_recommender",
            Role::McpExecute | Role::McpAttempt => "mcp_client",
            Role::Rag => "retrieval",
            Role::ControlPlane | Role::Generic => return None,
        })
    }

    fn default_kind(self) -> SpanKind {
        match self {
            Role::Orchestrate => SpanKind::Server,
            Role::Llm | Role::McpExecute | Role::McpAttempt => SpanKind::Client,
            _ => SpanKind::Internal,
        }
    }

    /// Error types this kind of span fails with when nothing else is declared, with weights.
    fn default_error_types(self) -> &'static [(&'static str, f64)] {
        match self {
            Role::Llm => &[
                ("unavailable", 0.5),
                ("timeout", 0.3),
                ("protocol_error", 0.2),
            ],
            Role::McpExecute | Role::McpAttempt => &[
                ("tool_error", 0.4),
                ("timeout", 0.3),
                ("unavailable", 0.2),
                ("invalid_arguments", 0.1),
            ],
            Role::ToolsRecommend | Role::Compose => &[("protocol_error", 1.0)],
            Role::Task => &[("tool_error", 1.0)],
            Role::ControlPlane => &[("invalid_arguments", 1.0)],
            _ => &[("unavailable", 0.7), ("timeout", 0.3)],
        }
    }

    /// Sections of the semconv file whose attributes apply to this role.
    pub fn semconv_sections(self) -> &'static [&'static str] {
        match self {
            Role::Orchestrate => &["a2a_orchestration_attributes"],
            Role::Planner => &["planner_attributes"],
            Role::Task => &["task_execute_attributes"],
            Role::Llm => &["llm_inference_attributes", "llm_call_attributes"],
            Role::ToolsRecommend => &["tools_recommend_attributes"],
            Role::McpExecute => &["mcp_tool_attributes"],
            Role::McpAttempt => &["mcp_tool_attempt_attributes"],
            Role::Compose => &["response_compose_attributes"],
            Role::Rag => &["context_augment_attributes"],
            Role::ControlPlane | Role::Generic => &[],
        }
    }
}

/// How an attribute value is produced for each span.
#[derive(Clone, Debug, PartialEq)]
pub enum AttrGen {
    Literal(AttrValue),
    Choice(Categorical),
    Numeric { dist: Distribution, integer: bool },
}

#[derive(Clone, Debug)]
pub struct ErrorModel {
    pub rate: f64,
    /// Weighted allowed `error.type` values for this span's own failures.
    pub types: Categorical,
    pub propagate: bool,
    pub from_parent: f64,
    pub cascade_to_siblings: f64,
    pub message: Option<Arc<str>>,
    /// A declared exception (type, message) recorded when this span fails.
    pub exception: Option<(Arc<str>, Arc<str>)>,
}

/// One attempt of a scripted retry (MCP retry templates).
#[derive(Clone, Debug)]
pub struct ScriptedAttempt {
    pub success: bool,
    pub error_type: Key,
    pub latency: Distribution,
}

#[derive(Clone, Debug)]
pub enum RetryPlan {
    /// Probabilistic attempts (`retry:` in a span step).
    Random {
        max_attempts: u32,
        force_initial_failure: bool,
        success_rate_per_attempt: Vec<f64>,
        error_types: Categorical,
        /// When non-empty, a failure of another type is not retried.
        retryable: Vec<Key>,
    },
    Scripted(Vec<ScriptedAttempt>),
}

#[derive(Clone, Debug)]
pub struct Retry {
    pub plan: RetryPlan,
    pub attempt_name: Key,
    /// `span.class` of attempt spans (the class plus `.attempt`).
    pub attempt_class: Key,
    /// Latency of each attempt of a `Random` plan (scripted attempts carry their own).
    pub attempt_latency: Distribution,
    pub backoff_base_ms: f64,
    pub backoff_multiplier: f64,
    pub backoff_jitter: f64,
}

/// The MCP tool a tool span calls.
#[derive(Clone, Debug)]
pub struct ToolRef {
    pub name: Key,
    pub tool_uuid: Key,
    pub server_uuid: Key,
    pub server_tool_count: i64,
}

/// A fixed event recorded on every instance of a span (e.g. validation errors).
#[derive(Clone, Debug)]
pub struct EventPlan {
    pub name: Key,
    pub attrs: Vec<(Key, AttrValue)>,
}

#[derive(Clone, Debug)]
pub struct Node {
    pub name: Key,
    /// The class as written (without prefix): the `span.class` value.
    pub class_name: Key,
    pub class: ClassOf,
    pub role: Role,
    pub kind: SpanKind,
    /// The service the span is emitted under.
    pub service: ServiceId,
    pub latency: Distribution,
    pub error: ErrorModel,
    pub attrs: Vec<(Key, AttrGen)>,
    pub events: Vec<EventPlan>,
    pub children: Vec<Node>,
    pub parallel: bool,
    pub probability: f64,
    pub count: Count,
    pub retry: Option<Retry>,
    pub tool: Option<ToolRef>,
    /// `task.type` for task spans.
    pub task_type: Option<Key>,
    /// Attributes filled from the semconv file when nothing else set them
    /// (attached by `generate::attrs::attach_semconv_fill`).
    pub fill: Vec<(Key, AttrGen)>,
    /// A failure a simulation goal injects here, when this node's slot is the trace's target.
    pub injection: Option<(u32, Injection)>,
}

/// What a simulation goal (or `error_pattern`) does to the span it targets.
#[derive(Clone, Debug)]
pub enum Injection {
    /// The tool call fails on its one attempt (client errors are not retried).
    FailToolCall {
        error_type: Key,
        http_status: Vec<i64>,
        latency: Distribution,
    },
    /// The tool call goes to another division's server (same tool name) and fails.
    WrongDivision {
        targets: Vec<ToolRef>,
        error_type: Key,
        latency: Distribution,
    },
    /// The span itself fails.
    FailStep { error_type: Key },
}

/// Which injection slot a trace targets: `fixed`, or one of `slots` at random;
/// applied to a trace with probability `rate`.
#[derive(Clone, Debug)]
pub struct GoalPlan {
    pub name: Key,
    pub slots: u32,
    pub fixed: Option<u32>,
    pub rate: f64,
    /// `exception_type` / `exception_message` overrides for the injected failure.
    pub exception: Option<(Arc<str>, Arc<str>)>,
}

/// A conversation sample with its span attribute values rendered once, at compile time.
#[derive(Clone, Debug)]
pub struct PlannedSample {
    pub user_input: Arc<str>,
    /// Length of the reply text, which output token counts follow.
    pub reply_len: usize,
    /// `gen_ai.input.messages` / `gen_ai.output.messages` in the OTel GenAI JSON shape.
    pub input_messages: AttrValue,
    pub output_messages: AttrValue,
    /// The `*_redacted` texts, when the scenario's redaction is not `none`.
    pub redacted: Option<(AttrValue, AttrValue)>,
}

impl PlannedSample {
    pub fn new(s: &Sample, redaction: &str) -> Self {
        let input = serde_json::json!([{"role": "user", "parts": [{"type": "text", "content": s.user_input}]}]);
        let output = serde_json::json!([{"role": "assistant", "parts": [{"type": "text", "content": s.llm_response}], "finish_reason": "stop"}]);
        let redacted = (redaction != "none").then(|| {
            let strict = redaction == "strict";
            let ui = s
                .user_input_redacted
                .clone()
                .unwrap_or_else(|| crate::redact::mask(&s.user_input, strict));
            let lr = s
                .llm_response_redacted
                .clone()
                .unwrap_or_else(|| crate::redact::mask(&s.llm_response, strict));
            (AttrValue::str(&ui), AttrValue::str(&lr))
        });
        PlannedSample {
            user_input: Arc::from(s.user_input.as_str()),
            reply_len: s.llm_response.len(),
            input_messages: AttrValue::Str(Arc::from(input.to_string())),
            output_messages: AttrValue::Str(Arc::from(output.to_string())),
            redacted,
        }
    }
}

/// One trace of a request: control-plane validation, the data-plane turn, or response validation.
#[derive(Clone, Debug)]
pub struct Part {
    pub label: &'static str,
    pub root: Node,
}

#[derive(Clone, Debug)]
pub struct ScenarioPlan {
    pub name: Key,
    pub scope: Key,
    pub description: String,
    pub tenant_id: Key,
    pub agent_id: Option<Key>,
    pub redaction: Key,
    pub parts: Vec<Part>,
    /// Multi-turn conversation (one request per turn) or samples (one per iteration).
    pub turns: Vec<PlannedSample>,
    pub samples: Vec<PlannedSample>,
    pub repeat_count: u32,
    pub interval_ms: f64,
    pub interval_deviation_ms: f64,
    pub emit_metrics: bool,
    pub emit_logs: bool,
    /// The simulation goal's targeting, for the data-plane part.
    pub goal: Option<GoalPlan>,
    /// Emit an allowed request's parts as one trace (`control_plane.trace_flow_mode: single`).
    pub single_trace: bool,
}
