//! Mobile (borrowed) licences: a held seat borrowed for a period and bound to one machine by a
//! signed token, extended, returned early (online with the lease token, or by a return code the
//! portal takes); a borrow request code answered in the portal for a workstation that cannot
//! reach the server; the pool owner's switch. A borrowed seat keeps its lease until its end, so
//! the lease reclaimer returns it then.

use super::lease::Only;
use super::*;
use protocol::borrow::{
    borrow_end, extended_end, secret_hash, BorrowClaims, BorrowRequest, BorrowRequestCode,
    Borrowed, MobileSettings, ReturnCode, ReturnRequest, BORROW_TYPE, DAY_SECS,
};
use protocol::seats::{PoolFields, Requester};

/// How the seat's borrow changes.
enum Period {
    /// A new borrow (of a seat not borrowed yet), answering a request code if `nonce`; an early
    /// return will have to show the secret whose hash is `return_hash`.
    Start {
        nonce: Option<String>,
        return_hash: String,
    },
    /// A longer period for the borrow ending at `from` (unchanged meanwhile).
    Extend { from: i64 },
}

/// A machine fingerprint, checked as activations check it.
fn machine(raw: &str) -> Result<String> {
    Ok(crate::activation::fingerprint(raw)?)
}

fn return_hash(field: &'static str, raw: Option<&str>) -> Result<String> {
    match raw.map(|h| h.trim().to_lowercase()) {
        Some(h) if protocol::activation::is_fingerprint(&h) => Ok(h),
        _ => Err(InputError::new(
            field,
            "The return hash must be the SHA-256 of the machine's return secret (64 hexadecimal \
             digits, as the client library makes it).",
        )
        .into()),
    }
}

fn period_error(e: protocol::borrow::PeriodError) -> Error {
    InputError::new("days", e.to_string()).into()
}

fn lending_off(e: protocol::borrow::LendingOff) -> Error {
    Error::Refused(Refusal::BorrowingOff, format!("No mobile licence: {e}."))
}

impl Licentia {
    /// The last second a seat's key is valid, if its key ends.
    async fn key_end(&self, key_id: i64) -> Result<(KeyRow, Option<i64>)> {
        let key: KeyRow = sqlx::query_as(&format!(
            "SELECT {KEY_COLUMNS} FROM pool_keys WHERE id = $1"
        ))
        .bind(key_id)
        .fetch_optional(self.db.pool())
        .await?
        .ok_or(Error::NotFound("The seat's licence key"))?;
        let end = key.end_day.map(|d| d * DAY_SECS + DAY_SECS - 1);
        Ok((key, end))
    }

    /// The longest borrowing the seat's pool allows now: its switches, and a serial pool's
    /// serial not revoked.
    async fn lending_of(&self, pool: &PoolRow) -> Result<i64> {
        let max = pool.lending().map_err(lending_off)?;
        if let Some(serial_id) = pool.serial_id {
            let revoked: Option<i64> =
                sqlx::query_scalar("SELECT revoked_at FROM serials WHERE id = $1")
                    .bind(serial_id)
                    .fetch_one(self.db.pool())
                    .await?;
            if revoked.is_some() {
                return Err(Error::Revoked(
                    "This serial number was revoked: its pool lends nothing.".into(),
                ));
            }
        }
        Ok(max)
    }

    /// The seat's key, and when it ends, if it still serves the seat (as a heartbeat judges).
    async fn serving_key(&self, seat: &SeatRow) -> Result<(KeyRow, Option<i64>)> {
        if let (_, Some(why)) = self.judge_held_key(seat).await? {
            return Err(Error::refused(format!(
                "The licence key of this seat no longer serves it ({why}): it cannot be \
                 borrowed or extended."
            )));
        }
        self.key_end(seat.key_id).await
    }

    /// Borrows a held seat for `req.days` from now, bound to the machine `req.fingerprint`.
    pub async fn borrow(&self, seat_id: i64, req: &BorrowRequest) -> Result<Borrowed> {
        let seat = self.seat_by_token(seat_id, &req.lease_token).await?;
        let fp = machine(&req.fingerprint)?;
        let hash = return_hash("return_hash", req.return_hash.as_deref())?;
        let borrowed = self.start_borrow(seat, &fp, req.days, None, hash).await?;
        self.record_mobile(Who::Application, AuditAction::BorrowStart, &borrowed)
            .await;
        Ok(borrowed)
    }

