//! Generate: plan + seeded RNG + anchor time → trace records. Pure: no I/O, no clock.
//!
//! Each span instance is first built at relative time 0 with its sampled
//! duration; a parent then lays its children out (sequentially with small gaps,
//! or concurrently when `parallel`) and shifts each child's contiguous span range
//! into place. Durations are the sampled latencies, extended only when children
//! need more room, so children always nest inside their parents.

mod agent_loop;
mod attrs;
mod cost;
mod coverage;
mod episode;
mod instability;
mod openinference;
mod retrieval;
mod span_names;

pub use attrs::{
    attach_semconv_fill, declared_attrs, is_duration_key, owned_by_code, DeclaredAttr, Derived,
    Fill, FillAttr, When,
};

pub use coverage::never_emitted;
pub use openinference::{GenAiProfile, OiKeys};

use attrs::FillCtx;

use crate::incidents::Effects;
use crate::model::AttrValue;
use crate::plan::{
    Injection, Node, Part, PlannedSample, RetryPlan, Role, ScenarioPlan, ToolRef, World,
};
use crate::record::{Key, SharedAttrs, SpanKind, SpanRecord, StatusCode, Text, TraceRecord};
use rand::Rng;
use std::sync::Arc;

const MS: f64 = 1_000_000.0;

/// Per-request identity shared by every span of every trace of one request.
#[derive(Clone, Debug)]
pub struct RequestInput<'a> {
    /// `<prefix>.session.id` (and `gen_ai.conversation.id`), shared by every
    /// span of the request (one allocation, not one per span).
    pub session_id: Arc<str>,
    /// `<prefix>.request.id`, shared by every trace of the request.
    pub request_id: Arc<str>,
    /// `<prefix>.enduser.pseudo.id` of the agent turn.
    pub enduser_id: Arc<str>,
    /// 1-based turn number for multi-turn sessions.
    pub turn_index: Option<u32>,
    /// The conversation sample the LLM spans carry; `None` when the scenario has none.
    pub sample: Option<&'a PlannedSample>,
    /// The schedule window the request falls in (v2), which picks its latency profile.
    pub window: Option<usize>,
    /// What the incidents in force do to the services the request reaches.
    pub effects: &'a Effects,
}

/// Generates one iteration of a scenario: one request, or one session of several
/// turns laid back so the last turn ends at `end_ns`. `iteration` picks the sample of a
/// scenario that cycles through its samples.
pub fn generate_iteration<R: Rng + ?Sized>(
    world: &World,
    plan: &ScenarioPlan,
    end_ns: u64,
    iteration: u64,
    rng: &mut R,
) -> Vec<TraceRecord> {
    generate_iteration_with(world, plan, end_ns, iteration, &Effects::default(), rng)
}

