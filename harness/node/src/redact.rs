//! The central redactor: every known secret value is masked in every output the harness
//! produces (logs, errors, reports).

use aho_corasick::{AhoCorasick, MatchKind};
use std::sync::{Arc, RwLock};

/// `url` as it may be shown: its user and password removed (`http://u:p@h:1/x` →
/// `http://h:1/x`). Text that does not parse as a URL loses everything up to its last `@`.
pub fn url_without_credentials(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.has_host() => {
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.to_string()
        }
        _ => match (url.split_once("://"), url.rfind('@')) {
            (Some((scheme, _)), Some(at)) => format!("{scheme}://{}", &url[at + 1..]),
            (None, Some(at)) => url[at + 1..].to_string(),
            _ => url.to_string(),
        },
    }
}

/// `host:port` of `url` (the scheme's port when it names none), for messages about reaching
/// it: no user, password, path or query.
pub fn address_of_url(url: &str) -> String {
    if let Ok(parsed) = url::Url::parse(url) {
        if let Some(host) = parsed.host_str() {
            return match parsed.port_or_known_default() {
                Some(port) => format!("{host}:{port}"),
                None => host.to_string(),
            };
        }
    }
    let stripped = url_without_credentials(url);
    let rest = stripped
        .split_once("://")
        .map_or(stripped.as_str(), |(_, r)| r);
    rest.split(['/', '?', '#'])
        .next()
        .unwrap_or(rest)
        .to_string()
}

/// The characters percent-encoded in a URL's password: all but RFC 3986's unreserved ones.
pub const URL_USERINFO: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `secret` as it sits percent-encoded in a URL's password.
pub fn url_encoded(secret: &str) -> String {
    percent_encoding::utf8_percent_encode(secret, URL_USERINFO).to_string()
}

/// A set of secret values, each with a name shown in its place.
#[derive(Clone, Default)]
pub struct Redactor {
    inner: Arc<RwLock<Inner>>,
}

/// The secrets, longest first, and one automaton over all of them (rebuilt when one is added),
/// so that redacting is one pass over the text whatever the number of secrets.
#[derive(Default)]
struct Inner {
    secrets: Vec<(String, String)>,
    markers: Vec<String>,
    automaton: Option<AhoCorasick>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.inner.read().map(|s| s.secrets.len()).unwrap_or(0);
        write!(f, "Redactor({n} secrets)")
    }
}

impl Redactor {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `value` under `name`, and its percent-encoded form, as it sits in a URL;
    /// empty values are ignored.
    pub fn add(&self, name: &str, value: &str) {
        let encoded = url_encoded(value);
        if encoded != value {
            self.add_exact(name, &encoded);
        }
        self.add_exact(name, value);
    }

    fn add_exact(&self, name: &str, value: &str) {
        if value.is_empty() {
            return;
        }
        let mut inner = self.inner.write().expect("redactor lock");
        if inner.secrets.iter().any(|(_, v)| v == value) {
            return;
        }
        inner.secrets.push((name.to_string(), value.to_string()));
        // Longest first, so that a secret containing another is masked whole.
        inner
            .secrets
            .sort_by_key(|(_, v)| std::cmp::Reverse(v.len()));
        inner.markers = inner
            .secrets
            .iter()
            .map(|(name, value)| {
                let marker = format!("[REDACTED:{name}]");
                // A name that holds its own value would keep it visible.
                if marker.contains(value.as_str()) {
                    "\u{2588}".repeat(3)
                } else {
                    marker
                }
            })
            .collect();
        inner.automaton = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(inner.secrets.iter().map(|(_, v)| v))
            .ok();
    }

    /// `text` with every registered value replaced by `[REDACTED:<name>]`.
    pub fn redact(&self, text: &str) -> String {
        let inner = self.inner.read().expect("redactor lock");
        let Some(automaton) = &inner.automaton else {
            return text.to_string();
        };
        let mut out = automaton.replace_all(text, &inner.markers);
        // Replacing can join the text around a match into a new match: repeat until none.
        let mut rounds = 0;
        while rounds < 64 && automaton.is_match(&out) {
            out = automaton.replace_all(&out, &inner.markers);
            rounds += 1;
        }
        out
    }

    /// Registers every secret `other` knows (a run's redactor collects each scenario's).
    pub fn absorb(&self, other: &Redactor) {
        if Arc::ptr_eq(&self.inner, &other.inner) {
            return;
        }
        let theirs = other.inner.read().expect("redactor lock").secrets.clone();
        for (name, value) in theirs {
            self.add_exact(&name, &value);
        }
    }

    /// The first registered secret that occurs in `text`, by name (for leak scans).
    /// The names of every registered secret in `text`, each once, in order of appearance.
    pub fn leaks(&self, text: &str) -> Vec<String> {
        let inner = self.inner.read().expect("redactor lock");
        let Some(automaton) = inner.automaton.as_ref() else {
            return Vec::new();
        };
        let mut names: Vec<String> = Vec::new();
        for m in automaton.find_iter(text) {
            let name = &inner.secrets[m.pattern().as_usize()].0;
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
        names
    }

    pub fn find_leak(&self, text: &str) -> Option<String> {
        let inner = self.inner.read().expect("redactor lock");
        let found = inner.automaton.as_ref()?.find(text)?;
        Some(inner.secrets[found.pattern().as_usize()].0.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_is_shown_without_its_user_and_password() {
        assert_eq!(
            url_without_credentials("http://user:S3CRET@127.0.0.1:1/x"),
            "http://127.0.0.1:1/x"
        );
        assert_eq!(
            address_of_url("http://user:S3CRET@127.0.0.1:1/x"),
            "127.0.0.1:1"
        );
        assert_eq!(
            address_of_url("https://api.telegram.org/botS3CRET/getMe"),
            "api.telegram.org:443"
        );
        assert_eq!(
            address_of_url("nats://a:S3CRET@127.0.0.1:4222"),
            "127.0.0.1:4222"
        );
        // Not URLs: whatever precedes the last `@` goes.
        assert_eq!(
            url_without_credentials("http://u:pa/ss@h:1/x"),
            "http://h:1/x"
        );
        assert_eq!(address_of_url("http://u:pa/ss@h:1/x"), "h:1");
        assert_eq!(address_of_url("not a url"), "not a url");
    }
    use proptest::prelude::*;

    #[test]
    fn a_secret_inside_a_longer_secret_is_masked_whole() {
        let r = Redactor::new();
        r.add("short", "abc");
        r.add("long", "xxabcxx");
        assert_eq!(r.redact("k=xxabcxx"), "k=[REDACTED:long]");
    }

    proptest! {
        #[test]
        fn no_registered_value_survives_redaction(
            secret in "[ -~]{8,40}",
            prefix in "[ -~]{0,20}",
            suffix in "[ -~]{0,20}",
        ) {
            let r = Redactor::new();
            r.add("DB_PASSWORD", &secret);
            let out = r.redact(&format!("{prefix}{secret}{suffix}"));
            prop_assert!(!out.contains(&secret));
        }

        #[test]
        fn no_value_of_many_survives_redaction_however_they_overlap(
            secrets in proptest::collection::vec("[a-c]{3,8}", 1..8),
            text in "[a-c ]{0,200}",
        ) {
            let r = Redactor::new();
            for (i, s) in secrets.iter().enumerate() {
                r.add(&format!("S{i}"), s);
            }
            let out = r.redact(&text);
            for s in &secrets {
                prop_assert!(!out.contains(s.as_str()), "{s} in {out}");
            }
        }
    }
}
