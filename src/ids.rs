//! Correlation-id templates from `config.yaml` → `id_formats`.
//!
//! A template is literal text with placeholders `{hex:N}` (N random hex digits,
//! 1 ≤ N ≤ 32), `{uuid}` (a random v4 UUID) and `{tenant_id}`.

/// Resource attribute that names the run; `otelsim verify` and the sink group by it.
pub const RUN_ID_KEY: &str = "otelsim.run.id";

use rand::Rng;

#[derive(Clone, Debug, PartialEq)]
enum Part {
    Text(String),
    Hex(usize),
    Uuid,
    TenantId,
}

/// A parsed id template, ready to render fresh ids.
#[derive(Clone, Debug, PartialEq)]
pub struct IdTemplate {
    parts: Vec<Part>,
    source: String,
}

impl IdTemplate {
    /// Parses a template; the error says which placeholder is wrong and what is valid.
    pub fn parse(source: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = source;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let Some(close) = rest[open..].find('}') else {
                return Err(format!("unclosed `{{` in id template {source:?}"));
            };
            let ph = &rest[open + 1..open + close];
            parts.push(match ph {
                "uuid" => Part::Uuid,
                "tenant_id" => Part::TenantId,
                _ => match ph.strip_prefix("hex:") {
                    Some(n) => match n.trim().parse::<usize>() {
                        Ok(n) if (1..=32).contains(&n) => Part::Hex(n),
                        _ => {
                            return Err(format!(
                                "`{{{ph}}}` in {source:?}: N in {{hex:N}} must be a whole number from 1 to 32"
                            ))
                        }
                    },
                    None => {
                        return Err(format!(
                            "unknown placeholder `{{{ph}}}` in {source:?}; valid: {{hex:N}} (N ≤ 32), {{uuid}}, {{tenant_id}}"
                        ))
                    }
                },
            });
            rest = &rest[open + close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(IdTemplate {
            parts,
            source: source.to_string(),
        })
    }

    /// The template as written in the config.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// A fresh id: placeholders filled from `rng`, `{tenant_id}` with `tenant_id`.
    pub fn render<R: Rng + ?Sized>(&self, rng: &mut R, tenant_id: &str) -> String {
        let mut out = String::with_capacity(self.source.len() + 24);
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Hex(n) => push_hex(&mut out, rng, *n),
                Part::TenantId => out.push_str(tenant_id),
                Part::Uuid => {
                    let mut b: [u8; 16] = rng.random();
                    b[6] = (b[6] & 0x0f) | 0x40;
                    b[8] = (b[8] & 0x3f) | 0x80;
                    push_uuid(&mut out, &b);
                }
            }
        }
        out
    }
}

/// `b` as a version-4 UUID's text (8-4-4-4-12 lowercase hex digits), written as
/// one piece: formatting each byte measured ≈ 400 instructions per id.
fn push_uuid(out: &mut String, b: &[u8; 16]) {
    let mut text = [b'-'; 36];
    // The five groups of bytes and where their digits start.
    for (bytes, at) in [(0..4, 0), (4..6, 9), (6..8, 14), (8..10, 19), (10..16, 24)] {
        let digits = &mut text[at..at + 2 * bytes.len()];
        hex::encode_to_slice(&b[bytes], digits).expect("two digits a byte");
    }
    out.push_str(std::str::from_utf8(&text).expect("hex digits and dashes are ASCII"));
}

fn push_hex<R: Rng + ?Sized>(out: &mut String, rng: &mut R, n: usize) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for _ in 0..n {
        out.push(DIGITS[rng.random_range(0..16)] as char);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn renders_placeholders() {
        let t = IdTemplate::parse("sess_{tenant_id}_{hex:12}").unwrap();
        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(1);
        let s = t.render(&mut rng, "acme");
        assert!(s.starts_with("sess_acme_"));
        assert_eq!(s.len(), "sess_acme_".len() + 12);
        let u = IdTemplate::parse("{uuid}").unwrap().render(&mut rng, "");
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
    }

    #[test]
    fn uuids_read_as_their_bytes() {
        let mut out = String::new();
        let b: [u8; 16] = std::array::from_fn(|i| (i as u8).wrapping_mul(17).wrapping_add(3));
        push_uuid(&mut out, &b);
        let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
        let want = [
            &hex[0..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..32],
        ]
        .join("-");
        assert_eq!(out, want);
    }

    #[test]
    fn rejects_bad_placeholders() {
        assert!(IdTemplate::parse("x{hex:33}")
            .unwrap_err()
            .contains("1 to 32"));
        assert!(IdTemplate::parse("x{hex:0}").is_err());
        assert!(IdTemplate::parse("x{nope}").unwrap_err().contains("valid"));
        assert!(IdTemplate::parse("x{hex:3").is_err());
    }
}
