//! `--genai-profile`: with OpenInference on (the default `both`), every span has a
//! kind an LLM UI understands and every trace root says what went in and came out;
//! `otel` adds none of it; `openinference` leaves the GenAI operation and messages out.

use crate::support::*;

const T0: &str = "2026-03-01T00:00:00Z";

fn mix(profile: Option<&str>) -> Vec<Flat> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    let mut sim = Otelsim::new()
        .cli("run --count 60 --interval 0")
        .seed(21)
        .start_time(T0)
        .output_file(&out);
    if let Some(p) = profile {
        sim = sim.arg("--genai-profile").arg(p);
    }
    sim.run_ok();
    spans_in(&out)
}

const KINDS: [&str; 6] = ["AGENT", "LLM", "TOOL", "RETRIEVER", "CHAIN", "GUARDRAIL"];

#[test]
fn by_default_every_span_has_a_kind_and_every_root_its_input_and_output() {
    let spans = mix(None);
    assert!(spans.len() > 300);
    for s in &spans {
        let kind = s.attrs.get("openinference.span.kind").map(String::as_str);
        assert!(
            kind.is_some_and(|k| KINDS.contains(&k)),
            "{}: {kind:?}",
            s.name
        );
        // The GenAI conventions stay too.
        if s.name.ends_with("llm.call") {
            assert_eq!(s.attrs["openinference.span.kind"], "LLM");
            assert!(s.attrs.contains_key("gen_ai.operation.name"));
            assert!(s.attrs.contains_key("input.value"), "{}", s.name);
        }
        if s.name.ends_with("mcp.tool.execute") {
            assert_eq!(s.attrs["openinference.span.kind"], "TOOL");
        }
        if s.name.ends_with("mcp.tool.execute.attempt") || s.name.ends_with("tools.recommend") {
            assert_eq!(s.attrs["openinference.span.kind"], "CHAIN", "{}", s.name);
        }
    }
    for s in spans.iter().filter(|s| s.parent.is_empty()) {
        for k in ["input.value", "user.id", "session.id"] {
            assert!(s.attrs.contains_key(k), "root {} lacks {k}", s.name);
        }
        if s.status != 2 {
            assert!(
                s.attrs.contains_key("output.value"),
                "root {} lacks output",
                s.name
            );
        }
    }
}

#[test]
fn otel_adds_nothing_and_openinference_leaves_the_genai_operation_out() {
    let otel = mix(Some("otel"));
    assert!(otel
        .iter()
        .all(|s| !s.attrs.contains_key("openinference.span.kind")
            && !s.attrs.contains_key("input.value")));
    assert!(otel
        .iter()
        .any(|s| s.attrs.contains_key("gen_ai.operation.name")));
    let oi = mix(Some("openinference"));
    assert!(oi
        .iter()
        .all(|s| s.attrs.contains_key("openinference.span.kind")
            && !s.attrs.contains_key("gen_ai.operation.name")
            && !s.attrs.contains_key("gen_ai.input.messages")));
    // The conventions' span names belong to the conventions: without them every
    // span keeps its step's name.
    assert!(otel.iter().any(|s| s.name.starts_with("chat ")));
    assert!(
        oi.iter()
            .all(|s| s.name == s.class && s.name.starts_with("vendor.")),
        "{:?}",
        oi.iter().find(|s| s.name != s.class).map(|s| &s.name)
    );
}

#[test]
fn a_bad_profile_is_refused_naming_the_valid_ones() {
    let err = Otelsim::new()
        .cli("scenario --name new_claim_phone --genai-profile phoenix")
        .run_exit(2);
    assert!(err.contains("valid: otel, openinference, both"), "{err}");
}
