//! The replica as a Compose project: the Compose this host has (v2 plugin or v1), the labels
//! Compose recognises a project's containers by, and each service's config hash as that Compose
//! computes it, so that a runbook's `docker compose` / `docker-compose` acts on the stack's own
//! containers exactly as it would on the node.
//!
//! Invariant: a container the harness creates carries the labels the host's Compose would have
//! given it, the config hash included; `up -d` with nothing changed therefore recreates nothing,
//! and an edited `.env` makes exactly that service diverge. The hash is never computed here: the
//! host's Compose prints it (`config --hash`), because v1 and v2 hash differently.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::error::{HarnessError, Result};
use crate::redact::Redactor;
use crate::services::Service;

/// `com.docker.compose.project`: the project a container belongs to.
pub const LABEL_PROJECT: &str = "com.docker.compose.project";
/// `com.docker.compose.service`: the service (the key under `services:`).
pub const LABEL_SERVICE: &str = "com.docker.compose.service";
/// `com.docker.compose.oneoff`: `False` for a service's containers (`True` for `run`).
pub const LABEL_ONE_OFF: &str = "com.docker.compose.oneoff";
/// `com.docker.compose.container-number`: the replica number, from 1.
pub const LABEL_CONTAINER_NUMBER: &str = "com.docker.compose.container-number";
/// `com.docker.compose.config-hash`: what `up` compares to decide a recreate.
pub const LABEL_CONFIG_HASH: &str = "com.docker.compose.config-hash";
/// `com.docker.compose.version`: the Compose that created the container.
pub const LABEL_VERSION: &str = "com.docker.compose.version";
/// `com.docker.compose.volume`: a named volume's key in the compose file.
pub const LABEL_VOLUME: &str = "com.docker.compose.volume";
/// `com.docker.compose.image`: the image's id; v2 recreates when it differs from the image's now.
pub const LABEL_IMAGE: &str = "com.docker.compose.image";
/// `com.docker.compose.project.working_dir`.
pub const LABEL_WORKING_DIR: &str = "com.docker.compose.project.working_dir";
/// `com.docker.compose.project.config_files`.
pub const LABEL_CONFIG_FILES: &str = "com.docker.compose.project.config_files";

/// The node's project name in production: the basename of `/opt/microdao-daarion`, as Compose
/// derives it when no `-p` is given. A runbook's `-p microdao-daarion` means the stack's project.
pub const PRODUCTION_PROJECT: &str = "microdao-daarion";

/// Which Compose program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// `docker compose` (v2, the CLI plugin).
    Plugin,
    /// `docker-compose` (v1, Python).
    Standalone,
}

/// The Compose found on this host, with the version it reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostCompose {
    pub tool: Tool,
    /// As the tool prints it (`1.29.2`, `2.27.0`).
    pub version: String,
    /// The program run: `docker` (with `compose` first) or the path of `docker-compose`.
    pub program: PathBuf,
}

