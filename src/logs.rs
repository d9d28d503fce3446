//! Log records derived from the same generated spans: turn start/end, LLM call
//! completed, tool call completed/failed, retry scheduled, validation errors,
//! policy decisions and blocks, and exceptions. Each record carries the trace id,
//! span id and flags of its span and is timestamped inside it. Pure.

use crate::class::SpanClass;
use crate::model::AttrValue;
use crate::plan::World;
use crate::record::{Key, LogRecord, Severity, SpanRecord, StatusCode, TraceRecord};
use std::sync::Arc;

/// Attributes copied from the span onto its records (when the span has them).
fn key_attrs(world: &World) -> [&Key; 12] {
    let k = &world.keys;
    [
        &k.session_id,
        &k.conversation_id,
        &k.request_id,
        &k.tenant_id,
        &k.tool_name,
        &k.mcp_call_id,
        &k.provider,
        &k.request_model,
        &k.error_type,
        &k.a2a_outcome,
        &k.turn_index,
        &k.agent_target,
    ]
}

/// A span attribute as the text of a message (nothing when unset), written
/// straight into the message: no string of its own.
fn text<'s>(s: &'s SpanRecord, key: &str) -> Shown<'s> {
    Shown(s.attr(key))
}

/// An attribute value as text, or nothing.
struct Shown<'a>(Option<&'a AttrValue>);

impl std::fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(v) => v.fmt(f),
            None => Ok(()),
        }
    }
}

struct Emit<'a> {
    world: &'a World,
    trace: &'a TraceRecord,
    out: &'a mut Vec<LogRecord>,
}

impl Emit<'_> {
    /// A record for `span` at `time_ns` (clamped inside the span).
    fn record(
        &mut self,
        span: &SpanRecord,
        time_ns: u64,
        severity: Severity,
        event: &'static str,
        body: String,
        extra: Vec<(Key, AttrValue)>,
    ) {
        // The event's name goes in the record's EventName field only: the
        // `event.name` attribute is deprecated in the conventions.
        let mut attrs: Vec<(Key, AttrValue)> = Vec::with_capacity(10 + extra.len());
        for k in key_attrs(self.world) {
            if let Some(v) = span.attr(k) {
                attrs.push((k.clone(), v.clone()));
            }
        }
        for (k, v) in extra {
            match attrs.iter_mut().find(|(ek, _)| *ek == k) {
                Some(slot) => slot.1 = v,
                None => attrs.push((k, v)),
            }
        }
        self.out.push(LogRecord {
            time_ns: time_ns.clamp(span.start_ns, span.end_ns),
            severity,
            event_name: event,
            body: Arc::from(body),
            attrs,
            trace_id: self.trace.trace_id,
            span_id: span.span_id,
            scope: self.trace.scope.clone(),
            service: span.service,
        });
    }
}

/// Appends the records of one trace to `out`, in span order.
pub fn derive(world: &World, trace: &TraceRecord, out: &mut Vec<LogRecord>) {
    let mut e = Emit { world, trace, out };
    for (i, s) in trace.spans.iter().enumerate() {
        // The records of each span class (attempts first: they carry their step's class).
        match (s.class.attempt, s.class.class) {
            (true, _) if s.status == StatusCode::Error => e.retry(i, s),
            (true, _) => {}
            (false, SpanClass::Orchestrate) => e.turn(s),
            (false, SpanClass::LlmCall) => e.llm_call(s),
            (false, SpanClass::McpToolExecute) => e.tool_call(s),
            (false, SpanClass::ValidationPolicy) => e.policy(s),
            (false, class @ (SpanClass::RequestValidation | SpanClass::ResponseValidation)) => {
                e.blocked(s, class)
            }
            _ => {}
        }
        e.events(s);
    }
}

