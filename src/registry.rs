//! The scenario registry: config, semantic conventions and every scenario
//! definition, loaded and validated once per process, plus the weighted picker.
//!
//! Each input comes from a file given by flag or env, or else from the copy
//! embedded in the binary, so an installed `otelsim` works from any directory.

use crate::diag::{Diagnostic, Diags, LoadError, Pos, Severity};
use crate::embedded;
use crate::input_file;
use crate::model::config::{self, Config};
use crate::model::scenario::{self, ScenarioDef};
use crate::model::semconv::{self, Semconv};
use crate::yaml;
use rand::Rng;
use std::path::{Path, PathBuf};

/// Where to read inputs from; `None` means the embedded default.
#[derive(Clone, Debug, Default)]
pub struct Sources {
    /// config.yaml (`--config` / `OTELSIM_CONFIG`).
    pub config: Option<PathBuf>,
    /// The semantic-conventions YAML (`--semconv` / `SEMCONV`).
    pub semconv: Option<PathBuf>,
    /// The folder searched recursively for scenario files (`--scenarios-dir` /
    /// `SCENARIOS_DIR`).
    pub scenarios_dir: Option<PathBuf>,
}

/// Everything a run is made from, loaded and validated: config, semconv and the scenarios.
#[derive(Debug)]
pub struct Registry {
    /// The loaded config.yaml.
    pub config: Config,
    /// The loaded semantic conventions.
    pub semconv: Semconv,
    /// Every scenario that loaded, hidden ones and the config's registry-only control-plane
    /// scenarios included, sorted by name.
    pub scenarios: Vec<ScenarioDef>,
    /// Diagnostics found while loading: warnings, and with `load_collecting` also errors.
    pub warnings: Vec<Diagnostic>,
}

/// Scenarios that document the format; they run by name only.
pub fn is_hidden(name: &str) -> bool {
    matches!(name, "example_scenario" | "_EXAMPLE_SCENARIO_")
}

/// Reads a YAML input through [`input_file`]: a refusal (a FIFO, a device, a file
/// over the size limit) is a diagnostic naming the file and why.
fn read_file(path: &Path, all: &mut Vec<Diagnostic>) -> Option<String> {
    match input_file::read_text(path, input_file::MAX_YAML_BYTES) {
        Ok(s) => Some(s),
        Err(e) => {
            all.push(Diagnostic {
                severity: Severity::Error,
                file: path.display().to_string().into(),
                line: 0,
                col: 0,
                key: String::new(),
                message: format!("cannot read the file: it {e}"),
            });
            None
        }
    }
}

/// Parses one YAML source; diagnostics go to `all`.
fn parse_source(file: &str, text: &str, all: &mut Vec<Diagnostic>) -> Option<(yaml::Node, Diags)> {
    let mut d = Diags::new(file);
    let node = yaml::parse(text, &mut d);
    if d.has_errors() {
        all.append(&mut d.items);
        return None;
    }
    node.map(|n| (n, d))
}

