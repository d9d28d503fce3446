//! Sessions as the session store sees them (seed 001's model): a session holds
//! timesteps (logical turns), each with its events (AI/LLM, environment,
//! runtime) and its messages. They are regrouped from the very spans every other
//! output gets, so `session-json`, `duckdb` and OTLP agree by construction:
//!
//! - a session is every span with the same `gen_ai.conversation.id`;
//! - a span's timestep is the `<p>.turn.index` of the span or its nearest
//!   ancestor that has one (an episode's timestep span, an agent turn); spans of a
//!   trace without one (a control-plane check) take the turn of their request
//!   (`<p>.request.id`), else 1;
//! - every span is an event, except the structure spans of an episode
//!   (`episode`, `episode.timestep`): `llm.call` is an AI event, `environment.step`
//!   an environment event, the rest runtime events;
//! - messages come from an environment step (the agent's `action`, the
//!   environment's `observation`) and an agent turn (the user's `input.value`,
//!   the agent's `output.value`).
//!
//! A producer's picks reach its sink one after another, so a session is complete
//! once later ones arrive; [`Assembler`] keeps the last [`OPEN_SESSIONS`] open
//! (realtime mode releases spans as they end, so picks may overlap a little) and
//! hands the rest out, which bounds its memory whatever the run's length.

use crate::record::{AttrValue, SpanRecord, StatusCode, TraceRecord};
use serde::Serialize;
use std::collections::HashMap;

/// Sessions one producer's sink keeps open before handing out the oldest.
pub const OPEN_SESSIONS: usize = 64;

/// The attribute keys sessions are read from, with the run's prefix applied.
#[derive(Clone, Debug)]
pub struct SessionKeys {
    span_class: String,
    turn_index: String,
    request_id: String,
    tenant_id: String,
    agent: String,
    genai_agent: String,
    enduser: String,
    /// `<p>.llm.cost.usd`: the cost of an LLM call, from config.yaml's `prices`.
    pub cost: String,
    environment: String,
    reward: String,
    terminated: String,
    state_before: String,
    state_after: String,
    action: String,
    observation: String,
}

impl SessionKeys {
    /// The keys under the active prefix (`vendor`, or `--vendor`).
    pub fn new(prefix: &str) -> Self {
        let k = |s: &str| format!("{prefix}.{s}");
        SessionKeys {
            span_class: k("span.class"),
            turn_index: k("turn.index"),
            request_id: k("request.id"),
            tenant_id: k("tenant.id"),
            agent: k("a2a.agent.target.id"),
            genai_agent: "gen_ai.agent.id".into(),
            enduser: k("enduser.pseudo.id"),
            cost: k(COST_SUFFIX),
            environment: k("environment.name"),
            reward: k("environment.reward"),
            terminated: k("environment.terminated"),
            state_before: k("environment.state.before"),
            state_after: k("environment.state.after"),
            action: k("environment.action"),
            observation: k("environment.observation"),
        }
    }
}

/// The cost attribute's name after the prefix.
pub const COST_SUFFIX: &str = "llm.cost.usd";

/// The three event types of the seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    /// An AI/LLM call (the seed's CAISEvent).
    Cais,
    /// An environment step: reward, termination, state change.
    Environment,
    /// A runtime operation: validation, tool call, planning, …
    Runtime,
}

impl EventType {
    /// As the store writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Cais => "cais",
            EventType::Environment => "environment",
            EventType::Runtime => "runtime",
        }
    }
}

/// Wall clock and logical time of an event or message.
#[derive(Clone, Debug, Serialize)]
pub struct TimeRecord {
    /// RFC 3339 wall-clock time.
    pub event_time: String,
    /// The turn (timestep) number.
    pub message_time: u32,
}

