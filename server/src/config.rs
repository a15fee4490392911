//! Configuration: environment variables, over an optional TOML file, over defaults. Every value is
//! checked at start and a bad one stops the process with a message naming the variable.

use anyhow::{bail, Context};
use licensing::accounts::throttle::{Policy, Throttles};
use licensing::activation::churn::ChurnPolicy;
use licensing::AuthSettings;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Every setting under the name the file uses, with its default: the one place defaults are
/// written. Its environment variable is the name in upper case after `LICENTIA_`
/// (`database_url` is read from `DATABASE_URL`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub listen: SocketAddr,
    pub port: Option<u16>,
    pub database_url: String,
    pub db_max_connections: u32,
    pub public_url: Option<String>,
    pub site_root: PathBuf,
    pub trust_forwarded_for: bool,
    pub checkout_max_per_minute_address: i64,
    pub checkout_max_per_minute_pool: i64,
    pub churn_max_events: i64,
    pub churn_window_hours: i64,
    pub session_idle_minutes: i64,
    pub session_max_hours: i64,
    pub login_max_failures: i64,
    pub login_max_failures_address: i64,
    pub login_max_failures_everywhere: i64,
    pub login_window_minutes: i64,
    pub login_lockout_minutes: i64,
    pub login_max_lockout_minutes: i64,
    pub require_admin_second_factor: bool,
    pub setup_link_hours: i64,
    pub history_retention_days: i64,
    pub log_format: LogFormat,
    /// Never written out: a key given directly stays out of logs and dumps.
    #[serde(skip_serializing)]
    pub master_key: Option<SecretString>,
    /// `None`: the default, outside the data directory (see `MasterKeySource::Default`).
    pub master_key_file: Option<PathBuf>,
    /// The bearer token a scraper sends for `/metrics` on the main address; never written out.
    #[serde(skip_serializing)]
    pub metrics_token: Option<SecretString>,
    /// An address of their own for the metrics (no token there).
    pub metrics_listen: Option<SocketAddr>,
    /// Whether this server sends webhook deliveries (with several replicas, any or all may).
    pub webhook_sender: bool,
    /// PEM certificates trusted for webhook receivers beside the public roots.
    pub webhook_ca_file: Option<PathBuf>,
    /// Whether webhooks may be sent to loopback, private and link-local addresses.
    pub webhook_private_addresses: bool,
    /// The SMTP server invitations and password reset links go through; it may hold a
    /// password, so it is never written out.
    #[serde(skip_serializing)]
    pub smtp_url: Option<SecretString>,
    /// The sender of those messages.
    pub mail_from: Option<String>,
    /// Days before a licence's last day its client's contact is reminded by e-mail; 0: never.
    pub expiry_reminder_days: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 3000)),
            port: None,
            database_url: "sqlite://data/licentia.db".into(),
            db_max_connections: 8,
            public_url: None,
            site_root: "target/site".into(),
            trust_forwarded_for: false,
            checkout_max_per_minute_address: 300,
            checkout_max_per_minute_pool: 1200,
            churn_max_events: 10,
            churn_window_hours: 24,
            session_idle_minutes: 120,
            session_max_hours: 12,
            login_max_failures: 5,
            login_max_failures_address: 50,
            login_max_failures_everywhere: 100,
            login_window_minutes: 15,
            login_lockout_minutes: 1,
            login_max_lockout_minutes: 60,
            require_admin_second_factor: false,
            setup_link_hours: 24,
            history_retention_days: 400,
            log_format: LogFormat::Text,
            master_key: None,
            master_key_file: None,
            metrics_token: None,
            metrics_listen: None,
            webhook_sender: true,
            webhook_ca_file: None,
            webhook_private_addresses: false,
            smtp_url: None,
            mail_from: None,
            expiry_reminder_days: 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// What each setting means, in the order the README lists them.
