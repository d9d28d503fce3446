//! Instability sessions (`instability:` scenarios, seed 000): one session is one
//! trace; every operation is a span whose `<prefix>.instability.event` names it
//! (`start`, `step`, `branch`, `drift_like`, `correction`, `recover`, `error`,
//! `end`), with `.args` (JSON), `.notes`, `.turn` and, on the spans of an
//! injected episode, `.episode` (`drift`, `correction`, `recovery`, `failure`).
//! The root carries the session's true `.outcome`. The events-jsonl writer and
//! its ground-truth labels are derived from exactly these spans.

use super::nonzero_id;
use crate::class::{ClassOf, SpanClass};
use crate::model::instability::{InstabilityDef, Noise};
use crate::plan::{ScenarioPlan, World};
use crate::record::{AttrValue, Key, SpanKind, SpanRecord, StatusCode, Text, TraceRecord};
use rand::Rng;
use rand_distr::{Distribution, Normal};
use std::sync::Arc;

const MS: u64 = 1_000_000;

/// What the user is after in a session; a drift wanders to another topic.
const TOPICS: &[&str] = &[
    "refund status of order 1042",
    "change the delivery address",
    "compare two phone plans",
    "reset a forgotten password",
    "book a repair slot on Thursday",
];
const DRIFT_TOPICS: &[&str] = &[
    "loyalty programme history",
    "unrelated store opening hours",
    "a different order from last year",
    "generic troubleshooting steps",
];

/// One turn of the script: its event type and the episode it belongs to.
#[derive(Clone, Copy)]
struct Turn {
    event: &'static str,
    episode: Option<&'static str>,
}

const fn turn(event: &'static str, episode: Option<&'static str>) -> Turn {
    Turn { event, episode }
}

/// The session's true outcome and its turns, drawn from the knobs.
fn script<R: Rng + ?Sized>(def: &InstabilityDef, rng: &mut R) -> (&'static str, Vec<Turn>) {
    let n = rng.random_range(def.turns.0..=def.turns.1.max(def.turns.0)) as usize;
    let step = turn("step", None);
    if rng.random::<f64>() >= def.drift_rate {
        return ("stable", vec![step; n]);
    }
    let corrected = rng.random::<f64>() < def.correction_rate;
    let outcome = match corrected {
        true if rng.random::<f64>() < def.recovery_rate => "recovered",
        true => "failed",
        false if rng.random::<f64>() < def.fail_rate => "failed",
        false => "unstable",
    };
    // At least one step before the drift and room for correction and recovery after it.
    let len = 1 + usize::from(rng.random_bool(0.5)) + usize::from(def.noise == Noise::High);
    let len = len.min(n.saturating_sub(3)).max(1);
    let at = rng.random_range(1..=n - 2 - len);
    let mut turns = vec![step; at];
    turns.extend(std::iter::repeat_n(turn("drift_like", Some("drift")), len));
    match (corrected, outcome) {
        (true, "recovered") => {
            turns.push(turn("correction", Some("correction")));
            turns.push(turn("recover", Some("recovery")));
            turns.resize(n.max(turns.len()), step);
        }
        (true, _) => {
            turns.push(turn("correction", Some("correction")));
            turns.push(turn("error", Some("failure")));
        }
        (false, "failed") => turns.push(turn("error", Some("failure"))),
        _ => {
            // Unstable: the wobble goes on to the end, steps and drifts mixed.
            while turns.len() < n {
                let e = if rng.random_bool(0.5) {
                    "drift_like"
                } else {
                    "step"
                };
                turns.push(turn(e, Some("drift")));
            }
        }
    }
    (outcome, turns)
}

/// Builds the spans of one session with their keys.
struct Spans<'a> {
    world: &'a World,
    session: Arc<str>,
    spans: Vec<SpanRecord>,
}

impl Spans<'_> {
    fn key(&self, short: &str) -> Key {
        Key::from(self.world.prefix.attr(&format!("instability.{short}")))
    }

    fn push<R: Rng + ?Sized>(
        &mut self,
        rng: &mut R,
        name: &str,
        event: &str,
        parent: Option<[u8; 8]>,
        (start, end): (u64, u64),
    ) -> usize {
        let k = &self.world.keys;
        let attrs = vec![
            (k.session_id, AttrValue::Str(self.session.clone().into())),
            (
                k.conversation_id,
                AttrValue::Str(self.session.clone().into()),
            ),
            (self.key("event"), AttrValue::str(event)),
        ];
        self.spans.push(SpanRecord {
            span_id: nonzero_id::<8, R>(rng),
            parent_span_id: parent,
            name: Text::interned(&self.world.prefix.attr(name)),
            kind: SpanKind::Internal,
            start_ns: start,
            end_ns: end,
            attrs: attrs.into(),
            events: Vec::new(),
            status: StatusCode::Unset,
            status_message: None,
            service: self.world.services.plane(false, None),
            class: ClassOf::step(SpanClass::Other),
            links: Vec::new(),
        });
        self.spans.len() - 1
    }

    fn set(&mut self, i: usize, short: &str, v: AttrValue) {
        let key = self.key(short);
        self.spans[i].set_attr(key, v);
    }
}

/// A latency in ns: `mean_ms × factor`, jittered by the noise level, at least 1 ms.
fn latency<R: Rng + ?Sized>(def: &InstabilityDef, factor: f64, rng: &mut R) -> u64 {
    let jitter = Normal::new(0.0, def.noise.jitter()).map_or(0.0, |n| n.sample(rng));
    let ms = (def.step_ms * factor * (1.0 + jitter)).max(1.0);
    (ms * MS as f64) as u64
}