    /// Records a mobile licence given or extended (committed already), naming its feature,
    /// user, machine and end.
    async fn record_mobile(&self, who: Who<'_>, action: AuditAction, borrowed: &Borrowed) {
        let c = &borrowed.claims;
        let Ok(pool) = self.pool_row(c.pool).await else {
            return;
        };
        self.record_after(
            who,
            pool.entry(action).detail(format!(
                "Mobile licence of {} for {} on {} (seat {}), until {}.",
                c.feature,
                c.user,
                c.host,
                c.seat,
                protocol::time::format_utc(c.exp)
            )),
        )
        .await
    }

    /// Records a mobile licence returned early (`how`; committed already).
    async fn record_return(&self, who: Who<'_>, seat: &SeatRow, how: &str) {
        let Ok(pool) = self.pool_row(seat.pool_id).await else {
            return;
        };
        self.record_after(
            who,
            pool.entry(AuditAction::BorrowReturn)
                .detail(format!("Mobile licence (seat {}) returned {how}.", seat.id)),
        )
        .await
    }

    async fn start_borrow(
        &self,
        seat: SeatRow,
        fp: &str,
        days: i64,
        nonce: Option<String>,
        return_hash: String,
    ) -> Result<Borrowed> {
        if seat.released_at.is_some() {
            return Err(lost(&seat));
        }
        if let Some(until) = seat.borrowed_until {
            return Err(Error::Conflict(format!(
                "This seat is borrowed already, until {}: extend it instead.",
                protocol::time::format_utc(until)
            )));
        }
        if seat.bundle_of.is_some() || seat.amount == 0 {
            return Err(Error::refused(
                "This seat costs nothing of its own: it rides on a bundle's main seat, or on the \
                 named user's seat held by another session. Borrow that seat instead (a mobile \
                 licence takes a seat out of the pool)."
                    .into(),
            ));
        }
        let pool = self.pool_row(seat.pool_id).await?;
        self.check_pool_access(&pool, &seat.feature, holder(&seat))
            .await?;
        let max = self.lending_of(&pool).await?;
        let (key, key_end) = self.serving_key(&seat).await?;
        let now = self.clock.now();
        let end = borrow_end(now, days, max, key_end).map_err(period_error)?;
        let period = Period::Start { nonce, return_hash };
        self.sign_borrow(&seat, &key, fp, end, period).await
    }

    /// Extends the borrow of a held seat by `req.days` past its end (never more than the
    /// pool's longest borrowing ahead of now); the machine must be the one it is bound to.
    pub async fn extend_borrow(&self, seat_id: i64, req: &BorrowRequest) -> Result<Borrowed> {
        let seat = self.seat_by_token(seat_id, &req.lease_token).await?;
        let fp = machine(&req.fingerprint)?;
        if seat.borrow_fp.as_deref().is_some_and(|b| b != fp) {
            return Err(Error::refused(
                "This mobile licence is bound to another machine.".into(),
            ));
        }
        let extended = self.extend_seat(seat, req.days).await?;
        self.record_mobile(Who::Application, AuditAction::BorrowExtend, &extended)
            .await;
        Ok(extended)
    }

    async fn extend_seat(&self, seat: SeatRow, days: i64) -> Result<Borrowed> {
        if seat.released_at.is_some() {
            return Err(lost(&seat));
        }
        let (Some(from), Some(fp)) = (seat.borrowed_until, seat.borrow_fp.clone()) else {
            return Err(Error::Conflict(
                "This seat is not borrowed: borrow it first.".into(),
            ));
        };
        let now = self.clock.now();
        if from <= now {
            return Err(Error::Gone(
                "This mobile licence has ended: borrow again.".into(),
            ));
        }
        let pool = self.pool_row(seat.pool_id).await?;
        self.check_pool_access(&pool, &seat.feature, holder(&seat))
            .await?;
        let max = self.lending_of(&pool).await?;
        let (key, key_end) = self.serving_key(&seat).await?;
        let end = extended_end(now, from, days, max, key_end).map_err(period_error)?;
        self.sign_borrow(&seat, &key, &fp, end, Period::Extend { from })
            .await
    }

