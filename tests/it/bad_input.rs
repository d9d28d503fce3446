//! Bad input gets a clear error naming file, line and key, and what would be
//! valid; `validate` lists every problem at once; nothing panics.

use crate::support::*;
use std::path::Path;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);

fn otelsim() -> Otelsim {
    Otelsim::new().limit(LIMIT)
}

fn validate_dir(defs: &Path) -> (i32, String) {
    let out = otelsim().cli("validate --scenarios-dir").arg(defs).run();
    (out.status.code().unwrap_or(-1), text(&out))
}

fn write(dir: &Path, name: &str, body: &str) {
    std::fs::write(dir.join(name), body).unwrap();
}

const GOOD_ROOT: &str = "root:\n  type: vendor.a2a.orchestrate\n  latency: 100\n";

#[test]
fn every_problem_is_listed_with_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    write(p, "malformed.yaml", "root:\n  type: [unclosed\n");
    write(
        p,
        "unknown_key.yaml",
        "root:\n  type: vendor.planner\n  latncy: 100\n",
    );
    write(
        p,
        "wrong_type.yaml",
        "repeat_count: lots\nroot:\n  type: vendor.planner\n",
    );
    write(
        p,
        "bad_tenant.yaml",
        "context:\n  tenant: nobody\nroot:\n  type: vendor.planner\n",
    );
    write(
        p,
        "bad_agent.yaml",
        "context:\n  agent: ghost-agent\nroot:\n  type: vendor.planner\n",
    );
    write(
        p,
        "bad_server.yaml",
        "mcp_server: telescope\nroot:\n  type: vendor.planner\n",
    );
    write(
        p,
        "bad_workflow.yaml",
        "data_plane:\n  workflow: teleport\n",
    );
    write(
        p,
        "negative_weight.yaml",
        &format!("workload_weight: -2\n{GOOD_ROOT}"),
    );
    write(
        p,
        "text_weight.yaml",
        &format!("workload_weight: heavy\n{GOOD_ROOT}"),
    );
    write(p, "probability.yaml", "root:\n  type: vendor.a2a.orchestrate\n  children:\n    - type: vendor.planner\n      probability: 1.5\n");
    write(p, "distribution.yaml", "root:\n  type: vendor.llm.call\n  latency:\n    distribution: log_normal\n    median_ms: 200\n    sigma: -0.5\n");
    write(
        p,
        "duplicate.yaml",
        "root:\n  type: vendor.planner\nroot:\n  type: vendor.planner\n",
    );
    write(p, "empty_scenario.yaml", "name: nothing here\n");
    let (code, out) = validate_dir(p);
    assert_eq!(code, 2, "{out}");
    let expect = [
        ("malformed.yaml:", "YAML syntax error"),
        // A warning, not an error: the file would still load.
        (
            "unknown_key.yaml:3:3: warning:",
            "key `root.latncy`: unknown key (did you mean `latency`?)",
        ),
        (
            "wrong_type.yaml:1",
            "key `repeat_count`: expected a whole number ≥ 0, found the string \"lots\"",
        ),
        ("bad_tenant.yaml:2", "unknown tenants key `nobody`"),
        ("bad_agent.yaml:2", "unknown agents key `ghost-agent`"),
        ("bad_server.yaml:1", "unknown mcp_servers key `telescope`"),
        (
            "bad_workflow.yaml:2",
            "unknown workflow_templates key `teleport`",
        ),
        ("negative_weight.yaml:1", "is negative"),
        ("text_weight.yaml:1", "expected a number"),
        ("probability.yaml:5", "probability 1.5 is outside [0, 1]"),
        ("distribution.yaml:4", "0 ≤ sigma ≤ 10"),
        (
            "duplicate.yaml:3",
            "duplicate key (first defined on line 1)",
        ),
        ("empty_scenario.yaml", "describes no telemetry"),
    ];
    for (loc, msg) in expect {
        assert!(
            out.lines().any(|l| l.contains(loc) && l.contains(msg)),
            "missing `{loc}` … `{msg}` in:\n{out}"
        );
    }
    // Valid keys are named for unknown keys.
    assert!(out.contains("valid keys here:"), "{out}");
    assert!(
        out.contains("defined in config.yaml: acme"),
        "valid tenants listed: {out}"
    );
}

