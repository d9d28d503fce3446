//! Compile: scenario + config + semconv → a resolved plan.
//!
//! Everything that can be decided once is decided here: span names carry the
//! active prefix, references are resolved to ids, literal attribute values are
//! checked against the semconv enums (and normalised, with a warning), and both
//! ways of describing a trace (an explicit `root:` tree and a `data_plane.workflow`)
//! become the same `Node` tree. The generator then only samples.

use crate::diag::{Diags, Pos};
use crate::model::config::{
    AttemptSpec, Config, CpStep, CpTemplate, LatencyProfile, McpServer, Sample,
};
use crate::model::distribution::{Categorical, Count, Distribution};
use crate::model::scenario::{self, AttrSpec, ErrorDef, RetryDef, ScenarioDef, StepDef};
use crate::model::semconv::{
    AttrDef, AttrType, Semconv, ERROR_TYPES, RESPONSE_FORMATS, STEP_OUTCOMES,
};
use crate::model::AttrValue;
use crate::record::{Key, SpanKind};
use std::collections::HashMap;
use std::sync::Arc;

/// Rewrites names written with `vendor.` or the semconv file's own namespace to
/// the active prefix, so every span and attribute carries one coherent prefix.
#[derive(Clone, Debug)]
pub struct Prefixer {
    pub active: String,
    aliases: Vec<String>,
}

impl Prefixer {
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
    pub fn of_class(class: &str) -> Role {
        match class {
            "a2a.orchestrate" => Role::Orchestrate,
            "planner" => Role::Planner,
            "task.execute" => Role::Task,
            "llm.call" => Role::Llm,
            "tools.recommend" => Role::ToolsRecommend,
            "mcp.tool.execute" => Role::McpExecute,
            "mcp.tool.execute.attempt" => Role::McpAttempt,
            "response.compose" => Role::Compose,
            "context.augment" | "rag.retrieve" => Role::Rag,
            "request.validation"
            | "response.validation"
            | "validation.payload"
            | "validation.policy"
            | "augmentation"
            | "payload.validation"
            | "policy.validation"
            | "augmentation.validation" => Role::ControlPlane,
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
    fn semconv_sections(self) -> &'static [&'static str] {
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
    },
    Scripted(Vec<ScriptedAttempt>),
}

#[derive(Clone, Debug)]
pub struct Retry {
    pub plan: RetryPlan,
    pub attempt_name: Key,
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
    pub class: Key,
    pub role: Role,
    pub kind: SpanKind,
    pub control_plane: bool,
    pub component: Option<Key>,
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
    /// Attributes filled from the semconv file when nothing else set them.
    pub fill: Vec<(Key, AttrGen)>,
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
    pub turns: Vec<Sample>,
    pub samples: Vec<Sample>,
    pub repeat_count: u32,
    pub interval_ms: f64,
    pub interval_deviation_ms: f64,
    pub emit_metrics: bool,
    pub emit_logs: bool,
}

/// Interned attribute keys every trace uses, built once with the active prefix.
#[derive(Clone, Debug)]
pub struct Keys {
    pub session_id: Key,
    pub conversation_id: Key,
    pub request_id: Key,
    pub tenant_id: Key,
    pub span_class: Key,
    pub step_outcome: Key,
    pub error_type: Key,
    pub error_category: Key,
    pub a2a_outcome: Key,
    pub agent_target: Key,
    pub enduser: Key,
    pub redaction: Key,
    pub turn_index: Key,
    pub task_id: Key,
    pub task_type: Key,
    pub tool_name: Key,
    pub tool_call_id: Key,
    pub mcp_call_id: Key,
    pub mcp_server_uuid: Key,
    pub mcp_tool_uuid: Key,
    pub attempt_index: Key,
    pub attempt_outcome: Key,
    pub retry_attempt: Key,
    pub retry_count: Key,
    pub retry_policy: Key,
    pub retry_reason: Key,
    pub response_format: Key,
    pub op_name: Key,
    pub provider: Key,
    pub system: Key,
    pub request_model: Key,
    pub response_model: Key,
    pub input_tokens: Key,
    pub output_tokens: Key,
    pub finish_reason: Key,
    pub finish_reasons: Key,
    pub request_type: Key,
    pub input_messages: Key,
    pub output_messages: Key,
    pub input_redacted: Key,
    pub output_redacted: Key,
    pub tools_available: Key,
    pub tools_selected: Key,
    pub selection_latency: Key,
    pub selection_strategy: Key,
    pub selection_constraints: Key,
    pub selection_fallback: Key,
    pub tool_selection_event: Key,
    pub tool_selection_input: Key,
    pub tool_selection_plan: Key,
    pub exception: Key,
    pub exception_type: Key,
    pub exception_message: Key,
    pub http_status: Key,
}

impl Keys {
    fn new(p: &Prefixer) -> Self {
        let k = |s: &str| -> Key { Arc::from(s) };
        let v = |s: &str| -> Key { Arc::from(p.attr(s).as_str()) };
        Keys {
            session_id: v("session.id"),
            conversation_id: k("gen_ai.conversation.id"),
            request_id: v("request.id"),
            tenant_id: v("tenant.id"),
            span_class: v("span.class"),
            step_outcome: v("step.outcome"),
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
            tool_selection_event: v("agent.tool_selection"),
            tool_selection_input: v("agent.tool_selection.input.raw"),
            tool_selection_plan: v("agent.tool_selection.tool.plan"),
            exception: k("exception"),
            exception_type: k("exception.type"),
            exception_message: k("exception.message"),
            http_status: k("http.response.status_code"),
        }
    }
}

/// An LLM model the generator may attribute a call to.
#[derive(Clone, Debug)]
pub struct ModelChoice {
    pub provider: AttrValue,
    pub model: AttrValue,
}

/// Everything shared by all scenarios of a run: prefix, keys, enums, resources, models.
#[derive(Debug)]
pub struct World {
    pub prefix: Prefixer,
    pub keys: Keys,
    /// Full attribute name → allowed values.
    pub enums: HashMap<String, Vec<AttrValue>>,
    pub models: Vec<ModelChoice>,
    pub model_weights: Categorical,
    pub schema_url: Option<String>,
    pub data_plane_resource: Vec<(String, AttrValue)>,
    pub control_plane_resource: Vec<(String, AttrValue)>,
    pub id_formats: crate::model::config::IdFormats,
    pub retry_policy: AttrValue,
    pub semconv_has_gen_ai_system: bool,
    /// Every attribute name the semconv file declares (prefix applied).
    pub declared: std::collections::HashSet<String>,
}

/// Settings that shape the world beyond the files.
#[derive(Clone, Debug, Default)]
pub struct WorldOptions {
    pub vendor: String,
    pub service_name: Option<String>,
    /// `OTEL_RESOURCE_ATTRIBUTES` pairs; they win over config.
    pub extra_resource: Vec<(String, String)>,
}

impl World {
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

