//! The facts the runbook scenarios rest on (DESIGN §3), shown on the replica: each secret is
//! really enforced, and env files are read only when a container is created.

use std::time::{Duration, Instant};

use harness::client::{nats_connected_users, pg_connect, ReplicaClient};
use harness::progress::Progress;
use harness::replica_root::NodeSecrets;
use harness::{Service, Stack, StackOptions};

use testing::start;

/// Polls `probe` every 100 ms until it is true or `within` passes.
async fn eventually<F, Fut>(within: Duration, mut probe: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if probe().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// A new Qdrant key issued upstream and written to the memory service's `.env` (the running
/// container untouched); returns (old, new).
async fn new_qdrant_key_in_memory_env(stack: &Stack) -> (String, String) {
    let client = ReplicaClient::new(stack);
    let old = stack.initial_secrets().get("QDRANT_API_KEY").to_string();
    let new = NodeSecrets::generate_one("QDRANT_API_KEY");
    stack.redactor().add("QDRANT_API_KEY_NEW", &new);
    assert_eq!(client.issue_key("qdrant", &new).await, 200);
    stack
        .edit_env(Service::Memory, |f| f.set("QDRANT_API_KEY", &new))
        .unwrap();
    (old, new)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_edit_then_docker_restart_keeps_the_old_value_and_recreate_takes_the_new() {
    let stack = start().await;
    let (old, new) = new_qdrant_key_in_memory_env(&stack).await;

    stack.restart(Service::Memory).await.unwrap();
    stack
        .wait_ready(Service::Memory, Duration::from_secs(30))
        .await
        .unwrap();
    let env = stack.container_env(Service::Memory).await.unwrap();
    assert!(
        env.get("QDRANT_API_KEY") == Some(&old),
        "after `docker restart` the container must still hold the OLD key"
    );

    stack.recreate(Service::Memory).await.unwrap();
    stack
        .wait_ready(Service::Memory, Duration::from_secs(30))
        .await
        .unwrap();
    let env = stack.container_env(Service::Memory).await.unwrap();
    assert!(
        env.get("QDRANT_API_KEY") == Some(&new),
        "after a recreate the container must hold the NEW key from .env"
    );
    testing::down(stack).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_db_password_in_memory_env_plus_recreate_fails_its_db_readiness_and_writes() {
    let stack = start().await;
    let client = ReplicaClient::new(&stack);
    assert_eq!(client.store_memory(1).await.0, 200, "writes work before");
    stack
        .edit_env(Service::Memory, |f| {
            f.set("DB_PASSWORD", "definitely-wrong")
        })
        .unwrap();
    stack.recreate(Service::Memory).await.unwrap();
    // A recreated container publishes new host ports: take a fresh client.
    let client = ReplicaClient::new(&stack);
    // The shallow health stays green while the credential is broken, like production's.
    let up = eventually(Duration::from_secs(10), || async {
        reqwest::get(format!("{}/health", stack.url(Service::Memory)))
            .await
            .map(|r| r.status() == 200)
            .unwrap_or(false)
    })
    .await;
    assert!(up, "memory's /health answers 200 with a wrong DB password");
    let (status, body) = client.readiness(&stack, Service::Memory).await;
    assert_eq!(status, 503, "readiness must fail: {body}");
    assert_eq!(body["checks"]["db"]["ok"], false, "{body}");
    let db_error = body["checks"]["db"]["error"].as_str().unwrap_or("");
    assert!(
        db_error.starts_with("28P01"),
        "password authentication failed: {db_error}"
    );
    assert_eq!(
        body["checks"]["qdrant"]["ok"], true,
        "only the db is broken: {body}"
    );
    let (status, body) = client.store_memory(2).await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["error"], "db");
    testing::down(stack).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_revoked_at_the_provider_makes_infer_fail_with_upstream_401() {
    let stack = start().await;
    let client = ReplicaClient::new(&stack);
    assert_eq!(client.infer("daarwizz", 1).await.0, 200);
    let key = stack.initial_secrets().get("DEEPSEEK_API_KEY");
    assert_eq!(client.revoke_key("deepseek", key).await, 200);
    let (status, body) = client.infer("daarwizz", 2).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"], "upstream_401", "{body}");
    // Other providers are unaffected.
    assert_eq!(client.infer("helion", 3).await.0, 200);
    // Through the gateway, the update fails (so Telegram retries it).
    let outcome = client.send_update(None, 4, "hi").await;
    assert_eq!(outcome.status, 502);
    assert!(outcome.detail.contains("upstream_401"), "{outcome:?}");
    testing::down(stack).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_password_changed_in_config_plus_reload_disconnects_the_workers() {
    let stack = start().await;
    // Both workers connected as `worker`, once each: a connection a worker replaced while it
    // started (measured once: three) is gone within seconds.
    let both = eventually(Duration::from_secs(10), || async {
        nats_connected_users(&stack)
            .await
            .map(|u| u.iter().filter(|x| *x == "worker").count() == 2)
            .unwrap_or(false)
    })
    .await;
    let users = nats_connected_users(&stack).await.unwrap();
    assert!(
        both,
        "both workers connected as `worker`, once each: {users:?}"
    );
    let new = NodeSecrets::generate_one("NATS_PASSWORD_WORKER");
    let s = stack.initial_secrets();
    stack
        .root()
        .write_nats_conf(&[
            ("gateway".into(), s.get("NATS_PASSWORD_GATEWAY").into()),
            ("router".into(), s.get("NATS_PASSWORD_ROUTER").into()),
            ("worker".into(), new),
        ])
        .unwrap();
    stack.reload_nats().await.unwrap();
    let gone = eventually(Duration::from_secs(10), || async {
        nats_connected_users(&stack)
            .await
            .map(|u| !u.iter().any(|x| x == "worker"))
            .unwrap_or(false)
    })
    .await;
    assert!(gone, "workers still connected after the reload");
    let still = nats_connected_users(&stack).await.unwrap();
    assert!(
        still.iter().any(|u| u == "gateway"),
        "gateway unaffected: {still:?}"
    );
    let client = ReplicaClient::new(&stack);
    let (status, body) = client.readiness(&stack, Service::CrewaiWorker).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["checks"]["nats"]["ok"], false, "{body}");
    let logs = stack.logs(Service::CrewaiWorker, 50).await.unwrap();
    assert!(
        logs.to_lowercase().contains("authorization"),
        "worker logs: {logs}"
    );
    testing::down(stack).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alter_role_keeps_open_sessions_fails_new_old_password_logins_and_the_trust_socket_proves_nothing(
) {
    let stack = start().await;
    let old = stack.initial_secrets().get("DB_PASSWORD").to_string();
    let open = pg_connect(&stack, &old)
        .await
        .expect("old password works before");
    let new = NodeSecrets::generate_one("DB_PASSWORD");
    stack.redactor().add("DB_PASSWORD_NEW", &new);
    open.batch_execute(&format!("ALTER ROLE daarion WITH PASSWORD '{new}'"))
        .await
        .unwrap();
    // The open session lives on.
    assert!(open.simple_query("SELECT 1").await.is_ok());
    // A new connection with the old password fails at once.
    let err = pg_connect(&stack, &old).await.unwrap_err();
    assert!(err.starts_with("28P01"), "{err}");
    assert!(pg_connect(&stack, &new).await.is_ok());
    // Runbook phase3.step4's check goes over the local socket (trust): it passes no matter
    // which password is in any .env.
    let out = stack
        .exec(
            Service::Postgres,
            &[
                "psql",
                "-U",
                "daarion",
                "-d",
                "daarion_main",
                "-c",
                "SELECT 1;",
            ],
        )
        .await
        .unwrap();
    assert_eq!(out.exit_code, 0, "{}", out.stderr);
    testing::down(stack).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_db_password_with_quotes_backslashes_dollars_and_spaces_works_end_to_end() {
    let mut secrets = NodeSecrets::generate();
    let password = format!(
        "it's a \"p@ss\" \\ with $HOME & /slashes/ #! `x` {}",
        NodeSecrets::generate_one("DB_PASSWORD")
    );
    secrets.set("DB_PASSWORD", password.clone());
    let stack = Stack::start(StackOptions {
        secrets: Some(secrets),
        progress: Progress::stderr(),
        ..Default::default()
    })
    .await
    .unwrap_or_else(|e| panic!("stack did not start: {e}"));
    let client = ReplicaClient::new(&stack);
    let outcome = client.send_update(None, 1, "hello").await;
    assert!(outcome.ok(), "{outcome:?}");
    let db = pg_connect(&stack, &password)
        .await
        .expect("the exact password logs in");
    let rows: i64 = db
        .query_one("SELECT count(*) FROM memories", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 1);
    testing::down(stack).await;
}

/// The id of every service's container, by the stack's container names.
async fn container_ids(stack: &Stack) -> std::collections::BTreeMap<Service, String> {
    let mut ids = std::collections::BTreeMap::new();
    for s in Service::ALL {
        let id = stack.inspect(s).await.unwrap().id.unwrap_or_default();
        ids.insert(s, id);
    }
    ids
}

/// Runs the host's Compose on the stack; panics (with its redacted stderr) when it fails.
async fn compose(stack: &Stack, args: &[&str]) -> String {
    let out = stack.compose(args).await.unwrap();
    assert_eq!(
        out.exit_code,
        0,
        "`compose {}` failed: {}",
        args.join(" "),
        out.stderr
    );
    format!("{}{}", out.stdout, out.stderr)
}

/// `service`'s `.env` as Compose reads it, against the env its running container has: every
/// variable of the file, with the file's value.
async fn env_matches_file(stack: &Stack, service: Service) -> bool {
    let file = stack.current_env().unwrap()[&service].vars();
    let running = stack.container_env(service).await.unwrap();
    file.iter().all(|(k, v)| running.get(k) == Some(v))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compose_up_after_an_env_edit_takes_the_new_value_and_compose_restart_keeps_the_old() {
    let stack = start().await;
    let (old, new) = new_qdrant_key_in_memory_env(&stack).await;

    compose(&stack, &["restart", "dagi-memory-service-node1"]).await;
    stack
        .wait_ready(Service::Memory, Duration::from_secs(30))
        .await
        .unwrap();
    let env = stack.container_env(Service::Memory).await.unwrap();
    assert!(
        env.get("QDRANT_API_KEY") == Some(&old),
        "after `compose restart` the container must still hold the OLD key"
    );

    compose(&stack, &["up", "-d", "dagi-memory-service-node1"]).await;
    stack
        .wait_ready(Service::Memory, Duration::from_secs(30))
        .await
        .unwrap();
    let env = stack.container_env(Service::Memory).await.unwrap();
    assert!(
        env.get("QDRANT_API_KEY") == Some(&new),
        "after `compose up -d` the container must hold the NEW key from .env"
    );
    assert!(env_matches_file(&stack, Service::Memory).await);
    testing::down(stack).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compose_up_recreates_only_what_changed_on_the_stack_itself_one_container_per_service() {
    use bollard::query_parameters::ListContainersOptionsBuilder;
    let stack = start().await;
    let project = stack.compose_project();
    let before = container_ids(&stack).await;
    let router_port = stack.host_port(Service::Router, 9102);

    // Nothing changed: the config hashes on the stack's containers are Compose's own.
    compose(&stack, &["up", "-d"]).await;
    assert_eq!(
        container_ids(&stack).await,
        before,
        "`up -d` with nothing changed recreated a container"
    );

    // The router's .env edited: `up -d` recreates the router and nothing else.
    let client = ReplicaClient::new(&stack);
    let new = NodeSecrets::generate_one("DEEPSEEK_API_KEY");
    stack.redactor().add("DEEPSEEK_API_KEY_NEW", &new);
    assert_eq!(client.issue_key("deepseek", &new).await, 200);
    stack
        .edit_env(Service::Router, |f| f.set("DEEPSEEK_API_KEY", &new))
        .unwrap();
    compose(&stack, &["up", "-d"]).await;
    let after = container_ids(&stack).await;
    for s in Service::ALL {
        assert_eq!(
            after[&s] != before[&s],
            s == Service::Router,
            "{s}: recreated only if its config changed"
        );
    }
    stack
        .wait_ready(Service::Router, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(
        stack.host_port(Service::Router, 9102),
        router_port,
        "the recreated router publishes the node's port again"
    );
    assert!(env_matches_file(&stack, Service::Router).await);
    assert_eq!(
        client.infer("daarwizz", 1).await.0,
        200,
        "the new key is live"
    );

    // One service forced, without its dependencies.
    compose(
        &stack,
        &[
            "up",
            "-d",
            "--force-recreate",
            "--no-deps",
            "dagi-gateway-node1",
        ],
    )
    .await;
    let forced = container_ids(&stack).await;
    for s in Service::ALL {
        assert_eq!(forced[&s] != after[&s], s == Service::Gateway, "{s}");
    }
    stack
        .wait_ready(Service::Gateway, Duration::from_secs(30))
        .await
        .unwrap();

    // `stop` and `start` act on the stack's container; `ps` lists the stack's containers.
    compose(&stack, &["stop", "parser-pipeline"]).await;
    let state = stack.inspect(Service::ParserPipeline).await.unwrap().state;
    assert_eq!(state.and_then(|s| s.running), Some(false));
    compose(&stack, &["start", "parser-pipeline"]).await;
    stack
        .wait_ready(Service::ParserPipeline, Duration::from_secs(30))
        .await
        .unwrap();
    let ps = compose(&stack, &["ps"]).await;
    for s in Service::ALL {
        assert!(
            ps.contains(&stack.container_name(s)),
            "`ps` lists {s}: {ps}"
        );
    }
    // `logs` reads the stack's container; `rm -f -s` removes it and `up -d` brings it back.
    let logs = compose(&stack, &["logs", "--tail", "20", "dagi-router-node1"]).await;
    assert!(
        logs.contains(&stack.container_name(Service::Router)),
        "{logs}"
    );
    compose(&stack, &["rm", "-f", "-s", "crewai-nats-worker"]).await;
    assert!(
        stack.inspect(Service::CrewaiWorker).await.is_err(),
        "removed"
    );
    compose(&stack, &["up", "-d", "crewai-nats-worker"]).await;
    stack
        .wait_ready(Service::CrewaiWorker, Duration::from_secs(30))
        .await
        .unwrap();

    // Exactly one container per service on the engine, each on the stack's network under its
    // production names, and none under a bare production name.
    let filter = std::collections::HashMap::from([(
        "label".to_string(),
        vec![format!("com.docker.compose.project={project}")],
    )]);
    let listed = stack
        .docker()
        .list_containers(Some(
            ListContainersOptionsBuilder::new()
                .all(true)
                .filters(&filter)
                .build(),
        ))
        .await
        .unwrap();
    assert_eq!(
        listed.len(),
        Service::ALL.len(),
        "one container per service"
    );
    for s in Service::ALL {
        let info = stack.inspect(s).await.unwrap();
        let endpoint = info
            .network_settings
            .and_then(|n| n.networks)
            .and_then(|n| n.get(stack.network()).cloned())
            .unwrap_or_else(|| panic!("{s} is not on {}", stack.network()));
        let aliases = endpoint.aliases.unwrap_or_default();
        for alias in s.aliases() {
            assert!(
                aliases.iter().any(|a| a == alias),
                "{s} lacks alias {alias}: {aliases:?}"
            );
        }
        let bare = stack
            .docker()
            .inspect_container(
                s.production_name(),
                None::<bollard::query_parameters::InspectContainerOptions>,
            )
            .await;
        assert!(
            bare.is_err(),
            "a container named {} exists",
            s.production_name()
        );
    }
    testing::down(stack).await;
}