    /// Signs the borrow token and records the period, in one conditional update: a seat
    /// released, borrowed or extended meanwhile gets no token.
    async fn sign_borrow(
        &self,
        seat: &SeatRow,
        key: &KeyRow,
        fp: &str,
        end: i64,
        period: Period,
    ) -> Result<Borrowed> {
        let now = self.clock.now();
        let bundled: Vec<String> = sqlx::query_scalar(
            "SELECT feature FROM seats WHERE bundle_of = $1 AND released_at IS NULL \
             ORDER BY feature",
        )
        .bind(seat.id)
        .fetch_all(self.db.pool())
        .await?;
        let (nonce, return_hash) = match &period {
            Period::Start { nonce, return_hash } => (nonce.clone(), Some(return_hash.clone())),
            Period::Extend { .. } => (seat.borrow_nonce.clone(), None),
        };
        let claims = BorrowClaims {
            iss: self.issuer.to_string(),
            seat: seat.id,
            pool: seat.pool_id,
            fp: fp.to_owned(),
            host: seat.host.clone(),
            user: seat.user_name.clone(),
            editor: key.editor.clone(),
            feature: key.feature.clone(),
            model: key.model.clone(),
            bundled,
            max_release: key.max_release_number,
            max_release_date: key.max_release_day.map(format_date),
            iat: now,
            exp: end,
            req: nonce.clone(),
        };
        let (kid, signing) = self.signing_key().await?;
        let token = protocol::activation::sign_jws(BORROW_TYPE, &claims, &kid, &signing);
        let mut tx = self.db.pool().begin().await?;
        let (condition, from) = match period {
            Period::Start { .. } => ("borrowed_until IS NULL AND $7 = 0", 0),
            Period::Extend { from } => ("borrowed_until = $7", from),
        };
        let done = sqlx::query(&format!(
            "UPDATE seats SET borrowed_at = COALESCE(borrowed_at, $1), borrowed_until = $2, \
             lease_expires_at = $2, borrow_fp = $3, borrow_token = $4, \
             borrow_nonce = COALESCE(borrow_nonce, $5), \
             borrow_return_hash = COALESCE(borrow_return_hash, $8) \
             WHERE id = $6 AND released_at IS NULL AND key_id = $9 AND {condition}"
        ))
        .bind(now)
        .bind(end)
        .bind(fp)
        .bind(&token)
        .bind(nonce.as_deref())
        .bind(seat.id)
        .bind(from)
        .bind(return_hash)
        .bind(key.id)
        .execute(&mut *tx)
        .await
        .map_err(|e| Error::unique_as_conflict(e, "This request code was answered already."))?
        .rows_affected();
        if done == 0 {
            return Err(Error::Conflict(
                "The seat changed meanwhile (released, borrowed or extended): look again.".into(),
            ));
        }
        // The seats it bundles are out with it.
        sqlx::query(
            "UPDATE seats SET borrowed_at = COALESCE(borrowed_at, $1), borrowed_until = $2 \
             WHERE bundle_of = $3 AND released_at IS NULL",
        )
        .bind(now)
        .bind(end)
        .bind(seat.id)
        .execute(&mut *tx)
        .await?;
        crate::db::commit(tx).await?;
        tracing::info!(seat_id = seat.id, until = end, "seat borrowed");
        Ok(Borrowed {
            borrow_token: token,
            claims,
        })
    }

    /// A live seat of a pool the caller may manage.
    async fn managed_seat(&self, actor: &CurrentUser, seat_id: i64) -> Result<SeatRow> {
        let seat: SeatRow =
            sqlx::query_as(&format!("SELECT {SEAT_COLUMNS} FROM seats WHERE id = $1"))
                .bind(seat_id)
                .fetch_optional(self.db.pool())
                .await?
                .ok_or(Error::NotFound("The mobile licence"))?;
        let pool = self.pool_row(seat.pool_id).await?;
        self.require_pool_access(actor, &pool)?;
        Ok(seat)
    }

