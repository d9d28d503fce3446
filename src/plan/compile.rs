//! Compile: scenario + config + semconv → a resolved `ScenarioPlan`.

use super::*;
use crate::class::{ClassOf, SpanClass, ATTEMPT_SUFFIX};
use crate::diag::{Diags, Pos};
use crate::model::config::{
    AttemptSpec, Config, CpStep, CpTemplate, LatencyProfile, McpServer, Sample,
};
use crate::model::scenario::{
    self, AttrSpec, ErrorDef, Format, RetryDef, ScenarioDef, StepDef, CONTENT_OUTLIER_GOALS,
};
use crate::model::semconv::Semconv;
use crate::plan::content::{higher_latency_attrs, payload_for, payload_text};

pub(super) fn key(s: &str) -> Key {
    Key::from(s)
}

/// The written name of a class the compiler builds itself.
pub(super) fn class_name(class: SpanClass) -> &'static str {
    class.name().unwrap_or("unknown")
}

/// Compiles every scenario against one world; compile problems are diagnostics.
pub struct Compiler<'a> {
    /// The world every scenario is resolved in (services, vendor prefix, overrides).
    pub world: &'a World,
    /// The config: tenants, MCP servers, latency profiles, control-plane templates.
    pub cfg: &'a Config,
    /// The semantic conventions that fill and check attributes.
    pub sc: &'a Semconv,
}

impl<'a> Compiler<'a> {
    /// Resolves one scenario into its plan; `None` (with errors in `d`) when it cannot run.
    pub fn scenario(&self, s: &ScenarioDef, d: &mut Diags) -> Option<ScenarioPlan> {
        let mut plan = match &s.v2 {
            Some(v) => self.v2(s, v, d),
            None => self.v1(s, d),
        }?;
        plan.intern_texts();
        Some(plan)
    }

    fn v1(&self, s: &ScenarioDef, d: &mut Diags) -> Option<ScenarioPlan> {
        let tenant = self.tenant_id(s);
        let mut goal = None;
        let server = s
            .overrides
            .mcp_server_key
            .as_deref()
            .or(s.context.mcp_server.as_deref())
            .or(s.mcp_server.as_deref())
            .and_then(|k| self.cfg.mcp_server(k))
            .or_else(|| self.cfg.mcp_servers.first());
        // The workflow: data_plane.workflow, context.workflow, context.correct_flow, or the default.
        let workflow: Option<(String, Vec<String>)> = s
            .data_plane
            .as_ref()
            .and_then(|dp| dp.workflow.clone())
            .or(s.context.workflow.clone())
            .and_then(|w| {
                self.cfg
                    .workflow_templates
                    .get(&w)
                    .map(|st| (w, st.clone()))
            })
            .or_else(|| {
                (!s.context.correct_flow.is_empty()).then(|| {
                    (
                        "context.correct_flow".to_string(),
                        s.context.correct_flow.clone(),
                    )
                })
            })
            .or_else(|| {
                let w = self.cfg.control_plane.default_data_plane_workflow.clone()?;
                self.cfg
                    .workflow_templates
                    .get(&w)
                    .map(|st| (w, st.clone()))
            });
        // A config workflow with a step that is no tool at all was reported when
        // config.yaml loaded; its scenarios are left out without more noise.
        if s.root.is_none()
            && workflow.as_ref().is_some_and(|(name, steps)| {
                self.cfg.workflow_step_pos.contains_key(name)
                    && steps.iter().any(|st| !self.is_step_or_tool(st))
            })
        {
            return None;
        }
        if let Some(root) = &s.root {
            if root.probability < 1.0 || root.count != Count::Fixed(1) {
                d.warn(root.pos, "root", "`probability` and `count` do not apply to the root step (every iteration has one root); they are ignored");
            }
        }
        // Goal `higher_latency` runs a happy-path profile as `higher_latency`.
        let written = s
            .data_plane
            .as_ref()
            .and_then(|dp| dp.latency_profile.as_deref());
        let profile_name = match (s.goal.as_deref(), written) {
            (Some("higher_latency"), None | Some("happy_path")) => Some("higher_latency"),
            (_, p) => p,
        };
        let profile = self.cfg.latency_profile(profile_name);
        let late = s.format == Format::LateV1;
        let content = SampleContent {
            system_prompt: s
                .data_plane
                .as_ref()
                .and_then(|dp| {
                    dp.llm_interactions
                        .first()
                        .and_then(|i| i.system_prompt.clone())
                })
                .or_else(|| self.cfg.llm_system_prompt.clone()),
            planner_output: s.data_plane.as_ref().and_then(|dp| {
                dp.llm_interactions
                    .iter()
                    .find(|i| i.role == "planner")
                    .and_then(|i| i.output.clone())
            }),
            events: late,
        };

        let mut parts = Vec::new();
        let cp_template = self.cp_template_id(s);
        let outcome = cp_template.as_deref().map(outcome_of_template);
        let flow: Vec<String> = match outcome {
            Some(o) if s.control_plane.is_some() || s.root.is_none() => self
                .cfg
                .control_plane
                .trace_flow
                .get(o)
                .cloned()
                .unwrap_or_default(),
            _ => vec!["data_plane".into()],
        };
        // An instability scenario lays out its own sessions (generate::instability).
        let flow = if s.instability.is_some() {
            Vec::new()
        } else {
            flow
        };
        for part in &flow {
            match part.as_str() {
                "incoming_validation" => {
                    if let Some(t) = cp_template
                        .as_deref()
                        .and_then(|id| self.cfg.control_plane.request_templates.get(id))
                    {
                        let mut root = self.cp_tree(SpanClass::RequestValidation, t, s, d);
                        root.content = late.then_some(ContentEvent::EnduserRequest);
                        parts.push(Part {
                            label: "incoming_validation",
                            root,
                        });
                    }
                }
                "response_validation" => {
                    if let Some(t) = self.cfg.control_plane.response_templates.get("allowed") {
                        let mut root = self.cp_tree(SpanClass::ResponseValidation, t, s, d);
                        root.content = late.then_some(ContentEvent::AgentResponse);
                        parts.push(Part {
                            label: "response_validation",
                            root,
                        });
                    }
                }
                "data_plane" => {
                    let root = if let Some(step) = &s.root {
                        let mut root = self.step(step, server, None, d);
                        self.explicit_tool_payloads(&mut root, s);
                        Some(root)
                    } else {
                        workflow
                            .as_ref()
                            .and_then(|(name, steps)| {
                                self.workflow(name, steps, s, server, profile, d)
                            })
                            .map(|(root, g)| {
                                goal = g;
                                root
                            })
                    };
                    if let Some(root) = root {
                        parts.push(Part {
                            label: "data_plane",
                            root,
                        });
                    }
                }
                _ => {}
            }
        }
        for part in &parts {
            let n = max_spans(&part.root);
            if n > MAX_SPANS_PER_TRACE {
                d.error(
                    s.root.as_ref().map_or(Pos::default(), |r| r.pos),
                    "root",
                    format!("this tree can produce up to {n:.0} spans in one trace (counts multiply down the tree); the limit is {MAX_SPANS_PER_TRACE:.0}: lower `count` or `max_attempts`"),
                );
                return None;
            }
        }
        if parts.is_empty() && s.instability.is_none() {
            d.error(Pos::default(), "", format!("scenario `{}` produces no trace (no root, workflow or control-plane template resolved)", s.name));
            return None;
        }
        if s.track_costs && !self.check_prices(s, d) {
            return None;
        }
        // In single-trace mode the parts of a request are one trace.
        let per_part = parts.iter().map(|p| max_spans(&p.root));
        let largest_trace = if self.cfg.control_plane.single_trace {
            per_part.sum()
        } else {
            per_part.fold(0.0, f64::max)
        };
        if largest_trace > LARGE_TRACE_SPANS {
            d.warn(
                s.root.as_ref().map_or(Pos::default(), |r| r.pos),
                if s.root.is_some() { "root" } else { "" },
                format!("one trace of up to {largest_trace:.0} spans: it will be sent in several requests (collectors accept about 4 MiB, roughly 10,000 spans, per gRPC request by default)"),
            );
        }
        let mut turns = planned(&s.turns, &s.redaction, &content, true);
        let has_data_plane = parts.iter().any(|p| p.label == "data_plane");
        for (turn, planned_turn) in s.turns.iter().zip(&mut turns) {
            let (Some(steps), Some((name, _)), true) = (&turn.steps, &workflow, has_data_plane)
            else {
                continue;
            };
            if let Some((root, goal)) = self.workflow(name, steps, s, server, profile, d) {
                // The turn's parts: the scenario's, with its own data-plane tree.
                let mut turn_parts = parts.clone();
                for p in turn_parts.iter_mut().filter(|p| p.label == "data_plane") {
                    p.root = root.clone();
                }
                planned_turn.turn_parts = Some(Arc::new(TurnParts {
                    parts: turn_parts,
                    goal,
                    by_window: Vec::new(),
                }));
            }
        }
        Some(ScenarioPlan {
            name: key(&s.name),
            scope: key(&format!("otelsim.{}", sanitize_scope(&s.name))),
            description: s.description.clone(),
            tenant_id: key(&tenant),
            agent_id: s.context.agent.as_deref().map(key),
            redaction: key(&s.redaction),
            parts,
            turns,
            samples: planned(
                &if s.samples.is_empty() {
                    let wf = workflow
                        .as_ref()
                        .map_or("default", |(name, _)| name.as_str());
                    self.cfg
                        .conversation_samples
                        .get(wf)
                        .or_else(|| self.cfg.conversation_samples.get("default"))
                        .cloned()
                        .unwrap_or_default()
                } else {
                    s.samples.clone()
                },
                &s.redaction,
                &content,
                false,
            ),
            repeat_count: s.repeat_count.max(1),
            interval_ms: s.interval_ms,
            interval_deviation_ms: s.interval_deviation_ms,
            emit_metrics: s.emit_metrics,
            emit_logs: s.emit_logs,
            goal,
            single_trace: self.cfg.control_plane.single_trace,
            cycle_samples: s.cycle_samples,
            windows: Vec::new(),
            semconv_fill: true,
            instability: s.instability.clone().map(Arc::new),
            reasoning: s
                .data_plane
                .as_ref()
                .and_then(|dp| dp.reasoning.clone())
                .map(Arc::new),
            episode: s.episode.clone().map(Arc::new),
            track_costs: s.track_costs,
        })
    }

