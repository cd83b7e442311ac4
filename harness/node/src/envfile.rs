//! `.env` files as compose's `env_file` reads them: `KEY=VALUE` lines taken literally, `#`
//! comments and blank lines kept. Edits rewrite the file in place (same inode, same mode),
//! as an editor that keeps bind mounts working would.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Why a `.env` file could not be read, parsed or written. Never holds a value.
#[derive(Debug, thiserror::Error)]
pub enum EnvFileError {
    /// Cannot be read (line 0) or parsed (at `line`).
    #[error("{path}{}: {message}", runbook::at_line(*line))]
    Parse {
        path: PathBuf,
        line: usize,
        message: String,
    },
    /// Cannot be written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

type Result<T, E = EnvFileError> = std::result::Result<T, E>;

/// One line of a `.env` file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Line {
    /// A comment or a blank line, kept verbatim.
    Other(String),
    /// `KEY=VALUE`; the value is everything after the first `=`, verbatim.
    Var { key: String, value: String },
}

/// A parsed `.env` file that remembers its path, its lines and their order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvFile {
    path: PathBuf,
    lines: Vec<Line>,
}

/// Whether `key` is a valid variable name (`[A-Za-z_][A-Za-z0-9_]*`).
pub fn valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The largest `.env` file read: far more than any node's, small enough to never matter.
pub const ENV_FILE_MAX_BYTES: u64 = 1 << 20;

impl EnvFile {
    /// Parses `text` read from `path`. Errors name the file and line, never the value.
    pub fn parse(path: impl Into<PathBuf>, text: &str) -> Result<Self> {
        let path = path.into();
        let mut lines = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let trimmed = raw.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                lines.push(Line::Other(raw.to_string()));
                continue;
            }
            let Some((key, value)) = trimmed.split_once('=') else {
                return Err(EnvFileError::Parse {
                    path,
                    line: index + 1,
                    message: "expected KEY=VALUE".into(),
                });
            };
            let key = key.strip_prefix("export ").unwrap_or(key).trim_end();
            if !valid_key(key) {
                return Err(EnvFileError::Parse {
                    path,
                    line: index + 1,
                    message: "variable name must match [A-Za-z_][A-Za-z0-9_]*".into(),
                });
            }
            lines.push(Line::Var {
                key: key.to_string(),
                value: value.to_string(),
            });
        }
        Ok(EnvFile { path, lines })
    }

    /// Reads and parses the file at `path`.
    pub fn read(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = user_io::input::read_text(path, ENV_FILE_MAX_BYTES).map_err(|e| {
            EnvFileError::Parse {
                path: path.to_path_buf(),
                line: e.line(),
                message: e.to_string(),
            }
        })?;
        Self::parse(path, &text)
    }

    /// A new, empty file at `path` (not written until `write`).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        EnvFile {
            path: path.into(),
            lines: Vec::new(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The value of `key` (the last assignment wins, as with compose).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.lines.iter().rev().find_map(|l| match l {
            Line::Var { key: k, value } if k == key => Some(value.as_str()),
            _ => None,
        })
    }

    /// All variables in order, later assignments overriding earlier ones.
    pub fn vars(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for line in &self.lines {
            if let Line::Var { key, value } = line {
                if let Some(slot) = out.iter_mut().find(|(k, _)| k == key) {
                    slot.1 = value.clone();
                } else {
                    out.push((key.clone(), value.clone()));
                }
            }
        }
        out
    }

    /// Sets `key` to `value` in place, or appends it. Values may hold any character but a
    /// newline.
    pub fn set(&mut self, key: &str, value: &str) {
        assert!(valid_key(key), "invalid variable name");
        assert!(!value.contains('\n'), "a .env value cannot hold a newline");
        let mut found = false;
        for line in &mut self.lines {
            if let Line::Var { key: k, value: v } = line {
                if k == key {
                    *v = value.to_string();
                    found = true;
                }
            }
        }
        if !found {
            self.lines.push(Line::Var {
                key: key.to_string(),
                value: value.to_string(),
            });
        }
    }

    /// Removes every assignment of `key`; true if there was one.
    pub fn remove(&mut self, key: &str) -> bool {
        let before = self.lines.len();
        self.lines
            .retain(|l| !matches!(l, Line::Var { key: k, .. } if k == key));
        before != self.lines.len()
    }

    /// Appends a comment line.
    pub fn comment(&mut self, text: &str) {
        self.lines.push(Line::Other(format!("# {text}")));
    }

    /// The file's text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for line in &self.lines {
            match line {
                Line::Other(s) => out.push_str(s),
                Line::Var { key, value } => {
                    out.push_str(key);
                    out.push('=');
                    out.push_str(value);
                }
            }
            out.push('\n');
        }
        out
    }

    /// Writes the file in place: an existing file keeps its inode and mode; a new one is
    /// created with mode 0600.
    pub fn write(&self) -> Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&self.path)
            .map_err(|source| EnvFileError::Io {
                path: self.path.clone(),
                source,
            })?;
        f.write_all(self.render().as_bytes())
            .map_err(|source| EnvFileError::Io {
                path: self.path.clone(),
                source,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn comments_blank_lines_and_order_survive_an_edit() {
        let text = "# db\nDB_PASSWORD=old\n\nNATS_USER=gateway\n";
        let mut f = EnvFile::parse("x/.env", text).unwrap();
        f.set("DB_PASSWORD", "new");
        assert_eq!(f.render(), "# db\nDB_PASSWORD=new\n\nNATS_USER=gateway\n");
    }

    #[test]
    fn a_line_without_equals_names_file_and_line_but_not_the_content() {
        let err = EnvFile::parse("svc/.env", "A=1\nsup3rsecret\n").unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("svc/.env:2:"), "{msg}");
        assert!(!msg.contains("sup3rsecret"), "{msg}");
    }

    #[test]
    fn the_last_assignment_wins() {
        let f = EnvFile::parse("e", "K=1\nK=2\n").unwrap();
        assert_eq!(f.get("K"), Some("2"));
        assert_eq!(f.vars(), vec![("K".to_string(), "2".to_string())]);
    }

    proptest! {
        #[test]
        fn any_value_without_newline_round_trips(value in "[^\n\r]*") {
            let mut f = EnvFile::new("p/.env");
            f.set("DB_PASSWORD", &value);
            let back = EnvFile::parse("p/.env", &f.render()).unwrap();
            prop_assert_eq!(back.get("DB_PASSWORD"), Some(value.as_str()));
        }

        #[test]
        fn parsing_arbitrary_text_never_panics(text in "\\PC*") {
            let _ = EnvFile::parse("any/.env", &text);
        }
    }
}
