//! What a newcomer meets in the first hour: help that lists only what each
//! subcommand takes, `list --long`, clear errors for negative counts, the jaeger
//! targets' message when the container engine is incomplete, summaries in plain
//! words, and `--tags control-plane` giving control-plane telemetry.

use crate::support::{repo, runtime, spans_in, start_sink, text, Otelsim};
use otelsim::cli::Cli;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

const SUBCOMMANDS: [&str; 7] = [
    "list", "scenario", "run", "validate", "sink", "bench", "verify",
];

/// The `--long` option names an option line of `help` starts with.
fn listed_flags(help: &str) -> BTreeSet<String> {
    help.lines()
        .filter_map(|l| {
            let t = l.trim_start();
            // Option lines are indented 2 (`-v, --verbose`) or 6 (`--count <N>`);
            // wrapped descriptions deeper.
            let indent = l.len() - t.len();
            if !t.starts_with('-') || !(2..=6).contains(&indent) {
                return None;
            }
            let long = t.split_whitespace().find(|w| w.starts_with("--"))?;
            let name: String = long
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            Some(name)
        })
        .filter(|f| f != "--help" && f != "--version")
        .collect()
}

/// The arguments a subcommand needs before any option can be tried on it.
fn required(sub: &str) -> Vec<&'static str> {
    match sub {
        "scenario" => vec!["--name", "new_claim_phone"],
        "verify" => vec!["run.json", "--sink-report", "sink.json"],
        _ => vec![],
    }
}

/// Whether the real parser takes `flag` after `sub` (a bad value still counts as
/// taken: the flag was recognised).
fn takes(sub: &str, flag: &str) -> bool {
    let parse = |value: Option<&str>| {
        let mut args = vec!["otelsim", sub];
        args.extend(required(sub));
        args.push(flag);
        args.extend(value);
        Cli::try_parse_args(args)
    };
    let refused = |e: &clap::Error| {
        let msg = e.to_string();
        let unknown = e.kind() == clap::error::ErrorKind::UnknownArgument
            || msg.contains("does nothing with");
        unknown && msg.contains(&format!("'{flag}'"))
            || msg.contains(&format!("{flag} does nothing"))
    };
    match parse(Some("1")) {
        Ok(_) => true,
        Err(e) if refused(&e) => false,
        // `1` was not wanted: a switch, taken alone.
        Err(e) if e.kind() == clap::error::ErrorKind::UnknownArgument => parse(None).is_ok(),
        Err(_) => true,
    }
}

#[test]
fn each_subcommands_help_lists_exactly_the_options_it_takes() {
    let helps: Vec<(&str, String)> = SUBCOMMANDS
        .iter()
        .map(|s| (*s, Otelsim::new().args([s, "--help"]).run_ok()))
        .collect();
    let all: BTreeSet<String> = helps.iter().flat_map(|(_, h)| listed_flags(h)).collect();
    assert!(all.len() > 40, "every option of every subcommand: {all:?}");
    for (sub, help) in &helps {
        let listed = listed_flags(help);
        for flag in &all {
            assert_eq!(
                listed.contains(flag),
                takes(sub, flag),
                "`otelsim {sub} --help` {} {flag}, but the parser {} it\n{help}",
                if listed.contains(flag) {
                    "lists"
                } else {
                    "does not list"
                },
                if listed.contains(flag) {
                    "refuses"
                } else {
                    "takes"
                },
            );
        }
        assert!(
            !help.contains("[env:"),
            "{sub}: env shown in the text, once"
        );
    }
    // Nothing that only exports is offered where nothing is exported.
    let list = &helps[0].1;
    for f in ["--endpoint", "--gzip", "--tls-ca", "--seed", "--metrics"] {
        assert!(!listed_flags(list).contains(f), "list offers {f}");
    }
    let sink = &helps[4].1;
    assert!(listed_flags(sink).contains("--tls-cert"), "{sink}");
    assert!(!listed_flags(sink).contains("--endpoint"), "{sink}");
}

