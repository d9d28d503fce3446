//! What runs otelsim beyond one machine, checked offline: the Dockerfile, the
//! Kubernetes manifests and kustomization (every document parsed, the fields
//! the sharded Job relies on, every flag against the real `--help`), the
//! ConfigMap's scenarios loaded as Kubernetes mounts them, and the CI recipes.
//! No Docker daemon or cluster is needed: kubernetes-validate (PyPI, `make
//! test` installs it) checks the manifests against the schemas it bundles, and
//! `kubectl kustomize` renders the kustomization where kubectl is installed
//! (`OTELSIM_REQUIRE_KUBERNETES_VALIDATE=1` / `OTELSIM_REQUIRE_KUBECTL=1` fail
//! instead of skipping when they are not).

use crate::support::*;
use otelsim::diag::Diags;
use otelsim::yaml::{self, Kind, Node};
use std::collections::BTreeSet;
use std::path::Path;

/// Every YAML document of a file (split at `---` lines), parsed; a document
/// that does not parse fails the test with file, line and column.
fn documents(rel: &str) -> Vec<Node> {
    let text = std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    text.split("\n---\n")
        .map(|doc| {
            let mut d = Diags::new(rel);
            let node = yaml::parse(doc, &mut d);
            assert!(!d.has_errors(), "{rel}: {:?}", d.items);
            node.unwrap_or_else(|| panic!("{rel}: an empty document"))
        })
        .collect()
}

/// The node at a dotted path (`spec.template.spec`); list items by index.
fn at<'a>(n: &'a Node, path: &str) -> &'a Node {
    let mut cur = n;
    for key in path.split('.') {
        cur = match &cur.kind {
            Kind::Seq(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => cur.get(key),
        }
        .unwrap_or_else(|| panic!("no `{path}` (stopped at `{key}`)"));
    }
    cur
}

fn text_at(n: &Node, path: &str) -> String {
    at(n, path)
        .scalar_text()
        .unwrap_or_else(|| panic!("`{path}` is not a scalar"))
}

fn strings(n: &Node) -> Vec<String> {
    match &n.kind {
        Kind::Seq(items) => items.iter().filter_map(Node::scalar_text).collect(),
        _ => panic!("expected a list"),
    }
}

fn items(n: &Node) -> &[Node] {
    match &n.kind {
        Kind::Seq(items) => items,
        _ => panic!("expected a list"),
    }
}

/// The value of the container's environment variable `name`.
fn env_of<'a>(container: &'a Node, name: &str) -> &'a Node {
    items(at(container, "env"))
        .iter()
        .find(|e| e.get("name").and_then(Node::as_str) == Some(name))
        .unwrap_or_else(|| panic!("no env {name}"))
}

/// The long flags `otelsim SUBCOMMAND --help` lists.
fn help_flags(sub: &[&str]) -> BTreeSet<String> {
    let help = Otelsim::new().args(sub).arg("--help").run_ok();
    help.split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == ']')
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .map(|w| w.split('=').next().unwrap_or(w).to_string())
        .collect()
}

/// Every `--flag` in `args` must be one `otelsim SUB --help` lists.
fn assert_flags_exist(sub: &[&str], args: &[String], whence: &str) {
    let known = help_flags(sub);
    for a in args.iter().filter(|a| a.starts_with("--")) {
        let flag = a.split('=').next().unwrap_or(a);
        assert!(
            known.contains(flag),
            "{whence}: `otelsim {} {flag}` is not a flag of otelsim {} (it has {known:?})",
            sub.join(" "),
            sub.join(" ")
        );
    }
}

