//! A seat's life after its checkout: heartbeats that keep it (or move it off an expired or
//! superseded key), the release, the reclaimer of expired leases, and disconnects. Every way
//! out marks the seat released conditionally, so its quantity comes back once.

use super::*;

impl Licentia {
    pub(super) async fn seat_by_token(&self, seat_id: i64, token: &str) -> Result<SeatRow> {
        sqlx::query_as(&format!(
            "SELECT {SEAT_COLUMNS} FROM seats WHERE id = $1 AND lease_token_hash = $2"
        ))
        .bind(seat_id)
        .bind(lease_digest(token))
        .fetch_optional(self.db.pool())
        .await?
        .ok_or(Error::NotFound("A seat with this lease token"))
    }

    /// Whether the key a seat holds still serves it (not expired, not superseded; a credit is
    /// paid for), with every key's verdict for the seat's terms (the held key judged as if the
    /// seat were not on it); otherwise why not.
    pub(super) async fn judge_held_key(
        &self,
        seat: &SeatRow,
    ) -> Result<(Vec<(i64, Verdict)>, Option<String>)> {
        let today = day_of(self.clock.now());
        let keys = self.key_rows(seat.pool_id).await?;
        let mut selectable: Vec<Key> = keys.iter().map(KeyRow::for_selection).collect();
        if let Some(k) = selectable.iter_mut().find(|k| k.id == seat.key_id) {
            k.in_use -= seat.amount;
        }
        let ask = Ask {
            editor: Some(seat.editor.clone()),
            feature: seat.feature.clone(),
            model: seat.ask_model.as_deref().and_then(Model::parse),
            release_number: seat.client_release_number,
            release_date: seat.client_release_day,
            commercial_type: seat
                .ask_commercial_type
                .as_deref()
                .and_then(CommercialType::parse),
            customer_id: seat.ask_customer_id.clone(),
            pricing_structure: seat.ask_pricing_structure.clone(),
            needed: seat.amount.max(1),
            access: None,
        };
        let verdicts = selection::explain(&selectable, &ask, today);
        let held = verdicts.iter().find(|(id, _)| *id == seat.key_id);
        let credit = keys
            .iter()
            .any(|k| k.id == seat.key_id && k.model() == Model::Credit);
        // A credit is consumed at checkout: its seat stays where it was paid for.
        let still_good = credit
            || matches!(
                held,
                Some((_, Verdict::Ranked(_)))
                    | Some((_, Verdict::Filtered(selection::Rule::NoneLeft)))
            );
        let why = (!still_good).then(|| match held {
            Some((_, Verdict::Filtered(rule))) => rule.to_string(),
            _ => "its licence key was removed".to_owned(),
        });
        Ok((verdicts, why))
    }

    /// A borrowed seat's answer to a heartbeat: its period, unmoved.
    fn borrowed_beat(seat: &SeatRow, until: i64) -> Beat {
        Beat {
            lease_expires_at: until,
            key_id: seat.key_id,
            moved: false,
        }
    }

