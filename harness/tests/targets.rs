//! Target files as a user writes them: the shipped example loads, and bad input gives an error
//! naming the file, the line and the field, never a panic.

use harness::checks::Target;
use proptest::prelude::*;
use std::path::Path;

fn example() -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/targets/node1.toml"),
    )
    .unwrap()
}

#[test]
fn the_shipped_example_target_loads_with_every_service_and_provider() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/targets/node1.toml");
    let t = Target::load(&path).unwrap();
    assert_eq!(t.name, "node1");
    assert_eq!(t.services.len(), 5);
    // The four LLM providers, Qdrant, Neo4j and the four bots' Telegram tokens.
    assert_eq!(t.providers.len(), 10);
    let qdrant = &t.providers["qdrant"];
    assert_eq!(
        (qdrant.service.as_str(), qdrant.auth),
        ("memory-service", harness::checks::target::KeyAuth::ApiKey)
    );
    assert_eq!(t.postgres.database, "daarion_main");
    assert!(t.since.is_some());
    assert_eq!(t.env_paths().len(), 6);
}

#[test]
fn a_missing_target_file_names_the_file() {
    let e = Target::load(Path::new("/nonexistent/node.toml")).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("/nonexistent/node.toml: target file: cannot read it: No such file"),
        "{e}"
    );
}

#[test]
fn a_missing_field_names_the_field_and_the_table_line() {
    let text = example().replace("port = 5432\n", "");
    let e = Target::parse("node.toml", &text).unwrap_err();
    assert!(e.message.contains("missing field `port`"), "{e}");
    let line = text.lines().position(|l| l == "[postgres]").unwrap() + 1;
    assert_eq!(e.line, line, "{e}");
}

#[test]
fn a_misspelt_field_is_named_with_its_line() {
    let text = example().replace("monitoring = ", "monitor = ");
    let e = Target::parse("node.toml", &text).unwrap_err();
    assert!(e.message.contains("unknown field `monitor`"), "{e}");
    let line = text
        .lines()
        .position(|l| l.starts_with("monitor = "))
        .unwrap()
        + 1;
    assert_eq!(e.line, line);
}

#[test]
fn a_wrongly_typed_value_and_a_bad_time_are_errors_at_their_line() {
    let e = Target::parse(
        "node.toml",
        &example().replace("port = 5432", "port = \"5432\""),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "node.toml:57: field `postgres.port`: expected u16, found a string"
    );
    let e = Target::parse(
        "node.toml",
        &example().replace("2026-11-25T10:00:00Z", "yesterday"),
    )
    .unwrap_err();
    assert!(e.message.contains("not an RFC 3339 time"), "{e}");
    assert_eq!(e.line, 8, "{e}");
}

#[test]
fn an_unknown_service_is_named_with_the_known_ones() {
    let e = Target::parse(
        "node.toml",
        &example().replace("[services.router]", "[services.routr]"),
    )
    .unwrap_err();
    assert!(e.message.contains("unknown service `routr`"), "{e}");
    assert!(e.message.contains("router"), "{e}");
}

proptest! {
    #[test]
    fn any_text_is_a_target_or_an_error_never_a_panic(text in "\\PC{0,300}") {
        let _ = Target::parse("gen.toml", &text);
    }

    #[test]
    fn the_example_with_any_line_broken_is_a_target_or_an_error(line in 0usize..80, junk in "[ -~]{0,12}") {
        let text: String = example()
            .lines()
            .enumerate()
            .map(|(i, l)| if i == line { format!("{junk}\n") } else { format!("{l}\n") })
            .collect();
        if let Err(e) = Target::parse("gen.toml", &text) {
            prop_assert!(e.line <= text.lines().count() + 1);
            prop_assert!(!e.message.is_empty());
        }
    }
}

#[test]
fn previous_secrets_load_from_the_phase1_backup_tarball_made_by_the_runbooks_own_command() {
    use harness::checks::secrets::SecretSet;
    use harness::replica_root::{NodeSecrets, ReplicaRoot, RootOptions};
    let dir = std::env::temp_dir().join(format!("previous-tarball-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let secrets = NodeSecrets::generate();
    ReplicaRoot::create(&dir, &secrets, &RootOptions::default()).unwrap();
    std::fs::write(dir.join("docker-compose.node1.yml"), "services: {}\n").unwrap();
    // Phase 1 step 1, as written (with a fixed name instead of the date).
    let status = std::process::Command::new("sh")
        .current_dir(&dir)
        .args(["-c", "tar -czf secrets_backup.tar.gz gateway-bot/.env services/*/.env docker-compose.node1.yml"])
        .status()
        .unwrap();
    assert!(status.success());
    let set = SecretSet::previous(&dir.join("secrets_backup.tar.gz")).unwrap();
    assert_eq!(
        set.files.len(),
        6,
        "{:?}",
        set.files.keys().collect::<Vec<_>>()
    );
    assert_eq!(
        set.value(Path::new("services/router/.env"), "DEEPSEEK_API_KEY"),
        Some(secrets.get("DEEPSEEK_API_KEY"))
    );
    let not_tar = dir.join("gateway-bot/.env");
    let e = SecretSet::previous(&not_tar).unwrap_err();
    assert!(
        e.to_string().starts_with(&not_tar.display().to_string()),
        "{e}"
    );
    assert!(
        !e.to_string().contains(secrets.get("JWT_SECRET")),
        "the error never holds a value"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn previous_secrets_load_from_the_v2_runbooks_encrypted_backup_with_its_passphrase_only() {
    use harness::checks::secrets::SecretSet;
    use harness::replica_root::{NodeSecrets, ReplicaRoot, RootOptions};
    let dir = std::env::temp_dir().join(format!("previous-encrypted-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let secrets = NodeSecrets::generate();
    ReplicaRoot::create(&dir, &secrets, &RootOptions::default()).unwrap();
    std::fs::write(dir.join("docker-compose.node1.yml"), "services: {}\n").unwrap();
    let passphrase = "pass phrase with $ and ' and \" in it";
    // v2 Phase 1 step 1, as written (with a fixed name instead of the date).
    let status = std::process::Command::new("bash")
        .current_dir(&dir)
        .env("BACKUP_PASSPHRASE", passphrase)
        .args([
            "-c",
            "tar -czf - gateway-bot/.env services/*/.env docker-compose.node1.yml \
             | openssl enc -aes-256-cbc -pbkdf2 -salt -pass env:BACKUP_PASSPHRASE \
               -out secrets_backup.tar.gz.enc",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let backup = dir.join("secrets_backup.tar.gz.enc");

    let set = SecretSet::previous_with(&backup, Some(passphrase)).unwrap();
    assert_eq!(set.files.len(), 6);
    assert_eq!(
        set.value(Path::new("services/router/.env"), "DEEPSEEK_API_KEY"),
        Some(secrets.get("DEEPSEEK_API_KEY"))
    );

    let without = SecretSet::previous_with(&backup, None).unwrap_err();
    assert_eq!(
        without.to_string(),
        format!(
            "{}: cannot read the previous secrets: an encrypted backup (`openssl enc`, as the v2 runbook writes it): export \
             BACKUP_PASSPHRASE from the secret store to read it",
            backup.display()
        )
    );
    let wrong = SecretSet::previous_with(&backup, Some("not the passphrase")).unwrap_err();
    assert_eq!(
        wrong.to_string(),
        format!(
            "{}: cannot read the previous secrets: an encrypted backup that BACKUP_PASSPHRASE does not decrypt (a wrong \
             passphrase, or a damaged file)",
            backup.display()
        )
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
