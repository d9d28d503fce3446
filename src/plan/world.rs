//! What every scenario of a run shares: the prefix, interned keys, the semconv
//! enums, resources, the LLM model catalogue and id formats.

use super::services::Services;
use crate::diag::{Diags, Pos};
use crate::model::config::Config;
use crate::model::distribution::Categorical;
use crate::model::semconv::{Semconv, ERROR_TYPES, RESPONSE_FORMATS, STEP_OUTCOMES};
use crate::model::AttrValue;
use crate::record::Key;
use std::collections::HashMap;
use std::sync::Arc;

/// Rewrites names written with `vendor.` or the semconv file's own namespace to
/// the active prefix, so every span and attribute carries one coherent prefix.
#[derive(Clone, Debug)]
pub struct Prefixer {
    /// The prefix every span name and vendor attribute gets (`--vendor`, lower-cased, no
    /// trailing dot).
    pub active: String,
    aliases: Vec<String>,
}

impl Prefixer {
    /// A prefixer to `active` that also rewrites `vendor.` and the semconv file's `namespace`.
    pub fn new(active: &str, semconv_namespace: Option<&str>) -> Self {
        let active = active.trim().trim_end_matches('.').to_ascii_lowercase();
        let mut aliases = vec!["vendor".to_string()];
        if let Some(ns) = semconv_namespace {
            if !aliases.iter().any(|a| a == ns) {
                aliases.push(ns.to_string());
            }
        }
        Prefixer { active, aliases }
    }

    /// `vendor.x` / `<ns>.x` → `<active>.x`; other names unchanged.
    pub fn rewrite(&self, name: &str) -> String {
        for a in self.aliases.iter().chain(std::iter::once(&self.active)) {
            if let Some(rest) = name
                .strip_prefix(a.as_str())
                .and_then(|r| r.strip_prefix('.'))
            {
                return format!("{}.{rest}", self.active);
            }
        }
        name.to_string()
    }

    /// The class of a span name: the name without its prefix.
    pub fn class_of<'a>(&self, name: &'a str) -> &'a str {
        for a in self.aliases.iter().chain(std::iter::once(&self.active)) {
            if let Some(rest) = name
                .strip_prefix(a.as_str())
                .and_then(|r| r.strip_prefix('.'))
            {
                return rest;
            }
        }
        name
    }

    /// Span type as written in YAML → (full name, class). Bare suffixes get the prefix.
    pub fn span_type(&self, written: &str) -> (String, String) {
        let class = self.class_of(written).to_string();
        (format!("{}.{class}", self.active), class)
    }

    /// `<active>.<short>`.
    pub fn attr(&self, short: &str) -> String {
        format!("{}.{short}", self.active)
    }
}

