//! Realism over real OTLP: simulation goals do exactly what they say and nothing
//! else, control-plane scenarios carry their template's spans, attributes and
//! events, trace-flow parts are correlated, and samples come from the right list.

use crate::support::*;
use std::collections::{HashMap, HashSet};

const T0: &str = "2026-03-01T00:00:00Z";

/// Runs `sim` through gRPC into the sink and returns the spans.
fn via_sink(sim: Otelsim) -> Vec<Flat> {
    sim.deliver("grpc").spans
}

fn goal_scenarios() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let goal = |g: &str, extra: &str| {
        format!("mcp_server: phone\ncontext: {{tenant: acme, mcp_server: phone}}\ndata_plane: {{workflow: new_claim, simulation_goal: {g}}}\n{extra}")
    };
    for (name, body) in [
        ("happy", goal("happy_path", "")),
        ("four_xx", goal("4xx_invalid_arguments", "")),
        ("wrong_div", goal("wrong_division", "realistic_overrides: {wrong_division_target: home_electronics}\n")),
        ("ungrounded", goal("ungrounded_response", "")),
        ("partial_skip", goal("partial_workflow", "scenario_overrides: {skip_steps: [2]}\n")),
        ("partial_actual", goal("partial_workflow", "realistic_overrides: {actual_steps: [planner, new_claim, response_compose], exception_type: ComposeAborted, exception_message: missing tool result}\n")),
    ] {
        std::fs::write(dir.path().join(format!("{name}.yaml")), body).unwrap();
    }
    dir
}

fn failed_names(trace: &[Flat]) -> HashSet<String> {
    trace
        .iter()
        .filter(|s| s.status == 2)
        .map(|s| s.class.clone())
        .collect()
}

fn names(v: &[&str]) -> HashSet<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn run_goal(dir: &tempfile::TempDir, name: &str) -> HashMap<String, Vec<Flat>> {
    let spans = via_sink(
        Otelsim::new()
            .cli("scenario --name")
            .arg(name)
            .cli("--count 40 --scenarios-dir")
            .arg(dir.path())
            .seed(17)
            .start_time(T0),
    );
    by_trace(&spans)
}

#[test]
fn happy_path_injects_nothing() {
    let dir = goal_scenarios();
    for (_, t) in run_goal(&dir, "happy") {
        assert!(failed_names(&t).is_empty());
    }
}

#[test]
fn four_xx_fails_exactly_one_attempt_and_propagates() {
    let dir = goal_scenarios();
    let traces = run_goal(&dir, "four_xx");
    assert_eq!(traces.len(), 40);
    for (_, t) in traces {
        let failed = failed_names(&t);
        assert_eq!(
            failed,
            names(&[
                "vendor.mcp.tool.execute.attempt",
                "vendor.mcp.tool.execute",
                "vendor.task.execute",
                "vendor.a2a.orchestrate"
            ])
        );
        let attempts: Vec<&Flat> = t
            .iter()
            .filter(|s| s.class == "vendor.mcp.tool.execute.attempt")
            .collect();
        assert_eq!(attempts.len(), 1, "client errors are not retried");
        let a = attempts[0];
        assert_eq!(a.attrs["error.type"], "invalid_arguments");
        assert!(["400", "404", "422"].contains(&a.attrs["http.response.status_code"].as_str()));
        assert_eq!(a.attrs["vendor.mcp.attempt.outcome"], "fail");
        let root = t.iter().find(|s| s.parent.is_empty()).unwrap();
        assert_eq!(root.attrs["vendor.a2a.outcome"], "error");
        assert_eq!(root.attrs["error.type"], "invalid_arguments");
    }
}

