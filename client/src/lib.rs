//! The Licentia client library: what a protected application embeds to activate its licence,
//! verify it offline, validate it now and then, and remove it. It has no server dependencies; it
//! speaks the Web API over HTTP and keeps its state in one small JSON file per product.

pub mod floating;
mod machine;
mod store;

pub use machine::machine_identity;
pub use store::{Integrity, Memory, Pending, Store, Vouched};

use protocol::activation::{self as code, Claims, CodeError, JwkSet, Request};
use protocol::application::{
    ActivateRequest, CodeAnswer, LicenceRef, RemoveRequest, ValidateRequest,
};
use protocol::problem::Problem;
pub use protocol::problem::ProblemKind;
use protocol::trust;
use std::time::{SystemTime, UNIX_EPOCH};

pub use protocol::activation::VALIDATION_GRACE_SECS;

/// How far the clock may seem to go back (time zone or NTP corrections) before it counts as set back.
pub const CLOCK_TOLERANCE_SECS: i64 = 300;

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

/// How far behind the server's clock this machine's may be: clocks drift (weekly time sync,
/// resumed virtual machines), and a code signed a little in the future is no attack.
pub const SIGNED_TIME_TOLERANCE_SECS: i64 = 3_600;

/// A code signed well after `now` means the clock is behind the server's (or was set back).
fn refuse_future(claims: &Claims, now: i64) -> Result<()> {
    if now + SIGNED_TIME_TOLERANCE_SECS < claims.iat {
        return Err(Error::ClockBehind {
            now: protocol::time::format_utc(now),
            signed: protocol::time::format_utc(claims.iat),
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

/// Where the client's trust in the vendor's signing keys comes from.
#[derive(Debug, Clone)]
pub enum Trust {
    /// The signing keys themselves, shipped with the application.
    Keys(JwkSet),
    /// The vendor's root key, shipped with the application: signing keys are those it endorses.
    Root(JwkSet),
    /// Development only: the configured server's keys on first use, kept in the state file.
    ServerOnFirstUse,
}

/// One product's licence on this machine.
pub struct Licensing {
    pub server: Option<String>,
    pub product: String,
    pub fingerprint: String,
    pub store: Store,
    /// What the application trusts (shipped with it); nothing is trusted without it.
    trust: Option<Trust>,
    agent: ureq::Agent,
}

impl Licensing {
    /// `machine_identity`: `None` reads the operating system's machine id; containers and virtual
    /// machines pass a stable identity of their own.
    pub fn new(
        server: Option<&str>,
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
        let integrity = store.integrity();
        let why = match integrity {
            Integrity::Intact => None,
            Integrity::Edited => Some("was changed outside the licensing client"),
            Integrity::RolledBack => Some(
                "is older than the one this machine last saved (restored from a copy), or its \
                 witness is gone",
            ),
        };
        if let Some(why) = why {
            // Written down at once, in the state and its witness: no later command launders it.
            store.taint(why);
            store.save().map_err(Error::Io)?;
        }
        Ok(Self {
            server: server.map(|s| s.trim_end_matches('/').to_owned()),
            product: product.to_owned(),
            fingerprint,
            store,
            trust: None,
            agent: ureq::AgentBuilder::new()
                .timeout_connect(std::time::Duration::from_secs(10))
                .timeout(std::time::Duration::from_secs(30))
                .build(),
        })
    }

    fn server(&self) -> Result<&str> {
        self.server
            .as_deref()
            .ok_or_else(|| Error::Offline("no licence server is configured (--server)".into()))
    }

    fn post(&self, path: &str, body: &impl serde::Serialize) -> Result<Option<String>> {
        let server = self.server()?;
        match self.agent.post(&format!("{server}{path}")).send_json(body) {
            Ok(res) if res.status() == 204 => Ok(None),
            Ok(res) => {
                let answer: CodeAnswer = res.into_json().map_err(|e| {
                    Error::Io(format!("the server's answer could not be read: {e}"))
                })?;
                Ok(Some(answer.activation_code))
            }
            Err(ureq::Error::Status(status, res)) => Err(problem(status, res)),
            Err(ureq::Error::Transport(t)) => Err(Error::Unreachable {
                server: server.to_owned(),
                reason: t.to_string(),
            }),
        }
    }

    /// Trusts exactly these signing keys (the vendor's JWKS shipped inside the application).
    /// A key rotation on the server then needs a new build of the application; pinning the
    /// root key (`with_root`) does not.
    pub fn with_jwks(mut self, keys: JwkSet) -> Self {
        self.trust = Some(Trust::Keys(keys));
        self
    }

    /// Trusts the signing keys that the vendor's root key endorses (`server keys root` prints
    /// it; ship it inside the application). Endorsements come from the server and are kept in
    /// the state file, but each is verified against this root whenever it is used.
    pub fn with_root(mut self, roots: JwkSet) -> Self {
        self.trust = Some(Trust::Root(roots));
        self
    }

    /// Development only: trusts whatever keys the configured server publishes, kept in the
    /// state file after the first use. Anyone who can edit that file, or answer in the
    /// server's place on the first use, can then make codes this client accepts.
    pub fn trusting_server_keys(mut self) -> Self {
        self.trust = Some(Trust::ServerOnFirstUse);
        self
    }

    /// The signing keys to verify codes with, as the application's trust allows, without those
    /// the vendor has withdrawn.
    pub fn jwks(&mut self) -> Result<JwkSet> {
        let mut keys = match &self.trust {
            None => return Err(Error::Untrusted),
            Some(Trust::Keys(keys)) => keys.clone(),
            Some(Trust::Root(roots)) => {
                let newest = self.store.memory().newest_endorsed;
                let kept = self.store.state.endorsement.as_deref();
                match kept.map(|jws| trust::verify_endorsement(jws, roots)) {
                    Some(Ok(endorsed)) if endorsed.iat >= newest => endorsed.keys,
                    // Missing, not the root's (edited), or older than one seen: fetch anew.
                    _ => self.refresh_jwks()?,
                }
            }
            Some(Trust::ServerOnFirstUse) => match self.store.state.jwks.clone() {
                Some(keys) => keys,
                None => self.refresh_jwks()?,
            },
        };
        let retired = self.store.memory().retired;
        keys.keys.retain(|k| !retired.contains(&k.kid));
        Ok(keys)
    }

    fn refresh_jwks(&mut self) -> Result<JwkSet> {
        let Some(server) = self.server.clone() else {
            return Err(Error::Offline(
                "the vendor's current keys are needed to check this code: connect to the \
                 licence server (--server) once"
                    .into(),
            ));
        };
        let fetch = |path: &str| {
            self.agent
                .get(&format!("{server}{path}"))
                .call()
                .map_err(|e| Error::Unreachable {
                    server: server.clone(),
                    reason: e.to_string(),
                })
        };
        match &self.trust {
            Some(Trust::Root(roots)) => {
                let jws = fetch("/.well-known/licentia-keys.jws")?
                    .into_string()
                    .map_err(|e| Error::Io(format!("the server's keys could not be read: {e}")))?;
                // A server that cannot show the root's endorsement is not trusted, nor one that
                // shows an older endorsement than this machine has seen (it may list a key
                // withdrawn since).
                let endorsed = trust::verify_endorsement(&jws, roots)?;
                let newest = self.store.memory().newest_endorsed;
                if endorsed.iat < newest {
                    return Err(Error::StaleKeys {
                        offered: protocol::time::format_utc(endorsed.iat),
                        seen: protocol::time::format_utc(newest),
                    });
                }
                let memory = &mut self.store.state.memory;
                memory.newest_endorsed = endorsed.iat;
                for kid in endorsed.retired {
                    if !memory.retired.contains(&kid) {
                        memory.retired.push(kid);
                    }
                }
                self.store.state.endorsement = Some(jws.trim().to_owned());
                Ok(endorsed.keys)
            }
            Some(Trust::ServerOnFirstUse) => {
                let set: JwkSet = fetch("/.well-known/jwks.json")?
                    .into_json()
                    .map_err(|e| Error::Io(format!("the server's keys could not be read: {e}")))?;
                self.store.state.jwks = Some(set.clone());
                Ok(set)
            }
            Some(Trust::Keys(keys)) => Ok(keys.clone()),
            None => Err(Error::Untrusted),
        }
    }

    /// Checks a code's signature; a key the pinned root has endorsed since the last look is
    /// fetched once more.
    fn verify(&mut self, code: &str) -> Result<Claims> {
        let keys = self.jwks()?;
        let retired = self.store.memory().retired;
        match code::verify_signature(code, &keys) {
            Err(CodeError::UnknownKey(kid)) if retired.contains(&kid) => {
                Err(Error::Offline(format!(
                    "the licence code was signed with key {kid}, which the vendor has withdrawn: \
                     validate with the server (or activate again) for a new one"
                )))
            }
            Err(CodeError::UnknownKey(_))
                if self.server.is_some() && matches!(self.trust, Some(Trust::Root(_))) =>
            {
                let keys = self.refresh_jwks()?;
                Ok(code::verify_signature(code, &keys)?)
            }
            other => Ok(other?),
        }
    }

    /// Verifies a code the server has just given (signature, product, machine, dates) and keeps
    /// it. A code newer than any this machine accepted lifts a taint and may correct a clock that
    /// ran ahead; an older one (a replay) lifts nothing.
    fn accept(&mut self, activation_code: &str, held: Option<Held<'_>>) -> Result<Claims> {
        let claims = self.verify(activation_code)?;
        let memory = self.store.memory();
        let fresh = claims.iat > memory.newest_signed;
        if memory.tainted.is_some() && !fresh {
            return Err(Error::StateTampered(format!(
                "{}, and the code offered now is no newer than one it already had",
                memory.tainted.unwrap_or_default()
            )));
        }
        let now = now();
        refuse_future(&claims, now)?;
        // A code the server signed just now agrees with this clock: a time that ran ahead
        // before (a clock glitch) is forgotten. Otherwise the clock must not be set back.
        let clock_confirmed = fresh && (claims.iat - now).abs() <= SIGNED_TIME_TOLERANCE_SECS;
        if clock_confirmed {
            self.store.state.memory.last_seen = now;
        } else {
            self.checked_now()?;
        }
        code::check(&claims, &self.product, &self.fingerprint, now)?;
        let memory = &mut self.store.state.memory;
        memory.newest_signed = memory.newest_signed.max(claims.iat);
        self.store.state.activation_code = Some(activation_code.to_owned());
        if let Some(h) = held {
            self.store.state.licence_key = Some(h.text().to_owned());
            self.store.state.by_serial = matches!(h, Held::Serial(_));
        }
        // A code the server has just vouched for replaces whatever was there.
        self.store
            .save_with(Vouched {
                untaint: fresh,
                clock: clock_confirmed,
            })
            .map_err(Error::Io)?;
        Ok(claims)
    }

    /// The current time, refusing a clock set back before a time this machine has already seen:
    /// its latest check (kept in the state and its witness), or the newest signed time of a code
    /// it accepted.
    pub fn checked_now(&mut self) -> Result<i64> {
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
        use base64::Engine;
        use rand::RngCore;
        let mut nonce = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let nonce = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(nonce);
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
        }
        .encode();
        self.store.state.activation_code = None;
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
        self.require_intact_state()?;
        let code = self.stored_code()?;
        let keys = self.jwks()?;
        let retired = self.store.memory().retired;
        let claims = match code::verify_signature(&code, &keys) {
            Err(CodeError::UnknownKey(kid)) if retired.contains(&kid) => {
                return Err(Error::Offline(format!(
                    "the licence code was signed with key {kid}, which the vendor has withdrawn: \
                     validate with the server (or activate again) for a new one"
                )))
            }
            other => other?,
        };
        let now = self.checked_now()?;
        code::check(&claims, &self.product, &self.fingerprint, now)?;
        refuse_future(&claims, now)?;
        self.store.save().map_err(Error::Io)?;
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
        let key = self.held_licence()?;
        let held = if self.store.state.by_serial {
            Held::Serial(&key)
        } else {
            Held::Key(&key)
        };
        let body = RemoveRequest {
            licence: held.licence(&self.product).into(),
            fingerprint: self.fingerprint.clone(),
        };
        self.post("/api/v1/activations/remove", &body)?;
        self.store.state.activation_code = None;
        self.store.save().map_err(Error::Io)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;
    use protocol::activation::{sign, Jwk};
    use std::collections::BTreeMap;

    fn licensing(dir: &std::path::Path, machine: &str, code: &str) -> Licensing {
        let key = SigningKey::from_bytes(&[3u8; 32]);
        let mut store = Store::open_with_witness(dir, "CALC", &dir.join("witness")).expect("store");
        store.state.jwks = Some(JwkSet {
            keys: vec![Jwk::ed25519("k", &key.verifying_key())],
        });
        store.state.activation_code = Some(code.to_owned());
        Licensing::new(None, "CALC", Some(machine), store)
            .expect("licensing")
            .trusting_server_keys()
    }

    fn code(machine: &str, exp: Option<i64>) -> String {
        let claims = Claims {
            iss: "test".into(),
            sub: "KEY".into(),
            lic: 1,
            act: 1,
            prd: "CALC".into(),
            fp: code::fingerprint("CALC", machine),
            host: machine.into(),
            feat: vec!["print".into()],
            cnt: BTreeMap::new(),
            start: None,
            end: exp.map(|_| "2020-01-01".into()),
            iat: 0,
            nbf: None,
            exp,
            next: now() + 3_600,
            req: None,
        };
        sign(&claims, "k", &SigningKey::from_bytes(&[3u8; 32]))
    }

    #[test]
    fn a_valid_code_passes_offline() {
        let dir = tempfile::tempdir().expect("dir");
        let claims = licensing(dir.path(), "m1", &code("m1", None))
            .status()
            .expect("valid");
        assert_eq!(claims.feat, ["print"]);
    }

    #[test]
    fn another_machines_code_is_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let err = licensing(dir.path(), "m2", &code("m1", None))
            .status()
            .expect_err("other machine");
        assert!(matches!(err, Error::Code(CodeError::WrongMachine)), "{err}");
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn an_expired_code_is_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let err = licensing(dir.path(), "m1", &code("m1", Some(1_577_923_200)))
            .status()
            .expect_err("expired");
        assert!(matches!(err, Error::Code(CodeError::Expired(_))), "{err}");
    }

    #[test]
    fn a_changed_byte_is_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let good = code("m1", None);
        let mut bad = good.clone().into_bytes();
        let i = good.find('.').expect("dot") + 5;
        bad[i] = if bad[i] == b'A' { b'B' } else { b'A' };
        let bad = String::from_utf8(bad).expect("ascii");
        let err = licensing(dir.path(), "m1", &bad)
            .status()
            .expect_err("tampered");
        assert!(matches!(err, Error::Code(_)), "{err}");
    }

    #[test]
    fn an_overdue_validation_is_refused_offline() {
        let dir = tempfile::tempdir().expect("dir");
        let key = SigningKey::from_bytes(&[3u8; 32]);
        let mut claims = code::verify_signature(
            &code("m1", None),
            &JwkSet {
                keys: vec![Jwk::ed25519("k", &key.verifying_key())],
            },
        )
        .expect("valid");
        claims.next = now() - VALIDATION_GRACE_SECS - 60;
        let overdue = sign(&claims, "k", &key);
        let err = licensing(dir.path(), "m1", &overdue)
            .status()
            .expect_err("overdue");
        assert!(err.to_string().contains("had to be validated"), "{err}");
    }

    #[test]
    fn pinned_keys_are_the_only_ones_trusted() {
        let dir = tempfile::tempdir().expect("dir");
        // The state file's keys would accept the code; the application's own keys do not.
        let other = SigningKey::from_bytes(&[4u8; 32]);
        let mut l = licensing(dir.path(), "m1", &code("m1", None)).with_jwks(JwkSet {
            keys: vec![Jwk::ed25519("k", &other.verifying_key())],
        });
        assert!(matches!(
            l.status(),
            Err(Error::Code(CodeError::BadSignature))
        ));
    }

    #[test]
    fn a_clock_set_back_is_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let mut l = licensing(dir.path(), "m1", &code("m1", None));
        l.store.state.memory.last_seen = now() + 3_600;
        assert!(matches!(l.status(), Err(Error::ClockSetBack { .. })));
        // Within the tolerance, it is not.
        l.store.state.memory.last_seen = now() + CLOCK_TOLERANCE_SECS / 2;
        l.status().expect("small corrections are tolerated");
    }

    fn root_of(seed: u8) -> (SigningKey, JwkSet) {
        let root = SigningKey::from_bytes(&[seed; 32]);
        let set = JwkSet {
            keys: vec![Jwk::ed25519("root", &root.verifying_key())],
        };
        (root, set)
    }

    fn endorsement_of(keys: &[(&str, &SigningKey)], by: &SigningKey) -> String {
        protocol::trust::endorse(
            &protocol::trust::Endorsement {
                iss: "test".into(),
                iat: now(),
                retired: Vec::new(),
                keys: JwkSet {
                    keys: keys
                        .iter()
                        .map(|(kid, k)| Jwk::ed25519(kid, &k.verifying_key()))
                        .collect(),
                },
            },
            "root",
            by,
        )
    }

    #[test]
    fn nothing_is_trusted_unless_the_application_says_so() {
        let dir = tempfile::tempdir().expect("dir");
        let store = licensing(dir.path(), "m1", &code("m1", None)).store;
        // The state file holds keys that would verify the code, but nothing pins them.
        let mut l = Licensing::new(None, "CALC", Some("m1"), store).expect("licensing");
        let err = l.status().expect_err("untrusted");
        assert!(matches!(err, Error::Untrusted), "{err}");
        assert!(err.to_string().contains("--root FILE"), "{err}");
        assert_eq!(err.exit_code(), 1);
    }

    #[test]
    fn under_a_pinned_root_the_state_file_cannot_add_a_key() {
        let dir = tempfile::tempdir().expect("dir");
        let (root, roots) = root_of(7);
        let vendor = SigningKey::from_bytes(&[3u8; 32]);
        let mut l = licensing(dir.path(), "m1", &code("m1", None)).with_root(roots.clone());
        // A genuine endorsement of the vendor's key: the code passes offline.
        l.store.state.endorsement = Some(endorsement_of(&[("k", &vendor)], &root));
        l.status().expect("endorsed key");

        // Someone writes their own key into the state file and a code signed with it.
        let mine = SigningKey::from_bytes(&[9u8; 32]);
        let mut claims = code::verify_signature(
            &code("m1", None),
            &JwkSet {
                keys: vec![Jwk::ed25519("k", &vendor.verifying_key())],
            },
        )
        .expect("valid");
        claims.exp = None;
        claims.next = now() + 10 * 365 * 86_400;
        let forged_code = sign(&claims, "mine", &mine);
        l.store.state.activation_code = Some(forged_code.clone());
        l.store.state.jwks = Some(JwkSet {
            keys: vec![Jwk::ed25519("mine", &mine.verifying_key())],
        });
        // ... and an endorsement listing it, signed with their key under the root's name.
        l.store.state.endorsement = Some(endorsement_of(&[("k", &vendor), ("mine", &mine)], &mine));
        let err = l.status().expect_err("forged");
        // The forged endorsement is ignored; with no server to ask, nothing vouches for "mine".
        assert!(matches!(err, Error::Offline(_)), "{err}");

        // Even beside a genuine endorsement, the forged code names a key the root never endorsed.
        l.store.state.endorsement = Some(endorsement_of(&[("k", &vendor)], &root));
        let err = l.status().expect_err("forged");
        assert!(
            matches!(err, Error::Code(CodeError::UnknownKey(_))),
            "{err}"
        );
        // Re-signing the forged claims under the vendor's key id does not help either.
        l.store.state.activation_code = Some(sign(&claims, "k", &mine));
        let err = l.status().expect_err("forged");
        assert!(matches!(err, Error::Code(CodeError::BadSignature)), "{err}");
    }

    /// A machine whose state was saved once, as a real run leaves it, reopened from disk.
    fn saved(dir: &std::path::Path) -> Licensing {
        let mut l = licensing(dir, "m1", &code("m1", None));
        l.store.save().expect("save");
        reopen(dir)
    }

    fn reopen(dir: &std::path::Path) -> Licensing {
        let store = Store::open_with_witness(dir, "CALC", &dir.join("witness")).expect("store");
        Licensing::new(None, "CALC", Some("m1"), store)
            .expect("licensing")
            .trusting_server_keys()
    }

    #[test]
    fn a_state_edited_by_hand_is_refused_offline() {
        let dir = tempfile::tempdir().expect("dir");
        saved(dir.path()).status().expect("intact");
        let file = dir.path().join("calc.json");
        let text = std::fs::read_to_string(&file).expect("read");
        let mut state: serde_json::Value = serde_json::from_str(&text).expect("json");
        state["memory"]["last_seen"] = 0.into();
        std::fs::write(&file, state.to_string()).expect("write");
        let err = reopen(dir.path()).status().expect_err("edited");
        assert!(matches!(err, Error::StateTampered(_)), "{err}");
        assert!(err.to_string().contains("changed outside"), "{err}");
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn a_state_restored_from_an_older_copy_is_refused_offline() {
        let dir = tempfile::tempdir().expect("dir");
        let mut l = saved(dir.path());
        let file = dir.path().join("calc.json");
        let older = std::fs::read_to_string(&file).expect("read");
        l.status().expect("intact");
        std::fs::write(&file, &older).expect("restore");
        let err = reopen(dir.path()).status().expect_err("rolled back");
        assert!(matches!(err, Error::StateTampered(_)), "{err}");
        assert!(err.to_string().contains("older than"), "{err}");
        // Deleting the witness as well does not help: a sealed state without it is refused.
        std::fs::remove_dir_all(dir.path().join("witness")).expect("rm");
        let err = reopen(dir.path()).status().expect_err("no witness");
        assert!(matches!(err, Error::StateTampered(_)), "{err}");
        // Nor does deleting the state to start afresh while the witness remembers it.
        let dir = tempfile::tempdir().expect("dir");
        saved(dir.path());
        std::fs::remove_file(dir.path().join("calc.json")).expect("rm");
        assert!(reopen(dir.path()).store.memory().tainted.is_some());
    }

    #[test]
    fn a_state_from_another_machine_fails_its_seal() {
        let dir = tempfile::tempdir().expect("dir");
        saved(dir.path());
        let store = Store::open_with_witness(dir.path(), "CALC", &dir.path().join("witness"))
            .expect("store");
        let l = Licensing::new(None, "CALC", Some("m2"), store).expect("licensing");
        assert!(l
            .store
            .memory()
            .tainted
            .expect("tainted")
            .contains("changed outside"));
    }

    #[test]
    fn a_code_signed_after_the_local_clock_is_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let key = SigningKey::from_bytes(&[3u8; 32]);
        let keys = JwkSet {
            keys: vec![Jwk::ed25519("k", &key.verifying_key())],
        };
        let mut claims = code::verify_signature(&code("m1", None), &keys).expect("valid");
        claims.iat = now() + 86_400;
        let future = sign(&claims, "k", &key);
        let err = licensing(dir.path(), "m1", &future)
            .status()
            .expect_err("signed in the future");
        assert!(matches!(err, Error::ClockBehind { .. }), "{err}");
        // Once a code signed at a time was accepted, the clock may not go before it either
        // (beyond the drift clocks have).
        let mut l = licensing(dir.path(), "m1", &code("m1", None));
        l.store.state.memory.newest_signed = now() + 2 * SIGNED_TIME_TOLERANCE_SECS;
        assert!(matches!(l.status(), Err(Error::ClockBehind { .. })));
        l.store.state.memory.newest_signed = now() + SIGNED_TIME_TOLERANCE_SECS / 2;
        l.status()
            .expect("a clock a little behind the server's is drift, not an attack");
    }

    /// A code for machine m1 signed at `iat`.
    fn code_at(iat: i64) -> String {
        let key = SigningKey::from_bytes(&[3u8; 32]);
        let keys = JwkSet {
            keys: vec![Jwk::ed25519("k", &key.verifying_key())],
        };
        let mut claims = code::verify_signature(&code("m1", None), &keys).expect("valid");
        claims.iat = iat;
        sign(&claims, "k", &key)
    }

    #[test]
    fn a_taint_sticks_until_the_server_gives_a_newer_code() {
        let dir = tempfile::tempdir().expect("dir");
        let mut l = saved(dir.path());
        l.accept(&code_at(now() - 60), None)
            .expect("a code from the server");
        let file = dir.path().join("calc.json");
        let mut state: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&file).expect("read")).expect("json");
        state["memory"]["newest_signed"] = 0.into();
        std::fs::write(&file, state.to_string()).expect("write");
        // Ordinary commands that save do not launder it, nor does losing the witness.
        let mut l = reopen(dir.path());
        l.request_code(Held::Key("KEY"), "m1")
            .expect("a request can still be made");
        std::fs::remove_dir_all(dir.path().join("witness")).expect("rm");
        let mut l = reopen(dir.path());
        assert!(matches!(l.status(), Err(Error::StateTampered(_))));
        // A code no newer than one it had (a replay, say from a server that echoes it) lifts
        // nothing; a newer one does.
        let err = l.accept(&code_at(now() - 60), None).expect_err("replayed");
        assert!(matches!(err, Error::StateTampered(_)), "{err}");
        l.accept(&code_at(now()), None).expect("fresh");
        reopen(dir.path()).status().expect("sound again");
    }

    #[test]
    fn a_clock_that_ran_ahead_is_forgotten_when_the_server_signs_now() {
        let dir = tempfile::tempdir().expect("dir");
        let mut l = saved(dir.path());
        l.store.state.memory.last_seen = now() + 86_400;
        l.store.save().expect("save");
        let mut l = reopen(dir.path());
        assert!(matches!(l.status(), Err(Error::ClockSetBack { .. })));
        l.accept(&code_at(now()), None).expect("the server's time");
        reopen(dir.path())
            .status()
            .expect("the clock agrees with the server now");
    }

    #[test]
    fn withdrawn_keys_and_older_endorsements_are_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let (root, roots) = root_of(7);
        let vendor = SigningKey::from_bytes(&[3u8; 32]);
        let mut l = licensing(dir.path(), "m1", &code("m1", None)).with_root(roots);
        l.store.state.endorsement = Some(endorsement_of(&[("k", &vendor)], &root));
        l.status().expect("endorsed");
        // An endorsement older than one this machine has seen is not taken (it may list a key
        // withdrawn since); with no server to ask for the current one, nothing is trusted.
        l.store.state.memory.newest_endorsed = now() + 60;
        assert!(matches!(l.status(), Err(Error::Offline(_))));
        l.store.state.memory.newest_endorsed = 0;
        // A key a newer endorsement listed as withdrawn is refused even offline.
        l.store.state.memory.retired = vec!["k".into()];
        let err = l.status().expect_err("withdrawn");
        assert!(err.to_string().contains("withdrawn"), "{err}");
    }

    #[test]
    fn the_witness_keeps_its_name_from_the_first_run() {
        let dir = tempfile::tempdir().expect("dir");
        // The store's folder does not exist before the first save.
        let store_dir = dir.path().join("not-yet");
        let open = || {
            let store = Store::open_with_witness(&store_dir, "CALC", &dir.path().join("witness"))
                .expect("store");
            Licensing::new(None, "CALC", Some("m1"), store)
                .expect("licensing")
                .trusting_server_keys()
        };
        let mut l = open();
        l.store.state.jwks = licensing(dir.path(), "m1", "x").store.state.jwks;
        l.store.state.activation_code = Some(code("m1", None));
        l.store.save().expect("first save");
        open().status().expect("the same witness on the second run");
    }
}
