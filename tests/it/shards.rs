//! Sharded runs (`run --shard I/N`, or `OTELSIM_SHARDS` with an Indexed Job's
//! `JOB_COMPLETION_INDEX`): the shards' outputs together are the single run's,
//! their reports merge into one that `otelsim verify` checks against one real
//! `otelsim sink` process, and a shard that dies fails the verdict by name.

use crate::support::*;
use std::path::{Path, PathBuf};
use std::time::Duration;

const SEED: u64 = 41;
const START: &str = "2026-02-01T00:00:00Z";

/// One span as text: every field, or every field but its place in time (the
/// duration stays), sorted attributes included.
fn key(s: &Flat, with_times: bool) -> String {
    let mut attrs: Vec<_> = s.attrs.iter().collect();
    attrs.sort();
    let mut res: Vec<_> = s.resource.iter().collect();
    res.sort();
    let when = if with_times {
        format!("{}-{}", s.start, s.end)
    } else {
        format!("{}", s.end - s.start)
    };
    format!(
        "{} {} {} {} {} {when} {:?} {:?} {:?} {}",
        s.trace_id, s.span_id, s.parent, s.name, s.status, attrs, s.events, res, s.scope
    )
}

fn sorted_keys(files: &[PathBuf], with_times: bool) -> Vec<String> {
    let mut keys: Vec<String> = files
        .iter()
        .flat_map(|f| spans_in(f))
        .map(|s| key(&s, with_times))
        .collect();
    keys.sort();
    keys
}

/// `run ARGS` on the virtual clock into a file, as shard `shard` (`None`: whole).
fn run_to_file(args: &str, shard: Option<(u32, u32)>, out: &Path) {
    let mut o = Otelsim::new()
        .cli(args)
        .seed(SEED)
        .start_time(START)
        .output_file(out);
    if let Some((i, n)) = shard {
        o = o.arg("--shard").arg(format!("{i}/{n}"));
    }
    o.arg("-q").run_ok();
}

#[test]
fn the_union_of_n_shards_is_the_single_run_trace_for_trace() {
    let dir = tempfile::tempdir().unwrap();
    // Interval mode: every pick keeps its time too, so the union is exact.
    let args = "run --count 60 --interval 250";
    let whole = dir.path().join("whole.jsonl");
    run_to_file(args, None, &whole);
    let expected = sorted_keys(&[whole], true);
    assert!(
        expected.len() > 200,
        "a run of some size: {}",
        expected.len()
    );
    for n in [1u32, 2, 3, 7] {
        let files: Vec<PathBuf> = (0..n)
            .map(|i| {
                let f = dir.path().join(format!("n{n}-s{i}.jsonl"));
                run_to_file(args, Some((i, n)), &f);
                f
            })
            .collect();
        let got = sorted_keys(&files, true);
        assert_eq!(got.len(), expected.len(), "{n} shards: span count");
        assert!(
            got == expected,
            "{n} shards: the union differs from the single run"
        );
        // And no trace is made by two shards.
        let mut traces: Vec<String> = Vec::new();
        for f in &files {
            let mut t: Vec<String> = by_trace(&spans_in(f)).into_keys().collect();
            traces.append(&mut t);
        }
        let all = traces.len();
        traces.sort();
        traces.dedup();
        assert_eq!(traces.len(), all, "{n} shards: a trace made twice");
    }
}

#[test]
fn with_a_rate_each_shard_paces_its_share_and_makes_the_same_traces() {
    let dir = tempfile::tempdir().unwrap();
    // A rate places each pick on its shard's own schedule: the same traces, moved in time.
    let args = "run --count 40 --rate 20";
    let whole = dir.path().join("whole.jsonl");
    run_to_file(args, None, &whole);
    let files: Vec<PathBuf> = (0..3)
        .map(|i| {
            let f = dir.path().join(format!("s{i}.jsonl"));
            let report = dir.path().join(format!("s{i}.json"));
            Otelsim::new()
                .cli(args)
                .seed(SEED)
                .start_time(START)
                .output_file(&f)
                .report(&report)
                .arg("--shard")
                .arg(format!("{i}/3"))
                .run_ok();
            let r = read_json(&report);
            let target = r["report"]["pacing"]["target_per_s"].as_f64().unwrap();
            assert!(
                (target - 20.0 / 3.0).abs() < 1e-9,
                "shard {i}: target {target}"
            );
            f
        })
        .collect();
    assert!(sorted_keys(&files, false) == sorted_keys(&[whole], false));
}

