//! Content a later-v1 scenario writes out literally, rendered once at compile time:
//! tool-call payloads as JSON text and the higher-latency condition as attributes.
//!
//! Payloads are rendered the way the predecessor's files were read by their users'
//! dashboards: keys in file order, `", "` and `": "` separators, non-ASCII escaped,
//! at most [`MAX_PAYLOAD_CHARS`] characters.

use crate::model::AttrValue;
use crate::plan::Prefixer;
use crate::redact;
use crate::yaml::{Kind, Node};
use std::fmt::Write as _;

/// Longest payload text; a longer one is cut and ends with `...`.
pub const MAX_PAYLOAD_CHARS: usize = 512;

/// The payload written for `tool` in a `tool_call_arguments` / `tool_call_results` map: by
/// its name, else by the last dotted segment of its name, else the map's only entry.
pub fn payload_for<'a>(map: &'a [(String, Node)], tool: &str) -> Option<&'a Node> {
    let last = tool.rsplit('.').next().unwrap_or(tool);
    map.iter()
        .find(|(k, _)| k == tool)
        .or_else(|| map.iter().find(|(k, _)| k == last))
        .or_else(|| (map.len() == 1).then(|| &map[0]))
        .map(|(_, n)| n)
        .filter(|n| !matches!(&n.kind, Kind::Map(m) if m.is_empty()))
}

/// A payload as attribute text: JSON, strings masked at `redaction` (`none`, `basic`,
/// `strict`), cut to [`MAX_PAYLOAD_CHARS`].
pub fn payload_text(node: &Node, redaction: &str) -> AttrValue {
    let mut out = String::new();
    write_json(node, redaction, false, &mut out);
    if out.chars().count() > MAX_PAYLOAD_CHARS {
        // The text is ASCII (non-ASCII is escaped), so byte and char offsets agree.
        out.truncate(MAX_PAYLOAD_CHARS - 3);
        out.push_str("...");
    }
    AttrValue::str(&out)
}

/// A v2 payload as attribute text: `own` merged over the contract's `sample` (the
/// scenario's keys win, the sample's other keys stay), keys sorted at every level,
/// non-ASCII escaped, not cut.
pub fn sorted_payload_text(sample: &[(String, Node)], own: Option<&Node>) -> AttrValue {
    let mut merged: Vec<(String, Node)> = sample.to_vec();
    if let Some(Kind::Map(entries)) = own.map(|n| &n.kind) {
        for (k, v) in entries {
            match merged.iter_mut().find(|(mk, _)| mk == k) {
                Some(slot) => slot.1 = v.clone(),
                None => merged.push((k.clone(), v.clone())),
            }
        }
    }
    let node = Node {
        pos: Default::default(),
        key_pos: Default::default(),
        kind: Kind::Map(merged),
    };
    let mut out = String::new();
    write_json(&node, "none", true, &mut out);
    AttrValue::str(&out)
}

/// Serialises `node` as JSON into `out`, strings masked at `redaction`; `sorted`: every
/// map's keys in order (else as written).
fn write_json(node: &Node, redaction: &str, sorted: bool, out: &mut String) {
    match &node.kind {
        Kind::Null => out.push_str("null"),
        Kind::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Kind::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Kind::Float(f) => write_float(*f, out),
        Kind::Str(s) => {
            let masked;
            let text = match redaction {
                "basic" | "strict" => {
                    masked = redact::mask(s, redaction == "strict");
                    masked.as_str()
                }
                _ => s.as_str(),
            };
            write_string(text, out);
        }
        Kind::Seq(items) => {
            out.push('[');
            for (i, it) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_json(it, redaction, sorted, out);
            }
            out.push(']');
        }
        Kind::Map(entries) => {
            let mut entries: Vec<&(String, Node)> = entries.iter().collect();
            if sorted {
                entries.sort_by(|a, b| a.0.cmp(&b.0));
            }
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_string(k, out);
                out.push_str(": ");
                write_json(v, redaction, sorted, out);
            }
            out.push('}');
        }
    }
}

/// A number as JSON: whole floats keep their `.0`; non-finite values become `null`.
fn write_float(f: f64, out: &mut String) {
    if !f.is_finite() {
        out.push_str("null");
    } else if f.fract() == 0.0 && f.abs() < 1e16 {
        let _ = write!(out, "{f:.1}");
    } else {
        let _ = write!(out, "{f}");
    }
}

