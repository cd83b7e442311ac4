//! Markdown → `Runbook`, with 1-based line numbers for everything and file:line errors for a
//! document that cannot be mapped.

use super::{fingerprint, CodeBlock, InventoryRow, Note, Phase, Runbook, RunbookError, Step};
use pulldown_cmark::{CodeBlockKind, Event, Options, Parser, Tag, TagEnd};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Section {
    Preface,
    Inventory,
    Procedure,
    Rollback,
    Notes,
    Other,
}

struct StepDraft {
    number: u32,
    line: usize,
    title: Option<String>,
    title_buf: String,
    prose: String,
    code: Vec<CodeBlock>,
}

impl StepDraft {
    fn finish(self, id_prefix: &str) -> Step {
        let title = self
            .title
            .unwrap_or_else(|| self.prose.lines().next().unwrap_or("").trim().to_string());
        let title = title.trim().trim_end_matches(':').trim().to_string();
        let prose = self.prose.trim().to_string();
        Step {
            id: format!("{id_prefix}.step{}", self.number),
            number: self.number,
            fingerprint: fingerprint(&title, &prose, &self.code),
            title,
            prose,
            code: self.code,
            line: self.line,
        }
    }
}

struct Lines(Vec<usize>);

impl Lines {
    fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Lines(starts)
    }
    fn of(&self, offset: usize) -> usize {
        match self.0.binary_search(&offset) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }
}

