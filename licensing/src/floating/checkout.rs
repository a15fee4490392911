//! A checkout: the pool the application names, the key the selection ranks first that still
//! has room (taken by a conditional update, bundles in the same transaction), and the hourly
//! refusals and peaks recorded on the way.

use super::*;
use protocol::access::Asker;

impl Licentia {
    pub(super) async fn pool_for(&self, access: &PoolRef) -> Result<PoolRow> {
        match access {
            PoolRef::Key(key) => {
                let hash = pool_key_digest(key);
                let current: Option<PoolRow> =
                    sqlx::query_as(&format!("{POOL_SELECT} WHERE p.access_key = $1"))
                        .bind(&hash)
                        .fetch_optional(self.db.pool())
                        .await?;
                if let Some(pool) = current {
                    return Ok(pool);
                }
                // A replaced key works through its grace period, then says it was replaced.
                let replaced: Option<(i64, i64, i64)> = sqlx::query_as(
                    "SELECT pool_id, replaced_at, works_until FROM pool_previous_keys \
                     WHERE key_hash = $1",
                )
                .bind(&hash)
                .fetch_optional(self.db.pool())
                .await?;
                match replaced {
                    Some((pool_id, _, until)) if until > self.clock.now() => {
                        let pool = self.pool_row(pool_id).await?;
                        Ok(PoolRow {
                            by_previous_key: true,
                            ..pool
                        })
                    }
                    Some((_, replaced_at, until)) => Err(Error::PoolKeyReplaced(format!(
                        "This pool key was replaced on {} and stopped working on {}: ask the \
                         pool's owner for the new key.",
                        format_date(replaced_at),
                        format_date(until),
                    ))),
                    None => Err(InputError::new(
                        "pool_key",
                        "No pool has this pool key: check it.",
                    )
                    .into()),
                }
            }
            PoolRef::Serial { product, serial } => {
                let (serial, _) = check_serial(&self.serial_key(), serial)?;
                #[derive(sqlx::FromRow)]
                struct S {
                    id: i64,
                    revoked_at: Option<i64>,
                    code: String,
                }
                let s: S = sqlx::query_as(
                    "SELECT s.id, s.revoked_at, p.code FROM serials s \
                     JOIN products p ON p.id = s.product_id WHERE s.serial = $1",
                )
                .bind(&serial)
                .fetch_optional(self.db.pool())
                .await?
                .ok_or_else(|| {
                    InputError::new("serial", "This serial number is not known here.")
                })?;
                if s.code != product.trim() {
                    return Err(InputError::new(
                        "product",
                        format!("This serial number is for product {}.", s.code),
                    )
                    .into());
                }
                if s.revoked_at.is_some() {
                    return Err(Error::Revoked(
                        "This serial number was revoked: check out with its replacement.".into(),
                    ));
                }
                sqlx::query_as(&format!("{POOL_SELECT} WHERE p.serial_id = $1"))
                    .bind(s.id)
                    .fetch_optional(self.db.pool())
                    .await?
                    .ok_or_else(|| {
                        Error::refused("This serial number has no floating pool.".into())
                    })
            }
        }
    }

    /// Checks out a seat of `req.feature`: the key the selection ranks first that still has room
    /// when the seat is taken (another process may take a key's last seat meanwhile: the next
    /// key is tried). A second checkout from the same user, host and session gets its seat back.
    #[tracing::instrument(skip(self, req), fields(feature = %req.terms.feature))]
    pub async fn checkout(&self, req: &CheckoutRequest) -> Result<Grant> {
        self.checkout_as(req, true).await
    }

    /// `checkout`; with `hand_back` false a live seat of the same session is not handed over
    /// (a mobile licence request's seat is its own until it is borrowed).
    pub(super) async fn checkout_as(
        &self,
        req: &CheckoutRequest,
        hand_back: bool,
    ) -> Result<Grant> {
        let pool = self.pool_for(&req.pool()?).await?;
        self.checkout_in(pool, req, hand_back).await
    }

