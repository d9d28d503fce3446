//! The agent loop's LLM content: the call that asks for the turn's tools (its
//! output is tool-call parts, `finish_reasons ["tool_call"]`), and the call that
//! answers once they returned (its input carries the tool calls and their results,
//! its output the reply, `["stop"]`). Tool-call ids are the ids of the tool spans,
//! so a UI links each request to its execution. The JSON is assembled from pieces
//! rendered at compile time: a request only adds its call ids.

use super::Builder;
use crate::model::AttrValue;
use crate::plan::{LlmPhase, Node, ToolCall};
use crate::record::Key;
use rand::Rng;
use std::sync::Arc;

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
    fn tool_call_message(&mut self, calls: &[ToolCall], out: &mut String) {
        out.push_str(r#"{"finish_reason":"tool_call","parts":["#);
        for (i, c) in calls.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let id = self.slot_call_id(i as u32);
            out.push_str(&c.call_part.0);
            out.push_str(&id);
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
                    AttrValue::Str(Arc::from(out)),
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
                for (i, c) in node.tool_calls.iter().enumerate() {
                    let id = self.slot_call_id(i as u32);
                    inp.push(',');
                    inp.push_str(&c.response_message.0);
                    inp.push_str(&id);
                    inp.push_str(&c.response_message.1);
                }
                inp.push(']');
                (
                    AttrValue::Str(Arc::from(inp)),
                    sample.output_messages.clone(),
                    "stop",
                )
            }
        };
        let text_len = |v: &AttrValue| v.as_str().map_or(0, str::len);
        // About four characters a token, plus the tool schemas the request carries.
        let prompt = (text_len(&input) / 4) as i64 + self.rng.random_range(120..400);
        let completion = ((text_len(&output) / 4) as i64).max(1);
        let k = &self.world.keys;
        let (finish_one, finish) = (self.world.lit(finish), self.world.lit_array(finish));
        for (key, value) in set.iter_mut() {
            if *key == k.input_messages {
                *value = input.clone();
            } else if *key == k.output_messages {
                *value = output.clone();
            } else if *key == k.input_tokens {
                *value = AttrValue::Int(prompt);
            } else if *key == k.output_tokens {
                *value = AttrValue::Int(completion);
            } else if *key == k.cache_read_tokens || *key == k.cache_creation_tokens {
                // A cached prefix is part of this prompt.
                if let AttrValue::Int(n) = value {
                    *n = (*n).min(prompt);
                }
            } else if *key == k.finish_reasons {
                *value = finish.clone();
            } else if *key == k.finish_reason {
                *value = finish_one.clone();
            }
        }
    }
}
