//! The episode pass: what an environment episode carries from one timestep to
//! the next, filled in once its span tree is generated. Each timestep span gets
//! its turn (`<p>.turn.index`, which the session store reads); each environment
//! step the agent's action, the reward, whether the episode ended, the state
//! before and after (step and score, as JSON) and the observation; the episode
//! span its environment, length, return and outcome.

use crate::model::episode::EpisodeDef;
use crate::record::{AttrValue, Key, SpanRecord};
use rand::Rng;

/// Personal data an observation may carry on purpose (`inject_pii`), so masking can be tested.
const PII: &[&str] = &[
    "reach me at jane.roe@example.com",
    "my SSN is 078-05-1120",
    "card 4111 1111 1111 1111 exp 04/29",
    "call me on (415) 555-0132",
    "or +1 212 555 0199",
];

/// Fills in the episode's step-by-step attributes (`prefix` is the active one).
pub fn annotate<R: Rng + ?Sized>(
    ep: &EpisodeDef,
    prefix: &str,
    agent: Option<&Key>,
    spans: &mut [SpanRecord],
    rng: &mut R,
) {
    let k = |s: &str| -> Key { Key::from(format!("{prefix}.{s}")) };
    let (episode, timestep, env_step) = (
        format!("{prefix}.episode"),
        format!("{prefix}.episode.timestep"),
        format!("{prefix}.environment.step"),
    );
    let steps: Vec<[u8; 8]> = spans
        .iter()
        .filter(|s| *s.name == *timestep)
        .map(|s| s.span_id)
        .collect();
    let n = steps.len();
    let success = rng.random_bool(ep.success_rate);
    let environment = AttrValue::str(&ep.environment);
    let mut score = 0.0f64;
    for (i, id) in steps.iter().enumerate() {
        let turn = i as i64 + 1;
        let last = i + 1 == n;
        for s in spans.iter_mut() {
            if s.span_id == *id {
                s.set_attr(k("turn.index"), AttrValue::Int(turn));
                continue;
            }
            if s.parent_span_id != Some(*id) || *s.name != *env_step {
                continue;
            }
            let action = &ep.actions[rng.random_range(0..ep.actions.len())];
            let reward = if last && success {
                ep.goal_reward
            } else {
                ep.step_reward
            };
            let before = serde_json::json!({"step": turn - 1, "score": round(score)});
            score += reward;
            let after = serde_json::json!({"step": turn, "score": round(score), "done": last});
            let template = &ep.observations[rng.random_range(0..ep.observations.len())];
            let mut observation = template
                .replace("{step}", &turn.to_string())
                .replace("{action}", action)
                .replace("{score}", &format!("{:.2}", round(score)));
            if ep.inject_pii > 0.0 && rng.random_bool(ep.inject_pii) {
                observation.push_str(&format!(" ({})", PII[rng.random_range(0..PII.len())]));
            }
            s.set_attr(k("environment.name"), environment.clone());
            s.set_attr(k("environment.action"), AttrValue::str(action));
            s.set_attr(k("environment.observation"), AttrValue::str(&observation));
            s.set_attr(k("environment.reward"), AttrValue::Double(reward));
            s.set_attr(k("environment.terminated"), AttrValue::Bool(last));
            s.set_attr(
                k("environment.state.before"),
                AttrValue::str(&before.to_string()),
            );
            s.set_attr(
                k("environment.state.after"),
                AttrValue::str(&after.to_string()),
            );
        }
    }
    if let Some(root) = spans.iter_mut().find(|s| *s.name == *episode) {
        if let Some(a) = agent {
            // The agent acting in the environment (the origin of its actions).
            root.set_attr(
                Key::from_static("gen_ai.agent.id"),
                AttrValue::Str((*a).into()),
            );
        }
        root.set_attr(k("environment.name"), environment);
        root.set_attr(k("episode.length"), AttrValue::Int(n as i64));
        root.set_attr(k("episode.return"), AttrValue::Double(round(score)));
        let outcome = if success && n > 0 {
            "success"
        } else {
            "truncated"
        };
        root.set_attr(k("episode.outcome"), AttrValue::str(outcome));
    }
}

/// Scores to 1e-6, so sums print the same everywhere.
fn round(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}
