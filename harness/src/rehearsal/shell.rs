//! Runs the runbook's own shell blocks against the replica, as an operator would paste them:
//! production names, paths and ports rewritten to the replica's, `sleep` compressed by the time
//! scale, one working directory carried from block to block, a deadline on every block (a command
//! that never ends is killed and recorded as such), output kept short and redacted.

use crate::redact::Redactor;
use crate::services::Service;
use crate::stack::Stack;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What one shell block did.
#[derive(Debug, Clone, Serialize)]
pub struct ShellRun {
    /// The block as the runbook has it (redacted).
    pub command: String,
    /// What ran on the replica (redacted).
    pub ran: String,
    pub exit_code: Option<i32>,
    /// It was still running at its deadline and was killed.
    pub killed_at_deadline: bool,
    pub duration_ms: u64,
    /// The last lines of stdout and stderr (redacted).
    pub output_tail: String,
    /// Secrets (by name, never value) seen in the argv of a process on this host while the
    /// block ran: readable by every local user through `ps` or `/proc/<pid>/cmdline`.
    pub secrets_in_argv: Vec<String>,
}

/// Production port → the service whose replica port replaces it.
const PORTS: &[(u16, Service, u16)] = &[
    (9300, Service::Gateway, 9300),
    (9102, Service::Router, 9102),
    (8000, Service::Memory, 8000),
    (8222, Service::Nats, 8222),
    (4222, Service::Nats, 4222),
    (5432, Service::Postgres, 5432),
];

/// `docker-compose … restart [-t N] [SERVICE…]` as Compose runs it: every named service (all
/// when none is named) restarted at the same time, the block failing when one restart fails.
fn compose_restart(words: &[&str], container_name: impl Fn(Service) -> String) -> String {
    let after = words
        .iter()
        .position(|w| *w == "restart")
        .map_or(words.len(), |i| i + 1);
    let mut timeout = None;
    let mut named = Vec::new();
    let mut rest = words[after..].iter();
    while let Some(word) = rest.next() {
        match *word {
            "-t" | "--timeout" => timeout = rest.next().copied(),
            w if w.starts_with('-') => {}
            w => named.push(w),
        }
    }
    let names: Vec<String> = Service::ALL
        .iter()
        .filter(|s| named.is_empty() || named.contains(&s.production_name()))
        .map(|s| container_name(*s))
        .collect();
    let timeout = timeout.map(|t| format!(" -t {t}")).unwrap_or_default();
    format!(
        "_restarts=(); for _c in {}; do docker restart{timeout} \"$_c\" & _restarts+=($!); done; \
         _failed=0; for _p in \"${{_restarts[@]}}\"; do wait \"$_p\" || _failed=1; done; (exit $_failed)\n",
        names.join(" ")
    )
}

/// The block rewritten for the replica: names, root, ports, compose restarts, sleeps.
pub fn rewrite(block: &str, stack: &Stack, scale: f64) -> String {
    let root = stack.root().dir().display().to_string();
    let mut out = String::new();
    for line in block.lines() {
        let mut line = line.replace("/opt/microdao-daarion", &root);
        for &(port, service, container_port) in PORTS {
            let mapped = stack.host_port(service, container_port).unwrap_or(0);
            for host in ["localhost", "127.0.0.1"] {
                line = line.replace(&format!("{host}:{port}"), &format!("127.0.0.1:{mapped}"));
            }
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        // `docker-compose -f FILE restart` restarts every service of the node at once: Compose
        // 1.29 runs each container's restart in parallel (`parallel_execute`), not in turn.
        if words.first() == Some(&"docker-compose") && words.contains(&"restart") {
            out.push_str(&compose_restart(&words, |s| stack.container_name(s)));
            continue;
        }
        // Container names, as whole words only (paths like services/parser-pipeline/ stay).
        let mut rebuilt = String::new();
        let mut word = String::new();
        let flush = |word: &mut String, rebuilt: &mut String| {
            let replaced = Service::ALL
                .iter()
                .find(|s| s.production_name() == word.as_str())
                .map(|s| stack.container_name(*s));
            rebuilt.push_str(replaced.as_deref().unwrap_or(word));
            word.clear();
        };
        for c in line.chars() {
            if c.is_whitespace() {
                flush(&mut word, &mut rebuilt);
                rebuilt.push(c);
            } else {
                word.push(c);
            }
        }
        flush(&mut word, &mut rebuilt);
        // `sleep N` compressed by the time scale.
        let words: Vec<&str> = rebuilt.split_whitespace().collect();
        if words.len() == 2 && words[0] == "sleep" {
            if let Ok(n) = words[1].parse::<f64>() {
                out.push_str(&format!("sleep {:.2}\n", n * scale));
                continue;
            }
        }
        out.push_str(&rebuilt);
        out.push('\n');
    }
    out
}

/// Kills a process group when dropped (`docker logs -f | grep` leaves children otherwise).
struct ProcessGroup(u32);

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        // SAFETY: kill(2) with a negative pid signals the group the child leads; the group was
        // created for it (`process_group(0)`), and signalling a finished group is harmless.
        unsafe {
            libc::kill(-(self.0 as i32), libc::SIGKILL);
        }
    }
}

