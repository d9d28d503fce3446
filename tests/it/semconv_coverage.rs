//! Semconv coverage: every attribute the conventions declare for a span's class
//! is on every span of that class, of its declared type and inside its enum,
//! for the bundled set and the predecessor's. Conditional ones (failure-only,
//! retry-only) are on exactly the spans their condition holds for; the others
//! the generator documents as conditional (`generate::When`) are checked only
//! for type and enum. Duration attributes agree with the span's own duration.

use crate::support::{compat_files, read_output_file, Otelsim};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use otelsim::class::ClassOf;
use otelsim::generate::{declared_attrs, is_duration_key, DeclaredAttr, When};
use otelsim::model::semconv::AttrType;
use otelsim::model::AttrValue;
use otelsim::plan::WorldOptions;
use otelsim::registry::Sources;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

const T0: &str = "2026-01-01T00:00:00Z";

/// Whether `v` is a value of type `ty`.
fn typed(v: &Value, ty: AttrType) -> bool {
    matches!(
        (ty, v),
        (AttrType::Any, _)
            | (AttrType::String, Value::StringValue(_))
            | (AttrType::Int, Value::IntValue(_))
            | (AttrType::Double, Value::DoubleValue(_))
            | (AttrType::Bool, Value::BoolValue(_))
    ) || matches!((ty, v), (AttrType::StringArray, Value::ArrayValue(a))
        if a.values.iter().all(|x| matches!(x.value, Some(Value::StringValue(_)))))
}

/// The items of a string array, or the value itself: what an enum constrains.
fn items(v: &Value) -> Vec<&Value> {
    match v {
        Value::ArrayValue(a) => a.values.iter().filter_map(|x| x.value.as_ref()).collect(),
        v => vec![v],
    }
}

/// Whether the OTLP value `v` is the attribute value `a`.
fn same(v: &Value, a: &AttrValue) -> bool {
    match (v, a) {
        (Value::StringValue(s), AttrValue::Str(t)) => **s == **t,
        (Value::IntValue(i), AttrValue::Int(j)) => i == j,
        (Value::DoubleValue(x), AttrValue::Double(y)) => x == y,
        (Value::BoolValue(b), AttrValue::Bool(c)) => b == c,
        _ => false,
    }
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::IntValue(i) => Some(*i as f64),
        Value::DoubleValue(x) => Some(*x),
        _ => None,
    }
}

/// Runs every scenario of a set three times, then a weighted mix, into one file.
fn generate(dir: &std::path::Path, files: &[String]) -> PathBuf {
    let path = dir.join("out.jsonl");
    for (i, cli) in [
        "run --each-once --interval 0",
        "run --each-once --interval 0",
        "run --each-once --interval 0",
        "run --count 400 --interval 0",
    ]
    .iter()
    .enumerate()
    {
        let part = dir.join(format!("part{i}.jsonl"));
        Otelsim::new()
            .args(files)
            .cli(cli)
            .seed(41 + i as u64)
            .start_time(T0)
            .output_file(&part)
            .run_ok();
        let mut all = std::fs::read(&path).unwrap_or_default();
        all.extend(std::fs::read(&part).expect("output"));
        std::fs::write(&path, all).expect("write");
    }
    path
}

