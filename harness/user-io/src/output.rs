//! Writing output files safely: a unique temporary file created exclusively in the target's own
//! directory (never following a planted symlink), renamed over the target once complete, so a
//! reader never sees half a file and nothing is left behind on failure.

use std::io::Write;
use std::path::{Path, PathBuf};

/// An output path that cannot be written, found before any work is done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: cannot write an output file here: {reason}")]
pub struct OutputError {
    pub path: PathBuf,
    pub reason: String,
}

impl OutputError {
    fn at(path: &Path, reason: &str) -> Self {
        OutputError {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        }
    }
}

/// Whether `path` can take an output file: its directory exists and is writable, and `path`
/// is not a directory. Checked by creating (and removing) a temporary file beside it.
pub fn check_writable(path: &Path) -> Result<(), OutputError> {
    let err = |reason: &str| OutputError::at(path, reason);
    if path.as_os_str().is_empty() {
        return Err(err("the path is empty"));
    }
    if path.is_dir() {
        return Err(err("it is a directory"));
    }
    let dir = directory_of(path);
    if !dir.is_dir() {
        return Err(err("its directory does not exist"));
    }
    tempfile::Builder::new()
        .prefix(".rotation-output-")
        .tempfile_in(dir)
        .map(drop)
        .map_err(|e| err(&crate::input::io_reason(&e)))
}

/// Makes `dir` ready to take a command's output files, before any work: an existing,
/// writable directory, or one created (one level only) in an existing directory. A regular
/// file there, or a missing parent (a typo in the path), is refused, never worked around.
pub fn prepare_directory(dir: &Path) -> Result<(), OutputError> {
    let err = |reason: &str| OutputError::at(dir, reason);
    if dir.as_os_str().is_empty() {
        return Err(err("the path is empty"));
    }
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(err("it exists and is not a directory")),
        Err(_) if std::fs::symlink_metadata(dir).is_ok() => {
            return Err(err("it is a symbolic link to nothing"))
        }
        Err(_) => {
            if !directory_of(dir).is_dir() {
                return Err(err("its parent directory does not exist"));
            }
            std::fs::create_dir(dir).map_err(|e| err(&crate::input::io_reason(&e)))?;
        }
    }
    check_writable(&dir.join("probe")).map_err(|e| err(&e.reason))
}

/// Writes `bytes` to `path` through a fresh temporary file in the same directory (mode 0600
/// until renamed; then 0644 unless `path` existed, whose mode it keeps).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = directory_of(path);
    let mut file = tempfile::Builder::new()
        .prefix(".rotation-output-")
        .tempfile_in(dir)?;
    file.write_all(bytes)?;
    file.as_file().sync_all()?;
    let mode = std::fs::symlink_metadata(path)
        .ok()
        .filter(|m| m.is_file())
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777)
        .unwrap_or(0o644);
    std::fs::set_permissions(
        file.path(),
        std::os::unix::fs::PermissionsExt::from_mode(mode),
    )?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

fn directory_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_planted_symlink_at_the_output_path_is_replaced_and_its_victim_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let out = dir.path().join("report.json");
        std::os::unix::fs::symlink(&victim, &out).unwrap();
        write_atomic(&out, b"{}").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "{}");
        assert!(!std::fs::symlink_metadata(&out).unwrap().is_symlink());
    }

    #[test]
    fn an_output_directory_is_made_one_level_deep_and_never_over_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        std::fs::write(&file, "").unwrap();
        assert_eq!(
            prepare_directory(&file).unwrap_err().reason,
            "it exists and is not a directory"
        );
        assert_eq!(
            prepare_directory(&dir.path().join("x/y"))
                .unwrap_err()
                .reason,
            "its parent directory does not exist"
        );
        assert!(
            !dir.path().join("x").exists(),
            "no chain of directories made"
        );
        prepare_directory(&dir.path().join("reports")).unwrap();
        assert!(dir.path().join("reports").is_dir());
        prepare_directory(&dir.path().join("reports")).unwrap();
    }

    #[test]
    fn a_directory_or_a_missing_directory_is_refused_before_any_work() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            check_writable(dir.path()).unwrap_err().reason,
            "it is a directory"
        );
        assert_eq!(
            check_writable(&dir.path().join("no/such.json"))
                .unwrap_err()
                .reason,
            "its directory does not exist"
        );
        check_writable(&dir.path().join("ok.json")).unwrap();
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "nothing left behind"
        );
    }
}
