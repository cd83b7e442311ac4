//! How `verify` reaches a node's files and Docker engine: on this machine (`transport =
//! "local"`, the default), or over SSH (`transport = "ssh://user@host:port"`), as InSpec's
//! `-t ssh://` does. Over SSH only the read-only commands of `SSH_COMMANDS` run on the node,
//! through one OpenSSH connection this process owns; the node's engine is reached through its
//! socket forwarded by that connection, as `docker -H ssh://` reaches it.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use crate::ssh::{quote, SshDestination, SshOptions, SshSession, NODE_DOCKER_SOCKET};

/// Every program a check runs on a node over SSH, and what for. None of them writes; the
/// documentation (docs/verify.md, "Verify from elsewhere") lists the same.
pub const SSH_COMMANDS: &[(&str, &str)] = &[
    ("head -c", "a file's bytes, bounded (`.env` files, backups)"),
    ("stat -L -c", "a file's mode, size and modification time"),
    (
        "find -L DIR -maxdepth 1 -type f -printf",
        "the backups directory's files",
    ),
    ("git ls-files -z", "the repository's tracked files"),
    (
        "tar -c",
        "the tracked files (up to 4 MiB each), or a previous-secrets directory's `.env` files, as one stream",
    ),
];

/// Tracked files larger than this are not scanned for secret values.
pub const TRACKED_FILE_LIMIT: u64 = 4 * 1024 * 1024;

/// What a check learns of a file: what `stat` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStat {
    /// Permission bits (`0o600`).
    pub mode: u32,
    pub modified: SystemTime,
    pub len: u64,
    pub is_file: bool,
    pub is_dir: bool,
}

impl FileStat {
    fn of(meta: &std::fs::Metadata) -> FileStat {
        use std::os::unix::fs::PermissionsExt;
        FileStat {
            mode: meta.permissions().mode() & 0o7777,
            modified: meta.modified().unwrap_or(UNIX_EPOCH),
            len: meta.len(),
            is_file: meta.is_file(),
            is_dir: meta.is_dir(),
        }
    }
}

/// A repository's tracked files: every path, and the contents of those up to
/// `TRACKED_FILE_LIMIT` that could be read.
#[derive(Debug, Clone, Default)]
pub struct Tracked {
    pub paths: Vec<PathBuf>,
    pub contents: Vec<(PathBuf, Vec<u8>)>,
}

/// A node's files and engine, on this machine or over SSH.
pub enum Transport {
    Local,
    Ssh(Box<SshSession>),
}

impl Transport {
    /// Reads `path`, at most `limit` bytes (more is an error: not the file expected).
    pub async fn read(&self, path: &Path, limit: u64) -> Result<Vec<u8>, String> {
        match self {
            Transport::Local => {
                let file = user_io::input::open_regular(path).map_err(|e| e.to_string())?;
                let mut bytes = Vec::new();
                file.take(limit + 1)
                    .read_to_end(&mut bytes)
                    .map_err(|e| user_io::input::io_reason(&e))?;
                too_large(bytes, limit)
            }
            Transport::Ssh(s) => {
                let cmd = format!("head -c {} -- {}", limit + 1, quote(path));
                too_large(s.run(&cmd).await?, limit)
            }
        }
    }

    /// What `stat` says of `path` (following symbolic links).
    pub async fn stat(&self, path: &Path) -> Result<FileStat, String> {
        match self {
            Transport::Local => std::fs::metadata(path)
                .map(|m| FileStat::of(&m))
                .map_err(|e| user_io::input::io_reason(&e)),
            Transport::Ssh(s) => {
                let out = s
                    .run(&format!("stat -L -c '%a %Y %s %F' -- {}", quote(path)))
                    .await?;
                parse_stat(&String::from_utf8_lossy(&out))
            }
        }
    }

