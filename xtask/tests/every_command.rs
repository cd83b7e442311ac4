//! Every command against the inputs and outputs an adversarial user gives it, driven from the
//! table in `support/commands.rs` (which `xtask`'s unit test keeps equal to the CLI): stdout
//! closed before the first line, a FIFO, a directory or a missing file where a file is read, a
//! file where a directory is read, a planted symlink where a file is written, a missing parent
//! or a file where a directory is written, and a canary secret in every input. Each case: the
//! documented exit code, one `error:` line naming the path, no panic, no canary.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use harness::exit_codes;
use support::commands::{Kind, ARGUMENTS, STDOUT_RUNS};

/// Every canary value starts with this: if it shows up anywhere, a secret leaked.
const CANARY: &str = "CANARY51d0e2";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// The fixtures the command lines' placeholders stand for.
struct Fixtures {
    dir: tempfile::TempDir,
    target: PathBuf,
    journal: PathBuf,
    compose: PathBuf,
}

impl Fixtures {
    fn new() -> Fixtures {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("gateway-bot")).unwrap();
        std::fs::write(
            root.join("gateway-bot/.env"),
            format!("DB_PASSWORD={CANARY}-db\nJWT_SECRET={CANARY}-jwt\n"),
        )
        .unwrap();
        let target = dir.path().join("target.toml");
        std::fs::write(&target, target_toml(&root)).unwrap();
        let journal = dir.path().join("journal");
        std::fs::create_dir_all(&journal).unwrap();
        // Shard 1 of 1, so that `report merge` takes it as `render` and `compare` do.
        let mut one = rehearsal::samples::journal(Vec::new(), 1);
        one.shard = Some(rehearsal::journal::ShardInfo {
            index: 1,
            count: 1,
            selection: Vec::new(),
        });
        std::fs::write(
            journal.join("journal.json"),
            serde_json::to_string(&one).unwrap(),
        )
        .unwrap();
        // A node's compose file whose project `.env` holds a canary.
        let project = dir.path().join("project");
        std::fs::create_dir_all(&project).unwrap();
        std::fs::write(project.join(".env"), format!("DB_PASSWORD={CANARY}-db\n")).unwrap();
        let compose = project.join("docker-compose.yml");
        std::fs::write(
            &compose,
            "services:\n  dagi-router-node1:\n    image: router\n    environment:\n      - DB_PASSWORD=${DB_PASSWORD}\n",
        )
        .unwrap();
        Fixtures {
            dir,
            target,
            journal,
            compose,
        }
    }

    /// A fresh path under the fixtures' directory, nothing there yet.
    fn fresh(&self, name: &str) -> PathBuf {
        let path = self.dir.path().join(format!("case-{}", uniq())).join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        path
    }

    /// `line` with its placeholders filled, `{}` by `path`.
    fn args(&self, line: &[&str], path: &Path) -> Vec<String> {
        let out = self.fresh("out");
        std::fs::create_dir(&out).unwrap();
        line.iter()
            .map(|a| {
                a.replace("{}", path.to_str().unwrap())
                    .replace("{target}", self.target.to_str().unwrap())
                    .replace("{journal}", self.journal.to_str().unwrap())
                    .replace("{compose}", self.compose.to_str().unwrap())
                    .replace("{out}", out.to_str().unwrap())
            })
            .collect()
    }
}

fn uniq() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// A node whose every URL refuses at once and whose root holds one `.env` of canaries.
fn target_toml(root: &Path) -> String {
    format!(
        "name = \"n\"\nroot = \"{}\"\ntimeout_ms = 2000\n\
         [services.gateway]\nurl = \"http://127.0.0.1:1\"\nenv = \"gateway-bot/.env\"\n\
         [postgres]\nhost = \"127.0.0.1\"\nport = 1\nuser = \"daarion\"\ndatabase = \"d\"\n\
         [nats]\nurl = \"nats://127.0.0.1:1\"\nmonitoring = \"http://127.0.0.1:1\"\n",
        root.display()
    )
}

