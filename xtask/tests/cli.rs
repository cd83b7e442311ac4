//! `cargo xtask` as a user meets it: the task list, usage errors and a missing Docker engine,
//! each with its documented exit code.

use std::process::Command;

use harness::exit_codes;

fn xtask(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .output()
        .expect("xtask runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn no_arguments_lists_every_task() {
    let (code, stdout, _) = xtask(&[]);
    assert_eq!(code, exit_codes::OK);
    for task in [
        "images", "up", "status", "down", "test", "runbook", "bench", "report",
    ] {
        assert!(
            stdout.contains(&format!("  {task} ")),
            "task {task} missing:\n{stdout}"
        );
    }
}

#[test]
fn an_unknown_task_is_a_usage_error() {
    let (code, _, stderr) = xtask(&["rehears"]);
    assert_eq!(code, exit_codes::USAGE);
    assert!(
        stderr.contains("unrecognized subcommand 'rehears'"),
        "{stderr}"
    );
}

#[test]
fn without_a_docker_engine_status_names_docker_host_and_exits_no_docker() {
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("status")
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .expect("xtask runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(exit_codes::NO_DOCKER), "{stderr}");
    assert!(stderr.contains("DOCKER_HOST"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one clear line: {stderr}");
}

/// A copy of the shipped runbook and its lock in a fresh directory.
fn runbook_copy(dir: &std::path::Path) -> (String, String) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap();
    let runbook = dir.join("runbook.md");
    let lock = dir.join("runbook.lock");
    std::fs::copy(
        root.join("fixtures/runbook/SECRETS_ROTATION_RUNBOOK.md"),
        &runbook,
    )
    .unwrap();
    std::fs::copy(root.join("scenarios/runbook.lock"), &lock).unwrap();
    (runbook.display().to_string(), lock.display().to_string())
}

/// A directory of one test's own under the system's temporary directory, removed when the
/// test ends, whether it passed or panicked.
struct TestDir(std::path::PathBuf);

impl std::ops::Deref for TestDir {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn temp_dir(name: &str) -> TestDir {
    let dir = std::env::temp_dir().join(format!("xtask-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    TestDir(dir)
}

#[test]
fn runbook_check_passes_on_the_shipped_runbook_and_its_lock() {
    let (code, stdout, stderr) = xtask(&["runbook", "check"]);
    assert_eq!(code, exit_codes::OK, "{stderr}");
    assert!(stdout.contains("matches"), "{stdout}");
}

#[test]
fn runbook_check_fails_with_its_own_exit_code_naming_the_changed_step_until_accepted() {
    let dir = temp_dir("check");
    let (runbook, lock) = runbook_copy(&dir);
    let text = std::fs::read_to_string(&runbook).unwrap();
    std::fs::write(&runbook, text.replace("sleep 5", "sleep 10")).unwrap();
    let (code, _, stderr) = xtask(&["runbook", "check", "--runbook", &runbook, "--lock", &lock]);
    assert_eq!(code, exit_codes::RUNBOOK_CHANGED, "{stderr}");
    assert!(stderr.contains("changed  phase3.step3"), "{stderr}");
    assert!(
        stderr.contains("scenarios to re-review: facts/"),
        "{stderr}"
    );

    let (code, stdout, _) = xtask(&["runbook", "accept", "--runbook", &runbook, "--lock", &lock]);
    assert_eq!(code, exit_codes::OK);
    assert!(stdout.contains("updated"), "{stdout}");
    let (code, _, stderr) = xtask(&["runbook", "check", "--runbook", &runbook, "--lock", &lock]);
    assert_eq!(code, exit_codes::OK, "{stderr}");
}

#[test]
fn whitespace_only_runbook_edits_pass_the_check() {
    let dir = temp_dir("ws");
    let (runbook, lock) = runbook_copy(&dir);
    let text = std::fs::read_to_string(&runbook).unwrap();
    let spaced: String = text.lines().map(|l| format!("{l}  \n")).collect();
    std::fs::write(&runbook, spaced.replace("sleep 5", "sleep  5")).unwrap();
    let (code, _, stderr) = xtask(&["runbook", "check", "--runbook", &runbook, "--lock", &lock]);
    assert_eq!(code, exit_codes::OK, "{stderr}");
}

#[test]
fn a_malformed_runbook_is_one_line_with_file_and_line_and_a_usage_exit() {
    let dir = temp_dir("bad");
    let runbook = dir.join("bad.md");
    std::fs::write(&runbook, "# Runbook\n\nNo phases here.\n").unwrap();
    let (code, _, stderr) = xtask(&["runbook", "show", "--runbook", runbook.to_str().unwrap()]);
    assert_eq!(code, exit_codes::USAGE);
    assert_eq!(
        stderr.trim(),
        format!(
            "error: {}:1: no phases: expected headings like `### Phase 1: Preparation (5 min)`",
            runbook.display()
        )
    );
}

#[test]
fn runbook_show_json_has_steps_findings_and_coverage() {
    let (code, stdout, _) = xtask(&["runbook", "show", "--format", "json"]);
    assert_eq!(code, exit_codes::OK);
    let doc: serde_json::Value = serde_json::from_str(&stdout).expect("valid JSON");
    assert_eq!(doc["runbook"]["phases"].as_array().unwrap().len(), 5);
    assert!(doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["id"] == "unknown-subcommand@phase4.step1"));
    assert_eq!(doc["coverage"]["secrets"].as_array().unwrap().len(), 10);
}

#[test]
fn verify_with_an_unknown_only_id_is_a_usage_error_listing_close_matches() {
    let (code, _, stderr) = xtask(&["verify", "--replica", "--only", "postgres.auth.curent.*"]);
    assert_eq!(code, exit_codes::USAGE);
    assert!(
        stderr.contains("did you mean postgres.auth.current."),
        "{stderr}"
    );
}

#[test]
fn verify_with_a_missing_target_file_names_it() {
    let (code, _, stderr) = xtask(&["verify", "--target", "/nonexistent/node.toml"]);
    assert_eq!(code, exit_codes::USAGE);
    assert!(stderr.contains("/nonexistent/node.toml"), "{stderr}");
}

/// A target file for a node whose root is `dir/root` (created) and whose every address is
/// 127.0.0.1:`port`, each check within `timeout_ms`.
fn target_at(dir: &std::path::Path, name: &str, port: u16, timeout_ms: u64) -> String {
    if !dir.join("root").exists() {
        harness::replica_root::ReplicaRoot::create(
            dir.join("root"),
            &harness::replica_root::NodeSecrets::generate(),
            &harness::replica_root::RootOptions::default(),
        )
        .unwrap();
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap();
    let example = std::fs::read_to_string(root.join("fixtures/targets/node1.toml")).unwrap();
    let address = format!(":{port}");
    let url = format!("http://127.0.0.1:{port}");
    let mut target = String::new();
    for line in example.lines() {
        let line = if line.starts_with("root = ") {
            format!("root = \"{}\"", dir.join("root").display())
        } else if line.starts_with("name = ") {
            format!("name = \"{name}\"")
        } else if line.starts_with("repo = ")
            || line.starts_with("previous = ")
            || line.starts_with("backups = ")
            || line.starts_with("container = ")
        {
            continue;
        } else if line.starts_with("timeout_ms") {
            format!("timeout_ms = {timeout_ms}")
        } else if line.starts_with("port = ") {
            format!("port = {port}")
        } else {
            line.replace(":9300", &address)
                .replace(":9102", &address)
                .replace(":8000", &address)
                .replace(":9090", &address)
                .replace(":9091", &address)
                .replace(":4222", &address)
                .replace(":8222", &address)
                .replace("https://api.deepseek.com", &url)
                .replace("https://api.mistral.ai", &url)
                .replace("https://api.x.ai", &url)
                .replace("https://api.cohere.com", &url)
        };
        target.push_str(&line);
        target.push('\n');
    }
    target
}

#[test]
fn verify_against_an_unreachable_node_reports_unreachable_per_check_within_the_timeout() {
    let dir = temp_dir("unreachable");
    let target = target_at(&dir, "node1", 1, 1500);
    let file = dir.join("down.toml");
    std::fs::write(&file, target).unwrap();
    let json = dir.join("out.json");
    let (code, _, stderr) = xtask(&[
        "verify",
        "--target",
        file.to_str().unwrap(),
        "--format",
        &format!("json={}", json.display()),
    ]);
    assert_eq!(code, exit_codes::UNREACHABLE, "{stderr}");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let results = doc["targets"][0]["results"].as_array().unwrap();
    for id in [
        "health.gateway",
        "postgres.auth.current.router",
        "nats.auth.current.gateway",
        "nats.jetstream.healthy",
        "provider.key.current.grok",
    ] {
        let r = results.iter().find(|r| r["id"] == id).unwrap();
        assert_eq!(r["outcome"], "error", "{r}");
        assert!(
            r["evidence"]
                .as_str()
                .unwrap()
                .starts_with("unreachable 127.0.0.1:1"),
            "{r}"
        );
        assert!(
            r["duration_ms"].as_u64().unwrap() <= 1600,
            "within its timeout: {r}"
        );
    }
}

#[test]
fn verify_openmetrics_of_an_unreachable_node_reads_back_as_every_check_failed_and_the_node_unreached(
) {
    let dir = temp_dir("openmetrics");
    let file = dir.join("down.toml");
    std::fs::write(&file, target_at(&dir, "node1", 1, 1500)).unwrap();
    let (code, stdout, stderr) = xtask(&[
        "verify",
        "--target",
        file.to_str().unwrap(),
        "--format",
        "openmetrics",
    ]);
    assert_eq!(code, exit_codes::UNREACHABLE, "{stderr}");
    let parsed = openmetrics_parser::openmetrics::parse_openmetrics(&stdout)
        .unwrap_or_else(|e| panic!("{e:?}\n{stdout}"));
    assert_eq!(
        parsed.families.len(),
        8,
        "every family, each parsed:\n{stdout}"
    );
    for line in [
        "rotation_verify_check_success{target=\"node1\",check=\"health.gateway\",service=\"gateway\"} 0",
        "rotation_verify_check_outcome{target=\"node1\",check=\"health.gateway\",service=\"gateway\",outcome=\"error\"} 1",
        "rotation_verify_target_reachable{target=\"node1\"} 0",
        "rotation_verify_exit_code 6",
    ] {
        assert!(stdout.lines().any(|l| l == line), "{line}\n{stdout}");
    }
}

#[test]
fn verify_watch_shows_each_change_serves_the_round_as_openmetrics_and_records_the_operators_note_until_sigterm(
) {
    use std::io::{BufRead, BufReader, Write};
    let dir = temp_dir("watch");
    let file = dir.join("down.toml");
    std::fs::write(&file, target_at(&dir, "node1", 1, 1000)).unwrap();
    let out = dir.join("record");
    let mut child = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args([
            "verify",
            "--target",
            file.to_str().unwrap(),
            "--only",
            "health.*",
        ])
        .args(["--watch", "--interval", "1", "--out", out.to_str().unwrap()])
        .args(["--listen", "127.0.0.1:0"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let metrics_url = loop {
        let mut line = String::new();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "{seen}");
        seen.push_str(&line);
        if let Some(url) = line
            .trim()
            .strip_prefix("verify --watch: serving the last round at ")
        {
            break url.to_string();
        }
    };
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    // The first round: one line per check, each its first outcome.
    let mut first = Vec::new();
    for _ in 0..5 {
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        first.push(line);
    }
    // The round is served as OpenMetrics once it is recorded.
    let metrics = http_get(&metrics_url);
    assert!(
        metrics.starts_with("HTTP/1.1 200 OK\r\n")
            && metrics.contains("content-type: application/openmetrics-text; version=1.0.0"),
        "{metrics}"
    );
    let body = metrics.split_once("\r\n\r\n").unwrap().1;
    openmetrics_parser::openmetrics::parse_openmetrics(body)
        .unwrap_or_else(|e| panic!("{e:?}\n{body}"));
    assert!(body.contains(
        "rotation_verify_check_success{target=\"node1\",check=\"health.gateway\",service=\"gateway\"} 0\n"
    ), "{body}");
    child
        .stdin
        .as_mut()
        .unwrap()
        .write_all(b"router recreated\n")
        .unwrap();
    while !seen.contains("mark: router recreated") {
        let mut line = String::new();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "{seen}");
        seen.push_str(&line);
    }
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(exit_codes::UNREACHABLE), "{seen}");
    let ids: Vec<&str> = first
        .iter()
        .map(|l| {
            l.split_once("] ")
                .and_then(|(_, rest)| rest.split(' ').next())
                .unwrap_or("")
        })
        .collect();
    assert_eq!(
        ids,
        [
            "health.gateway:",
            "health.router:",
            "health.memory-service:",
            "health.crewai-nats-worker:",
            "health.parser-pipeline:"
        ],
        "{first:?}"
    );
    assert!(
        first[0].contains("] health.gateway: error (unreachable 127.0.0.1:1"),
        "{first:?}"
    );
    let journal: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("journal.json")).unwrap()).unwrap();
    assert_eq!(journal["kind"], "watch");
    assert_eq!(journal["target"], "node1");
    assert_eq!(journal["marks"][0]["text"], "router recreated");
    assert_eq!(journal["checks"].as_array().unwrap().len(), 5);
    assert_eq!(journal["exit_code"], exit_codes::UNREACHABLE);
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.starts_with("# Watch of node1\n"), "{report}");
    let page = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(
        page.starts_with("<!doctype html>")
            && page.contains("<h1>Watch of <code>node1</code></h1>"),
        "{page}"
    );
}

/// The whole response to `GET url` (`http://HOST:PORT/PATH`), over HTTP/1.1 with
/// `Connection: close`.
fn http_get(url: &str) -> String {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    write!(
        stream,
        "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn verify_watch_of_two_nodes_is_a_usage_error() {
    let dir = temp_dir("watch-two");
    let a = dir.join("a.toml");
    let b = dir.join("b.toml");
    std::fs::write(&a, target_at(&dir, "a", 1, 500)).unwrap();
    std::fs::write(&b, target_at(&dir, "b", 1, 500)).unwrap();
    let (code, _, stderr) = xtask(&[
        "verify",
        "--target",
        a.to_str().unwrap(),
        "--target",
        b.to_str().unwrap(),
        "--watch",
    ]);
    assert_eq!(code, exit_codes::USAGE, "{stderr}");
    assert_eq!(
        stderr.trim_end(),
        "error: --watch watches one node: give one --target or --replica (2 given)"
    );
}

#[test]
fn rehearse_list_names_every_scenario_with_its_expected_outcome() {
    let (code, stdout, _) = xtask(&["rehearse", "--list"]);
    assert_eq!(code, exit_codes::OK);
    let ids: Vec<&str> = stdout
        .lines()
        .filter(|l| !l.starts_with("faults/"))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(
        ids,
        [
            "prepare",
            "rollback/after-prepare",
            "rotate/deepseek",
            "rollback/after-deepseek",
            "rotate/postgres",
            "rollback/after-postgres",
            "rotate/nats",
            "rollback/after-nats",
            "verify",
            "rotation",
        ],
        "{stdout}"
    );
    assert!(
        stdout.contains("rotate/postgres          expected detected"),
        "its outcome as the runbook's lock accepts it:\n{stdout}"
    );
    assert!(stdout.lines().any(|l| l.starts_with("faults/")), "{stdout}");
}

#[test]
fn rehearse_with_a_runbook_that_does_not_parse_starts_nothing() {
    let dir = temp_dir("rehearse-bad");
    let runbook = dir.join("bad.md");
    std::fs::write(
        &runbook,
        "## Rotation Procedure\n\n### Phase 1: P (5 min)\n\n- **Backup:** no number\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["rehearse", "--runbook", runbook.to_str().unwrap()])
        // No engine either: a parse error must come first, before anything is started.
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(exit_codes::USAGE), "{stderr}");
    assert!(
        stderr.contains("bad.md:5: step without a number"),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was started"), "{stderr}");
}

/// A directory for `PATH` holding the docker CLI and, of `programs`, those this machine has:
/// everything but what a test leaves out.
fn path_with(programs: &[&str]) -> tempfile::TempDir {
    let bin = tempfile::tempdir().unwrap();
    for program in std::iter::once(&"docker").chain(programs) {
        let found = ["/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin"]
            .into_iter()
            .map(|d| std::path::Path::new(d).join(program))
            .find(|p| p.exists());
        if let Some(found) = found {
            std::os::unix::fs::symlink(found, bin.path().join(program)).unwrap();
        }
    }
    bin
}

/// `rehearse --only prepare` with `PATH` set to `bin` (and `env`), its exit code and the last
/// line of its stderr, checking that it stopped before building anything.
fn rehearse_with_path(bin: &tempfile::TempDir, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let started = std::time::Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["rehearse", "--only", "prepare", "--out"])
        .arg(bin.path().join("out"))
        .env("PATH", bin.path())
        .envs(env.iter().copied())
        .output()
        .expect("xtask runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "it stopped before building anything: {stderr}"
    );
    let last = stderr.trim().lines().last().unwrap_or("").to_string();
    (out.status.code(), last)
}

/// The runbook's host programs and the image's builder, all but Compose.
const ALL_BUT_COMPOSE: &[&str] = &["curl", "openssl", "psql", "mmdebstrap", "newuidmap"];

#[test]
fn rehearse_without_compose_as_root_told_not_to_install_names_the_apt_line() {
    let mut programs = ALL_BUT_COMPOSE.to_vec();
    programs.push("apt-get");
    let bin = path_with(&programs);
    let (code, last) = rehearse_with_path(&bin, &[(harness::host_tools::NO_INSTALL_VARIABLE, "1")]);
    assert_eq!(code, Some(exit_codes::PREREQUISITE_MISSING), "{last}");
    // SAFETY: geteuid has no preconditions.
    let sudo = if unsafe { libc::geteuid() } == 0 {
        ""
    } else {
        "sudo "
    };
    assert_eq!(
        last,
        format!(
            "error: missing on this host: docker-compose (the replica's Compose project): run \
             `{sudo}apt-get install docker-compose`"
        )
    );
}

#[test]
fn rehearse_without_compose_or_apt_names_the_debian_package() {
    let bin = path_with(ALL_BUT_COMPOSE);
    let (code, last) = rehearse_with_path(&bin, &[]);
    assert_eq!(code, Some(exit_codes::PREREQUISITE_MISSING), "{last}");
    assert_eq!(
        last,
        "error: missing on this host: docker-compose (the replica's Compose project): no apt-get \
         here: install them with this system's package manager (Debian packages: docker-compose)"
    );
}

/// A shard's journal (K of 2, of the selection `a`, `b`) holding the scenarios `ids`, written to
/// `dir/journal.json`.
fn shard_journal(dir: &std::path::Path, index: usize, ids: &[&str], fingerprint: &str) {
    use rehearsal::journal::{ScenarioRecord, ShardInfo};
    use rehearsal::Expected;
    let records = ids
        .iter()
        .map(|id| {
            let mut r = ScenarioRecord::new(id, id, Expected::Holds, std::time::UNIX_EPOCH);
            r.actual = Some(rehearsal::Outcome::Holds);
            r.met = true;
            r
        })
        .collect();
    let mut j = rehearsal::samples::journal(records, 1000);
    j.runbook_fingerprint = fingerprint.into();
    j.shard = Some(ShardInfo {
        index,
        count: 2,
        selection: vec!["a".into(), "b".into()],
    });
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("journal.json"), serde_json::to_string(&j).unwrap()).unwrap();
}

#[test]
fn report_merge_joins_shards_and_refuses_shards_of_another_runbook_with_usage() {
    let tmp = tempfile::tempdir().unwrap();
    let (one, two, out) = (
        tmp.path().join("1"),
        tmp.path().join("2"),
        tmp.path().join("out"),
    );
    shard_journal(&one, 1, &["b"], "0123456789abcdef");
    shard_journal(&two, 2, &["a"], "0123456789abcdef");
    let merge = |dirs: &[&std::path::Path]| {
        let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(["report", "merge"])
            .args(dirs)
            .arg("--out")
            .arg(tmp.path().join("out"))
            .output()
            .expect("xtask runs");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stderr) = merge(&[&one, &two]);
    assert_eq!(code, exit_codes::OK, "{stderr}");
    let merged: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("journal.json")).unwrap()).unwrap();
    let ids: Vec<&str> = merged["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a", "b"]);
    for report in ["report.html", "report.md", "junit.xml"] {
        assert!(out.join(report).exists(), "{report}");
    }

    shard_journal(&two, 2, &["a"], "fedcba9876543210");
    let (code, stderr) = merge(&[&one, &two]);
    assert_eq!(code, exit_codes::USAGE);
    assert_eq!(
        stderr.trim(),
        format!(
            "error: the shards rehearsed different runbooks: {} has fingerprint 0123456789abcdef, {} has fedcba9876543210",
            one.join("journal.json").display(),
            two.join("journal.json").display()
        )
    );
}

