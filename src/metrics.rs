//! Metrics derived from the sampled values of the emitted spans (never nominal
//! means), aggregated in-process and stamped by otelsim itself, so that a
//! dashboard on the metrics agrees with the traces: counts equal span counts,
//! histogram sums equal span-duration sums, token sums equal span token sums.
//!
//! Which metrics: the semconv file's `canonical_metrics` (prefix applied) where
//! it declares them, built-in `{p}.*` metrics for span kinds it does not cover,
//! and the standard OTel GenAI and MCP client metrics.

use crate::class::{ClassOf, SpanClass};
use crate::model::semconv::Semconv;
use crate::model::AttrValue;
use crate::plan::World;
use crate::record::{Key, Pair, ServiceId, SpanRecord, StatusCode, Text, TraceRecord};
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;

/// Aggregation temporality of sums and histograms: `cumulative` (every point counts from the
/// run's start; the default) or `delta` (each point counts since the previous collection).
// The variants have no doc comments: clap would print them in `--help`.
#[allow(missing_docs)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
pub enum Temporality {
    Cumulative,
    Delta,
}

/// Default boundaries for millisecond histograms (the OTel SDK's default buckets).
const MS_BOUNDS: &[f64] = &[
    0.0, 5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 250.0, 500.0, 750.0, 1000.0, 2500.0, 5000.0, 7500.0,
    10000.0,
];
/// `gen_ai.client.operation.duration`, as the GenAI semantic conventions recommend.
const GENAI_DURATION_BOUNDS: &[f64] = &[
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
];
/// `gen_ai.client.token.usage`, as the GenAI semantic conventions recommend.
const TOKEN_BOUNDS: &[f64] = &[
    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0,
    16777216.0, 67108864.0,
];
/// `mcp.client.operation.duration`, as the MCP semantic conventions recommend.
const MCP_DURATION_BOUNDS: &[f64] = &[
    0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];
const COUNT_BOUNDS: &[f64] = &[0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0];

/// Series per metric before new attribute sets fold into one overflow series.
pub const MAX_SERIES_PER_METRIC: usize = 2000;

#[derive(Clone, Debug, PartialEq)]
enum Value {
    One,
    DurationMs,
    DurationS,
    Attr(Key),
}

/// One metric derived from spans: what it measures and how.
#[derive(Clone, Debug)]
pub struct MetricSpec {
    /// Metric name, prefix applied.
    pub name: String,
    /// The description exported with it.
    pub description: String,
    /// UCUM unit (`1` for counts).
    pub unit: String,
    /// `None` for a counter (monotonic sum); bucket bounds for a histogram.
    pub bounds: Option<Vec<f64>>,
    /// The spans this metric measures.
    pub spans: SpanMatch,
    value: Value,
    /// Span attributes that become point attributes (low-cardinality only).
    dims: Vec<Key>,
    /// Point attributes fixed by the metric (e.g. `gen_ai.token.type=input`).
    fixed: Vec<(Key, AttrValue)>,
    /// Add `error.type` for failed spans.
    error_dim: bool,
    /// Only spans with this attribute (e.g. `retry.reason`: attempts after the first).
    requires: Option<Key>,
}

/// Which spans a metric measures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpanMatch {
    /// Spans of one class (attempts of it when `attempt` is set).
    Class(ClassOf),
    /// Every attempt span, whatever its step.
    AnyAttempt,
    /// Spans of a class otelsim does not know, by its written name.
    Named(Key),
}

impl SpanMatch {
    /// A class as written in the semconv file (prefix already removed).
    fn written(class: &str) -> SpanMatch {
        match ClassOf::parse(class) {
            c if c.class == SpanClass::Other => SpanMatch::Named(Key::from(class)),
            c => SpanMatch::Class(c),
        }
    }

    fn matches(&self, s: &SpanRecord, class_key: &str) -> bool {
        match self {
            SpanMatch::Class(c) => s.class == *c,
            SpanMatch::AnyAttempt => s.class.attempt,
            SpanMatch::Named(n) => s.attr(class_key).and_then(AttrValue::as_str) == Some(n),
        }
    }
}

/// Built-in count and duration metrics per span class, for the classes the
/// semconv file's `canonical_metrics` do not cover: (class, name base `{p}.<base>.*`,
/// what is counted, dimension keys as semconv short names or `Keys` fields).
fn builtin_table(
    k: &crate::plan::Keys,
    attr: &dyn Fn(&str) -> Key,
) -> Vec<(SpanClass, &'static str, &'static str, Vec<Key>)> {
    let tenant = &k.tenant_id;
    vec![
        (
            SpanClass::Orchestrate,
            "turn",
            "agent turns",
            vec![*tenant, k.agent_target, k.a2a_outcome],
        ),
        (
            SpanClass::McpToolExecute,
            "tool",
            "MCP tool calls",
            vec![*tenant, k.tool_name, k.step_outcome],
        ),
        (
            SpanClass::LlmCall,
            "llm",
            "LLM calls",
            vec![*tenant, k.provider, k.request_model, k.step_outcome],
        ),
        (
            SpanClass::ToolsRecommend,
            "tools.recommend",
            "tool recommendations",
            vec![*tenant, k.selection_strategy, k.step_outcome],
        ),
        (
            SpanClass::RequestValidation,
            "request.validation",
            "control-plane request validations",
            vec![*tenant, attr("request.outcome"), attr("block.reason")],
        ),
        (
            SpanClass::ContextAugment,
            "rag",
            "retrievals",
            vec![*tenant, attr("rag.source"), k.step_outcome],
        ),
        (
            SpanClass::RagRetrieve,
            "rag.retrieve",
            "retrievals",
            vec![*tenant, k.step_outcome],
        ),
        (
            SpanClass::A2aCall,
            "a2a",
            "agent-to-agent calls",
            vec![*tenant, k.step_outcome],
        ),
    ]
}

