//! `--output agent-trace:DIR`: the agent event logs of seed 004, derived from the
//! spans OTLP carries. The seed's own `jq` queries run on the output with real
//! `jq`, and the events agree with the spans a sink received from the same run.

use crate::support::{Flat, Otelsim};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

const T0: &str = "2026-01-01T00:00:00Z";

/// Every event of every session under `dir`, and the session folders.
fn events_in(dir: &Path) -> (Vec<Value>, Vec<PathBuf>) {
    let mut folders: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("trace dir")
        .map(|e| e.expect("entry").path())
        .collect();
    folders.sort();
    let mut events = Vec::new();
    for f in &folders {
        let text = std::fs::read_to_string(f.join("events.jsonl")).expect("events.jsonl");
        for line in text.lines() {
            events.push(serde_json::from_str(line).expect("one JSON object per line"));
        }
    }
    (events, folders)
}

fn of_type<'a>(events: &'a [Value], t: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event_type"] == t).collect()
}

fn span_ms(s: &Flat) -> f64 {
    ((s.end - s.start) as f64 / 1e3).round() / 1e3
}

fn class(s: &Flat) -> &str {
    s.attrs.get("vendor.span.class").map_or("", String::as_str)
}

#[test]
fn events_follow_the_seed_schema_and_metadata_sums_them() {
    let dir = tempfile::tempdir().unwrap();
    let traces = dir.path().join("traces");
    Otelsim::new()
        .args([
            "-q",
            "scenario",
            "-n",
            "new_claim_phone_multi_turn",
            "--count",
            "3",
        ])
        .seed(11)
        .start_time(T0)
        .arg("--output")
        .arg(format!("agent-trace:{}", traces.display()))
        .run_ok();
    let (events, folders) = events_in(&traces);
    assert_eq!(folders.len(), 3, "one folder per session");
    let allowed: BTreeSet<&str> = [
        "session.start",
        "session.end",
        "turn.start",
        "turn.end",
        "llm.request",
        "llm.response",
        "tool.call",
        "tool.result",
        "thinking",
    ]
    .into();
    for e in &events {
        let ts = e["timestamp"].as_str().unwrap();
        assert!(
            ts.len() == 24 && ts.ends_with('Z') && ts.as_bytes()[19] == b'.',
            "ISO 8601 with ms and Z: {ts}"
        );
        assert!(allowed.contains(e["event_type"].as_str().unwrap()), "{e}");
        assert!(e["session_id"].is_string() && e["run_id"].is_string() && e["turn"].is_u64());
        assert!(e["data"].is_object());
    }
    for f in &folders {
        let meta: Value =
            serde_json::from_str(&std::fs::read_to_string(f.join("metadata.json")).unwrap())
                .unwrap();
        let name = f.file_name().unwrap().to_str().unwrap();
        assert_eq!(
            format!("session-{}", meta["session_id"].as_str().unwrap()),
            name
        );
        let mine: Vec<&Value> = events
            .iter()
            .filter(|e| e["session_id"] == meta["session_id"])
            .collect();
        assert_eq!(mine.first().unwrap()["event_type"], "session.start");
        let end = mine.last().unwrap();
        assert_eq!(end["event_type"], "session.end");
        assert_eq!(end["data"]["total_turns"], 4);
        assert_eq!(meta["total_turns"], 4);
        assert_eq!(meta["events"].as_u64().unwrap() as usize, mine.len());
        let turns: Vec<u64> = mine
            .iter()
            .filter(|e| e["event_type"] == "turn.start")
            .map(|e| e["turn"].as_u64().unwrap())
            .collect();
        assert_eq!(turns, [1, 2, 3, 4]);
        // Timestamps never go backwards within a session.
        let ts: Vec<&str> = mine
            .iter()
            .map(|e| e["timestamp"].as_str().unwrap())
            .collect();
        assert!(ts.windows(2).all(|w| w[0] <= w[1]), "{ts:?}");
    }
    let first_input = of_type(&events, "turn.start")[0]["data"]["user_input"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(first_input.contains("phone"), "{first_input}");
}

/// The same seeded run sent to a sink and written as agent traces: the same
/// sessions, turns, LLM and tool calls, tokens and durations.
#[test]
fn agent_trace_agrees_with_the_spans_the_sink_received() {
    let dir = tempfile::tempdir().unwrap();
    let traces = dir.path().join("traces");
    let got = Otelsim::new()
        .args(["-q", "run", "--count", "60", "--interval", "0"])
        .seed(5)
        .start_time(T0)
        .arg("--output")
        .arg("otlp")
        .arg("--output")
        .arg(format!("agent-trace:{}", traces.display()))
        .deliver("grpc");
    let (events, folders) = events_in(&traces);
    let spans = &got.spans;
    let sessions: BTreeSet<String> = spans
        .iter()
        .filter_map(|s| s.attrs.get("gen_ai.conversation.id").cloned())
        .collect();
    let written: BTreeSet<String> = folders
        .iter()
        .map(|f| {
            let n = f.file_name().unwrap().to_str().unwrap();
            n.strip_prefix("session-").unwrap().to_string()
        })
        .collect();
    assert_eq!(written, sessions, "the same sessions");
    // Turns: one per request id of a session.
    let turns: BTreeSet<(String, String)> = spans
        .iter()
        .filter_map(|s| {
            Some((
                s.attrs.get("gen_ai.conversation.id")?.clone(),
                s.attrs.get("vendor.request.id")?.clone(),
            ))
        })
        .collect();
    assert_eq!(of_type(&events, "turn.start").len(), turns.len());
    assert_eq!(of_type(&events, "turn.end").len(), turns.len());
    // LLM calls: durations and tokens, call by call.
    let mut llm: Vec<(String, f64, i64)> = spans
        .iter()
        .filter(|s| class(s) == "llm.call")
        .map(|s| {
            let tok = |k: &str| s.attrs.get(k).map_or(0, |v| v.parse::<i64>().unwrap());
            (
                s.span_id.clone(),
                span_ms(s),
                tok("gen_ai.usage.input_tokens") + tok("gen_ai.usage.output_tokens"),
            )
        })
        .collect();
    let mut written_llm: Vec<(String, f64, i64)> = of_type(&events, "llm.response")
        .iter()
        .map(|e| {
            let d = &e["data"];
            (
                d["span_id"].as_str().unwrap().to_string(),
                e["duration_ms"].as_f64().unwrap(),
                d["tokens"]["prompt"].as_i64().unwrap()
                    + d["tokens"]["completion"].as_i64().unwrap(),
            )
        })
        .collect();
    llm.sort_by(|a, b| a.0.cmp(&b.0));
    written_llm.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(!llm.is_empty());
    assert_eq!(written_llm, llm, "LLM calls, durations and tokens");
    // Tool calls and their outcomes.
    let tools: Vec<&Flat> = spans
        .iter()
        .filter(|s| class(s) == "mcp.tool.execute")
        .collect();
    let results = of_type(&events, "tool.result");
    assert_eq!(of_type(&events, "tool.call").len(), tools.len());
    assert_eq!(results.len(), tools.len());
    let failed_spans = tools.iter().filter(|s| s.status == 2).count();
    let failed_events = results
        .iter()
        .filter(|e| e["data"]["success"] == false)
        .count();
    assert_eq!(failed_events, failed_spans);
    assert!(failed_spans > 0, "the default mix has failing tool calls");
    let mut tool_ms: Vec<f64> = tools.iter().map(|s| span_ms(s)).collect();
    let mut written_ms: Vec<f64> = results
        .iter()
        .map(|e| e["duration_ms"].as_f64().unwrap())
        .collect();
    tool_ms.sort_by(f64::total_cmp);
    written_ms.sort_by(f64::total_cmp);
    assert_eq!(written_ms, tool_ms, "tool durations");
}

/// Runs a shell pipeline (the seed's own queries) in `cwd` and parses its JSON answer.
fn sh_json(cwd: &Path, script: &str) -> Value {
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(cwd)
        .output()
        .expect("sh");
    assert!(
        out.status.success(),
        "{script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{script}: not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn jq_available() -> bool {
    let found = Command::new("jq").arg("--version").output().is_ok();
    if !found {
        assert!(
            std::env::var("OTELSIM_REQUIRE_JQ").is_err(),
            "OTELSIM_REQUIRE_JQ is set but jq was not found on PATH"
        );
        eprintln!("skipped: jq is not installed (apt-get install jq); set OTELSIM_REQUIRE_JQ=1 to fail instead");
    }
    found
}

/// Every query of the seed's "Analysis Examples", run with real `jq` on the
/// output, answers what the spans of the same run say.
#[test]
fn the_seeds_jq_queries_answer_what_the_spans_say() {
    if !jq_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let otlp = dir.path().join("o.jsonl");
    Otelsim::new()
        .args(["-q", "run", "--count", "80"])
        .seed(3)
        .start_time(T0)
        .output_file(&otlp)
        .arg("--output")
        .arg(format!(
            "agent-trace:{}",
            dir.path().join("traces").display()
        ))
        .run_ok();
    let spans = crate::support::spans_in(&otlp);
    let llm: Vec<&Flat> = spans.iter().filter(|s| class(s) == "llm.call").collect();

    // Find all events for a session.
    let first = std::fs::read_dir(dir.path().join("traces"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name();
    let all = sh_json(
        dir.path(),
        &format!(
            "cat traces/{}/events.jsonl | jq . | jq -s .",
            first.to_str().unwrap()
        ),
    );
    assert!(all.as_array().unwrap().len() > 4);

    // Slowest LLM calls.
    let slowest = sh_json(
        dir.path(),
        r#"find traces -name "events.jsonl" -exec cat {} \; | \
  jq 'select(.event_type=="llm.response") | {session: .session_id, ms: .duration_ms}' | \
  jq -s 'sort_by(.ms) | reverse | .[0:10]'"#,
    );
    let mut want: Vec<f64> = llm.iter().map(|s| span_ms(s)).collect();
    want.sort_by(|a, b| b.total_cmp(a));
    want.truncate(10);
    let got: Vec<f64> = slowest
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["ms"].as_f64().unwrap())
        .collect();
    assert_eq!(got, want, "the ten slowest LLM calls");

    // Tool failure rate.
    let rate = sh_json(
        dir.path(),
        r#"find traces -name "events.jsonl" -exec cat {} \; | \
  jq 'select(.event_type=="tool.result")' | \
  jq -s 'group_by(.data.success) | map({success: .[0].data.success, count: length})'"#,
    );
    let tools: Vec<&Flat> = spans
        .iter()
        .filter(|s| class(s) == "mcp.tool.execute")
        .collect();
    let failed = tools.iter().filter(|s| s.status == 2).count();
    assert!(failed > 0);
    assert_eq!(
        rate,
        serde_json::json!([
            {"success": false, "count": failed},
            {"success": true, "count": tools.len() - failed}
        ])
    );

    // Token usage by model.
    let by_model = sh_json(
        dir.path(),
        r#"find traces -name "events.jsonl" -exec cat {} \; | \
  jq 'select(.event_type=="llm.response" and .data.tokens) | 
      {model: .data.model, tokens: (.data.tokens.prompt + .data.tokens.completion)}' | \
  jq -s 'group_by(.model) | map({model: .[0].model, total: (map(.tokens) | add)})'"#,
    );
    let mut want: BTreeMap<String, i64> = BTreeMap::new();
    for s in &llm {
        let tok = |k: &str| s.attrs.get(k).map_or(0, |v| v.parse::<i64>().unwrap());
        let model = s
            .attrs
            .get("gen_ai.response.model")
            .or(s.attrs.get("gen_ai.request.model"))
            .unwrap();
        *want.entry(model.clone()).or_default() +=
            tok("gen_ai.usage.input_tokens") + tok("gen_ai.usage.output_tokens");
    }
    let got: BTreeMap<String, i64> = by_model
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["model"].as_str().unwrap().to_string(),
                m["total"].as_i64().unwrap(),
            )
        })
        .collect();
    assert!(want.len() > 1, "several models");
    assert_eq!(got, want, "tokens by model");

    // Search for a specific run.
    let run_id = all[0]["run_id"].as_str().unwrap();
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "grep -c \"{run_id}\" traces/*/events.jsonl | head -1"
        ))
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains(':'));
}