impl Registry {
    /// Loads what can be loaded: scenario files with errors are left out and their
    /// diagnostics kept in `warnings` (errors included); fails only when the config
    /// or the semantic conventions cannot be used. For `validate`, which reports all.
    pub fn load_collecting(src: &Sources) -> Result<Registry, LoadError> {
        let mut all: Vec<Diagnostic> = Vec::new();

        let (cfg_name, cfg_text) = match &src.config {
            Some(p) => (p.display().to_string(), read_file(p, &mut all)),
            None => (
                "<embedded>/config/config.yaml".to_string(),
                Some(embedded::CONFIG.to_string()),
            ),
        };
        // The predecessor kept resource attributes in a `resource.yaml` beside config.yaml.
        let resource = src.config.as_ref().and_then(|p| {
            let r = p.with_file_name("resource.yaml");
            r.exists()
                .then(|| (r.display().to_string(), read_file(&r, &mut all)))
        });
        let mut config = None;
        if let Some((node, mut d)) = cfg_text.and_then(|t| parse_source(&cfg_name, &t, &mut all)) {
            let res_parsed = resource
                .and_then(|(name, text)| text.and_then(|t| parse_source(&name, &t, &mut all)));
            config = match res_parsed {
                Some((rnode, mut rd)) => {
                    let c = config::load(&node, Some((&rnode, &mut rd)), &mut d);
                    all.append(&mut rd.items);
                    c
                }
                None => config::load(&node, None, &mut d),
            };
            all.append(&mut d.items);
        }

        let (sc_name, sc_text) = match &src.semconv {
            Some(p) => (p.display().to_string(), read_file(p, &mut all)),
            None => (
                "<embedded>/conventions/semconv.yaml".to_string(),
                Some(embedded::SEMCONV.to_string()),
            ),
        };
        let mut semconv = None;
        if let Some((node, mut d)) = sc_text.and_then(|t| parse_source(&sc_name, &t, &mut all)) {
            semconv = semconv::load(&node, &mut d);
            all.append(&mut d.items);
        }

        let mut scenarios = Vec::new();
        if let Some(cfg) = &config {
            // Each file is read when its turn comes, so only one is in memory at a time.
            let files: Vec<(String, String, ScenarioText)> = match &src.scenarios_dir {
                Some(dir) => scenario_files(dir, &mut all)
                    .into_iter()
                    .map(|(name, path)| {
                        (name, path.display().to_string(), ScenarioText::File(path))
                    })
                    .collect(),
                None => embedded::DEFINITIONS
                    .iter()
                    .map(|(name, text)| {
                        (
                            name.to_string(),
                            format!("<embedded>/definitions/{name}.yaml"),
                            ScenarioText::Embedded(text),
                        )
                    })
                    .collect(),
            };
            for (name, file, source) in files {
                let text = match source {
                    ScenarioText::File(p) => read_file(&p, &mut all),
                    ScenarioText::Embedded(t) => Some(t.to_string()),
                };
                let Some(text) = text else { continue };
                if let Some((node, mut d)) = parse_source(&file, &text, &mut all) {
                    // A file with errors is reported and left out; the others still load.
                    if let Some(s) =
                        scenario::load(&node, &name, cfg, &mut d).filter(|_| !d.has_errors())
                    {
                        scenarios.push(s);
                    }
                    all.append(&mut d.items);
                }
            }
            // Registry-only control-plane scenarios belong to the config that declares them:
            // added with the bundled definitions or a config of the user's own, but the bundled
            // config's entries are not mixed into a user's scenarios folder. A file of the same name wins.
            let registry_applies = src.scenarios_dir.is_none() || src.config.is_some();
            for rs in cfg
                .control_plane
                .request_scenarios
                .iter()
                .filter(|_| registry_applies)
            {
                if !scenarios.iter().any(|s| s.name == rs.name) {
                    scenarios.push(ScenarioDef::from_request_scenario(rs, cfg));
                }
            }
            scenarios.sort_by(|a, b| a.name.cmp(&b.name));
        }

        let (Some(config), Some(semconv)) = (config, semconv) else {
            all.sort_by_key(|d| std::cmp::Reverse(d.severity));
            return Err(LoadError { diagnostics: all });
        };
        Ok(Registry {
            config,
            semconv,
            scenarios,
            warnings: all,
        })
    }

    /// Loads everything; any error (in any file) fails the load with every diagnostic.
    pub fn load(src: &Sources) -> Result<Registry, LoadError> {
        let reg = Self::load_collecting(src)?;
        if reg.warnings.iter().any(|d| d.severity == Severity::Error) {
            let mut all = reg.warnings;
            all.sort_by_key(|d| std::cmp::Reverse(d.severity));
            return Err(LoadError { diagnostics: all });
        }
        Ok(reg)
    }

    /// The scenario of this name (hidden ones included).
    pub fn get(&self, name: &str) -> Option<&ScenarioDef> {
        self.scenarios.iter().find(|s| s.name == name)
    }

    /// Scenarios shown by `list` and used by `run`: not hidden, matching any of
    /// `tags` (case-insensitive) when tags are given.
    pub fn filtered(&self, tags: &[String]) -> Vec<&ScenarioDef> {
        let wanted: Vec<String> = tags
            .iter()
            .map(|t| t.trim().to_ascii_lowercase())
            .filter(|t| !t.is_empty())
            .collect();
        self.scenarios
            .iter()
            .filter(|s| !is_hidden(&s.name))
            .filter(|s| {
                wanted.is_empty()
                    || s.tags
                        .iter()
                        .any(|t| wanted.contains(&t.to_ascii_lowercase()))
            })
            .collect()
    }

    /// A helpful message for an unknown scenario name.
    pub fn unknown_scenario(&self, name: &str) -> String {
        let names: Vec<&str> = self.scenarios.iter().map(|s| s.name.as_str()).collect();
        let hint = crate::diag::closest(name, names.iter().copied())
            .map(|c| format!(" Did you mean `{c}`?"))
            .unwrap_or_default();
        format!(
            "unknown scenario `{name}`.{hint} Run `otelsim list` to see the available scenarios."
        )
    }
}

