//! GenAI semantic-convention conformance of what otelsim emits. The bundled
//! default mix is run once; every span and log record is checked against facts
//! of the OpenTelemetry GenAI and MCP conventions (registry and span
//! definitions of the semantic-conventions releases 1.30 to 1.41, the last that
//! held them before they moved to their own repository), written below as data:
//! the operation names, each registry key's type and the release that defines
//! it, the span kind of each operation, the attributes an operation requires,
//! and the ones a real client records.

use crate::support::Otelsim;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use otelsim::sink::otlp_json;
use std::collections::{BTreeMap, HashMap};

const T0: &str = "2026-01-01T00:00:00Z";

/// A semconv release, `(major, minor)`.
type Release = (u32, u32);

/// The release that moved the GenAI and MCP conventions out of the main
/// repository (their keys are deprecated there from this release on).
const MOVED_OUT: Release = (1, 42);

/// An attribute's type in the registry.
#[derive(Clone, Copy, Debug)]
enum Ty {
    Str,
    Int,
    Double,
    Bool,
    StrArray,
    /// `any`: a string (JSON) or a structured value.
    Any,
    /// A string from the listed members (open enums: the well-known values).
    Enum(&'static [&'static str]),
}

impl Ty {
    fn name(self) -> &'static str {
        match self {
            Ty::Str => "string",
            Ty::Int => "int",
            Ty::Double => "double",
            Ty::Bool => "boolean",
            Ty::StrArray => "string[]",
            Ty::Any => "any",
            Ty::Enum(_) => "one of its members",
        }
    }
}

/// One registry key: its name, type, and a release that defines it (it is
/// defined, not deprecated, from there up to 1.41).
struct RegKey {
    name: &'static str,
    ty: Ty,
    defined_by: Release,
}

const fn key(name: &'static str, ty: Ty, defined_by: Release) -> RegKey {
    RegKey {
        name,
        ty,
        defined_by,
    }
}

const OPERATIONS: &[&str] = &[
    "chat",
    "generate_content",
    "text_completion",
    "embeddings",
    "retrieval",
    "create_agent",
    "invoke_agent",
    "execute_tool",
    "invoke_workflow",
];

const PROVIDERS: &[&str] = &[
    "openai",
    "gcp.gen_ai",
    "gcp.vertex_ai",
    "gcp.gemini",
    "anthropic",
    "cohere",
    "azure.ai.inference",
    "azure.ai.openai",
    "ibm.watsonx.ai",
    "aws.bedrock",
    "perplexity",
    "x_ai",
    "deepseek",
    "groq",
    "mistral_ai",
];

const MCP_METHODS: &[&str] = &[
    "notifications/cancelled",
    "initialize",
    "notifications/initialized",
    "notifications/progress",
    "ping",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "notifications/resources/list_changed",
    "resources/subscribe",
    "resources/unsubscribe",
    "notifications/resources/updated",
    "prompts/list",
    "prompts/get",
    "notifications/prompts/list_changed",
    "tools/list",
    "tools/call",
    "notifications/tools/list_changed",
    "logging/setLevel",
    "notifications/message",
    "sampling/createMessage",
    "completion/complete",
    "roots/list",
    "notifications/roots/list_changed",
    "elicitation/create",
];

