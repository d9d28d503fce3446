//! The microservices pack (seed 002): CLIENT/SERVER pairs across service
//! boundaries, per-service error rates and their propagation, spans JSONL, and
//! `otelsim stats` inside the seed's ranges.

use crate::support::{by_trace, read_json, repo, spans_in, Flat, Otelsim};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

const T0: &str = "2026-03-01T00:00:00Z";
const SERVER: i32 = 2;
const CLIENT: i32 = 3;
const ERROR: i32 = 2;

/// Configured own error rates, as config/config.yaml declares them.
const RATES: &[(&str, f64)] = &[
    ("api-gateway", 0.01),
    ("user-service", 0.02),
    ("auth-service", 0.015),
    ("auth-db", 0.01),
    ("profile-db", 0.01),
    ("order-service", 0.02),
    ("payment-service", 0.05),
    ("bank-api", 0.08),
    ("fraud-detection", 0.02),
    ("inventory-service", 0.02),
    ("inventory-db", 0.01),
    ("order-db", 0.01),
    ("warehouse-api", 0.03),
];

fn service(s: &Flat) -> &str {
    s.resource.get("service.name").map_or("", String::as_str)
}

#[test]
fn every_client_call_to_a_service_has_one_server_child_in_the_callees_resource() {
    let d = Otelsim::new()
        .seed(12)
        .start_time(T0)
        .cli("run --tags microservices --count 400 --interval 0")
        .deliver("grpc");
    let traces = by_trace(&d.spans);
    assert_eq!(traces.len(), 400);
    let instrumented: BTreeSet<&str> = d.spans.iter().map(service).collect();
    let (mut pairs, mut leaf_clients) = (0, 0);
    for spans in traces.values() {
        let roots: Vec<&Flat> = spans.iter().filter(|s| s.parent.is_empty()).collect();
        assert_eq!(roots.len(), 1, "one root per trace");
        assert_eq!(service(roots[0]), "api-gateway");
        assert_eq!(roots[0].kind, SERVER);
        for c in spans.iter().filter(|s| s.kind == CLIENT) {
            let peer = c.attrs["peer.service"].as_str();
            let children: Vec<&Flat> = spans.iter().filter(|s| s.parent == c.span_id).collect();
            if instrumented.contains(peer) {
                // A call to an instrumented service: exactly one SERVER child, in the callee.
                assert_eq!(children.len(), 1, "{} → {peer}: {children:?}", c.name);
                let server = children[0];
                assert_eq!(server.kind, SERVER);
                assert_eq!(service(server), peer);
                assert_ne!(service(server), service(c));
                assert_eq!(server.name, c.name);
                assert_eq!(
                    server.attrs["http.request.method"],
                    c.attrs["http.request.method"]
                );
                assert!(c.attrs["url.full"].starts_with(&format!("http://{peer}:8080/")));
                assert_eq!(c.attrs["server.address"], peer);
                assert!(
                    server.start >= c.start && server.end <= c.end,
                    "server inside client"
                );
                pairs += 1;
            } else {
                // A database or external API: the CLIENT span is all there is.
                assert!(children.is_empty(), "{peer} emits nothing: {children:?}");
                let db = c.attrs.contains_key("db.system.name");
                let http = c.attrs.contains_key("http.request.method");
                assert!(db != http, "db or http attributes: {:?}", c.attrs);
                leaf_clients += 1;
            }
        }
    }
    assert!(
        pairs > 400 && leaf_clients > 100,
        "{pairs} pairs, {leaf_clients} leaves"
    );
    // Every service of seed 002 shows up: seven instrumented, six as peers.
    assert_eq!(instrumented.len(), 7, "{instrumented:?}");
    let sink_services: BTreeSet<&String> = d.snapshot.spans_by_service.keys().collect();
    assert_eq!(sink_services.len(), 7, "{sink_services:?}");
}