/// Interned attribute keys every trace uses, built once with the active prefix.
#[derive(Clone, Debug)]
pub struct Keys {
    /// `<prefix>.session.id`: shared by every request of a session.
    pub session_id: Key,
    /// `gen_ai.conversation.id`: the session id again, under its GenAI name.
    pub conversation_id: Key,
    /// `<prefix>.request.id`: shared by every trace of one request.
    pub request_id: Key,
    /// `<prefix>.tenant.id`.
    pub tenant_id: Key,
    /// `<prefix>.span.class`: the class as written, without prefix.
    pub span_class: Key,
    /// `<prefix>.step.outcome`: `success`, `fail` or `skipped`.
    pub step_outcome: Key,
    /// `<prefix>.step.outcome.cp`: a control-plane step's `pass`, `fail`, `block` or `skip`.
    pub step_outcome_cp: Key,
    /// `<prefix>.request.outcome`: the gateway's verdict on a request.
    pub request_outcome: Key,
    /// `error.type`.
    pub error_type: Key,
    /// `<prefix>.error.category`: set by no rule, but owned by the code so semconv filling
    /// never invents one.
    pub error_category: Key,
    /// `<prefix>.a2a.outcome`: the agent turn's outcome.
    pub a2a_outcome: Key,
    /// `<prefix>.a2a.agent.target.id`: the agent a turn addresses.
    pub agent_target: Key,
    /// `<prefix>.enduser.pseudo.id`.
    pub enduser: Key,
    /// `<prefix>.redaction.applied`.
    pub redaction: Key,
    /// `<prefix>.turn.index`: 1-based turn of a multi-turn session.
    pub turn_index: Key,
    /// `<prefix>.task.id`.
    pub task_id: Key,
    /// `<prefix>.task.type`.
    pub task_type: Key,
    /// `gen_ai.tool.name`.
    pub tool_name: Key,
    /// `gen_ai.tool.call.id`.
    pub tool_call_id: Key,
    /// `<prefix>.mcp.tool.call.id`.
    pub mcp_call_id: Key,
    /// `<prefix>.mcp.server.uuid`.
    pub mcp_server_uuid: Key,
    /// `<prefix>.mcp.tool.uuid`.
    pub mcp_tool_uuid: Key,
    /// `<prefix>.mcp.attempt.index`.
    pub attempt_index: Key,
    /// `<prefix>.mcp.attempt.outcome`.
    pub attempt_outcome: Key,
    /// `<prefix>.retry.attempt`.
    pub retry_attempt: Key,
    /// `<prefix>.retry.count`.
    pub retry_count: Key,
    /// `<prefix>.retry.policy`.
    pub retry_policy: Key,
    /// `<prefix>.retry.reason`: why an attempt was retried (the previous attempt's error).
    pub retry_reason: Key,
    /// `<prefix>.response.format`.
    pub response_format: Key,
    /// `gen_ai.operation.name`.
    pub op_name: Key,
    /// `gen_ai.provider.name`.
    pub provider: Key,
    /// `gen_ai.system` (older GenAI conventions; set only when the semconv file declares it).
    pub system: Key,
    /// `gen_ai.request.model`.
    pub request_model: Key,
    /// `gen_ai.response.model`.
    pub response_model: Key,
    /// `gen_ai.usage.input_tokens`.
    pub input_tokens: Key,
    /// `gen_ai.usage.output_tokens`.
    pub output_tokens: Key,
    /// `gen_ai.response.finish_reason`: set only when the semconv file declares it.
    pub finish_reason: Key,
    /// `gen_ai.response.finish_reasons`.
    pub finish_reasons: Key,
    /// `gen_ai.request.type`: set only when the semconv file declares it.
    pub request_type: Key,
    /// `gen_ai.input.messages`.
    pub input_messages: Key,
    /// `gen_ai.output.messages`.
    pub output_messages: Key,
    /// `<prefix>.gen_ai.input.redacted`: the redacted user message.
    pub input_redacted: Key,
    /// `<prefix>.gen_ai.output.redacted`: the redacted reply.
    pub output_redacted: Key,
    /// `<prefix>.mcp.tools.available.count`.
    pub tools_available: Key,
    /// `<prefix>.mcp.tools.selected.count`.
    pub tools_selected: Key,
    /// `<prefix>.mcp.selection.latency.ms`.
    pub selection_latency: Key,
    /// `<prefix>.mcp.selection.strategy`.
    pub selection_strategy: Key,
    /// `<prefix>.mcp.selection.constraints`.
    pub selection_constraints: Key,
    /// `<prefix>.mcp.selection.fallback.used`.
    pub selection_fallback: Key,
    /// `<prefix>.enduser.request`: the event of what the user sent (late-v1 files).
    pub enduser_request_event: Key,
    /// `<prefix>.enduser.request.raw`: that event's text.
    pub enduser_request_raw: Key,
    /// `<prefix>.enduser.request.raw.redacted`: that text redacted.
    pub enduser_request_redacted: Key,
    /// `<prefix>.agent.response`: the event of what the agent answered (late-v1 files).
    pub agent_response_event: Key,
    /// `<prefix>.agent.response.raw`: that event's text.
    pub agent_response_raw: Key,
    /// `<prefix>.agent.response.raw.redacted`: that text redacted.
    pub agent_response_redacted: Key,
    /// `gen_ai.agent.id`: the agent an agent turn invokes.
    pub agent_id: Key,
    /// `gen_ai.agent.name`: its name (the configured agent id).
    pub agent_name: Key,
    /// `gen_ai.tool.call.arguments`: a tool call's arguments, JSON.
    pub tool_call_arguments: Key,
    /// `gen_ai.tool.call.result`: what a tool call returned, JSON.
    pub tool_call_result: Key,
    /// `<prefix>.agent.tool_selection`: the event a recommendation span records.
    pub tool_selection_event: Key,
    /// `<prefix>.agent.tool_selection.input.raw`: that event's user input.
    pub tool_selection_input: Key,
    /// `<prefix>.agent.tool_selection.tool.plan`: that event's chosen tools, as JSON.
    pub tool_selection_plan: Key,
    /// `exception`: the name of an exception event.
    pub exception: Key,
    /// `exception.type`.
    pub exception_type: Key,
    /// `exception.message`.
    pub exception_message: Key,
    /// `http.response.status_code`.
    pub http_status: Key,
    /// `mcp.method.name`.
    pub mcp_method: Key,
    /// `mcp.session.id`.
    pub mcp_session: Key,
    /// `event.name` of a log record.
    pub event_name: Key,
    /// `<prefix>.duration.ms` of a log record: the span's duration.
    pub duration_ms: Key,
    /// `<prefix>.retry.delay.ms` of a log record: the wait before the retry.
    pub retry_delay_ms: Key,
    /// `gen_ai.token.type` of the token-usage metric: `input` or `output`.
    pub token_type: Key,
}

