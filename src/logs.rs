//! Log records derived from the same generated spans: turn start/end, LLM call
//! completed, tool call completed/failed, retry scheduled, validation errors,
//! policy decisions and blocks, and exceptions. Each record carries the trace id,
//! span id and flags of its span and is timestamped inside it. Pure.

use crate::class::SpanClass;
use crate::model::AttrValue;
use crate::plan::World;
use crate::record::{
    same_key, Key, LogRecord, Pair, Severity, SpanRecord, StatusCode, TraceRecord,
};
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

/// Keys looked up together in every span, in one pass over its attributes. Each
/// attribute's key is hashed into a table that names the wanted key with that
/// hash, if any: most attributes are passed over after one read of the table
/// (a filter on the key's length alone let half of them through to a comparison
/// with every wanted key), and a hit is confirmed by comparing the texts.
struct Lookup<const N: usize> {
    keys: [Key; N],
    /// By [`slot_hash`]: the index in `keys` of the one key with that hash,
    /// [`NONE`], or [`MANY`] (compared with every key).
    slots: [u8; 256],
}

const NONE: u8 = u8::MAX;
const MANY: u8 = u8::MAX - 1;

/// A key's entry in [`Lookup::slots`], from its length and last eight bytes (where
/// keys of one family, `gen_ai.`, `vendor.`, differ), so that equal texts agree
/// whatever their allocation.
#[inline]
fn slot_hash(key: &str) -> usize {
    (crate::record::key_hash(key) >> 56) as usize
}

impl<const N: usize> Lookup<N> {
    fn new(keys: [Key; N]) -> Self {
        assert!(N < usize::from(MANY));
        let mut slots = [NONE; 256];
        for (i, k) in keys.iter().enumerate() {
            let s = &mut slots[slot_hash(k)];
            *s = if *s == NONE { i as u8 } else { MANY };
        }
        Lookup { keys, slots }
    }

    /// The values of the keys in the pairs of `parts`, searched in that order (the
    /// first value of a key set twice).
    #[inline]
    fn values<'s>(&self, parts: [&'s [Pair]; 3]) -> [Option<&'s AttrValue>; N] {
        let mut found = [None; N];
        for part in parts {
            for (k, v) in part {
                let i = match self.slots[slot_hash(k)] {
                    NONE => continue,
                    MANY => match self.position(k) {
                        Some(i) => i,
                        None => continue,
                    },
                    i if same_key(&self.keys[usize::from(i)], k) => usize::from(i),
                    _ => continue,
                };
                found[i] = found[i].or(Some(v));
            }
        }
        found
    }

    /// The slot of `key` compared with every key: for hashes several keys share
    /// (out of line, so that the loop over the pairs stays short).
    #[cold]
    #[inline(never)]
    fn position(&self, key: &str) -> Option<usize> {
        self.keys.iter().position(|k| same_key(k, key))
    }

    /// The span's values of the keys (a span holds each key once, so the order
    /// of its parts does not matter).
    #[inline]
    fn attrs_of<'s>(&self, span: &'s SpanRecord) -> [Option<&'s AttrValue>; N] {
        self.values(span.attrs.slices())
    }
}

/// Derives log records from traces. Made once per producer: the keys it reads are
/// looked up (and prefixed) once, and one message buffer serves every record.
pub struct Deriver {
    key_attrs: Lookup<12>,
    /// [`POLICY_ATTRS`] with the active prefix.
    policy: Lookup<5>,
    request_outcome: Key,
    response_outcome: Key,
    /// The extra keys of the records of span classes (durations, tokens, retry
    /// delay, [`POLICY_ATTRS`]) differ from each other and from every key
    /// attribute, so those records append them without a search.
    fixed_apart: bool,
    message: String,
}

/// Where a record's extra attributes come from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Extra {
    /// Keys the deriver names itself (see [`Deriver::fixed_apart`]).
    Fixed,
    /// A span event's own attributes, which may repeat a key attribute.
    Event,
}