/// One event: a span, with the seed's model fields lifted out of its attributes.
#[derive(Clone, Debug, Serialize)]
pub struct Event {
    /// AI, environment or runtime.
    pub event_type: EventType,
    /// Hex trace id of the span.
    pub trace_id: String,
    /// Hex span id.
    pub span_id: String,
    /// The span name.
    pub name: String,
    /// Which system emitted it: the span's class (`llm.call`, `environment.step`).
    pub system_instance_id: String,
    /// When it started, and its turn.
    pub time_record: TimeRecord,
    /// Start, Unix ns.
    pub start_ns: u64,
    /// Duration in ms.
    pub latency_ms: f64,
    /// `ok` or `error`.
    pub outcome: &'static str,
    /// AI events: `gen_ai.request.model`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_name: Option<String>,
    /// AI events: `gen_ai.provider.name`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// AI events: `gen_ai.usage.input_tokens`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_tokens: Option<i64>,
    /// AI events: `gen_ai.usage.output_tokens`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completion_tokens: Option<i64>,
    /// AI events: `gen_ai.usage.cache_read.input_tokens`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cached_tokens: Option<i64>,
    /// AI events: `<p>.llm.cost.usd`, when the run tracks costs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// Environment events: the step's reward.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reward: Option<f64>,
    /// Environment events: whether the episode ended with this step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub terminated: Option<bool>,
    /// Runtime events: the operation (the span's class).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// State before (an LLM call's input messages, an environment's state), as JSON text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_state_before: Option<String>,
    /// State after (an LLM call's output messages, an environment's state), as JSON text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_state_after: Option<String>,
    /// Every other attribute of the span.
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

/// A message between systems (seed: `SessionEventMessage`).
#[derive(Clone, Debug, Serialize)]
pub struct Message {
    /// Who sent it (the environment, the agent, the end user).
    pub origin_system_id: String,
    /// `observation`, `action`, `user`, `agent_response`.
    pub message_type: &'static str,
    /// What was said or done.
    pub payload: String,
    /// When, and in which turn.
    pub time_record: TimeRecord,
    /// Hex id of the span it was read from.
    pub span_id: String,
}

/// One logical turn.
#[derive(Clone, Debug, Serialize)]
pub struct Timestep {
    /// `<session>/<turn>`.
    pub step_id: String,
    /// The turn number (1-based).
    pub turn_number: u32,
    /// RFC 3339 time of its first span.
    pub timestamp: String,
    /// Its events in time order.
    pub events: Vec<Event>,
    /// Its messages in time order.
    pub step_messages: Vec<Message>,
}

/// Sums over a session.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Totals {
    /// Timesteps.
    pub timesteps: u64,
    /// Events.
    pub events: u64,
    /// Messages.
    pub messages: u64,
    /// Prompt tokens of its AI events.
    pub prompt_tokens: i64,
    /// Completion tokens of its AI events.
    pub completion_tokens: i64,
    /// Cost of its AI events, USD.
    pub cost_usd: f64,
    /// Reward of its environment events.
    pub reward: f64,
}

/// One session document, in the seed's structure.
#[derive(Clone, Debug, Serialize)]
pub struct Session {
    /// `gen_ai.conversation.id`.
    pub session_id: String,
    /// RFC 3339 time of its first span.
    pub created_at: String,
    /// Scenario, tenant, agent, end user, environment, trace ids.
    pub session_metadata: serde_json::Map<String, serde_json::Value>,
    /// Sums over the session.
    pub totals: Totals,
    /// The turns in order.
    pub session_time_steps: Vec<Timestep>,
    /// Every event id in time order (the events themselves are in their timesteps).
    pub event_history: Vec<String>,
    /// Every message, in time order, as `(turn, type)` pairs of the timesteps.
    pub message_history: Vec<String>,
    /// Spans it was made of (for the writers' counters; not written).
    #[serde(skip)]
    pub spans: u64,
    /// Its first span's start, Unix ns.
    #[serde(skip)]
    pub created_ns: u64,
    /// Its scenario.
    #[serde(skip)]
    pub scenario: String,
}

/// RFC 3339 (UTC, ns precision as needed) of Unix ns.
pub fn rfc3339(ns: u64) -> String {
    jiff::Timestamp::from_nanosecond(ns as i128)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| ns.to_string())
}

