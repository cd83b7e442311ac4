//! The CI workflow in `ci/` against what GitHub Actions accepts and what the README gives: its
//! structure (jobs, steps, `needs`, outputs) and every `${{ }}` expression's references are
//! checked here, as actionlint would, and every `cargo xtask` command it runs is one the
//! README tells a user to run, so the sharded run is reproduced locally by the README.

use std::collections::{BTreeMap, BTreeSet};
use yaml_rust2::{Yaml, YamlLoader};

fn workspace_file(relative: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn workflow() -> Yaml {
    let text = workspace_file("ci/runbook-rehearsal.yml");
    YamlLoader::load_from_str(&text)
        .expect("the workflow is YAML")
        .pop()
        .expect("one document")
}

fn keys(y: &Yaml) -> Vec<String> {
    y.as_hash()
        .map(|h| {
            h.keys()
                .filter_map(|k| k.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Every `${{ … }}` expression in `y`, with the path where it stands.
fn expressions(y: &Yaml, at: &str, out: &mut Vec<(String, String)>) {
    match y {
        Yaml::String(s) => {
            let mut rest = s.as_str();
            while let Some(start) = rest.find("${{") {
                let Some(end) = rest[start..].find("}}") else {
                    out.push((at.to_string(), "<unclosed>".into()));
                    break;
                };
                out.push((
                    at.to_string(),
                    rest[start + 3..start + end].trim().to_string(),
                ));
                rest = &rest[start + end + 2..];
            }
        }
        Yaml::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, v)| expressions(v, &format!("{at}[{i}]"), out)),
        Yaml::Hash(h) => h
            .iter()
            .for_each(|(k, v)| expressions(v, &format!("{at}.{}", k.as_str().unwrap_or("?")), out)),
        _ => {}
    }
}

/// The dotted references an expression makes (`matrix.shard`, `needs.shards.outputs.list`).
fn references(expression: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut in_string = false;
    for c in expression.chars().chain(std::iter::once(' ')) {
        if c == '\'' {
            in_string = !in_string;
            word.clear();
            continue;
        }
        if in_string {
            continue;
        }
        if c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.' {
            word.push(c);
        } else {
            if !word.is_empty() && word.contains('.') {
                out.push(word.split('.').map(str::to_string).collect());
            }
            word.clear();
        }
    }
    out
}

#[test]
fn the_ci_workflow_is_a_workflow_github_accepts_with_every_reference_resolved() {
    let wf = workflow();
    let top = keys(&wf);
    for k in ["name", "on", "jobs"] {
        assert!(top.contains(&k.to_string()), "no `{k}` at the top");
    }
    let inputs: BTreeSet<String> = keys(&wf["on"]["workflow_dispatch"]["inputs"])
        .into_iter()
        .collect();
    let jobs = wf["jobs"].as_hash().expect("jobs is a mapping");
    assert!(!jobs.is_empty());
    let job_keys: BTreeSet<&str> = [
        "name",
        "needs",
        "runs-on",
        "timeout-minutes",
        "strategy",
        "outputs",
        "steps",
        "if",
        "env",
        "permissions",
        "concurrency",
        "continue-on-error",
        "defaults",
        "container",
        "services",
        "environment",
    ]
    .into();
    let step_keys: BTreeSet<&str> = [
        "name",
        "id",
        "if",
        "uses",
        "run",
        "with",
        "env",
        "shell",
        "working-directory",
        "continue-on-error",
        "timeout-minutes",
    ]
    .into();
    let mut outputs_of: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (name, job) in jobs {
        outputs_of.insert(
            name.as_str().unwrap().to_string(),
            keys(&job["outputs"]).into_iter().collect(),
        );
    }
    let mut problems = Vec::new();
    for (name, job) in jobs {
        let name = name.as_str().unwrap();
        for k in keys(job) {
            if !job_keys.contains(k.as_str()) {
                problems.push(format!("{name}: unknown job key `{k}`"));
            }
        }
        if job["runs-on"].as_str().is_none() {
            problems.push(format!("{name}: no runs-on"));
        }
        let needs: Vec<String> = match &job["needs"] {
            Yaml::String(s) => vec![s.clone()],
            Yaml::Array(a) => a
                .iter()
                .filter_map(|n| n.as_str().map(str::to_string))
                .collect(),
            _ => vec![],
        };
        for n in &needs {
            if !outputs_of.contains_key(n) || n == name {
                problems.push(format!("{name}: needs `{n}`, which is no other job"));
            }
        }
        let matrix: BTreeSet<String> = keys(&job["strategy"]["matrix"]).into_iter().collect();
        let steps = job["steps"].as_vec().cloned().unwrap_or_default();
        if steps.is_empty() {
            problems.push(format!("{name}: no steps"));
        }
        let mut step_ids = BTreeSet::new();
        for (i, step) in steps.iter().enumerate() {
            for k in keys(step) {
                if !step_keys.contains(k.as_str()) {
                    problems.push(format!("{name}.steps[{i}]: unknown step key `{k}`"));
                }
            }
            match (step["uses"].as_str(), step["run"].as_str()) {
                (Some(uses), None) => {
                    let ok = uses.split_once('@').is_some_and(|(action, version)| {
                        action.split('/').count() >= 2 && !version.is_empty()
                    });
                    if !ok {
                        problems.push(format!(
                            "{name}.steps[{i}]: `uses: {uses}` is not owner/repo@ref"
                        ));
                    }
                }
                (None, Some(_)) => {}
                _ => problems.push(format!(
                    "{name}.steps[{i}]: needs exactly one of `uses` and `run`"
                )),
            }
            if let Some(id) = step["id"].as_str() {
                step_ids.insert(id.to_string());
            }
        }
        let mut found = Vec::new();
        expressions(job, name, &mut found);
        for (at, expression) in found {
            for r in references(&expression) {
                let ok = match r[0].as_str() {
                    "matrix" => r.len() == 2 && matrix.contains(&r[1]),
                    "needs" => {
                        r.len() == 4
                            && needs.contains(&r[1])
                            && r[2] == "outputs"
                            && outputs_of[&r[1]].contains(&r[3])
                    }
                    "steps" => r.len() == 4 && step_ids.contains(&r[1]) && r[2] == "outputs",
                    "github"
                        if r.get(1).is_some_and(|s| s == "event")
                            && r.get(2).is_some_and(|s| s == "inputs") =>
                    {
                        r.len() == 4 && inputs.contains(&r[3])
                    }
                    "github" | "runner" | "env" | "secrets" | "job" | "strategy" | "inputs" => true,
                    _ => false,
                };
                if !ok {
                    problems.push(format!("{at}: `{}` refers to nothing", r.join(".")));
                }
            }
        }
    }
    assert_eq!(problems, Vec::<String>::new());
}

#[test]
fn every_cargo_xtask_command_the_workflow_runs_is_one_the_readme_gives() {
    let wf = workflow();
    let readme = workspace_file("README.md");
    let mut missing = Vec::new();
    for (_, job) in wf["jobs"].as_hash().unwrap() {
        for step in job["steps"].as_vec().cloned().unwrap_or_default() {
            let Some(run) = step["run"].as_str() else {
                continue;
            };
            for line in run.lines() {
                let Some(at) = line.find("cargo xtask ") else {
                    continue;
                };
                let words: Vec<&str> = line[at..].split_whitespace().take(4).collect();
                // `cargo xtask <task> [<subtask>]`: the task, and its subtask when it has one.
                let mut command = words[..3].join(" ");
                if matches!(words[2], "runbook" | "report" | "bench") {
                    command = words.join(" ");
                }
                if !readme.contains(&command) {
                    missing.push(command);
                }
            }
        }
    }
    assert_eq!(
        missing,
        Vec::<String>::new(),
        "commands the README never gives"
    );
}
