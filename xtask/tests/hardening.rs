//! Bad input as an adversarial user gives it, each kept as a test: no secret in any error,
//! documented exit codes for bad flags and values, output paths checked before any work, and
//! diagnostics that name the file, the line and the field — never a value.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use harness::exit_codes;

/// Every canary value starts with this: if it shows up anywhere, a secret leaked.
const CANARY: &str = "CANARY7f3a9c";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn xtask(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        // No engine: nothing here may need one, and none is ever reached.
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .env_remove("BACKUP_PASSPHRASE")
        .output()
        .expect("xtask runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A `.env` whose every value is a canary.
fn canary_env() -> String {
    format!(
        "DB_PASSWORD={CANARY}-db-password\nDEEPSEEK_API_KEY=sk-{CANARY}-deepseek\n\
         JWT_SECRET={CANARY}-jwt\nNATS_PASSWORD_GATEWAY='{CANARY} with spaces & / \\ $'\n"
    )
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// A tar holding `name` with `content`, as `tar -c` writes it.
fn tar_of(name: &str, content: &[u8]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(content.len() as u64);
    header.set_mode(0o600);
    header.set_cksum();
    builder.append_data(&mut header, name, content).unwrap();
    builder.into_inner().unwrap()
}

/// Every file `dir` holds, as text, for the leak scan.
fn files_under(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            let bytes = std::fs::read(&path).unwrap();
            out.push((path, String::from_utf8_lossy(&bytes).into_owned()));
        }
    }
    out
}

/// The broken `--previous` archives: each is refused with a usage error.
fn broken_previous(dir: &Path) -> Vec<(&'static str, PathBuf)> {
    let env = canary_env();
    let valid = tar_of("services/router/.env", env.as_bytes());
    let gz = gzip(&valid);
    let mut ustar_garbage = env.clone().into_bytes();
    ustar_garbage.resize(512, b'x');
    ustar_garbage[257..263].copy_from_slice(b"ustar\0");
    let bad_line = format!("{}\n{CANARY}-a-line-without-an-equals-sign\n", env);
    let mut not_utf8 = env.clone().into_bytes();
    not_utf8.extend_from_slice(b"X=\xff\xfe");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("a plain .env", env.clone().into_bytes()),
        ("a gzip'd plain .env", gzip(env.as_bytes())),
        (
            "a header whose name and checksum are secrets",
            ustar_garbage.clone(),
        ),
        ("the same, gzip'd", gzip(&ustar_garbage)),
        ("a gzip'd tar cut in half", gz[..gz.len() / 2].to_vec()),
        ("a tar cut inside the .env", valid[..600].to_vec()),
        (
            "a .env with a line that is no assignment",
            gzip(&tar_of("gateway-bot/.env", bad_line.as_bytes())),
        ),
        (
            "a .env that is not UTF-8",
            gzip(&tar_of("gateway-bot/.env", &not_utf8)),
        ),
        (
            "an archive without a .env",
            gzip(&tar_of("notes.txt", env.as_bytes())),
        ),
        (
            "an encrypted backup without BACKUP_PASSPHRASE",
            [b"Salted__".as_slice(), &gz].concat(),
        ),
    ];
    let mut out = Vec::new();
    for (i, (what, bytes)) in cases.into_iter().enumerate() {
        let path = dir.join(format!("previous-{i}.tar.gz"));
        std::fs::write(&path, bytes).unwrap();
        out.push((what, path));
    }
    let empty = dir.join("previous-empty-dir");
    std::fs::create_dir_all(&empty).unwrap();
    out.push(("an empty directory", empty));
    out
}

/// The broken target files: a canary in every field, with the wrong type or bad syntax.
fn broken_targets(dir: &Path) -> Vec<(String, PathBuf)> {
    let example = std::fs::read_to_string(workspace().join("fixtures/targets/node1.toml")).unwrap();
    let replace = |from: &str, to: &str| {
        assert!(example.contains(from), "{from}");
        example.replacen(from, to, 1)
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "timeout_ms",
            replace("timeout_ms = 5000", &format!("timeout_ms = \"{CANARY}\"")),
        ),
        (
            "postgres.port",
            replace("port = 5432", &format!("port = \"{CANARY}\"")),
        ),
        (
            "since",
            replace(
                "since = \"2026-11-25T10:00:00Z\"",
                &format!("since = \"{CANARY}\""),
            ),
        ),
        (
            "name as an array",
            replace("name = \"node1\"", &format!("name = [\"{CANARY}\"]")),
        ),
        (
            "a bare value",
            replace("name = \"node1\"", &format!("name = {CANARY}")),
        ),
        (
            "an unclosed string",
            replace("name = \"node1\"", &format!("name = \"{CANARY}")),
        ),
        (
            "an unclosed multi-line string",
            replace("name = \"node1\"", &format!("name = \"\"\"{CANARY}")),
        ),
        (
            "an integer out of range",
            replace("port = 5432", "port = 99999999999"),
        ),
        (
            "a nested table as a value",
            replace("port = 5432", &format!("port = {{ x = \"{CANARY}\" }}")),
        ),
        (
            "a boolean for a string",
            replace("stream = \"EVENTS\"", "stream = true"),
        ),
    ]
    .into_iter()
    .map(|(what, text)| (what, text.into_bytes()))
    .chain([(
        "bytes that are not UTF-8",
        [
            example.as_bytes(),
            format!("# {CANARY}").as_bytes(),
            b"\xff\xfe",
        ]
        .concat(),
    )])
    .collect();
    cases
        .into_iter()
        .enumerate()
        .map(|(i, (what, bytes))| {
            let path = dir.join(format!("target-{i}.toml"));
            std::fs::write(&path, bytes).unwrap();
            (what.to_string(), path)
        })
        .collect()
}