/// A JSON string literal with every non-ASCII character escaped as `\uXXXX`.
fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || !c.is_ascii() => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The attributes `data_plane.higher_latency_condition` puts on the agent turn:
/// the condition keys, the `peak_hours` window, the `post_long_weekend` delay, and
/// every other condition as `higher_latency.condition.<key>`.
pub fn higher_latency_attrs(cond: &Node, prefix: &Prefixer) -> Vec<(String, AttrValue)> {
    let Some(entries) = cond.as_map() else {
        return Vec::new();
    };
    let attr = |suffix: &str| prefix.attr(&format!("higher_latency.{suffix}"));
    let keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
    let mut out = vec![(attr("condition.keys"), AttrValue::str(&keys.join(",")))];
    for (k, v) in entries {
        match (k.as_str(), &v.kind) {
            ("peak_hours", Kind::Map(fields)) => {
                for (f, fv) in fields {
                    let value = match (f.as_str(), &fv.kind) {
                        ("timezone", _) => fv.scalar_text().map(|t| AttrValue::str(&t)),
                        ("start_hour" | "end_hour", Kind::Int(i)) => Some(AttrValue::Int(*i)),
                        ("weekdays", _) => {
                            let mut t = String::new();
                            write_json(fv, "none", false, &mut t);
                            Some(AttrValue::str(&t))
                        }
                        _ => None,
                    };
                    if let Some(value) = value {
                        out.push((attr(&format!("peak_hours.{f}")), value));
                    }
                }
            }
            ("post_long_weekend", Kind::Map(fields)) => {
                for (f, fv) in fields {
                    if let ("days_after", Kind::Int(i)) = (f.as_str(), &fv.kind) {
                        out.push((attr("post_long_weekend.days_after"), AttrValue::Int(*i)));
                    }
                }
            }
            _ => {
                let name = k.to_lowercase().replace(['.', ' '], "_");
                let value = match &v.kind {
                    Kind::Bool(b) => AttrValue::Bool(*b),
                    Kind::Seq(_) | Kind::Map(_) => {
                        let mut t = String::new();
                        write_json(v, "none", false, &mut t);
                        AttrValue::str(&t)
                    }
                    _ => AttrValue::str(&v.scalar_text().unwrap_or_default()),
                };
                out.push((attr(&format!("condition.{name}")), value));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Diags;

    fn node(yaml: &str) -> Node {
        crate::yaml::parse(yaml, &mut Diags::new("t")).expect("yaml")
    }

    #[test]
    fn payloads_render_in_file_order_with_spaced_separators_and_escaped_unicode() {
        let n = node("b: 1\na: [x, 2.0, true, ~]\nc: {d: \"é\\\"q\"}\n");
        let AttrValue::Str(t) = payload_text(&n, "none") else {
            panic!("text")
        };
        assert_eq!(
            &*t,
            r#"{"b": 1, "a": ["x", 2.0, true, null], "c": {"d": "\u00e9\"q"}}"#
        );
    }

    #[test]
    fn v2_payloads_merge_over_the_sample_with_sorted_keys() {
        let sample = node("status: opened\nclaim_id: CLM-0001\nnotes: default\n");
        let own = node("claim_id: CLM-7\nzeta: {b: 1, a: 2}\n");
        let AttrValue::Str(t) = sorted_payload_text(sample.as_map().unwrap(), Some(&own)) else {
            panic!("text")
        };
        assert_eq!(
            &*t,
            r#"{"claim_id": "CLM-7", "notes": "default", "status": "opened", "zeta": {"a": 2, "b": 1}}"#
        );
    }

    #[test]
    fn long_payloads_are_cut_to_512_chars_ending_in_dots() {
        let n = node(&format!("note: {}\n", "a".repeat(600)));
        let AttrValue::Str(t) = payload_text(&n, "none") else {
            panic!("text")
        };
        assert_eq!(t.len(), MAX_PAYLOAD_CHARS);
        assert!(t.ends_with("..."));
    }

    #[test]
    fn strict_redaction_masks_payload_strings() {
        let n = node("claim_id: PH-7788\nemail: jo@example.com\n");
        let AttrValue::Str(t) = payload_text(&n, "strict") else {
            panic!("text")
        };
        assert!(
            !t.contains("PH-7788") && !t.contains("jo@example.com"),
            "{t}"
        );
    }

    #[test]
    fn payload_lookup_by_name_then_last_segment_then_only_entry() {
        let m = node("new_claim: {a: 1}\npay: {b: 2}\n");
        let map = m.as_map().unwrap();
        assert!(payload_for(map, "new_claim").is_some());
        assert!(payload_for(map, "svc.pay").is_some());
        assert!(payload_for(map, "cancel_claim").is_none());
        let one = node("whatever: {c: 3}\n");
        assert!(payload_for(one.as_map().unwrap(), "cancel_claim").is_some());
        let empty = node("new_claim: {}\n");
        assert!(payload_for(empty.as_map().unwrap(), "new_claim").is_none());
    }

    #[test]
    fn higher_latency_condition_becomes_typed_attributes() {
        let c = node(
            "peak_hours: {timezone: America/Los_Angeles, start_hour: 9, end_hour: 17, weekdays: [1, 2, 3]}\n\
             post_long_weekend: {days_after: 1}\n\
             Zip Code: 94107\n\
             backlog: true\n",
        );
        let p = Prefixer::new("vendor", None);
        let attrs = higher_latency_attrs(&c, &p);
        let get = |k: &str| {
            attrs
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("{k} missing from {attrs:?}"))
        };
        assert_eq!(
            get("vendor.higher_latency.condition.keys"),
            AttrValue::str("peak_hours,post_long_weekend,Zip Code,backlog")
        );
        assert_eq!(
            get("vendor.higher_latency.peak_hours.start_hour"),
            AttrValue::Int(9)
        );
        assert_eq!(
            get("vendor.higher_latency.peak_hours.weekdays"),
            AttrValue::str("[1, 2, 3]")
        );
        assert_eq!(
            get("vendor.higher_latency.post_long_weekend.days_after"),
            AttrValue::Int(1)
        );
        assert_eq!(
            get("vendor.higher_latency.condition.zip_code"),
            AttrValue::str("94107")
        );
        assert_eq!(
            get("vendor.higher_latency.condition.backlog"),
            AttrValue::Bool(true)
        );
    }
}