/// [`generate_iteration`] under incidents: the services `effects` names fail and
/// take as long as the incidents in force say.
pub fn generate_iteration_with<R: Rng + ?Sized>(
    world: &World,
    plan: &ScenarioPlan,
    end_ns: u64,
    iteration: u64,
    effects: &Effects,
    rng: &mut R,
) -> Vec<TraceRecord> {
    if let Some(def) = &plan.instability {
        return instability::session(world, plan, def, end_ns, rng);
    }
    let ids = &world.id_formats;
    let session: Arc<str> = ids.session_id.render(rng, &plan.tenant_id).into();
    let enduser: Arc<str> = ids.enduser_pseudo_id.render(rng, &plan.tenant_id).into();
    if plan.turns.is_empty() {
        let request = ids.request_id.render(rng, &plan.tenant_id).into();
        let n = plan.samples.len();
        let sample = (n > 0).then(|| {
            let i = if plan.cycle_samples {
                (iteration % n as u64) as usize
            } else {
                rng.random_range(0..n)
            };
            &plan.samples[i]
        });
        let input = RequestInput {
            session_id: session,
            request_id: request,
            enduser_id: enduser,
            turn_index: None,
            sample,
            window: None,
            effects,
        };
        return generate_request(world, plan, &input, end_ns, rng);
    }
    let window = plan.windows.iter().position(|w| w.is_active(end_ns));
    // Generate each turn at a provisional end, then lay the session back from end_ns.
    let mut turns: Vec<Vec<TraceRecord>> = Vec::new();
    let (mut session, mut turn_no) = (session, 0u32);
    for (i, sample) in plan.turns.iter().enumerate() {
        // A v2 scenario's next end user starts a session of their own.
        if sample.new_session && i > 0 {
            session = ids.session_id.render(rng, &plan.tenant_id).into();
            turn_no = 0;
        }
        turn_no += 1;
        let request = ids.request_id.render(rng, &plan.tenant_id).into();
        let input = RequestInput {
            session_id: session.clone(),
            request_id: request,
            enduser_id: sample.enduser_id.clone().unwrap_or_else(|| enduser.clone()),
            turn_index: Some(turn_no),
            sample: Some(sample),
            window,
            effects,
        };
        turns.push(generate_request(world, plan, &input, end_ns, rng));
    }
    // Think time between a reply and the next user message.
    let mut offset = 0u64;
    for i in (0..turns.len()).rev() {
        if offset > 0 {
            for t in &mut turns[i] {
                for s in &mut t.spans {
                    s.start_ns -= offset.min(s.start_ns);
                    s.end_ns -= offset.min(s.end_ns);
                    for e in &mut s.events {
                        e.time_ns -= offset.min(e.time_ns);
                    }
                }
            }
        }
        if i > 0 {
            let think_ms: f64 = rng.random_range(2_000.0..12_000.0);
            offset += request_duration_ns(&turns[i]) + (think_ms * 1e6) as u64;
        }
    }
    turns.into_iter().flatten().collect()
}

/// Generates every trace of one request (control-plane and data-plane parts),
/// laid back so that the last part ends exactly at `end_ns`.
pub fn generate_request<R: Rng + ?Sized>(
    world: &World,
    plan: &ScenarioPlan,
    input: &RequestInput<'_>,
    end_ns: u64,
    rng: &mut R,
) -> Vec<TraceRecord> {
    // A turn with traces of its own (and, in a schedule window, that window's durations).
    let own = input.sample.and_then(|s| s.turn_parts.as_deref());
    let parts = match (own, input.window) {
        (Some(t), Some(w)) if w < t.by_window.len() => &t.by_window[w],
        (Some(t), _) => &t.parts,
        (None, _) => &plan.parts,
    };
    let mut traces: Vec<(TraceRecord, u64)> = parts
        .iter()
        .map(|part| {
            let t = generate_part(world, plan, part, input, rng);
            let dur = t.spans.first().map_or(0, |s| s.end_ns);
            (t, dur)
        })
        .collect();
    // Parts follow one another (validation → turn → response validation) with a short hand-off gap.
    let gaps: Vec<u64> = (0..traces.len())
        .map(|_| ms_ns(rng.random_range(0.5..3.0)))
        .collect();
    let total: u64 = traces.iter().map(|(_, d)| d).sum::<u64>() + gaps.iter().skip(1).sum::<u64>();
    let mut cursor = end_ns.saturating_sub(total);
    for (i, (t, dur)) in traces.iter_mut().enumerate() {
        if i > 0 {
            cursor += gaps[i];
        }
        shift(&mut t.spans, cursor);
        cursor += *dur;
    }
    let mut traces: Vec<TraceRecord> = traces.into_iter().map(|(t, _)| t).collect();
    if plan.single_trace && traces.len() > 1 {
        let mut merged = merge_parts(traces);
        // The root now spans the request: its duration attributes follow.
        if let (Some(root), Some(part)) = (merged.spans.first_mut(), plan.parts.first()) {
            attrs::refresh_durations(root, &part.root);
        }
        return vec![merged];
    }
    // Each part's root links to the previous part's root, so backends can walk the request.
    for i in 1..traces.len() {
        let (prev, rest) = traces.split_at_mut(i);
        let p = &prev[i - 1];
        if let (Some(proot), Some(root)) = (p.spans.first(), rest[0].spans.first_mut()) {
            root.links.push((p.trace_id, proot.span_id));
        }
    }
    traces
}

