//! The Docker engine as the checks and the replica reach it: where it is (`DOCKER_HOST`, an
//! engine over SSH through a forwarded socket), a connection that answers, its known defects,
//! and what `docker inspect` says of a container's env and ports.

use bollard::Docker;

/// No engine answers where one is expected.
#[derive(Debug, thiserror::Error)]
#[error(
    "no Docker engine answers at {endpoint}: {reason}. Start the engine, or set DOCKER_HOST to \
     where it listens (default unix:///var/run/docker.sock)"
)]
pub struct NoEngine {
    pub endpoint: String,
    pub reason: String,
}

/// Where the engine is expected, for error messages.
pub fn endpoint() -> String {
    std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into())
}

/// Where the engine's published ports are reached from this machine: the host of `DOCKER_HOST`
/// for a remote engine, 127.0.0.1 for the local socket.
pub fn engine_host() -> String {
    match std::env::var(ENGINE_HOST_VAR) {
        Ok(host) if !host.is_empty() => host,
        _ => engine_host_of(std::env::var("DOCKER_HOST").ok().as_deref()),
    }
}

/// Where the engine's published ports are, when `DOCKER_HOST` no longer says it: set with
/// `DOCKER_HOST` by [`tunnel_ssh_engine`] for this process and everything it starts.
pub const ENGINE_HOST_VAR: &str = "REHEARSAL_ENGINE_HOST";
/// The private key for an engine over SSH (`ssh -i`); else the agent and ssh's config.
pub const SSH_IDENTITY_VAR: &str = "REHEARSAL_SSH_IDENTITY";
/// A known_hosts file with the engine machine's host key; else the user's own.
pub const SSH_KNOWN_HOSTS_VAR: &str = "REHEARSAL_SSH_KNOWN_HOSTS";

/// An engine reached over SSH, for as long as this is held: the connection, owned by this
/// process and ended with it, forwarding the engine's socket.
pub struct SshEngine {
    _session: crate::ssh::SshSession,
}

/// With `DOCKER_HOST=ssh://[user@]host[:port]`: connects (OpenSSH, batch mode), forwards the
/// engine's socket `/var/run/docker.sock` to a private socket here, and points `DOCKER_HOST` at
/// it for this process and every program it starts (the engine client, the runbook's `docker`
/// and Compose commands, the resident Compose), with `REHEARSAL_ENGINE_HOST` keeping the host
/// where the published ports are reached. `None` for any other `DOCKER_HOST`.
pub async fn tunnel_ssh_engine() -> Result<Option<SshEngine>, NoEngine> {
    use crate::ssh::{SshDestination, SshOptions, SshSession};
    let Ok(value) = std::env::var("DOCKER_HOST") else {
        return Ok(None);
    };
    if !value.starts_with("ssh://") {
        return Ok(None);
    }
    let no_engine = |reason: String| NoEngine {
        endpoint: value.clone(),
        reason,
    };
    let destination = SshDestination::parse(value.trim_end_matches('/')).map_err(no_engine)?;
    let options = SshOptions {
        identity: std::env::var_os(SSH_IDENTITY_VAR).map(Into::into),
        known_hosts: std::env::var_os(SSH_KNOWN_HOSTS_VAR).map(Into::into),
        timeout: std::time::Duration::from_secs(10),
    };
    let session = SshSession::open(destination, &options)
        .await
        .map_err(no_engine)?;
    let host = engine_host_of(Some(&value));
    std::env::set_var(
        "DOCKER_HOST",
        format!("unix://{}", session.docker_socket().display()),
    );
    std::env::set_var(ENGINE_HOST_VAR, host);
    Ok(Some(SshEngine { _session: session }))
}

/// The host part of a `DOCKER_HOST` value, as it goes in a URL (an IPv6 address bracketed):
/// `tcp://H:P`, `http://H:P`, `https://H:P` and `ssh://[user@]H[:P]` give H; a local socket
/// (`unix://…`, nothing set) and `localhost` give 127.0.0.1.
pub fn engine_host_of(docker_host: Option<&str>) -> String {
    const LOOPBACK: &str = "127.0.0.1";
    let Some((scheme, rest)) = docker_host.map(str::trim).and_then(|v| v.split_once("://")) else {
        return LOOPBACK.into();
    };
    if !matches!(scheme, "tcp" | "http" | "https" | "ssh") {
        return LOOPBACK.into();
    }
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host_and_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host_and_port.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((address, _)) => format!("[{address}]"),
            None => return LOOPBACK.into(),
        },
        None => host_and_port
            .split(':')
            .next()
            .unwrap_or_default()
            .to_string(),
    };
    match host.as_str() {
        "" | "localhost" => LOOPBACK.into(),
        _ => host,
    }
}

/// The address the replica's ports are published on, on the engine's machine: loopback for a
/// local engine (nothing reachable from the network), every interface for a remote one (the
/// harness reaches them from here; keep such an engine on a private network).
pub fn publish_ip() -> &'static str {
    publish_ip_for(&engine_host())
}

fn publish_ip_for(engine_host: &str) -> &'static str {
    if engine_host == "127.0.0.1" {
        "127.0.0.1"
    } else {
        "0.0.0.0"
    }
}

