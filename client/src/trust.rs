//! What the client trusts to verify codes: the vendor's root key (its endorsements of the
//! signing keys, fetched from the server and kept), the signing keys themselves, or, for
//! development only, whatever the server publishes.

use crate::{Error, Licensing, Result};
use protocol::activation::{self as code, Claims, CodeError, JwkSet};
use protocol::trust;
use serde::de::DeserializeOwned;

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

impl Licensing {
    /// Trusts exactly these signing keys (the vendor's JWKS shipped inside the application).
    /// A key rotation on the server then needs a new build of the application; pinning the
    /// root key (`with_root`) does not.
    pub fn with_jwks(mut self, keys: JwkSet) -> Self {
        self.trust = Some(Trust::Keys(keys));
        self
    }

    /// Trusts the signing keys that the vendor's root key endorses (`server keys root` prints
    /// it; ship it inside the application). Endorsements come from the server and are kept in
    /// the state file, and each is verified against this root when first used and again
    /// whenever its text there changes.
    pub fn with_root(mut self, roots: JwkSet) -> Self {
        self.trust = Some(Trust::Root(roots));
        self.verified = None;
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
        let _held = self.fresh()?;
        let mut keys = match &self.trust {
            None => return Err(Error::Untrusted),
            Some(Trust::Keys(keys)) => keys.clone(),
            Some(Trust::Root(roots)) => {
                let newest = self.store.memory().newest_endorsed;
                let kept = self.store.state.endorsement.as_deref();
                let endorsed = match (kept, &self.verified) {
                    // The very text verified before: its signature is not checked twice.
                    (Some(jws), Some((text, endorsed))) if text == jws => {
                        Some(Ok(endorsed.clone()))
                    }
                    (Some(jws), _) => Some(trust::verify_endorsement(jws, roots)),
                    (None, _) => None,
                };
                match (kept, endorsed) {
                    (Some(jws), Some(Ok(endorsed))) if endorsed.iat >= newest => {
                        let keys = endorsed.keys.clone();
                        self.verified = Some((jws.to_owned(), endorsed));
                        keys
                    }
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

    pub(crate) fn refresh_jwks(&mut self) -> Result<JwkSet> {
        if self.servers.is_empty() {
            return Err(Error::Offline(
                "the vendor's current keys are needed to check this code: connect to the \
                 licence server (--server) once"
                    .into(),
            ));
        }
        let fetch = |path: &str| crate::get_any(&self.agent, &self.servers, path);
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
                self.store.mark_changed();
                Ok(endorsed.keys)
            }
            Some(Trust::ServerOnFirstUse) => {
                let set: JwkSet = fetch("/.well-known/jwks.json")?
                    .into_json()
                    .map_err(|e| Error::Io(format!("the server's keys could not be read: {e}")))?;
                self.store.state.jwks = Some(set.clone());
                self.store.mark_changed();
                Ok(set)
            }
            Some(Trust::Keys(keys)) => Ok(keys.clone()),
            None => Err(Error::Untrusted),
        }
    }

    /// Checks a code's signature with the keys this machine has (refusing, with its reason, a
    /// key the vendor withdrew).
    pub(crate) fn verify_with_kept_keys(&mut self, code: &str) -> Result<Claims> {
        self.verify_kept_as(code::CODE_TYPE, code)
    }

    /// `verify_with_kept_keys` for a token of type `typ` (a borrow token, say).
    pub(crate) fn verify_kept_as<T: DeserializeOwned>(
        &mut self,
        typ: &str,
        code: &str,
    ) -> Result<T> {
        let keys = self.jwks()?;
        match code::verify_jws(typ, code, &keys) {
            Err(CodeError::UnknownKey(kid)) if self.store.memory().retired.contains(&kid) => {
                Err(Error::Offline(format!(
                    "the licence code was signed with key {kid}, which the vendor has withdrawn: \
                     validate with the server (or activate again) for a new one"
                )))
            }
            other => Ok(other?),
        }
    }

    /// Checks a code's signature; a key the pinned root has endorsed since the last look is
    /// fetched once more.
    pub(crate) fn verify(&mut self, code: &str) -> Result<Claims> {
        self.verify_as(code::CODE_TYPE, code)
    }

    /// `verify` for a token of type `typ`.
    pub(crate) fn verify_as<T: DeserializeOwned>(&mut self, typ: &str, code: &str) -> Result<T> {
        match self.verify_kept_as(typ, code) {
            Err(Error::Code(CodeError::UnknownKey(_)))
                if !self.servers.is_empty() && matches!(self.trust, Some(Trust::Root(_))) =>
            {
                let keys = self.refresh_jwks()?;
                Ok(code::verify_jws(typ, code, &keys)?)
            }
            other => other,
        }
    }
}
