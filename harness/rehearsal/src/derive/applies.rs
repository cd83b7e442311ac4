//! Whether a scenario still applies to a runbook: every phase it runs, every step a fault
//! attaches to and every text an edit replaces is there. Checked before anything starts, so
//! that an edited runbook is never rehearsed as something else without a word.

use crate::schedule::At;
use crate::Scenario;
use harness::runbook::Runbook;

/// What a scenario expected of the runbook and did not find.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missing {
    /// A phase it runs.
    Phase(u32),
    /// The step a fault is injected before.
    FaultStep(String),
    /// The text an edit of the phases' code replaces (its first line, quoted runs masked).
    EditText(String),
}

/// A scenario that no longer applies to the runbook, and the runbook line nearest to what it
/// expected (its number and text, quoted runs masked: a runbook's literal secrets are quoted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotApplicable {
    pub scenario: String,
    pub missing: Missing,
    pub nearest: Option<(usize, String)>,
}

impl std::fmt::Display for NotApplicable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.missing {
            Missing::Phase(n) => write!(
                f,
                "{}: runs Phase {n}, which the runbook has not",
                self.scenario
            )?,
            Missing::FaultStep(id) => write!(
                f,
                "{}: injects its fault before step {id}, which the runbook has not",
                self.scenario
            )?,
            Missing::EditText(text) => write!(
                f,
                "{}: edits `{text}` in the phases' code, which the runbook no longer holds",
                self.scenario
            )?,
        }
        if let Some((line, text)) = &self.nearest {
            write!(f, "; nearest: line {line}: {text}")?;
        }
        Ok(())
    }
}

/// Everything `scenario` expects of `runbook` that is not there; empty when it applies.
pub fn not_applicable(scenario: &Scenario, runbook: &Runbook) -> Vec<NotApplicable> {
    let missing = |missing: Missing, nearest: Option<(usize, String)>| NotApplicable {
        scenario: scenario.id.clone(),
        missing,
        nearest,
    };
    let mut out = Vec::new();
    for n in &scenario.phases {
        if !runbook.phases.iter().any(|p| p.number == *n) {
            let nearest = runbook
                .phases
                .iter()
                .min_by_key(|p| p.number.abs_diff(*n))
                .map(|p| (p.line, format!("Phase {}: {}", p.number, p.title)));
            out.push(missing(Missing::Phase(*n), nearest));
        }
    }
    for fault in &scenario.faults {
        let At::BeforeStep(id) = &fault.at else {
            continue;
        };
        let steps: Vec<&harness::runbook::Step> = runbook
            .phases
            .iter()
            .flat_map(|p| &p.steps)
            .chain(&runbook.rollback)
            .collect();
        if !steps.iter().any(|s| &s.id == id) {
            let nearest = steps
                .iter()
                .min_by_key(|s| harness::checks::edit_distance(id, &s.id))
                .map(|s| (s.line, format!("{} {}", s.id, masked(&s.title))));
            out.push(missing(Missing::FaultStep(id.clone()), nearest));
        }
    }
    for (from, _) in &scenario.edits {
        let held = runbook
            .phases
            .iter()
            .flat_map(|p| &p.steps)
            .flat_map(|s| &s.code)
            .any(|b| b.text.contains(from));
        if !held {
            let first = from.lines().next().unwrap_or_default().trim();
            out.push(missing(
                Missing::EditText(masked(first)),
                nearest_code_line(runbook, first),
            ));
        }
    }
    out
}

/// `scenario`, written and measured against the text `reference` locks, bound to `runbook` by
/// content: each phase it runs becomes the runbook's phase whose steps have the same
/// fingerprints, whatever its number now, and the steps its faults attach to are renumbered
/// with it. `Err` says why it does not apply: a phase it runs changed or is gone, or the
/// rollback it runs changed. Its expected outcome was measured on that text, never on another.
pub fn bind(
    mut scenario: Scenario,
    reference: &harness::runbook::lock::Lock,
    runbook: &Runbook,
) -> Result<Scenario, String> {
    let mut renumbered = Vec::new();
    for n in &scenario.phases {
        let want = reference.phase_fingerprints(*n);
        let found = runbook.phases.iter().find(|p| {
            !want.is_empty()
                && p.steps.len() == want.len()
                && p.steps.iter().zip(&want).all(|(s, w)| s.fingerprint == *w)
        });
        match found {
            Some(p) => renumbered.push((*n, p.number)),
            None => {
                return Err(format!(
                    "{}: was measured on a Phase {n} this runbook no longer has{}",
                    scenario.id,
                    first_change(runbook, *n, &want)
                ))
            }
        }
    }
    if scenario.rolls_back() {
        let now: Vec<&str> = runbook
            .rollback
            .iter()
            .map(|s| s.fingerprint.as_str())
            .collect();
        if now != reference.rollback_fingerprints() {
            return Err(format!(
                "{}: the rollback procedure changed since it was measured",
                scenario.id
            ));
        }
    }
    let to = |n: u32| {
        renumbered
            .iter()
            .find(|(from, _)| *from == n)
            .map(|(_, to)| *to)
    };
    for fault in &mut scenario.faults {
        if let At::BeforeStep(id) = &mut fault.at {
            let phase = id
                .strip_prefix("phase")
                .and_then(|rest| rest.split_once('.'))
                .and_then(|(n, step)| Some((n.parse::<u32>().ok()?, step.to_string())));
            if let Some((n, step)) = phase {
                if let Some(m) = to(n) {
                    *id = format!("phase{m}.{step}");
                }
            }
        }
    }
    scenario.phases = scenario.phases.iter().filter_map(|n| to(*n)).collect();
    Ok(scenario)
}