        let models: Vec<ModelChoice> = cfg
            .llm_models
            .iter()
            .map(|m| ModelChoice {
                provider: AttrValue::str(&m.provider),
                model: AttrValue::str(&m.model),
            })
            .collect();
        let model_weights = Categorical::new(
            cfg.llm_models
                .iter()
                .enumerate()
                .map(|(i, m)| (AttrValue::Int(i as i64), m.weight))
                .collect(),
        )
        .unwrap_or_else(|| Categorical::uniform(vec![AttrValue::Int(0)]).expect("one value"));

        let mut world = World {
            keys,
            enums,
            models,
            model_weights,
            schema_url: cfg.resource.schema_url.clone(),
            data_plane_resource: Vec::new(),
            control_plane_resource: Vec::new(),
            id_formats: cfg.id_formats.clone(),
            retry_policy: AttrValue::str(&cfg.mcp_retry.retry_policy),
            semconv_has_gen_ai_system: sc
                .sections
                .iter()
                .any(|(_, a)| a.iter().any(|x| x.name == "gen_ai.system")),
            declared: sc
                .sections
                .iter()
                .flat_map(|(_, a)| a.iter().map(|x| prefix.rewrite(&x.name)))
                .collect(),
            prefix,
        };
        let rp = world.keys.retry_policy.clone();
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
        world.data_plane_resource = world.resource(&cfg.resource.data_plane, cfg, opts, &mut rd);
        world.control_plane_resource =
            world.resource(&cfg.resource.control_plane, cfg, opts, &mut rd);
        // Both planes usually share attributes: report each normalisation once.
        let mut seen = std::collections::HashSet::new();
        rd.items.retain(|i| seen.insert(i.to_string()));
        d.items.append(&mut rd.items);
        world
    }