fn config_with(agent_trace: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let bundled =
        std::fs::read_to_string(crate::support::repo().join("config/config.yaml")).unwrap();
    // The bundled config's own `agent_trace:` section is replaced by the test's.
    let mut base = String::new();
    let mut inside = false;
    for line in bundled.lines() {
        inside = line == "agent_trace:" || (inside && line.starts_with(' '));
        if !inside {
            base.push_str(line);
            base.push('\n');
        }
    }
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, format!("{base}\n{agent_trace}")).unwrap();
    (dir, path)
}

#[test]
fn malformed_agent_trace_settings_name_file_line_and_key() {
    for (section, key, says) in [
        (
            "agent_trace:\n  sample_rate: 1.5\n",
            "agent_trace.sample_rate",
            "outside [0, 1]",
        ),
        (
            "agent_trace:\n  max_content_length: -5\n",
            "agent_trace.max_content_length",
            "negative",
        ),
        (
            "agent_trace:\n  include_thinking: yes\n",
            "agent_trace.include_thinking",
            "true or false",
        ),
        (
            "agent_trace:\n  sample_rat: 0.5\n",
            "sample_rat",
            "sample_rate",
        ),
    ] {
        let (dir, cfg) = config_with(section);
        let base_lines = std::fs::read_to_string(&cfg).unwrap().lines().count();
        let err = Otelsim::new()
            .arg("--config")
            .arg(&cfg)
            .args(["scenario", "-n", "new_claim_phone", "--output"])
            .arg(format!("agent-trace:{}", dir.path().join("t").display()))
            .run_exit(2);
        assert!(err.contains("config.yaml:"), "{err}");
        assert!(
            err.contains(&format!(":{base_lines}:")),
            "line of the key: {err}"
        );
        assert!(err.contains(key) && err.contains(says), "{section}: {err}");
    }
}

