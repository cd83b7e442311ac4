//! `cargo xtask verify` as an on-call engineer runs it, against a real replica: every output
//! it prints or writes is free of secret values, and the formats are what CI tools read.

use std::process::Command;

use harness::checks::Target;
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
    std::fs::write(&target, Target::from_stack(&stack).to_toml()).unwrap();
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
    harness::testing::down(stack).await;
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

    let sshd = harness::testing::Sshd::start(Some(&root), stack.id()).await;

    let mut local = Target::from_stack(&stack);
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
    harness::testing::down(stack).await;
}
