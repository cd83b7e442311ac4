//! When each of a scenario's faults is injected and undone: before a runbook step
//! (`before phase3.step3`) or at a time after the first step, for a bounded time or until the
//! end of the phases (or through the checks after them; or to the end of the rollback, for
//! faults on its steps). Several faults may share a
//! boundary (they compose) or follow one another. Every injection and teardown is recorded with
//! its time for the journal.

use crate::faults::Fault;
use crate::journal::FaultRecord;
use harness::stack::Stack;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The moments faults without a duration of their own are undone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Undo {
    /// After the last step of the phases (faults kept through the checks stay).
    EndOfPhases,
    /// After the checks that follow the steps, before the rollback.
    AfterChecks,
    /// After the rollback's last step.
    EndOfRollback,
}

/// Where a fault attaches.
#[derive(Debug, Clone, PartialEq)]
pub enum At {
    /// Just before the runbook step with this id (`phase3.step3`, `rollback.step2`).
    BeforeStep(String),
    /// This long after the first step began.
    After(Duration),
}

/// A fault, where it attaches and how long it lasts.
pub struct FaultAt {
    pub at: At,
    /// Undone after this long; `None`: at the end of the phases (or of the rollback).
    pub lasts: Option<Duration>,
    /// Kept through the checks after the steps, and undone just before the rollback: the
    /// verification (the runbook's and the harness's) runs while the fault is there.
    pub through_checks: bool,
    pub fault: Box<dyn Fault>,
}

impl FaultAt {
    pub fn before(step: &str, fault: impl Fault + 'static) -> Self {
        FaultAt {
            at: At::BeforeStep(step.to_string()),
            lasts: None,
            through_checks: false,
            fault: Box::new(fault),
        }
    }

    pub fn after(delay: Duration, fault: impl Fault + 'static) -> Self {
        FaultAt {
            at: At::After(delay),
            lasts: None,
            through_checks: false,
            fault: Box::new(fault),
        }
    }

    /// Undone after `duration` instead of at the end of the phases.
    pub fn lasting(mut self, duration: Duration) -> Self {
        self.lasts = Some(duration);
        self
    }

    /// Kept through the checks after the steps (undone before the rollback).
    pub fn through_checks(mut self) -> Self {
        self.through_checks = true;
        self
    }

    /// "before phase3.step3", "2.0 s into the steps".
    pub fn describe_at(&self) -> String {
        let at = match &self.at {
            At::BeforeStep(id) => format!("before {id}"),
            At::After(d) => format!("{:.1} s into the steps", d.as_secs_f64()),
        };
        match (self.lasts, self.through_checks) {
            (Some(d), _) => format!("{at}, for {:.1} s", d.as_secs_f64()),
            (None, true) => format!("{at}, through the checks"),
            (None, false) => at,
        }
    }

    fn on_rollback(&self) -> bool {
        matches!(&self.at, At::BeforeStep(id) if id.starts_with("rollback."))
    }
}

#[derive(Default, Clone, Copy)]
struct Slot {
    injected: Option<Instant>,
    /// Injection or teardown in progress, or done: nobody else touches it.
    busy: bool,
    removed: bool,
}

/// Injects and undoes one scenario's faults; shared by the steps and a timer.
pub struct Scheduler<'a> {
    stack: &'a Stack,
    faults: &'a [FaultAt],
    t0: Instant,
    slots: Mutex<Vec<Slot>>,
    records: Mutex<Vec<FaultRecord>>,
}

impl<'a> Scheduler<'a> {
    /// Times are counted from `t0`, the start of the first step.
    pub fn new(stack: &'a Stack, faults: &'a [FaultAt], t0: Instant) -> Self {
        Scheduler {
            stack,
            faults,
            t0,
            slots: Mutex::new(vec![Slot::default(); faults.len()]),
            records: Mutex::new(
                faults
                    .iter()
                    .map(|f| FaultRecord::new(&f.fault.name(), &f.describe_at()))
                    .collect(),
            ),
        }
    }