fn xtask(args: &[String], stdout: Stdio) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        // No engine: nothing here may need one, and none is ever reached.
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .env_remove("BACKUP_PASSPHRASE")
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .expect("xtask runs")
        .wait_with_output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A pipe whose reading end is already closed: the first write to it fails with EPIPE.
fn closed_pipe() -> Stdio {
    let mut fds = [0; 2];
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    unsafe { libc::close(fds[0]) };
    Stdio::from(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fds[1]) })
}

fn make_fifo(path: &Path) {
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

/// The run refused its input with exit 2, in one `error:` line holding `needle`, no panic.
fn assert_refused(what: &str, args: &[String], run: &Run, needle: &str) {
    let errors: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("error:"))
        .collect();
    assert_eq!(
        run.code,
        exit_codes::USAGE,
        "{what}: {args:?}\n{}",
        run.stderr
    );
    assert_eq!(errors.len(), 1, "{what}: {args:?}\n{}", run.stderr);
    assert!(
        errors[0].contains(needle),
        "{what}: {args:?}: the error names {needle}: {}",
        errors[0]
    );
    assert!(!run.stderr.contains("panicked"), "{what}: {}", run.stderr);
}

fn assert_no_canary(what: &str, args: &[String], run: &Run) {
    assert!(
        !run.stdout.contains(CANARY) && !run.stderr.contains(CANARY),
        "{what}: {args:?}: a canary was printed:\n{}\n{}",
        run.stdout,
        run.stderr
    );
}

#[test]
fn every_command_ends_quietly_with_its_own_exit_code_when_stdout_is_closed() {
    let fixtures = Fixtures::new();
    for (command, line, code) in STDOUT_RUNS {
        let args = fixtures.args(line, Path::new(""));
        let run = xtask(&args, closed_pipe());
        assert_eq!(run.code, *code, "{command}: {args:?}\n{}", run.stderr);
        assert!(
            !run.stderr.contains("panicked") && !run.stderr.contains("Broken pipe"),
            "{command}: {}",
            run.stderr
        );
        assert_no_canary(command, &args, &run);
    }
}

#[test]
fn every_file_a_command_reads_is_refused_when_it_is_a_fifo_a_directory_or_missing() {
    let fixtures = Fixtures::new();
    for (command, arg, kind, line) in ARGUMENTS {
        let (Some(line), Kind::InputFile | Kind::InputFileOrDir | Kind::InputDir) = (line, kind)
        else {
            continue;
        };
        let what = format!("{command} {arg}");
        let fifo = fixtures.fresh("fifo");
        make_fifo(&fifo);
        let missing = fixtures.fresh("missing");
        let mut cases = vec![("a FIFO", fifo.clone(), "FIFO"), ("missing", missing, "")];
        match kind {
            Kind::InputFile => {
                cases.push(("a directory", fixtures.fresh("dir"), "directory"));
                std::fs::create_dir(&cases.last().unwrap().1).unwrap();
            }
            Kind::InputDir => {
                let file = fixtures.fresh("file");
                std::fs::write(&file, "").unwrap();
                cases.push(("a regular file", file, "not a directory"));
            }
            _ => {}
        }
        for (case, path, needle) in cases {
            let args = fixtures.args(line, &path);
            // A FIFO nobody writes to: a command that opened it would wait for ever.
            let run = xtask(&args, Stdio::piped());
            assert_refused(&format!("{what}: {case}"), &args, &run, needle);
            assert!(
                run.stderr.contains(path.to_str().unwrap()),
                "{what}: {case}: the error names the path: {}",
                run.stderr
            );
        }
    }
}

#[test]
fn every_input_holding_a_canary_is_refused_or_read_without_printing_it() {
    let fixtures = Fixtures::new();
    let broken = format!("{CANARY} = [ {CANARY}\n## Phase x {CANARY}\n{{\"{CANARY}\": ");
    for (command, arg, kind, line) in ARGUMENTS {
        let Some(line) = line else { continue };
        let path = match kind {
            Kind::InputFile | Kind::InputFileOrDir => {
                let file = fixtures.fresh("canary");
                std::fs::write(&file, &broken).unwrap();
                file
            }
            Kind::InputDir => {
                let dir = fixtures.fresh("canary-dir");
                std::fs::create_dir(&dir).unwrap();
                std::fs::write(dir.join("journal.json"), &broken).unwrap();
                std::fs::write(dir.join("node.toml"), &broken).unwrap();
                dir
            }
            _ => continue,
        };
        let args = fixtures.args(line, &path);
        let run = xtask(&args, Stdio::piped());
        assert_refused(&format!("{command} {arg}"), &args, &run, "");
        assert_no_canary(&format!("{command} {arg}"), &args, &run);
    }
}

