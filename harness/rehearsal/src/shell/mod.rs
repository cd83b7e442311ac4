//! Runs the runbook's own shell blocks against the replica, as an operator would paste them:
//! production names, paths and ports rewritten to the replica's, `sleep` compressed by the time
//! scale, one working directory carried from block to block, a deadline on every block (a command
//! that never ends is killed and recorded as such), output kept short and redacted.

use harness::compose::{ComposeRun, LOG_VAR, PRODUCTION_PROJECT};
use harness::redact::Redactor;
use harness::services::Service;
use harness::stack::Stack;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[cfg(test)]
mod tests;

/// What one shell block did.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    /// Each `docker compose` / `docker-compose` the block ran, in order: which Compose ran it
    /// (`docker-compose 1.29.2 (v1)`; `compose::NO_COMPOSE` when the host has none), with what.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub compose: Vec<ComposeRun>,
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

/// What a block's text is rewritten with: the replica's root, ports, container names and
/// Compose project in place of production's, and the time scale for `sleep`.
#[derive(Debug, Clone)]
pub struct Rewriting {
    pub root: String,
    /// Production port → the replica's host port.
    pub ports: Vec<(u16, u16)>,
    /// Where those ports are reached: the engine's host (`docker::engine_host`).
    pub host: String,
    /// Production container name → the stack's.
    pub containers: Vec<(String, String)>,
    /// The stack's Compose project, for a runbook's `-p microdao-daarion`.
    pub project: String,
    pub scale: f64,
}

impl Rewriting {
    /// How blocks are rewritten for `stack`.
    pub fn for_stack(stack: &Stack, scale: f64) -> Self {
        Rewriting {
            root: stack.root().dir().display().to_string(),
            ports: PORTS
                .iter()
                .map(|&(port, service, container_port)| {
                    (port, stack.host_port(service, container_port).unwrap_or(0))
                })
                .collect(),
            host: harness::docker::engine_host(),
            containers: Service::ALL
                .iter()
                .map(|s| (s.production_name().to_string(), stack.container_name(*s)))
                .collect(),
            project: stack.compose_project(),
            scale,
        }
    }
}

/// Words after which a new command starts.
fn ends_command(word: &str) -> bool {
    matches!(
        word,
        ";" | "&&" | "||" | "|" | "&" | "then" | "do" | "else" | "{" | "("
    ) || word.ends_with(';')
        || word.ends_with("&&")
        || word.ends_with("||")
        || word.ends_with('|')
}

/// Words that may stand before a command's name without being it.
fn before_command(word: &str) -> bool {
    matches!(
        word,
        "sudo" | "-E" | "time" | "exec" | "command" | "!" | "if" | "while" | "until"
    ) || (word.contains('=') && !word.starts_with('-') && !word.starts_with('='))
}

/// Where a line's words stand: a Compose command's words name services, not containers.
#[derive(Debug, Clone, Copy, Default)]
struct CommandState {
    /// The next word may be a command's name.
    at_start: bool,
    /// The last word was `docker` at a command's start (`docker compose` follows?).
    after_docker: bool,
    /// Inside a `docker compose` / `docker-compose` command.
    in_compose: bool,
    /// The next word is the value of `-p` / `--project-name`.
    project_value: bool,
}

/// The block rewritten for the replica: root, ports, container names (outside Compose
/// commands, whose words are service names), a runbook's `-p microdao-daarion`, sleeps.
pub fn rewrite(block: &str, with: &Rewriting) -> String {
    let mut out = String::new();
    let mut state = CommandState {
        at_start: true,
        ..Default::default()
    };
    for line in block.lines() {
        let mut line = line.replace("/opt/microdao-daarion", &with.root);
        for &(port, mapped) in &with.ports {
            for host in ["localhost", "127.0.0.1"] {
                line = line.replace(
                    &format!("{host}:{port}"),
                    &format!("{}:{mapped}", with.host),
                );
            }
        }
        let mut rebuilt = String::new();
        let mut word = String::new();
        let flush = |word: &mut String, rebuilt: &mut String, state: &mut CommandState| {
            if word.is_empty() {
                return;
            }
            rebuilt.push_str(&rewrite_word(word, state, with));
            word.clear();
        };
        for c in line.chars() {
            if c.is_whitespace() {
                flush(&mut word, &mut rebuilt, &mut state);
                rebuilt.push(c);
            } else {
                word.push(c);
            }
        }
        flush(&mut word, &mut rebuilt, &mut state);
        // A command goes on past a line only after a backslash.
        if !line.trim_end().ends_with('\\') {
            state = CommandState {
                at_start: true,
                ..Default::default()
            };
        }
        // `sleep N` compressed by the time scale.
        let words: Vec<&str> = rebuilt.split_whitespace().collect();
        if words.len() == 2 && words[0] == "sleep" {
            if let Ok(n) = words[1].parse::<f64>() {
                out.push_str(&format!("sleep {:.2}\n", n * with.scale));
                continue;
            }
        }
        out.push_str(&rebuilt);
        out.push('\n');
    }
    out
}