/// Where a scenario's text comes from.
enum ScenarioText {
    /// A file of the scenarios folder, read when its turn comes.
    File(PathBuf),
    /// A definition compiled into the binary.
    Embedded(&'static str),
}

/// Every `*.yaml`/`*.yml` under `dir` (recursively), sorted, as (stem, path).
fn scenario_files(dir: &Path, all: &mut Vec<Diagnostic>) -> Vec<(String, PathBuf)> {
    let mut paths = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    if !dir.is_dir() {
        all.push(Diagnostic {
            severity: Severity::Error,
            file: dir.display().to_string().into(),
            line: 0,
            col: 0,
            key: String::new(),
            message: "scenarios directory does not exist or is not a directory".into(),
        });
        return Vec::new();
    }
    // Canonical paths already walked, so symlink loops are followed once at most.
    let mut seen: std::collections::HashSet<PathBuf> = std::collections::HashSet::new();
    while let Some(d) = stack.pop() {
        match std::fs::canonicalize(&d) {
            Ok(c) => {
                if !seen.insert(c) {
                    continue;
                }
            }
            Err(_) => continue,
        }
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if matches!(p.extension().and_then(|x| x.to_str()), Some("yaml" | "yml")) {
                paths.push(p);
            }
        }
    }
    paths.sort();
    // The same file reached twice (through a symlink) is one scenario.
    let mut seen_files = std::collections::HashSet::new();
    paths.retain(|p| std::fs::canonicalize(p).map_or(true, |c| seen_files.insert(c)));
    let mut out: Vec<(String, PathBuf)> = Vec::new();
    let mut stems: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for p in paths {
        let stem = p
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        if let Some(&first) = stems.get(&stem) {
            let mut d = Diags::new(p.display().to_string());
            d.error(Pos::default(), "", format!("scenario name `{stem}` is already defined by {}; scenario names (file stems) must be unique", out[first].1.display()));
            all.append(&mut d.items);
            continue;
        }
        stems.insert(stem.clone(), out.len());
        out.push((stem, p));
    }
    out
}

/// Weighted random choice among scenarios; weight ≤ 0 is never picked.
#[derive(Clone, Debug)]
pub struct Picker {
    names: Vec<String>,
    cumulative: Vec<f64>,
}

impl Picker {
    /// Fails when no candidate has a positive weight.
    pub fn new(candidates: &[&ScenarioDef]) -> Result<Picker, String> {
        let mut names = Vec::new();
        let mut cumulative = Vec::new();
        let mut acc = 0.0;
        for s in candidates {
            if s.workload_weight > 0.0 {
                acc += s.workload_weight;
                names.push(s.name.clone());
                cumulative.push(acc);
            }
        }
        if names.is_empty() {
            return Err(if candidates.is_empty() {
                "no scenario matches the selection (check --tags and --scenarios-dir; `otelsim list` shows what is loaded)".into()
            } else {
                "every selected scenario has workload_weight ≤ 0, so none can be picked at random; give one a positive weight or use --each-once".into()
            });
        }
        Ok(Picker { names, cumulative })
    }

    /// A picker over `(name, weight)` pairs (a workload schedule's bucket); fails
    /// when no weight is positive.
    pub fn from_weights(weights: Vec<(String, f64)>) -> Result<Picker, String> {
        let mut names = Vec::new();
        let mut cumulative = Vec::new();
        let mut acc = 0.0;
        for (name, w) in weights.into_iter().filter(|(_, w)| *w > 0.0) {
            acc += w;
            names.push(name);
            cumulative.push(acc);
        }
        if names.is_empty() {
            return Err("no scenario with a positive weight".into());
        }
        Ok(Picker { names, cumulative })
    }

    /// A random scenario name, by weight.
    pub fn pick<R: Rng + ?Sized>(&self, rng: &mut R) -> &str {
        self.pick_at(rng.random_range(0.0..1.0))
    }

    /// The scenario at `u` (in 0..1) of the cumulative weights.
    pub fn pick_at(&self, u: f64) -> &str {
        let total = *self.cumulative.last().expect("non-empty");
        let x = u.clamp(0.0, 1.0) * total;
        let i = self
            .cumulative
            .partition_point(|c| *c <= x)
            .min(self.names.len() - 1);
        &self.names[i]
    }
}
