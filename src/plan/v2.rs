//! Compiles a v2 scenario: each turn of each end user becomes its own span tree,
//! one trace per turn, carrying exactly what the turn writes (span plan, events,
//! tool chain, payloads, LLM usage) and the statuses those imply.
//!
//! The tree of a turn is the format's single request lifecycle:
//! `request.validation` → its checks, then `a2a.orchestrate` → planner, the LLM
//! task, the recommendation, one task per tool call, `response.compose`, and
//! `response.validation` → its policy check. A turn's span plan switches parts on
//! and filters their children; without one, the request part always runs, the
//! agent turn when the turn has a `tool_chain`, the response part when it has an
//! `agent_response`.

use super::compile::{class_name, key, Compiler};
use super::*;
use crate::class::SpanClass;
use crate::diag::{Diags, Pos};
use crate::model::config::PayloadContract;
use crate::model::scenario::ScenarioDef;
use crate::model::v2::{V2Duration, V2Enduser, V2Scenario, V2Turn};
use crate::plan::content::sorted_payload_text;

/// The request part's checks, in the format's order.
const REQUEST_CHECKS: &[&str] = &[
    "payload.validation",
    "policy.validation",
    "augmentation.validation",
];

/// The agent turn's steps a span plan can list.
const AGENT_STEPS: &[&str] = &[
    "planner",
    "task.execute",
    "llm.call",
    "tools.recommend",
    "mcp.tool.execute",
    "mcp.tool.execute.attempt",
];

