//! The shell runner's unit tests: rewriting, tracing, secrets kept out of the trace.

use super::{rewrite, Rewriting};

fn replica() -> Rewriting {
    Rewriting {
        root: "/tmp/rotation-replica-ab12".into(),
        ports: vec![(9300, 40001)],
        host: "127.0.0.1".into(),
        containers: vec![
            ("dagi-router-node1".into(), "dagi-router-node1-ab12".into()),
            ("dagi-postgres".into(), "dagi-postgres-ab12".into()),
        ],
        project: "rotation-replica-ab12".into(),
        scale: 0.1,
    }
}

/// Traced as bash traces them (`PS4='+ '`), a secret with a quote and a space.
const TRACE: &str = "+ X='it'\\''s a s3cret'\n+ true\n+ PGPASSWORD='it'\\''s a s3cret'\n+ env\n+ echo 'it'\\''s a s3cret'\n++ printf %s 'it'\\''s a s3cret'\n+ V='it'\\''s a s3cret'\n+ nl='a\nb'\n+ cat /dev/null\n";

#[test]
fn a_secret_in_a_builtin_an_assignment_or_an_environment_is_not_on_a_command_line() {
    let r = harness::redact::Redactor::new();
    r.add("DB_PASSWORD", "it's a s3cret");
    assert_eq!(super::secrets_in_trace(TRACE, &r), Vec::<String>::new());
}

#[test]
fn a_secret_in_a_programs_arguments_is_named_once_however_it_is_quoted() {
    let r = harness::redact::Redactor::new();
    r.add("DB_PASSWORD", "it's a s3cret");
    r.add("NATS_PASSWORD", "n4ts-secret");
    let trace = format!(
        "{TRACE}+ sed -n 's/it'\\''s a s3cret//' /dev/null\n++ grep -c n4ts-secret\n+ grep -c 'it'\\''s a s3cret'\n+ docker exec db psql -c 'ALTER USER x PASSWORD '\\''n4ts-secret'\\'';'\n"
    );
    assert_eq!(
        super::secrets_in_trace(&trace, &r),
        vec!["DB_PASSWORD".to_string(), "NATS_PASSWORD".to_string()]
    );
}

/// A block run for real: a `sed` that lives a few milliseconds with the secret in its
/// arguments is named, however briefly it ran; the same value through `echo` (a builtin),
/// an environment variable, or written in the block's own text is not.
#[tokio::test]
async fn a_short_lived_process_with_a_secret_in_its_arguments_is_seen_every_time() {
    let r = harness::redact::Redactor::new();
    r.add("DB_PASSWORD", "it's a s3cret");
    let dir = tempfile::tempdir().unwrap();
    let env = [("NEW_DB_PASSWORD".to_string(), "it's a s3cret".to_string())];
    let run = |script: &'static str| {
        let (r, dir, env) = (r.clone(), dir.path().to_path_buf(), env.clone());
        async move {
            let deadline = std::time::Duration::from_secs(10);
            super::run(script, script, &dir, deadline, &r, &dir, &env)
                .await
                .0
        }
    };
    for _ in 0..5 {
        let sed = run("sed -n \"s/$NEW_DB_PASSWORD//\" /dev/null").await;
        assert_eq!(sed.exit_code, Some(0), "{}", sed.output_tail);
        assert_eq!(sed.secrets_in_argv, vec!["DB_PASSWORD".to_string()]);
    }
    let quiet =
        run("echo \"$NEW_DB_PASSWORD\" > /dev/null; PGPASSWORD=\"$NEW_DB_PASSWORD\" true").await;
    assert_eq!(quiet.exit_code, Some(0), "{}", quiet.output_tail);
    assert_eq!(quiet.secrets_in_argv, Vec::<String>::new());
    // A value written in the block itself is in the arguments of the `bash -c` that runs
    // it here, not of anything an operator's shell would start.
    let literal = run("sleep 0.3 # it's a s3cret").await;
    assert_eq!(literal.exit_code, Some(0), "{}", literal.output_tail);
    assert_eq!(literal.secrets_in_argv, Vec::<String>::new());
    // Nor of its forks: a subshell keeps the block's arguments for as long as it runs (and
    // every command's fork has them until it execs).
    let forked = run("(sleep 0.3; true) # it's a s3cret").await;
    assert_eq!(forked.exit_code, Some(0), "{}", forked.output_tail);
    assert_eq!(forked.secrets_in_argv, Vec::<String>::new());
}

