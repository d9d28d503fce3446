//! One bad scenario file never blocks the others: `list`, `run` and `scenario`
//! skip a file with errors (reported once, with a count) and carry on with the
//! rest; naming a skipped scenario says why it was skipped; an unknown key in a
//! scenario file is a warning, which `validate --strict` makes an error.

use crate::support::*;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;
use std::process::Output;

const T0: &str = "2026-01-01T00:00:00Z";

fn good(description: &str) -> String {
    format!("description: {description}\ntags: [good]\nroot:\n  type: vendor.a2a.orchestrate\n  latency: 50\n  children:\n    - type: vendor.planner\n      latency: 5\n")
}

/// Only an unknown key (from a newer tool) beside a good tree.
const EXTRA_KEY: &str = "root:\n  type: vendor.a2a.orchestrate\n  latency: 50\nnewer_feature: 3\n";
const SYNTAX_ERROR: &str = "root:\n  type: [unclosed\n";
const UNKNOWN_TENANT: &str = "context:\n  tenant: nobody\nroot:\n  type: vendor.planner\n";

/// The scenarios of [`mixed_dir`] that load.
const LOADABLE: [&str; 4] = ["extra_key", "good_one", "good_three", "good_two"];

/// Three good files, one with only an unknown key, two broken ones.
fn mixed_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    write(p, "good_one.yaml", &good("first"));
    write(p, "good_two.yaml", &good("second"));
    std::fs::create_dir(p.join("nested")).unwrap();
    write(&p.join("nested"), "good_three.yaml", &good("third"));
    write(p, "extra_key.yaml", EXTRA_KEY);
    write(p, "broken_syntax.yaml", SYNTAX_ERROR);
    write(p, "unknown_tenant.yaml", UNKNOWN_TENANT);
    dir
}

fn write(dir: &Path, name: &str, body: &str) {
    std::fs::write(dir.join(name), body).unwrap();
}

/// otelsim with `--scenarios-dir dir` in front of `line`.
fn otelsim_in(dir: &Path, line: &str) -> Otelsim {
    Otelsim::new().arg("--scenarios-dir").arg(dir).cli(line)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The lines of `text` that contain `what`.
fn lines_with<'a>(text: &'a str, what: &str) -> Vec<&'a str> {
    text.lines().filter(|l| l.contains(what)).collect()
}

const SYNTAX_LINE: &str = "broken_syntax.yaml:3:1: error: YAML syntax error";
const TENANT_LINE: &str =
    "unknown_tenant.yaml:2:11: error: key `context.tenant`: unknown tenants key `nobody`; defined in config.yaml: acme";
const EXTRA_LINE: &str = "extra_key.yaml:4:1: warning: key `newer_feature`: unknown key";
const SUMMARY: &str =
    "otelsim: skipped 2 of 6 scenario files with errors (`otelsim validate` lists every problem)";

/// The skip report of [`mixed_dir`]: each broken file once, at its line and column,
/// then the count.
fn assert_skip_report(err: &str) {
    for (file, line) in [
        ("broken_syntax.yaml", SYNTAX_LINE),
        ("unknown_tenant.yaml", TENANT_LINE),
    ] {
        let about = lines_with(err, file);
        assert_eq!(about.len(), 1, "{file} reported once:\n{err}");
        assert!(about[0].contains(line), "`{line}` expected:\n{err}");
    }
    assert_eq!(lines_with(err, SUMMARY).len(), 1, "{err}");
}

#[test]
fn list_skips_broken_files_and_lists_the_rest() {
    let dir = mixed_dir();
    let out = otelsim_in(dir.path(), "list").run();
    let (err, table) = (stderr(&out), stdout(&out));
    assert_eq!(out.status.code(), Some(0), "{table}{err}");
    let listed: BTreeSet<&str> = table
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(listed, BTreeSet::from(LOADABLE), "{table}");
    assert_skip_report(&err);
    // The unknown key is a warning, once, with the keys that would be valid.
    let extra = lines_with(&err, "extra_key.yaml");
    assert_eq!(extra.len(), 1, "{err}");
    assert!(
        extra[0].contains(EXTRA_LINE) && extra[0].contains("valid keys here: "),
        "{err}"
    );
    assert!(err.contains("4 scenarios"), "{err}");

    // -q: the skip report stays (errors are always printed), the warning goes.
    let out = otelsim_in(dir.path(), "list -q").run();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_skip_report(&err);
    assert!(!err.contains("extra_key.yaml"), "{err}");
}

/// Requests (sessions) per scenario in an output file, by instrumentation scope.
fn sessions_by_scenario(path: &Path) -> BTreeMap<String, usize> {
    let mut sessions: BTreeMap<String, HashSet<String>> = BTreeMap::new();
    for s in spans_in(path) {
        let name = s.scope.trim_start_matches("otelsim.").to_string();
        sessions
            .entry(name)
            .or_default()
            .insert(s.attrs["vendor.session.id"].clone());
    }
    sessions.into_iter().map(|(k, v)| (k, v.len())).collect()
}

#[test]
fn run_each_once_runs_exactly_the_scenarios_that_loaded() {
    let dir = mixed_dir();
    let file = dir.path().join("out.jsonl");
    let out = otelsim_in(dir.path(), "run --each-once --interval 0")
        .seed(1)
        .start_time(T0)
        .arg("--output")
        .arg(format!("otlp-json:{}", file.display()))
        .run();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{}{err}", stdout(&out));
    assert_skip_report(&err);
    let got = sessions_by_scenario(&file);
    let want: BTreeMap<String, usize> = LOADABLE.iter().map(|n| (n.to_string(), 1)).collect();
    assert_eq!(got, want);
}

