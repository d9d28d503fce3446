//! Reads `config.yaml` (and the optional `resource.yaml` beside it) into `Config`.
//!
//! `load` walks the top-level keys in a fixed order and hands each section to its
//! reader: ids, tools and retries here; `latency` for latency profiles; `catalogue`
//! for tenants, agents, MCP servers and workflows; `control_plane`; `resource` for
//! resource attributes and `services:`; `schedules` for `workload_schedules`. Accepts the doc-era keys of the predecessor
//! and their later aliases (`realistic_scenarios`/`scenarios`,
//! `happy_path_latency`/`latency_profiles.happy_path`).

pub mod catalogue;
pub mod control_plane;
pub mod latency;
pub mod resource;
pub mod schedules;
#[cfg(test)]
mod tests;

use crate::diag::{Diags, Pos};
use crate::ids::IdTemplate;
use crate::model::config::{
    default_llm_models, AgentTraceConfig, AttemptSpec, Config, IdFormats, LlmModel, McpRetry,
    ToolsRecommend, DEFAULT_MAX_TOKENS,
};
use crate::model::read::samples::read_samples_by_workflow;
use crate::yaml::{
    join, read_bool, read_map_list, read_non_negative, read_str, read_u64, Kind, MapReader, Node,
};
use std::collections::BTreeMap;

/// Loads `config.yaml`. `resource_yaml` is the optional `resource.yaml` beside it
/// (the predecessor kept resource attributes there), with its file name for errors.
pub fn load(
    root: &Node,
    resource_yaml: Option<(&Node, &mut Diags)>,
    d: &mut Diags,
) -> Option<Config> {
    let mut r = MapReader::new(root, "", d)?;

    let id_formats = read_id_formats(r.get("id_formats"), d);
    let (latency, latency_profiles) = latency::read_latency_sections(&mut r, d);
    let tools_recommend = read_tools_recommend(r.get("tools_recommend"), d);
    let mcp_retry = read_mcp_retry(r.get("mcp_retry"), d);
    let mcp_retry_templates = read_mcp_retry_templates(r.get("mcp_retry_templates"), d);

    let tenants = catalogue::read_tenants(&mut r, d);
    let agents = catalogue::read_agents(r.get("agents"), d);
    let mcp_servers = catalogue::read_mcp_servers(r.get("mcp_servers"), d);
    let realistic = catalogue::read_realistic(&mut r, root, &mcp_servers, d);

    let control_plane = r
        .get("control_plane")
        .map(|n| control_plane::read_control_plane(n, d))
        .unwrap_or_default();
    if let Some(w) = &control_plane.default_data_plane_workflow {
        // A name that resolves to nothing would drop the agent turn from every request.
        if !realistic.workflow_templates.contains_key(w) {
            let at = root
                .get("control_plane")
                .and_then(|c| c.get("default_data_plane_workflow"))
                .map_or(Pos::default(), |n| n.pos);
            let defined: Vec<&str> = realistic
                .workflow_templates
                .keys()
                .map(String::as_str)
                .collect();
            d.error(
                at,
                "control_plane.default_data_plane_workflow",
                format!(
                    "unknown workflow `{w}`{}; defined in realistic_scenarios.workflow_templates: {}",
                    crate::model::read::did_you_mean(w, defined.iter().copied()),
                    if defined.is_empty() { "none".to_string() } else { defined.join(", ") }
                ),
            );
        }
    }
    let conversation_samples = read_samples_by_workflow(r.get("conversation_samples"), d);
    let resource = resource::read_resources(r.get("resource"), resource_yaml, d);
    let services = r
        .get("services")
        .map(|n| resource::read_services(n, d))
        .unwrap_or_default();
    // The system instructions of every agent's LLM calls (a scenario may give its own).
    let llm_system_prompt = r
        .get("llm")
        .and_then(|n| n.get("system_prompt"))
        .and_then(|n| read_str(n, "llm.system_prompt", d));
    let llm_models = r
        .get("llm")
        .map(|n| read_llm(n, d))
        .unwrap_or_else(default_llm_models);
    let prices = r
        .get("prices")
        .map(|n| read_prices(n, d))
        .unwrap_or_default();
    let tool_payloads = r
        .get("mcp_tool_genai_payloads")
        .map(|n| read_tool_payloads(n, d))
        .unwrap_or_default();
    let retrieval = r.get("retrieval").and_then(|n| read_retrieval(n, d));
    let workload_schedules = r
        .get("workload_schedules")
        .map(|n| schedules::read_workload_schedules(n, d))
        .unwrap_or_default();
    let agent_trace = r
        .get("agent_trace")
        .map(|n| read_agent_trace(n, d))
        .unwrap_or_default();
    for k in ["default_latency_profile"] {
        if let Some(n) = r.get(k) {
            d.warn(
                n.pos,
                k,
                "recognised but not supported by this version; ignored",
            );
        }
    }
    r.finish(d);

    Some(Config {
        source: d.file.to_string(),
        id_formats,
        latency,
        latency_profiles,
        tools_recommend,
        mcp_retry,
        mcp_retry_templates,
        tenants,
        agents,
        mcp_servers,
        divisions: realistic.divisions,
        error_templates: realistic.error_templates,
        workflow_templates: realistic.workflow_templates,
        workflow_step_pos: realistic.workflow_step_pos,
        control_plane,
        conversation_samples,
        resource,
        services,
        llm_models,
        prices,
        llm_system_prompt,
        retrieval,
        tool_payloads,
        workload_schedules,
        agent_trace,
    })
}