/// The non-deprecated keys of the `gen_ai`, `mcp`, `jsonrpc` and `aws.bedrock`
/// registries, and the `server` / `network.transport` keys GenAI and MCP spans use.
const REGISTRY: &[RegKey] = &[
    key("gen_ai.provider.name", Ty::Enum(PROVIDERS), (1, 37)),
    key("gen_ai.request.model", Ty::Str, (1, 30)),
    key("gen_ai.request.max_tokens", Ty::Int, (1, 30)),
    key("gen_ai.request.choice.count", Ty::Int, (1, 34)),
    key("gen_ai.request.temperature", Ty::Double, (1, 30)),
    key("gen_ai.request.top_p", Ty::Double, (1, 30)),
    key("gen_ai.request.top_k", Ty::Double, (1, 30)),
    key("gen_ai.request.stop_sequences", Ty::StrArray, (1, 30)),
    key("gen_ai.request.frequency_penalty", Ty::Double, (1, 30)),
    key("gen_ai.request.presence_penalty", Ty::Double, (1, 30)),
    key("gen_ai.request.encoding_formats", Ty::StrArray, (1, 30)),
    key("gen_ai.request.seed", Ty::Int, (1, 30)),
    key("gen_ai.request.stream", Ty::Bool, (1, 41)),
    key("gen_ai.response.id", Ty::Str, (1, 30)),
    key("gen_ai.response.model", Ty::Str, (1, 30)),
    key("gen_ai.response.finish_reasons", Ty::StrArray, (1, 30)),
    key("gen_ai.response.time_to_first_chunk", Ty::Double, (1, 41)),
    key("gen_ai.usage.input_tokens", Ty::Int, (1, 30)),
    key("gen_ai.usage.cache_read.input_tokens", Ty::Int, (1, 40)),
    key("gen_ai.usage.cache_creation.input_tokens", Ty::Int, (1, 40)),
    key("gen_ai.usage.output_tokens", Ty::Int, (1, 30)),
    key("gen_ai.usage.reasoning.output_tokens", Ty::Int, (1, 41)),
    key("gen_ai.token.type", Ty::Enum(&["input", "output"]), (1, 30)),
    key("gen_ai.conversation.id", Ty::Str, (1, 34)),
    key("gen_ai.agent.id", Ty::Str, (1, 34)),
    key("gen_ai.agent.name", Ty::Str, (1, 34)),
    key("gen_ai.agent.description", Ty::Str, (1, 34)),
    key("gen_ai.agent.version", Ty::Str, (1, 40)),
    key("gen_ai.tool.name", Ty::Str, (1, 34)),
    key("gen_ai.tool.call.id", Ty::Str, (1, 34)),
    key("gen_ai.tool.description", Ty::Str, (1, 34)),
    key("gen_ai.tool.type", Ty::Str, (1, 34)),
    key("gen_ai.tool.call.arguments", Ty::Any, (1, 38)),
    key("gen_ai.tool.call.result", Ty::Any, (1, 38)),
    key("gen_ai.tool.definitions", Ty::Any, (1, 38)),
    key("gen_ai.data_source.id", Ty::Str, (1, 34)),
    key("gen_ai.operation.name", Ty::Enum(OPERATIONS), (1, 30)),
    key(
        "gen_ai.output.type",
        Ty::Enum(&["text", "json", "image", "speech"]),
        (1, 34),
    ),
    key("gen_ai.embeddings.dimension.count", Ty::Int, (1, 38)),
    key("gen_ai.retrieval.documents", Ty::Any, (1, 40)),
    key("gen_ai.retrieval.query.text", Ty::Str, (1, 40)),
    key("gen_ai.system_instructions", Ty::Any, (1, 37)),
    key("gen_ai.input.messages", Ty::Any, (1, 37)),
    key("gen_ai.output.messages", Ty::Any, (1, 37)),
    key("gen_ai.evaluation.name", Ty::Str, (1, 38)),
    key("gen_ai.evaluation.score.value", Ty::Double, (1, 38)),
    key("gen_ai.evaluation.score.label", Ty::Str, (1, 38)),
    key("gen_ai.evaluation.explanation", Ty::Str, (1, 38)),
    key("gen_ai.prompt.name", Ty::Str, (1, 39)),
    key("gen_ai.workflow.name", Ty::Str, (1, 41)),
    key("mcp.method.name", Ty::Enum(MCP_METHODS), (1, 39)),
    key("mcp.session.id", Ty::Str, (1, 39)),
    key("mcp.resource.uri", Ty::Str, (1, 39)),
    key("mcp.protocol.version", Ty::Str, (1, 39)),
    key("jsonrpc.request.id", Ty::Str, (1, 39)),
    key("jsonrpc.protocol.version", Ty::Str, (1, 39)),
    key("aws.bedrock.guardrail.id", Ty::Str, (1, 34)),
    key("aws.bedrock.knowledge_base.id", Ty::Str, (1, 34)),
    key("server.address", Ty::Str, (1, 30)),
    key("server.port", Ty::Int, (1, 30)),
    key(
        "network.transport",
        Ty::Enum(&["tcp", "udp", "pipe", "unix", "quic"]),
        (1, 30),
    ),
];