/// Parses runbook markdown; `file` names the document in errors.
pub fn parse(file: &str, text: &str) -> Result<Runbook, RunbookError> {
    let lines = Lines::new(text);
    let error = |line: usize, message: String| RunbookError {
        file: file.to_string(),
        line,
        message,
    };

    let mut section = Section::Preface;
    let mut section_line = 1;
    let mut inventory_heading: Option<usize> = None;
    let mut inventory: Option<Vec<InventoryRow>> = None;
    let mut phases: Vec<Phase> = Vec::new();
    let mut rollback: Vec<Step> = Vec::new();
    let mut rollback_line = None;
    let mut notes: Vec<Note> = Vec::new();
    let mut overview = String::new();

    // Numbers taken so far, for the "appears twice" errors in constant time.
    let mut phase_numbers: std::collections::HashSet<u32> = Default::default();
    let mut step_numbers: std::collections::HashSet<(Option<u32>, u32)> = Default::default();
    let mut heading: Option<(usize, String)> = None;
    let mut list_depth = 0usize;
    let mut step: Option<StepDraft> = None;
    let mut strong_depth = 0usize;
    let mut code: Option<(String, usize, String)> = None;
    let mut note: Option<(usize, String)> = None;
    // Table state: header line, column names, current row cells, rows.
    let mut table_header: Option<(usize, Vec<String>)> = None;
    let mut in_head = false;
    let mut row: Option<(usize, Vec<String>)> = None;
    let mut cell: Option<String> = None;
    let mut table_rows: Vec<(usize, Vec<String>)> = Vec::new();

    let close_step = |step: &mut Option<StepDraft>,
                      section: Section,
                      phases: &mut Vec<Phase>,
                      rollback: &mut Vec<Step>| {
        if let Some(draft) = step.take() {
            match section {
                Section::Rollback => rollback.push(draft.finish("rollback")),
                _ => {
                    let phase = phases.last_mut().expect("steps only open inside a phase");
                    let prefix = format!("phase{}", phase.number);
                    phase.steps.push(draft.finish(&prefix));
                }
            }
        }
    };

    for (event, range) in Parser::new_ext(text, Options::ENABLE_TABLES).into_offset_iter() {
        let line = lines.of(range.start);
        match event {
            Event::Start(Tag::Heading { .. }) => heading = Some((line, String::new())),
            Event::End(TagEnd::Heading(level)) => {
                let (hline, title) = heading.take().unwrap_or((line, String::new()));
                let title = title.trim().to_string();
                if level == pulldown_cmark::HeadingLevel::H1 {
                    continue;
                }
                close_step(&mut step, section, &mut phases, &mut rollback);
                let lower = title.to_lowercase();
                if lower.starts_with("phase") {
                    let phase = parse_phase_heading(&title).ok_or_else(|| {
                        error(
                            hline,
                            "a phase heading without a number: expected `Phase N: Title (M min)`"
                                .to_string(),
                        )
                    })?;
                    if !phase_numbers.insert(phase.0) {
                        return Err(error(hline, format!("phase {} appears twice", phase.0)));
                    }
                    phases.push(Phase {
                        number: phase.0,
                        title: phase.1,
                        budget_minutes: phase.2,
                        preamble: String::new(),
                        line: hline,
                        steps: Vec::new(),
                    });
                    section = Section::Procedure;
                } else if level == pulldown_cmark::HeadingLevel::H2 {
                    section_line = hline;
                    section = if lower.contains("inventory") {
                        inventory_heading = Some(hline);
                        Section::Inventory
                    } else if lower.contains("rollback") {
                        rollback_line = Some(hline);
                        Section::Rollback
                    } else if lower.contains("procedure") {
                        Section::Procedure
                    } else if lower.trim() == "notes" {
                        Section::Notes
                    } else {
                        Section::Other
                    };
                }
            }
            Event::Start(Tag::List(start)) => {
                list_depth += 1;
                let steps_here = matches!(section, Section::Procedure | Section::Rollback);
                if list_depth == 1 && steps_here {
                    if start.is_none() {
                        return Err(error(
                            line,
                            "step without a number: steps are a numbered list (`1. **Title:**`)"
                                .to_string(),
                        ));
                    }
                    if section == Section::Procedure && phases.is_empty() {
                        return Err(error(
                            line,
                            format!(
                                "numbered steps outside any phase (the section starting at line \
                                 {section_line} has no `### Phase N: Title` heading above them)"
                            ),
                        ));
                    }
                }
            }
            Event::End(TagEnd::List(_)) => list_depth = list_depth.saturating_sub(1),
            Event::Start(Tag::Item) if list_depth == 1 => match section {
                Section::Procedure | Section::Rollback => {
                    close_step(&mut step, section, &mut phases, &mut rollback);
                    let number = leading_number(&text[range.clone()])
                        .ok_or_else(|| error(line, "step without a number".to_string()))?;
                    let owner = match section {
                        Section::Rollback => None,
                        _ => phases.last().map(|p| p.number),
                    };
                    if !step_numbers.insert((owner, number)) {
                        return Err(error(
                            line,
                            format!("step {number} appears twice in this section"),
                        ));
                    }
                    step = Some(StepDraft {
                        number,
                        line,
                        title: None,
                        title_buf: String::new(),
                        prose: String::new(),
                        code: Vec::new(),
                    });
                }
                Section::Notes => note = Some((line, String::new())),
                _ => {}
            },
            Event::End(TagEnd::Item) if list_depth > 1 => {
                if let Some(s) = step.as_mut() {
                    s.prose.push('\n');
                }
            }
            Event::End(TagEnd::Item) if list_depth == 1 => {
                if let Some((nline, text)) = note.take() {
                    notes.push(Note {
                        text: text.trim().to_string(),
                        line: nline,
                    });
                }
            }
            Event::Start(Tag::Strong) => strong_depth += 1,
            Event::End(TagEnd::Strong) => {
                strong_depth = strong_depth.saturating_sub(1);
                if let Some(s) = step.as_mut() {
                    if strong_depth == 0 && s.title.is_none() && s.prose.trim().is_empty() {
                        s.title = Some(std::mem::take(&mut s.title_buf));
                    }
                }
            }
            Event::Start(Tag::CodeBlock(kind)) => {
                if matches!(kind, CodeBlockKind::Fenced(_)) && !fence_closed(&text[range.clone()]) {
                    return Err(error(
                        line,
                        format!(
                            "the code fence opened here is never closed: everything down to line \
                             {} would be read as its code",
                            lines.of(range.end.saturating_sub(1).max(range.start))
                        ),
                    ));
                }
                let language = match kind {
                    CodeBlockKind::Fenced(info) => {
                        info.split_whitespace().next().unwrap_or("").to_string()
                    }
                    CodeBlockKind::Indented => String::new(),
                };
                let first = match language.is_empty() && text[range.clone()].starts_with("    ") {
                    true => line,
                    false => line + 1,
                };
                code = Some((language, first, String::new()));
            }
            Event::End(TagEnd::CodeBlock) => {
                if let Some((language, first_line, body)) = code.take() {
                    let block = CodeBlock {
                        language,
                        text: body,
                        first_line,
                    };
                    if let Some(s) = step.as_mut() {
                        s.code.push(block);
                    } else if let (Section::Procedure, Some(p)) = (section, phases.last_mut()) {
                        p.preamble.push_str(&block.text);
                    }
                }
            }
            Event::Start(Tag::TableHead) => {
                in_head = true;
                row = Some((line, Vec::new()));
            }
            Event::End(TagEnd::TableHead) => {
                in_head = false;
                if let Some((hline, cells)) = row.take() {
                    table_header = Some((hline, cells));
                }
            }
            Event::Start(Tag::TableRow) => row = Some((line, Vec::new())),
            Event::End(TagEnd::TableRow) => {
                if let Some(r) = row.take() {
                    if !in_head {
                        table_rows.push(r);
                    }
                }
            }
            Event::Start(Tag::TableCell) => cell = Some(String::new()),
            Event::End(TagEnd::TableCell) => {
                if let (Some(c), Some((_, cells))) = (cell.take(), row.as_mut()) {
                    cells.push(c.trim().to_string());
                }
            }
            Event::End(TagEnd::Table) => {
                let header = table_header.take();
                let rows = std::mem::take(&mut table_rows);
                if section == Section::Inventory && inventory.is_none() {
                    let (hline, names) = header.unwrap_or((line, Vec::new()));
                    inventory =
                        Some(inventory_rows(hline, &names, rows).map_err(|m| error(hline, m))?);
                }
            }
            Event::Text(t) | Event::Code(t) => {
                if let Some((_, _, body)) = code.as_mut() {
                    body.push_str(&t);
                } else if let Some((_, h)) = heading.as_mut() {
                    h.push_str(&t);
                } else if let Some(c) = cell.as_mut() {
                    c.push_str(&t);
                } else if let Some((_, n)) = note.as_mut() {
                    n.push_str(&t);
                } else if let Some(s) = step.as_mut() {
                    if strong_depth > 0 && s.title.is_none() && s.prose.trim().is_empty() {
                        s.title_buf.push_str(&t);
                    } else {
                        s.prose.push_str(&t);
                    }
                } else if let (Section::Procedure, Some(p)) = (section, phases.last_mut()) {
                    p.preamble.push_str(&t);
                } else if matches!(section, Section::Preface | Section::Other) {
                    overview.push_str(&t);
                }
            }
            Event::SoftBreak | Event::HardBreak | Event::End(TagEnd::Paragraph) => {
                if let Some(s) = step.as_mut() {
                    if s.title.is_some() || !s.prose.is_empty() {
                        s.prose.push('\n');
                    }
                } else if let Some((_, n)) = note.as_mut() {
                    n.push(' ');
                } else if let (Section::Procedure, Some(p)) = (section, phases.last_mut()) {
                    p.preamble.push('\n');
                } else if matches!(section, Section::Preface | Section::Other) {
                    overview.push('\n');
                }
            }
            _ => {}
        }
    }
    close_step(&mut step, section, &mut phases, &mut rollback);

    if phases.is_empty() {
        return Err(error(
            1,
            "no phases: expected headings like `### Phase 1: Preparation (5 min)`".to_string(),
        ));
    }
    if let Some(empty) = phases.iter().find(|p| p.steps.is_empty()) {
        return Err(error(
            empty.line,
            format!("phase {} has no numbered steps", empty.number),
        ));
    }
    let inventory = inventory.ok_or_else(|| {
        error(
            inventory_heading.unwrap_or(1),
            "no secrets inventory table (a `## Secrets Inventory` section with a table of \
             Secret | Location | Service | Rotation Frequency)"
                .to_string(),
        )
    })?;
    for phase in &mut phases {
        phase.preamble = phase.preamble.trim().to_string();
    }
    Ok(Runbook {
        file: file.to_string(),
        overview: overview.trim().to_string(),
        inventory,
        phases,
        rollback,
        rollback_line,
        notes,
    })
}