#[test]
fn on_a_remote_engine_a_blocks_ports_go_to_the_engines_host() {
    let with = Rewriting {
        host: "10.1.2.3".into(),
        ..replica()
    };
    assert_eq!(
        rewrite(
            "curl -fsS http://localhost:9300/ready\ncurl 127.0.0.1:9300/health",
            &with
        ),
        "curl -fsS http://10.1.2.3:40001/ready\ncurl 10.1.2.3:40001/health\n"
    );
}

#[test]
fn docker_commands_get_the_stacks_container_names() {
    assert_eq!(
        rewrite("docker restart dagi-router-node1\n", &replica()),
        "docker restart dagi-router-node1-ab12\n"
    );
    assert_eq!(
        rewrite("docker exec dagi-postgres psql -c 'SELECT 1'", &replica()),
        "docker exec dagi-postgres-ab12 psql -c 'SELECT 1'\n"
    );
}

#[test]
fn compose_commands_keep_service_names_in_both_spellings() {
    for block in [
        "docker compose -f docker-compose.node1.yml up -d --force-recreate dagi-router-node1",
        "docker-compose -f docker-compose.node1.yml up -d --force-recreate dagi-router-node1",
        "docker-compose --file /opt/microdao-daarion/docker-compose.node1.yml restart dagi-postgres dagi-router-node1",
        "sudo docker compose --env-file .env up -d --no-deps dagi-router-node1",
        "COMPOSE_HTTP_TIMEOUT=200 docker-compose up -d dagi-router-node1",
    ] {
        let ran = rewrite(block, &replica());
        assert!(!ran.contains("-ab12 ") && !ran.trim_end().ends_with("-ab12"), "{block} -> {ran}");
    }
}

#[test]
fn a_container_name_after_a_compose_command_on_the_same_line_is_rewritten() {
    assert_eq!(
        rewrite(
            "docker-compose up -d dagi-router-node1 && docker logs dagi-router-node1",
            &replica()
        ),
        "docker-compose up -d dagi-router-node1 && docker logs dagi-router-node1-ab12\n"
    );
    assert_eq!(
        rewrite(
            "docker compose ps; docker restart dagi-postgres",
            &replica()
        ),
        "docker compose ps; docker restart dagi-postgres-ab12\n"
    );
}

#[test]
fn a_compose_command_continued_over_lines_keeps_its_service_names() {
    assert_eq!(
        rewrite(
            "docker compose -f docker-compose.node1.yml \\\n  up -d --force-recreate \\\n  dagi-router-node1\ndocker restart dagi-router-node1",
            &replica()
        ),
        "docker compose -f docker-compose.node1.yml \\\n  up -d --force-recreate \\\n  dagi-router-node1\ndocker restart dagi-router-node1-ab12\n"
    );
}

#[test]
fn the_production_project_name_means_the_stacks_project() {
    for (block, ran) in [
        (
            "docker-compose -p microdao-daarion restart",
            "docker-compose -p rotation-replica-ab12 restart\n",
        ),
        (
            "docker compose --project-name=microdao-daarion up -d dagi-router-node1",
            "docker compose --project-name=rotation-replica-ab12 up -d dagi-router-node1\n",
        ),
        (
            "docker compose -pmicrodao-daarion ps",
            "docker compose -protation-replica-ab12 ps\n",
        ),
        ("docker compose -p other ps", "docker compose -p other ps\n"),
    ] {
        assert_eq!(rewrite(block, &replica()), ran, "{block}");
    }
}

#[test]
fn paths_ports_and_sleeps_are_the_replicas() {
    assert_eq!(
        rewrite(
            "cd /opt/microdao-daarion\ncurl localhost:9300/health\nsleep 30\nls services/parser-pipeline/",
            &replica()
        ),
        "cd /tmp/rotation-replica-ab12\ncurl 127.0.0.1:40001/health\nsleep 3.00\nls services/parser-pipeline/\n"
    );
}