/// One trace for the whole request: the first part's root (the gateway's request
/// span) becomes the parent of every later part's root and is stretched to cover them.
fn merge_parts(mut traces: Vec<TraceRecord>) -> TraceRecord {
    let mut first = traces.remove(0);
    let Some(root_id) = first.spans.first().map(|s| s.span_id) else {
        return first;
    };
    let mut end = first.spans[0].end_ns;
    for t in traces {
        for mut s in t.spans {
            if s.parent_span_id.is_none() {
                s.parent_span_id = Some(root_id);
            }
            end = end.max(s.end_ns);
            first.spans.push(s);
        }
    }
    first.spans[0].end_ns = end;
    first
}

/// Total duration of a request's parts including hand-off gaps; used to lay sessions out.
pub fn request_duration_ns(traces: &[TraceRecord]) -> u64 {
    let start = traces
        .iter()
        .filter_map(|t| t.spans.first())
        .map(|s| s.start_ns)
        .min()
        .unwrap_or(0);
    let end = traces
        .iter()
        .filter_map(|t| t.spans.first())
        .map(|s| s.end_ns)
        .max()
        .unwrap_or(0);
    end.saturating_sub(start)
}

/// Longest span otelsim lays out (one day): keeps every sum of durations far from overflow.
const MAX_SPAN_MS: f64 = 86_400_000.0;

fn ms_ns(ms: f64) -> u64 {
    // NaN and negatives become 0; `as` saturates.
    (ms.clamp(0.0, MAX_SPAN_MS) * MS) as u64
}

fn shift(spans: &mut [SpanRecord], by: u64) {
    for s in spans {
        s.start_ns = s.start_ns.saturating_add(by);
        s.end_ns = s.end_ns.saturating_add(by);
        for e in &mut s.events {
            e.time_ns = e.time_ns.saturating_add(by);
        }
    }
}

fn nonzero_id<const N: usize, R: Rng + ?Sized>(rng: &mut R) -> [u8; N] {
    loop {
        let mut b = [0u8; N];
        rng.fill(&mut b[..]);
        if b.iter().any(|x| *x != 0) {
            return b;
        }
    }
}

/// Generates one trace at relative time 0 (the root starts at 0).
fn generate_part<R: Rng + ?Sized>(
    world: &World,
    plan: &ScenarioPlan,
    part: &Part,
    input: &RequestInput<'_>,
    rng: &mut R,
) -> TraceRecord {
    let trace_id = nonzero_id::<16, R>(rng);
    let sample = input.sample;
    let goal = match sample.and_then(|s| s.turn_parts.as_deref()) {
        Some(t) => t.goal.as_ref(),
        None => plan.goal.as_ref(),
    };
    let root = &part.root;
    let mut b = Builder {
        world,
        plan,
        input,
        rng,
        // A 2 KiB block (14 spans): a power of two, which the allocator serves
        // without over-allocating.
        spans: Vec::with_capacity(2048 / std::mem::size_of::<SpanRecord>()),
        tasks: 0,
        goal_target: None,
        goal: None,
        mcp_session: None,
        jsonrpc_requests: 0,
        forced_type: None,
        requested_call: None,
        call_ids: Vec::new(),
        model: None,
        role_set: Vec::with_capacity(24),
        identity: None,
        gaps: Vec::new(),
        weights: Vec::new(),
    };
    if let Some(g) = goal {
        let fires = g.rate >= 1.0 || (g.rate > 0.0 && b.rng.random_bool(g.rate));
        if fires && g.slots > 0 {
            b.goal_target = Some(g.fixed.unwrap_or_else(|| b.rng.random_range(0..g.slots)));
        }
    }
    b.goal = goal;
    b.instance(root, None, false);
    if let Some(ep) = &plan.episode {
        let agent = plan.agent_id.as_ref();
        episode::annotate(ep, &world.prefix.active, agent, &mut b.spans, b.rng);
    }
    if plan.track_costs {
        cost::annotate(world, &mut b.spans);
    }
    span_names::apply(world, &mut b.spans);
    // A topology's request is plain service traffic: no agent semantics to annotate.
    if !root.service_call {
        openinference::annotate(world, input, &mut b.spans);
    }
    TraceRecord {
        trace_id,
        scope: sample.and_then(|s| s.scope).unwrap_or(plan.scope),
        scenario: plan.name,
        spans: b.spans,
    }
}

