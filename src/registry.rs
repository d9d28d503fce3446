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
    /// Diagnostics of the inputs that loaded: warnings, and errors of config.yaml, the
    /// conventions or the scenarios folder (which [`Registry::load_collecting`] leaves to
    /// its caller). The skipped files keep theirs in [`Registry::skipped`].
    pub diagnostics: Vec<Diagnostic>,
    /// Scenario files left out because they have errors, in file order.
    pub skipped: Vec<Skipped>,
    /// How many scenario files there were (found in the folder, or embedded), skipped
    /// ones included.
    pub scenario_files: usize,
    /// Names of the scenarios config.yaml declares (`control_plane.request_scenarios`)
    /// that no file replaces: their problems are config.yaml's.
    pub declared_in_config: Vec<String>,
}

/// A scenario file left out of the load because it has errors.
#[derive(Clone, Debug)]
pub struct Skipped {
    /// The scenario's name (the file stem).
    pub name: String,
    /// The file, as the user named it.
    pub file: String,
    /// The first error found in the file: what the skip report shows.
    pub error: Diagnostic,
    /// Every diagnostic of the file, for `validate`.
    pub diagnostics: Vec<Diagnostic>,
}

impl Skipped {
    /// A file left out with its diagnostics (of which one at least is an error).
    pub fn new(name: String, file: String, diagnostics: Vec<Diagnostic>) -> Skipped {
        let error = diagnostics
            .iter()
            .find(|d| d.severity == Severity::Error)
            .cloned()
            .unwrap_or_else(|| Diagnostic {
                severity: Severity::Error,
                file: file.as_str().into(),
                line: 0,
                col: 0,
                key: String::new(),
                message: "the file could not be loaded".into(),
                unknown_key: false,
            });
        Skipped {
            name,
            file,
            error,
            diagnostics,
        }
    }
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
                unknown_key: false,
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
    /// Loads what can be loaded: a scenario file with errors is left out (see
    /// [`Registry::skipped`]) and the others still load. Fails only when the config or
    /// the semantic conventions cannot be used at all; errors in them that still let
    /// them load are in [`Registry::diagnostics`], for the caller to refuse (see
    /// [`Registry::shared_errors`]), so that `validate` can report every file.
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
        let mut skipped = Vec::new();
        let mut scenario_files = 0;
        let mut declared_in_config = Vec::new();
        if let Some(cfg) = &config {
            // Each file is read when its turn comes, so only one is in memory at a time.
            let files: Vec<(String, String, ScenarioText)> = match &src.scenarios_dir {
                Some(dir) => scenario_files_in(dir, &mut all, &mut skipped)
                    .into_iter()
                    .map(|(name, path)| {
                        (name, path.display().to_string(), ScenarioText::File(path))
                    })
                    .collect(),
                None => embedded::DEFINITIONS
                    .iter()
                    .zip(embedded::DEFINITION_PATHS)
                    .map(|((name, text), path)| {
                        (
                            name.to_string(),
                            format!("<embedded>/definitions/{path}"),
                            ScenarioText::Embedded(text),
                        )
                    })
                    .collect(),
            };
            scenario_files = files.len() + skipped.len();
            for (name, file, source) in files {
                // A file with errors is left out with its diagnostics; the others still load.
                let mut d = Vec::new();
                let loaded = match source {
                    ScenarioText::File(p) => read_file(&p, &mut d),
                    ScenarioText::Embedded(t) => Some(t.to_string()),
                }
                .and_then(|text| parse_source(&file, &text, &mut d))
                .and_then(|(node, mut fd)| {
                    let s = scenario::load(&node, &name, cfg, &mut fd);
                    let ok = !fd.has_errors();
                    d.append(&mut fd.items);
                    s.filter(|_| ok)
                });
                match loaded {
                    Some(s) => {
                        scenarios.push(s);
                        all.append(&mut d);
                    }
                    None => skipped.push(Skipped::new(name, file, d)),
                }
            }
            // Registry-only control-plane scenarios belong to the config that declares them:
            // added with the bundled definitions or a config of the user's own, but the bundled
            // config's entries are not mixed into a user's scenarios folder. A file of the same
            // name wins, even a skipped one.
            let registry_applies = src.scenarios_dir.is_none() || src.config.is_some();
            for rs in cfg
                .control_plane
                .request_scenarios
                .iter()
                .filter(|_| registry_applies)
            {
                let taken = |n: &str| n == rs.name;
                if !scenarios.iter().any(|s| taken(&s.name))
                    && !skipped.iter().any(|s| taken(&s.name))
                {
                    scenarios.push(ScenarioDef::from_request_scenario(rs, cfg));
                    declared_in_config.push(rs.name.clone());
                }
            }
            scenarios.sort_by(|a, b| a.name.cmp(&b.name));
            skipped.sort_by(|a, b| a.file.cmp(&b.file));
        }

