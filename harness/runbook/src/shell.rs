//! A small POSIX-shell reader for runbook code blocks: quoting, escapes, line continuations,
//! `$(…)`, comments, pipes and command separators. Enough to know which program each command
//! runs with which arguments, on which line; not an interpreter.

use std::collections::BTreeSet;

use serde::Serialize;

/// One simple command: its words with quotes removed, and the line it starts on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Command {
    pub words: Vec<String>,
    pub line: usize,
}

/// Commands joined by `|`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pipeline {
    pub commands: Vec<Command>,
    pub line: usize,
}

/// A `# comment` and its line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Comment {
    pub text: String,
    pub line: usize,
}

/// A code block read as shell.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Script {
    pub pipelines: Vec<Pipeline>,
    pub comments: Vec<Comment>,
}

impl Script {
    pub fn commands(&self) -> impl Iterator<Item = &Command> {
        self.pipelines.iter().flat_map(|p| p.commands.iter())
    }
}

/// Reads `text`, whose first line is line `first_line` of the document.
pub fn read(text: &str, first_line: usize) -> Script {
    let mut script = Script::default();
    let mut line = first_line;
    let mut words: Vec<String> = Vec::new();
    let mut word: Option<String> = None;
    let mut command_line = line;
    let mut commands: Vec<Command> = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;

    fn end_word(word: &mut Option<String>, words: &mut Vec<String>) {
        if let Some(w) = word.take() {
            words.push(w);
        }
    }
    fn end_command(words: &mut Vec<String>, commands: &mut Vec<Command>, line: usize) {
        if !words.is_empty() {
            commands.push(Command {
                words: std::mem::take(words),
                line,
            });
        }
    }
    fn end_pipeline(commands: &mut Vec<Command>, script: &mut Script) {
        if !commands.is_empty() {
            let line = commands[0].line;
            script.pipelines.push(Pipeline {
                commands: std::mem::take(commands),
                line,
            });
        }
    }

    while i < chars.len() {
        let c = chars[i];
        if word.is_none() && words.is_empty() && !c.is_whitespace() {
            command_line = line;
        }
        match c {
            '\\' => {
                match chars.get(i + 1) {
                    Some('\n') => line += 1,
                    Some(&next) => word.get_or_insert_with(String::new).push(next),
                    None => {}
                }
                i += 2;
                continue;
            }
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                i += 1;
                while i < chars.len() && chars[i] != '\'' {
                    if chars[i] == '\n' {
                        line += 1;
                    }
                    w.push(chars[i]);
                    i += 1;
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    match chars[i] {
                        '\\' if matches!(chars.get(i + 1), Some('"' | '\\' | '$' | '`')) => {
                            w.push(chars[i + 1]);
                            i += 1;
                        }
                        '\\' if chars.get(i + 1) == Some(&'\n') => {
                            line += 1;
                            i += 1;
                        }
                        '\n' => {
                            line += 1;
                            w.push('\n');
                        }
                        other => w.push(other),
                    }
                    i += 1;
                }
            }
            '$' if chars.get(i + 1) == Some(&'(') => {
                let w = word.get_or_insert_with(String::new);
                let mut depth = 0;
                while i < chars.len() {
                    match chars[i] {
                        '(' => depth += 1,
                        ')' => depth -= 1,
                        '\n' => line += 1,
                        _ => {}
                    }
                    w.push(chars[i]);
                    if depth == 0 && chars[i] == ')' {
                        break;
                    }
                    i += 1;
                }
            }
            '#' if word.is_none() => {
                let start = i + 1;
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                script.comments.push(Comment {
                    text: text.trim().to_string(),
                    line,
                });
                continue;
            }
            '\n' => {
                end_word(&mut word, &mut words);
                end_command(&mut words, &mut commands, command_line);
                end_pipeline(&mut commands, &mut script);
                line += 1;
            }
            ' ' | '\t' | '\r' => end_word(&mut word, &mut words),
            '|' => {
                end_word(&mut word, &mut words);
                end_command(&mut words, &mut commands, command_line);
                if chars.get(i + 1) == Some(&'|') {
                    end_pipeline(&mut commands, &mut script);
                    i += 1;
                }
            }
            '&' if word.as_deref().is_some_and(|w| w.ends_with('>')) => {
                word.get_or_insert_with(String::new).push('&');
            }
            ';' | '&' => {
                end_word(&mut word, &mut words);
                end_command(&mut words, &mut commands, command_line);
                end_pipeline(&mut commands, &mut script);
                if chars.get(i + 1) == Some(&'&') {
                    i += 1;
                }
            }
            other => word.get_or_insert_with(String::new).push(other),
        }
        i += 1;
    }
    end_word(&mut word, &mut words);
    end_command(&mut words, &mut commands, command_line);
    end_pipeline(&mut commands, &mut script);
    script
}

