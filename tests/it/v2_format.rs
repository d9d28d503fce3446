//! The predecessor's v2 format (tests/fixtures/v2): each turn of each end user is
//! one trace carrying exactly what the turn writes. Checked per scenario: the span
//! tree, ERROR spans, attribute values, events, durations, sessions, and a run whose
//! clock crosses a schedule window switching the latency profile.

use crate::support::*;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// A Monday, 05:00 UTC = 06:00 in Berlin (winter time): an hour before the window.
const T0: &str = "2026-02-02T05:00:00Z";

fn fixture(rel: &str) -> PathBuf {
    repo().join("tests/fixtures/v2").join(rel)
}

fn v2() -> Otelsim {
    Otelsim::new().fixture_corpus("v2")
}

fn run(name: &str, count: u32) -> Vec<Flat> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    v2().cli("scenario --name")
        .arg(name)
        .arg("--count")
        .arg(count.to_string())
        .cli("--interval 0")
        .seed(3)
        .start_time(T0)
        .output_file(&out)
        .run_ok();
    spans_in(&out)
}

fn names<'a>(spans: impl IntoIterator<Item = &'a Flat>) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for s in spans {
        *m.entry(s.class.trim_start_matches("vendor.").to_string())
            .or_default() += 1;
    }
    m
}

fn expect(list: &[(&str, usize)]) -> BTreeMap<String, usize> {
    list.iter().map(|(n, c)| (n.to_string(), *c)).collect()
}

fn one<'a>(spans: &'a [Flat], name: &str) -> &'a Flat {
    let v: Vec<&Flat> = spans
        .iter()
        .filter(|s| s.class == format!("vendor.{name}"))
        .collect();
    assert_eq!(v.len(), 1, "one {name}");
    v[0]
}

fn parent_of<'a>(spans: &'a [Flat], s: &Flat) -> &'a Flat {
    spans
        .iter()
        .find(|p| p.span_id == s.parent)
        .expect("parent")
}

#[test]
fn validate_reads_every_file_as_v2_and_refuses_payloads_outside_the_contract() {
    let out = v2().arg("validate").run_ok();
    assert!(
        out.contains("5 scenarios") && out.contains("formats: v2: 5"),
        "{out}"
    );
    let err = Otelsim::new()
        .arg("validate")
        .arg("--config")
        .arg(fixture("config.yaml"))
        .arg("--scenarios-dir")
        .arg(fixture("refused"))
        .run_exit(2);
    assert!(
        err.contains("bad_payload_field.yaml:9:24")
            && err.contains("field `colour` is not in the contract's structure"),
        "{err}"
    );
    assert!(
        err.contains("`pay` is not a tool of this turn's tool_chain"),
        "{err}"
    );
}

#[test]
fn a_full_turn_is_one_trace_with_the_formats_lifecycle() {
    let spans = run("claim_and_book", 1);
    assert_eq!(by_trace(&spans).len(), 1, "one trace per turn");
    assert_eq!(
        names(&spans),
        expect(&[
            ("request.validation", 1),
            ("validation.payload", 1),
            ("validation.policy", 2),
            ("augmentation.validation", 1),
            ("a2a.orchestrate", 1),
            ("planner", 1),
            ("task.execute", 4),
            ("llm.call", 1),
            ("tools.recommend", 1),
            ("mcp.tool.execute", 2),
            ("mcp.tool.execute.attempt", 2),
            ("response.compose", 1),
            ("response.validation", 1),
        ])
    );
    assert!(spans.iter().all(|s| s.status != 2), "nothing fails");
    // The lifecycle: the turn under the request, response validation under the turn.
    let a2a = one(&spans, "a2a.orchestrate");
    assert_eq!(parent_of(&spans, a2a).name, "vendor.request.validation");
    let rv = one(&spans, "response.validation");
    assert_eq!(parent_of(&spans, rv).class, "vendor.a2a.orchestrate");
    // Events exactly as written, on their targets; none on the planner; no generated ones.
    assert_eq!(
        one(&spans, "request.validation").events,
        ["gentoro.enduser.request"]
    );
    assert_eq!(rv.events, ["gentoro.agent.response"]);
    assert_eq!(
        one(&spans, "tools.recommend").events,
        ["gentoro.agent.tool_selection"]
    );
    assert!(one(&spans, "planner").events.is_empty());
    // End user, redaction and agent as written.
    assert_eq!(a2a.attrs["vendor.enduser.pseudo.id"], "user_row_001");
    assert_eq!(a2a.attrs["vendor.redaction.applied"], "basic");
    assert_eq!(a2a.scope, "otelsim.claim_and_book.row_001");
}

