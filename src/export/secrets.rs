//! Keeping credentials out of everything otelsim prints or writes: header
//! values and the password of an endpoint URL are never shown, in errors,
//! summaries, reports or progress. Messages that come from elsewhere (a
//! collector's error body may echo the request's headers) are scrubbed of the
//! configured secrets before they are kept.

use super::ExportConfig;

/// What replaces a secret.
pub const REDACTED: &str = "<redacted>";

/// Secrets shorter than this are not scrubbed from free text: a 2-letter value
/// would mangle ordinary words, and is no credential.
const MIN_SCRUBBED_LEN: usize = 4;

/// A URL for display: the password of its userinfo replaced
/// (`http://user:<redacted>@host`); anything else as it is.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return redact_authority(url, "");
    };
    redact_authority(rest, &format!("{scheme}://"))
}

/// `user:pass@host/...` → `user:<redacted>@host/...` (after `prefix`).
fn redact_authority(rest: &str, prefix: &str) -> String {
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    match authority.rsplit_once('@') {
        // `user:password` keeps the user; a lone userinfo may be a token: all of it goes.
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{prefix}{user}:{REDACTED}@{host}{path}"),
            None => format!("{prefix}{REDACTED}@{host}{path}"),
        },
        None => format!("{prefix}{rest}"),
    }
}

/// A `KEY=VALUE` item that did not parse, for an error message: the text
/// before a `:` (what a `key: value` typo names) and never the rest.
pub fn redact_item(item: &str) -> String {
    match item.split_once(':') {
        Some((key, _)) if !key.trim().is_empty() && !key.contains(char::is_whitespace) => {
            format!("{}: {REDACTED}", key.trim())
        }
        _ => REDACTED.to_string(),
    }
}

/// The secrets of one export configuration, to scrub from text that did not
/// come from otelsim (error bodies, status messages, client errors).
#[derive(Clone, Debug, Default)]
pub struct Secrets {
    /// Longest first, so a value is replaced before a word inside it.
    values: Vec<String>,
}

impl Secrets {
    /// Every header value (whole, and each long word of it: a collector may echo
    /// only the token of `Bearer <token>`) and the userinfo of every endpoint.
    pub fn of(cfg: &ExportConfig) -> Self {
        let mut values = Vec::new();
        for (_, v) in &cfg.headers {
            values.push(v.clone());
            values.extend(
                v.split_whitespace()
                    .filter(|w| w.len() >= 8)
                    .map(String::from),
            );
        }
        let endpoints = std::iter::once(&cfg.endpoint).chain(cfg.signal_endpoints.iter().flatten());
        for url in endpoints {
            let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
            let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
            if let Some((userinfo, _)) = authority.rsplit_once('@') {
                values.push(userinfo.to_string());
                if let Some((_, password)) = userinfo.split_once(':') {
                    values.push(password.to_string());
                }
            }
        }
        values.retain(|v| v.len() >= MIN_SCRUBBED_LEN);
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        values.dedup();
        Secrets { values }
    }

    /// `text` with every secret replaced by `<redacted>`.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for v in &self.values {
            if out.contains(v.as_str()) {
                out = out.replace(v.as_str(), REDACTED);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_passwords_are_redacted_and_other_urls_kept() {
        assert_eq!(
            redact_url("http://user:pass@host:4318/v1/traces"),
            "http://user:<redacted>@host:4318/v1/traces"
        );
        assert_eq!(redact_url("https://token@host"), "https://<redacted>@host");
        assert_eq!(redact_url("u:p@host:4317"), "u:<redacted>@host:4317");
        assert_eq!(
            redact_url("http://host:4317/a@b"),
            "http://host:4317/a@b",
            "an @ in the path is no userinfo"
        );
        assert_eq!(redact_url("http://localhost:4317"), "http://localhost:4317");
    }

    #[test]
    fn a_colon_typo_names_the_key_only() {
        assert_eq!(
            redact_item("authorization: Bearer s3cr3t"),
            "authorization: <redacted>"
        );
        assert_eq!(redact_item("Bearer s3cr3t"), "<redacted>");
        assert_eq!(redact_item("Bearer x:y"), "<redacted>");
    }

    #[test]
    fn configured_secrets_are_scrubbed_from_echoed_text() {
        let cfg = ExportConfig {
            endpoint: "http://bob:hunter22@collector:4318".into(),
            headers: vec![
                ("authorization".into(), "Bearer abcdefgh12345".into()),
                ("x-team".into(), "ob".into()),
            ],
            ..ExportConfig::default()
        };
        let s = Secrets::of(&cfg);
        let echoed = "401: bad header authorization=Bearer abcdefgh12345 (token abcdefgh12345) for bob:hunter22, team ob";
        let clean = s.scrub(echoed);
        assert!(!clean.contains("abcdefgh12345"), "{clean}");
        assert!(!clean.contains("hunter22"), "{clean}");
        assert!(clean.contains("team ob"), "short values are left: {clean}");
        assert_eq!(
            clean,
            "401: bad header authorization=<redacted> (token <redacted>) for <redacted>, team ob"
        );
    }
}
