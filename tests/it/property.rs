//! Property tests: random span trees always nest and reproduce under a seed;
//! random and mutated YAML never panics the loaders.

use otelsim::diag::Diags;
use otelsim::generate::{generate_request, RequestInput};
use otelsim::model::scenario;
use otelsim::plan::{Compiler, World, WorldOptions};
use otelsim::registry::Registry;
use proptest::prelude::*;
use rand::SeedableRng;
use std::collections::HashMap;
use std::sync::OnceLock;

fn registry() -> &'static (Registry, World) {
    static R: OnceLock<(Registry, World)> = OnceLock::new();
    R.get_or_init(|| {
        let reg = Registry::load(&Default::default()).expect("embedded inputs load");
        let mut d = Diags::new("t");
        let world = World::new(
            &reg.config,
            &reg.semconv,
            &WorldOptions {
                vendor: "vendor".into(),
                ..Default::default()
            },
            &mut d,
        );
        (reg, world)
    })
}

#[derive(Clone, Debug)]
struct Step {
    ty: &'static str,
    latency: String,
    error: f64,
    probability: f64,
    count: u8,
    parallel: bool,
    retry: Option<(u8, bool)>,
    children: Vec<Step>,
}

fn step_strategy() -> impl Strategy<Value = Step> {
    let types = prop::sample::select(vec![
        "a2a.orchestrate",
        "planner",
        "llm.call",
        "mcp.tool.execute",
        "task.execute",
        "custom.step",
        "rag.retrieve",
    ]);
    let latency = prop_oneof![
        (1u32..3000).prop_map(|m| m.to_string()),
        (1u32..3000, 0u32..20).prop_map(|(m, s)| format!(
            "{{distribution: log_normal, median_ms: {m}, sigma: {}}}",
            f64::from(s) / 10.0
        )),
        (0u32..500, 0u32..500).prop_map(|(a, b)| format!(
            "{{distribution: uniform, min_ms: {}, max_ms: {}}}",
            a.min(b),
            a.max(b)
        )),
        (1u32..1000).prop_map(|m| format!("{{distribution: exponential, mean_ms: {m}}}")),
        (0u32..100).prop_map(|m| format!("{{distribution: constant, value_ms: {m}}}")),
    ];
    let leaf = (
        types.clone(),
        latency.clone(),
        0.0..1.0f64,
        0.0..=1.0f64,
        0u8..3,
        any::<bool>(),
        prop::option::of((1u8..4, any::<bool>())),
    )
        .prop_map(
            |(ty, latency, error, probability, count, parallel, retry)| Step {
                ty,
                latency,
                error,
                probability,
                count,
                parallel,
                retry,
                children: vec![],
            },
        );
    leaf.prop_recursive(3, 24, 4, move |inner| {
        (
            types.clone(),
            latency.clone(),
            0.0..0.3f64,
            any::<bool>(),
            prop::collection::vec(inner, 0..4),
        )
            .prop_map(|(ty, latency, error, parallel, children)| Step {
                ty,
                latency,
                error,
                probability: 1.0,
                count: 1,
                parallel,
                retry: None,
                children,
            })
    })
}

fn to_yaml(s: &Step, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    out.push_str(&format!("{pad}type: vendor.{}\n{pad}latency: {}\n{pad}error: {:.3}\n{pad}probability: {:.3}\n{pad}count: {}\n{pad}parallel: {}\n", s.ty, s.latency, s.error, s.probability, s.count, s.parallel));
    if let Some((max, force)) = s.retry {
        out.push_str(&format!("{pad}retry: {{max_attempts: {max}, force_initial_failure: {force}, success_rate_per_attempt: [0.5]}}\n"));
    }
    if !s.children.is_empty() {
        out.push_str(&format!("{pad}children:\n"));
        for c in &s.children {
            out.push_str(&format!("{pad}  -\n"));
            to_yaml(c, indent + 4, out);
        }
    }
}

