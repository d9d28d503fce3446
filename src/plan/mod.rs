//! The resolved plan of a scenario: what the generator samples from.
//!
//! `compile` turns scenario + config + semconv into these types: span names carry
//! the active prefix, references are resolved to ids, literal attribute values are
//! checked against the semconv enums (and normalised, with a warning), and both ways
//! of describing a trace (an explicit `root:` tree and a `data_plane.workflow`)
//! become the same `Node` tree. `world` holds what every scenario of a run shares.

mod compile;
mod content;
mod services;
mod topology;
mod v2;
mod world;

pub use compile::{
    outcome_of_template, sanitize_scope, Compiler, LARGE_TRACE_SPANS, MAX_SPANS_PER_TRACE,
};
pub use services::{Service, Services, PLANE_COMPONENTS};
pub use world::{
    closest_allowed, provider_api, CacheReport, IdStyle, Keys, ModelChoice, Prefixer, ProviderApi,
    World, WorldOptions, MCP_PROTOCOL_VERSION, PROVIDER_APIS,
};

use crate::class::{ClassOf, SpanClass};
use crate::model::config::Sample;
use crate::model::distribution::{Categorical, Count, Distribution};
use crate::model::AttrValue;
use crate::record::{Key, ServiceId, SpanKind, Text};
use std::sync::Arc;

/// What a span is, which decides the attributes the generator adds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// `a2a.orchestrate`: the agent turn (outcome, end user, redaction, turn index).
    Orchestrate,
    /// `planner`: planning the turn's steps.
    Planner,
    /// `task.execute`: one task of the plan (task id and type).
    Task,
    /// `llm.call`: a GenAI inference (model, tokens, messages).
    Llm,
    /// `tools.recommend`: choosing the MCP tool to call.
    ToolsRecommend,
    /// `mcp.tool.execute`: an MCP tool call, the logical span over its attempts.
    McpExecute,
    /// An attempt span of an MCP tool call (`mcp.tool.execute.attempt`).
    McpAttempt,
    /// `response.compose`: writing the reply.
    Compose,
    /// `context.augment` / `rag.retrieve`: retrieval for the prompt.
    Rag,
    /// A control-plane validation span.
    ControlPlane,
    /// Any other class, or an attempt of a step that is not a tool call: no role attributes.
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
        self.genai_kind().unwrap_or(SpanKind::Internal)
    }

    /// The kind the GenAI conventions give the operation the code sets on spans
    /// of this role, whatever a semconv file or a step says:
    ///
    /// - `llm.call` (`chat`): CLIENT, a call to a remote model;
    /// - `mcp.tool.execute` (`execute_tool`): INTERNAL; its attempts are the MCP
    ///   requests (`tools/call`), CLIENT;
    /// - `a2a.orchestrate` (`invoke_agent`): INTERNAL. In otelsim's model this span
    ///   is also where the data plane receives the A2A request, so SERVER suggests
    ///   itself; but the conventions allow an agent invocation only INTERNAL (an
    ///   agent in the process) or CLIENT (a remote agent), and a separate server
    ///   span would add a span to every turn. The request's SERVER span is the
    ///   gateway's `request.validation`: the turn's parent in a single-trace
    ///   request, the root its trace links to otherwise. A root may be of any
    ///   kind, so each trace stays valid.
    pub fn genai_kind(self) -> Option<SpanKind> {
        Some(match self {
            // A retrieval asks a knowledge-base service, as a model call asks a provider.
            Role::Llm | Role::McpAttempt | Role::Rag => SpanKind::Client,
            Role::Orchestrate | Role::McpExecute => SpanKind::Internal,
            _ => return None,
        })
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
    /// The same value on every span.
    Literal(AttrValue),
    /// A weighted pick among values.
    Choice(Categorical),
    /// A number drawn from a distribution.
    Numeric {
        /// The distribution drawn from.
        dist: Distribution,
        /// Round to an integer; else to three decimals.
        integer: bool,
    },
}