/// One word rewritten, moving `state` past it.
fn rewrite_word(word: &str, state: &mut CommandState, with: &Rewriting) -> String {
    // `$(docker-compose …`, `(docker …`, `` `docker … ``: the command starts inside.
    let bare = word.trim_start_matches(['$', '(', '`']);
    let starts_inside = bare.len() != word.len();
    let mut replaced = None;
    if state.project_value {
        state.project_value = false;
        if unquote(word) == PRODUCTION_PROJECT {
            replaced = Some(with.project.clone());
        }
    } else if state.in_compose {
        match word {
            "-p" | "--project-name" => state.project_value = true,
            w => {
                let value = w
                    .strip_prefix("--project-name=")
                    .or_else(|| w.strip_prefix("-p").filter(|v| !v.is_empty()));
                if let Some(value) = value {
                    if unquote(value) == PRODUCTION_PROJECT {
                        let flag = &w[..w.len() - value.len()];
                        replaced = Some(format!("{flag}{}", with.project));
                    }
                }
            }
        }
    } else if (state.after_docker && bare == "compose")
        || ((state.at_start || starts_inside) && bare == "docker-compose")
    {
        state.in_compose = true;
    } else if let Some((_, theirs)) = with.containers.iter().find(|(ours, _)| ours == word) {
        // Container names, as whole words only (paths like services/parser-pipeline/ stay).
        replaced = Some(theirs.clone());
    }
    state.after_docker = (state.at_start || starts_inside) && bare == "docker";
    if ends_command(word) {
        *state = CommandState {
            at_start: true,
            ..Default::default()
        };
    } else {
        state.at_start = state.at_start && before_command(word);
    }
    replaced.unwrap_or_else(|| word.to_string())
}

