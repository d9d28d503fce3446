//! `otelsim validate`'s coverage check: the attributes the conventions declare
//! for a span class that a scenario can never emit.
//!
//! Per scenario, every span class its plan makes (attempt spans included) is
//! matched with its declared attributes ([`declared_attrs`]); an attribute can
//! be emitted when the scenario sets it itself, when the generator always sets
//! it, or when its condition ([`When`]) can hold in that scenario: a failure
//! the plan can produce, a retry it can make, a tool it names, its agent, its
//! conversation samples and redaction. What is judged is what the plan allows,
//! not what one run happened to draw.
//!
//! Failure- and retry-only attributes are judged over the whole set: a happy
//! path is meant not to fail, so only a class that no scenario can make fail
//! (or retry) is reported for them. A span class no scenario makes is not
//! reported at all.

use super::attrs::{declared_attrs, When};
use crate::class::ClassOf;
use crate::diag::{Diagnostic, Diags, Pos};
use crate::model::semconv::Semconv;
use crate::plan::{Injection, Node, RetryPlan, ScenarioPlan, World};
use std::collections::{BTreeMap, BTreeSet};

/// What a plan node can do, as far as conditional attributes care.
#[derive(Clone, Copy, Default)]
struct Facts {
    /// The step's span can fail.
    fails: bool,
    /// One of its attempt spans can fail.
    attempt_fails: bool,
    /// It can make an attempt after the first.
    retries: bool,
}

/// Whether `n` (and each node below it) can fail, fail an attempt or retry;
/// `forced`: its parent can force a failure on it. Over-approximates: a
/// failure the plan makes possible at any rate counts. Returns whether `n` can fail.
fn analyse<'n>(n: &'n Node, forced: bool, out: &mut Vec<(&'n Node, Facts)>) -> bool {
    let slot = out.len();
    out.push((n, Facts::default()));
    let injected_step = matches!(n.injection, Some((_, Injection::FailStep { .. })));
    let injected_call = matches!(
        n.injection,
        Some((
            _,
            Injection::FailToolCall { .. } | Injection::WrongDivision { .. }
        ))
    );
    let own = n.error.rate > 0.0 || forced || injected_step;
    let mut cascade = false;
    let mut child_propagates = false;
    for c in &n.children {
        // Under attempts, children run under the last one and are never forced.
        let forced_c = n.retry.is_none() && (cascade || (own && c.error.from_parent > 0.0));
        let fails = analyse(c, forced_c, out);
        cascade |= fails && c.error.cascade_to_siblings > 0.0;
        child_propagates |= fails && c.error.propagate;
    }
    let mut f = Facts::default();
    match &n.retry {
        None => f.fails = own || child_propagates,
        Some(r) => {
            // (an attempt can fail, the last one can, a second attempt can happen)
            let (any, last, retries) = match &r.plan {
                RetryPlan::Random {
                    max_attempts,
                    force_initial_failure: force,
                    success_rate_per_attempt: rates,
                    retryable,
                    ..
                } => {
                    let rate = |i: usize| *rates.get(i).or(rates.last()).unwrap_or(&1.0);
                    let max = *max_attempts as usize;
                    let any = *force || (0..max.min(rates.len() + 1)).any(|i| rate(i) < 1.0);
                    // A failure that is not retryable ends the sequence early.
                    let last = rate(max.saturating_sub(1)) < 1.0
                        || (max == 1 && *force)
                        || (any && !retryable.is_empty());
                    (any, last, max > 1 && (*force || rate(0) < 1.0))
                }
                RetryPlan::Scripted(s) => (
                    s.iter().any(|a| !a.success),
                    s.last().is_some_and(|a| !a.success),
                    s.len() > 1 && s.first().is_some_and(|a| !a.success),
                ),
            };
            f.attempt_fails = any || injected_call || child_propagates;
            f.retries = retries;
            f.fails = own || last || injected_call || child_propagates;
        }
    }
    out[slot].1 = f;
    f.fails
}

/// Whether a span of `n` can name an MCP tool.
fn tool_known(n: &Node) -> bool {
    n.tool.is_some()
        || matches!(&n.injection, Some((_, Injection::WrongDivision { targets, .. })) if !targets.is_empty())
}

