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

/// Collects diagnostics for one file.
#[derive(Debug)]
pub struct Diags {
    /// The file every diagnostic here is about.
    pub file: Arc<str>,
    /// Everything found so far, in the order found.
    pub items: Vec<Diagnostic>,
}

impl Diags {
    /// An empty collector for `file`.
    pub fn new(file: impl Into<Arc<str>>) -> Self {
        Diags {
            file: file.into(),
            items: Vec::new(),
        }
    }

    /// Records a problem that refuses the input.
    pub fn error(&mut self, pos: Pos, key: &str, message: impl Into<String>) {
        self.push(Severity::Error, pos, key, message.into());
    }

    /// Records a problem that is only reported.
    pub fn warn(&mut self, pos: Pos, key: &str, message: impl Into<String>) {
        self.push(Severity::Warning, pos, key, message.into());
    }

    fn push(&mut self, severity: Severity, pos: Pos, key: &str, message: String) {
        self.items.push(Diagnostic {
            severity,
            file: self.file.clone(),
            line: pos.line,
            col: pos.col,
            key: key.to_string(),
            message,
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

/// Edit distance, for "did you mean" hints on unknown keys and names.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let mut best: Option<(usize, &'a str)> = None;
    for c in candidates {
        let d = levenshtein(word, c);
        let limit = (word.len().max(c.len()) / 3).max(2);
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
    fn display_names_file_line_and_key() {
        let mut d = Diags::new("defs/a.yaml");
        d.error(Pos { line: 3, col: 5 }, "root.latency", "bad");
        assert_eq!(
            d.items[0].to_string(),
            "defs/a.yaml:3:5: error: key `root.latency`: bad"
        );
    }
}
