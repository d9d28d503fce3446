//! The predecessor's later v1 format (tests/fixtures/late_v1): every key and goal of
//! that format means what it meant there. Each scenario of the corpus is run once and
//! checked for its span-name multiset, its ERROR spans and the attributes and events
//! the format's keys put on them; expectations follow the format's documented meaning.

use crate::support::*;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

const T0: &str = "2026-02-02T10:00:00Z";
const CP4: [&str; 4] = [
    "request.validation",
    "validation.payload",
    "validation.policy",
    "augmentation",
];
const RV2: [&str; 2] = ["response.validation", "validation.policy"];

fn fixture(rel: &str) -> PathBuf {
    repo().join("tests/fixtures/late_v1").join(rel)
}

/// `otelsim` on the late-v1 corpus (its own config, the embedded semconv).
fn late_v1() -> Otelsim {
    Otelsim::new().fixture_corpus("late_v1")
}

/// Runs scenario `name` `count` times into a file; returns the spans.
fn run(name: &str, count: u32) -> Vec<Flat> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    late_v1()
        .cli("scenario --name")
        .arg(name)
        .arg("--count")
        .arg(count.to_string())
        .cli("--interval 0")
        .seed(5)
        .start_time(T0)
        .output_file(&out)
        .run_ok();
    spans_in(&out)
}

/// Span names without the prefix, counted.
fn multiset<'a>(names: impl IntoIterator<Item = &'a str>) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for n in names {
        *m.entry(n.trim_start_matches("vendor.").to_string())
            .or_default() += 1;
    }
    m
}

/// The data-plane spans of a one-tool workflow.
const ONE_TOOL: [&str; 10] = [
    "a2a.orchestrate",
    "planner",
    "task.execute",
    "llm.call",
    "task.execute",
    "tools.recommend",
    "task.execute",
    "mcp.tool.execute",
    "mcp.tool.execute.attempt",
    "response.compose",
];

fn allowed(data_plane: &[&'static str]) -> Vec<&'static str> {
    CP4.iter()
        .chain(data_plane)
        .chain(RV2.iter())
        .copied()
        .collect()
}

fn one<'a>(spans: &'a [Flat], name: &str) -> &'a Flat {
    let found: Vec<&Flat> = spans
        .iter()
        .filter(|s| s.class == format!("vendor.{name}"))
        .collect();
    assert_eq!(found.len(), 1, "one {name} span expected");
    found[0]
}

/// Checks one scenario's first iteration: span multiset and ERROR spans.
fn check_shape(name: &str, spans: &[Flat], expected: &[&str], errors: &[&str]) {
    assert_eq!(
        multiset(spans.iter().map(|s| s.class.as_str())),
        multiset(expected.iter().copied()),
        "{name}: span names"
    );
    assert_eq!(
        multiset(
            spans
                .iter()
                .filter(|s| s.status == 2)
                .map(|s| s.class.as_str())
        ),
        multiset(errors.iter().copied()),
        "{name}: ERROR spans"
    );
}

#[test]
fn the_corpus_validates_and_every_file_is_read_as_late_v1() {
    let out = late_v1().arg("validate").arg("-v").run_ok();
    // 13 files, plus the config's registry-only control-plane scenario.
    assert!(out.contains("14 scenarios"), "{out}");
    assert!(out.contains("formats: late-v1: 13, v1: 1"), "{out}");
}