#[test]
fn run_help_is_grouped_with_defaults_examples_and_exit_codes() {
    let help = Otelsim::new().args(["run", "--help"]).run_ok();
    let headings: Vec<&str> = help
        .lines()
        .filter(|l| !l.starts_with(' ') && l.ends_with(':'))
        .collect();
    assert_eq!(
        headings,
        [
            "Options:",
            "Load:",
            "Timing:",
            "Scenarios:",
            "Signals:",
            "Export:",
            "TLS:",
            "Report:",
            "Display:",
            "Examples:"
        ],
        "{help}"
    );
    let section = |name: &str| -> String {
        let start = help.find(&format!("\n{name}:\n")).expect(name);
        let rest = &help[start + name.len() + 3..];
        rest[..rest.find("\n\n").unwrap_or(rest.len())].to_string()
    };
    assert!(section("Load").contains("--rate") && section("Load").contains("--count"));
    assert!(section("Export").contains("--endpoint") && !section("Export").contains("--rate"));
    assert!(section("TLS").contains("--tls-ca") && section("TLS").contains("--insecure"));
    assert!(section("Signals").contains("--metrics-interval"));
    // Defaults are shown, the unit's among them.
    for default in [
        "[default: traces]",
        "[default: 500]",
        "[default: 15s]",
        "[default: 10s]",
    ] {
        assert!(help.contains(default), "{default} missing:\n{help}");
    }
    assert!(help.contains("Exit codes: 0 all delivered"), "{help}");
    assert!(help.contains("otelsim run --count"), "examples: {help}");
    // One line per option, not a paragraph each (140: --connections).
    assert!(help.lines().count() < 141, "{} lines", help.lines().count());
}

#[test]
fn options_before_the_subcommand_still_work_and_the_later_one_wins() {
    let cli = Cli::try_parse_args([
        "otelsim", "--seed", "1", "--header", "a=1", "-v", "run", "--seed", "2", "--header", "b=2",
        "-v",
    ])
    .unwrap();
    let g = cli.global_flags();
    assert_eq!(g.seed, Some(2), "after the subcommand wins");
    assert_eq!(g.headers, ["a=1", "b=2"], "lists are joined, before first");
    assert_eq!(g.verbose, 2, "-v adds up");
    let cli = Cli::try_parse_args(["otelsim", "--endpoint", "http://x:1", "scenario", "-n", "a"])
        .unwrap();
    assert_eq!(cli.global_flags().endpoint.as_deref(), Some("http://x:1"));
    // Across the two places clap cannot see a conflict; the command refuses it.
    let t = Otelsim::new()
        .cli("--insecure run --count 1 --tls-ca ca.pem")
        .run_exit(2);
    assert!(t.contains("--insecure cannot be used with --tls-ca"), "{t}");
    // Before the subcommand, an option it does not take is named, as after it.
    let before = Otelsim::new().cli("--seed 3 list").run_exit(2);
    let after = Otelsim::new().cli("list --seed 3").run_exit(2);
    for t in [&before, &after] {
        assert!(t.contains("--seed does nothing with `otelsim list`"), "{t}");
    }
    // A flag beats its variable, whichever side of the subcommand it is on.
    let t = Otelsim::new()
        .cli("--semconv missing-flag.yaml validate")
        .env("SEMCONV", "missing-env.yaml")
        .run_exit(2);
    assert!(
        t.contains("missing-flag.yaml") && !t.contains("missing-env.yaml"),
        "{t}"
    );
    let t = Otelsim::new()
        .cli("validate")
        .env("SEMCONV", "missing-env.yaml")
        .run_exit(2);
    assert!(t.contains("missing-env.yaml"), "the variable is read: {t}");
}