impl Deriver {
    /// A deriver for the records of `world`'s traces.
    pub fn new(world: &World) -> Self {
        let prefixed = |short: &str| -> Key { Key::from(world.prefix.attr(short).as_str()) };
        let k = &world.keys;
        let key_attrs = key_attrs(world);
        let policy = POLICY_ATTRS.map(prefixed);
        let fixed = [
            k.duration_ms,
            k.retry_delay_ms,
            k.input_tokens,
            k.output_tokens,
        ];
        let named: Vec<&Key> = key_attrs.iter().chain(&policy).chain(&fixed).collect();
        let fixed_apart = named
            .iter()
            .enumerate()
            .all(|(i, a)| named[i + 1..].iter().all(|b| !same_key(a, b)));
        Deriver {
            key_attrs: Lookup::new(key_attrs),
            policy: Lookup::new(policy),
            request_outcome: prefixed("request.outcome"),
            response_outcome: prefixed("response.outcome"),
            fixed_apart,
            message: String::new(),
        }
    }

    /// The span's values of `key_attrs`, in that order.
    fn key_attrs_of<'s>(&self, span: &'s SpanRecord) -> Found<'s> {
        self.key_attrs.attrs_of(span)
    }

    /// Appends the records of one trace of `world` (the world it was made for) to
    /// `out`, in span order.
    pub fn derive(&mut self, world: &World, trace: &TraceRecord, out: &mut Vec<LogRecord>) {
        let mut e = Emit {
            world,
            d: self,
            trace,
            out,
            found: None,
        };
        for (i, s) in trace.spans.iter().enumerate() {
            e.found = None;
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

/// A span's values of [`key_attrs`], by slot.
type Found<'s> = [Option<&'s AttrValue>; 12];
/// The first slots of `Found`: the trace's shared attributes, in their order.
const SHARED: usize = 4;
// Slots of `Found` the messages read.
const TOOL_NAME: usize = 4;
const PROVIDER: usize = 6;
const REQUEST_MODEL: usize = 7;
const ERROR_TYPE: usize = 8;
const A2A_OUTCOME: usize = 9;

/// A record's message, written piece by piece into the deriver's buffer:
/// through `format_args!`, the formatting machinery cost half of a record.
struct Message<'m>(&'m mut String);

impl Message<'_> {
    /// Appends words.
    fn s(self, text: &str) -> Self {
        self.0.push_str(text);
        self
    }

    /// Appends a value as text (nothing when unset).
    fn v(self, v: Option<&AttrValue>) -> Self {
        match v {
            Some(AttrValue::Str(t)) => self.0.push_str(t),
            Some(AttrValue::Int(i)) => self.0.push_str(itoa::Buffer::new().format(*i)),
            Some(other) => {
                use std::fmt::Write as _;
                let _ = write!(self.0, "{other}");
            }
            None => {}
        }
        self
    }

    /// Appends a whole number.
    fn n(self, n: u64) -> Self {
        self.0.push_str(itoa::Buffer::new().format(n));
        self
    }
}

struct Emit<'a, 't> {
    world: &'a World,
    d: &'a mut Deriver,
    trace: &'t TraceRecord,
    out: &'a mut Vec<LogRecord>,
    /// The current span's key attributes, once looked up (a span with a record of
    /// its class and events needs them twice).
    found: Option<Found<'t>>,
}