    /// What a borrow request code may name this pool by (`protocol::borrow::pool_digest`): its
    /// pool key, or for a serial's pool also its product and serial.
    async fn pool_digests(&self, pool: &PoolRow) -> Result<Vec<String>> {
        let mut by_key = vec![pool.key_code_digest.clone()];
        // A request made with a replaced key, while it still works.
        let previous: Vec<String> = sqlx::query_scalar(
            "SELECT code_digest FROM pool_previous_keys WHERE pool_id = $1 AND works_until > $2",
        )
        .bind(pool.id)
        .bind(self.clock.now())
        .fetch_all(self.db.pool())
        .await?;
        by_key.extend(previous);
        let Some(serial_id) = pool.serial_id else {
            return Ok(by_key);
        };
        let (serial, product): (String, String) = sqlx::query_as(
            "SELECT s.serial, p.code FROM serials s JOIN products p ON p.id = s.product_id \
             WHERE s.id = $1",
        )
        .bind(serial_id)
        .fetch_one(self.db.pool())
        .await?;
        by_key.push(protocol::borrow::pool_digest(
            None,
            Some((&product, &serial)),
        ));
        Ok(by_key)
    }

    /// The answer already given to the request `nonce` in the pool, if any: its token again
    /// (signed anew if the one kept was signed with a key withdrawn since).
    async fn answer_given(&self, pool_id: i64, nonce: &str) -> Result<Option<Borrowed>> {
        let answered: Option<SeatRow> = sqlx::query_as(&format!(
            "SELECT {SEAT_COLUMNS} FROM seats WHERE pool_id = $1 AND borrow_nonce = $2"
        ))
        .bind(pool_id)
        .bind(nonce)
        .fetch_optional(self.db.pool())
        .await?;
        let Some(seat) = answered else {
            return Ok(None);
        };
        let (None, Some(token), Some(until), Some(fp)) = (
            seat.released_at,
            seat.borrow_token.clone(),
            seat.borrowed_until,
            seat.borrow_fp.clone(),
        ) else {
            return Err(Error::Gone(
                "This request was answered and its mobile licence has ended: make a new request \
                 code on the machine."
                    .into(),
            ));
        };
        let keys = self.jwks().await?;
        if let Ok(claims) = protocol::activation::verify_jws(BORROW_TYPE, &token, &keys) {
            return Ok(Some(Borrowed {
                borrow_token: token,
                claims,
            }));
        }
        let (key, _) = self.key_end(seat.key_id).await?;
        let period = Period::Extend { from: until };
        self.sign_borrow(&seat, &key, &fp, until, period)
            .await
            .map(Some)
    }

    /// *Assign a mobile licence*: answers a workstation's borrow request code for `days` (the
    /// pool's longest borrowing at most) with a borrow token, the response code it imports. The
    /// same request answered again — also at the same moment — gets its seat's token again,
    /// never a second seat.
    pub async fn answer_borrow_request(
        &self,
        actor: &CurrentUser,
        pool_id: i64,
        request_code: &str,
        days: i64,
    ) -> Result<Borrowed> {
        let borrowed = self
            .answer_borrow_request_as(actor, pool_id, request_code, days)
            .await?;
        self.record_mobile(Who::User(actor), AuditAction::BorrowAnswer, &borrowed)
            .await;
        Ok(borrowed)
    }

