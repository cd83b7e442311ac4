//! Typed errors of the harness library; binaries turn them into exit codes (`exit_codes`).

use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong while providing images or running a replica stack.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error(transparent)]
    NoDocker(#[from] crate::checks::engine::NoEngine),

    #[error(
        "the Docker engine at {endpoint} stopped answering: {operation} got no answer within \
         {waited:?}. Nothing more can run on it; restart the Docker daemon, then \
         `cargo xtask down` removes the replicas left on it{known_defect}"
    )]
    EngineUnresponsive {
        endpoint: String,
        operation: String,
        waited: Duration,
        /// `docker::known_engine_defect` of the engine's version, as a clause (`; …`), or empty.
        known_defect: String,
    },

    #[error(
        "network {network} keeps an endpoint that no container holds, so the engine refuses to \
         remove it: a Docker engine bug (moby/moby#17217, #42119) whose known remedy is a restart \
         of the Docker daemon"
    )]
    StaleNetwork { network: String },
    #[error("Docker request failed while {doing}: {source}")]
    Docker {
        doing: String,
        #[source]
        source: bollard::errors::Error,
    },

    #[error("the replica cannot run this node profile: {0}")]
    Profile(String),

    #[error("Compose failed while {doing}: {detail}")]
    Compose { doing: String, detail: String },

    #[error("the engine could not {doing} {service}: {source}")]
    Start {
        doing: &'static str,
        service: String,
        #[source]
        source: bollard::errors::Error,
    },

    #[error(
        "building the base image needs mmdebstrap (or debootstrap, as root), and neither is \
         installed: run `apt-get install mmdebstrap` (no container registry is used)"
    )]
    ImageToolMissing,

    #[error(
        "building the base image as a user runs mmdebstrap in a user namespace, which needs \
         mmdebstrap and uidmap: run `sudo apt-get install mmdebstrap uidmap` (your user also needs \
         ranges in /etc/subuid and /etc/subgid, which `useradd` gives), or run `cargo xtask \
         images` once as root; later runs reuse the cached image"
    )]
    UserNamespaceToolsMissing,

    #[error("missing on this host: {missing}: {remedy}")]
    HostToolsMissing { missing: String, remedy: String },

    #[error("installing what is missing failed: `{command}` exited with {status}; run it yourself, then run this command again")]
    HostToolsInstall { command: String, status: i32 },

    #[error("base image build failed at {stage}: {detail}")]
    ImageBuild { stage: String, detail: String },

    #[error("building the replica binary failed: {0}")]
    BinaryBuild(String),

    #[error("{service} was not ready within {waited:?}: {reason}\n--- last log lines of {service} ---\n{last_logs}")]
    NotReady {
        service: String,
        waited: Duration,
        reason: String,
        last_logs: String,
    },

    /// A `.env` file that cannot be read, parsed or written.
    #[error(transparent)]
    EnvFile(#[from] crate::envfile::EnvFileError),

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("command in {container} failed: {detail}")]
    Exec { container: String, detail: String },

    #[error("no stack {0} exists (see `cargo xtask status`)")]
    NoSuchStack(String),
}

impl HarnessError {
    pub(crate) fn docker(doing: impl Into<String>) -> impl FnOnce(bollard::errors::Error) -> Self {
        let doing = doing.into();
        move |source| HarnessError::Docker { doing, source }
    }

    /// For the engine refusing to `doing` (create, start) `service`'s container.
    pub(crate) fn start(
        doing: &'static str,
        service: crate::Service,
    ) -> impl FnOnce(bollard::errors::Error) -> Self {
        move |source| HarnessError::Start {
            doing,
            service: service.to_string(),
            source,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| HarnessError::Io { path, source }
    }
}

pub type Result<T, E = HarnessError> = std::result::Result<T, E>;

impl HarnessError {
    /// The exit code a command returns for this error (`exit_codes`).
    pub fn exit_code(&self) -> i32 {
        use crate::exit_codes::*;
        match self {
            HarnessError::NoDocker(_) => NO_DOCKER,
            HarnessError::ImageToolMissing
            | HarnessError::UserNamespaceToolsMissing
            | HarnessError::HostToolsMissing { .. }
            | HarnessError::HostToolsInstall { .. } => PREREQUISITE_MISSING,
            HarnessError::EngineUnresponsive { .. } => ENGINE_UNRESPONSIVE,
            HarnessError::ImageBuild { .. } | HarnessError::BinaryBuild(_) => BUILD_FAILED,
            HarnessError::NotReady { .. }
            | HarnessError::Start { .. }
            | HarnessError::Compose { .. } => NOT_READY,
            HarnessError::EnvFile(crate::envfile::EnvFileError::Parse { .. })
            | HarnessError::NoSuchStack(_)
            | HarnessError::Profile(_) => USAGE,
            HarnessError::Docker { .. }
            | HarnessError::StaleNetwork { .. }
            | HarnessError::EnvFile(crate::envfile::EnvFileError::Io { .. })
            | HarnessError::Io { .. }
            | HarnessError::Exec { .. } => FAILURES,
        }
    }
}
