//! Mobile (borrowed) licences: a held seat borrowed for a period and bound to one machine by a
//! signed token, extended, returned early (online with the lease token, or by a return code the
//! portal takes); a borrow request code answered in the portal for a workstation that cannot
//! reach the server; the pool owner's switch. A borrowed seat keeps its lease until its end, so
//! the lease reclaimer returns it then.

use super::lease::Only;
use super::*;
use protocol::borrow::{
    borrow_end, extended_end, token_digest, BorrowClaims, BorrowRequest, BorrowRequestCode,
    Borrowed, MobileSettings, ReturnCode, BORROW_TYPE, DAY_SECS,
};
use protocol::seats::{PoolFields, Requester};

/// How the seat's borrow changes.
enum Period {
    /// A new borrow (of a seat not borrowed yet), answering a request code if `nonce`.
    Start { nonce: Option<String> },
    /// A longer period for the borrow ending at `from` (unchanged meanwhile).
    Extend { from: i64 },
}

fn machine(raw: &str) -> Result<String> {
    let f = raw.trim().to_lowercase();
    if !protocol::activation::is_fingerprint(&f) {
        return Err(InputError::new(
            "fingerprint",
            "The machine fingerprint must be 64 hexadecimal digits (as the client library makes it).",
        )
        .into());
    }
    Ok(f)
}

