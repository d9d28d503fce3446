//! `otelsim report merge A.json B.json …`: the run reports of one run's shards
//! (or of several processes sharing a `--run-id`) as one run report, in the
//! very format `run --report` writes, so `otelsim verify` takes it as it is.
//!
//! Counts add up; the run's clock spans from the earliest start to the latest
//! end (shards that ended at different times included), so the merged rate is
//! what the shards delivered together over that window. A shard whose report
//! is not given is listed as missing, and `verify` fails on it.

use super::shard::ShardsReport;
use serde_json::{Map, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// One report to merge, as read: the path names it in every message.
pub struct Input {
    /// Where it was read from.
    pub path: PathBuf,
    /// The whole document: `report` and `settings`.
    pub doc: Value,
}

/// Reads a run report (`otelsim run --report`); the message names the file.
pub fn read(path: &Path) -> Result<Input, String> {
    let text = crate::input_file::read_text(path, crate::input_file::MAX_REPORT_BYTES)
        .map_err(|e| format!("cannot read the run report {}: {e}", path.display()))?;
    let doc: Value = crate::input_file::json_in_log(&text).map_err(|e| {
        format!(
            "{}:{}:{}: not a run report (from `otelsim run --report`): {e}",
            path.display(),
            e.line(),
            e.column()
        )
    })?;
    let ok = doc
        .get("report")
        .and_then(|r| r.get("run_id"))
        .is_some_and(Value::is_string);
    if !ok {
        return Err(format!(
            "{}: not a run report (from `otelsim run --report`): it has no `report.run_id`",
            path.display()
        ));
    }
    Ok(Input {
        path: path.to_path_buf(),
        doc,
    })
}

/// The merged document, and what a person should know about it (missing or
/// interrupted shards), one line each.
pub struct Merged {
    /// `{report, settings}`, as `run --report` writes it.
    pub doc: Value,
    /// Warnings for stderr.
    pub warnings: Vec<String>,
}

/// Merges reports of one run. Refused: reports of different runs (run id or
/// seed), shards of differently split runs, a shard given twice, and sharded
/// with unsharded reports.
pub fn merge(inputs: &[Input]) -> Result<Merged, String> {
    let Some(first) = inputs.first() else {
        return Err("no run report to merge".into());
    };
    let report = |i: &Input| i.doc["report"].clone();
    let run_id = first.doc["report"]["run_id"].clone();
    for i in &inputs[1..] {
        for key in ["run_id", "seed"] {
            if i.doc["report"][key] != first.doc["report"][key] {
                return Err(format!(
                    "{} and {} are reports of different runs: {key} {} and {}",
                    first.path.display(),
                    i.path.display(),
                    first.doc["report"][key],
                    i.doc["report"][key]
                ));
            }
        }
    }
    let shards = merge_shards(inputs)?;
    let reports: Vec<Value> = inputs.iter().map(report).collect();
    let mut r = Map::new();
    r.insert("run_id".into(), run_id.clone());
    r.insert("seed".into(), first.doc["report"]["seed"].clone());
    r.insert("workers".into(), sum_of(&reports, "workers"));
    r.insert("timing".into(), first.doc["report"]["timing"].clone());
    r.insert("elapsed_s".into(), max_of(&reports, "elapsed_s"));
    // The window from the earliest start to the latest end; reports without
    // clock times (older otelsim) fall back to the longest clock.
    let start = reports
        .iter()
        .filter_map(|r| r["clock_start_ns"].as_u64())
        .min();
    let end = reports
        .iter()
        .filter_map(|r| r["clock_end_ns"].as_u64())
        .max();
    let longest = max_of(&reports, "clock_s").as_f64().unwrap_or(0.0);
    let clock_s = match (start, end) {
        (Some(s), Some(e)) if e > s => ((e - s) as f64 / 1e9).max(longest),
        _ => longest,
    }
    .max(1e-9);
    r.insert("clock_s".into(), clock_s.into());
    r.insert(
        "interrupted".into(),
        reports.iter().any(|r| r["interrupted"] == true).into(),
    );
    r.insert(
        "fatal".into(),
        reports
            .iter()
            .map(|r| r["fatal"].clone())
            .find(|f| !f.is_null())
            .unwrap_or(Value::Null),
    );
    r.insert("scenarios".into(), add_all(&reports, "scenarios"));
    let export = add_all(&reports, "export");
    let spans = export["spans"]["generated"].as_f64().unwrap_or(0.0);
    r.insert("achieved_spans_per_s".into(), (spans / clock_s).into());
    r.insert("pacing".into(), pacing(&reports, clock_s));
    r.insert("export".into(), export);
    r.insert("outputs".into(), outputs(&reports));
    let acked = acked_traces(&reports);
    if let Some(a) = acked {
        r.insert("acked_traces".into(), a);
    }
    r.insert(
        "acked_traces_unlisted".into(),
        sum_of(&reports, "acked_traces_unlisted"),
    );
    for key in ["sdk", "workload_schedule"] {
        let v = add_all(&reports, key);
        if !v.is_null() {
            r.insert(key.into(), v);
        }
    }
    let mut warnings = Vec::new();
    if let Some(sh) = &shards {
        for m in &sh.missing {
            warnings.push(format!(
                "shard {m} of {} is missing: no report of it was given (the shard died, or its report was not collected); `otelsim verify` fails the merged report",
                sh.count
            ));
        }
        for i in &sh.interrupted {
            warnings.push(format!(
                "shard {i} of {} stopped early (interrupted, or stopped by an export failure)",
                sh.count
            ));
        }
        r.insert(
            "shards".into(),
            serde_json::to_value(sh).unwrap_or(Value::Null),
        );
    }
    r.insert("clock_start_ns".into(), start.unwrap_or(0).into());
    r.insert("clock_end_ns".into(), end.unwrap_or(0).into());
    let mut settings = first.doc["settings"].clone();
    if let (Some(s), Some(sh)) = (settings.as_object_mut(), &shards) {
        s.insert("shards".into(), sh.count.into());
    }
    Ok(Merged {
        doc: serde_json::json!({"report": Value::Object(r), "settings": settings}),
        warnings,
    })
}

/// Which shards the reports cover together; `None` when none is a shard's.
fn merge_shards(inputs: &[Input]) -> Result<Option<ShardsReport>, String> {
    let parsed: Vec<Option<ShardsReport>> = inputs
        .iter()
        .map(|i| {
            let v = &i.doc["report"]["shards"];
            if v.is_null() {
                return Ok(None);
            }
            serde_json::from_value(v.clone()).map(Some).map_err(|e| {
                format!(
                    "{}: `report.shards` is not what otelsim writes: {e}",
                    i.path.display()
                )
            })
        })
        .collect::<Result<_, String>>()?;
    let Some(first) = parsed.iter().position(Option::is_some) else {
        return Ok(None);
    };
    let count = parsed[first].as_ref().map_or(1, |s| s.count);
    let mut included: BTreeSet<u32> = BTreeSet::new();
    let mut interrupted: BTreeSet<u32> = BTreeSet::new();
    let mut owner: Vec<(u32, &Path)> = Vec::new();
    for (i, s) in inputs.iter().zip(&parsed) {
        let Some(s) = s else {
            return Err(format!(
                "{} is the report of a whole run, {} the report of a shard: merge the reports of one sharded run (--shard), or of whole runs sharing a --run-id",
                i.path.display(),
                inputs[first].path.display()
            ));
        };
        if s.count != count {
            return Err(format!(
                "{} is a report of a run split into {} shards, {} of one split into {count}",
                i.path.display(),
                s.count,
                inputs[first].path.display()
            ));
        }
        for &x in &s.included {
            if let Some((_, other)) = owner.iter().find(|(y, _)| *y == x) {
                return Err(format!(
                    "shard {x} of {count} is in both {} and {}: give each shard's report once",
                    other.display(),
                    i.path.display()
                ));
            }
            owner.push((x, &i.path));
            included.insert(x);
        }
        interrupted.extend(s.interrupted.iter().copied());
    }
    Ok(Some(ShardsReport {
        count,
        included: included.iter().copied().collect(),
        missing: (0..count).filter(|i| !included.contains(i)).collect(),
        interrupted: interrupted.into_iter().collect(),
    }))
}

/// Numbers add up, objects key by key, arrays of the same length item by item;
/// anything else keeps the first value that is not null.
fn add(a: &Value, b: &Value) -> Value {
    match (a, b) {
        (Value::Null, b) => b.clone(),
        (a, Value::Null) => a.clone(),
        (Value::Number(x), Value::Number(y)) => match (x.as_u64(), y.as_u64()) {
            (Some(x), Some(y)) => x.saturating_add(y).into(),
            _ => (x.as_f64().unwrap_or(0.0) + y.as_f64().unwrap_or(0.0)).into(),
        },
        (Value::Object(x), Value::Object(y)) => {
            let mut out = x.clone();
            for (k, v) in y {
                let merged = add(out.get(k).unwrap_or(&Value::Null), v);
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            Value::Array(x.iter().zip(y).map(|(a, b)| add(a, b)).collect())
        }
        (a, _) => a.clone(),
    }
}

fn add_all(reports: &[Value], key: &str) -> Value {
    reports
        .iter()
        .fold(Value::Null, |acc, r| add(&acc, &r[key]))
}

fn sum_of(reports: &[Value], key: &str) -> Value {
    let v = add_all(reports, key);
    if v.is_null() {
        0.into()
    } else {
        v
    }
}

fn max_of(reports: &[Value], key: &str) -> Value {
    reports
        .iter()
        .filter_map(|r| r[key].as_f64())
        .fold(0.0, f64::max)
        .into()
}

/// The shards' schedules together: units add up; each shard's target rate is
/// its share of the shape, so the target rates add up too; the achieved rate is
/// every unit sent over the merged window; lags are the worst shard's.
fn pacing(reports: &[Value], clock_s: f64) -> Value {
    let paced: Vec<&Value> = reports
        .iter()
        .map(|r| &r["pacing"])
        .filter(|p| !p.is_null())
        .collect();
    let Some(first) = paced.first() else {
        return Value::Null;
    };
    let sum = |k: &str| paced.iter().fold(Value::Null, |acc, p| add(&acc, &p[k]));
    let max = |k: &str| -> Value {
        paced
            .iter()
            .filter_map(|p| p[k].as_f64())
            .fold(0.0, f64::max)
            .into()
    };
    let achieved = sum("achieved_units").as_f64().unwrap_or(0.0);
    // Traces sent, from each shard's rate over its own clock.
    let traces: f64 = reports
        .iter()
        .filter_map(|r| {
            Some(r["pacing"]["achieved_traces_per_s"].as_f64()? * r["clock_s"].as_f64()?)
        })
        .sum();
    serde_json::json!({
        "unit": first["unit"],
        "target_units": sum("target_units"),
        "achieved_units": sum("achieved_units"),
        "target_per_s": sum("target_per_s"),
        "achieved_per_s": achieved / clock_s,
        "achieved_traces_per_s": traces / clock_s,
        "lag_p50_ms": max("lag_p50_ms"),
        "lag_p99_ms": max("lag_p99_ms"),
        "lag_max_ms": max("lag_max_ms"),
        "late_picks": sum("late_picks"),
        "picks": sum("picks"),
    })
}

/// Each output's counters added up across the reports, by its label.
fn outputs(reports: &[Value]) -> Value {
    let mut out: Vec<Value> = Vec::new();
    for o in reports
        .iter()
        .filter_map(|r| r["outputs"].as_array())
        .flatten()
    {
        match out.iter_mut().find(|x| x["output"] == o["output"]) {
            Some(x) => *x = add(x, o),
            None => out.push(o.clone()),
        }
    }
    Value::Array(out)
}

/// Every acknowledged trace of every report (a trace in several, spans added);
/// `None` when a report lists none (written without its list, as with `--engine sdk`).
fn acked_traces(reports: &[Value]) -> Option<Value> {
    let mut all = Map::new();
    for r in reports {
        let list = r["acked_traces"].as_object()?;
        for (id, n) in list {
            let merged = add(all.get(id).unwrap_or(&Value::Null), n);
            all.insert(id.clone(), merged);
        }
    }
    Some(Value::Object(all))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn shard(path: &str, index: u32, count: u32, extra: Value) -> Input {
        let mut report = json!({
            "run_id": "r1", "seed": 7, "workers": 1, "timing": "back-dated",
            "elapsed_s": 10.0 + f64::from(index), "clock_s": 10.0, "interrupted": false,
            "fatal": null,
            "scenarios": {"a": {"requests": 2, "traces": 3, "spans": 10, "error_spans": 0, "log_records": 4}},
            "export": {"spans": {"generated": 10, "acked": 10, "failed": 0}, "first_error": null},
            "outputs": [{"output": "otlp grpc x", "receiver": true, "spans": {"acked": 10}}],
            "acked_traces": {format!("{index:032x}"): 10},
            "acked_traces_unlisted": 0,
            "pacing": {"unit": "traces", "target_units": 100.0, "achieved_units": 100,
                       "target_per_s": 10.0, "achieved_per_s": 10.0, "achieved_traces_per_s": 10.0,
                       "lag_p50_ms": 1.0, "lag_p99_ms": 2.0 + f64::from(index), "lag_max_ms": 3.0,
                       "late_picks": 0, "picks": 50},
            "shards": ShardsReport::of(super::super::shard::Shard { index, count }, false),
            "clock_start_ns": 1_000_000_000u64, "clock_end_ns": 11_000_000_000u64,
        });
        if let (Some(r), Some(e)) = (report.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                r.insert(k.clone(), v.clone());
            }
        }
        Input {
            path: PathBuf::from(path),
            doc: json!({"report": report, "settings": {"vendor": "vendor"}}),
        }
    }

    #[test]
    fn shards_add_up_over_the_merged_window() {
        let m = merge(&[
            shard("s0.json", 0, 3, json!({})),
            shard("s1.json", 1, 3, json!({})),
            // Ended 1 s later: the merged clock spans 11 s.
            shard("s2.json", 2, 3, json!({"clock_end_ns": 12_000_000_000u64})),
        ])
        .unwrap();
        let r = &m.doc["report"];
        assert!(m.warnings.is_empty(), "{:?}", m.warnings);
        assert_eq!(r["shards"]["included"], json!([0, 1, 2]));
        assert_eq!(r["shards"]["missing"], json!([]));
        assert_eq!(r["export"]["spans"]["acked"], 30);
        assert_eq!(r["scenarios"]["a"]["traces"], 9);
        assert_eq!(r["outputs"][0]["spans"]["acked"], 30);
        assert_eq!(r["acked_traces"].as_object().unwrap().len(), 3);
        assert_eq!(r["clock_s"], 11.0);
        assert_eq!(r["pacing"]["achieved_units"], 300);
        assert_eq!(r["pacing"]["target_per_s"], 30.0);
        assert!((r["pacing"]["achieved_per_s"].as_f64().unwrap() - 300.0 / 11.0).abs() < 1e-9);
        assert_eq!(r["pacing"]["lag_p99_ms"], 4.0);
        assert_eq!(r["elapsed_s"], 12.0);
        assert_eq!(m.doc["settings"]["shards"], 3);
    }

    #[test]
    fn a_report_is_found_in_a_pod_log() {
        let log = "otelsim: warning: something\n{\n  \"report\": {\"run_id\": \"r\"}\n}\notelsim: shortfall 2.00%\n";
        let v: Value = crate::input_file::json_in_log(log).unwrap();
        assert_eq!(v["report"]["run_id"], "r");
        let v: Value = crate::input_file::json_in_log("{\"a\": 1}").unwrap();
        assert_eq!(v["a"], 1);
        assert!(crate::input_file::json_in_log::<Value>("no json here").is_err());
    }

    #[test]
    fn a_missing_shard_is_named() {
        let m = merge(&[
            shard("s0.json", 0, 3, json!({})),
            shard("s2.json", 2, 3, json!({})),
        ])
        .unwrap();
        assert_eq!(m.doc["report"]["shards"]["missing"], json!([1]));
        assert!(
            m.warnings[0].starts_with("shard 1 of 3 is missing"),
            "{:?}",
            m.warnings
        );
    }

    #[test]
    fn reports_that_do_not_belong_together_are_refused() {
        let e = merge(&[
            shard("a.json", 0, 3, json!({})),
            shard("b.json", 0, 3, json!({})),
        ])
        .err()
        .unwrap();
        assert!(
            e.contains("shard 0 of 3 is in both a.json and b.json"),
            "{e}"
        );
        let e = merge(&[
            shard("a.json", 0, 3, json!({})),
            shard("b.json", 1, 2, json!({})),
        ])
        .err()
        .unwrap();
        assert!(e.contains("split into 2 shards"), "{e}");
        let e = merge(&[
            shard("a.json", 0, 3, json!({})),
            shard("b.json", 1, 3, json!({"run_id": "other"})),
        ])
        .err()
        .unwrap();
        assert!(
            e.contains("different runs: run_id \"r1\" and \"other\""),
            "{e}"
        );
        let e = merge(&[
            shard("a.json", 0, 3, json!({})),
            shard("b.json", 1, 3, json!({"shards": null})),
        ])
        .err()
        .unwrap();
        assert!(e.contains("b.json is the report of a whole run"), "{e}");
    }
}