#[test]
fn the_indexed_job_has_what_sharding_relies_on() {
    let job = &documents("deploy/kubernetes/job.yaml")[0];
    assert_eq!(text_at(job, "apiVersion"), "batch/v1");
    assert_eq!(text_at(job, "kind"), "Job");
    assert_eq!(text_at(job, "spec.completionMode"), "Indexed");
    let completions = text_at(job, "spec.completions");
    assert_eq!(
        text_at(job, "spec.parallelism"),
        completions,
        "every shard at once"
    );
    // A shard retried would send its traces twice.
    assert_eq!(text_at(job, "spec.backoffLimit"), "0");
    let pod = at(job, "spec.template.spec");
    assert_eq!(text_at(pod, "restartPolicy"), "Never");
    assert_eq!(text_at(pod, "securityContext.runAsNonRoot"), "true");
    assert_eq!(text_at(pod, "securityContext.runAsUser"), "65532");
    let c = at(pod, "containers.0");
    let env = |name: &str| env_of(c, name);
    assert_eq!(
        env("OTELSIM_SHARDS")
            .get("value")
            .and_then(Node::scalar_text),
        Some(completions),
        "OTELSIM_SHARDS must equal completions"
    );
    let uid = text_at(env("OTELSIM_RUN_ID"), "valueFrom.fieldRef.fieldPath");
    assert_eq!(uid, "metadata.labels['batch.kubernetes.io/controller-uid']");
    let args = strings(at(c, "args"));
    assert_eq!(args[0], "run");
    for needed in [
        "--seed=",
        "--run-id=$(OTELSIM_RUN_ID)",
        "--report=/dev/stdout",
        "--max-shortfall=",
    ] {
        assert!(
            args.iter().any(|a| a.starts_with(needed)),
            "args lack {needed}: {args:?}"
        );
    }
    assert!(
        args.contains(&"-q".to_string()),
        "the report alone on stdout: -q"
    );
    assert_flags_exist(&["run"], &args[1..], "job.yaml");
    // The scenarios: SCENARIOS_DIR is where the ConfigMap is mounted.
    let dir = text_at(env("SCENARIOS_DIR"), "value");
    let mount = items(at(c, "volumeMounts"))
        .iter()
        .find(|m| text_at(m, "mountPath") == dir)
        .expect("a volume mounted at SCENARIOS_DIR");
    let volume = items(at(pod, "volumes"))
        .iter()
        .find(|v| text_at(v, "name") == text_at(mount, "name"))
        .expect("the mounted volume");
    assert_eq!(text_at(volume, "configMap.name"), "otelsim-scenarios");
    // Sized from the measured throughput (README): requests set, memory bounded.
    assert_eq!(text_at(c, "resources.requests.cpu"), "1");
    assert!(at(c, "resources.limits.memory").scalar_text().is_some());
    // The endpoint is the sink Service's gRPC port.
    let endpoint = text_at(env("OTEL_EXPORTER_OTLP_ENDPOINT"), "value");
    let service = &documents("deploy/kubernetes/sink.yaml")[1];
    let port = items(at(service, "spec.ports"))
        .iter()
        .find(|p| text_at(p, "name") == "otlp-grpc")
        .map(|p| text_at(p, "port"))
        .expect("the sink Service's gRPC port");
    assert_eq!(
        endpoint,
        format!("http://{}:{port}", text_at(service, "metadata.name"))
    );
}

#[test]
fn the_sink_deployment_and_service_fit_together() {
    let docs = documents("deploy/kubernetes/sink.yaml");
    let (deploy, service) = (&docs[0], &docs[1]);
    assert_eq!(text_at(deploy, "kind"), "Deployment");
    assert_eq!(text_at(service, "kind"), "Service");
    let labels = at(deploy, "spec.template.metadata.labels");
    for (k, v) in at(service, "spec.selector").as_map().unwrap() {
        assert_eq!(labels.get(k).and_then(Node::scalar_text), v.scalar_text());
    }
    for (k, v) in at(deploy, "spec.selector.matchLabels").as_map().unwrap() {
        assert_eq!(labels.get(k).and_then(Node::scalar_text), v.scalar_text());
    }
    let c = at(deploy, "spec.template.spec.containers.0");
    let args = strings(at(c, "args"));
    assert_eq!(args[0], "sink");
    assert_flags_exist(&["sink"], &args[1..], "sink.yaml");
    let ports = items(at(c, "ports"));
    for p in items(at(service, "spec.ports")) {
        let target = text_at(p, "targetPort");
        let container = ports
            .iter()
            .find(|cp| text_at(cp, "name") == target)
            .unwrap_or_else(|| panic!("no container port named {target}"));
        let listen = format!("0.0.0.0:{}", text_at(container, "containerPort"));
        assert!(
            args.iter().any(|a| a.ends_with(&listen)),
            "the sink listens on {listen}: {args:?}"
        );
    }
}

