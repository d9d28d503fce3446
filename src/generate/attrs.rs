//! Where every attribute value is chosen. Three sources, applied in this order
//! by `finish_span`:
//! 1. the per-role rules (`role_attrs` and its helpers): values the generator
//!    derives from the trace's state — outcomes, models and tokens, tool and
//!    call ids, retry counts — for the keys in the [`owned_by_code`] table;
//! 2. the scenario's declared attributes (`AttrGen`, compiled in `plan`), each
//!    sampled by [`AttrGen::sample`], the one sampler of attribute values;
//! 3. the semconv fill ([`attach_semconv_fill`]): every other attribute the
//!    conventions declare for the span's class, from the trace's state where it
//!    has the value ([`Derived`]: durations, end user, tool, counts…), else the
//!    declared default, an enum value, an example or a plausible typed value.
//!    Its rules are worked out once per plan node, not per span.
//!
//! Then the outcome attributes follow the status and a failure is recorded.
//! Identity attributes every span carries (`span.class`, session, request,
//! tenant) are [`Builder::identity_attrs`]; attempt spans get theirs from
//! [`Builder::attempt_attrs`] and their fill after it.
//!
//! Some declared attributes stay conditional, as the conventions describe them
//! ([`When`] lists each, and `otelsim validate` reports the ones a scenario can
//! never emit: [`declared_attrs`]).

use super::{Builder, ForcedAttempt, Outcome, MS};
use crate::class::{ClassOf, SpanClass};
use crate::model::distribution::{Categorical, Distribution};
use crate::model::semconv::{AttrDef, AttrType, Semconv};
use crate::model::AttrValue;
use crate::plan::{
    closest_allowed, AttrGen, CacheReport, ContentEvent, IdStyle, Keys, Node, ResponseStatus,
    Retry, Role, ScenarioPlan, ToolCall, ToolRef, World,
};
use crate::record::{
    same_key, Attrs, Event, Key, ServiceId, SharedAttrs, StatusCode, Text, MODEL_CALL_ATTRS_ROOM,
    SPAN_ATTRS_ROOM,
};
use rand::Rng;
use std::sync::Arc;

impl AttrGen {
    /// One value: the literal, a weighted choice, or a number from the
    /// distribution (rounded to an integer, or to three decimals).
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> AttrValue {
        match self {
            AttrGen::Literal(v) => v.clone(),
            AttrGen::Choice(c) => c.sample(rng).clone(),
            AttrGen::Numeric { dist, integer } => {
                let x = dist.sample(rng);
                if *integer {
                    AttrValue::Int(x.round() as i64)
                } else {
                    AttrValue::Double((x * 1000.0).round() / 1000.0)
                }
            }
        }
    }
}

/// One declared attribute the semconv fill gives a span when nothing else set it.
#[derive(Clone, Debug)]
pub struct FillAttr {
    /// The attribute's key, prefix applied.
    pub key: Key,
    /// How its value is chosen.
    pub how: Fill,
    /// It goes on the step's attempt spans, not on the step's own span.
    pub attempt: bool,
}

/// How the fill chooses a value.
#[derive(Clone, Debug)]
pub enum Fill {
    /// Sampled per span: the declared default, an enum value, an example or a
    /// typed value; or a literal the plan fixes (component, environment,
    /// planned task count, response format).
    Sample(AttrGen),
    /// Derived from the trace's state when the span is finished.
    Derived(Derived),
}

/// Values the fill derives from the trace's state, each for the keys named.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Derived {
    /// `*.duration_ms`, `*.latency_ms`, `*.latency.ms`, `*.duration.ms`: the
    /// span's duration in ms, as laid out (an integer unless declared `double`).
    DurationMs {
        /// Rounded to whole ms; else to µs.
        integer: bool,
    },
    /// `<p>.enduser.pseudo.id`: the request's end user.
    EndUser,
    /// `<p>.a2a.agent.target.id`: the scenario's agent (`context.agent`).
    AgentTarget,
    /// `<p>.redaction.applied`: the scenario's redaction.
    Redaction,
    /// `<p>.turn.index`, `<p>.llm.turn.count`: the turn in its session (1 for a lone request).
    Turn,
    /// `gen_ai.tool.name`: the span's MCP tool.
    ToolName,
    /// `<p>.mcp.server.uuid`: the server of the span's MCP tool.
    ServerUuid,
    /// `<p>.mcp.tool.uuid`: the span's MCP tool.
    ToolUuid,
    /// `gen_ai.tool.call.id` of an LLM call: the id of the tool call the model
    /// asked for, the one that call's `mcp.tool.execute` span carries.
    RequestedCallId,
    /// `<p>.mcp.tools.selected.count`, `<p>.llm.tool.request.count`: 1 when the span names a tool.
    ToolCount,
    /// `<p>.llm.tool.execution.count`: the tool calls made under the span.
    ToolCallsBelow,
    /// `<p>.task.retry.count`: the retries made under the span.
    RetriesBelow,
    /// `<p>.task.fallback.used`: something under the span failed, yet the span did not.
    FallbackUsed,
    /// `<p>.error.category`: from the span's `error.type`.
    ErrorCategory,
    /// `<p>.retry.backoff.ms`: the wait before this attempt.
    BackoffMs,
    /// `http.response.status_code` of an attempt: 200, or the status its error answers with.
    HttpStatus,
}

/// When a declared attribute is on a span. The conditional ones, and why:
///
/// | attribute                                              | only when                                 |
/// |--------------------------------------------------------|-------------------------------------------|
/// | `error.type`, `<p>.error.category`                     | the span failed ([`When::Failed`])        |
/// | `<p>.retry.reason`, `<p>.retry.backoff.ms` (attempts)  | a retry: not the first attempt            |
/// | `gen_ai.tool.name`, `<p>.mcp.server.uuid`, `<p>.mcp.tool.uuid`, `<p>.mcp.tools.available.count`; on `llm.call` also `gen_ai.tool.call.id` | the span names an MCP tool (an LLM call: the model asked for one) |
/// | `<p>.a2a.agent.target.id`                              | the scenario names its agent              |
/// | `gen_ai.input.messages`, `gen_ai.output.messages`      | content is captured (conversation samples); the output only on success |
/// | `<p>.gen_ai.input.redacted`, `<p>.gen_ai.output.redacted` | redaction applies (not `none`)         |
/// | `gen_ai.response.id`                                   | the call succeeded (there is a response)  |
/// | `gen_ai.usage.cache_*`, `aws.bedrock.guardrail.id`     | the call's provider has it (cache usage: providers that report it, on success; the guardrail: `aws.bedrock`) |
/// | `server.address`, `server.port` on MCP attempts        | the span names an MCP tool (its server)   |
///
/// Every other declared attribute is on every span of its class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum When {
    /// On every span of the class.
    Always,
    /// Only on a failed span.
    Failed,
    /// Only on an attempt after the first.
    Retry,
    /// Only when the span names an MCP tool (an LLM call: the model asked for one).
    ToolKnown,
    /// Only when the scenario names its agent (`context.agent`).
    AgentNamed,
    /// Only when content is captured: the scenario has conversation samples.
    Content,
    /// Only when redaction applies to the captured content.
    Redacted,
    /// Only on a span that did not fail.
    Succeeded,
    /// Only on a model call whose provider has it (see [`World::model_sets`];
    /// cache usage only on success).
    Provider,
}

impl When {
    /// What must happen for the attribute to be emitted, for messages.
    pub fn condition(self) -> &'static str {
        match self {
            When::Always => "always set",
            When::Failed => "set only on a failed span",
            When::Retry => "set only on a retry attempt",
            When::ToolKnown => {
                "set only when the span names an MCP tool (an LLM call: when the model asks for one)"
            }
            When::AgentNamed => "set only when the scenario names its agent (context.agent)",
            When::Content => "set only when content is captured (conversation samples)",
            When::Redacted => "set only when redaction applies (redaction not `none`)",
            When::Succeeded => "set only on a successful span",
            When::Provider => {
                "set only on calls to a model whose provider has it (llm.models: cache usage, reported on success; a Bedrock guardrail)"
            }
        }
    }
}

/// A declared attribute of a span class, and when the generator emits it.
#[derive(Clone, Debug)]
pub struct DeclaredAttr<'a> {
    /// The key, prefix applied.
    pub key: String,
    /// The declaration (the first, when the file declares the name twice for the class).
    pub def: &'a AttrDef,
    /// When spans of the class carry it; `None`: never (the code owns the key
    /// and sets it on no span of this class).
    pub when: Option<When>,
}

/// Every attribute the conventions declare for spans of `class` (written
/// `class_name`, `.attempt` included for attempt spans), with when the
/// generator emits it. A scenario's own attributes come on top (see `coverage`).
pub fn declared_attrs<'a>(
    world: &World,
    sc: &'a Semconv,
    class: ClassOf,
    class_name: &str,
) -> Vec<DeclaredAttr<'a>> {
    let role = Role::of(class);
    let site = Site::default();
    declared(world, sc, role, class_name)
        .into_iter()
        .map(|(key, def)| {
            let when = match source(world, role, class.attempt, &key, def, &site) {
                Source::Code(w) | Source::Fill(_, w) => Some(w),
                Source::Never => None,
            };
            DeclaredAttr { key, def, when }
        })
        .collect()
}

