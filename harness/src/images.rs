//! The base image every replica container runs: Debian bookworm from Debian packages
//! (mmdebstrap, as root or as a user in a user namespace, else debootstrap as root; then an
//! import: no registry), cached under a tag derived from its recipe.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use bollard::query_parameters::CreateImageOptionsBuilder;
use bollard::Docker;
use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncReadExt};

use crate::error::{HarnessError, Result};
use crate::host_tools::which;
use crate::progress::Progress;

/// The image repository; the tag is the recipe's hash. `REHEARSAL_BASE_REPOSITORY` names
/// another (the test that builds the image as a user builds it there).
pub const BASE_REPOSITORY: &str = "rotation-rehearsal/base";
pub const BASE_REPOSITORY_VAR: &str = "REHEARSAL_BASE_REPOSITORY";

/// What goes into the base image. Changing anything here (or `POSTGRES_TEMPLATE_SCRIPT`)
/// changes the tag and so rebuilds it.
pub const SUITE: &str = "bookworm";
pub const VARIANT: &str = "minbase";
pub const PACKAGES: &[&str] = &[
    "postgresql-15",
    "nats-server",
    "iproute2",
    "ca-certificates",
    "curl",
    // What a node's own tools are, for `verify` over SSH (its test runs sshd in this image).
    "openssh-server",
    "git",
];

/// The mirror debootstrap fetches from (`REHEARSAL_DEBIAN_MIRROR` overrides; not part of the
/// recipe hash, since any mirror yields the same packages).
pub fn mirror() -> String {
    std::env::var("REHEARSAL_DEBIAN_MIRROR")
        .unwrap_or_else(|_| "http://deb.debian.org/debian".into())
}

/// `repository:tag` of the base image for the current recipe.
pub fn base_image_ref() -> (String, String) {
    let recipe = format!(
        "{SUITE}|{VARIANT}|{}|{POSTGRES_TEMPLATE_SCRIPT}",
        PACKAGES.join(",")
    );
    let digest = Sha256::digest(recipe.as_bytes());
    let tag: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    let repository = std::env::var(BASE_REPOSITORY_VAR)
        .ok()
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| BASE_REPOSITORY.to_string());
    (repository, format!("bookworm-{tag}"))
}

/// Everything a replica needs, built where missing: the base image and the replica binary, at
/// the same time (the image's build is mostly downloading and unpacking, the binary's is
/// compiling), both cached after the first time.
pub async fn ensure_image_and_binary(
    docker: &Docker,
    progress: &Progress,
) -> Result<((String, String), PathBuf)> {
    tokio::try_join!(
        ensure_base_image(docker, progress),
        crate::binary::ensure_replica_binary(progress)
    )
}

/// What starting a replica needs on this host (`host_tools::provide` installs or names it):
/// Compose, and `image_needs`.
pub async fn replica_needs(docker: &Docker) -> Vec<crate::host_tools::Need> {
    let mut needs = vec![crate::host_tools::compose()];
    needs.extend(image_needs(docker).await);
    needs
}

/// The image's builder, where the image is not cached yet and no builder can run here.
pub async fn image_needs(docker: &Docker) -> Vec<crate::host_tools::Need> {
    let (repo, tag) = base_image_ref();
    let cached = docker.inspect_image(&format!("{repo}:{tag}")).await.is_ok();
    if cached || RootfsBuilder::choose().is_ok() {
        return Vec::new();
    }
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    crate::host_tools::image_builder(root)
}

/// Makes sure the base image exists, building it once (under a cross-process lock) if not.
pub async fn ensure_base_image(docker: &Docker, progress: &Progress) -> Result<(String, String)> {
    let (repo, tag) = base_image_ref();
    let full = format!("{repo}:{tag}");
    if docker.inspect_image(&full).await.is_ok() {
        return Ok((repo, tag));
    }
    // One lock per user: a file another user made is not ours to open for writing.
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    let lock_path = std::env::temp_dir().join(format!("rotation-rehearsal-image-{uid}.lock"));
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(HarnessError::io(&lock_path))?;
    progress.say(&format!(
        "waiting for the image build lock {}",
        lock_path.display()
    ));
    let lock = tokio::task::spawn_blocking(move || lock.lock().map(|_| lock))
        .await
        .expect("lock task")
        .map_err(HarnessError::io(&lock_path))?;
    if docker.inspect_image(&full).await.is_ok() {
        return Ok((repo, tag));
    }
    let result = build_base_image(docker, &repo, &tag, progress).await;
    drop(lock);
    result.map(|()| (repo, tag))
}

