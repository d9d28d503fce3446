//! Hostile and silent input files: deep nesting, alias bombs, special files,
//! huge lists and quiet mistakes each get a clear error (or a warning saying
//! what will happen) with file, line and key, in bounded time and memory. Every
//! hostile file is generated here, at run time.
//!
//! This module also installs the test binary's allocator: the system one, with
//! a per-thread count of live bytes, so a test can measure the peak memory of a
//! call on its own thread (tests running beside it do not disturb the count).

use crate::alloc::peak_alloc;
use crate::support::*;
use otelsim::diag::Diags;
use otelsim::yaml::{self, Kind, Node, MAX_DEPTH, MAX_DOCUMENT_BYTES};
use proptest::prelude::*;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(60);
const T0: &str = "2026-01-01T00:00:00Z";

const MB: usize = 1 << 20;

fn otelsim() -> Otelsim {
    Otelsim::new().limit(LIMIT)
}

fn write(dir: &Path, name: &str, body: impl AsRef<[u8]>) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

/// `otelsim validate` with extra arguments: exit code and everything printed.
fn validate(args: &[&std::ffi::OsStr]) -> (i32, String) {
    let out = otelsim().arg("validate").args(args).run();
    (out.status.code().unwrap_or(-1), text(&out))
}

fn validate_dir(dir: &Path) -> (i32, String) {
    validate(&["--scenarios-dir".as_ref(), dir.as_os_str()])
}

/// The line of `out` about `file` that contains `what`; panics with `out` otherwise.
fn line_about<'a>(out: &'a str, file: &str, what: &str) -> &'a str {
    out.lines()
        .find(|l| l.contains(file) && l.contains(what))
        .unwrap_or_else(|| panic!("no line about {file} containing `{what}` in\n{out}"))
}

/// 30,000 nested block lists: 60 KB that used to overflow the stack.
fn deep_yaml() -> String {
    format!("{}x\n", "- ".repeat(30_000))
}

/// A 200,000-character string and 10,000 aliases of it (240 KB) that used to
/// expand to 2 GB before any error.
fn alias_yaml() -> String {
    format!(
        "big: &a \"{}\"\nroot:\n  type: vendor.planner\n  attributes:\n    l: [{}]\n",
        "x".repeat(200_000),
        vec!["*a"; 10_000].join(", ")
    )
}

fn repo_file(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap()
}

#[test]
fn deep_nesting_is_an_error_with_its_line_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "deep.yaml", deep_yaml());
    let (code, out) = validate_dir(dir.path());
    assert_eq!(code, 2, "a clear input error, not an abort (134)\n{out}");
    line_about(&out, "deep.yaml:1:", "nesting deeper than 128 levels");
    // The same for config.yaml and the conventions.
    let cfg = write(dir.path(), "config.yaml", deep_yaml());
    let (code, out) = validate(&["--config".as_ref(), cfg.as_os_str()]);
    assert_eq!(code, 2, "{out}");
    line_about(&out, "config.yaml:1:", "nesting deeper than");
    let sc = write(dir.path(), "semconv.yaml", deep_yaml());
    let (code, out) = validate(&["--semconv".as_ref(), sc.as_os_str()]);
    assert_eq!(code, 2, "{out}");
    line_about(&out, "semconv.yaml:1:", "nesting deeper than");

    // In memory: the parse stops at the limit, using almost nothing.
    let (node, peak) = peak_alloc(|| yaml::parse(&deep_yaml(), &mut Diags::new("deep.yaml")));
    assert!(node.is_none());
    assert!(peak < 100 * MB, "peak {peak} bytes");
}

#[test]
fn the_deepest_allowed_span_tree_runs_end_to_end() {
    // 60 nested children: YAML depth 2 + 2 × 60 = 122, just under the limit. Every
    // recursive walk (readers, compiler, generator on its worker thread) copes.
    let mut body = String::from("root:\n  type: vendor.a2a.orchestrate\n  latency: 5\n");
    for level in 1..=60 {
        let pad = " ".repeat(2 * (2 * level - 1));
        body.push_str(&format!(
            "{pad}children:\n{pad}  - type: vendor.planner\n{pad}    latency: 1\n"
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "deep_tree.yaml", &body);
    let out_file = dir.path().join("out.jsonl");
    otelsim()
        .arg("--scenarios-dir")
        .arg(dir.path())
        .seed(3)
        .start_time(T0)
        .output_file(&out_file)
        .cli("run --count 1 --interval 0 --no-metrics --no-logs")
        .run_ok();
    let spans = flatten(&read_output_file(&out_file));
    assert_eq!(spans.len(), 61);
}

#[test]
fn aliases_cannot_expand_past_the_memory_limit() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "alias.yaml", alias_yaml());
    let started = Instant::now();
    let (code, out) = validate_dir(dir.path());
    assert_eq!(code, 2, "{out}");
    line_about(&out, "alias.yaml:5:", "more than 32 MiB");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );

    let (node, peak) = peak_alloc(|| yaml::parse(&alias_yaml(), &mut Diags::new("alias.yaml")));
    assert!(node.is_none());
    assert!(peak < 100 * MB, "peak {} MB", peak / MB);
}

