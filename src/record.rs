//! Generated telemetry records: what the generator produces and the encoders consume.
//! Plain data, independent of any OTLP crate.

use crate::class::ClassOf;
use std::fmt;
use std::sync::{Arc, OnceLock};

/// An attribute value as otelsim emits it.
#[derive(Clone, Debug, PartialEq)]
pub enum AttrValue {
    /// A string: interned when the plan made it, else shared rather than copied.
    Str(Text),
    /// A 64-bit integer.
    Int(i64),
    /// A 64-bit float.
    Double(f64),
    /// A boolean.
    Bool(bool),
    /// An array of strings (`string[]`, e.g. `gen_ai.response.finish_reasons`),
    /// shared like a string: values the generator repeats are interned once.
    StrArray(Arc<[Arc<str>]>),
}

impl AttrValue {
    /// A string value (one allocation).
    pub fn str(s: &str) -> Self {
        AttrValue::Str(Text::Shared(Arc::from(s)))
    }

    /// The text of a string value; `None` for the others.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            AttrValue::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Interns a string value's text (see [`crate::intern::intern`]: for the plan's
    /// values, never per span).
    pub fn intern(&mut self) {
        if let AttrValue::Str(t @ Text::Shared(_)) = self {
            *t = Text::interned(t);
        }
    }

    /// A string array of the given items (one allocation per item).
    pub fn str_array(items: &[&str]) -> Self {
        AttrValue::StrArray(items.iter().map(|s| Arc::from(*s)).collect())
    }
}

impl fmt::Display for AttrValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttrValue::Str(s) => write!(f, "{s}"),
            AttrValue::Int(i) => write!(f, "{i}"),
            AttrValue::Double(d) => write!(f, "{d}"),
            AttrValue::Bool(b) => write!(f, "{b}"),
            AttrValue::StrArray(items) => {
                write!(f, "[")?;
                for (i, s) in items.iter().enumerate() {
                    let sep = if i == 0 { "" } else { ", " };
                    write!(f, "{sep}{s}")?;
                }
                write!(f, "]")
            }
        }
    }
}

/// OTel span kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SpanKind {
    /// `INTERNAL`: work inside a service.
    Internal,
    /// `SERVER`: handles an incoming request.
    Server,
    /// `CLIENT`: an outgoing request.
    Client,
    /// `PRODUCER`: sends a message.
    Producer,
    /// `CONSUMER`: receives a message.
    Consumer,
}

impl SpanKind {
    /// A kind written in any case (`server`, `SERVER`); `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_uppercase().as_str() {
            "INTERNAL" => SpanKind::Internal,
            "SERVER" => SpanKind::Server,
            "CLIENT" => SpanKind::Client,
            "PRODUCER" => SpanKind::Producer,
            "CONSUMER" => SpanKind::Consumer,
            _ => return None,
        })
    }

    /// The upper-case OTel name (`SERVER`).
    pub fn as_str(self) -> &'static str {
        match self {
            SpanKind::Internal => "INTERNAL",
            SpanKind::Server => "SERVER",
            SpanKind::Client => "CLIENT",
            SpanKind::Producer => "PRODUCER",
            SpanKind::Consumer => "CONSUMER",
        }
    }
}

/// OTel span status code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusCode {
    /// Not set: the default, and what a successful span keeps.
    Unset,
    /// Explicitly OK (the generator leaves its successful spans `Unset`).
    Ok,
    /// The span failed.
    Error,
}

pub use crate::intern::{Key, Text};

/// A span event (an exception, a validation error, a tool selection).
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// Event name (`exception`, `<prefix>.validation.error`, …).
    pub name: Key,
    /// When it happened, Unix time in ns.
    pub time_ns: u64,
    /// Attributes (`exception.type`, `exception.message`, …).
    pub attrs: Vec<(Key, AttrValue)>,
}

/// The service (an OTel resource: `service.name` and its attributes) a span or
/// log record is emitted under: an index into the run's service table
/// (`plan::Services`). Encoders group by it in index order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceId(pub u16);