/// How a span fails: on its own at a rate, with which `error.type`, and how a failure spreads.
#[derive(Clone, Debug)]
pub struct ErrorModel {
    /// Chance (0–1) that each instance fails on its own.
    pub rate: f64,
    /// Weighted allowed `error.type` values for this span's own failures.
    pub types: Categorical,
    /// Whether a failure of this span marks its parent failed too.
    pub propagate: bool,
    /// Chance that this span fails when its parent fails on its own.
    pub from_parent: f64,
    /// Chance that, once this span has failed, every later sibling under the same parent fails
    /// too.
    pub cascade_to_siblings: f64,
    /// Status message of the span when it fails on its own.
    pub message: Option<Arc<str>>,
    /// A declared exception (type, message) recorded when this span fails.
    pub exception: Option<(Arc<str>, Arc<str>)>,
}

/// One attempt of a scripted retry (MCP retry templates).
#[derive(Clone, Debug)]
pub struct ScriptedAttempt {
    /// Whether the attempt succeeds.
    pub success: bool,
    /// The `error.type` of the attempt when it fails.
    pub error_type: Key,
    /// Duration of the attempt span, in ms.
    pub latency: Distribution,
}

/// How the attempts of a retried step turn out.
#[derive(Clone, Debug)]
pub enum RetryPlan {
    /// Probabilistic attempts (`retry:` in a span step).
    Random {
        /// Attempts at most; the last one ends the step whatever its outcome.
        max_attempts: u32,
        /// The first attempt always fails.
        force_initial_failure: bool,
        /// Success probability of attempt i (0-based); the last entry repeats.
        success_rate_per_attempt: Vec<f64>,
        /// Weighted `error.type` of a failed attempt.
        error_types: Categorical,
        /// When non-empty, a failure of another type is not retried.
        retryable: Vec<Key>,
    },
    /// A fixed sequence of attempts, each with its outcome (MCP retry templates).
    Scripted(Vec<ScriptedAttempt>),
}

/// A step whose work runs as attempts: one child span each, with backoff gaps between them.
#[derive(Clone, Debug)]
pub struct Retry {
    /// How many attempts there are and how each turns out.
    pub plan: RetryPlan,
    /// Span name of each attempt: the step's name plus `.attempt`.
    pub attempt_name: Key,
    /// `span.class` of attempt spans (the class plus `.attempt`).
    pub attempt_class: Key,
    /// Latency of each attempt of a `Random` plan (scripted attempts carry their own).
    pub attempt_latency: Distribution,
    /// Gap before the second attempt, in ms; each later gap is `backoff_multiplier` times the
    /// one before.
    pub backoff_base_ms: f64,
    /// Growth factor of the gap from one attempt to the next.
    pub backoff_multiplier: f64,
    /// How far each gap varies at random, as a fraction (0.2: ±20%).
    pub backoff_jitter: f64,
}

/// The MCP tool a tool span calls.
#[derive(Clone, Debug)]
pub struct ToolRef {
    /// `gen_ai.tool.name`.
    pub name: Key,
    /// The tool's id in config (`<prefix>.mcp.tool.uuid`).
    pub tool_uuid: Key,
    /// The id of the MCP server that serves it (`<prefix>.mcp.server.uuid`).
    pub server_uuid: Key,
    /// How many tools that server offers (`<prefix>.mcp.tools.available.count`).
    pub server_tool_count: i64,
    /// `server.address` of that server's MCP endpoint.
    pub server_address: Key,
    /// `server.port` of that endpoint.
    pub server_port: i64,
}

/// A fixed event recorded on every instance of a span (e.g. validation errors).
#[derive(Clone, Debug)]
pub struct EventPlan {
    /// Event name, prefix applied.
    pub name: Key,
    /// The event's attributes, the same on every instance.
    pub attrs: Vec<(Key, AttrValue)>,
    /// Attributes drawn per instance (a topology's events), after `attrs`.
    pub sampled: Vec<(Key, AttrGen)>,
    /// Chance (0–1) that an instance records the event (1 for every fixed event).
    pub probability: f64,
}

