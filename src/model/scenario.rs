//! The types of one scenario definition file: what to emit (an explicit `root:`
//! span tree, a config workflow, or a control-plane request), how often, and with
//! which context. Plain data only; `model::read::scenario` reads them from YAML,
//! checking every reference (tenant, agent, MCP server, service, workflow,
//! template) against the loaded config.

use crate::diag::Pos;
use crate::model::config::{self, AttemptSpec, Config, ExceptionSpec, Sample};
use crate::model::distribution::{Categorical, Count, Distribution};
use crate::model::AttrValue;
use crate::record::SpanKind;
use crate::yaml::Node;

// Readers that used to live here; re-exported so existing paths keep working.
pub use crate::model::read::scenario::load;
pub use crate::model::read::scenario::step::{parse_step_for_test, read_step};

/// Largest `workload_weight` (weights are relative; this keeps their sum finite).
pub const MAX_WEIGHT: f64 = 1e6;
/// Longest interval between iterations or picks, in ms (one day).
pub const MAX_INTERVAL_MS: f64 = 86_400_000.0;

/// Values of `redaction_applied`.
pub const REDACTION_LEVELS: &[&str] = &["none", "basic", "strict"];
/// Simulation goals otelsim honours; every other name is refused.
pub const GOALS: &[&str] = &[
    "happy_path",
    "none",
    "4xx_invalid_arguments",
    "wrong_division",
    "partial_workflow",
    "ungrounded_response",
    "recommendation_failure",
    "higher_latency",
    "outlier_wrong_flow",
    "outlier_no_tools",
    "outlier_incomplete_flow",
];

/// Goals whose outlier lives in the scenario's content (conversation, workflow
/// choice, `context.tools`), as in the predecessor: no failure is injected.
pub const CONTENT_OUTLIER_GOALS: &[&str] = &[
    "outlier_wrong_flow",
    "outlier_no_tools",
    "outlier_incomplete_flow",
];

/// Which generation of the predecessor's scenario format a file is written in,
/// detected from the keys it uses (otelsim's own files are `V1`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// The documented format (the predecessor at the spec's commit), which otelsim extends.
    #[default]
    V1,
    /// The predecessor's later v1 files: `conversation.external`, `context.tools`,
    /// tool-call payloads, `llm_interactions`, per-turn `steps`, `goal`.
    LateV1,
    /// The predecessor's v2 files: `tenant`, `agent`, `endusers` with literal turns.
    V2,
}

impl Format {
    /// The name `validate` and `list --long` print.
    pub fn label(self) -> &'static str {
        match self {
            Format::V1 => "v1",
            Format::LateV1 => "late-v1",
            Format::V2 => "v2",
        }
    }
}

/// `data_plane.llm_interactions[]`: what one LLM call of the turn is told and answers.
#[derive(Clone, Debug, Default)]
pub struct LlmInteraction {
    /// `role`: `planner`, `summarizer`, ...
    pub role: String,
    /// `system_prompt`: the system message of the call.
    pub system_prompt: Option<String>,
    /// `output`: what the call answers.
    pub output: Option<String>,
}

/// How a step attribute gets its value: fixed, drawn from a number distribution, or chosen.
#[derive(Clone, Debug, PartialEq)]
pub enum AttrSpec {
    /// The same value on every span.
    Literal(AttrValue),
    /// A number drawn from a distribution.
    Numeric {
        /// The distribution drawn from.
        dist: Distribution,
        /// Whole numbers: a discrete distribution, or `integer: true`.
        integer: bool,
    },
    /// A weighted pick among values (`distribution: categorical`).
    Categorical(Categorical),
}

