//! The Licentia client library: what a protected application embeds to activate its licence,
//! verify it offline, validate it now and then, and remove it. It has no server dependencies; it
//! speaks the Web API over HTTP and keeps its state in one small JSON file per product.

pub mod borrow;
pub mod floating;
mod machine;
pub mod srv;
mod store;
mod trust;

pub use machine::machine_identity;
pub use store::{HeldBorrow, Integrity, Loan, Memory, Pending, PendingBorrow, Store, Vouched};
pub use trust::Trust;

use protocol::activation::{self as code, Claims, CodeError, Request};
use protocol::application::{
    ActivateRequest, CodeAnswer, LicenceRef, RemoveRequest, ValidateRequest,
};
use protocol::problem::Problem;
pub use protocol::problem::ProblemKind;
use std::time::{SystemTime, UNIX_EPOCH};

pub use protocol::activation::VALIDATION_GRACE_SECS;

/// How far the clock may seem to go back (time zone or NTP corrections) before it counts as set back.
pub const CLOCK_TOLERANCE_SECS: i64 = 300;

/// How far the clock must have moved on since the latest time written on disk (state and
/// witness) before an offline check writes it again: checks a second apart write nothing, and
/// the time on disk is never more than this behind the latest check, so a clock set back —
/// within a run or across restarts — is still refused once it goes back past
/// [`CLOCK_TOLERANCE_SECS`] plus this.
pub const LAST_SEEN_STEP_SECS: i64 = 60;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server refused, with its reason (`detail` of its problem+json answer) and the kind
    /// of refusal, so that an application can tell waiting (all seats are taken) from giving
    /// up (no key fits this release).
    #[error("{detail}")]
    Refused {
        kind: ProblemKind,
        status: u16,
        detail: String,
    },
    /// The serial number this machine was activated with was revoked: the application should ask
    /// for the replacement serial and activate with it. The stored code is dropped.
    #[error("{0}")]
    SerialRevoked(String),
    #[error("the licence server at {server} cannot be reached: {reason}")]
    Unreachable { server: String, reason: String },
    #[error("{0}")]
    Code(#[from] CodeError),
    #[error("no licence is activated on this machine for {0}; run activate first")]
    NotActivated(String),
    #[error(
        "the system clock is set back: it says {now}, but this machine has already seen {seen} \
         (a licence check, or a code the server signed then); correct the clock and try again"
    )]
    ClockSetBack { now: String, seen: String },
    #[error("{0}")]
    Offline(String),
    /// The machine's clock is well behind the time the server signed its code.
    #[error(
        "this machine's clock says {now}, but the licence server signed its code at {signed}: \
         the clock is behind; correct it and try again"
    )]
    ClockBehind { now: String, signed: String },
    /// A server offered an endorsement of the vendor's keys older than one already seen.
    #[error(
        "the server offered the vendor's keys as of {offered}, older than those this machine has \
         seen ({seen}): it is not the vendor's current server"
    )]
    StaleKeys { offered: String, seen: String },
    /// The state file is not the one this machine last saved: offline use waits for the next
    /// online check.
    #[error(
        "this machine's licence state {0}: offline use is refused until the licence is checked \
         with the server again (run validate while connected)"
    )]
    StateTampered(String),
    /// The application gave no keys to trust (neither the vendor's root key nor its signing
    /// keys), so no code can be checked.
    #[error(
        "this application does not pin the vendor's keys, so no licence code can be trusted: \
         give --root FILE (LICENTIA_ROOT: the root key `server keys root` prints, shipped with \
         the application) or --jwks FILE (LICENTIA_JWKS), or --trust-server-keys while developing"
    )]
    Untrusted,
    #[error("{0}")]
    Io(String),
}

impl Error {
    /// The kind of the server's refusal, if the server refused.
    pub fn kind(&self) -> Option<ProblemKind> {
        match self {
            Error::Refused { kind, .. } => Some(*kind),
            Error::SerialRevoked(_) => Some(ProblemKind::SerialRevoked),
            _ => None,
        }
    }

