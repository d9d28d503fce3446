//! CLI behaviour through the real binary, writing OTLP/JSON files on a virtual
//! clock (--start-time) so runs are fast and deterministic.

use crate::support::*;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

const T0: &str = "2026-01-01T00:00:00Z";

/// Runs `sim` with `--output-file dir/file` last; it must succeed. The spans written.
fn run_to_file(dir: &Path, file: &str, sim: Otelsim) -> Vec<Flat> {
    let path = dir.join(file);
    sim.output_file(&path).run_ok();
    spans_in(&path)
}

/// Picks per scenario: each pick is one session.
fn picks_by_scenario(spans: &[Flat]) -> BTreeMap<String, usize> {
    let mut sessions: HashMap<String, HashSet<String>> = HashMap::new();
    for s in spans {
        let sc = s.scope.trim_start_matches("otelsim.").to_string();
        sessions
            .entry(sc)
            .or_default()
            .insert(s.attrs["vendor.session.id"].clone());
    }
    sessions.into_iter().map(|(k, v)| (k, v.len())).collect()
}

#[test]
fn global_flags_work_before_and_after_the_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.jsonl");
    let b = dir.path().join("b.jsonl");
    let scenario = ["scenario", "--name", "new_claim_phone", "--count", "2"];
    let globals = |sim: Otelsim, file: &Path| {
        sim.seed(4)
            .start_time(T0)
            .cli("--vendor acme --service-name svc-x")
            .output_file(file)
    };
    // The global flags before the subcommand, then after it.
    globals(Otelsim::new(), &a).args(scenario).run_ok();
    globals(Otelsim::new().args(scenario), &b).run_ok();
    let (fa, fb) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    assert!(!fa.is_empty());
    assert_eq!(
        fa, fb,
        "the same flags before or after the subcommand give the same output"
    );
    let spans = spans_in(&a);
    assert!(
        spans.iter().all(|s| s.class.starts_with("acme.")),
        "--vendor applied"
    );
    assert!(
        spans.iter().all(|s| s.resource["service.name"] == "svc-x"),
        "--service-name applied"
    );
}

#[test]
fn seed_and_start_time_give_byte_identical_output() {
    let dir = tempfile::tempdir().unwrap();
    let sim = |seed| {
        Otelsim::new()
            .cli("run --count 60 --interval 250")
            .seed(seed)
            .start_time(T0)
    };
    let one = run_to_file(dir.path(), "1.jsonl", sim(42));
    let two = run_to_file(dir.path(), "2.jsonl", sim(42));
    assert_eq!(
        std::fs::read(dir.path().join("1.jsonl")).unwrap(),
        std::fs::read(dir.path().join("2.jsonl")).unwrap()
    );
    assert_eq!(one.len(), two.len());
    run_to_file(dir.path(), "3.jsonl", sim(43));
    assert_ne!(
        std::fs::read(dir.path().join("1.jsonl")).unwrap(),
        std::fs::read(dir.path().join("3.jsonl")).unwrap()
    );
    // The virtual clock: no trace ends after the last pick's emission time.
    let last_emit = otelsim::settings::parse_start_time(T0).unwrap() + 59 * 250_000_000;
    assert!(one.iter().all(|s| s.end <= last_emit));
}

#[test]
fn weights_are_honoured_in_mixed_runs() {
    let dir = tempfile::tempdir().unwrap();
    let n = 4000usize;
    let spans = run_to_file(
        dir.path(),
        "w.jsonl",
        Otelsim::new()
            .cli("run --count")
            .arg(n.to_string())
            // Spans are all the test reads; a loaded CI machine once took longer
            // than the default limit to write and parse the metrics and logs too.
            .cli("--interval 0 --no-metrics --no-logs")
            .seed(8)
            .start_time(T0)
            .limit(std::time::Duration::from_secs(400)),
    );
    let got = picks_by_scenario(&spans);
    let reg = otelsim::registry::Registry::load(&Default::default()).unwrap();
    let listable = reg.filtered(&[]);
    let total: f64 = listable.iter().map(|s| s.workload_weight).sum();
    for s in &listable {
        let expected = s.workload_weight / total;
        let observed = *got.get(&s.name).unwrap_or(&0) as f64 / n as f64;
        let sigma = (expected * (1.0 - expected) / n as f64).sqrt();
        assert!(
            (observed - expected).abs() <= 4.0 * sigma + 1e-9,
            "{}: observed share {observed:.4}, expected {expected:.4} (±{:.4})",
            s.name,
            4.0 * sigma
        );
    }
    assert!(
        !got.contains_key("example_scenario"),
        "example_scenario is never picked at random"
    );
}

