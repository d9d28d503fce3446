//! Readers: YAML trees (`crate::yaml`) → the model types, with every problem
//! reported as a diagnostic (file:line:col, key path, what is valid).
//!
//! The types they build live one level up (`model::config`, `model::scenario`,
//! `model::distribution`); everything that walks YAML nodes lives here:
//!
//! - `config`: `config.yaml` (and `resource.yaml`), one file per group of sections
//! - `scenario`: one definition file, checked against the loaded config
//! - `distribution`: latency, numeric, count and categorical specs
//! - `samples`: conversation samples (used by both config and scenario files)
//!
//! This module holds the small helpers they share.

pub mod config;
pub mod distribution;
pub mod samples;
pub mod scenario;

use crate::diag::Diags;
use crate::model::AttrValue;
use crate::record::Text;
use crate::yaml::{join, Kind, Node};

/// A scalar YAML node as an attribute value; lists and mappings are not attribute values.
pub fn attr_from_node(node: &Node) -> Option<AttrValue> {
    Some(match &node.kind {
        Kind::Str(s) => AttrValue::Str(Text::from(s.as_str())),
        Kind::Int(i) => AttrValue::Int(*i),
        Kind::Float(f) => AttrValue::Double(*f),
        Kind::Bool(b) => AttrValue::Bool(*b),
        _ => return None,
    })
}

/// A mapping key (always text in YAML) read back as the scalar it spells.
pub fn attr_from_key(key: &str) -> AttrValue {
    match key {
        "true" => AttrValue::Bool(true),
        "false" => AttrValue::Bool(false),
        _ => key
            .parse::<i64>()
            .map_or_else(|_| AttrValue::str(key), AttrValue::Int),
    }
}

/// `{name: scalar, ...}` as attributes, in file order; non-scalar values are errors.
pub(crate) fn read_attr_map(node: &Node, path: &str, d: &mut Diags) -> Vec<(String, AttrValue)> {
    let mut out = Vec::new();
    let Some(entries) = node.as_map() else {
        d.error(
            node.pos,
            path,
            "expected a mapping of attribute name → value",
        );
        return out;
    };
    if entries.len() > crate::model::MAX_ATTRIBUTES {
        d.error(
            node.pos,
            path,
            crate::model::over_limit(
                entries.len(),
                "attributes",
                crate::model::MAX_ATTRIBUTES,
                "OpenTelemetry SDKs keep 128 per resource by default",
            ),
        );
        return out;
    }
    for (k, v) in entries {
        match attr_from_node(v) {
            Some(val) => out.push((k.clone(), val)),
            None => d.error(v.pos, &join(path, k), "attribute values must be scalars"),
        }
    }
    out
}

/// ` (did you mean `x`?)` when a defined name is close to `key`, else nothing.
pub(crate) fn did_you_mean<'a>(key: &str, defined: impl IntoIterator<Item = &'a str>) -> String {
    crate::diag::closest(key, defined)
        .map(|c| format!(" (did you mean `{c}`?)"))
        .unwrap_or_default()
}