impl Keys {
    fn new(p: &Prefixer) -> Self {
        let k = |s: &str| -> Key { Arc::from(s) };
        let v = |s: &str| -> Key { Arc::from(p.attr(s).as_str()) };
        Keys {
            session_id: v("session.id"),
            conversation_id: k("gen_ai.conversation.id"),
            request_id: v("request.id"),
            tenant_id: v("tenant.id"),
            span_class: v("span.class"),
            step_outcome: v("step.outcome"),
            step_outcome_cp: v("step.outcome.cp"),
            request_outcome: v("request.outcome"),
            error_type: k("error.type"),
            error_category: v("error.category"),
            a2a_outcome: v("a2a.outcome"),
            agent_target: v("a2a.agent.target.id"),
            enduser: v("enduser.pseudo.id"),
            redaction: v("redaction.applied"),
            turn_index: v("turn.index"),
            task_id: v("task.id"),
            task_type: v("task.type"),
            tool_name: k("gen_ai.tool.name"),
            tool_call_id: k("gen_ai.tool.call.id"),
            mcp_call_id: v("mcp.tool.call.id"),
            mcp_server_uuid: v("mcp.server.uuid"),
            mcp_tool_uuid: v("mcp.tool.uuid"),
            attempt_index: v("mcp.attempt.index"),
            attempt_outcome: v("mcp.attempt.outcome"),
            retry_attempt: v("retry.attempt"),
            retry_count: v("retry.count"),
            retry_policy: v("retry.policy"),
            retry_reason: v("retry.reason"),
            response_format: v("response.format"),
            op_name: k("gen_ai.operation.name"),
            provider: k("gen_ai.provider.name"),
            system: k("gen_ai.system"),
            request_model: k("gen_ai.request.model"),
            response_model: k("gen_ai.response.model"),
            input_tokens: k("gen_ai.usage.input_tokens"),
            output_tokens: k("gen_ai.usage.output_tokens"),
            finish_reason: k("gen_ai.response.finish_reason"),
            finish_reasons: k("gen_ai.response.finish_reasons"),
            request_type: k("gen_ai.request.type"),
            input_messages: k("gen_ai.input.messages"),
            output_messages: k("gen_ai.output.messages"),
            input_redacted: v("gen_ai.input.redacted"),
            output_redacted: v("gen_ai.output.redacted"),
            tools_available: v("mcp.tools.available.count"),
            tools_selected: v("mcp.tools.selected.count"),
            selection_latency: v("mcp.selection.latency.ms"),
            selection_strategy: v("mcp.selection.strategy"),
            selection_constraints: v("mcp.selection.constraints"),
            selection_fallback: v("mcp.selection.fallback.used"),
            enduser_request_event: v("enduser.request"),
            enduser_request_raw: v("enduser.request.raw"),
            enduser_request_redacted: v("enduser.request.raw.redacted"),
            agent_response_event: v("agent.response"),
            agent_response_raw: v("agent.response.raw"),
            agent_response_redacted: v("agent.response.raw.redacted"),
            agent_id: k("gen_ai.agent.id"),
            agent_name: k("gen_ai.agent.name"),
            tool_call_arguments: k("gen_ai.tool.call.arguments"),
            tool_call_result: k("gen_ai.tool.call.result"),
            tool_selection_event: v("agent.tool_selection"),
            tool_selection_input: v("agent.tool_selection.input.raw"),
            tool_selection_plan: v("agent.tool_selection.tool.plan"),
            exception: k("exception"),
            exception_type: k("exception.type"),
            exception_message: k("exception.message"),
            http_status: k("http.response.status_code"),
            mcp_method: k("mcp.method.name"),
            mcp_session: k("mcp.session.id"),
            event_name: k("event.name"),
            duration_ms: v("duration.ms"),
            retry_delay_ms: v("retry.delay.ms"),
            token_type: k("gen_ai.token.type"),
        }
    }
}