        let (Some(config), Some(semconv)) = (config, semconv) else {
            all.extend(skipped.into_iter().flat_map(|s| s.diagnostics));
            all.sort_by_key(|d| std::cmp::Reverse(d.severity));
            return Err(LoadError { diagnostics: all });
        };
        Ok(Registry {
            config,
            semconv,
            scenarios,
            diagnostics: all,
            skipped,
            scenario_files,
            declared_in_config,
        })
    }

    /// Loads everything; any error (in any file) fails the load with every diagnostic.
    pub fn load(src: &Sources) -> Result<Registry, LoadError> {
        let reg = Self::load_collecting(src)?;
        if reg.shared_errors() || !reg.skipped.is_empty() {
            return Err(LoadError {
                diagnostics: reg.all_diagnostics(),
            });
        }
        Ok(reg)
    }

    /// Whether the inputs every scenario needs (config.yaml, the conventions, the
    /// scenarios folder) have errors: then nothing may run.
    pub fn shared_errors(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error)
    }

    /// Every diagnostic, the skipped files' included, errors first.
    pub fn all_diagnostics(&self) -> Vec<Diagnostic> {
        let mut all = self.diagnostics.clone();
        all.extend(
            self.skipped
                .iter()
                .flat_map(|s| s.diagnostics.iter().cloned()),
        );
        all.sort_by_key(|d| std::cmp::Reverse(d.severity));
        all
    }

    /// The skipped scenario file of this name, if any.
    pub fn skipped(&self, name: &str) -> Option<&Skipped> {
        self.skipped.iter().find(|s| s.name == name)
    }

    /// The scenario of this name (hidden ones included).
    pub fn get(&self, name: &str) -> Option<&ScenarioDef> {
        self.scenarios.iter().find(|s| s.name == name)
    }

    /// Scenarios `run` picks from: not hidden, matching any of `tags`
    /// (case-insensitive) when tags are given; without tags, opt-in pack scenarios
    /// are left out so the default mix stays the agent mix.
    pub fn filtered(&self, tags: &[String]) -> Vec<&ScenarioDef> {
        let untagged = tags.iter().all(|t| t.trim().is_empty());
        self.listed(tags)
            .into_iter()
            .filter(|s| !(untagged && s.opt_in))
            .collect()
    }

    /// Scenarios `list` shows: not hidden, matching any of `tags`
    /// (case-insensitive) when tags are given; opt-in ones included.
    pub fn listed(&self, tags: &[String]) -> Vec<&ScenarioDef> {
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

    /// Why no scenario of this name is loaded: its file was skipped (and the first
    /// error why), or there is none (with the nearest name).
    pub fn missing_scenario(&self, name: &str) -> String {
        if let Some(sk) = self.skipped(name) {
            return format!(
                "scenario `{name}` was skipped because its file has errors; the first: {} (`otelsim validate` lists every problem)",
                sk.error
            );
        }
        let names: Vec<&str> = self.scenarios.iter().map(|s| s.name.as_str()).collect();
        let hint = crate::diag::closest(name, names.iter().copied())
            .map(|c| format!(" Did you mean `{c}`?"))
            .unwrap_or_default();
        format!(
            "unknown scenario `{name}`.{hint} Run `otelsim list` to see the available scenarios."
        )
    }

    /// What to add to "no scenario matches" when files were skipped: they might have.
    pub fn skip_note(&self) -> String {
        match self.skipped.len() {
            0 => String::new(),
            n => format!(
                " ({n} scenario file(s) with errors were skipped; `otelsim validate` lists every problem)"
            ),
        }
    }
}

/// Where a scenario's text comes from.
enum ScenarioText {
    /// A file of the scenarios folder, read when its turn comes.
    File(PathBuf),
    /// A definition compiled into the binary.
    Embedded(&'static str),
}

/// Every `*.yaml`/`*.yml` under `dir` (recursively), sorted, as (stem, path). A
/// folder that cannot be walked is an error in `all`; a second file of the same
/// stem is skipped.
fn scenario_files_in(
    dir: &Path,
    all: &mut Vec<Diagnostic>,
    skipped: &mut Vec<Skipped>,
) -> Vec<(String, PathBuf)> {
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
            unknown_key: false,
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
            let file = p.display().to_string();
            let mut d = Diags::new(file.as_str());
            d.error(Pos::default(), "", format!("scenario name `{stem}` is already defined by {}; scenario names (file stems) must be unique", out[first].1.display()));
            skipped.push(Skipped::new(stem, file, d.items));
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