/// Where the runbook's Phase `n` first differs from the fingerprints `want` it was measured
/// with: `; phase3.step1 changed (line 97: …)`, or nothing to add when it has no Phase `n`.
fn first_change(runbook: &Runbook, n: u32, want: &[&str]) -> String {
    let Some(phase) = runbook.phases.iter().find(|p| p.number == n) else {
        return String::new();
    };
    for (i, step) in phase.steps.iter().enumerate() {
        if want.get(i) != Some(&step.fingerprint.as_str()) {
            let first_code = step
                .code
                .iter()
                .flat_map(|b| b.text.lines())
                .map(str::trim)
                .find(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with("cd "))
                .unwrap_or(&step.title);
            return format!(
                "; {} changed (line {}: {})",
                step.id,
                step.line,
                masked(first_code)
            );
        }
    }
    format!("; a step of Phase {n} was removed")
}

/// The line of the phases' code most like `text`: the one sharing the longest run of
/// characters with it (the first such line).
fn nearest_code_line(runbook: &Runbook, text: &str) -> Option<(usize, String)> {
    runbook
        .phases
        .iter()
        .flat_map(|p| &p.steps)
        .flat_map(|s| &s.code)
        .flat_map(|b| {
            b.text
                .lines()
                .enumerate()
                .map(move |(i, l)| (b.first_line + i, l.trim()))
        })
        .filter(|(_, l)| !l.is_empty())
        .fold(None, |best: Option<(usize, usize, &str)>, (line, l)| {
            let shared = longest_common_run(text, l);
            match best {
                Some((_, most, _)) if most >= shared => best,
                _ => Some((line, shared, l)),
            }
        })
        .map(|(line, _, l)| (line, masked(l)))
}

/// The length, in characters, of the longest run `a` and `b` share.
fn longest_common_run(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut previous = vec![0usize; b.len() + 1];
    let mut longest = 0;
    for x in &a {
        let mut current = vec![0usize; b.len() + 1];
        for (j, y) in b.iter().enumerate() {
            if x == y {
                current[j + 1] = previous[j] + 1;
                longest = longest.max(current[j + 1]);
            }
        }
        previous = current;
    }
    longest
}

/// `text` cut at 60 characters, every quoted run (`'…'`, `"…"`) shown as `…`.
fn masked(text: &str) -> String {
    let mut out = String::new();
    let mut quote: Option<char> = None;
    for c in text.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                out.push('…');
            }
            None => out.push(c),
        }
    }
    if out.chars().count() > 60 {
        out = out.chars().take(59).collect::<String>() + "…";
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::ContainerFault;
    use crate::{Expected, FaultAt};
    use harness::Service;

    const RUNBOOK: &str = "# Runbook\n\n## Secrets Inventory\n\n| Secret | Location | Service | Rotation Frequency |\n|---|---|---|---|\n| DB | .env | postgres | 90 days |\n\n### Phase 1: Preparation (5 min)\n\n1. **Back up:**\n   ```bash\n   tar czf backup.tgz .env\n   ```\n\n### Phase 3: PostgreSQL (10 min)\n\n1. **Change the password:**\n   ```bash\n   psql -c \"ALTER USER daarion PASSWORD 'S3cret!';\"\n   ```\n2. **Restart:**\n   ```bash\n   docker restart dagi-router-node1\n   ```\n";

    fn scenario() -> Scenario {
        Scenario {
            id: "phase3/edited".into(),
            title: "Phase 3 with a fault and an edit".into(),
            phases: vec![1, 3],
            rollback: crate::Rollback::OnDeviation,
            postconditions: Vec::new(),
            expected: Expected::Holds,
            faults: vec![FaultAt::before(
                "phase3.step2",
                ContainerFault::Kill(Service::Router),
            )],
            safeguard: None,
            edits: vec![("docker restart", "docker compose up -d")],
            seed: None,
            replica: Default::default(),
            stop_at_failed_step: false,
            not_rehearsable: None,
            new_values: Vec::new(),
        }
    }

    #[test]
    fn a_scenario_whose_phases_steps_and_edit_texts_are_there_applies() {
        let runbook = harness::runbook::parse("r.md", RUNBOOK).unwrap();
        assert_eq!(not_applicable(&scenario(), &runbook), vec![]);
    }

    #[test]
    fn a_removed_step_a_changed_text_and_a_missing_phase_are_each_named_with_the_nearest_line() {
        let edited = RUNBOOK
            .replace(
                "2. **Restart:**\n   ```bash\n   docker restart dagi-router-node1\n   ```\n",
                "",
            )
            .replace("### Phase 1: Preparation", "### Phase 2: Preparation");
        let runbook = harness::runbook::parse("r.md", &edited).unwrap();
        let mut s = scenario();
        s.edits.push(("ALTER USER daarion PASSWORD 'S3cret!'", "x"));
        s.edits
            .push(("ALTER USER daarion PASSWORD 'Old-Secret'", "x"));
        let found: Vec<String> = not_applicable(&s, &runbook)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            found,
            [
                "phase3/edited: runs Phase 1, which the runbook has not; nearest: line 9: Phase 2: Preparation",
                "phase3/edited: injects its fault before step phase3.step2, which the runbook has not; nearest: line 18: phase3.step1 Change the password",
                "phase3/edited: edits `docker restart` in the phases' code, which the runbook no longer holds; nearest: line 13: tar czf backup.tgz .env",
                "phase3/edited: edits `ALTER USER daarion PASSWORD …` in the phases' code, which the runbook no longer holds; nearest: line 20: psql -c …",
            ]
        );
    }

    #[test]
    fn quoted_runs_never_show_in_what_is_named() {
        assert_eq!(
            masked("psql -c \"ALTER USER x PASSWORD 'S3cret!';\" && echo 'done'"),
            "psql -c … && echo …"
        );
    }
}