/// The broken runbooks: a canary where each parser error could quote it.
fn broken_runbooks(dir: &Path) -> Vec<(&'static str, PathBuf)> {
    let shipped =
        std::fs::read_to_string(workspace().join(harness::runbook::DEFAULT_RUNBOOK)).unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "a phase heading without a number",
            shipped
                .replacen("### Phase 2: ", &format!("### Phase {CANARY}: "), 1)
                .into_bytes(),
        ),
        (
            "an inventory whose header is a secret",
            shipped
                .replacen(
                    "| Secret | Location |",
                    &format!("| {CANARY} | Location |"),
                    1,
                )
                .into_bytes(),
        ),
        (
            "a fence that never closes",
            format!("{shipped}\n```bash\nexport DB_PASSWORD={CANARY}\n").into_bytes(),
        ),
        (
            "bytes that are not UTF-8",
            [shipped.as_bytes(), CANARY.as_bytes(), b"\xc3\x28"].concat(),
        ),
        (
            "no phases, only a secret",
            format!("# {CANARY}\n").into_bytes(),
        ),
    ];
    cases
        .into_iter()
        .enumerate()
        .map(|(i, (what, bytes))| {
            let path = dir.join(format!("runbook-{i}.md"));
            std::fs::write(&path, bytes).unwrap();
            (what, path)
        })
        .collect()
}

fn assert_no_canary(what: &str, run: &Run, outputs: &[PathBuf]) {
    assert!(
        !run.stdout.contains(CANARY) && !run.stderr.contains(CANARY),
        "{what}: a canary secret was printed:\nstdout: {}\nstderr: {}",
        run.stdout,
        run.stderr
    );
    for path in outputs {
        let text = String::from_utf8_lossy(&std::fs::read(path).unwrap()).into_owned();
        assert!(
            !text.contains(CANARY),
            "{what}: {} holds a canary",
            path.display()
        );
    }
}

/// The files under `dir` that are not the test's own inputs: whatever a command wrote.
fn written_under(dir: &Path) -> Vec<PathBuf> {
    files_under(dir)
        .into_iter()
        .map(|(path, _)| path)
        .filter(|path| {
            !path.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.starts_with("previous-") || n.starts_with("target-") || n.starts_with("runbook-")
            }) && !path.components().any(|c| {
                c.as_os_str()
                    .to_str()
                    .is_some_and(|c| c.starts_with("previous-"))
            })
        })
        .collect()
}

#[test]
fn no_canary_secret_appears_in_any_output_whatever_input_is_broken_and_how() {
    let dir = tempfile::tempdir().unwrap();
    let target = workspace().join("fixtures/targets/node1.toml");
    let target = target.to_str().unwrap();
    for (what, previous) in broken_previous(dir.path()) {
        let run = xtask(&[
            "verify",
            "--target",
            target,
            "--previous",
            previous.to_str().unwrap(),
        ]);
        assert_eq!(
            run.code,
            exit_codes::USAGE,
            "--previous {what}: {}",
            run.stderr
        );
        assert_eq!(
            run.stderr.trim().lines().count(),
            1,
            "--previous {what}: one line: {}",
            run.stderr
        );
        assert_no_canary(
            &format!("--previous {what}"),
            &run,
            &written_under(dir.path()),
        );
    }
    for (what, file) in broken_targets(dir.path()) {
        let run = xtask(&["verify", "--target", file.to_str().unwrap()]);
        assert_eq!(
            run.code,
            exit_codes::USAGE,
            "target with {what}: {}",
            run.stderr
        );
        assert_eq!(
            run.stderr.trim().lines().count(),
            1,
            "target with {what}: {}",
            run.stderr
        );
        assert_no_canary(
            &format!("target with {what}"),
            &run,
            &written_under(dir.path()),
        );
    }
    for (what, file) in broken_runbooks(dir.path()) {
        for command in ["show", "check"] {
            let run = xtask(&["runbook", command, "--runbook", file.to_str().unwrap()]);
            assert_eq!(
                run.code,
                exit_codes::USAGE,
                "runbook {command}, {what}: {}",
                run.stderr
            );
            assert_eq!(
                run.stderr.trim().lines().count(),
                1,
                "runbook {command}, {what}: {}",
                run.stderr
            );
            assert_no_canary(
                &format!("runbook {command}, {what}"),
                &run,
                &written_under(dir.path()),
            );
        }
        let run = xtask(&["rehearse", "--runbook", file.to_str().unwrap()]);
        assert_eq!(
            run.code,
            exit_codes::USAGE,
            "rehearse, {what}: {}",
            run.stderr
        );
        assert_no_canary(
            &format!("rehearse, {what}"),
            &run,
            &written_under(dir.path()),
        );
    }
}