/// A step's arguments; a noisy session sometimes writes them in another shape.
fn args<R: Rng + ?Sized>(topic: &str, k: u32, def: &InstabilityDef, rng: &mut R) -> String {
    let odd = def.noise.odd_shape();
    if odd > 0.0 && rng.random_bool(odd) {
        return if rng.random_bool(0.5) {
            serde_json::json!([topic, k]).to_string()
        } else {
            serde_json::json!(format!("{topic} top_k={k}")).to_string()
        };
    }
    serde_json::json!({"query": topic, "top_k": k}).to_string()
}

/// One instability session, laid back so it ends at `end_ns`.
pub fn session<R: Rng + ?Sized>(
    world: &World,
    plan: &ScenarioPlan,
    def: &InstabilityDef,
    end_ns: u64,
    rng: &mut R,
) -> Vec<TraceRecord> {
    let trace_id = nonzero_id::<16, R>(rng);
    let session: Arc<str> = world
        .id_formats
        .session_id
        .render(rng, &plan.tenant_id)
        .into();
    let (outcome, turns) = script(def, rng);
    let topic = TOPICS[rng.random_range(0..TOPICS.len())];
    let mut b = Spans {
        world,
        session,
        spans: Vec::with_capacity(turns.len() + 4),
    };
    let root = b.push(rng, "agent.session", "start", None, (0, 0));
    let root_id = b.spans[root].span_id;
    b.set(root, "outcome", AttrValue::str(outcome));
    b.set(root, "noise", AttrValue::str(def.noise.as_str()));
    b.set(root, "turns", AttrValue::Int(turns.len() as i64));
    let mut t = latency(def, 0.2, rng);
    for (i, turn) in turns.iter().enumerate() {
        t += rng.random_range(1..15) * MS;
        let factor = match turn.event {
            "drift_like" => 2.4,
            "correction" => 1.6,
            "recover" => 1.1,
            "error" => 0.6,
            _ => 1.0,
        };
        let branch = turn.event == "step" && def.branching > 0.0 && rng.random_bool(def.branching);
        let dur = latency(def, factor, rng);
        let idx = b.push(rng, "agent.turn", turn.event, Some(root_id), (t, t + dur));
        let id = b.spans[idx].span_id;
        b.set(idx, "turn", AttrValue::Int(i as i64 + 1));
        let k = rng.random_range(3..8);
        let (a, notes) = match turn.event {
            "drift_like" => (
                args(
                    DRIFT_TOPICS[rng.random_range(0..DRIFT_TOPICS.len())],
                    k,
                    def,
                    rng,
                ),
                Some("answer wanders away from the user's goal"),
            ),
            "correction" => (
                serde_json::json!({"query": topic, "restated": true}).to_string(),
                Some("the user restates the goal"),
            ),
            "recover" => (args(topic, k, def, rng), Some("back on task")),
            "error" => (
                serde_json::json!({"query": topic}).to_string(),
                Some("gave up after drifting"),
            ),
            _ => (args(topic, k, def, rng), None),
        };
        b.set(idx, "args", AttrValue::Str(a.into()));
        if let Some(n) = notes {
            b.set(idx, "notes", AttrValue::str(n));
        }
        if let Some(e) = turn.episode {
            b.set(idx, "episode", AttrValue::str(e));
        }
        if turn.event == "error" {
            b.spans[idx].status = StatusCode::Error;
            b.spans[idx].status_message = Some(Arc::from("session failed after drifting"));
        }
        let mut end = t + dur;
        if branch {
            // Two siblings that diverge: the same step planned two ways.
            for plan_name in ["A", "B"] {
                let s = t + rng.random_range(0..3) * MS;
                let e = s + latency(def, 0.8, rng);
                let c = b.push(rng, "agent.branch", "branch", Some(id), (s, e));
                b.set(c, "turn", AttrValue::Int(i as i64 + 1));
                let v = serde_json::json!({"query": topic, "plan": plan_name, "top_k": k + u32::from(plan_name == "B")});
                b.set(c, "args", AttrValue::Str(Text::from(v.to_string())));
                end = end.max(e + MS);
            }
            b.spans[idx].end_ns = end;
        }
        t = end;
    }
    t += MS;
    let end_dur = rng.random_range(1..4) * MS;
    let e = b.push(rng, "agent.end", "end", Some(root_id), (t, t + end_dur));
    b.set(e, "notes", AttrValue::str(outcome));
    let total = b.spans[e].end_ns + MS;
    b.spans[root].end_ns = total;
    if outcome == "failed" {
        b.spans[root].status = StatusCode::Error;
        b.spans[root].status_message = Some(Arc::from("session failed"));
    }
    let start = end_ns.saturating_sub(total);
    for s in &mut b.spans {
        s.start_ns += start;
        s.end_ns += start;
    }
    vec![TraceRecord {
        trace_id,
        scope: plan.scope,
        scenario: plan.name,
        spans: b.spans,
    }]
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn scripts_fit_their_turns_and_outcomes() {
        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(1);
        let def = InstabilityDef {
            turns: (4, 6),
            noise: Noise::High,
            ..Default::default()
        };
        for _ in 0..2_000 {
            let (outcome, turns) = script(&def, &mut rng);
            // A failed session gives up early; the others run their turns.
            let least = if outcome == "failed" { 3 } else { 4 };
            assert!(
                (least..=6).contains(&turns.len()),
                "{outcome}: {}",
                turns.len()
            );
            let has = |e: &str| turns.iter().any(|t| t.event == e);
            match outcome {
                "stable" => assert!(!has("drift_like")),
                "recovered" => assert!(has("correction") && has("recover")),
                "failed" => assert!(has("error") && !has("recover")),
                "unstable" => assert!(!has("correction") && !has("error")),
                other => panic!("{other}"),
            }
            assert_ne!(turns[0].event, "drift_like", "a step comes first");
        }
    }
}
