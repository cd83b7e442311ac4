//! The central redactor: every known secret value is masked in every output the harness
//! produces (logs, errors, reports).

use std::sync::{Arc, RwLock};

/// A set of secret values, each with a name shown in its place.
#[derive(Clone, Default)]
pub struct Redactor {
    secrets: Arc<RwLock<Vec<(String, String)>>>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.secrets.read().map(|s| s.len()).unwrap_or(0);
        write!(f, "Redactor({n} secrets)")
    }
}

impl Redactor {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `value` under `name`; empty values are ignored.
    pub fn add(&self, name: &str, value: &str) {
        if value.is_empty() {
            return;
        }
        let mut s = self.secrets.write().expect("redactor lock");
        if !s.iter().any(|(_, v)| v == value) {
            s.push((name.to_string(), value.to_string()));
            // Longest first, so that a secret containing another is masked whole.
            s.sort_by_key(|(_, v)| std::cmp::Reverse(v.len()));
        }
    }

    /// `text` with every registered value replaced by `[REDACTED:<name>]`.
    pub fn redact(&self, text: &str) -> String {
        let s = self.secrets.read().expect("redactor lock");
        let mut out = text.to_string();
        for (name, value) in s.iter() {
            let mut marker = format!("[REDACTED:{name}]");
            if marker.contains(value.as_str()) {
                marker = "\u{2588}".repeat(3);
            }
            // Replacing can join the text around a match into a new match: repeat until none.
            let mut rounds = 0;
            while out.contains(value.as_str()) && rounds < 64 {
                out = out.replace(value.as_str(), &marker);
                rounds += 1;
            }
        }
        out
    }

    /// Registers every secret `other` knows (a run's redactor collects each scenario's).
    pub fn absorb(&self, other: &Redactor) {
        if Arc::ptr_eq(&self.secrets, &other.secrets) {
            return;
        }
        let theirs = other.secrets.read().expect("redactor lock").clone();
        for (name, value) in theirs {
            self.add(&name, &value);
        }
    }

    /// The first registered secret that occurs in `text`, by name (for leak scans).
    pub fn find_leak(&self, text: &str) -> Option<String> {
        let s = self.secrets.read().expect("redactor lock");
        s.iter()
            .find(|(_, v)| text.contains(v.as_str()))
            .map(|(n, _)| n.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
    }
}