#[test]
fn an_unwritable_trace_dir_is_an_input_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let err = Otelsim::new()
        .args(["scenario", "-n", "new_claim_phone", "--output"])
        .arg(format!("agent-trace:{}", file.join("traces").display()))
        .run_exit(2);
    assert!(err.contains("cannot write --output agent-trace:"), "{err}");
    assert!(err.contains("a folder"), "{err}");
}

/// A session that cannot be written mid-run (here its folder's name is taken by
/// a file) stops the run with exit 3 and says how much was written before.
#[test]
fn a_write_failure_mid_run_is_exit_3_with_what_was_written() {
    let dir = tempfile::tempdir().unwrap();
    let run = |traces: &Path| {
        Otelsim::new()
            .args([
                "scenario",
                "-n",
                "new_claim_phone_multi_turn",
                "--count",
                "4",
            ])
            .seed(2)
            .start_time(T0)
            .arg("--output")
            .arg(format!("agent-trace:{}", traces.display()))
    };
    let first = dir.path().join("first");
    run(&first).run_ok();
    let (events, _) = events_in(&first);
    // The third session the run writes.
    let mut order: Vec<&str> = Vec::new();
    for e in of_type(&events, "session.start") {
        order.push(e["session_id"].as_str().unwrap());
    }
    order.sort_by_key(|id| {
        of_type(&events, "session.start")
            .iter()
            .find(|e| e["session_id"] == *id)
            .map(|e| e["timestamp"].as_str().unwrap().to_string())
    });
    let second = dir.path().join("second");
    std::fs::create_dir_all(&second).unwrap();
    std::fs::write(second.join(format!("session-{}", order[2])), "in the way").unwrap();
    let out = run(&second).run_exit(3);
    assert!(out.contains("agent-trace: cannot write"), "{out}");
    assert!(out.contains("2 session(s) were written before it"), "{out}");
}

