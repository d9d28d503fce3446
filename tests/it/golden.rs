//! Golden output: `--seed --start-time --output-file` runs of every bundled
//! scenario and of the predecessor's corpus must not change by one byte unless
//! a change means to. The committed file holds SHA-256 digests, not the output.
//! Bless a deliberate change with `OTELSIM_BLESS=1 cargo test --test it golden`.

use crate::support::{compat_files, repo, text, Otelsim};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

const SEED: &str = "20261130";
const START: &str = "2026-01-01T00:00:00Z";

/// One golden case: a name and the otelsim arguments after the output flag.
struct Case {
    name: String,
    args: Vec<String>,
}

fn scenario_names(dir: &std::path::Path) -> Vec<String> {
    let mut names = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read definitions") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
                names.push(p.file_stem().unwrap().to_string_lossy().into_owned());
            }
        }
    }
    names.sort();
    names
}

fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    let (cc, cs, cd) = compat_files();
    let corpora: [(&str, Vec<String>, PathBuf); 2] = [
        ("bundled", Vec::new(), repo().join("definitions")),
        (
            "compat",
            vec![
                "--config".into(),
                cc,
                "--semconv".into(),
                cs,
                "--scenarios-dir".into(),
                cd.clone(),
            ],
            PathBuf::from(cd),
        ),
    ];
    for (corpus, files, dir) in corpora {
        let base = |rest: &[&str]| -> Vec<String> {
            let mut a = files.clone();
            a.extend(["--seed", SEED, "--start-time", START].map(String::from));
            a.extend(rest.iter().map(|s| s.to_string()));
            a
        };
        for name in scenario_names(&dir) {
            if name == "example_scenario" {
                continue;
            }
            out.push(Case {
                name: format!("{corpus}/{name}"),
                args: base(&[
                    "scenario",
                    "--name",
                    &name,
                    "--count",
                    "3",
                    "--interval",
                    "250",
                ]),
            });
        }
        out.push(Case {
            name: format!("{corpus}/mix"),
            args: base(&["run", "--count", "60", "--interval", "100"]),
        });
    }
    out
}

fn digest_file() -> PathBuf {
    repo().join("tests/golden/digests.txt")
}

#[test]
fn output_is_byte_identical_to_the_golden_digests() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut got: BTreeMap<String, String> = BTreeMap::new();
    for (i, case) in cases().iter().enumerate() {
        let file = dir.path().join(format!("{i}.jsonl"));
        let o = Otelsim::new()
            .arg("--quiet")
            .output_file(&file)
            .args(&case.args)
            .limit(Duration::from_secs(60))
            .run();
        assert!(o.status.success(), "{}: {}", case.name, text(&o));
        let bytes = std::fs::read(&file).expect("output file");
        assert!(!bytes.is_empty(), "{}: empty output", case.name);
        got.insert(case.name.clone(), hex::encode(Sha256::digest(&bytes)));
    }
    let rendered: String = got.iter().map(|(k, v)| format!("{k} {v}\n")).collect();
    if std::env::var_os("OTELSIM_BLESS").is_some() {
        std::fs::write(digest_file(), &rendered).expect("write digests");
        return;
    }
    let want = std::fs::read_to_string(digest_file()).expect("tests/golden/digests.txt");
    let want: BTreeMap<&str, &str> = want.lines().filter_map(|l| l.split_once(' ')).collect();
    let mut diffs = Vec::new();
    for (k, v) in &got {
        match want.get(k.as_str()) {
            Some(w) if w == v => {}
            Some(_) => diffs.push(format!("{k}: output changed")),
            None => diffs.push(format!("{k}: no golden digest")),
        }
    }
    for k in want.keys() {
        if !got.contains_key(*k) {
            diffs.push(format!("{k}: golden case no longer runs"));
        }
    }
    assert!(
        diffs.is_empty(),
        "golden output differs (bless a deliberate change with OTELSIM_BLESS=1):\n{}",
        diffs.join("\n")
    );
}