#[test]
fn happy_path_carries_payloads_messages_and_conversation_events() {
    let spans = run("new_claim_phone", 1);
    check_shape("new_claim_phone", &spans, &allowed(&ONE_TOOL), &[]);
    let attempt = one(&spans, "mcp.tool.execute.attempt");
    let args = &attempt.attrs["gen_ai.tool.call.arguments"];
    // File order, spaced separators, non-ASCII escaped, e-mail masked (redaction basic).
    assert!(
        args.starts_with(r#"{"product_type": "phone", "description": "Screen shattered after the handset slipped off a caf\u00e9 table.""#),
        "{args}"
    );
    assert!(!args.contains("sam.rivera@example.org"), "{args}");
    assert_eq!(
        attempt.attrs["gen_ai.tool.call.result"],
        r#"{"claim_id": "PC-4411", "status": "opened", "coverage": {"type": "accidental_damage", "deductible": 50}}"#
    );
    // The call (the execute_tool span a UI shows) carries the same payloads.
    let call = one(&spans, "mcp.tool.execute");
    for k in ["gen_ai.tool.call.arguments", "gen_ai.tool.call.result"] {
        assert_eq!(call.attrs[k], attempt.attrs[k], "{k}");
    }
    let llm = one(&spans, "llm.call");
    let input: serde_json::Value =
        serde_json::from_str(&llm.attrs["gen_ai.input.messages"]).unwrap();
    assert_eq!(input[0]["role"], "system");
    assert_eq!(input[1]["role"], "user");
    assert!(llm.attrs["gen_ai.output.messages"].contains("PLAN: call new_claim"));
    assert_eq!(
        one(&spans, "request.validation").events,
        vec!["vendor.enduser.request"]
    );
    assert_eq!(
        one(&spans, "response.validation").events,
        vec!["vendor.agent.response"]
    );
}

#[test]
fn conversation_events_carry_the_raw_and_redacted_texts() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    late_v1()
        .cli("scenario --name new_claim_phone --count 1")
        .seed(5)
        .start_time(T0)
        .output_file(&out)
        .run_ok();
    let mut events: HashMap<String, HashMap<String, String>> = HashMap::new();
    for req in read_output_file(&out) {
        for s in req
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| &s.spans)
        {
            for e in &s.events {
                let attrs = e
                    .attributes
                    .iter()
                    .map(|kv| {
                        let v = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                            Some(Value::StringValue(s)) => s.clone(),
                            other => format!("{other:?}"),
                        };
                        (kv.key.clone(), v)
                    })
                    .collect();
                events.insert(e.name.clone(), attrs);
            }
        }
    }
    let req = &events["vendor.enduser.request"];
    assert!(req["vendor.enduser.request.raw"].contains("reach me at sam.rivera@example.org"));
    assert!(!req["vendor.enduser.request.raw.redacted"].contains("sam.rivera@example.org"));
    assert!(events["vendor.agent.response"]["vendor.agent.response.raw"]
        .starts_with("Your claim PC-4411 is open"));
}

#[test]
fn a_4xx_goal_fails_the_call_its_reply_and_the_turn_but_not_the_task_wrapper() {
    let spans = run("claim_status_phone_tool_4xx", 1);
    check_shape(
        "4xx",
        &spans,
        &allowed(&ONE_TOOL),
        &[
            "mcp.tool.execute",
            "mcp.tool.execute.attempt",
            "response.compose",
            "a2a.orchestrate",
        ],
    );
    let attempt = one(&spans, "mcp.tool.execute.attempt");
    assert_eq!(attempt.attrs["error.type"], "invalid_arguments");
    assert!(["400", "404", "422"].contains(&attempt.attrs["http.response.status_code"].as_str()));
    assert!(attempt.attrs["gen_ai.tool.call.result"].contains("no claim 77"));
    assert_eq!(
        one(&spans, "response.compose").attrs["error.type"],
        "invalid_arguments"
    );
    assert_eq!(
        one(&spans, "a2a.orchestrate").attrs["vendor.a2a.outcome"],
        "error"
    );
}

#[test]
fn wrong_division_calls_the_target_server_even_when_it_is_the_turns_own() {
    let spans = run("new_claim_routed_to_electronics", 1);
    check_shape(
        "wrong division",
        &spans,
        &allowed(&ONE_TOOL),
        &[
            "mcp.tool.execute",
            "mcp.tool.execute.attempt",
            "response.compose",
            "a2a.orchestrate",
        ],
    );
    let call = one(&spans, "mcp.tool.execute");
    // electronics' server and its new_claim tool, from the bundled config's ids.
    assert_eq!(
        call.attrs["vendor.mcp.server.uuid"],
        "ba95d551-77fd-4f37-9699-09c8be2eb090"
    );
    assert_eq!(
        call.attrs["vendor.mcp.tool.uuid"],
        "6ba4115f-94d5-4334-a496-47b146559691"
    );
}

#[test]
fn ungrounded_and_partial_goals_fail_the_reply_and_the_turn() {
    let spans = run("claim_status_ungrounded", 1);
    check_shape(
        "ungrounded",
        &spans,
        &allowed(&ONE_TOOL),
        &["response.compose", "a2a.orchestrate"],
    );
    let compose = one(&spans, "response.compose");
    assert_eq!(compose.attrs["error.type"], "unavailable");
    // Only the message was overridden; the type is the goal's default.
    assert_eq!(compose.events, vec!["exception"]);
    let spans = run("new_claim_partial_tools", 1);
    check_shape(
        "partial",
        &spans,
        &allowed(&ONE_TOOL),
        &["response.compose", "a2a.orchestrate"],
    );
}