/// A command with wrappers (`sudo`, `timeout N`, `env`, `docker exec [opts] C`) taken off: the
/// program that really runs, its arguments, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation<'a> {
    pub program: &'a str,
    pub args: &'a [String],
    /// The container it runs in, for `docker exec`.
    pub container: Option<&'a str>,
    /// Whether a `timeout` wrapper bounds it.
    pub bounded: bool,
}

/// Options of `docker exec` that take a value.
const DOCKER_EXEC_VALUE_OPTIONS: &[&str] = &[
    "-u",
    "--user",
    "-e",
    "--env",
    "-w",
    "--workdir",
    "--env-file",
    "--detach-keys",
];

/// Unwraps `words` into what really runs (the innermost program).
pub fn invocation(words: &[String]) -> Option<Invocation<'_>> {
    let mut rest = words;
    let mut container = None;
    let mut bounded = false;
    loop {
        // Leading `NAME=value` assignments are environment for the command, not the program.
        while rest.first().is_some_and(|w| is_assignment(w)) && rest.len() > 1 {
            rest = &rest[1..];
        }
        let program = rest.first()?;
        match program.as_str() {
            "sudo" | "env" | "nohup" | "exec" => rest = &rest[1..],
            "timeout" => {
                bounded = true;
                rest = &rest[1..];
                while rest.first().is_some_and(|w| w.starts_with('-')) {
                    rest = &rest[1..];
                }
                rest = rest.get(1..)?;
            }
            "docker" if rest.get(1).map(String::as_str) == Some("exec") => {
                let mut j = 2;
                while let Some(w) = rest.get(j) {
                    if DOCKER_EXEC_VALUE_OPTIONS.contains(&w.as_str()) {
                        j += 2;
                    } else if w.starts_with('-') {
                        j += 1;
                    } else {
                        break;
                    }
                }
                container = Some(rest.get(j)?.as_str());
                match rest.get(j + 1..) {
                    Some(inner) if !inner.is_empty() => rest = inner,
                    _ => return None,
                }
            }
            _ => {
                return Some(Invocation {
                    program: program.as_str(),
                    args: &rest[1..],
                    container,
                    bounded,
                })
            }
        }
    }
}

/// The programs `script` runs on this host, not inside a container: each command's innermost
/// program (`sudo`, `timeout`, `env` unwrapped; `docker exec` runs in a container, `docker`
/// itself on the host), and those of a `bash -c '…'` or `sh -c '…'` script, read the same way.
pub fn host_programs(script: &Script) -> BTreeSet<String> {
    let mut programs = BTreeSet::new();
    collect_host_programs(script, &mut programs, 0);
    programs
}

fn collect_host_programs(script: &Script, programs: &mut BTreeSet<String>, depth: usize) {
    for command in script.commands() {
        if command
            .words
            .first()
            .is_some_and(|w| w == "docker" || w.ends_with("/docker"))
        {
            programs.insert("docker".to_string());
        }
        // Reserved words open or close a compound command; the command follows them.
        let mut words = command.words.as_slice();
        while words.first().is_some_and(|w| {
            matches!(
                w.as_str(),
                "if" | "then" | "else" | "elif" | "while" | "until" | "do" | "!" | "{"
            )
        }) {
            words = &words[1..];
        }
        if words.first().is_some_and(|w| {
            matches!(
                w.as_str(),
                "for" | "case" | "in" | "fi" | "done" | "esac" | "}" | "select" | "function"
            )
        }) {
            continue;
        }
        let Some(inv) = invocation(words) else {
            continue;
        };
        if inv.container.is_some() {
            continue;
        }
        let program = inv.program.rsplit('/').next().unwrap_or(inv.program);
        programs.insert(program.to_string());
        if matches!(program, "bash" | "sh") && depth < 4 {
            if let Some(i) = inv.args.iter().position(|a| a == "-c") {
                if let Some(inner) = inv.args.get(i + 1) {
                    collect_host_programs(&read(inner, command.line), programs, depth + 1);
                }
            }
        }
    }
}