/// `agent_trace: {enabled, trace_dir, sample_rate, include_messages, include_thinking,
/// max_content_length}`; a bad value is reported and its default kept.
fn read_agent_trace(node: &Node, d: &mut Diags) -> AgentTraceConfig {
    let mut out = AgentTraceConfig::default();
    let Some(mut r) = MapReader::new(node, "agent_trace", d) else {
        return out;
    };
    let bool_of = |r: &mut MapReader, key: &'static str, d: &mut Diags, v: &mut bool| {
        if let Some(n) = r.get(key) {
            if let Some(b) = read_bool(n, &join("agent_trace", key), d) {
                *v = b;
            }
        }
    };
    bool_of(&mut r, "enabled", d, &mut out.enabled);
    bool_of(&mut r, "include_messages", d, &mut out.include_messages);
    bool_of(&mut r, "include_thinking", d, &mut out.include_thinking);
    if let Some(n) = r.get("trace_dir") {
        match read_str(n, "agent_trace.trace_dir", d) {
            Some(s) if s.trim().is_empty() => d.error(
                n.pos,
                "agent_trace.trace_dir",
                "is empty; expected a folder such as ./traces",
            ),
            Some(s) => out.trace_dir = s,
            None => {}
        }
    }
    if let Some(n) = r.get("sample_rate") {
        if let Some(v) = crate::yaml::read_prob(n, "agent_trace.sample_rate", d) {
            out.sample_rate = v;
        }
    }
    if let Some(n) = r.get("max_content_length") {
        match n.as_f64() {
            Some(v) if v < 0.0 => d.error(
                n.pos,
                "agent_trace.max_content_length",
                format!(
                    "{v} is negative; expected a whole number of characters ≥ 0 (default 10000)"
                ),
            ),
            _ => {
                if let Some(v) = read_u64(n, "agent_trace.max_content_length", d) {
                    out.max_content_length = v;
                }
            }
        }
    }
    r.finish(d);
    out
}

/// `retrieval: {data_source, top_k, documents: [{id, content}]}`.
fn read_retrieval(node: &Node, d: &mut Diags) -> Option<crate::model::config::Retrieval> {
    let mut r = MapReader::new(node, "retrieval", d)?;
    let data_source = r
        .get("data_source")
        .and_then(|n| read_str(n, "retrieval.data_source", d))
        .unwrap_or_else(|| "knowledge-base".into());
    let top_k = r
        .get("top_k")
        .and_then(|n| read_u64(n, "retrieval.top_k", d))
        .unwrap_or(3)
        .clamp(1, 100) as usize;
    let documents = r
        .get("documents")
        .map(|n| {
            read_map_list(
                n,
                "retrieval.documents",
                "{id, content}",
                d,
                |mut dr, p, d| {
                    let id = dr.get("id").and_then(|v| read_str(v, &join(p, "id"), d));
                    let content = dr
                        .get("content")
                        .and_then(|v| read_str(v, &join(p, "content"), d));
                    dr.finish(d);
                    Some((id?, content.unwrap_or_default()))
                },
            )
        })
        .unwrap_or_default();
    r.finish(d);
    if documents.is_empty() {
        d.error(
            node.pos,
            "retrieval.documents",
            "a retrieval needs at least one document `{id, content}` to find",
        );
        return None;
    }
    Some(crate::model::config::Retrieval {
        data_source,
        top_k,
        documents,
    })
}

