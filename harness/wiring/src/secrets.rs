//! How a service reads a secret (a variable, or the password inside a PostgreSQL URL), and a
//! secret's fingerprint: the shapes both sides of a wiring agree on, never a value.

use sha2::{Digest, Sha256};

/// How a service reads its secrets when the node's wiring differs from the replica's default
/// (given on its command line by the harness, from the node profile): `--secret NAME=plain:VAR`
/// (the secret the code reads as NAME is the variable VAR), `--secret NAME=database-url:VAR`
/// (it is the password of the PostgreSQL URL in VAR, which also gives host, port, user and
/// database), `--falls-back NAME` (without it, the service goes on with a fallback).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Wiring {
    pub secrets: Vec<WiredSecret>,
}

/// One secret as the service reads it (see [`Wiring`]).
#[derive(Clone, Debug, PartialEq)]
pub struct WiredSecret {
    pub name: String,
    pub variable: String,
    pub form: WiredForm,
    pub falls_back: bool,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum WiredForm {
    Plain,
    DatabaseUrl,
}

impl Wiring {
    /// Reads `--secret` and `--falls-back` options; an error names the argument it cannot read.
    pub fn from_args(args: &[String]) -> Result<Wiring, String> {
        let mut wiring = Wiring::default();
        let mut falls_back = Vec::new();
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let value = it.next().ok_or_else(|| format!("{arg} needs a value"))?;
            match arg.as_str() {
                "--secret" => {
                    let (name, spec) = value
                        .split_once('=')
                        .ok_or_else(|| format!("--secret {value}: expected NAME=FORM:VARIABLE"))?;
                    let (form, variable) = spec
                        .split_once(':')
                        .ok_or_else(|| format!("--secret {value}: expected NAME=FORM:VARIABLE"))?;
                    let form = match form {
                        "plain" => WiredForm::Plain,
                        "database-url" => WiredForm::DatabaseUrl,
                        other => return Err(format!("--secret {value}: unknown form {other}")),
                    };
                    wiring.secrets.push(WiredSecret {
                        name: name.into(),
                        variable: variable.into(),
                        form,
                        falls_back: false,
                    });
                }
                "--falls-back" => falls_back.push(value.clone()),
                other => return Err(format!("unknown option {other}")),
            }
        }
        for name in falls_back {
            match wiring.secrets.iter_mut().find(|w| w.name == name) {
                Some(w) => w.falls_back = true,
                None => wiring.secrets.push(WiredSecret {
                    variable: name.clone(),
                    name,
                    form: WiredForm::Plain,
                    falls_back: true,
                }),
            }
        }
        Ok(wiring)
    }

    /// The options `from_args` reads.
    pub fn to_args(&self) -> Vec<String> {
        let mut out = Vec::new();
        for w in &self.secrets {
            let form = match w.form {
                WiredForm::Plain => "plain",
                WiredForm::DatabaseUrl => "database-url",
            };
            if w.form != WiredForm::Plain || w.variable != w.name {
                out.push("--secret".into());
                out.push(format!("{}={form}:{}", w.name, w.variable));
            }
            if w.falls_back {
                out.push("--falls-back".into());
                out.push(w.name.clone());
            }
        }
        out
    }
}

/// A PostgreSQL URL as SQLAlchemy's `make_url` reads it (the node's services are Python):
/// `scheme://user:password@host:port/database`, the password running to the first `@` and
/// percent-decoded. A password written into the URL unencoded reads as something else, or
/// not at all, as on the node.
#[derive(Clone, Debug, PartialEq)]
pub struct DbUrl {
    pub user: String,
    pub password: String,
    pub host: String,
    pub port: u16,
    pub database: String,
}

impl DbUrl {
    pub fn parse(url: &str) -> Option<DbUrl> {
        let (scheme, rest) = url.split_once("://")?;
        if scheme.is_empty()
            || !scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '_')
        {
            return None;
        }
        let (userinfo, rest) = rest.split_once('@')?;
        let (user, password) = userinfo.split_once(':')?;
        if user.contains('/') {
            return None;
        }
        let (authority, database) = match rest.split_once('/') {
            Some((a, d)) => (a, d.split('?').next().unwrap_or(d)),
            None => (rest.split('?').next().unwrap_or(rest), ""),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().ok()?),
            None => (authority, 5432),
        };
        if host.is_empty() || host.contains(['/', '?', '#', '@']) {
            return None;
        }
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        Some(DbUrl {
            user: decode(user),
            password: decode(password),
            host: host.to_string(),
            port,
            database: decode(database),
        })
    }
}

/// A short, stable, non-reversible id for a secret value, shared with the harness.
pub fn fingerprint(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    digest[..6].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_stable_and_short() {
        assert_eq!(fingerprint("abc"), "ba7816bf8f01");
        assert_eq!(fingerprint("abc").len(), 12);
    }

    #[test]
    fn a_wiring_reads_back_the_options_it_writes() {
        let wiring = Wiring::from_args(&[
            "--secret".into(),
            "DB_PASSWORD=database-url:DATABASE_URL".into(),
            "--falls-back".into(),
            "NATS_PASSWORD".into(),
        ])
        .unwrap();
        assert_eq!(Wiring::from_args(&wiring.to_args()).unwrap(), wiring);
    }

    #[test]
    fn a_database_url_is_read_as_sqlalchemy_reads_it() {
        let url = DbUrl::parse("postgresql+psycopg://app:p%40ss%2F1@db.internal:6432/main?x=1");
        assert_eq!(
            url,
            Some(DbUrl {
                user: "app".into(),
                password: "p@ss/1".into(),
                host: "db.internal".into(),
                port: 6432,
                database: "main".into(),
            })
        );
        assert_eq!(DbUrl::parse("postgresql://app@db/main"), None);
    }
}