    async fn answer_borrow_request_as(
        &self,
        actor: &CurrentUser,
        pool_id: i64,
        request_code: &str,
        days: i64,
    ) -> Result<Borrowed> {
        let pool = self.pool_row(pool_id).await?;
        self.require_pool_access(actor, &pool)?;
        let in_code = |e: Error| match e {
            Error::Invalid(i) => InputError::new("request_code", i.message).into(),
            other => other,
        };
        let req = BorrowRequestCode::decode(request_code)
            .map_err(|e| InputError::new("request_code", e.to_string()))?;
        let fp = machine(&req.fp).map_err(in_code)?;
        let hash = return_hash("request_code", Some(&req.return_hash))?;
        if !self.pool_digests(&pool).await?.contains(&req.pool) {
            return Err(InputError::new(
                "request_code",
                "This request is for another pool: answer it on that pool's page.",
            )
            .into());
        }
        if let Some(given) = self.answer_given(pool.id, &req.nonce).await? {
            return Ok(given);
        }
        if protocol::borrow::request_code_stale(req.t, self.clock.now()) {
            return Err(InputError::new(
                "request_code",
                format!(
                    "This request code was made on {}, more than {} days ago: make a new one on \
                     the machine.",
                    format_date(req.t.div_euclid(86_400)),
                    protocol::borrow::REQUEST_CODE_DAYS
                ),
            )
            .into());
        }
        // Checked before a seat is taken for it.
        let max = self.lending_of(&pool).await?;
        borrow_end(self.clock.now(), days, max, None).map_err(period_error)?;
        // A seat of its own (a session no one can name), checked out as any other.
        let checkout = CheckoutRequest {
            pool: PoolFields::default(),
            who: Requester {
                user: req.user.clone(),
                host: req.host.clone(),
                process: "mobile licence".into(),
                session: format!("mobile {}", crate::token::generate()),
                installation: None,
            },
            terms: SeatTerms {
                feature: req.feature.clone(),
                release_number: req.release,
                ..SeatTerms::default()
            },
        };
        let grant = match self.checkout_in(pool.clone(), &checkout, false).await {
            Ok(grant) => grant,
            // (The same request answered at this moment may have taken the last seat.)
            Err(e) => {
                return self
                    .answered_meanwhile(pool.id, &req.nonce)
                    .await
                    .map_err(|_| e)
            }
        };
        let seat = self
            .seat_by_token(grant.seat_id, &grant.lease_token)
            .await?;
        match self
            .start_borrow(seat, &fp, days, Some(req.nonce.clone()), hash)
            .await
        {
            Ok(b) => Ok(b),
            Err(e) => {
                // Nothing half-done: the seat taken for it goes back (never a borrowed one).
                self.release_seat_if(
                    grant.seat_id,
                    &ReleaseReason::Application,
                    Only::NotBorrowed,
                )
                .await?;
                match e {
                    Error::Conflict(_) => self.answered_meanwhile(pool.id, &req.nonce).await,
                    e => Err(e),
                }
            }
        }
    }

    /// The same request was being answered at the same moment: that answer, once it is there.
    async fn answered_meanwhile(&self, pool_id: i64, nonce: &str) -> Result<Borrowed> {
        self.answer_given(pool_id, nonce).await?.ok_or_else(|| {
            Error::Conflict(
                "This request is being answered at this very moment: try again in a moment.".into(),
            )
        })
    }

    /// *Extend mobile licence* from the portal: a new token (response code) with a later end.
    pub async fn extend_mobile(
        &self,
        actor: &CurrentUser,
        seat_id: i64,
        days: i64,
    ) -> Result<Borrowed> {
        let seat = self.managed_seat(actor, seat_id).await?;
        let extended = self.extend_seat(seat, days).await?;
        self.record_mobile(Who::User(actor), AuditAction::BorrowExtend, &extended)
            .await;
        Ok(extended)
    }

    /// *Release a mobile licence*: takes a return code the machine made (it deleted its token
    /// first) and returns the seat at once. The code shows the secret only that machine has.
    pub async fn accept_return_code(
        &self,
        actor: &CurrentUser,
        pool_id: i64,
        return_code: &str,
    ) -> Result<()> {
        let back = ReturnCode::decode(return_code)
            .map_err(|e| InputError::new("return_code", e.to_string()))?;
        let seat = self.managed_seat(actor, back.seat).await?;
        if seat.pool_id != pool_id {
            return Err(InputError::new(
                "return_code",
                "This return code is for a mobile licence of another pool.",
            )
            .into());
        }
        if seat.released_at.is_some() {
            return Err(Error::Gone(
                "This mobile licence has ended or was returned already.".into(),
            ));
        }
        if seat.borrowed_until.is_none() || seat.borrow_fp.as_deref() != Some(back.fp.as_str()) {
            return Err(InputError::new(
                "return_code",
                "This return code does not come from the machine holding this mobile licence.",
            )
            .into());
        }
        if seat.borrow_return_hash.as_deref() != Some(secret_hash(&back.secret).as_str()) {
            return Err(InputError::new(
                "return_code",
                "This return code does not carry the secret of this mobile licence: make it on \
                 the machine that holds the licence (licentia-client return-code).",
            )
            .into());
        }
        if !self
            .release_seat_if(seat.id, &ReleaseReason::Returned, Only::Any)
            .await?
        {
            return Err(Error::Gone(
                "This mobile licence was returned already.".into(),
            ));
        }
        self.record_return(Who::User(actor), &seat, "by its return code")
            .await;
        tracing::info!(
            seat_id = seat.id,
            by = actor.id,
            "mobile licence returned by code"
        );
        Ok(())
    }

