//! Where every attribute value is chosen. Three sources, applied in this order
//! by `finish_span`:
//! 1. the per-role rules (`role_attrs` and its helpers): values the generator
//!    derives from the trace's state — outcomes, models and tokens, tool and
//!    call ids, retry counts — for the keys in the [`owned_by_code`] table;
//! 2. the scenario's declared attributes (`AttrGen`, compiled in `plan`), each
//!    sampled by [`AttrGen::sample`], the one sampler of attribute values;
//! 3. the semconv fill ([`attach_semconv_fill`]): the conventions' defaults,
//!    enum values and examples for what nothing else set.
//!
//! Then the outcome attributes follow the status and a failure is recorded.
//! Identity attributes every span carries (`span.class`, session, request,
//! tenant) are [`Builder::identity_attrs`]; attempt spans get theirs from
//! [`Builder::attempt_attrs`].

use super::{Builder, ForcedAttempt, Outcome, MS};
use crate::model::distribution::{Categorical, Distribution};
use crate::model::semconv::{AttrDef, AttrType, Semconv};
use crate::model::AttrValue;
use crate::plan::{
    closest_allowed, AttrGen, ContentEvent, Keys, Node, Retry, Role, ScenarioPlan, ToolRef, World,
};
use crate::record::{Event, Key, StatusCode};
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

/// Gives every node of every plan its semconv fill (see [`semconv_fill`]),
/// from the node's class, once at preparation.
pub fn attach_semconv_fill<'a>(
    world: &World,
    sc: &Semconv,
    plans: impl IntoIterator<Item = &'a mut ScenarioPlan>,
) {
    fn walk(world: &World, sc: &Semconv, n: &mut Node) {
        n.fill = semconv_fill(world, sc, Role::of(n.class), &n.class_name);
        for c in &mut n.children {
            walk(world, sc, c);
        }
    }
    for plan in plans {
        // A v2 file says every attribute itself.
        if !plan.semconv_fill {
            continue;
        }
        for part in &mut plan.parts {
            walk(world, sc, &mut part.root);
        }
        for turn in plan.turns.iter_mut() {
            if let Some(t) = turn.turn_parts.as_mut() {
                let t = std::sync::Arc::make_mut(t);
                for part in t.parts.iter_mut().chain(t.by_window.iter_mut().flatten()) {
                    walk(world, sc, &mut part.root);
                }
            }
        }
    }
}

/// The keys the code owns: the generator sets them from the trace's state (the
/// rules below), so semconv filling never invents a value for them, even on a
/// span where the rule leaves them out (`error.type` on a success).
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
    ];
    // Resource-level, and the message contents the samples carry.
    owned.iter().any(|o| &***o == name)
        || name == "deployment.environment.name"
        || name.contains("messages")
        || name.contains("redacted")
}