/// A FIFO at `path`, made with mkfifo(1).
fn mkfifo(path: &Path) {
    let ok = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo");
    assert!(ok.success());
}

#[test]
fn special_files_are_refused_with_the_reason_instead_of_hanging() {
    let dir = tempfile::tempdir().unwrap();
    let defs = dir.path().join("defs");
    std::fs::create_dir(&defs).unwrap();
    write(&defs, "good.yaml", "root:\n  type: vendor.planner\n");
    std::os::unix::fs::symlink("/dev/zero", defs.join("zero.yaml")).unwrap();
    mkfifo(&defs.join("fifo.yaml"));
    // 17 MiB without using the disk: a sparse file.
    let huge = std::fs::File::create(defs.join("huge.yaml")).unwrap();
    huge.set_len(17 << 20).unwrap();
    let started = Instant::now();
    let (code, out) = validate_dir(&defs);
    assert_eq!(code, 2, "{out}");
    line_about(
        &out,
        "zero.yaml",
        "is a character device, not a regular file",
    );
    line_about(&out, "fifo.yaml", "is a FIFO, not a regular file");
    line_about(&out, "huge.yaml", "is 17 MiB; the limit is 16 MiB");
    assert!(started.elapsed() < Duration::from_secs(30));

    // Every other reader goes through the same check.
    let fifo = dir.path().join("pipe");
    mkfifo(&fifo);
    let t = otelsim().cli("--config /dev/zero validate").run_exit(2);
    assert!(
        t.contains("/dev/zero is a character device, not a regular file"),
        "{t}"
    );
    let t = otelsim()
        .arg("--semconv")
        .arg(&fifo)
        .arg("validate")
        .run_exit(2);
    assert!(t.contains("is a FIFO, not a regular file"), "{t}");
    let t = otelsim()
        .cli("run --count 1 --load-profile /dev/zero")
        .output_file(dir.path().join("o.jsonl"))
        .run_exit(2);
    assert!(
        t.contains("is a character device, not a regular file"),
        "{t}"
    );
    let t = otelsim()
        .cli("verify /dev/zero --sink-report /dev/zero")
        .run_exit(2);
    assert!(
        t.contains("cannot read the run report") && t.contains("is a character device"),
        "{t}"
    );
    // A real run report, then a sink report that is a FIFO.
    let report = dir.path().join("run.json");
    otelsim()
        .seed(1)
        .start_time(T0)
        .output_file(dir.path().join("o.jsonl"))
        .cli("run --count 1 --interval 0")
        .report(&report)
        .run_ok();
    let t = otelsim()
        .arg("verify")
        .arg(&report)
        .arg("--sink-report")
        .arg(&fifo)
        .run_exit(2);
    assert!(t.contains("sink report") && t.contains("is a FIFO"), "{t}");
    // A config.yaml's resource.yaml beside it is read the same way.
    let cfg_dir = dir.path().join("cfg");
    std::fs::create_dir(&cfg_dir).unwrap();
    let cfg = write(&cfg_dir, "config.yaml", repo_file("config/config.yaml"));
    mkfifo(&cfg_dir.join("resource.yaml"));
    let (code, out) = validate(&["--config".as_ref(), cfg.as_os_str()]);
    assert_eq!(code, 2, "{out}");
    line_about(&out, "resource.yaml", "is a FIFO");
}

