//! The semantic-conventions file: attribute definitions (type, allowed values,
//! examples, defaults), span names with kinds, and canonical metrics.
//!
//! Only the keys below are read; everything else in such a file is documentation:
//! `namespace`, `schema_version`, `span_names`, every top-level `*_attributes`
//! section, and `canonical_metrics`.

use crate::diag::{Diags, Pos};
use crate::model::{over_limit, AttrValue, MAX_ATTRIBUTES};
use crate::record::SpanKind;
use crate::yaml::{join, read_str, read_str_list, Kind, Node};
use std::collections::{BTreeMap, HashSet};

/// An attribute's declared `type`; it decides what filling invents for a required attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttrType {
    /// `string`.
    String,
    /// `int…` (integer): filled with a small whole number.
    Int,
    /// `double`, `float…` or `number`: filled with a value in 0..1.
    Double,
    /// `bool…`: filled with `false`.
    Bool,
    /// `string[]`: an array of strings (its `allowed_values` are those of an item).
    StringArray,
    /// Any other or no `type`.
    Any,
}

/// One attribute of a `*_attributes` section.
#[derive(Clone, Debug)]
pub struct AttrDef {
    /// The attribute's name as the file writes it (prefix not yet applied).
    pub name: String,
    /// `type`, which decides what filling invents for a required attribute.
    pub ty: AttrType,
    /// `required: true`: filled (from `examples`, else by type) when nothing else sets it.
    pub required: bool,
    /// `allowed_values`: the enum literal values are checked and normalised against.
    pub allowed: Vec<AttrValue>,
    /// `examples`: what filling picks from for a required attribute.
    pub examples: Vec<AttrValue>,
    /// `default`: the value filling writes, before any other rule.
    pub default: Option<AttrValue>,
    /// Span classes (names without prefix) this attribute applies to, when declared per attribute.
    pub applies_to: Vec<String>,
    /// Where the attribute's name is written in the file (`validate` points here).
    pub pos: Pos,
}

/// One entry of `span_names`.
#[derive(Clone, Debug)]
pub struct SpanDef {
    /// The span name as the file writes it.
    pub name: String,
    /// `span_kind`: the kind of spans of this class unless a step says otherwise.
    pub kind: Option<SpanKind>,
    /// `parent`, split on `|`; each must be another entry of `span_names`.
    pub parents: Vec<String>,
    /// `is_root: true`; read, not checked.
    pub is_root: bool,
}

/// One entry of `canonical_metrics`: a metric derived from the spans of one class.
#[derive(Clone, Debug)]
pub struct MetricDef {
    /// Metric name as the file writes it (the prefix is applied when the metric is planned).
    pub name: String,
    /// `instrument`: `histogram` records a value per span; anything else counts spans.
    pub instrument: String,
    /// `unit` (UCUM, e.g. `ms`, `s`, `{token}`); empty becomes `1`.
    pub unit: String,
    /// The metric's description, as exported.
    pub description: String,
    /// Span attributes that become the metric's attributes (high-cardinality ones are left
    /// out).
    pub dimensions: Vec<String>,
    /// `aligns_with_span`: the span class the metric is derived from; `None`: the metric is not
    /// emitted.
    pub aligns_with_span: Option<String>,
    /// The span attribute a histogram measures instead of the span's duration.
    pub value_attribute: Option<String>,
}

/// A loaded semantic-conventions file.
#[derive(Clone, Debug)]
pub struct Semconv {
    /// The file it was read from (or its embedded name), for diagnostics.
    pub source: String,
    /// The vendor namespace the file's own names use (e.g. `vendor`), if any.
    pub namespace: Option<String>,
    /// `schema_version`, as written; read, not used.
    pub schema_version: Option<String>,
    /// Section name (`mcp_tool_attributes`) → attributes, in file order.
    pub sections: Vec<(String, Vec<AttrDef>)>,
    /// `span_names`, in file order.
    pub spans: Vec<SpanDef>,
    /// `canonical_metrics`, in file order.
    pub metrics: Vec<MetricDef>,
}

/// Values `error.type` may take whatever the file says (the spec fixes them).
pub const ERROR_TYPES: &[&str] = &[
    "timeout",
    "unavailable",
    "invalid_arguments",
    "tool_error",
    "protocol_error",
];
/// Values `<prefix>.step.outcome` may take whatever the file says.
pub const STEP_OUTCOMES: &[&str] = &["success", "fail", "skipped"];
/// GenAI attributes whose values are string arrays whatever the file says
/// (the GenAI conventions type them `string[]`).
pub const GENAI_STRING_ARRAYS: &[&str] = &[
    "gen_ai.response.finish_reasons",
    "gen_ai.request.stop_sequences",
    "gen_ai.request.encoding_formats",
];
/// Values `<prefix>.response.format` may take whatever the file says.
pub const RESPONSE_FORMATS: &[&str] = &["a2a_json", "a2a_stream"];

