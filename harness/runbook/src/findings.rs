//! Static findings on the runbook: every shell block read as commands and checked against rules
//! that name a consequence. Each finding is a hypothesis that a rehearsal scenario confirms or
//! refutes by measurement (`coverage` links the two).

use super::shell::{self, invocation, Invocation, Script};
use super::{Runbook, Step};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    High,
    Medium,
    Low,
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
        })
    }
}

/// The kinds of finding. Each has a severity and a one-line summary; its id (`never-terminates`)
/// is how journals, reports and finding ids (`<kind>@<step>`) name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingKind {
    NeverTerminates,
    UnknownSubcommand,
    RestartKeepsStaleEnv,
    UnanchoredSed,
    SecretOnCommandLine,
    TrustSocketVerification,
    PsqlDefaultDatabase,
    UnencryptedBackup,
    BackupSameDayOverwrite,
    BackupRetention,
    Placeholder,
    NoCommand,
    RollbackFilesOnly,
    RollbackWrongDirectory,
    NoRollback,
    LogsStderrMissed,
    ShallowVerification,
    SelectionNotFallback,
    EditMissesWiring,
}

impl FindingKind {
    /// Every kind, in the order reports list them.
    pub const ALL: [FindingKind; 19] = [
        FindingKind::NeverTerminates,
        FindingKind::UnknownSubcommand,
        FindingKind::RestartKeepsStaleEnv,
        FindingKind::UnanchoredSed,
        FindingKind::SecretOnCommandLine,
        FindingKind::TrustSocketVerification,
        FindingKind::PsqlDefaultDatabase,
        FindingKind::UnencryptedBackup,
        FindingKind::BackupSameDayOverwrite,
        FindingKind::BackupRetention,
        FindingKind::Placeholder,
        FindingKind::NoCommand,
        FindingKind::RollbackFilesOnly,
        FindingKind::RollbackWrongDirectory,
        FindingKind::NoRollback,
        FindingKind::LogsStderrMissed,
        FindingKind::ShallowVerification,
        FindingKind::SelectionNotFallback,
        FindingKind::EditMissesWiring,
    ];

    /// The kind's id, as journals and finding ids spell it.
    pub fn id(self) -> &'static str {
        match self {
            FindingKind::NeverTerminates => "never-terminates",
            FindingKind::UnknownSubcommand => "unknown-subcommand",
            FindingKind::RestartKeepsStaleEnv => "restart-keeps-stale-env",
            FindingKind::UnanchoredSed => "unanchored-sed",
            FindingKind::SecretOnCommandLine => "secret-on-command-line",
            FindingKind::TrustSocketVerification => "trust-socket-verification",
            FindingKind::PsqlDefaultDatabase => "psql-default-database",
            FindingKind::UnencryptedBackup => "unencrypted-backup",
            FindingKind::BackupSameDayOverwrite => "backup-same-day-overwrite",
            FindingKind::BackupRetention => "backup-retention",
            FindingKind::Placeholder => "placeholder",
            FindingKind::NoCommand => "no-command",
            FindingKind::RollbackFilesOnly => "rollback-files-only",
            FindingKind::RollbackWrongDirectory => "rollback-wrong-directory",
            FindingKind::NoRollback => "no-rollback",
            FindingKind::LogsStderrMissed => "logs-stderr-missed",
            FindingKind::ShallowVerification => "shallow-verification",
            FindingKind::SelectionNotFallback => "selection-not-fallback",
            FindingKind::EditMissesWiring => "edit-misses-wiring",
        }
    }

    pub fn severity(self) -> Severity {
        self.table().0
    }

    /// What the kind is about, on one line.
    pub fn summary(self) -> &'static str {
        self.table().1
    }

    fn table(self) -> (Severity, &'static str) {
        match self {
            FindingKind::NeverTerminates => (
                Severity::High,
                "a command that follows output forever, with no timeout",
            ),
            FindingKind::UnknownSubcommand => {
                (Severity::High, "a subcommand the called tool does not have")
            }
            FindingKind::RestartKeepsStaleEnv => (
                Severity::High,
                "configuration edited, then `restart` instead of a recreate",
            ),
            FindingKind::UnanchoredSed => (
                Severity::Medium,
                "a `sed` substitution of a secret that is not anchored to the line start",
            ),
            FindingKind::SecretOnCommandLine => {
                (Severity::Medium, "a secret value written on a command line")
            }
            FindingKind::TrustSocketVerification => (
                Severity::High,
                "a verification over a local socket inside a container",
            ),
            FindingKind::PsqlDefaultDatabase => (
                Severity::Medium,
                "`psql -U user` without a database connects to a database named after the user",
            ),
            FindingKind::UnencryptedBackup => (Severity::High, "a backup of secrets in clear"),
            FindingKind::BackupSameDayOverwrite => (
                Severity::Medium,
                "a backup name that a second run on the same day overwrites",
            ),
            FindingKind::BackupRetention => {
                (Severity::Medium, "a retention stated but never enforced")
            }
            FindingKind::Placeholder => (
                Severity::Medium,
                "an unfilled placeholder or an example value written as if real",
            ),
            FindingKind::NoCommand => (Severity::Medium, "a step with no command at all"),
            FindingKind::RollbackFilesOnly => (
                Severity::High,
                "a rollback that restores files but not server-side state",
            ),
            FindingKind::RollbackWrongDirectory => (
                Severity::Medium,
                "a rollback that restores relative paths from an unknown directory",
            ),
            FindingKind::NoRollback => (Severity::High, "no rollback procedure"),
            FindingKind::LogsStderrMissed => (
                Severity::Medium,
                "`docker logs … | grep` sees only the container's stdout",
            ),
            FindingKind::ShallowVerification => (
                Severity::Low,
                "a verification that does not exercise any secret",
            ),
            FindingKind::SelectionNotFallback => (
                Severity::Medium,
                "key selection that never falls back when the new key is rejected",
            ),
            FindingKind::EditMissesWiring => (
                Severity::High,
                "a secret edited in variables the node's services do not read it from",
            ),
        }
    }

    /// The kind an id names (`never-terminates`), if any.
    pub fn from_id(id: &str) -> Option<FindingKind> {
        Self::ALL.into_iter().find(|k| k.id() == id)
    }
}