impl HostCompose {
    /// The host's Compose, v2 first, detected once per process; `None` when there is none.
    pub fn detect() -> Option<&'static HostCompose> {
        static FOUND: OnceLock<Option<HostCompose>> = OnceLock::new();
        FOUND.get_or_init(Self::probe).as_ref()
    }

    fn probe() -> Option<HostCompose> {
        let version_of = |program: &Path, args: &[&str]| -> Option<String> {
            let out = std::process::Command::new(program)
                .args(args)
                .stdin(std::process::Stdio::null())
                .output()
                .ok()?;
            out.status.success().then(|| {
                String::from_utf8_lossy(&out.stdout)
                    .trim()
                    .trim_start_matches('v')
                    .to_string()
            })
        };
        if let Some(docker) = which("docker") {
            if let Some(version) = version_of(&docker, &["compose", "version", "--short"]) {
                return Some(HostCompose {
                    tool: Tool::Plugin,
                    version,
                    program: docker,
                });
            }
        }
        let standalone = which("docker-compose")?;
        let version = version_of(&standalone, &["version", "--short"])?;
        Some(HostCompose {
            tool: Tool::Standalone,
            version,
            program: standalone,
        })
    }

    /// Gets ready to compute config hashes quickly: starts, in the background, the resident
    /// process that keeps a Python Compose imported (`compose_resident`); nothing for v2.
    pub fn prewarm(&self) {
        if self.tool == Tool::Standalone {
            crate::compose_resident::prewarm(&self.program, &self.version);
        }
    }

    /// One line for the journal: `docker-compose 1.29.2 (v1)`, `docker compose 2.27.0 (v2)`.
    pub fn describe(&self) -> String {
        match self.tool {
            Tool::Plugin => format!("docker compose {} (v2)", self.version),
            Tool::Standalone => format!("docker-compose {} (v1)", self.version),
        }
    }

    /// The command line that runs this Compose, ready for its arguments.
    pub fn command(&self) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(&self.program);
        if self.tool == Tool::Plugin {
            c.arg("compose");
        }
        c.stdin(std::process::Stdio::null()).kill_on_drop(true);
        c
    }

    /// The shell words that run this Compose (for the shims a runbook's commands go through).
    fn shell_words(&self) -> String {
        let program = shell_quote(&self.program.display().to_string());
        match self.tool {
            Tool::Plugin => format!("{program} compose"),
            Tool::Standalone => program,
        }
    }

    /// Each named service's config hash (all services when `services` is empty), as this
    /// Compose computes it for the project in `dir` (named after the directory, as the runbook's
    /// commands run there name it) when `up` compares it with a container's.
    ///
    /// v1 prints that hash with `config --hash`. v2's `config --hash` hashes the service with its
    /// `env_file` list, while `up` hashes it with the files' variables resolved and the list
    /// dropped; so for v2 the resolved model (`config --format json`, parsed by Compose itself)
    /// is fed back without `env_file`, and that is hashed.
    pub async fn config_hashes(
        &self,
        dir: &Path,
        services: &[Service],
        redactor: &Redactor,
    ) -> Result<BTreeMap<Service, String>> {
        let which = if services.is_empty() {
            "*".to_string()
        } else {
            services
                .iter()
                .map(|s| s.production_name())
                .collect::<Vec<_>>()
                .join(",")
        };
        let file = dir.join(COMPOSE_FILE).display().to_string();
        let hashes = match self.tool {
            Tool::Standalone => {
                let args = ["-f", &file, "config", &format!("--hash={which}")];
                self.run_quietly(dir, &args, None, redactor).await?
            }
            Tool::Plugin => {
                let model = self
                    .run_quietly(
                        dir,
                        &["-f", &file, "config", "--format", "json"],
                        None,
                        redactor,
                    )
                    .await?;
                let mut model: serde_json::Value =
                    serde_json::from_str(&model).map_err(|e| HarnessError::Compose {
                        doing: "reading the resolved model".into(),
                        detail: format!("not JSON: {e}"),
                    })?;
                if let Some(all) = model.get_mut("services").and_then(|s| s.as_object_mut()) {
                    for service in all.values_mut() {
                        if let Some(service) = service.as_object_mut() {
                            service.remove("env_file");
                        }
                    }
                }
                let dir_text = dir.display().to_string();
                let args = [
                    "-f",
                    "-",
                    "--project-directory",
                    &dir_text,
                    "config",
                    &format!("--hash={which}"),
                ];
                self.run_quietly(dir, &args, Some(model.to_string().into_bytes()), redactor)
                    .await?
            }
        };
        Ok(parse_hashes(&hashes))
    }

    /// Runs this Compose in `dir` with `args` (and `stdin`), returning its stdout; its stderr,
    /// redacted, is the error when it fails. Output is never shown: it may hold env values.
    async fn run_quietly(
        &self,
        dir: &Path,
        args: &[&str],
        stdin: Option<Vec<u8>>,
        redactor: &Redactor,
    ) -> Result<String> {
        use tokio::io::AsyncWriteExt;
        let failed = |detail: String| HarnessError::Compose {
            doing: "computing config hashes".into(),
            detail,
        };
        if self.tool == Tool::Standalone && stdin.is_none() {
            let (program, version) = (self.program.clone(), self.version.clone());
            let (dir, args) = (
                dir.to_path_buf(),
                args.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            );
            let answer = tokio::task::spawn_blocking(move || {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                crate::compose_resident::run(&program, &version, &dir, &args)
            })
            .await
            .ok()
            .flatten();
            if let Some(answer) = answer {
                if answer.code != 0 {
                    return Err(failed(redactor.redact(answer.stderr.trim())));
                }
                return Ok(answer.stdout);
            }
        }
        let mut command = self.command();
        command
            .current_dir(dir)
            .args(args)
            .stdin(if stdin.is_some() {
                std::process::Stdio::piped()
            } else {
                std::process::Stdio::null()
            })
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = command
            .spawn()
            .map_err(|e| failed(format!("cannot run {}: {e}", self.describe())))?;
        if let (Some(bytes), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(&bytes)
                .await
                .map_err(|e| failed(format!("writing to {}: {e}", self.describe())))?;
        }
        let out = child
            .wait_with_output()
            .await
            .map_err(|e| failed(format!("waiting for {}: {e}", self.describe())))?;
        if !out.status.success() {
            return Err(failed(
                redactor.redact(String::from_utf8_lossy(&out.stderr).trim()),
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// The compose file's name in the replica root, as on the node.
pub const COMPOSE_FILE: &str = "docker-compose.node1.yml";

/// `config --hash` output: one `SERVICE HASH` per line.
pub fn parse_hashes(text: &str) -> BTreeMap<Service, String> {
    text.lines()
        .filter_map(|line| {
            let (name, hash) = line.trim().split_once(' ')?;
            let service = Service::ALL
                .into_iter()
                .find(|s| s.production_name() == name)?;
            Some((service, hash.trim().to_string()))
        })
        .collect()
}

/// What Compose labels one container with, beyond its project and service.
#[derive(Debug, Clone, Copy)]
pub struct ContainerFacts<'a> {
    /// The config hash, as the host's Compose computes it.
    pub hash: Option<&'a str>,
    /// The replica root: the project's working directory.
    pub root: &'a Path,
    /// The host's Compose version.
    pub version: Option<&'a str>,
    /// The image's id (`sha256:…`).
    pub image_id: Option<&'a str>,
}

/// The labels Compose gives `service`'s container in `project` (number 1, not one-off).
pub fn container_labels(
    project: &str,
    service: Service,
    facts: ContainerFacts<'_>,
) -> Vec<(String, String)> {
    let ContainerFacts {
        hash,
        root,
        version,
        image_id,
    } = facts;
    let mut labels = vec![
        (LABEL_PROJECT.to_string(), project.to_string()),
        (
            LABEL_SERVICE.to_string(),
            service.production_name().to_string(),
        ),
        (LABEL_ONE_OFF.to_string(), "False".to_string()),
        (LABEL_CONTAINER_NUMBER.to_string(), "1".to_string()),
        (LABEL_WORKING_DIR.to_string(), root.display().to_string()),
        (
            LABEL_CONFIG_FILES.to_string(),
            root.join(COMPOSE_FILE).display().to_string(),
        ),
    ];
    if let Some(hash) = hash {
        labels.push((LABEL_CONFIG_HASH.to_string(), hash.to_string()));
    }
    if let Some(version) = version {
        labels.push((LABEL_VERSION.to_string(), version.to_string()));
    }
    if let Some(image_id) = image_id {
        labels.push((LABEL_IMAGE.to_string(), image_id.to_string()));
    }
    labels
}

/// The directory of shims a runbook's commands find first on `PATH`: `docker-compose` and
/// `docker compose` both run the host's Compose (or fail with one line when it has none), and
/// each run is logged, so that the journal says which Compose ran. Other `docker` commands go
/// to the real `docker`.
pub fn write_shims(dir: &Path, compose: Option<&HostCompose>) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(HarnessError::io(dir))?;
    let docker = which("docker")
        .map(|p| shell_quote(&p.display().to_string()))
        .unwrap_or_else(|| "docker".into());
    let run_compose = match compose {
        Some(c) => format!(
            "printf '%s\\t%s\\n' {} \"$*\" >> \"${{{LOG_VAR}:-/dev/null}}\"\nexec {} \"$@\"",
            shell_quote(&c.describe()),
            c.shell_words()
        ),
        None => format!(
            "printf '%s\\t%s\\n' {} \"$*\" >> \"${{{LOG_VAR}:-/dev/null}}\"\n\
             echo 'rehearsal host: no Compose here (neither `docker compose` nor `docker-compose`); install docker-compose' >&2\n\
             exit 127",
            shell_quote(NO_COMPOSE)
        ),
    };
    let header = "#!/bin/sh\n# Written by the rehearsal harness: a runbook's Compose commands run the host's Compose.\n";
    let compose_shim = format!("{header}{run_compose}\n");
    let docker_shim = format!(
        "{header}if [ \"$1\" = compose ]; then\n  shift\n  {}\nfi\nexec {docker} \"$@\"\n",
        run_compose.replace('\n', "\n  ")
    );
    for (name, text) in [("docker-compose", compose_shim), ("docker", docker_shim)] {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(HarnessError::io(&path))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .map_err(HarnessError::io(&path))?;
    }
    Ok(())
}

/// One Compose command a runbook block ran through the shims: which Compose, with what.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ComposeRun {
    /// `docker-compose 1.29.2 (v1)`, `docker compose 2.26.1 (v2)`, or [`NO_COMPOSE`].
    pub tool: String,
    /// Its arguments after `docker compose` / `docker-compose` (redacted).
    pub args: String,
}

impl ComposeRun {
    /// The runs a shim log holds, one per line (`tool<TAB>args`), arguments redacted.
    pub fn parse_log(log: &str, redactor: &Redactor) -> Vec<ComposeRun> {
        log.lines()
            .filter(|l| !l.is_empty())
            .map(|line| {
                let (tool, args) = line.split_once('\t').unwrap_or((line, ""));
                ComposeRun {
                    tool: tool.to_string(),
                    args: redactor.redact(args),
                }
            })
            .collect()
    }

    /// Why this run could not do what it was written to do for the host's own reason: the
    /// host has no Compose, or its Compose is v1 and the command uses what only v2 has.
    pub fn host_limitation(&self) -> Option<String> {
        if self.tool == NO_COMPOSE {
            return Some(
                "the rehearsal host has no Compose (neither `docker compose` nor `docker-compose`); install docker-compose".into(),
            );
        }
        if !self.tool.ends_with("(v1)") {
            return None;
        }
        let v2_only = self.args.split_whitespace().find(|word| {
            let flag = word.split('=').next().unwrap_or(word);
            V2_ONLY_FLAGS.contains(&flag) || V2_ONLY_SUBCOMMANDS.contains(word)
        })?;
        Some(format!(
            "the rehearsal host's Compose is {} and has no `{v2_only}`, which the runbook's command uses (Compose v2); install the Compose v2 plugin",
            self.tool
        ))
    }
}

/// Options of Compose v2 that v1 (1.29) rejects.
pub const V2_ONLY_FLAGS: &[&str] = &[
    "--wait",
    "--wait-timeout",
    "--dry-run",
    "--quiet-pull",
    "--pull",
    "--no-attach",
    "--watch",
    "--menu",
];

/// Subcommands of Compose v2 that v1 (1.29) does not have.
pub const V2_ONLY_SUBCOMMANDS: &[&str] = &["watch", "wait", "ls", "cp", "attach", "stats", "alpha"];

/// The variable naming the file each Compose run through a shim is logged to.
pub const LOG_VAR: &str = "REHEARSAL_COMPOSE_LOG";

/// What the shim logs when the host has no Compose.
pub const NO_COMPOSE: &str = "none: the host has no Compose";

/// The first executable `name` on `PATH`.
pub(crate) fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_hash_lines_are_read_by_production_service_name() {
        let hashes = parse_hashes("dagi-router-node1 5f0c\ndagi-postgres 9a1b\nnot-ours 77\n\n");
        assert_eq!(
            hashes,
            BTreeMap::from([
                (Service::Postgres, "9a1b".to_string()),
                (Service::Router, "5f0c".to_string()),
            ])
        );
    }

    #[test]
    fn a_container_is_labelled_as_compose_labels_service_number_one() {
        let labels = container_labels(
            "ab12cd34",
            Service::Router,
            ContainerFacts {
                hash: Some("h"),
                root: Path::new("/tmp/r"),
                version: Some("1.29.2"),
                image_id: Some("sha256:0f"),
            },
        );
        let get = |k: &str| labels.iter().find(|(l, _)| l == k).map(|(_, v)| v.as_str());
        assert_eq!(get(LABEL_PROJECT), Some("ab12cd34"));
        assert_eq!(get(LABEL_SERVICE), Some("dagi-router-node1"));
        assert_eq!(get(LABEL_ONE_OFF), Some("False"));
        assert_eq!(get(LABEL_CONTAINER_NUMBER), Some("1"));
        assert_eq!(get(LABEL_CONFIG_HASH), Some("h"));
        assert_eq!(get(LABEL_IMAGE), Some("sha256:0f"));
        assert_eq!(
            get(LABEL_CONFIG_FILES),
            Some("/tmp/r/docker-compose.node1.yml")
        );
    }

    #[test]
    fn the_shims_send_both_spellings_to_the_hosts_compose_and_other_docker_commands_to_docker() {
        let dir = tempfile::tempdir().unwrap();
        let compose = HostCompose {
            tool: Tool::Standalone,
            version: "1.29.2".into(),
            program: PathBuf::from("/bin/echo"),
        };
        write_shims(dir.path(), Some(&compose)).unwrap();
        let log = dir.path().join("log");
        let run = |args: &[&str]| {
            let out = std::process::Command::new(dir.path().join(args[0]))
                .args(&args[1..])
                .env(LOG_VAR, &log)
                .output()
                .unwrap();
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).to_string(),
            )
        };
        assert_eq!(
            run(&["docker-compose", "-f", "x.yml", "ps"]),
            (Some(0), "-f x.yml ps\n".to_string())
        );
        assert_eq!(
            run(&["docker", "compose", "up", "-d"]),
            (Some(0), "up -d\n".to_string())
        );
        assert_eq!(
            std::fs::read_to_string(&log).unwrap(),
            "docker-compose 1.29.2 (v1)\t-f x.yml ps\ndocker-compose 1.29.2 (v1)\tup -d\n"
        );
    }

    #[test]
    fn a_v2_only_flag_on_a_v1_host_is_the_hosts_limitation_not_the_runbooks() {
        let run = |tool: &str, args: &str| ComposeRun {
            tool: tool.into(),
            args: args.into(),
        };
        assert_eq!(
            run("docker-compose 1.29.2 (v1)", "-f x.yml up -d --wait dagi-router-node1")
                .host_limitation(),
            Some("the rehearsal host's Compose is docker-compose 1.29.2 (v1) and has no `--wait`, which the runbook's command uses (Compose v2); install the Compose v2 plugin".into())
        );
        assert!(run("docker-compose 1.29.2 (v1)", "up -d --wait-timeout=30")
            .host_limitation()
            .is_some());
        assert_eq!(
            run(
                "docker-compose 1.29.2 (v1)",
                "up -d --force-recreate dagi-router-node1"
            )
            .host_limitation(),
            None
        );
        assert_eq!(
            run("docker compose 2.26.1 (v2)", "up -d --wait").host_limitation(),
            None
        );
        assert!(run(NO_COMPOSE, "restart").host_limitation().is_some());
    }

    #[test]
    fn a_shim_log_is_read_as_runs_with_arguments_redacted() {
        let redactor = Redactor::new();
        redactor.add("K", "s3cr3t-value");
        assert_eq!(
            ComposeRun::parse_log(
                "docker-compose 1.29.2 (v1)\trun -e KEY=s3cr3t-value x\n",
                &redactor
            ),
            [ComposeRun {
                tool: "docker-compose 1.29.2 (v1)".into(),
                args: "run -e KEY=[REDACTED:K] x".into()
            }]
        );
    }

    #[test]
    fn without_compose_the_shims_fail_with_one_line_and_log_why() {
        let dir = tempfile::tempdir().unwrap();
        write_shims(dir.path(), None).unwrap();
        let log = dir.path().join("log");
        let out = std::process::Command::new(dir.path().join("docker"))
            .args(["compose", "restart"])
            .env(LOG_VAR, &log)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(127));
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            "rehearsal host: no Compose here (neither `docker compose` nor `docker-compose`); install docker-compose\n"
        );
        assert_eq!(
            std::fs::read_to_string(&log).unwrap(),
            format!("{NO_COMPOSE}\trestart\n")
        );
    }
}