/// Namespaces whose every key must be in [`REGISTRY`] (nothing invented).
const CHECKED_NAMESPACES: &[&str] = &["gen_ai.", "mcp.", "jsonrpc.", "aws.bedrock."];

const INTERNAL: i32 = 1;
const CLIENT: i32 = 3;

/// The span kinds the conventions give each operation.
fn kinds_of(op: &str) -> &'static [i32] {
    match op {
        // Inference, embeddings, retrieval and agent creation are calls to a
        // remote GenAI service (an in-process model MAY be INTERNAL; otelsim's
        // providers are remote).
        "chat" | "generate_content" | "text_completion" | "embeddings" | "retrieval"
        | "create_agent" => &[CLIENT],
        "invoke_agent" => &[CLIENT, INTERNAL],
        "execute_tool" | "invoke_workflow" => &[INTERNAL],
        _ => &[],
    }
}

/// Required attributes per operation (besides `gen_ai.operation.name`).
fn required_for(op: &str) -> &'static [&'static str] {
    match op {
        "chat" | "generate_content" | "text_completion" | "embeddings" | "create_agent"
        | "invoke_agent" => &["gen_ai.provider.name"],
        "execute_tool" => &["gen_ai.tool.name"],
        _ => &[],
    }
}

/// Attributes a real inference client records on every call (recommended).
const INFERENCE_RECOMMENDED: &[&str] = &[
    "server.address",
    "server.port",
    "gen_ai.request.model",
    "gen_ai.request.max_tokens",
    "gen_ai.response.model",
    "gen_ai.response.finish_reasons",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
];

/// Provider-specific spans: attributes required (`aws.bedrock.client`) or
/// listed for the provider's usage report (`openai.inference.client`,
/// `anthropic.inference.client`).
fn provider_attrs(provider: &str) -> &'static [&'static str] {
    match provider {
        "aws.bedrock" => &["aws.bedrock.guardrail.id"],
        "openai" => &["gen_ai.usage.cache_read.input_tokens"],
        "anthropic" => &[
            "gen_ai.usage.cache_read.input_tokens",
            "gen_ai.usage.cache_creation.input_tokens",
        ],
        _ => &[],
    }
}

/// Attributes a real MCP client records on each request (CLIENT span).
const MCP_CLIENT_RECOMMENDED: &[&str] = &[
    "mcp.method.name",
    "mcp.session.id",
    "mcp.protocol.version",
    "jsonrpc.request.id",
    "network.transport",
    "server.address",
    "server.port",
];

/// Problems found, by kind: how many, and the first example.
#[derive(Default)]
struct Problems(BTreeMap<String, (usize, String)>);

impl Problems {
    fn add(&mut self, kind: impl Into<String>, example: impl FnOnce() -> String) {
        let e = self.0.entry(kind.into()).or_insert((0, String::new()));
        if e.0 == 0 {
            e.1 = example();
        }
        e.0 += 1;
    }