/// Checks every span of the output against its class's declared attributes;
/// returns how many spans each class had.
fn check(label: &str, files: &[String], sources: Sources) -> BTreeMap<String, usize> {
    let dir = tempfile::tempdir().unwrap();
    let out = generate(dir.path(), files);
    let prep = otelsim::run::prepare(
        &sources,
        &WorldOptions {
            vendor: "vendor".into(),
            ..Default::default()
        },
    )
    .expect("inputs load");
    let sc = &prep.registry.semconv;
    let mut declared: HashMap<String, Vec<DeclaredAttr<'_>>> = HashMap::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut problems: BTreeSet<String> = BTreeSet::new();
    let spans: Vec<Span> = read_output_file(&out)
        .into_iter()
        .flat_map(|r| r.resource_spans)
        .flat_map(|rs| rs.scope_spans)
        .flat_map(|ss| ss.spans)
        .collect();
    for s in &spans {
        let attrs: HashMap<&str, &Value> = s
            .attributes
            .iter()
            .filter_map(|kv| Some((kv.key.as_str(), kv.value.as_ref()?.value.as_ref()?)))
            .collect();
        let Some(Value::StringValue(class)) = attrs.get("vendor.span.class") else {
            panic!("{label}: {} has no vendor.span.class", s.name);
        };
        *seen.entry(class.clone()).or_default() += 1;
        let list = declared
            .entry(class.clone())
            .or_insert_with(|| declared_attrs(&prep.world, sc, ClassOf::parse(class), class));
        let failed = s.status.as_ref().is_some_and(|st| st.code == 2);
        let index = attrs
            .get("vendor.mcp.attempt.index")
            .or(attrs.get("vendor.retry.attempt"));
        let retry = matches!(index, Some(Value::IntValue(i)) if *i > 1);
        let dur_ms = (s.end_time_unix_nano - s.start_time_unix_nano) as f64 / 1e6;
        for d in list.iter() {
            let at = format!("{label}: {} ({class}) `{}`", s.name, d.key);
            let v = attrs.get(d.key.as_str());
            let must = match d.when {
                None => {
                    problems.insert(format!("{at}: declared, but nothing ever sets it"));
                    continue;
                }
                Some(When::Always) => Some(true),
                Some(When::Failed) => Some(failed),
                Some(When::Retry) => Some(retry),
                Some(When::Succeeded) => Some(!failed),
                // Tool, agent, content, redaction: the scenario decides; the
                // provider's own attributes: the model drawn.
                Some(_) => None,
            };
            if let Some(must) = must {
                if v.is_some() != must {
                    problems.insert(format!(
                        "{at}: {} ({:?}; failed {failed}, retry {retry})",
                        if must { "missing" } else { "present" },
                        d.when
                    ));
                }
            }
            let Some(v) = v else { continue };
            if !typed(v, d.def.ty) {
                problems.insert(format!("{at}: {v:?} is not of type {:?}", d.def.ty));
            }
            let allowed = if d.def.allowed.is_empty() {
                prep.world
                    .enums
                    .get(&d.key)
                    .map(Vec::as_slice)
                    .unwrap_or_default()
            } else {
                d.def.allowed.as_slice()
            };
            if !allowed.is_empty() && !items(v).iter().all(|v| allowed.iter().any(|a| same(v, a))) {
                problems.insert(format!("{at}: {v:?} is not one of {allowed:?}"));
            }
            if is_duration_key(&d.key) {
                let tolerance = if d.def.ty == AttrType::Double {
                    0.0005
                } else {
                    0.5
                };
                match number(v) {
                    Some(x) if (x - dur_ms).abs() <= tolerance + 1e-9 => {}
                    _ => {
                        problems.insert(format!("{at}: {v:?} is not the span's {dur_ms} ms"));
                    }
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} problem(s), the first 40:\n{}",
        problems.len(),
        problems
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    seen
}

#[test]
fn every_declared_attribute_is_on_every_bundled_span_of_its_class() {
    let seen = check("bundled", &[], Sources::default());
    // The set makes every data- and control-plane class, attempts included.
    for class in [
        "a2a.orchestrate",
        "planner",
        "task.execute",
        "llm.call",
        "tools.recommend",
        "mcp.tool.execute",
        "mcp.tool.execute.attempt",
        "response.compose",
        "context.augment",
        "request.validation",
        "validation.policy",
    ] {
        assert!(seen.get(class).is_some_and(|n| *n > 0), "{class}: {seen:?}");
    }
}

#[test]
fn every_declared_attribute_is_on_every_predecessor_span_of_its_class() {
    let (config, semconv, definitions) = compat_files();
    let files = [
        "--config".to_string(),
        config.clone(),
        "--semconv".into(),
        semconv.clone(),
        "--scenarios-dir".into(),
        definitions.clone(),
    ];
    let sources = Sources {
        config: Some(config.into()),
        semconv: Some(semconv.into()),
        scenarios_dir: Some(definitions.into()),
    };
    let seen = check("compat", &files, sources);
    for class in ["a2a.orchestrate", "llm.call", "mcp.tool.execute.attempt"] {
        assert!(seen.get(class).is_some_and(|n| *n > 0), "{class}: {seen:?}");
    }
}