#[test]
fn tags_filter_case_insensitively_and_each_once_runs_each_once() {
    let dir = tempfile::tempdir().unwrap();
    let spans = run_to_file(
        dir.path(),
        "t.jsonl",
        Otelsim::new()
            .cli("run --tags CONTROL-Plane --each-once")
            .seed(1)
            .start_time(T0),
    );
    let got = picks_by_scenario(&spans);
    let reg = otelsim::registry::Registry::load(&Default::default()).unwrap();
    let expected: BTreeMap<String, usize> = reg
        .filtered(&["control-plane".into()])
        .iter()
        .map(|s| (s.name.clone(), 1))
        .collect();
    assert!(expected.len() >= 9);
    assert_eq!(got, expected);

    let all = run_to_file(
        dir.path(),
        "e.jsonl",
        Otelsim::new().cli("run --each-once").seed(1).start_time(T0),
    );
    let got = picks_by_scenario(&all);
    assert_eq!(got.len(), reg.filtered(&[]).len());
    assert!(got.values().all(|n| *n == 1));
    assert!(!got.contains_key("example_scenario"));
}

#[test]
fn example_scenario_is_hidden_but_runs_by_name() {
    let out = Otelsim::new().arg("list").run();
    assert!(out.status.success(), "{}", text(&out));
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(!listed.contains("example_scenario"));
    assert!(listed.contains("new_claim_phone "));
    let dir = tempfile::tempdir().unwrap();
    let spans = run_to_file(
        dir.path(),
        "x.jsonl",
        Otelsim::new()
            .cli("scenario --name example_scenario --count 1")
            .start_time(T0),
    );
    assert!(spans.iter().all(|s| s.scope == "otelsim.example_scenario") && !spans.is_empty());
}

#[test]
fn zero_weight_is_never_picked_but_runs_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let defs = dir.path().join("defs");
    std::fs::create_dir_all(defs.join("nested")).unwrap();
    let tree = |w: f64| {
        format!("workload_weight: {w}\nroot:\n  type: vendor.a2a.orchestrate\n  latency: 100\n  children:\n    - type: planner\n      latency: {{distribution: uniform, min_ms: 5, max_ms: 10}}\n")
    };
    std::fs::write(defs.join("often.yaml"), tree(1.0)).unwrap();
    std::fs::write(defs.join("nested/never.yaml"), tree(0.0)).unwrap();
    let spans = run_to_file(
        dir.path(),
        "z.jsonl",
        Otelsim::new()
            .arg("--scenarios-dir")
            .arg(&defs)
            .cli("run --count 300 --interval 0")
            .start_time(T0),
    );
    let got = picks_by_scenario(&spans);
    assert_eq!(got.get("often"), Some(&300));
    assert!(!got.contains_key("never"));
    let spans = run_to_file(
        dir.path(),
        "n.jsonl",
        Otelsim::new()
            .cli("scenario --name never --count 2")
            .start_time(T0)
            .env("SCENARIOS_DIR", &defs),
    );
    assert_eq!(
        picks_by_scenario(&spans).get("never"),
        Some(&2),
        "found recursively via SCENARIOS_DIR"
    );
}

#[test]
fn vendor_prefix_is_coherent_on_every_span_and_attribute() {
    let dir = tempfile::tempdir().unwrap();
    let spans = run_to_file(
        dir.path(),
        "v.jsonl",
        Otelsim::new()
            .cli("run --count 200 --interval 0")
            .seed(2)
            .start_time(T0)
            .env("VENDOR", "Acme"),
    );
    for s in &spans {
        assert!(s.class.starts_with("acme."), "{}", s.class);
        for k in s.attrs.keys().chain(s.resource.keys()) {
            assert!(!k.starts_with("vendor."), "{} carries {k}", s.name);
        }
    }
}

#[test]
fn predecessor_files_load_and_new_claim_phone_runs() {
    let v = Otelsim::new()
        .arg("validate")
        .compat()
        .env("VENDOR", "gentoro")
        .run_ok();
    assert!(
        v.contains("14 scenarios"),
        "13 files plus one registry-only scenario: {v}"
    );
    let dir = tempfile::tempdir().unwrap();
    let spans = run_to_file(
        dir.path(),
        "c.jsonl",
        Otelsim::new()
            .cli("scenario --name new_claim_phone")
            .compat()
            .seed(1)
            .start_time(T0)
            .env("VENDOR", "gentoro"),
    );
    let roots = spans
        .iter()
        .filter(|s| s.class == "gentoro.a2a.orchestrate")
        .count();
    assert_eq!(roots, 5, "repeat_count 5 from the predecessor's file");
    for s in &spans {
        assert!(s.class.starts_with("gentoro."));
        assert!(s.attrs.keys().all(|k| !k.starts_with("vendor.")));
    }
    // With the default VENDOR the predecessor's gentoro.* names are rewritten, not mixed.
    let spans = run_to_file(
        dir.path(),
        "d.jsonl",
        Otelsim::new()
            .compat()
            .cli("run --each-once")
            .start_time(T0),
    );
    for s in &spans {
        assert!(s.class.starts_with("vendor."), "{}", s.class);
        assert!(
            s.attrs
                .keys()
                .chain(s.resource.keys())
                .all(|k| !k.starts_with("gentoro.")),
            "{} mixes prefixes",
            s.name
        );
    }
}

