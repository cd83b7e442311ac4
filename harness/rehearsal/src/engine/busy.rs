//! How many scenarios do CPU-heavy work at once, on this machine and across processes.
//!
//! A scenario is *busy* while it starts its replica, runs its steps under live traffic, checks
//! and tears down. It is *waiting* while Telegram's last retries run out and the workers drain:
//! up to a minute, twice, for a scenario that breaks. Its retries still cost CPU, but less than
//! a scenario's steps; a waiting scenario gives its slot to the next one, so that no slot sits
//! out a retry window.
//!
//! A slot is held both in this process and on the machine (an exclusive lock on one of
//! `count` files in the temp dir), so two `rehearse` runs or nextest's test processes share the
//! same bound. Dropping the [`BusySlot`] frees both. In this process a scenario coming back
//! from its wait goes before one that has not started: finishing work frees its replica and
//! keeps its faults as short as they were meant to be.
//!
//! Slots bound the count; the machine's load bounds admission. A scenario about to start while
//! another of this process is busy is admitted only when the machine has the spare CPU a busy
//! scenario costs ([`SCENARIO_CORES`], measured), whoever else uses it: another job on the
//! machine leaves fewer scenarios running at once, never a starved probe. It waits until one of
//! this process's busy scenarios finishes or goes waiting, at most [`ADMISSION_PATIENCE`]; a
//! scenario returning from its wait, or the only busy one, is admitted at once.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Who asks for a slot: a scenario about to start, or one coming back from waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asker {
    Starting,
    Returning,
}

#[derive(Debug)]
struct Local {
    free: Mutex<Counts>,
    changed: Notify,
}

#[derive(Debug)]
struct Counts {
    free: usize,
    returning_waiters: usize,
}

/// The bound on busy scenarios: `count` slots.
#[derive(Debug, Clone)]
pub struct BusySlots {
    count: usize,
    /// Whether a starting scenario also waits for spare CPU (off in this module's tests, whose
    /// machine is whatever nextest runs beside them).
    by_load: bool,
    /// Whether a scenario takes every slot, of this process and of the machine: it runs alone,
    /// with no other scenario busy beside it (a rehearsal again after the machine starved it).
    alone: bool,
    local: Arc<Local>,
    dir: PathBuf,
}

/// One slot held (every slot, for a scenario alone); freed when dropped.
#[derive(Debug)]
pub struct BusySlot {
    local: Arc<Local>,
    taken: usize,
    _files: Vec<std::fs::File>,
}

impl Drop for BusySlot {
    fn drop(&mut self) {
        for _ in 0..self.taken {
            self.local.give_back();
        }
    }
}

impl Local {
    /// Takes one of this process's slots; a returning asker goes before any starting one.
    async fn take(&self, asker: Asker) {
        // Counted among the returning waiters until it has a slot, or is dropped waiting.
        struct Waiting<'a>(&'a Local);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                if let Ok(mut counts) = self.0.free.lock() {
                    counts.returning_waiters -= 1;
                }
                self.0.changed.notify_waiters();
            }
        }
        let _waiting = (asker == Asker::Returning).then(|| {
            self.free
                .lock()
                .expect("busy slot counts")
                .returning_waiters += 1;
            Waiting(self)
        });
        loop {
            let changed = self.changed.notified();
            let mut changed = std::pin::pin!(changed);
            changed.as_mut().enable();
            {
                let mut counts = self.free.lock().expect("busy slot counts");
                // Returning waiters other than this asker.
                let others = counts.returning_waiters - usize::from(asker == Asker::Returning);
                if counts.free > 0 && (asker == Asker::Returning || others == 0) {
                    counts.free -= 1;
                    return;
                }
            }
            changed.await;
        }
    }

    fn give_back(&self) {
        if let Ok(mut counts) = self.free.lock() {
            counts.free += 1;
        }
        self.changed.notify_waiters();
    }
}

/// The CPU one busy scenario takes (its replica, probe and harness), in cores, measured on a
/// 2-core machine (2026-12-01): a scenario under the default traffic (100 updates/s) with
/// nothing else busy left the machine 50–53 % idle, 0.94–1.0 cores (phase 2, phase 5, the whole
/// rotation and their rollbacks, `--parallel 1`). A second scenario starts only when that much
/// is spare, within measuring noise.
pub const SCENARIO_CORES: f64 = 0.9;