#[test]
fn report_compare_puts_each_secrets_scenario_of_both_runbooks_side_by_side() {
    use rehearsal::journal::ScenarioRecord;
    use rehearsal::Expected;
    let tmp = tempfile::tempdir().unwrap();
    let write = |dir: &str, runbook: &str, id: &str, actual: Expected| {
        let mut r = ScenarioRecord::new(id, id, actual, std::time::UNIX_EPOCH);
        r.actual = Some(actual.into());
        let mut j = rehearsal::samples::journal(vec![r], 1000);
        j.runbook = runbook.into();
        let dir = tmp.path().join(dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("journal.json"), serde_json::to_string(&j).unwrap()).unwrap();
        dir
    };
    let a = write(
        "a",
        "fixtures/runbook/SECRETS_ROTATION_RUNBOOK.md",
        "rotate/postgres",
        Expected::Detected,
    );
    let b = write(
        "b",
        "fixtures/runbook/SECRETS_ROTATION_RUNBOOK.v2.md",
        "rotate/postgres",
        Expected::Holds,
    );
    let (code, stdout, stderr) = xtask(&[
        "report",
        "compare",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
    ]);
    assert_eq!(code, exit_codes::OK, "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("| PostgreSQL Password |"))
        .expect("a PostgreSQL row");
    assert_eq!(
        lines[at],
        "| PostgreSQL Password | A: SECRETS_ROTATION_RUNBOOK.md | `rotate/postgres` | detected | 0 / 0 / 0 | 0 of 0 | 0 of 0 | 0.0 / 0.0 / 0.0 s | none | 0 |"
    );
    assert_eq!(
        lines[at + 1],
        "| | B: SECRETS_ROTATION_RUNBOOK.v2.md | `rotate/postgres` | holds | 0 / 0 / 0 | 0 of 0 | 0 of 0 | 0.0 / 0.0 / 0.0 s | none | 0 |"
    );

    let (code, _, stderr) = xtask(&[
        "report",
        "compare",
        a.to_str().unwrap(),
        tmp.path().join("nowhere").to_str().unwrap(),
    ]);
    assert_eq!(code, exit_codes::USAGE);
    assert_eq!(
        stderr.trim(),
        format!(
            "error: {}: cannot read it: No such file or directory (os error 2)",
            tmp.path().join("nowhere").display()
        )
    );
}

#[test]
fn report_compare_of_a_rehearsal_and_a_watch_puts_each_phase_side_by_side() {
    use harness::checks::watch::Watch;
    use harness::checks::{CheckResult, Outcome};
    use rehearsal::journal::{ScenarioRecord, StepRecord};
    use rehearsal::probe::{DownSpan, ProbeReport};
    use rehearsal::Expected;
    let tmp = tempfile::tempdir().unwrap();
    let mut rotation = ScenarioRecord::new(
        "rotation",
        "rotation",
        Expected::Holds,
        std::time::UNIX_EPOCH,
    );
    for (id, from, to) in [("phase3.step1", 0, 1_500), ("phase3.step2", 1_500, 4_000)] {
        let mut step = StepRecord::new(id, id);
        (step.started_ms, step.ended_ms) = (from, to);
        rotation.steps.push(step);
    }
    let mut probe = ProbeReport {
        duration_ms: 5_000,
        ..ProbeReport::default()
    };
    probe.containers_down.insert(
        "router".into(),
        vec![DownSpan {
            from_ms: 2_000,
            to_ms: Some(2_700),
        }],
    );
    rotation.probe = Some(probe);
    let rehearsal = tmp.path().join("rehearsal");
    std::fs::create_dir_all(&rehearsal).unwrap();
    let journal = rehearsal::samples::journal(vec![rotation], 5_000);
    std::fs::write(
        rehearsal.join("journal.json"),
        serde_json::to_string(&journal).unwrap(),
    )
    .unwrap();
    let health = |outcome| CheckResult {
        target: "node1".into(),
        id: "health.router".into(),
        service: "router".into(),
        outcome,
        evidence: String::new(),
        duration_ms: 3,
        unreachable: false,
    };
    let mut watch = Watch::new("node1", "2026-12-07T14:00:00Z".into(), 2_000);
    watch.record_round(2_000, &[health(Outcome::Pass)]);
    watch.mark(3_000, Some("phase3.step1".into()), "Rotate".into());
    watch.record_round(40_000, &[health(Outcome::Error)]);
    watch.record_round(44_000, &[health(Outcome::Pass)]);
    watch.record_round(63_000, &[health(Outcome::Pass)]);
    let watched = tmp.path().join("watch");
    std::fs::create_dir_all(&watched).unwrap();
    std::fs::write(
        watched.join("journal.json"),
        watch.journal(&harness::redact::Redactor::new()),
    )
    .unwrap();
    let (code, stdout, stderr) = xtask(&[
        "report",
        "compare",
        rehearsal.to_str().unwrap(),
        watched.to_str().unwrap(),
    ]);
    assert_eq!(code, exit_codes::OK, "{stderr}");
    assert!(
        stdout.ends_with(
            "| phase3 | 4.0 s | 60.0 s | router 0.7 s | router 4.0 s | `health.router` 4.0 s |\n\n\
             Every secret's own checks passed throughout the watch.\n"
        ),
        "{stdout}"
    );
    let (code, _, stderr) = xtask(&[
        "report",
        "compare",
        rehearsal.to_str().unwrap(),
        watched.to_str().unwrap(),
        "--html",
        tmp.path().join("x.html").to_str().unwrap(),
    ]);
    assert_eq!(code, exit_codes::USAGE);
    assert_eq!(
        stderr.trim(),
        "error: --html renders two rehearsals; B is a watch (its table is on stdout and in --out)"
    );
}

#[test]
fn three_shards_list_every_scenario_of_the_selection_exactly_once() {
    let ids = |args: &[&str]| -> Vec<String> {
        let (code, stdout, stderr) = xtask(args);
        assert_eq!(code, exit_codes::OK, "{stderr}");
        stdout
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_string)
            .collect()
    };
    let mut whole = ids(&["rehearse", "--only", "*", "--list"]);
    let mut sharded: Vec<String> = (1..=3)
        .flat_map(|k| {
            ids(&[
                "rehearse",
                "--only",
                "*",
                "--list",
                "--shard",
                &format!("{k}/3"),
            ])
        })
        .collect();
    assert!(whole.len() > 50, "{whole:?}");
    whole.sort();
    sharded.sort();
    assert_eq!(sharded, whole);
    let (code, _, stderr) = xtask(&["rehearse", "--shard", "4/3", "--list"]);
    assert_eq!(code, exit_codes::USAGE, "{stderr}");
}

