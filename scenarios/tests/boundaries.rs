//! Every step boundary of the shipped runbooks under the fault that applies there, one test per
//! scenario, listed from the runbooks' text (`scenarios::derived_faults`): a new step, a moved
//! phase or a new fault family is a new test here without a line of this file changing. Test
//! names are `<runbook>::<scenario id>` (`v2::faults/nats/step4-nats-connections-reset`); each
//! asserts the outcome expected (the lock's accepted one, else `holds`), no secret in the journal
//! and nothing of its replica left, rehearsing once more alone on the machine when the first
//! run was `inconclusive`.

use harness::progress::Progress;
use harness::redact::Redactor;
use harness::runbook::{workspace_path, Runbook, DEFAULT_RUNBOOK};
use libtest_mimic::{Arguments, Failed, Trial};
use rehearsal::{engine, journal, render, Options, Outcome};

/// The shipped runbooks, by the name their tests carry.
const RUNBOOKS: &[(&str, &str)] = &[
    ("as_written", DEFAULT_RUNBOOK),
    ("v2", "fixtures/runbook/SECRETS_ROTATION_RUNBOOK.v2.md"),
];

/// Boundaries a named test of `tests/rehearsal.rs` rehearses, asserting more (the findings
/// they decide): (runbook, scenario id, that test). Not listed again here.
const NAMED_ELSEWHERE: &[(&str, &str, &str)] = &[(
    "as_written",
    "faults/deepseek/step3-deepseek-rejects-the-new-key",
    "fault_phase2_deepseek_rejects_the_new_key",
)];

fn main() {
    let args = Arguments::from_args();
    let mut trials = vec![Trial::test(
        "every_boundary_left_to_a_named_test_is_one",
        || {
            let sources = include_str!("rehearsal.rs");
            match NAMED_ELSEWHERE.iter().find(|(_, id, test)| {
                !sources.contains(&format!("fn {test}() {{"))
                    || !sources.contains(&format!("\"{id}\""))
            }) {
                Some((_, id, test)) => Err(format!("{id}: no test {test} rehearses it").into()),
                None => Ok(()),
            }
        },
    )];
    for (name, path) in RUNBOOKS {
        let runbook = Runbook::load(&workspace_path(path)).expect("a shipped runbook");
        for scenario in scenarios::derived_faults(&runbook) {
            let id = scenario.id.clone();
            if NAMED_ELSEWHERE
                .iter()
                .any(|(n, i, _)| n == name && *i == id)
            {
                continue;
            }
            let path = *path;
            trials.push(Trial::test(format!("{name}::{id}"), move || {
                rehearse(path, &id)
            }));
        }
    }
    libtest_mimic::run(&args, trials).exit();
}

/// Rehearses scenario `id` of the runbook at `path`, as `rehearse --only` would.
fn rehearse(path: &str, id: &str) -> Result<(), Failed> {
    let runbook = Runbook::load(&workspace_path(path)).map_err(|e| e.to_string())?;
    let scenario = scenarios::derived_faults(&runbook)
        .into_iter()
        .find(|s| s.id == id)
        .ok_or_else(|| format!("no scenario {id}"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let redactor = Redactor::new();
        let mut options = Options::default();
        let mut record =
            engine::run(&scenario, &runbook, &options, &Progress::stderr(), &redactor).await;
        if record.actual == Some(Outcome::Inconclusive) {
            eprintln!(
                "{id}: inconclusive ({}); rehearsing it once more on a fresh replica, alone on the machine",
                record.inconclusive.as_deref().unwrap_or("no reason recorded")
            );
            options.busy = options.busy.alone();
            record =
                engine::run(&scenario, &runbook, &options, &Progress::stderr(), &redactor).await;
        }
        let j = journal::assemble(
            &runbook,
            &scenario.replica.profile,
            std::time::SystemTime::now(),
            record.wall_ms,
            0.02,
            vec![record],
        );
        let json = serde_json::to_string(&j).map_err(|e| e.to_string())?;
        if redactor.find_leak(&json).is_some() {
            return Err(format!("{id}: a secret value in the journal").into());
        }
        let summary = render::summary(&j, &Redactor::new());
        let scenario = &j.scenarios[0];
        if let Some(stack) = scenario.stack.clone() {
            let docker = harness::docker::connect()
                .await
                .map_err(|e| e.to_string())?;
            let left = harness::docker::leftovers_of(&docker, &[stack])
                .await
                .map_err(|e| e.to_string())?;
            if !left.is_empty() {
                return Err(format!("{id}: left behind: {left:?}").into());
            }
        }
        if !scenario.met {
            for f in &scenario.forensics {
                eprintln!("{}", f.describe());
            }
            return Err(format!("{id}: expected outcome not met\n{summary}").into());
        }
        Ok(())
    })
}