#[test]
fn silent_config_and_semconv_mistakes_are_errors_with_their_line() {
    let dir = tempfile::tempdir().unwrap();
    // A typo that used to drop the agent turn from every allowed request.
    let config = repo_file("config/config.yaml");
    let line = 1 + config[..config
        .find("default_data_plane_workflow: new_claim")
        .unwrap()]
        .matches('\n')
        .count();
    let cfg = write(
        dir.path(),
        "config.yaml",
        config.replace(
            "default_data_plane_workflow: new_claim",
            "default_data_plane_workflow: new_clam",
        ),
    );
    let (code, out) = validate(&["--config".as_ref(), cfg.as_os_str()]);
    assert_eq!(code, 2, "{out}");
    line_about(
        &out,
        &format!("config.yaml:{line}:"),
        "unknown workflow `new_clam` (did you mean `new_claim`?)",
    );

    // Conventions naming what does not exist.
    let semconv = repo_file("conventions/semconv.yaml")
        .replacen("    type: string\n", "    type: quaternion\n", 1)
        .replacen(
            "aligns_with_span: vendor.llm.call",
            "aligns_with_span: vendor.llm.cal",
            1,
        )
        .replacen(
            "dimensions: [vendor.tenant.id, vendor.a2a.agent.target.id, vendor.a2a.outcome]",
            "dimensions: [vendor.tenant.id, vendor.nothing]",
            1,
        )
        .replacen(
            "    parent: \"vendor.a2a.orchestrate\"\n    is_root: false",
            "    parent: \"vendor.planner\"\n    is_root: false",
            1,
        );
    let sc = write(dir.path(), "semconv.yaml", semconv);
    let (code, out) = validate(&["--semconv".as_ref(), sc.as_os_str()]);
    assert_eq!(code, 2, "{out}");
    for what in [
        "unknown type `quaternion`; valid: string, int",
        "`vendor.llm.cal` (did you mean `vendor.llm.call`?) is not in span_names",
        "`vendor.nothing` is no attribute of any `*_attributes` section",
        "`vendor.planner` names itself as its parent",
    ] {
        line_about(&out, "semconv.yaml:", what);
    }

    // Empty files: a clear error each, not "0 error(s)".
    for (flag, name) in [
        ("--config", "empty_config.yaml"),
        ("--semconv", "empty_semconv.yaml"),
    ] {
        let p = write(dir.path(), name, "# nothing here\n");
        let (code, out) = validate(&[flag.as_ref(), p.as_os_str()]);
        assert_eq!(code, 2, "{out}");
        line_about(&out, name, "the file is empty");
        assert!(!out.contains("0 error(s)"), "{out}");
    }
}

#[test]
fn silent_scenario_mistakes_are_errors_or_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    write(p, "empty.yaml", "");
    write(
        p,
        "no_attempts.yaml",
        "data_plane:\n  workflow: new_claim\n  mcp_retry: {attempts: []}\n",
    );
    write(
        p,
        "unknown_span.yaml",
        "root:\n  type: vendor.a2a.orchestrate\n  children:\n    - type: vendor.quantum.leap\n",
    );
    let (code, out) = validate_dir(p);
    assert_eq!(code, 2, "{out}");
    line_about(&out, "empty.yaml", "the file is empty");
    line_about(&out, "no_attempts.yaml:3:", "`attempts` is empty");
    let w = line_about(&out, "unknown_span.yaml:4:", "warning");
    assert!(
        w.contains("`vendor.quantum.leap` is not in the semconv span_names; emitted as is"),
        "{w}"
    );
}

#[test]
fn a_bom_is_skipped_a_nul_is_refused_and_workflow_errors_point_at_config() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    write(p, "bom.yaml", "\u{feff}root:\n  type: vendor.planner\n");
    let (code, out) = validate_dir(p);
    assert_eq!(code, 0, "the BOM is not part of the first key\n{out}");
    write(p, "nul.yaml", b"root:\n  type: vendor.\0planner\n");
    let (code, out) = validate_dir(p);
    assert_eq!(code, 2, "{out}");
    line_about(&out, "nul.yaml:2:16:", "NUL byte");

    // A workflow step that no MCP server offers: reported at its config line.
    let cfg_dir = p.join("cfg");
    std::fs::create_dir(&cfg_dir).unwrap();
    let config = repo_file("config/config.yaml").replacen(
        "new_claim: [planner, task, tools_recommend, new_claim, response_compose]",
        "new_claim: [planner, task, tools_recommend, new_clam, response_compose]",
        1,
    );
    let cfg = write(&cfg_dir, "config.yaml", config);
    let (code, out) = validate(&["--config".as_ref(), cfg.as_os_str()]);
    assert_eq!(code, 2, "{out}");
    let l = line_about(&out, "config.yaml:233:", "step `new_clam`");
    assert!(l.contains("workflow_templates.new_claim[3]"), "{l}");
    assert!(
        !out.contains("definitions/"),
        "not blamed on the definitions\n{out}"
    );

    // A tool of another MCP server than the scenario's: at the config line, naming the scenario.
    let cfg = write(
        &cfg_dir,
        "config.yaml",
        "tenants: {t: {id: t1}}\nagents: [a1]\nmcp_servers:\n  one: {mcp_server_uuid: u1, tools: [{name: lookup, tool_uuid: t1}]}\n  two: {mcp_server_uuid: u2, tools: [{name: refund, tool_uuid: t2}]}\nrealistic_scenarios:\n  workflow_templates:\n    support: [planner, refund, response_compose]\n",
    );
    let defs = p.join("defs");
    std::fs::create_dir(&defs).unwrap();
    write(
        &defs,
        "helpdesk.yaml",
        "context: {mcp_server: one}\ndata_plane: {workflow: support}\n",
    );
    let (code, out) = validate(&[
        "--config".as_ref(),
        cfg.as_os_str(),
        "--scenarios-dir".as_ref(),
        defs.as_os_str(),
    ]);
    assert_eq!(code, 2, "{out}");
    let l = line_about(&out, "config.yaml:8:", "step `refund`");
    assert!(
        l.contains("MCP server `one`") && l.contains("scenario `helpdesk`"),
        "{l}"
    );
}

