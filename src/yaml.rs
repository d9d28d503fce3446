//! A small YAML document tree that keeps the line and column of every node.
//!
//! Built from `saphyr-parser` events rather than a serde model so that loaders can
//! report every problem with its exact position, reject duplicate keys, and read
//! the several shapes a key may take (a number or a mapping, a list or a string).

use crate::diag::{closest, Diags, Pos};
use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use std::collections::{HashMap, HashSet};

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

/// Deepest nesting of lists and mappings a document may have. Real files stay
/// under 20; the limit keeps every walk over the tree (and the tree's own drop)
/// far from the stack's end.
pub const MAX_DEPTH: usize = 128;

/// Most memory a parsed document may take (each node and its text; an alias
/// counts its anchor again every time it is used), so a small file of aliases
/// cannot exhaust memory.
pub const MAX_DOCUMENT_BYTES: usize = 32 << 20;

/// What one node costs in the tree, besides its text: a mapping entry's size
/// (the key's `String` and the node), the larger of the two shapes.
const NODE_COST: usize = std::mem::size_of::<(String, Node)>();

/// What `node` costs in memory, counted as the parser counts it against
/// [`MAX_DOCUMENT_BYTES`] (for readers that copy nodes).
pub fn cost(node: &Node) -> usize {
    let mut total = 0usize;
    let mut todo = vec![node];
    while let Some(n) = todo.pop() {
        total = total.saturating_add(NODE_COST + text_len(&n.kind));
        match &n.kind {
            Kind::Seq(items) => todo.extend(items),
            Kind::Map(entries) => {
                for (k, v) in entries {
                    total = total.saturating_add(k.len());
                    todo.push(v);
                }
            }
            _ => {}
        }
    }
    total
}