#[test]
fn a_fleet_directory_is_verified_a_bounded_number_at_a_time_each_node_within_its_own_deadline() {
    let dir = temp_dir("fleet");
    // A node that accepts connections and never answers: without a deadline per node each
    // check would wait out its own 30 s.
    let hanging = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = hanging.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in hanging.incoming().flatten() {
            held.push(conn);
        }
    });
    let fleet = dir.join("fleet");
    std::fs::create_dir_all(&fleet).unwrap();
    for name in ["node-b", "node-a", "node-c"] {
        std::fs::write(
            fleet.join(format!("{name}.toml")),
            target_at(&dir, name, port, 30_000),
        )
        .unwrap();
    }
    std::fs::write(fleet.join("README.md"), "not a target").unwrap();
    let json = dir.join("fleet.json");
    let (code, stdout, stderr) = xtask(&[
        "verify",
        "--targets",
        fleet.to_str().unwrap(),
        "--only",
        "health.*",
        "--jobs",
        "2",
        "--target-timeout",
        "1",
        "--format",
        "table",
        "--format",
        &format!("json={}", json.display()),
    ]);
    assert_eq!(code, exit_codes::UNREACHABLE, "{stderr}");
    assert!(
        stderr.contains("5 checks on 3 target(s), 2 at a time"),
        "{stderr}"
    );
    let headers: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("target "))
        .collect();
    assert_eq!(
        headers,
        [
            "target node-a: unreachable (0 passed, 0 failed, 0 skipped, 5 errors)",
            "target node-b: unreachable (0 passed, 0 failed, 0 skipped, 5 errors)",
            "target node-c: unreachable (0 passed, 0 failed, 0 skipped, 5 errors)",
        ]
    );
    assert_eq!(
        stdout.lines().last(),
        Some("fleet: 3 nodes: 0 passed, 0 failed, 3 unreachable")
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(
        doc["fleet"],
        serde_json::json!({"nodes": 3, "passed": 0, "failed": 0, "unreachable": 3})
    );
    for node in doc["targets"].as_array().unwrap() {
        for r in node["results"].as_array().unwrap() {
            assert_eq!(
                r["evidence"], "the node's time in the fleet run ran out (--target-timeout)",
                "{r}"
            );
            assert!(r["duration_ms"].as_u64().unwrap() < 2_000, "{r}");
        }
    }
}