#[test]
fn wrong_division_uses_the_other_divisions_server_and_tool() {
    let dir = goal_scenarios();
    let cfg = std::fs::read_to_string(repo().join("config/config.yaml")).unwrap();
    let uuid_after = |key: &str| -> String {
        let at = cfg
            .find(&format!("  {key}:\n    mcp_server_uuid: \""))
            .unwrap_or_else(|| panic!("{key} in config"));
        let rest = &cfg[at..];
        let start = rest.find('"').unwrap() + 1;
        rest[start..start + 36].to_string()
    };
    let (phone, electronics) = (uuid_after("phone"), uuid_after("electronics"));
    for (_, t) in run_goal(&dir, "wrong_div") {
        let call = t
            .iter()
            .find(|s| s.class == "vendor.mcp.tool.execute")
            .unwrap();
        assert_eq!(call.attrs["vendor.mcp.server.uuid"], electronics);
        assert_ne!(call.attrs["vendor.mcp.server.uuid"], phone);
        assert_eq!(
            call.attrs["gen_ai.tool.name"], "new_claim",
            "same tool name"
        );
        assert_eq!(call.attrs["error.type"], "tool_error");
        assert_eq!(call.status, 2);
        assert!(
            !failed_names(&t).contains("vendor.llm.call")
                && !failed_names(&t).contains("vendor.response.compose")
        );
    }
}

#[test]
fn ungrounded_response_fails_compose_only() {
    let dir = goal_scenarios();
    for (_, t) in run_goal(&dir, "ungrounded") {
        assert_eq!(
            failed_names(&t),
            names(&["vendor.response.compose", "vendor.a2a.orchestrate"])
        );
        let compose = t
            .iter()
            .find(|s| s.class == "vendor.response.compose")
            .unwrap();
        assert_eq!(compose.attrs["error.type"], "unavailable");
        assert_eq!(compose.attrs["vendor.step.outcome"], "fail");
        assert!(compose.events.contains(&"exception".to_string()));
    }
}

#[test]
fn partial_workflow_drops_steps_and_fails_compose() {
    let dir = goal_scenarios();
    for (_, t) in run_goal(&dir, "partial_skip") {
        assert!(
            !t.iter().any(|s| s.class == "vendor.tools.recommend"),
            "step 2 (tools_recommend) skipped"
        );
        assert!(t.iter().any(|s| s.class == "vendor.mcp.tool.execute"));
        let compose = t
            .iter()
            .find(|s| s.class == "vendor.response.compose")
            .unwrap();
        assert_eq!(compose.attrs["vendor.step.outcome"], "fail");
        assert_eq!(
            failed_names(&t),
            names(&["vendor.response.compose", "vendor.a2a.orchestrate"])
        );
    }
    for (_, t) in run_goal(&dir, "partial_actual") {
        let kinds: HashSet<&str> = t.iter().map(|s| s.class.as_str()).collect();
        assert!(!kinds.contains("vendor.llm.call") && !kinds.contains("vendor.tools.recommend"));
        let compose = t
            .iter()
            .find(|s| s.class == "vendor.response.compose")
            .unwrap();
        assert_eq!(compose.status, 2);
        assert_eq!(compose.attrs["error.type"], "tool_error");
    }
}