/// Connects to the engine (DOCKER_HOST or the local socket) and checks that it answers.
pub async fn connect() -> Result<Docker, NoEngine> {
    let docker = Docker::connect_with_defaults().map_err(|e| NoEngine {
        endpoint: endpoint(),
        reason: e.to_string(),
    })?;
    match tokio::time::timeout(std::time::Duration::from_secs(5), docker.ping()).await {
        Ok(Ok(_)) => {
            if ENGINE_VERSION.get().is_none() {
                let version =
                    tokio::time::timeout(std::time::Duration::from_secs(5), docker.version()).await;
                if let Ok(Ok(version)) = version {
                    let _ = ENGINE_VERSION.set(version.version.unwrap_or_default());
                }
            }
            Ok(docker)
        }
        Ok(Err(e)) => Err(NoEngine {
            endpoint: endpoint(),
            reason: e.to_string(),
        }),
        Err(_) => Err(NoEngine {
            endpoint: endpoint(),
            reason: "no answer within 5s".into(),
        }),
    }
}

/// The engine's version (`docker version`'s server version), read at the first connect.
static ENGINE_VERSION: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// The engine's version, once a `connect` has read it.
pub fn engine_version() -> Option<&'static str> {
    ENGINE_VERSION.get().map(String::as_str)
}

/// What is known to wedge an engine of `version`: Docker 20.10 before 20.10.27 (Debian 12's
/// `docker.io` is 20.10.24) deadlocks its network controller when two containers leave the same
/// network at once, one in `getSvcRecords` (network, then controller lock), the other's endpoint
/// deletion in `processEndpointDelete` (controller, then network lock); every network operation
/// and name lookup then hangs until the daemon restarts (moby/moby#46661, libnetwork#2649, fixed
/// by libnetwork#2679 in 20.10.27 and in 23.0).
pub fn known_engine_defect(version: &str) -> Option<&'static str> {
    let mut parts = version
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().ok());
    let (major, minor, patch) = (parts.next()??, parts.next()??, parts.next()??);
    (major == 20 && minor == 10 && patch < 27).then_some(
        "this engine (Docker 20.10 before 20.10.27) deadlocks its network controller when two \
         containers leave one network at once (moby/moby#46661, fixed in 20.10.27 and 23.0); a \
         newer engine does not",
    )
}

/// The environment a container was created with, from `docker inspect` (secret values: redact
/// before showing).
pub fn env_of(inspect: bollard::models::ContainerInspectResponse) -> Vec<(String, String)> {
    inspect
        .config
        .and_then(|c| c.env)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect()
}

/// The host port that `container_port`/tcp is published on, from `docker inspect`'s port map.
pub fn published_port(ports: &bollard::models::PortMap, container_port: u16) -> Option<u16> {
    ports
        .get(&format!("{container_port}/tcp"))
        .and_then(|b| b.as_ref())
        .and_then(|b| b.iter().find_map(|pb| pb.host_port.as_ref()?.parse().ok()))
}

#[cfg(test)]
mod tests {
    use super::{engine_host_of, known_engine_defect, publish_ip_for};

    #[test]
    fn only_docker_20_10_before_27_is_named_for_the_network_controller_deadlock() {
        for version in ["20.10.24+dfsg1", "20.10.5", "20.10.26"] {
            assert!(known_engine_defect(version).is_some(), "{version}");
        }
        for version in ["20.10.27", "23.0.0", "28.2.2", "26.1.5+dfsg1", "", "dev"] {
            assert_eq!(known_engine_defect(version), None, "{version}");
        }
    }

    #[test]
    fn a_remote_engines_ports_are_reached_at_the_host_of_docker_host() {
        let cases = [
            (None, "127.0.0.1"),
            (Some("unix:///var/run/docker.sock"), "127.0.0.1"),
            (Some("tcp://127.0.0.1:2375"), "127.0.0.1"),
            (Some("tcp://10.1.2.3:2376"), "10.1.2.3"),
            (Some("tcp://node1.internal:2375"), "node1.internal"),
            (Some("http://docker-a:2375/"), "docker-a"),
            (Some("https://docker-b:2376"), "docker-b"),
            (Some("ssh://ops@node7"), "node7"),
            (Some("ssh://ops@node7:2222"), "node7"),
            (Some("ssh://node8"), "node8"),
            (Some("tcp://[fd00::12]:2375"), "[fd00::12]"),
            (Some("tcp://localhost:2375"), "127.0.0.1"),
            (Some("npipe:////./pipe/docker_engine"), "127.0.0.1"),
            (Some("tcp://"), "127.0.0.1"),
            (Some("tcp://[fd00::12"), "127.0.0.1"),
        ];
        for (docker_host, expected) in cases {
            assert_eq!(engine_host_of(docker_host), expected, "{docker_host:?}");
        }
    }

    #[test]
    fn ports_are_published_on_loopback_for_a_local_engine_and_on_every_interface_for_a_remote_one()
    {
        assert_eq!(publish_ip_for("127.0.0.1"), "127.0.0.1");
        assert_eq!(publish_ip_for("[::1]"), "0.0.0.0", "reached over IPv6");
        assert_eq!(publish_ip_for("10.1.2.3"), "0.0.0.0");
        assert_eq!(publish_ip_for("node7"), "0.0.0.0");
    }
}
