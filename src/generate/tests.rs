//! Unit tests of generation against the bundled config and conventions:
//! nesting, determinism, services, classes, failures and attribute sampling.

use super::*;
use crate::class::SpanClass;
use crate::diag::Diags;
use crate::registry::Registry;
use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;

const END: u64 = 1_800_000_000_000_000_000;

fn world_and_registry() -> (Registry, World) {
    let reg = Registry::load(&Default::default()).expect("bundled files load");
    let mut d = Diags::new("test");
    let opts = crate::plan::WorldOptions {
        vendor: "vendor".into(),
        ..Default::default()
    };
    let world = World::new(&reg.config, &reg.semconv, &opts, &mut d);
    (reg, world)
}

/// Compiles the bundled scenario `name` with its semconv fill.
fn plan_of(reg: &Registry, world: &World, name: &str) -> ScenarioPlan {
    let def = reg
        .scenarios
        .iter()
        .find(|s| s.name == name)
        .expect("bundled scenario");
    let mut d = Diags::new("test");
    let compiler = crate::plan::Compiler {
        world,
        cfg: &reg.config,
        sc: &reg.semconv,
    };
    let mut plan = compiler.scenario(def, &mut d).expect("compiles");
    attach_semconv_fill(world, &reg.semconv, std::iter::once(&mut plan));
    plan
}

/// Generates one request of `plan`.
fn request_of(world: &World, plan: &ScenarioPlan, seed: u64) -> Vec<TraceRecord> {
    let input = RequestInput {
        session_id: "sess".into(),
        request_id: "req".into(),
        enduser_id: "user".into(),
        turn_index: None,
        sample: plan.samples.first(),
        window: None,
        effects: &crate::incidents::Effects::default(),
    };
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    generate_request(world, plan, &input, END, &mut rng)
}

/// Compiles the bundled scenario `name` (with its semconv fill) and generates one request.
fn request(reg: &Registry, world: &World, name: &str, seed: u64) -> Vec<TraceRecord> {
    request_of(world, &plan_of(reg, world, name), seed)
}

/// Declares one more attribute for the span classes `applies_to`.
fn declare(reg: &mut Registry, name: &str, ty: crate::model::semconv::AttrType, applies_to: &str) {
    reg.semconv.sections[0]
        .1
        .push(crate::model::semconv::AttrDef {
            name: name.into(),
            ty,
            required: false,
            allowed: Vec::new(),
            examples: Vec::new(),
            default: None,
            applies_to: vec![applies_to.into()],
            pos: Default::default(),
        });
}

fn spans_of(traces: &[TraceRecord]) -> Vec<&SpanRecord> {
    traces.iter().flat_map(|t| &t.spans).collect()
}

#[test]
fn children_nest_inside_their_parents_and_the_request_ends_at_the_anchor() {
    let (reg, world) = world_and_registry();
    for seed in 0..20 {
        let traces = request(&reg, &world, "tool_retry_backoff", seed);
        let end = traces.iter().flat_map(|t| &t.spans).map(|s| s.end_ns).max();
        assert_eq!(end, Some(END));
        for t in &traces {
            for s in &t.spans {
                assert!(s.start_ns <= s.end_ns);
                if let Some(p) = s.parent_span_id {
                    let parent = t
                        .spans
                        .iter()
                        .find(|x| x.span_id == p)
                        .expect("parent in trace");
                    assert!(parent.start_ns <= s.start_ns && s.end_ns <= parent.end_ns);
                }
                for e in &s.events {
                    assert!(s.start_ns <= e.time_ns && e.time_ns <= s.end_ns);
                }
            }
        }
    }
}

#[test]
fn the_same_seed_gives_the_same_request_and_another_seed_another() {
    let (reg, world) = world_and_registry();
    let a = request(&reg, &world, "new_claim_phone", 7);
    assert_eq!(a, request(&reg, &world, "new_claim_phone", 7));
    assert_ne!(a, request(&reg, &world, "new_claim_phone", 8));
}