/// What builds the root filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootfsBuilder {
    /// mmdebstrap: as root, or as a user in a user namespace (`--mode=unshare`, with uidmap's
    /// `newuidmap` and the user's `/etc/subuid` range); the tarball streamed to the engine.
    Mmdebstrap { program: PathBuf, unshare: bool },
    /// debootstrap into a directory, as root only.
    Debootstrap(PathBuf),
}

impl RootfsBuilder {
    /// The builder this machine and user have: mmdebstrap where it can run, else debootstrap
    /// as root; an error naming what to install otherwise.
    pub fn choose() -> Result<RootfsBuilder> {
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        choose_builder(
            root,
            which("mmdebstrap"),
            which("newuidmap").is_some(),
            which("debootstrap"),
        )
    }

    fn name(&self) -> &'static str {
        match self {
            RootfsBuilder::Mmdebstrap { unshare: true, .. } => "mmdebstrap, in a user namespace",
            RootfsBuilder::Mmdebstrap { .. } => "mmdebstrap",
            RootfsBuilder::Debootstrap(_) => "debootstrap",
        }
    }
}

fn choose_builder(
    root: bool,
    mmdebstrap: Option<PathBuf>,
    newuidmap: bool,
    debootstrap: Option<PathBuf>,
) -> Result<RootfsBuilder> {
    match (mmdebstrap, debootstrap) {
        (Some(program), _) if root => Ok(RootfsBuilder::Mmdebstrap {
            program,
            unshare: false,
        }),
        (Some(program), _) if newuidmap => Ok(RootfsBuilder::Mmdebstrap {
            program,
            unshare: true,
        }),
        (None, Some(program)) if root => Ok(RootfsBuilder::Debootstrap(program)),
        _ if root => Err(HarnessError::ImageToolMissing),
        _ => Err(HarnessError::UserNamespaceToolsMissing),
    }
}

async fn build_base_image(
    docker: &Docker,
    repo: &str,
    tag: &str,
    progress: &Progress,
) -> Result<()> {
    let builder = RootfsBuilder::choose()?;
    progress.say(&format!(
        "building base image {repo}:{tag} from Debian packages ({SUITE} {VARIANT} + {}) with {}; about a minute, once",
        PACKAGES.join(", "),
        builder.name()
    ));
    let started = std::time::Instant::now();
    let stage_tag = format!("{tag}-stage");
    match &builder {
        RootfsBuilder::Mmdebstrap { program, unshare } => {
            mmdebstrap_import(docker, program, *unshare, repo, &stage_tag, progress).await?
        }
        RootfsBuilder::Debootstrap(program) => {
            debootstrap_import(docker, program, repo, &stage_tag, progress).await?
        }
    }
    progress.say("  initialising a PostgreSQL template cluster in the image");
    let made = add_postgres_template(docker, repo, &stage_tag, tag).await;
    let _ = docker
        .remove_image(
            &format!("{repo}:{stage_tag}"),
            None::<bollard::query_parameters::RemoveImageOptions>,
            None,
        )
        .await;
    made?;
    progress.say(&format!(
        "base image {repo}:{tag} ready in {}s",
        started.elapsed().as_secs()
    ));
    remove_superseded(docker, repo, tag, progress).await;
    Ok(())
}

/// How often a long build step says it is still going.
const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(10);

/// What a server image does not need, left out of every build.
const TRIMMED: &[&str] = &["usr/share/doc", "usr/share/man"];