/// An LLM model the generator may attribute a call to.
#[derive(Clone, Debug)]
pub struct ModelChoice {
    /// `gen_ai.provider.name`, normalised to the semconv enum.
    pub provider: AttrValue,
    /// `gen_ai.request.model` and `gen_ai.response.model`.
    pub model: AttrValue,
}

/// Everything shared by all scenarios of a run: prefix, keys, enums, resources, models.
#[derive(Debug)]
pub struct World {
    /// Rewrites written names to the active prefix.
    pub prefix: Prefixer,
    /// The attribute keys the generator writes, interned once.
    pub keys: Keys,
    /// Full attribute name → allowed values.
    pub enums: HashMap<String, Vec<AttrValue>>,
    /// The LLM models of config `llm.models`, in file order.
    pub models: Vec<ModelChoice>,
    /// Weights of `models`: picks the index of an LLM call's model.
    pub model_weights: Categorical,
    /// Schema URL of every resource and scope (config `resource.schema_url`).
    pub schema_url: Option<String>,
    /// The services spans are emitted under (the planes, then `services:`).
    pub services: Services,
    /// How session, request, end-user and MCP call ids are rendered.
    pub id_formats: crate::model::config::IdFormats,
    /// `<prefix>.retry.policy` of retried tool calls (config `mcp_retry.retry_policy`,
    /// normalised).
    pub retry_policy: AttrValue,
    /// Whether the semconv file declares `gen_ai.system`, so LLM spans also carry it.
    pub semconv_has_gen_ai_system: bool,
    /// `--tenant-id`: the tenant of every scenario, over what the scenarios say.
    pub tenant_override: Option<String>,
    /// Every attribute name the semconv file declares (prefix applied).
    pub declared: std::collections::HashSet<String>,
    /// `--genai-profile`: which attribute families describe GenAI work.
    pub genai_profile: crate::generate::GenAiProfile,
    /// The OpenInference keys and span kinds, interned once.
    pub oi_keys: crate::generate::OiKeys,
    /// config.yaml `retrieval`: what retrieval steps search and find.
    pub retrieval: Option<crate::model::config::Retrieval>,
    /// Attribute values the generator writes over and over, allocated once.
    literals: Vec<Arc<str>>,
}