/// Attribute keys that would explode cardinality; never metric dimensions.
fn high_cardinality(key: &str) -> bool {
    [
        "session.id",
        "request.id",
        "conversation.id",
        "call.id",
        "trace",
        "span_id",
        "enduser",
        "task.id",
        "messages",
        "redacted",
    ]
    .iter()
    .any(|p| key.contains(p))
}

/// The metrics of a run.
#[derive(Clone, Debug)]
pub struct MetricsPlan {
    /// Every metric: the semconv file's `canonical_metrics`, then the built-ins it leaves out.
    pub specs: Vec<MetricSpec>,
}

impl MetricsPlan {
    /// Plans the semconv file's metrics (prefix applied), then the built-in ones it does not
    /// cover.
    pub fn new(world: &World, sc: &Semconv) -> MetricsPlan {
        let p = &world.prefix;
        let k = &world.keys;
        let mut specs: Vec<MetricSpec> = Vec::new();
        let key = |s: &str| -> Key { Key::from(s) };
        for m in &sc.metrics {
            let Some(span) = &m.aligns_with_span else {
                continue;
            };
            let spans = SpanMatch::written(p.class_of(&p.rewrite(span)));
            let name = p.rewrite(&m.name);
            let histogram = m.instrument.eq_ignore_ascii_case("histogram");
            let value = match &m.value_attribute {
                Some(a) => Value::Attr(key(&p.rewrite(a))),
                None if name.contains("tokens.input") => Value::Attr(k.input_tokens),
                None if name.contains("tokens.output") => Value::Attr(k.output_tokens),
                None if histogram && m.unit == "s" => Value::DurationS,
                None if histogram => Value::DurationMs,
                None => Value::One,
            };
            let bounds = histogram.then(|| match (&value, m.unit.as_str()) {
                (Value::DurationS, _) => GENAI_DURATION_BOUNDS.to_vec(),
                (Value::DurationMs, _) | (_, "ms") => MS_BOUNDS.to_vec(),
                _ => COUNT_BOUNDS.to_vec(),
            });
            specs.push(MetricSpec {
                description: m.description.clone(),
                unit: if m.unit.is_empty() {
                    "1".into()
                } else {
                    m.unit.clone()
                },
                bounds,
                spans,
                value,
                dims: m
                    .dimensions
                    .iter()
                    .map(|d| p.rewrite(d))
                    .filter(|d| !high_cardinality(d))
                    .map(|d| key(&d))
                    .collect(),
                fixed: Vec::new(),
                error_dim: false,
                requires: None,
                name,
            });
        }
        // A built-in is skipped when the file covers its span class or already uses its name.
        let dims = |names: &[&Key]| names.iter().map(|k| *(*k)).collect::<Vec<Key>>();
        let attr = |short: &str| -> Key { key(&p.attr(short)) };
        for (class, base, what, dim_keys) in builtin_table(k, &attr) {
            let spans = SpanMatch::Class(ClassOf::step(class));
            let names = [
                p.attr(&format!("{base}.count")),
                p.attr(&format!("{base}.duration")),
            ];
            if specs
                .iter()
                .any(|s| s.spans == spans || names.contains(&s.name))
            {
                continue;
            }
            let [count, duration] = names;
            specs.push(MetricSpec {
                name: count,
                description: format!("Number of {what}"),
                unit: "1".into(),
                bounds: None,
                spans: spans.clone(),
                value: Value::One,
                dims: dim_keys.clone(),
                fixed: Vec::new(),
                error_dim: false,
                requires: None,
            });
            specs.push(MetricSpec {
                name: duration,
                description: format!("Duration of {what}"),
                unit: "ms".into(),
                bounds: Some(MS_BOUNDS.to_vec()),
                spans,
                value: Value::DurationMs,
                dims: dim_keys,
                fixed: Vec::new(),
                error_dim: false,
                requires: None,
            });
        }
        let tenant = &k.tenant_id;
        let llm = SpanMatch::Class(ClassOf::step(SpanClass::LlmCall));
        let mcp = SpanMatch::Class(ClassOf::step(SpanClass::McpToolExecute));
        if !specs
            .iter()
            .any(|s| s.spans == llm && matches!(&s.value, Value::Attr(a) if *a == k.input_tokens))
        {
            for (which, v) in [("input", &k.input_tokens), ("output", &k.output_tokens)] {
                specs.push(MetricSpec {
                    name: p.attr(&format!("llm.tokens.{which}")),
                    description: format!("LLM {which} tokens"),
                    unit: "{token}".into(),
                    bounds: None,
                    spans: llm.clone(),
                    value: Value::Attr(*v),
                    dims: dims(&[tenant, &k.provider, &k.request_model]),
                    fixed: Vec::new(),
                    error_dim: false,
                    requires: None,
                });
            }
        }
        // The cost of LLM calls, from the spans of scenarios that track costs (only they carry it).
        specs.push(MetricSpec {
            name: p.attr("llm.cost"),
            description: "Cost of LLM calls at config.yaml's list prices".into(),
            unit: "USD".into(),
            bounds: None,
            spans: llm.clone(),
            value: Value::Attr(world.cost_key),
            dims: dims(&[tenant, &k.provider, &k.request_model]),
            fixed: Vec::new(),
            error_dim: false,
            requires: Some(world.cost_key),
        });
        specs.push(MetricSpec {
            name: p.attr("tool.retry.attempts"),
            description:
                "Retry attempts (attempts after the first) of tool calls and retried steps".into(),
            unit: "1".into(),
            bounds: None,
            spans: SpanMatch::AnyAttempt,
            value: Value::One,
            dims: dims(&[tenant, &k.tool_name, &k.retry_reason, &k.attempt_outcome]),
            fixed: Vec::new(),
            error_dim: false,
            requires: Some(k.retry_reason),
        });
        // Standard OTel GenAI client metrics.
        let genai_dims = dims(&[&k.op_name, &k.provider, &k.request_model, &k.response_model]);
        specs.push(MetricSpec {
            name: "gen_ai.client.operation.duration".into(),
            description: "GenAI operation duration".into(),
            unit: "s".into(),
            bounds: Some(GENAI_DURATION_BOUNDS.to_vec()),
            spans: llm.clone(),
            value: Value::DurationS,
            dims: genai_dims.clone(),
            fixed: Vec::new(),
            error_dim: true,
            requires: None,
        });
        for (which, v) in [("input", &k.input_tokens), ("output", &k.output_tokens)] {
            specs.push(MetricSpec {
                name: "gen_ai.client.token.usage".into(),
                description: "Number of input and output tokens used".into(),
                unit: "{token}".into(),
                bounds: Some(TOKEN_BOUNDS.to_vec()),
                spans: llm.clone(),
                value: Value::Attr(*v),
                dims: genai_dims.clone(),
                fixed: vec![(k.token_type, AttrValue::str(which))],
                error_dim: false,
                requires: Some(*v),
            });
        }
        specs.push(MetricSpec {
            name: "mcp.client.operation.duration".into(),
            description: "Duration of MCP requests as observed by the client".into(),
            unit: "s".into(),
            bounds: Some(MCP_DURATION_BOUNDS.to_vec()),
            spans: mcp,
            value: Value::DurationS,
            dims: dims(&[&k.mcp_method, &k.tool_name]),
            fixed: Vec::new(),
            error_dim: true,
            requires: None,
        });
        MetricsPlan { specs }
    }
}

