//! Hand-written protobuf encoding of trace export requests, straight from
//! otelsim's records: no intermediate prost structs, no per-attribute String
//! copies. This is the hot path of every protobuf transport; the prost path in
//! `encode` stays for OTLP/JSON and as the reference the tests compare against
//! (both must decode to the same request).
//!
//! Field numbers are those of `opentelemetry/proto/trace/v1/trace.proto`,
//! `common/v1/common.proto` and `collector/trace/v1/trace_service.proto`.

use super::room::Room;
use super::Resources;
use crate::model::AttrValue;
use crate::record::{
    LogRecord, Pair, ServiceId, SharedAttrs, SpanKind, SpanRecord, StatusCode, TraceRecord,
};
use prost::Message as _;
use std::collections::HashMap;

const LEN: u8 = 2;
const I64: u8 = 1;
const I32: u8 = 5;
const VARINT: u8 = 0;

fn varint_len(v: u64) -> usize {
    // 1 byte per 7 bits, at least 1: ⌈(highest bit + 1) / 7⌉, as a multiply and a
    // shift (9/64 ≈ 1/7 over 0..63) rather than a division, which cost 8 % of encoding.
    let highest = ((v | 1).leading_zeros() ^ 63) as usize;
    (highest * 9 + 73) / 64
}

fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn tag_len(field: u32) -> usize {
    varint_len(u64::from(field) << 3)
}

fn put_tag(buf: &mut Vec<u8>, field: u32, wire: u8) {
    put_varint(buf, (u64::from(field) << 3) | u64::from(wire));
}

/// Size of a length-delimited field holding `n` bytes.
fn delimited(field: u32, n: usize) -> usize {
    tag_len(field) + varint_len(n as u64) + n
}

fn put_bytes(buf: &mut Vec<u8>, field: u32, b: &[u8]) {
    let mut r = Room::new(buf, 15 + b.len());
    r.varint((u64::from(field) << 3) | u64::from(LEN));
    r.varint(b.len() as u64);
    r.bytes(b);
}

#[inline]
fn any_value_len(v: &AttrValue) -> usize {
    match v {
        AttrValue::Str(s) => delimited(1, s.len()),
        AttrValue::Bool(_) => 2,
        AttrValue::Int(i) => 1 + varint_len(*i as u64),
        AttrValue::Double(_) => 9,
        AttrValue::StrArray(items) => delimited(5, array_len(items)),
    }
}

/// Size of an `ArrayValue` of strings: field 1, one `AnyValue` per item.
/// Out of line: arrays are rare, and the scalar cases stay small enough to inline.
#[inline(never)]
fn array_len(items: &[std::sync::Arc<str>]) -> usize {
    items
        .iter()
        .map(|s| delimited(1, delimited(1, s.len())))
        .sum()
}

/// An `ArrayValue` of strings (field 5 of `AnyValue`); out of line, like [`array_len`].
#[inline(never)]
fn put_array(buf: &mut Vec<u8>, items: &[std::sync::Arc<str>]) {
    put_tag(buf, 5, LEN);
    put_varint(buf, array_len(items) as u64);
    for s in items {
        put_tag(buf, 1, LEN);
        put_varint(buf, delimited(1, s.len()) as u64);
        put_bytes(buf, 1, s.as_bytes());
    }
}

/// One attribute: a `KeyValue` as field `field` of its message. Inlined into its
/// loops: the call and its saved registers cost a fifth of the short path.
#[inline(always)]
fn put_key_value(buf: &mut Vec<u8>, field: u32, k: &str, v: &AttrValue) {
    // Most pairs: a string or integer value, with a key and value short enough that
    // every tag and length is one byte. Written inline with few capacity checks, no
    // length measured twice; the others out of line.
    let tag = (field as u8) << 3 | LEN;
    let kb = k.as_bytes();
    match v {
        AttrValue::Str(s) if field < 16 && kb.len() + s.len() < 0x80 - 6 => {
            // The pair: key (2 + k), value (2, then the AnyValue: 2 + s).
            let kv = kb.len() + s.len() + 6;
            let mut r = Room::new(buf, 2 + kv);
            r.array_and_bytes([tag, kv as u8, (1 << 3) | LEN, kb.len() as u8], kb);
            let value = s.len() as u8;
            r.array_and_bytes(
                [(2 << 3) | LEN, value + 2, (1 << 3) | LEN, value],
                s.as_bytes(),
            );
        }
        // Integers (token counts, sizes): 1 to 10 bytes.
        AttrValue::Int(i) if field < 16 && kb.len() < 0x80 - 15 => {
            let n = varint_len(*i as u64);
            // The pair: key (2 + k), value (2, then the AnyValue: 1 + n).
            let kv = kb.len() + 5 + n;
            let mut r = Room::new(buf, 2 + kv);
            r.array_and_bytes([tag, kv as u8, (1 << 3) | LEN, kb.len() as u8], kb);
            r.array([(2 << 3) | LEN, 1 + n as u8, (3 << 3) | VARINT]);
            r.varint(*i as u64);
        }
        _ => put_any_key_value(buf, field, k, v),
    }
}