#[test]
fn bench_reports_rate_cost_size_and_memory() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("bench.json");
    let out = Otelsim::new()
        .cli("bench --spans 20000")
        .seed(3)
        .report(&report)
        .run_ok();
    let r = read_json(&report);
    assert!(r["spans"].as_u64().unwrap() >= 20000);
    for k in [
        "spans_per_s",
        "cpu_us_per_span",
        "bytes_per_span",
        "peak_rss_mb",
    ] {
        assert!(r[k].as_f64().unwrap() > 0.0, "{k} in {r}");
    }
    assert!(out.contains("spans/s"), "{out}");
}

#[test]
fn bench_sends_all_signals_to_its_own_sink_and_costs_each_stage() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("bench.json");
    for protocol in ["http", "grpc"] {
        let out = Otelsim::new()
            .cli(&format!(
                "bench --spans 3000 --signals all --to sink --protocol {protocol}"
            ))
            .seed(3)
            .report(&report)
            .run_ok();
        let r = read_json(&report);
        let spans = r["spans"].as_u64().unwrap();
        assert!(spans >= 3000, "{r}");
        // Every span went to the sink and came back acknowledged.
        assert_eq!(r["spans_acked"].as_u64(), Some(spans), "{r}");
        assert!(r["log_records"].as_u64().unwrap() > 0, "{r}");
        assert!(r["metric_points"].as_u64().unwrap() > 0, "{r}");
        assert_eq!(r["protocol"], protocol, "{r}");
        for stage in ["generate", "derive", "encode", "send"] {
            assert!(
                r["stages_us_per_span"][stage].as_f64().unwrap() > 0.0,
                "{stage} in {r}"
            );
        }
        assert!(out.contains("by stage"), "{out}");
    }
}

#[test]
fn bench_traces_to_null_costs_no_derive_and_no_send() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("bench.json");
    Otelsim::new()
        .cli("bench --spans 2000")
        .seed(3)
        .report(&report)
        .run_ok();
    let r = read_json(&report);
    assert_eq!(r["signals"], "traces", "{r}");
    assert_eq!(r["to"], "null", "{r}");
    assert_eq!(r["spans_acked"].as_u64(), Some(0), "{r}");
    assert_eq!(r["log_records"].as_u64(), Some(0), "{r}");
    let stages = &r["stages_us_per_span"];
    assert_eq!(stages["derive"].as_f64(), Some(0.0), "{r}");
    assert_eq!(stages["send"].as_f64(), Some(0.0), "{r}");
    assert!(stages["encode"].as_f64().unwrap() > 0.0, "{r}");
}

/// `scripts/bench-load.sh compare` with one binary on both sides: every row is paired and
/// its ratios parse. (The figures themselves are the machine's: nothing is asserted on them
/// but that they are positive numbers.)
#[test]
fn bench_load_compare_pairs_every_row_and_prints_its_ratios() {
    let out = std::process::Command::new("bash")
        .arg(repo().join("scripts/bench-load.sh"))
        .args(["compare", BIN, BIN])
        .env("RUNS", "1")
        .env("COUNT", "30")
        .env("SPANS", "2000")
        .env("LIMIT", "60")
        .current_dir(repo())
        .output()
        .expect("bash runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for row in ["bench", "default-http", "traces-http", "traces-grpc"] {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{row} ")))
            .unwrap_or_else(|| panic!("no {row} row in {text}"));
        assert!(line.contains("pairs 1 "), "{line}");
        let ratios: Vec<&str> = line
            .split("ratio ")
            .skip(1)
            .map(|r| r.split_whitespace().next().unwrap())
            .collect();
        assert_eq!(ratios.len(), 3, "{line}");
        for (i, r) in ratios.iter().enumerate() {
            // A run this short can read 0.00 s of CPU (the clock counts in ticks),
            // which gives no CPU ratio; spans/s and RSS always have one.
            if i == 0 && *r == "n/a" {
                assert!(line.contains("CPU µs/span 0.00 → "), "{line}");
                continue;
            }
            let r: f64 = r.parse().unwrap_or_else(|_| panic!("ratio {r} in {line}"));
            assert!(r.is_finite() && r > 0.0, "{line}");
        }
    }
}

