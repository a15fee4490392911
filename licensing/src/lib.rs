//! The server-side domain of Licentia: its rules, its storage and the services that the portal's
//! server functions, the Web API handlers and the admin CLI all call. Authorisation lives here too,
//! so every entry point applies the same checks.

pub mod accounts;
pub mod activation;
pub mod audit;
pub mod backup;
pub mod catalog;
pub mod clock;
mod csv;
mod dashboard;
pub mod db;
pub mod error;
pub mod exports;
pub mod floating;
pub mod keys;
mod listing;
pub mod mail;
pub mod page;
pub mod sites;
mod token;
pub mod web;
pub mod webhooks;

use std::sync::Arc;

pub use clock::Clock;
pub use db::{Backend, Database};
pub use error::{Error, Refusal, Result};
pub use protocol::account::{CurrentUser, Role};
/// Secrets the services hand out (a session token): read with `expose_secret()`.
pub use secrecy::{ExposeSecret, SecretString};

/// How long sessions live and when sign-in attempts are throttled. The server's configuration
/// holds the defaults.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// A session unused for this long ends.
    pub session_idle_secs: i64,
    /// A session ends this long after sign-in, however busy.
    pub session_absolute_secs: i64,
    /// When repeated failed sign-ins lock an account, an address, or the two together.
    pub throttles: accounts::throttle::Throttles,
    /// How long the first-administrator setup link printed at start stays valid.
    pub setup_link_secs: i64,
    /// How many checkouts a minute one address, and one pool, may make.
    pub checkout_limits: floating::rate::CheckoutLimits,
    /// How often a licence may move between machines (activations and removals).
    pub churn: activation::churn::ChurnPolicy,
    /// Administrators must have a second factor: until they set one up, they may do only that.
    pub admin_second_factor: bool,
}

/// The services, sharing one database pool, settings and clock. Cheap to clone.
#[derive(Clone)]
pub struct Licentia {
    db: Database,
    auth: Arc<AuthSettings>,
    clock: Clock,
    master_key: keys::MasterKey,
    /// Named as `iss` in activation codes: the server's public URL (also the start of the
    /// links sent by e-mail).
    issuer: Arc<str>,
    /// The SMTP server, when one is set up: without it, invitation and reset links are shown
    /// to the administrator to pass on.
    mailer: Option<Arc<mail::Mailer>>,
    /// Where resets asked for from the sign-in page wait for their worker (with a mailer only).
    resets: Option<tokio::sync::mpsc::Sender<accounts::links::ResetAsk>>,
    /// Signing keys as last decoded and decrypted, checked against the database at each use.
    key_cache: Arc<keys::KeyCache>,
}

impl Licentia {
    pub fn new(
        db: Database,
        auth: AuthSettings,
        clock: Clock,
        master_key: keys::MasterKey,
        issuer: &str,
    ) -> Self {
        Self {
            db,
            auth: Arc::new(auth),
            clock,
            master_key,
            issuer: issuer.into(),
            mailer: None,
            resets: None,
            key_cache: Arc::default(),
        }
    }

    /// Sends invitations and password reset links through `mailer` (and starts the worker that
    /// handles the resets people ask for: call it within the runtime).
    pub fn with_mailer(mut self, mailer: mail::Mailer) -> Self {
        self.mailer = Some(Arc::new(mailer));
        self.resets = Some(accounts::links::reset_worker());
        self
    }

    /// Whether e-mail can be sent (an SMTP server is set up).
    pub fn sends_mail(&self) -> bool {
        self.mailer.is_some()
    }

    pub fn db(&self) -> &Database {
        &self.db
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub fn auth_settings(&self) -> &AuthSettings {
        &self.auth
    }
}

/// An administrator who must set up a second factor (the server requires one) may do nothing
/// as an administrator until they have.
fn admin_in_force(actor: &CurrentUser) -> Result<()> {
    if actor.must_set_up_second_factor {
        return Err(Error::refused(
            accounts::second_factor::SET_UP_FIRST.to_owned(),
        ));
    }
    Ok(())
}

/// Whose data `actor` may list: `None` for an administrator (everyone's), the own client's id for
/// a client user.
pub fn client_scope(actor: &CurrentUser) -> Result<Option<i64>> {
    match actor.role {
        Role::Admin => admin_in_force(actor).map(|()| None),
        Role::Client => actor
            .client
            .as_ref()
            .map(|c| Some(c.id))
            .ok_or(Error::NotAllowed),
    }
}

/// Refuses anyone but an administrator.
pub fn require_admin(actor: &CurrentUser) -> Result<()> {
    match actor.role {
        Role::Admin => admin_in_force(actor),
        Role::Client => Err(Error::NotAllowed),
    }
}