/// Attribute pairs, each a `KeyValue` as field `field` of their message.
/// Inlined where called, as `put_key_value` is into it (a call per run of pairs
/// measured +0.8 % of the instructions of `bench`).
#[inline(always)]
fn put_pairs(buf: &mut Vec<u8>, field: u32, pairs: &[Pair]) {
    for (k, v) in pairs {
        put_key_value(buf, field, k, v);
    }
}

/// Any attribute, whatever the widths of its tags and lengths.
#[inline(never)]
fn put_any_key_value(buf: &mut Vec<u8>, field: u32, k: &str, v: &AttrValue) {
    let value = any_value_len(v);
    let kv = delimited(1, k.len()) + delimited(2, value);
    // Every byte of the pair written after one capacity check.
    let mut r = Room::new(buf, 15 + kv);
    if field < 16 && kv < 0x80 {
        // Most pairs: every tag and length is one byte, so the headers are written
        // whole rather than as varints.
        let tag = (field as u8) << 3 | LEN;
        r.array([tag, kv as u8, (1 << 3) | LEN, k.len() as u8]);
        r.bytes(k.as_bytes());
        r.array([(2 << 3) | LEN, value as u8]);
    } else {
        r.varint((u64::from(field) << 3) | u64::from(LEN));
        r.varint(kv as u64);
        r.byte((1 << 3) | LEN);
        r.varint(k.len() as u64);
        r.bytes(k.as_bytes());
        r.byte((2 << 3) | LEN);
        r.varint(value as u64);
    }
    match v {
        AttrValue::Str(s) if value < 0x80 => {
            r.array([(1 << 3) | LEN, s.len() as u8]);
            r.bytes(s.as_bytes());
        }
        AttrValue::Str(s) => {
            r.byte((1 << 3) | LEN);
            r.varint(s.len() as u64);
            r.bytes(s.as_bytes());
        }
        AttrValue::Bool(b) => {
            r.byte((2 << 3) | VARINT);
            r.byte(u8::from(*b));
        }
        AttrValue::Int(i) => {
            r.byte((3 << 3) | VARINT);
            r.varint(*i as u64);
        }
        AttrValue::Double(d) => {
            r.byte((4 << 3) | I64);
            r.bytes(&d.to_le_bytes());
        }
        AttrValue::StrArray(items) => {
            drop(r);
            put_array(buf, items);
        }
    }
}

/// Writes the length-delimited field `field` whose body `put` writes, in one pass:
/// room for a length of `guess` bytes is kept before the body, and the body is
/// moved only when its length turns out to need another width. Guessed right,
/// nothing is measured twice or moved (a separate length pass over every
/// attribute cost as much as writing them).
#[inline]
fn put_nested(buf: &mut Vec<u8>, field: u32, guess: usize, put: impl FnOnce(&mut Vec<u8>)) {
    put_tag(buf, field, LEN);
    let at = buf.len();
    buf.resize(at + guess, 0);
    put(buf);
    let len = buf.len() - at - guess;
    let need = varint_len(len as u64);
    if need != guess {
        move_body(buf, at + guess, at + need);
    }
    let mut v = len as u64;
    for b in &mut buf[at..at + need] {
        *b = (v as u8 & 0x7f) | if v >= 0x80 { 0x80 } else { 0 };
        v >>= 7;
    }
}