/// Groups one producer's traces into sessions.
pub struct Assembler {
    keys: SessionKeys,
    open: Vec<(String, Vec<TraceRecord>)>,
}

impl Assembler {
    /// An assembler reading `keys`.
    pub fn new(keys: SessionKeys) -> Self {
        Assembler {
            keys,
            open: Vec::new(),
        }
    }

    /// Takes one trace (or part of one); returns the sessions it completes.
    pub fn add(&mut self, t: &TraceRecord) -> Vec<Session> {
        let id = session_of(t);
        match self.open.iter_mut().rev().find(|(s, _)| *s == id) {
            Some((_, traces)) => traces.push(t.clone()),
            None => self.open.push((id, vec![t.clone()])),
        }
        let mut done = Vec::new();
        while self.open.len() > OPEN_SESSIONS {
            let (id, traces) = self.open.remove(0);
            done.push(build(&self.keys, id, traces));
        }
        done
    }

    /// Every session still open.
    pub fn finish(&mut self) -> Vec<Session> {
        std::mem::take(&mut self.open)
            .into_iter()
            .map(|(id, traces)| build(&self.keys, id, traces))
            .collect()
    }
}

/// The session of a trace: its first span's `gen_ai.conversation.id`, else its trace id.
fn session_of(t: &TraceRecord) -> String {
    t.spans
        .iter()
        .find_map(|s| s.attr("gen_ai.conversation.id").and_then(AttrValue::as_str))
        .map(str::to_string)
        .unwrap_or_else(|| hex::encode(t.trace_id))
}

fn int(s: &SpanRecord, k: &str) -> Option<i64> {
    match s.attr(k)? {
        AttrValue::Int(i) => Some(*i),
        AttrValue::Double(d) => Some(*d as i64),
        AttrValue::Str(x) => x.parse().ok(),
        _ => None,
    }
}

fn float(s: &SpanRecord, k: &str) -> Option<f64> {
    match s.attr(k)? {
        AttrValue::Int(i) => Some(*i as f64),
        AttrValue::Double(d) => Some(*d),
        AttrValue::Str(x) => x.parse().ok(),
        _ => None,
    }
}

fn text(s: &SpanRecord, k: &str) -> Option<String> {
    s.attr(k).map(|v| v.to_string())
}

/// An attribute value as JSON.
pub fn json_of(v: &AttrValue) -> serde_json::Value {
    match v {
        AttrValue::Str(s) => serde_json::Value::from(&**s),
        AttrValue::Int(i) => serde_json::Value::from(*i),
        AttrValue::Double(d) => serde_json::Value::from(*d),
        AttrValue::Bool(b) => serde_json::Value::from(*b),
        AttrValue::StrArray(a) => a.iter().map(|s| serde_json::Value::from(&**s)).collect(),
    }
}

/// Classes that give a session its shape and are no events of their own.
const STRUCTURE: &[&str] = &["episode", "episode.timestep"];

/// A span's parent and its own turn index, if it has one.
type ParentAndTurn = (Option<[u8; 8]>, Option<u32>);