impl std::fmt::Display for FindingKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id())
    }
}

/// One finding at one place in the runbook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable id: `<kind>@<step>`, with `.2`, `.3` … for repeats in one step.
    pub id: String,
    pub kind: FindingKind,
    pub severity: Severity,
    /// Step id (`phase3.step4`), `notes` or `rollback`.
    pub step: String,
    pub line: usize,
    /// The command (or text) it is about, on one line.
    pub excerpt: String,
    /// What goes wrong, and why.
    pub explanation: String,
}

/// What the static analysis says about one runbook, computed once and read by every consumer
/// of a scenario (the operator's literal values, the verdicts).
#[derive(Debug, Clone)]
pub struct Analysis {
    pub findings: Vec<Finding>,
    /// Secrets the runbook writes literally (its example password): (name, value).
    pub literal_secrets: Vec<(String, String)>,
}

impl Analysis {
    pub fn of(runbook: &Runbook) -> Analysis {
        Analysis {
            findings: analyse(runbook),
            literal_secrets: literal_secrets(runbook),
        }
    }

    /// The analysis of `runbook` on a node wired as `profile` says: the findings of `of`,
    /// and the edits that miss a variable the node's services read a secret from.
    pub fn of_profiled(runbook: &Runbook, profile: &dyn NodeWiring) -> Analysis {
        let mut analysis = Analysis::of(runbook);
        analysis.findings.extend(wiring_findings(runbook, profile));
        analysis.findings.sort_by_key(|f| f.line);
        analysis
    }
}

/// `analyse`, and the edits that miss where `profile` has the node read a secret.
pub fn analyse_profiled(runbook: &Runbook, profile: &dyn NodeWiring) -> Vec<Finding> {
    Analysis::of_profiled(runbook, profile).findings
}

/// Where a node's services read their secrets, as far as the findings need it (the node
/// profile implements it): which secrets a shell edit of `.env` files misses.
pub trait NodeWiring {
    /// The secrets shell `code` edits in their usual variable while some service reads them
    /// from a place `code` never names. Empty for the replica's default wiring.
    fn missed_by_edit(&self, code: &str) -> Vec<MissedWiring>;
    /// The wiring in a few words, for a finding's explanation.
    fn description(&self) -> &str;
}

/// A secret an edit of `.env` files changes in its usual variable but leaves where some of the
/// node's services read it (`NodeWiring::missed_by_edit`).
#[derive(Debug, Clone, PartialEq)]
pub struct MissedWiring {
    pub secret: String,
    /// The usual variable the edit writes (`DB_PASSWORD`).
    pub edited: String,
    /// Where the services read it instead: "`DATABASE_URL` in services/router/.env".
    pub places: Vec<String>,
}

/// One `edit-misses-wiring` finding per step whose `.env` edits change a secret's usual
/// variable (`DB_PASSWORD=`) where `profile` has services read it from another place
/// (`DATABASE_URL`, the project `.env`) the step does not touch. None for the default wiring.
pub fn wiring_findings(runbook: &Runbook, profile: &dyn NodeWiring) -> Vec<Finding> {
    let mut out = Vec::new();
    let steps = runbook
        .phases
        .iter()
        .flat_map(|p| &p.steps)
        .chain(&runbook.rollback);
    for step in steps {
        for block in step.code.iter().filter(|b| b.is_shell()) {
            let missed = profile.missed_by_edit(&block.text);
            let Some(first) = missed.first() else {
                continue;
            };
            let excerpt = block
                .text
                .lines()
                .find(|l| l.contains(&format!("{}=", first.edited)))
                .unwrap_or_default()
                .trim()
                .to_string();
            let explanation = missed
                .iter()
                .map(|m| {
                    format!(
                        "it edits `{}=` lines, but on this node {} is read from {}, which it leaves on the value from before",
                        m.edited,
                        m.secret,
                        m.places.join(", ")
                    )
                })
                .collect::<Vec<_>>()
                .join("; ");
            out.push(Finding {
                id: format!("{}@{}", FindingKind::EditMissesWiring, step.id),
                kind: FindingKind::EditMissesWiring,
                severity: FindingKind::EditMissesWiring.severity(),
                step: step.id.clone(),
                line: block.first_line,
                excerpt,
                explanation: format!("{explanation} (node profile: {})", profile.description()),
            });
            break;
        }
    }
    out
}

/// Real subcommands of the tools runbooks call, so a call that does not exist is found from a
/// table rather than from a special case. Sources: `docker --help` (24–28), docker-compose v1
/// and v2, natscli (`cli/*_command.go`).
const TOOLS: &[(&str, &[&str])] = &[
    (
        "docker",
        &[
            "attach",
            "build",
            "builder",
            "buildx",
            "checkpoint",
            "commit",
            "compose",
            "config",
            "container",
            "context",
            "cp",
            "create",
            "debug",
            "diff",
            "events",
            "exec",
            "export",
            "history",
            "image",
            "images",
            "import",
            "info",
            "init",
            "inspect",
            "kill",
            "load",
            "login",
            "logout",
            "logs",
            "manifest",
            "network",
            "node",
            "pause",
            "plugin",
            "port",
            "ps",
            "pull",
            "push",
            "rename",
            "restart",
            "rm",
            "rmi",
            "run",
            "save",
            "scout",
            "search",
            "secret",
            "service",
            "stack",
            "start",
            "stats",
            "stop",
            "swarm",
            "system",
            "tag",
            "top",
            "trust",
            "unpause",
            "update",
            "version",
            "volume",
            "wait",
        ],
    ),
    (
        "docker-compose",
        &[
            "attach", "build", "config", "convert", "cp", "create", "down", "events", "exec",
            "help", "images", "kill", "logs", "ls", "pause", "port", "ps", "pull", "push",
            "restart", "rm", "run", "scale", "start", "stats", "stop", "top", "unpause", "up",
            "version", "wait", "watch",
        ],
    ),
    (
        "nats",
        &[
            "account",
            "auth",
            "audit",
            "backup",
            "bench",
            "cheat",
            "consumer",
            "context",
            "counter",
            "errors",
            "events",
            "governor",
            "jwt",
            "kv",
            "latency",
            "micro",
            "object",
            "plugins",
            "pub",
            "publish",
            "reply",
            "req",
            "request",
            "restore",
            "rtt",
            "schema",
            "server",
            "srv",
            "stream",
            "str",
            "sub",
            "subscribe",
            "sys",
            "system",
            "trace",
        ],
    ),
    (
        "nats server",
        &[
            "account",
            "acct",
            "check",
            "cluster",
            "config",
            "generate",
            "gen",
            "graph",
            "info",
            "list",
            "ls",
            "mapping",
            "passwd",
            "pass",
            "mkpasswd",
            "ping",
            "purge",
            "raft",
            "report",
            "request",
            "req",
            "run",
            "stream-check",
            "watch",
        ],
    ),
];

