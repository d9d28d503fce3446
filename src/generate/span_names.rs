//! Span names as the GenAI conventions write them: `{gen_ai.operation.name} {target}`,
//! the target being the model of a chat, the tool of an execution, the agent
//! invoked, the data source searched (`chat gpt-4o`, `execute_tool claims_create`,
//! `invoke_agent claims-agent`, `retrieval policy-docs`); an MCP request as the MCP
//! conventions write it, `{mcp.method.name} {tool}` (`tools/call new_claim`). UIs list spans by name;
//! the scenario's own class stays in `<prefix>.span.class`. Spans without a GenAI
//! operation keep their class name, and so does every span when the profile drops
//! the GenAI conventions (`--genai-profile openinference`).

use crate::model::AttrValue;
use crate::plan::World;
use crate::record::{Key, SpanRecord, Text};
use std::cell::RefCell;
use std::collections::HashMap;

/// Names built so far, per operation and target: the targets come from the
/// configuration (models, tools, agents, data sources), so the set is small and a
/// span reuses its name instead of formatting it. Bounded in case a run's targets
/// are not.
const MAX_CACHED: usize = 4096;

/// The name cache: operation → target → name, looked up by text without cloning
/// either key; and by where the two texts are, when both live for the process
/// (interned or literal: the usual case), which needs no hashing of their bytes.
#[derive(Default)]
struct Names {
    by_op: HashMap<Key, HashMap<Key, Text, Fast>, Fast>,
    by_address: HashMap<[usize; 4], Text, Fast>,
    len: usize,
}

thread_local! {
    static NAMES: RefCell<Names> = RefCell::new(Names::default());
}

/// The names are few and come from the run's own files: SipHash's resistance to
/// chosen keys buys nothing here and cost most of a lookup.
type Fast = rustc_hash::FxBuildHasher;

/// Renames the trace's GenAI spans after their operation and target.
pub(super) fn apply(world: &World, spans: &mut [SpanRecord]) {
    if !world.genai_profile.otel() {
        return;
    }
    let k = &world.keys;
    for s in spans.iter_mut() {
        let op = match (s.attr(&k.op_name), s.attr(&k.mcp_method)) {
            (Some(AttrValue::Str(op)), _) | (None, Some(AttrValue::Str(op))) => op,
            _ => continue,
        };
        let target_key = match op.as_str() {
            "chat" | "text_completion" | "generate_content" | "embeddings" => &k.request_model,
            "execute_tool" | "tools/call" => &k.tool_name,
            "invoke_agent" | "create_agent" => &k.agent_name,
            "retrieval" => "gen_ai.data_source.id",
            _ => continue,
        };
        let name = match s.attr(target_key) {
            Some(AttrValue::Str(target)) if !target.is_empty() => named(op, target),
            _ => op.clone(),
        };
        s.name = name;
    }
}

/// `"{op} {target}"`, from the cache when it was built before. Cached names are
/// interned; past the cache's bound a name is made for its span alone, so targets
/// that never repeat cost memory only while their spans live.
fn named(op: &Text, target: &Text) -> Text {
    // A text that lives for the process is never freed: its address and length
    // identify it.
    let address = match (op, target) {
        (Text::Static(o), Text::Static(t)) => {
            Some([o.as_ptr() as usize, o.len(), t.as_ptr() as usize, t.len()])
        }
        _ => None,
    };
    NAMES.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some(n) = address.and_then(|a| cache.by_address.get(&a)) {
            return n.clone();
        }
        let (op, target) = (op.as_str(), target.as_str());
        let n = match cache.by_op.get(op).and_then(|t| t.get(target)) {
            Some(n) => n.clone(),
            None => {
                let name = format!("{op} {target}");
                if cache.len >= MAX_CACHED {
                    return Text::from(name);
                }
                cache.len += 1;
                let n = Text::interned(&name);
                let targets = cache.by_op.entry(Key::from(op)).or_default();
                targets.insert(Key::from(target), n.clone());
                n
            }
        };
        if let Some(a) = address.filter(|_| cache.len < MAX_CACHED) {
            cache.len += 1;
            cache.by_address.insert(a, n.clone());
        }
        n
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_the_operation_and_its_target_cached_or_not() {
        let (chat, tool) = (Text::Static("chat"), Text::from("tools/call"));
        let (model, mini) = (Text::Static("gpt-4o"), Text::interned("gpt-4o-mini"));
        for _ in 0..2 {
            assert_eq!(&*named(&chat, &model), "chat gpt-4o");
            assert_eq!(&*named(&chat, &mini), "chat gpt-4o-mini");
            assert_eq!(&*named(&tool, &model), "tools/call gpt-4o");
            // The same texts elsewhere in memory have the same names.
            assert_eq!(&*named(&Text::from("chat"), &mini), "chat gpt-4o-mini");
            assert_eq!(&*named(&Text::interned("chat"), &model), "chat gpt-4o");
        }
        // Texts of every length up to and past a word land on their own names.
        for n in 0..20 {
            let target = "x".repeat(n);
            for t in [Text::from(target.as_str()), Text::interned(&target)] {
                assert_eq!(*named(&chat, &t), *format!("chat {target}"));
            }
        }
    }
}