#[test]
fn control_plane_scenarios_follow_their_templates() {
    let spans = via_sink(
        Otelsim::new()
            .cli("run --tags control-plane --each-once")
            .seed(3),
    );
    let by_scope: HashMap<String, Vec<Flat>> = spans.iter().fold(HashMap::new(), |mut m, s| {
        m.entry(s.scope.trim_start_matches("otelsim.").to_string())
            .or_default()
            .push(s.clone());
        m
    });
    let get = |sc: &str, name: &str| -> Vec<Flat> {
        by_scope[sc]
            .iter()
            .filter(|s| s.class == name)
            .cloned()
            .collect()
    };

    // Blocked: only the incoming-validation trace, root status UNSET.
    for sc in [
        "request_blocked_by_policy",
        "request_blocked_rate_limited",
        "request_blocked_invalid_payload_multi",
        "request_blocked_policy_fail_closed",
    ] {
        let traces: HashSet<&String> = by_scope[sc].iter().map(|s| &s.trace_id).collect();
        assert_eq!(
            traces.len(),
            1,
            "{sc}: blocked requests emit only incoming validation"
        );
        let root = &get(sc, "vendor.request.validation")[0];
        assert_eq!(root.attrs["vendor.request.outcome"], "blocked", "{sc}");
        assert_ne!(root.status, 2, "{sc}: an intentional block is not an error");
        assert!(!by_scope[sc]
            .iter()
            .any(|s| s.class == "vendor.a2a.orchestrate"));
    }
    let rl: HashSet<String> = by_scope["request_blocked_rate_limited"]
        .iter()
        .map(|s| s.class.clone())
        .collect();
    assert_eq!(
        rl,
        names(&["vendor.request.validation", "vendor.validation.payload"]),
        "rate limit stops before policy"
    );
    assert_eq!(
        get("request_blocked_rate_limited", "vendor.request.validation")[0].attrs
            ["vendor.block.reason"],
        "rate_limited"
    );

    let payload = &get(
        "request_blocked_invalid_payload_multi",
        "vendor.validation.payload",
    )[0];
    assert_eq!(
        payload
            .events
            .iter()
            .filter(|e| *e == "vendor.validation.error")
            .count(),
        3
    );

    let policy = &get(
        "request_blocked_policy_fail_closed",
        "vendor.validation.policy",
    )[0];
    assert_eq!(policy.status, 2);
    assert!(policy.events.contains(&"exception".to_string()));
    assert_eq!(
        get(
            "request_blocked_policy_fail_closed",
            "vendor.request.validation"
        )[0]
        .attrs["vendor.policy.fail_mode"],
        "closed"
    );

    // Errors: root ERROR, only the incoming trace.
    for sc in [
        "request_error_policy_runtime",
        "request_error_policy_unavailable",
    ] {
        let root = &get(sc, "vendor.request.validation")[0];
        assert_eq!(root.status, 2, "{sc}");
        assert_eq!(root.attrs["vendor.request.outcome"], "error");
    }

    // Allowed with audit: three traces (incoming, turn, response) sharing session and request ids.
    let flagged = &by_scope["request_allowed_audit_flagged"];
    let traces: HashSet<&String> = flagged.iter().map(|s| &s.trace_id).collect();
    assert_eq!(traces.len(), 3);
    let sessions: HashSet<&String> = flagged
        .iter()
        .map(|s| &s.attrs["vendor.session.id"])
        .collect();
    let requests: HashSet<&String> = flagged
        .iter()
        .map(|s| &s.attrs["vendor.request.id"])
        .collect();
    assert_eq!(
        (sessions.len(), requests.len()),
        (1, 1),
        "parts are correlated by session and request id"
    );
    let root = &get("request_allowed_audit_flagged", "vendor.request.validation")[0];
    assert_eq!(root.attrs["vendor.request.audit.flag"], "true");
    assert_eq!(
        get("request_allowed_audit_flagged", "vendor.validation.policy")
            .iter()
            .filter(|p| p.attrs["vendor.policy.decision"] == "allow_with_audit")
            .count(),
        1
    );
    let orchestrate = &get("request_allowed_audit_flagged", "vendor.a2a.orchestrate")[0];
    let incoming_end = root.end;
    let response = &get(
        "request_allowed_audit_flagged",
        "vendor.response.validation",
    )[0];
    assert!(
        incoming_end <= orchestrate.start && orchestrate.end <= response.start,
        "parts follow one another in time"
    );
}

#[test]
fn the_exception_of_policy_exception_overrides_the_template() {
    let spans = via_sink(
        Otelsim::new()
            .cli("scenario --name request_error_policy_unavailable --count 3 --show-full-spans"),
    );
    let policies: Vec<&Flat> = spans
        .iter()
        .filter(|s| s.class == "vendor.validation.policy")
        .collect();
    assert_eq!(policies.len(), 3);
    for p in policies {
        assert_eq!(p.status, 2);
        assert_eq!(
            p.attrs["error.type"], "unavailable",
            "derived from PolicyEngineUnavailable"
        );
    }
}