/// Options of `docker` itself that take a value (before the subcommand).
const DOCKER_GLOBAL_VALUE_OPTIONS: &[&str] = &[
    "-H",
    "--host",
    "--context",
    "-c",
    "--config",
    "-l",
    "--log-level",
];

struct Collector {
    findings: Vec<Finding>,
    /// Findings so far per (kind, step): the next one's repeat suffix, in constant time.
    repeats: std::collections::HashMap<(FindingKind, String), usize>,
}

impl Collector {
    fn add(
        &mut self,
        kind: FindingKind,
        step: &str,
        line: usize,
        excerpt: &str,
        explanation: String,
    ) {
        let severity = kind.severity();
        let base = format!("{kind}@{step}");
        let count = self.repeats.entry((kind, step.to_string())).or_insert(0);
        let repeats = *count;
        *count += 1;
        let id = if repeats == 0 {
            base
        } else {
            format!("{base}.{}", repeats + 1)
        };
        self.findings.push(Finding {
            id,
            kind,
            severity,
            step: step.to_string(),
            line,
            excerpt: one_line(excerpt),
            explanation,
        });
    }
}

fn one_line(text: &str) -> String {
    let squeezed: Vec<&str> = text.split_whitespace().collect();
    let joined = squeezed.join(" ");
    if joined.chars().count() > 100 {
        let cut: String = joined.chars().take(97).collect();
        format!("{cut}...")
    } else {
        joined
    }
}

/// A configuration change that has not been applied to the running containers yet.
#[derive(Clone)]
struct PendingEdit {
    step: String,
    line: usize,
    what: String,
}

/// All findings, in document order.
pub fn analyse(runbook: &Runbook) -> Vec<Finding> {
    let mut state = State {
        out: Collector {
            findings: Vec::new(),
            repeats: Default::default(),
        },
        pending: None,
        server_side_changes: Vec::new(),
        any_backup_pruning: false,
        in_rollback: false,
    };
    for phase in &runbook.phases {
        state.pending = None;
        for step in &phase.steps {
            analyse_step(step, &mut state);
        }
    }
    state.pending = None;
    state.in_rollback = true;
    for step in &runbook.rollback {
        analyse_step(step, &mut state);
    }
    let mut out = state.out;
    rollback_findings(runbook, &state.server_side_changes, &mut out);
    retention_findings(runbook, state.any_backup_pruning, &mut out);
    out.findings.sort_by_key(|f| f.line);
    out.findings
}

/// Rollback: is there one, and does it undo what the phases changed on servers?
fn rollback_findings(
    runbook: &Runbook,
    server_side_changes: &[(String, usize, String)],
    out: &mut Collector,
) {
    let Some(first) = runbook.rollback.first() else {
        out.add(
            FindingKind::NoRollback,
            "rollback",
            runbook.rollback_line.unwrap_or(1),
            "",
            "the runbook has no numbered rollback procedure: a failed phase has no way back".into(),
        );
        return;
    };
    let rollback_touches_server = runbook.rollback.iter().any(|s| {
        s.code.iter().filter(|b| b.is_shell()).any(|b| {
            shell::read(&b.text, b.first_line)
                .commands()
                .any(|c| server_side_change(&c.words).is_some())
        })
    });
    if rollback_touches_server {
        return;
    }
    for (step, line, what) in server_side_changes {
        out.add(
            FindingKind::RollbackFilesOnly,
            &first.id,
            first.line,
            &first.title,
            format!(
                "{step} (line {line}) changes {what} on the server; the rollback restores \
                 files and restarts containers but never changes it back, so after a \
                 rollback the services present the old secret to a server that expects \
                 the new one"
            ),
        );
    }
}

/// Notes: a stated retention that nothing enforces.
fn retention_findings(runbook: &Runbook, any_backup_pruning: bool, out: &mut Collector) {
    for note in &runbook.notes {
        let lower = note.text.to_lowercase();
        if lower.contains("backup") && lower.contains("days") && !any_backup_pruning {
            out.add(
                FindingKind::BackupRetention,
                "notes",
                note.line,
                &note.text,
                "the notes keep backups for a fixed time, but no step deletes older ones: \
                 backups of every secret accumulate on the node, in clear, past the retention"
                    .into(),
            );
        }
    }
}

/// What the rules carry from one step (and command) to the next, and what they found.
struct State {
    out: Collector,
    /// The last configuration edit no recreate has picked up yet (within a phase).
    pending: Option<PendingEdit>,
    /// Server-side changes the phases make: (step, line, what).
    server_side_changes: Vec<(String, usize, String)>,
    /// Whether any step deletes old backups.
    any_backup_pruning: bool,
    /// The rollback's steps are being read.
    in_rollback: bool,
}

/// One command of a step's shell block, and where it is.
struct Site<'a> {
    step: &'a Step,
    inv: Invocation<'a>,
    command: &'a shell::Command,
    pipeline: &'a shell::Pipeline,
    /// Its position in the pipeline.
    index: usize,
    line: usize,
    /// The whole pipeline on one line.
    text: String,
    /// The step verifies (its title says "verify", "health" or "check").
    verification: bool,
    /// The block `cd`s somewhere first.
    has_cd: bool,
}

/// A rule on one command: adds findings, or updates what later commands are judged against.
type CommandRule = fn(&Site, &mut State);

/// Every rule on commands, in the order they are applied to each command (an edit's
/// restart is judged before a recreate or another edit replaces the pending one).
const COMMAND_RULES: &[CommandRule] = &[
    never_terminates,
    unknown_subcommand_rule,
    logs_stderr_missed,
    restart_after_edit,
    recreate_or_edit,
    sed_rule,
    secret_on_command_line,
    psql_rule,
    server_side_change_rule,
    tar_rule,
    backup_pruning,
    shallow_verification,
];