/// Whether a fenced block's source ends with a fence closing its opening one: as many or more
/// of the same character (CommonMark), and nothing else on the line.
fn fence_closed(source: &str) -> bool {
    let mut lines = source.lines();
    let opening = lines.next().unwrap_or("").trim_start();
    let Some(mark) = opening.chars().next().filter(|c| *c == '`' || *c == '~') else {
        return true;
    };
    let width = opening.chars().take_while(|c| *c == mark).count();
    let Some(last) = lines.last() else {
        return false;
    };
    let last = last.trim();
    last.chars().take_while(|c| *c == mark).count() >= width && last.chars().all(|c| c == mark)
}

/// `Phase 3: Database Password Rotation (15 min)` → (3, "Database Password Rotation", Some(15)).
fn parse_phase_heading(title: &str) -> Option<(u32, String, Option<u32>)> {
    let rest = title.get(5..)?.trim_start();
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    let number = digits.parse().ok()?;
    let rest = rest[digits.len()..]
        .trim_start_matches([':', ' ', '-', '—', '.'])
        .trim();
    let (name, budget) = match rest.rfind('(') {
        Some(open) if rest.ends_with(')') => {
            let inside = &rest[open + 1..rest.len() - 1];
            let minutes = inside
                .trim()
                .strip_suffix("min")
                .and_then(|n| n.trim().parse().ok());
            match minutes {
                Some(m) => (rest[..open].trim(), Some(m)),
                None => (rest, None),
            }
        }
        _ => (rest, None),
    };
    Some((number, name.to_string(), budget))
}