/// Why the condition of `w` never holds: in one scenario, or in any.
fn why_not(w: When, one: bool) -> &'static str {
    match (w, one) {
        (When::Always, _) => "yet it is not",
        (When::Failed, true) => "and this scenario cannot make one fail",
        (When::Failed, false) => "and no scenario can make one fail",
        (When::Retry, true) => "and this scenario retries none",
        (When::Retry, false) => "and no scenario retries one",
        (When::ToolKnown, true) => "and none of this scenario's does",
        (When::ToolKnown, false) => "and no scenario's does",
        (When::AgentNamed, true) => "and this scenario names none",
        (When::AgentNamed, false) => "and no scenario names one",
        (When::Content, true) => "and this scenario has none",
        (When::Content, false) => "and no scenario has any",
        (When::Redacted, true) => "and this scenario's redaction is `none`",
        (When::Redacted, false) => "and every scenario's redaction is `none`",
        (When::Succeeded, _) => "and no span of it can succeed",
        (When::Provider, _) => "and no model of llm.models has it",
    }
}

/// One declared attribute of one span class, over the scenarios that make the class.
struct Seen {
    /// When the generator emits it.
    when: Option<When>,
    /// Where it is declared.
    pos: Pos,
    /// Scenarios that make the class, and whether each can emit the attribute.
    by_scenario: BTreeMap<String, bool>,
}