/// How long a starting scenario waits for spare CPU before it starts anyway: longer than a
/// scenario is busy, so that on a machine another job keeps busy the rehearsal runs one
/// scenario at a time rather than starve its probe; a safety net, not a schedule.
pub const ADMISSION_PATIENCE: Duration = Duration::from_secs(300);

/// The machine's spare cores over `window`: the idle share of `/proc/stat` times the cores.
/// `None` where `/proc/stat` cannot be read (then admission is by slots alone).
pub async fn spare_cores(window: Duration) -> Option<f64> {
    let before = cpu_idle_and_total()?;
    tokio::time::sleep(window).await;
    let after = cpu_idle_and_total()?;
    let total = after.1.saturating_sub(before.1);
    if total == 0 {
        return None;
    }
    let idle = after.0.saturating_sub(before.0) as f64 / total as f64;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    Some(idle * cores)
}

/// `/proc/stat`'s first line: (idle + iowait, all) jiffies.
fn cpu_idle_and_total() -> Option<(u64, u64)> {
    crate::probe::cpu_counters().map(|(idle, _steal, total)| (idle, total))
}

/// Whether a scenario may start beside `in_use` busy ones of this process, with `spare` cores
/// idle on the machine (`None`: unknown).
fn admitted(in_use: usize, spare: Option<f64>) -> bool {
    in_use == 0 || spare.is_none_or(|spare| spare >= SCENARIO_CORES)
}

impl BusySlots {
    /// `count` slots (at least one), shared with every process on the machine.
    pub fn new(count: usize) -> Self {
        BusySlots {
            by_load: true,
            ..Self::in_dir(count, std::env::temp_dir())
        }
    }

    /// As many slots as the machine has cores.
    pub fn per_core() -> Self {
        Self::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
    }

    fn in_dir(count: usize, dir: PathBuf) -> Self {
        let count = count.max(1);
        BusySlots {
            count,
            by_load: false,
            alone: false,
            local: Arc::new(Local {
                free: Mutex::new(Counts {
                    free: count,
                    returning_waiters: 0,
                }),
                changed: Notify::new(),
            }),
            dir,
        }
    }

    pub fn count(&self) -> usize {
        self.count
    }

    /// The same slots, taken all at once by each scenario: it is busy alone on the machine.
    pub fn alone(&self) -> Self {
        BusySlots {
            alone: true,
            ..self.clone()
        }
    }

    /// Whether each scenario is busy with no other beside it: it takes every slot, or there is
    /// only one (`--parallel 1`). A scenario waiting out Telegram's retries may still drain
    /// beside it; draining costs little CPU.
    pub fn alone_on_the_machine(&self) -> bool {
        self.alone || self.count <= 1
    }

    /// Takes every slot of this process, then locks every slot file of the machine, holding
    /// those it has while it waits for the rest (another process frees its slot within a
    /// scenario's busy time, and waits for none while it holds one).
    async fn acquire_alone(&self, asker: Asker) -> (BusySlot, Duration) {
        let started = Instant::now();
        let mut slot = BusySlot {
            local: self.local.clone(),
            taken: 0,
            _files: Vec::new(),
        };
        for _ in 0..self.count {
            self.local.take(asker).await;
            slot.taken += 1;
        }
        let mut pending: Vec<usize> = (0..self.count).collect();
        while !pending.is_empty() {
            pending.retain(|i| match self.slot_file(*i) {
                Some(file) if file.try_lock().is_ok() => {
                    slot._files.push(file);
                    false
                }
                Some(_) => true,
                // Cannot be opened here: there is nothing to wait for.
                None => false,
            });
            if !pending.is_empty() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        (slot, started.elapsed())
    }

    /// Slot file `i`, opened to be locked. Another user's run may have made it (root in CI, a
    /// user later): a lock needs no write access, so it is opened read-only then, and the bound
    /// stays machine-wide across users. `None` only when it can be neither made nor read; a slot
    /// none of whose files can be opened holds this process's bound alone, said once.
    fn slot_file(&self, i: usize) -> Option<std::fs::File> {
        let path = self.dir.join(format!("rotation-rehearsal-busy-{i}.lock"));
        let writable = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path);
        match writable {
            Ok(file) => Some(file),
            Err(_) => match std::fs::File::open(&path) {
                Ok(file) => Some(file),
                Err(e) => {
                    static SAID: std::sync::Once = std::sync::Once::new();
                    SAID.call_once(|| {
                        harness::errln!(
                            "warning: {}: {}; scenarios are bounded in this process only",
                            path.display(),
                            harness::input::io_reason(&e)
                        )
                    });
                    None
                }
            },
        }
    }