/// One measurement kept as an exemplar: value, time, trace id, span id.
pub type Sample = (f64, u64, [u8; 16], [u8; 8]);

/// One aggregated time series: a metric under one service with one attribute set.
#[derive(Clone, Debug)]
pub struct Series {
    name_idx: usize,
    service: ServiceId,
    /// The attribute set written out: what orders a metric's series in a collection.
    id: String,
    /// Point attributes.
    pub attrs: Vec<(Key, AttrValue)>,
    /// Sum of the measurements.
    pub sum: f64,
    /// Number of measurements.
    pub count: u64,
    /// Smallest measurement.
    pub min: f64,
    /// Largest measurement.
    pub max: f64,
    /// Histogram bucket counts (empty for a counter).
    pub buckets: Vec<u64>,
    /// Latest measurement per bucket.
    pub exemplars: Vec<Option<Sample>>,
}

/// Aggregates measurements between collections; stamps points itself.
pub struct Aggregator {
    plan: MetricsPlan,
    /// Distinct metric names in first-seen order (specs may share one, e.g. token usage).
    names: Vec<String>,
    spec_name: Vec<usize>,
    temporality: Temporality,
    start_ns: u64,
    last_collect_ns: u64,
    /// The specs that may measure a span of each class, by [`class_index`]; made
    /// the first time a span of the class is seen.
    classes: Vec<Option<ClassSpecs>>,
    table: Table,
    /// Measurements were recorded since the last collection.
    dirty: bool,
}

/// The series and their indexes (apart from the plan, so that a span's lookups
/// can borrow the plan while a measurement updates the series).
#[derive(Default)]
struct Table {
    /// Every series, in the order they were first measured.
    series: Vec<Series>,
    /// Index in `series` by (metric name, service), then by the attribute set
    /// written out (`key=value\u{1f}`…). Hashed, not ordered: a collection sorts
    /// by the written-out set, the order series are reported in.
    by_id: FxHashMap<(usize, ServiceId), FxHashMap<String, usize>>,
    /// Index in `series` by [`Table::values_key`]: the lookup of measurements on
    /// spans whose set has no [`ClassSets`] number (a text made per trace, an
    /// array, a class past [`MAX_SETS_PER_CLASS`]), without writing the keys out
    /// or formatting numbers. Sets that fell into the overflow series are not
    /// kept here, so it stays bounded.
    by_values: FxHashMap<Vec<u8>, usize>,
    /// The values key of the measurement at hand (reused).
    key: Vec<u8>,
    per_metric: Vec<usize>,
    /// The attribute set of the measurement at hand, written out (reused: no
    /// allocation per measurement).
    id: String,
    measurements: u64,
}

/// Where a span's measurements go: its service, and the number of its set among
/// its class's ([`ClassSets`]; `None` when the set has none).
#[derive(Clone, Copy)]
struct SeriesAt {
    service: ServiceId,
    set: Option<u32>,
}

/// Where a spec reads a span attribute: a slot of its class's [`Lookups`].
type Slot = usize;

/// Where a span had an attribute: in which of its pairs' slices
/// ([`crate::record::Attrs::slices`]), at which index.
type Hint = (usize, usize);

/// Slots remembered per span; a class whose specs read more keys looks the
/// others up at each use.
const MEMO_SLOTS: usize = 16;

/// How one spec measures the spans of one class, its attributes as slots.
struct SpecUse {
    spec: usize,
    requires: Option<Slot>,
    /// The slot of a `Value::Attr`.
    value: Option<Slot>,
    dims: Vec<Slot>,
    /// The slot of `error.type`, for a spec with `error_dim`.
    error: Option<Slot>,
    /// Index in `series` of the spec's series by the number of the span's
    /// [`ClassSets`] set; [`UNKNOWN`] (or past the end) until first looked up.
    series: Vec<u32>,
}

/// A spec's series for a set it has not measured yet (or that fell into overflow).
const UNKNOWN: u32 = u32::MAX;

/// Sets a class numbers at most (≈ 2 MB of keys for the widest class); spans
/// with further sets take the written [`Table::values_key`] path.
const MAX_SETS_PER_CLASS: usize = 1 << 14;

/// Numbers the distinct value sets of a class's spans: the service and every
/// value any of the class's specs reads into its series (each dimension once,
/// `error.type` of a failed span). Equal sets mean each spec's series is the
/// same, so a span is keyed and hashed once, not once per spec, and each spec
/// finds its series by the number ([`SpecUse::series`]).
struct ClassSets {
    /// The dimension slots of the class's specs, each once.
    dims: Vec<Slot>,
    /// The slot of `error.type`, if some spec keeps it.
    error: Option<Slot>,
    /// Number by set: the service, then each value as two words (see [`identity`]).
    numbers: FxHashMap<Box<[u64]>, u32>,
    /// The set of the span at hand, written in place (its length is the class's).
    key: Vec<u64>,
    /// The set and number of the last span numbered: spans in a row often repeat one.
    last_key: Vec<u64>,
    last: Option<u32>,
}

