//! End to end: the real binary sends real OTLP over gRPC and HTTP to the real
//! sink on 127.0.0.1, and the tests check what arrived.

use crate::support::*;
use otelsim::plan::WorldOptions;
use otelsim::registry::Sources;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// `sim` delivered over `protocol`: the spans and otelsim's output.
fn received(protocol: &str, sim: Otelsim) -> (Vec<Flat>, String) {
    let d = sim.deliver(protocol);
    (d.spans, d.output)
}

fn children_of<'a>(spans: &'a [Flat], parent: &Flat) -> Vec<&'a Flat> {
    let mut c: Vec<&Flat> = spans
        .iter()
        .filter(|s| s.parent == parent.span_id)
        .collect();
    c.sort_by_key(|s| s.start);
    c
}

/// Every span's parent is in the same trace, every child lies inside its parent,
/// there is exactly one root, and no trace is split over two export requests.
fn assert_well_formed(spans: &[Flat]) {
    let now = now_ns();
    for (tid, trace) in by_trace(spans) {
        let ids: HashMap<&str, &Flat> = trace.iter().map(|s| (s.span_id.as_str(), s)).collect();
        assert_eq!(ids.len(), trace.len(), "duplicate span ids in trace {tid}");
        let roots: Vec<&Flat> = trace.iter().filter(|s| s.parent.is_empty()).collect();
        assert_eq!(roots.len(), 1, "trace {tid} must have exactly one root");
        assert!(roots[0].end <= now, "root of {tid} ends in the future");
        let requests: HashSet<usize> = trace.iter().map(|s| s.request).collect();
        assert_eq!(
            requests.len(),
            1,
            "trace {tid} was split over {} export requests",
            requests.len()
        );
        for s in &trace {
            assert!(s.start < s.end, "{} has no duration", s.name);
            if s.parent.is_empty() {
                continue;
            }
            let p = ids
                .get(s.parent.as_str())
                .unwrap_or_else(|| panic!("{} in {tid} has a missing parent", s.name));
            assert!(
                p.start <= s.start && s.end <= p.end,
                "{} [{}, {}] is not inside its parent {} [{}, {}]",
                s.name,
                s.start,
                s.end,
                p.name,
                p.start,
                p.end
            );
        }
        // Sequential siblings do not overlap (no step of the bundled workflows is parallel).
        let session = &roots[0].attrs["vendor.session.id"];
        for s in &trace {
            assert_eq!(
                &s.attrs["vendor.session.id"], session,
                "session id differs inside trace {tid}"
            );
            assert_eq!(
                s.attrs["gen_ai.conversation.id"], s.attrs["vendor.session.id"],
                "conversation id must equal session id"
            );
        }
    }
}

#[test]
fn new_claim_phone_over_grpc_has_the_workflow_tree() {
    let (spans, out) = received(
        "grpc",
        Otelsim::new()
            .cli("scenario --name new_claim_phone --count 5")
            .seed(11),
    );
    assert!(out.contains("0 failed"), "{out}");
    assert_well_formed(&spans);
    let roots: Vec<&Flat> = spans
        .iter()
        .filter(|s| s.class == "vendor.a2a.orchestrate")
        .collect();
    assert_eq!(roots.len(), 5, "one data-plane turn per iteration");
    for root in roots {
        let kids: Vec<&str> = children_of(&spans, root)
            .iter()
            .map(|s| s.class.as_str())
            .collect();
        assert_eq!(
            kids,
            [
                "vendor.planner",
                // ask the LLM, recommend a tool, call it, let the LLM answer
                "vendor.task.execute",
                "vendor.task.execute",
                "vendor.task.execute",
                "vendor.task.execute",
                "vendor.response.compose"
            ]
        );
        let tasks: Vec<&Flat> = children_of(&spans, root)
            .into_iter()
            .filter(|s| s.class == "vendor.task.execute")
            .collect();
        let inner: Vec<String> = tasks
            .iter()
            .map(|t| children_of(&spans, t)[0].class.clone())
            .collect();
        assert_eq!(
            inner,
            [
                "vendor.llm.call",
                "vendor.tools.recommend",
                "vendor.mcp.tool.execute",
                "vendor.llm.call"
            ]
        );
        let mcp = children_of(&spans, tasks[2])[0];
        let attempts = children_of(&spans, mcp);
        assert_eq!(attempts.len(), 1);
        assert_eq!(attempts[0].class, "vendor.mcp.tool.execute.attempt");
        assert_eq!(
            attempts[0].attrs["vendor.mcp.tool.call.id"],
            mcp.attrs["vendor.mcp.tool.call.id"]
        );
        let llm = children_of(&spans, tasks[0])[0];
        assert_eq!(llm.attrs["gen_ai.operation.name"], "chat");
        assert_eq!(
            llm.attrs["gen_ai.request.model"],
            llm.attrs["gen_ai.response.model"]
        );
        assert!(llm.attrs["gen_ai.input.messages"].contains("\"role\":\"user\""));
        assert_eq!(root.resource["vendor.component"], "orchestrator");
        assert_eq!(llm.resource["vendor.component"], "llm");
        assert_eq!(root.scope, "otelsim.new_claim_phone");
    }
    // Allowed requests also carry incoming and response validation, sharing the session.
    let sessions: HashSet<&String> = spans
        .iter()
        .map(|s| &s.attrs["vendor.session.id"])
        .collect();
    assert_eq!(sessions.len(), 5, "one session per iteration");
    let names: HashSet<&str> = spans.iter().map(|s| s.class.as_str()).collect();
    assert!(
        names.contains("vendor.request.validation") && names.contains("vendor.response.validation")
    );
}

