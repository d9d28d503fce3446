//! The agent loop's LLM content: the call that asks for the turn's tools (its
//! output is tool-call parts, `finish_reasons ["tool_call"]`), and the call that
//! answers once they returned (its input carries the tool calls and their results,
//! its output the reply, `["stop"]`). Tool-call ids are the ids of the tool spans,
//! so a UI links each request to its execution. The JSON is assembled from pieces
//! rendered at compile time: a request only adds its call ids.

use super::attrs::{lit, push_error_json, push_json_escaped};
use super::Builder;
use crate::model::AttrValue;
use crate::plan::{LlmPhase, Node, ToolCall};
use crate::record::{same_key, Key, Text};
use rand::Rng;

/// What the answering call says when a tool it relied on failed.
const FAILED_TOOL_REPLY: &str = r#"[{"finish_reason":"stop","parts":[{"content":"I couldn't finish that: one of our systems returned an error. Nothing was changed; please try again in a few minutes.","type":"text"}],"role":"assistant"}]"#;

impl<R: Rng + ?Sized> Builder<'_, '_, R> {
    /// The `error.type` of each of this trace's first `n` tool calls that failed, in
    /// the order they ran (they all ran before the answering call).
    fn tool_failures(&self, n: usize) -> Vec<Option<Text>> {
        let k = &self.world.keys;
        let mut out: Vec<Option<Text>> = self
            .spans
            .iter()
            .filter(|s| {
                s.class.class == crate::class::SpanClass::McpToolExecute && !s.class.attempt
            })
            .map(|s| {
                (s.status == crate::record::StatusCode::Error).then(|| {
                    match s.attr(&k.error_type) {
                        Some(AttrValue::Str(t)) => t.clone(),
                        _ => Text::from("tool_error"),
                    }
                })
            })
            .take(n)
            .collect();
        out.resize(n, None);
        out
    }

    /// The call id of the turn's tool call `slot`, made on first use.
    pub(super) fn slot_call_id(&mut self, slot: u32) -> &str {
        while self.call_ids.len() <= slot as usize {
            let id = self
                .world
                .id_formats
                .mcp_tool_call_id
                .render(self.rng, &self.plan.tenant_id);
            self.call_ids.push(id);
        }
        &self.call_ids[slot as usize]
    }

    /// The assistant message that asks for the turn's tool calls.
    fn tool_call_message(&mut self, calls: &[ToolCall], out: &mut String) {
        out.push_str(r#"{"finish_reason":"tool_call","parts":["#);
        for (i, c) in calls.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&c.call_part.0);
            out.push_str(self.slot_call_id(i as u32));
            out.push_str(&c.call_part.1);
        }
        out.push_str(r#"],"role":"assistant"}"#);
    }

    /// Rewrites an agent-loop LLM call's messages, finish reason and token counts.
    pub(super) fn agent_loop_attrs(
        &mut self,
        node: &Node,
        failed: bool,
        set: &mut [(Key, AttrValue)],
    ) {
        if node.llm_phase == LlmPhase::Single || failed {
            return;
        }
        let Some(sample) = self.input.sample else {
            return;
        };
        let (input, output, finish) = match node.llm_phase {
            LlmPhase::ToolRequest => {
                let mut out = String::with_capacity(512);
                out.push('[');
                self.tool_call_message(&node.tool_calls, &mut out);
                out.push(']');
                (
                    sample.input_messages.clone(),
                    AttrValue::Str(out.into()),
                    "tool_call",
                )
            }
            _ => {
                // The answer reads the conversation, the request and every result.
                let base = sample.input_messages.as_str().unwrap_or("[]");
                let mut inp = String::with_capacity(base.len() + 1024);
                inp.push_str(base.strip_suffix(']').unwrap_or(base));
                if inp.len() > 1 {
                    inp.push(',');
                }
                self.tool_call_message(&node.tool_calls, &mut inp);
                let failures = self.tool_failures(node.tool_calls.len());
                for (i, c) in node.tool_calls.iter().enumerate() {
                    let id = self.slot_call_id(i as u32);
                    inp.push(',');
                    match &failures[i] {
                        // A failed call answers with its error, not the tool's result.
                        Some(error) => push_failed_response(&mut inp, id, error),
                        None => {
                            inp.push_str(&c.response_message.0);
                            inp.push_str(id);
                            inp.push_str(&c.response_message.1);
                        }
                    }
                }
                inp.push(']');
                // After a failed tool the reply cannot be the one that assumes success.
                let output = if failures.iter().any(Option::is_some) {
                    AttrValue::str(FAILED_TOOL_REPLY)
                } else {
                    sample.output_messages.clone()
                };
                (AttrValue::Str(inp.into()), output, "stop")
            }
        };
        let text_len = |v: &AttrValue| v.as_str().map_or(0, str::len);
        // About four characters a token, plus the tool schemas the request carries.
        let prompt = (text_len(&input) / 4) as i64 + self.rng.random_range(120..400);
        let completion = ((text_len(&output) / 4) as i64).max(1);
        let k = &self.world.keys;
        let (finish_one, finish) = (lit(finish), self.world.lit_array(finish));
        // Keys compared as `Attrs` compares them: by length and address first.
        let is = |key: &Key, other: &Key| same_key(key, other);
        for (key, value) in set.iter_mut() {
            if is(key, &k.input_messages) {
                *value = input.clone();
            } else if is(key, &k.output_messages) {
                *value = output.clone();
            } else if is(key, &k.input_tokens) {
                *value = AttrValue::Int(prompt);
            } else if is(key, &k.output_tokens) {
                *value = AttrValue::Int(completion);
            } else if is(key, &k.cache_read_tokens) || is(key, &k.cache_creation_tokens) {
                // A cached prefix is part of this prompt.
                if let AttrValue::Int(n) = value {
                    *n = (*n).min(prompt);
                }
            } else if is(key, &k.finish_reasons) {
                *value = finish.clone();
            } else if is(key, &k.finish_reason) {
                *value = finish_one.clone();
            }
        }
    }
}

/// Appends the tool message of a call that failed with `error_type`:
/// `{"parts":[{"id":…,"response":{"error":{"type":…}},"type":"tool_call_response"}],"role":"tool"}`,
/// as serde_json writes that object (keys sorted).
fn push_failed_response(out: &mut String, id: &str, error_type: &str) {
    out.push_str("{\"parts\":[{\"id\":\"");
    push_json_escaped(out, id);
    out.push_str("\",\"response\":");
    push_error_json(out, error_type);
    out.push_str(",\"type\":\"tool_call_response\"}],\"role\":\"tool\"}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_calls_message_is_the_json_serde_json_writes() {
        for (id, error) in [("call_1", "timeout"), ("c\"2", "bad\\type\n")] {
            let want = serde_json::json!({"parts": [{"id": id, "response": {"error": {"type": error}}, "type": "tool_call_response"}], "role": "tool"}).to_string();
            let mut got = String::new();
            push_failed_response(&mut got, id, error);
            assert_eq!(got, want);
        }
    }
}