impl<'t> Emit<'_, 't> {
    /// The key attributes of `span`, the current span.
    fn found(&mut self, span: &'t SpanRecord) -> Found<'t> {
        *self.found.get_or_insert_with(|| self.d.key_attrs_of(span))
    }

    /// The message of the next record, empty.
    fn message(&mut self) -> Message<'_> {
        self.d.message.clear();
        Message(&mut self.d.message)
    }

    /// A record for `span` at `time_ns` (clamped inside the span) carrying the
    /// span's key attributes (`found`) and `extra` (keys the deriver names), with
    /// the message last written.
    fn record(
        &mut self,
        span: &SpanRecord,
        found: &Found<'_>,
        time_ns: u64,
        severity: Severity,
        event: &'static str,
        extra: impl IntoIterator<Item = (Key, AttrValue)>,
    ) {
        self.record_with(span, found, (time_ns, severity, event), Extra::Fixed, extra);
    }

    /// [`Emit::record`] with `(time_ns, severity, event)` together, and `extra`
    /// coming `from` the deriver or from a span event.
    fn record_with(
        &mut self,
        span: &SpanRecord,
        found: &Found<'_>,
        (time_ns, severity, event): (u64, Severity, &'static str),
        from: Extra,
        extra: impl IntoIterator<Item = (Key, AttrValue)>,
    ) {
        let search = from == Extra::Event || !self.d.fixed_apart;
        // The event's name goes in the record's EventName field only: the
        // `event.name` attribute is deprecated in the conventions.
        let extra = extra.into_iter();
        let keys = &self.d.key_attrs.keys;
        // The span's values of the first key attributes are usually its trace's
        // shared pairs, in the same order: the record holds those instead of copies.
        let shared = span.attrs.shared().filter(|s| {
            let pairs = s.pairs();
            pairs.len() == SHARED
                && (0..SHARED).all(|i| found[i].is_some_and(|v| std::ptr::eq(v, &pairs[i].1)))
        });
        let own = if shared.is_some() { SHARED } else { 0 };
        let mut attrs: Vec<(Key, AttrValue)> = Vec::with_capacity(10 + extra.size_hint().0);
        for (k, v) in keys[own..].iter().zip(&found[own..]) {
            if let Some(v) = v {
                attrs.push((*k, (*v).clone()));
            }
        }
        let mut shared = shared.cloned();
        for (k, v) in extra {
            if !search {
                attrs.push((k, v));
                continue;
            }
            // An event's attribute replaces a key attribute of the same name.
            if let Some(s) = shared.take_if(|_| keys[..SHARED].iter().any(|sk| same_key(sk, &k))) {
                attrs.splice(0..0, s.pairs().iter().cloned());
            }
            match attrs.iter_mut().find(|(ek, _)| same_key(ek, &k)) {
                Some(slot) => slot.1 = v,
                None => attrs.push((k, v)),
            }
        }
        self.out.push(LogRecord {
            time_ns: time_ns.clamp(span.start_ns, span.end_ns),
            severity,
            event_name: event,
            body: Arc::from(self.d.message.as_str()),
            shared,
            attrs,
            trace_id: self.trace.trace_id,
            span_id: span.span_id,
            scope: self.trace.scope,
            service: span.service,
        });
    }

    /// A failed attempt followed by another attempt of the same call: a retry was scheduled.
    fn retry(&mut self, i: usize, s: &'t SpanRecord) {
        let k = &self.world.keys;
        let next = self.trace.spans[i + 1..]
            .iter()
            .find(|n| n.parent_span_id == s.parent_span_id && n.name == s.name);
        if let Some(next) = next {
            let found = self.found(s);
            let wait_ms = next.start_ns.saturating_sub(s.end_ns) as f64 / 1e6;
            let delay = (k.retry_delay_ms, AttrValue::Double(round3(wait_ms)));
            self.message()
                .s("Attempt failed with ")
                .v(found[ERROR_TYPE])
                .s("; retrying in ")
                .n(whole_ms(wait_ms))
                .s(" ms");
            self.record(
                s,
                &found,
                s.end_ns,
                Severity::Warn,
                "retry.scheduled",
                [delay],
            );
        }
    }

    /// An agent turn: its start and its end with the outcome.
    fn turn(&mut self, s: &'t SpanRecord) {
        let k = &self.world.keys;
        let found = self.found(s);
        let failed = s.status == StatusCode::Error;
        let dur_ms = s.duration_ns() as f64 / 1e6;
        let duration = (k.duration_ms, AttrValue::Double(round3(dur_ms)));
        self.message().s("Agent turn started");
        self.record(s, &found, s.start_ns, Severity::Info, "turn.start", []);
        let sev = if failed {
            Severity::Error
        } else {
            Severity::Info
        };
        self.message()
            .s("Agent turn completed with outcome ")
            .v(found[A2A_OUTCOME])
            .s(" in ")
            .n(whole_ms(dur_ms))
            .s(" ms");
        self.record(s, &found, s.end_ns, sev, "turn.end", [duration]);
    }

    /// An LLM call: model, tokens, or why it failed.
    fn llm_call(&mut self, s: &'t SpanRecord) {
        let k = &self.world.keys;
        let found = self.found(s);
        let dur_ms = s.duration_ns() as f64 / 1e6;
        let duration = (k.duration_ms, AttrValue::Double(round3(dur_ms)));
        let tokens = [&k.input_tokens, &k.output_tokens].map(|key| s.attr(key).map(|v| (*key, v)));
        let m = self
            .message()
            .s("LLM call ")
            .s(if s.status == StatusCode::Error {
                "to "
            } else {
                "completed: "
            })
            .v(found[PROVIDER])
            .s("/")
            .v(found[REQUEST_MODEL]);
        let sev = if s.status == StatusCode::Error {
            m.s(" failed: ").v(found[ERROR_TYPE]);
            Severity::Error
        } else {
            let [input, output] = tokens.map(|t| t.map(|(_, v)| v));
            m.s(", ")
                .v(input)
                .s(" input / ")
                .v(output)
                .s(" output tokens");
            Severity::Info
        };
        let extra = std::iter::once(duration)
            .chain(tokens.into_iter().flatten().map(|(k, v)| (k, v.clone())));
        self.record(s, &found, s.end_ns, sev, "llm.call.completed", extra);
    }

    /// An MCP tool call: completed or failed.
    fn tool_call(&mut self, s: &'t SpanRecord) {
        let k = &self.world.keys;
        let found = self.found(s);
        let dur_ms = s.duration_ns() as f64 / 1e6;
        let duration = (k.duration_ms, AttrValue::Double(round3(dur_ms)));
        let m = self.message().s("Tool call ").v(found[TOOL_NAME]);
        if s.status == StatusCode::Error {
            let why = s.status_message.as_deref().unwrap_or("");
            m.s(" failed: ").v(found[ERROR_TYPE]).s(" (").s(why).s(")");
            self.record(
                s,
                &found,
                s.end_ns,
                Severity::Error,
                "tool.call.failed",
                [duration],
            );
        } else {
            m.s(" completed in ").n(whole_ms(dur_ms)).s(" ms");
            let event = "tool.call.completed";
            self.record(s, &found, s.end_ns, Severity::Info, event, [duration]);
        }
    }

    /// A policy check: its decision.
    fn policy(&mut self, s: &'t SpanRecord) {
        let found = self.found(s);
        let failed = s.status == StatusCode::Error;
        let values = self.d.policy.attrs_of(s);
        let [decision, engine, ..] = values;
        let sev = match decision.and_then(AttrValue::as_str) {
            _ if failed => Severity::Error,
            Some("block") => Severity::Warn,
            _ => Severity::Info,
        };
        self.message()
            .s("Policy decision ")
            .v(decision)
            .s(" (engine ")
            .v(engine)
            .s(")");
        let attrs = self.policy_attrs(values);
        self.record(s, &found, s.end_ns, sev, "policy.decision", attrs);
    }

    /// A request or response the control plane blocked.
    fn blocked(&mut self, s: &'t SpanRecord, class: SpanClass) {
        let request = class == SpanClass::RequestValidation;
        let outcome_key = if request {
            &self.d.request_outcome
        } else {
            &self.d.response_outcome
        };
        if s.attr(outcome_key).and_then(AttrValue::as_str) == Some("blocked") {
            let found = self.found(s);
            let values = self.d.policy.attrs_of(s);
            let reason = values[3];
            let (event, what) = if request {
                ("request.blocked", "Request")
            } else {
                ("response.blocked", "Response")
            };
            self.message().s(what).s(" blocked: ").v(reason);
            let attrs = self.policy_attrs(values);
            self.record(s, &found, s.end_ns, Severity::Warn, event, attrs);
        }
    }

    /// The span's control-plane attributes ([`POLICY_ATTRS`]) that are set, from
    /// their `values`.
    fn policy_attrs<'v>(
        &self,
        values: [Option<&'v AttrValue>; 5],
    ) -> impl Iterator<Item = (Key, AttrValue)> + 'v {
        let keys = self.d.policy.keys;
        keys.into_iter()
            .zip(values)
            .filter_map(|(k, v)| Some((k, v?.clone())))
    }

    /// Exceptions and validation errors recorded as span events.
    fn events(&mut self, s: &'t SpanRecord) {
        let k = &self.world.keys;
        if s.events.is_empty() {
            return;
        }
        let found = self.found(s);
        for ev in &s.events {
            let find = |key: &Key| ev.attrs.iter().find(|(k2, _)| k2 == key).map(|(_, v)| v);
            if *ev.name == *k.exception {
                let (t, m) = (find(&k.exception_type), find(&k.exception_message));
                self.message().v(t).s(": ").v(m);
                let attrs = ev.attrs.iter().cloned();
                let what = (ev.time_ns, Severity::Error, "exception");
                self.record_with(s, &found, what, Extra::Event, attrs);
            } else if ev.name.ends_with("validation.error") {
                let mut m = self.message().s("Validation error: ");
                for (i, (_, v)) in ev.attrs.iter().enumerate() {
                    m = m.s(if i > 0 { " " } else { "" }).v(Some(v));
                }
                let attrs = ev.attrs.iter().cloned();
                let what = (ev.time_ns, Severity::Warn, "validation.error");
                self.record_with(s, &found, what, Extra::Event, attrs);
            }
        }
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
    use super::{whole_ms, Lookup};
    use crate::model::AttrValue;
    use crate::record::{Key, Pair};

    #[test]
    fn lookups_find_the_first_value_of_each_key_as_a_plain_search_does() {
        // Keys of one family and of every length around the eight-byte tail, asked
        // with other allocations of the same texts; `gen_ai.k10` and `gen_ai.k67`
        // share a hash entry.
        let texts: Vec<String> = (1..=12)
            .map(|n| format!("vendor.{}", "x".repeat(n)))
            .chain(["a", "ab", "gen_ai.k10", "gen_ai.k67", "error.type"].map(String::from))
            .collect();
        let wanted: [Key; 6] = [0, 3, 7, 14, 15, 16].map(|i| Key::from(texts[i].as_str()));
        let lookup = Lookup::new(wanted);
        let pair = |i: usize, v: i64| -> Pair {
            let text: &'static str = texts[i].clone().leak();
            (Key::from_static(text), AttrValue::Int(v))
        };
        let pairs: Vec<Pair> = (0..texts.len()).map(|i| pair(i, i as i64)).collect();
        let again = [pair(3, -1), pair(15, -2)];
        for parts in [
            [&pairs[..], &[][..], &[][..]],
            [&pairs[..5], &again[..], &pairs[5..]],
            [&again[..], &[][..], &pairs[..]],
            [&pairs[13..], &[][..], &[][..]],
            [&[][..], &[][..], &[][..]],
        ] {
            let want = wanted.map(|k| {
                parts
                    .iter()
                    .flat_map(|p| p.iter())
                    .find(|(pk, _)| pk.as_str() == k.as_str())
                    .map(|(_, v)| v)
            });
            assert_eq!(lookup.values(parts), want);
        }
    }

    #[test]
    fn records_appending_the_fixed_keys_unsearched_equal_those_that_search() {
        use super::Deriver;
        use rand::SeedableRng;
        let opts = crate::plan::WorldOptions {
            vendor: "vendor".into(),
            ..Default::default()
        };
        let prep = crate::run::prepare(&Default::default(), &opts).expect("bundled files");
        let world = &prep.world;
        let mut fast = Deriver::new(world);
        assert!(
            fast.fixed_apart,
            "the bundled conventions keep the fixed keys apart"
        );
        let mut searching = Deriver::new(world);
        searching.fixed_apart = false;
        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(7);
        let (mut records, mut kinds) = (0, std::collections::BTreeSet::new());
        for (name, plan) in &prep.plans {
            for i in 0..20 {
                let at = 1_800_000_000_000_000_000 + i * 1_000_000_000;
                for t in crate::run::generate_iteration(world, plan, at, i, &mut rng) {
                    let (mut a, mut b) = (Vec::new(), Vec::new());
                    fast.derive(world, &t, &mut a);
                    searching.derive(world, &t, &mut b);
                    assert!(a == b, "scenario {name}");
                    records += a.len();
                    kinds.extend(a.iter().map(|r| r.event_name));
                }
            }
        }
        // Every kind of record with fixed keys came up, so each path was compared.
        for kind in [
            "turn.end",
            "llm.call.completed",
            "tool.call.completed",
            "retry.scheduled",
        ] {
            assert!(kinds.contains(kind), "{kind} in {kinds:?}");
        }
        assert!(records > 1000, "{records}");
    }

    #[test]
    fn whole_milliseconds_read_as_the_float_formatting_did() {
        let mut values = vec![0.0, 0.4999, 0.5, 1.5, 2.5, 3.5, 1e6 + 0.5, 12_345.678, 99.5];
        values.extend((0..20_000u64).map(|ns| (ns * 250_037) as f64 / 1e6));
        for ms in values {
            assert_eq!(whole_ms(ms).to_string(), format!("{ms:.0}"), "{ms}");
        }
    }
}