    /// A scenario that tracks costs needs a price for every model its LLM calls
    /// may use (config.yaml `llm.models` with a weight above 0).
    fn check_prices(&self, s: &ScenarioDef, d: &mut Diags) -> bool {
        let priced: Vec<&str> = self.cfg.prices.iter().map(|p| p.model.as_str()).collect();
        let mut ok = true;
        for (i, m) in self.cfg.llm_models.iter().enumerate() {
            if m.weight > 0.0 && !priced.contains(&m.model.as_str()) {
                ok = false;
                d.error(
                    s.root.as_ref().map_or(Pos::default(), |r| r.pos),
                    "track_costs",
                    format!(
                        "scenario `{}` tracks costs, but config.yaml `prices` has no entry for model `{}` (llm.models[{i}]); priced models: {}",
                        s.name,
                        m.model,
                        if priced.is_empty() { "none".to_string() } else { priced.join(", ") }
                    ),
                );
            }
        }
        ok
    }

    /// `<prefix>.tenant.id`: --tenant-id beats context.tenant_uuid beats context.tenant
    /// (a config key).
    pub(super) fn tenant_id(&self, s: &ScenarioDef) -> String {
        self.world
            .tenant_override
            .clone()
            .or_else(|| s.context.tenant_uuid.clone())
            .or_else(|| {
                s.context
                    .tenant
                    .as_deref()
                    .and_then(|t| self.cfg.tenant(t))
                    .map(|t| t.id.clone())
            })
            .unwrap_or_else(|| "default".to_string())
    }

    fn cp_template_id(&self, s: &ScenarioDef) -> Option<String> {
        let cp = s.control_plane.as_ref();
        cp.and_then(|c| c.template.clone())
            .or_else(|| {
                s.data_plane
                    .as_ref()
                    .and_then(|dp| dp.control_plane_template.clone())
            })
            .or_else(|| {
                cp.and_then(|c| {
                    scenario::resolve_template_id(
                        c.request_outcome.as_deref(),
                        c.block_reason.as_deref(),
                    )
                })
            })
    }

    /// A new node with everything defaulted from its class, emitted under its
    /// plane's service (the component its role belongs to).
    pub(super) fn base_node(&self, written_type: &str, control_plane: bool) -> Node {
        let (name, class_name) = self.world.prefix.span_type(written_type);
        let class = ClassOf::parse(&class_name);
        let role = Role::of(class);
        let declared = self
            .sc
            .spans
            .iter()
            .find(|sd| self.world.prefix.class_of(&sd.name) == class_name)
            .and_then(|sd| sd.kind);
        let kind = role
            .genai_kind()
            .or(declared)
            .unwrap_or_else(|| match class.class {
                SpanClass::RequestValidation | SpanClass::ResponseValidation => SpanKind::Server,
                _ => role.default_kind(),
            });
        Node {
            name: key(&name),
            class_name: key(&class_name),
            class,
            role,
            kind,
            service: self.world.services.plane(control_plane, role.component()),
            latency: Distribution::Constant(1.0),
            error: self.error_model(
                &ErrorDef::default(),
                role,
                Pos::default(),
                "",
                &mut Diags::new(""),
            ),
            attrs: Vec::new(),
            events: Vec::new(),
            children: Vec::new(),
            parallel: false,
            probability: 1.0,
            count: Count::Fixed(1),
            retry: None,
            tool: None,
            task_type: None,
            fill: Vec::new(),
            injection: None,
            content: None,
            tool_payload: None,
            response_rule: false,
            verbatim: false,
            capture: true,
            llm_phase: LlmPhase::Single,
            tool_calls: Vec::new(),
            call_slot: None,
            response_status: ResponseStatus::None,
            service_call: false,
            handled_by: None,
        }
    }