/// Settings that shape the world beyond the files.
#[derive(Clone, Debug, Default)]
pub struct WorldOptions {
    /// `--vendor` / `VENDOR`: the attribute and span-name prefix.
    pub vendor: String,
    /// `--service-name` / `OTEL_SERVICE_NAME`: `service.name` of the planes (declared services
    /// keep their own).
    pub service_name: Option<String>,
    /// `OTEL_RESOURCE_ATTRIBUTES` pairs; they win over config.
    pub extra_resource: Vec<(String, String)>,
    /// `--tenant-id`: the tenant of every scenario.
    pub tenant_id: Option<String>,
    /// `--genai-profile`: which attribute families describe GenAI work.
    pub genai_profile: crate::generate::GenAiProfile,
}

/// Values the generator uses for every span of a kind (outcomes, operation
/// names): shared instead of allocated per span.
const LITERALS: &[&str] = &[
    "success",
    "fail",
    "error",
    "stop",
    "skipped",
    "chat",
    "execute_tool",
    "invoke_agent",
    "tools/call",
    "timeout",
    "unavailable",
    "transient_error",
];

impl World {
    /// `s` as an attribute value, shared when it is one of the common literals.
    pub fn lit(&self, s: &str) -> AttrValue {
        match self.literals.iter().find(|l| ***l == *s) {
            Some(l) => AttrValue::Str(l.clone()),
            None => AttrValue::str(s),
        }
    }