#[test]
fn list_long_prints_a_scenario_whole() {
    let yaml =
        std::fs::read_to_string(repo().join("definitions/request_blocked_by_policy.yaml")).unwrap();
    // The folded description, as one line of words.
    let desc: Vec<&str> = yaml
        .split("description: >")
        .nth(1)
        .unwrap()
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .flat_map(str::split_whitespace)
        .collect();
    assert!(desc.len() > 12, "a description longer than the table shows");
    let long = Otelsim::new()
        .cli("list --long request_blocked_by_policy")
        .run_ok();
    let words: Vec<&str> = long
        .lines()
        .skip_while(|l| !l.contains("description:"))
        .take_while(|l| !l.contains("tags:"))
        .flat_map(str::split_whitespace)
        .filter(|w| *w != "description:")
        .collect();
    assert_eq!(words, desc, "the whole description:\n{long}");
    for want in [
        "tags:         control-plane",
        "weight:       0.4 (",
        "request_blocked_by_policy.yaml",
        "runs it 3 times, 60 ± 20 ms apart",
        "emits:        one request (a sample): 1 trace, 4 spans",
        "vendor.request.validation",
        "signals:      metrics yes, log records yes",
    ] {
        assert!(long.contains(want), "`{want}` missing:\n{long}");
    }
    // The table cuts it, and says where to see it whole.
    let table = Otelsim::new().cli("list").run_ok();
    let row = table
        .lines()
        .find(|l| l.starts_with("request_blocked_by_policy "))
        .unwrap();
    assert!(row.ends_with('…') && row.contains("control-plane"), "{row}");
    assert!(table.contains("`otelsim list --long [NAME]`"), "{table}");
    // Hidden scenarios are shown by name; unknown names are input errors.
    let hidden = Otelsim::new().cli("list --long example_scenario").run_ok();
    assert!(hidden.contains("hidden: `run` never picks it"), "{hidden}");
    let t = Otelsim::new().cli("list --long new_claim_phon").run_exit(2);
    assert!(t.contains("Did you mean `new_claim_phone`"), "{t}");
}

#[test]
fn list_and_validate_count_alike() {
    let list = Otelsim::new().cli("list").run_ok();
    let listed = list.lines().count() - 2; // the header and the footer
    assert!(
        list.contains(&format!(
            "{listed} scenarios · 1 not listed, runs by name only: example_scenario"
        )),
        "{list}"
    );
    let validate = Otelsim::new().cli("validate").run_ok();
    assert!(
        validate.contains(&format!(
            "{} scenarios ({listed} listed by `otelsim list`, 1 hidden: example_scenario)",
            listed + 1
        )),
        "{validate}"
    );
}

#[test]
fn negative_counts_are_named_as_such() {
    for args in [
        "run --count -1",
        "scenario --name new_claim_phone --count -5",
        "bench --spans -1",
        "run --workers -2",
        "sink --reject-first -1",
    ] {
        let t = Otelsim::new().cli(args).run_exit(2);
        assert!(t.contains("must be a non-negative count"), "{args}: {t}");
        assert!(!t.contains("unexpected argument"), "{args}: {t}");
    }
    let t = Otelsim::new().cli("run --interval -5").run_exit(2);
    assert!(t.contains("--interval must be between 0 and"), "{t}");
}

/// Runs `scripts/jaeger.sh ARGS` with only `tools` on the PATH (links made here).
fn jaeger(dir: &Path, tools: &[(&str, &Path)], engine: &str, action: &str) -> (i32, String) {
    let bin = dir.join(format!("bin-{engine}-{action}"));
    std::fs::create_dir_all(&bin).unwrap();
    for (name, target) in tools {
        std::os::unix::fs::symlink(target, bin.join(name)).unwrap();
    }
    let out = Command::new(which("bash").unwrap())
        .arg(repo().join("scripts/jaeger.sh"))
        .arg(action)
        .env_clear()
        .env("PATH", &bin)
        .env("CONTAINER_CMD", engine)
        .output()
        .unwrap();
    (out.status.code().unwrap_or(-1), text(&out))
}