/// mmdebstrap's tarball on its stdout, streamed into the engine as `repo:tag`; its `I:` lines
/// shown as progress.
async fn mmdebstrap_import(
    docker: &Docker,
    program: &Path,
    unshare: bool,
    repo: &str,
    tag: &str,
    progress: &Progress,
) -> Result<()> {
    let fail = |detail: String| HarnessError::ImageBuild {
        stage: "mmdebstrap".into(),
        detail,
    };
    let mut command = tokio::process::Command::new(program);
    command
        .arg(format!(
            "--mode={}",
            if unshare { "unshare" } else { "root" }
        ))
        .arg(format!("--variant={VARIANT}"))
        .arg(format!("--include={}", PACKAGES.join(",")));
    for dir in TRIMMED {
        command.arg(format!("--dpkgopt=path-exclude=/{dir}/*"));
    }
    let mut child = command
        .arg(SUITE)
        .arg("-")
        .arg(mirror())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| fail(e.to_string()))?;
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let said = progress.clone();
    let lines = tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(stderr).lines();
        let mut tail: Vec<String> = Vec::new();
        let mut step = String::from("starting");
        let since = std::time::Instant::now();
        loop {
            // A step can take half a minute: say it is still going every 10 s.
            let next = tokio::time::timeout(HEARTBEAT, lines.next_line()).await;
            let line = match next {
                Err(_) => {
                    said.say(&format!(
                        "  mmdebstrap: {step} ({} s so far)",
                        since.elapsed().as_secs()
                    ));
                    continue;
                }
                Ok(Ok(Some(line))) => line,
                Ok(_) => break,
            };
            if let Some(now) = line.strip_prefix("I: ") {
                said.say(&format!("  mmdebstrap: {now}"));
                step = now.trim_end_matches("...").to_string();
            }
            tail.push(line);
            if tail.len() > 20 {
                tail.remove(0);
            }
        }
        tail
    });
    let imported = import_stream(docker, stdout, repo, tag).await;
    let status = child.wait().await.map_err(|e| fail(e.to_string()))?;
    let tail = lines.await.unwrap_or_default();
    if !status.success() {
        return Err(fail(format!("{status}; last output:\n{}", tail.join("\n"))));
    }
    imported
}

async fn debootstrap_import(
    docker: &Docker,
    debootstrap: &Path,
    repo: &str,
    stage_tag: &str,
    progress: &Progress,
) -> Result<()> {
    let rootfs =
        std::env::temp_dir().join(format!("rotation-rehearsal-rootfs-{}", std::process::id()));
    let _cleanup = RemoveOnDrop(rootfs.clone());
    let started = std::time::Instant::now();
    let mut child = tokio::process::Command::new(debootstrap)
        .arg(format!("--variant={VARIANT}"))
        .arg(format!("--include={}", PACKAGES.join(",")))
        .arg(SUITE)
        .arg(&rootfs)
        .arg(mirror())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| HarnessError::ImageBuild {
            stage: "debootstrap".into(),
            detail: e.to_string(),
        })?;
    let stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let mut tail: Vec<String> = Vec::new();
    let mut last_stage = String::new();
    let mut retrieved = 0usize;
    let mut last_heartbeat = std::time::Instant::now();
    while let Ok(Some(line)) = lines.next_line().await {
        // debootstrap prints "I: Retrieving …", "I: Validating …", "I: Extracting …", …
        let text = line.trim_start_matches("I: ");
        let verb = text.split_whitespace().next().unwrap_or("").to_string();
        let stage = if verb == "Validating" {
            "Retrieving".to_string()
        } else {
            verb
        };
        if stage == "Retrieving" && text.contains(' ') {
            retrieved += 1;
        }
        let heartbeat = last_heartbeat.elapsed() >= std::time::Duration::from_secs(5);
        if line.starts_with("I:") && (stage != last_stage || heartbeat) {
            let what = if stage == "Retrieving" {
                format!(
                    "retrieving and validating packages ({} files so far)",
                    retrieved / 2
                )
            } else {
                text.to_string()
            };
            progress.say(&format!("  debootstrap: {what}"));
            last_stage = stage;
            last_heartbeat = std::time::Instant::now();
        }
        tail.push(line);
        if tail.len() > 20 {
            tail.remove(0);
        }
    }
    let mut err_text = String::new();
    let _ = stderr.read_to_string(&mut err_text).await;
    let status = child.wait().await.map_err(|e| HarnessError::ImageBuild {
        stage: "debootstrap".into(),
        detail: e.to_string(),
    })?;
    if !status.success() {
        return Err(HarnessError::ImageBuild {
            stage: "debootstrap".into(),
            detail: format!(
                "{status}; last output:\n{}\n{}",
                tail.join("\n"),
                err_text.trim()
            ),
        });
    }
    // Trim what a server image does not need, and drop apt lists.
    for dir in ["var/cache/apt/archives", "var/lib/apt/lists"]
        .iter()
        .chain(TRIMMED)
    {
        let p = rootfs.join(dir);
        if p.exists() {
            let _ = std::fs::remove_dir_all(&p);
        }
    }
    progress.say(&format!(
        "  importing root filesystem into the engine ({}s so far)",
        started.elapsed().as_secs()
    ));
    import(docker, &rootfs, repo, stage_tag).await
}