#[test]
fn error_shares_per_service_match_the_configured_rates_and_propagate_span_by_span() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("spans.jsonl");
    Otelsim::new()
        .seed(2002)
        .start_time(T0)
        .args(["--no-metrics", "--no-logs"])
        .arg("--output")
        .arg(format!("spans-jsonl:{}", file.display()))
        .cli("run --tags microservices --count 20000 --interval 0")
        .limit(std::time::Duration::from_secs(300))
        .run_ok();
    let stats = stats_json(&file);
    assert_eq!(stats["traces"], 20000);
    let by_service = stats["errors_by_service"].as_object().expect("by service");
    for (name, rate) in RATES {
        let e = &by_service[*name];
        let own = e["own_error_share"].as_f64().unwrap();
        assert!(
            (own - rate).abs() <= 0.015,
            "{name}: measured {own:.4}, configured {rate} ({e})"
        );
    }
    // Spans that failed because a call under them failed fail more often than they
    // do on their own: payment-service also fails with bank-api and fraud-detection.
    let pay = &by_service["payment-service"];
    assert!(pay["error_share"].as_f64().unwrap() > pay["own_error_share"].as_f64().unwrap() + 0.05);
    // Span by span: a failed span's parent failed too (nothing in the pack handles
    // errors), with the same error.type; an HTTP span's status code follows.
    let lines = std::fs::read_to_string(&file).unwrap();
    let spans: Vec<serde_json::Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let by_id: HashMap<&str, &serde_json::Value> = spans
        .iter()
        .map(|s| (s["span_id"].as_str().unwrap(), s))
        .collect();
    let mut failed = 0;
    for s in &spans {
        let status = s["tags"]
            .get("http.response.status_code")
            .and_then(|v| v.as_i64());
        if s["status_code"] == 0 {
            assert!(s["tags"].get("error.type").is_none(), "{s}");
            if let Some(code) = status {
                assert_eq!(code, 200, "{s}");
            }
            continue;
        }
        failed += 1;
        assert!(s["tags"]["error.type"].is_string(), "{s}");
        if let Some(code) = status {
            assert!(
                (500..600).contains(&code),
                "a failed HTTP span answers 5xx: {s}"
            );
        }
        if let Some(p) = s["parent_span_id"].as_str() {
            let parent = by_id[p];
            assert_eq!(
                parent["status_code"], 1,
                "failure propagates: {s}\n{parent}"
            );
            assert!(parent["tags"]["error.type"].is_string());
        }
    }
    assert!(failed > 1000, "{failed} failed spans");
}

/// `otelsim stats --json FILE`, parsed.
fn stats_json(file: &Path) -> serde_json::Value {
    let out = Otelsim::new().arg("stats").arg("--json").arg(file).run_ok();
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[test]
fn stats_of_1000_bundled_traces_land_in_seed_002s_ranges() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("medium.jsonl");
    Otelsim::new()
        .seed(1000)
        .start_time(T0)
        .arg("--output")
        .arg(format!("spans-jsonl:{}", file.display()))
        .cli("run --tags microservices --count 1000 --interval 0")
        .run_ok();
    let s = stats_json(&file);
    assert_eq!(s["format"], "spans-jsonl");
    assert_eq!(s["traces"], 1000);
    // Seed 002 counts one span per service operation: the calls view.
    let calls = s["calls"].as_u64().unwrap();
    assert!((2500..=3000).contains(&calls), "calls {calls}");
    let per = &s["calls_per_trace"];
    assert!(
        per["min"].as_u64().unwrap() >= 1 && per["max"].as_u64().unwrap() <= 8,
        "{per}"
    );
    let avg = per["avg"].as_f64().unwrap();
    assert!((2.5..=3.0).contains(&avg), "calls per trace {avg}");
    let depth = &s["call_depth"];
    assert!(
        depth["min"].as_u64().unwrap() >= 2 && depth["max"].as_u64().unwrap() <= 6,
        "{depth}"
    );
    // The 13 services the seed's diagram names (it says "12"), 7 of them instrumented.
    assert_eq!(s["services"]["total"], 13, "{}", s["services"]);
    assert_eq!(s["services"]["instrumented"], 7);
    let ops = s["operations"].as_u64().unwrap();
    assert!((40..=50).contains(&ops), "operations {ops}");
    // On the wire every call between instrumented services is two spans.
    assert!(s["spans"].as_u64().unwrap() > calls);
    assert!(s["reuse"]["service"].as_f64().unwrap() > 22.0);
    assert!(s["bytes"].as_u64().unwrap() > 0);
    // The same numbers from the OTLP/JSON view of the same run.
    let otlp = dir.path().join("medium.otlp.jsonl");
    Otelsim::new()
        .seed(1000)
        .start_time(T0)
        .output_file(&otlp)
        .cli("run --tags microservices --count 1000 --interval 0")
        .run_ok();
    let o = stats_json(&otlp);
    for k in [
        "traces",
        "spans",
        "calls",
        "operations",
        "services",
        "depth",
        "errors_by_service",
    ] {
        assert_eq!(s[k], o[k], "{k}");
    }
}

