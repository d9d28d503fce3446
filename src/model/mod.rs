//! The typed model of otelsim's input files, validated at load time.
//!
//! `config` is `config.yaml` (plus the optional `resource.yaml` beside it),
//! `semconv` the semantic-conventions file, `scenario` one definition file.

pub mod config;
pub mod distribution;
pub mod scenario;
pub mod semconv;

use crate::yaml::{Kind, Node};
use std::fmt;
use std::sync::Arc;

/// An attribute value as otelsim emits it.
#[derive(Clone, Debug, PartialEq)]
pub enum AttrValue {
    Str(Arc<str>),
    Int(i64),
    Double(f64),
    Bool(bool),
}

impl AttrValue {
    pub fn str(s: &str) -> Self {
        AttrValue::Str(Arc::from(s))
    }

    /// A scalar YAML node as a value; lists and mappings are not attribute values.
    pub fn from_node(node: &Node) -> Option<Self> {
        Some(match &node.kind {
            Kind::Str(s) => AttrValue::Str(Arc::from(s.as_str())),
            Kind::Int(i) => AttrValue::Int(*i),
            Kind::Float(f) => AttrValue::Double(*f),
            Kind::Bool(b) => AttrValue::Bool(*b),
            _ => return None,
        })
    }

    /// A mapping key (always text in YAML) read back as the scalar it spells.
    pub fn from_key(key: &str) -> Self {
        match key {
            "true" => AttrValue::Bool(true),
            "false" => AttrValue::Bool(false),
            _ => {
                if let Ok(i) = key.parse::<i64>() {
                    AttrValue::Int(i)
                } else {
                    AttrValue::str(key)
                }
            }
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            AttrValue::Str(s) => Some(s),
            _ => None,
        }
    }
}

impl fmt::Display for AttrValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttrValue::Str(s) => write!(f, "{s}"),
            AttrValue::Int(i) => write!(f, "{i}"),
            AttrValue::Double(d) => write!(f, "{d}"),
            AttrValue::Bool(b) => write!(f, "{b}"),
        }
    }
}