    /// `checkout_as` in a pool already found (the pool fields of `req` are not read).
    pub(super) async fn checkout_in(
        &self,
        pool: PoolRow,
        req: &CheckoutRequest,
        hand_back: bool,
    ) -> Result<Grant> {
        let ask = ask_of(&req.terms)?;
        protocol::floating::within_checkout_cap(ask.needed, pool.max_tokens_per_checkout)
            .map_err(Error::refused)?;
        let feature = ask.feature.clone();
        let user = field("user", &req.who.user, 255, true)?;
        let host = field("host", &req.who.host, 255, true)?;
        let process = field("process", &req.who.process, 255, true)?;
        let session = field("session", &req.who.session, 255, false)?;
        let installation = installation_digest(req.who.installation.as_deref())?;
        let release_day = ask.release_date;
        let now = self.clock.now();
        let who = Asker {
            user: &user,
            host: &host,
        };
        let bundles = if pool.bundles == 0 {
            Vec::new()
        } else {
            self.bundles_of(pool.id, &feature).await?
        };
        // The pool's allow and deny rules first, for the feature and those it brings along: a
        // refused user gets no seat, not even their own back. (Not a refusal for want of seats:
        // the usage history does not count it.)
        let access = self.access_for(&pool).await?;
        for f in std::iter::once(&feature).chain(&bundles) {
            Self::check_access(&access, f, who)?;
        }

        // The same session again (an application restarted without releasing): its seat back,
        // if it proves it is the installation that took it. (A borrowed seat has left its
        // session: it is never handed over.)
        let existing: Option<(i64, Option<String>, i64, i64)> = sqlx::query_as(
            "SELECT id, installation_hash, lease_expires_at, \
             CASE WHEN last_heartbeat_at <= granted_at THEN 1 ELSE 0 END AS never_beat \
             FROM seats WHERE pool_id = $1 \
             AND feature = $2 AND user_name = $3 AND host = $4 AND session = $5 \
             AND released_at IS NULL AND bundle_of IS NULL AND borrowed_until IS NULL",
        )
        .bind(pool.id)
        .bind(&feature)
        .bind(&user)
        .bind(&host)
        .bind(&session)
        .fetch_optional(self.db.pool())
        .await?;
        if let Some((seat_id, held_by, lease_ends, never_beat)) = existing {
            // (A seat whose lease ran out has no holder left to protect: it is handed over —
            // unless its pool holds silent seats for their application, and it ever sent one.)
            let proven = may_resume(held_by.as_deref(), installation.as_deref());
            let abandoned =
                lease_ends <= now && (pool.silent_seats() == SilentSeats::Lease || never_beat == 1);
            if !(hand_back && (proven || abandoned)) {
                let held = pool.silent_seats() == SilentSeats::Held;
                return Err(session_taken(
                    &feature,
                    &user,
                    &host,
                    (!held).then_some(lease_ends - now),
                ));
            }
            // (None: it was released or borrowed a moment ago; a new seat is checked out below.)
            let taker = Taker {
                process: &process,
                installation: installation.as_deref(),
            };
            if let Some(grant) = self.hand_back(&pool, seat_id, taker, now).await? {
                return Ok(grant);
            }
        }

        let keys = self.key_rows(pool.id).await?;
        let selectable: Vec<Key> = keys.iter().map(KeyRow::for_selection).collect();
        let today = day_of(now);
        // Seats a reservation keeps for others (judged again, exactly, when a key is taken).
        let mut ask = ask;
        if access.reserves(&feature) {
            let mut conn = self.db.pool().acquire().await?;
            ask.access = self
                .reserved_against(&mut conn, &access, pool.id, (&ask, who), 0)
                .await?
                .map(selection::Rule::Reserved);
        }
        let mut ranked: Vec<(usize, &KeyRow)> = selection::explain(&selectable, &ask, today)
            .into_iter()
            .filter_map(|(id, v)| match v {
                Verdict::Ranked(r) => keys.iter().find(|k| k.id == id).map(|k| (r, k)),
                Verdict::Filtered(_) => None,
            })
            .collect();
        ranked.sort_by_key(|(r, _)| *r);

        // A named user who holds a NamedUser key already takes no further seat of it.
        let named = keys
            .iter()
            .any(|k| k.feature == feature && k.model() == Model::NamedUser);
        let held_named: Option<i64> = if !named {
            None
        } else {
            sqlx::query_scalar(
                "SELECT s.key_id FROM seats s JOIN pool_keys k ON k.id = s.key_id \
             WHERE s.pool_id = $1 AND s.feature = $2 AND s.user_name = $3 \
             AND s.released_at IS NULL AND s.amount > 0 AND k.model = 'NamedUser' LIMIT 1",
            )
            .bind(pool.id)
            .bind(&feature)
            .bind(&user)
            .fetch_optional(self.db.pool())
            .await?
        };

        let seat = SeatAsk {
            pool_id: pool.id,
            user: &user,
            host: &host,
            process: &process,
            session: &session,
            installation: installation.as_deref(),
            release_number: req.terms.release_number,
            release_day,
            now,
            lease_secs: pool.lease_secs,
            ask: &ask,
            access: &access,
        };
        let mut candidates: Vec<(&KeyRow, i64)> = Vec::new();
        if let Some(k) = held_named.and_then(|id| keys.iter().find(|k| k.id == id)) {
            candidates.push((k, 0));
        }
        for (_, k) in &ranked {
            let amount = if k.model() == Model::Token {
                ask.needed
            } else {
                1
            };
            candidates.push((k, amount));
        }
        for (key, amount) in candidates {
            let taken = self
                .take(&seat, key, amount, &bundles, &keys, &ask)
                .await
                .map_err(busy_as_conflict)?;
            match taken {
                Taken::Granted(grant) => return Ok(grant),
                Taken::KeyFull => continue,
                Taken::Reserved(kept, rule) if kept == feature => {
                    ask.access = Some(selection::Rule::Reserved(rule));
                    break;
                }
                Taken::Reserved(also, rule) => {
                    return Err(Error::Refused(
                        Refusal::SeatsTaken,
                        format!(
                            "Feature {feature} comes with feature {also}, and the free seats of \
                             {also} are kept for others by access {rule}. Try again later."
                        ),
                    ));
                }
                Taken::BundleMissing(also) => {
                    self.record_refusal(pool.id, key.editor.as_str(), &also, now)
                        .await?;
                    let bundled = Ask {
                        feature: also.clone(),
                        access: None,
                        ..ask.clone()
                    };
                    if !selection::fits_when_free(&selectable, &bundled, today) {
                        return Err(Error::Refused(
                            Refusal::NoMatchingKey,
                            format!(
                                "Feature {feature} comes with feature {also}, and no licence \
                                 key of {also} fits this request. Your administrator can \
                                 explain the choice."
                            ),
                        ));
                    }
                    return Err(Error::Refused(
                        Refusal::SeatsTaken,
                        format!(
                            "Feature {feature} comes with feature {also}, and no seat of {also} \
                             is free. Try again later."
                        ),
                    ));
                }
            }
        }
        let of_feature: Vec<&KeyRow> = keys.iter().filter(|k| k.feature == feature).collect();
        let editor_name = of_feature.first().map_or_else(
            || ask.editor.clone().unwrap_or_default(),
            |k| k.editor.clone(),
        );
        self.record_refusal(pool.id, &editor_name, &feature, now)
            .await?;
        if of_feature.is_empty() {
            return Err(Error::Refused(
                Refusal::NoMatchingKey,
                format!("This pool has no licence for feature {feature}."),
            ));
        }
        let count: i64 = selection::usable(&selectable, today)
            .iter()
            .filter(|k| k.feature == feature)
            .map(|k| k.quantity)
            .sum();
        let in_use: i64 = of_feature.iter().map(|k| k.in_use).sum();
        if let Some(selection::Rule::Reserved(rule)) = &ask.access {
            return Err(Error::Refused(
                Refusal::SeatsTaken,
                format!(
                    "The free seats of feature {feature} are kept for others by access {rule}; \
                     {in_use} of {count} are in use. Try again when someone closes the \
                     application, or ask the pool's owner."
                ),
            ));
        }
        // Waiting helps only if some key would serve this very request once seats are free.
        if !selection::fits_when_free(&selectable, &ask, today) {
            return Err(Error::Refused(
                Refusal::NoMatchingKey,
                format!(
                    "No licence key of feature {feature} fits this request (release, dates or \
                     terms); {count} seat{} exist, {in_use} in use. Your administrator can \
                     explain the choice.",
                    if count == 1 { "" } else { "s" }
                ),
            ));
        }
        let all = if in_use < count {
            format!("Not enough of feature {feature} is free for this request.")
        } else if count == 1 {
            format!("The 1 seat of feature {feature} is in use.")
        } else {
            format!("All {count} seats of feature {feature} are in use.")
        };
        Err(Error::Refused(
            Refusal::SeatsTaken,
            format!(
                "{all} Try again when someone closes the application, or ask your \
                 administrator for more."
            ),
        ))
    }