struct Builder<'a, 'r, R: Rng + ?Sized> {
    world: &'a World,
    plan: &'a ScenarioPlan,
    input: &'a RequestInput<'a>,
    rng: &'r mut R,
    spans: Vec<SpanRecord>,
    tasks: u32,
    /// The injection slot this trace's goal targets, if the goal fires.
    goal_target: Option<u32>,
    /// The goal targeting of this trace (the plan's, or the turn's own tree's).
    goal: Option<&'a crate::plan::GoalPlan>,
    /// The `error.type` the next forced failure takes instead of a sampled one.
    forced_type: Option<Text>,
    /// `mcp.session.id`: one MCP client session per trace, made on first use.
    mcp_session: Option<Arc<str>>,
    /// JSON-RPC requests sent on that session so far (`jsonrpc.request.id` counts them).
    jsonrpc_requests: u32,
    /// The index in `world.models` of the model the turn's agent runs on, drawn
    /// by its first LLM call.
    model: Option<usize>,
    /// The tool call an LLM call asked for (tool name, call id), until that call is made.
    requested_call: Option<(Key, String)>,
    /// The call ids of the turn's tool calls, by slot, once an agent-loop LLM call asked
    /// for them.
    call_ids: Vec<String>,
    /// The role attributes of the span being finished: one vector for the trace.
    role_set: Vec<(Key, AttrValue)>,
    /// The identity pairs the trace's agent spans share, made with the first of them.
    identity: Option<Arc<SharedAttrs>>,
    /// `layout`'s gaps and free-gap weights, reused.
    gaps: Vec<u64>,
    weights: Vec<(usize, f64)>,
}

/// What happened to a span instance, for `finish_span`.
#[derive(Clone, Copy)]
struct Outcome<'a> {
    /// The `error.type` if the span failed (its own failure or a propagated one).
    failed: Option<&'a Text>,
    /// Whether the failure is the span's own (so its declared exception applies).
    own: bool,
    attempts: u32,
    call_id: Option<&'a str>,
    tool: Option<&'a ToolRef>,
    /// An exception that replaces the node's own on an injected failure.
    exception: Option<&'a (Arc<str>, Arc<str>)>,
    /// The HTTP status a goal's forced tool-call failure answered with.
    http_status: Option<i64>,
}

/// What a goal injects into the span it targets.
#[derive(Default)]
struct Injected {
    /// The span itself fails with this type.
    step_error: Option<Text>,
    /// The tool call's one attempt fails like this.
    attempt: Option<ForcedAttempt>,
    /// The call goes to another division's tool.
    tool: Option<ToolRef>,
    /// The goal's exception, replacing the node's own.
    exception: Option<(Arc<str>, Arc<str>)>,
}

/// How a span's children failed.
#[derive(Default)]
struct ChildFailures {
    /// The first failure of a child that propagates to its parent.
    propagated: Option<Text>,
    /// The first failure of any child.
    any: Option<Text>,
}

/// The single failing attempt a goal forces on a tool call.
struct ForcedAttempt {
    error_type: Text,
    latency_ms: f64,
    http_status: Option<i64>,
    exception: Option<(Arc<str>, Arc<str>)>,
}

/// A laid-out unit inside a parent: a contiguous range of spans and its duration.
struct Item {
    first: usize,
    end: usize,
    dur: u64,
    failed: Option<Text>,
    /// Fixed gap before this item (retry backoff), instead of a random one.
    backoff: Option<u64>,
}

