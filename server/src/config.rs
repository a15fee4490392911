//! Configuration: environment variables, over an optional TOML file, over defaults. Every value is
//! checked at start and a bad one stops the process with a message naming the variable.

use anyhow::{bail, Context};
use licensing::accounts::throttle::Policy;
use licensing::activation::churn::ChurnPolicy;
use licensing::AuthSettings;
use secrecy::{ExposeSecret, SecretString};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

/// The settings, each with its environment variable (the file uses the same name in lower case
/// without the `LICENTIA_` prefix) and its default. The README's table is generated from the same list.
pub const SETTINGS: &[(&str, &str, &str)] = &[
    (
        "LICENTIA_LISTEN",
        "127.0.0.1:3000",
        "address and port to listen on",
    ),
    (
        "LICENTIA_PORT",
        "",
        "port to listen on, overriding the one in LICENTIA_LISTEN",
    ),
    (
        "DATABASE_URL",
        "sqlite://data/licentia.db",
        "sqlite:… file, or postgres://user:pass@host/db",
    ),
    (
        "LICENTIA_DB_MAX_CONNECTIONS",
        "8",
        "size of the database connection pool",
    ),
    (
        "LICENTIA_PUBLIC_URL",
        "http://<listen address>",
        "URL people use to reach the portal; https:// turns on Secure cookies",
    ),
    (
        "LICENTIA_SITE_ROOT",
        "target/site",
        "directory holding the built portal files (pkg/, favicon.ico)",
    ),
    (
        "LICENTIA_TRUST_FORWARDED_FOR",
        "false",
        "take the caller's address from X-Forwarded-For (only behind a proxy that sets it)",
    ),
    (
        "LICENTIA_CHURN_MAX_EVENTS",
        "10",
        "activations + removals one licence allows per churn window (a serial: this × its licences)",
    ),
    (
        "LICENTIA_CHURN_WINDOW_HOURS",
        "24",
        "the anti-churn window",
    ),
    (
        "LICENTIA_SESSION_IDLE_MINUTES",
        "120",
        "a portal session unused this long ends",
    ),
    (
        "LICENTIA_SESSION_MAX_HOURS",
        "12",
        "a portal session ends this long after sign-in",
    ),
    (
        "LICENTIA_LOGIN_MAX_FAILURES_ACCOUNT",
        "5",
        "failed sign-ins per account that lock it for a while",
    ),
    (
        "LICENTIA_LOGIN_MAX_FAILURES_ADDRESS",
        "50",
        "failed sign-ins per network address that lock it for a while",
    ),
    (
        "LICENTIA_LOGIN_WINDOW_MINUTES",
        "15",
        "window in which failed sign-ins are counted",
    ),
    (
        "LICENTIA_LOGIN_LOCKOUT_MINUTES",
        "15",
        "how long a lock lasts",
    ),
    ("LICENTIA_LOG_FORMAT", "text", "text or json"),
    (
        "LICENTIA_MASTER_KEY",
        "",
        "base64 of 32 bytes that encrypt the signing keys at rest; overrides the key file",
    ),
    (
        "LICENTIA_MASTER_KEY_FILE",
        "data/master.key",
        "file holding the master key; created (mode 600) when missing",
    ),
];

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub database_url: String,
    pub db_max_connections: u32,
    /// As configured; `None` means "http:// and the address actually bound".
    pub public_url: Option<String>,
    pub site_root: PathBuf,
    pub trust_forwarded_for: bool,
    pub auth: AuthSettings,
    pub log_json: bool,
    pub master_key: MasterKeySource,
}

/// Where the key that encrypts signing keys comes from. A key given directly is never printed.
#[derive(Clone, Debug)]
pub enum MasterKeySource {
    /// Given directly (base64), e.g. to several replicas sharing a PostgreSQL database.
    Value(SecretString),
    /// A file, created on first start.
    File(PathBuf),
}

impl MasterKeySource {
    pub fn load(&self) -> anyhow::Result<licensing::keys::MasterKey> {
        match self {
            MasterKeySource::Value(v) => licensing::keys::MasterKey::from_base64(v.expose_secret())
                .map_err(|e| anyhow::anyhow!("LICENTIA_MASTER_KEY: {e}")),
            MasterKeySource::File(path) => licensing::keys::MasterKey::load_or_create(path)
                .map_err(|e| anyhow::anyhow!("LICENTIA_MASTER_KEY_FILE: {e}")),
        }
    }
}