async fn import(docker: &Docker, rootfs: &Path, repo: &str, tag: &str) -> Result<()> {
    let mut tar = tokio::process::Command::new("tar")
        .arg("-C")
        .arg(rootfs)
        .args(["--numeric-owner", "-c", "."])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| HarnessError::ImageBuild {
            stage: "tar".into(),
            detail: e.to_string(),
        })?;
    let stdout = tar.stdout.take().expect("piped");
    import_stream(docker, stdout, repo, tag).await?;
    let status = tar.wait().await.map_err(|e| HarnessError::ImageBuild {
        stage: "tar".into(),
        detail: e.to_string(),
    })?;
    if !status.success() {
        return Err(HarnessError::ImageBuild {
            stage: "tar".into(),
            detail: status.to_string(),
        });
    }
    Ok(())
}

/// A root filesystem's tarball, read from `stdout`, imported as `repo:tag`.
/// How long the engine's import of a built root file system may take, build included.
const IMPORT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3600);

async fn import_stream(
    docker: &Docker,
    stdout: impl tokio::io::AsyncRead + Unpin + Send + 'static,
    repo: &str,
    tag: &str,
) -> Result<()> {
    let body = futures::stream::unfold(stdout, |mut out| async move {
        let mut buf = vec![0u8; 1 << 20];
        match out.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(bytes_from(buf)), out))
            }
            Err(e) => Some((Err(e), out)),
        }
    });
    let options = CreateImageOptionsBuilder::new()
        .from_src("-")
        .repo(repo)
        .tag(tag)
        .changes(vec!["ENV LANG=C.UTF-8".to_string()])
        .build();
    // The import request is open from the builder's start to its last byte: on a busy machine
    // or a slow mirror that outlasts the client's 120 s request timeout, which would drop the
    // stream and kill the builder with SIGPIPE. The builder's own progress shows it is alive.
    let docker = docker.clone().with_timeout(IMPORT_TIMEOUT);
    let mut stream = docker.create_image(Some(options), Some(bollard::body_try_stream(body)), None);
    while let Some(item) = stream.next().await {
        if let Err(e) = item {
            return Err(HarnessError::ImageBuild {
                stage: "docker import".into(),
                detail: e.to_string(),
            });
        }
    }
    Ok(())
}

/// Removes images of earlier recipes (other tags of our repository), best effort.
async fn remove_superseded(docker: &Docker, repo: &str, tag: &str, progress: &Progress) {
    use bollard::query_parameters::{ListImagesOptionsBuilder, RemoveImageOptions};
    let filters = std::collections::HashMap::from([("reference", vec![repo])]);
    let Ok(images) = docker
        .list_images(Some(
            ListImagesOptionsBuilder::new().filters(&filters).build(),
        ))
        .await
    else {
        return;
    };
    let current = format!("{repo}:{tag}");
    for image in images {
        for reference in image.repo_tags {
            let superseded = reference != current && reference.starts_with(&format!("{repo}:"));
            if superseded
                && docker
                    .remove_image(&reference, None::<RemoveImageOptions>, None)
                    .await
                    .is_ok()
            {
                progress.say(&format!("  removed superseded image {reference}"));
            }
        }
    }
}

/// Run in a container of the staged image and committed into the final one: an initialised
/// cluster (superuser `daarion`, a placeholder password replaced at every container's first
/// start, `trust` on the socket, scram-sha-256 over TCP) with the node's database `daarion_main`
/// in it. Copying it is faster than `initdb` and `CREATE DATABASE` (0.34 s in single-user mode).
pub const POSTGRES_TEMPLATE_SCRIPT: &str = r#"set -e
T=/var/lib/postgresql/template
mkdir -p "$T"
chown postgres:postgres "$T"
printf 'placeholder-replaced-at-start\n' > /tmp/pwfile
chown postgres /tmp/pwfile
runuser -u postgres -- /usr/lib/postgresql/15/bin/initdb -D "$T" -U daarion --pwfile=/tmp/pwfile \
  --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --no-sync >/dev/null