#[test]
fn mixed_run_over_http_protobuf_keeps_every_enum_valid() {
    let (spans, out) = received(
        "http/protobuf",
        Otelsim::new().cli("run --count 1500 --interval 0").seed(5),
    );
    assert!(out.contains("0 failed"), "{out}");
    assert_well_formed(&spans);
    let prep = otelsim::run::prepare(
        &Sources::default(),
        &WorldOptions {
            vendor: "vendor".into(),
            ..Default::default()
        },
    )
    .expect("embedded inputs load");
    let enums = &prep.world.enums;
    assert_eq!(
        enums["vendor.step.outcome"].len(),
        3,
        "success, fail, skipped"
    );
    let mut checked = 0;
    for s in &spans {
        for (k, v) in &s.attrs {
            // Every enum, `step.outcome` ∈ {success, fail, skipped} included, on every span.
            let Some(allowed) = enums.get(k) else {
                continue;
            };
            checked += 1;
            // A string array's items are what its enum constrains.
            let items: Vec<&str> = match v.strip_prefix('[').and_then(|x| x.strip_suffix(']')) {
                Some(inner) => inner.split(", ").collect(),
                None => vec![v.as_str()],
            };
            assert!(
                items
                    .iter()
                    .all(|item| allowed.iter().any(|a| a.to_string() == *item)),
                "{}: {k}={v} is not one of {allowed:?}",
                s.name
            );
        }
        if s.status == 2 {
            assert!(
                s.attrs.contains_key("error.type"),
                "failed span {} lacks error.type",
                s.name
            );
            assert!(
                s.events.iter().any(|e| e == "exception"),
                "failed span {} lacks an exception event",
                s.name
            );
        }
    }
    assert!(
        spans.len() > 5_000,
        "expected thousands of spans, got {}",
        spans.len()
    );
    assert!(
        checked > 10_000,
        "too few enum attributes checked: {checked}"
    );
}

#[test]
fn http_json_delivers_the_same_shape() {
    let (spans, out) = received(
        "http/json",
        Otelsim::new().cli("run --count 40 --interval 0").seed(9),
    );
    assert!(out.contains("0 failed"), "{out}");
    assert_well_formed(&spans);
    assert!(spans.iter().any(|s| s.class == "vendor.a2a.orchestrate"));
}

#[test]
fn multi_turn_session_shares_ids_across_traces() {
    let (spans, _) = received(
        "grpc",
        Otelsim::new()
            .cli("scenario --name new_claim_phone_multi_turn --count 1")
            .seed(3),
    );
    assert_well_formed(&spans);
    let roots: Vec<&Flat> = spans
        .iter()
        .filter(|s| s.class == "vendor.a2a.orchestrate")
        .collect();
    assert!(roots.len() >= 3, "one trace per turn");
    let sessions: HashSet<&String> = spans
        .iter()
        .map(|s| &s.attrs["vendor.session.id"])
        .collect();
    assert_eq!(
        sessions.len(),
        1,
        "every span of every turn shares the session"
    );
    let requests: HashSet<&String> = roots
        .iter()
        .map(|r| &r.attrs["vendor.request.id"])
        .collect();
    assert_eq!(requests.len(), roots.len(), "a new request id per turn");
    let mut by_turn: Vec<(&String, u64, u64)> = roots
        .iter()
        .map(|r| (&r.attrs["vendor.turn.index"], r.start, r.end))
        .collect();
    by_turn.sort_by_key(|t| t.1);
    for w in by_turn.windows(2) {
        assert!(w[0].2 < w[1].1, "turns must not overlap: {w:?}");
    }
    let turn_order: Vec<&str> = by_turn.iter().map(|t| t.0.as_str()).collect();
    assert_eq!(
        turn_order,
        (1..=roots.len())
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
    );
}

#[test]
fn retry_attempts_fail_then_succeed_with_backoff() {
    let (spans, _) = received(
        "grpc",
        Otelsim::new()
            .cli("scenario --name tool_retry_backoff --count 20")
            .seed(21),
    );
    assert_well_formed(&spans);
    let calls: Vec<&Flat> = spans
        .iter()
        .filter(|s| s.class == "vendor.mcp.tool.execute")
        .collect();
    assert!(!calls.is_empty());
    for call in calls {
        let attempts = children_of(&spans, call);
        assert!(!attempts.is_empty());
        let first = attempts[0];
        assert_eq!(
            first.status, 2,
            "force_initial_failure makes attempt 1 fail"
        );
        assert_eq!(first.attrs["vendor.mcp.attempt.outcome"], "fail");
        assert!(first.attrs.contains_key("error.type"));
        for w in attempts.windows(2) {
            assert!(
                w[1].start > w[0].end,
                "attempts are separated by a backoff gap"
            );
            assert!(w[1].attrs.contains_key("vendor.retry.reason"));
        }
        let last = attempts.last().unwrap();
        let ok = last.status != 2;
        assert_eq!(
            call.status != 2,
            ok,
            "the logical call fails exactly when its last attempt fails"
        );
        assert_eq!(
            call.attrs["vendor.retry.count"],
            (attempts.len() - 1).to_string()
        );
    }
}

#[test]
fn unreachable_endpoint_fails_fast_with_one_line() {
    let started = std::time::Instant::now();
    let out = Otelsim::new()
        .cli("run --count 5")
        .endpoint("http://127.0.0.1:9")
        .run();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot reach the OTLP endpoint http://127.0.0.1:9"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one clear line: {err}");
    assert!(started.elapsed() < Duration::from_secs(10));
}