impl<R: Rng + ?Sized> Builder<'_, '_, R> {
    fn new_span(
        &mut self,
        name: Key,
        kind: SpanKind,
        parent: Option<[u8; 8]>,
        node: &Node,
    ) -> usize {
        let span_id = nonzero_id::<8, R>(self.rng);
        let attrs = self.identity_attrs(node);
        self.spans.push(SpanRecord {
            span_id,
            parent_span_id: parent,
            name: name.into(),
            kind,
            start_ns: 0,
            end_ns: 0,
            attrs,
            events: Vec::new(),
            status: StatusCode::Unset,
            status_message: None,
            service: node.service,
            class: node.class,
            links: Vec::new(),
        });
        self.spans.len() - 1
    }

    /// Builds one instance of `node` (and its subtree) at relative time 0.
    fn instance(&mut self, node: &Node, parent: Option<[u8; 8]>, forced_fail: bool) -> Item {
        let first = self.spans.len();
        let idx = self.new_span(node.name, node.kind, parent, node);
        let span_id = self.spans[idx].span_id;
        let mut injected = self.injection(node);
        // An incident in force on the service this span handles a request of
        // changes its error rate and stretches its latency.
        let target = if node.service_call {
            node.handled_by
        } else {
            Some(node.service)
        };
        let (rate, factor) = target
            .and_then(|t| self.input.effects.of(t, node.error.rate))
            .unwrap_or((node.error.rate, 1.0));
        let drawn_fail = rate > 0.0 && self.rng.random_bool(rate.min(1.0));
        let own_fail = injected.step_error.is_some() || forced_fail || drawn_fail;
        let forced_type = if forced_fail {
            self.forced_type.take()
        } else {
            None
        };
        let mut own_type = match injected.step_error.clone().or(forced_type) {
            Some(t) => Some(t),
            None => own_fail.then(|| as_text(node.error.types.sample(self.rng))),
        };
        // A tool call fails through its requests: the step's own drawn failure is its
        // attempts' (each answers with the error), not a call failing around
        // requests that succeeded.
        if let (Some(retry), Some(t)) = (&node.retry, &own_type) {
            let drawn_only = drawn_fail && !forced_fail && injected.step_error.is_none();
            if node.role == Role::McpExecute && drawn_only && injected.attempt.is_none() {
                injected.attempt = Some(ForcedAttempt {
                    error_type: t.clone(),
                    latency_ms: retry.attempt_latency.sample(self.rng),
                    http_status: None,
                    exception: None,
                });
                own_type = None;
            }
        }
        let sampled = ms_ns(node.latency.sample(self.rng));
        let mcp_call_id: Option<String> = if node.role == Role::McpExecute {
            Some(self.mcp_call_id(node))
        } else {
            None
        };
        let tool = injected.tool.as_ref().or(node.tool.as_ref());
        let mut items: Vec<Item> = Vec::new();
        let (attempts, failures) = match &node.retry {
            Some(retry) => {
                let (n, fail) = self.attempts(
                    node,
                    retry,
                    span_id,
                    mcp_call_id.as_deref(),
                    tool,
                    injected.attempt.as_ref(),
                    &mut items,
                );
                (
                    n,
                    ChildFailures {
                        propagated: fail,
                        any: None,
                    },
                )
            }
            None => (0, self.children(node, span_id, own_fail, &mut items)),
        };
        // Attempts always run one after another; `parallel` applies to the step's children.
        let parallel = node.parallel && node.retry.is_none();
        let mut dur = self.layout(&items, sampled, parallel);
        if factor != 1.0 {
            // A slow service is slow whatever it waits on: the whole span stretches.
            dur = (dur as f64 * factor) as u64;
        }
        self.spans[idx].end_ns = dur;
        // A control-plane span reports its failed step's cause.
        let own_type = match (&own_type, node.role, &failures.any) {
            (Some(_), Role::ControlPlane, Some(cause)) if node.error.exception.is_none() => {
                Some(cause.clone())
            }
            _ => own_type,
        };
        let failed = own_type.clone().or(failures.propagated);
        let outcome = Outcome {
            failed: failed.as_ref(),
            own: own_type.is_some(),
            attempts,
            call_id: mcp_call_id.as_deref(),
            tool,
            // Only a step failure injected here is this span's own exception.
            exception: injected
                .exception
                .as_ref()
                .filter(|_| injected.attempt.is_none()),
            http_status: injected.attempt.as_ref().and_then(|f| f.http_status),
        };
        self.finish_span(idx, node, &outcome);
        self.content_event(idx, node);
        Item {
            first,
            end: self.spans.len(),
            dur,
            failed,
            backoff: None,
        }
    }