fn analyse_step(step: &Step, state: &mut State) {
    let verification = ["verif", "health", "check"]
        .iter()
        .any(|w| step.title.to_lowercase().contains(w));
    let scripts: Vec<(Script, &super::CodeBlock)> = step
        .code
        .iter()
        .filter(|b| b.is_shell())
        .map(|b| (shell::read(&b.text, b.first_line), b))
        .collect();
    // Prose that edits configuration ("Remove X from .env") counts as an edit.
    if mentions_config_edit(&step.prose) || mentions_config_edit(&step.title) {
        state.pending = Some(PendingEdit {
            step: step.id.clone(),
            line: step.line,
            what: "the `.env` files".into(),
        });
    }
    no_command(step, &scripts, &mut state.out);
    selection_in_code(step, &mut state.out);
    for (script, block) in &scripts {
        comments(step, script, state);
        placeholders_in(step, block, &mut state.out);
        let has_cd = script
            .commands()
            .any(|c| c.words.first().map(String::as_str) == Some("cd"));
        for pipeline in &script.pipelines {
            let text = pipeline
                .commands
                .iter()
                .map(|c| c.words.join(" "))
                .collect::<Vec<_>>()
                .join(" | ");
            for (index, command) in pipeline.commands.iter().enumerate() {
                let Some(inv) = invocation(&command.words) else {
                    continue;
                };
                let site = Site {
                    step,
                    inv,
                    command,
                    pipeline,
                    index,
                    line: command.line,
                    text: text.clone(),
                    verification,
                    has_cd,
                };
                for rule in COMMAND_RULES {
                    rule(&site, state);
                }
            }
        }
    }
}

/// A step with nothing to run and no console action that says what it yields.
fn no_command(step: &Step, scripts: &[(Script, &super::CodeBlock)], out: &mut Collector) {
    let runnable = scripts.iter().any(|(s, _)| !s.pipelines.is_empty())
        || step
            .code
            .iter()
            .any(|b| !b.is_shell() && !b.text.trim().is_empty());
    if runnable || console_action(step) {
        return;
    }
    let what = if step.code.is_empty() {
        "only prose"
    } else {
        "a code block with only comments"
    };
    out.add(
        FindingKind::NoCommand,
        &step.id,
        step.line,
        &step.title,
        format!(
            "\"{}\" has {what}: every operator does it differently, and nothing can be \
             rehearsed or reviewed as written",
            step.title
        ),
    );
}

/// Key selection in a non-shell block (`getenv(NEW) or getenv(OLD)`).
fn selection_in_code(step: &Step, out: &mut Collector) {
    for block in step.code.iter().filter(|b| !b.is_shell()) {
        if let Some(line_offset) = selection_not_fallback(&block.text) {
            out.add(
                FindingKind::SelectionNotFallback,
                &step.id,
                block.first_line + line_offset,
                block.text.lines().nth(line_offset).unwrap_or(""),
                "`getenv(NEW) or getenv(OLD)` picks NEW whenever it is set; it is not a fallback: \
                 a new key the provider rejects is never retried with the old one"
                    .into(),
            );
        }
    }
}

/// Comments: an elision where commands should be, and an edit a comment announces.
fn comments(step: &Step, script: &Script, state: &mut State) {
    for comment in &script.comments {
        let lower = comment.text.to_lowercase();
        if comment.text.starts_with("...") || lower.contains("continue for all") {
            state.out.add(
                FindingKind::Placeholder,
                &step.id,
                comment.line,
                &format!("# {}", comment.text),
                "an elision stands where commands should be: the services it leaves out are \
                 left to memory, and any one forgotten keeps the old secret"
                    .into(),
            );
        }
        if mentions_config_edit(&comment.text) {
            state.pending = Some(PendingEdit {
                step: step.id.clone(),
                line: comment.line,
                what: if lower.contains(".yml") || lower.contains("compose") {
                    "the compose file".into()
                } else {
                    "the `.env` files".into()
                },
            });
        }
    }
}

/// Placeholders (`<NEW_KEY>`, `YYYYMMDD`) to be filled in by hand.
fn placeholders_in(step: &Step, block: &super::CodeBlock, out: &mut Collector) {
    for (line_offset, text_line) in block.text.lines().enumerate() {
        for placeholder in placeholders(text_line) {
            out.add(
                FindingKind::Placeholder,
                &step.id,
                block.first_line + line_offset,
                text_line,
                format!("`{placeholder}` must be filled in by hand; pasted as written, the command fails or writes the placeholder itself"),
            );
        }
    }
}

fn never_terminates(site: &Site, state: &mut State) {
    if follows_forever(&site.inv) && !site.inv.bounded {
        state.out.add(
            FindingKind::NeverTerminates,
            &site.step.id,
            site.line,
            &site.text,
            format!(
                "`{}` follows the output until interrupted: the step never ends by \
                 itself, so \"{}\" has no end and no verdict; bound it with \
                 `timeout` or use `--since`/`--tail`",
                site.command.words.join(" "),
                site.step.title
            ),
        );
    }
}

fn unknown_subcommand_rule(site: &Site, state: &mut State) {
    if let Some(unknown) = unknown_subcommand(&site.inv) {
        let (id, line) = (&site.step.id, site.line);
        state.out.add(
            FindingKind::UnknownSubcommand,
            id,
            line,
            &site.text,
            unknown,
        );
    }
}

fn logs_stderr_missed(site: &Site, state: &mut State) {
    if site.inv.program == "docker"
        && docker_subcommand(site.inv.args) == Some("logs")
        && site.index + 1 < site.pipeline.commands.len()
        && !site.command.words.iter().any(|w| w == "2>&1" || w == "|&")
    {
        state.out.add(
            FindingKind::LogsStderrMissed,
            &site.step.id,
            site.line,
            &site.text,
            "`docker logs` writes what the container printed on stderr to its own \
             stderr, which the pipe does not carry: errors logged on stderr never \
             reach the grep (add `2>&1`)"
                .into(),
        );
    }
}