#[test]
fn spans_jsonl_holds_the_same_spans_as_otlp_json_in_seed_002s_model() {
    let dir = tempfile::tempdir().expect("tempdir");
    let jsonl = dir.path().join("spans.jsonl");
    let otlp = dir.path().join("otlp.jsonl");
    let report = dir.path().join("run.json");
    Otelsim::new()
        .seed(5)
        .start_time(T0)
        .arg("--output")
        .arg(format!("spans-jsonl:{}", jsonl.display()))
        .arg("--output")
        .arg(format!("otlp-json:{}", otlp.display()))
        .cli("run --tags microservices --count 50 --interval 0")
        .report(&report)
        .run_ok();
    let flat = spans_in(&otlp);
    let text = std::fs::read_to_string(&jsonl).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), flat.len());
    let uuid = |hex: &str| {
        let h = format!("{hex:0>32}");
        format!(
            "{}-{}-{}-{}-{}",
            &h[..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..]
        )
    };
    let by_id: BTreeMap<String, &Flat> = flat.iter().map(|s| (uuid(&s.span_id), s)).collect();
    let mut events = 0;
    for l in &lines {
        let s = by_id[l["span_id"].as_str().unwrap()];
        assert_eq!(l["trace_id"], uuid(&s.trace_id));
        match l["parent_span_id"].as_str() {
            Some(p) => assert_eq!(p, uuid(&s.parent)),
            None => assert!(s.parent.is_empty()),
        }
        assert_eq!(l["service_name"], service(s));
        assert_eq!(l["operation_name"], s.name);
        assert_eq!(l["start_time"], s.start);
        assert_eq!(l["end_time"], s.end);
        assert_eq!(l["status_code"], u8::from(s.status == ERROR));
        let tags = l["tags"].as_object().unwrap();
        assert_eq!(tags.len(), s.attrs.len());
        let logs = l["logs"].as_array().unwrap();
        assert_eq!(logs.len(), s.events.len());
        for e in logs {
            assert!(e["timestamp"].as_u64().unwrap() >= s.start);
            if e["event"] == "cache_hit" {
                assert!(e["key"].is_string(), "{e}");
                events += 1;
            }
        }
    }
    assert!(events > 5, "{events} cache_hit events");
    // The writer counts what it wrote; the format has no room for log records.
    let r = read_json(&report);
    let out = &r["report"]["outputs"][0];
    assert_eq!(out["output"], format!("spans-jsonl:{}", jsonl.display()));
    assert_eq!(out["spans"]["acked"], lines.len() as u64);
    assert_eq!(out["spans"]["failed"], 0);
}

#[test]
fn a_spans_jsonl_write_failure_exits_3_and_says_what_was_written() {
    if !Path::new("/dev/full").exists() {
        eprintln!("skipped: no /dev/full on this system");
        return;
    }
    let out = Otelsim::new()
        .seed(1)
        .start_time(T0)
        .args(["--output", "spans-jsonl:/dev/full"])
        .cli("run --tags microservices --count 2000 --interval 0")
        .run_exit(3);
    assert!(out.contains("/dev/full"), "{out}");
    assert!(
        out.contains("spans were written") || out.contains("final flush"),
        "{out}"
    );
}

#[test]
fn topology_mistakes_are_errors_at_their_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let defs = dir.path().join("definitions");
    std::fs::create_dir(&defs).unwrap();
    std::fs::write(
        defs.join("bad.yaml"),
        "topology:\n  service: api-gateway\n  operation: GET /x\n  calls:\n    - to: auth-db\n      operation: SELECT users\n      calls:\n        - { to: user-service, operation: GET /y }\n    - to: user-service\n      operation: fetch the user\n",
    )
    .unwrap();
    let out = Otelsim::new()
        .arg("--scenarios-dir")
        .arg(&defs)
        .cli("validate")
        .run_exit(2);
    assert!(out.contains("bad.yaml:8:9"), "{out}");
    assert!(
        out.contains("a database or external API makes no calls"),
        "{out}"
    );
    assert!(out.contains("bad.yaml:10:18"), "{out}");
    assert!(out.contains("`METHOD /route`"), "{out}");
    let _ = repo();
}

/// A load profile with two incident windows, 10 s into a 30 s run.
const INCIDENT_PROFILE: &str = "
stages:
  - { duration: 30s, target: 1000 }
incidents:
  - { service: bank-api, from: 10s, for: 10s, error_rate: 0.6 }
  - { service: payment-service, from: 10s, for: 10s, latency_factor: 4, ramp: 2s }
";

