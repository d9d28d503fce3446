//! The house: several outputs in one run get the very same records, counted
//! per writer; one trace may cross several services.

use crate::support::{read_json, repo, spans_in, Flat, Otelsim};
use std::collections::BTreeSet;

const T0: &str = "2026-03-01T00:00:00Z";

/// What identifies a span and everything it says, independent of batching.
fn span_set(spans: &[Flat]) -> BTreeSet<String> {
    spans
        .iter()
        .map(|s| {
            let mut attrs: Vec<_> = s.attrs.iter().collect();
            attrs.sort();
            let mut res: Vec<_> = s.resource.iter().collect();
            res.sort();
            format!(
                "{} {} {} {} {} {} {} {:?} {:?} {}",
                s.trace_id,
                s.span_id,
                s.parent,
                s.name,
                s.start,
                s.end,
                s.status,
                attrs,
                res,
                s.scope
            )
        })
        .collect()
}

#[test]
fn two_outputs_carry_the_same_spans_and_count_them_each() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("copy.jsonl");
    let report = dir.path().join("run.json");
    let file_out = format!("otlp-json:{}", file.display());
    let d = Otelsim::new()
        .seed(42)
        .start_time(T0)
        .args(["--output", "otlp", "--output", &file_out])
        .cli("run --count 40 --interval 0")
        .report(&report)
        .deliver("http/protobuf");
    let in_file = spans_in(&file);
    assert!(in_file.len() > 100, "{} spans in the file", in_file.len());
    assert_eq!(span_set(&d.spans), span_set(&in_file));
    let r = read_json(&report);
    let outputs = r["report"]["outputs"]
        .as_array()
        .expect("outputs in the report");
    assert_eq!(outputs.len(), 2, "{outputs:?}");
    assert!(outputs[0]["output"]
        .as_str()
        .unwrap()
        .starts_with("otlp http/protobuf http://"));
    assert_eq!(outputs[1]["output"], file_out.as_str());
    assert_eq!(outputs[0]["receiver"], true);
    assert_eq!(outputs[1]["receiver"], false);
    for o in outputs {
        assert_eq!(o["spans"]["generated"], in_file.len() as u64, "{o}");
        assert_eq!(o["spans"]["acked"], in_file.len() as u64, "{o}");
        assert_eq!(o["spans"]["failed"], 0, "{o}");
        assert!(o["log_records"]["acked"].as_u64().unwrap() > 0, "{o}");
        assert!(o["metric_points"]["acked"].as_u64().unwrap() > 0, "{o}");
    }
    assert_eq!(outputs[0]["log_records"], outputs[1]["log_records"]);
    assert_eq!(d.snapshot.spans, in_file.len() as u64);
    // The summary names each output.
    assert!(
        d.output.contains("output otlp http/protobuf"),
        "{}",
        d.output
    );
    assert!(
        d.output.contains(&format!("output {file_out}:")),
        "{}",
        d.output
    );
}

