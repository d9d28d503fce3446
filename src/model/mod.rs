//! The typed model of otelsim's input files, validated at load time.
//!
//! Types, one module per input: `config` is `config.yaml` (plus the optional
//! `resource.yaml` beside it), `scenario` one definition file, `semconv` the
//! semantic-conventions file; `distribution` holds the distributions they declare
//! and their sampling. `read` turns YAML trees into those types and reports every
//! problem with its file, line and key (semconv reads itself, in `semconv`).

pub mod config;
pub mod distribution;
pub mod episode;
pub mod instability;
pub mod read;
pub mod scenario;
pub mod semconv;
pub mod v2;

pub use crate::record::AttrValue;
pub use read::{attr_from_key, attr_from_node};

/// Most attributes one step, control-plane template step, resource or semconv
/// section may declare: what OpenTelemetry SDKs keep per span by default, and
/// what keeps setting a span's attributes (a scan of the ones already set) cheap.
pub const MAX_ATTRIBUTES: usize = 128;

/// Most events a control-plane step may declare (`validation_errors`): what
/// OpenTelemetry SDKs keep per span by default.
pub const MAX_EVENTS: usize = 128;

/// Most turns one multi-turn session may script: a session's traces are
/// generated together, so its turns decide the memory of one pick.
pub const MAX_TURNS: usize = 1_000;

/// Most conversation samples one list (`conversation.samples`, a workflow's
/// `conversation_samples`) may hold.
pub const MAX_SAMPLES: usize = 10_000;

/// The error message of a list over its limit: "`n` entries; at most `max` ...".
pub(crate) fn over_limit(n: usize, what: &str, max: usize, why: &str) -> String {
    format!("{n} {what}; at most {max} are allowed ({why})")
}