    /// The regular files directly in `dir` (following symbolic links), each with its `stat`.
    pub async fn list_files(&self, dir: &Path) -> Result<Vec<(PathBuf, FileStat)>, String> {
        match self {
            Transport::Local => {
                let entries = std::fs::read_dir(dir).map_err(|e| user_io::input::io_reason(&e))?;
                let mut files: Vec<(PathBuf, FileStat)> = entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter_map(|p| std::fs::metadata(&p).ok().map(|m| (p, FileStat::of(&m))))
                    .filter(|(_, s)| s.is_file)
                    .collect();
                files.sort_by(|a, b| a.0.cmp(&b.0));
                Ok(files)
            }
            Transport::Ssh(s) => {
                let out = s
                    .run(&format!(
                        "find -L {} -mindepth 1 -maxdepth 1 -type f -printf '%m %T@ %s regular file %f\\0'",
                        quote(dir)
                    ))
                    .await?;
                let mut files = Vec::new();
                for record in out.split(|b| *b == 0).filter(|r| !r.is_empty()) {
                    let text = String::from_utf8_lossy(record);
                    let (stat, name) = text
                        .split_once(" regular file ")
                        .ok_or_else(|| "find printed an unexpected line".to_string())?;
                    let stat = parse_stat(&format!("{stat} regular file"))?;
                    files.push((dir.join(name), stat));
                }
                files.sort_by(|a, b| a.0.cmp(&b.0));
                Ok(files)
            }
        }
    }

    /// The files `git ls-files` lists in `repo`, and the contents of those up to
    /// `TRACKED_FILE_LIMIT`.
    pub async fn tracked(&self, repo: &Path) -> Result<Tracked, String> {
        match self {
            Transport::Local => {
                let out = tokio::process::Command::new("git")
                    .arg("-C")
                    .arg(repo)
                    .args(["ls-files", "-z"])
                    .output()
                    .await
                    .map_err(|e| format!("git: {e}"))?;
                if !out.status.success() {
                    return Err(format!(
                        "git ls-files in {}: {}",
                        repo.display(),
                        String::from_utf8_lossy(&out.stderr).trim()
                    ));
                }
                let paths = nul_separated(&out.stdout);
                let contents = paths
                    .iter()
                    .filter_map(|rel| {
                        let path = repo.join(rel);
                        let meta = std::fs::metadata(&path).ok()?;
                        (meta.is_file() && meta.len() <= TRACKED_FILE_LIMIT)
                            .then(|| std::fs::read(&path).ok())
                            .flatten()
                            .map(|bytes| (rel.clone(), bytes))
                    })
                    .collect();
                Ok(Tracked { paths, contents })
            }
            Transport::Ssh(s) => {
                let git = format!("git -c safe.directory='*' -C {} ls-files -z", quote(repo));
                let paths = nul_separated(&s.run(&git).await?);
                let archive = s
                    .run(&format!(
                        "cd {} && {git} | xargs -0r sh -c 'find -L \"$@\" -maxdepth 0 -type f -size -{}k -print0' sh | tar --null --no-recursion -T - -cf - 2>/dev/null; true",
                        quote(repo),
                        TRACKED_FILE_LIMIT / 1024 + 1
                    ))
                    .await?;
                let mut contents = Vec::new();
                let mut tar = tar::Archive::new(archive.as_slice());
                let entries = tar
                    .entries()
                    .map_err(|_| "the tracked files' stream is not a tar".to_string())?;
                for entry in entries {
                    let mut entry =
                        entry.map_err(|_| "the tracked files' stream is damaged".to_string())?;
                    let Ok(rel) = entry.path().map(|p| p.into_owned()) else {
                        continue;
                    };
                    let mut bytes = Vec::new();
                    if entry.size() <= TRACKED_FILE_LIMIT && entry.read_to_end(&mut bytes).is_ok() {
                        contents.push((rel, bytes));
                    }
                }
                Ok(Tracked { paths, contents })
            }
        }
    }

    /// A directory's `.env` files as one tar stream (the previous secrets laid out like the
    /// root, on the node).
    pub async fn env_files_of_dir(&self, dir: &Path) -> Result<Vec<u8>, String> {
        match self {
            Transport::Local => Err("a local directory is read in place".into()),
            Transport::Ssh(s) => {
                s.run(&format!(
                    "cd {} && find . -name .env -type f -print0 | tar --null --no-recursion -T - -cf -",
                    quote(dir)
                ))
                .await
            }
        }
    }