#[test]
fn spans_carry_their_class_and_their_planes_component_service() {
    let (reg, world) = world_and_registry();
    let traces = request(&reg, &world, "tool_retry_backoff", 3);
    let spans: Vec<&SpanRecord> = traces.iter().flat_map(|t| &t.spans).collect();
    let class_key = &world.keys.span_class;
    for s in &spans {
        let written = s
            .attr(class_key)
            .and_then(AttrValue::as_str)
            .expect("span.class");
        assert_eq!(crate::class::ClassOf::parse(written), s.class, "{written}");
    }
    let llm = spans
        .iter()
        .find(|s| s.class.class == SpanClass::LlmCall)
        .expect("an llm.call span");
    assert_eq!(llm.service, world.services.plane(false, Some("llm")));
    let attempts: Vec<_> = spans.iter().filter(|s| s.class.attempt).collect();
    assert!(attempts.len() >= 2, "the first attempt always fails");
    assert!(attempts
        .iter()
        .all(|s| s.service == world.services.plane(false, Some("mcp_client"))));
}

#[test]
fn a_failed_span_has_error_status_type_and_exception_event() {
    let (reg, world) = world_and_registry();
    let traces = request(&reg, &world, "tool_retry_backoff", 11);
    let failed: Vec<&SpanRecord> = traces
        .iter()
        .flat_map(|t| &t.spans)
        .filter(|s| s.status == StatusCode::Error)
        .collect();
    assert!(
        !failed.is_empty(),
        "force_initial_failure fails the first attempt"
    );
    for s in failed {
        let et = s
            .attr("error.type")
            .and_then(AttrValue::as_str)
            .expect("error.type");
        assert!(world.enums["error.type"].contains(&AttrValue::str(et)));
        assert!(s.events.iter().any(|e| &*e.name == "exception"));
        assert!(s.status_message.is_some());
    }
}

#[test]
fn numeric_attributes_keep_their_type_whoever_samples_them() {
    use crate::model::distribution::Distribution;
    let mut rng = Pcg64Mcg::seed_from_u64(1);
    let uniform = Distribution::Uniform { min: 0.0, max: 1.0 };
    let double = crate::plan::AttrGen::Numeric {
        dist: uniform.clone(),
        integer: false,
    };
    for _ in 0..50 {
        match double.sample(&mut rng) {
            AttrValue::Double(x) => {
                assert!((0.0..=1.0).contains(&x));
                assert_eq!((x * 1000.0).round() / 1000.0, x, "three decimals");
            }
            other => panic!("a double attribute came out as {other:?}"),
        }
    }
    let int = crate::plan::AttrGen::Numeric {
        dist: Distribution::Uniform {
            min: 0.0,
            max: 10.0,
        },
        integer: true,
    };
    assert!(matches!(int.sample(&mut rng), AttrValue::Int(0..=10)));
}

#[test]
fn semconv_fill_gives_a_required_double_a_double() {
    use crate::model::semconv::{AttrDef, AttrType};
    let (mut reg, world) = world_and_registry();
    reg.semconv.sections[0].1.push(AttrDef {
        name: "vendor.llm.temperature.effective".into(),
        ty: AttrType::Double,
        required: true,
        allowed: Vec::new(),
        examples: Vec::new(),
        default: None,
        applies_to: vec!["llm.call".into()],
        pos: Default::default(),
    });
    let traces = request(&reg, &world, "new_claim_phone", 5);
    let llm = traces
        .iter()
        .flat_map(|t| &t.spans)
        .find(|s| s.class.class == SpanClass::LlmCall)
        .expect("an llm.call span");
    assert!(
        matches!(
            llm.attr("vendor.llm.temperature.effective"),
            Some(AttrValue::Double(_))
        ),
        "{:?}",
        llm.attr("vendor.llm.temperature.effective")
    );
}

#[test]
fn code_owned_keys_are_never_filled_from_the_conventions() {
    let (_, world) = world_and_registry();
    let k = &world.keys;
    for owned in [
        &k.error_type,
        &k.step_outcome,
        &k.input_tokens,
        &k.tool_name,
    ] {
        assert!(owned_by_code(k, owned), "{owned}");
    }
    assert!(!owned_by_code(k, "vendor.route"));
}