#[test]
fn the_turns_llm_usage_tool_chain_and_payloads_land_on_their_spans() {
    let spans = run("claim_and_book", 1);
    let llm = one(&spans, "llm.call");
    assert_eq!(llm.attrs["gen_ai.usage.input_tokens"], "812");
    assert_eq!(llm.attrs["gen_ai.usage.output_tokens"], "97");
    assert_eq!(llm.attrs["gen_ai.request.type"], "completion");
    assert_eq!(llm.attrs["vendor.llm.streaming"], "false");
    assert_eq!(llm.attrs["vendor.llm.tool.request.count"], "2");
    // Content capture on: the messages come from the request and the reply.
    assert!(llm.attrs["gen_ai.input.messages"].contains("Screen cracked"));
    assert!(llm.attrs["gen_ai.output.messages"].contains("CLM-4242"));
    let rec = one(&spans, "tools.recommend");
    assert_eq!(
        rec.attrs["gen_ai.tool.name"],
        "new_claim,update_appointment"
    );
    assert_eq!(rec.attrs["vendor.mcp.tools.selected.count"], "2");
    let mut calls: Vec<&Flat> = spans
        .iter()
        .filter(|s| s.class == "vendor.mcp.tool.execute")
        .collect();
    calls.sort_by_key(|s| s.start);
    // Each step on its own server.
    assert_eq!(
        calls[0].attrs["vendor.mcp.server.uuid"],
        "79cb6bae-f18f-4808-acd1-aaa66c4465a2"
    );
    assert_eq!(
        calls[1].attrs["vendor.mcp.server.uuid"],
        "ba95d551-77fd-4f37-9699-09c8be2eb090"
    );
    let attempt_of = |call: &Flat| -> Flat {
        spans
            .iter()
            .find(|s| s.parent == call.span_id)
            .cloned()
            .expect("attempt")
    };
    let first = attempt_of(calls[0]);
    // Merged over the contract's sample, keys sorted.
    assert_eq!(
        first.attrs["gen_ai.tool.call.arguments"],
        r#"{"description": "Screen cracked.", "incident_date": "2026-01-01", "product_type": "phone"}"#
    );
    assert_eq!(
        first.attrs["gen_ai.tool.call.result"],
        r#"{"claim_id": "CLM-4242", "notes": "Default result.", "status": "opened"}"#
    );
    let second = attempt_of(calls[1]);
    assert_eq!(
        second.attrs["gen_ai.tool.call.result"],
        r#"{"status": "booked"}"#
    );
}

#[test]
fn without_a_span_plan_the_turns_keys_decide_the_parts_and_spans_take_50_ms() {
    let spans = run("minimal_turn", 1);
    assert_eq!(names(&spans)["mcp.tool.execute"], 2);
    assert_eq!(names(&spans)["response.validation"], 1);
    assert_eq!(names(&spans)["augmentation.validation"], 1);
    // No profile: every class's own duration is 50 ms (a leaf is exactly that).
    for leaf in ["planner", "validation.payload", "response.compose"] {
        let s = one(&spans, leaf);
        let ms = (s.end - s.start) as f64 / 1e6;
        assert!((ms - 50.0).abs() < 0.01, "{leaf}: {ms} ms");
    }
    // The legacy list form with parallel servers.
    let mut calls: Vec<&Flat> = spans
        .iter()
        .filter(|s| s.class == "vendor.mcp.tool.execute")
        .collect();
    calls.sort_by_key(|s| s.start);
    assert_eq!(calls[1].attrs["gen_ai.tool.name"], "get_available_slots");
    assert_eq!(
        calls[1].attrs["vendor.mcp.tool.uuid"],
        "9a3e1f10-0000-4000-8000-000000000030"
    );
}

#[test]
fn each_end_user_is_a_session_and_conditions_pick_the_profile() {
    let spans = run("two_users", 1);
    let traces = by_trace(&spans);
    assert_eq!(traces.len(), 3, "three turns");
    let mut sessions: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for t in traces.values() {
        let a2a = t
            .iter()
            .find(|s| s.class == "vendor.a2a.orchestrate")
            .unwrap();
        sessions
            .entry(a2a.attrs["vendor.session.id"].clone())
            .or_default()
            .push(a2a.attrs["vendor.enduser.pseudo.id"].clone());
        // The first condition whose profile exists applies, with its attributes.
        assert_eq!(a2a.attrs["vendor.higher_latency.reason"], "backlog");
        assert_eq!(a2a.attrs["vendor.higher_latency.queue_depth"], "42");
        let ms = (a2a.end - a2a.start) as f64 / 1e6;
        assert!(ms > 4_900.0, "slow profile: {ms} ms");
    }
    let mut users: Vec<Vec<String>> = sessions.into_values().collect();
    users.sort();
    assert_eq!(
        users,
        vec![
            vec!["user_alice".to_string(), "user_alice".to_string()],
            vec!["user_bob".to_string()]
        ]
    );
}