/// Moves the bytes from `from` to the end of `buf` so that they start at `to`.
#[inline(never)]
fn move_body(buf: &mut Vec<u8>, from: usize, to: usize) {
    let end = buf.len();
    if to < from {
        buf.copy_within(from..end, to);
        buf.truncate(end - (from - to));
    } else {
        buf.resize(end + (to - from), 0);
        buf.copy_within(from..end, to);
    }
}

fn kind_number(k: SpanKind) -> u64 {
    match k {
        SpanKind::Internal => 1,
        SpanKind::Server => 2,
        SpanKind::Client => 3,
        SpanKind::Producer => 4,
        SpanKind::Consumer => 5,
    }
}

fn status_code(s: StatusCode) -> u64 {
    match s {
        StatusCode::Unset => 0,
        StatusCode::Ok => 1,
        StatusCode::Error => 2,
    }
}

/// Sampled, parent not remote: the flags otelsim's spans and links carry.
const SPAN_FLAGS: u32 = 0x100 | 0x01;

fn event_len(e: &crate::record::Event) -> usize {
    let attrs: usize = e
        .attrs
        .iter()
        .map(|(k, v)| delimited(3, delimited(1, k.len()) + delimited(2, any_value_len(v))))
        .sum();
    (if e.time_ns != 0 { 9 } else { 0 })
        + (if e.name.is_empty() {
            0
        } else {
            delimited(2, e.name.len())
        })
        + attrs
}

fn link_len() -> usize {
    delimited(1, 16) + delimited(2, 8) + tag_len(6) + 4
}

/// A trace's shared pairs as span attributes (field 9): written once per trace,
/// and copied after.
fn shared_span_wire(shared: &SharedAttrs) -> &[u8] {
    shared.span_wire(|pairs| {
        // Sized to fit: grown from empty, it was reallocated three times per trace.
        let fit: usize = pairs
            .iter()
            .map(|(k, v)| 8 + k.len() + any_value_len(v))
            .sum();
        let mut wire = Vec::with_capacity(fit);
        put_pairs(&mut wire, 9, pairs);
        wire
    })
}

/// A trace's shared pairs as log record attributes (field 6), from their bytes
/// as span attributes: each `KeyValue` is the same after its one-byte tag
/// (fields 6 and 9 both have one), so the bytes are copied and the tags changed,
/// rather than every pair written again for each record.
fn put_shared_log_attrs(buf: &mut Vec<u8>, shared: &SharedAttrs) {
    let at = buf.len();
    buf.extend_from_slice(shared_span_wire(shared));
    let pairs = &mut buf[at..];
    let mut i = 0;
    while i < pairs.len() {
        debug_assert_eq!(pairs[i], (9 << 3) | LEN);
        pairs[i] = (6 << 3) | LEN;
        // The pair's length, a varint, and the pair.
        let (len, width) = crate::sink::wire::varint(&pairs[i + 1..])
            .ok()
            .flatten()
            .expect("the encoder wrote each pair's whole length");
        i += 1 + width + len as usize;
    }
}