/// The status attribute a topology span carries, set from its outcome.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ResponseStatus {
    /// None (not a topology's HTTP or gRPC span).
    #[default]
    None,
    /// `http.response.status_code`: 200, or the 5xx its `error.type` answers with.
    Http,
    /// `rpc.response.status_code`: `OK`, or the gRPC code its `error.type` answers with.
    Grpc,
}

/// One step of a span tree, resolved: what each instance of the span gets, and its children.
#[derive(Clone, Debug)]
pub struct Node {
    /// Span name, prefix applied.
    pub name: Key,
    /// The class as written (without prefix): the `span.class` value.
    pub class_name: Key,
    /// The class the generator's rules key by (`attempt` set for attempt spans).
    pub class: ClassOf,
    /// Decides the role attributes the generator adds (see [`Role::of`]).
    pub role: Role,
    /// Span kind: as written, else the semconv `span_names` entry, else the role's default.
    pub kind: SpanKind,
    /// The service the span is emitted under.
    pub service: ServiceId,
    /// Sampled duration of each instance, in ms; children that need more room stretch it.
    pub latency: Distribution,
    /// How the span fails.
    pub error: ErrorModel,
    /// Attributes the step sets, each with how its value is produced.
    pub attrs: Vec<(Key, AttrGen)>,
    /// Events recorded on every instance.
    pub events: Vec<EventPlan>,
    /// Child steps, in order.
    pub children: Vec<Node>,
    /// Whether the children run concurrently instead of one after another.
    pub parallel: bool,
    /// Chance that the step (and its subtree) appears under each instance of its parent.
    pub probability: f64,
    /// How many instances appear under each instance of the parent.
    pub count: Count,
    /// When set, the span's work runs as attempt child spans.
    pub retry: Option<Retry>,
    /// The MCP tool an LLM, recommendation or tool-call span names.
    pub tool: Option<ToolRef>,
    /// `task.type` for task spans.
    pub task_type: Option<Key>,
    /// The declared attributes the semconv fill gives this span and its attempt
    /// spans when nothing else set them (attached once by
    /// [`crate::generate::attach_semconv_fill`]).
    pub fill: Vec<crate::generate::FillAttr>,
    /// A failure a simulation goal injects here, when this node's slot is the trace's target.
    pub injection: Option<(u32, Injection)>,
    /// The conversation event this span records from the request's sample (late-v1 files).
    pub content: Option<ContentEvent>,
    /// What every attempt of this tool call carries as `gen_ai.tool.call.arguments` / `.result`.
    pub tool_payload: Option<ToolPayload>,
    /// The agent turn fails its `response.compose` step when an earlier step failed, and a
    /// `task.execute` wrapper does not take its child's failure (the late-v1 reading of the
    /// conventions' `error_propagation_to_response` rule).
    pub response_rule: bool,
    /// The file lists every event of the span (v2): the generator adds none of its own
    /// (no tool-selection event, no exception event on failure).
    pub verbatim: bool,
    /// An LLM call carries the conversation's messages (v2: only with content capture on).
    pub capture: bool,
    /// Where an LLM call stands in the agent loop.
    pub llm_phase: LlmPhase,
    /// The turn's tool calls, in order: for an LLM call that asks for them or answers
    /// from their results, and for a recommendation that selects several.
    pub tool_calls: Vec<ToolCall>,
    /// A tool call's position among the turn's tool calls: its call id is the one the
    /// LLM asked with.
    pub call_slot: Option<u32>,
    /// A topology span's status attribute, which follows its outcome.
    pub response_status: ResponseStatus,
    /// A span of a topology (HTTP or database call): it carries the request id and
    /// its protocol's attributes, none of the agent platform's (session, tenant,
    /// OpenInference).
    pub service_call: bool,
    /// The service whose request this span stands for (an incident on it applies
    /// here): the callee of a SERVER span or of a CLIENT span to a database or
    /// external API; `None` for a CLIENT span whose callee has a SERVER span.
    pub handled_by: Option<ServiceId>,
}