#[test]
fn incident_windows_change_their_service_on_schedule_and_the_report_measures_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let profile = dir.path().join("load.yaml");
    std::fs::write(&profile, INCIDENT_PROFILE).unwrap();
    let file = dir.path().join("spans.jsonl");
    let report = dir.path().join("run.json");
    let start_ns: u64 = 1_772_323_200_000_000_000; // T0
    let out = Otelsim::new()
        .seed(9)
        .start_time(T0)
        .arg("--output")
        .arg(format!("spans-jsonl:{}", file.display()))
        .cli("run --tags microservices --load-profile")
        .arg(&profile)
        .report(&report)
        .run_ok();
    assert!(out.contains("incident bank-api from 10s for 10s"), "{out}");
    let r = read_json(&report);
    let windows = r["report"]["incidents"]
        .as_array()
        .expect("incidents in the report");
    assert_eq!(windows.len(), 2);
    let (bank, pay) = (&windows[0], &windows[1]);
    assert_eq!(bank["service"], "bank-api");
    let share = |w: &serde_json::Value, side: &str| w[side]["error_share"].as_f64().unwrap();
    let latency = |w: &serde_json::Value, side: &str| w[side]["mean_latency_ms"].as_f64().unwrap();
    assert!(bank["inside"]["requests"].as_u64().unwrap() > 250, "{bank}");
    assert!((share(bank, "inside") - 0.6).abs() < 0.1, "{bank}");
    assert!((share(bank, "outside") - 0.08).abs() < 0.04, "{bank}");
    assert!(
        latency(pay, "inside") > 2.5 * latency(pay, "outside"),
        "{pay}"
    );
    // The file agrees: bank-api calls fail more inside the window, by their own time.
    let text = std::fs::read_to_string(&file).unwrap();
    let (mut inside, mut outside) = ((0u32, 0u32), (0u32, 0u32));
    for l in text.lines() {
        let s: serde_json::Value = serde_json::from_str(l).unwrap();
        if s["tags"]["peer.service"] != "bank-api" {
            continue;
        }
        let at_s = (s["end_time"].as_u64().unwrap() - start_ns) as f64 / 1e9;
        let failed = u32::from(s["status_code"] == 1);
        // Calls end a little after the request was due: keep clear of the edges.
        if (11.0..19.0).contains(&at_s) {
            inside = (inside.0 + 1, inside.1 + failed);
        } else if !(9.0..22.0).contains(&at_s) {
            outside = (outside.0 + 1, outside.1 + failed);
        }
    }
    let share_of = |(n, f): (u32, u32)| f64::from(f) / f64::from(n.max(1));
    assert!(share_of(inside) > 0.45, "{inside:?}");
    assert!(share_of(outside) < 0.15, "{outside:?}");
}

#[test]
fn an_incident_on_an_unknown_service_is_refused_with_its_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let profile = dir.path().join("load.yaml");
    std::fs::write(
        &profile,
        "rate: 10\nincidents:\n  - { service: bank-apy, from: 1s, for: 1s, error_rate: 0.5 }\n",
    )
    .unwrap();
    let out = Otelsim::new()
        .cli("run --tags microservices --duration 1s --load-profile")
        .arg(&profile)
        .run_exit(2);
    assert!(out.contains("load.yaml"), "{out}");
    assert!(out.contains("3:5"), "{out}");
    assert!(
        out.contains("bank-apy") && out.contains("bank-api"),
        "{out}"
    );
}

/// The bundled config with payment-service speaking gRPC and failing often.
fn grpc_config(dir: &Path, protocol: &str) -> std::path::PathBuf {
    let text = std::fs::read_to_string(repo().join("config/config.yaml")).unwrap();
    let old = "  payment-service:\n    kind: internal\n";
    assert!(text.contains(old), "config.yaml has no payment-service");
    let p = dir.join("config.yaml");
    let new = format!("  payment-service:\n    kind: internal\n    protocol: {protocol}\n");
    let text =
        text.replacen(old, &new, 1)
            .replacen("    error_rate: 0.05\n", "    error_rate: 0.4\n", 1);
    std::fs::write(&p, text).unwrap();
    p
}

const GRPC_CHECKOUT: &str = "description: checkout through a gRPC payment service
topology:
  service: api-gateway
  operation: POST /checkout
  calls:
    - to: payment-service
      operation: payments.PaymentService/Charge
      calls:
        - { to: bank-api, operation: POST /charges }
";

