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

/// Compiles the bundled scenario `name` (with its semconv fill) and generates one request.
fn request(reg: &Registry, world: &World, name: &str, seed: u64) -> Vec<TraceRecord> {
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
    let input = RequestInput {
        session_id: "sess".into(),
        request_id: "req".into(),
        enduser_id: "user".into(),
        turn_index: None,
        sample: plan.samples.first(),
        window: None,
    };
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    generate_request(world, &plan, &input, END, &mut rng)
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
