//! The host programs a command needs, each with the Debian package that installs it: everything
//! missing is found at once, before anything starts, then installed with apt-get when the
//! command runs as root (CI runners, containers), or named in one `sudo apt-get install …` line.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::error::{HarnessError, Result};
use crate::progress::Progress;

/// Set (to anything but `0` or empty) to make a root run refuse like a user's instead of
/// installing what is missing.
pub const NO_INSTALL_VARIABLE: &str = "REHEARSAL_NO_INSTALL";

/// Why a command needs a host program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Purpose {
    /// The replica is a Compose project, and runbooks call Compose on the host.
    Compose,
    /// The runbook's own commands call it on this host.
    Runbook,
    /// Building the base image from Debian packages, once (no registry is used).
    ImageBuilder,
    /// The test suite: targets verified over SSH, the image built as a user, the report
    /// rendered in a browser.
    Tests,
}

impl Purpose {
    fn describe(self) -> &'static str {
        match self {
            Purpose::Compose => "the replica's Compose project",
            Purpose::Runbook => "the runbook's commands",
            Purpose::ImageBuilder => "building the base image",
            Purpose::Tests => "the tests",
        }
    }
}

/// One program a command needs: present when any of `programs` is found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    /// The program's names, the usual one first (`chromium`, `chromium-browser`, …).
    pub programs: &'static [&'static str],
    /// The Debian package that installs it.
    pub package: &'static str,
    pub purpose: Purpose,
}

impl Need {
    pub fn name(&self) -> &'static str {
        self.programs[0]
    }
}

/// Programs a runbook may call on the host, with their Debian packages. A runbook's program
/// outside this table and missing here is not installed (its step fails as it would for an
/// operator who lacks it).
pub const PACKAGES: &[(&str, &str)] = &[
    ("curl", "curl"),
    ("wget", "wget"),
    ("openssl", "openssl"),
    ("psql", "postgresql-client"),
    ("pg_dump", "postgresql-client"),
    ("pg_isready", "postgresql-client"),
    ("jq", "jq"),
    ("ssh", "openssh-client"),
    ("scp", "openssh-client"),
    ("ssh-keygen", "openssh-client"),
    ("htpasswd", "apache2-utils"),
    ("gpg", "gpg"),
    ("age", "age"),
    ("xxd", "xxd"),
    ("uuidgen", "uuid-runtime"),
    ("pwgen", "pwgen"),
    ("python3", "python3"),
    ("nc", "netcat-openbsd"),
    ("rsync", "rsync"),
    ("sqlite3", "sqlite3"),
    ("redis-cli", "redis-tools"),
    ("zstd", "zstd"),
];

/// Compose, v2 plugin or v1 (`apt-get install docker-compose`).
pub fn compose() -> Need {
    Need {
        programs: &["docker-compose"],
        package: "docker-compose",
        purpose: Purpose::Compose,
    }
}

/// What the runbook's host commands (`Runbook::host_programs`) need, for programs with a
/// known package.
pub fn for_programs(programs: &BTreeSet<String>) -> Vec<Need> {
    PACKAGES
        .iter()
        .filter(|(program, _)| programs.contains(*program))
        .map(|(program, package)| Need {
            programs: std::slice::from_ref(program),
            package,
            purpose: Purpose::Runbook,
        })
        .collect()
}

/// The base image's builder: mmdebstrap, and as a user uidmap's `newuidmap` too.
pub fn image_builder(root: bool) -> Vec<Need> {
    let mut needs = vec![Need {
        programs: &["mmdebstrap"],
        package: "mmdebstrap",
        purpose: Purpose::ImageBuilder,
    }];
    if !root {
        needs.push(Need {
            programs: &["newuidmap"],
            package: "uidmap",
            purpose: Purpose::ImageBuilder,
        });
    }
    needs
}

/// What `cargo xtask test` needs besides Rust and the engine: Compose, the runbooks' host
/// programs, the OpenSSH client, the image's builder as a user (the test that builds it so),
/// and a browser for the report's layout test.
pub fn for_tests() -> Vec<Need> {
    let programs: BTreeSet<String> = ["curl", "openssl", "psql", "ssh", "ssh-keygen"]
        .into_iter()
        .map(String::from)
        .collect();
    let mut needs = vec![compose()];
    needs.extend(for_programs(&programs).into_iter().map(|n| Need {
        purpose: Purpose::Tests,
        ..n
    }));
    needs.extend(image_builder(false).into_iter().map(|n| Need {
        purpose: Purpose::Tests,
        ..n
    }));
    needs.push(Need {
        programs: &["chromium", "chromium-browser", "google-chrome"],
        package: "chromium",
        purpose: Purpose::Tests,
    });
    needs
}

