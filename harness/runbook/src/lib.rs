//! The runbook as data: phases, numbered steps with their code blocks, the secrets inventory,
//! the rollback procedure and the notes, parsed from markdown (`parse`); static findings on its
//! shell blocks (`findings`); what covers each step and secret (`coverage`); and the lock that
//! makes an unreviewed runbook change fail CI (`lock`).

pub mod budget;
pub mod coverage;
pub mod findings;
pub mod lock;
mod parse;
pub mod shell;

use serde::Serialize;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

pub use parse::parse;

/// Where the shipped runbook lives, relative to the workspace root.
pub const DEFAULT_RUNBOOK: &str = "fixtures/runbook/SECRETS_ROTATION_RUNBOOK.md";

/// The largest runbook read (16 MiB; the shipped one is about 20 KB). Parsing is linear in the
/// size (`cargo bench -p harness --bench runbook`), so this bounds time and memory too.
pub const RUNBOOK_MAX_BYTES: u64 = 16 << 20;

/// The most rows a secrets inventory may have (the shipped one has 10): coverage matches each
/// row against every phase, so this keeps `runbook show` linear in the runbook's size.
pub const MAX_INVENTORY_ROWS: usize = 200;

/// `:N` for a 1-based line, nothing for an error about the whole file (line 0).
pub fn at_line(line: usize) -> String {
    match line {
        0 => String::new(),
        n => format!(":{n}"),
    }
}

/// A runbook that could not be mapped: the file, the 1-based line, and what is wrong there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}{}: {message}", at_line(*line))]
pub struct RunbookError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

/// The whole document.
#[derive(Debug, Clone, Serialize)]
pub struct Runbook {
    /// The file it was read from, as given.
    pub file: String,
    /// The prose outside the inventory, the phases, the rollback and the notes (the overview:
    /// what the runbook tells its operator about every step, e.g. to stop at a failing one).
    pub overview: String,
    pub inventory: Vec<InventoryRow>,
    pub phases: Vec<Phase>,
    /// Steps of the rollback procedure (`rollback.stepN`); empty when the document has none.
    pub rollback: Vec<Step>,
    /// Line of the rollback heading, when there is one.
    pub rollback_line: Option<usize>,
    pub notes: Vec<Note>,
}

/// One row of the secrets inventory table.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct InventoryRow {
    pub secret: String,
    pub location: String,
    pub service: String,
    pub rotation_frequency: String,
    pub line: usize,
}

/// `### Phase N: Title (M min)`.
#[derive(Debug, Clone, Serialize)]
pub struct Phase {
    pub number: u32,
    pub title: String,
    pub budget_minutes: Option<u32>,
    /// Prose between the heading and the first step ("For API Keys (DeepSeek, Mistral, etc.):").
    pub preamble: String,
    pub line: usize,
    pub steps: Vec<Step>,
}

/// One numbered step of a phase or of the rollback.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// Stable id: `phase3.step2`, `rollback.step1`.
    pub id: String,
    pub number: u32,
    pub title: String,
    /// Everything in the step that is neither its title nor a code block.
    pub prose: String,
    pub code: Vec<CodeBlock>,
    pub line: usize,
    /// Hash of title, prose and code with all whitespace removed: whitespace-only edits keep it.
    pub fingerprint: String,
}

/// A fenced code block inside a step.
#[derive(Debug, Clone, Serialize)]
pub struct CodeBlock {
    /// The fence's info string (`bash`, `python`), empty when none.
    pub language: String,
    pub text: String,
    /// Line of the block's first content line.
    pub first_line: usize,
}

impl CodeBlock {
    /// Shell blocks are analysed as commands; an unlabelled block counts as shell.
    pub fn is_shell(&self) -> bool {
        matches!(
            self.language.as_str(),
            "bash" | "sh" | "shell" | "console" | "zsh" | ""
        )
    }
}

/// One bullet of the Notes section.
#[derive(Debug, Clone, Serialize)]
pub struct Note {
    pub text: String,
    pub line: usize,
}