/// The attributes declared for `class_name` (prefix applied, first declaration
/// of each name), from `role`'s sections and `applies_to`.
fn declared<'a>(
    world: &World,
    sc: &'a Semconv,
    role: Role,
    class_name: &str,
) -> Vec<(String, &'a AttrDef)> {
    let mut out: Vec<(String, &AttrDef)> = Vec::new();
    for a in sc.declared_for(role.semconv_sections(), class_name) {
        let key = world.prefix.rewrite(&a.name);
        if !out.iter().any(|(k, _)| *k == key) {
            out.push((key, a));
        }
    }
    out
}

/// What the fill's plan-fixed literals need to know about a node.
#[derive(Default)]
struct Site {
    /// The service the span is emitted under (its resource's environment).
    service: Option<ServiceId>,
    /// For a planner: the steps it plans (`<p>.planner.task.count`).
    planned_tasks: i64,
}

/// Where a span gets a declared attribute from.
enum Source {
    /// The code's own rules (identity, role, attempt, failure) set it.
    Code(When),
    /// The fill sets it.
    Fill(Fill, When),
    /// Nothing does.
    Never,
}

/// Where a span of `role` (an attempt span when `attempt`) gets the declared
/// attribute `key`.
fn source(
    world: &World,
    role: Role,
    attempt: bool,
    key: &str,
    def: &AttrDef,
    site: &Site,
) -> Source {
    if let Some(w) = set_by_code(world, role, attempt, key) {
        return Source::Code(w);
    }
    match fill_rule(world, role, attempt, key, def, site) {
        Some((f, w)) => Source::Fill(f, w),
        None => Source::Never,
    }
}

/// When the code's own rules set `key` on a span of `role`: `identity_attrs`,
/// `role_attrs` (and its helpers), `attempt_attrs`, `mark_failed`. Keep in step
/// with them; the coverage test checks that spans agree.
fn set_by_code(world: &World, role: Role, attempt: bool, key: &str) -> Option<When> {
    use When::{
        AgentNamed, Always, Content, Failed, Provider, Redacted, Retry, Succeeded, ToolKnown,
    };
    let k = &world.keys;
    let any = |keys: &[&Key]| keys.iter().any(|x| ***x == *key);
    if any(&[
        &k.span_class,
        &k.session_id,
        &k.conversation_id,
        &k.request_id,
        &k.tenant_id,
    ]) {
        return Some(Always);
    }
    if any(&[&k.error_type]) {
        return Some(Failed);
    }
    if attempt {
        return if any(&[&k.retry_reason]) {
            Some(Retry)
        } else if role != Role::McpAttempt {
            any(&[&k.retry_attempt, &k.step_outcome]).then_some(Always)
        } else if any(&[
            &k.mcp_session,
            &k.mcp_method,
            &k.mcp_call_id,
            &k.attempt_index,
            &k.attempt_outcome,
            &k.mcp_protocol_version,
            &k.jsonrpc_request_id,
            &k.network_transport,
        ]) {
            Some(Always)
        } else {
            any(&[&k.tool_name, &k.server_address, &k.server_port]).then_some(ToolKnown)
        };
    }
    let (always, tool): (Vec<&Key>, Vec<&Key>) = match role {
        Role::Orchestrate => {
            if any(&[&k.agent_target]) {
                return Some(AgentNamed);
            }
            (
                vec![
                    &k.a2a_outcome,
                    &k.enduser,
                    &k.redaction,
                    &k.op_name,
                    &k.provider,
                    &k.request_model,
                ],
                vec![],
            )
        }
        Role::Planner | Role::Compose | Role::Rag => (vec![&k.step_outcome], vec![]),
        Role::Task => (vec![&k.task_id, &k.task_type, &k.step_outcome], vec![]),
        Role::Llm => {
            if any(&[&k.input_messages, &k.output_messages]) {
                return Some(Content);
            }
            if any(&[&k.input_redacted, &k.output_redacted]) {
                return Some(Redacted);
            }
            if any(&[&k.response_id]) {
                return Some(Succeeded);
            }
            if any(&[
                &k.cache_read_tokens,
                &k.cache_creation_tokens,
                &k.guardrail_id,
            ]) {
                return Some(Provider);
            }
            let mut always = vec![
                &k.op_name,
                &k.provider,
                &k.request_model,
                &k.response_model,
                &k.input_tokens,
                &k.output_tokens,
                &k.finish_reasons,
                &k.step_outcome,
                &k.server_address,
                &k.server_port,
                &k.max_tokens,
            ];
            if world.semconv_has_gen_ai_system {
                always.push(&k.system);
            }
            // Set when the conventions declare them, as they do when asked here.
            always.extend([&k.finish_reason, &k.request_type]);
            (always, vec![&k.tool_name])
        }
        Role::ToolsRecommend => (
            vec![&k.step_outcome, &k.selection_latency],
            vec![&k.tool_name, &k.tools_available],
        ),
        Role::McpExecute => (
            vec![
                &k.step_outcome,
                &k.op_name,
                &k.retry_count,
                &k.retry_policy,
                &k.mcp_method,
                &k.mcp_session,
                &k.mcp_call_id,
                &k.tool_call_id,
            ],
            vec![&k.tool_name, &k.mcp_server_uuid, &k.mcp_tool_uuid],
        ),
        Role::McpAttempt | Role::ControlPlane | Role::Generic => (vec![], vec![]),
    };
    if any(&always) {
        Some(Always)
    } else if any(&tool) {
        Some(ToolKnown)
    } else {
        None
    }
}

/// Whether `key` names a duration in ms, which the fill sets to the span's own.
pub fn is_duration_key(key: &str) -> bool {
    [".duration_ms", ".latency_ms", ".latency.ms", ".duration.ms"]
        .iter()
        .any(|s| key.ends_with(s))
}

/// The fill's rule for a declared attribute the code does not set: derived
/// from the trace's state where it has the value, a literal the plan fixes,
/// else sampled from the declaration. `None` for a key the code owns and no
/// rule derives.
fn fill_rule(
    world: &World,
    role: Role,
    attempt: bool,
    key: &str,
    def: &AttrDef,
    site: &Site,
) -> Option<(Fill, When)> {
    use Derived as D;
    let k = &world.keys;
    let is = |x: &Key| **x == *key;
    let short = |s: &str| world.prefix.attr(s) == key;
    let derived = |d: Derived, w: When| Some((Fill::Derived(d), w));
    let literal = |v: AttrValue| Some((Fill::Sample(AttrGen::Literal(v)), When::Always));
    if is_duration_key(key) {
        return derived(
            D::DurationMs {
                integer: def.ty != AttrType::Double,
            },
            When::Always,
        );
    }
    let (d, w) = if is(&k.enduser) {
        (D::EndUser, When::Always)
    } else if is(&k.agent_target) {
        (D::AgentTarget, When::AgentNamed)
    } else if is(&k.redaction) {
        (D::Redaction, When::Always)
    } else if is(&k.turn_index) || short("llm.turn.count") {
        (D::Turn, When::Always)
    } else if is(&k.tool_name) {
        (D::ToolName, When::ToolKnown)
    } else if is(&k.mcp_server_uuid) {
        (D::ServerUuid, When::ToolKnown)
    } else if is(&k.mcp_tool_uuid) {
        (D::ToolUuid, When::ToolKnown)
    } else if is(&k.tool_call_id) && role == Role::Llm {
        (D::RequestedCallId, When::ToolKnown)
    } else if is(&k.tools_selected) || short("llm.tool.request.count") {
        (D::ToolCount, When::Always)
    } else if short("llm.tool.execution.count") {
        (D::ToolCallsBelow, When::Always)
    } else if short("task.retry.count") {
        (D::RetriesBelow, When::Always)
    } else if short("task.fallback.used") {
        (D::FallbackUsed, When::Always)
    } else if is(&k.error_category) {
        (D::ErrorCategory, When::Failed)
    } else if attempt && short("retry.backoff.ms") {
        (D::BackoffMs, When::Retry)
    } else if attempt && is(&k.http_status) {
        (D::HttpStatus, When::Always)
    } else if short("component") {
        // The span's own component; the control plane is the gateway.
        let c = role
            .component()
            .or((role == Role::ControlPlane).then_some("gateway"))?;
        return literal(in_enum(world, key, def, AttrValue::str(c)));
    } else if key == "deployment.environment.name" {
        let env = site
            .service
            .and_then(|id| {
                let svc = world.services.get(id);
                svc.attrs.iter().find(|(k, _)| k == key).map(|(_, v)| v)
            })
            .cloned();
        return match env {
            Some(v) => literal(v),
            None => sample_rule(world, key, def).map(|g| (Fill::Sample(g), When::Always)),
        };
    } else if short("planner.task.count") {
        return literal(AttrValue::Int(site.planned_tasks));
    } else if is(&k.response_format) {
        // What compile gives a composed reply: one A2A JSON message.
        return literal(in_enum(world, key, def, AttrValue::str("a2a_json")));
    } else if owned_by_code(k, key) {
        return None;
    } else {
        return sample_rule(world, key, def).map(|g| (Fill::Sample(g), When::Always));
    };
    derived(d, w)
}