fn generate(yaml: &str, seed: u64) -> Vec<otelsim::record::TraceRecord> {
    let (reg, world) = registry();
    let mut d = Diags::new("prop.yaml");
    let node = otelsim::yaml::parse(yaml, &mut d).expect("generated YAML parses");
    let def = scenario::load(&node, "prop", &reg.config, &mut d).expect("loads");
    assert!(!d.has_errors(), "{:?}\n{yaml}", d.items);
    let plan = Compiler {
        world,
        cfg: &reg.config,
        sc: &reg.semconv,
    }
    .scenario(&def, &mut d)
    .expect("compiles");
    let input = RequestInput {
        session_id: "s".into(),
        request_id: "r".into(),
        enduser_id: "u".into(),
        turn_index: None,
        sample: None,
        window: None,
        effects: &otelsim::incidents::Effects::default(),
    };
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(seed);
    generate_request(world, &plan, &input, 2_000_000_000_000_000_000, &mut rng)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, .. ProptestConfig::default() })]

    #[test]
    fn random_trees_nest_and_reproduce(root in step_strategy(), seed in any::<u64>()) {
        let mut yaml = String::from("root:\n");
        to_yaml(&Step { probability: 1.0, count: 1, ..root }, 2, &mut yaml);
        let traces = generate(&yaml, seed);
        prop_assert_eq!(traces.len(), 1);
        prop_assert!(!traces[0].spans.is_empty());
        prop_assert_eq!(&traces, &generate(&yaml, seed), "same seed, same records");
        for t in &traces {
            let by_id: HashMap<[u8; 8], &otelsim::record::SpanRecord> = t.spans.iter().map(|s| (s.span_id, s)).collect();
            prop_assert_eq!(by_id.len(), t.spans.len(), "span ids are unique");
            prop_assert_eq!(t.spans.iter().filter(|s| s.parent_span_id.is_none()).count(), 1);
            let root = t.spans.iter().find(|s| s.parent_span_id.is_none()).unwrap();
            prop_assert!(root.end_ns <= 2_000_000_000_000_000_000, "root never ends after the anchor");
            for s in &t.spans {
                prop_assert!(s.start_ns <= s.end_ns);
                for e in &s.events {
                    prop_assert!(s.start_ns <= e.time_ns && e.time_ns <= s.end_ns, "event inside its span");
                }
                if let Some(p) = s.parent_span_id {
                    let parent = by_id.get(&p);
                    prop_assert!(parent.is_some(), "parent exists");
                    let parent = parent.unwrap();
                    prop_assert!(parent.start_ns <= s.start_ns && s.end_ns <= parent.end_ns, "{} not inside {}", s.name, parent.name);
                }
                if s.status == otelsim::record::StatusCode::Error {
                    let et = s.attr("error.type").map(|v| v.to_string()).unwrap_or_default();
                    prop_assert!(otelsim::model::semconv::ERROR_TYPES.contains(&et.as_str()), "error.type {et:?}");
                    prop_assert!(s.events.iter().any(|e| &*e.name == "exception"));
                }
            }
        }
    }

    #[test]
    fn the_wire_encoder_matches_the_prost_encoding(seed in any::<u64>(), picks in 1usize..12) {
        use prost::Message as _;
        let (reg, world) = registry();
        let resources = otelsim::encode::Resources::new(world, &[]);
        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(seed);
        let mut traces = Vec::new();
        let cands = reg.filtered(&[]);
        for i in 0..picks {
            let plan = otelsim::plan::Compiler { world, cfg: &reg.config, sc: &reg.semconv }
                .scenario(cands[(seed as usize + i) % cands.len()], &mut Diags::new("t"))
                .unwrap();
            traces.extend(otelsim::run::generate_iteration(world, &plan, 1_800_000_000_000_000_000, 0, &mut rng));
        }
        let expected = otelsim::encode::traces_request(&traces, &resources);
        let mut bytes = Vec::new();
        otelsim::encode::wire::WireEncoder::new(resources.clone()).traces(&traces, &mut bytes);
        let decoded = opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest::decode(bytes.as_slice());
        prop_assert!(decoded.is_ok(), "{:?}", decoded.err());
        prop_assert_eq!(decoded.unwrap(), expected.clone());
        prop_assert_eq!(bytes.len(), expected.encoded_len(), "same size as prost's encoding");
        // Log records of the same traces, the same way.
        let mut logs = Vec::new();
        for t in &traces {
            otelsim::logs::derive(world, t, &mut logs);
        }
        let expected = otelsim::encode::logs_request(&logs, &resources);
        let mut bytes = Vec::new();
        otelsim::encode::wire::WireEncoder::new(resources.clone()).logs(&logs, &mut bytes);
        let decoded = opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest::decode(bytes.as_slice());
        prop_assert!(decoded.is_ok(), "{:?}", decoded.err());
        prop_assert_eq!(decoded.unwrap(), expected.clone());
        prop_assert_eq!(bytes.len(), expected.encoded_len(), "logs: same size as prost's encoding");
    }

    #[test]
    fn arbitrary_text_never_panics_the_loaders(src in "[ a-z_:\\-\\[\\]{},.0-9'\"&*!|>#\n]{0,400}") {
        let (reg, _) = registry();
        let mut d = Diags::new("fuzz.yaml");
        if let Some(node) = otelsim::yaml::parse(&src, &mut d) {
            let _ = scenario::load(&node, "fuzz", &reg.config, &mut d);
            let _ = otelsim::model::config::load(&node, None, &mut d);
            let _ = otelsim::model::semconv::load(&node, &mut d);
        }
    }

    #[test]
    fn mutated_definitions_never_panic(file in 0usize..16, cut in 0usize..4000, flips in prop::collection::vec((0usize..4000, any::<u8>()), 0..6)) {
        let (reg, world) = registry();
        let defs = otelsim::embedded::DEFINITIONS;
        let (_, text) = defs[file % defs.len()];
        let mut bytes = text.as_bytes()[..cut.min(text.len())].to_vec();
        for (at, b) in flips {
            if !bytes.is_empty() {
                let i = at % bytes.len();
                bytes[i] = b;
            }
        }
        let src = String::from_utf8_lossy(&bytes);
        let mut d = Diags::new("mutated.yaml");
        if let Some(node) = otelsim::yaml::parse(&src, &mut d) {
            if let Some(def) = scenario::load(&node, "m", &reg.config, &mut d) {
                if !d.has_errors() {
                    if let Some(plan) = (Compiler { world, cfg: &reg.config, sc: &reg.semconv }).scenario(&def, &mut d) {
                        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(1);
                        let _ = otelsim::run::generate_iteration(world, &plan, 2_000_000_000_000_000_000, 0, &mut rng);
                    }
                }
            }
        }
    }
}