    /// Takes `amount` of `key` (0: a named user's further session) and the seats it bundles,
    /// in one transaction.
    pub(super) async fn take(
        &self,
        seat: &SeatAsk<'_>,
        key: &KeyRow,
        amount: i64,
        bundles: &[String],
        keys: &[KeyRow],
        ask: &Ask,
    ) -> Result<Taken> {
        let mut tx = self.db.pool().begin().await?;
        let mut amount = amount;
        let who = Asker {
            user: seat.user,
            host: seat.host,
        };
        // A reservation of this feature: the feature's keys are locked first (as a key's
        // removal locks them), so its checkouts take turns, and the one taking a seat checks,
        // after taking it, that no reservation of others lost a seat it keeps.
        let reserved = seat.access.reserves(&key.feature);
        if reserved {
            lock_feature(&mut tx, seat.pool_id, &key.feature).await?;
        }
        if amount == 0 {
            // A named user's further session rides on the seat the user pays for, if it is
            // still there once the key is locked; otherwise this session pays.
            lock_key(&mut tx, key.id).await?;
            let paid: Option<i64> = sqlx::query_scalar(
                "SELECT id FROM seats WHERE key_id = $1 AND user_name = $2 \
                 AND released_at IS NULL AND amount > 0 LIMIT 1",
            )
            .bind(key.id)
            .bind(seat.user)
            .fetch_optional(&mut *tx)
            .await?;
            if paid.is_none() {
                amount = 1;
            }
        }
        if amount > 0 && !increment(&mut tx, key.id, amount).await? {
            return Ok(Taken::KeyFull);
        }
        if reserved && amount > 0 {
            let kept = self
                .reserved_against(&mut tx, seat.access, seat.pool_id, (seat.ask, who), amount)
                .await?;
            if let Some(rule) = kept {
                tx.rollback().await?;
                return Ok(Taken::Reserved(key.feature.clone(), rule));
            }
        }
        let token = lease_token();
        let seat_id = insert_seat(&mut tx, seat, key, amount, None, &token).await?;
        let Some(seat_id) = seat_id else {
            // The same session checked out at this very moment: it has its seat.
            return Err(Error::Conflict(
                "This session has just checked out this feature; use that seat.".into(),
            ));
        };
        let today = day_of(seat.now);
        let mut bundled = Vec::new();
        for also in bundles {
            let also_ask = Ask {
                feature: also.clone(),
                editor: None,
                needed: 1,
                access: None,
                ..ask.clone()
            };
            let selectable: Vec<Key> = keys.iter().map(KeyRow::for_selection).collect();
            let mut order: Vec<(usize, i64)> = selection::explain(&selectable, &also_ask, today)
                .into_iter()
                .filter_map(|(id, v)| match v {
                    Verdict::Ranked(r) => Some((r, id)),
                    Verdict::Filtered(_) => None,
                })
                .collect();
            order.sort_unstable();
            let also_reserved = seat.access.reserves(also);
            if also_reserved {
                lock_feature(&mut tx, seat.pool_id, also).await?;
            }
            let mut got = false;
            for (_, id) in order {
                let Some(k) = keys.iter().find(|k| k.id == id) else {
                    continue;
                };
                if increment(&mut tx, k.id, 1).await? {
                    if also_reserved {
                        let kept = self
                            .reserved_against(
                                &mut tx,
                                seat.access,
                                seat.pool_id,
                                (&also_ask, who),
                                1,
                            )
                            .await?;
                        if let Some(rule) = kept {
                            tx.rollback().await?;
                            return Ok(Taken::Reserved(also.clone(), rule));
                        }
                    }
                    insert_seat(&mut tx, seat, k, 1, Some(seat_id), &lease_token()).await?;
                    got = true;
                    break;
                }
            }
            if !got {
                tx.rollback().await?;
                return Ok(Taken::BundleMissing(also.clone()));
            }
            bundled.push(also.clone());
        }
        // The hour's peak, as this transaction leaves the feature's seats. On PostgreSQL a
        // statement sees what committed before it began: the hour's row is locked first, so a
        // checkout of the same feature that took its seat meanwhile has committed when the
        // seats are summed (whoever sums last sees every seat). On SQLite the write lock,
        // held since the first write, does the same.
        if self.db.backend() == crate::db::Backend::Postgres {
            sqlx::query(
                "INSERT INTO usage_hourly (pool_id, editor, feature, hour) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (pool_id, editor, feature, hour) \
                 DO UPDATE SET peak_in_use = usage_hourly.peak_in_use",
            )
            .bind(seat.pool_id)
            .bind(&key.editor)
            .bind(&key.feature)
            .bind(seat.now / 3600)
            .execute(&mut *tx)
            .await?;
        }
        tally(
            &mut *tx,
            Tally::Peak,
            seat.pool_id,
            &key.editor,
            &key.feature,
            seat.now,
        )
        .await?;
        crate::db::commit_retryable(tx).await?;
        tracing::info!(seat_id, key_id = key.id, amount, "seat checked out");
        Ok(Taken::Granted(Grant {
            seat_id,
            lease_token: token,
            lease_expires_at: seat.now + seat.lease_secs,
            heartbeat_secs: (seat.lease_secs / 3).max(10),
            key_id: key.id,
            editor: key.editor.clone(),
            feature: key.feature.clone(),
            model: key.model.clone(),
            bundled,
        }))
    }

