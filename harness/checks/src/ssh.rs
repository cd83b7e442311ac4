//! One OpenSSH connection to a machine, owned by this process: commands multiplexed over it
//! and the machine's Docker engine socket forwarded to a private socket here. Below both the
//! engine connection (`DOCKER_HOST=ssh://`) and the checks' transport (`transport = "ssh://"`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The engine's socket on the node, forwarded over the SSH connection.
pub const NODE_DOCKER_SOCKET: &str = "/var/run/docker.sock";

/// Where an SSH transport connects: `ssh://[user@]host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshDestination {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
}

impl SshDestination {
    /// Parses `ssh://[user@]host[:port]` (an IPv6 host in brackets); anything else is an error
    /// saying what is expected.
    pub fn parse(url: &str) -> Result<SshDestination, String> {
        const EXPECTED: &str = "expected `local` or `ssh://[user@]host[:port]`";
        let rest = url
            .strip_prefix("ssh://")
            .ok_or_else(|| EXPECTED.to_string())?;
        if rest.contains(['/', '?', '#', ' ']) {
            return Err(format!("{EXPECTED}, with no path"));
        }
        let (user, hostport) = match rest.rsplit_once('@') {
            Some((u, h)) if !u.is_empty() && !u.contains(':') => (Some(u.to_string()), h),
            Some(_) => return Err(format!("{EXPECTED} (a user, no password)")),
            None => (None, rest),
        };
        let (host, port) = if let Some(inner) = hostport.strip_prefix('[') {
            let (host, after) = inner
                .split_once(']')
                .ok_or_else(|| format!("{EXPECTED} (an unclosed `[`)"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p),
                None if after.is_empty() => None,
                None => return Err(EXPECTED.to_string()),
            };
            (host.to_string(), port)
        } else {
            match hostport.split_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (hostport.to_string(), None),
            }
        };
        if host.is_empty() || host.starts_with('-') {
            return Err(format!("{EXPECTED} (no host)"));
        }
        let port = port
            .map(|p| {
                p.parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| format!("{EXPECTED} (port 1-65535)"))
            })
            .transpose()?;
        Ok(SshDestination { user, host, port })
    }

    /// `user@host` (or `host`), as ssh takes it.
    fn login(&self) -> String {
        match &self.user {
            Some(u) => format!("{u}@{}", self.host),
            None => self.host.clone(),
        }
    }

    /// How reports name it: `ssh://user@host:port`.
    pub fn display(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let port = self.port.map(|p| format!(":{p}")).unwrap_or_default();
        match &self.user {
            Some(u) => format!("ssh://{u}@{host}{port}"),
            None => format!("ssh://{host}{port}"),
        }
    }
}

/// One OpenSSH connection to a node (a control master this process owns and kills when it is
/// dropped or when this process dies), every command multiplexed over it, the node's engine
/// socket forwarded to a socket in a private directory.
pub struct SshSession {
    destination: SshDestination,
    options: Vec<String>,
    dir: tempfile::TempDir,
    _master: tokio::process::Child,
    timeout: Duration,
}

/// What the ssh client needs besides the destination.
#[derive(Debug, Clone, Default)]
pub struct SshOptions {
    /// `-i`: the private key (else the user's agent and ssh configuration decide).
    pub identity: Option<PathBuf>,
    /// `UserKnownHostsFile`: the node's host key (else the user's known_hosts).
    pub known_hosts: Option<PathBuf>,
    /// How long connecting, and each command, may take.
    pub timeout: Duration,
}