    /// Keeps a seat: a fresh lease. If its key expired or was superseded, the seat moves to the
    /// key the selection picks now; if none fits, the seat is lost and the answer says why. A
    /// borrowed seat keeps its period and the key its token names, even when borrowed while
    /// this heartbeat ran (every write here spares a borrowed seat).
    pub async fn heartbeat(&self, seat_id: i64, token: &str) -> Result<Beat> {
        // The seat with what its pool says about heartbeats, in one statement.
        #[derive(sqlx::FromRow)]
        struct Beating {
            #[sqlx(flatten)]
            seat: SeatRow,
            pool_lease_secs: Option<i64>,
            pool_access_rules: i64,
        }
        let beating: Beating = sqlx::query_as(&format!(
            "SELECT {SEAT_COLUMNS}, \
             (SELECT p.lease_secs FROM pools p WHERE p.id = seats.pool_id) AS pool_lease_secs, \
             (SELECT COUNT(*) FROM pool_access_rules r WHERE r.pool_id = seats.pool_id) \
               AS pool_access_rules \
             FROM seats WHERE id = $1 AND lease_token_hash = $2"
        ))
        .bind(seat_id)
        .bind(lease_digest(token))
        .fetch_optional(self.db.pool())
        .await?
        .ok_or(Error::NotFound("A seat with this lease token"))?;
        let seat = beating.seat;
        if seat.released_at.is_some() {
            return Err(lost(&seat));
        }
        if let Some(until) = seat.borrowed_until {
            return Ok(Self::borrowed_beat(&seat, until));
        }
        let lease_secs = beating.pool_lease_secs.ok_or(Error::NotFound("The pool"))?;
        let now = self.clock.now();
        // A user or machine the pool's rules now refuse loses the seat here, told why.
        let access = self
            .access_if_any(seat.pool_id, beating.pool_access_rules)
            .await?;
        let barred = self
            .seat_barred(&access, seat.id, &seat.feature, holder(&seat))
            .await?;
        if let Some(reason) = barred {
            let told = format!(
                "Your seat of {} was ended: {reason}. Ask the pool's owner if this is a mistake.",
                seat.feature
            );
            return self.end_at_beat(&seat, token, reason, told).await;
        }
        let (verdicts, why) = self.judge_held_key(&seat).await?;
        let mut key_id = seat.key_id;
        let mut moved = false;
        if let Some(reason) = why {
            let mut order: Vec<(usize, i64)> = verdicts
                .iter()
                .filter_map(|(id, v)| match v {
                    Verdict::Ranked(r) if *id != seat.key_id => Some((*r, *id)),
                    _ => None,
                })
                .collect();
            order.sort_unstable();
            let mut new_key = None;
            for (_, id) in order {
                if self.move_seat(&seat, id).await? {
                    new_key = Some(id);
                    break;
                }
            }
            match new_key {
                Some(id) => {
                    key_id = id;
                    moved = true;
                    tracing::info!(
                        seat_id,
                        from = seat.key_id,
                        to = id,
                        "seat moved to another key"
                    );
                }
                None => {
                    let told = format!(
                        "Your seat of {} was lost: {reason}, and no other licence key is free.",
                        seat.feature
                    );
                    return self.end_at_beat(&seat, token, reason, told).await;
                }
            }
        }
        let kept = sqlx::query(
            "UPDATE seats SET last_heartbeat_at = $1, lease_expires_at = $2 \
             WHERE id = $3 AND released_at IS NULL AND borrowed_until IS NULL",
        )
        .bind(now)
        .bind(now + lease_secs)
        .bind(seat.id)
        .execute(self.db.pool())
        .await?
        .rows_affected();
        if kept == 0 {
            return self.beat_after_race(seat_id, token).await;
        }
        Ok(Beat {
            lease_expires_at: now + lease_secs,
            key_id,
            moved,
        })
    }

    /// Ends a seat at its heartbeat (`reason` kept with it) and tells its application `told`
    /// — unless it was borrowed or released meanwhile: then what that says.
    async fn end_at_beat(
        &self,
        seat: &SeatRow,
        token: &str,
        reason: String,
        told: String,
    ) -> Result<Beat> {
        let why = ReleaseReason::Lost(reason);
        if !self
            .release_seat_if(seat.id, &why, Only::NotBorrowed)
            .await?
        {
            return self.beat_after_race(seat.id, token).await;
        }
        Err(Error::Gone(told))
    }

    /// A heartbeat whose write found the seat changed meanwhile: borrowed (its period stands)
    /// or released (disconnected, or its lease reclaimed).
    async fn beat_after_race(&self, seat_id: i64, token: &str) -> Result<Beat> {
        let seat = self.seat_by_token(seat_id, token).await?;
        match (seat.released_at, seat.borrowed_until) {
            (None, Some(until)) => Ok(Self::borrowed_beat(&seat, until)),
            _ => Err(lost(&seat)),
        }
    }

    /// Moves a live seat to `to_key` if that key has room, in one transaction.
    pub(super) async fn move_seat(&self, seat: &SeatRow, to_key: i64) -> Result<bool> {
        // A named user's riding session pays for itself on the new key.
        let amount = seat.amount.max(1);
        let now = self.clock.now();
        let mut tx = self.db.pool().begin().await?;
        if !increment(&mut tx, to_key, amount).await? {
            return Ok(false);
        }
        // Its stretch on the old key goes to the history before the seat changes key.
        history::keep_moved(&mut tx, seat.id, seat.key_id, to_key, now).await?;
        let moved = sqlx::query(
            "UPDATE seats SET key_id = $1, amount = $2, key_since = $5 \
             WHERE id = $3 AND key_id = $4 AND released_at IS NULL AND borrowed_until IS NULL",
        )
        .bind(to_key)
        .bind(amount)
        .bind(seat.id)
        .bind(seat.key_id)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if moved == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        if seat.amount > 0 {
            give_back(&mut tx, seat.key_id, seat.amount).await?;
        }
        crate::db::commit_retryable(tx).await?;
        Ok(true)
    }