/// One span as generated.
#[derive(Clone, Debug, PartialEq)]
pub struct SpanRecord {
    /// Span id, from the run's seeded RNG (never all zeros).
    pub span_id: [u8; 8],
    /// The parent's span id; `None` for the trace's root.
    pub parent_span_id: Option<[u8; 8]>,
    /// Span name, prefix applied: interned when it comes from the plan.
    pub name: Text,
    /// OTel span kind, from the plan's node.
    pub kind: SpanKind,
    /// Start, Unix time in ns (relative to 0 until the trace is laid out).
    pub start_ns: u64,
    /// End, Unix time in ns (relative to 0 until the trace is laid out).
    pub end_ns: u64,
    /// Attributes in the order they were set.
    pub attrs: Attrs,
    /// Events in the order they were recorded.
    pub events: Vec<Event>,
    /// Status code: `Error` when the span failed.
    pub status: StatusCode,
    /// Status message of a failed span: its exception message, or the declared error `message`.
    pub status_message: Option<Arc<str>>,
    /// The service that emits the span.
    pub service: ServiceId,
    /// What the span is (its `span.class` attribute, typed).
    pub class: ClassOf,
    /// Links to spans of other traces: (trace id, span id).
    pub links: Vec<([u8; 16], [u8; 8])>,
}

/// Whether two attribute keys are the same text, cheaply: the lengths first, then
/// the same allocation (keys are interned, so a match is usually the same one),
/// then the last eight bytes (keys of one family share their start, `gen_ai.`,
/// `vendor.`, and differ at the end), and only then every byte.
#[inline]
pub(crate) fn same_key(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    if std::ptr::eq(a.as_ptr(), b.as_ptr()) {
        return true;
    }
    if let (Some(x), Some(y)) = (a.last_chunk::<8>(), b.last_chunk::<8>()) {
        if x != y {
            return false;
        }
    }
    a == b
}

/// The bit of `key` in [`Attrs`]' summary of present keys: from the key's length and
/// last eight bytes (where the keys of one family differ), so that equal texts share
/// a bit whatever their allocation.
#[inline]
fn key_bit(key: &str) -> u64 {
    1 << (key_hash(key) >> 58)
}

