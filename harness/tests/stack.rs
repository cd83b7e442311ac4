//! The replica stack: it starts ready, carries an update through the whole critical flow,
//! and leaves nothing behind (panic, killed run).

use std::time::{Duration, Instant};

use harness::client::{gateway_jwt, pg_connect, ReplicaClient};
use harness::docker::{self, LABEL_MANAGED, LABEL_OWNER_PID, LABEL_ROOT, LABEL_STACK};
use harness::progress::Progress;
use harness::stack::new_stack_id;
use harness::{HarnessError, Service, Stack, StackOptions};

use testing::start;

async fn count(client: &tokio_postgres::Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).await.expect(sql).get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_update_goes_gateway_router_memory_telegram_jetstream_worker() {
    let stack = start().await;
    let client = ReplicaClient::new(&stack);
    let agents = [None, Some("helion"), Some("greenfood"), Some("druid")];
    for id in 1..=20i64 {
        let agent = agents[(id % 4) as usize];
        let outcome = client.send_update(agent, id, "hello").await;
        assert!(
            outcome.ok(),
            "update {id} via {agent:?} failed: {outcome:?}"
        );
    }
    let db = pg_connect(&stack, stack.initial_secrets().get("DB_PASSWORD"))
        .await
        .expect("db reachable from the host with the node's password");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let processed = count(&db, "SELECT count(*) FROM processed_events").await;
        if processed == 40 || Instant::now() > deadline {
            assert_eq!(
                processed, 40,
                "each of 20 updates processed by both workers"
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(count(&db, "SELECT count(*) FROM memories").await, 20);
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM gateway_updates WHERE completed_at IS NOT NULL"
        )
        .await,
        20
    );
    assert_eq!(
        count(&db, "SELECT count(DISTINCT provider) FROM inference_log").await,
        4,
        "every agent's provider was called"
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM processed_events WHERE deliveries > 1"
        )
        .await,
        0,
        "no duplicate deliveries in a calm run"
    );
    let keys = client.upstream_keys().await;
    assert_eq!(
        keys["telegram_sent"], 20,
        "one reply per update through the Bot API"
    );

    // The gateway's API takes tokens signed with its JWT secret, and only those.
    let http = reqwest::Client::new();
    let api = format!("{}/api/v1/agents", stack.url(Service::Gateway));
    let good = gateway_jwt(stack.initial_secrets().get("JWT_SECRET"), "ops");
    let bad = gateway_jwt("not-the-secret", "ops");
    let ok = http.get(&api).bearer_auth(good).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    let refused = http.get(&api).bearer_auth(bad).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    testing::down(stack).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_that_panics_midway_leaves_no_container_or_network() {
    let id = new_stack_id();
    let task_id = id.clone();
    let joined = tokio::spawn(async move {
        let _stack = Stack::start(StackOptions {
            id: Some(task_id),
            progress: Progress::stderr(),
            ..Default::default()
        })
        .await
        .expect("stack starts");
        panic!("deliberate panic with a running stack");
    })
    .await;
    assert!(joined.unwrap_err().is_panic());
    let d = docker::connect().await.unwrap();
    let left: Vec<_> = docker::list_stacks(&d)
        .await
        .unwrap()
        .into_iter()
        .filter(|s| s.id == id)
        .collect();
    assert!(left.is_empty(), "stack {id} outlived the panic: {left:?}");
    let root = std::env::temp_dir().join(format!("rotation-replica-{id}"));
    assert!(
        !root.exists(),
        "replica root {} outlived the panic",
        root.display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leftovers_of_a_killed_run_are_swept_by_the_next_start() {
    use bollard::models::NetworkCreateRequest;
    let d = docker::connect().await.unwrap();
    // A run that was killed: its owner process no longer exists.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = child.id();
    child.wait().unwrap();
    let id = new_stack_id();
    let root = std::env::temp_dir().join(format!("rotation-replica-{id}"));
    std::fs::create_dir_all(&root).unwrap();
    // The operator's home of a rehearsal killed mid-step, with the backup it made there.
    let operator = harness::replica_root::operator_dir_of(&root);
    std::fs::create_dir_all(&operator).unwrap();
    std::fs::write(operator.join("secrets_backup.tar.gz"), "backup").unwrap();
    let labels = [
        (LABEL_MANAGED, "true".to_string()),
        (LABEL_STACK, id.clone()),
        (LABEL_OWNER_PID, dead_pid.to_string()),
        (LABEL_ROOT, root.display().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    d.create_network(NetworkCreateRequest {
        name: format!("rotation-{id}"),
        labels: Some(labels),
        ..Default::default()
    })
    .await
    .unwrap();
    let sweep = docker::sweep_orphans(&d).await.unwrap();
    assert!(
        sweep.removed.contains(&id),
        "swept {sweep:?}, expected {id}"
    );
    assert!(!root.exists());
    assert!(
        !operator.exists(),
        "the operator directory goes with its stack"
    );
    assert!(docker::list_stacks(&d)
        .await
        .unwrap()
        .iter()
        .all(|s| s.id != id));
}

#[tokio::test]
async fn no_docker_engine_is_one_clear_error_naming_docker_host() {
    // Only this test's process sees the variable (nextest runs each test in its own process).
    std::env::set_var("DOCKER_HOST", "unix:///nonexistent/docker.sock");
    let err = Stack::start(StackOptions::default()).await.unwrap_err();
    assert!(matches!(err, HarnessError::NoDocker(_)), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("unix:///nonexistent/docker.sock"), "{msg}");
    assert!(msg.contains("DOCKER_HOST"), "{msg}");
    assert_eq!(err.exit_code(), harness::exit_codes::NO_DOCKER);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_that_never_gets_ready_is_named_with_its_last_log_lines() {
    let err = Stack::start(StackOptions {
        env_overrides: vec![(
            Service::Router,
            "AGENT_REGISTRY".into(),
            "/nonexistent/agents.json".into(),
        )],
        ready_timeout: Duration::from_secs(20),
        ..Default::default()
    })
    .await
    .unwrap_err();
    let HarnessError::NotReady {
        service, last_logs, ..
    } = &err
    else {
        panic!("expected NotReady, got {err}");
    };
    assert_eq!(service, "dagi-router-node1");
    assert!(
        last_logs.contains("cannot read agent registry"),
        "{last_logs}"
    );
    assert_eq!(err.exit_code(), harness::exit_codes::NOT_READY);
}

/// A service restarted while a fault has it cut off the stack's network comes back on the
/// engine's bridge, which publishes its ports: the host (the harness's traffic and probes)
/// still reaches it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_restarted_while_cut_off_the_stack_network_is_reached_through_its_published_port()
{
    let stack = start().await;
    stack
        .disconnect(Service::Upstream)
        .await
        .expect("disconnect");
    stack.restart(Service::Upstream).await.expect("restart");
    stack
        .wait_ready(Service::Upstream, Duration::from_secs(20))
        .await
        .expect("upstream ready again through its published port");
    let logs = stack.logs(Service::Upstream, 50).await.expect("logs");
    assert_eq!(
        logs.matches("upstream: listening on 8080").count(),
        2,
        "{logs}"
    );
    testing::down(stack).await;
}

/// The config hashes that label the stack's containers come from a resident Python Compose
/// (`harness::compose_resident`) where the host's is one: its answers are the `docker-compose`
/// program's own, for every service and for a request Compose refuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_resident_compose_answers_config_hash_exactly_as_the_docker_compose_program() {
    use harness::compose::{HostCompose, Tool, COMPOSE_FILE};
    let Some(compose) = HostCompose::detect().filter(|c| c.tool == Tool::Standalone) else {
        eprintln!("skipped: this host's Compose is not docker-compose v1, which has no resident");
        return;
    };
    let stack = start().await;
    let dir = stack.root().dir().to_path_buf();
    for hash in [
        "--hash=*",
        "--hash=dagi-router-node1,dagi-postgres",
        "--hash=no-such-service",
    ] {
        let args = ["-f", COMPOSE_FILE, "config", hash];
        let program = std::process::Command::new(&compose.program)
            .current_dir(&dir)
            .args(args)
            .output()
            .expect("docker-compose runs");
        let (program_, version, dir_) = (
            compose.program.clone(),
            compose.version.clone(),
            dir.clone(),
        );
        let resident = tokio::task::spawn_blocking(move || {
            harness::compose_resident::run(&program_, &version, &dir_, &args)
        })
        .await
        .expect("resident task")
        .expect("a resident for docker-compose v1");
        assert_eq!(
            (resident.code, resident.stdout.as_str()),
            (
                program.status.code().expect("exit code"),
                String::from_utf8_lossy(&program.stdout).as_ref()
            ),
            "{hash}"
        );
        assert_eq!(
            resident.stderr.trim(),
            String::from_utf8_lossy(&program.stderr).trim(),
            "{hash}"
        );
    }
    testing::down(stack).await;
}