impl SshSession {
    /// Connects (`ssh -M -N`, batch mode: no password prompt, an unknown host key refused),
    /// waiting for the control socket within `timeout`. An error is ssh's own last line
    /// (`Permission denied (publickey)`, `Host key verification failed`, …).
    pub async fn open(destination: SshDestination, o: &SshOptions) -> Result<SshSession, String> {
        let dir = tempfile::Builder::new()
            .prefix("verify-ssh-")
            .tempdir()
            .map_err(|e| format!("a private directory for the SSH connection: {e}"))?;
        let mut options = vec![
            "-o".to_string(),
            "BatchMode=yes".to_string(),
            "-o".to_string(),
            format!("ConnectTimeout={}", o.timeout.as_secs().max(1)),
            "-o".to_string(),
            "ServerAliveInterval=5".to_string(),
            "-o".to_string(),
            "ServerAliveCountMax=2".to_string(),
            "-S".to_string(),
            dir.path().join("control").display().to_string(),
        ];
        if let Some(port) = destination.port {
            options.extend(["-p".to_string(), port.to_string()]);
        }
        if let Some(key) = &o.identity {
            options.extend([
                "-i".to_string(),
                key.display().to_string(),
                "-o".to_string(),
                "IdentitiesOnly=yes".to_string(),
            ]);
        }
        if let Some(known) = &o.known_hosts {
            options.extend([
                "-o".to_string(),
                format!("UserKnownHostsFile={}", known.display()),
                "-o".to_string(),
                "StrictHostKeyChecking=yes".to_string(),
            ]);
        }
        let socket = dir.path().join("docker.sock");
        let mut master = tokio::process::Command::new("ssh");
        master
            .args(&options)
            .args(["-M", "-N", "-o", "ExitOnForwardFailure=yes", "-L"])
            .arg(format!("{}:{NODE_DOCKER_SOCKET}", socket.display()))
            .arg(destination.login())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        // The connection ends with this process, whatever ends it.
        // SAFETY: prctl is async-signal-safe and touches only the child being set up.
        unsafe {
            master.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let mut child = master
            .spawn()
            .map_err(|e| format!("ssh cannot run here ({e}); install the OpenSSH client"))?;
        let deadline = Instant::now() + o.timeout + Duration::from_secs(1);
        let control = dir.path().join("control");
        loop {
            if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                let mut err = String::new();
                if let Some(mut stderr) = child.stderr.take() {
                    use tokio::io::AsyncReadExt;
                    let _ = stderr.read_to_string(&mut err).await;
                }
                let last = err.lines().rev().find(|l| !l.trim().is_empty());
                return Err(match last.map(|l| l.trim().trim_end_matches('.')) {
                    Some(line) if line.starts_with("ssh:") => line.to_string(),
                    Some(line) => format!("ssh: {line}"),
                    None => format!("ssh ended ({status})"),
                });
            }
            if control.exists() && socket.exists() {
                break;
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "ssh: no connection within {} s",
                    o.timeout.as_secs().max(1)
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(SshSession {
            destination,
            options,
            dir,
            _master: child,
            timeout: o.timeout,
        })
    }

    /// Runs `command` on the node over the connection; its stdout, or its stderr's last line.
    pub async fn run(&self, command: &str) -> Result<Vec<u8>, String> {
        let out = tokio::process::Command::new("ssh")
            .args(&self.options)
            .args(["-o", "ControlMaster=no"])
            .arg(self.destination.login())
            .arg("--")
            .arg(command)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(self.timeout.max(Duration::from_secs(1)), out)
            .await
            .map_err(|_| format!("no answer over SSH within {} ms", self.timeout.as_millis()))?
            .map_err(|e| format!("ssh: {e}"))?;
        if out.status.success() {
            Ok(out.stdout)
        } else {
            let err = String::from_utf8_lossy(&out.stderr);
            let last = err.lines().rev().find(|l| !l.trim().is_empty());
            Err(last
                .map(|l| l.trim().to_string())
                .unwrap_or_else(|| format!("exit status {}", out.status)))
        }
    }

    /// The node's engine socket, forwarded here.
    pub fn docker_socket(&self) -> PathBuf {
        self.dir.path().join("docker.sock")
    }

    pub async fn docker(&self) -> Result<bollard::Docker, String> {
        let socket = self.docker_socket();
        let docker = bollard::Docker::connect_with_unix(
            &socket.display().to_string(),
            120,
            bollard::API_DEFAULT_VERSION,
        )
        .map_err(|e| e.to_string())?;
        match tokio::time::timeout(Duration::from_secs(5), docker.ping()).await {
            Ok(Ok(_)) => Ok(docker),
            Ok(Err(e)) => Err(format!(
                "the node's Docker engine ({NODE_DOCKER_SOCKET} over {}): {e}",
                self.destination.display()
            )),
            Err(_) => Err(format!(
                "the node's Docker engine ({NODE_DOCKER_SOCKET} over {}): no answer within 5 s",
                self.destination.display()
            )),
        }
    }
}

/// `text` as one word of a POSIX shell command line.
pub fn quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', "'\\''"))
}