#[test]
fn config_errors_name_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = std::fs::read_to_string(repo().join("config/config.yaml")).unwrap();
    assert!(
        cfg.contains("request_id: \"rq_{hex:10}\""),
        "test assumes the bundled request_id template"
    );
    let bad = cfg.replacen(
        "request_id: \"rq_{hex:10}\"",
        "request_id: \"rq_{hex:33}\"",
        1,
    );
    std::fs::write(dir.path().join("config.yaml"), bad).unwrap();
    let c = dir.path().join("config.yaml");
    let t = otelsim().cli("validate --config").arg(&c).run_exit(2);
    assert!(
        t.contains("config.yaml:") && t.contains("must be a whole number from 1 to 32"),
        "{t}"
    );
}

#[test]
fn out_of_enum_values_are_normalised_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "odd.yaml", "root:\n  type: vendor.response.compose\n  latency: 50\n  attributes:\n    vendor.response.format: A2A_JSON\n    vendor.step.outcome: exploded\n");
    let (code, out) = validate_dir(dir.path());
    assert_eq!(code, 0, "warnings do not fail validation: {out}");
    assert!(
        out.contains("odd.yaml:5")
            && out.contains("value `A2A_JSON`")
            && out.contains("emitted as `a2a_json`"),
        "{out}"
    );
    assert!(
        out.contains("odd.yaml:6") && out.contains("value `exploded`"),
        "{out}"
    );
    let f = dir.path().join("o.jsonl");
    otelsim()
        .cli("scenario --name odd --count 3 --scenarios-dir")
        .arg(dir.path())
        .output_file(&f)
        .run_ok();
    for s in spans_in(&f) {
        assert_eq!(s.attrs["vendor.response.format"], "a2a_json");
        assert!(["success", "fail", "skipped"].contains(&s.attrs["vendor.step.outcome"].as_str()));
    }
}

#[test]
fn unknown_scenario_and_missing_files_are_clear() {
    let t = otelsim()
        .cli("scenario --name new_claim_phon")
        .output_file("/dev/null")
        .run_exit(2);
    assert!(
        t.contains("unknown scenario `new_claim_phon`. Did you mean `new_claim_phone`?"),
        "{t}"
    );
    let t = otelsim()
        .cli("list --semconv /nonexistent/semconv.yaml")
        .run_exit(2);
    assert!(
        t.contains("/nonexistent/semconv.yaml does not exist"),
        "{t}"
    );
    let t = otelsim()
        .arg("list")
        .env("SCENARIOS_DIR", "/nonexistent/defs")
        .run_exit(2);
    assert!(
        t.contains("/nonexistent/defs") && t.contains("does not exist"),
        "{t}"
    );
    let t = otelsim()
        .cli("run --count 1")
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "smoke-signals")
        .run_exit(2);
    assert!(
        t.contains("expected grpc, http/protobuf or http/json"),
        "{t}"
    );
}

#[test]
fn validate_reports_compile_problems_of_good_files_next_to_broken_ones() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    write(
        p,
        "negative.yaml",
        &format!("workload_weight: -1\n{GOOD_ROOT}"),
    );
    write(p, "huge.yaml", "root:\n  type: vendor.a2a.orchestrate\n  children:\n    - type: planner\n      count: 1000\n      children:\n        - type: llm.call\n          count: 1000\n");
    write(p, "odd.yaml", "root:\n  type: vendor.response.compose\n  attributes:\n    vendor.step.outcome: SUCCEEDED\n");
    let (code, out) = validate_dir(p);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("negative.yaml") && out.contains("is negative"),
        "{out}"
    );
    assert!(
        out.contains("huge.yaml") && out.contains("limit is 100000"),
        "{out}"
    );
    assert!(
        out.contains("odd.yaml") && out.contains("SUCCEEDED"),
        "warnings of good files too: {out}"
    );
}

#[test]
fn flags_that_would_do_nothing_are_refused() {
    for (args, flag) in [
        (
            vec![
                "sink",
                "--endpoint",
                "http://127.0.0.1:9",
                "--duration",
                "1s",
            ],
            "--endpoint",
        ),
        (vec!["list", "--gzip"], "--gzip"),
        (vec!["validate", "--output-file", "/tmp/x"], "--output-file"),
        (
            vec!["bench", "--spans", "10", "--protocol", "grpc"],
            "--protocol",
        ),
    ] {
        let t = otelsim().args(&args).run_exit(2);
        assert!(t.contains(&format!("{flag} does nothing")), "{args:?}: {t}");
    }
}