#[test]
fn recommendation_failure_fails_the_recommendation_and_selects_nothing() {
    let spans = run("cancel_claim_no_capability", 1);
    check_shape(
        "recommendation failure",
        &spans,
        &allowed(&[
            "a2a.orchestrate",
            "planner",
            "task.execute",
            "llm.call",
            "task.execute",
            "tools.recommend",
            "response.compose",
        ]),
        &["tools.recommend", "response.compose", "a2a.orchestrate"],
    );
    let rec = one(&spans, "tools.recommend");
    assert_eq!(rec.attrs["error.type"], "capability_resolution_error");
    assert_eq!(rec.attrs["vendor.mcp.tools.selected.count"], "0");
    assert_eq!(rec.attrs["vendor.step.outcome"], "fail");
}

#[test]
fn higher_latency_runs_the_slow_profile_and_describes_its_condition() {
    let spans = run("claim_status_phone_higher_latency", 1);
    check_shape("higher latency", &spans, &allowed(&ONE_TOOL), &[]);
    let a2a = &one(&spans, "a2a.orchestrate").attrs;
    let want = [
        (
            "vendor.higher_latency.condition.keys",
            "peak_hours,post_long_weekend,Backlog Level,retry_storm",
        ),
        ("vendor.higher_latency.peak_hours.timezone", "Europe/Berlin"),
        ("vendor.higher_latency.peak_hours.start_hour", "17"),
        ("vendor.higher_latency.peak_hours.end_hour", "21"),
        (
            "vendor.higher_latency.peak_hours.weekdays",
            "[1, 2, 3, 4, 5]",
        ),
        ("vendor.higher_latency.post_long_weekend.days_after", "1"),
        ("vendor.higher_latency.condition.backlog_level", "high"),
        ("vendor.higher_latency.condition.retry_storm", "true"),
    ];
    for (k, v) in want {
        assert_eq!(a2a.get(k).map(String::as_str), Some(v), "{k}");
    }
    // The fixture's profiles: tool calls average 1500 ms against 300 ms on the happy path.
    let mean_attempt_ms = |spans: &[Flat]| {
        let d: Vec<f64> = spans
            .iter()
            .filter(|s| s.class == "vendor.mcp.tool.execute.attempt")
            .map(|s| (s.end - s.start) as f64 / 1e6)
            .collect();
        d.iter().sum::<f64>() / d.len() as f64
    };
    let slow = mean_attempt_ms(&run("claim_status_phone_higher_latency", 30));
    let fast = mean_attempt_ms(&run("new_claim_phone", 30));
    assert!(slow > 3.0 * fast, "slow {slow:.0} ms vs fast {fast:.0} ms");
}

#[test]
fn cycling_samples_takes_them_in_turn() {
    let spans = run("claim_status_phone_higher_latency", 4);
    // The file holds the iterations in the order they were made.
    let llm: Vec<&Flat> = spans
        .iter()
        .filter(|s| s.class == "vendor.llm.call")
        .collect();
    let firsts: Vec<bool> = llm
        .iter()
        .map(|s| s.attrs["gen_ai.input.messages"].contains("First question"))
        .collect();
    assert_eq!(firsts, vec![true, false, true, false]);
}

#[test]
fn outlier_goals_are_content_outliers_without_injected_failures() {
    let spans = run("outlier_no_tools_appliances", 1);
    check_shape(
        "no tools",
        &spans,
        &allowed(&[
            "a2a.orchestrate",
            "planner",
            "task.execute",
            "llm.call",
            "response.compose",
        ]),
        &[],
    );
    let spans = run("outlier_sells_insurance_phone", 1);
    check_shape("wrong flow", &spans, &allowed(&ONE_TOOL), &[]);
    assert_eq!(
        one(&spans, "mcp.tool.execute").attrs["gen_ai.tool.name"],
        "choose_insurance"
    );
    let spans = run("outlier_checks_status_only", 1);
    check_shape("incomplete flow", &spans, &allowed(&ONE_TOOL), &[]);
}

