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

// Readers that used to live here; re-exported so existing paths keep working.
pub use crate::model::read::scenario::load;
pub use crate::model::read::scenario::step::{parse_step_for_test, read_step};

/// Largest `workload_weight` (weights are relative; this keeps their sum finite).
pub const MAX_WEIGHT: f64 = 1e6;
/// Longest interval between iterations or picks, in ms (one day).
pub const MAX_INTERVAL_MS: f64 = 86_400_000.0;

/// Values of `redaction_applied`.
pub const REDACTION_LEVELS: &[&str] = &["none", "basic", "strict"];
/// Built-in simulation goals (config error templates add more).
pub const GOALS: &[&str] = &[
    "happy_path",
    "4xx_invalid_arguments",
    "wrong_division",
    "partial_workflow",
    "ungrounded_response",
];

/// How a step attribute gets its value: fixed, drawn from a number distribution, or chosen.
#[derive(Clone, Debug, PartialEq)]
pub enum AttrSpec {
    Literal(AttrValue),
    Numeric { dist: Distribution, integer: bool },
    Categorical(Categorical),
}

/// How a step fails: rate, `error.type` choices, and how failure spreads.
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

/// Retries of a step: attempts, per-attempt success, backoff.
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

/// One span step of an explicit `root:` tree.
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
    /// `service: NAME`: a service declared in config.yaml's `services:`, and where the name is written.
    pub service: Option<(String, Pos)>,
}

/// `realistic_overrides`: tweaks to a goal-driven workflow run.
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

/// `data_plane`: the config workflow to run and its options.
#[derive(Clone, Debug, Default)]
pub struct DataPlaneDef {
    pub workflow: Option<String>,
    pub control_plane_template: Option<String>,
    pub mcp_retry: Option<Vec<AttemptSpec>>,
    pub latency_profile: Option<String>,
}

/// `control_plane`: the validation template and outcome of a request.
#[derive(Clone, Debug, Default)]
pub struct ControlPlaneDef {
    pub template: Option<String>,
    pub request_outcome: Option<String>,
    pub block_reason: Option<String>,
    pub policy_exception: Option<ExceptionSpec>,
}

/// `context`: tenant, agent, MCP server, workflow and error pattern of a run.
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

/// `allowed` → `allowed`; `error` → `error`; `blocked` + reason → `blocked_<reason>`.
pub fn resolve_template_id(outcome: Option<&str>, reason: Option<&str>) -> Option<String> {
    match outcome? {
        "allowed" => Some("allowed".into()),
        "error" => Some("error".into()),
        "blocked" => Some(format!("blocked_{}", reason.unwrap_or("invalid_context"))),
        _ => None,
    }
}