/// Where an LLM call stands in the agent loop.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LlmPhase {
    /// The one LLM call of a turn (no loop): it answers.
    #[default]
    Single,
    /// It asks for the turn's tool calls (`finish_reasons ["tool_call"]`).
    ToolRequest,
    /// It answers from the tools' results (`finish_reasons ["stop"]`).
    Answer,
}

/// One tool call of a turn as the LLM sees it: the tool, what it is called with and
/// what it answers (JSON text).
#[derive(Clone, Debug)]
pub struct ToolCall {
    /// The tool's name.
    pub name: Key,
    /// The tool-call part of the asking message, as JSON around its call id (rendered once:
    /// each request only puts its id between the two halves).
    pub call_part: (String, String),
    /// The tool message that hands the result back, as JSON around the call id.
    pub response_message: (String, String),
}

/// Placeholder for a call id while a message is rendered, then split around.
const ID_MARK: &str = "@@otelsim-call-id@@";

impl ToolCall {
    /// Renders the parts of a call to `name` with these payloads (JSON text; text that
    /// is no JSON, such as a cut payload, stays a string).
    pub fn new(name: &str, arguments: Option<&AttrValue>, result: Option<&AttrValue>) -> Self {
        let json = |v: Option<&AttrValue>| match v.and_then(AttrValue::as_str) {
            Some(t) => {
                serde_json::from_str(t).unwrap_or_else(|_| serde_json::Value::String(t.to_string()))
            }
            None => serde_json::json!({}),
        };
        let split = |v: serde_json::Value| {
            let text = v.to_string();
            match text.split_once(ID_MARK) {
                Some((a, b)) => (a.to_string(), b.to_string()),
                None => (text, String::new()),
            }
        };
        ToolCall {
            name: Key::from(name),
            call_part: split(
                serde_json::json!({"type": "tool_call", "id": ID_MARK, "name": name, "arguments": json(arguments)}),
            ),
            response_message: split(
                serde_json::json!({"role": "tool", "parts": [{"type": "tool_call_response", "id": ID_MARK, "response": json(result)}]}),
            ),
        }
    }
}

/// A conversation event recorded on a control-plane span from the request's sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentEvent {
    /// `<prefix>.enduser.request` on `request.validation`: what the user sent.
    EnduserRequest,
    /// `<prefix>.agent.response` on `response.validation`: what the agent answered.
    AgentResponse,
}

/// A tool call's payloads, rendered once at compile time (JSON text).
#[derive(Clone, Debug, Default)]
pub struct ToolPayload {
    /// `gen_ai.tool.call.arguments`.
    pub arguments: Option<AttrValue>,
    /// `gen_ai.tool.call.result`.
    pub result: Option<AttrValue>,
    /// The result is config.yaml's sample of a successful call, not one the scenario
    /// wrote: a failed call answers with its error instead.
    pub result_is_sample: bool,
}

/// What a simulation goal (or `error_pattern`) does to the span it targets.
#[derive(Clone, Debug)]
pub enum Injection {
    /// The tool call fails on its one attempt (client errors are not retried).
    FailToolCall {
        /// `error.type` of the failed attempt.
        error_type: Key,
        /// `http.response.status_code` values, one picked per failure; empty: none is set.
        http_status: Vec<i64>,
        /// Duration of the failed attempt, in ms.
        latency: Distribution,
    },
    /// The tool call goes to another division's server (same tool name) and fails.
    WrongDivision {
        /// The same-named tools of other divisions' servers; each failure calls one at random.
        targets: Vec<ToolRef>,
        /// `error.type` of the failed attempt.
        error_type: Key,
        /// Duration of the failed attempt, in ms.
        latency: Distribution,
    },
    /// The span itself fails.
    FailStep {
        /// The `error.type` the span fails with.
        error_type: Key,
    },
}

