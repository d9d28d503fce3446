//! A small YAML document tree that keeps the line and column of every node.
//!
//! Built from `saphyr-parser` events rather than a serde model so that loaders can
//! report every problem with its exact position, reject duplicate keys, and read
//! the several shapes a key may take (a number or a mapping, a list or a string).

use crate::diag::{closest, Diags, Pos};
use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use std::collections::HashMap;

/// What a node holds; plain scalars are typed the YAML 1.2 core way.
#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    /// `~`, `null` (any case form) or an empty value.
    Null,
    /// `true` or `false` (also `True`, `TRUE` and so on).
    Bool(bool),
    /// A whole number that fits in 64 bits.
    Int(i64),
    /// Any other number, `.inf` and `.nan` included.
    Float(f64),
    /// Quoted text, or plain text that is no other scalar.
    Str(String),
    /// A list, in document order.
    Seq(Vec<Node>),
    /// Entries in document order; keys are the scalar text of the key node.
    Map(Vec<(String, Node)>),
}

/// One value of the document and where it starts.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// Where the value starts.
    pub pos: Pos,
    /// For a mapping value: where its key is (errors about the key point here).
    pub key_pos: Pos,
    /// The value itself.
    pub kind: Kind,
}

impl Node {
    /// "a string", "a list" and so on, for messages.
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            Kind::Null => "null",
            Kind::Bool(_) => "a boolean",
            Kind::Int(_) => "an integer",
            Kind::Float(_) => "a number",
            Kind::Str(_) => "a string",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
        }
    }

    /// The text of a string node (not of a number or boolean).
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Str(s) => Some(s),
            _ => None,
        }
    }

    /// An integer or float node as `f64`.
    pub fn as_f64(&self) -> Option<f64> {
        match self.kind {
            Kind::Int(i) => Some(i as f64),
            Kind::Float(f) => Some(f),
            _ => None,
        }
    }

    /// The entries of a mapping node.
    pub fn as_map(&self) -> Option<&[(String, Node)]> {
        match &self.kind {
            Kind::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The value of `key` in a mapping node, without [`MapReader`]'s bookkeeping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// The scalar's text as a string (numbers and booleans included), for
    /// places where YAML typing should not matter (names, ids).
    pub fn scalar_text(&self) -> Option<String> {
        match &self.kind {
            Kind::Str(s) => Some(s.clone()),
            Kind::Int(i) => Some(i.to_string()),
            Kind::Float(f) => Some(f.to_string()),
            Kind::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
}

/// Parses one YAML document. Syntax errors, duplicate keys and unknown aliases are
/// reported into `diags`; the result is `None` only when nothing usable was parsed.
pub fn parse(source: &str, diags: &mut Diags) -> Option<Node> {
    let mut builder = Builder {
        stack: Vec::new(),
        anchors: HashMap::new(),
        nodes: 0,
        root: None,
        docs: 0,
    };
    let mut parser = Parser::new_from_str(source);
    loop {
        match parser.next_event() {
            None => break,
            Some(Ok((ev, span))) => {
                if let Err((pos, msg)) = builder.on_event(ev, span) {
                    diags.error(pos, "", msg);
                    return None;
                }
            }
            Some(Err(e)) => {
                let m = e.marker();
                diags.error(
                    Pos {
                        line: m.line() as u32,
                        col: m.col() as u32 + 1,
                    },
                    "",
                    format!("YAML syntax error: {}", e.info()),
                );
                return None;
            }
        }
    }
    if builder.docs > 1 {
        diags.error(
            Pos::default(),
            "",
            "the file holds several YAML documents (`---`); put one scenario per file",
        );
    }
    check_duplicates(builder.root.as_ref()?, "", diags);
    builder.root
}

fn check_duplicates(node: &Node, path: &str, diags: &mut Diags) {
    match &node.kind {
        Kind::Map(entries) => {
            let mut seen: HashMap<&str, Pos> = HashMap::new();
            for (k, v) in entries {
                let p = join(path, k);
                if let Some(first) = seen.insert(k.as_str(), v.key_pos) {
                    diags.error(
                        v.key_pos,
                        &p,
                        format!(
                            "duplicate key (first defined on line {}); each key may appear once",
                            first.line
                        ),
                    );
                }
                check_duplicates(v, &p, diags);
            }
        }
        Kind::Seq(items) => {
            for (i, item) in items.iter().enumerate() {
                check_duplicates(item, &format!("{path}[{i}]"), diags);
            }
        }
        _ => {}
    }
}

/// Joins a key path and a key: `a.b` + `c` → `a.b.c`.
pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

enum Frame {
    Seq(Pos, usize, Vec<Node>),
    /// Mapping under construction; `pending` holds a key waiting for its value.
    /// The last field lists keys copied in by a merge key (`<<`), which explicit keys override.
    Map(Pos, usize, Vec<(String, Node)>, Option<Node>, Vec<String>),
}

/// Most nodes a document may expand to (aliases copy their anchor), so a small
/// file of nested aliases cannot exhaust memory.
pub const MAX_NODES: usize = 1_000_000;

fn count_nodes(n: &Node) -> usize {
    1 + match &n.kind {
        Kind::Seq(items) => items.iter().map(count_nodes).sum(),
        Kind::Map(entries) => entries.iter().map(|(_, v)| 1 + count_nodes(v)).sum(),
        _ => 0,
    }
}

struct Builder {
    stack: Vec<Frame>,
    /// Anchored nodes and their sizes in nodes.
    anchors: HashMap<usize, (Node, usize)>,
    nodes: usize,
    root: Option<Node>,
    docs: usize,
}

type BuildResult = Result<(), (Pos, String)>;

fn pos_of(span: Span) -> Pos {
    Pos {
        line: span.start.line() as u32,
        col: span.start.col() as u32 + 1,
    }
}

impl Builder {
    fn on_event(&mut self, ev: Event<'_>, span: Span) -> BuildResult {
        let pos = pos_of(span);
        match ev {
            Event::DocumentStart(_) => self.docs += 1,
            Event::Scalar(text, style, anchor, tag) => {
                let forced_str = tag
                    .as_ref()
                    .is_some_and(|t| t.suffix == "str" || t.suffix.ends_with(":str"));
                let kind = if style == ScalarStyle::Plain && !forced_str {
                    resolve_plain(&text)
                } else {
                    Kind::Str(text.into_owned())
                };
                self.emit(
                    Node {
                        pos,
                        key_pos: pos,
                        kind,
                    },
                    anchor,
                )?;
            }
            Event::SequenceStart(anchor, _) => self.stack.push(Frame::Seq(pos, anchor, Vec::new())),
            Event::SequenceEnd => {
                if let Some(Frame::Seq(p, anchor, items)) = self.stack.pop() {
                    self.emit(
                        Node {
                            pos: p,
                            key_pos: p,
                            kind: Kind::Seq(items),
                        },
                        anchor,
                    )?;
                }
            }
            Event::MappingStart(anchor, _) => {
                self.stack
                    .push(Frame::Map(pos, anchor, Vec::new(), None, Vec::new()))
            }
            Event::MappingEnd => {
                if let Some(Frame::Map(p, anchor, entries, _, _)) = self.stack.pop() {
                    self.emit(
                        Node {
                            pos: p,
                            key_pos: p,
                            kind: Kind::Map(entries),
                        },
                        anchor,
                    )?;
                }
            }
            Event::Alias(id) => {
                let (node, size) = self.anchors.get(&id).cloned().ok_or_else(|| {
                    (
                        pos,
                        "alias refers to an anchor that is not defined".to_string(),
                    )
                })?;
                self.nodes += size;
                if self.nodes > MAX_NODES {
                    return Err((
                        pos,
                        format!(
                            "the document expands to more than {MAX_NODES} nodes through aliases"
                        ),
                    ));
                }
                self.emit(
                    Node {
                        pos,
                        key_pos: pos,
                        ..node
                    },
                    0,
                )?;
            }
            _ => {}
        }
        Ok(())
    }

    fn emit(&mut self, node: Node, anchor: usize) -> BuildResult {
        self.nodes += 1;
        if anchor > 0 {
            let size = count_nodes(&node);
            self.anchors.insert(anchor, (node.clone(), size));
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq(_, _, items)) => items.push(node),
            Some(Frame::Map(_, _, entries, pending, merged)) => match pending.take() {
                None => *pending = Some(node),
                Some(key) => {
                    let key_text = match &key.kind {
                        Kind::Str(s) => s.clone(),
                        Kind::Null => "null".to_string(),
                        other => match key.scalar_text() {
                            Some(t) => t,
                            None => {
                                let _ = other;
                                return Err((
                                    key.pos,
                                    "mapping keys must be plain scalars, not lists or mappings"
                                        .to_string(),
                                ));
                            }
                        },
                    };
                    let mut node = node;
                    node.key_pos = key.pos;
                    if key_text == "<<" {
                        merge_into(entries, node, merged)?;
                    } else if let Some(i) = merged.iter().position(|m| *m == key_text) {
                        merged.remove(i);
                        if let Some(slot) = entries.iter_mut().find(|(k, _)| *k == key_text) {
                            slot.1 = node;
                        }
                    } else {
                        entries.push((key_text, node));
                    }
                }
            },
        }
        Ok(())
    }
}

/// YAML merge keys (`<<: *base`): copy entries that the mapping does not define itself.
fn merge_into(
    entries: &mut Vec<(String, Node)>,
    value: Node,
    merged: &mut Vec<String>,
) -> BuildResult {
    let sources = match value.kind {
        Kind::Map(m) => vec![m],
        Kind::Seq(items) => {
            let mut maps = Vec::new();
            for it in items {
                match it.kind {
                    Kind::Map(m) => maps.push(m),
                    _ => return Err((it.pos, "`<<` merges mappings only".to_string())),
                }
            }
            maps
        }
        _ => return Err((value.pos, "`<<` merges mappings only".to_string())),
    };
    for src in sources {
        for (k, v) in src {
            if !entries.iter().any(|(ek, _)| *ek == k) {
                merged.push(k.clone());
                entries.push((k, v));
            }
        }
    }
    Ok(())
}

/// YAML 1.2 core schema resolution of a plain scalar.
fn resolve_plain(text: &str) -> Kind {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Kind::Null,
        "true" | "True" | "TRUE" => return Kind::Bool(true),
        "false" | "False" | "FALSE" => return Kind::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" => return Kind::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Kind::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Kind::Float(f64::NAN),
        _ => {}
    }
    if let Some(hex) = text.strip_prefix("0x") {
        if let Ok(i) = i64::from_str_radix(hex, 16) {
            return Kind::Int(i);
        }
    }
    if let Some(oct) = text.strip_prefix("0o") {
        if let Ok(i) = i64::from_str_radix(oct, 8) {
            return Kind::Int(i);
        }
    }
    let looks_numeric = text
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E' | '_'))
        && text.chars().any(|c| c.is_ascii_digit());
    if looks_numeric {
        if let Ok(i) = text.parse::<i64>() {
            return Kind::Int(i);
        }
        if let Ok(f) = text.parse::<f64>() {
            return Kind::Float(f);
        }
    }
    Kind::Str(text.to_string())
}

/// Reads a mapping key by key, remembering which keys were read so that
/// `finish` can report the ones nobody asked for, with the list of valid keys.
pub struct MapReader<'a> {
    node: &'a Node,
    path: String,
    entries: &'a [(String, Node)],
    used: Vec<bool>,
    known: Vec<&'static str>,
}