/// A scenario that declares `data_plane.reasoning`: its thinking shows in OTLP
/// (reasoning tokens, a thinking event) and as agent-trace `thinking` events.
#[test]
fn declared_reasoning_is_in_otlp_and_in_thinking_events() {
    let dir = tempfile::tempdir().unwrap();
    let traces = dir.path().join("traces");
    let otlp = dir.path().join("o.jsonl");
    Otelsim::new()
        .args([
            "-q",
            "scenario",
            "-n",
            "new_claim_phone_reasoning",
            "--count",
            "2",
        ])
        .seed(8)
        .start_time(T0)
        .output_file(&otlp)
        .arg("--output")
        .arg(format!("agent-trace:{}", traces.display()))
        .run_ok();
    let spans = crate::support::spans_in(&otlp);
    let llm: Vec<&Flat> = spans.iter().filter(|s| class(s) == "llm.call").collect();
    assert!(!llm.is_empty());
    let mut otlp_reasoning: Vec<i64> = Vec::new();
    for s in &llm {
        let r: i64 = s.attrs["gen_ai.usage.reasoning.output_tokens"]
            .parse()
            .unwrap();
        let out: i64 = s.attrs["gen_ai.usage.output_tokens"].parse().unwrap();
        assert!(
            (150..=900).contains(&r) && r < out,
            "reasoning {r} within output {out}"
        );
        assert!(
            s.events.iter().any(|e| e == "vendor.gen_ai.thinking"),
            "{:?}",
            s.events
        );
        otlp_reasoning.push(r);
    }
    let (events, _) = events_in(&traces);
    let thinking = of_type(&events, "thinking");
    assert_eq!(thinking.len(), llm.len(), "one thinking step per LLM call");
    let mut written: Vec<i64> = thinking
        .iter()
        .map(|e| {
            assert_eq!(e["data"]["stage"], "planning");
            assert!(e["data"]["content"].as_str().unwrap().contains("User:"));
            e["data"]["tokens"].as_i64().unwrap()
        })
        .collect();
    written.sort_unstable();
    otlp_reasoning.sort_unstable();
    assert_eq!(written, otlp_reasoning);
    for r in of_type(&events, "llm.response") {
        assert!(r["data"]["thinking"].is_string() && r["data"]["tokens"]["reasoning"].is_i64());
    }
}