pub const SETTINGS: &[(&str, &str)] = &[
    ("listen", "address and port to listen on"),
    (
        "port",
        "port to listen on, overriding the one in LICENTIA_LISTEN",
    ),
    (
        "database_url",
        "sqlite:… file, or postgres://user:pass@host/db",
    ),
    ("db_max_connections", "size of the database connection pool"),
    (
        "public_url",
        "URL people use to reach the portal; https:// turns on Secure cookies",
    ),
    (
        "site_root",
        "directory holding the built portal files (pkg/, favicon.ico)",
    ),
    (
        "trust_forwarded_for",
        "take the caller's address from X-Forwarded-For",
    ),
    (
        "checkout_max_per_minute_address",
        "floating checkouts naming no pool (unknown keys) one address (an IPv6 /64) may make a \
         minute; past it, all its checkouts get 429",
    ),
    (
        "checkout_max_per_minute_pool",
        "floating checkouts one pool takes a minute; past it, 429",
    ),
    (
        "churn_max_events",
        "activations + removals one licence allows per churn window",
    ),
    ("churn_window_hours", "the anti-churn window"),
    (
        "session_idle_minutes",
        "a portal session unused this long ends",
    ),
    (
        "session_max_hours",
        "a portal session ends this long after sign-in",
    ),
    (
        "login_max_failures",
        "failed sign-ins to one account from one address (an IPv6 /64) that lock that pair",
    ),
    (
        "login_max_failures_address",
        "failed sign-ins from one address, to any accounts, that lock the address",
    ),
    (
        "login_max_failures_everywhere",
        "failed sign-ins to one account from all addresses together that lock it everywhere",
    ),
    (
        "login_window_minutes",
        "window in which failed sign-ins are counted",
    ),
    (
        "login_lockout_minutes",
        "how long a first lock lasts; each further lock in a row lasts twice as long",
    ),
    ("login_max_lockout_minutes", "the longest a lock lasts"),
    (
        "require_admin_second_factor",
        "administrators must use a second factor (an authenticator app): until they set one \
         up they may only do that",
    ),
    (
        "setup_link_hours",
        "how long the first-administrator setup link printed at start works",
    ),
    (
        "history_retention_days",
        "how long ended seats stay in the session history before a job deletes them (62 to \
         36500)",
    ),
    ("log_format", "how log lines are written: text or json"),
    (
        "master_key",
        "base64 of 32 bytes that encrypt the signing keys; overrides the key file",
    ),
    (
        "master_key_file",
        "file holding the master key; created (mode 600) when missing. Default: \
         ~/.config/licentia/master.key, outside the data directory",
    ),
    (
        "metrics_token",
        "the bearer token that opens GET /metrics on the main address (16 characters or more); \
         unset: not served there",
    ),
    (
        "metrics_listen",
        "an address of its own for GET /metrics, without a token (keep it off the internet)",
    ),
    (
        "webhook_sender",
        "whether this server sends webhook deliveries (turn it off on replicas that should not)",
    ),
    (
        "webhook_ca_file",
        "PEM certificates trusted for https webhook receivers beside the public roots",
    ),
    (
        "webhook_private_addresses",
        "allow webhooks to loopback, private and link-local addresses (off: the server's own \
         network is not reachable through a webhook)",
    ),
    (
        "smtp_url",
        "the SMTP server invitations, password reset links and expiry reminders are sent through: \
         smtp://host:25, smtp://user:password@host:587?tls=required or smtps://…:465; unset: \
         administrators are shown the links to pass on, and nobody can reset their own password",
    ),
    (
        "mail_from",
        "the sender of those messages, e.g. Licentia <licences@example.com> (needed with \
         LICENTIA_SMTP_URL)",
    ),
    (
        "expiry_reminder_days",
        "remind each client's contact e-mail of their licences ending within this many days \
         (1 to 365; one letter per client, each licence once per end date; needs \
         LICENTIA_SMTP_URL); 0: no reminders",
    ),
];