impl Semconv {
    /// The attributes of a `*_attributes` section, by its name.
    pub fn section(&self, name: &str) -> Option<&[AttrDef]> {
        self.sections
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, a)| a.as_slice())
    }

    /// The attributes declared for spans of class `class` (written without prefix):
    /// those of `sections` (the class's own sections, [`crate::plan::Role::semconv_sections`]),
    /// then those of any section whose `applies_to` names the class. In file order;
    /// a name declared twice comes twice (the first wins).
    pub fn declared_for<'a, 'c>(
        &'a self,
        sections: &'c [&'c str],
        class: &'c str,
    ) -> impl Iterator<Item = &'a AttrDef> + 'c
    where
        'a: 'c,
    {
        let own = sections
            .iter()
            .flat_map(move |s| self.section(s).unwrap_or_default().iter());
        let applied = self
            .sections
            .iter()
            .flat_map(|(_, attrs)| attrs.iter())
            .filter(move |a| a.applies_to.iter().any(|c| c == class));
        own.chain(applied)
    }

    /// The `span_names` entry of a span name, as the file writes it.
    pub fn span(&self, name: &str) -> Option<&SpanDef> {
        self.spans.iter().find(|s| s.name == name)
    }
}

/// Attribute types a file may declare (each may be followed by more words, as in
/// `string (enum)` or `int64`).
const ATTR_TYPES: &str = "string, int, double, float, number, boolean, string[], any";

/// The declared type; `None` for a word that names no type.
fn parse_type(s: &str) -> Option<AttrType> {
    let s = s.trim().to_ascii_lowercase();
    Some(if s.starts_with("int") {
        AttrType::Int
    } else if s.starts_with("bool") {
        AttrType::Bool
    } else if s.starts_with("double") || s.starts_with("float") || s.starts_with("number") {
        AttrType::Double
    } else if s.starts_with("string[]") {
        AttrType::StringArray
    } else if s.starts_with("string") {
        AttrType::String
    } else if s.starts_with("any") {
        AttrType::Any
    } else {
        return None;
    })
}

/// A span or attribute name without the file's namespace (`vendor.llm.call` →
/// `llm.call`), so names written with or without it compare equal.
fn bare<'a>(name: &'a str, namespace: Option<&str>) -> &'a str {
    namespace
        .and_then(|ns| name.strip_prefix(ns)?.strip_prefix('.'))
        .or_else(|| name.strip_prefix("vendor."))
        .unwrap_or(name)
}

fn scalar_list(node: &Node) -> Vec<AttrValue> {
    match &node.kind {
        Kind::Seq(items) => items
            .iter()
            .filter_map(crate::model::attr_from_node)
            .collect(),
        _ => crate::model::attr_from_node(node).into_iter().collect(),
    }
}

/// Loads a semconv file; structural problems are reported, documentation is ignored.
pub fn load(root: &Node, d: &mut Diags) -> Option<Semconv> {
    let Some(entries) = root.as_map() else {
        d.error(
            root.pos,
            "",
            "a semantic-conventions file must be a mapping at the top level",
        );
        return None;
    };
    let mut sc = Semconv {
        source: d.file.to_string(),
        namespace: None,
        schema_version: None,
        sections: Vec::new(),
        spans: Vec::new(),
        metrics: Vec::new(),
    };
    for (key, body) in entries {
        match key.as_str() {
            "namespace" => sc.namespace = read_str(body, key, d),
            "schema_version" => sc.schema_version = body.scalar_text(),
            "span_names" => sc.spans = read_spans(body, d),
            "canonical_metrics" => sc.metrics = read_metrics(body, d),
            k if k.ends_with("_attributes") => {
                let attrs = read_section(body, k, d);
                sc.sections.push((k.to_string(), attrs));
            }
            _ => {}
        }
    }
    if sc.namespace.is_none() {
        sc.namespace = detect_namespace(&sc);
    }
    check_references(root, &sc, d);
    if sc.sections.is_empty() && sc.spans.is_empty() {
        d.error(
            root.pos,
            "",
            "no `span_names` and no `*_attributes` sections found: is this a semantic-conventions file?",
        );
    }
    Some(sc)
}