#[test]
fn a_declared_duration_is_the_spans_own_as_laid_out() {
    use crate::model::semconv::AttrType;
    let (mut reg, world) = world_and_registry();
    declare(&mut reg, "vendor.llm.latency_ms", AttrType::Int, "llm.call");
    declare(
        &mut reg,
        "vendor.turn.duration_ms",
        AttrType::Double,
        "a2a.orchestrate",
    );
    for seed in 0..10 {
        let traces = request(&reg, &world, "tool_retry_backoff", seed);
        let spans = spans_of(&traces);
        let mut checked = 0;
        for s in spans {
            let ms = s.duration_ns() as f64 / MS;
            match s.attr("vendor.llm.latency_ms") {
                Some(AttrValue::Int(v)) => assert_eq!(*v, ms.round() as i64, "{}", s.name),
                Some(other) => panic!("an int attribute came out as {other:?}"),
                None => assert_ne!(s.class.class, SpanClass::LlmCall),
            }
            if let Some(v) = s.attr("vendor.turn.duration_ms") {
                // The turn is laid out around its children: its final duration, to the µs.
                assert_eq!(*v, AttrValue::Double((ms * 1000.0).round() / 1000.0));
                checked += 1;
            }
        }
        assert_eq!(checked, 1, "one agent turn");
    }
}

#[test]
fn a_single_trace_requests_root_duration_covers_every_part() {
    use crate::model::semconv::AttrType;
    let (mut reg, world) = world_and_registry();
    declare(
        &mut reg,
        "vendor.request.validation.duration_ms",
        AttrType::Int,
        "request.validation",
    );
    let mut plan = plan_of(&reg, &world, "new_claim_phone");
    assert!(plan.parts.len() > 1, "validation, then the turn");
    plan.single_trace = true;
    let traces = request_of(&world, &plan, 4);
    assert_eq!(traces.len(), 1);
    let root = &traces[0].spans[0];
    let turn = traces[0]
        .spans
        .iter()
        .find(|s| s.class.class == SpanClass::Orchestrate)
        .expect("the turn");
    assert!(root.end_ns >= turn.end_ns, "the root covers the turn");
    let ms = (root.duration_ns() as f64 / MS).round() as i64;
    assert_eq!(
        root.attr("vendor.request.validation.duration_ms"),
        Some(&AttrValue::Int(ms))
    );
}

#[test]
fn a_retry_carries_the_wait_before_it_its_reason_and_its_http_status() {
    let (reg, world) = world_and_registry();
    for seed in 0..10 {
        let traces = request(&reg, &world, "tool_retry_backoff", seed);
        let attempts: Vec<&SpanRecord> = spans_of(&traces)
            .into_iter()
            .filter(|s| s.class.attempt)
            .collect();
        assert!(attempts.len() >= 2, "the first attempt always fails");
        for (i, a) in attempts.iter().enumerate() {
            let status = a.attr("http.response.status_code");
            if a.status == StatusCode::Error {
                let et = a.attr("error.type").and_then(AttrValue::as_str).unwrap();
                let want = match et {
                    "timeout" => 504,
                    "unavailable" => 503,
                    _ => 500,
                };
                assert_eq!(status, Some(&AttrValue::Int(want)), "{et}");
                assert_eq!(
                    a.attr("vendor.error.category"),
                    Some(&AttrValue::str("runtime"))
                );
            } else {
                assert_eq!(status, Some(&AttrValue::Int(200)));
                assert_eq!(a.attr("vendor.error.category"), None, "success");
            }
            match i {
                0 => {
                    assert_eq!(a.attr("vendor.retry.backoff.ms"), None);
                    assert_eq!(a.attr("vendor.retry.reason"), None);
                }
                _ => {
                    let prev = attempts[i - 1];
                    let gap = (a.start_ns - prev.end_ns) as f64 / MS;
                    assert_eq!(
                        a.attr("vendor.retry.backoff.ms"),
                        Some(&AttrValue::Int(gap.round() as i64)),
                        "the wait between the attempts"
                    );
                    assert!(a.attr("vendor.retry.reason").is_some());
                }
            }
        }
    }
}

