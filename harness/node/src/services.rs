//! The replica's services as production names them (DESIGN §2): container name, ports, the
//! `.env` file each reads at creation, and how readiness is probed.

/// One service of the node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Service {
    Postgres,
    Nats,
    Upstream,
    Router,
    Memory,
    Gateway,
    CrewaiWorker,
    ParserPipeline,
}

/// How a service's readiness is probed from the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// A new TCP connection with the role's password, then `SELECT 1`.
    Postgres,
    /// `GET /healthz?js-enabled-only=true` on the monitor port.
    NatsMonitor,
    /// `GET path` on `port` answers 200.
    Http { port: u16, path: &'static str },
}

impl Service {
    /// Every service, in start order (all start concurrently; this is the listing order).
    pub const ALL: [Service; 8] = [
        Service::Postgres,
        Service::Nats,
        Service::Upstream,
        Service::Router,
        Service::Memory,
        Service::Gateway,
        Service::CrewaiWorker,
        Service::ParserPipeline,
    ];

    /// The node's own services: each has a `.env`, an HTTP port and a container to verify.
    pub const NODE: [Service; 5] = [
        Service::Gateway,
        Service::Router,
        Service::Memory,
        Service::CrewaiWorker,
        Service::ParserPipeline,
    ];

    /// The short key used in labels, CLI arguments and the compose file.
    pub fn key(self) -> &'static str {
        match self {
            Service::Postgres => "postgres",
            Service::Nats => "nats",
            Service::Upstream => "upstream",
            Service::Router => "router",
            Service::Memory => "memory-service",
            Service::Gateway => "gateway",
            Service::CrewaiWorker => "crewai-nats-worker",
            Service::ParserPipeline => "parser-pipeline",
        }
    }

    /// The container name in production; inside a stack's network it resolves (as an alias).
    pub fn production_name(self) -> &'static str {
        match self {
            Service::Postgres => "dagi-postgres",
            Service::Nats => "dagi-nats-node1",
            Service::Upstream => "upstream",
            Service::Router => "dagi-router-node1",
            Service::Memory => "dagi-memory-service-node1",
            Service::Gateway => "dagi-gateway-node1",
            Service::CrewaiWorker => "crewai-nats-worker",
            Service::ParserPipeline => "parser-pipeline",
        }
    }

    /// Parses a key or a production name.
    pub fn parse(text: &str) -> Option<Service> {
        Service::ALL
            .into_iter()
            .find(|s| s.key() == text || s.production_name() == text)
            .or(match text {
                "memory" => Some(Service::Memory),
                _ => None,
            })
    }

    /// The network aliases the service is reachable by inside its stack.
    pub fn aliases(self) -> Vec<&'static str> {
        let mut a = vec![self.production_name()];
        if self.key() != self.production_name() {
            a.push(self.key());
        }
        a
    }

    /// The ports the container listens on.
    pub fn ports(self) -> &'static [u16] {
        match self {
            Service::Postgres => &[5432],
            Service::Nats => &[4222, 8222],
            Service::Upstream => &[8080],
            Service::Router => &[9102],
            Service::Memory => &[8000],
            Service::Gateway => &[9300],
            Service::CrewaiWorker | Service::ParserPipeline => &[9090],
        }
    }

    /// PostgreSQL and NATS: the servers the node's services dial. They run their own server
    /// (behind the replica binary's fault proxy); every other service is the replica binary.
    pub fn is_server(self) -> bool {
        matches!(self, Service::Postgres | Service::Nats)
    }

    /// The named volume (its key in the compose file) and where it is mounted, for the services
    /// whose state outlives their container, as on the node: PostgreSQL's data directory and
    /// NATS's JetStream store. A recreate keeps it; only removing the volume loses it.
    pub fn data_volume(self) -> Option<(&'static str, &'static str)> {
        match self {
            Service::Postgres => Some(("postgres-data", "/var/lib/postgresql/data")),
            Service::Nats => Some(("nats-data", "/data")),
            _ => None,
        }
    }

    /// The `.env` file (relative to the replica root) read when the container is created.
    pub fn env_file(self) -> Option<&'static str> {
        match self {
            Service::Postgres => Some("services/postgres/.env"),
            Service::Nats | Service::Upstream => None,
            Service::Router => Some("services/router/.env"),
            Service::Memory => Some("services/memory-service/.env"),
            Service::Gateway => Some("gateway-bot/.env"),
            Service::CrewaiWorker => Some("services/crewai-nats-worker/.env"),
            Service::ParserPipeline => Some("services/parser-pipeline/.env"),
        }
    }

    /// How readiness is probed.
    pub fn readiness(self) -> Readiness {
        match self {
            Service::Postgres => Readiness::Postgres,
            Service::Nats => Readiness::NatsMonitor,
            Service::Upstream => Readiness::Http {
                port: 8080,
                path: "/health",
            },
            Service::Router => Readiness::Http {
                port: 9102,
                path: "/ready",
            },
            Service::Memory => Readiness::Http {
                port: 8000,
                path: "/ready",
            },
            Service::Gateway => Readiness::Http {
                port: 9300,
                path: "/ready",
            },
            Service::CrewaiWorker | Service::ParserPipeline => Readiness::Http {
                port: 9090,
                path: "/ready",
            },
        }
    }

    /// The services that use PostgreSQL with `DB_PASSWORD`.
    pub fn uses_db(self) -> bool {
        matches!(
            self,
            Service::Router
                | Service::Memory
                | Service::Gateway
                | Service::CrewaiWorker
                | Service::ParserPipeline
        )
    }
}

impl std::fmt::Display for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.production_name())
    }
}

/// The NATS users and which services connect as each.
pub const NATS_USERS: &[(&str, &[Service])] = &[
    ("gateway", &[Service::Gateway]),
    ("router", &[Service::Router]),
    ("worker", &[Service::CrewaiWorker, Service::ParserPipeline]),
];

/// The secret variables, with the kind of value each holds.
pub const SECRET_NAMES: &[&str] = &[
    "DB_PASSWORD",
    "JWT_SECRET",
    "TELEGRAM_BOT_TOKEN",
    "TELEGRAM_BOT_TOKEN_HELION",
    "TELEGRAM_BOT_TOKEN_GREENFOOD",
    "TELEGRAM_BOT_TOKEN_DRUID",
    "NATS_PASSWORD_GATEWAY",
    "NATS_PASSWORD_ROUTER",
    "NATS_PASSWORD_WORKER",
    "DEEPSEEK_API_KEY",
    "MISTRAL_API_KEY",
    "GROK_API_KEY",
    "COHERE_API_KEY",
    "NEO4J_PASSWORD",
    "QDRANT_API_KEY",
];