fn restart_after_edit(site: &Site, state: &mut State) {
    let Some(edit) = state.pending.as_ref().filter(|_| is_restart(&site.inv)) else {
        return;
    };
    let explanation = format!(
        "{} changed {} (line {}), but `restart` reuses the container as \
         created: its environment keeps the old values; only a recreate \
         (`docker compose up -d --force-recreate`) reads the change",
        edit.step, edit.what, edit.line
    );
    state.out.add(
        FindingKind::RestartKeepsStaleEnv,
        &site.step.id,
        site.line,
        &site.text,
        explanation,
    );
}

/// A recreate picks up the pending edit; a command that edits configuration is the new one.
fn recreate_or_edit(site: &Site, state: &mut State) {
    if is_recreate(&site.inv) {
        state.pending = None;
    }
    if let Some(edit) = edits_config(&site.inv) {
        state.pending = Some(PendingEdit {
            step: site.step.id.clone(),
            line: site.line,
            what: edit,
        });
    }
}

fn sed_rule(site: &Site, state: &mut State) {
    if let Some(expression) = sed_expression(&site.command.words) {
        unanchored_sed(
            &site.step.id,
            site.line,
            &site.text,
            expression,
            &mut state.out,
        );
    }
}

/// A secret typed on the command line, and an example value written as if real.
fn secret_on_command_line(site: &Site, state: &mut State) {
    for (name, value) in secrets_on_command_line(&site.command.words) {
        state.out.add(
            FindingKind::SecretOnCommandLine,
            &site.step.id,
            site.line,
            &site.text,
            format!(
                "the value of {name} is typed on the command line: it lands in shell \
                 history and is visible in `ps` (and, through `docker exec`, in the \
                 container's process list) while the command runs"
            ),
        );
        if looks_like_example(&value) {
            state.out.add(
                FindingKind::Placeholder,
                &site.step.id,
                site.line,
                &site.text,
                format!(
                    "{name} is set to an example value written as if real: pasted as \
                     is, the node's secret becomes a value published in this runbook"
                ),
            );
        }
    }
}

fn psql_rule(site: &Site, state: &mut State) {
    if site.inv.program == "psql" {
        psql_findings(site, &mut state.out);
    }
}

/// A change on a server (a password `ALTER`ed) that a rollback of files would not undo.
fn server_side_change_rule(site: &Site, state: &mut State) {
    if state.in_rollback {
        return;
    }
    if let Some(what) = server_side_change(&site.command.words) {
        state
            .server_side_changes
            .push((site.step.id.clone(), site.line, what));
    }
}

fn tar_rule(site: &Site, state: &mut State) {
    if site.inv.program == "tar" {
        let in_rollback = state.in_rollback;
        tar_findings(site, in_rollback, &mut state.out);
    }
}

fn backup_pruning(site: &Site, state: &mut State) {
    let words = &site.command.words;
    if (site.inv.program == "find" && words.iter().any(|w| w == "-delete" || w == "rm"))
        || (site.inv.program == "rm" && site.inv.args.iter().any(|a| a.contains("backup")))
    {
        state.any_backup_pruning = true;
    }
}

/// A verification that calls a liveness probe or the NATS monitoring port.
fn shallow_verification(site: &Site, state: &mut State) {
    if !site.verification || site.inv.program != "curl" {
        return;
    }
    let Some(url) = site.inv.args.iter().find(|a| a.starts_with("http")) else {
        return;
    };
    let what = if url.ends_with("/health") {
        "`/health` is a liveness probe: it answers without using the database, NATS or provider credentials, so it passes with rotated-but-broken secrets"
    } else if url.ends_with("/jsz") || url.ends_with("/varz") {
        "the NATS monitoring port needs no credentials: it shows the server is up, not that any service authenticates with the new ones"
    } else {
        return;
    };
    state.out.add(
        FindingKind::ShallowVerification,
        &site.step.id,
        site.line,
        &site.text,
        what.to_string(),
    );
}

fn mentions_config_edit(text: &str) -> bool {
    let lower = text.to_lowercase();
    let file = lower.contains(".env") || lower.contains(".yml") || lower.contains("compose");
    let verb = [
        "update", "add", "remove", "edit", "set", "in ", "change", "replace",
    ]
    .iter()
    .any(|v| lower.starts_with(v) || lower.contains(&format!(" {v}")));
    file && verb && !lower.contains("backup")
}

fn docker_subcommand(args: &[String]) -> Option<&str> {
    let mut i = 0;
    while let Some(a) = args.get(i) {
        if DOCKER_GLOBAL_VALUE_OPTIONS.contains(&a.as_str()) {
            i += 2;
        } else if a.starts_with('-') {
            i += 1;
        } else {
            return Some(a.as_str());
        }
    }
    None
}

/// The first argument that is not an option, and the rest after it.
fn subcommand(args: &[String]) -> Option<(&str, &[String])> {
    let i = args.iter().position(|a| !a.starts_with('-'))?;
    Some((args[i].as_str(), &args[i + 1..]))
}

fn follows_forever(inv: &Invocation) -> bool {
    let follow = |args: &[String]| {
        args.iter()
            .any(|a| a == "-f" || a == "--follow" || a == "-F")
    };
    match inv.program {
        "docker" | "docker-compose" => {
            let logs = docker_subcommand(inv.args) == Some("logs")
                || (inv.args.first().map(String::as_str) == Some("compose")
                    && inv.args.iter().any(|a| a == "logs"));
            logs && follow(inv.args)
        }
        "tail" | "journalctl" | "kubectl" => follow(inv.args),
        "watch" => true,
        _ => false,
    }
}