#[test]
fn broken_env_files_on_a_node_leave_no_canary_in_the_report_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    harness::replica_root::ReplicaRoot::create(
        &root,
        &harness::replica_root::NodeSecrets::generate(),
        &harness::replica_root::RootOptions::default(),
    )
    .unwrap();
    // Every .env of the node broken a different way, each around canary values.
    let env = canary_env();
    std::fs::write(
        root.join("gateway-bot/.env"),
        format!("{env}{CANARY}-no-equals\n"),
    )
    .unwrap();
    std::fs::write(
        root.join("services/router/.env"),
        [env.as_bytes(), b"\xff"].concat(),
    )
    .unwrap();
    std::fs::write(
        root.join("services/memory-service/.env"),
        format!("{CANARY} = spaced\n"),
    )
    .unwrap();
    let example = std::fs::read_to_string(workspace().join("fixtures/targets/node1.toml")).unwrap();
    let mut target = String::new();
    for line in example.lines() {
        if ["repo = ", "previous = ", "backups = ", "container = "]
            .iter()
            .any(|p| line.starts_with(p))
        {
            continue;
        }
        let line = if line.starts_with("root = ") {
            "root = \"root\"".to_string()
        } else if line.starts_with("timeout_ms") {
            "timeout_ms = 300".to_string()
        } else {
            line.replace("http://127.0.0.1:", "http://127.0.0.1:1")
                .replace("https://", "http://127.0.0.1:1/")
        };
        target.push_str(&line);
        target.push('\n');
    }
    let file = dir.path().join("node.toml");
    std::fs::write(&file, target).unwrap();
    let json = dir.path().join("out.json");
    let junit = dir.path().join("out.xml");
    let run = xtask(&[
        "verify",
        "--target",
        file.to_str().unwrap(),
        "--format",
        "table",
        "--format",
        &format!("json={}", json.display()),
        "--format",
        &format!("junit={}", junit.display()),
    ]);
    assert!(json.exists(), "{}", run.stderr);
    assert_no_canary(
        "verify of a node with broken .env files",
        &run,
        &[json, junit],
    );
}

#[test]
fn bad_flag_values_are_usage_errors_with_exit_2_and_no_panic() {
    for args in [
        &["rehearse", "--time-scale", "1e300"][..],
        &["rehearse", "--time-scale", "NaN"],
        &["rehearse", "--time-scale", "-1"],
        &["rehearse", "--operator-pace", "-1"],
        &["rehearse", "--operator-pace", "1e300"],
        &["rehearse", "--rate", "abc"],
        &["rehearse", "--rate", "inf"],
        &["rehearse", "--parallel", "0"],
        &["rehearse", "--random", "-3"],
        &["rehearse", "--only"],
        &["up", "--timeout", "abc"],
        &["up", "--timeout", "0"],
        &["bench", "rehearse", "--runs", "0"],
        &["verify", "--format", "yaml", "--replica"],
        &["verify", "--format", "json=", "--replica"],
        &["verify", "--since", "yesterday", "--replica"],
        &["verify"],
        &["runbook", "show", "--format", "xml"],
        &["runbook", "explain"],
        &["rehears"],
    ] {
        let run = xtask(args);
        assert_eq!(run.code, exit_codes::USAGE, "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.starts_with("error: "),
            "{args:?}: {}",
            run.stderr
        );
        assert!(!run.stderr.contains("panicked"), "{args:?}: {}", run.stderr);
    }
}