/// Where values come from: the environment first, then the file.
struct Sources {
    env: BTreeMap<String, String>,
    file: BTreeMap<String, String>,
}

impl Sources {
    fn get(&self, var: &str) -> Option<String> {
        let file_key = var.trim_start_matches("LICENTIA_").to_lowercase();
        self.env
            .get(var)
            .or_else(|| self.file.get(&file_key))
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    fn parse<T: std::str::FromStr>(&self, var: &str, default: T, what: &str) -> anyhow::Result<T> {
        match self.get(var) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| anyhow::anyhow!("{var} must be {what}, got {v:?}")),
        }
    }

    fn minutes(&self, var: &str, default: i64) -> anyhow::Result<i64> {
        let n: i64 = self.parse(var, default, "a whole number of minutes")?;
        if n < 1 {
            bail!("{var} must be at least 1, got {n}");
        }
        Ok(n * 60)
    }

    fn count(&self, var: &str, default: i64) -> anyhow::Result<i64> {
        let n: i64 = self.parse(var, default, "a positive whole number")?;
        if n < 1 {
            bail!("{var} must be at least 1, got {n}");
        }
        Ok(n)
    }
}

fn read_file(path: &std::path::Path) -> anyhow::Result<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the configuration file {}", path.display()))?;
    let table: toml::Table = text.parse().with_context(|| {
        format!(
            "the configuration file {} is not valid TOML",
            path.display()
        )
    })?;
    let known: Vec<String> = SETTINGS
        .iter()
        .map(|(var, ..)| var.trim_start_matches("LICENTIA_").to_lowercase())
        .collect();
    table
        .into_iter()
        .map(|(k, v)| {
            if !known.contains(&k) {
                bail!(
                    "unknown setting {k:?} in {}; known settings: {}",
                    path.display(),
                    known.join(", ")
                );
            }
            let value = match v {
                toml::Value::String(s) => s,
                other => other.to_string(),
            };
            Ok((k, value))
        })
        .collect()
}

impl Config {
    /// Reads the process environment and, if given (or named by `LICENTIA_CONFIG`), a TOML file.
    pub fn load(file: Option<PathBuf>) -> anyhow::Result<Self> {
        let env: BTreeMap<String, String> = std::env::vars().collect();
        let file = file.or_else(|| env.get("LICENTIA_CONFIG").map(PathBuf::from));
        Self::from_sources(env, file)
    }