    /// A generic step's error model (default `error.type`s: unavailable, timeout).
    pub(super) fn error_model_of(&self, st: &StepDef, d: &mut Diags) -> ErrorModel {
        self.error_model(&st.error, Role::Generic, st.pos, &st.path, d)
    }

    fn error_model(
        &self,
        e: &ErrorDef,
        role: Role,
        pos: Pos,
        path: &str,
        d: &mut Diags,
    ) -> ErrorModel {
        let types = if e.types.is_empty() {
            Categorical::new(
                role.default_error_types()
                    .iter()
                    .map(|(t, w)| (AttrValue::str(t), *w))
                    .collect(),
            )
        } else {
            Categorical::uniform(
                e.types
                    .iter()
                    .map(|t| {
                        self.world.normalise(
                            "error.type",
                            AttrValue::str(t),
                            pos,
                            &format!("{path}.error.types"),
                            d,
                        )
                    })
                    .collect(),
            )
        }
        .expect("non-empty error types");
        ErrorModel {
            rate: e.rate,
            types,
            propagate: e.propagate,
            from_parent: e.from_parent,
            cascade_to_siblings: e.cascade_to_siblings,
            message: e.message.as_deref().map(Arc::from),
            exception: None,
        }
    }

    pub(super) fn tool_ref(&self, server: &McpServer, tool_name: &str) -> Option<ToolRef> {
        let t = server.tools.iter().find(|t| t.name == tool_name)?;
        Some(ToolRef {
            name: key(&t.name),
            tool_uuid: key(&t.uuid),
            server_uuid: key(&server.uuid),
            server_tool_count: server.tools.len() as i64,
            server_address: key(&server.address.0),
            server_port: i64::from(server.address.1),
        })
    }

    /// An explicit `root:` step (recursively). A step runs in the service it
    /// names, else in its parent's named service, else in its plane's component.
    pub(super) fn step(
        &self,
        st: &StepDef,
        server: Option<&McpServer>,
        inherited: Option<ServiceId>,
        d: &mut Diags,
    ) -> Node {
        if let Some(call) = &st.call {
            return self.call(st, call, server, inherited, d);
        }
        let mut n = self.base_node(&st.type_name, false);
        if !self
            .sc
            .spans
            .iter()
            .any(|sd| *self.world.prefix.class_of(&sd.name) == *n.class_name)
        {
            d.warn(
                st.pos,
                &crate::yaml::join(&st.path, "type"),
                format!(
                    "`{}` is not in the semconv span_names; emitted as is",
                    n.name
                ),
            );
        }
        // The reader checked the name against config `services:`.
        let named = st
            .service
            .as_ref()
            .and_then(|(name, _)| self.world.services.declared(name))
            .or(inherited);
        if let Some(id) = named {
            n.service = id;
        }
        match (st.kind, n.role.genai_kind()) {
            (Some(k), Some(fixed)) if k != fixed => d.warn(
                st.pos,
                &crate::yaml::join(&st.path, "kind"),
                format!(
                    "the GenAI conventions give `{}` spans the kind {}; `{}` is ignored",
                    n.name,
                    fixed.as_str().to_ascii_lowercase(),
                    k.as_str().to_ascii_lowercase()
                ),
            ),
            (Some(k), _) => n.kind = k,
            (None, _) => {}
        }
        n.latency = st.latency.clone().unwrap_or(Distribution::MeanVariance {
            mean: crate::model::config::default_latency_ms(&n.class_name.replace('.', "_")),
            variance: 0.3,
            spike_rate: 0.0,
            spike_multiplier: 1.0,
        });
        n.error = self.error_model(&st.error, n.role, st.pos, &st.path, d);
        n.parallel = st.parallel;
        n.probability = st.probability;
        n.count = st.count.clone();
        for (k, spec, pos) in &st.attributes {
            let name = self.world.prefix.rewrite(k);
            let path = format!("{}.attributes.{k}", st.path);
            let gen = self.attr_gen(&name, spec, *pos, &path, d);
            n.attrs.push((key(&name), gen));
        }
        if matches!(n.role, Role::McpExecute) {
            if let Some(srv) = server {
                let wanted = st
                    .attributes
                    .iter()
                    .find_map(|(k, s, _)| match (k.as_str(), s) {
                        ("gen_ai.tool.name", AttrSpec::Literal(v)) => Some(v.to_string()),
                        _ => None,
                    });
                let tool = wanted
                    .as_deref()
                    .or(srv.tools.first().map(|t| t.name.as_str()));
                n.tool = tool.and_then(|t| self.tool_ref(srv, t));
            }
        }
        let attempt_name = key(&format!("{}.attempt", n.name));
        let attempt_class = key(&format!("{}{ATTEMPT_SUFFIX}", n.class_name));
        n.retry = match &st.retry {
            Some(r) => Some(self.random_retry(r, attempt_name, attempt_class, st, d)),
            // An MCP tool call always has at least one attempt span (semconv two-level model).
            None if n.role == Role::McpExecute => Some(Retry {
                plan: RetryPlan::Scripted(vec![ScriptedAttempt {
                    success: true,
                    error_type: key("tool_error"),
                    latency: n.latency.clone(),
                }]),
                attempt_name,
                attempt_class,
                attempt_latency: n.latency.clone(),
                backoff_base_ms: 100.0,
                backoff_multiplier: 2.0,
                backoff_jitter: 0.2,
            }),
            None => None,
        };
        if n.retry.is_some() {
            // A retried step's own span is the logical call: attempts carry the work.
            n.latency = Distribution::Constant(0.5);
        }
        n.children = st
            .children
            .iter()
            .map(|c| self.step(c, server, named, d))
            .collect();
        n
    }

    /// How a declared attribute's value is produced, its literals and choices
    /// normalised to the attribute's enum.
    pub(super) fn attr_gen(
        &self,
        name: &str,
        spec: &AttrSpec,
        pos: Pos,
        path: &str,
        d: &mut Diags,
    ) -> AttrGen {
        match spec {
            AttrSpec::Literal(v) => {
                AttrGen::Literal(self.world.normalise(name, v.clone(), pos, path, d))
            }
            AttrSpec::Categorical(c) => {
                let pairs: Vec<(AttrValue, f64)> = c
                    .values
                    .iter()
                    .zip(weights_of(&c.cumulative))
                    .map(|(v, w)| (self.world.normalise(name, v.clone(), pos, path, d), w))
                    .collect();
                AttrGen::Choice(Categorical::new(pairs).unwrap_or_else(|| c.clone()))
            }
            AttrSpec::Numeric { dist, integer } => match self.world.enum_choice(name) {
                // A number can never be an allowed value of an enum: draw from the enum instead.
                Some(choice) => {
                    d.warn(pos, path, format!("`{name}` is an enum; a numeric distribution cannot produce its values, so a random allowed value is emitted"));
                    AttrGen::Choice(choice)
                }
                None => AttrGen::Numeric {
                    dist: dist.clone(),
                    integer: *integer,
                },
            },
        }
    }