#[test]
fn a_time_scale_out_of_range_names_the_range_in_one_line() {
    let run = xtask(&["rehearse", "--time-scale", "1e300"]);
    assert_eq!(
        run.stderr.lines().next().unwrap(),
        "error: invalid value '1e300' for '--time-scale <F>': 1e300 is out of range: from 0.001 to 10"
    );
}

#[test]
fn verify_output_paths_are_checked_before_any_check_runs() {
    let dir = tempfile::tempdir().unwrap();
    let target = workspace().join("fixtures/targets/node1.toml");
    for (format, reason) in [
        (
            "json=/nonexistent/x.json".to_string(),
            "its directory does not exist",
        ),
        (
            format!("json={}", dir.path().display()),
            "it is a directory",
        ),
    ] {
        let run = xtask(&[
            "verify",
            "--target",
            target.to_str().unwrap(),
            "--format",
            &format,
        ]);
        assert_eq!(run.code, exit_codes::USAGE, "{format}: {}", run.stderr);
        assert_eq!(
            run.stderr.trim(),
            format!("error: --format {format}: {reason}")
        );
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing left in the directory"
    );
}

#[test]
fn rehearse_reports_directory_is_checked_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let run = xtask(&["rehearse", "--out", file.to_str().unwrap()]);
    assert_eq!(run.code, exit_codes::USAGE, "{}", run.stderr);
    assert!(run.stderr.contains("nothing was started"), "{}", run.stderr);
}

#[test]
fn a_target_type_error_names_file_line_and_field_path_but_not_the_value() {
    let dir = tempfile::tempdir().unwrap();
    let targets = broken_targets(dir.path());
    let (_, port) = targets.iter().find(|(w, _)| w == "postgres.port").unwrap();
    let run = xtask(&["verify", "--target", port.to_str().unwrap()]);
    assert_eq!(
        run.stderr.trim(),
        format!(
            "error: {}:57: field `postgres.port`: expected u16, found a string",
            port.display()
        )
    );
}

#[test]
fn a_fence_that_never_closes_is_an_error_at_its_opening_line() {
    let dir = tempfile::tempdir().unwrap();
    let shipped =
        std::fs::read_to_string(workspace().join(harness::runbook::DEFAULT_RUNBOOK)).unwrap();
    // Phase 2's first block loses its closing fence: the rest of the file would be its code.
    let opening = shipped.find("```bash\n   # In Router .env").unwrap();
    let close = opening + shipped[opening + 3..].find("```").unwrap() + 3;
    let text = format!("{}{}", &shipped[..close], &shipped[close + 3..]);
    let path = dir.path().join("unclosed.md");
    std::fs::write(&path, &text).unwrap();
    let line = shipped[..opening].matches('\n').count() + 1;
    let run = xtask(&["runbook", "show", "--runbook", path.to_str().unwrap()]);
    assert_eq!(run.code, exit_codes::USAGE);
    assert!(
        run.stderr.starts_with(&format!(
            "error: {}:{line}: the code fence opened here is never closed",
            path.display()
        )),
        "{}",
        run.stderr
    );
}

#[test]
fn a_runbook_that_is_not_utf8_is_reported_with_line_and_byte_offset() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("latin1.md");
    std::fs::write(&path, b"# Runbook\n\nCaf\xe9\n").unwrap();
    let run = xtask(&["runbook", "show", "--runbook", path.to_str().unwrap()]);
    assert_eq!(run.code, exit_codes::USAGE);
    assert_eq!(
        run.stderr.trim(),
        format!(
            "error: {}:3: runbook: not UTF-8 text (the first bad byte is at byte offset 14, line 3)",
            path.display()
        )
    );
}

#[test]
fn a_runbook_over_the_size_limit_is_one_line_and_read_no_further() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.md");
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(harness::runbook::RUNBOOK_MAX_BYTES + 1)
        .unwrap();
    let run = xtask(&["runbook", "check", "--runbook", path.to_str().unwrap()]);
    assert_eq!(run.code, exit_codes::USAGE);
    assert_eq!(
        run.stderr.trim(),
        format!(
            "error: {}: runbook: it is larger than {} bytes, the most this command reads",
            path.display(),
            harness::runbook::RUNBOOK_MAX_BYTES
        )
    );
}

#[test]
fn runbook_check_on_a_huge_changed_runbook_prints_a_bounded_report() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.md");
    std::fs::write(&path, harness::runbook::synthetic(1_000_000)).unwrap();
    let run = xtask(&["runbook", "check", "--runbook", path.to_str().unwrap()]);
    assert_eq!(run.code, exit_codes::RUNBOOK_CHANGED);
    assert!(
        run.stderr.len() < 20_000,
        "{} bytes of stderr",
        run.stderr.len()
    );
    assert!(run.stderr.contains("more differences"), "{}", run.stderr);
}