#[test]
fn a_fleet_directory_without_targets_or_with_two_nodes_of_one_name_is_a_usage_error() {
    let dir = temp_dir("fleet-bad");
    let fleet = dir.join("fleet");
    std::fs::create_dir_all(&fleet).unwrap();
    let (code, _, stderr) = xtask(&["verify", "--targets", fleet.to_str().unwrap()]);
    assert_eq!(code, exit_codes::USAGE);
    assert!(stderr.contains("no *.toml target file in it"), "{stderr}");
    for file in ["one.toml", "two.toml"] {
        std::fs::write(fleet.join(file), target_at(&dir, "node1", 1, 1000)).unwrap();
    }
    let (code, _, stderr) = xtask(&["verify", "--targets", fleet.to_str().unwrap()]);
    assert_eq!(code, exit_codes::USAGE);
    assert!(stderr.contains("two targets are named `node1`"), "{stderr}");
}

#[test]
fn a_node_whose_ssh_transport_refuses_is_unreachable_with_sshs_reason_and_the_others_are_verified()
{
    let dir = temp_dir("ssh-refused");
    // A port nothing listens on: bound, then closed.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let over_ssh = target_at(&dir, "node-ssh", port, 2_000).replacen(
        "\n[services.gateway]",
        &format!("transport = \"ssh://ops@127.0.0.1:{port}\"\n\n[services.gateway]"),
        1,
    );
    let (ssh_toml, local_toml) = (dir.join("node-ssh.toml"), dir.join("node-local.toml"));
    std::fs::write(&ssh_toml, over_ssh).unwrap();
    std::fs::write(&local_toml, target_at(&dir, "node-local", port, 2_000)).unwrap();
    let (code, stdout, stderr) = xtask(&[
        "verify",
        "--target",
        ssh_toml.to_str().unwrap(),
        "--target",
        local_toml.to_str().unwrap(),
        "--only",
        "env.no-old-keys",
    ]);
    assert_eq!(code, exit_codes::UNREACHABLE, "{stdout}\n{stderr}");
    let reason = format!(
        "ssh://ops@127.0.0.1:{port}: ssh: connect to host 127.0.0.1 port {port}: Connection refused"
    );
    assert!(
        stderr.contains(&format!(
            "verify: node-ssh is unreachable ({reason}); its checks are not run"
        )),
        "{stderr}"
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[0],
        format!(
            "target node-ssh over ssh://ops@127.0.0.1:{port}: unreachable (0 passed, 0 failed, 0 skipped, 1 errors)"
        )
    );
    assert!(
        lines[1].contains(&format!("unreachable {reason}")),
        "{stdout}"
    );
    assert_eq!(
        lines[2],
        "target node-local: passed (1 passed, 0 failed, 0 skipped, 0 errors)"
    );
}