/// What to do about what is missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Everything is here.
    Nothing,
    /// As root with apt-get: install these packages (sorted, each once).
    Install(Vec<&'static str>),
    /// Stop (exit 10, nothing started): what is missing and the one command that installs it,
    /// as `HarnessError::HostToolsMissing` says them.
    Refuse { missing: String, remedy: String },
}

/// The plan for `missing`, as root or not, with or without apt-get, installing allowed or not.
pub fn plan(missing: &[Need], root: bool, apt: bool, install_allowed: bool) -> Plan {
    if missing.is_empty() {
        return Plan::Nothing;
    }
    let packages = packages(missing);
    if root && apt && install_allowed {
        return Plan::Install(packages);
    }
    let remedy = if apt {
        let sudo = if root { "" } else { "sudo " };
        format!("run `{sudo}apt-get install {}`", packages.join(" "))
    } else {
        format!(
            "no apt-get here: install them with this system's package manager (Debian packages: {})",
            packages.join(" ")
        )
    };
    Plan::Refuse {
        missing: describe(missing),
        remedy,
    }
}

fn packages(needs: &[Need]) -> Vec<&'static str> {
    let set: BTreeSet<&'static str> = needs.iter().map(|n| n.package).collect();
    set.into_iter().collect()
}

/// `mmdebstrap, uidmap's newuidmap (building the base image), chromium (the tests)`: the
/// programs grouped by purpose, in the order the purposes are declared.
fn describe(needs: &[Need]) -> String {
    let purposes: BTreeSet<Purpose> = needs.iter().map(|n| n.purpose).collect();
    purposes
        .into_iter()
        .map(|purpose| {
            let names: Vec<&str> = needs
                .iter()
                .filter(|n| n.purpose == purpose)
                .map(Need::name)
                .collect();
            format!("{} ({})", names.join(", "), purpose.describe())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The needs not met on this host, each program once.
pub fn missing(needs: &[Need]) -> Vec<Need> {
    let mut seen = BTreeSet::new();
    needs
        .iter()
        .filter(|n| seen.insert(n.name()))
        .filter(|n| !present(n))
        .cloned()
        .collect()
}

fn present(need: &Need) -> bool {
    if need.purpose == Purpose::Compose || need.name() == "docker-compose" {
        return compose_present();
    }
    need.programs.iter().any(|p| which(p).is_some())
}

/// `docker compose` (v2) or `docker-compose` (v1), asked now (not `HostCompose::detect`'s
/// answer, which is kept for the process and may predate an install).
fn compose_present() -> bool {
    if which("docker-compose").is_some() {
        return true;
    }
    which("docker").is_some_and(|docker| {
        std::process::Command::new(docker)
            .args(["compose", "version"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// `program` on `PATH`, or in the sbin directories a non-root `PATH` often lacks.
pub fn which(program: &str) -> Option<PathBuf> {
    crate::compose::which(program).or_else(|| {
        ["/usr/sbin", "/sbin"]
            .into_iter()
            .map(|d| Path::new(d).join(program))
            .find(|p| p.is_file())
    })
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn install_allowed() -> bool {
    std::env::var_os(NO_INSTALL_VARIABLE).is_none_or(|v| v.is_empty() || v == "0")
}

/// Makes sure every one of `needs` is here: nothing to do, or one apt-get run as root (its
/// output on stderr, after one line saying what is installed and why), or `HostToolsMissing`
/// naming everything missing and the one command that installs it.
pub async fn provide(needs: &[Need], progress: &Progress) -> Result<()> {
    let missing_now = missing(needs);
    let apt = which("apt-get");
    match plan(&missing_now, is_root(), apt.is_some(), install_allowed()) {
        Plan::Nothing => Ok(()),
        Plan::Refuse { missing, remedy } => Err(HarnessError::HostToolsMissing { missing, remedy }),
        Plan::Install(packages) => {
            let apt = apt.expect("the plan installs only where apt-get is");
            progress.say(&format!(
                "installing {} with apt-get, as root: missing {} (set {NO_INSTALL_VARIABLE}=1 to be told instead)",
                packages.join(" "),
                describe(&missing_now)
            ));
            apt_get(&apt, &["update"]).await?;
            let mut install = vec!["install", "-y"];
            install.extend(packages.iter().copied());
            apt_get(&apt, &install).await?;
            let still = missing(needs);
            if still.is_empty() {
                Ok(())
            } else {
                Err(HarnessError::HostToolsMissing {
                    missing: describe(&still),
                    remedy: format!(
                        "`apt-get install {}` succeeded but did not provide them",
                        packages.join(" ")
                    ),
                })
            }
        }
    }
}

/// Runs `apt-get ARGS` non-interactively, its output on this process's stderr (stdout is the
/// command's own: reports, JSON).
async fn apt_get(apt: &Path, args: &[&str]) -> Result<()> {
    use std::os::fd::AsFd;
    let stderr = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .map_err(HarnessError::io(Path::new("/dev/stderr")))?;
    let status = tokio::process::Command::new(apt)
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::from(stderr))
        .status()
        .await
        .map_err(HarnessError::io(apt))?;
    if status.success() {
        Ok(())
    } else {
        Err(HarnessError::HostToolsInstall {
            command: format!("apt-get {}", args.join(" ")),
            status: status.code().unwrap_or(-1),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(plan: Plan) -> String {
        match plan {
            Plan::Refuse { missing, remedy } => {
                HarnessError::HostToolsMissing { missing, remedy }.to_string()
            }
            other => panic!("not a refusal: {other:?}"),
        }
    }

    fn need(name: &'static [&'static str], package: &'static str, purpose: Purpose) -> Need {
        Need {
            programs: name,
            package,
            purpose,
        }
    }

    fn fresh_machine_missing() -> Vec<Need> {
        vec![
            need(&["mmdebstrap"], "mmdebstrap", Purpose::ImageBuilder),
            need(&["newuidmap"], "uidmap", Purpose::ImageBuilder),
            need(&["psql"], "postgresql-client", Purpose::Runbook),
            need(&["docker-compose"], "docker-compose", Purpose::Compose),
        ]
    }

    #[test]
    fn a_user_is_told_one_sudo_line_with_every_missing_package() {
        assert_eq!(
            refusal(plan(&fresh_machine_missing(), false, true, true)),
            "missing on this host: docker-compose (the replica's Compose project), psql (the \
             runbook's commands), mmdebstrap, newuidmap (building the base image): run `sudo \
             apt-get install docker-compose mmdebstrap postgresql-client uidmap`"
        );
    }

    #[test]
    fn root_with_apt_installs_each_package_once() {
        let mut missing = fresh_machine_missing();
        missing.push(need(&["ssh-keygen"], "openssh-client", Purpose::Tests));
        missing.push(need(&["ssh"], "openssh-client", Purpose::Tests));
        assert_eq!(
            plan(&missing, true, true, true),
            Plan::Install(vec![
                "docker-compose",
                "mmdebstrap",
                "openssh-client",
                "postgresql-client",
                "uidmap"
            ])
        );
    }

    #[test]
    fn root_told_not_to_install_gets_the_line_without_sudo() {
        assert_eq!(
            refusal(plan(&fresh_machine_missing()[..1], true, true, false)),
            "missing on this host: mmdebstrap (building the base image): run `apt-get install \
             mmdebstrap`"
        );
    }

    #[test]
    fn without_apt_the_packages_are_named_for_another_package_manager() {
        assert_eq!(
            refusal(plan(&fresh_machine_missing()[3..], true, false, true)),
            "missing on this host: docker-compose (the replica's Compose project): no apt-get \
             here: install them with this system's package manager (Debian packages: \
             docker-compose)"
        );
    }

    #[test]
    fn nothing_missing_is_nothing_to_do() {
        assert_eq!(plan(&[], false, false, false), Plan::Nothing);
    }

    #[test]
    fn a_runbook_needs_only_the_packages_of_the_programs_it_calls() {
        let programs: BTreeSet<String> = ["curl", "docker", "psql", "tar", "vault"]
            .into_iter()
            .map(String::from)
            .collect();
        let packages: Vec<&str> = for_programs(&programs).iter().map(|n| n.package).collect();
        assert_eq!(packages, ["curl", "postgresql-client"]);
    }

    #[test]
    fn the_image_builder_needs_uidmap_only_as_a_user() {
        let names = |root| -> Vec<&str> { image_builder(root).iter().map(Need::name).collect() };
        assert_eq!(names(true), ["mmdebstrap"]);
        assert_eq!(names(false), ["mmdebstrap", "newuidmap"]);
    }

    #[test]
    fn the_shipped_runbooks_need_these_packages_on_the_host() {
        let packages = |file: &str| -> Vec<&str> {
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../fixtures/runbook")
                .join(file);
            let runbook = crate::runbook::Runbook::load(&path).expect("the runbook parses");
            for_programs(&runbook.host_programs())
                .iter()
                .map(|n| n.package)
                .collect()
        };
        assert_eq!(packages("SECRETS_ROTATION_RUNBOOK.md"), ["curl"]);
        assert_eq!(
            packages("SECRETS_ROTATION_RUNBOOK.v2.md"),
            ["curl", "openssl", "postgresql-client"]
        );
    }
}