    fn random_retry(
        &self,
        r: &RetryDef,
        attempt_name: Key,
        attempt_class: Key,
        st: &StepDef,
        d: &mut Diags,
    ) -> Retry {
        let types = if r.error_types.is_empty() {
            Categorical::uniform(vec![
                AttrValue::str("timeout"),
                AttrValue::str("unavailable"),
            ])
        } else {
            Categorical::uniform(
                r.error_types
                    .iter()
                    .map(|t| {
                        self.world.normalise(
                            "error.type",
                            AttrValue::str(t),
                            st.pos,
                            &format!("{}.retry.error_types", st.path),
                            d,
                        )
                    })
                    .collect(),
            )
        }
        .expect("non-empty");
        Retry {
            plan: RetryPlan::Random {
                max_attempts: r.max_attempts,
                force_initial_failure: r.force_initial_failure,
                success_rate_per_attempt: r.success_rate_per_attempt.clone(),
                error_types: types,
                retryable: st
                    .error
                    .retryable_types
                    .iter()
                    .map(|t| {
                        let v = self.world.normalise(
                            "error.type",
                            AttrValue::str(t),
                            st.pos,
                            &format!("{}.error.retryable_types", st.path),
                            d,
                        );
                        key(&v.to_string())
                    })
                    .collect(),
            },
            attempt_latency: st.latency.clone().unwrap_or(Distribution::MeanVariance {
                mean: 150.0,
                variance: 0.3,
                spike_rate: 0.0,
                spike_multiplier: 1.0,
            }),
            attempt_name,
            attempt_class,
            backoff_base_ms: r.backoff_base_ms,
            backoff_multiplier: r.backoff_multiplier,
            backoff_jitter: r.backoff_jitter,
        }
    }

    /// A data-plane node of a known class, its latency from the profile (the
    /// profile's key is the class name with `_` for `.`: `llm_call`).
    fn latency_node(&self, profile: &LatencyProfile, class: SpanClass) -> Node {
        let name = class_name(class);
        let mut n = self.base_node(name, false);
        n.latency = profile.get(&name.replace('.', "_"));
        n
    }