/// `otelsim sink` as its own process on free loopback ports, writing its
/// summary to `summary` (`/dev/stdout`: after its printed summary, as the sink
/// Deployment of deploy/kubernetes does).
fn sink_process(summary: &Path) -> (Running, u16) {
    let (grpc, http) = (free_port(), free_port());
    let sink = Otelsim::new()
        .arg("sink")
        .arg("--grpc-addr")
        .arg(format!("127.0.0.1:{grpc}"))
        .arg("--http-addr")
        .arg(format!("127.0.0.1:{http}"))
        .arg("--summary-file")
        .arg(summary)
        .arg("--duration")
        .arg("170s")
        .limit(Duration::from_secs(180))
        .spawn();
    wait_port(grpc, Duration::from_secs(30));
    (sink, grpc)
}

/// Shard `i` of 3 started as the Indexed Job starts it: the same arguments in
/// every pod, the index and count in the environment, the report on stdout (the
/// pod's log, which the test keeps as `shard-I.json` once the pod has ended).
fn job_pod(i: u32, args: &str, grpc: u16) -> Running {
    Otelsim::new()
        .cli(args)
        .endpoint(format!("http://127.0.0.1:{grpc}"))
        .cli("--report /dev/stdout -q")
        .env("JOB_COMPLETION_INDEX", i.to_string())
        .env("OTELSIM_SHARDS", "3")
        .spawn()
}

/// Waits for a pod to end and keeps its log as its report; gives its exit code.
fn pod_log(pod: Running, report: &Path) -> Option<i32> {
    let o = pod.wait();
    assert!(o.stderr.is_empty(), "{}", text(&o));
    std::fs::write(report, &o.stdout).unwrap();
    o.status.code()
}

fn merge(reports: &[PathBuf], out: &Path) -> String {
    let o = Otelsim::new()
        .arg("report")
        .arg("merge")
        .args(reports)
        .run();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    std::fs::write(out, &o.stdout).unwrap();
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn verify(run: &Path, sink: &Path) -> Otelsim {
    Otelsim::new()
        .arg("verify")
        .arg(run)
        .arg("--sink-report")
        .arg(sink)
}

#[test]
fn three_job_shards_into_one_sink_verify_and_add_up_to_three_times_one() {
    let dir = tempfile::tempdir().unwrap();
    // The sink's summary is its log, as the sink Deployment writes it.
    let (mut sink, grpc) = sink_process(Path::new("/dev/stdout"));
    // 180 traces/s for the run: 60 per shard, 2,400 per shard in 40 s (long enough that the
    // shards' start skew, a fraction of a second on a busy machine, stays well under 1 %).
    let args = "run --seed 11 --rate 180 --duration 40s";
    let reports: Vec<PathBuf> = (0..3)
        .map(|i| dir.path().join(format!("shard-{i}.json")))
        .collect();
    let pods: Vec<Running> = (0..3).map(|i| job_pod(i, args, grpc)).collect();
    for (i, p) in pods.into_iter().enumerate() {
        assert_eq!(pod_log(p, &reports[i]), Some(0), "shard {i}");
    }
    let summary = dir.path().join("sink.log");
    sink.signal("TERM");
    let o = sink.wait();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    std::fs::write(&summary, &o.stdout).unwrap();
    let merged = dir.path().join("run.json");
    let said = merge(&reports, &merged);
    assert!(said.contains("3 of 3 shards"), "{said}");
    let t = verify(&merged, &summary).run_ok();
    assert!(
        t.contains("\nVERIFIED: everything acknowledged arrived once"),
        "{t}"
    );
    assert!(
        t.contains("shards:        3 of 3 merged · missing: none · stopped early: none"),
        "{t}"
    );

    let m = read_json(&merged);
    let shards: Vec<serde_json::Value> = reports.iter().map(|r| read_json(r)).collect();
    let id = &m["report"]["run_id"];
    for s in &shards {
        assert_eq!(
            &s["report"]["run_id"], id,
            "every shard derives the same run id"
        );
    }
    let rate = |r: &serde_json::Value| r["report"]["pacing"]["achieved_per_s"].as_f64().unwrap();
    let per_shard: Vec<f64> = shards.iter().map(rate).collect();
    for (i, r) in per_shard.iter().enumerate() {
        assert!(
            (r / 60.0 - 1.0).abs() < 0.01,
            "shard {i} achieved {r}/s, its share is 60/s"
        );
    }
    let mean = per_shard.iter().sum::<f64>() / 3.0;
    let aggregate = rate(&m);
    let starts: Vec<u64> = shards
        .iter()
        .map(|s| s["report"]["clock_start_ns"].as_u64().unwrap())
        .collect();
    let skew_ms = (starts.iter().max().unwrap() - starts.iter().min().unwrap()) as f64 / 1e6;
    // The merged rate is every unit over the merged window, which the shards'
    // start skew widens (508 ms of 40 s on a loaded CI machine): 3 × the
    // per-shard rate over the shards' own clocks, spread over that window.
    let clock = |r: &serde_json::Value| r["report"]["clock_s"].as_f64().unwrap();
    let shard_clock = shards.iter().map(clock).sum::<f64>() / 3.0;
    let expected = 3.0 * mean * shard_clock / clock(&m);
    assert!(
        (aggregate / expected - 1.0).abs() < 0.01 && skew_ms < 5_000.0,
        "aggregate {aggregate}/s against 3 × {mean}/s per shard over {shard_clock:.2} s \
         of a {:.2} s window (start skew {skew_ms:.0} ms)",
        clock(&m)
    );
    let acked: u64 = shards
        .iter()
        .map(|s| s["report"]["export"]["spans"]["acked"].as_u64().unwrap())
        .sum();
    assert_eq!(
        m["report"]["export"]["spans"]["acked"].as_u64(),
        Some(acked)
    );
    assert_eq!(m["report"]["shards"]["missing"], serde_json::json!([]));
}

#[test]
fn a_shard_killed_or_stopped_mid_run_fails_verify_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("sink.json");
    let (mut sink, grpc) = sink_process(&summary);
    let args = "run --seed 12 --rate 90 --duration 8s";
    let reports: Vec<PathBuf> = (0..3)
        .map(|i| dir.path().join(format!("shard-{i}.json")))
        .collect();
    let mut pods: Vec<Running> = (0..3).map(|i| job_pod(i, args, grpc)).collect();
    // Shard 1 dies (SIGKILL, as an evicted pod does) once it has sent something.
    std::thread::sleep(Duration::from_secs(3));
    pods[1].signal("KILL");
    // Shard 2 is stopped (SIGTERM, as a deleted pod is): it flushes and reports. A second
    // later, so that even on a busy machine it is running (its handler installed) by then.
    std::thread::sleep(Duration::from_secs(1));
    pods[2].signal("TERM");
    let codes: Vec<Option<i32>> = pods
        .into_iter()
        .enumerate()
        .map(|(i, p)| pod_log(p, &reports[i]))
        .collect();
    assert_eq!(codes[0], Some(0));
    assert_eq!(codes[2], Some(130), "interrupted");
    // A killed shard's log holds no report.
    let t = Otelsim::new()
        .arg("report")
        .arg("merge")
        .args(&reports)
        .run_exit(2);
    assert!(t.contains("shard-1.json"), "{t}");
    sink.signal("TERM");
    sink.wait();
    let merged = dir.path().join("run.json");
    let said = merge(&[reports[0].clone(), reports[2].clone()], &merged);
    assert!(said.contains("shard 1 of 3 is missing"), "{said}");
    assert!(said.contains("shard 2 of 3 stopped early"), "{said}");
    assert_eq!(
        read_json(&merged)["report"]["shards"]["missing"],
        serde_json::json!([1])
    );
    let t = verify(&merged, &summary).run_exit(5);
    assert!(t.contains("missing_shard: 1"), "{t}");
    assert!(
        t.contains("shards:        2 of 3 merged · missing: 1 · stopped early: 2"),
        "{t}"
    );
    assert!(
        t.contains("shard 1 of 3: no report of it was merged"),
        "{t}"
    );
    assert!(t.contains("interrupted_shard: 1"), "{t}");
    assert!(t.contains("shard 2 of 3 stopped before its end"), "{t}");
    assert!(t.contains("NOT VERIFIED"), "{t}");
}