impl ClassSets {
    /// The sets of a class whose specs read `dims` and, if some keeps it, `error`.
    fn new(dims: Vec<Slot>, error: Option<Slot>) -> ClassSets {
        let words = 1 + 2 * (dims.len() + usize::from(error.is_some()));
        ClassSets {
            dims,
            error,
            numbers: FxHashMap::default(),
            key: vec![0; words],
            last_key: vec![0; words],
            last: None,
        }
    }

    /// The number of the set of the span of `attrs` under `service`; `None` when a
    /// value cannot be keyed by identity or the class has numbered all it may.
    fn number(&mut self, attrs: &mut Lookups<'_>, service: ServiceId) -> Option<u32> {
        let (head, values) = self.key.split_at_mut(1);
        head[0] = u64::from(service.0);
        let (dims, error) = values.as_chunks_mut::<2>().0.split_at_mut(self.dims.len());
        for (&d, words) in self.dims.iter().zip(dims) {
            *words = identity(attrs.get(d))?;
        }
        if let (Some(e), Some(words)) = (self.error, error.first_mut()) {
            let failed = attrs.span.status == StatusCode::Error;
            *words = identity(failed.then(|| attrs.get(e)).flatten())?;
        }
        if self.last.is_some() && self.key == self.last_key {
            return self.last;
        }
        let n = match self.numbers.get(self.key.as_slice()) {
            Some(&n) => n,
            None if self.numbers.len() < MAX_SETS_PER_CLASS => {
                let n = self.numbers.len() as u32;
                self.numbers.insert(self.key.as_slice().into(), n);
                n
            }
            None => return None,
        };
        std::mem::swap(&mut self.key, &mut self.last_key);
        self.last = Some(n);
        Some(n)
    }

    fn clear(&mut self) {
        self.numbers.clear();
        self.last = None;
    }
}

/// A value (or its absence) as two words with nothing to copy or compare byte
/// by byte: its kind (with a text's length) and its content. A text made by
/// the plan is interned or a literal: one allocation that lives for the
/// process, so its address and length identify it. `None` for a text made per
/// trace or an array, which only their bytes identify.
fn identity(v: Option<&AttrValue>) -> Option<[u64; 2]> {
    // Kinds, in the first word above a text's length (which never reaches 2^56 bytes).
    const TEXT: u64 = 1 << 56;
    const INT: u64 = 2 << 56;
    const DOUBLE: u64 = 3 << 56;
    const BOOL: u64 = 4 << 56;
    Some(match v {
        None => [0, 0],
        Some(AttrValue::Str(Text::Static(t))) => [TEXT | t.len() as u64, t.as_ptr() as u64],
        Some(AttrValue::Int(n)) => [INT, *n as u64],
        Some(AttrValue::Double(d)) => [DOUBLE, d.to_bits()],
        Some(AttrValue::Bool(b)) => [BOOL, u64::from(*b)],
        Some(AttrValue::Str(Text::Shared(_)) | AttrValue::StrArray(_)) => return None,
    })
}

/// The specs that may measure a span of one class (those of its class, every
/// attempt's, those matched by name), in plan order, and the distinct keys they
/// read: a span looks each up once, however many specs read it.
struct ClassSpecs {
    keys: Vec<Key>,
    /// Where each key was last found in a span's attributes: spans of one class
    /// mostly set them in the same order, so it is usually where the next has it.
    hints: Vec<Hint>,
    uses: Vec<SpecUse>,
    sets: ClassSets,
}

/// The index of a class in [`Aggregator::classes`].
fn class_index(class: ClassOf) -> usize {
    class.class as usize * 2 + usize::from(class.attempt)
}

impl ClassSpecs {
    fn new(plan: &MetricsPlan, class: ClassOf, error_type: Key) -> ClassSpecs {
        let mut keys: Vec<Key> = Vec::new();
        let mut slot = |k: Key| -> Slot {
            keys.iter().position(|x| *x == k).unwrap_or_else(|| {
                keys.push(k);
                keys.len() - 1
            })
        };
        let uses: Vec<SpecUse> = plan
            .specs
            .iter()
            .enumerate()
            .filter(|(_, spec)| match &spec.spans {
                SpanMatch::Class(c) => *c == class,
                SpanMatch::AnyAttempt => class.attempt,
                SpanMatch::Named(_) => true,
            })
            .map(|(i, spec)| SpecUse {
                spec: i,
                requires: spec.requires.map(&mut slot),
                value: match spec.value {
                    Value::Attr(a) => Some(slot(a)),
                    _ => None,
                },
                dims: spec.dims.iter().map(|d| slot(*d)).collect(),
                error: spec.error_dim.then(|| slot(error_type)),
                series: Vec::new(),
            })
            .collect();
        let mut dims: Vec<Slot> = uses.iter().flat_map(|u| u.dims.iter().copied()).collect();
        dims.sort_unstable();
        dims.dedup();
        let sets = ClassSets::new(dims, uses.iter().find_map(|u| u.error));
        let hints = vec![(0, 0); keys.len()];
        ClassSpecs {
            keys,
            hints,
            uses,
            sets,
        }
    }
}

