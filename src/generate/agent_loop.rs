//! The agent loop's LLM content: the call that asks for the turn's tools (its
//! output is tool-call parts, `finish_reasons ["tool_call"]`), and the call that
//! answers once they returned (its input carries the tool calls and their results,
//! its output the reply, `["stop"]`). Tool-call ids are the ids of the tool spans,
//! so a UI links each request to its execution.

use super::Builder;
use crate::model::AttrValue;
use crate::plan::{LlmPhase, Node, ToolCall};
use crate::record::Key;
use rand::Rng;
use serde_json::{json, Value};
use std::sync::Arc;

/// A payload's JSON text as a value (cut text stays a string).
fn as_json(v: &Option<AttrValue>) -> Value {
    match v.as_ref().and_then(AttrValue::as_str) {
        Some(t) => serde_json::from_str(t).unwrap_or_else(|_| Value::String(t.to_string())),
        None => json!({}),
    }
}

impl<R: Rng + ?Sized> Builder<'_, '_, R> {
    /// The call id of the turn's tool call `slot`, made on first use.
    pub(super) fn slot_call_id(&mut self, slot: u32) -> String {
        while self.call_ids.len() <= slot as usize {
            let id = self
                .world
                .id_formats
                .mcp_tool_call_id
                .render(self.rng, &self.plan.tenant_id);
            self.call_ids.push(id);
        }
        self.call_ids[slot as usize].clone()
    }

    /// The assistant message that asks for the turn's tool calls.
    fn tool_call_message(&mut self, calls: &[ToolCall]) -> Value {
        let parts: Vec<Value> = calls
            .iter()
            .enumerate()
            .map(|(i, c)| {
                json!({"type": "tool_call", "id": self.slot_call_id(i as u32), "name": &*c.name, "arguments": as_json(&c.arguments)})
            })
            .collect();
        json!({"role": "assistant", "parts": parts, "finish_reason": "tool_call"})
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
        let k = &self.world.keys;
        let (input_key, output_key) = (k.input_messages.clone(), k.output_messages.clone());
        let (in_tokens, out_tokens) = (k.input_tokens.clone(), k.output_tokens.clone());
        let request = self.tool_call_message(&node.tool_calls);
        let mut input: Vec<Value> =
            serde_json::from_str(sample.input_messages.as_str().unwrap_or("[]"))
                .unwrap_or_default();
        let (output, finish) = match node.llm_phase {
            LlmPhase::ToolRequest => (json!([request]), "tool_call"),
            _ => {
                // The answer sees the request and every result.
                input.push(request);
                for (i, c) in node.tool_calls.iter().enumerate() {
                    let id = self.slot_call_id(i as u32);
                    input.push(json!({"role": "tool", "parts": [{"type": "tool_call_response", "id": id, "response": as_json(&c.result)}]}));
                }
                let out = serde_json::from_str(sample.output_messages.as_str().unwrap_or("[]"))
                    .unwrap_or(Value::Null);
                (out, "stop")
            }
        };
        let input = Value::Array(input).to_string();
        let output = output.to_string();
        // About four characters a token, plus the tool schemas the request carries.
        let prompt = (input.len() / 4) as i64 + self.rng.random_range(120..400);
        let completion = ((output.len() / 4) as i64).max(1);
        let finish = self.world.lit(finish);
        for (key, value) in set.iter_mut() {
            if *key == input_key {
                *value = AttrValue::Str(Arc::from(input.as_str()));
            } else if *key == output_key {
                *value = AttrValue::Str(Arc::from(output.as_str()));
            } else if *key == in_tokens {
                *value = AttrValue::Int(prompt);
            } else if *key == out_tokens {
                *value = AttrValue::Int(completion);
            } else if *key == k.finish_reasons || *key == k.finish_reason {
                *value = finish.clone();
            }
        }
    }
}