/// `v`, or the closest value of the attribute's enum when `v` is not in it.
fn in_enum(world: &World, key: &str, def: &AttrDef, v: AttrValue) -> AttrValue {
    let allowed = if def.allowed.is_empty() {
        world.enums.get(key).map(Vec::as_slice).unwrap_or_default()
    } else {
        def.allowed.as_slice()
    };
    if allowed.is_empty() || allowed.contains(&v) {
        v
    } else {
        closest_allowed(&v, allowed)
    }
}

/// `v` as a value of type `ty`; `None` when it cannot be one.
fn coerce(v: &AttrValue, ty: AttrType) -> Option<AttrValue> {
    use AttrValue::{Bool, Double, Int, Str, StrArray};
    match (ty, v) {
        (AttrType::Any, v) => Some(v.clone()),
        (AttrType::StringArray, StrArray(_)) => Some(v.clone()),
        (AttrType::StringArray, Str(s)) => Some(StrArray(Arc::from([Arc::from(s.clone())]))),
        (AttrType::String, Str(_)) => Some(v.clone()),
        (AttrType::String, other) => Some(AttrValue::str(&other.to_string())),
        (AttrType::Int, Int(_)) | (AttrType::Double, Double(_)) | (AttrType::Bool, Bool(_)) => {
            Some(v.clone())
        }
        (AttrType::Int, Double(x)) if x.fract() == 0.0 && x.abs() < 9e15 => Some(Int(*x as i64)),
        (AttrType::Int, Str(s)) => s.trim().parse().ok().map(Int),
        (AttrType::Double, Int(i)) => Some(Double(*i as f64)),
        (AttrType::Double, Str(s)) => s.trim().parse().ok().map(Double),
        (AttrType::Bool, Str(s)) => s.trim().parse().ok().map(Bool),
        _ => None,
    }
}

/// A declared attribute's value when nothing in the trace decides it: the
/// default, else a random allowed value, else a random example, else a
/// plausible value of its type (a small number, `false`, `unknown`).
fn sample_rule(world: &World, key: &str, def: &AttrDef) -> Option<AttrGen> {
    let allowed: Vec<AttrValue> = if def.allowed.is_empty() {
        world.enums.get(key).map(Vec::as_slice).unwrap_or_default()
    } else {
        def.allowed.as_slice()
    }
    .iter()
    .filter_map(|v| coerce(v, def.ty))
    .collect();
    if let Some(d) = def.default.as_ref().and_then(|d| coerce(d, def.ty)) {
        // World::new already warned about a default outside the enum.
        let v = if allowed.is_empty() || allowed.contains(&d) {
            d
        } else {
            closest_allowed(&d, &allowed)
        };
        return Some(AttrGen::Literal(v));
    }
    if !allowed.is_empty() {
        return Categorical::uniform(allowed).map(AttrGen::Choice);
    }
    let examples: Vec<AttrValue> = def
        .examples
        .iter()
        .filter_map(|v| coerce(v, def.ty))
        .collect();
    if !examples.is_empty() {
        return Categorical::uniform(examples).map(AttrGen::Choice);
    }
    Some(match def.ty {
        AttrType::Int => AttrGen::Numeric {
            dist: Distribution::Uniform {
                min: 0.0,
                max: 10.0,
            },
            integer: true,
        },
        AttrType::Double => AttrGen::Numeric {
            dist: Distribution::Uniform { min: 0.0, max: 1.0 },
            integer: false,
        },
        AttrType::Bool => AttrGen::Literal(AttrValue::Bool(false)),
        AttrType::StringArray => AttrGen::Literal(AttrValue::str_array(&["unknown"])),
        AttrType::String | AttrType::Any => AttrGen::Literal(AttrValue::str("unknown")),
    })
}

/// Gives every node of every plan its semconv fill — the declared attributes
/// of its class (and of its attempt spans) that the code does not set, each
/// with its rule — once at preparation, so spans only apply it.
pub fn attach_semconv_fill<'a>(
    world: &World,
    sc: &Semconv,
    plans: impl IntoIterator<Item = &'a mut ScenarioPlan>,
) {
    /// The steps a planner plans: its own task children and, after it under the
    /// same parent, every step but the reply's composition.
    fn planned(n: &Node, later: &[Node]) -> i64 {
        let own = n.children.iter().filter(|c| c.role == Role::Task).count();
        let after = later.iter().filter(|c| c.role != Role::Compose).count();
        (own + after) as i64
    }
    fn walk(world: &World, sc: &Semconv, n: &mut Node, planned_tasks: i64) {
        let site = Site {
            service: Some(n.service),
            planned_tasks,
        };
        let mut fill = rules(world, sc, n.role, false, &n.class_name, &site);
        // The step's declared attributes are set before its fill, which would
        // skip their keys on every span: their rules are left out.
        fill.retain(|f| !n.attrs.iter().any(|(k, _)| *k == f.key));
        if let Some(r) = &n.retry {
            let role = Role::of(ClassOf {
                class: n.class.class,
                attempt: true,
            });
            fill.extend(rules(world, sc, role, true, &r.attempt_class, &site));
        }
        n.fill = fill;
        for i in 0..n.children.len() {
            let p = match n.children[i].role {
                Role::Planner => planned(&n.children[i], &n.children[i + 1..]),
                _ => 0,
            };
            walk(world, sc, &mut n.children[i], p);
        }
    }
    for plan in plans {
        // A v2 file says every attribute itself.
        if !plan.semconv_fill {
            continue;
        }
        for part in &mut plan.parts {
            walk(world, sc, &mut part.root, 0);
        }
        for turn in plan.turns.iter_mut() {
            if let Some(t) = turn.turn_parts.as_mut() {
                let t = std::sync::Arc::make_mut(t);
                for part in t.parts.iter_mut().chain(t.by_window.iter_mut().flatten()) {
                    walk(world, sc, &mut part.root, 0);
                }
            }
        }
    }
}

/// The fill of one span class: a rule per declared attribute the code does not set.
fn rules(
    world: &World,
    sc: &Semconv,
    role: Role,
    attempt: bool,
    class_name: &str,
    site: &Site,
) -> Vec<FillAttr> {
    declared(world, sc, role, class_name)
        .into_iter()
        .filter_map(
            |(key, def)| match source(world, role, attempt, &key, def, site) {
                Source::Fill(how, _) => Some(FillAttr {
                    key: Key::from(key.as_str()),
                    how,
                    attempt,
                }),
                Source::Code(_) | Source::Never => None,
            },
        )
        .collect()
}

/// The keys the code owns: the generator sets them from the trace's state (the
/// rules below and the [`Derived`] ones), so semconv filling never invents a
/// value for them, even on a span where the rule leaves them out (`error.type`
/// on a success).
pub fn owned_by_code(k: &Keys, name: &str) -> bool {
    let owned = [
        // identity_attrs: every span
        &k.span_class,
        &k.session_id,
        &k.conversation_id,
        &k.tenant_id,
        // outcomes and failures (finish_span, mark_failed, attempt_attrs)
        &k.error_type,
        &k.error_category,
        &k.step_outcome,
        &k.step_outcome_cp,
        &k.a2a_outcome,
        &k.attempt_outcome,
        &k.attempt_index,
        &k.retry_reason,
        &k.retry_count,
        &k.http_status,
        &k.rpc_status,
        // orchestrate_attrs
        &k.redaction,
        &k.enduser,
        &k.agent_target,
        &k.op_name,
        // llm_attrs
        &k.system,
        &k.provider,
        &k.request_model,
        &k.response_model,
        &k.input_tokens,
        &k.output_tokens,
        &k.finish_reason,
        &k.finish_reasons,
        &k.request_type,
        &k.response_format,
        // tool_call_attrs, the tools.recommend rule and task spans
        &k.tool_name,
        &k.tool_call_id,
        &k.tool_call_arguments,
        &k.agent_id,
        &k.agent_name,
        &k.tool_call_result,
        &k.mcp_call_id,
        &k.mcp_server_uuid,
        &k.mcp_tool_uuid,
        &k.mcp_method,
        &k.mcp_session,
        &k.tools_available,
        &k.tools_selected,
        &k.selection_latency,
        &k.task_id,
        &k.task_type,
        // what a real client records of its LLM and MCP requests (llm_attrs, attempt_attrs)
        &k.server_address,
        &k.server_port,
        &k.max_tokens,
        &k.response_id,
        &k.cache_read_tokens,
        &k.cache_creation_tokens,
        &k.guardrail_id,
        &k.mcp_protocol_version,
        &k.jsonrpc_request_id,
        &k.network_transport,
    ];
    // Resource-level, and the message contents the samples carry.
    owned.iter().any(|o| &***o == name)
        || name == "deployment.environment.name"
        || name.contains("messages")
        || name.contains("redacted")
}

/// What the fill's derived values need to know about the span being finished.
pub(super) struct FillCtx<'x> {
    /// The span's `error.type`, when it failed.
    pub failed: Option<&'x Text>,
    /// The MCP tool the span names (a tool call's, possibly injected).
    pub tool: Option<&'x ToolRef>,
    /// The wait before this attempt, for an attempt after the first.
    pub backoff_ns: Option<u64>,
}