#[test]
fn samples_come_from_the_scenario_and_cover_the_list() {
    let spans = via_sink(
        Otelsim::new()
            .cli("scenario --name new_claim_phone --count 150")
            .seed(4)
            .start_time(T0),
    );
    let yaml = std::fs::read_to_string(repo().join("definitions/new_claim_phone.yaml")).unwrap();
    let expected: HashSet<String> = yaml
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- user_input: "))
        .map(|v| v.trim().trim_matches('"').to_string())
        .collect();
    assert!(expected.len() >= 5);
    let mut seen = HashSet::new();
    for s in spans.iter().filter(|s| s.class == "vendor.llm.call") {
        let msg: serde_json::Value =
            serde_json::from_str(&s.attrs["gen_ai.input.messages"]).unwrap();
        // The system instructions come first; the user's message is the last user one
        // (the answering call reads the tool results after it).
        let user = msg
            .as_array()
            .unwrap()
            .iter()
            .rev()
            .find(|m| m["role"] == "user")
            .unwrap();
        let text = user["parts"][0]["content"].as_str().unwrap().to_string();
        assert!(
            expected.contains(&text),
            "{text:?} is not one of the scenario's samples"
        );
        assert_eq!(user["role"], "user");
        assert_eq!(msg[0]["role"], "system");
        let out: serde_json::Value =
            serde_json::from_str(&s.attrs["gen_ai.output.messages"]).unwrap();
        assert_eq!(out[0]["role"], "assistant");
        assert!(
            s.attrs.contains_key("vendor.gen_ai.input.redacted"),
            "redaction basic carries the redacted text"
        );
        seen.insert(text);
    }
    assert_eq!(seen, expected, "over 150 iterations every sample is used");
}

#[test]
fn tenant_flag_overrides_every_tenant() {
    let spans =
        via_sink(Otelsim::new().cli("run --count 30 --interval 0 --tenant-id tenant-override-7"));
    assert!(spans
        .iter()
        .all(|s| s.attrs["vendor.tenant.id"] == "tenant-override-7"));
    assert!(spans
        .iter()
        .all(|s| s.resource["vendor.tenant.id"] == "tenant-override-7"));
}

#[test]
fn the_predecessor_corpus_runs_end_to_end() {
    let base = Otelsim::new().compat().seed(6).env("VENDOR", "gentoro");
    let spans = via_sink(base.clone().cli("run --each-once"));
    let scopes: HashSet<&str> = spans.iter().map(|s| s.scope.as_str()).collect();
    assert_eq!(
        scopes.len(),
        13,
        "12 listable files plus the registry-only scenario: {scopes:?}"
    );
    let cp_spans = via_sink(base.cli("run --count 500 --interval 0 --tags=control-plane"));
    for s in spans.iter().chain(&cp_spans) {
        assert!(s.class.starts_with("gentoro."), "{}", s.class);
        assert!(
            s.attrs
                .keys()
                .chain(s.resource.keys())
                .all(|k| !k.starts_with("vendor.")),
            "{} mixes prefixes",
            s.name
        );
    }
    let cp_names: HashSet<&str> = cp_spans.iter().map(|s| s.class.as_str()).collect();
    for n in [
        "gentoro.request.validation",
        "gentoro.validation.payload",
        "gentoro.validation.policy",
        "gentoro.augmentation",
    ] {
        assert!(cp_names.contains(n), "{n} missing");
    }
    assert!(cp_spans
        .iter()
        .any(|s| s.events.contains(&"gentoro.validation.error".to_string())));
    // The predecessor's fail-closed template: policy span ERROR with a PolicyEngineTimeout exception.
    assert!(cp_spans
        .iter()
        .any(|s| s.class == "gentoro.validation.policy"
            && s.status == 2
            && s.attrs["error.type"] == "timeout"));
}

