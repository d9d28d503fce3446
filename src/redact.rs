//! Masking for `redaction_applied` when a sample gives no redacted text of its own.
//! `basic` masks e-mail addresses, card-like digit groups and long numbers
//! (phones, accounts); `strict` also masks every token that contains a digit
//! (claim and policy ids, dates, amounts).
//!
//! [`mask_pii`] is what `--mask-pii` applies to every content field of every
//! output: it replaces SSNs, payment card numbers (Luhn-valid), e-mail
//! addresses and phone numbers, and leaves ids, dates and other numbers alone.

use crate::record::{AttrValue, LogRecord, TraceRecord};
use std::borrow::Cow;
use std::sync::Arc;

/// What [`mask_pii`] writes in place of an SSN.
pub const SSN_MASK: &str = "<SSN>";
/// ... of a payment card number.
pub const CARD_MASK: &str = "<CARD_NUMBER>";
/// ... of an e-mail address.
pub const EMAIL_MASK: &str = "<EMAIL>";
/// ... of a phone number.
pub const PHONE_MASK: &str = "<PHONE>";

/// Whether `digits` (ASCII digits only) pass the Luhn check of card numbers.
pub fn luhn(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(d - b'0');
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

fn is_local(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'%' | b'+' | b'-')
}

fn is_domain(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-')
}

/// The e-mail address around the `@` at `at`: its byte range.
fn email_at(b: &[u8], at: usize) -> Option<(usize, usize)> {
    let mut start = at;
    while start > 0 && is_local(b[start - 1]) {
        start -= 1;
    }
    let mut end = at + 1;
    while end < b.len() && is_domain(b[end]) {
        end += 1;
    }
    // A domain ends in a letter; trailing dots and dashes are punctuation.
    while end > at + 1 && matches!(b[end - 1], b'.' | b'-') {
        end -= 1;
    }
    let domain = &b[at + 1..end];
    let tld = domain.rsplit(|c| *c == b'.').next()?;
    let ok = start < at
        && domain.contains(&b'.')
        && tld.len() >= 2
        && tld.iter().all(u8::is_ascii_alphabetic);
    ok.then_some((start, end))
}

/// A run of digits and the separators phone and card numbers are written with,
/// starting at `i`: its end and its digits.
fn number_at(b: &[u8], i: usize) -> (usize, Vec<u8>) {
    let mut digits = Vec::new();
    let mut j = i;
    while j < b.len() {
        let c = b[j];
        if c.is_ascii_digit() {
            digits.push(c);
            j += 1;
        } else if matches!(c, b' ' | b'-' | b'.' | b'(' | b')' | b'+')
            && b[j + 1..]
                .iter()
                .take(2)
                .position(u8::is_ascii_digit)
                .is_some_and(|k| k == 0 || (k == 1 && matches!(b[j + 1], b' ' | b'(' | b')')))
        {
            j += 1;
        } else {
            break;
        }
    }
    // A closing parenthesis right after the digits belongs to the text.
    (j, digits)
}

/// What the number text `t` (with `digits`) is, if it is personal data.
fn classify(t: &[u8], digits: &[u8]) -> Option<&'static str> {
    let shape: Vec<u8> = t
        .iter()
        .map(|c| if c.is_ascii_digit() { b'9' } else { *c })
        .collect();
    if shape == b"999-99-9999" {
        return Some(SSN_MASK);
    }
    let n = digits.len();
    let grouped = t.iter().any(|c| !c.is_ascii_digit());
    // Ungrouped, only the usual lengths (15: Amex, 16): a 13- or 19-digit run
    // is more often a timestamp in ms or ns.
    if (13..=19).contains(&n) && (grouped || n == 15 || n == 16) && luhn(digits) {
        return Some(CARD_MASK);
    }
    let plus = t.first() == Some(&b'+');
    if (plus && (10..=15).contains(&n)) || (grouped && (10..=11).contains(&n)) {
        return Some(PHONE_MASK);
    }
    None
}