impl<R: Rng + ?Sized> Builder<'_, '_, R> {
    /// Attributes every span carries first: its class and the request's identity.
    pub(super) fn identity_attrs(&mut self, node: &Node) -> Attrs {
        let k = &self.world.keys;
        let class_name = &node.class_name;
        let room = match node.role {
            Role::Llm => MODEL_CALL_ATTRS_ROOM,
            _ => SPAN_ATTRS_ROOM,
        };
        let mut attrs = Attrs::with_capacity(room);
        attrs.push(k.span_class, AttrValue::Str((*class_name).into()));
        if node.service_call {
            // Service traffic knows its request, not the agent's session or tenant.
            attrs.push(
                k.request_id,
                AttrValue::Str(self.input.request_id.clone().into()),
            );
            return attrs;
        }
        attrs.share(self.trace_identity());
        attrs
    }

    /// The session, conversation, request and tenant every agent span of the trace
    /// carries: made with the trace's first span, then shared.
    fn trace_identity(&mut self) -> Arc<SharedAttrs> {
        let k = &self.world.keys;
        let (input, tenant) = (self.input, self.plan.tenant_id);
        self.identity
            .get_or_insert_with(|| {
                let session = || AttrValue::Str(input.session_id.clone().into());
                SharedAttrs::new(vec![
                    (k.session_id, session()),
                    (k.conversation_id, session()),
                    (
                        k.request_id,
                        AttrValue::Str(input.request_id.clone().into()),
                    ),
                    (k.tenant_id, AttrValue::Str(tenant.into())),
                ])
            })
            .clone()
    }