#[test]
fn the_kustomization_names_files_that_exist_and_the_config_map_the_job_mounts() {
    let k = &documents("deploy/kubernetes/kustomization.yaml")[0];
    for r in strings(at(k, "resources")) {
        assert!(repo().join("deploy/kubernetes").join(&r).is_file(), "{r}");
    }
    let gen = &items(at(k, "configMapGenerator"))[0];
    assert_eq!(text_at(gen, "name"), "otelsim-scenarios");
    let files = strings(at(gen, "files"));
    assert!(!files.is_empty());
    for f in &files {
        assert!(repo().join("deploy/kubernetes").join(f).is_file(), "{f}");
    }
    // Rendered by kustomize itself, where kubectl is installed.
    match std::process::Command::new("kubectl")
        .args(["kustomize"])
        .arg(repo().join("deploy/kubernetes"))
        .output()
    {
        Ok(out) => {
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let rendered = String::from_utf8_lossy(&out.stdout);
            for kind in [
                "kind: ConfigMap",
                "kind: Job",
                "kind: Deployment",
                "kind: Service",
            ] {
                assert!(rendered.contains(kind), "{kind} missing:\n{rendered}");
            }
            // The generated name (with its hash) is the one the Job mounts.
            let name = rendered
                .lines()
                .find_map(|l| l.trim().strip_prefix("name: otelsim-scenarios-"))
                .expect("the generated ConfigMap");
            assert!(
                rendered
                    .matches(&format!("otelsim-scenarios-{name}"))
                    .count()
                    >= 2,
                "the Job mounts the generated ConfigMap"
            );
        }
        Err(_) if std::env::var_os("OTELSIM_REQUIRE_KUBECTL").is_some() => {
            panic!("kubectl not found and OTELSIM_REQUIRE_KUBECTL is set")
        }
        Err(_) => eprintln!("kubectl not found: kustomize rendering not checked"),
    }
}

/// A ConfigMap volume as the kubelet lays it out: the files in a timestamped
/// folder, `..data` linking to it, and each key a link through `..data`.
fn config_map_mount(dir: &Path, files: &[std::path::PathBuf]) {
    let stamp = dir.join("..2026_11_30_12_00_00.123456789");
    std::fs::create_dir_all(&stamp).unwrap();
    for f in files {
        std::fs::copy(f, stamp.join(f.file_name().unwrap())).unwrap();
    }
    std::os::unix::fs::symlink(stamp.file_name().unwrap(), dir.join("..data")).unwrap();
    for f in files {
        let name = f.file_name().unwrap();
        std::os::unix::fs::symlink(Path::new("..data").join(name), dir.join(name)).unwrap();
    }
}

#[test]
fn the_config_map_scenarios_load_once_each_as_kubernetes_mounts_them() {
    let k = &documents("deploy/kubernetes/kustomization.yaml")[0];
    let files: Vec<_> = strings(at(&items(at(k, "configMapGenerator"))[0], "files"))
        .iter()
        .map(|f| repo().join("deploy/kubernetes").join(f))
        .collect();
    let tmp = tempfile::tempdir().unwrap();
    config_map_mount(tmp.path(), &files);
    let t = Otelsim::new()
        .arg("validate")
        .env("SCENARIOS_DIR", tmp.path())
        .run_ok();
    assert!(
        t.contains(&format!(", {} scenarios,", files.len())),
        "each file once, through its links: {t}"
    );
    assert!(!t.contains("already defined"), "{t}");
    let out = tmp.path().join("out.jsonl");
    Otelsim::new()
        .cli("run --count 5 --interval 0 --seed 1 --shard 0/2 -q")
        .env("SCENARIOS_DIR", tmp.path())
        .arg("--output-file")
        .arg(&out)
        .run_ok();
    assert!(!spans_in(&out).is_empty());
}