/// Writes the fields of one span (the envelope writes its tag and length).
fn put_span(buf: &mut Vec<u8>, trace_id: &[u8; 16], s: &SpanRecord) {
    // The fixed fields: at most 18 + 10 + 10 + 6 + (name + 6) + 2 + 9 + 9 bytes.
    // Each header goes out with its field's bytes, under one capacity check.
    let mut r = Room::new(buf, 70 + s.name.len());
    r.array_and_bytes([(1 << 3) | LEN, 16], trace_id);
    r.array_and_bytes([(2 << 3) | LEN, 8], &s.span_id);
    if let Some(p) = &s.parent_span_id {
        r.array_and_bytes([(4 << 3) | LEN, 8], p);
    }
    // Field 16 has a two-byte tag: (16 << 3) | I32 as a varint.
    r.array_and_bytes([0x80 | I32, 1], &SPAN_FLAGS.to_le_bytes());
    r.byte((5 << 3) | LEN);
    r.varint(s.name.len() as u64);
    r.bytes(s.name.as_bytes());
    // Kinds are 1 to 5: one varint byte.
    r.array([(6 << 3) | VARINT, kind_number(s.kind) as u8]);
    r.array_and_bytes([(7 << 3) | I64], &s.start_ns.to_le_bytes());
    r.array_and_bytes([(8 << 3) | I64], &s.end_ns.to_le_bytes());
    drop(r);
    let (before, shared, after) = s.attrs.parts();
    put_pairs(buf, 9, before);
    if let Some(shared) = shared {
        buf.extend_from_slice(shared_span_wire(shared));
    }
    put_pairs(buf, 9, after);
    for e in &s.events {
        // Events are few and small: measured first, as their length varies around 127 bytes.
        put_tag(buf, 11, LEN);
        put_varint(buf, event_len(e) as u64);
        if e.time_ns != 0 {
            put_tag(buf, 1, I64);
            buf.extend_from_slice(&e.time_ns.to_le_bytes());
        }
        if !e.name.is_empty() {
            put_bytes(buf, 2, e.name.as_bytes());
        }
        put_pairs(buf, 3, &e.attrs);
    }
    for (tid, sid) in &s.links {
        put_tag(buf, 13, LEN);
        put_varint(buf, link_len() as u64);
        put_bytes(buf, 1, tid);
        put_bytes(buf, 2, sid);
        put_tag(buf, 6, I32);
        buf.extend_from_slice(&SPAN_FLAGS.to_le_bytes());
    }
    let msg = s.status_message.as_deref().unwrap_or("");
    let code = status_code(s.status);
    let status = (if msg.is_empty() {
        0
    } else {
        delimited(2, msg.len())
    }) + if code == 0 { 0 } else { 2 };
    put_tag(buf, 15, LEN);
    put_varint(buf, status as u64);
    if !msg.is_empty() {
        put_bytes(buf, 2, msg.as_bytes());
    }
    if code != 0 {
        put_tag(buf, 3, VARINT);
        put_varint(buf, code);
    }
}

/// `logs.proto` LogRecord fields: what `encode::logs_request` sets, in the same form.
fn put_log(buf: &mut Vec<u8>, r: &LogRecord) {
    let (severity, body) = (r.severity.text(), r.body.as_bytes());
    let mut room = Room::new(buf, 40 + severity.len() + body.len());
    room.array_and_bytes([(1 << 3) | I64], &r.time_ns.to_le_bytes());
    room.byte((2 << 3) | VARINT);
    room.varint(r.severity.number() as u64);
    room.byte((3 << 3) | LEN);
    room.varint(severity.len() as u64);
    room.bytes(severity.as_bytes());
    // The body: an AnyValue holding a string.
    room.byte((5 << 3) | LEN);
    room.varint(delimited(1, body.len()) as u64);
    room.byte((1 << 3) | LEN);
    room.varint(body.len() as u64);
    room.bytes(body);
    drop(room);
    if let Some(shared) = &r.shared {
        put_shared_log_attrs(buf, shared);
    }
    put_pairs(buf, 6, &r.attrs);
    let event = r.event_name.as_bytes();
    let mut room = Room::new(buf, 60 + event.len());
    room.array_and_bytes([(8 << 3) | I32], &LOG_FLAGS.to_le_bytes());
    room.array_and_bytes([(9 << 3) | LEN, 16], &r.trace_id);
    room.array_and_bytes([(10 << 3) | LEN, 8], &r.span_id);
    room.array_and_bytes([(11 << 3) | I64], &r.time_ns.to_le_bytes());
    if !event.is_empty() {
        room.byte((12 << 3) | LEN);
        room.varint(event.len() as u64);
        room.bytes(event);
    }
}

/// Sampled, like the span the record belongs to.
const LOG_FLAGS: u32 = 0x01;

/// The usual size of an encoded span and log record: their lengths are guessed
/// from it (a wrong guess costs moving the item, or its group, by a byte or two).
const SPAN_BYTES: usize = 900;
const LOG_BYTES: usize = 350;

/// Items grouped by resource and scope, then put in the order the prost path
/// groups them (by service, then scope). A request holds a few groups, and items
/// in a row mostly go to the same one: a list with the last group remembered costs
/// less per item than two ordered maps.
struct Groups<'a, T> {
    list: Vec<(ServiceId, &'a str, Vec<T>)>,
    /// The group the last item went to.
    last: usize,
}