    /// The attributes of attempt `i` (0-based) of a retried step: a tool call's
    /// attempt index and outcome, or a step's retry number and outcome; the
    /// retry reason after a failure; a forced HTTP status.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn attempt_attrs(
        &mut self,
        idx: usize,
        node: &Node,
        retry: &Retry,
        i: u32,
        success: bool,
        call_id: Option<&str>,
        tool: Option<&ToolRef>,
        prev_error: Option<&Text>,
        forced: Option<&ForcedAttempt>,
    ) {
        let session = (node.role == Role::McpExecute).then(|| self.mcp_session());
        // Each attempt is one JSON-RPC request on the trace's MCP session.
        let request_id = session.is_some().then(|| {
            self.jsonrpc_requests += 1;
            self.world.jsonrpc_id(self.jsonrpc_requests)
        });
        let k = &self.world.keys;
        let s = &mut self.spans[idx];
        s.set_attr(k.span_class, AttrValue::Str(retry.attempt_class.into()));
        if let Some(sess) = session {
            s.set_attr(k.mcp_session, AttrValue::Str(sess.into()));
        }
        if node.role == Role::McpExecute {
            s.set_attr(k.mcp_method, lit("tools/call"));
            if let Some(t) = &node.tool {
                s.set_attr(k.tool_name, AttrValue::Str(t.name.into()));
            }
            if let Some(c) = call_id {
                s.set_attr(k.mcp_call_id, AttrValue::str(c));
            }
            s.set_attr(k.attempt_index, AttrValue::Int(i64::from(i) + 1));
            s.set_attr(
                k.attempt_outcome,
                lit(if success { "success" } else { "fail" }),
            );
            // What an MCP client records on each request (keys nothing set before).
            s.attrs.push(
                k.mcp_protocol_version,
                self.world.mcp_protocol_version.clone(),
            );
            if let Some(id) = request_id {
                s.attrs.push(k.jsonrpc_request_id, id);
            }
            s.attrs
                .push(k.network_transport, self.world.mcp_transport.clone());
            if let Some(t) = tool.or(node.tool.as_ref()) {
                s.attrs
                    .push(k.server_address, AttrValue::Str(t.server_address.into()));
                s.attrs.push(k.server_port, AttrValue::Int(t.server_port));
            }
        } else {
            s.set_attr(k.retry_attempt, AttrValue::Int(i64::from(i) + 1));
            s.set_attr(
                k.step_outcome,
                lit(if success { "success" } else { "fail" }),
            );
        }
        if let Some(prev) = prev_error {
            s.set_attr(k.retry_reason, lit(retry_reason(prev)));
        }
        if let Some(code) = forced.and_then(|f| f.http_status) {
            s.set_attr(k.http_status, AttrValue::Int(code));
        }
        // Every attempt carries the call's payloads, a failed one included (its result
        // is the error the tool answered with).
        if let Some(p) = &node.tool_payload {
            if let Some(a) = &p.arguments {
                s.set_attr(k.tool_call_arguments, a.clone());
            }
            if let Some(r) = &p.result {
                s.set_attr(k.tool_call_result, r.clone());
            }
        }
    }

    /// A failed attempt of a call whose result is only config.yaml's sample of a
    /// success answers with its error instead.
    pub(super) fn failed_attempt_result(&mut self, idx: usize, node: &Node, error_type: &Text) {
        if let Some(r) = node
            .tool_payload
            .as_ref()
            .and_then(|p| tool_result(p, Some(error_type)))
        {
            self.spans[idx].set_attr(self.world.keys.tool_call_result, r);
        }
    }

    /// The conversation event of a control-plane root (late-v1 files): what the user
    /// sent, or what the agent answered, with its redacted form when redaction applies.
    pub(super) fn content_event(&mut self, idx: usize, node: &Node) {
        let (Some(which), Some(sample)) = (node.content, self.input.sample) else {
            return;
        };
        let Some(texts) = &sample.raw else {
            return;
        };
        let (user, reply) = (&texts.user, &texts.reply);
        let k = &self.world.keys;
        let redacted = texts.redacted.as_ref();
        let (name, raw_key, red_key, text, red) = match which {
            ContentEvent::EnduserRequest => (
                &k.enduser_request_event,
                &k.enduser_request_raw,
                &k.enduser_request_redacted,
                user,
                redacted.map(|r| &r.0),
            ),
            ContentEvent::AgentResponse => (
                &k.agent_response_event,
                &k.agent_response_raw,
                &k.agent_response_redacted,
                reply,
                redacted.map(|r| &r.1),
            ),
        };
        let mut attrs = vec![(*raw_key, text.clone())];
        if let Some(r) = red {
            attrs.push((*red_key, r.clone()));
        }
        let s = &mut self.spans[idx];
        s.events.push(Event {
            name: *name,
            time_ns: s.start_ns,
            attrs,
        });
    }

    pub(super) fn mcp_session(&mut self) -> Arc<str> {
        if self.mcp_session.is_none() {
            let bytes: [u8; 8] = self.rng.random();
            let mut id = String::with_capacity(21);
            id.push_str("mcps_");
            push_hex(&mut id, &bytes);
            self.mcp_session = Some(Arc::from(id));
        }
        self.mcp_session.clone().unwrap_or_else(|| Arc::from(""))
    }

    /// Marks span `idx` failed with `error_type`; records an exception event unless
    /// `node` is verbatim (its file writes its own events).
    pub(super) fn mark_failed(
        &mut self,
        idx: usize,
        node: &Node,
        error_type: &Text,
        exception: Option<&(Arc<str>, Arc<str>)>,
    ) {
        let k = &self.world.keys;
        let s = &mut self.spans[idx];
        s.status = StatusCode::Error;
        s.set_attr(k.error_type, AttrValue::Str(error_type.clone()));
        let (etype, emsg): (Arc<str>, Arc<str>) = match exception {
            Some((t, m)) => (t.clone(), m.clone()),
            None => (
                Arc::from(exception_class(error_type)),
                Arc::from(exception_message(error_type)),
            ),
        };
        s.status_message = Some(emsg.clone());
        if node.verbatim {
            return;
        }
        let at = s.end_ns.saturating_sub(1_000).max(s.start_ns);
        s.events.push(Event {
            name: k.exception,
            time_ns: at,
            attrs: vec![
                (k.exception_type, AttrValue::Str(etype.into())),
                (k.exception_message, AttrValue::Str(emsg.into())),
            ],
        });
    }

    /// Role attributes, declared attributes, outcome attributes and semconv
    /// fill, in that order; then the failure, if any.
    pub(super) fn finish_span(&mut self, idx: usize, node: &Node, o: &Outcome<'_>) {
        // The role's attributes go in a vector reused from span to span.
        let mut set = std::mem::take(&mut self.role_set);
        set.clear();
        self.role_attrs(idx, node, o, &mut set);
        let span = &mut self.spans[idx];
        // The role's attributes are distinct, and the span holds only its identity
        // attributes yet: they are appended.
        debug_assert!(set
            .iter()
            .enumerate()
            .all(|(i, (key, _))| span.attr(key).is_none()
                && !set[..i].iter().any(|(other, _)| other == key)));
        span.attrs.append(&mut set);
        self.role_set = set;
        // A declared value replaces one.
        for (key, gen) in &node.attrs {
            let v = gen.sample(self.rng);
            self.spans[idx].set_attr(*key, v);
        }
        let k = &self.world.keys;
        let span = &mut self.spans[idx];
        // Outcome attributes follow the status, whatever a declared literal says.
        if o.failed.is_some() {
            if span.attr(&k.step_outcome).is_some() {
                span.set_attr(k.step_outcome, lit("fail"));
            }
            if span.attr(&k.step_outcome_cp).is_some() {
                span.set_attr(k.step_outcome_cp, lit("fail"));
            }
            if span.attr(&k.a2a_outcome).is_some() {
                span.set_attr(k.a2a_outcome, lit("error"));
            }
            // A recommendation that failed selected nothing.
            if node.role == Role::ToolsRecommend && span.attr(&k.tools_selected).is_some() {
                span.set_attr(k.tools_selected, AttrValue::Int(0));
            }
        }
        for e in &node.events {
            // Fixed events (probability 1) draw nothing, so their output never moves.
            if e.probability < 1.0 && !self.rng.random_bool(e.probability.max(0.0)) {
                continue;
            }
            let mut attrs = e.attrs.clone();
            for (key, gen) in &e.sampled {
                attrs.push((*key, gen.sample(self.rng)));
            }
            let span = &mut self.spans[idx];
            // A file's own events are stamped at their span's start, as the format does.
            let at = if node.verbatim {
                span.start_ns
            } else {
                span.start_ns + span.duration_ns() / 3
            };
            span.events.push(Event {
                name: e.name,
                time_ns: at,
                attrs,
            });
        }
        // A topology's HTTP span answers 200, or the 5xx its failure answers with;
        // a gRPC span OK, or the code its failure answers with.
        match node.response_status {
            ResponseStatus::None => {}
            ResponseStatus::Http => {
                let code = o.failed.map_or(200, |t| http_status(t).max(500));
                let k = self.world.keys.http_status;
                self.spans[idx].set_attr(k, AttrValue::Int(code));
            }
            ResponseStatus::Grpc => {
                let code = o.failed.map_or("OK", |t| grpc_status(t));
                let k = self.world.keys.rpc_status;
                self.spans[idx].set_attr(k, AttrValue::str(code));
            }
        }
        let ctx = FillCtx {
            failed: o.failed,
            tool: o.tool,
            backoff_ns: None,
        };
        self.fill(idx, node, false, &ctx);
        if let Some(et) = o.failed {
            let exc = if o.own {
                o.exception.or(node.error.exception.as_ref())
            } else {
                None
            };
            self.mark_failed(idx, node, et, exc);
            if let Some(m) = node.error.message.as_ref().filter(|_| o.own) {
                self.spans[idx].status_message = Some(m.clone());
            }
        }
        if let Some(code) = o.http_status {
            let k = self.world.keys.http_status;
            self.spans[idx].set_attr(k, AttrValue::Int(code));
        }
    }

    /// Applies `node`'s semconv fill to span `idx` (its attempt-span rules when
    /// `attempt`): each rule whose key nothing set yet.
    pub(super) fn fill(&mut self, idx: usize, node: &Node, attempt: bool, c: &FillCtx<'_>) {
        for f in &node.fill {
            if f.attempt != attempt || self.spans[idx].attr(&f.key).is_some() {
                continue;
            }
            let v = match &f.how {
                Fill::Sample(g) => Some(g.sample(self.rng)),
                Fill::Derived(d) => self.derive(idx, *d, c),
            };
            if let Some(v) = v {
                self.spans[idx].attrs.push(f.key, v);
            }
        }
    }

    /// A [`Derived`] value for span `idx`; `None` when its condition does not hold.
    fn derive(&mut self, idx: usize, d: Derived, c: &FillCtx<'_>) -> Option<AttrValue> {
        let span = &self.spans[idx];
        // Children are built (and finished) before their parent: the subtree follows it.
        let below = &self.spans[idx + 1..];
        Some(match d {
            Derived::DurationMs { integer } => duration_ms(span.duration_ns(), integer),
            Derived::EndUser => AttrValue::Str(self.input.enduser_id.clone().into()),
            Derived::AgentTarget => AttrValue::Str(self.plan.agent_id?.into()),
            Derived::Redaction => AttrValue::Str(self.plan.redaction.into()),
            Derived::Turn => AttrValue::Int(i64::from(self.input.turn_index.unwrap_or(1))),
            Derived::ToolName => AttrValue::Str(c.tool?.name.into()),
            Derived::ServerUuid => AttrValue::Str(c.tool?.server_uuid.into()),
            Derived::ToolUuid => AttrValue::Str(c.tool?.tool_uuid.into()),
            Derived::RequestedCallId => {
                let tool = c.tool?;
                AttrValue::str(&self.requested_call_id(idx, tool))
            }
            Derived::ToolCount => AttrValue::Int(i64::from(c.tool.is_some())),
            Derived::ToolCallsBelow => AttrValue::Int(
                below
                    .iter()
                    .filter(|s| s.class.class == SpanClass::McpToolExecute && !s.class.attempt)
                    .count() as i64,
            ),
            Derived::RetriesBelow => {
                // Attempts after the first of each retried step.
                let mut steps: Vec<[u8; 8]> = Vec::new();
                let mut attempts = 0i64;
                for s in below.iter().filter(|s| s.class.attempt) {
                    attempts += 1;
                    if let Some(p) = s.parent_span_id.filter(|p| !steps.contains(p)) {
                        steps.push(p);
                    }
                }
                AttrValue::Int(attempts - steps.len() as i64)
            }
            Derived::FallbackUsed => AttrValue::Bool(
                c.failed.is_none()
                    && below
                        .iter()
                        .any(|s| s.status == StatusCode::Error && !s.class.attempt),
            ),
            Derived::ErrorCategory => {
                let category = AttrValue::str(error_category(c.failed?));
                match self.world.enums.get(&*self.world.keys.error_category) {
                    Some(a) if !a.contains(&category) => closest_allowed(&category, a),
                    _ => category,
                }
            }
            Derived::BackoffMs => duration_ms(c.backoff_ns?, true),
            Derived::HttpStatus => AttrValue::Int(c.failed.map_or(200, |e| http_status(e))),
        })
    }

    /// The id of the tool call an LLM call (span `idx`) asks for: the call made
    /// under it, or the one the next call of that tool in the trace will carry.
    fn requested_call_id(&mut self, idx: usize, tool: &ToolRef) -> String {
        let k = &self.world.keys;
        let under = self.spans[idx + 1..].iter().find(|s| {
            s.class.class == SpanClass::McpToolExecute
                && !s.class.attempt
                && s.attr(&k.tool_name).and_then(AttrValue::as_str) == Some(&*tool.name)
        });
        if let Some(id) = under.and_then(|s| s.attr(&k.tool_call_id)) {
            return id.to_string();
        }
        // In an agent loop the call asked for the turn's tools by slot: the first is this one.
        if let Some(id) = self.call_ids.first() {
            return id.clone();
        }
        let id = self
            .world
            .id_formats
            .mcp_tool_call_id
            .render(self.rng, &self.plan.tenant_id);
        self.requested_call = Some((tool.name, id.clone()));
        id
    }

    /// The call id of an MCP tool call of `node`: the one an LLM call asked for
    /// with this tool, else a new one.
    pub(super) fn mcp_call_id(&mut self, node: &Node) -> String {
        // In an agent loop the LLM asked for this call by its slot.
        if let Some(slot) = node.call_slot.filter(|_| !self.call_ids.is_empty()) {
            return self.slot_call_id(slot).to_string();
        }
        let asked = self
            .requested_call
            .take_if(|(tool, _)| node.tool.as_ref().is_some_and(|t| t.name == *tool));
        match asked {
            Some((_, id)) => id,
            None => self
                .world
                .id_formats
                .mcp_tool_call_id
                .render(self.rng, &self.plan.tenant_id),
        }
    }

    /// The per-role rules: what the generator sets from the trace's state.
    fn role_attrs(
        &mut self,
        idx: usize,
        node: &Node,
        o: &Outcome<'_>,
        set: &mut Vec<(Key, AttrValue)>,
    ) {
        let k = &self.world.keys;
        let dur_ms = self.spans[idx].duration_ns() as f64 / MS;
        let outcome = lit(if o.failed.is_some() {
            "fail"
        } else {
            "success"
        });
        match node.role {
            Role::Orchestrate => self.orchestrate_attrs(o.failed.is_some(), set),
            Role::Planner | Role::Compose => set.push((k.step_outcome, outcome)),
            Role::Rag => {
                set.push((k.step_outcome, outcome));
                self.retrieval_attrs(set);
            }
            Role::Task => {
                self.tasks += 1;
                set.push((k.task_id, self.world.task_id(self.tasks)));
                let tt = node.task_type.unwrap_or(Key::from_static("other"));
                set.push((k.task_type, AttrValue::Str(tt.into())));
                set.push((k.step_outcome, outcome));
            }
            Role::Llm => {
                self.llm_attrs(node, dur_ms, o.failed.is_some(), set);
                self.agent_loop_attrs(node, o.failed.is_some(), set);
                if o.failed.is_none() {
                    self.thinking(idx, node, set);
                }
            }
            Role::ToolsRecommend => {
                set.push((k.step_outcome, outcome));
                set.push((k.selection_latency, AttrValue::Int(dur_ms.round() as i64)));
                if let Some(t) = &node.tool {
                    set.push((k.tool_name, AttrValue::Str(t.name.into())));
                    set.push((k.tools_available, AttrValue::Int(t.server_tool_count)));
                    if !node.verbatim {
                        self.tool_selection_event(idx, t, &node.tool_calls);
                    }
                }
            }
            Role::McpExecute => {
                set.push((k.step_outcome, outcome));
                self.tool_call_attrs(o, set);
                // The execution carries the call's payloads as the conventions place
                // them (UIs show a tool's parameters and output from this span); each
                // attempt repeats them for the request it made.
                if let Some(p) = &node.tool_payload {
                    if let Some(a) = &p.arguments {
                        set.push((k.tool_call_arguments, a.clone()));
                    }
                    if let Some(r) = tool_result(p, o.failed) {
                        set.push((k.tool_call_result, r));
                    }
                }
            }
            Role::McpAttempt | Role::ControlPlane | Role::Generic => {}
        }
    }

    /// The agent turn: its outcome, target agent, end user, redaction, the
    /// agent's provider and model, and the turn.
    fn orchestrate_attrs(&mut self, failed: bool, set: &mut Vec<(Key, AttrValue)>) {
        let k = &self.world.keys;
        set.push((k.a2a_outcome, lit(if failed { "error" } else { "success" })));
        if let Some(a) = &self.plan.agent_id {
            set.push((k.agent_target, AttrValue::Str((*a).into())));
            // The GenAI conventions' names for the agent the turn invokes.
            set.push((k.agent_id, AttrValue::Str((*a).into())));
            set.push((k.agent_name, AttrValue::Str((*a).into())));
        }
        set.push((
            k.enduser,
            AttrValue::Str(self.input.enduser_id.clone().into()),
        ));
        set.push((k.redaction, AttrValue::Str(self.plan.redaction.into())));
        set.push((k.op_name, lit("invoke_agent")));
        // The provider (required) and model of the agent: the ones its model calls use.
        let m = &self.world.models[self.turn_model()];
        set.push((k.provider, m.provider.clone()));
        set.push((k.request_model, m.model.clone()));
        if let Some(t) = self.input.turn_index {
            set.push((k.turn_index, AttrValue::Int(i64::from(t))));
        }
    }

    /// The tool-selection event of a `tools.recommend` span: the user's request
    /// and the chosen tools (`calls`, else just `t`), each with a confidence.
    /// A reasoning model's thinking step (`data_plane.reasoning`): reasoning
    /// tokens counted in the output tokens, and a thinking event early in the call.
    fn thinking(&mut self, idx: usize, node: &Node, set: &mut [(Key, AttrValue)]) {
        let Some(r) = self.plan.reasoning.clone() else {
            return;
        };
        let tokens = i64::from(self.rng.random_range(r.tokens.0..=r.tokens.1));
        let k = &self.world.keys;
        for (key, value) in set.iter_mut() {
            if same_key(key, &k.output_tokens) {
                if let AttrValue::Int(n) = value {
                    *n += tokens;
                }
            }
        }
        let usage = k.reasoning_tokens;
        self.spans[idx].set_attr(usage, AttrValue::Int(tokens));
        let asked = self.input.sample.map_or("", |s| &*s.user_input);
        // The first 120 characters of what the user asked.
        let asked = match asked.char_indices().nth(120) {
            Some((end, _)) => &asked[..end],
            None => asked,
        };
        let content = match &node.tool {
            Some(t) => format!("User: \"{asked}\" → the {} tool covers this; call it, then answer from its result.", t.name),
            None => format!("User: \"{asked}\" → answer from the conversation and the tool results so far."),
        };
        let at = self.spans[idx].start_ns + self.spans[idx].duration_ns() * 3 / 10;
        self.spans[idx].events.push(Event {
            name: k.thinking_event,
            time_ns: at,
            attrs: vec![
                (k.thinking_stage, AttrValue::str(&r.stage)),
                (k.thinking_content, AttrValue::Str(content.into())),
                (usage, AttrValue::Int(tokens)),
            ],
        });
    }

    fn tool_selection_event(&mut self, idx: usize, t: &ToolRef, calls: &[ToolCall]) {
        let k = &self.world.keys;
        let input = match self.input.sample {
            Some(s) => AttrValue::Str(s.user_input.clone().into()),
            None => AttrValue::str(""),
        };
        let one = [&t.name];
        let names: Vec<&Key> = calls.iter().map(|c| &c.name).collect();
        let tools = if names.is_empty() {
            &one[..]
        } else {
            &names[..]
        };
        let choices: Vec<(&str, f64)> = tools
            .iter()
            .map(|name| {
                let confidence = (self.rng.random_range(0.80..0.97_f64) * 100.0).round() / 100.0;
                (&***name, confidence)
            })
            .collect();
        let plan = tool_plan_json(&choices);
        let at = self.spans[idx].start_ns + self.spans[idx].duration_ns() / 2;
        self.spans[idx].events.push(Event {
            name: k.tool_selection_event,
            time_ns: at,
            attrs: vec![
                (k.tool_selection_input, input),
                (k.tool_selection_plan, AttrValue::Str(plan.into())),
            ],
        });
    }

    /// An MCP tool call: operation, tool and server, call ids, retries, session.
    fn tool_call_attrs(&mut self, o: &Outcome<'_>, set: &mut Vec<(Key, AttrValue)>) {
        let k = &self.world.keys;
        set.push((k.op_name, lit("execute_tool")));
        if let Some(t) = o.tool {
            set.push((k.tool_name, AttrValue::Str(t.name.into())));
            set.push((k.mcp_server_uuid, AttrValue::Str(t.server_uuid.into())));
            set.push((k.mcp_tool_uuid, AttrValue::Str(t.tool_uuid.into())));
        }
        if let Some(c) = o.call_id {
            let c = AttrValue::str(c);
            set.push((k.mcp_call_id, c.clone()));
            set.push((k.tool_call_id, c));
        }
        set.push((
            k.retry_count,
            AttrValue::Int(i64::from(o.attempts.saturating_sub(1))),
        ));
        set.push((k.retry_policy, self.world.retry_policy.clone()));
        set.push((k.mcp_method, lit("tools/call")));
        set.push((k.mcp_session, AttrValue::Str(self.mcp_session().into())));
    }

    fn llm_attrs(
        &mut self,
        node: &Node,
        dur_ms: f64,
        failed: bool,
        set: &mut Vec<(Key, AttrValue)>,
    ) {
        let m = &self.world.models[self.turn_model()];
        let k = &self.world.keys;
        set.push((k.op_name, lit("chat")));
        set.push((k.provider, m.provider.clone()));
        if self.world.semconv_has_gen_ai_system {
            let allowed = self.world.enums.get("gen_ai.system");
            let v = match allowed {
                Some(a) if !a.contains(&m.provider) => crate::plan::closest_allowed(&m.provider, a),
                _ => m.provider.clone(),
            };
            set.push((k.system, v));
        }
        set.push((k.request_model, m.model.clone()));
        set.push((k.response_model, m.model.clone()));
        // What a real client records of the request: where it went, its token cap.
        set.push((k.server_address, m.server.0.clone()));
        set.push((k.server_port, m.server.1.clone()));
        set.push((k.max_tokens, AttrValue::Int(m.max_tokens)));
        if let Some(g) = &m.guardrail_id {
            set.push((k.guardrail_id, g.clone()));
        }
        let user_len = self.input.sample.map_or(0, |s| s.user_input.len());
        let reply_len = self.input.sample.map_or(0, |s| s.reply_len);
        // System prompt and tool schemas dominate the prompt; the reply length follows the decode time.
        let prefix = self.rng.random_range(180..900);
        let input_tokens = (user_len / 4) as i64 + prefix;
        // ~4 characters per token for the reply text, plus decode time at 20–50 tokens/s,
        // cut at the request's cap.
        let wanted = if failed {
            0
        } else {
            let text = reply_len as f64 / 4.0 * self.rng.random_range(0.8..1.2);
            ((text + dur_ms * self.rng.random_range(0.02..0.05)) as i64).max(1)
        };
        let output_tokens = wanted.min(m.max_tokens);
        set.push((k.input_tokens, AttrValue::Int(input_tokens)));
        set.push((k.output_tokens, AttrValue::Int(output_tokens)));
        if !failed {
            self.cache_usage(m.api.cache, prefix, set);
        }
        let reason = match () {
            _ if failed => "error",
            _ if wanted > m.max_tokens => "length",
            _ => "stop",
        };
        set.push((k.finish_reasons, self.world.lit_array(reason)));
        if self.world.declares_llm_finish_reason {
            set.push((k.finish_reason, lit(reason)));
        }
        if !failed {
            let id = response_id(m.api.response_id, self.rng);
            set.push((k.response_id, AttrValue::Str(id.into())));
        }
        if self.world.declares_llm_request_type {
            set.push((k.request_type, lit("chat")));
        }
        set.push((k.step_outcome, lit(if failed { "fail" } else { "success" })));
        if let Some(t) = &node.tool {
            set.push((k.tool_name, AttrValue::Str(t.name.into())));
        }
        if let Some(sample) = self.input.sample.filter(|_| node.capture) {
            set.push((k.input_messages, sample.input_messages.clone()));
            if !failed {
                set.push((k.output_messages, sample.output_messages.clone()));
            }
            if let Some((ui, lr)) = &sample.redacted {
                set.push((k.input_redacted, ui.clone()));
                set.push((k.output_redacted, lr.clone()));
            }
        }
    }
}