/// Which injection slot a trace targets: `fixed`, or one of `slots` at random;
/// applied to a trace with probability `rate`.
#[derive(Clone, Debug)]
pub struct GoalPlan {
    /// The goal (or error pattern) this targeting carries out.
    pub name: Key,
    /// Injection slots in the tree: its tool calls, or 1 for a failing `response.compose`.
    pub slots: u32,
    /// The slot always targeted (a step index override, the first or last tool call);
    /// `None`: a random one per trace.
    pub fixed: Option<u32>,
    /// Chance (0–1) that a trace gets the injected failure.
    pub rate: f64,
    /// `exception_type` / `exception_message` overrides for the injected failure.
    pub exception: Option<(Arc<str>, Arc<str>)>,
}

/// A conversation sample with its span attribute values rendered once, at compile time.
#[derive(Clone, Debug)]
pub struct PlannedSample {
    /// The user's message: the tool-selection input, and what input token counts follow.
    pub user_input: Arc<str>,
    /// Length of the reply text, which output token counts follow.
    pub reply_len: usize,
    /// What the LLM call answers (the reply, or the planner's output), as text.
    pub answer: AttrValue,
    /// `gen_ai.input.messages` / `gen_ai.output.messages` in the OTel GenAI JSON shape.
    pub input_messages: AttrValue,
    /// The reply, as `gen_ai.output.messages`.
    pub output_messages: AttrValue,
    /// The `*_redacted` texts, when the scenario's redaction is not `none`.
    pub redacted: Option<(AttrValue, AttrValue)>,
    /// The raw user request and agent response, for the conversation events (late-v1 files).
    pub raw: Option<ContentTexts>,
    /// The turn's own traces, when they differ from the scenario's (a late-v1 turn with its
    /// own `steps`, every v2 turn).
    pub turn_parts: Option<Arc<TurnParts>>,
    /// The first turn of an end user's session: a new session starts here.
    pub new_session: bool,
    /// The end user's fixed pseudonymous id (v2), instead of a generated one.
    pub enduser_id: Option<Arc<str>>,
    /// The instrumentation scope of this turn's traces (v2: per end user).
    pub scope: Option<Key>,
}

/// What the user sent and the agent answered, as the conversation events carry them.
#[derive(Clone, Debug)]
pub struct ContentTexts {
    /// The user's request.
    pub user: AttrValue,
    /// The agent's response.
    pub reply: AttrValue,
    /// Both redacted, when the scenario's redaction is not `none`.
    pub redacted: Option<(AttrValue, AttrValue)>,
}

/// A turn's own traces and goal targeting.
#[derive(Clone, Debug)]
pub struct TurnParts {
    /// The traces of the turn's request, in the order they are sent.
    pub parts: Vec<Part>,
    /// The goal's targeting within these trees.
    pub goal: Option<GoalPlan>,
    /// The same traces with each schedule window's latency profile (v2), in the order of
    /// [`ScenarioPlan::windows`].
    pub by_window: Vec<Vec<Part>>,
}

/// What a scenario's later-v1 keys add to every sample's messages.
#[derive(Clone, Debug, Default)]
pub struct SampleContent {
    /// The system prompt of the LLM call (`llm_interactions[0].system_prompt`).
    pub system_prompt: Option<String>,
    /// What the LLM call answers instead of the agent's reply (first planner `output`);
    /// used for samples, not for scripted turns.
    pub planner_output: Option<String>,
    /// Whether the conversation events are recorded (late-v1 files).
    pub events: bool,
}