#[test]
fn invalid_arguments_are_a_validation_failure_with_a_400() {
    let (reg, world) = world_and_registry();
    let mut seen = false;
    for seed in 0..10 {
        let traces = request(&reg, &world, "new_claim_phone_4xx_invalid_arguments", seed);
        for s in spans_of(&traces) {
            if s.attr("error.type") == Some(&AttrValue::str("invalid_arguments")) {
                assert_eq!(
                    s.attr("vendor.error.category"),
                    Some(&AttrValue::str("validation")),
                    "{}",
                    s.name
                );
                if s.class.attempt {
                    let status = s.attr("http.response.status_code");
                    assert!(
                        matches!(status, Some(AttrValue::Int(400..=499))),
                        "{status:?}"
                    );
                }
                seen = true;
            }
        }
    }
    assert!(
        seen,
        "the scenario fails a tool call with invalid arguments"
    );
}

#[test]
fn an_llm_call_that_asks_for_a_tool_names_the_call_it_triggers() {
    use crate::model::semconv::AttrType;
    let (mut reg, world) = world_and_registry();
    declare(
        &mut reg,
        "gen_ai.tool.call.id",
        AttrType::String,
        "llm.call",
    );
    for seed in 0..5 {
        let traces = request(&reg, &world, "new_claim_phone", seed);
        let spans = spans_of(&traces);
        let llm = spans
            .iter()
            .find(|s| s.class.class == SpanClass::LlmCall)
            .expect("an llm.call");
        let call = spans
            .iter()
            .find(|s| s.class.class == SpanClass::McpToolExecute && !s.class.attempt)
            .expect("a tool call");
        assert_eq!(llm.attr("gen_ai.tool.name"), call.attr("gen_ai.tool.name"));
        assert!(llm.attr("gen_ai.tool.call.id").is_some());
        assert_eq!(
            llm.attr("gen_ai.tool.call.id"),
            call.attr("gen_ai.tool.call.id")
        );
    }
}

#[test]
fn the_turn_and_its_plan_carry_what_the_request_and_plan_know() {
    let (reg, world) = world_and_registry();
    let traces = request(&reg, &world, "new_claim_phone", 2);
    let spans = spans_of(&traces);
    let turn = spans
        .iter()
        .find(|s| s.class.class == SpanClass::Orchestrate)
        .expect("the turn");
    assert_eq!(
        turn.attr("vendor.turn.index"),
        Some(&AttrValue::Int(1)),
        "a lone request is turn 1"
    );
    assert_eq!(
        turn.attr("vendor.enduser.pseudo.id"),
        Some(&AttrValue::str("user"))
    );
    let tasks = spans
        .iter()
        .filter(|s| s.class.class == SpanClass::TaskExecute)
        .count() as i64;
    let planner = spans
        .iter()
        .find(|s| s.class.class == SpanClass::Planner)
        .expect("a planner");
    assert_eq!(
        planner.attr("vendor.planner.task.count"),
        Some(&AttrValue::Int(tasks))
    );
    let llm = spans
        .iter()
        .find(|s| s.class.class == SpanClass::LlmCall)
        .expect("an llm.call");
    assert_eq!(
        llm.attr("vendor.redaction.applied"),
        turn.attr("vendor.redaction.applied")
    );
    assert_eq!(
        llm.attr("vendor.llm.tool.request.count"),
        Some(&AttrValue::Int(1))
    );
}

#[test]
fn a_turn_runs_on_one_model_whose_provider_the_agent_span_reports() {
    let (reg, world) = world_and_registry();
    let k = &world.keys;
    let mut providers = std::collections::BTreeSet::new();
    for seed in 0..40 {
        for t in request(&reg, &world, "agent_turn_with_rag", seed) {
            let Some(agent) = t
                .spans
                .iter()
                .find(|s| s.class.class == SpanClass::Orchestrate)
            else {
                continue;
            };
            let provider = agent
                .attr(&k.provider)
                .expect("invoke_agent has a provider");
            let model = agent.attr(&k.request_model).expect("and a model");
            providers.insert(provider.to_string());
            for llm in t
                .spans
                .iter()
                .filter(|s| s.class.class == SpanClass::LlmCall)
            {
                assert_eq!(llm.attr(&k.provider), Some(provider), "seed {seed}");
                assert_eq!(llm.attr(&k.request_model), Some(model), "seed {seed}");
            }
        }
    }
    assert!(
        providers.len() > 2,
        "the catalogue's providers come up: {providers:?}"
    );
}