impl Runbook {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<Runbook, RunbookError> {
        let text =
            user_io::input::read_text(path, RUNBOOK_MAX_BYTES).map_err(|e| RunbookError {
                file: path.display().to_string(),
                line: e.line(),
                message: format!("runbook: {e}"),
            })?;
        parse(&path.display().to_string(), &text)
    }

    /// Every step, phases first in order, then the rollback.
    pub fn steps(&self) -> impl Iterator<Item = &Step> {
        self.phases
            .iter()
            .flat_map(|p| p.steps.iter())
            .chain(self.rollback.iter())
    }

    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps().find(|s| s.id == id)
    }

    /// The programs the runbook's shell blocks run on this host (`shell::host_programs`), over
    /// every step, phases and rollback.
    pub fn host_programs(&self) -> std::collections::BTreeSet<String> {
        self.steps()
            .flat_map(|s| &s.code)
            .filter(|b| b.is_shell())
            .flat_map(|b| shell::host_programs(&shell::read(&b.text, b.first_line)))
            .collect()
    }

    /// The phase a step id belongs to (`None` for rollback steps).
    pub fn phase_of(&self, step_id: &str) -> Option<&Phase> {
        self.phases
            .iter()
            .find(|p| p.steps.iter().any(|s| s.id == step_id))
    }
}

impl Runbook {
    /// The fingerprint of what a rehearsal runs: every step's fingerprint, phases then the
    /// rollback, in order (whitespace ignored, as a step's own).
    pub fn fingerprint(&self) -> String {
        let mut hasher = Sha256::new();
        for step in self
            .phases
            .iter()
            .flat_map(|p| &p.steps)
            .chain(&self.rollback)
        {
            hasher.update(step.id.as_bytes());
            hasher.update([0x1f]);
            hasher.update(step.fingerprint.as_bytes());
            hasher.update([0x1e]);
        }
        let digest = hasher.finalize();
        digest[..8].iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// The fingerprint of a step's parts: whitespace is ignored entirely, every other character
/// counts, and the parts are kept apart so text cannot move between them unnoticed.
pub fn fingerprint(title: &str, prose: &str, code: &[CodeBlock]) -> String {
    let mut hasher = Sha256::new();
    let mut feed = |part: &str| {
        let squeezed: String = part.chars().filter(|c| !c.is_whitespace()).collect();
        hasher.update(squeezed.as_bytes());
        hasher.update([0x1f]);
    };
    feed(title);
    feed(prose);
    for block in code {
        feed(&block.language);
        feed(&block.text);
    }
    let digest = hasher.finalize();
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// The workspace root, for tools run from anywhere inside it.
pub fn workspace_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("the runbook crate sits in harness/ of the workspace")
        .join(relative)
}

/// A runbook of about `bytes` bytes that parses: the shipped runbook's inventory, its phases
/// repeated (renumbered) until the size is reached, then its rollback and notes. For the
/// parser's benchmark and its linear-time tests.
pub fn synthetic(bytes: usize) -> String {
    const SHIPPED: &str = include_str!("../../../fixtures/runbook/SECRETS_ROTATION_RUNBOOK.md");
    let first = SHIPPED
        .find("### Phase ")
        .expect("the shipped runbook has phases");
    let last = SHIPPED
        .rfind("### Phase ")
        .expect("the shipped runbook has phases");
    let end = last
        + SHIPPED[last..]
            .find("\n## ")
            .expect("a section follows the phases")
        + 1;
    let (prefix, phases, suffix) = (&SHIPPED[..first], &SHIPPED[first..end], &SHIPPED[end..]);
    let chunks: Vec<&str> = phases
        .split_inclusive("\n### Phase ")
        .map(|c| c.strip_suffix("### Phase ").unwrap_or(c))
        .map(|c| c.strip_prefix("### Phase ").unwrap_or(c))
        .collect();
    let mut out = String::with_capacity(bytes + SHIPPED.len());
    out.push_str(prefix);
    let mut number = 0;
    while out.len() + suffix.len() < bytes || number < chunks.len() {
        let chunk = chunks[number % chunks.len()];
        number += 1;
        let body = chunk.trim_start_matches(|c: char| c.is_ascii_digit());
        out.push_str(&format!("### Phase {number}{body}"));
    }
    out.push_str(suffix);
    out
}