/// Runs `script` with bash in `cwd`; returns the run and the working directory it ended in.
pub async fn run(
    original: &str,
    script: &str,
    cwd: &Path,
    deadline: Duration,
    redactor: &Redactor,
) -> (ShellRun, PathBuf) {
    let cwd_file = std::env::temp_dir().join(format!(
        "rehearsal-cwd-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    let full = format!(
        "cd '{}' || exit 97\n{script}\n__status=$?\npwd > '{}'\nexit $__status\n",
        cwd.display(),
        cwd_file.display()
    );
    let started = Instant::now();
    let mut secrets_in_argv = Vec::new();
    let mut command = tokio::process::Command::new("bash");
    command
        .arg("-c")
        .arg(&full)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let child = command.spawn();
    let (exit_code, killed, output) = match child {
        Err(e) => (None, false, format!("cannot start bash: {e}")),
        Ok(child) => {
            let pid = child.id();
            // If the scenario's own deadline drops this future, the whole group still dies.
            let _group = pid.map(ProcessGroup);
            let watch = ArgvWatch::start(redactor, pid.unwrap_or(0));
            let r = tokio::time::timeout(deadline, child.wait_with_output()).await;
            secrets_in_argv = watch.stop();
            match r {
                Ok(Ok(out)) => {
                    let text = format!(
                        "{}{}",
                        String::from_utf8_lossy(&out.stdout),
                        String::from_utf8_lossy(&out.stderr)
                    );
                    (out.status.code(), false, text)
                }
                Ok(Err(e)) => (None, false, e.to_string()),
                Err(_) => {
                    // `_group` kills the whole process group when this arm returns.
                    (None, true, String::new())
                }
            }
        }
    };
    let new_cwd = std::fs::read_to_string(&cwd_file)
        .map(|s| PathBuf::from(s.trim()))
        .unwrap_or_else(|_| cwd.to_path_buf());
    let _ = std::fs::remove_file(&cwd_file);
    let tail: Vec<&str> = output.lines().rev().take(8).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    (
        ShellRun {
            command: redactor.redact(original.trim()),
            ran: redactor.redact(script.trim()),
            exit_code,
            killed_at_deadline: killed,
            duration_ms: started.elapsed().as_millis() as u64,
            output_tail: redactor.redact(&tail.join("\n")),
            secrets_in_argv,
        },
        new_cwd,
    )
}

/// Samples the command line of every process of the block's process group (the commands it
/// ran: `docker`, `psql`, `sed`…; not another scenario's) every 10 ms, on its own thread so the
/// probe's runtime is never held up, until stopped, and notes which registered secrets appear
/// in one, by name: what `ps` shows every local user.
struct ArgvWatch {
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Vec<String>>,
}

impl ArgvWatch {
    fn start(redactor: &Redactor, group: u32) -> Self {
        let redactor = redactor.clone();
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = done.clone();
        let thread = std::thread::spawn(move || {
            let me = std::process::id().to_string();
            let mut seen: Vec<String> = Vec::new();
            while !flag.load(std::sync::atomic::Ordering::SeqCst) {
                if let Ok(entries) = std::fs::read_dir("/proc") {
                    for entry in entries.flatten() {
                        let name = entry.file_name();
                        let Some(pid) = name.to_str() else { continue };
                        if pid == me || !pid.bytes().all(|b| b.is_ascii_digit()) {
                            continue;
                        }
                        // `/proc/<pid>/stat`: "pid (comm) state ppid pgrp …".
                        let in_group = std::fs::read_to_string(entry.path().join("stat"))
                            .ok()
                            .and_then(|stat| {
                                let rest = &stat[stat.rfind(')')? + 1..];
                                rest.split_whitespace().nth(2)?.parse::<u32>().ok()
                            })
                            == Some(group);
                        if !in_group {
                            continue;
                        }
                        let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
                            continue;
                        };
                        let argv = String::from_utf8_lossy(&raw).replace('\0', " ");
                        if let Some(secret) = redactor.find_leak(&argv) {
                            if !seen.contains(&secret) {
                                seen.push(secret);
                            }
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            seen
        });
        ArgvWatch { done, thread }
    }

    /// Stops sampling; returns the names of the secrets seen.
    fn stop(self) -> Vec<String> {
        self.done.store(true, std::sync::atomic::Ordering::SeqCst);
        self.thread.join().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::compose_restart;
    use crate::services::Service;

    fn names(script: &str) -> Vec<&str> {
        let list = script
            .split("for _c in ")
            .nth(1)
            .unwrap()
            .split(';')
            .next()
            .unwrap();
        list.split_whitespace().collect()
    }

    #[test]
    fn compose_restart_of_the_whole_node_restarts_every_container_at_once() {
        let words = [
            "docker-compose",
            "-f",
            "docker-compose.node1.yml",
            "restart",
        ];
        let script = compose_restart(&words, |s| format!("q-{}", s.production_name()));
        assert_eq!(names(&script).len(), Service::ALL.len(), "{script}");
        assert!(
            script.contains("\"$_c\" &"),
            "restarts run in the background, together: {script}"
        );
        assert!(
            script.contains("wait \"$_p\" || _failed=1"),
            "one failed restart fails the block: {script}"
        );
    }

    #[test]
    fn compose_restart_of_named_services_keeps_its_timeout_and_only_those() {
        let words = ["docker-compose", "restart", "-t", "3", "dagi-router-node1"];
        let script = compose_restart(&words, |s| format!("q-{}", s.production_name()));
        assert_eq!(names(&script), ["q-dagi-router-node1"], "{script}");
        assert!(script.contains("docker restart -t 3 "), "{script}");
    }
}
