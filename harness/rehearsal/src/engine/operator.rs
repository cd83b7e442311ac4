//! The operator's hand: what a person does at the steps whose runbook text is prose, a file's
//! content or a comment rather than a command. Each action says what it did; none of them
//! touches anything the runbook does not ask for.

use harness::client::ReplicaClient;
use harness::replica_root::NodeSecrets;
use harness::runbook::shell;
use harness::runbook::Step;
use harness::services::Service;
use harness::stack::Stack;

/// The providers whose keys the operator creates in their consoles at "Create new secrets".
const PROVIDER_KEYS: &[(&str, &str)] = &[
    ("deepseek", "DEEPSEEK_API_KEY"),
    ("mistral", "MISTRAL_API_KEY"),
    ("grok", "GROK_API_KEY"),
    ("cohere", "COHERE_API_KEY"),
];

/// Credentials of external services a console can hold two of at once (a new key issued while
/// the old one stays valid): the name the console step uses, the upstream's name, the variable.
const DUAL_KEYS: &[(&str, &str, &str)] = &[("qdrant", "qdrant", "QDRANT_API_KEY")];

/// Credentials a service holds only one of (changing it ends the old one at once): the name
/// the step uses, the upstream's name, the variables.
const SINGLE_KEYS: &[(&str, &str, &[&str])] = &[
    ("neo4j", "neo4j", &["NEO4J_PASSWORD"]),
    (
        "botfather",
        "telegram",
        &[
            "TELEGRAM_BOT_TOKEN",
            "TELEGRAM_BOT_TOKEN_HELION",
            "TELEGRAM_BOT_TOKEN_GREENFOOD",
            "TELEGRAM_BOT_TOKEN_DRUID",
        ],
    ),
];

fn service_named(text: &str) -> Option<Service> {
    let lower = text.to_lowercase();
    [
        ("router", Service::Router),
        ("gateway", Service::Gateway),
        ("memory", Service::Memory),
    ]
    .into_iter()
    .find(|(k, _)| lower.contains(k))
    .map(|(_, s)| s)
}

/// What the operator did at one step.
#[derive(Debug, Default)]
pub struct Acted {
    /// One note per action.
    pub notes: Vec<String>,
    /// The secrets (by variable) whose old value the operator revoked at a provider.
    pub revoked: Vec<&'static str>,
}

/// What the operator does at `step`: new secrets generated, keys created or revoked in a
/// provider's console, `.env` files edited as a block shows, a code change deployed, the
/// critical flow tried by hand.
pub async fn act(stack: &Stack, step: &Step, new: &NodeSecrets) -> Acted {
    let mut acted = Acted::default();
    let title = step.title.to_lowercase();
    let prose = step.prose.to_lowercase();
    if title.contains("create new secrets") || prose.contains("generate new passwords") {
        generate_new_secrets(stack, new, &mut acted).await;
    }
    single_credential_consoles(stack, &title, new, &mut acted).await;
    if title.contains("console") {
        dual_key_consoles(stack, &title, new, &mut acted).await;
    }
    for block in &step.code {
        if block.is_shell() {
            let script = shell::read(&block.text, block.first_line);
            env_file_content(stack, &block.text, &script, new, &mut acted);
            removals_from_env(stack, &script, &mut acted);
        } else if block.text.contains("getenv(") && block.text.contains(" or ") {
            deploy_key_selection(stack, &mut acted);
        }
    }
    let critical_flow = prose.contains("critical flow")
        || title.contains("critical flow")
        || step
            .code
            .iter()
            .any(|b| b.text.to_lowercase().contains("test critical flows"));
    if critical_flow {
        try_the_critical_flow(stack, step, &mut acted).await;
    }
    acted
}

/// "Create new secrets": every value generated, a new key issued at every provider.
async fn generate_new_secrets(stack: &Stack, new: &NodeSecrets, acted: &mut Acted) {
    let client = ReplicaClient::new(stack);
    let mut issued = Vec::new();
    for (provider, var) in PROVIDER_KEYS {
        if client.issue_key(provider, new.get(var)).await == 200 {
            issued.push(*provider);
        }
    }
    acted.notes.push(format!(
        "generated new values for every secret (kept by the harness, not in git); created new keys at {}",
        issued.join(", ")
    ));
}

/// A console, named by the step, where the service holds one credential only ("Change the
/// Neo4j password in Neo4j's console", "/revoke each bot's token in BotFather"): the new one
/// replaces the old at once.
async fn single_credential_consoles(
    stack: &Stack,
    title: &str,
    new: &NodeSecrets,
    acted: &mut Acted,
) {
    let client = ReplicaClient::new(stack);
    for (name, upstream, vars) in SINGLE_KEYS {
        if !(title.contains(name) && (title.contains("console") || *name == "botfather")) {
            continue;
        }
        for var in *vars {
            let issued = client.issue_key(upstream, new.get(var)).await;
            let old = stack.initial_secrets().get(var);
            let status = client.revoke_key(upstream, old).await;
            if status == 200 {
                acted.revoked.push(*var);
            }
            acted.notes.push(format!(
                "replaced {var} at {upstream}: the new value, exported as NEW_{var}, works (HTTP {issued}) and the old one no longer does (HTTP {status})"
            ));
        }
    }
}