/// `mcp_tool_genai_payloads: {<tool>: {gen_ai.tool.call.arguments|result: {structure, sample}}}`.
fn read_tool_payloads(
    node: &Node,
    d: &mut Diags,
) -> BTreeMap<String, crate::model::config::ToolPayloadContract> {
    use crate::model::config::{PayloadContract, ToolPayloadContract};
    let mut out = BTreeMap::new();
    let Some(mut r) = MapReader::new(node, "mcp_tool_genai_payloads", d) else {
        return out;
    };
    let tools: Vec<(String, Node)> = r.rest().cloned().collect();
    for (tool, body) in tools {
        let path = join("mcp_tool_genai_payloads", &tool);
        let Some(mut tr) = MapReader::new(&body, &path, d) else {
            continue;
        };
        let mut contract = ToolPayloadContract::default();
        for (key, slot) in [
            ("gen_ai.tool.call.arguments", &mut contract.arguments),
            ("gen_ai.tool.call.result", &mut contract.result),
        ] {
            let Some(n) = tr.get(key) else { continue };
            let kp = tr.sub(key);
            let Some(mut pr) = MapReader::new(n, &kp, d) else {
                continue;
            };
            let mut c = PayloadContract::default();
            if let Some(st) = pr.get("structure") {
                match st.as_map() {
                    Some(m) => c.fields = m.iter().map(|(k, _)| k.clone()).collect(),
                    None => d.error(
                        st.pos,
                        &pr.sub("structure"),
                        "expected a map of field name to its description",
                    ),
                }
            }
            if let Some(sa) = pr.get("sample") {
                match sa.as_map() {
                    Some(m) => c.sample = m.to_vec(),
                    None => d.error(
                        sa.pos,
                        &pr.sub("sample"),
                        "expected a map: the default payload",
                    ),
                }
            }
            pr.finish(d);
            *slot = Some(c);
        }
        tr.finish(d);
        out.insert(tool, contract);
    }
    out
}

/// An id template; a bad one is reported and replaced so loading can go on.
fn template(text: &str, pos: Pos, key: &str, d: &mut Diags) -> IdTemplate {
    IdTemplate::parse(text).unwrap_or_else(|e| {
        d.error(pos, key, e);
        IdTemplate::parse("invalid_{hex:8}").expect("literal template is valid")
    })
}

/// `id_formats`: each id falls back to its built-in template.
fn read_id_formats(node: Option<&Node>, d: &mut Diags) -> IdFormats {
    let defaults = [
        ("session_id", "sess_{hex:12}"),
        ("conversation_id", "sess_{hex:12}"),
        ("request_id", "req_{hex:6}"),
        ("mcp_tool_call_id", "mcp_call_{hex:12}"),
        ("enduser_pseudo_id", "user_{hex:6}"),
    ];
    let mut vals: Vec<IdTemplate> = Vec::new();
    let mut reader = node.and_then(|n| MapReader::new(n, "id_formats", d));
    for (key, default) in defaults {
        let t = match reader.as_mut().and_then(|r| r.get(key)) {
            Some(n) => match read_str(n, &join("id_formats", key), d) {
                Some(s) => template(&s, n.pos, &join("id_formats", key), d),
                None => template(default, Pos::default(), key, d),
            },
            None => template(default, Pos::default(), key, d),
        };
        vals.push(t);
    }
    if let Some(r) = reader {
        r.finish(d);
    }
    let mut it = vals.into_iter();
    let mut next = || it.next().expect("five templates");
    IdFormats {
        session_id: next(),
        conversation_id: next(),
        request_id: next(),
        mcp_tool_call_id: next(),
        enduser_pseudo_id: next(),
    }
}

/// `tools_recommend`, with built-in defaults for absent keys.
fn read_tools_recommend(node: Option<&Node>, d: &mut Diags) -> ToolsRecommend {
    let mut t = ToolsRecommend {
        step_outcome: "success".into(),
        selection_strategy: "default".into(),
        selection_constraints: "none".into(),
        tools_selected_count: 1,
        selection_fallback_used: false,
    };
    let Some(mut r) = node.and_then(|n| MapReader::new(n, "tools_recommend", d)) else {
        return t;
    };
    if let Some(n) = r.get("step_outcome") {
        t.step_outcome = read_str(n, &r.sub("step_outcome"), d).unwrap_or(t.step_outcome);
    }
    if let Some(n) = r.get("selection_strategy") {
        t.selection_strategy =
            read_str(n, &r.sub("selection_strategy"), d).unwrap_or(t.selection_strategy);
    }
    if let Some(n) = r.get("selection_constraints") {
        t.selection_constraints =
            read_str(n, &r.sub("selection_constraints"), d).unwrap_or(t.selection_constraints);
    }
    if let Some(n) = r.get("tools_selected_count") {
        t.tools_selected_count = read_u64(n, &r.sub("tools_selected_count"), d).unwrap_or(1);
    }
    if let Some(n) = r.get("selection_fallback_used") {
        t.selection_fallback_used =
            read_bool(n, &r.sub("selection_fallback_used"), d).unwrap_or(false);
    }
    r.finish(d);
    t
}