    /// Builds the world of a run; values normalised to the semconv enums are warnings in `d`.
    pub fn new(cfg: &Config, sc: &Semconv, opts: &WorldOptions, d: &mut Diags) -> World {
        let prefix = Prefixer::new(&opts.vendor, sc.namespace.as_deref());
        let keys = Keys::new(&prefix);
        let mut enums: HashMap<String, Vec<AttrValue>> = HashMap::new();
        for (_, attrs) in &sc.sections {
            for a in attrs {
                if !a.allowed.is_empty() {
                    enums
                        .entry(prefix.rewrite(&a.name))
                        .or_insert_with(|| a.allowed.clone());
                }
            }
        }
        // The spec fixes these whatever the file says.
        let fixed = |vals: &[&str]| vals.iter().map(|v| AttrValue::str(v)).collect::<Vec<_>>();
        enums.insert("error.type".into(), fixed(ERROR_TYPES));
        enums
            .entry(prefix.attr("step.outcome"))
            .or_insert_with(|| fixed(STEP_OUTCOMES));
        enums
            .entry(prefix.attr("response.format"))
            .or_insert_with(|| fixed(RESPONSE_FORMATS));

        // Providers are an enum in the GenAI conventions: normalise config values once.
        let provider_key = "gen_ai.provider.name";
        let models: Vec<ModelChoice> = cfg
            .llm_models
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let raw = AttrValue::str(&m.provider);
                let provider = match enums.get(provider_key) {
                    Some(allowed) if !allowed.contains(&raw) => {
                        let fixed = closest_allowed(&raw, allowed);
                        d.warn(Pos::default(), &format!("llm.models[{i}].provider"), format!("`{raw}` is not an allowed value of {provider_key}; emitted as `{fixed}`"));
                        fixed
                    }
                    _ => raw,
                };
                ModelChoice {
                    provider,
                    model: AttrValue::str(&m.model),
                }
            })
            .collect();
        let mut sd = Diags::new(sc.source.as_str());
        for (section, attrs) in &sc.sections {
            for a in attrs {
                if let (Some(def), false) = (&a.default, a.allowed.is_empty()) {
                    if !a.allowed.contains(def) {
                        sd.warn(
                            Pos::default(),
                            &format!("{section}.{}.default", a.name),
                            format!(
                                "default `{def}` is not one of its allowed_values; emitted as `{}`",
                                closest_allowed(def, &a.allowed)
                            ),
                        );
                    }
                }
            }
        }
        d.items.append(&mut sd.items);
        let model_weights = Categorical::new(
            cfg.llm_models
                .iter()
                .enumerate()
                .map(|(i, m)| (AttrValue::Int(i as i64), m.weight))
                .collect(),
        )
        .unwrap_or_else(|| Categorical::uniform(vec![AttrValue::Int(0)]).expect("one value"));

        let mut world = World {
            keys,
            enums,
            models,
            model_weights,
            schema_url: cfg.resource.schema_url.clone(),
            services: Services::default(),
            id_formats: cfg.id_formats.clone(),
            retry_policy: AttrValue::str(&cfg.mcp_retry.retry_policy),
            tenant_override: opts.tenant_id.clone(),
            semconv_has_gen_ai_system: sc
                .sections
                .iter()
                .any(|(_, a)| a.iter().any(|x| x.name == "gen_ai.system")),
            declared: sc
                .sections
                .iter()
                .flat_map(|(_, a)| a.iter().map(|x| prefix.rewrite(&x.name)))
                .collect(),
            prefix,
            genai_profile: opts.genai_profile,
            oi_keys: crate::generate::OiKeys::default(),
            retrieval: cfg.retrieval.clone(),
            literals: LITERALS.iter().map(|l| Arc::from(*l)).collect(),
        };
        let rp = world.keys.retry_policy.clone();
        world.retry_policy = world.normalise(
            &rp,
            world.retry_policy.clone(),
            Pos::default(),
            "mcp_retry.retry_policy",
            d,
        );
        let mut rd = Diags::new(
            cfg.resource
                .source
                .clone()
                .unwrap_or_else(|| cfg.source.clone()),
        );
        let data_plane = world.resource(&cfg.resource.data_plane, None, cfg, opts, &mut rd);
        let control_plane = world.resource(&cfg.resource.control_plane, None, cfg, opts, &mut rd);
        let declared = declared_services(cfg)
            .into_iter()
            .map(|(name, attrs)| {
                let r = world.resource(&attrs, Some(&name), cfg, opts, &mut rd);
                (name, r)
            })
            .collect();
        world.services = Services::new(
            &data_plane,
            &control_plane,
            &world.prefix.attr("component"),
            declared,
        );
        // Both planes usually share attributes: report each normalisation once.
        let mut seen = std::collections::HashSet::new();
        rd.items.retain(|i| seen.insert(i.to_string()));
        d.items.append(&mut rd.items);
        world
    }

    /// A service's resource attributes: its own (prefix applied, enums
    /// normalised), the tenant, `OTEL_RESOURCE_ATTRIBUTES`, `service.name`
    /// (a declared service's own `name`, else `--service-name`, else the
    /// config's, else `otelsim`) and the SDK attributes.
    fn resource(
        &self,
        attrs: &[(String, AttrValue)],
        name: Option<&str>,
        cfg: &Config,
        opts: &WorldOptions,
        d: &mut Diags,
    ) -> Vec<(String, AttrValue)> {
        let mut out: Vec<(String, AttrValue)> = Vec::new();
        fn set(out: &mut Vec<(String, AttrValue)>, k: String, v: AttrValue) {
            match out.iter_mut().find(|(ok, _)| *ok == k) {
                Some((_, ov)) => *ov = v,
                None => out.push((k, v)),
            }
        }
        for (k, v) in attrs {
            // Short platform keys (module, component, otel.source) get the prefix.
            let key = if matches!(k.as_str(), "module" | "component" | "otel.source") {
                self.prefix.attr(k)
            } else {
                self.prefix.rewrite(k)
            };
            let v = self.normalise(&key, v.clone(), Pos::default(), &format!("resource.{k}"), d);
            set(&mut out, key, v);
        }
        let k = self.prefix.attr("tenant.id");
        match (&opts.tenant_id, cfg.tenants.first()) {
            (Some(t), _) => set(&mut out, k, AttrValue::str(t)),
            (None, Some(t)) if !out.iter().any(|(ok, _)| *ok == k) => {
                set(&mut out, k, AttrValue::str(&t.id))
            }
            _ => {}
        }
        for (k, v) in &opts.extra_resource {
            let v = self.normalise(
                k,
                AttrValue::str(v),
                Pos::default(),
                &format!("OTEL_RESOURCE_ATTRIBUTES {k}"),
                d,
            );
            set(&mut out, k.clone(), v);
        }
        if let Some(s) = name.or(opts.service_name.as_deref()) {
            set(&mut out, "service.name".into(), AttrValue::str(s));
        }
        if !out.iter().any(|(k, _)| k == "service.name") {
            set(&mut out, "service.name".into(), AttrValue::str("otelsim"));
        }
        set(
            &mut out,
            "telemetry.sdk.name".into(),
            AttrValue::str("otelsim"),
        );
        set(
            &mut out,
            "telemetry.sdk.language".into(),
            AttrValue::str("rust"),
        );
        set(
            &mut out,
            "telemetry.sdk.version".into(),
            AttrValue::str(env!("CARGO_PKG_VERSION")),
        );
        out
    }

    /// Returns `value` if `key` has no enum or the value is allowed; otherwise the
    /// closest allowed value, with a warning naming where the value came from.
    pub fn normalise(
        &self,
        key: &str,
        value: AttrValue,
        pos: Pos,
        path: &str,
        d: &mut Diags,
    ) -> AttrValue {
        let Some(allowed) = self.enums.get(key) else {
            return value;
        };
        if allowed.contains(&value) {
            return value;
        }
        let fixed = closest_allowed(&value, allowed);
        let list: Vec<String> = allowed.iter().map(ToString::to_string).collect();
        d.warn(
            pos,
            path,
            format!(
                "value `{value}` of `{key}` is not an allowed value ({}); emitted as `{fixed}`",
                list.join(", ")
            ),
        );
        fixed
    }

    /// Whether the semconv file declares the attribute `name` (prefix applied).
    pub fn semconv_declares(&self, name: &str) -> bool {
        self.declared.contains(name)
    }

    pub(crate) fn enum_choice(&self, key: &str) -> Option<Categorical> {
        Categorical::uniform(self.enums.get(key)?.clone())
    }
}