#[test]
fn the_dockerfile_builds_a_static_non_root_image_from_the_locked_versions() {
    let text = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let froms: Vec<&&str> = lines.iter().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(froms.len(), 2, "multi-stage: build, then the binary alone");
    assert!(
        froms[0].contains("-alpine AS build"),
        "musl: a static binary"
    );
    assert_eq!(*froms[1], "FROM scratch");
    // The toolchain is the one Cargo.toml asks for.
    let cargo = std::fs::read_to_string(repo().join("Cargo.toml")).unwrap();
    let msrv = cargo
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .unwrap()
        .trim_matches('"');
    assert!(
        lines.contains(&format!("ARG RUST_VERSION={msrv}").as_str()),
        "{msrv}"
    );
    assert!(text.contains("cargo build --release --locked"));
    let user = lines.iter().rev().find(|l| l.starts_with("USER ")).unwrap();
    assert_eq!(
        *user, "USER 65532:65532",
        "non-root, as the manifests run it"
    );
    assert!(lines.contains(&r#"ENTRYPOINT ["/usr/local/bin/otelsim"]"#));
    let ignore = std::fs::read_to_string(repo().join(".dockerignore")).unwrap();
    assert!(
        ignore.lines().any(|l| l == "target"),
        "no build output in the context"
    );
    // The image target exists and builds this Dockerfile.
    let make = std::fs::read_to_string(repo().join("Makefile")).unwrap();
    assert!(make.contains("\nimage:\n"), "make image");
    assert!(make.contains("$(CONTAINER_CMD) build -t $(IMAGE) ."));
}

/// The otelsim commands in shell text: each as its arguments after `otelsim`
/// (continuation lines joined; commands split at `;`, `&&`, `|`, `&`).
fn otelsim_commands(script: &str) -> Vec<Vec<String>> {
    let joined = script.replace("\\\n", " ");
    let mut out = Vec::new();
    for line in joined.lines() {
        for part in line.split([';', '|', '&']) {
            let words: Vec<String> = part
                .split_whitespace()
                .map(|w| w.trim_matches('"').to_string())
                .collect();
            if let Some(i) = words.iter().position(|w| w == "otelsim") {
                // Up to a redirection.
                let args = words[i + 1..]
                    .iter()
                    .take_while(|w| !w.starts_with('>') && !w.starts_with("2>"))
                    .cloned()
                    .collect();
                out.push(args);
            }
        }
    }
    out
}

/// Checks a recipe's otelsim commands: a sink with a summary file, a run with
/// --max-shortfall and a report, and a verify of that report against that
/// summary; every flag one otelsim has.
fn check_recipe(name: &str, commands: &[Vec<String>]) {
    let find = |sub: &str| {
        commands
            .iter()
            .find(|c| c.first().map(String::as_str) == Some(sub))
            .unwrap_or_else(|| panic!("{name}: no `otelsim {sub}`: {commands:?}"))
    };
    for c in commands {
        assert_flags_exist(&[c[0].as_str()], &c[1..], name);
    }
    let value = |c: &Vec<String>, flag: &str| {
        c.iter()
            .position(|a| a == flag)
            .map(|i| c[i + 1].clone())
            .unwrap_or_else(|| panic!("{name}: `otelsim {}` lacks {flag}", c[0]))
    };
    let (sink, run, verify) = (find("sink"), find("run"), find("verify"));
    let summary = value(sink, "--summary-file");
    let report = value(run, "--report");
    value(run, "--max-shortfall");
    assert_eq!(verify[1], report, "{name}: verify reads the run's report");
    assert_eq!(
        value(verify, "--sink-report"),
        summary,
        "{name}: and the sink's summary"
    );
}

#[test]
fn the_github_actions_recipe_runs_a_collector_service_and_gates_on_verify() {
    let name = "examples/ci/github-actions.yml";
    let wf = &documents(name)[0];
    let job = at(wf, "jobs.load-test");
    let collector = at(job, "services.collector");
    assert!(text_at(collector, "image").contains("rotel"));
    // The collector forwards to the sink the recipe starts on the runner.
    let forward = text_at(collector, "env.ROTEL_OTLP_EXPORTER_ENDPOINT");
    let steps = items(at(job, "steps"));
    let mut script = String::new();
    for s in steps {
        // Each step says what it does (or is a known action).
        assert!(
            s.get("name").is_some() || s.get("uses").is_some(),
            "{name}: a step without a name"
        );
        if let Some(run) = s.get("run").and_then(Node::as_str) {
            script.push_str(run);
            script.push('\n');
        }
    }
    let commands = otelsim_commands(&script);
    check_recipe(name, &commands);
    let sink = commands.iter().find(|c| c[0] == "sink").unwrap();
    let port = forward.rsplit(':').next().unwrap();
    assert!(
        sink.iter().any(|a| a.ends_with(&format!(":{port}"))),
        "{forward} {sink:?}"
    );
}

#[test]
fn the_gitlab_recipe_runs_a_collector_service_and_gates_on_verify() {
    let name = "examples/ci/gitlab-ci.yml";
    let doc = &documents(name)[0];
    let job = at(doc, "otelsim-load-test");
    let service = &items(at(job, "services"))[0];
    assert!(text_at(service, "name").contains("opentelemetry-collector"));
    assert_eq!(
        strings(at(service, "command")),
        ["--config=env:OTELCOL_CONFIG"]
    );
    // The collector's configuration, itself YAML, forwards to the job's sink.
    let config = text_at(job, "variables.OTELCOL_CONFIG");
    let mut d = Diags::new("OTELCOL_CONFIG");
    let cfg = yaml::parse(&config, &mut d).expect("the collector config parses");
    let to = text_at(&cfg, "exporters.otlp.endpoint");
    for p in ["traces", "metrics", "logs"] {
        assert_eq!(
            strings(at(&cfg, &format!("service.pipelines.{p}.exporters"))),
            ["otlp"]
        );
    }
    let script = strings(at(job, "script")).join("\n");
    let commands = otelsim_commands(&script);
    check_recipe(name, &commands);
    let sink = commands.iter().find(|c| c[0] == "sink").unwrap();
    let port = to.rsplit(':').next().unwrap();
    assert!(
        sink.iter().any(|a| a.ends_with(&format!(":{port}"))),
        "{to} {sink:?}"
    );
    let run = commands.iter().find(|c| c[0] == "run").unwrap();
    let alias = text_at(service, "alias");
    assert!(
        run.iter().any(|a| a.contains(&format!("//{alias}:4317"))),
        "{run:?}"
    );
}

/// kubernetes-validate (PyPI; its Kubernetes schemas are bundled, so it needs no
/// cluster or network): OTELSIM_KUBERNETES_VALIDATE, else the repo's .venv.
fn kubernetes_validate() -> Option<std::path::PathBuf> {
    if let Some(p) = std::env::var_os("OTELSIM_KUBERNETES_VALIDATE") {
        return Some(p.into());
    }
    let p = repo().join(".venv/bin/kubernetes-validate");
    p.is_file().then_some(p)
}

#[test]
fn the_manifests_validate_against_the_kubernetes_schemas() {
    let Some(tool) = kubernetes_validate() else {
        assert!(
            std::env::var_os("OTELSIM_REQUIRE_KUBERNETES_VALIDATE").is_none(),
            "OTELSIM_REQUIRE_KUBERNETES_VALIDATE is set but kubernetes-validate was not found (make test installs it into .venv)"
        );
        eprintln!("SKIPPED: kubernetes-validate not found; `make test` installs it into .venv");
        return;
    };
    let files = ["deploy/kubernetes/job.yaml", "deploy/kubernetes/sink.yaml"];
    // Strict: an unknown or misspelt field fails. 1.28 is the oldest Kubernetes
    // the Job is meant for (its pods' batch.kubernetes.io labels).
    for version in ["1.28.0", "1.37.0"] {
        let out = std::process::Command::new(&tool)
            .args(["--strict", "-k", version])
            .args(files.iter().map(|f| repo().join(f)))
            .output()
            .expect("run kubernetes-validate");
        let said = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "Kubernetes {version}:\n{said}");
        for resource in [
            "job/otelsim",
            "deployment/otelsim-sink",
            "service/otelsim-sink",
        ] {
            assert!(
                said.contains(&format!("passed for resource {resource}")),
                "{said}"
            );
        }
    }
    // And a misspelt field is caught, so the check can fail.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("job.yaml");
    let job = std::fs::read_to_string(repo().join(files[0])).unwrap();
    std::fs::write(&bad, job.replace("backoffLimit:", "backofLimit:")).unwrap();
    let out = std::process::Command::new(&tool)
        .args(["--strict", "--quiet"])
        .arg(&bad)
        .output()
        .expect("run kubernetes-validate");
    assert!(!out.status.success(), "a misspelt field passed");
}