#[test]
fn an_ssh_target_with_a_password_in_its_transport_or_a_relative_node_path_is_refused_at_its_line() {
    let dir = temp_dir("ssh-bad");
    let example = target_at(&dir, "node", 1, 1_000);
    for (transport, root, expected) in [
        (
            "ssh://ops:hunter2@node1",
            None,
            "field `transport`: expected `local` or `ssh://[user@]host[:port]` (a user, no password)",
        ),
        (
            "ssh://ops@node1",
            Some("root = \"opt/microdao-daarion\""),
            "field `root`: `opt/microdao-daarion` is relative, but over SSH the node's paths are absolute",
        ),
    ] {
        let mut text = example.replacen(
            "\n[services.gateway]",
            &format!("transport = \"{transport}\"\n\n[services.gateway]"),
            1,
        );
        if let Some(root) = root {
            text = text
                .lines()
                .map(|l| if l.starts_with("root = ") { root } else { l })
                .collect::<Vec<_>>()
                .join("\n");
        }
        let file = dir.join("node.toml");
        std::fs::write(&file, &text).unwrap();
        let (code, _, stderr) = xtask(&["verify", "--target", file.to_str().unwrap()]);
        assert_eq!(code, exit_codes::USAGE, "{stderr}");
        let key = if root.is_some() { "root = " } else { "transport = " };
        let line = text.lines().position(|l| l.starts_with(key)).unwrap() + 1;
        assert_eq!(
            stderr.trim_end(),
            format!("error: {}:{line}: {expected}", file.display())
        );
        assert!(!stderr.contains("hunter2"));
    }
}