#[test]
fn model_calls_record_what_their_provider_reports() {
    let (reg, world) = world_and_registry();
    let k = &world.keys;
    let mut seen = std::collections::BTreeSet::new();
    for seed in 0..80 {
        for t in request(&reg, &world, "agent_turn_with_rag", seed) {
            for s in t
                .spans
                .iter()
                .filter(|s| s.class.class == SpanClass::LlmCall)
            {
                let provider = s.attr(&k.provider).and_then(AttrValue::as_str).unwrap();
                let api = crate::plan::provider_api(provider);
                seen.insert(provider.to_string());
                let int = |key: &Key| match s.attr(key) {
                    Some(AttrValue::Int(i)) => Some(*i),
                    _ => None,
                };
                assert_eq!(s.attr(&k.server_address), Some(&AttrValue::str(api.host)));
                assert_eq!(int(&k.server_port), Some(443));
                let input = int(&k.input_tokens).unwrap();
                let output = int(&k.output_tokens).unwrap();
                assert!(output <= int(&k.max_tokens).unwrap());
                let failed = s.status == StatusCode::Error;
                let reasons = s.attr(&k.finish_reasons);
                assert!(matches!(reasons, Some(AttrValue::StrArray(r)) if r.len() == 1));
                assert_eq!(s.attr(&k.response_id).is_some(), !failed);
                let (read, created) = (int(&k.cache_read_tokens), int(&k.cache_creation_tokens));
                let reports = !failed && api.cache != crate::plan::CacheReport::Nothing;
                assert_eq!(read.is_some(), reports, "{provider}");
                assert_eq!(
                    created.is_some(),
                    !failed && api.cache == crate::plan::CacheReport::ReadAndCreation,
                    "{provider}"
                );
                assert!(read.unwrap_or(0) + created.unwrap_or(0) <= input);
                assert_eq!(
                    s.attr(&k.guardrail_id).is_some(),
                    provider == "aws.bedrock",
                    "{provider}"
                );
                if let Some(AttrValue::Str(id)) = s.attr(&k.response_id) {
                    match provider {
                        "openai" => assert!(id.starts_with("chatcmpl-") && id.len() == 38, "{id}"),
                        "anthropic" => assert!(id.starts_with("msg_") && id.len() == 28, "{id}"),
                        "aws.bedrock" => {
                            assert_eq!(id.len(), 36, "{id}");
                            assert_eq!(&id[14..15], "4", "a version-4 UUID: {id}");
                        }
                        _ => assert!(!id.is_empty()),
                    }
                }
            }
        }
    }
    for p in ["openai", "anthropic", "aws.bedrock"] {
        assert!(seen.contains(p), "{p} in {seen:?}");
    }
}

#[test]
fn mcp_requests_are_client_spans_under_an_internal_tool_execution() {
    let (reg, world) = world_and_registry();
    let k = &world.keys;
    let traces = request(&reg, &world, "tool_retry_backoff", 5);
    let spans = spans_of(&traces);
    let call = spans
        .iter()
        .find(|s| s.class.class == SpanClass::McpToolExecute && !s.class.attempt)
        .expect("a tool call");
    assert_eq!(call.kind, SpanKind::Internal);
    let attempts: Vec<_> = spans
        .iter()
        .filter(|s| s.class.attempt && s.parent_span_id == Some(call.span_id))
        .collect();
    assert!(attempts.len() > 1, "tool_retry_backoff retries");
    for (i, a) in attempts.iter().enumerate() {
        assert_eq!(a.kind, SpanKind::Client);
        assert_eq!(
            a.attr(&k.jsonrpc_request_id),
            Some(&AttrValue::str(&(i + 1).to_string())),
            "one JSON-RPC request per attempt, numbered on the session"
        );
        assert_eq!(
            a.attr(&k.mcp_protocol_version),
            Some(&world.mcp_protocol_version)
        );
        assert_eq!(a.attr(&k.network_transport), Some(&AttrValue::str("tcp")));
        assert_eq!(
            a.attr(&k.server_address),
            Some(&AttrValue::str("mcp-phone.acme.internal"))
        );
        assert_eq!(a.attr(&k.server_port), Some(&AttrValue::Int(443)));
    }
    let agent = spans
        .iter()
        .find(|s| s.class.class == SpanClass::Orchestrate)
        .unwrap();
    assert_eq!(agent.kind, SpanKind::Internal);
}