#[test]
fn turns_with_their_own_steps_run_only_their_part_of_the_chain() {
    let spans = run("multi_turn_new_claim_electronics", 1);
    let traces = by_trace(&spans);
    assert_eq!(traces.len(), 2, "one trace per turn");
    let mut turns: Vec<&Vec<Flat>> = traces.values().collect();
    turns.sort_by_key(|t| t.iter().map(|s| s.start).min());
    let tools = |t: &[Flat]| -> Vec<String> {
        let mut calls: Vec<&Flat> = t
            .iter()
            .filter(|s| s.class == "vendor.mcp.tool.execute")
            .collect();
        calls.sort_by_key(|s| s.start);
        calls
            .iter()
            .map(|s| s.attrs["gen_ai.tool.name"].clone())
            .collect()
    };
    assert_eq!(tools(turns[0]), ["new_claim", "get_available_slots"]);
    assert_eq!(tools(turns[1]), ["update_appointment"]);
    assert_eq!(turns[0].len(), 13);
    assert_eq!(turns[1].len(), 10);
    let session = |t: &[Flat]| t[0].attrs["vendor.session.id"].clone();
    let request = |t: &[Flat]| t[0].attrs["vendor.request.id"].clone();
    assert_eq!(session(turns[0]), session(turns[1]));
    assert_ne!(request(turns[0]), request(turns[1]));
    // Each turn's payloads are its own tools'.
    let attempt_results: Vec<String> = turns[1]
        .iter()
        .filter(|s| s.class == "vendor.mcp.tool.execute.attempt")
        .map(|s| s.attrs["gen_ai.tool.call.result"].clone())
        .collect();
    assert_eq!(attempt_results, [r#"{"confirmation_id": "EV-88-A1"}"#]);
    // The second turn's LLM call answers with the second reply, after the system prompt.
    let llm = one(turns[1], "llm.call");
    assert!(llm.attrs["gen_ai.output.messages"].contains("Booked: Tuesday"));
    assert!(llm.attrs["gen_ai.input.messages"].contains("\"system\""));
}

#[test]
fn a_recovered_retry_is_no_failure_of_the_turn() {
    let spans = run("new_claim_phone_retry_then_success", 1);
    let mut expected = ONE_TOOL.to_vec();
    expected.push("mcp.tool.execute.attempt");
    check_shape("retry", &spans, &expected, &["mcp.tool.execute.attempt"]);
    for s in spans
        .iter()
        .filter(|s| s.class == "vendor.mcp.tool.execute.attempt")
    {
        assert!(s.attrs.contains_key("gen_ai.tool.call.arguments"));
    }
}

#[test]
fn augmentation_exception_overrides_the_templates_exception_type() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    late_v1()
        .cli("scenario --name request_blocked_augment_exception --count 1")
        .seed(5)
        .start_time(T0)
        .output_file(&out)
        .run_ok();
    let spans = spans_in(&out);
    check_shape("augment exception", &spans, &CP4, &["augmentation"]);
    let aug = one(&spans, "augmentation");
    let json = std::fs::read_to_string(&out).unwrap();
    assert!(json.contains("AgentContextBindError"), "exception type");
    assert_eq!(aug.events, vec!["exception"]);
    assert_eq!(
        one(&spans, "request.validation").events,
        vec!["vendor.enduser.request"]
    );
}

#[test]
fn a_goal_named_after_an_error_template_without_a_meaning_is_refused() {
    let err = Otelsim::new()
        .arg("validate")
        .arg("--config")
        .arg(fixture("config.yaml"))
        .arg("--scenarios-dir")
        .arg(fixture("refused"))
        .run_exit(2);
    assert!(
        err.contains("billing_mismatch_goal.yaml:8:9")
            && err.contains("error template `billing_mismatch`"),
        "{err}"
    );
}

#[test]
fn the_corpus_runs_byte_identical_under_a_seed() {
    let dir = tempfile::tempdir().unwrap();
    let once = |file: &str| {
        let out = dir.path().join(file);
        late_v1()
            .cli("run --each-once --interval 0")
            .seed(11)
            .start_time(T0)
            .output_file(&out)
            .run_ok();
        std::fs::read(out).unwrap()
    };
    let (a, b) = (once("a.jsonl"), once("b.jsonl"));
    assert!(!a.is_empty());
    assert!(a == b, "two runs under one seed differ");
}