#[test]
fn every_file_a_command_writes_replaces_a_planted_symlink_and_refuses_a_missing_parent() {
    let fixtures = Fixtures::new();
    for (command, arg, kind, line) in ARGUMENTS {
        let (Some(line), Kind::OutputFile | Kind::OutputFormatFile) = (line, kind) else {
            continue;
        };
        let what = format!("{command} {arg}");
        // A symlink planted where the output goes: its target stays as it was.
        let victim = fixtures.fresh("victim");
        std::fs::write(&victim, "precious").unwrap();
        let planted = fixtures.fresh("planted");
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        let args = fixtures.args(line, &planted);
        let run = xtask(&args, Stdio::piped());
        assert!(
            !run.stderr.contains("panicked"),
            "{what}: {args:?}\n{}",
            run.stderr
        );
        assert_eq!(
            std::fs::read_to_string(&victim).unwrap(),
            "precious",
            "{what}: the symlink's target was written"
        );
        assert!(
            std::fs::symlink_metadata(&planted).unwrap().is_file(),
            "{what}: the output replaced the symlink with a file"
        );
        assert_no_canary(&what, &args, &run);
        // A parent that does not exist, and a directory where the file goes.
        let orphan = fixtures.fresh("x").join("no/such/file");
        let dir = fixtures.fresh("a-dir");
        std::fs::create_dir(&dir).unwrap();
        for (case, path) in [("a missing parent", orphan), ("a directory", dir)] {
            let args = fixtures.args(line, &path);
            let run = xtask(&args, Stdio::piped());
            assert_refused(&format!("{what}: {case}"), &args, &run, arg);
            assert!(
                run.stderr.contains(path.to_str().unwrap()),
                "{what}: {case}: {}",
                run.stderr
            );
        }
    }
}

#[test]
fn every_directory_a_command_writes_into_is_made_one_level_deep_never_over_a_file() {
    let fixtures = Fixtures::new();
    for (command, arg, kind, line) in ARGUMENTS {
        let (Some(line), Kind::OutputDir) = (line, kind) else {
            continue;
        };
        let what = format!("{command} {arg}");
        let file = fixtures.fresh("a-file");
        std::fs::write(&file, "precious").unwrap();
        let orphan = fixtures.fresh("x").join("no/such/dir");
        for (case, path) in [
            ("a file", file.clone()),
            ("a missing parent", orphan.clone()),
        ] {
            let args = fixtures.args(line, &path);
            let run = xtask(&args, Stdio::piped());
            assert_refused(&format!("{what}: {case}"), &args, &run, arg);
        }
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "precious");
        assert!(
            !orphan.parent().unwrap().parent().unwrap().exists(),
            "{what}: no chain of directories made"
        );
    }
}

mod arbitrary_targets {
    //! Target files as a user may write them, any field wrong: whatever they hold, `verify`
    //! ends with 0, 1, 2 or 6, never a panic, and prints no canary (a password in a URL
    //! included). Every URL it could reach points at loopback: its host is drawn from
    //! loopback names only, and its user and password never hold a character that would end
    //! the authority before the host (`/`, `?`, `#`, `@`, `\`).

    use super::*;
    use proptest::prelude::*;

    /// Userinfo characters that keep the URL's host where the generator put it.
    const USERINFO: &str = "[A-Za-z0-9._~!$&'()*+,;=:%-]{0,12}";