/// `mcp_retry`, with built-in defaults for absent keys.
fn read_mcp_retry(node: Option<&Node>, d: &mut Diags) -> McpRetry {
    let mut m = McpRetry {
        retry_policy: "exponential".into(),
        latency_by_error_type: BTreeMap::new(),
        backoff_base_ms: 100.0,
        backoff_multiplier: 2.0,
        backoff_jitter: 0.2,
    };
    let Some(mut r) = node.and_then(|n| MapReader::new(n, "mcp_retry", d)) else {
        return m;
    };
    if let Some(n) = r.get("retry_policy") {
        m.retry_policy = read_str(n, &r.sub("retry_policy"), d).unwrap_or(m.retry_policy);
    }
    if let Some(n) = r.get("latency_by_error_type") {
        let p = r.sub("latency_by_error_type");
        if let Some(mut lr) = MapReader::new(n, &p, d) {
            let entries: Vec<(String, Node)> = lr.rest().cloned().collect();
            for (k, v) in entries {
                if let Some(ms) = read_non_negative(&v, &join(&p, &k), d) {
                    m.latency_by_error_type.insert(k, ms);
                }
            }
        }
    }
    for (key, slot) in [
        ("backoff_base_ms", &mut m.backoff_base_ms),
        ("backoff_multiplier", &mut m.backoff_multiplier),
        ("backoff_jitter", &mut m.backoff_jitter),
    ] {
        if let Some(n) = r.get(key) {
            *slot = read_non_negative(n, &r.sub(key), d).unwrap_or(*slot);
        }
    }
    r.finish(d);
    m
}

/// `mcp_retry_templates: {<name>: attempts}`.
fn read_mcp_retry_templates(
    node: Option<&Node>,
    d: &mut Diags,
) -> BTreeMap<String, Vec<AttemptSpec>> {
    let mut out = BTreeMap::new();
    let Some(mut tr) = node.and_then(|n| MapReader::new(n, "mcp_retry_templates", d)) else {
        return out;
    };
    let entries: Vec<(String, Node)> = tr.rest().cloned().collect();
    for (name, body) in entries {
        let path = join("mcp_retry_templates", &name);
        if let Some(a) = read_attempts(&body, &path, d) {
            out.insert(name, a);
        }
    }
    out
}

/// Attempts: `{attempts: [...]}`, a bare list, or `{template: name}` (resolved by the caller).
pub fn read_attempts(node: &Node, path: &str, d: &mut Diags) -> Option<Vec<AttemptSpec>> {
    let list = match &node.kind {
        Kind::Seq(_) => node,
        Kind::Map(_) => {
            let mut r = MapReader::new(node, path, d)?;
            let l = r.get("attempts");
            r.finish(d);
            let Some(l) = l else {
                d.error(
                    node.pos,
                    path,
                    "missing `attempts: [{outcome: success|failure, error_type, latency_mean_ms}]`",
                );
                return None;
            };
            l
        }
        _ => {
            d.error(
                node.pos,
                path,
                "expected `attempts: [{outcome: success|failure, error_type, latency_mean_ms}]`",
            );
            return None;
        }
    };
    let Kind::Seq(items) = &list.kind else {
        d.error(list.pos, path, "`attempts` must be a list");
        return None;
    };
    if items.is_empty() {
        d.error(
            list.pos,
            path,
            "`attempts` is empty; list at least one attempt, e.g. [{outcome: success}]",
        );
        return None;
    }
    let mut out = Vec::new();
    for (i, it) in items.iter().enumerate() {
        let p = format!("{path}.attempts[{i}]");
        let Some(mut r) = MapReader::new(it, &p, d) else {
            continue;
        };
        let outcome = r
            .get("outcome")
            .and_then(|n| read_str(n, &r.sub("outcome"), d))
            .unwrap_or_else(|| "success".into());
        let success = match outcome.as_str() {
            "success" | "ok" => true,
            "failure" | "fail" | "error" => false,
            other => {
                d.error(
                    it.pos,
                    &r.sub("outcome"),
                    format!("unknown outcome `{other}`; valid: success, failure"),
                );
                true
            }
        };
        let error_type = r
            .get("error_type")
            .and_then(|n| read_str(n, &r.sub("error_type"), d));
        let latency_mean_ms = r
            .get("latency_mean_ms")
            .and_then(|n| read_non_negative(n, &r.sub("latency_mean_ms"), d));
        r.finish(d);
        out.push(AttemptSpec {
            success,
            error_type,
            latency_mean_ms,
        });
    }
    Some(out)
}