    fn report(&self) -> String {
        self.0
            .iter()
            .map(|(k, (n, ex))| format!("- {k}: {n}× (e.g. {ex})"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn attrs(kvs: &[KeyValue]) -> HashMap<&str, &Value> {
    kvs.iter()
        .filter_map(|kv| Some((kv.key.as_str(), kv.value.as_ref()?.value.as_ref()?)))
        .collect()
}

fn text<'a>(a: &HashMap<&str, &'a Value>, k: &str) -> Option<&'a str> {
    match a.get(k) {
        Some(Value::StringValue(s)) => Some(s),
        _ => None,
    }
}

fn int(a: &HashMap<&str, &Value>, k: &str) -> Option<i64> {
    match a.get(k) {
        Some(Value::IntValue(i)) => Some(*i),
        _ => None,
    }
}

/// Whether `v` is a value of `ty`.
fn has_type(v: &Value, ty: Ty) -> bool {
    match (ty, v) {
        (Ty::Any, _) => true,
        (Ty::Str, Value::StringValue(_)) => true,
        (Ty::Enum(members), Value::StringValue(s)) => members.contains(&s.as_str()),
        (Ty::Int, Value::IntValue(_)) => true,
        (Ty::Double, Value::DoubleValue(_)) => true,
        (Ty::Bool, Value::BoolValue(_)) => true,
        (Ty::StrArray, Value::ArrayValue(a)) => a
            .values
            .iter()
            .all(|x| matches!(x.value, Some(Value::StringValue(_)))),
        _ => false,
    }
}

fn registry(name: &str) -> Option<&'static RegKey> {
    REGISTRY.iter().find(|k| k.name == name)
}

/// Checks the keys and types of one attribute list; returns the newest
/// release among the registry keys it uses.
fn check_keys(where_: &str, kvs: &[KeyValue], p: &mut Problems) -> Release {
    let mut newest = (0, 0);
    for (k, v) in attrs(kvs) {
        match registry(k) {
            Some(rk) => {
                newest = newest.max(rk.defined_by);
                if !has_type(v, rk.ty) {
                    p.add(format!("{k} is not {} ({where_})", rk.ty.name()), || {
                        format!("{v:?}")
                    });
                }
            }
            None if CHECKED_NAMESPACES.iter().any(|ns| k.starts_with(ns)) => p
                .add(format!("{k} is no registry key ({where_})"), || {
                    format!("{v:?}")
                }),
            None => {}
        }
    }
    newest
}

fn check_span(s: &Span, p: &mut Problems) -> Release {
    let mut newest = check_keys("span", &s.attributes, p);
    for e in &s.events {
        newest = newest.max(check_keys("span event", &e.attributes, p));
    }
    let a = attrs(&s.attributes);
    let failed = s.status.as_ref().is_some_and(|st| st.code == 2);
    let Some(op) = text(&a, "gen_ai.operation.name") else {
        // An MCP request without a GenAI operation: the MCP client span.
        if let Some(method) = text(&a, "mcp.method.name") {
            // MCP conventions: `{mcp.method.name} {target}`, the tool for tools/call.
            let want = match text(&a, "gen_ai.tool.name") {
                Some(tool) => format!("{method} {tool}"),
                None => method.to_string(),
            };
            if s.name != want {
                p.add(format!("an MCP client span is not named `{want}`"), || {
                    s.name.clone()
                });
            }
            if s.kind != CLIENT {
                p.add("an MCP client span is not CLIENT", || s.name.clone());
            }
            for k in MCP_CLIENT_RECOMMENDED {
                if !a.contains_key(k) {
                    p.add(format!("an MCP client span lacks {k}"), || s.name.clone());
                }
            }
        }
        return newest;
    };
    if !OPERATIONS.contains(&op) {
        p.add(format!("operation `{op}` is not defined"), || {
            s.name.clone()
        });
        return newest;
    }
    // GenAI conventions: `{gen_ai.operation.name} {target}`.
    let target = match op {
        "chat" | "text_completion" | "generate_content" | "embeddings" => {
            text(&a, "gen_ai.request.model")
        }
        "execute_tool" => text(&a, "gen_ai.tool.name"),
        "invoke_agent" | "create_agent" => text(&a, "gen_ai.agent.name"),
        "retrieval" => text(&a, "gen_ai.data_source.id"),
        _ => None,
    };
    let want = target.map_or(op.to_string(), |t| format!("{op} {t}"));
    if s.name != want {
        p.add(format!("a {op} span is not named `{want}`"), || {
            s.name.clone()
        });
    }
    if !kinds_of(op).contains(&s.kind) {
        p.add(
            format!("{op} span of kind {} (allowed {:?})", s.kind, kinds_of(op)),
            || s.name.clone(),
        );
    }
    for k in required_for(op) {
        if !a.contains_key(k) {
            p.add(format!("{op} span lacks required {k}"), || s.name.clone());
        }
    }
    if failed && !a.contains_key("error.type") {
        p.add(format!("failed {op} span lacks error.type"), || {
            s.name.clone()
        });
    }
    if a.contains_key("server.address") && !a.contains_key("server.port") {
        p.add(
            format!("{op} span has server.address without server.port"),
            || s.name.clone(),
        );
    }
    if op == "chat" {
        for k in INFERENCE_RECOMMENDED {
            if !a.contains_key(k) {
                p.add(format!("chat span lacks {k}"), || s.name.clone());
            }
        }
        if !failed && !a.contains_key("gen_ai.response.id") {
            p.add("successful chat span lacks gen_ai.response.id", || {
                s.name.clone()
            });
        }
        let provider = text(&a, "gen_ai.provider.name").unwrap_or("");
        for k in provider_attrs(provider) {
            // Usage comes with a response: a failed call reports none.
            let reported = !failed || !k.starts_with("gen_ai.usage.");
            if reported && !a.contains_key(k) {
                p.add(format!("{provider} chat span lacks {k}"), || s.name.clone());
            }
        }
        // Input tokens include the cached ones.
        let input = int(&a, "gen_ai.usage.input_tokens").unwrap_or(0);
        for k in [
            "gen_ai.usage.cache_read.input_tokens",
            "gen_ai.usage.cache_creation.input_tokens",
        ] {
            if int(&a, k).is_some_and(|c| c < 0 || c > input) {
                p.add(format!("{k} outside 0..=input_tokens"), || s.name.clone());
            }
        }
        if let (Some(max), Some(out)) = (
            int(&a, "gen_ai.request.max_tokens"),
            int(&a, "gen_ai.usage.output_tokens"),
        ) {
            if out > max {
                p.add("output_tokens above max_tokens", || s.name.clone());
            }
        }
    }
    newest
}

/// `https://opentelemetry.io/schemas/1.41.0` → `(1, 41)`.
fn schema_release(url: &str) -> Option<Release> {
    let v = url.strip_prefix("https://opentelemetry.io/schemas/")?;
    let mut it = v.split('.');
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

fn check_schema(url: &str, what: &str, urls: &mut BTreeMap<String, usize>) {
    *urls.entry(format!("{what}: {url}")).or_default() += 1;
}

#[test]
fn the_default_mix_follows_the_genai_conventions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.jsonl");
    Otelsim::new()
        .cli("run --count 200 --interval 0")
        .seed(1)
        .start_time(T0)
        .arg("--output")
        .arg(format!("otlp-json:{}", path.display()))
        .run_ok();
    let body = std::fs::read_to_string(&path).expect("output file");
    let mut traces: Vec<ExportTraceServiceRequest> = Vec::new();
    let mut logs: Vec<ExportLogsServiceRequest> = Vec::new();
    for line in body.lines() {
        if line.starts_with("{\"resourceSpans\"") {
            traces.push(otlp_json::decode_traces(line.as_bytes()).expect("OTLP/JSON traces"));
        } else if line.starts_with("{\"resourceLogs\"") {
            logs.push(otlp_json::decode_logs(line.as_bytes()).expect("OTLP/JSON logs"));
        }
    }
    let mut p = Problems::default();
    let mut newest = (0, 0);
    let mut urls: BTreeMap<String, usize> = BTreeMap::new();
    let mut ops: BTreeMap<String, usize> = BTreeMap::new();
    let mut providers: BTreeMap<String, usize> = BTreeMap::new();
    let mut records = 0;
    for rs in traces.iter().flat_map(|r| &r.resource_spans) {
        check_schema(&rs.schema_url, "resource", &mut urls);
        for ss in &rs.scope_spans {
            check_schema(&ss.schema_url, "scope", &mut urls);
            for s in &ss.spans {
                newest = newest.max(check_span(s, &mut p));
                let a = attrs(&s.attributes);
                if let Some(op) = text(&a, "gen_ai.operation.name") {
                    *ops.entry(op.to_string()).or_default() += 1;
                    if op == "chat" {
                        let provider = text(&a, "gen_ai.provider.name").unwrap_or("");
                        *providers.entry(provider.to_string()).or_default() += 1;
                    }
                }
            }
        }
    }
    for rl in logs.iter().flat_map(|r| &r.resource_logs) {
        check_schema(&rl.schema_url, "resource", &mut urls);
        for sl in &rl.scope_logs {
            check_schema(&sl.schema_url, "scope", &mut urls);
            for r in &sl.log_records {
                records += 1;
                newest = newest.max(check_keys("log record", &r.attributes, &mut p));
                if r.attributes.iter().any(|kv| kv.key == "event.name") {
                    // Deprecated: its value belongs in the record's EventName field only.
                    p.add("log record sets the event.name attribute", || {
                        r.event_name.clone()
                    });
                }
                if r.event_name.is_empty() {
                    p.add("log record without EventName", || format!("{:?}", r.body));
                }
            }
        }
    }
    // The schema URL names a release that defines every key emitted, before they moved out.
    for u in urls.keys() {
        let url = u.split_once(": ").map_or("", |(_, url)| url);
        match schema_release(url) {
            Some(r) if r >= newest && r < MOVED_OUT => {}
            _ => p.add(
                format!(
                    "schema_url is not a release in {}.{}..{}.{} (the keys emitted need {}.{})",
                    newest.0, newest.1, MOVED_OUT.0, MOVED_OUT.1, newest.0, newest.1
                ),
                || u.clone(),
            ),
        }
    }
    // The mix must exercise what is checked.
    for op in ["chat", "execute_tool", "invoke_agent"] {
        assert!(ops.get(op).is_some_and(|n| *n > 10), "{op} spans: {ops:?}");
    }
    for provider in ["openai", "anthropic", "aws.bedrock"] {
        assert!(
            providers.contains_key(provider),
            "chat providers: {providers:?}"
        );
    }
    assert!(records > 100, "{records} log records");
    assert!(
        p.0.is_empty(),
        "{} kinds of problems against the GenAI conventions:\n{}",
        p.0.len(),
        p.report()
    );
}

/// A reasoning model (`data_plane.reasoning`): its reasoning tokens and thinking
/// events use registry keys of the right type, within the output tokens.
#[test]
fn reasoning_follows_the_genai_conventions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.jsonl");
    Otelsim::new()
        .cli("scenario --name new_claim_phone_reasoning --count 3")
        .seed(1)
        .start_time(T0)
        .arg("--output")
        .arg(format!("otlp-json:{}", path.display()))
        .run_ok();
    let mut p = Problems::default();
    let mut reasoning = 0;
    for line in std::fs::read_to_string(&path).unwrap().lines() {
        if !line.starts_with("{\"resourceSpans\"") {
            continue;
        }
        let req = otlp_json::decode_traces(line.as_bytes()).expect("OTLP/JSON traces");
        for s in req
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .flat_map(|ss| &ss.spans)
        {
            check_span(s, &mut p);
            for e in &s.events {
                check_keys("span event", &e.attributes, &mut p);
            }
            let a = attrs(&s.attributes);
            if let Some(r) = int(&a, "gen_ai.usage.reasoning.output_tokens") {
                reasoning += 1;
                let out = int(&a, "gen_ai.usage.output_tokens").unwrap_or(0);
                assert!(r < out, "reasoning {r} within output {out}");
            }
        }
    }
    assert!(
        reasoning > 10,
        "{reasoning} LLM calls with reasoning tokens"
    );
    assert!(p.0.is_empty(), "{}", p.report());
}
