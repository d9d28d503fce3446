//! The OpenInference view of a trace, for LLM-observability UIs (Arize Phoenix and
//! others) that classify spans and fill their trace and session lists from
//! OpenInference attributes rather than from the OpenTelemetry GenAI conventions.
//!
//! `--genai-profile` chooses the families: `otel` (the GenAI conventions only),
//! `openinference` (OpenInference only: the GenAI operation name and message
//! attributes are left out), `both` (the default). OpenInference adds a span kind to
//! every span, what the user sent and got (`input.value` / `output.value`) on every
//! trace root and LLM call, and the end user and session on the roots (a retrieval's
//! query and documents are listed where they are drawn, in `retrieval`).

use super::RequestInput;
use crate::class::SpanClass;
use crate::model::AttrValue;
use crate::plan::{Role, World};
use crate::record::{Key, SpanRecord, StatusCode, Text};

/// Which attribute families describe GenAI work (`--genai-profile`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GenAiProfile {
    /// The OpenTelemetry GenAI conventions only.
    Otel,
    /// OpenInference only.
    OpenInference,
    /// Both (the default): every UI finds what it reads.
    #[default]
    Both,
}

impl GenAiProfile {
    /// `otel`, `openinference` or `both`.
    pub fn parse(s: &str) -> Result<GenAiProfile, String> {
        match s.to_ascii_lowercase().as_str() {
            "otel" => Ok(GenAiProfile::Otel),
            "openinference" => Ok(GenAiProfile::OpenInference),
            "both" => Ok(GenAiProfile::Both),
            other => Err(format!(
                "unknown GenAI profile `{other}`; valid: otel, openinference, both"
            )),
        }
    }

    /// Whether OpenInference attributes are added.
    pub fn openinference(self) -> bool {
        self != GenAiProfile::Otel
    }

    /// Whether the GenAI conventions' operation and message attributes stay.
    pub fn otel(self) -> bool {
        self != GenAiProfile::OpenInference
    }
}

/// The interned OpenInference keys and span kinds.
#[derive(Clone, Debug)]
pub struct OiKeys {
    kind: Key,
    input: Key,
    input_mime: Key,
    output: Key,
    output_mime: Key,
    user: Key,
    session: Key,
    text: AttrValue,
    json: AttrValue,
    kinds: [AttrValue; 7],
}

impl Default for OiKeys {
    fn default() -> Self {
        let k = |s: &str| -> Key { Key::from(s) };
        OiKeys {
            kind: k("openinference.span.kind"),
            input: k("input.value"),
            input_mime: k("input.mime_type"),
            output: k("output.value"),
            output_mime: k("output.mime_type"),
            user: k("user.id"),
            session: k("session.id"),
            // Interned: every span copies them, with no reference count to touch.
            text: AttrValue::Str(Text::interned("text/plain")),
            json: AttrValue::Str(Text::interned("application/json")),
            kinds: [
                "AGENT",
                "LLM",
                "TOOL",
                "RETRIEVER",
                "CHAIN",
                "GUARDRAIL",
                "EMBEDDING",
            ]
            .map(|kind| AttrValue::Str(Text::interned(kind))),
        }
    }
}

/// The OpenInference span kind of a role: a tool call is one TOOL span, its attempts
/// CHAIN steps under it (so the call reads as one execution with its retries), the
/// recommendation a CHAIN step (it names a tool but runs none).
fn kind_of(role: Role) -> usize {
    match role {
        Role::Orchestrate => 0,
        Role::Llm => 1,
        Role::McpExecute => 2,
        Role::Rag => 3,
        Role::ControlPlane => 5,
        Role::Planner
        | Role::Task
        | Role::ToolsRecommend
        | Role::Compose
        | Role::McpAttempt
        | Role::Generic => 4,
    }
}

