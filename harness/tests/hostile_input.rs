//! Arbitrary bytes as a runbook, a target file and a `--previous` archive: never a panic, an
//! error that quotes nothing, and time that grows with the size, not faster.

use harness::checks::secrets::SecretSet;
use harness::checks::Target;
use proptest::prelude::*;
use std::time::{Duration, Instant};

/// What any input of `bytes` bytes may cost at most, in a debug build on a loaded 2-core
/// machine: generous, because the point is the shape (no blow-up), not the speed (that is the
/// criterion benchmark's job).
fn bound(bytes: usize) -> Duration {
    Duration::from_secs(2) + Duration::from_micros(20) * bytes as u32
}

/// Pieces a runbook is made of, in any order and number: headings with and without numbers,
/// steps, fences that close and fences that do not, tables, and raw bytes.
fn runbook_fragment() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        (0u32..5).prop_map(|n| format!("\n### Phase {n}: P ({n} min)\n").into_bytes()),
        Just(b"\n### Phase x\n".to_vec()),
        Just(b"\n## Secrets Inventory\n\n| Secret | Location | Service | Rotation Frequency |\n|---|---|---|---|\n| A | b | c | d |\n".to_vec()),
        Just(b"\n## Rollback Procedure\n".to_vec()),
        Just(b"\n## Notes\n- keep backups 30 days\n".to_vec()),
        (1u32..4).prop_map(|n| format!("\n{n}. **Step {n}:**\n").into_bytes()),
        Just(b"   ```bash\n   docker restart dagi-router-node1\n   ```\n".to_vec()),
        Just(b"   ```bash\n   sed -i 's/A=.*/A=b/' .env\n".to_vec()),
        Just(b"~~~\nunclosed tilde\n".to_vec()),
        Just(b"- item\n  - nested\n".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..64),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn any_runbook_bytes_parse_or_fail_with_a_line_in_bounded_time(
        pieces in proptest::collection::vec(runbook_fragment(), 0..64)
    ) {
        let bytes = pieces.concat();
        let started = Instant::now();
        match harness::input::utf8(bytes.clone()) {
            Err(e) => prop_assert!(e.line() >= 1),
            Ok(text) => match harness::runbook::parse("gen.md", &text) {
                Ok(runbook) => {
                    let findings = harness::runbook::findings::analyse(&runbook);
                    let _ = harness::runbook::coverage::coverage(&runbook, &findings, &[], &[]);
                    let _ = harness::runbook::lock::Lock::of(&runbook, &[]);
                }
                Err(e) => {
                    prop_assert!(e.line <= text.lines().count() + 1, "{e}");
                    prop_assert!(!e.message.is_empty());
                }
            },
        }
        prop_assert!(started.elapsed() < bound(bytes.len()), "{:?} for {} bytes", started.elapsed(), bytes.len());
    }

    #[test]
    fn any_target_bytes_parse_or_fail_naming_a_line_in_bounded_time(
        bytes in proptest::collection::vec(any::<u8>(), 0..4096),
        example_prefix in any::<bool>(),
    ) {
        let example = include_str!("../../fixtures/targets/node1.toml");
        let bytes = if example_prefix { [example.as_bytes(), &bytes].concat() } else { bytes };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gen.toml");
        std::fs::write(&path, &bytes).unwrap();
        let started = Instant::now();
        if let Err(e) = Target::load(&path) {
            prop_assert!(e.line <= bytes.split(|b| *b == b'\n').count(), "{e}");
        }
        prop_assert!(started.elapsed() < bound(bytes.len()));
    }

    #[test]
    fn any_previous_archive_bytes_load_or_fail_quoting_nothing_read_here_or_over_ssh(
        body in proptest::collection::vec(any::<u8>(), 0..4096),
        kind in 0u8..3,
    ) {
        // Raw bytes, bytes behind a gzip header, and bytes behind a tar header's magic.
        let bytes = match kind {
            0 => body.clone(),
            1 => [&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3][..], &body].concat(),
            _ => {
                let mut b = body.clone();
                b.resize(b.len().max(512), 0);
                b[257..263].copy_from_slice(b"ustar\0");
                b
            }
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("previous.tar.gz");
        std::fs::write(&path, &bytes).unwrap();
        let started = Instant::now();
        // Read here, and as verify over SSH reads it: the same bytes, the same answer.
        let from_file = SecretSet::previous(&path);
        let from_bytes = SecretSet::previous_from_backup(&path.display().to_string(), &bytes, None);
        prop_assert_eq!(
            from_file.as_ref().map(|s| s.files.clone()).map_err(|e| e.to_string()),
            from_bytes.as_ref().map(|s| s.files.clone()).map_err(|e| e.to_string())
        );
        if let Err(e) = from_file {
            let message = e.to_string();
            // Whatever the error says, it is not a run of the input's own bytes.
            for window in body.windows(12) {
                if let Ok(piece) = std::str::from_utf8(window) {
                    prop_assert!(!message.contains(piece), "{message} quotes {piece:?}");
                }
            }
        }
        prop_assert!(started.elapsed() < bound(bytes.len()));
    }
}