#[test]
fn a_grpc_service_gets_rpc_client_and_server_spans_named_by_method_with_status_codes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let defs = dir.path().join("definitions");
    std::fs::create_dir(&defs).unwrap();
    std::fs::write(defs.join("grpc_checkout.yaml"), GRPC_CHECKOUT).unwrap();
    let cfg = grpc_config(dir.path(), "grpc");
    let file = dir.path().join("spans.jsonl");
    Otelsim::new()
        .seed(4)
        .start_time(T0)
        .arg("--config")
        .arg(&cfg)
        .arg("--scenarios-dir")
        .arg(&defs)
        .cli("scenario --name grpc_checkout --count 200 --interval 0 --no-logs --no-metrics")
        .output_file(&file)
        .run_ok();
    let spans = spans_in(&file);
    let by_id: HashMap<&str, &Flat> = spans.iter().map(|s| (s.span_id.as_str(), s)).collect();
    let method = "payments.PaymentService/Charge";
    let rpc: Vec<&Flat> = spans.iter().filter(|s| s.name == method).collect();
    assert_eq!(rpc.len(), 400, "a CLIENT and a SERVER span per request");
    let mut failed = 0;
    for s in &rpc {
        assert_eq!(s.attrs["rpc.system.name"], "grpc", "{s:?}");
        assert_eq!(s.attrs["rpc.method"], method, "{s:?}");
        assert!(
            !s.attrs
                .keys()
                .any(|k| k.starts_with("http.") || k.starts_with("url.")),
            "no HTTP attributes on a gRPC span: {s:?}"
        );
        let code = s.attrs["rpc.response.status_code"].as_str();
        let allowed = ["OK", "DEADLINE_EXCEEDED", "UNAVAILABLE", "INTERNAL"];
        assert!(allowed.contains(&code), "{code}");
        assert_eq!(
            code != "OK",
            s.status == ERROR,
            "status follows the code: {s:?}"
        );
        assert_eq!(s.attrs.contains_key("error.type"), code != "OK", "{s:?}");
        match s.kind {
            SERVER => {
                assert_eq!(service(s), "payment-service");
                let client = by_id[s.parent.as_str()];
                assert_eq!((client.kind, client.name.as_str()), (CLIENT, method));
                assert_eq!(service(client), "api-gateway");
                // The server's failure reaches its client span.
                if code != "OK" {
                    failed += 1;
                    assert_eq!(client.status, ERROR, "{client:?}");
                }
            }
            CLIENT => {
                assert_eq!(s.attrs["server.address"], "payment-service");
                assert_eq!(s.attrs["server.port"], "50051");
                assert_eq!(s.attrs["peer.service"], "payment-service");
            }
            k => panic!("kind {k} on {s:?}"),
        }
    }
    // ≈ 40 % own failures plus the bank's propagated ones.
    assert!((70..=150).contains(&failed), "{failed} failed of 200");
    // The bank is still called over HTTP from the gRPC service.
    let bank = spans.iter().find(|s| s.name == "POST /charges").unwrap();
    assert_eq!(service(bank), "payment-service");
    assert!(bank.attrs.contains_key("http.response.status_code"));
}

#[test]
fn grpc_mistakes_are_errors_at_their_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let defs = dir.path().join("definitions");
    std::fs::create_dir(&defs).unwrap();
    std::fs::write(
        defs.join("grpc_checkout.yaml"),
        GRPC_CHECKOUT.replace("payments.PaymentService/Charge", "POST /charge"),
    )
    .unwrap();
    let validate = |cfg: &Path| {
        Otelsim::new()
            .arg("--config")
            .arg(cfg)
            .arg("--scenarios-dir")
            .arg(&defs)
            .cli("validate")
            .run_exit(2)
    };
    let out = validate(&grpc_config(dir.path(), "grpc"));
    assert!(out.contains("grpc_checkout.yaml:7:18"), "{out}");
    assert!(out.contains("`package.Service/Method`"), "{out}");
    let out = validate(&grpc_config(dir.path(), "soap"));
    assert!(out.contains("services.payment-service.protocol"), "{out}");
    assert!(out.contains("expected a protocol (http, grpc)"), "{out}");
    let cfg = dir.path().join("config.yaml");
    let text = std::fs::read_to_string(&cfg).unwrap().replacen(
        "  auth-db:\n    kind: database\n",
        "  auth-db:\n    kind: database\n    protocol: grpc\n",
        1,
    );
    std::fs::write(&cfg, text).unwrap();
    let out = validate(&cfg);
    assert!(out.contains("services.auth-db.protocol"), "{out}");
    assert!(out.contains("give `db_system` instead"), "{out}");
}