    /// What this trace's goal does to `node`, when `node` holds the targeted slot.
    fn injection(&mut self, node: &Node) -> Injected {
        let mut out = Injected::default();
        let injection = match (&node.injection, self.goal_target) {
            (Some((slot, inj)), Some(target)) if *slot == target => inj,
            _ => return out,
        };
        // A goal's tool-call failure replaces the attempts; a step failure is the span's own.
        out.exception = self.goal.and_then(|g| g.exception.clone());
        match injection {
            Injection::FailStep { error_type } => out.step_error = Some((*error_type).into()),
            Injection::FailToolCall {
                error_type,
                http_status,
                latency,
            } => {
                let status = (!http_status.is_empty())
                    .then(|| http_status[self.rng.random_range(0..http_status.len())]);
                out.attempt = Some(ForcedAttempt {
                    error_type: (*error_type).into(),
                    latency_ms: latency.sample(self.rng),
                    http_status: status,
                    exception: out.exception.clone(),
                });
            }
            Injection::WrongDivision {
                targets,
                error_type,
                latency,
            } => {
                if !targets.is_empty() {
                    out.tool = Some(targets[self.rng.random_range(0..targets.len())].clone());
                }
                out.attempt = Some(ForcedAttempt {
                    error_type: (*error_type).into(),
                    latency_ms: latency.sample(self.rng),
                    http_status: None,
                    exception: out.exception.clone(),
                });
            }
        }
        out
    }

    /// Builds the children of a step without retries under `span_id`: each by
    /// its probability and count, failures forced from a failed parent or
    /// cascading to later siblings.
    fn children(
        &mut self,
        node: &Node,
        span_id: [u8; 8],
        own_fail: bool,
        items: &mut Vec<Item>,
    ) -> ChildFailures {
        let mut f = ChildFailures::default();
        let mut cascade = false;
        for child in &node.children {
            if child.probability < 1.0 && !self.rng.random_bool(child.probability) {
                continue;
            }
            for _ in 0..child.count.sample(self.rng) {
                // The response rule: a reply composed after a failed step fails with its type.
                let upstream = (node.response_rule && child.role == Role::Compose)
                    .then(|| self.first_error_type(items))
                    .flatten();
                let forced = upstream.is_some()
                    || cascade
                    || (own_fail
                        && child.error.from_parent > 0.0
                        && self.rng.random_bool(child.error.from_parent));
                self.forced_type = upstream;
                let it = self.instance(child, Some(span_id), forced);
                if f.any.is_none() {
                    f.any.clone_from(&it.failed);
                }
                if it.failed.is_some() {
                    if child.error.cascade_to_siblings > 0.0
                        && self.rng.random_bool(child.error.cascade_to_siblings)
                    {
                        cascade = true;
                    }
                    if child.error.propagate && f.propagated.is_none() {
                        f.propagated.clone_from(&it.failed);
                    }
                }
                items.push(it);
            }
        }
        f
    }