#[test]
fn statuses_follow_the_files_events() {
    let spans = run("policy_fail_closed", 1);
    assert_eq!(
        names(&spans),
        expect(&[
            ("request.validation", 1),
            ("validation.payload", 1),
            ("validation.policy", 1)
        ])
    );
    let policy = one(&spans, "validation.policy");
    assert_eq!(policy.status, 2);
    assert_eq!(policy.attrs["error.type"], "policy_engine_timeout");
    assert_eq!(policy.attrs["vendor.policy.engine"], "dlp");
    // The file's own exception event, once: the generator adds none.
    assert_eq!(
        policy.events,
        ["gentoro.validation.policy.decision", "exception"]
    );
    let root = one(&spans, "request.validation");
    assert_ne!(root.status, 2, "blocked is not an error");
    assert_eq!(root.attrs["vendor.request.outcome"], "blocked");
    assert_eq!(root.attrs["vendor.block.reason"], "request_policy");

    let spans = run("augmentation_error", 1);
    let failed: BTreeMap<String, usize> = names(spans.iter().filter(|s| s.status == 2));
    assert_eq!(
        failed,
        expect(&[("request.validation", 1), ("augmentation.validation", 1)])
    );
    assert_eq!(
        one(&spans, "request.validation").attrs["error.type"],
        "augmentation_bind_error"
    );
}

#[test]
fn a_run_whose_clock_enters_the_schedule_window_switches_latency_profile() {
    // One pick every 60 s of run time from 06:00 to 08:00 Berlin; the window opens at 07:00.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    v2().cli("scenario --name claim_and_book --count 120 --interval 60000")
        .seed(9)
        .start_time(T0)
        .output_file(&out)
        .run_ok();
    let spans = spans_in(&out);
    // 2026-02-02T06:00:00Z is 07:00 in Berlin.
    let opens = 1_770_012_000u64 * 1_000_000_000;
    let (mut before, mut after) = (Vec::new(), Vec::new());
    for s in spans.iter().filter(|s| s.class == "vendor.a2a.orchestrate") {
        let ms = (s.end - s.start) as f64 / 1e6;
        if s.end < opens {
            before.push(ms);
        } else if s.start > opens {
            after.push(ms);
        }
    }
    assert!(
        before.len() > 30 && after.len() > 30,
        "{} / {}",
        before.len(),
        after.len()
    );
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (b, a) = (mean(&before), mean(&after));
    // normal: a2a 1000 ± 100 ms (stretched by its children); peak_hours: 3000 ± 200 ms.
    assert!(
        b < 2_000.0 && a > 2_800.0,
        "before {b:.0} ms, after {a:.0} ms"
    );
}

#[test]
fn the_v2_late_v1_and_doc_era_corpora_run_in_one_build() {
    let dir = tempfile::tempdir().unwrap();
    for (i, sim) in [
        v2(),
        Otelsim::new().fixture_corpus("late_v1"),
        Otelsim::new().compat(),
    ]
    .into_iter()
    .enumerate()
    {
        let out = dir.path().join(format!("{i}.jsonl"));
        sim.cli("run --each-once --interval 0")
            .seed(1)
            .start_time(T0)
            .output_file(&out)
            .run_ok();
        assert!(!spans_in(&out).is_empty(), "corpus {i}");
    }
}

#[test]
fn trace_interval_spaces_the_iterations_on_the_runs_clock() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    // No --interval: the file's trace_interval_ms (250 ± 25) applies.
    v2().cli("scenario --name claim_and_book --count 6")
        .seed(4)
        .start_time(T0)
        .output_file(&out)
        .run_ok();
    // Each iteration ends at its slot on the run's clock.
    let mut ends: Vec<u64> = spans_in(&out)
        .iter()
        .filter(|s| s.class == "vendor.request.validation")
        .map(|s| s.end)
        .collect();
    ends.sort_unstable();
    assert_eq!(ends.len(), 6);
    for w in ends.windows(2) {
        let gap_ms = (w[1] - w[0]) as f64 / 1e6;
        assert!((224.0..=276.0).contains(&gap_ms), "gap {gap_ms} ms");
    }
}