rm -f /tmp/pwfile
echo "host all all all scram-sha-256" >> "$T/pg_hba.conf"
printf 'CREATE DATABASE daarion_main OWNER daarion;\n' \
  | runuser -u postgres -- /usr/lib/postgresql/15/bin/postgres --single -D "$T" -c fsync=off postgres >/dev/null
"#;

async fn add_postgres_template(
    docker: &Docker,
    repo: &str,
    stage_tag: &str,
    tag: &str,
) -> Result<()> {
    use bollard::models::ContainerCreateBody;
    use bollard::query_parameters::{
        CommitContainerOptionsBuilder, CreateContainerOptionsBuilder,
        RemoveContainerOptionsBuilder, StartContainerOptions, WaitContainerOptions,
    };
    let name = format!("rotation-rehearsal-image-build-{}", std::process::id());
    let fail = |detail: String| HarnessError::ImageBuild {
        stage: "postgres template".into(),
        detail,
    };
    docker
        .create_container(
            Some(CreateContainerOptionsBuilder::new().name(&name).build()),
            ContainerCreateBody {
                image: Some(format!("{repo}:{stage_tag}")),
                cmd: Some(vec![
                    "sh".into(),
                    "-c".into(),
                    POSTGRES_TEMPLATE_SCRIPT.into(),
                ]),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| fail(e.to_string()))?;
    let result = async {
        docker
            .start_container(&name, None::<StartContainerOptions>)
            .await
            .map_err(|e| fail(e.to_string()))?;
        let mut wait = docker.wait_container(&name, None::<WaitContainerOptions>);
        while let Some(r) = wait.next().await {
            match r {
                Ok(w) if w.status_code != 0 => {
                    return Err(fail(format!("exit code {}", w.status_code)))
                }
                Ok(_) => {}
                Err(bollard::errors::Error::DockerContainerWaitError { code, error }) => {
                    return Err(fail(format!("exit code {code}: {error}")))
                }
                Err(e) => return Err(fail(e.to_string())),
            }
        }
        docker
            .commit_container(
                CommitContainerOptionsBuilder::new()
                    .container(&name)
                    .repo(repo)
                    .tag(tag)
                    .build(),
                bollard::models::ContainerConfig::default(),
            )
            .await
            .map_err(|e| fail(e.to_string()))?;
        Ok(())
    }
    .await;
    let _ = docker
        .remove_container(
            &name,
            Some(RemoveContainerOptionsBuilder::new().force(true).build()),
        )
        .await;
    result
}

fn bytes_from(buf: Vec<u8>) -> bytes::Bytes {
    buf.into()
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if self.0.exists() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[cfg(test)]
mod builder_tests {
    use super::*;

    #[test]
    fn mmdebstrap_builds_as_root_and_as_a_user_with_uidmap_debootstrap_only_as_root() {
        let mm = || Some(PathBuf::from("/usr/bin/mmdebstrap"));
        let db = || Some(PathBuf::from("/usr/sbin/debootstrap"));
        let mmdebstrap = |unshare| RootfsBuilder::Mmdebstrap {
            program: PathBuf::from("/usr/bin/mmdebstrap"),
            unshare,
        };
        assert_eq!(
            choose_builder(true, mm(), false, db()).unwrap(),
            mmdebstrap(false)
        );
        assert_eq!(
            choose_builder(false, mm(), true, db()).unwrap(),
            mmdebstrap(true)
        );
        assert_eq!(
            choose_builder(true, None, false, db()).unwrap(),
            RootfsBuilder::Debootstrap(PathBuf::from("/usr/sbin/debootstrap"))
        );
        assert!(matches!(
            choose_builder(false, mm(), false, db()),
            Err(HarnessError::UserNamespaceToolsMissing)
        ));
        assert!(matches!(
            choose_builder(false, None, true, db()),
            Err(HarnessError::UserNamespaceToolsMissing)
        ));
        assert!(matches!(
            choose_builder(true, None, true, None),
            Err(HarnessError::ImageToolMissing)
        ));
    }
}
