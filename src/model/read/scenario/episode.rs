//! Reads a scenario's `episode:` section (an environment episode, seed 001).

use crate::diag::Diags;
use crate::model::distribution::{Count, Distribution};
use crate::model::episode::EpisodeDef;
use crate::model::read::distribution::{read_count, read_latency, DEFAULT_VARIANCE};
use crate::yaml::{read_f64, read_prob, read_str, read_str_list, MapReader, Node};

/// Keys of `episode:`, for messages.
const EPISODE_KEYS: &str = "environment, timesteps, actions, observations, step_reward, goal_reward, success_rate, runtime, runtime_error_rate, llm_latency, step_latency, inject_pii";

/// `episode: {environment, timesteps, actions, observations, ...}`.
pub fn read_episode(node: &Node, d: &mut Diags) -> Option<EpisodeDef> {
    let mut r = MapReader::new(node, "episode", d)?;
    let environment = match r.get("environment") {
        Some(n) => read_str(n, &r.sub("environment"), d),
        None => {
            d.error(
                node.pos,
                "episode",
                format!("an episode needs `environment` (its name); keys: {EPISODE_KEYS}"),
            );
            None
        }
    };
    let timesteps = r
        .get("timesteps")
        .and_then(|n| read_count(n, &r.sub("timesteps"), d))
        .unwrap_or(Count::Fixed(10));
    let list =
        |r: &mut MapReader, key: &'static str, default: &[&str], d: &mut Diags| match r.get(key) {
            Some(n) => {
                let v = read_str_list(n, &r.sub(key), d);
                if v.is_empty() {
                    d.error(n.pos, &r.sub(key), "expected at least one entry");
                    return default.iter().map(|s| s.to_string()).collect();
                }
                v
            }
            None => default.iter().map(|s| s.to_string()).collect(),
        };
    let actions = list(&mut r, "actions", &["act"], d);
    let observations = list(
        &mut r,
        "observations",
        &["step {step}: {action} done, score {score}"],
        d,
    );
    let runtime = list(&mut r, "runtime", &["validate_action"], d);
    let num = |r: &mut MapReader, key: &'static str, default: f64, d: &mut Diags| {
        r.get(key)
            .and_then(|n| read_f64(n, &r.sub(key), d))
            .unwrap_or(default)
    };
    let step_reward = num(&mut r, "step_reward", 0.0, d);
    let goal_reward = num(&mut r, "goal_reward", 1.0, d);
    let prob = |r: &mut MapReader, key: &'static str, default: f64, d: &mut Diags| {
        r.get(key)
            .and_then(|n| read_prob(n, &r.sub(key), d))
            .unwrap_or(default)
    };
    let success_rate = prob(&mut r, "success_rate", 0.5, d);
    let runtime_error_rate = prob(&mut r, "runtime_error_rate", 0.0, d);
    let inject_pii = prob(&mut r, "inject_pii", 0.0, d);
    let latency = |r: &mut MapReader, key: &'static str, median: f64, d: &mut Diags| {
        r.get(key)
            .and_then(|n| read_latency(n, &r.sub(key), DEFAULT_VARIANCE, d))
            .unwrap_or(Distribution::LogNormal { median, sigma: 0.4 })
    };
    let llm_latency = latency(&mut r, "llm_latency", 700.0, d);
    let step_latency = latency(&mut r, "step_latency", 40.0, d);
    r.finish(d);
    Some(EpisodeDef {
        environment: environment?,
        timesteps,
        actions,
        observations,
        step_reward,
        goal_reward,
        success_rate,
        runtime,
        runtime_error_rate,
        llm_latency,
        step_latency,
        inject_pii,
    })
}