/// The mail server, if one is set: it needs a sender and the public URL (the links it sends
/// start with it; a request's Host header never decides where a reset link points).
fn mailer(
    url: Option<&SecretString>,
    from: Option<&str>,
    has_public_url: bool,
) -> anyhow::Result<Option<licensing::mail::Mailer>> {
    let Some(url) = url
        .map(|u| u.expose_secret().trim())
        .filter(|u| !u.is_empty())
    else {
        return Ok(None);
    };
    let Some(from) = from.map(str::trim).filter(|f| !f.is_empty()) else {
        bail!(
            "{} needs {} (the sender of the messages)",
            variable("smtp_url"),
            variable("mail_from")
        );
    };
    if !has_public_url {
        bail!(
            "{} needs {} (the links it sends start with it)",
            variable("smtp_url"),
            variable("public_url")
        );
    }
    licensing::mail::Mailer::new(url, from)
        .map(Some)
        .map_err(|e| anyhow::anyhow!("{}: {e}", variable("smtp_url")))
}

/// The environment variable of a setting.
pub fn variable(key: &str) -> String {
    match key {
        "database_url" => "DATABASE_URL".to_owned(),
        _ => format!("LICENTIA_{}", key.to_uppercase()),
    }
}

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
    pub jobs: crate::jobs::JobSettings,
    pub metrics_token: Option<SecretString>,
    pub metrics_listen: Option<SocketAddr>,
    /// How webhooks are sent; none: this server sends none.
    pub webhooks: Option<crate::webhooks::Sender>,
    /// How mail is sent; none: it is not (links are shown to administrators instead).
    pub mailer: Option<licensing::mail::Mailer>,
}

/// Where the key that encrypts signing keys comes from. A key given directly is never printed.
#[derive(Clone, Debug)]
pub enum MasterKeySource {
    /// Given directly (base64), e.g. to several replicas sharing a PostgreSQL database.
    Value(SecretString),
    /// A file named by the settings, created on first start.
    File(PathBuf),
    /// `~/.config/licentia/master.key` (`$XDG_CONFIG_HOME/licentia/…` when set): away from the
    /// data directory, so one copy of `data/` does not hold both the sealed signing keys and
    /// what opens them. Refused while a key sits at the old default, `data/master.key`, beside
    /// the database.
    Default,
}

/// Where the master key was kept by default before it moved out of the data directory.
const OLD_DEFAULT_KEY_FILE: &str = "data/master.key";

/// The default master key file for a user whose home and config directories are these.
fn default_key_file(home: Option<&str>, xdg_config: Option<&str>) -> anyhow::Result<PathBuf> {
    let config = match (
        xdg_config.filter(|d| !d.is_empty()),
        home.filter(|d| !d.is_empty()),
    ) {
        (Some(dir), _) => PathBuf::from(dir),
        (None, Some(home)) => PathBuf::from(home).join(".config"),
        (None, None) => bail!(
            "neither HOME nor XDG_CONFIG_HOME is set, so the master key has no default place: \
             set LICENTIA_MASTER_KEY_FILE (outside the data directory) or LICENTIA_MASTER_KEY"
        ),
    };
    Ok(config.join("licentia").join("master.key"))
}

/// Refuses to go on with the default key place while a key still sits at the old one.
fn refuse_old_default(old: &std::path::Path, new: &std::path::Path) -> anyhow::Result<()> {
    if old.exists() {
        bail!(
            "the master key is at {}, beside the database: one copy of that directory would hold \
             both the signing keys and the key that opens them. Move it out of the data \
             directory (mkdir -p -m 700 {} && mv {} {}), or set LICENTIA_MASTER_KEY_FILE={} to \
             keep it there knowingly",
            old.display(),
            new.parent()
                .map_or_else(|| ".".into(), |d| d.display().to_string()),
            old.display(),
            new.display(),
            old.display()
        );
    }
    Ok(())
}

