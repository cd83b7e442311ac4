//! The check catalogue against the real replica: everything passes on a fresh one without
//! writing anything, and each check fails — naming the service and variable, never the value —
//! after the sabotage it exists to catch.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use harness::checks::secrets::SecretSet;
use harness::checks::{self, catalogue, CheckResult, Node, Outcome, Target};
use harness::client::{nats_connected_users, pg_connect, ReplicaClient};
use harness::redact::Redactor;
use harness::replica_root::{NodeSecrets, ReplicaRoot, RootOptions, SECRET_NAMES};
use harness::{Service, Stack};

async fn verify(
    target: Target,
    previous: Option<SecretSet>,
    redactor: &Redactor,
) -> BTreeMap<String, CheckResult> {
    let all = catalogue();
    let selected: Vec<&checks::Check> = all.iter().collect();
    let node = Node::new(target, previous, redactor.clone());
    let report = checks::verify(std::slice::from_ref(&node), &selected).await;
    report.targets[0]
        .results
        .iter()
        .map(|r| (r.id.clone(), r.clone()))
        .collect()
}

/// A previous-secrets directory: the layout of a replica root with `secrets`.
fn previous_dir(secrets: &NodeSecrets) -> (tempdir::Dir, SecretSet) {
    let dir = tempdir::Dir::new("previous");
    ReplicaRoot::create(dir.path(), secrets, &RootOptions::default()).unwrap();
    let set = SecretSet::previous(dir.path()).unwrap();
    (dir, set)
}

