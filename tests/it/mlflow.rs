//! End to end in MLflow (3.17, from PyPI, installed by `make test` into .venv-mlflow):
//! a tracking server on 127.0.0.1 receives otelsim's default mix over OTLP/HTTP with
//! the experiment header, and what it stored is read back with MLflow's own client:
//! every span is stored and typed (AGENT, LLM, TOOL, CHAIN, GUARDRAIL; none UNKNOWN),
//! every trace has a request and a response preview and its session and user, tool
//! spans show their inputs and outputs, LLM spans their conversation, and a
//! multi-turn session is as many traces as turns with `--trace-flow single`.
//! MLflow's first answer takes ≈ 15 s: the run sets `--request-timeout 60s`; it
//! refuses metrics and logs (404), which turns them off without failing the run.

use crate::support::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// The bin folder of the venv MLflow is installed in (OTELSIM_MLFLOW, else the
/// repo's .venv-mlflow), when it is there.
fn mlflow_bin() -> Option<PathBuf> {
    let dir = std::env::var("OTELSIM_MLFLOW")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo().join(".venv-mlflow/bin"));
    dir.join("mlflow").is_file().then_some(dir)
}

/// Runs otelsim with `args` into a fresh MLflow server; the traces it stored, or
/// `None` when MLflow is not installed here (said on stderr).
fn through_mlflow(args: &[&str]) -> Option<Vec<Value>> {
    let Some(bin) = mlflow_bin() else {
        assert!(
            std::env::var("OTELSIM_REQUIRE_MLFLOW").is_err(),
            "OTELSIM_REQUIRE_MLFLOW is set but MLflow was not found (make test installs it into .venv-mlflow)"
        );
        eprintln!("skipped: MLflow is not installed (make test installs it into .venv-mlflow)");
        return None;
    };
    let port = free_port().to_string();
    let (work, expected) = through_ui("mlflow", &[], &[bin.as_os_str()], &[&port], args);
    let text = std::fs::read_to_string(work.path().join("traces.json")).unwrap_or_default();
    let traces: Vec<Value> = serde_json::from_str(&text).expect("traces.json");
    let stored: usize = traces
        .iter()
        .map(|t| t["spans"].as_array().unwrap().len())
        .sum();
    assert_eq!(stored, expected, "MLflow stores every span sent");
    Some(traces)
}

fn spans_of(traces: &[Value]) -> impl Iterator<Item = &Value> {
    traces.iter().flat_map(|t| t["spans"].as_array().unwrap())
}

fn filled(v: &Value) -> bool {
    !(v.is_null() || v.as_str() == Some("") || v.as_str() == Some("None"))
}

#[test]
fn mlflow_types_every_span_and_shows_requests_responses_tools_and_sessions() {
    let Some(traces) = through_mlflow(&["run", "--count", "40", "--interval", "0", "--seed", "7"])
    else {
        return;
    };
    let mut types: BTreeMap<String, usize> = BTreeMap::new();
    for s in spans_of(&traces) {
        *types
            .entry(s["span_type"].as_str().unwrap_or("").to_string())
            .or_default() += 1;
    }
    assert!(!types.contains_key("UNKNOWN"), "{types:?}");
    for t in ["AGENT", "LLM", "TOOL", "CHAIN", "GUARDRAIL"] {
        assert!(types.contains_key(t), "no {t} span in {types:?}");
    }
    for t in &traces {
        assert!(
            filled(&t["request_preview"]),
            "a trace without request: {t}"
        );
        // A turn that failed may have answered nothing.
        let root_failed = t["spans"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["parent_id"].is_null() && s["status"] == "ERROR");
        if !root_failed {
            assert!(
                filled(&t["response_preview"]),
                "a trace without response: {t}"
            );
        }
        let meta = &t["metadata"];
        assert!(filled(&meta["mlflow.trace.session"]), "{meta}");
        assert!(filled(&meta["mlflow.trace.user"]), "{meta}");
    }
    for s in spans_of(&traces) {
        let name = s["name"].as_str().unwrap_or("");
        match s["span_type"].as_str().unwrap_or("") {
            "TOOL" => {
                assert!(name.starts_with("execute_tool "), "{name}");
                assert!(filled(&s["inputs"]), "{name} shows no parameters");
                assert!(filled(&s["outputs"]), "{name} shows no output");
            }
            "LLM" => {
                assert!(name.starts_with("chat "), "{name}");
                assert!(filled(&s["inputs"]), "{name} shows no input");
            }
            "AGENT" => assert!(name.starts_with("invoke_agent "), "{name}"),
            _ => {}
        }
    }
}

#[test]
fn mlflow_groups_a_conversation_into_as_many_traces_as_turns() {
    let Some(traces) = through_mlflow(&[
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
    let sessions: BTreeSet<&str> = traces
        .iter()
        .filter_map(|t| t["metadata"]["mlflow.trace.session"].as_str())
        .collect();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    // The scenario's conversation has four turns: one trace each.
    assert_eq!(traces.len(), 4);
}
