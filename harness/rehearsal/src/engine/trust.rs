//! Whether a measurement is the node's or the harness's: the probe's lag and host-side errors,
//! the machine's spare CPU, the engine's and the host's own failures.

#[allow(unused_imports)]
use super::*;

/// How late the probe's 50 ms clock may tick (99th percentile) before its timings are the
/// harness's rather than the node's: a second late means the probe's loop was starved.
pub const HARNESS_LAG_LIMIT_MS: u64 = 1000;
/// The share of the probe's attempts that may fail for the host's own reasons (no ephemeral
/// port, no file descriptor) before the traffic numbers are the host's rather than the node's.
pub const HOST_ERROR_LIMIT: f64 = 0.01;

/// Why `probe`'s numbers are the harness's rather than the node's, if they are: its clock
/// ticked later than `HARNESS_LAG_LIMIT_MS`, or more than `HOST_ERROR_LIMIT` of its attempts
/// failed on the host's side.
pub fn harness_saturated(probe: &probe::ProbeReport) -> Option<String> {
    let h = &probe.harness;
    if h.lag_p99_ms > HARNESS_LAG_LIMIT_MS {
        return Some(format!(
            "the probe's clock ticked {} ms late (99th percentile; most {} ms, limit {} ms; CPU \
             idle {:.0} %, steal {:.0} %): its timings are the harness's, not the node's",
            h.lag_p99_ms, h.lag_max_ms, HARNESS_LAG_LIMIT_MS, h.cpu_idle_pct, h.cpu_steal_pct
        ));
    }
    let attempts: u64 = probe.flows.values().map(|f| f.attempts).sum();
    if attempts > 0 && h.host_errors as f64 > HOST_ERROR_LIMIT * attempts as f64 {
        return Some(format!(
            "{} of {attempts} attempts failed on the host's side (no port or file descriptor \
             left), above {:.0} %: the failures are the harness's, not the node's",
            h.host_errors,
            HOST_ERROR_LIMIT * 100.0
        ));
    }
    None
}

/// The machine's idle CPU (percent of all cores, over the probe's window) below which the
/// replica was starved: its containers queued for CPU, so how long a recreate took, how late an
/// update came and whether a call outlived the client's retries are the machine's numbers, not
/// the node's. Measured on this project's 2-core machine: one scenario alone leaves 26 % idle
/// (`v2/rotation`); five at once (two busy, three waiting out retries) 1–3.4 %, where
/// `v2/rotation` missed `holds` by one API call and a backlog it alone never had.
pub const MACHINE_IDLE_FLOOR_PCT: f64 = 5.0;

/// Why a verdict other than `holds` says nothing about the runbook, if it does not: it rests
/// on traffic timing alone (`timing_only`: no step failed, no safeguard tripped, every check
/// passed, nothing accepted went missing), and it was measured either beside other busy
/// scenarios (`alone` false: their replicas took the CPU this one's recreates and deliveries
/// waited for) or, alone, by one of `probes` on a machine with no spare CPU
/// (`MACHINE_IDLE_FLOOR_PCT`). A verdict on timing is given only from a run alone on a machine
/// with CPU to spare. A failed step or check, or lost data, is evidence whatever the load; so is
/// `holds`.
pub fn starved_by_the_machine<'a>(
    actual: Outcome,
    timing_only: bool,
    alone: bool,
    probes: impl IntoIterator<Item = Option<&'a probe::ProbeReport>>,
) -> Option<String> {
    if actual == Outcome::Holds || !timing_only {
        return None;
    }
    if !alone {
        return Some(
            "only delays and failed calls deviated (every step and check passed, nothing was \
             lost), measured beside other busy scenarios whose replicas shared the CPU: a verdict \
             on timing alone is given only from a run alone on the machine"
                .to_string(),
        );
    }
    probes.into_iter().flatten().find_map(|p| {
        let h = &p.harness;
        (h.cpu_idle_pct < MACHINE_IDLE_FLOOR_PCT).then(|| {
            format!(
                "the machine had no spare CPU while the traffic was measured ({:.1} % idle, floor \
                 {MACHINE_IDLE_FLOOR_PCT:.0} %): only delays and failed calls deviated, every step \
                 and check passed and nothing was lost, and those timings are the machine's, not \
                 the node's",
                h.cpu_idle_pct
            )
        })
    })
}

/// Whether a probe's report shows data missing: accepted and never stored or processed, or
/// not countable. Evidence whatever the machine's load.
pub(super) fn data_missing(p: &probe::ProbeReport) -> bool {
    p.updates_lost > 0
        || p.data.error.is_some()
        || p.data.missing_gateway_rows > 0
        || p.data.missing_memories > 0
        || p.data.missing_processed.values().any(|n| *n > 0)
}

/// `actual`, unless it is a verdict other than `holds` resting on numbers a saturated harness
/// measured: then `inconclusive`, with why. A saturated harness that still saw everything
/// work has not invented a success.
pub fn unless_saturated<'a>(
    actual: Outcome,
    probes: impl IntoIterator<Item = Option<&'a probe::ProbeReport>>,
) -> (Outcome, Option<String>) {
    if actual == Outcome::Holds {
        return (actual, None);
    }
    match probes.into_iter().flatten().find_map(harness_saturated) {
        Some(reason) => (Outcome::Inconclusive, Some(reason)),
        None => (actual, None),
    }
}

/// Why a container could not be started for the Docker engine's own reason, if one could not:
/// libnetwork kept the endpoint of its earlier run (moby/moby#17217, #20398, #33756), so the
/// start failed before the service ran at all. A service down for that is the engine's
/// defect, not the runbook's; no verdict on the runbook is possible.
pub fn engine_could_not_start(forensics: &[crate::journal::Forensics]) -> Option<String> {
    forensics.iter().find_map(|f| {
        let error = f.engine_error.as_deref()?;
        error.contains("endpoint").then(|| {
            format!(
                "the Docker engine could not start {} {}: {error} (a stale network endpoint, \
                 moby/moby#17217: the engine's defect, not the runbook's)",
                f.service, f.when
            )
        })
    })
}

/// Why a runbook command could not run as written on this host for the host's own reason (it
/// has no Compose, or its Compose lacks what the command uses), if one could not: then no
/// verdict on the runbook is possible.
pub fn host_could_not_run(steps: &[StepRecord], rollback: &[StepRecord]) -> Option<String> {
    steps.iter().chain(rollback).find_map(|step| {
        step.actions
            .iter()
            .filter_map(|a| a.shell.as_ref())
            .filter(|run| run.exit_code != Some(0))
            .flat_map(|run| &run.compose)
            .find_map(|c| c.host_limitation())
            .map(|why| {
                format!(
                    "{}: the runbook's Compose command could not run as written: {why}",
                    step.id
                )
            })
    })
}