impl MasterKeySource {
    pub fn load(&self) -> anyhow::Result<licensing::keys::MasterKey> {
        match self {
            MasterKeySource::Value(v) => licensing::keys::MasterKey::from_base64(v.expose_secret())
                .map_err(|e| anyhow::anyhow!("LICENTIA_MASTER_KEY: {e}")),
            MasterKeySource::File(path) => licensing::keys::MasterKey::load_or_create(path)
                .map_err(|e| anyhow::anyhow!("LICENTIA_MASTER_KEY_FILE: {e}")),
            MasterKeySource::Default => {
                let home = std::env::var("HOME").ok();
                let xdg = std::env::var("XDG_CONFIG_HOME").ok();
                let path = default_key_file(home.as_deref(), xdg.as_deref())?;
                refuse_old_default(std::path::Path::new(OLD_DEFAULT_KEY_FILE), &path)?;
                licensing::keys::MasterKey::load_or_create(&path)
                    .map_err(|e| anyhow::anyhow!("the master key file: {e}"))
            }
        }
    }
}

fn read_file(path: &std::path::Path) -> anyhow::Result<toml::Table> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the configuration file {}", path.display()))?;
    let table: toml::Table = text.parse().with_context(|| {
        format!(
            "the configuration file {} is not valid TOML",
            path.display()
        )
    })?;
    if let Some(unknown) = table
        .keys()
        .find(|k| !SETTINGS.iter().any(|(key, _)| key == k))
    {
        let known: Vec<&str> = SETTINGS.iter().map(|(key, _)| *key).collect();
        bail!(
            "unknown setting {unknown:?} in {}; known settings: {}",
            path.display(),
            known.join(", ")
        );
    }
    Ok(table)
}

/// What a setting is, for messages: its variable, and where its value came from.
fn whence(key: &str, from_file: bool) -> String {
    if from_file {
        format!("{} (`{key}` in the configuration file)", variable(key))
    } else {
        variable(key)
    }
}

/// Whether `value` is one that the setting `key` takes; the reason if not.
fn accepts(key: &str, value: &toml::Value) -> Result<(), String> {
    Settings::deserialize(toml::Table::from_iter([(key.to_owned(), value.clone())]))
        .map(drop)
        .map_err(|e| e.message().to_owned())
}

/// A setting written as text (all of the environment's, and quoted values in the file): trimmed,
/// empty meaning "the default", and read as what the setting is — text, or the whole number or
/// true/false it spells by Rust's rules (so `090` is 90, and `0x1F` or `5 # note` are refused).
fn read_text(key: &str, text: &str, from_file: bool) -> anyhow::Result<Option<toml::Value>> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let candidates = [
        text.parse::<i64>().ok().map(toml::Value::Integer),
        text.parse::<bool>().ok().map(toml::Value::Boolean),
    ];
    let as_text = toml::Value::String(text.to_owned());
    let reason = match accepts(key, &as_text) {
        Ok(()) => return Ok(Some(as_text)),
        Err(reason) => reason,
    };
    if let Some(value) = candidates
        .into_iter()
        .flatten()
        .find(|v| accepts(key, v).is_ok())
    {
        return Ok(Some(value));
    }
    Err(refused(key, text, from_file, &reason))
}

fn refused(key: &str, shown: &str, from_file: bool, reason: &str) -> anyhow::Error {
    let meaning = SETTINGS
        .iter()
        .find(|(k, _)| *k == key)
        .map_or("", |(_, m)| *m);
    // The master key is never repeated back, even when it is malformed.
    let shown = if key == "master_key" || key == "metrics_token" {
        "(hidden)"
    } else {
        shown
    };
    anyhow::anyhow!(
        "{} is not valid: {shown:?} ({reason}). The setting: {meaning}.",
        whence(key, from_file)
    )
}

