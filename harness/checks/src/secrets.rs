//! The node's secrets as the checks see them: the current ones from the `.env` files, the
//! previous ones from the Phase 1 backup tarball (or a directory laid out like the root). Every
//! value is registered with the redactor before any check runs.

use ::node::envfile::EnvFile;
use ::node::redact::Redactor;
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

/// The password of a URL value (`scheme://user:PASSWORD@host…`), as written and decoded: a
/// variable such as `DATABASE_URL` holds a secret whatever its name.
pub fn url_password(value: &str) -> Option<(&str, String)> {
    let (_, rest) = value.split_once("://")?;
    let (userinfo, _) = rest.split_once('@')?;
    let (_, raw) = userinfo.split_once(':')?;
    if raw.is_empty() || is_placeholder(raw) {
        return None;
    }
    let decoded = percent_encoding::percent_decode_str(raw)
        .decode_utf8_lossy()
        .into_owned();
    Some((raw, decoded))
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

    /// The `.env` files `relative` as read elsewhere (over SSH): each file's bytes, or why it
    /// could not be read.
    pub fn from_read(files: Vec<(PathBuf, Result<Vec<u8>, String>)>) -> SecretSet {
        let mut set = SecretSet::default();
        for (rel, bytes) in files {
            let parsed = bytes.and_then(|b| {
                let text = user_io::input::utf8(b).map_err(|e| e.to_string())?;
                EnvFile::parse(&rel, &text).map_err(|e| e.to_string())
            });
            match parsed {
                Ok(f) => {
                    set.files.insert(rel, f.vars());
                }
                Err(e) => set.unreadable.push((rel, e)),
            }
        }
        set
    }

    /// The previous secrets from a backup's bytes (read over SSH): what
    /// [`SecretSet::previous_with`] reads from a file, with the same errors.
    pub fn previous_from_backup(
        name: &str,
        bytes: &[u8],
        passphrase: Option<&str>,
    ) -> Result<SecretSet, PreviousError> {
        let err = |reason: String| PreviousError {
            path: name.to_string(),
            reason,
        };
        match BackupKind::of(bytes) {
            BackupKind::Encrypted => {
                let plain = decrypt_backup(BackupBytes::Bytes(bytes), passphrase).map_err(err)?;
                Self::previous_from_bytes(&plain).map_err(err)
            }
            BackupKind::Other => Err(err(NOT_A_BACKUP.into())),
            BackupKind::Gzip | BackupKind::Tar => Self::previous_from_bytes(bytes).map_err(err),
        }
    }

    /// The previous secrets from a tar stream of a directory's `.env` files (a directory laid
    /// out like the root, read over SSH).
    pub fn previous_from_dir_archive(name: &str, bytes: &[u8]) -> Result<SecretSet, PreviousError> {
        read_archive(bytes.take(PREVIOUS_LIMITS.total_bytes)).map_err(|_| PreviousError {
            path: name.to_string(),
            reason: "the directory holds no .env file".into(),
        })
    }

    /// The previous secrets from the Phase 1 backup: a gzip'd tar (`secrets_backup_*.tar.gz`),
    /// a plain tar, or a directory laid out like the root. Anything else, a damaged archive, one
    /// over `PREVIOUS_LIMITS`, or one that holds no `.env` file is an error naming only the file
    /// and what is wrong: no byte of it is ever quoted (a `.env` passed by mistake is all
    /// secrets).
    ///
    /// A backup encrypted as the v2 runbook writes it (`openssl enc -aes-256-cbc -pbkdf2`,
    /// `secrets_backup_*.tar.gz.enc`) is decrypted by `openssl` with the passphrase in the
    /// environment's `BACKUP_PASSPHRASE`, handed to it through its environment, never its
    /// arguments.
    pub fn previous(path: &Path) -> Result<SecretSet, PreviousError> {
        let passphrase = std::env::var("BACKUP_PASSPHRASE").ok();
        Self::previous_with(path, passphrase.as_deref())
    }

    /// [`SecretSet::previous`] with the passphrase of an encrypted backup given.
    pub fn previous_with(
        path: &Path,
        passphrase: Option<&str>,
    ) -> Result<SecretSet, PreviousError> {
        let err = |reason: String| PreviousError {
            path: path.display().to_string(),
            reason,
        };
        if path.is_dir() {
            let mut set = SecretSet::default();
            collect_dir(path, path, &mut set).map_err(|e| err(user_io::input::io_reason(&e)))?;
            if set.files.is_empty() && set.unreadable.is_empty() {
                return Err(err("the directory holds no .env file".into()));
            }
            return Ok(set);
        }
        let mut file = user_io::input::open_regular(path).map_err(|e| err(e.to_string()))?;
        let mut head = [0u8; 512];
        let got =
            read_up_to(&mut file, &mut head).map_err(|e| err(user_io::input::io_reason(&e)))?;
        let head = &head[..got];
        let kind = BackupKind::of(head);
        match kind {
            BackupKind::Encrypted => {
                let plain = decrypt_backup(BackupBytes::File(path), passphrase).map_err(err)?;
                return Self::previous_from_bytes(&plain).map_err(err);
            }
            BackupKind::Other => return Err(err(NOT_A_BACKUP.into())),
            BackupKind::Gzip | BackupKind::Tar => {}
        }
        let file = std::io::Cursor::new(head.to_vec()).chain(file);
        let reader: Box<dyn Read> = if kind == BackupKind::Gzip {
            Box::new(flate2::read::GzDecoder::new(file))
        } else {
            Box::new(file)
        };
        read_archive(reader.take(PREVIOUS_LIMITS.total_bytes)).map_err(err)
    }

    /// The previous secrets from a decrypted backup's bytes: a gzip'd or plain tar.
    fn previous_from_bytes(bytes: &[u8]) -> Result<SecretSet, String> {
        match BackupKind::of(bytes) {
            BackupKind::Gzip => {
                read_archive(flate2::read::GzDecoder::new(bytes).take(PREVIOUS_LIMITS.total_bytes))
            }
            BackupKind::Tar => read_archive(bytes.take(PREVIOUS_LIMITS.total_bytes)),
            _ => Err("decrypted, but not a gzip'd tar archive".into()),
        }
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
                if let Some((raw, decoded)) = url_password(v) {
                    redactor.add(&format!("{prefix}{k}"), raw);
                    redactor.add(&format!("{prefix}{k}"), &decoded);
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
            .flat_map(|(k, v)| {
                let named = (is_secret_name(k) && !v.is_empty()).then(|| (k.clone(), v.clone()));
                let in_url = url_password(v).map(|(_, decoded)| (k.clone(), decoded));
                named.into_iter().chain(in_url)
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

/// How much of a `--previous` archive is read: a node's `.env` files are kilobytes, so a larger
/// archive is not a secrets backup (or is a decompression bomb).
pub struct PreviousLimits {
    /// Bytes decompressed in all.
    pub total_bytes: u64,
    /// Bytes of one `.env` file.
    pub env_bytes: u64,
    /// Entries of the archive.
    pub entries: usize,
}

pub const PREVIOUS_LIMITS: PreviousLimits = PreviousLimits {
    total_bytes: 256 << 20,
    env_bytes: 1 << 20,
    entries: 100_000,
};

fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match reader.read(&mut buf[got..])? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}

/// What a backup's first bytes say it is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum BackupKind {
    /// `openssl enc` (`Salted__`), as the v2 runbook writes it.
    Encrypted,
    Gzip,
    Tar,
    Other,
}

impl BackupKind {
    fn of(head: &[u8]) -> BackupKind {
        if head.starts_with(b"Salted__") {
            BackupKind::Encrypted
        } else if head.starts_with(&[0x1f, 0x8b]) {
            BackupKind::Gzip
        } else if head.len() >= 262 && &head[257..262] == b"ustar" {
            BackupKind::Tar
        } else {
            BackupKind::Other
        }
    }
}

/// Where an encrypted backup's bytes are: a file here, or read over SSH.
#[derive(Clone, Copy)]
enum BackupBytes<'a> {
    File(&'a Path),
    Bytes(&'a [u8]),
}

const ENCRYPTED_NEEDS_PASSPHRASE: &str =
    "an encrypted backup (`openssl enc`, as the v2 runbook writes it): export \
     BACKUP_PASSPHRASE from the secret store to read it";
const NOT_A_BACKUP: &str =
    "not a gzip'd tar archive (the Phase 1 backup is `secrets_backup_*.tar.gz`)";

/// `openssl enc -d -aes-256-cbc -pbkdf2` of the backup, the passphrase in openssl's environment
/// only. Its output is bounded by `PREVIOUS_LIMITS`; its error text is openssl's, which never
/// holds the passphrase or a byte of the plaintext.
fn decrypt_backup(backup: BackupBytes<'_>, passphrase: Option<&str>) -> Result<Vec<u8>, String> {
    let Some(passphrase) = passphrase.filter(|p| !p.is_empty()) else {
        return Err(ENCRYPTED_NEEDS_PASSPHRASE.into());
    };
    let mut openssl = std::process::Command::new("openssl");
    openssl
        .args([
            "enc",
            "-d",
            "-aes-256-cbc",
            "-pbkdf2",
            "-pass",
            "env:BACKUP_PASSPHRASE",
        ])
        .env("BACKUP_PASSPHRASE", passphrase)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    match backup {
        BackupBytes::File(path) => {
            openssl
                .arg("-in")
                .arg(path)
                .stdin(std::process::Stdio::null());
        }
        BackupBytes::Bytes(_) => {
            openssl.stdin(std::process::Stdio::piped());
        }
    }
    let cannot_run = |e: std::io::Error| {
        format!("an encrypted backup, and openssl cannot run here to decrypt it: {e}")
    };
    let mut child = openssl.spawn().map_err(cannot_run)?;
    let feeder = match (backup, child.stdin.take()) {
        (BackupBytes::Bytes(bytes), Some(mut stdin)) => {
            let bytes = bytes.to_vec();
            Some(std::thread::spawn(move || {
                use std::io::Write;
                let _ = stdin.write_all(&bytes);
            }))
        }
        _ => None,
    };
    let out = child.wait_with_output().map_err(cannot_run)?;
    if let Some(feeder) = feeder {
        let _ = feeder.join();
    }
    if !out.status.success() {
        return Err(
            "an encrypted backup that BACKUP_PASSPHRASE does not decrypt (a wrong passphrase, or \
             a damaged file)"
                .into(),
        );
    }
    if out.stdout.len() as u64 > PREVIOUS_LIMITS.total_bytes {
        return Err("decrypted, but larger than a backup of .env files can be".into());
    }
    Ok(out.stdout)
}

/// The `.env` files of a tar stream. Errors are fixed sentences: the tar and gzip readers'
/// own messages quote header bytes, which here are secrets.
fn read_archive(reader: impl Read) -> Result<SecretSet, String> {
    let damaged = |n: usize| {
        format!(
            "not a readable gzip'd tar archive: entry {n} is damaged or the stream is not a tar \
             (read with `tar -tzf` to see where)"
        )
    };
    let mut archive = tar::Archive::new(reader);
    let mut set = SecretSet::default();
    let entries = archive.entries().map_err(|_| damaged(1))?;
    let mut count = 0;
    for (index, entry) in entries.enumerate() {
        let n = index + 1;
        if n > PREVIOUS_LIMITS.entries {
            return Err(format!(
                "it holds more than {} entries: not a secrets backup",
                PREVIOUS_LIMITS.entries
            ));
        }
        let mut entry = entry.map_err(|_| damaged(n))?;
        count = n;
        let rel = entry.path().map_err(|_| damaged(n))?.into_owned();
        let rel: PathBuf = rel.components().filter(|c| c.as_os_str() != ".").collect();
        let is_env = rel.file_name().is_some_and(|f| f == ".env");
        if !is_env || !entry.header().entry_type().is_file() {
            continue;
        }
        if entry.size() > PREVIOUS_LIMITS.env_bytes {
            return Err(format!(
                "{}: larger than {} bytes, not a .env file",
                rel.display(),
                PREVIOUS_LIMITS.env_bytes
            ));
        }
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).map_err(|_| damaged(n))?;
        let text = user_io::input::utf8(bytes).map_err(|e| format!("{}: {e}", rel.display()))?;
        let parsed = EnvFile::parse(&rel, &text).map_err(|e| e.to_string())?;
        set.files.insert(rel, parsed.vars());
    }
    if count == 0 {
        return Err("the archive is empty".into());
    }
    if set.files.is_empty() {
        return Err("it holds no .env file".into());
    }
    Ok(set)
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