    /// A `data_plane.workflow` from config: orchestrate → steps, as sequential children.
    fn workflow(
        &self,
        wf: &str,
        steps: &[String],
        s: &ScenarioDef,
        server: Option<&McpServer>,
        profile: &LatencyProfile,
        d: &mut Diags,
    ) -> Option<(Node, Option<GoalPlan>)> {
        let goal_name = s.goal.as_deref().unwrap_or("happy_path");
        // Where the workflow's own steps are written in config.yaml (steps a
        // scenario writes itself have no entry): their problems are reported there.
        let config_pos = |step_index: usize| -> Option<Pos> {
            self.cfg
                .workflow_step_pos
                .get(wf)
                .and_then(|p| p.get(step_index))
                .copied()
        };
        let reshapes = matches!(goal_name, "partial_workflow" | "recommendation_failure");
        let mut steps: Vec<(String, Option<(usize, Pos)>)> =
            match (&s.overrides.actual_steps, reshapes) {
                (Some(actual), true) => actual.iter().map(|st| (st.clone(), None)).collect(),
                (None, true) => {
                    for i in &s.overrides.skip_steps {
                        if *i as usize >= steps.len() {
                            d.error(
                                Pos::default(),
                                "realistic_overrides.skip_steps",
                                format!(
                                    "index {i} is outside workflow `{wf}` (steps 0..{})",
                                    steps.len()
                                ),
                            );
                        }
                    }
                    steps
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| !s.overrides.skip_steps.contains(&(*i as u32)))
                        .map(|(i, st)| (st.clone(), config_pos(i).map(|p| (i, p))))
                        .collect()
                }
                _ => steps
                    .iter()
                    .enumerate()
                    .map(|(i, st)| (st.clone(), config_pos(i).map(|p| (i, p))))
                    .collect(),
            };
        // `context.tools: []`: the turn calls no tool, so nothing recommends one either.
        if s.context.tools.as_ref().is_some_and(|(_, t)| t.is_empty()) {
            steps.retain(|(st, _)| {
                !matches!(step_kind(st), StepKind::Tool | StepKind::ToolsRecommend)
            });
        }
        let late = s.format == Format::LateV1;
        let injector = GoalInjector::new(self, s, goal_name, server, d);
        // otelsim's own format runs an agent loop: the LLM asks for the tools, they run,
        // and a second LLM call answers from their results. The predecessor's later
        // formats keep their one LLM call.
        let last_tool = steps
            .iter()
            .rposition(|(st, _)| step_kind(st) == StepKind::Tool);
        let agent_loop = s.format == Format::V1
            && last_tool.is_some()
            && steps.iter().any(|(st, _)| step_kind(st) == StepKind::Llm);
        // The turn's tool calls in order, each with its payloads (rendered once: the LLM
        // quotes them and the tool spans carry them).
        let payloads: Vec<Option<ToolPayload>> = steps
            .iter()
            .filter(|(st, _)| step_kind(st) == StepKind::Tool)
            .map(|(st, _)| self.tool_payload(s, st))
            .collect();
        let tool_calls: Vec<ToolCall> = steps
            .iter()
            .filter(|(st, _)| step_kind(st) == StepKind::Tool)
            .zip(&payloads)
            .map(|((st, _), p)| {
                let p = p.as_ref();
                ToolCall::new(
                    st,
                    p.and_then(|p| p.arguments.as_ref()),
                    p.and_then(|p| p.result.as_ref()),
                )
            })
            .collect();
        let mut tool_slots = 0u32;
        let first_tool = steps
            .iter()
            .map(|(st, _)| st)
            .find(|st| step_kind(st) == StepKind::Tool)
            .cloned();
        let mut root = self.latency_node(profile, SpanClass::Orchestrate);
        root.response_rule = late;
        if let Some(cond) = s
            .data_plane
            .as_ref()
            .and_then(|dp| dp.higher_latency_condition.as_ref())
        {
            for (k, v) in higher_latency_attrs(cond, &self.world.prefix) {
                root.attrs.push((key(&k), AttrGen::Literal(v)));
            }
        }
        let retry_script = s.data_plane.as_ref().and_then(|dp| dp.mcp_retry.clone());
        let mut recommend_slots = 0u32;
        for (index, (step, written)) in steps.iter().enumerate() {
            let child = match step_kind(step) {
                StepKind::Planner => self.latency_node(profile, SpanClass::Planner),
                StepKind::Llm => {
                    let mut llm = self.latency_node(profile, SpanClass::LlmCall);
                    if let (Some(srv), Some(t)) = (server, &first_tool) {
                        llm.tool = self.tool_ref(srv, t);
                    }
                    self.count_attr(&mut llm, "llm.tool.request.count", tool_calls.len());
                    if agent_loop {
                        llm.llm_phase = LlmPhase::ToolRequest;
                        llm.tool_calls = tool_calls.clone();
                    }
                    self.task("llm_call", llm, profile, late)
                }
                StepKind::ToolsRecommend => {
                    let mut tr = self.latency_node(profile, SpanClass::ToolsRecommend);
                    if let (Some(srv), Some(t)) = (server, &first_tool) {
                        tr.tool = self.tool_ref(srv, t);
                    }
                    if tool_calls.len() > 1 {
                        tr.tool_calls = tool_calls.clone();
                    }
                    if let Some(inj) = injector.recommend_injection() {
                        tr.injection = Some((recommend_slots, inj));
                    }
                    recommend_slots += 1;
                    let tcfg = &self.cfg.tools_recommend;
                    let k = &self.world.keys;
                    let mut lit = |key_: &Key, v: AttrValue, path: &str, d: &mut Diags| {
                        let v = self.world.normalise(key_, v, Pos::default(), path, d);
                        tr.attrs.push((*key_, AttrGen::Literal(v)));
                    };
                    lit(
                        &k.selection_strategy,
                        AttrValue::str(&tcfg.selection_strategy),
                        "tools_recommend.selection_strategy",
                        d,
                    );
                    lit(
                        &k.selection_constraints,
                        AttrValue::str(&tcfg.selection_constraints),
                        "tools_recommend.selection_constraints",
                        d,
                    );
                    lit(
                        &k.tools_selected,
                        AttrValue::Int(tcfg.tools_selected_count as i64),
                        "tools_recommend.tools_selected_count",
                        d,
                    );
                    lit(
                        &k.step_outcome,
                        AttrValue::str(&tcfg.step_outcome),
                        "tools_recommend.step_outcome",
                        d,
                    );
                    lit(
                        &k.selection_fallback,
                        AttrValue::Bool(tcfg.selection_fallback_used),
                        "tools_recommend.selection_fallback_used",
                        d,
                    );
                    self.task("tool_recommendation", tr, profile, late)
                }
                StepKind::Compose => {
                    let mut c = self.latency_node(profile, SpanClass::ResponseCompose);
                    c.attrs.push((
                        self.world.keys.response_format,
                        AttrGen::Literal(AttrValue::str("a2a_json")),
                    ));
                    c.injection = injector.compose_injection().map(|inj| (0, inj));
                    c
                }
                StepKind::Tool => {
                    let Some(srv) = server else {
                        d.error(Pos::default(), "context.mcp_server", format!("workflow `{wf}` calls tool `{step}` but the scenario names no MCP server (context.mcp_server)"));
                        continue;
                    };
                    let Some(tool) = self.tool_ref(srv, step) else {
                        let message = format!(
                            "step `{step}` is neither a built-in step (planner, task, tools_recommend, response_compose) nor a tool of MCP server `{}` ({}), which scenario `{}` uses",
                            srv.key,
                            srv.tools.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(", "),
                            s.name
                        );
                        match written {
                            Some((i, pos)) => d.error_in(
                                &self.cfg.source,
                                *pos,
                                &format!("realistic_scenarios.workflow_templates.{wf}[{i}]"),
                                message,
                            ),
                            // Steps the scenario lists itself.
                            None => d.error(
                                Pos::default(),
                                if s.overrides.actual_steps.is_some() {
                                    "realistic_overrides.actual_steps"
                                } else {
                                    "context.correct_flow"
                                },
                                message,
                            ),
                        }
                        continue;
                    };
                    let mut mcp = self.mcp_call(tool, retry_script.as_deref(), profile);
                    if let Some(inj) = injector.tool_injection(self, step, d) {
                        mcp.injection = Some((tool_slots, inj));
                    }
                    tool_slots += 1;
                    self.count_attr(&mut mcp, "llm.tool.execution.count", tool_slots as usize);
                    mcp.tool_payload = payloads.get(tool_slots as usize - 1).cloned().flatten();
                    mcp.call_slot = Some(tool_slots - 1);
                    self.task("tool_execution", mcp, profile, late)
                }
            };
            root.children.push(child);
            // The answering LLM call, once the last tool has returned.
            if agent_loop && Some(index) == last_tool {
                let mut answer = self.latency_node(profile, SpanClass::LlmCall);
                answer.llm_phase = LlmPhase::Answer;
                answer.tool_calls = tool_calls.clone();
                root.children
                    .push(self.task("llm_call", answer, profile, late));
            }
        }
        let has_compose = steps
            .iter()
            .any(|(st, _)| step_kind(st) == StepKind::Compose);
        let goal = injector.plan(tool_slots, has_compose, recommend_slots, d);
        Some((root, goal))
    }

    /// A count the semconv file declares (`llm.tool.request.count`, ...) as a literal
    /// attribute; nothing when the conventions do not declare it.
    fn count_attr(&self, n: &mut Node, short: &str, count: usize) {
        let name = self.world.prefix.attr(short);
        if self.world.semconv_declares(&name) {
            n.attrs
                .push((key(&name), AttrGen::Literal(AttrValue::Int(count as i64))));
        }
    }

    /// The payloads of every tool call in an explicit `root:` tree: the scenario's,
    /// else the config's samples of the tool, as a workflow's tool calls get them.
    fn explicit_tool_payloads(&self, n: &mut Node, s: &ScenarioDef) {
        if n.role == Role::McpExecute && n.tool_payload.is_none() {
            if let Some(t) = &n.tool {
                n.tool_payload = self.tool_payload(s, &t.name);
            }
        }
        for c in &mut n.children {
            self.explicit_tool_payloads(c, s);
        }
    }

    /// `context.tool_call_arguments` / `tool_call_results` for `tool`, rendered.
    fn tool_payload(&self, s: &ScenarioDef, tool: &str) -> Option<ToolPayload> {
        let render = |map: &[(String, crate::yaml::Node)]| {
            payload_for(map, tool).map(|n| payload_text(n, &s.redaction))
        };
        // Else the config's sample payloads of the tool (`mcp_tool_genai_payloads`).
        let contract = self.cfg.tool_payloads.get(tool);
        let sample = |c: Option<&crate::model::config::PayloadContract>| {
            c.filter(|c| !c.sample.is_empty()).map(|c| {
                let node = crate::yaml::Node {
                    pos: Pos::default(),
                    key_pos: Pos::default(),
                    kind: crate::yaml::Kind::Map(c.sample.clone()),
                };
                payload_text(&node, &s.redaction)
            })
        };
        let own_result = render(&s.context.tool_call_results);
        let p = ToolPayload {
            arguments: render(&s.context.tool_call_arguments)
                .or_else(|| sample(contract.and_then(|c| c.arguments.as_ref()))),
            result_is_sample: own_result.is_none(),
            result: own_result.or_else(|| sample(contract.and_then(|c| c.result.as_ref()))),
        };
        (p.arguments.is_some() || p.result.is_some()).then_some(p)
    }

    /// Whether a workflow step is a built-in step or a tool of some MCP server.
    fn is_step_or_tool(&self, step: &str) -> bool {
        step_kind(step) != StepKind::Tool
            || self
                .cfg
                .mcp_servers
                .iter()
                .any(|srv| srv.tools.iter().any(|t| t.name == step))
    }

    /// Wraps a step in a `task.execute` span of the given task type. `late`: the
    /// wrapper does not take its step's failure (the turn's response rule reports it).
    fn task(&self, task_type: &str, mut inner: Node, profile: &LatencyProfile, late: bool) -> Node {
        let mut t = self.latency_node(profile, SpanClass::TaskExecute);
        t.task_type = Some(key(task_type));
        if late {
            inner.error.propagate = false;
        }
        t.children.push(inner);
        t
    }

    fn mcp_call(
        &self,
        tool: ToolRef,
        script: Option<&[AttemptSpec]>,
        profile: &LatencyProfile,
    ) -> Node {
        let mut n = self.base_node(class_name(SpanClass::McpToolExecute), false);
        n.latency = Distribution::Constant(0.5);
        let attempt_latency = profile.get("mcp_tool_execute");
        let default_script = [AttemptSpec {
            success: true,
            error_type: None,
            latency_mean_ms: None,
        }];
        let attempts = script.unwrap_or(&default_script);
        let by_type = &self.cfg.mcp_retry.latency_by_error_type;
        let scripted = attempts
            .iter()
            .map(|a| {
                let et = a.error_type.clone().unwrap_or_else(|| "timeout".into());
                let et = closest_allowed(&AttrValue::str(&et), &self.world.enums["error.type"])
                    .to_string();
                let latency = match (a.latency_mean_ms, a.success) {
                    (Some(ms), _) => mean_var(ms, 0.2),
                    (None, false) => by_type
                        .get(&et)
                        .map_or(attempt_latency.clone(), |ms| mean_var(*ms, 0.1)),
                    (None, true) => attempt_latency.clone(),
                };
                ScriptedAttempt {
                    success: a.success,
                    error_type: key(&et),
                    latency,
                }
            })
            .collect();
        n.retry = Some(Retry {
            plan: RetryPlan::Scripted(scripted),
            attempt_name: key(&format!("{}.attempt", n.name)),
            attempt_class: key(&format!("{}{ATTEMPT_SUFFIX}", n.class_name)),
            attempt_latency,
            backoff_base_ms: self.cfg.mcp_retry.backoff_base_ms,
            backoff_multiplier: self.cfg.mcp_retry.backoff_multiplier,
            backoff_jitter: self.cfg.mcp_retry.backoff_jitter,
        });
        n.tool = Some(tool);
        n
    }

    /// A control-plane validation tree from a template.
    fn cp_tree(
        &self,
        root_class: SpanClass,
        t: &CpTemplate,
        s: &ScenarioDef,
        d: &mut Diags,
    ) -> Node {
        let root_class = class_name(root_class);
        let lat = |k: &str| {
            mean_var(
                self.cfg
                    .control_plane
                    .latencies_ms
                    .get(k)
                    .copied()
                    .unwrap_or(20.0),
                0.2,
            )
        };
        let mut root = self.cp_node(
            root_class,
            &t.root,
            lat(&root_class.replace('.', "_")),
            None,
            s,
            d,
        );
        root.error.propagate = false;
        let steps: [(SpanClass, &Option<CpStep>); 3] = [
            (SpanClass::ValidationPayload, &t.payload),
            (SpanClass::ValidationPolicy, &t.policy),
            (SpanClass::Augmentation, &t.augmentation),
        ];
        for (class, step) in steps {
            if let Some(st) = step {
                let cp = s.control_plane.as_ref();
                let exc = match class {
                    SpanClass::ValidationPolicy => cp.and_then(|c| c.policy_exception.clone()),
                    SpanClass::Augmentation => cp.and_then(|c| {
                        let (ty, msg) = &c.augmentation_exception;
                        (ty.is_some() || msg.is_some()).then(|| {
                            let base = st.exception.clone().unwrap_or_default();
                            crate::model::config::ExceptionSpec {
                                type_name: ty.clone().unwrap_or(if base.type_name.is_empty() {
                                    "AugmentationError".to_string()
                                } else {
                                    base.type_name
                                }),
                                message: msg.clone().unwrap_or(base.message),
                            }
                        })
                    }),
                    _ => None,
                };
                let name = class_name(class);
                let mut child = self.cp_node(name, st, lat(&name.replace('.', "_")), exc, s, d);
                // A failed validation step does not fail the request span: its outcome says what happened.
                child.error.propagate = false;
                root.children.push(child);
            }
        }
        root
    }

    fn cp_node(
        &self,
        class: &str,
        st: &CpStep,
        latency: Distribution,
        exc_override: Option<crate::model::config::ExceptionSpec>,
        s: &ScenarioDef,
        d: &mut Diags,
    ) -> Node {
        let mut n = self.base_node(class, true);
        n.role = Role::ControlPlane;
        n.latency = latency;
        n.error.rate = st.error_rate;
        let exc = exc_override.or_else(|| st.exception.clone());
        if let Some(e) = &exc {
            n.error.exception = Some((
                Arc::from(e.type_name.as_str()),
                Arc::from(e.message.as_str()),
            ));
            let lower = e.type_name.to_ascii_lowercase();
            let et = if lower.contains("timeout") {
                "timeout"
            } else if lower.contains("unavailable") {
                "unavailable"
            } else {
                "tool_error"
            };
            n.error.types = Categorical::uniform(vec![AttrValue::str(et)]).expect("one");
        }
        let step_key = self.world.keys.step_outcome;
        let cp_key = self.world.keys.step_outcome_cp;
        let cp_allowed: Vec<AttrValue> =
            self.world.enums.get(&*cp_key).cloned().unwrap_or_else(|| {
                ["pass", "fail", "block", "skip"]
                    .iter()
                    .map(|v| AttrValue::str(v))
                    .collect()
            });
        for (k, v) in &st.attrs {
            let name = self.world.prefix.attr(k);
            let path = format!("{}: template attribute {k}", s.name);
            if *name == *step_key || *name == *cp_key {
                // Templates speak the control-plane outcome (pass/fail/block/skip): it goes to
                // `step.outcome.cp` exactly, and `step.outcome` keeps the spec's success/fail/skipped.
                let cp = if cp_allowed.contains(v) {
                    v.clone()
                } else {
                    let fixed = closest_allowed(v, &cp_allowed);
                    d.warn(
                        Pos::default(),
                        &path,
                        format!("`{v}` is not a control-plane step outcome; emitted as `{fixed}`"),
                    );
                    fixed
                };
                let step = match cp.as_str().unwrap_or("") {
                    "pass" => "success",
                    "skip" => "skipped",
                    _ => "fail",
                };
                n.attrs.push((cp_key, AttrGen::Literal(cp)));
                n.attrs
                    .push((step_key, AttrGen::Literal(AttrValue::str(step))));
                continue;
            }
            let v = self
                .world
                .normalise(&name, v.clone(), Pos::default(), &path, d);
            n.attrs.push((key(&name), AttrGen::Literal(v)));
        }
        for ve in &st.validation_errors {
            n.events.push(EventPlan {
                name: key(&self.world.prefix.attr("validation.error")),
                attrs: vec![
                    (
                        key(&self.world.prefix.attr("validation.error.path")),
                        AttrValue::str(&ve.path),
                    ),
                    (
                        key(&self.world.prefix.attr("validation.error.rule")),
                        AttrValue::str(&ve.rule),
                    ),
                    (
                        key(&self.world.prefix.attr("validation.error.code")),
                        AttrValue::str(&ve.code),
                    ),
                ],
                sampled: Vec::new(),
                probability: 1.0,
            });
        }
        n
    }
}