    /// An early return, online: the seat's lease token and the return secret the borrow named
    /// (the client library deletes its token first). Returning twice is fine.
    pub async fn return_borrowed(&self, seat_id: i64, req: &ReturnRequest) -> Result<()> {
        let seat = self.seat_by_token(seat_id, &req.lease_token).await?;
        if seat.released_at.is_some() {
            return Ok(());
        }
        if seat.borrowed_until.is_none() {
            return Err(Error::Conflict(
                "This seat is not borrowed: release it instead.".into(),
            ));
        }
        if seat.borrow_return_hash.as_deref() != Some(secret_hash(&req.return_secret).as_str()) {
            return Err(Error::refused(
                "This is not the return secret of this mobile licence: only the machine that \
                 borrowed it can give it back early."
                    .into(),
            ));
        }
        if self
            .release_seat_if(seat.id, &ReleaseReason::Returned, Only::Any)
            .await?
        {
            self.record_return(Who::Application, &seat, "early by its machine")
                .await;
        }
        tracing::info!(seat_id, "mobile licence returned early");
        Ok(())
    }

    /// The pool owner's switch, and (administrators) the pool's longest borrowing. Borrows
    /// already out run to their end.
    pub async fn set_mobile(
        &self,
        actor: &CurrentUser,
        pool_id: i64,
        settings: &MobileSettings,
    ) -> Result<Pool> {
        let pool = self.pool_row(pool_id).await?;
        self.require_pool_access(actor, &pool)?;
        let admin = actor.role == Role::Admin;
        if settings.max_borrow_days != pool.max_borrow_days && !admin {
            return Err(Error::refused(
                "Only an administrator sets a pool's longest borrowing; send it unchanged.".into(),
            ));
        }
        if let Some(d) = settings.max_borrow_days {
            if !(0..=3650).contains(&d) {
                return Err(InputError::new(
                    "max_borrow_days",
                    "The longest borrowing is 0 (none) to 3650 days, or empty (the product's).",
                )
                .into());
            }
        }
        // A client user's change touches the switch alone, so it never undoes an
        // administrator's change of the length made meanwhile.
        let update = if admin {
            sqlx::query("UPDATE pools SET mobile_allowed = $1, max_borrow_days = $2 WHERE id = $3")
                .bind(i64::from(settings.allowed))
                .bind(settings.max_borrow_days)
        } else {
            sqlx::query("UPDATE pools SET mobile_allowed = $1 WHERE id = $2")
                .bind(i64::from(settings.allowed))
        };
        let mut tx = self.db.pool().begin().await?;
        update.bind(pool_id).execute(&mut *tx).await?;
        let days = |d: Option<i64>| d.map_or_else(|| "product's".to_owned(), |d| d.to_string());
        let mut changes = changed_fields(
            &[("mobile licences", (pool.mobile_allowed != 0).to_string())],
            &[("mobile licences", settings.allowed.to_string())],
        );
        if admin {
            changes.extend(changed_fields(
                &[("longest borrowing (days)", days(pool.max_borrow_days))],
                &[("longest borrowing (days)", days(settings.max_borrow_days))],
            ));
        }
        self.record(
            &mut *tx,
            Who::User(actor),
            pool.entry(AuditAction::MobileSet).changes(changes),
        )
        .await?;
        crate::db::commit(tx).await?;
        tracing::info!(
            pool_id,
            by = actor.id,
            allowed = settings.allowed,
            "mobile licences set"
        );
        self.pool(actor, pool_id).await
    }
}