#[test]
fn limits_keep_the_work_bounded_with_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let attrs = |n: usize| -> String {
        (0..n)
            .map(|i| format!("    vendor.a{i}: {i}\n"))
            .collect::<String>()
    };
    write(
        p,
        "attrs_129.yaml",
        format!(
            "root:\n  type: vendor.planner\n  attributes:\n{}",
            attrs(129)
        ),
    );
    // Once no progress in 60 s; now one error, at once.
    write(
        p,
        "attrs_100k.yaml",
        format!(
            "root:\n  type: vendor.planner\n  attributes:\n{}",
            attrs(100_000)
        ),
    );
    let turns: String = (0..1001)
        .map(|i| format!("    - {{user_input: q{i}, llm_response: a{i}}}\n"))
        .collect();
    write(
        p,
        "turns.yaml",
        format!("conversation:\n  turns:\n{turns}root:\n  type: vendor.a2a.orchestrate\n"),
    );
    let samples: String = (0..10_001)
        .map(|i| format!("    - {{user_input: q{i}, llm_response: a{i}}}\n"))
        .collect();
    write(
        p,
        "samples.yaml",
        format!("conversation:\n  samples:\n{samples}root:\n  type: vendor.a2a.orchestrate\n"),
    );
    let started = Instant::now();
    let (code, out) = validate_dir(p);
    assert_eq!(code, 2, "{out}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    line_about(
        &out,
        "attrs_129.yaml:4:",
        "129 attributes; at most 128 are allowed",
    );
    line_about(&out, "attrs_100k.yaml:4:", "100000 attributes; at most 128");
    line_about(&out, "turns.yaml:3:", "1001 turns; at most 1000");
    line_about(&out, "samples.yaml:3:", "10001 samples; at most 10000");

    // Events of a control-plane template.
    let errors: String = (0..129)
        .map(|i| format!("          - {{path: p{i}, rule: r, code: c}}\n"))
        .collect();
    let config = repo_file("config/config.yaml").replacen(
        "        validation_errors:\n",
        &format!("        validation_errors:\n{errors}"),
        1,
    );
    let cfg = write(p, "config.yaml", config);
    let (code, out) = validate(&["--config".as_ref(), cfg.as_os_str()]);
    assert_eq!(code, 2, "{out}");
    line_about(
        &out,
        "config.yaml:",
        "validation errors (one event each); at most 128",
    );
}

#[test]
fn traces_too_big_for_one_request_get_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    // 1 + 100 × (1 + n) spans.
    let tree = |n: u32| {
        format!("root:\n  type: vendor.a2a.orchestrate\n  children:\n    - type: vendor.task.execute\n      count: 100\n      children:\n        - {{type: vendor.planner, count: {n}}}\n")
    };
    write(dir.path(), "big_trace.yaml", tree(60));
    write(dir.path(), "fine_trace.yaml", tree(40));
    let (code, out) = validate_dir(dir.path());
    assert_eq!(code, 0, "{out}");
    line_about(
        &out,
        "big_trace.yaml:2:",
        "one trace of up to 6101 spans: it will be sent in several requests",
    );
    assert!(!out.contains("fine_trace.yaml"), "{out}");
}

