//! Mobile licences on the workstation: borrowing a floating seat (online, or by code exchange
//! through the portal), checking the token offline exactly like an activation code, extending
//! it, and giving it back early (online, or by a return code). A token given back is deleted
//! here first and remembered as returned (in the state and its witness) until its end, so that
//! a copy of it is refused.

use crate::floating::{Floating, PoolRef, Seat};
use crate::post_any;
use crate::{now, refuse_future, Error, HeldBorrow, Licensing, PendingBorrow, Result};
use protocol::borrow::{
    pool_digest, secret_hash, BorrowClaims, BorrowRequest, BorrowRequestCode, Borrowed, ReturnCode,
    ReturnRequest, BORROW_TYPE,
};

/// What giving a mobile licence back early did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Returned {
    /// The server has the seat back.
    Online,
    /// No server answered: the seat returns at its end, or at once when this return code is
    /// pasted in the portal.
    ByCode(String),
}

impl Licensing {
    /// Borrows a seat of `feature` from the pool of `floating` for `days`: checks out a seat,
    /// borrows it, and keeps the token once checked as an offline check would. A token this
    /// machine cannot use is given back at once.
    pub fn borrow(
        &mut self,
        floating: &Floating,
        feature: &str,
        days: i64,
    ) -> Result<BorrowClaims> {
        let _held = self.fresh()?;
        self.require_no_borrow(feature)?;
        let mut seat: Seat = floating.checkout(feature, None)?;
        let secret = crate::random_nonce();
        let (borrowed, loan) = seat.borrow(&self.fingerprint, days, secret_hash(&secret))?;
        let how = Keep::New {
            secret: secret.clone(),
        };
        match self.keep(&borrowed.borrow_token, Some(loan.clone()), how) {
            Ok(claims) => Ok(claims),
            Err(e) => {
                // Unusable here: given back at once, with its secret — once this machine has
                // surely forgotten it (a save that failed halfway may have written it).
                let token = borrowed.borrow_token.trim();
                if self.store.state.borrows.iter().any(|b| b.token == token) {
                    let claims = &borrowed.claims;
                    self.store.state.borrows.retain(|b| b.token != token);
                    self.store
                        .state
                        .memory
                        .returned
                        .push([claims.seat, claims.exp]);
                    if self.store.save().is_err() {
                        // Kept out until its end rather than lent twice.
                        return Err(e);
                    }
                }
                let body = ReturnRequest {
                    lease_token: loan.lease_token.clone(),
                    return_secret: secret,
                };
                let path = format!("/api/v1/seats/{}/return", loan.seat_id);
                let _ = post_any(&self.agent, &loan.servers, &path, &body);
                Err(e)
            }
        }
    }

    fn require_no_borrow(&mut self, feature: &str) -> Result<()> {
        match self.borrow_of(feature) {
            Ok((_, claims)) => Err(Error::Offline(format!(
                "this machine holds a mobile licence of {feature} already, until {}: extend it \
                 or return it first",
                protocol::time::format_utc(claims.exp)
            ))),
            Err(_) => Ok(()),
        }
    }

    /// The held borrows of `feature` (or of a feature it bundles), as their tokens say
    /// (unverified).
    fn held_of(&self, feature: &str) -> Vec<(usize, BorrowClaims)> {
        self.store
            .state
            .borrows
            .iter()
            .enumerate()
            .filter_map(|(i, b)| payload::<BorrowClaims>(&b.token).map(|c| (i, c)))
            .filter(|(_, c)| c.feature == feature || c.bundled.iter().any(|f| f == feature))
            .collect()
    }

    /// The held borrow of `feature` (or of a feature it bundles) whose signature holds and
    /// whose period has not ended (one that fails spoils no other); else why the first fails.
    fn borrow_of(&mut self, feature: &str) -> Result<(usize, BorrowClaims)> {
        let mut failed = None;
        for (i, _) in self.held_of(feature) {
            let token = self.store.state.borrows[i].token.clone();
            match self.verify_kept_as::<BorrowClaims>(BORROW_TYPE, &token) {
                Ok(claims) if claims.exp > now() => return Ok((i, claims)),
                Ok(claims) => {
                    failed.get_or_insert(Error::Offline(format!(
                        "the mobile licence of {feature} ended at {}",
                        protocol::time::format_utc(claims.exp)
                    )));
                }
                Err(e) => {
                    failed.get_or_insert(e);
                }
            }
        }
        Err(failed.unwrap_or_else(|| {
            Error::Offline(format!("this machine holds no mobile licence of {feature}"))
        }))
    }