/// The attributes one span's specs read, each looked up at most once.
struct Lookups<'s> {
    span: &'s SpanRecord,
    /// The span's pairs as [`crate::record::Attrs::slices`] reads them, taken once rather than
    /// at each lookup.
    parts: [&'s [Pair]; 3],
    keys: &'s [Key],
    hints: &'s mut [Hint],
    /// Bit i: slot i was looked up.
    done: u32,
    memo: [Option<&'s AttrValue>; MEMO_SLOTS],
}

impl<'s> Lookups<'s> {
    fn new(span: &'s SpanRecord, keys: &'s [Key], hints: &'s mut [Hint]) -> Self {
        Lookups {
            span,
            parts: span.attrs.slices(),
            keys,
            hints,
            done: 0,
            memo: [None; MEMO_SLOTS],
        }
    }

    fn get(&mut self, i: Slot) -> Option<&'s AttrValue> {
        if i >= MEMO_SLOTS {
            return self.find(i);
        }
        if self.done & (1 << i) == 0 {
            self.done |= 1 << i;
            self.memo[i] = self.find(i);
        }
        self.memo[i]
    }

    /// The `error.type` a measurement of `u` is keyed by: the span's, when `u`
    /// keeps it and the span failed.
    fn error_of(&mut self, u: &SpecUse) -> Option<&'s AttrValue> {
        let slot = u.error.filter(|_| self.span.status == StatusCode::Error)?;
        self.get(slot)
    }

    /// The value of key `i`: where the last span of the class had it, else by a scan.
    fn find(&mut self, i: usize) -> Option<&'s AttrValue> {
        let key = self.keys[i].as_str();
        let (part, at) = self.hints[i];
        if let Some((k, v)) = self.parts[part].get(at) {
            if std::ptr::eq(k.as_str(), key) {
                return Some(v);
            }
        }
        // Its position in the order of `parts` (`None` when absent, cheaply).
        let mut at = self.span.attrs.position(key)?;
        for (part, pairs) in self.parts.iter().enumerate() {
            match pairs.get(at) {
                Some((_, v)) => {
                    self.hints[i] = (part, at);
                    return Some(v);
                }
                None => at -= pairs.len(),
            }
        }
        None
    }
}

fn value_f64(v: &AttrValue) -> Option<f64> {
    match v {
        AttrValue::Int(i) => Some(*i as f64),
        AttrValue::Double(d) => Some(*d),
        _ => None,
    }
}

impl Aggregator {
    /// An aggregator whose points start at `start_ns` (Unix ns): every point when cumulative,
    /// the first when delta.
    pub fn new(plan: MetricsPlan, temporality: Temporality, start_ns: u64) -> Aggregator {
        let mut names: Vec<String> = Vec::new();
        let spec_name = plan
            .specs
            .iter()
            .map(|s| match names.iter().position(|n| *n == s.name) {
                Some(i) => i,
                None => {
                    names.push(s.name.clone());
                    names.len() - 1
                }
            })
            .collect();
        let table = Table {
            per_metric: vec![0; names.len()],
            ..Table::default()
        };
        Aggregator {
            plan,
            names,
            spec_name,
            temporality,
            start_ns,
            last_collect_ns: start_ns,
            classes: Vec::new(),
            table,
            dirty: false,
        }
    }

    /// Records every measurement the spans of `trace` produce, at `recorded_ns`:
    /// the request's emission time (its last span's end). Spans are back-dated, so
    /// measurements are placed by when the request was emitted, which keeps every
    /// measurement (and exemplar) inside the collection window that reports it.
    pub fn record(&mut self, world: &World, trace: &TraceRecord, recorded_ns: u64) {
        self.dirty = true;
        let class_key = &world.keys.span_class;
        for s in &trace.spans {
            let c = class_index(s.class);
            if self.classes.len() <= c {
                self.classes.resize_with(c + 1, || None);
            }
            let of_class = self.classes[c]
                .get_or_insert_with(|| ClassSpecs::new(&self.plan, s.class, world.keys.error_type));
            let ClassSpecs {
                keys,
                hints,
                uses,
                sets,
            } = of_class;
            if uses.is_empty() {
                continue;
            }
            let mut attrs = Lookups::new(s, keys, hints);
            // Metrics are reported per service (a plane's components report on the plane).
            let service = world.services.get(s.service).metrics_on;
            // The number of the span's set, once a spec measures it (`Some(None)`: none).
            let mut set: Option<Option<u32>> = None;
            for u in uses.iter_mut() {
                let spec = &self.plan.specs[u.spec];
                // Candidates of a class or of every attempt match by construction.
                if matches!(spec.spans, SpanMatch::Named(_)) && !spec.spans.matches(s, class_key) {
                    continue;
                }
                if u.requires.is_some_and(|r| attrs.get(r).is_none()) {
                    continue;
                }
                let value = match &spec.value {
                    Value::One => Some(1.0),
                    Value::DurationMs => Some(s.duration_ns() as f64 / 1e6),
                    Value::DurationS => Some(s.duration_ns() as f64 / 1e9),
                    Value::Attr(_) => u.value.and_then(|v| attrs.get(v)).and_then(value_f64),
                };
                if let Some(v) = value {
                    let name_idx = self.spec_name[u.spec];
                    let set = *set.get_or_insert_with(|| sets.number(&mut attrs, service));
                    let at = SeriesAt { service, set };
                    self.table.measure(
                        u,
                        spec,
                        name_idx,
                        world,
                        trace,
                        &mut attrs,
                        at,
                        v,
                        recorded_ns,
                    );
                }
            }
        }
    }
}

