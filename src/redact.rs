//! Masking for `redaction_applied` when a sample gives no redacted text of its own.
//! `basic` masks e-mail addresses, card-like digit groups and long numbers
//! (phones, accounts); `strict` also masks every token that contains a digit
//! (claim and policy ids, dates, amounts).

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

#[cfg(test)]
mod tests {
    use super::mask;

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
