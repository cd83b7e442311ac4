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