/// How a step fails: rate, `error.type` choices, and how failure spreads.
#[derive(Clone, Debug, PartialEq)]
pub struct ErrorDef {
    /// Chance (0–1) that the span fails on its own.
    pub rate: f64,
    /// Allowed `error.type` values to choose from when this span fails on its own.
    pub types: Vec<String>,
    /// Whether this span's failure marks its parent failed too.
    pub propagate: bool,
    /// Probability that this span fails when its parent fails on its own.
    pub from_parent: f64,
    /// Probability that a later sibling fails after this one failed.
    pub cascade_to_siblings: f64,
    /// Status message of the span when it fails on its own.
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

/// Retries of a step: attempts, per-attempt success, backoff.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryDef {
    /// Attempts at most.
    pub max_attempts: u32,
    /// The first attempt always fails.
    pub force_initial_failure: bool,
    /// Success probability of attempt i (0-based); the last entry repeats.
    pub success_rate_per_attempt: Vec<f64>,
    /// Gap before the second attempt, in ms.
    pub backoff_base_ms: f64,
    /// Growth factor of the gap from one attempt to the next.
    pub backoff_multiplier: f64,
    /// How far each gap varies at random, as a fraction (0.2: ±20%).
    pub backoff_jitter: f64,
    /// `error.type` values a failed attempt picks from.
    pub error_types: Vec<String>,
}

/// One span step of an explicit `root:` tree.
#[derive(Clone, Debug, PartialEq)]
pub struct StepDef {
    /// The span type as written (`type:` or `name:`): `vendor.llm.call`, or a bare class.
    pub type_name: String,
    /// Where the step is written, for diagnostics.
    pub pos: Pos,
    /// Its key path (`root.children[0]`), for diagnostics.
    pub path: String,
    /// `kind:`; `None`: the semconv `span_names` entry or the class's default.
    pub kind: Option<SpanKind>,
    /// `latency:` in ms; `None`: the built-in mean of its class.
    pub latency: Option<Distribution>,
    /// How the span fails (never, by default).
    pub error: ErrorDef,
    /// `attributes:`, each with how its value is produced and where it is written.
    pub attributes: Vec<(String, AttrSpec, Pos)>,
    /// `children:`, in order.
    pub children: Vec<StepDef>,
    /// Whether the children run concurrently instead of one after another.
    pub parallel: bool,
    /// Chance that the step (and its subtree) appears (default 1).
    pub probability: f64,
    /// Instances under each instance of the parent (default 1).
    pub count: Count,
    /// `retry:`: the step's work runs as attempt spans.
    pub retry: Option<RetryDef>,
    /// `service: NAME`: a service declared in config.yaml's `services:`, and where the name is written.
    pub service: Option<(String, Pos)>,
    /// Written in a `topology:`: the step is a request to `service`, emitted as
    /// its instrumentation would (CLIENT and SERVER spans with protocol attributes).
    pub call: Option<CallDef>,
}

/// One request of a `topology:` to a service (see `model::read::scenario::topology`).
#[derive(Clone, Debug, PartialEq)]
pub struct CallDef {
    /// `operation:` as written: `GET /users/{id}` for HTTP, `SELECT users` for a database.
    pub operation: String,
    /// `handled: true`: the caller handles the callee's failure, so it does not propagate.
    pub handled: bool,
    /// `events:` recorded on the span that does the work (the callee's side).
    pub events: Vec<EventDef>,
}

/// A span event a topology step records, with the chance it is recorded.
#[derive(Clone, Debug, PartialEq)]
pub struct EventDef {
    /// The event name (`cache_hit`).
    pub name: String,
    /// Chance (0–1) that a span of the step records it.
    pub probability: f64,
    /// Its attributes, each with how its value is produced.
    pub attributes: Vec<(String, AttrSpec, Pos)>,
}

/// `realistic_overrides`: tweaks to a goal-driven workflow run.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// The tool step `4xx_invalid_arguments` fails (0-based); `None`: a random one.
    pub step_index_for_4xx: Option<u32>,
    /// The division or MCP server key `wrong_division` sends the tool call to.
    pub wrong_division_target: Option<String>,
    /// The tool step `wrong_division` sends astray (0-based); `None`: a random one.
    pub step_index_wrong_division: Option<u32>,
    /// `partial_workflow`: the steps that run, instead of the workflow's.
    pub actual_steps: Option<Vec<String>>,
    /// `partial_workflow`: indices of the workflow steps left out.
    pub skip_steps: Vec<u32>,
    /// The MCP server the workflow uses, over `context.mcp_server` and `mcp_server`.
    pub mcp_server_key: Option<String>,
    /// `exception.type` of the injected failure.
    pub exception_type: Option<String>,
    /// `exception.message` of the injected failure.
    pub exception_message: Option<String>,
    /// `intended_division`: the division the request should have gone to (documentation of a
    /// wrong-division file; the failing call goes to `wrong_division_target`).
    pub intended_division: Option<String>,
}

