//! A resident `docker-compose` (v1, Python): the host's own Compose, imported once into one
//! process per harness process, runs `config --hash` requests in-process exactly as its script
//! would (`compose.cli.main.main`), so that a stack start does not pay Python's start-up (a third
//! of a second of the half second the hashes took) every time.
//!
//! Invariants: the answers are the program's own (same interpreter, same `compose` package, same
//! arguments, working directory and environment: a changed environment starts it anew); the
//! process ends when the harness does (it reads requests until its stdin closes); anything
//! unexpected (no Python shebang, an import that fails, another version, a broken pipe or
//! answer) retires it for the rest of the process, and the caller runs the program instead.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Mutex;

/// The resident's Python side: one JSON request line in, one JSON answer line out.
const SCRIPT: &str = include_str!("compose_resident.py");

/// What one command printed and its exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

struct Resident {
    /// The process environment it was started with: a request made with another (`DOCKER_HOST`
    /// pointed at a tunnel, say) is answered by a resident started anew.
    environment: Vec<(std::ffi::OsString, std::ffi::OsString)>,
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Drop for Resident {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

enum State {
    NotStarted,
    Running(Resident),
    Retired,
}

static RESIDENT: Mutex<State> = Mutex::new(State::NotStarted);

/// Starts the resident for `program` (version `version`) in the background, if it is not
/// running yet, so that the first request finds it ready. Blocking work runs on its own thread.
pub fn prewarm(program: &Path, version: &str) {
    let (program, version) = (program.to_path_buf(), version.to_string());
    std::thread::spawn(move || {
        let mut state = RESIDENT.lock().unwrap_or_else(|e| e.into_inner());
        ensure_started(&mut state, &program, &version);
    });
}

/// Runs `program args…` in `dir` through the resident; `None` when there is no resident (the
/// caller runs the program). Blocking: call it from `spawn_blocking`.
pub fn run(program: &Path, version: &str, dir: &Path, args: &[&str]) -> Option<Answer> {
    let dir = dir.to_str()?;
    let mut state = RESIDENT.lock().unwrap_or_else(|e| e.into_inner());
    ensure_started(&mut state, program, version);
    let State::Running(resident) = &mut *state else {
        return None;
    };
    match ask(resident, dir, args) {
        Some(answer) => Some(answer),
        None => {
            *state = State::Retired;
            None
        }
    }
}

fn ensure_started(state: &mut State, program: &Path, version: &str) {
    if let State::Running(resident) = state {
        if resident.environment != environment() {
            *state = State::NotStarted;
        }
    }
    if matches!(state, State::NotStarted) {
        *state = match start(program, version) {
            Some(resident) => State::Running(resident),
            None => State::Retired,
        };
    }
}

/// The interpreter line of `program` (`#!/usr/bin/python3`, `#!/usr/bin/env python3`), split
/// into words; `None` when it is not a script (a frozen binary, say).
pub fn interpreter_of(program: &Path) -> Option<Vec<String>> {
    let mut first = String::new();
    let file = std::fs::File::open(program).ok()?;
    BufReader::new(std::io::Read::take(file, 256))
        .read_line(&mut first)
        .ok()?;
    let words: Vec<String> = first
        .strip_prefix("#!")?
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let names_python = words.iter().any(|w| {
        Path::new(w)
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("python"))
    });
    names_python.then_some(words)
}

fn start(program: &Path, version: &str) -> Option<Resident> {
    let words = interpreter_of(program)?;
    let environment = environment();
    let mut child = Command::new(&words[0])
        .args(&words[1..])
        .arg("-c")
        .arg(SCRIPT)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let stdin = child.stdin.take()?;
    let mut stdout = BufReader::new(child.stdout.take()?);
    let mut hello = String::new();
    stdout.read_line(&mut hello).ok()?;
    let hello: serde_json::Value = serde_json::from_str(&hello).ok()?;
    let resident = Resident {
        environment,
        child,
        stdin,
        stdout,
    };
    (hello.get("version").and_then(|v| v.as_str()) == Some(version)).then_some(resident)
}

fn environment() -> Vec<(std::ffi::OsString, std::ffi::OsString)> {
    std::env::vars_os().collect()
}

fn ask(resident: &mut Resident, dir: &str, args: &[&str]) -> Option<Answer> {
    let request = serde_json::json!({ "dir": dir, "args": args });
    writeln!(resident.stdin, "{request}").ok()?;
    resident.stdin.flush().ok()?;
    let mut line = String::new();
    if resident.stdout.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let answer: serde_json::Value = serde_json::from_str(&line).ok()?;
    Some(Answer {
        code: i32::try_from(answer.get("code")?.as_i64()?).ok()?,
        stdout: answer.get("stdout")?.as_str()?.to_string(),
        stderr: answer.get("stderr")?.as_str()?.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::interpreter_of;

    fn script(first_line: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().expect("temp file");
        std::io::Write::write_all(&mut f, first_line).expect("write");
        f
    }

    #[test]
    fn a_python_script_names_its_interpreter_and_anything_else_has_none() {
        let direct = script(b"#!/usr/bin/python3\nimport re\n");
        assert_eq!(
            interpreter_of(direct.path()),
            Some(vec!["/usr/bin/python3".to_string()])
        );
        let env = script(b"#!/usr/bin/env python3.11\n");
        assert_eq!(
            interpreter_of(env.path()),
            Some(vec!["/usr/bin/env".to_string(), "python3.11".to_string()])
        );
        assert_eq!(interpreter_of(script(b"#!/bin/sh\n").path()), None);
        assert_eq!(
            interpreter_of(script(b"\x7fELF\x02\x01\x01\0\0\0").path()),
            None
        );
    }
}