fn unquote(word: &str) -> &str {
    word.trim_matches(['"', '\''])
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

/// The files a block's run leaves its results in: the directory it ended in, and the Compose
/// commands its shims logged (created here, readable by its owner only: a Compose command's
/// arguments may hold a secret). Both removed when read.
struct BlockFiles {
    cwd: PathBuf,
    compose_log: PathBuf,
    /// Bash's trace of every command it ran, words expanded (`set -x`); it may hold secrets.
    trace: PathBuf,
}

impl BlockFiles {
    fn create() -> BlockFiles {
        let cwd = std::env::temp_dir().join(format!(
            "rehearsal-cwd-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        let compose_log = cwd.with_extension("compose");
        let trace = cwd.with_extension("trace");
        for private in [&compose_log, &trace] {
            use std::os::unix::fs::OpenOptionsExt;
            let _ = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(private);
        }
        BlockFiles {
            cwd,
            compose_log,
            trace,
        }
    }

    /// The names of the secrets in the arguments of the processes the block started, from
    /// its trace; the trace removed.
    fn secrets_in_trace(&self, redactor: &Redactor) -> Vec<String> {
        let trace = std::fs::read_to_string(&self.trace).unwrap_or_default();
        let _ = std::fs::remove_file(&self.trace);
        secrets_in_trace(&trace, redactor)
    }

    /// The directory the block ended in (`started_in` when it wrote none), and its Compose
    /// runs; the files removed.
    fn read(self, started_in: &Path, redactor: &Redactor) -> (PathBuf, Vec<ComposeRun>) {
        let new_cwd = std::fs::read_to_string(&self.cwd)
            .map(|s| PathBuf::from(s.trim()))
            .unwrap_or_else(|_| started_in.to_path_buf());
        let _ = std::fs::remove_file(&self.cwd);
        let compose = std::fs::read_to_string(&self.compose_log)
            .map(|log| ComposeRun::parse_log(&log, redactor))
            .unwrap_or_default();
        let _ = std::fs::remove_file(&self.compose_log);
        (new_cwd, compose)
    }
}

/// `PATH` with `shims` first.
fn path_with(shims: &Path) -> std::ffi::OsString {
    match std::env::var_os("PATH") {
        Some(rest) => {
            let mut all = vec![shims.to_path_buf()];
            all.extend(std::env::split_paths(&rest));
            std::env::join_paths(all).unwrap_or(rest)
        }
        None => shims.as_os_str().to_owned(),
    }
}

/// How a block's process ended: its exit code, whether the deadline killed it, its output
/// (stdout then stderr), and the secrets seen in a process's argv meanwhile.
struct Ended {
    exit_code: Option<i32>,
    killed: bool,
    output: String,
    secrets_in_argv: Vec<String>,
}

/// Starts `command` in its own process group and waits for it until `deadline`, its argv
/// watched for `redactor`'s secrets; the group is killed when the deadline ends it, or when
/// this future is dropped.
async fn wait_within(
    mut command: tokio::process::Command,
    deadline: Duration,
    redactor: &Redactor,
) -> Ended {
    let child = match command.spawn() {
        Err(e) => {
            return Ended {
                exit_code: None,
                killed: false,
                output: format!("cannot start bash: {e}"),
                secrets_in_argv: Vec::new(),
            }
        }
        Ok(child) => child,
    };
    let pid = child.id();
    // If the scenario's own deadline drops this future, the whole group still dies.
    let _group = pid.map(ProcessGroup);
    let watch = ArgvWatch::start(redactor, pid.unwrap_or(0));
    let r = tokio::time::timeout(deadline, child.wait_with_output()).await;
    let secrets_in_argv = watch.stop();
    let (exit_code, killed, output) = match r {
        Ok(Ok(out)) => {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            (out.status.code(), false, text)
        }
        Ok(Err(e)) => (None, false, e.to_string()),
        // `_group` kills the whole process group when this returns.
        Err(_) => (None, true, String::new()),
    };
    Ended {
        exit_code,
        killed,
        output,
        secrets_in_argv,
    }
}

/// Runs `script` with bash in `cwd`, with `shims` first on `PATH` (the stack's Compose shims,
/// `Stack::shim_dir`) and `operator_env` exported (the values an operator exports from the
/// secret store before pasting, `OperatorValues`); returns the run and the working directory it
/// ended in.
pub async fn run(
    original: &str,
    script: &str,
    cwd: &Path,
    deadline: Duration,
    redactor: &Redactor,
    shims: &Path,
    operator_env: &[(String, String)],
) -> (ShellRun, PathBuf) {
    let files = BlockFiles::create();
    // Traced to a file of its own (fd 19), so its output is the block's alone.
    let full = format!(
        "exec 19>>'{}'; BASH_XTRACEFD=19; PS4='+ '; set -x\ncd '{}' || exit 97\n{script}\n__status=$?\nset +x\npwd > '{}'\nexit $__status\n",
        files.trace.display(),
        cwd.display(),
        files.cwd.display()
    );
    let started = Instant::now();
    let mut command = tokio::process::Command::new("bash");
    command
        .arg("-c")
        .arg(&full)
        .env("PATH", path_with(shims))
        .env(LOG_VAR, &files.compose_log)
        .envs(operator_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut ended = wait_within(command, deadline, redactor).await;
    for name in files.secrets_in_trace(redactor) {
        if !ended.secrets_in_argv.contains(&name) {
            ended.secrets_in_argv.push(name);
        }
    }
    let (new_cwd, compose) = files.read(cwd, redactor);
    let tail: Vec<&str> = ended.output.lines().rev().take(8).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    (
        ShellRun {
            command: redactor.redact(original.trim()),
            ran: redactor.redact(script.trim()),
            exit_code: ended.exit_code,
            killed_at_deadline: ended.killed,
            duration_ms: started.elapsed().as_millis() as u64,
            output_tail: redactor.redact(&tail.join("\n")),
            secrets_in_argv: ended.secrets_in_argv,
            compose,
        },
        new_cwd,
    )
}

/// Bash's builtins and keywords: a traced command that starts with one starts no process, so
/// no `ps` shows its arguments.
const BUILTINS: &[&str] = &[
    ".",
    ":",
    "[",
    "[[",
    "alias",
    "bg",
    "break",
    "builtin",
    "caller",
    "case",
    "cd",
    "command",
    "compgen",
    "complete",
    "continue",
    "declare",
    "dirs",
    "disown",
    "echo",
    "enable",
    "eval",
    "exec",
    "exit",
    "export",
    "false",
    "fc",
    "fg",
    "for",
    "getopts",
    "hash",
    "help",
    "history",
    "if",
    "jobs",
    "kill",
    "let",
    "local",
    "logout",
    "mapfile",
    "popd",
    "printf",
    "pushd",
    "pwd",
    "read",
    "readarray",
    "readonly",
    "return",
    "select",
    "set",
    "shift",
    "shopt",
    "source",
    "test",
    "time",
    "times",
    "trap",
    "true",
    "type",
    "typeset",
    "ulimit",
    "umask",
    "unalias",
    "unset",
    "until",
    "wait",
    "while",
    "((",
];

/// The names of the secrets in the arguments of the processes a block started, from bash's
/// trace of each command as it ran (`set -x`: its words expanded, `+` per nesting level): a
/// process that lived however briefly is in it, where sampling `/proc` can miss one. A command
/// of a builtin, and an assignment (bash traces those before a command on their own line: the
/// command's environment, which only its owner can read), are not arguments.
pub fn secrets_in_trace(trace: &str, redactor: &Redactor) -> Vec<String> {
    // One entry per traced command; a word with a newline continues on the next lines.
    let mut entries: Vec<String> = Vec::new();
    for line in trace.lines() {
        match line.strip_prefix('+') {
            Some(rest) => entries.push(rest.trim_start_matches('+').trim_start().to_string()),
            None => {
                if let Some(e) = entries.last_mut() {
                    e.push('\n');
                    e.push_str(line);
                }
            }
        }
    }
    let mut names: Vec<String> = Vec::new();
    for entry in entries {
        // Bash traces the assignments before a command on lines of their own.
        let rest = entry.as_str();
        let is_assignment = rest.split_once('=').is_some_and(|(name, _)| {
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        });
        let program = rest.split([' ', '\n']).next().unwrap_or("");
        if is_assignment || rest.is_empty() || BUILTINS.contains(&program) {
            continue;
        }
        // Words are quoted as the shell would read them back: a quote inside one is `'\''`.
        let unquoted = rest.replace("'\\''", "'");
        for name in redactor
            .leaks(&unquoted)
            .into_iter()
            .chain(redactor.leaks(rest))
        {
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    names
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
            let leader = group.to_string();
            let mut seen: Vec<String> = Vec::new();
            // The block's `bash -c` forks for every command it runs and every subshell; until
            // the child execs, its argv is the block's own. Those copies are the shell, not
            // what it runs.
            let mut leader_argv: Option<Vec<u8>> = None;
            while !flag.load(std::sync::atomic::Ordering::SeqCst) {
                if leader_argv.is_none() {
                    leader_argv = std::fs::read(format!("/proc/{leader}/cmdline")).ok();
                }
                if let Ok(entries) = std::fs::read_dir("/proc") {
                    for entry in entries.flatten() {
                        let name = entry.file_name();
                        let Some(pid) = name.to_str() else { continue };
                        // Not the harness, nor the `bash -c` that holds the block itself (nor,
                        // below, its forks): an operator pastes a block into a shell, whose
                        // arguments hold none of it; only what the block runs shows in `ps`.
                        if pid == me || pid == leader || !pid.bytes().all(|b| b.is_ascii_digit()) {
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
                        if leader_argv.as_ref() == Some(&raw) {
                            continue;
                        }
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
