//! The cost pass: an LLM call of a scenario that tracks costs carries
//! `<prefix>.llm.cost.usd`, its price (config.yaml `prices`) times its token
//! counts as they finally are (the agent loop recounts them from the messages).
//! Compiling such a scenario checked that every model it may use has a price.

use crate::class::SpanClass;
use crate::plan::World;
use crate::record::{AttrValue, SpanRecord};

/// Sets the cost of every LLM call among `spans`.
pub fn annotate(world: &World, spans: &mut [SpanRecord]) {
    let k = &world.keys;
    for s in spans
        .iter_mut()
        .filter(|s| s.class.class == SpanClass::LlmCall && !s.class.attempt)
    {
        let Some(model) = s.attr(&k.request_model).and_then(AttrValue::as_str) else {
            continue;
        };
        let Some(price) = world.prices.iter().find(|p| p.model == model) else {
            continue;
        };
        let int = |key: &str| match s.attr(key) {
            Some(AttrValue::Int(i)) => *i,
            _ => 0,
        };
        let cost = price.cost(
            int(&k.input_tokens),
            int(&k.cache_read_tokens),
            int(&k.output_tokens),
        );
        let cost = crate::export::session::round_cost(cost);
        s.set_attr(world.cost_key, AttrValue::Double(cost));
    }
}
