//! `--show-spans` / `--show-full-spans`: each trace printed as a tree.

use crate::record::{LogRecord, SpanRecord, StatusCode, TraceRecord};
use std::collections::HashMap;
use std::fmt::Write as _;

/// How much of each trace to print.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Print nothing.
    Off,
    /// One line per span: name, duration, status.
    Tree,
    /// Tree plus every attribute and event.
    Full,
}

impl Mode {
    /// The mode the two flags ask for; `--show-full-spans` wins.
    pub fn from_flags(show_spans: bool, show_full: bool) -> Mode {
        if show_full {
            Mode::Full
        } else if show_spans {
            Mode::Tree
        } else {
            Mode::Off
        }
    }
}

fn status(s: &SpanRecord) -> String {
    match s.status {
        StatusCode::Error => format!("ERROR ({})", s.status_message.as_deref().unwrap_or("")),
        StatusCode::Ok => "OK".into(),
        StatusCode::Unset => "ok".into(),
    }
}

/// Renders one trace; children are ordered by start time. In `Full` mode the
/// log records of each span (from `logs`) are printed under it.
pub fn render_trace(t: &TraceRecord, mode: Mode, logs: &[LogRecord]) -> String {
    let mut out = String::new();
    let session = t.spans.first().and_then(|s| {
        s.attrs
            .iter()
            .find(|(k, _)| k.ends_with(".session.id"))
            .map(|(_, v)| v.to_string())
    });
    let _ = writeln!(
        out,
        "trace {} · {} · {} spans{}",
        hex::encode(t.trace_id),
        t.scenario,
        t.spans.len(),
        session
            .map(|s| format!(" · session {s}"))
            .unwrap_or_default()
    );
    let mut children: HashMap<[u8; 8], Vec<usize>> = HashMap::new();
    let mut roots = Vec::new();
    for (i, s) in t.spans.iter().enumerate() {
        match s.parent_span_id {
            Some(p) if t.spans.iter().any(|x| x.span_id == p) => {
                children.entry(p).or_default().push(i)
            }
            _ => roots.push(i),
        }
    }
    for v in children.values_mut() {
        v.sort_by_key(|&i| t.spans[i].start_ns);
    }
    let origin = roots
        .iter()
        .map(|&i| t.spans[i].start_ns)
        .min()
        .unwrap_or(0);
    let mut p = Printer {
        t,
        children,
        origin,
        mode,
        logs,
        out,
    };
    for (n, &r) in roots.iter().enumerate() {
        p.walk(r, "", n + 1 == roots.len());
    }
    p.out
}

/// Walks a trace's tree depth-first, writing one block per span.
struct Printer<'a> {
    t: &'a TraceRecord,
    children: HashMap<[u8; 8], Vec<usize>>,
    origin: u64,
    mode: Mode,
    logs: &'a [LogRecord],
    out: String,
}

impl Printer<'_> {
    fn walk(&mut self, i: usize, indent: &str, last: bool) {
        let s = &self.t.spans[i];
        let origin = self.origin;
        let branch = if last { "└─ " } else { "├─ " };
        let _ = writeln!(
            self.out,
            "{indent}{branch}{}  {:.1} ms  +{:.1} ms  {}  {}",
            s.name,
            s.duration_ns() as f64 / 1e6,
            s.start_ns.saturating_sub(origin) as f64 / 1e6,
            s.kind.as_str().to_ascii_lowercase(),
            status(s)
        );
        let child_indent = format!("{indent}{}", if last { "   " } else { "│  " });
        if self.mode == Mode::Full {
            for (k, v) in &s.attrs {
                let _ = writeln!(self.out, "{child_indent}    {k} = {v}");
            }
            for e in &s.events {
                let attrs: Vec<String> = e.attrs.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let _ = writeln!(
                    self.out,
                    "{child_indent}    event {} at +{:.1} ms {}",
                    e.name,
                    e.time_ns.saturating_sub(origin) as f64 / 1e6,
                    attrs.join(" ")
                );
            }
            for l in self
                .logs
                .iter()
                .filter(|l| l.span_id == s.span_id && l.trace_id == self.t.trace_id)
            {
                let _ = writeln!(
                    self.out,
                    "{child_indent}    log {} at +{:.1} ms: {}",
                    l.severity.text(),
                    l.time_ns.saturating_sub(origin) as f64 / 1e6,
                    l.body
                );
            }
        }
        let kids = self.children.get(&s.span_id).cloned().unwrap_or_default();
        for (n, &c) in kids.iter().enumerate() {
            self.walk(c, &child_indent, n + 1 == kids.len());
        }
    }
}