#[test]
fn a_runbook_edit_that_removes_what_a_scenario_edits_stops_the_rehearsal_naming_the_nearest_line() {
    let dir = temp_dir("edited-runbook");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap();
    let original =
        std::fs::read_to_string(root.join("fixtures/runbook/SECRETS_ROTATION_RUNBOOK.md")).unwrap();
    let edited = original.replace("psql -U daarion -c", "psql -U daarion -h 127.0.0.1 -c");
    let runbook = dir.join("SECRETS_ROTATION_RUNBOOK.md");
    std::fs::write(&runbook, &edited).unwrap();
    let line = edited
        .lines()
        .position(|l| l.contains("psql -U daarion -h 127.0.0.1 -c"))
        .unwrap()
        + 1;
    let step_line = edited[..edited.find("1. **Update password in Postgres").unwrap()]
        .lines()
        .count()
        + 1;
    let _ = line;
    let expected = format!(
        "faults/phase3-alter-fixed-new-password-with-a-quote: was measured on a Phase 3 this \
         runbook no longer has; phase3.step1 changed (line {step_line}: docker exec \
         dagi-postgres psql -U daarion -h 127.0.0.1 -c …)"
    );

    let (code, stdout, stderr) = xtask(&[
        "rehearse",
        "--runbook",
        runbook.to_str().unwrap(),
        "--only",
        "faults/phase3-alter-fixed-new-password-with-a-quote",
    ]);
    assert_eq!(code, exit_codes::USAGE, "{stdout}{stderr}");
    assert_eq!(
        stderr.lines().next().unwrap(),
        format!("error: {}: {expected}", runbook.display())
    );
    assert!(stderr.contains("nothing was started"), "{stderr}");
    assert!(!stderr.contains("NewPassword123!"), "{stderr}");

    // Asked to skip what no longer applies, it skips it, says so, and with nothing left to
    // rehearse starts nothing.
    let (code, stdout, stderr) = xtask(&[
        "rehearse",
        "--runbook",
        runbook.to_str().unwrap(),
        "--only",
        "faults/phase3-alter-fixed-new-password-with-a-quote",
        "--skip-inapplicable",
    ]);
    assert_eq!(code, exit_codes::USAGE, "{stdout}{stderr}");
    assert_eq!(
        stderr.lines().collect::<Vec<_>>(),
        [
            format!("skipped: {}: {expected}", runbook.display()),
            format!(
                "error: every chosen scenario no longer applies to {}; nothing was started",
                runbook.display()
            ),
        ]
    );

    let (code, _, stderr) = xtask(&["runbook", "check", "--runbook", runbook.to_str().unwrap()]);
    assert_eq!(code, exit_codes::RUNBOOK_CHANGED, "{stderr}");
    assert!(stderr.contains(&format!("  {expected}")), "{stderr}");
    assert_eq!(
        stderr
            .lines()
            .filter(|l| l.starts_with("  ") && l.contains("a Phase 3 this runbook no longer has"))
            .count(),
        // Every hand-written scenario that runs Phase 3 (its faults, and those of the
        // rollback after it).
        18,
        "{stderr}"
    );
}