impl PlannedSample {
    /// Renders a config sample; `redaction` (`none`, `basic`, `strict`) decides the redacted
    /// texts, `content` the system prompt, the LLM's answer and the conversation events;
    /// `turn`: a scripted turn (the LLM answers with the turn's reply, not the planner's).
    pub fn new(
        s: &Sample,
        redaction: &str,
        content: &SampleContent,
        turn: bool,
        history: &[Sample],
    ) -> Self {
        let text = |role: &str, t: &str| serde_json::json!({"role": role, "parts": [{"type": "text", "content": t}]});
        let mut messages = Vec::new();
        if let Some(sys) = &content.system_prompt {
            messages.push(text("system", sys));
        }
        for h in history {
            messages.push(text("user", &h.user_input));
            messages.push(text("assistant", &h.llm_response));
        }
        messages.push(text("user", &s.user_input));
        let input = serde_json::Value::Array(messages);
        let answer = match (&content.planner_output, turn) {
            (Some(p), false) => p.as_str(),
            _ => s.llm_response.as_str(),
        };
        let output = serde_json::json!([{"role": "assistant", "parts": [{"type": "text", "content": answer}], "finish_reason": "stop"}]);
        let strict = redaction == "strict";
        let user_redacted = || {
            s.user_input_redacted
                .clone()
                .unwrap_or_else(|| crate::redact::mask(&s.user_input, strict))
        };
        let reply_redacted = || {
            s.llm_response_redacted
                .clone()
                .unwrap_or_else(|| crate::redact::mask(&s.llm_response, strict))
        };
        let answer_redacted = || match (&content.planner_output, turn) {
            (Some(p), false) => crate::redact::mask(p, strict),
            _ => reply_redacted(),
        };
        let redacted = (redaction != "none").then(|| {
            (
                AttrValue::str(&user_redacted()),
                AttrValue::str(&answer_redacted()),
            )
        });
        let raw = content.events.then(|| ContentTexts {
            user: AttrValue::str(&s.user_input),
            reply: AttrValue::str(&s.llm_response),
            redacted: (redaction != "none").then(|| {
                (
                    AttrValue::str(&user_redacted()),
                    AttrValue::str(&reply_redacted()),
                )
            }),
        });
        PlannedSample {
            user_input: Arc::from(s.user_input.as_str()),
            reply_len: answer.len(),
            answer: AttrValue::str(answer),
            input_messages: AttrValue::Str(Text::from(input.to_string())),
            output_messages: AttrValue::Str(Text::from(output.to_string())),
            redacted,
            raw,
            turn_parts: None,
            new_session: false,
            enduser_id: None,
            scope: None,
        }
    }
}

/// One trace of a request: control-plane validation, the data-plane turn, or response validation.
#[derive(Clone, Debug)]
pub struct Part {
    /// Which part: `incoming_validation`, `data_plane`, `response_validation`, or
    /// `request` (a v2 turn's one trace).
    pub label: &'static str,
    /// The root span of the part's tree.
    pub root: Node,
}