/// `text` with every SSN, Luhn-valid card number, e-mail address and phone
/// number replaced by a marker (`<SSN>`, `<CARD_NUMBER>`, `<EMAIL>`, `<PHONE>`);
/// borrowed when there is nothing to mask.
pub fn mask_pii(text: &str) -> Cow<'_, str> {
    let b = text.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut i = 0;
    let replace = |out: &mut Option<String>, copied: &mut usize, s: usize, e: usize, m: &str| {
        let o = out.get_or_insert_with(|| String::with_capacity(text.len()));
        o.push_str(&text[*copied..s]);
        o.push_str(m);
        *copied = e;
    };
    while i < b.len() {
        let c = b[i];
        if c == b'@' {
            if let Some((s, e)) = email_at(b, i) {
                if s >= copied {
                    replace(&mut out, &mut copied, s, e, EMAIL_MASK);
                    i = e;
                    continue;
                }
            }
        }
        let starts_number = c.is_ascii_digit()
            || ((c == b'+' || c == b'(') && b.get(i + 1).is_some_and(u8::is_ascii_digit));
        if starts_number && (i == 0 || !is_word(b[i - 1])) && i >= copied {
            let (mut e, digits) = number_at(b, i);
            // Trailing separators are punctuation, not part of the number.
            while e > i && !b[e - 1].is_ascii_digit() {
                e -= 1;
            }
            let bounded = e >= b.len() || !is_word(b[e]);
            if bounded {
                if let Some(m) = classify(&b[i..e], &digits) {
                    replace(&mut out, &mut copied, i, e, m);
                    i = e;
                    continue;
                }
            }
            // Skip the rest of this number: a part of it is no number of its own.
            let mut k = i + 1;
            while k < b.len() && (b[k].is_ascii_digit() || is_word(b[k])) {
                k += 1;
            }
            i = k;
            continue;
        }
        i += 1;
    }
    match out {
        Some(mut o) => {
            o.push_str(&text[copied..]);
            Cow::Owned(o)
        }
        None => Cow::Borrowed(text),
    }
}

/// Splits off trailing punctuation so `4111,` keeps its comma.
fn split_punct(token: &str) -> (&str, &str) {
    let end = token.trim_end_matches(|c: char| {
        matches!(c, ',' | '.' | ';' | ':' | '!' | '?' | ')' | '"' | '\'')
    });
    (end, &token[end.len()..])
}

fn digits(s: &str) -> usize {
    s.chars().filter(char::is_ascii_digit).count()
}

fn is_numberish(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '-' | '+' | '(' | ')' | '/'))
}

/// Whether `word` holds an ISO 8601 date (`2026-02-14`, also inside a timestamp or an
/// id): a date is no contact or account number, so `basic` keeps it.
fn has_iso_date(word: &str) -> bool {
    let b = word.as_bytes();
    b.windows(10).any(|w| {
        w.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            _ => c.is_ascii_digit(),
        })
    })
}

/// `text` masked at the `basic` level, or at `strict` when `strict` is set.
pub fn mask(text: &str, strict: bool) -> String {
    let tokens: Vec<&str> = text.split(' ').collect();
    let mut out: Vec<String> = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        // A run of number-only tokens with 12+ digits in all is a card or account number.
        let mut j = i;
        let mut total = 0;
        while j < tokens.len() && is_numberish(split_punct(tokens[j]).0) {
            total += digits(tokens[j]);
            j += 1;
        }
        if j > i + 1 && total >= 12 {
            out.push(format!("<CARD_NUMBER>{}", split_punct(tokens[j - 1]).1));
            i = j;
            continue;
        }
        let (word, punct) = split_punct(tokens[i]);
        let masked = if word.contains('@') && word.contains('.') {
            Some("<EMAIL>")
        } else if (strict || !has_iso_date(word)) && digits(word) >= 7 {
            Some("<NUMBER>")
        } else if strict && digits(word) > 0 {
            Some("<REDACTED>")
        } else {
            None
        };
        out.push(match masked {
            Some(m) => format!("{m}{punct}"),
            None => tokens[i].to_string(),
        });
        i += 1;
    }
    out.join(" ")
}