#[test]
fn allowed_parts_are_linked_or_merged_into_one_trace() {
    // Default: three traces; each later root links to the previous part's root.
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("linked.jsonl");
    Otelsim::new()
        .cli("scenario --name new_claim_phone --count 2")
        .start_time(T0)
        .output_file(&f)
        .run_ok();
    let reqs = read_output_file(&f);
    let mut links = 0;
    for rs in reqs.iter().flat_map(|r| &r.resource_spans) {
        for s in rs.scope_spans.iter().flat_map(|ss| &ss.spans) {
            for l in &s.links {
                links += 1;
                assert_ne!(
                    l.trace_id, s.trace_id,
                    "links point at another part's trace"
                );
            }
        }
    }
    assert_eq!(
        links, 4,
        "two links per allowed request (turn → incoming, response → turn)"
    );

    // trace_flow_mode: single — one trace per request, the gateway span covering the turn.
    let cfg = std::fs::read_to_string(repo().join("config/config.yaml")).unwrap();
    let single = cfg.replacen(
        "control_plane:\n",
        "control_plane:\n  trace_flow_mode: single\n",
        1,
    );
    std::fs::write(dir.path().join("config.yaml"), single).unwrap();
    let f2 = dir.path().join("single.jsonl");
    let c = dir.path().join("config.yaml");
    Otelsim::new()
        .cli("scenario --name new_claim_phone --count 2 --config")
        .arg(&c)
        .start_time(T0)
        .output_file(&f2)
        .run_ok();
    let spans = spans_in(&f2);
    let traces = by_trace(&spans);
    assert_eq!(traces.len(), 2);
    for (_, t) in traces {
        let root = t.iter().find(|s| s.parent.is_empty()).unwrap();
        assert_eq!(root.class, "vendor.request.validation");
        let orch = t
            .iter()
            .find(|s| s.class == "vendor.a2a.orchestrate")
            .unwrap();
        assert_eq!(orch.parent, root.span_id);
        for s in &t {
            assert!(
                root.start <= s.start && s.end <= root.end,
                "{} inside the request span",
                s.name
            );
        }
    }
}

#[test]
fn review_regressions_in_goals_and_control_plane() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("no_compose.yaml"), "context: {mcp_server: phone}\ndata_plane: {workflow: new_claim, simulation_goal: partial_workflow}\nrealistic_overrides: {skip_steps: [4]}\n").unwrap();
    let t = Otelsim::new()
        .cli("validate --scenarios-dir")
        .arg(dir.path())
        .run_exit(2);
    assert!(t.contains("no response_compose"), "{t}");

    // wrong_division never targets the division the workflow really uses (context.mcp_server).
    let dir2 = tempfile::tempdir().unwrap();
    std::fs::write(dir2.path().join("wd.yaml"), "mcp_server: phone\ncontext: {mcp_server: electronics}\ndata_plane: {workflow: new_claim, simulation_goal: wrong_division}\n").unwrap();
    let cfg = std::fs::read_to_string(repo().join("config/config.yaml")).unwrap();
    let at = cfg.find("  electronics:\n    mcp_server_uuid: \"").unwrap();
    let electronics = &cfg[at + "  electronics:\n    mcp_server_uuid: \"".len()..][..36];
    let spans = via_sink(
        Otelsim::new()
            .cli("scenario --name wd --count 40 --scenarios-dir")
            .arg(dir2.path())
            .seed(2)
            .start_time(T0),
    );
    for call in spans
        .iter()
        .filter(|s| s.class == "vendor.mcp.tool.execute")
    {
        assert_ne!(call.attrs["vendor.mcp.server.uuid"], electronics);
    }

    // A control-plane error root reports its failing step's cause, not a generic one.
    let spans =
        via_sink(Otelsim::new().cli("scenario --name request_error_policy_runtime --count 5"));
    for root in spans
        .iter()
        .filter(|s| s.class == "vendor.request.validation")
    {
        assert_eq!(root.status, 2);
        assert_eq!(
            root.attrs["error.type"], "timeout",
            "PolicyEngineTimeout on the policy step"
        );
    }
}