    /// The seat of a session that checked out again: a new lease token, a fresh lease.
    /// Only while the seat is still the taker's to take (its installation's, or its lease run
    /// out in a pool that does not hold silent seats: a heartbeat arriving meanwhile keeps it),
    /// and it becomes the taker's installation's.
    pub(super) async fn hand_back(
        &self,
        pool: &PoolRow,
        seat_id: i64,
        taker: Taker<'_>,
        now: i64,
    ) -> Result<Option<Grant>> {
        let token = lease_token();
        let kept = sqlx::query(
            "UPDATE seats SET lease_token_hash = $1, process = $2, last_heartbeat_at = $3, \
             lease_expires_at = $4, installation_hash = $6 WHERE id = $5 \
             AND released_at IS NULL AND borrowed_until IS NULL \
             AND (installation_hash = $6 OR (lease_expires_at <= $3 \
               AND (last_heartbeat_at <= granted_at \
                 OR (SELECT p.silent_seats FROM pools p WHERE p.id = seats.pool_id) = 'lease')))",
        )
        .bind(crate::token::digest(&token))
        .bind(taker.process)
        .bind(now)
        .bind(now + pool.lease_secs)
        .bind(seat_id)
        .bind(taker.installation)
        .execute(self.db.pool())
        .await?
        .rows_affected();
        if kept == 0 {
            return Ok(None);
        }
        let (key_id, editor, feature, model): (i64, String, String, String) = sqlx::query_as(
            "SELECT k.id, k.editor, k.feature, k.model FROM seats s \
             JOIN pool_keys k ON k.id = s.key_id WHERE s.id = $1",
        )
        .bind(seat_id)
        .fetch_one(self.db.pool())
        .await?;
        let bundled: Vec<String> = sqlx::query_scalar(
            "SELECT feature FROM seats WHERE bundle_of = $1 AND released_at IS NULL",
        )
        .bind(seat_id)
        .fetch_all(self.db.pool())
        .await?;
        Ok(Some(Grant {
            seat_id,
            lease_token: token,
            lease_expires_at: now + pool.lease_secs,
            heartbeat_secs: (pool.lease_secs / 3).max(10),
            key_id,
            editor,
            feature,
            model,
            bundled,
        }))
    }