/// "Create the new DeepSeek key in the provider's console", "Revoke the old DeepSeek key …":
/// the old key is the one the node held before.
async fn dual_key_consoles(stack: &Stack, title: &str, new: &NodeSecrets, acted: &mut Acted) {
    let client = ReplicaClient::new(stack);
    let dual = PROVIDER_KEYS
        .iter()
        .map(|(provider, var)| (*provider, *provider, *var))
        .chain(DUAL_KEYS.iter().copied());
    for (name, upstream, var) in dual {
        if !title.contains(name) {
            continue;
        }
        if title.contains("revoke") {
            let status = client
                .revoke_key(upstream, stack.initial_secrets().get(var))
                .await;
            if status == 200 {
                acted.revoked.push(var);
            }
            acted.notes.push(format!(
                "revoked the old {var} in {name}'s console (HTTP {status})"
            ));
        } else if title.contains("create") || title.contains("issue") {
            let status = client.issue_key(upstream, new.get(var)).await;
            acted.notes.push(format!(
                "created a new key in {name}'s console and exported it as NEW_{var} (HTTP {status})"
            ));
        }
    }
}

/// A block that is a file's content (`# In Router .env`, then KEY=VALUE lines): written into
/// that service's `.env`, `$VAR` taken from the file and `<new_key>` filled with the new key.
fn env_file_content(
    stack: &Stack,
    text: &str,
    script: &shell::Script,
    new: &NodeSecrets,
    acted: &mut Acted,
) {
    let Some(service) = script
        .comments
        .iter()
        .find(|c| c.text.to_lowercase().starts_with("in ") && c.text.contains(".env"))
        .and_then(|c| service_named(&c.text))
    else {
        return;
    };
    let assignments: Vec<(String, String)> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| shell::is_assignment(&format!("{k}=")))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut written = Vec::new();
    let edit = stack.edit_env(service, |f| {
        for (k, v) in &assignments {
            let base = k.trim_end_matches("_NEW").trim_end_matches("_OLD");
            let value = if let Some(var) = v.strip_prefix('$') {
                f.get(var).unwrap_or_default().to_string()
            } else if v.starts_with('<')
                && v.ends_with('>')
                && harness::replica_root::SECRET_NAMES.contains(&base)
            {
                new.get(base).to_string()
            } else {
                v.clone()
            };
            f.set(k, &value);
            written.push(k.clone());
        }
    });
    acted.notes.push(match edit {
        Ok(()) => format!(
            "edited {}'s .env as the block shows: {} (`$VAR` taken from the file, `<new_key>` filled with the new key)",
            service.production_name(),
            written.join(", ")
        ),
        Err(e) => format!("could not edit {}'s .env: {e}", service.production_name()),
    });
}

/// `# Remove X from .env`: X removed from every service's `.env` that has it.
fn removals_from_env(stack: &Stack, script: &shell::Script, acted: &mut Acted) {
    for c in &script.comments {
        let words: Vec<&str> = c.text.split_whitespace().collect();
        let removes = words
            .first()
            .is_some_and(|w| w.eq_ignore_ascii_case("remove"))
            && c.text.contains(".env");
        let Some(var) = words.get(1).filter(|_| removes) else {
            continue;
        };
        let mut from = Vec::new();
        for s in Service::ALL.into_iter().filter(|s| s.env_file().is_some()) {
            let edited = stack.edit_env(s, |f| {
                if f.remove(var) {
                    from.push(s.production_name())
                }
            });
            if edited.is_err() {
                acted
                    .notes
                    .push(format!("could not edit {}'s .env", s.production_name()));
            }
        }
        acted.notes.push(format!(
            "removed {var} from the .env of {}",
            if from.is_empty() {
                "no service (it was not there)".into()
            } else {
                from.join(", ")
            }
        ));
    }
}

/// "Update code to try new key first": the replica's router implements exactly this line as a
/// mode, switched on in its `.env` (like a redeploy, it needs a new container).
fn deploy_key_selection(stack: &Stack, acted: &mut Acted) {
    let edit = stack.edit_env(Service::Router, |f| {
        f.set("ROUTER_KEY_SELECTION", "new-or-old")
    });
    acted.notes.push(match edit {
        Ok(()) => "deployed the code change: the router's NEW-or-OLD key selection (ROUTER_KEY_SELECTION=new-or-old)".into(),
        Err(e) => format!("could not deploy the code change: {e}"),
    });
}

/// "Test critical flows": a message sent through the Telegram webhook, as an operator would.
async fn try_the_critical_flow(stack: &Stack, step: &Step, acted: &mut Acted) {
    let client = ReplicaClient::new(stack);
    let id = 900_000_000 + (std::process::id() as i64 % 1000) * 1000 + step.number as i64;
    let outcome = client.send_update(None, id, "rotation check").await;
    acted.notes.push(if outcome.ok() {
        format!("sent a test message through the Telegram webhook: the agent answered and memory stored it (update {id})")
    } else {
        format!(
            "sent a test message: it failed with HTTP {} {} ({})",
            outcome.status, outcome.error, outcome.detail
        )
    });
}