fn build(k: &SessionKeys, session_id: String, traces: Vec<TraceRecord>) -> Session {
    // The turn of every span: its own or its nearest ancestor's turn index. Parts of
    // a trace may come in any order (realtime mode releases children first).
    let mut tree: HashMap<[u8; 8], ParentAndTurn> = HashMap::new();
    for s in traces.iter().flat_map(|t| &t.spans) {
        let own = int(s, &k.turn_index).map(|i| i.max(0) as u32);
        tree.insert(s.span_id, (s.parent_span_id, own));
    }
    let turn_of = |mut id: [u8; 8]| -> Option<u32> {
        // Bounded: a tree is at most a few hundred levels deep.
        for _ in 0..1024 {
            let (parent, own) = tree.get(&id)?;
            if own.is_some() {
                return *own;
            }
            id = (*parent)?;
        }
        None
    };
    let mut turn_of_request: HashMap<String, u32> = HashMap::new();
    let mut spans: Vec<(&TraceRecord, &SpanRecord, Option<u32>)> = Vec::new();
    for t in &traces {
        for s in &t.spans {
            let turn = turn_of(s.span_id);
            if let (Some(turn), Some(rq)) = (turn, text(s, &k.request_id)) {
                turn_of_request.entry(rq).or_insert(turn);
            }
            spans.push((t, s, turn));
        }
    }
    spans.sort_by_key(|(_, s, _)| s.start_ns);
    let created_ns = spans.first().map_or(0, |(_, s, _)| s.start_ns);
    let mut meta = serde_json::Map::new();
    let scenario = traces
        .first()
        .map(|t| t.scenario.to_string())
        .unwrap_or_default();
    meta.insert("scenario".into(), scenario.clone().into());
    let mut steps: std::collections::BTreeMap<u32, Timestep> = Default::default();
    let mut totals = Totals::default();
    for (t, s, turn) in &spans {
        let turn = turn
            .or_else(|| text(s, &k.request_id).and_then(|r| turn_of_request.get(&r).copied()))
            .unwrap_or(1);
        for (key, name) in [
            (&k.tenant_id, "tenant_id"),
            (&k.agent, "agent_id"),
            (&k.genai_agent, "agent_id"),
            (&k.enduser, "end_user_id"),
            (&k.environment, "environment"),
        ] {
            if !meta.contains_key(name) {
                if let Some(v) = text(s, key) {
                    meta.insert(name.into(), v.into());
                }
            }
        }
        let step = steps.entry(turn).or_insert_with(|| Timestep {
            step_id: format!("{session_id}/{turn}"),
            turn_number: turn,
            timestamp: rfc3339(s.start_ns),
            events: Vec::new(),
            step_messages: Vec::new(),
        });
        let class = text(s, &k.span_class).unwrap_or_else(|| s.name.to_string());
        let span_id = hex::encode(s.span_id);
        let at = |ns: u64| TimeRecord {
            event_time: rfc3339(ns),
            message_time: turn,
        };
        let mut msg = |origin: Option<String>, ty: &'static str, payload: Option<String>, ns| {
            if let Some(payload) = payload {
                step.step_messages.push(Message {
                    origin_system_id: origin.unwrap_or_else(|| "unknown".into()),
                    message_type: ty,
                    payload,
                    time_record: at(ns),
                    span_id: span_id.clone(),
                });
            }
        };
        match class.as_str() {
            "environment.step" => {
                let agent = meta_str(&meta, "agent_id").or_else(|| Some("agent".into()));
                msg(agent, "action", text(s, &k.action), s.start_ns);
                msg(
                    text(s, &k.environment),
                    "observation",
                    text(s, &k.observation),
                    s.end_ns,
                );
            }
            "a2a.orchestrate" => {
                msg(
                    text(s, &k.enduser),
                    "user",
                    text(s, "input.value"),
                    s.start_ns,
                );
                msg(
                    text(s, &k.agent),
                    "agent_response",
                    text(s, "output.value"),
                    s.end_ns,
                );
            }
            _ => {}
        }
        if STRUCTURE.contains(&class.as_str()) {
            continue;
        }
        let event_type = match class.as_str() {
            "llm.call" => EventType::Cais,
            "environment.step" => EventType::Environment,
            _ => EventType::Runtime,
        };
        let lifted: Vec<&str> = match event_type {
            EventType::Cais => vec![
                "gen_ai.request.model",
                "gen_ai.provider.name",
                "gen_ai.usage.input_tokens",
                "gen_ai.usage.output_tokens",
                "gen_ai.usage.cache_read.input_tokens",
                "gen_ai.input.messages",
                "gen_ai.output.messages",
                k.cost.as_str(),
            ],
            EventType::Environment => vec![
                k.reward.as_str(),
                k.terminated.as_str(),
                k.state_before.as_str(),
                k.state_after.as_str(),
            ],
            EventType::Runtime => Vec::new(),
        };
        let metadata = s
            .attrs
            .iter()
            .filter(|(key, _)| !lifted.contains(&&**key))
            .map(|(key, v)| (key.to_string(), json_of(v)))
            .collect();
        let cais = event_type == EventType::Cais;
        let env = event_type == EventType::Environment;
        let e = Event {
            event_type,
            trace_id: hex::encode(t.trace_id),
            span_id,
            name: s.name.to_string(),
            system_instance_id: class.clone(),
            time_record: at(s.start_ns),
            start_ns: s.start_ns,
            latency_ms: s.duration_ns() as f64 / 1e6,
            outcome: if s.status == StatusCode::Error {
                "error"
            } else {
                "ok"
            },
            model_name: cais.then(|| text(s, "gen_ai.request.model")).flatten(),
            provider: cais.then(|| text(s, "gen_ai.provider.name")).flatten(),
            prompt_tokens: cais.then(|| int(s, "gen_ai.usage.input_tokens")).flatten(),
            completion_tokens: cais.then(|| int(s, "gen_ai.usage.output_tokens")).flatten(),
            cached_tokens: cais
                .then(|| int(s, "gen_ai.usage.cache_read.input_tokens"))
                .flatten(),
            cost_usd: cais.then(|| float(s, &k.cost)).flatten(),
            reward: env.then(|| float(s, &k.reward)).flatten(),
            terminated: env
                .then(|| match s.attr(&k.terminated) {
                    Some(AttrValue::Bool(b)) => Some(*b),
                    _ => None,
                })
                .flatten(),
            operation: (event_type == EventType::Runtime).then(|| class.clone()),
            system_state_before: match event_type {
                EventType::Cais => text(s, "gen_ai.input.messages"),
                EventType::Environment => text(s, &k.state_before),
                EventType::Runtime => None,
            },
            system_state_after: match event_type {
                EventType::Cais => text(s, "gen_ai.output.messages"),
                EventType::Environment => text(s, &k.state_after),
                EventType::Runtime => None,
            },
            metadata,
        };
        totals.prompt_tokens += e.prompt_tokens.unwrap_or(0);
        totals.completion_tokens += e.completion_tokens.unwrap_or(0);
        totals.cost_usd += e.cost_usd.unwrap_or(0.0);
        totals.reward += e.reward.unwrap_or(0.0);
        step.events.push(e);
    }
    let mut event_history = Vec::new();
    let mut message_history = Vec::new();
    for step in steps.values() {
        totals.events += step.events.len() as u64;
        totals.messages += step.step_messages.len() as u64;
        event_history.extend(step.events.iter().map(|e| e.span_id.clone()));
        message_history.extend(
            step.step_messages
                .iter()
                .map(|m| format!("{}:{}", step.turn_number, m.message_type)),
        );
    }
    totals.timesteps = steps.len() as u64;
    totals.cost_usd = round_cost(totals.cost_usd);
    totals.reward = (totals.reward * 1e6).round() / 1e6;
    let mut ids: Vec<String> = traces.iter().map(|t| hex::encode(t.trace_id)).collect();
    ids.dedup();
    meta.insert("trace_ids".into(), ids.into());
    Session {
        session_id,
        created_at: rfc3339(created_ns),
        session_metadata: meta,
        totals,
        session_time_steps: steps.into_values().collect(),
        event_history,
        message_history,
        spans: traces.iter().map(|t| t.spans.len() as u64).sum(),
        created_ns,
        scenario,
    }
}

fn meta_str(m: &serde_json::Map<String, serde_json::Value>, k: &str) -> Option<String> {
    m.get(k).and_then(|v| v.as_str()).map(str::to_string)
}

/// A cost rounded to 1e-8 USD, as every view stores it.
pub fn round_cost(usd: f64) -> f64 {
    (usd * 1e8).round() / 1e8
}