impl<R: Rng + ?Sized> Builder<'_, '_, R> {
    /// The model of the turn's agent: drawn by the first call that needs it,
    /// then shared by every model call of the trace and the agent's own span.
    fn turn_model(&mut self) -> usize {
        if let Some(i) = self.model {
            return i;
        }
        let i = match self.world.model_weights.sample(self.rng) {
            AttrValue::Int(i) => *i as usize,
            _ => 0,
        };
        let i = i.min(self.world.models.len().saturating_sub(1));
        self.model = Some(i);
        i
    }

    /// The cache usage a provider reports: the stable part of the prompt
    /// (`prefix` tokens: instructions and tool schemas) is usually read from
    /// the cache; otherwise it is written to it.
    fn cache_usage(&mut self, report: CacheReport, prefix: i64, set: &mut Vec<(Key, AttrValue)>) {
        if report == CacheReport::Nothing {
            return;
        }
        let k = &self.world.keys;
        let hit = self.rng.random_bool(0.7);
        let read = if hit { prefix } else { 0 };
        set.push((k.cache_read_tokens, AttrValue::Int(read)));
        if report == CacheReport::ReadAndCreation {
            let written = if hit { 0 } else { prefix };
            set.push((k.cache_creation_tokens, AttrValue::Int(written)));
        }
    }
}