/// The certificates of a PEM file: at least one, or the file is refused with its name.
fn webhook_roots(path: &std::path::Path) -> anyhow::Result<Vec<reqwest::Certificate>> {
    let pem = std::fs::read(path).with_context(|| {
        format!(
            "cannot read {} ({})",
            path.display(),
            variable("webhook_ca_file")
        )
    })?;
    let roots = reqwest::Certificate::from_pem_bundle(&pem)
        .ok()
        .unwrap_or_default();
    if roots.is_empty() {
        bail!(
            "{} holds no PEM certificate ({})",
            path.display(),
            variable("webhook_ca_file")
        );
    }
    Ok(roots)
}

fn at_least_one(key: &str, n: i64) -> anyhow::Result<i64> {
    if n < 1 {
        bail!("{} must be at least 1, got {n}", variable(key));
    }
    Ok(n)
}

impl Settings {
    /// The environment over the file over the defaults. A value of the wrong kind is refused
    /// naming its variable.
    pub fn from_sources(env: &BTreeMap<String, String>, file: toml::Table) -> anyhow::Result<Self> {
        // A setting whose meaning changed is refused rather than read the new way.
        let old = "login_max_failures_account";
        if env.contains_key(&variable(old)) || file.contains_key(old) {
            bail!(
                "{} is no longer read: failures per account are now counted per address \
                 ({}, default 5) and from all addresses together ({}, default 100). Set those \
                 instead.",
                variable(old),
                variable("login_max_failures"),
                variable("login_max_failures_everywhere")
            );
        }
        let mut merged = toml::Table::new();
        for (key, value) in file {
            let value = match value {
                toml::Value::String(text) => read_text(&key, &text, true)?,
                other => {
                    accepts(&key, &other)
                        .map_err(|reason| refused(&key, &other.to_string(), true, &reason))?;
                    Some(other)
                }
            };
            if let Some(value) = value {
                merged.insert(key, value);
            }
        }
        for (key, _) in SETTINGS {
            // A variable that is set wins over the file, even empty (then the default holds).
            if let Some(text) = env.get(&variable(key)) {
                merged.remove(*key);
                if let Some(value) = read_text(key, text, false)? {
                    merged.insert((*key).to_owned(), value);
                }
            }
        }
        Ok(Settings::deserialize(merged)?)
    }