impl<'a, T> Groups<'a, T> {
    fn new() -> Self {
        Groups {
            list: Vec::new(),
            last: 0,
        }
    }

    fn push(&mut self, service: ServiceId, scope: &'a str, item: T) {
        let hit = |g: &(ServiceId, &str, Vec<T>)| {
            g.0 == service && (std::ptr::eq(g.1, scope) || g.1 == scope)
        };
        if !self.list.get(self.last).is_some_and(hit) {
            self.last = match self.list.iter().position(hit) {
                Some(i) => i,
                None => {
                    self.list.push((service, scope, Vec::new()));
                    self.list.len() - 1
                }
            };
        }
        self.list[self.last].2.push(item);
    }

    /// The groups by service, then scope.
    fn sorted(mut self) -> Vec<(ServiceId, &'a str, Vec<T>)> {
        self.list
            .sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        self.list
    }
}

type SpanOf<'a> = (&'a [u8; 16], &'a SpanRecord);

/// Encoded `Resource` messages per service, and the scope version, made once.
pub struct WireEncoder {
    resources: Resources,
    cache: HashMap<ServiceId, Vec<u8>>,
    version: &'static str,
}

impl WireEncoder {
    /// An encoder for the services of `resources`; each `Resource` is encoded on first use.
    pub fn new(resources: Resources) -> Self {
        WireEncoder {
            resources,
            cache: HashMap::new(),
            version: env!("CARGO_PKG_VERSION"),
        }
    }

    /// Encodes every span of `traces` as one `ExportTraceServiceRequest`, grouped by
    /// resource and scope exactly like `encode::traces_request`.
    pub fn traces(&mut self, traces: &[TraceRecord], out: &mut Vec<u8>) {
        let mut groups: Groups<'_, SpanOf<'_>> = Groups::new();
        for t in traces {
            for s in &t.spans {
                groups.push(s.service, &t.scope, (&t.trace_id, s));
            }
        }
        self.envelope(groups, out, SPAN_BYTES, |buf, (tid, s)| {
            put_span(buf, tid, s)
        });
    }

    /// An `ExportLogsServiceRequest` of `records` (it decodes to what
    /// `encode::logs_request` builds).
    pub fn logs(&mut self, records: &[LogRecord], out: &mut Vec<u8>) {
        let mut groups: Groups<'_, &LogRecord> = Groups::new();
        for r in records {
            groups.push(r.service, &r.scope, r);
        }
        self.envelope(groups, out, LOG_BYTES, |buf, r| put_log(buf, r));
    }