/// A completion id in the provider's form.
fn response_id<R: Rng + ?Sized>(style: IdStyle, rng: &mut R) -> Arc<str> {
    const ALNUM: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    const HEX: &[u8] = b"0123456789abcdef";
    let mut id = String::with_capacity(48);
    // Characters from the bits of 64-bit draws (at most 62^10 < 2^64 per draw).
    let mut pick = |id: &mut String, set: &[u8], n: usize| {
        let base = set.len() as u64;
        let mut left = 0;
        let mut bits = 0u64;
        for _ in 0..n {
            if left == 0 {
                bits = rng.random::<u64>();
                left = 10;
            }
            id.push(char::from(set[(bits % base) as usize]));
            bits /= base;
            left -= 1;
        }
    };
    match style {
        IdStyle::Alnum(prefix, n) => {
            id.push_str(prefix);
            pick(&mut id, ALNUM, n);
        }
        IdStyle::Hex(prefix, n) => {
            id.push_str(prefix);
            pick(&mut id, HEX, n);
        }
        IdStyle::Uuid(prefix) => {
            // 8-4-4-4-12 hex digits: version 4, RFC 4122 variant.
            id.push_str(prefix);
            pick(&mut id, HEX, 8);
            id.push('-');
            pick(&mut id, HEX, 4);
            id.push_str("-4");
            pick(&mut id, HEX, 3);
            id.push('-');
            pick(&mut id, b"89ab", 1);
            pick(&mut id, HEX, 3);
            id.push('-');
            pick(&mut id, HEX, 12);
        }
    }
    Arc::from(id)
}

/// The tool-selection event's plan, `{"tool_plan":[{"confidence":…,"tool_name":…,
/// "trigger_summary":"user request maps to …"},…]}`, written straight out: the bytes
/// `serde_json` gives that object (keys sorted), without building a `Value` per span.
fn tool_plan_json(choices: &[(&str, f64)]) -> String {
    let mut out = String::with_capacity(32 + choices.len() * 96);
    out.push_str("{\"tool_plan\":[");
    for (i, (name, confidence)) in choices.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"confidence\":");
        push_confidence(&mut out, *confidence);
        out.push_str(",\"tool_name\":\"");
        push_json_escaped(&mut out, name);
        // The summary's fixed start needs no escaping: its JSON is the name's, prefixed.
        out.push_str("\",\"trigger_summary\":\"user request maps to ");
        push_json_escaped(&mut out, name);
        out.push_str("\"}");
    }
    out.push_str("]}");
    out
}

/// Appends `c` as serde_json writes it. A confidence is a whole number of
/// hundredths: those are written once into a table, the rest on the spot.
fn push_confidence(out: &mut String, c: f64) {
    static HUNDREDTHS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let n = (c * 100.0).round();
    // Compared bit for bit with the table's value, so that -0.0 is not 0.0.
    if (0.0..=100.0).contains(&n) && (f64::from(n as u8) / 100.0).to_bits() == c.to_bits() {
        let table = HUNDREDTHS.get_or_init(|| {
            (0..=100)
                .map(|i| serde_json::to_string(&(f64::from(i) / 100.0)).unwrap_or_default())
                .collect()
        });
        out.push_str(&table[usize::from(n as u8)]);
    } else {
        // A number always serializes.
        out.push_str(&serde_json::to_string(&c).unwrap_or_default());
    }
}

/// `{"error":{"type":…}}`: what a tool that failed with `error_type` answers, as
/// serde_json writes it.
pub(super) fn error_json(error_type: &str) -> String {
    let mut out = String::with_capacity(24 + error_type.len());
    push_error_json(&mut out, error_type);
    out
}

/// Appends `{"error":{"type":…}}` (see [`error_json`]).
pub(super) fn push_error_json(out: &mut String, error_type: &str) {
    out.push_str("{\"error\":{\"type\":\"");
    push_json_escaped(out, error_type);
    out.push_str("\"}}");
}

/// Appends the inside of `s` as a JSON string, escaped as serde_json escapes it:
/// the quote, the backslash and control characters (short forms where JSON has
/// them, else `\u00xx`); everything else as it is.
pub(super) fn push_json_escaped(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut plain = 0;
    for (i, b) in s.bytes().enumerate() {
        let short = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => continue,
        };
        // `b` is ASCII: `i` is a character boundary.
        out.push_str(&s[plain..i]);
        if short.is_empty() {
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        } else {
            out.push_str(short);
        }
        plain = i + 1;
    }
    out.push_str(&s[plain..]);
}

/// A literal text as an attribute value (outcomes, operation names, reasons):
/// copied as it is, with no table to search and nothing allocated.
pub(super) fn lit(s: &'static str) -> AttrValue {
    AttrValue::Str(Text::Static(s))
}

/// Appends `bytes` as lower-case hex digits.
fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
}

/// Sets again the duration attributes the fill gave `span` (of `node`), after
/// the span was stretched: a single-trace request's root covers every part.
pub(super) fn refresh_durations(span: &mut crate::record::SpanRecord, node: &Node) {
    for f in node.fill.iter().filter(|f| !f.attempt) {
        let Fill::Derived(Derived::DurationMs { integer }) = f.how else {
            continue;
        };
        // A value the scenario declares is the scenario's.
        if span.attr(&f.key).is_some() && !node.attrs.iter().any(|(k, _)| *k == f.key) {
            span.set_attr(f.key, duration_ms(span.duration_ns(), integer));
        }
    }
}

/// A duration in ms: whole ms, or rounded to the µs.
fn duration_ms(ns: u64, integer: bool) -> AttrValue {
    let ms = ns as f64 / MS;
    if integer {
        AttrValue::Int(ms.round() as i64)
    } else {
        AttrValue::Double((ms * 1000.0).round() / 1000.0)
    }
}

/// `<p>.error.category` of a failure: bad input is `validation`, everything
/// else (timeouts, unavailable upstreams, tool and protocol errors) `runtime`.
/// A policy decision is a block, not a failure, so no failure is `policy`.
fn error_category(error_type: &str) -> &'static str {
    match error_type {
        "invalid_arguments" => "validation",
        _ => "runtime",
    }
}

/// The HTTP status an MCP server answers a failed attempt with, by `error.type`.
fn http_status(error_type: &str) -> i64 {
    match error_type {
        "invalid_arguments" => 400,
        "protocol_error" => 502,
        "unavailable" => 503,
        "timeout" => 504,
        _ => 500,
    }
}

/// The gRPC status code (its name, as `rpc.response.status_code` has it) a
/// failure of `error_type` answers with; server errors all, as a topology's are.
fn grpc_status(error_type: &str) -> &'static str {
    match error_type {
        "timeout" => "DEADLINE_EXCEEDED",
        "unavailable" => "UNAVAILABLE",
        "protocol_error" => "UNKNOWN",
        _ => "INTERNAL",
    }
}

/// `retry.reason` of the next attempt, from the previous attempt's `error.type`.
fn retry_reason(prev: &str) -> &'static str {
    match prev {
        "timeout" => "timeout",
        "unavailable" => "unavailable",
        _ => "transient_error",
    }
}

fn exception_class(error_type: &str) -> &'static str {
    match error_type {
        "timeout" => "TimeoutError",
        "unavailable" => "ServiceUnavailableError",
        "invalid_arguments" => "InvalidArgumentsError",
        "tool_error" => "ToolExecutionError",
        "protocol_error" => "ProtocolError",
        "capability_resolution_error" => "CapabilityResolutionError",
        _ => "RuntimeError",
    }
}

fn exception_message(error_type: &str) -> &'static str {
    match error_type {
        "timeout" => "operation timed out before the upstream answered",
        "unavailable" => "upstream service unavailable",
        "invalid_arguments" => "request arguments failed validation",
        "tool_error" => "tool returned an error result",
        "protocol_error" => "malformed response from upstream",
        "capability_resolution_error" => "no MCP tool capability could be resolved",
        _ => "operation failed",
    }
}