fn unknown_subcommand(inv: &Invocation) -> Option<String> {
    let table = |name: &str| TOOLS.iter().find(|(t, _)| *t == name).map(|(_, s)| *s);
    let (tool, args) = match inv.program {
        "docker" => match docker_subcommand(inv.args) {
            Some("compose") => {
                let at = inv.args.iter().position(|a| a == "compose")?;
                ("docker-compose", compose_command(&inv.args[at + 1..]))
            }
            _ => ("docker", inv.args),
        },
        "docker-compose" => ("docker-compose", compose_command(inv.args)),
        "nats" => ("nats", inv.args),
        _ => return None,
    };
    let (sub, rest) = if tool == "docker" {
        let sub = docker_subcommand(args)?;
        (sub, &args[0..0])
    } else {
        subcommand(args)?
    };
    let known = table(tool)?;
    let where_ = inv
        .container
        .map(|c| format!(" (run in container {c})"))
        .unwrap_or_default();
    if !known.contains(&sub) {
        return Some(format!(
            "`{tool}` has no subcommand `{sub}`{where_}: the command fails with a usage error and \
             the step does nothing; {tool}'s subcommands are {}",
            known.join(", ")
        ));
    }
    let nested = format!("{tool} {sub}");
    let nested = if tool == "nats" && matches!(sub, "srv" | "sys" | "system") {
        "nats server".to_string()
    } else {
        nested
    };
    if let Some(known) = table(&nested) {
        let (inner, _) = subcommand(rest)?;
        if !known.contains(&inner) {
            return Some(format!(
                "`{nested}` has no subcommand `{inner}`{where_}: the command fails with a usage \
                 error, so nothing it should produce exists; `{nested}` has {}",
                known.join(", ")
            ));
        }
    }
    None
}

/// Compose's global options that take a value as the next word (v1 `docker-compose` and v2
/// `docker compose` alike); `--opt=value` takes none.
const COMPOSE_VALUE_OPTIONS: &[&str] = &[
    "-f",
    "--file",
    "-p",
    "--project-name",
    "--env-file",
    "--project-directory",
    "--profile",
    "--ansi",
    "--parallel",
    "--progress",
    "-c",
    "--context",
    "-H",
    "--host",
    "--log-level",
    "--tlscacert",
    "--tlscert",
    "--tlskey",
];

/// A Compose command line after its global options: the subcommand and what follows it.
fn compose_command(args: &[String]) -> &[String] {
    let mut i = 0;
    while let Some(a) = args.get(i) {
        if COMPOSE_VALUE_OPTIONS.contains(&a.as_str()) {
            i += 2;
        } else if a.starts_with('-') {
            i += 1;
        } else {
            break;
        }
    }
    &args[i.min(args.len())..]
}

fn is_restart(inv: &Invocation) -> bool {
    match inv.program {
        "docker" => match docker_subcommand(inv.args) {
            Some("restart") => true,
            Some("compose") => subcommand(&inv.args[1..]).is_some_and(|(s, _)| s == "restart"),
            Some("container") => inv.args.iter().any(|a| a == "restart"),
            _ => false,
        },
        "docker-compose" => inv.args.iter().any(|a| a == "restart"),
        _ => false,
    }
}

fn is_recreate(inv: &Invocation) -> bool {
    let up = |args: &[String]| args.iter().any(|a| a == "up");
    match inv.program {
        "docker" => docker_subcommand(inv.args) == Some("compose") && up(inv.args),
        "docker-compose" => up(inv.args),
        _ => false,
    }
}

/// What a command changes in the node's configuration files, if anything.
fn edits_config(inv: &Invocation) -> Option<String> {
    let env = |a: &String| a.contains(".env");
    match inv.program {
        "sed" | "perl"
            if inv.args.iter().any(|a| a.starts_with("-i")) && inv.args.iter().any(env) =>
        {
            Some("the `.env` files".into())
        }
        "find" if inv.args.iter().any(|a| a == "sed") && inv.args.iter().any(env) => {
            Some("every `.env` file".into())
        }
        "tar" if tar_mode(inv.args) == Some('x') => {
            Some("the `.env` files (restored from the backup)".into())
        }
        "cp" | "mv" | "install" if inv.args.last().is_some_and(env) => Some("a `.env` file".into()),
        _ => None,
    }
}

/// `(NAME, value)` for every `NAME=value` a sed in `block` writes (its replacement part): what the
/// command means to put in the file, to compare with what it really wrote.
pub fn sed_assignments(block: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for command in shell::read(block, 1).commands() {
        let Some(expression) = sed_expression(&command.words) else {
            continue;
        };
        let delimiter = expression
            .chars()
            .nth(1)
            .expect("checked by sed_expression");
        let replacement = expression[2..].split(delimiter).nth(1).unwrap_or("");
        if let Some((name, value)) = replacement.split_once('=') {
            if is_secret_name(name) {
                out.push((name.to_string(), value.to_string()));
            }
        }
    }
    out
}

/// The `s/pattern/replacement/` argument of a sed, direct or through `find -exec`.
fn sed_expression(words: &[String]) -> Option<&str> {
    let at = words.iter().position(|w| w == "sed")?;
    words[at + 1..]
        .iter()
        .map(String::as_str)
        .find(|w| w.len() > 3 && w.starts_with('s') && !w.chars().nth(1).unwrap().is_alphanumeric())
}

fn unanchored_sed(step: &str, line: usize, text: &str, expression: &str, out: &mut Collector) {
    let delimiter = expression
        .chars()
        .nth(1)
        .expect("checked by sed_expression");
    let mut parts = expression[2..].split(delimiter);
    let pattern = parts.next().unwrap_or("");
    let replacement = parts.next().unwrap_or("");
    let names_a_secret = is_secret_name(pattern.split('=').next().unwrap_or(""));
    if names_a_secret && !pattern.starts_with('^') {
        let name = pattern.split('=').next().unwrap_or(pattern);
        out.add(
            FindingKind::UnanchoredSed,
            step,
            line,
            text,
            format!(
                "`{pattern}` is not anchored (`^{name}=`): it also rewrites every variable whose \
                 name ends in {name} (OLD_{name}, ANALYTICS_{name}, …) and commented-out lines; \
                 and a new value containing `&`, `{delimiter}` or `\\` is mangled by sed itself"
            ),
        );
    } else if names_a_secret && replacement.contains('&') {
        out.add(
            FindingKind::UnanchoredSed,
            step,
            line,
            text,
            "the replacement contains `&`, which sed replaces with the whole match".into(),
        );
    }
}

fn is_secret_name(name: &str) -> bool {
    let upper = name.to_uppercase();
    !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && ["PASSWORD", "SECRET", "TOKEN", "_KEY", "CREDS"]
            .iter()
            .any(|s| upper.contains(s))
}

