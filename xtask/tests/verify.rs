//! `cargo xtask verify` as an on-call engineer runs it, against a real replica: every output
//! it prints or writes is free of secret values, and the formats are what CI tools read.

use std::process::Command;

use harness::exit_codes;
use harness::progress::Progress;
use harness::redact::Redactor;
use harness::replica_root::{NodeSecrets, ReplicaRoot, RootOptions, SECRET_NAMES};
use harness::{Stack, StackOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_against_a_replica_passes_and_nothing_it_prints_or_writes_holds_a_secret() {
    let stack = Stack::start(StackOptions {
        progress: Progress::stderr(),
        ..Default::default()
    })
    .await
    .unwrap_or_else(|e| panic!("stack did not start: {e}"));
    let dir = std::env::temp_dir().join(format!("xtask-verify-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let previous_secrets = NodeSecrets::generate();
    ReplicaRoot::create(
        dir.join("previous"),
        &previous_secrets,
        &RootOptions::default(),
    )
    .unwrap();
    let target = dir.join("replica.toml");
    std::fs::write(&target, stack.target().to_toml()).unwrap();
    let (json, junit) = (dir.join("verify.json"), dir.join("verify.xml"));

    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["verify", "--target"])
        .arg(&target)
        .arg("--previous")
        .arg(dir.join("previous"))
        .args(["--format", "table", "--format"])
        .arg(format!("json={}", json.display()))
        .arg("--format")
        .arg(format!("junit={}", junit.display()))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(exit_codes::OK),
        "{stdout}\n{stderr}"
    );
    let json_text = std::fs::read_to_string(&json).unwrap();
    let junit_text = std::fs::read_to_string(&junit).unwrap();

    let secrets = Redactor::new();
    for name in SECRET_NAMES {
        secrets.add(name, stack.initial_secrets().get(name));
        secrets.add(&format!("PREVIOUS_{name}"), previous_secrets.get(name));
    }
    for (what, text) in [
        ("stdout", &stdout),
        ("stderr", &stderr),
        ("json", &json_text),
        ("junit", &junit_text),
    ] {
        assert_eq!(
            secrets.find_leak(text),
            None,
            "a secret value in verify's {what}"
        );
    }
    let doc: serde_json::Value = serde_json::from_str(&json_text).unwrap();
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["exit_code"], 0);
    let n = harness::checks::catalogue().len();
    assert_eq!(doc["targets"][0]["results"].as_array().unwrap().len(), n);
    assert_eq!(junit_text.matches("<testcase ").count(), n);
    assert!(stdout.contains("passed, 0 failed"), "{stdout}");
    assert!(
        stderr.contains("ms (wall)"),
        "the total wall time is printed: {stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
    testing::down(stack).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_over_ssh_gives_the_same_results_as_verify_on_the_node() {
    let stack = Stack::start(StackOptions {
        progress: Progress::stderr(),
        ..Default::default()
    })
    .await
    .unwrap_or_else(|e| panic!("stack did not start: {e}"));
    let dir = tempfile::tempdir().unwrap();
    let root = stack.root().dir().to_path_buf();

    // A Phase 1 backup in clear in the node's backups directory: `backups.encrypted` fails,
    // the same way both times, and it is the previous secrets of both targets.
    let previous_secrets = NodeSecrets::generate();
    ReplicaRoot::create(
        dir.path().join("previous"),
        &previous_secrets,
        &RootOptions::default(),
    )
    .unwrap();
    std::fs::create_dir_all(root.join("backups")).unwrap();
    let backup = root.join("backups/secrets_backup_20261204.tar.gz");
    let tar = Command::new("tar")
        .arg("-C")
        .arg(dir.path().join("previous"))
        .arg("-czf")
        .arg(&backup)
        .arg(".")
        .status()
        .unwrap();
    assert!(tar.success());

    let sshd = testing::Sshd::start(Some(&root), stack.id()).await;

    let mut local = stack.target();
    local.name = "on-the-node".into();
    local.previous = Some(backup.clone());
    local.backups = Some(root.join("backups"));
    let mut remote = local.clone();
    remote.name = "over-ssh".into();
    remote.transport = Some(format!("ssh://root@127.0.0.1:{}", sshd.port));
    remote.ssh_identity = Some(sshd.identity.clone());
    remote.ssh_known_hosts = Some(sshd.known_hosts.clone());
    let (local_toml, remote_toml, json) = (
        dir.path().join("local.toml"),
        dir.path().join("remote.toml"),
        dir.path().join("verify.json"),
    );
    std::fs::write(&local_toml, local.to_toml()).unwrap();
    std::fs::write(&remote_toml, remote.to_toml()).unwrap();

    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["verify", "--target"])
        .arg(&local_toml)
        .arg("--target")
        .arg(&remote_toml)
        .arg("--format")
        .arg(format!("json={}", json.display()))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json_text = std::fs::read_to_string(&json).unwrap_or_default();
    assert_eq!(
        out.status.code(),
        Some(exit_codes::FAILURES),
        "the clear backup fails both nodes: {stderr}\n{json_text}"
    );
    let secrets = Redactor::new();
    for name in SECRET_NAMES {
        secrets.add(name, stack.initial_secrets().get(name));
        secrets.add(&format!("PREVIOUS_{name}"), previous_secrets.get(name));
    }
    assert_eq!(secrets.find_leak(&stderr), None);
    assert_eq!(secrets.find_leak(&json_text), None);

    let doc: serde_json::Value = serde_json::from_str(&json_text).unwrap();
    let targets = doc["targets"].as_array().unwrap();
    assert_eq!(targets[0]["transport"], "local");
    assert_eq!(
        targets[1]["transport"],
        format!("ssh://root@127.0.0.1:{}", sshd.port)
    );
    let results = |t: &serde_json::Value| -> Vec<(String, String, String)> {
        t["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["id"].as_str().unwrap().to_string(),
                    r["outcome"].as_str().unwrap().to_string(),
                    r["evidence"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let (here, there) = (results(&targets[0]), results(&targets[1]));
    assert_eq!(here.len(), harness::checks::catalogue().len());
    let outcomes = |r: &[(String, String, String)]| -> Vec<(String, String)> {
        r.iter().map(|(id, o, _)| (id.clone(), o.clone())).collect()
    };
    assert_eq!(outcomes(&here), outcomes(&there), "{json_text}");
    // What the transport reads (files, the repository, backups, the engine's env and logs)
    // reads the same, word for word.
    for ((id, _, local_evidence), (_, _, ssh_evidence)) in here.iter().zip(&there) {
        if ["env.", "backups.", "git.", "logs."]
            .iter()
            .any(|p| id.starts_with(p))
        {
            assert_eq!(local_evidence, ssh_evidence, "{id}");
        }
    }
    let outcome = |id: &str| {
        here.iter()
            .find(|(i, ..)| i == id)
            .map(|(_, o, _)| o.as_str())
    };
    assert_eq!(outcome("backups.encrypted"), Some("fail"));
    assert_eq!(outcome("git.no-secrets-tracked"), Some("pass"));
    assert_eq!(outcome("env.file-mode"), Some("pass"));
    assert!(
        stderr.contains("connecting to 1 node(s) over SSH"),
        "{stderr}"
    );
    drop(sshd);
    testing::down(stack).await;
}

/// The v2 runbook's Phase 2 (DeepSeek) rehearsed at an operator's pace while another process
/// watches the same replica, an "operator" pressing Enter as each step begins: the watch sees
/// the router's container leave its `.env` within phase2.step2 (the key written) and come back
/// within phase2.step3 (the recreate the rehearsal's journal shows), and `report compare` puts
/// both sides' Phase 2 in one row.
#[test]
fn a_watch_beside_a_v2_rehearsal_sees_the_router_leave_its_env_in_step2_and_return_in_step3() {
    use harness::checks::watch::WatchJournal;
    use harness::checks::Outcome;
    use rehearsal::journal::Journal;
    use std::io::Write;
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    const SCENARIO: &str = "rotate/deepseek";
    const PACE_S: &str = "5";
    let dir = tempfile::tempdir().unwrap();
    let (rehearsal, watched) = (dir.path().join("rehearsal"), dir.path().join("watch"));
    let log = dir.path().join("rehearse.log");
    let runbook =
        harness::runbook::workspace_path("fixtures/runbook/SECRETS_ROTATION_RUNBOOK.v2.md");
    let mut rehearse = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args([
            "rehearse",
            "--only",
            SCENARIO,
            "--operator-pace",
            PACE_S,
            "--runbook",
        ])
        .arg(&runbook)
        .arg("--out")
        .arg(&rehearsal)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let pid = rehearse.id();
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();

    // The replica, once it is ready: the watch opens it by id.
    let deadline = Instant::now() + Duration::from_secs(300);
    let id = loop {
        let text = read_log();
        if let Some(id) = text.lines().find_map(|l| {
            l.split_once("] stack ")
                .and_then(|(_, rest)| rest.split_once(" ready in "))
                .map(|(id, _)| id.to_string())
        }) {
            break id;
        }
        if let Some(status) = rehearse.try_wait().unwrap() {
            panic!("rehearse ended before its replica was ready ({status}):\n{text}");
        }
        assert!(Instant::now() < deadline, "no replica ready:\n{text}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut watch = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["verify", "--replica", &id, "--watch", "--interval", "1"])
        .args([
            "--only",
            "env.container-matches-file.*",
            "--only",
            "health.*",
        ])
        .arg("--runbook")
        .arg(&runbook)
        .arg("--out")
        .arg(&watched)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("watch.log")).unwrap())
        .spawn()
        .unwrap();
    let mut keys = watch.stdin.take().unwrap();

    // The operator: Enter as each step begins, in the order the rehearsal says them.
    let begins = format!("] {SCENARIO}: ");
    let mut marked: Vec<String> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(600);
    let status = loop {
        let text = read_log();
        for step in text
            .lines()
            .filter_map(|l| l.split_once(&begins))
            .filter_map(|(_, rest)| rest.split_once(" begins: "))
            .map(|(step, _)| step)
            .skip(marked.len())
            .collect::<Vec<_>>()
        {
            keys.write_all(b"\n").unwrap();
            marked.push(step.to_string());
        }
        if let Some(status) = rehearse.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "rehearse did not end:\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = read_log();
    assert_eq!(status.code(), Some(exit_codes::OK), "{text}");
    // SAFETY: kill(2) on our own child's pid, which has not been reaped yet.
    assert_eq!(unsafe { libc::kill(watch.id() as i32, libc::SIGTERM) }, 0);
    let deadline = Instant::now() + Duration::from_secs(60);
    let ended = loop {
        if let Some(status) = watch.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the watch did not end on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let watch_log = std::fs::read_to_string(dir.path().join("watch.log")).unwrap();
    assert!(
        matches!(ended.code(), Some(0 | 1 | 6)),
        "the watch ended with {ended}:\n{watch_log}"
    );

    // The rehearsal's side: the steps in the runbook's order, the router's container down
    // (recreated) within phase2.step3 and no other step.
    let journal =
        Journal::from_json(&std::fs::read_to_string(rehearsal.join("journal.json")).unwrap())
            .unwrap();
    let scenario = journal.scenarios.iter().find(|s| s.id == SCENARIO).unwrap();
    let steps: Vec<&str> = scenario.steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        steps,
        [
            "phase1.step1",
            "phase1.step2",
            "phase1.step3",
            "phase2.step1",
            "phase2.step2",
            "phase2.step3",
            "phase2.step4"
        ]
    );
    assert_eq!(marked, steps, "the steps said as they began");
    let step = |id: &str| scenario.steps.iter().find(|s| s.id == id).unwrap();
    let probe = scenario.probe.as_ref().unwrap();
    let router_down = &probe.containers_down["router"];
    let recreate = step("phase2.step3");
    assert!(
        router_down
            .iter()
            .all(|d| d.from_ms >= recreate.started_ms && d.from_ms < recreate.ended_ms),
        "the router was down outside phase2.step3: {router_down:?}"
    );
    assert!(!router_down.is_empty(), "the recreate took the router down");

    // The watch's side: the same steps marked in the same order, and the router's env check
    // failing from within step 2 and passing again from within step 3.
    let watch_journal =
        WatchJournal::parse(&std::fs::read_to_string(watched.join("journal.json")).unwrap())
            .unwrap();
    let marks: Vec<(&str, u64)> = watch_journal
        .marks
        .iter()
        .map(|m| (m.step.as_deref().unwrap(), m.at_ms))
        .collect();
    assert_eq!(
        marks.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        steps,
        "{watch_log}"
    );
    let mark = |id: &str| marks.iter().find(|(s, _)| *s == id).unwrap().1;
    let series = watch_journal
        .checks
        .iter()
        .find(|s| s.id == "env.container-matches-file.router")
        .unwrap();
    let within = |at: u64, step: &str, next: &str| at >= mark(step) && at < mark(next);
    // While the recreate has no router container a round that lands then cannot compare it:
    // `error` (how often depends on how busy the machine is), said of no credential.
    let flips: Vec<(Outcome, u64)> = series
        .points
        .iter()
        .map(|p| (p.outcome, p.at_ms))
        .filter(|(o, at)| !(*o == Outcome::Error && within(*at, "phase2.step3", "phase2.step4")))
        .collect();
    assert!(
        matches!(
            flips.as_slice(),
            [(Outcome::Pass, first), (Outcome::Fail, failed), (Outcome::Pass, back), ..]
                if *first < mark("phase2.step2")
                    && within(*failed, "phase2.step2", "phase2.step3")
                    && within(*back, "phase2.step3", "phase2.step4")
        ),
        "the router's env check over the watch {flips:?}, marks {marks:?}"
    );

    // `report compare`: Phase 2 in one row, its times from both journals.
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["report", "compare"])
        .arg(&rehearsal)
        .arg(&watched)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(exit_codes::OK), "{table}");
    let rehearsed_ms = step("phase2.step4").ended_ms - step("phase2.step1").started_ms;
    let watched_ms = watch_journal.ended_ms - mark("phase2.step1");
    let row = format!(
        "| phase2 (DeepSeek API Key) | {:.1} s | {:.1} s | ",
        rehearsed_ms as f64 / 1000.0,
        watched_ms as f64 / 1000.0
    );
    assert!(
        table.lines().any(|l| l.starts_with(&row)),
        "no `{row}` in:\n{table}"
    );

    // Nothing of the rehearsal remains; the watch started nothing.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let left: Vec<_> = runtime.block_on(async {
        let docker = harness::docker::connect().await.unwrap();
        harness::docker::list_stacks(&docker)
            .await
            .unwrap()
            .into_iter()
            .filter(|s| s.owner_pid == pid && !s.containers.is_empty())
            .collect()
    });
    assert!(left.is_empty(), "{left:?}");
}
