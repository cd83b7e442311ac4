//! The scenarios a runbook calls for, derived from its text alone: which inventory secrets each
//! phase's commands rotate (`runbook::coverage::rotations`), hence its rehearsal under traffic,
//! the rollback after it, the whole rotation and the preparation alone. Ids name what a
//! scenario rotates, never a phase number (`rotate/postgres`, `rollback/after-postgres`), so
//! they stay when phases move. Every derived scenario is held to `holds` unless the runbook's
//! lock accepts a measured deviation; a phase the replica cannot rehearse is a scenario too,
//! `inconclusive` with its reason, never left out.

use super::{Expected, Rollback, Scenario};
use harness::replica_root::RootOptions;
use harness::runbook::coverage::{key_of, rotations, variables_of};
use harness::runbook::lock::Lock;
use harness::runbook::Runbook;

/// What every rotation must leave, beyond the catalogue's checks of the secrets it rotates: no
/// old key kept beside the new, `.env` files only their owner reads, providers called with
/// current keys only, the backup encrypted.
pub const ALWAYS: &[&str] = &[
    "env.no-old-keys",
    "env.file-mode",
    "provider.usage.current-only",
    "backups.encrypted",
];

/// Every check of the catalogue, as `cargo xtask verify` runs them: what the whole rotation
/// must pass.
pub const EVERY_CHECK: &str = "*";

/// What a phase does, as its text says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// Rotates nothing, before the first rotation (backups, new secrets, a preflight check).
    Prepares,
    /// It rotates these inventory secrets: its commands do, or its title names them.
    Rotates(Vec<Rotated>),
    /// Rotates nothing, after a rotation (a verification).
    Verifies,
    /// It rotates something the replica cannot rehearse: why, in words.
    NotRehearsable(String),
}

pub use self::families::Rotated;

pub mod applies;
pub mod catalogue;
pub mod families;

#[cfg(test)]
mod tests;

/// One phase as derived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhasePlan {
    pub number: u32,
    pub title: String,
    pub role: Role,
    /// The name its scenarios carry (`postgres`, `deepseek-2` for a second DeepSeek phase);
    /// empty for a phase that prepares or verifies.
    pub slug: String,
}

/// What a runbook calls for, phase by phase, and what it says of every step.
#[derive(Debug, Clone)]
pub struct Plan {
    pub phases: Vec<PhasePlan>,
    /// The runbook tells its operator to stop at a step whose command fails (and roll back).
    pub stops_at_failed_step: bool,
    /// The replica as the runbook's prerequisites require it.
    pub replica: RootOptions,
}

impl Plan {
    pub fn of(runbook: &Runbook) -> Plan {
        let rotations = rotations(runbook);
        let mut phases = Vec::new();
        let mut rotated_yet = false;
        let mut taken: Vec<String> = Vec::new();
        for phase in &runbook.phases {
            let rotated: Vec<Rotated> = runbook
                .inventory
                .iter()
                .zip(&rotations)
                .filter(|(row, r)| {
                    r.iter()
                        .any(|r| r.phase == phase.number && r.how == "commands")
                        || names_row(&phase.title.to_lowercase(), &row.secret)
                })
                .filter_map(|(row, _)| {
                    let key = key_of(&row.secret)?;
                    Some(Rotated {
                        secret: row.secret.clone(),
                        key,
                        variables: variables_of(&row.secret).0,
                    })
                })
                .collect();
            let role = if !rotated.is_empty() {
                Role::Rotates(rotated)
            } else if let Some(why) = not_rehearsable(runbook, phase) {
                Role::NotRehearsable(why)
            } else if rotated_yet {
                Role::Verifies
            } else {
                Role::Prepares
            };
            let slug = match &role {
                Role::Rotates(secrets) => {
                    let keys: Vec<&str> = secrets.iter().map(|r| r.key).collect();
                    unique(keys.join("+"), &mut taken)
                }
                Role::NotRehearsable(_) => unique(named_row_slug(runbook, phase), &mut taken),
                _ => String::new(),
            };
            rotated_yet |= matches!(role, Role::Rotates(_) | Role::NotRehearsable(_));
            phases.push(PhasePlan {
                number: phase.number,
                title: phase.title.clone(),
                role,
                slug,
            });
        }
        Plan {
            replica: replica_required(runbook, &phases),
            stops_at_failed_step: tells_to_stop_at_a_failure(runbook),
            phases,
        }
    }