const SERVICES: &str = "
services:
  api-gateway:
    attributes: { service.version: \"2.1.0\", deployment.environment.name: production }
  checkout:
    attributes: { service.version: \"0.9.3\" }
  payments: {}
";

const CHECKOUT: &str = "
name: checkout
description: A checkout request crossing three services.
workload_weight: 1
root:
  type: vendor.a2a.orchestrate
  service: api-gateway
  latency: { mean_ms: 300, variance: 0.1 }
  children:
    - type: vendor.task.execute
      service: checkout
      latency: { mean_ms: 120, variance: 0.1 }
      children:
        - type: vendor.payments.charge
          service: payments
          latency: { mean_ms: 40, variance: 0.1 }
        - type: vendor.llm.call
          latency: { mean_ms: 40, variance: 0.1 }
";

/// `config` without its top-level `services:` map (the bundled one declares the
/// microservices topology's), so a test can declare its own.
fn without_services(config: &str) -> String {
    let mut out = String::new();
    let mut skipping = false;
    for line in config.lines() {
        let top_level = !line.starts_with(' ') && !line.starts_with('#') && !line.is_empty();
        if top_level {
            skipping = line.starts_with("services:");
        }
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[test]
fn a_trace_crosses_three_services_and_the_sink_counts_spans_per_service() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("config.yaml");
    let bundled = std::fs::read_to_string(repo().join("config/config.yaml")).unwrap();
    std::fs::write(&config, without_services(&bundled) + SERVICES).unwrap();
    let defs = dir.path().join("definitions");
    std::fs::create_dir(&defs).unwrap();
    std::fs::write(defs.join("checkout.yaml"), CHECKOUT).unwrap();
    let d = Otelsim::new()
        .arg("--config")
        .arg(&config)
        .arg("--scenarios-dir")
        .arg(&defs)
        .seed(3)
        .cli("scenario --name checkout --count 1")
        .deliver("grpc");
    let traces: BTreeSet<&str> = d.spans.iter().map(|s| s.trace_id.as_str()).collect();
    assert_eq!(traces.len(), 1, "one trace");
    assert_eq!(d.spans.len(), 4);
    let service_of = |name: &str| {
        let s = d.spans.iter().find(|s| s.class == name).expect(name);
        s.resource["service.name"].clone()
    };
    assert_eq!(service_of("vendor.a2a.orchestrate"), "api-gateway");
    assert_eq!(service_of("vendor.task.execute"), "checkout");
    assert_eq!(service_of("vendor.payments.charge"), "payments");
    // A step without `service:` runs in its parent's.
    assert_eq!(service_of("vendor.llm.call"), "checkout");
    let gateway = d
        .spans
        .iter()
        .find(|s| s.class == "vendor.a2a.orchestrate")
        .unwrap();
    assert_eq!(gateway.resource["service.version"], "2.1.0");
    // Three resources in the one request that carried the trace.
    let resources: BTreeSet<(usize, &str)> = d
        .spans
        .iter()
        .map(|s| (s.request, s.resource["service.name"].as_str()))
        .collect();
    assert_eq!(resources.len(), 3, "{resources:?}");
    let by_service = &d.snapshot.spans_by_service;
    assert_eq!(by_service["api-gateway"], 1, "{by_service:?}");
    assert_eq!(by_service["checkout"], 2, "{by_service:?}");
    assert_eq!(by_service["payments"], 1, "{by_service:?}");
    let summary = d.snapshot.render_summary();
    assert!(summary.contains("spans by service"), "{summary}");
}

/// A plain scenario and an opt-in pack scenario: the pack is left out of the
/// untagged mix and picked with its tag.
const PLAIN: &str = "
name: plain
root:
  type: vendor.a2a.orchestrate
  latency: { mean_ms: 10, variance: 0.1 }
";
const PACK: &str = "
name: pack_only
description: A pack scenario.
tags: [pack]
opt_in: true
root:
  type: vendor.a2a.orchestrate
  latency: { mean_ms: 10, variance: 0.1 }
";

#[test]
fn opt_in_scenarios_run_only_when_their_tag_is_asked_for() {
    let dir = tempfile::tempdir().expect("tempdir");
    let defs = dir.path().join("definitions");
    std::fs::create_dir(&defs).unwrap();
    std::fs::write(defs.join("plain.yaml"), PLAIN).unwrap();
    std::fs::write(defs.join("pack_only.yaml"), PACK).unwrap();
    let picked = |tags: &str| -> BTreeSet<String> {
        let report = dir.path().join(format!("report{tags}.json"));
        let mut cmd = Otelsim::new()
            .arg("--scenarios-dir")
            .arg(&defs)
            .cli("run --count 40 --interval 0")
            .seed(5)
            .start_time("2026-01-01T00:00:00Z")
            .output_file(dir.path().join(format!("out{tags}.jsonl")))
            .report(&report);
        if !tags.is_empty() {
            cmd = cmd.arg(format!("--tags={tags}"));
        }
        cmd.run_ok();
        let r = read_json(&report);
        r["report"]["scenarios"]
            .as_object()
            .expect("scenarios")
            .keys()
            .cloned()
            .collect()
    };
    assert_eq!(picked(""), BTreeSet::from(["plain".to_string()]));
    assert_eq!(picked("pack"), BTreeSet::from(["pack_only".to_string()]));
    let listed = Otelsim::new()
        .arg("--scenarios-dir")
        .arg(&defs)
        .cli("list")
        .run_ok();
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("pack_only") && l.contains("(opt-in)")),
        "{listed}"
    );
}

#[test]
fn outputs_that_write_spans_only_turn_logs_and_metrics_off_from_the_start() {
    let work = tempfile::tempdir().unwrap();
    for (i, kind) in ["spans-jsonl", "events-jsonl", "agent-trace", "session-json"]
        .iter()
        .enumerate()
    {
        let target = work.path().join(format!("out{i}"));
        let output = format!("{kind}:{}", target.display());
        let signals = |alone: bool| {
            let report = work.path().join(format!("r{i}{alone}.json"));
            let mut o = Otelsim::new()
                .seed(3)
                .args(["run", "--count", "4", "--interval", "0"])
                .arg("--output")
                .arg(&output)
                .report(&report);
            if !alone {
                let otlp = work.path().join(format!("otlp{i}.json"));
                o = o
                    .arg("--output")
                    .arg(format!("otlp-json:{}", otlp.display()));
            }
            o.run_ok();
            let r = read_json(&report);
            let outs = r["report"]["outputs"].as_array().unwrap().clone();
            let mine = outs
                .iter()
                .find(|x| x["output"] == output.as_str())
                .unwrap();
            (
                mine["log_records"].clone(),
                mine["metric_points"].clone(),
                outs,
            )
        };
        // Alone: no output wants them, so none are made.
        let (logs, points, _) = signals(true);
        for s in [&logs, &points] {
            assert_eq!(s["generated"], 0, "{kind}: {s}");
            assert!(
                s["turned_off"]
                    .as_str()
                    .unwrap()
                    .contains("log records or metrics")
                    || s["turned_off"].as_str().unwrap().contains("spans only"),
                "{kind}: {s}"
            );
        }
        // Beside OTLP they are made for it, and this output counts them as dropped.
        let (logs, _, outs) = signals(false);
        let otlp_logs = &outs
            .iter()
            .find(|x| x["output"] != output.as_str())
            .unwrap()["log_records"];
        assert!(
            otlp_logs["acked"].as_u64().unwrap() > 0,
            "{kind}: {otlp_logs}"
        );
        assert_eq!(logs["generated"], otlp_logs["generated"], "{kind}: {logs}");
        assert_eq!(
            logs["dropped_by_receiver"], logs["generated"],
            "{kind}: {logs}"
        );
    }
}

#[test]
fn asking_for_logs_or_metrics_with_only_span_outputs_is_refused_up_front() {
    let work = tempfile::tempdir().unwrap();
    let target = work.path().join("spans.jsonl");
    for flag in ["--logs", "--metrics"] {
        let err = Otelsim::new()
            .args(["run", "--count", "1", "--interval", "0", flag])
            .arg("--output")
            .arg(format!("spans-jsonl:{}", target.display()))
            .run_exit(2);
        assert!(
            err.contains(&format!("{flag}: none of the outputs"))
                && err.contains("--output otlp-json:PATH"),
            "{err}"
        );
        assert!(!target.exists(), "nothing was written");
    }
}