fn owned(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// Duration of a span class a profile leaves out, in ms (the format's default).
const DEFAULT_MS: f64 = 50.0;

/// Event attributes copied onto their span (first event wins), by suffix after the prefix.
const SYNCED: &[&str] = &[
    "request.outcome",
    "response.outcome",
    "step.outcome",
    "validation.result",
    "policy.engine",
    "policy.decision",
    "policy.rule.id",
    "policy.reason",
    "policy.severity",
    "policy.fail_mode",
    "block.reason",
    "block.stage",
    "block.http.status_code",
    "block.http.error_type",
    "request.audit.flag",
    "request.audit.source",
    "error.category",
    "error.stage",
];

impl Compiler<'_> {
    /// A v2 scenario's plan: one planned turn per turn of every end user.
    pub(super) fn v2(
        &self,
        s: &ScenarioDef,
        v: &V2Scenario,
        d: &mut Diags,
    ) -> Option<ScenarioPlan> {
        let tenant = self.tenant_id(s);
        let base = v.base_profile().to_string();
        let mut turns = Vec::new();
        let windows: Vec<&str> = v.schedule.iter().map(|w| w.profile.as_str()).collect();
        for user in &v.endusers {
            for (i, t) in user.turns.iter().enumerate() {
                let profile = |name: &str| {
                    v.latency_profiles
                        .iter()
                        .find(|(n, _)| n == name)
                        .map(|(_, p)| p.as_slice())
                        .unwrap_or(&[])
                };
                let tree = |p: &str, d: &mut Diags| self.v2_turn(s, v, t, profile(p), d);
                let root = tree(&base, d)?;
                // A window whose profile the file lacks changes nothing.
                let by_window = windows
                    .iter()
                    .map(|w| {
                        let known = v.latency_profiles.iter().any(|(n, _)| n == w);
                        tree(if known { w } else { &base }, &mut Diags::new(""))
                    })
                    .collect::<Option<Vec<_>>>()?;
                let mut planned = self.v2_sample(s, user, t, i == 0);
                let part = |root: Node| Part {
                    label: "request",
                    root,
                };
                planned.turn_parts = Some(Arc::new(TurnParts {
                    parts: vec![part(root)],
                    goal: None,
                    by_window: by_window.into_iter().map(|r| vec![part(r)]).collect(),
                }));
                turns.push(planned);
            }
        }
        let first = turns.first()?.turn_parts.clone()?;
        Some(ScenarioPlan {
            name: key(&s.name),
            scope: key(&format!("otelsim.{}", sanitize_scope(&s.name))),
            description: s.description.clone(),
            tenant_id: key(&tenant),
            agent_id: s.context.agent.as_deref().map(key),
            redaction: key(&s.redaction),
            parts: first.parts.clone(),
            turns,
            samples: Vec::new(),
            repeat_count: s.repeat_count.max(1),
            interval_ms: s.interval_ms,
            interval_deviation_ms: s.interval_deviation_ms,
            emit_metrics: s.emit_metrics,
            emit_logs: s.emit_logs,
            goal: None,
            single_trace: false,
            cycle_samples: false,
            // The reader checked every zone, weekday and hour.
            windows: v
                .schedule
                .iter()
                .filter_map(|w| {
                    let zone = crate::tz::Zone::parse(&w.timezone).ok()?;
                    crate::tz::Window::new(zone, &w.weekdays, w.start_hour, w.end_hour).ok()
                })
                .collect(),
            semconv_fill: false,
            instability: None,
            reasoning: None,
            episode: None,
            track_costs: false,
        })
    }

    /// The sample side of a turn: the texts its LLM call and events use, its end user.
    fn v2_sample(
        &self,
        s: &ScenarioDef,
        user: &V2Enduser,
        t: &V2Turn,
        first: bool,
    ) -> PlannedSample {
        let sample = crate::model::config::Sample {
            user_input: t.request_raw.clone().unwrap_or_default(),
            llm_response: t.agent_response.clone().unwrap_or_default(),
            ..Default::default()
        };
        let mut p = PlannedSample::new(&sample, "none", &SampleContent::default(), true, &[]);
        p.new_session = first;
        p.enduser_id = user.pseudo_id.as_deref().map(Arc::from);
        p.scope = Some(key(&format!(
            "otelsim.{}",
            sanitize_scope(&format!("{}.{}", s.name, user.id))
        )));
        p
    }

    /// One turn's tree with durations from `profile`.
    fn v2_turn(
        &self,
        s: &ScenarioDef,
        v: &V2Scenario,
        t: &V2Turn,
        profile: &[(String, V2Duration)],
        d: &mut Diags,
    ) -> Option<Node> {
        let plan = t
            .span_plan
            .clone()
            .unwrap_or_else(|| crate::model::v2::V2SpanPlan {
                // Without a plan every check and step of a part runs.
                cp_request: Some(owned(REQUEST_CHECKS)),
                data_plane: t.has_tool_chain.then(|| owned(AGENT_STEPS)),
                cp_response: t
                    .agent_response
                    .is_some()
                    .then(|| vec!["policy.validation".into()]),
            });
        let lat = |class: &str| {
            profile.iter().find(|(c, _)| c == class).map_or(
                Distribution::Constant(DEFAULT_MS),
                |(_, d)| {
                    if d.deviation > 0.0 {
                        Distribution::Normal {
                            mean: d.mean,
                            stddev: d.deviation,
                        }
                    } else {
                        Distribution::Constant(d.mean)
                    }
                },
            )
        };
        let has = |list: &Option<Vec<String>>, class: &str| {
            list.as_ref().is_some_and(|c| c.iter().any(|x| x == class))
        };
        let p = &self.world.prefix;
        let redaction = AttrValue::str(&s.redaction);
        let redaction_key = self.world.keys.redaction;
        // The control-plane request part.
        let mut request = plan.cp_request.as_ref().map(|_| {
            let mut n = self.v2_node(
                SpanClass::RequestValidation,
                None,
                true,
                lat("request.validation"),
            );
            n.attrs
                .push((key(&p.attr("request.outcome")), lit("allowed")));
            n.attrs
                .push((redaction_key, AttrGen::Literal(redaction.clone())));
            n.attrs.push((
                self.world.keys.agent_target,
                AttrGen::Literal(AttrValue::str(s.context.agent.as_deref().unwrap_or(""))),
            ));
            n
        });
        let mut policy_passes = true;
        if let Some(req) = request.as_mut() {
            if has(&plan.cp_request, "payload.validation") {
                let mut n = self.v2_node(
                    SpanClass::PayloadValidation,
                    Some("validation.payload"),
                    true,
                    lat("payload.validation"),
                );
                n.attrs.push((key(&p.attr("step.outcome")), lit("pass")));
                n.attrs
                    .push((key(&p.attr("validation.result")), lit("valid")));
                n.attrs
                    .push((redaction_key, AttrGen::Literal(redaction.clone())));
                req.children.push(n);
            }
            if has(&plan.cp_request, "policy.validation") {
                let mut n = self.v2_node(
                    SpanClass::PolicyValidation,
                    Some("validation.policy"),
                    true,
                    lat("policy.validation"),
                );
                // The policy passes unless its events decide otherwise (or the request is not allowed).
                let decision = event_value(t, "policy.validation", "policy.decision", p);
                let outcome = event_value(t, "request.validation", "request.outcome", p);
                policy_passes = match decision.as_deref() {
                    Some(dv) => matches!(dv, "allow" | "allow_with_audit"),
                    None => outcome.as_deref().is_none_or(|o| o == "allowed"),
                };
                let (step, dec) = if policy_passes {
                    ("pass", "allow")
                } else {
                    ("block", "block")
                };
                n.attrs.push((key(&p.attr("step.outcome")), lit(step)));
                n.attrs.push((key(&p.attr("policy.decision")), lit(dec)));
                n.attrs
                    .push((key(&p.attr("policy.engine")), lit("default")));
                n.attrs
                    .push((redaction_key, AttrGen::Literal(redaction.clone())));
                req.children.push(n);
            }
            let outcome = event_value(t, "request.validation", "request.outcome", p);
            let augment = has(&plan.cp_request, "augmentation.validation")
                && policy_passes
                && outcome
                    .as_deref()
                    .is_none_or(|o| matches!(o, "allowed" | "blocked" | "error"));
            if augment {
                let mut n = self.v2_node(
                    SpanClass::AugmentationValidation,
                    Some("augmentation.validation"),
                    true,
                    lat("augmentation.validation"),
                );
                n.attrs.push((key(&p.attr("step.outcome")), lit("pass")));
                for (what, action) in [
                    ("conversation_id", "propagated"),
                    ("request_id", "created"),
                    ("enduser_id", "missing"),
                    ("target_agent_id", "attached"),
                ] {
                    n.attrs
                        .push((key(&p.attr(&format!("augment.{what}.action"))), lit(action)));
                }
                n.attrs
                    .push((redaction_key, AttrGen::Literal(redaction.clone())));
                req.children.push(n);
            }
        }
        // The agent turn.
        let mut turn = plan
            .data_plane
            .as_ref()
            .map(|list| self.v2_data_plane(s, v, t, list, &lat));
        // The control-plane response part.
        let response = plan.cp_response.as_ref().map(|list| {
            let mut n = self.v2_node(
                SpanClass::ResponseValidation,
                None,
                true,
                lat("response.validation"),
            );
            n.attrs
                .push((key(&p.attr("response.outcome")), lit("allowed")));
            n.attrs
                .push((redaction_key, AttrGen::Literal(redaction.clone())));
            if list.iter().any(|c| c == "policy.validation") {
                let mut pol = self.v2_node(
                    SpanClass::PolicyValidation,
                    Some("validation.policy"),
                    true,
                    lat("policy.validation"),
                );
                pol.attrs.push((key(&p.attr("step.outcome")), lit("pass")));
                pol.attrs
                    .push((key(&p.attr("policy.decision")), lit("allow")));
                pol.attrs
                    .push((key(&p.attr("policy.engine")), lit("default")));
                pol.attrs
                    .push((redaction_key, AttrGen::Literal(redaction.clone())));
                n.children.push(pol);
            }
            n
        });
        // Events and the statuses they imply, per part.
        let mut cp_error: Option<Key> = None;
        for part in [request.as_mut(), turn.as_mut()].into_iter().flatten() {
            self.v2_events(part, t, true);
        }
        let mut response = response;
        if let Some(r) = response.as_mut() {
            self.v2_events(r, t, false);
        }
        for part in [request.as_ref(), response.as_ref()].into_iter().flatten() {
            if cp_error.is_none() {
                cp_error = first_failure(part);
            }
        }
        // A failed control-plane check fails the agent turn too.
        if let (Some(a2a), Some(et)) = (turn.as_mut(), cp_error) {
            fail(a2a, et);
            a2a.attrs.push((self.world.keys.a2a_outcome, lit("error")));
        }
        // Assemble: response validation under the agent turn (or the request), the turn under the request.
        match (request, turn, response) {
            (Some(mut req), Some(mut a2a), resp) => {
                a2a.children.extend(resp);
                req.children.push(a2a);
                Some(req)
            }
            (Some(mut req), None, resp) => {
                req.children.extend(resp);
                Some(req)
            }
            (None, Some(mut a2a), resp) => {
                a2a.children.extend(resp);
                Some(a2a)
            }
            (None, None, Some(resp)) => Some(resp),
            (None, None, None) => {
                d.error(
                    Pos::default(),
                    "span_plan",
                    format!(
                        "a turn of `{}` emits nothing: its span plan switches every part off",
                        s.name
                    ),
                );
                None
            }
        }
    }

    /// The agent turn of a v2 turn: planner, LLM task, recommendation, tool calls, reply.
    fn v2_data_plane(
        &self,
        s: &ScenarioDef,
        v: &V2Scenario,
        t: &V2Turn,
        list: &[String],
        lat: &dyn Fn(&str) -> Distribution,
    ) -> Node {
        let p = &self.world.prefix;
        let k = &self.world.keys;
        let listed = |c: &str| list.iter().any(|x| x == c);
        let wrap = listed("task.execute");
        let mut a2a = self.v2_node(SpanClass::Orchestrate, None, false, lat("a2a.orchestrate"));
        a2a.attrs
            .push((k.redaction, AttrGen::Literal(AttrValue::str(&s.redaction))));
        if let Some((_, attrs)) = v
            .profile_conditions
            .iter()
            .find(|(prof, _)| v.latency_profiles.iter().any(|(n, _)| n == prof))
        {
            for (name, value) in attrs {
                a2a.attrs
                    .push((key(&v2_key(p, name)), AttrGen::Literal(value.clone())));
            }
        }
        let task = |inner: Node, task_type: &str| -> Node {
            if !wrap {
                return inner;
            }
            let mut t = self.v2_node(SpanClass::TaskExecute, None, false, lat("task.execute"));
            t.task_type = Some(key(task_type));
            t.children.push(inner);
            t
        };
        if listed("planner") {
            a2a.children
                .push(self.v2_node(SpanClass::Planner, None, false, lat("planner")));
        }
        let chain: Vec<ToolRef> = t
            .tool_chain
            .iter()
            .filter_map(|st| {
                let srv = self
                    .cfg
                    .mcp_server(st.server.as_deref().unwrap_or("phone"))?;
                self.tool_ref(srv, &st.tool)
            })
            .collect();
        if listed("llm.call") {
            let mut llm = self.v2_node(SpanClass::LlmCall, None, false, lat("llm.call"));
            for (name, value) in &t.llm_attrs {
                let name = v2_key(p, name);
                llm.attrs
                    .push((key(&name), AttrGen::Literal(value.clone())));
            }
            let explicit_turns = t
                .llm_attrs
                .iter()
                .any(|(n, _)| n.ends_with("llm.turn.count"));
            if !explicit_turns {
                let messages = usize::from(t.request_raw.is_some());
                let count = (t.turn_index as usize).max(messages) as i64;
                llm.attrs.push((
                    key(&p.attr("llm.turn.count")),
                    AttrGen::Literal(AttrValue::Int(count)),
                ));
            }
            llm.attrs.push((
                key(&p.attr("llm.tool.request.count")),
                AttrGen::Literal(AttrValue::Int(t.tool_chain.len() as i64)),
            ));
            for (msg_key, explicit) in [
                (&k.input_messages, &t.messages.0),
                (&k.output_messages, &t.messages.1),
            ] {
                if let Some(m) = explicit {
                    llm.attrs
                        .push((*msg_key, AttrGen::Literal(AttrValue::str(m))));
                }
            }
            llm.capture = t.capture;
            a2a.children.push(task(llm, "llm_call"));
        }
        if listed("tools.recommend") {
            let mut tr = self.v2_node(
                SpanClass::ToolsRecommend,
                None,
                false,
                lat("tools.recommend"),
            );
            if let Some(first) = chain.first() {
                tr.tool = Some(first.clone());
                let names: Vec<&str> = chain.iter().map(|c| &*c.name).collect();
                tr.attrs.push((
                    k.tool_name,
                    AttrGen::Literal(AttrValue::str(&names.join(","))),
                ));
                tr.attrs.push((
                    k.tools_selected,
                    AttrGen::Literal(AttrValue::Int(
                        (chain.len() as i64).min(first.server_tool_count),
                    )),
                ));
                tr.attrs.push((
                    k.mcp_server_uuid,
                    AttrGen::Literal(AttrValue::Str(first.server_uuid.into())),
                ));
            }
            a2a.children.push(task(tr, "tool_recommendation"));
        }
        if listed("mcp.tool.execute") {
            for (i, tool) in chain.iter().enumerate() {
                let mut mcp = self.v2_node(
                    SpanClass::McpToolExecute,
                    None,
                    false,
                    Distribution::Constant(0.5),
                );
                mcp.tool = Some(tool.clone());
                mcp.attrs.push((
                    key(&p.attr("llm.tool.execution.count")),
                    AttrGen::Literal(AttrValue::Int(i as i64 + 1)),
                ));
                let attempt_latency = lat("mcp.tool.execute");
                mcp.retry = Some(Retry {
                    plan: RetryPlan::Scripted(vec![ScriptedAttempt {
                        success: true,
                        error_type: key("unavailable"),
                        latency: attempt_latency.clone(),
                    }]),
                    attempt_name: key(&format!("{}.attempt", mcp.name)),
                    attempt_class: key("mcp.tool.execute.attempt"),
                    attempt_latency,
                    backoff_base_ms: 120.0,
                    backoff_multiplier: 2.0,
                    backoff_jitter: 0.0,
                });
                let contract = self.cfg.tool_payloads.get(&*tool.name);
                let render = |written: &[(String, crate::yaml::Node)],
                              c: Option<&PayloadContract>| {
                    let own = written
                        .iter()
                        .find(|(n, _)| *n == *tool.name)
                        .map(|(_, n)| n);
                    let sample = c.map(|c| c.sample.as_slice()).unwrap_or(&[]);
                    (own.is_some() || !sample.is_empty()).then(|| sorted_payload_text(sample, own))
                };
                mcp.tool_payload = Some(ToolPayload {
                    arguments: render(&t.arguments, contract.and_then(|c| c.arguments.as_ref())),
                    result: render(&t.results, contract.and_then(|c| c.result.as_ref())),
                    result_is_sample: !t.results.iter().any(|(n, _)| *n == *tool.name),
                });
                a2a.children.push(task(mcp, "tool_execution"));
            }
        }
        let mut compose = self.v2_node(
            SpanClass::ResponseCompose,
            None,
            false,
            lat("response.compose"),
        );
        compose.attrs.push((k.response_format, lit("a2a_json")));
        a2a.children.push(compose);
        a2a
    }

    /// A v2 node of `class` (named `name` when the format names it differently), whose
    /// status comes only from what the file writes.
    fn v2_node(
        &self,
        class: SpanClass,
        name: Option<&str>,
        control_plane: bool,
        latency: Distribution,
    ) -> Node {
        let mut n = self.base_node(class_name(class), control_plane);
        if let Some(name) = name {
            n.name = key(&self.world.prefix.attr(name));
        }
        n.latency = latency;
        n.error.rate = 0.0;
        n.error.propagate = false;
        n.verbatim = true;
        n
    }

    /// Puts the turn's events on the spans of their target class in `root`'s tree
    /// (`request_side`: a `policy.validation` event targets the request's check), copies
    /// their outcome attributes onto the span, and fails a span they say failed.
    fn v2_events(&self, root: &mut Node, t: &V2Turn, request_side: bool) {
        let p = &self.world.prefix;
        let class = v2_class(root);
        let target_here = |e: &&crate::model::v2::V2Event| {
            e.target == class
                && (e.target != "policy.validation" || request_side)
                && !matches!(
                    e.target.as_str(),
                    "a2a.orchestrate"
                        | "planner"
                        | "task.execute"
                        | "llm.call"
                        | "response.compose"
                )
        };
        let events: Vec<&crate::model::v2::V2Event> = t.events.iter().filter(target_here).collect();
        let mut exception = false;
        let mut error_type: Option<String> = None;
        // Keys an earlier event already set: the first event that says a value wins.
        let mut synced: Vec<Key> = Vec::new();
        for e in &events {
            let attrs: Vec<(Key, AttrValue)> = e
                .attrs
                .iter()
                .map(|(k, v)| (key(&v2_key(p, k)), v.clone()))
                .collect();
            for (k, v) in &attrs {
                let short = p.class_of(k);
                // An event's outcome attributes replace the span's defaults.
                if SYNCED.contains(&short) && !synced.contains(k) {
                    root.attrs.retain(|(rk, _)| rk != k);
                    root.attrs.push((*k, AttrGen::Literal(v.clone())));
                    synced.push(*k);
                }
                if (&**k == "error.type" || short == "error.type") && error_type.is_none() {
                    error_type = Some(v.to_string());
                }
                exception |= matches!(&**k, "exception.type" | "exception.message");
            }
            root.events.push(EventPlan {
                name: key(&e.name),
                attrs,
                sampled: Vec::new(),
                probability: 1.0,
            });
        }
        // The span fails when its outcome says so, or an event records an exception.
        let said = |suffix: &str| {
            root.attrs.iter().find_map(|(k, g)| match g {
                AttrGen::Literal(v) if p.class_of(k) == suffix => Some(v.to_string()),
                _ => None,
            })
        };
        let failed = exception
            || matches!(said("request.outcome").as_deref(), Some("error"))
            || matches!(said("response.outcome").as_deref(), Some("error"))
            || matches!(said("step.outcome").as_deref(), Some("fail"))
            || matches!(said("validation.result").as_deref(), Some("invalid"));
        if failed {
            let et = error_type.unwrap_or_else(|| "unavailable".to_string());
            fail(root, key(&et));
        }
        for c in &mut root.children {
            self.v2_events(c, t, request_side);
        }
    }
}

