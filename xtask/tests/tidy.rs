//! Repository rules, as rust-analyzer's `tidy.rs` keeps them: ARCHITECTURE.md stays true of
//! the code (every file it names exists, every source file of every crate is named in it, no
//! crate depends on one its layers place above it), every module says what it is for, the
//! README is a manual whose exit codes are `harness::exit_codes`, and the project's text speaks
//! of the project only.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

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
    for krate in crates() {
        let mut sources = Vec::new();
        files(&root, &krate.dir.join("src"), &mut sources);
        for source in sources.iter().filter(|f| f.ends_with(".rs")) {
            let name = Path::new(source)
                .file_name()
                .expect("a file")
                .to_string_lossy()
                .to_string();
            // A folder's `tests.rs` holds its module's unit tests, as ARCHITECTURE.md says.
            if ["lib.rs", "main.rs", "mod.rs", "tests.rs"].contains(&name.as_str()) {
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
    // The replica's services (`fixtures`) are not commands: they log to their container's stdout.
    for krate in crates().into_iter().filter(|c| c.name != "fixtures") {
        let mut sources = Vec::new();
        files(&root, &krate.dir.join("src"), &mut sources);
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
        "print with harness::outln!/out!/errln! (harness/user-io/src/console.rs): std's macros panic when a pipe closes"
    );
}

/// A crate of the workspace: its name, its directory, and the workspace crates it depends on
/// (normal and build dependencies; dev-dependencies may reach anywhere a test needs).
#[derive(Debug, Clone, PartialEq)]
struct Crate {
    name: String,
    dir: PathBuf,
    depends_on: Vec<String>,
}

/// `cargo metadata` of the workspace's own packages.
fn metadata() -> Value {
    let output = std::process::Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(workspace())
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("cargo metadata's JSON")
}

/// The workspace's crates, as `cargo metadata` gives them.
fn crates() -> Vec<Crate> {
    crates_of(&metadata())
}

fn crates_of(metadata: &Value) -> Vec<Crate> {
    let packages = metadata["packages"].as_array().expect("packages");
    let mut out: Vec<Crate> = packages
        .iter()
        .map(|p| Crate {
            name: p["name"].as_str().expect("a name").to_string(),
            dir: Path::new(p["manifest_path"].as_str().expect("a manifest"))
                .parent()
                .expect("its directory")
                .to_path_buf(),
            depends_on: p["dependencies"]
                .as_array()
                .expect("dependencies")
                .iter()
                .filter(|d| d["path"].is_string() && d["kind"].as_str() != Some("dev"))
                .map(|d| d["name"].as_str().expect("a name").to_string())
                .collect(),
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The crates of ARCHITECTURE.md's "Layers" section, from the bottom (`1. `name` — …`).
fn layers(architecture: &str) -> Vec<String> {
    architecture
        .split("\n## ")
        .find(|section| section.starts_with("Layers"))
        .unwrap_or("")
        .lines()
        .filter_map(|line| {
            let (number, rest) = line.split_once(". `")?;
            number.parse::<u32>().ok()?;
            Some(rest.split('`').next()?.to_string())
        })
        .collect()
}

/// Every dependency that goes up or sideways in `layers`, and every crate they do not place.
fn layering_violations(layers: &[String], crates: &[Crate]) -> Vec<String> {
    let level = |name: &str| layers.iter().position(|l| l == name);
    let mut out = Vec::new();
    for krate in crates {
        let Some(own) = level(&krate.name) else {
            out.push(format!("{}: not in ARCHITECTURE.md's layers", krate.name));
            continue;
        };
        for dependency in &krate.depends_on {
            match level(dependency) {
                Some(theirs) if theirs < own => {}
                Some(_) => out.push(format!(
                    "{} depends on {}, which ARCHITECTURE.md does not place below it",
                    krate.name, dependency
                )),
                None => out.push(format!("{dependency}: not in ARCHITECTURE.md's layers")),
            }
        }
    }
    out
}

#[test]
fn every_crate_depends_only_on_crates_its_layers_place_below_it() {
    let layers = layers(&architecture());
    assert!(
        layers.len() >= 5,
        "ARCHITECTURE.md lists its layers: {layers:?}"
    );
    assert_eq!(
        layering_violations(&layers, &crates()),
        Vec::<String>::new()
    );
}

#[test]
fn an_upward_dependency_and_an_unplaced_crate_are_found() {
    let metadata = serde_json::json!({"packages": [
        {"name": "wiring", "manifest_path": "/w/harness/wiring/Cargo.toml", "dependencies": []},
        {"name": "harness", "manifest_path": "/w/harness/Cargo.toml", "dependencies": [
            {"name": "wiring", "path": "/w/harness/wiring", "kind": null},
            {"name": "fixtures", "path": "/w/fixtures", "kind": null},
            {"name": "serde", "kind": null},
            {"name": "scenarios", "path": "/w/scenarios", "kind": "dev"}
        ]},
        {"name": "fixtures", "manifest_path": "/w/fixtures/Cargo.toml", "dependencies": [
            {"name": "wiring", "path": "/w/harness/wiring", "kind": null}
        ]},
        {"name": "newcomer", "manifest_path": "/w/newcomer/Cargo.toml", "dependencies": []}
    ]});
    let layers = layers("# A\n\n## Layers\n\n1. `wiring` — a\n2. `harness` — b\n3. `fixtures` — c\n\n## Code map\n\n1. `x` — no\n");
    assert_eq!(layers, ["wiring", "harness", "fixtures"]);
    assert_eq!(
        layering_violations(&layers, &crates_of(&metadata)),
        [
            "harness depends on fixtures, which ARCHITECTURE.md does not place below it",
            "newcomer: not in ARCHITECTURE.md's layers",
        ]
    );
}

#[test]
fn every_module_opens_with_a_line_saying_what_it_is_for() {
    let root = workspace();
    let mut without = Vec::new();
    for krate in crates() {
        let mut sources = Vec::new();
        for dir in ["src", "tests", "benches"] {
            if krate.dir.join(dir).is_dir() {
                files(&root, &krate.dir.join(dir), &mut sources);
            }
        }
        for source in sources.iter().filter(|f| f.ends_with(".rs")) {
            let text = std::fs::read_to_string(root.join(source)).expect("readable");
            if !opens_with_module_doc(&text) {
                without.push(source.clone());
            }
        }
    }
    assert_eq!(
        without,
        Vec::<String>::new(),
        "modules without a `//!` line first"
    );
}

fn opens_with_module_doc(text: &str) -> bool {
    text.lines()
        .find(|l| !l.trim().is_empty())
        .is_some_and(|l| l.starts_with("//!"))
}

#[test]
fn a_module_whose_first_line_is_code_has_no_doc_line() {
    assert!(opens_with_module_doc("\n//! Waits.\nuse std::time;\n"));
    assert!(!opens_with_module_doc("use std::time;\n//! Waits.\n"));
    assert!(!opens_with_module_doc("/// Waits.\nfn wait() {}\n"));
}

/// Words that look like a git commit: 7 to 40 lowercase hex digits, with a digit and a letter.
fn commit_hashes(line: &str) -> Vec<&str> {
    line.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| (7..=40).contains(&w.len()))
        .filter(|w| {
            w.chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
        })
        .filter(|w| {
            w.chars().any(|c| c.is_ascii_digit()) && w.chars().any(|c| c.is_ascii_alphabetic())
        })
        .filter(|w| *w != "ed25519")
        .collect()
}

/// Labels of the work that made the project rather than of the project: `session 20`, `Round
/// 3`, `stop 46`, `issue 18`, `sprint 2`, `iteration 4` (not `STOP 1`, a signal's name, nor
/// "one round (72 checks").
fn work_log_labels(line: &str) -> Vec<String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    words
        .windows(2)
        .filter_map(|pair| {
            let word = pair[0].trim_start_matches(|c: char| !c.is_ascii_alphanumeric());
            let number = pair[1].trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
            let lower = word.to_ascii_lowercase();
            let not_shouted = word.len() > 1 && word[1..] == lower[1..];
            let label = ["session", "round", "stop", "issue", "sprint", "iteration"]
                .contains(&lower.as_str())
                && not_shouted
                && number.trim_start_matches('#').parse::<u32>().is_ok();
            label.then(|| format!("{word} {number}"))
        })
        .collect()
}

/// The project's prose: its markdown, and the comments of its Rust and TOML files.
fn prose() -> Vec<(String, Vec<(usize, String)>)> {
    let root = workspace();
    let mut all = Vec::new();
    files(&root, &root, &mut all);
    all.sort();
    all.into_iter()
        .filter_map(|file| {
            let comment = if file.ends_with(".md") {
                ""
            } else if file.ends_with(".rs") {
                "//"
            } else if file.ends_with(".toml") {
                "#"
            } else {
                return None;
            };
            let text = std::fs::read_to_string(root.join(&file)).ok()?;
            let lines = text
                .lines()
                .enumerate()
                .filter_map(|(i, l)| {
                    let at = if comment.is_empty() {
                        0
                    } else {
                        l.find(comment)?
                    };
                    Some((i + 1, l[at..].to_string()))
                })
                .collect();
            Some((file, lines))
        })
        .collect()
}

#[test]
fn the_project_text_speaks_of_the_project_only() {
    let mut found = Vec::new();
    for (file, lines) in prose() {
        // A dated measurement names the commit it measured; nothing else does.
        let hashes_allowed =
            file == "docs/measurements.md" || file.starts_with("fixtures/runbook/");
        if file == "xtask/tests/tidy.rs" {
            continue; // this rule's own examples
        }
        for (line, text) in lines {
            for label in work_log_labels(&text) {
                found.push(format!("{file}:{line}: {label}"));
            }
            if !hashes_allowed {
                for hash in commit_hashes(&text) {
                    found.push(format!("{file}:{line}: {hash}"));
                }
            }
        }
    }
    assert_eq!(
        found,
        Vec::<String>::new(),
        "work-log labels and commit hashes in the project's text"
    );
}

#[test]
fn a_work_log_label_and_a_commit_hash_are_found() {
    assert_eq!(
        work_log_labels("fixed in session 20 (see Issue #39); one round (72 checks), kill -STOP 1"),
        ["session 20", "Issue #39"]
    );
    assert_eq!(
        commit_hashes("since commit 5236b5f the worker; ed25519 keys, sha 0123456, decade"),
        ["5236b5f"]
    );
}

fn readme() -> String {
    std::fs::read_to_string(workspace().join("README.md")).expect("README.md")
}

#[test]
fn the_readme_exit_codes_are_harness_exit_codes() {
    let readme = readme();
    let begin =
        "<!-- exit-codes: generated from harness/user-io/src/exit_codes.rs; a test compares them -->\n";
    let end = "<!-- end exit-codes -->";
    let start = readme.find(begin).expect("the README's exit-code markers") + begin.len();
    let stop = readme[start..].find(end).expect("the end marker") + start;
    assert_eq!(
        &readme[start..stop],
        harness::exit_codes::markdown_table(),
        "paste the expected table between the README's exit-code markers"
    );
}

#[test]
fn the_readme_is_a_manual_with_its_quick_start_first() {
    let readme = readme();
    let lines: Vec<&str> = readme.lines().collect();
    assert!(
        lines.len() <= 200,
        "the README has {} lines; details go to docs/",
        lines.len()
    );
    let long: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.chars().count() > 100 && !l.starts_with('|'))
        .map(|(i, _)| i + 1)
        .collect();
    assert_eq!(
        long,
        Vec::<usize>::new(),
        "README lines over 100 characters"
    );
    let first_section = lines.iter().find(|l| l.starts_with("## "));
    assert_eq!(first_section, Some(&"## Quick start"));
    let dated: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.contains("easured") || l.contains(" 2026-") || l.contains("(2026-"))
        .collect();
    assert_eq!(
        dated,
        Vec::<&str>::new(),
        "dated figures go to docs/measurements.md"
    );
}

/// The targets of the markdown links `[text](target)` in `text` that are files of this
/// repository (not `http…`, not `#anchor` alone), without their `#anchor`.
fn relative_links(text: &str) -> Vec<String> {
    text.split("](")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
        .filter(|target| !target.contains("://") && !target.starts_with('#'))
        .map(|target| target.split('#').next().unwrap_or(target).to_string())
        .collect()
}

#[test]
fn every_link_of_the_readme_and_docs_leads_to_a_file() {
    let root = workspace();
    let mut pages = vec![PathBuf::from("README.md"), PathBuf::from("ARCHITECTURE.md")];
    for entry in std::fs::read_dir(root.join("docs"))
        .expect("docs/")
        .flatten()
    {
        if entry.path().extension().is_some_and(|e| e == "md") {
            pages.push(Path::new("docs").join(entry.file_name()));
        }
    }
    let mut broken = Vec::new();
    for page in pages {
        let text = std::fs::read_to_string(root.join(&page)).expect("readable");
        let dir = root
            .join(&page)
            .parent()
            .expect("a directory")
            .to_path_buf();
        for target in relative_links(&text) {
            if !dir.join(&target).exists() {
                broken.push(format!("{}: {target}", page.display()));
            }
        }
    }
    assert_eq!(broken, Vec::<String>::new(), "links to nothing");
}

#[test]
fn a_link_to_a_page_is_read_without_its_anchor() {
    assert_eq!(
        relative_links("see [faults](docs/rehearsal.md#faults), [web](https://x.org/a), [top](#a)"),
        ["docs/rehearsal.md"]
    );
}

/// A module's path within its crate from its file (`rehearsal/probe.rs` → `rehearsal/probe`,
/// `rehearsal/mod.rs` → `rehearsal`, `lib.rs` → the root, ``).
fn module_of(file: &str) -> String {
    let module = file.trim_end_matches(".rs");
    let module = module.strip_suffix("/mod").unwrap_or(module);
    match module {
        "lib" | "main" => String::new(),
        m => m.to_string(),
    }
}

/// The identifiers of a `use` path segment list: `a`, or each of `{a, b::c, self}`.
fn names_in(after: &str) -> Vec<&str> {
    let after = after.trim_start();
    if let Some(group) = after.strip_prefix('{') {
        let group = group.split('}').next().unwrap_or("");
        group
            .split(',')
            .map(|p| p.trim().split("::").next().unwrap_or("").trim())
            .collect()
    } else {
        vec![after
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .next()
            .unwrap_or("")]
    }
}

/// Every import circle among the modules of one crate (`files`: path within `src/` → text),
/// each as `a -> b -> a`. A module's references to its parent or its own children are not
/// edges (a parent declares its children), nor is anything in a `#[cfg(test)]` module.
fn module_cycles(files: &[(String, String)]) -> Vec<String> {
    let modules: BTreeSet<String> = files.iter().map(|(f, _)| module_of(f)).collect();
    let related = |a: &str, b: &str| {
        a.is_empty()
            || b.is_empty()
            || b.starts_with(&format!("{a}/"))
            || a.starts_with(&format!("{b}/"))
    };
    let mut edges: std::collections::BTreeMap<String, BTreeSet<String>> = Default::default();
    for (file, text) in files {
        let from = module_of(file);
        let parent = from.rsplit_once('/').map_or("", |(p, _)| p).to_string();
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        let mut targets = BTreeSet::new();
        for line in code.lines() {
            let line = line.split("//").next().unwrap_or("");
            for (prefix, base) in [("crate::", String::new()), ("super::", parent.clone())] {
                for (at, _) in line.match_indices(prefix) {
                    let before = line[..at].chars().last();
                    if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
                        continue; // `$crate::`, `::crate::` or part of a longer path
                    }
                    let rest = &line[at + prefix.len()..];
                    for name in names_in(rest) {
                        let mut target = if base.is_empty() {
                            name.to_string()
                        } else {
                            format!("{base}/{name}")
                        };
                        // `crate::a::b` is the module `a/b` when there is one.
                        let deeper = rest.strip_prefix(name).and_then(|r| r.strip_prefix("::"));
                        if let Some(next) = deeper.map(names_in).and_then(|n| n.first().copied()) {
                            if modules.contains(&format!("{target}/{next}")) {
                                target = format!("{target}/{next}");
                            }
                        }
                        if modules.contains(&target) && target != from && !related(&from, &target) {
                            targets.insert(target);
                        }
                    }
                }
            }
        }
        edges.insert(from, targets);
    }
    let mut cycles = BTreeSet::new();
    fn walk(
        at: &str,
        path: &mut Vec<String>,
        edges: &std::collections::BTreeMap<String, BTreeSet<String>>,
        done: &mut BTreeSet<String>,
        cycles: &mut BTreeSet<String>,
    ) {
        for next in edges.get(at).into_iter().flatten() {
            if let Some(i) = path.iter().position(|p| p == next) {
                let mut cycle = path[i..].to_vec();
                // The same circle from its smallest module, so each is reported once.
                let start = cycle
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, m)| *m)
                    .map_or(0, |(i, _)| i);
                cycle.rotate_left(start);
                cycle.push(cycle[0].clone());
                cycles.insert(cycle.join(" -> "));
            } else if !done.contains(next) {
                path.push(next.clone());
                walk(next, path, edges, done, cycles);
                path.pop();
            }
        }
        done.insert(at.to_string());
    }
    let mut done = BTreeSet::new();
    for start in edges.keys() {
        walk(
            start,
            &mut vec![start.clone()],
            &edges,
            &mut done,
            &mut cycles,
        );
    }
    cycles.into_iter().collect()
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let root = workspace();
    let mut found = Vec::new();
    for krate in crates() {
        let src = krate.dir.join("src");
        let mut sources = Vec::new();
        files(&src, &src, &mut sources);
        let texts: Vec<(String, String)> = sources
            .into_iter()
            .filter(|f| f.ends_with(".rs"))
            .map(|f| {
                let text = std::fs::read_to_string(src.join(&f)).expect("readable");
                (f, text)
            })
            .collect();
        for cycle in module_cycles(&texts) {
            found.push(format!("{}: {cycle}", krate.name));
        }
    }
    let _ = root;
    assert_eq!(found, Vec::<String>::new(), "import circles");
}