/// Levels of lists and mappings of a parsed tree (walked with its own stack).
fn depth(root: &Node) -> usize {
    let mut max = 0;
    // (node, how many lists and mappings enclose it)
    let mut todo = vec![(root, 0usize)];
    while let Some((n, above)) = todo.pop() {
        let children: Vec<&Node> = match &n.kind {
            Kind::Seq(items) => items.iter().collect(),
            Kind::Map(entries) => entries.iter().map(|(_, v)| v).collect(),
            _ => continue,
        };
        max = max.max(above + 1);
        todo.extend(children.into_iter().map(|c| (c, above + 1)));
    }
    max
}

/// Random YAML built from the pieces that make parsers suffer.
fn token_soup() -> impl Strategy<Value = String> {
    let tokens = prop::sample::select(vec![
        "- ", "[", "]", "{", "}", ", ", ": ", "\n", "  ", "&a ", "&b ", "*a", "*b", "<<: ", "x",
        "key", "\"s\"", "1", "~", "? ", "|\n", "#c", "!!str ", "\u{feff}", "\0", "\t", "'q'",
        "---\n",
    ]);
    prop::collection::vec(tokens, 0..600).prop_map(|t| t.concat())
}

/// Deep nesting, big anchors and fan-out alias chains, in proportions that
/// straddle the limits.
fn bomb() -> impl Strategy<Value = String> {
    (
        0usize..300,
        0usize..120_000,
        0usize..2_000,
        1usize..8,
        1usize..12,
    )
        .prop_map(|(depth, big, uses, levels, fan)| {
            let mut s = format!("big: &big \"{}\"\n", "y".repeat(big));
            s.push_str(&format!("uses: [{}]\n", vec!["*big"; uses].join(", ")));
            s.push_str("l0: &l0 [x, x, x]\n");
            for i in 1..levels {
                let prev = format!("*l{}", i - 1);
                s.push_str(&format!("l{i}: &l{i} [{}]\n", vec![prev; fan].join(", ")));
            }
            s.push_str(&format!("deep: {}*l0\n", "- ".repeat(depth)));
            s.push_str(&format!("m: {{<<: *l{}}}\n", levels - 1));
            s
        })
}

/// A bundled file with random bytes changed and anchors or aliases spliced in.
fn mutated() -> impl Strategy<Value = String> {
    (
        0usize..32,
        prop::collection::vec((0usize..20_000, any::<u8>()), 0..8),
        prop::collection::vec(
            (
                0usize..20_000,
                prop::sample::select(vec!["&a ", "*a", "<<: *a\n", "- - - ", "[[[", "\0"]),
            ),
            0..4,
        ),
    )
        .prop_map(|(file, flips, splices)| {
            let defs = otelsim::embedded::DEFINITIONS;
            let text = match file {
                0 => otelsim::embedded::CONFIG,
                1 => otelsim::embedded::SEMCONV,
                i => defs[i % defs.len()].1,
            };
            let mut bytes = text.as_bytes().to_vec();
            for (at, b) in flips {
                if !bytes.is_empty() {
                    let i = at % bytes.len();
                    bytes[i] = b;
                }
            }
            for (at, piece) in splices {
                let i = at % (bytes.len() + 1);
                bytes.splice(i..i, piece.bytes());
            }
            String::from_utf8_lossy(&bytes).into_owned()
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// Whatever the text, the YAML reader returns (no panic, no stack overflow)
    /// with a tree inside the depth and size limits, having allocated a bounded
    /// amount on the way.
    #[test]
    fn the_yaml_reader_stays_within_its_limits(src in prop_oneof![token_soup(), bomb(), mutated()]) {
        let mut d = Diags::new("prop.yaml");
        let (node, peak) = peak_alloc(|| {
            let node = yaml::parse(&src, &mut d);
            let size = node.as_ref().map(|n| (yaml::cost(n), depth(n)));
            drop(node);
            size
        });
        if let Some((cost, levels)) = node {
            prop_assert!(cost <= MAX_DOCUMENT_BYTES, "cost {cost}");
            prop_assert!(levels <= MAX_DEPTH, "depth {levels}");
        } else {
            prop_assert!(d.has_errors(), "nothing parsed, yet no error");
        }
        // The tree (within its limit, up to twice that in list capacity), the
        // anchors' copies and the parser's own buffers.
        let bound = 4 * MAX_DOCUMENT_BYTES + 16 * src.len();
        prop_assert!(peak <= bound, "peak {peak} bytes for {} bytes of input", src.len());
    }
}
