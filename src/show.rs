//! `--show-spans` / `--show-full-spans`: each trace printed as a tree.

use crate::record::{SpanRecord, StatusCode, TraceRecord};
use std::collections::HashMap;
use std::fmt::Write as _;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Off,
    /// One line per span: name, duration, status.
    Tree,
    /// Tree plus every attribute and event.
    Full,
}

impl Mode {
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

/// Renders one trace; children are ordered by start time.
pub fn render_trace(t: &TraceRecord, mode: Mode) -> String {
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
    for (n, &r) in roots.iter().enumerate() {
        walk(
            t,
            r,
            "",
            n + 1 == roots.len(),
            &children,
            origin,
            mode,
            &mut out,
        );
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn walk(
    t: &TraceRecord,
    i: usize,
    indent: &str,
    last: bool,
    children: &HashMap<[u8; 8], Vec<usize>>,
    origin: u64,
    mode: Mode,
    out: &mut String,
) {
    let s = &t.spans[i];
    let branch = if last { "└─ " } else { "├─ " };
    let _ = writeln!(
        out,
        "{indent}{branch}{}  {:.1} ms  +{:.1} ms  {}  {}",
        s.name,
        s.duration_ns() as f64 / 1e6,
        s.start_ns.saturating_sub(origin) as f64 / 1e6,
        s.kind.as_str().to_ascii_lowercase(),
        status(s)
    );
    let child_indent = format!("{indent}{}", if last { "   " } else { "│  " });
    if mode == Mode::Full {
        for (k, v) in &s.attrs {
            let _ = writeln!(out, "{child_indent}    {k} = {v}");
        }
        for e in &s.events {
            let attrs: Vec<String> = e.attrs.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let _ = writeln!(
                out,
                "{child_indent}    event {} at +{:.1} ms {}",
                e.name,
                e.time_ns.saturating_sub(origin) as f64 / 1e6,
                attrs.join(" ")
            );
        }
    }
    if let Some(kids) = children.get(&s.span_id) {
        for (n, &c) in kids.iter().enumerate() {
            walk(
                t,
                c,
                &child_indent,
                n + 1 == kids.len(),
                children,
                origin,
                mode,
                out,
            );
        }
    }
}