/// `include_messages`, `include_thinking`, `max_content_length` and
/// `sample_rate` change what is written, as their names say.
#[test]
fn agent_trace_settings_shape_what_is_written() {
    let (dir, cfg) = config_with(
        "agent_trace:\n  sample_rate: 0.5\n  include_messages: false\n  include_thinking: false\n  max_content_length: 12\n",
    );
    let traces = dir.path().join("traces");
    Otelsim::new()
        .arg("--config")
        .arg(&cfg)
        .args([
            "scenario",
            "-n",
            "new_claim_phone_reasoning",
            "--count",
            "40",
        ])
        .seed(8)
        .start_time(T0)
        .arg("--output")
        .arg(format!("agent-trace:{}", traces.display()))
        .run_ok();
    let (events, folders) = events_in(&traces);
    assert!(
        (10..=30).contains(&folders.len()),
        "about half of 40 sessions: {}",
        folders.len()
    );
    assert!(of_type(&events, "thinking").is_empty());
    for e in &events {
        let d = &e["data"];
        for k in ["messages", "content", "user_input", "output", "thinking"] {
            assert!(d.get(k).is_none(), "{k} written: {e}");
        }
        fn longest(v: &Value) -> usize {
            match v {
                Value::String(s) => s.chars().count(),
                Value::Array(a) => a.iter().map(longest).max().unwrap_or(0),
                Value::Object(m) => m.values().map(longest).max().unwrap_or(0),
                _ => 0,
            }
        }
        assert!(longest(d) <= 12, "{e}");
    }
}

#[test]
fn enabled_in_config_writes_to_trace_dir() {
    let dir = tempfile::tempdir().unwrap();
    let traces = dir.path().join("from-config");
    let (_cfg_dir, cfg) = config_with(&format!(
        "agent_trace:\n  enabled: true\n  trace_dir: \"{}\"\n",
        traces.display()
    ));
    Otelsim::new()
        .arg("--config")
        .arg(&cfg)
        .args(["-q", "scenario", "-n", "new_claim_phone_multi_turn"])
        .seed(1)
        .start_time(T0)
        .output_file(dir.path().join("o.jsonl"))
        .run_ok();
    let (events, folders) = events_in(&traces);
    assert_eq!(folders.len(), 1);
    assert_eq!(of_type(&events, "turn.start").len(), 4);
}

#[test]
fn whole_session_outputs_refuse_realtime_timing() {
    let dir = tempfile::tempdir().unwrap();
    for output in [
        format!("agent-trace:{}", dir.path().join("t").display()),
        format!("events-jsonl:{}", dir.path().join("e.jsonl").display()),
    ] {
        let err = Otelsim::new()
            .args(["run", "--realtime", "--count", "1", "--output", &output])
            .run_exit(2);
        assert!(
            err.contains("writes whole sessions") && err.contains("--realtime"),
            "{err}"
        );
    }
}