/// `NAME=value` where NAME is a shell identifier.
pub fn is_assignment(word: &str) -> bool {
    match word.split_once('=') {
        Some((name, _)) => {
            !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit())
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(c: &Command) -> Vec<&str> {
        c.words.iter().map(String::as_str).collect()
    }

    #[test]
    fn continuation_lines_join_into_one_command_on_its_first_line() {
        let s = read("tar -czf b.tgz \\\n  a/.env \\\n  b.yml\nls\n", 10);
        assert_eq!(s.pipelines.len(), 2);
        assert_eq!(
            words(&s.pipelines[0].commands[0]),
            ["tar", "-czf", "b.tgz", "a/.env", "b.yml"]
        );
        assert_eq!(s.pipelines[0].line, 10);
        assert_eq!(s.pipelines[1].line, 13);
    }

    #[test]
    fn a_quoted_string_across_lines_is_one_word_and_later_lines_count() {
        let s = read(
            "psql -c \"\nALTER USER x WITH PASSWORD 'p!';\n\"\nnext\n",
            1,
        );
        assert_eq!(
            s.pipelines[0].commands[0].words[2],
            "\nALTER USER x WITH PASSWORD 'p!';\n"
        );
        assert_eq!(s.pipelines[1].line, 4);
    }

    #[test]
    fn pipes_comments_and_redirections() {
        let s = read("# note\ndocker logs -f c 2>&1 | grep -i error # tail\n", 1);
        assert_eq!(s.comments.len(), 2);
        assert_eq!(s.comments[0].text, "note");
        let p = &s.pipelines[0];
        assert_eq!(words(&p.commands[0]), ["docker", "logs", "-f", "c", "2>&1"]);
        assert_eq!(words(&p.commands[1]), ["grep", "-i", "error"]);
        assert_eq!(p.line, 2);
    }

    #[test]
    fn docker_exec_unwraps_to_the_program_in_the_container() {
        let s = read(
            "sudo docker exec -it -u postgres pg psql -U daarion -c 'SELECT 1'",
            1,
        );
        let inv = invocation(&s.pipelines[0].commands[0].words).unwrap();
        assert_eq!(inv.program, "psql");
        assert_eq!(inv.container, Some("pg"));
        assert_eq!(inv.args[0], "-U");
    }

    #[test]
    fn timeout_marks_the_command_bounded() {
        let s = read("timeout 300 docker logs -f r", 1);
        let inv = invocation(&s.pipelines[0].commands[0].words).unwrap();
        assert!(inv.bounded);
        assert_eq!(inv.program, "docker");
    }

    #[test]
    fn command_substitution_stays_inside_its_word() {
        let s = read("tar -czf secrets_$(date +%Y%m%d).tar.gz x", 1);
        assert_eq!(
            s.pipelines[0].commands[0].words[2],
            "secrets_$(date +%Y%m%d).tar.gz"
        );
    }

    #[test]
    fn host_programs_are_what_runs_on_the_host_not_inside_a_container() {
        let s = read(
            "sudo timeout 5 curl -fsS http://x\n\
             docker exec -i dagi-postgres psql -U u\n\
             X=1 openssl rand -hex 16 | /usr/bin/awk '{print}'\n\
             timeout 60 bash -c 'until PGPASSWORD=p psql -c \"SELECT 1\"; do sleep 1; done'\n",
            1,
        );
        let programs: Vec<String> = host_programs(&s).into_iter().collect();
        assert_eq!(
            programs,
            ["awk", "bash", "curl", "docker", "openssl", "psql", "sleep"]
        );
    }
}
