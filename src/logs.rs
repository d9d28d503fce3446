//! Log records derived from the same generated spans: turn start/end, LLM call
//! completed, tool call completed/failed, retry scheduled, validation errors,
//! policy decisions and blocks, and exceptions. Each record carries the trace id,
//! span id and flags of its span and is timestamped inside it. Pure.

use crate::class::SpanClass;
use crate::model::AttrValue;
use crate::plan::World;
use crate::record::{same_key, Key, LogRecord, Severity, SpanRecord, StatusCode, TraceRecord};
use std::sync::Arc;

/// Attributes copied from the span onto its records (when the span has them).
fn key_attrs(world: &World) -> [Key; 12] {
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
    .map(Key::clone)
}

/// The control plane's attributes a policy record or a block copies, in this order.
const POLICY_ATTRS: [&str; 5] = [
    "policy.decision",
    "policy.engine",
    "policy.rule.id",
    "block.reason",
    "request.outcome",
];

/// Derives log records from traces. Made once per producer: the keys it reads are
/// looked up (and prefixed) once, and one message buffer serves every record.
pub struct Deriver {
    key_attrs: [Key; 12],
    /// Bit `n` is set when a key of `key_attrs` is `n` bytes long: most of a span's
    /// attributes are passed over on their length alone.
    key_lens: u64,
    /// [`POLICY_ATTRS`] with the active prefix.
    policy: [Key; 5],
    request_outcome: Key,
    response_outcome: Key,
    message: String,
}

impl Deriver {
    /// A deriver for the records of `world`'s traces.
    pub fn new(world: &World) -> Self {
        let prefixed = |short: &str| -> Key { Key::from(world.prefix.attr(short).as_str()) };
        let key_attrs = key_attrs(world);
        let key_lens = key_attrs
            .iter()
            .filter(|k| k.len() < 64)
            .fold(0u64, |m, k| m | 1 << k.len());
        Deriver {
            key_attrs,
            key_lens,
            policy: POLICY_ATTRS.map(prefixed),
            request_outcome: prefixed("request.outcome"),
            response_outcome: prefixed("response.outcome"),
            message: String::new(),
        }
    }

    /// The span's values of `key_attrs`, in that order (the first value of a key
    /// set twice, as `SpanRecord::attr` finds it), in one pass over its attributes.
    fn key_attrs_of<'s>(
        &'s self,
        span: &'s SpanRecord,
    ) -> impl Iterator<Item = (&'s Key, &'s AttrValue)> {
        let mut found: [Option<&AttrValue>; 12] = [None; 12];
        for (k, v) in &span.attrs {
            let len = k.len();
            let maybe = len >= 64 || self.key_lens & (1 << len) != 0;
            if let Some(i) = maybe
                .then(|| self.key_attrs.iter().position(|key| same_key(key, k)))
                .flatten()
            {
                found[i] = found[i].or(Some(v));
            }
        }
        self.key_attrs
            .iter()
            .zip(found)
            .filter_map(|(k, v)| Some((k, v?)))
    }

    /// Appends the records of one trace of `world` (the world it was made for) to
    /// `out`, in span order.
    pub fn derive(&mut self, world: &World, trace: &TraceRecord, out: &mut Vec<LogRecord>) {
        let mut e = Emit {
            world,
            d: self,
            trace,
            out,
        };
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
}

/// Appends the records of one trace to `out`, in span order (a [`Deriver`] made
/// for this trace alone; producers keep one).
pub fn derive(world: &World, trace: &TraceRecord, out: &mut Vec<LogRecord>) {
    Deriver::new(world).derive(world, trace, out);
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
    d: &'a mut Deriver,
    trace: &'a TraceRecord,
    out: &'a mut Vec<LogRecord>,
}