/// A compiled scenario: everything the generator needs for the traces of one request.
#[derive(Clone, Debug)]
pub struct ScenarioPlan {
    /// The scenario's name, carried by each of its traces into counters and reports.
    pub name: Key,
    /// Instrumentation scope name: `otelsim.<scenario>`, sanitised.
    pub scope: Key,
    /// The scenario's description, as written.
    pub description: String,
    /// `<prefix>.tenant.id`: `--tenant-id`, else `context.tenant_uuid`, else the id of
    /// `context.tenant`, else `default`.
    pub tenant_id: Key,
    /// `context.agent`: the agent the turn's span names as its target.
    pub agent_id: Option<Key>,
    /// `redaction_applied`: `none`, `basic` or `strict`.
    pub redaction: Key,
    /// The traces of one request, in the order they are sent.
    pub parts: Vec<Part>,
    /// Multi-turn conversation (one request per turn) or samples (one per iteration).
    pub turns: Vec<PlannedSample>,
    /// Conversation samples; a request that is not a turn uses one at random (config's samples
    /// when the scenario has none).
    pub samples: Vec<PlannedSample>,
    /// Iterations of `otelsim scenario` without `--count` (at least 1).
    pub repeat_count: u32,
    /// Gap between iterations, in ms, when no `--interval` is given.
    pub interval_ms: f64,
    /// ± random spread of that gap, in ms.
    pub interval_deviation_ms: f64,
    /// Whether metrics are derived from this scenario's spans (unless `--metrics` /
    /// `--no-metrics`).
    pub emit_metrics: bool,
    /// Whether log records are derived from this scenario's spans (unless `--logs` /
    /// `--no-logs`).
    pub emit_logs: bool,
    /// The simulation goal's targeting, for the data-plane part.
    pub goal: Option<GoalPlan>,
    /// Emit an allowed request's parts as one trace (`control_plane.trace_flow_mode: single`).
    pub single_trace: bool,
    /// `cycle_conversation_samples`: iteration i uses sample i mod n.
    pub cycle_samples: bool,
    /// v2 `workload_schedule` windows: while the run's clock is inside one, a turn runs
    /// with that window's latency profile ([`TurnParts::by_window`]).
    pub windows: Vec<crate::tz::Window>,
    /// Whether attributes the semconv declares and nothing sets are filled (not for v2,
    /// whose files say every attribute).
    pub semconv_fill: bool,
    /// `instability:`: each iteration is one drifting session laid out by
    /// `generate::instability` instead of from `parts`.
    pub instability: Option<Arc<crate::model::instability::InstabilityDef>>,
    /// `data_plane.reasoning`: the LLM calls think first (reasoning tokens and a thinking event).
    pub reasoning: Option<Arc<crate::model::scenario::ReasoningDef>>,
    /// `episode:`: the generator's episode pass fills in turns, rewards and states.
    pub episode: Option<Arc<crate::model::episode::EpisodeDef>>,
    /// `track_costs`: LLM spans carry `<prefix>.llm.cost.usd` from config.yaml `prices`.
    pub track_costs: bool,
}

impl ScenarioPlan {
    /// Interns the string values its spans copy (literals, choices, error types,
    /// event attributes, conversation texts), so copying one into a span, and
    /// dropping it, touches no reference count that every worker shares.
    pub fn intern_texts(&mut self) {
        for p in &mut self.parts {
            p.root.intern_texts();
        }
        for s in self.turns.iter_mut().chain(&mut self.samples) {
            s.intern_texts();
        }
    }
}

impl PlannedSample {
    fn intern_texts(&mut self) {
        self.answer.intern();
        self.input_messages.intern();
        self.output_messages.intern();
        let redacted = self.redacted.iter_mut().flat_map(|(a, b)| [a, b]);
        let raw = self.raw.iter_mut().flat_map(|c| {
            let redacted = c.redacted.iter_mut().flat_map(|(a, b)| [a, b]);
            [&mut c.user, &mut c.reply].into_iter().chain(redacted)
        });
        redacted.chain(raw).for_each(AttrValue::intern);
        if let Some(tp) = &mut self.turn_parts {
            let tp = Arc::make_mut(tp);
            let windows = tp.by_window.iter_mut().flatten();
            for p in tp.parts.iter_mut().chain(windows) {
                p.root.intern_texts();
            }
        }
    }
}

impl AttrGen {
    fn intern_texts(&mut self) {
        match self {
            AttrGen::Literal(v) => v.intern(),
            AttrGen::Choice(c) => c.values.iter_mut().for_each(AttrValue::intern),
            AttrGen::Numeric { .. } => {}
        }
    }
}

impl Node {
    fn intern_texts(&mut self) {
        self.attrs.iter_mut().for_each(|(_, g)| g.intern_texts());
        self.error
            .types
            .values
            .iter_mut()
            .for_each(AttrValue::intern);
        for e in &mut self.events {
            e.attrs.iter_mut().for_each(|(_, v)| v.intern());
            e.sampled.iter_mut().for_each(|(_, g)| g.intern_texts());
        }
        if let Some(p) = &mut self.tool_payload {
            p.arguments
                .iter_mut()
                .chain(&mut p.result)
                .for_each(AttrValue::intern);
        }
        self.children.iter_mut().for_each(Node::intern_texts);
    }
}
