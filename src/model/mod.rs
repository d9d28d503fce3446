//! The typed model of otelsim's input files, validated at load time.
//!
//! Types, one module per input: `config` is `config.yaml` (plus the optional
//! `resource.yaml` beside it), `scenario` one definition file, `semconv` the
//! semantic-conventions file; `distribution` holds the distributions they declare
//! and their sampling. `read` turns YAML trees into those types and reports every
//! problem with its file, line and key (semconv reads itself, in `semconv`).

pub mod config;
pub mod distribution;
pub mod read;
pub mod scenario;
pub mod semconv;

pub use crate::record::AttrValue;
pub use read::{attr_from_key, attr_from_node};