    pub fn from_sources(
        env: BTreeMap<String, String>,
        file: Option<PathBuf>,
    ) -> anyhow::Result<Self> {
        let file = match file {
            Some(path) => read_file(&path)?,
            None => BTreeMap::new(),
        };
        let s = Sources { env, file };
        let mut listen: SocketAddr = s.parse(
            "LICENTIA_LISTEN",
            SocketAddr::from(([127, 0, 0, 1], 3000)),
            "an address and port such as 127.0.0.1:3000",
        )?;
        if s.get("LICENTIA_PORT").is_some() {
            let port: u16 = s.parse("LICENTIA_PORT", 0, "a port number from 0 to 65535")?;
            listen.set_port(port);
        }
        let database_url = s
            .get("DATABASE_URL")
            .unwrap_or_else(|| "sqlite://data/licentia.db".to_owned());
        licensing::Backend::from_url(&database_url).context("DATABASE_URL")?;
        let db_max_connections: u32 =
            s.parse("LICENTIA_DB_MAX_CONNECTIONS", 8, "a number of connections")?;
        if db_max_connections == 0 {
            bail!("LICENTIA_DB_MAX_CONNECTIONS must be at least 1");
        }
        let public_url = s
            .get("LICENTIA_PUBLIC_URL")
            .map(|u| u.trim_end_matches('/').to_owned());
        if let Some(url) = &public_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                bail!("LICENTIA_PUBLIC_URL must start with http:// or https://, got {url:?}");
            }
        }
        let window = s.minutes("LICENTIA_LOGIN_WINDOW_MINUTES", 15)?;
        let lockout = s.minutes("LICENTIA_LOGIN_LOCKOUT_MINUTES", 15)?;
        let auth = AuthSettings {
            session_idle_secs: s.minutes("LICENTIA_SESSION_IDLE_MINUTES", 120)?,
            session_absolute_secs: s.count("LICENTIA_SESSION_MAX_HOURS", 12)? * 3600,
            account_throttle: Policy {
                max_failures: s.count("LICENTIA_LOGIN_MAX_FAILURES_ACCOUNT", 5)?,
                window_secs: window,
                lockout_secs: lockout,
            },
            address_throttle: Policy {
                max_failures: s.count("LICENTIA_LOGIN_MAX_FAILURES_ADDRESS", 50)?,
                window_secs: window,
                lockout_secs: lockout,
            },
            churn: ChurnPolicy {
                max_events: s.count("LICENTIA_CHURN_MAX_EVENTS", 10)?,
                window_secs: s.count("LICENTIA_CHURN_WINDOW_HOURS", 24)? * 3600,
            },
            ..AuthSettings::default()
        };
        let log_json = match s.get("LICENTIA_LOG_FORMAT").as_deref() {
            None | Some("text") => false,
            Some("json") => true,
            Some(other) => bail!("LICENTIA_LOG_FORMAT must be text or json, got {other:?}"),
        };
        Ok(Self {
            listen,
            database_url,
            db_max_connections,
            public_url,
            site_root: PathBuf::from(
                s.get("LICENTIA_SITE_ROOT")
                    .unwrap_or_else(|| "target/site".into()),
            ),
            trust_forwarded_for: s.parse("LICENTIA_TRUST_FORWARDED_FOR", false, "true or false")?,
            auth,
            log_json,
            master_key: match s.get("LICENTIA_MASTER_KEY") {
                Some(v) => MasterKeySource::Value(v.into()),
                None => MasterKeySource::File(PathBuf::from(
                    s.get("LICENTIA_MASTER_KEY_FILE")
                        .unwrap_or_else(|| "data/master.key".into()),
                )),
            },
        })
    }

    pub fn secure_cookies(&self) -> bool {
        self.public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"))
    }

    /// The URL people use, given the address the server actually bound (the port may have been 0).
    pub fn public_url_for(&self, bound: SocketAddr) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{bound}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_master_key_given_directly_is_never_printed() {
        let key = licensing::keys::MasterKey::random().to_base64();
        let c = Config::from_sources(env(&[("LICENTIA_MASTER_KEY", &key)]), None).expect("valid");
        let printed = format!("{c:?} {:?}", c.master_key.load().expect("loads"));
        assert!(!printed.contains(&key), "{printed}");
        assert!(printed.contains("REDACTED"), "{printed}");
    }

    #[test]
    fn defaults() {
        let c = Config::from_sources(BTreeMap::new(), None).expect("defaults are valid");
        assert_eq!(c.listen.to_string(), "127.0.0.1:3000");
        assert_eq!(c.database_url, "sqlite://data/licentia.db");
        assert_eq!(c.public_url_for(c.listen), "http://127.0.0.1:3000");
        assert!(!c.secure_cookies());
        assert_eq!(c.auth.account_throttle.max_failures, 5);
    }

    #[test]
    fn port_overrides_listen_and_https_means_secure() {
        let c = Config::from_sources(
            env(&[
                ("LICENTIA_PORT", "8080"),
                ("LICENTIA_PUBLIC_URL", "https://lic.example.com/"),
            ]),
            None,
        )
        .expect("valid");
        assert_eq!(c.listen.port(), 8080);
        assert_eq!(c.public_url.as_deref(), Some("https://lic.example.com"));
        assert!(c.secure_cookies());
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (k, v) in [
            ("LICENTIA_PORT", "eighty"),
            ("LICENTIA_LISTEN", "nowhere"),
            ("DATABASE_URL", "mysql://x"),
            ("LICENTIA_SESSION_IDLE_MINUTES", "0"),
            ("LICENTIA_LOG_FORMAT", "xml"),
        ] {
            let err = Config::from_sources(env(&[(k, v)]), None)
                .expect_err(k)
                .to_string();
            assert!(err.contains(k), "{err}");
        }
    }

    #[test]
    fn file_values_yield_to_the_environment() {
        let dir = std::env::temp_dir().join(format!("licentia-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("licentia.toml");
        std::fs::write(&path, "port = 4000\nsession_idle_minutes = 5\n").expect("write");
        let c = Config::from_sources(env(&[("LICENTIA_PORT", "4001")]), Some(path.clone()))
            .expect("valid");
        assert_eq!(c.listen.port(), 4001);
        assert_eq!(c.auth.session_idle_secs, 300);
        std::fs::write(&path, "prot = 4000\n").expect("write");
        let err = Config::from_sources(BTreeMap::new(), Some(path))
            .expect_err("typo")
            .to_string();
        assert!(err.contains("unknown setting \"prot\""), "{err}");
    }
}