    /// A URL for a field taking `scheme`: mostly one the field takes, now and then one it
    /// refuses (another scheme, no host, a bad port).
    fn url(scheme: &'static str) -> impl Strategy<Value = String> {
        (
            prop_oneof![9 => Just(scheme), 1 => prop::sample::select(vec!["ftp", "", "HTTP"])],
            prop::option::of((USERINFO, USERINFO)),
            prop_oneof![
                9 => prop::sample::select(vec!["127.0.0.1", "localhost", "[::1]"]),
                1 => prop::sample::select(vec!["", "[::1", "%zz"]),
            ],
            prop_oneof![9 => Just("1"), 1 => prop::sample::select(vec!["0", "99999", "x"])],
            "[ -~]{0,16}",
            prop::bool::weighted(0.8),
        )
            .prop_map(|(scheme, userinfo, host, port, path, canary)| {
                let userinfo = match userinfo {
                    Some((user, password)) if canary => format!("{user}:{CANARY}{password}@"),
                    Some((user, password)) => format!("{user}:{password}@"),
                    None => String::new(),
                };
                let path = path.replace(['@', '\\'], "");
                let scheme = match scheme {
                    "" => String::new(),
                    s => format!("{s}://"),
                };
                format!("{scheme}{userinfo}{host}:{port}/{path}")
            })
    }

    /// A value of the wrong type, or a canary string, for any field.
    fn odd_value() -> impl Strategy<Value = toml::Value> {
        prop_oneof![
            any::<i64>().prop_map(toml::Value::Integer),
            "[ -~]{0,8}".prop_map(|s| toml::Value::String(format!("{CANARY}{s}"))),
            any::<bool>().prop_map(toml::Value::Boolean),
            Just(toml::Value::Array(vec![toml::Value::String(CANARY.into())])),
        ]
    }

    fn target() -> impl Strategy<Value = toml::Table> {
        (
            url("http"),
            url("nats"),
            url("http"),
            url("https"),
            prop_oneof![
                8 => (0u64..3000).prop_map(|n| toml::Value::Integer(n as i64)),
                1 => (0u64..700_000).prop_map(|n| toml::Value::Integer(n as i64)),
                1 => odd_value(),
            ],
            prop::option::weighted(
                0.25,
                (
                    // Not `name`, `root` or `previous`: a node's name and its paths are
                    // shown in reports and errors; they are no secrets.
                    prop::sample::select(vec![
                        "since",
                        "transport",
                        "backup_retention_days",
                        "unknown_field",
                    ]),
                    odd_value(),
                ),
            ),
        )
            .prop_map(|(service, nats, monitoring, provider, timeout, odd)| {
                let mut t: toml::Table = toml::from_str(&target_toml(Path::new("/nonexistent")))
                    .expect("the base target parses");
                t["services"]["gateway"]
                    .as_table_mut()
                    .unwrap()
                    .insert("url".into(), service.into());
                let nats_table = t["nats"].as_table_mut().unwrap();
                nats_table.insert("url".into(), nats.into());
                nats_table.insert("monitoring".into(), monitoring.into());
                let mut deepseek = toml::Table::new();
                deepseek.insert("url".into(), provider.into());
                deepseek.insert("env".into(), "DEEPSEEK_API_KEY".into());
                let mut providers = toml::Table::new();
                providers.insert("deepseek".into(), deepseek.into());
                t.insert("providers".into(), providers.into());
                t.insert("timeout_ms".into(), timeout);
                if let Some((field, value)) = odd {
                    t.insert(field.into(), value);
                }
                t
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn an_arbitrary_target_file_gives_a_documented_exit_code_and_prints_no_canary(t in target()) {
            let fixtures = Fixtures::new();
            let path = fixtures.fresh("node.toml");
            std::fs::write(&path, toml::to_string(&t).unwrap()).unwrap();
            let args = vec!["verify".to_string(), "--target".into(), path.display().to_string()];
            let run = xtask(&args, Stdio::piped());
            prop_assert!(
                [exit_codes::OK, exit_codes::FAILURES, exit_codes::USAGE, exit_codes::UNREACHABLE]
                    .contains(&run.code),
                "exit {}: {}", run.code, run.stderr
            );
            prop_assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
            prop_assert!(
                !run.stdout.contains(CANARY) && !run.stderr.contains(CANARY),
                "a canary was printed:\n{}\n{}", run.stdout, run.stderr
            );
        }
    }
}