    /// Checks a borrow token the server signed for this machine and keeps it: as new (a borrow,
    /// or the answer to a pending request), or in place of the held one of its seat (an
    /// extension, which must be newer).
    fn keep(&mut self, token: &str, loan: Option<crate::Loan>, how: Keep) -> Result<BorrowClaims> {
        let claims: BorrowClaims = self.verify_as(BORROW_TYPE, token)?;
        if claims.fp != self.fingerprint {
            return Err(Error::Code(protocol::activation::CodeError::WrongMachine));
        }
        if self.was_returned(&claims) {
            return Err(Error::Offline(format!(
                "this mobile licence of {} was given back from this machine",
                claims.feature
            )));
        }
        let held =
            self.store.state.borrows.iter().position(|b| {
                payload::<BorrowClaims>(&b.token).is_some_and(|c| c.seat == claims.seat)
            });
        let (loan, secret, replaces) = match (how, held) {
            (Keep::New { secret }, None) => (loan, secret, None),
            (Keep::New { .. }, Some(_)) => {
                return Err(Error::Offline(
                    "this machine holds this mobile licence already".into(),
                ))
            }
            (Keep::Extension, Some(i)) => {
                let old = payload::<BorrowClaims>(&self.store.state.borrows[i].token);
                // Newer: a later end, or the same end signed again (a key withdrawn since).
                if old.is_some_and(|o| {
                    o.exp > claims.exp || (o.exp, o.iat) >= (claims.exp, claims.iat)
                }) {
                    return Err(Error::Offline(
                        "this code was imported already (or a newer one was)".into(),
                    ));
                }
                {
                    let old = &self.store.state.borrows[i];
                    (old.loan.clone(), old.secret.clone(), Some(i))
                }
            }
            (Keep::Extension, None) => {
                return Err(Error::Offline(
                    "this code does not answer a request of this machine, nor extend a mobile \
                     licence it holds (a response code can be imported once)"
                        .into(),
                ))
            }
        };
        let (now, vouched, lifts) = self.vouch(claims.iat)?;
        if now >= claims.exp {
            return Err(Error::Offline(format!(
                "this mobile licence ended at {}",
                protocol::time::format_utc(claims.exp)
            )));
        }
        if lifts {
            self.drop_tainted_holdings();
        }
        // The token it replaces (an extension), unless the taint just lifted dropped it.
        if replaces.is_some() {
            self.store.state.borrows.retain(|b| {
                payload::<BorrowClaims>(&b.token).is_none_or(|c| c.seat != claims.seat)
            });
        }
        // Ended ones are of no use any more.
        self.store
            .state
            .borrows
            .retain(|b| payload::<BorrowClaims>(&b.token).is_some_and(|c| c.exp > now));
        self.store.state.borrows.push(HeldBorrow {
            token: token.trim().to_owned(),
            secret,
            loan,
        });
        self.store.save_with(vouched).map_err(Error::Io)?;
        Ok(claims)
    }

    fn was_returned(&self, claims: &BorrowClaims) -> bool {
        self.store
            .memory()
            .returned
            .iter()
            .any(|[seat, _]| *seat == claims.seat)
    }

    /// Offline check of the mobile licence of `feature`: signed by a trusted key, for this
    /// machine, not given back, the clock not set back, its period not over.
    pub fn borrowed(&mut self, feature: &str) -> Result<BorrowClaims> {
        let _held = self.fresh()?;
        self.require_intact_state()?;
        let (_, claims) = self.borrow_of(feature)?;
        if self.was_returned(&claims) {
            return Err(Error::Offline(format!(
                "this mobile licence of {feature} was given back from this machine"
            )));
        }
        if claims.fp != self.fingerprint {
            return Err(Error::Code(protocol::activation::CodeError::WrongMachine));
        }
        let now = self.checked_now()?;
        refuse_future(claims.iat, now)?;
        self.store.save().map_err(Error::Io)?;
        if now >= claims.exp {
            return Err(Error::Offline(format!(
                "the mobile licence of {feature} ended at {}",
                protocol::time::format_utc(claims.exp)
            )));
        }
        Ok(claims)
    }