    fn resource(
        &self,
        attrs: &[(String, AttrValue)],
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
        if let Some(t) = cfg.tenants.first() {
            let k = self.prefix.attr("tenant.id");
            if !out.iter().any(|(ok, _)| *ok == k) {
                set(&mut out, k, AttrValue::str(&t.id));
            }
        }
        for (k, v) in &opts.extra_resource {
            set(&mut out, k.clone(), AttrValue::str(v));
        }
        if let Some(s) = &opts.service_name {
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
        let Some(allowed) = self.enums.get(key) else {
            return value;
        };
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

    pub fn semconv_declares(&self, name: &str) -> bool {
        self.declared.contains(name)
    }

    fn enum_choice(&self, key: &str) -> Option<Categorical> {
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

fn key(s: &str) -> Key {
    Arc::from(s)
}

/// Attributes the generator sets itself from the trace's state; semconv filling skips them.
fn code_owned(world: &World, name: &str) -> bool {
    let k = &world.keys;
    let owned = [
        &k.error_type,
        &k.error_category,
        &k.step_outcome,
        &k.a2a_outcome,
        &k.attempt_outcome,
        &k.attempt_index,
        &k.retry_reason,
        &k.retry_count,
        &k.span_class,
        &k.finish_reason,
        &k.finish_reasons,
        &k.request_type,
        &k.redaction,
        &k.system,
        &k.provider,
        &k.request_model,
        &k.response_model,
        &k.input_tokens,
        &k.output_tokens,
        &k.op_name,
        &k.session_id,
        &k.conversation_id,
        &k.tenant_id,
        &k.tool_name,
        &k.tool_call_id,
        &k.mcp_call_id,
        &k.mcp_server_uuid,
        &k.mcp_tool_uuid,
        &k.task_id,
        &k.task_type,
        &k.enduser,
        &k.agent_target,
        &k.response_format,
        &k.tools_available,
        &k.tools_selected,
        &k.selection_latency,
    ];
    owned.iter().any(|o| &***o == name)
        || name == "deployment.environment.name"
        || name.contains("messages")
        || name.contains("redacted")
}

/// Generators for a role's semconv attributes that nothing else sets:
/// a random allowed value for enums, else the default or an example for required ones.
fn semconv_fill(world: &World, sc: &Semconv, role: Role, class: &str) -> Vec<(Key, AttrGen)> {
    let mut out: Vec<(Key, AttrGen)> = Vec::new();
    let mut add = |a: &AttrDef| {
        let name = world.prefix.rewrite(&a.name);
        if code_owned(world, &name) || out.iter().any(|(k, _)| **k == *name) {
            return;
        }
        let gen = if let Some(def) = &a.default {
            Some(AttrGen::Literal(def.clone()))
        } else if !a.allowed.is_empty() {
            world.enum_choice(&name).map(AttrGen::Choice)
        } else if a.required {
            match (a.ty, a.examples.is_empty()) {
                (_, false) => Categorical::uniform(a.examples.clone()).map(AttrGen::Choice),
                (AttrType::Int, true) => Some(AttrGen::Numeric {
                    dist: Distribution::Uniform {
                        min: 0.0,
                        max: 10.0,
                    },
                    integer: true,
                }),
                (AttrType::Bool, true) => Some(AttrGen::Literal(AttrValue::Bool(false))),
                _ => None,
            }
        } else {
            None
        };
        if let Some(g) = gen {
            out.push((key(&name), g));
        }
    };
    for section in role.semconv_sections() {
        for a in sc.section(section).unwrap_or_default() {
            add(a);
        }
    }
    for (_, attrs) in &sc.sections {
        for a in attrs
            .iter()
            .filter(|a| a.applies_to.iter().any(|c| c == class))
        {
            add(a);
        }
    }
    out
}

/// Compiles every scenario against one world; compile problems are diagnostics.
pub struct Compiler<'a> {
    pub world: &'a World,
    pub cfg: &'a Config,
    pub sc: &'a Semconv,
}

impl<'a> Compiler<'a> {
    pub fn scenario(&self, s: &ScenarioDef, d: &mut Diags) -> Option<ScenarioPlan> {
        let tenant = s
            .context
            .tenant
            .as_deref()
            .and_then(|t| self.cfg.tenant(t))
            .map_or_else(|| "default".to_string(), |t| t.id.clone());
        let server = s
            .context
            .mcp_server
            .as_deref()
            .or(s.mcp_server.as_deref())
            .and_then(|k| self.cfg.mcp_server(k))
            .or_else(|| self.cfg.mcp_servers.first());
        let profile = self.cfg.latency_profile(
            s.data_plane
                .as_ref()
                .and_then(|dp| dp.latency_profile.as_deref()),
        );

        let mut parts = Vec::new();
        let cp_template = self.cp_template_id(s);
        let outcome = cp_template.as_deref().map(outcome_of_template);
        let flow: Vec<String> = match outcome {
            Some(o) if s.control_plane.is_some() || s.root.is_none() => self
                .cfg
                .control_plane
                .trace_flow
                .get(o)
                .cloned()
                .unwrap_or_default(),
            _ => vec!["data_plane".into()],
        };
        for part in &flow {
            match part.as_str() {
                "incoming_validation" => {
                    if let Some(t) = cp_template
                        .as_deref()
                        .and_then(|id| self.cfg.control_plane.request_templates.get(id))
                    {
                        parts.push(Part {
                            label: "incoming_validation",
                            root: self.cp_tree("request.validation", t, s, d),
                        });
                    }
                }
                "response_validation" => {
                    if let Some(t) = self.cfg.control_plane.response_templates.get("allowed") {
                        parts.push(Part {
                            label: "response_validation",
                            root: self.cp_tree("response.validation", t, s, d),
                        });
                    }
                }
                "data_plane" => {
                    let root = if let Some(step) = &s.root {
                        Some(self.step(step, server, d))
                    } else {
                        let wf = s
                            .data_plane
                            .as_ref()
                            .and_then(|dp| dp.workflow.clone())
                            .or(s.context.workflow.clone())
                            .or_else(|| self.cfg.control_plane.default_data_plane_workflow.clone());
                        wf.and_then(|wf| self.workflow(&wf, s, server, profile, d))
                    };
                    if let Some(root) = root {
                        parts.push(Part {
                            label: "data_plane",
                            root,
                        });
                    }
                }
                _ => {}
            }
        }
        for part in &parts {
            let n = max_spans(&part.root);
            if n > MAX_SPANS_PER_TRACE {
                d.error(
                    s.root.as_ref().map_or(Pos::default(), |r| r.pos),
                    "root",
                    format!("this tree can produce up to {n:.0} spans in one trace (counts multiply down the tree); the limit is {MAX_SPANS_PER_TRACE:.0}: lower `count` or `max_attempts`"),
                );
                return None;
            }
        }
        if parts.is_empty() {
            d.error(Pos::default(), "", format!("scenario `{}` produces no trace (no root, workflow or control-plane template resolved)", s.name));
            return None;
        }
        Some(ScenarioPlan {
            name: key(&s.name),
            scope: key(&format!("otelsim.{}", sanitize_scope(&s.name))),
            description: s.description.clone(),
            tenant_id: key(&tenant),
            agent_id: s.context.agent.as_deref().map(key),
            redaction: key(&s.redaction),
            parts,
            turns: s.turns.clone(),
            samples: if s.samples.is_empty() {
                let wf = s
                    .data_plane
                    .as_ref()
                    .and_then(|dp| dp.workflow.as_deref())
                    .unwrap_or("default");
                self.cfg
                    .conversation_samples
                    .get(wf)
                    .or_else(|| self.cfg.conversation_samples.get("default"))
                    .cloned()
                    .unwrap_or_default()
            } else {
                s.samples.clone()
            },
            repeat_count: s.repeat_count.max(1),
            interval_ms: s.interval_ms,
            interval_deviation_ms: s.interval_deviation_ms,
            emit_metrics: s.emit_metrics,
            emit_logs: s.emit_logs,
        })
    }

    fn cp_template_id(&self, s: &ScenarioDef) -> Option<String> {
        let cp = s.control_plane.as_ref();
        cp.and_then(|c| c.template.clone())
            .or_else(|| {
                s.data_plane
                    .as_ref()
                    .and_then(|dp| dp.control_plane_template.clone())
            })
            .or_else(|| {
                cp.and_then(|c| {
                    scenario::resolve_template_id(
                        c.request_outcome.as_deref(),
                        c.block_reason.as_deref(),
                    )
                })
            })
    }

    /// A new node with everything defaulted from its class.
    fn base_node(&self, written_type: &str, control_plane: bool) -> Node {
        let (name, class) = self.world.prefix.span_type(written_type);
        let role = Role::of_class(&class);
        let kind = self
            .sc
            .spans
            .iter()
            .find(|sd| self.world.prefix.class_of(&sd.name) == class)
            .and_then(|sd| sd.kind)
            .unwrap_or_else(|| match class.as_str() {
                "request.validation" | "response.validation" => SpanKind::Server,
                _ => role.default_kind(),
            });
        let fill = semconv_fill(self.world, self.sc, role, &class);
        Node {
            name: key(&name),
            component: role.component().map(key),
            class: key(&class),
            role,
            kind,
            control_plane,
            latency: Distribution::Constant(1.0),
            error: self.error_model(
                &ErrorDef::default(),
                role,
                Pos::default(),
                "",
                &mut Diags::new(""),
            ),
            attrs: Vec::new(),
            events: Vec::new(),
            children: Vec::new(),
            parallel: false,
            probability: 1.0,
            count: Count::Fixed(1),
            retry: None,
            tool: None,
            task_type: None,
            fill,
        }
    }

    fn error_model(
        &self,
        e: &ErrorDef,
        role: Role,
        pos: Pos,
        path: &str,
        d: &mut Diags,
    ) -> ErrorModel {
        let types = if e.types.is_empty() {
            Categorical::new(
                role.default_error_types()
                    .iter()
                    .map(|(t, w)| (AttrValue::str(t), *w))
                    .collect(),
            )
        } else {
            Categorical::uniform(
                e.types
                    .iter()
                    .map(|t| {
                        self.world.normalise(
                            "error.type",
                            AttrValue::str(t),
                            pos,
                            &format!("{path}.error.types"),
                            d,
                        )
                    })
                    .collect(),
            )
        }
        .expect("non-empty error types");
        ErrorModel {
            rate: e.rate,
            types,
            propagate: e.propagate,
            from_parent: e.from_parent,
            cascade_to_siblings: e.cascade_to_siblings,
            message: e.message.as_deref().map(Arc::from),
            exception: None,
        }
    }

    fn tool_ref(&self, server: &McpServer, tool_name: &str) -> Option<ToolRef> {
        let t = server.tools.iter().find(|t| t.name == tool_name)?;
        Some(ToolRef {
            name: key(&t.name),
            tool_uuid: key(&t.uuid),
            server_uuid: key(&server.uuid),
            server_tool_count: server.tools.len() as i64,
        })
    }

    /// An explicit `root:` step (recursively).
    fn step(&self, st: &StepDef, server: Option<&McpServer>, d: &mut Diags) -> Node {
        let mut n = self.base_node(&st.type_name, false);
        if let Some(k) = st.kind {
            n.kind = k;
        }
        n.latency = st.latency.clone().unwrap_or(Distribution::MeanVariance {
            mean: crate::model::config::default_latency_ms(&n.class.replace('.', "_")),
            variance: 0.3,
            spike_rate: 0.0,
            spike_multiplier: 1.0,
        });
        n.error = self.error_model(&st.error, n.role, st.pos, &st.path, d);
        n.parallel = st.parallel;
        n.probability = st.probability;
        n.count = st.count.clone();
        for (k, spec, pos) in &st.attributes {
            let name = self.world.prefix.rewrite(k);
            let path = format!("{}.attributes.{k}", st.path);
            let gen = match spec {
                AttrSpec::Literal(v) => {
                    AttrGen::Literal(self.world.normalise(&name, v.clone(), *pos, &path, d))
                }
                AttrSpec::Categorical(c) => {
                    let pairs: Vec<(AttrValue, f64)> = c
                        .values
                        .iter()
                        .zip(weights_of(&c.cumulative))
                        .map(|(v, w)| (self.world.normalise(&name, v.clone(), *pos, &path, d), w))
                        .collect();
                    AttrGen::Choice(Categorical::new(pairs).unwrap_or_else(|| c.clone()))
                }
                AttrSpec::Numeric { dist, integer } => AttrGen::Numeric {
                    dist: dist.clone(),
                    integer: *integer,
                },
            };
            n.attrs.push((key(&name), gen));
        }
        if matches!(n.role, Role::McpExecute) {
            if let Some(srv) = server {
                let wanted = st
                    .attributes
                    .iter()
                    .find_map(|(k, s, _)| match (k.as_str(), s) {
                        ("gen_ai.tool.name", AttrSpec::Literal(v)) => Some(v.to_string()),
                        _ => None,
                    });
                let tool = wanted
                    .as_deref()
                    .or(srv.tools.first().map(|t| t.name.as_str()));
                n.tool = tool.and_then(|t| self.tool_ref(srv, t));
            }
        }
        let attempt_name = key(&format!("{}.attempt", n.name));
        n.retry = match &st.retry {
            Some(r) => Some(self.random_retry(r, attempt_name, st, d)),
            // An MCP tool call always has at least one attempt span (semconv two-level model).
            None if n.role == Role::McpExecute => Some(Retry {
                plan: RetryPlan::Scripted(vec![ScriptedAttempt {
                    success: true,
                    error_type: key("tool_error"),
                    latency: n.latency.clone(),
                }]),
                attempt_name,
                backoff_base_ms: 100.0,
                backoff_multiplier: 2.0,
                backoff_jitter: 0.2,
            }),
            None => None,
        };
        if let (Some(r), Role::McpExecute) = (&mut n.retry, n.role) {
            // The logical call's own latency is small overhead; attempts carry the work.
            if let RetryPlan::Scripted(attempts) = &mut r.plan {
                for a in attempts {
                    a.latency = n.latency.clone();
                }
            }
            n.latency = Distribution::Constant(0.5);
        }
        n.children = st
            .children
            .iter()
            .map(|c| self.step(c, server, d))
            .collect();
        n
    }

    fn random_retry(&self, r: &RetryDef, attempt_name: Key, st: &StepDef, d: &mut Diags) -> Retry {
        let types = if r.error_types.is_empty() {
            Categorical::uniform(vec![
                AttrValue::str("timeout"),
                AttrValue::str("unavailable"),
            ])
        } else {
            Categorical::uniform(
                r.error_types
                    .iter()
                    .map(|t| {
                        self.world.normalise(
                            "error.type",
                            AttrValue::str(t),
                            st.pos,
                            &format!("{}.retry.error_types", st.path),
                            d,
                        )
                    })
                    .collect(),
            )
        }
        .expect("non-empty");
        Retry {
            plan: RetryPlan::Random {
                max_attempts: r.max_attempts,
                force_initial_failure: r.force_initial_failure,
                success_rate_per_attempt: r.success_rate_per_attempt.clone(),
                error_types: types,
            },
            attempt_name,
            backoff_base_ms: r.backoff_base_ms,
            backoff_multiplier: r.backoff_multiplier,
            backoff_jitter: r.backoff_jitter,
        }
    }

    fn latency_node(&self, profile: &LatencyProfile, written: &str, latency_key: &str) -> Node {
        let mut n = self.base_node(written, false);
        n.latency = profile.get(latency_key);
        n
    }

    /// A `data_plane.workflow` from config: orchestrate → steps, as sequential children.
    fn workflow(
        &self,
        wf: &str,
        s: &ScenarioDef,
        server: Option<&McpServer>,
        profile: &LatencyProfile,
        d: &mut Diags,
    ) -> Option<Node> {
        let Some(steps) = self.cfg.workflow_templates.get(wf) else {
            d.error(
                Pos::default(),
                "data_plane.workflow",
                format!("unknown workflow `{wf}`"),
            );
            return None;
        };
        let steps: Vec<String> = match &s.overrides.actual_steps {
            Some(actual) if s.goal.as_deref() == Some("partial_workflow") => actual.clone(),
            _ => steps.clone(),
        };
        let first_tool = steps
            .iter()
            .find(|st| step_kind(st) == StepKind::Tool)
            .cloned();
        let mut root = self.latency_node(profile, "a2a.orchestrate", "a2a_orchestrate");
        let retry_script = s.data_plane.as_ref().and_then(|dp| dp.mcp_retry.clone());
        for step in &steps {
            let child = match step_kind(step) {
                StepKind::Planner => self.latency_node(profile, "planner", "planner"),
                StepKind::Llm => {
                    let mut llm = self.latency_node(profile, "llm.call", "llm_call");
                    if let (Some(srv), Some(t)) = (server, &first_tool) {
                        llm.tool = self.tool_ref(srv, t);
                    }
                    self.task("llm_call", llm, profile)
                }
                StepKind::ToolsRecommend => {
                    let mut tr = self.latency_node(profile, "tools.recommend", "tools_recommend");
                    if let (Some(srv), Some(t)) = (server, &first_tool) {
                        tr.tool = self.tool_ref(srv, t);
                    }
                    let tcfg = &self.cfg.tools_recommend;
                    let k = &self.world.keys;
                    let mut lit = |key_: &Key, v: AttrValue, path: &str, d: &mut Diags| {
                        let v = self.world.normalise(key_, v, Pos::default(), path, d);
                        tr.attrs.push((key_.clone(), AttrGen::Literal(v)));
                    };
                    lit(
                        &k.selection_strategy,
                        AttrValue::str(&tcfg.selection_strategy),
                        "tools_recommend.selection_strategy",
                        d,
                    );
                    lit(
                        &k.selection_constraints,
                        AttrValue::str(&tcfg.selection_constraints),
                        "tools_recommend.selection_constraints",
                        d,
                    );
                    lit(
                        &k.tools_selected,
                        AttrValue::Int(tcfg.tools_selected_count as i64),
                        "tools_recommend.tools_selected_count",
                        d,
                    );
                    lit(
                        &k.selection_fallback,
                        AttrValue::Bool(tcfg.selection_fallback_used),
                        "tools_recommend.selection_fallback_used",
                        d,
                    );
                    self.task("tool_recommendation", tr, profile)
                }
                StepKind::Compose => {
                    let mut c = self.latency_node(profile, "response.compose", "response_compose");
                    c.attrs.push((
                        self.world.keys.response_format.clone(),
                        AttrGen::Literal(AttrValue::str("a2a_json")),
                    ));
                    c
                }
                StepKind::Tool => {
                    let Some(srv) = server else {
                        d.error(Pos::default(), "context.mcp_server", format!("workflow `{wf}` calls tool `{step}` but the scenario names no MCP server (context.mcp_server)"));
                        continue;
                    };
                    let Some(tool) = self.tool_ref(srv, step) else {
                        d.error(
                            Pos::default(),
                            &format!("realistic_scenarios.workflow_templates.{wf}"),
                            format!(
                                "step `{step}` is neither a known step (planner, task, tools_recommend, response_compose) nor a tool of MCP server `{}` ({})",
                                srv.key,
                                srv.tools.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(", ")
                            ),
                        );
                        continue;
                    };
                    let mcp = self.mcp_call(tool, retry_script.as_deref(), profile);
                    self.task("tool_execution", mcp, profile)
                }
            };
            root.children.push(child);
        }
        Some(root)
    }

    /// Wraps a step in a `task.execute` span of the given task type.
    fn task(&self, task_type: &str, inner: Node, profile: &LatencyProfile) -> Node {
        let mut t = self.latency_node(profile, "task.execute", "task_execute");
        t.task_type = Some(key(task_type));
        t.children.push(inner);
        t
    }

    fn mcp_call(
        &self,
        tool: ToolRef,
        script: Option<&[AttemptSpec]>,
        profile: &LatencyProfile,
    ) -> Node {
        let mut n = self.base_node("mcp.tool.execute", false);
        n.latency = Distribution::Constant(0.5);
        let attempt_latency = profile.get("mcp_tool_execute");
        let default_script = [AttemptSpec {
            success: true,
            error_type: None,
            latency_mean_ms: None,
        }];
        let attempts = script.unwrap_or(&default_script);
        let by_type = &self.cfg.mcp_retry.latency_by_error_type;
        let scripted = attempts
            .iter()
            .map(|a| {
                let et = a.error_type.clone().unwrap_or_else(|| "timeout".into());
                let et = closest_allowed(&AttrValue::str(&et), &self.world.enums["error.type"])
                    .to_string();
                let latency = match (a.latency_mean_ms, a.success) {
                    (Some(ms), _) => mean_var(ms, 0.2),
                    (None, false) => by_type
                        .get(&et)
                        .map_or(attempt_latency.clone(), |ms| mean_var(*ms, 0.1)),
                    (None, true) => attempt_latency.clone(),
                };
                ScriptedAttempt {
                    success: a.success,
                    error_type: key(&et),
                    latency,
                }
            })
            .collect();
        n.retry = Some(Retry {
            plan: RetryPlan::Scripted(scripted),
            attempt_name: key(&format!("{}.attempt", n.name)),
            backoff_base_ms: self.cfg.mcp_retry.backoff_base_ms,
            backoff_multiplier: self.cfg.mcp_retry.backoff_multiplier,
            backoff_jitter: self.cfg.mcp_retry.backoff_jitter,
        });
        n.tool = Some(tool);
        n
    }

    /// A control-plane validation tree from a template.
    fn cp_tree(&self, root_class: &str, t: &CpTemplate, s: &ScenarioDef, d: &mut Diags) -> Node {
        let lat = |k: &str| {
            mean_var(
                self.cfg
                    .control_plane
                    .latencies_ms
                    .get(k)
                    .copied()
                    .unwrap_or(20.0),
                0.2,
            )
        };
        let mut root = self.cp_node(
            root_class,
            &t.root,
            lat(&root_class.replace('.', "_")),
            None,
            s,
            d,
        );
        root.error.propagate = false;
        let steps: [(&str, &str, &Option<CpStep>); 3] = [
            ("validation.payload", "validation_payload", &t.payload),
            ("validation.policy", "validation_policy", &t.policy),
            ("augmentation", "augmentation", &t.augmentation),
        ];
        for (class, lk, step) in steps {
            if let Some(st) = step {
                let exc = if class == "validation.policy" {
                    s.control_plane
                        .as_ref()
                        .and_then(|c| c.policy_exception.clone())
                } else {
                    None
                };
                let mut child = self.cp_node(class, st, lat(lk), exc, s, d);
                // A failed validation step does not fail the request span: its outcome says what happened.
                child.error.propagate = false;
                root.children.push(child);
            }
        }
        root
    }

    fn cp_node(
        &self,
        class: &str,
        st: &CpStep,
        latency: Distribution,
        exc_override: Option<crate::model::config::ExceptionSpec>,
        s: &ScenarioDef,
        d: &mut Diags,
    ) -> Node {
        let mut n = self.base_node(class, true);
        n.role = Role::ControlPlane;
        n.latency = latency;
        n.error.rate = st.error_rate;
        let exc = exc_override.or_else(|| st.exception.clone());
        if let Some(e) = &exc {
            n.error.exception = Some((
                Arc::from(e.type_name.as_str()),
                Arc::from(e.message.as_str()),
            ));
            let lower = e.type_name.to_ascii_lowercase();
            let et = if lower.contains("timeout") {
                "timeout"
            } else if lower.contains("unavailable") {
                "unavailable"
            } else {
                "tool_error"
            };
            n.error.types = Categorical::uniform(vec![AttrValue::str(et)]).expect("one");
        }
        let step_key = self.world.keys.step_outcome.clone();
        let cp_outcomes = self
            .world
            .enums
            .get(&self.world.prefix.attr("step.outcome.cp"))
            .cloned();
        for (k, v) in &st.attrs {
            let name = self.world.prefix.attr(k);
            let path = format!("{}: template attribute {k}", s.name);
            let v = if *name == *step_key {
                match &cp_outcomes {
                    Some(allowed) if !allowed.contains(v) => {
                        let fixed = closest_allowed(v, allowed);
                        d.warn(
                            Pos::default(),
                            &path,
                            format!(
                                "`{v}` is not a control-plane step outcome; emitted as `{fixed}`"
                            ),
                        );
                        fixed
                    }
                    Some(_) => v.clone(),
                    None => v.clone(),
                }
            } else {
                self.world
                    .normalise(&name, v.clone(), Pos::default(), &path, d)
            };
            n.attrs.push((key(&name), AttrGen::Literal(v)));
        }
        for ve in &st.validation_errors {
            n.events.push(EventPlan {
                name: key(&self.world.prefix.attr("validation.error")),
                attrs: vec![
                    (
                        key(&self.world.prefix.attr("validation.error.path")),
                        AttrValue::str(&ve.path),
                    ),
                    (
                        key(&self.world.prefix.attr("validation.error.rule")),
                        AttrValue::str(&ve.rule),
                    ),
                    (
                        key(&self.world.prefix.attr("validation.error.code")),
                        AttrValue::str(&ve.code),
                    ),
                ],
            });
        }
        n
    }
}

/// Upper bound on spans in one trace, so a typo in nested counts cannot exhaust memory.
pub const MAX_SPANS_PER_TRACE: f64 = 100_000.0;

/// The most spans one instance of `n` can produce.
fn max_spans(n: &Node) -> f64 {
    let attempts = match &n.retry {
        Some(Retry {
            plan: RetryPlan::Random { max_attempts, .. },
            ..
        }) => f64::from(*max_attempts),
        Some(Retry {
            plan: RetryPlan::Scripted(s),
            ..
        }) => s.len() as f64,
        None => 0.0,
    };
    let children: f64 = n
        .children
        .iter()
        .map(|c| {
            let count = match &c.count {
                Count::Fixed(k) => f64::from(*k),
                Count::Sampled { max, .. } => f64::from(*max),
            };
            count * max_spans(c)
        })
        .sum();
    // Children go under one attempt only; with no retry they go under the span itself.
    1.0 + attempts + children
}

fn mean_var(mean: f64, variance: f64) -> Distribution {
    Distribution::MeanVariance {
        mean,
        variance,
        spike_rate: 0.0,
        spike_multiplier: 1.0,
    }
}

fn weights_of(cumulative: &[f64]) -> Vec<f64> {
    let mut prev = 0.0;
    cumulative
        .iter()
        .map(|c| {
            let w = c - prev;
            prev = *c;
            w
        })
        .collect()
}

/// Template id → trace-flow outcome (allowed / blocked / error).
pub fn outcome_of_template(id: &str) -> &'static str {
    if id == "error" || id.starts_with("error_") {
        "error"
    } else if id.starts_with("blocked") {
        "blocked"
    } else {
        "allowed"
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StepKind {
    Planner,
    Llm,
    ToolsRecommend,
    Compose,
    Tool,
}

fn step_kind(step: &str) -> StepKind {
    match step {
        "planner" | "planning" => StepKind::Planner,
        "task" | "task_execute" | "task.execute" | "llm" | "llm_call" => StepKind::Llm,
        "tools_recommend" | "tools.recommend" => StepKind::ToolsRecommend,
        "response_compose" | "response" | "response.compose" => StepKind::Compose,
        _ => StepKind::Tool,
    }
}

/// Instrumentation scope names are limited to `[A-Za-z0-9_.-]`, at most 128 chars.
pub fn sanitize_scope(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(128)
        .collect()
}