fn planned(
    samples: &[Sample],
    redaction: &str,
    content: &SampleContent,
    turns: bool,
) -> Vec<PlannedSample> {
    samples
        .iter()
        .enumerate()
        .map(|(i, s)| {
            // A scripted turn's LLM calls see the conversation so far.
            let history = if turns { &samples[..i] } else { &[] };
            PlannedSample::new(s, redaction, content, turns, history)
        })
        .collect()
}

/// Upper bound on spans in one trace, so a typo in nested counts cannot exhaust memory.
pub const MAX_SPANS_PER_TRACE: f64 = 100_000.0;

/// Traces that can have more spans than this get a warning: one such trace no
/// longer fits one export request a collector accepts by default.
pub const LARGE_TRACE_SPANS: f64 = 5_000.0;

/// The most spans one instance of `n` can produce.
fn max_spans(n: &Node) -> f64 {
    let attempts = match &n.retry {
        Some(Retry {
            plan: RetryPlan::Random { max_attempts, .. },
            ..
        }) => f64::from(*max_attempts),
        Some(Retry {
            plan: RetryPlan::Scripted(s),
            ..
        }) => s.len() as f64,
        None => 0.0,
    };
    let children: f64 = n
        .children
        .iter()
        .map(|c| {
            let count = match &c.count {
                Count::Fixed(k) => f64::from(*k),
                Count::Sampled { max, .. } => f64::from(*max),
            };
            count * max_spans(c)
        })
        .sum();
    // Children go under one attempt only; with no retry they go under the span itself.
    1.0 + attempts + children
}

