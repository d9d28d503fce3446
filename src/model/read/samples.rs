//! Reads conversation text: `conversation_samples` in config.yaml and a scenario's
//! `conversation:` (scripted turns and samples to draw from).

use crate::diag::Diags;
use crate::model::config::Sample;
use crate::model::{over_limit, MAX_SAMPLES, MAX_TURNS};
use crate::yaml::{join, read_str, read_str_list, Kind, MapReader, Node};
use std::collections::BTreeMap;

/// `conversation_samples: {<workflow>: {samples: [...]}}`.
pub(crate) fn read_samples_by_workflow(
    node: Option<&Node>,
    d: &mut Diags,
) -> BTreeMap<String, Vec<Sample>> {
    let mut out = BTreeMap::new();
    let Some(mut r) = node.and_then(|n| MapReader::new(n, "conversation_samples", d)) else {
        return out;
    };
    let entries: Vec<(String, Node)> = r.rest().cloned().collect();
    for (wf, body) in entries {
        let p = join("conversation_samples", &wf);
        let Some(mut wr) = MapReader::new(&body, &p, d) else {
            continue;
        };
        wr.ignore("status_enum");
        wr.ignore("description");
        if let Some(s) = wr.get("samples") {
            out.insert(wf.clone(), read_samples(s, &wr.sub("samples"), d));
        }
        wr.finish(d);
    }
    out
}

/// A list of `{user_input, llm_response}` samples; bad entries are reported and skipped.
pub fn read_samples(node: &Node, path: &str, d: &mut Diags) -> Vec<Sample> {
    read_sample_list(node, path, false, d)
}

/// A list of samples; `turns`: entries may carry their own workflow `steps`.
fn read_sample_list(node: &Node, path: &str, turns: bool, d: &mut Diags) -> Vec<Sample> {
    let Kind::Seq(items) = &node.kind else {
        d.error(
            node.pos,
            path,
            "expected a list of `{user_input, llm_response}`",
        );
        return Vec::new();
    };
    if items.len() > MAX_SAMPLES {
        d.error(
            node.pos,
            path,
            over_limit(
                items.len(),
                "samples",
                MAX_SAMPLES,
                "one is drawn per request; a few hundred already repeat rarely",
            ),
        );
        return Vec::new();
    }
    items
        .iter()
        .enumerate()
        .filter_map(|(i, it)| read_one(it, &format!("{path}[{i}]"), turns, d))
        .collect()
}

/// One sample; `agent_response` is accepted for `llm_response`.
pub fn read_sample(node: &Node, path: &str, d: &mut Diags) -> Option<Sample> {
    read_one(node, path, false, d)
}

/// One sample, or with `turn` one turn (which may list its own workflow `steps`).
fn read_one(node: &Node, path: &str, turn: bool, d: &mut Diags) -> Option<Sample> {
    let mut r = MapReader::new(node, path, d)?;
    let user = r
        .get("user_input")
        .and_then(|n| read_str(n, &r.sub("user_input"), d));
    let reply = r
        .get_any(&["llm_response", "agent_response"])
        .and_then(|(k, n)| read_str(n, &r.sub(k), d));
    let user_red = r
        .get("user_input_redacted")
        .and_then(|n| read_str(n, &r.sub("user_input_redacted"), d));
    let reply_red = r
        .get_any(&["llm_response_redacted", "agent_response_redacted"])
        .and_then(|(k, n)| read_str(n, &r.sub(k), d));
    let steps = if turn {
        r.get("steps").map(|n| read_str_list(n, &r.sub("steps"), d))
    } else {
        None
    };
    r.finish(d);
    if user.is_none() && reply.is_none() {
        d.error(
            node.pos,
            path,
            "a sample needs `user_input` and `llm_response`",
        );
        return None;
    }
    Some(Sample {
        user_input: user.unwrap_or_default(),
        llm_response: reply.unwrap_or_default(),
        user_input_redacted: user_red,
        llm_response_redacted: reply_red,
        steps,
    })
}

/// A scenario's `conversation:`, read.
#[derive(Default)]
pub(crate) struct Conversation {
    /// `turns`: one request each, in one session.
    pub turns: Vec<Sample>,
    /// `external` (the predecessor's later single exchange) and `samples`: one drawn per request.
    pub samples: Vec<Sample>,
    /// Written with keys of the predecessor's later v1 format (`external`, per-turn `steps`).
    pub late_v1: bool,
}

/// A scenario's `conversation: {turns, samples, external}`.
pub(crate) fn read_conversation(node: &Node, d: &mut Diags) -> Conversation {
    let Some(mut r) = MapReader::new(node, "conversation", d) else {
        return Conversation::default();
    };
    let turns = r.get("turns").map(|n| read_turns(n, d)).unwrap_or_default();
    let mut samples = Vec::new();
    let external = r.get("external");
    if let Some(n) = external {
        samples.extend(read_sample(n, "conversation.external", d));
    }
    if let Some(n) = r.get("samples") {
        samples.extend(read_samples(n, "conversation.samples", d));
    }
    r.finish(d);
    let late_v1 = external.is_some() || turns.iter().any(|t| t.steps.is_some());
    Conversation {
        turns,
        samples,
        late_v1,
    }
}

/// Turns as `{user_input, llm_response}` pairs or alternating `{role, text}` entries.
fn read_turns(node: &Node, d: &mut Diags) -> Vec<Sample> {
    let Kind::Seq(items) = &node.kind else {
        d.error(node.pos, "conversation.turns", "expected a list of turns");
        return Vec::new();
    };
    let role_style = items.iter().any(|it| it.get("role").is_some());
    let too_many = |turns: usize, d: &mut Diags| {
        d.error(
            node.pos,
            "conversation.turns",
            over_limit(
                turns,
                "turns",
                MAX_TURNS,
                "a session's turns are generated together, one trace each",
            ),
        );
    };
    if !role_style {
        if items.len() > MAX_TURNS {
            too_many(items.len(), d);
            return Vec::new();
        }
        return read_sample_list(node, "conversation.turns", true, d);
    }
    let mut out: Vec<Sample> = Vec::new();
    for (i, it) in items.iter().enumerate() {
        let p = format!("conversation.turns[{i}]");
        let Some(mut r) = MapReader::new(it, &p, d) else {
            continue;
        };
        let role = r
            .get("role")
            .and_then(|n| read_str(n, &r.sub("role"), d))
            .unwrap_or_default();
        let text = r
            .get_any(&["text", "content"])
            .and_then(|(k, n)| read_str(n, &r.sub(k), d))
            .unwrap_or_default();
        r.finish(d);
        match role.as_str() {
            "user" => out.push(Sample {
                user_input: text,
                ..Default::default()
            }),
            "assistant" | "agent" | "llm" => match out.last_mut() {
                Some(s) if s.llm_response.is_empty() => s.llm_response = text,
                _ => out.push(Sample {
                    llm_response: text,
                    ..Default::default()
                }),
            },
            other => d.error(
                it.pos,
                &format!("{p}.role"),
                format!("unknown role `{other}`; valid: user, assistant"),
            ),
        }
    }
    if out.len() > MAX_TURNS {
        too_many(out.len(), d);
        return Vec::new();
    }
    out
}