/// `(name, literal value)` for every secret a command writes out literally: `NAME=value` with a
/// secret-like name, and SQL `PASSWORD '...'`.
fn secrets_on_command_line(words: &[String]) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for word in words.iter().skip(1) {
        let upper = word.to_uppercase();
        if let Some(at) = upper.find("PASSWORD '") {
            let rest = &word[at + "PASSWORD '".len()..];
            let value = rest.split('\'').next().unwrap_or("");
            // `PASSWORD '%s'` filled by the shell's own `printf`, or `'$VAR'`: no value is
            // typed, and a builtin puts nothing in any process's argv.
            if value.starts_with(['%', '$']) {
                continue;
            }
            found.push((
                "the database password (SQL `PASSWORD '…'`)".to_string(),
                value.to_string(),
            ));
            continue;
        }
        // NAME=value anywhere in the word (a sed replacement holds one too).
        for (i, _) in word.match_indices('=') {
            let name: String = word[..i]
                .chars()
                .rev()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            let value: String = word[i + 1..]
                .chars()
                .take_while(|c| !matches!(c, '/' | ' ' | '"' | '\''))
                .collect();
            let literal = !value.is_empty()
                && !value.starts_with(['$', '.', '<', '*'])
                && !value.contains(".*");
            if is_secret_name(&name) && literal {
                found.push((name, value));
            }
        }
    }
    found
}

/// Secret values the runbook writes literally in its commands (`PASSWORD '…'`, `NAME=value`):
/// running those commands makes them the node's secrets, so the harness redacts them too.
pub fn literal_secrets(runbook: &Runbook) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for step in runbook.steps() {
        for block in step.code.iter().filter(|b| b.is_shell()) {
            for command in shell::read(&block.text, block.first_line).commands() {
                for (name, value) in secrets_on_command_line(&command.words) {
                    let name = if name.starts_with("the database password") {
                        "DB_PASSWORD".to_string()
                    } else {
                        name
                    };
                    if !out.iter().any(|(_, v)| v == &value) {
                        out.push((format!("RUNBOOK_{name}"), value));
                    }
                }
            }
        }
    }
    out
}

fn looks_like_example(value: &str) -> bool {
    let lower = value.to_lowercase();
    ["password", "123", "changeme", "example", "secret", "xxx"]
        .iter()
        .any(|s| lower.contains(s))
}

/// A step done in a provider's web console (or BotFather), which has no command on the node: it must say what
/// it yields for the next steps (`Export it as NEW_X`) or retire an old credential ("Revoke the
/// old … key in the provider's console"). Such a step is not "no command".
fn console_action(step: &Step) -> bool {
    let title = step.title.to_lowercase();
    let names_export = step
        .prose
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .any(|w| {
            w.len() > 4
                && w.starts_with("NEW_")
                && w[4..]
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        });
    (title.contains("console") || title.contains("botfather"))
        && (names_export || title.contains("revoke the old"))
}

/// `<new_key>`-style placeholders and date templates in one line of a code block.
fn placeholders(line: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = line;
    while let Some(open) = rest.find('<') {
        let after = &rest[open + 1..];
        match after.find('>') {
            Some(close)
                if close > 0
                    && after[..close]
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') =>
            {
                found.push(format!("<{}>", &after[..close]));
                rest = &after[close + 1..];
            }
            _ => rest = after,
        }
    }
    for template in ["YYYYMMDD", "YYYY-MM-DD", "CHANGEME"] {
        if line.contains(template) {
            found.push(template.to_string());
        }
    }
    found
}

/// The line (0-based, in the block) of `getenv(A) or getenv(B)`.
fn selection_not_fallback(text: &str) -> Option<usize> {
    text.lines().position(|l| {
        let getenvs = l.matches("getenv(").count() + l.matches("environ.get(").count();
        getenvs >= 2 && l.contains(" or ")
    })
}

/// What a command changes on a server (not in a file), for the rollback rule.
fn server_side_change(words: &[String]) -> Option<String> {
    let inv = invocation(words)?;
    let sql = inv.args.iter().any(|a| {
        let upper = a.to_uppercase();
        (upper.contains("ALTER USER") || upper.contains("ALTER ROLE")) && upper.contains("PASSWORD")
    });
    if inv.program == "psql" && sql {
        return Some("the database password".into());
    }
    None
}

/// What a `psql` invocation names: a host (TCP rather than the local socket), a database, and
/// the user it connects as.
struct PsqlTarget {
    host: bool,
    database: bool,
    user: Option<String>,
}

impl PsqlTarget {
    fn of(args: &[String]) -> PsqlTarget {
        const VALUE_OPTIONS: [&str; 13] = [
            "-U",
            "-d",
            "-c",
            "-h",
            "-p",
            "-f",
            "-v",
            "--username",
            "--dbname",
            "--host",
            "--port",
            "--command",
            "--file",
        ];
        let mut t = PsqlTarget {
            host: false,
            database: false,
            user: None,
        };
        let mut i = 0;
        while let Some(a) = args.get(i) {
            match a.as_str() {
                "-h" | "--host" => t.host = true,
                "-d" | "--dbname" => t.database = true,
                "-U" | "--username" => t.user = args.get(i + 1).cloned(),
                _ => {}
            }
            if a.starts_with("--host=") || a.starts_with("--dbname=") || a.starts_with("postgres") {
                t.host |= a.contains("host");
                t.database = true;
            }
            if VALUE_OPTIONS.contains(&a.as_str()) {
                i += 2;
                continue;
            }
            // A positional argument is the database (or a connection string).
            if !a.starts_with('-') {
                t.database = true;
            }
            i += 1;
        }
        t
    }
}

fn psql_findings(site: &Site, out: &mut Collector) {
    let (step, inv, line, text, verification) = (
        site.step,
        &site.inv,
        site.line,
        site.text.as_str(),
        site.verification,
    );
    let PsqlTarget {
        host,
        database,
        user,
    } = PsqlTarget::of(inv.args);
    if let (false, Some(user)) = (database, user.as_ref()) {
        out.add(
            FindingKind::PsqlDefaultDatabase,
            &step.id,
            line,
            text,
            format!(
                "no database is named, so psql connects to the database `{user}` (the user's \
                 name); where the node's database is called something else (POSTGRES_DB), \
                 psql fails with \"database {user} does not exist\" before running anything"
            ),
        );
    }
    if let (Some(container), false, true) = (inv.container, host, verification) {
        let explanation = if container.contains("postgres") {
            format!(
                "psql in {container} without -h connects over the local socket, which the \
                 PostgreSQL image trusts: it succeeds with any password, or none, so it proves \
                 nothing about the rotated one"
            )
        } else {
            format!(
                "psql in {container} without -h looks for a PostgreSQL socket inside {container}, \
                 which runs no server (and may have no psql): it fails whatever the password, and \
                 a TCP check with the new password (-h, as the services connect) is never made"
            )
        };
        out.add(
            FindingKind::TrustSocketVerification,
            &step.id,
            line,
            text,
            explanation,
        );
    }
}