impl Table {
    /// The point attributes of a measurement of `spec` on span `s`, in the order the series
    /// id writes them.
    fn point_attrs<'s>(
        spec: &'s MetricSpec,
        world: &'s World,
        s: &'s SpanRecord,
    ) -> impl Iterator<Item = (&'s Key, &'s AttrValue)> {
        let dims = spec
            .dims
            .iter()
            .filter_map(move |d| s.attr(d).map(|v| (d, v)));
        let fixed = spec.fixed.iter().map(|(k, v)| (k, v));
        let error = (spec.error_dim && s.status == StatusCode::Error)
            .then(|| {
                s.attr(&world.keys.error_type)
                    .map(|e| (&world.keys.error_type, e))
            })
            .flatten();
        dims.chain(fixed).chain(error)
    }

    /// The attribute set of a measurement of `spec` on span `s`, written into `id`
    /// (`key=value\u{1f}`…).
    fn write_id(id: &mut String, spec: &MetricSpec, world: &World, s: &SpanRecord) {
        use std::fmt::Write as _;
        id.clear();
        for (k, v) in Self::point_attrs(spec, world, s) {
            id.push_str(k);
            id.push('=');
            match v {
                // The common case, without the formatting machinery.
                AttrValue::Str(v) => id.push_str(v),
                v => {
                    let _ = write!(id, "{v}");
                }
            }
            id.push('\u{1f}');
        }
    }

    /// What identifies the series of a measurement of spec `u` on the span of
    /// `attrs` under `service`, written into `key`: the spec, the service, and the
    /// value (or absence) of each of its dimensions and of `error.type`. Specs fix
    /// their other point attributes, so equal keys mean equal attribute sets.
    fn values_key(key: &mut Vec<u8>, u: &SpecUse, attrs: &mut Lookups<'_>, service: ServiceId) {
        key.clear();
        key.extend_from_slice(&(u.spec as u32).to_le_bytes());
        key.extend_from_slice(&service.0.to_le_bytes());
        let error = attrs.error_of(u);
        for v in u.dims.iter().map(|d| attrs.get(*d)).chain([error]) {
            match v {
                None => key.push(0),
                Some(AttrValue::Str(t)) => {
                    key.push(1);
                    key.extend_from_slice(&(t.len() as u32).to_le_bytes());
                    key.extend_from_slice(t.as_bytes());
                }
                Some(AttrValue::Int(i)) => {
                    key.push(2);
                    key.extend_from_slice(&i.to_le_bytes());
                }
                Some(AttrValue::Double(d)) => {
                    key.push(3);
                    key.extend_from_slice(&d.to_bits().to_le_bytes());
                }
                Some(AttrValue::Bool(b)) => key.extend_from_slice(&[4, u8::from(*b)]),
                Some(AttrValue::StrArray(items)) => {
                    key.push(5);
                    key.extend_from_slice(&(items.len() as u32).to_le_bytes());
                    for t in items.iter() {
                        key.extend_from_slice(&(t.len() as u32).to_le_bytes());
                        key.extend_from_slice(t.as_bytes());
                    }
                }
            }
        }
    }

    /// The index in `series` of the series a measurement of spec `u` on the span
    /// of `attrs` at `at` adds to, made when new; the written-out attribute set
    /// (`id`) is built only the first time the spec meets the span's set.
    fn series_of(
        &mut self,
        u: &mut SpecUse,
        spec: &MetricSpec,
        name_idx: usize,
        world: &World,
        attrs: &mut Lookups<'_>,
        at: SeriesAt,
    ) -> usize {
        let service = at.service;
        match at.set {
            Some(n) => match u.series.get(n as usize) {
                Some(&i) if i != UNKNOWN => return i as usize,
                _ => {}
            },
            None => {
                Self::values_key(&mut self.key, u, attrs, service);
                if let Some(&i) = self.by_values.get(&self.key) {
                    return i;
                }
            }
        }
        let s = attrs.span;
        Self::write_id(&mut self.id, spec, world, s);
        let of_metric = self.by_id.entry((name_idx, service)).or_default();
        // Another spec of the same metric may have made this set's series already.
        if let Some(&i) = of_metric.get(self.id.as_str()) {
            self.remember(u, at.set, i);
            return i;
        }
        let overflow = self.per_metric[name_idx] >= MAX_SERIES_PER_METRIC;
        let (id, attrs) = if overflow {
            // Cardinality guard, as OTel SDKs do: new attribute sets share one
            // overflow series.
            let attrs = vec![(
                Key::from_static("otel.metric.overflow"),
                AttrValue::Bool(true),
            )];
            ("otel.metric.overflow".to_string(), attrs)
        } else {
            self.per_metric[name_idx] += 1;
            let attrs = Self::point_attrs(spec, world, s)
                .map(|(k, v)| (*k, v.clone()))
                .collect();
            (self.id.clone(), attrs)
        };
        let i = match of_metric.get(id.as_str()) {
            Some(&i) => i,
            None => {
                let nb = spec.bounds.as_ref().map_or(0, |b| b.len() + 1);
                of_metric.insert(id.clone(), self.series.len());
                self.series.push(Series {
                    name_idx,
                    service,
                    id,
                    attrs,
                    sum: 0.0,
                    count: 0,
                    min: f64::INFINITY,
                    max: f64::NEG_INFINITY,
                    buckets: vec![0; nb],
                    exemplars: vec![None; nb],
                });
                self.series.len() - 1
            }
        };
        // A set in the overflow series is not kept, so that the spec's arrays and
        // `by_values` stay bounded; it takes this path at each measurement.
        if !overflow {
            self.remember(u, at.set, i);
        }
        i
    }

    /// Keeps where the measurement at hand leads, series `i`: under the span's
    /// set number `set` for spec `u`, else under the written `key`.
    fn remember(&mut self, u: &mut SpecUse, set: Option<u32>, i: usize) {
        match (set, u32::try_from(i)) {
            (Some(n), Ok(i)) if i != UNKNOWN => {
                let n = n as usize;
                if u.series.len() <= n {
                    u.series.resize(n + 1, UNKNOWN);
                }
                u.series[n] = i;
            }
            (Some(_), _) => {}
            (None, _) => {
                self.by_values.insert(self.key.clone(), i);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn measure(
        &mut self,
        u: &mut SpecUse,
        spec: &MetricSpec,
        name_idx: usize,
        world: &World,
        trace: &TraceRecord,
        attrs: &mut Lookups<'_>,
        at: SeriesAt,
        v: f64,
        recorded_ns: u64,
    ) {
        let s = attrs.span;
        let i = self.series_of(u, spec, name_idx, world, attrs, at);
        let series = &mut self.series[i];
        series.sum += v;
        series.count += 1;
        series.min = series.min.min(v);
        series.max = series.max.max(v);
        if let Some(bounds) = &spec.bounds {
            // Bucket i holds (bounds[i-1], bounds[i]].
            let b = bounds.partition_point(|x| *x < v);
            series.buckets[b] += 1;
            series.exemplars[b] = Some((v, recorded_ns, trace.trace_id, s.span_id));
        }
        self.measurements += 1;
    }
}

impl Aggregator {
    /// Everything since the last collection, stamped `now_ns`, grouped by
    /// service and metric (`None` when there is nothing to report); `done`
    /// must be called once it has been encoded.
    pub fn collect(&mut self, now_ns: u64) -> Option<Collection<'_>> {
        let start_ns = match self.temporality {
            Temporality::Cumulative => self.start_ns,
            Temporality::Delta => self.last_collect_ns,
        };
        // Nothing new since a collection at this same instant: exporting again would duplicate it.
        if now_ns <= self.last_collect_ns && !self.dirty {
            return None;
        }
        self.last_collect_ns = now_ns;
        self.dirty = false;
        if self.table.series.is_empty() {
            return None;
        }
        let mut by_service: BTreeMap<ServiceId, BTreeMap<usize, Vec<&Series>>> = BTreeMap::new();
        for s in &self.table.series {
            by_service
                .entry(s.service)
                .or_default()
                .entry(s.name_idx)
                .or_default()
                .push(s);
        }
        let services = by_service
            .into_iter()
            .map(|(service, metrics)| {
                let metrics = metrics
                    .into_iter()
                    .map(|(name_idx, mut series)| {
                        series.sort_unstable_by(|a, b| a.id.cmp(&b.id));
                        let spec = &self.plan.specs[self
                            .spec_name
                            .iter()
                            .position(|n| *n == name_idx)
                            .unwrap_or(0)];
                        CollectedMetric {
                            name: &self.names[name_idx],
                            spec,
                            series,
                        }
                    })
                    .collect();
                (service, metrics)
            })
            .collect();
        Some(Collection {
            start_ns,
            now_ns,
            temporality: self.temporality,
            services,
        })
    }

    /// Starts the next interval after a collection was encoded: delta series
    /// begin again; cumulative ones keep their sums but not their exemplars,
    /// which describe the last interval only.
    pub fn done(&mut self) {
        if self.temporality == Temporality::Delta {
            self.table.series.clear();
            self.table.by_id.clear();
            self.table.by_values.clear();
            // The sets' numbers are renumbered from 0 and no spec knows a series any more.
            for class in self.classes.iter_mut().flatten() {
                class.sets.clear();
                class.uses.iter_mut().for_each(|u| u.series.clear());
            }
            self.table.per_metric.iter_mut().for_each(|n| *n = 0);
        } else {
            for s in &mut self.table.series {
                s.exemplars.iter_mut().for_each(|e| *e = None);
            }
        }
    }

    /// Measurements recorded so far: one per matching span and metric.
    pub fn measurements(&self) -> u64 {
        self.table.measurements
    }
}

/// One collection: every series to report, by service and metric.
pub struct Collection<'a> {
    /// Start of the points' time window (the run's start, or the last collection for delta).
    pub start_ns: u64,
    /// When the points were collected.
    pub now_ns: u64,
    /// Cumulative or delta.
    pub temporality: Temporality,
    /// Metrics per service, in service order.
    pub services: Vec<(ServiceId, Vec<CollectedMetric<'a>>)>,
}

/// The series of one metric in a collection.
pub struct CollectedMetric<'a> {
    /// The metric's name.
    pub name: &'a str,
    /// Description, unit and bucket bounds (of the metric's first spec).
    pub spec: &'a MetricSpec,
    /// Its series under one service.
    pub series: Vec<&'a Series>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Series (by written-out set) and measurement counts of a collection, per metric.
    fn counts(c: &Collection<'_>) -> BTreeMap<String, Vec<(String, u64)>> {
        let mut out: BTreeMap<String, Vec<(String, u64)>> = BTreeMap::new();
        for (_, metrics) in &c.services {
            for m in metrics {
                let e = out.entry(m.name.to_string()).or_default();
                e.extend(m.series.iter().map(|s| (s.id.clone(), s.count)));
                e.sort();
            }
        }
        out
    }

    /// What a collection of the measurements of `spans` holds, each measured on
    /// its own as the specs define it (the cardinality guard included), in the
    /// shape of [`counts`].
    fn expected<'a>(
        plan: &MetricsPlan,
        world: &World,
        spans: impl Iterator<Item = &'a SpanRecord>,
    ) -> BTreeMap<String, Vec<(String, u64)>> {
        let mut by_name: BTreeMap<&str, BTreeMap<(ServiceId, String), u64>> = BTreeMap::new();
        let mut sets: BTreeMap<&str, usize> = BTreeMap::new();
        let mut id = String::new();
        for s in spans {
            let service = world.services.get(s.service).metrics_on;
            for spec in &plan.specs {
                let value = match &spec.value {
                    Value::Attr(a) => s.attr(a).and_then(value_f64),
                    _ => Some(1.0),
                };
                if !spec.spans.matches(s, &world.keys.span_class)
                    || spec.requires.is_some_and(|r| s.attr(&r).is_none())
                    || value.is_none()
                {
                    continue;
                }
                Table::write_id(&mut id, spec, world, s);
                let of_name = by_name.entry(spec.name.as_str()).or_default();
                if !of_name.contains_key(&(service, id.clone())) {
                    let n = sets.entry(spec.name.as_str()).or_default();
                    if *n >= MAX_SERIES_PER_METRIC {
                        id = "otel.metric.overflow".into();
                    } else {
                        *n += 1;
                    }
                }
                *of_name.entry((service, id.clone())).or_default() += 1;
            }
        }
        by_name
            .into_iter()
            .map(|(name, of_name)| {
                let mut v: Vec<(String, u64)> =
                    of_name.into_iter().map(|((_, id), n)| (id, n)).collect();
                v.sort();
                (name.to_string(), v)
            })
            .collect()
    }

    /// Records each batch, collects after each, and checks every collection
    /// against [`expected`] (of the batch when delta, of every batch so far when
    /// cumulative).
    fn check_batches(
        prep: &crate::run::Prepared,
        temporality: Temporality,
        batches: &[Vec<TraceRecord>],
    ) {
        let world = &prep.world;
        let plan = MetricsPlan::new(world, &prep.registry.semconv);
        let t0 = 1_800_000_000_000_000_000;
        let mut aggregator = Aggregator::new(plan.clone(), temporality, t0 - 1);
        for (i, batch) in batches.iter().enumerate() {
            for t in batch {
                aggregator.record(world, t, t0);
            }
            let now = t0 + 1 + i as u64;
            let got = counts(&aggregator.collect(now).expect("a collection"));
            let window = match temporality {
                Temporality::Delta => &batches[i..=i],
                Temporality::Cumulative => &batches[..=i],
            };
            let spans = window.iter().flatten().flat_map(|t| &t.spans);
            assert_eq!(got, expected(&plan, world, spans), "collection {i}");
            aggregator.done();
        }
    }

    /// Traces of every bundled scenario.
    fn traces(prep: &crate::run::Prepared, seed: u64) -> Vec<TraceRecord> {
        let mut rng = <rand_pcg::Pcg64Mcg as rand::SeedableRng>::seed_from_u64(seed);
        let t0 = 1_800_000_000_000_000_000;
        (0..3)
            .flat_map(|i| prep.plans.values().map(move |p| (i, p)))
            .flat_map(|(i, p)| crate::run::generate_iteration(&prep.world, p, t0, i, &mut rng))
            .collect()
    }

    fn prepared() -> crate::run::Prepared {
        let opts = crate::plan::WorldOptions {
            vendor: "vendor".into(),
            ..Default::default()
        };
        crate::run::prepare(&Default::default(), &opts).expect("bundled files")
    }

    #[test]
    fn spans_that_differ_in_a_value_one_spec_reads_measure_into_its_series_apart() {
        let prep = prepared();
        let k = &prep.world.keys;
        // Values only some specs of a class read (the response model: the GenAI
        // ones; the tenant: the built-ins), numbers, texts made per trace (keyed
        // by their bytes), and failures with and without `error.type`.
        let vary = |seed: u64| {
            let mut traces = traces(&prep, seed);
            let spans = traces.iter_mut().flat_map(|t| t.spans.iter_mut());
            for (i, s) in spans.enumerate() {
                if s.attr(&k.response_model).is_some() {
                    let model = ["model-a", "model-b", "model-c"][i % 3];
                    s.set_attr(k.response_model, AttrValue::Str(Text::interned(model)));
                }
                if s.attr(&k.tenant_id).is_some() {
                    match i % 7 {
                        0 => s.set_attr(k.tenant_id, AttrValue::Int(i as i64 % 3)),
                        1 => s.set_attr(k.tenant_id, AttrValue::str("per-trace")),
                        _ => {}
                    }
                }
                if i % 5 == 0 {
                    s.status = StatusCode::Error;
                    if i % 10 == 0 {
                        let e = ["timeout", "refused"][i % 4 / 2];
                        s.set_attr(k.error_type, AttrValue::Str(Text::interned(e)));
                    }
                }
            }
            traces
        };
        let batches = [vary(1), vary(2), vary(3)];
        check_batches(&prep, Temporality::Cumulative, &batches);
        check_batches(&prep, Temporality::Delta, &batches);
    }

    #[test]
    fn sets_past_the_cardinality_guard_keep_overflowing_until_a_delta_collection() {
        let prep = prepared();
        let k = &prep.world.keys;
        let llm = traces(&prep, 4)
            .into_iter()
            .find(|t| t.spans.iter().any(|s| s.attr(&k.request_model).is_some()))
            .expect("a trace with a model call");
        // A model call per trace, each with a tenant of its own, then the first
        // tenants again (their series exist: they must not overflow).
        let tenants = |range: std::ops::Range<i64>| -> Vec<TraceRecord> {
            range
                .map(|n| {
                    let mut t = llm.clone();
                    for s in &mut t.spans {
                        if s.attr(&k.tenant_id).is_some() {
                            s.set_attr(
                                k.tenant_id,
                                AttrValue::Int(n % (MAX_SERIES_PER_METRIC as i64 + 300)),
                            );
                        }
                    }
                    t
                })
                .collect()
        };
        let over = MAX_SERIES_PER_METRIC as i64 + 300;
        let batches = [tenants(0..over + 100), tenants(over - 50..over + 50)];
        check_batches(&prep, Temporality::Cumulative, &batches);
        check_batches(&prep, Temporality::Delta, &batches);
    }

    #[test]
    fn an_interned_text_and_a_copy_of_it_measure_into_one_series() {
        let opts = crate::plan::WorldOptions {
            vendor: "vendor".into(),
            ..Default::default()
        };
        let prep = crate::run::prepare(&Default::default(), &opts).expect("bundled files");
        let world = &prep.world;
        let t0 = 1_800_000_000_000_000_000;
        let mut rng = <rand_pcg::Pcg64Mcg as rand::SeedableRng>::seed_from_u64(3);
        let traces =
            crate::run::generate_iteration(world, &prep.plans["new_claim_phone"], t0, 0, &mut rng);
        // The same traces with every string value made per trace (keyed by its bytes).
        let mut copied = traces.clone();
        for s in copied.iter_mut().flat_map(|t| t.spans.iter_mut()) {
            let texts: Vec<(Key, Text)> = s
                .attrs
                .iter()
                .filter_map(|(k, v)| Some((*k, Text::from(v.as_str()?))))
                .collect();
            for (k, t) in texts {
                s.set_attr(k, AttrValue::Str(t));
            }
        }
        let aggregator = || {
            Aggregator::new(
                MetricsPlan::new(world, &prep.registry.semconv),
                Temporality::Cumulative,
                t0 - 1,
            )
        };
        let mut twice = aggregator();
        let mut mixed = aggregator();
        for t in traces.iter().chain(&traces) {
            twice.record(world, t, t0);
        }
        for t in traces.iter().chain(&copied) {
            mixed.record(world, t, t0);
        }
        let twice = counts(&twice.collect(t0 + 1).expect("a collection"));
        assert!(twice.values().flatten().any(|(_, n)| *n >= 2));
        assert_eq!(counts(&mixed.collect(t0 + 1).expect("a collection")), twice);
    }
}