    /// The application gives its seat (and the seats bundled with it) back. A borrowed seat
    /// comes back early only with its return secret (`return_borrowed`).
    pub async fn release(&self, seat_id: i64, token: &str) -> Result<()> {
        let held = Only::HeldBy(lease_digest(token));
        if !self
            .release_seat_if(seat_id, &ReleaseReason::Application, held)
            .await?
        {
            // Not released by this call: a wrong token, released before (fine), or borrowed.
            let seat = self.seat_by_token(seat_id, token).await?;
            if seat.released_at.is_none() {
                return Err(Error::Conflict(
                    "This seat is out on a mobile licence: it comes back early only with its \
                     return secret (POST /api/v1/seats/{id}/return; the client library's \
                     return does it), or at its end."
                        .into(),
                ));
            }
        }
        Ok(())
    }

    /// Releases a seat once, whoever asks: marks it released (conditionally, so a race between
    /// a release, a disconnect and the lease reclaimer gives the seat back once), then returns
    /// its quantity to its key (credits are consumed, not returned). Returns whether this call
    /// released it.
    /// Only if the seat is still as `only` says when it is marked released.
    pub(super) async fn release_seat_if(
        &self,
        seat_id: i64,
        why: &ReleaseReason,
        only: Only,
    ) -> Result<bool> {
        let (expired_before, spare_borrowed, silent_before, token_hash) = match only {
            Only::Any => (None, 0, None, None),
            Only::ExpiredBefore(t) => (Some(t), 0, None, None),
            Only::NotBorrowed => (None, 1, None, None),
            Only::HeldBy(hash) => (None, 1, None, Some(hash)),
            Only::SilentBefore(t) => (None, 1, Some(t), None),
        };
        type Released = (i64, i64, i64, String, String);
        let by = why.stored();
        let now = self.clock.now();
        let mut tx = self.db.pool().begin().await?;
        let main: Option<(i64, i64, i64, String, String, i64)> = sqlx::query_as(
            "UPDATE seats SET released_at = $1, released_by = $2 \
             WHERE id = $3 AND released_at IS NULL AND ($4 IS NULL OR (lease_expires_at < $4 \
               AND (borrowed_until IS NOT NULL OR last_heartbeat_at <= granted_at \
                 OR (SELECT p.silent_seats FROM pools p WHERE p.id = seats.pool_id) = 'lease'))) \
             AND ($5 = 0 OR borrowed_until IS NULL) \
             AND ($6 IS NULL OR lease_expires_at < $6) \
             AND ($7 IS NULL OR lease_token_hash = $7) \
             RETURNING id, key_id, amount, user_name, \
               (SELECT k.model FROM pool_keys k WHERE k.id = seats.key_id), \
               (SELECT COUNT(*) FROM seats b WHERE b.bundle_of = seats.id \
                  AND b.released_at IS NULL) AS bundled",
        )
        .bind(now)
        .bind(&by)
        .bind(seat_id)
        .bind(expired_before)
        .bind(spare_borrowed)
        .bind(silent_before)
        .bind(token_hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((id, key_id, amount, user, model, bundled)) = main else {
            return Ok(false);
        };
        let main: Released = (id, key_id, amount, user, model);
        // The seats it bundles go with it.
        let mut released: Vec<Released> = if bundled == 0 {
            Vec::new()
        } else {
            sqlx::query_as(
                "UPDATE seats SET released_at = $1, released_by = $2 \
             WHERE bundle_of = $3 AND released_at IS NULL \
             RETURNING id, key_id, amount, user_name, \
               (SELECT k.model FROM pool_keys k WHERE k.id = seats.key_id)",
            )
            .bind(now)
            .bind(&by)
            .bind(seat_id)
            .fetch_all(&mut *tx)
            .await?
        };
        released.push(main);
        history::keep_ended(&mut tx, seat_id).await?;
        // Keys in one order everywhere, so concurrent releases never wait on each other in a
        // cycle.
        released.sort_by_key(|r| r.1);
        for (id, key_id, amount, user, model) in &released {
            if model == "Credit" || *amount == 0 {
                continue;
            }
            if model == "NamedUser" {
                // Another live session of the same named user, riding on this one's seat, now
                // pays for it: the user keeps the seat.
                lock_key(&mut tx, *key_id).await?;
                let heir = sqlx::query(
                    "UPDATE seats SET amount = $1 WHERE id = (SELECT s.id FROM seats s \
                     WHERE s.key_id = $2 AND s.user_name = $3 AND s.released_at IS NULL \
                     AND s.amount = 0 AND s.bundle_of IS NULL AND s.id <> $4 \
                     ORDER BY s.id LIMIT 1) AND amount = 0 AND released_at IS NULL",
                )
                .bind(amount)
                .bind(key_id)
                .bind(user)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if heir == 1 {
                    continue;
                }
            }
            give_back(&mut tx, *key_id, *amount).await?;
        }
        crate::db::commit_retryable(tx).await?;
        tracing::info!(seat_id, by, "seat released");
        Ok(true)
    }

    /// Frees the seats whose lease ran out (their applications died or lost the network) —
    /// but for a pool that holds silent seats, which keeps those that ever sent a heartbeat
    /// (one that never did has no application to wait for: a checkout whose answer was lost,
    /// or someone hoarding seats with the pool key) — and the borrowed ones whose period
    /// ended. The pool's mode is read again as each seat is released. Held silent seats of
    /// holders an access rule now refuses end too. Safe to run in several server processes at
    /// once.
    pub async fn reclaim_expired_seats(&self) -> Result<u64> {
        let now = self.clock.now();
        let expired: Vec<(i64, Option<i64>)> = sqlx::query_as(
            "SELECT s.id, s.borrowed_until FROM seats s JOIN pools p ON p.id = s.pool_id \
             WHERE s.released_at IS NULL AND s.bundle_of IS NULL AND s.lease_expires_at < $1 \
             AND (s.borrowed_until IS NOT NULL OR p.silent_seats = 'lease' \
               OR s.last_heartbeat_at <= s.granted_at) \
             ORDER BY s.id LIMIT 1000",
        )
        .bind(now)
        .fetch_all(self.db.pool())
        .await?;
        let mut n = 0;
        for (id, borrowed) in expired {
            let why = if borrowed.is_some() {
                ReleaseReason::BorrowEnded
            } else {
                ReleaseReason::LeaseExpired
            };
            if self
                .release_seat_if(id, &why, Only::ExpiredBefore(now))
                .await?
            {
                n += 1;
            }
        }
        let barred = self.end_barred_silent_seats(now).await?;
        if n > 0 || barred > 0 {
            tracing::info!(seats = n, barred, "expired leases reclaimed");
        }
        Ok(n + barred)
    }

    /// An administrator (or the pool's client user) frees a stuck seat; the application learns
    /// at its next heartbeat. A borrowed seat is refused: its machine works offline with it
    /// until its end or an early return, so freeing it would lend it twice — unless an
    /// administrator `force`s it (a laptop lost for good).
    pub async fn disconnect_seat(
        &self,
        actor: &CurrentUser,
        seat_id: i64,
        force: bool,
    ) -> Result<()> {
        let seat_of = || async {
            sqlx::query_as::<_, (i64, Option<i64>)>(
                "SELECT pool_id, borrowed_until FROM seats WHERE id = $1",
            )
            .bind(seat_id)
            .fetch_optional(self.db.pool())
            .await?
            .ok_or(Error::NotFound("The seat"))
        };
        let (pool_id, _) = seat_of().await?;
        let pool = self.pool_row(pool_id).await?;
        self.require_pool_access(actor, &pool)?;
        let by = ReleaseReason::Disconnected {
            role: actor.role,
            user_id: actor.id,
        };
        if force {
            require_admin(actor)?;
        }
        let only = if force { Only::Any } else { Only::NotBorrowed };
        if !self.release_seat_if(seat_id, &by, only).await? {
            if let (_, Some(until)) = seat_of().await? {
                return Err(Error::refused(format!(
                    "This seat is out on a mobile licence until {}: its machine works offline \
                     with it, so it cannot be disconnected. It returns then, or earlier when \
                     its user returns it. (An administrator can force its return for a machine \
                     lost for good; the seat is then lent twice until that end.)",
                    protocol::time::format_utc(until)
                )));
            }
            return Err(Error::Gone("This seat was already released.".into()));
        }
        if force {
            tracing::warn!(seat_id, by = actor.id, "seat disconnected by force");
        }
        self.record_after(
            Who::User(actor),
            pool.entry(AuditAction::SeatDisconnect).detail(if force {
                format!("Seat {seat_id} (out on a mobile licence) returned by force.")
            } else {
                format!("Seat {seat_id} disconnected.")
            }),
        )
        .await;
        Ok(())
    }
}

/// What a seat must still be when it is released.
#[derive(Debug, Clone)]
pub(super) enum Only {
    Any,
    /// Not borrowed, and held by the lease token with this digest (its application's release).
    HeldBy(String),
    /// Its lease ended before then (a heartbeat that arrived meanwhile keeps it).
    ExpiredBefore(i64),
    /// Not borrowed (a disconnect).
    NotBorrowed,
    /// Not borrowed, and its lease ended before then, whatever the pool's mode (a held seat
    /// whose holder an access rule now refuses).
    SilentBefore(i64),
}