fn tar_mode(args: &[String]) -> Option<char> {
    let first = args.first()?;
    if first == "--create" || args.iter().any(|a| a == "--create") {
        return Some('c');
    }
    if args.iter().any(|a| a == "--extract") {
        return Some('x');
    }
    let flags = first.trim_start_matches('-');
    flags.chars().find(|c| matches!(c, 'c' | 'x' | 't'))
}

#[allow(clippy::too_many_arguments)]
fn tar_findings(site: &Site, in_rollback: bool, out: &mut Collector) {
    let (step, inv, pipeline, line, text, has_cd) = (
        site.step,
        &site.inv,
        site.pipeline,
        site.line,
        site.text.as_str(),
        site.has_cd,
    );
    let encrypted = pipeline.commands.iter().any(|c| {
        c.words
            .first()
            .is_some_and(|p| matches!(p.as_str(), "gpg" | "age" | "openssl" | "ccrypt" | "sops"))
    });
    match tar_mode(inv.args) {
        Some('c') if inv.args.iter().any(|a| a.contains(".env")) => {
            if !encrypted {
                out.add(
                    FindingKind::UnencryptedBackup,
                    &step.id,
                    line,
                    text,
                    "the archive holds every secret of the node in clear, written with the \
                     default umask (usually mode 0644: readable by every local user) next to the \
                     node's own files"
                        .into(),
                );
            }
            if inv
                .args
                .iter()
                .any(|a| a.contains("%Y%m%d") && !a.contains("%H"))
            {
                out.add(
                    FindingKind::BackupSameDayOverwrite,
                    &step.id,
                    line,
                    text,
                    "the name has the date but not the time: a second run on the same day (a retry \
                     after a rollback) overwrites the only copy of the old secrets with the \
                     already-rotated ones"
                        .into(),
                );
            }
        }
        Some('x') if in_rollback && !has_cd => {
            let archive_relative = inv
                .args
                .iter()
                .any(|a| a.contains(".tar") && !a.starts_with('/'));
            if archive_relative {
                out.add(
                    FindingKind::RollbackWrongDirectory,
                    &step.id,
                    line,
                    text,
                    "no `cd` precedes it and the archive is a relative path: run from any \
                     directory but the node's root, it finds no backup, or restores the `.env` \
                     files beneath the wrong directory, and the services keep the new secrets"
                        .into(),
                );
            }
        }
        _ => {}
    }
}

/// Whether one of `step`'s commands restarts or recreates a container (`docker restart`,
/// Compose's `restart` or `up`): the moment a service takes what its `.env` holds, or keeps
/// what it held.
pub fn restarts_or_recreates(step: &Step) -> bool {
    step.code
        .iter()
        .filter(|b| b.is_shell())
        .flat_map(|b| {
            shell::read(&b.text, b.first_line)
                .commands()
                .map(|c| c.words.clone())
                .collect::<Vec<_>>()
        })
        .any(|words| invocation(&words).is_some_and(|inv| is_restart(&inv) || is_recreate(&inv)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn finding_for(line: &str) -> Option<String> {
        let words: Vec<String> = line.split_whitespace().map(str::to_string).collect();
        unknown_subcommand(&shell::invocation(&words)?)
    }

    /// Compose's global options with a value, spelled both ways.
    fn global_option() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("-f docker-compose.node1.yml".to_string()),
            Just("--file docker-compose.node1.yml".to_string()),
            Just("--file=docker-compose.node1.yml".to_string()),
            Just("-p microdao".to_string()),
            Just("--project-name microdao".to_string()),
            Just("--project-name=microdao".to_string()),
            Just("--env-file .env".to_string()),
            Just("--project-directory /opt/microdao-daarion".to_string()),
            Just("--profile prod".to_string()),
            Just("--ansi never".to_string()),
            Just("--no-ansi".to_string()),
            Just("--verbose".to_string()),
        ]
    }

    fn valid_invocation() -> impl Strategy<Value = String> {
        (
            prop_oneof![Just("docker compose"), Just("docker-compose")],
            proptest::collection::vec(global_option(), 0..4),
            prop_oneof![
                Just("up -d --force-recreate"),
                Just("up -d --no-deps --force-recreate"),
                Just("up -d"),
                Just("restart"),
                Just("stop"),
                Just("start"),
                Just("rm -f"),
                Just("ps"),
                Just("logs --tail 50"),
            ],
            proptest::collection::vec(
                prop_oneof![
                    Just("dagi-router-node1"),
                    Just("dagi-gateway-node1"),
                    Just("dagi-postgres")
                ],
                0..3,
            ),
        )
            .prop_map(|(tool, globals, sub, services)| {
                format!("{tool} {} {sub} {}", globals.join(" "), services.join(" "))
            })
    }

    proptest! {
        #[test]
        fn no_valid_compose_invocation_is_an_unknown_subcommand(line in valid_invocation()) {
            prop_assert_eq!(finding_for(&line), None, "{}", line);
        }
    }

    #[test]
    fn invalid_compose_invocations_are_still_found() {
        for line in [
            "docker compose -f docker-compose.node1.yml recreate dagi-router-node1",
            "docker-compose --file x.yml reload",
            "docker compose -p microdao restrat",
            "docker-compose generate-credentials",
        ] {
            assert!(finding_for(line).is_some(), "{line}");
        }
    }

    #[test]
    fn the_issue_s_edited_runbook_lines_are_valid() {
        for line in [
            "docker compose -f docker-compose.node1.yml up -d --force-recreate dagi-router-node1",
            "docker-compose -f docker-compose.node1.yml up -d --force-recreate",
        ] {
            assert_eq!(finding_for(line), None, "{line}");
        }
    }
}
