//! Repository rules, as rust-analyzer's `tidy.rs` keeps them: ARCHITECTURE.md stays true of
//! the code. Every file it names exists, and every source file of the four crates is named in
//! it, so a module added, renamed or removed fails here until the code map says so.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_path_buf()
}

/// Every file under `dir`, relative to the workspace (not `target/`, not hidden directories
/// other than `.config` and `.ci`).
fn files(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).expect("readable").flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().to_string();
        if path.is_dir() {
            let hidden = name.starts_with('.') && name != ".config" && name != ".ci";
            if !hidden && name != "target" {
                files(root, &path, out);
            }
        } else if let Ok(relative) = path.strip_prefix(root) {
            out.push(relative.to_string_lossy().to_string());
        }
    }
}

fn architecture() -> String {
    std::fs::read_to_string(workspace().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md")
}

/// Every backticked name in `text` that looks like a source or configuration file.
fn named_files(text: &str) -> BTreeSet<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|t| !t.contains(' '))
        .filter(|t| [".rs", ".toml", ".lock"].iter().any(|ext| t.ends_with(ext)))
        .map(str::to_string)
        .collect()
}

#[test]
fn every_file_architecture_md_names_exists() {
    let root = workspace();
    let mut all = Vec::new();
    files(&root, &root, &mut all);
    let missing: Vec<String> = named_files(&architecture())
        .into_iter()
        .filter(|named| {
            !all.iter()
                .any(|f| f == named || f.ends_with(&format!("/{named}")))
        })
        .collect();
    assert_eq!(
        missing,
        Vec::<String>::new(),
        "named in ARCHITECTURE.md, not in the tree"
    );
}

#[test]
fn every_source_file_of_the_workspace_is_in_architecture_md() {
    let root = workspace();
    let text = architecture();
    let mut unnamed = Vec::new();
    for krate in ["harness", "scenarios", "fixtures", "xtask"] {
        let mut sources = Vec::new();
        files(&root, &root.join(krate).join("src"), &mut sources);
        for source in sources.iter().filter(|f| f.ends_with(".rs")) {
            let name = Path::new(source)
                .file_name()
                .expect("a file")
                .to_string_lossy()
                .to_string();
            if ["lib.rs", "main.rs", "mod.rs"].contains(&name.as_str()) {
                continue;
            }
            if !text.contains(&format!("`{name}`")) && !text.contains(&format!("/{name}`")) {
                unnamed.push(source.clone());
            }
        }
    }
    assert_eq!(
        unnamed,
        Vec::<String>::new(),
        "not in ARCHITECTURE.md's code map"
    );
}

#[test]
fn a_file_the_code_map_names_that_is_not_in_the_tree_is_found() {
    let named =
        named_files("`wait.rs`: waits; `gone.rs` (removed), `a b.rs`, `.config/nextest.toml`");
    let expected: BTreeSet<String> = ["wait.rs", "gone.rs", ".config/nextest.toml"]
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(named, expected);
}

/// The lines of `text` outside `#[cfg(test)]` modules (a module opened by that attribute ends
/// at the file's end, as every one of ours does).
fn outside_tests(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .take_while(|(_, l)| l.trim() != "#[cfg(test)]")
        .map(|(i, l)| (i + 1, l))
}

#[test]
fn commands_print_only_through_the_console_layer() {
    let root = workspace();
    let mut found = Vec::new();
    for krate in ["harness", "xtask"] {
        let mut sources = Vec::new();
        files(&root, &root.join(krate).join("src"), &mut sources);
        for source in sources.iter().filter(|f| f.ends_with(".rs")) {
            if source.ends_with("console.rs") {
                continue;
            }
            let text = std::fs::read_to_string(root.join(source)).expect("readable");
            for (line, code) in outside_tests(&text) {
                let code = code.split("//").next().unwrap_or("");
                if ["println!", "print!", "eprintln!", "eprint!"]
                    .iter()
                    .any(|m| code.contains(m))
                {
                    found.push(format!("{source}:{line}"));
                }
            }
        }
    }
    assert_eq!(
        found,
        Vec::<String>::new(),
        "print with harness::outln!/out!/errln! (harness/src/console.rs): std's macros panic when a pipe closes"
    );
}
