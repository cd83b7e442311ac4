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
    for task in ["images", "up", "status", "down", "test", "bench"] {
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
    assert!(stderr.contains("unknown task `rehears`"), "{stderr}");
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