/// The most common first segment of multi-segment span names (e.g. `vendor`).
fn detect_namespace(sc: &Semconv) -> Option<String> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for s in &sc.spans {
        if let Some((first, rest)) = s.name.split_once('.') {
            if !rest.is_empty() {
                *counts.entry(first).or_default() += 1;
            }
        }
    }
    counts
        .into_iter()
        .max_by_key(|(_, c)| *c)
        .filter(|(_, c)| *c >= 2)
        .map(|(n, _)| n.to_string())
}

fn read_spans(node: &Node, d: &mut Diags) -> Vec<SpanDef> {
    let Some(entries) = node.as_map() else {
        d.error(
            node.pos,
            "span_names",
            "expected a mapping of span name → {span_kind, parent, is_root}",
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for (name, body) in entries {
        let path = join("span_names", name);
        let kind = match body.get("span_kind").and_then(|n| n.as_str()) {
            Some(k) => match SpanKind::parse(k) {
                Some(k) => Some(k),
                None => {
                    d.error(body.pos, &format!("{path}.span_kind"), format!("unknown span kind `{k}`; valid: INTERNAL, SERVER, CLIENT, PRODUCER, CONSUMER"));
                    None
                }
            },
            None => None,
        };
        let parents = body
            .get("parent")
            .and_then(|n| n.as_str())
            .map(|p| {
                p.split('|')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let is_root = matches!(body.get("is_root").map(|n| &n.kind), Some(Kind::Bool(true)));
        out.push(SpanDef {
            name: name.clone(),
            kind,
            parents,
            is_root,
        });
    }
    out
}

fn read_section(node: &Node, section: &str, d: &mut Diags) -> Vec<AttrDef> {
    let Some(entries) = node.as_map() else {
        return Vec::new();
    };
    if entries.len() > MAX_ATTRIBUTES {
        d.error(
            node.pos,
            section,
            over_limit(
                entries.len(),
                "attributes in one section",
                MAX_ATTRIBUTES,
                "a span gets its section's attributes, and OpenTelemetry SDKs keep 128 per span by default",
            ),
        );
        return Vec::new();
    }
    let mut out = Vec::new();
    for (name, body) in entries {
        // Non-mapping entries and nested models are documentation.
        if body.as_map().is_none()
            || body.get("type").is_none() && body.get("allowed_values").is_none()
        {
            continue;
        }
        let path = join(section, name);
        let ty = match body.get("type") {
            None => AttrType::Any,
            Some(n) => match n.as_str().and_then(parse_type) {
                Some(t) => t,
                None => {
                    let found = match n.as_str() {
                        Some(s) => format!("unknown type `{s}`"),
                        None => format!("expected a type name, found {}", crate::yaml::describe(n)),
                    };
                    d.error(
                        n.pos,
                        &format!("{path}.type"),
                        format!("{found}; valid: {ATTR_TYPES}"),
                    );
                    AttrType::Any
                }
            },
        };
        let required = matches!(
            body.get("required").map(|n| &n.kind),
            Some(Kind::Bool(true))
        );
        let allowed = body
            .get("allowed_values")
            .map(scalar_list)
            .unwrap_or_default();
        if let Some(av) = body.get("allowed_values") {
            if allowed.is_empty() {
                d.error(
                    av.pos,
                    &format!("{path}.allowed_values"),
                    "expected a non-empty list of values",
                );
            }
        }
        let examples = body.get("examples").map(scalar_list).unwrap_or_default();
        let default = body.get("default").and_then(crate::model::attr_from_node);
        let applies_to = body
            .get("applies_to")
            .map(|n| read_str_list(n, &format!("{path}.applies_to"), d))
            .unwrap_or_default();
        out.push(AttrDef {
            name: name.clone(),
            ty,
            required,
            allowed,
            examples,
            default,
            applies_to,
            pos: body.key_pos,
        });
    }
    out
}

fn read_metrics(node: &Node, d: &mut Diags) -> Vec<MetricDef> {
    let Some(entries) = node.as_map() else {
        d.error(
            node.pos,
            "canonical_metrics",
            "expected a mapping of metric name → definition",
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for (name, body) in entries {
        if body.as_map().is_none() {
            continue;
        }
        let text = |k: &str| {
            body.get(k)
                .and_then(|n| n.scalar_text())
                .unwrap_or_default()
        };
        out.push(MetricDef {
            name: name.clone(),
            instrument: text("type"),
            unit: text("unit"),
            description: text("description"),
            dimensions: body
                .get("dimensions")
                .map(|n| read_str_list(n, &format!("canonical_metrics.{name}.dimensions"), d))
                .unwrap_or_default(),
            aligns_with_span: body
                .get("aligns_with_span")
                .and_then(|n| n.as_str())
                .map(String::from),
            value_attribute: body
                .get("value_attribute")
                .and_then(|n| n.as_str())
                .map(String::from),
        });
    }
    out
}

/// What the file's names refer to must exist: parents and metric spans in
/// `span_names`, metric dimensions among the attributes; a metric's instrument
/// must be known, and no span class may get more than [`MAX_ATTRIBUTES`]
/// through `applies_to`.
fn check_references(root: &Node, sc: &Semconv, d: &mut Diags) {
    let ns = sc.namespace.as_deref();
    let spans: Vec<&str> = sc.spans.iter().map(|s| bare(&s.name, ns)).collect();
    let span_list = || {
        sc.spans
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let at = |section: &str, name: &str, key: &str| -> Pos {
        let entry = root.get(section).and_then(|s| s.get(name));
        entry
            .and_then(|e| e.get(key))
            .or(entry)
            .map_or(Pos::default(), |n| n.pos)
    };
    for s in &sc.spans {
        for p in &s.parents {
            let path = format!("span_names.{}.parent", s.name);
            if bare(p, ns) == bare(&s.name, ns) {
                d.error(
                    at("span_names", &s.name, "parent"),
                    &path,
                    format!(
                        "`{}` names itself as its parent; a span cannot be its own parent",
                        s.name
                    ),
                );
            } else if !spans.contains(&bare(p, ns)) {
                d.error(
                    at("span_names", &s.name, "parent"),
                    &path,
                    format!(
                        "parent `{p}`{} is not in span_names; declared: {}",
                        crate::model::read::did_you_mean(
                            p,
                            sc.spans.iter().map(|s| s.name.as_str())
                        ),
                        span_list()
                    ),
                );
            }
        }
    }
    let attrs: HashSet<&str> = sc
        .sections
        .iter()
        .flat_map(|(_, a)| a.iter().map(|a| bare(&a.name, ns)))
        .collect();
    for m in &sc.metrics {
        let path = format!("canonical_metrics.{}", m.name);
        let instrument = m.instrument.to_ascii_lowercase();
        if !matches!(instrument.as_str(), "counter" | "histogram") {
            d.error(
                at("canonical_metrics", &m.name, "type"),
                &format!("{path}.type"),
                format!(
                    "expected `type: counter` or `type: histogram`, found {}",
                    if m.instrument.is_empty() {
                        "no type".to_string()
                    } else {
                        format!("`{}`", m.instrument)
                    }
                ),
            );
        }
        match &m.aligns_with_span {
            None => d.warn(
                at("canonical_metrics", &m.name, ""),
                &path,
                "no `aligns_with_span`: the metric is derived from no span, so it is not emitted",
            ),
            Some(span) if !spans.contains(&bare(span, ns)) => d.error(
                at("canonical_metrics", &m.name, "aligns_with_span"),
                &format!("{path}.aligns_with_span"),
                format!(
                    "`{span}`{} is not in span_names, so the metric would never be recorded; declared: {}",
                    crate::model::read::did_you_mean(span, sc.spans.iter().map(|s| s.name.as_str())),
                    span_list()
                ),
            ),
            Some(_) => {}
        }
        for dim in &m.dimensions {
            if !attrs.contains(bare(dim, ns)) {
                d.error(
                    at("canonical_metrics", &m.name, "dimensions"),
                    &format!("{path}.dimensions"),
                    format!(
                        "`{dim}`{} is no attribute of any `*_attributes` section, so no point would carry it",
                        crate::model::read::did_you_mean(
                            dim,
                            sc.sections.iter().flat_map(|(_, a)| a.iter().map(|a| a.name.as_str()))
                        )
                    ),
                );
            }
        }
    }
    // `applies_to` adds attributes to a class from any section: bounded per class too.
    let mut per_class: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, attrs) in &sc.sections {
        for a in attrs {
            for c in &a.applies_to {
                *per_class.entry(c.as_str()).or_default() += 1;
            }
        }
    }
    for (class, n) in per_class {
        if n > MAX_ATTRIBUTES {
            d.error(
                root.pos,
                "",
                over_limit(
                    n,
                    &format!("attributes apply to `{class}` through `applies_to`"),
                    MAX_ATTRIBUTES,
                    "OpenTelemetry SDKs keep 128 per span by default",
                ),
            );
        }
    }
}