/// One warning per (scenario or the whole set, span class, reason): the
/// declared attributes never emitted, each with the line it is declared on.
pub fn never_emitted(
    world: &World,
    sc: &Semconv,
    plans: &BTreeMap<String, ScenarioPlan>,
) -> Vec<Diagnostic> {
    // class name → key → what was seen.
    let mut seen: BTreeMap<String, BTreeMap<String, Seen>> = BTreeMap::new();
    // A v2 file says every attribute itself: the conventions' list is not its contract.
    for (name, plan) in plans.iter().filter(|(_, p)| p.semconv_fill) {
        let content = !plan.samples.is_empty() || !plan.turns.is_empty();
        let redacted = plan
            .samples
            .iter()
            .chain(&plan.turns)
            .any(|s| s.redacted.is_some());
        let mut nodes = Vec::new();
        // The scenario's traces and the ones turns have of their own.
        let own_parts = plan
            .turns
            .iter()
            .filter_map(|t| t.turn_parts.as_deref())
            .flat_map(|t| &t.parts);
        for part in plan.parts.iter().chain(own_parts) {
            analyse(&part.root, false, &mut nodes);
        }
        for (n, facts) in nodes {
            let mut spans = vec![(n.class, &*n.class_name, false)];
            if let Some(r) = &n.retry {
                let class = ClassOf {
                    class: n.class.class,
                    attempt: true,
                };
                spans.push((class, &*r.attempt_class, true));
            }
            for (class, class_name, attempt) in spans {
                let attrs = seen.entry(class_name.to_string()).or_default();
                for a in declared_attrs(world, sc, class, class_name) {
                    // A tool call's payloads ride on its attempts.
                    let payload = attempt
                        && n.tool_payload.as_ref().is_some_and(|p| match &*a.key {
                            "gen_ai.tool.call.arguments" => p.arguments.is_some(),
                            "gen_ai.tool.call.result" => p.result.is_some(),
                            _ => false,
                        });
                    let own = payload || (!attempt && n.attrs.iter().any(|(k, _)| **k == *a.key));
                    let can = own
                        || match a.when {
                            None => false,
                            Some(When::Always) => true,
                            Some(When::Failed) if attempt => facts.attempt_fails,
                            Some(When::Failed) => facts.fails,
                            Some(When::Retry) => attempt && facts.retries,
                            Some(When::ToolKnown) => tool_known(n),
                            Some(When::AgentNamed) => plan.agent_id.is_some(),
                            Some(When::Content) => content,
                            Some(When::Redacted) => redacted,
                            Some(When::Succeeded) => true,
                            Some(When::Provider) => world.model_sets(&a.key),
                        };
                    let s = attrs.entry(a.key.clone()).or_insert_with(|| Seen {
                        when: a.when,
                        pos: a.def.pos,
                        by_scenario: BTreeMap::new(),
                    });
                    *s.by_scenario.entry(name.clone()).or_default() |= can;
                }
            }
        }
    }
    // (scenario, or None for every scenario; class; reason) → attributes.
    type Group = (Option<String>, String, Option<When>);
    let mut groups: BTreeMap<Group, Vec<(String, Pos)>> = BTreeMap::new();
    for (class, attrs) in &seen {
        for (key, s) in attrs {
            let never: BTreeSet<&String> = s
                .by_scenario
                .iter()
                .filter(|(_, can)| !**can)
                .map(|(n, _)| n)
                .collect();
            if never.is_empty() {
                continue;
            }
            let entry = (key.clone(), s.pos);
            if never.len() == s.by_scenario.len() {
                groups
                    .entry((None, class.clone(), s.when))
                    .or_default()
                    .push(entry);
            } else if !matches!(s.when, Some(When::Failed | When::Retry)) {
                for n in never {
                    groups
                        .entry((Some(n.clone()), class.clone(), s.when))
                        .or_default()
                        .push(entry.clone());
                }
            }
        }
    }
    let mut d = Diags::new(sc.source.as_str());
    for ((scenario, class, when), mut attrs) in groups {
        attrs.sort_by_key(|(_, p)| (p.line, p.col));
        let list: Vec<String> = attrs
            .iter()
            .map(|(k, p)| match p.line {
                0 => format!("`{k}`"),
                l => format!("`{k}` (line {l})"),
            })
            .collect();
        let reason = match when {
            None => "otelsim's code owns it and sets it on no span of this class".to_string(),
            Some(w) => format!("{}, {}", w.condition(), why_not(w, scenario.is_some())),
        };
        let whom = match &scenario {
            Some(s) => format!("scenario `{s}`, span class `{class}`"),
            None => format!("span class `{class}` (every scenario that makes it)"),
        };
        d.warn(
            attrs[0].1,
            "",
            format!(
                "{whom}: declared attribute{} {} never emitted: {reason}",
                if list.len() == 1 { "" } else { "s" },
                list.join(", ")
            ),
        );
    }
    d.items
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;

    fn prepared(sources: &crate::registry::Sources) -> crate::run::Prepared {
        let opts = crate::plan::WorldOptions {
            vendor: "vendor".into(),
            ..Default::default()
        };
        crate::run::prepare(sources, &opts).expect("files load")
    }

    #[test]
    fn a_class_no_scenario_fails_is_reported_once_for_its_failure_attributes() {
        let p = prepared(&Default::default());
        let warnings = never_emitted(&p.world, &p.registry.semconv, &p.plans);
        let planner: Vec<&Diagnostic> = warnings
            .iter()
            .filter(|w| w.message.contains("`planner`"))
            .collect();
        assert_eq!(planner.len(), 1, "{warnings:#?}");
        let w = planner[0];
        assert!(w.message.contains("every scenario that makes it"), "{w}");
        assert!(w.message.contains("`error.type` (line "), "{w}");
        assert!(w.message.contains("`vendor.error.category` (line "), "{w}");
        assert!(w.message.contains("only on a failed span"), "{w}");
        assert!(w.line > 0, "points into the conventions: {w}");
        // A class some scenario makes fail is not reported for failures.
        assert!(
            !warnings
                .iter()
                .any(|w| w.message.contains("`mcp.tool.execute`")),
            "{warnings:#?}"
        );
    }

    #[test]
    fn a_scenario_without_its_agent_is_named_for_the_agent_attribute() {
        let mut p = prepared(&Default::default());
        let plan = p.plans.get_mut("new_claim_phone").expect("bundled");
        plan.agent_id = None;
        let warnings = never_emitted(&p.world, &p.registry.semconv, &p.plans);
        let w = warnings
            .iter()
            .find(|w| w.message.contains("vendor.a2a.agent.target.id"))
            .expect("the agent attribute is reported");
        assert!(
            w.message
                .starts_with("scenario `new_claim_phone`, span class `a2a.orchestrate`"),
            "{w}"
        );
        assert!(w.message.contains("context.agent"), "{w}");
    }

    #[test]
    fn a_declared_attribute_the_code_owns_and_never_derives_is_reported() {
        let reg = Registry::load(&Default::default()).expect("bundled files load");
        let mut d = Diags::new("test");
        let opts = crate::plan::WorldOptions {
            vendor: "vendor".into(),
            ..Default::default()
        };
        let mut sc = reg.semconv.clone();
        // `gen_ai.usage.input_tokens` only an LLM call's rule sets.
        let tokens = sc
            .section("llm_inference_attributes")
            .and_then(|a| a.iter().find(|a| a.name == "gen_ai.usage.input_tokens"))
            .cloned()
            .expect("declared");
        let planner = sc
            .sections
            .iter_mut()
            .find(|(n, _)| n == "planner_attributes")
            .expect("planner section");
        planner.1.push(tokens);
        let world = World::new(&reg.config, &sc, &opts, &mut d);
        let compiler = crate::plan::Compiler {
            world: &world,
            cfg: &reg.config,
            sc: &sc,
        };
        let mut plans = BTreeMap::new();
        for s in &reg.scenarios {
            if let Some(p) = compiler.scenario(s, &mut d) {
                plans.insert(s.name.clone(), p);
            }
        }
        let warnings = never_emitted(&world, &sc, &plans);
        let w = warnings
            .iter()
            .find(|w| w.message.contains("gen_ai.usage.input_tokens"))
            .expect("reported");
        assert!(w.message.contains("`planner`"), "{w}");
        assert!(w.message.contains("code owns it"), "{w}");
    }
}