    /// Adds one refusal to the hour's usage history of a feature; the first of the hour is told
    /// by a webhook event.
    pub(super) async fn record_refusal(
        &self,
        pool_id: i64,
        editor: &str,
        feature: &str,
        now: i64,
    ) -> Result<()> {
        let tallied = tally(
            self.db.pool(),
            Tally::Refusal,
            pool_id,
            editor,
            feature,
            now,
        )
        .await;
        let refusals = match tallied {
            Ok(n) => n,
            Err(Error::Database(e)) => return pool_deleted_meanwhile(e),
            Err(e) => return Err(e),
        };
        if refusals == Some(1) {
            self.tell_refusal(pool_id, editor, feature, now).await;
        }
        Ok(())
    }
}

/// Adds to the hour's usage history of a feature: one refusal more (answering the hour's
/// refusals so far), or the peak of seats in use raised to what is in use now.
async fn tally<'e, E>(
    exec: E,
    tally: Tally,
    pool_id: i64,
    editor: &str,
    feature: &str,
    now: i64,
) -> Result<Option<i64>>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let sql = match tally {
        Tally::Refusal => {
            "INSERT INTO usage_hourly (pool_id, editor, feature, hour, refusals) \
             VALUES ($1, $2, $3, $4, 1) ON CONFLICT (pool_id, editor, feature, hour) \
             DO UPDATE SET refusals = usage_hourly.refusals + 1 RETURNING refusals"
        }
        Tally::Peak => {
            "INSERT INTO usage_hourly (pool_id, editor, feature, hour, peak_in_use) \
             SELECT $1, $2, $3, $4, CAST(COALESCE(SUM(in_use), 0) AS BIGINT) FROM pool_keys \
             WHERE pool_id = $1 AND editor = $2 AND feature = $3 \
             ON CONFLICT (pool_id, editor, feature, hour) DO UPDATE SET peak_in_use = \
             CASE WHEN excluded.peak_in_use > usage_hourly.peak_in_use \
                  THEN excluded.peak_in_use ELSE usage_hourly.peak_in_use END \
             RETURNING 0"
        }
    };
    Ok(sqlx::query_scalar(sql)
        .bind(pool_id)
        .bind(editor)
        .bind(feature)
        .bind(now / 3600)
        .fetch_optional(exec)
        .await?)
}

