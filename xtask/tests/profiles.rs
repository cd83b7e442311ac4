//! A node profile derived from a compose file in the platform's public style, through
//! `cargo xtask node profile --compose`, wires the replica a rehearsal then runs on: the
//! rehearsal's checks read the secrets the way that compose file has the services read them.

use harness::exit_codes;
use harness::profile::{Form, Mount, MountKind, NodeProfile, SecretWiring, Source, WhenMissing};
use std::path::Path;
use std::process::Command;

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

/// A node directory in the platform's style: the memory service's `DATABASE_URL` and the
/// router's `DB_PASSWORD` interpolated from the project `.env`, each service's `env_file`, the
/// NATS config mounted as a file.
fn public_style_node(dir: &Path) -> std::path::PathBuf {
    for sub in ["services/memory-service", "services/router", "nats"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    std::fs::write(dir.join("nats/nats-server.conf"), "port: 4222\n").unwrap();
    std::fs::write(dir.join(".env"), "DB_PASSWORD=canary-db-41d7\n").unwrap();
    std::fs::write(
        dir.join("services/memory-service/.env"),
        "QDRANT_API_KEY=canary-qdrant-09ab\n",
    )
    .unwrap();
    std::fs::write(dir.join("services/router/.env"), "ROUTER_PORT=9102\n").unwrap();
    let compose = dir.join("docker-compose.node1.yml");
    std::fs::write(
        &compose,
        "services:\n\
         \x20 dagi-memory-service-node1:\n\
         \x20   image: memory:latest\n\
         \x20   env_file: ./services/memory-service/.env\n\
         \x20   environment:\n\
         \x20     - DATABASE_URL=postgresql+psycopg://daarion:${DB_PASSWORD}@dagi-postgres:5432/daarion_main\n\
         \x20 dagi-router-node1:\n\
         \x20   image: router:latest\n\
         \x20   env_file: ./services/router/.env\n\
         \x20   environment:\n\
         \x20     DB_PASSWORD: ${DB_PASSWORD}\n\
         \x20 dagi-nats-node1:\n\
         \x20   image: nats:2\n\
         \x20   volumes:\n\
         \x20     - ./nats/nats-server.conf:/etc/nats/nats-server.conf:ro\n",
    )
    .unwrap();
    compose
}

#[test]
fn a_profile_derived_from_a_public_style_compose_file_wires_the_replica_a_rehearsal_runs_on() {
    let dir = std::env::temp_dir().join(format!("xtask-profiles-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let compose = public_style_node(&dir);
    let profile_path = dir.join("node.profile.toml");
    let (code, _, stderr) = xtask(&[
        "node",
        "profile",
        "--compose",
        compose.to_str().unwrap(),
        "--out",
        profile_path.to_str().unwrap(),
    ]);
    assert_eq!(code, exit_codes::OK, "{stderr}");
    assert!(!stderr.contains("canary"), "a value was printed: {stderr}");
    let profile = NodeProfile::load(&profile_path).unwrap();
    let names: Vec<&str> = profile.services.iter().map(|s| s.name.as_str()).collect();
    // In the order Compose's resolved config lists them (by name).
    assert_eq!(names, ["memory-service", "nats", "router"]);
    assert_eq!(
        profile.services[0].secrets,
        [
            SecretWiring {
                secret: "DB_PASSWORD".into(),
                variable: "DATABASE_URL".into(),
                form: Form::Url {
                    template:
                        "postgresql+psycopg://daarion:{password}@dagi-postgres:5432/daarion_main"
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
                    path: "services/memory-service/.env".into()
                },
                when_missing: WhenMissing::Fails,
            },
        ]
    );
    assert_eq!(
        profile.services[2].secrets,
        [SecretWiring {
            secret: "DB_PASSWORD".into(),
            variable: "DB_PASSWORD".into(),
            form: Form::Plain,
            source: Source::Interpolated {
                variable: "DB_PASSWORD".into()
            },
            when_missing: WhenMissing::Fails,
        }]
    );
    assert_eq!(
        profile.services[1].mounts,
        [Mount {
            container_path: "/etc/nats/nats-server.conf".into(),
            host_path: "./nats/nats-server.conf".into(),
            kind: MountKind::File,
        }]
    );
    assert_eq!(profile.replica_limits(), Vec::<String>::new());

    // Phase 3 as written rewrites every `.env` (the project's too) and only restarts: on this
    // node the memory service's URL and the router's password, interpolated on `up`, stay old;
    // its rollback restores the services' files but not the project `.env`, so after it the
    // two are rejected: the node is not restored (`breaks`, where the replica's own wiring is
    // `detected`).
    let out = dir.join("rehearsal");
    let (code, stdout, stderr) = xtask(&[
        "rehearse",
        "--only",
        "rotate/postgres",
        "--node-profile",
        profile_path.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, exit_codes::FAILURES, "{stdout}\n{stderr}");
    let journal: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("journal.json")).unwrap()).unwrap();
    assert_eq!(
        journal["node_profile"],
        "derived from a compose file by `cargo xtask node profile`"
    );
    let scenario = &journal["scenarios"][0];
    assert_eq!(scenario["actual"], "breaks", "{stdout}");
    let check = |checks: &str, id: &str| {
        scenario[checks]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .map(|c| {
                (
                    c["outcome"].as_str().unwrap().to_string(),
                    c["evidence"].as_str().unwrap().to_string(),
                )
            })
            .unwrap_or_else(|| panic!("no check {id}"))
    };
    let (outcome, evidence) = check("checks_after", "env.container-matches-file.memory-service");
    assert_eq!(outcome, "fail", "{evidence}");
    assert!(
        evidence.contains("DATABASE_URL differs from .env (DB_PASSWORD, interpolated on `up`)"),
        "{evidence}"
    );
    let (outcome, evidence) = check("checks_after", "env.container-matches-file.router");
    assert_eq!(outcome, "fail", "{evidence}");
    assert!(
        evidence.contains("DB_PASSWORD differs from .env (DB_PASSWORD, interpolated on `up`)"),
        "{evidence}"
    );
    assert_eq!(
        check("checks_after_rollback", "postgres.auth.current.router"),
        (
            "fail".to_string(),
            "DB_PASSWORD in .env (DB_PASSWORD, interpolated) (router) is rejected: 28P01 password authentication failed for user \"daarion\"".to_string()
        )
    );
    let _ = std::fs::remove_dir_all(&dir);
}
