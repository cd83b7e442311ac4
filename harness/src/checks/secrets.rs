//! The node's secrets as the checks see them: the current ones from the `.env` files, the
//! previous ones from the Phase 1 backup tarball (or a directory laid out like the root). Every
//! value is registered with the redactor before any check runs.

use crate::envfile::EnvFile;
use crate::redact::Redactor;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Whether a variable holds a secret (by name): `ROUTER_KEY_SELECTION` does not.
pub fn is_secret_name(name: &str) -> bool {
    let upper = name.to_uppercase();
    ["PASSWORD", "SECRET", "TOKEN", "API_KEY", "CREDS"]
        .iter()
        .any(|s| upper.contains(s))
        || upper.ends_with("_KEY")
}

/// A runbook-style placeholder such as `<new_key>`: angle brackets around a word.
pub fn is_placeholder(value: &str) -> bool {
    value
        .strip_prefix('<')
        .and_then(|v| v.strip_suffix('>'))
        .is_some_and(|inner| {
            !inner.is_empty()
                && inner
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        })
}

/// `.env` files by path relative to the node's root, each as its variables.
#[derive(Debug, Clone, Default)]
pub struct SecretSet {
    pub files: BTreeMap<PathBuf, Vec<(String, String)>>,
    /// Files that could not be read, with why.
    pub unreadable: Vec<(PathBuf, String)>,
}

#[derive(Debug, thiserror::Error)]
#[error("{path}: cannot read the previous secrets: {reason}")]
pub struct PreviousError {
    pub path: String,
    pub reason: String,
}

impl SecretSet {
    /// Reads the `.env` files `relative` under `root`.
    pub fn read(root: &Path, relative: &[PathBuf]) -> SecretSet {
        let mut set = SecretSet::default();
        for rel in relative {
            match EnvFile::read(root.join(rel)) {
                Ok(f) => {
                    set.files.insert(rel.clone(), f.vars());
                }
                Err(e) => set.unreadable.push((rel.clone(), e.to_string())),
            }
        }
        set
    }

    /// The previous secrets from a backup tarball (`.tar.gz`/`.tgz`/`.tar`) or a directory.
    pub fn previous(path: &Path) -> Result<SecretSet, PreviousError> {
        let err = |reason: String| PreviousError {
            path: path.display().to_string(),
            reason,
        };
        if path.is_dir() {
            let mut set = SecretSet::default();
            collect_dir(path, path, &mut set).map_err(|e| err(e.to_string()))?;
            return Ok(set);
        }
        let file = std::fs::File::open(path).map_err(|e| err(e.to_string()))?;
        let name = path.to_string_lossy();
        let reader: Box<dyn Read> = if name.ends_with(".gz") || name.ends_with(".tgz") {
            Box::new(flate2::read::GzDecoder::new(file))
        } else {
            Box::new(file)
        };
        let mut archive = tar::Archive::new(reader);
        let mut set = SecretSet::default();
        let entries = archive.entries().map_err(|e| err(e.to_string()))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| err(format!("not a readable tar archive: {e}")))?;
            let rel = entry.path().map_err(|e| err(e.to_string()))?.into_owned();
            let rel: PathBuf = rel.components().filter(|c| c.as_os_str() != ".").collect();
            if rel.file_name().is_some_and(|n| n == ".env") {
                let mut text = String::new();
                entry
                    .read_to_string(&mut text)
                    .map_err(|e| err(e.to_string()))?;
                let parsed = EnvFile::parse(&rel, &text).map_err(|e| err(e.to_string()))?;
                set.files.insert(rel, parsed.vars());
            }
        }
        if set.files.is_empty() {
            return Err(err("it holds no .env file".into()));
        }
        Ok(set)
    }

    /// `var` as the file `rel` holds it.
    pub fn value(&self, rel: &Path, var: &str) -> Option<&str> {
        self.files
            .get(rel)?
            .iter()
            .find(|(k, _)| k == var)
            .map(|(_, v)| v.as_str())
    }

    /// `var` in `rel`, or else in any file (the backup may not hold every service's file).
    pub fn value_anywhere(&self, rel: &Path, var: &str) -> Option<&str> {
        self.value(rel, var).or_else(|| {
            self.files
                .values()
                .flat_map(|vars| vars.iter())
                .find(|(k, _)| k == var)
                .map(|(_, v)| v.as_str())
        })
    }

    /// Registers every secret value with `redactor`, named `<prefix><VAR>`. A runbook
    /// placeholder pasted as a value (`<new_key>`) is public text, not a secret.
    pub fn register(&self, redactor: &Redactor, prefix: &str) {
        for vars in self.files.values() {
            for (k, v) in vars {
                if is_secret_name(k) && !is_placeholder(v) {
                    redactor.add(&format!("{prefix}{k}"), v);
                }
            }
        }
    }

    /// Every secret value, for scans (git, files).
    pub fn secret_values(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .files
            .values()
            .flat_map(|vars| vars.iter())
            .filter(|(k, v)| is_secret_name(k) && !v.is_empty())
            .cloned()
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

fn collect_dir(root: &Path, dir: &Path, set: &mut SecretSet) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_dir(root, &path, set)?;
        } else if path.file_name().is_some_and(|n| n == ".env") {
            let rel = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
            match EnvFile::read(&path) {
                Ok(f) => {
                    set.files.insert(rel, f.vars());
                }
                Err(e) => set.unreadable.push((rel, e.to_string())),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{is_placeholder, is_secret_name};

    #[test]
    fn a_pasted_placeholder_is_public_text_but_a_bracketed_password_is_not_one() {
        assert!(is_placeholder("<new_key>"));
        assert!(is_placeholder("<NEW-PASSWORD>"));
        for secret in [
            "<new key>",
            "<>",
            "<a$b>",
            "x<new_key>",
            "<new_key",
            "NewPassword123!",
        ] {
            assert!(!is_placeholder(secret), "{secret}");
        }
    }

    #[test]
    fn secret_names_are_recognised_and_settings_are_not() {
        for secret in [
            "DB_PASSWORD",
            "JWT_SECRET",
            "TELEGRAM_BOT_TOKEN_DRUID",
            "DEEPSEEK_API_KEY_OLD",
            "QDRANT_API_KEY",
            "SIGNING_KEY",
        ] {
            assert!(is_secret_name(secret), "{secret}");
        }
        for setting in [
            "ROUTER_KEY_SELECTION",
            "NATS_USER",
            "POSTGRES_DB",
            "KEYCLOAK_URL",
        ] {
            assert!(!is_secret_name(setting), "{setting}");
        }
    }
}