#[test]
fn an_import_circle_through_a_grouped_use_is_found() {
    let files = [
        (
            "lib.rs",
            "pub mod docker;\npub mod checks;\npub mod stack;\n",
        ),
        ("docker.rs", "use crate::checks::transport::SshSession;\n"),
        (
            "checks/mod.rs",
            "pub mod transport;\nuse crate::stack::Stack; // a comment: crate::docker\n",
        ),
        (
            "checks/transport.rs",
            "use crate::{docker, stack};\nfn f() { super::super::x(); }\n",
        ),
        (
            "stack.rs",
            "#[cfg(test)]\nmod tests { use crate::docker; }\n",
        ),
        ("rehearsal/mod.rs", "mod a;\nmod b;\nuse self::a::x;\n"),
        ("rehearsal/a.rs", "use super::b::Y;\n"),
        (
            "rehearsal/b.rs",
            "use super::{a, c};\nuse crate::rehearsal::Z;\n",
        ),
    ]
    .map(|(f, t)| (f.to_string(), t.to_string()));
    assert_eq!(
        module_cycles(&files),
        [
            "checks/transport -> docker -> checks/transport",
            "rehearsal/a -> rehearsal/b -> rehearsal/a",
        ]
    );
}

/// The crates that depend on `dependency` other than as a dev-dependency.
fn shipping_dependents(metadata: &Value, dependency: &str) -> Vec<String> {
    metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .filter(|p| {
            p["dependencies"]
                .as_array()
                .expect("dependencies")
                .iter()
                .any(|d| {
                    d["name"].as_str() == Some(dependency) && d["kind"].as_str() != Some("dev")
                })
        })
        .map(|p| p["name"].as_str().expect("a name").to_string())
        .collect()
}

#[test]
fn only_tests_link_testcontainers() {
    let metadata = metadata();
    assert_eq!(
        shipping_dependents(&metadata, "testcontainers"),
        ["testing"]
    );
    assert_eq!(
        shipping_dependents(&metadata, "testing"),
        Vec::<String>::new()
    );
}

/// The longest a file of the rehearsal may grow before it is split by what it does (its
/// folder says which part of a scenario's life it is in; ARCHITECTURE.md).
const REHEARSAL_FILE_MAX_LINES: usize = 650;

#[test]
fn no_file_of_the_rehearsal_is_longer_than_its_limit() {
    let root = workspace();
    let src = root.join("harness/rehearsal/src");
    let mut sources = Vec::new();
    files(&root, &src, &mut sources);
    let long: Vec<String> = sources
        .iter()
        .filter(|f| f.ends_with(".rs"))
        .filter_map(|f| {
            let lines = std::fs::read_to_string(root.join(f))
                .expect("readable")
                .lines()
                .count();
            (lines > REHEARSAL_FILE_MAX_LINES).then(|| format!("{f}: {lines} lines"))
        })
        .collect();
    assert_eq!(long, Vec::<String>::new());
}