#[test]
fn shard_settings_and_reports_that_do_not_fit_are_refused() {
    let t = Otelsim::new()
        .cli("run --count 3 --interval 0 --shard 0/2")
        .run_exit(2);
    assert!(t.contains("--shard needs --seed"), "{t}");
    let t = Otelsim::new()
        .cli("run --seed 1 --count 3 --interval 0 --shard 2/2")
        .run_exit(2);
    assert!(
        t.contains("--shard `2/2`: the index 2 must be below the count 2 (0 to 1)"),
        "{t}"
    );
    let t = Otelsim::new()
        .cli("run --seed 1 --count 3 --interval 0")
        .env("OTELSIM_SHARDS", "4")
        .run_exit(2);
    assert!(
        t.contains("OTELSIM_SHARDS=4 needs JOB_COMPLETION_INDEX"),
        "{t}"
    );
    let t = Otelsim::new()
        .cli("run --seed 1 --count 3 --interval 0")
        .env("OTELSIM_SHARDS", "2")
        .env("JOB_COMPLETION_INDEX", "two")
        .run_exit(2);
    assert!(
        t.contains("JOB_COMPLETION_INDEX=two: expected the shard's index"),
        "{t}"
    );

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"report\": {}}").unwrap();
    let t = Otelsim::new()
        .arg("report")
        .arg("merge")
        .arg(&bad)
        .run_exit(2);
    assert!(t.contains("bad.json: not a run report"), "{t}");
    assert!(t.contains("report.run_id"), "{t}");
    std::fs::write(&bad, "{\"report\": ").unwrap();
    let t = Otelsim::new()
        .arg("report")
        .arg("merge")
        .arg(&bad)
        .run_exit(2);
    assert!(t.contains("bad.json:1:"), "{t}");
}