    /// The phases that prepare (before the first rotation), in order.
    pub fn preparation(&self) -> Vec<u32> {
        self.phases
            .iter()
            .filter(|p| p.role == Role::Prepares)
            .map(|p| p.number)
            .collect()
    }

    /// The phase whose scenarios carry `slug`.
    pub fn phase_named(&self, slug: &str) -> Option<&PhasePlan> {
        self.phases.iter().find(|p| p.slug == slug)
    }
}

/// `name`, or `name-2`, `name-3` … when an earlier phase took it.
fn unique(name: String, taken: &mut Vec<String>) -> String {
    let count = taken.iter().filter(|t| **t == name).count();
    taken.push(name.clone());
    match count {
        0 => name,
        n => format!("{name}-{}", n + 1),
    }
}

/// A phase that rotates nothing the replica models although its title names an inventory
/// secret: one no service of the replica reads. (A phase whose title names a secret the
/// replica models rotates it, whatever its commands do: its post-conditions then say whether
/// it did.)
fn not_rehearsable(runbook: &Runbook, phase: &harness::runbook::Phase) -> Option<String> {
    let title = phase.title.to_lowercase();
    let row = runbook
        .inventory
        .iter()
        .find(|row| names_row(&title, &row.secret) && key_of(&row.secret).is_none())?;
    Some(format!(
        "Phase {} rotates {}, which no service of the replica reads",
        phase.number, row.secret
    ))
}

/// Whether a phase's lowercased title names an inventory row: the row's whole name, or its
/// first word when that word is a name (`Stripe` of `Stripe API Key`).
fn names_row(title: &str, secret: &str) -> bool {
    let secret = secret.to_lowercase();
    let first = secret.split_whitespace().next().unwrap_or("");
    title.contains(&secret) || (first.len() >= 4 && title.split_whitespace().any(|w| w == first))
}

/// The slug of the inventory row a not-rehearsable phase names (`stripe-api-key`).
fn named_row_slug(runbook: &Runbook, phase: &harness::runbook::Phase) -> String {
    let title = phase.title.to_lowercase();
    let name = runbook
        .inventory
        .iter()
        .find(|row| names_row(&title, &row.secret))
        .map_or(title.clone(), |row| row.secret.to_lowercase());
    let slug: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    slug.split('-')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}

/// Whether the runbook tells its operator to stop at a step that fails: a sentence of its
/// overview (or of a phase's preamble) that speaks of failing and of stopping.
fn tells_to_stop_at_a_failure(runbook: &Runbook) -> bool {
    std::iter::once(runbook.overview.as_str())
        .chain(runbook.phases.iter().map(|p| p.preamble.as_str()))
        .flat_map(|text| text.split(['.', '\n']))
        .map(str::to_lowercase)
        .any(|s| {
            s.contains("fail")
                && ["stop", "do not go on", "abort", "halt"]
                    .iter()
                    .any(|w| s.contains(w))
        })
}