    /// Checks what a type cannot and shapes the settings for the services.
    pub fn into_config(self) -> anyhow::Result<Config> {
        let mut listen = self.listen;
        if let Some(port) = self.port {
            listen.set_port(port);
        }
        licensing::Backend::from_url(&self.database_url).context("DATABASE_URL")?;
        if self.db_max_connections == 0 {
            bail!("LICENTIA_DB_MAX_CONNECTIONS must be at least 1");
        }
        let public_url = self
            .public_url
            .map(|u| u.trim().trim_end_matches('/').to_owned())
            .filter(|u| !u.is_empty());
        if let Some(url) = &public_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                bail!("LICENTIA_PUBLIC_URL must start with http:// or https://, got {url:?}");
            }
        }
        let window = at_least_one("login_window_minutes", self.login_window_minutes)? * 60;
        let lockout = at_least_one("login_lockout_minutes", self.login_lockout_minutes)? * 60;
        let max_lockout =
            at_least_one("login_max_lockout_minutes", self.login_max_lockout_minutes)? * 60;
        let policy = |name: &str, max: i64| -> anyhow::Result<Policy> {
            Ok(Policy {
                max_failures: at_least_one(name, max)?,
                window_secs: window,
                lockout_secs: lockout,
                max_lockout_secs: max_lockout.max(lockout),
            })
        };
        let auth = AuthSettings {
            session_idle_secs: at_least_one("session_idle_minutes", self.session_idle_minutes)?
                * 60,
            session_absolute_secs: at_least_one("session_max_hours", self.session_max_hours)?
                * 3600,
            throttles: Throttles {
                pair: policy("login_max_failures", self.login_max_failures)?,
                address: policy(
                    "login_max_failures_address",
                    self.login_max_failures_address,
                )?,
                account: policy(
                    "login_max_failures_everywhere",
                    self.login_max_failures_everywhere,
                )?,
            },
            checkout_limits: licensing::floating::rate::CheckoutLimits {
                per_address: at_least_one(
                    "checkout_max_per_minute_address",
                    self.checkout_max_per_minute_address,
                )?,
                per_pool: at_least_one(
                    "checkout_max_per_minute_pool",
                    self.checkout_max_per_minute_pool,
                )?,
            },
            churn: ChurnPolicy {
                max_events: at_least_one("churn_max_events", self.churn_max_events)?,
                window_secs: at_least_one("churn_window_hours", self.churn_window_hours)? * 3600,
            },
            setup_link_secs: at_least_one("setup_link_hours", self.setup_link_hours)? * 3600,
            admin_second_factor: self.require_admin_second_factor,
        };
        let mailer = mailer(
            self.smtp_url.as_ref(),
            self.mail_from.as_deref(),
            public_url.is_some(),
        )?;
        let sends_mail = mailer.is_some();
        Ok(Config {
            listen,
            database_url: self.database_url,
            db_max_connections: self.db_max_connections,
            public_url,
            site_root: self.site_root,
            trust_forwarded_for: self.trust_forwarded_for,
            auth,
            log_json: self.log_format == LogFormat::Json,
            metrics_token: match self
                .metrics_token
                .filter(|t| !t.expose_secret().trim().is_empty())
            {
                Some(t) if t.expose_secret().trim().len() < 16 => bail!(
                    "{} must be at least 16 characters: it is all that guards the metrics",
                    variable("metrics_token")
                ),
                Some(t) => Some(t.expose_secret().trim().into()),
                None => None,
            },
            metrics_listen: self.metrics_listen,
            mailer,
            webhooks: match self.webhook_sender {
                false => None,
                true => {
                    let roots = match &self.webhook_ca_file {
                        None => Vec::new(),
                        Some(path) => webhook_roots(path)?,
                    };
                    Some(
                        crate::webhooks::Sender::new(self.webhook_private_addresses, &roots)
                            .with_context(|| {
                                format!(
                                    "cannot prepare the webhook client (is {} a file of \
                                     CA certificates?)",
                                    variable("webhook_ca_file")
                                )
                            })?,
                    )
                }
            },
            jobs: crate::jobs::JobSettings {
                history_retention_days: {
                    let (min, max) = (
                        licensing::floating::MIN_RETENTION_DAYS,
                        licensing::floating::MAX_RETENTION_DAYS,
                    );
                    if !(min..=max).contains(&self.history_retention_days) {
                        bail!(
                            "{} must be {min} to {max} days (a month's casual usage report needs \
                             the month and the one before it whole), got {}",
                            variable("history_retention_days"),
                            self.history_retention_days
                        );
                    }
                    self.history_retention_days
                },
                expiry_reminder_days: match self.expiry_reminder_days {
                    0 => None,
                    d @ 1..=365 if !sends_mail => bail!(
                        "{} = {d} needs a mail server to send the reminders through: set {} \
                         and {} too (or 0 for no reminders)",
                        variable("expiry_reminder_days"),
                        variable("smtp_url"),
                        variable("mail_from")
                    ),
                    d @ 1..=365 => Some(d),
                    d => bail!(
                        "{} must be 1 to 365 days, or 0 for no reminders, got {d}",
                        variable("expiry_reminder_days")
                    ),
                },
            },
            master_key: match self
                .master_key
                .filter(|k| !k.expose_secret().trim().is_empty())
            {
                Some(v) => MasterKeySource::Value(v.expose_secret().trim().into()),
                None => match self.master_key_file {
                    Some(path) => MasterKeySource::File(path),
                    None => MasterKeySource::Default,
                },
            },
        })
    }
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
            None => toml::Table::new(),
        };
        Settings::from_sources(&env, file)?.into_config()
    }

    pub fn secure_cookies(&self) -> bool {
        self.public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"))
    }

    /// A warning worth printing at start: the portal reachable from other machines over plain
    /// http, where passwords and session cookies cross the network readable by anyone on the way.
    pub fn plain_http_warning(&self, bound: SocketAddr) -> Option<String> {
        let url = self.public_url_for(bound);
        let https = url.starts_with("https://");
        (!https && !bound.ip().is_loopback()).then(|| {
            format!(
                "the portal is served over plain http ({url}) on {bound}, reachable from other \
                 machines: passwords and session cookies cross the network unencrypted. Put it \
                 behind a TLS proxy and set LICENTIA_PUBLIC_URL=https://…"
            )
        })
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

    #[test]
    fn the_master_key_defaults_outside_the_data_directory() {
        assert_eq!(
            default_key_file(Some("/home/ann"), None).expect("path"),
            PathBuf::from("/home/ann/.config/licentia/master.key")
        );
        assert_eq!(
            default_key_file(Some("/home/ann"), Some("/etc/ann")).expect("path"),
            PathBuf::from("/etc/ann/licentia/master.key")
        );
        assert!(default_key_file(None, None).is_err());
        assert!(default_key_file(Some(""), Some("")).is_err());
        // A key left at the old default, beside the database, stops the start with directions.
        let dir = tempfile::tempdir().expect("dir");
        let old = dir.path().join("master.key");
        let new = dir.path().join("elsewhere/master.key");
        assert!(refuse_old_default(&old, &new).is_ok());
        std::fs::write(&old, "key").expect("write");
        let err = refuse_old_default(&old, &new)
            .expect_err("refused")
            .to_string();
        assert!(
            err.contains("LICENTIA_MASTER_KEY_FILE=") && err.contains("mv "),
            "{err}"
        );
    }

    #[test]
    fn plain_http_beyond_this_machine_is_warned_about() {
        let config = |url: Option<&str>| {
            let mut pairs = vec![];
            if let Some(url) = url {
                pairs.push(("LICENTIA_PUBLIC_URL", url));
            }
            Config::from_sources(env(&pairs), None).expect("valid")
        };
        let lan: SocketAddr = "0.0.0.0:3000".parse().expect("addr");
        let local: SocketAddr = "127.0.0.1:3000".parse().expect("addr");
        assert!(config(None).plain_http_warning(lan).is_some());
        assert!(config(Some("http://lic.example.test"))
            .plain_http_warning(lan)
            .is_some());
        assert!(config(None).plain_http_warning(local).is_none());
        assert!(config(Some("https://lic.example.test"))
            .plain_http_warning(lan)
            .is_none());
    }

    #[test]
    fn expiry_reminders_need_a_mail_server_and_a_sensible_period() {
        let config = |pairs: &[(&str, &str)]| Config::from_sources(env(pairs), None);
        let mail = [
            ("LICENTIA_SMTP_URL", "smtp://127.0.0.1:2525"),
            ("LICENTIA_MAIL_FROM", "Licentia <l@example.test>"),
            ("LICENTIA_PUBLIC_URL", "https://lic.example.test"),
        ];
        let err = config(&[("LICENTIA_EXPIRY_REMINDER_DAYS", "14")])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("LICENTIA_SMTP_URL"), "{err}");
        let with = |days: &str| {
            let mut pairs = mail.to_vec();
            pairs.push(("LICENTIA_EXPIRY_REMINDER_DAYS", days));
            config(&pairs).map(|c| c.jobs.expiry_reminder_days)
        };
        assert_eq!(with("14").expect("valid"), Some(14));
        assert_eq!(with("0").expect("valid"), None);
        assert!(with("366").is_err() && with("-1").is_err());
        assert_eq!(config(&[]).expect("valid").jobs.expiry_reminder_days, None);
    }

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
        let settings =
            Settings::from_sources(&env(&[("LICENTIA_MASTER_KEY", &key)]), toml::Table::new())
                .expect("valid");
        let printed = format!(
            "{c:?} {:?} {settings:?}",
            c.master_key.load().expect("loads")
        );
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
        assert_eq!(c.auth.throttles.pair.max_failures, 5);
        assert_eq!(c.auth.throttles.account.max_failures, 100);
        let old = Config::from_sources(env(&[("LICENTIA_LOGIN_MAX_FAILURES_ACCOUNT", "5")]), None);
        assert!(old.is_err_and(|e| e
            .to_string()
            .contains("LICENTIA_LOGIN_MAX_FAILURES_EVERYWHERE")));
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

    #[test]
    fn the_readme_shows_every_setting_with_its_default() {
        let readme = include_str!("../../README.md");
        let defaults = toml::Table::try_from(Settings::default()).expect("defaults serialise");
        for (key, _) in SETTINGS {
            let row = format!("| `{}` |", variable(key));
            let line = readme
                .lines()
                .find(|l| l.starts_with(&row))
                .unwrap_or_else(|| panic!("README has no row for {key}"));
            if let Some(value) = defaults.get(*key) {
                let shown = match value {
                    toml::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                assert!(
                    line.contains(&format!("| `{shown}` |")),
                    "{line} should show {shown}"
                );
            }
        }
    }

    #[test]
    fn text_reads_as_what_the_setting_is() {
        let dir = std::env::temp_dir().join(format!("licentia-config-text-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("licentia.toml");
        std::fs::write(
            &path,
            "port = \"8080\"\nlisten = \" 0.0.0.0:3000 \"\ntrust_forwarded_for = \"true\"\n\
             log_format = \"\"\nsite_root = \"\"\nsession_idle_minutes = \"090\"\n",
        )
        .expect("write");
        let c = Config::from_sources(
            env(&[("LICENTIA_MASTER_KEY_FILE", "2024")]),
            Some(path.clone()),
        )
        .expect("valid");
        assert_eq!(c.listen.to_string(), "0.0.0.0:8080");
        assert!(c.trust_forwarded_for);
        assert!(!c.log_json);
        // Empty means the default, never "the working directory".
        assert_eq!(c.site_root, PathBuf::from("target/site"));
        assert_eq!(c.auth.session_idle_secs, 90 * 60);
        assert!(
            matches!(c.master_key, MasterKeySource::File(ref p) if p == &PathBuf::from("2024"))
        );
        assert!(matches!(
            Config::from_sources(env(&[]), None)
                .expect("defaults")
                .master_key,
            MasterKeySource::Default
        ));
        // A variable set to nothing puts the default back over the file.
        let c = Config::from_sources(env(&[("LICENTIA_PORT", "")]), Some(path)).expect("valid");
        assert_eq!(c.listen.port(), 3000);
        for bad in ["0x1F", "5 # note", "1_000"] {
            let err = Config::from_sources(env(&[("LICENTIA_CHURN_MAX_EVENTS", bad)]), None)
                .expect_err(bad)
                .to_string();
            assert!(err.contains("LICENTIA_CHURN_MAX_EVENTS"), "{err}");
        }
        let err = Config::from_sources(env(&[("LICENTIA_MASTER_KEY", "12")]), None);
        if let Err(e) = err {
            assert!(!e.to_string().contains("\"12\""), "{e}");
        }
    }

    /// Captures the field names serde knows for `Settings`.
    struct Fields(Vec<&'static str>);

    impl<'de> serde::Deserializer<'de> for &mut Fields {
        type Error = serde::de::value::Error;
        fn deserialize_any<V: serde::de::Visitor<'de>>(
            self,
            _: V,
        ) -> Result<V::Value, Self::Error> {
            Err(serde::de::Error::custom("only structs"))
        }
        fn deserialize_struct<V: serde::de::Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            self.0 = fields.to_vec();
            Err(serde::de::Error::custom("captured"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
            ignored_any
        }
    }

    #[test]
    fn every_setting_is_described_and_read_from_its_variable() {
        let mut fields = Fields(Vec::new());
        assert!(Settings::deserialize(&mut fields).is_err());
        let described: Vec<&str> = SETTINGS.iter().map(|(k, _)| *k).collect();
        assert_eq!(fields.0, described);
    }
}