    /// The `error.type` of the first failed step among `items` (whole subtrees); a
    /// failed attempt that a retry recovered from is no failed step.
    fn first_error_type(&self, items: &[Item]) -> Option<Text> {
        let k = &self.world.keys.error_type;
        items
            .iter()
            .flat_map(|it| &self.spans[it.first..it.end])
            .filter(|s| s.status == StatusCode::Error && !s.class.attempt)
            .find_map(|s| match s.attr(k) {
                Some(AttrValue::Str(t)) => Some(t.clone()),
                _ => None,
            })
    }

    /// One attempt span per attempt, separated by backoff gaps; the subtree of the
    /// step goes under the attempt that ends the sequence.
    #[allow(clippy::too_many_arguments)]
    fn attempts(
        &mut self,
        node: &Node,
        retry: &crate::plan::Retry,
        parent: [u8; 8],
        call_id: Option<&str>,
        tool: Option<&ToolRef>,
        forced: Option<&ForcedAttempt>,
        items: &mut Vec<Item>,
    ) -> (u32, Option<Text>) {
        let mut last_fail = None;
        let max = match (&retry.plan, forced) {
            (_, Some(_)) => 1,
            (RetryPlan::Random { max_attempts, .. }, None) => *max_attempts,
            (RetryPlan::Scripted(s), None) => s.len() as u32,
        };
        let mut prev_error: Option<Text> = None;
        let mut made = 0;
        for i in 0..max {
            let (success, error_type, latency) = self.draw_attempt(retry, forced, i);
            let retryable = match &retry.plan {
                RetryPlan::Random { retryable, .. } => {
                    retryable.is_empty() || retryable.iter().any(|r| **r == *error_type)
                }
                RetryPlan::Scripted(_) => true,
            };
            let is_last = success || i + 1 == max || !retryable;
            let backoff = (i > 0).then(|| self.backoff(retry, i));
            let first = self.spans.len();
            // An MCP call's attempts are its requests: MCP client spans.
            let kind = match node.role {
                Role::McpExecute => Role::McpAttempt.genai_kind().unwrap_or(node.kind),
                _ => node.kind,
            };
            let idx = self.new_span(retry.attempt_name, kind, Some(parent), node);
            let attempt_id = self.spans[idx].span_id;
            let mut sub: Vec<Item> = Vec::new();
            let mut sub_fail: Option<Text> = None;
            if is_last {
                for child in &node.children {
                    if child.probability < 1.0 && !self.rng.random_bool(child.probability) {
                        continue;
                    }
                    for _ in 0..child.count.sample(self.rng) {
                        let it = self.instance(child, Some(attempt_id), false);
                        if child.error.propagate && sub_fail.is_none() {
                            sub_fail.clone_from(&it.failed);
                        }
                        sub.push(it);
                    }
                }
            }
            // A failed child (that propagates) fails the attempt it ran under.
            let (success, error_type) = match (success, sub_fail) {
                (true, Some(t)) => (false, t),
                (ok, _) => (ok, error_type),
            };
            let dur = self.layout(&sub, ms_ns(latency), node.parallel);
            self.spans[idx].end_ns = dur;
            self.spans[idx].class.attempt = true;
            self.attempt_attrs(
                idx,
                node,
                retry,
                i,
                success,
                call_id,
                tool,
                prev_error.as_ref(),
                forced,
            );
            if !success {
                let exc = forced.and_then(|f| f.exception.as_ref());
                self.mark_failed(idx, node, &error_type, exc);
                self.failed_attempt_result(idx, node, &error_type);
            }
            let ctx = FillCtx {
                failed: (!success).then_some(&error_type),
                tool,
                backoff_ns: backoff,
            };
            self.fill(idx, node, true, &ctx);
            if !success {
                prev_error = Some(error_type.clone());
                last_fail = Some(error_type);
            } else {
                last_fail = None;
            }
            items.push(Item {
                first,
                end: self.spans.len(),
                dur,
                failed: None,
                backoff,
            });
            made += 1;
            if is_last {
                break;
            }
        }
        (made, last_fail)
    }