/// `data_plane`: the config workflow to run and its options.
#[derive(Clone, Debug, Default)]
pub struct DataPlaneDef {
    /// The `workflow_templates` key of the workflow to run.
    pub workflow: Option<String>,
    /// The request validation template, when `control_plane` names none.
    pub control_plane_template: Option<String>,
    /// Scripted attempts of every tool call (a `mcp_retry_templates` name, or a list).
    pub mcp_retry: Option<Vec<AttemptSpec>>,
    /// A `latency_profiles` key; `None`: the default profile.
    pub latency_profile: Option<String>,
    /// `llm_interactions`: the first one's system prompt and the first planner's output shape
    /// the LLM call's messages.
    pub llm_interactions: Vec<LlmInteraction>,
    /// `higher_latency_condition`: why the turn is slow, as written (rendered into
    /// `higher_latency.*` attributes of the agent turn).
    pub higher_latency_condition: Option<Node>,
    /// `reasoning`: the LLM calls think first (a reasoning model).
    pub reasoning: Option<ReasoningDef>,
}

/// `data_plane.reasoning: {tokens: {min, max}, stage}`: every successful LLM
/// call of the turn reasons first; its reasoning tokens are part of its output
/// tokens (`gen_ai.usage.reasoning.output_tokens`) and the step is a span event.
#[derive(Clone, Debug, PartialEq)]
pub struct ReasoningDef {
    /// Reasoning tokens per call, drawn uniformly from `min` to `max`.
    pub tokens: (u32, u32),
    /// `stage`: what the reasoning is for (`planning`, `tool_selection`, …).
    pub stage: String,
}

/// `control_plane`: the validation template and outcome of a request.
#[derive(Clone, Debug, Default)]
pub struct ControlPlaneDef {
    /// A `request_validation_templates` id (lower-cased).
    pub template: Option<String>,
    /// `allowed`, `blocked` or `error`: picks the template when none is named.
    pub request_outcome: Option<String>,
    /// With `blocked`: the reason (`-` read as `_`), for template `blocked_<reason>`.
    pub block_reason: Option<String>,
    /// An exception event recorded on the policy check span.
    pub policy_exception: Option<ExceptionSpec>,
    /// `augmentation_exception`: the type and/or message that replace the template's
    /// exception on the augmentation span when it fails.
    pub augmentation_exception: (Option<String>, Option<String>),
}

/// `context`: tenant, agent, MCP server, workflow and error pattern of a run.
#[derive(Clone, Debug, Default)]
pub struct ContextDef {
    /// A config tenant key (default: the first tenant).
    pub tenant: Option<String>,
    /// An agent id (default: the first of config `agents`).
    pub agent: Option<String>,
    /// The MCP server key (the "correct division").
    pub mcp_server: Option<String>,
    /// A `workflow_templates` key, when `data_plane` names no workflow.
    pub workflow: Option<String>,
    /// Steps used as the workflow when no workflow is named.
    pub correct_flow: Vec<String>,
    /// One of [`ERROR_PATTERNS`]: a tool-call failure injected at `error_rate`.
    pub error_pattern: Option<String>,
    /// `error_config.rate`: chance per trace that `error_pattern` injects its failure.
    pub error_rate: Option<f64>,
    /// `error_config.step_index`: which tool step fails (None = random).
    pub error_step_index: Option<u32>,
    /// `context.tenant_uuid`: a literal tenant id that overrides the `tenant` key.
    pub tenant_uuid: Option<String>,
    /// Used when the top-level `redaction_applied` is absent (predecessor layout).
    pub redaction_applied: Option<(Pos, String)>,
    /// `tools`: the tools the turn is expected to use. An empty list removes every tool step
    /// and the tool recommendation from the workflow; otherwise it documents the chain.
    pub tools: Option<(Pos, Vec<String>)>,
    /// `tool_call_arguments`: per tool, the arguments of its calls, as written.
    pub tool_call_arguments: Vec<(String, Node)>,
    /// `tool_call_results`: per tool, what its calls return, as written.
    pub tool_call_results: Vec<(String, Node)>,
}