/// Fails `n` on every instance with `error_type` (its file writes any exception event
/// itself, so the node stays verbatim).
/// event says why, so the generator records none.
fn fail(n: &mut Node, error_type: Key) {
    n.error.rate = 1.0;
    n.error.types = Categorical::uniform(vec![AttrValue::Str(error_type.into())]).expect("one");
    n.error.exception = None;
}

/// The first failure in a tree, by its `error.type`.
fn first_failure(n: &Node) -> Option<Key> {
    if n.error.rate >= 1.0 {
        if let AttrValue::Str(t) = n.error.types.values.first()? {
            return Some(Key::from(t));
        }
    }
    n.children.iter().find_map(first_failure)
}

/// The class a v2 file names a node by.
fn v2_class(n: &Node) -> &str {
    match n.class.class {
        SpanClass::PayloadValidation => "payload.validation",
        SpanClass::PolicyValidation => "policy.validation",
        SpanClass::AugmentationValidation => "augmentation.validation",
        _ if n.class.attempt => "mcp.tool.execute.attempt",
        _ => &n.class_name,
    }
}

/// The value an event of the turn aimed at `target` gives `suffix` (prefix-free).
fn event_value(t: &V2Turn, target: &str, suffix: &str, p: &Prefixer) -> Option<String> {
    t.events
        .iter()
        .filter(|e| e.target == target)
        .flat_map(|e| &e.attrs)
        .find(|(k, _)| p.class_of(&v2_key(p, k)) == suffix)
        .map(|(_, v)| v.to_string())
}

/// A key as a v2 file writes it, with the active prefix: the format spells vendor keys
/// `vendor.` or `gentoro.` whatever the semconv's namespace.
fn v2_key(p: &Prefixer, k: &str) -> String {
    match k.strip_prefix("gentoro.") {
        Some(rest) => p.attr(rest),
        None => p.rewrite(k),
    }
}

fn lit(s: &str) -> AttrGen {
    AttrGen::Literal(AttrValue::str(s))
}