    /// Scenarios of this process busy now.
    fn in_use(&self) -> usize {
        self.count
            - self
                .local
                .free
                .lock()
                .map_or(self.count, |counts| counts.free)
    }

    /// Waits while another scenario of this process is busy and the machine has less spare CPU
    /// than a busy scenario costs, at most `ADMISSION_PATIENCE`.
    async fn admit_by_load(&self) {
        let deadline = Instant::now() + ADMISSION_PATIENCE;
        while Instant::now() < deadline {
            let in_use = self.in_use();
            if in_use == 0 {
                return;
            }
            let spare = spare_cores(Duration::from_millis(500)).await;
            if admitted(in_use, spare) {
                return;
            }
        }
    }

    /// Waits for a free slot (and, when starting, for the spare CPU a scenario costs); returns
    /// it with how long the wait took.
    pub async fn acquire(&self, asker: Asker) -> (BusySlot, Duration) {
        if self.alone {
            return self.acquire_alone(asker).await;
        }
        let started = Instant::now();
        if self.by_load && asker == Asker::Starting && self.count > 1 {
            self.admit_by_load().await;
        }
        self.local.take(asker).await;
        // Given back if this future is dropped before the machine-wide lock is taken.
        let mut taken = GiveBack(Some(&self.local));
        loop {
            let mut opened = 0;
            for i in 0..self.count {
                let Some(file) = self.slot_file(i) else {
                    continue;
                };
                opened += 1;
                if file.try_lock().is_ok() {
                    taken.0 = None;
                    let slot = BusySlot {
                        local: self.local.clone(),
                        taken: 1,
                        _files: vec![file],
                    };
                    return (slot, started.elapsed());
                }
            }
            if opened == 0 {
                // No slot file can be opened here: this process's own bound is all there is.
                taken.0 = None;
                let slot = BusySlot {
                    local: self.local.clone(),
                    taken: 1,
                    _files: Vec::new(),
                };
                return (slot, started.elapsed());
            }
            // Held by another process: poll, it frees within seconds.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Gives a slot of this process back on drop unless disarmed (`.0 = None`).
struct GiveBack<'a>(Option<&'a Local>);

impl Drop for GiveBack<'_> {
    fn drop(&mut self) {
        if let Some(local) = self.0 {
            local.give_back();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{admitted, Asker, BusySlots, SCENARIO_CORES};

    #[test]
    fn a_scenario_starts_beside_busy_ones_only_with_the_spare_cpu_a_scenario_costs() {
        assert!(
            admitted(0, Some(0.0)),
            "the only one starts whatever the load"
        );
        assert!(admitted(1, Some(SCENARIO_CORES)));
        assert!(
            !admitted(1, Some(SCENARIO_CORES - 0.1)),
            "one core busy elsewhere"
        );
        assert!(admitted(1, None), "no /proc/stat: by slots alone");
    }

    #[tokio::test]
    async fn spare_cores_are_the_idle_share_of_the_machines_cores() {
        let cores = std::thread::available_parallelism().unwrap().get() as f64;
        let spare = super::spare_cores(std::time::Duration::from_millis(100))
            .await
            .expect("/proc/stat on Linux");
        assert!((0.0..=cores).contains(&spare), "{spare} of {cores}");
    }
    use std::time::Duration;

    fn slots_in(dir: &std::path::Path, count: usize) -> BusySlots {
        BusySlots::in_dir(count, dir.to_path_buf())
    }

    /// A directory of lock files of the test's own, removed when dropped.
    struct LockDir(std::path::PathBuf);
    impl LockDir {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir()
                .join(format!("rotation-busy-test-{name}-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            LockDir(dir)
        }
        fn path(&self) -> &std::path::Path {
            &self.0
        }
    }
    impl Drop for LockDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[tokio::test]
    async fn a_third_scenario_waits_until_one_of_two_slots_is_free() {
        let dir = LockDir::new("third");
        let slots = slots_in(dir.path(), 2);
        let (first, _) = slots.acquire(Asker::Starting).await;
        let (_second, _) = slots.acquire(Asker::Starting).await;
        let third =
            tokio::time::timeout(Duration::from_millis(300), slots.acquire(Asker::Starting)).await;
        assert!(
            third.is_err(),
            "a third slot was handed out while two were held"
        );
        drop(first);
        let third =
            tokio::time::timeout(Duration::from_secs(5), slots.acquire(Asker::Starting)).await;
        assert!(third.is_ok(), "the freed slot was not handed out");
    }

    #[tokio::test]
    async fn slots_are_shared_with_another_process_through_their_lock_files() {
        let dir = LockDir::new("shared");
        // Another process's view of the same machine: its own semaphore, the same files.
        let ours = slots_in(dir.path(), 1);
        let theirs = slots_in(dir.path(), 1);
        let (held, _) = theirs.acquire(Asker::Starting).await;
        let waited =
            tokio::time::timeout(Duration::from_millis(300), ours.acquire(Asker::Starting)).await;
        assert!(waited.is_err(), "the machine-wide slot was taken twice");
        drop(held);
        let (_, waited) =
            tokio::time::timeout(Duration::from_secs(5), ours.acquire(Asker::Starting))
                .await
                .expect("the slot freed by the other process was not taken");
        assert!(waited < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn a_slot_locked_through_a_read_only_handle_as_another_users_file_is_held_machine_wide() {
        let dir = LockDir::new("read-only");
        let ours = slots_in(dir.path(), 1);
        // Another user's run made the file; we may only read it, and a lock needs no more.
        let path = dir.path().join("rotation-rehearsal-busy-0.lock");
        std::fs::write(&path, b"").unwrap();
        let theirs = std::fs::File::open(&path).unwrap();
        theirs
            .try_lock()
            .expect("a read-only handle takes the lock");
        let waited =
            tokio::time::timeout(Duration::from_millis(300), ours.acquire(Asker::Starting)).await;
        assert!(waited.is_err(), "the slot another user holds was taken");
        drop(theirs);
        let (held, _) = tokio::time::timeout(Duration::from_secs(5), ours.acquire(Asker::Starting))
            .await
            .expect("the slot another user freed was not taken");
        let reader = std::fs::File::open(&path).unwrap();
        assert!(
            reader.try_lock().is_err(),
            "our slot is not held machine-wide"
        );
        drop(held);
    }

    #[tokio::test]
    async fn a_scenario_alone_waits_for_every_slot_of_the_machine_and_holds_them_all() {
        let dir = LockDir::new("alone");
        // Another process busy with one of the machine's two slots.
        let theirs = slots_in(dir.path(), 2);
        let (held, _) = theirs.acquire(Asker::Starting).await;
        let ours = slots_in(dir.path(), 2).alone();
        let early =
            tokio::time::timeout(Duration::from_millis(300), ours.acquire(Asker::Starting)).await;
        assert!(early.is_err(), "alone while another scenario was busy");
        drop(held);
        let (alone, _) =
            tokio::time::timeout(Duration::from_secs(5), ours.acquire(Asker::Starting))
                .await
                .expect("every slot free, yet not alone");
        let beside =
            tokio::time::timeout(Duration::from_millis(300), theirs.acquire(Asker::Starting)).await;
        assert!(beside.is_err(), "a scenario started beside one alone");
        drop(alone);
        let after =
            tokio::time::timeout(Duration::from_secs(5), theirs.acquire(Asker::Starting)).await;
        assert!(
            after.is_ok(),
            "the slots of a scenario alone were not given back"
        );
    }

    #[tokio::test]
    async fn a_scenario_coming_back_from_its_wait_goes_before_one_not_yet_started() {
        let dir = LockDir::new("returning");
        let slots = slots_in(dir.path(), 1);
        let (held, _) = slots.acquire(Asker::Starting).await;
        let starting = tokio::spawn({
            let slots = slots.clone();
            async move { slots.acquire(Asker::Starting).await }
        });
        // The starter asked first; the returning scenario asks later.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let returning = tokio::spawn({
            let slots = slots.clone();
            async move { slots.acquire(Asker::Returning).await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(held);
        let (back, _) = tokio::time::timeout(Duration::from_secs(5), returning)
            .await
            .expect("the returning scenario got no slot")
            .unwrap();
        assert!(
            !starting.is_finished(),
            "the scenario not yet started got the slot before the returning one"
        );
        drop(back);
        tokio::time::timeout(Duration::from_secs(5), starting)
            .await
            .expect("the starting scenario never got the freed slot")
            .unwrap();
    }
}