fn period_error(e: protocol::borrow::PeriodError) -> Error {
    InputError::new("days", format!("{}.", capitalised(&e.to_string()))).into()
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
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

    /// Borrows a held seat for `req.days` from now, bound to the machine `req.fingerprint`.
    pub async fn borrow(&self, seat_id: i64, req: &BorrowRequest) -> Result<Borrowed> {
        let seat = self.seat_by_token(seat_id, &req.lease_token).await?;
        let fp = machine(&req.fingerprint)?;
        self.start_borrow(seat, &fp, req.days, None).await
    }

    async fn start_borrow(
        &self,
        seat: SeatRow,
        fp: &str,
        days: i64,
        nonce: Option<String>,
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
                "This seat rides on another (a bundle, or a named user's other session): \
                 borrow that one."
                    .into(),
            ));
        }
        let pool = self.pool_row(seat.pool_id).await?;
        let max = pool.lending().map_err(lending_off)?;
        let (key, key_end) = self.key_end(seat.key_id).await?;
        let now = self.clock.now();
        let end = borrow_end(now, days, max, key_end).map_err(period_error)?;
        self.sign_borrow(&seat, &key, fp, end, Period::Start { nonce })
            .await
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
        self.extend_seat(seat, req.days).await
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
        let pool = self.pool_row(seat.pool_id).await?;
        let max = pool.lending().map_err(lending_off)?;
        let (key, key_end) = self.key_end(seat.key_id).await?;
        let now = self.clock.now();
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
        let nonce = match &period {
            Period::Start { nonce } => nonce.clone(),
            Period::Extend { .. } => seat.borrow_nonce.clone(),
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
             borrow_nonce = COALESCE(borrow_nonce, $5) \
             WHERE id = $6 AND released_at IS NULL AND {condition}"
        ))
        .bind(now)
        .bind(end)
        .bind(fp)
        .bind(&token)
        .bind(nonce.as_deref())
        .bind(seat.id)
        .bind(from)
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
        tx.commit().await?;
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

    /// *Assign a mobile licence*: answers a workstation's borrow request code for `days` (the
    /// pool's longest borrowing at most) with a borrow token, the response code it imports. The
    /// same request answered again gets its seat's token again, never a second seat.
    pub async fn answer_borrow_request(
        &self,
        actor: &CurrentUser,
        pool_id: i64,
        request_code: &str,
        days: i64,
    ) -> Result<Borrowed> {
        let pool = self.pool_row(pool_id).await?;
        self.require_pool_access(actor, &pool)?;
        let req = BorrowRequestCode::decode(request_code)
            .map_err(|e| InputError::new("request_code", e.to_string()))?;
        let fp = machine(&req.fp)?;
        let named = PoolFields {
            pool_key: req.pool_key.clone(),
            product: req.product.clone(),
            serial: req.serial.clone(),
        };
        let asked = self.pool_for(&named.clone().try_into()?).await?;
        if asked.id != pool.id {
            return Err(InputError::new(
                "request_code",
                "This request is for another pool: answer it on that pool's page.",
            )
            .into());
        }
        pool.lending().map_err(lending_off)?;
        let answered: Option<SeatRow> = sqlx::query_as(&format!(
            "SELECT {SEAT_COLUMNS} FROM seats WHERE pool_id = $1 AND borrow_nonce = $2"
        ))
        .bind(pool.id)
        .bind(&req.nonce)
        .fetch_optional(self.db.pool())
        .await?;
        if let Some(seat) = answered {
            return match (seat.released_at, seat.borrow_token) {
                (None, Some(token)) => {
                    let claims =
                        protocol::activation::verify_jws(BORROW_TYPE, &token, &self.jwks().await?)
                            .map_err(|e| Error::Internal(format!("a stored borrow token: {e}")))?;
                    Ok(Borrowed {
                        borrow_token: token,
                        claims,
                    })
                }
                _ => Err(Error::Gone(
                    "This request was answered and its mobile licence has ended: make a new \
                     request code on the machine."
                        .into(),
                )),
            };
        }
        // A seat of its own (its session names the request), checked out as any other.
        let checkout = CheckoutRequest {
            pool: named,
            who: Requester {
                user: req.user.clone(),
                host: req.host.clone(),
                process: "mobile licence".into(),
                session: format!("mobile {}", req.nonce),
            },
            terms: SeatTerms {
                feature: req.feature.clone(),
                release_number: req.release,
                ..SeatTerms::default()
            },
        };
        let grant = self.checkout(&checkout).await?;
        let seat = self
            .seat_by_token(grant.seat_id, &grant.lease_token)
            .await?;
        match self.start_borrow(seat, &fp, days, Some(req.nonce)).await {
            Ok(b) => Ok(b),
            Err(e) => {
                // Nothing half-done: the seat taken for it goes back.
                self.release_seat(grant.seat_id, &ReleaseReason::Application)
                    .await?;
                Err(e)
            }
        }
    }

    /// *Extend mobile licence* from the portal: a new token (response code) with a later end.
    pub async fn extend_mobile(
        &self,
        actor: &CurrentUser,
        seat_id: i64,
        days: i64,
    ) -> Result<Borrowed> {
        let seat = self.managed_seat(actor, seat_id).await?;
        self.extend_seat(seat, days).await
    }

    /// *Release a mobile licence*: takes a return code the machine made (it deleted its token
    /// first) and returns the seat at once. Only the newest token's return counts.
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
        if seat.borrow_token.as_deref().map(token_digest).as_deref() != Some(back.token.as_str()) {
            return Err(InputError::new(
                "return_code",
                "This return code gives back an older token of this mobile licence (it was \
                 extended since): import the extension on the machine, then make the return \
                 code again.",
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
        tracing::info!(
            seat_id = seat.id,
            by = actor.id,
            "mobile licence returned by code"
        );
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
        if settings.max_borrow_days != pool.max_borrow_days {
            require_admin(actor)?;
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
        sqlx::query("UPDATE pools SET mobile_allowed = $1, max_borrow_days = $2 WHERE id = $3")
            .bind(i64::from(settings.allowed))
            .bind(settings.max_borrow_days)
            .bind(pool_id)
            .execute(self.db.pool())
            .await?;
        tracing::info!(
            pool_id,
            by = actor.id,
            allowed = settings.allowed,
            "mobile licences set"
        );
        self.pool(actor, pool_id).await
    }
}