/// Parses one YAML document. Syntax errors, duplicate keys, unknown aliases, NUL
/// bytes, nesting deeper than [`MAX_DEPTH`], documents over [`MAX_DOCUMENT_BYTES`]
/// and empty documents are reported into `diags`; the result is `None` only when
/// nothing usable was parsed. A leading byte-order mark is skipped.
pub fn parse(source: &str, diags: &mut Diags) -> Option<Node> {
    let source = source.strip_prefix('\u{feff}').unwrap_or(source);
    if let Some(at) = source.find('\0') {
        diags.error(
            pos_at(source, at),
            "",
            "the file contains a NUL byte, which YAML text cannot hold (is it a binary file?)",
        );
        return None;
    }
    let mut builder = Builder {
        stack: Vec::new(),
        anchors: HashMap::new(),
        bytes: 0,
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
    let root = match builder.root {
        Some(n) if n.kind != Kind::Null => n,
        _ => {
            diags.error(
                Pos::default(),
                "",
                "the file is empty (no YAML content, or only comments); expected a mapping of keys to values",
            );
            return None;
        }
    };
    check_duplicates(&root, diags);
    Some(root)
}

/// The line and column of byte `at` of `source`.
fn pos_at(source: &str, at: usize) -> Pos {
    let before = &source[..at];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    Pos {
        line: 1 + before.matches('\n').count() as u32,
        col: 1 + before[line_start..].chars().count() as u32,
    }
}

/// One step of a key path: a mapping key or a list index.
#[derive(Clone, Copy)]
enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

/// The dotted path of `segs` (`a.b[2].c`), built only when a problem is reported.
fn path_of(segs: &[Seg<'_>]) -> String {
    let mut out = String::new();
    for s in segs {
        match s {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Reports every key defined twice in one mapping, in document order. Walks the
/// tree with its own stack, so no document can exhaust the thread's.
fn check_duplicates(root: &Node, diags: &mut Diags) {
    // (depth, how the node is reached, the node, the line of the key's first
    // definition when this entry repeats it).
    let mut todo: Vec<(usize, Option<Seg<'_>>, &Node, Option<u32>)> = vec![(0, None, root, None)];
    let mut path: Vec<Seg<'_>> = Vec::new();
    while let Some((depth, seg, node, first_line)) = todo.pop() {
        path.truncate(depth.saturating_sub(1));
        path.extend(seg);
        if let Some(first) = first_line {
            diags.error(
                node.key_pos,
                &path_of(&path),
                format!("duplicate key (first defined on line {first}); each key may appear once"),
            );
        }
        match &node.kind {
            Kind::Map(entries) => {
                let mut seen: HashMap<&str, Pos> = HashMap::with_capacity(entries.len());
                let mut children = Vec::with_capacity(entries.len());
                for (k, v) in entries {
                    let first = seen.insert(k.as_str(), v.key_pos).map(|p| p.line);
                    children.push((depth + 1, Some(Seg::Key(k)), v, first));
                }
                todo.extend(children.into_iter().rev());
            }
            Kind::Seq(items) => {
                todo.extend(
                    items
                        .iter()
                        .enumerate()
                        .rev()
                        .map(|(i, it)| (depth + 1, Some(Seg::Index(i)), it, None)),
                );
            }
            _ => {}
        }
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

/// A list or mapping under construction.
struct Frame {
    pos: Pos,
    anchor: usize,
    /// What its children cost so far (see [`NODE_COST`]).
    bytes: usize,
    /// Levels of lists and mappings below it so far.
    height: usize,
    body: Body,
}

enum Body {
    Seq(Vec<Node>),
    Map(MapBody),
}

/// A mapping under construction.
#[derive(Default)]
struct MapBody {
    entries: Vec<(String, Node)>,
    /// A key waiting for its value.
    pending: Option<Node>,
    /// Keys copied in by a merge key (`<<`), which explicit keys override.
    merged: HashSet<String>,
    /// Key → entry index, kept once a merge happened (so merging stays linear).
    index: Option<HashMap<String, usize>>,
}

impl MapBody {
    /// An explicit `key: value`.
    fn insert(&mut self, key: String, node: Node) {
        if self.merged.remove(&key) {
            if let Some(&i) = self.index.as_ref().and_then(|ix| ix.get(&key)) {
                self.entries[i].1 = node;
                return;
            }
        }
        if let Some(ix) = &mut self.index {
            ix.entry(key.clone()).or_insert(self.entries.len());
        }
        self.entries.push((key, node));
    }

    /// YAML merge keys (`<<: *base`): copies the entries the mapping does not define.
    fn merge(&mut self, value: Node) -> BuildResult {
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
        let entries = &self.entries;
        let index = self.index.get_or_insert_with(|| {
            let mut ix = HashMap::with_capacity(entries.len());
            for (i, (k, _)) in entries.iter().enumerate() {
                ix.entry(k.clone()).or_insert(i);
            }
            ix
        });
        for src in sources {
            for (k, v) in src {
                if !index.contains_key(&k) {
                    index.insert(k.clone(), self.entries.len());
                    self.merged.insert(k.clone());
                    self.entries.push((k, v));
                }
            }
        }
        Ok(())
    }
}

/// An anchored node, what it costs and how deep it nests, for its aliases.
struct Anchored {
    node: Node,
    bytes: usize,
    height: usize,
}

struct Builder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, Anchored>,
    /// What the document costs so far, every alias copy included.
    bytes: usize,
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
                let bytes = NODE_COST + text_len(&kind);
                self.charge(bytes, pos, false)?;
                self.emit(
                    Node {
                        pos,
                        key_pos: pos,
                        kind,
                    },
                    anchor,
                    bytes,
                    0,
                    pos,
                )?;
            }
            Event::SequenceStart(anchor, _) => self.open(pos, anchor, Body::Seq(Vec::new()))?,
            Event::MappingStart(anchor, _) => {
                self.open(pos, anchor, Body::Map(MapBody::default()))?
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some(f) = self.stack.pop() {
                    self.charge(NODE_COST, pos, false)?;
                    let kind = match f.body {
                        Body::Seq(items) => Kind::Seq(items),
                        Body::Map(m) => Kind::Map(m.entries),
                    };
                    self.emit(
                        Node {
                            pos: f.pos,
                            key_pos: f.pos,
                            kind,
                        },
                        f.anchor,
                        NODE_COST + f.bytes,
                        f.height + 1,
                        pos,
                    )?;
                }
            }
            Event::Alias(id) => {
                let a = self.anchors.get(&id).ok_or_else(|| {
                    (
                        pos,
                        "alias refers to an anchor that is not defined".to_string(),
                    )
                })?;
                let (bytes, height) = (a.bytes, a.height);
                // Checked before the copy is made, so the limits hold for memory too.
                self.check_depth(height, pos)?;
                self.charge(bytes, pos, true)?;
                let node = Node {
                    pos,
                    key_pos: pos,
                    ..self.anchors[&id].node.clone()
                };
                self.emit(node, 0, bytes, height, pos)?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Starts a list or mapping, refusing nesting deeper than [`MAX_DEPTH`].
    fn open(&mut self, pos: Pos, anchor: usize, body: Body) -> BuildResult {
        self.check_depth(1, pos)?;
        self.stack.push(Frame {
            pos,
            anchor,
            bytes: 0,
            height: 0,
            body,
        });
        Ok(())
    }

    /// Whether a node nesting `height` levels fits where the next node goes.
    fn check_depth(&self, height: usize, pos: Pos) -> BuildResult {
        if self.stack.len() + height > MAX_DEPTH {
            return Err((
                pos,
                format!(
                    "nesting deeper than {MAX_DEPTH} levels of lists and mappings; flatten the document"
                ),
            ));
        }
        Ok(())
    }

    /// Adds `bytes` to the document's cost, refusing it past [`MAX_DOCUMENT_BYTES`];
    /// `copy` says an alias (or an anchor's copy) is what crossed the limit.
    fn charge(&mut self, bytes: usize, pos: Pos, copy: bool) -> BuildResult {
        self.bytes = self.bytes.saturating_add(bytes);
        if self.bytes <= MAX_DOCUMENT_BYTES {
            return Ok(());
        }
        let limit = crate::input_file::human_size(MAX_DOCUMENT_BYTES as u64);
        Err((
            pos,
            if copy {
                format!("aliases make the document expand to more than {limit} in memory (every use of an alias copies its anchor); the limit keeps loading bounded")
            } else {
                format!("the document takes more than {limit} in memory once parsed; the limit keeps loading bounded: split it into smaller files")
            },
        ))
    }

    /// Places a finished node (already charged) in its parent. `bytes` is its
    /// whole cost and `height` its levels of lists and mappings; an anchored node
    /// is charged once more, for the copy its aliases are made from.
    fn emit(
        &mut self,
        node: Node,
        anchor: usize,
        bytes: usize,
        height: usize,
        at: Pos,
    ) -> BuildResult {
        if anchor > 0 {
            self.charge(bytes, at, true)?;
            self.anchors.insert(
                anchor,
                Anchored {
                    node: node.clone(),
                    bytes,
                    height,
                },
            );
        }
        let Some(frame) = self.stack.last_mut() else {
            self.root = Some(node);
            return Ok(());
        };
        frame.bytes = frame.bytes.saturating_add(bytes);
        frame.height = frame.height.max(height);
        match &mut frame.body {
            Body::Seq(items) => items.push(node),
            Body::Map(m) => match m.pending.take() {
                None => m.pending = Some(node),
                Some(key) => {
                    let key_text = match &key.kind {
                        Kind::Str(s) => s.clone(),
                        Kind::Null => "null".to_string(),
                        _ => key.scalar_text().ok_or_else(|| {
                            (
                                key.pos,
                                "mapping keys must be plain scalars, not lists or mappings"
                                    .to_string(),
                            )
                        })?,
                    };
                    let mut node = node;
                    node.key_pos = key.pos;
                    if key_text == "<<" {
                        m.merge(node)?;
                    } else {
                        m.insert(key_text, node);
                    }
                }
            },
        }
        Ok(())
    }
}

/// The text a scalar holds, for its cost.
fn text_len(kind: &Kind) -> usize {
    match kind {
        Kind::Str(s) => s.len(),
        _ => 0,
    }
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

    /// Marks every key `known` accepts as known without reading it (a family of
    /// documentation-only keys, such as anchor holders).
    pub fn ignore_where(&mut self, known: impl Fn(&str) -> bool) {
        for ((k, _), u) in self.entries.iter().zip(self.used.iter_mut()) {
            if known(k) {
                *u = true;
            }
        }
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

    /// Reports every key that was never read as unknown, naming the valid ones; how
    /// bad that is, the file's reader decides ([`Diags::unknown_keys`]).
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
            diags.unknown_key(
                v.key_pos,
                &join(&self.path, k),
                format!("unknown key{hint}; valid keys here: {}", known.join(", ")),
            );
        }
    }
}

/// A list of maps, each read by `item` with a [`MapReader`] at `path[i]` (which it
/// finishes); a value that is no list is reported as needing `shape`, an entry that
/// is no map is reported and skipped.
pub fn read_map_list<T>(
    node: &Node,
    path: &str,
    shape: &str,
    diags: &mut Diags,
    mut item: impl FnMut(MapReader<'_>, &str, &mut Diags) -> Option<T>,
) -> Vec<T> {
    let Kind::Seq(items) = &node.kind else {
        diags.error(node.pos, path, format!("expected a list of `{shape}`"));
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, it) in items.iter().enumerate() {
        let p = format!("{path}[{i}]");
        if let Some(r) = MapReader::new(it, &p, diags) {
            out.extend(item(r, &p, diags));
        }
    }
    out
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
    use crate::diag::Severity;

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
            d.items[0].message.contains("expand to more than"),
            "{:?}",
            d.items
        );
    }

    #[test]
    fn deep_nesting_is_an_error_with_its_line_not_a_stack_overflow() {
        // 30,000 nested block lists used to overflow the stack (exit 134).
        let (n, d) = load(&"- ".repeat(30_000));
        assert!(n.is_none());
        assert_eq!(d.items.len(), 1, "{:?}", d.items);
        let msg = d.items[0].to_string();
        assert!(
            msg.starts_with("t.yaml:1:") && msg.contains("nesting deeper than 128 levels"),
            "{msg}"
        );
        // Mappings, one per line: the error names the line where the limit is crossed.
        let src: String = (0..200)
            .map(|i| format!("{}k{i}:\n", " ".repeat(i)))
            .collect();
        let (_, d) = load(&src);
        assert_eq!(d.items[0].line, 129, "{:?}", d.items);
        // The deepest document allowed still loads, and its keys are checked.
        let mut src = "- ".repeat(MAX_DEPTH - 1);
        src.push_str("{a: 1, a: 2}\n");
        let (n, d) = load(&src);
        assert!(n.is_some());
        assert_eq!(d.items.len(), 1, "{:?}", d.items);
        assert!(d.items[0].key.ends_with("[0][0].a"), "{}", d.items[0].key);
    }

    #[test]
    fn aliases_cannot_nest_past_the_depth_limit() {
        // Each anchor nests 100 levels; aliasing it inside another 100 would make 200.
        let deep = |inner: &str| format!("{}{inner}{}", "[".repeat(100), "]".repeat(100));
        let src = format!("a: &a {}\nb: {}\n", deep("x"), deep("*a"));
        let (n, d) = load(&src);
        assert!(n.is_none());
        assert!(
            d.items[0].message.contains("nesting deeper than"),
            "{:?}",
            d.items
        );
    }

    #[test]
    fn alias_expansion_is_bounded_in_bytes_not_only_nodes() {
        // 2,000 aliases of a 100,000-character string: few nodes, 200 MB expanded.
        let src = format!(
            "big: &a \"{}\"\nl: [{}]\n",
            "x".repeat(100_000),
            vec!["*a"; 2_000].join(", ")
        );
        let (n, d) = load(&src);
        assert!(n.is_none());
        assert_eq!(d.items[0].line, 2, "{:?}", d.items);
        assert!(
            d.items[0].message.contains("more than 32 MiB"),
            "{:?}",
            d.items
        );
        // A few uses of a big anchor are fine.
        let src = format!("big: &a \"{}\"\nl: [*a, *a, *a]\n", "x".repeat(100_000));
        let (n, d) = load(&src);
        assert!(d.items.is_empty(), "{:?}", d.items);
        assert_eq!(n.unwrap().get("l").unwrap().as_map(), None);
    }

    #[test]
    fn a_byte_order_mark_is_skipped_and_nul_is_refused_with_its_line() {
        let (n, d) = load("\u{feff}name: x\n");
        assert!(d.items.is_empty(), "{:?}", d.items);
        assert!(n.unwrap().get("name").is_some());
        let (n, d) = load("a: 1\nb: x\0y\nc: 3\n");
        assert!(n.is_none());
        assert_eq!((d.items[0].line, d.items[0].col), (2, 5), "{:?}", d.items);
        assert!(d.items[0].message.contains("NUL byte"));
    }

    #[test]
    fn an_empty_document_is_an_error() {
        for src in ["", "\n\n", "# only a comment\n", "~\n", "---\n"] {
            let (n, d) = load(src);
            assert!(n.is_none(), "{src:?}");
            assert!(
                d.items.len() == 1 && d.items[0].message.contains("the file is empty"),
                "{src:?}: {:?}",
                d.items
            );
        }
    }

    #[test]
    fn merges_keep_explicit_keys_and_stay_linear() {
        // Explicit keys win whether they come before or after the merge key.
        let (n, d) = load("b: &b {x: 1, y: 2, z: 3}\nm:\n  x: 9\n  <<: *b\n  y: 8\n");
        assert!(d.items.is_empty(), "{:?}", d.items);
        let m = n.unwrap().get("m").unwrap().clone();
        let got: Vec<(&str, i64)> = m
            .as_map()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_f64().unwrap() as i64))
            .collect();
        assert_eq!(got, [("x", 9), ("y", 8), ("z", 3)]);
        // Merging a mapping of 40,000 keys into one of 40,000 others is linear:
        // the former scan compared every pair.
        let keys = |p: &str| -> String {
            (0..40_000)
                .map(|i| format!("{p}{i}: 1"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let src = format!("b: &b {{{}}}\nm: {{{}, <<: *b}}\n", keys("a"), keys("c"));
        let started = std::time::Instant::now();
        let (n, d) = load(&src);
        assert!(d.items.is_empty(), "{:?}", &d.items[..1]);
        assert_eq!(n.unwrap().get("m").unwrap().as_map().unwrap().len(), 80_000);
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
    }

    #[test]
    fn a_document_too_big_once_parsed_is_refused_without_blaming_aliases() {
        let src: String = (0..500_000).map(|i| format!("k{i}: {i}\n")).collect();
        let (n, d) = load(&src);
        assert!(n.is_none());
        let msg = &d.items[0].message;
        assert!(
            msg.contains("more than 32 MiB in memory once parsed"),
            "{msg}"
        );
        assert!(d.items[0].line > 100_000, "{:?}", d.items);
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
        assert!(d.items[0].unknown_key);
        assert_eq!(d.items[0].severity, Severity::Error, "an error by default");
        // A reader that allows unknown keys gets a warning, still marked as one.
        let mut d = Diags::new("t.yaml");
        d.unknown_keys = Severity::Warning;
        let mut r = MapReader::new(&n, "root", &mut d).unwrap();
        r.get("latency");
        r.get("name");
        r.finish(&mut d);
        assert_eq!(d.items.len(), 1);
        assert!(d.items[0].unknown_key);
        assert_eq!(d.items[0].severity, Severity::Warning);
        assert!(!d.has_errors());
    }
}