impl Emit<'_> {
    /// A record for `span` at `time_ns` (clamped inside the span), its message
    /// written from `body` into the deriver's buffer (one allocation: the record's own).
    fn record(
        &mut self,
        span: &SpanRecord,
        time_ns: u64,
        severity: Severity,
        event: &'static str,
        body: std::fmt::Arguments<'_>,
        extra: impl IntoIterator<Item = (Key, AttrValue)>,
    ) {
        use std::fmt::Write as _;
        // The event's name goes in the record's EventName field only: the
        // `event.name` attribute is deprecated in the conventions.
        let extra = extra.into_iter();
        let mut attrs: Vec<(Key, AttrValue)> = Vec::with_capacity(10 + extra.size_hint().0);
        for (k, v) in self.d.key_attrs_of(span) {
            attrs.push((*k, v.clone()));
        }
        for (k, v) in extra {
            match attrs.iter_mut().find(|(ek, _)| *ek == k) {
                Some(slot) => slot.1 = v,
                None => attrs.push((k, v)),
            }
        }
        let message = &mut self.d.message;
        message.clear();
        let _ = message.write_fmt(body);
        self.out.push(LogRecord {
            time_ns: time_ns.clamp(span.start_ns, span.end_ns),
            severity,
            event_name: event,
            body: Arc::from(message.as_str()),
            attrs,
            trace_id: self.trace.trace_id,
            span_id: span.span_id,
            scope: self.trace.scope,
            service: span.service,
        });
    }

    /// A failed attempt followed by another attempt of the same call: a retry was scheduled.
    fn retry(&mut self, i: usize, s: &SpanRecord) {
        let k = &self.world.keys;
        let err = text(s, "error.type");
        let next = self.trace.spans[i + 1..]
            .iter()
            .find(|n| n.parent_span_id == s.parent_span_id && n.name == s.name);
        if let Some(next) = next {
            let wait_ms = next.start_ns.saturating_sub(s.end_ns) as f64 / 1e6;
            let delay = (k.retry_delay_ms, AttrValue::Double(round3(wait_ms)));
            self.record(
                s,
                s.end_ns,
                Severity::Warn,
                "retry.scheduled",
                format_args!(
                    "Attempt failed with {err}; retrying in {} ms",
                    whole_ms(wait_ms)
                ),
                [delay],
            );
        }
    }

    /// An agent turn: its start and its end with the outcome.
    fn turn(&mut self, s: &SpanRecord) {
        let k = &self.world.keys;
        let failed = s.status == StatusCode::Error;
        let dur_ms = s.duration_ns() as f64 / 1e6;
        let duration = (k.duration_ms, AttrValue::Double(round3(dur_ms)));
        let outcome = text(s, &k.a2a_outcome);
        self.record(
            s,
            s.start_ns,
            Severity::Info,
            "turn.start",
            format_args!("Agent turn started"),
            [],
        );
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
            format_args!(
                "Agent turn completed with outcome {outcome} in {} ms",
                whole_ms(dur_ms)
            ),
            [duration],
        );
    }

    /// An LLM call: model, tokens, or why it failed.
    fn llm_call(&mut self, s: &SpanRecord) {
        let k = &self.world.keys;
        let dur_ms = s.duration_ns() as f64 / 1e6;
        let (provider, model) = (text(s, &k.provider), text(s, &k.request_model));
        let duration = (k.duration_ms, AttrValue::Double(round3(dur_ms)));
        let tokens =
            [&k.input_tokens, &k.output_tokens].map(|key| s.attr(key).map(|v| (*key, v.clone())));
        let extra = std::iter::once(duration).chain(tokens.into_iter().flatten());
        if s.status == StatusCode::Error {
            let err = text(s, "error.type");
            self.record(
                s,
                s.end_ns,
                Severity::Error,
                "llm.call.completed",
                format_args!("LLM call to {provider}/{model} failed: {err}"),
                extra,
            );
        } else {
            let (input, output) = (text(s, &k.input_tokens), text(s, &k.output_tokens));
            self.record(
                s,
                s.end_ns,
                Severity::Info,
                "llm.call.completed",
                format_args!(
                    "LLM call completed: {provider}/{model}, {input} input / {output} output tokens"
                ),
                extra,
            );
        }
    }

    /// An MCP tool call: completed or failed.
    fn tool_call(&mut self, s: &SpanRecord) {
        let k = &self.world.keys;
        let dur_ms = s.duration_ns() as f64 / 1e6;
        let tool = text(s, &k.tool_name);
        let duration = (k.duration_ms, AttrValue::Double(round3(dur_ms)));
        if s.status == StatusCode::Error {
            let err = text(s, "error.type");
            let why = s.status_message.as_deref().unwrap_or("");
            self.record(
                s,
                s.end_ns,
                Severity::Error,
                "tool.call.failed",
                format_args!("Tool call {tool} failed: {err} ({why})"),
                [duration],
            );
        } else {
            self.record(
                s,
                s.end_ns,
                Severity::Info,
                "tool.call.completed",
                format_args!("Tool call {tool} completed in {} ms", whole_ms(dur_ms)),
                [duration],
            );
        }
    }

    /// A policy check: its decision.
    fn policy(&mut self, s: &SpanRecord) {
        let failed = s.status == StatusCode::Error;
        let [decision_key, engine_key, ..] = &self.d.policy;
        let decision = s.attr(decision_key);
        let engine = text(s, engine_key);
        let sev = match decision.and_then(AttrValue::as_str) {
            _ if failed => Severity::Error,
            Some("block") => Severity::Warn,
            _ => Severity::Info,
        };
        let attrs = self.policy_attrs(s);
        let decision = Shown(decision);
        self.record(
            s,
            s.end_ns,
            sev,
            "policy.decision",
            format_args!("Policy decision {decision} (engine {engine})"),
            attrs,
        );
    }

    /// A request or response the control plane blocked.
    fn blocked(&mut self, s: &SpanRecord, class: SpanClass) {
        let request = class == SpanClass::RequestValidation;
        let outcome_key = if request {
            &self.d.request_outcome
        } else {
            &self.d.response_outcome
        };
        if s.attr(outcome_key).and_then(AttrValue::as_str) == Some("blocked") {
            let reason = text(s, &self.d.policy[3]);
            let (event, what) = if request {
                ("request.blocked", "Request")
            } else {
                ("response.blocked", "Response")
            };
            let attrs = self.policy_attrs(s);
            self.record(
                s,
                s.end_ns,
                Severity::Warn,
                event,
                format_args!("{what} blocked: {reason}"),
                attrs,
            );
        }
    }

    /// The span's control-plane attributes ([`POLICY_ATTRS`]) that are set.
    fn policy_attrs(&self, s: &SpanRecord) -> Vec<(Key, AttrValue)> {
        self.d
            .policy
            .iter()
            .filter_map(|key| s.attr(key).map(|v| (*key, v.clone())))
            .collect()
    }

    /// Exceptions and validation errors recorded as span events.
    fn events(&mut self, s: &SpanRecord) {
        let k = &self.world.keys;
        for ev in &s.events {
            let find = |key: &Key| ev.attrs.iter().find(|(k2, _)| k2 == key).map(|(_, v)| v);
            if *ev.name == *k.exception {
                let t = Shown(find(&k.exception_type));
                let m = Shown(find(&k.exception_message));
                self.record(
                    s,
                    ev.time_ns,
                    Severity::Error,
                    "exception",
                    format_args!("{t}: {m}"),
                    ev.attrs.iter().cloned(),
                );
            } else if ev.name.ends_with("validation.error") {
                let what = Values(&ev.attrs);
                self.record(
                    s,
                    ev.time_ns,
                    Severity::Warn,
                    "validation.error",
                    format_args!("Validation error: {what}"),
                    ev.attrs.iter().cloned(),
                );
            }
        }
    }
}

/// Attribute values as text, separated by spaces.
struct Values<'a>(&'a [(Key, AttrValue)]);

impl std::fmt::Display for Values<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (_, v)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            v.fmt(f)?;
        }
        Ok(())
    }
}

/// Milliseconds to the nearest whole one, as `{:.0}` writes them (ties to even),
/// but formatted as an integer: the float formatting cost a quarter of a record.
fn whole_ms(ms: f64) -> u64 {
    ms.round_ties_even() as u64
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::whole_ms;

    #[test]
    fn whole_milliseconds_read_as_the_float_formatting_did() {
        let mut values = vec![0.0, 0.4999, 0.5, 1.5, 2.5, 3.5, 1e6 + 0.5, 12_345.678, 99.5];
        values.extend((0..20_000u64).map(|ns| (ns * 250_037) as f64 / 1e6));
        for ms in values {
            assert_eq!(whole_ms(ms).to_string(), format!("{ms:.0}"), "{ms}");
        }
    }
}