    /// The CLI's exit code: 2 for a licence problem, 3 when the server is unreachable, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Refused { .. }
            | Error::SerialRevoked(_)
            | Error::Code(_)
            | Error::NotActivated(_)
            | Error::ClockSetBack { .. }
            | Error::ClockBehind { .. }
            | Error::StaleKeys { .. }
            | Error::StateTampered(_)
            | Error::Offline(_) => 2,
            Error::Unreachable { .. } => 3,
            Error::Untrusted | Error::Io(_) => 1,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// 128 random bits, as text: what a request code carries for its answer to bring back.
fn random_nonce() -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut nonce = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(nonce)
}

/// How far behind the server's clock this machine's may be: clocks drift (weekly time sync,
/// resumed virtual machines), and a code signed a little in the future is no attack.
pub const SIGNED_TIME_TOLERANCE_SECS: i64 = 3_600;

/// A code signed (at `iat`) well after `now` means the clock is behind the server's (or was
/// set back).
fn refuse_future(iat: i64, now: i64) -> Result<()> {
    if now + SIGNED_TIME_TOLERANCE_SECS < iat {
        return Err(Error::ClockBehind {
            now: protocol::time::format_utc(now),
            signed: protocol::time::format_utc(iat),
        });
    }
    Ok(())
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The error a problem+json answer stands for (an answer that is not one is read by its status).
pub(crate) fn problem(status: u16, res: ureq::Response) -> Error {
    let mut p: Problem = res
        .into_json()
        .unwrap_or_else(|_| Problem::from_status(status));
    // The status the server sent rules over the one written in the body.
    p.status = status;
    let detail = [p.detail.trim(), p.title.trim()]
        .into_iter()
        .find(|t| !t.is_empty())
        .map_or_else(|| format!("the server answered {status}"), str::to_owned);
    match p.kind() {
        ProblemKind::SerialRevoked => Error::SerialRevoked(detail),
        kind => Error::Refused {
            kind,
            status,
            detail,
        },
    }
}

/// The licence servers a `--server` value names: a comma-separated list, tried in its order. An
/// entry `srv:_licentia._tcp.example.com` (`srv+http:` for plain HTTP) stands for the servers a
/// DNS SRV record names, looked up when a call is made (see [`srv`]).
pub fn server_list(list: Option<&str>) -> Vec<String> {
    list.unwrap_or("")
        .split(',')
        .map(|s| s.trim().trim_end_matches('/'))
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Sends `path` (a POST of `body`, or a GET without one) to each server in turn until one
/// answers: a connection that fails and a server error (5xx: a replica restarting, its database
/// away) move to the next; any other answer, a refusal (4xx) included, is the answer.
/// `Unreachable` only if none answered.
fn any_server<B: serde::Serialize>(
    agent: &ureq::Agent,
    servers: &[String],
    path: &str,
    body: Option<&B>,
) -> Result<ureq::Response> {
    let (targets, srv_failed) = srv::expand(servers);
    let mut last =
        srv_failed.unwrap_or_else(|| String::from("no licence server is configured (--server)"));
    for server in &targets {
        let url = format!("{server}{path}");
        let sent = match body {
            Some(body) => agent.post(&url).send_json(body),
            None => agent.get(&url).call(),
        };
        match sent {
            Ok(res) => return Ok(res),
            Err(ureq::Error::Status(status, _)) if status >= 500 => {
                last = format!("{server}: answered {status}");
            }
            Err(ureq::Error::Status(status, res)) => return Err(problem(status, res)),
            Err(ureq::Error::Transport(t)) => last = format!("{server}: {t}"),
        }
    }
    Err(Error::Unreachable {
        server: servers.join(", "),
        reason: last,
    })
}

/// Posts `body` to the first of `servers` that answers (`any_server`); `None` for 204.
pub(crate) fn post_any(
    agent: &ureq::Agent,
    servers: &[String],
    path: &str,
    body: &impl serde::Serialize,
) -> Result<Option<ureq::Response>> {
    let res = any_server(agent, servers, path, Some(body))?;
    Ok((res.status() != 204).then_some(res))
}

/// GETs `path` from the first of `servers` that answers (`any_server`).
pub(crate) fn get_any(
    agent: &ureq::Agent,
    servers: &[String],
    path: &str,
) -> Result<ureq::Response> {
    any_server(agent, servers, path, None::<&()>)
}

/// What the user holds: a licence key (standard model) or a serial number (web model).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held<'a> {
    Key(&'a str),
    Serial(&'a str),
}

impl Held<'_> {
    fn text(&self) -> &str {
        match self {
            Held::Key(t) | Held::Serial(t) => t.trim(),
        }
    }

    /// The licence as the server is told of it, with the product: the server refuses a key
    /// of another product before binding it to this machine.
    fn licence(&self, product: &str) -> LicenceRef {
        match self {
            Held::Key(k) => LicenceRef::Key {
                licence_key: k.trim().to_owned(),
                product: Some(product.to_owned()),
            },
            Held::Serial(s) => LicenceRef::Serial {
                product: product.to_owned(),
                serial: s.trim().to_owned(),
            },
        }
    }
}

/// One product's licence on this machine.
pub struct Licensing {
    /// The licence servers, tried in this order (`server_list`).
    pub servers: Vec<String>,
    pub product: String,
    pub fingerprint: String,
    pub store: Store,
    /// What the application trusts (shipped with it); nothing is trusted without it.
    trust: Option<Trust>,
    /// The last endorsement verified against the pinned root, with its exact text: the state
    /// file's copy is verified again only when its text differs (an edit, a newer one).
    verified: Option<(String, protocol::trust::Endorsement)>,
    agent: ureq::Agent,
}

impl Licensing {
    /// `servers`: one licence server, or several separated by commas to fail over between.
    /// `machine_identity`: `None` reads the operating system's machine id; containers and virtual
    /// machines pass a stable identity of their own.
    pub fn new(
        servers: Option<&str>,
        product: &str,
        machine_identity: Option<&str>,
        store: Store,
    ) -> Result<Self> {
        let identity = match machine_identity {
            Some(id) => id.to_owned(),
            None => machine::machine_identity().map_err(Error::Io)?,
        };
        let fingerprint = code::fingerprint(product, &identity);
        let mut store = store;
        store.bind(&fingerprint);
        {
            // Read again under the lock if another process saved between the two reads.
            let _held = store.lock().map_err(Error::Io)?;
            if store.changed_on_disk() {
                store.reload().map_err(Error::Io)?;
            }
            Self::check_integrity(&mut store)?;
        }
        Ok(Self {
            servers: server_list(servers),
            product: product.to_owned(),
            fingerprint,
            store,
            trust: None,
            verified: None,
            agent: ureq::AgentBuilder::new()
                .timeout_connect(std::time::Duration::from_secs(10))
                .timeout(std::time::Duration::from_secs(30))
                .build(),
        })
    }

    /// Holds the store for one call and, for the outermost one, reads it again if another
    /// process — the CLI beside a running application — saved it since, and checks it.
    fn fresh(&mut self) -> Result<store::StoreLock> {
        let held = self.store.lock().map_err(Error::Io)?;
        if held.outermost() && self.store.changed_on_disk() {
            self.store.reload().map_err(Error::Io)?;
            Self::check_integrity(&mut self.store)?;
        }
        Ok(held)
    }

    /// Taints a state that is not the one this machine last saved, at once, in the state and
    /// its witness: no later command launders it.
    fn check_integrity(store: &mut Store) -> Result<()> {
        let why = match store.integrity() {
            Integrity::Intact => None,
            Integrity::Edited => Some("was changed outside the licensing client"),
            Integrity::Unsealed => Some(
                "was written by an older version of the licensing client, before states were \
                 sealed",
            ),
            Integrity::RolledBack => Some(
                "is older than the one this machine last saved (restored from a copy), or its \
                 witness is gone",
            ),
        };
        if let Some(why) = why {
            store.taint(why);
            // A pending offline answer must not bring back what the restored state held.
            store.state.pending = None;
            store.state.borrow_requests.clear();
            store.save().map_err(Error::Io)?;
        }
        Ok(())
    }

    fn servers(&self) -> Result<&[String]> {
        match self.servers.is_empty() {
            true => Err(Error::Offline(
                "no licence server is configured (--server)".into(),
            )),
            false => Ok(&self.servers),
        }
    }

    fn post(&self, path: &str, body: &impl serde::Serialize) -> Result<Option<String>> {
        Ok(self
            .post_json::<CodeAnswer>(path, body)?
            .map(|answer| answer.activation_code))
    }

    /// Posts `body`; the answer read as `T`, or `None` for 204 No Content.
    fn post_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &impl serde::Serialize,
    ) -> Result<Option<T>> {
        match post_any(&self.agent, self.servers()?, path, body)? {
            None => Ok(None),
            Some(res) => res
                .into_json()
                .map(Some)
                .map_err(|e| Error::Io(format!("the server's answer could not be read: {e}"))),
        }
    }

    /// Verifies a code the server has just given (signature, product, machine, dates) and keeps
    /// it. A code newer than any this machine accepted lifts a taint and may correct a clock that
    /// ran ahead; an older one (a replay) lifts nothing.
    fn accept(&mut self, activation_code: &str, held: Option<Held<'_>>) -> Result<Claims> {
        let claims = self.verify(activation_code)?;
        let (now, vouched, lifts) = self.vouch(claims.iat)?;
        code::check(&claims, &self.product, &self.fingerprint, now)?;
        if lifts {
            self.drop_tainted_holdings();
        }
        self.store.state.activation_code = Some(activation_code.to_owned());
        self.store.state.removal = None;
        if let Some(h) = held {
            self.store.state.licence_key = Some(h.text().to_owned());
            self.store.state.by_serial = matches!(h, Held::Serial(_));
        }
        // A code the server has just vouched for replaces whatever was there.
        self.store.save_with(vouched).map_err(Error::Io)?;
        Ok(claims)
    }

    /// What a code (or token) the server signed at `iat` says of this machine's state and
    /// clock, before it is kept: a code newer than any this machine accepted lifts a taint and
    /// confirms a clock that agrees with it; otherwise the clock must not be set back. The
    /// newest signed time is raised to `iat`; the caller saves with the answer. Also whether the
    /// code lifts a taint: the server then vouches for it alone, and the caller drops what the
    /// tainted state held beside it (`drop_tainted_holdings`) once every check has passed.
    fn vouch(&mut self, iat: i64) -> Result<(i64, Vouched, bool)> {
        let lifts = self.store.memory().tainted.is_some();
        let memory = self.store.memory();
        let fresh = iat > memory.newest_signed;
        if memory.tainted.is_some() && !fresh {
            return Err(Error::StateTampered(format!(
                "{}, and the code offered now is no newer than one it already had",
                memory.tainted.unwrap_or_default()
            )));
        }
        let now = now();
        refuse_future(iat, now)?;
        // A code the server signed just now agrees with this clock: a time that ran ahead
        // before (a clock glitch) is forgotten. Otherwise the clock must not be set back.
        let clock_confirmed = fresh && (iat - now).abs() <= SIGNED_TIME_TOLERANCE_SECS;
        if clock_confirmed {
            self.store.state.memory.last_seen = now;
        } else {
            self.checked_now()?;
        }
        let memory = &mut self.store.state.memory;
        memory.newest_signed = memory.newest_signed.max(iat);
        let vouched = Vouched {
            untaint: fresh,
            clock: clock_confirmed,
        };
        Ok((now, vouched, lifts))
    }

    /// What a restored or edited state held beside the code that lifts its taint goes: the
    /// activation code (activating again on this machine uses no further activation) and the
    /// mobile licences (their seats come back at their end). Requests made since stay.
    fn drop_tainted_holdings(&mut self) {
        self.store.state.activation_code = None;
        self.store.state.borrows.clear();
    }

    /// The current time, refusing a clock set back before a time this machine has already seen:
    /// its latest check (kept in the state and its witness), or the newest signed time of a code
    /// it accepted.
    pub fn checked_now(&mut self) -> Result<i64> {
        let _held = self.fresh()?;
        self.checked_now_held()
    }

    /// `checked_now` for a caller that holds the store already.
    fn checked_now_held(&mut self) -> Result<i64> {
        let now = now();
        let memory = self.store.memory();
        if now + CLOCK_TOLERANCE_SECS < memory.last_seen {
            return Err(Error::ClockSetBack {
                now: protocol::time::format_utc(now),
                seen: protocol::time::format_utc(memory.last_seen),
            });
        }
        if now + SIGNED_TIME_TOLERANCE_SECS < memory.newest_signed {
            return Err(Error::ClockBehind {
                now: protocol::time::format_utc(now),
                signed: protocol::time::format_utc(memory.newest_signed),
            });
        }
        self.store.state.memory.last_seen = memory.last_seen.max(now);
        Ok(now)
    }

    /// Refuses offline use of a state that is not the one this machine last saved.
    fn require_intact_state(&self) -> Result<()> {
        match self.store.memory().tainted {
            None => Ok(()),
            Some(why) => Err(Error::StateTampered(why)),
        }
    }

    /// Online activation.
    pub fn activate(&mut self, held: Held<'_>, hostname: &str) -> Result<Claims> {
        let _held = self.fresh()?;
        let body = ActivateRequest {
            licence: held.licence(&self.product).into(),
            fingerprint: self.fingerprint.clone(),
            hostname: hostname.to_owned(),
        };
        let code = self
            .post("/api/v1/activations", &body)?
            .ok_or_else(|| Error::Io("the server sent no activation code".into()))?;
        self.accept(&code, Some(held))
    }

    /// Offline activation, step 1: a request code to paste into the portal.
    pub fn request_code(&mut self, held: Held<'_>, hostname: &str) -> Result<String> {
        let _held = self.fresh()?;
        let nonce = random_nonce();
        let request = Request {
            prd: self.product.clone(),
            key: held.text().to_owned(),
            fp: self.fingerprint.clone(),
            host: hostname.to_owned(),
            nonce: nonce.clone(),
            t: self.checked_now()?,
        };
        self.store.state.pending = Some(Pending {
            nonce,
            licence_key: request.key.clone(),
            by_serial: matches!(held, Held::Serial(_)),
        });
        self.store.save().map_err(Error::Io)?;
        Ok(request.encode())
    }

    /// Offline activation, step 2: imports the response code the portal gave. It must answer this
    /// machine's pending request; once imported the request is spent.
    pub fn import(&mut self, response_code: &str) -> Result<Claims> {
        let _held = self.fresh()?;
        let pending = self.store.state.pending.clone().ok_or_else(|| {
            Error::Offline("there is no pending request on this machine: make a request code first (a response can be imported once)".into())
        })?;
        let claims = self.verify(response_code)?;
        if claims.req.as_deref() != Some(pending.nonce.as_str()) {
            return Err(Error::Offline(
                "this response code does not answer this machine's request".into(),
            ));
        }
        let held = if pending.by_serial {
            Held::Serial(&pending.licence_key)
        } else {
            Held::Key(&pending.licence_key)
        };
        let claims = self.accept(response_code, Some(held))?;
        self.store.state.pending = None;
        self.store.save().map_err(Error::Io)?;
        Ok(claims)
    }

    /// Offline transfer: gives the licence up on this machine and returns a removal code to paste
    /// into the portal, which frees the licence at once. The code is deleted here first; asked
    /// again, the same removal code is shown.
    pub fn removal_code(&mut self, hostname: &str) -> Result<String> {
        let _held = self.fresh()?;
        self.require_intact_state()?;
        if self.store.state.activation_code.is_none() {
            return self
                .store
                .state
                .removal
                .clone()
                .ok_or_else(|| Error::NotActivated(self.product.clone()));
        }
        let code = self.stored_code()?;
        let claims = self.verify(&code)?;
        if claims.prd != self.product || claims.fp != self.fingerprint {
            return Err(Error::Code(CodeError::WrongMachine));
        }
        let key = self.held_licence()?;
        let removal = code::RemovalCode {
            prd: self.product.clone(),
            key,
            act: claims.act,
            fp: self.fingerprint.clone(),
            host: hostname.to_owned(),
            t: self.checked_now()?,
            code: code::code_digest(&code),
        }
        .encode();
        // Given up: no pending offline answer may bring the licence back here either.
        self.store.state.activation_code = None;
        self.store.state.pending = None;
        self.store.state.removal = Some(removal.clone());
        self.store.save().map_err(Error::Io)?;
        Ok(removal)
    }

    /// The licence key (or serial) this machine was activated with.
    fn held_licence(&self) -> Result<String> {
        self.store
            .state
            .licence_key
            .clone()
            .ok_or_else(|| Error::NotActivated(self.product.clone()))
    }

    fn stored_code(&self) -> Result<String> {
        self.store
            .state
            .activation_code
            .clone()
            .ok_or_else(|| Error::NotActivated(self.product.clone()))
    }

    /// Offline check of the stored code.
    pub fn status(&mut self) -> Result<Claims> {
        let _held = self.fresh()?;
        self.require_intact_state()?;
        let code = self.stored_code()?;
        let claims = self.verify_with_kept_keys(&code)?;
        let now = self.checked_now_held()?;
        code::check(&claims, &self.product, &self.fingerprint, now)?;
        refuse_future(claims.iat, now)?;
        // Written when what is on disk is a minute behind, or keys were fetched meanwhile.
        if self.store.has_unsaved_changes()
            || now >= self.store.written_last_seen() + LAST_SEEN_STEP_SECS
        {
            self.store.save().map_err(Error::Io)?;
        }
        if now > claims.next + VALIDATION_GRACE_SECS {
            return Err(Error::Offline(format!(
                "the licence had to be validated with the server by {}: connect and run validate",
                protocol::time::format_utc(claims.next)
            )));
        }
        Ok(claims)
    }

    /// Online validation: a fresh code with the licence as it is now. If the server says the
    /// licence is gone, the stored code is dropped.
    pub fn validate(&mut self) -> Result<Claims> {
        let _held = self.fresh()?;
        let code = self.stored_code()?;
        let body = ValidateRequest {
            activation_code: code,
            fingerprint: self.fingerprint.clone(),
        };
        match self.post("/api/v1/activations/validate", &body) {
            Ok(Some(fresh)) => self.accept(&fresh, None),
            Ok(None) => Err(Error::Io("the server sent no activation code".into())),
            Err(e @ (Error::Refused { status: 410, .. } | Error::SerialRevoked(_))) => {
                self.store.state.activation_code = None;
                self.store.save().map_err(Error::Io)?;
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// Frees the licence on the server and on this machine.
    pub fn remove(&mut self) -> Result<()> {
        let _held = self.fresh()?;
        let key = self.held_licence()?;
        let held = if self.store.state.by_serial {
            Held::Serial(&key)
        } else {
            Held::Key(&key)
        };
        // The code goes with the request: giving it up frees the licence at once.
        let body = RemoveRequest {
            licence: held.licence(&self.product).into(),
            fingerprint: self.fingerprint.clone(),
            activation_code: self.store.state.activation_code.clone(),
        };
        self.post_json::<protocol::catalog::Removal>("/api/v1/activations/remove", &body)?;
        self.store.state.activation_code = None;
        self.store.save().map_err(Error::Io)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
