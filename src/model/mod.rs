//! The typed model of otelsim's input files, validated at load time.
//!
//! `config` is `config.yaml` (plus the optional `resource.yaml` beside it),
//! `semconv` the semantic-conventions file, `scenario` one definition file.

pub mod config;
pub mod distribution;
pub mod scenario;
pub mod semconv;

pub use crate::record::AttrValue;

use crate::yaml::{Kind, Node};
use std::sync::Arc;

/// A scalar YAML node as an attribute value; lists and mappings are not attribute values.
pub fn attr_from_node(node: &Node) -> Option<AttrValue> {
    Some(match &node.kind {
        Kind::Str(s) => AttrValue::Str(Arc::from(s.as_str())),
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