    fn ms(&self) -> u64 {
        self.t0.elapsed().as_millis() as u64
    }

    /// Claims slot `i` for injection if it has not been injected yet.
    fn claim_inject(&self, i: usize) -> bool {
        let mut slots = self.slots.lock().expect("slots lock");
        let s = &mut slots[i];
        if s.busy || s.injected.is_some() {
            return false;
        }
        s.busy = true;
        true
    }

    async fn inject(&self, i: usize) {
        let at = self.ms();
        let result = self.faults[i].fault.inject(self.stack).await;
        {
            let mut slots = self.slots.lock().expect("slots lock");
            slots[i].injected = Some(Instant::now());
            slots[i].busy = false;
        }
        let mut records = self.records.lock().expect("records lock");
        records[i].injected_ms = Some(at);
        records[i].ok &= result.is_ok();
        records[i].inject = result.unwrap_or_else(|e| format!("failed: {e}"));
    }

    async fn remove(&self, i: usize) {
        {
            let mut slots = self.slots.lock().expect("slots lock");
            let s = &mut slots[i];
            if s.busy || s.removed || s.injected.is_none() {
                return;
            }
            s.busy = true;
        }
        let result = self.faults[i].fault.teardown(self.stack).await;
        let at = self.ms();
        {
            let mut slots = self.slots.lock().expect("slots lock");
            slots[i].removed = true;
            slots[i].busy = false;
        }
        let mut records = self.records.lock().expect("records lock");
        records[i].removed_ms = Some(at);
        records[i].ok &= result.is_ok();
        records[i].teardown = result.unwrap_or_else(|e| format!("failed: {e}"));
    }

    /// Injects every fault attached before `step_id`; returns their names.
    pub async fn before_step(&self, step_id: &str) -> Vec<String> {
        let mut names = Vec::new();
        for (i, f) in self.faults.iter().enumerate() {
            if f.at == At::BeforeStep(step_id.to_string()) && self.claim_inject(i) {
                self.inject(i).await;
                names.push(f.fault.name());
            }
        }
        names
    }

    /// Until `stop`: injects timed faults when due and undoes bounded ones when their time is
    /// up. A 50 ms tick is the schedule's resolution.
    pub async fn run_timers(&self, stop: &AtomicBool) {
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        while !stop.load(Ordering::SeqCst) {
            tick.tick().await;
            for (i, f) in self.faults.iter().enumerate() {
                if let At::After(delay) = f.at {
                    if self.t0.elapsed() >= delay && self.claim_inject(i) {
                        self.inject(i).await;
                    }
                }
                let injected = self.slots.lock().expect("slots lock")[i].injected;
                if let (Some(lasts), Some(at)) = (f.lasts, injected) {
                    if at.elapsed() >= lasts {
                        self.remove(i).await;
                    }
                }
            }
        }
    }

    /// Undoes the injected faults whose time is up at `when`. A fault with a duration of its
    /// own lasts it: at the end of the phases this waits for the ones still running.
    pub async fn undo(&self, when: Undo) {
        if when == Undo::EndOfPhases {
            let mut due: Vec<(Instant, usize)> = self
                .faults
                .iter()
                .enumerate()
                .filter_map(|(i, f)| {
                    let injected = self.slots.lock().expect("slots lock")[i].injected?;
                    Some((injected + f.lasts?, i))
                })
                .collect();
            due.sort();
            for (at, i) in due {
                tokio::time::sleep_until(at.into()).await;
                self.remove(i).await;
            }
        }
        for (i, f) in self.faults.iter().enumerate() {
            let due = match when {
                Undo::EndOfPhases => !f.through_checks && !f.on_rollback(),
                Undo::AfterChecks => !f.on_rollback(),
                Undo::EndOfRollback => true,
            };
            if due {
                self.remove(i).await;
            }
        }
    }

    /// What happened to each fault, in the scenario's order.
    pub fn records(&self) -> Vec<FaultRecord> {
        self.records.lock().expect("records lock").clone()
    }
}