/// Values of `context.error_pattern`.
pub const ERROR_PATTERNS: &[&str] = &[
    "happy_path",
    "none",
    "single_tool_failure",
    "first_tool_failure",
    "last_tool_failure",
    "cascade",
    "random",
];

/// One loaded scenario (a definition file or a config request scenario).
#[derive(Clone, Debug)]
pub struct ScenarioDef {
    /// Lookup name: the file stem (or the registry key).
    pub name: String,
    /// `name:`, else the file stem; for people reading the file, not emitted.
    pub display_name: String,
    /// `description:`, shown by `otelsim list`.
    pub description: String,
    /// The file it was read from (or its embedded path), for diagnostics.
    pub source: String,
    /// `tags:`, matched by `--tags`.
    pub tags: Vec<String>,
    /// Relative weight in `run`'s random mix (default 1; 0 leaves it out).
    pub workload_weight: f64,
    /// `opt_in: true`: a pack scenario (microservices, instability, …) that `run`
    /// picks only when `--tags` names one of its tags, so the default mix stays the
    /// agent mix; `otelsim scenario --name` runs it as any other.
    pub opt_in: bool,
    /// Iterations of `otelsim scenario` (default 1).
    pub repeat_count: u32,
    /// Gap between iterations, in ms (default 500).
    pub interval_ms: f64,
    /// ± random spread of that gap, in ms (default 0).
    pub interval_deviation_ms: f64,
    /// Whether metrics are derived from its spans (default true).
    pub emit_metrics: bool,
    /// Whether log records are derived from its spans (default true).
    pub emit_logs: bool,
    /// `redaction_applied`: one of [`REDACTION_LEVELS`].
    pub redaction: String,
    /// Top-level `mcp_server`: the MCP server key when `context` names none.
    pub mcp_server: Option<String>,
    /// `simulation_goal` (or `goal`, also under `data_plane`); `None`: `happy_path`.
    pub goal: Option<String>,
    /// `realistic_overrides` (or `scenario_overrides`).
    pub overrides: Overrides,
    /// `data_plane`: the config workflow to run and its options.
    pub data_plane: Option<DataPlaneDef>,
    /// `control_plane`: the request's validation.
    pub control_plane: Option<ControlPlaneDef>,
    /// `context`: tenant, agent, MCP server, workflow, error pattern.
    pub context: ContextDef,
    /// `conversation.turns`: one request per turn, all in one session.
    pub turns: Vec<Sample>,
    /// `conversation.samples` (or `conversation.external`): one picked per request.
    pub samples: Vec<Sample>,
    /// `cycle_conversation_samples`: iteration i uses sample i mod n instead of a random one.
    pub cycle_samples: bool,
    /// The format generation the file is written in.
    pub format: Format,
    /// `root:`: an explicit span tree.
    pub root: Option<StepDef>,
    /// What a v2 file says beyond the common fields (its end users and their turns).
    pub v2: Option<Box<crate::model::v2::V2Scenario>>,
    /// `instability:`: sessions that drift, correct and recover (the instability pack).
    pub instability: Option<crate::model::instability::InstabilityDef>,
    /// `episode:`: an environment episode (its span tree is `root`).
    pub episode: Option<crate::model::episode::EpisodeDef>,
    /// `track_costs` (default: true for episodes): LLM spans carry their cost
    /// from config.yaml's `prices`, and every model they may use needs a price.
    pub track_costs: bool,
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
            opt_in: false,
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
            cycle_samples: false,
            format: Format::V1,
            root: None,
            v2: None,
            instability: None,
            episode: None,
            track_costs: false,
        }
    }
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