/// A string value masked, or `None` when it has nothing to mask.
fn masked_value(v: &AttrValue) -> Option<AttrValue> {
    match v {
        AttrValue::Str(s) => match mask_pii(s) {
            Cow::Owned(m) => Some(AttrValue::Str(m.into())),
            Cow::Borrowed(_) => None,
        },
        AttrValue::StrArray(items) => {
            let masked: Vec<Cow<str>> = items.iter().map(|s| mask_pii(s)).collect();
            masked
                .iter()
                .any(|m| matches!(m, Cow::Owned(_)))
                .then(|| AttrValue::StrArray(masked.iter().map(|m| Arc::from(&**m)).collect()))
        }
        _ => None,
    }
}

fn mask_values<'a>(values: impl Iterator<Item = &'a mut AttrValue>) {
    for v in values {
        if let Some(m) = masked_value(v) {
            *v = m;
        }
    }
}

/// Masks personal data in every text of a trace: attributes, event
/// attributes, status messages.
pub fn mask_trace(t: &mut TraceRecord) {
    for s in &mut t.spans {
        mask_values(s.attrs.values_mut());
        for e in &mut s.events {
            mask_values(e.attrs.iter_mut().map(|(_, v)| v));
        }
        if let Some(m) = &s.status_message {
            if let Cow::Owned(m) = mask_pii(m) {
                s.status_message = Some(m.into());
            }
        }
    }
}

/// Masks personal data in a log record's body and attributes.
pub fn mask_log(l: &mut LogRecord) {
    if let Cow::Owned(m) = mask_pii(&l.body) {
        l.body = m.into();
    }
    l.unshare();
    mask_values(l.attrs.iter_mut().map(|(_, v)| v));
}

#[cfg(test)]
mod tests {
    use super::{mask, mask_pii};

    #[test]
    fn pii_masks_ssn_cards_emails_and_phones() {
        assert_eq!(
            mask_pii("SSN 078-05-1120, card 4111 1111 1111 1111, mail jane.roe@example.com, call (415) 555-0132 or +1 212 555 0199."),
            "SSN <SSN>, card <CARD_NUMBER>, mail <EMAIL>, call <PHONE> or <PHONE>."
        );
        assert_eq!(mask_pii("card 4111-1111-1111-1111"), "card <CARD_NUMBER>");
        assert_eq!(mask_pii("card 4111111111111111."), "card <CARD_NUMBER>.");
    }

    #[test]
    fn pii_keeps_ids_dates_and_numbers_that_are_no_pii() {
        for keep in [
            "claim PHN-40526 filed 2026-02-14T09:00:00Z",
            "session ses_acme_796fbc0ab6c25713, tenant d5c45c9f-d330-4b19-bed9-8f5fab5484f6",
            "order 4111 1111 1111 1112 fails Luhn",
            "1767225600 seconds, 1767225600000 ms, score 0.97",
            "{\"step\": 3, \"score\": -0.03}",
            "not@an-address and a@b",
        ] {
            assert_eq!(mask_pii(keep), keep);
        }
        assert!(matches!(mask_pii("nothing"), std::borrow::Cow::Borrowed(_)));
    }

    #[test]
    fn basic_masks_contacts_and_long_numbers() {
        assert_eq!(
            mask("My card 4111 1111 1111 1111 was charged twice, mail jo@example.com or call 415-555-0100.", false),
            "My card <CARD_NUMBER> was charged twice, mail <EMAIL> or call <NUMBER>."
        );
        assert_eq!(
            mask("Claim PH-8842 is open", false),
            "Claim PH-8842 is open"
        );
    }

    #[test]
    fn basic_keeps_iso_dates_and_timestamps() {
        assert_eq!(
            mask(
                "Booked 2026-02-18T09:00:00Z (slot SLOT-2026-02-18T09:00), filed 2026-02-14.",
                false
            ),
            "Booked 2026-02-18T09:00:00Z (slot SLOT-2026-02-18T09:00), filed 2026-02-14."
        );
        assert_eq!(mask("filed 2026-02-14", true), "filed <NUMBER>");
    }

    #[test]
    fn strict_also_masks_ids_and_dates() {
        assert_eq!(
            mask("Claim PH-8842 filed on 15/03/2024, at 3pm.", true),
            "Claim <REDACTED> filed on <NUMBER>, at <REDACTED>."
        );
    }
}