    /// The request around the items. Traces and logs share the layout: request
    /// field 1 = resource group {1 resource, 2 scope group {1 scope, 2 item, 3
    /// schema url}, 3 schema url}. `item_bytes`: an item's usual size, from which
    /// the width of each length is guessed.
    fn envelope<T>(
        &mut self,
        groups: Groups<'_, T>,
        out: &mut Vec<u8>,
        item_bytes: usize,
        put_item: impl Fn(&mut Vec<u8>, &T),
    ) {
        let guess = |items: usize| varint_len((items * item_bytes) as u64);
        let groups = groups.sorted();
        for (rk, _, _) in &groups {
            if !self.cache.contains_key(rk) {
                let bytes = self.resources.resource(*rk).encode_to_vec();
                self.cache.insert(*rk, bytes);
            }
        }
        let schema = self.resources.schema_url();
        let version = self.version;
        let scope_msg = |name: &str| delimited(1, name.len()) + delimited(2, version.len());
        for scopes in groups.chunk_by(|a, b| a.0 == b.0) {
            let resource = &self.cache[&scopes[0].0];
            let items = scopes.iter().map(|(_, _, items)| items.len()).sum();
            put_nested(out, 1, guess(items), |out| {
                put_bytes(out, 1, resource);
                for (_, name, items) in scopes {
                    put_nested(out, 2, guess(items.len()), |out| {
                        put_tag(out, 1, LEN);
                        put_varint(out, scope_msg(name) as u64);
                        put_bytes(out, 1, name.as_bytes());
                        put_bytes(out, 2, version.as_bytes());
                        for item in items {
                            put_nested(out, 2, guess(1), |out| put_item(out, item));
                        }
                        if !schema.is_empty() {
                            put_bytes(out, 3, schema.as_bytes());
                        }
                    });
                }
                if !schema.is_empty() {
                    put_bytes(out, 3, schema.as_bytes());
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_lengths() {
        for (v, n) in [
            (0u64, 1),
            (127, 1),
            (128, 2),
            (16383, 2),
            (16384, 3),
            (u64::MAX, 10),
        ] {
            assert_eq!(varint_len(v), n, "{v}");
            let mut b = Vec::new();
            put_varint(&mut b, v);
            assert_eq!(b.len(), n);
        }
        for bit in 0..64 {
            for v in [1u64 << bit, (1u64 << bit) - 1, (1u64 << bit) | 1] {
                let mut b = Vec::new();
                put_varint(&mut b, v);
                assert_eq!(varint_len(v), b.len(), "{v}");
            }
        }
        assert_eq!(tag_len(15), 1);
        assert_eq!(tag_len(16), 2);
    }

    #[test]
    fn nested_lengths_are_minimal_whatever_the_guess() {
        for n in [0usize, 1, 127, 128, 16383, 16384, 2_097_151, 2_097_152] {
            let body = vec![7u8; n];
            let mut expected = vec![9u8];
            put_bytes(&mut expected, 2, &body);
            for guess in 1..=4 {
                let mut buf = vec![9u8];
                put_nested(&mut buf, 2, guess, |b| b.extend_from_slice(&body));
                assert!(buf == expected, "length {n}, guess {guess}");
            }
        }
    }

    #[test]
    fn shared_pairs_as_log_attributes_read_as_if_written_for_the_record() {
        use crate::record::{Key, SharedAttrs};
        // Short pairs, and values long enough for two- and three-byte lengths.
        let shared = SharedAttrs::new(vec![
            (Key::from_static("vendor.session.id"), AttrValue::str("s-1")),
            (Key::from_static("k"), AttrValue::str(&"v".repeat(200))),
            (Key::from_static("n"), AttrValue::Int(-7)),
            (
                Key::from_static("long"),
                AttrValue::str(&"w".repeat(20_000)),
            ),
            (Key::from_static("vendor.tenant.id"), AttrValue::str("t")),
        ]);
        let mut b = vec![1u8];
        put_shared_log_attrs(&mut b, &shared);
        let mut expected = vec![1u8];
        put_pairs(&mut expected, 6, shared.pairs());
        assert!(b == expected);
    }

    #[test]
    fn string_arrays_encode_as_prost_does() {
        for items in [
            vec![],
            vec![""],
            vec!["stop"],
            vec!["tool_call", &*"x".repeat(200)],
        ] {
            let v = AttrValue::str_array(&items);
            let expected = super::super::any_value(&v).encode_to_vec();
            let AttrValue::StrArray(arc_items) = &v else {
                unreachable!()
            };
            let mut b = Vec::new();
            put_array(&mut b, arc_items);
            assert_eq!(b, expected, "{items:?}");
            assert_eq!(any_value_len(&v), expected.len());
        }
    }

    #[test]
    fn attribute_pairs_encode_as_prost_does_around_one_byte_lengths() {
        use opentelemetry_proto::tonic::common::v1::KeyValue;
        use opentelemetry_proto::tonic::trace::v1::Span;
        for klen in [1, 60, 112, 113, 120, 127, 128, 200] {
            let key = "k".repeat(klen);
            let mut values = vec![
                AttrValue::Int(-1),
                AttrValue::Int(300),
                AttrValue::Double(0.5),
                AttrValue::Bool(true),
            ];
            for slen in [
                0, 1, 100, 117, 118, 119, 120, 121, 125, 126, 127, 128, 200, 20_000,
            ] {
                values.push(AttrValue::str(&"v".repeat(slen)));
            }
            for v in values {
                // As a span's attribute (field 9): the pair inside its tag and length.
                let span = Span {
                    attributes: vec![KeyValue {
                        key: key.clone(),
                        value: Some(super::super::any_value(&v)),
                    }],
                    ..Default::default()
                };
                let mut b = Vec::new();
                put_key_value(&mut b, 9, &key, &v);
                assert_eq!(b, span.encode_to_vec(), "key of {klen} bytes, {v:?}");
            }
        }
    }
}