    /// Every mobile licence held here, checked offline (an ended or refused one with why).
    pub fn borrows(&mut self) -> Vec<(String, Result<BorrowClaims>)> {
        // (Each is checked on its own below, which says what fails.)
        let _held = self.fresh().ok();
        let features: Vec<String> = self
            .store
            .state
            .borrows
            .iter()
            .filter_map(|b| payload::<BorrowClaims>(&b.token))
            .map(|c| c.feature)
            .collect();
        features
            .into_iter()
            .map(|f| {
                let r = self.borrowed(&f);
                (f, r)
            })
            .collect()
    }

    /// Extends the mobile licence of `feature` by `days` past its end, online.
    pub fn extend_borrow(&mut self, feature: &str, days: i64) -> Result<BorrowClaims> {
        let _held = self.fresh()?;
        self.require_intact_state()?;
        let (i, _) = self.borrow_of(feature)?;
        let loan = self.store.state.borrows[i].loan.clone().ok_or_else(|| {
            Error::Offline(
                "this mobile licence was assigned by code: its extension comes from the portal \
                 (Extend), imported with borrow-import"
                    .into(),
            )
        })?;
        let body = BorrowRequest {
            lease_token: loan.lease_token.clone(),
            fingerprint: self.fingerprint.clone(),
            days,
            return_hash: None,
        };
        let path = format!("/api/v1/seats/{}/extend", loan.seat_id);
        let res = post_any(&self.agent, &loan.servers, &path, &body)?
            .ok_or_else(|| Error::Io("the server extended nothing".into()))?;
        let borrowed: Borrowed = res
            .into_json()
            .map_err(|e| Error::Io(format!("the server's answer could not be read: {e}")))?;
        self.keep(&borrowed.borrow_token, None, Keep::Extension)
    }

    /// Gives the mobile licence of `feature` back early. It is deleted here first; then the
    /// server is told (a borrow made online), or a return code is made for the portal.
    pub fn return_borrow(&mut self, feature: &str) -> Result<Returned> {
        let _held = self.fresh()?;
        let (code, secret, loan) = self.give_up(feature)?;
        let Some(loan) = loan else {
            return Ok(Returned::ByCode(code));
        };
        let body = ReturnRequest {
            lease_token: loan.lease_token,
            return_secret: secret,
        };
        let path = format!("/api/v1/seats/{}/return", loan.seat_id);
        // The token is gone here already: whatever the server says, the return code is the
        // way left to give the seat back before its end.
        match post_any(&self.agent, &loan.servers, &path, &body) {
            Ok(_) => Ok(Returned::Online),
            Err(_) => Ok(Returned::ByCode(code)),
        }
    }

    /// Gives the mobile licence of `feature` back by code: deleted here, and the return code
    /// to paste in the portal (*Release a mobile licence*), which returns the seat at once.
    pub fn return_code(&mut self, feature: &str) -> Result<String> {
        let _held = self.fresh()?;
        self.give_up(feature).map(|(code, ..)| code)
    }

    /// Deletes the token of `feature` and remembers it as returned, saved before anything else
    /// happens; the return code and the loan for telling the server.
    fn give_up(&mut self, feature: &str) -> Result<(String, String, Option<crate::Loan>)> {
        self.require_intact_state()?;
        // The secret is the proof: a token that no longer verifies here (a key withdrawn since)
        // can still be given back.
        let (i, claims) = match self.borrow_of(feature) {
            Ok(found) => found,
            Err(e) => self
                .held_of(feature)
                .into_iter()
                .max_by_key(|(_, c)| c.exp)
                .ok_or(e)?,
        };
        let t = self.checked_now()?;
        let held = self.store.state.borrows.remove(i);
        let code = ReturnCode {
            seat: claims.seat,
            fp: self.fingerprint.clone(),
            secret: held.secret.clone(),
            t,
        }
        .encode();
        self.store
            .state
            .memory
            .returned
            .push([claims.seat, claims.exp]);
        self.store.save().map_err(Error::Io)?;
        Ok((code, held.secret, held.loan))
    }