/// The replica's settings the runbook's own prerequisites ask for: the gateway's JWT key
/// overlap, when a phase rotating the JWT secret names it.
fn replica_required(runbook: &Runbook, plans: &[PhasePlan]) -> RootOptions {
    let jwt_phases = plans.iter().filter(|p| match &p.role {
        Role::Rotates(r) => r.iter().any(|r| r.key == "jwt"),
        _ => false,
    });
    let names_overlap = jwt_phases
        .filter_map(|plan| runbook.phases.iter().find(|p| p.number == plan.number))
        .any(|phase| {
            let text = std::iter::once(phase.preamble.clone())
                .chain(phase.steps.iter().flat_map(|s| {
                    std::iter::once(s.prose.clone()).chain(s.code.iter().map(|b| b.text.clone()))
                }))
                .collect::<Vec<_>>()
                .join("\n");
            text.contains("JWT_KEY_OVERLAP")
        });
    RootOptions {
        gateway_jwt_overlap: names_overlap,
        ..Default::default()
    }
}

/// The checks that say `variables` were rotated: every check of the catalogue that verifies
/// one of them (the previous value refused among them), then `ALWAYS`.
pub fn postconditions_for(variables: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = harness::checks::catalogue()
        .iter()
        .filter(|c| c.secrets.iter().any(|s| variables.contains(s)))
        .map(|c| c.id.clone())
        .collect();
    for always in ALWAYS {
        if !out.iter().any(|o| o == always) {
            out.push(always.to_string());
        }
    }
    out
}

/// The scenarios `runbook` calls for, in the runbook's order: the preparation alone and the
/// rollback after it, then per rotating phase its rehearsal and the rollback after it, the
/// verification on a node not rotated, then the whole rotation. Expected: `holds`, or what `lock` accepts for the id.
pub fn scenarios(runbook: &Runbook, lock: Option<&Lock>) -> Vec<Scenario> {
    let plan = Plan::of(runbook);
    let preparation = plan.preparation();
    let scenario = |id: String, title: String, phases: Vec<u32>, post: Vec<String>| {
        derived(&plan, lock, id, title, phases, post)
    };
    // The same phases, then the runbook's rollback procedure whatever the outcome.
    let rollback = |id: String, title: String, phases: Vec<u32>, post: Vec<String>| Scenario {
        rollback: Rollback::Always,
        ..scenario(id, title, phases, post)
    };
    let with = |n: u32| {
        let mut phases = preparation.clone();
        phases.push(n);
        phases
    };
    let mut out = Vec::new();
    if !preparation.is_empty() {
        let names = phase_list(&preparation);
        out.push(scenario(
            "prepare".into(),
            format!("{names} (preparation) alone, under traffic"),
            preparation.clone(),
            Vec::new(),
        ));
        out.push(rollback(
            "rollback/after-prepare".into(),
            format!("{names} (preparation), then the rollback procedure"),
            preparation.clone(),
            Vec::new(),
        ));
    }
    for phase in &plan.phases {
        let (what, variables, why) = match &phase.role {
            Role::Rotates(secrets) => (
                secrets
                    .iter()
                    .map(|r| r.secret.as_str())
                    .collect::<Vec<_>>()
                    .join(" and "),
                held_in(secrets),
                None,
            ),
            Role::NotRehearsable(why) => (phase.title.clone(), Vec::new(), Some(why.clone())),
            _ => continue,
        };
        let mut rotate = scenario(
            format!("rotate/{}", phase.slug),
            format!(
                "Phase {} ({}): {what} rotated under traffic",
                phase.number, phase.title
            ),
            with(phase.number),
            postconditions_for(&variables),
        );
        rotate.not_rehearsable = why.clone();
        out.push(rotate);
        out.push(Scenario {
            not_rehearsable: why,
            new_values: Vec::new(),
            ..rollback(
                format!("rollback/after-{}", phase.slug),
                format!(
                    "Phase {} ({}), then the rollback procedure",
                    phase.number, phase.title
                ),
                with(phase.number),
                postconditions_for(&variables),
            )
        });
    }
    let verification: Vec<u32> = plan
        .phases
        .iter()
        .filter(|p| p.role == Role::Verifies)
        .map(|p| p.number)
        .collect();
    if !verification.is_empty() {
        let mut phases = preparation.clone();
        phases.extend(&verification);
        out.push(scenario(
            "verify".into(),
            format!(
                "{} (verification) on a node not rotated, under traffic",
                phase_list(&verification)
            ),
            phases,
            Vec::new(),
        ));
    }
    let all: Vec<u32> = plan.phases.iter().map(|p| p.number).collect();
    let mut rotation = scenario(
        "rotation".into(),
        format!(
            "The whole rotation, {} in order, under traffic",
            phase_list(&all)
        ),
        all,
        vec![EVERY_CHECK.to_string()],
    );
    rotation.not_rehearsable = plan.phases.iter().find_map(|p| match &p.role {
        Role::NotRehearsable(why) => Some(why.clone()),
        _ => None,
    });
    out.push(rotation);
    out
}