impl<'a> MapReader<'a> {
    /// Returns `None` (after reporting) when `node` is not a mapping.
    pub fn new(node: &'a Node, path: &str, diags: &mut Diags) -> Option<Self> {
        match &node.kind {
            Kind::Map(entries) => Some(MapReader {
                node,
                path: path.to_string(),
                entries,
                used: vec![false; entries.len()],
                known: Vec::new(),
            }),
            Kind::Null => Some(MapReader {
                node,
                path: path.to_string(),
                entries: &[],
                used: Vec::new(),
                known: Vec::new(),
            }),
            _ => {
                diags.error(
                    node.pos,
                    path,
                    format!(
                        "expected a mapping of keys to values, found {}",
                        node.type_name()
                    ),
                );
                None
            }
        }
    }

    /// Where the mapping starts.
    pub fn pos(&self) -> Pos {
        self.node.pos
    }

    /// The mapping's own key path, for diagnostics.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Path of a child key, for diagnostics.
    pub fn sub(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// Gets a key (marking it as known); a null value counts as absent.
    pub fn get(&mut self, key: &'static str) -> Option<&'a Node> {
        self.known.push(key);
        let idx = self.entries.iter().position(|(k, _)| k == key)?;
        self.used[idx] = true;
        let v = &self.entries[idx].1;
        (v.kind != Kind::Null).then_some(v)
    }

    /// Gets the first present key among aliases; returns the alias that matched.
    pub fn get_any(&mut self, keys: &[&'static str]) -> Option<(&'static str, &'a Node)> {
        let mut found = None;
        for k in keys {
            if let Some(v) = self.get(k) {
                if found.is_none() {
                    found = Some((*k, v));
                }
            }
        }
        found
    }

    /// Marks a key as known without reading it (documentation-only keys).
    pub fn ignore(&mut self, key: &'static str) {
        let _ = self.get(key);
    }

    /// All entries, marking them read (for free-form maps such as attributes).
    pub fn rest(&mut self) -> impl Iterator<Item = &'a (String, Node)> + '_ {
        self.entries
            .iter()
            .zip(self.used.iter_mut())
            .filter(|(_, u)| !**u)
            .map(|(e, u)| {
                *u = true;
                e
            })
    }

    /// Reports every key that was never read as unknown, naming the valid ones.
    pub fn finish(self, diags: &mut Diags) {
        let mut known = self.known.clone();
        known.sort_unstable();
        known.dedup();
        for ((k, v), used) in self.entries.iter().zip(&self.used) {
            if *used {
                continue;
            }
            let hint = match closest(k, known.iter().copied()) {
                Some(c) => format!(" (did you mean `{c}`?)"),
                None => String::new(),
            };
            diags.error(
                v.key_pos,
                &join(&self.path, k),
                format!("unknown key{hint}; valid keys here: {}", known.join(", ")),
            );
        }
    }
}

/// Typed scalar readers that report a precise error and return `None` on mismatch.
pub fn read_f64(node: &Node, path: &str, diags: &mut Diags) -> Option<f64> {
    match node.as_f64() {
        Some(v) if v.is_finite() => Some(v),
        Some(_) => {
            diags.error(node.pos, path, "expected a finite number");
            None
        }
        None => {
            diags.error(
                node.pos,
                path,
                format!("expected a number, found {}", describe(node)),
            );
            None
        }
    }
}

/// A number from 0 to 1.
pub fn read_prob(node: &Node, path: &str, diags: &mut Diags) -> Option<f64> {
    let v = read_f64(node, path, diags)?;
    if !(0.0..=1.0).contains(&v) {
        diags.error(
            node.pos,
            path,
            format!("probability {v} is outside [0, 1]; use a value between 0 and 1"),
        );
        return None;
    }
    Some(v)
}

/// A finite number ≥ 0.
pub fn read_non_negative(node: &Node, path: &str, diags: &mut Diags) -> Option<f64> {
    let v = read_f64(node, path, diags)?;
    if v < 0.0 {
        diags.error(
            node.pos,
            path,
            format!("{v} is negative; expected a value ≥ 0"),
        );
        return None;
    }
    Some(v)
}

/// A whole number ≥ 0; a float with no fraction (`3.0`) is accepted.
pub fn read_u64(node: &Node, path: &str, diags: &mut Diags) -> Option<u64> {
    match node.kind {
        Kind::Int(i) if i >= 0 => Some(i as u64),
        Kind::Float(f) if f >= 0.0 && f.fract() == 0.0 && f < 1e15 => Some(f as u64),
        _ => {
            diags.error(
                node.pos,
                path,
                format!("expected a whole number ≥ 0, found {}", describe(node)),
            );
            None
        }
    }
}

/// `true` or `false` only (no `yes`/`no`).
pub fn read_bool(node: &Node, path: &str, diags: &mut Diags) -> Option<bool> {
    match node.kind {
        Kind::Bool(b) => Some(b),
        _ => {
            diags.error(
                node.pos,
                path,
                format!("expected true or false, found {}", describe(node)),
            );
            None
        }
    }
}

/// A string; numbers are accepted and converted, since ids like `001` are common.
pub fn read_str(node: &Node, path: &str, diags: &mut Diags) -> Option<String> {
    match &node.kind {
        Kind::Str(s) => Some(s.clone()),
        Kind::Int(_) | Kind::Float(_) | Kind::Bool(_) => node.scalar_text(),
        _ => {
            diags.error(
                node.pos,
                path,
                format!("expected a string, found {}", describe(node)),
            );
            None
        }
    }
}

/// A list of strings; a single string is accepted as a one-element list.
pub fn read_str_list(node: &Node, path: &str, diags: &mut Diags) -> Vec<String> {
    match &node.kind {
        Kind::Seq(items) => items
            .iter()
            .enumerate()
            .filter_map(|(i, it)| read_str(it, &format!("{path}[{i}]"), diags))
            .collect(),
        Kind::Str(_) => read_str(node, path, diags).into_iter().collect(),
        Kind::Null => Vec::new(),
        _ => {
            diags.error(
                node.pos,
                path,
                format!("expected a list of strings, found {}", describe(node)),
            );
            Vec::new()
        }
    }
}

/// Short description of a node for error messages: its type and, for scalars, its value.
pub fn describe(node: &Node) -> String {
    match &node.kind {
        Kind::Str(s) => format!("the string {s:?}"),
        Kind::Int(i) => format!("the integer {i}"),
        Kind::Float(f) => format!("the number {f}"),
        Kind::Bool(b) => format!("the boolean {b}"),
        _ => node.type_name().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(src: &str) -> (Option<Node>, Diags) {
        let mut d = Diags::new("t.yaml");
        let n = parse(src, &mut d);
        (n, d)
    }

    #[test]
    fn scalars_resolve_like_yaml_core_schema() {
        let (n, d) = load("a: 1\nb: 1.5\nc: true\nd: 'true'\ne: ~\nf: text\ng: 0x10\n");
        assert!(d.items.is_empty());
        let n = n.unwrap();
        assert_eq!(n.get("a").unwrap().kind, Kind::Int(1));
        assert_eq!(n.get("b").unwrap().kind, Kind::Float(1.5));
        assert_eq!(n.get("c").unwrap().kind, Kind::Bool(true));
        assert_eq!(n.get("d").unwrap().kind, Kind::Str("true".into()));
        assert_eq!(n.get("e").unwrap().kind, Kind::Null);
        assert_eq!(n.get("g").unwrap().kind, Kind::Int(16));
    }

    #[test]
    fn positions_are_one_based_lines() {
        let (n, _) = load("a:\n  b: 3\n");
        let b = n.unwrap().get("a").unwrap().get("b").unwrap().clone();
        assert_eq!(b.pos.line, 2);
    }

    #[test]
    fn duplicate_keys_are_errors_with_both_lines() {
        let (_, d) = load("a: 1\nb: 2\na: 3\n");
        assert_eq!(d.items.len(), 1);
        assert!(d.items[0].message.contains("line 1"), "{}", d.items[0]);
        assert_eq!(d.items[0].line, 3);
    }

    #[test]
    fn syntax_errors_carry_a_line() {
        let (n, d) = load("a: [1, 2\nb: 3\n");
        assert!(n.is_none());
        assert!(d.items[0].line >= 1);
        assert!(d.items[0].message.contains("YAML syntax error"));
    }

    #[test]
    fn anchors_aliases_and_merge_keys() {
        let (n, d) = load("base: &b {x: 1, y: 2}\nderived:\n  <<: *b\n  y: 3\n");
        assert!(d.items.is_empty(), "{:?}", d.items);
        let n = n.unwrap();
        let derived = n.get("derived").unwrap();
        assert_eq!(derived.get("x").unwrap().kind, Kind::Int(1));
        assert_eq!(derived.get("y").unwrap().kind, Kind::Int(3));
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut src = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..8 {
            let prev = format!("*a{}", i - 1);
            src.push_str(&format!("a{i}: &a{i} [{}]\n", vec![prev; 10].join(", ")));
        }
        let (n, d) = load(&src);
        assert!(n.is_none());
        assert!(
            d.items[0].message.contains("expands to more than"),
            "{:?}",
            d.items
        );
    }

    #[test]
    fn unknown_keys_are_reported_with_suggestion() {
        let (n, _) = load("latncy: 3\nname: x\n");
        let n = n.unwrap();
        let mut d = Diags::new("t.yaml");
        let mut r = MapReader::new(&n, "root", &mut d).unwrap();
        r.get("latency");
        r.get("name");
        r.finish(&mut d);
        assert_eq!(d.items.len(), 1);
        assert!(d.items[0].message.contains("did you mean `latency`"));
        assert_eq!(d.items[0].key, "root.latncy");
    }
}
