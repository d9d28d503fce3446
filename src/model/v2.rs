//! The types of a scenario file in the predecessor's v2 format: end users whose
//! turns say literally what each span carries (span plan, events, tool chain,
//! payloads, LLM usage), with per-span-class latency profiles. Plain data;
//! `model::read::scenario::v2` reads it and `plan::v2` turns it into span trees.

use crate::diag::Pos;
use crate::model::AttrValue;
use crate::yaml::Node;

/// Everything of a v2 file beyond the fields every scenario has.
#[derive(Clone, Debug, Default)]
pub struct V2Scenario {
    /// `endusers`, in file order; one iteration runs every turn of every one.
    pub endusers: Vec<V2Enduser>,
    /// `latency_profiles.<name>.span_durations_ms`: per span class, the duration.
    pub latency_profiles: Vec<(String, Vec<(String, V2Duration)>)>,
    /// `default_latency_profile` (default `normal`).
    pub default_profile: String,
    /// `latency_profile_conditions`: the first whose profile exists applies, with the
    /// attributes it puts on the agent turn.
    pub profile_conditions: Vec<(String, Vec<(String, AttrValue)>)>,
    /// `workload_schedule`: windows, by profile name, that switch the turn's latency
    /// profile while the run's clock is inside them.
    pub schedule: Vec<V2Window>,
}

/// A span duration: `{mean, deviation}` in ms, or a bare number.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct V2Duration {
    /// Mean, ms.
    pub mean: f64,
    /// Standard deviation, ms.
    pub deviation: f64,
}

/// `workload_schedule.<profile>`: when the profile of that name applies.
#[derive(Clone, Debug)]
pub struct V2Window {
    /// The latency profile the window selects (its key).
    pub profile: String,
    /// IANA time zone of the hours and weekdays.
    pub timezone: String,
    /// ISO weekdays (1 Monday … 7 Sunday); empty: every day.
    pub weekdays: Vec<u8>,
    /// First hour inside the window (0–23).
    pub start_hour: u8,
    /// First hour after it (0–24); before `start_hour`: the window wraps midnight.
    pub end_hour: u8,
    /// Where the window is written.
    pub pos: Pos,
}

/// One `endusers[]` entry: a person whose turns form one session.
#[derive(Clone, Debug, Default)]
pub struct V2Enduser {
    /// `id`: appended to the instrumentation scope name.
    pub id: String,
    /// `vendor.enduser.pseudo.id`: the end user's id on the turn's spans.
    pub pseudo_id: Option<String>,
    /// `turns`, in order.
    pub turns: Vec<V2Turn>,
}

/// Which parts of the request a turn's `span_plan` emits, each with its children's
/// classes (a membership filter: the order is the format's).
#[derive(Clone, Debug, Default)]
pub struct V2SpanPlan {
    /// `cp_request`: request validation and which of its checks run.
    pub cp_request: Option<Vec<String>>,
    /// `data_plane`: the agent turn and which of its steps run.
    pub data_plane: Option<Vec<String>>,
    /// `cp_response`: response validation and its checks.
    pub cp_response: Option<Vec<String>>,
}

/// A `span_events[]` entry: an event recorded on every span of a class.
#[derive(Clone, Debug)]
pub struct V2Event {
    /// `target_span_class`.
    pub target: String,
    /// `name`, emitted as written.
    pub name: String,
    /// `attributes`, as written (vendor keys are re-prefixed when compiled).
    pub attrs: Vec<(String, AttrValue)>,
}

/// One step of a turn's `tool_chain`.
#[derive(Clone, Debug)]
pub struct V2ToolStep {
    /// The MCP server key (empty: the end user's, the scenario's, else `phone`).
    pub server: Option<String>,
    /// The tool name.
    pub tool: String,
}

/// One `turns[]` entry: exactly what the spans of that turn carry.
#[derive(Clone, Debug, Default)]
pub struct V2Turn {
    /// `turn_index` (default: position + 1).
    pub turn_index: u32,
    /// `span_plan`; `None`: derived from what the turn has (see the format's rules).
    pub span_plan: Option<V2SpanPlan>,
    /// `vendor.enduser.request.raw`: what the user sent.
    pub request_raw: Option<String>,
    /// `agent_response`: what the agent answered.
    pub agent_response: Option<String>,
    /// Whether the turn has a `tool_chain` key (it decides the data plane without a plan).
    pub has_tool_chain: bool,
    /// `tool_chain`, in order (duplicates allowed).
    pub tool_chain: Vec<V2ToolStep>,
    /// `span_events`.
    pub events: Vec<V2Event>,
    /// `gen_ai.tool.call.arguments`: per tool, as written.
    pub arguments: Vec<(String, Node)>,
    /// `gen_ai.tool.call.result`: per tool, as written.
    pub results: Vec<(String, Node)>,
    /// The LLM call's own attributes (`gen_ai.request.type`, `gen_ai.response.finish_reason`,
    /// token usage, the `llm.*` flags), keys as written.
    pub llm_attrs: Vec<(String, AttrValue)>,
    /// `gentoro.llm.content.capture.enabled`: the LLM call carries the messages.
    pub capture: bool,
    /// Explicit `gen_ai.input.messages` / `gen_ai.output.messages` (JSON text).
    pub messages: (Option<String>, Option<String>),
}

impl V2Scenario {
    /// The profile a turn runs with outside any schedule window: the first condition whose
    /// profile exists, else the default.
    pub fn base_profile(&self) -> &str {
        self.profile_conditions
            .iter()
            .map(|(p, _)| p.as_str())
            .find(|p| self.latency_profiles.iter().any(|(n, _)| n == p))
            .unwrap_or(&self.default_profile)
    }
}