/// Case-insensitive match, then prefix match either way, then the first value
/// (or a catch-all such as `unknown`/`other` when the enum has one).
pub fn closest_allowed(value: &AttrValue, allowed: &[AttrValue]) -> AttrValue {
    let text = value.to_string().to_ascii_lowercase();
    let as_text: Vec<String> = allowed
        .iter()
        .map(|a| a.to_string().to_ascii_lowercase())
        .collect();
    if let Some(i) = as_text.iter().position(|a| *a == text) {
        return allowed[i].clone();
    }
    if !text.is_empty() {
        let hits: Vec<usize> = (0..as_text.len())
            .filter(|&i| as_text[i].starts_with(&text) || text.starts_with(&as_text[i]))
            .collect();
        if hits.len() == 1 {
            return allowed[hits[0]].clone();
        }
    }
    for catch_all in ["unknown", "other", "transient_error"] {
        if let Some(i) = as_text.iter().position(|a| a == catch_all) {
            return allowed[i].clone();
        }
    }
    allowed[0].clone()
}

/// The services config `services:` declares, as (name, attributes), `service.name` first.
fn declared_services(cfg: &Config) -> Vec<(String, Vec<(String, AttrValue)>)> {
    cfg.services
        .iter()
        .map(|s| {
            let mut attrs = vec![("service.name".to_string(), AttrValue::str(&s.name))];
            attrs.extend(s.attributes.iter().cloned());
            (s.name.clone(), attrs)
        })
        .collect()
}
