//! Span classes: what a span is, as the class its name carries after the
//! vendor prefix (`vendor.llm.call` → `llm.call`). The generator, the log and
//! metric derivations and the encoders key their rules by this enum; a class a
//! scenario invents is `Other` and keeps its written name in the span.

/// A span class otelsim knows, or `Other`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SpanClass {
    /// `a2a.orchestrate`: the agent turn (the data plane's root).
    Orchestrate,
    /// `a2a.call`: a call to another agent.
    A2aCall,
    /// `planner`.
    Planner,
    /// `task.execute`.
    TaskExecute,
    /// `llm.call`: a GenAI inference.
    LlmCall,
    /// `tools.recommend`: choosing the tool to call.
    ToolsRecommend,
    /// `mcp.tool.execute`: an MCP tool call (its attempts are `.attempt` spans).
    McpToolExecute,
    /// `response.compose`.
    ResponseCompose,
    /// `context.augment`: retrieval that augments the prompt.
    ContextAugment,
    /// `rag.retrieve`.
    RagRetrieve,
    /// `request.validation`: the control plane's incoming check.
    RequestValidation,
    /// `response.validation`: the control plane's outgoing check.
    ResponseValidation,
    /// `validation.payload`.
    ValidationPayload,
    /// `validation.policy`.
    ValidationPolicy,
    /// `augmentation`.
    Augmentation,
    /// `payload.validation` (predecessor spelling).
    PayloadValidation,
    /// `policy.validation` (predecessor spelling).
    PolicyValidation,
    /// `augmentation.validation` (predecessor spelling).
    AugmentationValidation,
    /// Any other class a scenario names.
    Other,
}

/// Every known class with its written name (the table `parse` and `name` read).
const NAMES: &[(SpanClass, &str)] = &[
    (SpanClass::Orchestrate, "a2a.orchestrate"),
    (SpanClass::A2aCall, "a2a.call"),
    (SpanClass::Planner, "planner"),
    (SpanClass::TaskExecute, "task.execute"),
    (SpanClass::LlmCall, "llm.call"),
    (SpanClass::ToolsRecommend, "tools.recommend"),
    (SpanClass::McpToolExecute, "mcp.tool.execute"),
    (SpanClass::ResponseCompose, "response.compose"),
    (SpanClass::ContextAugment, "context.augment"),
    (SpanClass::RagRetrieve, "rag.retrieve"),
    (SpanClass::RequestValidation, "request.validation"),
    (SpanClass::ResponseValidation, "response.validation"),
    (SpanClass::ValidationPayload, "validation.payload"),
    (SpanClass::ValidationPolicy, "validation.policy"),
    (SpanClass::Augmentation, "augmentation"),
    (SpanClass::PayloadValidation, "payload.validation"),
    (SpanClass::PolicyValidation, "policy.validation"),
    (SpanClass::AugmentationValidation, "augmentation.validation"),
];

/// Suffix of the class of a retried step's attempt spans.
pub const ATTEMPT_SUFFIX: &str = ".attempt";

impl SpanClass {
    /// The class of a written class name (without prefix); `.attempt` classes
    /// are their step's class with `attempt` set (see [`ClassOf`]).
    pub fn parse(class: &str) -> SpanClass {
        NAMES
            .iter()
            .find(|(_, n)| *n == class)
            .map_or(SpanClass::Other, |(c, _)| *c)
    }

    /// The written name; `None` for `Other`.
    pub fn name(self) -> Option<&'static str> {
        NAMES.iter().find(|(c, _)| *c == self).map(|(_, n)| *n)
    }

    /// Classes of the control plane's validation spans.
    pub fn is_control_plane(self) -> bool {
        matches!(
            self,
            SpanClass::RequestValidation
                | SpanClass::ResponseValidation
                | SpanClass::ValidationPayload
                | SpanClass::ValidationPolicy
                | SpanClass::Augmentation
                | SpanClass::PayloadValidation
                | SpanClass::PolicyValidation
                | SpanClass::AugmentationValidation
        )
    }
}

/// A span's class and whether the span is one attempt of a retried step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClassOf {
    /// The step's class.
    pub class: SpanClass,
    /// An attempt span (`<class>.attempt`).
    pub attempt: bool,
}

impl ClassOf {
    /// A step's class (not an attempt).
    pub fn step(class: SpanClass) -> Self {
        ClassOf {
            class,
            attempt: false,
        }
    }

    /// Parses a written class, `.attempt` suffix included.
    pub fn parse(written: &str) -> Self {
        match written.strip_suffix(ATTEMPT_SUFFIX) {
            Some(step) => ClassOf {
                class: SpanClass::parse(step),
                attempt: true,
            },
            None => ClassOf::step(SpanClass::parse(written)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_class_round_trips_through_its_name() {
        for (c, n) in NAMES {
            assert_eq!(SpanClass::parse(n), *c);
            assert_eq!(c.name(), Some(*n));
        }
        assert_eq!(SpanClass::parse("checkout.pay"), SpanClass::Other);
        assert_eq!(SpanClass::Other.name(), None);
    }

    #[test]
    fn attempt_classes_keep_their_step() {
        let a = ClassOf::parse("mcp.tool.execute.attempt");
        assert_eq!(a.class, SpanClass::McpToolExecute);
        assert!(a.attempt);
        assert_eq!(
            ClassOf::parse("llm.call"),
            ClassOf::step(SpanClass::LlmCall)
        );
        assert_eq!(ClassOf::parse("my.step.attempt").class, SpanClass::Other);
    }
}