    /// Attempt `i`'s outcome, `error.type` (used if it failed) and latency in ms:
    /// forced by a goal, drawn from the per-attempt success rates, or scripted.
    fn draw_attempt(
        &mut self,
        retry: &crate::plan::Retry,
        forced: Option<&ForcedAttempt>,
        i: u32,
    ) -> (bool, Text, f64) {
        match (&retry.plan, forced) {
            (_, Some(f)) => (false, f.error_type.clone(), f.latency_ms),
            (
                RetryPlan::Random {
                    force_initial_failure,
                    success_rate_per_attempt,
                    error_types,
                    ..
                },
                None,
            ) => {
                let p = if i == 0 && *force_initial_failure {
                    0.0
                } else {
                    *success_rate_per_attempt
                        .get(i as usize)
                        .or(success_rate_per_attempt.last())
                        .unwrap_or(&1.0)
                };
                let ok = p >= 1.0 || (p > 0.0 && self.rng.random_bool(p));
                (
                    ok,
                    as_text(error_types.sample(self.rng)),
                    retry.attempt_latency.sample(self.rng),
                )
            }
            (RetryPlan::Scripted(script), None) => {
                let a = &script[i as usize];
                (a.success, a.error_type.into(), a.latency.sample(self.rng))
            }
        }
    }

    /// The wait before attempt `i` (i ≥ 1): exponential from the base, with jitter.
    fn backoff(&mut self, retry: &crate::plan::Retry, i: u32) -> u64 {
        let base = retry.backoff_base_ms * retry.backoff_multiplier.powi(i as i32 - 1);
        let j = if retry.backoff_jitter > 0.0 {
            self.rng
                .random_range(-retry.backoff_jitter..retry.backoff_jitter)
        } else {
            0.0
        };
        ms_ns(base * (1.0 + j))
    }

    /// Places items inside a span of sampled length `sampled`; returns the span's duration.
    fn layout(&mut self, items: &[Item], sampled: u64, parallel: bool) -> u64 {
        if items.is_empty() {
            return sampled.max(1_000);
        }
        let lead = ms_ns(self.rng.random_range(0.2..1.5));
        let tail = ms_ns(self.rng.random_range(0.1..1.0));
        if parallel {
            let mut window = 0;
            for it in items {
                let off = lead + ms_ns(self.rng.random_range(0.0..2.0));
                shift(&mut self.spans[it.first..it.end], off);
                window = window.max(off + it.dur);
            }
            return sampled.max(window + tail);
        }
        let mut gaps = std::mem::take(&mut self.gaps);
        gaps.clear();
        for (i, it) in items.iter().enumerate() {
            gaps.push(match (i, it.backoff) {
                (0, _) => lead,
                (_, Some(b)) => b,
                _ => ms_ns(self.rng.random_range(0.1..1.0)),
            });
        }
        let busy: u64 = items.iter().map(|i| i.dur).sum::<u64>() + gaps.iter().sum::<u64>() + tail;
        // Spread spare time over the free gaps (never the backoff ones) as the parent's own work.
        if sampled > busy {
            let slack = (sampled - busy) as f64;
            let mut weights = std::mem::take(&mut self.weights);
            weights.clear();
            for i in (0..gaps.len()).filter(|&i| i == 0 || items[i].backoff.is_none()) {
                weights.push((i, self.rng.random_range(0.05..1.0)));
            }
            let tail_w = self.rng.random_range(0.05..1.0);
            let total: f64 = weights.iter().map(|(_, w)| w).sum::<f64>() + tail_w;
            for &(g, w) in &weights {
                gaps[g] += (slack * w / total) as u64;
            }
            self.weights = weights;
        }
        let mut cursor = 0;
        for (it, gap) in items.iter().zip(&gaps) {
            cursor += gap;
            shift(&mut self.spans[it.first..it.end], cursor);
            cursor += it.dur;
        }
        self.gaps = gaps;
        sampled.max(cursor + tail)
    }
}

fn as_text(v: &AttrValue) -> Text {
    match v {
        AttrValue::Str(s) => s.clone(),
        other => Text::from(other.to_string()),
    }
}

#[cfg(test)]
mod tests;