    /// The node's Docker engine: the local one (or `DOCKER_HOST`), or the node's own through
    /// the SSH connection.
    pub async fn docker(&self) -> Result<bollard::Docker, String> {
        match self {
            Transport::Local => crate::engine::connect().await.map_err(|e| e.to_string()),
            Transport::Ssh(s) => s.docker().await,
        }
    }
}

fn too_large(bytes: Vec<u8>, limit: u64) -> Result<Vec<u8>, String> {
    if bytes.len() as u64 > limit {
        Err(format!("larger than {limit} bytes"))
    } else {
        Ok(bytes)
    }
}

fn nul_separated(bytes: &[u8]) -> Vec<PathBuf> {
    bytes
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| PathBuf::from(String::from_utf8_lossy(s).into_owned()))
        .collect()
}

/// `stat -c '%a %Y %s %F'` (or find's `%m %T@ %s`): mode in octal, modification time in
/// seconds (a fraction allowed), size, type.
fn parse_stat(line: &str) -> Result<FileStat, String> {
    let bad = || format!("stat printed an unexpected line: {}", line.trim());
    let mut words = line.trim().splitn(4, ' ');
    let mode = u32::from_str_radix(words.next().ok_or_else(bad)?, 8).map_err(|_| bad())?;
    let seconds: f64 = words.next().ok_or_else(bad)?.parse().map_err(|_| bad())?;
    let len: u64 = words.next().ok_or_else(bad)?.parse().map_err(|_| bad())?;
    let kind = words.next().ok_or_else(bad)?;
    Ok(FileStat {
        mode: mode & 0o7777,
        modified: UNIX_EPOCH + Duration::from_secs_f64(seconds.max(0.0)),
        len,
        is_file: kind.starts_with("regular"),
        is_dir: kind == "directory",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_destinations_parse_with_and_without_user_and_port() {
        let d = SshDestination::parse("ssh://ops@node1.example:2222").unwrap();
        assert_eq!(
            d,
            SshDestination {
                user: Some("ops".into()),
                host: "node1.example".into(),
                port: Some(2222)
            }
        );
        assert_eq!(d.display(), "ssh://ops@node1.example:2222");
        let d = SshDestination::parse("ssh://10.0.0.5").unwrap();
        assert_eq!((d.user, d.host, d.port), (None, "10.0.0.5".into(), None));
        let d = SshDestination::parse("ssh://root@[::1]:22").unwrap();
        assert_eq!((d.host.as_str(), d.port), ("::1", Some(22)));
        assert_eq!(d.display(), "ssh://root@[::1]:22");
    }

    #[test]
    fn a_transport_that_is_not_ssh_or_holds_a_password_is_refused() {
        for bad in [
            "tcp://node1:22",
            "ssh://",
            "ssh://ops:hunter2@node1",
            "ssh://node1:0",
            "ssh://node1:99999",
            "ssh://node1/path",
            "ssh://-oProxyCommand=x",
        ] {
            let e = SshDestination::parse(bad).unwrap_err();
            assert!(e.starts_with("expected `local` or `ssh://"), "{bad}: {e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
    }

    #[test]
    fn stat_lines_become_modes_sizes_and_times() {
        let s = parse_stat("600 1764800000 42 regular file\n").unwrap();
        assert_eq!(
            (s.mode, s.len, s.is_file, s.is_dir),
            (0o600, 42, true, false)
        );
        assert_eq!(
            s.modified.duration_since(UNIX_EPOCH).unwrap().as_secs(),
            1_764_800_000
        );
        let s = parse_stat("755 1764800000.5 4096 directory").unwrap();
        assert!(s.is_dir && !s.is_file);
        assert!(parse_stat("rw-r--r-- x").is_err());
    }

    #[test]
    fn a_path_with_a_quote_stays_one_shell_word() {
        assert_eq!(quote(Path::new("/opt/it's here")), "'/opt/it'\\''s here'");
    }
}