#[test]
fn naming_a_skipped_scenario_says_why_it_was_skipped() {
    let dir = mixed_dir();
    for (name, why) in [
        ("unknown_tenant", TENANT_LINE),
        ("broken_syntax", SYNTAX_LINE),
    ] {
        let t = otelsim_in(dir.path(), &format!("scenario --name {name}"))
            .output_file(dir.path().join("o.jsonl"))
            .run_exit(2);
        let said = format!(
            "otelsim: scenario `{name}` was skipped because its file has errors; the first: "
        );
        let l = lines_with(&t, &said);
        assert_eq!(l.len(), 1, "{t}");
        assert!(l[0].contains(why), "{t}");
        assert!(!t.contains("unknown scenario"), "{t}");
        // `list NAME` names it the same way.
        let t = otelsim_in(dir.path(), &format!("list {name}")).run_exit(2);
        assert!(t.contains(&said) && t.contains(why), "{t}");
    }
    // A good scenario beside them runs by name.
    let file = dir.path().join("one.jsonl");
    otelsim_in(dir.path(), "scenario --name good_two --count 2")
        .seed(1)
        .start_time(T0)
        .output_file(&file)
        .run_ok();
    assert_eq!(
        sessions_by_scenario(&file),
        BTreeMap::from([("good_two".to_string(), 2)])
    );
}

#[test]
fn validate_lists_every_problem_and_strict_makes_unknown_keys_errors() {
    let dir = mixed_dir();
    let out = otelsim_in(dir.path(), "validate").run();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    for line in [SYNTAX_LINE, TENANT_LINE, EXTRA_LINE] {
        assert_eq!(lines_with(&t, line).len(), 1, "`{line}` once:\n{t}");
    }
    assert!(
        t.contains("2 errors (`run`, `list` and `scenario` skip 2 scenario files with errors and load the rest)"),
        "{t}"
    );

    // Only the unknown key: a warning, and the file is fine.
    let only = tempfile::tempdir().unwrap();
    write(only.path(), "extra_key.yaml", EXTRA_KEY);
    let t = otelsim_in(only.path(), "validate").run_ok();
    assert_eq!(lines_with(&t, EXTRA_LINE).len(), 1, "{t}");
    // Its warning is counted (with the coverage check's, which this one-file set also gets).
    assert!(t.contains("ok: ") && t.contains("2 warnings"), "{t}");
    // --strict: the same key is an error.
    let t = otelsim_in(only.path(), "validate --strict").run_exit(2);
    let strict = "extra_key.yaml:4:1: error: key `newer_feature`: unknown key";
    assert_eq!(lines_with(&t, strict).len(), 1, "{t}");
    assert!(t.contains("1 error"), "{t}");
    // A key that is known is no worse under --strict.
    write(only.path(), "extra_key.yaml", &good("clean"));
    otelsim_in(only.path(), "validate --strict").run_ok();
}

#[test]
fn nothing_left_to_run_is_an_error_that_says_so() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "broken_syntax.yaml", SYNTAX_ERROR);
    write(dir.path(), "unknown_tenant.yaml", UNKNOWN_TENANT);
    let t = otelsim_in(dir.path(), "run --count 1 --interval 0")
        .output_file(dir.path().join("o.jsonl"))
        .run_exit(2);
    assert!(
        t.contains("otelsim: skipped 2 of 2 scenario files with errors"),
        "{t}"
    );
    assert!(
        t.contains("otelsim: no scenario left: every scenario file has errors (2 skipped; `otelsim validate` lists every problem)"),
        "{t}"
    );
    otelsim_in(dir.path(), "list").run_exit(2);

    // A selection that skips leave empty: the skipped files are named as a reason.
    let dir = mixed_dir();
    let t = otelsim_in(
        dir.path(),
        "run --each-once --interval 0 --tags nothing-has-it",
    )
    .output_file(dir.path().join("o.jsonl"))
    .run_exit(2);
    assert!(
        t.contains("no scenario matches --tags nothing-has-it (2 scenario file(s) with errors were skipped"),
        "{t}"
    );
    let t = otelsim_in(
        dir.path(),
        "run --count 1 --interval 0 --tags nothing-has-it",
    )
    .output_file(dir.path().join("o.jsonl"))
    .run_exit(2);
    assert!(
        t.contains("no scenario matches the selection")
            && t.contains("2 scenario file(s) with errors were skipped"),
        "{t}"
    );
}

#[test]
fn config_errors_stay_fatal_and_config_unknown_keys_stay_errors() {
    let dir = mixed_dir();
    let cfg_dir = tempfile::tempdir().unwrap();
    let bundled = std::fs::read_to_string(repo().join("config/config.yaml")).unwrap();
    let cfg = cfg_dir.path().join("config.yaml");
    std::fs::write(&cfg, format!("{bundled}\nnewer_section: 1\n")).unwrap();
    let out_file = cfg_dir.path().join("o.jsonl");
    for cmd in [
        "run --each-once --interval 0",
        "list",
        "scenario --name good_one",
    ] {
        let mut o = otelsim_in(dir.path(), cmd).arg("--config").arg(&cfg);
        if !cmd.starts_with("list") {
            o = o.output_file(&out_file);
        }
        let t = o.run_exit(2);
        assert!(
            t.contains("config.yaml:") && t.contains(": error: key `newer_section`: unknown key"),
            "{cmd}: {t}"
        );
    }
    assert!(!out_file.exists(), "nothing ran");
}