#[test]
fn output_otlp_json_writes_the_bytes_of_output_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let (legacy, before, after) = (file("a.jsonl"), file("b.jsonl"), file("c.jsonl"));
    let (before_spec, after_spec) = (format!("otlp-json:{before}"), format!("otlp-json:{after}"));
    let pick = ["run", "--count", "8", "--interval", "100"];
    let runs = [
        [&["--output-file", legacy.as_str()][..], &pick[..]].concat(),
        [&["--output", before_spec.as_str()][..], &pick[..]].concat(),
        [&pick[..], &["--output", after_spec.as_str()][..]].concat(),
    ];
    for args in runs {
        let all = [&["--seed", "9", "--start-time", T0][..], &args[..]].concat();
        let out = Otelsim::new().args(&all).run();
        assert!(out.status.success(), "{all:?}: {}", text(&out));
    }
    let bytes = |p: &str| std::fs::read(p).unwrap();
    assert!(!bytes(&legacy).is_empty());
    assert_eq!(
        bytes(&legacy),
        bytes(&before),
        "--output before the subcommand"
    );
    assert_eq!(
        bytes(&legacy),
        bytes(&after),
        "--output after the subcommand"
    );
    // `scenario` takes it too.
    let scenario = file("d.jsonl");
    let spec = format!("otlp-json:{scenario}");
    let args = [
        "--seed",
        "9",
        "--start-time",
        T0,
        "scenario",
        "--name",
        "new_claim_phone",
        "--count",
        "2",
        "--output",
        &spec,
    ];
    let out = Otelsim::new().args(args).run();
    assert!(out.status.success(), "{}", text(&out));
    assert!(!flatten(&read_output_file(Path::new(&scenario))).is_empty());
}

#[test]
fn output_flag_errors_name_the_flag_and_the_kinds() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("f.jsonl");
    let f = f.to_str().unwrap();
    let f_json = format!("otlp-json:{f}");
    let f_again = format!("otlp-json:{}/./f.jsonl", dir.path().display());
    let cases: [(Vec<&str>, &[&str]); 7] = [
        (
            vec!["--output", "carrier-pigeon"],
            &[
                "--output `carrier-pigeon`: unknown kind `carrier-pigeon`",
                "valid kinds: otlp (send to the endpoint), otlp-json:PATH",
            ],
        ),
        (
            vec!["--output", "otlp:traces.jsonl"],
            &[
                "--output `otlp:traces.jsonl`: otlp sends to the endpoint and takes no path",
                "valid kinds",
            ],
        ),
        (
            vec!["--output", "otlp-json"],
            &[
                "--output `otlp-json`: otlp-json needs a path",
                "valid kinds",
            ],
        ),
        (vec!["--output", "otlp-json:"], &["otlp-json needs a path"]),
        (
            vec!["--output", &f_json, "--output-file", f],
            &["and --output-file", "write the same file"],
        ),
        (
            vec!["--output", &f_json, "--output", &f_again],
            &["write the same file"],
        ),
        (
            vec!["--output", "otlp", "--output", "otlp"],
            &["--output otlp is given twice"],
        ),
    ];
    for (flags, wanted) in cases {
        let mut args = vec!["--seed", "1", "--start-time", T0];
        args.extend(&flags);
        args.extend(["run", "--count", "1"]);
        let out = Otelsim::new().args(&args).run();
        let t = text(&out);
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {t}");
        for w in wanted {
            assert!(t.contains(w), "{flags:?}: wanted `{w}` in {t}");
        }
    }
    assert!(!Path::new(f).exists(), "nothing ran");
}

#[test]
fn output_flag_is_refused_where_nothing_is_exported() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("run.json");
    let report = report.to_str().unwrap();
    for (args, what) in [
        (vec!["--output", "otlp", "list"], "`otelsim list`"),
        (
            vec!["--output", "otlp-json:x.jsonl", "validate"],
            "`otelsim validate`",
        ),
        (
            vec!["--output", "otlp", "bench", "--spans", "10"],
            "`otelsim bench`",
        ),
        (
            vec![
                "--output",
                "otlp",
                "verify",
                report,
                "--sink-report",
                report,
            ],
            "`otelsim verify`",
        ),
        (
            vec!["--output", "otlp", "sink", "--duration", "1s"],
            "`otelsim sink`",
        ),
    ] {
        let out = Otelsim::new().args(&args).run();
        let t = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {t}");
        assert!(
            t.contains(&format!("--output does nothing with {what}")),
            "{args:?}: {t}"
        );
    }
    // After a subcommand that exports nothing it is not a flag at all.
    let out = Otelsim::new().args(["list", "--output", "otlp"]).run();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--output"), "{}", text(&out));
}