/// The records of each span class.
impl Emit<'_> {
    /// A failed attempt followed by another attempt of the same call: a retry was scheduled.
    fn retry(&mut self, i: usize, s: &SpanRecord) {
        let k = &self.world.keys;
        let err = text(s, "error.type");
        let next = self.trace.spans[i + 1..]
            .iter()
            .find(|n| n.parent_span_id == s.parent_span_id && n.name == s.name);
        if let Some(next) = next {
            let wait_ms = next.start_ns.saturating_sub(s.end_ns) as f64 / 1e6;
            self.record(
                s,
                s.end_ns,
                Severity::Warn,
                "retry.scheduled",
                format!("Attempt failed with {err}; retrying in {wait_ms:.0} ms"),
                vec![(k.retry_delay_ms.clone(), AttrValue::Double(round3(wait_ms)))],
            );
        }
    }

    /// An agent turn: its start and its end with the outcome.
    fn turn(&mut self, s: &SpanRecord) {
        let k = &self.world.keys;
        let failed = s.status == StatusCode::Error;
        let dur_ms = s.duration_ns() as f64 / 1e6;
        self.record(
            s,
            s.start_ns,
            Severity::Info,
            "turn.start",
            "Agent turn started".into(),
            vec![],
        );
        let outcome = text(s, &k.a2a_outcome);
        let sev = if failed {
            Severity::Error
        } else {
            Severity::Info
        };
        self.record(
            s,
            s.end_ns,
            sev,
            "turn.end",
            format!("Agent turn completed with outcome {outcome} in {dur_ms:.0} ms"),
            vec![(k.duration_ms.clone(), AttrValue::Double(round3(dur_ms)))],
        );
    }

    /// An LLM call: model, tokens, or why it failed.
    fn llm_call(&mut self, s: &SpanRecord) {
        let k = &self.world.keys;
        let failed = s.status == StatusCode::Error;
        let dur_ms = s.duration_ns() as f64 / 1e6;
        let err = text(s, "error.type");
        let (provider, model) = (text(s, &k.provider), text(s, &k.request_model));
        let (sev, body) = if failed {
            (
                Severity::Error,
                format!("LLM call to {provider}/{model} failed: {err}"),
            )
        } else {
            (
                Severity::Info,
                format!(
                    "LLM call completed: {provider}/{model}, {} input / {} output tokens",
                    text(s, &k.input_tokens),
                    text(s, &k.output_tokens)
                ),
            )
        };
        let mut extra = vec![(k.duration_ms.clone(), AttrValue::Double(round3(dur_ms)))];
        for key in [&k.input_tokens, &k.output_tokens] {
            if let Some(v) = s.attr(key) {
                extra.push((key.clone(), v.clone()));
            }
        }
        self.record(s, s.end_ns, sev, "llm.call.completed", body, extra);
    }

    /// An MCP tool call: completed or failed.
    fn tool_call(&mut self, s: &SpanRecord) {
        let k = &self.world.keys;
        let failed = s.status == StatusCode::Error;
        let dur_ms = s.duration_ns() as f64 / 1e6;
        let err = text(s, "error.type");
        let tool = text(s, &k.tool_name);
        let (sev, event, body) = if failed {
            (
                Severity::Error,
                "tool.call.failed",
                format!(
                    "Tool call {tool} failed: {err} ({})",
                    s.status_message.as_deref().unwrap_or("")
                ),
            )
        } else {
            (
                Severity::Info,
                "tool.call.completed",
                format!("Tool call {tool} completed in {dur_ms:.0} ms"),
            )
        };
        self.record(
            s,
            s.end_ns,
            sev,
            event,
            body,
            vec![(k.duration_ms.clone(), AttrValue::Double(round3(dur_ms)))],
        );
    }

    /// A policy check: its decision.
    fn policy(&mut self, s: &SpanRecord) {
        let world = self.world;
        let failed = s.status == StatusCode::Error;
        let decision = text(s, &world.prefix.attr("policy.decision")).to_string();
        let sev = match decision.as_str() {
            _ if failed => Severity::Error,
            "block" => Severity::Warn,
            _ => Severity::Info,
        };
        self.record(
            s,
            s.end_ns,
            sev,
            "policy.decision",
            format!(
                "Policy decision {decision} (engine {})",
                text(s, &world.prefix.attr("policy.engine"))
            ),
            policy_attrs(world, s),
        );
    }

    /// A request or response the control plane blocked.
    fn blocked(&mut self, s: &SpanRecord, class: SpanClass) {
        let world = self.world;
        let request = class == SpanClass::RequestValidation;
        let outcome_key = if request {
            "request.outcome"
        } else {
            "response.outcome"
        };
        let outcome = text(s, &world.prefix.attr(outcome_key)).to_string();
        if outcome == "blocked" {
            let reason = text(s, &world.prefix.attr("block.reason"));
            let (event, what) = if request {
                ("request.blocked", "Request")
            } else {
                ("response.blocked", "Response")
            };
            self.record(
                s,
                s.end_ns,
                Severity::Warn,
                event,
                format!("{what} blocked: {reason}"),
                policy_attrs(world, s),
            );
        }
    }

    /// Exceptions and validation errors recorded as span events.
    fn events(&mut self, s: &SpanRecord) {
        let k = &self.world.keys;
        for ev in &s.events {
            if *ev.name == *k.exception {
                let t = ev
                    .attrs
                    .iter()
                    .find(|(k2, _)| *k2 == k.exception_type)
                    .map(|(_, v)| v.to_string())
                    .unwrap_or_default();
                let m = ev
                    .attrs
                    .iter()
                    .find(|(k2, _)| *k2 == k.exception_message)
                    .map(|(_, v)| v.to_string())
                    .unwrap_or_default();
                self.record(
                    s,
                    ev.time_ns,
                    Severity::Error,
                    "exception",
                    format!("{t}: {m}"),
                    ev.attrs.clone(),
                );
            } else if ev.name.ends_with("validation.error") {
                let attrs = ev.attrs.clone();
                let what: Vec<String> = attrs.iter().map(|(_, v)| v.to_string()).collect();
                self.record(
                    s,
                    ev.time_ns,
                    Severity::Warn,
                    "validation.error",
                    format!("Validation error: {}", what.join(" ")),
                    attrs,
                );
            }
        }
    }
}

fn policy_attrs(world: &World, s: &SpanRecord) -> Vec<(Key, AttrValue)> {
    [
        "policy.decision",
        "policy.engine",
        "policy.rule.id",
        "block.reason",
        "request.outcome",
    ]
    .iter()
    .filter_map(|short| {
        let key = world.prefix.attr(short);
        s.attr(&key).map(|v| (Arc::from(key.as_str()), v.clone()))
    })
    .collect()
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