    /// A borrow request code for `feature` for `days`, to send to a licence administrator,
    /// who answers it in the portal (*Assign a mobile licence*). Asked again before it is
    /// answered, the same code is shown: the request survives restarts until imported or
    /// cancelled.
    pub fn borrow_request(
        &mut self,
        floating: &Floating,
        feature: &str,
        days: i64,
    ) -> Result<String> {
        let _held = self.fresh()?;
        if let Some(p) = self
            .store
            .state
            .borrow_requests
            .iter()
            .find(|p| p.feature == feature)
        {
            return Ok(p.code.clone());
        }
        self.require_no_borrow(feature)?;
        let (pool, release) = floating.pool();
        let who = floating.requester();
        let pool = match pool {
            PoolRef::Key(k) => pool_digest(Some(k), None),
            PoolRef::Serial { product, serial } => pool_digest(None, Some((product, serial))),
        };
        let secret = crate::random_nonce();
        let request = BorrowRequestCode {
            pool,
            feature: feature.to_owned(),
            release,
            days,
            fp: self.fingerprint.clone(),
            host: who.host.clone(),
            user: who.user.clone(),
            nonce: crate::random_nonce(),
            return_hash: secret_hash(&secret),
            t: self.checked_now()?,
        };
        let code = request.encode();
        self.store.state.borrow_requests.push(PendingBorrow {
            nonce: request.nonce,
            secret,
            feature: feature.to_owned(),
            code: code.clone(),
        });
        self.store.save().map_err(Error::Io)?;
        Ok(code)
    }

    /// Cancels the pending borrow request of `feature`; `false` if there was none.
    pub fn cancel_borrow_request(&mut self, feature: &str) -> Result<bool> {
        let _held = self.fresh()?;
        let before = self.store.state.borrow_requests.len();
        self.store
            .state
            .borrow_requests
            .retain(|p| p.feature != feature);
        let cancelled = self.store.state.borrow_requests.len() < before;
        if cancelled {
            self.store.save().map_err(Error::Io)?;
        }
        Ok(cancelled)
    }

    /// Imports a response code from the portal: the answer to this machine's pending borrow
    /// request (which is then spent), or an extension of a mobile licence held here.
    pub fn borrow_import(&mut self, response_code: &str) -> Result<BorrowClaims> {
        let _held = self.fresh()?;
        let code = response_code.trim();
        let claims: BorrowClaims = self.verify_as(BORROW_TYPE, code)?;
        let pending = claims.req.as_deref().and_then(|nonce| {
            self.store
                .state
                .borrow_requests
                .iter()
                .position(|p| p.nonce == nonce)
        });
        match pending {
            Some(i) => {
                let request = self.store.state.borrow_requests[i].clone();
                let how = Keep::New {
                    secret: request.secret,
                };
                let claims = self.keep(code, None, how)?;
                self.store
                    .state
                    .borrow_requests
                    .retain(|p| p.nonce != request.nonce);
                self.store.save().map_err(Error::Io)?;
                Ok(claims)
            }
            // An extension answers no request made here since a taint: a saved one must not lift
            // it (it would bring back the token it extends).
            None => {
                self.require_intact_state()?;
                self.keep(code, None, Keep::Extension)
            }
        }
    }
}

/// What a JWS says, unverified: only to find which held token a new one replaces (every use
/// of a held token verifies it).
fn payload<T: serde::de::DeserializeOwned>(jws: &str) -> Option<T> {
    use base64::Engine;
    let body = jws.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(body)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// How a token is kept.
#[derive(Debug, Clone)]
enum Keep {
    /// A new mobile licence, with the secret its early return will show.
    New {
        secret: String,
    },
    Extension,
}