/// The number a list item's source starts with (`3.` or `3)`).
fn leading_number(source: &str) -> Option<u32> {
    let trimmed = source.trim_start();
    let digits: String = trimmed.chars().take_while(|c| c.is_ascii_digit()).collect();
    if digits.is_empty() {
        return None;
    }
    match trimmed[digits.len()..].chars().next() {
        Some('.') | Some(')') => digits.parse().ok(),
        _ => None,
    }
}

const INVENTORY_COLUMNS: [&str; 4] = ["secret", "location", "service", "rotation frequency"];

fn inventory_rows(
    header_line: usize,
    header: &[String],
    rows: Vec<(usize, Vec<String>)>,
) -> Result<Vec<InventoryRow>, String> {
    let _ = header_line;
    if rows.len() > super::MAX_INVENTORY_ROWS {
        return Err(format!(
            "the secrets inventory has {} rows, more than the {} this tool reads",
            rows.len(),
            super::MAX_INVENTORY_ROWS
        ));
    }
    let lower: Vec<String> = header.iter().map(|h| h.trim().to_lowercase()).collect();
    let index = |name: &str| lower.iter().position(|h| h == name);
    let missing: Vec<&str> = INVENTORY_COLUMNS
        .iter()
        .copied()
        .filter(|c| index(c).is_none())
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "secrets inventory table lacks column(s) {} (its header has {} columns; expected \
             Secret | Location | Service | Rotation Frequency)",
            missing.join(", "),
            header.len()
        ));
    }
    let [s, l, v, f] = INVENTORY_COLUMNS.map(|c| index(c).expect("checked above"));
    Ok(rows
        .into_iter()
        .map(|(line, cells)| {
            let get = |i: usize| cells.get(i).cloned().unwrap_or_default();
            InventoryRow {
                secret: get(s),
                location: get(l),
                service: get(v),
                rotation_frequency: get(f),
                line,
            }
        })
        .collect())
}