fn which(tool: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

#[test]
fn jaeger_targets_say_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let basics: Vec<(&str, std::path::PathBuf)> = ["dirname", "timeout"]
        .iter()
        .filter_map(|t| which(t).map(|p| (*t, p)))
        .collect();
    let tools: Vec<(&str, &Path)> = basics.iter().map(|(n, p)| (*n, p.as_path())).collect();
    // No engine at all.
    let (code, t) = jaeger(dir.path(), &tools, "podman", "up");
    assert_eq!(code, 1, "{t}");
    assert!(
        t.contains("`podman` is not installed") && t.contains("install Docker"),
        "{t}"
    );
    assert_eq!(t.lines().count(), 1, "one sentence: {t}");
    // The UI: no browser opener on this PATH, so just the URL.
    let (code, t) = jaeger(dir.path(), &tools, "docker", "ui");
    assert_eq!(code, 0, "{t}");
    assert!(t.contains("http://localhost:16686"), "{t}");
    // The real docker client, where it lacks the compose plugin or a daemon.
    let Some(docker) = which("docker") else {
        eprintln!("SKIPPED: no docker client here");
        return;
    };
    let ok = |args: &[&str]| {
        Command::new(&docker)
            .args(args)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let (compose, daemon) = (ok(&["compose", "version"]), ok(&["info"]));
    if compose && daemon {
        eprintln!("SKIPPED: docker is complete here; the test starts no container");
        return;
    }
    let mut with_docker = tools.clone();
    with_docker.push(("docker", docker.as_path()));
    for action in ["up", "down"] {
        let (code, t) = jaeger(dir.path(), &with_docker, "docker", action);
        assert_eq!(code, 1, "{t}");
        assert!(
            !t.contains("unknown shorthand flag"),
            "compose never ran: {t}"
        );
        assert_eq!(t.lines().count(), 1, "one sentence: {t}");
        assert!(t.contains("`docker` is installed but"), "{t}");
        if !compose {
            assert!(
                t.contains("compose plugin") && t.contains("Docker Compose plugin"),
                "{t}"
            );
        }
        if !daemon {
            assert!(
                t.contains("daemon") && t.contains("systemctl start docker"),
                "{t}"
            );
        }
        assert!(
            t.contains(&format!("make jaeger-{action} CONTAINER_CMD=podman")),
            "{t}"
        );
    }
}

#[test]
fn tags_control_plane_gives_mostly_control_plane_spans() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cp.jsonl");
    Otelsim::new()
        .cli("run --count 300 --interval 0 --tags control-plane -q")
        .seed(1)
        .output_file(&out)
        .run_ok();
    let spans = spans_in(&out);
    let control = spans
        .iter()
        .filter(|s| s.resource.get("vendor.module").map(String::as_str) == Some("control-plane"))
        .count();
    let share = control as f64 / spans.len() as f64;
    // 47 % when request_allowed_audit_flagged (a full agent turn) had weight 3.
    assert!(
        share > 0.6,
        "control-plane share {share:.2} of {} spans",
        spans.len()
    );
}

#[test]
fn summaries_say_it_in_plain_words() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("one.jsonl");
    let t = Otelsim::new()
        .cli("scenario --name request_blocked_rate_limited --count 1")
        .output_file(&out)
        .run_ok();
    let export = t.lines().find(|l| l.contains("export:")).unwrap();
    assert!(export.contains("in 1 request ·"), "{export}");
    assert!(
        export.contains(" written ·") && !export.contains("acknowledged"),
        "{export}"
    );
    assert!(
        export.contains("no retries") && export.contains("bytes written"),
        "{export}"
    );
    assert!(t.starts_with("otelsim: 1 trace, "), "{t}");
    // Over gRPC with gzip the count is the message before compression: said so.
    let rt = runtime();
    let sink = start_sink(&rt);
    let t = Otelsim::new()
        .cli("run --count 3 --interval 0 --gzip")
        .endpoint(sink.grpc_endpoint())
        .run_ok();
    let export = t.lines().find(|l| l.contains("export:")).unwrap();
    assert!(export.contains(" acknowledged ·"), "{export}");
    assert!(export.contains("bytes before gzip"), "{export}");
    rt.block_on(sink.shutdown());
}