fn mean_var(mean: f64, variance: f64) -> Distribution {
    Distribution::MeanVariance {
        mean,
        variance,
        spike_rate: 0.0,
        spike_multiplier: 1.0,
    }
}

fn weights_of(cumulative: &[f64]) -> Vec<f64> {
    let mut prev = 0.0;
    cumulative
        .iter()
        .map(|c| {
            let w = c - prev;
            prev = *c;
            w
        })
        .collect()
}

/// Template id → trace-flow outcome (allowed / blocked / error).
pub fn outcome_of_template(id: &str) -> &'static str {
    if id == "error" || id.starts_with("error_") {
        "error"
    } else if id.starts_with("blocked") {
        "blocked"
    } else {
        "allowed"
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StepKind {
    Planner,
    Llm,
    ToolsRecommend,
    Compose,
    Tool,
}

fn step_kind(step: &str) -> StepKind {
    match step {
        "planner" | "planning" => StepKind::Planner,
        "task" | "task_execute" | "task.execute" | "llm" | "llm_call" => StepKind::Llm,
        "tools_recommend" | "tools.recommend" => StepKind::ToolsRecommend,
        "response_compose" | "response" | "response.compose" => StepKind::Compose,
        _ => StepKind::Tool,
    }
}

/// Instrumentation scope names are limited to `[A-Za-z0-9_.-]`, at most 128 chars.
pub fn sanitize_scope(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(128)
        .collect()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GoalKind {
    None,
    /// `4xx_invalid_arguments`, and `error_pattern` tool failures.
    FailTool,
    WrongDivision,
    /// `ungrounded_response`, `partial_workflow`.
    FailCompose,
    /// `recommendation_failure`: the tool recommendation cannot resolve a capability.
    FailRecommend,
}

/// Turns a simulation goal (or `context.error_pattern`) into injections on
/// workflow steps, with values from `realistic_scenarios.error_templates`.
struct GoalInjector {
    kind: GoalKind,
    name: String,
    error_type: Key,
    http_status: Vec<i64>,
    latency: Distribution,
    /// Fixed tool-step index, `Some(u32::MAX)` meaning "the last one".
    fixed: Option<u32>,
    rate: f64,
    correct_server: Option<String>,
    target_server: Option<String>,
    exception: Option<(Arc<str>, Arc<str>)>,
}

impl GoalInjector {
    fn new(
        c: &Compiler<'_>,
        s: &ScenarioDef,
        goal: &str,
        server: Option<&McpServer>,
        d: &mut Diags,
    ) -> Self {
        let tmpl = c.cfg.error_templates.get(goal).cloned().unwrap_or_default();
        let pattern = s.context.error_pattern.as_deref().unwrap_or("none");
        let (kind, default_type, fixed, rate) = match goal {
            "4xx_invalid_arguments" => (
                GoalKind::FailTool,
                "invalid_arguments",
                s.overrides.step_index_for_4xx,
                1.0,
            ),
            "wrong_division" => (
                GoalKind::WrongDivision,
                "tool_error",
                s.overrides.step_index_wrong_division,
                1.0,
            ),
            "ungrounded_response" => (GoalKind::FailCompose, "unavailable", Some(0), 1.0),
            "partial_workflow" => (GoalKind::FailCompose, "tool_error", Some(0), 1.0),
            "recommendation_failure" => (
                GoalKind::FailRecommend,
                "capability_resolution_error",
                Some(0),
                1.0,
            ),
            // Latency and content goals inject no failure (an error pattern still may).
            g if g == "higher_latency" || CONTENT_OUTLIER_GOALS.contains(&g) || g == "none" => {
                GoalInjector::pattern(s)
            }
            _ => GoalInjector::pattern(s),
        };
        let raw = if kind == GoalKind::FailTool && goal != "4xx_invalid_arguments" {
            default_type.to_string()
        } else {
            tmpl.error_type
                .clone()
                .unwrap_or_else(|| default_type.to_string())
        };
        let path = format!("realistic_scenarios.error_templates.{goal}.error_type");
        // A failed recommendation's type is its own (the conventions name it in the
        // recommendation's failure rule, not in the tool-call enum).
        let error_type = if kind == GoalKind::FailRecommend && raw == default_type {
            raw
        } else {
            c.world
                .normalise("error.type", AttrValue::str(&raw), Pos::default(), &path, d)
                .to_string()
        };
        let http_status = if goal == "4xx_invalid_arguments" {
            if tmpl.http_status_codes.is_empty() {
                vec![400]
            } else {
                tmpl.http_status_codes.clone()
            }
        } else {
            Vec::new()
        };
        let ms = c
            .cfg
            .mcp_retry
            .latency_by_error_type
            .get(&error_type)
            .copied()
            .unwrap_or(100.0);
        let target_server = s
            .overrides
            .wrong_division_target
            .as_deref()
            .and_then(|t| c.cfg.division_server(t))
            .map(String::from);
        // The division the workflow really uses (mcp_server_key, context, top-level, first).
        let correct_server = server
            .map(|srv| srv.key.clone())
            .or_else(|| s.mcp_server.clone());
        // The predecessor's later files may name the scenario's own server as the target:
        // the call goes there, and fails.
        if kind == GoalKind::WrongDivision
            && s.format == Format::V1
            && target_server.is_some()
            && target_server == correct_server
        {
            d.error(
                Pos::default(),
                "realistic_overrides.wrong_division_target",
                "names the scenario's own division; wrong_division needs another one",
            );
        }
        GoalInjector {
            kind,
            name: if kind == GoalKind::None {
                String::new()
            } else if goal == "happy_path" {
                format!("error_pattern:{pattern}")
            } else {
                goal.to_string()
            },
            error_type: key(&error_type),
            http_status,
            latency: mean_var(ms, 0.1),
            fixed,
            rate,
            correct_server,
            target_server,
            exception: Self::exception(s, kind),
        }
    }

    /// The targeting of `context.error_pattern` (no goal of its own).
    fn pattern(s: &ScenarioDef) -> (GoalKind, &'static str, Option<u32>, f64) {
        let rate = s.context.error_rate.unwrap_or(0.1);
        match s.context.error_pattern.as_deref().unwrap_or("none") {
            "first_tool_failure" => (GoalKind::FailTool, "tool_error", Some(0), rate),
            "last_tool_failure" => (GoalKind::FailTool, "tool_error", Some(u32::MAX), rate),
            "single_tool_failure" | "cascade" | "random" => (
                GoalKind::FailTool,
                "tool_error",
                s.context.error_step_index,
                rate,
            ),
            _ => (GoalKind::None, "tool_error", None, 0.0),
        }
    }

    /// `exception_type` / `exception_message`: either one alone takes the goal's default
    /// for the other; a failed recommendation always records its exception.
    fn exception(s: &ScenarioDef, kind: GoalKind) -> Option<(Arc<str>, Arc<str>)> {
        let o = &s.overrides;
        let default_type = match kind {
            GoalKind::WrongDivision => "WrongDivisionError",
            GoalKind::FailCompose => "ResponseCompositionError",
            GoalKind::FailRecommend => "CapabilityResolutionError",
            GoalKind::FailTool | GoalKind::None => "ToolError",
        };
        let default_message = match kind {
            GoalKind::FailRecommend => "no MCP tool capability could be resolved for the request",
            _ => "",
        };
        if o.exception_type.is_none() && o.exception_message.is_none() {
            return (kind == GoalKind::FailRecommend)
                .then(|| (Arc::from(default_type), Arc::from(default_message)));
        }
        let t = o.exception_type.as_deref().unwrap_or(default_type);
        let m = match (&o.exception_message, default_message) {
            (Some(m), _) => m.as_str(),
            (None, "") => t,
            (None, dm) => dm,
        };
        Some((Arc::from(t), Arc::from(m)))
    }

    fn tool_injection(&self, c: &Compiler<'_>, tool: &str, d: &mut Diags) -> Option<Injection> {
        match self.kind {
            GoalKind::FailTool => Some(Injection::FailToolCall {
                error_type: self.error_type,
                http_status: self.http_status.clone(),
                latency: self.latency.clone(),
            }),
            GoalKind::WrongDivision => {
                let targets: Vec<ToolRef> = c
                    .cfg
                    .mcp_servers
                    .iter()
                    .filter(|srv| match &self.target_server {
                        Some(t) => &srv.key == t,
                        None => Some(&srv.key) != self.correct_server.as_ref(),
                    })
                    .filter_map(|srv| c.tool_ref(srv, tool))
                    .collect();
                if targets.is_empty() {
                    d.error(Pos::default(), "simulation_goal", format!("wrong_division: no other division's MCP server has a tool named `{tool}`"));
                    return None;
                }
                Some(Injection::WrongDivision {
                    targets,
                    error_type: self.error_type,
                    latency: self.latency.clone(),
                })
            }
            GoalKind::None | GoalKind::FailCompose | GoalKind::FailRecommend => None,
        }
    }

    fn recommend_injection(&self) -> Option<Injection> {
        (self.kind == GoalKind::FailRecommend).then_some(Injection::FailStep {
            error_type: self.error_type,
        })
    }

    fn compose_injection(&self) -> Option<Injection> {
        (self.kind == GoalKind::FailCompose).then_some(Injection::FailStep {
            error_type: self.error_type,
        })
    }

    fn plan(
        &self,
        tool_slots: u32,
        has_compose: bool,
        recommend_slots: u32,
        d: &mut Diags,
    ) -> Option<GoalPlan> {
        let slots = match self.kind {
            GoalKind::None => return None,
            GoalKind::FailRecommend if recommend_slots == 0 => {
                d.error(Pos::default(), "simulation_goal", format!("`{}` fails the tool recommendation, but the workflow's remaining steps have no tools_recommend", self.name));
                return None;
            }
            GoalKind::FailRecommend => recommend_slots,
            GoalKind::FailCompose if !has_compose => {
                d.error(Pos::default(), "simulation_goal", format!("`{}` fails response.compose, but the workflow's remaining steps have no response_compose", self.name));
                return None;
            }
            GoalKind::FailCompose => 1,
            GoalKind::FailTool | GoalKind::WrongDivision => tool_slots,
        };
        if slots == 0 {
            d.error(
                Pos::default(),
                "simulation_goal",
                format!(
                    "`{}` needs a workflow step that calls an MCP tool",
                    self.name
                ),
            );
            return None;
        }
        let fixed = match self.fixed {
            Some(u32::MAX) => Some(slots - 1),
            Some(i) if i >= slots => {
                d.error(Pos::default(), "realistic_overrides", format!("`{}`: step index {i} is out of range; the workflow has {slots} tool step(s), indexed from 0", self.name));
                return None;
            }
            other => other,
        };
        Some(GoalPlan {
            name: key(&self.name),
            slots,
            fixed,
            rate: self.rate,
            exception: self.exception.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The config reader accepts exactly the step names the compiler builds.
    #[test]
    fn every_built_in_workflow_step_is_known_to_the_compiler() {
        for step in crate::model::config::WORKFLOW_STEPS {
            assert_ne!(step_kind(step), StepKind::Tool, "{step}");
        }
        assert_eq!(step_kind("new_claim"), StepKind::Tool);
    }

    /// GenAI spans keep the kind the conventions give their operation, whatever
    /// the semconv file says; a step that says otherwise is warned about.
    #[test]
    fn genai_spans_keep_their_conventional_kind() {
        let reg = crate::registry::Registry::load(&Default::default()).expect("bundled files");
        let mut sc = reg.semconv.clone();
        for s in &mut sc.spans {
            s.kind = Some(SpanKind::Server);
        }
        let opts = crate::plan::WorldOptions {
            vendor: "vendor".into(),
            ..Default::default()
        };
        let world = World::new(&reg.config, &sc, &opts, &mut Diags::new("t"));
        let c = Compiler {
            world: &world,
            cfg: &reg.config,
            sc: &sc,
        };
        for (written, kind) in [
            ("vendor.a2a.orchestrate", SpanKind::Internal),
            ("vendor.mcp.tool.execute", SpanKind::Internal),
            ("vendor.llm.call", SpanKind::Client),
            ("vendor.planner", SpanKind::Server),
        ] {
            assert_eq!(c.base_node(written, false).kind, kind, "{written}");
        }
        let (step, d) = crate::model::scenario::parse_step_for_test(
            "type: vendor.a2a.orchestrate\nkind: server\n",
        );
        assert!(d.items.is_empty(), "{:?}", d.items);
        let mut d = Diags::new("t.yaml");
        let n = c.step(&step.expect("a step"), None, None, &mut d);
        assert_eq!(n.kind, SpanKind::Internal);
        let text: Vec<String> = d.items.iter().map(ToString::to_string).collect();
        assert!(
            text.iter()
                .any(|t| t.contains("root.kind") && t.contains("internal")),
            "{text:?}"
        );
    }
}
