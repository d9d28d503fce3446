//! An environment episode (seed 001): an agent acts in an environment for a
//! number of timesteps; each timestep is an LLM call that chooses the action,
//! the runtime's checks of it, and the environment's step (reward, termination,
//! state change, observation). A scenario's `episode:` section is this; it is
//! turned into an explicit span tree ([`EpisodeDef::root_step`]), so it runs
//! through the same plan and generator as every other scenario, and the
//! generator's episode pass (`generate::episode`) fills in what follows from
//! one step to the next (turn numbers, score, termination).
//!
//! One episode is one session and one trace: `<p>.episode` → `<p>.episode.timestep`
//! (one per timestep) → `<p>.llm.call`, `<p>.runtime.<operation>`,
//! `<p>.environment.step`.

use crate::diag::Pos;
use crate::model::distribution::{Count, Distribution};
use crate::model::scenario::{AttrSpec, ErrorDef, StepDef};
use crate::record::AttrValue;

/// `episode:` of a scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct EpisodeDef {
    /// `environment`: its name (`<p>.environment.name`, the origin of observations).
    pub environment: String,
    /// `timesteps`: how many turns an episode lasts (a number, or a count distribution).
    pub timesteps: Count,
    /// `actions`: what the agent may do; one is drawn per timestep.
    pub actions: Vec<String>,
    /// `observations`: what the environment answers; `{step}`, `{action}` and
    /// `{score}` are filled in.
    pub observations: Vec<String>,
    /// `step_reward`: the reward of an ordinary step.
    pub step_reward: f64,
    /// `goal_reward`: the reward of the last step when the episode succeeds.
    pub goal_reward: f64,
    /// `success_rate`: chance an episode reaches its goal (else it is cut at its length).
    pub success_rate: f64,
    /// `runtime`: operations the runtime runs on each action (`validate_action`).
    pub runtime: Vec<String>,
    /// `runtime_error_rate`: chance each runtime operation fails.
    pub runtime_error_rate: f64,
    /// `llm_latency`: latency of the agent's LLM call, in ms.
    pub llm_latency: Distribution,
    /// `step_latency`: latency of the environment's step, in ms.
    pub step_latency: Distribution,
    /// `inject_pii`: chance an observation carries personal data (an e-mail, a
    /// phone number, an SSN, a card number), to test masking.
    pub inject_pii: f64,
}

impl EpisodeDef {
    /// The span tree of one episode (every name under `vendor.`, which the
    /// compiler rewrites to the active prefix).
    pub fn root_step(&self, pos: Pos) -> StepDef {
        let step = |type_name: String, path: String, latency: Distribution| StepDef {
            type_name,
            pos,
            path,
            kind: None,
            latency: Some(latency),
            error: ErrorDef::default(),
            attributes: Vec::new(),
            children: Vec::new(),
            parallel: false,
            probability: 1.0,
            count: Count::Fixed(1),
            retry: None,
            service: None,
            call: None,
        };
        let base = "episode.timestep";
        let mut children = vec![step(
            "vendor.llm.call".into(),
            format!("{base}.llm"),
            self.llm_latency.clone(),
        )];
        for op in &self.runtime {
            let mut s = step(
                format!("vendor.runtime.{op}"),
                format!("{base}.runtime.{op}"),
                Distribution::LogNormal {
                    median: 12.0,
                    sigma: 0.4,
                },
            );
            s.error.rate = self.runtime_error_rate;
            s.error.propagate = false;
            s.attributes.push((
                "vendor.runtime.operation".into(),
                AttrSpec::Literal(AttrValue::str(op)),
                pos,
            ));
            children.push(s);
        }
        children.push(step(
            "vendor.environment.step".into(),
            format!("{base}.environment"),
            self.step_latency.clone(),
        ));
        let mut timestep = step(
            "vendor.episode.timestep".into(),
            base.into(),
            Distribution::Constant(1.0),
        );
        timestep.count = self.timesteps.clone();
        timestep.children = children;
        let mut root = step(
            "vendor.episode".into(),
            "episode".into(),
            Distribution::Constant(1.0),
        );
        root.children = vec![timestep];
        root
    }
}