impl Licentia {
    /// The first refusal of a feature in an hour becomes a `seat.refused` event (one per
    /// feature and hour, with the hour: however many a pool-key holder provokes, the outbox
    /// grows by one); the hour's count is in Usage. A failure is logged: the refusal stands.
    async fn tell_refusal(&self, pool_id: i64, editor: &str, feature: &str, now: i64) {
        let told = async {
            let mut conn = self.db.pool().acquire().await?;
            crate::webhooks::emit(
                &mut conn,
                now,
                protocol::webhooks::WebhookEvent::SeatRefused,
                serde_json::json!({
                    "pool_id": pool_id, "editor": editor, "feature": feature,
                    "hour": now / 3600 * 3600,
                }),
            )
            .await
        };
        if let Err(e) = told.await {
            tracing::warn!(pool_id, feature, error = %e, "a seat.refused event could not be written");
        }
    }
}

/// What a checkout adds to the usage history.
#[derive(Debug, Clone, Copy)]
pub(super) enum Tally {
    Refusal,
    Peak,
}

/// Who takes a seat over: its process, and the digest of its installation's secret if it sent
/// one.
#[derive(Debug, Clone, Copy)]
pub(super) struct Taker<'a> {
    process: &'a str,
    installation: Option<&'a str>,
}

/// The digest kept of an installation's secret, if it sent one (a secret too short to be one is
/// refused: it would be a guessable proof).
fn installation_digest(secret: Option<&str>) -> Result<Option<String>> {
    match secret {
        None => Ok(None),
        Some(s) if (16..=255).contains(&s.chars().count()) && !s.chars().any(char::is_control) => {
            Ok(Some(crate::token::digest(s)))
        }
        Some(_) => Err(InputError::new(
            "installation",
            "The installation secret must be 16 to 255 characters without control characters.",
        )
        .into()),
    }
}

/// Whether a checkout may take over a live seat of its user, host and session: only by showing
/// the secret of the installation that took it. Naming the same user, host and session — which
/// anyone holding the pool key can — is not proof.
pub(crate) fn may_resume(held_by: Option<&str>, presented: Option<&str>) -> bool {
    matches!((held_by, presented), (Some(held), Some(shown)) if held == shown)
}

/// `lease_left_secs`: `None` in a pool that holds silent seats (no lease ends them).
fn session_taken(feature: &str, user: &str, host: &str, lease_left_secs: Option<i64>) -> Error {
    let until = match lease_left_secs {
        Some(left) => format!(
            "when its lease ends (within {} min)",
            (left.max(0) + 59) / 60
        ),
        None => "when the pool's owner frees it (this pool keeps a silent seat for its \
                 application)"
            .to_owned(),
    };
    Error::Conflict(format!(
        "User {user} on {host} already holds a seat of {feature} in this session. Only the \
         installation that took it can resume it; otherwise it comes free when released or \
         {until}."
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_installation_that_took_a_seat_resumes_it() {
        let held = crate::token::digest("installation secret 1");
        let shown = installation_digest(Some("installation secret 1")).expect("ok");
        assert!(may_resume(Some(&held), shown.as_deref()));
        let other = installation_digest(Some("installation secret 2")).expect("ok");
        assert!(!may_resume(Some(&held), other.as_deref()));
        assert!(!may_resume(Some(&held), None));
        assert!(!may_resume(None, shown.as_deref()));
        assert!(!may_resume(None, None));
        assert!(installation_digest(Some("short")).is_err());
        assert!(installation_digest(Some("sixteen chars\u{0}..")).is_err());
    }
}