/// A compose file in the platform's public style (secrets interpolated from the project `.env`
/// into `environment:`, the memory service's `DATABASE_URL`, an `env_file`, the NATS config
/// mounted as a file) gives its wiring through `node profile --compose`, field by field, and no
/// value of any secret reaches stdout or stderr.
#[test]
fn node_profile_derives_a_public_style_compose_file_field_by_field_and_prints_no_value() {
    let dir = temp_dir("node-profile");
    let p = dir.0.as_path();
    std::fs::create_dir_all(p.join("services/memory")).unwrap();
    std::fs::create_dir_all(p.join("nats")).unwrap();
    std::fs::write(p.join("nats/nats.conf"), "port: 4222\n").unwrap();
    let canaries = [
        "canary-db-8f3a@/#%",
        "canary-registry-77c1",
        "canary-qdrant-5d2e",
        "canary-default-91bb",
    ];
    std::fs::write(
        p.join(".env"),
        format!(
            "DB_PASSWORD={}\nNODE_REGISTRY_DB_PASSWORD={}\n",
            canaries[0], canaries[1]
        ),
    )
    .unwrap();
    std::fs::write(
        p.join("services/memory/.env"),
        format!("QDRANT_API_KEY={}\n", canaries[2]),
    )
    .unwrap();
    std::fs::write(
        p.join("docker-compose.yml"),
        format!(
            "services:\n  dagi-memory-service-node1:\n    image: memory:latest\n    env_file: ./services/memory/.env\n    environment:\n      - DATABASE_URL=postgresql://daarion:${{DB_PASSWORD}}@dagi-postgres:5432/daarion_main\n      - NODE_REGISTRY_DB_PASSWORD=${{NODE_REGISTRY_DB_PASSWORD:-{}}}\n  dagi-nats-node1:\n    image: nats:2\n    volumes:\n      - ./nats/nats.conf:/etc/nats/nats.conf:ro\n",
            canaries[3]
        ),
    )
    .unwrap();
    let compose = p.join("docker-compose.yml");
    let (code, stdout, stderr) =
        xtask(&["node", "profile", "--compose", compose.to_str().unwrap()]);
    assert_eq!(code, exit_codes::OK, "{stderr}");
    for canary in canaries {
        assert!(
            !stdout.contains(canary) && !stderr.contains(canary),
            "a value was printed"
        );
    }
    let profile: harness::profile::NodeProfile = toml::from_str(&stdout).unwrap();
    use harness::profile::{Form, Mount, MountKind, SecretWiring, Source, WhenMissing};
    assert_eq!(profile.services.len(), 2);
    assert_eq!(profile.services[0].name, "memory-service");
    assert_eq!(
        profile.services[0].secrets,
        [
            SecretWiring {
                secret: "DB_PASSWORD".into(),
                variable: "DATABASE_URL".into(),
                form: Form::Url {
                    template: "postgresql://daarion:{password}@dagi-postgres:5432/daarion_main"
                        .into()
                },
                source: Source::Interpolated {
                    variable: "DB_PASSWORD".into()
                },
                when_missing: WhenMissing::Fails,
            },
            SecretWiring {
                secret: "QDRANT_API_KEY".into(),
                variable: "QDRANT_API_KEY".into(),
                form: Form::Plain,
                source: Source::EnvFile {
                    path: "services/memory/.env".into()
                },
                when_missing: WhenMissing::Fails,
            },
        ]
    );
    assert_eq!(profile.services[1].name, "nats");
    assert_eq!(
        profile.services[1].mounts,
        [Mount {
            container_path: "/etc/nats/nats.conf".into(),
            host_path: "./nats/nats.conf".into(),
            kind: MountKind::File,
        }]
    );
    assert_eq!(
        stderr.lines().collect::<Vec<_>>(),
        ["cannot map: dagi-memory-service-node1: `NODE_REGISTRY_DB_PASSWORD` looks like a secret but holds none of the node's (DB_PASSWORD, JWT_SECRET, TELEGRAM_BOT_TOKEN, TELEGRAM_BOT_TOKEN_HELION, TELEGRAM_BOT_TOKEN_GREENFOOD, TELEGRAM_BOT_TOKEN_DRUID, NATS_PASSWORD_GATEWAY, NATS_PASSWORD_ROUTER, NATS_PASSWORD_WORKER, DEEPSEEK_API_KEY, MISTRAL_API_KEY, GROK_API_KEY, COHERE_API_KEY, NEO4J_PASSWORD, QDRANT_API_KEY)"]
    );
}
