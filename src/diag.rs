//! Diagnostics: problems found in user input, each pinned to a file, a line and a key path.
//!
//! Loaders collect every problem instead of stopping at the first one, so that
//! `otelsim validate` can list them all in one go.

use std::fmt;
use std::sync::Arc;

/// How bad a problem is; errors sort after warnings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Reported, but the input still loads.
    Warning,
    /// The input is refused.
    Error,
}

/// One problem in one input file.
#[derive(Clone, Debug)]
pub struct Diagnostic {
    /// Whether it stops the load.
    pub severity: Severity,
    /// The file, as the user named it.
    pub file: Arc<str>,
    /// 1-based line; 0 when the problem is with the whole file.
    pub line: u32,
    /// 1-based column; 0 with a line of 0.
    pub col: u32,
    /// Dotted path of the offending key, e.g. `root.children[1].latency.sigma`.
    pub key: String,
    /// What is wrong, and a hint where there is one.
    pub message: String,
    /// A key no reader knows: a warning in a scenario file (it may be a newer or older
    /// tool's key), which `otelsim validate --strict` makes an error.
    pub unknown_key: bool,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        if self.line > 0 {
            write!(f, "{}:{}:{}: {level}: ", self.file, self.line, self.col)?;
        } else {
            write!(f, "{}: {level}: ", self.file)?;
        }
        if self.key.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "key `{}`: {}", self.key, self.message)
        }
    }
}

/// A position in a source file (1-based; 0 means "whole file").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pos {
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub col: u32,
}

/// Most diagnostics kept for one file; past it they are counted in one closing
/// line, so a file of a million bad keys cannot flood memory or the terminal.
pub const MAX_DIAGNOSTICS_PER_FILE: usize = 200;

/// Collects diagnostics for one file.
#[derive(Debug)]
pub struct Diags {
    /// The file every diagnostic here is about.
    pub file: Arc<str>,
    /// Everything found so far, in the order found (at most
    /// [`MAX_DIAGNOSTICS_PER_FILE`], then one line counting the rest).
    pub items: Vec<Diagnostic>,
    /// Diagnostics counted but not kept.
    dropped: usize,
    /// How bad an unknown key is here: an error unless the file's reader says
    /// otherwise (scenario files make it a warning).
    pub unknown_keys: Severity,
}

impl Diags {
    /// An empty collector for `file`.
    pub fn new(file: impl Into<Arc<str>>) -> Self {
        Diags {
            file: file.into(),
            items: Vec::new(),
            dropped: 0,
            unknown_keys: Severity::Error,
        }
    }

    /// Records a problem that refuses the input.
    pub fn error(&mut self, pos: Pos, key: &str, message: impl Into<String>) {
        self.push(Severity::Error, false, None, pos, key, message.into());
    }

    /// Records a problem that is only reported.
    pub fn warn(&mut self, pos: Pos, key: &str, message: impl Into<String>) {
        self.push(Severity::Warning, false, None, pos, key, message.into());
    }

    /// Records a key nobody reads, as [`Diags::unknown_keys`] says.
    pub fn unknown_key(&mut self, pos: Pos, key: &str, message: impl Into<String>) {
        self.push(self.unknown_keys, true, None, pos, key, message.into());
    }

    /// Records a problem that refuses the input, found while checking this file
    /// but written in another (a config.yaml workflow a scenario uses).
    pub fn error_in(&mut self, file: &str, pos: Pos, key: &str, message: impl Into<String>) {
        self.push(Severity::Error, false, Some(file), pos, key, message.into());
    }

    fn push(
        &mut self,
        severity: Severity,
        unknown_key: bool,
        file: Option<&str>,
        pos: Pos,
        key: &str,
        message: String,
    ) {
        if self.items.len() >= MAX_DIAGNOSTICS_PER_FILE {
            // The last item counts what was left out; it is as severe as the worst of it.
            self.dropped += 1;
            let message = format!(
                "{} more problem(s) in this file are not listed (at most {MAX_DIAGNOSTICS_PER_FILE} are); fix the ones above first",
                self.dropped
            );
            if self.dropped == 1 {
                self.items.push(Diagnostic {
                    severity,
                    file: self.file.clone(),
                    line: 0,
                    col: 0,
                    key: String::new(),
                    message,
                    // Stands for problems of every kind, so no single one.
                    unknown_key: false,
                });
            } else if let Some(last) = self.items.last_mut() {
                last.severity = last.severity.max(severity);
                last.message = message;
            }
            return;
        }
        self.items.push(Diagnostic {
            severity,
            file: file.map_or_else(|| self.file.clone(), Arc::from),
            line: pos.line,
            col: pos.col,
            key: key.to_string(),
            message,
            unknown_key,
        });
    }

    /// Whether anything recorded so far refuses the input.
    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }
}

/// The error type of a load that found problems: every diagnostic, errors first.
#[derive(Debug)]
pub struct LoadError {
    /// Every problem found, in every file, warnings included.
    pub diagnostics: Vec<Diagnostic>,
}

impl LoadError {
    /// The diagnostics that refused the input, without the warnings.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.errors().count();
        writeln!(f, "{n} problem(s) in the input files:")?;
        for d in self.errors() {
            writeln!(f, "  {d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for LoadError {}

/// Longest word a "did you mean" hint is looked for (the edit distance is quadratic).
const MAX_HINT_LEN: usize = 128;

/// Edit distance, for "did you mean" hints on unknown keys and names.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    if word.len() > MAX_HINT_LEN {
        return None;
    }
    let chars = word.chars().count();
    let mut best: Option<(usize, &'a str)> = None;
    for c in candidates {
        let limit = (word.len().max(c.len()) / 3).max(2);
        // The distance is at least the difference in length: skip what cannot match.
        if c.len() > MAX_HINT_LEN || chars.abs_diff(c.chars().count()) > limit {
            continue;
        }
        let d = levenshtein(word, c);
        if d <= limit && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_suggests_near_misses_only() {
        let keys = ["latency", "children", "attributes"];
        assert_eq!(closest("latncy", keys), Some("latency"));
        assert_eq!(closest("chldren", keys), Some("children"));
        assert_eq!(closest("zzz", keys), None);
    }

    #[test]
    fn hints_skip_long_words_quickly() {
        let long = "k".repeat(1_000_000);
        let started = std::time::Instant::now();
        assert_eq!(closest(&long, ["latency", "children"]), None);
        assert_eq!(closest("latency", [long.as_str()]), None);
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn a_flood_of_problems_is_capped_and_counted_keeping_the_worst_severity() {
        let mut d = Diags::new("a.yaml");
        for _ in 0..MAX_DIAGNOSTICS_PER_FILE {
            d.warn(Pos::default(), "k", "w");
        }
        assert!(!d.has_errors());
        for _ in 0..1000 {
            d.warn(Pos::default(), "k", "w");
        }
        d.error(Pos::default(), "k", "e");
        assert_eq!(d.items.len(), MAX_DIAGNOSTICS_PER_FILE + 1);
        let last = d.items.last().unwrap();
        assert!(last.message.starts_with("1001 more problem(s)"), "{last}");
        assert!(d.has_errors(), "a dropped error still refuses the file");
    }

    #[test]
    fn display_names_file_line_and_key() {
        let mut d = Diags::new("defs/a.yaml");
        d.error(Pos { line: 3, col: 5 }, "root.latency", "bad");
        assert_eq!(
            d.items[0].to_string(),
            "defs/a.yaml:3:5: error: key `root.latency`: bad"
        );
    }
}