/// Adds the OpenInference view to a finished trace (and, for the `openinference`
/// profile, leaves out the GenAI operation and message attributes).
pub(super) fn annotate(world: &World, input: &RequestInput<'_>, spans: &mut [SpanRecord]) {
    let profile = world.genai_profile;
    if !profile.openinference() {
        return;
    }
    let oi = &world.oi_keys;
    let k = &world.keys;
    let texts = input.sample.map(|s| {
        (
            AttrValue::Str(s.user_input.clone().into()),
            s.answer.clone(),
        )
    });
    for s in spans.iter_mut() {
        let role = Role::of(s.class);
        if !profile.otel() {
            s.remove_attr(&k.op_name);
            s.remove_attr(&k.input_messages);
            s.remove_attr(&k.output_messages);
        }
        s.set_attr(oi.kind, oi.kinds[kind_of(role)].clone());
        let root = s.parent_span_id.is_none();
        if root || role == Role::Orchestrate {
            s.set_attr(oi.user, AttrValue::Str(input.enduser_id.clone().into()));
            s.set_attr(oi.session, AttrValue::Str(input.session_id.clone().into()));
        }
        if role == Role::McpExecute {
            // A tool's input and output are its call's arguments and result.
            for (from, to, mime) in [
                (&k.tool_call_arguments, &oi.input, &oi.input_mime),
                (&k.tool_call_result, &oi.output, &oi.output_mime),
            ] {
                if let Some(v) = s.attr(from).cloned() {
                    s.set_attr(*to, v);
                    s.set_attr(*mime, oi.json.clone());
                }
            }
            continue;
        }
        let Some((user, answer)) = &texts else {
            continue;
        };
        if root || role == Role::Llm || role == Role::Orchestrate {
            // The gateway checks the request before any answer exists: its output is the
            // verdict; the response check validates the answer itself.
            let (inp, out) = match s.class.class {
                SpanClass::RequestValidation => (user.clone(), s.attr(&k.request_outcome).cloned()),
                SpanClass::ResponseValidation => (answer.clone(), Some(answer.clone())),
                // A failed call answered nothing.
                _ => (
                    user.clone(),
                    (s.status != StatusCode::Error).then(|| answer.clone()),
                ),
            };
            s.set_attr(oi.input, inp);
            s.set_attr(oi.input_mime, oi.text.clone());
            if let Some(out) = out {
                s.set_attr(oi.output, out);
                s.set_attr(oi.output_mime, oi.text.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_parse_and_say_which_families_they_keep() {
        assert_eq!(GenAiProfile::parse("BOTH"), Ok(GenAiProfile::Both));
        let oi = GenAiProfile::parse("openinference").unwrap();
        assert!(oi.openinference() && !oi.otel());
        let otel = GenAiProfile::parse("otel").unwrap();
        assert!(!otel.openinference() && otel.otel());
        assert!(GenAiProfile::parse("phoenix")
            .unwrap_err()
            .contains("valid: otel, openinference, both"));
    }

    #[test]
    fn every_role_has_a_kind_a_ui_understands() {
        let k = OiKeys::default();
        for role in [
            Role::Orchestrate,
            Role::Planner,
            Role::Task,
            Role::Llm,
            Role::ToolsRecommend,
            Role::McpExecute,
            Role::McpAttempt,
            Role::Compose,
            Role::Rag,
            Role::ControlPlane,
            Role::Generic,
        ] {
            let kind = k.kinds[kind_of(role)].to_string();
            assert!(
                ["AGENT", "LLM", "TOOL", "RETRIEVER", "CHAIN", "GUARDRAIL"]
                    .contains(&kind.as_str()),
                "{role:?}: {kind}"
            );
        }
        assert_eq!(k.kinds[kind_of(Role::McpExecute)].to_string(), "TOOL");
        assert_eq!(k.kinds[kind_of(Role::McpAttempt)].to_string(), "CHAIN");
        assert_eq!(k.kinds[kind_of(Role::ToolsRecommend)].to_string(), "CHAIN");
    }
}