/// `prices: {<model>: {input, output, cached_input}}`: USD per million tokens,
/// none of them negative.
fn read_prices(node: &Node, d: &mut Diags) -> Vec<crate::model::config::Price> {
    let mut out = Vec::new();
    let Kind::Map(entries) = &node.kind else {
        d.error(
            node.pos,
            "prices",
            format!(
                "expected a mapping of model names to {{input, output, cached_input}} (USD per million tokens), found {}",
                node.type_name()
            ),
        );
        return out;
    };
    for (model, n) in entries {
        let path = format!("prices.{model}");
        let Some(mut r) = MapReader::new(n, &path, d) else {
            continue;
        };
        let price = |r: &mut MapReader, key: &'static str, d: &mut Diags| {
            let n = r.get(key)?;
            let v = crate::yaml::read_f64(n, &r.sub(key), d)?;
            if v < 0.0 || !v.is_finite() {
                d.error(
                    n.pos,
                    &r.sub(key),
                    format!("a price must be a number ≥ 0 (USD per million tokens), found {v}"),
                );
                return None;
            }
            Some(v)
        };
        let input = price(&mut r, "input", d);
        let output = price(&mut r, "output", d);
        let cached_input = price(&mut r, "cached_input", d);
        r.finish(d);
        match (input, output) {
            (Some(input), Some(output)) => out.push(crate::model::config::Price {
                model: model.clone(),
                input,
                output,
                cached_input,
            }),
            _ => {
                if n.get("input").is_none() || n.get("output").is_none() {
                    d.error(
                        n.pos,
                        &path,
                        "a price needs `input` and `output` (USD per million tokens); `cached_input` is optional",
                    );
                }
            }
        }
    }
    out
}

/// `llm: {models: [{provider, model, weight, max_tokens, guardrail_id}]}`: the
/// catalogue LLM spans draw from.
fn read_llm(node: &Node, d: &mut Diags) -> Vec<LlmModel> {
    let mut out = Vec::new();
    let Some(mut r) = MapReader::new(node, "llm", d) else {
        return default_llm_models();
    };
    r.ignore("system_prompt");
    if let Some(n) = r.get("models") {
        match &n.kind {
            Kind::Seq(items) => {
                for (i, it) in items.iter().enumerate() {
                    let p = format!("llm.models[{i}]");
                    let Some(mut mr) = MapReader::new(it, &p, d) else {
                        continue;
                    };
                    let provider = mr
                        .get("provider")
                        .and_then(|n| read_str(n, &mr.sub("provider"), d));
                    let model = mr
                        .get("model")
                        .and_then(|n| read_str(n, &mr.sub("model"), d));
                    let weight = mr
                        .get("weight")
                        .and_then(|n| read_non_negative(n, &mr.sub("weight"), d))
                        .unwrap_or(1.0);
                    let max_tokens = match mr.get("max_tokens") {
                        Some(n) => match read_u64(n, &mr.sub("max_tokens"), d) {
                            Some(0) => {
                                d.error(n.pos, &mr.sub("max_tokens"), "expected at least 1 token");
                                DEFAULT_MAX_TOKENS
                            }
                            Some(v) => v,
                            None => DEFAULT_MAX_TOKENS,
                        },
                        None => DEFAULT_MAX_TOKENS,
                    };
                    let guardrail_id = mr
                        .get("guardrail_id")
                        .and_then(|n| read_str(n, &mr.sub("guardrail_id"), d));
                    mr.finish(d);
                    match (provider, model) {
                        (Some(provider), Some(model)) => out.push(LlmModel {
                            provider,
                            model,
                            weight,
                            max_tokens,
                            guardrail_id,
                        }),
                        _ => d.error(it.pos, &p, "each model needs `provider` and `model`"),
                    }
                }
            }
            _ => d.error(
                n.pos,
                "llm.models",
                "expected a list of `{provider, model, weight}`",
            ),
        }
    }
    r.finish(d);
    if out.iter().all(|m| m.weight <= 0.0) {
        d.error(
            node.pos,
            "llm.models",
            "needs at least one model with weight > 0",
        );
        return default_llm_models();
    }
    out
}
