//! End to end in a real LLM-observability UI: Arize Phoenix (from PyPI, installed by
//! `make test` into .venv) receives otelsim's default mix over OTLP/HTTP inside a
//! private network namespace, and what it stored is read back through its REST API:
//! every span has a kind (none UNKNOWN), every trace root shows input and output,
//! tool calls are single TOOL spans with their parameters and result, retrieval
//! spans list their documents, and a multi-turn session is as many traces as turns
//! with `--trace-flow single`. The default signals are sent: Phoenix refuses metrics
//! and logs (405), which turns them off without failing the run.

use crate::support::*;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::Command;

/// `phoenix` from OTELSIM_PHOENIX or the repo's .venv.
fn phoenix() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("OTELSIM_PHOENIX") {
        return Some(PathBuf::from(p));
    }
    let p = repo().join(".venv/bin/phoenix");
    p.is_file().then_some(p)
}

/// Why network namespaces cannot be used here, if they cannot.
fn no_namespaces() -> Option<String> {
    match Command::new("unshare").args(["--net", "true"]).output() {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(String::from_utf8_lossy(&o.stderr).trim().to_string()),
        Err(e) => Some(e.to_string()),
    }
}

/// Runs otelsim with `args` into a fresh Phoenix; the spans it stored, or `None` when
/// this machine cannot run the test (said on stderr).
fn through_phoenix(args: &[&str]) -> Option<Vec<Value>> {
    let Some(phoenix) = phoenix() else {
        assert!(
            std::env::var("OTELSIM_REQUIRE_PHOENIX").is_err(),
            "OTELSIM_REQUIRE_PHOENIX is set but phoenix was not found (make test installs it into .venv)"
        );
        eprintln!("skipped: Arize Phoenix is not installed (make test installs it into .venv)");
        return None;
    };
    if let Some(why) = no_namespaces() {
        eprintln!("skipped: network namespaces are not allowed here (unshare --net: {why})");
        return None;
    }
    let (work, expected) = through_ui(
        "phoenix",
        &["unshare", "--net"],
        &[phoenix.as_os_str()],
        &[],
        args,
    );
    let text = std::fs::read_to_string(work.path().join("spans.json")).unwrap_or_default();
    let spans: Vec<Value> = serde_json::from_str(&text).expect("spans.json");
    assert_eq!(spans.len(), expected, "Phoenix stores every span sent");
    Some(spans)
}

fn attr<'a>(s: &'a Value, k: &str) -> Option<&'a Value> {
    s["attributes"].get(k)
}

#[test]
fn phoenix_shows_every_span_with_a_kind_and_every_trace_with_input_and_output() {
    let Some(spans) = through_phoenix(&["run", "--count", "40", "--interval", "0", "--seed", "7"])
    else {
        return;
    };
    assert!(spans.len() > 200, "{} spans stored", spans.len());
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for s in &spans {
        *kinds
            .entry(s["span_kind"].as_str().unwrap_or("").to_string())
            .or_default() += 1;
    }
    assert!(!kinds.contains_key("UNKNOWN"), "{kinds:?}");
    for k in ["AGENT", "LLM", "TOOL", "CHAIN", "GUARDRAIL"] {
        assert!(kinds.contains_key(k), "no {k} span in {kinds:?}");
    }
    for s in spans.iter().filter(|s| s["parent_id"].is_null()) {
        let name = s["name"].as_str().unwrap_or("");
        assert!(attr(s, "input.value").is_some(), "root {name} has no input");
        if s["status_code"] != "ERROR" {
            assert!(
                attr(s, "output.value").is_some(),
                "root {name} has no output"
            );
        }
    }
    // A tool call is one TOOL span showing its parameters and output; its attempts
    // (the MCP requests, with the same payloads) are steps under it.
    let mut tools = 0;
    for s in &spans {
        // The step, not the name: tool spans carry the conventions' names.
        let class = attr(s, "vendor.span.class")
            .and_then(Value::as_str)
            .unwrap_or("");
        if class.ends_with(".attempt") || class == "tools.recommend" {
            assert_ne!(s["span_kind"], "TOOL", "{class}");
        }
        if s["span_kind"] == "TOOL" {
            tools += 1;
            let name = s["name"].as_str().unwrap_or("");
            assert!(name.starts_with("execute_tool "), "{name}");
            assert!(attr(s, "input.value").is_some(), "{name} has no parameters");
            assert!(attr(s, "output.value").is_some(), "{name} has no output");
        }
    }
    assert!(tools > 0, "no tool call");
    // Retrieval: RETRIEVER spans with their documents.
    let retrievers: Vec<&Value> = spans
        .iter()
        .filter(|s| s["span_kind"] == "RETRIEVER")
        .collect();
    assert!(!retrievers.is_empty(), "{kinds:?}");
    for r in retrievers {
        assert!(attr(r, "retrieval.documents.0.document.content").is_some());
        assert!(attr(r, "input.value").is_some());
    }
}

#[test]
fn phoenix_groups_a_conversation_into_as_many_traces_as_turns() {
    let Some(spans) = through_phoenix(&[
        "scenario",
        "--name",
        "new_claim_phone_multi_turn",
        "--count",
        "1",
        "--seed",
        "3",
        "--trace-flow",
        "single",
    ]) else {
        return;
    };
    let mut traces_by_session: HashMap<String, Vec<String>> = HashMap::new();
    for s in spans.iter().filter(|s| s["parent_id"].is_null()) {
        let session = attr(s, "session.id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        traces_by_session
            .entry(session)
            .or_default()
            .push(s["context"]["trace_id"].as_str().unwrap_or("").to_string());
    }
    assert_eq!(traces_by_session.len(), 1, "{traces_by_session:?}");
    let traces = traces_by_session.values().next().unwrap();
    assert_eq!(
        traces.len(),
        4,
        "one trace per turn of the four-turn conversation"
    );
}