/// Generators for a span class's semconv attributes that nothing else sets: the
/// default, else a random allowed value for enums, else an example (or a small
/// number) for required ones.
fn semconv_fill(world: &World, sc: &Semconv, role: Role, class: &str) -> Vec<(Key, AttrGen)> {
    let mut out: Vec<(Key, AttrGen)> = Vec::new();
    let mut add = |a: &AttrDef| {
        let name = world.prefix.rewrite(&a.name);
        if owned_by_code(&world.keys, &name) || out.iter().any(|(k, _)| **k == *name) {
            return;
        }
        let gen = if let Some(def) = &a.default {
            // World::new already warned about a default outside the enum.
            let v = match world.enums.get(&name) {
                Some(allowed) if !allowed.contains(def) => closest_allowed(def, allowed),
                _ => def.clone(),
            };
            Some(AttrGen::Literal(v))
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
                (AttrType::Double, true) => Some(AttrGen::Numeric {
                    dist: Distribution::Uniform { min: 0.0, max: 1.0 },
                    integer: false,
                }),
                (AttrType::Bool, true) => Some(AttrGen::Literal(AttrValue::Bool(false))),
                _ => None,
            }
        } else {
            None
        };
        if let Some(g) = gen {
            out.push((Arc::from(name.as_str()), g));
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

impl<R: Rng + ?Sized> Builder<'_, '_, R> {
    /// Attributes every span carries first: its class and the request's identity.
    pub(super) fn identity_attrs(&self, class_name: &Key) -> Vec<(Key, AttrValue)> {
        let k = &self.world.keys;
        let mut attrs: Vec<(Key, AttrValue)> = Vec::with_capacity(20);
        attrs.push((k.span_class.clone(), AttrValue::Str(class_name.clone())));
        attrs.push((
            k.session_id.clone(),
            AttrValue::Str(self.input.session_id.clone()),
        ));
        attrs.push((
            k.conversation_id.clone(),
            AttrValue::Str(self.input.session_id.clone()),
        ));
        attrs.push((
            k.request_id.clone(),
            AttrValue::Str(self.input.request_id.clone()),
        ));
        attrs.push((
            k.tenant_id.clone(),
            AttrValue::Str(self.plan.tenant_id.clone()),
        ));
        attrs
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
        prev_error: Option<&Key>,
        forced: Option<&ForcedAttempt>,
    ) {
        let session = (node.role == Role::McpExecute).then(|| self.mcp_session());
        let k = &self.world.keys;
        let s = &mut self.spans[idx];
        s.attrs[0].1 = AttrValue::Str(retry.attempt_class.clone());
        if let Some(sess) = session {
            s.set_attr(k.mcp_session.clone(), AttrValue::Str(sess));
        }
        if node.role == Role::McpExecute {
            s.set_attr(k.mcp_method.clone(), self.world.lit("tools/call"));
            if let Some(t) = &node.tool {
                s.set_attr(k.tool_name.clone(), AttrValue::Str(t.name.clone()));
            }
            if let Some(c) = call_id {
                s.set_attr(k.mcp_call_id.clone(), AttrValue::str(c));
            }
            s.set_attr(k.attempt_index.clone(), AttrValue::Int(i64::from(i) + 1));
            s.set_attr(
                k.attempt_outcome.clone(),
                self.world.lit(if success { "success" } else { "fail" }),
            );
        } else {
            s.set_attr(k.retry_attempt.clone(), AttrValue::Int(i64::from(i) + 1));
            s.set_attr(
                k.step_outcome.clone(),
                self.world.lit(if success { "success" } else { "fail" }),
            );
        }
        if let Some(prev) = prev_error {
            s.set_attr(k.retry_reason.clone(), self.world.lit(retry_reason(prev)));
        }
        if let Some(code) = forced.and_then(|f| f.http_status) {
            s.set_attr(k.http_status.clone(), AttrValue::Int(code));
        }
        // Every attempt carries the call's payloads, a failed one included (its result
        // is the error the tool answered with).
        if let Some(p) = &node.tool_payload {
            if let Some(a) = &p.arguments {
                s.set_attr(k.tool_call_arguments.clone(), a.clone());
            }
            if let Some(r) = &p.result {
                s.set_attr(k.tool_call_result.clone(), r.clone());
            }
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
        let mut attrs = vec![(raw_key.clone(), text.clone())];
        if let Some(r) = red {
            attrs.push((red_key.clone(), r.clone()));
        }
        let s = &mut self.spans[idx];
        s.events.push(Event {
            name: name.clone(),
            time_ns: s.start_ns,
            attrs,
        });
    }

    pub(super) fn mcp_session(&mut self) -> Arc<str> {
        if self.mcp_session.is_none() {
            let bytes: [u8; 8] = self.rng.random();
            self.mcp_session = Some(Arc::from(format!("mcps_{}", hex::encode(bytes))));
        }
        self.mcp_session.clone().unwrap_or_else(|| Arc::from(""))
    }

    /// Marks span `idx` failed with `error_type`; records an exception event unless
    /// `node` is verbatim (its file writes its own events).
    pub(super) fn mark_failed(
        &mut self,
        idx: usize,
        node: &Node,
        error_type: &Key,
        exception: Option<&(Arc<str>, Arc<str>)>,
    ) {
        let k = &self.world.keys;
        let s = &mut self.spans[idx];
        s.status = StatusCode::Error;
        s.set_attr(k.error_type.clone(), AttrValue::Str(error_type.clone()));
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
            name: k.exception.clone(),
            time_ns: at,
            attrs: vec![
                (k.exception_type.clone(), AttrValue::Str(etype)),
                (k.exception_message.clone(), AttrValue::Str(emsg)),
            ],
        });
    }

    /// Role attributes, declared attributes, outcome attributes and semconv
    /// fill, in that order; then the failure, if any.
    pub(super) fn finish_span(&mut self, idx: usize, node: &Node, o: &Outcome<'_>) {
        let mut set = self.role_attrs(idx, node, o);
        for (key, gen) in &node.attrs {
            set.push((key.clone(), gen.sample(self.rng)));
        }
        let k = &self.world.keys;
        let span = &mut self.spans[idx];
        for (key, v) in set {
            span.set_attr(key, v);
        }
        // Outcome attributes follow the status, whatever a declared literal says.
        if o.failed.is_some() {
            if span.attr(&k.step_outcome).is_some() {
                span.set_attr(k.step_outcome.clone(), self.world.lit("fail"));
            }
            if span.attr(&k.step_outcome_cp).is_some() {
                span.set_attr(k.step_outcome_cp.clone(), self.world.lit("fail"));
            }
            if span.attr(&k.a2a_outcome).is_some() {
                span.set_attr(k.a2a_outcome.clone(), self.world.lit("error"));
            }
            // A recommendation that failed selected nothing.
            if node.role == Role::ToolsRecommend && span.attr(&k.tools_selected).is_some() {
                span.set_attr(k.tools_selected.clone(), AttrValue::Int(0));
            }
        }
        for e in &node.events {
            // A file's own events are stamped at their span's start, as the format does.
            let at = if node.verbatim {
                span.start_ns
            } else {
                span.start_ns + span.duration_ns() / 3
            };
            span.events.push(Event {
                name: e.name.clone(),
                time_ns: at,
                attrs: e.attrs.clone(),
            });
        }
        for (key, gen) in &node.fill {
            if self.spans[idx].attr(key).is_none() {
                let v = gen.sample(self.rng);
                self.spans[idx].set_attr(key.clone(), v);
            }
        }
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
            let k = self.world.keys.http_status.clone();
            self.spans[idx].set_attr(k, AttrValue::Int(code));
        }
    }

    /// The per-role rules: what the generator sets from the trace's state.
    fn role_attrs(&mut self, idx: usize, node: &Node, o: &Outcome<'_>) -> Vec<(Key, AttrValue)> {
        let k = &self.world.keys;
        let dur_ms = self.spans[idx].duration_ns() as f64 / MS;
        let mut set: Vec<(Key, AttrValue)> = Vec::with_capacity(16);
        let outcome = self.world.lit(if o.failed.is_some() {
            "fail"
        } else {
            "success"
        });
        match node.role {
            Role::Orchestrate => self.orchestrate_attrs(o.failed.is_some(), &mut set),
            Role::Planner | Role::Compose | Role::Rag => {
                set.push((k.step_outcome.clone(), outcome))
            }
            Role::Task => {
                self.tasks += 1;
                set.push((
                    k.task_id.clone(),
                    AttrValue::Str(Arc::from(format!("task_{}", self.tasks))),
                ));
                let tt = node.task_type.clone().unwrap_or_else(|| Arc::from("other"));
                set.push((k.task_type.clone(), AttrValue::Str(tt)));
                set.push((k.step_outcome.clone(), outcome));
            }
            Role::Llm => self.llm_attrs(node, dur_ms, o.failed.is_some(), &mut set),
            Role::ToolsRecommend => {
                set.push((k.step_outcome.clone(), outcome));
                set.push((
                    k.selection_latency.clone(),
                    AttrValue::Int(dur_ms.round() as i64),
                ));
                if let Some(t) = &node.tool {
                    set.push((k.tool_name.clone(), AttrValue::Str(t.name.clone())));
                    set.push((
                        k.tools_available.clone(),
                        AttrValue::Int(t.server_tool_count),
                    ));
                    if !node.verbatim {
                        self.tool_selection_event(idx, t, &node.tool_plan);
                    }
                }
            }
            Role::McpExecute => {
                set.push((k.step_outcome.clone(), outcome));
                self.tool_call_attrs(o, &mut set);
            }
            Role::McpAttempt | Role::ControlPlane | Role::Generic => {}
        }
        set
    }

    /// The agent turn: its outcome, target agent, end user, redaction and turn.
    fn orchestrate_attrs(&self, failed: bool, set: &mut Vec<(Key, AttrValue)>) {
        let k = &self.world.keys;
        set.push((
            k.a2a_outcome.clone(),
            self.world.lit(if failed { "error" } else { "success" }),
        ));
        if let Some(a) = &self.plan.agent_id {
            set.push((k.agent_target.clone(), AttrValue::Str(a.clone())));
        }
        set.push((
            k.enduser.clone(),
            AttrValue::Str(self.input.enduser_id.clone()),
        ));
        set.push((
            k.redaction.clone(),
            AttrValue::Str(self.plan.redaction.clone()),
        ));
        set.push((k.op_name.clone(), self.world.lit("invoke_agent")));
        if let Some(t) = self.input.turn_index {
            set.push((k.turn_index.clone(), AttrValue::Int(i64::from(t))));
        }
    }

    /// The tool-selection event of a `tools.recommend` span: the user's request
    /// and the chosen tools (`plan`, else just `t`), each with a confidence.
    fn tool_selection_event(&mut self, idx: usize, t: &ToolRef, plan: &[Key]) {
        let k = &self.world.keys;
        let input = self.input.sample.map_or("", |s| &*s.user_input);
        let one = [t.name.clone()];
        let tools = if plan.is_empty() { &one[..] } else { plan };
        let entries: Vec<serde_json::Value> = tools
            .iter()
            .map(|name| serde_json::json!({"tool_name": &**name, "trigger_summary": format!("user request maps to {name}"), "confidence": (self.rng.random_range(0.80..0.97_f64) * 100.0).round() / 100.0}))
            .collect();
        let plan = serde_json::json!({ "tool_plan": entries });
        let at = self.spans[idx].start_ns + self.spans[idx].duration_ns() / 2;
        self.spans[idx].events.push(Event {
            name: k.tool_selection_event.clone(),
            time_ns: at,
            attrs: vec![
                (k.tool_selection_input.clone(), AttrValue::str(input)),
                (
                    k.tool_selection_plan.clone(),
                    AttrValue::Str(Arc::from(plan.to_string())),
                ),
            ],
        });
    }

    /// An MCP tool call: operation, tool and server, call ids, retries, session.
    fn tool_call_attrs(&mut self, o: &Outcome<'_>, set: &mut Vec<(Key, AttrValue)>) {
        let k = &self.world.keys;
        set.push((k.op_name.clone(), self.world.lit("execute_tool")));
        if let Some(t) = o.tool {
            set.push((k.tool_name.clone(), AttrValue::Str(t.name.clone())));
            set.push((
                k.mcp_server_uuid.clone(),
                AttrValue::Str(t.server_uuid.clone()),
            ));
            set.push((k.mcp_tool_uuid.clone(), AttrValue::Str(t.tool_uuid.clone())));
        }
        if let Some(c) = o.call_id {
            let c = AttrValue::str(c);
            set.push((k.mcp_call_id.clone(), c.clone()));
            set.push((k.tool_call_id.clone(), c));
        }
        set.push((
            k.retry_count.clone(),
            AttrValue::Int(i64::from(o.attempts.saturating_sub(1))),
        ));
        set.push((k.retry_policy.clone(), self.world.retry_policy.clone()));
        set.push((k.mcp_method.clone(), self.world.lit("tools/call")));
        set.push((k.mcp_session.clone(), AttrValue::Str(self.mcp_session())));
    }

    fn llm_attrs(
        &mut self,
        node: &Node,
        dur_ms: f64,
        failed: bool,
        set: &mut Vec<(Key, AttrValue)>,
    ) {
        let k = &self.world.keys;
        let i = match self.world.model_weights.sample(self.rng) {
            AttrValue::Int(i) => *i as usize,
            _ => 0,
        };
        let m = &self.world.models[i.min(self.world.models.len().saturating_sub(1))];
        set.push((k.op_name.clone(), self.world.lit("chat")));
        set.push((k.provider.clone(), m.provider.clone()));
        if self.world.semconv_has_gen_ai_system {
            let allowed = self.world.enums.get("gen_ai.system");
            let v = match allowed {
                Some(a) if !a.contains(&m.provider) => crate::plan::closest_allowed(&m.provider, a),
                _ => m.provider.clone(),
            };
            set.push((k.system.clone(), v));
        }
        set.push((k.request_model.clone(), m.model.clone()));
        set.push((k.response_model.clone(), m.model.clone()));
        let user_len = self.input.sample.map_or(0, |s| s.user_input.len());
        let reply_len = self.input.sample.map_or(0, |s| s.reply_len);
        // System prompt and tool schemas dominate the prompt; the reply length follows the decode time.
        let input_tokens = (user_len / 4) as i64 + self.rng.random_range(180..900);
        // ~4 characters per token for the reply text, plus decode time at 20–50 tokens/s.
        let output_tokens = if failed {
            0
        } else {
            let text = reply_len as f64 / 4.0 * self.rng.random_range(0.8..1.2);
            ((text + dur_ms * self.rng.random_range(0.02..0.05)) as i64).clamp(1, 8192)
        };
        set.push((k.input_tokens.clone(), AttrValue::Int(input_tokens)));
        set.push((k.output_tokens.clone(), AttrValue::Int(output_tokens)));
        let finish = self.world.lit(if failed { "error" } else { "stop" });
        set.push((k.finish_reasons.clone(), finish.clone()));
        if self.world.semconv_declares(&k.finish_reason) {
            set.push((k.finish_reason.clone(), finish));
        }
        if self.world.semconv_declares(&k.request_type) {
            set.push((k.request_type.clone(), self.world.lit("chat")));
        }
        set.push((
            k.step_outcome.clone(),
            self.world.lit(if failed { "fail" } else { "success" }),
        ));
        if let Some(t) = &node.tool {
            set.push((k.tool_name.clone(), AttrValue::Str(t.name.clone())));
        }
        if let Some(sample) = self.input.sample.filter(|_| node.capture) {
            set.push((k.input_messages.clone(), sample.input_messages.clone()));
            if !failed {
                set.push((k.output_messages.clone(), sample.output_messages.clone()));
            }
            if let Some((ui, lr)) = &sample.redacted {
                set.push((k.input_redacted.clone(), ui.clone()));
                set.push((k.output_redacted.clone(), lr.clone()));
            }
        }
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