mod tempdir {
    /// A directory removed on drop.
    pub struct Dir(std::path::PathBuf);
    impl Dir {
        pub fn new(name: &str) -> Dir {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos();
            let p = std::env::temp_dir().join(format!(
                "rotation-checks-{name}-{}-{nanos}",
                std::process::id()
            ));
            std::fs::create_dir_all(&p).unwrap();
            Dir(p)
        }
        pub fn path(&self) -> &std::path::Path {
            &self.0
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Write counters of the node: PostgreSQL tuple counters and table rows, JetStream messages.
async fn write_counters(stack: &Stack) -> BTreeMap<String, i64> {
    let db = pg_connect(stack, stack.initial_secrets().get("DB_PASSWORD"))
        .await
        .unwrap();
    let mut out = BTreeMap::new();
    let row = db
        .query_one(
            "SELECT tup_inserted, tup_updated, tup_deleted, xact_rollback FROM pg_stat_database WHERE datname = 'daarion_main'",
            &[],
        )
        .await
        .unwrap();
    for (i, name) in [
        "tup_inserted",
        "tup_updated",
        "tup_deleted",
        "xact_rollback",
    ]
    .iter()
    .enumerate()
    {
        out.insert(name.to_string(), row.get::<_, i64>(i));
    }
    for table in [
        "gateway_updates",
        "inference_log",
        "memories",
        "processed_events",
    ] {
        let n: i64 = db
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .unwrap()
            .get(0);
        out.insert(format!("rows {table}"), n);
    }
    let jsz: serde_json::Value = reqwest::get(format!("{}/jsz", stack.nats_monitor_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    out.insert(
        "jetstream messages".into(),
        jsz["messages"].as_i64().unwrap_or(-1),
    );
    out
}

fn git(dir: &Path, args: &[&str]) {
    let ok = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@t"])
        .args(args)
        .output()
        .unwrap()
        .status
        .success();
    assert!(ok, "git {args:?}");
}

fn summary(results: &BTreeMap<String, CheckResult>) -> String {
    results
        .values()
        .map(|r| format!("{:<5} {:<45} {}", r.outcome.to_string(), r.id, r.evidence))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Each listed check failed, and its evidence holds every listed fragment.
fn assert_fail_with(results: &BTreeMap<String, CheckResult>, expect: &[(&str, &[&str])]) {
    let mut wrong = Vec::new();
    for (id, needles) in expect {
        let r = &results[*id];
        let missing: Vec<&&str> = needles
            .iter()
            .filter(|n| !r.evidence.contains(**n))
            .collect();
        if r.outcome != Outcome::Fail || !missing.is_empty() {
            wrong.push(format!(
                "{id}: {} `{}` (missing {missing:?})",
                r.outcome, r.evidence
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "checks that did not fail as expected:\n{}\n\nall results:\n{}",
        wrong.join("\n"),
        summary(results)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_promoted_check_passes_on_a_fresh_replica_and_verify_writes_nothing() {
    let started = SystemTime::now();
    let stack = testing::start().await;
    let mut target = stack.target();
    // The replica's root is a git checkout as the node's is (its compose file tracked, its
    // secrets ignored); never-used previous secrets; the start as rotation time.
    assert_eq!(target.repo.as_deref(), Some(stack.root().dir()));
    target.since = Some(started);
    let (_dir, previous) = previous_dir(&NodeSecrets::generate());

    // Let the stack settle (stats flushed, consumers idle) before the first reading.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = write_counters(&stack).await;
    let redactor = stack.redactor().clone();
    let results = verify(target, Some(previous), &redactor).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = write_counters(&stack).await;

    let not_passed: Vec<&CheckResult> = results
        .values()
        .filter(|r| r.outcome != Outcome::Pass)
        .collect();
    assert!(
        not_passed.is_empty(),
        "every check passes on a fresh replica:\n{}",
        summary(&results)
    );
    assert_eq!(results.len(), catalogue().len());
    assert_eq!(before, after, "verify changed the node's write counters");
    testing::down(stack).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_check_fails_after_the_sabotage_it_exists_to_catch_naming_service_and_variable() {
    let since = SystemTime::now();
    let stack = testing::start().await;
    let client = ReplicaClient::new(&stack);
    let initial = stack.initial_secrets().clone();
    let root = stack.root().dir().to_path_buf();
    let leaks = Redactor::new();
    for name in SECRET_NAMES {
        leaks.add(name, initial.get(name));
    }

    // memory: a wrong DB_PASSWORD, recreated (its logs fill with 28P01).
    let wrong_db = NodeSecrets::generate_one("DB_PASSWORD");
    leaks.add("WRONG_DB", &wrong_db);
    stack
        .edit_env(Service::Memory, |f| f.set("DB_PASSWORD", &wrong_db))
        .unwrap();
    stack.recreate(Service::Memory).await.unwrap();
    // router: a new DeepSeek key in the file, the old one kept as _OLD, `docker restart`.
    let new_deepseek = NodeSecrets::generate_one("DEEPSEEK_API_KEY");
    leaks.add("NEW_DEEPSEEK", &new_deepseek);
    assert_eq!(client.issue_key("deepseek", &new_deepseek).await, 200);
    stack
        .edit_env(Service::Router, |f| {
            f.set("DEEPSEEK_API_KEY_OLD", initial.get("DEEPSEEK_API_KEY"));
            f.set("DEEPSEEK_API_KEY", &new_deepseek);
        })
        .unwrap();
    stack.restart(Service::Router).await.unwrap();
    stack
        .wait_ready(Service::Router, Duration::from_secs(30))
        .await
        .unwrap();
    // gateway: a new JWT_SECRET in the file only, and a world-readable .env.
    let new_jwt = NodeSecrets::generate_one("JWT_SECRET");
    leaks.add("NEW_JWT", &new_jwt);
    stack
        .edit_env(Service::Gateway, |f| f.set("JWT_SECRET", &new_jwt))
        .unwrap();
    let gw_env = root.join("gateway-bot/.env");
    std::fs::set_permissions(&gw_env, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    // mistral: revoked at the provider.
    assert_eq!(
        client
            .revoke_key("mistral", initial.get("MISTRAL_API_KEY"))
            .await,
        200
    );
    // backups: the runbook's own tarball, 40 days old.
    let tarball = root.join("secrets_backup_20251016.tar.gz");
    let tar = std::process::Command::new("tar")
        .arg("-C")
        .arg(&root)
        .args([
            "-czf",
            tarball.to_str().unwrap(),
            "gateway-bot/.env",
            "services/router/.env",
            "services/memory-service/.env",
        ])
        .status()
        .unwrap();
    assert!(tar.success());
    let forty_days_ago = SystemTime::now() - Duration::from_secs(40 * 86_400);
    std::fs::File::options()
        .write(true)
        .open(&tarball)
        .unwrap()
        .set_modified(forty_days_ago)
        .unwrap();
    // git: a tracked .env and a tracked note holding the JWT secret.
    git(&root, &["init", "-q"]);
    std::fs::write(
        root.join("notes.txt"),
        format!("neo4j = {}\n", initial.get("NEO4J_PASSWORD")),
    )
    .unwrap();
    git(
        &root,
        &["add", "-f", "services/parser-pipeline/.env", "notes.txt"],
    );
    // NATS: the worker password changed on the server only, reloaded; workers drop off.
    stack
        .root()
        .write_nats_conf(&[
            (
                "gateway".into(),
                initial.get("NATS_PASSWORD_GATEWAY").into(),
            ),
            ("router".into(), initial.get("NATS_PASSWORD_ROUTER").into()),
            (
                "worker".into(),
                NodeSecrets::generate_one("NATS_PASSWORD_WORKER"),
            ),
        ])
        .unwrap();
    stack.reload_nats().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while nats_connected_users(&stack)
        .await
        .unwrap()
        .iter()
        .any(|u| u == "worker")
    {
        assert!(
            Instant::now() < deadline,
            "workers still connected after the reload"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Traffic after the sabotage: the router infers with its old DeepSeek key; events wait.
    let (status, body) = ReplicaClient::new(&stack).infer("daarwizz", 7001).await; // ports moved on restart
    assert_eq!(status, 200, "{body}");
    let nats = async_nats::ConnectOptions::with_user_and_password(
        "gateway".into(),
        initial.get("NATS_PASSWORD_GATEWAY").into(),
    )
    .connect(stack.nats_url())
    .await
    .unwrap();
    let js = async_nats::jetstream::new(nats);
    for i in 0..3 {
        js.publish(format!("events.sabotage.{i}"), "{}".into())
            .await
            .unwrap()
            .await
            .unwrap();
    }

    // The memory service has tried the wrong password by now (its schema loop retries every
    // 400 ms from its start); on a loaded machine its first try can still be under way.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !stack
        .logs(Service::Memory, 50)
        .await
        .unwrap_or_default()
        .contains("28P01")
    {
        assert!(
            Instant::now() < deadline,
            "memory never tried the wrong DB_PASSWORD"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut target = stack.target();
    target.since = Some(since);
    target.repo = Some(root.clone());
    let results = verify(target, None, &Redactor::new()).await;
    let expect: &[(&str, &[&str])] = &[
        (
            "postgres.auth.current.memory-service",
            &[
                "services/memory-service/.env",
                "memory-service",
                "DB_PASSWORD",
                "28P01",
            ],
        ),
        ("ready.memory-service", &["db"]),
        (
            "env.shared-secrets-agree",
            &["DB_PASSWORD", "services/memory-service/.env:DB_PASSWORD"],
        ),
        (
            "logs.auth-errors.memory-service",
            &["authentication error line(s)"],
        ),
        (
            "provider.usage.current-only",
            &["deepseek", "DEEPSEEK_API_KEY", "used after the rotation"],
        ),
        (
            "env.no-old-keys",
            &["services/router/.env still has DEEPSEEK_API_KEY_OLD"],
        ),
        (
            "env.container-matches-file.router",
            &[
                "router",
                "DEEPSEEK_API_KEY differs",
                "DEEPSEEK_API_KEY_OLD is in services/router/.env but not in the container",
            ],
        ),
        ("gateway.jwt.current", &["JWT_SECRET", "HTTP 401"]),
        (
            "env.container-matches-file.gateway",
            &["JWT_SECRET differs"],
        ),
        ("env.file-mode", &["gateway-bot/.env is mode 0644"]),
        (
            "provider.key.current.mistral",
            &["mistral", "MISTRAL_API_KEY", "401"],
        ),
        ("ready.router", &["mistral"]),
        (
            "backups.retention",
            &["secrets_backup_20251016.tar.gz is 40 days old"],
        ),
        (
            "backups.encrypted",
            &[
                "secrets_backup_20251016.tar.gz holds 3 .env file(s)",
                "in clear",
            ],
        ),
        (
            "git.no-secrets-tracked",
            &[
                "services/parser-pipeline/.env is tracked",
                "notes.txt contains the value of NEO4J_PASSWORD",
            ],
        ),
        (
            "nats.auth.current.crewai-nats-worker",
            &["crewai-nats-worker", "NATS_PASSWORD", "`worker`"],
        ),
        ("nats.clients.users", &["no client connected as `worker`"]),
        ("nats.jetstream.healthy", &["stalled", "crewai-nats-worker"]),
        ("logs.auth-errors.nats", &["authentication error"]),
    ];
    assert_fail_with(&results, expect);
    let everything = summary(&results);
    assert_eq!(
        leaks.find_leak(&everything),
        None,
        "a secret value appears in the evidence"
    );
    testing::down(stack).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn previous_checks_fail_when_files_are_rotated_but_the_servers_still_accept_the_old_secrets()
{
    let stack = testing::start().await;
    let client = ReplicaClient::new(&stack);
    let initial = stack.initial_secrets().clone();
    let (_dir, previous) = previous_dir(&initial);
    let leaks = Redactor::new();
    for name in SECRET_NAMES {
        leaks.add(name, initial.get(name));
    }
    // Every .env gets a new DB password, the workers a new NATS password, the router a new
    // Grok key (issued, the old one not revoked), the gateway a new JWT secret: no server-side
    // change, no recreate.
    let db = NodeSecrets::generate_one("DB_PASSWORD");
    let worker = NodeSecrets::generate_one("NATS_PASSWORD_WORKER");
    let grok = NodeSecrets::generate_one("GROK_API_KEY");
    let jwt = NodeSecrets::generate_one("JWT_SECRET");
    for (n, v) in [("DB", &db), ("W", &worker), ("G", &grok), ("J", &jwt)] {
        leaks.add(n, v);
    }
    for s in [
        Service::Gateway,
        Service::Router,
        Service::Memory,
        Service::CrewaiWorker,
        Service::ParserPipeline,
    ] {
        stack.edit_env(s, |f| f.set("DB_PASSWORD", &db)).unwrap();
    }
    for s in [Service::CrewaiWorker, Service::ParserPipeline] {
        stack
            .edit_env(s, |f| f.set("NATS_PASSWORD", &worker))
            .unwrap();
    }
    assert_eq!(client.issue_key("grok", &grok).await, 200);
    stack
        .edit_env(Service::Router, |f| f.set("GROK_API_KEY", &grok))
        .unwrap();
    stack
        .edit_env(Service::Gateway, |f| f.set("JWT_SECRET", &jwt))
        .unwrap();

    let results = verify(stack.target(), Some(previous), &Redactor::new()).await;
    let expect: &[(&str, &[&str])] = &[
        (
            "postgres.auth.current.gateway",
            &["DB_PASSWORD", "gateway", "rejected"],
        ),
        (
            "postgres.auth.current.parser-pipeline",
            &["DB_PASSWORD", "parser-pipeline", "rejected"],
        ),
        (
            "postgres.auth.previous",
            &["previous DB_PASSWORD still logs in"],
        ),
        (
            "nats.auth.current.parser-pipeline",
            &["parser-pipeline", "`worker`", "rejected"],
        ),
        (
            "nats.auth.previous.parser-pipeline",
            &["previous NATS password still connects as `worker`"],
        ),
        (
            "provider.key.previous.grok",
            &["grok still accepts the previous GROK_API_KEY"],
        ),
        (
            "gateway.jwt.previous",
            &["previous JWT_SECRET", "still accepts"],
        ),
    ];
    assert_fail_with(&results, expect);
    assert_eq!(
        results["provider.key.previous.deepseek"].outcome,
        Outcome::Fail,
        "not rotated: {}",
        results["provider.key.previous.deepseek"].evidence
    );
    assert_eq!(
        leaks.find_leak(&summary(&results)),
        None,
        "a secret value appears in the evidence"
    );
    testing::down(stack).await;
}