/// The step-boundary fault scenarios `runbook` calls for (`families::boundaries`): per phase
/// that rotates a secret, one per boundary, the preparation then the phase with the fault
/// injected just before the step, held to the phase's post-conditions. Ids name the secret,
/// the step's number within its phase and the fault (`faults/postgres/step3-postgres-stalls-for-4s`),
/// never the phase's number. Expected: `holds`, or what `lock` accepts for the id.
pub fn fault_scenarios(runbook: &Runbook, lock: Option<&Lock>) -> Vec<Scenario> {
    let plan = Plan::of(runbook);
    let mut out = Vec::new();
    for planned in &plan.phases {
        let Role::Rotates(rotated) = &planned.role else {
            continue;
        };
        let Some(phase) = runbook.phases.iter().find(|p| p.number == planned.number) else {
            continue;
        };
        let variables = held_in(rotated);
        for boundary in super::families::boundaries(phase, rotated) {
            let id = format!(
                "faults/{}/step{}-{}",
                planned.slug,
                boundary.number,
                boundary.family.slug()
            );
            let at = boundary.family.before(&boundary.step);
            let mut phases = plan.preparation();
            phases.push(planned.number);
            let title = format!(
                "Phase {} ({}) under traffic, with `{}` {}",
                planned.number,
                planned.title,
                at.fault.name(),
                at.describe_at()
            );
            out.push(Scenario {
                faults: vec![at],
                ..derived(
                    &plan,
                    lock,
                    id,
                    title,
                    phases,
                    postconditions_for(&variables),
                )
            });
        }
    }
    out
}

/// A scenario `plan` calls for: the runbook's replica and its rule on a failed step, rolled back
/// on a deviation, expected as `lock` accepts `id` (`holds` where it accepts nothing).
fn derived(
    plan: &Plan,
    lock: Option<&Lock>,
    id: String,
    title: String,
    phases: Vec<u32>,
    postconditions: Vec<String>,
) -> Scenario {
    Scenario {
        expected: lock
            .and_then(|l| l.accepted_outcome(&id))
            .unwrap_or(Expected::Holds),
        id,
        title,
        phases,
        rollback: Rollback::OnDeviation,
        postconditions,
        faults: Vec::new(),
        safeguard: None,
        edits: Vec::new(),
        seed: None,
        replica: plan.replica.clone(),
        stop_at_failed_step: plan.stops_at_failed_step,
        not_rehearsable: None,
        new_values: Vec::new(),
    }
}

/// The node's variables that hold `rotated`.
fn held_in(rotated: &[Rotated]) -> Vec<&'static str> {
    rotated
        .iter()
        .flat_map(|r| r.variables.iter().copied())
        .collect()
}

/// `Phase 1`, `Phases 1 and 2`, `Phases 1 to 12`.
fn phase_list(numbers: &[u32]) -> String {
    match numbers {
        [one] => format!("Phase {one}"),
        [a, b] => format!("Phases {a} and {b}"),
        [first, .., last] => format!("Phases {first} to {last}"),
        [] => "no phase".into(),
    }
}