/// A tool call's `gen_ai.tool.call.result`: what the scenario wrote, or config.yaml's
/// sample of a success; a failed call with only the sample answers with its error
/// (the shape the agent loop's tool message gives it).
fn tool_result(p: &crate::plan::ToolPayload, failed: Option<&Text>) -> Option<AttrValue> {
    match failed {
        Some(t) if p.result_is_sample && p.result.is_some() => {
            Some(AttrValue::Str(Text::from(error_json(t))))
        }
        _ => p.result.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Diags;
    use crate::registry::Registry;
    use rand::SeedableRng;
    use rand_pcg::Pcg64Mcg;

    fn world() -> World {
        let reg = Registry::load(&Default::default()).expect("bundled files load");
        let opts = crate::plan::WorldOptions {
            vendor: "vendor".into(),
            ..Default::default()
        };
        World::new(&reg.config, &reg.semconv, &opts, &mut Diags::new("test"))
    }

    fn def(name: &str, ty: AttrType) -> AttrDef {
        AttrDef {
            name: name.into(),
            ty,
            required: false,
            allowed: Vec::new(),
            examples: Vec::new(),
            default: None,
            applies_to: Vec::new(),
            pos: Default::default(),
        }
    }

    fn rule(w: &World, role: Role, attempt: bool, d: &AttrDef) -> Option<(Fill, When)> {
        let key = w.prefix.rewrite(&d.name);
        fill_rule(w, role, attempt, &key, d, &Site::default())
    }

    fn sampled(g: &AttrGen) -> Vec<AttrValue> {
        let mut rng = Pcg64Mcg::seed_from_u64(1);
        (0..64).map(|_| g.sample(&mut rng)).collect()
    }

    #[test]
    fn a_value_nothing_decides_is_the_default_then_an_enum_value_then_an_example_then_typed() {
        let w = world();
        let mut d = def("vendor.x.mode", AttrType::String);
        d.examples = vec![AttrValue::str("ex")];
        d.allowed = vec![AttrValue::str("a"), AttrValue::str("b")];
        d.default = Some(AttrValue::str("b"));
        let at = |d: &AttrDef| sample_rule(&w, "vendor.x.mode", d).expect("a rule");
        assert_eq!(at(&d), AttrGen::Literal(AttrValue::str("b")));
        // A default outside the enum is its closest allowed value.
        d.default = Some(AttrValue::str("A"));
        assert_eq!(at(&d), AttrGen::Literal(AttrValue::str("a")));
        d.default = None;
        let v = sampled(&at(&d));
        assert!(v.iter().all(|v| d.allowed.contains(v)), "{v:?}");
        assert!(
            v.contains(&AttrValue::str("b")),
            "every allowed value comes up"
        );
        d.allowed.clear();
        assert!(sampled(&at(&d)).iter().all(|v| *v == AttrValue::str("ex")));
        d.examples.clear();
        assert_eq!(at(&d), AttrGen::Literal(AttrValue::str("unknown")));
        let b = def("vendor.x.flag", AttrType::Bool);
        assert_eq!(
            sample_rule(&w, "vendor.x.flag", &b),
            Some(AttrGen::Literal(AttrValue::Bool(false)))
        );
    }

    #[test]
    fn examples_and_defaults_take_the_declared_type() {
        let w = world();
        let mut d = def("vendor.x.temperature", AttrType::Double);
        d.examples = vec![AttrValue::Int(0), AttrValue::Int(1)];
        let g = sample_rule(&w, "vendor.x.temperature", &d).expect("a rule");
        assert!(sampled(&g)
            .iter()
            .all(|v| matches!(v, AttrValue::Double(x) if *x == 0.0 || *x == 1.0)));
        let mut i = def("vendor.x.count", AttrType::Int);
        i.default = Some(AttrValue::str("3"));
        assert_eq!(
            sample_rule(&w, "vendor.x.count", &i),
            Some(AttrGen::Literal(AttrValue::Int(3)))
        );
        // An example that cannot be of the type is left out.
        i.default = None;
        i.examples = vec![AttrValue::str("many"), AttrValue::Double(2.0)];
        assert!(sampled(&sample_rule(&w, "vendor.x.count", &i).unwrap())
            .iter()
            .all(|v| *v == AttrValue::Int(2)));
    }

    #[test]
    fn duration_attributes_are_the_spans_duration_typed_as_declared() {
        let w = world();
        for name in [
            "vendor.llm.latency_ms",
            "vendor.orchestration.duration_ms",
            "vendor.rag.latency.ms",
        ] {
            let got = rule(&w, Role::Llm, false, &def(name, AttrType::Int));
            assert!(
                matches!(
                    got,
                    Some((
                        Fill::Derived(Derived::DurationMs { integer: true }),
                        When::Always
                    ))
                ),
                "{name}: {got:?}"
            );
        }
        let got = rule(
            &w,
            Role::Llm,
            false,
            &def("vendor.x.latency_ms", AttrType::Double),
        );
        assert!(matches!(
            got,
            Some((Fill::Derived(Derived::DurationMs { integer: false }), _))
        ));
        assert!(!is_duration_key("vendor.retry.backoff.ms"));
        assert_eq!(duration_ms(12_345_678, true), AttrValue::Int(12));
        assert_eq!(duration_ms(12_345_678, false), AttrValue::Double(12.346));
        assert_eq!(duration_ms(12_500_000, true), AttrValue::Int(13));
    }

    #[test]
    fn failure_and_retry_attributes_stay_conditional() {
        let w = world();
        let cat = def("vendor.error.category", AttrType::String);
        assert!(matches!(
            rule(&w, Role::Planner, false, &cat),
            Some((Fill::Derived(Derived::ErrorCategory), When::Failed))
        ));
        let backoff = def("vendor.retry.backoff.ms", AttrType::Int);
        assert!(matches!(
            rule(&w, Role::McpAttempt, true, &backoff),
            Some((Fill::Derived(Derived::BackoffMs), When::Retry))
        ));
        let status = def("http.response.status_code", AttrType::Int);
        assert!(matches!(
            rule(&w, Role::McpAttempt, true, &status),
            Some((Fill::Derived(Derived::HttpStatus), When::Always))
        ));
        assert_eq!(
            set_by_code(&w, Role::Planner, false, "error.type"),
            Some(When::Failed)
        );
        assert_eq!(
            set_by_code(&w, Role::McpAttempt, true, "vendor.retry.reason"),
            Some(When::Retry)
        );
    }

    #[test]
    fn the_tool_plan_is_the_json_serde_json_writes() {
        let choices = [
            ("claims_create", 0.85),
            ("say \"hi\"\\ \u{1}\n é/", 0.8),
            ("", 0.97),
            ("tab\t\r\u{8}\u{c}\u{1f}\u{7f} ✓", 0.805),
            ("zero", -0.0),
            ("one", 1.0),
            ("small", 0.07),
            ("big", 123.45),
        ];
        for n in 0..=choices.len() {
            let entries: Vec<serde_json::Value> = choices[..n]
                .iter()
                .map(|(name, c)| serde_json::json!({"tool_name": name, "trigger_summary": format!("user request maps to {name}"), "confidence": c}))
                .collect();
            let want = serde_json::json!({ "tool_plan": entries }).to_string();
            assert_eq!(tool_plan_json(&choices[..n]), want);
        }
    }

    #[test]
    fn a_failed_tools_answer_is_the_json_serde_json_writes() {
        for t in ["timeout", "", "say \"no\"\\ \u{2}"] {
            let want = serde_json::json!({"error": {"type": t}}).to_string();
            assert_eq!(error_json(t), want);
        }
    }

    #[test]
    fn failures_map_to_a_category_and_a_status_that_agree_with_their_type() {
        assert_eq!(error_category("invalid_arguments"), "validation");
        for t in ["timeout", "unavailable", "tool_error", "protocol_error"] {
            assert_eq!(error_category(t), "runtime", "{t}");
        }
        assert_eq!(http_status("invalid_arguments"), 400);
        assert_eq!(http_status("tool_error"), 500);
        assert_eq!(http_status("protocol_error"), 502);
        assert_eq!(http_status("unavailable"), 503);
        assert_eq!(http_status("timeout"), 504);
    }

    #[test]
    fn state_values_come_from_the_trace_and_owned_keys_are_never_invented() {
        let w = world();
        let d = |n: &str| def(n, AttrType::String);
        for (name, want) in [
            ("vendor.enduser.pseudo.id", Derived::EndUser),
            ("vendor.redaction.applied", Derived::Redaction),
            ("vendor.mcp.server.uuid", Derived::ServerUuid),
            ("vendor.mcp.tool.uuid", Derived::ToolUuid),
            ("gen_ai.tool.name", Derived::ToolName),
        ] {
            let got = rule(&w, Role::Task, false, &d(name));
            assert!(
                matches!(got, Some((Fill::Derived(x), _)) if x == want),
                "{name}: {got:?}"
            );
        }
        // Tokens, messages and error.type only the code's rules set.
        for owned in [
            "gen_ai.usage.input_tokens",
            "gen_ai.input.messages",
            "error.type",
        ] {
            assert!(
                rule(&w, Role::Planner, false, &d(owned)).is_none(),
                "{owned}"
            );
        }
        // The component of the role, where declared on a span.
        let got = rule(&w, Role::Llm, false, &d("vendor.component"));
        assert!(
            matches!(&got, Some((Fill::Sample(AttrGen::Literal(v)), When::Always)) if *v == AttrValue::str("llm")),
            "{got:?}"
        );
        assert!(rule(&w, Role::Generic, false, &d("vendor.component")).is_none());
    }
}