/// A hash of `key` from its length and last eight bytes: its high bits place the
/// key in small tables (the summary's bit, the log deriver's slots).
#[inline]
pub(crate) fn key_hash(key: &str) -> u64 {
    let b = key.as_bytes();
    let tail = match b.last_chunk::<8>() {
        Some(t) => u64::from_le_bytes(*t),
        None => b.iter().fold(0, |h, &x| h << 8 | u64::from(x)),
    };
    (tail ^ b.len() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// One attribute: its key and value.
pub type Pair = (Key, AttrValue);

/// Room for a span's attributes, so setting them seldom reallocates: a 1 KiB block
/// (25 pairs), the largest the allocator serves on its fast path.
pub const SPAN_ATTRS_ROOM: usize = 1024 / std::mem::size_of::<Pair>();
/// Room for a model call's, which carries up to ~40: 2 KiB (a power of two, which
/// the allocator serves without over-allocating).
pub const MODEL_CALL_ATTRS_ROOM: usize = 2048 / std::mem::size_of::<Pair>();

/// The summary bits of the keys of `pairs`.
fn key_bits(pairs: &[Pair]) -> u64 {
    pairs.iter().fold(0, |m, (k, _)| m | key_bit(k))
}

/// Attributes that every span of a trace carries with the same values (its session,
/// conversation, request and tenant): held once per trace instead of copied into
/// each span, and written once per trace by the wire encoder.
#[derive(Debug, Default)]
pub struct SharedAttrs {
    list: Vec<Pair>,
    present: u64,
    /// The pairs as OTLP span attributes, made by the wire encoder when it first
    /// writes them.
    span_wire: OnceLock<Vec<u8>>,
}

impl SharedAttrs {
    /// The shared pairs of `list`, whose keys are distinct.
    pub fn new(list: Vec<Pair>) -> Arc<Self> {
        let present = key_bits(&list);
        Arc::new(SharedAttrs {
            list,
            present,
            span_wire: OnceLock::new(),
        })
    }

    /// The pairs, in order.
    pub fn pairs(&self) -> &[Pair] {
        &self.list
    }

    /// The pairs as written by `encode` (the wire encoder's span attributes), made once.
    pub fn span_wire(&self, encode: impl FnOnce(&[Pair]) -> Vec<u8>) -> &[u8] {
        self.span_wire.get_or_init(|| encode(&self.list))
    }
}

/// A span's attributes in the order they were set, with a summary of which keys
/// are present (one bit per key, [`key_bit`]). Most lookups made while a span is
/// built ask for keys it does not have yet (the rules that fill it, a value set
/// for the first time), and the summary answers them without a scan of the span.
///
/// The span's own pairs may be joined by its trace's [`SharedAttrs`], which read as
/// if they stood at position `shared_at` of the list. Changing one of them, or
/// removing or changing values wholesale, first copies them into the list.
#[derive(Clone, Debug, Default)]
pub struct Attrs {
    list: Vec<Pair>,
    /// The union of the present keys' bits (shared ones too): a key whose bit is
    /// clear is absent.
    present: u64,
    shared: Option<Arc<SharedAttrs>>,
    shared_at: usize,
}

/// The pairs of an [`Attrs`], in order.
pub type AttrsIter<'a> = std::iter::Chain<
    std::iter::Chain<std::slice::Iter<'a, Pair>, std::slice::Iter<'a, Pair>>,
    std::slice::Iter<'a, Pair>,
>;

impl Attrs {
    /// No attributes, with room for `n` (a list a dropped span left on this
    /// thread when one of that size is spare).
    pub fn with_capacity(n: usize) -> Self {
        Attrs {
            list: spare_lists::take(n),
            present: 0,
            shared: None,
            shared_at: 0,
        }
    }

    /// The value of `key`, if set.
    #[inline(always)]
    pub fn get(&self, key: &str) -> Option<&AttrValue> {
        if self.present & key_bit(key) == 0 {
            return None;
        }
        // Each part searched on its own: a chained iterator measured slower.
        let find = |pairs: &'_ [Pair]| pairs.iter().position(|(k, _)| same_key(k, key));
        if let Some(i) = find(&self.list) {
            return Some(&self.list[i].1);
        }
        let shared = self.shared.as_deref()?;
        find(&shared.list).map(|i| &shared.list[i].1)
    }

    /// Appends `key`, which the caller knows is not set yet.
    #[inline]
    pub fn push(&mut self, key: Key, value: AttrValue) {
        debug_assert!(self.get(&key).is_none(), "{key:?} is already set");
        self.present |= key_bit(&key);
        self.list.push((key, value));
    }

    /// Sets `key`, replacing its value in place when already set.
    #[inline]
    pub fn set(&mut self, key: Key, value: AttrValue) {
        let bit = key_bit(&key);
        if self.present & bit != 0 {
            if self.shared.as_ref().is_some_and(|s| {
                s.present & bit != 0 && s.list.iter().any(|(k, _)| same_key(k, &key))
            }) {
                self.unshare();
            }
            if let Some((_, v)) = self.list.iter_mut().find(|(k, _)| same_key(k, &key)) {
                *v = value;
                return;
            }
        }
        self.present |= bit;
        self.list.push((key, value));
    }

    /// Joins the trace's shared pairs, which read as if appended now; none of their
    /// keys may be set yet.
    pub fn share(&mut self, shared: Arc<SharedAttrs>) {
        debug_assert!(self.shared.is_none(), "already sharing");
        debug_assert!(shared.list.iter().all(|(k, _)| self.get(k).is_none()));
        self.present |= shared.present;
        self.shared_at = self.list.len();
        self.shared = Some(shared);
    }

    /// Copies the shared pairs into the span's own list, in their place.
    fn unshare(&mut self) {
        if let Some(shared) = self.shared.take() {
            let at = self.shared_at;
            self.list.splice(at..at, shared.list.iter().cloned());
        }
    }

    /// Removes `key`, if set.
    pub fn remove(&mut self, key: &str) {
        if self.present & key_bit(key) != 0 {
            self.retain(|k, _| !same_key(k, key));
        }
    }

    /// Keeps the attributes for which `keep` says so, in order.
    pub fn retain(&mut self, mut keep: impl FnMut(&Key, &AttrValue) -> bool) {
        self.unshare();
        self.list.retain(|(k, v)| keep(k, v));
        self.present = key_bits(&self.list);
    }

    /// Every value, to change in place (keys stay as they are).
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut AttrValue> {
        self.unshare();
        self.list.iter_mut().map(|(_, v)| v)
    }

    /// Moves `more`'s attributes to the end: keys the caller knows are not set yet
    /// (and distinct).
    pub fn append(&mut self, more: &mut Vec<Pair>) {
        for (k, _) in more.iter() {
            debug_assert!(self.get(k).is_none(), "{k:?} is already set");
            self.present |= key_bit(k);
        }
        self.list.append(more);
    }

    /// The pairs in three parts: the own pairs before the shared ones, the shared
    /// ones (if any), and the own pairs after them.
    #[inline]
    pub fn parts(&self) -> (&[Pair], Option<&SharedAttrs>, &[Pair]) {
        match &self.shared {
            Some(s) => {
                let (before, after) = self.list.split_at(self.shared_at);
                (before, Some(s), after)
            }
            None => (&self.list, None, &[]),
        }
    }

    /// The trace's shared pairs the span reads, if any.
    pub fn shared(&self) -> Option<&Arc<SharedAttrs>> {
        self.shared.as_ref()
    }

    /// The pair at position `i` of the order [`Attrs::iter`] reads.
    #[inline]
    pub fn get_at(&self, i: usize) -> Option<&Pair> {
        let [before, shared, after] = self.slices();
        match i.checked_sub(before.len()) {
            None => before.get(i),
            Some(j) => match j.checked_sub(shared.len()) {
                None => shared.get(j),
                Some(l) => after.get(l),
            },
        }
    }

    /// The position of `key` in the order [`Attrs::iter`] reads, if set.
    #[inline]
    pub fn position(&self, key: &str) -> Option<usize> {
        if self.present & key_bit(key) == 0 {
            return None;
        }
        let mut at = 0;
        for part in self.slices() {
            if let Some(i) = part.iter().position(|(k, _)| same_key(k, key)) {
                return Some(at + i);
            }
            at += part.len();
        }
        None
    }

    /// Every pair, in order, in up to three slices: a loop over each is cheaper than
    /// [`Attrs::iter`]'s chained iterator where it counts.
    #[inline]
    pub fn slices(&self) -> [&[Pair]; 3] {
        let (before, shared, after) = self.parts();
        [before, shared.map_or(&[][..], SharedAttrs::pairs), after]
    }

    /// Every pair, in order.
    #[inline]
    pub fn iter(&self) -> AttrsIter<'_> {
        let [before, shared, after] = self.slices();
        before.iter().chain(shared).chain(after)
    }

    /// How many pairs.
    pub fn len(&self) -> usize {
        self.list.len() + self.shared.as_ref().map_or(0, |s| s.list.len())
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The pairs, copied.
    pub fn to_vec(&self) -> Vec<Pair> {
        self.iter().cloned().collect()
    }
}

impl Drop for Attrs {
    /// The emptied list is kept for the next span built on this thread.
    fn drop(&mut self) {
        spare_lists::keep(std::mem::take(&mut self.list));
    }
}

/// Emptied attribute lists of dropped spans, kept per thread for the spans built
/// next. A span's list is a 1 or 2 KiB block (room for all its attributes), which
/// the allocator served on its slow path: ≈ 125 instructions a span in `bench`.
/// The spans of a batch are dropped once it is encoded, on the thread that built
/// them, just before it builds the next batch.
mod spare_lists {
    use super::{Pair, MODEL_CALL_ATTRS_ROOM as LARGE, SPAN_ATTRS_ROOM as SMALL};
    use std::cell::RefCell;

    /// Lists kept per capacity class: more than a batch of spans (512) and its
    /// model calls, at most ≈ 3 MB a thread.
    const KEPT: usize = 1024;
    thread_local! {
        static SPARE: RefCell<[Vec<Vec<Pair>>; 2]> = const { RefCell::new([Vec::new(), Vec::new()]) };
    }

    /// The class of a list of `capacity`: the two sizes the generator asks for.
    fn class(capacity: usize) -> Option<usize> {
        match capacity {
            SMALL => Some(0),
            LARGE => Some(1),
            _ => None,
        }
    }

    /// An empty list with room for `n`.
    pub(super) fn take(n: usize) -> Vec<Pair> {
        class(n)
            .and_then(|c| SPARE.with(|s| s.borrow_mut()[c].pop()))
            .unwrap_or_else(|| Vec::with_capacity(n))
    }

    /// Keeps `list`, emptied, when it is of a kept size and there is room.
    pub(super) fn keep(mut list: Vec<Pair>) {
        let Some(c) = class(list.capacity()) else {
            return;
        };
        list.clear();
        // A thread being torn down drops the list instead.
        let _ = SPARE.try_with(|s| {
            if let Ok(mut s) = s.try_borrow_mut() {
                if s[c].len() < KEPT {
                    s[c].push(list);
                }
            }
        });
    }
}

impl PartialEq for Attrs {
    /// The same pairs in the same order, shared or not.
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl From<Vec<Pair>> for Attrs {
    /// The attributes of `list`, whose keys are distinct.
    fn from(list: Vec<Pair>) -> Self {
        let present = key_bits(&list);
        Attrs {
            list,
            present,
            shared: None,
            shared_at: 0,
        }
    }
}

impl<'a> IntoIterator for &'a Attrs {
    type Item = &'a Pair;
    type IntoIter = AttrsIter<'a>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl SpanRecord {
    /// The value of the attribute `key`, if set.
    #[inline]
    pub fn attr(&self, key: &str) -> Option<&AttrValue> {
        self.attrs.get(key)
    }

    /// Sets an attribute, replacing its value in place when already set.
    #[inline]
    pub fn set_attr(&mut self, key: Key, value: AttrValue) {
        self.attrs.set(key, value);
    }

    /// Removes the attribute `key`, if set.
    pub fn remove_attr(&mut self, key: &str) {
        self.attrs.remove(key);
    }

    /// End minus start, in ns (0 if the end comes first).
    pub fn duration_ns(&self) -> u64 {
        self.end_ns.saturating_sub(self.start_ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_by_text_whatever_their_allocation() {
        let texts = [
            "",
            "a",
            "b",
            "gen_ai",
            "gen_ai.x",
            "gen_ai.y",
            "gen_ai.request.model",
            "gen_ai.response.model",
            "vendor.step.outcome",
            "xendor.step.outcome",
        ];
        for a in texts {
            for b in texts {
                let owned = String::from(b);
                assert_eq!(same_key(a, &owned), a == b, "{a:?} vs {b:?}");
            }
            assert!(same_key(a, a));
        }
    }

    #[test]
    fn the_summary_of_present_keys_never_hides_a_key() {
        // Keys of one family, of every length from 1 to 40, set, replaced and removed
        // in turn: after each change every key reads as the plain list says.
        let keys: Vec<String> = (1..=40)
            .map(|n| format!("vendor.{}", "x".repeat(n)))
            .chain((0..40).map(|i| format!("gen_ai.k{i}")))
            .chain(["", "a", "ab"].map(String::from))
            .collect();
        let mut attrs = Attrs::default();
        let mut plain: Vec<(String, i64)> = Vec::new();
        let check = |attrs: &Attrs, plain: &[(String, i64)]| {
            for k in &keys {
                // Asked with another allocation of the same text.
                let asked = k.clone();
                let want = plain.iter().find(|(p, _)| p == k).map(|(_, v)| *v);
                assert_eq!(
                    attrs.get(&asked),
                    want.map(AttrValue::Int).as_ref(),
                    "{k:?}"
                );
            }
            assert_eq!(attrs.len(), plain.len());
        };
        for (i, k) in keys.iter().enumerate() {
            attrs.set(Key::from(k.as_str()), AttrValue::Int(i as i64));
            plain.push((k.clone(), i as i64));
            check(&attrs, &plain);
        }
        for (i, k) in keys.iter().enumerate().step_by(3) {
            attrs.set(Key::from(k.as_str()), AttrValue::Int(-(i as i64)));
            plain.iter_mut().find(|(p, _)| p == k).unwrap().1 = -(i as i64);
        }
        check(&attrs, &plain);
        for k in keys.iter().step_by(2) {
            attrs.remove(k);
            plain.retain(|(p, _)| p != k);
            check(&attrs, &plain);
        }
        attrs.retain(|k, _| k.len() % 2 == 0);
        plain.retain(|(p, _)| p.len() % 2 == 0);
        check(&attrs, &plain);
        let rebuilt = Attrs::from(attrs.to_vec());
        check(&rebuilt, &plain);
    }

    #[test]
    fn shared_pairs_read_in_their_place_and_are_copied_before_they_change() {
        let k = |s: &'static str| Key::from_static(s);
        let shared = SharedAttrs::new(vec![
            (k("vendor.session.id"), AttrValue::str("s1")),
            (k("vendor.tenant.id"), AttrValue::str("t1")),
        ]);
        let mut a = Attrs::default();
        a.push(k("vendor.span.class"), AttrValue::str("llm"));
        a.share(shared.clone());
        a.push(k("gen_ai.request.model"), AttrValue::str("m"));
        let owned = Attrs::from(vec![
            (k("vendor.span.class"), AttrValue::str("llm")),
            (k("vendor.session.id"), AttrValue::str("s1")),
            (k("vendor.tenant.id"), AttrValue::str("t1")),
            (k("gen_ai.request.model"), AttrValue::str("m")),
        ]);
        // Read as if the shared pairs stood after the first: order, length, lookups, equality.
        assert_eq!(a.to_vec(), owned.to_vec());
        assert_eq!(a.len(), 4);
        assert_eq!(a, owned);
        assert_eq!(a.get("vendor.tenant.id"), Some(&AttrValue::str("t1")));
        let [before, mid, after] = a.slices();
        assert_eq!((before.len(), mid.len(), after.len()), (1, 2, 1));
        // A shared key set on one span changes that span alone, in place.
        let mut b = a.clone();
        b.set(k("vendor.tenant.id"), AttrValue::str("t2"));
        assert_eq!(b.get("vendor.tenant.id"), Some(&AttrValue::str("t2")));
        assert_eq!(
            b.iter().nth(2).map(|(k, _)| k.as_str()),
            Some("vendor.tenant.id")
        );
        assert_eq!(a.get("vendor.tenant.id"), Some(&AttrValue::str("t1")));
        assert_eq!(shared.pairs()[1].1, AttrValue::str("t1"));
        // Removing one, or changing values wholesale, keeps the others in order.
        let mut c = a.clone();
        c.remove("vendor.session.id");
        let keys: Vec<&str> = c.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "vendor.span.class",
                "vendor.tenant.id",
                "gen_ai.request.model"
            ]
        );
        assert_eq!(c.get("vendor.session.id"), None);
        let mut d = a.clone();
        d.values_mut().for_each(|v| *v = AttrValue::Int(0));
        assert!(d.iter().all(|(_, v)| *v == AttrValue::Int(0)) && d.len() == 4);
        assert_eq!(a.get("vendor.session.id"), Some(&AttrValue::str("s1")));
    }

    #[test]
    fn setting_an_attribute_replaces_it_by_text() {
        let mut s = SpanRecord {
            span_id: [1; 8],
            parent_span_id: None,
            name: Text::interned("s"),
            kind: SpanKind::Internal,
            start_ns: 0,
            end_ns: 1,
            attrs: Attrs::default(),
            events: Vec::new(),
            status: StatusCode::Unset,
            status_message: None,
            service: ServiceId(0),
            class: ClassOf::step(crate::class::SpanClass::Planner),
            links: Vec::new(),
        };
        s.set_attr(
            Key::from_static("vendor.step.outcome"),
            AttrValue::str("success"),
        );
        s.set_attr(Key::from_static("vendor.task.outcome"), AttrValue::Int(1));
        s.set_attr(
            Key::from_static("vendor.step.outcome"),
            AttrValue::str("fail"),
        );
        assert_eq!(s.attrs.len(), 2);
        assert_eq!(s.attr("vendor.step.outcome"), Some(&AttrValue::str("fail")));
        s.remove_attr("vendor.step.outcome");
        assert_eq!(s.attr("vendor.step.outcome"), None);
        assert_eq!(s.attr("vendor.task.outcome"), Some(&AttrValue::Int(1)));
    }
}

/// One trace: every span shares `trace_id`; spans are in creation order (parents first).
#[derive(Clone, Debug, PartialEq)]
pub struct TraceRecord {
    /// Trace id, from the run's seeded RNG (never all zeros).
    pub trace_id: [u8; 16],
    /// Instrumentation scope name, `otelsim.<scenario>`.
    pub scope: Key,
    /// The scenario that produced it, for per-scenario counts.
    pub scenario: Key,
    /// Every span, parents before children.
    pub spans: Vec<SpanRecord>,
}

/// Log severities otelsim emits, with their OTLP numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// `INFO` (9).
    Info,
    /// `WARN` (13).
    Warn,
    /// `ERROR` (17).
    Error,
}

impl Severity {
    /// The OTLP severity number.
    pub fn number(self) -> i32 {
        match self {
            Severity::Info => 9,
            Severity::Warn => 13,
            Severity::Error => 17,
        }
    }

    /// The OTLP severity text.
    pub fn text(self) -> &'static str {
        match self {
            Severity::Info => "INFO",
            Severity::Warn => "WARN",
            Severity::Error => "ERROR",
        }
    }
}

/// A log record tied to the span it describes.
#[derive(Clone, Debug)]
pub struct LogRecord {
    /// When it happened, Unix time in ns (also sent as its observed time).
    pub time_ns: u64,
    /// `ERROR` for a failure, `WARN` for a scheduled retry or a block, else `INFO`.
    pub severity: Severity,
    /// The message in plain words (`Agent turn started`).
    pub body: Arc<str>,
    /// The record's event name (OTLP `LogRecord.event_name`: `turn.start`, …),
    /// which is not repeated as an attribute (the `event.name` attribute is deprecated).
    pub event_name: &'static str,
    /// The first of its attributes: its trace's shared ones (session, conversation,
    /// request, tenant), held rather than copied into every record.
    pub shared: Option<Arc<SharedAttrs>>,
    /// The span's other key attributes (ids, tenant) and the event's own, after `shared`.
    pub attrs: Vec<(Key, AttrValue)>,
    /// The trace of the span it describes.
    pub trace_id: [u8; 16],
    /// The span it describes.
    pub span_id: [u8; 8],
    /// Instrumentation scope name, the same as its trace's.
    pub scope: Key,
    /// The service of the span the record describes.
    pub service: ServiceId,
}

impl LogRecord {
    /// Every attribute, in order: the shared ones, then the record's own.
    pub fn attrs(&self) -> impl Iterator<Item = &Pair> {
        let shared = self.shared.as_deref().map_or(&[][..], SharedAttrs::pairs);
        shared.iter().chain(&self.attrs)
    }

    /// Copies the shared attributes into `attrs`, in their place, so that every
    /// value can be changed.
    pub fn unshare(&mut self) {
        if let Some(shared) = self.shared.take() {
            self.attrs.splice(0..0, shared.pairs().iter().cloned());
        }
    }
}

impl PartialEq for LogRecord {
    /// The same fields and attributes, shared or not.
    fn eq(&self, other: &Self) -> bool {
        self.time_ns == other.time_ns
            && self.severity == other.severity
            && self.body == other.body
            && self.event_name == other.event_name
            && self.attrs().eq(other.attrs())
            && self.trace_id == other.trace_id
            && self.span_id == other.span_id
            && self.scope == other.scope
            && self.service == other.service
    }
}
